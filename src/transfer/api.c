/*
 * api.c - the staff HTTP API of transfer inquiries (api.h,
 * docs/transfer.md "HTTP API").
 */
#include "transfer/api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "http/reply.h"
#include "ref/lgcode.h"
#include "ref/mynumber.h"
#include "store/store_records.h"
#include "vrs/api.h"
#include "worker/audit_sink.h"
#include "worker/worker.h"

#define RECORDS_DEFAULT  100
#define RECORDS_MAX      500

/* ---- environment ------------------------------------------------------------------------ */

static void
env_of(struct worker_env *we, struct transfer_env *env)
{
    env->store = we->store;
    env->keys = &we->keys;
    env->audit = worker_audit_sink;
    env->audit_arg = we;
    env->send = transfer_local_send;    /* every tenant lives in this server */
}

int
transfer_worker_start(struct worker_env *we, struct transfer_runner **out)
{
    struct transfer_env env;
    char name[33];

    env_of(we, &env);
    snprintf(name, sizeof(name), "worker-%u.%ld", we->index, (long)getpid());
    return transfer_runner_start(&env, name, out);
}

/* The signed-in actor, as audit events carry them. */
static void
actor_of(const struct http_request *req, struct transfer_actor *who)
{
    memset(who, 0, sizeof(*who));
    memcpy(who->tenant, req->tenant, sizeof(who->tenant));
    snprintf(who->user, sizeof(who->user), "%s", req->user_id);
    who->role = auth_role_name(req->role);
    if (req->has_terminal &&
        util_hex_encode(req->terminal_fp, 32, who->terminal, sizeof(who->terminal)) != 0)
        who->terminal[0] = '\0';
    if (req->authed) {
        memcpy(who->session, "hmac:", 5);
        if (util_hex_encode(req->session_hash, 32, who->session + 5, 65) != 0)
            who->session[0] = '\0';
    }
    snprintf(who->source, sizeof(who->source), "%s", req->source);
}

static const char *
body_str(const struct http_request *req, const char *name)
{
    const char *s = json_string_value(json_object_get(req->body, name));

    return s ? s : "";
}

static int
open_ctx(const struct http_request *req, struct http_response *resp, struct store_tenant **ctx)
{
    const struct worker_env *we = req->env;

    if (store_tenant_ctx_open(we->store, req->tenant, &we->keys, ctx) == STORE_OK)
        return 0;
    vrs_reply_unavailable(resp);
    return -1;
}

static json_t *
obj_str(const char *kind, const char *id)
{
    char s[80];

    snprintf(s, sizeof(s), "%s:%s", kind, id);
    return json_string(s);
}

/* The change made on ctx's open bulk transaction is audited, then
 * committed (a change the log does not know of is never committed). */
static int
commit_audited(const struct transfer_env *env, const struct transfer_actor *who,
               struct http_response *resp, struct store_tenant *ctx, const char *action,
               const char *subject, json_t *objects, json_t *info)
{
    if (transfer_audit(env, who, action, "success", NULL, subject, objects, info) != 0) {
        store_bulk_abort(ctx);
        vrs_reply_audit_failed(resp);
        return -1;
    }
    if (store_bulk_commit(ctx) != STORE_OK) {
        log_error("transfer_commit_failed", "%s not committed after its audit event", action);
        vrs_reply_unavailable(resp);
        return -1;
    }
    return 0;
}

/* An audit event as the confirmation of a store write (store_confirm_fn):
 * the row commits only once the event is durable.  The object id is read
 * when the callback runs (the store sets it first). */
struct confirm {
    const struct transfer_env   *env;
    const struct transfer_actor *who;
    const char                  *action, *subject, *kind;
    const char                  *id;       /* points into the row being written */
    json_t                      *info;     /* stolen when the callback runs */
    bool                         refused;
};

static int
confirm_audit(void *arg)
{
    struct confirm *c = arg;
    json_t *info = c->info;

    c->info = NULL;
    c->refused = transfer_audit(c->env, c->who, c->action, "success", NULL, c->subject,
                                json_pack("[o]", obj_str(c->kind, c->id)), info) != 0;
    return c->refused ? -1 : 0;
}

