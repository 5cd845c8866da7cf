/*
 * pki.c - development PKI on GnuTLS (R6.2 terminal certificates, R8.1 TLS).
 *
 * Every certificate is X.509 v3, signed with SHA-256, with a random
 * 16-byte positive serial, a subject key id and (from the issuer, or
 * itself when self-signed) an authority key id.  Only this file touches
 * GnuTLS's certificate-writing API; callers see PEM strings.
 *
 * Bad input (a malformed PEM, a CSR whose signature does not verify, an
 * inconsistent spec) is refused with -1 and no log line; unexpected
 * library failures are logged by name, never with key material.
 */
#include "pki/pki.h"

#include <arpa/inet.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

#define PKI_SERIAL_LEN 16
#define PKI_NAME_MAX   64        /* X.520 upper bound for CN and O */
#define PKI_KEYID_MAX  64

/* A certificate and key to sign with, imported from a pki_issuer. */
struct signer {
    gnutls_x509_crt_t      crt;
    gnutls_x509_privkey_t  key;
};

static int
gt_fail(const char *what, int rc)
{
    log_error("pki_gnutls_error", "%s: %s", what, gnutls_strerror(rc));
    return -1;
}

/* A gnutls datum over a C string; GnuTLS does not write through it. */
static gnutls_datum_t
datum_of(const char *s)
{
    gnutls_datum_t d;

    d.data = (unsigned char *)(uintptr_t)s;
    d.size = (unsigned int)strlen(s);
    return d;
}

/* Copy a datum into a malloc'd NUL-terminated string. */
static char *
datum_to_str(const gnutls_datum_t *d)
{
    char *s = malloc((size_t)d->size + 1);

    if (s == NULL)
        return NULL;
    memcpy(s, d->data, d->size);
    s[d->size] = '\0';
    return s;
}

/* Export a private key as unencrypted PKCS#8 PEM.  The GnuTLS copy is
 * wiped before it is freed; *out must go to pki_free_secret(). */
static int
key_export(gnutls_x509_privkey_t key, char **out)
{
    gnutls_datum_t d = { NULL, 0 };
    int rc;

    rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL,
                                           GNUTLS_PKCS_PLAIN, &d);
    if (rc < 0)
        return gt_fail("export private key", rc);
    *out = datum_to_str(&d);
    gnutls_memset(d.data, 0, d.size);
    gnutls_free(d.data);
    return *out != NULL ? 0 : -1;
}

static int
crt_export(gnutls_x509_crt_t crt, char **out)
{
    gnutls_datum_t d = { NULL, 0 };
    int rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d);

    if (rc < 0)
        return gt_fail("export certificate", rc);
    *out = datum_to_str(&d);
    gnutls_free(d.data);
    return *out != NULL ? 0 : -1;
}

static int
key_generate(gnutls_x509_privkey_t *key)
{
    int rc;

    if ((rc = gnutls_x509_privkey_init(key)) < 0)
        return gt_fail("privkey init", rc);
    rc = gnutls_x509_privkey_generate(*key, GNUTLS_PK_ECDSA,
        GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    if (rc < 0) {
        gnutls_x509_privkey_deinit(*key);
        *key = NULL;
        return gt_fail("generate P-256 key", rc);
    }
    return 0;
}

static bool
name_ok(const char *s)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strlen(s);
    return n > 0 && n <= PKI_NAME_MAX;
}

static bool
list_empty(const char *const *list)
{
    return list == NULL || list[0] == NULL;
}

/* Refuse a spec that cannot make a sensible certificate. */
static int
spec_check(const struct pki_spec *spec)
{
    if (spec == NULL || !name_ok(spec->common_name))
        return -1;
    if (spec->organization != NULL && !name_ok(spec->organization))
        return -1;
    if (spec->kind != PKI_KIND_CA && spec->kind != PKI_KIND_SERVER &&
        spec->kind != PKI_KIND_CLIENT)
        return -1;
    if (spec->not_after <= spec->not_before)
        return -1;
    /* SANs only make sense on a server certificate. */
    if (spec->kind != PKI_KIND_SERVER &&
        (!list_empty(spec->dns_names) || !list_empty(spec->ip_addrs)))
        return -1;
    return 0;
}

