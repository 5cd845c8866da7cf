/*
 * site.c - the vaccination-site interface on the public listener and the
 * site-device credentials behind it (R1.5).  See site.h.
 *
 * What a site may learn is fixed here, field by field: the kana name,
 * birth date and sex to confirm the person in front of it, and the
 * COVID-19 doses already recorded.  Nothing a site device can reach takes
 * or answers an individual number, a resident id, an address number or an
 * address, and every message is a fixed sentence (R1.5).
 */
#include "vrs/site.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/perm.h"
#include "auth/session.h"
#include "common/log.h"
#include "http/reply.h"
#include "store/store_records.h"
#include "store/store_site.h"
#include "vrs/api.h"
#include "vrs/voucher.h"
#include "worker/worker.h"

static struct worker_env *
wenv(const struct http_request *req)
{
    return req->env;
}

static const char *
body_str(const struct http_request *req, const char *name)
{
    const char *s = json_string_value(json_object_get(req->body, name));

    return s ? s : "";
}

/* ---- device authentication (R1.5) --------------------------------------------- */

static int
device_unauthenticated(struct http_response *resp)
{
    reply_error(resp, 401, "unauthenticated",
                "The device credentials are missing or not valid.", NULL);
    return -1;
}

int
vrs_site_authorize(struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    struct site_device d;
    uint8_t h[SESSION_HASH_LEN];
    enum store_status st;

    /* Only a bearer token, only on the public listener: a device token is
     * no staff session and a staff session no device (deny by default). */
    if (env == NULL || req->listener != LISTENER_PUBLIC || req->token_from_cookie ||
        auth_session_hash(req->token, h) != 0)
        return device_unauthenticated(resp);
    st = store_site_device_by_token(env->store, h, &d);
    if (st == STORE_NOTFOUND)
        return device_unauthenticated(resp);
    if (st != STORE_OK) {
        vrs_reply_unavailable(resp);
        return -1;
    }
    snprintf(req->user_id, sizeof(req->user_id), "%s", d.device_id);
    snprintf(req->tenant, sizeof(req->tenant), "%s", d.tenant);
    req->role = ROLE_SITE_DEVICE;
    if (strcmp(d.state, "active") != 0) {
        /* A revoked device still trying is worth an auditor's look. */
        if (vrs_audit(req, "site.auth", "refused", "device_revoked", NULL, NULL, NULL) != 0)
            log_warn("site_auth_unrecorded", "a revoked device's attempt was not recorded");
        return device_unauthenticated(resp);
    }
    /* R6.6: the one matrix decides, as for staff. */
    if (!auth_role_allows(ROLE_SITE_DEVICE, req->route->perm)) {
        reply_error(resp, 403, "forbidden", "This device may not do this.", NULL);
        return -1;
    }
    memcpy(req->session_hash, h, sizeof(h));
    req->authed = true;
    return 0;
}

/* ---- validators and table pieces --------------------------------------------------- */

static const char *
check_device_name(const char *v)
{
    const char *why = vrs_check_text(v);

    return why != NULL ? why : v[strspn(v, " ")] == '\0' ? "must not be blank" : NULL;
}

static const char *
check_device_id(const char *v)
{
    return store_site_device_id_valid(v) ? NULL : "must be a site device id (sd- and 16 letters)";
}

/* Only the length here: the line is parsed by the handler, whose answer
 * names the part that is wrong (vrs/voucher.h). */
static const char *
check_line_chars(const char *v)
{
    return strspn(v, "0123456789") == strlen(v) ? NULL
        : "may contain only the digits 0-9 (half-width)";
}

const struct param_rule vrs_site_device_params[] = {
    { "device", SITE_DEVICE_ID_LEN, check_device_id },
    { NULL, 0, NULL },
};

const struct field_rule vrs_site_device_fields[] = {
    { "name", FIELD_STRING, true, 1, SITE_DEVICE_NAME_MAX - 1, 0, check_device_name },
    { NULL, 0, false, 0, 0, 0, NULL },
};

const struct field_rule vrs_site_check_fields[] = {
    { "voucher_line", FIELD_STRING, true, 1, VRS_VOUCHER_LINE_LEN, 0, check_line_chars },
    { NULL, 0, false, 0, 0, 0, NULL },
};

const struct field_rule vrs_site_vaccination_fields[] = {
    { "voucher_line", FIELD_STRING, true, 1, VRS_VOUCHER_LINE_LEN, 0, check_line_chars },
    { "vaccine", FIELD_STRING, true, 1, STORE_VACCINE_MAX - 1, 0, vrs_check_vaccine },
    { "dose", FIELD_INTEGER, true, 0, 999, 0, NULL },
    { "date", FIELD_STRING, true, 10, 10, 0, vrs_check_date },
    { "lot", FIELD_STRING, true, 1, STORE_LOT_MAX - 1, 0, vrs_check_lot },
    { "clinic", FIELD_STRING, false, 0, STORE_PERSON_MAX - 1, 0, vrs_check_text },
    { "doctor", FIELD_STRING, false, 0, STORE_PERSON_MAX - 1, 0, vrs_check_text },
    { "idempotency_key", FIELD_STRING, false, 1, STORE_IDEM_MAX, 0, vrs_check_idem },
    { NULL, 0, false, 0, 0, 0, NULL },
};

