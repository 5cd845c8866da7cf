/*
 * server.c - libmicrohttpd glue.
 *
 * Two libmicrohttpd traps shape this file:
 *  - it requests but never verifies client certificates, so each internal
 *    connection gets tls_require_client_cert() when it starts, before its
 *    handshake (see tls.c);
 *  - keep-alive silently stops unless the response is queued on the
 *    handler's second call or later, so every request answers only once
 *    its body (if any) has been consumed; only refusals that close the
 *    connection anyway (refuse(..., close=true)) are sent at once.
 *
 * Routes with a body_sink (large uploads, R2.6) never hold their body in
 * memory: everything that can be decided from the headers -- media type,
 * declared size, the session and its permission, the path and query --
 * is decided on the first call, and only then is the sink opened (its
 * open() may still refuse, from the headers too: sent at once, the body
 * unread); each chunk goes straight to it.  Whoever holds an open sink discards it:
 * the request state until the handler runs, the handler once it takes it
 * (http_request_take_upload), the request state again if it did not, and
 * the completion callback when the client went away mid-body.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/api.h"
#include "common/log.h"
#include "common/util.h"
#include "http/reply.h"
#include "tls/revoke.h"
#include "tls/tls.h"
#include "vrs/site.h"

struct http_server {
    struct MHD_Daemon *mhd;
    unsigned           listener;
    const struct route *routes;
    size_t             nroutes;
    void              *env;
    atomic_uint        inflight;
    atomic_bool        draining;
};

/* Per connection: the terminal identity, computed once. */
struct conn_state {
    bool    verifying;   /* the handshake was set to verify the client */
    bool    have_fp;
    uint8_t fp[TLS_FP_LEN];
};

/* How much of a refused chunked body is read (and dropped) so the client
 * still gets its answer. */
#define DISCARD_MAX ((size_t)1024 * 1024)

/* Per request. */
struct req_state {
    struct http_request  req;
    struct http_response resp;
    bool                 decided;   /* resp already holds an early error */
    char                *body;
    size_t               len, max;
    size_t               discarded;   /* bytes dropped after a refusal */
    void                *sink;        /* sink routes: opened, not yet handed over */
    struct timespec      start;
};

static const char *
listener_name(unsigned l)
{
    return l == LISTENER_INTERNAL ? "internal" : "public";
}

static void
mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char buf[256];

    (void)cls;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    log_event(LOG_LVL_DEBUG, "mhd", json_pack("{s:s}", "msg", buf));
}

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
              enum MHD_ConnectionNotificationCode code)
{
    struct http_server *s = cls;

    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        free(*socket_context);
        *socket_context = NULL;
        return;
    }
    struct conn_state *cs = calloc(1, sizeof(*cs));
    *socket_context = cs;
    if (cs != NULL && s->listener == LISTENER_INTERNAL) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        /* R8.1: the handshake itself must refuse a bad client certificate.
         * If that cannot be arranged, bind_terminal() refuses every request
         * of this connection (fail closed). */
        if (ci != NULL && tls_require_client_cert(ci->tls_session) == 0)
            cs->verifying = true;
        else
            log_error("tls_setup_failed", "cannot require a client certificate");
    }
}

static void
new_request_id(char out[17])
{
    uint8_t raw[8];

    randombytes_buf(raw, sizeof(raw));
    if (util_hex_encode(raw, sizeof(raw), out, 17) != 0)
        out[0] = '\0';
}

/* Bind an internal request to its terminal and refuse revoked ones (R6.2):
 * the revocation set is checked again on every request so a revocation
 * reaches connections that are already open. */
static int
bind_terminal(struct MHD_Connection *c, struct req_state *rs)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_state *cs = ci ? ci->socket_context : NULL;

    if (cs == NULL || !cs->verifying)
        return -1;
    if (!cs->have_fp) {
        ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        if (ci == NULL || tls_peer_fingerprint(ci->tls_session, cs->fp) != 0)
            return -1;
        cs->have_fp = true;
    }
    memcpy(rs->req.terminal_fp, cs->fp, TLS_FP_LEN);
    rs->req.has_terminal = true;
    return revoke_current_contains(cs->fp) ? -1 : 0;
}

