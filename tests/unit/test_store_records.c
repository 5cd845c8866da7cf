/*
 * test_store_records.c - vouchers, vaccinations, corrections, walks, bulk
 * imports and retention (store_records.h), run against SQLite and
 * PostgreSQL with the same cases (R1.1, R1.4, R2.3-R2.6, R2.9, R2.10,
 * R9.2).
 *
 * PostgreSQL: set MAMORI_TEST_PG to a conninfo (scripts/pg-cluster.sh
 * start DIR prints one).  Unset, the PostgreSQL cases FAIL when CI=true
 * and are skipped, loudly, otherwise.  Each case runs in a fresh schema.
 * MAMORI_TEST_BULK_ROWS sets the size of the large import (default
 * 20000; 1000000 is the documented target, docs/storage.md).
 * All data is synthetic (R9.4).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <sqlite3.h>

#include "common/log.h"
#include "common/util.h"
#include "crypto/keyring.h"
#include "store/store.h"
#include "store/store_records.h"
#include "store_fixture.h"

#define T1 "131016"
#define T2 "011002"
#define PGBIN "/usr/lib/postgresql/15/bin"

/* ---- helpers ------------------------------------------------------------- */

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

/* An obviously fake resident (R9.4); ceased = "" or a YYYY-MM-DD. */
static void
fake(struct resident *r, unsigned i, const char *ceased)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->address_no, sizeof(r->address_no), "A%07u", i);
    make_mynumber(i, r->mynumber);
    snprintf(r->name, sizeof(r->name), "テスト 太郎%u", i);
    snprintf(r->kana, sizeof(r->kana), "テスト タロウ%u", i);
    snprintf(r->birth_date, sizeof(r->birth_date), "19%02u-0%u-1%u", 40 + i % 60,
             1 + i % 9, i % 10);
    snprintf(r->sex, sizeof(r->sex), "%s", i % 2 ? "1" : "2");
    snprintf(r->postcode, sizeof(r->postcode), "1000001");
    snprintf(r->address, sizeof(r->address), "東京都千代田区試験町%u丁目", i);
    snprintf(r->relationship, sizeof(r->relationship), "世帯主");
    snprintf(r->became_date, sizeof(r->became_date), "2001-04-01");
    snprintf(r->ceased_date, sizeof(r->ceased_date), "%s", ceased);
    if (ceased[0] != '\0') {
        snprintf(r->movement_type, sizeof(r->movement_type), "転出");
        snprintf(r->movement_date, sizeof(r->movement_date), "%s", ceased);
    }
}

/* A synthetic vaccination; the details carry the marker "ZQX" so that
 * the at-rest test can look for them. */
static void
fake_vac(struct vaccination *v, int64_t rid, const char *vaccine, int dose,
         const char *date)
{
    memset(v, 0, sizeof(*v));
    v->resident_id = rid;
    snprintf(v->vaccine, sizeof(v->vaccine), "%s", vaccine);
    v->dose = dose;
    snprintf(v->date, sizeof(v->date), "%s", date);
    snprintf(v->lot, sizeof(v->lot), "ZQXLOT%02d", dose);
    snprintf(v->site, sizeof(v->site), "ZQX試験会場");
    snprintf(v->clinic, sizeof(v->clinic), "ZQXテスト医院");
    snprintf(v->doctor, sizeof(v->doctor), "ZQX試験 医師");
    snprintf(v->entered_by, sizeof(v->entered_by), "staff.test");
}

static void
fake_voucher(struct voucher *v, int64_t rid, unsigned no, const char *issued)
{
    memset(v, 0, sizeof(*v));
    snprintf(v->voucher_no, sizeof(v->voucher_no), "%010u", no);
    v->resident_id = rid;
    v->ticket_type = 1;
    snprintf(v->issued_date, sizeof(v->issued_date), "%s", issued);
}

static int64_t
rows_of(struct store_fx *f, const char *table, const char *tenant)
{
    char sql[160];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE tenant_id = '%s'", table,
             tenant);
    return store_fx_raw_int(f, sql);
}

/* ---- fixture ------------------------------------------------------------- */

static int
setup(void **state)
{
    static const char *const tenants[] = { T1, T2 };

    *state = store_fx_new("recs", tenants, 2, 0);
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

static struct store_tenant *
ctx_open(struct store_fx *f, const char *tenant)
{
    struct store_tenant *ctx = NULL;

    assert_int_equal(store_tenant_ctx_open(f->st, tenant, &f->kp, &ctx), STORE_OK);
    return ctx;
}

static int64_t
put(struct store_tenant *ctx, unsigned i, const char *ceased)
{
    struct resident r;
    int64_t id = 0;

    fake(&r, i, ceased);
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &id), STORE_OK);
    assert_true(id > 0);
    return id;
}

static int64_t
vac(struct store_tenant *ctx, int64_t rid, const char *vaccine, int dose, const char *date)
{
    struct vaccination v;
    int64_t id = 0;

    fake_vac(&v, rid, vaccine, dose, date);
    assert_int_equal(store_vaccination_insert(ctx, NULL, &v, &id), STORE_OK);
    assert_true(id > 0);
    return id;
}

/* ---- vouchers (R2.4) -------------------------------------------------------- */

/* R2.4: a voucher number is unique within its tenant and maps to one
 * resident of that tenant; the same number in another tenant is fine. */
