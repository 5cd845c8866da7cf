/*
 * job.c - bulk transfer inquiries: the bulk file, the runner and the
 * result file (job.h).
 */
#include "transfer/job.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/perm.h"
#include "common/log.h"
#include "ref/lgcode.h"
#include "ref/mynumber.h"
#include "vrs/csvin.h"
#include "vrs/csvout.h"

/* ---- the bulk file ---------------------------------------------------------------------- */

struct parse {
    struct transfer_job_row *rows;
    size_t                   n;
    bool                     header_seen;
    char                    *err;
    size_t                   errlen;
    size_t                   line;
};

static int
parse_fail(struct parse *p, uint64_t line, const char *msg)
{
    if (p->err[0] == '\0') {
        snprintf(p->err, p->errlen, "%s", msg);
        p->line = (size_t)line;
    }
    return 1;
}

/* One row: each value checked in column order; the first bad one names
 * the row's outcome.  Values that pass are kept (the result file shows
 * them); the individual number only while the row is pending. */
static void
row_take(struct transfer_job_row *r, const char *const *f, const size_t *len)
{
    const char *bad = NULL;

    if (len[0] == LGCODE_LEN && lgcode_valid(f[0]))
        memcpy(r->prev_code, f[0], LGCODE_LEN + 1);
    else
        bad = "invalid_previous_municipality";
    if (len[1] == MYNUMBER_LEN && mynumber_valid(f[1]))
        memcpy(r->mynumber, f[1], MYNUMBER_LEN + 1);
    else if (bad == NULL)
        bad = "invalid_mynumber";
    if (transfer_id_valid(f[2], TRANSFER_REF_HEX))
        memcpy(r->consent_id, f[2], TRANSFER_REF_HEX + 1);
    else if (bad == NULL)
        bad = "invalid_consent_id";
    if (store_addrno_ok(f[3]))          /* csvin: NUL-terminated, no NUL inside */
        memcpy(r->address_no, f[3], len[3] + 1);
    else if (bad == NULL)
        bad = "invalid_address_no";
    if (bad != NULL) {
        snprintf(r->outcome, sizeof(r->outcome), "%s", bad);
        util_wipe(r->mynumber, sizeof(r->mynumber));
    }
}

static int
on_record(void *arg, uint64_t line, const char *const *f, const size_t *len, size_t n)
{
    struct parse *p = arg;

    if (!p->header_seen) {
        static const char *const want[] = { "previous_municipality", "mynumber",
                                            "consent_id", "address_no" };
        p->header_seen = true;
        if (n != 4)
            return parse_fail(p, line, "The first line must be the header "
                              TRANSFER_BULK_HEADER ".");
        for (size_t i = 0; i < 4; i++)
            if (strcmp(f[i], want[i]) != 0)
                return parse_fail(p, line, "The first line must be the header "
                                  TRANSFER_BULK_HEADER ".");
        return 0;
    }
    if (n == 1 && len[0] == 0)
        return 0;                       /* an empty line */
    if (n != 4)
        return parse_fail(p, line, "A row must have exactly 4 fields.");
    if (p->n == STORE_XFER_JOB_MAX)
        return parse_fail(p, line, "A bulk file may have at most 10000 rows.");
    p->rows[p->n].row_no = (int64_t)p->n + 1;
    row_take(&p->rows[p->n], f, len);
    p->n++;
    return 0;
}

static int
on_problem(void *arg, uint64_t line, size_t field, enum csvin_problem pr)
{
    (void)field;
    return parse_fail(arg, line, pr == CSVIN_P_NOT_UTF8 ? "The file is not valid UTF-8."
                      : pr == CSVIN_P_QUOTING || pr == CSVIN_P_UNTERMINATED
                      ? "A field's quotes are not balanced (RFC 4180)."
                      : "A field is too long or holds a character not allowed.");
}

int
transfer_bulk_parse(const char *csv, size_t len, struct transfer_job_row **rows, size_t *n,
                    char *err, size_t errlen, size_t *line)
{
    struct parse p = { .err = err, .errlen = errlen };
    const struct csvin_opts o = { .encoding = CSVIN_UTF8, .field_max = 64, .fields_max = 8 };
    const struct csvin_callbacks cb = { on_record, on_problem, &p };
    struct csvin *r = NULL;
    enum csvin_status st;

    *rows = NULL;
    *n = 0;
    *line = 0;
    err[0] = '\0';
    if ((p.rows = calloc(STORE_XFER_JOB_MAX, sizeof(*p.rows))) == NULL ||
        csvin_new(&o, &cb, &r) != CSVIN_OK) {
        free(p.rows);
        snprintf(err, errlen, "The file cannot be read now.");
        return -1;
    }
    st = csvin_feed(r, csv, len);
    if (st == CSVIN_OK)
        st = csvin_finish(r);
    csvin_free(r);
    if (err[0] == '\0' && st != CSVIN_OK && st != CSVIN_STOPPED)
        snprintf(err, errlen, "The file cannot be read.");
    if (err[0] == '\0' && p.n == 0)
        snprintf(err, errlen, "The file has no rows after the header.");
    if (err[0] != '\0') {
        util_wipe(p.rows, STORE_XFER_JOB_MAX * sizeof(*p.rows));
        free(p.rows);
        *line = p.line;
        return -1;
    }
    *rows = p.rows;
    *n = p.n;
    return 0;
}

