/*
 * catalogue.c - load and look up the vaccine catalogue (R2.3).
 *
 * The catalogue is reference data an operator may edit, so it is read by
 * the strict loader the municipality table uses (src/ref/reftable.h):
 * strict CSV through libcsv, an exact header, a bounded file.  This file
 * checks every cell, unique codes, and a series never shared across
 * categories.  The first problem fails the whole load with a sentence
 * naming the line; a half-loaded catalogue is never returned.
 */
#include "vrs/catalogue.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "ref/reftable.h"

/* The shipped file is about 3 KiB; a wrong path (a log, a dump) must not
 * be slurped. */
#define CAT_FILE_MAX   (256u * 1024)
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

/* What the reftable callbacks build. */
struct cat_load {
    struct reftable *t;             /* the load, for messages (cat_start) */
    struct cat_row  cur;
    struct cat_row *rows;
    size_t          nrows, caprows;

    /* Sized from the file length up front (cat_start) and never moved,
     * so entries may point into it while loading. */
    char           *arena;
    size_t          arena_len, arena_cap;
};

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

    /* Cannot happen unless the file grew while it was read (the arena
     * holds the whole file plus a NUL per byte), but a NULL entry must
     * never get past the load. */
    if (ld->arena_cap - ld->arena_len < n + 1) {
        reftable_fail(ld->t, "the file changed while it was read");
        return "";
    }
    p = ld->arena + ld->arena_len;
    memcpy(p, s, n);
    p[n] = '\0';
    ld->arena_len += n + 1;
    return p;
}

static void
cat_code_field(struct cat_load *ld, const char *s, size_t n)
{
    if (!cat_token_ok(s, n)) {
        reftable_fail(ld->t, "code must be 1 to %d lower-case "
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
            reftable_fail(ld->t, "code %s of category %s must "
                          "start with \"%s\"", code, name, prefix);
        return;
    }
    reftable_fail(ld->t, "code %s has an unknown category (use "
                  "covid, routine_a or routine_b)", code);
}

/* Text columns: required, except maker_ja, which is empty where several
 * makers supply a routine vaccine. */
static void
cat_text_field(struct cat_load *ld, size_t i, const char *s, size_t n)
{
    const char **dst = NULL;

    if (n == 0 && i != COL_MAKER_JA) {
        reftable_fail(ld->t, "column %s of code %s is empty",
                      cat_header[i], ld->cur.v.code);
        return;
    }
    if (!reftable_text_ok(s, n)) {
        reftable_fail(ld->t, "column %s of code %s is not valid "
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
        reftable_fail(ld->t, "%s of code %s must be empty or a "
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

/* reftable cell callback: column i of the current record. */
static void
cat_cell(struct reftable *t, void *arg, size_t i, const char *s, size_t n)
{
    struct cat_load *ld = arg;

    (void)t;                        /* ld->t, set by cat_start */
    switch (i) {
    case COL_CODE:
        cat_code_field(ld, s, n);
        return;
    case COL_CATEGORY:
        cat_category_field(ld, s, n);
        return;
    case COL_SERIES:
        if (!cat_token_ok(s, n))
            reftable_fail(ld->t, "series of code %s must be 1 to "
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
            reftable_fail(ld->t, "source of code %s must name a "
                          "source listed in the README (lower-case letters, "
                          "digits, hyphens)", ld->cur.v.code);
        return;
    default:
        return;
    }
}

/* reftable start callback: every cell plus its NUL fits in twice the
 * file, so the arena never grows and pointers into it stay valid while
 * loading. */
static int
cat_start(struct reftable *t, void *arg, size_t size)
{
    struct cat_load *ld = arg;

    ld->t = t;
    ld->arena_cap = 2 * size + 2;
    ld->arena = malloc(ld->arena_cap);
    return ld->arena != NULL ? 0 : -1;
}

/* reftable row callback: keep the record. */
static void
cat_row(struct reftable *t, void *arg)
{
    struct cat_load *ld = arg;

    if (ld->nrows == ld->caprows) {
        size_t cap = ld->caprows ? ld->caprows * 2 : 64;
        struct cat_row *p = realloc(ld->rows, cap * sizeof(*p));

        if (p == NULL) {
            reftable_fail(t, "out of memory");
            return;
        }
        ld->rows = p;
        ld->caprows = cap;
    }
    ld->cur.line = reftable_line(t);
    ld->rows[ld->nrows++] = ld->cur;
    memset(&ld->cur, 0, sizeof(ld->cur));
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
 * reftable finish callback: sort by code, then the whole-table checks: no
 * code twice, and a series belongs to one category (doses of one series
 * are numbered together, so a series spanning categories would be a
 * typo).  The error reported is the one on the earliest line.
 */
static void
cat_check_table(struct reftable *t, void *arg)
{
    struct cat_load *ld = arg;
    size_t bad_line = SIZE_MAX;
    char msg[200] = "";

    qsort(ld->rows, ld->nrows, sizeof(*ld->rows), cat_row_cmp);
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
        reftable_fail_at(t, bad_line, "%s", msg);
}

static const struct reftable_spec cat_spec = {
    .header = cat_header,
    .ncols = CAT_NFIELDS,
    .file_max = CAT_FILE_MAX,
    .nofollow = true,               /* as documented in docs/records.md */
    .start = cat_start,
    .cell = cat_cell,
    .row = cat_row,
    .finish = cat_check_table,
};

int
vrs_catalogue_load(const char *csv_path, struct vrs_catalogue **out,
                   char *err, size_t errlen)
{
    struct cat_load ld;
    struct vrs_catalogue *c = NULL;
    int saved;

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
    if (reftable_load(csv_path, &cat_spec, &ld, err, errlen) != 0) {
        saved = errno;
        goto fail;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->entries = calloc(ld.nrows, sizeof(*c->entries))) == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "out of memory");
        saved = ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < ld.nrows; i++)
        c->entries[i] = ld.rows[i].v;
    c->n = ld.nrows;
    c->arena = ld.arena;            /* the table owns the arena now */
    free(ld.rows);
    *out = c;
    return 0;

fail:
    if (c != NULL)
        free(c->entries);
    free(c);
    free(ld.rows);
    free(ld.arena);
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
