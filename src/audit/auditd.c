/*
 * auditd.c - the audit writer process: the only writer of the audit log.
 *
 * Message interface (unchanged): IPC_AUDIT_APPEND with one event (a JSON
 * object, checked against the schema in audit/event.h) -> IPC_AUDIT_ACK
 * with the event's sequence number, sent only once the entry is durable.
 * Events that arrive together from several workers share one fsync
 * (group commit).  Behind it: the hash chain, signed checkpoints (the key
 * holder signs over its own channel), rotation, archival, retention
 * (audit/writer.h) and intrusion detection (audit/detect.h).
 *
 * Queries (R7.5): IPC_AUDIT_QUERY on each worker's query channel is
 * served by a thread of its own, so a slow query never delays an
 * append's fsync and ack.  It reads the log files only -- never the
 * writer's state but one atomic: the last durable sequence number, past
 * which nothing is shown.  Its work per query is bounded (audit/query.h)
 * and the answer says where it stopped.
 */
#include "audit/auditd.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/detect.h"
#include "audit/event.h"
#include "audit/query.h"
#include "audit/writer.h"
#include "common/log.h"
#include "common/util.h"
#include "crypto/keyring.h"
#include "ipc/ipc.h"
#include "keyholder/keyholder.h"
#include "sandbox/sandbox.h"

#define SIGN_TIMEOUT_MS 5000
#define MAX_FDS 64

#define QUERY_SEND_MS 10000     /* a worker takes an answer's pages within this */

static int keyholder_fd = -1;
static int query_fds[MAX_FDS];
static size_t nquery_fds;

void
auditd_set_keyholder_channel(int fd)
{
    keyholder_fd = fd;
}

void
auditd_set_query_channels(const int *fds, size_t n)
{
    nquery_fds = n < MAX_FDS ? n : MAX_FDS;
    memcpy(query_fds, fds, nquery_fds * sizeof(fds[0]));
}

/* The query thread (R7.5).  It shares only `durable` with the writer. */
struct qsrv {
    const char       *dir;
    unsigned          office_start, office_end;
    int               wake;          /* eventfd: time to stop */
    atomic_bool       stop;
    _Atomic uint64_t  durable;       /* last sequence number made durable */
    pthread_t         th;
    bool              running;
    uint8_t          *buf, *page;    /* IPC_MAX_PAYLOAD each */
};

struct pending {
    int      fd;
    uint32_t id;
    uint64_t seq;
    json_t  *ev;
};

struct auditd {
    struct audit_writer *w;
    struct ipc_chan      kh;
    struct detect       *det;
    struct notifier     *notify;
    struct pending       p[MAX_FDS];
    size_t               np;
    bool                 began;
    bool                 pull_due;   /* a sign call may have eaten a key-event hint */
    struct qsrv          qs;
};

static void
reply_error(int fd, uint32_t id, const char *reason)
{
    if (ipc_send(fd, IPC_ERROR, id, 0, reason, strlen(reason)) != 0)
        log_debug("ipc_send_failed", "audit: %s", strerror(errno));
}

/* The signer: one IPC_AUDIT_SIGN round trip to the key holder (R7.2). */
static int
sign_via_keyholder(void *arg, const uint8_t req[AUDIT_SIGN_REQ_LEN], uint8_t sig[AUDIT_SIG_LEN])
{
    struct auditd *a = arg;
    struct ipc_chan *c = &a->kh;
    struct ipc_hdr h;
    uint8_t buf[128];

    /* ipc_call skips messages that are not its reply, such as an
     * IPC_KEY_EVENTS_PENDING hint: pull after every call (R7.7). */
    a->pull_due = true;
    if (ipc_call(c, IPC_AUDIT_SIGN, req, AUDIT_SIGN_REQ_LEN, &h, buf, sizeof(buf),
                 SIGN_TIMEOUT_MS) != 0 || h.type != IPC_AUDIT_SIGNATURE ||
        h.len != AUDIT_SIG_LEN)
        return -1;
    memcpy(sig, buf, AUDIT_SIG_LEN);
    return 0;
}

/* Append an event the writer itself makes (start, stop, alerts). */
static int
own_event(struct auditd *a, json_t *ev)
{
    uint64_t seq;
    char err[64];
    int rc;

    if (ev == NULL)
        return -1;
    if (!a->began) {
        if (audit_writer_begin(a->w) != 0) {
            json_decref(ev);
            return -1;
        }
        a->began = true;
    }
    rc = audit_writer_append(a->w, ev, &seq, err, sizeof(err));
    json_decref(ev);
    return rc == 0 ? 0 : -1;
}

static int
commit(struct auditd *a)
{
    int rc = 0;

    if (a->began)
        rc = audit_writer_commit(a->w);
    a->began = false;
    /* Queries see entries up to here: durable, and so acknowledged. */
    if (rc == 0)
        atomic_store(&a->qs.durable, audit_writer_seq(a->w));
    return rc;
}

