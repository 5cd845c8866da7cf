/*
 * router.h - the declarative route table and request validation.
 *
 * Each route declares its method, path pattern, the listener(s) it is
 * served on, the permission it needs, its body size limit and the
 * validators of its path parameters and JSON body fields.  Anything not
 * declared is refused: undeclared paths 404, other methods 405, larger
 * bodies 413, malformed or duplicate-key JSON and unknown or invalid
 * fields 400 (allowlist at the edge, like Kore).
 */
#ifndef MAMORI_ROUTER_H
#define MAMORI_ROUTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/perm.h"

#define ROUTE_MAX_PARAMS   4
#define ROUTE_PARAM_MAX    128     /* bytes of one path parameter */
#define ROUTE_MAX_SEGMENTS 12
#define ROUTE_MAX_QUERY    8       /* query parameters of one request */

/* Which listener a route is on. */
#define LISTENER_INTERNAL 0x1u     /* LG-WAN side, client certificate required */
#define LISTENER_PUBLIC   0x2u     /* internet side: never individual numbers (R1.5) */
#define LISTENER_BOTH     (LISTENER_INTERNAL | LISTENER_PUBLIC)

/* Permissions (enum perm) and the role matrix live in auth/perm.h. */

/* A validator returns NULL if the value is acceptable, or a plain reason. */
typedef const char *(*value_check)(const char *value);

/* A rule names a path parameter ({name} in the pattern) or, if the
 * pattern has no such segment, a query parameter (?name=value). */
struct param_rule {
    const char *name;          /* as in the pattern's {name}, or a query name */
    size_t      max_len;
    value_check check;         /* may be NULL */
};

enum field_type { FIELD_STRING = 1, FIELD_INTEGER, FIELD_BOOLEAN, FIELD_STRING_ARRAY };

struct field_rule {
    const char     *name;
    enum field_type type;
    bool            required;
    size_t          min, max;  /* string bytes / array items / integer range */
    size_t          item_max;  /* string array: bytes per item */
    value_check     check;     /* strings and string array items; may be NULL */
};

struct http_request;
struct http_response;
typedef void (*route_handler)(const struct http_request *req,
                              struct http_response *resp);

/* A route that takes a raw body streamed to a sink instead of a JSON body
 * held in memory (large uploads).  The server calls open() once the request
 * is authorized and its path and query validated (session + permission
 * and the param rules, from the headers, BEFORE any byte of the body is
 * read), write() for each chunk, and on success hands the sink to the
 * handler in req->upload; if the request is refused or cut off after
 * open(), the server calls discard().
 *
 * open() is the route's own say from the headers (R2.6): it returns 0
 * with *sink set, or non-zero to refuse the upload.  A refusing open()
 * leaves nothing open (*sink is not looked at) and fills resp with its
 * answer (reply_error: a 4xx or 5xx status, a code, a plain sentence;
 * resp->retry_after if the client may simply try again later); the
 * server sends it at once and closes the connection with the body unread,
 * like its own header-time refusals.  A non-zero return that leaves no
 * 4xx/5xx error in resp is answered 503 (fail closed).
 *
 * Rules the server enforces for such a route (server.c): the
 * Content-Type must be one of content_types (415); max_body is the hard
 * limit, on Content-Length up front and on the running total of a
 * chunked body (413); an empty body is a 400; a write() failure is a 503
 * (507 when write() left ENOSPC in errno).  Refusals made from the headers
 * close the connection without reading the body. */
struct body_sink {
    const char *const *content_types;   /* accepted Content-Type values (NULL-terminated), e.g. "text/csv" */
    int  (*open)(const struct http_request *req, struct http_response *resp,
                 void **sink);                                   /* 0, or non-zero: resp refuses */
    int  (*write)(void *sink, const void *data, size_t n);       /* 0, or -1: 503/507, request fails */
    void (*discard)(void *sink);                                 /* wipe and free */
};

struct route {
    const char *method;        /* "GET", "POST", ... */
    const char *pattern;       /* "/v1/municipalities/{code}" */
    unsigned    listeners;     /* LISTENER_* */
    enum perm   perm;
    size_t      max_body;      /* 0: no body accepted */
    const struct param_rule *params;  /* terminated by {NULL}; may be NULL */
    const struct field_rule *fields;  /* terminated by {NULL}; NULL: no body */
    route_handler handler;
    /* Streamed raw body (fields must be NULL); NULL for JSON routes. */
    const struct body_sink *sink;
};

