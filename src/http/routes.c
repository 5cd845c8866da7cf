/*
 * routes.c - the route table: every path mamorid serves, in one place.
 *
 * Adding a capability means adding rows here (and their handlers in the
 * module that owns the data).  The route-table test checks every row
 * declares a permission, listeners and validators for its parameters.
 */
#include <string.h>

#include "audit/api.h"
#include "auth/api.h"
#include "common/util.h"
#include "http/reply.h"
#include "http/router.h"
#include "ref/lgcode.h"
#include "transfer/api.h"
#include "vrs/api.h"
#include "vrs/import_api.h"
#include "vrs/site.h"
#include "worker/worker.h"

/* --- validators --------------------------------------------------- */

static const char *
check_lgcode(const char *v)
{
    if (strlen(v) != LGCODE_LEN)
        return "must be 6 digits";
    return lgcode_valid(v) ? NULL : "is not a valid local government code (check digit)";
}

/* --- handlers ----------------------------------------------------- */

static void
h_healthz(const struct http_request *req, struct http_response *resp)
{
    (void)req;
    reply_json(resp, 200, json_pack("{s:s,s:s}", "status", "ok",
                                    "version", MAMORI_VERSION));
}

/* The identity every internal request is bound to (R6.2, R8.1). */
static void
h_terminal(const struct http_request *req, struct http_response *resp)
{
    char hex[65];

    if (!req->has_terminal || util_hex_encode(req->terminal_fp, 32, hex, sizeof(hex)) != 0) {
        reply_error(resp, 403, "no_terminal", "No terminal certificate is bound to this request.", NULL);
        return;
    }
    reply_json(resp, 200, json_pack("{s:s}", "fingerprint", hex));
}

static json_t *
lgcode_json(const struct lgcode_entry *e)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?}", "code", e->code,
                     "prefecture", e->pref_name, "name", e->name,
                     "name_kana", e->name_kana, "kind", e->kind,
                     "parent", e->parent[0] ? e->parent : NULL);
}

static void
h_municipality(const struct http_request *req, struct http_response *resp)
{
    const struct worker_env *env = req->env;
    const struct lgcode_entry *e = lgcode_lookup(env->lgcodes, http_param(req, "code"));

    if (e == NULL) {
        reply_error(resp, 404, "unknown_municipality",
                    "No local government has this code.", "code");
        return;
    }
    reply_json(resp, 200, lgcode_json(e));
}

/* Batch check, e.g. of the previous-municipality column of a bulk file:
 * every code is answered, found or not, in the order given. */
static void
h_municipality_lookup(const struct http_request *req, struct http_response *resp)
{
    const struct worker_env *env = req->env;
    json_t *codes = json_object_get(req->body, "codes");
    json_t *results = json_array(), *v;
    size_t i;

    json_array_foreach(codes, i, v) {
        const struct lgcode_entry *e = lgcode_lookup(env->lgcodes, json_string_value(v));
        json_array_append_new(results, e ? lgcode_json(e)
                                         : json_pack("{s:s,s:b}", "code",
                                                     json_string_value(v), "found", 0));
    }
    reply_json(resp, 200, json_pack("{s:o}", "results", results));
}

/* --- the table ---------------------------------------------------- */

static const struct param_rule lgcode_param[] = {
    { "code", LGCODE_LEN, check_lgcode },
    { NULL, 0, NULL },
};

static const struct field_rule lookup_fields[] = {
    { "codes", FIELD_STRING_ARRAY, true, 1, 1000, LGCODE_LEN, check_lgcode },
    { NULL, 0, false, 0, 0, 0, NULL },
};

/* Staff authentication (auth/api.c, docs/access.md). */
static const struct field_rule login_fields[] = {
    { "user", FIELD_STRING, true, 1, 64, 0, NULL },
    { "password", FIELD_STRING, true, 1, PW_MAX_BYTES, 0, NULL },
    { "code", FIELD_STRING, true, 1, 16, 0, NULL },
    { NULL, 0, false, 0, 0, 0, NULL },
};

static const struct field_rule enrol_fields[] = {
    { "secret", FIELD_STRING, true, 64, 64, 0, NULL },
    { "password", FIELD_STRING, true, 1, PW_MAX_BYTES, 0, NULL },
    { NULL, 0, false, 0, 0, 0, NULL },
};

