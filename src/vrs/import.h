/*
 * import.h - bulk import of residents, vouchers and vaccinations from the
 * CSV files of existing systems (R2.6; formats: docs/import-export.md).
 *
 * Two passes over the file, all or nothing:
 *
 *  1. Check.  Every record is read (src/vrs/csvin.h) and every field is
 *     checked against the format: exact header, field count, individual
 *     number with its check digit (R2.2), calendar dates, codes, lengths
 *     the store accepts, duplicates inside the file, conflicts with what
 *     the tenant already holds, and for vaccinations the medical rules
 *     (src/vrs/rules.h) for residents the store knows.  EVERY problem is
 *     handed to the sink: line, column, a reason in plain words.  No
 *     reason ever carries a field's value.
 *  2. Import, only if pass 1 found nothing: the file is read again and
 *     written in batches inside one bulk transaction with the record of
 *     the import (store_records.h); any failure rolls everything back.
 *
 * Idempotent by content: the SHA-256 of the file is taken first; a file
 * already imported into the tenant is not imported again (the result says
 * when it was).  Memory: a reader of one record, a keyed-hash set for
 * duplicates (16 to 32 bytes per key; keys per row: residents 2,
 * vouchers 1) and, for vaccinations, 24 bytes per row for the rules.
 */
#ifndef MAMORI_VRS_IMPORT_H
#define MAMORI_VRS_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vrs/catalogue.h"
#include "vrs/csvin.h"

enum import_kind { IMPORT_RESIDENTS = 0, IMPORT_VOUCHERS, IMPORT_VACCINATIONS };

/* "residents", "vouchers", "vaccinations"; NULL for anything else. */
const char *import_kind_name(enum import_kind k);
/* 0 and *k, or -1 for an unknown name. */
int import_kind_parse(const char *s, enum import_kind *k) __attribute__((warn_unused_result));

/* The exact header of a kind, comma-separated (formats.md). */
const char *import_header(enum import_kind k);

/* One problem of one line.  column is a header name, or NULL when the
 * line as a whole is wrong; reason is plain English without any value
 * from the file.  Both valid only during the sink call. */
struct import_problem {
    uint64_t    line;
    const char *column;
    const char *reason;
};

/* The sink gets every problem in the order found (line order, except
 * the vaccination rules, which come after the other problems, in line
 * order among themselves).  Non-zero stops the check. */
typedef int (*import_sink_fn)(void *arg, const struct import_problem *p);

enum import_phase { IMPORT_PHASE_HASH = 0, IMPORT_PHASE_CHECK, IMPORT_PHASE_WRITE };

struct import_progress {
    enum import_phase phase;
    uint64_t bytes;             /* read so far in this phase */
    uint64_t total;             /* file size (0: unknown) */
    uint64_t rows;              /* data rows so far in this phase */
};
typedef void (*import_progress_fn)(void *arg, const struct import_progress *p);

/* What a resident's existing record says, for the vaccination rules. */
struct import_facts {
    char birth_date[11];
    char deceased_date[11];     /* "" unless 死亡 */
    char moved_out_date[11];    /* "" unless ceased for another reason */
};

/* A dose the store already holds (not voided). */
struct import_dose {
    char     vaccine[32];
    unsigned dose;
    char     date[11];
};

/*
 * What pass 1 asks about the tenant's data.  Each returns 1 (found /
 * taken), 0 (not), or -1 (the lookup failed: the check stops with an
 * error).  A NULL member skips that check: pass 1 without a store (tests,
 * fuzzing) checks the file alone.
 */
struct import_lookup {
    /* The resident with this address number: *id. */
    int (*resident_id)(void *arg, const char *address_no, int64_t *id);
    /* A resident's dates (one call per resident with vaccinations). */
    int (*resident_facts)(void *arg, int64_t id, struct import_facts *out);
    /* Up to max recorded doses of a resident into out, *n of them; if the
     * resident has more than max, returns -1. */
    int (*doses)(void *arg, int64_t id, struct import_dose *out, size_t max,
                 size_t *n);
    /* Is this individual number already held by a resident? */
    int (*mynumber_taken)(void *arg, const char *mynumber);
    /* The voucher with this number: the resident it was issued to. */
    int (*voucher)(void *arg, const char *voucher_no, int64_t *resident_id);
    void *arg;
};