/* A read of records is on the record before it is answered. */
static int
audit_read(const struct transfer_env *env, const struct transfer_actor *who,
           struct http_response *resp, const char *action, json_t *objects, json_t *info)
{
    if (transfer_audit(env, who, action, "success", NULL, NULL, objects, info) == 0)
        return 0;
    vrs_reply_audit_failed(resp);
    return -1;
}

/* ---- validators ----------------------------------------------------------------------- */

static const char *
check_lgcode(const char *v)
{
    if (strlen(v) != LGCODE_LEN)
        return "must be 6 digits";
    return lgcode_valid(v) ? NULL : "is not a valid local government code (check digit)";
}

/* R2.2: never repeats the value. */
static const char *
check_mynumber(const char *v)
{
    return mynumber_valid(v) ? NULL : "must be 12 digits with a valid check digit";
}

static const char *
check_ref(const char *v)
{
    return transfer_id_valid(v, TRANSFER_REF_HEX) ? NULL : "is not an id of this kind";
}

static const char *
check_msg_id(const char *v)
{
    return transfer_id_valid(v, TRANSFER_MSG_ID_HEX) ? NULL : "is not an inquiry id";
}

static const char *
check_address_no(const char *v)
{
    return store_addrno_ok(v) ? NULL : "must be 1 to 31 of the characters 0-9, A-Z, a-z and '-'";
}

/* 番号法第16条: how the person's number and identity were confirmed.
 * The codes are the combinations the law's ordinance allows at a
 * counter; docs/transfer.md lists them with their documents. */
static const char *const id_checks[] = {
    "mynumber_card",                    /* 個人番号カード (番号と身元を一枚で) */
    "notification_card_and_photo_id",   /* 通知カード + 運転免許証等 */
    "resident_record_and_photo_id",     /* 番号付き住民票の写し + 運転免許証等 */
    "register_and_photo_id",            /* 住民基本台帳で番号確認 + 運転免許証等 */
    "proxy",                            /* 代理人: 代理権 + 代理人の身元 + 本人の番号 */
};

static const char *
check_id_check(const char *v)
{
    for (size_t i = 0; i < sizeof(id_checks) / sizeof(id_checks[0]); i++)
        if (strcmp(v, id_checks[i]) == 0)
            return NULL;
    return "is not a known identity check (see docs/transfer.md)";
}

static const char *
check_affair(const char *v)
{
    return strcmp(v, TRANSFER_AFFAIR_VACCINATION) == 0 ? NULL : "is not an affair this "
        "system answers";
}

static const char *
check_side(const char *v)
{
    return strcmp(v, "inquiry") == 0 || strcmp(v, "provision") == 0 ? NULL
        : "must be inquiry or provision";
}

static const char *
check_before(const char *v)
{
    return strlen(v) == STORE_TS_LEN - 1 && v[4] == '-' && v[10] == 'T' &&
        v[STORE_TS_LEN - 2] == 'Z' ? NULL : "must be a time as the records give it";
}

static const char *
check_limit(const char *v)
{
    uint64_t n;

    return util_parse_u64(v, 1, RECORDS_MAX, &n) == 0 ? NULL : "must be 1 to 500";
}

static const char *
check_row_id(const char *v)
{
    uint64_t n;

    return util_parse_u64(v, 1, INT64_MAX, &n) == 0 ? NULL : "is not a record id";
}

const struct field_rule transfer_consent_fields[] = {
    { "mynumber", FIELD_STRING, true, 12, 12, 0, check_mynumber },
    { "id_check", FIELD_STRING, true, 1, STORE_XFER_CODE - 1, 0, check_id_check },
    { "checked_on", FIELD_STRING, true, 10, 10, 0, vrs_check_date },
    { "affair", FIELD_STRING, false, 1, 31, 0, check_affair },
    { NULL, 0, false, 0, 0, 0, NULL },
};

const struct field_rule transfer_inquiry_fields[] = {
    { "previous_municipality", FIELD_STRING, true, 6, 6, 0, check_lgcode },
    { "mynumber", FIELD_STRING, true, 12, 12, 0, check_mynumber },
    { "consent_id", FIELD_STRING, true, TRANSFER_REF_HEX, TRANSFER_REF_HEX, 0, check_ref },
    { "address_no", FIELD_STRING, true, 1, STORE_ADDRNO_MAX - 1, 0, check_address_no },
    { NULL, 0, false, 0, 0, 0, NULL },
};

