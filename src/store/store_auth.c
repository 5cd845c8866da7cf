/*
 * store_auth.c - identity tables over the backends' generic query
 * (R3.5, R6.1-R6.8).  SQL here is written once for both backends:
 * $n placeholders, integer and blob columns only compared, never cast.
 */
#include "store/store_auth.h"

#include <string.h>

#include "store/store_int.h"

struct stmt {
    const char        *sql;
    const struct qarg *a;
    size_t             na;
    const struct qcol *cols;
    size_t             nc;
    bool              *found;
    int64_t           *changes;
};

/* Run statements in one transaction; commit only if all succeed. */
static enum store_status
run_tx(struct store *st, const struct stmt *s, size_t n)
{
    void *c;
    enum store_status rc = store_conn_get(st, &c);

    if (rc != STORE_OK)
        return rc;
    rc = st->ops->begin(c);
    for (size_t i = 0; i < n && rc == STORE_OK; i++)
        rc = st->ops->query(c, s[i].sql, s[i].a, s[i].na, s[i].cols, s[i].nc,
                            s[i].found, s[i].changes, NULL, NULL);
    rc = store_finish(st, c, rc);
    store_conn_put(st, c, rc);
    return rc;
}

/* One write statement, committed before it returns STORE_OK. */
static enum store_status
run1(struct store *st, const char *sql, const struct qarg *a, size_t na,
     const struct qcol *cols, size_t nc, bool *found, int64_t *changes)
{
    return store_run1(st, true, sql, a, na, cols, nc, found, changes, NULL, NULL);
}

/* One read (the first row), without a transaction: the session, terminal
 * and account lookups of every staff request take no write lock. */
static enum store_status
read1(struct store *st, const char *sql, const struct qarg *a, size_t na,
      const struct qcol *cols, size_t nc, bool *found)
{
    return store_run1(st, false, sql, a, na, cols, nc, found, NULL, NULL, NULL);
}

/* Every row of `sql`, filled into `cols` and handed to each(ctx). */
static enum store_status
run_each(struct store *st, const char *sql, const struct qarg *a, size_t na,
         const struct qcol *cols, size_t nc, int (*each)(void *), void *ctx)
{
    return store_run1(st, false, sql, a, na, cols, nc, NULL, NULL, each, ctx);
}

bool
store_staff_id_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n >= STAFF_ID_MAX ||
        !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

#define STAFF_COLS "user_id, tenant_id, role, state, pw_hash, pw_changed_at, " \
    "must_change, failures, locked, totp_ct, totp_last_step, confirmed_at, " \
    "enrol_expires"

static enum store_status
staff_select(struct store *st, const char *sql, const struct qarg *a, size_t na,
             struct staff_account *o)
{
    int64_t must = 0, locked = 0;

    memset(o, 0, sizeof(*o));
    const struct qcol cols[] = {
        { .t = QT_TEXT, .s = o->user_id, .ssz = sizeof(o->user_id) },
        { .t = QT_TEXT, .s = o->tenant, .ssz = sizeof(o->tenant) },
        { .t = QT_TEXT, .s = o->role, .ssz = sizeof(o->role) },
        { .t = QT_TEXT, .s = o->state, .ssz = sizeof(o->state) },
        { .t = QT_TEXT, .s = o->pw_hash, .ssz = sizeof(o->pw_hash) },
        { .t = QT_INT, .i = &o->pw_changed_at },
        { .t = QT_INT, .i = &must },
        { .t = QT_INT, .i = &o->failures },
        { .t = QT_INT, .i = &locked },
        { .t = QT_BLOB, .b = o->totp_ct, .bsz = sizeof(o->totp_ct), .blen = &o->totp_ct_len },
        { .t = QT_INT, .i = &o->totp_last_step },
        { .t = QT_INT, .i = &o->confirmed_at },
        { .t = QT_INT, .i = &o->enrol_expires },
    };
    bool found = false;
    enum store_status rc = read1(st, sql, a, na, cols, sizeof(cols) / sizeof(cols[0]),
                                 &found);
    if (rc == STORE_OK && !found)
        rc = STORE_NOTFOUND;
    o->must_change = must != 0;
    o->locked = locked != 0;
    return rc;
}

enum store_status
store_staff_get(struct store *st, const char *user_id, struct staff_account *out)
{
    const struct qarg a[] = { TXT(user_id) };

    if (!store_staff_id_valid(user_id))
        return STORE_NOTFOUND;
    return staff_select(st, "SELECT " STAFF_COLS " FROM staff WHERE user_id = $1",
                        a, 1, out);
}

