/*
 * store_auth.h - identity tables: staff accounts, terminals, sessions
 * (R3.5, R6.1-R6.8).  Schema: migration 2 of each backend.
 *
 * These are operator-level calls on `struct store *`: the rows hold no
 * resident data.  The one secret, the TOTP key, is stored only as a
 * field ciphertext under the tenant's data key (crypto/field.h), made and
 * opened by src/auth with key grants, never here.  Passwords are stored
 * as Argon2id strings, enrolment secrets and session tokens as BLAKE2b
 * hashes only.  Times are unix seconds chosen by the caller (injectable
 * in tests).
 */
#ifndef MAMORI_STORE_AUTH_H
#define MAMORI_STORE_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define STAFF_ID_MAX    33      /* 1..32 of [a-z0-9._-] */
#define STAFF_ROLE_MAX  24
#define STAFF_HASH_MAX  128     /* crypto_pwhash_STRBYTES */
#define STAFF_TOTP_CT_MAX 96    /* FIELD_CT_LEN(20) = 77 */
#define TERMINAL_NAME_MAX 65
#define AUTH_HASH_LEN   32

struct staff_account {
    char     user_id[STAFF_ID_MAX];
    char     tenant[TENANT_ID_LEN + 1];
    char     role[STAFF_ROLE_MAX];
    char     state[12];              /* pending | active | disabled */
    char     pw_hash[STAFF_HASH_MAX];
    int64_t  pw_changed_at;
    bool     must_change;            /* one-time password (R6.3) */
    int64_t  failures;               /* consecutive (R6.3) */
    bool     locked;
    uint8_t  totp_ct[STAFF_TOTP_CT_MAX];
    size_t   totp_ct_len;
    int64_t  totp_last_step;         /* R6.2: no code twice */
    int64_t  confirmed_at;           /* R6.8: lapses a year after */
    int64_t  enrol_expires;
};

/* True if `s` is a valid user ID: 1..32 of [a-z0-9._-], starting alnum. */
bool store_staff_id_valid(const char *s);

enum store_status store_staff_get(struct store *st, const char *user_id,
                                  struct staff_account *out) MAMORI_WARN_UNUSED;

/* Create a pending account with a one-time enrolment secret (its hash)
 * valid until `expires`.  STORE_EXISTS if the ID is taken (R6.1),
 * STORE_NOTFOUND/STORE_DENIED if the tenant is unknown / not active. */
enum store_status store_staff_create(struct store *st, const char *user_id,
                                     const char *tenant, const char *role,
                                     const uint8_t enrol_hash[AUTH_HASH_LEN],
                                     int64_t expires, int64_t now) MAMORI_WARN_UNUSED;

/* The pending account whose enrolment secret hashes to `h`, if unexpired. */
enum store_status store_staff_by_enrol(struct store *st, const uint8_t h[AUTH_HASH_LEN],
                                       int64_t now, struct staff_account *out)
    MAMORI_WARN_UNUSED;

/* Complete enrolment: only once (the secret is cleared), only while
 * unexpired.  STORE_NOTFOUND otherwise. */
enum store_status store_staff_enrol_complete(struct store *st, const char *user_id,
                                             const uint8_t h[AUTH_HASH_LEN],
                                             const char *pw_hash,
                                             const uint8_t *totp_ct, size_t ct_len,
                                             int64_t now) MAMORI_WARN_UNUSED;

/* Count a failed login; lock at `lock_after` consecutive failures (R6.3).
 * *locked gets the state after the call. NOTFOUND for unknown IDs. */
enum store_status store_staff_fail(struct store *st, const char *user_id,
                                   int64_t lock_after, bool *locked) MAMORI_WARN_UNUSED;

/* A successful login at TOTP step `step`: clears the failure count.
 * STORE_DENIED if the step is not after the last accepted one (replay,
 * also between concurrent logins: the check is in the UPDATE). */
enum store_status store_staff_success(struct store *st, const char *user_id,
                                      int64_t step) MAMORI_WARN_UNUSED;

/* Set a password; must_change marks a one-time password (helpdesk reset,
 * R6.3), which also clears the lock and failure count and ends every
 * session of the account. */
