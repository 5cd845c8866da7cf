/*
 * import_runner.c - one import at a time per worker, on a thread of its
 * own, from a bounded queue (import_runner.h).
 */
#include "vrs/import_runner.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "crypto/spool.h"
#include "store/store_records.h"
#include "vrs/api.h"
#include "worker/worker.h"

/* The sentence an interrupted job answers with (import_api.c too). */
#define STOPPED_MSG "mamorid stopped during the import, so nothing was imported; the " \
    "upload was kept only in that worker's memory: send the file again."
_Static_assert(sizeof(STOPPED_MSG) <= STORE_IMPORT_MESSAGE_MAX, "the sentence fits its column");
#define FINISH_TRIES 5          /* the final row is retried this often, 1 s apart */

struct import_runner {
    struct worker_env *we;
    char               name[48];     /* "worker-<n>.<pid>", the job row's runner */
    pthread_t          th, beat;
    bool               beat_started;
    pthread_mutex_t    mu;
    pthread_cond_t     cv;
    _Atomic bool       stop;
    unsigned           places;       /* reserved + queued + running */
    struct import_job *head, *tail;  /* queued, oldest first */
};

/* ---- jobs ----------------------------------------------------------------------------- */

void
import_job_identity(struct http_request *who, const struct http_request *req)
{
    memset(who, 0, sizeof(*who));
    who->listener = req->listener;
    who->has_terminal = req->has_terminal;
    memcpy(who->terminal_fp, req->terminal_fp, sizeof(who->terminal_fp));
    memcpy(who->request_id, req->request_id, sizeof(who->request_id));
    memcpy(who->source, req->source, sizeof(who->source));
    who->env = req->env;
    who->authed = req->authed;
    who->role = req->role;
    memcpy(who->user_id, req->user_id, sizeof(who->user_id));
    memcpy(who->tenant, req->tenant, sizeof(who->tenant));
    memcpy(who->session_hash, req->session_hash, sizeof(who->session_hash));
}

static void
job_free(struct import_job *j)
{
    spool_free(j->spool);               /* wipes the key: the upload is gone */
    if (j->slot >= 0)
        import_board_release(((struct worker_env *)j->who.env)->import_board, j->slot);
    util_wipe(j, sizeof(*j));
    free(j);
}

static void
give_back_place(struct import_runner *r)
{
    pthread_mutex_lock(&r->mu);
    r->places--;
    pthread_mutex_unlock(&r->mu);
}

struct import_job *
import_runner_reserve(struct import_runner *r, const char *spool_dir)
{
    struct import_job *j;

    pthread_mutex_lock(&r->mu);
    if (atomic_load(&r->stop) || r->places >= IMPORT_QUEUE_MAX + 1) {
        pthread_mutex_unlock(&r->mu);
        errno = EBUSY;
        return NULL;
    }
    r->places++;
    pthread_mutex_unlock(&r->mu);
    if ((j = calloc(1, sizeof(*j))) == NULL || spool_create(spool_dir, &j->spool) != 0) {
        int e = errno;
        free(j);
        give_back_place(r);
        errno = e;
        return NULL;
    }
    j->slot = -1;
    j->runner = r;
    j->who.env = r->we;
    return j;
}

void
import_job_cancel(struct import_job *j)
{
    if (j == NULL)
        return;
    give_back_place(j->runner);
    job_free(j);
}