enum store_status
store_staff_create(struct store *st, const char *user_id, const char *tenant,
                   const char *role, const uint8_t enrol_hash[AUTH_HASH_LEN],
                   int64_t expires, int64_t now)
{
    char ts[25], state[16];
    const struct qarg a[] = { TXT(user_id), TXT(tenant), TXT(role),
                              BLB(enrol_hash, AUTH_HASH_LEN), INT(expires), INT(now),
                              TXT(ts) };
    enum store_status rc;

    if (!store_staff_id_valid(user_id) || !tenant_id_valid(tenant))
        return STORE_INVALID;
    if ((rc = store_tenant_state(st, tenant, state)) != STORE_OK)
        return rc;
    if (strcmp(state, "active") != 0)
        return STORE_DENIED;
    util_utc_now(ts);
    /* R6.1: user_id is the primary key - one ID, one person. */
    return run1(st, "INSERT INTO staff (user_id, tenant_id, role, state, enrol_hash, "
                "enrol_expires, confirmed_at, created_at, changed_at) VALUES "
                "($1, $2, $3, 'pending', $4, $5, $6, $7, $7)", a, 7, NULL, 0, NULL, NULL);
}

enum store_status
store_staff_by_enrol(struct store *st, const uint8_t h[AUTH_HASH_LEN], int64_t now,
                     struct staff_account *out)
{
    const struct qarg a[] = { BLB(h, AUTH_HASH_LEN), INT(now) };

    return staff_select(st, "SELECT " STAFF_COLS " FROM staff WHERE enrol_hash = $1 "
                        "AND state = 'pending' AND enrol_expires > $2", a, 2, out);
}

enum store_status
store_staff_enrol_complete(struct store *st, const char *user_id,
                           const uint8_t h[AUTH_HASH_LEN], const char *pw_hash,
                           const uint8_t *totp_ct, size_t ct_len, int64_t now)
{
    char ts[25];
    int64_t changes = 0;
    enum store_status rc;

    util_utc_now(ts);
    const struct qarg a[] = { TXT(user_id), BLB(h, AUTH_HASH_LEN), TXT(pw_hash),
                              BLB(totp_ct, ct_len), INT(now), TXT(ts) };
    rc = run1(st, "UPDATE staff SET state = 'active', pw_hash = $3, pw_changed_at = $5, "
              "must_change = 0, failures = 0, locked = 0, totp_ct = $4, "
              "totp_last_step = 0, confirmed_at = $5, enrol_hash = NULL, "
              "enrol_expires = 0, changed_at = $6 WHERE user_id = $1 AND "
              "enrol_hash = $2 AND state = 'pending' AND enrol_expires > $5",
              a, 6, NULL, 0, NULL, &changes);
    return rc == STORE_OK && changes != 1 ? STORE_NOTFOUND : rc;
}

enum store_status
store_staff_fail(struct store *st, const char *user_id, int64_t lock_after, bool *locked)
{
    const struct qarg a[] = { TXT(user_id), INT(lock_after) };
    int64_t changes = 0, l = 0;
    bool found = false;
    const struct qcol col = { .t = QT_INT, .i = &l };
    const struct stmt s[] = {
        /* R6.3: consecutive failures; the lock is set in the same UPDATE. */
        { "UPDATE staff SET failures = failures + 1, locked = CASE WHEN "
          "failures + 1 >= $2 THEN 1 ELSE locked END WHERE user_id = $1",
          a, 2, NULL, 0, NULL, &changes },
        { "SELECT locked FROM staff WHERE user_id = $1", a, 1, &col, 1, &found, NULL },
    };
    enum store_status rc = run_tx(st, s, 2);

    *locked = l != 0;
    return rc == STORE_OK && changes != 1 ? STORE_NOTFOUND : rc;
}

enum store_status
store_staff_success(struct store *st, const char *user_id, int64_t step)
{
    const struct qarg a[] = { TXT(user_id), INT(step) };
    int64_t changes = 0;
    /* R6.2: the step only moves forward, so a code is never accepted twice. */
    enum store_status rc = run1(st, "UPDATE staff SET failures = 0, totp_last_step = $2 "
                                "WHERE user_id = $1 AND totp_last_step < $2 AND locked = 0",
                                a, 2, NULL, 0, NULL, &changes);

    return rc == STORE_OK && changes != 1 ? STORE_DENIED : rc;
}