/* One append request: validate and write; the ack waits for the commit. */
static int
on_append(struct auditd *a, int fd, const struct ipc_hdr *h, const uint8_t *payload)
{
    json_t *ev = json_loadb((const char *)payload, h->len, JSON_REJECT_DUPLICATES, NULL);
    char err[64];
    uint64_t seq;
    int rc;

    if (!json_is_object(ev) || a->np >= MAX_FDS) {
        json_decref(ev);
        log_warn("ipc_refused", "audit event is not a JSON object");
        reply_error(fd, h->id, "malformed_event");
        return 0;
    }
    if (!a->began) {
        if (audit_writer_begin(a->w) != 0) {
            json_decref(ev);
            reply_error(fd, h->id, "audit_unavailable");
            return -1;
        }
        a->began = true;
    }
    rc = audit_writer_append(a->w, ev, &seq, err, sizeof(err));
    if (rc == -2) {
        /* R7.1: outside the schema (unknown member, clear personal data). */
        json_decref(ev);
        log_warn("ipc_refused", "audit event refused: %s", err);
        reply_error(fd, h->id, err);
        return 0;
    }
    if (rc != 0) {
        json_decref(ev);
        log_error("audit_write_failed", "cannot write the audit log: %s", strerror(errno));
        reply_error(fd, h->id, "audit_unavailable");
        return -1;
    }
    a->p[a->np++] = (struct pending){ fd, h->id, seq, ev };
    return 0;
}

static void
on_block_query(struct auditd *a, int fd, const struct ipc_hdr *h, const uint8_t *payload)
{
    char src[47];
    uint8_t out[5] = { 0 };
    unsigned left = 0;

    memcpy(src, payload, h->len);
    src[h->len] = '\0';
    if (a->det != NULL && detect_blocked(a->det, src, audit_now_us(), &left))
        out[0] = 1;
    for (int i = 0; i < 4; i++)
        out[1 + i] = (uint8_t)(left >> (24 - 8 * i));
    if (ipc_send(fd, IPC_BLOCK_STATUS, h->id, 0, out, sizeof(out)) != 0)
        log_debug("ipc_send_failed", "audit: %s", strerror(errno));
}

/* ---- key operations from the key holder (R7.7) ---------------------------- */

static const char *const kh_why[KH_WHY_END] = {
    [KH_WHY_NONE] = NULL, [KH_WHY_NOT_FOUND] = "no_such_key",
    [KH_WHY_CORRUPT] = "keystore_corrupt", [KH_WHY_PERMISSION] = "permission_denied",
    [KH_WHY_EXISTS] = "already_exists", [KH_WHY_INVALID] = "invalid_request",
    [KH_WHY_ERROR] = "error",
};

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One 22-byte record (keyholder/keyholder.h) into an event.  Every byte
 * is checked: the key holder's messages are as hostile as anyone's.
 * NULL for a malformed record. */
static json_t *
key_event(const uint8_t *r)
{
    unsigned op = r[0], ok = r[1], why = r[2], ctx = r[3];
    unsigned worker = (unsigned)r[4] << 8 | r[5];
    uint32_t version = get32(r + 12), kek = get32(r + 16);
    bool grant = op == KEYRING_OP_GRANT_DATA || op == KEYRING_OP_GRANT_INDEX;
    bool has_tenant = false;
    char action[64], tenant[7];
    json_t *ev;

    if (op < KEYRING_OP_OPEN || op > KEYRING_OP_GRANT_INDEX || ok > 1 ||
        why >= KH_WHY_END || ctx >= KH_CTX_END || (ok == 1) != (why == KH_WHY_NONE) ||
        (grant && ok))
        return NULL;
    for (int i = 0; i < 6; i++)
        if (r[6 + i] != 0)
            has_tenant = true;
    if (has_tenant) {
        for (int i = 0; i < 6; i++) {
            if (r[6 + i] < '0' || r[6 + i] > '9')
                return NULL;
            tenant[i] = (char)r[6 + i];
        }
        tenant[6] = '\0';
    }
    if (op == KEYRING_OP_OPEN)
        snprintf(action, sizeof(action), "key.%s",
                 ctx == KH_CTX_RELOAD ? "keystore_reload" : "keystore_open");
    else if (grant)
        snprintf(action, sizeof(action), "key.grant_refused");
    else
        snprintf(action, sizeof(action), "key.%s", keyring_op_name((enum keyring_op)op));
    ev = audit_event_new(action, ok ? AUDIT_SUCCESS : grant ? AUDIT_REFUSED : AUDIT_FAILURE);
    if (ev == NULL ||
        (has_tenant && audit_event_set(ev, AUDIT_F_TENANT, tenant) != 0) ||
        (kh_why[why] != NULL && audit_event_set(ev, AUDIT_F_REASON, kh_why[why]) != 0) ||
        audit_event_info_str(ev, "process", "keyholder") != 0 ||
        (grant && audit_event_info_str(ev, "kind", op == KEYRING_OP_GRANT_DATA ?
                                       "data" : "index") != 0) ||
        (worker > 0 && audit_event_info_int(ev, "worker", (int64_t)worker - 1) != 0) ||
        (version > 0 && audit_event_info_int(ev, "key_version", version) != 0) ||
        (kek > 0 && audit_event_info_int(ev, "kek_version", kek) != 0)) {
        json_decref(ev);
        return NULL;
    }
    return ev;
}

