/*
 * it_store.c - the daemon and its store: a fresh data directory starts
 * on SQLite; a database whose schema is not current is refused at
 * start-up with a clear message (migrations are an operator's act); and,
 * where a PostgreSQL server is given (MAMORI_TEST_PG, set by the test
 * command), the sandboxed workers run on PostgreSQL; and erasing a
 * tenant beside a running daemon shuts its terminals out at the TLS
 * handshake (R6.2, R1.4).
 */
#include <libpq-fe.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "config/config.h"
#include "harness.h"
#include "pki/pki.h"
#include "staff.h"
#include "store/store.h"
#include "store/store_auth.h"

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

/* GET /healthz on the internal listener over a new connection with
 * terminal `name`'s certificate: the status, or -1 if the TLS handshake
 * refused it. */
static long
terminal_status(const struct instance *in, const char *name)
{
    char crt[300], key[300];
    struct h_response r;
    CURL *c;
    long st;

    snprintf(crt, sizeof(crt), "terminals/%s.crt", name);
    snprintf(key, sizeof(key), "terminals/%s.key", name);
    c = h_curl(in, crt, key);
    h_request(in, c, true, "GET", "/healthz", NULL, &r);
    st = r.rc == CURLE_OK ? r.status : -1;
    h_response_free(&r);
    curl_easy_cleanup(c);
    return st;
}

static void
new_terminal(const struct instance *in, const char *tenant, const char *name)
{
    CURL *c = h_terminal(in, tenant, name);

    assert_non_null(c);
    curl_easy_cleanup(c);
}

/* Mark terminal `name` revoked in the store, as the API does. */
static void
store_revoke(const struct instance *in, const char *name)
{
    static struct mamori_config cfg;
    struct store_config sc = { STORE_BACKEND_SQLITE, cfg.store_path, NULL, 1, 0 };
    struct store *st = NULL;
    char path[400], err[256], *pem = NULL;
    uint8_t fp[PKI_FP_LEN];
    size_t len;

    assert_int_equal(config_load(in->conf, &cfg, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/terminals/%s.crt", in->dir, name);
    assert_int_equal(util_read_file(path, 65536, &pem, &len), 0);
    assert_int_equal(pki_fingerprint(pem, fp), 0);
    free(pem);
    assert_int_equal(store_open(&sc, 0, &st), STORE_OK);
    assert_int_equal(store_terminal_revoke(st, fp), STORE_OK);
    store_close(st);
}

/* R6.2, R1.4: `mamori tenant erase` beside a running mamorid revokes the
 * erased tenant's terminal certificates in the list file and has the
 * daemon reload it: afterwards the handshake refuses all of them - also
 * one revoked through the API, whose store row (the only record of that
 * revocation until now) the erase deletes - and lets another tenant's
 * terminal in. */
static void
test_R6_2_erased_tenant_terminals_refused_at_handshake(void **state)
{
    char *create1[] = { (char *)h_bin("mamori"), "tenant", "create", "-c", NULL,
                        "131016", NULL };
    char *create2[] = { (char *)h_bin("mamori"), "tenant", "create", "-c", NULL,
                        "011002", NULL };
    char *erase[] = { (char *)h_bin("mamori"), "tenant", "erase", "-c", NULL,
                      "--confirm", "131016", "131016", NULL };
    char out[4096];
    struct instance in;
    long gen;

    (void)state;
    assert_int_equal(h_start(&in, NULL), 0);
    create1[4] = create2[4] = erase[4] = in.conf;
    assert_int_equal(h_run(create1, NULL, 0), 0);
    assert_int_equal(h_run(create2, NULL, 0), 0);
    new_terminal(&in, "131016", "chiyoda-1");
    new_terminal(&in, "131016", "chiyoda-lost");
    new_terminal(&in, "011002", "sapporo-1");
    assert_int_equal(terminal_status(&in, "chiyoda-1"), 200);

    /* One of them revoked through the store, as the API does: refused. */
    gen = h_state(&in, "revocation_generation");
    store_revoke(&in, "chiyoda-lost");
    assert_int_equal(kill(in.pid, SIGHUP), 0);
    assert_true(h_wait_state_above(&in, "revocation_generation", gen));
    assert_int_equal(terminal_status(&in, "chiyoda-lost"), -1);
    assert_int_equal(terminal_status(&in, "chiyoda-1"), 200);

    gen = h_state(&in, "revocation_generation");
    assert_int_equal(h_run(erase, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "tenant 131016: 2 terminal certificates revoked"));
    assert_non_null(strstr(out, "sent SIGHUP to mamorid"));
    assert_true(h_wait_state_above(&in, "revocation_generation", gen));

    assert_int_equal(terminal_status(&in, "chiyoda-1"), -1);
    assert_int_equal(terminal_status(&in, "chiyoda-lost"), -1);
    assert_int_equal(terminal_status(&in, "sapporo-1"), 200);
    assert_int_equal(h_state(&in, "revoked_terminals"), 2);
    assert_int_equal(h_stop(&in), 0);
    h_cleanup(&in);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_directory_starts_on_sqlite),
        cmocka_unit_test(test_unmigrated_database_refused),
        cmocka_unit_test(test_workers_run_on_postgresql),
        cmocka_unit_test(test_R6_2_erased_tenant_terminals_refused_at_handshake),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests_name("integration/store", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