enum store_status
store_staff_set_password(struct store *st, const char *user_id, const char *pw_hash,
                         bool must_change, int64_t now)
{
    char ts[25];
    int64_t changes = 0;

    util_utc_now(ts);
    const struct qarg a[] = { TXT(user_id), TXT(pw_hash), INT(must_change ? 1 : 0),
                              INT(now), TXT(ts) };
    const struct stmt reset[] = {
        /* R6.3: a helpdesk reset is the only way to clear a lock. */
        { "UPDATE staff SET pw_hash = $2, pw_changed_at = $4, must_change = $3, "
          "failures = 0, locked = 0, changed_at = $5 WHERE user_id = $1 AND "
          "state = 'active'", a, 5, NULL, 0, NULL, &changes },
        { "DELETE FROM sessions WHERE user_id = $1", a, 1, NULL, 0, NULL, NULL },
    };
    const struct stmt change[] = {
        { "UPDATE staff SET pw_hash = $2, pw_changed_at = $4, must_change = $3, "
          "changed_at = $5 WHERE user_id = $1 AND state = 'active' AND locked = 0",
          a, 5, NULL, 0, NULL, &changes },
        { "UPDATE sessions SET must_change = 0 WHERE user_id = $1", a, 1, NULL, 0,
          NULL, NULL },
    };
    enum store_status rc = must_change ? run_tx(st, reset, 2) : run_tx(st, change, 2);

    return rc == STORE_OK && changes != 1 ? STORE_NOTFOUND : rc;
}

enum store_status
store_staff_reconfirm(struct store *st, const char *user_id, int64_t now)
{
    const struct qarg a[] = { TXT(user_id), INT(now) };
    int64_t changes = 0;
    enum store_status rc = run1(st, "UPDATE staff SET confirmed_at = $2 WHERE "
                                "user_id = $1 AND state = 'active'",
                                a, 2, NULL, 0, NULL, &changes);

    return rc == STORE_OK && changes != 1 ? STORE_NOTFOUND : rc;
}

/* ---- terminals ---- */

enum store_status
store_terminal_register(struct store *st, const char *tenant, const uint8_t fp[32],
                        const char *name)
{
    char ts[25], state[16];
    const struct qarg a[] = { BLB(fp, 32), TXT(tenant), TXT(name), TXT(ts) };
    enum store_status rc;

    if (!tenant_id_valid(tenant) || name == NULL || strlen(name) >= TERMINAL_NAME_MAX)
        return STORE_INVALID;
    if ((rc = store_tenant_state(st, tenant, state)) != STORE_OK)
        return rc;
    if (strcmp(state, "active") != 0)
        return STORE_DENIED;
    util_utc_now(ts);
    return run1(st, "INSERT INTO terminals (fingerprint, tenant_id, name, state, "
                "created_at, changed_at) VALUES ($1, $2, $3, 'active', $4, $4)",
                a, 4, NULL, 0, NULL, NULL);
}

enum store_status
store_terminal_get(struct store *st, const uint8_t fp[32],
                   char tenant[TENANT_ID_LEN + 1], char state[12])
{
    const struct qarg a[] = { BLB(fp, 32) };
    const struct qcol cols[] = {
        { .t = QT_TEXT, .s = tenant, .ssz = TENANT_ID_LEN + 1 },
        { .t = QT_TEXT, .s = state, .ssz = 12 },
    };
    bool found = false;
    enum store_status rc = read1(st, "SELECT tenant_id, state FROM terminals WHERE "
                                 "fingerprint = $1", a, 1, cols, 2, &found);

    return rc == STORE_OK && !found ? STORE_NOTFOUND : rc;
}

enum store_status
store_terminal_revoke(struct store *st, const uint8_t fp[32])
{
    char ts[25];
    int64_t changes = 0;

    util_utc_now(ts);
    const struct qarg a[] = { BLB(fp, 32), TXT(ts) };
    const struct stmt s[] = {
        { "UPDATE terminals SET state = 'revoked', changed_at = $2 WHERE "
          "fingerprint = $1", a, 2, NULL, 0, NULL, &changes },
        { "DELETE FROM sessions WHERE fingerprint = $1", a, 1, NULL, 0, NULL, NULL },
    };
    enum store_status rc = run_tx(st, s, 2);

    return rc == STORE_OK && changes != 1 ? STORE_NOTFOUND : rc;
}

