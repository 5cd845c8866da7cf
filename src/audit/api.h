/*
 * api.h - the auditors' HTTP API over the audit log (R7.5, R6.6, R1.1).
 *
 *   GET /v1/audit/events?actor=&action=&object=&outcome=&from=&to=&limit=&after_seq=
 *   GET /v1/audit/review?user=&from=&to=&format=json|csv
 *
 * Both need PERM_AUDIT_READ (the auditor role only) and are served on
 * the internal listener.  Workers cannot read the log (Landlock): the
 * handlers ask the audit writer over the worker's query channel
 * (IPC_AUDIT_QUERY -> IPC_AUDIT_ROWS pages), always for the signed-in
 * auditor's own tenant, which no parameter can change (R1.1).  Every
 * read is itself an audit event (audit.query, audit.review) with the
 * filters used, recorded before anything is answered (fail closed).
 * docs/audit.md, "HTTP API for auditors", describes the answers.
 */
#ifndef MAMORI_AUDIT_API_H
#define MAMORI_AUDIT_API_H

#include "http/router.h"

/* Query parameter rules for the route table (http/routes.c): names,
 * lengths and validators (bad dates, unknown actions, a limit out of
 * range are refused with 400 naming the parameter). */
extern const struct param_rule audit_events_params[];
extern const struct param_rule audit_review_params[];

/* Route handlers. */
void audit_h_events(const struct http_request *req, struct http_response *resp);
void audit_h_review(const struct http_request *req, struct http_response *resp);

/* Validators (exposed for the tests): NULL if acceptable, else a reason. */
const char *audit_check_time(const char *v);     /* UTC ISO 8601, see api.c */
const char *audit_check_limit(const char *v);    /* 1..AUDIT_QUERY_MAX_ROWS */

#endif
