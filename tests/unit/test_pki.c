/*
 * test_pki.c - the development PKI (R6.2 terminal certificates, R8.1 TLS).
 *
 * Every property is checked with GnuTLS's own verifier or an independent
 * computation, and every refusal has a positive control next to it so a
 * test cannot pass because everything fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "pki/pki.h"

#define DAY 86400

struct fixture {
    char *server_ca, *server_ca_key;
    char *term_ca, *term_ca_key;
};

static struct pki_spec
spec_of(enum pki_kind kind, const char *cn, time_t nb, time_t na)
{
    struct pki_spec s;

    memset(&s, 0, sizeof(s));
    s.kind = kind;
    s.common_name = cn;
    s.not_before = nb;
    s.not_after = na;
    return s;
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    time_t now = time(NULL);
    struct pki_spec ca = spec_of(PKI_KIND_CA, "test server CA", now - DAY,
                                 now + 3650 * DAY);
    struct pki_spec tca = spec_of(PKI_KIND_CA, "test terminal CA", now - DAY,
                                  now + 3650 * DAY);

    if (f == NULL || sodium_init() < 0 ||
        pki_issue(&ca, NULL, &f->server_ca, &f->server_ca_key) != 0 ||
        pki_issue(&tca, NULL, &f->term_ca, &f->term_ca_key) != 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    free(f->server_ca);
    free(f->term_ca);
    pki_free_secret(f->server_ca_key);
    pki_free_secret(f->term_ca_key);
    free(f);
    return 0;
}

static gnutls_x509_crt_t
crt_of(const char *pem)
{
    gnutls_x509_crt_t crt;
    gnutls_datum_t d = { (unsigned char *)(uintptr_t)pem,
                         (unsigned int)strlen(pem) };

    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
    return crt;
}

/* GnuTLS's verdict on `pem` against the single trust anchor `ca_pem`,
 * for a key purpose and (when not NULL) a host name.  0 = trusted. */
static unsigned
verify(const char *pem, const char *ca_pem, const char *purpose,
       const char *host)
{
    gnutls_x509_trust_list_t tl;
    gnutls_x509_crt_t crt = crt_of(pem), ca = crt_of(ca_pem);
    gnutls_typed_vdata_st vd[2];
    unsigned n = 0, status = 0;

    assert_int_equal(gnutls_x509_trust_list_init(&tl, 0), 0);
    assert_int_equal(gnutls_x509_trust_list_add_cas(tl, &ca, 1, 0), 1);
    vd[n].type = GNUTLS_DT_KEY_PURPOSE_OID;
    vd[n].data = (unsigned char *)(uintptr_t)purpose;
    vd[n++].size = 0;
    if (host != NULL) {
        vd[n].type = GNUTLS_DT_DNS_HOSTNAME;
        vd[n].data = (unsigned char *)(uintptr_t)host;
        vd[n++].size = 0;
    }
    assert_int_equal(gnutls_x509_trust_list_verify_crt2(tl, &crt, 1, vd, n,
                                                        0, &status, NULL), 0);
    gnutls_x509_trust_list_deinit(tl, 1);   /* frees ca too */
    gnutls_x509_crt_deinit(crt);
    return status;
}

static void
issue_ok(const struct pki_spec *s, const char *ca, const char *ca_key,
         char **crt, char **key)
{
    struct pki_issuer iss = { ca, ca_key };

    assert_int_equal(pki_issue(s, ca != NULL ? &iss : NULL, crt, key), 0);
    assert_non_null(strstr(*crt, "-----BEGIN CERTIFICATE-----"));
    assert_non_null(strstr(*key, "PRIVATE KEY-----"));
}

static void
key_id(gnutls_x509_crt_t crt, unsigned char id[20])
{
    size_t len = 20;

    assert_int_equal(gnutls_x509_crt_get_key_id(crt, 0, id, &len), 0);
    assert_int_equal(len, 20);
}

/* ---- CA ---------------------------------------------------------------- */