/* Drain the key holder's channel (hints, late replies to timed-out sign
 * calls) without blocking; true if anything was there. */
static bool
drain_keyholder(struct auditd *a, uint8_t *buf)
{
    struct pollfd p = { .fd = a->kh.fd, .events = POLLIN };
    struct ipc_hdr h;
    bool any = false;

    while (poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0) {
        int r = ipc_recv(a->kh.fd, &h, buf, IPC_MAX_PAYLOAD);
        if (r == 0 || (r < 0 && errno != EBADMSG))
            break;
        if (r < 0)
            log_warn("ipc_refused", "audit: malformed message from the key holder");
        any = true;
    }
    return any;
}

/* Pull the key holder's queued key events and append them to the batch
 * being written (they share its fsync).  0, or -1 on a write failure. */
static int
pull_key_events(struct auditd *a, uint8_t *buf)
{
    a->pull_due = false;
    /* Bounded: at most 16 replies per round; IPC_F_MORE brings us back. */
    for (int round = 0; round < 16; round++) {
        struct ipc_hdr h;
        size_t n;
        uint32_t dropped;

        if (ipc_call(&a->kh, IPC_KEY_EVENTS_PULL, NULL, 0, &h, buf, IPC_MAX_PAYLOAD,
                     SIGN_TIMEOUT_MS) != 0) {
            /* They stay queued; the next hint or checkpoint brings us back. */
            log_warn("key_events_unavailable", "audit: cannot pull key events: %s",
                     strerror(errno));
            return 0;
        }
        if (h.type != IPC_KEY_EVENTS || h.len < KEYHOLDER_EVENTS_HDR ||
            (h.len - KEYHOLDER_EVENTS_HDR) % KEYHOLDER_EVENT_LEN != 0) {
            log_warn("ipc_refused", "audit: malformed key events (%s, %u bytes)",
                     ipc_type_name(h.type), (unsigned)h.len);
            return 0;
        }
        n = (h.len - KEYHOLDER_EVENTS_HDR) / KEYHOLDER_EVENT_LEN;
        dropped = get32(buf);
        if (dropped > 0) {
            json_t *ev = audit_event_new("key.events_dropped", AUDIT_FAILURE);
            if (ev == NULL || audit_event_info_int(ev, "count", dropped) != 0 ||
                audit_event_info_str(ev, "process", "keyholder") != 0) {
                json_decref(ev);
                ev = NULL;
            }
            if (own_event(a, ev) != 0)
                return -1;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *ev = key_event(buf + KEYHOLDER_EVENTS_HDR + i * KEYHOLDER_EVENT_LEN);
            if (ev == NULL) {
                log_warn("ipc_refused", "audit: malformed key event record");
                continue;
            }
            if (own_event(a, ev) != 0)
                return -1;
        }
        if ((h.flags & IPC_F_MORE) == 0)
            return 0;
    }
    a->pull_due = true;
    return 0;
}

/* Serve one message; returns 0 go on, 1 shutdown, -1 fail (stop). */
static int
serve_one(struct auditd *a, int fd, bool from_parent, uint8_t *buf)
{
    struct ipc_hdr h;
    int r = ipc_recv(fd, &h, buf, IPC_MAX_PAYLOAD);

    if (r == 0)
        return from_parent ? 1 : 2;
    if (r < 0) {
        if (errno != EBADMSG)
            return from_parent ? 1 : 2;
        log_event(LOG_LVL_WARN, "ipc_refused",
                  json_pack("{s:s,s:b}", "process", "audit", "from_parent", from_parent));
        return 0;
    }
    if (h.type == IPC_SHUTDOWN && from_parent)
        return 1;
    if (h.type == IPC_PING) {
        if (ipc_send(fd, IPC_PONG, h.id, 0, buf, h.len) != 0)
            return 2;
        return 0;
    }
    if (h.type == IPC_AUDIT_APPEND)
        return on_append(a, fd, &h, buf);
    if (h.type == IPC_BLOCK_QUERY && !from_parent) {
        on_block_query(a, fd, &h, buf);
        return 0;
    }
    log_warn("ipc_refused", "audit: unexpected %s message", ipc_type_name(h.type));
    reply_error(fd, h.id, "unsupported");
    return 0;
}

/* After a commit: ack everything pending, then run the detection rules
 * on those (now durable) events; alerts are events too (R7.4). */
