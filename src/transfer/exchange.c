/*
 * exchange.c - the asking side, the local transport and the answering
 * side of a transfer inquiry (exchange.h, docs/transfer.md).
 */
#include "transfer/exchange.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/event.h"
#include "common/log.h"
#include "crypto/field.h"
#include "ref/lgcode.h"
#include "ref/mynumber.h"
#include "store/store_records.h"
#include "vrs/api.h"
#include "vrs/rules.h"

/* The answering side acts as the system, under its tenant's rules (R3.5). */
#define SYSTEM_ACTOR AUDIT_SYSTEM_ACTOR

const char *
transfer_status_code(enum transfer_status st)
{
    switch (st) {
    case TRANSFER_OK: return "ok";
    case TRANSFER_SAME_TENANT: return "same_municipality";
    case TRANSFER_NO_RESIDENT: return "unknown_resident";
    case TRANSFER_NO_CONSENT: return "consent_invalid";
    case TRANSFER_INVALID: return "invalid";
    case TRANSFER_AUDIT_FAILED: return "audit_unavailable";
    case TRANSFER_UNAVAILABLE: return "unavailable";
    }
    return "unavailable";
}

/* ---- audit ------------------------------------------------------------------------------ */

static void
set_str(json_t *ev, const char *k, const char *v)
{
    if (v != NULL && v[0] != '\0')
        json_object_set_new(ev, k, json_string(v));
}

/* Build and send one event; `objects` and `info` are stolen. */
static int
send_event(const struct transfer_env *env, json_t *ev, json_t *objects, json_t *info)
{
    int rc = -1;

    if (ev != NULL) {
        if (objects != NULL && json_array_size(objects) > 0)
            json_object_set(ev, "objects", objects);
        if (info != NULL && json_object_size(info) > 0)
            json_object_set(ev, "info", info);
        rc = env->audit != NULL ? env->audit(env->audit_arg, ev) : -1;
    }
    if (rc != 0)
        log_error("audit_refused", "audit event %s not recorded: operation refused",
                  json_string_value(json_object_get(ev, "action")));
    json_decref(ev);
    json_decref(objects);
    json_decref(info);
    return rc;
}

int
transfer_audit(const struct transfer_env *env, const struct transfer_actor *who,
               const char *action, const char *outcome, const char *reason,
               const char *subject, json_t *objects, json_t *info)
{
    json_t *ev = json_pack("{s:s,s:s}", "action", action, "outcome", outcome);

    if (ev != NULL) {
        set_str(ev, "tenant", who->tenant);
        set_str(ev, "actor", who->user);
        set_str(ev, "role", who->role);
        set_str(ev, "terminal", who->terminal);
        set_str(ev, "session", who->session);
        set_str(ev, "source", who->source);
        set_str(ev, "subject", subject);
        set_str(ev, "reason", reason);
    }
    return send_event(env, ev, objects, info);
}

/* An event of the answering side: the system acting for `tenant` (NULL
 * for a code that is no tenant: a platform event). */
static int
system_audit(const struct transfer_env *env, const char *action, const char *tenant,
             json_t *objects, json_t *info)
{
    json_t *ev = json_pack("{s:s,s:s,s:s}", "action", action, "outcome", "success",
                           "actor", SYSTEM_ACTOR);

    if (ev != NULL)
        set_str(ev, "tenant", tenant);
    return send_event(env, ev, objects, info);
}

static json_t *
object_id(const char *kind, const char *id)
{
    char s[80];

    snprintf(s, sizeof(s), "%s:%s", kind, id);
    return json_string(s);
}

int
transfer_subject_hash(const struct transfer_env *env, const char *tenant,
                      const char *mynumber, char out[70])
{
    static const char kind[] = "mynumber";
    struct tenant_key *ik = NULL;
    uint8_t sub[32], h[32];
    crypto_generichash_state s;
    int rc = -1;

    if (env->keys->index_key(env->keys->arg, tenant, &ik) != 0)
        return -1;
    /* The derivation of vrs/api.c subject_hash: subkey 1, "mamoriAU". */
    if (crypto_kdf_derive_from_key(sub, sizeof(sub), 1, "mamoriAU", ik->key) == 0 &&
        crypto_generichash_init(&s, sub, sizeof(sub), sizeof(h)) == 0 &&
        crypto_generichash_update(&s, (const uint8_t *)kind, sizeof(kind)) == 0 &&
        crypto_generichash_update(&s, (const uint8_t *)mynumber, strlen(mynumber)) == 0 &&
        crypto_generichash_final(&s, h, sizeof(h)) == 0) {
        memcpy(out, "hmac:", 5);
        rc = util_hex_encode(h, sizeof(h), out + 5, 65);
    }
    util_wipe(sub, sizeof(sub));
    util_wipe(&s, sizeof(s));
    tenant_key_free(ik);
    return rc;
}