/* A CA: v3, CA:TRUE critical, keyCertSign|cRLSign critical, SKI = AKI
 * (self-signed), P-256, ECDSA-SHA256, positive 16-byte serial. */
static void
test_ca_profile(void **state)
{
    struct fixture *f = *state;
    gnutls_x509_crt_t crt = crt_of(f->server_ca);
    unsigned char ski[64], aki[64], serial[32];
    size_t skilen = sizeof(ski), akilen = sizeof(aki), slen = sizeof(serial);
    unsigned critical = 0, usage = 0, bits = 0, ca = 0;
    int pathlen = 0;

    assert_int_equal(gnutls_x509_crt_get_version(crt), 3);
    assert_int_equal(gnutls_x509_crt_get_basic_constraints(crt, &critical,
                                                            &ca, &pathlen), 1);
    assert_int_equal(critical, 1);
    assert_int_equal(gnutls_x509_crt_get_key_usage(crt, &usage, &critical), 0);
    assert_int_equal(critical, 1);
    assert_int_equal(usage, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
    assert_int_equal(gnutls_x509_crt_get_subject_key_id(crt, ski, &skilen,
                                                        &critical), 0);
    assert_int_equal(gnutls_x509_crt_get_authority_key_id(crt, aki, &akilen,
                                                          &critical), 0);
    assert_int_equal(skilen, akilen);
    assert_memory_equal(ski, aki, skilen);
    assert_int_equal(gnutls_x509_crt_get_pk_algorithm(crt, &bits),
                     GNUTLS_PK_ECDSA);
    assert_int_equal(bits, 256);
    assert_int_equal(gnutls_x509_crt_get_signature_algorithm(crt),
                     GNUTLS_SIGN_ECDSA_SHA256);
    assert_int_equal(gnutls_x509_crt_get_serial(crt, serial, &slen), 0);
    assert_int_equal(slen, 16);
    assert_true((serial[0] & 0x80) == 0);
    /* The CA is its own trust anchor. */
    gnutls_x509_crt_deinit(crt);
}

/* Serials are random: two certificates from one spec differ. */
static void
test_serials_differ(void **state)
{
    struct fixture *f = *state;
    time_t now = time(NULL);
    struct pki_spec s = spec_of(PKI_KIND_CLIENT, "t", now, now + DAY);
    char *c1, *k1, *c2, *k2;
    unsigned char s1[32], s2[32];
    size_t l1 = sizeof(s1), l2 = sizeof(s2);
    gnutls_x509_crt_t x1, x2;

    issue_ok(&s, f->term_ca, f->term_ca_key, &c1, &k1);
    issue_ok(&s, f->term_ca, f->term_ca_key, &c2, &k2);
    x1 = crt_of(c1);
    x2 = crt_of(c2);
    assert_int_equal(gnutls_x509_crt_get_serial(x1, s1, &l1), 0);
    assert_int_equal(gnutls_x509_crt_get_serial(x2, s2, &l2), 0);
    assert_int_equal(l1, 16);
    assert_int_equal(l2, 16);
    assert_memory_not_equal(s1, s2, 16);
    assert_string_not_equal(k1, k2);
    gnutls_x509_crt_deinit(x1);
    gnutls_x509_crt_deinit(x2);
    free(c1);
    free(c2);
    pki_free_secret(k1);
    pki_free_secret(k2);
}

/* ---- server (R8.1) ----------------------------------------------------- */

static void
test_server_cert(void **state)
{
    static const char *const dns[] = { "localhost", NULL };
    static const char *const ips[] = { "127.0.0.1", "::1", NULL };
    struct fixture *f = *state;
    time_t now = time(NULL);
    struct pki_spec s = spec_of(PKI_KIND_SERVER, "localhost", now - 60,
                                now + 365 * DAY);
    unsigned char v4[4], v6[16], aki[64], ski[64];
    size_t akilen = sizeof(aki), skilen = sizeof(ski);
    unsigned critical = 0, ca = 1;
    gnutls_x509_crt_t crt, cacrt;
    char *pem, *key;
    int pathlen;

    s.dns_names = dns;
    s.ip_addrs = ips;
    issue_ok(&s, f->server_ca, f->server_ca_key, &pem, &key);

    /* Trusted by its CA for TLS server auth and the name "localhost". */
    assert_int_equal(verify(pem, f->server_ca, GNUTLS_KP_TLS_WWW_SERVER,
                            "localhost"), 0);
    /* ...but not for another host name, nor as a client certificate. */
    assert_int_not_equal(verify(pem, f->server_ca, GNUTLS_KP_TLS_WWW_SERVER,
                                "evil.example"), 0);
    assert_int_not_equal(verify(pem, f->server_ca, GNUTLS_KP_TLS_WWW_CLIENT,
                                NULL), 0);
    /* ...and not by the terminal CA. */
    assert_int_not_equal(verify(pem, f->term_ca, GNUTLS_KP_TLS_WWW_SERVER,
                                "localhost"), 0);

    crt = crt_of(pem);
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", v4), 1);
    assert_int_equal(inet_pton(AF_INET6, "::1", v6), 1);
    assert_true(gnutls_x509_crt_check_ip(crt, v4, 4, 0));
    assert_true(gnutls_x509_crt_check_ip(crt, v6, 16, 0));
    assert_int_equal(inet_pton(AF_INET, "127.0.0.2", v4), 1);
    assert_false(gnutls_x509_crt_check_ip(crt, v4, 4, 0));
    assert_int_equal(gnutls_x509_crt_get_basic_constraints(crt, &critical,
                                                            &ca, &pathlen), 0);
    assert_int_equal(ca, 0);
    /* AKI names the issuer's key. */
    cacrt = crt_of(f->server_ca);
    assert_int_equal(gnutls_x509_crt_get_authority_key_id(crt, aki, &akilen,
                                                          &critical), 0);
    assert_int_equal(gnutls_x509_crt_get_subject_key_id(cacrt, ski, &skilen,
                                                        &critical), 0);
    assert_int_equal(akilen, skilen);
    assert_memory_equal(aki, ski, akilen);
    gnutls_x509_crt_deinit(cacrt);
    gnutls_x509_crt_deinit(crt);
    free(pem);
    pki_free_secret(key);
}

/* ---- client / terminal (R6.2) ----------------------------------------- */

static void
test_client_cert(void **state)
{
    struct fixture *f = *state;
    time_t now = time(NULL);
    struct pki_spec s = spec_of(PKI_KIND_CLIENT, "clerk-01", now - 60,
                                now + 365 * DAY);
    char *pem, *key, oid[128], name[128];
    size_t oidlen = sizeof(oid), namelen = sizeof(name);
    unsigned critical, usage = 0;
    gnutls_x509_crt_t crt;

    issue_ok(&s, f->term_ca, f->term_ca_key, &pem, &key);
    /* Positive control: the terminal CA trusts it for client auth. */
    assert_int_equal(verify(pem, f->term_ca, GNUTLS_KP_TLS_WWW_CLIENT, NULL), 0);
    /* R6.2/R8.1: the server CA does not. */
    assert_true(verify(pem, f->server_ca, GNUTLS_KP_TLS_WWW_CLIENT, NULL) &
                GNUTLS_CERT_INVALID);
    /* Not usable as a server certificate. */
    assert_int_not_equal(verify(pem, f->term_ca, GNUTLS_KP_TLS_WWW_SERVER,
                                NULL), 0);

    crt = crt_of(pem);
    assert_int_equal(gnutls_x509_crt_get_key_purpose_oid(crt, 0, oid, &oidlen,
                                                         &critical), 0);
    assert_string_equal(oid, GNUTLS_KP_TLS_WWW_CLIENT);
    oidlen = sizeof(oid);
    assert_true(gnutls_x509_crt_get_key_purpose_oid(crt, 1, oid, &oidlen,
                                                    &critical) < 0);
    assert_int_equal(gnutls_x509_crt_get_key_usage(crt, &usage, &critical), 0);
    assert_int_equal(usage, GNUTLS_KEY_DIGITAL_SIGNATURE);
    assert_int_equal(gnutls_x509_crt_get_dn_by_oid(crt,
        GNUTLS_OID_X520_COMMON_NAME, 0, 0, name, &namelen), 0);
    assert_string_equal(name, "clerk-01");
    gnutls_x509_crt_deinit(crt);
    free(pem);
    pki_free_secret(key);
}

/* A self-signed certificate, and one from a look-alike CA with the very
 * same name, are both refused by the terminal CA. */
static void
test_forged_terminal_refused(void **state)
{
    struct fixture *f = *state;
    time_t now = time(NULL);
    struct pki_spec self = spec_of(PKI_KIND_CLIENT, "clerk-01", now - 60,
                                   now + DAY);
    struct pki_spec fake = spec_of(PKI_KIND_CA, "test terminal CA", now - 60,
                                   now + DAY);
    char *pem, *key, *fca, *fkey, *forged, *fgkey;

    issue_ok(&self, NULL, NULL, &pem, &key);
    assert_true(verify(pem, f->term_ca, GNUTLS_KP_TLS_WWW_CLIENT, NULL) &
                GNUTLS_CERT_INVALID);

    issue_ok(&fake, NULL, NULL, &fca, &fkey);
    issue_ok(&self, fca, fkey, &forged, &fgkey);
    /* Trusted by the look-alike (so the certificate itself is fine)... */
    assert_int_equal(verify(forged, fca, GNUTLS_KP_TLS_WWW_CLIENT, NULL), 0);
    /* ...but not by the real terminal CA of the same name. */
    assert_true(verify(forged, f->term_ca, GNUTLS_KP_TLS_WWW_CLIENT, NULL) &
                GNUTLS_CERT_INVALID);
    free(pem);
    free(fca);
    free(forged);
    pki_free_secret(key);
    pki_free_secret(fkey);
    pki_free_secret(fgkey);
}

/* Past dates are honoured and GnuTLS calls the result expired; future
 * ones make a certificate not yet valid. */
static void
test_expired_and_future(void **state)
{
    struct fixture *f = *state;
    time_t now = time(NULL);
    struct pki_spec old = spec_of(PKI_KIND_CLIENT, "old", now - 10 * DAY,
                                  now - DAY);
    struct pki_spec soon = spec_of(PKI_KIND_CLIENT, "soon", now + DAY,
                                   now + 10 * DAY);
    struct pki_cert_info info;
    char *pem, *key, *pem2, *key2;
    unsigned st;

    issue_ok(&old, f->term_ca, f->term_ca_key, &pem, &key);
    st = verify(pem, f->term_ca, GNUTLS_KP_TLS_WWW_CLIENT, NULL);
    assert_true(st & GNUTLS_CERT_EXPIRED);
    assert_true(st & GNUTLS_CERT_INVALID);
    assert_int_equal(pki_cert_info(pem, &info), 0);
    assert_int_equal(info.not_after, old.not_after);
    assert_int_equal(info.not_before, old.not_before);
    assert_string_equal(info.common_name, "old");
    assert_false(info.is_ca);

    issue_ok(&soon, f->term_ca, f->term_ca_key, &pem2, &key2);
    st = verify(pem2, f->term_ca, GNUTLS_KP_TLS_WWW_CLIENT, NULL);
    assert_true(st & GNUTLS_CERT_NOT_ACTIVATED);
    free(pem);
    free(pem2);
    pki_free_secret(key);
    pki_free_secret(key2);
}

/* ---- CSRs (R6.2: the terminal's key never leaves it) ------------------ */

static gnutls_x509_crq_t
crq_of(const char *pem)
{
    gnutls_x509_crq_t crq;
    gnutls_datum_t d = { (unsigned char *)(uintptr_t)pem,
                         (unsigned int)strlen(pem) };

    assert_int_equal(gnutls_x509_crq_init(&crq), 0);
    assert_int_equal(gnutls_x509_crq_import(crq, &d, GNUTLS_X509_FMT_PEM), 0);
    return crq;
}

static void
test_csr_signing(void **state)
{
    struct fixture *f = *state;
    struct pki_issuer iss = { f->term_ca, f->term_ca_key };
    time_t now = time(NULL);
    struct pki_spec s = spec_of(PKI_KIND_CLIENT, "tablet-7", now - 60,
                                now + 30 * DAY);
    unsigned char cid[20], qid[20], kid[20];
    size_t qlen = 20, klen = 20, namelen;
    char *csr, *key, *pem = NULL, name[128], dn[512];
    size_t dnlen = sizeof(dn);
    gnutls_x509_crq_t crq;
    gnutls_x509_crt_t crt;
    gnutls_x509_privkey_t pk;
    gnutls_datum_t d;

    /* The terminal asks for a name of its own choosing. */
    assert_int_equal(pki_make_csr("chosen-by-terminal", &csr, &key), 0);
    assert_non_null(strstr(csr, "CERTIFICATE REQUEST-----"));
    assert_int_equal(pki_sign_csr(csr, &s, &iss, &pem), 0);
    assert_int_equal(verify(pem, f->term_ca, GNUTLS_KP_TLS_WWW_CLIENT, NULL), 0);

    /* The certificate's key is the CSR's, which is the terminal's. */
    crt = crt_of(pem);
    crq = crq_of(csr);
    key_id(crt, cid);
    assert_int_equal(gnutls_x509_crq_get_key_id(crq, 0, qid, &qlen), 0);
    assert_memory_equal(cid, qid, 20);
    assert_int_equal(gnutls_x509_privkey_init(&pk), 0);
    d.data = (unsigned char *)key;
    d.size = (unsigned int)strlen(key);
    assert_int_equal(gnutls_x509_privkey_import2(pk, &d, GNUTLS_X509_FMT_PEM,
                                                 NULL, 0), 0);
    assert_int_equal(gnutls_x509_privkey_get_key_id(pk, 0, kid, &klen), 0);
    assert_memory_equal(cid, kid, 20);

    /* The subject is the spec's; the terminal's choice is gone. */
    namelen = sizeof(name);
    assert_int_equal(gnutls_x509_crt_get_dn_by_oid(crt,
        GNUTLS_OID_X520_COMMON_NAME, 0, 0, name, &namelen), 0);
    assert_string_equal(name, "tablet-7");
    assert_int_equal(gnutls_x509_crt_get_dn(crt, dn, &dnlen), 0);
    assert_null(strstr(dn, "chosen-by-terminal"));

    gnutls_x509_privkey_deinit(pk);
    gnutls_x509_crq_deinit(crq);
    gnutls_x509_crt_deinit(crt);
    free(csr);
    free(pem);
    pki_free_secret(key);
}

/* A copy of the CSR with one bit of the first `needle` in its DER (part
 * of what the terminal signed) flipped. */
static char *
tamper_csr(const char *csr, const char *needle)
{
    gnutls_datum_t in = { (unsigned char *)(uintptr_t)csr,
                          (unsigned int)strlen(csr) };
    gnutls_datum_t der, out;
    size_t n = strlen(needle);
    char *pem;

    assert_int_equal(gnutls_pem_base64_decode2("NEW CERTIFICATE REQUEST", &in,
                                               &der), 0);
    bool found = false;

    for (unsigned i = 0; !found && i + n <= der.size; i++) {
        if (memcmp(der.data + i, needle, n) == 0) {
            der.data[i] ^= 0x01;
            found = true;
        }
    }
    assert_true(found);
    assert_int_equal(gnutls_pem_base64_encode2("NEW CERTIFICATE REQUEST", &der,
                                               &out), 0);
    pem = calloc(1, out.size + 1);
    assert_non_null(pem);
    memcpy(pem, out.data, out.size);
    gnutls_free(der.data);
    gnutls_free(out.data);
    return pem;
}

/* A CSR whose signed content was changed is refused; so is garbage. */
static void
test_csr_broken_signature(void **state)
{
    struct fixture *f = *state;
    struct pki_issuer iss = { f->term_ca, f->term_ca_key };
    time_t now = time(NULL);
    struct pki_spec s = spec_of(PKI_KIND_CLIENT, "tablet-8", now, now + DAY);
    char *csr, *key, *bad, *pem = NULL;

    assert_int_equal(pki_make_csr("tablet-8x", &csr, &key), 0);
    bad = tamper_csr(csr, "tablet-8x");
    assert_int_equal(pki_sign_csr(bad, &s, &iss, &pem), -1);
    assert_null(pem);
    assert_int_equal(pki_sign_csr("-----BEGIN CERTIFICATE REQUEST-----\n"
                                  "AAAA\n-----END CERTIFICATE REQUEST-----\n",
                                  &s, &iss, &pem), -1);
    /* Positive control: the untouched CSR is signed. */
    assert_int_equal(pki_sign_csr(csr, &s, &iss, &pem), 0);
    free(pem);
    free(bad);
    free(csr);
    pki_free_secret(key);
}

/* A CSR for a weak key (RSA-1024) is refused even if its signature holds. */
static void
test_csr_weak_key(void **state)
{
    struct fixture *f = *state;
    struct pki_issuer iss = { f->term_ca, f->term_ca_key };
    time_t now = time(NULL);
    struct pki_spec s = spec_of(PKI_KIND_CLIENT, "weak", now, now + DAY);
    gnutls_x509_privkey_t k;
    gnutls_x509_crq_t crq;
    gnutls_datum_t d;
    char *pem = NULL, *csr;

    assert_int_equal(gnutls_x509_privkey_init(&k), 0);
    assert_int_equal(gnutls_x509_privkey_generate(k, GNUTLS_PK_RSA, 1024, 0), 0);
    assert_int_equal(gnutls_x509_crq_init(&crq), 0);
    assert_int_equal(gnutls_x509_crq_set_dn_by_oid(crq,
        GNUTLS_OID_X520_COMMON_NAME, 0, "weak", 4), 0);
    assert_int_equal(gnutls_x509_crq_set_key(crq, k), 0);
    assert_int_equal(gnutls_x509_crq_sign2(crq, k, GNUTLS_DIG_SHA256, 0), 0);
    assert_int_equal(gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_PEM, &d), 0);
    csr = calloc(1, d.size + 1);
    assert_non_null(csr);
    memcpy(csr, d.data, d.size);
    assert_int_equal(gnutls_x509_crq_verify(crq, 0), 0);   /* signature ok */
    assert_int_equal(pki_sign_csr(csr, &s, &iss, &pem), -1);
    gnutls_free(d.data);
    gnutls_x509_crq_deinit(crq);
    gnutls_x509_privkey_deinit(k);
    free(csr);
}