static uint64_t
declared_length(struct MHD_Connection *c, bool *bad)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t n = 0;

    *bad = false;
    if (cl != NULL && util_parse_u64(cl, 0, UINT64_MAX, &n) != 0)
        *bad = true;
    return n;
}

/* The peer's IP address as text ("" if unknown): who is knocking, for
 * the audit log and the intrusion rules' temporary blocks (R7.4). */
static void
client_address(struct MHD_Connection *c, char *out, size_t outsz)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    out[0] = '\0';
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)outsz);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)outsz);
}

/* The request's Content-Type is `want`, optionally with parameters such
 * as charset=utf-8. */
static bool
content_type_is(struct MHD_Connection *c, const char *want)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = strlen(want);

    return ct != NULL && strncasecmp(ct, want, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static bool
json_content_type(struct MHD_Connection *c)
{
    return content_type_is(c, "application/json");
}

/* One of the media types a sink route declares. */
static bool
sink_content_type(struct MHD_Connection *c, const struct body_sink *k)
{
    for (const char *const *t = k->content_types; t != NULL && *t != NULL; t++)
        if (content_type_is(c, *t))
            return true;
    return false;
}

/* Session credentials (R6.5): "Authorization: Bearer <token>" for API
 * clients, else the mamori_session cookie; only copied here, checked by
 * auth_authorize() for routes that need a session. */
static void
take_credentials(struct MHD_Connection *c, struct req_state *rs)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_AUTHORIZATION);
    const char *cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "mamori_session");
    const char *csrf = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token");

    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 &&
        strlen(auth + 7) < sizeof(rs->req.token)) {
        snprintf(rs->req.token, sizeof(rs->req.token), "%s", auth + 7);
    } else if (cookie != NULL && strlen(cookie) < sizeof(rs->req.token)) {
        snprintf(rs->req.token, sizeof(rs->req.token), "%s", cookie);
        rs->req.token_from_cookie = true;
    }
    if (csrf != NULL && strlen(csrf) < sizeof(rs->req.csrf_header))
        snprintf(rs->req.csrf_header, sizeof(rs->req.csrf_header), "%s", csrf);
}

/* Each ?name=value of the request line, as libmicrohttpd decoded it;
 * router_validate decides which the route accepts. */
static enum MHD_Result
take_query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    if (key != NULL)
        router_add_query(cls, key, value);
    return MHD_YES;
}

/* Decide the response before the handler runs.  `close` refusals end the
 * connection and are sent at once, without reading the body. */
static void
refuse(struct req_state *rs, unsigned status, const char *code, const char *message,
       bool close)
{
    reply_error(&rs->resp, status, code, message, NULL);
    rs->resp.close = close;
    rs->decided = true;
}

static void
refuse_media_type(struct req_state *rs)
{
    refuse(rs, 415, "unsupported_media_type", "The body must be sent as application/json.",
           true);
}

static void
refuse_too_large(struct req_state *rs)
{
    refuse(rs, 413, "body_too_large", "The request body is larger than this path accepts.",
           true);
}

/* R6.6: the session's role against the route's permission, in the one
 * matrix (auth/perm.c); deny by default.  Site routes are bound to a
 * site device's token instead of a staff session, and nothing else
 * accepts a device token (R1.5, vrs/site.h).  0, or -1 with resp set. */
static int
authorize(struct req_state *rs)
{
    const struct route *r = rs->req.route;

    if (r->perm == PERM_SITE_SUBMIT)
        return vrs_site_authorize(&rs->req, &rs->resp);
    if (r->perm != PERM_ANONYMOUS)
        return auth_authorize(&rs->req, &rs->resp);
    return 0;
}

/* Give an open sink back to its route (wiped and freed there). */
static void
drop_sink(struct req_state *rs)
{
    if (rs->sink != NULL)
        rs->req.route->sink->discard(rs->sink);
    rs->sink = NULL;
}

/* Open the route's sink.  open() may refuse from the headers with an
 * answer of its own in resp (router.h: a missing parameter, a conflict, a
 * full queue with Retry-After); one that refuses without a 4xx/5xx error
 * gets the generic 503.  Either way nothing is open, and the refusal is
 * sent at once and closes the connection unread (R2.6). */
