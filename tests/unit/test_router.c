/*
 * test_router.c - the declarative route table and input validation
 * (src/http/router.c, src/http/routes.c).
 *
 * Allowlist at the edge: an undeclared path is not found, another method
 * is refused with the Allow list, a route on the other listener does not
 * exist, and a body with an undeclared, missing, mistyped or oversized
 * field, malformed JSON or a duplicate key never reaches a handler.  The
 * route-table invariants (deny by default, R6.6/R6.7) are generic loops
 * over mamori_routes[], so a new route without a permission, listener or
 * parameter rule fails here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/reply.h"
#include "http/router.h"

/* ---- a local table with every kind of rule ----------------------------- */

static int handler_calls;

static void
h_dummy(const struct http_request *req, struct http_response *resp)
{
    (void)req;
    (void)resp;
    handler_calls++;
}

static const char *
check_digits(const char *v)
{
    for (; *v != '\0'; v++)
        if (*v < '0' || *v > '9')
            return "must be digits";
    return NULL;
}

static const char *
check_lower(const char *v)
{
    for (; *v != '\0'; v++)
        if (*v < 'a' || *v > 'z')
            return "must be lower-case letters";
    return NULL;
}

static const struct param_rule id_rule[] = {
    { "id", 8, NULL },
    { NULL, 0, NULL },
};

static const struct param_rule tenant_id_rules[] = {
    { "tenant", 6, check_digits },
    { "id", 16, NULL },
    { NULL, 0, NULL },
};

static const struct field_rule thing_fields[] = {
    { "name", FIELD_STRING, true, 1, 8, 0, NULL },
    { "count", FIELD_INTEGER, false, 1, 10, 0, NULL },
    { "flag", FIELD_BOOLEAN, false, 0, 0, 0, NULL },
    { "tags", FIELD_STRING_ARRAY, false, 0, 3, 4, check_lower },
    { "digits", FIELD_STRING, false, 0, 6, 0, check_digits },
    { NULL, 0, false, 0, 0, 0, NULL },
};

static const struct route t_routes[] = {
    { "GET",    "/things", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL },
    { "POST",   "/things", LISTENER_BOTH, PERM_ANONYMOUS, 4096, NULL, thing_fields, h_dummy, NULL },
    { "GET",    "/things/{id}", LISTENER_BOTH, PERM_ANONYMOUS, 0, id_rule, NULL, h_dummy, NULL },
    { "DELETE", "/things/{id}", LISTENER_INTERNAL, PERM_ANONYMOUS, 0, id_rule, NULL, h_dummy, NULL },
    { "GET",    "/t/{tenant}/items/{id}", LISTENER_INTERNAL, PERM_ANONYMOUS, 0,
      tenant_id_rules, NULL, h_dummy, NULL },
    { "GET",    "/internal/only", LISTENER_INTERNAL, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL },
    { "GET",    "/broken/{x}", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL },
};
#define T_N (sizeof(t_routes) / sizeof(t_routes[0]))

static enum route_result
match(const struct route *table, size_t n, const char *method, const char *path,
      unsigned listener, struct http_request *req, char *allow, size_t allowlen)
{
    memset(req, 0, sizeof(*req));
    return router_match(table, n, method, path, listener, req, allow, allowlen);
}

static void
expect_not_found(const char *method, const char *path, unsigned listener)
{
    struct http_request req;
    char allow[64];

    if (match(t_routes, T_N, method, path, listener, &req, allow, sizeof(allow)) != ROUTE_NOT_FOUND)
        fail_msg("%s %s was not refused as not found", method, path);
    assert_int_equal(req.nparams, 0);
}

static const struct route *
expect_found(const struct route *table, size_t n, const char *method, const char *path,
             unsigned listener, struct http_request *req)
{
    char allow[64];

    if (match(table, n, method, path, listener, req, allow, sizeof(allow)) != ROUTE_FOUND)
        fail_msg("%s %s was not found on listener %u", method, path, listener);
    assert_non_null(req->route);
    assert_string_equal(req->route->method, method);
    return req->route;
}

/* ---- matching ----------------------------------------------------------- */

static void
test_match_literal_and_params(void **state)
{
    struct http_request req;

    (void)state;
    assert_ptr_equal(expect_found(t_routes, T_N, "GET", "/things", LISTENER_PUBLIC, &req),
                     &t_routes[0]);
    assert_int_equal(req.nparams, 0);
    assert_ptr_equal(expect_found(t_routes, T_N, "POST", "/things", LISTENER_INTERNAL, &req),
                     &t_routes[1]);

    /* Every unreserved character is allowed in a parameter. */
    assert_ptr_equal(expect_found(t_routes, T_N, "GET", "/things/aZ09-._~", LISTENER_PUBLIC, &req),
                     &t_routes[2]);
    assert_int_equal(req.nparams, 1);
    assert_string_equal(http_param(&req, "id"), "aZ09-._~");
    assert_string_equal(http_param(&req, "other"), "");

    assert_ptr_equal(expect_found(t_routes, T_N, "GET", "/t/131016/items/r-7",
                                  LISTENER_INTERNAL, &req), &t_routes[4]);
    assert_int_equal(req.nparams, 2);
    assert_string_equal(http_param(&req, "tenant"), "131016");
    assert_string_equal(http_param(&req, "id"), "r-7");
}

