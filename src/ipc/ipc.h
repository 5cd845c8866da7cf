/*
 * ipc.h - framed, size-checked messages between mamorid's processes.
 *
 * Processes talk over SOCK_SEQPACKET socketpairs, so the kernel keeps
 * message boundaries; every message is a fixed header plus a payload.
 * A receiver treats every message as hostile (like OpenBSD's imsg): the
 * header's magic, type and length must agree with what arrived and with
 * the per-type maximum, or the message is refused with EBADMSG and must
 * be logged and dropped, never acted on.
 */
#ifndef MAMORI_IPC_H
#define MAMORI_IPC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define IPC_MAGIC        0x4d4du      /* "MM" */
#define IPC_MAX_PAYLOAD  (64u * 1024u)

enum ipc_type {
    IPC_PING = 1,         /* any -> any: payload ignored (<= 64 bytes) */
    IPC_PONG,             /* reply to PING, echoes payload */
    IPC_ERROR,            /* reply: request refused; payload = reason code (ASCII) */
    IPC_SHUTDOWN,         /* parent -> child: drain and exit; empty */
    IPC_READY,            /* child -> parent: initialised and sandboxed; empty */
    IPC_REVOKED_CHUNK,    /* parent -> worker: revocation set, n * 32-byte fingerprints */
    IPC_AUDIT_APPEND,     /* worker -> audit writer: one event, JSON object text */
    IPC_AUDIT_ACK,        /* audit writer -> worker: uint64 sequence, big-endian */
    IPC_REVOKED_INSTALLED,/* worker -> parent: set installed; id echoes the LAST chunk's */
    IPC_KEY_REQUEST,      /* worker -> key holder: kind(1) tenant(6 digits) version(4, BE) */
    IPC_KEY_GRANT,        /* key holder -> worker: one grant (crypto/keyprov.h layout) */
    IPC_KEYS_RELOAD,      /* parent -> key holder: re-read the keystore; empty */
    IPC_AUDIT_SIGN,       /* audit writer -> key holder: head hash(32) seq(8, BE)
                           * time_us(8, BE), exactly 48 bytes (audit/chain.h) */
    IPC_AUDIT_SIGNATURE,  /* key holder -> audit writer: Ed25519 signature, 64 bytes */
    IPC_BLOCK_QUERY,      /* worker -> audit writer: source address text (R7.4) */
    IPC_BLOCK_STATUS,     /* audit writer -> worker: blocked(1) seconds left(4, BE) */
    IPC_KEY_EVENTS_PENDING,/* key holder -> audit writer: key events are queued; empty (R7.7) */
    IPC_KEY_EVENTS_PULL,  /* audit writer -> key holder: send queued key events; empty */
    IPC_KEY_EVENTS,       /* key holder -> audit writer: dropped(4, BE) + n * 22-byte
                           * records (keyholder/keyholder.h); flag IPC_F_MORE */
    IPC_AUDIT_QUERY,      /* worker -> audit writer: one query, JSON object text (R7.5) */
    IPC_AUDIT_ROWS,       /* audit writer -> worker: one page of results, JSON text;
                           * flag IPC_F_MORE while further pages of it follow */
    IPC_TERMINAL_REVOKE,  /* worker -> parent: a terminal was revoked through the API:
                           * its 32-byte certificate fingerprint (R6.2) */
    IPC_TYPE_END          /* not a type: one past the last */
};

/* Flags of IPC_REVOKED_CHUNK: a set may span several messages. */
#define IPC_F_FIRST 0x1u   /* discard what was being assembled, start anew */
#define IPC_F_LAST  0x2u   /* the set is complete: install it */
/* Flag of IPC_KEY_EVENTS: more events are queued, pull again. */
#define IPC_F_MORE  0x1u

struct ipc_hdr {
    uint16_t magic;
    uint16_t type;     /* enum ipc_type */
    uint32_t len;      /* payload bytes following the header */
    uint32_t id;       /* request id, echoed in the reply */
    uint32_t flags;
};

/* Largest payload a message of `type` may carry; 0 for unknown types. */
size_t ipc_max_len(uint16_t type);

/* Short name of a type for logs ("ping", "audit_append", ...). */
const char *ipc_type_name(uint16_t type);

/* Make a connected SOCK_SEQPACKET pair, close-on-exec. */
int ipc_socketpair(int fds[2]) __attribute__((warn_unused_result));

/* Send one message.  Fails with EMSGSIZE if len exceeds ipc_max_len(type). */
int ipc_send(int fd, uint16_t type, uint32_t id, uint32_t flags,
             const void *payload, size_t len) __attribute__((warn_unused_result));

/* Receive one message: header into *hdr, payload into buf (capacity cap,
 * which should be IPC_MAX_PAYLOAD).  Returns 1 for a valid message, 0 when
 * the peer closed, -1 on error: errno EBADMSG means the message was
 * malformed and has been consumed and dropped; the caller logs it and
 * carries on.  Any passed file descriptors are discarded by the kernel. */
int ipc_recv(int fd, struct ipc_hdr *hdr, void *buf, size_t cap)
    __attribute__((warn_unused_result));

/* A request/response channel shared by the threads of one process.  The
 * mutex serialises calls so replies cannot be taken by the wrong thread. */
struct ipc_chan {
    int             fd;
    pthread_mutex_t mu;
    uint32_t        next_id;
};

void ipc_chan_init(struct ipc_chan *c, int fd);
void ipc_chan_destroy(struct ipc_chan *c);

/* Send a request and wait up to timeout_ms for the reply with the same id.
 * The reply header goes to *rhdr and its payload to rbuf (capacity rcap).
 * Returns 0 on a reply (check rhdr->type), -1 on error/timeout. */
int ipc_call(struct ipc_chan *c, uint16_t type, const void *req, size_t len,
             struct ipc_hdr *rhdr, void *rbuf, size_t rcap, int timeout_ms)
    __attribute__((warn_unused_result));

#endif
