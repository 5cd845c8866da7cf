/*
 * test_store_erase.c - erasing a tenant leaves none of its rows and every
 * row of the other tenants (R1.1, R1.4, R3.4, R9.5), on SQLite and
 * PostgreSQL (MAMORI_TEST_PG, as test_store.c).
 *
 * The check does not list the tables it expects: it reads them from the
 * schema (sqlite_schema, information_schema).  Every table with a
 * tenant_id column must hold rows of both tenants before the erase (so a
 * table added later fails here until this file fills it, and its author
 * decides what an erase does with it), none of the erased tenant after,
 * and exactly the same rows of the other.  A table without tenant_id
 * must be named in `other_owner` below with the column that says whose
 * row it is; an unknown one fails.  What an erase keeps on purpose: the
 * tenant's own row, marked erased, and its staff IDs without the tenant
 * (staff_ids_retired: an ID the audit log names is never reused, R6.1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <sqlite3.h>

#include "common/log.h"
#include "common/util.h"
#include "crypto/keyring.h"
#include "store/store.h"
#include "store/store_auth.h"
#include "store/store_import.h"
#include "store/store_records.h"
#include "store/store_site.h"
#include "store/store_transfer.h"
#include "store_fixture.h"

#define TA "131016"     /* the tenant erased */
#define TB "011002"     /* the tenant that stays */
#define NTABLES 64

/* Tables whose rows are owned through another column than tenant_id
 * (NULL: no tenant's rows at all). */
static const struct {
    const char *table;
    const char *owner;
} other_owner[] = {
    { "schema_migrations", NULL },
    { "staff_ids_retired", NULL },              /* IDs only, checked below (R6.1) */
    { "transfer_undelivered", "from_tenant" },  /* the sender's record (R3.4) */
};

/* What one tenant was given, to look it up again after the erase. */
struct filled {
    char    user[STAFF_ID_MAX];
    uint8_t fp[32], fp_revoked[32];
    uint8_t site_hash[SITE_TOKEN_HASH_LEN];
    char    inquiry_to_other[STORE_XFER_ID];
};

/* One table of the schema and its owner column ("" for none). */
struct table {
    char name[64];
    char owner[16];
};

/* ---- raw access, behind the store's back ------------------------------------ */

typedef void (*row_fn)(int ncol, const char *const *v, const int *len, void *arg);

/* Run a query and hand each row to fn, as text (PostgreSQL's text form:
 * bytea as \x hex) or SQLite's bytes. */
static void
raw_rows(struct store_fx *f, const char *sql, row_fn fn, void *arg)
{
    const char *v[64];
    int len[64];

    if (f->backend == STORE_BACKEND_SQLITE) {
        sqlite3 *db;
        sqlite3_stmt *s;
        int rc;
        assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
            fail_msg("%s: %s", sql, sqlite3_errmsg(db));
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            int n = sqlite3_column_count(s);
            assert_true(n <= 64);
            for (int i = 0; i < n; i++) {
                v[i] = sqlite3_column_blob(s, i);
                len[i] = sqlite3_column_bytes(s, i);
                if (v[i] == NULL)
                    v[i] = "";
            }
            fn(n, v, len, arg);
        }
        assert_int_equal(rc, SQLITE_DONE);
        sqlite3_finalize(s);
        sqlite3_close(db);
    } else {
        PGconn *c = store_fx_pg_connect(f->conninfo);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        assert_true(PQnfields(r) <= 64);
        for (int row = 0; row < PQntuples(r); row++) {
            for (int i = 0; i < PQnfields(r); i++) {
                v[i] = PQgetvalue(r, row, i);
                len[i] = PQgetisnull(r, row, i) ? -1 : PQgetlength(r, row, i);
            }
            fn(PQnfields(r), v, len, arg);
        }
        PQclear(r);
        PQfinish(c);
    }
}

static void
take_count(int ncol, const char *const *v, const int *len, void *arg)
{
    char buf[32];

    assert_int_equal(ncol, 1);
    assert_true(len[0] > 0 && len[0] < (int)sizeof(buf));
    memcpy(buf, v[0], (size_t)len[0]);
    buf[len[0]] = '\0';
    *(long *)arg = strtol(buf, NULL, 10);
}

