/*
 * test_http_upload.c - streamed request bodies (body_sink routes, R2.6)
 * through the real server (src/http/server.c) in this process, over TLS
 * on loopback, with a route table of its own and a counting test sink.
 *
 * What it shows: an unauthenticated upload is refused before the sink is
 * even opened (R6.6); a sink's open() that refuses from the headers gets
 * its own status, message and Retry-After sent before any of the body is
 * read, the connection closed (R2.6); a wrong or missing Content-Type is 415; a body over
 * the limit is 413 whether declared or chunked; an empty body is 400; a
 * failing sink is 503, or 507 when the disk is full; a client that goes
 * away mid-body has its sink discarded; a complete upload reaches the
 * handler exactly once, whole, and is discarded by the server if the
 * handler does not take it.  JSON routes beside it are untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "config/config.h"
#include "http/reply.h"
#include "http/server.h"
#include "pki/pki.h"

#define MAX_UP ((size_t)256 * 1024)
#define MAX_BIG ((size_t)1 << 30)       /* /up/big: as large as an import may be */

/* ---- the test sink: counts everything, hashes what it is given ----------- */

static atomic_int n_open, n_write, n_discard, n_taken, n_handled;
static atomic_ullong n_bytes;

enum fail_mode { FAIL_NONE = 0, FAIL_WRITE, FAIL_NOSPC };

struct t_sink {
    enum fail_mode               fail;
    uint64_t                     bytes;
    crypto_generichash_state     h;
};

/* Retry-After of the test sink's "busy" refusal. */
#define T_RETRY_AFTER 7u

static int
t_open(const struct http_request *req, struct http_response *resp, void **sink)
{
    const char *fail = http_param(req, "fail");
    struct t_sink *k;

    atomic_fetch_add(&n_open, 1);
    if (strcmp(fail, "open") == 0)          /* refuses without an answer: the server's 503 */
        return -1;
    if (strcmp(fail, "conflict") == 0) {    /* its own answer */
        reply_error(resp, 409, "t_conflict", "The test sink refuses this upload.", NULL);
        return -1;
    }
    if (strcmp(fail, "busy") == 0) {        /* its own answer, with a Retry-After */
        reply_error(resp, 503, "t_busy", "The test sink is busy.", NULL);
        resp->retry_after = T_RETRY_AFTER;
        return -1;
    }
    if (strcmp(fail, "notanerror") == 0) {  /* a refusal that is no error: fail closed */
        resp->status = 200;
        return -1;
    }
    if ((k = calloc(1, sizeof(*k))) == NULL)
        return -1;
    k->fail = strcmp(fail, "write") == 0 ? FAIL_WRITE
            : strcmp(fail, "nospc") == 0 ? FAIL_NOSPC : FAIL_NONE;
    crypto_generichash_init(&k->h, NULL, 0, 32);
    *sink = k;
    return 0;
}

static int
t_write(void *sink, const void *data, size_t n)
{
    struct t_sink *k = sink;

    atomic_fetch_add(&n_write, 1);
    if (k->fail == FAIL_WRITE) {
        errno = EIO;
        return -1;
    }
    if (k->fail == FAIL_NOSPC) {
        errno = ENOSPC;
        return -1;
    }
    crypto_generichash_update(&k->h, data, n);
    k->bytes += n;
    atomic_fetch_add(&n_bytes, n);
    return 0;
}

static void
t_discard(void *sink)
{
    atomic_fetch_add(&n_discard, 1);
    free(sink);
}

static const char *const t_types[] = { "text/csv", "application/octet-stream", NULL };
static const struct body_sink t_sink = { t_types, t_open, t_write, t_discard };

/* ---- handlers ------------------------------------------------------------- */

/* Takes the upload (exactly once: a second take gets nothing) and answers
 * its size and hash; frees it itself, so n_discard stays 0. */
