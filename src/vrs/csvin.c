/*
 * csvin.c - the streaming CSV reader of imports (R2.6).
 *
 * Modelled on the municipality table's loader (src/ref/lgcode.c): libcsv
 * in strict mode, fed one physical line at a time so that every callback
 * knows its line, no space trimming, a capped field buffer.  Unlike that
 * loader it does not stop at the first problem: a bad record is reported
 * and skipped, so an import can name every bad line.
 */
#include "vrs/csvin.h"

#include <csv.h>
#include <errno.h>
#include <iconv.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <unistr.h>

#include "common/util.h"

/* libcsv's own field buffer never grows past this (see cap_realloc):
 * a field longer than any field_max is refused before it eats memory. */
#define CSVIN_CSVBUF_MAX (CSVIN_FIELD_LIMIT + 1024u)

static const uint8_t utf8_bom[3] = { 0xef, 0xbb, 0xbf };

struct csvin {
    struct csvin_opts      o;
    struct csvin_callbacks cb;
    struct csv_parser      p;
    bool                   p_live;      /* p initialised */
    iconv_t                cd;          /* CP932 -> UTF-8, or (iconv_t)-1 */

    uint64_t line;                      /* physical line being fed */
    uint64_t record_line;               /* line the current record began on */
    bool     in_record;
    bool     skip_line;                 /* after broken quoting: drop the
                                           rest of this physical line */
    bool     rec_bad;                   /* current record already refused */
    size_t   nfield;                    /* fields seen in the current record */

    bool     bom_done;                  /* the first bytes were looked at */
    uint8_t  bom_pend[3];
    size_t   nbom_pend;

    /* The current record's fields, converted, each NUL-terminated. */
    char    *arena;
    size_t   arena_len, arena_cap;
    size_t  *offs;
    size_t  *lens;
    const char **ptrs;

    enum csvin_status status;           /* sticky once not CSVIN_OK */
};

/* Stateless, hence safe with several readers in several threads: libcsv
 * grows its buffer through this and gets NULL past the cap. */
static void *
cap_realloc(void *p, size_t n)
{
    if (n > CSVIN_CSVBUF_MAX)
        return NULL;
    return realloc(p, n);
}

/* No byte is padding: fields are taken verbatim. */
static int
no_space(unsigned char c)
{
    (void)c;
    return 0;
}

static void
parser_wipe_free(struct csvin *r)
{
    if (!r->p_live)
        return;
    /* libcsv frees its buffer without clearing it; it held a field. */
    if (r->p.entry_buf != NULL && r->p.entry_size > 0)
        util_wipe(r->p.entry_buf, r->p.entry_size);
    csv_free(&r->p);
    r->p_live = false;
}