static long
raw_count(struct store_fx *f, const char *table, const char *where)
{
    char sql[512];
    long n = -1;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\" WHERE %s", table, where);
    raw_rows(f, sql, take_count, &n);
    return n;
}

struct tables {
    size_t       n;
    struct table t[NTABLES];
};

static void
take_table(int ncol, const char *const *v, const int *len, void *arg)
{
    struct tables *ts = arg;
    struct table *t;

    assert_int_equal(ncol, 2);
    assert_true(ts->n < NTABLES && len[0] > 0 && len[0] < 64);
    t = &ts->t[ts->n++];
    memcpy(t->name, v[0], (size_t)len[0]);
    t->name[len[0]] = '\0';
    snprintf(t->owner, sizeof(t->owner), "%s", v[1][0] != '0' ? "tenant_id" : "");
}

/* Every table of the schema; the owner column from the schema (tenant_id)
 * or from other_owner, and a table that has neither fails the test. */
static void
schema_tables(struct store_fx *f, struct tables *ts)
{
    static const char *const sq =
        "SELECT m.name, (SELECT count(*) FROM pragma_table_info(m.name) p "
        "WHERE p.name = 'tenant_id') FROM sqlite_schema m WHERE m.type = 'table' "
        "AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY m.name";
    static const char *const pg =
        "SELECT t.table_name, (SELECT count(*) FROM information_schema.columns c "
        "WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name "
        "AND c.column_name = 'tenant_id') FROM information_schema.tables t "
        "WHERE t.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
        "ORDER BY t.table_name";

    ts->n = 0;
    raw_rows(f, f->backend == STORE_BACKEND_SQLITE ? sq : pg, take_table, ts);
    assert_true(ts->n >= 20);
    for (size_t i = 0; i < ts->n; i++) {
        bool known = false;
        if (ts->t[i].owner[0] != '\0')
            continue;
        for (size_t k = 0; k < sizeof(other_owner) / sizeof(other_owner[0]); k++)
            if (strcmp(ts->t[i].name, other_owner[k].table) == 0) {
                known = true;
                snprintf(ts->t[i].owner, sizeof(ts->t[i].owner), "%s",
                         other_owner[k].owner != NULL ? other_owner[k].owner : "");
            }
        if (!known)
            fail_msg("table %s has no tenant_id column and is not in other_owner: decide "
                     "whose rows it holds and what a tenant erase does with them",
                     ts->t[i].name);
    }
}

/* Row digests of one tenant's rows of a table, order-independent: each
 * row is hashed (every column's length and bytes), the row hashes are
 * sorted and hashed again. */
struct rowset {
    size_t  n;
    uint8_t h[256][32];
};

static void
take_row(int ncol, const char *const *v, const int *len, void *arg)
{
    struct rowset *rs = arg;
    crypto_generichash_state st;

    assert_true(rs->n < 256);
    crypto_generichash_init(&st, NULL, 0, 32);
    for (int i = 0; i < ncol; i++) {
        int64_t l = len[i];
        crypto_generichash_update(&st, (const uint8_t *)&l, sizeof(l));
        if (len[i] > 0)
            crypto_generichash_update(&st, (const uint8_t *)v[i], (size_t)len[i]);
    }
    crypto_generichash_final(&st, rs->h[rs->n++], 32);
}

static int
cmp32(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static void
rows_digest(struct store_fx *f, const struct table *t, const char *tenant, uint8_t out[32],
            size_t *n)
{
    static struct rowset rs;    /* 8 KiB: off the stack */
    char sql[256];

    rs.n = 0;
    snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\" WHERE %s = '%s'", t->name, t->owner,
             tenant);
    raw_rows(f, sql, take_row, &rs);
    qsort(rs.h, rs.n, 32, cmp32);
    crypto_generichash(out, 32, rs.n > 0 ? rs.h[0] : NULL, rs.n * 32, NULL, 0);
    *n = rs.n;
}

/* ---- fixture -------------------------------------------------------------- */

static int
setup(void **state)
{
    static const char *const tenants[] = { TA, TB };

    *state = store_fx_new("erase", tenants, 2, 0);
    return 0;
}

static int
teardown(void **state)
{
    store_fx_free(*state);
    return 0;
}

