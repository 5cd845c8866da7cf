/*
 * chain.c - audit log format: hash chain, checkpoint messages, segment
 * names, and the verifier (R7.2, R7.3, R7.6).
 */
#include "audit/chain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "audit/event.h"
#include "common/util.h"

#define SEGMENT_READ_MAX  (1024u * 1024u * 1024u)   /* 1 GiB uncompressed */
#define CKPT_FILE_MAX     (64u * 1024u * 1024u)

static int64_t (*clock_hook)(void);

void
audit_set_clock(int64_t (*hook)(void))
{
    clock_hook = hook;
}

int64_t
audit_now_us(void)
{
    struct timespec ts;

    if (clock_hook != NULL)
        return clock_hook();
    clock_gettime(CLOCK_REALTIME, &ts);     /* R7.6: the clock recorded at start */
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
audit_time_format(int64_t us, char out[AUDIT_TIME_LEN + 1])
{
    time_t s = (time_t)(us / 1000000);
    long frac = (long)(us % 1000000);
    struct tm tm;

    if (frac < 0) {
        frac += 1000000;
        s--;
    }
    char buf[96];

    gmtime_r(&s, &tm);
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec, frac);
    memcpy(out, buf, AUDIT_TIME_LEN);
    out[AUDIT_TIME_LEN] = '\0';
}

static int
all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int
num(const char *s, size_t n)
{
    int v = 0;

    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int
audit_time_parse(const char *s, int64_t *us)
{
    size_t len = strlen(s);
    struct tm tm;
    long frac = 0;

    memset(&tm, 0, sizeof(tm));
    if (len < 10 || !all_digits(s, 4) || s[4] != '-' || !all_digits(s + 5, 2) ||
        s[7] != '-' || !all_digits(s + 8, 2))
        return -1;
    tm.tm_year = num(s, 4) - 1900;
    tm.tm_mon = num(s + 5, 2) - 1;
    tm.tm_mday = num(s + 8, 2);
    if (len == 10)
        goto done;
    if (len < 20 || s[10] != 'T' || !all_digits(s + 11, 2) || s[13] != ':' ||
        !all_digits(s + 14, 2) || s[16] != ':' || !all_digits(s + 17, 2))
        return -1;
    tm.tm_hour = num(s + 11, 2);
    tm.tm_min = num(s + 14, 2);
    tm.tm_sec = num(s + 17, 2);
    if (len == 20 && s[19] == 'Z')
        goto done;
    if (len != AUDIT_TIME_LEN || s[19] != '.' || !all_digits(s + 20, 6) || s[26] != 'Z')
        return -1;
    frac = num(s + 20, 6);
done:
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    *us = (int64_t)timegm(&tm) * 1000000 + frac;
    return 0;
}

void
audit_chain_step(const uint8_t prev[AUDIT_HASH_LEN], const char *canon, size_t len,
                 uint8_t out[AUDIT_HASH_LEN])
{
    crypto_hash_sha256_state st;

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, prev, AUDIT_HASH_LEN);
    crypto_hash_sha256_update(&st, (const unsigned char *)canon, len);
    crypto_hash_sha256_final(&st, out);
}

static int
hex_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* Lower-case hex digit -> 0x10 | value; anything else -> 0. */
static const uint8_t hexdig[256] = {
    ['0'] = 0x10, ['1'] = 0x11, ['2'] = 0x12, ['3'] = 0x13, ['4'] = 0x14,
    ['5'] = 0x15, ['6'] = 0x16, ['7'] = 0x17, ['8'] = 0x18, ['9'] = 0x19,
    ['a'] = 0x1a, ['b'] = 0x1b, ['c'] = 0x1c, ['d'] = 0x1d, ['e'] = 0x1e, ['f'] = 0x1f,
};

/* Decode 64 lower-case hex digits.  A table rather than a comparison per
 * character: a digest's digits are random, so branches on them are
 * mispredicted half the time, and verify does this for every entry. */
static int
hex32_decode(const char *s, uint8_t out[AUDIT_HASH_LEN])
{
    unsigned valid = 0x10;

    for (size_t i = 0; i < AUDIT_HASH_LEN; i++) {
        unsigned hi = hexdig[(unsigned char)s[2 * i]], lo = hexdig[(unsigned char)s[2 * i + 1]];
        valid &= hi & lo;
        out[i] = (uint8_t)((hi & 0x0f) << 4 | (lo & 0x0f));
    }
    return valid ? 0 : -1;
}