static int
parser_start(struct csvin *r)
{
    if (csv_init(&r->p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0)
        return -1;
    csv_set_realloc_func(&r->p, cap_realloc);
    csv_set_space_func(&r->p, no_space);
    csv_set_blk_size(&r->p, 1024);
    r->p_live = true;
    return 0;
}

static void
record_reset(struct csvin *r)
{
    if (r->arena_len > 0)
        util_wipe(r->arena, r->arena_len);
    r->arena_len = 0;
    r->nfield = 0;
    r->rec_bad = false;
}

/* Report a problem; a non-zero answer from the callback stops reading. */
static void
problem(struct csvin *r, uint64_t line, size_t field, enum csvin_problem p)
{
    if (r->status != CSVIN_OK)
        return;
    if (r->cb.problem != NULL && r->cb.problem(r->cb.arg, line, field, p) != 0)
        r->status = CSVIN_STOPPED;
}

static void
refuse_field(struct csvin *r, enum csvin_problem p)
{
    r->rec_bad = true;
    problem(r, r->record_line, r->nfield + 1, p);
}

/* Room for one more field of at most field_max bytes plus its NUL. */
static int
arena_reserve(struct csvin *r)
{
    size_t need = r->arena_len + r->o.field_max + 1, cap;
    char *p;

    if (need <= r->arena_cap)
        return 0;
    cap = r->arena_cap ? r->arena_cap : 4096;
    while (cap < need)
        cap *= 2;               /* bounded by fields_max * (field_max + 1) */
    p = malloc(cap);
    if (p == NULL)
        return -1;
    /* Copy and wipe rather than realloc: the old block held field values. */
    if (r->arena_len > 0)
        memcpy(p, r->arena, r->arena_len);
    if (r->arena != NULL) {
        util_wipe(r->arena, r->arena_cap);
        free(r->arena);
    }
    r->arena = p;
    r->arena_cap = cap;
    return 0;
}

static bool
all_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

/* Convert a CP932 field into dst (room for field_max bytes + NUL).
 * Returns the UTF-8 length, or 0 with *bad set. */
static size_t
from_cp932(struct csvin *r, const char *s, size_t n, char *dst,
           enum csvin_problem *bad)
{
    char *in = (char *)s, *out = dst;
    size_t inleft = n, outleft = r->o.field_max;

    iconv(r->cd, NULL, NULL, NULL, NULL);       /* initial state */
    if (iconv(r->cd, &in, &inleft, &out, &outleft) == (size_t)-1) {
        *bad = errno == E2BIG ? CSVIN_P_FIELD_TOO_LONG : CSVIN_P_NOT_CP932;
        return 0;
    }
    return r->o.field_max - outleft;
}

/* libcsv field callback.  With CSV_APPEND_NULL s[n] == '\0', but the
 * field may hold NUL bytes, so only n is trusted. */
static void
on_field(void *field, size_t n, void *arg)
{
    struct csvin *r = arg;
    const char *s = field != NULL ? field : "";
    enum csvin_problem bad = 0;
    char *dst;
    size_t len;

    if (r->status != CSVIN_OK || r->rec_bad) {
        r->nfield++;
        return;
    }
    if (r->nfield >= r->o.fields_max) {
        r->rec_bad = true;
        problem(r, r->record_line, 0, CSVIN_P_TOO_MANY_FIELDS);
        r->nfield++;
        return;
    }
    if (n > r->o.field_max) {
        refuse_field(r, CSVIN_P_FIELD_TOO_LONG);
        r->nfield++;
        return;
    }
    if (memchr(s, '\0', n) != NULL) {
        refuse_field(r, CSVIN_P_NUL);
        r->nfield++;
        return;
    }
    if (arena_reserve(r) != 0) {
        r->status = CSVIN_ERR_NOMEM;
        return;
    }
    dst = r->arena + r->arena_len;
    if (r->o.encoding == CSVIN_CP932 && !all_ascii(s, n)) {
        len = from_cp932(r, s, n, dst, &bad);
    } else {
        if (r->o.encoding == CSVIN_UTF8 && u8_check((const uint8_t *)s, n) != NULL)
            bad = CSVIN_P_NOT_UTF8;
        else
            memcpy(dst, s, n);
        len = n;
    }
    if (bad != 0) {
        util_wipe(dst, r->o.field_max);
        refuse_field(r, bad);
        r->nfield++;
        return;
    }
    dst[len] = '\0';
    r->offs[r->nfield] = r->arena_len;
    r->lens[r->nfield] = len;
    r->arena_len += len + 1;
    r->nfield++;
}

/* libcsv row callback. */
static void
on_row(int term, void *arg)
{
    struct csvin *r = arg;

    (void)term;
    r->in_record = false;
    if (r->status == CSVIN_OK && !r->rec_bad) {
        for (size_t i = 0; i < r->nfield; i++)
            r->ptrs[i] = r->arena + r->offs[i];
        if (r->cb.record(r->cb.arg, r->record_line, r->ptrs, r->lens,
                         r->nfield) != 0)
            r->status = CSVIN_STOPPED;
    }
    record_reset(r);
}

static bool
has_content(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '\r' && s[i] != '\n')
            return true;
    return false;
}

/* libcsv stopped in the middle of a line: say why, then forget the record
 * and the rest of the line and start afresh on the next one. */
static void
parse_failed(struct csvin *r, bool line_ended)
{
    int e = csv_error(&r->p);

    if (e == CSV_EPARSE)
        problem(r, r->line, 0, CSVIN_P_QUOTING);
    else if ((e == CSV_ENOMEM || e == CSV_ETOOBIG) &&
             csv_get_buffer_size(&r->p) > r->o.field_max)
        problem(r, r->record_line, r->nfield + 1, CSVIN_P_FIELD_TOO_LONG);
    else if (r->status == CSVIN_OK)
        r->status = CSVIN_ERR_NOMEM;
    parser_wipe_free(r);
    record_reset(r);
    r->in_record = false;
    r->skip_line = !line_ended;
    if (r->status == CSVIN_OK && parser_start(r) != 0)
        r->status = CSVIN_ERR_NOMEM;
}

/* The end of the next piece: just after the first CR or LF, or len. */
static size_t
piece_len(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\n' || s[i] == '\r')
            return i + 1;
    return len;
}

/*
 * Feed bytes a piece at a time, each ending at a CR or LF, so that
 * callbacks know their line: a record can end only at the last byte of a
 * piece (libcsv ends records at an unquoted CR or LF), hence a record
 * that starts in a piece starts at its first byte that is not a line
 * break, however the input was split into chunks.
 */
