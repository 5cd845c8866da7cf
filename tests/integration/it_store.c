/*
 * it_store.c - the daemon and its store: a fresh data directory starts
 * on SQLite; a database whose schema is not current is refused at
 * start-up with a clear message (migrations are an operator's act); and,
 * where a PostgreSQL server is given (MAMORI_TEST_PG, set by the test
 * command), the sandboxed workers run on PostgreSQL.
 */
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "store/store.h"

static long
healthz(const struct instance *in)
{
    CURL *c = h_curl(in, NULL, NULL);
    struct h_response r;
    long st;

    h_request(in, c, false, "GET", "/healthz", NULL, &r);
    st = r.rc == CURLE_OK ? r.status : -1;
    h_response_free(&r);
    curl_easy_cleanup(c);
    return st;
}

static bool
log_contains(const struct instance *in, const char *needle)
{
    FILE *f = fopen(in->log, "r");
    char line[4096];
    bool hit = false;

    while (f != NULL && !hit && fgets(line, sizeof(line), f) != NULL)
        hit = strstr(line, needle) != NULL;
    if (f != NULL)
        fclose(f);
    return hit;
}

/* mamori init leaves a store at the current schema: mamorid starts. */
static void
test_fresh_directory_starts_on_sqlite(void **state)
{
    struct instance in;

    (void)state;
    assert_int_equal(h_start(&in, NULL), 0);
    assert_int_equal(healthz(&in), 200);
    assert_int_equal(h_stop(&in), 0);
    h_cleanup(&in);
}

/* A database that is not at this mamorid's schema is refused at start,
 * naming the fix; nothing is migrated behind the operator's back. */
static void
test_unmigrated_database_refused(void **state)
{
    struct instance in;
    char path[400];
    struct store_config sc = { STORE_BACKEND_SQLITE, path, NULL, 1, 0 };
    struct store *st = NULL;
    int version = -1;

    (void)state;
    assert_int_equal(h_init(&in), 0);
    assert_int_equal(h_set_conf(&in, "store.path", "db/empty.sqlite"), 0);
    assert_int_equal(h_launch(&in), -1);           /* exits instead of serving */
    assert_true(log_contains(&in, "store_schema_mismatch"));
    assert_true(log_contains(&in, "mamori migrate"));
    /* Still unmigrated: the daemon changed nothing. */
    snprintf(path, sizeof(path), "%s/db/empty.sqlite", in.dir);
    if (access(path, F_OK) == 0) {
        assert_int_equal(store_open(&sc, STORE_OPEN_MIGRATE, &st), STORE_OK);
        assert_int_equal(store_schema_version(st, &version), STORE_OK);
        assert_int_equal(version, 0);
        store_close(st);
    }
    h_cleanup(&in);
}

/* PostgreSQL: a database of its own for this test, migrated, then the
 * daemon's sandboxed workers connect to it through the Unix socket. */
static void
test_workers_run_on_postgresql(void **state)
{
    const char *base = getenv("MAMORI_TEST_PG");
    char dbname[64], sql[128], conninfo[1200];
    struct store_config sc = { STORE_BACKEND_POSTGRESQL, NULL, conninfo, 1, 0 };
    struct store *st = NULL;
    struct instance in;
    PGconn *admin;
    PGresult *res;

    (void)state;
    if (base == NULL || base[0] == '\0') {
        if (getenv("CI") != NULL)
            fail_msg("MAMORI_TEST_PG is not set in CI: the PostgreSQL backend was not tested");
        skip();
    }
    snprintf(dbname, sizeof(dbname), "mamori_it_%ld", (long)getpid());
    admin = PQconnectdb(base);
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
    res = PQexec(admin, sql);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    /* In a connection string a later keyword overrides an earlier one. */
    snprintf(conninfo, sizeof(conninfo), "%s dbname=%s", base, dbname);
    assert_int_equal(store_open(&sc, STORE_OPEN_MIGRATE, &st), STORE_OK);
    assert_int_equal(store_migrate(st, NULL, NULL), STORE_OK);
    store_close(st);

    assert_int_equal(h_init(&in), 0);
    assert_int_equal(h_set_conf(&in, "store.backend", "postgresql"), 0);
    assert_int_equal(h_set_conf(&in, "store.conninfo", conninfo), 0);
    assert_int_equal(h_launch(&in), 0);
    assert_int_equal(healthz(&in), 200);
    assert_false(log_contains(&in, "seccomp_violation"));
    assert_int_equal(h_stop(&in), 0);
    h_cleanup(&in);

    snprintf(sql, sizeof(sql), "DROP DATABASE %s", dbname);
    PQclear(PQexec(admin, sql));
    PQfinish(admin);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_directory_starts_on_sqlite),
        cmocka_unit_test(test_unmigrated_database_refused),
        cmocka_unit_test(test_workers_run_on_postgresql),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests_name("integration/store", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