static void
test_match_path_shape_rules(void **state)
{
    (void)state;
    /* Trailing slash, double slash, missing leading slash, case. */
    expect_not_found("GET", "/things/", LISTENER_BOTH);
    expect_not_found("GET", "/things/abc/", LISTENER_BOTH);
    expect_not_found("GET", "//things", LISTENER_BOTH);
    expect_not_found("GET", "/things//abc", LISTENER_BOTH);
    expect_not_found("GET", "/t//items/1", LISTENER_INTERNAL);
    expect_not_found("GET", "/t/131016/items/", LISTENER_INTERNAL);
    expect_not_found("GET", "things", LISTENER_BOTH);
    expect_not_found("GET", "", LISTENER_BOTH);
    expect_not_found("GET", "/", LISTENER_BOTH);
    expect_not_found("GET", "/Things", LISTENER_BOTH);
    expect_not_found("GET", "/thingsx", LISTENER_BOTH);
    expect_not_found("GET", "/things/a/b", LISTENER_BOTH);
    expect_not_found("GET", "/things?x=1", LISTENER_BOTH);
    /* Reserved, encoded or non-ASCII characters in a parameter. */
    static const char *const bad_params[] = {
        "/things/a%2Fb", "/things/a%20b", "/things/a b", "/things/a:b", "/things/a+b",
        "/things/a;b", "/things/a@b", "/things/a=b", "/things/a,b", "/things/a'b",
        "/things/\xe3\x81\x82", "/things/a\tb", "/things/a\\b", "/things/a*b",
        "/things/{id}",
    };
    for (size_t i = 0; i < sizeof(bad_params) / sizeof(bad_params[0]); i++)
        expect_not_found("GET", bad_params[i], LISTENER_BOTH);
}

static void
test_match_param_and_path_length(void **state)
{
    struct http_request req;
    char path[2048];

    (void)state;
    /* ROUTE_PARAM_MAX - 1 bytes fit; ROUTE_PARAM_MAX do not. */
    memcpy(path, "/things/", 8);
    memset(path + 8, 'a', ROUTE_PARAM_MAX - 1);
    path[8 + ROUTE_PARAM_MAX - 1] = '\0';
    expect_found(t_routes, T_N, "GET", path, LISTENER_PUBLIC, &req);
    assert_int_equal(strlen(http_param(&req, "id")), ROUTE_PARAM_MAX - 1);
    path[8 + ROUTE_PARAM_MAX - 1] = 'a';
    path[8 + ROUTE_PARAM_MAX] = '\0';
    expect_not_found("GET", path, LISTENER_PUBLIC);

    /* A path over 1024 bytes is not looked at. */
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    path[1500] = '\0';
    expect_not_found("GET", path, LISTENER_BOTH);
}

