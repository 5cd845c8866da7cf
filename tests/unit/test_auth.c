/*
 * test_auth.c - src/auth: password policy (R6.3), Argon2id, the blocklist,
 * TOTP (RFC 6238, R6.2), session tokens and limits (R6.5), and the
 * identity tables of store_auth.c (lockout, reset, replay, lapse inputs)
 * on SQLite and PostgreSQL (MAMORI_TEST_PG, as test_store.c), and the
 * HTTP handlers against a scripted audit writer: every change audited
 * before it takes effect (R7.1, R6.9, R7.7).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pthread.h>

#include "audit/event.h"
#include "auth/api.h"
#include "auth/password.h"
#include "auth/session.h"
#include "auth/totp.h"
#include "config/config.h"
#include "crypto/field.h"
#include "ipc/ipc.h"
#include "ref/lgcode.h"
#include "store/store_auth.h"
#include "worker/worker.h"
#include "store_fixture.h"

#define BLOCKLIST MAMORI_TEST_SOURCE_DIR "/data/auth/common-passwords.txt"
#define LGCODES   MAMORI_TEST_SOURCE_DIR "/data/municipalities/municipalities_lgcode.csv"
#define T1 "131016"   /* 千代田区 */
#define T2 "011002"   /* 札幌市 */

static struct pw_blocklist *bl;

/* ---- password policy (R6.3) --------------------------------------------- */

static void
test_r63_each_clause(void **state)
{
    (void)state;
    /* positive control: satisfies every clause */
    assert_null(auth_password_check(PW_PROFILE_R63, "Tz7#kq2m", "yamada", bl));
    /* at least 8 characters */
    assert_string_equal(auth_password_check(PW_PROFILE_R63, "Tz7#kq2", "yamada", bl),
                        "too_short");
    /* 3 of 4 classes: each set of three passes, two classes fail */
    assert_null(auth_password_check(PW_PROFILE_R63, "Tzkqwmvb7", "yamada", bl));  /* U l d */
    assert_null(auth_password_check(PW_PROFILE_R63, "Tzkqwmvb#", "yamada", bl));  /* U l s */
    assert_null(auth_password_check(PW_PROFILE_R63, "tzkqwmv7#", "yamada", bl));  /* l d s */
    assert_null(auth_password_check(PW_PROFILE_R63, "TZKQWMV7#", "yamada", bl));  /* U d s */
    assert_string_equal(auth_password_check(PW_PROFILE_R63, "tzkqwmvbx7", "yamada", bl),
                        "classes");
    assert_string_equal(auth_password_check(PW_PROFILE_R63, "TZKQWMVBXN", "yamada", bl),
                        "classes");
    /* must not contain the user ID, in any case */
    assert_string_equal(auth_password_check(PW_PROFILE_R63, "xYamada#77", "yamada", bl),
                        "contains_user_id");
    /* blocklist, case-insensitive */
    assert_string_equal(auth_password_check(PW_PROFILE_R63, "P@ssw0rd!", "yamada", bl),
                        "blocklisted");
    assert_string_equal(auth_password_check(PW_PROFILE_R63, "PASSWORD123!", "yamada", bl),
                        "blocklisted");
    /* control characters never */
    assert_string_equal(auth_password_check(PW_PROFILE_R63, "Tz7#kq2m\x01", "yamada", bl),
                        "invalid");
}

static void
test_r63_expiry_180_days(void **state)
{
    int64_t t0 = 1700000000;

    (void)state;
    assert_false(auth_password_expired(PW_PROFILE_R63, t0, t0 + 180 * 86400 - 1));
    assert_true(auth_password_expired(PW_PROFILE_R63, t0, t0 + 180 * 86400));
    /* NIST SP 800-63B: no periodic change */
    assert_false(auth_password_expired(PW_PROFILE_NIST, t0, t0 + 1000 * 86400));
}

static void
test_nist_profile(void **state)
{
    (void)state;
    /* no composition rule: one class of 8+ characters is fine */
    assert_null(auth_password_check(PW_PROFILE_NIST, "correcthorse", "yamada", bl));
    assert_string_equal(auth_password_check(PW_PROFILE_NIST, "shortpw", "yamada", bl),
                        "too_short");
    assert_string_equal(auth_password_check(PW_PROFILE_NIST, "password123", "yamada", bl),
                        "blocklisted");
    assert_string_equal(auth_password_check(PW_PROFILE_NIST, "myyamadaname", "yamada", bl),
                        "contains_user_id");
    /* 64 characters accepted, 65 not; characters, not bytes (UTF-8) */
    char pw[130];
    memset(pw, 'k', 64);
    pw[64] = '\0';
    assert_null(auth_password_check(PW_PROFILE_NIST, pw, "yamada", bl));
    strcat(pw, "k");
    assert_string_equal(auth_password_check(PW_PROFILE_NIST, pw, "yamada", bl), "too_long");
    assert_null(auth_password_check(PW_PROFILE_NIST, "まもりパスワードです", "yamada", bl));
}

static void
test_blocklist_file(void **state)
{
    (void)state;
    assert_true(auth_blocklist_contains(bl, "qwerty123"));
    assert_true(auth_blocklist_contains(bl, "QWERTY123"));
    assert_false(auth_blocklist_contains(bl, "Tz7#kq2m"));
    assert_false(auth_blocklist_contains(bl, "# Common passwords refused by both password "
                                             "profiles (docs/access.md)."));
}

static void
test_argon2id_hash_verify(void **state)
{
    char h[PW_HASH_LEN], h2[PW_HASH_LEN];

    (void)state;
    assert_int_equal(auth_password_hash("Tz7#kq2m", 1, 8192 * 1024, h), 0);
    assert_true(strncmp(h, "$argon2id$", 10) == 0);
    assert_true(auth_password_verify(h, "Tz7#kq2m"));
    assert_false(auth_password_verify(h, "Tz7#kq2n"));
    /* salted: the same password hashes differently */
    assert_int_equal(auth_password_hash("Tz7#kq2m", 1, 8192 * 1024, h2), 0);
    assert_string_not_equal(h, h2);
    /* a malformed or empty hash never matches */
    assert_false(auth_password_verify("", "Tz7#kq2m"));
    assert_false(auth_password_verify("$argon2i$v=19$m=8,t=1,p=1$xx$yy", "Tz7#kq2m"));
}

/* ---- TOTP (RFC 6238 Appendix B, SHA-1; RFC 4226 Appendix D) --------------- */

static void
test_hotp_rfc4226(void **state)
{
    static const uint32_t want[] = { 755224, 287082, 359152, 969429, 338314,
                                     254676, 287922, 162583, 399871, 520489 };
    const uint8_t *key = (const uint8_t *)"12345678901234567890";
    uint32_t c;

    (void)state;
    for (uint64_t i = 0; i < 10; i++) {
        assert_int_equal(auth_hotp(key, 20, i, 6, &c), 0);
        assert_int_equal(c, want[i]);
    }
}

static void
test_totp_rfc6238_sha1(void **state)
{
    static const struct { int64_t t; uint32_t code; } v[] = {
        { 59, 94287082 }, { 1111111109, 7081804 }, { 1111111111, 14050471 },
        { 1234567890, 89005924 }, { 2000000000, 69279037 }, { 20000000000LL, 65353130 },
    };
    const uint8_t *key = (const uint8_t *)"12345678901234567890";
    uint32_t c;
    char six[7];

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        assert_int_equal(auth_hotp(key, 20, (uint64_t)auth_totp_step(v[i].t), 8, &c), 0);
        assert_int_equal(c, v[i].code);
        /* our 6-digit codes are the low 6 digits of the same value */
        assert_int_equal(auth_totp_code(key, v[i].t, six), 0);
        assert_int_equal(strtoul(six, NULL, 10), v[i].code % 1000000u);
    }
}