static int
finish_batch(struct auditd *a, bool ok)
{
    json_t *alerts = json_array();
    int rc = 0;

    for (size_t i = 0; i < a->np; i++) {
        struct pending *p = &a->p[i];
        if (ok) {
            uint8_t ack[8];
            for (int j = 0; j < 8; j++)
                ack[j] = (uint8_t)(p->seq >> (56 - 8 * j));
            if (ipc_send(p->fd, IPC_AUDIT_ACK, p->id, 0, ack, sizeof(ack)) != 0)
                log_debug("ipc_send_failed", "audit: %s", strerror(errno));
            if (a->det != NULL && alerts != NULL)
                detect_feed(a->det, p->ev, audit_now_us(), alerts);
        } else {
            reply_error(p->fd, p->id, "audit_unavailable");
        }
        json_decref(p->ev);
    }
    a->np = 0;
    if (ok && json_array_size(alerts) > 0) {
        size_t i;
        json_t *al;
        json_array_foreach(alerts, i, al) {
            if (own_event(a, json_incref(al)) != 0)
                rc = -1;
            notifier_post(a->notify, al);
        }
        if (commit(a) != 0)
            rc = -1;
    }
    json_decref(alerts);
    return rc;
}

static int
loop(struct auditd *a, const int *fds, size_t n)
{
    struct pollfd pfd[MAX_FDS + 1];
    uint8_t *buf = malloc(IPC_MAX_PAYLOAD);
    size_t np = n;
    int rc = 1;

    if (buf == NULL || n > MAX_FDS)
        goto out;
    for (size_t i = 0; i < n; i++)
        pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
    if (keyholder_fd >= 0)        /* last: key-event hints (R7.7) */
        pfd[np++] = (struct pollfd){ .fd = keyholder_fd, .events = POLLIN };
    for (;;) {
        int timeout = audit_writer_tick_ms(a->w);
        bool stop = false, failed = false;

        if (timeout < 0 || timeout > 60000)
            timeout = 60000;          /* daily rotation, archival, retention */
        if (a->pull_due)
            timeout = 0;
        int r = poll(pfd, (nfds_t)np, timeout);
        if (r < 0 && errno != EINTR)
            goto out;
        if (r <= 0 && !a->pull_due) {
            if (audit_writer_tick(a->w) != 0)
                goto out;
            atomic_store(&a->qs.durable, audit_writer_seq(a->w));
            continue;
        }
        if (r > 0 && np > n && pfd[n].fd >= 0 && pfd[n].revents != 0) {
            if (!drain_keyholder(a, buf) && (pfd[n].revents & (POLLHUP | POLLERR)) != 0)
                pfd[n].fd = -1;        /* the key holder is gone */
            else
                a->pull_due = true;
        }
        if (np == n || pfd[n].fd < 0)
            a->pull_due = false;
        if (a->pull_due && pull_key_events(a, buf) != 0) {
            finish_batch(a, false);
            goto out;
        }
        if (r < 0)
            r = 0;
        /* One message from every ready channel, then one fsync for all. */
        for (size_t i = 0; i < n && r > 0; i++) {
            if (pfd[i].fd < 0 || pfd[i].revents == 0)
                continue;
            int s = serve_one(a, pfd[i].fd, i == 0, buf);
            if (s == 1)
                stop = true;
            else if (s == 2)
                pfd[i].fd = -1;        /* that worker is gone */
            else if (s < 0) {
                failed = true;
                break;
            }
        }
        if (failed || commit(a) != 0) {
            /* Fail closed: nothing pending is acked; stop. */
            finish_batch(a, false);
            goto out;
        }
        if (finish_batch(a, true) != 0)
            goto out;
        if (stop) {
            rc = 0;
            goto out;
        }
    }
out:
    free(buf);
    return rc;
}

/* ---- queries from the auditors' API (R7.5), in a thread of their own ------- */

/* Send, waiting (bounded) while the worker's end is full: the channel is
 * non-blocking here, so a worker that stops reading cannot hold the
 * thread, and the stop flag is looked at every 200 ms. */
static int
send_wait(struct qsrv *s, int fd, uint16_t type, uint32_t id, uint32_t flags,
          const void *p, size_t len, int64_t deadline)
{
    for (;;) {
        int64_t left;
        struct pollfd pf = { .fd = fd, .events = POLLOUT };

        if (ipc_send(fd, type, id, flags, p, len) == 0)
            return 0;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
        left = deadline - audit_mono_ms();
        if (left <= 0 || atomic_load(&s->stop)) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (poll(&pf, 1, left > 200 ? 200 : (int)left) < 0 && errno != EINTR)
            return -1;
    }
}

static void
query_refuse(struct qsrv *s, int fd, uint32_t id, const char *reason)
{
    if (send_wait(s, fd, IPC_ERROR, id, 0, reason, strlen(reason),
                  audit_mono_ms() + QUERY_SEND_MS) != 0)
        log_debug("ipc_send_failed", "audit query: %s", strerror(errno));
}

/* One list of an answer as IPC_AUDIT_ROWS pages {"part":P,"rows":[...]},
 * each within IPC_MAX_PAYLOAD, all flagged IPC_F_MORE (the result page
 * comes last).  A row too large for any page (none the writer makes is)
 * is replaced by {"seq":N,"omitted":"too_large"}. */
