/*
 * staff.c - tenants, terminals and members of staff for the integration
 * tests (one copy for it_auth, it_audit_api, it_records, it_transfer).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "crypto/keyring.h"
#include "store/store.h"
#include "store/store_auth.h"

#include "staff.h"

void
h_staff_request(const struct instance *in, CURL *c, bool internal, const char *method,
                const char *path, const char *body, const struct h_cred *cred,
                struct h_response *r)
{
    h_request_cred(in, c, internal, method, path, body, cred, r);
    assert_int_equal(r->rc, CURLE_OK);
}

long
h_staff_status(const struct instance *in, CURL *c, bool internal, const char *method,
               const char *path, const char *body, const char *token)
{
    struct h_cred cred = { .token = token };
    struct h_response r;

    h_staff_request(in, c, internal, method, path, body, &cred, &r);
    h_response_free(&r);
    return r.status;
}

json_t *
h_staff_json(const struct instance *in, CURL *c, bool internal, const char *method,
             const char *path, const char *body, const char *token, long want)
{
    struct h_cred cred = { .token = token };
    struct h_response r;
    json_t *j;

    h_staff_request(in, c, internal, method, path, body, &cred, &r);
    if (r.status != want)
        fail_msg("%s %s: %ld, wanted %ld: %s", method, path, r.status, want,
                 r.body ? r.body : "");
    j = json_loads(r.body ? r.body : "", JSON_REJECT_DUPLICATES, NULL);
    h_response_free(&r);
    assert_non_null(j);
    return j;
}

int
h_base32_decode(const char *s, uint8_t *out, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint32_t buf = 0;
    int bits = 0;
    size_t o = 0;

    for (; *s && *s != '&'; s++) {
        const char *p = strchr(a, *s);
        if (p == NULL)
            return -1;
        buf = buf << 5 | (uint32_t)(p - a);
        bits += 5;
        if (bits >= 8) {
            if (o == n)
                return -1;
            out[o++] = (uint8_t)(buf >> (bits - 8));
            bits -= 8;
        }
    }
    return o == n ? 0 : -1;
}

static struct store_config
store_config_of(const struct mamori_config *cfg)
{
    return (struct store_config){ .backend = cfg->store_backend, .path = cfg->store_path,
                                  .conninfo = cfg->store_conninfo };
}

int
h_tenants_create(const struct mamori_config *cfg, const char *const *tenants, size_t n)
{
    struct store_config sc = store_config_of(cfg);
    struct keyring *kr = NULL;
    struct store *st = NULL;
    int rc = 0;

    if (keyring_open(cfg->master_key, cfg->keys_dir, NULL, &kr) != 0 ||
        store_open(&sc, 0, &st) != STORE_OK)
        rc = -1;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (keyring_tenant_create(kr, tenants[i]) != 0 ||
            store_tenant_create(st, tenants[i]) != STORE_OK)
            rc = -1;
    store_close(st);
    keyring_close(kr);
    return rc;
}

int
h_terminal_register(const struct instance *in, const char *tenant, const char *cert,
                    const char *name)
{
    char crt[400];
    char *argv[] = { (char *)h_bin("mamori"), "staff", "terminal-register", "-c",
                     (char *)in->conf, "--tenant", (char *)tenant, "--name", (char *)name,
                     "--cert", crt, NULL };

    snprintf(crt, sizeof(crt), "%s/terminals/%s.crt", in->dir, cert);
    return h_run(argv, NULL, 0) == 0 ? 0 : -1;
}

CURL *
h_terminal(const struct instance *in, const char *tenant, const char *name)
{
    char *issue[] = { (char *)h_bin("mamori"), "terminal", "issue", "-d", (char *)in->dir,
                      (char *)name, NULL };
    char crt[300], key[300];

    if (strcmp(name, "demo") != 0 && h_run(issue, NULL, 0) != 0)
        return NULL;
    if (h_terminal_register(in, tenant, name, name) != 0)
        return NULL;
    snprintf(crt, sizeof(crt), "terminals/%s.crt", name);
    snprintf(key, sizeof(key), "terminals/%s.key", name);
    return h_curl(in, crt, key);
}

int
h_staff_pending(const struct mamori_config *cfg, struct h_staff *a)
{
    struct store_config sc = store_config_of(cfg);
    struct store *st;
    uint8_t h[AUTH_HASH_LEN];
    int64_t now = time(NULL);
    int rc;

    auth_session_new(a->enrol, h);
    if (store_open(&sc, 0, &st) != STORE_OK)
        return -1;
    rc = store_staff_create(st, a->user, a->tenant, a->role, h, now + 600, now) == STORE_OK
         ? 0 : -1;
    store_close(st);
    return rc;
}

/* Enrol with a->password; the TOTP key of the otpauth URI into a->secret. */
static int
enrol(const struct instance *in, CURL *c, struct h_staff *a)
{
    char body[300];
    struct h_response r;
    const char *uri, *sec;
    json_t *j;
    int rc;

    snprintf(body, sizeof(body), "{\"secret\":\"%s\",\"password\":\"%s\"}", a->enrol,
             a->password);
    h_staff_request(in, c, true, "POST", "/v1/auth/enrol", body, NULL, &r);
    j = r.status == 200 ? h_json(&r) : NULL;
    h_response_free(&r);
    uri = json_string_value(json_object_get(j, "otpauth_uri"));
    sec = uri != NULL ? strstr(uri, "secret=") : NULL;
    rc = sec != NULL && h_base32_decode(sec + 7, a->secret, TOTP_SECRET_LEN) == 0 ? 0 : -1;
    json_decref(j);
    return rc;
}