/* ---- fingerprints ------------------------------------------------------ */

/* SHA-256 of the DER, computed with libsodium, and with certtool when
 * it is installed; only the first certificate of a bundle counts. */
static void
test_fingerprint(void **state)
{
    struct fixture *f = *state;
    time_t now = time(NULL);
    struct pki_spec s = spec_of(PKI_KIND_CLIENT, "fp", now, now + DAY);
    uint8_t fp[PKI_FP_LEN], ref[crypto_hash_sha256_BYTES];
    char hex[PKI_FP_HEX_LEN + 1], refhex[PKI_FP_HEX_LEN + 1];
    char *pem, *key, *bundle;
    gnutls_x509_crt_t crt;
    gnutls_datum_t der;

    issue_ok(&s, f->term_ca, f->term_ca_key, &pem, &key);
    crt = crt_of(pem);
    assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der), 0);
    crypto_hash_sha256(ref, der.data, der.size);
    gnutls_free(der.data);
    gnutls_x509_crt_deinit(crt);

    assert_int_equal(pki_fingerprint(pem, fp), 0);
    assert_memory_equal(fp, ref, PKI_FP_LEN);
    assert_int_equal(pki_fingerprint_hex(pem, hex), 0);
    assert_int_equal(util_hex_encode(ref, sizeof(ref), refhex,
                                     sizeof(refhex)), 0);
    assert_string_equal(hex, refhex);

    /* Leaf first, CA second: the leaf's fingerprint. */
    bundle = malloc(strlen(pem) + strlen(f->term_ca) + 1);
    assert_non_null(bundle);
    strcpy(bundle, pem);
    strcat(bundle, f->term_ca);
    assert_int_equal(pki_fingerprint(bundle, fp), 0);
    assert_memory_equal(fp, ref, PKI_FP_LEN);
    assert_int_equal(pki_fingerprint("not a certificate", fp), -1);

    if (access("/usr/bin/certtool", X_OK) == 0) {
        char cmd[256], line[256] = "", path[] = "/tmp/mamori-fp-XXXXXX";
        int fd = mkstemp(path);
        FILE *p;

        assert_true(fd >= 0);
        assert_int_equal(write(fd, pem, strlen(pem)), (ssize_t)strlen(pem));
        close(fd);
        snprintf(cmd, sizeof(cmd), "/usr/bin/certtool --fingerprint "
                 "--hash=sha256 --infile=%s 2>/dev/null", path);
        p = popen(cmd, "r");
        assert_non_null(p);
        assert_non_null(fgets(line, sizeof(line), p));
        pclose(p);
        unlink(path);
        line[strcspn(line, "\n")] = '\0';
        assert_string_equal(line, hex);
    }
    free(bundle);
    free(pem);
    pki_free_secret(key);
}