static int
send_part(struct qsrv *s, int fd, uint32_t id, const char *part, json_t *rows, int64_t deadline)
{
    char *page = (char *)s->page;
    int head = snprintf(page, IPC_MAX_PAYLOAD, "{\"part\":\"%s\",\"rows\":[", part);
    size_t len = (size_t)head, count = 0, i;
    json_t *row;

    json_array_foreach(rows, i, row) {
        char *t = json_dumps(row, JSON_COMPACT);
        size_t tl = t != NULL ? strlen(t) : 0;
        if (t != NULL && (size_t)head + tl + 2 > IPC_MAX_PAYLOAD) {
            json_t *stub = json_pack("{s:O,s:s}", "seq", json_object_get(row, "seq"),
                                     "omitted", "too_large");
            free(t);
            t = stub != NULL ? json_dumps(stub, JSON_COMPACT) : NULL;
            tl = t != NULL ? strlen(t) : 0;
            json_decref(stub);
        }
        if (t == NULL)
            return -1;
        if (len + 1 + tl + 2 > IPC_MAX_PAYLOAD) {
            memcpy(page + len, "]}", 2);
            if (send_wait(s, fd, IPC_AUDIT_ROWS, id, IPC_F_MORE, page, len + 2, deadline) != 0) {
                free(t);
                return -1;
            }
            len = (size_t)head;
            count = 0;
        }
        if (count++ > 0)
            page[len++] = ',';
        memcpy(page + len, t, tl);
        len += tl;
        free(t);
    }
    if (count == 0)
        return 0;
    memcpy(page + len, "]}", 2);
    return send_wait(s, fd, IPC_AUDIT_ROWS, id, IPC_F_MORE, page, len + 2, deadline);
}

/* The answer: every list of `parts` taken out of result and paged, then
 * {"result":{...}} without IPC_F_MORE.  Steals result. */
static int
send_answer(struct qsrv *s, int fd, uint32_t id, json_t *result, const char *const *parts)
{
    int64_t deadline = audit_mono_ms() + QUERY_SEND_MS;
    json_t *wrap;
    char *t = NULL;
    int rc = -1;

    for (const char *const *p = parts; *p != NULL; p++) {
        json_t *rows = json_incref(json_object_get(result, *p));
        json_object_del(result, *p);
        if (send_part(s, fd, id, *p, rows, deadline) != 0) {
            json_decref(rows);
            goto out;
        }
        json_decref(rows);
    }
    wrap = json_pack("{s:O}", "result", result);
    t = wrap != NULL ? json_dumps(wrap, JSON_COMPACT) : NULL;
    json_decref(wrap);
    if (t != NULL && strlen(t) <= IPC_MAX_PAYLOAD)
        rc = send_wait(s, fd, IPC_AUDIT_ROWS, id, 0, t, strlen(t), deadline);
out:
    free(t);
    json_decref(result);
    return rc;
}

/* A query as the worker sent it: a hostile JSON object of known members. */
struct qreq {
    bool               review;
    struct audit_query q;
    char               tenant[8], actor[72], action[72], object[88], outcome[8];
};

static int
query_str(json_t *v, enum audit_filter f, char *out, size_t outsz, const char **dst)
{
    const char *s = json_string_value(v);

    if (s == NULL || strlen(s) >= outsz || audit_filter_check(f, s) != NULL)
        return -1;
    snprintf(out, outsz, "%s", s);
    *dst = out;
    return 0;
}

static int
query_int(json_t *v, json_int_t min, json_int_t max, json_int_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return -1;
    *out = json_integer_value(v);
    return 0;
}

static int
query_member(struct qreq *r, const char *k, json_t *v)
{
    struct audit_query *q = &r->q;
    const char *kind = json_string_value(v);
    json_int_t n;

    if (strcmp(k, "kind") == 0 && kind != NULL &&
        (strcmp(kind, "events") == 0 || strcmp(kind, "review") == 0)) {
        r->review = strcmp(kind, "review") == 0;
        return 0;
    }
    if (strcmp(k, "tenant") == 0)
        return query_str(v, AUDIT_FILTER_TENANT, r->tenant, sizeof(r->tenant), &q->tenant);
    if (strcmp(k, "actor") == 0)
        return query_str(v, AUDIT_FILTER_ACTOR, r->actor, sizeof(r->actor), &q->actor);
    if (strcmp(k, "action") == 0)
        return query_str(v, AUDIT_FILTER_ACTION, r->action, sizeof(r->action), &q->action);
    if (strcmp(k, "object") == 0)
        return query_str(v, AUDIT_FILTER_OBJECT, r->object, sizeof(r->object), &q->object);
    if (strcmp(k, "outcome") == 0)
        return query_str(v, AUDIT_FILTER_OUTCOME, r->outcome, sizeof(r->outcome),
                         &q->outcome);
    if ((strcmp(k, "from_us") == 0 || strcmp(k, "to_us") == 0) &&
        query_int(v, 0, INT64_MAX, &n) == 0) {
        if (k[0] == 'f')
            q->has_since = true, q->since_us = n;
        else
            q->has_until = true, q->until_us = n;
        return 0;
    }
    if (strcmp(k, "after_seq") == 0 && query_int(v, 0, INT64_MAX, &n) == 0) {
        q->after_seq = (uint64_t)n;
        return 0;
    }
    if (strcmp(k, "limit") == 0 && query_int(v, 1, AUDIT_QUERY_MAX_ROWS, &n) == 0) {
        q->limit = (size_t)n;
        return 0;
    }
    return -1;
}