int
audit_line_split(const char *line, size_t len, size_t *canon_len,
                 uint8_t hash[AUDIT_HASH_LEN])
{
    const char *suf;

    if (len <= AUDIT_SUFFIX_LEN + 1 || line[0] != '{')
        return -1;
    suf = line + len - AUDIT_SUFFIX_LEN;
    if (memcmp(suf, ",\"hash\":\"", 9) != 0 || memcmp(suf + 73, "\"}", 2) != 0 ||
        hex32_decode(suf + 9, hash) != 0)
        return -1;
    *canon_len = len - AUDIT_SUFFIX_LEN;
    return 0;
}

static void
be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t
be64_get(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

void
audit_sign_req_encode(const uint8_t hash[AUDIT_HASH_LEN], uint64_t seq, int64_t time_us,
                      uint8_t out[AUDIT_SIGN_REQ_LEN])
{
    memcpy(out, hash, AUDIT_HASH_LEN);
    be64_put(out + 32, seq);
    be64_put(out + 40, (uint64_t)time_us);
}

void
audit_sign_req_decode(const uint8_t in[AUDIT_SIGN_REQ_LEN], uint8_t hash[AUDIT_HASH_LEN],
                      uint64_t *seq, int64_t *time_us)
{
    memcpy(hash, in, AUDIT_HASH_LEN);
    *seq = be64_get(in + 32);
    *time_us = (int64_t)be64_get(in + 40);
}

void
audit_ckpt_message(const uint8_t req[AUDIT_SIGN_REQ_LEN], uint8_t msg[AUDIT_CKPT_MSG_LEN])
{
    memcpy(msg, AUDIT_CKPT_DOMAIN, AUDIT_CKPT_DOMAIN_LEN);
    memcpy(msg + AUDIT_CKPT_DOMAIN_LEN, req, AUDIT_SIGN_REQ_LEN);
}

void
audit_segment_name(uint64_t first_seq, int64_t start_us, char out[AUDIT_SEG_NAME_MAX])
{
    time_t s = (time_t)(start_us / 1000000);
    struct tm tm;

    char buf[128];

    gmtime_r(&s, &tm);
    snprintf(buf, sizeof(buf), "seg-%020llu-%04d%02d%02dT%02d%02d%02dZ",
             (unsigned long long)first_seq, tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(out, AUDIT_SEG_NAME_MAX, "%.63s", buf);
}

int
audit_segment_parse(const char *name, uint64_t *first_seq, int64_t *start_s,
                    char base[AUDIT_SEG_NAME_MAX])
{
    /* seg-(20 digits)-(YYYYMMDD)T(HHMMSS)Z = 4 + 20 + 1 + 16 = 41 */
    const size_t blen = 41;
    const char *ext = name + blen;
    struct tm tm;
    char digits[21];

    if (strlen(name) <= blen || strncmp(name, "seg-", 4) != 0 ||
        !all_digits(name + 4, 20) || name[24] != '-' || !all_digits(name + 25, 8) ||
        name[33] != 'T' || !all_digits(name + 34, 6) || name[40] != 'Z')
        return -1;
    if (strcmp(ext, ".log") != 0 && strcmp(ext, ".log.zst") != 0 && strcmp(ext, ".ckpt") != 0)
        return -1;
    memcpy(digits, name + 4, 20);
    digits[20] = '\0';
    if (util_parse_u64(digits, 1, UINT64_MAX, first_seq) != 0)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = num(name + 25, 4) - 1900;
    tm.tm_mon = num(name + 29, 2) - 1;
    tm.tm_mday = num(name + 31, 2);
    tm.tm_hour = num(name + 34, 2);
    tm.tm_min = num(name + 36, 2);
    tm.tm_sec = num(name + 38, 2);
    *start_s = (int64_t)timegm(&tm);
    memcpy(base, name, blen);
    base[blen] = '\0';
    return 0;
}

int
audit_pubkey_load(const char *path, uint8_t pk[AUDIT_PK_LEN])
{
    char *text = NULL;
    size_t len;
    int rc = -1;

    if (util_read_file(path, 256, &text, &len) != 0)
        return -1;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    if (len == 2 * AUDIT_PK_LEN && util_hex_decode(text, pk, AUDIT_PK_LEN) == 0)
        rc = 0;
    else
        errno = EINVAL;
    free(text);
    return rc;
}

/* ---- segment listing and reading ------------------------------------ */

static int
cmp_segment(const void *a, const void *b)
{
    const struct audit_segment *x = a, *y = b;

    return x->first_seq < y->first_seq ? -1 : x->first_seq > y->first_seq;
}

static int
scan_dir(const char *dir, bool archived, struct audit_segment **v, size_t *n, size_t *cap)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (d == NULL)
        return archived && errno == ENOENT ? 0 : -1;
    while ((de = readdir(d)) != NULL) {
        struct audit_segment s;
        size_t l = strlen(de->d_name);
        const char *want = archived ? ".log.zst" : ".log";

        memset(&s, 0, sizeof(s));
        if (l < strlen(want) || strcmp(de->d_name + l - strlen(want), want) != 0 ||
            audit_segment_parse(de->d_name, &s.first_seq, &s.start_s, s.base) != 0)
            continue;
        if (!archived && strcmp(de->d_name + l - 8, ".log.zst") == 0)
            continue;
        s.archived = archived;
        if (util_path_join(s.path, sizeof(s.path), dir, de->d_name) != 0 ||
            snprintf(s.ckpt, sizeof(s.ckpt), "%s/%s.ckpt", dir, s.base) >= (int)sizeof(s.ckpt))
            continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            struct audit_segment *nv = realloc(*v, nc * sizeof(*nv));
            if (nv == NULL) {
                closedir(d);
                return -1;
            }
            *v = nv;
            *cap = nc;
        }
        (*v)[(*n)++] = s;
    }
    closedir(d);
    return 0;
}

