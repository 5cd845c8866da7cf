/*
 * worker.c - the network-facing worker process.
 */
#include "worker/worker.h"

#include <errno.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "http/server.h"
#include "keyholder/keyclient.h"
#include "sandbox/sandbox.h"
#include "store/store_auth.h"
#include "tls/revoke.h"
#include "transfer/api.h"
#include "vrs/api.h"
#include "vrs/import_api.h"
#include "vrs/import_runner.h"
#include "vrs/retention.h"

#define PEM_MAX (256u * 1024u)

struct listener_pems {
    char  *cert, *key, *trust;
    size_t cert_len, key_len, trust_len;
};

struct worker {
    const struct worker_args *args;
    struct worker_env   env;
    struct listener_pems pem[2];          /* [0] internal, [1] public */
    struct http_server  *srv[2];
    uint8_t             *revoked;         /* set being assembled from chunks */
    size_t               nrevoked;
    bool                 assembling;
    struct transfer_runner *transfer;     /* bulk inquiries (R3.3), transfer/job.h */
    struct retention_sched *retention;    /* the daily retention job (R2.10), worker 0 */
};

static void
free_pems(struct listener_pems *p)
{
    if (p->key != NULL)
        util_wipe(p->key, p->key_len);
    free(p->key);
    free(p->cert);
    free(p->trust);
    memset(p, 0, sizeof(*p));
}

static int
read_pem(const char *path, char **out, size_t *len)
{
    if (util_read_file(path, PEM_MAX, out, len) == 0)
        return 0;
    log_error("worker_init_failed", "cannot read %s: %s", path, strerror(errno));
    return -1;
}

/* Everything read from disk is read here, before the sandbox closes. */
static int
load_files(struct worker *w)
{
    const struct mamori_config *cfg = w->args->cfg;
    char path[PATH_MAX], err[256];

    if (read_pem(cfg->internal.cert, &w->pem[0].cert, &w->pem[0].cert_len) != 0 ||
        read_pem(cfg->internal.key, &w->pem[0].key, &w->pem[0].key_len) != 0 ||
        read_pem(cfg->client_ca, &w->pem[0].trust, &w->pem[0].trust_len) != 0 ||
        read_pem(cfg->public_.cert, &w->pem[1].cert, &w->pem[1].cert_len) != 0 ||
        read_pem(cfg->public_.key, &w->pem[1].key, &w->pem[1].key_len) != 0)
        return -1;
    if (util_path_join(path, sizeof(path), cfg->refdata,
                       "municipalities/municipalities_lgcode.csv") != 0 ||
        lgcode_table_load(path, &w->env.lgcodes, err, sizeof(err)) != 0) {
        log_error("worker_init_failed", "%s", err);
        return -1;
    }
    if (auth_env_init(cfg, &w->env.auth) != 0)
        return -1;
    if (vrs_env_init(cfg, &w->env.vrs) != 0)     /* the vaccine catalogue */
        return -1;
    return 0;
}

int
worker_enter_sandbox(const struct mamori_config *cfg)
{
    char dbdir[PATH_MAX], spooldir[PATH_MAX];
    const char *reads[] = { "/dev/urandom", NULL };
    const char *writes[] = { dbdir, spooldir, NULL };
    struct sandbox_policy pol = {
        .name = "worker",
        .read_paths = reads,
        .write_paths = writes,
        .syscalls = SANDBOX_SYS_THREADS | SANDBOX_SYS_ACCEPT | SANDBOX_SYS_FILES |
                    (cfg->log_target == LOG_TO_SYSLOG ? SANDBOX_SYS_SYSLOG : 0),
    };

    /* PostgreSQL: a stream socket to the server, and over TCP only to
     * its port (Landlock).  SQLite needs no socket at all. */
    if (cfg->store_backend == STORE_BACKEND_POSTGRESQL) {
        bool tcp;
        uint16_t port;
        if (store_pg_endpoint(cfg->store_conninfo, &tcp, &port) != 0) {
            log_error("worker_init_failed", "store.conninfo cannot be parsed");
            return -1;
        }
        pol.syscalls |= SANDBOX_SYS_CONNECT;
        pol.connect_tcp_port = tcp ? port : 0;
    }

    /* The database directory and the upload spool (made by the parent:
     * import_api_prepare) are the only places a worker may write. */
    if (util_strcpy(dbdir, sizeof(dbdir), cfg->store_path) != 0 ||
        import_api_spool_dir(cfg, spooldir, sizeof(spooldir)) != 0)
        return -1;
    {
        const char *d = dirname(dbdir);
        memmove(dbdir, d, strlen(d) + 1);
    }
    if (sandbox_drop_privileges(cfg->user) != 0)
        return -1;
    return sandbox_enter(&pol);
}

