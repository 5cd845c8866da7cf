/*
 * query.h - searching the audit log and the access review (R7.3, R7.5).
 *
 * Reads live and archived segments alike (the last year is live, older
 * years are decompressed on the fly).  Written to be called by
 * `mamori audit query|review` and, later, by the auditor HTTP route: the
 * result is a JSON value the caller owns, with no I/O of its own.
 */
#ifndef MAMORI_AUDIT_QUERY_H
#define MAMORI_AUDIT_QUERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct audit_query {
    const char *tenant, *actor, *action, *object;   /* NULL: any; exact match */
    bool        has_since, has_until;
    int64_t     since_us, until_us;                 /* [since, until) */
    size_t      limit;                              /* 0: no limit */
};

/* Matching entries, oldest first, as an array of {"seq","time","event"}.
 * The caller owns *rows.  0 or -1. */
int audit_query_run(const char *dir, const struct audit_query *q, json_t **rows)
    __attribute__((warn_unused_result));

/* Access review of one staff member (R7.5): records touched (distinct
 * object ids of resident.* actions), events, off-hours accesses (outside
 * [office_start, office_end) Japan time), failures and refusals, each
 * with the entries concerned.  The caller owns *report.  0 or -1. */
int audit_review(const char *dir, const char *actor, const struct audit_query *range,
                 unsigned office_start, unsigned office_end, json_t **report)
    __attribute__((warn_unused_result));

/* Japan-time hour (0-23) of a UTC time in microseconds. */
int audit_jst_hour(int64_t us);

#endif