/* A random positive serial.  Clearing the top bit keeps it positive;
 * setting the next one keeps its DER encoding exactly 16 bytes and
 * never zero, as RFC 5280 4.1.2.2 asks. */
static int
set_serial(gnutls_x509_crt_t crt)
{
    unsigned char serial[PKI_SERIAL_LEN];
    int rc;

    if ((rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial))) < 0)
        return gt_fail("random serial", rc);
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40);
    if ((rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0)
        return gt_fail("set serial", rc);
    return 0;
}

static int
set_subject(gnutls_x509_crt_t crt, const struct pki_spec *spec)
{
    int rc;

    if (spec->organization != NULL) {
        rc = gnutls_x509_crt_set_dn_by_oid(crt,
            GNUTLS_OID_X520_ORGANIZATION_NAME, 0, spec->organization,
            (unsigned int)strlen(spec->organization));
        if (rc < 0)
            return gt_fail("set organization", rc);
    }
    rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
        spec->common_name, (unsigned int)strlen(spec->common_name));
    if (rc < 0)
        return gt_fail("set common name", rc);
    return 0;
}

/* Subject key id from the certificate's own public key (already set),
 * authority key id from the issuer's, or from itself when self-signed. */
static int
set_key_ids(gnutls_x509_crt_t crt, gnutls_x509_crt_t issuer)
{
    unsigned char ski[PKI_KEYID_MAX], aki[PKI_KEYID_MAX];
    size_t skilen = sizeof(ski), akilen = sizeof(aki);
    unsigned int critical;
    int rc;

    rc = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, ski, &skilen);
    if (rc < 0)
        return gt_fail("compute key id", rc);
    if ((rc = gnutls_x509_crt_set_subject_key_id(crt, ski, skilen)) < 0)
        return gt_fail("set subject key id", rc);
    if (issuer == NULL) {
        memcpy(aki, ski, skilen);
        akilen = skilen;
    } else if (gnutls_x509_crt_get_subject_key_id(issuer, aki, &akilen,
                                                  &critical) < 0) {
        /* An issuer without the extension: use its key's hash. */
        akilen = sizeof(aki);
        rc = gnutls_x509_crt_get_key_id(issuer, GNUTLS_KEYID_USE_SHA1,
                                        aki, &akilen);
        if (rc < 0)
            return gt_fail("issuer key id", rc);
    }
    if ((rc = gnutls_x509_crt_set_authority_key_id(crt, aki, akilen)) < 0)
        return gt_fail("set authority key id", rc);
    return 0;
}

static int
add_ip_san(gnutls_x509_crt_t crt, const char *ip)
{
    unsigned char bin[16];
    unsigned int len;
    int rc;

    if (inet_pton(AF_INET, ip, bin) == 1)
        len = 4;
    else if (inet_pton(AF_INET6, ip, bin) == 1)
        len = 16;
    else
        return -1;                      /* not a numeric address: bad spec */
    rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS,
                                              bin, len, GNUTLS_FSAN_APPEND);
    if (rc < 0)
        return gt_fail("set IP SAN", rc);
    return 0;
}

static int
set_sans(gnutls_x509_crt_t crt, const struct pki_spec *spec)
{
    for (size_t i = 0; spec->dns_names != NULL && spec->dns_names[i]; i++) {
        const char *dns = spec->dns_names[i];
        int rc;

        if (*dns == '\0')
            return -1;
        rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
            dns, (unsigned int)strlen(dns), GNUTLS_FSAN_APPEND);
        if (rc < 0)
            return gt_fail("set DNS SAN", rc);
    }
    for (size_t i = 0; spec->ip_addrs != NULL && spec->ip_addrs[i]; i++)
        if (add_ip_san(crt, spec->ip_addrs[i]) != 0)
            return -1;
    return 0;
}