int
audit_segments_list(const char *dir, struct audit_segment **out, size_t *n)
{
    char arch[PATH_MAX];
    size_t cap = 0;

    *out = NULL;
    *n = 0;
    if (util_path_join(arch, sizeof(arch), dir, "archive") != 0 ||
        scan_dir(dir, false, out, n, &cap) != 0 || scan_dir(arch, true, out, n, &cap) != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
        return -1;
    }
    if (*n > 1)
        qsort(*out, *n, sizeof(**out), cmp_segment);
    return 0;
}

int
audit_segment_read(const struct audit_segment *s, char **buf, size_t *len)
{
    char *z = NULL, *plain;
    size_t zlen;
    unsigned long long size;

    if (!s->archived)
        return util_read_file(s->path, SEGMENT_READ_MAX, buf, len);
    if (util_read_file(s->path, SEGMENT_READ_MAX, &z, &zlen) != 0)
        return -1;
    size = ZSTD_getFrameContentSize(z, zlen);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
        size > SEGMENT_READ_MAX) {
        free(z);
        errno = EBADMSG;
        return -1;
    }
    plain = malloc((size_t)size + 1);
    if (plain == NULL) {
        free(z);
        return -1;
    }
    size_t got = ZSTD_decompress(plain, (size_t)size, z, zlen);
    free(z);
    if (ZSTD_isError(got) || got != size) {
        free(plain);
        errno = EBADMSG;
        return -1;
    }
    plain[got] = '\0';
    *buf = plain;
    *len = got;
    return 0;
}

/* ---- reading a segment line by line (verify) --------------------------- */

/*
 * verify streams each segment through one fixed buffer rather than
 * reading it whole (audit_segment_read): a live segment may be
 * segment_max_mb long and an archived one up to 1 GiB, and a buffer that
 * stays in the CPU cache costs far less per entry than page-faulting a
 * fresh allocation the size of the segment (docs/audit.md, Benchmark).
 * Archived segments are decompressed with zstd's streaming API into the
 * same buffer.
 */
#define RD_BUF_LEN  (1024u * 1024u)    /* also the longest line verify accepts */

struct seg_reader {
    int        fd;
    ZSTD_DCtx *z;                  /* archived segments only */
    uint8_t   *zin;                /* compressed input */
    size_t     zin_cap, zin_len, zin_pos;
    bool       zdone;              /* the (single) frame has ended */
    unsigned long long zwant, zgot; /* declared and produced content size */
    bool       eof;
    char      *buf;                /* RD_BUF_LEN bytes; unread: [start, end) */
    size_t     start, end;
};

static ssize_t
read_some(int fd, void *p, size_t n)
{
    ssize_t k;

    do
        k = read(fd, p, n);
    while (k < 0 && errno == EINTR);
    return k;
}

static void
reader_close(struct seg_reader *rd)
{
    if (rd->fd >= 0)
        close(rd->fd);
    ZSTD_freeDCtx(rd->z);
    free(rd->zin);
    free(rd->buf);
    memset(rd, 0, sizeof(*rd));
    rd->fd = -1;
}

/* Open s for reading.  0, or -1 with errno (EBADMSG: not one zstd frame
 * with its content size).  The caller calls reader_close either way. */