static void
open_sink(struct req_state *rs)
{
    if (rs->req.route->sink->open(&rs->req, &rs->resp, &rs->sink) == 0)
        return;
    rs->sink = NULL;                    /* a refusing open() left nothing open */
    if (rs->resp.status < 400 || rs->resp.status > 599 || rs->resp.body == NULL)
        refuse(rs, 503, "unavailable", "The upload cannot be stored now; try again later.",
               true);
    rs->resp.close = true;
    rs->decided = true;
}

/* First call of a sink route: every refusal that the headers allow is
 * made here, and all of them close the connection unread -- above all an
 * unauthenticated or unauthorized upload, which never gets a byte
 * spooled (R2.6, R6.6).  Only then is the sink opened, and its own
 * refusals from the headers (open_sink) are sent the same way. */
static void
begin_upload(struct MHD_Connection *c, struct req_state *rs, uint64_t clen, bool bad_len)
{
    const struct route *r = rs->req.route;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);

    if (!sink_content_type(c, r->sink)) {
        char msg[128];
        snprintf(msg, sizeof(msg), "The body must be sent as %s.", r->sink->content_types[0]);
        refuse(rs, 415, "unsupported_media_type", msg, true);
    } else if (bad_len) {
        refuse(rs, 400, "bad_request", "The Content-Length header is invalid.", true);
    } else if (clen > rs->max) {
        refuse_too_large(rs);
    } else if (cl != NULL && clen == 0) {
        refuse(rs, 400, "missing_body", "This request needs a body.", true);
    } else if (authorize(rs) != 0 || router_validate(r, NULL, 0, &rs->req, &rs->resp) != 0) {
        rs->resp.close = true;
        rs->decided = true;
    } else {
        open_sink(rs);
    }
}

/* A chunk of a sink route's body: within the limit, straight to the sink.
 * Any failure discards what was stored so far at once. */
static void
take_upload(struct req_state *rs, const char *data, size_t n)
{
    if (rs->decided)
        return;
    if (n > rs->max - rs->len) {
        drop_sink(rs);
        refuse_too_large(rs);
        return;
    }
    errno = 0;
    if (rs->req.route->sink->write(rs->sink, data, n) != 0) {
        bool full = errno == ENOSPC || errno == EDQUOT;

        drop_sink(rs);
        if (full)
            refuse(rs, 507, "insufficient_storage", "The server has no room to store this "
                   "upload now.", true);
        else
            refuse(rs, 503, "unavailable", "The upload could not be stored.", true);
        return;
    }
    rs->len += n;
}

/* First call: everything that can be decided from the headers. */
static void
begin_request(struct http_server *s, struct MHD_Connection *c, struct req_state *rs,
              const char *method, const char *url)
{
    char allow[64];
    bool bad_len;
    uint64_t clen;

    rs->req.listener = s->listener;
    rs->req.env = s->env;
    new_request_id(rs->req.request_id);
    client_address(c, rs->req.source, sizeof(rs->req.source));
    if (s->listener == LISTENER_INTERNAL && bind_terminal(c, rs) != 0) {
        refuse(rs, 403, "terminal_revoked",
               "This terminal's certificate is revoked or not valid.", true);
        return;
    }
    switch (router_match(s->routes, s->nroutes, method, url, s->listener, &rs->req,
                         allow, sizeof(allow))) {
    case ROUTE_NOT_FOUND:
        refuse(rs, 404, "not_found", "There is no such path.", false);
        return;
    case ROUTE_BAD_METHOD:
        refuse(rs, 405, "method_not_allowed", "This path does not accept that method.", false);
        snprintf(rs->resp.allow, sizeof(rs->resp.allow), "%s", allow);
        return;
    case ROUTE_FOUND:
        break;
    }
    take_credentials(c, rs);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, take_query_arg, &rs->req);
    rs->max = rs->req.route->max_body;
    clen = declared_length(c, &bad_len);
    if (rs->req.route->sink != NULL)
        begin_upload(c, rs, clen, bad_len);
    else if (clen > 0 && rs->req.route->fields != NULL && !json_content_type(c))
        refuse_media_type(rs);
    else if (bad_len)
        refuse(rs, 400, "bad_request", "The Content-Length header is invalid.", true);
    else if (clen > rs->max)
        refuse_too_large(rs);
}