/* Basic constraints and key usage are written critical by GnuTLS. */
static int
set_usage(gnutls_x509_crt_t crt, const struct pki_spec *spec)
{
    unsigned int usage;
    const char *eku = NULL;
    int rc;

    switch (spec->kind) {
    case PKI_KIND_CA:
        usage = GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN;
        break;
    case PKI_KIND_SERVER:
        usage = GNUTLS_KEY_DIGITAL_SIGNATURE;
        eku = GNUTLS_KP_TLS_WWW_SERVER;
        break;
    default:
        usage = GNUTLS_KEY_DIGITAL_SIGNATURE;
        eku = GNUTLS_KP_TLS_WWW_CLIENT;
        break;
    }
    rc = gnutls_x509_crt_set_basic_constraints(crt,
        spec->kind == PKI_KIND_CA, -1);
    if (rc < 0)
        return gt_fail("set basic constraints", rc);
    if ((rc = gnutls_x509_crt_set_key_usage(crt, usage)) < 0)
        return gt_fail("set key usage", rc);
    if (eku != NULL &&
        (rc = gnutls_x509_crt_set_key_purpose_oid(crt, eku, 0)) < 0)
        return gt_fail("set extended key usage", rc);
    if (spec->kind == PKI_KIND_SERVER)
        return set_sans(crt, spec);
    return 0;
}

/* Fill every field of `crt` but its public key (set by the caller
 * first) and sign it with `key`; issuer NULL means self-signed. */
static int
crt_finish(gnutls_x509_crt_t crt, const struct pki_spec *spec,
           gnutls_x509_crt_t issuer, gnutls_x509_privkey_t key)
{
    int rc;

    if ((rc = gnutls_x509_crt_set_version(crt, 3)) < 0)
        return gt_fail("set version", rc);
    if (set_serial(crt) != 0)
        return -1;
    if ((rc = gnutls_x509_crt_set_activation_time(crt, spec->not_before)) < 0)
        return gt_fail("set not-before", rc);
    if ((rc = gnutls_x509_crt_set_expiration_time(crt, spec->not_after)) < 0)
        return gt_fail("set not-after", rc);
    if (set_subject(crt, spec) != 0 || set_key_ids(crt, issuer) != 0 ||
        set_usage(crt, spec) != 0)
        return -1;
    rc = gnutls_x509_crt_sign2(crt, issuer != NULL ? issuer : crt, key,
                               GNUTLS_DIG_SHA256, 0);
    if (rc < 0)
        return gt_fail("sign certificate", rc);
    return 0;
}

static void
signer_free(struct signer *s)
{
    if (s->crt != NULL)
        gnutls_x509_crt_deinit(s->crt);
    if (s->key != NULL)
        gnutls_x509_privkey_deinit(s->key);
    s->crt = NULL;
    s->key = NULL;
}

/* Import an issuer and check that it is a CA and that the key is the one
 * its certificate names, so a mixed-up pair fails here and not later in
 * a TLS handshake. */
static int
signer_load(const struct pki_issuer *issuer, struct signer *s)
{
    unsigned char cid[PKI_KEYID_MAX], kid[PKI_KEYID_MAX];
    size_t clen = sizeof(cid), klen = sizeof(kid);
    gnutls_datum_t d;

    s->crt = NULL;
    s->key = NULL;
    if (issuer->cert_pem == NULL || issuer->key_pem == NULL)
        return -1;
    if (gnutls_x509_crt_init(&s->crt) < 0 ||
        gnutls_x509_privkey_init(&s->key) < 0)
        goto fail;
    d = datum_of(issuer->cert_pem);
    if (gnutls_x509_crt_import(s->crt, &d, GNUTLS_X509_FMT_PEM) < 0)
        goto fail;
    d = datum_of(issuer->key_pem);
    if (gnutls_x509_privkey_import2(s->key, &d, GNUTLS_X509_FMT_PEM,
                                    NULL, 0) < 0)
        goto fail;
    if (gnutls_x509_crt_get_ca_status(s->crt, NULL) <= 0)
        goto fail;
    if (gnutls_x509_crt_get_key_id(s->crt, GNUTLS_KEYID_USE_SHA1,
                                   cid, &clen) < 0 ||
        gnutls_x509_privkey_get_key_id(s->key, GNUTLS_KEYID_USE_SHA1,
                                       kid, &klen) < 0 ||
        clen != klen || memcmp(cid, kid, clen) != 0)
        goto fail;
    return 0;
fail:
    signer_free(s);
    return -1;
}

