/*
 * test_store.c - the store's behaviour, run against SQLite and PostgreSQL
 * with the same cases (R1.1, R1.3, R1.4, R2.1, R2.2, R9.2, R9.6).
 *
 * PostgreSQL: set MAMORI_TEST_PG to a conninfo (scripts/pg-cluster.sh
 * start DIR prints one).  Unset, the PostgreSQL cases FAIL when CI=true
 * and are skipped, loudly, otherwise.  Each case runs in a fresh schema.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <sqlite3.h>

#include "common/util.h"
#include "crypto/field.h"
#include "crypto/keyring.h"
#include "store/store.h"
#include "store/store_auth.h"
#include "store/store_records.h"
#include "store_fixture.h"

#define T1 "131016"
#define T2 "011002"
#define PGBIN "/usr/lib/postgresql/15/bin"

/* Columns in table order, for raw copies between rows. */
#define ALL_COLS "resident_id, address_no, key_version, birth_year, ceased_ym, " \
    "mynumber_bidx, name_bidx, kana_bidx, mynumber_ct, name_ct, kana_ct, " \
    "birth_date_ct, sex_ct, postcode_ct, address_ct, katagaki_ct, household_no_ct, " \
    "relationship_ct, became_date_ct, ceased_date_ct, movement_type_ct, " \
    "movement_date_ct, prev_address_ct, next_address_ct, alias_ct, created_at"

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

/* An obviously fake resident (R9.4). */
static void
fake(struct resident *r, unsigned i)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->address_no, sizeof(r->address_no), "A%07u", i);
    make_mynumber(i, r->mynumber);
    snprintf(r->name, sizeof(r->name), "テスト 太郎%u", i);
    snprintf(r->kana, sizeof(r->kana), "テスト タロウ%u", i);
    snprintf(r->birth_date, sizeof(r->birth_date), "19%02u-0%u-1%u", 40 + i % 60,
             1 + i % 9, i % 10);
    strcpy(r->sex, i % 2 ? "1" : "2");
    strcpy(r->postcode, "1000001");
    snprintf(r->address, sizeof(r->address), "東京都千代田区試験町%u丁目", i);
    strcpy(r->katagaki, "テストハイツ101");
    snprintf(r->household_no, sizeof(r->household_no), "H%06u", i);
    strcpy(r->relationship, "世帯主");
    strcpy(r->became_date, "2001-04-01");
    strcpy(r->movement_type, "転入");
    strcpy(r->movement_date, "2001-04-01");
    strcpy(r->prev_address, "大阪府大阪市北区試験町一丁目");
    strcpy(r->alias, "テスト通称");
}

static int
kr_open(struct store_fx *f)
{
    if (keyring_open(f->mk, f->dir, NULL, &f->kr) != 0)
        return -1;
    keyring_provider(f->kr, &f->kp);
    return 0;
}

/* BLAKE2b of every stored resident byte, in key order. */
static void
raw_digest(struct store_fx *f, uint8_t out[32])
{
    crypto_generichash_state h;
    const char *sql = "SELECT " ALL_COLS " FROM residents ORDER BY tenant_id, resident_id";

    crypto_generichash_init(&h, NULL, 0, 32);
    if (store_fx_backend() == STORE_BACKEND_SQLITE) {
        sqlite3 *db;
        sqlite3_stmt *s;
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        while (sqlite3_step(s) == SQLITE_ROW)
            for (int i = 0; i < sqlite3_column_count(s); i++) {
                const void *b = sqlite3_column_blob(s, i);
                crypto_generichash_update(&h, b ? b : (const void *)"",
                                          (size_t)sqlite3_column_bytes(s, i));
            }
        sqlite3_finalize(s);
        sqlite3_close(db);
    } else {
        PGconn *c = store_fx_pg_connect(f->conninfo);
        PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 1);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        for (int row = 0; row < PQntuples(r); row++)
            for (int i = 0; i < PQnfields(r); i++)
                crypto_generichash_update(&h, (const uint8_t *)PQgetvalue(r, row, i),
                                          (size_t)PQgetlength(r, row, i));
        PQclear(r);
        PQfinish(c);
    }
    crypto_generichash_final(&h, out, 32);
}

/* ---- fixture ------------------------------------------------------------- */

static int
setup(void **state)
{
    static const char *const tenants[] = { T1, T2 };

    *state = store_fx_new("store", tenants, 2, 0);
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
put(struct store_tenant *ctx, unsigned i)
{
    struct resident r;
    int64_t id = 0;

    fake(&r, i);
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &id), STORE_OK);
    assert_true(id > 0);
    return id;
}

