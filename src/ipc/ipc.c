/*
 * ipc.c - framed messages over SOCK_SEQPACKET.
 */
#include "ipc/ipc.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

struct type_desc {
    const char *name;
    size_t      max;
};

static const struct type_desc types[IPC_TYPE_END] = {
    [IPC_PING]          = { "ping", 64 },
    [IPC_PONG]          = { "pong", 64 },
    [IPC_ERROR]         = { "error", 128 },
    [IPC_SHUTDOWN]      = { "shutdown", 0 },
    [IPC_READY]         = { "ready", 0 },
    [IPC_REVOKED_CHUNK] = { "revoked_chunk", 2048u * 32u },
    [IPC_AUDIT_APPEND]  = { "audit_append", 16u * 1024u },
    [IPC_AUDIT_ACK]     = { "audit_ack", 8 },
    [IPC_REVOKED_INSTALLED] = { "revoked_installed", 0 },
    [IPC_KEY_REQUEST]   = { "key_request", 11 },
    [IPC_KEY_GRANT]     = { "key_grant", 48 },
    [IPC_KEYS_RELOAD]   = { "keys_reload", 0 },
    [IPC_AUDIT_SIGN]    = { "audit_sign", 48 },          /* R7.2 */
    [IPC_AUDIT_SIGNATURE] = { "audit_signature", 64 },
    [IPC_BLOCK_QUERY]   = { "block_query", 46 },         /* R7.4 */
    [IPC_BLOCK_STATUS]  = { "block_status", 5 },
    [IPC_KEY_EVENTS_PENDING] = { "key_events_pending", 0 },   /* R7.7 */
    [IPC_KEY_EVENTS_PULL] = { "key_events_pull", 0 },
    [IPC_KEY_EVENTS]    = { "key_events", 4 + 48 * 22 },    /* keyholder/keyholder.h */
    [IPC_AUDIT_QUERY]   = { "audit_query", 4096 },          /* R7.5 */
    [IPC_AUDIT_ROWS]    = { "audit_rows", IPC_MAX_PAYLOAD },
    [IPC_TERMINAL_REVOKE] = { "terminal_revoke", 32 },      /* R6.2 */
};

size_t
ipc_max_len(uint16_t type)
{
    if (type == 0 || type >= IPC_TYPE_END)
        return 0;
    return types[type].max;
}

const char *
ipc_type_name(uint16_t type)
{
    if (type == 0 || type >= IPC_TYPE_END)
        return "unknown";
    return types[type].name;
}

int
ipc_socketpair(int fds[2])
{
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
}

int
ipc_send(int fd, uint16_t type, uint32_t id, uint32_t flags,
         const void *payload, size_t len)
{
    struct ipc_hdr h = { IPC_MAGIC, type, (uint32_t)len, id, flags };
    struct iovec iov[2] = {
        { &h, sizeof(h) },
        { (void *)(uintptr_t)payload, len },
    };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1 };
    ssize_t n;

    if (type == 0 || type >= IPC_TYPE_END || len > ipc_max_len(type)) {
        errno = EMSGSIZE;
        return -1;
    }
    do {
        n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if ((size_t)n != sizeof(h) + len) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int
ipc_recv(int fd, struct ipc_hdr *hdr, void *buf, size_t cap)
{
    struct iovec iov[2];
    struct msghdr mh;
    ssize_t n;

    memset(hdr, 0, sizeof(*hdr));
    iov[0] = (struct iovec){ hdr, sizeof(*hdr) };
    iov[1] = (struct iovec){ buf, cap };
    memset(&mh, 0, sizeof(mh));
    mh.msg_iov = iov;
    mh.msg_iovlen = 2;

    do {
        n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if (n == 0) {
        /* SEQPACKET delivers empty messages too: only a hang-up is EOF. */
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP)) != 0)
            return 0;
        errno = EBADMSG;
        return -1;
    }
    /* Check everything before anyone looks at the payload. */
    if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
        (size_t)n < sizeof(*hdr) ||
        hdr->magic != IPC_MAGIC ||
        hdr->type == 0 || hdr->type >= IPC_TYPE_END ||
        hdr->len != (size_t)n - sizeof(*hdr) ||
        hdr->len > ipc_max_len(hdr->type) ||
        hdr->len > cap) {
        errno = EBADMSG;
        return -1;
    }
    return 1;
}

void
ipc_chan_init(struct ipc_chan *c, int fd)
{
    c->fd = fd;
    c->next_id = 1;
    pthread_mutex_init(&c->mu, NULL);
}

void
ipc_chan_destroy(struct ipc_chan *c)
{
    pthread_mutex_destroy(&c->mu);
}

static int
wait_readable(int fd, const struct timespec *deadline)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };

    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (deadline->tv_sec - now.tv_sec) * 1000 +
             (deadline->tv_nsec - now.tv_nsec) / 1000000;
        if (ms <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        int r = poll(&p, 1, (int)ms);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

int
ipc_call(struct ipc_chan *c, uint16_t type, const void *req, size_t len,
         struct ipc_hdr *rhdr, void *rbuf, size_t rcap, int timeout_ms)
{
    struct timespec deadline;
    uint32_t id;
    int rc = -1;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    id = c->next_id++;
    if (c->next_id == 0)
        c->next_id = 1;
    if (ipc_send(c->fd, type, id, 0, req, len) != 0)
        goto out;
    /* Replies to earlier, timed-out calls may still arrive: skip them. */
    for (;;) {
        int r;
        if (wait_readable(c->fd, &deadline) != 0)
            goto out;
        r = ipc_recv(c->fd, rhdr, rbuf, rcap);
        if (r == 0) {
            errno = EPIPE;
            goto out;
        }
        if (r < 0)
            goto out;
        if (rhdr->id == id)
            break;
    }
    rc = 0;
out:
    pthread_mutex_unlock(&c->mu);
    return rc;
}