static int
reader_open(struct seg_reader *rd, const struct audit_segment *s)
{
    struct stat st;
    ssize_t k;

    memset(rd, 0, sizeof(*rd));
    rd->fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rd->fd < 0 || fstat(rd->fd, &st) != 0)
        return -1;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        return -1;
    }
    (void)posix_fadvise(rd->fd, 0, 0, POSIX_FADV_SEQUENTIAL);   /* a hint only */
    if ((rd->buf = malloc(RD_BUF_LEN)) == NULL)
        return -1;
    if (!s->archived)
        return 0;
    rd->zin_cap = ZSTD_DStreamInSize();
    if ((rd->z = ZSTD_createDCtx()) == NULL || (rd->zin = malloc(rd->zin_cap)) == NULL)
        return -1;
    /* The writer compresses a segment as one frame that declares its size
     * (docs/audit.md); anything else is not an archive we wrote. */
    if ((k = read_some(rd->fd, rd->zin, rd->zin_cap)) < 0)
        return -1;
    rd->zin_len = (size_t)k;
    rd->zwant = ZSTD_getFrameContentSize(rd->zin, rd->zin_len);
    if (rd->zwant == ZSTD_CONTENTSIZE_ERROR || rd->zwant == ZSTD_CONTENTSIZE_UNKNOWN ||
        rd->zwant > SEGMENT_READ_MAX) {
        errno = EBADMSG;
        return -1;
    }
    return 0;
}

/* Decompress into buf[end, RD_BUF_LEN): bytes produced (0 at the end of
 * a complete frame), or -1 with errno. */
static ssize_t
fill_zstd(struct seg_reader *rd)
{
    ZSTD_outBuffer out = { rd->buf + rd->end, RD_BUF_LEN - rd->end, 0 };

    while (out.pos == 0) {
        if (rd->zin_pos == rd->zin_len) {
            ssize_t k = read_some(rd->fd, rd->zin, rd->zin_cap);
            if (k < 0)
                return -1;
            rd->zin_len = (size_t)k;
            rd->zin_pos = 0;
            if (k == 0)
                break;
        }
        if (rd->zdone) {
            errno = EBADMSG;                /* bytes after the frame */
            return -1;
        }
        ZSTD_inBuffer in = { rd->zin, rd->zin_len, rd->zin_pos };
        size_t more = ZSTD_decompressStream(rd->z, &out, &in);
        rd->zin_pos = in.pos;
        if (ZSTD_isError(more)) {
            errno = EBADMSG;
            return -1;
        }
        rd->zdone = more == 0;
    }
    rd->zgot += out.pos;
    if (out.pos == 0 && (!rd->zdone || rd->zgot != rd->zwant)) {
        errno = EBADMSG;                    /* frame cut short, or not its size */
        return -1;
    }
    return (ssize_t)out.pos;
}

/* The next line, without its '\n' (valid until the next call): 1, 0 at
 * the end, -2 if the segment ends without a newline, -1 with errno on a
 * read error, a damaged archive (EBADMSG) or a line longer than
 * RD_BUF_LEN (E2BIG). */
static int
reader_next(struct seg_reader *rd, const char **line, size_t *len)
{
    size_t scanned = rd->start;

    for (;;) {
        const char *nl = memchr(rd->buf + scanned, '\n', rd->end - scanned);
        ssize_t k;

        if (nl != NULL) {
            *line = rd->buf + rd->start;
            *len = (size_t)(nl - *line);
            rd->start = (size_t)(nl - rd->buf) + 1;
            return 1;
        }
        if (rd->eof)
            return rd->start == rd->end ? 0 : -2;
        if (rd->start > 0) {                /* keep the partial line, read on */
            memmove(rd->buf, rd->buf + rd->start, rd->end - rd->start);
            rd->end -= rd->start;
            rd->start = 0;
        }
        scanned = rd->end;
        if (rd->end == RD_BUF_LEN) {
            errno = E2BIG;
            return -1;
        }
        k = rd->z != NULL ? fill_zstd(rd) : read_some(rd->fd, rd->buf + rd->end,
                                                      RD_BUF_LEN - rd->end);
        if (k < 0)
            return -1;
        rd->end += (size_t)k;
        rd->eof = k == 0;
    }
}

/* ---- verification ----------------------------------------------------- */

struct ckpt {
    uint64_t seq;
    int64_t  time_us;
    uint8_t  hash[AUDIT_HASH_LEN];
    uint64_t line;
    bool     matched;
};