/* ---- cases ------------------------------------------------------------------ */

/* R2.1: every field comes back as written; lookups by address number,
 * individual number and 4情報 (any kana width) find it. */
static void
test_roundtrip(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    struct resident r, got;
    int64_t id, ids[4];
    size_t n;

    fake(&r, 1);
    strcpy(r.ceased_date, "2020-03-31");
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &id), STORE_OK);
    assert_int_equal(store_resident_get(ctx, id, &got), STORE_OK);
    r.id = id;
    r.key_version = 1;
    assert_memory_equal(&r, &got, sizeof(r));
    assert_int_equal(store_resident_by_address_no(ctx, r.address_no, &got), STORE_OK);
    assert_int_equal(got.id, id);
    assert_int_equal(store_resident_find_mynumber(ctx, r.mynumber, ids, 4, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], id);
    /* R2.8: name by kanji, kana in three widths/scripts. */
    assert_int_equal(store_resident_find_name_dob(ctx, "テスト太郎1", r.birth_date,
                                                  ids, 4, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_resident_find_name_dob(ctx, "ﾃｽﾄ ﾀﾛｳ1", r.birth_date,
                                                  ids, 4, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_resident_find_name_dob(ctx, "てすと　たろう１", r.birth_date,
                                                  ids, 4, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], id);
    assert_int_equal(store_resident_find_name_dob(ctx, "テスト次郎1", r.birth_date,
                                                  ids, 4, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_resident_find_name_dob(ctx, "テスト太郎1", "1999-01-01",
                                                  ids, 4, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_resident_get(ctx, id + 1000, &got), STORE_NOTFOUND);
    store_tenant_ctx_close(ctx);
}

static bool
contains(const char *hay, size_t n, const char *needle)
{
    return memmem(hay, n, needle, strlen(needle)) != NULL;
}

/* Needle in clear or hex-encoded (pg_dump writes bytea as hex). */
static void
assert_absent(const char *hay, size_t n, const char *needle)
{
    char hex[1024];

    if (contains(hay, n, needle))
        fail_msg("plaintext at rest: %s", needle);
    assert_int_equal(util_hex_encode((const uint8_t *)needle, strlen(needle), hex,
                                     sizeof(hex)), 0);
    if (contains(hay, n, hex))
        fail_msg("hex plaintext at rest: %s", needle);
}

static void
assert_no_personal(const char *buf, size_t len, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        struct resident r;
        fake(&r, i);
        assert_absent(buf, len, r.mynumber);
        assert_absent(buf, len, r.name);
        assert_absent(buf, len, r.kana);
        assert_absent(buf, len, r.address);
    }
    assert_absent(buf, len, "テスト");
    assert_absent(buf, len, "千代田区");
    assert_absent(buf, len, "世帯主");
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

/* R1.4: after writing residents, neither the SQLite file and its WAL nor a
 * pg_dump contains a name, kana, address or individual number. */
static void
test_no_plaintext_at_rest(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    char path[300], *buf;
    size_t len;
    const unsigned count = 40;
    struct resident r;

    for (unsigned i = 0; i < count; i++)
        (void)put(ctx, i);
    /* Prove the probe works: the values were really written. */
    fake(&r, 3);
    assert_true(strlen(r.mynumber) == 12);
    store_tenant_ctx_close(ctx);
    if (store_fx_backend() == STORE_BACKEND_SQLITE) {
        const char *files[] = { "store.db", "store.db-wal" };
        for (size_t i = 0; i < 2; i++) {
            snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
            read_or_empty(path, &buf, &len);
            if (i == 1)
                assert_true(len > 0);   /* the WAL held the writes */
            assert_no_personal(buf, len, count);
            free(buf);
        }
    } else {
        char cmd[1600];
        snprintf(path, sizeof(path), "%s/dump.sql", f->dir);
        snprintf(cmd, sizeof(cmd), PGBIN "/pg_dump -d \"%s\" -n %s -f %s",
                 store_fx_pg_base(), f->schema, path);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(util_read_file(path, 1u << 30, &buf, &len), 0);
        assert_true(contains(buf, len, "A0000003"));   /* plain address no. */
        assert_no_personal(buf, len, count);
        free(buf);
    }
}

/* R1.1: another tenant's context sees nothing: not by id, address number
 * or individual number; unknown and erased tenants get no context. */
static void
test_wrong_tenant(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *c1 = ctx_open(f, T1), *c2 = ctx_open(f, T2), *bad = NULL;
    struct resident r, got;
    int64_t id, ids[4];
    size_t n = 9;

    fake(&r, 5);
    assert_int_equal(store_resident_insert(c1, NULL, &r, &id), STORE_OK);
    assert_int_equal(store_resident_get(c2, id, &got), STORE_NOTFOUND);
    assert_int_equal(store_resident_by_address_no(c2, r.address_no, &got), STORE_NOTFOUND);
    assert_int_equal(store_resident_find_mynumber(c2, r.mynumber, ids, 4, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_resident_find_name_dob(c2, r.name, r.birth_date, ids, 4, &n),
                     STORE_OK);
    assert_int_equal(n, 0);
    /* The same address number is free in the other tenant. */
    assert_int_equal(store_resident_insert(c2, NULL, &r, &id), STORE_OK);
    assert_int_equal(store_tenant_ctx_open(f->st, "271004", &f->kp, &bad), STORE_DENIED);
    assert_int_equal(store_tenant_ctx_open(f->st, "131017", &f->kp, &bad), STORE_INVALID);
    assert_null(bad);
    store_tenant_ctx_close(c1);
    store_tenant_ctx_close(c2);
}

/* R1.1, R1.4: a ciphertext copied to another row, another column or
 * another tenant does not decrypt; the read fails as a whole. */
static void
test_moved_ciphertext(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *c1 = ctx_open(f, T1), *c2 = ctx_open(f, T2);
    struct resident got;
    int64_t a = put(c1, 1), b = put(c1, 2), c = put(c1, 3);
    char sql[2048];

    /* Another row, same column. */
    snprintf(sql, sizeof(sql), "UPDATE residents SET name_ct = (SELECT name_ct FROM "
             "residents WHERE tenant_id = '" T1 "' AND resident_id = %lld) WHERE "
             "tenant_id = '" T1 "' AND resident_id = %lld", (long long)a, (long long)b);
    store_fx_raw_exec(f, sql);
    assert_int_equal(store_resident_get(c1, b, &got), STORE_KEY);
    assert_int_equal(got.name[0], '\0');
    /* Same row, another column. */
    snprintf(sql, sizeof(sql), "UPDATE residents SET address_ct = prev_address_ct "
             "WHERE tenant_id = '" T1 "' AND resident_id = %lld", (long long)c);
    store_fx_raw_exec(f, sql);
    assert_int_equal(store_resident_get(c1, c, &got), STORE_KEY);
    /* Another tenant: the whole row copied under T2. */
    snprintf(sql, sizeof(sql), "INSERT INTO residents (tenant_id, " ALL_COLS ") "
             "SELECT '" T2 "', " ALL_COLS " FROM residents WHERE tenant_id = '" T1
             "' AND resident_id = %lld", (long long)a);
    store_fx_raw_exec(f, sql);
    assert_int_equal(store_resident_get(c2, a, &got), STORE_KEY);
    /* The untouched row still reads. */
    assert_int_equal(store_resident_get(c1, a, &got), STORE_OK);
    store_tenant_ctx_close(c1);
    store_tenant_ctx_close(c2);
}

/* R9.2: rotation: new rows use the new version, old rows stay readable;
 * the re-encryption pass moves them; a second pass finds nothing. */
static void
test_rotation(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    struct resident got, want;
    int64_t old = put(ctx, 1), young;
    uint32_t v;
    size_t done;

    store_tenant_ctx_close(ctx);
    assert_int_equal(keyring_rotate(f->kr, T1, &v), 0);
    assert_int_equal(v, 2);
    ctx = ctx_open(f, T1);
    young = put(ctx, 2);
    assert_int_equal(store_resident_get(ctx, young, &got), STORE_OK);
    assert_int_equal(got.key_version, 2);
    assert_int_equal(store_resident_get(ctx, old, &got), STORE_OK);
    assert_int_equal(got.key_version, 1);
    fake(&want, 1);
    assert_string_equal(got.name, want.name);
    assert_int_equal(store_reencrypt(ctx, 100, &done), STORE_OK);
    assert_int_equal(done, 1);
    assert_int_equal(store_resident_get(ctx, old, &got), STORE_OK);
    assert_int_equal(got.key_version, 2);
    assert_string_equal(got.address, want.address);
    assert_int_equal(store_reencrypt(ctx, 100, &done), STORE_OK);
    assert_int_equal(done, 0);
    store_tenant_ctx_close(ctx);
}

/* R9.2: rewrapping the data keys under a new KEK changes no stored byte,
 * and everything still reads. */
static void
test_rewrap_touches_no_row(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    uint8_t before[32], after[32];
    struct resident got;
    int64_t id = put(ctx, 1);
    uint32_t kv;

    (void)put(ctx, 2);
    store_tenant_ctx_close(ctx);
    raw_digest(f, before);
    assert_int_equal(keyring_rewrap(f->kr, T1, &kv), 0);
    assert_int_equal(kv, 2);
    /* A fresh keyring from disk: the rewrapped keystore is what counts. */
    keyring_close(f->kr);
    assert_int_equal(kr_open(f), 0);
    ctx = ctx_open(f, T1);
    assert_int_equal(store_resident_get(ctx, id, &got), STORE_OK);
    raw_digest(f, after);
    assert_memory_equal(before, after, 32);
    store_tenant_ctx_close(ctx);
}

/* The address ciphertext of a T1 row, read behind the store's back. */
static void
sqlite_blob(struct store_fx *f, int64_t id, uint8_t *out, size_t *len)
{
    sqlite3 *db;
    sqlite3_stmt *s;

    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT address_ct FROM residents WHERE "
                                        "tenant_id = '" T1 "' AND resident_id = ?1",
                                        -1, &s, NULL), SQLITE_OK);
    sqlite3_bind_int64(s, 1, id);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    *len = (size_t)sqlite3_column_bytes(s, 0);
    assert_true(*len > 0 && *len <= FIELD_CT_MAX);
    memcpy(out, sqlite3_column_blob(s, 0), *len);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* R1.4: erase destroys the keys and the rows; a copy of the ciphertext
 * taken before cannot be decrypted; the other tenant is untouched. */
static void
test_erase(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *c1 = ctx_open(f, T1), *c2 = ctx_open(f, T2), *again = NULL;
    struct store_counts cnt;
    struct resident got;
    struct tenant_key *k = NULL;
    int64_t id = put(c1, 1), other = put(c2, 2);
    char state_s[16];
    uint8_t ct[FIELD_CT_MAX];
    size_t ctlen = 0;

    (void)put(c1, 3);
    store_tenant_ctx_close(c1);
    /* Keep a copy of the whole database as an attacker would. */
    if (store_fx_backend() == STORE_BACKEND_SQLITE) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "cp %s/store.db %s/copy.db && "
                 "(cp %s/store.db-wal %s/copy.db-wal 2>/dev/null || true)",
                 f->dir, f->dir, f->dir, f->dir);
        assert_int_equal(system(cmd), 0);
    }
    if (store_fx_backend() == STORE_BACKEND_SQLITE) {
        char path[200], *b1, *b2;
        size_t l1, l2;
        sqlite_blob(f, id, ct, &ctlen);
        snprintf(path, sizeof(path), "%s/store.db", f->dir);
        read_or_empty(path, &b1, &l1);
        snprintf(path, sizeof(path), "%s/store.db-wal", f->dir);
        read_or_empty(path, &b2, &l2);
        /* The probe works: before the erase the bytes are on disk. */
        assert_true(memmem(b1, l1, ct, ctlen) != NULL || memmem(b2, l2, ct, ctlen) != NULL);
        free(b1);
        free(b2);
    }
    assert_int_equal(keyring_erase(f->kr, T1), 0);
    assert_int_equal(store_tenant_erase(f->st, T1), STORE_OK);
    /* secure_delete + WAL checkpoint: the ciphertext bytes are gone too. */
    if (store_fx_backend() == STORE_BACKEND_SQLITE) {
        const char *files[] = { "store.db", "store.db-wal" };
        for (size_t i = 0; i < 2; i++) {
            char path[200], *buf;
            size_t len;
            snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
            read_or_empty(path, &buf, &len);
            assert_null(memmem(buf, len, ct, ctlen));
            free(buf);
        }
    }
    assert_int_equal(store_counts(f->st, T1, &cnt), STORE_OK);
    assert_int_equal(cnt.residents, 0);
    assert_int_equal(cnt.tenants, 0);
    assert_int_equal(store_tenant_state(f->st, T1, state_s), STORE_OK);
    assert_string_equal(state_s, "erased");
    assert_int_equal(store_tenant_ctx_open(f->st, T1, &f->kp, &again), STORE_DENIED);
    /* No key of T1 can be had, now or from the keystore on disk. */
    keyring_close(f->kr);
    assert_int_equal(kr_open(f), 0);
    assert_int_equal(f->kp.current_key(f->kp.arg, T1, &k), -1);
    assert_int_equal(f->kp.data_key(f->kp.arg, T1, 1, &k), -1);
    assert_int_equal(f->kp.index_key(f->kp.arg, T1, &k), -1);
    /* The stolen copy: its rows are there but nothing opens them, even
     * when the store is pointed at it with a fresh tenant context. */
    if (store_fx_backend() == STORE_BACKEND_SQLITE) {
        struct store *copy;
        struct store_config cc = f->cfg;
        char path[160];
        struct store_tenant *cx = NULL;
        snprintf(path, sizeof(path), "%s/copy.db", f->dir);
        cc.path = path;
        assert_int_equal(store_open(&cc, 0, &copy), STORE_OK);
        assert_int_equal(store_counts(copy, T1, &cnt), STORE_OK);
        assert_int_equal(cnt.residents, 2);
        assert_int_equal(store_tenant_ctx_open(copy, T1, &f->kp, &cx), STORE_KEY);
        assert_null(cx);
        store_close(copy);
    }
    assert_int_equal(store_counts(f->st, NULL, &cnt), STORE_OK);
    assert_int_equal(cnt.residents, 1);
    c2 = (store_tenant_ctx_close(c2), ctx_open(f, T2));
    assert_int_equal(store_resident_get(c2, other, &got), STORE_OK);
    assert_int_equal(store_tenant_erase(f->st, "271004"), STORE_NOTFOUND);
    store_tenant_ctx_close(c2);
}

/* R9.6: the same idempotency key twice gives the same id and one row. */
static void
test_idempotency(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *c1 = ctx_open(f, T1), *c2 = ctx_open(f, T2);
    struct store_counts cnt;
    struct resident r;
    int64_t a = 0, b = 0, c = 0, d = 0;

    fake(&r, 7);
    assert_int_equal(store_resident_insert(c1, "req-0001", &r, &a), STORE_OK);
    assert_int_equal(store_resident_insert(c1, "req-0001", &r, &b), STORE_OK);
    assert_int_equal(a, b);
    assert_int_equal(store_counts(f->st, T1, &cnt), STORE_OK);
    assert_int_equal(cnt.residents, 1);
    assert_int_equal(cnt.idempotency, 1);
    /* Without the key, a retry is a duplicate and the address no. says so. */
    assert_int_equal(store_resident_insert(c1, NULL, &r, &c), STORE_EXISTS);
    assert_int_equal(store_resident_insert(c1, "req-0002", &r, &c), STORE_EXISTS);
    /* Keys are per tenant. */
    assert_int_equal(store_resident_insert(c2, "req-0001", &r, &d), STORE_OK);
    assert_int_equal(store_counts(f->st, NULL, &cnt), STORE_OK);
    assert_int_equal(cnt.residents, 2);
    assert_int_equal(store_resident_insert(c1, "bad key!", &r, &c), STORE_INVALID);
    assert_int_equal(store_resident_insert(c1, "", &r, &c), STORE_INVALID);
    store_tenant_ctx_close(c1);
    store_tenant_ctx_close(c2);
}

/* R2.2 and input checks: nothing invalid is stored. */
static void
test_validation(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    struct store_counts cnt;
    struct resident r;
    int64_t id;

    fake(&r, 1);
    r.mynumber[11] = r.mynumber[11] == '9' ? '0' : (char)(r.mynumber[11] + 1);
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &id), STORE_INVALID);
    fake(&r, 1);
    strcpy(r.mynumber, "12345678901");
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &id), STORE_INVALID);
    fake(&r, 1);
    r.name[0] = '\0';
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &id), STORE_INVALID);
    fake(&r, 1);
    strcpy(r.birth_date, "1950-13-01");
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &id), STORE_INVALID);
    fake(&r, 1);
    strcpy(r.address, "\xff\xfe");
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &id), STORE_INVALID);
    fake(&r, 1);
    strcpy(r.address_no, "A 1");
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &id), STORE_INVALID);
    fake(&r, 1);
    memset(r.alias, 'x', sizeof(r.alias));      /* unterminated */
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &id), STORE_INVALID);
    fake(&r, 1);
    r.mynumber[0] = '\0';                       /* number unknown: allowed */
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &id), STORE_OK);
    assert_int_equal(store_counts(f->st, T1, &cnt), STORE_OK);
    assert_int_equal(cnt.residents, 1);
    store_tenant_ctx_close(ctx);
}

