/*
 * reftable.c - the strict loader of small reference tables in CSV.
 *
 * The file is streamed through libcsv one physical line at a time, so that
 * every callback knows the line its record began on; libcsv's field buffer
 * is capped, so an endless field cannot eat memory before the cell
 * callback sees it.
 */
#include "ref/reftable.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <unistr.h>

/* libcsv's field buffer is never allowed past this (see rt_realloc). */
#define RT_CSVBUF_MAX (4 * REFTABLE_FIELD_MAX)
#define RT_CHUNK      16384

struct reftable {
    const struct reftable_spec *spec;
    void       *arg;
    const char *fname;              /* basename of the path, for messages */
    char       *err;
    size_t      errlen;
    bool        failed;

    size_t      line;               /* physical line being fed to libcsv */
    size_t      record_line;        /* line the current record began on */
    bool        in_record;
    bool        header_done;
    size_t      nfield;             /* fields seen in the current record */
    size_t      nrows;              /* data rows handed to spec->row */
};

static void
rt_vfail(struct reftable *t, size_t line, const char *fmt, va_list ap)
{
    int n;

    /* Keep the first error only: libcsv goes on calling back after it. */
    if (t->failed)
        return;
    t->failed = true;
    if (t->err == NULL || t->errlen == 0)
        return;
    if (line > 0)
        n = snprintf(t->err, t->errlen, "%s line %zu: ", t->fname, line);
    else
        n = snprintf(t->err, t->errlen, "%s: ", t->fname);
    if (n < 0 || (size_t)n >= t->errlen)
        return;
    vsnprintf(t->err + n, t->errlen - (size_t)n, fmt, ap);
}

void
reftable_fail_at(struct reftable *t, size_t line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rt_vfail(t, line, fmt, ap);
    va_end(ap);
}

void
reftable_fail(struct reftable *t, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    rt_vfail(t, t->record_line, fmt, ap);
    va_end(ap);
}

size_t
reftable_line(const struct reftable *t)
{
    return t->record_line;
}

bool
reftable_failed(const struct reftable *t)
{
    return t->failed;
}