static const struct field_rule password_fields[] = {
    { "current_password", FIELD_STRING, true, 1, PW_MAX_BYTES, 0, NULL },
    { "password", FIELD_STRING, true, 1, PW_MAX_BYTES, 0, NULL },
    { NULL, 0, false, 0, 0, 0, NULL },
};

static const struct field_rule staff_fields[] = {
    { "user", FIELD_STRING, true, 1, 32, 0, auth_check_user_id },
    { "role", FIELD_STRING, true, 1, 23, 0, auth_check_role },
    { NULL, 0, false, 0, 0, 0, NULL },
};

static const struct field_rule role_fields[] = {
    { "role", FIELD_STRING, true, 1, 23, 0, auth_check_role },
    { NULL, 0, false, 0, 0, 0, NULL },
};

static const struct field_rule reset_fields[] = {
    /* R6.3: how the person's identity was checked, recorded with the reset */
    { "identity_check", FIELD_STRING, true, 1, 64, 0, auth_check_reason },
    { NULL, 0, false, 0, 0, 0, NULL },
};

static const struct field_rule terminal_fields[] = {
    { "fingerprint", FIELD_STRING, true, 64, 64, 0, auth_check_fingerprint },
    { "name", FIELD_STRING, true, 1, 64, 0, NULL },
    { NULL, 0, false, 0, 0, 0, NULL },
};

static const struct param_rule user_param[] = {
    { "user", 32, auth_check_user_id },
    { NULL, 0, NULL },
};

static const struct param_rule fp_param[] = {
    { "fingerprint", 64, auth_check_fingerprint },
    { NULL, 0, NULL },
};