static int
fail(struct audit_verify_result *r, const char *file, uint64_t line, uint64_t seq,
     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
fail(struct audit_verify_result *r, const char *file, uint64_t line, uint64_t seq,
     const char *fmt, ...)
{
    va_list ap;

    r->ok = false;
    snprintf(r->file, sizeof(r->file), "%s", file);
    r->line = line;
    r->seq = seq;
    va_start(ap, fmt);
    vsnprintf(r->what, sizeof(r->what), fmt, ap);
    va_end(ap);
    return -1;
}

static int
hex_field(json_t *o, const char *key, uint8_t *out, size_t n)
{
    const char *s = json_string_value(json_object_get(o, key));

    if (s == NULL || strlen(s) != 2 * n || !hex_lower(s, 2 * n))
        return -1;
    return util_hex_decode(s, out, n);
}

/* Load and check the signatures of one segment's checkpoints. */
static int
load_checkpoints(const struct audit_segment *s, const uint8_t pk[AUDIT_PK_LEN],
                 struct ckpt **out, size_t *n, struct audit_verify_result *r)
{
    char *text = NULL;
    size_t len, cap = 0;
    uint64_t line = 0;
    int rc = -1;

    *out = NULL;
    *n = 0;
    if (util_read_file(s->ckpt, CKPT_FILE_MAX, &text, &len) != 0) {
        if (errno == ENOENT)
            return 0;
        return fail(r, s->ckpt, 0, 0, "cannot read the checkpoints: %s", strerror(errno));
    }
    for (char *p = text; p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        json_t *o;
        struct ckpt c;
        uint8_t sig[AUDIT_SIG_LEN], req[AUDIT_SIGN_REQ_LEN], msg[AUDIT_CKPT_MSG_LEN];
        const char *t, *seg;

        line++;
        if (nl == NULL) {
            fail(r, s->ckpt, line, 0, "the last checkpoint line is incomplete");
            goto out;
        }
        *nl = '\0';
        memset(&c, 0, sizeof(c));
        o = json_loads(p, JSON_REJECT_DUPLICATES, NULL);
        t = json_string_value(json_object_get(o, "time"));
        seg = json_string_value(json_object_get(o, "segment"));
        if (!json_is_integer(json_object_get(o, "seq")) ||
            json_integer_value(json_object_get(o, "seq")) <= 0 || t == NULL ||
            audit_time_parse(t, &c.time_us) != 0 || strlen(t) != AUDIT_TIME_LEN ||
            seg == NULL || hex_field(o, "hash", c.hash, AUDIT_HASH_LEN) != 0 ||
            hex_field(o, "sig", sig, AUDIT_SIG_LEN) != 0 || json_object_size(o) != 5) {
            json_decref(o);
            fail(r, s->ckpt, line, 0, "malformed checkpoint");
            goto out;
        }
        c.seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
        c.line = line;
        if (strcmp(seg, s->base) != 0) {
            fail(r, s->ckpt, line, c.seq, "checkpoint names segment %s, not %s", seg, s->base);
            json_decref(o);
            goto out;
        }
        json_decref(o);
        audit_sign_req_encode(c.hash, c.seq, c.time_us, req);
        audit_ckpt_message(req, msg);
        if (crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) != 0) {
            fail(r, s->ckpt, line, c.seq, "checkpoint signature does not verify with the "
                 "trusted audit signing key (forged or signed by another key)");
            goto out;
        }
        if (*n > 0 && c.seq < (*out)[*n - 1].seq) {
            fail(r, s->ckpt, line, c.seq, "checkpoints out of order");
            goto out;
        }
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct ckpt *nv = realloc(*out, nc * sizeof(*nv));
            if (nv == NULL) {
                fail(r, s->ckpt, line, c.seq, "out of memory");
                goto out;
            }
            *out = nv;
            cap = nc;
        }
        (*out)[(*n)++] = c;
        p = nl + 1;
    }
    rc = 0;
out:
    free(text);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/*
 * One entry as the envelope scanner sees it.  The writer emits every
 * entry as
 *
 *   {"seq":N,"time":"<27>","event":{"action":"A",...},"hash":"<64 hex>"}
 *
 * ("action" is the alphabetically first member of every event, and events
 * are written with sorted keys), so what verify needs -- seq, time and
 * action -- is at fixed places that a strict scanner reads without
 * parsing the JSON.  Whether the whole line is also parsed is decided in
 * check_line (R7.2).
 */
struct entry {
    uint64_t    seq;
    int64_t     time_us;
    const char *time;             /* AUDIT_TIME_LEN bytes in the line */
    const char *action;           /* action_len bytes in the line */
    size_t      action_len;
    size_t      event_off;        /* the event is [event_off, canon_len) */
    size_t      canon_len;
    uint8_t     stored[AUDIT_HASH_LEN];
};

#define ENV_SEQ    "{\"seq\":"
#define ENV_TIME   ",\"time\":\""
#define ENV_EVENT  "\",\"event\":"
#define ENV_ACTION "{\"action\":\""
#define ACTION_MAX 64

static bool
action_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

/* Read the envelope of the canonical bytes p[0, e->canon_len).  0, or -1
 * if it is not exactly the form above. */
