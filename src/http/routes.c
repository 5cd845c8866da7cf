/*
 * routes.c - the route table: every path mamorid serves, in one place.
 *
 * Adding a capability means adding rows here (and their handlers in the
 * module that owns the data).  The route-table test checks every row
 * declares a permission, listeners and validators for its parameters.
 */
#include <string.h>

#include "common/util.h"
#include "http/reply.h"
#include "http/router.h"
#include "ref/lgcode.h"
#include "worker/worker.h"

/* --- validators --------------------------------------------------- */

static const char *
check_lgcode(const char *v)
{
    if (strlen(v) != LGCODE_LEN)
        return "must be 6 digits";
    return lgcode_valid(v) ? NULL : "is not a valid local government code (check digit)";
}

/* --- handlers ----------------------------------------------------- */

static void
h_healthz(const struct http_request *req, struct http_response *resp)
{
    (void)req;
    reply_json(resp, 200, json_pack("{s:s,s:s}", "status", "ok",
                                    "version", MAMORI_VERSION));
}

/* The identity every internal request is bound to (R6.2, R8.1). */
static void
h_terminal(const struct http_request *req, struct http_response *resp)
{
    char hex[65];

    if (!req->has_terminal || util_hex_encode(req->terminal_fp, 32, hex, sizeof(hex)) != 0) {
        reply_error(resp, 403, "no_terminal", "No terminal certificate is bound to this request.", NULL);
        return;
    }
    reply_json(resp, 200, json_pack("{s:s}", "fingerprint", hex));
}

static json_t *
lgcode_json(const struct lgcode_entry *e)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s?}", "code", e->code,
                     "prefecture", e->pref_name, "name", e->name,
                     "name_kana", e->name_kana, "kind", e->kind,
                     "parent", e->parent[0] ? e->parent : NULL);
}

static void
h_municipality(const struct http_request *req, struct http_response *resp)
{
    const struct worker_env *env = req->env;
    const struct lgcode_entry *e = lgcode_lookup(env->lgcodes, http_param(req, "code"));

    if (e == NULL) {
        reply_error(resp, 404, "unknown_municipality",
                    "No local government has this code.", "code");
        return;
    }
    reply_json(resp, 200, lgcode_json(e));
}

/* Batch check, e.g. of the previous-municipality column of a bulk file:
 * every code is answered, found or not, in the order given. */
static void
h_municipality_lookup(const struct http_request *req, struct http_response *resp)
{
    const struct worker_env *env = req->env;
    json_t *codes = json_object_get(req->body, "codes");
    json_t *results = json_array(), *v;
    size_t i;

    json_array_foreach(codes, i, v) {
        const struct lgcode_entry *e = lgcode_lookup(env->lgcodes, json_string_value(v));
        json_array_append_new(results, e ? lgcode_json(e)
                                         : json_pack("{s:s,s:b}", "code",
                                                     json_string_value(v), "found", 0));
    }
    reply_json(resp, 200, json_pack("{s:o}", "results", results));
}

/* --- the table ---------------------------------------------------- */

static const struct param_rule lgcode_param[] = {
    { "code", LGCODE_LEN, check_lgcode },
    { NULL, 0, NULL },
};

static const struct field_rule lookup_fields[] = {
    { "codes", FIELD_STRING_ARRAY, true, 1, 1000, LGCODE_LEN, check_lgcode },
    { NULL, 0, false, 0, 0, 0, NULL },
};

const struct route mamori_routes[] = {
    { "GET",  "/healthz", LISTENER_BOTH, PERM_ANONYMOUS, 0, NULL, NULL, h_healthz },
    { "GET",  "/v1/terminal", LISTENER_INTERNAL, PERM_ANONYMOUS, 0, NULL, NULL, h_terminal },
    { "GET",  "/v1/municipalities/{code}", LISTENER_BOTH, PERM_ANONYMOUS, 0,
      lgcode_param, NULL, h_municipality },
    { "POST", "/v1/municipalities/lookup", LISTENER_BOTH, PERM_ANONYMOUS, 16 * 1024,
      NULL, lookup_fields, h_municipality_lookup },
};

const size_t mamori_nroutes = sizeof(mamori_routes) / sizeof(mamori_routes[0]);