/* The tenant is required: no query reaches beyond one tenant (R1.1). */
static int
query_parse(const uint8_t *payload, size_t len, struct qreq *r)
{
    json_t *o = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, NULL);
    const char *k;
    json_t *v;
    int rc = json_is_object(o) && json_object_get(o, "kind") != NULL ? 0 : -1;

    memset(r, 0, sizeof(*r));
    r->q.limit = 100;
    json_object_foreach(o, k, v)
        if (rc == 0 && query_member(r, k, v) != 0)
            rc = -1;
    json_decref(o);
    if (r->q.tenant == NULL || (r->review && r->q.actor == NULL) ||
        (r->review && (r->q.action || r->q.object || r->q.outcome || r->q.after_seq)))
        rc = -1;
    return rc;
}

/* What the answer says of its bounds (R7.5). */
static json_t *
progress_json(const struct audit_progress *p, uint64_t through, size_t rows_max, int64_t ms)
{
    return json_pack("{s:b,s:o,s:I,s:I,s:s?,s:{s:I,s:I,s:I}}",
                     "complete", p->complete,
                     "next_after_seq", p->complete ? json_null()
                                                   : json_integer((json_int_t)p->last_seq),
                     "scanned", (json_int_t)p->scanned,
                     "through_seq", (json_int_t)through,
                     "stopped_by", p->stopped_by,
                     "bounds", "max_rows", (json_int_t)rows_max,
                     "max_bytes", (json_int_t)AUDIT_QUERY_MAX_BYTES, "time_ms", (json_int_t)ms);
}

/* records {id: n} travels as rows [{"id","count"}] (an object may be
 * larger than a page); the worker turns it back. */
static json_t *
records_rows(json_t *records)
{
    json_t *rows = json_array();
    const char *id;
    json_t *n;

    json_object_foreach(records, id, n)
        if (rows != NULL)
            json_array_append_new(rows, json_pack("{s:s,s:O}", "id", id, "count", n));
    return rows;
}

static void
query_answer(struct qsrv *s, int fd, const struct ipc_hdr *h)
{
    static const char *const ev_parts[] = { "events", NULL };
    static const char *const rv_parts[] = { "records", "off_hours_entries", "failure_entries",
                                            "refusal_entries", NULL };
    struct qreq r;
    struct audit_progress p;
    struct audit_bounds b = { AUDIT_QUERY_MAX_BYTES, 0, &s->stop };
    int64_t t0 = audit_mono_ms(), ms;
    json_t *result = NULL, *rows = NULL;
    size_t nrows = 0;

    if (query_parse(s->buf, h->len, &r) != 0) {
        log_warn("ipc_refused", "audit: malformed query");
        query_refuse(s, fd, h->id, "malformed_query");
        return;
    }
    /* Only what is durable, so never an entry a crash could take back. */
    r.q.max_seq = atomic_load(&s->durable);
    ms = r.review ? AUDIT_QUERY_REVIEW_MS : AUDIT_QUERY_EVENTS_MS;
    b.deadline_ms = t0 + ms;
    if (!r.review && audit_query_page(s->dir, &r.q, &b, &rows, &p) == 0) {
        nrows = json_array_size(rows);
        result = progress_json(&p, r.q.max_seq, r.q.limit, ms);
        if (result != NULL && json_object_set_new(result, "events", rows) != 0) {
            json_decref(result);
            result = NULL;
        }
    } else if (r.review && audit_review_page(s->dir, r.q.actor, &r.q, s->office_start,
                                             s->office_end, &b, &rows, &p) == 0) {
        result = progress_json(&p, r.q.max_seq, AUDIT_REVIEW_MAX_ITEMS, ms);
        if (result != NULL && json_object_update(result, rows) == 0)
            json_object_set_new(result, "records", records_rows(json_object_get(rows,
                                                                                 "records")));
        json_decref(rows);
    }
    if (result == NULL) {
        log_error("audit_query_failed", "cannot read the audit log: %s", strerror(errno));
        query_refuse(s, fd, h->id, "query_failed");
        return;
    }
    log_event(LOG_LVL_INFO, "audit_query",
              json_pack("{s:s,s:I,s:I,s:I,s:s?}", "kind", r.review ? "review" : "events",
                        "rows", (json_int_t)nrows, "scanned", (json_int_t)p.scanned,
                        "ms", (json_int_t)(audit_mono_ms() - t0), "stopped_by", p.stopped_by));
    if (send_answer(s, fd, h->id, result, r.review ? rv_parts : ev_parts) != 0)
        log_warn("audit_query_unsent", "audit: the worker did not take the answer: %s",
                 strerror(errno));
}

