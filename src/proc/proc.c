/*
 * proc.c - the process table and the supervising parent.
 */
#include "proc/proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit/auditd.h"
#include "common/log.h"
#include "common/util.h"
#include "ipc/ipc.h"
#include "keyholder/keyholder.h"
#include "ref/lgcode.h"
#include "sandbox/sandbox.h"
#include "tls/revoke.h"
#include "tls/tls.h"
#include "vrs/import_api.h"
#include "vrs/import_board.h"
#include "worker/worker.h"

enum proc_kind { PROC_KEYHOLDER, PROC_AUDIT, PROC_WORKER };

/* The process table: one row per kind; workers are repeated N times. */
static const struct proc_desc {
    enum proc_kind kind;
    const char    *name;
} procs[] = {
    { PROC_KEYHOLDER, "keyholder" },
    { PROC_AUDIT,     "audit" },
    { PROC_WORKER,    "worker" },
};

#define MAX_WORKERS 16
#define MAX_CHILDREN (2 + MAX_WORKERS)
#define START_TIMEOUT_S 60

struct child {
    const struct proc_desc *desc;
    unsigned index;       /* worker number */
    pid_t    pid;
    int      ctl;         /* parent's end of the control channel */
    bool     ready;
    bool     exited;
    bool     revocation_acked;
};

struct daemon_state {
    const struct mamori_config *cfg;
    int           listen_fd[2];              /* internal, public */
    uint16_t      port[2];
    struct child  child[MAX_CHILDREN];
    size_t        nchild;
    int           kh_fd[MAX_WORKERS][2];     /* worker <-> keyholder */
    int           au_fd[MAX_WORKERS][2];     /* worker <-> audit */
    int           aq_fd[MAX_WORKERS][2];     /* worker <-> audit: queries (R7.5) */
    int           ak_fd[2];                  /* audit [0] <-> keyholder [1]: signing (R7.2) */
    int           sigfd;
    unsigned      revocation_generation;     /* reloads confirmed by all workers */
    uint32_t      revocation_pending;        /* id of the reload being confirmed */
    bool          stopping;
    bool          unclean_stop;    /* a child failed its own shutdown */
    bool          hup_pending;               /* SIGHUP came during start-up */
    struct import_board *board;              /* API imports' progress, shared (R2.6) */
};

/* ---- listeners ---------------------------------------------------- */