/* What a handler sees.  Everything is validated before the handler runs. */
struct http_request {
    unsigned            listener;             /* LISTENER_INTERNAL or _PUBLIC */
    const struct route *route;
    size_t              nparams;
    char                param_names[ROUTE_MAX_PARAMS][32];
    char                params[ROUTE_MAX_PARAMS][ROUTE_PARAM_MAX];
    json_t             *body;                 /* validated object or NULL; borrowed */
    /* Query parameters as sent (router_add_query); router_validate
     * refuses any the route's param rules do not name. */
    size_t              nquery;
    char                query_names[ROUTE_MAX_QUERY][32];
    char                query[ROUTE_MAX_QUERY][ROUTE_PARAM_MAX];
    const char         *query_problem;        /* set by router_add_query, static text */
    char                query_problem_name[32];
    bool                has_terminal;
    uint8_t             terminal_fp[32];      /* internal listener: the verified terminal */
    char                request_id[17];
    char                source[48];           /* client IP address, for audit and blocking (R7.4) */
    void               *env;                  /* worker environment (worker.h) */
    /* Credentials as presented (server.c fills, auth/api.c checks). */
    char                token[65];            /* Bearer or mamori_session cookie */
    bool                token_from_cookie;
    char                csrf_header[65];      /* X-CSRF-Token */
    /* The checked session (auth_authorize), for PERM_ANONYMOUS routes unset. */
    bool                authed;
    enum role           role;
    bool                must_change;
    char                user_id[33];
    char                tenant[7];
    uint8_t             session_hash[32];
    /* Sink routes: the completed sink (everything the client sent has
     * gone through write()).  Owned by the server until a handler takes
     * it with http_request_take_upload(); the server discards it after
     * the handler otherwise. */
    void               *upload;
};

/* A handler fills this.  body is owned by the response (decref'd by the
 * server after sending). */
struct http_response {
    unsigned status;
    json_t  *body;
    bool     close;            /* ask the client to close the connection */
    char     allow[64];        /* for 405: the Allow header */
    char     cookies[3][192];  /* Set-Cookie header values ("" = none) */
    /* A body that is not JSON (e.g. a CSV report): sent instead of body
     * with content_type.  malloc'd; owned by the response (the server
     * frees it). */
    char       *raw;
    size_t      raw_len;
    const char *content_type;  /* static text */
    /* Seconds for a Retry-After header (0 = none): a refusal the client
     * may simply repeat later, e.g. a full upload queue (503). */
    unsigned    retry_after;
};

enum route_result { ROUTE_FOUND = 0, ROUTE_NOT_FOUND, ROUTE_BAD_METHOD };

/* The table (routes.c) and its size. */
extern const struct route mamori_routes[];
extern const size_t mamori_nroutes;

/* Find the route for method+path on `listener`.  On ROUTE_FOUND fills the
 * request's route and params (percent-decoding is not done: parameters
 * are restricted to unreserved characters).  On ROUTE_BAD_METHOD writes
 * the allowed methods into allow.  A parameter that is too long or has
 * characters outside [A-Za-z0-9._~-] makes the path not found. */
enum route_result router_match(const struct route *table, size_t n,
                               const char *method, const char *path,
                               unsigned listener, struct http_request *req,
                               char *allow, size_t allowlen);

/* Validate path parameters and the raw body against the route.  On
 * success req->body holds the parsed object (caller decrefs).  On
 * failure fills resp with a 400 error naming the field and returns -1. */
int router_validate(const struct route *r, const char *body, size_t len,
                    struct http_request *req, struct http_response *resp)
    __attribute__((warn_unused_result));

/* Record one query parameter (server.c, once per ?name=value; value
 * NULL for a bare name).  Too many, too long or repeated parameters are
 * remembered and refused by router_validate with a 400 naming them. */
void router_add_query(struct http_request *req, const char *name, const char *value);

/* Take the completed sink of a sink route: the caller owns it from now
 * on (and must discard it the sink's way); the server will not touch it
 * again.  NULL if there is none or it was taken already.  Handlers see
 * the request as const; the server's request object is not, and this is
 * the one field a handler may change (server.c). */
void *http_request_take_upload(const struct http_request *req);

/* Get a validated path or query parameter by name ("" if absent). */
const char *http_param(const struct http_request *req, const char *name);

/* True if the request carries the query parameter `name`. */
bool http_has_param(const struct http_request *req, const char *name);

#endif
