/*
 * store_records.h - vouchers, vaccinations, corrections by authority,
 * retention, bulk imports and walks for exports (R2.3-R2.7, R2.9, R2.10).
 *
 * Every call takes a tenant context (store.h): statements are bound to
 * its tenant and fields are encrypted with its data key, so one tenant's
 * rows are neither selected nor decryptable by another (R1.1, R1.4).
 *
 * Stored in clear, because rules, lookups and aggregates need them and
 * they say nothing about a person on their own: voucher numbers, vaccine
 * codes, dose numbers, vaccination dates, resident row ids, who entered
 * a row and when.  Encrypted: lot, site, clinic, doctor (one AEAD per
 * row), and the before / after images of a correction.  docs/records.md
 * has the model; docs/storage.md the encryption.
 *
 * Text is NUL-terminated UTF-8; "" means none.  Statuses as store.h:
 * STORE_INVALID for a field that fails validation, STORE_NOTFOUND for an
 * unknown row or one of another tenant, STORE_EXISTS for a taken unique
 * value.  A write returns STORE_OK only once durable (R9.6), except
 * inside a bulk transaction, where nothing is durable until
 * store_bulk_commit returns STORE_OK.
 */
#ifndef MAMORI_STORE_RECORDS_H
#define MAMORI_STORE_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_VOUCHER_LEN   10     /* digits, leading zeros kept (R2.4) */
#define STORE_VACCINE_MAX   32     /* a catalogue code, e.g. covid-comirnaty */
#define STORE_LOT_MAX       21     /* 1..20 of [0-9A-Za-z-] */
#define STORE_SITE_MAX      65
#define STORE_PERSON_MAX    129    /* clinic or doctor name */
#define STORE_ACTOR_MAX     33     /* a staff user id or a site device id */
#define STORE_REASON_MAX    129
#define STORE_TS_LEN        25     /* "YYYY-MM-DDTHH:MM:SS.mmmZ" + NUL */

/* ---- vouchers (接種券, R2.4) ------------------------------------------ */

struct voucher {
    char    voucher_no[STORE_VOUCHER_LEN + 1];
    int64_t resident_id;
    int     ticket_type;                  /* 0..9 (docs/records.md) */
    char    issued_date[STORE_DATE_LEN];
    bool    voided;                       /* out */
};

/* Issue a voucher to a resident of the tenant: STORE_EXISTS if the number
 * is taken in the tenant (R2.4), STORE_NOTFOUND if the resident is not
 * the tenant's. */
enum store_status store_voucher_issue(struct store_tenant *ctx, const struct voucher *v)
    MAMORI_WARN_UNUSED;

/* The voucher with this number, or STORE_NOTFOUND. */
enum store_status store_voucher_get(struct store_tenant *ctx, const char *voucher_no,
                                    struct voucher *out) MAMORI_WARN_UNUSED;

/* A resident's vouchers (up to max, *n found), by issue date. */
enum store_status store_vouchers_of(struct store_tenant *ctx, int64_t resident_id,
                                    struct voucher *out, size_t max, size_t *n)
    MAMORI_WARN_UNUSED;

/* ---- vaccinations (R2.3) -------------------------------------------- */

struct vaccination {
    int64_t id;                               /* out: row id */
    int64_t resident_id;
    char    vaccine[STORE_VACCINE_MAX];       /* catalogue code (vrs/catalogue.h) */
    int     dose;                             /* 1.. (接種回) */
    char    date[STORE_DATE_LEN];             /* YYYY-MM-DD */
    char    voucher_no[STORE_VOUCHER_LEN + 1];/* "" for none */
    char    lot[STORE_LOT_MAX];
    char    site[STORE_SITE_MAX];             /* 接種会場 / site code */
    char    clinic[STORE_PERSON_MAX];         /* 医療機関 */
    char    doctor[STORE_PERSON_MAX];         /* 医師 */
    char    entered_by[STORE_ACTOR_MAX];      /* staff user id, or site device id */
    char    entered_at[STORE_TS_LEN];         /* out: when the row was written */
    bool    voided;                           /* out: voided by a correction */
};

/*
 * Record one vaccination of a resident of the tenant.  The store checks
 * fields (lengths, a real calendar date, dose >= 1) and uniqueness of
 * (resident, vaccine, dose) among rows not voided (STORE_EXISTS); the
 * medical rules (order, intervals, birth and death, the catalogue) are
 * the caller's, in vrs/rules.h.  With an idempotency key a retry returns
 * the first call's id and writes nothing (as store_resident_insert).
 */
enum store_status store_vaccination_insert(struct store_tenant *ctx, const char *idem_key,
                                           const struct vaccination *v, int64_t *id)
    MAMORI_WARN_UNUSED;

/* One row by id (STORE_NOTFOUND if not the tenant's). */
enum store_status store_vaccination_get(struct store_tenant *ctx, int64_t id,
                                        struct vaccination *out) MAMORI_WARN_UNUSED;

/* A resident's vaccinations, voided ones included, by date then dose
 * (up to max, *n found). */
enum store_status store_vaccinations_of(struct store_tenant *ctx, int64_t resident_id,
                                        struct vaccination *out, size_t max, size_t *n)
    MAMORI_WARN_UNUSED;

/* ---- corrections by authority (職権修正, R2.9) ------------------------- */

/*
 * Replace a resident's fields with `after` (its address_no must stay the
 * same), or a vaccination's (`after` may set voided), and keep, in the
 * same transaction, who did it, when, why, and the full before and after
 * images, encrypted.  *correction_id (may be NULL) gets the history row.
 */