/* ---- the asking side ---------------------------------------------------------------------- */

/* The person as the answering tenant indexes them.  For a code that is
 * no tenant the key holder has no key: a random one stands in, made the
 * same way (a guarded grant), so the message looks and costs the same
 * and matches nothing. */
static int
subject_for(const struct transfer_env *env, const char *to, const char *mynumber,
            uint8_t out[TRANSFER_SUBJECT_LEN])
{
    struct tenant_key *ik = NULL;
    int rc;

    if (env->keys->index_key(env->keys->arg, to, &ik) != 0) {
        uint8_t rnd[TENANT_KEY_BYTES];
        randombytes_buf(rnd, sizeof(rnd));
        rc = tenant_key_new(TENANT_KEY_INDEX, to, 1, rnd, &ik);
        util_wipe(rnd, sizeof(rnd));
        if (rc != 0)
            return -1;
    }
    rc = field_blind_index(ik, BIDX_MYNUMBER, mynumber, MYNUMBER_LEN, out);
    tenant_key_free(ik);
    return rc;
}

/* Is the consent usable today: for this affair, checked at most
 * TRANSFER_CONSENT_DAYS ago and not in the future (JST dates)? */
static bool
consent_current(const struct transfer_consent *c)
{
    char today[STORE_DATE_LEN];
    int32_t now, on;

    vrs_today(today);
    return strcmp(c->affair, TRANSFER_AFFAIR_VACCINATION) == 0 &&
        vrs_date_parse(today, &now) == 0 && vrs_date_parse(c->checked_on, &on) == 0 &&
        on <= now && now - on <= TRANSFER_CONSENT_DAYS;
}

static enum transfer_status
refuse(const struct transfer_env *env, const struct transfer_actor *who,
       enum transfer_status st, const char *subject)
{
    json_t *info = json_pack("{s:s}", "reason", transfer_status_code(st));

    if (transfer_audit(env, who, "transfer.inquire", "refused", transfer_status_code(st),
                       subject, NULL, info) != 0)
        return TRANSFER_AUDIT_FAILED;
    return st;
}

/* Check what the asking tenant holds itself: the receiving resident and
 * a current consent of this person (R3.1). */
static enum transfer_status
ask_checks(struct store_tenant *ctx, const struct transfer_actor *who,
           const struct transfer_request *rq, int64_t *rid)
{
    struct transfer_consent c;
    enum store_status st;

    if (strcmp(rq->prev_code, who->tenant) == 0)
        return TRANSFER_SAME_TENANT;
    st = store_resident_id(ctx, rq->address_no, rid);
    if (st == STORE_NOTFOUND || st == STORE_INVALID)
        return TRANSFER_NO_RESIDENT;
    if (st != STORE_OK)
        return TRANSFER_UNAVAILABLE;
    st = store_consent_get(ctx, rq->consent_id, rq->mynumber, &c);
    if (st == STORE_NOTFOUND || (st == STORE_OK && !consent_current(&c)))
        return TRANSFER_NO_CONSENT;
    return st == STORE_OK ? TRANSFER_OK : TRANSFER_UNAVAILABLE;
}

static json_t *
inquire_info(const struct transfer_inquiry *q, const char *job_id)
{
    json_t *info = json_pack("{s:s,s:s,s:s,s:s}", "to", q->to, "consent", q->consent,
                             "affair", q->affair,
                             "mode", q->mode == TRANSFER_BULK ? "bulk" : "single");

    if (info != NULL && job_id != NULL && job_id[0] != '\0')
        json_object_set_new(info, "job", json_string(job_id));
    return info;
}

/* Send and check that the answer is the answer to this inquiry. */
static int
exchange(const struct transfer_env *env, const struct transfer_inquiry *q,
         struct transfer_answer *a)
{
    char *text = transfer_inquiry_encode(q), *reply = NULL;
    const char *why = NULL;
    int rc = -1;

