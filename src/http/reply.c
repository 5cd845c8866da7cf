/*
 * reply.c - response helpers.
 */
#include "http/reply.h"

void
reply_error(struct http_response *resp, unsigned status, const char *code,
            const char *message, const char *field)
{
    json_t *err = json_pack("{s:s,s:s}", "code", code, "message", message);

    if (err != NULL && field != NULL)
        json_object_set_new(err, "field", json_string(field));
    json_decref(resp->body);
    resp->body = json_pack("{s:o*}", "error", err);
    resp->status = status;
}

void
reply_json(struct http_response *resp, unsigned status, json_t *body)
{
    json_decref(resp->body);
    resp->body = body;
    resp->status = status;
}