const struct route mamori_routes[] = {
    { "GET",  "/healthz", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, h_healthz, NULL },
    { "GET",  "/v1/terminal", LISTENER_INTERNAL, PERM_ANONYMOUS, 0, NULL, NULL, h_terminal,
      NULL },
    { "GET",  "/v1/municipalities/{code}", LISTENER_BOTH, PERM_ANONYMOUS, 0,
      lgcode_param, NULL, h_municipality, NULL },
    { "POST", "/v1/municipalities/lookup", LISTENER_BOTH, PERM_ANONYMOUS, 16 * 1024,
      NULL, lookup_fields, h_municipality_lookup, NULL },
    /* R3.5: staff sign in only on the internal listener, from a terminal. */
    { "POST", "/v1/auth/login", LISTENER_INTERNAL, PERM_ANONYMOUS, 1024, NULL,
      login_fields, auth_h_login, NULL },
    { "POST", "/v1/auth/enrol", LISTENER_INTERNAL, PERM_ANONYMOUS, 1024, NULL,
      enrol_fields, auth_h_enrol, NULL },
    { "POST", "/v1/auth/logout", LISTENER_INTERNAL, PERM_SESSION, 0, NULL, NULL,
      auth_h_logout, NULL },
    { "GET",  "/v1/auth/me", LISTENER_INTERNAL, PERM_SESSION, 0, NULL, NULL, auth_h_me, NULL },
    { "POST", "/v1/auth/password", LISTENER_INTERNAL, PERM_SESSION, 1024, NULL,
      password_fields, auth_h_password, NULL },
    { "POST", "/v1/staff", LISTENER_INTERNAL, PERM_STAFF_MANAGE, 1024, NULL,
      staff_fields, auth_h_staff_create, NULL },
    { "POST", "/v1/staff/{user}/reset", LISTENER_INTERNAL, PERM_STAFF_MANAGE, 1024,
      user_param, reset_fields, auth_h_staff_reset, NULL },
    { "POST", "/v1/staff/{user}/reconfirm", LISTENER_INTERNAL, PERM_STAFF_MANAGE, 0,
      user_param, NULL, auth_h_staff_reconfirm, NULL },
    { "POST", "/v1/terminals", LISTENER_INTERNAL, PERM_TERMINAL_MANAGE, 1024, NULL,
      terminal_fields, auth_h_terminal_register, NULL },
    { "POST", "/v1/terminals/{fingerprint}/revoke", LISTENER_INTERNAL,
      PERM_TERMINAL_MANAGE, 0, fp_param, NULL, auth_h_terminal_revoke, NULL },
    /* A tenant's staff and terminals as its administrator sees them (R6.1, R6.7). */
    { "GET",  "/v1/staff", LISTENER_INTERNAL, PERM_STAFF_MANAGE, 0, NULL, NULL,
      auth_h_staff_list, NULL },
    { "POST", "/v1/staff/{user}/role", LISTENER_INTERNAL, PERM_STAFF_MANAGE, 1024,
      user_param, role_fields, auth_h_staff_role, NULL },
    { "POST", "/v1/staff/{user}/disable", LISTENER_INTERNAL, PERM_STAFF_MANAGE, 0,
      user_param, NULL, auth_h_staff_disable, NULL },
    { "POST", "/v1/staff/{user}/enable", LISTENER_INTERNAL, PERM_STAFF_MANAGE, 0,
      user_param, NULL, auth_h_staff_enable, NULL },
    { "GET",  "/v1/terminals", LISTENER_INTERNAL, PERM_TERMINAL_MANAGE, 0, NULL, NULL,
      auth_h_terminal_list, NULL },
    /* Vaccination records (R2) */
    { "POST", "/v1/residents", LISTENER_INTERNAL, PERM_RESIDENT_WRITE, 16 * 1024, NULL,
      vrs_resident_fields, vrs_h_resident_create, NULL },
    { "GET",  "/v1/residents/{id}", LISTENER_INTERNAL, PERM_RESIDENT_READ, 0, vrs_id_params,
      NULL, vrs_h_resident_get, NULL },
    /* R2.8: search terms go in the body, never in the URL */
    { "POST", "/v1/residents/search", LISTENER_INTERNAL, PERM_RESIDENT_READ, 4096, NULL,
      vrs_search_fields, vrs_h_resident_search, NULL },
    { "POST", "/v1/residents/{id}/correct", LISTENER_INTERNAL, PERM_RESIDENT_APPROVE,
      16 * 1024, vrs_id_params, vrs_resident_correct_fields, vrs_h_resident_correct, NULL },
    { "GET",  "/v1/residents/{id}/corrections", LISTENER_INTERNAL, PERM_RESIDENT_READ, 0,
      vrs_id_params, NULL, vrs_h_resident_corrections, NULL },
    { "POST", "/v1/residents/{id}/vouchers", LISTENER_INTERNAL, PERM_RESIDENT_WRITE, 1024,
      vrs_id_params, vrs_voucher_fields, vrs_h_voucher_issue, NULL },
    { "POST", "/v1/vouchers/search", LISTENER_INTERNAL, PERM_RESIDENT_READ, 1024, NULL,
      vrs_voucher_search_fields, vrs_h_voucher_search, NULL },
    { "POST", "/v1/vaccinations", LISTENER_INTERNAL, PERM_RESIDENT_WRITE, 4096, NULL,
      vrs_vaccination_fields, vrs_h_vaccination_create, NULL },
    { "POST", "/v1/vaccinations/{id}/correct", LISTENER_INTERNAL, PERM_RESIDENT_APPROVE,
      4096, vrs_id_params, vrs_vaccination_correct_fields, vrs_h_vaccination_correct, NULL },
    { "POST", "/v1/retention/run", LISTENER_INTERNAL, PERM_RESIDENT_APPROVE, 0, NULL, NULL,
      vrs_h_retention_run, NULL },
    /* R2.7: bulk reads of personal data, as CSV (never an individual number) */
    { "GET",  "/v1/exports/replica", LISTENER_INTERNAL, PERM_RESIDENT_EXPORT, 0,
      vrs_export_params, NULL, vrs_h_export_replica, NULL },
    { "GET",  "/v1/exports/ledger", LISTENER_INTERNAL, PERM_RESIDENT_EXPORT, 0,
      vrs_ledger_params, NULL, vrs_h_export_ledger, NULL },
    /* R1.5: site devices (tenant admin) and the site interface (public listener) */
    { "POST", "/v1/site-devices", LISTENER_INTERNAL, PERM_TERMINAL_MANAGE, 1024, NULL,
      vrs_site_device_fields, vrs_site_h_device_create, NULL },
    { "GET",  "/v1/site-devices", LISTENER_INTERNAL, PERM_TERMINAL_MANAGE, 0, NULL, NULL,
      vrs_site_h_device_list, NULL },
    { "POST", "/v1/site-devices/{device}/revoke", LISTENER_INTERNAL, PERM_TERMINAL_MANAGE, 0,
      vrs_site_device_params, NULL, vrs_site_h_device_revoke, NULL },
    { "POST", "/v1/site/check", LISTENER_PUBLIC, PERM_SITE_SUBMIT, 1024, NULL,
      vrs_site_check_fields, vrs_site_h_check, NULL },
    { "POST", "/v1/site/vaccinations", LISTENER_PUBLIC, PERM_SITE_SUBMIT, 4096, NULL,
      vrs_site_vaccination_fields, vrs_site_h_vaccination, NULL },
    /* Audit review for auditors (R7.5) */
    { "GET",  "/v1/audit/events", LISTENER_INTERNAL, PERM_AUDIT_READ, 0, audit_events_params,
      NULL, audit_h_events, NULL },
    { "GET",  "/v1/audit/review", LISTENER_INTERNAL, PERM_AUDIT_READ, 0, audit_review_params,
      NULL, audit_h_review, NULL },
    /* Transfer inquiries (R3) */
    { "POST", "/v1/consents", LISTENER_INTERNAL, PERM_TRANSFER_SEND, 1024, NULL,
      transfer_consent_fields, transfer_h_consent, NULL },
    { "POST", "/v1/transfer/inquiries", LISTENER_INTERNAL, PERM_TRANSFER_SEND, 1024, NULL,
      transfer_inquiry_fields, transfer_h_inquire, NULL },
    { "GET",  "/v1/transfer/inquiries/{id}", LISTENER_INTERNAL, PERM_TRANSFER_SEND, 0,
      transfer_inquiry_params, NULL, transfer_h_inquiry_get, NULL },
    { "POST", "/v1/transfer/inquiries/{id}/register", LISTENER_INTERNAL, PERM_TRANSFER_SEND, 0,
      transfer_inquiry_params, NULL, transfer_h_register, NULL },
    { "GET",  "/v1/transfer/records", LISTENER_INTERNAL, PERM_TRANSFER_SEND, 0,
      transfer_records_params, NULL, transfer_h_records, NULL },
    { "GET",  "/v1/transfer/disclosures/{id}", LISTENER_INTERNAL, PERM_TRANSFER_SEND, 0,
      transfer_resident_params, NULL, transfer_h_disclosures, NULL },
    { "POST", "/v1/transfer/bulk", LISTENER_INTERNAL, PERM_TRANSFER_SEND, 1100 * 1024, NULL,
      transfer_bulk_fields, transfer_h_bulk, NULL },
    { "GET",  "/v1/transfer/jobs/{id}", LISTENER_INTERNAL, PERM_TRANSFER_SEND, 0,
      transfer_job_params, NULL, transfer_h_job, NULL },
    { "GET",  "/v1/transfer/jobs/{id}/result", LISTENER_INTERNAL, PERM_TRANSFER_SEND, 0,
      transfer_job_params, NULL, transfer_h_job_result, NULL },
    /* R2.6: CSV import over the API, streamed to an encrypted spool; the
     * supervisor's alone, refused from the headers before the body */
    { "POST", "/v1/imports", LISTENER_INTERNAL, PERM_RESIDENT_IMPORT, IMPORT_UPLOAD_MAX,
      import_upload_params, NULL, import_h_upload, &import_upload_sink },
    { "GET",  "/v1/imports", LISTENER_INTERNAL, PERM_RESIDENT_IMPORT, 0, NULL, NULL,
      import_h_list, NULL },
    { "GET",  "/v1/imports/{id}", LISTENER_INTERNAL, PERM_RESIDENT_IMPORT, 0, import_id_params,
      NULL, import_h_get, NULL },
    { "GET",  "/v1/imports/{id}/problems", LISTENER_INTERNAL, PERM_RESIDENT_IMPORT, 0,
      import_problem_params, NULL, import_h_problems, NULL },
};

const size_t mamori_nroutes = sizeof(mamori_routes) / sizeof(mamori_routes[0]);