#define BEGIN_CASE(f) \
    struct store_fx *f = *state; \
    do { \
        if ((f)->skip) \
            skip(); \
    } while (0)

/* ---- synthetic data (R9.4) --------------------------------------------------- */

static void
make_mynumber(unsigned seed, char out[13])
{
    unsigned sum = 0, r;

    snprintf(out, 13, "%011u", 10000000u + seed * 7919u % 89999999u);
    for (size_t i = 0; i < 11; i++)
        sum += (unsigned)(out[i] - '0') * (unsigned)(i < 5 ? 6 - i : 12 - i);
    r = sum % 11;
    out[11] = (char)('0' + (r <= 1 ? 0 : 11 - r));
    out[12] = '\0';
}

static void
fake(struct resident *r, unsigned i)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->address_no, sizeof(r->address_no), "A%07u", i);
    make_mynumber(i, r->mynumber);
    snprintf(r->name, sizeof(r->name), "テスト 太郎%u", i);
    snprintf(r->kana, sizeof(r->kana), "テスト タロウ%u", i);
    snprintf(r->birth_date, sizeof(r->birth_date), "1970-01-1%u", i % 10);
    snprintf(r->sex, sizeof(r->sex), "1");
    snprintf(r->postcode, sizeof(r->postcode), "1000001");
    snprintf(r->address, sizeof(r->address), "東京都千代田区試験町%u丁目", i);
    snprintf(r->became_date, sizeof(r->became_date), "2001-04-01");
}

static void
now_ts(char out[STORE_TS_LEN])
{
    util_utc_now(out);
}

/* Records: residents (one with an idempotency key), a voucher, a
 * vaccination, a correction, an import. */
static int64_t
fill_records(struct store_tenant *ctx, unsigned seed)
{
    struct resident r;
    struct voucher v = { .ticket_type = 1 };
    struct vaccination x;
    uint8_t sha[32];
    int64_t rid = 0, other = 0, vid = 0, cid = 0;

    fake(&r, seed);
    assert_int_equal(store_resident_insert(ctx, "res-0001", &r, &rid), STORE_OK);
    fake(&r, seed + 1);
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &other), STORE_OK);
    snprintf(v.voucher_no, sizeof(v.voucher_no), "00000%05u", seed);
    v.resident_id = rid;
    snprintf(v.issued_date, sizeof(v.issued_date), "2021-05-01");
    assert_int_equal(store_voucher_issue(ctx, &v), STORE_OK);
    memset(&x, 0, sizeof(x));
    x.resident_id = rid;
    snprintf(x.vaccine, sizeof(x.vaccine), "covid-comirnaty");
    x.dose = 1;
    snprintf(x.date, sizeof(x.date), "2021-06-01");
    snprintf(x.lot, sizeof(x.lot), "ZQXLOT01");
    snprintf(x.entered_by, sizeof(x.entered_by), "staff.test");
    assert_int_equal(store_vaccination_insert(ctx, "vac-0001", &x, &vid), STORE_OK);
    fake(&r, seed + 1);
    snprintf(r.address, sizeof(r.address), "東京都千代田区試験町九丁目");
    assert_int_equal(store_resident_correct(ctx, other, &r, "staff.admin", "typo", &cid),
                     STORE_OK);
    randombytes_buf(sha, sizeof(sha));
    assert_int_equal(store_import_record(ctx, sha, "residents", 2, "staff.test"), STORE_OK);
    return rid;
}

/* Identity: a staff account with a session from an active terminal, a
 * revoked terminal, a site device. */
