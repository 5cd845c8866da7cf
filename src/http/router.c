/*
 * router.c - route matching and input validation.
 */
#include "http/router.h"

#include <stdio.h>
#include <string.h>

#include "http/reply.h"

static bool
unreserved(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Compare one pattern against a path segment by segment, capturing
 * {params}.  Returns true on a match. */
static bool
match_pattern(const char *pattern, const char *path, struct http_request *req)
{
    const char *p = pattern, *s = path;

    req->nparams = 0;
    while (*p != '\0' && *s != '\0') {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        const char *pend = strchr(p, '/');
        const char *send = strchr(s, '/');
        size_t plen = pend ? (size_t)(pend - p) : strlen(p);
        size_t slen = send ? (size_t)(send - s) : strlen(s);
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (slen == 0 || slen >= ROUTE_PARAM_MAX || plen - 2 >= 32 ||
                req->nparams == ROUTE_MAX_PARAMS)
                return false;
            for (size_t i = 0; i < slen; i++)
                if (!unreserved(s[i]))
                    return false;
            memcpy(req->param_names[req->nparams], p + 1, plen - 2);
            req->param_names[req->nparams][plen - 2] = '\0';
            memcpy(req->params[req->nparams], s, slen);
            req->params[req->nparams][slen] = '\0';
            req->nparams++;
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return false;
        }
        p += plen;
        s += slen;
    }
    return *p == '\0' && *s == '\0';
}

enum route_result
router_match(const struct route *table, size_t n, const char *method,
             const char *path, unsigned listener, struct http_request *req,
             char *allow, size_t allowlen)
{
    bool path_known = false;
    size_t used = 0;

    if (allowlen > 0)
        allow[0] = '\0';
    if (path[0] != '/' || strlen(path) > 1024)
        return ROUTE_NOT_FOUND;
    for (size_t i = 0; i < n; i++) {
        const struct route *r = &table[i];
        if ((r->listeners & listener) == 0 || !match_pattern(r->pattern, path, req))
            continue;
        if (strcmp(r->method, method) == 0) {
            req->route = r;
            return ROUTE_FOUND;
        }
        path_known = true;
        int w = snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "",
                         r->method);
        if (w > 0 && (size_t)w < allowlen - used)
            used += (size_t)w;
    }
    req->nparams = 0;
    return path_known ? ROUTE_BAD_METHOD : ROUTE_NOT_FOUND;
}

const char *
http_param(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++)
        if (strcmp(req->param_names[i], name) == 0)
            return req->params[i];
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query_names[i], name) == 0)
            return req->query[i];
    return "";
}

bool
http_has_param(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++)
        if (strcmp(req->param_names[i], name) == 0)
            return true;
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query_names[i], name) == 0)
            return true;
    return false;
}

static void
query_problem(struct http_request *req, const char *name, const char *why)
{
    req->query_problem = why;
    snprintf(req->query_problem_name, sizeof(req->query_problem_name), "%s", name);
}

void
router_add_query(struct http_request *req, const char *name, const char *value)
{
    size_t n = req->nquery;

    if (req->query_problem != NULL)
        return;                         /* the first problem is the one reported */
    if (name[0] == '\0' || strlen(name) >= sizeof(req->query_names[0])) {
        query_problem(req, "", "has a parameter whose name is empty or too long");
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(req->query_names[i], name) == 0) {
            /* Which of two values would count is ambiguous: refuse both. */
            query_problem(req, name, "is given more than once");
            return;
        }
    if (n == ROUTE_MAX_QUERY) {
        query_problem(req, "", "has too many parameters");
        return;
    }
    if (value != NULL && strlen(value) >= sizeof(req->query[0])) {
        query_problem(req, name, "is too long");
        return;
    }
    snprintf(req->query_names[n], sizeof(req->query_names[n]), "%s", name);
    snprintf(req->query[n], sizeof(req->query[n]), "%s", value != NULL ? value : "");
    req->nquery = n + 1;
}

static int
check_params(const struct route *r, const struct http_request *req,
             struct http_response *resp)
{
    for (size_t i = 0; i < req->nparams; i++) {
        const struct param_rule *rule = NULL;
        for (const struct param_rule *pr = r->params; pr && pr->name; pr++)
            if (strcmp(pr->name, req->param_names[i]) == 0)
                rule = pr;
        if (rule == NULL) {
            /* A pattern parameter without a rule is a table bug: refuse. */
            reply_error(resp, 500, "internal_error", "This route is misconfigured.", NULL);
            return -1;
        }
        const char *why = strlen(req->params[i]) > rule->max_len
                              ? "is too long" : (rule->check ? rule->check(req->params[i]) : NULL);
        if (why != NULL) {
            char msg[160];
            snprintf(msg, sizeof(msg), "The path parameter %s %s.", rule->name, why);
            reply_error(resp, 400, "invalid_parameter", msg, rule->name);
            return -1;
        }
    }
    return 0;
}

static const char *
check_string(const struct field_rule *f, json_t *v, size_t max)
{
    size_t len;

    if (!json_is_string(v))
        return "must be a string";
    len = json_string_length(v);
    if (strlen(json_string_value(v)) != len)
        return "must not contain NUL characters";
    if (len < f->min && f->type == FIELD_STRING)
        return "is too short";
    if (len > max)
        return "is too long";
    return f->check ? f->check(json_string_value(v)) : NULL;
}