enum store_status store_staff_set_password(struct store *st, const char *user_id,
                                           const char *pw_hash, bool must_change,
                                           int64_t now) MAMORI_WARN_UNUSED;

/* Re-confirm an account for another year (R6.8). */
enum store_status store_staff_reconfirm(struct store *st, const char *user_id,
                                        int64_t now) MAMORI_WARN_UNUSED;

/* ---- terminals (R3.5, R6.2) ---- */

enum store_status store_terminal_register(struct store *st, const char *tenant,
                                          const uint8_t fp[32], const char *name)
    MAMORI_WARN_UNUSED;
/* tenant[7] and state[12] ("active" | "revoked") of a registered terminal. */
enum store_status store_terminal_get(struct store *st, const uint8_t fp[32],
                                     char tenant[TENANT_ID_LEN + 1], char state[12])
    MAMORI_WARN_UNUSED;
/* Mark revoked; also ends every session made from it. */
enum store_status store_terminal_revoke(struct store *st, const uint8_t fp[32])
    MAMORI_WARN_UNUSED;

/* ---- listings, role and state changes (R6.1, R6.6, R6.7) ---- */

/* What an administrator sees of an account: no hash, no secret. */
struct staff_summary {
    char    user_id[STAFF_ID_MAX];
    char    role[STAFF_ROLE_MAX];
    char    state[12];
    bool    must_change;
    int64_t failures;
    bool    locked;
    int64_t pw_changed_at;
    int64_t confirmed_at;
};

/* Every account of `tenant`, by user ID; fn returns non-zero to stop.
 * The row passed to fn is valid only during the call. */
enum store_status store_staff_list(struct store *st, const char *tenant,
                                   int (*fn)(const struct staff_summary *, void *),
                                   void *ctx) MAMORI_WARN_UNUSED;

/* Give an account of `tenant` another role and end its sessions (their
 * role was fixed at login).  STORE_NOTFOUND if `tenant` has no such user.
 * Which roles a tenant may hold is the caller's rule (auth/perm.h). */
enum store_status store_staff_set_role(struct store *st, const char *user_id,
                                       const char *tenant, const char *role)
    MAMORI_WARN_UNUSED;

/* Disable an active account (a leaver: R6.1) and end its sessions, or
 * enable a disabled one.  STORE_NOTFOUND if no account of `tenant` is in
 * the state to change from. */
enum store_status store_staff_set_enabled(struct store *st, const char *user_id,
                                          const char *tenant, bool enabled)
    MAMORI_WARN_UNUSED;

struct terminal_info {
    uint8_t fingerprint[32];
    char    name[TERMINAL_NAME_MAX];
    char    state[12];
    char    created_at[25];
    char    changed_at[25];
};

/* The terminals of `tenant`; with tenant NULL, every revoked terminal of
 * every tenant (what the TLS layer must refuse, R6.2).  fn as above. */
enum store_status store_terminal_list(struct store *st, const char *tenant,
                                      int (*fn)(const struct terminal_info *, void *),
                                      void *ctx) MAMORI_WARN_UNUSED;

/* ---- sessions (R6.5) ---- */

struct staff_session {
    uint8_t  token_hash[AUTH_HASH_LEN];
    char     user_id[STAFF_ID_MAX];
    char     tenant[TENANT_ID_LEN + 1];
    char     role[STAFF_ROLE_MAX];
    uint8_t  fingerprint[32];
    bool     must_change;
    int64_t  created_at;
    int64_t  last_seen;
};

enum store_status store_session_create(struct store *st, const struct staff_session *s)
    MAMORI_WARN_UNUSED;
enum store_status store_session_get(struct store *st, const uint8_t h[AUTH_HASH_LEN],
                                    struct staff_session *out) MAMORI_WARN_UNUSED;
enum store_status store_session_touch(struct store *st, const uint8_t h[AUTH_HASH_LEN],
                                      int64_t now) MAMORI_WARN_UNUSED;
enum store_status store_session_delete(struct store *st, const uint8_t h[AUTH_HASH_LEN])
    MAMORI_WARN_UNUSED;

#endif