static void
h_take(const struct http_request *req, struct http_response *resp)
{
    struct t_sink *k = http_request_take_upload(req);
    uint8_t h[32];
    char hex[65];

    atomic_fetch_add(&n_handled, 1);
    if (k == NULL) {
        reply_error(resp, 500, "no_upload", "The handler got no upload.", NULL);
        return;
    }
    atomic_fetch_add(&n_taken, 1);
    if (http_request_take_upload(req) != NULL) {
        reply_error(resp, 500, "twice", "The upload was handed over twice.", NULL);
        free(k);
        return;
    }
    crypto_generichash_final(&k->h, h, sizeof(h));
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    reply_json(resp, 200, json_pack("{s:I,s:s}", "bytes", (json_int_t)k->bytes, "hash", hex));
    free(k);
}

/* Looks and leaves it: the server must discard it. */
static void
h_leave(const struct http_request *req, struct http_response *resp)
{
    atomic_fetch_add(&n_handled, 1);
    reply_json(resp, 202, json_pack("{s:b}", "has_upload", req->upload != NULL));
}

static void
h_json(const struct http_request *req, struct http_response *resp)
{
    reply_json(resp, 200, json_pack("{s:s}", "a", json_string_value(json_object_get(req->body, "a"))));
}

static const char *
check_fail(const char *v)
{
    static const char *const known[] = { "open", "write", "nospc", "conflict", "busy",
                                         "notanerror", NULL };

    for (const char *const *k = known; *k != NULL; k++)
        if (strcmp(v, *k) == 0)
            return NULL;
    return "is not a failure this test knows";
}

static const struct param_rule fail_rule[] = {
    { "fail", 12, check_fail },
    { NULL, 0, NULL },
};

static const struct field_rule a_field[] = {
    { "a", FIELD_STRING, true, 1, 8, 0, NULL },
    { NULL, 0, false, 0, 0, 0, NULL },
};

static const struct route t_routes[] = {
    { "POST", "/up", LISTENER_PUBLIC, PERM_ANONYMOUS, MAX_UP, fail_rule, NULL, h_take,
      &t_sink },
    /* R6.6: needs a staff session, which the public listener never has */
    { "POST", "/up/secure", LISTENER_PUBLIC, PERM_RESIDENT_WRITE, MAX_UP, NULL, NULL, h_take,
      &t_sink },
    { "POST", "/up/big", LISTENER_PUBLIC, PERM_ANONYMOUS, MAX_BIG, fail_rule, NULL, h_take,
      &t_sink },
    { "POST", "/up/leave", LISTENER_PUBLIC, PERM_ANONYMOUS, MAX_UP, NULL, NULL, h_leave,
      &t_sink },
    { "POST", "/json", LISTENER_PUBLIC, PERM_ANONYMOUS, 1024, NULL, a_field, h_json, NULL },
};

/* ---- the server ----------------------------------------------------------- */

static struct http_server *srv;
static char *cert_pem, *key_pem;
static unsigned short port;

static int
setup(void **state)
{
    const char *ips[] = { "127.0.0.1", NULL };
    time_t now = time(NULL);
    struct pki_spec spec = { .kind = PKI_KIND_SERVER, .common_name = "127.0.0.1",
                             .not_before = now - 60, .not_after = now + 3600,
                             .ip_addrs = ips };
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t salen = sizeof(sa);
    struct http_server_params p;
    int fd;

    (void)state;
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0 ||
        pki_issue(&spec, NULL, &cert_pem, &key_pem) != 0)
        return -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &salen) != 0)
        return -1;
    port = ntohs(sa.sin_port);
    memset(&p, 0, sizeof(p));
    p.listener = LISTENER_PUBLIC;
    p.listen_fd = fd;
    p.cert_pem = cert_pem;
    p.key_pem = key_pem;
    p.priorities = CONFIG_DEFAULT_PRIORITIES;
    p.threads = 2;
    p.connection_timeout = 10;
    p.max_connections = 16;
    p.routes = t_routes;
    p.nroutes = sizeof(t_routes) / sizeof(t_routes[0]);
    return http_server_start(&p, &srv);
}

static int
teardown(void **state)
{
    (void)state;
    http_server_stop(srv);
    free(cert_pem);
    pki_free_secret(key_pem);
    curl_global_cleanup();
    return 0;
}