/* Open the store as the unprivileged, sandboxed worker (so whatever it
 * creates belongs to the service user) and insist on the current schema:
 * migrations are an operator's act (mamori migrate), never a side effect. */
static int
open_store(struct worker *w)
{
    const struct mamori_config *cfg = w->args->cfg;
    struct store_config sc = {
        .backend = cfg->store_backend,
        .path = cfg->store_path,
        .conninfo = cfg->store_conninfo,
        /* Two per HTTP thread, plus one each for the background threads
         * (transfer, import and retention runners), so a busy runner never
         * makes a request wait for a connection. */
        .pool_size = 2 * cfg->threads + 3,
        .busy_timeout_ms = 0,
    };
    enum store_status st = store_open(&sc, 0, &w->env.store);

    if (st == STORE_VERSION) {
        log_error("store_schema_mismatch", "the database schema is not the one this "
                  "mamorid needs (%d); run `mamori migrate -c %s`", STORE_SCHEMA_VERSION,
                  cfg->path);
        return -1;
    }
    if (st != STORE_OK) {
        log_error("store_open_failed", "cannot open the %s store: %s",
                  cfg->store_backend == STORE_BACKEND_SQLITE ? "SQLite" : "PostgreSQL",
                  store_strerror(st));
        return -1;
    }
    return 0;
}

static int
start_servers(struct worker *w)
{
    const struct mamori_config *cfg = w->args->cfg;
    const struct listener_config *lc[2] = { &cfg->internal, &cfg->public_ };
    const int fds[2] = { w->args->internal_fd, w->args->public_fd };
    const unsigned which[2] = { LISTENER_INTERNAL, LISTENER_PUBLIC };

    for (int i = 0; i < 2; i++) {
        struct http_server_params p = {
            .listener = which[i],
            .listen_fd = fds[i],
            .cert_pem = w->pem[i].cert,
            .key_pem = w->pem[i].key,
            .trust_pem = w->pem[i].trust,
            .priorities = lc[i]->priorities,
            .threads = cfg->threads,
            .connection_timeout = cfg->connection_timeout,
            .max_connections = cfg->max_connections,
            .routes = mamori_routes,
            .nroutes = mamori_nroutes,
            .env = &w->env,
        };
        if (http_server_start(&p, &w->srv[i]) != 0) {
            log_error("worker_init_failed", "cannot start the %s listener",
                      i == 0 ? "internal" : "public");
            return -1;
        }
        /* The key was copied into GnuTLS's credentials: wipe our copy. */
        util_wipe(w->pem[i].key, w->pem[i].key_len);
    }
    return 0;
}

/* ---- the revocation set: the list file's and the store's (R6.2) ---- */

/* A growing list of fingerprints; owned by the caller (free fps). */
struct fp_list {
    uint8_t *fps;
    size_t   n, cap;
    bool     failed;
};

static int
fp_list_add(const struct terminal_info *t, void *p)
{
    struct fp_list *l = p;

    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        uint8_t *grown;
        if (cap > REVOKE_MAX_ENTRIES)
            cap = REVOKE_MAX_ENTRIES;
        grown = cap > l->n ? realloc(l->fps, cap * REVOKE_FP_LEN) : NULL;
        if (grown == NULL) {
            l->failed = true;
            return 1;
        }
        l->fps = grown;
        l->cap = cap;
    }
    memcpy(l->fps + l->n * REVOKE_FP_LEN, t->fingerprint, REVOKE_FP_LEN);
    l->n++;
    return 0;
}

/* Append every terminal the store marks revoked (through the API) to
 * l, which holds the list file's entries: together they make the set the
 * TLS layer refuses.  If the store cannot be read (or the set would be
 * too big) l keeps the list file's entries only, and so does the store's
 * own check of every session (auth_authorize). */
