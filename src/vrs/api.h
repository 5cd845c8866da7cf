/*
 * api.h - the staff HTTP API for vaccination records (R2.1-R2.5, R2.7-R2.10)
 * and the pieces the site interface (vrs/site.h) shares with it.
 *
 * Every route is on the internal listener and needs a signed-in staff
 * session (auth_authorize) with a permission of the matrix:
 * PERM_RESIDENT_READ / _WRITE (clerk, supervisor), PERM_RESIDENT_APPROVE
 * (supervisor: corrections by authority, retention) and
 * PERM_RESIDENT_EXPORT (supervisor: bulk exports).  docs/records.md
 * "HTTP API" lists the routes and their answers.
 *
 * Rules every handler keeps:
 *  - the tenant is the session's; every store call goes through a tenant
 *    context for it, so another tenant's rows are never found (R1.1);
 *  - the individual number is never in a URL, a response or a log line:
 *    it is accepted in request bodies only and answered as has_mynumber
 *    (R2.2);
 *  - every read or write of personal data is an audit event (action,
 *    record ids, never values) acknowledged by the audit writer before
 *    the answer is sent; if the writer refuses, 503 and, for writes,
 *    nothing is changed (R7.1, fail closed).
 */
#ifndef MAMORI_VRS_API_H
#define MAMORI_VRS_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "config/config.h"
#include "http/router.h"
#include "store/store_records.h"
#include "vrs/catalogue.h"
#include "vrs/fields.h"
#include "vrs/rules.h"

/* Per-worker state, made before the sandbox closes (reads the vaccine
 * catalogue).  The caller owns *out (vrs_env_free). */
struct vrs_env;
int vrs_env_init(const struct mamori_config *cfg, struct vrs_env **out) MAMORI_WARN_UNUSED;
void vrs_env_free(struct vrs_env *e);

/* Route table pieces (http/routes.c). */
extern const struct param_rule vrs_id_params[];        /* {id} */
extern const struct param_rule vrs_export_params[];    /* ?part=&encoding= */
extern const struct param_rule vrs_ledger_params[];    /* ?encoding= */
extern const struct field_rule vrs_resident_fields[];
extern const struct field_rule vrs_search_fields[];
extern const struct field_rule vrs_resident_correct_fields[];
extern const struct field_rule vrs_voucher_fields[];
extern const struct field_rule vrs_voucher_search_fields[];
extern const struct field_rule vrs_vaccination_fields[];
extern const struct field_rule vrs_vaccination_correct_fields[];

/* Route handlers. */
void vrs_h_resident_create(const struct http_request *req, struct http_response *resp);
void vrs_h_resident_get(const struct http_request *req, struct http_response *resp);
void vrs_h_resident_search(const struct http_request *req, struct http_response *resp);
void vrs_h_resident_correct(const struct http_request *req, struct http_response *resp);
void vrs_h_resident_corrections(const struct http_request *req, struct http_response *resp);
void vrs_h_voucher_issue(const struct http_request *req, struct http_response *resp);
void vrs_h_voucher_search(const struct http_request *req, struct http_response *resp);
void vrs_h_vaccination_create(const struct http_request *req, struct http_response *resp);
void vrs_h_vaccination_correct(const struct http_request *req, struct http_response *resp);
void vrs_h_export_replica(const struct http_request *req, struct http_response *resp);
void vrs_h_export_ledger(const struct http_request *req, struct http_response *resp);
void vrs_h_retention_run(const struct http_request *req, struct http_response *resp);

/* ---- shared with vrs/site.c ------------------------------------------------- */

/*
 * One audit event of the request's actor (staff user or site device),
 * tenant, role, terminal, session reference and source, with `objects`
 * (array of record ids such as "resident:12", stolen, may be NULL),
 * `info` (object, stolen, may be NULL) and `subject` ("hmac:" + 64 hex,
 * may be NULL).  0 once the writer has acknowledged it (durable), -1 if
 * it refused or did not answer: the caller fails the request.
 */
int vrs_audit(const struct http_request *req, const char *action, const char *outcome,
              const char *reason, const char *subject, json_t *objects, json_t *info)
    MAMORI_WARN_UNUSED;

/* The worker's vaccine catalogue. */
const struct vrs_catalogue *vrs_catalogue_of(const struct http_request *req);

/*
 * Audit, then commit the bulk transaction open on `ctx` (store_bulk_begin
 * was called and the write made): the event (action, outcome success,
 * `objects` and `info` stolen) is acknowledged before the commit, so a
 * change the audit log does not know of is never committed.  0 when both
 * are durable; -1 with resp set (503): rolled back if the writer refused;
 * if the commit itself failed, a failure event follows (best effort).
 */
int vrs_commit_audited(const struct http_request *req, struct http_response *resp,
                       struct store_tenant *ctx, const char *action, json_t *objects,
                       json_t *info) MAMORI_WARN_UNUSED;

/* A resident's vaccinations, voided ones included: *out is a malloc'd
 * array the caller frees, *n the count (at most 256). */
enum store_status vrs_doses_of(struct store_tenant *ctx, int64_t resident_id,
                               struct vaccination **out, size_t *n) MAMORI_WARN_UNUSED;

/* Record id strings for audit objects: "resident:12", "vaccination:3". */
json_t *vrs_object_id(const char *kind, int64_t id);

/* The tenant context of the request's (authenticated) tenant; 0, or -1
 * with resp holding 503.  The caller closes it. */
int vrs_tenant_open(const struct http_request *req, struct http_response *resp,
                    struct store_tenant **ctx) MAMORI_WARN_UNUSED;

/* Today in Japan (JST, UTC+9), "YYYY-MM-DD". */
void vrs_today(char out[STORE_DATE_LEN]);

/* The resident's facts for the rules (R2.5): birth date, and the date of
 * death or of moving out derived from the movement fields.  The strings
 * point into `r`. */
void vrs_resident_facts(const struct resident *r, struct vrs_resident_facts *f);

/*
 * May `v` (vaccine, dose, date) be recorded for resident `r`?  Reads the
 * resident's recorded doses (voided ones and `skip_id` left out) and
 * runs vrs_rules_check with today in JST.  0 if it may; otherwise -1 and
 * resp holds 422 with the rule's code, field, English message and
 * Japanese message_ja (or 503 if the history cannot be read).  *rule
 * (may be NULL) gets the rule.
 */
int vrs_check_vaccination(const struct http_request *req, struct http_response *resp,
                          struct store_tenant *ctx, const struct resident *r,
                          const struct vaccination *v, int64_t skip_id,
                          enum vrs_rule *rule) MAMORI_WARN_UNUSED;

/* Standard refusals. */
void vrs_reply_unavailable(struct http_response *resp);
void vrs_reply_audit_failed(struct http_response *resp);

/* Field validators (also used by the site interface's table);
 * vrs_check_text is vrs/fields.h's. */
const char *vrs_check_date(const char *v);
const char *vrs_check_vaccine(const char *v);
const char *vrs_check_lot(const char *v);
const char *vrs_check_idem(const char *v);

#endif
