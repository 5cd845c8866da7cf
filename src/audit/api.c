/*
 * api.c - the auditors' HTTP API over the audit log (R7.5).
 *
 * The worker side of a query: turn the validated parameters into one
 * IPC_AUDIT_QUERY for the signed-in auditor's tenant, gather the writer's
 * IPC_AUDIT_ROWS pages (every page is checked as hostile), record the
 * read as an audit event, and answer JSON or CSV.
 */
#include "audit/api.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/chain.h"
#include "audit/event.h"
#include "audit/query.h"
#include "common/log.h"
#include "common/util.h"
#include "http/reply.h"
#include "worker/worker.h"

#define DEFAULT_LIMIT    100
#define APPEND_MS        5000               /* the audit event's ack */
#define ASK_MARGIN_MS    5000               /* beyond the writer's own bound */
#define ANSWER_MAX_BYTES (32u * 1024u * 1024u)  /* all pages of one answer */

/* ---- validators (the route table's, R7.5) --------------------------------- */

static const char *
check_actor(const char *v)
{
    return audit_filter_check(AUDIT_FILTER_ACTOR, v);
}

static const char *
check_action(const char *v)
{
    return audit_filter_check(AUDIT_FILTER_ACTION, v);
}

static const char *
check_object(const char *v)
{
    return audit_filter_check(AUDIT_FILTER_OBJECT, v);
}

static const char *
check_outcome(const char *v)
{
    return audit_filter_check(AUDIT_FILTER_OUTCOME, v);
}

/* UTC ISO 8601: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or with six decimals
 * (the log's own form).  A date that does not exist (02-30) is refused:
 * the time must print back as it was written. */
const char *
audit_check_time(const char *v)
{
    static const char why[] = "must be a UTC time: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ "
                              "or YYYY-MM-DDTHH:MM:SS.uuuuuuZ";
    char back[AUDIT_TIME_LEN + 1];
    size_t n = strlen(v);
    int64_t us;

    if (audit_time_parse(v, &us) != 0 || us < 0)
        return why;
    audit_time_format(us, back);
    if (memcmp(back, v, 10) != 0 || (n > 10 && memcmp(back + 10, v + 10, 9) != 0))
        return why;
    return NULL;
}

const char *
audit_check_limit(const char *v)
{
    uint64_t n;

    return util_parse_u64(v, 1, AUDIT_QUERY_MAX_ROWS, &n) == 0 ? NULL
           : "must be a whole number from 1 to 1000";
}

static const char *
check_seq(const char *v)
{
    uint64_t n;

    return util_parse_u64(v, 0, INT64_MAX, &n) == 0 ? NULL : "must be a sequence number";
}

static const char *
check_format(const char *v)
{
    return strcmp(v, "json") == 0 || strcmp(v, "csv") == 0 ? NULL : "must be json or csv";
}

/* No tenant parameter: the tenant is the session's (R1.1); any other
 * name is refused by the router. */
const struct param_rule audit_events_params[] = {
    { "actor", 64, check_actor },
    { "action", 64, check_action },
    { "object", 80, check_object },
    { "outcome", 7, check_outcome },
    { "from", AUDIT_TIME_LEN, audit_check_time },
    { "to", AUDIT_TIME_LEN, audit_check_time },
    { "limit", 4, audit_check_limit },
    { "after_seq", 19, check_seq },
    { NULL, 0, NULL },
};

const struct param_rule audit_review_params[] = {
    { "user", 64, check_actor },
    { "from", AUDIT_TIME_LEN, audit_check_time },
    { "to", AUDIT_TIME_LEN, audit_check_time },
    { "format", 4, check_format },
    { NULL, 0, NULL },
};

/* ---- helpers ----------------------------------------------------------------- */

static void
bad_param(struct http_response *resp, const char *name, const char *why)
{
    char msg[160];

    snprintf(msg, sizeof(msg), "The query parameter %s %s.", name, why);
    reply_error(resp, 400, "invalid_parameter", msg, name);
}

static void
unavailable(struct http_response *resp)
{
    reply_error(resp, 503, "audit_unavailable",
                "The audit log cannot be searched now; nothing was read.", NULL);
}

/* from/to into the query (microseconds); to must be after from. */
static int
time_range(const struct http_request *req, struct http_response *resp, json_t *q)
{
    int64_t from = 0, to = 0;

    if (http_has_param(req, "from") &&
        (audit_time_parse(http_param(req, "from"), &from) != 0 ||
         json_object_set_new(q, "from_us", json_integer(from)) != 0))
        return -1;
    if (http_has_param(req, "to") &&
        (audit_time_parse(http_param(req, "to"), &to) != 0 ||
         json_object_set_new(q, "to_us", json_integer(to)) != 0))
        return -1;
    if (http_has_param(req, "from") && http_has_param(req, "to") && to <= from) {
        bad_param(resp, "to", "must be later than from");
        return -1;
    }
    return 0;
}