static int
bind_listener(const struct listener_config *l, uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, on = 1;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, l->host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(l->port);
        len = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, l->host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(l->port);
        len = sizeof(struct sockaddr_in6);
    } else {
        errno = EINVAL;
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        (ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return fd;
}

/* ---- checks (mamorid -n and start-up) ----------------------------- */

/* Read key material the way workers do (no symlinks, bounded), so that
 * -n passes exactly what start-up accepts. */
static int
read_pem(const char *path, gnutls_datum_t *d, char *err, size_t errlen)
{
    char *text;
    size_t len;

    if (util_read_file(path, 256u * 1024u, &text, &len) != 0) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    d->data = (unsigned char *)text;
    d->size = (unsigned)len;
    return 0;
}

static void
free_pem(gnutls_datum_t *d)
{
    if (d->data != NULL)
        util_wipe(d->data, d->size);
    free(d->data);
    d->data = NULL;
}

static int
check_keypair(const char *cert, const char *key, char *err, size_t errlen)
{
    gnutls_certificate_credentials_t cred;
    gnutls_datum_t c = { NULL, 0 }, k = { NULL, 0 };
    int r;

    if (read_pem(cert, &c, err, errlen) != 0 || read_pem(key, &k, err, errlen) != 0) {
        free_pem(&c);
        return -1;
    }
    if (gnutls_certificate_allocate_credentials(&cred) != 0) {
        free_pem(&c);
        free_pem(&k);
        return -1;
    }
    r = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
    free_pem(&c);
    free_pem(&k);
    if (r < 0) {
        snprintf(err, errlen, "%s / %s: cannot load the certificate and key: %s",
                 cert, key, gnutls_strerror(r));
        return -1;
    }
    return 0;
}

static int
check_trust(const char *ca, char *err, size_t errlen)
{
    gnutls_certificate_credentials_t cred;
    gnutls_datum_t c = { NULL, 0 };
    int r;

    if (read_pem(ca, &c, err, errlen) != 0)
        return -1;
    if (gnutls_certificate_allocate_credentials(&cred) != 0) {
        free_pem(&c);
        return -1;
    }
    r = gnutls_certificate_set_x509_trust_mem(cred, &c, GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
    free_pem(&c);
    if (r <= 0) {
        snprintf(err, errlen, "%s: no terminal CA certificate could be loaded", ca);
        return -1;
    }
    return 0;
}

int
proc_check(const struct mamori_config *cfg, char *err, size_t errlen)
{
    struct revoke_set *rs = NULL;
    struct lgcode_table *lg = NULL;
    char path[PATH_MAX];

    if (cfg->workers > MAX_WORKERS) {
        snprintf(err, errlen, "workers must be at most %d", MAX_WORKERS);
        return -1;
    }
    if (check_keypair(cfg->internal.cert, cfg->internal.key, err, errlen) != 0 ||
        check_keypair(cfg->public_.cert, cfg->public_.key, err, errlen) != 0 ||
        check_trust(cfg->client_ca, err, errlen) != 0 ||
        tls_check_priorities(cfg->internal.priorities, err, errlen) != 0 ||
        tls_check_priorities(cfg->public_.priorities, err, errlen) != 0 ||
        revoke_set_load(cfg->revocation_list, &rs, err, errlen) != 0)
        return -1;
    revoke_set_free(rs);
    if (util_path_join(path, sizeof(path), cfg->refdata,
                       "municipalities/municipalities_lgcode.csv") != 0 ||
        lgcode_table_load(path, &lg, err, errlen) != 0)
        return -1;
    lgcode_table_free(lg);
    if (access(cfg->master_key, F_OK) != 0) {
        snprintf(err, errlen, "%s: the master key file is missing", cfg->master_key);
        return -1;
    }
    return 0;
}

/* ---- state files -------------------------------------------------- */

static void
write_state(const struct daemon_state *d)
{
    char text[256];
    int n = snprintf(text, sizeof(text),
                     "{\"pid\":%ld,\"internal_port\":%u,\"public_port\":%u,"
                     "\"revocation_generation\":%u,\"revoked_terminals\":%zu}\n",
                     (long)getpid(), d->port[0], d->port[1],
                     d->revocation_generation, revoke_current_count());

    if (n > 0 && util_write_file_atomic(d->cfg->portsfile, text, (size_t)n, 0644) != 0)
        log_warn("state_write_failed", "cannot write %s: %s", d->cfg->portsfile,
                 strerror(errno));
}

static int
write_pidfile(const struct mamori_config *cfg)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());

    return util_write_file_atomic(cfg->pidfile, text, (size_t)n, 0644);
}

/* ---- children ----------------------------------------------------- */

/* Close every descriptor the child `self` must not hold. */
static void
close_foreign(struct daemon_state *d, const struct child *self)
{
    for (size_t i = 0; i < d->nchild; i++)
        if (&d->child[i] != self && d->child[i].ctl >= 0)
            close(d->child[i].ctl);
    for (unsigned w = 0; w < d->cfg->workers; w++) {
        bool mine_w = self->desc->kind == PROC_WORKER && self->index == w;
        if (!(mine_w && true))
            close(d->kh_fd[w][0]), close(d->au_fd[w][0]);
        if (self->desc->kind != PROC_KEYHOLDER)
            close(d->kh_fd[w][1]);
        if (self->desc->kind != PROC_AUDIT)
            close(d->au_fd[w][1]);
        if (!mine_w)
            close(d->aq_fd[w][0]);
        if (self->desc->kind != PROC_AUDIT)
            close(d->aq_fd[w][1]);
    }
    if (self->desc->kind != PROC_AUDIT)
        close(d->ak_fd[0]);
    if (self->desc->kind != PROC_KEYHOLDER)
        close(d->ak_fd[1]);
    if (self->desc->kind != PROC_WORKER) {
        close(d->listen_fd[0]);
        close(d->listen_fd[1]);
    }
    close(d->sigfd);
}