/* A batch is one transaction: all rows or none. */
static void
test_batch(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    struct store_counts cnt;
    struct resident *rs = calloc(20, sizeof(*rs));
    int64_t ids[20];

    assert_non_null(rs);
    for (unsigned i = 0; i < 20; i++)
        fake(&rs[i], 100 + i);
    assert_int_equal(store_resident_insert_batch(ctx, rs, 20, ids), STORE_OK);
    for (unsigned i = 1; i < 20; i++)
        assert_true(ids[i] > ids[i - 1]);
    /* A duplicate address number in the middle: nothing of the batch. */
    for (unsigned i = 0; i < 20; i++)
        fake(&rs[i], 200 + i);
    strcpy(rs[10].address_no, rs[3].address_no);
    assert_int_equal(store_resident_insert_batch(ctx, rs, 20, ids), STORE_EXISTS);
    assert_int_equal(store_counts(f->st, T1, &cnt), STORE_OK);
    assert_int_equal(cnt.residents, 20);
    free(rs);
    store_tenant_ctx_close(ctx);
}

/* Schema versions: older refused without migrate, newer always. */
static void
test_migrations(void **state)
{
    BEGIN_CASE(f);
    struct store *st = NULL;
    int v;

    assert_int_equal(store_schema_version(f->st, &v), STORE_OK);
    assert_int_equal(v, STORE_SCHEMA_VERSION);
    assert_int_equal(store_health(f->st), STORE_OK);
    assert_int_equal(store_open(&f->cfg, 0, &st), STORE_OK);
    store_close(st);
    store_fx_raw_exec(f, "INSERT INTO schema_migrations (version, applied_at) "
                         "VALUES (99, 'future')");
    assert_int_equal(store_open(&f->cfg, 0, &st), STORE_VERSION);
    assert_int_equal(store_open(&f->cfg, STORE_OPEN_MIGRATE, &st), STORE_VERSION);
    store_fx_raw_exec(f, "DELETE FROM schema_migrations");
    assert_int_equal(store_open(&f->cfg, 0, &st), STORE_VERSION);
    assert_int_equal(store_open(&f->cfg, STORE_OPEN_MIGRATE, &st), STORE_OK);
    store_close(st);
}

