/*
 * it_tls.c - the two listeners' TLS policy against the real daemon
 * (R8.1 transport, R6.2 registered terminals and revocation, R1.5).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/util.h"
#include "harness.h"
#include "pki/pki.h"

static struct instance inst;

static int
setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    gnutls_global_init();
    return h_start(&inst, NULL);
}

static int
teardown(void **state)
{
    (void)state;
    int rc = h_stop(&inst);
    h_cleanup(&inst);
    gnutls_global_deinit();
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

static void
path_in(char *out, size_t n, const char *rel)
{
    snprintf(out, n, "%s/%s", inst.dir, rel);
}

static char *
slurp(const char *rel)
{
    char path[400], *text;
    size_t len;

    path_in(path, sizeof(path), rel);
    assert_int_equal(util_read_file(path, 1 << 20, &text, &len), 0);
    return text;
}

/* Issue a client certificate with the given issuer and validity; writes
 * NAME.crt/NAME.key into the data dir's terminals/ directory. */
static void
make_client_cert(const char *name, const struct pki_issuer *issuer, time_t nb, time_t na,
                 enum pki_kind kind)
{
    const char *dns[] = { "localhost", NULL };
    struct pki_spec spec = { kind, name, "mamori test", nb, na,
                             kind == PKI_KIND_SERVER ? dns : NULL, NULL };
    char *cert, *key, path[400];

    assert_int_equal(pki_issue(&spec, issuer, &cert, &key), 0);
    snprintf(path, sizeof(path), "%s/terminals/%s.crt", inst.dir, name);
    assert_int_equal(h_write(path, cert), 0);
    snprintf(path, sizeof(path), "%s/terminals/%s.key", inst.dir, name);
    assert_int_equal(h_write(path, key), 0);
    free(cert);
    pki_free_secret(key);
}

static long
get_status(bool internal, const char *cert, const char *key, const char *path,
           CURLcode *rc_out)
{
    CURL *c = h_curl(&inst, cert, key);
    struct h_response r;
    long st;

    h_request(&inst, c, internal, "GET", path, NULL, &r);
    st = r.rc == CURLE_OK ? r.status : -1;
    if (rc_out != NULL)
        *rc_out = r.rc;
    h_response_free(&r);
    curl_easy_cleanup(c);
    return st;
}

/* R1.5 / R8.1: the public listener serves without a client certificate. */
static void
test_public_listener_needs_no_certificate(void **state)
{
    (void)state;
    assert_int_equal(get_status(false, NULL, NULL, "/healthz", NULL), 200);
}

/* R8.1: no certificate, no internal service. */
static void
test_internal_refuses_missing_certificate(void **state)
{
    CURLcode rc;

    (void)state;
    assert_int_equal(get_status(true, NULL, NULL, "/healthz", &rc), -1);
    assert_int_not_equal(rc, CURLE_OK);
}

/* R6.2: the registered demo terminal gets in, and the request is bound to
 * exactly its certificate's fingerprint. */
static void
test_internal_accepts_terminal_and_binds_fingerprint(void **state)
{
    CURL *c = h_curl(&inst, "terminals/demo.crt", "terminals/demo.key");
    struct h_response r;
    uint8_t fp[PKI_FP_LEN];
    char hex[PKI_FP_HEX_LEN + 1];
    char *pem = slurp("terminals/demo.crt");
    json_t *doc;

    (void)state;
    assert_int_equal(pki_fingerprint(pem, fp), 0);
    assert_int_equal(util_hex_encode(fp, sizeof(fp), hex, sizeof(hex)), 0);
    h_request(&inst, c, true, "GET", "/v1/terminal", NULL, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    doc = h_json(&r);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "fingerprint")), hex);
    json_decref(doc);
    h_response_free(&r);
    curl_easy_cleanup(c);
    free(pem);
}

