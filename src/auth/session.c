/*
 * session.c - session tokens (R6.5).
 */
#include "auth/session.h"

#include <sodium.h>
#include <string.h>

static bool
lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[n] == '\0';
}

void
auth_session_new(char token[SESSION_TOKEN_HEX + 1], uint8_t hash[SESSION_HASH_LEN])
{
    uint8_t raw[SESSION_TOKEN_BYTES];

    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(token, SESSION_TOKEN_HEX + 1, raw, sizeof(raw));
    util_wipe(raw, sizeof(raw));
    crypto_generichash(hash, SESSION_HASH_LEN, (const uint8_t *)token,
                       SESSION_TOKEN_HEX, NULL, 0);
}

int
auth_session_hash(const char *token, uint8_t hash[SESSION_HASH_LEN])
{
    if (token == NULL || !lower_hex(token, SESSION_TOKEN_HEX))
        return -1;
    return crypto_generichash(hash, SESSION_HASH_LEN, (const uint8_t *)token,
                              SESSION_TOKEN_HEX, NULL, 0);
}

int
auth_session_csrf(const char *token, char out[SESSION_TOKEN_HEX + 1])
{
    static const char ctx[] = "mamori-csrf-v1";
    uint8_t mac[32];

    if (token == NULL || !lower_hex(token, SESSION_TOKEN_HEX))
        return -1;
    /* Keyed by the token itself: only its holder can compute the value. */
    if (crypto_generichash(mac, sizeof(mac), (const uint8_t *)ctx, sizeof(ctx) - 1,
                           (const uint8_t *)token, SESSION_TOKEN_HEX) != 0)
        return -1;
    sodium_bin2hex(out, SESSION_TOKEN_HEX + 1, mac, sizeof(mac));
    return 0;
}

bool
auth_session_live(int64_t created, int64_t last_seen, int64_t now, int64_t idle,
                  int64_t absolute)
{
    return now >= created && now - last_seen < idle &&   /* R6.5 idle */
           now - created < absolute;                      /* R6.5 absolute */
}
