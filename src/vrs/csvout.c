/*
 * csvout.c - the CSV writer of exports (R2.7): RFC 4180 quoting, CRLF,
 * UTF-8 or CP932, formula neutralisation on every cell.
 */
#include "vrs/csvout.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "common/util.h"
#include "text/csvcell.h"

struct csvout {
    struct csvout_opts o;
    csvout_write_fn    write;
    void              *arg;
    iconv_t            cd;              /* UTF-8 -> CP932, or (iconv_t)-1 */
    char              *buf;             /* CSVOUT_BUF bytes */
    size_t             len;
    char              *conv;            /* one converted cell */
    size_t             conv_cap;
    bool               first;           /* no cell yet in this record */
    int                err;             /* sticky errno, 0 if fine */
    unsigned long long written;
};

int
csvout_new(const struct csvout_opts *o, csvout_write_fn write, void *arg,
           struct csvout **out)
{
    struct csvout *w;

    if (out == NULL || o == NULL || write == NULL ||
        (o->encoding != CSVOUT_UTF8 && o->encoding != CSVOUT_CP932)) {
        errno = EINVAL;
        return -1;
    }
    *out = NULL;
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return -1;
    w->o = *o;
    w->write = write;
    w->arg = arg;
    w->cd = (iconv_t)-1;
    w->first = true;
    /* CP932 is never longer than the UTF-8 it comes from (1 byte for
     * ASCII and half-width kana, 2 for characters of 2-4 UTF-8 bytes). */
    w->conv_cap = CSVOUT_CELL_MAX + 1;
    if ((w->buf = malloc(CSVOUT_BUF)) == NULL ||
        (w->conv = malloc(w->conv_cap)) == NULL) {
        csvout_free(w);
        errno = ENOMEM;
        return -1;
    }
    if (o->encoding == CSVOUT_CP932 &&
        (w->cd = iconv_open("CP932", "UTF-8")) == (iconv_t)-1) {
        int e = errno;
        csvout_free(w);
        errno = e;
        return -1;
    }
    *out = w;
    return 0;
}

static int
fail(struct csvout *w, int e)
{
    if (w->err == 0)
        w->err = e;
    errno = w->err;
    return -1;
}

int
csvout_flush(struct csvout *w)
{
    if (w == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (w->err != 0)
        return fail(w, w->err);
    if (w->len > 0) {
        if (w->write(w->arg, w->buf, w->len) != 0)
            return fail(w, errno != 0 ? errno : EIO);
        w->written += w->len;
        util_wipe(w->buf, w->len);
        w->len = 0;
    }
    return 0;
}

static int
put(struct csvout *w, const char *s, size_t n)
{
    while (n > 0) {
        size_t room = CSVOUT_BUF - w->len, k = n < room ? n : room;

        memcpy(w->buf + w->len, s, k);
        w->len += k;
        s += k;
        n -= k;
        if (w->len == CSVOUT_BUF && csvout_flush(w) != 0)
            return -1;
    }
    return 0;
}

/* The cell in the output encoding: *out points at s itself or at w->conv. */
static int
encode(struct csvout *w, const char *s, size_t n, const char **out, size_t *outlen)
{
    char *in = (char *)s, *o = w->conv;
    size_t inleft = n, oleft = w->conv_cap - 1;

    if (u8_check((const uint8_t *)s, n) != NULL)
        return fail(w, EILSEQ);
    if (w->o.encoding == CSVOUT_UTF8) {
        *out = s;
        *outlen = n;
        return 0;
    }
    iconv(w->cd, NULL, NULL, NULL, NULL);
    if (iconv(w->cd, &in, &inleft, &o, &oleft) == (size_t)-1 ||
        iconv(w->cd, NULL, NULL, &o, &oleft) == (size_t)-1) {
        util_wipe(w->conv, w->conv_cap);
        return fail(w, errno == E2BIG ? E2BIG : EILSEQ);
    }
    *out = w->conv;
    *outlen = (size_t)(o - w->conv);
    return 0;
}

int
csvout_cell(struct csvout *w, const char *s)
{
    const char *enc;
    size_t n, len;
    bool quote;
    int rc = 0;

    if (w == NULL || s == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (w->err != 0)
        return fail(w, w->err);
    n = strlen(s);
    if (n > CSVOUT_CELL_MAX)
        return fail(w, E2BIG);
    if (encode(w, s, n, &enc, &len) != 0)
        return -1;
    /* Separators are ASCII and never a CP932 trail byte (0x40 and up), so
     * looking for them in the encoded bytes is exact. */
    quote = memchr(enc, ',', len) != NULL || memchr(enc, '"', len) != NULL ||
            memchr(enc, '\r', len) != NULL || memchr(enc, '\n', len) != NULL;
    if (!w->first)
        rc = put(w, ",", 1);
    if (rc == 0 && quote)
        rc = put(w, "\"", 1);
    /* The one rule of every CSV mamori writes (text/csvcell.h), asked of
     * the UTF-8 cell: its first byte is ASCII in CP932 too. */
    if (rc == 0 && csvcell_formula_like(s))
        rc = put(w, "'", 1);            /* OWASP: shown as text */
    for (size_t i = 0; rc == 0 && i < len;) {
        const char *q = memchr(enc + i, '"', len - i);
        size_t k = q != NULL ? (size_t)(q - (enc + i)) + 1 : len - i;

        rc = put(w, enc + i, k);
        if (rc == 0 && q != NULL)
            rc = put(w, "\"", 1);       /* a quote is doubled */
        i += k;
    }
    if (rc == 0 && quote)
        rc = put(w, "\"", 1);
    if (enc == w->conv)
        util_wipe(w->conv, len);
    w->first = false;
    return rc;
}

int
csvout_end(struct csvout *w)
{
    if (w == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (w->err != 0)
        return fail(w, w->err);
    w->first = true;
    return w->o.crlf ? put(w, "\r\n", 2) : put(w, "\n", 1);
}

int
csvout_record(struct csvout *w, const char *const *cells, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (csvout_cell(w, cells[i]) != 0)
            return -1;
    return csvout_end(w);
}

unsigned long long
csvout_bytes(const struct csvout *w)
{
    return w != NULL ? w->written : 0;
}

void
csvout_free(struct csvout *w)
{
    if (w == NULL)
        return;
    if (w->cd != (iconv_t)-1)
        iconv_close(w->cd);
    if (w->buf != NULL) {
        util_wipe(w->buf, CSVOUT_BUF);
        free(w->buf);
    }
    if (w->conv != NULL) {
        util_wipe(w->conv, w->conv_cap);
        free(w->conv);
    }
    free(w);
}