/* R8.1: a certificate from a CA the server does not trust is refused. */
static void
test_internal_refuses_unknown_ca(void **state)
{
    struct pki_spec ca = { PKI_KIND_CA, "rogue CA", NULL, time(NULL) - 60,
                           time(NULL) + 86400, NULL, NULL };
    char *ca_cert, *ca_key;
    struct pki_issuer rogue;

    (void)state;
    assert_int_equal(pki_issue(&ca, NULL, &ca_cert, &ca_key), 0);
    rogue.cert_pem = ca_cert;
    rogue.key_pem = ca_key;
    make_client_cert("rogue-ca-terminal", &rogue, time(NULL) - 60, time(NULL) + 86400,
                     PKI_KIND_CLIENT);
    assert_int_equal(get_status(true, "terminals/rogue-ca-terminal.crt",
                                "terminals/rogue-ca-terminal.key", "/healthz", NULL), -1);
    free(ca_cert);
    pki_free_secret(ca_key);
}

/* R8.1: a self-signed certificate (the libmicrohttpd trap) is refused. */
static void
test_internal_refuses_self_signed(void **state)
{
    (void)state;
    make_client_cert("self-signed", NULL, time(NULL) - 60, time(NULL) + 86400,
                     PKI_KIND_CLIENT);
    assert_int_equal(get_status(true, "terminals/self-signed.crt",
                                "terminals/self-signed.key", "/healthz", NULL), -1);
}

static struct pki_issuer
terminal_ca(char **cert, char **key)
{
    struct pki_issuer is;

    *cert = slurp("pki/terminal-ca.crt");
    *key = slurp("pki/terminal-ca.key");
    is.cert_pem = *cert;
    is.key_pem = *key;
    return is;
}

/* R8.1: an expired certificate from the right CA is refused, while one
 * from the same CA and still valid is accepted (the control). */
static void
test_internal_refuses_expired(void **state)
{
    char *cert, *key;
    struct pki_issuer is = terminal_ca(&cert, &key);
    time_t now = time(NULL);

    (void)state;
    make_client_cert("expired", &is, now - 10 * 86400, now - 86400, PKI_KIND_CLIENT);
    make_client_cert("valid-control", &is, now - 60, now + 86400, PKI_KIND_CLIENT);
    assert_int_equal(get_status(true, "terminals/expired.crt", "terminals/expired.key",
                                "/healthz", NULL), -1);
    assert_int_equal(get_status(true, "terminals/valid-control.crt",
                                "terminals/valid-control.key", "/healthz", NULL), 200);
    free(cert);
    pki_free_secret(key);
}

/* A certificate of the terminal CA that is not for TLS clients is refused. */
static void
test_internal_refuses_wrong_purpose(void **state)
{
    char *cert, *key;
    struct pki_issuer is = terminal_ca(&cert, &key);

    (void)state;
    make_client_cert("server-purpose", &is, time(NULL) - 60, time(NULL) + 86400,
                     PKI_KIND_SERVER);
    assert_int_equal(get_status(true, "terminals/server-purpose.crt",
                                "terminals/server-purpose.key", "/healthz", NULL), -1);
    free(cert);
    pki_free_secret(key);
}

/* R6.2: revoking a terminal while its keep-alive connection is open
 * refuses its very next request on that same connection, without a
 * restart, and any new connection from it; other terminals carry on. */
static void
test_revocation_applies_to_open_connection(void **state)
{
    char *argv_issue[] = { (char *)h_bin("mamori"), "terminal", "issue", "-d", inst.dir,
                           "lost-laptop", NULL };
    char *argv_revoke[] = { (char *)h_bin("mamori"), "terminal", "revoke", "-d", inst.dir,
                            "--reason", "reported lost", "lost-laptop", NULL };
    CURL *c;
    struct h_response r;
    long gen;
    json_t *doc;
    pid_t pid_before = inst.pid;

    (void)state;
    assert_int_equal(h_run(argv_issue, NULL, 0), 0);
    c = h_curl(&inst, "terminals/lost-laptop.crt", "terminals/lost-laptop.key");
    h_request(&inst, c, true, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.connects, 1);
    h_response_free(&r);
    h_request(&inst, c, true, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.connects, 0);          /* the same connection */
    h_response_free(&r);

    gen = h_state(&inst, "revocation_generation");
    assert_int_equal(h_run(argv_revoke, NULL, 0), 0);   /* writes the list, SIGHUPs */
    assert_true(h_wait_state_above(&inst, "revocation_generation", gen));

    h_request(&inst, c, true, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.connects, 0);          /* still that open connection */
    assert_int_equal(r.status, 403);
    doc = h_json(&r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "error"),
                                                          "code")), "terminal_revoked");
    json_decref(doc);
    h_response_free(&r);
    curl_easy_cleanup(c);

    /* A new connection fails at the handshake. */
    assert_int_equal(get_status(true, "terminals/lost-laptop.crt",
                                "terminals/lost-laptop.key", "/healthz", NULL), -1);
    /* Other terminals are not affected, and nothing restarted. */
    assert_int_equal(get_status(true, "terminals/demo.crt", "terminals/demo.key",
                                "/healthz", NULL), 200);
    assert_int_equal(h_state(&inst, "pid"), pid_before);
    assert_int_equal(h_state(&inst, "revoked_terminals"), 1);
}