static void
test_R2_4_vouchers(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *c1 = ctx_open(f, T1), *c2 = ctx_open(f, T2);
    int64_t a = put(c1, 1, ""), b = put(c1, 2, ""), z = put(c2, 1, "");
    struct voucher v, got, list[4];
    size_t n = 9;

    fake_voucher(&v, a, 42, "2021-05-01");
    assert_int_equal(store_voucher_issue(c1, &v), STORE_OK);
    fake_voucher(&v, a, 7, "2021-03-01");
    assert_int_equal(store_voucher_issue(c1, &v), STORE_OK);
    /* Taken in T1, whoever it would go to. */
    fake_voucher(&v, b, 42, "2021-06-01");
    assert_int_equal(store_voucher_issue(c1, &v), STORE_EXISTS);
    /* Free in T2. */
    fake_voucher(&v, z, 42, "2021-06-01");
    assert_int_equal(store_voucher_issue(c2, &v), STORE_OK);
    /* A resident of another tenant is unknown here (SQLite numbers
     * residents per tenant, so T2 has an id 1 too: use b, id 2). */
    fake_voucher(&v, b, 43, "2021-06-01");
    assert_int_equal(store_voucher_issue(c2, &v), STORE_NOTFOUND);

    assert_int_equal(store_voucher_get(c1, "0000000042", &got), STORE_OK);
    assert_int_equal(got.resident_id, a);
    assert_int_equal(got.ticket_type, 1);
    assert_string_equal(got.issued_date, "2021-05-01");
    assert_false(got.voided);
    assert_int_equal(store_voucher_get(c2, "0000000042", &got), STORE_OK);
    assert_int_equal(got.resident_id, z);
    assert_int_equal(store_voucher_get(c1, "0000000099", &got), STORE_NOTFOUND);
    assert_int_equal(store_voucher_get(c1, "42", &got), STORE_INVALID);

    /* By issue date; max bounds the copy. */
    assert_int_equal(store_vouchers_of(c1, a, list, 4, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].voucher_no, "0000000007");
    assert_string_equal(list[1].voucher_no, "0000000042");
    assert_int_equal(store_vouchers_of(c1, a, list, 1, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_vouchers_of(c1, b, list, 4, &n), STORE_OK);
    assert_int_equal(n, 0);

    /* Validation at the edge: nothing stored. */
    fake_voucher(&v, b, 1, "2021-06-01");
    snprintf(v.voucher_no, sizeof(v.voucher_no), "123456789");
    assert_int_equal(store_voucher_issue(c1, &v), STORE_INVALID);
    snprintf(v.voucher_no, sizeof(v.voucher_no), "12345678a0");
    assert_int_equal(store_voucher_issue(c1, &v), STORE_INVALID);
    fake_voucher(&v, b, 1, "2023-02-29");     /* not a calendar date */
    assert_int_equal(store_voucher_issue(c1, &v), STORE_INVALID);
    fake_voucher(&v, b, 1, "2021-06-01");
    v.ticket_type = 10;
    assert_int_equal(store_voucher_issue(c1, &v), STORE_INVALID);
    assert_int_equal(rows_of(f, "vouchers", T1), 2);
    store_tenant_ctx_close(c1);
    store_tenant_ctx_close(c2);
}

/* ---- vaccinations (R2.3) ------------------------------------------------------ */

/* R2.3: every field comes back; lists are by date then dose. */
static void
test_R2_3_vaccination_roundtrip(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    int64_t rid = put(ctx, 1, ""), id, id2, id3;
    struct vaccination v, got, list[8];
    size_t n;

    fake_vac(&v, rid, "covid-comirnaty", 1, "2021-06-01");
    snprintf(v.voucher_no, sizeof(v.voucher_no), "0000000042");
    assert_int_equal(store_vaccination_insert(ctx, NULL, &v, &id), STORE_OK);
    assert_int_equal(store_vaccination_get(ctx, id, &got), STORE_OK);
    assert_int_equal(got.id, id);
    assert_int_equal(got.resident_id, rid);
    assert_string_equal(got.vaccine, v.vaccine);
    assert_int_equal(got.dose, 1);
    assert_string_equal(got.date, v.date);
    assert_string_equal(got.voucher_no, "0000000042");
    assert_string_equal(got.lot, v.lot);
    assert_string_equal(got.site, v.site);
    assert_string_equal(got.clinic, v.clinic);
    assert_string_equal(got.doctor, v.doctor);
    assert_string_equal(got.entered_by, "staff.test");
    assert_int_equal(strlen(got.entered_at), 24);
    assert_false(got.voided);
    /* Empty details and no voucher are fine. */
    fake_vac(&v, rid, "covid-comirnaty", 3, "2022-01-10");
    v.lot[0] = v.site[0] = v.clinic[0] = v.doctor[0] = '\0';
    assert_int_equal(store_vaccination_insert(ctx, NULL, &v, &id3), STORE_OK);
    assert_int_equal(store_vaccination_get(ctx, id3, &got), STORE_OK);
    assert_string_equal(got.lot, "");
    assert_string_equal(got.doctor, "");
    assert_string_equal(got.voucher_no, "");
    id2 = vac(ctx, rid, "covid-comirnaty", 2, "2021-06-22");
    assert_int_equal(store_vaccinations_of(ctx, rid, list, 8, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].id, id);
    assert_int_equal(list[1].id, id2);
    assert_int_equal(list[2].id, id3);
    assert_string_equal(list[1].clinic, "ZQXテスト医院");
    assert_int_equal(store_vaccinations_of(ctx, rid, list, 2, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_vaccination_get(ctx, id + 100000, &got), STORE_NOTFOUND);
    store_tenant_ctx_close(ctx);
}

/* R2.3: (resident, vaccine, dose) is unique among live rows; a voided
 * row frees it, and un-voiding it then collides. */
static void
test_R2_3_dose_unique_void_frees(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    int64_t rid = put(ctx, 1, ""), other = put(ctx, 2, ""), first, again, cid = 0;
    struct vaccination v, got;

    first = vac(ctx, rid, "covid-comirnaty", 1, "2021-06-01");
    fake_vac(&v, rid, "covid-comirnaty", 1, "2021-07-01");
    assert_int_equal(store_vaccination_insert(ctx, NULL, &v, &again), STORE_EXISTS);
    /* Another vaccine, another resident: free. */
    (void)vac(ctx, rid, "covid-spikevax", 1, "2021-06-01");
    (void)vac(ctx, other, "covid-comirnaty", 1, "2021-06-01");
    /* Void the first by a correction: the dose may be entered again. */
    assert_int_equal(store_vaccination_get(ctx, first, &got), STORE_OK);
    got.voided = true;
    assert_int_equal(store_vaccination_correct(ctx, first, &got, "staff.admin",
                                               "entered twice", &cid), STORE_OK);
    assert_true(cid > 0);
    assert_int_equal(store_vaccination_insert(ctx, NULL, &v, &again), STORE_OK);
    assert_int_equal(store_vaccination_get(ctx, first, &got), STORE_OK);
    assert_true(got.voided);
    got.voided = false;
    assert_int_equal(store_vaccination_correct(ctx, first, &got, "staff.admin",
                                               "undo", NULL), STORE_EXISTS);
    assert_int_equal(store_vaccination_get(ctx, first, &got), STORE_OK);
    assert_true(got.voided);        /* the refused correction changed nothing */
    assert_int_equal(rows_of(f, "corrections", T1), 1);
    store_tenant_ctx_close(ctx);
}

/* R9.6 for vaccinations: a retried insert with its idempotency key gets
 * the first id and writes nothing; keys are per tenant and per operation. */
static void
test_R2_3_idempotent_insert(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *c1 = ctx_open(f, T1), *c2 = ctx_open(f, T2);
    int64_t rid = put(c1, 1, ""), rid2 = put(c2, 1, ""), a = 0, b = 0, c = 0;
    struct vaccination v;
    struct resident r;

    fake_vac(&v, rid, "covid-comirnaty", 1, "2021-06-01");
    assert_int_equal(store_vaccination_insert(c1, "vac-0001", &v, &a), STORE_OK);
    assert_int_equal(store_vaccination_insert(c1, "vac-0001", &v, &b), STORE_OK);
    assert_int_equal(a, b);
    assert_int_equal(rows_of(f, "vaccinations", T1), 1);
    /* Without the key the retry is a duplicate dose. */
    assert_int_equal(store_vaccination_insert(c1, NULL, &v, &c), STORE_EXISTS);
    /* A key used for a resident is not a vaccination's. */
    fake(&r, 9, "");
    assert_int_equal(store_resident_insert(c1, "res-0001", &r, &c), STORE_OK);
    fake_vac(&v, rid, "covid-comirnaty", 2, "2021-07-01");
    assert_int_equal(store_vaccination_insert(c1, "res-0001", &v, &c), STORE_EXISTS);
    /* The same key in another tenant is another key. */
    fake_vac(&v, rid2, "covid-comirnaty", 1, "2021-06-01");
    assert_int_equal(store_vaccination_insert(c2, "vac-0001", &v, &c), STORE_OK);
    assert_int_equal(rows_of(f, "vaccinations", T2), 1);
    assert_int_equal(store_vaccination_insert(c1, "bad key!", &v, &c), STORE_INVALID);
    store_tenant_ctx_close(c1);
    store_tenant_ctx_close(c2);
}

/* R2.3: validation at the edge; nothing invalid is stored. */
static void
test_R2_3_validation(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    int64_t rid = put(ctx, 1, ""), id;
    struct vaccination v;

#define BAD(stmt) \
    do { \
        fake_vac(&v, rid, "covid-comirnaty", 1, "2021-06-01"); \
        stmt; \
        assert_int_equal(store_vaccination_insert(ctx, NULL, &v, &id), STORE_INVALID); \
    } while (0)
    BAD(snprintf(v.voucher_no, sizeof(v.voucher_no), "123456789"));
    BAD(memcpy(v.voucher_no, "12345\xef\xbc\x96", 9));   /* a full-width digit */
    BAD(snprintf(v.lot, sizeof(v.lot), "ABC_12"));
    BAD(snprintf(v.lot, sizeof(v.lot), "AB 12"));
    BAD(memset(v.lot, 'A', sizeof(v.lot)));                           /* unterminated */
    BAD(v.dose = 0);
    BAD(v.dose = 100);
    BAD(snprintf(v.date, sizeof(v.date), "2023-02-29"));
    BAD(snprintf(v.date, sizeof(v.date), "2021-04-31"));
    BAD(snprintf(v.date, sizeof(v.date), "2021-6-1"));
    BAD(v.date[0] = '\0');
    BAD(snprintf(v.vaccine, sizeof(v.vaccine), "Covid-Comirnaty"));
    BAD(memset(v.vaccine, 'a', 31); v.vaccine[31] = 'a');
    BAD(v.vaccine[0] = '\0');
    BAD(snprintf(v.site, sizeof(v.site), "site\nname"));
    BAD(snprintf(v.clinic, sizeof(v.clinic), "\xff\xfe"));
    BAD(memset(v.doctor, 'x', sizeof(v.doctor)));
    BAD(v.entered_by[0] = '\0');
    BAD(snprintf(v.entered_by, sizeof(v.entered_by), "staff one"));
    BAD(v.resident_id = 0);
#undef BAD
    /* The boundaries that are fine. */
    fake_vac(&v, rid, "covid-comirnaty", 99, "2024-02-29");
    snprintf(v.lot, sizeof(v.lot), "ABCDEFGHIJ012345678-");
    memset(v.vaccine, 'a', 31);
    v.vaccine[31] = '\0';
    assert_int_equal(store_vaccination_insert(ctx, NULL, &v, &id), STORE_OK);
    /* An unknown resident is not found, not invalid. */
    fake_vac(&v, rid + 1000, "covid-comirnaty", 1, "2021-06-01");
    assert_int_equal(store_vaccination_insert(ctx, NULL, &v, &id), STORE_NOTFOUND);
    assert_int_equal(rows_of(f, "vaccinations", T1), 1);
    store_tenant_ctx_close(ctx);
}

/* ---- tenant isolation (R1.1) ----------------------------------------------------- */

static int
count_res(const struct resident *r, void *arg)
{
    (void)r;
    (*(size_t *)arg)++;
    return 0;
}

static int
count_vac(const struct vaccination *v, void *arg)
{
    (void)v;
    (*(size_t *)arg)++;
    return 0;
}

static int
count_corr(const struct correction *c, void *arg)
{
    (void)c;
    (*(size_t *)arg)++;
    return 0;
}

static int
count_addr(const char *a, void *arg)
{
    (void)a;
    (*(size_t *)arg)++;
    return 0;
}

/* R1.1: tenant B's context cannot get, list, correct or purge tenant A's
 * rows: every call answers NOTFOUND (or finds nothing), and A's rows
 * are unchanged. */
static void
test_R1_1_tenant_isolation(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *a = ctx_open(f, T1), *b = ctx_open(f, T2);
    int64_t rid = put(a, 1, "2001-01-31"), vid = vac(a, rid, "covid-comirnaty", 1,
                                                    "2000-06-01"), id, last;
    struct vaccination v, vl[4];
    struct voucher vo, vol[4];
    struct resident r;
    uint8_t sha[32] = { 1 };
    char when[STORE_TS_LEN];
    size_t n = 0, seen = 0, del = 9;

    fake_voucher(&vo, rid, 42, "2000-05-01");
    assert_int_equal(store_voucher_issue(a, &vo), STORE_OK);
    assert_int_equal(store_vaccination_get(a, vid, &v), STORE_OK);
    assert_int_equal(store_vaccination_correct(a, vid, &v, "staff.a", "check", NULL),
                     STORE_OK);
    assert_int_equal(store_import_record(a, sha, "vouchers", 1, "staff.a"), STORE_OK);

    assert_int_equal(store_vaccination_get(b, vid, &v), STORE_NOTFOUND);
    assert_int_equal(store_vaccinations_of(b, rid, vl, 4, &n), STORE_NOTFOUND);
    assert_int_equal(store_vouchers_of(b, rid, vol, 4, &n), STORE_NOTFOUND);
    assert_int_equal(store_voucher_get(b, "0000000042", &vo), STORE_NOTFOUND);
    assert_int_equal(store_resident_id(b, "A0000001", &id), STORE_NOTFOUND);
    assert_int_equal(store_corrections_of(b, STORE_OBJ_VACCINATION, vid, count_corr,
                                          &seen), STORE_NOTFOUND);
    assert_int_equal(store_corrections_of(b, STORE_OBJ_RESIDENT, rid, count_corr, &seen),
                     STORE_NOTFOUND);
    fake(&r, 1, "");
    assert_int_equal(store_resident_correct(b, rid, &r, "staff.b", "take over", NULL),
                     STORE_NOTFOUND);
    fake_vac(&v, rid, "covid-comirnaty", 1, "2000-06-01");
    assert_int_equal(store_vaccination_correct(b, vid, &v, "staff.b", "take", NULL),
                     STORE_NOTFOUND);
    assert_int_equal(store_vaccination_insert(b, NULL, &v, &id), STORE_NOTFOUND);
    assert_int_equal(store_import_seen(b, sha, when), STORE_NOTFOUND);
    assert_int_equal(store_resident_walk(b, 0, 100, false, count_res, &seen, &last, &n),
                     STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_vaccination_walk(b, 0, 100, count_vac, &seen, &last, &n),
                     STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_retention_purge(b, "2030-01", 100, count_addr, &seen, &del),
                     STORE_OK);
    assert_int_equal(del, 0);
    assert_int_equal(seen, 0);
    /* A's rows are all still there and readable. */
    assert_int_equal(store_vaccination_get(a, vid, &v), STORE_OK);
    assert_int_equal(rows_of(f, "vouchers", T1), 1);
    assert_int_equal(rows_of(f, "corrections", T1), 1);
    assert_int_equal(rows_of(f, "residents", T1), 1);
    store_tenant_ctx_close(a);
    store_tenant_ctx_close(b);
}

/* ---- corrections (R2.9) ----------------------------------------------------------- */

struct corr_seen {
    size_t n;
    char   actor[2][STORE_ACTOR_MAX];
    char   reason[2][STORE_REASON_MAX];
    char   at[2][STORE_TS_LEN];
    char   before[2][4096];
    char   after[2][4096];
    int64_t id[2];
};

static int
keep_corr(const struct correction *c, void *arg)
{
    struct corr_seen *s = arg;

    if (s->n < 2) {
        snprintf(s->actor[s->n], sizeof(s->actor[0]), "%s", c->actor);
        snprintf(s->reason[s->n], sizeof(s->reason[0]), "%s", c->reason);
        snprintf(s->at[s->n], sizeof(s->at[0]), "%s", c->at);
        snprintf(s->before[s->n], sizeof(s->before[0]), "%s", c->before_json);
        snprintf(s->after[s->n], sizeof(s->after[0]), "%s", c->after_json);
        s->id[s->n] = c->id;
    }
    s->n++;
    return 0;
}

/* R2.9: a resident corrected by authority: the new fields are read back
 * and searchable, and the history keeps who, when, why, before and after
 * (oldest first).  The address number cannot change. */
static void
test_R2_9_resident_correction(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    int64_t rid = put(ctx, 1, ""), cid = 0, cid2 = 0, ids[4];
    struct resident r, got;
    struct corr_seen *seen = calloc(1, sizeof(*seen));
    size_t n;

    assert_non_null(seen);
    fake(&r, 1, "2022-03-31");
    snprintf(r.name, sizeof(r.name), "テスト 花子");
    assert_int_equal(store_resident_correct(ctx, rid, &r, "staff.admin",
                                            "氏名の誤記訂正", &cid), STORE_OK);
    assert_int_equal(store_resident_get(ctx, rid, &got), STORE_OK);
    assert_string_equal(got.name, "テスト 花子");
    assert_string_equal(got.ceased_date, "2022-03-31");
    /* The blind index follows: the new name is found, the old one not. */
    assert_int_equal(store_resident_find_name_dob(ctx, "テスト花子", r.birth_date, ids, 4,
                                                  &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_resident_find_name_dob(ctx, "テスト太郎1", r.birth_date, ids, 4,
                                                  &n), STORE_OK);
    assert_int_equal(n, 0);
    /* And the clear ceased_ym (R2.5): no longer current. */
    assert_int_equal(
        store_fx_raw_int(f, "SELECT count(*) FROM residents WHERE ceased_ym = '2022-03'"), 1);
    snprintf(r.address, sizeof(r.address), "東京都千代田区訂正町1丁目");
    assert_int_equal(store_resident_correct(ctx, rid, &r, "staff.second",
                                            "住所の訂正", &cid2), STORE_OK);
    assert_true(cid2 != cid);
    assert_int_equal(store_corrections_of(ctx, STORE_OBJ_RESIDENT, rid, keep_corr, seen),
                     STORE_OK);
    assert_int_equal(seen->n, 2);
    assert_int_equal(seen->id[0], cid);
    assert_string_equal(seen->actor[0], "staff.admin");
    assert_string_equal(seen->reason[0], "氏名の誤記訂正");
    assert_string_equal(seen->actor[1], "staff.second");
    assert_int_equal(strlen(seen->at[0]), 24);
    assert_non_null(strstr(seen->before[0], "\"name\":\"テスト 太郎1\""));
    assert_non_null(strstr(seen->after[0], "\"name\":\"テスト 花子\""));
    assert_non_null(strstr(seen->before[0], "\"ceased_date\":\"\""));
    assert_non_null(strstr(seen->after[0], "\"ceased_date\":\"2022-03-31\""));
    assert_non_null(strstr(seen->before[1], "試験町1丁目"));
    assert_non_null(strstr(seen->after[1], "訂正町1丁目"));
    /* The address number is the record's identity. */
    snprintf(r.address_no, sizeof(r.address_no), "A9999999");
    assert_int_equal(store_resident_correct(ctx, rid, &r, "staff.admin", "x", NULL),
                     STORE_INVALID);
    fake(&r, 1, "");
    assert_int_equal(store_resident_correct(ctx, rid, &r, "staff.admin", "", NULL),
                     STORE_INVALID);     /* R2.9: why is required */
    assert_int_equal(store_resident_correct(ctx, rid, &r, "", "x", NULL), STORE_INVALID);
    assert_int_equal(rows_of(f, "corrections", T1), 2);
    free(seen);
    store_tenant_ctx_close(ctx);
}

/* R2.9: a vaccination corrected: the fields change, who entered it
 * stays, the history has both images; it stays with its resident. */
static void
test_R2_9_vaccination_correction(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    int64_t rid = put(ctx, 1, ""), other = put(ctx, 2, ""), vid, cid = 0;
    struct vaccination v, got;
    struct corr_seen *seen = calloc(1, sizeof(*seen));

    assert_non_null(seen);
    vid = vac(ctx, rid, "covid-comirnaty", 1, "2021-06-01");
    assert_int_equal(store_vaccination_get(ctx, vid, &v), STORE_OK);
    snprintf(v.lot, sizeof(v.lot), "FIXED-01");
    v.dose = 2;
    snprintf(v.entered_by, sizeof(v.entered_by), "someone.else");
    assert_int_equal(store_vaccination_correct(ctx, vid, &v, "staff.admin", "ロット誤記",
                                               &cid), STORE_OK);
    assert_int_equal(store_vaccination_get(ctx, vid, &got), STORE_OK);
    assert_string_equal(got.lot, "FIXED-01");
    assert_int_equal(got.dose, 2);
    assert_string_equal(got.entered_by, "staff.test");
    assert_int_equal(store_corrections_of(ctx, STORE_OBJ_VACCINATION, vid, keep_corr, seen),
                     STORE_OK);
    assert_int_equal(seen->n, 1);
    assert_int_equal(seen->id[0], cid);
    assert_string_equal(seen->reason[0], "ロット誤記");
    assert_non_null(strstr(seen->before[0], "\"lot\":\"ZQXLOT01\""));
    assert_non_null(strstr(seen->before[0], "\"dose\":1"));
    assert_non_null(strstr(seen->after[0], "\"lot\":\"FIXED-01\""));
    assert_non_null(strstr(seen->after[0], "\"dose\":2"));
    assert_non_null(strstr(seen->after[0], "\"entered_by\":\"staff.test\""));
    v.resident_id = other;
    assert_int_equal(store_vaccination_correct(ctx, vid, &v, "staff.admin", "move", NULL),
                     STORE_INVALID);
    assert_int_equal(store_vaccination_correct(ctx, vid + 1000, &got, "staff.admin", "x",
                                               NULL), STORE_NOTFOUND);
    /* The resident's own history is separate. */
    seen->n = 0;
    assert_int_equal(store_corrections_of(ctx, STORE_OBJ_RESIDENT, rid, keep_corr, seen),
                     STORE_OK);
    assert_int_equal(seen->n, 0);
    free(seen);
    store_tenant_ctx_close(ctx);
}

/* A resident at every field's maximum, escaped to the worst: its image
 * is longer than one field may be, so it is sealed in segments. */
static void
test_R2_9_large_image(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    int64_t rid = put(ctx, 1, "");
    struct resident r;
    struct corr_seen *seen = calloc(1, sizeof(*seen));
    char cmp[4096];

    assert_non_null(seen);
    fake(&r, 1, "");
    memset(r.address, '"', sizeof(r.address) - 1);      /* escaped: 2 bytes each */
    r.address[sizeof(r.address) - 1] = '\0';
    memset(r.prev_address, '\x01', sizeof(r.prev_address) - 1);   /* 6 bytes each */
    r.prev_address[sizeof(r.prev_address) - 1] = '\0';
    memset(r.next_address, '\\', sizeof(r.next_address) - 1);
    r.next_address[sizeof(r.next_address) - 1] = '\0';
    memset(r.alias, 'x', sizeof(r.alias) - 1);
    r.alias[sizeof(r.alias) - 1] = '\0';
    assert_int_equal(store_resident_correct(ctx, rid, &r, "staff.admin", "long", NULL),
                     STORE_OK);
    assert_int_equal(store_corrections_of(ctx, STORE_OBJ_RESIDENT, rid, keep_corr, seen),
                     STORE_OK);
    assert_int_equal(seen->n, 1);
    /* keep_corr keeps 4 KiB: the start of the after image, which has the
     * alias intact and the address escaped. */
    snprintf(cmp, sizeof(cmp), "\"address\":\"\\\"\\\"\\\"");
    assert_non_null(strstr(seen->after[0], cmp));
    assert_true(store_fx_raw_int(f, "SELECT max(length(after_ct)) FROM corrections") > 2 * 2048);
    free(seen);
    store_tenant_ctx_close(ctx);
}

/* ---- at rest (R1.4) ---------------------------------------------------------------- */

static bool
contains(const char *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle)) != NULL;
}

static void
assert_absent(const char *hay, size_t n, const char *needle)
{
    char hex[512];

    if (contains(hay, n, needle))
        fail_msg("plaintext at rest: %s", needle);
    assert_int_equal(util_hex_encode((const uint8_t *)needle, strlen(needle), hex,
                                     sizeof(hex)), 0);
    if (contains(hay, n, hex))
        fail_msg("hex plaintext at rest: %s", needle);
}

static void
read_or_empty(const char *path, char **buf, size_t *len)
{
    if (util_read_file(path, 1u << 30, buf, len) != 0) {
        assert_int_equal(errno, ENOENT);
        *buf = calloc(1, 1);
        *len = 0;
    }
}

static void
assert_no_details(const char *buf, size_t len)
{
    assert_absent(buf, len, "ZQX");          /* lot, site, clinic, doctor */
    assert_absent(buf, len, "テスト");        /* names in correction images */
    assert_absent(buf, len, "花子");
    assert_absent(buf, len, "誤記");          /* the reason */
    assert_absent(buf, len, "\"lot\"");      /* any JSON image */
}

/* R1.4, R2.9: the details and the before/after images are ciphertext in
 * the SQLite file and its WAL, and in a pg_dump; the clear columns are
 * there (the probe works). */
static void
test_R1_4_records_not_plaintext(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    int64_t rid = put(ctx, 1, ""), vid = vac(ctx, rid, "covid-comirnaty", 1, "2021-06-01");
    struct resident r;
    struct vaccination v;
    char path[300], *buf;
    size_t len;

    fake(&r, 1, "");
    snprintf(r.name, sizeof(r.name), "テスト 花子");
    assert_int_equal(store_resident_correct(ctx, rid, &r, "staff.admin", "氏名の誤記",
                                            NULL), STORE_OK);
    assert_int_equal(store_vaccination_get(ctx, vid, &v), STORE_OK);
    v.dose = 2;
    assert_int_equal(store_vaccination_correct(ctx, vid, &v, "staff.admin", "回数の誤記",
                                               NULL), STORE_OK);
    store_tenant_ctx_close(ctx);
    if (store_fx_backend() == STORE_BACKEND_SQLITE) {
        const char *files[] = { "store.db", "store.db-wal" };
        bool probe = false;
        for (size_t i = 0; i < 2; i++) {
            snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
            read_or_empty(path, &buf, &len);
            probe |= contains(buf, len, "covid-comirnaty");
            assert_no_details(buf, len);
            free(buf);
        }
        assert_true(probe);
    } else {
        char cmd[1600];
        snprintf(path, sizeof(path), "%s/dump.sql", f->dir);
        snprintf(cmd, sizeof(cmd), PGBIN "/pg_dump -d \"%s\" -n %s -f %s",
                 store_fx_pg_base(), f->schema, path);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(util_read_file(path, 1u << 30, &buf, &len), 0);
        assert_true(contains(buf, len, "covid-comirnaty"));
        assert_true(contains(buf, len, "staff.admin"));
        assert_no_details(buf, len);
        free(buf);
    }
}

/* R1.1, R1.4: a details ciphertext moved to another row, or a whole row
 * copied into another tenant, fails to decrypt (STORE_KEY); so does a
 * correction image moved to another correction. */
static void
test_R1_4_moved_ciphertext(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *c1 = ctx_open(f, T1), *c2 = ctx_open(f, T2);
    int64_t rid = put(c1, 1, ""), rid2 = put(c2, 1, "");
    int64_t a = vac(c1, rid, "covid-comirnaty", 1, "2021-06-01");
    int64_t b = vac(c1, rid, "covid-comirnaty", 2, "2021-07-01");
    int64_t c = vac(c1, rid, "covid-comirnaty", 3, "2022-01-01");
    struct vaccination v, list[4];
    struct resident r;
    char sql[1024];
    size_t n, seen = 0;
    int64_t ca = 0, cb = 0, last;

    snprintf(sql, sizeof(sql), "UPDATE vaccinations SET details_ct = (SELECT details_ct "
             "FROM vaccinations WHERE vaccination_id = %lld) WHERE vaccination_id = %lld",
             (long long)a, (long long)b);
    store_fx_raw_exec(f, sql);
    assert_int_equal(store_vaccination_get(c1, b, &v), STORE_KEY);
    assert_int_equal(store_vaccinations_of(c1, rid, list, 4, &n), STORE_KEY);
    assert_int_equal(store_vaccination_walk(c1, 0, 10, count_vac, &seen, &last, &n),
                     STORE_KEY);
    assert_int_equal(n, 1);         /* a was passed; b stopped the walk */
    assert_int_equal(last, a);
    assert_int_equal(store_vaccination_get(c1, a, &v), STORE_OK);
    /* The whole row c under tenant T2, for T2's resident. */
    snprintf(sql, sizeof(sql), "INSERT INTO vaccinations (tenant_id, vaccination_id, "
             "resident_id, vaccine, dose, vaccinated_on, voucher_no, entered_by, entered_at, "
             "voided, key_version, details_ct) SELECT '" T2 "', vaccination_id, %lld, "
             "vaccine, dose, vaccinated_on, voucher_no, entered_by, entered_at, voided, "
             "key_version, details_ct FROM vaccinations WHERE vaccination_id = %lld",
             (long long)rid2, (long long)c);
    store_fx_raw_exec(f, sql);
    assert_int_equal(store_vaccination_get(c2, c, &v), STORE_KEY);
    /* A correction's before image moved to another correction. */
    fake(&r, 1, "");
    snprintf(r.name, sizeof(r.name), "テスト 一");
    assert_int_equal(store_resident_correct(c1, rid, &r, "staff.a", "one", &ca), STORE_OK);
    snprintf(r.name, sizeof(r.name), "テスト 二");
    assert_int_equal(store_resident_correct(c1, rid, &r, "staff.a", "two", &cb), STORE_OK);
    assert_int_equal(store_corrections_of(c1, STORE_OBJ_RESIDENT, rid, count_corr, &seen),
                     STORE_OK);
    snprintf(sql, sizeof(sql), "UPDATE corrections SET before_ct = (SELECT before_ct FROM "
             "corrections WHERE correction_id = %lld) WHERE correction_id = %lld",
             (long long)ca, (long long)cb);
    store_fx_raw_exec(f, sql);
    assert_int_equal(store_corrections_of(c1, STORE_OBJ_RESIDENT, rid, count_corr, &seen),
                     STORE_KEY);
    store_tenant_ctx_close(c1);
    store_tenant_ctx_close(c2);
}

/* ---- bulk imports (R2.6) --------------------------------------------------------- */

/* R2.6: inside a bulk transaction every write joins it: nothing is
 * visible to another context until the commit, then everything is; the
 * import's own reads see its rows. */
static void
test_R2_6_bulk_commit(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1), *other = ctx_open(f, T1);
    struct resident rs[5];
    struct vaccination vs[5];
    struct voucher vo;
    int64_t ids[5], vids[5], id, one = 0;
    uint8_t sha[32];
    char when[STORE_TS_LEN];

    memset(sha, 7, sizeof(sha));
    for (unsigned i = 0; i < 5; i++)
        fake(&rs[i], 10 + i, "");
    assert_int_equal(store_bulk_begin(ctx), STORE_OK);
    assert_int_equal(store_bulk_begin(ctx), STORE_DENIED);     /* one at a time */
    assert_int_equal(store_resident_insert_batch(ctx, rs, 5, ids), STORE_OK);
    fake(&rs[0], 20, "");
    assert_int_equal(store_resident_insert(ctx, "bulk-res-1", &rs[0], &one), STORE_OK);
    assert_int_equal(store_resident_insert(ctx, "bulk-res-1", &rs[0], &id), STORE_OK);
    assert_int_equal(id, one);      /* a replay inside the bulk: same id */
    /* Reads inside see the import's rows; another context does not. */
    assert_int_equal(store_resident_id(ctx, "A0000012", &id), STORE_OK);
    assert_int_equal(id, ids[2]);
    assert_int_equal(store_resident_id(other, "A0000012", &id), STORE_NOTFOUND);
    for (unsigned i = 0; i < 5; i++)
        fake_vac(&vs[i], ids[i], "covid-comirnaty", 1, "2021-06-01");
    assert_int_equal(store_vaccination_insert_batch(ctx, vs, 5, vids), STORE_OK);
    fake_voucher(&vo, ids[0], 1234, "2021-05-01");
    assert_int_equal(store_voucher_issue(ctx, &vo), STORE_OK);
    assert_int_equal(store_import_record(ctx, sha, "vaccinations", 5, "staff.import"),
                     STORE_OK);
    assert_int_equal(store_import_seen(other, sha, when), STORE_NOTFOUND);
    assert_int_equal(store_bulk_commit(ctx), STORE_OK);
    assert_int_equal(store_bulk_commit(ctx), STORE_DENIED);    /* none open */
    assert_int_equal(rows_of(f, "residents", T1), 6);
    assert_int_equal(rows_of(f, "vaccinations", T1), 5);
    assert_int_equal(store_resident_id(other, "A0000012", &id), STORE_OK);
    assert_int_equal(store_import_seen(other, sha, when), STORE_OK);
    assert_int_equal(strlen(when), 24);
    assert_int_equal(store_import_record(other, sha, "vaccinations", 5, "staff.import"),
                     STORE_EXISTS);
    /* Back to one transaction per call. */
    (void)put(ctx, 30, "");
    assert_int_equal(rows_of(f, "residents", T1), 7);
    store_tenant_ctx_close(ctx);
    store_tenant_ctx_close(other);
}

