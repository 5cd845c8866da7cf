/*
 * catalogue.c - load and look up the vaccine catalogue (R2.3).
 *
 * The catalogue is reference data an operator may edit, so the loader
 * trusts nothing in it, like the municipality table (src/ref/lgcode.c):
 * strict CSV through libcsv, an exact header, a bounded file, every cell
 * checked, unique codes, and a series never shared across categories.
 * The first problem fails the whole load with a sentence naming the line;
 * a half-loaded catalogue is never returned.
 */
#include "vrs/catalogue.h"

#include <csv.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "common/util.h"

/* The shipped file is about 3 KiB; a wrong path (a log, a dump) must not
 * be slurped. */
#define CAT_FILE_MAX   (256u * 1024)
#define CAT_FIELD_MAX  256
#define CAT_CSVBUF_MAX (4 * CAT_FIELD_MAX)
#define CAT_NFIELDS    11
/* Upper bounds that only catch typos (a dose count of 40, an interval in
 * hours); the real values are far below. */
#define CAT_DOSE_MAX     99
#define CAT_INTERVAL_MAX 3660
#define CAT_AGE_MAX      1500

enum cat_col {
    COL_CODE = 0, COL_CATEGORY, COL_SERIES, COL_DISEASE_JA, COL_PRODUCT_JA,
    COL_PRODUCT_EN, COL_MAKER_JA, COL_MAX_DOSE, COL_MIN_INTERVAL,
    COL_MIN_AGE, COL_SOURCE
};

static const char *const cat_header[CAT_NFIELDS] = {
    "code", "category", "series", "disease_ja", "product_ja", "product_en",
    "maker_ja", "max_dose", "min_interval_days", "min_age_months", "source"
};

/* Index = enum vrs_category.  A code starts with its category's prefix,
 * so "a-hib" can never be filed as B類 by a slip in the category cell. */
static const struct {
    const char *name;
    const char *prefix;
} cat_categories[] = {
    { "covid", "covid-" },
    { "routine_a", "a-" },
    { "routine_b", "b-" },
};
#define CAT_NCATEGORIES (sizeof(cat_categories) / sizeof(cat_categories[0]))

struct cat_row {
    struct vrs_vaccine v;
    size_t             line;
};

struct vrs_catalogue {
    struct vrs_vaccine *entries;    /* sorted by code */
    size_t              n;
    char               *arena;      /* every string the entries point at */
};

struct cat_load {
    const char     *fname;          /* basename of the path, for messages */
    char           *err;
    size_t          errlen;
    bool            failed;

    size_t          line;           /* physical line being fed to libcsv */
    size_t          record_line;    /* line the current record began on */
    bool            in_record;
    bool            header_done;
    size_t          nfield;

    struct cat_row  cur;
    struct cat_row *rows;
    size_t          nrows, caprows;

    /* Sized from the file length up front and never moved, so entries
     * may point into it while loading. */
    char           *arena;
    size_t          arena_len, arena_cap;
};