static void
fill_identity(struct store_fx *f, const char *tenant, struct filled *o)
{
    uint8_t enrol[AUTH_HASH_LEN];
    struct staff_session s;
    char dev[SITE_DEVICE_ID_LEN + 1];

    snprintf(o->user, sizeof(o->user), "clerk.%s", tenant);
    randombytes_buf(enrol, sizeof(enrol));
    assert_int_equal(store_staff_create(f->st, o->user, tenant, "clerk", enrol, 2000000000,
                                        1700000000), STORE_OK);
    randombytes_buf(o->fp, sizeof(o->fp));
    randombytes_buf(o->fp_revoked, sizeof(o->fp_revoked));
    assert_int_equal(store_terminal_register(f->st, tenant, o->fp, "pc-01"), STORE_OK);
    assert_int_equal(store_terminal_register(f->st, tenant, o->fp_revoked, "pc-lost"),
                     STORE_OK);
    assert_int_equal(store_terminal_revoke(f->st, o->fp_revoked), STORE_OK);
    memset(&s, 0, sizeof(s));
    randombytes_buf(s.token_hash, sizeof(s.token_hash));
    snprintf(s.user_id, sizeof(s.user_id), "%s", o->user);
    snprintf(s.tenant, sizeof(s.tenant), "%s", tenant);
    snprintf(s.role, sizeof(s.role), "clerk");
    memcpy(s.fingerprint, o->fp, 32);
    s.created_at = s.last_seen = 1700000000;
    assert_int_equal(store_session_create(f->st, &s), STORE_OK);
    snprintf(dev, sizeof(dev), "sd-%s", strcmp(tenant, TA) == 0 ? "aaaaaaaaaaaaaaaa"
                                                               : "bbbbbbbbbbbbbbbb");
    randombytes_buf(o->site_hash, sizeof(o->site_hash));
    assert_int_equal(store_site_device_create(f->st, tenant, dev, "会場1", o->site_hash),
                     STORE_OK);
}

/* Transfer records, each naming the other tenant: a consent, an
 * inquiry sent to it, a provision answering it, an undelivered message
 * to it, a bulk job whose row asks it. */
static void
fill_transfer(struct store_fx *f, struct store_tenant *ctx, const char *tenant,
              const char *other, unsigned seed, int64_t rid, struct filled *o)
{
    struct transfer_consent c;
    struct transfer_inquiry_rec q;
    struct transfer_answer a;
    struct transfer_provision p;
    struct transfer_job job;
    struct transfer_job_row row;
    char mn[13], msg[STORE_XFER_ID];

    make_mynumber(seed, mn);
    memset(&c, 0, sizeof(c));
    snprintf(c.affair, sizeof(c.affair), "%s", TRANSFER_AFFAIR_VACCINATION);
    snprintf(c.id_check, sizeof(c.id_check), "mynumber_card");
    snprintf(c.checked_on, sizeof(c.checked_on), "2024-04-01");
    snprintf(c.checked_by, sizeof(c.checked_by), "clerk.a");
    assert_int_equal(store_consent_create(ctx, mn, &c, NULL, NULL), STORE_OK);

    memset(&q, 0, sizeof(q));
    memset(&a, 0, sizeof(a));
    transfer_new_id(q.id, TRANSFER_MSG_ID_HEX);
    snprintf(o->inquiry_to_other, sizeof(o->inquiry_to_other), "%s", q.id);
    snprintf(q.to_tenant, sizeof(q.to_tenant), "%s", other);
    snprintf(q.affair, sizeof(q.affair), "%s", TRANSFER_AFFAIR_VACCINATION);
    snprintf(q.consent_id, sizeof(q.consent_id), "%s", c.id);
    q.resident_id = rid;
    snprintf(q.actor, sizeof(q.actor), "clerk.a");
    snprintf(q.mode, sizeof(q.mode), "single");
    now_ts(q.sent_at);
    now_ts(q.answered_at);
    snprintf(q.outcome, sizeof(q.outcome), "found");
    snprintf(q.items, sizeof(q.items), "%s", TRANSFER_ITEMS);
    a.found = a.complete = true;
    a.n = 1;
    snprintf(a.doses[0].vaccine, sizeof(a.doses[0].vaccine), "covid-comirnaty");
    a.doses[0].dose = 1;
    snprintf(a.doses[0].date, sizeof(a.doses[0].date), "2021-06-01");
    q.doses = 1;
    assert_int_equal(store_inquiry_add(ctx, mn, &q, &a), STORE_OK);

    memset(&p, 0, sizeof(p));
    transfer_new_id(p.id, TRANSFER_MSG_ID_HEX);
    transfer_new_id(p.inquiry_id, TRANSFER_MSG_ID_HEX);
    snprintf(p.from_tenant, sizeof(p.from_tenant), "%s", other);
    snprintf(p.affair, sizeof(p.affair), "%s", TRANSFER_AFFAIR_VACCINATION);
    transfer_new_id(p.consent_ref, TRANSFER_REF_HEX);
    randombytes_buf(p.subject, sizeof(p.subject));
    p.resident_id = rid;
    snprintf(p.mode, sizeof(p.mode), "single");
    now_ts(p.received_at);
    now_ts(p.answered_at);
    snprintf(p.outcome, sizeof(p.outcome), "found");
    snprintf(p.items, sizeof(p.items), "%s", TRANSFER_ITEMS);
    p.doses = 1;
    assert_int_equal(store_provision_add(ctx, &p, NULL, NULL), STORE_OK);

    transfer_new_id(msg, TRANSFER_MSG_ID_HEX);
    assert_int_equal(store_undelivered_add(f->st, tenant, msg, other, NULL, NULL), STORE_OK);

    memset(&job, 0, sizeof(job));
    snprintf(job.actor, sizeof(job.actor), "clerk.a");
    snprintf(job.role, sizeof(job.role), "clerk");
    memset(&row, 0, sizeof(row));
    row.row_no = 1;
    snprintf(row.prev_code, sizeof(row.prev_code), "%s", other);
    snprintf(row.address_no, sizeof(row.address_no), "A%07u", seed);
    snprintf(row.consent_id, sizeof(row.consent_id), "%s", c.id);
    snprintf(row.mynumber, sizeof(row.mynumber), "%s", mn);
    assert_int_equal(store_job_create(ctx, &job, &row, 1, NULL, NULL), STORE_OK);
}

