/*
 * import_api.h - CSV import over the HTTP API, with live progress (R2.6,
 * R7.1, R1.1, R6.6; docs/import-export.md "Import over the API").
 *
 *   POST /v1/imports?kind=residents|vouchers|vaccinations
 *                   [&encoding=utf-8|cp932][&dry_run=true|false]
 *        body text/csv (or application/octet-stream), at most
 *        IMPORT_UPLOAD_MAX bytes, streamed into an encrypted spool
 *        (crypto/spool.h) in <datadir>/spool; 202 with the job.
 *   GET  /v1/imports/{id}            state, phase, progress, counts
 *   GET  /v1/imports/{id}/problems?after=N&limit=M   the kept problems
 *   GET  /v1/imports                 the tenant's recent jobs
 *
 * Internal listener only; PERM_RESIDENT_IMPORT (the supervisor's: a bulk
 * write of personal data, auth/perm.h), checked from the headers before
 * a byte of the body is read.  Always the session's tenant: another
 * tenant's job id answers 404 exactly like an id that does not exist
 * (R1.1).  No answer carries a value from the file: states, counts, line
 * numbers, column names and reasons only.
 *
 * Refused from the headers, with the connection closed and the body
 * unread: no session (401), not a supervisor (403), a bad or missing
 * query parameter (400), an import of the tenant already queued or
 * running (409 import_running, naming it), a full queue (503 queue_full,
 * Retry-After).  The upload is accepted (202) once it is spooled, its job
 * row written (at most one job queued or running per tenant: a 409 still
 * if another upload of the tenant got there meanwhile) and its
 * acceptance audited; a runner thread of the same worker then imports it
 * (vrs/import_runner.h).  Progress is read from the shared board
 * (vrs/import_board.h); a job whose worker is gone is reported, and
 * stored, as interrupted: the upload must be sent again.
 */
#ifndef MAMORI_VRS_IMPORT_API_H
#define MAMORI_VRS_IMPORT_API_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "config/config.h"
#include "http/router.h"

/* The largest upload: 1 GiB, about 5 million residents (a synthetic
 * 1,000,000-resident file is about 200 MB).  The route's max_body: the
 * server refuses anything larger with 413 before or while reading it. */
#define IMPORT_UPLOAD_MAX ((size_t)1 << 30)

#define IMPORT_LIST_MAX        50     /* jobs in GET /v1/imports */
/* Retry-After of a 503 queue_full or store_busy: the queue drains as
 * imports end (100,000 residents take about 10 s, docs/import-export.md). */
#define IMPORT_RETRY_AFTER_S   60
#define IMPORT_PROBLEMS_PAGE   100    /* default limit of a problems page */
#define IMPORT_PROBLEMS_PAGE_MAX 1000 /* largest limit of a problems page */

/* Where uploads are spooled: <datadir>/spool.  0 or -1 (too long). */
int import_api_spool_dir(const struct mamori_config *cfg, char *out, size_t outsz)
    MAMORI_WARN_UNUSED;

/* Make the spool directory if it is missing: mode 0700, owned by the
 * service user (cfg->user when run as root), not a symbolic link.  The
 * parent calls this before it forks the workers, whose sandbox then
 * allows writing there.  0, or -1 with a plain sentence in err. */
int import_api_prepare(const struct mamori_config *cfg, char *err, size_t errlen)
    MAMORI_WARN_UNUSED;

/* A new job id: 128 random bits, as 32 lower-case hex digits in hex and
 * the bytes in bin.  Drawn again while the hex holds a run of 12 or more
 * decimal digits: the audit log refuses any value that could be an
 * individual number (R2.2, audit/event.h), and one id in a hundred or so
 * would otherwise hold one by chance. */
void import_api_new_id(uint8_t bin[16], char hex[33]);

/* Route table pieces (http/routes.c). */
extern const struct body_sink import_upload_sink;
extern const struct param_rule import_upload_params[];   /* ?kind=&encoding=&dry_run= */
extern const struct param_rule import_id_params[];       /* {id}: 32 hex */
extern const struct param_rule import_problem_params[];  /* {id}, ?after=&limit= */

void import_h_upload(const struct http_request *req, struct http_response *resp);
void import_h_get(const struct http_request *req, struct http_response *resp);
void import_h_problems(const struct http_request *req, struct http_response *resp);
void import_h_list(const struct http_request *req, struct http_response *resp);

#endif