static void
reset_counters(void)
{
    atomic_store(&n_open, 0);
    atomic_store(&n_write, 0);
    atomic_store(&n_discard, 0);
    atomic_store(&n_taken, 0);
    atomic_store(&n_handled, 0);
    atomic_store(&n_bytes, 0);
}

/* The completion callback runs after the client has its answer (or is
 * gone): wait for it before reading the counters. */
static void
settle(void)
{
    for (int i = 0; i < 500 && http_server_inflight(srv) != 0; i++)
        usleep(10000);
    assert_int_equal(http_server_inflight(srv), 0);
}

/* ---- the client ----------------------------------------------------------- */

struct body_src {
    const uint8_t *data;        /* NULL: len bytes of a pattern, made as they are read */
    size_t         len, off;
    size_t         abort_at;    /* stop the upload here (0: never) */
};

static size_t
read_body(char *buf, size_t size, size_t nitems, void *arg)
{
    struct body_src *b = arg;
    size_t want = size * nitems, left = b->len - b->off;

    if (b->abort_at != 0 && b->off >= b->abort_at)
        return CURL_READFUNC_ABORT;
    if (b->abort_at != 0 && left > b->abort_at - b->off)
        left = b->abort_at - b->off;
    if (want > left)
        want = left;
    if (b->data != NULL)
        memcpy(buf, b->data + b->off, want);
    else
        memset(buf, 'x', want);
    b->off += want;
    return want;
}

struct reply {
    char   body[4096];
    size_t len;
    char   headers[4096];
    size_t hlen;
    size_t sent;                /* body bytes the client handed to curl */
};

static size_t
on_data(char *p, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t k = size * n;

    if (k > sizeof(r->body) - 1 - r->len)
        k = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return size * n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t k = size * n;

    if (k > sizeof(r->headers) - 1 - r->hlen)
        k = sizeof(r->headers) - 1 - r->hlen;
    memcpy(r->headers + r->hlen, p, k);
    r->hlen += k;
    r->headers[r->hlen] = '\0';
    return size * n;
}

enum framing { DECLARED, CHUNKED };
/* or'd into the framing: send the body at once, without waiting for the
 * server's 100 Continue */
#define NO_EXPECT 0x10

/* POST `len` bytes of `data` to path; returns the status (0 if the
 * transfer failed) and fills *r. */
static long
post(const char *path, const char *content_type, const uint8_t *data, size_t len,
     int how, size_t abort_at, struct reply *r)
{
    enum framing framing = (how & CHUNKED) != 0 ? CHUNKED : DECLARED;
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    struct curl_blob ca = { cert_pem, strlen(cert_pem), CURL_BLOB_COPY };
    struct body_src src = { data, len, 0, abort_at };
    char url[256];
    long status = 0;

    assert_non_null(c);
    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "https://127.0.0.1:%u%s", port, path);
    if (content_type != NULL) {
        char ct[128];
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        h = curl_slist_append(h, ct);
    } else {
        h = curl_slist_append(h, "Content-Type:");
    }
    /* Wait for the server's word before sending the body, so a refusal
     * from the headers is read rather than lost in a reset -- long enough
     * that a body sent means the server asked for it (100 Continue), not
     * that curl gave up waiting. */
    h = curl_slist_append(h, (how & NO_EXPECT) != 0 ? "Expect:" : "Expect: 100-continue");
    curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 15000L);
    if (framing == CHUNKED)
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_body);
    curl_easy_setopt(c, CURLOPT_READDATA, &src);
    if (framing == DECLARED)
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    r->sent = src.off;
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    settle();
    return status;
}

static uint8_t *
csv_bytes(size_t n)
{
    uint8_t *p = malloc(n > 0 ? n : 1);

    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)("0123456789,\n"[i % 12]);
    return p;
}