/* An import job of the API, finished with one kept problem. */
static void
fill_import_job(struct store_tenant *ctx)
{
    struct store_import_job j;
    struct store_import_problem pr = { .seq = 1, .line = 2 };

    memset(&j, 0, sizeof(j));
    transfer_new_id(j.id, STORE_IMPORT_ID_HEX);
    snprintf(j.kind, sizeof(j.kind), "residents");
    snprintf(j.encoding, sizeof(j.encoding), "utf-8");
    snprintf(j.actor, sizeof(j.actor), "staff.test");
    snprintf(j.role, sizeof(j.role), "supervisor");
    j.bytes = 100;
    assert_int_equal(store_import_job_create(ctx, &j), STORE_OK);
    assert_int_equal(store_import_job_start(ctx, j.id, "worker-0.1"), STORE_OK);
    snprintf(pr.column, sizeof(pr.column), "birth_date");
    snprintf(pr.reason, sizeof(pr.reason), "is not a date");
    j.state = STORE_IMPORT_REFUSED;
    j.rows = 1;
    j.bad_lines = 1;
    j.problems = 1;
    assert_int_equal(store_import_job_finish(ctx, &j, &pr, 1), STORE_OK);
}

static void
fill(struct store_fx *f, const char *tenant, const char *other, unsigned seed, struct filled *o)
{
    struct store_tenant *ctx = NULL;
    int64_t rid;

    assert_int_equal(store_tenant_ctx_open(f->st, tenant, &f->kp, &ctx), STORE_OK);
    rid = fill_records(ctx, seed);
    fill_identity(f, tenant, o);
    fill_transfer(f, ctx, tenant, other, seed + 10, rid, o);
    fill_import_job(ctx);
    assert_int_equal(store_retention_claim(f->st, tenant, "2024-04-01"), STORE_OK);
    store_tenant_ctx_close(ctx);
}

/* ---- cases ------------------------------------------------------------------ */

struct snapshot {
    struct tables ts;
    uint8_t       digest[NTABLES][32];
    size_t        rows[NTABLES];
};

/* B's rows of every table, and a check that both tenants have rows in
 * every table that can hold them (else this test does not cover it). */
static void
snapshot_before(struct store_fx *f, struct snapshot *s)
{
    schema_tables(f, &s->ts);
    for (size_t i = 0; i < s->ts.n; i++) {
        const struct table *t = &s->ts.t[i];
        size_t na = 0;
        uint8_t da[32];
        if (t->owner[0] == '\0')
            continue;
        rows_digest(f, t, TA, da, &na);
        rows_digest(f, t, TB, s->digest[i], &s->rows[i]);
        if (na == 0 || s->rows[i] == 0)
            fail_msg("table %s: no row of %s before the erase - fill it in fill() so the "
                     "erase is tested on it", t->name, na == 0 ? TA : TB);
    }
}