static void cat_fail(struct cat_load *ld, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Keep the first error only: libcsv goes on calling back after it. */
static void
cat_fail(struct cat_load *ld, size_t line, const char *fmt, ...)
{
    va_list ap;
    int n;

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

/* Valid UTF-8 (libunistring) without C0 controls or DEL: a tab or a
 * newline in a product name is a damaged file, not data. */
static bool
cat_text_ok(const char *s, size_t n)
{
    if (u8_check((const uint8_t *)s, n) != NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

/* Codes and series: lower-case ASCII letters, digits and inner hyphens.
 * Only a cell that passes is ever echoed in a message. */
static bool
cat_token_ok(const char *s, size_t n)
{
    if (n == 0 || n > VRS_CODE_MAX || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

/* An optional decimal cell: "" leaves *out alone, otherwise min..max. */
static bool
cat_number_ok(const char *s, size_t n, uint64_t min, uint64_t max,
              uint64_t *out)
{
    char buf[8];

    if (n == 0)
        return true;
    if (n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return util_parse_u64(buf, min, max, out) == 0;
}

static const char *
cat_arena_add(struct cat_load *ld, const char *s, size_t n)
{
    char *p;

    /* Cannot happen (the arena holds the whole file plus a NUL per byte),
     * but a NULL entry must never get past the load. */
    if (ld->arena_cap - ld->arena_len < n + 1) {
        cat_fail(ld, ld->record_line, "internal error: string arena full");
        return "";
    }
    p = ld->arena + ld->arena_len;
    memcpy(p, s, n);
    p[n] = '\0';
    ld->arena_len += n + 1;
    return p;
}

static void
cat_header_field(struct cat_load *ld, const char *s, size_t n)
{
    size_t i = ld->nfield;

    if (i == 0 && n >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
        cat_fail(ld, ld->record_line, "the file starts with a byte-order "
                 "mark; save it as UTF-8 without BOM");
        return;
    }
    if (i >= CAT_NFIELDS)
        return;                     /* counted; reported at the row's end */
    if (strlen(cat_header[i]) != n || memcmp(s, cat_header[i], n) != 0)
        cat_fail(ld, ld->record_line, "header column %zu must be \"%s\"",
                 i + 1, cat_header[i]);
}

static void
cat_code_field(struct cat_load *ld, const char *s, size_t n)
{
    if (!cat_token_ok(s, n)) {
        cat_fail(ld, ld->record_line, "code must be 1 to %d lower-case "
                 "letters, digits and inner hyphens", VRS_CODE_MAX);
        return;
    }
    ld->cur.v.code = cat_arena_add(ld, s, n);
}

static void
cat_category_field(struct cat_load *ld, const char *s, size_t n)
{
    const char *code = ld->cur.v.code;

    for (size_t k = 0; k < CAT_NCATEGORIES; k++) {
        const char *name = cat_categories[k].name;
        const char *prefix = cat_categories[k].prefix;

        if (strlen(name) != n || memcmp(s, name, n) != 0)
            continue;
        ld->cur.v.category = (enum vrs_category)k;
        if (strncmp(code, prefix, strlen(prefix)) != 0 ||
            code[strlen(prefix)] == '\0')
            cat_fail(ld, ld->record_line, "code %s of category %s must "
                     "start with \"%s\"", code, name, prefix);
        return;
    }
    cat_fail(ld, ld->record_line, "code %s has an unknown category (use "
             "covid, routine_a or routine_b)", code);
}

/* Text columns: required, except maker_ja, which is empty where several
 * makers supply a routine vaccine. */
static void
cat_text_field(struct cat_load *ld, size_t i, const char *s, size_t n)
{
    const char **dst = NULL;

    if (n == 0 && i != COL_MAKER_JA) {
        cat_fail(ld, ld->record_line, "column %s of code %s is empty",
                 cat_header[i], ld->cur.v.code);
        return;
    }
    if (!cat_text_ok(s, n)) {
        cat_fail(ld, ld->record_line, "column %s of code %s is not valid "
                 "UTF-8 text", cat_header[i], ld->cur.v.code);
        return;
    }
    if (i == COL_DISEASE_JA)
        dst = &ld->cur.v.disease_ja;
    else if (i == COL_PRODUCT_JA)
        dst = &ld->cur.v.product_ja;
    else if (i == COL_PRODUCT_EN)
        dst = &ld->cur.v.product_en;
    else
        dst = &ld->cur.v.maker_ja;
    *dst = cat_arena_add(ld, s, n);
}

static void
cat_number_field(struct cat_load *ld, size_t i, const char *s, size_t n)
{
    static const uint64_t lo[] = { 1, 1, 0 }, hi[] = {
        CAT_DOSE_MAX, CAT_INTERVAL_MAX, CAT_AGE_MAX
    };
    size_t k = i - COL_MAX_DOSE;
    uint64_t v = 0;

    if (!cat_number_ok(s, n, lo[k], hi[k], &v)) {
        cat_fail(ld, ld->record_line, "%s of code %s must be empty or a "
                 "whole number from %llu to %llu", cat_header[i],
                 ld->cur.v.code, (unsigned long long)lo[k],
                 (unsigned long long)hi[k]);
        return;
    }
    if (i == COL_MAX_DOSE)
        ld->cur.v.max_dose = (unsigned)v;
    else if (i == COL_MIN_INTERVAL)
        ld->cur.v.min_interval_days = (unsigned)v;
    else
        ld->cur.v.min_age_months = n == 0 ? -1 : (int)v;
}

static void
cat_data_field(struct cat_load *ld, const char *s, size_t n)
{
    size_t i = ld->nfield;

    switch (i) {
    case COL_CODE:
        cat_code_field(ld, s, n);
        return;
    case COL_CATEGORY:
        cat_category_field(ld, s, n);
        return;
    case COL_SERIES:
        if (!cat_token_ok(s, n))
            cat_fail(ld, ld->record_line, "series of code %s must be 1 to "
                     "%d lower-case letters, digits and inner hyphens",
                     ld->cur.v.code, VRS_CODE_MAX);
        else
            ld->cur.v.series = cat_arena_add(ld, s, n);
        return;
    case COL_DISEASE_JA:
    case COL_PRODUCT_JA:
    case COL_PRODUCT_EN:
    case COL_MAKER_JA:
        cat_text_field(ld, i, s, n);
        return;
    case COL_MAX_DOSE:
    case COL_MIN_INTERVAL:
    case COL_MIN_AGE:
        cat_number_field(ld, i, s, n);
        return;
    case COL_SOURCE:
        /* Every row names where its values come from (README.md). */
        if (!cat_token_ok(s, n))
            cat_fail(ld, ld->record_line, "source of code %s must name a "
                     "source listed in the README (lower-case letters, "
                     "digits, hyphens)", ld->cur.v.code);
        return;
    default:
        return;                     /* counted; reported at the row's end */
    }
}

/* libcsv field callback.  CSV_APPEND_NULL makes s[n] a NUL, but the field
 * may hold NUL bytes itself, so only `n` is trusted. */
static void
cat_field_cb(void *field, size_t n, void *arg)
{
    struct cat_load *ld = arg;
    const char *s = field != NULL ? field : "";

    if (ld->failed)
        return;
    if (n > CAT_FIELD_MAX) {
        cat_fail(ld, ld->record_line, "field %zu is longer than %d bytes",
                 ld->nfield + 1, CAT_FIELD_MAX);
        return;
    }
    if (ld->header_done)
        cat_data_field(ld, s, n);
    else
        cat_header_field(ld, s, n);
    ld->nfield++;
}

static void
cat_row_cb(int term, void *arg)
{
    struct cat_load *ld = arg;

    (void)term;
    ld->in_record = false;
    if (ld->failed)
        return;
    if (ld->nfield != CAT_NFIELDS) {
        cat_fail(ld, ld->record_line, "expected %d fields, found %zu",
                 CAT_NFIELDS, ld->nfield);
        return;
    }
    ld->nfield = 0;
    if (!ld->header_done) {
        ld->header_done = true;
        return;
    }
    if (ld->nrows == ld->caprows) {
        size_t cap = ld->caprows ? ld->caprows * 2 : 64;
        struct cat_row *p = realloc(ld->rows, cap * sizeof(*p));

        if (p == NULL) {
            cat_fail(ld, ld->record_line, "out of memory");
            return;
        }
        ld->rows = p;
        ld->caprows = cap;
    }
    ld->cur.line = ld->record_line;
    ld->rows[ld->nrows++] = ld->cur;
    memset(&ld->cur, 0, sizeof(ld->cur));
}

/* libcsv grows its field buffer through this; past the cap it gets NULL,
 * so an endless field cannot eat memory before cat_field_cb sees it. */
static void *
cat_realloc(void *p, size_t n)
{
    if (n > CAT_CSVBUF_MAX)
        return NULL;
    return realloc(p, n);
}

/* Take cells verbatim: libcsv would otherwise trim spaces and tabs around
 * unquoted fields. */
static int
cat_no_space(unsigned char c)
{
    (void)c;
    return 0;
}

static bool
cat_has_content(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\r' && s[i] != '\n')
            return true;
    }
    return false;
}

/* Feed the file to libcsv one physical line at a time, so that every
 * message can name its line. */
static void
cat_feed(struct cat_load *ld, struct csv_parser *p, const char *buf,
         size_t len)
{
    size_t off = 0;

    ld->line = 1;
    while (off < len && !ld->failed) {
        const char *seg = buf + off;
        const char *nl = memchr(seg, '\n', len - off);
        size_t n = nl != NULL ? (size_t)(nl - seg) + 1 : len - off;

        if (!ld->in_record && cat_has_content(seg, n)) {
            ld->in_record = true;
            ld->record_line = ld->line;
        }
        if (csv_parse(p, seg, n, cat_field_cb, cat_row_cb, ld) != n) {
            int e = csv_error(p);

            if (e == CSV_EPARSE)
                cat_fail(ld, ld->line, "malformed CSV quoting (a quote "
                         "inside an unquoted field, or text after a "
                         "closing quote)");
            else if (e == CSV_ENOMEM &&
                     csv_get_buffer_size(p) > CAT_FIELD_MAX)
                cat_fail(ld, ld->record_line, "field %zu is longer than "
                         "%d bytes", ld->nfield + 1, CAT_FIELD_MAX);
            else
                cat_fail(ld, ld->line, "CSV error: %s", csv_strerror(e));
        }
        /* No cell of the catalogue may hold a line break: a record still
         * open at the end of a line is a quote left open. */
        if (nl != NULL && ld->in_record)
            cat_fail(ld, ld->record_line, "unterminated quoted field");
        if (nl != NULL)
            ld->line++;
        off += n;
    }
}

static int
cat_parse(struct cat_load *ld, const char *buf, size_t len)
{
    struct csv_parser p;

    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        cat_fail(ld, 0, "out of memory");
        return -1;
    }
    csv_set_realloc_func(&p, cat_realloc);
    csv_set_space_func(&p, cat_no_space);
    cat_feed(ld, &p, buf, len);
    /* On failure skip csv_fini: it would hand us the partial record. */
    if (!ld->failed && csv_fini(&p, cat_field_cb, cat_row_cb, ld) != 0)
        cat_fail(ld, ld->record_line, "unterminated quoted field");
    csv_free(&p);
    if (!ld->failed && !ld->header_done)
        cat_fail(ld, 0, "empty file (no header row)");
    if (!ld->failed && ld->nrows == 0)
        cat_fail(ld, 0, "no rows after the header");
    return ld->failed ? -1 : 0;
}

static int
cat_row_cmp(const void *a, const void *b)
{
    const struct cat_row *x = a, *y = b;
    int c = strcmp(x->v.code, y->v.code);

    /* Equal codes stay in file order, so the later line is reported. */
    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

/*
 * Whole-table checks once every row is in and sorted by code: no code
 * twice, and a series belongs to one category (doses of one series are
 * numbered together, so a series spanning categories would be a typo).
 * The error reported is the one on the earliest line.
 */
static void
cat_check_table(struct cat_load *ld)
{
    size_t bad_line = SIZE_MAX;
    char msg[200] = "";

    for (size_t i = 0; i < ld->nrows; i++) {
        const struct cat_row *r = &ld->rows[i];

        if (i > 0 && strcmp(ld->rows[i - 1].v.code, r->v.code) == 0 &&
            r->line < bad_line) {
            bad_line = r->line;
            snprintf(msg, sizeof(msg), "code %s already appears on line "
                     "%zu", r->v.code, ld->rows[i - 1].line);
        }
        for (size_t j = 0; j < ld->nrows; j++) {
            const struct cat_row *o = &ld->rows[j];

            if (o->line < r->line && o->v.category != r->v.category &&
                strcmp(o->v.series, r->v.series) == 0 && r->line < bad_line) {
                bad_line = r->line;
                snprintf(msg, sizeof(msg), "series %s of code %s is "
                         "already used by category %s on line %zu",
                         r->v.series, r->v.code,
                         cat_categories[o->v.category].name, o->line);
            }
        }
    }
    if (bad_line != SIZE_MAX)
        cat_fail(ld, bad_line, "%s", msg);
}

int
vrs_catalogue_load(const char *csv_path, struct vrs_catalogue **out,
                   char *err, size_t errlen)
{
    struct cat_load ld;
    struct vrs_catalogue *c = NULL;
    const char *slash;
    char *buf = NULL;
    size_t len = 0;
    int saved = EINVAL;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL || csv_path == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "vrs_catalogue_load: no path or no result");
        errno = EINVAL;
        return -1;
    }
    *out = NULL;

    memset(&ld, 0, sizeof(ld));
    slash = strrchr(csv_path, '/');
    ld.fname = slash != NULL && slash[1] != '\0' ? slash + 1 : csv_path;
    ld.err = err;
    ld.errlen = errlen;

    if (util_read_file(csv_path, CAT_FILE_MAX, &buf, &len) != 0) {
        saved = errno;
        if (saved == EFBIG)
            cat_fail(&ld, 0, "larger than %u bytes", CAT_FILE_MAX);
        else if (saved == EINVAL)
            cat_fail(&ld, 0, "not a regular file");
        else
            cat_fail(&ld, 0, "cannot read: %s", strerror(saved));
        errno = saved;
        return -1;
    }
    /* Every cell plus its NUL fits in twice the file: no arena growth, so
     * pointers into it stay valid while loading. */
    ld.arena_cap = 2 * len + 2;
    ld.arena = malloc(ld.arena_cap);
    if (ld.arena == NULL) {
        cat_fail(&ld, 0, "out of memory");
        saved = ENOMEM;
        goto fail;
    }
    if (cat_parse(&ld, buf, len) != 0)
        goto fail;
    qsort(ld.rows, ld.nrows, sizeof(*ld.rows), cat_row_cmp);
    cat_check_table(&ld);
    if (ld.failed)
        goto fail;

    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->entries = calloc(ld.nrows, sizeof(*c->entries))) == NULL) {
        cat_fail(&ld, 0, "out of memory");
        saved = ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < ld.nrows; i++)
        c->entries[i] = ld.rows[i].v;
    c->n = ld.nrows;
    c->arena = ld.arena;            /* the table owns the arena now */
    free(ld.rows);
    free(buf);
    *out = c;
    return 0;

fail:
    if (c != NULL)
        free(c->entries);
    free(c);
    free(ld.rows);
    free(ld.arena);
    free(buf);
    errno = saved;
    return -1;
}

static int
cat_entry_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct vrs_vaccine *)elem)->code);
}

const struct vrs_vaccine *
vrs_catalogue_lookup(const struct vrs_catalogue *c, const char *code)
{
    if (c == NULL || code == NULL || strnlen(code, VRS_CODE_MAX + 1) > VRS_CODE_MAX)
        return NULL;
    return bsearch(code, c->entries, c->n, sizeof(*c->entries), cat_entry_cmp);
}

size_t
vrs_catalogue_count(const struct vrs_catalogue *c)
{
    return c != NULL ? c->n : 0;
}

const struct vrs_vaccine *
vrs_catalogue_at(const struct vrs_catalogue *c, size_t i)
{
    if (c == NULL || i >= c->n)
        return NULL;
    return &c->entries[i];
}

const char *
vrs_category_name(enum vrs_category cat)
{
    if ((size_t)cat >= CAT_NCATEGORIES)
        return "unknown";
    return cat_categories[cat].name;
}

void
vrs_catalogue_free(struct vrs_catalogue *c)
{
    if (c == NULL)
        return;
    free(c->entries);
    free(c->arena);
    free(c);
}
