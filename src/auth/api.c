/*
 * api.c - staff authentication over HTTP (R3.5, R6.1-R6.9).
 *
 * Login failures are uniform (R6.4): a wrong ID, password or code, a
 * locked, pending or lapsed account and an unregistered terminal all get
 * the same 401 body and do the same work - one account read, one
 * terminal read, one Argon2id verification (of a dummy hash when the ID
 * is unknown), one key grant and TOTP check, one failure-count write and
 * one audit event - so neither the message nor the time says whether the
 * ID exists.
 */
#include "auth/api.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/session.h"
#include "auth/totp.h"
#include "common/log.h"
#include "crypto/field.h"
#include "http/reply.h"
#include "ipc/ipc.h"
#include "store/store_auth.h"
#include "worker/worker.h"

#define LOCK_AFTER 6                    /* R6.3: 6 consecutive failures */
#define AUDIT_TIMEOUT_MS 5000
#define BLOCKLIST_FILE "auth/common-passwords.txt"

/* ---- environment ------------------------------------------------------------ */

int
auth_env_init(const struct mamori_config *cfg, struct auth_env **out)
{
    struct auth_env *a = calloc(1, sizeof(*a));
    char path[PATH_MAX], dummy[33];

    if (a == NULL)
        return -1;
    a->profile = strcmp(cfg->auth_password_profile, "nist") == 0 ? PW_PROFILE_NIST :
                                                                  PW_PROFILE_R63;
    a->opslimit = cfg->auth_pwhash_opslimit;
    a->memlimit = (size_t)cfg->auth_pwhash_memlimit_kib * 1024u;
    randombytes_buf(dummy, sizeof(dummy) - 1);
    for (size_t i = 0; i < sizeof(dummy) - 1; i++)
        dummy[i] = (char)('a' + (unsigned char)dummy[i] % 26);
    dummy[sizeof(dummy) - 1] = '\0';
    /* refdata first; an older installed refdata may predate the list, so
     * then the build's own data directories (as mamori init looks). */
    static const char *const dirs[] = {
        NULL,
#ifdef MAMORI_DATA_DIR
        MAMORI_DATA_DIR,
#endif
        MAMORI_SOURCE_DATA_DIR,
    };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && a->blocklist == NULL; i++)
        if (util_path_join(path, sizeof(path), dirs[i] ? dirs[i] : cfg->refdata,
                           BLOCKLIST_FILE) == 0 && access(path, R_OK) == 0 &&
            auth_blocklist_load(path, &a->blocklist) != 0)
            break;
    if (a->blocklist == NULL) {
        log_error("auth_init_failed", "cannot load %s: %s", BLOCKLIST_FILE, strerror(errno));
        auth_env_free(a);
        return -1;
    }
    /* R6.4: the same cost as a real hash, so an unknown ID takes as long. */
    if (auth_password_hash(dummy, a->opslimit, a->memlimit, a->dummy_hash) != 0) {
        log_error("auth_init_failed", "cannot hash with auth.pwhash_opslimit %llu and "
                  "auth.pwhash_memlimit_kib %zu", a->opslimit, a->memlimit / 1024);
        auth_env_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void
auth_env_free(struct auth_env *a)
{
    if (a == NULL)
        return;
    auth_blocklist_free(a->blocklist);
    free(a);
}

int64_t
auth_now(void)
{
    return (int64_t)time(NULL);
}

/* ---- validators --------------------------------------------------------------- */

const char *
auth_check_user_id(const char *v)
{
    return store_staff_id_valid(v) ? NULL :
        "must be 1 to 32 of a-z, 0-9, '.', '_', '-' starting with a letter or digit";
}

const char *
auth_check_code(const char *v)
{
    if (strlen(v) != TOTP_DIGITS)
        return "must be 6 digits";
    for (; *v; v++)
        if (*v < '0' || *v > '9')
            return "must be 6 digits";
    return NULL;
}

const char *
auth_check_fingerprint(const char *v)
{
    uint8_t fp[32];

    if (strlen(v) != 64 || util_hex_decode(v, fp, sizeof(fp)) != 0)
        return "must be 64 hex digits (SHA-256 of the certificate)";
    return NULL;
}

const char *
auth_check_reason(const char *v)
{
    if (*v == '\0')
        return "must be a code of a-z, 0-9, '_', '.'";
    for (; *v; v++)
        if (!((*v >= 'a' && *v <= 'z') || (*v >= '0' && *v <= '9') || *v == '_' ||
              *v == '.'))
            return "must be a code of a-z, 0-9, '_', '.'";
    return NULL;
}

/* ---- helpers -------------------------------------------------------------------- */

static struct worker_env *
wenv(const struct http_request *req)
{
    return req->env;
}

static const char *
body_str(const struct http_request *req, const char *name)
{
    const char *s = json_string_value(json_object_get(req->body, name));

    return s ? s : "";
}

/* One event text to the audit writer: 0 once it is acknowledged, i.e.
 * durable. */
static int
audit_send(struct worker_env *env, const char *text)
{
    uint8_t reply[64];
    struct ipc_hdr rh;

    return env != NULL &&
           ipc_call(&env->audit, IPC_AUDIT_APPEND, text, strlen(text), &rh, reply,
                    sizeof(reply), AUDIT_TIMEOUT_MS) == 0 &&
           rh.type == IPC_AUDIT_ACK ? 0 : -1;
}

/*
 * R6.3, R7.1: account locks whose auth.lock event the writer did not
 * take.  A lock is the one change that lands before its event: it only
 * protects, and refusing it while the log is down would let a guesser
 * go on.  Its event then waits here (this worker's memory), marked late
 * with the time of the lock, and goes to the writer before any other
 * event of this worker, so no later event of the worker is recorded
 * while the lock is not.  Bounded; a worker that exits loses what is
 * here, which is why the lock is also reported at once in the
 * operational log (auth_lock_unaudited).  The mutex is held over the
 * writer's answer so two threads never send one event twice.
 */
#define UNAUDITED_MAX 64
static pthread_mutex_t unaudited_mu = PTHREAD_MUTEX_INITIALIZER;
static char *unaudited[UNAUDITED_MAX];  /* owned: json_dumps text, oldest first */
static size_t unaudited_n;

/* Send the waiting lock events, oldest first; -1 (the rest still
 * waiting) if the writer does not take one. */
static int
unaudited_flush(struct worker_env *env)
{
    int rc = 0;

    pthread_mutex_lock(&unaudited_mu);
    while (unaudited_n > 0) {
        if (audit_send(env, unaudited[0]) != 0) {
            rc = -1;
            break;
        }
        free(unaudited[0]);
        memmove(unaudited, unaudited + 1, --unaudited_n * sizeof(unaudited[0]));
    }
    pthread_mutex_unlock(&unaudited_mu);
    return rc;
}

/* Keep `text` (taken) for unaudited_flush; -1 (text freed) when full. */
static int
unaudited_keep(char *text)
{
    int rc = -1;

    pthread_mutex_lock(&unaudited_mu);
    if (unaudited_n < UNAUDITED_MAX) {
        unaudited[unaudited_n++] = text;
        rc = 0;
    }
    pthread_mutex_unlock(&unaudited_mu);
    if (rc != 0)
        free(text);
    return rc;
}

/* Send `ev` after any waiting lock events: 0 once all are durable. */
static int
audit_ev_send(struct worker_env *env, json_t *ev)
{
    char *text;
    int rc;

    if (unaudited_flush(env) != 0 || (text = json_dumps(ev, JSON_COMPACT)) == NULL)
        return -1;
    rc = audit_send(env, text);
    free(text);
    return rc;
}

/* Build one event of `req` (the caller decrefs it; takes `info`); NULL
 * when out of memory. */
static json_t *
audit_event(const struct http_request *req, const char *action, const char *outcome,
            const char *actor, const char *tenant, const char *role, const char *reason,
            json_t *info)
{
    json_t *ev = json_pack("{s:s,s:s}", "action", action, "outcome", outcome);
    char hex[65];

    if (ev == NULL) {
        json_decref(info);
        return NULL;
    }
    if (actor != NULL && actor[0] != '\0')
        json_object_set_new(ev, "actor", json_string(actor));
    if (tenant != NULL && tenant[0] != '\0')
        json_object_set_new(ev, "tenant", json_string(tenant));
    if (role != NULL && role[0] != '\0')
        json_object_set_new(ev, "role", json_string(role));
    if (reason != NULL)
        json_object_set_new(ev, "reason", json_string(reason));
    if (req->has_terminal && util_hex_encode(req->terminal_fp, 32, hex, sizeof(hex)) == 0)
        json_object_set_new(ev, "terminal", json_string(hex));
    if (req->source[0] != '\0')
        json_object_set_new(ev, "source", json_string(req->source));
    /* The session reference (R7.1): the stored hash of the session token,
     * never the token.  The token is 256 random bits, so its hash cannot
     * be turned back, and it matches the sessions table for review. */
    if (req->authed) {
        char ref[5 + 65] = "hmac:";
        if (util_hex_encode(req->session_hash, 32, ref + 5, sizeof(ref) - 5) == 0)
            json_object_set_new(ev, "session", json_string(ref));
    }
    if (info != NULL)
        json_object_set_new(ev, "info", info);
    return ev;
}

/*
 * One audit event through the audit writer (R6.9, R7.7): acknowledged
 * only once it is durable.  -1 if the writer refuses or does not answer:
 * the caller then fails the operation (fail closed).  Takes `info`.
 */
static int
audit(const struct http_request *req, const char *action, const char *outcome,
      const char *actor, const char *tenant, const char *role, const char *reason,
      json_t *info)
{
    json_t *ev = audit_event(req, action, outcome, actor, tenant, role, reason, info);
    int rc = ev != NULL ? audit_ev_send(wenv(req), ev) : -1;

    if (rc != 0)
        log_error("audit_refused", "audit event %s not recorded: operation refused", action);
    json_decref(ev);
    return rc;
}

/*
 * R6.3, R7.1: the auth.lock event of a lock that has landed.  `try` is
 * false when the writer has just refused an event of this request.  If
 * the writer does not take it, the event waits (unaudited_keep) marked
 * late with the time of the lock, and the operational log says so
 * at once (the tenant only: the account is in the event).  -1 when the
 * event is not durable yet.
 */
static int
audit_lock(const struct http_request *req, const struct staff_account *acct, bool try)
{
    json_t *ev = audit_event(req, "auth.lock", "success", acct->user_id, acct->tenant,
                             acct->role, "consecutive_failures",
                             json_pack("{s:I}", "failures", (json_int_t)LOCK_AFTER));
    json_t *info = json_object_get(ev, "info");
    json_int_t when = (json_int_t)auth_now();
    char *text = NULL;
    bool kept = false;

    if (ev != NULL && try && audit_ev_send(wenv(req), ev) == 0) {
        json_decref(ev);
        return 0;
    }
    /* info takes integers and lower-case codes only (docs/audit.md):
     * late = 1, locked_at = UTC seconds since the epoch. */
    if (json_is_object(info) &&
        json_object_set_new(info, "late", json_integer(1)) == 0 &&
        json_object_set_new(info, "locked_at", json_integer(when)) == 0 &&
        (text = json_dumps(ev, JSON_COMPACT)) != NULL)
        kept = unaudited_keep(text) == 0;
    log_event(LOG_LVL_ERROR, "auth_lock_unaudited",
              json_pack("{s:s,s:I,s:b}", "tenant", acct->tenant, "locked_at", when,
                        "kept", kept));
    json_decref(ev);
    return -1;
}

static void
audit_failed(struct http_response *resp)
{
    reply_error(resp, 503, "audit_unavailable",
                "The audit log cannot record this now; nothing was done.", NULL);
}

/*
 * A change audited first (so it never happens unrecorded, R7.1) that the
 * store then refused: a failure event by the same actor follows, best
 * effort, so the log never shows only a change that did not happen
 * (R6.9, R7.7).  Takes `info`.
 */
static void
refused_as(const struct http_request *req, const char *action, const char *actor,
           const char *tenant, const char *role, enum store_status st, json_t *info)
{
    if (audit(req, action, "failure", actor, tenant, role,
              st == STORE_EXISTS ? "exists" : st == STORE_NOTFOUND ? "not_found"
                                                                  : "store_refused",
              info) != 0)
        log_error("audit_refused", "failure event of %s not recorded", action);
}

/* The same for a change made by the signed-in staff member of `req`. */
static void
change_refused(const struct http_request *req, const char *action, enum store_status st,
               json_t *info)
{
    refused_as(req, action, req->user_id, req->tenant, auth_role_name(req->role), st, info);
}

static void
store_failed(struct http_response *resp)
{
    reply_error(resp, 503, "unavailable", "The service cannot do this now.", NULL);
}

static bool
lapsed(const struct worker_env *env, const struct staff_account *a, int64_t now)
{
    /* R6.8: an account lapses a year after its last re-confirmation. */
    return now - a->confirmed_at >= (int64_t)env->cfg->auth_account_lapse_days * 86400;
}

static void
totp_ad(struct field_ad *ad, const char *tenant, const char *user, char table[48])
{
    snprintf(table, 48, "staff:%s", user);
    ad->tenant = tenant;
    ad->table = table;
    ad->column = "totp_secret";
    ad->row_id = 0;
}

/* Decrypt an account's TOTP secret with its tenant's data key. */
static int
totp_open(struct worker_env *env, const struct staff_account *a,
          uint8_t secret[TOTP_SECRET_LEN])
{
    struct tenant_key *k = NULL;
    struct field_ad ad;
    char table[48], plain[TOTP_SECRET_LEN + 16];
    uint32_t v;
    size_t n = 0;
    int rc = -1;

    totp_ad(&ad, a->tenant, a->user_id, table);
    if (a->totp_ct_len == 0 || field_version(a->totp_ct, a->totp_ct_len, &v) != 0 ||
        env->keys.data_key(env->keys.arg, a->tenant, v, &k) != 0)
        return -1;
    if (field_decrypt(k, &ad, a->totp_ct, a->totp_ct_len, plain, sizeof(plain), &n) == 0 &&
        n == TOTP_SECRET_LEN) {
        memcpy(secret, plain, TOTP_SECRET_LEN);
        rc = 0;
    }
    util_wipe(plain, sizeof(plain));
    tenant_key_free(k);
    return rc;
}

/* The same key round trip for an unknown ID (R6.4 timing). */
static void
key_roundtrip(struct worker_env *env, const char *tenant)
{
    struct tenant_key *k = NULL;

    if (tenant[0] != '\0' && env->keys.current_key(env->keys.arg, tenant, &k) == 0)
        tenant_key_free(k);
}

/* End a session; a failure only leaves a row that no longer works. */
static void
session_end(struct store *st, const uint8_t h[AUTH_HASH_LEN])
{
    if (store_session_delete(st, h) != STORE_OK)
        log_warn("session_delete_failed", "a session row could not be removed");
}

static void
set_cookies(struct http_response *resp, const char *token, const char *csrf)
{
    if (token == NULL) {
        snprintf(resp->cookies[0], sizeof(resp->cookies[0]), "mamori_session=; Path=/; "
                 "Max-Age=0; Secure; HttpOnly; SameSite=Strict");
        snprintf(resp->cookies[1], sizeof(resp->cookies[1]), "mamori_csrf=; Path=/; "
                 "Max-Age=0; Secure; SameSite=Strict");
        return;
    }
    snprintf(resp->cookies[0], sizeof(resp->cookies[0]), "mamori_session=%s; Path=/; "
             "Secure; HttpOnly; SameSite=Strict", token);
    snprintf(resp->cookies[1], sizeof(resp->cookies[1]), "mamori_csrf=%s; Path=/; "
             "Secure; SameSite=Strict", csrf);
}

/* ---- login ------------------------------------------------------------------------ */

static void
login_failed(struct http_response *resp)
{
    /* R6.4: one body for every failure; nothing says which part was wrong. */
    reply_error(resp, 401, "login_failed", "The sign-in did not succeed. Check the "
                "user ID, password and code, or ask your administrator.", NULL);
}

static void
login_ok(const struct http_request *req, struct http_response *resp,
         const struct staff_account *a, int64_t now, bool must_change)
{
    struct worker_env *env = wenv(req);
    struct staff_session s = { .must_change = must_change, .created_at = now,
                               .last_seen = now };
    char token[SESSION_TOKEN_HEX + 1], csrf[SESSION_TOKEN_HEX + 1];
    enum store_status st;

    auth_session_new(token, s.token_hash);
    memcpy(s.fingerprint, req->terminal_fp, 32);
    snprintf(s.user_id, sizeof(s.user_id), "%s", a->user_id);
    snprintf(s.tenant, sizeof(s.tenant), "%s", a->tenant);
    snprintf(s.role, sizeof(s.role), "%s", a->role);
    if (auth_session_csrf(token, csrf) != 0) {
        store_failed(resp);
        goto out;
    }
    /* The change is the session: on the record before it exists, so no
     * usable session is ever unaudited (R6.9, R7.1: fail closed). */
    if (audit(req, "auth.login", "success", a->user_id, a->tenant, a->role,
              must_change ? "must_change_password" : NULL, NULL) != 0) {
        audit_failed(resp);
        goto out;
    }
    if ((st = store_session_create(env->store, &s)) != STORE_OK) {
        refused_as(req, "auth.login", a->user_id, a->tenant, a->role, st, NULL);
        store_failed(resp);
        goto out;
    }
    set_cookies(resp, token, csrf);
    reply_json(resp, 200, json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:I,s:I}",
                                    "token", token, "csrf_token", csrf,
                                    "user", a->user_id, "tenant", a->tenant,
                                    "role", a->role, "must_change_password", must_change,
                                    "idle_timeout", (json_int_t)env->cfg->auth_session_idle,
                                    "expires_at",
                                    (json_int_t)(now + env->cfg->auth_session_lifetime)));