static off_t
file_size(const char *dir, const char *name)
{
    char path[200];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Make the next write fail under the store: the database files cannot
 * grow (SQLite), or the server side of the connection is gone (PG). */
static enum store_status
failing_batch(struct store_fx *f, struct store_tenant *ctx, const struct resident *rs,
              size_t n, int64_t *ids)
{
    enum store_status rc;

    if (store_fx_backend() == STORE_BACKEND_SQLITE) {
        struct rlimit old, lim;
        off_t a = file_size(f->dir, "store.db"), b = file_size(f->dir, "store.db-wal");
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        lim = old;
        lim.rlim_cur = (rlim_t)(a > b ? a : b) + 4096;
        signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        rc = store_resident_insert_batch(ctx, rs, n, ids);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    } else {
        char sql[200];
        snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(pid, 5000) FROM "
                 "pg_stat_activity WHERE application_name = '%s'", f->schema);
        store_fx_pg_exec(store_fx_pg_base(), sql);
        rc = store_resident_insert_batch(ctx, rs, n, ids);
    }
    return rc;
}

/* R9.6: a write that fails inside its transaction (I/O error or a lost
 * server) is fatal for the handle: that call and every later one return
 * STORE_FATAL, nothing is retried, and a reopened store holds nothing of
 * the failed write. */
