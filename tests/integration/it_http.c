/*
 * it_http.c - the HTTP surface of the real daemon: the route table's
 * refusals each with the one error shape, strict JSON, body limits, and
 * keep-alive that really keeps the connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static struct instance inst;

static int
setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return h_start(&inst, NULL);
}

static int
teardown(void **state)
{
    (void)state;
    int rc = h_stop(&inst);
    h_cleanup(&inst);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

/* Make a request on the public listener and check the error shape:
 * {"error":{"code","message","request_id"[,"field"]}} with the
 * X-Request-Id header matching. */
static void
expect_error(const char *method, const char *path, const char *body, long status,
             const char *code, const char *field)
{
    CURL *c = h_curl(&inst, NULL, NULL);
    struct h_response r;
    json_t *doc, *err;
    char hdr[64];

    h_request(&inst, c, false, method, path, body, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, status);
    assert_non_null(strcasestr(r.headers, "content-type: application/json"));
    doc = h_json(&r);
    assert_non_null(doc);
    err = json_object_get(doc, "error");
    assert_true(json_is_object(err));
    assert_string_equal(json_string_value(json_object_get(err, "code")), code);
    assert_true(json_string_length(json_object_get(err, "message")) > 10);
    snprintf(hdr, sizeof(hdr), "x-request-id: %s",
             json_string_value(json_object_get(err, "request_id")));
    assert_non_null(strcasestr(r.headers, hdr));
    if (field != NULL)
        assert_string_equal(json_string_value(json_object_get(err, "field")), field);
    else
        assert_null(json_object_get(err, "field"));
    json_decref(doc);
    h_response_free(&r);
    curl_easy_cleanup(c);
}

static void
test_undeclared_path_is_404(void **state)
{
    (void)state;
    expect_error("GET", "/v1/nothing-here", NULL, 404, "not_found", NULL);
    expect_error("GET", "/healthz/extra", NULL, 404, "not_found", NULL);
    expect_error("GET", "/v1/municipalities/13%2F016", NULL, 404, "not_found", NULL);
}

static void
test_wrong_method_is_405_with_allow(void **state)
{
    CURL *c = h_curl(&inst, NULL, NULL);
    struct h_response r;

    (void)state;
    expect_error("DELETE", "/healthz", NULL, 405, "method_not_allowed", NULL);
    h_request(&inst, c, false, "PUT", "/healthz", NULL, &r);
    assert_int_equal(r.status, 405);
    assert_non_null(strcasestr(r.headers, "allow: GET"));
    h_response_free(&r);
    curl_easy_cleanup(c);
}

static void
test_too_large_body_is_413(void **state)
{
    size_t n = 17 * 1024;
    char *big = malloc(n + 32);

    (void)state;
    /* Valid JSON, just larger than the route's 16 KiB limit. */
    strcpy(big, "{\"codes\":[\"");
    memset(big + 11, '1', n);
    strcpy(big + 11 + n, "\"]}");
    expect_error("POST", "/v1/municipalities/lookup", big, 413, "body_too_large", NULL);
    free(big);
    /* A GET route takes no body at all. */
    expect_error("GET", "/healthz", "{}", 413, "body_too_large", NULL);
}

struct chunked_src {
    size_t left;
};

static size_t
read_chunk(char *buf, size_t size, size_t n, void *arg)
{
    struct chunked_src *src = arg;
    size_t take = size * n < src->left ? size * n : src->left;

    memset(buf, ' ', take);      /* JSON whitespace: valid, just too much */
    src->left -= take;
    return take;
}

static long
post_chunked(size_t total, struct chunked_src *src, CURLcode *rc)
{
    CURL *c = h_curl(&inst, NULL, NULL);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    char url[128];
    long status = 0;

    src->left = total;
    hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    snprintf(url, sizeof(url), "https://localhost:%u/v1/municipalities/lookup",
             (unsigned)inst.public_port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_chunk);
    curl_easy_setopt(c, CURLOPT_READDATA, src);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, NULL);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, stderr);
    *rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return status;
}

/* A chunked body (no Content-Length) over the limit is refused with 413
 * too; and a client that keeps streaming after the refusal is cut off
 * after a bounded amount instead of being read for ever. */
static void
test_chunked_body_too_large_is_413(void **state)
{
    struct chunked_src src;
    CURLcode rc;

    (void)state;
    assert_int_equal(post_chunked(256u * 1024u, &src, &rc), 413);
    assert_int_equal(rc, CURLE_OK);
    (void)post_chunked(64u * 1024u * 1024u, &src, &rc);
    assert_int_not_equal(rc, CURLE_OK);
    assert_true(src.left > 0);    /* cut off long before 64 MiB were sent */
}

static void
test_malformed_json_is_400(void **state)
{
    (void)state;
    expect_error("POST", "/v1/municipalities/lookup", "{\"codes\":[\"131016\"", 400,
                 "malformed_json", NULL);
    expect_error("POST", "/v1/municipalities/lookup", "[\"131016\"]", 400,
                 "malformed_json", NULL);
    expect_error("POST", "/v1/municipalities/lookup", "", 400, "missing_body", NULL);
}

