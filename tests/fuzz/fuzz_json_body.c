/*
 * fuzz_json_body.c - libFuzzer harness: the route table's request
 * validation (src/http/router.c), the allowlist at the edge.
 *
 * Input: one line "METHOD /path?query" then the body, e.g.
 *
 *   POST /v1/staff
 *   {"user":"yamada","role":"clerk"}
 *
 * The line is matched against the real table (mamori_routes) on the
 * internal listener, else the public one, query parameters are added as server.c adds them,
 * and router_validate parses the body (jansson, duplicate keys refused)
 * and applies the route's field rules.  Properties beyond "no crash, no
 * leak, no undefined behaviour":
 *
 *  - accepted: the body is an object holding only declared fields, each
 *    of its declared type, with every required field present;
 *  - refused: a 4xx/5xx answer with the one error shape (code, message),
 *    whose message is not longer than a sentence.
 *
 * Handlers are never called.  test_csv replays the seeds and regressions.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fj_require(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_json_body: property broken: %s\n", what);
        abort();
    }
}

static const struct field_rule *
fj_rule(const struct route *r, const char *key)
{
    for (const struct field_rule *f = r->fields; f != NULL && f->name != NULL; f++)
        if (strcmp(f->name, key) == 0)
            return f;
    return NULL;
}

static void
fj_accepted(const struct route *r, json_t *body)
{
    const char *key;
    json_t *v;

    if (r->fields == NULL) {
        fj_require(body == NULL, "no body for a route without fields");
        return;
    }
    fj_require(json_is_object(body), "accepted body is an object");
    json_object_foreach(body, key, v) {
        const struct field_rule *f = fj_rule(r, key);

        fj_require(f != NULL, "accepted body has only declared fields");
        switch (f->type) {
        case FIELD_STRING:
            fj_require(json_is_string(v) && json_string_length(v) <= f->max,
                       "string field within its length");
            break;
        case FIELD_INTEGER:
            fj_require(json_is_integer(v), "integer field");
            break;
        case FIELD_BOOLEAN:
            fj_require(json_is_boolean(v), "boolean field");
            break;
        case FIELD_STRING_ARRAY:
            fj_require(json_is_array(v) && json_array_size(v) <= f->max,
                       "array field within its size");
            break;
        }
    }
    for (const struct field_rule *f = r->fields; f->name != NULL; f++)
        fj_require(!f->required || json_object_get(body, f->name) != NULL,
                   "required fields present");
}

static void
fj_refused(const struct http_response *resp)
{
    json_t *err = json_object_get(resp->body, "error");
    const char *msg = json_string_value(json_object_get(err, "message"));

    fj_require(resp->status >= 400 && resp->status < 600, "refusal status");
    fj_require(json_is_string(json_object_get(err, "code")), "error code");
    fj_require(msg != NULL && strlen(msg) < 256, "error message is a sentence");
}

/* Split "a=b&c&d=e" the way the server hands query parameters over. */
static void
fj_query(struct http_request *req, char *q)
{
    for (char *part = q; part != NULL && *part != '\0';) {
        char *amp = strchr(part, '&'), *eq;

        if (amp != NULL)
            *amp = '\0';
        eq = strchr(part, '=');
        if (eq != NULL)
            *eq = '\0';
        router_add_query(req, part, eq != NULL ? eq + 1 : NULL);
        part = amp != NULL ? amp + 1 : NULL;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    char line[1100], *sp, *q, allow[64];
    struct http_request *req;
    struct http_response resp;
    const char *body;
    size_t n, blen;

    if (nl == NULL || (n = (size_t)(nl - data)) >= sizeof(line) || memchr(data, '\0', n))
        return 0;
    memcpy(line, data, n);
    line[n] = '\0';
    body = (const char *)nl + 1;
    blen = size - n - 1;
    if ((sp = strchr(line, ' ')) == NULL)
        return 0;
    *sp = '\0';
    if ((q = strchr(sp + 1, '?')) != NULL)
        *q++ = '\0';
    /* The request struct is large; on the heap, as the server has it. */
    if ((req = calloc(1, sizeof(*req))) == NULL)
        return 0;
    memset(&resp, 0, sizeof(resp));
    /* The internal listener first, then the public one (the site routes). */
    req->listener = LISTENER_INTERNAL;
    if (router_match(mamori_routes, mamori_nroutes, line, sp + 1, LISTENER_INTERNAL,
                     req, allow, sizeof(allow)) != ROUTE_FOUND) {
        memset(req, 0, sizeof(*req));
        req->listener = LISTENER_PUBLIC;
        if (router_match(mamori_routes, mamori_nroutes, line, sp + 1, LISTENER_PUBLIC,
                         req, allow, sizeof(allow)) != ROUTE_FOUND)
            req->route = NULL;
    }
    if (req->route != NULL) {
        if (q != NULL)
            fj_query(req, q);
        if (router_validate(req->route, body, blen, req, &resp) == 0) {
            fj_accepted(req->route, req->body);
            json_decref(req->body);
        } else {
            fj_require(req->body == NULL, "no body kept on refusal");
            fj_refused(&resp);
        }
    }
    json_decref(resp.body);
    free(resp.raw);
    free(req);
    return 0;
}