static int
run_service_child(struct daemon_state *d, const struct child *c, int ctl)
{
    int fds[1 + MAX_WORKERS];
    size_t n = 0;

    fds[n++] = ctl;
    for (unsigned w = 0; w < d->cfg->workers; w++)
        fds[n++] = c->desc->kind == PROC_KEYHOLDER ? d->kh_fd[w][1] : d->au_fd[w][1];
    if (c->desc->kind == PROC_KEYHOLDER) {
        keyholder_set_audit_channel(d->ak_fd[1]);
    } else {
        int qfds[MAX_WORKERS];
        for (unsigned w = 0; w < d->cfg->workers; w++)
            qfds[w] = d->aq_fd[w][1];
        auditd_set_keyholder_channel(d->ak_fd[0]);
        auditd_set_query_channels(qfds, d->cfg->workers);
    }
    return c->desc->kind == PROC_KEYHOLDER ? keyholder_main(d->cfg, fds, n)
                                           : auditd_main(d->cfg, fds, n);
}

static int
run_child(struct daemon_state *d, const struct child *c, int ctl)
{
    struct worker_args wa;
    sigset_t none;

    /* Workers take SIGTERM/SIGINT through their own loop.  The key holder
     * and audit writer ignore signals sent to the whole group: they stop
     * when the parent says so, after the workers have drained. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (c->desc->kind != PROC_WORKER) {
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
    }
    log_setup(c->desc->name, d->cfg->log_target, d->cfg->log_level);
    if (c->desc->kind != PROC_WORKER)
        return run_service_child(d, c, ctl);
    wa.cfg = d->cfg;
    wa.index = c->index;
    wa.internal_fd = d->listen_fd[0];
    wa.public_fd = d->listen_fd[1];
    wa.parent_fd = ctl;
    wa.keyholder_fd = d->kh_fd[c->index][0];
    wa.audit_fd = d->au_fd[c->index][0];
    wa.audit_query_fd = d->aq_fd[c->index][0];
    wa.import_board = d->board;
    return worker_main(&wa);
}

static int
spawn(struct daemon_state *d, struct child *c)
{
    int pair[2];

    if (ipc_socketpair(pair) != 0)
        return -1;
    c->pid = fork();
    if (c->pid < 0) {
        close(pair[0]);
        close(pair[1]);
        return -1;
    }
    if (c->pid == 0) {
        close(pair[0]);
        c->ctl = -1;
        close_foreign(d, c);
        _exit(run_child(d, c, pair[1]));
    }
    close(pair[1]);
    c->ctl = pair[0];
    return 0;
}

static int
spawn_all(struct daemon_state *d)
{
    if (ipc_socketpair(d->ak_fd) != 0)
        return -1;
    for (unsigned w = 0; w < d->cfg->workers; w++)
        if (ipc_socketpair(d->kh_fd[w]) != 0 || ipc_socketpair(d->au_fd[w]) != 0 ||
            ipc_socketpair(d->aq_fd[w]) != 0)
            return -1;
    for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
        unsigned copies = procs[i].kind == PROC_WORKER ? d->cfg->workers : 1;
        for (unsigned k = 0; k < copies; k++) {
            struct child *c = &d->child[d->nchild++];
            c->desc = &procs[i];
            c->index = k;
            c->ctl = -1;
            if (spawn(d, c) != 0)
                return -1;
        }
    }
    /* The parent keeps none of the worker <-> service channels. */
    close(d->ak_fd[0]), close(d->ak_fd[1]);
    for (unsigned w = 0; w < d->cfg->workers; w++) {
        close(d->kh_fd[w][0]), close(d->kh_fd[w][1]);
        close(d->au_fd[w][0]), close(d->au_fd[w][1]);
        close(d->aq_fd[w][0]), close(d->aq_fd[w][1]);
    }
    return 0;
}

