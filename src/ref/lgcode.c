/*
 * lgcode.c - local government codes and the shipped municipality table.
 *
 * The table is reference data the operator may replace, so the loader
 * trusts nothing in it: strict CSV (libcsv), a fixed header, bounded file
 * and field sizes, strict UTF-8, a check digit on every code, no
 * duplicates and parents that exist.  The first problem fails the whole
 * load with a sentence naming the line; a half-loaded table is never
 * returned.
 */
#include "ref/lgcode.h"

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

/* The shipped file is about 230 KiB; 4 MiB leaves room for growth while
 * keeping a wrong path (a log, a dump) from being slurped. */
#define LG_FILE_MAX   (4u * 1024 * 1024)
/* Longest field accepted.  The longest name today is under 60 bytes. */
#define LG_FIELD_MAX  256
/* libcsv's field buffer is never allowed past this (see lg_realloc). */
#define LG_CSVBUF_MAX (4 * LG_FIELD_MAX)
#define LG_CHUNK      16384
#define LG_NFIELDS    10

enum lg_col {
    COL_LGCODE = 0, COL_PREF_CODE, COL_PREF_NAME, COL_PREF_KANA,
    COL_PREF_KATAKANA, COL_NAME, COL_NAME_KANA, COL_NAME_KATAKANA,
    COL_KIND, COL_PARENT
};

static const char *const lg_header[LG_NFIELDS] = {
    "lgcode", "pref_code", "pref_name", "pref_kana", "pref_katakana",
    "name", "name_kana", "name_katakana", "kind", "parent_lgcode"
};

/* Entries point at these, so kind strings need no arena space. */
static const char *const lg_kinds[] = {
    "prefecture", "designated_city", "ward", "city", "town", "village",
    "special_ward"
};
#define KIND_PREFECTURE      0
#define KIND_DESIGNATED_CITY 1
#define KIND_WARD            2

struct lgcode_table {
    struct lgcode_entry *entries;   /* sorted by code */
    size_t               n;
    char                *arena;     /* every string the entries point at */
};

/* A row while loading: strings are arena offsets because the arena moves
 * as it grows; they become pointers once it is final. */
struct lg_row {
    char   code[LGCODE_LEN + 1];
    char   parent[LGCODE_LEN + 1];
    size_t pref_name, name, name_kana;
    int    kind;
    size_t line;
};

struct lg_load {
    const char    *fname;           /* basename of the path, for messages */
    char          *err;
    size_t         errlen;
    bool           failed;

    size_t         line;            /* physical line being fed to libcsv */
    size_t         record_line;     /* line the current record began on */
    bool           in_record;
    bool           header_done;
    size_t         nfield;          /* fields seen in the current record */

    struct lg_row  cur;
    struct lg_row *rows;
    size_t         nrows, caprows;

    char          *arena;
    size_t         arena_len, arena_cap;
};