const struct field_rule transfer_bulk_fields[] = {
    { "csv", FIELD_STRING, true, 1, 1024 * 1024, 0, NULL },
    { NULL, 0, false, 0, 0, 0, NULL },
};

const struct param_rule transfer_inquiry_params[] = {
    { "id", TRANSFER_MSG_ID_HEX, check_msg_id },
    { NULL, 0, NULL },
};

const struct param_rule transfer_job_params[] = {
    { "id", TRANSFER_REF_HEX, check_ref },
    { NULL, 0, NULL },
};

const struct param_rule transfer_resident_params[] = {
    { "id", 19, check_row_id },
    { NULL, 0, NULL },
};

const struct param_rule transfer_records_params[] = {
    { "side", 9, check_side },
    { "before", STORE_TS_LEN - 1, check_before },
    { "limit", 3, check_limit },
    { NULL, 0, NULL },
};

/* ---- consents (R3.1) ---------------------------------------------------------------------- */

void
transfer_h_consent(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *we = req->env;
    struct transfer_env env;
    struct transfer_actor who;
    struct transfer_consent c;
    struct store_tenant *ctx = NULL;
    char subject[70], today[STORE_DATE_LEN];
    const char *mn = body_str(req, "mynumber");
    bool has_subject;

    env_of(we, &env);
    actor_of(req, &who);
    memset(&c, 0, sizeof(c));
    snprintf(c.affair, sizeof(c.affair), "%s", TRANSFER_AFFAIR_VACCINATION);
    snprintf(c.id_check, sizeof(c.id_check), "%s", body_str(req, "id_check"));
    snprintf(c.checked_on, sizeof(c.checked_on), "%s", body_str(req, "checked_on"));
    snprintf(c.checked_by, sizeof(c.checked_by), "%s", req->user_id);
    vrs_today(today);
    if (strcmp(c.checked_on, today) > 0) {
        reply_error(resp, 400, "invalid_field", "The field checked_on is in the future.",
                    "checked_on");
        return;
    }
    if (open_ctx(req, resp, &ctx) != 0)
        return;
    has_subject = transfer_subject_hash(&env, req->tenant, mn, subject) == 0;
    struct confirm cf = { &env, &who, "transfer.consent", has_subject ? subject : NULL,
                          "consent", c.id, json_pack("{s:s,s:s}", "id_check", c.id_check,
                                                     "affair", c.affair), false };
    enum store_status st = store_consent_create(ctx, mn, &c, confirm_audit, &cf);
    json_decref(cf.info);
    if (st != STORE_OK && cf.refused)
        vrs_reply_audit_failed(resp);
    else if (st != STORE_OK)
        vrs_reply_unavailable(resp);
    else
        reply_json(resp, 201, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i}", "consent_id", c.id,
                                        "affair", c.affair, "id_check", c.id_check,
                                        "checked_on", c.checked_on, "checked_by",
                                        c.checked_by, "created_at", c.created_at,
                                        "valid_days", TRANSFER_CONSENT_DAYS));
    store_tenant_ctx_close(ctx);
}

/* ---- inquiries (R3.1, R3.2) ------------------------------------------------------------- */

static json_t *
history_json(const struct transfer_answer *a)
{
    json_t *h = json_array();

    for (size_t i = 0; h != NULL && i < a->n; i++)
        json_array_append_new(h, json_pack("{s:s,s:i,s:s}", "vaccine", a->doses[i].vaccine,
                                           "dose", a->doses[i].dose, "date",
                                           a->doses[i].date));
    return h;
}

/* The refusals of the asking side, in plain words; nothing about the
 * other tenant (R3.2). */