int
pki_issue(const struct pki_spec *spec, const struct pki_issuer *issuer,
          char **cert_pem, char **key_pem)
{
    struct signer s = { NULL, NULL };
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    char *c = NULL, *k = NULL;
    int rc, ret = -1;

    if (spec_check(spec) != 0 || cert_pem == NULL || key_pem == NULL)
        return -1;
    if (issuer != NULL && signer_load(issuer, &s) != 0)
        return -1;
    if (key_generate(&key) != 0)
        goto out;
    if ((rc = gnutls_x509_crt_init(&crt)) < 0) {
        gt_fail("crt init", rc);
        goto out;
    }
    if ((rc = gnutls_x509_crt_set_key(crt, key)) < 0) {
        gt_fail("set key", rc);
        goto out;
    }
    if (crt_finish(crt, spec, s.crt, issuer != NULL ? s.key : key) != 0)
        goto out;
    if (crt_export(crt, &c) != 0 || key_export(key, &k) != 0)
        goto out;
    *cert_pem = c;
    *key_pem = k;
    c = k = NULL;
    ret = 0;
out:
    free(c);
    pki_free_secret(k);
    if (crt != NULL)
        gnutls_x509_crt_deinit(crt);
    if (key != NULL)
        gnutls_x509_privkey_deinit(key);
    signer_free(&s);
    return ret;
}

int
pki_make_csr(const char *common_name, char **csr_pem, char **key_pem)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crq_t crq = NULL;
    gnutls_datum_t d = { NULL, 0 };
    char *k = NULL;
    int rc, ret = -1;

    if (!name_ok(common_name) || csr_pem == NULL || key_pem == NULL)
        return -1;
    if (key_generate(&key) != 0)
        return -1;
    if ((rc = gnutls_x509_crq_init(&crq)) < 0 ||
        (rc = gnutls_x509_crq_set_version(crq, 1)) < 0 ||
        (rc = gnutls_x509_crq_set_dn_by_oid(crq, GNUTLS_OID_X520_COMMON_NAME,
            0, common_name, (unsigned int)strlen(common_name))) < 0 ||
        (rc = gnutls_x509_crq_set_key(crq, key)) < 0 ||
        (rc = gnutls_x509_crq_sign2(crq, key, GNUTLS_DIG_SHA256, 0)) < 0 ||
        (rc = gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_PEM, &d)) < 0) {
        gt_fail("make CSR", rc);
        goto out;
    }
    if ((*csr_pem = datum_to_str(&d)) == NULL)
        goto out;
    if (key_export(key, &k) != 0) {
        free(*csr_pem);
        *csr_pem = NULL;
        goto out;
    }
    *key_pem = k;
    ret = 0;
out:
    gnutls_free(d.data);
    if (crq != NULL)
        gnutls_x509_crq_deinit(crq);
    gnutls_x509_privkey_deinit(key);
    return ret;
}

/* The only public keys a CSR may carry: what GnuTLS itself would call
 * at least "medium" security. */
static bool
csr_key_acceptable(gnutls_pubkey_t pub)
{
    unsigned int bits = 0;
    int alg = gnutls_pubkey_get_pk_algorithm(pub, &bits);

    switch (alg) {
    case GNUTLS_PK_ECDSA:
        return bits >= 256;
    case GNUTLS_PK_RSA:
        return bits >= 2048;
    case GNUTLS_PK_EDDSA_ED25519:
        return true;
    default:
        return false;
    }
}

/* Import a CSR and its public key; -1 unless its self-signature holds. */
static int
csr_load(const char *csr_pem, gnutls_x509_crq_t *crq, gnutls_pubkey_t *pub)
{
    gnutls_datum_t d = datum_of(csr_pem);

    *crq = NULL;
    *pub = NULL;
    if (gnutls_x509_crq_init(crq) < 0 || gnutls_pubkey_init(pub) < 0)
        goto fail;
    if (gnutls_x509_crq_import(*crq, &d, GNUTLS_X509_FMT_PEM) < 0)
        goto fail;
    /* R6.2: proof that the terminal holds the key it asks us to certify. */
    if (gnutls_x509_crq_verify(*crq, 0) < 0)
        goto fail;
    if (gnutls_pubkey_import_x509_crq(*pub, *crq, 0) < 0 ||
        !csr_key_acceptable(*pub))
        goto fail;
    return 0;
fail:
    if (*crq != NULL)
        gnutls_x509_crq_deinit(*crq);
    if (*pub != NULL)
        gnutls_pubkey_deinit(*pub);
    *crq = NULL;
    *pub = NULL;
    return -1;
}