bool
lgcode_valid(const char *s)
{
    static const unsigned w[LGCODE_LEN - 1] = { 6, 5, 4, 3, 2 };
    unsigned sum = 0;

    if (s == NULL)
        return false;
    /* Stops at the first non-digit, so never reads past a short string. */
    for (size_t i = 0; i < LGCODE_LEN; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    if (s[LGCODE_LEN] != '\0')
        return false;
    for (size_t i = 0; i < LGCODE_LEN - 1; i++)
        sum += (unsigned)(s[i] - '0') * w[i];
    return (unsigned)(s[LGCODE_LEN - 1] - '0') == (11 - sum % 11) % 10;
}

static void lg_fail(struct lg_load *ld, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the first error only: later callbacks from libcsv are ignored. */
static void
lg_fail(struct lg_load *ld, size_t line, const char *fmt, ...)
{
    va_list ap;
    int n = 0;

    if (ld->failed)
        return;
    ld->failed = true;
    if (ld->err == NULL || ld->errlen == 0)
        return;
    if (line > 0)
        n = snprintf(ld->err, ld->errlen, "%s line %zu: ", ld->fname, line);
    else
        n = snprintf(ld->err, ld->errlen, "%s: ", ld->fname);
    if (n < 0 || (size_t)n >= ld->errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past
 * U+10FFFF.  Control characters (C0, DEL) are refused as well: names never
 * contain them, and a newline inside a quoted field would also break the
 * line numbers in our messages.
 */
static bool
lg_text_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], cp;
        size_t len;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;           /* continuation byte, C0/C1, F5..FF */
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += len;
    }
    return true;
}

static bool
lg_all_digits(const char *s, size_t n, size_t want)
{
    if (n != want)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* Copy a validated text field into the arena; *off receives its offset. */
static int
lg_arena_add(struct lg_load *ld, const char *s, size_t n, size_t *off)
{
    if (ld->arena_cap - ld->arena_len < n + 1) {
        size_t cap = ld->arena_cap ? ld->arena_cap : 64 * 1024;
        char *p;

        while (cap - ld->arena_len < n + 1) {
            /* Bounded by the file size, so this cannot overflow. */
            cap *= 2;
        }
        p = realloc(ld->arena, cap);
        if (p == NULL)
            return -1;
        ld->arena = p;
        ld->arena_cap = cap;
    }
    memcpy(ld->arena + ld->arena_len, s, n);
    ld->arena[ld->arena_len + n] = '\0';
    *off = ld->arena_len;
    ld->arena_len += n + 1;
    return 0;
}

static void
lg_header_field(struct lg_load *ld, const char *s, size_t n)
{
    size_t i = ld->nfield;

    if (i == 0 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
        lg_fail(ld, ld->record_line, "the file starts with a byte-order "
                "mark; save it as UTF-8 without BOM");
        return;
    }
    if (i >= LG_NFIELDS)
        return;                     /* counted; reported at the row's end */
    if (strlen(lg_header[i]) != n || memcmp(s, lg_header[i], n) != 0)
        lg_fail(ld, ld->record_line, "header column %zu must be \"%s\"",
                i + 1, lg_header[i]);
}

static void
lg_data_field(struct lg_load *ld, const char *s, size_t n)
{
    struct lg_row *r = &ld->cur;
    size_t line = ld->record_line, i = ld->nfield;
    size_t *off = NULL;

    switch (i) {
    case COL_LGCODE:
        /* Echo the code only once it is known to be 6 digits. */
        if (!lg_all_digits(s, n, LGCODE_LEN)) {
            lg_fail(ld, line, "lgcode is not 6 ASCII digits");
            return;
        }
        memcpy(r->code, s, LGCODE_LEN);
        r->code[LGCODE_LEN] = '\0';
        if (!lgcode_valid(r->code))
            lg_fail(ld, line, "code %s has a wrong check digit", r->code);
        return;
    case COL_PREF_CODE:
        if (!lg_all_digits(s, n, 2) || memcmp(s, r->code, 2) != 0)
            lg_fail(ld, line, "pref_code does not match the first two "
                    "digits of code %s", r->code);
        return;
    case COL_KIND:
        for (size_t k = 0; k < sizeof(lg_kinds) / sizeof(lg_kinds[0]); k++) {
            if (strlen(lg_kinds[k]) == n && memcmp(s, lg_kinds[k], n) == 0) {
                r->kind = (int)k;
                return;
            }
        }
        lg_fail(ld, line, "code %s has an unknown kind", r->code);
        return;
    case COL_PARENT:
        if (r->kind == KIND_PREFECTURE) {
            if (n != 0)
                lg_fail(ld, line, "prefecture %s must have an empty "
                        "parent_lgcode", r->code);
            return;
        }
        if (!lg_all_digits(s, n, LGCODE_LEN)) {
            lg_fail(ld, line, "parent_lgcode of code %s is not 6 ASCII "
                    "digits", r->code);
            return;
        }
        memcpy(r->parent, s, LGCODE_LEN);
        r->parent[LGCODE_LEN] = '\0';
        if (!lgcode_valid(r->parent))
            lg_fail(ld, line, "parent_lgcode %s of code %s has a wrong "
                    "check digit", r->parent, r->code);
        return;
    default:
        break;
    }

    if (i >= LG_NFIELDS)
        return;                     /* counted; reported at the row's end */
    /* Text columns: pref_name .. name_katakana. */
    if (n == 0) {
        lg_fail(ld, line, "column %s of code %s is empty", lg_header[i],
                r->code);
        return;
    }
    if (!lg_text_ok((const unsigned char *)s, n)) {
        lg_fail(ld, line, "column %s of code %s is not valid UTF-8 text",
                lg_header[i], r->code);
        return;
    }
    if (i == COL_PREF_NAME)
        off = &r->pref_name;
    else if (i == COL_NAME)
        off = &r->name;
    else if (i == COL_NAME_KANA)
        off = &r->name_kana;
    if (off != NULL && lg_arena_add(ld, s, n, off) != 0)
        lg_fail(ld, line, "out of memory");
}

/* libcsv field callback.  CSV_APPEND_NULL guarantees s[n] == '\0', but
 * the field may hold NUL bytes, so only `n` is trusted. */
static void
lg_field_cb(void *field, size_t n, void *arg)
{
    struct lg_load *ld = arg;
    const char *s = field != NULL ? field : "";

    if (ld->failed)
        return;
    if (n > LG_FIELD_MAX) {
        lg_fail(ld, ld->record_line, "field %zu is longer than %d bytes",
                ld->nfield + 1, LG_FIELD_MAX);
        return;
    }
    if (ld->header_done)
        lg_data_field(ld, s, n);
    else
        lg_header_field(ld, s, n);
    ld->nfield++;
}

static void
lg_row_cb(int term, void *arg)
{
    struct lg_load *ld = arg;
    size_t line = ld->record_line;

    (void)term;
    ld->in_record = false;
    if (ld->failed)
        return;
    if (ld->nfield != LG_NFIELDS) {
        lg_fail(ld, line, "expected %d fields, found %zu", LG_NFIELDS,
                ld->nfield);
        return;
    }
    ld->nfield = 0;
    if (!ld->header_done) {
        ld->header_done = true;
        return;
    }
    if (ld->nrows == ld->caprows) {
        size_t cap = ld->caprows ? ld->caprows * 2 : 2048;
        struct lg_row *p;

        if (cap > SIZE_MAX / sizeof(*p) ||
            (p = realloc(ld->rows, cap * sizeof(*p))) == NULL) {
            lg_fail(ld, line, "out of memory");
            return;
        }
        ld->rows = p;
        ld->caprows = cap;
    }
    ld->cur.line = line;
    ld->rows[ld->nrows++] = ld->cur;
    memset(&ld->cur, 0, sizeof(ld->cur));
}

/* Stateless, hence safe when several threads load tables at once: libcsv
 * grows its field buffer through this and gets NULL past the cap, so an
 * endless field cannot eat memory before lg_field_cb sees it. */
static void *
lg_realloc(void *p, size_t n)
{
    if (n > LG_CSVBUF_MAX)
        return NULL;
    return realloc(p, n);
}

/* Treat no byte as padding: libcsv would otherwise trim spaces and tabs
 * around unquoted fields, and the table must be taken verbatim. */
static int
lg_no_space(unsigned char c)
{
    (void)c;
    return 0;
}

static int
lg_row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct lg_row *)a)->code,
                  ((const struct lg_row *)b)->code);
}