static void
note_exit(struct daemon_state *d, pid_t pid, int status)
{
    for (size_t i = 0; i < d->nchild; i++) {
        struct child *c = &d->child[i];
        if (c->pid != pid)
            continue;
        c->exited = true;
        /* Its API imports lost their spool keys with it: their slots go,
         * so every other worker reports them interrupted at once (R2.6). */
        if (c->desc->kind == PROC_WORKER)
            (void)import_board_forget_pid(d->board, pid);
        /* A child that fails its own shutdown (e.g. the audit writer
         * cannot sign the final checkpoint) makes the daemon's exit
         * status non-zero, so a supervisor and the tests see it. */
        if (d->stopping && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
            d->unclean_stop = true;
        if (!d->stopping || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            log_event(LOG_LVL_ERROR, "child_exited",
                      json_pack("{s:s,s:i,s:i,s:i}", "process", c->desc->name,
                                "index", (int)c->index,
                                "exit_status", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                                "signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    }
}

/* Reap what has exited; returns true if a child died while not stopping. */
static bool
reap(struct daemon_state *d)
{
    bool unexpected = false;
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        note_exit(d, pid, status);
        if (!d->stopping)
            unexpected = true;
    }
    return unexpected;
}

/* ---- revocation --------------------------------------------------- */

static void
push_revocations(struct daemon_state *d)
{
    const uint8_t *raw;
    size_t total, per = ipc_max_len(IPC_REVOKED_CHUNK) / REVOKE_FP_LEN;
    struct revoke_set *set;
    char err[512];

    if (revoke_set_load(d->cfg->revocation_list, &set, err, sizeof(err)) != 0) {
        log_error("revocation_reload_failed", "%s; the previous list stays in force", err);
        return;
    }
    total = revoke_set_count(set);
    raw = total ? revoke_set_raw(set) : NULL;
    d->revocation_pending++;
    for (size_t i = 0; i < d->nchild; i++) {
        struct child *c = &d->child[i];
        if (c->desc->kind != PROC_WORKER || c->exited)
            continue;
        c->revocation_acked = false;
        size_t off = 0;
        do {
            size_t n = total - off < per ? total - off : per;
            uint32_t flags = (off == 0 ? IPC_F_FIRST : 0) | (off + n == total ? IPC_F_LAST : 0);
            if (ipc_send(c->ctl, IPC_REVOKED_CHUNK, d->revocation_pending, flags,
                         raw ? raw + off * REVOKE_FP_LEN : NULL, n * REVOKE_FP_LEN) != 0)
                log_error("ipc_send_failed", "cannot send the revocation list to a worker");
            off += n;
        } while (off < total);
    }
    revoke_current_install(set);
    log_event(LOG_LVL_INFO, "revocation_list_loaded",
              json_pack("{s:I}", "entries", (json_int_t)total));
}

static void
revocation_acked(struct daemon_state *d, struct child *c, uint32_t id)
{
    if (id != d->revocation_pending)
        return;
    c->revocation_acked = true;
    for (size_t i = 0; i < d->nchild; i++)
        if (d->child[i].desc->kind == PROC_WORKER && !d->child[i].exited &&
            !d->child[i].revocation_acked)
            return;
    d->revocation_generation++;
    write_state(d);
    log_event(LOG_LVL_INFO, "revocation_list_active",
              json_pack("{s:i}", "generation", (int)d->revocation_generation));
}

/* SIGHUP: what can change without a restart.  The revocation list
 * (workers) and the keystore (key holder, after `mamori key` or
 * `mamori tenant`). */
/* R7.7: start-up, reloads and stop of mamorid are audit events; the
 * parent does not wait for the ack (it must not block on the writer). */
static void
audit_note(struct daemon_state *d, const char *action)
{
    char ev[128];
    int n = snprintf(ev, sizeof(ev), "{\"action\":\"%s\",\"outcome\":\"success\","
                     "\"actor\":\"mamorid\"}", action);

    for (size_t i = 0; i < d->nchild; i++) {
        struct child *c = &d->child[i];
        if (c->desc->kind == PROC_AUDIT && !c->exited && c->ctl >= 0 && n > 0 &&
            ipc_send(c->ctl, IPC_AUDIT_APPEND, 0, 0, ev, (size_t)n) != 0)
            log_error("ipc_send_failed", "cannot record %s in the audit log", action);
    }
}

static void
reload_all(struct daemon_state *d)
{
    audit_note(d, "daemon.reload");
    push_revocations(d);
    for (size_t i = 0; i < d->nchild; i++) {
        struct child *c = &d->child[i];
        if (c->desc->kind == PROC_KEYHOLDER && !c->exited && c->ctl >= 0 &&
            ipc_send(c->ctl, IPC_KEYS_RELOAD, 0, 0, NULL, 0) != 0)
            log_error("ipc_send_failed", "cannot ask the key holder to reload");
    }
}

/* ---- the parent's loop -------------------------------------------- */

static void
handle_child_message(struct daemon_state *d, struct child *c)
{
    uint8_t buf[IPC_MAX_PAYLOAD / 64];
    struct ipc_hdr h;
    int r = ipc_recv(c->ctl, &h, buf, sizeof(buf));

    if (r == 0 || (r < 0 && errno != EBADMSG && errno != EAGAIN)) {
        close(c->ctl);     /* the child is going; SIGCHLD tells the rest */
        c->ctl = -1;
        return;
    }
    if (r < 0) {
        log_warn("ipc_refused", "malformed message from %s dropped", c->desc->name);
        return;
    }
    if (h.type == IPC_READY)
        c->ready = true;
    else if (h.type == IPC_REVOKED_INSTALLED && c->desc->kind == PROC_WORKER)
        revocation_acked(d, c, h.id);
    else if (h.type == IPC_TERMINAL_REVOKE && c->desc->kind == PROC_WORKER && h.len == 32)
        /* A terminal revoked through the API (R6.2): every worker rebuilds
         * its set from the list file and the store, as on SIGHUP. */
        push_revocations(d);
    else if (h.type == IPC_AUDIT_ACK && c->desc->kind == PROC_AUDIT)
        ;                  /* a daemon.* event of ours is durable */
    else
        log_warn("ipc_refused", "unexpected %s message from %s", ipc_type_name(h.type),
                 c->desc->name);
}

static bool
all_ready(const struct daemon_state *d)
{
    for (size_t i = 0; i < d->nchild; i++)
        if (!d->child[i].ready)
            return false;
    return true;
}

/* One round of waiting: signals and child messages.  Returns the signal
 * number that asks to stop, or 0. */
static int
wait_events(struct daemon_state *d, int timeout_ms, bool *died)
{
    struct pollfd pfd[1 + MAX_CHILDREN];
    size_t n = 0;
    int stop = 0;

    pfd[n++] = (struct pollfd){ .fd = d->sigfd, .events = POLLIN };
    for (size_t i = 0; i < d->nchild; i++)
        pfd[n++] = (struct pollfd){ .fd = d->child[i].ctl, .events = POLLIN };
    if (poll(pfd, (nfds_t)n, timeout_ms) <= 0)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (pfd[i].fd >= 0 && pfd[i].revents != 0)
            handle_child_message(d, &d->child[i - 1]);
    if (pfd[0].revents & POLLIN) {
        struct signalfd_siginfo si;
        while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            if (si.ssi_signo == SIGCHLD)
                *died |= reap(d);
            else if (si.ssi_signo == SIGHUP && all_ready(d))
                reload_all(d);
            else if (si.ssi_signo == SIGHUP)
                d->hup_pending = true;    /* reload once every worker is up */
            else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                stop = (int)si.ssi_signo;
        }
    }
    return stop;
}

static bool
kind_alive(const struct daemon_state *d, enum proc_kind kind)
{
    for (size_t i = 0; i < d->nchild; i++)
        if (!d->child[i].exited && d->child[i].desc->kind == kind)
            return true;
    return false;
}

/* Ask one kind of child to stop, wait, and kill what outlives the grace. */
static void
stop_kind(struct daemon_state *d, enum proc_kind kind, unsigned grace_s)
{
    struct timespec start, now;
    bool died = false;

    for (size_t i = 0; i < d->nchild; i++) {
        struct child *c = &d->child[i];
        if (!c->exited && c->ctl >= 0 && c->desc->kind == kind &&
            ipc_send(c->ctl, IPC_SHUTDOWN, 0, 0, NULL, 0) != 0)
            kill(c->pid, SIGTERM);
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (kind_alive(d, kind)) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > (time_t)grace_s) {
            for (size_t i = 0; i < d->nchild; i++)
                if (!d->child[i].exited && d->child[i].desc->kind == kind)
                    kill(d->child[i].pid, SIGKILL);
        }
        (void)wait_events(d, 100, &died);
        reap(d);
    }
}

static void
shutdown_all(struct daemon_state *d)
{
    audit_note(d, "daemon.stop");
    d->stopping = true;
    /* Workers first, so the audit writer records their last requests;
     * then the audit writer, which still needs the key holder to pull
     * the last key events and to sign the final checkpoint (R7.2, R7.7);
     * the key holder last. */
    stop_kind(d, PROC_WORKER, d->cfg->drain_timeout + 5);
    stop_kind(d, PROC_AUDIT, 5);
    stop_kind(d, PROC_KEYHOLDER, 5);
}

static int
await_ready(struct daemon_state *d)
{
    time_t deadline = time(NULL) + START_TIMEOUT_S;
    bool died = false;

    while (!all_ready(d)) {
        if (wait_events(d, 200, &died) != 0 || died || time(NULL) > deadline) {
            log_error("start_failed", "a process failed to start; stopping");
            return -1;
        }
    }
    return 0;
}

static int
serve(struct daemon_state *d)
{
    bool died = false;

    for (;;) {
        int sig = wait_events(d, -1, &died);
        if (died) {
            log_error("child_died", "a process died unexpectedly; stopping all (fail closed)");
            return 1;
        }
        if (sig != 0) {
            log_event(LOG_LVL_INFO, "stopping", json_pack("{s:i}", "signal", sig));
            return 0;
        }
    }
}

static int
parent_dir(char *out, size_t outsz, const char *path)
{
    char copy[PATH_MAX];

    if (util_strcpy(copy, sizeof(copy), path) != 0)
        return -1;
    return util_strcpy(out, outsz, dirname(copy));
}

static int
parent_sandbox(const struct mamori_config *cfg)
{
    char rundir[PATH_MAX], portsdir[PATH_MAX], listdir[PATH_MAX];
    /* The list is replaced by rename(), so a rule on the file itself
     * would keep pointing at the old inode: grant its own directory. */
    const char *reads[] = { listdir, NULL };
    const char *writes[] = { rundir, portsdir, NULL };
    struct sandbox_policy pol = {
        .name = "parent",
        .read_paths = reads,
        .write_paths = writes,
        .syscalls = SANDBOX_SYS_FILES | SANDBOX_SYS_SUPERVISE |
                    (cfg->log_target == LOG_TO_SYSLOG ? SANDBOX_SYS_SYSLOG : 0),
    };

    if (parent_dir(rundir, sizeof(rundir), cfg->pidfile) != 0 ||
        parent_dir(portsdir, sizeof(portsdir), cfg->portsfile) != 0 ||
        parent_dir(listdir, sizeof(listdir), cfg->revocation_list) != 0)
        return -1;
    return sandbox_enter(&pol);
}

static int
setup_signals(struct daemon_state *d)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    d->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    return d->sigfd < 0 ? -1 : 0;
}

/* Detach; the original process waits on a pipe until the daemon reports
 * ready (one byte) or dies (EOF), and exits accordingly. */
static int
detach(int *ready_fd)
{
    int p[2];
    pid_t pid;
    char c;

    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid > 0) {
        close(p[1]);
        ssize_t n = read(p[0], &c, 1);
        _exit(n == 1 ? 0 : 1);
    }
    close(p[0]);
    if (setsid() < 0)
        return -1;
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0 ||
        dup2(devnull, STDOUT_FILENO) < 0 || dup2(devnull, STDERR_FILENO) < 0)
        return -1;
    close(devnull);
    *ready_fd = p[1];
    return 0;
}