out:
    util_wipe(token, sizeof(token));
}

/* R7.4: has the audit writer's intrusion rule blocked this source for a
 * while (repeated login failures)?  If the writer does not answer, the
 * answer is yes: fail closed. */
static bool
source_blocked(const struct http_request *req)
{
    struct worker_env *env = wenv(req);
    uint8_t reply[16];
    struct ipc_hdr rh;
    size_t n = strlen(req->source);

    if (n == 0)
        return false;
    if (ipc_call(&env->audit, IPC_BLOCK_QUERY, req->source, n, &rh, reply, sizeof(reply),
                 AUDIT_TIMEOUT_MS) != 0 || rh.type != IPC_BLOCK_STATUS || rh.len != 5)
        return true;
    return reply[0] == 1;
}

void
auth_h_login(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    const struct auth_env *a = env->auth;
    const char *user = body_str(req, "user"), *pw = body_str(req, "password");
    struct staff_account acct = { .failures = 0 };
    char ttenant[TENANT_ID_LEN + 1] = "", tstate[12] = "";
    uint8_t secret[TOTP_SECRET_LEN];
    int64_t now = auth_now(), step = 0;
    enum store_status st = store_staff_get(env->store, user, &acct);
    bool found = st == STORE_OK, have_secret = false, locked_now = false;
    bool term_ok, pw_ok, code_ok, counted;
    const char *why = NULL;
    int rc;

    if (st != STORE_OK && st != STORE_NOTFOUND) {
        store_failed(resp);
        return;
    }
    /* R3.5, R6.2: only from a registered, active terminal of the tenant. */
    term_ok = req->has_terminal &&
              store_terminal_get(env->store, req->terminal_fp, ttenant, tstate) == STORE_OK &&
              strcmp(tstate, "active") == 0;
    /* R6.4: always one Argon2id verification, of a dummy hash if need be. */
    pw_ok = auth_password_verify(found && acct.pw_hash[0] ? acct.pw_hash : a->dummy_hash, pw) &&
            found && acct.pw_hash[0] != '\0';
    if (found)
        have_secret = totp_open(env, &acct, secret) == 0;
    else
        key_roundtrip(env, ttenant);
    if (!have_secret)
        randombytes_buf(secret, sizeof(secret));
    code_ok = auth_totp_verify(secret, body_str(req, "code"), now,
                               found ? acct.totp_last_step : 0, &step) && have_secret;
    util_wipe(secret, sizeof(secret));

    /* Checked after the work above so a blocked source learns nothing from
     * the timing either; a blocked source never signs in (R7.4). */
    if (source_blocked(req))
        why = "source_blocked";
    else if (!found)
        why = "unknown_user";
    else if (strcmp(acct.state, "active") != 0)
        why = "not_active";
    else if (acct.locked)
        why = "locked";
    else if (lapsed(env, &acct, now))
        why = "lapsed";                                     /* R6.8 */
    else if (!term_ok || strcmp(ttenant, acct.tenant) != 0)
        why = "terminal_not_registered";
    else if (!pw_ok)
        why = "bad_password";
    else if (!code_ok)
        why = "bad_code";
    /* R6.3: count consecutive password / code failures.  The write runs
     * for every failure (on no row when not counted) for equal timing.
     * It and store_staff_success (the replay check) come before the audit
     * event: they are part of checking the attempt, whose outcome the
     * event records; the change a login makes, the session, is audited
     * before it exists (login_ok). */
    counted = why != NULL && (strcmp(why, "bad_password") == 0 || strcmp(why, "bad_code") == 0);
    if (why != NULL) {
        st = store_staff_fail(env->store, counted ? acct.user_id : "-", LOCK_AFTER,
                              &locked_now);
        if (st != STORE_OK && st != STORE_NOTFOUND) {
            store_failed(resp);
            return;
        }
    } else if ((st = store_staff_success(env->store, acct.user_id, step)) != STORE_OK) {
        if (st != STORE_DENIED) {
            store_failed(resp);
            return;
        }
        why = "code_replayed";                              /* R6.2 */
    }
    if (why == NULL) {
        login_ok(req, resp, &acct, now, acct.must_change ||
                 auth_password_expired(a->profile, acct.pw_changed_at, now));
        return;
    }
    /* R6.3, R7.1: a lock has landed already (store_staff_fail) and stays
     * even when the log cannot record it: see audit_lock.  The login
     * itself still fails closed with 503, as every failure does then. */
    rc = audit(req, "auth.login", "failure", found ? acct.user_id : NULL,
               found ? acct.tenant : ttenant, found ? acct.role : NULL, why, NULL);
    if (counted && locked_now && audit_lock(req, &acct, rc == 0) != 0)
        rc = -1;
    if (rc != 0)
        audit_failed(resp);
    else
        login_failed(resp);
}

