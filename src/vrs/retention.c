/*
 * retention.c - deleting expired data (R2.10): the audited batches and
 * the daily job (retention.h).
 */
#include "vrs/retention.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "store/store_records.h"
#include "worker/audit_sink.h"
#include "worker/worker.h"

#define JST_OFFSET       (9 * 3600)     /* Japan has no daylight saving time */
#define DAY_S            86400

/* ---- the batches -------------------------------------------------------------- */

/*
 * An address number as an audit object id.  The schema allows only
 * [a-z0-9._:-] and refuses any 12-digit run that is a valid individual
 * number, while address numbers are [0-9A-Za-z-] and may be long digit
 * strings.  So: "addr:" + the number with each capital written as "." and
 * the letter in lower case, and a ":" after every 11th digit in a row.
 * Reversible: drop the ":"s, turn ".x" into "X".  31 characters give at
 * most 5 + 62 bytes.
 */
static json_t *
addr_object(const char *address_no)
{
    char out[80] = "addr:";
    size_t o = 5, run = 0;

    for (const char *p = address_no; *p && o + 3 < sizeof(out); p++) {
        if (*p >= 'A' && *p <= 'Z') {
            out[o++] = '.';
            out[o++] = (char)(*p - 'A' + 'a');
            run = 0;
            continue;
        }
        run = (*p >= '0' && *p <= '9') ? run + 1 : 0;
        out[o++] = *p;
        if (run == 11) {
            out[o++] = ':';
            run = 0;
        }
    }
    out[o] = '\0';
    return json_string(out);
}

static int
collect_addr(const char *address_no, void *arg)
{
    return json_array_append_new(arg, addr_object(address_no)) == 0 ? 0 : 1;
}

/* The Japan-time calendar fields of UTC second `now`; -1 if out of range. */
static int
jst_tm(int64_t now, struct tm *tm)
{
    time_t t = (time_t)(now + JST_OFFSET);

    return gmtime_r(&t, tm) != NULL ? 0 : -1;
}

void
retention_jst_date(int64_t now, char out[11])
{
    struct tm tm;

    if (jst_tm(now, &tm) != 0 || strftime(out, 11, "%Y-%m-%d", &tm) != 10)
        out[0] = '\0';          /* the store then refuses the date */
}

void
retention_cutoff(unsigned years, int64_t now, char out[8])
{
    struct tm tm;
    unsigned y, m;

    out[0] = '\0';              /* unless set: store_retention_purge refuses it */
    if (jst_tm(now, &tm) != 0 || tm.tm_year + 1900 - (int64_t)years < 1000 ||
        tm.tm_year + 1900 - (int64_t)years > 9999)
        return;
    y = (unsigned)(tm.tm_year + 1900 - (int)years) % 10000;
    m = (unsigned)(tm.tm_mon + 1) % 100;
    snprintf(out, 8, "%04u-%02u", y, m);
}

/*
 * After the batch's deletion, inside its open transaction: record it,
 * then commit.  If the writer refuses, roll back; if the commit fails
 * after the event, a failure event follows (best effort), so the log
 * never shows only a deletion that did not happen.
 */
static enum retention_status
commit_recorded(struct store_tenant *ctx, const struct retention_actor *who, json_t *addrs,
                json_t *info)
{
    json_t *again = json_deep_copy(addrs);
    enum store_status st;

    if (who->audit(who->arg, "retention.purge", "success", NULL, addrs, info) != 0) {
        store_bulk_abort(ctx);
        json_decref(again);
        return RETENTION_AUDIT;
    }
    if ((st = store_bulk_commit(ctx)) != STORE_OK) {
        log_error("retention_commit_failed", "retention.purge: %s after its audit event",
                  store_strerror(st));
        if (who->audit(who->arg, "retention.purge", "failure", "commit_failed", again,
                       NULL) != 0)
            log_error("audit_refused", "failure event of retention.purge not recorded");
        return RETENTION_STORE;
    }
    json_decref(again);
    return RETENTION_OK;
}

/* One batch: delete up to RETENTION_BATCH residents and their dependants
 * in one transaction, record their address numbers in one event, commit.
 * *n gets the count committed (0: none were left). */