int
pki_sign_csr(const char *csr_pem, const struct pki_spec *spec,
             const struct pki_issuer *issuer, char **cert_pem)
{
    struct signer s = { NULL, NULL };
    gnutls_x509_crq_t crq = NULL;
    gnutls_pubkey_t pub = NULL;
    gnutls_x509_crt_t crt = NULL;
    int rc, ret = -1;

    if (csr_pem == NULL || spec_check(spec) != 0 || issuer == NULL ||
        cert_pem == NULL)
        return -1;
    if (csr_load(csr_pem, &crq, &pub) != 0)
        return -1;
    if (signer_load(issuer, &s) != 0)
        goto out;
    if ((rc = gnutls_x509_crt_init(&crt)) < 0) {
        gt_fail("crt init", rc);
        goto out;
    }
    /* Only the key comes from the CSR; the subject comes from the spec. */
    if ((rc = gnutls_x509_crt_set_pubkey(crt, pub)) < 0) {
        gt_fail("set public key", rc);
        goto out;
    }
    if (crt_finish(crt, spec, s.crt, s.key) != 0 || crt_export(crt, cert_pem) != 0)
        goto out;
    ret = 0;
out:
    if (crt != NULL)
        gnutls_x509_crt_deinit(crt);
    gnutls_pubkey_deinit(pub);
    gnutls_x509_crq_deinit(crq);
    signer_free(&s);
    return ret;
}

static int
crt_load(const char *cert_pem, gnutls_x509_crt_t *crt)
{
    gnutls_datum_t d;

    if (cert_pem == NULL || gnutls_x509_crt_init(crt) < 0)
        return -1;
    d = datum_of(cert_pem);
    /* PEM import reads the first certificate and ignores the rest. */
    if (gnutls_x509_crt_import(*crt, &d, GNUTLS_X509_FMT_PEM) < 0) {
        gnutls_x509_crt_deinit(*crt);
        *crt = NULL;
        return -1;
    }
    return 0;
}

int
pki_fingerprint(const char *cert_pem, uint8_t fp[PKI_FP_LEN])
{
    gnutls_x509_crt_t crt;
    size_t len = PKI_FP_LEN;
    int rc;

    if (crt_load(cert_pem, &crt) != 0)
        return -1;
    rc = gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &len);
    gnutls_x509_crt_deinit(crt);
    if (rc < 0 || len != PKI_FP_LEN)
        return -1;
    return 0;
}

int
pki_fingerprint_hex(const char *cert_pem, char hex[PKI_FP_HEX_LEN + 1])
{
    uint8_t fp[PKI_FP_LEN];

    if (pki_fingerprint(cert_pem, fp) != 0)
        return -1;
    return util_hex_encode(fp, sizeof(fp), hex, PKI_FP_HEX_LEN + 1);
}

int
pki_cert_info(const char *cert_pem, struct pki_cert_info *info)
{
    gnutls_x509_crt_t crt;
    size_t len = sizeof(info->common_name);
    int rc;

    memset(info, 0, sizeof(*info));
    if (crt_load(cert_pem, &crt) != 0)
        return -1;
    info->not_before = gnutls_x509_crt_get_activation_time(crt);
    info->not_after = gnutls_x509_crt_get_expiration_time(crt);
    info->is_ca = gnutls_x509_crt_get_ca_status(crt, NULL) > 0;
    rc = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0,
                                       info->common_name, &len);
    gnutls_x509_crt_deinit(crt);
    if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
        info->common_name[0] = '\0';
    else if (rc < 0)
        return -1;
    if (info->not_before == (time_t)-1 || info->not_after == (time_t)-1)
        return -1;
    return 0;
}

void
pki_free_secret(char *pem)
{
    if (pem == NULL)
        return;
    util_wipe(pem, strlen(pem));
    free(pem);
}