static int
wait_readable(int fd, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - audit_mono_ms();
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r;

        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* One IPC_AUDIT_ROWS page with IPC_F_MORE: {"part":P,"rows":[...]} for
 * a part we asked for; its rows are appended to lists[P]. */
static int
take_page(json_t *lists, const uint8_t *buf, size_t len)
{
    json_t *pg = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *list = json_object_get(lists, json_string_value(json_object_get(pg, "part")));
    json_t *rows = json_object_get(pg, "rows");
    int rc = -1;

    if (json_is_object(pg) && json_object_size(pg) == 2 && json_is_array(list) &&
        json_is_array(rows) && json_array_extend(list, rows) == 0)
        rc = 0;
    json_decref(pg);
    return rc;
}

/* Send one query on the worker's query channel and gather the answer:
 * pages of the lists named in `parts`, then the result, into which the
 * lists are put.  The channel is held (mutex) for the whole exchange;
 * pages of an earlier answer this worker gave up on are skipped by id.
 * 0 and *result (the caller's), or -1. */
static int
ask(struct worker_env *env, const json_t *query, int64_t budget_ms,
    const char *const *parts, json_t **result)
{
    struct ipc_chan *c = &env->audit_query;
    char *text = json_dumps(query, JSON_COMPACT);
    uint8_t *buf = malloc(IPC_MAX_PAYLOAD);
    json_t *lists = json_object();
    int64_t deadline = audit_mono_ms() + budget_ms + ASK_MARGIN_MS;
    size_t total = 0;
    struct timespec until;
    uint32_t id;
    int rc = -1;

    *result = NULL;
    if (text == NULL || buf == NULL || lists == NULL)
        goto out;
    for (const char *const *p = parts; *p != NULL; p++)
        json_object_set_new(lists, *p, json_array());
    /* Another request of this worker may hold the channel: wait for it
     * no longer than for the answer itself. */
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)((budget_ms + ASK_MARGIN_MS) / 1000);
    if (pthread_mutex_timedlock(&c->mu, &until) != 0) {
        log_warn("audit_query_busy", "the audit query channel stayed busy");
        goto out;
    }
    id = c->next_id++;
    if (c->next_id == 0)
        c->next_id = 1;
    if (ipc_send(c->fd, IPC_AUDIT_QUERY, id, 0, text, strlen(text)) != 0)
        goto unlock;
    for (;;) {
        struct ipc_hdr h;
        json_t *pg, *res;
        int r;

        if (wait_readable(c->fd, deadline) != 0 ||
            (r = ipc_recv(c->fd, &h, buf, IPC_MAX_PAYLOAD)) == 0)
            goto unlock;
        if (r < 0) {
            if (errno == EBADMSG)
                log_warn("ipc_refused", "malformed message on the audit query channel");
            goto unlock;
        }
        if (h.id != id)
            continue;
        if (h.type != IPC_AUDIT_ROWS || (total += h.len) > ANSWER_MAX_BYTES) {
            log_warn("audit_query_refused", "the audit writer answered %s",
                     ipc_type_name(h.type));
            goto unlock;
        }
        if (h.flags & IPC_F_MORE) {
            if (take_page(lists, buf, h.len) != 0) {
                log_warn("ipc_refused", "malformed page of an audit query answer");
                goto unlock;
            }
            continue;
        }
        pg = json_loadb((const char *)buf, h.len, JSON_REJECT_DUPLICATES, NULL);
        res = json_object_get(pg, "result");
        if (json_is_object(res) && json_object_update(res, lists) == 0) {
            *result = json_incref(res);
            rc = 0;
        }
        json_decref(pg);
        break;
    }
unlock:
    pthread_mutex_unlock(&c->mu);
out:
    free(text);
    free(buf);
    json_decref(lists);
    return rc;
}

/*
 * The read is on the record (R7.5, R7.1): who (actor, role, tenant,
 * terminal, source, session reference), the filters used and how many
 * rows.  Acknowledged once durable; -1 if not, and then nothing is
 * answered (fail closed).  Steals info.
 */
static int
record(const struct http_request *req, const char *action, bool ok, json_t *info)
{
    struct worker_env *env = req->env;
    json_t *ev = audit_event_new(action, ok ? AUDIT_SUCCESS : AUDIT_FAILURE);
    char hex[65], ref[5 + 65] = "hmac:", *text = NULL;
    uint8_t reply[64];
    struct ipc_hdr rh;
    int rc = -1;