/* One message on a query channel; -1 when the worker is gone. */
static int
query_one(struct qsrv *s, int fd)
{
    struct ipc_hdr h;
    int r = ipc_recv(fd, &h, s->buf, IPC_MAX_PAYLOAD);

    if (r == 0)
        return -1;
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno != EBADMSG)
            return -1;
        log_warn("ipc_refused", "audit: malformed message on a query channel");
        return 0;
    }
    if (h.type == IPC_PING) {
        if (send_wait(s, fd, IPC_PONG, h.id, 0, s->buf, h.len,
                      audit_mono_ms() + QUERY_SEND_MS) != 0)
            return -1;
        return 0;
    }
    if (h.type != IPC_AUDIT_QUERY) {
        log_warn("ipc_refused", "audit: unexpected %s message on a query channel",
                 ipc_type_name(h.type));
        query_refuse(s, fd, h.id, "unsupported");
        return 0;
    }
    query_answer(s, fd, &h);
    return 0;
}

static void *
query_main(void *arg)
{
    struct qsrv *s = arg;
    struct pollfd pfd[MAX_FDS + 1];
    size_t n = nquery_fds;

    for (size_t i = 0; i < n; i++)
        pfd[i] = (struct pollfd){ .fd = query_fds[i], .events = POLLIN };
    pfd[n] = (struct pollfd){ .fd = s->wake, .events = POLLIN };
    while (!atomic_load(&s->stop)) {
        if (poll(pfd, (nfds_t)(n + 1), -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("audit_query_failed", "poll: %s", strerror(errno));
            break;
        }
        for (size_t i = 0; i < n && !atomic_load(&s->stop); i++)
            if (pfd[i].fd >= 0 && pfd[i].revents != 0 && query_one(s, pfd[i].fd) != 0)
                pfd[i].fd = -1;               /* that worker is gone */
    }
    return NULL;
}

static int
query_start(struct qsrv *s, const struct mamori_config *cfg)
{
    s->dir = cfg->audit_dir;
    s->office_start = cfg->audit_office_start;
    s->office_end = cfg->audit_office_end;
    s->wake = -1;
    atomic_init(&s->stop, false);
    if (nquery_fds == 0)
        return 0;
    for (size_t i = 0; i < nquery_fds; i++) {
        int fl = fcntl(query_fds[i], F_GETFL);
        if (fl < 0 || fcntl(query_fds[i], F_SETFL, fl | O_NONBLOCK) != 0)
            return -1;
    }
    s->buf = malloc(IPC_MAX_PAYLOAD);
    s->page = malloc(IPC_MAX_PAYLOAD);
    s->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->buf == NULL || s->page == NULL || s->wake < 0 ||
        pthread_create(&s->th, NULL, query_main, s) != 0)
        return -1;
    s->running = true;
    return 0;
}

/* Ask the thread to stop (a query in progress gives up at its next look
 * at the clock) and wait for it. */
static void
query_stop(struct qsrv *s)
{
    uint64_t one = 1;

    if (s->running) {
        atomic_store(&s->stop, true);
        if (write(s->wake, &one, sizeof(one)) != (ssize_t)sizeof(one))
            log_warn("audit_query_stop", "cannot wake the query thread");
        pthread_join(s->th, NULL);
        s->running = false;
    }
    if (s->wake >= 0)
        close(s->wake);
    s->wake = -1;
    free(s->buf);
    free(s->page);
    s->buf = s->page = NULL;
}

static int
start_notifier(const struct mamori_config *cfg, struct auditd *a, unsigned *port)
{
    const char *u = cfg->audit_webhook;
    const char *hp;
    char *end;
    unsigned long p;

    *port = 0;
    if (u[0] == '\0')
        return 0;
    /* Landlock allows one TCP port: the webhook's (explicit or default). */
    hp = strstr(u, "://") + 3;
    hp += strcspn(hp, ":/");
    p = strncmp(u, "https", 5) == 0 ? 443 : 80;
    if (*hp == ':') {
        p = strtoul(hp + 1, &end, 10);
        if (p == 0 || p > 65535)
            return -1;
    }
    *port = (unsigned)p;
    return notifier_start(u, 8, 1000, &a->notify);
}