static void
test_bad_method_allow_list(void **state)
{
    struct http_request req;
    char allow[64];

    (void)state;
    assert_int_equal(match(t_routes, T_N, "PATCH", "/things", LISTENER_PUBLIC, &req,
                           allow, sizeof(allow)), ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET, POST");
    assert_null(req.route);
    /* Methods are case-sensitive tokens. */
    assert_int_equal(match(t_routes, T_N, "get", "/things", LISTENER_PUBLIC, &req,
                           allow, sizeof(allow)), ROUTE_BAD_METHOD);
    /* The DELETE route is internal only: on the public listener it does
     * not exist, so only GET is allowed there. */
    assert_int_equal(match(t_routes, T_N, "DELETE", "/things/x1", LISTENER_PUBLIC, &req,
                           allow, sizeof(allow)), ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET");
    assert_int_equal(req.nparams, 0);
    assert_int_equal(match(t_routes, T_N, "POST", "/things/x1", LISTENER_INTERNAL, &req,
                           allow, sizeof(allow)), ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET, DELETE");
    expect_found(t_routes, T_N, "DELETE", "/things/x1", LISTENER_INTERNAL, &req);

    /* A small Allow buffer is never overrun and stays terminated. */
    char small[8];
    memset(small, 'Z', sizeof(small));
    assert_int_equal(match(t_routes, T_N, "PUT", "/things", LISTENER_PUBLIC, &req,
                           small, 5), ROUTE_BAD_METHOD);
    assert_true(strlen(small) < 5);
    assert_int_equal(small[5], 'Z');
}

static void
test_listener_filtering(void **state)
{
    struct http_request req;
    char allow[64];

    (void)state;
    /* An internal-only route does not exist on the public listener:
     * not found, not "method not allowed" (which would reveal it). */
    assert_int_equal(match(t_routes, T_N, "GET", "/internal/only", LISTENER_PUBLIC, &req,
                           allow, sizeof(allow)), ROUTE_NOT_FOUND);
    assert_string_equal(allow, "");
    assert_int_equal(match(t_routes, T_N, "POST", "/internal/only", LISTENER_PUBLIC, &req,
                           allow, sizeof(allow)), ROUTE_NOT_FOUND);
    assert_int_equal(match(t_routes, T_N, "GET", "/t/131016/items/1", LISTENER_PUBLIC, &req,
                           allow, sizeof(allow)), ROUTE_NOT_FOUND);
    expect_found(t_routes, T_N, "GET", "/internal/only", LISTENER_INTERNAL, &req);
}

/* ---- the real table: matching ------------------------------------------ */

static void
test_real_table_matching(void **state)
{
    struct http_request req;
    char allow[64];

    (void)state;
    expect_found(mamori_routes, mamori_nroutes, "GET", "/healthz", LISTENER_PUBLIC, &req);
    expect_found(mamori_routes, mamori_nroutes, "GET", "/healthz", LISTENER_INTERNAL, &req);
    /* The terminal identity route is on the internal listener only (R6.2). */
    expect_found(mamori_routes, mamori_nroutes, "GET", "/v1/terminal", LISTENER_INTERNAL, &req);
    assert_int_equal(match(mamori_routes, mamori_nroutes, "GET", "/v1/terminal",
                           LISTENER_PUBLIC, &req, allow, sizeof(allow)), ROUTE_NOT_FOUND);
    expect_found(mamori_routes, mamori_nroutes, "GET", "/v1/municipalities/131016",
                 LISTENER_PUBLIC, &req);
    assert_string_equal(http_param(&req, "code"), "131016");
    expect_found(mamori_routes, mamori_nroutes, "POST", "/v1/municipalities/lookup",
                 LISTENER_INTERNAL, &req);
    assert_int_equal(match(mamori_routes, mamori_nroutes, "DELETE", "/v1/municipalities/131016",
                           LISTENER_INTERNAL, &req, allow, sizeof(allow)), ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET");
    assert_int_equal(match(mamori_routes, mamori_nroutes, "POST", "/healthz",
                           LISTENER_PUBLIC, &req, allow, sizeof(allow)), ROUTE_BAD_METHOD);
    assert_string_equal(allow, "GET");
    assert_int_equal(match(mamori_routes, mamori_nroutes, "GET", "/v1/unknown",
                           LISTENER_INTERNAL, &req, allow, sizeof(allow)), ROUTE_NOT_FOUND);
    assert_int_equal(match(mamori_routes, mamori_nroutes, "GET", "/healthz/",
                           LISTENER_INTERNAL, &req, allow, sizeof(allow)), ROUTE_NOT_FOUND);
}

/* ---- validation --------------------------------------------------------- */

/* Check the one error shape of reply.h:
 *   {"error": {"code": ..., "message": ..., "field": ...}}
 * field NULL means the "field" member must be absent. */
static void
expect_error(const struct http_response *resp, unsigned status, const char *code,
             const char *field)
{
    json_t *err, *v;

    assert_int_equal(resp->status, status);
    assert_true(json_is_object(resp->body));
    assert_int_equal(json_object_size(resp->body), 1);
    err = json_object_get(resp->body, "error");
    assert_true(json_is_object(err));
    v = json_object_get(err, "code");
    assert_true(json_is_string(v));
    if (strcmp(json_string_value(v), code) != 0)
        fail_msg("error code %s, expected %s", json_string_value(v), code);
    v = json_object_get(err, "message");
    assert_true(json_is_string(v));
    assert_true(json_string_length(v) > 0);
    v = json_object_get(err, "field");
    if (field == NULL) {
        assert_null(v);
    } else {
        assert_true(json_is_string(v));
        if (strcmp(json_string_value(v), field) != 0)
            fail_msg("error field %s, expected %s", json_string_value(v), field);
    }
}

/* Route the request in the test table, then validate the body.  Returns
 * router_validate's result; resp and req are the caller's to clean up. */
static int
validate(const struct route *table, size_t n, const char *method, const char *path,
         unsigned listener, const char *body, size_t len, struct http_request *req,
         struct http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    expect_found(table, n, method, path, listener, req);
    req->body = (json_t *)(uintptr_t)1;   /* must be reset by router_validate */
    return router_validate(req->route, body, len, req, resp);
}

static void
cleanup(struct http_request *req, struct http_response *resp)
{
    json_decref(req->body);
    req->body = NULL;
    json_decref(resp->body);
    resp->body = NULL;
}

/* POST /things with `body`; must be refused with code and field. */
static void
expect_body_refused(const char *body, const char *code, const char *field)
{
    struct http_request req;
    struct http_response resp;

    if (validate(t_routes, T_N, "POST", "/things", LISTENER_PUBLIC, body, strlen(body),
                 &req, &resp) != -1)
        fail_msg("body accepted: %s", body);
    assert_null(req.body);
    expect_error(&resp, 400, code, field);
    cleanup(&req, &resp);
}

static void
test_validate_accepts_declared_fields(void **state)
{
    struct http_request req;
    struct http_response resp;
    const char *body = "{\"name\":\"abcdefgh\",\"count\":10,\"flag\":false,"
                       "\"tags\":[\"ab\",\"wxyz\"],\"digits\":\"\"}";

    (void)state;
    assert_int_equal(validate(t_routes, T_N, "POST", "/things", LISTENER_PUBLIC, body,
                              strlen(body), &req, &resp), 0);
    assert_true(json_is_object(req.body));
    assert_string_equal(json_string_value(json_object_get(req.body, "name")), "abcdefgh");
    assert_int_equal(json_integer_value(json_object_get(req.body, "count")), 10);
    assert_null(resp.body);
    cleanup(&req, &resp);

    /* Optional fields may be left out; the lower bound of count. */
    body = "{\"name\":\"a\",\"count\":1}";
    assert_int_equal(validate(t_routes, T_N, "POST", "/things", LISTENER_PUBLIC, body,
                              strlen(body), &req, &resp), 0);
    cleanup(&req, &resp);
    assert_int_equal(handler_calls, 0);
}

static void
test_validate_unknown_field_named(void **state)
{
    struct http_request req;
    struct http_response resp;
    const char *body = "{\"name\":\"a\",\"role\":\"admin\"}";

    (void)state;
    assert_int_equal(validate(t_routes, T_N, "POST", "/things", LISTENER_PUBLIC, body,
                              strlen(body), &req, &resp), -1);
    expect_error(&resp, 400, "invalid_field", "role");
    /* The message names the field, never its value. */
    const char *msg = json_string_value(json_object_get(json_object_get(resp.body, "error"),
                                                        "message"));
    assert_non_null(strstr(msg, "role"));
    assert_null(strstr(msg, "admin"));
    cleanup(&req, &resp);

    /* A field name that is not short printable ASCII is not echoed back. */
    expect_body_refused("{\"name\":\"a\",\"bad\\u0001key\":1}", "invalid_field", "(unnamed)");
    expect_body_refused("{\"name\":\"a\",\"\\u3042\":1}", "invalid_field", "(unnamed)");
    expect_body_refused("{\"name\":\"a\",\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}",
                        "invalid_field", "(unnamed)");
    expect_body_refused("{\"name\":\"a\",\"\":1}", "invalid_field", "(unnamed)");
    /* Unknown fields are refused even when the rest is valid and complete. */
    expect_body_refused("{\"Name\":\"a\"}", "invalid_field", "Name");
}

static void
test_validate_required_missing(void **state)
{
    (void)state;
    expect_body_refused("{}", "invalid_field", "name");
    expect_body_refused("{\"count\":2}", "invalid_field", "name");
    /* null is not a value for a required string. */
    expect_body_refused("{\"name\":null}", "invalid_field", "name");
}

static void
test_validate_wrong_types(void **state)
{
    (void)state;
    expect_body_refused("{\"name\":5}", "invalid_field", "name");
    expect_body_refused("{\"name\":[\"a\"]}", "invalid_field", "name");
    expect_body_refused("{\"name\":{\"a\":1}}", "invalid_field", "name");
    expect_body_refused("{\"name\":\"a\",\"count\":\"5\"}", "invalid_field", "count");
    expect_body_refused("{\"name\":\"a\",\"count\":5.0}", "invalid_field", "count");
    expect_body_refused("{\"name\":\"a\",\"count\":true}", "invalid_field", "count");
    expect_body_refused("{\"name\":\"a\",\"flag\":\"true\"}", "invalid_field", "flag");
    expect_body_refused("{\"name\":\"a\",\"flag\":1}", "invalid_field", "flag");
    expect_body_refused("{\"name\":\"a\",\"flag\":null}", "invalid_field", "flag");
    expect_body_refused("{\"name\":\"a\",\"tags\":\"ab\"}", "invalid_field", "tags");
    expect_body_refused("{\"name\":\"a\",\"tags\":[1]}", "invalid_field", "tags");
    expect_body_refused("{\"name\":\"a\",\"tags\":[\"ab\",null]}", "invalid_field", "tags");
    expect_body_refused("{\"name\":\"a\",\"tags\":{\"0\":\"ab\"}}", "invalid_field", "tags");
}

static void
test_validate_lengths_and_ranges(void **state)
{
    struct http_request req;
    struct http_response resp;
    const char *body = "{\"name\":\"SECRET-123\"}";

    (void)state;
    /* 9 bytes where 8 are allowed: refused without echoing the value. */
    assert_int_equal(validate(t_routes, T_N, "POST", "/things", LISTENER_PUBLIC, body,
                              strlen(body), &req, &resp), -1);
    expect_error(&resp, 400, "invalid_field", "name");
    {
        char *dump = json_dumps(resp.body, 0);
        assert_non_null(dump);
        assert_null(strstr(dump, "SECRET"));
        free(dump);
    }
    cleanup(&req, &resp);
    /* Length is in bytes: 3 kana are 9 bytes. */
    expect_body_refused("{\"name\":\"\\u3042\\u3044\\u3046\"}", "invalid_field", "name");
    expect_body_refused("{\"name\":\"\"}", "invalid_field", "name");            /* min 1 */
    /* An escaped NUL inside a string is refused (jansson without
     * JSON_ALLOW_NUL rejects it while parsing). */
    expect_body_refused("{\"name\":\"a\\u0000b\"}", "malformed_json", NULL);
    expect_body_refused("{\"name\":\"a\",\"count\":0}", "invalid_field", "count");
    expect_body_refused("{\"name\":\"a\",\"count\":11}", "invalid_field", "count");
    expect_body_refused("{\"name\":\"a\",\"count\":-1}", "invalid_field", "count");
    expect_body_refused("{\"name\":\"a\",\"count\":99999999999999999999}", "malformed_json", NULL);
    expect_body_refused("{\"name\":\"a\",\"count\":-9223372036854775808}", "invalid_field", "count");
    /* A string field's own validator. */
    expect_body_refused("{\"name\":\"a\",\"digits\":\"12a\"}", "invalid_field", "digits");
}

static void
test_validate_string_array_items(void **state)
{
    (void)state;
    /* Item validator, item length, item count. */
    expect_body_refused("{\"name\":\"a\",\"tags\":[\"ok\",\"BAD\"]}", "invalid_field", "tags");
    expect_body_refused("{\"name\":\"a\",\"tags\":[\"abcde\"]}", "invalid_field", "tags");
    expect_body_refused("{\"name\":\"a\",\"tags\":[\"a\",\"b\",\"c\",\"d\"]}", "invalid_field",
                        "tags");
    expect_body_refused("{\"name\":\"a\",\"tags\":[\"a\\u0000\"]}", "malformed_json", NULL);
    expect_body_refused("{\"name\":\"a\",\"tags\":[[\"a\"]]}", "invalid_field", "tags");
}

static void
test_validate_malformed_json(void **state)
{
    struct http_request req;
    struct http_response resp;

    (void)state;
    static const char *const bad[] = {
        "{", "{\"name\":}", "{\"name\":\"a\",}", "{'name':'a'}", "[]", "[{\"name\":\"a\"}]",
        "\"name\"", "null", "42", "{\"name\":\"a\"} {}", "{\"name\":\"a\"}x",
        "{\"name\":\"\\ud800\"}", "{\"name\":\"\xff\"}", "{\"name\":NaN}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_body_refused(bad[i], "malformed_json", NULL);

    /* A NUL after the object is not ignored. */
    static const char nul_tail[] = "{\"name\":\"a\"}\0{\"x\":1}";
    assert_int_equal(validate(t_routes, T_N, "POST", "/things", LISTENER_PUBLIC, nul_tail,
                              sizeof(nul_tail) - 1, &req, &resp), -1);
    expect_error(&resp, 400, "malformed_json", NULL);
    cleanup(&req, &resp);

    /* A body route with no body at all. */
    assert_int_equal(validate(t_routes, T_N, "POST", "/things", LISTENER_PUBLIC, NULL, 0,
                              &req, &resp), -1);
    expect_error(&resp, 400, "missing_body", NULL);
    cleanup(&req, &resp);
}

static void
test_validate_duplicate_keys(void **state)
{
    (void)state;
    /* Strict JSON: which of two values wins must never be a question. */
    expect_body_refused("{\"name\":\"a\",\"name\":\"b\"}", "duplicate_key", NULL);
    expect_body_refused("{\"name\":\"a\",\"count\":1,\"count\":2}", "duplicate_key", NULL);
    /* The same key spelled with an escape is the same key. */
    expect_body_refused("{\"name\":\"a\",\"n\\u0061me\":\"b\"}", "duplicate_key", NULL);
}

static void
test_validate_unexpected_body(void **state)
{
    struct http_request req;
    struct http_response resp;

    (void)state;
    assert_int_equal(validate(t_routes, T_N, "GET", "/things", LISTENER_PUBLIC, "{}", 2,
                              &req, &resp), -1);
    expect_error(&resp, 400, "unexpected_body", NULL);
    assert_null(req.body);
    cleanup(&req, &resp);
    /* No body is fine on such a route. */
    assert_int_equal(validate(t_routes, T_N, "GET", "/things", LISTENER_PUBLIC, NULL, 0,
                              &req, &resp), 0);
    assert_null(req.body);
    assert_null(resp.body);
    cleanup(&req, &resp);
}

static void
test_validate_path_params(void **state)
{
    struct http_request req;
    struct http_response resp;

    (void)state;
    /* The router lets 9 bytes through; the rule allows 8. */
    assert_int_equal(validate(t_routes, T_N, "GET", "/things/123456789", LISTENER_PUBLIC,
                              NULL, 0, &req, &resp), -1);
    expect_error(&resp, 400, "invalid_parameter", "id");
    cleanup(&req, &resp);
    assert_int_equal(validate(t_routes, T_N, "GET", "/things/12345678", LISTENER_PUBLIC,
                              NULL, 0, &req, &resp), 0);
    cleanup(&req, &resp);
    /* The tenant's validator, and its message does not echo the value. */
    assert_int_equal(validate(t_routes, T_N, "GET", "/t/12x456/items/1", LISTENER_INTERNAL,
                              NULL, 0, &req, &resp), -1);
    expect_error(&resp, 400, "invalid_parameter", "tenant");
    {
        char *dump = json_dumps(resp.body, 0);
        assert_null(strstr(dump, "12x456"));
        free(dump);
    }
    cleanup(&req, &resp);
    assert_int_equal(validate(t_routes, T_N, "GET", "/t/1234567/items/1", LISTENER_INTERNAL,
                              NULL, 0, &req, &resp), -1);
    expect_error(&resp, 400, "invalid_parameter", "tenant");
    cleanup(&req, &resp);
    /* A pattern parameter without a rule is a table bug: refused (500),
     * never passed through unchecked. */
    assert_int_equal(validate(t_routes, T_N, "GET", "/broken/x", LISTENER_PUBLIC,
                              NULL, 0, &req, &resp), -1);
    expect_error(&resp, 500, "internal_error", NULL);
    cleanup(&req, &resp);
}

/* Query parameters (R7.5's filters): only those a rule names and the
 * pattern does not, each non-empty, once, within its length and its
 * validator; the message names the parameter, never its value. */
static const struct param_rule q_rules[] = {
    { "id", 8, NULL },
    { "n", 4, check_digits },
    { "name", 8, check_lower },
    { NULL, 0, NULL },
};
static const struct route q_routes[] = {
    { "GET", "/q/{id}", LISTENER_BOTH, PERM_ANONYMOUS, 0, q_rules, NULL, h_dummy, NULL },
};

static int
validate_query(const char *const *kv, struct http_request *req, struct http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
    expect_found(q_routes, 1, "GET", "/q/7", LISTENER_PUBLIC, req);
    for (; kv[0] != NULL; kv += 2)
        router_add_query(req, kv[0], kv[1]);
    return router_validate(req->route, NULL, 0, req, resp);
}

static void
expect_query_refused(const char *const *kv, const char *field)
{
    struct http_request req;
    struct http_response resp;
    char *dump;

    assert_int_equal(validate_query(kv, &req, &resp), -1);
    expect_error(&resp, 400, "invalid_parameter", field);
    dump = json_dumps(resp.body, 0);
    assert_null(strstr(dump, "zzzzzz"));            /* the value is never echoed */
    free(dump);
    cleanup(&req, &resp);
}

static void
test_validate_query_params(void **state)
{
    static const char *const ok[] = { "n", "12", "name", "abc", NULL };
    static const char *const none[] = { NULL };
    static const char *const bad_value[] = { "n", "zzzzzz", NULL };
    static const char *const unknown[] = { "tenant", "zzzzzz", NULL };
    static const char *const path_name[] = { "id", "9", NULL };
    static const char *const twice[] = { "n", "1", "n", "2", NULL };
    static const char *const empty[] = { "n", "", NULL };
    static const char *const bare[] = { "name", NULL, NULL };
    static const char *const many[] = { "a", "1", "b", "1", "c", "1", "d", "1", "e", "1",
                                        "f", "1", "g", "1", "h", "1", "n", "1", NULL };
    char big[ROUTE_PARAM_MAX + 8];
    const char *too_long[] = { "name", big, NULL };
    struct http_request req;
    struct http_response resp;

    (void)state;
    assert_int_equal(validate_query(none, &req, &resp), 0);
    assert_false(http_has_param(&req, "n"));
    assert_string_equal(http_param(&req, "n"), "");
    cleanup(&req, &resp);
    assert_int_equal(validate_query(ok, &req, &resp), 0);
    assert_true(http_has_param(&req, "n"));
    assert_string_equal(http_param(&req, "n"), "12");
    assert_string_equal(http_param(&req, "name"), "abc");
    assert_string_equal(http_param(&req, "id"), "7");
    cleanup(&req, &resp);
    expect_query_refused(bad_value, "n");
    expect_query_refused(unknown, "tenant");       /* not declared: refused, not ignored */
    expect_query_refused(path_name, "id");         /* a path parameter cannot be overridden */
    expect_query_refused(twice, "n");
    expect_query_refused(empty, "n");
    expect_query_refused(bare, "name");
    expect_query_refused(many, NULL);              /* more than ROUTE_MAX_QUERY */
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    expect_query_refused(too_long, "name");
    big[8] = '\0';                                 /* 8 bytes: the rule's maximum */
    assert_int_equal(validate_query(too_long, &req, &resp), 0);
    cleanup(&req, &resp);
    big[9 - 1] = 'a';
    big[9] = '\0';
    expect_query_refused(too_long, "name");        /* 9: over the rule, under the router's */
}

static void
test_real_table_validation(void **state)
{
    struct http_request req;
    struct http_response resp;
    const char *ok = "{\"codes\":[\"131016\",\"011002\"]}";

    (void)state;
    assert_int_equal(validate(mamori_routes, mamori_nroutes, "POST", "/v1/municipalities/lookup",
                              LISTENER_PUBLIC, ok, strlen(ok), &req, &resp), 0);
    cleanup(&req, &resp);
    /* 131017: wrong check digit (13101 -> 6). */
    static const char *const bad[][2] = {
        { "{\"codes\":[\"131016\",\"131017\"]}", "codes" },
        { "{\"codes\":[]}", "codes" },
        { "{\"codes\":[\"13101\"]}", "codes" },
        { "{\"codes\":\"131016\"}", "codes" },
        { "{\"code\":\"131016\"}", "code" },
        { "{}", "codes" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (validate(mamori_routes, mamori_nroutes, "POST", "/v1/municipalities/lookup",
                     LISTENER_PUBLIC, bad[i][0], strlen(bad[i][0]), &req, &resp) != -1)
            fail_msg("accepted: %s", bad[i][0]);
        expect_error(&resp, 400, "invalid_field", bad[i][1]);
        cleanup(&req, &resp);
    }
    /* 1001 codes: one more than the declared maximum of the list. */
    {
        size_t cap = 16 + 1001 * 9, o = 0;
        char *big = malloc(cap);
        assert_non_null(big);
        o += (size_t)snprintf(big + o, cap - o, "{\"codes\":[");
        for (int i = 0; i < 1001; i++)
            o += (size_t)snprintf(big + o, cap - o, "%s\"131016\"", i ? "," : "");
        snprintf(big + o, cap - o, "]}");
        assert_int_equal(validate(mamori_routes, mamori_nroutes, "POST",
                                  "/v1/municipalities/lookup", LISTENER_PUBLIC, big,
                                  strlen(big), &req, &resp), -1);
        expect_error(&resp, 400, "invalid_field", "codes");
        cleanup(&req, &resp);
        free(big);
    }
    /* The path parameter's check digit, and "lookup" taken as a code. */
    assert_int_equal(validate(mamori_routes, mamori_nroutes, "GET", "/v1/municipalities/131017",
                              LISTENER_PUBLIC, NULL, 0, &req, &resp), -1);
    expect_error(&resp, 400, "invalid_parameter", "code");
    cleanup(&req, &resp);
    assert_int_equal(validate(mamori_routes, mamori_nroutes, "GET", "/v1/municipalities/lookup",
                              LISTENER_PUBLIC, NULL, 0, &req, &resp), -1);
    expect_error(&resp, 400, "invalid_parameter", "code");
    cleanup(&req, &resp);
    /* GET /healthz takes no body. */
    assert_int_equal(validate(mamori_routes, mamori_nroutes, "GET", "/healthz",
                              LISTENER_PUBLIC, "{}", 2, &req, &resp), -1);
    expect_error(&resp, 400, "unexpected_body", NULL);
    cleanup(&req, &resp);
}

static void
test_reply_error_shape(void **state)
{
    struct http_response resp;

    (void)state;
    memset(&resp, 0, sizeof(resp));
    resp.body = json_pack("{s:s}", "old", "body");
    reply_error(&resp, 404, "not_found", "No such thing.", "id");
    expect_error(&resp, 404, "not_found", "id");
    assert_string_equal(json_string_value(json_object_get(json_object_get(resp.body, "error"),
                                                          "message")), "No such thing.");
    /* Replacing an error (the old body is released: see the ASan build). */
    reply_error(&resp, 409, "conflict", "Already there.", NULL);
    expect_error(&resp, 409, "conflict", NULL);
    json_decref(resp.body);
}

/* ---- route-table invariants (deny by default, R6.6 / R6.7) -------------- */

static bool
known_method(const char *m)
{
    static const char *const ok[] = { "GET", "POST", "PUT", "PATCH", "DELETE" };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (m != NULL && strcmp(m, ok[i]) == 0)
            return true;
    return false;
}

static const struct param_rule *
find_param_rule(const struct route *r, const char *name, size_t len)
{
    for (const struct param_rule *p = r->params; p != NULL && p->name != NULL; p++)
        if (strlen(p->name) == len && memcmp(p->name, name, len) == 0)
            return p;
    return NULL;
}

/* Check one route; returns NULL or why it is not acceptable. */
static const char *
route_problem(const struct route *r)
{
    const char *p;
    size_t nparams = 0, nsegs = 0;

    if (r->perm == PERM_INVALID || r->perm >= PERM_END)
        return "no valid permission (deny by default)";
    if (r->listeners == 0 || (r->listeners & ~LISTENER_BOTH) != 0)
        return "listeners not a non-empty subset of LISTENER_BOTH";
    if (r->handler == NULL)
        return "no handler";
    if (!known_method(r->method))
        return "method not one of GET/POST/PUT/PATCH/DELETE";
    if (r->pattern == NULL || r->pattern[0] != '/' || r->pattern[1] == '\0')
        return "pattern must start with '/' and not be '/' alone";
    /* Segments: non-empty, no trailing slash, params fully declared. */
    for (p = r->pattern; *p != '\0';) {
        const char *seg = p + 1, *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        nsegs++;
        if (len == 0)
            return "empty segment or trailing slash in pattern";
        if (seg[0] == '{') {
            const struct param_rule *rule;
            if (len < 3 || seg[len - 1] != '}' || len - 2 >= 32)
                return "malformed {param}";
            rule = find_param_rule(r, seg + 1, len - 2);
            if (rule == NULL)
                return "a {param} without a param_rule";
            if (rule->max_len == 0 || rule->max_len >= ROUTE_PARAM_MAX)
                return "param_rule max_len not in 1..ROUTE_PARAM_MAX-1";
            nparams++;
        } else {
            for (size_t i = 0; i < len; i++)
                if (seg[i] == '{' || seg[i] == '}')
                    return "braces inside a literal segment";
        }
        p = seg + len;
    }
    if (nparams > ROUTE_MAX_PARAMS || nsegs > ROUTE_MAX_SEGMENTS)
        return "too many parameters or segments";
    /* A rule the pattern has no {param} for names a query parameter:
     * bounded, and always with a validator. */
    for (const struct param_rule *pr = r->params; pr != NULL && pr->name != NULL; pr++) {
        char needle[40];
        snprintf(needle, sizeof(needle), "{%s}", pr->name);
        if (strstr(r->pattern, needle) == NULL &&
            (pr->max_len == 0 || pr->max_len >= ROUTE_PARAM_MAX || pr->check == NULL))
            return "a query param_rule without a length in 1..ROUTE_PARAM_MAX-1 or a validator";
    }
    /* A streamed body (R2.6 uploads): raw, never JSON, bounded, typed,
     * and only on a method that carries a body. */
    if (r->sink != NULL) {
        const struct body_sink *k = r->sink;
        if (r->fields != NULL)
            return "a sink route that also declares JSON fields";
        if (r->max_body == 0)
            return "a sink route without max_body";
        if (k->content_types == NULL || k->content_types[0] == NULL)
            return "a sink route accepting no Content-Type";
        if (k->open == NULL || k->write == NULL || k->discard == NULL)
            return "a sink without open, write or discard";
        if (strcmp(r->method, "POST") != 0 && strcmp(r->method, "PUT") != 0)
            return "a sink route that is not POST or PUT";
        return NULL;
    }
    /* A body only where fields are declared, and then bounded. */
    if (r->fields != NULL && r->max_body == 0)
        return "fields declared but max_body is 0";
    if (r->fields == NULL && r->max_body != 0)
        return "max_body set on a route without fields";
    if (r->fields != NULL) {
        if (r->fields[0].name == NULL)
            return "an empty field list (use NULL for no body)";
        for (const struct field_rule *f = r->fields; f->name != NULL; f++) {
            if (f->type < FIELD_STRING || f->type > FIELD_STRING_ARRAY)
                return "a field with an unknown type";
            if ((f->type == FIELD_STRING || f->type == FIELD_STRING_ARRAY) && f->max == 0)
                return "a string or list field without a maximum";
            if (f->type == FIELD_STRING_ARRAY && f->item_max == 0)
                return "a list field without an item maximum";
            if (f->min > f->max && f->type != FIELD_BOOLEAN)
                return "a field with min > max";
            for (const struct field_rule *g = f + 1; g->name != NULL; g++)
                if (strcmp(f->name, g->name) == 0)
                    return "a field declared twice";
        }
    }
    return NULL;
}

/* Table-wide checks; returns NULL or a description (in buf). */
static const char *
table_problem(const struct route *t, size_t n, char *buf, size_t buflen)
{
    if (n == 0)
        return "empty table";
    for (size_t i = 0; i < n; i++) {
        const char *why = route_problem(&t[i]);
        if (why != NULL) {
            snprintf(buf, buflen, "route %zu (%s %s): %s", i,
                     t[i].method ? t[i].method : "?", t[i].pattern ? t[i].pattern : "?", why);
            return buf;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t[i].method, t[j].method) == 0 &&
                strcmp(t[i].pattern, t[j].pattern) == 0) {
                snprintf(buf, buflen, "routes %zu and %zu are both %s %s", j, i,
                         t[i].method, t[i].pattern);
                return buf;
            }
        }
    }
    /* Every route is reachable: a sample path built from its pattern
     * (each {param} replaced by "x") is matched to it, on each of its
     * listeners, and not taken by an earlier, broader route. */
    for (size_t i = 0; i < n; i++) {
        char path[1100];
        size_t o = 0;
        for (const char *p = t[i].pattern; *p != '\0' && o < sizeof(path) - 2;) {
            if (*p == '{') {
                path[o++] = 'x';
                p = strchr(p, '}');
                p = p ? p + 1 : "";
            } else {
                path[o++] = *p++;
            }
        }
        path[o] = '\0';
        for (unsigned l = LISTENER_INTERNAL; l <= LISTENER_PUBLIC; l <<= 1) {
            struct http_request req;
            char allow[64];
            if ((t[i].listeners & l) == 0)
                continue;
            memset(&req, 0, sizeof(req));
            if (router_match(t, n, t[i].method, path, l, &req, allow, sizeof(allow)) != ROUTE_FOUND ||
                req.route != &t[i]) {
                snprintf(buf, buflen, "route %zu (%s %s) is unreachable for %.80s on listener %u",
                         i, t[i].method, t[i].pattern, path, l);
                return buf;
            }
        }
    }
    return NULL;
}

static void
test_route_table_invariants(void **state)
{
    char buf[256];
    const char *why;

    (void)state;
    assert_true(mamori_nroutes > 0);
    why = table_problem(mamori_routes, mamori_nroutes, buf, sizeof(buf));
    if (why != NULL)
        fail_msg("mamori_routes[]: %s", why);
}

/* The invariant checker itself must see forged tables fail. */
static const struct field_rule one_field[] = {
    { "a", FIELD_STRING, true, 0, 8, 0, NULL },
    { NULL, 0, false, 0, 0, 0, NULL },
};
static const struct param_rule zero_len_rule[] = {
    { "id", 0, NULL },
    { NULL, 0, NULL },
};
static const struct param_rule wrong_name_rule[] = {
    { "code", 6, NULL },
    { NULL, 0, NULL },
};
static const struct param_rule unchecked_query_rule[] = {
    { "q", 8, NULL },
    { NULL, 0, NULL },
};

/* A sink for the invariant checker only: never called. */
static int
t_sink_open(const struct http_request *req, struct http_response *resp, void **sink)
{
    (void)req;
    (void)resp;
    *sink = NULL;
    return -1;
}

static int
t_sink_write(void *sink, const void *data, size_t n)
{
    (void)sink;
    (void)data;
    (void)n;
    return -1;
}

static void
t_sink_discard(void *sink)
{
    (void)sink;
}

static const char *const t_csv_types[] = { "text/csv", NULL };
static const char *const t_no_types[] = { NULL };
static const struct body_sink t_sink = { t_csv_types, t_sink_open, t_sink_write,
                                         t_sink_discard };
static const struct body_sink t_sink_untyped = { t_no_types, t_sink_open, t_sink_write,
                                                 t_sink_discard };
static const struct body_sink t_sink_no_discard = { t_csv_types, t_sink_open, t_sink_write,
                                                    NULL };

static void
test_route_table_invariants_catch_forgeries(void **state)
{
    static const struct route forged[][2] = {
        /* no permission */
        { { "GET", "/a", LISTENER_BOTH, PERM_INVALID, 0, NULL, NULL, h_dummy, NULL } },
        { { "GET", "/a", LISTENER_BOTH, PERM_END, 0, NULL, NULL, h_dummy, NULL } },
        /* no listener, or an unknown one */
        { { "GET", "/a", 0, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL } },
        { { "GET", "/a", 0x4u, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL } },
        /* no handler */
        { { "GET", "/a", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, NULL, NULL } },
        /* a {param} without a rule, with a zero max_len, with the wrong name */
        { { "GET", "/a/{id}", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL } },
        { { "GET", "/a/{id}", LISTENER_BOTH, PERM_ANONYMOUS, 0, zero_len_rule, NULL, h_dummy, NULL } },
        { { "GET", "/a/{id}", LISTENER_BOTH, PERM_ANONYMOUS, 0, wrong_name_rule, NULL, h_dummy, NULL } },
        /* a query parameter without a validator */
        { { "GET", "/a", LISTENER_BOTH, PERM_ANONYMOUS, 0, unchecked_query_rule, NULL, h_dummy, NULL } },
        /* a body without a limit, a limit without a body */
        { { "POST", "/a", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, one_field, h_dummy, NULL } },
        { { "POST", "/a", LISTENER_BOTH, PERM_ANONYMOUS, 1024, NULL, NULL, h_dummy, NULL } },
        /* a streamed body (R2.6): with JSON fields, unbounded, untyped,
         * without a way to discard it, on a method without a body */
        { { "POST", "/a", LISTENER_BOTH, PERM_ANONYMOUS, 1024, NULL, one_field, h_dummy,
            &t_sink } },
        { { "POST", "/a", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, &t_sink } },
        { { "POST", "/a", LISTENER_BOTH, PERM_ANONYMOUS, 1024, NULL, NULL, h_dummy,
            &t_sink_untyped } },
        { { "POST", "/a", LISTENER_BOTH, PERM_ANONYMOUS, 1024, NULL, NULL, h_dummy,
            &t_sink_no_discard } },
        { { "GET", "/a", LISTENER_BOTH, PERM_ANONYMOUS, 1024, NULL, NULL, h_dummy, &t_sink } },
        /* methods */
        { { "TRACE", "/a", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL } },
        { { "get", "/a", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL } },
        /* pattern shape */
        { { "GET", "/a/", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL } },
        { { "GET", "a", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL } },
        /* the same method and pattern twice */
        { { "GET", "/a", LISTENER_INTERNAL, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL },
          { "GET", "/a", LISTENER_PUBLIC, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL } },
        /* a route shadowed by an earlier, broader one */
        { { "GET", "/a/{id}", LISTENER_BOTH, PERM_ANONYMOUS, 0, id_rule, NULL, h_dummy, NULL },
          { "GET", "/a/list", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL } },
    };
    char buf[256];

    (void)state;
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        size_t n = forged[i][1].method != NULL ? 2 : 1;
        if (table_problem(forged[i], n, buf, sizeof(buf)) == NULL)
            fail_msg("forged table %zu (%s %s) passed the invariants", i,
                     forged[i][0].method ? forged[i][0].method : "?", forged[i][0].pattern);
    }
    /* And a sound two-route table passes (literal before parameter). */
    static const struct route sound[] = {
        { "GET", "/a/list", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, h_dummy, NULL },
        { "GET", "/a/{id}", LISTENER_BOTH, PERM_ANONYMOUS, 0, id_rule, NULL, h_dummy, NULL },
        { "POST", "/a", LISTENER_INTERNAL, PERM_ANONYMOUS, 512, NULL, one_field, h_dummy, NULL },
        { "POST", "/a/upload", LISTENER_INTERNAL, PERM_ANONYMOUS, 1 << 20, NULL, NULL, h_dummy,
          &t_sink },
    };
    assert_null(table_problem(sound, 4, buf, sizeof(buf)));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_literal_and_params),
        cmocka_unit_test(test_match_path_shape_rules),
        cmocka_unit_test(test_match_param_and_path_length),
        cmocka_unit_test(test_bad_method_allow_list),
        cmocka_unit_test(test_listener_filtering),
        cmocka_unit_test(test_real_table_matching),
        cmocka_unit_test(test_validate_accepts_declared_fields),
        cmocka_unit_test(test_validate_unknown_field_named),
        cmocka_unit_test(test_validate_required_missing),
        cmocka_unit_test(test_validate_wrong_types),
        cmocka_unit_test(test_validate_lengths_and_ranges),
        cmocka_unit_test(test_validate_string_array_items),
        cmocka_unit_test(test_validate_malformed_json),
        cmocka_unit_test(test_validate_duplicate_keys),
        cmocka_unit_test(test_validate_unexpected_body),
        cmocka_unit_test(test_validate_path_params),
        cmocka_unit_test(test_validate_query_params),
        cmocka_unit_test(test_real_table_validation),
        cmocka_unit_test(test_reply_error_shape),
        cmocka_unit_test(test_route_table_invariants),
        cmocka_unit_test(test_route_table_invariants_catch_forgeries),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
