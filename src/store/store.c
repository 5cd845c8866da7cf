/*
 * store.c - backend dispatch, connection pool, tenant contexts, and the
 * resident codec (validation, encryption, blind indexes).
 */
#include "store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "common/log.h"
#include "ref/mynumber.h"
#include "store/store_records.h"

#define RESCOL(f) { #f, offsetof(struct resident, f), sizeof(((struct resident *)0)->f) }

/* The AD names these, so renaming one makes old rows unreadable. */
const struct store_rescol store_rescols[RES_NCT] = {
    RESCOL(mynumber), RESCOL(name), RESCOL(kana), RESCOL(birth_date),
    RESCOL(sex), RESCOL(postcode), RESCOL(address), RESCOL(katagaki),
    RESCOL(household_no), RESCOL(relationship), RESCOL(became_date),
    RESCOL(ceased_date), RESCOL(movement_type), RESCOL(movement_date),
    RESCOL(prev_address), RESCOL(next_address), RESCOL(alias),
};

#define KEY_CACHE STORE_KEY_CACHE

const char *
store_strerror(enum store_status s)
{
    switch (s) {
    case STORE_OK:       return "ok";
    case STORE_NOTFOUND: return "not found";
    case STORE_EXISTS:   return "already exists";
    case STORE_INVALID:  return "invalid field or argument";
    case STORE_DENIED:   return "tenant not active";
    case STORE_KEY:      return "key unavailable or ciphertext rejected";
    case STORE_VERSION:  return "schema version mismatch";
    case STORE_BUSY:     return "database busy";
    case STORE_FATAL:    return "durability failure: store handle unusable";
    case STORE_ERROR:    return "database error";
    }
    return "unknown";
}

