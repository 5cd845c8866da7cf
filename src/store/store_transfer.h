/*
 * store_transfer.h - the tables of transfer inquiries between tenants
 * (転入者照会・提供, R3.1-R3.5, R9.5): consent records, inquiry records
 * (the requester's 情報照会記録), provision records (the provider's
 * 情報提供記録), undeliverable messages, and bulk jobs with their rows.
 * Schema: migration 5 of each backend; docs/transfer.md has the model.
 *
 * Personal values: the individual number is never stored in clear.  A
 * person is referred to by the tenant's own blind index of the number
 * (the residents table's mynumber_bidx: equal values match within one
 * tenant only) and, once matched, by the tenant's resident row id.  The
 * one place a number waits is a bulk job row that has not run yet:
 * sealed under the tenant's data key (AD: tenant, table, job, row) and
 * deleted when the row has run.  An inquiry's answer (vaccine, dose,
 * date) is sealed too.  Ids are random lower-case hex (message.h):
 * inquiries and provisions 32, consents and jobs 16.
 *
 * Calls on a tenant context are bound to its tenant like store_records.h;
 * the few operator calls (undelivered messages, claiming a job) take the
 * store and return no personal data.  Tenant erase removes every row of
 * the tenant (a trigger of the migration, run by the same UPDATE that
 * marks the tenant erased, so no backend code has to know these tables).
 */
#ifndef MAMORI_STORE_TRANSFER_H
#define MAMORI_STORE_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "store/store_records.h"
#include "transfer/message.h"

#define STORE_XFER_ID      (TRANSFER_MSG_ID_HEX + 1)
#define STORE_XFER_REF     (TRANSFER_REF_HEX + 1)
#define STORE_XFER_CODE    33      /* method / outcome codes */
#define STORE_XFER_JOB_MAX 10000   /* rows of one bulk job */

/*
 * The writes below that a caller must audit take a confirm callback: it
 * runs inside the write's transaction, after the rows are written and
 * before the commit, and a non-zero return rolls everything back
 * (STORE_DENIED).  So a change the audit log does not know of is never
 * committed, in one transaction and without store_bulk_begin (whose
 * commit also checkpoints the SQLite WAL: right after an import, too
 * costly per inquiry).  confirm may be NULL.
 */
typedef int (*store_confirm_fn)(void *arg);

/* ---- consent records (番号法第16条, R3.1) ------------------------------ */

struct transfer_consent {
    char id[STORE_XFER_REF];            /* out on create */
    char affair[32];                    /* TRANSFER_AFFAIR_* */
    char id_check[STORE_XFER_CODE];     /* how identity was checked (a code) */
    char checked_on[STORE_DATE_LEN];    /* YYYY-MM-DD */
    char checked_by[STORE_ACTOR_MAX];   /* the staff member who checked */
    char created_at[STORE_TS_LEN];      /* out */
};

/* Record that `c->checked_by` checked the identity of the person with
 * individual number `mynumber` (stored only as the tenant's blind index)
 * and took their consent; c->id gets a new id (set before confirm runs). */
enum store_status store_consent_create(struct store_tenant *ctx, const char *mynumber,
                                       struct transfer_consent *c, store_confirm_fn confirm,
                                       void *arg) MAMORI_WARN_UNUSED;

/* The consent `id` of this tenant, provided it was given by the person
 * with `mynumber`.  STORE_NOTFOUND for an unknown id, another tenant's,
 * or another person's (one answer for all three). */
enum store_status store_consent_get(struct store_tenant *ctx, const char *id,
                                    const char *mynumber, struct transfer_consent *out)
    MAMORI_WARN_UNUSED;

/* ---- the answering side (R3.2) --------------------------------------- */

/*
 * Match `subject` (a blind index under this tenant's index key) against
 * the tenant's residents, moved-out ones included, and read their doses
 * not voided: *resident_id gets the first matching resident (0: none),
 * up to TRANSFER_HISTORY_MAX doses in date order go into a->doses / a->n
 * and a->complete says whether that was all.  Every call runs the same
 * one statement whether or not anyone matches.
 */
enum store_status store_transfer_match(struct store_tenant *ctx,
                                       const uint8_t subject[TRANSFER_SUBJECT_LEN],
                                       int64_t *resident_id, struct transfer_answer *a)
    MAMORI_WARN_UNUSED;

