/*
 * writer.c - hash-chained, fsync'd, signed, rotated audit segments
 * (R7.2, R7.3, R7.6).  Format: chain.h and docs/audit.md.
 */
#include "audit/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "audit/event.h"
#include "common/log.h"
#include "common/util.h"
#include "ipc/ipc.h"

/* The longest line we write: a maximal event plus the envelope. */
#define LINE_MAX_BYTES (IPC_MAX_PAYLOAD + 256)
#define DAY_US ((int64_t)86400 * 1000000)

struct audit_writer {
    struct audit_writer_opts o;
    char     dir[PATH_MAX];
    int      lockfd;
    bool     locked;
    bool     broken;
    /* The head of the chain. */
    uint64_t seq;
    uint8_t  head[AUDIT_HASH_LEN];
    int64_t  last_time;
    /* The live segment being appended to (fd -1: none, the next append
     * starts one). */
    int      fd;
    int      ckfd;
    char     base[AUDIT_SEG_NAME_MAX];
    int64_t  seg_start_us;
    off_t    size;
    /* Checkpoints. */
    uint64_t signed_seq;
    int64_t  signed_at_us;       /* when the oldest unsigned entry was written */
    bool     in_rotation;
};

static int
errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int
seg_path(const struct audit_writer *w, const char *base, const char *ext, char *out, size_t n)
{
    return snprintf(out, n, "%s/%s%s", w->dir, base, ext) >= (int)n ? -1 : 0;
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void
close_segment(struct audit_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->ckfd >= 0)
        close(w->ckfd);
    w->fd = w->ckfd = -1;
    w->base[0] = '\0';
    w->size = 0;
}

/* Cut a torn tail (bytes after the last newline) off fd.  Returns the
 * bytes cut, or -1. */
static int64_t
cut_torn_tail(int fd, off_t *size_out)
{
    off_t size = lseek(fd, 0, SEEK_END);
    size_t want;
    char *tail;
    ssize_t got;
    off_t keep = -1;

    if (size < 0)
        return -1;
    *size_out = size;
    if (size == 0)
        return 0;
    want = size > (off_t)LINE_MAX_BYTES ? LINE_MAX_BYTES : (size_t)size;
    tail = malloc(want);
    if (tail == NULL)
        return -1;
    got = pread(fd, tail, want, size - (off_t)want);
    if (got != (ssize_t)want) {
        free(tail);
        return -1;
    }
    if (tail[want - 1] == '\n') {
        free(tail);
        return 0;
    }
    for (size_t i = want; i > 0; i--)
        if (tail[i - 1] == '\n') {
            keep = size - (off_t)want + (off_t)i;
            break;
        }
    free(tail);
    if (keep < 0 && (off_t)want != size) {
        errno = EBADMSG;        /* a line longer than any we write: not ours */
        return -1;
    }
    if (keep < 0)
        keep = 0;
    if (ftruncate(fd, keep) != 0 || fsync(fd) != 0)
        return -1;
    *size_out = keep;
    return (int64_t)(size - keep);
}

/* Take the head (seq, hash, time) from the last line of buf. */
static int
head_from_text(struct audit_writer *w, const char *buf, size_t len)
{
    const char *end = buf + len, *start;
    uint8_t h[AUDIT_HASH_LEN];
    size_t clen;
    json_t *o;
    int64_t t;
    int rc = -1;

    if (len == 0 || end[-1] != '\n')
        return -1;
    end--;
    start = end;
    while (start > buf && start[-1] != '\n')
        start--;
    if (audit_line_split(start, (size_t)(end - start), &clen, h) != 0)
        return -1;
    o = json_loadb(start, (size_t)(end - start), JSON_REJECT_DUPLICATES, NULL);
    if (json_is_integer(json_object_get(o, "seq")) &&
        json_integer_value(json_object_get(o, "seq")) > 0 &&
        json_is_string(json_object_get(o, "time")) &&
        audit_time_parse(json_string_value(json_object_get(o, "time")), &t) == 0) {
        w->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
        memcpy(w->head, h, AUDIT_HASH_LEN);
        w->last_time = t;
        rc = 0;
    }
    json_decref(o);
    return rc;
}

/* Read the head of the log from disk: the last entry of the newest
 * segment (cutting a torn tail first). */