/* R2.6: abort leaves nothing, and the context works normally after. */
static void
test_R2_6_bulk_abort(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    int64_t rid, id;
    struct vaccination v;

    assert_int_equal(store_bulk_begin(ctx), STORE_OK);
    rid = put(ctx, 1, "");
    fake_vac(&v, rid, "covid-comirnaty", 1, "2021-06-01");
    assert_int_equal(store_vaccination_insert(ctx, "k-1", &v, &id), STORE_OK);
    store_bulk_abort(ctx);
    assert_int_equal(rows_of(f, "residents", T1), 0);
    assert_int_equal(rows_of(f, "vaccinations", T1), 0);
    assert_int_equal(rows_of(f, "idempotency", T1), 0);
    rid = put(ctx, 1, "");
    (void)vac(ctx, rid, "covid-comirnaty", 1, "2021-06-01");
    assert_int_equal(rows_of(f, "vaccinations", T1), 1);
    /* An open bulk transaction is rolled back when the context closes. */
    assert_int_equal(store_bulk_begin(ctx), STORE_OK);
    (void)put(ctx, 2, "");
    store_tenant_ctx_close(ctx);
    assert_int_equal(rows_of(f, "residents", T1), 1);
}

/* R2.6: one failing call inside the bulk transaction rolls back all of
 * it, the calls before included, and later writes are refused until the
 * caller ends the bulk mode; nothing lands one by one. */