static int
daemon_start(struct daemon_state *d, bool foreground, int *ready_fd)
{
    char err[512];
    struct revoke_set *rs;

    if (proc_check(d->cfg, err, sizeof(err)) != 0) {
        log_error("config_invalid", "%s", err);
        return -1;
    }
    if (revoke_set_load(d->cfg->revocation_list, &rs, err, sizeof(err)) != 0)
        return -1;
    revoke_current_install(rs);     /* inherited by every worker */
    for (int i = 0; i < 2; i++) {
        const struct listener_config *l = i == 0 ? &d->cfg->internal : &d->cfg->public_;
        d->listen_fd[i] = bind_listener(l, &d->port[i]);
        if (d->listen_fd[i] < 0) {
            log_error("bind_failed", "cannot listen on %s:%u (%s): %s", l->host, l->port,
                      i == 0 ? "internal" : "public", strerror(errno));
            return -1;
        }
    }
    if (!foreground) {
        log_setup("parent", d->cfg->log_target, d->cfg->log_level);
        if (detach(ready_fd) != 0)
            return -1;
    }
    /* Signals first: a SIGHUP aimed at the new pid file must not kill us. */
    if (sandbox_no_core_dumps() != 0 || setup_signals(d) != 0 ||
        write_pidfile(d->cfg) != 0)
        return -1;
    /* The upload spool directory and the import progress board exist
     * before the workers: their sandbox grants the one, fork shares the
     * other (R2.6, vrs/import_api.h). */
    if (import_api_prepare(d->cfg, err, sizeof(err)) != 0) {
        log_error("spool_dir_failed", "%s", err);
        return -1;
    }
    if (import_board_create(&d->board) != 0) {
        log_error("import_board_failed", "cannot map the import board: %s", strerror(errno));
        return -1;
    }
    /* Each child reads what it alone may read (the key holder the master
     * key, workers their TLS keys and reference data) and then drops
     * privileges itself; the parent drops them once they are forked. */
    if (spawn_all(d) != 0 || sandbox_drop_privileges(d->cfg->user) != 0 ||
        parent_sandbox(d->cfg) != 0)
        return -1;
    return await_ready(d);
}