/* ---- the per-request session check --------------------------------------------------- */

static int
unauthenticated(struct http_response *resp)
{
    reply_error(resp, 401, "unauthenticated", "Please sign in first.", NULL);
    return -1;
}

int
auth_authorize(struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    struct staff_session s = { .created_at = 0 };
    struct staff_account acct = { .failures = 0 };
    char ttenant[TENANT_ID_LEN + 1], tstate[12], csrf[SESSION_TOKEN_HEX + 1];
    int64_t now = auth_now();
    const char *m = req->route->method;
    enum role role;

    /* R3.5: sessions exist only on the internal listener, from a terminal. */
    if (env == NULL || !req->has_terminal || req->listener != LISTENER_INTERNAL ||
        auth_session_hash(req->token, req->session_hash) != 0 ||
        store_session_get(env->store, req->session_hash, &s) != STORE_OK)
        return unauthenticated(resp);
    /* R6.2: bound to the terminal it was created from. */
    if (sodium_memcmp(s.fingerprint, req->terminal_fp, 32) != 0)
        return unauthenticated(resp);
    /* R6.5: idle and absolute limits. */
    if (!auth_session_live(s.created_at, s.last_seen, now, env->cfg->auth_session_idle,
                           env->cfg->auth_session_lifetime)) {
        session_end(env->store, req->session_hash);
        reply_error(resp, 401, "session_expired", "The session has ended; please sign in "
                    "again.", NULL);
        return -1;
    }
    /* The terminal still registered, the account still usable (R6.2, R6.3, R6.8). */
    if (store_terminal_get(env->store, req->terminal_fp, ttenant, tstate) != STORE_OK ||
        strcmp(tstate, "active") != 0 || strcmp(ttenant, s.tenant) != 0 ||
        store_staff_get(env->store, s.user_id, &acct) != STORE_OK ||
        strcmp(acct.state, "active") != 0 || acct.locked || lapsed(env, &acct, now) ||
        strcmp(acct.role, s.role) != 0)
        return unauthenticated(resp);
    /* CSRF: a cookie session must echo its token for state changes. */
    if (req->token_from_cookie && strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 &&
        (auth_session_csrf(req->token, csrf) != 0 ||
         strlen(req->csrf_header) != SESSION_TOKEN_HEX ||
         sodium_memcmp(csrf, req->csrf_header, SESSION_TOKEN_HEX) != 0)) {
        reply_error(resp, 403, "csrf", "The X-CSRF-Token header is missing or wrong.", NULL);
        return -1;
    }
    role = auth_role_parse(s.role);
    /* R6.6: the one matrix decides. */
    if (!auth_role_allows(role, req->route->perm)) {
        reply_error(resp, 403, "forbidden", "Your role does not allow this.", NULL);
        return -1;
    }
    /* R6.3: a one-time or expired password allows only changing it. */
    if (s.must_change && req->route->perm != PERM_SESSION) {
        reply_error(resp, 403, "password_change_required",
                    "Please change your password first.", NULL);
        return -1;
    }
    /* R6.5: each request moves the idle clock.  On SQLite a bulk import
     * holds the write lock for all of its pass 2 (R2.6), and a session
     * checked a moment ago must still be able to poll its progress: a
     * busy store skips the touch (the idle limit can then only come
     * sooner, never later) instead of refusing the request. */
    enum store_status touched = store_session_touch(env->store, req->session_hash, now);
    if (touched != STORE_OK && touched != STORE_BUSY)
        return unauthenticated(resp);
    req->authed = true;
    req->role = role;
    req->must_change = s.must_change;
    snprintf(req->user_id, sizeof(req->user_id), "%s", s.user_id);
    snprintf(req->tenant, sizeof(req->tenant), "%s", s.tenant);
    return 0;
}