/* ---- running a job ---------------------------------------------------------------------- */

static double
mono(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void
sleep_until(double at)
{
    double d = at - mono();

    if (d > 0) {
        struct timespec t = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };
        nanosleep(&t, NULL);
    }
}

/* The row's outcome from the exchange's status. */
static void
row_outcome(enum transfer_status st, const struct transfer_outcome *o,
            struct transfer_job_row *row)
{
    const char *code = st == TRANSFER_OK ? (o->answer.found ? "found" : "no_record")
        : st == TRANSFER_UNAVAILABLE ? "failed" : transfer_status_code(st);

    snprintf(row->outcome, sizeof(row->outcome), "%s", code);
    snprintf(row->inquiry_id, sizeof(row->inquiry_id), "%s", o->inquiry_id);
    row->doses = st == TRANSFER_OK ? (int64_t)o->answer.n : 0;
}

/*
 * Run the pending rows of one job.  Returns 1 when the job is finished,
 * 0 when it was stopped or paused (nothing could be sent: the audit
 * writer or the store is down; the job stays running and is picked up
 * again once its heartbeat is stale), -1 on a store failure.
 */
static int
run_rows(const struct transfer_env *env, struct store_tenant *ctx, const char *job_id,
         const struct transfer_actor *who, const char *runner, unsigned rate,
         const volatile bool *stop)
{
    double next = mono(), beat = mono();
    struct transfer_job_row row;

    for (;;) {
        enum store_status st;
        if (stop != NULL && *stop)
            return 0;
        if (rate > 0) {
            sleep_until(next);
            next = (mono() > next + 1.0 ? mono() : next) + 1.0 / rate;
        }
        if (mono() - beat >= TRANSFER_JOB_HEARTBEAT) {
            beat = mono();
            if (store_job_heartbeat(ctx, job_id, runner, (int64_t)time(NULL)) != STORE_OK) {
                log_warn("transfer_job_lost", "job %s: no longer this runner's", job_id);
                return 0;           /* another runner took it over */
            }
        }
        st = store_job_next_row(ctx, job_id, &row);
        if (st == STORE_NOTFOUND)
            return 1;
        if (st != STORE_OK)
            return -1;
        struct transfer_request rq = { row.prev_code, row.mynumber, row.consent_id,
                                       row.address_no, TRANSFER_BULK, job_id };
        struct transfer_outcome out;
        enum transfer_status ts = transfer_inquire(env, ctx, who, &rq, &out);
        util_wipe(row.mynumber, sizeof(row.mynumber));
        if ((ts == TRANSFER_AUDIT_FAILED || ts == TRANSFER_UNAVAILABLE) &&
            out.inquiry_id[0] == '\0') {
            util_wipe(&out, sizeof(out));
            log_warn("transfer_job_paused", "job %s: %s before row %lld was sent; it resumes "
                     "in %d s", job_id, transfer_status_code(ts), (long long)row.row_no,
                     TRANSFER_JOB_STALE);
            return 0;               /* nothing sent: pause, try again later */
        }
        row_outcome(ts, &out, &row);
        util_wipe(&out, sizeof(out));
        if (store_job_row_done(ctx, job_id, &row) != STORE_OK)
            return -1;
    }
}

static void
actor_of(const char *tenant, const struct transfer_job *job, struct transfer_actor *who)
{
    memset(who, 0, sizeof(*who));
    snprintf(who->tenant, sizeof(who->tenant), "%s", tenant);
    snprintf(who->user, sizeof(who->user), "%s", job->actor);
    who->role = auth_role_name(auth_role_parse(job->role));
}

int
transfer_job_run_once(const struct transfer_env *env, const char *runner, unsigned rate,
                      const volatile bool *stop, bool *ran)
{
    char tenant[7], job_id[STORE_XFER_REF];
    struct store_tenant *ctx = NULL;
    struct transfer_job job;
    struct transfer_actor who;
    int64_t now = (int64_t)time(NULL);
    enum store_status st;
    int rc = 0, done;

    if (ran != NULL)
        *ran = false;
    st = store_job_claim(env->store, runner, now, now - TRANSFER_JOB_STALE, tenant, job_id);
    if (st == STORE_NOTFOUND)
        return 0;
    if (st != STORE_OK || store_tenant_ctx_open(env->store, tenant, env->keys, &ctx) != STORE_OK ||
        store_job_get(ctx, job_id, &job) != STORE_OK) {
        store_tenant_ctx_close(ctx);
        return -1;
    }
    if (ran != NULL)
        *ran = true;
    actor_of(tenant, &job, &who);
    log_info("transfer_job_started", "job %s of tenant %s: %lld rows", job_id, tenant,
             (long long)job.rows_total);
    done = run_rows(env, ctx, job_id, &who, runner, rate, stop);
    if (done == 1 && store_job_finish(ctx, job_id, "done") == STORE_OK)
        log_info("transfer_job_done", "job %s of tenant %s", job_id, tenant);
    else if (done < 0) {
        log_error("transfer_job_failed", "job %s of tenant %s: store failure", job_id, tenant);
        rc = -1;
    }
    store_tenant_ctx_close(ctx);
    return rc;
}

