/*
 * staff.h - members of staff for the integration tests: tenants with
 * keys, registered terminals, pending accounts (as `mamori staff enrol`
 * makes them), enrolment and sign-in over HTTPS with password + TOTP
 * (R3.5, R6.1, R6.2), and requests that carry their credentials.
 *
 * The request helpers fail the running cmocka test when the transfer
 * itself fails (no connection, no TLS); an HTTP status is the caller's to
 * check.  Every h_response body is the caller's (h_response_free or free).
 */
#ifndef MAMORI_TEST_STAFF_H
#define MAMORI_TEST_STAFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/session.h"
#include "auth/totp.h"
#include "config/config.h"

#include "harness.h"

/* One member of staff; user, role, tenant and password are the test's
 * (not copied); enrol and secret are filled in by the helpers. */
struct h_staff {
    const char *user, *role, *tenant;
    const char *password;
    uint8_t     secret[TOTP_SECRET_LEN];       /* the TOTP key enrolment gave */
    char        enrol[SESSION_TOKEN_HEX + 1];  /* the one-time enrolment secret */
};

/* h_request_cred, failing the test unless the transfer completed. */
void h_staff_request(const struct instance *in, CURL *c, bool internal, const char *method,
                     const char *path, const char *body, const struct h_cred *cred,
                     struct h_response *r);

/* The HTTP status of a request with a bearer token (may be NULL). */
long h_staff_status(const struct instance *in, CURL *c, bool internal, const char *method,
                    const char *path, const char *body, const char *token);

/* A request with a bearer token that must answer `want` with a JSON body
 * (duplicate keys refused); the body parsed (caller decrefs). */
json_t *h_staff_json(const struct instance *in, CURL *c, bool internal, const char *method,
                     const char *path, const char *body, const char *token, long want);

/* RFC 4648 base32 (no padding) of exactly n bytes, up to a NUL or '&'
 * (the otpauth URI's next parameter): 0, or -1 on any other length or a
 * character outside the alphabet. */
int h_base32_decode(const char *s, uint8_t *out, size_t n);

/* Keys (the key holder's keyring) and the store row of each tenant, as
 * `mamori tenant create` makes them; 0 or -1. */
int h_tenants_create(const struct mamori_config *cfg, const char *const *tenants, size_t n);

/* A PostgreSQL database of the daemon's own on the test cluster at
 * `base` (a libpq connection string): "<tag>_<pid>" (written into db,
 * dbsz bytes), created, migrated, and set as in's store; 0 or -1. */
int h_pg_use(const struct instance *in, const char *base, const char *tag, char *db,
             size_t dbsz);

/* Drop the database h_pg_use made; nothing if db is "".  db is emptied. */
void h_pg_drop(const char *base, char *db);

/* `mamori staff terminal-register`: the certificate terminals/<cert>.crt
 * of the data directory, for `tenant`, under `name`; 0 or -1. */
int h_terminal_register(const struct instance *in, const char *tenant, const char *cert,
                        const char *name);

/* A terminal of `tenant` called `name`: issued (unless "demo", which init
 * made), registered under its name, and a handle with its certificate
 * (caller frees with curl_easy_cleanup); NULL on failure. */
CURL *h_terminal(const struct instance *in, const char *tenant, const char *name);

/* A pending account of a->tenant with a fresh enrolment secret in
 * a->enrol, written to the store as `mamori staff enrol` does; 0 or -1. */
int h_staff_pending(const struct mamori_config *cfg, struct h_staff *a);

/* Sign in on the internal listener with `password` and the TOTP code of
 * now + drift steps.  Returns the HTTP status (-1 if no code could be
 * made, or a 200 without the token and, if csrf is not NULL, the CSRF
 * token); on 200 the session token into token (if not NULL) and the CSRF
 * token into csrf (if not NULL), 65 bytes each. */
long h_staff_login(const struct instance *in, CURL *c, const struct h_staff *a,
                   const char *password, int drift, char *token, char *csrf);

/* h_staff_pending, enrolment with a->password over HTTPS (the TOTP key
 * into a->secret), and one sign-in: the session token into token; 0, or
 * -1 with the failed step on stderr. */
int h_staff_sign_in(const struct instance *in, const struct mamori_config *cfg, CURL *c,
                    struct h_staff *a, char token[SESSION_TOKEN_HEX + 1]);

#endif
