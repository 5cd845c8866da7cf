/*
 * retention.h - deleting expired data (保管期限切れ情報, R2.10): the
 * batches both the HTTP route (POST /v1/retention/run, vrs/api.c) and the
 * daily job of mamorid run, and that job's schedule.  docs/records.md
 * "Retention (R2.10)".
 *
 * A resident who ceased to be a resident (moved out, died) before the
 * month `records.retention_years` ago is deleted with their vouchers,
 * vaccinations and corrections (store_retention_purge).  Each batch of at
 * most RETENTION_BATCH residents is one transaction and one
 * `retention.purge` event naming their address numbers; the event is
 * acknowledged durable before the commit, so nothing is deleted that the
 * log does not record (R7.1, fail closed).  Who the event names is the
 * caller's: the signed-in supervisor for the route, the daemon's own
 * actor RETENTION_SYSTEM_ACTOR with the tenant for the job.
 *
 * The job (struct retention_sched): once a day at `records.retention_schedule`
 * ("HH:MM" Japan time, UTC+9 without daylight saving time, like vrs_today),
 * or as soon after it as mamorid is up that day, it runs every active
 * tenant in turn, paced (RETENTION_RATE, RETENTION_DUTY), on a thread
 * of its own in worker 0 only (never on an HTTP thread).  Each tenant's
 * run of a day is claimed in the store first (store_retention_claim), so
 * exactly one process runs it, however many workers, restarts or daemons
 * share the store.  Each tenant's run ends with one `retention.run` event
 * (deleted, batches, cutoff, day), also when nothing was deleted, so an
 * auditor sees the job ran.
 */
#ifndef MAMORI_VRS_RETENTION_H
#define MAMORI_VRS_RETENTION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/event.h"
#include "common/util.h"
#include "crypto/keyprov.h"
#include "store/store.h"

#define RETENTION_BATCH  64      /* residents per batch = audit objects max */
#define RETENTION_ROUNDS 100     /* batches per HTTP call; the caller calls again */
#define RETENTION_RATE   5       /* batches per second of the daily job, at most */
#define RETENTION_DUTY   4       /* ... and busy at most 1 part in 4 of its time */
#define RETENTION_POLL   60      /* the job looks at the wall clock this often, s */
/* The daemon's own actor in audit events: no staff login name can hold
 * an "@" (store_staff_id_valid), so no person can be mistaken for it.
 * The same actor answers transfer inquiries (transfer/exchange.c). */
#define RETENTION_SYSTEM_ACTOR AUDIT_SYSTEM_ACTOR

/* ---- the batches ------------------------------------------------------------ */

/*
 * Record one event as the caller's identity: action, outcome, reason
 * (may be NULL), objects (array, stolen, may be NULL) and info (object,
 * stolen, may be NULL).  0 once the audit writer has acknowledged it as
 * durable; -1 otherwise.
 */
typedef int (*retention_audit_fn)(void *arg, const char *action, const char *outcome,
                                  const char *reason, json_t *objects, json_t *info);

struct retention_actor {
    retention_audit_fn audit;
    void              *arg;
};

enum retention_status {
    RETENTION_OK = 0,
    RETENTION_AUDIT,       /* the writer refused a batch's event: that batch is not deleted */
    RETENTION_STORE,       /* the store failed: that batch is not deleted (or, after
                            * its event, the commit failed and a failure event followed) */
};

struct retention_opts {
    unsigned years;          /* records.retention_years */
    int64_t  now;            /* UTC seconds; its Japan-time month sets the cutoff */
    unsigned max_batches;    /* 0: until none are left */
    /* Called before every batch but the first (may be NULL): false stops
     * the run there.  The job paces itself and sees shutdown here. */
    bool   (*pace)(void *arg);
    void    *pace_arg;
};

struct retention_result {
    char     cutoff[8];      /* "YYYY-MM": residents who ceased before it were due */
    size_t   deleted;        /* residents deleted (committed) */
    unsigned batches;        /* batches that deleted someone */
    bool     more;           /* stopped with expired residents possibly left */
};

/* "YYYY-MM" of the month `years` before the Japan-time month of `now`:
 * a resident who ceased in that month itself is kept until it is over. */
void retention_cutoff(unsigned years, int64_t now, char out[8]);

/*
 * Delete the expired residents of ctx's tenant in batches (see the top),
 * each recorded through `who`.  Batches committed before a failure stay
 * deleted and recorded.  *out is filled in either case.
 */
enum retention_status retention_run(struct store_tenant *ctx, const struct retention_actor *who,
                                    const struct retention_opts *o,
                                    struct retention_result *out) MAMORI_WARN_UNUSED;

/* ---- the daily job ---------------------------------------------------------- */

/* The JST date "YYYY-MM-DD" of UTC second `now`. */
void retention_jst_date(int64_t now, char out[11]);

/* The first scheduled time strictly after `now` (UTC seconds) for a job
 * at minute `at` (0-1439) of the Japan-time day. */
int64_t retention_next_run(int64_t now, int at);

/* Deliver one audit event (a valid event object, borrowed); 0 once the
 * writer has acknowledged it durably, -1 otherwise. */
typedef int (*retention_sink_fn)(void *arg, const json_t *event);

struct retention_env {
    struct store              *store;
    const struct key_provider *keys;
    retention_sink_fn          audit;
    void                      *audit_arg;
    unsigned                   years;   /* records.retention_years */
    int                        at;      /* records.retention_schedule: minute, -1 off */
    unsigned                   rate;    /* batches per second (and RETENTION_DUTY);
                                         * 0: unpaced, for tests and benchmarks */
};

struct retention_sched;

/* A job over `env` (its store, keys and sink must outlive it).  The
 * caller owns *out (retention_sched_free). */
int retention_sched_new(const struct retention_env *env, struct retention_sched **out)
    MAMORI_WARN_UNUSED;

/*
 * One look at the clock at `now` (UTC seconds): if the run of now's
 * Japan-time day is due (now is at or after its time) and this job has
 * not done it, run it for every active tenant whose run of that day is
 * not yet claimed.  Returns when the job next has work (UTC seconds).
 * The thread calls it with time(NULL); tests with the time they need.
 */
int64_t retention_sched_tick(struct retention_sched *s, int64_t now);

/* Run the job on a thread of its own (ticks at least every RETENTION_POLL
 * seconds, so a wall-clock change is seen).  0 or -1. */
int retention_sched_start(struct retention_sched *s) MAMORI_WARN_UNUSED;

/* Ask the job to stop: a run in progress finishes its current batch,
 * records what it did (retention.run, outcome failure, reason stopped) and
 * returns; a started thread is joined.  Idempotent. */
void retention_sched_stop(struct retention_sched *s);

/* Stop and free; NULL is fine. */
void retention_sched_free(struct retention_sched *s);

/* For mamorid's worker: the job of worker 0 when the schedule is not
 * "off" (else *out = NULL), started, auditing over the worker's channel
 * to the audit writer.  0 or -1. */
struct worker_env;
int retention_worker_start(struct worker_env *we, struct retention_sched **out)
    MAMORI_WARN_UNUSED;

#endif