static void
test_totp_drift_and_replay(void **state)
{
    uint8_t key[TOTP_SECRET_LEN];
    int64_t now = 1700000000, acc = 0;
    char c[7];

    (void)state;
    auth_totp_secret_new(key);
    /* one step either side is accepted (R6.2) ... */
    for (int d = -1; d <= 1; d++) {
        assert_int_equal(auth_totp_code(key, now + d * TOTP_STEP, c), 0);
        assert_true(auth_totp_verify(key, c, now, 0, &acc));
        assert_int_equal(acc, auth_totp_step(now) + d);
    }
    /* ... two steps are not */
    assert_int_equal(auth_totp_code(key, now - 2 * TOTP_STEP, c), 0);
    assert_false(auth_totp_verify(key, c, now, 0, &acc));
    assert_int_equal(auth_totp_code(key, now + 2 * TOTP_STEP, c), 0);
    assert_false(auth_totp_verify(key, c, now, 0, &acc));
    /* replay: the accepted step, or an earlier one, never again */
    assert_int_equal(auth_totp_code(key, now, c), 0);
    assert_true(auth_totp_verify(key, c, now, 0, &acc));
    assert_false(auth_totp_verify(key, c, now, acc, &acc));
    assert_int_equal(auth_totp_code(key, now - TOTP_STEP, c), 0);
    assert_false(auth_totp_verify(key, c, now, auth_totp_step(now), &acc));
    /* malformed codes */
    assert_false(auth_totp_verify(key, "12345", now, 0, &acc));
    assert_false(auth_totp_verify(key, "1234567", now, 0, &acc));
}

