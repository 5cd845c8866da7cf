/*
 * session.h - session tokens (R6.5).
 *
 * A token is 32 random bytes (256 bits) sent as 64 hex characters, in an
 * "Authorization: Bearer" header (API clients) or the mamori_session
 * cookie (browsers).  The server stores only BLAKE2b-256(token), so a
 * copy of the database cannot be replayed as a session.
 *
 * CSRF (cookie sessions only): the token for the X-CSRF-Token header is
 * BLAKE2b-256 of a fixed context keyed with the session token, sent
 * to the browser in the readable mamori_csrf cookie and the login reply;
 * a state-changing request with a cookie session must echo it in the
 * header.  A page on another site can neither read the cookie nor compute
 * the value, so it cannot forge the header (signed double submit).
 */
#ifndef MAMORI_AUTH_SESSION_H
#define MAMORI_AUTH_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define SESSION_TOKEN_BYTES 32
#define SESSION_TOKEN_HEX   64
#define SESSION_HASH_LEN    32

/* A new token as hex (65 bytes with NUL) and its hash. */
void auth_session_new(char token[SESSION_TOKEN_HEX + 1], uint8_t hash[SESSION_HASH_LEN]);

/* Hash a presented token; -1 if it is not 64 lower-case hex characters. */
int auth_session_hash(const char *token, uint8_t hash[SESSION_HASH_LEN]) MAMORI_WARN_UNUSED;

/* The CSRF value of a session token (65 bytes hex with NUL). */
int auth_session_csrf(const char *token, char out[SESSION_TOKEN_HEX + 1]) MAMORI_WARN_UNUSED;

/* R6.5: is a session created at `created` and last used at `last_seen`
 * still live at `now` under the idle and absolute limits (seconds)? */
bool auth_session_live(int64_t created, int64_t last_seen, int64_t now,
                       int64_t idle, int64_t absolute);

#endif
