/*
 * reftable.h - the strict loader of a small reference table in CSV: the
 * municipality table (lgcode.c) and the vaccine catalogue
 * (vrs/catalogue.c) are both read through it.
 *
 * Reference data an operator may replace is trusted in nothing: libcsv in
 * strict mode without trimming, a bounded regular file, cells of at most
 * REFTABLE_FIELD_MAX bytes, the exact header, exactly as many cells on
 * every row, no byte-order mark and no line break inside a cell.  The
 * table's own module checks each cell and the whole table through the
 * callbacks below.  The first problem anywhere fails the load with one
 * sentence naming the file's base name and the line:
 *   "catalogue.csv line 4: code a-bcg already appears on line 2"
 */
#ifndef MAMORI_REF_REFTABLE_H
#define MAMORI_REF_REFTABLE_H

#include <stdbool.h>
#include <stddef.h>

/* Longest cell accepted, in bytes. */
#define REFTABLE_FIELD_MAX 256

/* A load in progress, handed to the callbacks. */
struct reftable;

struct reftable_spec {
    const char *const *header;  /* the column names, in order */
    size_t             ncols;
    size_t             file_max; /* bytes; a larger file fails with EFBIG */
    bool               nofollow; /* refuse a symbolic link (ELOOP) */
    /* Optional: once, before parsing, with the size of the file as opened.
     * Non-zero fails the load as out of memory. */
    int  (*start)(struct reftable *t, void *arg, size_t size);
    /* Data cell `col` (< ncols) of the record that began on line
     * reftable_line(t).  s[n] is a NUL, but s may hold NUL bytes itself,
     * so only n counts.  Not called again once the load has failed. */
    void (*cell)(struct reftable *t, void *arg, size_t col, const char *s,
                 size_t n);
    /* The end of a data record whose ncols cells all passed. */
    void (*row)(struct reftable *t, void *arg);
    /* Optional: after the last row, for checks across rows. */
    void (*finish)(struct reftable *t, void *arg);
};

/*
 * Load `path`.  Returns 0, or -1
 * with errno set (EINVAL for a bad table or a bad call, EFBIG, ENOMEM, or
 * what open or read said) and the sentence in err (may be NULL / 0).
 */
int reftable_load(const char *path, const struct reftable_spec *spec,
                  void *arg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Fail the load on the current record's line; only the first failure is
 * kept.  Never pass a cell's value unless it passed its check. */
void reftable_fail(struct reftable *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The same on `line` (0: no line), for checks across rows. */
void reftable_fail_at(struct reftable *t, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The line the current record began on. */
size_t reftable_line(const struct reftable *t);

bool reftable_failed(const struct reftable *t);

/* Well-formed UTF-8 (RFC 3629) without C0 controls or DEL: a tab or a
 * line break in a name is a damaged file, not data. */
bool reftable_text_ok(const char *s, size_t n);

#endif