static void
reply_refused(struct http_response *resp, enum transfer_status st)
{
    switch (st) {
    case TRANSFER_SAME_TENANT:
        reply_error(resp, 400, "same_municipality",
                    "The previous municipality is this municipality.",
                    "previous_municipality");
        break;
    case TRANSFER_NO_RESIDENT:
        reply_error(resp, 404, "unknown_resident", "No resident has this address number.",
                    "address_no");
        break;
    case TRANSFER_NO_CONSENT:
        reply_error(resp, 422, "consent_invalid", "There is no current consent record of this "
                    "municipality for this person with this id (番号法第16条).", "consent_id");
        break;
    case TRANSFER_AUDIT_FAILED:
        vrs_reply_audit_failed(resp);
        break;
    default:
        /* Not "recorded": a store failure before sending, or the record's
         * own write failing, leaves none (only the audit event). */
        reply_error(resp, 503, "transfer_unavailable",
                    "The inquiry cannot be answered now; try again later.", NULL);
    }
}

void
transfer_h_inquire(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *we = req->env;
    struct transfer_env env;
    struct transfer_actor who;
    struct transfer_outcome *out = calloc(1, sizeof(*out));
    struct store_tenant *ctx = NULL;
    const struct transfer_request rq = {
        body_str(req, "previous_municipality"), body_str(req, "mynumber"),
        body_str(req, "consent_id"), body_str(req, "address_no"), TRANSFER_SINGLE, "" };

    if (out == NULL) {
        vrs_reply_unavailable(resp);
        return;
    }
    env_of(we, &env);
    actor_of(req, &who);
    if (open_ctx(req, resp, &ctx) == 0) {
        enum transfer_status st = transfer_inquire(&env, ctx, &who, &rq, out);
        if (st != TRANSFER_OK)
            reply_refused(resp, st);
        else
            /* One shape for both answers: a "no_record" says nothing of why. */
            reply_json(resp, 200, json_pack("{s:s,s:s,s:I,s:s,s:s,s:b,s:o}",
                                            "inquiry_id", out->inquiry_id,
                                            "previous_municipality", rq.prev_code,
                                            "resident_id", (json_int_t)out->resident_id,
                                            "outcome", out->answer.found ? "found" : "no_record",
                                            "items", TRANSFER_ITEMS,
                                            "complete", out->answer.complete,
                                            "history", history_json(&out->answer)));
        store_tenant_ctx_close(ctx);
    }
    util_wipe(out, sizeof(*out));
    free(out);
}

static json_t *
inquiry_json(const struct transfer_inquiry_rec *r, const struct transfer_answer *a)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:b}",
                          "inquiry_id", r->id, "previous_municipality", r->to_tenant,
                          "affair", r->affair, "consent_id", r->consent_id,
                          "resident_id", (json_int_t)r->resident_id, "actor", r->actor,
                          "mode", r->mode, "sent_at", r->sent_at,
                          "answered_at", r->answered_at, "outcome", r->outcome,
                          "items", r->items, "doses", (json_int_t)r->doses,
                          "registered", r->registered);

    if (o != NULL && a != NULL)
        json_object_set_new(o, "history", history_json(a));
    if (o != NULL && r->job_id[0] != '\0')
        json_object_set_new(o, "job_id", json_string(r->job_id));
    return o;
}

void
transfer_h_inquiry_get(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *we = req->env;
    struct transfer_env env;
    struct transfer_actor who;
    struct transfer_inquiry_rec r;
    struct transfer_answer *a = calloc(1, sizeof(*a));
    struct store_tenant *ctx = NULL;

    if (a == NULL) {
        vrs_reply_unavailable(resp);
        return;
    }
    env_of(we, &env);
    actor_of(req, &who);
    if (open_ctx(req, resp, &ctx) == 0) {
        enum store_status st = store_inquiry_get(ctx, http_param(req, "id"), &r, a);
        if (st == STORE_NOTFOUND)
            reply_error(resp, 404, "unknown_inquiry", "This municipality made no inquiry "
                        "with this id.", "id");
        else if (st != STORE_OK)
            vrs_reply_unavailable(resp);
        else if (audit_read(&env, &who, resp, "transfer.inquiry.read",
                            json_pack("[o]", obj_str("inquiry", r.id)), NULL) == 0)
            reply_json(resp, 200, inquiry_json(&r, a));
        store_tenant_ctx_close(ctx);
    }
    util_wipe(a, sizeof(*a));
    free(a);
}