int
store_ct_columns(char *out, size_t outsz)
{
    size_t off = 0;

    for (size_t i = 0; i < RES_NCT; i++) {
        int n = snprintf(out + off, outsz - off, "%s%s_ct", i ? ", " : "",
                         store_rescols[i].name);
        if (n < 0 || (size_t)n >= outsz - off)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

/* ---- connection pool ------------------------------------------------------ */

static enum store_status
conn_get(struct store *st, void **c)
{
    enum store_status rc;

    pthread_mutex_lock(&st->mu);
    while (!st->fatal && st->nidle == 0 && st->nopen >= st->max)
        pthread_cond_wait(&st->cv, &st->mu);
    if (st->fatal) {
        pthread_mutex_unlock(&st->mu);
        return STORE_FATAL;
    }
    if (st->nidle > 0) {
        *c = st->idle[--st->nidle];
        pthread_mutex_unlock(&st->mu);
        return STORE_OK;
    }
    st->nopen++;
    pthread_mutex_unlock(&st->mu);
    rc = st->ops->conn_open(st, c);
    if (rc != STORE_OK) {
        pthread_mutex_lock(&st->mu);
        st->nopen--;
        pthread_cond_signal(&st->cv);
        pthread_mutex_unlock(&st->mu);
    }
    return rc;
}

/*
 * Give a connection back.  After STORE_FATAL the connection is closed and
 * the whole handle refuses work: a failed commit or fsync is never
 * retried, because the data it covered may already be lost (R9.6).
 */
static void
conn_put(struct store *st, void *c, enum store_status rc)
{
    pthread_mutex_lock(&st->mu);
    if (rc == STORE_FATAL) {
        if (!st->fatal)
            log_error("store_fatal", "%s: commit or I/O failure, handle closed",
                      st->ops->name);
        st->fatal = true;
        st->nopen--;
        pthread_mutex_unlock(&st->mu);
        st->ops->conn_close(c);
        pthread_mutex_lock(&st->mu);
        pthread_cond_broadcast(&st->cv);
    } else {
        st->idle[st->nidle++] = c;
        pthread_cond_signal(&st->cv);
    }
    pthread_mutex_unlock(&st->mu);
}

/* Commit, or roll back if anything before failed. */
static enum store_status
finish(struct store *st, void *c, enum store_status rc)
{
    if (rc == STORE_OK)
        rc = st->ops->commit(c);
    else if (rc != STORE_FATAL)
        st->ops->rollback(c);
    return rc;
}

/* ---- open / migrate --------------------------------------------------------- */

static enum store_status
check_version(struct store *st, unsigned flags)
{
    void *c;
    int v = 0, code = st->ops->migrations();
    enum store_status rc = conn_get(st, &c);

    if (rc != STORE_OK)
        return rc;
    rc = st->ops->schema_version(c, &v);
    conn_put(st, c, rc);
    if (rc != STORE_OK)
        return rc;
    if (v > code) {
        log_error("store_schema", "database schema %d is newer than this code (%d)",
                  v, code);
        return STORE_VERSION;
    }
    if (v < code && !(flags & STORE_OPEN_MIGRATE)) {
        log_error("store_schema", "database schema %d is older than %d: run "
                  "`mamori migrate`", v, code);
        return STORE_VERSION;
    }
    return STORE_OK;
}

enum store_status
store_open(const struct store_config *cfg, unsigned flags, struct store **out)
{
    struct store *st;
    enum store_status rc;

    if (cfg == NULL || out == NULL)
        return STORE_INVALID;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return STORE_ERROR;
    st->ops = cfg->backend == STORE_BACKEND_POSTGRESQL ? &store_pg_ops :
        &store_sqlite_ops;
    st->max = cfg->pool_size ? cfg->pool_size : 4;
    st->busy_timeout_ms = cfg->busy_timeout_ms ? cfg->busy_timeout_ms : 5000;
    st->idle = calloc(st->max, sizeof(*st->idle));
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    if (st->idle == NULL ||
        (cfg->backend == STORE_BACKEND_POSTGRESQL ?
         (cfg->conninfo == NULL ||
          util_strcpy(st->conninfo, sizeof(st->conninfo), cfg->conninfo) != 0) :
         (cfg->path == NULL || util_strcpy(st->path, sizeof(st->path), cfg->path) != 0))) {
        store_close(st);
        return STORE_INVALID;
    }
    rc = check_version(st, flags);
    if (rc != STORE_OK) {
        store_close(st);
        return rc;
    }
    *out = st;
    return STORE_OK;
}

enum store_status
store_migrate(struct store *st, int *from, int *to)
{
    void *c;
    int v = 0, code = st->ops->migrations();
    char now[25];
    enum store_status rc = conn_get(st, &c);

    if (rc != STORE_OK)
        return rc;
    rc = st->ops->schema_version(c, &v);
    if (from != NULL)
        *from = v;
    if (rc == STORE_OK && v > code)
        rc = STORE_VERSION;
    /* One transaction per step: a failed step leaves the previous version. */
    while (rc == STORE_OK && v < code) {
        util_utc_now(now);
        rc = st->ops->begin(c);
        if (rc == STORE_OK)
            rc = finish(st, c, st->ops->migrate_one(c, v + 1, now));
        if (rc == STORE_OK) {
            v++;
            log_info("store_migrate", "%s schema now at version %d",
                     st->ops->name, v);
        }
    }
    if (to != NULL)
        *to = v;
    conn_put(st, c, rc);
    return rc;
}

void
store_close(struct store *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->nidle; i++)
        st->ops->conn_close(st->idle[i]);
    free(st->idle);
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* ---- operator calls ---------------------------------------------------------- */

enum store_status
store_schema_version(struct store *st, int *version)
{
    void *c;
    enum store_status rc = conn_get(st, &c);

    if (rc != STORE_OK)
        return rc;
    rc = st->ops->schema_version(c, version);
    conn_put(st, c, rc);
    return rc;
}

enum store_status
store_health(struct store *st)
{
    int v;
    enum store_status rc = store_schema_version(st, &v);

    if (rc == STORE_OK && v != st->ops->migrations())
        rc = STORE_VERSION;
    return rc;
}

enum store_status
store_counts(struct store *st, const char *tenant, struct store_counts *out)
{
    void *c;
    enum store_status rc;

    if (out == NULL || (tenant != NULL && !tenant_id_valid(tenant)))
        return STORE_INVALID;
    if ((rc = conn_get(st, &c)) != STORE_OK)
        return rc;
    memset(out, 0, sizeof(*out));
    rc = st->ops->counts(c, tenant, out);
    conn_put(st, c, rc);
    return rc;
}

enum store_status
store_tenant_create(struct store *st, const char *tenant)
{
    void *c;
    char now[25];
    enum store_status rc;

    if (!tenant_id_valid(tenant))
        return STORE_INVALID;
    if ((rc = conn_get(st, &c)) != STORE_OK)
        return rc;
    util_utc_now(now);
    rc = st->ops->begin(c);
    if (rc == STORE_OK)
        rc = finish(st, c, st->ops->tenant_create(c, tenant, now));
    conn_put(st, c, rc);
    return rc;
}

enum store_status
store_tenant_state(struct store *st, const char *tenant, char state[16])
{
    void *c;
    enum store_status rc;

    if (!tenant_id_valid(tenant))
        return STORE_INVALID;
    if ((rc = conn_get(st, &c)) != STORE_OK)
        return rc;
    rc = st->ops->tenant_state(c, tenant, state);
    conn_put(st, c, rc);
    return rc;
}

enum store_status
store_tenant_erase(struct store *st, const char *tenant)
{
    void *c;
    char now[25];
    enum store_status rc;

    if (!tenant_id_valid(tenant))
        return STORE_INVALID;
    if ((rc = conn_get(st, &c)) != STORE_OK)
        return rc;
    util_utc_now(now);
    rc = st->ops->begin(c);
    if (rc == STORE_OK)
        rc = finish(st, c, st->ops->tenant_erase(c, tenant, now));
    if (rc == STORE_OK)
        st->ops->after_erase(c);
    conn_put(st, c, rc);
    if (rc == STORE_OK)
        log_info("store_tenant_erase", "tenant %s rows deleted", tenant);
    return rc;
}

/* ---- tenant context ----------------------------------------------------------- */

enum store_status
store_tenant_ctx_open(struct store *st, const char *tenant,
                      const struct key_provider *kp, struct store_tenant **out)
{
    struct store_tenant *ctx;
    char state[16];
    enum store_status rc;

    if (st == NULL || kp == NULL || out == NULL || !tenant_id_valid(tenant))
        return STORE_INVALID;
    rc = store_tenant_state(st, tenant, state);
    if (rc == STORE_NOTFOUND)
        return STORE_DENIED;
    if (rc != STORE_OK)
        return rc;
    if (strcmp(state, "active") != 0)
        return STORE_DENIED;    /* R1.4: an erased tenant stays closed */
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        return STORE_ERROR;
    ctx->st = st;
    ctx->kp = kp;
    memcpy(ctx->tenant, tenant, sizeof(ctx->tenant));
    if (kp->index_key(kp->arg, tenant, &ctx->ik) != 0 ||
        kp->current_key(kp->arg, tenant, &ctx->cur) != 0 ||
        strcmp(ctx->ik->tenant, tenant) != 0 || strcmp(ctx->cur->tenant, tenant) != 0) {
        store_tenant_ctx_close(ctx);
        return STORE_KEY;
    }
    *out = ctx;
    return STORE_OK;
}

void
store_tenant_ctx_close(struct store_tenant *ctx)
{
    if (ctx == NULL)
        return;
    store_bulk_abort(ctx);      /* an import left open is rolled back */
    tenant_key_free(ctx->ik);
    tenant_key_free(ctx->cur);
    for (size_t i = 0; i < KEY_CACHE; i++)
        tenant_key_free(ctx->old[i]);
    free(ctx);
}

const char *
store_tenant_id(const struct store_tenant *ctx)
{
    return ctx->tenant;
}

/* The data key of `version`, from the context's cache or the provider. */
static const struct tenant_key *
data_key(struct store_tenant *ctx, uint32_t version)
{
    struct tenant_key *k;
    unsigned i;

    if (ctx->cur->version == version)
        return ctx->cur;
    for (i = 0; i < KEY_CACHE; i++)
        if (ctx->old[i] != NULL && ctx->old[i]->version == version)
            return ctx->old[i];
    if (ctx->kp->data_key(ctx->kp->arg, ctx->tenant, version, &k) != 0)
        return NULL;
    if (strcmp(k->tenant, ctx->tenant) != 0 || k->version != version ||
        k->kind != TENANT_KEY_DATA) {
        tenant_key_free(k);
        return NULL;
    }
    i = ctx->next_old++ % KEY_CACHE;
    tenant_key_free(ctx->old[i]);
    ctx->old[i] = k;
    return k;
}

/* ---- resident codec ---------------------------------------------------------- */

void
store_resident_wipe(struct resident *r)
{
    util_wipe(r, sizeof(*r));
}

/* "YYYY-MM-DD", a real calendar date (no 2023-02-29, no 04-31), years
 * 1800-9999 as vrs_date_parse. */
bool
store_date_ok(const char *s, bool required)
{
    static const unsigned char mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                             30, 31 };
    unsigned y, m, d, last;
    char tail;

    if (s[0] == '\0')
        return !required;
    if (strnlen(s, 11) != 10 || s[4] != '-' || s[7] != '-' ||
        sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3)
        return false;
    for (size_t i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    if (y < 1800 || m < 1 || m > 12 || d < 1)
        return false;
    last = mdays[m - 1];
    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))
        last = 29;
    return d <= last;
}