/* R1.1, R1.4: after erasing A, no table holds a row of A (its tenants
 * row excepted, kept 'erased' so the code is never reused), and B's rows
 * of every table are exactly as before - including B's records that
 * name A (its inquiry to A, its answer to A, its job row asking A,
 * its undelivered message to A: R3.4, R9.5). */
static void
test_R1_1_erase_leaves_no_row_of_the_tenant(void **state)
{
    BEGIN_CASE(f);
    static struct snapshot before;
    struct tables after;
    struct filled a = { .user = "" }, b = { .user = "" };
    struct store_tenant *ctx = NULL;
    struct staff_account acct;
    struct site_device dev;
    struct transfer_inquiry_rec rec;
    char tenant[TENANT_ID_LEN + 1], tstate[12], tenant_state[16];
    uint8_t enrol[AUTH_HASH_LEN];

    memset(&before, 0, sizeof(before));
    fill(f, TA, TB, 100, &a);
    fill(f, TB, TA, 200, &b);
    snapshot_before(f, &before);

    assert_int_equal(keyring_erase(f->kr, TA), 0);
    assert_int_equal(store_tenant_erase(f->st, TA), STORE_OK);

    schema_tables(f, &after);
    assert_int_equal(after.n, before.ts.n);
    for (size_t i = 0; i < after.n; i++) {
        const struct table *t = &after.t[i];
        char where[64];
        uint8_t d[32];
        size_t n = 0;
        if (t->owner[0] == '\0')
            continue;
        snprintf(where, sizeof(where), "%s = '%s'", t->owner, TA);
        if (strcmp(t->name, "tenants") == 0) {
            assert_int_equal(raw_count(f, t->name, "tenant_id = '" TA "' AND state = 'erased'"),
                             1);
            assert_int_equal(raw_count(f, t->name, where), 1);
        } else if (raw_count(f, t->name, where) != 0)
            fail_msg("table %s still holds rows of the erased tenant", t->name);
        rows_digest(f, t, TB, d, &n);
        if (n != before.rows[i] || memcmp(d, before.digest[i], 32) != 0)
            fail_msg("table %s: the other tenant's rows changed (%zu -> %zu)", t->name,
                     before.rows[i], n);
    }
    /* Child rows: no session of an account that is gone (the foreign
     * key says so too), no job row or problem without its job. */
    assert_int_equal(raw_count(f, "sessions", "user_id NOT IN (SELECT user_id FROM staff)"), 0);
    assert_int_equal(raw_count(f, "transfer_job_rows", "NOT EXISTS (SELECT 1 FROM "
                               "transfer_jobs j WHERE j.tenant_id = transfer_job_rows.tenant_id "
                               "AND j.job_id = transfer_job_rows.job_id)"), 0);
    assert_int_equal(raw_count(f, "import_job_problems", "NOT EXISTS (SELECT 1 FROM "
                               "import_jobs j WHERE j.tenant_id = import_job_problems.tenant_id "
                               "AND j.job_id = import_job_problems.job_id)"), 0);
    /* B's records that name A are still B's (R3.4, R9.5). */
    assert_int_equal(raw_count(f, "transfer_inquiries",
                               "tenant_id = '" TB "' AND to_tenant = '" TA "'"), 1);
    assert_int_equal(raw_count(f, "transfer_provisions",
                               "tenant_id = '" TB "' AND from_tenant = '" TA "'"), 1);
    assert_int_equal(raw_count(f, "transfer_undelivered",
                               "from_tenant = '" TB "' AND to_code = '" TA "'"), 1);
    assert_int_equal(raw_count(f, "transfer_job_rows",
                               "tenant_id = '" TB "' AND prev_code = '" TA "'"), 1);

    /* R6.1: A's staff IDs are kept, alone, and stay taken; nobody
     * else's is there. */
    assert_int_equal(raw_count(f, "staff_ids_retired", "1 = 1"), 1);
    assert_int_equal(raw_count(f, "staff_ids_retired", "user_id = 'clerk." TA "'"), 1);
    randombytes_buf(enrol, sizeof(enrol));
    assert_int_equal(store_staff_create(f->st, a.user, TB, "clerk", enrol, 2000000000,
                                        1700000000), STORE_EXISTS);
    assert_int_equal(raw_count(f, "staff", "tenant_id = '" TB "'"), 1);

    /* Through the API: A's staff, terminals, devices are unknown (no
     * login, R6.2); B's work as before. */
    assert_int_equal(store_staff_get(f->st, a.user, &acct), STORE_NOTFOUND);
    assert_int_equal(store_terminal_get(f->st, a.fp, tenant, tstate), STORE_NOTFOUND);
    assert_int_equal(store_terminal_get(f->st, a.fp_revoked, tenant, tstate), STORE_NOTFOUND);
    assert_int_equal(store_site_device_by_token(f->st, a.site_hash, &dev), STORE_NOTFOUND);
    assert_int_equal(store_staff_get(f->st, b.user, &acct), STORE_OK);
    assert_int_equal(store_terminal_get(f->st, b.fp, tenant, tstate), STORE_OK);
    assert_string_equal(tenant, TB);
    assert_string_equal(tstate, "active");
    assert_int_equal(store_terminal_get(f->st, b.fp_revoked, tenant, tstate), STORE_OK);
    assert_string_equal(tstate, "revoked");
    assert_int_equal(store_site_device_by_token(f->st, b.site_hash, &dev), STORE_OK);
    assert_int_equal(store_tenant_ctx_open(f->st, TB, &f->kp, &ctx), STORE_OK);
    assert_int_equal(store_inquiry_get(ctx, b.inquiry_to_other, &rec, NULL), STORE_OK);
    assert_string_equal(rec.to_tenant, TA);
    store_tenant_ctx_close(ctx);
    assert_int_equal(store_tenant_state(f->st, TA, tenant_state), STORE_OK);
    assert_string_equal(tenant_state, "erased");
    assert_int_equal(store_tenant_ctx_open(f->st, TA, &f->kp, &ctx), STORE_DENIED);
}

