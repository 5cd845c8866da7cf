/*
 * import_board.h - live progress of API imports, shared by every worker
 * process (R2.6 "long imports show progress"; vrs/import_api.h).
 *
 * Why not the store: on SQLite the import's one bulk transaction holds
 * the write lock for all of pass 2, so no other connection could write a
 * progress row.  So the progress lives in a small board of fixed slots in
 * shared memory (MAP_SHARED | MAP_ANONYMOUS), made by the parent mamorid
 * before it forks the workers and inherited by each of them.  The worker
 * that accepted an upload claims a slot for it and is the only writer of
 * that slot; any worker reads it to answer GET /v1/imports/{id}.
 *
 * A slot holds the job id, the tenant, the owning pid, the phase, bytes
 * and rows of that phase, the file size and a heartbeat: never anything
 * from the file.  It is lock-free: a slot is claimed by compare-and-swap,
 * and its fields are read as one consistent snapshot through a sequence
 * counter (a seqlock over atomic fields, so no reader ever sees half an
 * update, and no process can block another).
 *
 * A job whose slot is gone, or whose heartbeat is older than
 * IMPORT_BOARD_STALE_MS, has lost its worker (and with it the spool key,
 * which lived only in that worker's memory): the API reports it as
 * interrupted.  The parent frees the slots of a worker it reaped
 * (import_board_forget_pid), so a dead worker's jobs read as gone at once.
 *
 * The clock: every call that needs the time takes `now_ms` from the
 * caller (import_board_now_ms() in the daemon), so a test can show the
 * staleness rule without waiting.
 */
#ifndef MAMORI_VRS_IMPORT_BOARD_H
#define MAMORI_VRS_IMPORT_BOARD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"

#define IMPORT_BOARD_SLOTS    128      /* > MAX_WORKERS x (1 running + IMPORT_QUEUE_MAX) */
#define IMPORT_BOARD_STALE_MS 30000    /* no heartbeat for this long: the worker is gone */
#define IMPORT_BOARD_BEAT_MS  5000     /* how often a worker beats for its slots */
#define IMPORT_BOARD_ID_LEN   16       /* a job id: 128 bits */

/* Where a job is: QUEUED until its runner takes it, then the import's
 * passes (import.h).  After the last pass the slot keeps its last phase
 * until the job row says how it ended. */
enum import_board_phase {
    IMPORT_BOARD_QUEUED = 0,
    IMPORT_BOARD_HASHING,
    IMPORT_BOARD_CHECKING,
    IMPORT_BOARD_WRITING,
};

struct import_board;

/* One consistent reading of a slot. */
struct import_board_view {
    enum import_board_phase phase;
    uint64_t bytes;             /* read so far in this phase */
    uint64_t total;             /* file size */
    uint64_t rows;              /* data rows so far in this phase */
    pid_t    pid;               /* the worker that holds the job */
    int64_t  beat_ms;           /* its last heartbeat (import_board_now_ms clock) */
    bool     stale;             /* no heartbeat for IMPORT_BOARD_STALE_MS at now_ms */
};

/* The board's clock: CLOCK_MONOTONIC in milliseconds, the same in every
 * process of the host. */
int64_t import_board_now_ms(void);

/* Map a new, empty board (shared, anonymous: inherited by fork, gone
 * with the last process).  The caller owns *out (import_board_destroy).
 * 0, or -1 with errno. */
int import_board_create(struct import_board **out) MAMORI_WARN_UNUSED;

/* Unmap (in this process only); NULL is fine. */
void import_board_destroy(struct import_board *b);

/* Claim a free slot for job `id` of `tenant` (6 digits), owned by the
 * calling process, phase QUEUED, file size `total`, heartbeat now_ms.
 * The slot number into *slot.  0, or -1 if the board is full. */
int import_board_claim(struct import_board *b, const uint8_t id[IMPORT_BOARD_ID_LEN],
                       const char *tenant, uint64_t total, int64_t now_ms, int *slot)
    MAMORI_WARN_UNUSED;

/* The owner publishes where its job is (and beats). */
void import_board_progress(struct import_board *b, int slot, enum import_board_phase phase,
                           uint64_t bytes, uint64_t rows, int64_t now_ms);

/* Heartbeat for every slot that `pid` holds. */
void import_board_beat(struct import_board *b, pid_t pid, int64_t now_ms);

/* The owner is done with the slot (its job row says how it ended). */
void import_board_release(struct import_board *b, int slot);

/* Free every slot of `pid` (the parent, after reaping a worker): how
 * many.  Only the parent calls this, and only for a pid it reaped, so
 * no owner can be writing the slot meanwhile. */
int import_board_forget_pid(struct import_board *b, pid_t pid);

/* The slot of job `id` of `tenant`, read as one snapshot: 0 and *out,
 * or -1 if no live slot holds that job for that tenant. */
int import_board_find(const struct import_board *b, const uint8_t id[IMPORT_BOARD_ID_LEN],
                      const char *tenant, int64_t now_ms, struct import_board_view *out)
    MAMORI_WARN_UNUSED;

/*
 * The import writer token: on SQLite an import's bulk transaction takes
 * the database's one write lock for all of pass 2, so two imports on two
 * workers would make the second fail ("busy").  A runner of a SQLite
 * store takes this token before it starts a job and gives it back after;
 * the job waits queued meanwhile.  0 if `pid` holds it now (taken or
 * already held), -1 if another process does.  import_board_forget_pid
 * frees it too.
 */
int import_board_writer_take(struct import_board *b, pid_t pid) MAMORI_WARN_UNUSED;
void import_board_writer_give(struct import_board *b, pid_t pid);

/* Slots in use (for tests and the daemon's log). */
unsigned import_board_used(const struct import_board *b);

#endif