/* ---- session routes ---------------------------------------------------------------------- */

void
auth_h_logout(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    enum store_status st;

    /* Audit first (R6.9, R7.1): a session never ends unrecorded.  If the
     * writer refuses, the session stays as it was, as the 503 says. */
    if (audit(req, "auth.logout", "success", req->user_id, req->tenant,
              auth_role_name(req->role), NULL, NULL) != 0) {
        audit_failed(resp);
        return;
    }
    if ((st = store_session_delete(env->store, req->session_hash)) != STORE_OK) {
        change_refused(req, "auth.logout", st, NULL);
        store_failed(resp);
        return;
    }
    set_cookies(resp, NULL, NULL);
    reply_json(resp, 200, json_pack("{s:s}", "status", "signed_out"));
}

void
auth_h_me(const struct http_request *req, struct http_response *resp)
{
    reply_json(resp, 200, json_pack("{s:s,s:s,s:s,s:b}", "user", req->user_id,
                                    "tenant", req->tenant, "role", auth_role_name(req->role),
                                    "must_change_password", req->must_change));
}

static void
policy_refused(struct http_response *resp, const char *why)
{
    reply_error(resp, 400, "password_policy", auth_password_reason_text(why), "password");
}

void
auth_h_password(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    const struct auth_env *a = env->auth;
    const char *cur = body_str(req, "current_password"), *pw = body_str(req, "password");
    struct staff_account acct;
    char hash[PW_HASH_LEN];
    const char *why;
    enum store_status st;

    if (store_staff_get(env->store, req->user_id, &acct) != STORE_OK) {
        store_failed(resp);
        return;
    }
    if (!auth_password_verify(acct.pw_hash, cur)) {
        reply_error(resp, 403, "wrong_password", "The current password is not correct.",
                    "current_password");
        return;
    }
    if ((why = auth_password_check(a->profile, pw, req->user_id, a->blocklist)) != NULL) {
        policy_refused(resp, why);
        return;
    }
    if (strcmp(cur, pw) == 0) {
        reply_error(resp, 400, "password_policy", "The new password must differ from the "
                    "current one.", "password");
        return;
    }
    if (auth_password_hash(pw, a->opslimit, a->memlimit, hash) != 0) {
        store_failed(resp);
        return;
    }
    /* Audit first (R6.9, R7.1): a password never changes unrecorded. */
    if (audit(req, "auth.password_change", "success", req->user_id, req->tenant,
              auth_role_name(req->role), NULL, NULL) != 0) {
        audit_failed(resp);
        return;
    }
    if ((st = store_staff_set_password(env->store, req->user_id, hash, false, auth_now()))
        != STORE_OK) {
        change_refused(req, "auth.password_change", st, NULL);
        store_failed(resp);
        return;
    }
    reply_json(resp, 200, json_pack("{s:s}", "status", "changed"));
}