bool
reftable_text_ok(const char *s, size_t n)
{
    /* libunistring's check is strict: no overlong forms, no surrogates,
     * nothing past U+10FFFF. */
    if (u8_check((const uint8_t *)s, n) != NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static void
rt_header_field(struct reftable *t, const char *s, size_t n)
{
    const char *want;

    if (t->nfield == 0 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
        reftable_fail(t, "the file starts with a byte-order mark; save it "
                      "as UTF-8 without BOM");
        return;
    }
    if (t->nfield >= t->spec->ncols)
        return;                     /* counted; reported at the row's end */
    want = t->spec->header[t->nfield];
    if (strlen(want) != n || memcmp(s, want, n) != 0)
        reftable_fail(t, "header column %zu must be \"%s\"", t->nfield + 1,
                      want);
}

/* libcsv field callback. */
static void
rt_field_cb(void *field, size_t n, void *arg)
{
    struct reftable *t = arg;
    const char *s = field != NULL ? field : "";

    if (t->failed)
        return;
    if (n > REFTABLE_FIELD_MAX) {
        reftable_fail(t, "field %zu is longer than %d bytes", t->nfield + 1,
                      REFTABLE_FIELD_MAX);
        return;
    }
    if (!t->header_done)
        rt_header_field(t, s, n);
    else if (t->nfield < t->spec->ncols)
        t->spec->cell(t, t->arg, t->nfield, s, n);
    t->nfield++;
}

/* libcsv row callback. */
static void
rt_row_cb(int term, void *arg)
{
    struct reftable *t = arg;

    (void)term;
    t->in_record = false;
    if (t->failed)
        return;
    if (t->nfield != t->spec->ncols) {
        reftable_fail(t, "expected %zu fields, found %zu", t->spec->ncols,
                      t->nfield);
        return;
    }
    t->nfield = 0;
    if (!t->header_done) {
        t->header_done = true;
        return;
    }
    t->spec->row(t, t->arg);
    t->nrows++;
}

/* Stateless, hence safe when several threads load tables at once: libcsv
 * grows its field buffer through this and gets NULL past the cap. */
static void *
rt_realloc(void *p, size_t n)
{
    if (n > RT_CSVBUF_MAX)
        return NULL;
    return realloc(p, n);
}

/* Treat no byte as padding: libcsv would otherwise trim spaces and tabs
 * around unquoted fields, and the table must be taken verbatim. */
static int
rt_no_space(unsigned char c)
{
    (void)c;
    return 0;
}

static bool
rt_has_content(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\r' && s[i] != '\n')
            return true;
    }
    return false;
}

/* Feed one chunk to libcsv a line at a time, so that callbacks know which
 * physical line they are on. */
static void
rt_feed(struct reftable *t, struct csv_parser *p, const char *buf,
        size_t len)
{
    size_t off = 0;

    while (off < len && !t->failed) {
        const char *seg = buf + off;
        const char *nl = memchr(seg, '\n', len - off);
        size_t n = nl != NULL ? (size_t)(nl - seg) + 1 : len - off;

        /* libcsv skips CR and LF between records; anything else starts
         * one. */
        if (!t->in_record && rt_has_content(seg, n)) {
            t->in_record = true;
            t->record_line = t->line;
        }
        if (csv_parse(p, seg, n, rt_field_cb, rt_row_cb, t) != n) {
            int e = csv_error(p);

            if (e == CSV_EPARSE)
                reftable_fail_at(t, t->line, "malformed CSV quoting (a "
                                 "quote inside an unquoted field, or text "
                                 "after a closing quote)");
            else if (e == CSV_ENOMEM &&
                     csv_get_buffer_size(p) > REFTABLE_FIELD_MAX)
                reftable_fail(t, "field %zu is longer than %d bytes",
                              t->nfield + 1, REFTABLE_FIELD_MAX);
            else
                reftable_fail_at(t, t->line, "CSV error: %s",
                                 csv_strerror(e));
        }
        /* A line break always ends the record, unless it sits inside
         * quotes: no cell of a reference table may contain one, so say
         * where the quote was left open rather than fail lines later. */
        if (nl != NULL && t->in_record)
            reftable_fail(t, "unterminated quoted field");
        if (nl != NULL)
            t->line++;
        off += n;
    }
}

/* Open `path` as a regular file of at most file_max bytes; its size in
 * *size.  -1 with errno and the load failed. */
static int
rt_open(struct reftable *t, const char *path, size_t *size)
{
    struct stat st;
    int fd, saved;

    fd = open(path, O_RDONLY | O_CLOEXEC |
              (t->spec->nofollow ? O_NOFOLLOW : 0));
    if (fd < 0) {
        saved = errno;
        reftable_fail_at(t, 0, "cannot open: %s", strerror(saved));
        errno = saved;
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        saved = errno;
        reftable_fail_at(t, 0, "cannot stat: %s", strerror(saved));
        close(fd);
        errno = saved;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        reftable_fail_at(t, 0, "not a regular file");
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if ((uint64_t)st.st_size > t->spec->file_max) {
        reftable_fail_at(t, 0, "larger than %zu bytes", t->spec->file_max);
        close(fd);
        errno = EFBIG;
        return -1;
    }
    *size = (size_t)st.st_size;
    return fd;
}

/* Stream the open file through libcsv.  Returns 0 or an errno value. */
static int
rt_parse(struct reftable *t, int fd)
{
    struct csv_parser p;
    char buf[RT_CHUNK];
    size_t total = 0;
    int errnum = EINVAL;

    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        reftable_fail_at(t, 0, "out of memory");
        return ENOMEM;
    }
    csv_set_realloc_func(&p, rt_realloc);
    csv_set_space_func(&p, rt_no_space);

    t->line = 1;
    while (!t->failed) {
        ssize_t r = read(fd, buf, sizeof(buf));

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            errnum = errno;
            reftable_fail_at(t, 0, "read error: %s", strerror(errnum));
            break;
        }
        if (r == 0)
            break;
        /* The file may grow after fstat; the bound holds regardless. */
        total += (size_t)r;
        if (total > t->spec->file_max) {
            errnum = EFBIG;
            reftable_fail_at(t, 0, "larger than %zu bytes",
                             t->spec->file_max);
            break;
        }
        rt_feed(t, &p, buf, (size_t)r);
    }

    /* On failure skip csv_fini: it would hand us the partial record. */
    if (!t->failed && csv_fini(&p, rt_field_cb, rt_row_cb, t) != 0)
        reftable_fail(t, "unterminated quoted field");
    csv_free(&p);
    if (!t->failed && !t->header_done)
        reftable_fail_at(t, 0, "empty file (no header row)");
    if (!t->failed && t->nrows == 0)
        reftable_fail_at(t, 0, "no rows after the header");
    if (!t->failed && t->spec->finish != NULL)
        t->spec->finish(t, t->arg);
    return t->failed ? errnum : 0;
}

int
reftable_load(const char *path, const struct reftable_spec *spec, void *arg,
              char *err, size_t errlen)
{
    struct reftable t;
    const char *slash;
    size_t size = 0;
    int fd, rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (path == NULL || spec == NULL || spec->header == NULL ||
        spec->cell == NULL || spec->row == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "reftable_load: no path or no table");
        errno = EINVAL;
        return -1;
    }
    memset(&t, 0, sizeof(t));
    t.spec = spec;
    t.arg = arg;
    slash = strrchr(path, '/');
    t.fname = slash != NULL && slash[1] != '\0' ? slash + 1 : path;
    t.err = err;
    t.errlen = errlen;

    if ((fd = rt_open(&t, path, &size)) < 0)
        return -1;
    if (spec->start != NULL && spec->start(&t, arg, size) != 0) {
        reftable_fail_at(&t, 0, "out of memory");
        rc = ENOMEM;
    } else {
        rc = rt_parse(&t, fd);
    }
    close(fd);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}