static enum retention_status
batch(struct store_tenant *ctx, const struct retention_actor *who, const char *cutoff,
      unsigned years, unsigned round, size_t *n)
{
    json_t *addrs = json_array();
    enum retention_status rs;
    enum store_status st;
    size_t got = 0;

    *n = 0;
    if (addrs == NULL || store_bulk_begin(ctx) != STORE_OK) {
        json_decref(addrs);
        return RETENTION_STORE;
    }
    st = store_retention_purge(ctx, cutoff, RETENTION_BATCH, collect_addr, addrs, &got);
    if (st != STORE_OK || got == 0) {
        store_bulk_abort(ctx);
        json_decref(addrs);
        return st == STORE_OK ? RETENTION_OK : RETENTION_STORE;
    }
    rs = commit_recorded(ctx, who, addrs,
                         json_pack("{s:I,s:s,s:i,s:i}", "deleted", (json_int_t)got,
                                   "ceased_before", cutoff, "retention_years", (int)years,
                                   "batch", (int)round));
    if (rs == RETENTION_OK)
        *n = got;
    return rs;
}

enum retention_status
retention_run(struct store_tenant *ctx, const struct retention_actor *who,
              const struct retention_opts *o, struct retention_result *out)
{
    enum retention_status rs = RETENTION_OK;
    size_t n = RETENTION_BATCH;

    memset(out, 0, sizeof(*out));
    retention_cutoff(o->years, o->now, out->cutoff);
    while (n == RETENTION_BATCH) {
        if (o->max_batches > 0 && out->batches >= o->max_batches)
            break;
        if (out->batches > 0 && o->pace != NULL && !o->pace(o->pace_arg))
            break;
        rs = batch(ctx, who, out->cutoff, o->years, out->batches + 1, &n);
        if (rs != RETENTION_OK)
            break;
        out->deleted += n;
        out->batches += n > 0;
    }
    out->more = rs != RETENTION_OK || n == RETENTION_BATCH;
    return rs;
}

/* ---- schedule arithmetic ------------------------------------------------------ */

/* The Japan-time day number of UTC second `now` (days since 1970-01-01
 * in Japan), rounding down for times before it too. */
static int64_t
jst_day(int64_t now)
{
    int64_t t = now + JST_OFFSET;

    return t >= 0 ? t / DAY_S : -((-t + DAY_S - 1) / DAY_S);
}

/* UTC second of minute `at` of Japan-time day `day`. */
static int64_t
run_time(int64_t day, int at)
{
    return day * DAY_S + (int64_t)at * 60 - JST_OFFSET;
}

int64_t
retention_next_run(int64_t now, int at)
{
    int64_t day = jst_day(now), t = run_time(day, at);

    return t > now ? t : run_time(day + 1, at);
}

/* ---- the daily job -------------------------------------------------------------- */

struct retention_sched {
    struct retention_env env;
    pthread_mutex_t      mu;
    pthread_cond_t       cv;          /* on CLOCK_MONOTONIC */
    bool                 stop;        /* under mu */
    bool                 started;
    pthread_t            th;
    int64_t              done_day;    /* the Japan-time day this job has run; ticks only */
    int64_t              last;        /* CLOCK_MONOTONIC ns the current batch began */
};

/* Who a job's events name: the daemon, acting for one tenant. */
struct job_actor {
    struct retention_sched *s;
    const char             *tenant;
};

static int
job_audit(void *arg, const char *action, const char *outcome, const char *reason,
          json_t *objects, json_t *info)
{
    const struct job_actor *ja = arg;
    json_t *ev = json_pack("{s:s,s:s,s:s,s:s}", "action", action, "outcome", outcome,
                           "actor", RETENTION_SYSTEM_ACTOR, "tenant", ja->tenant);
    int rc = -1;

    if (ev != NULL) {
        audit_event_put_optional(ev, reason, objects, info);
        rc = ja->s->env.audit(ja->s->env.audit_arg, ev);
    }
    if (rc != 0)
        log_error("audit_refused", "audit event %s of tenant %s not recorded", action,
                  ja->tenant);
    json_decref(ev);
    json_decref(objects);
    json_decref(info);
    return rc;
}