/* ---- enrolment ------------------------------------------------------------------------------ */

void
auth_h_enrol(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    const struct auth_env *a = env->auth;
    const char *pw = body_str(req, "password");
    struct staff_account acct;
    struct tenant_key *k = NULL;
    struct field_ad ad;
    uint8_t h[AUTH_HASH_LEN], secret[TOTP_SECRET_LEN], ct[STAFF_TOTP_CT_MAX];
    char table[48], hash[PW_HASH_LEN], uri[256], ttenant[TENANT_ID_LEN + 1] = "", tstate[12];
    size_t ctlen = 0;
    int64_t now = auth_now();
    const char *why;
    enum store_status st;

    if (auth_session_hash(body_str(req, "secret"), h) != 0 ||
        store_staff_by_enrol(env->store, h, now, &acct) != STORE_OK ||
        !req->has_terminal ||
        store_terminal_get(env->store, req->terminal_fp, ttenant, tstate) != STORE_OK ||
        strcmp(tstate, "active") != 0 || strcmp(ttenant, acct.tenant) != 0) {
        reply_error(resp, 401, "enrolment_failed", "The enrolment secret is not valid "
                    "here, or has expired or been used.", NULL);
        return;
    }
    if ((why = auth_password_check(a->profile, pw, acct.user_id, a->blocklist)) != NULL) {
        policy_refused(resp, why);
        return;
    }
    auth_totp_secret_new(secret);
    totp_ad(&ad, acct.tenant, acct.user_id, table);
    if (auth_password_hash(pw, a->opslimit, a->memlimit, hash) != 0 ||
        env->keys.current_key(env->keys.arg, acct.tenant, &k) != 0 ||
        field_encrypt(k, &ad, secret, sizeof(secret), ct, sizeof(ct), &ctlen) != 0 ||
        auth_totp_uri(secret, acct.tenant, acct.user_id, uri, sizeof(uri)) != 0) {
        store_failed(resp);
        goto out;
    }
    if (audit(req, "staff.enrol", "success", acct.user_id, acct.tenant, acct.role,
              NULL, NULL) != 0) {
        audit_failed(resp);
        goto out;
    }
    /* Refused after its success event (used or expired meanwhile): the
     * failure follows it on the record (R6.9). */
    if ((st = store_staff_enrol_complete(env->store, acct.user_id, h, hash, ct, ctlen, now))
        != STORE_OK) {
        refused_as(req, "staff.enrol", acct.user_id, acct.tenant, acct.role, st, NULL);
        reply_error(resp, 401, "enrolment_failed", "The enrolment secret is not valid "
                    "here, or has expired or been used.", NULL);
        goto out;
    }
    reply_json(resp, 200, json_pack("{s:s,s:s,s:s}", "user", acct.user_id,
                                    "tenant", acct.tenant, "otpauth_uri", uri));
out:
    util_wipe(secret, sizeof(secret));
    util_wipe(uri, sizeof(uri));
    tenant_key_free(k);
}