bool
store_addrno_ok(const char *s)
{
    size_t n = strnlen(s, STORE_ADDRNO_MAX);

    if (n == 0 || n >= STORE_ADDRNO_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
              (c >= 'a' && c <= 'z') || c == '-'))
            return false;
    }
    return true;
}

/* Every text field terminated inside its array and valid UTF-8. */
static bool
texts_ok(const struct resident *r)
{
    for (size_t i = 0; i < RES_NCT; i++) {
        const char *f = (const char *)r + store_rescols[i].off;
        size_t n = strnlen(f, store_rescols[i].size);
        if (n == store_rescols[i].size || u8_check((const uint8_t *)f, n) != NULL)
            return false;
    }
    return true;
}

enum store_status
store_res_validate(const struct resident *r)
{
    if (r == NULL || !store_addrno_ok(r->address_no) || !texts_ok(r) ||
        r->name[0] == '\0' || (r->mynumber[0] != '\0' && !mynumber_valid(r->mynumber)) ||
        !store_date_ok(r->birth_date, true) || !store_date_ok(r->became_date, false) ||
        !store_date_ok(r->ceased_date, false) || !store_date_ok(r->movement_date, false) ||
        (r->sex[0] != '\0' && strcmp(r->sex, "1") != 0 && strcmp(r->sex, "2") != 0 &&
         strcmp(r->sex, "9") != 0))
        return STORE_INVALID;
    return STORE_OK;
}

