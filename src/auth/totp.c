/*
 * totp.c - RFC 6238 TOTP over RFC 4226 HOTP (R6.2).
 */
#include "auth/totp.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

int
auth_hotp(const uint8_t *key, size_t keylen, uint64_t counter, unsigned digits,
          uint32_t *code)
{
    static const uint32_t mod[] = { 1000000u, 10000000u, 100000000u };
    uint8_t msg[8], mac[20];
    unsigned off;
    uint32_t bin;

    if (digits < 6 || digits > 8)
        return -1;
    for (int i = 7; i >= 0; i--, counter >>= 8)
        msg[i] = (uint8_t)(counter & 0xff);
    if (gnutls_hmac_fast(GNUTLS_MAC_SHA1, key, keylen, msg, sizeof(msg), mac) != 0)
        return -1;
    off = mac[19] & 0x0f;                      /* dynamic truncation */
    bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
          ((uint32_t)mac[off + 2] << 8) | (uint32_t)mac[off + 3];
    *code = bin % mod[digits - 6];
    util_wipe(mac, sizeof(mac));
    return 0;
}

int64_t
auth_totp_step(int64_t now)
{
    return now < 0 ? -1 : now / TOTP_STEP;
}

int
auth_totp_code(const uint8_t key[TOTP_SECRET_LEN], int64_t now, char out[7])
{
    uint32_t c;

    if (now < 0 || auth_hotp(key, TOTP_SECRET_LEN, (uint64_t)auth_totp_step(now),
                             TOTP_DIGITS, &c) != 0)
        return -1;
    snprintf(out, 7, "%06u", c);
    return 0;
}

bool
auth_totp_verify(const uint8_t key[TOTP_SECRET_LEN], const char *code, int64_t now,
                 int64_t last_step, int64_t *accepted)
{
    int64_t step = auth_totp_step(now), found = -1;
    char want[7];

    if (step < TOTP_DRIFT || code == NULL || strlen(code) != TOTP_DIGITS)
        return false;
    for (int64_t s = step - TOTP_DRIFT; s <= step + TOTP_DRIFT; s++) {
        if (auth_totp_code(key, s * TOTP_STEP, want) != 0)
            return false;
        /* R6.2: replay - a step at or before the last accepted never counts. */
        if (sodium_memcmp(want, code, TOTP_DIGITS) == 0 && s > last_step && found < 0)
            found = s;
    }
    util_wipe(want, sizeof(want));
    if (found < 0)
        return false;
    *accepted = found;
    return true;
}

void
auth_totp_secret_new(uint8_t key[TOTP_SECRET_LEN])
{
    randombytes_buf(key, TOTP_SECRET_LEN);
}

int
auth_base32(const uint8_t *in, size_t n, char *out, size_t outsz)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    size_t o = 0, need = (n * 8 + 4) / 5;
    uint32_t buf = 0;
    int bits = 0;

    if (outsz < need + 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        buf = (buf << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = a[(buf >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = a[(buf << (5 - bits)) & 31];
    out[o] = '\0';
    return 0;
}

int
auth_totp_uri(const uint8_t key[TOTP_SECRET_LEN], const char *tenant,
              const char *user, char *out, size_t outsz)
{
    char b32[TOTP_B32_LEN + 1];
    int n;

    if (auth_base32(key, TOTP_SECRET_LEN, b32, sizeof(b32)) != 0)
        return -1;
    /* tenant is 6 digits and user IDs are [a-z0-9._-]: nothing to escape. */
    n = snprintf(out, outsz, "otpauth://totp/mamori:%s-%s?secret=%s&issuer=mamori"
                 "&algorithm=SHA1&digits=%d&period=%d", tenant, user, b32,
                 TOTP_DIGITS, TOTP_STEP);
    util_wipe(b32, sizeof(b32));
    return n > 0 && (size_t)n < outsz ? 0 : -1;
}