/* ---- staff management (tenant_admin) ---------------------------------------------------------- */

const char *
auth_check_role(const char *v)
{
    return auth_role_parse(v) != ROLE_NONE ? NULL :
        "must be one of clerk, supervisor, tenant_admin, auditor, site_device, "
        "prefecture_viewer, national_viewer, platform_operator";
}

/* Roles a tenant admin may give: those of the tenant's scope only
 * (auth_role_in_scope: R1.2, R1.3, R6.7).  The role name was checked
 * by auth_check_role, so it may be echoed. */
static bool
role_fits_tenant(const struct http_request *req, struct http_response *resp,
                 const char *role)
{
    enum lgcode_scope scope = lgcode_scope(wenv(req)->lgcodes, req->tenant);
    char msg[160];

    if (auth_role_in_scope(auth_role_parse(role), scope))
        return true;
    snprintf(msg, sizeof(msg), "A %s tenant cannot have staff with the role %s.",
             lgcode_scope_name(scope), role);
    reply_error(resp, 400, "role_not_in_scope", msg, "role");
    return false;
}

void
auth_h_staff_create(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    const char *user = body_str(req, "user"), *role = body_str(req, "role");
    char secret[SESSION_TOKEN_HEX + 1];
    uint8_t h[AUTH_HASH_LEN];
    int64_t now = auth_now(), exp = now + env->cfg->auth_enrol_ttl;
    enum store_status st;

    if (!role_fits_tenant(req, resp, role))
        return;
    auth_session_new(secret, h);
    /* Audit first (R6.9, R7.1): an account never exists unrecorded. */
    if (audit(req, "staff.create", "success", req->user_id, req->tenant,
              auth_role_name(req->role), NULL,
              json_pack("{s:s,s:s}", "user", user, "role", role)) != 0) {
        audit_failed(resp);
        goto out;
    }
    st = store_staff_create(env->store, user, req->tenant, role, h, exp, now);
    if (st != STORE_OK)
        change_refused(req, "staff.create", st, json_pack("{s:s}", "user", user));
    if (st == STORE_EXISTS) {
        reply_error(resp, 409, "user_exists", "This user ID is taken (one ID per person).",
                    "user");
        goto out;
    }
    if (st != STORE_OK) {
        store_failed(resp);
        goto out;
    }
    reply_json(resp, 201, json_pack("{s:s,s:s,s:s,s:I}", "user", user, "role", role,
                                    "enrolment_secret", secret, "expires_at",
                                    (json_int_t)exp));
out:
    util_wipe(secret, sizeof(secret));
}