/* ---- sessions ---- */

enum store_status
store_session_create(struct store *st, const struct staff_session *s)
{
    const struct qarg a[] = { BLB(s->token_hash, AUTH_HASH_LEN), TXT(s->user_id),
                              TXT(s->tenant), TXT(s->role), BLB(s->fingerprint, 32),
                              INT(s->must_change ? 1 : 0), INT(s->created_at),
                              INT(s->last_seen) };

    return run1(st, "INSERT INTO sessions (token_hash, user_id, tenant_id, role, "
                "fingerprint, must_change, created_at, last_seen) VALUES "
                "($1, $2, $3, $4, $5, $6, $7, $8)", a, 8, NULL, 0, NULL, NULL);
}

enum store_status
store_session_get(struct store *st, const uint8_t h[AUTH_HASH_LEN],
                  struct staff_session *o)
{
    const struct qarg a[] = { BLB(h, AUTH_HASH_LEN) };
    int64_t must = 0;
    size_t fplen = 0;

    memset(o, 0, sizeof(*o));
    const struct qcol cols[] = {
        { .t = QT_TEXT, .s = o->user_id, .ssz = sizeof(o->user_id) },
        { .t = QT_TEXT, .s = o->tenant, .ssz = sizeof(o->tenant) },
        { .t = QT_TEXT, .s = o->role, .ssz = sizeof(o->role) },
        { .t = QT_BLOB, .b = o->fingerprint, .bsz = 32, .blen = &fplen },
        { .t = QT_INT, .i = &must },
        { .t = QT_INT, .i = &o->created_at },
        { .t = QT_INT, .i = &o->last_seen },
    };
    bool found = false;
    enum store_status rc = read1(st, "SELECT user_id, tenant_id, role, fingerprint, "
                                 "must_change, created_at, last_seen FROM sessions WHERE "
                                 "token_hash = $1", a, 1, cols, 7, &found);
    if (rc == STORE_OK && (!found || fplen != 32))
        return STORE_NOTFOUND;
    memcpy(o->token_hash, h, AUTH_HASH_LEN);
    o->must_change = must != 0;
    return rc;
}

enum store_status
store_session_touch(struct store *st, const uint8_t h[AUTH_HASH_LEN], int64_t now)
{
    const struct qarg a[] = { BLB(h, AUTH_HASH_LEN), INT(now) };

    return run1(st, "UPDATE sessions SET last_seen = $2 WHERE token_hash = $1 AND "
                "last_seen < $2", a, 2, NULL, 0, NULL, NULL);
}

enum store_status
store_session_delete(struct store *st, const uint8_t h[AUTH_HASH_LEN])
{
    const struct qarg a[] = { BLB(h, AUTH_HASH_LEN) };
    int64_t changes = 0;
    enum store_status rc = run1(st, "DELETE FROM sessions WHERE token_hash = $1",
                                a, 1, NULL, 0, NULL, &changes);

    return rc == STORE_OK && changes != 1 ? STORE_NOTFOUND : rc;
}

/* ---- listings and changes of role and state (R6.1, R6.6, R6.7, R6.9) ---- */

struct staff_walk {
    struct staff_summary row;
    int64_t must, locked;
    int (*fn)(const struct staff_summary *, void *);
    void *ctx;
};

static int
staff_walk_row(void *p)
{
    struct staff_walk *w = p;

    w->row.must_change = w->must != 0;
    w->row.locked = w->locked != 0;
    return w->fn(&w->row, w->ctx);
}

enum store_status
store_staff_list(struct store *st, const char *tenant,
                 int (*fn)(const struct staff_summary *, void *), void *ctx)
{
    struct staff_walk w = { .fn = fn, .ctx = ctx };
    const struct qarg a[] = { TXT(tenant) };
    const struct qcol cols[] = {
        { .t = QT_TEXT, .s = w.row.user_id, .ssz = sizeof(w.row.user_id) },
        { .t = QT_TEXT, .s = w.row.role, .ssz = sizeof(w.row.role) },
        { .t = QT_TEXT, .s = w.row.state, .ssz = sizeof(w.row.state) },
        { .t = QT_INT, .i = &w.must },
        { .t = QT_INT, .i = &w.row.failures },
        { .t = QT_INT, .i = &w.locked },
        { .t = QT_INT, .i = &w.row.pw_changed_at },
        { .t = QT_INT, .i = &w.row.confirmed_at },
    };

    if (!tenant_id_valid(tenant) || fn == NULL)
        return STORE_INVALID;
    /* Only what an administrator needs: never a hash or a secret. */
    return run_each(st, "SELECT user_id, role, state, must_change, failures, locked, "
                    "pw_changed_at, confirmed_at FROM staff WHERE tenant_id = $1 "
                    "ORDER BY user_id", a, 1, cols, sizeof(cols) / sizeof(cols[0]),
                    staff_walk_row, &w);
}

