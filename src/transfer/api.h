/*
 * api.h - the staff HTTP API of transfer inquiries (R3.1-R3.5, R9.5).
 *
 * Every route is on the internal listener (registered terminals only)
 * and needs a signed-in clerk or supervisor (PERM_TRANSFER_SEND).  The
 * tenant is always the session's.  docs/transfer.md lists the routes
 * and their answers; docs/openapi.yaml has their shapes.
 *
 * Rules every handler keeps (as vrs/api.h):
 *  - the individual number is accepted in request bodies only, and never
 *    appears in a response, a URL, a log line or an audit event (there
 *    only as a keyed hash);
 *  - every consent, inquiry, provision, registration and read of the
 *    records is an audit event acknowledged before the answer (R7.1);
 *    if the writer refuses, 503 and nothing is changed or sent.
 */
#ifndef MAMORI_TRANSFER_API_H
#define MAMORI_TRANSFER_API_H

#include "http/router.h"
#include "transfer/job.h"

struct worker_env;

/* Route table pieces (http/routes.c). */
extern const struct field_rule transfer_consent_fields[];
extern const struct field_rule transfer_inquiry_fields[];
extern const struct field_rule transfer_bulk_fields[];
extern const struct param_rule transfer_inquiry_params[];   /* {id}: 32 hex */
extern const struct param_rule transfer_job_params[];       /* {id}: 16 hex */
extern const struct param_rule transfer_resident_params[];  /* {id}: a resident row id */
extern const struct param_rule transfer_records_params[];   /* ?side=&before=&limit= */

void transfer_h_consent(const struct http_request *req, struct http_response *resp);
void transfer_h_inquire(const struct http_request *req, struct http_response *resp);
void transfer_h_inquiry_get(const struct http_request *req, struct http_response *resp);
void transfer_h_register(const struct http_request *req, struct http_response *resp);
void transfer_h_records(const struct http_request *req, struct http_response *resp);
void transfer_h_disclosures(const struct http_request *req, struct http_response *resp);
void transfer_h_bulk(const struct http_request *req, struct http_response *resp);
void transfer_h_job(const struct http_request *req, struct http_response *resp);
void transfer_h_job_result(const struct http_request *req, struct http_response *resp);

/*
 * Start this worker's bulk runner (job.h) on the worker's store, key
 * client and audit channel; the worker stops it (transfer_runner_stop)
 * before it closes them.  0 or -1.
 */
int transfer_worker_start(struct worker_env *we, struct transfer_runner **out)
    MAMORI_WARN_UNUSED;

#endif