static void
feed_lines(struct csvin *r, const char *buf, size_t len)
{
    size_t off = 0;

    while (off < len && r->status == CSVIN_OK) {
        const char *seg = buf + off;
        size_t n = piece_len(seg, len - off);
        bool nl = seg[n - 1] == '\n';

        if (r->skip_line) {
            if (nl) {
                r->skip_line = false;
                r->line++;
            }
            off += n;
            continue;
        }
        /* libcsv skips CR and LF between records; anything else starts one. */
        if (!r->in_record && has_content(seg, n)) {
            r->in_record = true;
            r->record_line = r->line;
        }
        if (csv_parse(&r->p, seg, n, on_field, on_row, r) != n &&
            r->status == CSVIN_OK)
            parse_failed(r, nl);
        if (nl)
            r->line++;
        off += n;
    }
}

enum csvin_status
csvin_new(const struct csvin_opts *o, const struct csvin_callbacks *cb,
          struct csvin **out)
{
    struct csvin *r;

    if (out == NULL)
        return CSVIN_ERR_ARG;
    *out = NULL;
    if (o == NULL || cb == NULL || cb->record == NULL ||
        (o->encoding != CSVIN_UTF8 && o->encoding != CSVIN_CP932) ||
        o->field_max > CSVIN_FIELD_LIMIT || o->fields_max > CSVIN_FIELDS_LIMIT)
        return CSVIN_ERR_ARG;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return CSVIN_ERR_NOMEM;
    r->o = *o;
    r->cb = *cb;
    r->cd = (iconv_t)-1;
    if (r->o.field_max == 0)
        r->o.field_max = CSVIN_FIELD_DEFAULT;
    if (r->o.fields_max == 0)
        r->o.fields_max = CSVIN_FIELDS_DEFAULT;
    r->line = 1;
    r->offs = calloc(r->o.fields_max, sizeof(*r->offs));
    r->lens = calloc(r->o.fields_max, sizeof(*r->lens));
    r->ptrs = calloc(r->o.fields_max, sizeof(*r->ptrs));
    if (r->offs == NULL || r->lens == NULL || r->ptrs == NULL ||
        parser_start(r) != 0) {
        csvin_free(r);
        return CSVIN_ERR_NOMEM;
    }
    if (r->o.encoding == CSVIN_CP932 &&
        (r->cd = iconv_open("UTF-8", "CP932")) == (iconv_t)-1) {
        csvin_free(r);
        return CSVIN_ERR_ARG;
    }
    *out = r;
    return CSVIN_OK;
}

/* The first three bytes decide about a byte-order mark; they may arrive
 * one at a time. */
static size_t
take_bom(struct csvin *r, const uint8_t *b, size_t len)
{
    size_t used = 0;

    while (!r->bom_done && used < len) {
        r->bom_pend[r->nbom_pend] = b[used++];
        if (r->bom_pend[r->nbom_pend] != utf8_bom[r->nbom_pend]) {
            r->bom_done = true;
            feed_lines(r, (const char *)r->bom_pend, r->nbom_pend + 1);
        } else if (++r->nbom_pend == sizeof(utf8_bom)) {
            r->bom_done = true;
            if (r->o.encoding == CSVIN_CP932) {
                /* UTF-8 saved with a BOM, read as CP932: every non-ASCII
                 * byte would be misread, so say so once and stop. */
                problem(r, 1, 0, CSVIN_P_UTF8_BOM_IN_CP932);
                if (r->status == CSVIN_OK)
                    r->status = CSVIN_STOPPED;
            }
        }
    }
    return used;
}

enum csvin_status
csvin_feed(struct csvin *r, const void *buf, size_t len)
{
    const uint8_t *b = buf;
    size_t used;

    if (r == NULL)
        return CSVIN_ERR_ARG;
    if (r->status != CSVIN_OK || len == 0)
        return r->status;
    used = take_bom(r, b, len);
    if (used < len && r->status == CSVIN_OK)
        feed_lines(r, (const char *)b + used, len - used);
    return r->status;
}

enum csvin_status
csvin_finish(struct csvin *r)
{
    if (r == NULL)
        return CSVIN_ERR_ARG;
    if (r->status != CSVIN_OK)
        return r->status;
    if (!r->bom_done && r->nbom_pend > 0) {
        r->bom_done = true;
        feed_lines(r, (const char *)r->bom_pend, r->nbom_pend);
    }
    if (r->status != CSVIN_OK || r->skip_line)
        return r->status;
    if (csv_fini(&r->p, on_field, on_row, r) != 0 && r->status == CSVIN_OK) {
        problem(r, r->record_line, 0, CSVIN_P_UNTERMINATED);
        record_reset(r);
    }
    return r->status;
}