static void
test_totp_uri(void **state)
{
    const uint8_t *key = (const uint8_t *)"12345678901234567890";
    char uri[256], b32[TOTP_B32_LEN + 1];

    (void)state;
    assert_int_equal(auth_base32(key, 20, b32, sizeof(b32)), 0);
    assert_string_equal(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");   /* RFC 4648 */
    assert_int_equal(auth_totp_uri(key, T1, "yamada", uri, sizeof(uri)), 0);
    assert_string_equal(uri, "otpauth://totp/mamori:" T1 "-yamada?secret="
                        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=mamori&algorithm=SHA1"
                        "&digits=6&period=30");
}

/* ---- session tokens (R6.5) -------------------------------------------------- */

static void
test_session_tokens(void **state)
{
    char t1[SESSION_TOKEN_HEX + 1], t2[SESSION_TOKEN_HEX + 1], csrf[SESSION_TOKEN_HEX + 1];
    uint8_t h1[SESSION_HASH_LEN], h[SESSION_HASH_LEN], h2[SESSION_HASH_LEN];

    (void)state;
    auth_session_new(t1, h1);
    auth_session_new(t2, h2);
    assert_int_equal(strlen(t1), 64);
    assert_string_not_equal(t1, t2);
    /* only the hash is stored; it is recomputed from the presented token */
    assert_int_equal(auth_session_hash(t1, h), 0);
    assert_memory_equal(h, h1, SESSION_HASH_LEN);
    assert_memory_not_equal(h1, h2, SESSION_HASH_LEN);
    assert_true(strstr(t1, "") && memcmp(h1, t1, 32) != 0);
    /* malformed tokens are refused before any lookup */
    assert_int_equal(auth_session_hash("abc", h), -1);
    t2[0] = 'G';
    assert_int_equal(auth_session_hash(t2, h), -1);
    /* CSRF value: deterministic per token, different per token */
    assert_int_equal(auth_session_csrf(t1, csrf), 0);
    assert_string_not_equal(csrf, t1);
    char again[SESSION_TOKEN_HEX + 1];
    assert_int_equal(auth_session_csrf(t1, again), 0);
    assert_string_equal(csrf, again);
}

static void
test_session_limits(void **state)
{
    int64_t c = 1000;

    (void)state;
    /* idle 900 s, absolute 43200 s (R6.5 defaults) */
    assert_true(auth_session_live(c, c, c + 899, 900, 43200));
    assert_false(auth_session_live(c, c, c + 900, 900, 43200));        /* idle */
    assert_true(auth_session_live(c, c + 43000, c + 43199, 900, 43200));
    assert_false(auth_session_live(c, c + 43100, c + 43200, 900, 43200)); /* absolute */
    assert_false(auth_session_live(c, c, c - 1, 900, 43200));           /* clock back */
}

/* ---- identity tables on both backends ----------------------------------------- */

static int
setup(void **state)
{
    static const char *const tenants[] = { T1, T2 };

    *state = store_fx_new("auth", tenants, 2, 0);
    return 0;
}

static int
teardown(void **state)
{
    store_fx_free(*state);
    return 0;
}

#define BEGIN_CASE(f) \
    struct store_fx *f = *state; \
    do { if ((f)->skip) skip(); } while (0)

/* Create and enrol an active account. */
static void
enrolled(struct store_fx *f, const char *user, const char *tenant, int64_t now)
{
    uint8_t h[AUTH_HASH_LEN], ct[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    char tok[SESSION_TOKEN_HEX + 1];

    auth_session_new(tok, h);
    assert_int_equal(store_staff_create(f->st, user, tenant, "clerk", h, now + 100, now),
                     STORE_OK);
    assert_int_equal(store_staff_enrol_complete(f->st, user, h, "$argon2id$x", ct,
                                                sizeof(ct), now), STORE_OK);
}

static void
test_store_one_id_per_person(void **state)
{
    BEGIN_CASE(f);
    uint8_t h[AUTH_HASH_LEN] = { 9 };

    enrolled(f, "yamada", T1, 1000);
    /* R6.1: the ID is unique across the whole platform */
    assert_int_equal(store_staff_create(f->st, "yamada", T2, "clerk", h, 2000, 1000),
                     STORE_EXISTS);
    assert_int_equal(store_staff_create(f->st, "Bad ID", T1, "clerk", h, 2000, 1000),
                     STORE_INVALID);
    assert_int_equal(store_staff_create(f->st, "kato", "999999", "clerk", h, 2000, 1000),
                     STORE_INVALID);
}

static void
test_store_enrolment_once_and_expiry(void **state)
{
    BEGIN_CASE(f);
    struct staff_account a;
    uint8_t h[AUTH_HASH_LEN], ct[4] = { 1 };
    char tok[SESSION_TOKEN_HEX + 1];

    auth_session_new(tok, h);
    assert_int_equal(store_staff_create(f->st, "sato", T1, "tenant_admin", h, 1100, 1000),
                     STORE_OK);
    assert_int_equal(store_staff_by_enrol(f->st, h, 1050, &a), STORE_OK);
    assert_string_equal(a.user_id, "sato");
    assert_string_equal(a.state, "pending");
    /* expired */
    assert_int_equal(store_staff_by_enrol(f->st, h, 1100, &a), STORE_NOTFOUND);
    assert_int_equal(store_staff_enrol_complete(f->st, "sato", h, "$x", ct, 4, 1100),
                     STORE_NOTFOUND);
    /* once */
    assert_int_equal(store_staff_enrol_complete(f->st, "sato", h, "$x", ct, 4, 1050),
                     STORE_OK);
    assert_int_equal(store_staff_enrol_complete(f->st, "sato", h, "$x", ct, 4, 1050),
                     STORE_NOTFOUND);
    assert_int_equal(store_staff_get(f->st, "sato", &a), STORE_OK);
    assert_string_equal(a.state, "active");
    assert_int_equal(a.confirmed_at, 1050);
    assert_int_equal(a.totp_ct_len, 4);
}

static void
test_store_lockout_after_six_and_reset(void **state)
{
    BEGIN_CASE(f);
    struct staff_account a;
    bool locked = false;

    enrolled(f, "suzuki", T1, 1000);
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(store_staff_fail(f->st, "suzuki", 6, &locked), STORE_OK);
        assert_false(locked);
    }
    /* R6.3: the sixth consecutive failure locks */
    assert_int_equal(store_staff_fail(f->st, "suzuki", 6, &locked), STORE_OK);
    assert_true(locked);
    /* a locked account cannot log in even with a good code ... */
    assert_int_equal(store_staff_success(f->st, "suzuki", 100), STORE_DENIED);
    /* ... nor change its own password */
    assert_int_equal(store_staff_set_password(f->st, "suzuki", "$new", false, 1100),
                     STORE_NOTFOUND);
    /* only the helpdesk reset unlocks, with a one-time password */
    assert_int_equal(store_staff_set_password(f->st, "suzuki", "$otp", true, 1100), STORE_OK);
    assert_int_equal(store_staff_get(f->st, "suzuki", &a), STORE_OK);
    assert_false(a.locked);
    assert_int_equal(a.failures, 0);
    assert_true(a.must_change);
    assert_string_equal(a.pw_hash, "$otp");
    /* the change at next login clears must_change */
    assert_int_equal(store_staff_set_password(f->st, "suzuki", "$mine", false, 1200), STORE_OK);
    assert_int_equal(store_staff_get(f->st, "suzuki", &a), STORE_OK);
    assert_false(a.must_change);
    assert_int_equal(a.pw_changed_at, 1200);
    /* unknown IDs: NOTFOUND, nothing written */
    assert_int_equal(store_staff_fail(f->st, "nobody", 6, &locked), STORE_NOTFOUND);
}

static void
test_store_success_resets_count_and_blocks_replay(void **state)
{
    BEGIN_CASE(f);
    struct staff_account a;
    bool locked;

    enrolled(f, "ito", T1, 1000);
    for (int i = 0; i < 5; i++)
        assert_int_equal(store_staff_fail(f->st, "ito", 6, &locked), STORE_OK);
    assert_int_equal(store_staff_success(f->st, "ito", 500), STORE_OK);
    assert_int_equal(store_staff_get(f->st, "ito", &a), STORE_OK);
    assert_int_equal(a.failures, 0);              /* consecutive only */
    assert_int_equal(a.totp_last_step, 500);
    /* R6.2: the same or an earlier step is refused (replay) */
    assert_int_equal(store_staff_success(f->st, "ito", 500), STORE_DENIED);
    assert_int_equal(store_staff_success(f->st, "ito", 499), STORE_DENIED);
    assert_int_equal(store_staff_success(f->st, "ito", 501), STORE_OK);
    /* R6.8: re-confirmation moves the lapse clock */
    assert_int_equal(store_staff_reconfirm(f->st, "ito", 9999), STORE_OK);
    assert_int_equal(store_staff_get(f->st, "ito", &a), STORE_OK);
    assert_int_equal(a.confirmed_at, 9999);
}

static void
test_store_terminals_and_sessions(void **state)
{
    BEGIN_CASE(f);
    struct staff_session s = { .created_at = 10, .last_seen = 10 }, g;
    uint8_t fp[32], fp2[32], h[AUTH_HASH_LEN];
    char tenant[7], st[12], tok[SESSION_TOKEN_HEX + 1];

    randombytes_buf(fp, sizeof(fp));
    randombytes_buf(fp2, sizeof(fp2));
    assert_int_equal(store_terminal_register(f->st, T1, fp, "counter-1"), STORE_OK);
    assert_int_equal(store_terminal_register(f->st, T2, fp, "again"), STORE_EXISTS);
    assert_int_equal(store_terminal_get(f->st, fp, tenant, st), STORE_OK);
    assert_string_equal(tenant, T1);
    assert_string_equal(st, "active");
    assert_int_equal(store_terminal_get(f->st, fp2, tenant, st), STORE_NOTFOUND);

    enrolled(f, "kimura", T1, 1);
    auth_session_new(tok, h);
    memcpy(s.token_hash, h, sizeof(h));
    memcpy(s.fingerprint, fp, 32);
    strcpy(s.user_id, "kimura");
    strcpy(s.tenant, T1);
    strcpy(s.role, "clerk");
    assert_int_equal(store_session_create(f->st, &s), STORE_OK);
    assert_int_equal(store_session_get(f->st, h, &g), STORE_OK);
    assert_memory_equal(g.fingerprint, fp, 32);
    assert_string_equal(g.role, "clerk");
    assert_int_equal(store_session_touch(f->st, h, 20), STORE_OK);
    assert_int_equal(store_session_get(f->st, h, &g), STORE_OK);
    assert_int_equal(g.last_seen, 20);
    assert_int_equal(g.created_at, 10);
    /* revoking the terminal ends its sessions at once (R6.2) */
    assert_int_equal(store_terminal_revoke(f->st, fp), STORE_OK);
    assert_int_equal(store_session_get(f->st, h, &g), STORE_NOTFOUND);
    assert_int_equal(store_terminal_get(f->st, fp, tenant, st), STORE_OK);
    assert_string_equal(st, "revoked");
    /* logout */
    assert_int_equal(store_session_create(f->st, &s), STORE_OK);
    assert_int_equal(store_session_delete(f->st, h), STORE_OK);
    assert_int_equal(store_session_delete(f->st, h), STORE_NOTFOUND);
    /* a helpdesk reset ends the account's sessions */
    assert_int_equal(store_session_create(f->st, &s), STORE_OK);
    assert_int_equal(store_staff_set_password(f->st, "kimura", "$otp", true, 30), STORE_OK);
    assert_int_equal(store_session_get(f->st, h, &g), STORE_NOTFOUND);
}

/* ---- listings, role and state changes (R6.1, R6.7) --------------------------- */

struct seen {
    char   users[8][STAFF_ID_MAX];
    char   roles[8][STAFF_ROLE_MAX];
    size_t n;
    int    stop_after;           /* 0: never stop */
};

static int
see_staff(const struct staff_summary *s, void *p)
{
    struct seen *v = p;

    assert_true(v->n < 8);
    strcpy(v->users[v->n], s->user_id);
    strcpy(v->roles[v->n], s->role);
    v->n++;
    return v->stop_after != 0 && (int)v->n >= v->stop_after;
}

static void
test_store_staff_list_role_state(void **state)
{
    BEGIN_CASE(f);
    struct seen v = { .n = 0 };
    struct staff_account a;
    struct staff_session s = { .created_at = 10, .last_seen = 10 }, g;
    char tok[SESSION_TOKEN_HEX + 1];

    enrolled(f, "ueda", T1, 1);
    enrolled(f, "abe", T1, 1);
    enrolled(f, "other", T2, 1);
    /* a tenant sees its own staff only, in ID order */
    assert_int_equal(store_staff_list(f->st, T1, see_staff, &v), STORE_OK);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.users[0], "abe");
    assert_string_equal(v.users[1], "ueda");
    assert_string_equal(v.roles[0], "clerk");
    memset(&v, 0, sizeof(v));
    v.stop_after = 1;                       /* the callback can stop the walk */
    assert_int_equal(store_staff_list(f->st, T1, see_staff, &v), STORE_OK);
    assert_int_equal(v.n, 1);

    /* a role change ends the account's sessions (their role was fixed at login) */
    auth_session_new(tok, s.token_hash);
    strcpy(s.user_id, "abe");
    strcpy(s.tenant, T1);
    strcpy(s.role, "clerk");
    assert_int_equal(store_session_create(f->st, &s), STORE_OK);
    assert_int_equal(store_staff_set_role(f->st, "abe", T1, "supervisor"), STORE_OK);
    assert_int_equal(store_session_get(f->st, s.token_hash, &g), STORE_NOTFOUND);
    assert_int_equal(store_staff_get(f->st, "abe", &a), STORE_OK);
    assert_string_equal(a.role, "supervisor");
    /* never across tenants: another tenant's account is "not found" */
    assert_int_equal(store_staff_set_role(f->st, "other", T1, "supervisor"), STORE_NOTFOUND);
    assert_int_equal(store_staff_get(f->st, "other", &a), STORE_OK);
    assert_string_equal(a.role, "clerk");

    /* disable (a leaver) ends sessions; only active -> disabled -> active */
    assert_int_equal(store_session_create(f->st, &s), STORE_OK);
    assert_int_equal(store_staff_set_enabled(f->st, "abe", T1, false), STORE_OK);
    assert_int_equal(store_session_get(f->st, s.token_hash, &g), STORE_NOTFOUND);
    assert_int_equal(store_staff_get(f->st, "abe", &a), STORE_OK);
    assert_string_equal(a.state, "disabled");
    assert_int_equal(store_staff_set_enabled(f->st, "abe", T1, false), STORE_NOTFOUND);
    assert_int_equal(store_staff_set_enabled(f->st, "other", T1, false), STORE_NOTFOUND);
    assert_int_equal(store_staff_set_enabled(f->st, "abe", T1, true), STORE_OK);
    assert_int_equal(store_staff_get(f->st, "abe", &a), STORE_OK);
    assert_string_equal(a.state, "active");
}