/* ---- refusals ---------------------------------------------------------- */

static void
test_bad_specs_refused(void **state)
{
    static const char *const dns[] = { "localhost", NULL };
    static const char *const badip[] = { "not-an-ip", NULL };
    struct fixture *f = *state;
    struct pki_issuer iss = { f->term_ca, f->term_ca_key };
    struct pki_issuer mixed = { f->term_ca, f->server_ca_key };
    time_t now = time(NULL);
    struct pki_spec s = spec_of(PKI_KIND_CLIENT, "x", now, now + DAY);
    char *crt = NULL, *key = NULL, *leaf, *leafkey;
    struct pki_issuer notca;

    /* Positive control. */
    assert_int_equal(pki_issue(&s, &iss, &crt, &key), 0);
    free(crt);
    pki_free_secret(key);
    crt = key = NULL;

    s.not_after = s.not_before;                     /* empty validity */
    assert_int_equal(pki_issue(&s, &iss, &crt, &key), -1);
    s.not_after = now + DAY;
    s.common_name = "";
    assert_int_equal(pki_issue(&s, &iss, &crt, &key), -1);
    s.common_name = "x";
    s.dns_names = dns;                              /* SAN on a client */
    assert_int_equal(pki_issue(&s, &iss, &crt, &key), -1);
    s.dns_names = NULL;
    s.kind = PKI_KIND_SERVER;
    s.ip_addrs = badip;
    assert_int_equal(pki_issue(&s, &iss, &crt, &key), -1);
    s.ip_addrs = NULL;
    s.kind = PKI_KIND_CLIENT;
    /* A CA certificate with somebody else's key. */
    assert_int_equal(pki_issue(&s, &mixed, &crt, &key), -1);
    /* A leaf is no issuer. */
    assert_int_equal(pki_issue(&s, &iss, &leaf, &leafkey), 0);
    notca.cert_pem = leaf;
    notca.key_pem = leafkey;
    assert_int_equal(pki_issue(&s, &notca, &crt, &key), -1);
    assert_null(crt);
    assert_null(key);
    free(leaf);
    pki_free_secret(leafkey);
    pki_free_secret(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ca_profile),
        cmocka_unit_test(test_serials_differ),
        cmocka_unit_test(test_server_cert),
        cmocka_unit_test(test_client_cert),
        cmocka_unit_test(test_forged_terminal_refused),
        cmocka_unit_test(test_expired_and_future),
        cmocka_unit_test(test_csr_signing),
        cmocka_unit_test(test_csr_broken_signature),
        cmocka_unit_test(test_csr_weak_key),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_bad_specs_refused),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
