/*
 * test_ipc.c - framed messages between mamorid's processes (src/ipc) and
 * the two services that receive them: the key holder and the audit writer.
 *
 * "Every message between processes is hostile": a frame whose magic, type
 * or length does not agree with what arrived is refused (EBADMSG) and
 * dropped, and the channel goes on working.  The last tests fork the real
 * key holder and audit writer (sandboxed, privileges dropped when root)
 * and show that they refuse malformed and unsupported messages yet keep
 * serving, that only the parent can stop them, and that the audit writer
 * acknowledges an event only after it is in the log (R7.1 interface).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/auditd.h"
#include "audit/chain.h"
#include "config/config.h"
#include "ipc/ipc.h"
#include "keyholder/keyholder.h"

/* ---- helpers -------------------------------------------------------------- */

static long
elapsed_ms(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* ipc_recv with a deadline.  Returns ipc_recv's result, or -2 on timeout. */
static int
recv_within(int fd, struct ipc_hdr *h, void *buf, size_t cap, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r;

    do {
        r = poll(&p, 1, ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0)
        return -2;
    return ipc_recv(fd, h, buf, cap);
}

/* True if nothing is waiting on fd. */
static bool
nothing_pending(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);

    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void
raw_send(int fd, const void *frame, size_t len)
{
    ssize_t n = send(fd, frame, len, MSG_NOSIGNAL);

    if (n != (ssize_t)len)
        fail_msg("raw send of %zu bytes: %zd (%s)", len, n, strerror(errno));
}

/* Build a header with any values (magic included) followed by `plen` bytes. */
static size_t
build_frame(uint8_t *out, uint16_t magic, uint16_t type, uint32_t len, uint32_t id,
            size_t plen)
{
    struct ipc_hdr h = { magic, type, len, id, 0 };

    memcpy(out, &h, sizeof(h));
    for (size_t i = 0; i < plen; i++)
        out[sizeof(h) + i] = (uint8_t)(0x41 + i % 26);
    return sizeof(h) + plen;
}

static void
make_pair(int sv[2])
{
    assert_int_equal(ipc_socketpair(sv), 0);
    /* Room for the largest crafted frames. */
    int sz = 1 << 20;
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
    assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
}

/* The next message must be this valid PING. */
static void
expect_ping(int fd, uint32_t id, const char *payload)
{
    struct ipc_hdr h;
    static uint8_t buf[IPC_MAX_PAYLOAD];

    memset(&h, 0, sizeof(h));
    assert_int_equal(recv_within(fd, &h, buf, sizeof(buf), 2000), 1);
    assert_int_equal(h.magic, IPC_MAGIC);
    assert_int_equal(h.type, IPC_PING);
    assert_int_equal(h.id, id);
    assert_int_equal(h.len, strlen(payload));
    assert_memory_equal(buf, payload, h.len);
}

/* ---- types and round trips --------------------------------------------------- */

static void
test_type_limits_match_protocol(void **state)
{
    (void)state;
    /* What ipc.h documents for each type. */
    assert_int_equal(ipc_max_len(IPC_PING), 64);
    assert_int_equal(ipc_max_len(IPC_PONG), ipc_max_len(IPC_PING));   /* echoes it */
    assert_int_equal(ipc_max_len(IPC_SHUTDOWN), 0);
    assert_int_equal(ipc_max_len(IPC_READY), 0);
    assert_int_equal(ipc_max_len(IPC_AUDIT_ACK), 8);                 /* one uint64 */
    assert_true(ipc_max_len(IPC_ERROR) > 0);
    assert_true(ipc_max_len(IPC_AUDIT_APPEND) > 0);
    assert_true(ipc_max_len(IPC_REVOKED_CHUNK) >= 32);
    assert_int_equal(ipc_max_len(IPC_REVOKED_CHUNK) % 32, 0);        /* whole fingerprints */
    for (uint16_t t = 1; t < IPC_TYPE_END; t++) {
        assert_true(ipc_max_len(t) <= IPC_MAX_PAYLOAD);
        assert_string_not_equal(ipc_type_name(t), "unknown");
    }
    assert_int_equal(ipc_max_len(0), 0);
    assert_int_equal(ipc_max_len(IPC_TYPE_END), 0);
    assert_int_equal(ipc_max_len(0xffff), 0);
    assert_string_equal(ipc_type_name(0), "unknown");
    assert_string_equal(ipc_type_name(IPC_TYPE_END), "unknown");
}

static void
test_round_trip_each_type_at_max(void **state)
{
    int sv[2];
    static uint8_t out[IPC_MAX_PAYLOAD], in[IPC_MAX_PAYLOAD];
    struct ipc_hdr h;

    (void)state;
    make_pair(sv);
    for (uint16_t t = 1; t < IPC_TYPE_END; t++) {
        size_t max = ipc_max_len(t);
        assert_int_equal(getrandom(out, max, 0), (ssize_t)max);
        assert_int_equal(ipc_send(sv[0], t, 1000u + t, IPC_F_FIRST | IPC_F_LAST, out, max), 0);
        memset(&h, 0, sizeof(h));
        memset(in, 0, sizeof(in));
        assert_int_equal(recv_within(sv[1], &h, in, sizeof(in), 2000), 1);
        assert_int_equal(h.magic, IPC_MAGIC);
        assert_int_equal(h.type, t);
        assert_int_equal(h.len, max);
        assert_int_equal(h.id, 1000u + t);
        assert_int_equal(h.flags, IPC_F_FIRST | IPC_F_LAST);
        if (max > 0)
            assert_memory_equal(in, out, max);
        /* And the other direction, empty. */
        assert_int_equal(ipc_send(sv[1], t, 7, 0, NULL, 0), 0);
        assert_int_equal(recv_within(sv[0], &h, in, sizeof(in), 2000), 1);
        assert_int_equal(h.type, t);
        assert_int_equal(h.len, 0);
        assert_int_equal(h.id, 7);
    }
    close(sv[0]);
    close(sv[1]);
}

static void
test_oversize_send_refused(void **state)
{
    int sv[2];
    static uint8_t out[IPC_MAX_PAYLOAD + 1];

    (void)state;
    make_pair(sv);
    for (uint16_t t = 1; t < IPC_TYPE_END; t++) {
        errno = 0;
        assert_int_equal(ipc_send(sv[0], t, 1, 0, out, ipc_max_len(t) + 1), -1);
        assert_int_equal(errno, EMSGSIZE);
    }
    errno = 0;
    assert_int_equal(ipc_send(sv[0], IPC_AUDIT_APPEND, 1, 0, out, sizeof(out)), -1);
    assert_int_equal(errno, EMSGSIZE);
    /* Unknown types cannot be sent at all. */
    errno = 0;
    assert_int_equal(ipc_send(sv[0], 0, 1, 0, NULL, 0), -1);
    assert_int_equal(errno, EMSGSIZE);
    errno = 0;
    assert_int_equal(ipc_send(sv[0], IPC_TYPE_END, 1, 0, NULL, 0), -1);
    assert_int_equal(errno, EMSGSIZE);
    /* Nothing reached the other end. */
    assert_true(nothing_pending(sv[1]));
    close(sv[0]);
    close(sv[1]);
}

static void
test_peer_closed(void **state)
{
    int sv[2];
    struct ipc_hdr h;
    uint8_t buf[64];

    (void)state;
    make_pair(sv);
    close(sv[0]);
    assert_int_equal(recv_within(sv[1], &h, buf, sizeof(buf), 2000), 0);
    errno = 0;
    assert_int_equal(ipc_send(sv[1], IPC_PING, 1, 0, "x", 1), -1);
    assert_int_equal(errno, EPIPE);
    close(sv[1]);
}

/* ---- hostile frames ------------------------------------------------------- */

static void
test_malformed_frames_refused_then_next_ok(void **state)
{
    static uint8_t frame[sizeof(struct ipc_hdr) + IPC_MAX_PAYLOAD + 128];
    static uint8_t buf[IPC_MAX_PAYLOAD];
    const size_t H = sizeof(struct ipc_hdr);
    struct ipc_hdr h;
    int sv[2];
    struct {
        const char *what;
        uint16_t magic, type;
        uint32_t len;
        size_t   plen;       /* bytes actually following the header */
        size_t   cut;        /* send only this many bytes of the frame (0: all) */
    } bad[] = {
        { "5 bytes, shorter than the header", IPC_MAGIC, IPC_PING, 0, 0, 5 },
        { "header minus one byte", IPC_MAGIC, IPC_PING, 0, 0, H - 1 },
        { "bad magic", 0x4d4e, IPC_PING, 0, 0, 0 },
        { "magic bytes in the wrong order", 0x004d, IPC_PING, 0, 0, 0 },
        { "type 0", IPC_MAGIC, 0, 0, 0, 0 },
        { "type one past the last", IPC_MAGIC, IPC_TYPE_END, 0, 0, 0 },
        { "type 0xffff", IPC_MAGIC, 0xffff, 0, 0, 0 },
        { "len 10, 5 bytes sent", IPC_MAGIC, IPC_PING, 10, 5, 0 },
        { "len 3, 5 bytes sent", IPC_MAGIC, IPC_PING, 3, 5, 0 },
        { "len 0, 1 byte sent", IPC_MAGIC, IPC_ERROR, 0, 1, 0 },
        { "len 0xffffffff", IPC_MAGIC, IPC_AUDIT_APPEND, 0xffffffffu, 4, 0 },
        { "ping above its 64-byte maximum", IPC_MAGIC, IPC_PING, 65, 65, 0 },
        { "shutdown with a payload", IPC_MAGIC, IPC_SHUTDOWN, 1, 1, 0 },
        { "ack of 9 bytes", IPC_MAGIC, IPC_AUDIT_ACK, 9, 9, 0 },
        { "audit event above its maximum", IPC_MAGIC, IPC_AUDIT_APPEND,
          16u * 1024u + 1, 16u * 1024u + 1, 0 },
        { "frame larger than the receive buffer", IPC_MAGIC, IPC_AUDIT_APPEND,
          IPC_MAX_PAYLOAD + 100, IPC_MAX_PAYLOAD + 100, 0 },
    };

    (void)state;
    make_pair(sv);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = build_frame(frame, bad[i].magic, bad[i].type, bad[i].len, 9, bad[i].plen);
        if (bad[i].cut != 0)
            n = bad[i].cut;
        raw_send(sv[0], frame, n);
        assert_int_equal(ipc_send(sv[0], IPC_PING, 100 + (uint32_t)i, 0, "next", 4), 0);

        errno = 0;
        memset(&h, 0, sizeof(h));
        int r = recv_within(sv[1], &h, buf, sizeof(buf), 2000);
        if (r != -1 || errno != EBADMSG)
            fail_msg("%s: ipc_recv returned %d (%s), expected -1/EBADMSG", bad[i].what, r,
                     strerror(errno));
        /* The bad frame was consumed whole: the next message is intact. */
        expect_ping(sv[1], 100 + (uint32_t)i, "next");
    }
    assert_true(nothing_pending(sv[1]));
    close(sv[0]);
    close(sv[1]);
}

/* A valid message that does not fit the caller's buffer is refused too. */
static void
test_frame_larger_than_caller_buffer(void **state)
{
    int sv[2];
    static uint8_t out[16 * 1024];
    uint8_t small[1024];
    struct ipc_hdr h;

    (void)state;
    make_pair(sv);
    memset(out, '{', sizeof(out));
    assert_int_equal(ipc_send(sv[0], IPC_AUDIT_APPEND, 5, 0, out, sizeof(out)), 0);
    assert_int_equal(ipc_send(sv[0], IPC_PING, 6, 0, "after", 5), 0);
    errno = 0;
    assert_int_equal(recv_within(sv[1], &h, small, sizeof(small), 2000), -1);
    assert_int_equal(errno, EBADMSG);
    expect_ping(sv[1], 6, "after");
    close(sv[0]);
    close(sv[1]);
}

/* A zero-length datagram is a malformed message, not the peer closing:
 * a service that took it for EOF would drop a live channel (or, on the
 * parent channel, exit). */
static void
test_empty_datagram_is_not_eof(void **state)
{
    int sv[2];
    struct ipc_hdr h;
    uint8_t buf[64];

    (void)state;
    make_pair(sv);
    raw_send(sv[0], "", 0);
    assert_int_equal(ipc_send(sv[0], IPC_PING, 3, 0, "alive", 5), 0);
    errno = 0;
    int r = recv_within(sv[1], &h, buf, sizeof(buf), 2000);
    if (r != -1 || errno != EBADMSG)
        fail_msg("empty datagram: ipc_recv returned %d (%s); expected -1/EBADMSG "
                 "(0 means \"peer closed\")", r, r < 0 ? strerror(errno) : "no error");
    expect_ping(sv[1], 3, "alive");
    close(sv[0]);
    close(sv[1]);
}

static int
count_open_fds(void)
{
    int n = 0;

    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

/* File descriptors smuggled with a message are refused, not installed. */
static void
test_passed_fd_refused(void **state)
{
    int sv[2], devnull;
    uint8_t frame[64], buf[64];
    struct ipc_hdr h;
    union {
        struct cmsghdr c;
        char b[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct iovec iov;
    struct msghdr mh;

    (void)state;
    make_pair(sv);
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(devnull >= 0);
    iov.iov_base = frame;
    iov.iov_len = build_frame(frame, IPC_MAGIC, IPC_PING, 4, 11, 4);
    memset(&mh, 0, sizeof(mh));
    memset(&ctl, 0, sizeof(ctl));
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.b;
    mh.msg_controllen = sizeof(ctl.b);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &devnull, sizeof(int));
    assert_int_equal(sendmsg(sv[0], &mh, MSG_NOSIGNAL), (ssize_t)iov.iov_len);
    close(devnull);

    int before = count_open_fds();
    errno = 0;
    assert_int_equal(recv_within(sv[1], &h, buf, sizeof(buf), 2000), -1);
    assert_int_equal(errno, EBADMSG);
    assert_int_equal(count_open_fds(), before);
    close(sv[0]);
    close(sv[1]);
}

/* ---- ipc_call ------------------------------------------------------------- */

struct peer {
    int fd;
    int mode;       /* 0: answer late and out of order; 1: never answer */
    uint32_t ids[2];
};

static void *
peer_main(void *arg)
{
    struct peer *p = arg;
    struct ipc_hdr h[2];
    uint8_t buf[64];

    if (p->mode == 1) {
        (void)recv_within(p->fd, &h[0], buf, sizeof(buf), 5000);
        return NULL;
    }
    /* Take two requests before answering anything: the first caller has
     * timed out by then.  Reply to the first (now stale), then to the
     * second, plus a reply with an id nobody asked for. */
    for (int i = 0; i < 2; i++) {
        if (recv_within(p->fd, &h[i], buf, sizeof(buf), 5000) != 1)
            return NULL;
        p->ids[i] = h[i].id;
    }
    if (ipc_send(p->fd, IPC_PONG, h[0].id, 0, "stale", 5) != 0 ||
        ipc_send(p->fd, IPC_PONG, h[1].id + 1000, 0, "other", 5) != 0 ||
        ipc_send(p->fd, IPC_PONG, h[1].id, 0, "fresh", 5) != 0)
        return NULL;
    return NULL;
}

static void
test_call_skips_stale_reply_and_times_out(void **state)
{
    int sv[2];
    struct ipc_chan c;
    struct peer p = { 0 };
    pthread_t th;
    struct ipc_hdr rh;
    uint8_t rbuf[64];
    struct timespec t0;

    (void)state;
    make_pair(sv);
    ipc_chan_init(&c, sv[0]);
    p.fd = sv[1];
    p.mode = 0;
    assert_int_equal(pthread_create(&th, NULL, peer_main, &p), 0);

    /* No answer within 200 ms: -1/ETIMEDOUT, after about that long. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    errno = 0;
    assert_int_equal(ipc_call(&c, IPC_PING, "one", 3, &rh, rbuf, sizeof(rbuf), 200), -1);
    assert_int_equal(errno, ETIMEDOUT);
    long ms = elapsed_ms(&t0);
    assert_true(ms >= 190);
    assert_true(ms < 3000);

    /* The next call receives the late reply to the first call and a
     * foreign one first: both skipped, its own reply returned. */
    memset(&rh, 0, sizeof(rh));
    assert_int_equal(ipc_call(&c, IPC_PING, "two", 3, &rh, rbuf, sizeof(rbuf), 5000), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(p.ids[0] != p.ids[1]);
    assert_int_equal(rh.id, p.ids[1]);
    assert_int_equal(rh.type, IPC_PONG);
    assert_int_equal(rh.len, 5);
    assert_memory_equal(rbuf, "fresh", 5);
    assert_true(nothing_pending(sv[0]));

    /* A peer that takes the request and goes away: an error, not a hang. */
    p.mode = 1;
    assert_int_equal(pthread_create(&th, NULL, peer_main, &p), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    close(sv[1]);
    errno = 0;
    assert_int_equal(ipc_call(&c, IPC_PING, "x", 1, &rh, rbuf, sizeof(rbuf), 2000), -1);
    assert_int_equal(errno, EPIPE);

    ipc_chan_destroy(&c);
    close(sv[0]);
}

/* A request that ipc_send refuses never waits. */
static void
test_call_oversize_refused(void **state)
{
    int sv[2];
    struct ipc_chan c;
    struct ipc_hdr rh;
    uint8_t req[100] = { 0 }, rbuf[64];

    (void)state;
    make_pair(sv);
    ipc_chan_init(&c, sv[0]);
    errno = 0;
    assert_int_equal(ipc_call(&c, IPC_PING, req, sizeof(req), &rh, rbuf, sizeof(rbuf), 5000), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_true(nothing_pending(sv[1]));
    ipc_chan_destroy(&c);
    close(sv[0]);
    close(sv[1]);
}

/* ---- real service processes ---------------------------------------------- */

struct svcenv {
    char   dir[64];
    char   user[64];
    uid_t  uid;
    gid_t  gid;
    bool   root;
    struct mamori_config cfg;
    uint8_t master[32];
};

static void
chown_if_root(const struct svcenv *e, const char *path)
{
    if (e->root && chown(path, e->uid, e->gid) != 0)
        fail_msg("chown %s: %s", path, strerror(errno));
}

static void
write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

/* A data directory the service user owns: keys/master.key (32 random
 * bytes, 0600) and audit/.  As root the services drop to "mamori". */
static int
svc_setup(void **state)
{
    struct svcenv *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return -1;
    e->root = geteuid() == 0;
    if (e->root) {
        struct passwd *pw = getpwnam("mamori");
        if (pw == NULL) {
            fprintf(stderr, "running as root needs the system user \"mamori\"\n");
            free(e);
            return -1;
        }
        e->uid = pw->pw_uid;
        e->gid = pw->pw_gid;
        snprintf(e->user, sizeof(e->user), "mamori");
    } else {
        struct passwd *pw = getpwuid(geteuid());
        if (pw == NULL) {
            free(e);
            return -1;
        }
        e->uid = pw->pw_uid;
        e->gid = pw->pw_gid;
        snprintf(e->user, sizeof(e->user), "%s", pw->pw_name);
    }
    snprintf(e->dir, sizeof(e->dir), "/tmp/mamori-test-ipc-XXXXXX");
    if (mkdtemp(e->dir) == NULL) {
        free(e);
        return -1;
    }
    chown_if_root(e, e->dir);
    config_defaults(&e->cfg);
    snprintf(e->cfg.datadir, sizeof(e->cfg.datadir), "%s", e->dir);
    snprintf(e->cfg.user, sizeof(e->cfg.user), "%s", e->user);
    e->cfg.log_level = LOG_LVL_WARN;
    /* Office hours all day: an off-hours alert (R7.4, tested in
     * test_audit.c) would take sequence numbers these tests count. */
    e->cfg.audit_office_start = 0;
    e->cfg.audit_office_end = 24;
    snprintf(e->cfg.keys_dir, sizeof(e->cfg.keys_dir), "%s/keys", e->dir);
    snprintf(e->cfg.master_key, sizeof(e->cfg.master_key), "%s/keys/master.key", e->dir);
    snprintf(e->cfg.audit_dir, sizeof(e->cfg.audit_dir), "%s/audit", e->dir);
    snprintf(e->cfg.store_path, sizeof(e->cfg.store_path), "%s/db/mamori.sqlite", e->dir);
    if (mkdir(e->cfg.keys_dir, 0700) != 0 || mkdir(e->cfg.audit_dir, 0700) != 0)
        return -1;
    chown_if_root(e, e->cfg.keys_dir);
    chown_if_root(e, e->cfg.audit_dir);
    if (getrandom(e->master, sizeof(e->master), 0) != (ssize_t)sizeof(e->master))
        return -1;
    write_file(e->cfg.master_key, e->master, sizeof(e->master), 0600);
    chown_if_root(e, e->cfg.master_key);
    *state = e;
    return 0;
}

static int
svc_teardown(void **state)
{
    struct svcenv *e = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        return -1;
    free(e);
    return 0;
}

typedef int (*service_main)(const struct mamori_config *, const int *, size_t);

struct svc {
    pid_t pid;
    int   ctl;      /* our end of the parent's control channel */
    int   worker;   /* our end of a worker's request channel */
};

/* Fork a service the way mamorid does: fds = {control, worker}.  `limit`
 * (when not 0) caps the size of files the child may write. */
static void
svc_start(struct svc *s, service_main fn, const struct mamori_config *cfg, rlim_t fsize_limit)
{
    int ctl[2], wrk[2];

    assert_int_equal(ipc_socketpair(ctl), 0);
    assert_int_equal(ipc_socketpair(wrk), 0);
    fflush(NULL);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        int fds[2] = { ctl[1], wrk[1] };
        close(ctl[0]);
        close(wrk[0]);
        if (fsize_limit != 0) {
            struct rlimit rl = { fsize_limit, fsize_limit };
            signal(SIGXFSZ, SIG_IGN);    /* writes fail with EFBIG instead */
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
                _exit(120);
        }
        _exit(fn(cfg, fds, 2));
    }
    close(ctl[1]);
    close(wrk[1]);
    s->ctl = ctl[0];
    s->worker = wrk[0];
}

/* Wait for the child; kill it and fail after timeout_ms. */
static int
svc_wait(struct svc *s, int timeout_ms)
{
    struct timespec t0;
    int status;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid)
            break;
        if (elapsed_ms(&t0) > timeout_ms) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            fail_msg("service pid %d did not exit within %d ms", (int)s->pid, timeout_ms);
        }
        usleep(10000);
    }
    close(s->ctl);
    close(s->worker);
    return status;
}

static void
expect_ready(struct svc *s)
{
    struct ipc_hdr h = { 0 };
    uint8_t buf[64];
    int r = recv_within(s->ctl, &h, buf, sizeof(buf), 20000);

    if (r != 1 || h.type != IPC_READY) {
        kill(s->pid, SIGKILL);
        fail_msg("service did not report ready (recv %d, type %u)", r, (unsigned)h.type);
    }
    assert_int_equal(h.len, 0);
}

/* Send `type` with payload, expect a reply of rtype with the same id. */
static size_t
request(int fd, uint16_t type, uint32_t id, const void *p, size_t len, uint16_t rtype,
        uint8_t *rbuf, size_t rcap)
{
    struct ipc_hdr h;
    int r;

    assert_int_equal(ipc_send(fd, type, id, 0, p, len), 0);
    memset(&h, 0, sizeof(h));
    r = recv_within(fd, &h, rbuf, rcap, 10000);
    if (r != 1)
        fail_msg("no reply to %s id %u (recv %d)", ipc_type_name(type), id, r);
    if (h.type != rtype || h.id != id)
        fail_msg("reply to %s id %u was %s id %u, expected %s", ipc_type_name(type), id,
                 ipc_type_name(h.type), h.id, ipc_type_name(rtype));
    return h.len;
}

static void
expect_error_reply(int fd, uint16_t type, uint32_t id, const void *p, size_t len,
                   const char *reason)
{
    uint8_t buf[IPC_MAX_PAYLOAD];
    size_t n = request(fd, type, id, p, len, IPC_ERROR, buf, sizeof(buf));

    if (n != strlen(reason) || memcmp(buf, reason, n) != 0)
        fail_msg("error reason \"%.*s\", expected \"%s\"", (int)n, buf, reason);
}

static void
expect_pong(int fd, uint32_t id, const char *payload)
{
    uint8_t buf[64];
    size_t n = request(fd, IPC_PING, id, payload, strlen(payload), IPC_PONG, buf, sizeof(buf));

    assert_int_equal(n, strlen(payload));
    assert_memory_equal(buf, payload, n);
}

/* Garbage frames a compromised peer might send; none gets an answer. */
static void
send_garbage(int fd)
{
    uint8_t frame[256];

    raw_send(fd, "\x4d\x4d\x01", 3);
    raw_send(fd, frame, build_frame(frame, 0xbeef, IPC_PING, 0, 1, 0));
    raw_send(fd, frame, build_frame(frame, IPC_MAGIC, 0x7777, 0, 2, 0));
    raw_send(fd, frame, build_frame(frame, IPC_MAGIC, IPC_PING, 40, 3, 10));
    raw_send(fd, frame, build_frame(frame, IPC_MAGIC, IPC_PING, 100, 4, 100));
    raw_send(fd, frame, build_frame(frame, IPC_MAGIC, IPC_SHUTDOWN, 5, 5, 5));
}

static void
test_keyholder_refuses_bad_messages_and_survives(void **state)
{
    struct svcenv *e = *state;
    struct svc s;
    int status;

    svc_start(&s, keyholder_main, &e->cfg, 0);
    expect_ready(&s);

    /* Malformed frames on the worker channel: dropped without a reply. */
    send_garbage(s.worker);
    /* A type the key holder does not serve: refused and answered. */
    expect_error_reply(s.worker, IPC_AUDIT_APPEND, 42, "{}", 2, "unsupported");
    {
        static const uint8_t fp[32] = { 1 };
        expect_error_reply(s.worker, IPC_REVOKED_CHUNK, 43, fp, sizeof(fp), "unsupported");
    }
    /* Only the parent may stop it: SHUTDOWN from a worker is refused. */
    expect_error_reply(s.worker, IPC_SHUTDOWN, 44, NULL, 0, "unsupported");
    /* Still alive and serving, with the id and payload echoed. */
    expect_pong(s.worker, 77, "still-here");
    assert_true(nothing_pending(s.worker));

    /* The control channel is checked just the same. */
    send_garbage(s.ctl);
    expect_pong(s.ctl, 78, "parent");
    assert_true(nothing_pending(s.ctl));

    assert_int_equal(ipc_send(s.ctl, IPC_SHUTDOWN, 79, 0, NULL, 0), 0);
    status = svc_wait(&s, 10000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* An empty datagram from a worker is a malformed message: the key holder
 * must keep serving that worker (it must not take it for a closed
 * channel and stop listening to it). */
static void
test_keyholder_survives_empty_datagram(void **state)
{
    struct svcenv *e = *state;
    struct svc s;
    struct ipc_hdr h = { 0 };
    uint8_t buf[64];
    int status;

    svc_start(&s, keyholder_main, &e->cfg, 0);
    expect_ready(&s);
    raw_send(s.worker, "", 0);
    assert_int_equal(ipc_send(s.worker, IPC_PING, 90, 0, "after-empty", 11), 0);
    int r = recv_within(s.worker, &h, buf, sizeof(buf), 3000);
    if (r != 1 || h.type != IPC_PONG || h.id != 90) {
        kill(s.pid, SIGKILL);
        (void)svc_wait(&s, 10000);
        fail_msg("after an empty datagram the key holder stopped answering the worker "
                 "(recv %d)", r);
    }
    assert_int_equal(ipc_send(s.ctl, IPC_SHUTDOWN, 91, 0, NULL, 0), 0);
    status = svc_wait(&s, 10000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* The key holder refuses a master key file anyone else could read or of
 * the wrong size, and never reports ready with it. */
static void
test_keyholder_refuses_bad_master_key(void **state)
{
    struct svcenv *e = *state;
    struct {
        const char *what;
        size_t len;
        mode_t mode;
    } bad[] = {
        { "group-readable", 32, 0640 },
        { "world-readable", 32, 0604 },
        { "31 bytes", 31, 0600 },
        { "33 bytes", 33, 0600 },
    };
    uint8_t key[33] = { 0 };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct svc s;
        struct ipc_hdr h;
        uint8_t buf[64];
        int status;

        write_file(e->cfg.master_key, key, bad[i].len, bad[i].mode);
        chown_if_root(e, e->cfg.master_key);
        svc_start(&s, keyholder_main, &e->cfg, 0);
        int r = recv_within(s.ctl, &h, buf, sizeof(buf), 10000);
        if (r != 0)
            fail_msg("%s master key: expected the key holder to exit without "
                     "ready (recv %d, type %u)", bad[i].what, r, (unsigned)h.type);
        status = svc_wait(&s, 10000);
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 0);
    }

    /* Not a symbolic link, even to a good key file. */
    {
        char real[PATH_MAX + 16];
        struct svc s;
        struct ipc_hdr h;
        uint8_t buf[64];
        int status;

        snprintf(real, sizeof(real), "%s/keys/real.key", e->dir);
        write_file(real, e->master, sizeof(e->master), 0600);
        chown_if_root(e, real);
        assert_int_equal(unlink(e->cfg.master_key), 0);
        assert_int_equal(symlink(real, e->cfg.master_key), 0);
        svc_start(&s, keyholder_main, &e->cfg, 0);
        assert_int_equal(recv_within(s.ctl, &h, buf, sizeof(buf), 10000), 0);
        status = svc_wait(&s, 10000);
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 0);

        /* Control: the same key as a plain 0600 file starts. */
        assert_int_equal(unlink(e->cfg.master_key), 0);
        assert_int_equal(rename(real, e->cfg.master_key), 0);
        svc_start(&s, keyholder_main, &e->cfg, 0);
        expect_ready(&s);
        assert_int_equal(ipc_send(s.ctl, IPC_SHUTDOWN, 1, 0, NULL, 0), 0);
        status = svc_wait(&s, 10000);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
}

static uint64_t
be64(const uint8_t *b)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | b[i];
    return v;
}

static uint64_t
append_ok(int fd, uint32_t id, const char *event)
{
    uint8_t buf[64];
    size_t n = request(fd, IPC_AUDIT_APPEND, id, event, strlen(event), IPC_AUDIT_ACK,
                       buf, sizeof(buf));

    assert_int_equal(n, 8);
    return be64(buf);
}

/* Every entry of the audit log (all segments, audit/chain.h), one JSON
 * value per line; returns the count. */
static size_t
read_log(const struct svcenv *e, json_t **lines, size_t max)
{
    struct audit_segment *segs;
    size_t nseg, n = 0;

    assert_int_equal(audit_segments_list(e->cfg.audit_dir, &segs, &nseg), 0);
    for (size_t i = 0; i < nseg; i++) {
        char *buf, *p;
        size_t len;
        assert_int_equal(audit_segment_read(&segs[i], &buf, &len), 0);
        assert_true(len > 0 && buf[len - 1] == '\n');      /* whole lines only */
        for (p = buf; p < buf + len;) {
            char *nl = memchr(p, '\n', (size_t)(buf + len - p));
            json_error_t jerr;
            assert_true(n < max);
            lines[n] = json_loadb(p, (size_t)(nl - p), 0, &jerr);
            if (lines[n] == NULL)
                fail_msg("audit line %zu is not JSON: %s", n + 1, jerr.text);
            n++;
            p = nl + 1;
        }
        free(buf);
    }
    free(segs);
    return n;
}

static void
free_lines(json_t **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(lines[i]);
}

/* The entry numbered seq holds `event`. */
static void
expect_entry(json_t **lines, size_t n, uint64_t seq, const char *event)
{
    json_t *want = json_loads(event, 0, NULL);

    assert_non_null(want);
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_object_get(lines[i], "seq")) == (json_int_t)seq) {
            assert_true(json_equal(json_object_get(lines[i], "event"), want));
            json_decref(want);
            return;
        }
    fail_msg("no entry with seq %llu", (unsigned long long)seq);
}

/* The whole log is one unbroken chain (R7.2).  These tests run the writer
 * without a key holder, so there are no checkpoints to check. */
static void
expect_chain_ok(const struct svcenv *e)
{
    struct audit_verify_result r;
    uint8_t pk[AUDIT_PK_LEN] = { 0 };

    if (audit_verify(e->cfg.audit_dir, pk, &r) != 0)
        fail_msg("audit log does not verify: %s line %llu: %s", r.file,
                 (unsigned long long)r.line, r.what);
}

static const char EV1[] =
    "{\"action\":\"resident.read\",\"outcome\":\"success\",\"actor\":\"clerk-1\","
    "\"objects\":[\"r-17\"]}";
static const char EV2[] =
    "{\"action\":\"auth.login\",\"outcome\":\"failure\",\"actor\":\"clerk-2\"}";
static const char EV3[] = "{\"action\":\"resident.list\",\"outcome\":\"success\"}";

static void
test_auditd_appends_acks_and_refuses(void **state)
{
    struct svcenv *e = *state;
    struct svc s;
    int status;
    json_t *lines[16];

    svc_start(&s, auditd_main, &e->cfg, 0);
    expect_ready(&s);

    /* Acked with consecutive numbers (big-endian uint64), the id echoed.
     * The writer's own start entries come first. */
    uint64_t s1 = append_ok(s.worker, 10, EV1);
    assert_true(s1 >= 1);
    assert_true(append_ok(s.worker, 11, EV2) == s1 + 1);

    /* Not a JSON object: refused, nothing written. */
    expect_error_reply(s.worker, IPC_AUDIT_APPEND, 12, "[1,2]", 5, "malformed_event");
    expect_error_reply(s.worker, IPC_AUDIT_APPEND, 13, "\"x\"", 3, "malformed_event");
    expect_error_reply(s.worker, IPC_AUDIT_APPEND, 14, "{\"a\":", 5, "malformed_event");
    expect_error_reply(s.worker, IPC_AUDIT_APPEND, 15, "{\"a\":1,\"a\":2}", 13, "malformed_event");
    expect_error_reply(s.worker, IPC_AUDIT_APPEND, 16, "{}\n{}", 5, "malformed_event");
    expect_error_reply(s.worker, IPC_AUDIT_APPEND, 17, "", 0, "malformed_event");
    /* R7.1: outside the schema -- an unknown member, a missing one, an
     * individual number in clear. */
    {
        const char *unk = "{\"action\":\"x\",\"outcome\":\"success\",\"password\":\"p\"}";
        const char *miss = "{\"action\":\"x\"}";
        const char *mn = "{\"action\":\"x\",\"outcome\":\"success\",\"objects\":[\"123456789018\"]}";
        expect_error_reply(s.worker, IPC_AUDIT_APPEND, 30, unk, strlen(unk), "unknown_field");
        expect_error_reply(s.worker, IPC_AUDIT_APPEND, 31, miss, strlen(miss), "missing_field");
        expect_error_reply(s.worker, IPC_AUDIT_APPEND, 32, mn, strlen(mn), "bad_value");
    }
    /* Types the audit writer does not serve, and malformed frames. */
    expect_error_reply(s.worker, IPC_REVOKED_CHUNK, 18, NULL, 0, "unsupported");
    expect_error_reply(s.worker, IPC_SHUTDOWN, 19, NULL, 0, "unsupported");
    send_garbage(s.worker);
    expect_pong(s.worker, 20, "audit-alive");
    /* Numbering went on: the refused events took no number. */
    assert_true(append_ok(s.worker, 21, EV3) == s1 + 2);

    assert_int_equal(ipc_send(s.ctl, IPC_SHUTDOWN, 1, 0, NULL, 0), 0);
    status = svc_wait(&s, 10000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* The log holds the three accepted events under their numbers, the
     * writer's start and stop entries, and nothing refused. */
    size_t n = read_log(e, lines, 16);
    expect_entry(lines, n, s1, EV1);
    expect_entry(lines, n, s1 + 1, EV2);
    expect_entry(lines, n, s1 + 2, EV3);
    assert_int_equal(n, s1 + 3);                 /* + audit.stop */
    assert_string_equal(json_string_value(json_object_get(json_object_get(lines[n - 1],
                        "event"), "action")), "audit.stop");
    free_lines(lines, n);
    expect_chain_ok(e);

    /* No group or other access to the segments. */
    {
        struct audit_segment *segs;
        size_t ns;
        struct stat st;
        assert_int_equal(audit_segments_list(e->cfg.audit_dir, &segs, &ns), 0);
        assert_true(ns >= 1);
        assert_int_equal(stat(segs[0].path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 077, 0);
        free(segs);
    }
}

/* Restart the writer on the same log; the next ack must come after
 * `prev` (the writer's stop and start entries lie between). */
static uint64_t
restart_and_expect_after(struct svcenv *e, uint64_t prev)
{
    struct svc s;
    int status;

    svc_start(&s, auditd_main, &e->cfg, 0);
    expect_ready(&s);
    uint64_t got = append_ok(s.worker, 1, EV3);
    assert_int_equal(ipc_send(s.ctl, IPC_SHUTDOWN, 2, 0, NULL, 0), 0);
    status = svc_wait(&s, 10000);
    assert_true(WIFEXITED(status));
    if (got <= prev)
        fail_msg("after a restart the writer numbered the next event %llu, after %llu",
                 (unsigned long long)got, (unsigned long long)prev);
    expect_chain_ok(e);
    return got;
}

static void
test_auditd_numbering_continues_across_restart(void **state)
{
    struct svcenv *e = *state;
    struct svc s;

    svc_start(&s, auditd_main, &e->cfg, 0);
    expect_ready(&s);
    uint64_t a = append_ok(s.worker, 1, EV1);
    assert_true(append_ok(s.worker, 2, EV2) == a + 1);
    assert_int_equal(ipc_send(s.ctl, IPC_SHUTDOWN, 3, 0, NULL, 0), 0);
    assert_true(WIFEXITED(svc_wait(&s, 10000)));
    uint64_t b = restart_and_expect_after(e, a + 1);
    (void)restart_and_expect_after(e, b);
}

/* An event's own content must not steer the sequence: an "info" member
 * called seq is still just event content. */
static void
test_auditd_numbering_not_taken_from_event_content(void **state)
{
    struct svcenv *e = *state;
    struct svc s;
    const char *forged = "{\"action\":\"x\",\"outcome\":\"success\",\"info\":{\"seq\":999999}}";

    svc_start(&s, auditd_main, &e->cfg, 0);
    expect_ready(&s);
    uint64_t a = append_ok(s.worker, 1, EV1);
    assert_true(append_ok(s.worker, 2, forged) == a + 1);
    assert_int_equal(ipc_send(s.ctl, IPC_SHUTDOWN, 3, 0, NULL, 0), 0);
    assert_true(WIFEXITED(svc_wait(&s, 10000)));
    uint64_t b = restart_and_expect_after(e, a + 1);
    assert_true(b < 1000);
}

/* A big event: 64 object ids of 80 characters (about 5 KiB). */
static char *
big_event(void)
{
    char *big = malloc(8192);
    size_t off;

    assert_non_null(big);
    off = (size_t)snprintf(big, 8192, "{\"action\":\"resident.list\",\"outcome\":\"success\","
                           "\"objects\":[");
    for (int i = 0; i < 64; i++) {
        big[off++] = '"';
        for (int j = 0; j < 80; j++)
            big[off++] = (char)('a' + (i + j) % 26);
        big[off++] = '"';
        big[off++] = i < 63 ? ',' : ']';
    }
    big[off++] = '}';
    big[off] = '\0';
    return big;
}

/* A long last line must not restart the numbering at 1. */
static void
test_auditd_numbering_after_long_last_line(void **state)
{
    struct svcenv *e = *state;
    struct svc s;
    char *big = big_event();

    svc_start(&s, auditd_main, &e->cfg, 0);
    expect_ready(&s);
    uint64_t a = append_ok(s.worker, 1, EV1);
    assert_true(append_ok(s.worker, 2, big) == a + 1);
    /* Killed, so the big event stays the last line (no stop entry). */
    kill(s.pid, SIGKILL);
    (void)svc_wait(&s, 10000);
    free(big);
    (void)restart_and_expect_after(e, a + 1);
}

/* Fail closed: when the log cannot be written the writer answers
 * audit_unavailable, never an ack, and stops.  The write failure is real:
 * RLIMIT_FSIZE a little above the log's size leaves room for the writer's
 * start entry but not for a 5 KiB event, so write(2) fails with EFBIG, as
 * a full disk would with ENOSPC. */
static void
test_auditd_write_failure_fails_closed(void **state)
{
    struct svcenv *e = *state;
    struct audit_segment *segs;
    size_t ns;
    struct svc s;
    struct stat st;
    int status;
    char *big = big_event();

    svc_start(&s, auditd_main, &e->cfg, 0);
    expect_ready(&s);
    (void)append_ok(s.worker, 1, EV1);
    assert_int_equal(ipc_send(s.ctl, IPC_SHUTDOWN, 2, 0, NULL, 0), 0);
    assert_true(WIFEXITED(svc_wait(&s, 10000)));
    assert_int_equal(audit_segments_list(e->cfg.audit_dir, &segs, &ns), 0);
    assert_int_equal(ns, 1);
    assert_int_equal(stat(segs[0].path, &st), 0);

    svc_start(&s, auditd_main, &e->cfg, (rlim_t)st.st_size + 2000);
    expect_ready(&s);
    assert_int_equal(stat(segs[0].path, &st), 0);     /* with the start entry */
    expect_error_reply(s.worker, IPC_AUDIT_APPEND, 5, big, strlen(big), "audit_unavailable");
    /* The writer stopped rather than carry on without a log. */
    status = svc_wait(&s, 10000);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 0);
    /* And the log is as it was: no partial entry, still one chain. */
    {
        struct stat after;
        assert_int_equal(stat(segs[0].path, &after), 0);
        assert_int_equal(after.st_size, st.st_size);
    }
    expect_chain_ok(e);
    free(segs);
    free(big);
}

int
main(void)
{
#define S(fn) cmocka_unit_test_setup_teardown(fn, svc_setup, svc_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_limits_match_protocol),
        cmocka_unit_test(test_round_trip_each_type_at_max),
        cmocka_unit_test(test_oversize_send_refused),
        cmocka_unit_test(test_peer_closed),
        cmocka_unit_test(test_malformed_frames_refused_then_next_ok),
        cmocka_unit_test(test_frame_larger_than_caller_buffer),
        cmocka_unit_test(test_empty_datagram_is_not_eof),
        cmocka_unit_test(test_passed_fd_refused),
        cmocka_unit_test(test_call_skips_stale_reply_and_times_out),
        cmocka_unit_test(test_call_oversize_refused),
        S(test_keyholder_refuses_bad_messages_and_survives),
        S(test_keyholder_survives_empty_datagram),
        S(test_keyholder_refuses_bad_master_key),
        S(test_auditd_appends_acks_and_refuses),
        S(test_auditd_numbering_continues_across_restart),
        S(test_auditd_numbering_not_taken_from_event_content),
        S(test_auditd_numbering_after_long_last_line),
        S(test_auditd_write_failure_fails_closed),
    };
#undef S

    return cmocka_run_group_tests(tests, NULL, NULL);
}