/* R1.4: an erase that is run again (the runbook's answer to a failed
 * step) succeeds and changes nothing of the other tenant; an unknown
 * tenant is STORE_NOTFOUND. */
static void
test_R1_4_erase_again_changes_nothing(void **state)
{
    BEGIN_CASE(f);
    static struct snapshot before;
    struct filled a = { .user = "" }, b = { .user = "" };

    memset(&before, 0, sizeof(before));
    fill(f, TA, TB, 100, &a);
    fill(f, TB, TA, 200, &b);
    assert_int_equal(keyring_erase(f->kr, TA), 0);
    assert_int_equal(store_tenant_erase(f->st, TA), STORE_OK);
    schema_tables(f, &before.ts);
    for (size_t i = 0; i < before.ts.n; i++)
        if (before.ts.t[i].owner[0] != '\0')
            rows_digest(f, &before.ts.t[i], TB, before.digest[i], &before.rows[i]);
    assert_int_equal(store_tenant_erase(f->st, TA), STORE_OK);
    for (size_t i = 0; i < before.ts.n; i++) {
        uint8_t d[32];
        size_t n = 0;
        if (before.ts.t[i].owner[0] == '\0')
            continue;
        rows_digest(f, &before.ts.t[i], TB, d, &n);
        assert_int_equal(n, before.rows[i]);
        assert_memory_equal(d, before.digest[i], 32);
    }
    assert_int_equal(raw_count(f, "staff_ids_retired", "1 = 1"), 1);
    assert_int_equal(store_tenant_erase(f->st, "472018"), STORE_NOTFOUND);
}

int
main(void)
{
    const struct CMUnitTest cases[] = {
        cmocka_unit_test_setup_teardown(test_R1_1_erase_leaves_no_row_of_the_tenant, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_R1_4_erase_again_changes_nothing, setup, teardown),
    };
    int failed;

    if (sodium_init() < 0)
        return 1;
    log_setup("test_store_erase", LOG_TO_STDERR, LOG_LVL_ERROR);
    failed = STORE_FX_RUN("erase/sqlite", "erase/postgresql", cases, STORE_FX_PG_IN_CI);
    return failed;
}