static int
handshake(uint16_t port, const char *prio, const char *cert, const char *key,
          int *version)
{
    gnutls_session_t s = NULL;
    gnutls_certificate_credentials_t cred = NULL;
    char ca[400], cp[400], kp[400];
    int fd = -1, r;

    path_in(ca, sizeof(ca), "pki/ca.crt");
    if (cert != NULL && key != NULL) {
        path_in(cp, sizeof(cp), cert);
        path_in(kp, sizeof(kp), key);
    }
    r = h_tls_connect(port, prio, ca, cert && key ? cp : NULL, cert && key ? kp : NULL,
                      &s, &cred, &fd);
    if (r == 0 && version != NULL)
        *version = (int)gnutls_protocol_get_version(s);
    h_tls_close(s, cred, fd);
    return r;
}

/* R8.1: TLS 1.1 is refused on both listeners; the same client offering
 * TLS 1.2 succeeds (so the refusal is the server's doing). */
static void
test_tls11_refused(void **state)
{
    int v = 0;

    (void)state;
    assert_int_not_equal(handshake(inst.public_port, "NORMAL:-VERS-ALL:+VERS-TLS1.1",
                                   NULL, NULL, NULL), 0);
    assert_int_not_equal(handshake(inst.internal_port, "NORMAL:-VERS-ALL:+VERS-TLS1.1",
                                   "terminals/demo.crt", "terminals/demo.key", NULL), 0);
    assert_int_equal(handshake(inst.public_port, "NORMAL:-VERS-ALL:+VERS-TLS1.2",
                               NULL, NULL, &v), 0);
    assert_int_equal(v, GNUTLS_TLS1_2);
}

/* R8.1: TLS 1.3 is what a modern client gets. */
static void
test_tls13_preferred(void **state)
{
    int v = 0;

    (void)state;
    assert_int_equal(handshake(inst.internal_port, "NORMAL", "terminals/demo.crt",
                               "terminals/demo.key", &v), 0);
    assert_int_equal(v, GNUTLS_TLS1_3);
}

/* R8.1: only AEAD suites: a TLS 1.2 client offering only CBC is refused,
 * the same client with GCM gets in. */
static void
test_non_aead_suites_refused(void **state)
{
    (void)state;
    assert_int_not_equal(handshake(inst.public_port,
                                   "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC:-MAC-ALL:+SHA1:+SHA256",
                                   NULL, NULL, NULL), 0);
    assert_int_equal(handshake(inst.public_port,
                               "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM",
                               NULL, NULL, NULL), 0);
}

/* R1.5: internal-only routes do not exist on the public listener. */
static void
test_internal_route_absent_on_public(void **state)
{
    (void)state;
    assert_int_equal(get_status(false, NULL, NULL, "/v1/terminal", NULL), 404);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_public_listener_needs_no_certificate),
        cmocka_unit_test(test_internal_refuses_missing_certificate),
        cmocka_unit_test(test_internal_accepts_terminal_and_binds_fingerprint),
        cmocka_unit_test(test_internal_refuses_unknown_ca),
        cmocka_unit_test(test_internal_refuses_self_signed),
        cmocka_unit_test(test_internal_refuses_expired),
        cmocka_unit_test(test_internal_refuses_wrong_purpose),
        cmocka_unit_test(test_revocation_applies_to_open_connection),
        cmocka_unit_test(test_tls11_refused),
        cmocka_unit_test(test_tls13_preferred),
        cmocka_unit_test(test_non_aead_suites_refused),
        cmocka_unit_test(test_internal_route_absent_on_public),
    };
    return cmocka_run_group_tests_name("integration/tls", tests, setup, teardown);
}