struct seen_fp {
    uint8_t fps[4][32];
    char    states[4][12];
    size_t  n;
};

static int
see_terminal(const struct terminal_info *t, void *p)
{
    struct seen_fp *v = p;

    assert_true(v->n < 4);
    memcpy(v->fps[v->n], t->fingerprint, 32);
    strcpy(v->states[v->n], t->state);
    v->n++;
    return 0;
}

/* R6.2: the revoked terminals of every tenant, for the TLS layer. */
static void
test_store_terminal_lists(void **state)
{
    BEGIN_CASE(f);
    uint8_t a[32], b[32], c[32];
    struct seen_fp v = { .n = 0 };

    randombytes_buf(a, 32);
    randombytes_buf(b, 32);
    randombytes_buf(c, 32);
    assert_int_equal(store_terminal_register(f->st, T1, a, "t1-a"), STORE_OK);
    assert_int_equal(store_terminal_register(f->st, T1, b, "t1-b"), STORE_OK);
    assert_int_equal(store_terminal_register(f->st, T2, c, "t2-c"), STORE_OK);
    assert_int_equal(store_terminal_list(f->st, T1, see_terminal, &v), STORE_OK);
    assert_int_equal(v.n, 2);                           /* T2's is not listed */
    memset(&v, 0, sizeof(v));
    assert_int_equal(store_terminal_list(f->st, NULL, see_terminal, &v), STORE_OK);
    assert_int_equal(v.n, 0);                           /* nothing revoked yet */
    assert_int_equal(store_terminal_revoke(f->st, b), STORE_OK);
    assert_int_equal(store_terminal_revoke(f->st, c), STORE_OK);
    assert_int_equal(store_terminal_list(f->st, NULL, see_terminal, &v), STORE_OK);
    assert_int_equal(v.n, 2);                           /* both tenants' */
    assert_true((memcmp(v.fps[0], b, 32) == 0 && memcmp(v.fps[1], c, 32) == 0) ||
                (memcmp(v.fps[0], c, 32) == 0 && memcmp(v.fps[1], b, 32) == 0));
    assert_string_equal(v.states[0], "revoked");
    assert_int_equal(store_terminal_list(f->st, "131017", see_terminal, &v), STORE_INVALID);
}

/* ---- the handlers against a scripted audit writer (R6.9, R7.1, R7.7) -------- */

/*
 * Stands in for the audit writer: answers each IPC_AUDIT_APPEND in turn
 * as `answers` says ('a' ack, 'r' refuse; acks past its end) and keeps
 * the events' text, until the channel closes.  `before`, if set, runs
 * when event number `before_at` (0-based) arrives, before it is
 * answered: someone else's change while the handler waits for its ack.
 */
struct script_writer {
    int         fd;
    const char *answers;
    void      (*before)(struct script_writer *w);
    unsigned    before_at;
    void       *arg;
    unsigned    events;
    char        text[4][1024];
};