static void
test_fatal_handle(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx = ctx_open(f, T1);
    struct resident *rs = calloc(300, sizeof(*rs));
    struct store_counts cnt;
    struct store *fresh;
    int64_t ids[300];

    assert_non_null(rs);
    for (unsigned i = 0; i < 300; i++)
        fake(&rs[i], 500 + i);
    assert_int_equal(failing_batch(f, ctx, rs, 300, ids), STORE_FATAL);
    assert_int_equal(store_counts(f->st, T1, &cnt), STORE_FATAL);
    assert_int_equal(store_resident_insert(ctx, NULL, &rs[0], &ids[0]), STORE_FATAL);
    assert_int_equal(store_health(f->st), STORE_FATAL);
    store_tenant_ctx_close(ctx);
    assert_int_equal(store_open(&f->cfg, 0, &fresh), STORE_OK);
    assert_int_equal(store_counts(fresh, T1, &cnt), STORE_OK);
    assert_int_equal(cnt.residents, 0);
    ctx = NULL;
    assert_int_equal(store_tenant_ctx_open(fresh, T1, &f->kp, &ctx), STORE_OK);
    assert_int_equal(store_resident_insert_batch(ctx, rs, 300, ids), STORE_OK);
    store_tenant_ctx_close(ctx);
    store_close(fresh);
    free(rs);
}