    if (ev == NULL || audit_event_set(ev, AUDIT_F_TENANT, req->tenant) != 0 ||
        audit_event_set(ev, AUDIT_F_ACTOR, req->user_id) != 0 ||
        audit_event_set(ev, AUDIT_F_ROLE, auth_role_name(req->role)) != 0 ||
        (req->has_terminal && (util_hex_encode(req->terminal_fp, 32, hex, sizeof(hex)) != 0 ||
                               audit_event_set(ev, AUDIT_F_TERMINAL, hex) != 0)) ||
        (req->source[0] != '\0' && audit_event_set(ev, AUDIT_F_SOURCE, req->source) != 0) ||
        (!ok && audit_event_set(ev, AUDIT_F_REASON, "query_failed") != 0))
        goto out;
    /* the stored hash of the session token, never the token (R7.1) */
    if (util_hex_encode(req->session_hash, 32, ref + 5, sizeof(ref) - 5) != 0 ||
        json_object_set_new(ev, "session", json_string(ref)) != 0 ||
        (json_object_size(info) > 0 && json_object_set(ev, "info", info) != 0))
        goto out;
    text = audit_event_dump(ev);
    if (text != NULL &&
        ipc_call(&env->audit, IPC_AUDIT_APPEND, text, strlen(text), &rh, reply, sizeof(reply),
                 APPEND_MS) == 0 && rh.type == IPC_AUDIT_ACK)
        rc = 0;
out:
    if (rc != 0)
        log_error("audit_refused", "audit event %s not recorded: nothing answered", action);
    free(text);
    json_decref(ev);
    json_decref(info);
    return rc;
}

/* The parameters as the event's info, in the event schema's terms:
 * times and numbers as integers (from_us, to_us, limit, after_seq),
 * filters as filter_<name>, an action wildcard "ns.*" as its namespace. */
static json_t *
filters_info(const struct http_request *req, const char *const *names)
{
    json_t *info = json_object();
    char key[40];

    for (const char *const *n = names; info != NULL && *n != NULL; n++) {
        const char *v = http_param(req, *n);
        size_t len = strlen(v);
        int64_t us;
        uint64_t u;
        if (!http_has_param(req, *n))
            continue;
        if ((strcmp(*n, "from") == 0 || strcmp(*n, "to") == 0) &&
            audit_time_parse(v, &us) == 0) {
            snprintf(key, sizeof(key), "%s_us", *n);
            json_object_set_new(info, key, json_integer(us));
        } else if ((strcmp(*n, "limit") == 0 || strcmp(*n, "after_seq") == 0) &&
                   util_parse_u64(v, 0, INT64_MAX, &u) == 0) {
            json_object_set_new(info, *n, json_integer((json_int_t)u));
        } else if (strcmp(*n, "action") == 0 && len >= 2 && strcmp(v + len - 2, ".*") == 0) {
            char ns[72];
            snprintf(ns, sizeof(ns), "%.*s", (int)(len - 2), v);
            json_object_set_new(info, "filter_action_ns", json_string(ns));
        } else {
            snprintf(key, sizeof(key), "filter_%s", *n);
            json_object_set_new(info, key, json_string(v));
        }
    }
    return info;
}

/* ---- GET /v1/audit/events ------------------------------------------------------- */