static void
add_store_revoked(struct store *st, struct fp_list *l)
{
    size_t had = l->n;

    if (st == NULL)
        return;
    l->failed = false;
    if (store_terminal_list(st, NULL, fp_list_add, l) != STORE_OK || l->failed) {
        log_error("revocation_store_unread", "cannot add the terminals revoked in the "
                  "store; the list file's set applies");
        l->n = had;
    }
}

/* The set inherited from the parent is the list file's; add the
 * terminals revoked in the store before serving anything. */
static void
add_store_revocations(struct worker *w)
{
    struct fp_list db = { NULL, 0, 0, false };

    add_store_revoked(w->env.store, &db);
    if (db.n > 0 && revoke_current_add(db.fps, db.n) != 0)
        log_error("revocation_set_failed", "cannot add the store's revoked terminals");
    free(db.fps);
}

int
worker_notify_revoked(struct worker_env *env, const uint8_t fp[32])
{
    int rc = revoke_current_add(fp, 1);

    if (rc != 0)
        log_error("revocation_set_failed", "cannot add a revoked terminal to this worker's set");
    if (ipc_send(env->parent_fd, IPC_TERMINAL_REVOKE, 0, 0, fp, REVOKE_FP_LEN) != 0) {
        log_error("ipc_send_failed", "cannot ask the parent to push the revocation set");
        rc = -1;
    }
    return rc;
}

static void
take_revocation_chunk(struct worker *w, const struct ipc_hdr *h, const uint8_t *buf)
{
    struct revoke_set *set;
    size_t n = h->len / REVOKE_FP_LEN;
    uint8_t *grown;

    if (h->len % REVOKE_FP_LEN != 0 || (!w->assembling && !(h->flags & IPC_F_FIRST)) ||
        w->nrevoked + n > REVOKE_MAX_ENTRIES) {
        log_warn("ipc_refused", "malformed revocation chunk from parent");
        return;
    }
    if (h->flags & IPC_F_FIRST) {
        free(w->revoked);
        w->revoked = NULL;
        w->nrevoked = 0;
        w->assembling = true;
    }
    if (n > 0) {
        grown = realloc(w->revoked, (w->nrevoked + n) * REVOKE_FP_LEN);
        if (grown == NULL) {
            /* No confirmation goes out, so the parent's generation does
             * not advance and operators see the reload did not apply. */
            log_error("revocation_set_failed", "out of memory assembling the revocation set");
            w->assembling = false;
            return;
        }
        w->revoked = grown;
        memcpy(w->revoked + w->nrevoked * REVOKE_FP_LEN, buf, h->len);
        w->nrevoked += n;
    }
    if (h->flags & IPC_F_LAST) {
        /* The list file's set, as pushed, plus the store's (R6.2). */
        struct fp_list all = { w->revoked, w->nrevoked, w->nrevoked, false };

        add_store_revoked(w->env.store, &all);
        w->revoked = all.fps;
        w->nrevoked = all.n;
        if (revoke_set_from_raw(w->revoked, w->nrevoked, &set) == 0) {
            size_t count = revoke_set_count(set);
            revoke_current_install(set);
            log_event(LOG_LVL_INFO, "revocation_set_installed",
                      json_pack("{s:I}", "entries", (json_int_t)count));
            /* Tell the parent, so it can report when every worker has it. */
            if (ipc_send(w->args->parent_fd, IPC_REVOKED_INSTALLED, h->id, 0, NULL, 0) != 0)
                log_warn("ipc_send_failed", "cannot confirm the revocation set");
        }
        free(w->revoked);
        w->revoked = NULL;
        w->nrevoked = 0;
        w->assembling = false;
    }
}

