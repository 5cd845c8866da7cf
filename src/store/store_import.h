/*
 * store_import.h - import jobs of the HTTP API and the problems they
 * found (R2.6; the jobs themselves: vrs/import_api.h, docs/import-export.md
 * "Import over the API").
 *
 * A job row says what was uploaded (kind, encoding, size, dry run), by
 * whom, its state and its counts.  It holds no personal data: the file
 * itself never reaches the store (it waits in an encrypted spool in the
 * accepting worker's memory, crypto/spool.h), and a problem is a line
 * number, a column name and a reason import.c writes without any value
 * of the file.  So nothing here is sealed; every call still takes a
 * tenant context, so one tenant's jobs are never found through
 * another's (R1.1): another tenant's job id is STORE_NOTFOUND, exactly
 * like an id that does not exist.
 *
 * The row is written three times: when the upload is accepted (queued),
 * when a runner starts it (running) and at the end (final state, counts
 * and the kept problems, in one transaction).  Live progress never goes
 * through here: during pass 2 the import's bulk transaction holds
 * SQLite's write lock, so it lives on a shared-memory board instead
 * (vrs/import_board.h).
 */
#ifndef MAMORI_STORE_IMPORT_H
#define MAMORI_STORE_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "store/store_records.h"

#define STORE_IMPORT_ID_HEX       32      /* a job id: 128 random bits in lower-case hex */
#define STORE_IMPORT_PROBLEMS_MAX 10000   /* problems kept per job (all are counted) */
#define STORE_IMPORT_JOBS_KEEP    100     /* finished jobs kept per tenant */
#define STORE_IMPORT_COLUMN_MAX   32      /* a header name + NUL */
#define STORE_IMPORT_REASON_MAX   256     /* a reason + NUL */
#define STORE_IMPORT_MESSAGE_MAX  256     /* a failure's sentence + NUL */

/* The states a row can hold.  While running, the phase (hashing,
 * checking, writing) is on the board only. */
enum store_import_state {
    STORE_IMPORT_QUEUED = 0,
    STORE_IMPORT_RUNNING,
    STORE_IMPORT_IMPORTED,      /* committed */
    STORE_IMPORT_ALREADY,       /* the same file was imported before: nothing done */
    STORE_IMPORT_CHECKED,       /* dry run: no problem found, nothing imported */
    STORE_IMPORT_REFUSED,       /* problems found: nothing imported */
    STORE_IMPORT_FAILED,        /* I/O, store, audit: nothing imported */
    STORE_IMPORT_INTERRUPTED,   /* its worker stopped: nothing imported, send it again */
};

/* "queued", "running", "imported", ...; NULL out of range. */
const char *store_import_state_name(enum store_import_state s);

/* Still to finish (queued or running)? */
bool store_import_state_active(enum store_import_state s);

/* True if `s` is a job id: exactly STORE_IMPORT_ID_HEX of [0-9a-f]. */
bool store_import_id_ok(const char *s);

struct store_import_job {
    char     id[STORE_IMPORT_ID_HEX + 1];
    char     kind[16];                 /* residents | vouchers | vaccinations */
    char     encoding[8];              /* utf-8 | cp932 */
    bool     dry_run;
    enum store_import_state state;
    char     actor[STORE_ACTOR_MAX];   /* the staff user id that uploaded */
    char     role[24];
    int64_t  bytes;                    /* size of the upload */
    int64_t  rows;                     /* data rows (imported ones when imported) */
    int64_t  bad_lines;                /* lines with at least one problem */
    int64_t  problems;                 /* problems found, all of them */
    int64_t  problems_kept;            /* of which kept (<= STORE_IMPORT_PROBLEMS_MAX) */
    char     already_at[STORE_TS_LEN]; /* state already: when the file was imported */
    char     message[STORE_IMPORT_MESSAGE_MAX]; /* failed, interrupted: one plain sentence */
    char     runner[48];               /* "worker-<n>.<pid>" once started */
    char     created_at[STORE_TS_LEN];
    char     started_at[STORE_TS_LEN];
    char     finished_at[STORE_TS_LEN];
};

/* One kept problem; seq is its place among them, from 1. */
struct store_import_problem {
    int64_t seq;
    int64_t line;
    char    column[STORE_IMPORT_COLUMN_MAX];  /* "" for the line as a whole */
    char    reason[STORE_IMPORT_REASON_MAX];
};

/*
 * Record an accepted upload: the caller fills id (its own random id),
 * kind, encoding, dry_run, actor, role and bytes; the state becomes
 * queued and created_at now.  STORE_EXISTS if the tenant already has a
 * job queued or running (at most one at a time: a partial unique index)
 * or the id is taken.  The tenant's finished jobs beyond the newest
 * STORE_IMPORT_JOBS_KEEP go, with their problems, in the same
 * transaction.
 */
enum store_status store_import_job_create(struct store_tenant *ctx,
                                          struct store_import_job *job) MAMORI_WARN_UNUSED;

/* queued -> running, started now by `runner` (printable ASCII, up to 47).
 * STORE_NOTFOUND unless the job is queued. */
enum store_status store_import_job_start(struct store_tenant *ctx, const char *id,
                                         const char *runner) MAMORI_WARN_UNUSED;

/*
 * The end of a job: job->state (a final one), rows, bad_lines, problems,
 * already_at and message are written, finished_at is now, and the `n`
 * kept problems (n <= STORE_IMPORT_PROBLEMS_MAX, seq 1..n in order) are
 * stored, all in one transaction.  A job that was marked interrupted
 * meanwhile (its board slot looked stale) is finished all the same: the
 * runner knows best.  STORE_NOTFOUND if the job is unknown or already
 * finished.
 */
enum store_status store_import_job_finish(struct store_tenant *ctx,
                                          const struct store_import_job *job,
                                          const struct store_import_problem *kept, size_t n)
    MAMORI_WARN_UNUSED;

/* A queued or running job whose runner is gone: state interrupted with
 * `message`, finished now.  STORE_NOTFOUND if it is not active any more
 * (it finished meanwhile: read it again). */
enum store_status store_import_job_interrupt(struct store_tenant *ctx, const char *id,
                                             const char *message) MAMORI_WARN_UNUSED;

/* One job of the context's tenant; STORE_NOTFOUND for an unknown id and
 * for another tenant's, alike. */
enum store_status store_import_job_get(struct store_tenant *ctx, const char *id,
                                       struct store_import_job *out) MAMORI_WARN_UNUSED;

/* The tenant's jobs, newest first, at most `max`; fn (non-zero stops)
 * sees each in a buffer reused for the next. */
enum store_status store_import_job_list(struct store_tenant *ctx, size_t max,
                                        int (*fn)(const struct store_import_job *, void *),
                                        void *arg) MAMORI_WARN_UNUSED;

/* The kept problems of a job with seq > after, in order, at most
 * `limit`.  STORE_NOTFOUND if the job is not the tenant's. */
enum store_status store_import_job_problems(struct store_tenant *ctx, const char *id,
                                            int64_t after, size_t limit,
                                            int (*fn)(const struct store_import_problem *,
                                                      void *),
                                            void *arg) MAMORI_WARN_UNUSED;

#endif