static void *
script_writer_run(void *arg)
{
    struct script_writer *w = arg;
    static uint8_t buf[IPC_MAX_PAYLOAD];
    const uint8_t seq[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
    struct ipc_hdr h;

    while (ipc_recv(w->fd, &h, buf, sizeof(buf) - 1) == 1 && h.type == IPC_AUDIT_APPEND) {
        unsigned i = w->events++;
        bool refuse = w->answers != NULL && i < strlen(w->answers) && w->answers[i] == 'r';

        if (i < 4)
            snprintf(w->text[i], sizeof(w->text[0]), "%.*s", (int)h.len, (char *)buf);
        if (w->before != NULL && i == w->before_at)
            w->before(w);
        if (refuse ? ipc_send(w->fd, IPC_ERROR, h.id, 0, "refused", 7) :
                     ipc_send(w->fd, IPC_AUDIT_ACK, h.id, 0, seq, sizeof(seq)))
            break;
    }
    return NULL;
}

/* Run handler `h` on `req` with `w` as the worker's audit writer. */
static void
with_writer(void (*h)(const struct http_request *, struct http_response *),
            const struct http_request *req, struct http_response *resp,
            struct script_writer *w)
{
    struct worker_env *env = req->env;
    pthread_t t;
    int fds[2];

    memset(resp, 0, sizeof(*resp));
    assert_int_equal(ipc_socketpair(fds), 0);
    ipc_chan_init(&env->audit, fds[0]);
    w->fd = fds[1];
    assert_int_equal(pthread_create(&t, NULL, script_writer_run, w), 0);
    h(req, resp);
    shutdown(fds[0], SHUT_RDWR);             /* ends the writer's loop */
    pthread_join(t, NULL);
    ipc_chan_destroy(&env->audit);
    close(fds[0]);
    close(fds[1]);
}

/* The error code of a refusal, or "" for a success. */
static const char *
error_code(const struct http_response *resp)
{
    const char *c = json_string_value(json_object_get(json_object_get(resp->body, "error"),
                                                      "code"));
    return c != NULL ? c : "";
}

/* The writer refused the handler's one event: 503 audit_unavailable
 * (fail closed). */
static void
assert_audit_refused(struct http_response *resp, const struct script_writer *w)
{
    assert_int_equal(resp->status, 503);
    assert_string_equal(error_code(resp), "audit_unavailable");
    assert_int_equal(w->events, 1);
}

/* The store refused a change after its success event: the reply
 * `status` / `code`, and a failure event of `action` by `actor` with
 * `reason` after the success (R6.9). */
static void
assert_refused_after_success(struct http_response *resp, const struct script_writer *w,
                             unsigned status, const char *code, const char *action,
                             const char *actor, const char *reason)
{
    const char *const want[] = { "\"action\":\"%s\"", "\"actor\":\"%s\"",
                                 "\"reason\":\"%s\"" };
    const char *val[] = { action, actor, reason };
    char s[96];

    assert_int_equal(resp->status, status);
    assert_string_equal(error_code(resp), code);
    assert_int_equal(w->events, 2);
    assert_non_null(strstr(w->text[0], "\"outcome\":\"success\""));
    assert_non_null(strstr(w->text[1], "\"outcome\":\"failure\""));
    for (size_t i = 0; i < 3; i++) {
        snprintf(s, sizeof(s), want[i], val[i]);
        assert_non_null(strstr(w->text[1], s));
    }
}

static void
admin_request(struct http_request *req, struct worker_env *env, json_t *body)
{
    memset(req, 0, sizeof(*req));
    req->listener = LISTENER_INTERNAL;
    req->has_terminal = true;
    req->authed = true;
    req->role = ROLE_TENANT_ADMIN;
    req->env = env;
    req->body = body;
    strcpy(req->user_id, "admin");
    strcpy(req->tenant, T1);
}

static void
register_with_writer(struct store_fx *f, bool refuse, unsigned *status, bool *registered)
{
    struct worker_env env = { .store = f->st };
    struct http_request req;
    struct http_response resp;
    struct script_writer w = { .answers = refuse ? "r" : "a" };
    uint8_t fp[32];
    char hex[65], tenant[7], st[12];

    randombytes_buf(fp, sizeof(fp));
    sodium_bin2hex(hex, sizeof(hex), fp, sizeof(fp));
    admin_request(&req, &env, json_pack("{s:s,s:s}", "fingerprint", hex, "name", "counter-9"));
    with_writer(auth_h_terminal_register, &req, &resp, &w);
    assert_int_equal(w.events, 1);
    *status = resp.status;
    *registered = store_terminal_get(f->st, fp, tenant, st) == STORE_OK;
    json_decref(resp.body);
    json_decref(req.body);
}

static void
test_audit_refusal_fails_closed(void **state)
{
    BEGIN_CASE(f);
    unsigned status;
    bool registered;

    /* positive control: the writer acknowledges, the terminal is registered */
    register_with_writer(f, false, &status, &registered);
    assert_int_equal(status, 201);
    assert_true(registered);
    /* the writer refuses: 503 and nothing changed */
    register_with_writer(f, true, &status, &registered);
    assert_int_equal(status, 503);
    assert_false(registered);
}

/* R6.9, R7.7: a change is audited before it is made; when the store then
 * refuses it (here: the terminal is registered already), a failure event
 * follows, so the log never shows only a change that did not happen. */
static void
test_R6_9_refused_change_recorded(void **state)
{
    BEGIN_CASE(f);
    struct worker_env env = { .store = f->st };
    struct http_request req;
    struct http_response resp;
    struct script_writer w = { .answers = NULL };
    uint8_t fp[32];
    char hex[65];

    randombytes_buf(fp, sizeof(fp));
    sodium_bin2hex(hex, sizeof(hex), fp, sizeof(fp));
    assert_int_equal(store_terminal_register(f->st, T1, fp, "counter-1"), STORE_OK);
    admin_request(&req, &env, json_pack("{s:s,s:s}", "fingerprint", hex, "name", "counter-9"));
    with_writer(auth_h_terminal_register, &req, &resp, &w);
    assert_refused_after_success(&resp, &w, 409, "terminal_exists", "terminal.register",
                                 "admin", "exists");
    json_decref(resp.body);
    json_decref(req.body);
}

/* ---- audited before it takes effect: staff, enrolment, sessions, passwords (R7.1) ---- */

static struct lgcode_table *lgcodes;
static const uint8_t test_key[TENANT_KEY_BYTES] = { 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7 };

static int
key_current(void *arg, const char *tenant, struct tenant_key **out)
{
    (void)arg;
    return tenant_key_new(TENANT_KEY_DATA, tenant, 1, test_key, out);
}

static int
key_version(void *arg, const char *tenant, uint32_t v, struct tenant_key **out)
{
    return v == 1 ? key_current(arg, tenant, out) : -1;
}

static int
key_index(void *arg, const char *tenant, struct tenant_key **out)
{
    (void)arg;
    return tenant_key_new(TENANT_KEY_INDEX, tenant, 1, test_key, out);
}

/* What a worker holds for the auth handlers, on the case's store. */
struct hx {
    struct store_fx           *f;
    struct mamori_config cfg;
    struct auth_env      auth;
    struct worker_env    env;
    /* for the hooks: someone else's account and its secret's hash */
    const char          *other;
    uint8_t              other_hash[AUTH_HASH_LEN];
    long                 seen;          /* what a hook counted */
};

static struct hx *
hx_new(struct store_fx *f)
{
    struct hx *x = calloc(1, sizeof(*x));

    assert_non_null(x);
    x->f = f;
    config_defaults(&x->cfg);
    x->auth.profile = PW_PROFILE_R63;
    x->auth.opslimit = crypto_pwhash_OPSLIMIT_MIN;
    x->auth.memlimit = crypto_pwhash_MEMLIMIT_MIN;
    x->auth.blocklist = bl;
    assert_int_equal(auth_password_hash("Dummy#pw42", x->auth.opslimit, x->auth.memlimit,
                                        x->auth.dummy_hash), 0);
    x->env.cfg = &x->cfg;
    x->env.lgcodes = lgcodes;
    x->env.keys = (struct key_provider){ key_current, key_version, key_index, NULL };
    x->env.store = f->st;
    x->env.auth = &x->auth;
    return x;
}

/* A pending account of T1 and its enrolment secret's hash. */
static void
pending(struct hx *x, const char *user, uint8_t h[AUTH_HASH_LEN], char secret[65])
{
    int64_t now = auth_now();

    auth_session_new(secret, h);
    assert_int_equal(store_staff_create(x->f->st, user, T1, "clerk", h, now + 600, now),
                     STORE_OK);
}

/* An active clerk of T1 with password `pw` and a TOTP secret encrypted
 * as auth/api.c stores it (T1's data key, staff:<user>, totp_secret). */
static void
active(struct hx *x, const char *user, const char *pw, uint8_t secret[TOTP_SECRET_LEN])
{
    uint8_t h[AUTH_HASH_LEN], ct[STAFF_TOTP_CT_MAX];
    char tok[SESSION_TOKEN_HEX + 1], hash[PW_HASH_LEN], table[48];
    struct field_ad ad = { .tenant = T1, .table = table, .column = "totp_secret" };
    struct tenant_key *k;
    size_t ctlen = 0;

    snprintf(table, sizeof(table), "staff:%s", user);
    auth_totp_secret_new(secret);
    assert_int_equal(key_current(NULL, T1, &k), 0);
    assert_int_equal(field_encrypt(k, &ad, secret, TOTP_SECRET_LEN, ct, sizeof(ct), &ctlen), 0);
    tenant_key_free(k);
    assert_int_equal(auth_password_hash(pw, x->auth.opslimit, x->auth.memlimit, hash), 0);
    pending(x, user, h, tok);
    assert_int_equal(store_staff_enrol_complete(x->f->st, user, h, hash, ct, ctlen, auth_now()),
                     STORE_OK);
}

static void
terminal(struct hx *x, uint8_t fp[32])
{
    randombytes_buf(fp, 32);
    assert_int_equal(store_terminal_register(x->f->st, T1, fp, "counter-1"), STORE_OK);
}

/* Rows of `table` for `user`, read past the store API (which has no
 * listing of sessions). */
static long
rows_of(struct store_fx *f, const char *table, const char *user)
{
    char sql[128];
    long n = -1;

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE user_id = $1", table);
    if (f->cfg.backend == STORE_BACKEND_SQLITE) {
        sqlite3 *db;
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_bind_text(q, 1, user, -1, SQLITE_STATIC), SQLITE_OK);
        if (sqlite3_step(q) == SQLITE_ROW)
            n = (long)sqlite3_column_int64(q, 0);
        sqlite3_finalize(q);
        sqlite3_close(db);
    } else {
        PGconn *c = store_fx_pg_connect(f->conninfo);
        PGresult *r;
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        r = PQexecParams(c, sql, 1, NULL, &user, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
    }
    return n;
}

/* Someone else's change while the handler waits: the store cannot keep
 * sessions any more. */
static void
drop_sessions(struct script_writer *w)
{
    struct store_fx *f = w->arg;

    if (f->cfg.backend == STORE_BACKEND_SQLITE) {
        sqlite3 *db;
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        assert_int_equal(sqlite3_exec(db, "DROP TABLE sessions", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    } else {
        store_fx_pg_exec(f->conninfo, "DROP TABLE sessions");
    }
}

/* R7.1, R6.9: a staff account is on the record before it exists.  The
 * writer refuses: 503 and no account.  A taken ID: refused after its
 * success event, so a failure event follows. */
static void
test_R7_1_staff_create_audited_first(void **state)
{
    BEGIN_CASE(f);
    struct hx *x = hx_new(f);
    struct staff_account a;
    struct http_request req;
    struct http_response resp;
    struct script_writer w = { .answers = "r" };

    admin_request(&req, &x->env, json_pack("{s:s,s:s}", "user", "kato", "role", "clerk"));
    with_writer(auth_h_staff_create, &req, &resp, &w);
    assert_audit_refused(&resp, &w);
    assert_int_equal(store_staff_get(f->st, "kato", &a), STORE_NOTFOUND);
    json_decref(resp.body);
    /* positive control: acknowledged, the account exists (pending) */
    w = (struct script_writer){ .answers = "a" };
    with_writer(auth_h_staff_create, &req, &resp, &w);
    assert_int_equal(resp.status, 201);
    assert_int_equal(w.events, 1);
    assert_int_equal(store_staff_get(f->st, "kato", &a), STORE_OK);
    assert_string_equal(a.state, "pending");
    json_decref(resp.body);
    /* the same ID again: 409 as before, and the log says it did not happen */
    w = (struct script_writer){ .answers = NULL };
    with_writer(auth_h_staff_create, &req, &resp, &w);
    assert_refused_after_success(&resp, &w, 409, "user_exists", "staff.create", "admin", "exists");
    json_decref(resp.body);
    json_decref(req.body);
    free(x);
}

static void
enrol_request(struct http_request *req, struct hx *x, const uint8_t fp[32], const char *secret)
{
    memset(req, 0, sizeof(*req));
    req->listener = LISTENER_INTERNAL;
    req->has_terminal = true;
    memcpy(req->terminal_fp, fp, 32);
    req->env = &x->env;
    req->body = json_pack("{s:s,s:s}", "secret", secret, "password", "Kz8#vq2mTn");
}

/* Another enrolment with the same secret completes first. */
static void
enrol_meanwhile(struct script_writer *w)
{
    struct hx *x = w->arg;
    const uint8_t ct[8] = { 1 };

    assert_int_equal(store_staff_enrol_complete(x->f->st, x->other, x->other_hash,
                                                "$argon2id$x", ct, sizeof(ct), auth_now()),
                     STORE_OK);
}

/* R7.1, R6.9: an enrolment is on the record before it completes (the
 * writer refuses: 503, the account stays pending and its secret still
 * works); one refused by the store after its success event (the secret
 * used meanwhile) gets a failure event and the same 401 as before. */
static void
test_R7_1_enrol_audited_first(void **state)
{
    BEGIN_CASE(f);
    struct hx *x = hx_new(f);
    struct staff_account a;
    struct http_request req;
    struct http_response resp;
    struct script_writer w = { .answers = "r" };
    uint8_t fp[32], h[AUTH_HASH_LEN];
    char secret[SESSION_TOKEN_HEX + 1];

    terminal(x, fp);
    pending(x, "sato", h, secret);
    enrol_request(&req, x, fp, secret);
    with_writer(auth_h_enrol, &req, &resp, &w);
    assert_audit_refused(&resp, &w);
    assert_int_equal(store_staff_get(f->st, "sato", &a), STORE_OK);
    assert_string_equal(a.state, "pending");
    assert_int_equal(store_staff_by_enrol(f->st, h, auth_now(), &a), STORE_OK);
    json_decref(resp.body);
    /* positive control */
    w = (struct script_writer){ .answers = "a" };
    with_writer(auth_h_enrol, &req, &resp, &w);
    assert_int_equal(resp.status, 200);
    assert_int_equal(store_staff_get(f->st, "sato", &a), STORE_OK);
    assert_string_equal(a.state, "active");
    json_decref(resp.body);
    json_decref(req.body);
    /* the secret is used by another enrolment while this one is audited */
    x->other = "mori";
    pending(x, x->other, x->other_hash, secret);
    enrol_request(&req, x, fp, secret);
    w = (struct script_writer){ .before = enrol_meanwhile, .before_at = 0, .arg = x };
    with_writer(auth_h_enrol, &req, &resp, &w);
    assert_refused_after_success(&resp, &w, 401, "enrolment_failed",
                                 "staff.enrol", "mori", "not_found");
    json_decref(resp.body);
    json_decref(req.body);
    free(x);
}
static void
login_request(struct http_request *req, struct hx *x, const uint8_t fp[32], const char *user,
              const uint8_t secret[TOTP_SECRET_LEN], int64_t at)
{
    char code[7];

    assert_int_equal(auth_totp_code(secret, at, code), 0);
    memset(req, 0, sizeof(*req));
    req->listener = LISTENER_INTERNAL;
    req->has_terminal = true;
    memcpy(req->terminal_fp, fp, 32);
    req->env = &x->env;
    req->body = json_pack("{s:s,s:s,s:s}", "user", user, "password", "Kz8#vq2mTn",
                          "code", code);
}

/* Sessions of the account while its login event awaits the answer. */
static void
count_sessions_meanwhile(struct script_writer *w)
{
    struct hx *x = w->arg;

    x->seen = rows_of(x->f, "sessions", x->other);
}

/* R7.1, R6.9: the change a login makes is its session, and no session
 * exists before the login is on the record: none while the event awaits
 * its answer (the old code made it first, and removed it again if the
 * writer refused and the store let it).  The writer refuses: 503
 * audit_unavailable as before and no session.  The store refusing the
 * session after the success event: a failure event follows, and 503. */
static void
test_R7_1_login_session_audited_first(void **state)
{
    BEGIN_CASE(f);
    struct hx *x = hx_new(f);
    struct http_request req;
    struct http_response resp;
    struct script_writer w;
    uint8_t fp[32], secret[TOTP_SECRET_LEN], h[AUTH_HASH_LEN];
    struct staff_session s;
    int64_t now = auth_now();

    terminal(x, fp);
    active(x, "sato", "Kz8#vq2mTn", secret);
    login_request(&req, x, fp, "sato", secret, now);
    x->other = "sato";
    x->seen = -1;
    w = (struct script_writer){ .answers = "r", .before = count_sessions_meanwhile, .arg = x };
    with_writer(auth_h_login, &req, &resp, &w);
    assert_audit_refused(&resp, &w);
    assert_int_equal(x->seen, 0);
    assert_int_equal(rows_of(f, "sessions", "sato"), 0);
    json_decref(resp.body);
    json_decref(req.body);
    /* positive control (the next code: the last one was used): a session */
    login_request(&req, x, fp, "sato", secret, now + TOTP_STEP);
    x->seen = -1;
    w = (struct script_writer){ .answers = "a", .before = count_sessions_meanwhile, .arg = x };
    with_writer(auth_h_login, &req, &resp, &w);
    assert_int_equal(resp.status, 200);
    assert_int_equal(x->seen, 0);
    assert_int_equal(rows_of(f, "sessions", "sato"), 1);
    assert_int_equal(auth_session_hash(json_string_value(json_object_get(resp.body, "token")),
                                       h), 0);
    assert_int_equal(store_session_get(f->st, h, &s), STORE_OK);
    json_decref(resp.body);
    json_decref(req.body);
    /* the store cannot keep the session after the success event */
    active(x, "mori", "Kz8#vq2mTn", secret);
    login_request(&req, x, fp, "mori", secret, now);
    w = (struct script_writer){ .before = drop_sessions, .before_at = 0, .arg = f };
    with_writer(auth_h_login, &req, &resp, &w);
    assert_refused_after_success(&resp, &w, 503, "unavailable",
                                 "auth.login", "mori", "store_refused");
    json_decref(resp.body);
    json_decref(req.body);
    free(x);
}

/* `user` one failed login short of the lock (R6.3: the sixth locks). */
static void
five_failures(struct hx *x, const char *user)
{
    bool locked = true;

    for (int i = 0; i < 5; i++) {
        assert_int_equal(store_staff_fail(x->f->st, user, 6, &locked), STORE_OK);
        assert_false(locked);
    }
}

/* A wrong password for `user` (its password is not Kz8#vq2mTn). */
static void
bad_login(struct hx *x, const uint8_t fp[32], const char *user,
          const uint8_t secret[TOTP_SECRET_LEN], struct script_writer *w,
          struct http_response *resp)
{
    struct http_request req;

    login_request(&req, x, fp, user, secret, auth_now());
    with_writer(auth_h_login, &req, resp, w);
    json_decref(req.body);
}

static bool
is_locked(struct store_fx *f, const char *user)
{
    struct staff_account a;

    assert_int_equal(store_staff_get(f->st, user, &a), STORE_OK);
    return a.locked;
}

/* The late auth.lock event of `user`, with the time of the lock. */
static void
assert_late_lock(const char *text, const char *user)
{
    char actor[64];

    snprintf(actor, sizeof(actor), "\"actor\":\"%s\"", user);
    assert_non_null(strstr(text, "\"action\":\"auth.lock\""));
    assert_non_null(strstr(text, actor));
    assert_non_null(strstr(text, "\"late\":1"));
    assert_non_null(strstr(text, "\"locked_at\":"));
    assert_non_null(strstr(text, "\"failures\":6"));
    /* as the real writer checks it: info holds integers and codes only */
    {
        json_t *ev = json_loads(text, 0, NULL);
        json_t *info = json_object_get(ev, "info");
        int64_t at = (int64_t)json_integer_value(json_object_get(info, "locked_at"));
        char err[128];

        if (audit_event_validate(ev, err, sizeof(err)) != 0)
            fail_msg("the writer would refuse the late lock event: %s", err);

        assert_true(json_is_integer(json_object_get(info, "late")));
        assert_true(json_is_integer(json_object_get(info, "locked_at")));
        assert_true(at > auth_now() - 60 && at <= auth_now());
        json_decref(ev);
    }
}

/* A staff.create of T1 by its admin (another request of the worker). */
static void
other_event(struct hx *x, const char *user, struct script_writer *w, struct http_response *resp)
{
    struct http_request req;

    admin_request(&req, &x->env, json_pack("{s:s,s:s}", "user", user, "role", "clerk"));
    with_writer(auth_h_staff_create, &req, resp, w);
    json_decref(req.body);
}

/*
 * R6.3, R7.1: what fail closed means for a lock.  A lock protects, so it
 * lands even when the log cannot record it (refusing it would let a
 * guesser go on); the login still gets 503.  Its auth.lock event then
 * waits, marked late with the time of the lock, and the worker's next
 * event is recorded only after it: a writer that refuses the waiting
 * event refuses the next change too (fail closed), one that takes it
 * gets it first.  Both ways of losing it: the lock event refused, and
 * the login event refused (the lock event then not even tried).
 */
static void
test_R7_1_lock_lands_and_its_event_follows(void **state)
{
    BEGIN_CASE(f);
    struct hx *x = hx_new(f);
    struct http_response resp;
    struct script_writer w;
    uint8_t fp[32], secret[TOTP_SECRET_LEN];
    struct staff_account a;

    terminal(x, fp);
    active(x, "ito", "Other#pw42x", secret);
    active(x, "abe", "Other#pw42x", secret);
    five_failures(x, "ito");
    five_failures(x, "abe");

    /* positive control: both events taken, on time */
    active(x, "ueda", "Other#pw42x", secret);
    five_failures(x, "ueda");
    w = (struct script_writer){ .answers = "aa" };
    bad_login(x, fp, "ueda", secret, &w, &resp);
    assert_int_equal(resp.status, 401);
    assert_int_equal(w.events, 2);
    assert_non_null(strstr(w.text[1], "\"action\":\"auth.lock\""));
    assert_null(strstr(w.text[1], "\"late\""));
    assert_true(is_locked(f, "ueda"));
    json_decref(resp.body);

    /* the lock event refused: locked all the same, 503 */
    w = (struct script_writer){ .answers = "ar" };
    bad_login(x, fp, "ito", secret, &w, &resp);
    assert_int_equal(resp.status, 503);
    assert_string_equal(error_code(&resp), "audit_unavailable");
    assert_int_equal(w.events, 2);
    assert_true(is_locked(f, "ito"));
    json_decref(resp.body);
    /* the login event refused: the lock event is kept without a try */
    w = (struct script_writer){ .answers = "r" };
    bad_login(x, fp, "abe", secret, &w, &resp);
    assert_int_equal(resp.status, 503);
    assert_int_equal(w.events, 1);
    assert_true(is_locked(f, "abe"));
    json_decref(resp.body);

    /* The writer refuses the first waiting event: the next change is
     * refused too, before its own event is sent, and not made. */
    w = (struct script_writer){ .answers = "r" };
    other_event(x, "kudo", &w, &resp);
    assert_audit_refused(&resp, &w);
    assert_late_lock(w.text[0], "ito");
    assert_int_equal(store_staff_get(f->st, "kudo", &a), STORE_NOTFOUND);
    json_decref(resp.body);

    /* It takes them: both locks first, in order, then the change. */
    w = (struct script_writer){ .answers = NULL };
    other_event(x, "kudo", &w, &resp);
    assert_int_equal(resp.status, 201);
    assert_int_equal(w.events, 3);
    assert_late_lock(w.text[0], "ito");
    assert_late_lock(w.text[1], "abe");
    assert_non_null(strstr(w.text[2], "\"action\":\"staff.create\""));
    json_decref(resp.body);

    /* Delivered once: the worker's next event goes alone. */
    w = (struct script_writer){ .answers = NULL };
    other_event(x, "noda", &w, &resp);
    assert_int_equal(resp.status, 201);
    assert_int_equal(w.events, 1);
    json_decref(resp.body);
    free(x);
}

/* A signed-in clerk of T1 with the session `h`. */
static void
session_request(struct http_request *req, struct hx *x, const char *user,
                const uint8_t h[AUTH_HASH_LEN], json_t *body)
{
    memset(req, 0, sizeof(*req));
    req->listener = LISTENER_INTERNAL;
    req->has_terminal = true;
    req->authed = true;
    req->role = ROLE_CLERK;
    req->env = &x->env;
    req->body = body;
    memcpy(req->session_hash, h, AUTH_HASH_LEN);
    snprintf(req->user_id, sizeof(req->user_id), "%s", user);
    strcpy(req->tenant, T1);
}

static void
session_of(struct hx *x, const char *user, uint8_t h[AUTH_HASH_LEN])
{
    struct staff_session s = { .created_at = auth_now(), .last_seen = auth_now() };
    char tok[SESSION_TOKEN_HEX + 1];

    auth_session_new(tok, s.token_hash);
    memcpy(h, s.token_hash, AUTH_HASH_LEN);
    snprintf(s.user_id, sizeof(s.user_id), "%s", user);
    strcpy(s.tenant, T1);
    strcpy(s.role, "clerk");
    assert_int_equal(store_session_create(x->f->st, &s), STORE_OK);
}

/* An active clerk `user` of T1 (password Kz8#vq2mTn), signed in: the
 * session's hash in h. */
static void
signed_in(struct hx *x, const char *user, uint8_t h[AUTH_HASH_LEN])
{
    uint8_t secret[TOTP_SECRET_LEN];

    active(x, user, "Kz8#vq2mTn", secret);
    session_of(x, user, h);
}

/* A helpdesk reset ends the session while the logout is audited. */
static void
end_session_meanwhile(struct script_writer *w)
{
    struct hx *x = w->arg;

    assert_int_equal(store_session_delete(x->f->st, x->other_hash), STORE_OK);
}

/* R7.1, R6.9: a session ends only once its logout is on the record.  The
 * writer refuses: 503 audit_unavailable and the session is still there
 * (the old code had deleted it and then said "nothing was done").  The
 * session ended meanwhile by someone else: a failure event follows. */
static void
test_R7_1_logout_audited_first(void **state)
{
    BEGIN_CASE(f);
    struct hx *x = hx_new(f);
    struct http_request req;
    struct http_response resp;
    struct script_writer w = { .answers = "r" };
    uint8_t h[AUTH_HASH_LEN];
    struct staff_session s;

    signed_in(x, "sato", h);
    session_request(&req, x, "sato", h, NULL);
    with_writer(auth_h_logout, &req, &resp, &w);
    assert_audit_refused(&resp, &w);
    assert_int_equal(store_session_get(f->st, h, &s), STORE_OK);
    json_decref(resp.body);
    /* positive control */
    w = (struct script_writer){ .answers = "a" };
    with_writer(auth_h_logout, &req, &resp, &w);
    assert_int_equal(resp.status, 200);
    assert_int_equal(store_session_get(f->st, h, &s), STORE_NOTFOUND);
    json_decref(resp.body);
    /* ended meanwhile: the success event is followed by a failure */
    session_of(x, "sato", x->other_hash);
    session_request(&req, x, "sato", x->other_hash, NULL);
    w = (struct script_writer){ .before = end_session_meanwhile, .before_at = 0, .arg = x };
    with_writer(auth_h_logout, &req, &resp, &w);
    assert_refused_after_success(&resp, &w, 503, "unavailable", "auth.logout", "sato", "not_found");
    json_decref(resp.body);
    free(x);
}

/* An administrator disables the account while the change is audited. */
static void
disable_meanwhile(struct script_writer *w)
{
    struct hx *x = w->arg;

    assert_int_equal(store_staff_set_enabled(x->f->st, x->other, T1, false), STORE_OK);
}

static bool
password_is(struct store_fx *f, const char *user, const char *pw)
{
    struct staff_account a;

    assert_int_equal(store_staff_get(f->st, user, &a), STORE_OK);
    return auth_password_verify(a.pw_hash, pw);
}

/* R7.1, R6.9: a password changes only once the change is on the record.
 * The writer refuses: 503 audit_unavailable and the old password still
 * the one (the old code had changed it).  Refused by the store after the
 * success event (the account disabled meanwhile): a failure event. */
static void
test_R7_1_password_change_audited_first(void **state)
{
    BEGIN_CASE(f);
    struct hx *x = hx_new(f);
    struct http_request req;
    struct http_response resp;
    struct script_writer w = { .answers = "r" };
    uint8_t h[AUTH_HASH_LEN];

    signed_in(x, "sato", h);
    session_request(&req, x, "sato", h, json_pack("{s:s,s:s}", "current_password", "Kz8#vq2mTn",
                                                  "password", "Qw7!rt5yUp"));
    with_writer(auth_h_password, &req, &resp, &w);
    assert_audit_refused(&resp, &w);
    assert_true(password_is(f, "sato", "Kz8#vq2mTn"));
    assert_false(password_is(f, "sato", "Qw7!rt5yUp"));
    json_decref(resp.body);
    /* positive control */
    w = (struct script_writer){ .answers = "a" };
    with_writer(auth_h_password, &req, &resp, &w);
    assert_int_equal(resp.status, 200);
    assert_true(password_is(f, "sato", "Qw7!rt5yUp"));
    json_decref(resp.body);
    json_decref(req.body);
    /* disabled meanwhile: not changed, and the log says so */
    x->other = "sato";
    session_request(&req, x, "sato", h, json_pack("{s:s,s:s}", "current_password", "Qw7!rt5yUp",
                                                  "password", "Zx3$nm8kLp"));
    w = (struct script_writer){ .before = disable_meanwhile, .before_at = 0, .arg = x };
    with_writer(auth_h_password, &req, &resp, &w);
    assert_refused_after_success(&resp, &w, 503, "unavailable",
                                 "auth.password_change", "sato", "not_found");
    assert_true(password_is(f, "sato", "Qw7!rt5yUp"));
    json_decref(resp.body);
    json_decref(req.body);
    free(x);
}

int
main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_r63_each_clause),
        cmocka_unit_test(test_r63_expiry_180_days),
        cmocka_unit_test(test_nist_profile),
        cmocka_unit_test(test_blocklist_file),
        cmocka_unit_test(test_argon2id_hash_verify),
        cmocka_unit_test(test_hotp_rfc4226),
        cmocka_unit_test(test_totp_rfc6238_sha1),
        cmocka_unit_test(test_totp_drift_and_replay),
        cmocka_unit_test(test_totp_uri),
        cmocka_unit_test(test_session_tokens),
        cmocka_unit_test(test_session_limits),
    };
    const struct CMUnitTest stored[] = {
        cmocka_unit_test_setup_teardown(test_store_one_id_per_person, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_enrolment_once_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_lockout_after_six_and_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_success_resets_count_and_blocks_replay,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_terminals_and_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_staff_list_role_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_terminal_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_refusal_fails_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R6_9_refused_change_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R7_1_staff_create_audited_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R7_1_enrol_audited_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R7_1_login_session_audited_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R7_1_logout_audited_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R7_1_password_change_audited_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_R7_1_lock_lands_and_its_event_follows, setup,
                                        teardown),
    };
    int failed;

    if (sodium_init() < 0 || auth_blocklist_load(BLOCKLIST, &bl) != 0 ||
        lgcode_table_load(LGCODES, &lgcodes, NULL, 0) != 0)
        return 1;
    log_setup("test_auth", LOG_TO_STDERR, LOG_LVL_ERROR);
    failed = cmocka_run_group_tests_name("auth", pure, NULL, NULL);
    failed += STORE_FX_RUN("auth-store/sqlite", "auth-store/postgresql", stored, 0);
    auth_blocklist_free(bl);
    lgcode_table_free(lgcodes);
    return failed;
}