int
auditd_main(const struct mamori_config *cfg, const int *fds, size_t n)
{
    struct auditd a;
    struct audit_writer_opts wo = {
        .dir = cfg->audit_dir,
        .ckpt_entries = cfg->audit_checkpoint_entries,
        .ckpt_seconds = cfg->audit_checkpoint_seconds,
        .segment_max_bytes = (uint64_t)cfg->audit_segment_max_mb * 1024 * 1024,
        .archive_days = cfg->audit_archive_days,
        .retention_days = cfg->audit_retention_days,
    };
    struct detect_cfg dc = {
        cfg->detect_login_failures, cfg->detect_source_failures, cfg->detect_window,
        cfg->detect_distinct_residents, cfg->detect_read_window, cfg->detect_block_seconds,
        cfg->audit_office_start, cfg->audit_office_end,
    };
    const char *paths[] = { cfg->audit_dir, NULL };
    const char *ca_paths[] = { "/etc/ssl/certs", "/usr/share/ca-certificates", NULL };
    struct sandbox_policy pol = {
        .name = "audit",
        .read_paths = NULL,
        .write_paths = paths,
        .syscalls = SANDBOX_SYS_FILES |
                    (cfg->log_target == LOG_TO_SYSLOG ? SANDBOX_SYS_SYSLOG : 0) |
                    /* R7.5: queries run in a thread of their own */
                    (nquery_fds > 0 ? SANDBOX_SYS_THREADS : 0),
    };
    char err[512];
    uint64_t cut = 0;
    unsigned port;
    int rc = 1;

    memset(&a, 0, sizeof(a));
    a.qs.wake = -1;
    log_setup("audit", cfg->log_target, cfg->log_level);
    if (sodium_init() < 0 || sandbox_no_core_dumps() != 0)
        return 1;
    if (keyholder_fd >= 0) {
        ipc_chan_init(&a.kh, keyholder_fd);
        wo.signer.sign = sign_via_keyholder;
        wo.signer.arg = &a;
    } else {
        log_warn("audit_unsigned", "no key holder channel: checkpoints are not signed");
    }
    a.det = detect_new(&dc);
    if (a.det == NULL || start_notifier(cfg, &a, &port) != 0) {
        log_error("audit_init_failed", "cannot start intrusion detection / the webhook");
        goto out;
    }
    if (a.notify != NULL) {
        /* R7.4: the webhook needs one outgoing TCP port (Landlock) and
         * stream sockets (seccomp); https also reads the CA bundle. */
        pol.syscalls |= SANDBOX_SYS_CONNECT | SANDBOX_SYS_THREADS;
        pol.connect_tcp_port = port;
        pol.read_paths = ca_paths;
    }
    /* Files are opened and created as the service user, inside the sandbox. */
    if (sandbox_drop_privileges(cfg->user) != 0 || sandbox_enter(&pol) != 0)
        goto out;
    if (audit_writer_open(&wo, &a.w, &cut, err, sizeof(err)) != 0) {
        log_error("audit_init_failed", "%s", err);
        goto out;
    }
    /* R7.6, R7.7: the start is an event, with the clock source; a torn
     * tail cut on open is recorded too. */
    {
        json_t *ev = audit_event_new("audit.start", AUDIT_SUCCESS);
        if (ev == NULL || audit_event_info_str(ev, "clock", "clock_realtime") != 0 ||
            audit_event_info_int(ev, "pid", (int64_t)getpid()) != 0 ||
            audit_event_info_str(ev, "signing", keyholder_fd >= 0 ? "keyholder" : "none") != 0) {
            json_decref(ev);
            goto out;
        }
        if (cut > 0) {
            json_t *t = audit_event_new("audit.tail_truncated", AUDIT_SUCCESS);
            if (t == NULL || audit_event_info_int(t, "bytes", (int64_t)cut) != 0 ||
                own_event(&a, t) != 0) {
                json_decref(ev);
                goto out;
            }
        }
        if (own_event(&a, ev) != 0 || commit(&a) != 0) {
            log_error("audit_init_failed", "cannot write to the audit log");
            goto out;
        }
    }
    /* Ready means queries are served too (R7.5). */
    atomic_store(&a.qs.durable, audit_writer_seq(a.w));
    if (query_start(&a.qs, cfg) != 0) {
        log_error("audit_init_failed", "cannot start the query thread: %s", strerror(errno));
        goto out;
    }
    if (ipc_send(fds[0], IPC_READY, 0, 0, NULL, 0) != 0)
        goto out;
    rc = loop(&a, fds, n);
    if (rc == 0) {
        /* R7.7: key events still queued in the key holder, then the stop
         * is an event; sign the final head. */
        uint8_t *kbuf = keyholder_fd >= 0 ? malloc(IPC_MAX_PAYLOAD) : NULL;
        if (kbuf != NULL && pull_key_events(&a, kbuf) != 0)
            rc = 1;
        free(kbuf);
        if (rc != 0 ||
            own_event(&a, audit_event_new("audit.stop", AUDIT_SUCCESS)) != 0 ||
            commit(&a) != 0 || audit_writer_checkpoint(a.w) != 0)
            rc = 1;
    }
out:
    query_stop(&a.qs);
    notifier_stop(a.notify, 3000);
    detect_free(a.det);
    audit_writer_close(a.w);
    if (keyholder_fd >= 0)
        ipc_chan_destroy(&a.kh);
    return rc;
}