long
h_staff_login(const struct instance *in, CURL *c, const struct h_staff *a,
              const char *password, int drift, char *token, char *csrf)
{
    char body[300], code[7];
    struct h_response r;
    long status;

    if (auth_totp_code(a->secret, time(NULL) + drift * TOTP_STEP, code) != 0)
        return -1;
    snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"%s\",\"code\":\"%s\"}",
             a->user, password, code);
    h_staff_request(in, c, true, "POST", "/v1/auth/login", body, NULL, &r);
    status = r.status;
    if (status == 200 && (token != NULL || csrf != NULL)) {
        json_t *j = h_json(&r);
        const char *t = json_string_value(json_object_get(j, "token"));
        const char *x = json_string_value(json_object_get(j, "csrf_token"));

        if (t == NULL || (csrf != NULL && x == NULL))
            status = -1;
        if (status == 200 && token != NULL)
            snprintf(token, SESSION_TOKEN_HEX + 1, "%s", t);
        if (status == 200 && csrf != NULL)
            snprintf(csrf, SESSION_TOKEN_HEX + 1, "%s", x);
        json_decref(j);
    }
    h_response_free(&r);
    return status;
}

int
h_staff_sign_in(const struct instance *in, const struct mamori_config *cfg, CURL *c,
                struct h_staff *a, char token[SESSION_TOKEN_HEX + 1])
{
    long st;

    if (h_staff_pending(cfg, a) != 0) {
        fprintf(stderr, "sign-in of %s: no pending account\n", a->user);
        return -1;
    }
    if (enrol(in, c, a) != 0) {
        fprintf(stderr, "sign-in of %s: enrolment failed\n", a->user);
        return -1;
    }
    st = h_staff_login(in, c, a, a->password, 0, token, NULL);
    if (st != 200) {
        fprintf(stderr, "sign-in of %s: login answered %ld\n", a->user, st);
        return -1;
    }
    return 0;
}

int
h_pg_use(const struct instance *in, const char *base, const char *tag, char *db, size_t dbsz)
{
    char sql[160], conninfo[1200];
    struct store_config sc = { STORE_BACKEND_POSTGRESQL, NULL, conninfo, 1, 0 };
    struct store *s = NULL;
    PGconn *pgc = PQconnectdb(base);
    PGresult *res;
    int rc = -1;

    snprintf(db, dbsz, "%s_%ld", tag, (long)getpid());
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    res = PQexec(pgc, sql);
    if (PQstatus(pgc) == CONNECTION_OK && PQresultStatus(res) == PGRES_COMMAND_OK) {
        /* in a connection string a later keyword overrides an earlier one */
        snprintf(conninfo, sizeof(conninfo), "%s dbname=%s", base, db);
        if (store_open(&sc, STORE_OPEN_MIGRATE, &s) == STORE_OK &&
            store_migrate(s, NULL, NULL) == STORE_OK &&
            h_set_conf(in, "store.backend", "postgresql") == 0 &&
            h_set_conf(in, "store.conninfo", conninfo) == 0)
            rc = 0;
        store_close(s);
    }
    PQclear(res);
    PQfinish(pgc);
    return rc;
}

void
h_pg_drop(const char *base, char *db)
{
    char sql[160];
    PGconn *pgc;

    if (db[0] == '\0')
        return;
    pgc = PQconnectdb(base);
    snprintf(sql, sizeof(sql), "DROP DATABASE %s", db);
    PQclear(PQexec(pgc, sql));
    PQfinish(pgc);
    db[0] = '\0';
}