/* Later calls with upload data: keep it within the route's limit. */
static void
take_body(struct MHD_Connection *c, struct req_state *rs, const char *data, size_t n)
{
    if (rs->decided)
        return;
    /* Chunked bodies carry no Content-Length: check the type here too. */
    if (rs->len == 0 && rs->req.route->fields != NULL && !json_content_type(c)) {
        refuse_media_type(rs);
        return;
    }
    if (n > rs->max - rs->len) {
        refuse_too_large(rs);
        return;
    }
    if (rs->body == NULL && (rs->body = malloc(rs->max)) == NULL) {
        refuse(rs, 503, "unavailable", "The server is out of memory.", false);
        return;
    }
    memcpy(rs->body + rs->len, data, n);
    rs->len += n;
}

static void
run_handler(struct req_state *rs)
{
    const struct route *r = rs->req.route;

    if (authorize(rs) != 0)
        return;
    if (router_validate(r, rs->body, rs->len, &rs->req, &rs->resp) != 0)
        return;
    rs->resp.status = 500;
    r->handler(&rs->req, &rs->resp);
    json_decref(rs->req.body);
    rs->req.body = NULL;
}

/* The whole body went to the sink (authorized and validated on the first
 * call): hand it to the handler, and discard it if the handler did not
 * take it. */
static void
run_upload_handler(struct req_state *rs)
{
    const struct route *r = rs->req.route;

    if (rs->len == 0) {
        drop_sink(rs);
        refuse(rs, 400, "missing_body", "This request needs a body.", false);
        return;
    }
    rs->req.upload = rs->sink;
    rs->sink = NULL;
    rs->resp.status = 500;
    r->handler(&rs->req, &rs->resp);
    if (rs->req.upload != NULL)
        r->sink->discard(rs->req.upload);
    rs->req.upload = NULL;
}

void *
http_request_take_upload(const struct http_request *req)
{
    struct http_request *w;
    void *u;

    if (req == NULL || req->upload == NULL)
        return NULL;
    /* A request with an upload is always the req member of a req_state
     * the server allocated (run_upload_handler): not a const object, so
     * writing through it is defined.  Handlers get it as const so that
     * this is the one field they can change. */
    w = (struct http_request *)(uintptr_t)req;
    u = w->upload;
    w->upload = NULL;
    return u;
}