static void
test_R2_6_bulk_failure_aborts_all(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    struct voucher vo;
    struct vaccination v;
    int64_t rid, id;

    /* A taken voucher number (a backend constraint). */
    assert_int_equal(store_bulk_begin(ctx), STORE_OK);
    rid = put(ctx, 1, "");
    (void)vac(ctx, rid, "covid-comirnaty", 1, "2021-06-01");
    fake_voucher(&vo, rid, 5, "2021-05-01");
    assert_int_equal(store_voucher_issue(ctx, &vo), STORE_OK);
    assert_int_equal(store_voucher_issue(ctx, &vo), STORE_EXISTS);
    fake_vac(&v, rid, "covid-comirnaty", 2, "2021-07-01");
    assert_int_equal(store_vaccination_insert(ctx, NULL, &v, &id), STORE_DENIED);
    assert_int_equal(store_bulk_commit(ctx), STORE_DENIED);
    assert_int_equal(rows_of(f, "residents", T1), 0);
    assert_int_equal(rows_of(f, "vaccinations", T1), 0);
    assert_int_equal(rows_of(f, "vouchers", T1), 0);
    /* Bad input (refused before any SQL) counts as a failure too. */
    assert_int_equal(store_bulk_begin(ctx), STORE_OK);
    rid = put(ctx, 1, "");
    fake_vac(&v, rid, "covid-comirnaty", 0, "2021-07-01");
    assert_int_equal(store_vaccination_insert_batch(ctx, &v, 1, NULL), STORE_INVALID);
    store_bulk_abort(ctx);
    assert_int_equal(rows_of(f, "residents", T1), 0);
    /* An unknown resident in a batch: the batch and what came before. */
    assert_int_equal(store_bulk_begin(ctx), STORE_OK);
    rid = put(ctx, 1, "");
    fake_vac(&v, rid + 1000, "covid-comirnaty", 1, "2021-07-01");
    assert_int_equal(store_vaccination_insert_batch(ctx, &v, 1, NULL), STORE_NOTFOUND);
    store_bulk_abort(ctx);
    assert_int_equal(rows_of(f, "residents", T1), 0);
    /* And the context is usable again. */
    (void)put(ctx, 1, "");
    assert_int_equal(rows_of(f, "residents", T1), 1);
    store_tenant_ctx_close(ctx);
}