/* Most recorded doses one resident may have for the rules check. */
#define IMPORT_DOSES_MAX 512

struct import_result;

struct import_opts {
    enum import_kind    kind;
    enum csvin_encoding encoding;
    const struct vrs_catalogue *catalogue;  /* vaccinations: required */
    const char         *today;      /* "YYYY-MM-DD" in JST; required */
    const char         *actor;      /* recorded as who imported / entered */
    import_sink_fn      sink;       /* required */
    void               *sink_arg;
    import_progress_fn  progress;   /* may be NULL */
    void               *progress_arg;
    size_t              batch;      /* rows per insert call; 0: 500 */
    bool                dry_run;    /* pass 1 only */
    /* Called once pass 2 has written every row, before the commit: the
     * caller puts the import on the audit record, and a non-zero return
     * rolls it back (fail closed: nothing lands unrecorded, R7.1).  May
     * be NULL where the caller records nothing (tests). */
    int               (*before_commit)(void *arg, const struct import_result *res);
    void               *commit_arg;
};

enum import_outcome {
    IMPORT_IMPORTED = 0,    /* pass 2 committed */
    IMPORT_ALREADY,         /* the same file was imported before: nothing done */
    IMPORT_CHECKED,         /* dry run: pass 1 found nothing */
    IMPORT_REFUSED,         /* pass 1 found problems: nothing imported */
    IMPORT_FAILED           /* I/O, store or memory error: nothing imported */
};

struct import_result {
    enum import_outcome outcome;
    uint64_t rows;              /* data rows read by pass 1 (imported ones
                                   for IMPORT_IMPORTED) */
    uint64_t bad_lines;         /* lines with at least one problem */
    uint64_t problems;          /* problems reported */
    uint8_t  sha256[32];        /* of the whole file */
    char     when[25];          /* IMPORT_ALREADY: when it was imported */
    char     error[256];        /* IMPORT_FAILED: one plain sentence */
};

/*
 * Pass 1 alone over a descriptor (read to its end, not rewound) or a
 * buffer, with `lk` (may be NULL) for the tenant's data.  Fills *res
 * (outcome IMPORT_CHECKED, IMPORT_REFUSED or IMPORT_FAILED, and the
 * SHA-256 of what was read).  Returns 0, or -1 for IMPORT_FAILED.
 */
int import_check_fd(int fd, const struct import_opts *o,
                    const struct import_lookup *lk, struct import_result *res)
    __attribute__((warn_unused_result));
int import_check_mem(const void *buf, size_t len, const struct import_opts *o,
                     const struct import_lookup *lk, struct import_result *res)
    __attribute__((warn_unused_result));

struct store_tenant;

/*
 * The whole import of a regular file open on `fd` into the tenant:
 * SHA-256 and the already-imported check, pass 1 with the store's
 * lookups, then (unless dry_run) pass 2.  Returns 0 for IMPORT_IMPORTED,
 * IMPORT_ALREADY and IMPORT_CHECKED, -1 otherwise (see res->outcome).
 */
int import_run(struct store_tenant *ctx, int fd, const struct import_opts *o,
               struct import_result *res) __attribute__((warn_unused_result));

/* Where import_run_source reads the file: read() until 0 (-1 on error),
 * rewind() back to the first byte; size in bytes (0: unknown). */
struct import_source {
    ssize_t (*read)(void *arg, void *buf, size_t n);
    int     (*rewind)(void *arg);
    uint64_t size;
    void    *arg;
};

/*
 * import_run over any source that can be read more than once (an
 * encrypted upload spool, say): the file is read three times from its
 * first byte -- the SHA-256, pass 1, pass 2 -- and each pass checks that
 * it saw the same bytes.  A read error in any pass (a spool that fails
 * its authentication, for one) is IMPORT_FAILED with nothing imported.
 * The source is neither closed nor freed.  Same return as import_run.
 */
int import_run_source(struct store_tenant *ctx, const struct import_source *src,
                      const struct import_opts *o, struct import_result *res)
    __attribute__((warn_unused_result));

/* The lookups of import_run, on the store (exposed for tests). */
void import_store_lookup(struct store_tenant *ctx, struct import_lookup *out);

#endif