/* Blind indexes and plaintext metadata of `r`. */
static enum store_status
encode_meta(struct store_tenant *ctx, const struct resident *r,
            struct enc_resident *e)
{
    memcpy(e->tenant, ctx->tenant, sizeof(e->tenant));
    memcpy(e->address_no, r->address_no, sizeof(e->address_no));
    e->birth_year = (r->birth_date[0] - '0') * 1000 + (r->birth_date[1] - '0') * 100 +
        (r->birth_date[2] - '0') * 10 + (r->birth_date[3] - '0');
    e->ceased_ym[0] = '\0';
    if (r->ceased_date[0] != '\0')
        snprintf(e->ceased_ym, sizeof(e->ceased_ym), "%.7s", r->ceased_date);
    e->has_mynumber_bidx = r->mynumber[0] != '\0';
    if (e->has_mynumber_bidx &&
        field_blind_index(ctx->ik, BIDX_MYNUMBER, r->mynumber, 12,
                          e->mynumber_bidx) != 0)
        return STORE_INVALID;
    if (field_bidx_name_dob(ctx->ik, r->name, r->birth_date, e->name_bidx) != 0)
        return STORE_INVALID;   /* a name of spaces only */
    e->has_kana_bidx = r->kana[0] != '\0';
    if (e->has_kana_bidx &&
        field_bidx_name_dob(ctx->ik, r->kana, r->birth_date, e->kana_bidx) != 0)
        return STORE_INVALID;
    util_utc_now(e->created_at);
    return STORE_OK;
}

/* Encrypt every personal field of `r` for row `e->id` (R1.4). */
static enum store_status
encode_fields(struct store_tenant *ctx, const struct resident *r,
              struct enc_resident *e)
{
    e->key_version = ctx->cur->version;
    for (size_t i = 0; i < RES_NCT; i++) {
        const char *f = (const char *)r + store_rescols[i].off;
        struct field_ad ad = { ctx->tenant, "residents", store_rescols[i].name, e->id };
        if (field_encrypt(ctx->cur, &ad, f, strlen(f), e->ct[i], RES_CT_SLOT,
                          &e->ct_len[i]) != 0)
            return STORE_INVALID;
    }
    return STORE_OK;
}

enum store_status
store_res_encode(struct store_tenant *ctx, const struct resident *r,
                 struct enc_resident *e)
{
    int64_t id = e->id;
    enum store_status rc = encode_meta(ctx, r, e);

    e->id = id;
    return rc == STORE_OK ? encode_fields(ctx, r, e) : rc;
}

/* Check and decrypt a stored row into `out`; nothing on failure. */
static enum store_status
decode(struct store_tenant *ctx, const struct enc_resident *e, struct resident *out)
{
    memset(out, 0, sizeof(*out));
    out->id = e->id;
    out->key_version = e->key_version;
    memcpy(out->address_no, e->address_no, sizeof(out->address_no));
    for (size_t i = 0; i < RES_NCT; i++) {
        struct field_ad ad = { ctx->tenant, "residents", store_rescols[i].name, e->id };
        const struct tenant_key *k;
        uint32_t v;
        size_t n;

        if (field_version(e->ct[i], e->ct_len[i], &v) != 0 ||
            (k = data_key(ctx, v)) == NULL ||
            field_decrypt(k, &ad, e->ct[i], e->ct_len[i],
                          (char *)out + store_rescols[i].off,
                          store_rescols[i].size, &n) != 0) {
            store_resident_wipe(out);
            return STORE_KEY;
        }
    }
    return STORE_OK;
}