/* A body must be declared as JSON. */
static void
test_wrong_content_type_is_415(void **state)
{
    CURL *c = h_curl(&inst, NULL, NULL);
    struct h_response r;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: text/plain");
    char url[128];

    (void)state;
    memset(&r, 0, sizeof(r));
    snprintf(url, sizeof(url), "https://localhost:%u/v1/municipalities/lookup",
             (unsigned)inst.public_port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "{\"codes\":[\"131016\"]}");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, NULL);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, stderr);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    assert_int_equal(r.status, 415);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
}

static void
test_duplicate_key_json_is_400(void **state)
{
    (void)state;
    expect_error("POST", "/v1/municipalities/lookup",
                 "{\"codes\":[\"131016\"],\"codes\":[\"011002\"]}", 400, "duplicate_key", NULL);
}

static void
test_invalid_fields_name_the_field(void **state)
{
    (void)state;
    expect_error("POST", "/v1/municipalities/lookup", "{\"codes\":[\"131017\"]}", 400,
                 "invalid_field", "codes");
    expect_error("POST", "/v1/municipalities/lookup",
                 "{\"codes\":[\"131016\"],\"extra\":1}", 400, "invalid_field", "extra");
    expect_error("POST", "/v1/municipalities/lookup", "{}", 400, "invalid_field", "codes");
    expect_error("POST", "/v1/municipalities/lookup", "{\"codes\":\"131016\"}", 400,
                 "invalid_field", "codes");
    expect_error("GET", "/v1/municipalities/131017", NULL, 400, "invalid_parameter", "code");
}

/* Error messages never echo submitted values (they may be personal data). */
static void
test_errors_do_not_echo_values(void **state)
{
    CURL *c = h_curl(&inst, NULL, NULL);
    struct h_response r;

    (void)state;
    h_request(&inst, c, false, "POST", "/v1/municipalities/lookup",
              "{\"codes\":[\"123456789018\"]}", &r);
    assert_int_equal(r.status, 400);
    assert_null(strstr(r.body, "123456789018"));
    h_response_free(&r);
    curl_easy_cleanup(c);
}

static void
test_lookup_answers_each_code(void **state)
{
    CURL *c = h_curl(&inst, NULL, NULL);
    struct h_response r;
    json_t *doc, *res;

    (void)state;
    h_request(&inst, c, false, "POST", "/v1/municipalities/lookup",
              "{\"codes\":[\"131016\",\"011002\",\"221317\"]}", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strcasestr(r.headers, "cache-control: no-store"));
    doc = h_json(&r);
    res = json_object_get(doc, "results");
    assert_int_equal(json_array_size(res), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "name")),
                        "千代田区");
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 1), "kind")),
                        "designated_city");
    /* 221317 has a valid check digit but the ward was abolished in 2024. */
    assert_true(json_is_false(json_object_get(json_array_get(res, 2), "found")));
    json_decref(doc);
    h_response_free(&r);
    curl_easy_cleanup(c);
}

/* The libmicrohttpd keep-alive trap: measure that 100 requests, with and
 * without bodies and including refused ones, use one connection. */
static void
test_keep_alive_reuses_one_connection(void **state)
{
    CURL *c = h_curl(&inst, NULL, NULL);
    struct h_response r;
    long connects = 0;

    (void)state;
    for (int i = 0; i < 100; i++) {
        switch (i % 4) {
        case 0: h_request(&inst, c, false, "GET", "/healthz", NULL, &r); break;
        case 1: h_request(&inst, c, false, "POST", "/v1/municipalities/lookup",
                          "{\"codes\":[\"131016\"]}", &r); break;
        case 2: h_request(&inst, c, false, "GET", "/v1/no-such", NULL, &r); break;
        default: h_request(&inst, c, false, "POST", "/v1/municipalities/lookup",
                           "{\"codes\":1}", &r); break;
        }
        assert_int_equal(r.rc, CURLE_OK);
        connects += r.connects;
        h_response_free(&r);
    }
    assert_int_equal(connects, 1);
    curl_easy_cleanup(c);
}

/* Internal listener: same routes and errors for a registered terminal. */
static void
test_internal_listener_routes(void **state)
{
    CURL *c = h_curl(&inst, "terminals/demo.crt", "terminals/demo.key");
    struct h_response r;

    (void)state;
    h_request(&inst, c, true, "GET", "/v1/municipalities/011002", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "札幌市"));
    h_response_free(&r);
    h_request(&inst, c, true, "GET", "/v1/unknown", NULL, &r);
    assert_int_equal(r.status, 404);
    h_response_free(&r);
    curl_easy_cleanup(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_undeclared_path_is_404),
        cmocka_unit_test(test_wrong_method_is_405_with_allow),
        cmocka_unit_test(test_too_large_body_is_413),
        cmocka_unit_test(test_chunked_body_too_large_is_413),
        cmocka_unit_test(test_malformed_json_is_400),
        cmocka_unit_test(test_wrong_content_type_is_415),
        cmocka_unit_test(test_duplicate_key_json_is_400),
        cmocka_unit_test(test_invalid_fields_name_the_field),
        cmocka_unit_test(test_errors_do_not_echo_values),
        cmocka_unit_test(test_lookup_answers_each_code),
        cmocka_unit_test(test_keep_alive_reuses_one_connection),
        cmocka_unit_test(test_internal_listener_routes),
    };
    return cmocka_run_group_tests_name("integration/http", tests, setup, teardown);
}