/* ---- device management (tenant_admin, internal listener) ---------------------------- */

/* "sd-" and 16 letters: no digits, so an id can never hold anything that
 * looks like an individual number (the audit schema refuses those). */
static void
new_device_id(char out[SITE_DEVICE_ID_LEN + 1])
{
    memcpy(out, "sd-", 3);
    for (size_t i = 3; i < SITE_DEVICE_ID_LEN; i++)
        out[i] = (char)('a' + randombytes_uniform(26));
    out[SITE_DEVICE_ID_LEN] = '\0';
}

static json_t *
device_object(const char *device_id)
{
    json_t *a = json_array();

    json_array_append_new(a, json_pack("s+", "device:", device_id));
    return a;
}

/* The success event of a device change goes first (R7.7); when the store
 * then refuses the change, a failure event follows (best effort, as in
 * vrs_commit_audited), so the log never shows only a change that did
 * not happen. */
static void
device_change_failed(const struct http_request *req, const char *action, const char *id,
                     enum store_status st)
{
    const char *reason = st == STORE_NOTFOUND ? "not_found" : "commit_failed";

    log_error("site_device_failed", "%s: %s after its audit event", action,
              store_strerror(st));
    if (vrs_audit(req, action, "failure", reason, NULL, device_object(id), NULL) != 0)
        log_error("audit_refused", "failure event of %s not recorded", action);
}

void
vrs_site_h_device_create(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    char id[SITE_DEVICE_ID_LEN + 1], token[SESSION_TOKEN_HEX + 1];
    uint8_t h[SESSION_HASH_LEN];
    enum store_status st;

    new_device_id(id);
    auth_session_new(token, h);
    /* R7.7: a new credential is on the record before it exists. */
    if (vrs_audit(req, "site_device.create", "success", NULL, NULL, device_object(id),
                  NULL) != 0) {
        vrs_reply_audit_failed(resp);
        goto out;
    }
    st = store_site_device_create(env->store, req->tenant, id, body_str(req, "name"), h);
    if (st != STORE_OK) {
        device_change_failed(req, "site_device.create", id, st);
        vrs_reply_unavailable(resp);
        goto out;
    }
    /* The token is shown this once; only its hash is kept. */
    reply_json(resp, 201, json_pack("{s:s,s:s,s:s,s:s}", "device_id", id, "name",
                                    body_str(req, "name"), "state", "active", "token", token));
out:
    util_wipe(token, sizeof(token));
    util_wipe(h, sizeof(h));
}

static int
device_row(const struct site_device *d, void *p)
{
    return json_array_append_new(p, json_pack("{s:s,s:s,s:s,s:s,s:s}", "device_id",
                                              d->device_id, "name", d->name, "state",
                                              d->state, "created_at", d->created_at,
                                              "changed_at", d->changed_at)) == 0 ? 0 : 1;
}

void
vrs_site_h_device_list(const struct http_request *req, struct http_response *resp)
{
    json_t *rows = json_array();

    if (rows == NULL ||
        store_site_device_list(wenv(req)->store, req->tenant, device_row, rows) != STORE_OK) {
        json_decref(rows);
        vrs_reply_unavailable(resp);
        return;
    }
    reply_json(resp, 200, json_pack("{s:s,s:o}", "tenant", req->tenant, "devices", rows));
}

void
vrs_site_h_device_revoke(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *env = wenv(req);
    const char *id = http_param(req, "device");
    struct site_device d;
    enum store_status st = store_site_device_get(env->store, req->tenant, id, &d);

    /* Another tenant's device is answered like an unknown one (R1.1). */
    if (st == STORE_NOTFOUND || (st == STORE_OK && strcmp(d.state, "active") != 0)) {
        reply_error(resp, 404, "unknown_device", "Your municipality has no active site "
                    "device with this id.", "device");
        return;
    }
    if (st != STORE_OK) {
        vrs_reply_unavailable(resp);
        return;
    }
    if (vrs_audit(req, "site_device.revoke", "success", NULL, NULL, device_object(id),
                  NULL) != 0) {
        vrs_reply_audit_failed(resp);
        return;
    }
    /* From the next request on the token is refused (vrs_site_authorize reads
     * the row every time). */
    st = store_site_device_revoke(env->store, req->tenant, id);
    if (st != STORE_OK)
        device_change_failed(req, "site_device.revoke", id, st);
    if (st == STORE_NOTFOUND) {
        /* Revoked by someone else since the read above. */
        reply_error(resp, 404, "unknown_device", "Your municipality has no active site "
                    "device with this id.", "device");
        return;
    }
    if (st != STORE_OK) {
        vrs_reply_unavailable(resp);
        return;
    }
    reply_json(resp, 200, json_pack("{s:s,s:s}", "device_id", id, "state", "revoked"));
}

