/*
 * store_import.c - import jobs and their kept problems (store_import.h).
 *
 * SQL is written once for both backends over the generic query, as in
 * store_transfer.c: $n placeholders, integers only compared, no '$'
 * anywhere else.  Nothing here is personal data, so nothing is sealed;
 * every statement is still bound to the context's tenant (R1.1).
 */
#include "store/store_import.h"

#include <stdio.h>
#include <string.h>

#include "store/store_int.h"

#define OPS(ctx) ((ctx)->st->ops)

static const char *const state_names[] = {
    [STORE_IMPORT_QUEUED] = "queued",
    [STORE_IMPORT_RUNNING] = "running",
    [STORE_IMPORT_IMPORTED] = "imported",
    [STORE_IMPORT_ALREADY] = "already",
    [STORE_IMPORT_CHECKED] = "checked",
    [STORE_IMPORT_REFUSED] = "refused",
    [STORE_IMPORT_FAILED] = "failed",
    [STORE_IMPORT_INTERRUPTED] = "interrupted",
};
#define NSTATES (sizeof(state_names) / sizeof(state_names[0]))

/* The columns of a job, in the order job_bind reads them. */
#define JOB_COLS "job_id, kind, encoding, dry_run, state, actor, role, upload_bytes, " \
    "row_count, bad_lines, problem_count, problems_kept, already_at, message, runner, " \
    "created_at, started_at, finished_at"
#define JOB_NCOLS 18

const char *
store_import_state_name(enum store_import_state s)
{
    return (unsigned)s < NSTATES ? state_names[s] : NULL;
}

bool
store_import_state_active(enum store_import_state s)
{
    return s == STORE_IMPORT_QUEUED || s == STORE_IMPORT_RUNNING;
}

static int
state_parse(const char *name, enum store_import_state *out)
{
    for (unsigned i = 0; i < NSTATES; i++)
        if (strcmp(name, state_names[i]) == 0) {
            *out = (enum store_import_state)i;
            return 0;
        }
    return -1;
}

