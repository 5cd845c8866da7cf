/*
 * import_runner.h - the runner of API imports in one worker process
 * (R2.6; the routes: vrs/import_api.h).
 *
 * One thread per worker runs one import at a time, never on an HTTP
 * request thread (as the bulk transfer runner, transfer/job.h), from a
 * bounded queue: at most IMPORT_QUEUE_MAX uploads wait behind the one
 * running.  A place in the queue is taken before the upload's body is
 * read (import_runner_reserve, from the route's body sink), so a full
 * queue refuses the upload with 503 before a byte is spooled.
 *
 * A job runs import_run_source() on its encrypted spool with the rules of
 * `mamori import`: the vaccine catalogue, today in JST, the uploader as
 * the actor, and the import on the audit record before its commit
 * (before_commit, fail closed: R7.1).  Progress goes to the shared board
 * (vrs/import_board.h); the job row (store/store_import.h) is written
 * when the job starts and when it ends, with its problems; the outcome
 * is audited.  The spool is wiped and freed when the job ends.
 *
 * Stopping (import_runner_stop, before the store, key client and audit
 * channel close) ends the running import at its next read: it rolls
 * back, and it and every queued job are marked interrupted.
 */
#ifndef MAMORI_VRS_IMPORT_RUNNER_H
#define MAMORI_VRS_IMPORT_RUNNER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "http/router.h"
#include "store/store_import.h"
#include "vrs/import.h"
#include "vrs/import_board.h"

#define IMPORT_QUEUE_MAX 4      /* uploads waiting behind the running one, per worker */

struct worker_env;
struct spool;
struct import_runner;

/*
 * One upload, from its reservation to its end.  The upload route fills
 * the public part; after import_runner_submit the runner owns the job.
 */
struct import_job {
    char                id[STORE_IMPORT_ID_HEX + 1];
    uint8_t             idbin[IMPORT_BOARD_ID_LEN];
    int                 slot;           /* on the board; -1 until claimed */
    enum import_kind    kind;
    enum csvin_encoding encoding;
    bool                dry_run;
    struct spool       *spool;          /* the upload, encrypted (crypto/spool.h) */
    /* Who uploaded, as request-shaped identity for vrs_audit: tenant,
     * user, role, terminal, session reference, source and the worker
     * environment; never a credential (token and CSRF value are not
     * copied). */
    struct http_request who;
    /* private to the runner */
    struct import_runner *runner;
    struct import_job    *next;
};

/* Start this worker's runner (and its heartbeat for the board) on the
 * worker's store, keys and audit channel.  The caller owns *out
 * (import_runner_stop).  0 or -1. */
int import_runner_start(struct worker_env *we, struct import_runner **out) MAMORI_WARN_UNUSED;

/* Stop, interrupt, free; NULL is fine.  See the top of this file. */
void import_runner_stop(struct import_runner *r);

/* A place in the queue and a new job with an empty spool in `spool_dir`,
 * or NULL (errno EBUSY: the queue is full or the runner stopping; else
 * the spool could not be made).  The caller owns the job until it
 * submits or cancels it. */
struct import_job *import_runner_reserve(struct import_runner *r, const char *spool_dir);

/* Give the reservation up: the spool is wiped, the job freed, the slot
 * (if claimed) released.  NULL is fine. */
void import_job_cancel(struct import_job *j);

/* Queue the job (its row written, its slot claimed): the runner owns it
 * from now on.  Never fails: the place was reserved. */
void import_runner_submit(struct import_job *j);

/* The identity fields of `req` into `who` (see struct import_job). */
void import_job_identity(struct http_request *who, const struct http_request *req);

#endif