enum store_status
store_res_decode(struct store_tenant *ctx, const struct enc_resident *e,
                 struct resident *out)
{
    return decode(ctx, e, out);
}

enum store_status
store_seal(struct store_tenant *ctx, const char *table, const char *column, int64_t row,
           const void *plain, size_t len, uint8_t *out, size_t outsz, size_t *outlen)
{
    struct field_ad ad = { ctx->tenant, table, column, row };

    return field_encrypt(ctx->cur, &ad, plain, len, out, outsz, outlen) == 0 ?
        STORE_OK : STORE_INVALID;
}

enum store_status
store_unseal(struct store_tenant *ctx, const char *table, const char *column, int64_t row,
             const uint8_t *ct, size_t len, char *out, size_t outsz, size_t *outlen)
{
    struct field_ad ad = { ctx->tenant, table, column, row };
    const struct tenant_key *k;
    uint32_t v;

    if (field_version(ct, len, &v) != 0 || (k = data_key(ctx, v)) == NULL ||
        field_decrypt(k, &ad, ct, len, out, outsz, outlen) != 0)
        return STORE_KEY;
    return STORE_OK;
}

/* ---- bulk transactions and the connection of a call ----------------------------- */

/* A call inside the bulk transaction failed: roll all of it back now
 * (R2.6: an import is all or nothing) and refuse writes until the caller
 * ends the bulk mode. */
static void
bulk_fail(struct store_tenant *ctx, enum store_status rc)
{
    void *c = ctx->bulk;

    ctx->bulk = NULL;
    ctx->bulk_failed = true;
    if (rc != STORE_FATAL)
        ctx->st->ops->rollback(c);
    conn_put(ctx->st, c, rc == STORE_FATAL ? STORE_FATAL : STORE_OK);
}

enum store_status
store_ctx_conn(struct store_tenant *ctx, void **c)
{
    if (ctx->bulk != NULL) {
        *c = ctx->bulk;
        return STORE_OK;
    }
    return conn_get(ctx->st, c);
}

void
store_ctx_release(struct store_tenant *ctx, void *c, enum store_status rc)
{
    if (c != ctx->bulk)
        conn_put(ctx->st, c, rc);
    else if (rc == STORE_BUSY || rc == STORE_FATAL || rc == STORE_ERROR)
        bulk_fail(ctx, rc);
}

enum store_status
store_write_begin(struct store_tenant *ctx, void **c)
{
    enum store_status rc;

    if (ctx->bulk != NULL) {
        *c = ctx->bulk;
        ctx->bulk_writes++;
        return STORE_OK;
    }
    if (ctx->bulk_failed)
        return STORE_DENIED;    /* never let an import's rows land one by one */
    if ((rc = conn_get(ctx->st, c)) != STORE_OK)
        return rc;
    if ((rc = ctx->st->ops->begin(*c)) != STORE_OK)
        conn_put(ctx->st, *c, rc);
    return rc;
}

enum store_status
store_write_end(struct store_tenant *ctx, void *c, enum store_status rc, unsigned flags)
{
    struct store *st = ctx->st;

    if (c == ctx->bulk) {
        if (rc != STORE_OK)
            bulk_fail(ctx, rc);
        return rc;
    }
    if (rc == STORE_OK && (flags & STORE_W_DISCARD))
        st->ops->rollback(c);   /* a retry: same answer, no write */
    else
        rc = finish(st, c, rc);
    if (rc == STORE_OK && (flags & STORE_W_CHECKPOINT))
        st->ops->after_erase(c);
    conn_put(st, c, rc);
    return rc;
}

enum store_status
store_write_refuse(struct store_tenant *ctx, enum store_status rc)
{
    if (ctx->bulk != NULL)
        bulk_fail(ctx, rc);
    return rc;
}

enum store_status
store_bulk_begin(struct store_tenant *ctx)
{
    enum store_status rc;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (ctx->bulk != NULL || ctx->bulk_failed)
        return STORE_DENIED;    /* one bulk transaction per context */
    if ((rc = conn_get(ctx->st, &c)) != STORE_OK)
        return rc;
    if ((rc = ctx->st->ops->begin(c)) != STORE_OK) {
        conn_put(ctx->st, c, rc);
        return rc;
    }
    ctx->bulk = c;
    ctx->bulk_writes = 0;
    return rc;
}