static int
lg_code_row_cmp(const void *code, const void *row)
{
    return strcmp(code, ((const struct lg_row *)row)->code);
}

static const struct lg_row *
lg_find_row(const struct lg_load *ld, const char *code)
{
    return bsearch(code, ld->rows, ld->nrows, sizeof(*ld->rows),
                   lg_code_row_cmp);
}

/*
 * Whole-table checks, once every row is in and sorted: duplicates and
 * parents.  The error reported is the one on the earliest line, as if the
 * file had been checked top to bottom.
 */
static void
lg_check_table(struct lg_load *ld)
{
    size_t bad_line = SIZE_MAX;
    char msg[160] = "";

    for (size_t i = 0; i < ld->nrows; i++) {
        const struct lg_row *r = &ld->rows[i], *p;

        if (i > 0 && strcmp(ld->rows[i - 1].code, r->code) == 0) {
            size_t a = ld->rows[i - 1].line, b = r->line;
            size_t later = a > b ? a : b, first = a > b ? b : a;

            if (later < bad_line) {
                bad_line = later;
                snprintf(msg, sizeof(msg), "code %s already appears on "
                         "line %zu", r->code, first);
            }
        }
        if (r->kind == KIND_PREFECTURE || r->line >= bad_line)
            continue;
        p = lg_find_row(ld, r->parent);
        if (p == NULL) {
            bad_line = r->line;
            snprintf(msg, sizeof(msg), "parent_lgcode %s of code %s is "
                     "not in the table", r->parent, r->code);
        } else if (r->kind == KIND_WARD ? p->kind != KIND_DESIGNATED_CITY
                                        : p->kind != KIND_PREFECTURE) {
            bad_line = r->line;
            snprintf(msg, sizeof(msg), "parent_lgcode %s of %s %s is a %s",
                     r->parent, lg_kinds[r->kind], r->code,
                     lg_kinds[p->kind]);
        }
    }
    if (bad_line != SIZE_MAX)
        lg_fail(ld, bad_line, "%s", msg);
}