static bool
stopping(struct retention_sched *s)
{
    bool stop;

    pthread_mutex_lock(&s->mu);
    stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* Wait on the job's condition until CLOCK_MONOTONIC `until` or a stop.
 * Called with mu held. */
static void
wait_until(struct retention_sched *s, const struct timespec *until)
{
    while (!s->stop)
        if (pthread_cond_timedwait(&s->cv, &s->mu, until) == ETIMEDOUT)
            break;
}

static int64_t
mono_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static struct timespec
ns_time(int64_t ns)
{
    struct timespec t = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };

    return t;
}

/*
 * Before each batch but a tenant's first: at most env.rate batches per
 * second, and busy at most one part in RETENTION_DUTY of the time however
 * slow a batch is (PostgreSQL's are slower than SQLite's), so the store
 * and the audit writer keep most of their time for requests.  Stops
 * here when asked.
 */
static bool
pace(void *arg)
{
    struct retention_sched *s = arg;
    int64_t now = mono_ns(), until = now + (now - s->last) * (RETENTION_DUTY - 1);
    struct timespec t;
    bool go;

    if (s->env.rate > 0 && s->last + 1000000000 / (int64_t)s->env.rate > until)
        until = s->last + 1000000000 / (int64_t)s->env.rate;
    t = ns_time(until);
    pthread_mutex_lock(&s->mu);
    if (s->env.rate > 0)
        wait_until(s, &t);
    go = !s->stop;
    pthread_mutex_unlock(&s->mu);
    s->last = mono_ns();
    return go;
}

/* One tenant's run of `day`, claimed already: its batches, then its
 * summary event, which is written whatever happened. */
static void
run_tenant(struct retention_sched *s, const char *tenant, const char *day, int64_t now)
{
    struct job_actor ja = { s, tenant };
    const struct retention_actor who = { job_audit, &ja };
    const struct retention_opts o = { .years = s->env.years, .now = now,
                                      .pace = pace, .pace_arg = s };
    struct retention_result r = { .deleted = 0 };
    struct store_tenant *ctx = NULL;
    const char *reason = "tenant_unavailable";

    retention_cutoff(s->env.years, now, r.cutoff);
    if (store_tenant_ctx_open(s->env.store, tenant, s->env.keys, &ctx) == STORE_OK) {
        enum retention_status rs;
        s->last = mono_ns();
        rs = retention_run(ctx, &who, &o, &r);
        reason = rs == RETENTION_AUDIT ? "audit_unavailable"
               : rs == RETENTION_STORE ? "store_unavailable"
               : r.more                ? "stopped" : NULL;
    }
    store_tenant_ctx_close(ctx);
    if (job_audit(&ja, "retention.run", reason != NULL ? "failure" : "success", reason, NULL,
                  json_pack("{s:I,s:i,s:s,s:i,s:s}", "deleted", (json_int_t)r.deleted,
                            "batches", (int)r.batches, "ceased_before", r.cutoff,
                            "retention_years", (int)s->env.years, "day", day)) != 0)
        reason = reason != NULL ? reason : "summary_not_recorded";
    log_msg(reason != NULL ? LOG_LVL_WARN : LOG_LVL_INFO, "retention_run",
            "tenant %s, %s: %zu residents deleted in %u batches (ceased before %s)%s%s",
            tenant, day, r.deleted, r.batches, r.cutoff, reason != NULL ? "; " : "",
            reason != NULL ? reason : "");
}

/* The active tenants' codes, copied out so no store connection is held
 * while the tenants run. */
struct tenant_list {
    char (*code)[TENANT_ID_LEN + 1];
    size_t n, cap;
    bool   failed;
};

static int
add_tenant(const char *tenant, void *arg)
{
    struct tenant_list *l = arg;

    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        void *grown = realloc(l->code, cap * sizeof(*l->code));
        if (grown == NULL) {
            l->failed = true;
            return 1;
        }
        l->code = grown;
        l->cap = cap;
    }
    snprintf(l->code[l->n++], TENANT_ID_LEN + 1, "%s", tenant);
    return 0;
}

/* Every active tenant whose run of now's day no one has claimed yet.
 * 0 when each was claimed (here or elsewhere), -1 to try again later
 * (the tenant list or a claim could not be had, or the job is stopping). */