/* The same statement for a code that is no active tenant (it finds
 * nothing): the answer to such an inquiry costs what a no-match costs. */
enum store_status store_transfer_match_absent(struct store *st, const char *code,
                                              const uint8_t subject[TRANSFER_SUBJECT_LEN])
    MAMORI_WARN_UNUSED;

/* A provision record (情報提供記録, R3.4). */
struct transfer_provision {
    char    id[STORE_XFER_ID];          /* the answer's message id */
    char    inquiry_id[STORE_XFER_ID];
    char    from_tenant[7];
    char    affair[32];
    char    consent_ref[STORE_XFER_REF];/* the requester's consent id */
    uint8_t subject[TRANSFER_SUBJECT_LEN];
    int64_t resident_id;                /* 0: no match */
    char    mode[8];                    /* single | bulk */
    char    received_at[STORE_TS_LEN];
    char    answered_at[STORE_TS_LEN];
    char    outcome[STORE_XFER_CODE];   /* found | no_record */
    char    items[32];                  /* TRANSFER_ITEMS */
    int64_t doses;
};

/* Write a provision record, confirmed (audited) before the commit.
 * STORE_EXISTS if this inquiry id was answered before (a replay). */
enum store_status store_provision_add(struct store_tenant *ctx,
                                      const struct transfer_provision *p,
                                      store_confirm_fn confirm, void *arg) MAMORI_WARN_UNUSED;

/* An inquiry addressed to a code that is no active tenant (operator
 * table: message id, from, to, time; nothing about the person), written
 * the same way as a provision record. */
enum store_status store_undelivered_add(struct store *st, const char *from,
                                        const char *message_id, const char *to_code,
                                        store_confirm_fn confirm, void *arg)
    MAMORI_WARN_UNUSED;

/* ---- the asking side (R3.1, R3.4) ------------------------------------- */

/* An inquiry record (情報照会記録). */
struct transfer_inquiry_rec {
    char    id[STORE_XFER_ID];          /* the inquiry's message id */
    char    to_tenant[7];
    char    affair[32];
    char    consent_id[STORE_XFER_REF];
    int64_t resident_id;                /* the receiving resident */
    char    actor[STORE_ACTOR_MAX];
    char    mode[8];                    /* single | bulk */
    char    job_id[STORE_XFER_REF];     /* "" for a single inquiry */
    char    sent_at[STORE_TS_LEN];
    char    answered_at[STORE_TS_LEN];
    char    outcome[STORE_XFER_CODE];   /* found | no_record | failed */
    char    items[32];
    int64_t doses;
    bool    registered;                 /* the doses were entered (out) */
};

/* Record an inquiry and its answer's doses (sealed).  `mynumber` is
 * kept only as the tenant's blind index. */
enum store_status store_inquiry_add(struct store_tenant *ctx, const char *mynumber,
                                    const struct transfer_inquiry_rec *r,
                                    const struct transfer_answer *a) MAMORI_WARN_UNUSED;

/* One inquiry record and its doses (a->n, a->doses; may be NULL). */
enum store_status store_inquiry_get(struct store_tenant *ctx, const char *id,
                                    struct transfer_inquiry_rec *out,
                                    struct transfer_answer *a) MAMORI_WARN_UNUSED;

/* Mark an inquiry's doses as entered, once: STORE_EXISTS if already. */
enum store_status store_inquiry_mark_registered(struct store_tenant *ctx, const char *id)
    MAMORI_WARN_UNUSED;

/* ---- listings (R3.4, R9.5) --------------------------------------------- */

/* One line of a listing: either side's record, common columns. */
struct transfer_record {
    const char *side;                   /* "inquiry" | "provision" */
    char        id[STORE_XFER_ID];
    char        inquiry_id[STORE_XFER_ID];
    char        other_tenant[7];        /* asked (inquiry) / asker (provision) */
    char        affair[32];
    char        consent[STORE_XFER_REF];
    int64_t     resident_id;
    char        actor[STORE_ACTOR_MAX]; /* inquiry: staff; provision: "" (the system) */
    char        mode[8];
    char        job_id[STORE_XFER_REF];
    char        at[STORE_TS_LEN];       /* sent (inquiry) / answered (provision) */
    char        outcome[STORE_XFER_CODE];
    char        items[32];
    int64_t     doses;
};

