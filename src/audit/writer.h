/*
 * writer.h - appending to the tamper-evident audit log (R7.2, R7.3, R7.6).
 *
 * Used by the audit writer process (src/audit/auditd.c) and by `mamori`
 * for events of offline commands (R7.7).  Both append under an exclusive
 * flock on <dir>/.lock taken per batch, and re-read the head of the log
 * when someone else appended in between, so the chain has one writer at
 * a time.
 *
 *   audit_writer_begin(w)            lock; catch up with other appenders
 *   audit_writer_append(w, ev, &seq) validate, chain, write (not durable yet)
 *   ... more appends (group commit)
 *   audit_writer_commit(w)           fsync; signed checkpoint when due; unlock
 *
 * An entry is durable -- and may be acknowledged -- only after commit
 * returned 0.  Any failed write or fsync breaks the writer: every later
 * call fails (fail closed); a partial line is cut off again when possible,
 * and otherwise on the next open, which records that as an event.
 */
#ifndef MAMORI_AUDIT_WRITER_H
#define MAMORI_AUDIT_WRITER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/chain.h"

/* Signs a checkpoint: req is the 48-byte IPC_AUDIT_SIGN payload.  0 or -1. */
struct audit_signer {
    int (*sign)(void *arg, const uint8_t req[AUDIT_SIGN_REQ_LEN], uint8_t sig[AUDIT_SIG_LEN]);
    void *arg;
};

struct audit_writer_opts {
    const char *dir;
    uint64_t    ckpt_entries;       /* checkpoint after this many entries (0: never) */
    unsigned    ckpt_seconds;       /* ... or after this long with unsigned entries */
    uint64_t    segment_max_bytes;  /* rotate when a segment reaches this size */
    unsigned    archive_days;       /* compress segments older than this (R7.3) */
    unsigned    retention_days;     /* delete archived segments older than this */
    bool        no_rotate;          /* offline CLI appends: never rotate or archive */
    struct audit_signer signer;     /* .sign NULL: no checkpoints (CLI) */
};

struct audit_writer;

/* Open the log in o->dir (created segments are 0600).  A torn last line
 * (a crash during a write that was never acknowledged) is cut off; the
 * number of bytes cut is in *truncated so the caller can record it.
 * Returns 0, or -1 with a sentence in err. */
int audit_writer_open(const struct audit_writer_opts *o, struct audit_writer **out,
                      uint64_t *truncated, char *err, size_t errlen)
    __attribute__((warn_unused_result));

int audit_writer_begin(struct audit_writer *w) __attribute__((warn_unused_result));

/* Append one event.  Returns 0 with *seq, -1 on a write failure (the
 * writer is now broken), -2 if the event was refused (reason in err). */
int audit_writer_append(struct audit_writer *w, const json_t *ev, uint64_t *seq,
                        char *err, size_t errlen) __attribute__((warn_unused_result));

/* Make everything appended durable, sign a checkpoint when due, unlock.
 * 0 or -1 (broken). */
int audit_writer_commit(struct audit_writer *w) __attribute__((warn_unused_result));

/* Sign the current head now (shutdown, rotation, timer).  Takes the lock
 * itself.  0 or -1. */
int audit_writer_checkpoint(struct audit_writer *w) __attribute__((warn_unused_result));

/* Called while idle: sign a checkpoint if unsigned entries are older than
 * ckpt_seconds, rotate on a new day, archive and delete (R7.3).  0 or -1. */
int audit_writer_tick(struct audit_writer *w) __attribute__((warn_unused_result));

/* Milliseconds until tick has work (for poll), or -1 for none. */
int audit_writer_tick_ms(const struct audit_writer *w);

uint64_t audit_writer_seq(const struct audit_writer *w);

/* Close (no checkpoint: call audit_writer_checkpoint first if wanted). */
void audit_writer_close(struct audit_writer *w);

/* Append one event durably and close: what `mamori` uses for offline
 * commands (R7.7).  0, or -1 with a sentence in err. */
int audit_append_offline(const char *dir, const json_t *ev, uint64_t *seq,
                         char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