void
import_runner_submit(struct import_job *j)
{
    struct import_runner *r = j->runner;

    j->next = NULL;
    pthread_mutex_lock(&r->mu);
    if (r->tail != NULL)
        r->tail->next = j;
    else
        r->head = j;
    r->tail = j;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* ---- one import ------------------------------------------------------------------------ */

/* What a running import collects besides its result. */
struct run {
    struct import_runner        *r;
    struct import_job           *j;
    struct store_import_problem *kept;
    size_t                       nkept, cap;
    bool                         kept_failed;   /* out of memory: fewer kept */
};

/* The source of import_run_source: the spool, cut short when the worker
 * stops (the import then fails, rolls back and is marked interrupted). */
static ssize_t
src_read(void *arg, void *buf, size_t n)
{
    struct run *run = arg;

    if (atomic_load(&run->r->stop)) {
        errno = ECANCELED;
        return -1;
    }
    return spool_read(run->j->spool, buf, n);
}

static int
src_rewind(void *arg)
{
    const struct run *run = arg;

    return spool_rewind(run->j->spool);
}

/* A copy of s that fits size bytes, cut at a UTF-8 character boundary. */
static void
copy_cut(char *dst, size_t size, const char *s)
{
    size_t n = strlen(s);

    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* The import's sink: keep up to STORE_IMPORT_PROBLEMS_MAX problems; the
 * result counts all of them.  Reasons and column names carry no value of
 * the file (import.h). */
static int
keep_problem(void *arg, const struct import_problem *p)
{
    struct run *run = arg;
    struct store_import_problem *k;

    if (run->nkept == STORE_IMPORT_PROBLEMS_MAX || run->kept_failed)
        return 0;
    if (run->nkept == run->cap) {
        size_t cap = run->cap ? run->cap * 2 : 64;
        struct store_import_problem *g;
        if (cap > STORE_IMPORT_PROBLEMS_MAX)
            cap = STORE_IMPORT_PROBLEMS_MAX;
        if ((g = realloc(run->kept, cap * sizeof(*g))) == NULL) {
            run->kept_failed = true;
            return 0;
        }
        run->kept = g;
        run->cap = cap;
    }
    k = &run->kept[run->nkept++];
    memset(k, 0, sizeof(*k));
    k->line = (int64_t)p->line;
    if (p->column != NULL)
        copy_cut(k->column, sizeof(k->column), p->column);
    copy_cut(k->reason, sizeof(k->reason), p->reason != NULL ? p->reason : "");
    return 0;
}

static void
on_progress(void *arg, const struct import_progress *p)
{
    const struct run *run = arg;
    static const enum import_board_phase phase[] = {
        [IMPORT_PHASE_HASH] = IMPORT_BOARD_HASHING,
        [IMPORT_PHASE_CHECK] = IMPORT_BOARD_CHECKING,
        [IMPORT_PHASE_WRITE] = IMPORT_BOARD_WRITING,
    };

    if ((unsigned)p->phase < sizeof(phase) / sizeof(phase[0]))
        import_board_progress(run->r->we->import_board, run->j->slot, phase[p->phase],
                              p->bytes, p->rows, import_board_now_ms());
}

static json_t *
job_objects(const struct import_job *j)
{
    char id[8 + STORE_IMPORT_ID_HEX];

    snprintf(id, sizeof(id), "import:%s", j->id);
    return json_pack("[s]", id);
}

/* R7.1: every row of the import is on the audit record before the
 * commit; if the writer refuses, import.c rolls back (fail closed). */
static int
audit_commit(void *arg, const struct import_result *res)
{
    const struct run *run = arg;
    const struct import_job *j = run->j;

    return vrs_audit(&j->who, "resident.import.commit", "success", NULL, NULL,
                     job_objects(j), json_pack("{s:s,s:I}", "kind", import_kind_name(j->kind),
                                               "rows", (json_int_t)res->rows));
}

/* ---- the end of a job ---------------------------------------------------------------- */

static enum store_import_state
final_state(const struct import_runner *r, const struct import_result *res)
{
    switch (res->outcome) {
    case IMPORT_IMPORTED: return STORE_IMPORT_IMPORTED;
    case IMPORT_ALREADY:  return STORE_IMPORT_ALREADY;
    case IMPORT_CHECKED:  return STORE_IMPORT_CHECKED;
    case IMPORT_REFUSED:  return STORE_IMPORT_REFUSED;
    case IMPORT_FAILED:   break;
    }
    return atomic_load(&r->stop) ? STORE_IMPORT_INTERRUPTED : STORE_IMPORT_FAILED;
}

/* The job row's end, with the kept problems.  Retried: a row left
 * "running" would read as interrupted once the slot is gone, and an
 * import that did commit must not be reported so. */
static void
finish_row(struct store_tenant *ctx, const struct store_import_job *row,
           const struct run *run)
{
    enum store_status st = STORE_ERROR;

    for (int i = 0; i < FINISH_TRIES; i++) {
        st = store_import_job_finish(ctx, row, run->kept, run->nkept);
        if (st == STORE_OK || st == STORE_NOTFOUND || st == STORE_INVALID)
            break;
        sleep(1);
    }
    if (st != STORE_OK)
        log_error("import_job_unrecorded", "import %s: its end (%s) is not in the store: %s",
                  run->j->id, store_import_state_name(row->state), store_strerror(st));
}

/* The outcome on the audit record (R7.1), whatever it was. */
static void
audit_result(const struct import_job *j, const struct store_import_job *row)
{
    const char *outcome = row->state == STORE_IMPORT_REFUSED ? "refused"
                        : row->state == STORE_IMPORT_FAILED ||
                          row->state == STORE_IMPORT_INTERRUPTED ? "failure" : "success";
    const char *reason = row->state == STORE_IMPORT_REFUSED ? "problems_found"
                       : row->state == STORE_IMPORT_FAILED ? "import_failed"
                       : row->state == STORE_IMPORT_INTERRUPTED ? "interrupted" : NULL;
    json_t *info = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "kind", import_kind_name(j->kind),
                             "result", store_import_state_name(row->state),
                             "rows", (json_int_t)row->rows, "problems",
                             (json_int_t)row->problems, "bad_lines",
                             (json_int_t)row->bad_lines, "dry_run", (json_int_t)j->dry_run);

    if (vrs_audit(&j->who, "resident.import.result", outcome, reason, NULL, job_objects(j),
                  info) != 0)
        log_error("audit_refused", "import %s: its outcome is not on the audit record", j->id);
}

static void
fill_row(struct store_import_job *row, const struct import_job *j,
         const struct import_result *res, enum store_import_state state)
{
    memset(row, 0, sizeof(*row));
    memcpy(row->id, j->id, sizeof(row->id));
    row->state = state;
    row->rows = (int64_t)res->rows;
    row->bad_lines = (int64_t)res->bad_lines;
    row->problems = (int64_t)res->problems;
    if (state == STORE_IMPORT_ALREADY)
        copy_cut(row->already_at, sizeof(row->already_at), res->when);
    if (state == STORE_IMPORT_INTERRUPTED)
        copy_cut(row->message, sizeof(row->message), STOPPED_MSG);
    else if (state == STORE_IMPORT_FAILED)
        copy_cut(row->message, sizeof(row->message), res->error[0] != '\0' ? res->error
                 : "the import failed; nothing was imported");
}

/* ---- running one job -------------------------------------------------------------------- */

static void
run_import(struct run *run, struct store_tenant *ctx, struct import_result *res)
{
    const struct import_job *j = run->j;
    char today[STORE_DATE_LEN];
    struct import_opts o;
    struct import_source src = { src_read, src_rewind, spool_size(j->spool), run };

    vrs_today(today);
    memset(&o, 0, sizeof(o));
    o.kind = j->kind;
    o.encoding = j->encoding;
    o.catalogue = vrs_catalogue_of(&j->who);
    o.today = today;
    o.actor = j->who.user_id;
    o.sink = keep_problem;
    o.sink_arg = run;
    o.progress = on_progress;
    o.progress_arg = run;
    o.dry_run = j->dry_run;
    o.before_commit = audit_commit;
    o.commit_arg = run;
    memset(res, 0, sizeof(*res));
    res->outcome = IMPORT_FAILED;
    /* -1 is a refusal or a failure, and res->outcome says which. */
    if (import_run_source(ctx, &src, &o, res) != 0 && res->outcome != IMPORT_REFUSED)
        res->outcome = IMPORT_FAILED;
}

/* SQLite has one write lock, which an import's pass 2 holds throughout:
 * one import at a time on the whole server (import_board.h), the others
 * wait queued.  false if the worker stops first. */
static bool
wait_writer_token(struct import_runner *r)
{
    pid_t self = getpid();

    if (r->we->cfg->store_backend != STORE_BACKEND_SQLITE)
        return true;
    while (import_board_writer_take(r->we->import_board, self) != 0) {
        struct timespec pause = { 0, 200 * 1000 * 1000 };
        if (atomic_load(&r->stop))
            return false;
        nanosleep(&pause, NULL);
    }
    return true;
}

/* queued -> running; a store busy with another writer is waited for a
 * while (the job stays queued meanwhile). */
static enum store_status
start_row(struct import_runner *r, struct store_tenant *ctx, const struct import_job *j)
{
    enum store_status st = STORE_BUSY;

    for (int i = 0; i < FINISH_TRIES && st == STORE_BUSY && !atomic_load(&r->stop); i++)
        st = store_import_job_start(ctx, j->id, r->name);
    return st;
}

static void
run_job(struct import_runner *r, struct import_job *j)
{
    struct worker_env *we = r->we;
    struct run run = { .r = r, .j = j };
    struct store_tenant *ctx = NULL;
    struct store_import_job row;
    struct import_result res;
    enum store_status st;

    if ((st = store_tenant_ctx_open(we->store, j->who.tenant, &we->keys, &ctx)) != STORE_OK ||
        (st = start_row(r, ctx, j)) != STORE_OK) {
        /* Its slot goes with it, so the job reads as interrupted. */
        log_error("import_job_not_started", "import %s: %s", j->id, store_strerror(st));
        store_tenant_ctx_close(ctx);
        import_board_writer_give(we->import_board, getpid());
        return;
    }
    log_info("import_job_started", "import %s of tenant %s: %s, %llu bytes", j->id,
             j->who.tenant, import_kind_name(j->kind),
             (unsigned long long)spool_size(j->spool));
    run_import(&run, ctx, &res);
    fill_row(&row, j, &res, final_state(r, &res));
    audit_result(j, &row);
    finish_row(ctx, &row, &run);
    log_info("import_job_done", "import %s of tenant %s: %s, %llu rows, %llu problems", j->id,
             j->who.tenant, store_import_state_name(row.state),
             (unsigned long long)res.rows, (unsigned long long)res.problems);
    store_tenant_ctx_close(ctx);
    import_board_writer_give(we->import_board, getpid());
    free(run.kept);
}

/* A queued job that will never run (the worker stops): on the record
 * and in its row as interrupted. */
static void
interrupt_job(struct import_runner *r, struct import_job *j)
{
    struct store_tenant *ctx = NULL;
    struct store_import_job row;
    struct import_result res;

    memset(&res, 0, sizeof(res));
    fill_row(&row, j, &res, STORE_IMPORT_INTERRUPTED);
    audit_result(j, &row);
    if (store_tenant_ctx_open(r->we->store, j->who.tenant, &r->we->keys, &ctx) != STORE_OK ||
        store_import_job_interrupt(ctx, j->id, row.message) != STORE_OK)
        log_warn("import_job_unrecorded", "import %s: not marked interrupted; its slot "
                 "goes, so it reads as interrupted", j->id);
    store_tenant_ctx_close(ctx);
}

/* ---- the threads -------------------------------------------------------------------------- */

static struct import_job *
next_job(struct import_runner *r)
{
    struct import_job *j;

    pthread_mutex_lock(&r->mu);
    while (!atomic_load(&r->stop) && r->head == NULL)
        pthread_cond_wait(&r->cv, &r->mu);
    j = atomic_load(&r->stop) ? NULL : r->head;
    if (j != NULL) {
        r->head = j->next;
        if (r->head == NULL)
            r->tail = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    return j;
}

static void *
runner_main(void *arg)
{
    struct import_runner *r = arg;
    struct import_job *j;

    while ((j = next_job(r)) != NULL) {
        if (wait_writer_token(r))
            run_job(r, j);
        else
            interrupt_job(r, j);        /* the worker stops */
        job_free(j);
        give_back_place(r);
    }
    return NULL;
}

/* The board's heartbeat for every job this process holds, queued ones
 * included, whatever the runner is busy with (a long commit says
 * nothing through progress). */
static void *
beat_main(void *arg)
{
    struct import_runner *r = arg;
    pid_t self = getpid();

    pthread_mutex_lock(&r->mu);
    while (!atomic_load(&r->stop)) {
        struct timespec until;
        pthread_mutex_unlock(&r->mu);
        import_board_beat(r->we->import_board, self, import_board_now_ms());
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += IMPORT_BOARD_BEAT_MS / 1000;
        pthread_mutex_lock(&r->mu);
        if (!atomic_load(&r->stop))
            (void)pthread_cond_timedwait(&r->cv, &r->mu, &until);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int
import_runner_start(struct worker_env *we, struct import_runner **out)
{
    struct import_runner *r = calloc(1, sizeof(*r));

    if (r == NULL || we->import_board == NULL) {
        free(r);
        return -1;
    }
    r->we = we;
    snprintf(r->name, sizeof(r->name), "worker-%u.%ld", we->index, (long)getpid());
    atomic_init(&r->stop, false);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->th, NULL, runner_main, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return -1;
    }
    r->beat_started = pthread_create(&r->beat, NULL, beat_main, r) == 0;
    if (!r->beat_started) {
        import_runner_stop(r);
        return -1;
    }
    *out = r;
    return 0;
}

void
import_runner_stop(struct import_runner *r)
{
    struct import_job *j;

    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->stop, true);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->th, NULL);          /* the running import rolls back at its next read */
    if (r->beat_started)
        pthread_join(r->beat, NULL);
    while ((j = r->head) != NULL) {
        r->head = j->next;
        interrupt_job(r, j);
        job_free(j);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