void
audit_h_events(const struct http_request *req, struct http_response *resp)
{
    static const char *const filters[] = { "actor", "action", "object", "outcome", "from",
                                           "to", "after_seq", "limit", NULL };
    static const char *const parts[] = { "events", NULL };
    static const char *const pass[] = { "actor", "action", "object", "outcome", NULL };
    uint64_t limit = DEFAULT_LIMIT, after = 0;
    json_t *q, *res = NULL, *body, *info;
    bool ok;

    if ((http_has_param(req, "limit") &&
         util_parse_u64(http_param(req, "limit"), 1, AUDIT_QUERY_MAX_ROWS, &limit) != 0) ||
        (http_has_param(req, "after_seq") &&
         util_parse_u64(http_param(req, "after_seq"), 0, INT64_MAX, &after) != 0))
        return;                          /* the route's validators let neither through */
    /* The tenant is the session's, always (R1.1). */
    q = json_pack("{s:s,s:s,s:I,s:I}", "kind", "events", "tenant", req->tenant,
                  "limit", (json_int_t)limit, "after_seq", (json_int_t)after);
    for (const char *const *p = pass; q != NULL && *p != NULL; p++)
        if (http_has_param(req, *p))
            json_object_set_new(q, *p, json_string(http_param(req, *p)));
    if (q == NULL || time_range(req, resp, q) != 0) {
        json_decref(q);
        return;
    }
    ok = ask(req->env, q, AUDIT_QUERY_EVENTS_MS, parts, &res) == 0 &&
         json_is_array(json_object_get(res, "events"));
    json_decref(q);
    info = filters_info(req, filters);
    if (info != NULL && ok)
        json_object_set_new(info, "rows",
                            json_integer((json_int_t)json_array_size(json_object_get(res,
                                                                                   "events"))));
    if (record(req, "audit.query", ok, info) != 0 || !ok) {
        json_decref(res);
        if (ok)
            reply_error(resp, 503, "audit_unavailable",
                        "The audit log cannot record this read now; nothing was read.", NULL);
        else
            unavailable(resp);
        return;
    }
    /* Only what concerns this tenant: not the writer's scan counts. */
    body = json_pack("{s:s,s:O,s:I,s:O,s:O,s:O,s:O}", "tenant", req->tenant,
                     "events", json_object_get(res, "events"),
                     "count", (json_int_t)json_array_size(json_object_get(res, "events")),
                     "complete", json_object_get(res, "complete"),
                     "next_after_seq", json_object_get(res, "next_after_seq"),
                     "stopped_by", json_object_get(res, "stopped_by"),
                     "bounds", json_object_get(res, "bounds"));
    json_decref(res);
    if (body == NULL) {
        unavailable(resp);
        return;
    }
    reply_json(resp, 200, body);
}

/* ---- GET /v1/audit/review --------------------------------------------------------- */

/* records travel as [{"id","count"}]; the report has {id: count}. */
static int
records_object(json_t *report)
{
    json_t *rows = json_object_get(report, "records"), *obj = json_object(), *r;
    size_t i;

    if (obj == NULL || !json_is_array(rows))
        goto fail;
    json_array_foreach(rows, i, r) {
        const char *id = json_string_value(json_object_get(r, "id"));
        json_t *n = json_object_get(r, "count");
        if (id == NULL || !json_is_integer(n) || json_object_set(obj, id, n) != 0)
            goto fail;
    }
    return json_object_set_new(report, "records", obj);
fail:
    json_decref(obj);
    return -1;
}

static void
review_reply(const struct http_request *req, struct http_response *resp, json_t *rep)
{
    char *csv;
    size_t len;

    json_object_del(rep, "scanned");
    json_object_del(rep, "through_seq");
    json_object_del(rep, "next_after_seq");
    if (json_object_set_new(rep, "tenant", json_string(req->tenant)) != 0) {
        json_decref(rep);
        unavailable(resp);
        return;
    }
    if (strcmp(http_param(req, "format"), "csv") != 0) {
        reply_json(resp, 200, rep);
        return;
    }
    if (audit_review_csv(rep, &csv, &len) != 0) {
        json_decref(rep);
        unavailable(resp);
        return;
    }
    json_decref(rep);
    resp->status = 200;
    resp->raw = csv;
    resp->raw_len = len;
    resp->content_type = "text/csv; charset=utf-8";
}

void
audit_h_review(const struct http_request *req, struct http_response *resp)
{
    static const char *const filters[] = { "user", "from", "to", "format", NULL };
    static const char *const parts[] = { "records", "off_hours_entries", "failure_entries",
                                         "refusal_entries", NULL };
    json_t *q, *rep = NULL, *info;
    bool ok;

    if (!http_has_param(req, "user")) {
        bad_param(resp, "user", "is required");
        return;
    }
    q = json_pack("{s:s,s:s,s:s}", "kind", "review", "tenant", req->tenant,
                  "actor", http_param(req, "user"));
    if (q == NULL || time_range(req, resp, q) != 0) {
        json_decref(q);
        return;
    }
    ok = ask(req->env, q, AUDIT_QUERY_REVIEW_MS, parts, &rep) == 0 && records_object(rep) == 0;
    json_decref(q);
    info = filters_info(req, filters);
    if (info != NULL && ok)
        json_object_set_new(info, "complete",
                            json_integer(json_is_true(json_object_get(rep, "complete"))));
    if (record(req, "audit.review", ok, info) != 0 || !ok) {
        json_decref(rep);
        unavailable(resp);
        return;
    }
    /* A partial report would understate what someone did: refuse it. */
    if (!json_is_true(json_object_get(rep, "complete"))) {
        json_decref(rep);
        reply_error(resp, 422, "review_too_large", "The review did not finish within its "
                    "time bound; ask for a shorter period.", "from");
        return;
    }
    review_reply(req, resp, rep);
}
