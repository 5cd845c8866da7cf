/*
 * auditd.c - the audit writer process (message interface; append-only,
 * fsync'd JSON lines).
 */
#include "audit/auditd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proc/service.h"
#include "sandbox/sandbox.h"

struct auditd {
    int      fd;      /* the log, O_APPEND */
    uint64_t seq;     /* last sequence number written */
};

/* The longest line the writer can produce: one maximal event plus the
 * envelope.  Anything longer at the tail is not ours. */
#define AUDIT_LINE_MAX (IPC_MAX_PAYLOAD + 256)

/* Continue numbering across restarts: the sequence of the last complete
 * line, read as JSON.  A torn or foreign tail is refused (fail closed)
 * rather than guessed at.  Returns 0 with *seq set, or -1. */
static int
last_sequence(int fd, uint64_t *seq)
{
    off_t size = lseek(fd, 0, SEEK_END);
    size_t want = size > (off_t)AUDIT_LINE_MAX ? AUDIT_LINE_MAX : (size_t)size;
    char *tail;
    const char *line;
    json_t *doc;
    ssize_t n;
    int rc = -1;

    *seq = 0;
    if (size == 0)
        return 0;
    tail = malloc(want + 1);
    if (tail == NULL)
        return -1;
    n = pread(fd, tail, want, size - (off_t)want);
    if (n != (ssize_t)want || tail[want - 1] != '\n')
        goto out;                          /* torn last write */
    tail[want - 1] = '\0';
    line = strrchr(tail, '\n');
    if (line != NULL)
        line++;
    else if ((off_t)want == size)
        line = tail;                       /* the file is one line */
    else
        goto out;                          /* a line longer than ours */
    doc = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_integer(json_object_get(doc, "seq")) &&
        json_integer_value(json_object_get(doc, "seq")) > 0) {
        *seq = (uint64_t)json_integer_value(json_object_get(doc, "seq"));
        rc = 0;
    }
    json_decref(doc);
out:
    free(tail);
    return rc;
}

static int
reply_error(int fd, uint32_t id, const char *reason)
{
    if (ipc_send(fd, IPC_ERROR, id, 0, reason, strlen(reason)) != 0)
        log_debug("ipc_send_failed", "audit: %s", strerror(errno));
    return 0;
}

static int
append_event(struct auditd *a, int fd, const struct ipc_hdr *h, const uint8_t *payload)
{
    json_error_t jerr;
    json_t *ev = json_loadb((const char *)payload, h->len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *line;
    char *text;
    uint8_t ack[8];
    int rc;

    if (!json_is_object(ev)) {
        json_decref(ev);
        log_warn("ipc_refused", "audit event is not a JSON object");
        return reply_error(fd, h->id, "malformed_event");
    }
    line = json_pack("{s:I,s:o}", "seq", (json_int_t)(a->seq + 1), "event", ev);
    text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(line);
    if (text == NULL)
        return reply_error(fd, h->id, "internal_error");
    size_t len = strlen(text);
    text[len] = '\n';
    rc = (write(a->fd, text, len + 1) == (ssize_t)(len + 1)) ? fsync(a->fd) : -1;
    free(text);
    if (rc != 0) {
        /* Fail closed: a write that may not be durable is never acked,
         * and the writer stops rather than retry a failed fsync. */
        log_error("audit_write_failed", "cannot write the audit log: %s", strerror(errno));
        reply_error(fd, h->id, "audit_unavailable");
        return -1;
    }
    a->seq++;
    for (int i = 0; i < 8; i++)
        ack[i] = (uint8_t)(a->seq >> (56 - 8 * i));
    if (ipc_send(fd, IPC_AUDIT_ACK, h->id, 0, ack, sizeof(ack)) != 0)
        log_debug("ipc_send_failed", "audit: %s", strerror(errno));
    return 0;
}

static int
auditd_handle(void *arg, int fd, int from_parent, const struct ipc_hdr *h,
              const uint8_t *payload)
{
    (void)from_parent;
    if (h->type == IPC_AUDIT_APPEND)
        return append_event(arg, fd, h, payload);
    log_warn("ipc_refused", "audit: unexpected %s message", ipc_type_name(h->type));
    return reply_error(fd, h->id, "unsupported");
}

int
auditd_main(const struct mamori_config *cfg, const int *fds, size_t n)
{
    struct auditd a = { -1, 0 };
    char path[PATH_MAX];
    const char *paths[] = { cfg->audit_dir, NULL };
    struct sandbox_policy pol = {
        .name = "audit",
        .read_paths = NULL,
        .write_paths = paths,
        .syscalls = SANDBOX_SYS_FILES |
                    (cfg->log_target == LOG_TO_SYSLOG ? SANDBOX_SYS_SYSLOG : 0),
    };
    int rc = 1;

    log_setup("audit", cfg->log_target, cfg->log_level);
    if (sandbox_no_core_dumps() != 0 ||
        util_path_join(path, sizeof(path), cfg->audit_dir, "audit.log") != 0)
        goto out;
    a.fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a.fd < 0) {
        log_error("audit_init_failed", "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    if (last_sequence(a.fd, &a.seq) != 0) {
        log_error("audit_init_failed", "%s does not end with a complete audit entry; "
                  "refusing to append to a damaged log", path);
        goto out;
    }
    if (sandbox_drop_privileges(cfg->user) != 0 || sandbox_enter(&pol) != 0)
        goto out;
    if (ipc_send(fds[0], IPC_READY, 0, 0, NULL, 0) != 0)
        goto out;
    rc = service_loop("audit", fds, n, auditd_handle, &a);
out:
    if (a.fd >= 0)
        close(a.fd);
    return rc;
}
