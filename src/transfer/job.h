/*
 * job.h - bulk transfer inquiries (一括照会, R3.3): a CSV of movers
 * becomes a job of rows, run by one bounded runner thread per worker
 * process, with per-row outcomes and a result file.
 *
 * The bounds (docs/transfer.md "Load"):
 *  - one job queued or running per tenant (the store's partial unique
 *    index; a second submission is refused);
 *  - one runner thread per worker process, so at most `workers` jobs run
 *    at once on the whole server, each one row at a time;
 *  - each job at most TRANSFER_JOB_RATE rows per second;
 *  - each answering tenant at most TRANSFER_PROVIDER_RATE bulk answers
 *    per second per process (exchange.h), whoever asks.
 * So a large batch cannot take the request threads (it never runs on
 * them) nor more than a bounded share of the store and the audit writer.
 *
 * A job survives a restart: every row's outcome is committed as it
 * runs, and a running job whose runner has not been heard of for
 * TRANSFER_JOB_STALE seconds is taken over by any runner.
 */
#ifndef MAMORI_TRANSFER_JOB_H
#define MAMORI_TRANSFER_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store_transfer.h"
#include "transfer/exchange.h"

#define TRANSFER_JOB_RATE     20     /* rows per second of one job */
#define TRANSFER_JOB_POLL_MS  1000   /* a runner looks for work this often */
#define TRANSFER_JOB_STALE    30     /* seconds without a heartbeat */
#define TRANSFER_JOB_HEARTBEAT 5     /* seconds between heartbeats */

/* The header the bulk file must start with. */
#define TRANSFER_BULK_HEADER "previous_municipality,mynumber,consent_id,address_no"

/*
 * Parse a bulk file (UTF-8, optional BOM, RFC 4180, the header above,
 * 1..STORE_XFER_JOB_MAX rows of exactly 4 fields).  A row whose values
 * are invalid is kept with its outcome set (invalid_previous_municipality,
 * invalid_mynumber, invalid_consent_id, invalid_address_no) and runs no
 * inquiry; a malformed file is refused as a whole.  On success *rows
 * (calloc'd, the caller wipes and frees: it holds individual numbers) and
 * *n; on failure -1, a plain sentence in err (no values) and the line in
 * *line (0: the file as a whole).
 */
int transfer_bulk_parse(const char *csv, size_t len, struct transfer_job_row **rows,
                        size_t *n, char *err, size_t errlen, size_t *line) MAMORI_WARN_UNUSED;

/*
 * Claim one job and run it to the end in the calling thread, at most
 * `rate` rows per second (0: unlimited, for benchmarks), stopping early
 * if *stop becomes true (may be NULL).  *ran (may be NULL) says whether
 * there was a job.  0, or -1 if the store failed.
 */
int transfer_job_run_once(const struct transfer_env *env, const char *runner, unsigned rate,
                          const volatile bool *stop, bool *ran) MAMORI_WARN_UNUSED;

/* The result file of a job: CSV (UTF-8, CRLF, formula-neutralised) with
 * row, previous_municipality, address_no, consent_id, outcome, doses,
 * inquiry_id; never an individual number.  *out malloc'd (with a NUL
 * after the *len bytes), caller frees. */
enum store_status transfer_job_result_csv(struct store_tenant *ctx, const char *job_id,
                                          char **out, size_t *len) MAMORI_WARN_UNUSED;

/* The runner thread of one worker process. */
struct transfer_runner;

/* Start it with a copy of `env` (whose store, keys and audit sink must
 * outlive the runner); `name` identifies the runner in the job table.
 * The caller owns *out (transfer_runner_stop). */
int transfer_runner_start(const struct transfer_env *env, const char *name,
                          struct transfer_runner **out) MAMORI_WARN_UNUSED;

/* A job was queued: this process's runner (if it has one) looks now
 * rather than at its next poll. */
void transfer_runner_wake(void);

/* Finish the row in progress, stop and free; NULL is fine. */
void transfer_runner_stop(struct transfer_runner *r);

#endif