/* The target account, in the admin's own tenant, not the admin (R6.7). */
static int
managed_account(const struct http_request *req, struct http_response *resp,
                struct staff_account *acct)
{
    const char *user = http_param(req, "user");

    if (store_staff_get(wenv(req)->store, user, acct) != STORE_OK ||
        strcmp(acct->tenant, req->tenant) != 0) {
        reply_error(resp, 404, "unknown_user", "Your tenant has no such user.", "user");
        return -1;
    }
    if (strcmp(acct->user_id, req->user_id) == 0) {
        reply_error(resp, 403, "self_service", "Another administrator must do this for "
                    "you.", "user");
        return -1;
    }
    return 0;
}

/* A one-time password that passes either profile: 16 random characters
 * from four classes (R6.3). */
static void
one_time_password(const struct auth_env *a, const char *user, char out[17])
{
    static const char *const cls[] = { "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnpqrstuvwxyz",
                                       "23456789", "-_.!+=" };

    do {
        for (int i = 0; i < 16; i++) {
            const char *c = cls[i < 4 ? i : (int)randombytes_uniform(4)];
            out[i] = c[randombytes_uniform((uint32_t)strlen(c))];
        }
        out[16] = '\0';
    } while (auth_password_check(a->profile, out, user, a->blocklist) != NULL);
}

/* Helpdesk reset (R6.3): after an identity check, recorded with it. */
void
auth_h_staff_reset(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    struct staff_account acct;
    char otp[17], hash[PW_HASH_LEN];
    enum store_status st;

    if (managed_account(req, resp, &acct) != 0)
        return;
    one_time_password(env->auth, acct.user_id, otp);
    if (auth_password_hash(otp, env->auth->opslimit, env->auth->memlimit, hash) != 0) {
        store_failed(resp);
        goto out;
    }
    /* Audit first: an unrecorded reset must not happen (fail closed). */
    if (audit(req, "staff.reset", "success", req->user_id, req->tenant,
              auth_role_name(req->role), body_str(req, "identity_check"),
              json_pack("{s:s,s:i}", "user", acct.user_id, "was_locked", acct.locked ? 1 : 0)) != 0) {
        audit_failed(resp);
        goto out;
    }
    if ((st = store_staff_set_password(env->store, acct.user_id, hash, true, auth_now()))
        != STORE_OK) {
        change_refused(req, "staff.reset", st, json_pack("{s:s}", "user", acct.user_id));
        store_failed(resp);
        goto out;
    }
    reply_json(resp, 200, json_pack("{s:s,s:s,s:b}", "user", acct.user_id,
                                    "one_time_password", otp, "must_change_password", 1));
out:
    util_wipe(otp, sizeof(otp));
}

void
auth_h_staff_reconfirm(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    struct staff_account acct;
    enum store_status st;

    if (managed_account(req, resp, &acct) != 0)
        return;
    if (audit(req, "staff.reconfirm", "success", req->user_id, req->tenant,
              auth_role_name(req->role), NULL, json_pack("{s:s}", "user", acct.user_id)) != 0) {
        audit_failed(resp);
        return;
    }
    if ((st = store_staff_reconfirm(env->store, acct.user_id, auth_now())) != STORE_OK) {
        change_refused(req, "staff.reconfirm", st, json_pack("{s:s}", "user", acct.user_id));
        store_failed(resp);
        return;
    }
    reply_json(resp, 200, json_pack("{s:s,s:s}", "user", acct.user_id, "status",
                                    "reconfirmed"));
}

/* ---- terminals (tenant_admin) ------------------------------------------------------------------ */

void
auth_h_terminal_register(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    uint8_t fp[32];
    enum store_status st;

    if (util_hex_decode(body_str(req, "fingerprint"), fp, sizeof(fp)) != 0) {
        reply_error(resp, 400, "invalid", "Bad fingerprint.", "fingerprint");
        return;
    }
    if (audit(req, "terminal.register", "success", req->user_id, req->tenant,
              auth_role_name(req->role), NULL,
              json_pack("{s:s}", "fingerprint", body_str(req, "fingerprint"))) != 0) {
        audit_failed(resp);
        return;
    }
    st = store_terminal_register(env->store, req->tenant, fp, body_str(req, "name"));
    if (st != STORE_OK)
        change_refused(req, "terminal.register", st,
                       json_pack("{s:s}", "fingerprint", body_str(req, "fingerprint")));
    if (st == STORE_EXISTS) {
        reply_error(resp, 409, "terminal_exists", "This terminal is already registered.",
                    "fingerprint");
        return;
    }
    if (st != STORE_OK) {
        store_failed(resp);
        return;
    }
    reply_json(resp, 201, json_pack("{s:s,s:s}", "fingerprint",
                                    body_str(req, "fingerprint"), "state", "active"));
}

void
auth_h_terminal_revoke(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    char tenant[TENANT_ID_LEN + 1], state[12];
    uint8_t fp[32];
    enum store_status st;

    if (util_hex_decode(http_param(req, "fingerprint"), fp, sizeof(fp)) != 0 ||
        store_terminal_get(env->store, fp, tenant, state) != STORE_OK ||
        strcmp(tenant, req->tenant) != 0) {
        reply_error(resp, 404, "unknown_terminal", "Your tenant has no such terminal.",
                    "fingerprint");
        return;
    }
    if (audit(req, "terminal.revoke", "success", req->user_id, req->tenant,
              auth_role_name(req->role), NULL,
              json_pack("{s:s}", "fingerprint", http_param(req, "fingerprint"))) != 0) {
        audit_failed(resp);
        return;
    }
    /* Ends the terminal's sessions at once (R6.2). */
    if ((st = store_terminal_revoke(env->store, fp)) != STORE_OK) {
        change_refused(req, "terminal.revoke", st,
                       json_pack("{s:s}", "fingerprint", http_param(req, "fingerprint")));
        store_failed(resp);
        return;
    }
    /* ... and its TLS connections: every worker refuses the certificate
     * from the next handshake or request on (R6.2). */
    if (worker_notify_revoked(env, fp) != 0)
        log_error("terminal_revoke_partial", "the terminal is revoked in the store; "
                  "the TLS revocation set could not be updated everywhere");
    reply_json(resp, 200, json_pack("{s:s}", "state", "revoked"));
}