#define STORE_XFER_INQUIRIES  0x1u
#define STORE_XFER_PROVISIONS 0x2u

/* The tenant's records of `sides`, newest first, older than `before`
 * ("" for no bound), at most `max` per side; with resident_id > 0 only
 * those about that resident (R9.5: who asked for this person's data).
 * fn returns non-zero to stop. */
enum store_status store_transfer_records(struct store_tenant *ctx, unsigned sides,
                                         int64_t resident_id, const char *before,
                                         size_t max,
                                         int (*fn)(const struct transfer_record *, void *),
                                         void *arg) MAMORI_WARN_UNUSED;

/* ---- bulk jobs (一括照会, R3.3) -------------------------------------------- */

struct transfer_job_row {
    int64_t row_no;                         /* 1-based line of the file, header excluded */
    char    prev_code[7];                   /* "" when the cell was invalid */
    char    address_no[STORE_ADDRNO_MAX];   /* "" when invalid */
    char    consent_id[STORE_XFER_REF];     /* "" when invalid */
    char    mynumber[13];                   /* in: "" when invalid; out: only pending rows */
    char    outcome[STORE_XFER_CODE];       /* "" pending, or found, no_record, invalid_*, ... */
    char    inquiry_id[STORE_XFER_ID];
    int64_t doses;
};

struct transfer_job {
    char    id[STORE_XFER_REF];
    char    state[12];                      /* queued | running | done | failed */
    char    actor[STORE_ACTOR_MAX];
    char    role[24];
    int64_t rows_total, rows_done;
    char    created_at[STORE_TS_LEN];
    char    started_at[STORE_TS_LEN];
    char    finished_at[STORE_TS_LEN];
};

/* Queue a job with its rows (n <= STORE_XFER_JOB_MAX) in one
 * transaction: rows with an outcome already set (invalid input) are done
 * from the start, the others pending with their number sealed.
 * STORE_EXISTS if the tenant already has a job queued or running (one at
 * a time per tenant).  job->id gets a new id (set before confirm runs). */
enum store_status store_job_create(struct store_tenant *ctx, struct transfer_job *job,
                                   const struct transfer_job_row *rows, size_t n,
                                   store_confirm_fn confirm, void *arg) MAMORI_WARN_UNUSED;

/* Operator call: claim the oldest queued job, or a running one whose
 * runner has not been heard of since `stale_before` (unix seconds), for
 * `runner`; tenant and job id out.  STORE_NOTFOUND if there is none. */
enum store_status store_job_claim(struct store *st, const char *runner, int64_t now,
                                  int64_t stale_before, char tenant[7],
                                  char job_id[STORE_XFER_REF]) MAMORI_WARN_UNUSED;

/* The runner is alive (heartbeat = now); STORE_NOTFOUND if the job is no
 * longer this runner's. */
enum store_status store_job_heartbeat(struct store_tenant *ctx, const char *job_id,
                                      const char *runner, int64_t now) MAMORI_WARN_UNUSED;

/* The first pending row of a job, number opened; STORE_NOTFOUND if none. */
enum store_status store_job_next_row(struct store_tenant *ctx, const char *job_id,
                                     struct transfer_job_row *out) MAMORI_WARN_UNUSED;

/* A row has run: its outcome, inquiry and dose count are kept, its
 * sealed number deleted, and the job's count moves on, in one
 * transaction. */
enum store_status store_job_row_done(struct store_tenant *ctx, const char *job_id,
                                     const struct transfer_job_row *row) MAMORI_WARN_UNUSED;

/* End a job: state "done" or "failed". */
enum store_status store_job_finish(struct store_tenant *ctx, const char *job_id,
                                   const char *state) MAMORI_WARN_UNUSED;

/* One job of this tenant (STORE_NOTFOUND for another tenant's). */
enum store_status store_job_get(struct store_tenant *ctx, const char *job_id,
                                struct transfer_job *out) MAMORI_WARN_UNUSED;

/* Its rows in order (mynumber always ""); fn returns non-zero to stop. */
enum store_status store_job_rows(struct store_tenant *ctx, const char *job_id,
                                 int (*fn)(const struct transfer_job_row *, void *),
                                 void *arg) MAMORI_WARN_UNUSED;

#endif