static bool
lg_has_content(const char *s, size_t n)
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
lg_feed(struct lg_load *ld, struct csv_parser *p, const char *buf, size_t len)
{
    size_t off = 0;

    while (off < len && !ld->failed) {
        const char *seg = buf + off;
        const char *nl = memchr(seg, '\n', len - off);
        size_t n = nl != NULL ? (size_t)(nl - seg) + 1 : len - off;

        /* libcsv skips CR and LF between records; anything else starts
         * one. */
        if (!ld->in_record && lg_has_content(seg, n)) {
            ld->in_record = true;
            ld->record_line = ld->line;
        }
        if (csv_parse(p, seg, n, lg_field_cb, lg_row_cb, ld) != n) {
            int e = csv_error(p);

            if (e == CSV_EPARSE)
                lg_fail(ld, ld->line, "malformed CSV quoting (a quote "
                        "inside an unquoted field, or text after a "
                        "closing quote)");
            else if (e == CSV_ENOMEM && csv_get_buffer_size(p) > LG_FIELD_MAX)
                lg_fail(ld, ld->record_line, "field %zu is longer than "
                        "%d bytes", ld->nfield + 1, LG_FIELD_MAX);
            else
                lg_fail(ld, ld->line, "CSV error: %s", csv_strerror(e));
        }
        /* A line break always ends the record, unless it sits inside
         * quotes: no field of this table may contain one, so say where
         * the quote was left open rather than fail lines later. */
        if (nl != NULL && ld->in_record)
            lg_fail(ld, ld->record_line, "unterminated quoted field");
        if (nl != NULL)
            ld->line++;
        off += n;
    }
}

/* Stream the file through libcsv.  Returns 0 or -1 (ld->failed set). */
static int
lg_parse_file(struct lg_load *ld, const char *path)
{
    struct csv_parser p;
    struct stat st;
    char buf[LG_CHUNK];
    size_t total = 0;
    int fd, saved, errnum = EINVAL;

    /* No O_NOFOLLOW: packagers may symlink shared data into place, and
     * this file holds no secret. */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        saved = errno;
        lg_fail(ld, 0, "cannot open: %s", strerror(saved));
        errno = saved;
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        saved = errno;
        lg_fail(ld, 0, "cannot stat: %s", strerror(saved));
        close(fd);
        errno = saved;
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > LG_FILE_MAX) {
        saved = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        if (saved == EINVAL)
            lg_fail(ld, 0, "not a regular file");
        else
            lg_fail(ld, 0, "larger than %u bytes", LG_FILE_MAX);
        close(fd);
        errno = saved;
        return -1;
    }
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        close(fd);
        lg_fail(ld, 0, "out of memory");
        errno = ENOMEM;
        return -1;
    }
    csv_set_realloc_func(&p, lg_realloc);
    csv_set_space_func(&p, lg_no_space);

    ld->line = 1;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof(buf));

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            errnum = errno;
            lg_fail(ld, 0, "read error: %s", strerror(errnum));
            break;
        }
        if (r == 0)
            break;
        /* The file may grow after fstat; the bound holds regardless. */
        total += (size_t)r;
        if (total > LG_FILE_MAX) {
            errnum = EFBIG;
            lg_fail(ld, 0, "larger than %u bytes", LG_FILE_MAX);
            break;
        }
        lg_feed(ld, &p, buf, (size_t)r);
        if (ld->failed)
            break;
    }
    close(fd);

    /* On failure skip csv_fini: it would hand us the partial record. */
    if (!ld->failed && csv_fini(&p, lg_field_cb, lg_row_cb, ld) != 0)
        lg_fail(ld, ld->record_line, "unterminated quoted field");
    csv_free(&p);
    if (!ld->failed && !ld->header_done)
        lg_fail(ld, 0, "empty file (no header row)");
    if (!ld->failed && ld->nrows == 0)
        lg_fail(ld, 0, "no rows after the header");
    if (ld->failed) {
        errno = errnum;
        return -1;
    }
    return 0;
}