static void
add_headers(struct MHD_Response *mr, const struct req_state *rs, bool draining)
{
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rs->resp.raw != NULL && rs->resp.content_type != NULL
                                ? rs->resp.content_type : "application/json; charset=utf-8");
    /* Responses may carry personal data: never cache them anywhere. */
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(mr, "Strict-Transport-Security", "max-age=31536000");
    MHD_add_response_header(mr, "X-Request-Id", rs->req.request_id);
    if (rs->resp.status == 405 && rs->resp.allow[0] != '\0')
        MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, rs->resp.allow);
    if (rs->resp.retry_after > 0) {
        char secs[16];
        snprintf(secs, sizeof(secs), "%u", rs->resp.retry_after);
        MHD_add_response_header(mr, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    for (size_t i = 0; i < sizeof(rs->resp.cookies) / sizeof(rs->resp.cookies[0]); i++)
        if (rs->resp.cookies[i][0] != '\0')
            MHD_add_response_header(mr, MHD_HTTP_HEADER_SET_COOKIE, rs->resp.cookies[i]);
    if (rs->resp.close || draining)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
}

static enum MHD_Result
send_response(struct http_server *s, struct MHD_Connection *c, struct req_state *rs)
{
    struct MHD_Response *mr;
    json_t *err = json_object_get(rs->resp.body, "error");
    char *text;
    size_t len;
    enum MHD_Result ret;

    if (rs->resp.raw != NULL && rs->resp.body == NULL) {
        /* A non-JSON body (a CSV report): libmicrohttpd frees it. */
        text = rs->resp.raw;
        len = rs->resp.raw_len;
    } else {
        free(rs->resp.raw);                /* an error replaced it */
        rs->resp.raw = NULL;
        if (json_is_object(err))
            json_object_set_new(err, "request_id", json_string(rs->req.request_id));
        text = rs->resp.body ? json_dumps(rs->resp.body, JSON_COMPACT) : NULL;
        if (text == NULL)
            text = strdup("{}");
        if (text == NULL)
            return MHD_NO;
        len = strlen(text);
    }
    mr = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (mr == NULL) {
        if (text != rs->resp.raw)          /* raw is freed with the request */
            free(text);
        return MHD_NO;
    }
    add_headers(mr, rs, atomic_load(&s->draining));
    rs->resp.raw = NULL;                   /* owned by the response now */
    ret = MHD_queue_response(c, rs->resp.status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size,
           void **req_cls)
{
    struct http_server *s = cls;
    struct req_state *rs = *req_cls;

    (void)version;
    if (rs == NULL) {
        rs = calloc(1, sizeof(*rs));
        if (rs == NULL)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rs->start);
        *req_cls = rs;
        atomic_fetch_add(&s->inflight, 1);
        begin_request(s, c, rs, method, url);
        /* A refusal that closes the connection is sent now, so a client
         * announcing a huge body is not read (or waited for) at all.
         * Everything else answers on a later call: keeps keep-alive. */
        if (rs->decided && rs->resp.close)
            return send_response(s, c, rs);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        if (rs->req.route != NULL && rs->req.route->sink != NULL)
            take_upload(rs, upload_data, n);
        else
            take_body(c, rs, upload_data, n);
        *upload_data_size = 0;
        /* A chunked body refused part-way is read and dropped, so the
         * client can still read the 413/415 (closing on unread data would
         * reset the connection) -- but only up to a bound: past it the
         * connection is cut without an answer. */
        if (rs->decided && rs->resp.close) {
            rs->discarded += n;
            if (rs->discarded > DISCARD_MAX)
                return MHD_NO;
        }
        return MHD_YES;
    }
    if (!rs->decided && rs->req.route->sink != NULL)
        run_upload_handler(rs);
    else if (!rs->decided)
        run_handler(rs);
    return send_response(s, c, rs);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct http_server *s = cls;
    struct req_state *rs = *req_cls;
    struct timespec now;

    (void)c;
    if (rs == NULL)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!log_enabled(LOG_LVL_INFO))
        goto done;
    /* The route *pattern* is logged, never the path: paths carry ids. */
    log_event(LOG_LVL_INFO, "request",
              json_pack("{s:s,s:s,s:i,s:s,s:f,s:b}",
                        "listener", listener_name(s->listener),
                        "route", rs->req.route ? rs->req.route->pattern : "-",
                        "status", (int)rs->resp.status,
                        "request_id", rs->req.request_id,
                        "ms", (double)(now.tv_sec - rs->start.tv_sec) * 1e3 +
                                  (double)(now.tv_nsec - rs->start.tv_nsec) / 1e6,
                        "completed", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK));
done:
    /* An upload cut off mid-body (or refused without an answer): its
     * sink still holds what arrived; nothing of it may outlive the
     * request (R2.6). */
    drop_sink(rs);
    /* the session token and CSRF value are credentials: wipe them */
    util_wipe(rs->req.token, sizeof(rs->req.token));
    util_wipe(rs->req.csrf_header, sizeof(rs->req.csrf_header));
    json_decref(rs->resp.body);
    json_decref(rs->req.body);
    free(rs->resp.raw);
    free(rs->body);
    free(rs);
    *req_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

int
http_server_start(const struct http_server_params *p, struct http_server **out)
{
    struct http_server *s = calloc(1, sizeof(*s));
    unsigned flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;

    if (s == NULL)
        return -1;
    s->listener = p->listener;
    s->routes = p->routes;
    s->nroutes = p->nroutes;
    s->env = p->env;
    atomic_init(&s->inflight, 0);
    atomic_init(&s->draining, false);
    s->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)p->listen_fd,
        MHD_OPTION_HTTPS_MEM_CERT, p->cert_pem,
        MHD_OPTION_HTTPS_MEM_KEY, p->key_pem,
        MHD_OPTION_HTTPS_PRIORITIES, p->priorities,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)p->threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)p->connection_timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)p->max_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL,
        p->trust_pem ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, p->trust_pem,
        MHD_OPTION_END);
    if (s->mhd == NULL) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void
http_server_quiesce(struct http_server *s)
{
    if (atomic_exchange(&s->draining, true))
        return;
    /* The listening socket is shared with other workers: keep it open. */
    (void)MHD_quiesce_daemon(s->mhd);
}

unsigned
http_server_inflight(const struct http_server *s)
{
    return atomic_load(&s->inflight);
}

void
http_server_stop(struct http_server *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->mhd);
    free(s);
}