/* ---- the voucher a site presents --------------------------------------------------- */

static void
add_message_ja(struct http_response *resp, const char *ja)
{
    json_t *err = json_object_get(resp->body, "error");

    if (err != NULL)
        json_object_set_new(err, "message_ja", json_string(ja));
}

/*
 * Resolve the voucher line to the tenant's voucher and resident.  A
 * malformed line is 400 naming the part that is wrong; a number unknown
 * here, voided, or of another municipality's code is one and the same
 * 404, on the record as a failure (R1.5: the answer says nothing about
 * other municipalities).  0, or -1 with resp set.
 */
static int
site_voucher(const struct http_request *req, struct http_response *resp,
             struct store_tenant *ctx, const char *action, struct vrs_voucher *line,
             struct voucher *v, struct resident *r)
{
    enum vrs_voucher_status vs = vrs_voucher_parse(body_str(req, "voucher_line"), line);
    enum store_status st = STORE_NOTFOUND;

    if (vs != VRS_VOUCHER_OK) {
        reply_error(resp, 400, vrs_voucher_status_code(vs),
                    vrs_voucher_message(vs, false, VRS_LANG_EN), "voucher_line");
        add_message_ja(resp, vrs_voucher_message(vs, false, VRS_LANG_JA));
        return -1;
    }
    if (strcmp(line->lgcode, req->tenant) == 0)
        st = store_voucher_get(ctx, line->number, v);
    if (st == STORE_OK && !v->voided)
        st = store_resident_get(ctx, v->resident_id, r);
    else if (st == STORE_OK)
        st = STORE_NOTFOUND;
    if (st == STORE_OK)
        return 0;
    if (st != STORE_NOTFOUND) {
        vrs_reply_unavailable(resp);
        return -1;
    }
    if (vrs_audit(req, action, "failure", "unknown_voucher", NULL, NULL, NULL) != 0) {
        vrs_reply_audit_failed(resp);
        return -1;
    }
    reply_error(resp, 404, "unknown_voucher", "No voucher of this municipality has this "
                "number.", "voucher_line");
    add_message_ja(resp, "この接種券は登録されていません。");
    return -1;
}

static json_t *
site_objects(int64_t resident_id, const char *voucher_no)
{
    json_t *a = json_array();

    json_array_append_new(a, vrs_object_id("resident", resident_id));
    json_array_append_new(a, json_pack("s+", "voucher:", voucher_no));
    return a;
}

static bool
covid_dose(const struct vrs_catalogue *cat, const struct vaccination *v)
{
    const struct vrs_vaccine *vac = vrs_catalogue_lookup(cat, v->vaccine);

    return !v->voided && vac != NULL && vac->category == VRS_CAT_COVID;
}

/* POST /v1/site/check: only what a site needs to confirm the person and
 * the dose (R1.5). */
void
vrs_site_h_check(const struct http_request *req, struct http_response *resp)
{
    const struct vrs_catalogue *cat = vrs_catalogue_of(req);
    struct store_tenant *ctx = NULL;
    struct vrs_voucher line;
    struct voucher v;
    struct resident r;
    struct vaccination *d = NULL;
    size_t n = 0;
    int next = 1;
    json_t *doses = NULL;

    memset(&r, 0, sizeof(r));
    if (vrs_tenant_open(req, resp, &ctx) != 0 ||
        site_voucher(req, resp, ctx, "resident.site_check", &line, &v, &r) != 0)
        goto out;
    if (vrs_doses_of(ctx, r.id, &d, &n) != STORE_OK || (doses = json_array()) == NULL) {
        vrs_reply_unavailable(resp);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!covid_dose(cat, &d[i]))
            continue;
        json_array_append_new(doses, json_pack("{s:s,s:i,s:s}", "vaccine", d[i].vaccine,
                                               "dose", d[i].dose, "date", d[i].date));
        if (d[i].dose >= next)
            next = d[i].dose + 1;
    }
    if (vrs_audit(req, "resident.site_check", "success", NULL, NULL,
                  site_objects(r.id, v.voucher_no), NULL) != 0) {
        vrs_reply_audit_failed(resp);
        goto out;
    }
    reply_json(resp, 200, json_pack("{s:s,s:s,s:s,s:i,s:i,s:o}", "kana", r.kana,
                                    "birth_date", r.birth_date, "sex", r.sex,
                                    "voucher_dose", (int)line.dose, "next_dose", next,
                                    "doses", doses));
    doses = NULL;