static void
expect_code(const struct reply *r, const char *code)
{
    json_t *doc = json_loads(r->body, 0, NULL);
    const char *got = json_string_value(json_object_get(json_object_get(doc, "error"), "code"));

    if (got == NULL || strcmp(got, code) != 0)
        fail_msg("expected error %s, got %s", code, r->body);
    json_decref(doc);
}

/* ---- tests ---------------------------------------------------------------- */

/* R2.6: a whole upload, declared or chunked, reaches the handler exactly
 * once and byte for byte; the sink was opened once and never discarded. */
static void
test_R2_6_upload_handed_to_handler_once(void **state)
{
    size_t sizes[] = { 1, 5000, MAX_UP };
    struct reply r;

    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        for (int f = DECLARED; f <= CHUNKED; f++) {
            uint8_t *data = csv_bytes(sizes[i]), h[32];
            char hex[65], want[128];

            reset_counters();
            crypto_generichash(h, sizeof(h), data, sizes[i], NULL, 0);
            sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
            assert_int_equal(post("/up", "text/csv; charset=utf-8", data, sizes[i], f, 0, &r),
                             200);
            snprintf(want, sizeof(want), "{\"bytes\":%zu,\"hash\":\"%s\"}", sizes[i], hex);
            assert_string_equal(r.body, want);
            assert_int_equal(atomic_load(&n_open), 1);
            assert_int_equal(atomic_load(&n_taken), 1);
            assert_int_equal(atomic_load(&n_handled), 1);
            assert_int_equal(atomic_load(&n_discard), 0);
            free(data);
        }
    }
    /* The second accepted type, exactly. */
    {
        uint8_t *data = csv_bytes(10);
        assert_int_equal(post("/up", "application/octet-stream", data, 10, DECLARED, 0, &r),
                         200);
        free(data);
    }
}

/* A handler that does not take the upload: the server discards it. */
static void
test_R2_6_untaken_upload_is_discarded(void **state)
{
    uint8_t *data = csv_bytes(3000);
    struct reply r;

    (void)state;
    reset_counters();
    assert_int_equal(post("/up/leave", "text/csv", data, 3000, CHUNKED, 0, &r), 202);
    assert_string_equal(r.body, "{\"has_upload\":true}");
    assert_int_equal(atomic_load(&n_open), 1);
    assert_int_equal(atomic_load(&n_discard), 1);
    free(data);
}

/* R6.6: no session, no upload: refused from the headers, the sink never
 * opened, not a byte written, and the connection closed. */
static void
test_R6_6_unauthorized_upload_refused_before_body(void **state)
{
    uint8_t *data = csv_bytes(100000);
    struct reply r;

    (void)state;
    for (int f = DECLARED; f <= CHUNKED; f++) {
        reset_counters();
        assert_int_equal(post("/up/secure", "text/csv", data, 100000, f, 0, &r), 401);
        expect_code(&r, "unauthenticated");
        assert_non_null(strcasestr(r.headers, "connection: close"));
        assert_int_equal(atomic_load(&n_open), 0);
        assert_int_equal(atomic_load(&n_write), 0);
        assert_int_equal(atomic_load(&n_handled), 0);
    }
    /* An invalid query parameter is refused the same way, before open(). */
    reset_counters();
    assert_int_equal(post("/up?fail=bogus", "text/csv", data, 1000, DECLARED, 0, &r), 400);
    assert_int_equal(atomic_load(&n_open), 0);
    assert_int_equal(post("/up?other=1", "text/csv", data, 1000, DECLARED, 0, &r), 400);
    assert_int_equal(atomic_load(&n_open), 0);
    free(data);
}

/* 415: a type the route does not list, or none at all; a JSON route still
 * takes JSON and only JSON. */