/* A provider shaped like the daemon's: every grant crosses the 48-byte
 * wire format (keygrant_encode -> bytes -> keygrant_decode). */
static int
over_wire(struct tenant_key *k, struct tenant_key **out)
{
    uint8_t msg[KEYGRANT_SIZE];
    int rc = keygrant_encode(k, msg);

    tenant_key_free(k);
    if (rc == 0)
        rc = keygrant_decode(msg, sizeof(msg), out);
    util_wipe(msg, sizeof(msg));
    return rc;
}

static int
wire_current(void *arg, const char *t, struct tenant_key **out)
{
    struct tenant_key *k;

    return keyring_grant_data_key(arg, t, 0, &k) == 0 ? over_wire(k, out) : -1;
}

static int
wire_data(void *arg, const char *t, uint32_t v, struct tenant_key **out)
{
    struct tenant_key *k;

    return keyring_grant_data_key(arg, t, v, &k) == 0 ? over_wire(k, out) : -1;
}

static int
wire_index(void *arg, const char *t, struct tenant_key **out)
{
    struct tenant_key *k;

    return keyring_grant_index_key(arg, t, &k) == 0 ? over_wire(k, out) : -1;
}

/* Rows written with in-process grants read back through wire grants, and
 * the other way round, including an older key version. */