bool
store_import_id_ok(const char *s)
{
    size_t n = s != NULL ? strnlen(s, STORE_IMPORT_ID_HEX + 1) : 0;

    if (n != STORE_IMPORT_ID_HEX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* ---- input checks: what the table may hold ------------------------------------------ */

static bool
one_of(const char *s, const char *const *set)
{
    for (; s != NULL && *set != NULL; set++)
        if (strcmp(s, *set) == 0)
            return true;
    return false;
}

/* [a-z0-9_], 1..size-1 bytes (roles, header names). */
static bool
word_ok(const char *s, size_t size, bool empty_ok)
{
    size_t n = s != NULL ? strnlen(s, size) : 0;

    if (n == size || (n == 0 && !empty_ok))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* A sentence (UTF-8 bytes, no control characters), shorter than size. */
static bool
text_ok(const char *s, size_t size, bool empty_ok)
{
    size_t n = s != NULL ? strnlen(s, size) : 0;

    if (n == size || (n == 0 && !empty_ok))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static bool
job_ok(const struct store_import_job *j)
{
    static const char *const kinds[] = { "residents", "vouchers", "vaccinations", NULL };
    static const char *const encodings[] = { "utf-8", "cp932", NULL };

    return j != NULL && store_import_id_ok(j->id) && one_of(j->kind, kinds) &&
           one_of(j->encoding, encodings) && store_actor_ok(j->actor) &&
           word_ok(j->role, sizeof(j->role), false) && j->bytes >= 0;
}

/* ---- helpers -------------------------------------------------------------------------- */

static enum store_status
query(struct store_tenant *ctx, void *c, const char *sql, const struct qarg *a, size_t na,
      int64_t *changes)
{
    return OPS(ctx)->query(c, sql, a, na, NULL, 0, NULL, changes, NULL, NULL);
}

/* The result columns of JOB_COLS into *o; dry_run and state go through
 * the integers and text in `raw` first. */
struct job_raw {
    int64_t dry_run;
    char    state[16];
};

static void
job_bind(struct store_import_job *o, struct job_raw *raw, struct qcol cols[JOB_NCOLS])
{
    const struct qcol c[JOB_NCOLS] = {
        { .t = QT_TEXT, .s = o->id, .ssz = sizeof(o->id) },
        { .t = QT_TEXT, .s = o->kind, .ssz = sizeof(o->kind) },
        { .t = QT_TEXT, .s = o->encoding, .ssz = sizeof(o->encoding) },
        { .t = QT_INT, .i = &raw->dry_run },
        { .t = QT_TEXT, .s = raw->state, .ssz = sizeof(raw->state) },
        { .t = QT_TEXT, .s = o->actor, .ssz = sizeof(o->actor) },
        { .t = QT_TEXT, .s = o->role, .ssz = sizeof(o->role) },
        { .t = QT_INT, .i = &o->bytes },
        { .t = QT_INT, .i = &o->rows },
        { .t = QT_INT, .i = &o->bad_lines },
        { .t = QT_INT, .i = &o->problems },
        { .t = QT_INT, .i = &o->problems_kept },
        { .t = QT_TEXT, .s = o->already_at, .ssz = sizeof(o->already_at) },
        { .t = QT_TEXT, .s = o->message, .ssz = sizeof(o->message) },
        { .t = QT_TEXT, .s = o->runner, .ssz = sizeof(o->runner) },
        { .t = QT_TEXT, .s = o->created_at, .ssz = sizeof(o->created_at) },
        { .t = QT_TEXT, .s = o->started_at, .ssz = sizeof(o->started_at) },
        { .t = QT_TEXT, .s = o->finished_at, .ssz = sizeof(o->finished_at) },
    };

    memcpy(cols, c, sizeof(c));
}

/* After a row was read: the two converted columns.  A state the table's
 * CHECK would not have let in is a store error. */
static enum store_status
job_finish_read(struct store_import_job *o, const struct job_raw *raw)
{
    o->dry_run = raw->dry_run != 0;
    return state_parse(raw->state, &o->state) == 0 ? STORE_OK : STORE_ERROR;
}

/* ---- writes --------------------------------------------------------------------------- */

/* Finished jobs beyond the newest STORE_IMPORT_JOBS_KEEP, with their
 * problems, inside the open transaction on c. */
static enum store_status
prune(struct store_tenant *ctx, void *c)
{
    static const char older[] =
        "SELECT job_id FROM import_jobs WHERE tenant_id = $1 AND state NOT IN "
        "('queued', 'running') AND created_at < (SELECT created_at FROM import_jobs WHERE "
        "tenant_id = $1 ORDER BY created_at DESC LIMIT 1 OFFSET $2)";
    char sql[sizeof(older) + 96];
    const struct qarg a[] = { TXT(ctx->tenant), INT(STORE_IMPORT_JOBS_KEEP - 1) };
    enum store_status rc;

    snprintf(sql, sizeof(sql), "DELETE FROM import_job_problems WHERE tenant_id = $1 AND "
             "job_id IN (%s)", older);
    rc = query(ctx, c, sql, a, NELEM(a), NULL);
    if (rc != STORE_OK)
        return rc;
    snprintf(sql, sizeof(sql), "DELETE FROM import_jobs WHERE tenant_id = $1 AND "
             "job_id IN (%s)", older);
    return query(ctx, c, sql, a, NELEM(a), NULL);
}

enum store_status
store_import_job_create(struct store_tenant *ctx, struct store_import_job *job)
{
    enum store_status rc;
    void *c;

    if (ctx == NULL || !job_ok(job))
        return STORE_INVALID;
    job->state = STORE_IMPORT_QUEUED;
    job->rows = job->bad_lines = job->problems = job->problems_kept = 0;
    job->already_at[0] = job->message[0] = job->runner[0] = '\0';
    job->started_at[0] = job->finished_at[0] = '\0';
    util_utc_now(job->created_at);
    const struct qarg a[] = { TXT(ctx->tenant), TXT(job->id), TXT(job->kind),
                              TXT(job->encoding), INT(job->dry_run ? 1 : 0), TXT(job->actor),
                              TXT(job->role), INT(job->bytes), TXT(job->created_at) };
    if ((rc = store_write_begin(ctx, &c)) != STORE_OK)
        return rc;
    /* The partial unique index (one queued or running job per tenant)
     * turns a second job into STORE_EXISTS. */
    rc = query(ctx, c, "INSERT INTO import_jobs (tenant_id, job_id, kind, encoding, dry_run, "
               "state, actor, role, upload_bytes, created_at) VALUES ($1, $2, $3, $4, $5, "
               "'queued', $6, $7, $8, $9)", a, NELEM(a), NULL);
    if (rc == STORE_OK)
        rc = prune(ctx, c);
    return store_write_end(ctx, c, rc, 0);
}

enum store_status
store_import_job_start(struct store_tenant *ctx, const char *id, const char *runner)
{
    char now[STORE_TS_LEN];
    int64_t changes = 0;
    enum store_status rc;
    void *c;

    if (ctx == NULL || !store_import_id_ok(id) || !store_actor_ok(runner) ||
        strlen(runner) >= sizeof(((struct store_import_job *)0)->runner))
        return STORE_INVALID;
    util_utc_now(now);
    const struct qarg a[] = { TXT(ctx->tenant), TXT(id), TXT(runner), TXT(now) };
    if ((rc = store_write_begin(ctx, &c)) != STORE_OK)
        return rc;
    rc = query(ctx, c, "UPDATE import_jobs SET state = 'running', runner = $3, "
               "started_at = $4 WHERE tenant_id = $1 AND job_id = $2 AND state = 'queued'",
               a, NELEM(a), &changes);
    if (rc == STORE_OK && changes != 1)
        rc = STORE_NOTFOUND;
    return store_write_end(ctx, c, rc, 0);
}

static bool
final_state(enum store_import_state s)
{
    return (unsigned)s < NSTATES && !store_import_state_active(s);
}

static enum store_status
problem_insert(struct store_tenant *ctx, void *c, const char *id,
               const struct store_import_problem *p, int64_t seq)
{
    if (p->line < 0 || !word_ok(p->column, sizeof(p->column), true) ||
        !text_ok(p->reason, sizeof(p->reason), false))
        return STORE_INVALID;
    const struct qarg a[] = { TXT(ctx->tenant), TXT(id), INT(seq), INT(p->line),
                              TXT(p->column), TXT(p->reason) };
    return query(ctx, c, "INSERT INTO import_job_problems (tenant_id, job_id, seq, line, "
                 "column_name, reason) VALUES ($1, $2, $3, $4, $5, $6)", a, NELEM(a), NULL);
}

enum store_status
store_import_job_finish(struct store_tenant *ctx, const struct store_import_job *job,
                        const struct store_import_problem *kept, size_t n)
{
    char now[STORE_TS_LEN];
    int64_t changes = 0;
    enum store_status rc;
    void *c;

    if (ctx == NULL || job == NULL || !store_import_id_ok(job->id) ||
        !final_state(job->state) || n > STORE_IMPORT_PROBLEMS_MAX || (kept == NULL && n > 0) ||
        job->rows < 0 || job->bad_lines < 0 || job->problems < (int64_t)n ||
        !text_ok(job->message, sizeof(job->message), true) ||
        !text_ok(job->already_at, sizeof(job->already_at), true))
        return STORE_INVALID;
    util_utc_now(now);
    const struct qarg a[] = { TXT(ctx->tenant), TXT(job->id),
                              TXT(store_import_state_name(job->state)), INT(job->rows),
                              INT(job->bad_lines), INT(job->problems), INT((int64_t)n),
                              store_opt_text(job->already_at), store_opt_text(job->message),
                              TXT(now) };
    const struct qarg b[] = { TXT(ctx->tenant), TXT(job->id) };
    if ((rc = store_write_begin(ctx, &c)) != STORE_OK)
        return rc;
    rc = query(ctx, c, "UPDATE import_jobs SET state = $3, row_count = $4, bad_lines = $5, "
               "problem_count = $6, problems_kept = $7, already_at = $8, message = $9, "
               "finished_at = $10 WHERE tenant_id = $1 AND job_id = $2 AND state IN "
               "('queued', 'running', 'interrupted')", a, NELEM(a), &changes);
    if (rc == STORE_OK && changes != 1)
        rc = STORE_NOTFOUND;
    /* An interrupted job kept none; a finish never runs twice (above). */
    if (rc == STORE_OK)
        rc = query(ctx, c, "DELETE FROM import_job_problems WHERE tenant_id = $1 AND "
                   "job_id = $2", b, NELEM(b), NULL);
    for (size_t i = 0; i < n && rc == STORE_OK; i++)
        rc = problem_insert(ctx, c, job->id, &kept[i], (int64_t)i + 1);
    return store_write_end(ctx, c, rc, 0);
}

enum store_status
store_import_job_interrupt(struct store_tenant *ctx, const char *id, const char *message)
{
    char now[STORE_TS_LEN];
    int64_t changes = 0;
    enum store_status rc;
    void *c;

    if (ctx == NULL || !store_import_id_ok(id) ||
        !text_ok(message, STORE_IMPORT_MESSAGE_MAX, false))
        return STORE_INVALID;
    util_utc_now(now);
    const struct qarg a[] = { TXT(ctx->tenant), TXT(id), TXT(message), TXT(now) };
    if ((rc = store_write_begin(ctx, &c)) != STORE_OK)
        return rc;
    rc = query(ctx, c, "UPDATE import_jobs SET state = 'interrupted', message = $3, "
               "finished_at = $4 WHERE tenant_id = $1 AND job_id = $2 AND state IN "
               "('queued', 'running')", a, NELEM(a), &changes);
    if (rc == STORE_OK && changes != 1)
        rc = STORE_NOTFOUND;
    return store_write_end(ctx, c, rc, 0);
}

/* ---- reads ---------------------------------------------------------------------------- */

enum store_status
store_import_job_get(struct store_tenant *ctx, const char *id, struct store_import_job *out)
{
    struct qcol cols[JOB_NCOLS];
    struct job_raw raw = { 0, "" };
    bool found = false;
    enum store_status rc;
    void *c;

    if (ctx == NULL || out == NULL)
        return STORE_INVALID;
    memset(out, 0, sizeof(*out));
    if (!store_import_id_ok(id))
        return STORE_NOTFOUND;          /* as any id the tenant has not */
    job_bind(out, &raw, cols);
    const struct qarg a[] = { TXT(ctx->tenant), TXT(id) };
    if ((rc = store_ctx_conn(ctx, &c)) != STORE_OK)
        return rc;
    rc = OPS(ctx)->query(c, "SELECT " JOB_COLS " FROM import_jobs WHERE tenant_id = $1 AND "
                         "job_id = $2", a, NELEM(a), cols, NELEM(cols), &found, NULL, NULL,
                         NULL);
    store_ctx_release(ctx, c, rc);
    if (rc == STORE_OK && !found)
        return STORE_NOTFOUND;
    return rc == STORE_OK ? job_finish_read(out, &raw) : rc;
}

struct jobwalk {
    struct store_import_job j;
    struct job_raw          raw;
    int (*fn)(const struct store_import_job *, void *);
    void *arg;
    enum store_status       st;
};

static int
jobwalk_row(void *p)
{
    struct jobwalk *w = p;

    if ((w->st = job_finish_read(&w->j, &w->raw)) != STORE_OK)
        return 1;
    return w->fn(&w->j, w->arg);
}

enum store_status
store_import_job_list(struct store_tenant *ctx, size_t max,
                      int (*fn)(const struct store_import_job *, void *), void *arg)
{
    struct jobwalk w = { .fn = fn, .arg = arg, .st = STORE_OK };
    struct qcol cols[JOB_NCOLS];
    enum store_status rc;
    void *c;

    if (ctx == NULL || fn == NULL || max == 0 || max > STORE_IMPORT_JOBS_KEEP * 10)
        return STORE_INVALID;
    job_bind(&w.j, &w.raw, cols);
    const struct qarg a[] = { TXT(ctx->tenant), INT((int64_t)max) };
    if ((rc = store_ctx_conn(ctx, &c)) != STORE_OK)
        return rc;
    rc = OPS(ctx)->query(c, "SELECT " JOB_COLS " FROM import_jobs WHERE tenant_id = $1 "
                         "ORDER BY created_at DESC, job_id LIMIT $2", a, NELEM(a), cols,
                         NELEM(cols), NULL, NULL, jobwalk_row, &w);
    store_ctx_release(ctx, c, rc);
    return rc == STORE_OK ? w.st : rc;
}

struct problemwalk {
    struct store_import_problem p;
    int (*fn)(const struct store_import_problem *, void *);
    void *arg;
};

static int
problemwalk_row(void *p)
{
    struct problemwalk *w = p;

    return w->fn(&w->p, w->arg);
}

enum store_status
store_import_job_problems(struct store_tenant *ctx, const char *id, int64_t after,
                          size_t limit,
                          int (*fn)(const struct store_import_problem *, void *), void *arg)
{
    struct problemwalk w = { .fn = fn, .arg = arg };
    struct store_import_job job;
    enum store_status rc;
    void *c;

    if (ctx == NULL || fn == NULL || after < 0 || limit == 0 ||
        limit > STORE_IMPORT_PROBLEMS_MAX)
        return STORE_INVALID;
    /* The job first: another tenant's id is STORE_NOTFOUND, not an empty page. */
    if ((rc = store_import_job_get(ctx, id, &job)) != STORE_OK)
        return rc;
    const struct qcol cols[] = {
        { .t = QT_INT, .i = &w.p.seq },
        { .t = QT_INT, .i = &w.p.line },
        { .t = QT_TEXT, .s = w.p.column, .ssz = sizeof(w.p.column) },
        { .t = QT_TEXT, .s = w.p.reason, .ssz = sizeof(w.p.reason) },
    };
    const struct qarg a[] = { TXT(ctx->tenant), TXT(id), INT(after), INT((int64_t)limit) };
    if ((rc = store_ctx_conn(ctx, &c)) != STORE_OK)
        return rc;
    rc = OPS(ctx)->query(c, "SELECT seq, line, column_name, reason FROM import_job_problems "
                         "WHERE tenant_id = $1 AND job_id = $2 AND seq > $3 ORDER BY seq "
                         "LIMIT $4", a, NELEM(a), cols, NELEM(cols), NULL, NULL,
                         problemwalk_row, &w);
    store_ctx_release(ctx, c, rc);
    return rc;
}