static int
load_head(struct audit_writer *w, uint64_t *truncated, char *err, size_t errlen)
{
    struct audit_segment *segs = NULL, *last;
    size_t n;
    int rc = -1;

    close_segment(w);
    w->seq = 0;
    memset(w->head, 0, sizeof(w->head));
    w->last_time = 0;
again:
    if (audit_segments_list(w->dir, &segs, &n) != 0)
        return errf(err, errlen, "cannot list %s: %s", w->dir, strerror(errno));
    if (n == 0) {
        free(segs);
        return 0;                            /* a new log */
    }
    last = &segs[n - 1];
    if (last->archived) {
        char *buf;
        size_t len;
        if (audit_segment_read(last, &buf, &len) != 0) {
            errf(err, errlen, "cannot read %s: %s", last->path, strerror(errno));
            goto out;
        }
        rc = head_from_text(w, buf, len);
        free(buf);
        if (rc != 0)
            errf(err, errlen, "%s does not end with a complete audit entry", last->path);
        goto out;
    }
    w->fd = open(last->path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (w->fd < 0) {
        errf(err, errlen, "cannot open %s: %s", last->path, strerror(errno));
        goto out;
    }
    int64_t cut = cut_torn_tail(w->fd, &w->size);
    if (cut < 0) {
        errf(err, errlen, "%s does not end with a complete audit entry; refusing to "
             "append to a damaged log", last->path);
        goto out;
    }
    if (truncated != NULL)
        *truncated += (uint64_t)cut;
    if (w->size == 0) {
        /* Only a torn first line: the segment never held an entry. */
        char ck[PATH_MAX];
        close_segment(w);
        if (unlink(last->path) != 0 ||
            (snprintf(ck, sizeof(ck), "%s", last->ckpt) < (int)sizeof(ck) &&
             unlink(ck) != 0 && errno != ENOENT) ||
            util_fsync_parent(last->path) != 0) {
            errf(err, errlen, "cannot remove the empty segment %s: %s", last->path,
                 strerror(errno));
            goto out;
        }
        free(segs);
        segs = NULL;
        goto again;
    }
    {
        size_t want = w->size > (off_t)LINE_MAX_BYTES ? LINE_MAX_BYTES : (size_t)w->size;
        char *tail = malloc(want);
        if (tail == NULL || pread(w->fd, tail, want, w->size - (off_t)want) != (ssize_t)want ||
            head_from_text(w, tail, want) != 0 ||
            (want != (size_t)w->size && memchr(tail, '\n', want - 1) == NULL)) {
            free(tail);
            errf(err, errlen, "%s does not end with a complete audit entry; refusing to "
                 "append to a damaged log", last->path);
            goto out;
        }
        free(tail);
    }
    memcpy(w->base, last->base, sizeof(w->base));
    w->seg_start_us = last->start_s * 1000000;
    /* Checkpoints: cut a torn checkpoint line too (never one we relied on). */
    w->ckfd = open(last->ckpt, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (w->ckfd < 0) {
        errf(err, errlen, "cannot open %s: %s", last->ckpt, strerror(errno));
        goto out;
    }
    {
        off_t cks;
        if (cut_torn_tail(w->ckfd, &cks) < 0) {
            errf(err, errlen, "%s is damaged", last->ckpt);
            goto out;
        }
    }
    rc = 0;
out:
    free(segs);
    if (rc != 0)
        close_segment(w);
    return rc;
}

int
audit_writer_open(const struct audit_writer_opts *o, struct audit_writer **out,
                  uint64_t *truncated, char *err, size_t errlen)
{
    struct audit_writer *w = calloc(1, sizeof(*w));
    char path[PATH_MAX];

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (truncated != NULL)
        *truncated = 0;
    if (w == NULL)
        return errf(err, errlen, "out of memory");
    w->o = *o;
    w->fd = w->ckfd = w->lockfd = -1;
    if (util_strcpy(w->dir, sizeof(w->dir), o->dir) != 0 ||
        util_path_join(path, sizeof(path), o->dir, "archive") != 0) {
        free(w);
        return errf(err, errlen, "audit directory name too long");
    }
    w->o.dir = w->dir;
    if (mkdirat(AT_FDCWD, path, 0700) != 0 && errno != EEXIST) {   /* seccomp: mkdirat only */
        errf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        free(w);
        return -1;
    }
    if (util_path_join(path, sizeof(path), o->dir, ".lock") != 0 ||
        (w->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        errf(err, errlen, "cannot open %s/.lock: %s", o->dir, strerror(errno));
        free(w);
        return -1;
    }
    if (flock(w->lockfd, LOCK_EX) != 0 || load_head(w, truncated, err, errlen) != 0) {
        if (err != NULL && err[0] == '\0')
            errf(err, errlen, "cannot lock %s/.lock: %s", o->dir, strerror(errno));
        close(w->lockfd);
        free(w);
        return -1;
    }
    w->signed_seq = w->seq;   /* what is on disk was signed or is reported by verify */
    w->signed_at_us = 0;
    flock(w->lockfd, LOCK_UN);
    *out = w;
    return 0;
}

int
audit_writer_begin(struct audit_writer *w)
{
    struct stat st;
    char err[256];

    if (w->broken)
        return -1;
    if (flock(w->lockfd, LOCK_EX) != 0) {
        w->broken = true;
        return -1;
    }
    w->locked = true;
    /* Someone else (the CLI) appended since: read the head again. */
    if (w->fd >= 0 && fstat(w->fd, &st) == 0 && st.st_size == w->size && st.st_nlink > 0)
        return 0;
    if (w->fd < 0 && w->seq == 0) {
        struct audit_segment *segs;
        size_t n;
        if (audit_segments_list(w->dir, &segs, &n) == 0 && n == 0) {
            free(segs);
            return 0;
        }
        free(segs);
    }
    if (load_head(w, NULL, err, sizeof(err)) != 0) {
        log_error("audit_write_failed", "%s", err);
        w->broken = true;
        flock(w->lockfd, LOCK_UN);
        w->locked = false;
        return -1;
    }
    return 0;
}

static void
hexs(const uint8_t *b, size_t n, char *out, size_t outsz)
{
    if (util_hex_encode(b, n, out, outsz) != 0)
        out[0] = '\0';
}

/* Write one entry; ev has been validated. */
static int
write_entry(struct audit_writer *w, const json_t *ev, int64_t t)
{
    char ts[AUDIT_TIME_LEN + 1], hex[2 * AUDIT_HASH_LEN + 1];
    char *evtext = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS), *line;
    uint8_t h[AUDIT_HASH_LEN];
    size_t elen, clen, cap;
    int n;

    if (evtext == NULL)
        return -1;
    audit_time_format(t, ts);
    elen = strlen(evtext);
    cap = elen + 128 + AUDIT_SUFFIX_LEN;
    line = malloc(cap);
    if (line == NULL) {
        free(evtext);
        return -1;
    }
    n = snprintf(line, cap, "{\"seq\":%llu,\"time\":\"%s\",\"event\":%s",
                 (unsigned long long)(w->seq + 1), ts, evtext);
    free(evtext);
    if (n < 0 || (size_t)n >= cap - AUDIT_SUFFIX_LEN - 1) {
        free(line);
        return -1;
    }
    clen = (size_t)n;
    audit_chain_step(w->head, line, clen, h);
    hexs(h, sizeof(h), hex, sizeof(hex));
    n = snprintf(line + clen, cap - clen, ",\"hash\":\"%s\"}\n", hex);
    if (n != AUDIT_SUFFIX_LEN + 1) {
        free(line);
        return -1;
    }
    if (write_all(w->fd, line, clen + (size_t)n) != 0) {
        int e = errno;
        /* Fail closed, and leave no partial line behind if we can. */
        if (ftruncate(w->fd, w->size) != 0)
            log_error("audit_write_failed", "cannot cut a partial entry: %s", strerror(errno));
        free(line);
        errno = e;
        w->broken = true;
        return -1;
    }
    free(line);
    w->size += (off_t)(clen + (size_t)n);
    w->seq++;
    memcpy(w->head, h, sizeof(h));
    w->last_time = t;
    if (w->signed_at_us == 0)
        w->signed_at_us = t;
    return 0;
}

static int64_t
day_of(int64_t us)
{
    return us / DAY_US;
}

static int append_internal(struct audit_writer *w, json_t *ev);
static int sign_head(struct audit_writer *w);
static int maintain(struct audit_writer *w, int64_t now);

/* Start a new segment whose first entry (seq+1, time t) records the
 * previous head, so the chain can be followed across files. */
static int
start_segment(struct audit_writer *w, int64_t t, const char *reason)
{
    char base[AUDIT_SEG_NAME_MAX], path[PATH_MAX], hex[2 * AUDIT_HASH_LEN + 1];
    json_t *ev;
    int fd, rc;

    if (w->fd >= 0) {
        if (fsync(w->fd) != 0) {
            w->broken = true;
            return -1;
        }
        if (w->o.signer.sign != NULL && w->signed_seq < w->seq && sign_head(w) != 0)
            log_error("audit_checkpoint_failed", "cannot sign the head of %s at rotation",
                      w->base);
    }
    audit_segment_name(w->seq + 1, t, base);
    if (seg_path(w, base, ".log", path, sizeof(path)) != 0)
        return -1;
    fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || util_fsync_parent(path) != 0) {
        log_error("audit_write_failed", "cannot create %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        w->broken = true;
        return -1;
    }
    close_segment(w);
    w->fd = fd;
    memcpy(w->base, base, sizeof(base));
    w->seg_start_us = (t / 1000000) * 1000000;
    if (seg_path(w, base, ".ckpt", path, sizeof(path)) != 0 ||
        (w->ckfd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        w->broken = true;
        return -1;
    }
    hexs(w->head, sizeof(w->head), hex, sizeof(hex));
    ev = audit_event_new("audit.segment_start", AUDIT_SUCCESS);
    /* R7.6: the clock every time in this segment comes from. */
    if (ev == NULL || audit_event_info_str(ev, "clock", "clock_realtime") != 0 ||
        audit_event_info_str(ev, "prev_hash", hex) != 0 ||
        audit_event_info_int(ev, "prev_seq", (int64_t)w->seq) != 0 ||
        audit_event_info_str(ev, "reason", reason) != 0) {
        json_decref(ev);
        w->broken = true;
        return -1;
    }
    rc = write_entry(w, ev, t);
    json_decref(ev);
    return rc;
}

static bool
should_rotate(const struct audit_writer *w, int64_t t)
{
    if (w->fd < 0)
        return true;
    if (w->o.no_rotate)
        return false;
    return day_of(t) != day_of(w->seg_start_us) ||
           (w->o.segment_max_bytes > 0 && (uint64_t)w->size >= w->o.segment_max_bytes);
}

static int
append_locked(struct audit_writer *w, const json_t *ev)
{
    int64_t t = audit_now_us();

    if (t < w->last_time)
        t = w->last_time;           /* R7.6: never backwards */
    if (should_rotate(w, t)) {
        bool first = w->fd < 0 && w->seq == 0;
        if (start_segment(w, t, first ? "new_log" : w->fd < 0 ? "restart" : "rotation") != 0)
            return -1;
        if (!first && !w->o.no_rotate && !w->in_rotation) {
            w->in_rotation = true;
            int rc = maintain(w, t);
            w->in_rotation = false;
            if (rc != 0)
                return -1;
        }
    }
    return write_entry(w, ev, t);
}

int
audit_writer_append(struct audit_writer *w, const json_t *ev, uint64_t *seq,
                    char *err, size_t errlen)
{
    char why[64];

    if (w->broken || !w->locked)
        return errf(err, errlen, "audit_unavailable");
    if (audit_event_validate(ev, why, sizeof(why)) != 0) {
        errf(err, errlen, "%s", why);
        return -2;
    }
    if (json_dumpb(ev, NULL, 0, JSON_COMPACT) > IPC_MAX_PAYLOAD) {
        errf(err, errlen, "event_too_large");
        return -2;
    }
    if (append_locked(w, ev) != 0) {
        w->broken = true;
        return errf(err, errlen, "audit_unavailable");
    }
    *seq = w->seq;
    return 0;
}

static int
append_internal(struct audit_writer *w, json_t *ev)
{
    uint64_t seq;
    char err[64];
    int rc;

    if (ev == NULL)
        return -1;
    rc = audit_writer_append(w, ev, &seq, err, sizeof(err));
    json_decref(ev);
    return rc == 0 ? 0 : -1;
}

/* Sign the head and append the checkpoint beside the segment.  The head
 * must already be durable. */
static int
sign_head(struct audit_writer *w)
{
    uint8_t req[AUDIT_SIGN_REQ_LEN], sig[AUDIT_SIG_LEN];
    char hh[2 * AUDIT_HASH_LEN + 1], sh[2 * AUDIT_SIG_LEN + 1], ts[AUDIT_TIME_LEN + 1];
    char line[512];
    int64_t t = audit_now_us();
    int n;

    if (w->o.signer.sign == NULL || w->fd < 0 || w->ckfd < 0 || w->seq == 0)
        return 0;
    if (t < w->last_time)
        t = w->last_time;
    audit_sign_req_encode(w->head, w->seq, t, req);
    if (w->o.signer.sign(w->o.signer.arg, req, sig) != 0)
        return -1;
    hexs(w->head, AUDIT_HASH_LEN, hh, sizeof(hh));
    hexs(sig, AUDIT_SIG_LEN, sh, sizeof(sh));
    audit_time_format(t, ts);
    n = snprintf(line, sizeof(line),
                 "{\"seq\":%llu,\"time\":\"%s\",\"segment\":\"%s\",\"hash\":\"%s\",\"sig\":\"%s\"}\n",
                 (unsigned long long)w->seq, ts, w->base, hh, sh);
    if (n < 0 || (size_t)n >= sizeof(line) || write_all(w->ckfd, line, (size_t)n) != 0 ||
        fsync(w->ckfd) != 0)
        return -1;
    w->signed_seq = w->seq;
    w->signed_at_us = 0;
    return 0;
}

static bool
checkpoint_due(const struct audit_writer *w, int64_t now)
{
    if (w->o.signer.sign == NULL || w->signed_seq >= w->seq)
        return false;
    if (w->o.ckpt_entries > 0 && w->seq - w->signed_seq >= w->o.ckpt_entries)
        return true;
    return w->o.ckpt_seconds > 0 && w->signed_at_us != 0 &&
           now - w->signed_at_us >= (int64_t)w->o.ckpt_seconds * 1000000;
}

int
audit_writer_commit(struct audit_writer *w)
{
    int rc = 0;

    if (w->broken || !w->locked)
        rc = -1;
    else if (w->fd >= 0 && fdatasync(w->fd) != 0) {
        log_error("audit_write_failed", "cannot fsync the audit log: %s", strerror(errno));
        w->broken = true;
        rc = -1;
    }
    if (rc == 0 && checkpoint_due(w, audit_now_us()) && sign_head(w) != 0)
        log_error("audit_checkpoint_failed", "cannot sign a checkpoint of %s; the "
                  "entries are durable, the next checkpoint will cover them", w->base);
    if (w->locked)
        flock(w->lockfd, LOCK_UN);
    w->locked = false;
    return rc;
}

int
audit_writer_checkpoint(struct audit_writer *w)
{
    int rc;

    if (audit_writer_begin(w) != 0)
        return -1;
    rc = (w->signed_seq < w->seq) ? sign_head(w) : 0;
    if (audit_writer_commit(w) != 0)
        return -1;
    return rc;
}

/* ---- archival and retention (R7.3) ---------------------------------- */

static int
archive_segment(struct audit_writer *w, const struct audit_segment *s)
{
    char *plain = NULL, *ck = NULL, *z = NULL;
    char dst[PATH_MAX];
    size_t plen, cklen = 0, zcap, zlen;
    int rc = -1;

    if (audit_segment_read(s, &plain, &plen) != 0)
        return -1;
    if (util_read_file(s->ckpt, 64u * 1024u * 1024u, &ck, &cklen) != 0 && errno != ENOENT)
        goto out;
    zcap = ZSTD_compressBound(plen);
    z = malloc(zcap);
    if (z == NULL)
        goto out;
    zlen = ZSTD_compress(z, zcap, plain, plen, 9);
    if (ZSTD_isError(zlen))
        goto out;
    if (snprintf(dst, sizeof(dst), "%s/archive/%s.ckpt", w->dir, s->base) >= (int)sizeof(dst) ||
        (ck != NULL && util_write_file_atomic(dst, ck, cklen, 0600) != 0))
        goto out;
    if (snprintf(dst, sizeof(dst), "%s/archive/%s.log.zst", w->dir, s->base) >= (int)sizeof(dst) ||
        util_write_file_atomic(dst, z, zlen, 0600) != 0)
        goto out;
    /* Only once the archive copy is durable do the originals go. */
    if (unlink(s->path) != 0 || (unlink(s->ckpt) != 0 && errno != ENOENT) ||
        util_fsync_parent(s->path) != 0)
        goto out;
    log_event(LOG_LVL_INFO, "audit_segment_archived", json_pack("{s:s}", "segment", s->base));
    rc = 0;
out:
    free(plain);
    free(ck);
    free(z);
    return rc;
}

static int
maintain(struct audit_writer *w, int64_t now)
{
    struct audit_segment *segs;
    size_t n, ndel = 0;
    int rc = 0;

    if (w->o.no_rotate)
        return 0;
    if (audit_segments_list(w->dir, &segs, &n) != 0)
        return -1;
    /* A segment ends no later than the next one starts. */
    for (size_t i = 0; i + 1 < n; i++) {
        int64_t end = segs[i + 1].start_s * 1000000;
        if (w->o.retention_days > 0 && segs[i].archived && i == ndel &&
            now - end >= (int64_t)w->o.retention_days * DAY_US)
            ndel = i + 1;
        else if (w->o.archive_days > 0 && !segs[i].archived &&
                 now - end >= (int64_t)w->o.archive_days * DAY_US &&
                 archive_segment(w, &segs[i]) != 0) {
            log_error("audit_archive_failed", "cannot archive %s: %s", segs[i].base,
                      strerror(errno));
        }
    }
    if (ndel > 0) {
        /* Record the deletion first (R7.3), then delete. */
        json_t *ev = audit_event_new("audit.segments_deleted", AUDIT_SUCCESS);
        if (ev == NULL || audit_event_info_int(ev, "count", (int64_t)ndel) != 0 ||
            audit_event_info_int(ev, "first_seq", (int64_t)segs[0].first_seq) != 0 ||
            audit_event_info_int(ev, "through_seq", (int64_t)segs[ndel].first_seq - 1) != 0 ||
            audit_event_info_int(ev, "retention_days", w->o.retention_days) != 0 ||
            append_internal(w, ev) != 0 || fdatasync(w->fd) != 0) {
            free(segs);
            return -1;
        }
        for (size_t i = 0; i < ndel; i++)
            if (unlink(segs[i].path) != 0 || (unlink(segs[i].ckpt) != 0 && errno != ENOENT))
                rc = -1;
        if (util_fsync_parent(segs[0].path) != 0)
            rc = -1;
    }
    free(segs);
    return rc;
}

int
audit_writer_tick_ms(const struct audit_writer *w)
{
    int64_t now = audit_now_us(), left;

    if (w->o.signer.sign == NULL || w->signed_seq >= w->seq || w->o.ckpt_seconds == 0)
        return -1;
    left = w->signed_at_us + (int64_t)w->o.ckpt_seconds * 1000000 - now;
    return left <= 0 ? 0 : (int)(left / 1000 + 1);
}

int
audit_writer_tick(struct audit_writer *w)
{
    int64_t now = audit_now_us();
    int rc = 0;

    if (audit_writer_begin(w) != 0)
        return -1;
    if (w->fd >= 0 && !w->o.no_rotate && day_of(now) != day_of(w->seg_start_us)) {
        /* A new day: rotate now, so yesterday's segment is closed and signed. */
        json_t *ev = audit_event_new("audit.rotate", AUDIT_SUCCESS);
        rc = append_internal(w, ev);
    }
    if (rc == 0 && checkpoint_due(w, now) && sign_head(w) != 0)
        log_error("audit_checkpoint_failed", "cannot sign a checkpoint of %s", w->base);
    if (audit_writer_commit(w) != 0)
        return -1;
    return rc;
}

uint64_t
audit_writer_seq(const struct audit_writer *w)
{
    return w->seq;
}

void
audit_writer_close(struct audit_writer *w)
{
    if (w == NULL)
        return;
    close_segment(w);
    if (w->lockfd >= 0)
        close(w->lockfd);
    free(w);
}

int
audit_append_offline(const char *dir, const json_t *ev, uint64_t *seq, char *err, size_t errlen)
{
    struct audit_writer_opts o = { .dir = dir, .no_rotate = true };
    struct audit_writer *w;
    uint64_t cut = 0;
    int rc;

    if (audit_writer_open(&o, &w, &cut, err, errlen) != 0)
        return -1;
    if (audit_writer_begin(w) != 0) {
        audit_writer_close(w);
        return errf(err, errlen, "cannot lock the audit log in %s", dir);
    }
    if (cut > 0) {
        json_t *t = audit_event_new("audit.tail_truncated", AUDIT_SUCCESS);
        if (t == NULL || audit_event_info_int(t, "bytes", (int64_t)cut) != 0 ||
            append_internal(w, t) != 0) {
            if (audit_writer_commit(w) != 0)
                log_error("audit_write_failed", "cannot commit to the audit log in %s", dir);
            audit_writer_close(w);
            return errf(err, errlen, "cannot write the audit log in %s", dir);
        }
    }
    rc = audit_writer_append(w, ev, seq, err, errlen);
    if (audit_writer_commit(w) != 0 && rc == 0)
        rc = errf(err, errlen, "cannot make the audit event durable in %s", dir);
    audit_writer_close(w);
    return rc == 0 ? 0 : -1;
}
