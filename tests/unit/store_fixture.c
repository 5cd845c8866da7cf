/*
 * store_fixture.c - the shared store fixture of the unit tests (see
 * store_fixture.h): one place that opens a keyring and a migrated store on
 * SQLite or PostgreSQL and tears them down, instead of a copy per test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "store_fixture.h"

/* The group store_fx_run is running: its cases open this backend. */
static enum store_backend current = STORE_BACKEND_SQLITE;
static const char *pg_base;     /* MAMORI_TEST_PG, NULL when unset or empty */

enum store_backend
store_fx_backend(void)
{
    return current;
}

const char *
store_fx_pg_base(void)
{
    return pg_base;
}

bool
store_fx_pg_missing(void)
{
    return current == STORE_BACKEND_POSTGRESQL && pg_base == NULL;
}

static void
no_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

PGconn *
store_fx_pg_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQsetNoticeProcessor(c, no_notice, NULL);
    return c;
}

void
store_fx_pg_exec(const char *conninfo, const char *sql)
{
    PGconn *c = store_fx_pg_connect(conninfo);
    PGresult *r = PQexec(c, sql);

    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

void
store_fx_raw_exec(const struct store_fx *f, const char *sql)
{
    if (f->backend == STORE_BACKEND_SQLITE) {
        sqlite3 *db;
        char *err = NULL;
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
            fail_msg("%s: %s", sql, err);
        sqlite3_close(db);
    } else {
        store_fx_pg_exec(f->conninfo, sql);
    }
}

int64_t
store_fx_raw_int(const struct store_fx *f, const char *sql)
{
    int64_t v = -1;

    if (f->backend == STORE_BACKEND_SQLITE) {
        sqlite3 *db;
        sqlite3_stmt *s;
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(s), SQLITE_ROW);
        v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        sqlite3_close(db);
    } else {
        PGconn *c = store_fx_pg_connect(f->conninfo);
        PGresult *r = PQexec(c, sql);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_int_equal(PQntuples(r), 1);
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
    }
    return v;
}

/* A fresh schema "<tag>_<12 hex>" and a conninfo whose search_path is it,
 * so cases never see each other's tables; it is also the application_name,
 * so a test can find the store's own sessions in pg_stat_activity. */
static void
pg_schema(struct store_fx *f, const char *tag)
{
    char sql[80], hex[13];
    unsigned char rnd[6];

    randombytes_buf(rnd, sizeof(rnd));
    assert_int_equal(util_hex_encode(rnd, sizeof(rnd), hex, sizeof(hex)), 0);
    snprintf(f->schema, sizeof(f->schema), "%.8s_%s", tag, hex);
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", f->schema);
    store_fx_pg_exec(pg_base, sql);
    snprintf(f->conninfo, sizeof(f->conninfo),
             "%s options='-csearch_path=%s' application_name=%s", pg_base, f->schema,
             f->schema);
    f->cfg.conninfo = f->conninfo;
}

void
store_fx_open(struct store_fx *f, const char *tag, const char *const *tenants,
              size_t ntenants, unsigned flags)
{
    int v1, v2;

    memset(f, 0, sizeof(*f));
    f->backend = current;
    if (store_fx_pg_missing()) {
        f->skip = true;
        return;
    }
    assert_true(ntenants <= STORE_FX_TENANTS || (flags & STORE_FX_CTX) == 0);
    snprintf(f->dir, sizeof(f->dir), "/tmp/mamori-%.16s-XXXXXX", tag);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->mk, sizeof(f->mk), "%s/master.key", f->dir);
    assert_int_equal(keyring_master_key_create(f->mk), 0);
    assert_int_equal(keyring_open(f->mk, f->dir, NULL, &f->kr), 0);
    keyring_provider(f->kr, &f->kp);
    f->cfg.backend = current;
    if (current == STORE_BACKEND_SQLITE) {
        snprintf(f->db, sizeof(f->db), "%s/store.db", f->dir);
        f->cfg.path = f->db;
    } else {
        pg_schema(f, tag);
    }
    assert_int_equal(store_open(&f->cfg, STORE_OPEN_MIGRATE, &f->st), STORE_OK);
    assert_int_equal(store_migrate(f->st, &v1, &v2), STORE_OK);
    assert_int_equal(v1, 0);    /* a fresh store, migrated from nothing */
    assert_int_equal(v2, STORE_SCHEMA_VERSION);
    for (size_t i = 0; i < ntenants; i++) {
        assert_int_equal(keyring_tenant_create(f->kr, tenants[i]), 0);
        assert_int_equal(store_tenant_create(f->st, tenants[i]), STORE_OK);
    }
    if ((flags & STORE_FX_CTX) != 0)
        for (size_t i = 0; i < ntenants; i++)
            assert_int_equal(store_tenant_ctx_open(f->st, tenants[i], &f->kp, &f->ctx[i]),
                             STORE_OK);
}

void
store_fx_close(struct store_fx *f)
{
    char cmd[128];

    if (f->skip || f->dir[0] == '\0')
        return;         /* skipped, or already closed */
    for (size_t i = 0; i < STORE_FX_TENANTS; i++)
        if (f->ctx[i] != NULL)
            store_tenant_ctx_close(f->ctx[i]);
    /* A case may have closed and reopened the store or keyring itself. */
    if (f->st != NULL)
        store_close(f->st);
    if (f->kr != NULL)
        keyring_close(f->kr);
    memset(f->ctx, 0, sizeof(f->ctx));
    f->st = NULL;
    f->kr = NULL;
    if (f->schema[0] != '\0') {
        snprintf(cmd, sizeof(cmd), "DROP SCHEMA %s CASCADE", f->schema);
        store_fx_pg_exec(pg_base, cmd);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    f->dir[0] = '\0';
    f->schema[0] = '\0';
}

struct store_fx *
store_fx_new(const char *tag, const char *const *tenants, size_t ntenants, unsigned flags)
{
    struct store_fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    store_fx_open(f, tag, tenants, ntenants, flags);
    return f;
}

void
store_fx_free(struct store_fx *f)
{
    if (f == NULL)
        return;
    store_fx_close(f);
    free(f);
}

int
store_fx_run(const char *sqlite_name, const char *pg_name, const struct CMUnitTest *tests,
             size_t ntests, unsigned flags)
{
    const char *ci = getenv("CI");
    int failed;

    pg_base = getenv("MAMORI_TEST_PG");
    if (pg_base != NULL && pg_base[0] == '\0')
        pg_base = NULL;
    current = STORE_BACKEND_SQLITE;
    failed = _cmocka_run_group_tests(sqlite_name, tests, ntests, NULL, NULL);
    if (pg_base == NULL) {
        if ((flags & STORE_FX_PG_IN_CI) != 0 && ci != NULL && strcmp(ci, "true") == 0) {
            fprintf(stderr, "FAIL: MAMORI_TEST_PG is not set in CI: the PostgreSQL "
                    "backend was not tested\n");
            failed++;
        } else {
            fprintf(stderr, "*** MAMORI_TEST_PG unset: PostgreSQL cases SKIPPED ***\n");
        }
    }
    current = STORE_BACKEND_POSTGRESQL;
    failed += _cmocka_run_group_tests(pg_name, tests, ntests, NULL, NULL);
    current = STORE_BACKEND_SQLITE;
    return failed;
}