/* Returns 1 to keep going, 0 to drain and stop, -1 when the parent is gone. */
static int
handle_parent(struct worker *w, uint8_t *buf)
{
    struct ipc_hdr h;
    int r = ipc_recv(w->args->parent_fd, &h, buf, IPC_MAX_PAYLOAD);

    if (r == 0)
        return -1;
    if (r < 0) {
        int e = errno;
        if (e == EBADMSG)
            log_warn("ipc_refused", "malformed message from parent dropped");
        return e == EBADMSG || e == EAGAIN ? 1 : -1;
    }
    switch (h.type) {
    case IPC_SHUTDOWN:
        return 0;
    case IPC_REVOKED_CHUNK:
        take_revocation_chunk(w, &h, buf);
        return 1;
    case IPC_PING:
        if (ipc_send(w->args->parent_fd, IPC_PONG, h.id, 0, buf, h.len) != 0)
            return -1;
        return 1;
    default:
        log_warn("ipc_refused", "unexpected %s message from parent", ipc_type_name(h.type));
        return 1;
    }
}

static void
drain(struct worker *w)
{
    struct timespec start, now;

    http_server_quiesce(w->srv[0]);
    http_server_quiesce(w->srv[1]);
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        unsigned n = http_server_inflight(w->srv[0]) + http_server_inflight(w->srv[1]);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (n == 0)
            break;
        if (now.tv_sec - start.tv_sec >= (time_t)w->args->cfg->drain_timeout) {
            log_warn("drain_timeout", "%u requests still running after %u s; closing them",
                     n, w->args->cfg->drain_timeout);
            break;
        }
        struct timespec pause = { 0, 20 * 1000 * 1000 };
        nanosleep(&pause, NULL);
    }
}

static int
serve(struct worker *w, int sigfd)
{
    uint8_t *buf = malloc(IPC_MAX_PAYLOAD);
    struct pollfd pfd[2] = {
        { .fd = w->args->parent_fd, .events = POLLIN },
        { .fd = sigfd, .events = POLLIN },
    };
    int state = 1;

    if (buf == NULL)
        return 1;
    while (state == 1) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pfd[0].revents != 0)
            state = handle_parent(w, buf);
        if (pfd[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si) &&
                (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT))
                state = 0;
        }
    }
    free(buf);
    if (state == 0) {
        drain(w);
        return 0;
    }
    log_error("parent_gone", "the parent process went away; stopping at once");
    return 1;
}

static int
block_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC);
}

int
worker_main(const struct worker_args *a)
{
    struct worker w;
    int sigfd, rc = 1;

    memset(&w, 0, sizeof(w));
    w.args = a;
    w.env.cfg = a->cfg;
    w.env.index = a->index;
    w.env.parent_fd = a->parent_fd;
    w.env.import_board = a->import_board;
    ipc_chan_init(&w.env.keyholder, a->keyholder_fd);
    ipc_chan_init(&w.env.audit, a->audit_fd);
    ipc_chan_init(&w.env.audit_query, a->audit_query_fd);
    keyclient_provider(&w.env.keyholder, &w.env.keys);
    sigfd = block_signals();
    if (sigfd < 0 || sandbox_no_core_dumps() != 0 || load_files(&w) != 0 ||
        worker_enter_sandbox(a->cfg) != 0 || open_store(&w) != 0 ||
        import_runner_start(&w.env, &w.env.imports) != 0 || start_servers(&w) != 0)
        goto out;
    add_store_revocations(&w);
    if (transfer_worker_start(&w.env, &w.transfer) != 0 ||
        retention_worker_start(&w.env, &w.retention) != 0)
        goto out;
    if (ipc_send(a->parent_fd, IPC_READY, 0, 0, NULL, 0) != 0)
        goto out;
    rc = serve(&w, sigfd);
out:
    for (int i = 0; i < 2; i++) {
        http_server_stop(w.srv[i]);
        free_pems(&w.pem[i]);
    }
    transfer_runner_stop(w.transfer);     /* before the store and channels it uses */
    import_runner_stop(w.env.imports);    /* likewise; its queued uploads end interrupted */
    retention_sched_free(w.retention);    /* ends after its current batch, likewise */
    lgcode_table_free(w.env.lgcodes);
    auth_env_free(w.env.auth);
    vrs_env_free(w.env.vrs);
    store_close(w.env.store);
    free(w.revoked);
    ipc_chan_destroy(&w.env.keyholder);
    ipc_chan_destroy(&w.env.audit);
    ipc_chan_destroy(&w.env.audit_query);
    if (sigfd >= 0)
        close(sigfd);
    return rc;
}