/* ---- registering the earlier doses ---------------------------------------------------------- */

struct reg {
    json_t *done, *skipped, *objects;
};

/* Check one dose against the rules with what is recorded so far
 * (including the doses entered before it in this transaction). */
static enum vrs_rule
dose_rule(const struct http_request *req, struct store_tenant *ctx, const struct resident *r,
          const struct transfer_dose *d)
{
    struct vaccination *rec = NULL;
    struct vrs_dose *hist = NULL, prop = { d->vaccine, (unsigned)d->dose, d->date };
    struct vrs_resident_facts facts;
    struct vrs_verdict verdict = { VRS_RULE_BAD_CALL, NULL };
    size_t n = 0;
    enum vrs_rule rule = VRS_RULE_BAD_CALL;

    if (vrs_doses_of(ctx, r->id, &rec, &n) == STORE_OK &&
        (hist = calloc(n > 0 ? n : 1, sizeof(*hist))) != NULL) {
        char today[STORE_DATE_LEN];
        size_t nh = 0;
        for (size_t i = 0; i < n; i++)
            if (!rec[i].voided)
                hist[nh++] = (struct vrs_dose){ rec[i].vaccine, (unsigned)rec[i].dose,
                                                rec[i].date };
        vrs_resident_facts(r, &facts);
        vrs_today(today);
        rule = vrs_rules_check(vrs_catalogue_of(req), &prop, &facts, hist, nh, today, &verdict);
    }
    free(hist);
    free(rec);
    return rule;
}

static enum store_status
register_dose(const struct http_request *req, struct store_tenant *ctx,
              const struct resident *r, const struct transfer_inquiry_rec *q,
              const struct transfer_dose *d, struct reg *out)
{
    struct vaccination v;
    enum vrs_rule rule = dose_rule(req, ctx, r, d);
    json_t *o = json_pack("{s:s,s:i,s:s}", "vaccine", d->vaccine, "dose", d->dose,
                          "date", d->date);
    int64_t id = 0;
    enum store_status st = STORE_OK;

    if (rule != VRS_RULE_OK) {
        json_object_set_new(o, "reason", json_string(vrs_rule_code(rule)));
        json_array_append_new(out->skipped, o);
        return STORE_OK;
    }
    memset(&v, 0, sizeof(v));
    v.resident_id = r->id;
    snprintf(v.vaccine, sizeof(v.vaccine), "%s", d->vaccine);
    v.dose = d->dose;
    snprintf(v.date, sizeof(v.date), "%s", d->date);
    /* Where the dose came from: the previous municipality's answer. */
    snprintf(v.site, sizeof(v.site), "transfer:%s", q->to_tenant);
    snprintf(v.entered_by, sizeof(v.entered_by), "%s", req->user_id);
    st = store_vaccination_insert(ctx, NULL, &v, &id);
    if (st == STORE_OK) {
        char s[48];
        snprintf(s, sizeof(s), "vaccination:%lld", (long long)id);
        json_object_set_new(o, "vaccination_id", json_integer(id));
        json_array_append_new(out->done, o);
        json_array_append_new(out->objects, json_string(s));
    } else
        json_decref(o);
    return st;
}