int
lgcode_table_load(const char *csv_path, struct lgcode_table **out,
                  char *err, size_t errlen)
{
    struct lg_load ld;
    struct lgcode_table *t = NULL;
    const char *slash;
    char *arena;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL || csv_path == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "lgcode_table_load: no path or no result");
        errno = EINVAL;
        return -1;
    }
    *out = NULL;

    memset(&ld, 0, sizeof(ld));
    slash = strrchr(csv_path, '/');
    ld.fname = slash != NULL && slash[1] != '\0' ? slash + 1 : csv_path;
    ld.err = err;
    ld.errlen = errlen;

    if (lg_parse_file(&ld, csv_path) != 0)
        goto fail;
    qsort(ld.rows, ld.nrows, sizeof(*ld.rows), lg_row_cmp);
    lg_check_table(&ld);
    if (ld.failed) {
        errno = EINVAL;
        goto fail;
    }

    /* Final layout: shrink the arena (it may move), then turn offsets
     * into pointers.  A failed shrink keeps the larger block. */
    arena = realloc(ld.arena, ld.arena_len);
    if (arena != NULL)
        ld.arena = arena;
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->entries = calloc(ld.nrows, sizeof(*t->entries))) == NULL) {
        lg_fail(&ld, 0, "out of memory");
        errno = ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < ld.nrows; i++) {
        const struct lg_row *r = &ld.rows[i];
        struct lgcode_entry *e = &t->entries[i];

        memcpy(e->code, r->code, sizeof(e->code));
        memcpy(e->parent, r->parent, sizeof(e->parent));
        e->pref_name = ld.arena + r->pref_name;
        e->name = ld.arena + r->name;
        e->name_kana = ld.arena + r->name_kana;
        e->kind = lg_kinds[r->kind];
    }
    t->n = ld.nrows;
    t->arena = ld.arena;            /* the table owns the arena now */
    free(ld.rows);
    *out = t;
    return 0;

fail:
    {
        int saved = errno;

        if (t != NULL)
            free(t->entries);
        free(t);
        free(ld.rows);
        free(ld.arena);
        errno = saved;
    }
    return -1;
}

static int
lg_entry_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct lgcode_entry *)elem)->code);
}

const struct lgcode_entry *
lgcode_lookup(const struct lgcode_table *t, const char *code)
{
    if (t == NULL || code == NULL || strnlen(code, LGCODE_LEN + 1) != LGCODE_LEN)
        return NULL;
    return bsearch(code, t->entries, t->n, sizeof(*t->entries), lg_entry_cmp);
}

size_t
lgcode_count(const struct lgcode_table *t)
{
    return t != NULL ? t->n : 0;
}

void
lgcode_table_free(struct lgcode_table *t)
{
    if (t == NULL)
        return;
    free(t->entries);
    free(t->arena);
    free(t);
}

enum lgcode_scope
lgcode_scope(const struct lgcode_table *t, const char *code)
{
    const struct lgcode_entry *e;

    if (code != NULL && strcmp(code, LGCODE_NATIONAL) == 0)
        return LGCODE_SCOPE_NATIONAL;
    if (t == NULL || (e = lgcode_lookup(t, code)) == NULL)
        return LGCODE_SCOPE_UNKNOWN;
    return strcmp(e->kind, "prefecture") == 0 ? LGCODE_SCOPE_PREFECTURE
                                              : LGCODE_SCOPE_MUNICIPALITY;
}

const char *
lgcode_scope_name(enum lgcode_scope s)
{
    switch (s) {
    case LGCODE_SCOPE_MUNICIPALITY: return "municipality";
    case LGCODE_SCOPE_PREFECTURE: return "prefecture";
    case LGCODE_SCOPE_NATIONAL: return "national";
    case LGCODE_SCOPE_UNKNOWN: break;
    }
    return "unknown";
}
