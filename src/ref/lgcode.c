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

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref/reftable.h"

/* The shipped file is about 230 KiB; 4 MiB leaves room for growth while
 * keeping a wrong path (a log, a dump) from being slurped.  The longest
 * name today is under 60 bytes, far below REFTABLE_FIELD_MAX. */
#define LG_FILE_MAX   (4u * 1024 * 1024)
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

/* What the reftable callbacks build. */
struct lg_load {
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

/* reftable cell callback: column i of the current record. */
static void
lg_cell(struct reftable *t, void *arg, size_t i, const char *s, size_t n)
{
    struct lg_load *ld = arg;
    struct lg_row *r = &ld->cur;
    size_t *off = NULL;

    switch (i) {
    case COL_LGCODE:
        /* Echo the code only once it is known to be 6 digits. */
        if (!lg_all_digits(s, n, LGCODE_LEN)) {
            reftable_fail(t, "lgcode is not 6 ASCII digits");
            return;
        }
        memcpy(r->code, s, LGCODE_LEN);
        r->code[LGCODE_LEN] = '\0';
        if (!lgcode_valid(r->code))
            reftable_fail(t, "code %s has a wrong check digit", r->code);
        return;
    case COL_PREF_CODE:
        if (!lg_all_digits(s, n, 2) || memcmp(s, r->code, 2) != 0)
            reftable_fail(t, "pref_code does not match the first two "
                          "digits of code %s", r->code);
        return;
    case COL_KIND:
        for (size_t k = 0; k < sizeof(lg_kinds) / sizeof(lg_kinds[0]); k++) {
            if (strlen(lg_kinds[k]) == n && memcmp(s, lg_kinds[k], n) == 0) {
                r->kind = (int)k;
                return;
            }
        }
        reftable_fail(t, "code %s has an unknown kind", r->code);
        return;
    case COL_PARENT:
        if (r->kind == KIND_PREFECTURE) {
            if (n != 0)
                reftable_fail(t, "prefecture %s must have an empty "
                              "parent_lgcode", r->code);
            return;
        }
        if (!lg_all_digits(s, n, LGCODE_LEN)) {
            reftable_fail(t, "parent_lgcode of code %s is not 6 ASCII "
                          "digits", r->code);
            return;
        }
        memcpy(r->parent, s, LGCODE_LEN);
        r->parent[LGCODE_LEN] = '\0';
        if (!lgcode_valid(r->parent))
            reftable_fail(t, "parent_lgcode %s of code %s has a wrong "
                          "check digit", r->parent, r->code);
        return;
    default:
        break;
    }

    /* Text columns: pref_name .. name_katakana. */
    if (n == 0) {
        reftable_fail(t, "column %s of code %s is empty", lg_header[i],
                      r->code);
        return;
    }
    if (!reftable_text_ok(s, n)) {
        reftable_fail(t, "column %s of code %s is not valid UTF-8 text",
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
        reftable_fail(t, "out of memory");
}

/* reftable row callback: keep the record. */
static void
lg_row(struct reftable *t, void *arg)
{
    struct lg_load *ld = arg;

    if (ld->nrows == ld->caprows) {
        size_t cap = ld->caprows ? ld->caprows * 2 : 2048;
        struct lg_row *p;

        if (cap > SIZE_MAX / sizeof(*p) ||
            (p = realloc(ld->rows, cap * sizeof(*p))) == NULL) {
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
 * reftable finish callback: sort the rows, then the whole-table checks,
 * duplicates and parents.  The error reported is the one on the earliest
 * line, as if the file had been checked top to bottom.
 */
static void
lg_check_table(struct reftable *t, void *arg)
{
    struct lg_load *ld = arg;
    size_t bad_line = SIZE_MAX;
    char msg[160] = "";

    qsort(ld->rows, ld->nrows, sizeof(*ld->rows), lg_row_cmp);

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
        reftable_fail_at(t, bad_line, "%s", msg);
}

static const struct reftable_spec lg_spec = {
    .header = lg_header,
    .ncols = LG_NFIELDS,
    .file_max = LG_FILE_MAX,
    /* Packagers may symlink shared data into place, and this file holds
     * no secret. */
    .nofollow = false,
    .cell = lg_cell,
    .row = lg_row,
    .finish = lg_check_table,
};

int
lgcode_table_load(const char *csv_path, struct lgcode_table **out,
                  char *err, size_t errlen)
{
    struct lg_load ld;
    struct lgcode_table *t = NULL;
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
    if (reftable_load(csv_path, &lg_spec, &ld, err, errlen) != 0)
        goto fail;

    /* Final layout: shrink the arena (it may move), then turn offsets
     * into pointers.  A failed shrink keeps the larger block. */
    arena = realloc(ld.arena, ld.arena_len);
    if (arena != NULL)
        ld.arena = arena;
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->entries = calloc(ld.nrows, sizeof(*t->entries))) == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "out of memory");
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