void
transfer_h_register(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *we = req->env;
    struct transfer_env env;
    struct transfer_actor who;
    struct transfer_inquiry_rec q;
    struct transfer_answer *a = calloc(1, sizeof(*a));
    struct resident *r = calloc(1, sizeof(*r));
    struct store_tenant *ctx = NULL;
    struct reg out = { json_array(), json_array(), json_array() };
    enum store_status st = STORE_ERROR;

    env_of(we, &env);
    actor_of(req, &who);
    if (a == NULL || r == NULL || out.objects == NULL || open_ctx(req, resp, &ctx) != 0)
        goto out;
    st = store_inquiry_get(ctx, http_param(req, "id"), &q, a);
    if (st == STORE_NOTFOUND) {
        reply_error(resp, 404, "unknown_inquiry", "This municipality made no inquiry with "
                    "this id.", "id");
        goto out;
    }
    if (st == STORE_OK && (!a->found || q.registered)) {
        reply_error(resp, 409, q.registered ? "already_registered" : "nothing_to_register",
                    q.registered ? "The doses of this inquiry were entered before."
                                 : "The answer to this inquiry holds no doses.", "id");
        goto out;
    }
    if (st == STORE_OK)
        st = store_resident_get(ctx, q.resident_id, r);
    if (st == STORE_OK)
        st = store_bulk_begin(ctx);
    json_array_append_new(out.objects, obj_str("inquiry", q.id));
    for (size_t i = 0; st == STORE_OK && i < a->n; i++)
        st = register_dose(req, ctx, r, &q, &a->doses[i], &out);
    if (st == STORE_OK)
        st = store_inquiry_mark_registered(ctx, q.id);
    if (st != STORE_OK) {
        store_bulk_abort(ctx);
        vrs_reply_unavailable(resp);
        goto out;
    }
    if (commit_audited(&env, &who, resp, ctx, "transfer.register", NULL, json_incref(out.objects),
                       json_pack("{s:I,s:I}", "registered", (json_int_t)json_array_size(out.done),
                                 "skipped", (json_int_t)json_array_size(out.skipped))) == 0)
        reply_json(resp, 200, json_pack("{s:s,s:O,s:O}", "inquiry_id", q.id,
                                        "registered", out.done, "skipped", out.skipped));
out:
    store_tenant_ctx_close(ctx);
    if (r != NULL)
        store_resident_wipe(r);
    free(r);
    if (a != NULL)
        util_wipe(a, sizeof(*a));
    free(a);
    json_decref(out.done);
    json_decref(out.skipped);
    json_decref(out.objects);
}

/* ---- records (R3.4, R9.5) ----------------------------------------------------------------- */

static int
record_row(const struct transfer_record *r, void *arg)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I}",
                          "side", r->side, "id", r->id, "inquiry_id", r->inquiry_id,
                          strcmp(r->side, "inquiry") == 0 ? "asked" : "asked_by",
                          r->other_tenant, "affair", r->affair, "consent_id", r->consent,
                          "mode", r->mode, "at", r->at, "outcome", r->outcome,
                          "doses", (json_int_t)r->doses);

    if (o == NULL)
        return 1;
    json_object_set_new(o, "items", json_string(r->items));
    if (r->resident_id > 0)
        json_object_set_new(o, "resident_id", json_integer(r->resident_id));
    if (r->actor[0] != '\0')
        json_object_set_new(o, "actor", json_string(r->actor));
    if (r->job_id[0] != '\0')
        json_object_set_new(o, "job_id", json_string(r->job_id));
    return json_array_append_new(arg, o) != 0;
}

void
transfer_h_records(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *we = req->env;
    struct transfer_env env;
    struct transfer_actor who;
    struct store_tenant *ctx = NULL;
    const char *side = http_param(req, "side");
    unsigned sides = strcmp(side, "inquiry") == 0 ? STORE_XFER_INQUIRIES
                   : strcmp(side, "provision") == 0 ? STORE_XFER_PROVISIONS
                   : STORE_XFER_INQUIRIES | STORE_XFER_PROVISIONS;
    uint64_t limit = RECORDS_DEFAULT;
    json_t *list = json_array();

    if (http_has_param(req, "limit") &&
        util_parse_u64(http_param(req, "limit"), 1, RECORDS_MAX, &limit) != 0)
        limit = RECORDS_DEFAULT;                /* validated already */
    env_of(we, &env);
    actor_of(req, &who);
    if (list != NULL && open_ctx(req, resp, &ctx) == 0) {
        if (store_transfer_records(ctx, sides, 0, http_param(req, "before"), (size_t)limit,
                                   record_row, list) != STORE_OK)
            vrs_reply_unavailable(resp);
        else if (audit_read(&env, &who, resp, "transfer.records.read", NULL,
                            json_pack("{s:I}", "records", (json_int_t)json_array_size(list)))
                 == 0)
            reply_json(resp, 200, json_pack("{s:O}", "records", list));
        store_tenant_ctx_close(ctx);
    } else if (list == NULL)
        vrs_reply_unavailable(resp);
    json_decref(list);
}