static int
run_day(struct retention_sched *s, int64_t now)
{
    struct tenant_list l = { NULL, 0, 0, false };
    char day[11];
    size_t ran = 0, before = 0;
    int rc = 0;

    retention_jst_date(now, day);
    if (store_retention_tenants(s->env.store, add_tenant, &l) != STORE_OK || l.failed) {
        log_error("retention_unavailable", "cannot list the tenants; trying again in %d s",
                  RETENTION_POLL);
        free(l.code);
        return -1;
    }
    for (size_t i = 0; i < l.n; i++) {
        enum store_status st;
        if (stopping(s)) {
            rc = -1;
            break;
        }
        st = store_retention_claim(s->env.store, l.code[i], day);
        if (st == STORE_EXISTS) {
            before++;           /* another process, or this one before a restart */
            continue;
        }
        if (st != STORE_OK) {
            log_error("retention_unavailable", "tenant %s: cannot claim the run of %s: %s",
                      l.code[i], day, store_strerror(st));
            rc = -1;
            continue;
        }
        run_tenant(s, l.code[i], day, now);
        ran++;
    }
    log_info("retention_day", "the run of %s: %zu of %zu tenants run here, %zu already run%s",
             day, ran, l.n, before, rc != 0 ? "; not finished, trying again" : "");
    free(l.code);
    return rc;
}

int64_t
retention_sched_tick(struct retention_sched *s, int64_t now)
{
    int64_t day = jst_day(now), due;

    if (s->env.at < 0)
        return now + DAY_S;                     /* off */
    due = run_time(day, s->env.at);
    if (now < due)
        return due;
    if (s->done_day != day && run_day(s, now) == 0)
        s->done_day = day;
    return s->done_day == day ? run_time(day + 1, s->env.at) : now + RETENTION_POLL;
}

int
retention_sched_new(const struct retention_env *env, struct retention_sched **out)
{
    struct retention_sched *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;

    *out = NULL;
    if (s == NULL)
        return -1;
    s->env = *env;
    s->done_day = INT64_MIN;
    if (pthread_condattr_init(&ca) != 0) {
        free(s);
        return -1;
    }
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&s->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        free(s);
        return -1;
    }
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return 0;
}

static void *
sched_main(void *arg)
{
    struct retention_sched *s = arg;

    while (!stopping(s)) {
        int64_t now = (int64_t)time(NULL), wait = retention_sched_tick(s, now) - now;
        struct timespec until;
        /* Sleep on the monotonic clock, but look at the wall clock again
         * at least every RETENTION_POLL seconds, so a clock set forward or
         * back is seen within that time. */
        wait = wait < 1 ? 1 : wait > RETENTION_POLL ? RETENTION_POLL : wait;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)wait;
        pthread_mutex_lock(&s->mu);
        wait_until(s, &until);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

int
retention_sched_start(struct retention_sched *s)
{
    if (s->started || pthread_create(&s->th, NULL, sched_main, s) != 0)
        return -1;
    s->started = true;
    return 0;
}

void
retention_sched_stop(struct retention_sched *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started) {
        pthread_join(s->th, NULL);
        s->started = false;
    }
}

void
retention_sched_free(struct retention_sched *s)
{
    if (s == NULL)
        return;
    retention_sched_stop(s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- in mamorid's worker ---------------------------------------------------------- */

int
retention_worker_start(struct worker_env *we, struct retention_sched **out)
{
    const struct mamori_config *cfg = we->cfg;
    const struct retention_env env = {
        .store = we->store, .keys = &we->keys, .audit = worker_audit_sink, .audit_arg = we,
        .years = cfg->records_retention_years, .at = cfg->records_retention_at,
        .rate = RETENTION_RATE,
    };

    *out = NULL;
    /* One worker is enough and bounds the load; the claims in the store
     * keep it to one run per tenant and day across restarts anyway. */
    if (cfg->records_retention_at < 0 || we->index != 0)
        return 0;
    if (retention_sched_new(&env, out) != 0 || retention_sched_start(*out) != 0) {
        log_error("worker_init_failed", "cannot start the retention job");
        retention_sched_free(*out);
        *out = NULL;
        return -1;
    }
    log_info("retention_scheduled", "expired data is deleted daily at %02d:%02d Japan time",
             cfg->records_retention_at / 60, cfg->records_retention_at % 60);
    return 0;
}