out:
    json_decref(doses);
    free(d);
    store_resident_wipe(&r);
    store_tenant_ctx_close(ctx);
}

/* A voucher is for COVID-19 vaccination (特例臨時接種): a site records
 * only vaccines of that category against it. */
static int
covid_vaccine(const struct http_request *req, struct http_response *resp, const char *code)
{
    const struct vrs_vaccine *vac = vrs_catalogue_lookup(vrs_catalogue_of(req), code);

    if (vac == NULL || vac->category == VRS_CAT_COVID)
        return 0;                       /* an unknown code is the rules' refusal */
    reply_error(resp, 422, "vaccine_not_for_voucher", "A vaccination voucher is for a "
                "COVID-19 vaccine; this vaccine is recorded by the municipality.", "vaccine");
    add_message_ja(resp, "接種券で登録できるのは新型コロナワクチンのみです。");
    return -1;
}

static void
site_vaccination_from_body(const struct http_request *req, struct vaccination *v)
{
    snprintf(v->vaccine, sizeof(v->vaccine), "%s", body_str(req, "vaccine"));
    snprintf(v->date, sizeof(v->date), "%s", body_str(req, "date"));
    snprintf(v->lot, sizeof(v->lot), "%s", body_str(req, "lot"));
    snprintf(v->clinic, sizeof(v->clinic), "%s", body_str(req, "clinic"));
    snprintf(v->doctor, sizeof(v->doctor), "%s", body_str(req, "doctor"));
    v->dose = (int)json_integer_value(json_object_get(req->body, "dose"));
    snprintf(v->entered_by, sizeof(v->entered_by), "%s", req->user_id);
}

/* POST /v1/site/vaccinations: the same rules as staff entry (R2.3, R2.5);
 * entered by the device, at the site its name names. */
void
vrs_site_h_vaccination(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct vrs_voucher line;
    struct voucher vo;
    struct resident r;
    struct vaccination v;
    struct site_device dev;
    const char *idem = json_object_get(req->body, "idempotency_key") != NULL
                           ? body_str(req, "idempotency_key") : NULL;
    enum vrs_rule rule = VRS_RULE_OK;
    enum store_status st;
    json_t *objects;

    memset(&r, 0, sizeof(r));
    memset(&v, 0, sizeof(v));
    site_vaccination_from_body(req, &v);
    if (vrs_tenant_open(req, resp, &ctx) != 0 ||
        site_voucher(req, resp, ctx, "vaccination.site_create", &line, &vo, &r) != 0 ||
        covid_vaccine(req, resp, v.vaccine) != 0)
        goto out;
    if (store_site_device_get(wenv(req)->store, req->tenant, req->user_id, &dev) != STORE_OK) {
        vrs_reply_unavailable(resp);
        goto out;
    }
    snprintf(v.site, sizeof(v.site), "%s", dev.name);
    snprintf(v.voucher_no, sizeof(v.voucher_no), "%s", vo.voucher_no);
    v.resident_id = r.id;
    if (vrs_check_vaccination(req, resp, ctx, &r, &v, 0, &rule) != 0) {
        if (rule != VRS_RULE_OK &&
            vrs_audit(req, "vaccination.site_create", "refused", vrs_rule_code(rule), NULL,
                      site_objects(r.id, vo.voucher_no), NULL) != 0)
            vrs_reply_audit_failed(resp);
        goto out;
    }
    if ((st = store_bulk_begin(ctx)) != STORE_OK ||
        (st = store_vaccination_insert(ctx, idem, &v, &v.id)) != STORE_OK) {
        if (st != STORE_OK)
            store_bulk_abort(ctx);
        if (st == STORE_EXISTS) {
            reply_error(resp, 422, vrs_rule_code(VRS_RULE_DOSE_DUPLICATE),
                        vrs_rule_message(VRS_RULE_DOSE_DUPLICATE, VRS_LANG_EN), "dose");
            add_message_ja(resp, vrs_rule_message(VRS_RULE_DOSE_DUPLICATE, VRS_LANG_JA));
        } else {
            vrs_reply_unavailable(resp);
        }
        goto out;
    }
    objects = site_objects(r.id, vo.voucher_no);
    json_array_append_new(objects, vrs_object_id("vaccination", v.id));
    if (vrs_commit_audited(req, resp, ctx, "vaccination.site_create", objects, NULL) != 0)
        goto out;
    reply_json(resp, 201, json_pack("{s:s,s:s,s:i,s:s}", "status", "recorded", "vaccine",
                                    v.vaccine, "dose", v.dose, "date", v.date));
out:
    store_resident_wipe(&r);
    util_wipe(&v, sizeof(v));
    store_tenant_ctx_close(ctx);
}