/* R9.5: who asked for this person's data (and what this municipality
 * asked others about them), for a disclosure request. */
void
transfer_h_disclosures(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *we = req->env;
    struct transfer_env env;
    struct transfer_actor who;
    struct store_tenant *ctx = NULL;
    struct resident *r = calloc(1, sizeof(*r));
    uint64_t id = 0;
    json_t *list = json_array();
    enum store_status st;
    char obj[48];

    env_of(we, &env);
    actor_of(req, &who);
    if (r == NULL || list == NULL ||
        util_parse_u64(http_param(req, "id"), 1, INT64_MAX, &id) != 0) {
        vrs_reply_unavailable(resp);
        goto out;
    }
    if (open_ctx(req, resp, &ctx) != 0)
        goto out;
    st = store_resident_get(ctx, (int64_t)id, r);
    if (st == STORE_NOTFOUND)
        reply_error(resp, 404, "unknown_resident", "No resident of this municipality has "
                    "this id.", "id");
    else if (st != STORE_OK || store_transfer_records(ctx, STORE_XFER_INQUIRIES |
                                                      STORE_XFER_PROVISIONS, (int64_t)id, "",
                                                      RECORDS_MAX, record_row, list) != STORE_OK)
        vrs_reply_unavailable(resp);
    else {
        snprintf(obj, sizeof(obj), "resident:%llu", (unsigned long long)id);
        if (audit_read(&env, &who, resp, "transfer.disclosure", json_pack("[s]", obj),
                       json_pack("{s:I}", "records", (json_int_t)json_array_size(list))) == 0)
            reply_json(resp, 200, json_pack("{s:I,s:O}", "resident_id", (json_int_t)id,
                                            "records", list));
    }
out:
    store_tenant_ctx_close(ctx);
    if (r != NULL)
        store_resident_wipe(r);
    free(r);
    json_decref(list);
}

/* ---- bulk (R3.3) ----------------------------------------------------------------------------- */

void
transfer_h_bulk(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *we = req->env;
    struct transfer_env env;
    struct transfer_actor who;
    struct store_tenant *ctx = NULL;
    struct transfer_job_row *rows = NULL;
    struct transfer_job job;
    json_t *csv = json_object_get(req->body, "csv");
    size_t n = 0, line = 0, invalid = 0;
    char err[160];

    env_of(we, &env);
    actor_of(req, &who);
    if (transfer_bulk_parse(json_string_value(csv), json_string_length(csv), &rows, &n, err,
                            sizeof(err), &line) != 0) {
        char msg[200];
        if (line > 0)
            snprintf(msg, sizeof(msg), "Line %zu: %s", line, err);
        else
            snprintf(msg, sizeof(msg), "%s", err);
        reply_error(resp, 400, "invalid_file", msg, "csv");
        return;
    }
    for (size_t i = 0; i < n; i++)
        invalid += rows[i].outcome[0] != '\0';
    memset(&job, 0, sizeof(job));
    snprintf(job.actor, sizeof(job.actor), "%s", req->user_id);
    snprintf(job.role, sizeof(job.role), "%s", auth_role_name(req->role));
    if (open_ctx(req, resp, &ctx) == 0) {
        struct confirm cf = { &env, &who, "transfer.bulk", NULL, "job", job.id,
                              json_pack("{s:I,s:I}", "rows", (json_int_t)n,
                                        "invalid_rows", (json_int_t)invalid), false };
        enum store_status st = store_job_create(ctx, &job, rows, n, confirm_audit, &cf);
        json_decref(cf.info);
        if (st == STORE_EXISTS) {
            reply_error(resp, 409, "job_in_progress", "This municipality has a bulk inquiry "
                        "queued or running; one runs at a time.", NULL);
        } else if (st != STORE_OK && cf.refused) {
            vrs_reply_audit_failed(resp);
        } else if (st != STORE_OK) {
            vrs_reply_unavailable(resp);
        } else {
            transfer_runner_wake();
            reply_json(resp, 202, json_pack("{s:s,s:s,s:I,s:I,s:i}", "job_id", job.id,
                                            "state", job.state, "rows", (json_int_t)n,
                                            "invalid_rows", (json_int_t)invalid,
                                            "rate_per_second", TRANSFER_JOB_RATE));
        }
        store_tenant_ctx_close(ctx);
    }
    util_wipe(rows, n * sizeof(*rows));
    free(rows);
}