static off_t
file_size(const char *dir, const char *name)
{
    char path[200];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 ? st.st_size : 0;
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Private memory (RssAnon: shared buffers not counted) of the store's
 * PostgreSQL backend, in KiB; -1 if /proc does not tell us. */
static long
pg_backend_rss(struct store_fx *f)
{
    char sql[200], path[64], line[128];
    long pid, kb = -1;
    FILE *fp;

    snprintf(sql, sizeof(sql), "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE "
             "application_name = '%s' AND state LIKE 'idle in transaction%%'", f->schema);
    pid = (long)store_fx_raw_int(f, sql);
    snprintf(path, sizeof(path), "/proc/%ld/status", pid);
    if (pid <= 0 || (fp = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (sscanf(line, "RssAnon: %ld", &kb) == 1)
            break;
    fclose(fp);
    return kb;
}

/* R2.6: a large import in one transaction, in batches of 1,000 rows
 * (residents, then a vaccination each): all visible after the commit,
 * and the SQLite WAL that held it is truncated afterwards. */
static void
test_R2_6_bulk_large(void **state)
{
    BEGIN_CASE(f);
    const char *env = getenv("MAMORI_TEST_BULK_ROWS");
    size_t total = env != NULL ? strtoul(env, NULL, 10) : 20000, batch = 1000;
    struct store_tenant *ctx = ctx_open(f, T1);
    struct resident *rs = calloc(batch, sizeof(*rs));
    struct vaccination *vs = calloc(batch, sizeof(*vs));
    int64_t *ids = calloc(batch, sizeof(*ids));
    double t0 = now_s(), t1;
    off_t wal = 0;
    long rss_first = -1, rss_max = -1;

    assert_true(rs != NULL && vs != NULL && ids != NULL && total > 0);
    assert_int_equal(store_bulk_begin(ctx), STORE_OK);
    for (size_t base = 0; base < total; base += batch) {
        size_t k = total - base < batch ? total - base : batch;
        for (size_t i = 0; i < k; i++)
            fake(&rs[i], (unsigned)(base + i), "");
        assert_int_equal(store_resident_insert_batch(ctx, rs, k, ids), STORE_OK);
        for (size_t i = 0; i < k; i++)
            fake_vac(&vs[i], ids[i], "covid-comirnaty", 1, "2021-06-01");
        assert_int_equal(store_vaccination_insert_batch(ctx, vs, k, NULL), STORE_OK);
        if (store_fx_backend() == STORE_BACKEND_POSTGRESQL && (base / batch) % 50 == 0) {
            long rss = pg_backend_rss(f);
            rss_first = base == 0 ? rss : rss_first;
            rss_max = rss > rss_max ? rss : rss_max;
        }
    }
    if (store_fx_backend() == STORE_BACKEND_SQLITE)
        wal = file_size(f->dir, "store.db-wal");
    t1 = now_s();
    assert_int_equal(store_bulk_commit(ctx), STORE_OK);
    fprintf(stderr, "bulk %s: %zu residents + %zu vaccinations in one transaction: "
            "%.1f s writing (%.0f rows/s), commit %.1f s",
            store_fx_backend() == STORE_BACKEND_SQLITE ? "sqlite" : "postgresql", total, total,
            t1 - t0, 2.0 * (double)total / (t1 - t0), now_s() - t1);
    if (store_fx_backend() == STORE_BACKEND_SQLITE)
        fprintf(stderr, ", WAL before commit %lld MiB, after %lld bytes, db %lld MiB\n",
                (long long)wal >> 20, (long long)file_size(f->dir, "store.db-wal"),
                (long long)file_size(f->dir, "store.db") >> 20);
    else
        fprintf(stderr, ", backend private memory %ld KiB after the first batch, "
                "%ld KiB at most\n", rss_first, rss_max);
    assert_int_equal(rows_of(f, "residents", T1), (int64_t)total);
    assert_int_equal(rows_of(f, "vaccinations", T1), (int64_t)total);
    if (store_fx_backend() == STORE_BACKEND_SQLITE) {
        assert_true(wal > 0);
        assert_int_equal(file_size(f->dir, "store.db-wal"), 0);
    }
    free(rs);
    free(vs);
    free(ids);
    store_tenant_ctx_close(ctx);
}

/* ---- imports (R2.6) ------------------------------------------------------------- */

static void
test_R2_6_import_records(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *c1 = ctx_open(f, T1), *c2 = ctx_open(f, T2);
    uint8_t sha[32];
    char when[STORE_TS_LEN];

    memset(sha, 0xab, sizeof(sha));
    assert_int_equal(store_import_seen(c1, sha, when), STORE_NOTFOUND);
    assert_int_equal(store_import_record(c1, sha, "residents", 3, "staff.import"),
                     STORE_OK);
    assert_int_equal(store_import_seen(c1, sha, when), STORE_OK);
    assert_int_equal(store_import_record(c1, sha, "residents", 3, "staff.import"),
                     STORE_EXISTS);
    /* The same file in another tenant is another import. */
    assert_int_equal(store_import_seen(c2, sha, when), STORE_NOTFOUND);
    assert_int_equal(store_import_record(c2, sha, "vouchers", 0, "staff.import"), STORE_OK);
    sha[0] = 1;
    assert_int_equal(store_import_record(c1, sha, "people", 3, "staff.import"),
                     STORE_INVALID);
    assert_int_equal(store_import_record(c1, sha, "residents", 3, ""), STORE_INVALID);
    store_tenant_ctx_close(c1);
    store_tenant_ctx_close(c2);
}

/* ---- retention (R2.10) -------------------------------------------------------------- */

struct addrs {
    size_t n;
    char   a[8][STORE_ADDRNO_MAX];
    int    refuse;
};

static int
keep_addr(const char *address_no, void *arg)
{
    struct addrs *s = arg;

    if (s->n < 8)
        snprintf(s->a[s->n], sizeof(s->a[0]), "%s", address_no);
    s->n++;
    return s->refuse;
}

/* R2.10: only residents who ceased before the month are deleted, with
 * their vouchers, vaccinations, corrections and idempotency keys; the
 * caller gets each address number before the commit and may stop it. */
static void
test_R2_10_retention(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    int64_t old1 = put(ctx, 1, "2010-03-31"), old2 = put(ctx, 2, "2014-12-01");
    int64_t edge = put(ctx, 3, "2015-01-01"), cur = put(ctx, 4, ""), vid, id;
    struct addrs got = { 0 };
    struct voucher vo;
    struct vaccination v;
    struct resident r;
    size_t del = 9;

    (void)edge;
    fake_voucher(&vo, old1, 1, "2009-05-01");
    assert_int_equal(store_voucher_issue(ctx, &vo), STORE_OK);
    fake_vac(&v, old1, "covid-comirnaty", 1, "2009-06-01");
    assert_int_equal(store_vaccination_insert(ctx, "old-vac", &v, &vid), STORE_OK);
    assert_int_equal(store_vaccination_correct(ctx, vid, &v, "staff.a", "r", NULL),
                     STORE_OK);
    fake(&r, 1, "2010-03-31");
    assert_int_equal(store_resident_correct(ctx, old1, &r, "staff.a", "r", NULL), STORE_OK);
    (void)vac(ctx, cur, "covid-comirnaty", 1, "2021-06-01");
    /* The callback refuses: nothing is deleted. */
    got.refuse = 1;
    assert_int_equal(store_retention_purge(ctx, "2015-01", 10, keep_addr, &got, &del),
                     STORE_ERROR);
    assert_int_equal(del, 0);
    assert_int_equal(rows_of(f, "residents", T1), 4);
    assert_int_equal(rows_of(f, "vaccinations", T1), 2);
    /* One per call, oldest id first; "2015-01" keeps 2015-01-01. */
    memset(&got, 0, sizeof(got));
    assert_int_equal(store_retention_purge(ctx, "2015-01", 1, keep_addr, &got, &del),
                     STORE_OK);
    assert_int_equal(del, 1);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.a[0], "A0000001");
    assert_int_equal(rows_of(f, "vouchers", T1), 0);
    assert_int_equal(rows_of(f, "vaccinations", T1), 1);
    assert_int_equal(rows_of(f, "corrections", T1), 0);
    assert_int_equal(rows_of(f, "idempotency", T1), 0);
    assert_int_equal(store_resident_get(ctx, old1, &r), STORE_NOTFOUND);
    assert_int_equal(store_retention_purge(ctx, "2015-01", 10, keep_addr, &got, &del),
                     STORE_OK);
    assert_int_equal(del, 1);
    assert_string_equal(got.a[1], "A0000002");
    assert_int_equal(store_resident_get(ctx, old2, &r), STORE_NOTFOUND);
    assert_int_equal(store_retention_purge(ctx, "2015-01", 10, keep_addr, &got, &del),
                     STORE_OK);
    assert_int_equal(del, 0);       /* none left */
    assert_int_equal(rows_of(f, "residents", T1), 2);
    assert_int_equal(store_resident_id(ctx, "A0000003", &id), STORE_OK);
    assert_int_equal(store_resident_id(ctx, "A0000004", &id), STORE_OK);
    assert_int_equal(store_retention_purge(ctx, "2015-13", 10, keep_addr, &got, &del),
                     STORE_INVALID);
    assert_int_equal(store_retention_purge(ctx, "2015-01-01", 10, keep_addr, &got, &del),
                     STORE_INVALID);
    assert_int_equal(store_retention_purge(ctx, "2015-01", 0, keep_addr, &got, &del),
                     STORE_INVALID);
    store_tenant_ctx_close(ctx);
}

/* ---- walks (R2.5, R2.7) ---------------------------------------------------------------- */

struct walk_seen {
    int64_t ids[64];
    size_t  n;
    size_t  stop_after;     /* 0: never */
    bool    ceased_seen;
};

static int
walk_res(const struct resident *r, void *arg)
{
    struct walk_seen *s = arg;

    if (s->n < 64)
        s->ids[s->n] = r->id;
    if (r->ceased_date[0] != '\0')
        s->ceased_seen = true;
    s->n++;
    return s->stop_after != 0 && s->n >= s->stop_after;
}

/* R2.5, R2.7: walks page by id without gaps or repeats; current_only
 * leaves out the moved-out and deceased; a stopped walk decrypts nothing
 * after the row that stopped it. */
static void
test_R2_5_walks(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    struct walk_seen s = { .n = 0 };
    int64_t ids[25], last = 0;
    size_t n, current = 0, pages = 0;
    char sql[200];

    for (unsigned i = 0; i < 25; i++) {
        ids[i] = put(ctx, i, i % 5 == 0 ? "2020-04-01" : "");
        current += i % 5 != 0;
    }
    do {
        assert_int_equal(store_resident_walk(ctx, last, 10, false, walk_res, &s, &last, &n),
                         STORE_OK);
        pages++;
    } while (n > 0);
    assert_int_equal(pages, 4);     /* 10, 10, 5, 0 */
    assert_int_equal(s.n, 25);
    for (unsigned i = 0; i < 25; i++)
        assert_int_equal(s.ids[i], ids[i]);
    assert_true(s.ceased_seen);
    memset(&s, 0, sizeof(s));
    last = 0;
    do
        assert_int_equal(store_resident_walk(ctx, last, 7, true, walk_res, &s, &last, &n),
                         STORE_OK);
    while (n > 0);
    assert_int_equal(s.n, current);
    assert_false(s.ceased_seen);
    /* Stop after 3: *last is the third, the fourth is never decrypted
     * (it is damaged, so decrypting it would fail the call). */
    snprintf(sql, sizeof(sql), "UPDATE residents SET name_ct = kana_ct WHERE "
             "resident_id = %lld", (long long)ids[3]);
    store_fx_raw_exec(f, sql);
    memset(&s, 0, sizeof(s));
    s.stop_after = 3;
    assert_int_equal(store_resident_walk(ctx, 0, 10, false, walk_res, &s, &last, &n),
                     STORE_OK);
    assert_int_equal(n, 3);
    assert_int_equal(last, ids[2]);
    s.stop_after = 0;
    assert_int_equal(store_resident_walk(ctx, last, 10, false, walk_res, &s, &last, &n),
                     STORE_KEY);
    assert_int_equal(store_resident_walk(ctx, 0, 10001, false, walk_res, &s, &last, &n),
                     STORE_INVALID);
    store_tenant_ctx_close(ctx);
}

static int
walk_vac(const struct vaccination *v, void *arg)
{
    struct walk_seen *s = arg;

    if (s->n < 64)
        s->ids[s->n] = v->id;
    s->n++;
    return 0;
}

static void
test_R2_7_vaccination_walk(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    struct walk_seen s = { .n = 0 };
    int64_t rid = put(ctx, 1, ""), ids[12], last = 0;
    size_t n;

    for (int i = 0; i < 12; i++)
        ids[i] = vac(ctx, rid, i % 2 ? "covid-comirnaty" : "b-influenza", 1 + i / 2,
                     "2021-06-01");
    do
        assert_int_equal(store_vaccination_walk(ctx, last, 5, walk_vac, &s, &last, &n),
                         STORE_OK);
    while (n > 0);
    assert_int_equal(s.n, 12);
    for (int i = 0; i < 12; i++)
        assert_int_equal(s.ids[i], ids[i]);
    store_tenant_ctx_close(ctx);
}

/* ---- rotation, erase, migration ------------------------------------------------------- */

/* R9.2: after a rotation store_reencrypt moves the records too
 * (vaccination details and correction images) and they still read. */
static void
test_R9_2_reencrypt_records(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    int64_t rid = put(ctx, 1, ""), vid = vac(ctx, rid, "covid-comirnaty", 1, "2021-06-01");
    struct vaccination v;
    struct resident r;
    struct corr_seen *seen = calloc(1, sizeof(*seen));
    uint32_t kv;
    size_t done;

    assert_non_null(seen);
    fake(&r, 1, "");
    snprintf(r.name, sizeof(r.name), "テスト 花子");
    assert_int_equal(store_resident_correct(ctx, rid, &r, "staff.a", "before rotate", NULL),
                     STORE_OK);
    store_tenant_ctx_close(ctx);
    assert_int_equal(keyring_rotate(f->kr, T1, &kv), 0);
    ctx = ctx_open(f, T1);
    assert_int_equal(store_reencrypt(ctx, 2, &done), STORE_OK);
    assert_int_equal(done, 2);      /* the resident and the vaccination */
    assert_int_equal(store_reencrypt(ctx, 100, &done), STORE_OK);
    assert_int_equal(done, 1);      /* the correction */
    assert_int_equal(store_reencrypt(ctx, 100, &done), STORE_OK);
    assert_int_equal(done, 0);
    assert_int_equal(store_fx_raw_int(f, "SELECT min(key_version) FROM vaccinations"), 2);
    assert_int_equal(store_fx_raw_int(f, "SELECT min(key_version) FROM corrections"), 2);
    assert_int_equal(store_vaccination_get(ctx, vid, &v), STORE_OK);
    assert_string_equal(v.lot, "ZQXLOT01");
    assert_int_equal(store_corrections_of(ctx, STORE_OBJ_RESIDENT, rid, keep_corr, seen),
                     STORE_OK);
    assert_int_equal(seen->n, 1);
    assert_string_equal(seen->reason[0], "before rotate");
    assert_non_null(strstr(seen->after[0], "テスト 花子"));
    free(seen);
    store_tenant_ctx_close(ctx);
}

/* R1.4: erasing a tenant deletes its records; the other tenant keeps its. */
static void
test_R1_4_erase_records(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *c1 = ctx_open(f, T1), *c2 = ctx_open(f, T2);
    int64_t r1 = put(c1, 1, ""), r2 = put(c2, 1, ""), vid;
    struct voucher vo;
    struct vaccination v;
    uint8_t sha[32] = { 3 };

    vid = vac(c1, r1, "covid-comirnaty", 1, "2021-06-01");
    (void)vac(c2, r2, "covid-comirnaty", 1, "2021-06-01");
    fake_voucher(&vo, r1, 1, "2021-05-01");
    assert_int_equal(store_voucher_issue(c1, &vo), STORE_OK);
    assert_int_equal(store_vaccination_get(c1, vid, &v), STORE_OK);
    assert_int_equal(store_vaccination_correct(c1, vid, &v, "staff.a", "r", NULL),
                     STORE_OK);
    assert_int_equal(store_import_record(c1, sha, "vouchers", 1, "staff.a"), STORE_OK);
    store_tenant_ctx_close(c1);
    assert_int_equal(keyring_erase(f->kr, T1), 0);
    assert_int_equal(store_tenant_erase(f->st, T1), STORE_OK);
    assert_int_equal(rows_of(f, "vaccinations", T1), 0);
    assert_int_equal(rows_of(f, "vouchers", T1), 0);
    assert_int_equal(rows_of(f, "corrections", T1), 0);
    assert_int_equal(rows_of(f, "imports", T1), 0);
    assert_int_equal(rows_of(f, "residents", T1), 0);
    assert_int_equal(rows_of(f, "vaccinations", T2), 1);
    store_tenant_ctx_close(c2);
}

/* Objects of schema versions 1 and 2 (shipped; never change), with
 * PostgreSQL's names for their implicit indexes. */
static const char *const v2_objects[] = {
    "schema_migrations", "tenants", "residents", "idempotency", "staff", "terminals",
    "sessions", "resident_id_seq", "residents_mynumber", "residents_name", "residents_kana",
    "residents_keyver", "staff_tenant", "sessions_user",
    "schema_migrations_pkey", "tenants_pkey", "residents_pkey",
    "residents_tenant_id_address_no_key", "idempotency_pkey", "staff_pkey",
    "staff_enrol_hash_key", "terminals_pkey", "sessions_pkey",
};

static bool
is_v2(const char *name)
{
    if (strncmp(name, "sqlite_", 7) == 0)
        return true;    /* SQLite's own; a dropped table takes its autoindexes */
    for (size_t i = 0; i < sizeof(v2_objects) / sizeof(v2_objects[0]); i++)
        if (strcmp(name, v2_objects[i]) == 0)
            return true;
    return false;
}

/* Turn the database back into a version-2 one, data kept: drop every
 * object a later migration made (tables, indexes, sequences, views,
 * triggers and functions, whoever's migration it was). */
static void
back_to_v2(struct store_fx *f)
{
    char sql[64 + 16 + 1024];   /* "DROP <type> IF EXISTS <name>" */

    if (store_fx_backend() == STORE_BACKEND_SQLITE) {
        sqlite3 *db;
        sqlite3_stmt *s;
        char names[64][64], types[64][16];
        size_t n = 0;
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT name, type FROM sqlite_schema "
                                            "ORDER BY CASE type WHEN 'trigger' THEN 0 WHEN "
                                            "'view' THEN 1 WHEN 'table' THEN 2 ELSE 3 END",
                                            -1, &s, NULL), SQLITE_OK);
        while (sqlite3_step(s) == SQLITE_ROW && n < 64) {
            snprintf(names[n], sizeof(names[0]), "%s", sqlite3_column_text(s, 0));
            snprintf(types[n], sizeof(types[0]), "%s", sqlite3_column_text(s, 1));
            n += !is_v2(names[n]);
        }
        sqlite3_finalize(s);
        sqlite3_close(db);
        /* Triggers and views, then tables (their indexes go with them). */
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        for (size_t i = 0; i < n; i++) {
            int k = snprintf(sql, sizeof(sql), "DROP %s IF EXISTS %s", types[i], names[i]);

            assert_true(k > 0 && (size_t)k < sizeof(sql));
            if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
                fail_msg("%s: %s", sql, sqlite3_errmsg(db));
        }
        sqlite3_close(db);
    } else {
        PGconn *c = store_fx_pg_connect(f->conninfo);
        /* Functions first: CASCADE takes their triggers along. */
        PGresult *r = PQexec(c, "SELECT proname, 'f' FROM pg_proc WHERE pronamespace = "
                             "current_schema()::regnamespace UNION ALL SELECT relname, "
                             "relkind::text FROM pg_class WHERE relnamespace = "
                             "current_schema()::regnamespace AND relkind IN "
                             "('v', 'r', 'i', 'S')");
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        for (int i = 0; i < PQntuples(r); i++) {
            const char *name = PQgetvalue(r, i, 0), *kind = PQgetvalue(r, i, 1);
            if (is_v2(name))
                continue;
            snprintf(sql, sizeof(sql), "DROP %s IF EXISTS %s CASCADE",
                     kind[0] == 'f' ? "FUNCTION" : kind[0] == 'v' ? "VIEW" :
                     kind[0] == 'r' ? "TABLE" : kind[0] == 'i' ? "INDEX" : "SEQUENCE", name);
            PQclear(PQexec(c, sql));
        }
        PQclear(r);
        PQfinish(c);
    }
    store_fx_raw_exec(f, "DELETE FROM schema_migrations WHERE version > 2");
}