int
proc_run(const struct mamori_config *conf, bool foreground)
{
    static struct mamori_config detached;   /* large: not on the stack */
    const struct mamori_config *cfg = conf;
    struct daemon_state d;
    int ready_fd = -1, rc = 1;

    /* A detached daemon has no terminal: every process logs to syslog. */
    if (!foreground) {
        detached = *conf;
        detached.log_target = LOG_TO_SYSLOG;
        cfg = &detached;
    }
    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    d.listen_fd[0] = d.listen_fd[1] = d.sigfd = -1;
    /* Until it detaches, errors go where the operator is looking. */
    log_setup("parent", conf->log_target, conf->log_level);
    if (daemon_start(&d, foreground, &ready_fd) == 0) {
        write_state(&d);
        log_event(LOG_LVL_INFO, "ready",
                  json_pack("{s:i,s:i,s:i}", "internal_port", d.port[0],
                            "public_port", d.port[1], "workers", (int)cfg->workers));
        audit_note(&d, "daemon.start");
        if (ready_fd >= 0 && write(ready_fd, "r", 1) != 1)
            log_warn("detach_notify_failed", "cannot tell the launcher we are ready");
        if (d.hup_pending)
            reload_all(&d);
        rc = serve(&d);
    }
    if (d.nchild > 0)
        shutdown_all(&d);
    if (rc == 0 && d.unclean_stop)
        rc = 1;
    unlink(cfg->pidfile);
    unlink(cfg->portsfile);
    import_board_destroy(d.board);
    log_event(LOG_LVL_INFO, "stopped", json_pack("{s:i}", "exit_status", rc));
    return rc;
}