static int
scan_entry(const char *p, struct entry *e)
{
    const size_t n = e->canon_len;
    size_t i = sizeof(ENV_SEQ) - 1, a;
    char t[AUDIT_TIME_LEN + 1];

    if (n < i + 1 || memcmp(p, ENV_SEQ, i) != 0 || p[i] < '1' || p[i] > '9')
        return -1;
    /* seq: decimal, no leading zero, at most INT64_MAX (a JSON parser's
     * integer range; the writer counts from 1). */
    e->seq = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (e->seq > ((uint64_t)INT64_MAX - d) / 10)
            return -1;
        e->seq = e->seq * 10 + d;
    }
    if (n - i < sizeof(ENV_TIME) - 1 + AUDIT_TIME_LEN + sizeof(ENV_EVENT) - 1 +
                sizeof(ENV_ACTION) - 1 + 3 ||
        memcmp(p + i, ENV_TIME, sizeof(ENV_TIME) - 1) != 0)
        return -1;
    i += sizeof(ENV_TIME) - 1;
    e->time = p + i;
    memcpy(t, p + i, AUDIT_TIME_LEN);
    t[AUDIT_TIME_LEN] = '\0';
    if (strlen(t) != AUDIT_TIME_LEN || audit_time_parse(t, &e->time_us) != 0)
        return -1;
    i += AUDIT_TIME_LEN;
    if (memcmp(p + i, ENV_EVENT, sizeof(ENV_EVENT) - 1) != 0)
        return -1;
    i += sizeof(ENV_EVENT) - 1;
    e->event_off = i;
    if (memcmp(p + i, ENV_ACTION, sizeof(ENV_ACTION) - 1) != 0)
        return -1;
    i += sizeof(ENV_ACTION) - 1;
    e->action = p + i;
    for (a = i; a < n && a - i <= ACTION_MAX && action_char(p[a]); a++)
        ;
    e->action_len = a - i;
    /* "outcome" is required, so a comma follows the action; the event
     * closes right before the hash member. */
    if (e->action_len == 0 || e->action_len > ACTION_MAX || a + 2 > n || p[a] != '"' ||
        p[a + 1] != ',' || p[n - 1] != '}')
        return -1;
    return 0;
}

static bool
action_is(const struct entry *e, const char *name)
{
    return e->action_len == strlen(name) && memcmp(e->action, name, e->action_len) == 0;
}

/*
 * The complete check of one entry: valid JSON with no duplicate key,
 * exactly the four members and the same seq and time the scanner read,
 * the event valid against the schema (audit_event_validate), and its
 * bytes canonical -- exactly what the writer emits for that event.  So a
 * line that passes reads the same to any JSON parser as to the scanner.
 * Returns the parsed line (the caller json_decrefs it), or NULL with a
 * reason in why.
 */