    if (text != NULL && env->send(env, text, strlen(text), &reply) == 0 &&
        transfer_answer_decode(reply, strlen(reply), a, &why) == 0 &&
        strcmp(a->reply_to, q->id) == 0 && strcmp(a->from, q->to) == 0 &&
        strcmp(a->to, q->from) == 0)
        rc = 0;
    else if (why != NULL)
        log_warn("transfer_answer_refused", "answer refused: %s", why);
    free(text);
    free(reply);
    return rc;
}

static void
record_of(const struct transfer_inquiry *q, const struct transfer_actor *who,
          const struct transfer_request *rq, int64_t rid, const struct transfer_answer *a,
          bool answered, struct transfer_inquiry_rec *r)
{
    memset(r, 0, sizeof(*r));
    memcpy(r->id, q->id, sizeof(r->id));
    memcpy(r->to_tenant, q->to, sizeof(r->to_tenant));
    memcpy(r->affair, q->affair, sizeof(r->affair));
    memcpy(r->consent_id, q->consent, sizeof(r->consent_id));
    r->resident_id = rid;
    snprintf(r->actor, sizeof(r->actor), "%s", who->user);
    snprintf(r->mode, sizeof(r->mode), "%s", q->mode == TRANSFER_BULK ? "bulk" : "single");
    snprintf(r->job_id, sizeof(r->job_id), "%s", rq->job_id != NULL ? rq->job_id : "");
    memcpy(r->sent_at, q->sent_at, sizeof(r->sent_at));
    if (answered)
        memcpy(r->answered_at, a->answered_at, sizeof(r->answered_at));
    else
        util_utc_now(r->answered_at);
    snprintf(r->outcome, sizeof(r->outcome), "%s",
             !answered ? "failed" : a->found ? "found" : "no_record");
    snprintf(r->items, sizeof(r->items), "%s", TRANSFER_ITEMS);
}

enum transfer_status
transfer_inquire(const struct transfer_env *env, struct store_tenant *ctx,
                 const struct transfer_actor *who, const struct transfer_request *rq,
                 struct transfer_outcome *out)
{
    struct transfer_inquiry q;
    struct transfer_inquiry_rec rec;
    char subject[70];
    bool has_subject, answered;
    enum transfer_status st;
    int64_t rid = 0;

    memset(out, 0, sizeof(*out));
    if (rq->prev_code == NULL || !lgcode_valid(rq->prev_code) || rq->mynumber == NULL ||
        !mynumber_valid(rq->mynumber) || rq->consent_id == NULL || rq->address_no == NULL ||
        strcmp(store_tenant_id(ctx), who->tenant) != 0)
        return TRANSFER_INVALID;
    has_subject = transfer_subject_hash(env, who->tenant, rq->mynumber, subject) == 0;
    if ((st = ask_checks(ctx, who, rq, &rid)) != TRANSFER_OK)
        return st == TRANSFER_UNAVAILABLE ? st : refuse(env, who, st, has_subject ? subject : NULL);

    memset(&q, 0, sizeof(q));
    transfer_new_id(q.id, TRANSFER_MSG_ID_HEX);
    memcpy(q.from, who->tenant, sizeof(q.from));
    memcpy(q.to, rq->prev_code, sizeof(q.to));
    snprintf(q.affair, sizeof(q.affair), "%s", TRANSFER_AFFAIR_VACCINATION);
    snprintf(q.consent, sizeof(q.consent), "%s", rq->consent_id);
    q.mode = rq->mode == TRANSFER_BULK ? TRANSFER_BULK : TRANSFER_SINGLE;
    util_utc_now(q.sent_at);
    if (subject_for(env, q.to, rq->mynumber, q.subject) != 0)
        return TRANSFER_UNAVAILABLE;

    /* Audited before anything leaves (R3.4, R7.1): who asks whom, about
     * whom (keyed hash), on which consent. */
    json_t *objects = json_pack("[o,o]", object_id("inquiry", q.id),
                                vrs_object_id("resident", rid));
    if (transfer_audit(env, who, "transfer.inquire", "success", NULL,
                       has_subject ? subject : NULL, objects, inquire_info(&q, rq->job_id)) != 0)
        return TRANSFER_AUDIT_FAILED;