enum store_status
store_staff_set_role(struct store *st, const char *user_id, const char *tenant,
                     const char *role)
{
    char ts[25];
    int64_t changes = 0;

    if (!store_staff_id_valid(user_id) || !tenant_id_valid(tenant) || role == NULL ||
        strlen(role) >= STAFF_ROLE_MAX)
        return STORE_INVALID;
    util_utc_now(ts);
    const struct qarg a[] = { TXT(user_id), TXT(tenant), TXT(role), TXT(ts) };
    const struct stmt s[] = {
        { "UPDATE staff SET role = $3, changed_at = $4 WHERE user_id = $1 AND "
          "tenant_id = $2", a, 4, NULL, 0, NULL, &changes },
        /* A session carries the role it was made with: end them all. */
        { "DELETE FROM sessions WHERE user_id = $1", a, 1, NULL, 0, NULL, NULL },
    };
    enum store_status rc = run_tx(st, s, 2);

    return rc == STORE_OK && changes != 1 ? STORE_NOTFOUND : rc;
}

enum store_status
store_staff_set_enabled(struct store *st, const char *user_id, const char *tenant,
                        bool enabled)
{
    char ts[25];
    int64_t changes = 0;

    if (!store_staff_id_valid(user_id) || !tenant_id_valid(tenant))
        return STORE_INVALID;
    util_utc_now(ts);
    const struct qarg a[] = { TXT(user_id), TXT(tenant), TXT(ts),
                              TXT(enabled ? "active" : "disabled"),
                              TXT(enabled ? "disabled" : "active") };
    const struct stmt s[] = {
        /* A pending account is neither: it is enrolled or it expires. */
        { "UPDATE staff SET state = $4, changed_at = $3 WHERE user_id = $1 AND "
          "tenant_id = $2 AND state = $5", a, 5, NULL, 0, NULL, &changes },
        { "DELETE FROM sessions WHERE user_id = $1", a, 1, NULL, 0, NULL, NULL },
    };
    enum store_status rc = run_tx(st, s, 2);

    return rc == STORE_OK && changes != 1 ? STORE_NOTFOUND : rc;
}

struct terminal_walk {
    struct terminal_info row;
    size_t fplen;
    int (*fn)(const struct terminal_info *, void *);
    void *ctx;
};

static int
terminal_walk_row(void *p)
{
    struct terminal_walk *w = p;

    return w->fplen == 32 ? w->fn(&w->row, w->ctx) : 0;
}

enum store_status
store_terminal_list(struct store *st, const char *tenant,
                    int (*fn)(const struct terminal_info *, void *), void *ctx)
{
    struct terminal_walk w = { .fn = fn, .ctx = ctx };
    const struct qarg a[] = { TXT(tenant) };
    const struct qcol cols[] = {
        { .t = QT_BLOB, .b = w.row.fingerprint, .bsz = 32, .blen = &w.fplen },
        { .t = QT_TEXT, .s = w.row.name, .ssz = sizeof(w.row.name) },
        { .t = QT_TEXT, .s = w.row.state, .ssz = sizeof(w.row.state) },
        { .t = QT_TEXT, .s = w.row.created_at, .ssz = sizeof(w.row.created_at) },
        { .t = QT_TEXT, .s = w.row.changed_at, .ssz = sizeof(w.row.changed_at) },
    };
    const char *sql = tenant != NULL
        ? "SELECT fingerprint, name, state, created_at, changed_at FROM terminals "
          "WHERE tenant_id = $1 ORDER BY created_at, fingerprint"
        : "SELECT fingerprint, name, state, created_at, changed_at FROM terminals "
          "WHERE state = 'revoked' ORDER BY fingerprint";

    if ((tenant != NULL && !tenant_id_valid(tenant)) || fn == NULL)
        return STORE_INVALID;
    return run_each(st, sql, a, tenant != NULL ? 1 : 0, cols,
                    sizeof(cols) / sizeof(cols[0]), terminal_walk_row, &w);
}