struct job_view {
    json_t *rows, *counts;
};

static int
job_row(const struct transfer_job_row *r, void *arg)
{
    struct job_view *v = arg;
    const char *outcome = r->outcome[0] ? r->outcome : "pending";
    json_t *o = json_pack("{s:I,s:s,s:I}", "row", (json_int_t)r->row_no, "outcome", outcome,
                          "doses", (json_int_t)r->doses);

    if (o == NULL)
        return 1;
    if (r->prev_code[0])
        json_object_set_new(o, "previous_municipality", json_string(r->prev_code));
    if (r->address_no[0])
        json_object_set_new(o, "address_no", json_string(r->address_no));
    if (r->consent_id[0])
        json_object_set_new(o, "consent_id", json_string(r->consent_id));
    if (r->inquiry_id[0])
        json_object_set_new(o, "inquiry_id", json_string(r->inquiry_id));
    json_object_set_new(v->counts, outcome,
                        json_integer(json_integer_value(json_object_get(v->counts, outcome)) + 1));
    return json_array_append_new(v->rows, o) != 0;
}

void
transfer_h_job(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *we = req->env;
    struct transfer_env env;
    struct transfer_actor who;
    struct store_tenant *ctx = NULL;
    struct transfer_job job;
    struct job_view v = { json_array(), json_object() };
    enum store_status st;

    env_of(we, &env);
    actor_of(req, &who);
    if (v.rows == NULL || v.counts == NULL)
        vrs_reply_unavailable(resp);
    else if (open_ctx(req, resp, &ctx) == 0) {
        st = store_job_get(ctx, http_param(req, "id"), &job);
        if (st == STORE_OK)
            st = store_job_rows(ctx, job.id, job_row, &v);
        if (st == STORE_NOTFOUND)
            reply_error(resp, 404, "unknown_job", "This municipality has no bulk inquiry with "
                        "this id.", "id");
        else if (st != STORE_OK)
            vrs_reply_unavailable(resp);
        else if (audit_read(&env, &who, resp, "transfer.job.read",
                            json_pack("[o]", obj_str("job", job.id)), NULL) == 0)
            reply_json(resp, 200, json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s?,s:s?,s:O,s:O}",
                                            "job_id", job.id, "state", job.state,
                                            "actor", job.actor,
                                            "rows_total", (json_int_t)job.rows_total,
                                            "rows_done", (json_int_t)job.rows_done,
                                            "created_at", job.created_at,
                                            "started_at", job.started_at[0] ? job.started_at
                                                                            : NULL,
                                            "finished_at", job.finished_at[0] ? job.finished_at
                                                                              : NULL,
                                            "outcomes", v.counts, "rows", v.rows));
        store_tenant_ctx_close(ctx);
    }
    json_decref(v.rows);
    json_decref(v.counts);
}

void
transfer_h_job_result(const struct http_request *req, struct http_response *resp)
{
    struct worker_env *we = req->env;
    struct transfer_env env;
    struct transfer_actor who;
    struct store_tenant *ctx = NULL;
    char *csv = NULL;
    size_t len = 0;
    enum store_status st;

    env_of(we, &env);
    actor_of(req, &who);
    if (open_ctx(req, resp, &ctx) != 0)
        return;
    st = transfer_job_result_csv(ctx, http_param(req, "id"), &csv, &len);
    if (st == STORE_NOTFOUND)
        reply_error(resp, 404, "unknown_job", "This municipality has no bulk inquiry with this "
                    "id.", "id");
    else if (st != STORE_OK)
        vrs_reply_unavailable(resp);
    else if (audit_read(&env, &who, resp, "transfer.job.result",
                        json_pack("[o]", obj_str("job", http_param(req, "id"))), NULL) == 0) {
        resp->status = 200;
        resp->raw = csv;
        resp->raw_len = len;
        resp->content_type = "text/csv; charset=utf-8";
        csv = NULL;
    }
    free(csv);
    store_tenant_ctx_close(ctx);
}