    answered = exchange(env, &q, &out->answer) == 0;
    if (!answered)
        transfer_answer_none(&q, &out->answer);   /* nothing of an unchecked answer is kept */
    record_of(&q, who, rq, rid, &out->answer, answered, &rec);
    memcpy(out->inquiry_id, q.id, sizeof(out->inquiry_id));
    out->resident_id = rid;
    if (store_inquiry_add(ctx, rq->mynumber, &rec, &out->answer) != STORE_OK) {
        log_error("transfer_record_failed", "inquiry record not written");
        return TRANSFER_UNAVAILABLE;
    }
    return answered ? TRANSFER_OK : TRANSFER_UNAVAILABLE;
}

/* ---- the provider's bound (R3.3) ---------------------------------------------------------- */

#define BUCKETS 64

struct bucket {
    char            tenant[7];
    double          tokens;
    struct timespec last;
};

static pthread_mutex_t bucket_mu = PTHREAD_MUTEX_INITIALIZER;
static struct bucket buckets[BUCKETS];

static double
elapsed(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* Wait until `tenant` may answer one more bulk inquiry: a token bucket of
 * TRANSFER_PROVIDER_RATE per second, burst as large, per process. */
static void
provider_admit(const char *tenant)
{
    for (;;) {
        struct timespec now, pause;
        struct bucket *b = NULL, *oldest = &buckets[0];
        double wait;

        clock_gettime(CLOCK_MONOTONIC, &now);
        pthread_mutex_lock(&bucket_mu);
        for (size_t i = 0; i < BUCKETS && b == NULL; i++) {
            if (strcmp(buckets[i].tenant, tenant) == 0)
                b = &buckets[i];
            else if (elapsed(&buckets[i].last, &oldest->last) > 0)
                oldest = &buckets[i];
        }
        if (b == NULL) {
            b = oldest;
            memcpy(b->tenant, tenant, sizeof(b->tenant));
            b->tokens = TRANSFER_PROVIDER_RATE;
            b->last = now;
        }
        b->tokens += elapsed(&b->last, &now) * TRANSFER_PROVIDER_RATE;
        if (b->tokens > TRANSFER_PROVIDER_RATE)
            b->tokens = TRANSFER_PROVIDER_RATE;
        b->last = now;
        if (b->tokens >= 1.0) {
            b->tokens -= 1.0;
            pthread_mutex_unlock(&bucket_mu);
            return;
        }
        wait = (1.0 - b->tokens) / TRANSFER_PROVIDER_RATE;
        pthread_mutex_unlock(&bucket_mu);
        pause.tv_sec = 0;
        pause.tv_nsec = (long)(wait * 1e9) + 1000;
        nanosleep(&pause, NULL);
    }
}

/* ---- the answering side ------------------------------------------------------------------- */

static json_t *
provide_info(const struct transfer_inquiry *q, const struct transfer_answer *a)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "from", q->from, "consent", q->consent,
                     "affair", q->affair, "mode", q->mode == TRANSFER_BULK ? "bulk" : "single",
                     "result", a->found ? "found" : "no_record",
                     "items", "vaccine/dose/date", "doses", (json_int_t)a->n);
}

/* An event of the answering side written as the confirmation of its
 * record's transaction (store_confirm_fn): the record commits only once
 * the event is durable.  objects and info are stolen when it runs; the
 * caller drops what is left if it never did. */
struct confirm {
    const struct transfer_env *env;
    const char                *action;
    const char                *tenant;
    json_t                    *objects, *info;
};

static int
confirm_audit(void *arg)
{
    struct confirm *c = arg;
    int rc = system_audit(c->env, c->action, c->tenant, c->objects, c->info);

    c->objects = c->info = NULL;
    return rc;
}

static void
confirm_drop(struct confirm *c)
{
    json_decref(c->objects);
    json_decref(c->info);
}

/* No active tenant has this code.  The same steps as a no-match, so the
 * answer costs the same: two key requests (refused), the match statement
 * (finds nothing), one durable row (the operator's record of an
 * undeliverable message, nothing about the person) and one audit event
 * (a platform event: no tenant). */
static int
answer_absent(const struct transfer_env *env, const struct transfer_inquiry *q,
              struct transfer_answer *a)
{
    struct tenant_key *k = NULL;

    /* The key requests a tenant context makes; the key holder has none
     * for such a code (or, for a tenant being erased, still some: they
     * are dropped unused). */
    if (env->keys->index_key(env->keys->arg, q->to, &k) == 0)
        tenant_key_free(k);
    k = NULL;
    if (env->keys->current_key(env->keys->arg, q->to, &k) == 0)
        tenant_key_free(k);
    struct confirm c = { env, "transfer.undeliverable", NULL,
                         json_pack("[o]", object_id("inquiry", q->id)),
                         json_pack("{s:s,s:s}", "from", q->from, "to", q->to) };
    enum store_status st;