void
csvin_free(struct csvin *r)
{
    if (r == NULL)
        return;
    parser_wipe_free(r);
    if (r->cd != (iconv_t)-1)
        iconv_close(r->cd);
    if (r->arena != NULL) {
        util_wipe(r->arena, r->arena_cap);
        free(r->arena);
    }
    free(r->offs);
    free(r->lens);
    free(r->ptrs);
    free(r);
}

enum csvin_status
csvin_read_cb(csvin_read_fn rd, void *rd_arg, size_t chunk, const struct csvin_opts *o,
              const struct csvin_callbacks *cb,
              void (*bytes)(void *arg, const uint8_t *buf, size_t n),
              void *bytes_arg)
{
    struct csvin *r = NULL;
    enum csvin_status st;
    uint8_t *buf;
    int saved = 0;

    if (rd == NULL)
        return CSVIN_ERR_ARG;
    if (chunk == 0)
        chunk = CSVIN_CHUNK;
    if ((st = csvin_new(o, cb, &r)) != CSVIN_OK)
        return st;
    if ((buf = malloc(chunk)) == NULL) {
        csvin_free(r);
        return CSVIN_ERR_NOMEM;
    }
    for (;;) {
        ssize_t got = rd(rd_arg, buf, chunk);

        if (got > 0 && (size_t)got > chunk) {
            got = -1;                   /* a broken reader: fail, never overrun */
            errno = EIO;
        }
        if (got < 0) {
            saved = errno;
            st = CSVIN_ERR_READ;
            break;
        }
        if (got == 0) {
            st = csvin_finish(r);
            break;
        }
        if (bytes != NULL)
            bytes(bytes_arg, buf, (size_t)got);
        if ((st = csvin_feed(r, buf, (size_t)got)) != CSVIN_OK)
            break;
    }
    util_wipe(buf, chunk);
    free(buf);
    csvin_free(r);
    if (st == CSVIN_ERR_READ)
        errno = saved;
    return st;
}

/* read(2) on the descriptor passed as arg, retrying interrupted calls. */
static ssize_t
fd_reader(void *arg, void *buf, size_t n)
{
    const int *fd = arg;
    ssize_t got;

    do
        got = read(*fd, buf, n);
    while (got < 0 && errno == EINTR);
    return got;
}

enum csvin_status
csvin_read_fd(int fd, size_t chunk, const struct csvin_opts *o,
              const struct csvin_callbacks *cb,
              void (*bytes)(void *arg, const uint8_t *buf, size_t n),
              void *bytes_arg)
{
    return csvin_read_cb(fd_reader, &fd, chunk, o, cb, bytes, bytes_arg);
}

enum csvin_status
csvin_read_mem(const void *buf, size_t len, size_t chunk,
               const struct csvin_opts *o, const struct csvin_callbacks *cb)
{
    const uint8_t *b = buf;
    struct csvin *r = NULL;
    enum csvin_status st;
    size_t off = 0;

    if (buf == NULL && len > 0)
        return CSVIN_ERR_ARG;
    if ((st = csvin_new(o, cb, &r)) != CSVIN_OK)
        return st;
    if (chunk == 0)
        chunk = len > 0 ? len : 1;
    while (off < len && st == CSVIN_OK) {
        size_t n = len - off < chunk ? len - off : chunk;

        st = csvin_feed(r, b + off, n);
        off += n;
    }
    if (st == CSVIN_OK)
        st = csvin_finish(r);
    csvin_free(r);
    return st;
}

const char *
csvin_problem_text(enum csvin_problem p)
{
    switch (p) {
    case CSVIN_P_FIELD_TOO_LONG:
        return "is too long";
    case CSVIN_P_TOO_MANY_FIELDS:
        return "has too many fields";
    case CSVIN_P_NOT_UTF8:
        return "is not valid UTF-8 (is the file CP932? see --encoding)";
    case CSVIN_P_NOT_CP932:
        return "holds bytes that are not CP932 (Shift_JIS) text "
               "(is the file UTF-8? see --encoding)";
    case CSVIN_P_NUL:
        return "contains a NUL byte";
    case CSVIN_P_QUOTING:
        return "has broken quoting: a quote inside an unquoted field, or "
               "text after a closing quote";
    case CSVIN_P_UNTERMINATED:
        return "has a quoted field that is never closed";
    case CSVIN_P_UTF8_BOM_IN_CP932:
        return "starts with a UTF-8 byte-order mark: the file is UTF-8, "
               "not CP932 (see --encoding)";
    }
    return "is not valid";
}