/* ---- staff listing, role and state (tenant_admin; R6.1, R6.6, R6.7, R6.9) ---- */

struct staff_listing {
    const struct worker_env *env;
    json_t                  *rows;
    int64_t                  now;
};

static int
staff_row(const struct staff_summary *s, void *p)
{
    struct staff_listing *l = p;
    int64_t lapse = (int64_t)l->env->cfg->auth_account_lapse_days * 86400;
    json_t *row = json_pack("{s:s,s:s,s:s,s:b,s:b,s:I,s:I,s:I,s:b}", "user", s->user_id,
                            "role", s->role, "state", s->state, "locked", s->locked,
                            "must_change_password", s->must_change,
                            "consecutive_failures", (json_int_t)s->failures,
                            "password_changed_at", (json_int_t)s->pw_changed_at,
                            "lapses_at", (json_int_t)(s->confirmed_at + lapse),
                            "lapsed", l->now - s->confirmed_at >= lapse);

    return json_array_append_new(l->rows, row) == 0 ? 0 : 1;
}

void
auth_h_staff_list(const struct http_request *req, struct http_response *resp)
{
    struct staff_listing l = { wenv(req), json_array(), auth_now() };

    if (l.rows == NULL || store_staff_list(l.env->store, req->tenant, staff_row, &l) != STORE_OK) {
        json_decref(l.rows);
        store_failed(resp);
        return;
    }
    reply_json(resp, 200, json_pack("{s:s,s:o}", "tenant", req->tenant, "staff", l.rows));
}

/* R6.7: a role change is another administrator's act, recorded with
 * the role before and after (R6.9); the account's sessions end. */
void
auth_h_staff_role(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    const char *role = body_str(req, "role");
    struct staff_account acct;
    enum store_status st;

    if (managed_account(req, resp, &acct) != 0 || !role_fits_tenant(req, resp, role))
        return;
    if (strcmp(acct.role, role) == 0) {
        reply_json(resp, 200, json_pack("{s:s,s:s,s:b}", "user", acct.user_id, "role", role,
                                        "changed", 0));
        return;
    }
    if (audit(req, "staff.role", "success", req->user_id, req->tenant,
              auth_role_name(req->role), NULL,
              json_pack("{s:s,s:s,s:s}", "user", acct.user_id, "before", acct.role,
                        "after", role)) != 0) {
        audit_failed(resp);
        return;
    }
    st = store_staff_set_role(env->store, acct.user_id, req->tenant, role);
    if (st != STORE_OK) {
        change_refused(req, "staff.role", st, json_pack("{s:s}", "user", acct.user_id));
        store_failed(resp);
        return;
    }
    reply_json(resp, 200, json_pack("{s:s,s:s,s:b}", "user", acct.user_id, "role", role,
                                    "changed", 1));
}

static void
staff_enable(const struct http_request *req, struct http_response *resp, bool enable)
{
    struct worker_env *env = wenv(req);
    const char *action = enable ? "staff.enable" : "staff.disable";
    struct staff_account acct;
    enum store_status st;

    if (managed_account(req, resp, &acct) != 0)
        return;
    if (strcmp(acct.state, enable ? "disabled" : "active") != 0) {
        reply_error(resp, 409, "wrong_state", enable ? "Only a disabled account can be "
                    "enabled." : "Only an active account can be disabled.", "user");
        return;
    }
    if (audit(req, action, "success", req->user_id, req->tenant, auth_role_name(req->role),
              NULL, json_pack("{s:s}", "user", acct.user_id)) != 0) {
        audit_failed(resp);
        return;
    }
    st = store_staff_set_enabled(env->store, acct.user_id, req->tenant, enable);
    if (st != STORE_OK)
        change_refused(req, action, st, json_pack("{s:s}", "user", acct.user_id));
    if (st == STORE_NOTFOUND) {         /* changed by someone else meanwhile */
        reply_error(resp, 409, "wrong_state", "The account changed meanwhile; look again.",
                    "user");
        return;
    }
    if (st != STORE_OK) {
        store_failed(resp);
        return;
    }
    reply_json(resp, 200, json_pack("{s:s,s:s}", "user", acct.user_id, "state",
                                    enable ? "active" : "disabled"));
}

/* A leaver's account is disabled, never deleted: the audit log keeps
 * referring to it and the ID is never given to anyone else (R6.1). */
void
auth_h_staff_disable(const struct http_request *req, struct http_response *resp)
{
    staff_enable(req, resp, false);
}

void
auth_h_staff_enable(const struct http_request *req, struct http_response *resp)
{
    staff_enable(req, resp, true);
}

static int
terminal_row(const struct terminal_info *t, void *p)
{
    char hex[65];

    if (util_hex_encode(t->fingerprint, 32, hex, sizeof(hex)) != 0)
        return 1;
    return json_array_append_new(p, json_pack("{s:s,s:s,s:s,s:s,s:s}", "fingerprint", hex,
                                              "name", t->name, "state", t->state,
                                              "registered_at", t->created_at,
                                              "changed_at", t->changed_at)) == 0 ? 0 : 1;
}

void
auth_h_terminal_list(const struct http_request *req, struct http_response *resp)
{
    json_t *rows = json_array();

    if (rows == NULL ||
        store_terminal_list(wenv(req)->store, req->tenant, terminal_row, rows) != STORE_OK) {
        json_decref(rows);
        store_failed(resp);
        return;
    }
    reply_json(resp, 200, json_pack("{s:s,s:o}", "tenant", req->tenant, "terminals", rows));
}