enum store_status store_resident_correct(struct store_tenant *ctx, int64_t id,
                                         const struct resident *after, const char *actor,
                                         const char *reason, int64_t *correction_id)
    MAMORI_WARN_UNUSED;
enum store_status store_vaccination_correct(struct store_tenant *ctx, int64_t id,
                                            const struct vaccination *after,
                                            const char *actor, const char *reason,
                                            int64_t *correction_id) MAMORI_WARN_UNUSED;

enum store_object { STORE_OBJ_RESIDENT = 1, STORE_OBJ_VACCINATION };

/* One history entry.  before_json / after_json are the decrypted images
 * (JSON objects of the fields), valid only during the callback; they hold
 * personal data: never log them. */
struct correction {
    int64_t            id;
    enum store_object  object;
    int64_t            object_id;
    char               at[STORE_TS_LEN];
    char               actor[STORE_ACTOR_MAX];
    char               reason[STORE_REASON_MAX];
    const char        *before_json;
    const char        *after_json;
};

/* The corrections of one object, oldest first; fn returns non-zero to stop. */
enum store_status store_corrections_of(struct store_tenant *ctx, enum store_object object,
                                       int64_t object_id,
                                       int (*fn)(const struct correction *, void *),
                                       void *arg) MAMORI_WARN_UNUSED;

/* ---- lookups and walks ---------------------------------------------- */

/* The row id for an address number, without decrypting anything. */
enum store_status store_resident_id(struct store_tenant *ctx, const char *address_no,
                                    int64_t *id) MAMORI_WARN_UNUSED;

/* Residents by id ascending, starting after `after_id`, at most `max`
 * (decrypted; for exports and target lists).  With current_only, those who
 * have ceased to be residents (moved out, deceased: R2.5) are left out.
 * *last gets the last id passed to fn (the next page's after_id); *n the
 * count.  The resident passed to fn is wiped after the call. */
enum store_status store_resident_walk(struct store_tenant *ctx, int64_t after_id,
                                      size_t max, bool current_only,
                                      int (*fn)(const struct resident *, void *),
                                      void *arg, int64_t *last, size_t *n)
    MAMORI_WARN_UNUSED;

/* Vaccinations by id ascending, the same way. */
enum store_status store_vaccination_walk(struct store_tenant *ctx, int64_t after_id,
                                         size_t max,
                                         int (*fn)(const struct vaccination *, void *),
                                         void *arg, int64_t *last, size_t *n)
    MAMORI_WARN_UNUSED;

/* ---- bulk imports (R2.6) --------------------------------------------- */

/*
 * All-or-nothing imports: between store_bulk_begin and store_bulk_commit
 * every write call on this context joins one transaction on one
 * connection; store_bulk_abort (or any failure of a call inside it) rolls
 * everything back.  Only one bulk transaction per context at a time.
 */
enum store_status store_bulk_begin(struct store_tenant *ctx) MAMORI_WARN_UNUSED;
enum store_status store_bulk_commit(struct store_tenant *ctx) MAMORI_WARN_UNUSED;
void store_bulk_abort(struct store_tenant *ctx);

/* Vaccinations in one go (inside or outside a bulk transaction). */
enum store_status store_vaccination_insert_batch(struct store_tenant *ctx,
                                                 const struct vaccination *v, size_t n,
                                                 int64_t *ids) MAMORI_WARN_UNUSED;

/* Imports by content: the SHA-256 of a file already imported into this
 * tenant (STORE_OK and when, or STORE_NOTFOUND), and the record of one
 * (written inside the import's bulk transaction, so it exists only if
 * the rows do).  `kind` is "residents", "vouchers" or "vaccinations". */
enum store_status store_import_seen(struct store_tenant *ctx, const uint8_t sha256[32],
                                    char when[STORE_TS_LEN]) MAMORI_WARN_UNUSED;
enum store_status store_import_record(struct store_tenant *ctx, const uint8_t sha256[32],
                                      const char *kind, uint64_t rows, const char *actor)
    MAMORI_WARN_UNUSED;

/* ---- retention (保管期限, R2.10) ---------------------------------------- */

/*
 * Delete residents who ceased to be residents (moved out or died) before
 * `ceased_before` ("YYYY-MM"), with their vouchers, vaccinations and
 * corrections, at most `max` residents per call (one transaction).  Before
 * the commit, fn gets each deleted resident's address number (not
 * personal data on its own) so the caller can record what was deleted;
 * a non-zero return aborts and deletes nothing.  *deleted gets the count;
 * 0 means none are left.
 */
enum store_status store_retention_purge(struct store_tenant *ctx, const char *ceased_before,
                                        size_t max,
                                        int (*fn)(const char *address_no, void *),
                                        void *arg, size_t *deleted) MAMORI_WARN_UNUSED;

/*
 * For the scheduled retention job (vrs/retention.h).  Operator calls: no
 * personal data.  store_retention_tenants calls fn with each active
 * tenant's code, in order; a non-zero return stops the walk.
 * store_retention_claim takes the job's run of `day` ("YYYY-MM-DD", Japan
 * time) for `tenant`: STORE_OK for exactly one caller per tenant and day,
 * whatever process or restart asks, STORE_EXISTS for every other (the
 * claim is a row of the tenant's idempotency table, erased with it, and
 * the previous days' claims are dropped with each new one).
 */
enum store_status store_retention_tenants(struct store *st,
                                          int (*fn)(const char *tenant, void *), void *arg)
    MAMORI_WARN_UNUSED;
enum store_status store_retention_claim(struct store *st, const char *tenant, const char *day)
    MAMORI_WARN_UNUSED;

#endif