static json_t *
full_check(const char *p, size_t len, const struct entry *e, char *why, size_t whylen)
{
    json_t *o = json_loadb(p, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *ev = json_object_get(o, "event"), *seq = json_object_get(o, "seq");
    const char *t = json_string_value(json_object_get(o, "time"));
    size_t elen = e->canon_len - e->event_off;
    char err[32], *canon;

    if (!json_is_integer(seq) || (uint64_t)json_integer_value(seq) != e->seq ||
        !json_is_object(ev) || t == NULL || strlen(t) != AUDIT_TIME_LEN ||
        memcmp(t, e->time, AUDIT_TIME_LEN) != 0 ||
        !json_is_string(json_object_get(o, "hash")) || json_object_size(o) != 4) {
        snprintf(why, whylen, "malformed entry");
        json_decref(o);
        return NULL;
    }
    if (audit_event_validate(ev, err, sizeof(err)) != 0) {
        snprintf(why, whylen, "the event does not match the schema (%s)", err);
        json_decref(o);
        return NULL;
    }
    canon = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
    if (canon == NULL || strlen(canon) != elen || memcmp(canon, p + e->event_off, elen) != 0) {
        snprintf(why, whylen, "the event is not in canonical form (compact, sorted keys)");
        free(canon);
        json_decref(o);
        return NULL;
    }
    free(canon);
    return o;
}

struct walk {
    uint8_t  prev[AUDIT_HASH_LEN];
    uint64_t next_seq;         /* 0 before the first entry */
    int64_t  last_time;
    uint64_t deleted_through;  /* highest seq a retention event accounts for */
    bool     deep;             /* AUDIT_VERIFY_DEEP */
};

/* The checkpoints of the segment being walked, sorted by seq. */
struct seg_ckpts {
    struct ckpt *v;
    size_t       n;
    size_t       next;         /* first one whose seq has not been reached */
};

/* Match the checkpoints for entry seq (hash h, time tus). */
static int
match_checkpoints(struct seg_ckpts *ck, const struct audit_segment *s, uint64_t seq,
                  const uint8_t h[AUDIT_HASH_LEN], int64_t tus, struct audit_verify_result *r)
{
    /* A checkpoint skipped here names a seq this segment does not hold; it
     * stays unmatched and verify_segment reports it. */
    while (ck->next < ck->n && ck->v[ck->next].seq < seq)
        ck->next++;
    for (; ck->next < ck->n && ck->v[ck->next].seq == seq; ck->next++) {
        struct ckpt *c = &ck->v[ck->next];
        if (memcmp(c->hash, h, AUDIT_HASH_LEN) != 0)
            return fail(r, s->ckpt, c->line, seq, "signed checkpoint does not match the "
                        "chain at seq %llu (entries up to it were changed)",
                        (unsigned long long)seq);
        if (c->time_us < tus)
            return fail(r, s->ckpt, c->line, seq, "checkpoint is older than its entry");
        c->matched = true;
        if (seq > r->last_signed_seq)
            r->last_signed_seq = seq;
        r->checkpoints++;
    }
    return 0;
}

/*
 * Check one line of segment s (R7.2, R7.6).  Every entry is scanned, its
 * seq, time and link checked and its hash recomputed.  The whole line is
 * parsed and checked as well (full_check) when nothing signed vouches for
 * its bytes yet -- its seq is above the segment's last checkpoint --, for
 * the writer's own "audit.*" entries (verify reads their info), and for
 * every entry with AUDIT_VERIFY_DEEP.  An entry at or below a checkpoint
 * whose signature verified is accepted only if the chain reaches that
 * checkpoint unchanged, so its bytes are the writer's, and the writer
 * emits only schema-valid, canonical lines.
 */
static int
check_line(struct walk *w, const struct audit_segment *s, const char *p, size_t len,
           uint64_t line, bool first_in_seg, struct seg_ckpts *ck,
           struct audit_verify_result *r)
{
    uint8_t h[AUDIT_HASH_LEN];
    struct entry e = { 0 };
    json_t *o = NULL, *info = NULL;
    int rc = -1;

    if (audit_line_split(p, len, &e.canon_len, e.stored) != 0)
        return fail(r, s->path, line, 0, "not an audit entry (no hash member at the end)");
    if (scan_entry(p, &e) != 0)
        return fail(r, s->path, line, 0, "malformed entry");
    if (w->deep || ck->n == 0 || e.seq > ck->v[ck->n - 1].seq ||
        (e.action_len > 6 && memcmp(e.action, "audit.", 6) == 0)) {
        char why[128];
        if ((o = full_check(p, len, &e, why, sizeof(why))) == NULL)
            return fail(r, s->path, line, e.seq, "%s", why);
        info = json_object_get(json_object_get(o, "event"), "info");
        r->checked_in_full++;
    }
    if (w->next_seq == 0) {
        /* The first entry we have: seq 1 from the zero hash, or the first
         * entry of a segment after retention, whose segment start carries
         * prev_hash. */
        if (e.seq != s->first_seq) {
            fail(r, s->path, line, e.seq, "first entry is seq %llu, the segment name says "
                 "%llu", (unsigned long long)e.seq, (unsigned long long)s->first_seq);
            goto out;
        }
        if (e.seq != 1 && (!action_is(&e, "audit.segment_start") ||
                           hex_field(info, "prev_hash", w->prev, AUDIT_HASH_LEN) != 0)) {
            fail(r, s->path, line, e.seq, "the log starts at seq %llu without a segment "
                 "start naming the previous hash", (unsigned long long)e.seq);
            goto out;
        }
        w->next_seq = e.seq;
    }
    if (e.seq != w->next_seq) {
        fail(r, s->path, line, e.seq, "seq %llu where %llu was expected (entry deleted, "
             "inserted or reordered)", (unsigned long long)e.seq,
             (unsigned long long)w->next_seq);
        goto out;
    }
    if (first_in_seg && e.seq != s->first_seq) {
        fail(r, s->path, line, e.seq, "segment name says it starts at %llu",
             (unsigned long long)s->first_seq);
        goto out;
    }
    if (first_in_seg && e.time_us / 1000000 != s->start_s) {
        fail(r, s->path, line, e.seq, "segment name does not match its first entry's time");
        goto out;
    }
    if (e.time_us < w->last_time) {
        fail(r, s->path, line, e.seq, "time goes backwards (R7.6)");
        goto out;
    }
    if (first_in_seg && action_is(&e, "audit.segment_start")) {
        uint8_t ph[AUDIT_HASH_LEN];
        if (hex_field(info, "prev_hash", ph, AUDIT_HASH_LEN) != 0 ||
            memcmp(ph, w->prev, AUDIT_HASH_LEN) != 0) {
            fail(r, s->path, line, e.seq, "segment start names a different previous hash");
            goto out;
        }
    }
    if (action_is(&e, "audit.segments_deleted") &&
        json_is_integer(json_object_get(info, "through_seq")))
        w->deleted_through = (uint64_t)json_integer_value(json_object_get(info, "through_seq"));
    audit_chain_step(w->prev, p, e.canon_len, h);
    if (memcmp(h, e.stored, AUDIT_HASH_LEN) != 0) {
        fail(r, s->path, line, e.seq, "hash mismatch: entry changed (or an earlier entry was "
             "changed, removed or inserted)");
        goto out;
    }
    if (match_checkpoints(ck, s, e.seq, h, e.time_us, r) != 0)
        goto out;
    memcpy(w->prev, h, AUDIT_HASH_LEN);
    w->last_time = e.time_us;
    w->next_seq = e.seq + 1;
    r->last_seq = e.seq;
    r->entries++;
    rc = 0;
out:
    json_decref(o);
    return rc;
}

static int
verify_segment(struct walk *w, const struct audit_segment *s, const uint8_t pk[AUDIT_PK_LEN],
               struct audit_verify_result *r)
{
    struct seg_ckpts ck = { NULL, 0, 0 };
    struct seg_reader rd;
    const char *p;
    size_t len;
    uint64_t line = 0;
    int rc = -1, got;

    if (load_checkpoints(s, pk, &ck.v, &ck.n, r) != 0)
        return -1;
    if (reader_open(&rd, s) != 0) {
        fail(r, s->path, 0, 0, "cannot read the segment: %s", strerror(errno));
        goto out;
    }
    while ((got = reader_next(&rd, &p, &len)) == 1) {
        line++;
        if (check_line(w, s, p, len, line, line == 1, &ck, r) != 0)
            goto out;
    }
    if (got == -2) {
        fail(r, s->path, line + 1, 0, "incomplete last line (truncated or torn)");
        goto out;
    }
    if (got < 0) {
        fail(r, s->path, line + 1, 0, "cannot read the segment: %s",
             errno == E2BIG ? "a line longer than any the writer writes" : strerror(errno));
        goto out;
    }
    if (line == 0) {
        fail(r, s->path, 0, 0, "empty segment");
        goto out;
    }
    for (size_t i = 0; i < ck.n; i++)
        if (!ck.v[i].matched) {
            fail(r, s->ckpt, ck.v[i].line, ck.v[i].seq, "signed checkpoint at seq %llu has no "
                 "entry: the segment was truncated (its last entry is %llu)",
                 (unsigned long long)ck.v[i].seq, (unsigned long long)r->last_seq);
            goto out;
        }
    rc = 0;
out:
    reader_close(&rd);
    free(ck.v);
    return rc;
}

int
audit_verify_flags(const char *dir, const uint8_t *pk_in, unsigned flags,
                   struct audit_verify_result *r)
{
    struct audit_segment *segs = NULL;
    struct walk w;
    uint8_t pk[AUDIT_PK_LEN];
    char path[PATH_MAX];
    size_t n;
    int rc = -1;

    memset(r, 0, sizeof(*r));
    memset(&w, 0, sizeof(w));
    r->ok = true;
    w.deep = (flags & AUDIT_VERIFY_DEEP) != 0;
    if (pk_in != NULL) {
        memcpy(pk, pk_in, sizeof(pk));
    } else if (util_path_join(path, sizeof(path), dir, AUDIT_SIGNING_PUB) != 0 ||
               audit_pubkey_load(path, pk) != 0) {
        return fail(r, path, 0, 0, "cannot read the audit signing public key");
    }
    if (audit_segments_list(dir, &segs, &n) != 0)
        return fail(r, dir, 0, 0, "cannot list the audit directory: %s", strerror(errno));
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && segs[i].first_seq == segs[i - 1].first_seq) {
            fail(r, segs[i].path, 0, 0, "two segments start at seq %llu",
                 (unsigned long long)segs[i].first_seq);
            goto out;
        }
        if (verify_segment(&w, &segs[i], pk, r) != 0)
            goto out;
        r->segments++;
        if (i == 0)
            r->first_seq = segs[0].first_seq;
    }
    if (n > 0 && r->first_seq > 1 && w.deleted_through + 1 < r->first_seq) {
        fail(r, segs[0].path, 1, r->first_seq, "entries before seq %llu are missing and no "
             "retention event accounts for them", (unsigned long long)r->first_seq);
        goto out;
    }
    memcpy(r->head, w.prev, AUDIT_HASH_LEN);
    rc = 0;
out:
    free(segs);
    return rc;
}

int
audit_verify(const char *dir, const uint8_t *pk, struct audit_verify_result *r)
{
    return audit_verify_flags(dir, pk, 0, r);
}
