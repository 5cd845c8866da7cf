/*
 * tls.c - client certificate verification at handshake time.
 */
#include "tls/tls.h"

#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "tls/revoke.h"

int
tls_peer_fingerprint(gnutls_session_t s, uint8_t fp[TLS_FP_LEN])
{
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);

    if (certs == NULL || n == 0)
        return -1;
    /* The fingerprint is over the DER the peer sent: what was verified. */
    return gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0].data, certs[0].size, fp) == 0
               ? 0 : -1;
}

static void
log_refusal(const char *reason, const uint8_t *fp)
{
    char hex[TLS_FP_LEN * 2 + 1] = "";

    if (fp != NULL && util_hex_encode(fp, TLS_FP_LEN, hex, sizeof(hex)) != 0)
        hex[0] = '\0';
    log_event(LOG_LVL_WARN, "client_cert_refused",
              json_pack("{s:s,s:s}", "reason", reason, "fingerprint", hex));
}

/* Called by GnuTLS during the handshake; non-zero aborts it. */
static int
verify_client(gnutls_session_t s)
{
    gnutls_typed_vdata_st purpose = {
        .type = GNUTLS_DT_KEY_PURPOSE_OID,
        .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
        .size = 0,
    };
    uint8_t fp[TLS_FP_LEN];
    unsigned status = 0;

    if (gnutls_certificate_type_get(s) != GNUTLS_CRT_X509 ||
        tls_peer_fingerprint(s, fp) != 0) {
        log_refusal("no_certificate", NULL);
        return GNUTLS_E_CERTIFICATE_ERROR;
    }
    /* Chain to the terminal CA, validity dates, signatures, and that the
     * certificate is meant for TLS clients. */
    if (gnutls_certificate_verify_peers(s, &purpose, 1, &status) != 0 || status != 0) {
        const char *why = "untrusted";
        if (status & GNUTLS_CERT_EXPIRED)
            why = "expired";
        else if (status & GNUTLS_CERT_NOT_ACTIVATED)
            why = "not_yet_valid";
        else if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
            why = "unknown_issuer";
        else if (status & GNUTLS_CERT_PURPOSE_MISMATCH)
            why = "wrong_purpose";
        log_refusal(why, fp);
        return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
    }
    if (revoke_current_contains(fp)) {   /* R6.2 */
        log_refusal("revoked", fp);
        return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
    }
    return 0;
}

int
tls_require_client_cert(gnutls_session_t s)
{
    if (s == NULL)
        return -1;
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_function(s, verify_client);
    return 0;
}

static bool
aead_cipher(unsigned c)
{
    switch (c) {
    case GNUTLS_CIPHER_AES_128_GCM:
    case GNUTLS_CIPHER_AES_256_GCM:
    case GNUTLS_CIPHER_CHACHA20_POLY1305:
    case GNUTLS_CIPHER_AES_128_CCM:
    case GNUTLS_CIPHER_AES_256_CCM:
        return true;
    default:
        return false;
    }
}

/* R8.1 is policy, not a default an operator can loosen by accident: the
 * priority string may narrow the protocols and suites, never widen them
 * below TLS 1.2 or to non-AEAD ciphers. */
static int
check_policy(gnutls_priority_t p, char *err, size_t errlen)
{
    const unsigned *list;
    int n = gnutls_priority_protocol_list(p, &list);

    if (n <= 0) {
        snprintf(err, errlen, "the TLS priority string enables no protocol version");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (list[i] != GNUTLS_TLS1_2 && list[i] != GNUTLS_TLS1_3) {
            snprintf(err, errlen, "the TLS priority string enables %s; only TLS 1.2 and "
                     "1.3 are allowed (R8.1)",
                     gnutls_protocol_get_name((gnutls_protocol_t)list[i]));
            return -1;
        }
    }
    /* TLS 1.2 key exchange must give forward secrecy (TLS 1.3 always does). */
    n = gnutls_priority_kx_list(p, &list);
    for (int i = 0; i < n; i++) {
        if (list[i] != GNUTLS_KX_ECDHE_RSA && list[i] != GNUTLS_KX_ECDHE_ECDSA &&
            list[i] != GNUTLS_KX_DHE_RSA) {
            snprintf(err, errlen, "the TLS priority string enables the key exchange %s "
                     "without forward secrecy (R8.1)",
                     gnutls_kx_get_name((gnutls_kx_algorithm_t)list[i]));
            return -1;
        }
    }
    n = gnutls_priority_cipher_list(p, &list);
    for (int i = 0; i < n; i++) {
        if (!aead_cipher(list[i])) {
            snprintf(err, errlen, "the TLS priority string enables the non-AEAD cipher %s "
                     "(R8.1)", gnutls_cipher_get_name((gnutls_cipher_algorithm_t)list[i]));
            return -1;
        }
    }
    return 0;
}

int
tls_check_priorities(const char *prio, char *err, size_t errlen)
{
    gnutls_priority_t p;
    const char *pos = NULL;
    int rc;

    if (gnutls_priority_init(&p, prio, &pos) != GNUTLS_E_SUCCESS) {
        snprintf(err, errlen, "invalid TLS priority string near \"%.20s\"",
                 pos != NULL ? pos : prio);
        return -1;
    }
    rc = check_policy(p, err, errlen);
    gnutls_priority_deinit(p);
    return rc;
}
