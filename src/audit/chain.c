/*
 * chain.c - audit log format: hash chain, checkpoint messages, segment
 * names, and the verifier (R7.2, R7.3, R7.6).
 */
#include "audit/chain.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

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

int
audit_line_split(const char *line, size_t len, size_t *canon_len,
                 uint8_t hash[AUDIT_HASH_LEN])
{
    const char *suf;
    char hex[2 * AUDIT_HASH_LEN + 1];

    if (len <= AUDIT_SUFFIX_LEN + 1 || line[0] != '{')
        return -1;
    suf = line + len - AUDIT_SUFFIX_LEN;
    if (memcmp(suf, ",\"hash\":\"", 9) != 0 || memcmp(suf + 73, "\"}", 2) != 0 ||
        !hex_lower(suf + 9, 64))
        return -1;
    memcpy(hex, suf + 9, 64);
    hex[64] = '\0';
    if (util_hex_decode(hex, hash, AUDIT_HASH_LEN) != 0)
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

struct walk {
    uint8_t  prev[AUDIT_HASH_LEN];
    uint64_t next_seq;         /* 0 before the first entry */
    int64_t  last_time;
    uint64_t deleted_through;  /* highest seq a retention event accounts for */
};

/* Check one line of segment s. */
static int
check_line(struct walk *w, const struct audit_segment *s, char *p, size_t len,
           uint64_t line, bool first_in_seg, struct ckpt *ck, size_t nck,
           struct audit_verify_result *r)
{
    uint8_t stored[AUDIT_HASH_LEN], h[AUDIT_HASH_LEN];
    size_t clen;
    json_t *o, *ev, *info;
    const char *t, *action;
    int64_t tus;
    uint64_t seq;

    if (audit_line_split(p, len, &clen, stored) != 0)
        return fail(r, s->path, line, 0, "not an audit entry (no hash member at the end)");
    o = json_loadb(p, len, JSON_REJECT_DUPLICATES, NULL);
    ev = json_object_get(o, "event");
    t = json_string_value(json_object_get(o, "time"));
    if (!json_is_integer(json_object_get(o, "seq")) || !json_is_object(ev) || t == NULL ||
        strlen(t) != AUDIT_TIME_LEN || audit_time_parse(t, &tus) != 0 ||
        json_object_size(o) != 4 || strncmp(p, "{\"seq\":", 7) != 0) {
        json_decref(o);
        return fail(r, s->path, line, 0, "malformed entry");
    }
    seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    action = json_string_value(json_object_get(ev, "action"));
    info = json_object_get(ev, "info");
    if (w->next_seq == 0) {
        /* The first entry we have: seq 1 from the zero hash, or the first
         * entry of a segment after retention, which carries prev_hash. */
        if (seq != s->first_seq) {
            json_decref(o);
            return fail(r, s->path, line, seq, "first entry is seq %llu, the segment "
                        "name says %llu", (unsigned long long)seq,
                        (unsigned long long)s->first_seq);
        }
        if (seq != 1 && hex_field(info, "prev_hash", w->prev, AUDIT_HASH_LEN) != 0) {
            json_decref(o);
            return fail(r, s->path, line, seq, "the log starts at seq %llu without a "
                        "segment start naming the previous hash", (unsigned long long)seq);
        }
        w->next_seq = seq;
    }
    if (seq != w->next_seq) {
        json_decref(o);
        return fail(r, s->path, line, seq, "seq %llu where %llu was expected "
                    "(entry deleted, inserted or reordered)", (unsigned long long)seq,
                    (unsigned long long)w->next_seq);
    }
    if (first_in_seg && seq != s->first_seq) {
        json_decref(o);
        return fail(r, s->path, line, seq, "segment name says it starts at %llu",
                    (unsigned long long)s->first_seq);
    }
    if (first_in_seg && tus / 1000000 != s->start_s) {
        json_decref(o);
        return fail(r, s->path, line, seq, "segment name does not match its first entry's time");
    }
    if (tus < w->last_time) {
        json_decref(o);
        return fail(r, s->path, line, seq, "time goes backwards (R7.6)");
    }
    if (first_in_seg && action != NULL && strcmp(action, "audit.segment_start") == 0) {
        uint8_t ph[AUDIT_HASH_LEN];
        if (hex_field(info, "prev_hash", ph, AUDIT_HASH_LEN) != 0 ||
            memcmp(ph, w->prev, AUDIT_HASH_LEN) != 0) {
            json_decref(o);
            return fail(r, s->path, line, seq, "segment start names a different previous hash");
        }
    }
    if (action != NULL && strcmp(action, "audit.segments_deleted") == 0 &&
        json_is_integer(json_object_get(info, "through_seq")))
        w->deleted_through = (uint64_t)json_integer_value(json_object_get(info, "through_seq"));
    json_decref(o);
    audit_chain_step(w->prev, p, clen, h);
    if (memcmp(h, stored, AUDIT_HASH_LEN) != 0)
        return fail(r, s->path, line, seq, "hash mismatch: entry changed (or an earlier "
                    "entry was changed, removed or inserted)");
    for (size_t i = 0; i < nck; i++) {
        if (ck[i].seq != seq)
            continue;
        if (memcmp(ck[i].hash, h, AUDIT_HASH_LEN) != 0)
            return fail(r, s->ckpt, ck[i].line, seq, "signed checkpoint does not match the "
                        "chain at seq %llu (entries up to it were changed)",
                        (unsigned long long)seq);
        if (ck[i].time_us < tus)
            return fail(r, s->ckpt, ck[i].line, seq, "checkpoint is older than its entry");
        ck[i].matched = true;
        if (seq > r->last_signed_seq)
            r->last_signed_seq = seq;
        r->checkpoints++;
    }
    memcpy(w->prev, h, AUDIT_HASH_LEN);
    w->last_time = tus;
    w->next_seq = seq + 1;
    r->last_seq = seq;
    r->entries++;
    return 0;
}

static int
verify_segment(struct walk *w, const struct audit_segment *s, const uint8_t pk[AUDIT_PK_LEN],
               struct audit_verify_result *r)
{
    struct ckpt *ck = NULL;
    size_t nck = 0, len;
    char *buf = NULL;
    uint64_t line = 0;
    int rc = -1;

    if (load_checkpoints(s, pk, &ck, &nck, r) != 0)
        return -1;
    if (audit_segment_read(s, &buf, &len) != 0) {
        fail(r, s->path, 0, 0, "cannot read the segment: %s", strerror(errno));
        goto out;
    }
    if (len == 0) {
        fail(r, s->path, 0, 0, "empty segment");
        goto out;
    }
    for (char *p = buf; p < buf + len;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        line++;
        if (nl == NULL) {
            fail(r, s->path, line, 0, "incomplete last line (truncated or torn)");
            goto out;
        }
        if (check_line(w, s, p, (size_t)(nl - p), line, line == 1, ck, nck, r) != 0)
            goto out;
        p = nl + 1;
    }
    for (size_t i = 0; i < nck; i++)
        if (!ck[i].matched) {
            fail(r, s->ckpt, ck[i].line, ck[i].seq, "signed checkpoint at seq %llu has no "
                 "entry: the segment was truncated (its last entry is %llu)",
                 (unsigned long long)ck[i].seq, (unsigned long long)r->last_seq);
            goto out;
        }
    rc = 0;
out:
    free(buf);
    free(ck);
    return rc;
}

int
audit_verify(const char *dir, const uint8_t *pk_in, struct audit_verify_result *r)
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
