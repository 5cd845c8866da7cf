/*
 * reply.h - the one JSON shape of every response error.
 *
 *   {"error": {"code": "not_found", "message": "...", "field": "code",
 *              "request_id": "..."}}
 *
 * `code` is a stable machine identifier, `message` a plain sentence for
 * people, `field` (only when it applies) names the offending input.
 * Messages never echo the submitted value: it may be personal data.
 */
#ifndef MAMORI_REPLY_H
#define MAMORI_REPLY_H

#include "http/router.h"

/* Replace resp's body with an error.  field may be NULL. */
void reply_error(struct http_response *resp, unsigned status, const char *code,
                 const char *message, const char *field);

/* Set a JSON body (stolen) with status. */
void reply_json(struct http_response *resp, unsigned status, json_t *body);

#endif