/* Durable like any write (R9.6): a failed commit turns the handle fatal. */
enum store_status
store_bulk_commit(struct store_tenant *ctx)
{
    enum store_status rc;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (ctx->bulk == NULL) {
        ctx->bulk_failed = false;
        return STORE_DENIED;    /* none open, or a call inside failed: rolled back */
    }
    c = ctx->bulk;
    ctx->bulk = NULL;
    rc = finish(ctx->st, c, STORE_OK);
    /* A million-row transaction leaves a WAL of its size behind: fold it
     * in.  Not after the few writes of one API request, which also run
     * as a bulk transaction (committed once the audit event is durable)
     * and would each pay for a full checkpoint; the backend's own
     * automatic checkpoints keep a small WAL small. */
    if (rc == STORE_OK && ctx->bulk_writes >= STORE_BULK_FOLD_WRITES)
        ctx->st->ops->after_erase(c);
    ctx->bulk_writes = 0;
    conn_put(ctx->st, c, rc);
    return rc;
}

void
store_bulk_abort(struct store_tenant *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->bulk != NULL) {
        ctx->st->ops->rollback(ctx->bulk);
        conn_put(ctx->st, ctx->bulk, STORE_OK);
        ctx->bulk = NULL;
    }
    ctx->bulk_failed = false;
}

/* ---- resident calls ------------------------------------------------------------ */

bool
store_idem_ok(const char *k)
{
    size_t n = k != NULL ? strnlen(k, STORE_IDEM_MAX + 1) : 0;

    if (n == 0 || n > STORE_IDEM_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'A' && k[i] <= 'Z') ||
              (k[i] >= 'a' && k[i] <= 'z') || strchr("._:-", k[i]) != NULL))
            return false;
    return true;
}

struct qarg
store_opt_text(const char *v)
{
    struct qarg a = { .t = QT_NULL };

    if (v != NULL && v[0] != '\0') {
        a.t = QT_TEXT;
        a.s = v;
    }
    return a;
}