static void
test_wire_provider(void **state)
{
    BEGIN_CASE(f);
    struct key_provider wire = { wire_current, wire_data, wire_index, f->kr };
    struct store_tenant *direct = ctx_open(f, T1), *ipc = NULL;
    struct resident got, want;
    int64_t a = put(direct, 1), b, ids[2];
    uint32_t v;
    size_t n;

    store_tenant_ctx_close(direct);
    assert_int_equal(keyring_rotate(f->kr, T1, &v), 0);
    assert_int_equal(store_tenant_ctx_open(f->st, T1, &wire, &ipc), STORE_OK);
    b = put(ipc, 2);
    fake(&want, 1);
    assert_int_equal(store_resident_get(ipc, a, &got), STORE_OK);
    assert_string_equal(got.mynumber, want.mynumber);
    assert_int_equal(store_resident_find_mynumber(ipc, want.mynumber, ids, 2, &n), STORE_OK);
    assert_int_equal(n, 1);
    store_tenant_ctx_close(ipc);
    direct = ctx_open(f, T1);
    assert_int_equal(store_resident_get(direct, b, &got), STORE_OK);
    assert_int_equal(got.key_version, 2);
    store_tenant_ctx_close(direct);
}

struct worker_arg {
    struct store_fx *f;
    unsigned   base;
    int64_t    ids[25];
    int        fails;
};

static void *
worker(void *p)
{
    struct worker_arg *w = p;
    struct store_tenant *ctx = NULL;
    struct resident r;

    if (store_tenant_ctx_open(w->f->st, T1, &w->f->kp, &ctx) != STORE_OK) {
        w->fails++;
        return NULL;
    }
    for (unsigned i = 0; i < 25; i++) {
        fake(&r, w->base + i);
        if (store_resident_insert(ctx, NULL, &r, &w->ids[i]) != STORE_OK)
            w->fails++;
    }
    store_tenant_ctx_close(ctx);
    return NULL;
}

struct same_key_arg {
    struct store_fx         *f;
    pthread_barrier_t *go;
    int64_t            id;
    enum store_status  rc;
};

static void *
same_key_worker(void *p)
{
    struct same_key_arg *a = p;
    struct store_tenant *ctx = NULL;
    struct resident r;

    fake(&r, 4242);
    a->rc = store_tenant_ctx_open(a->f->st, T1, &a->f->kp, &ctx);
    pthread_barrier_wait(a->go);    /* all start their insert together */
    if (a->rc == STORE_OK)
        a->rc = store_resident_insert(ctx, "same-key-1", &r, &a->id);
    store_tenant_ctx_close(ctx);
    return NULL;
}