static void
test_R2_6_wrong_content_type_is_415(void **state)
{
    uint8_t *data = csv_bytes(1000);
    const uint8_t json[] = "{\"a\":\"b\"}";
    struct reply r;

    (void)state;
    reset_counters();
    assert_int_equal(post("/up", "application/json", data, 1000, DECLARED, 0, &r), 415);
    expect_code(&r, "unsupported_media_type");
    assert_non_null(strstr(r.body, "text/csv"));
    assert_int_equal(post("/up", "text/csvx", data, 1000, CHUNKED, 0, &r), 415);
    assert_int_equal(post("/up", NULL, data, 1000, DECLARED, 0, &r), 415);
    assert_int_equal(atomic_load(&n_open), 0);
    assert_int_equal(post("/json", "application/json", json, sizeof(json) - 1, DECLARED, 0,
                          &r), 200);
    assert_string_equal(r.body, "{\"a\":\"b\"}");
    assert_int_equal(post("/json", "text/csv", json, sizeof(json) - 1, DECLARED, 0, &r), 415);
    assert_int_equal(atomic_load(&n_open), 0);
    free(data);
}

/* 413: declared over the limit (never opened), or chunked past it (the
 * sink opened, then discarded, with no more than the limit written). */
static void
test_R2_6_over_limit_is_413(void **state)
{
    size_t n = MAX_UP + 1;
    uint8_t *data = csv_bytes(n + 100000);
    struct reply r;

    (void)state;
    reset_counters();
    assert_int_equal(post("/up", "text/csv", data, n, DECLARED, 0, &r), 413);
    expect_code(&r, "body_too_large");
    assert_int_equal(atomic_load(&n_open), 0);

    reset_counters();
    assert_int_equal(post("/up", "text/csv", data, n + 100000, CHUNKED, 0, &r), 413);
    expect_code(&r, "body_too_large");
    assert_int_equal(atomic_load(&n_open), 1);
    assert_int_equal(atomic_load(&n_discard), 1);
    assert_int_equal(atomic_load(&n_handled), 0);
    assert_true(atomic_load(&n_bytes) <= MAX_UP);
    free(data);
}

/* 400 for an empty body, declared (never opened) or chunked (discarded). */
static void
test_R2_6_empty_body_is_400(void **state)
{
    const uint8_t none[1] = { 0 };
    struct reply r;

    (void)state;
    reset_counters();
    assert_int_equal(post("/up", "text/csv", none, 0, DECLARED, 0, &r), 400);
    expect_code(&r, "missing_body");
    assert_int_equal(atomic_load(&n_open), 0);
    assert_int_equal(post("/up", "text/csv", none, 0, CHUNKED, 0, &r), 400);
    expect_code(&r, "missing_body");
    assert_int_equal(atomic_load(&n_open), atomic_load(&n_discard));
    assert_int_equal(atomic_load(&n_handled), 0);
}

/* A sink that cannot open is 503; one that cannot write is 503, or 507
 * when the disk is full; each write failure discards the sink at once. */
static void
test_R2_6_sink_failures(void **state)
{
    uint8_t *data = csv_bytes(100000);
    struct reply r;

    (void)state;
    reset_counters();
    assert_int_equal(post("/up?fail=open", "text/csv", data, 100000, DECLARED, 0, &r), 503);
    assert_int_equal(atomic_load(&n_open), 1);
    assert_int_equal(atomic_load(&n_write), 0);

    reset_counters();
    assert_int_equal(post("/up?fail=write", "text/csv", data, 100000, DECLARED, 0, &r), 503);
    expect_code(&r, "unavailable");
    assert_int_equal(atomic_load(&n_write), 1);
    assert_int_equal(atomic_load(&n_discard), 1);

    reset_counters();
    assert_int_equal(post("/up?fail=nospc", "text/csv", data, 100000, CHUNKED, 0, &r), 507);
    expect_code(&r, "insufficient_storage");
    assert_int_equal(atomic_load(&n_write), 1);
    assert_int_equal(atomic_load(&n_discard), 1);
    assert_int_equal(atomic_load(&n_handled), 0);
    free(data);
}

/* R2.6: open() refuses from the headers with an answer of its own (409,
 * or 503 with Retry-After); one that refuses without an error answer gets
 * the server's 503.  Each is sent before the server asks for the body
 * (the client, waiting for 100 Continue, hands curl not one byte), closes
 * the connection, and nothing is written, discarded or handled: open()
 * left nothing open.  A client that sends a big body at once, without
 * waiting, gets the refusal (or, its unread bytes having reset the
 * connection, nothing) and never has its body read through. */
