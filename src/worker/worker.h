/*
 * worker.h - the network-facing worker process.
 *
 * A worker serves both listeners over inherited listening sockets.  It
 * loads its TLS material and reference data, drops privileges and
 * sandboxes itself, and only then starts accepting connections.  It
 * never holds the master key and never writes the audit log: it asks
 * the key holder and the audit writer over their channels.
 */
#ifndef MAMORI_WORKER_H
#define MAMORI_WORKER_H

#include "auth/api.h"
#include "config/config.h"
#include "crypto/keyprov.h"
#include "ipc/ipc.h"
#include "ref/lgcode.h"
#include "store/store.h"

struct vrs_env;
struct import_board;
struct import_runner;

/* What handlers reach through http_request.env. */
struct worker_env {
    const struct mamori_config *cfg;
    struct lgcode_table        *lgcodes;
    struct ipc_chan             keyholder;
    struct ipc_chan             audit;
    struct ipc_chan             audit_query; /* queries of the audit log (R7.5, audit/api.h) */
    struct key_provider         keys;      /* grants from the key holder */
    struct store               *store;     /* opened after the sandbox */
    struct auth_env            *auth;      /* staff authentication (auth/api.h) */
    struct vrs_env             *vrs;       /* vaccination records (vrs/api.h) */
    unsigned                    index;
    int                         parent_fd; /* notices to the parent (worker_notify_revoked) */
    struct import_board        *import_board; /* API imports' progress, shared by all workers */
    struct import_runner       *imports;   /* this worker's import runner (vrs/import_runner.h) */
};

struct worker_args {
    const struct mamori_config *cfg;
    unsigned index;          /* 0-based worker number */
    int internal_fd;         /* listening sockets, inherited */
    int public_fd;
    int parent_fd;           /* control channel to the parent */
    int keyholder_fd;        /* request channel to the key holder */
    int audit_fd;            /* request channel to the audit writer */
    int audit_query_fd;      /* query channel to the audit writer (R7.5) */
    struct import_board *import_board; /* mapped by the parent before the fork (R2.6) */
};

/* Drop privileges and apply the worker's sandbox: no file access except
 * the database directory and the upload spool directory (read-write)
 * and /dev/urandom, no new TCP
 * sockets, the worker syscall allowlist.  Exposed so tests can show what
 * a worker can and cannot do (e.g. open the master key file). */
int worker_enter_sandbox(const struct mamori_config *cfg) __attribute__((warn_unused_result));

/*
 * A terminal was revoked through the API (R6.2): refuse it in this
 * worker's TLS layer at once and ask the parent to push the revocation
 * set to every worker.  Each worker's set is the revocation list file
 * together with every terminal the store marks revoked.  0 on success,
 * -1 if this worker's set could not be rebuilt (the store still refuses
 * the terminal's sessions).
 */
int worker_notify_revoked(struct worker_env *env, const uint8_t fp[32])
    __attribute__((warn_unused_result));

/* Run a worker until told to stop.  Returns the process exit status. */
int worker_main(const struct worker_args *a);

#endif