/* R9.6: retries racing each other with one idempotency key (a client
 * that resent while the first request was still running) get one row
 * and one id. */
static void
test_idempotency_race(void **state)
{
    BEGIN_CASE(f);
    struct same_key_arg a[4];
    pthread_t th[4];
    pthread_barrier_t go;
    struct store_counts cnt;

    assert_int_equal(pthread_barrier_init(&go, NULL, 4), 0);
    for (unsigned i = 0; i < 4; i++) {
        a[i].f = f;
        a[i].go = &go;
        a[i].id = 0;
        assert_int_equal(pthread_create(&th[i], NULL, same_key_worker, &a[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(a[i].rc, STORE_OK);
        assert_int_equal(a[i].id, a[0].id);
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(store_counts(f->st, T1, &cnt), STORE_OK);
    assert_int_equal(cnt.residents, 1);
    assert_int_equal(cnt.idempotency, 1);
}

/* Several HTTP threads share one store: each write lands once. */
static void
test_threads(void **state)
{
    BEGIN_CASE(f);
    struct worker_arg w[6];
    pthread_t th[6];
    struct store_counts cnt;

    for (unsigned i = 0; i < 6; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].f = f;
        w[i].base = 1000 + i * 100;
        assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    }
    for (unsigned i = 0; i < 6; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].fails, 0);
    }
    assert_int_equal(store_counts(f->st, T1, &cnt), STORE_OK);
    assert_int_equal(cnt.residents, 150);
    for (unsigned i = 0; i < 6; i++)
        for (unsigned j = 0; j < 25; j++)
            for (unsigned k = 0; k < 6; k++)
                for (unsigned l = 0; l < 25; l++)
                    if (i != k || j != l)
                        assert_true(w[i].ids[j] != w[k].ids[l]);
}

static int
count_terminal(const struct terminal_info *t, void *p)
{
    (void)t;
    (*(int *)p)++;
    return 0;
}

/* R2.6: a bulk import holds SQLite's write lock for its whole length.
 * The identity reads every staff request makes (session, terminal,
 * account) and the listings must not queue behind it: a read takes no
 * write lock.  The control: a write does wait (SQLite) and gives up. */
static void
test_reads_beside_bulk(void **state)
{
    BEGIN_CASE(f);
    struct store_tenant *ctx;
    uint8_t fp[32], fp2[32], h[AUTH_HASH_LEN];
    struct staff_session s;
    struct staff_account acct;
    char tt[TENANT_ID_LEN + 1], ts[12];
    int n = 0;

    randombytes_buf(fp, sizeof(fp));
    randombytes_buf(fp2, sizeof(fp2));
    randombytes_buf(h, sizeof(h));
    assert_int_equal(store_terminal_register(f->st, T1, fp, "窓口端末1"), STORE_OK);
    store_close(f->st);
    f->cfg.busy_timeout_ms = 200;
    assert_int_equal(store_open(&f->cfg, 0, &f->st), STORE_OK);
    ctx = ctx_open(f, T1);
    assert_int_equal(store_bulk_begin(ctx), STORE_OK);
    put(ctx, 1);
    assert_int_equal(store_session_get(f->st, h, &s), STORE_NOTFOUND);
    assert_int_equal(store_terminal_get(f->st, fp, tt, ts), STORE_OK);
    assert_string_equal(tt, T1);
    assert_int_equal(store_staff_get(f->st, "nobody.here", &acct), STORE_NOTFOUND);
    assert_int_equal(store_terminal_list(f->st, T1, count_terminal, &n), STORE_OK);
    assert_int_equal(n, 1);
    if (store_fx_backend() == STORE_BACKEND_SQLITE)
        assert_int_equal(store_terminal_register(f->st, T1, fp2, "窓口端末2"), STORE_BUSY);
    assert_int_equal(store_bulk_commit(ctx), STORE_OK);
    store_tenant_ctx_close(ctx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_plaintext_at_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_moved_ciphertext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrap_touches_no_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fatal_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wire_provider, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_beside_bulk, setup, teardown),
    };
    int failed;

    if (sodium_init() < 0)
        return 1;
    log_setup("test_store", LOG_TO_STDERR, LOG_LVL_ERROR);
    failed = STORE_FX_RUN("store/sqlite", "store/postgresql", tests, STORE_FX_PG_IN_CI);
    return failed;
}