/* ---- the result file -------------------------------------------------------------------- */

struct membuf {
    char  *p;
    size_t n, cap;
};

static int
mem_write(void *arg, const void *buf, size_t n)
{
    struct membuf *m = arg;

    if (m->n + n > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        char *g;
        while (cap < m->n + n)
            cap *= 2;
        if ((g = realloc(m->p, cap)) == NULL) {
            errno = ENOMEM;
            return -1;
        }
        m->p = g;
        m->cap = cap;
    }
    memcpy(m->p + m->n, buf, n);
    m->n += n;
    return 0;
}

static int
result_row(const struct transfer_job_row *r, void *arg)
{
    struct csvout *w = arg;
    char no[24], doses[24];
    const char *cells[7] = { no, r->prev_code, r->address_no, r->consent_id,
                             r->outcome[0] ? r->outcome : "pending", doses, r->inquiry_id };

    snprintf(no, sizeof(no), "%lld", (long long)r->row_no);
    snprintf(doses, sizeof(doses), "%lld", (long long)r->doses);
    return csvout_record(w, cells, 7) != 0;
}

enum store_status
transfer_job_result_csv(struct store_tenant *ctx, const char *job_id, char **out, size_t *len)
{
    static const char *const header[7] = { "row", "previous_municipality", "address_no",
                                           "consent_id", "outcome", "doses", "inquiry_id" };
    const struct csvout_opts o = { .encoding = CSVOUT_UTF8, .crlf = true };
    struct membuf m = { 0 };
    struct csvout *w = NULL;
    struct transfer_job job;
    enum store_status st;

    *out = NULL;
    *len = 0;
    if ((st = store_job_get(ctx, job_id, &job)) != STORE_OK)
        return st;
    if (csvout_new(&o, mem_write, &m, &w) != 0)
        return STORE_ERROR;
    st = csvout_record(w, header, 7) == 0 ? store_job_rows(ctx, job_id, result_row, w)
                                          : STORE_ERROR;
    if (st == STORE_OK && csvout_flush(w) != 0)
        st = STORE_ERROR;
    csvout_free(w);
    /* A NUL after the text (not counted), so callers may treat it as a string. */
    if (st == STORE_OK && mem_write(&m, "", 1) != 0)
        st = STORE_ERROR;
    if (st != STORE_OK) {
        free(m.p);
        return st;
    }
    *out = m.p;
    *len = m.n - 1;
    return STORE_OK;
}

/* ---- the runner thread ------------------------------------------------------------------- */

struct transfer_runner {
    struct transfer_env env;
    char                name[33];
    pthread_t           th;
    pthread_mutex_t     mu;
    pthread_cond_t      cv;
    volatile bool       stop;
    bool                woken;
};

static pthread_mutex_t runner_mu = PTHREAD_MUTEX_INITIALIZER;
static struct transfer_runner *the_runner;    /* this process's, for wake */

static void *
runner_main(void *arg)
{
    struct transfer_runner *r = arg;

    while (!r->stop) {
        bool ran = false;
        if (transfer_job_run_once(&r->env, r->name, TRANSFER_JOB_RATE, &r->stop, &ran) != 0)
            ran = false;            /* logged; back off to the next poll */
        if (ran)
            continue;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += TRANSFER_JOB_POLL_MS / 1000;
        pthread_mutex_lock(&r->mu);
        while (!r->stop && !r->woken)
            if (pthread_cond_timedwait(&r->cv, &r->mu, &until) == ETIMEDOUT)
                break;
        r->woken = false;
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

int
transfer_runner_start(const struct transfer_env *env, const char *name,
                      struct transfer_runner **out)
{
    struct transfer_runner *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return -1;
    r->env = *env;
    snprintf(r->name, sizeof(r->name), "%s", name);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->th, NULL, runner_main, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return -1;
    }
    pthread_mutex_lock(&runner_mu);
    the_runner = r;
    pthread_mutex_unlock(&runner_mu);
    *out = r;
    return 0;
}

void
transfer_runner_wake(void)
{
    pthread_mutex_lock(&runner_mu);
    if (the_runner != NULL) {
        pthread_mutex_lock(&the_runner->mu);
        the_runner->woken = true;
        pthread_cond_signal(&the_runner->cv);
        pthread_mutex_unlock(&the_runner->mu);
    }
    pthread_mutex_unlock(&runner_mu);
}

void
transfer_runner_stop(struct transfer_runner *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&runner_mu);
    if (the_runner == r)
        the_runner = NULL;
    pthread_mutex_unlock(&runner_mu);
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->th, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
