/*
 * server.h - one HTTPS listener served by libmicrohttpd over GnuTLS.
 *
 * The server owns the HTTP state machine only: it finds the route,
 * enforces the body limit, validates input, binds internal requests to
 * the verified terminal and calls the handler.  Handlers never see a
 * request that failed any of those steps.
 */
#ifndef MAMORI_HTTP_SERVER_H
#define MAMORI_HTTP_SERVER_H

#include <stddef.h>

#include "http/router.h"

struct http_server_params {
    unsigned    listener;       /* LISTENER_INTERNAL or LISTENER_PUBLIC */
    int         listen_fd;      /* bound, listening socket (not owned) */
    const char *cert_pem;       /* server certificate chain */
    const char *key_pem;        /* server private key */
    const char *trust_pem;      /* internal: terminal CA; public: NULL */
    const char *priorities;     /* GnuTLS priority string */
    unsigned    threads;
    unsigned    connection_timeout;
    unsigned    max_connections;
    const struct route *routes;
    size_t      nroutes;
    void       *env;            /* passed to handlers as req->env */
};

struct http_server;

/* Start serving on p->listen_fd with its own thread pool.  The PEM
 * strings are copied by libmicrohttpd/GnuTLS during the call.
 * On success *out is owned by the caller (http_server_stop). */
int http_server_start(const struct http_server_params *p, struct http_server **out)
    __attribute__((warn_unused_result));

/* Stop accepting new connections; requests in flight go on, and their
 * responses ask the client to close.  Idempotent. */
void http_server_quiesce(struct http_server *s);

/* Requests received but not yet completed. */
unsigned http_server_inflight(const struct http_server *s);

/* Close every connection, join the threads and free the server. */
void http_server_stop(struct http_server *s);

#endif