/* Old databases migrate forward: a version-2 database with residents is
 * refused without migrate, migrates to the current version with its rows
 * intact, and takes vaccinations afterwards. */
static void
test_migrate_from_v2(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    int64_t rid = put(ctx, 1, "");
    struct store *st = NULL;
    struct resident r;
    int from = 0, to = 0;

    store_tenant_ctx_close(ctx);
    store_close(f->st);
    f->st = NULL;
    back_to_v2(f);
    assert_int_equal(store_fx_raw_int(f, "SELECT max(version) FROM schema_migrations"), 2);
    assert_int_equal(store_open(&f->cfg, 0, &st), STORE_VERSION);
    assert_int_equal(store_open(&f->cfg, STORE_OPEN_MIGRATE, &f->st), STORE_OK);
    assert_int_equal(store_migrate(f->st, &from, &to), STORE_OK);
    assert_int_equal(from, 2);
    assert_int_equal(to, STORE_SCHEMA_VERSION);
    ctx = ctx_open(f, T1);
    assert_int_equal(store_resident_get(ctx, rid, &r), STORE_OK);
    (void)vac(ctx, rid, "covid-comirnaty", 1, "2021-06-01");
    store_tenant_ctx_close(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_R2_4_vouchers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_3_vaccination_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_3_dose_unique_void_frees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_3_idempotent_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_3_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R1_1_tenant_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_9_resident_correction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_9_vaccination_correction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_9_large_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R1_4_records_not_plaintext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R1_4_moved_ciphertext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_6_bulk_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_6_bulk_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_6_bulk_failure_aborts_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_6_bulk_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_6_import_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_10_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_5_walks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_7_vaccination_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R9_2_reencrypt_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R1_4_erase_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v2, setup, teardown),
    };
    int failed;

    if (sodium_init() < 0)
        return 1;
    log_setup("test_store_records", LOG_TO_STDERR, LOG_LVL_ERROR);
    failed = STORE_FX_RUN("store_records/sqlite", "store_records/postgresql", tests,
                          STORE_FX_PG_IN_CI);
    return failed;
}
