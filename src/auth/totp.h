/*
 * totp.h - RFC 6238 time-based one-time passwords (R6.2).
 *
 * HMAC-SHA-1 (GnuTLS: libsodium has no SHA-1), 30-second steps, 6 digits,
 * 160-bit secrets.  A code is accepted for the current step or one step
 * either side (clock drift), and never for a step at or before the last
 * one accepted for the account, so a code is never accepted twice.
 */
#ifndef MAMORI_AUTH_TOTP_H
#define MAMORI_AUTH_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define TOTP_SECRET_LEN 20        /* 160 bits (RFC 4226 recommends >= 160) */
#define TOTP_STEP       30
#define TOTP_DIGITS     6
#define TOTP_DRIFT      1         /* steps accepted either side */
#define TOTP_B32_LEN    32        /* base32 of 20 bytes, no padding */

/* RFC 4226 HOTP of `counter` with `digits` (6..8) into *code. */
int auth_hotp(const uint8_t *key, size_t keylen, uint64_t counter, unsigned digits,
              uint32_t *code) MAMORI_WARN_UNUSED;

/* The step a unix time falls in. */
int64_t auth_totp_step(int64_t now);

/* The 6-digit code for unix time `now` as text (7 bytes with NUL). */
int auth_totp_code(const uint8_t key[TOTP_SECRET_LEN], int64_t now, char out[7])
    MAMORI_WARN_UNUSED;

/*
 * Check `code` (6 ASCII digits) at time `now` against steps
 * step(now)-1 .. step(now)+1, refusing any step <= last_step.  On success
 * returns true and *accepted the step that matched (store it as the new
 * last step).  All candidate steps are always computed and compared in
 * constant time.
 */
bool auth_totp_verify(const uint8_t key[TOTP_SECRET_LEN], const char *code,
                      int64_t now, int64_t last_step, int64_t *accepted)
    MAMORI_WARN_UNUSED;

/* A new random secret. */
void auth_totp_secret_new(uint8_t key[TOTP_SECRET_LEN]);

/* RFC 4648 base32 without padding; out needs TOTP_B32_LEN + 1. */
int auth_base32(const uint8_t *in, size_t n, char *out, size_t outsz) MAMORI_WARN_UNUSED;

/* otpauth://totp/mamori:<tenant>-<user>?secret=...&issuer=mamori&... */
int auth_totp_uri(const uint8_t key[TOTP_SECRET_LEN], const char *tenant,
                  const char *user, char *out, size_t outsz) MAMORI_WARN_UNUSED;

#endif