/* 1..STORE_ACTOR_MAX-1 printable ASCII, no space. */
bool
store_actor_ok(const char *s)
{
    size_t n = s != NULL ? strnlen(s, STORE_ACTOR_MAX) : 0;

    if (n == 0 || n == STORE_ACTOR_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

/* Encrypt for row `id` (allocated already) and insert, inside an open
 * transaction.  The id is part of every field's AD. */
static enum store_status
insert_one(struct store_tenant *ctx, void *c, const struct resident *r,
           struct enc_resident *e, int64_t id)
{
    enum store_status rc;

    e->id = id;
    rc = encode_fields(ctx, r, e);
    if (rc == STORE_OK)
        rc = ctx->st->ops->res_insert(c, e);
    return rc;
}

/*
 * One insert inside an open transaction.  A key seen before answers with
 * its first id (*replay set, nothing written).
 */
static enum store_status
insert_tx(struct store_tenant *ctx, void *c, const char *idem_key,
          const struct resident *r, struct enc_resident *e, int64_t *id,
          bool *replay)
{
    const struct store_ops *ops = ctx->st->ops;
    enum store_status rc = STORE_NOTFOUND;
    int64_t prev;

    if (idem_key != NULL)
        rc = ops->idem_get(c, ctx->tenant, idem_key, STORE_IDEM_RES, &prev);
    if (rc == STORE_OK) {
        *id = prev;
        *replay = true;
        return STORE_OK;
    }
    if (rc != STORE_NOTFOUND)
        return rc;      /* STORE_EXISTS: key used for another operation */
    rc = ops->next_ids(c, ctx->tenant, 1, &e->id);
    if (rc == STORE_OK)
        rc = insert_one(ctx, c, r, e, e->id);
    if (rc == STORE_OK && idem_key != NULL)
        rc = ops->idem_put(c, ctx->tenant, idem_key, STORE_IDEM_RES, e->id, e->created_at);
    if (rc == STORE_OK)
        *id = e->id;
    return rc;
}

enum store_status
store_idem_recheck(struct store_tenant *ctx, const char *idem_key, const char *op,
                   int64_t *id)
{
    struct store *st = ctx->st;
    enum store_status rc;
    void *c;

    if ((rc = conn_get(st, &c)) != STORE_OK)
        return rc;
    rc = st->ops->idem_get(c, ctx->tenant, idem_key, op, id);
    conn_put(st, c, rc == STORE_FATAL ? rc : STORE_OK);
    return rc == STORE_NOTFOUND ? STORE_EXISTS : rc;
}

enum store_status
store_resident_insert(struct store_tenant *ctx, const char *idem_key,
                      const struct resident *r, int64_t *id)
{
    struct enc_resident *e;
    enum store_status rc;
    bool replay = false, bulk;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (id == NULL || (idem_key != NULL && !store_idem_ok(idem_key)) ||
        store_res_validate(r) != STORE_OK)
        return store_write_refuse(ctx, STORE_INVALID);
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return store_write_refuse(ctx, STORE_ERROR);
    bulk = ctx->bulk != NULL;
    rc = encode_meta(ctx, r, e);
    if (rc != STORE_OK)
        rc = store_write_refuse(ctx, rc);
    else if ((rc = store_write_begin(ctx, &c)) == STORE_OK) {
        rc = insert_tx(ctx, c, idem_key, r, e, id, &replay);
        rc = store_write_end(ctx, c, rc, replay ? STORE_W_DISCARD : 0);
        /* Inside a bulk transaction the failure has ended it already. */
        if (rc == STORE_EXISTS && idem_key != NULL && !bulk)
            rc = store_idem_recheck(ctx, idem_key, STORE_IDEM_RES, id);
    }
    util_wipe(e, sizeof(*e));
    free(e);
    return rc;
}

/* The body of a batch: ids in one call, then the rows, pipelined where
 * the backend can. */
static enum store_status
insert_many(struct store_tenant *ctx, void *c, const struct resident *r,
            size_t n, int64_t *ids, struct enc_resident *e)
{
    const struct store_ops *ops = ctx->st->ops;
    enum store_status rc = ops->next_ids(c, ctx->tenant, n, ids);

    if (rc == STORE_OK && ops->batch_begin != NULL)
        rc = ops->batch_begin(c);
    if (rc != STORE_OK)
        return rc;
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        rc = encode_meta(ctx, &r[i], e);
        if (rc == STORE_OK)
            rc = insert_one(ctx, c, &r[i], e, ids[i]);
    }
    if (ops->batch_end != NULL) {
        enum store_status end = ops->batch_end(c);
        if (rc == STORE_OK || end == STORE_FATAL)
            rc = end;
    }
    return rc;
}

enum store_status
store_resident_insert_batch(struct store_tenant *ctx, const struct resident *r,
                            size_t n, int64_t *ids)
{
    struct enc_resident *e;
    enum store_status rc = STORE_OK;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (ids == NULL || r == NULL)
        return store_write_refuse(ctx, STORE_INVALID);
    for (size_t i = 0; i < n; i++)
        if (store_res_validate(&r[i]) != STORE_OK)
            return store_write_refuse(ctx, STORE_INVALID);
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return store_write_refuse(ctx, STORE_ERROR);
    if ((rc = store_write_begin(ctx, &c)) == STORE_OK)
        rc = store_write_end(ctx, c, insert_many(ctx, c, r, n, ids, e), 0);
    util_wipe(e, sizeof(*e));
    free(e);
    return rc;
}

static enum store_status
load(struct store_tenant *ctx, enum res_lookup by, int64_t id,
     const char *addrno, struct resident *out)
{
    struct store *st = ctx->st;
    struct enc_resident *e = calloc(1, sizeof(*e));
    enum store_status rc;
    void *c;

    if (e == NULL)
        return STORE_ERROR;
    rc = store_ctx_conn(ctx, &c);
    if (rc == STORE_OK) {
        rc = st->ops->res_load(c, ctx->tenant, by, id, addrno, e);
        store_ctx_release(ctx, c, rc);
    }
    if (rc == STORE_OK)
        rc = decode(ctx, e, out);
    util_wipe(e, sizeof(*e));
    free(e);
    return rc;
}

enum store_status
store_resident_get(struct store_tenant *ctx, int64_t id, struct resident *out)
{
    if (ctx == NULL || out == NULL || id <= 0)
        return STORE_INVALID;
    return load(ctx, RES_BY_ID, id, NULL, out);
}

enum store_status
store_resident_by_address_no(struct store_tenant *ctx, const char *address_no,
                             struct resident *out)
{
    if (ctx == NULL || out == NULL || address_no == NULL || !store_addrno_ok(address_no))
        return STORE_INVALID;
    return load(ctx, RES_BY_ADDRNO, 0, address_no, out);
}

static enum store_status
find(struct store_tenant *ctx, enum res_index idx, const uint8_t *bidx,
     int64_t *ids, size_t max, size_t *n)
{
    void *c;
    enum store_status rc = store_ctx_conn(ctx, &c);

    if (rc != STORE_OK)
        return rc;
    *n = 0;
    rc = ctx->st->ops->res_find(c, ctx->tenant, idx, bidx, ids, max, n);
    store_ctx_release(ctx, c, rc);
    return rc;
}

enum store_status
store_resident_find_mynumber(struct store_tenant *ctx, const char *mynumber,
                             int64_t *ids, size_t max, size_t *n)
{
    uint8_t b[BIDX_LEN];

    if (ctx == NULL || ids == NULL || n == NULL || mynumber == NULL ||
        !mynumber_valid(mynumber))
        return STORE_INVALID;
    if (field_blind_index(ctx->ik, BIDX_MYNUMBER, mynumber, 12, b) != 0)
        return STORE_KEY;
    return find(ctx, RES_IDX_MYNUMBER, b, ids, max, n);
}

enum store_status
store_resident_find_name_dob(struct store_tenant *ctx, const char *name,
                             const char *birth_date, int64_t *ids, size_t max,
                             size_t *n)
{
    uint8_t b[BIDX_LEN];

    if (ctx == NULL || ids == NULL || n == NULL || name == NULL ||
        birth_date == NULL || !store_date_ok(birth_date, true) ||
        field_bidx_name_dob(ctx->ik, name, birth_date, b) != 0)
        return STORE_INVALID;
    return find(ctx, RES_IDX_NAME, b, ids, max, n);
}

/* Load, decrypt and re-encrypt one row under the current key. */
static enum store_status
reencrypt_row(struct store_tenant *ctx, void *c, int64_t id,
              struct enc_resident *e, struct resident *r)
{
    const struct store_ops *ops = ctx->st->ops;
    enum store_status rc = ops->res_load(c, ctx->tenant, RES_BY_ID, id, NULL, e);

    if (rc == STORE_OK)
        rc = decode(ctx, e, r);
    if (rc == STORE_OK)
        rc = encode_fields(ctx, r, e);
    if (rc == STORE_OK)
        rc = ops->res_update(c, e);
    store_resident_wipe(r);
    return rc;
}

enum store_status
store_reencrypt(struct store_tenant *ctx, size_t max, size_t *done)
{
    struct enc_resident *e;
    struct resident *r;
    int64_t *ids;
    size_t n = 0, more = 0;
    enum store_status rc;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (done == NULL || max == 0 || max > 100000)
        return store_write_refuse(ctx, STORE_INVALID);
    *done = 0;
    e = calloc(1, sizeof(*e));
    r = calloc(1, sizeof(*r));
    ids = calloc(max, sizeof(*ids));
    if (e == NULL || r == NULL || ids == NULL) {
        rc = store_write_refuse(ctx, STORE_ERROR);
        goto out;
    }
    if ((rc = store_write_begin(ctx, &c)) != STORE_OK)
        goto out;
    rc = ctx->st->ops->res_stale(c, ctx->tenant, ctx->cur->version, ids, max, &n);
    for (size_t i = 0; i < n && rc == STORE_OK; i++)
        rc = reencrypt_row(ctx, c, ids[i], e, r);
    /* Then the records' ciphertexts: vaccination details, corrections (R9.2). */
    if (rc == STORE_OK && n < max)
        rc = store_records_reencrypt(ctx, c, max - n, &more);
    rc = store_write_end(ctx, c, rc, 0);
    if (rc == STORE_OK)
        *done = n + more;
out:
    if (e != NULL)
        util_wipe(e, sizeof(*e));
    free(e);
    free(r);
    free(ids);
    return rc;
}

/* ---- for the module's other files (store_int.h) ---------------------------- */

enum store_status
store_conn_get(struct store *st, void **c)
{
    return conn_get(st, c);
}

void
store_conn_put(struct store *st, void *c, enum store_status rc)
{
    conn_put(st, c, rc);
}

enum store_status
store_finish(struct store *st, void *c, enum store_status rc)
{
    return finish(st, c, rc);
}

enum store_status
store_run1(struct store *st, bool write, const char *sql, const struct qarg *a, size_t na,
           const struct qcol *cols, size_t nc, bool *found, int64_t *changes,
           int (*each)(void *), void *ctx)
{
    void *c;
    enum store_status rc = conn_get(st, &c);

    if (rc != STORE_OK)
        return rc;
    if (write && (rc = st->ops->begin(c)) != STORE_OK) {
        conn_put(st, c, rc);
        return rc;
    }
    rc = st->ops->query(c, sql, a, na, cols, nc, found, changes, each, ctx);
    if (write)
        rc = finish(st, c, rc);
    conn_put(st, c, rc);
    return rc;
}
