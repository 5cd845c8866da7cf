/*
 * pki.h - development PKI built on GnuTLS: CAs, server and terminal
 * certificates, CSR signing, fingerprints.
 *
 * Keys are ECDSA P-256 (fast handshakes, small certificates).  All PEM
 * strings returned are malloc'd, NUL-terminated and owned by the caller;
 * private key PEM must be released with pki_free_secret() so it is wiped.
 */
#ifndef MAMORI_PKI_H
#define MAMORI_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PKI_FP_LEN 32            /* SHA-256 of the DER certificate */
#define PKI_FP_HEX_LEN (PKI_FP_LEN * 2)

enum pki_kind {
    PKI_KIND_CA = 0,     /* CA:TRUE, keyCertSign + cRLSign */
    PKI_KIND_SERVER,     /* TLS server auth; SANs from dns/ip lists */
    PKI_KIND_CLIENT      /* TLS client auth (a terminal) */
};

struct pki_spec {
    enum pki_kind kind;
    const char   *common_name;   /* required */
    const char   *organization;  /* may be NULL */
    time_t        not_before;
    time_t        not_after;
    const char *const *dns_names; /* NULL-terminated, server only; may be NULL */
    const char *const *ip_addrs;  /* NULL-terminated, server only; may be NULL */
};

/* An issuer: its certificate and private key, both PEM. */
struct pki_issuer {
    const char *cert_pem;
    const char *key_pem;
};

/* Make a new key pair and certificate.  issuer == NULL makes it
 * self-signed.  On success *cert_pem and *key_pem are owned by the caller.
 * Returns 0 or -1. */
int pki_issue(const struct pki_spec *spec, const struct pki_issuer *issuer,
              char **cert_pem, char **key_pem)
    __attribute__((warn_unused_result));

/* Make a key pair and a CSR for `common_name` (what a terminal does so
 * its private key never leaves it). */
int pki_make_csr(const char *common_name, char **csr_pem, char **key_pem)
    __attribute__((warn_unused_result));

/* Sign a CSR as a certificate of `spec->kind` (subject taken from spec,
 * not from the CSR, so a terminal cannot choose its own name).  The CSR's
 * self-signature is verified first. */
int pki_sign_csr(const char *csr_pem, const struct pki_spec *spec,
                 const struct pki_issuer *issuer, char **cert_pem)
    __attribute__((warn_unused_result));

/* SHA-256 fingerprint of the first certificate in `cert_pem`. */
int pki_fingerprint(const char *cert_pem, uint8_t fp[PKI_FP_LEN])
    __attribute__((warn_unused_result));

/* The same as 64 lower-case hex characters plus a NUL. */
int pki_fingerprint_hex(const char *cert_pem, char hex[PKI_FP_HEX_LEN + 1])
    __attribute__((warn_unused_result));

#define PKI_CN_MAX 64

/* What an operator needs to see about a certificate (mamori terminal
 * list) without linking GnuTLS: validity and subject CN. */
struct pki_cert_info {
    time_t not_before;
    time_t not_after;
    int    is_ca;                        /* basicConstraints CA:TRUE */
    char   common_name[PKI_CN_MAX + 1];  /* "" when there is none */
};

/* Read the first certificate in `cert_pem`.  Returns 0 or -1. */
int pki_cert_info(const char *cert_pem, struct pki_cert_info *info)
    __attribute__((warn_unused_result));

/* Wipe and free a secret PEM string (NULL is fine). */
void pki_free_secret(char *pem);

#endif