    transfer_answer_none(q, a);
    st = store_transfer_match_absent(env->store, q->to, q->subject);
    if (st == STORE_OK)
        st = store_undelivered_add(env->store, q->from, q->id, q->to, confirm_audit, &c);
    confirm_drop(&c);
    return st == STORE_OK ? 0 : -1;
}

static void
provision_of(const struct transfer_inquiry *q, const struct transfer_answer *a, int64_t rid,
             const char *received_at, struct transfer_provision *p)
{
    memset(p, 0, sizeof(*p));
    memcpy(p->id, a->id, sizeof(p->id));
    memcpy(p->inquiry_id, q->id, sizeof(p->inquiry_id));
    memcpy(p->from_tenant, q->from, sizeof(p->from_tenant));
    memcpy(p->affair, q->affair, sizeof(p->affair));
    memcpy(p->consent_ref, q->consent, sizeof(p->consent_ref));
    memcpy(p->subject, q->subject, sizeof(p->subject));
    p->resident_id = rid;
    snprintf(p->mode, sizeof(p->mode), "%s", q->mode == TRANSFER_BULK ? "bulk" : "single");
    memcpy(p->received_at, received_at, sizeof(p->received_at));
    memcpy(p->answered_at, a->answered_at, sizeof(p->answered_at));
    snprintf(p->outcome, sizeof(p->outcome), "%s", a->found ? "found" : "no_record");
    snprintf(p->items, sizeof(p->items), "%s", TRANSFER_ITEMS);
    p->doses = (int64_t)a->n;
}

/* Under the answering tenant's context only: match, then the provision
 * record and its audit event in one transaction (a provision the audit
 * log does not know of is never committed), then the answer. */
static int
answer_tenant(const struct transfer_env *env, struct store_tenant *ctx,
              const struct transfer_inquiry *q, const char *received_at,
              struct transfer_answer *a)
{
    struct transfer_provision p;
    struct confirm c = { env, "transfer.provide", q->to, NULL, NULL };
    int64_t rid = 0;
    enum store_status st;

    transfer_answer_none(q, a);
    if (store_transfer_match(ctx, q->subject, &rid, a) != STORE_OK)
        return -1;
    if (!a->found)
        rid = 0;
    provision_of(q, a, rid, received_at, &p);
    c.objects = json_pack("[o,o]", object_id("inquiry", q->id), object_id("answer", a->id));
    if (rid > 0)
        json_array_append_new(c.objects, vrs_object_id("resident", rid));
    c.info = provide_info(q, a);
    st = store_provision_add(ctx, &p, confirm_audit, &c);
    confirm_drop(&c);
    if (st != STORE_OK) {
        log_warn("transfer_provision_refused", "provision not recorded: %s",
                 st == STORE_EXISTS ? "inquiry answered before" : store_strerror(st));
        return -1;
    }
    return 0;
}

int
transfer_answer(const struct transfer_env *env, const char *text, size_t len, char **answer)
{
    struct transfer_inquiry q;
    struct transfer_answer a;
    struct store_tenant *ctx = NULL;
    char received_at[TRANSFER_TS_LEN];
    const char *why = NULL;
    enum store_status st;
    int rc;

    *answer = NULL;
    util_utc_now(received_at);
    if (transfer_inquiry_decode(text, len, &q, &why) != 0) {
        log_warn("transfer_inquiry_refused", "inquiry refused: %s", why);
        return -1;
    }
    if (q.mode == TRANSFER_BULK)
        provider_admit(q.to);
    st = store_tenant_ctx_open(env->store, q.to, env->keys, &ctx);
    if (st == STORE_DENIED)
        rc = answer_absent(env, &q, &a);
    else if (st == STORE_OK)
        rc = answer_tenant(env, ctx, &q, received_at, &a);
    else
        rc = -1;
    store_tenant_ctx_close(ctx);
    if (rc == 0 && (*answer = transfer_answer_encode(&a)) == NULL)
        rc = -1;
    util_wipe(&a, sizeof(a));
    return rc;
}

int
transfer_local_send(const struct transfer_env *env, const char *inquiry, size_t len,
                    char **answer)
{
    /* One server: the answering tenant's handler is called directly.
     * The bytes are the ones a hub would carry (docs/transfer.md). */
    return transfer_answer(env, inquiry, len, answer);
}
