/*
 * harness.h - start the real mamorid on ephemeral loopback ports with a
 * temporary data directory (made by the real `mamori init`), and talk to
 * it with libcurl or a raw GnuTLS client.
 */
#ifndef MAMORI_TEST_HARNESS_H
#define MAMORI_TEST_HARNESS_H

#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct instance {
    char     dir[256];          /* data directory */
    char     conf[300];
    char     log[300];
    pid_t    pid;               /* mamorid parent */
    uint16_t internal_port;
    uint16_t public_port;
};

/* Paths of the built binaries. */
const char *h_bin(const char *name);

/* Run a command (argv, NULL-terminated); returns its exit status or -1.
 * stdout is captured into out (if not NULL, up to outsz-1 bytes). */
int h_run(char *const argv[], char *out, size_t outsz);

/* mamori init a fresh directory and start mamorid -f on it; waits until
 * ready.  extra_conf (may be NULL) is appended to mamorid.conf first. */
int h_start(struct instance *in, const char *extra_conf);

/* The two halves of h_start: make the data directory (mamori init), and
 * start mamorid -f on it, waiting until ready (-1 if it exits first). */
int h_init(struct instance *in);
int h_launch(struct instance *in);

/* Set `key = value` in the instance's mamorid.conf (replacing the line). */
int h_set_conf(const struct instance *in, const char *key, const char *value);

/* SIGTERM and wait; returns the daemon's exit status (or -1). */
int h_stop(struct instance *in);

/* Remove the data directory. */
void h_cleanup(struct instance *in);

/* Read a numeric field of run/ports.json (-1 if absent). */
long h_state(const struct instance *in, const char *field);

/* Wait until state field `field` exceeds `than` (up to 10 s). */
bool h_wait_state_above(const struct instance *in, const char *field, long than);

/* A libcurl handle set up for the instance: CA pinned, optional client
 * certificate (paths relative to the data dir or absolute). */
CURL *h_curl(const struct instance *in, const char *cert, const char *key);

struct h_response {
    long   status;
    char  *body;      /* malloc'd, NUL-terminated */
    size_t len;
    char   headers[4096];
    CURLcode rc;
    long   connects;  /* new connections this transfer needed */
    char   ctype[128];  /* the Content-Type answered, "" if none */
};

/* One request on handle c.  internal selects the listener.  body may be
 * NULL.  The caller frees r->body (h_response_free). */
void h_request(const struct instance *in, CURL *c, bool internal, const char *method,
               const char *path, const char *body, struct h_response *r);
void h_response_free(struct h_response *r);

/* A libcurl write callback that appends to the struct h_response at
 * `arg` (body NUL-terminated; 0 on out of memory, which ends the
 * transfer): for requests the caller sets up itself. */
size_t h_collect_body(char *data, size_t size, size_t n, void *arg);

/* What a request carries for a signed-in member of staff; any may be NULL. */
struct h_cred {
    const char *token;    /* Authorization: Bearer */
    const char *cookie;   /* Cookie, e.g. "mamori_session=<token>" */
    const char *csrf;     /* X-CSRF-Token */
};

/* As h_request, with credentials (cred may be NULL); a request with no
 * body that is not a GET goes with an empty one (Content-Length: 0). */
void h_request_cred(const struct instance *in, CURL *c, bool internal, const char *method,
                    const char *path, const char *body, const struct h_cred *cred,
                    struct h_response *r);

/* Parse the body as JSON (caller decrefs) or NULL. */
json_t *h_json(const struct h_response *r);

/* Raw TLS client: connect to 127.0.0.1:port with `priorities` and an
 * optional client certificate; returns 0 and a live session, or the
 * GnuTLS error (negative) of the failed handshake. */
int h_tls_connect(uint16_t port, const char *priorities, const char *cafile,
                  const char *cert, const char *key, gnutls_session_t *s,
                  gnutls_certificate_credentials_t *cred, int *fd);
void h_tls_close(gnutls_session_t s, gnutls_certificate_credentials_t cred, int fd);

/* Write a file (for certificates made in tests). */
int h_write(const char *path, const char *text);

#endif