static void
test_R2_6_open_refusal_before_body(void **state)
{
    static const struct {
        const char *path, *code;
        long status;
    } cases[] = {
        { "/up?fail=conflict", "t_conflict", 409 },
        { "/up?fail=busy", "t_busy", 503 },
        { "/up?fail=open", "unavailable", 503 },
        { "/up?fail=notanerror", "unavailable", 503 },
    };
    /* Far past DISCARD_MAX (1 MiB) and past what loopback socket buffers
     * can hold (tcp_rmem + tcp_wmem maxima: 36 MiB on the CI machine; the
     * client got 0.2-2.6 MB out there): whatever it sent beyond that the
     * server would have had to read. */
    const size_t big = 64 * (size_t)1024 * 1024;
    uint8_t *data = csv_bytes(100000);
    struct reply r;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int f = DECLARED; f <= CHUNKED; f++) {
            reset_counters();
            assert_int_equal(post(cases[i].path, "text/csv", data, 100000, f, 0, &r),
                             cases[i].status);
            expect_code(&r, cases[i].code);
            assert_non_null(strcasestr(r.headers, "connection: close"));
            assert_null(strcasestr(r.headers, "100 continue"));
            assert_int_equal(r.sent, 0);
            assert_int_equal(atomic_load(&n_open), 1);
            assert_int_equal(atomic_load(&n_write), 0);
            assert_int_equal(atomic_load(&n_discard), 0);
            assert_int_equal(atomic_load(&n_handled), 0);
            if (strcmp(cases[i].code, "t_busy") == 0)
                assert_non_null(strcasestr(r.headers, "\r\nretry-after: 7\r\n"));
            else
                assert_null(strcasestr(r.headers, "retry-after"));
        }
    }
    for (int f = DECLARED; f <= CHUNKED; f++) {
        long st;
        reset_counters();
        st = post("/up/big?fail=conflict", "text/csv", NULL, big, f | NO_EXPECT, 0, &r);
        if (st != 409 && st != 0)
            fail_msg("a refused upload sent at once: %ld %s (sent %zu)", st, r.body, r.sent);
        assert_true(r.sent < big);
        assert_int_equal(atomic_load(&n_open), 1);
        assert_int_equal(atomic_load(&n_write), 0);
        assert_int_equal(atomic_load(&n_handled), 0);
    }
    free(data);
}

/* A client that goes away mid-body: the sink is discarded by the
 * completion callback, the handler never runs (run under ASan: no leak). */
static void
test_R2_6_cut_off_upload_is_discarded(void **state)
{
    uint8_t *data = csv_bytes(200000);
    struct reply r;

    (void)state;
    for (int f = DECLARED; f <= CHUNKED; f++) {
        reset_counters();
        assert_int_equal(post("/up", "text/csv", data, 200000, f, 100000, &r), 0);
        assert_int_equal(atomic_load(&n_open), 1);
        assert_int_equal(atomic_load(&n_discard), 1);
        assert_int_equal(atomic_load(&n_handled), 0);
        assert_int_equal(atomic_load(&n_taken), 0);
    }
    free(data);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R2_6_upload_handed_to_handler_once),
        cmocka_unit_test(test_R2_6_untaken_upload_is_discarded),
        cmocka_unit_test(test_R6_6_unauthorized_upload_refused_before_body),
        cmocka_unit_test(test_R2_6_wrong_content_type_is_415),
        cmocka_unit_test(test_R2_6_over_limit_is_413),
        cmocka_unit_test(test_R2_6_empty_body_is_400),
        cmocka_unit_test(test_R2_6_sink_failures),
        cmocka_unit_test(test_R2_6_open_refusal_before_body),
        cmocka_unit_test(test_R2_6_cut_off_upload_is_discarded),
    };

    log_setup("test_http_upload", LOG_TO_STDERR, LOG_LVL_ERROR);
    return cmocka_run_group_tests(tests, setup, teardown);
}
