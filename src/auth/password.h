/*
 * password.h - password policy, blocklist and Argon2id hashing (R6.3).
 *
 * Two policy profiles (docs/access.md explains the trade-off):
 *
 *  - PW_PROFILE_R63 (default): R6.3 exactly - at least 8 characters, 3 of
 *    the 4 classes upper / lower / digit / symbol, must not contain the
 *    user ID, changed every 180 days (auth_password_expired), plus the
 *    shipped blocklist.
 *  - PW_PROFILE_NIST: NIST SP 800-63B rev. 4 section 3.1.1.2 for a
 *    password used together with a second factor: at least 8 characters
 *    (we always require TOTP), at most 64 accepted, no composition rules,
 *    no periodic change, checked against the blocklist and the user ID.
 *
 * Hashes are libsodium crypto_pwhash_str (Argon2id) strings; the cost is
 * set in mamorid.conf (auth.pwhash_opslimit / auth.pwhash_memlimit).
 */
#ifndef MAMORI_AUTH_PASSWORD_H
#define MAMORI_AUTH_PASSWORD_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define PW_MAX_BYTES 128          /* longest password accepted at all */
#define PW_HASH_LEN  crypto_pwhash_STRBYTES
#define PW_MAX_AGE   (180LL * 24 * 3600)   /* R6.3: 180 days */

enum pw_profile { PW_PROFILE_R63 = 0, PW_PROFILE_NIST };

/* A sorted list of lower-cased common passwords. */
struct pw_blocklist;

/* Load one password per line ('#' comments, blank lines ignored) from
 * `path`.  The caller owns *out (auth_blocklist_free). */
int auth_blocklist_load(const char *path, struct pw_blocklist **out)
    MAMORI_WARN_UNUSED;
void auth_blocklist_free(struct pw_blocklist *bl);

/* True if `pw`, lower-cased, is on the list. */
bool auth_blocklist_contains(const struct pw_blocklist *bl, const char *pw);

/* Check a new password for `user_id` under `profile`.  Returns NULL if
 * acceptable, otherwise a fixed reason code ("too_short", "too_long",
 * "classes", "contains_user_id", "blocklisted", "invalid").  `bl` may be
 * NULL (no list). */
const char *auth_password_check(enum pw_profile profile, const char *pw,
                                const char *user_id, const struct pw_blocklist *bl);

/* A plain sentence for a reason code of auth_password_check. */
const char *auth_password_reason_text(const char *code);

/* Argon2id hash of `pw` into out (PW_HASH_LEN bytes, NUL-terminated). */
int auth_password_hash(const char *pw, unsigned long long opslimit, size_t memlimit,
                       char out[PW_HASH_LEN]) MAMORI_WARN_UNUSED;

/* True if `pw` matches `hash`.  A malformed hash never matches. */
bool auth_password_verify(const char *hash, const char *pw) MAMORI_WARN_UNUSED;

/* R6.3: under the R63 profile a password set at `changed_at` (unix
 * seconds) must be changed once PW_MAX_AGE has passed; NIST: never. */
bool auth_password_expired(enum pw_profile profile, int64_t changed_at, int64_t now);

#endif
