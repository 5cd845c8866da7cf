/*
 * query.h - searching the audit log and the access review (R7.3, R7.5).
 *
 * Reads live and archived segments alike (the last year is live, older
 * years are decompressed on the fly).  Called by `mamori audit
 * query|review` (unbounded) and by the audit writer's query thread for
 * the auditors' HTTP API (src/audit/api.c), whose work is bounded in
 * time, rows and bytes (struct audit_bounds) and resumable after the
 * last entry examined (after_seq).  Results are JSON values the caller
 * owns; the module does no I/O besides reading the log.
 *
 * Live segments are read in bounded chunks, never whole, and the start
 * of a range (after_seq, since) is found by bisection on the entries'
 * sequence numbers and times, which only grow within the log (R7.6), so
 * paging through a large log costs each page about its own rows.
 */
#ifndef MAMORI_AUDIT_QUERY_H
#define MAMORI_AUDIT_QUERY_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds of one API query (R7.5): the writer's query thread stops at
 * whichever comes first and says so in the answer. */
#define AUDIT_QUERY_EVENTS_MS   3000     /* time for one page of events */
#define AUDIT_QUERY_REVIEW_MS  10000     /* time for one review */
#define AUDIT_QUERY_MAX_ROWS    1000     /* rows of one page (limit) */
#define AUDIT_QUERY_MAX_BYTES  (4u * 1024u * 1024u)  /* text of one page's rows */
#define AUDIT_REVIEW_MAX_ITEMS 10000     /* entries per review list, distinct records */

struct audit_query {
    const char *tenant, *actor, *action, *object;   /* NULL: any; exact match,
                                                     * but action "ns.*" matches
                                                     * every action "ns.…" */
    const char *outcome;                            /* NULL: any */
    bool        has_since, has_until;
    int64_t     since_us, until_us;                 /* [since, until) */
    size_t      limit;                              /* 0: no limit */
    uint64_t    after_seq;                          /* only entries after it; 0: all */
    uint64_t    max_seq;                            /* only entries up to it; 0: all */
};

/* How much one call may do; zero members do not bound. */
struct audit_bounds {
    size_t             max_bytes;     /* stop once the rows' text reaches this */
    int64_t            deadline_ms;   /* CLOCK_MONOTONIC milliseconds (audit_mono_ms) */
    const atomic_bool *cancel;        /* stop when it becomes true; may be NULL */
};

/* How far a call got.  `last_seq` is the last entry examined: a caller
 * resumes with after_seq = last_seq (never a row twice, none skipped). */
struct audit_progress {
    uint64_t    scanned;      /* entries of the range examined */
    uint64_t    last_seq;
    bool        complete;     /* the whole range was examined */
    const char *stopped_by;   /* "limit", "bytes", "time" or NULL (static text) */
};

/* Matching entries, oldest first, as an array of {"seq","time","event"}.
 * The caller owns *rows.  0 or -1. */
int audit_query_run(const char *dir, const struct audit_query *q, json_t **rows)
    __attribute__((warn_unused_result));

/* The same within bounds (b may be NULL); *p says how far it got. */
int audit_query_page(const char *dir, const struct audit_query *q, const struct audit_bounds *b,
                     json_t **rows, struct audit_progress *p)
    __attribute__((warn_unused_result));

/* Access review of one staff member (R7.5): records touched (distinct
 * personal object ids of any action, audit_object_is_personal), reads
 * that name no record (bulk_reads, bulk_records: audit_event_bulk_reads),
 * events, accesses to personal data off hours (outside [office_start,
 * office_end) Japan time, audit_event_is_personal), failures and
 * refusals, each with the entries concerned.  The caller owns *report.
 * 0 or -1. */
int audit_review(const char *dir, const char *actor, const struct audit_query *range,
                 unsigned office_start, unsigned office_end, json_t **report)
    __attribute__((warn_unused_result));

/* The same within bounds (b may be NULL): lists hold at most
 * AUDIT_REVIEW_MAX_ITEMS each (their counts stay exact, "truncated"
 * says when a list was cut), and *p says how far it got. */
int audit_review_page(const char *dir, const char *actor, const struct audit_query *range,
                      unsigned office_start, unsigned office_end,
                      const struct audit_bounds *b, json_t **report, struct audit_progress *p)
    __attribute__((warn_unused_result));

/* The review as CSV, as GET /v1/audit/review?format=csv answers it: a
 * summary row, then one row per listed entry, then one per record
 * touched, then the bulk reads (count, records).  Every cell is quoted
 * (libcsv), and a cell a spreadsheet would run as a formula (first
 * character = + - @, tab or carriage return) gets a leading apostrophe.
 * *out is malloc'd and owned by the caller.  0 or -1. */
int audit_review_csv(const json_t *report, char **out, size_t *len)
    __attribute__((warn_unused_result));

/* Optional tables of audit_review_csv_tables. */
#define AUDIT_CSV_RECORDS 0x1u  /* record,accesses: one row per record touched */

/* The same writer with a choice of the optional tables (`tables`, a mask
 * of AUDIT_CSV_*); the summary, entries and bulk-read tables are always
 * there.  `mamori audit review --format csv` passes 0 (R7.5). */
int audit_review_csv_tables(const json_t *report, unsigned tables, char **out, size_t *len)
    __attribute__((warn_unused_result));

/* Is `action` one the system records, or "ns.*" for a namespace of
 * them (auth, staff, resident, ...)?  The catalogue is in query.c: a new
 * action is added there and to docs/audit.md "Actions", which
 * scripts/check-audit-actions.sh (lint, test_audit_actions) enforces. */
bool audit_action_known(const char *action);

/* The values a filter may take, checked the same way by the HTTP route
 * validators (at the edge) and by the writer (on the hostile query it is
 * sent): NULL if acceptable, else a plain reason ("is not a known
 * action").  A value that would be refused in an event (an individual
 * number, characters outside the schema, docs/audit.md) is refused. */
enum audit_filter {
    AUDIT_FILTER_TENANT,      /* 6 digits */
    AUDIT_FILTER_ACTOR,       /* the event schema's actor */
    AUDIT_FILTER_ACTION,      /* audit_action_known */
    AUDIT_FILTER_OBJECT,      /* the event schema's record id */
    AUDIT_FILTER_OUTCOME,     /* success | failure | refused */
};
const char *audit_filter_check(enum audit_filter f, const char *value);

/* Japan-time hour (0-23) of a UTC time in microseconds. */
int audit_jst_hour(int64_t us);

/* CLOCK_MONOTONIC in milliseconds (for audit_bounds.deadline_ms). */
int64_t audit_mono_ms(void);

#endif