static const char *
check_field(const struct field_rule *f, json_t *v)
{
    size_t i;
    json_t *item;

    switch (f->type) {
    case FIELD_STRING:
        return check_string(f, v, f->max);
    case FIELD_INTEGER:
        if (!json_is_integer(v))
            return "must be a whole number";
        if (json_integer_value(v) < (json_int_t)f->min ||
            json_integer_value(v) > (json_int_t)f->max)
            return "is out of range";
        return NULL;
    case FIELD_BOOLEAN:
        return json_is_boolean(v) ? NULL : "must be true or false";
    case FIELD_STRING_ARRAY:
        if (!json_is_array(v))
            return "must be a list of strings";
        if (json_array_size(v) < f->min)
            return "has too few items";
        if (json_array_size(v) > f->max)
            return "has too many items";
        json_array_foreach(v, i, item) {
            const char *why = check_string(f, item, f->item_max);
            if (why != NULL)
                return why;
        }
        return NULL;
    }
    return "has an unsupported type";
}

static int
field_error(struct http_response *resp, const char *field, const char *why)
{
    char msg[200];

    snprintf(msg, sizeof(msg), "The field %s %s.", field, why);
    reply_error(resp, 400, "invalid_field", msg, field);
    return -1;
}

/* Unknown keys are named back only when short printable ASCII, and
 * never when they hold a run of 12 digits: a key may be an individual
 * number, which no answer may repeat (R1.5, R2.2). */
static bool
printable_name(const char *s)
{
    size_t n = 0, digits = 0;

    for (; *s != '\0'; s++, n++) {
        if (*s < 0x21 || *s > 0x7e || n >= 48)
            return false;
        digits = (*s >= '0' && *s <= '9') ? digits + 1 : 0;
        if (digits >= 12)
            return false;
    }
    return n > 0;
}

/* Is {name} a segment of the pattern (a path parameter)? */
static bool
pattern_has(const char *pattern, const char *name)
{
    size_t n = strlen(name);

    for (const char *p = strchr(pattern, '{'); p != NULL; p = strchr(p + 1, '{'))
        if (strncmp(p + 1, name, n) == 0 && p[1 + n] == '}')
            return true;
    return false;
}

static int
query_error(struct http_response *resp, const char *name, const char *why)
{
    char msg[200];
    bool named = printable_name(name);

    if (name[0] == '\0')
        snprintf(msg, sizeof(msg), "The query string %s.", why);
    else
        snprintf(msg, sizeof(msg), "The query parameter %s %s.", named ? name : "(unnamed)",
                 why);
    reply_error(resp, 400, "invalid_parameter", msg, named ? name : NULL);
    return -1;
}

/* Query parameters: only those the route's param rules name (and that
 * are not path parameters), each non-empty, within its length and
 * accepted by its validator (allowlist at the edge). */
static int
check_query(const struct route *r, const struct http_request *req,
            struct http_response *resp)
{
    if (req->query_problem != NULL)
        return query_error(resp, req->query_problem_name, req->query_problem);
    for (size_t i = 0; i < req->nquery; i++) {
        const char *name = req->query_names[i], *v = req->query[i], *why;
        const struct param_rule *rule = NULL;
        for (const struct param_rule *pr = r->params; pr && pr->name; pr++)
            if (strcmp(pr->name, name) == 0 && !pattern_has(r->pattern, name))
                rule = pr;
        if (rule == NULL)
            return query_error(resp, name, "is not accepted here");
        why = v[0] == '\0'           ? "must not be empty"
            : strlen(v) > rule->max_len ? "is too long"
            : rule->check != NULL       ? rule->check(v) : NULL;
        if (why != NULL)
            return query_error(resp, name, why);
    }
    return 0;
}

static int
check_body(const struct route *r, json_t *body, struct http_response *resp)
{
    const char *key;
    json_t *v;

    /* Only declared fields are accepted. */
    json_object_foreach(body, key, v) {
        const struct field_rule *f = r->fields;
        while (f->name != NULL && strcmp(f->name, key) != 0)
            f++;
        if (f->name == NULL)
            return field_error(resp, printable_name(key) ? key : "(unnamed)",
                               "is not accepted here");
        const char *why = check_field(f, v);
        if (why != NULL)
            return field_error(resp, f->name, why);
    }
    for (const struct field_rule *f = r->fields; f->name != NULL; f++)
        if (f->required && json_object_get(body, f->name) == NULL)
            return field_error(resp, f->name, "is required");
    return 0;
}

int
router_validate(const struct route *r, const char *body, size_t len,
                struct http_request *req, struct http_response *resp)
{
    json_error_t jerr;
    json_t *doc;

    req->body = NULL;
    if (check_params(r, req, resp) != 0 || check_query(r, req, resp) != 0)
        return -1;
    if (r->fields == NULL) {
        if (len > 0) {
            reply_error(resp, 400, "unexpected_body", "This request takes no body.", NULL);
            return -1;
        }
        return 0;
    }
    if (len == 0) {
        reply_error(resp, 400, "missing_body", "A JSON object body is required.", NULL);
        return -1;
    }
    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        char msg[200];
        /* jansson's text names the problem and position, not the data. */
        snprintf(msg, sizeof(msg), "The body is not valid JSON (line %d, column %d).",
                 jerr.line, jerr.column);
        reply_error(resp, 400, json_error_code(&jerr) == json_error_duplicate_key
                                   ? "duplicate_key" : "malformed_json", msg, NULL);
        return -1;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        reply_error(resp, 400, "malformed_json", "The body must be a JSON object.", NULL);
        return -1;
    }
    if (check_body(r, doc, resp) != 0) {
        json_decref(doc);
        return -1;
    }
    req->body = doc;
    return 0;
}
