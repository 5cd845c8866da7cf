/*
 * tls.h - TLS policy for mamorid's listeners (R8.1): client certificate
 * verification for the internal listener and terminal identity.
 *
 * libmicrohttpd asks for a client certificate but never verifies it, so
 * every internal connection gets tls_require_client_cert() before its
 * handshake: the handshake itself then fails for no certificate, an
 * unknown CA, a self-signed or expired certificate, a certificate that is
 * not for TLS client use, or a revoked one.
 */
#ifndef MAMORI_TLS_H
#define MAMORI_TLS_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_FP_LEN 32

/* Make the handshake of `s` require and verify a client certificate
 * (against the trust set in the session's credentials) and refuse
 * revoked ones.  Returns 0 or -1. */
int tls_require_client_cert(gnutls_session_t s) __attribute__((warn_unused_result));

/* SHA-256 fingerprint of the peer's leaf certificate.  Returns 0, or -1
 * if the peer sent none. */
int tls_peer_fingerprint(gnutls_session_t s, uint8_t fp[TLS_FP_LEN])
    __attribute__((warn_unused_result));

/* Check a priority string: it must compile, and enable only TLS 1.2/1.3,
 * AEAD ciphers and forward-secret key exchange (R8.1).  Returns 0, or -1
 * with a plain sentence naming the problem in err. */
int tls_check_priorities(const char *prio, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
