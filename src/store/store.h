/*
 * store.h - the one storage API of mamori (R1.1, R1.3, R1.4, R9.2, R9.6).
 *
 * Two kinds of call:
 *
 *  - Operator calls take a `struct store *` only: open, migrate, health,
 *    counts, tenant create / state / erase.  They never return personal
 *    data (R1.3).
 *  - Personal-data calls take a `struct store_tenant *`, a tenant context
 *    that only the authenticated request layer creates.  Every statement
 *    they run is bound to that context's tenant id, and every field they
 *    read is decrypted with that tenant's keys, so another tenant's rows
 *    are neither selected nor decryptable (R1.1).
 *
 * Backends: SQLite (embedded default) and PostgreSQL, chosen by
 * store.backend in mamorid.conf; both pass the same test suite.
 *
 * Durability (R9.6): a write call returns STORE_OK only after its
 * transaction is committed durably (SQLite WAL + synchronous=FULL;
 * PostgreSQL synchronous_commit=on, fsync=on checked at open).  If a
 * commit fails the outcome is unknown, the handle turns fatal
 * (STORE_FATAL from then on) and nothing is retried: the caller reopens
 * and retries with the same idempotency key.
 *
 * Threads: a `struct store` is shared by all threads; it keeps a small
 * pool of connections (one per concurrent caller).  A tenant context
 * belongs to one thread at a time.
 */
#ifndef MAMORI_STORE_H
#define MAMORI_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "config/config.h"
#include "crypto/keyprov.h"

/* Typed status of every store call. */
enum store_status {
    STORE_OK = 0,
    STORE_NOTFOUND,   /* no such row or tenant */
    STORE_EXISTS,     /* unique value taken (address number, tenant) */
    STORE_INVALID,    /* a field or argument failed validation */
    STORE_DENIED,     /* tenant not active, or context misuse */
    STORE_KEY,        /* key not granted, or a ciphertext failed its check */
    STORE_VERSION,    /* schema newer than this code, or older (migrate) */
    STORE_BUSY,       /* lock wait timed out; nothing was written */
    STORE_FATAL,      /* commit or I/O failed: handle unusable, reopen */
    STORE_ERROR,      /* other backend error; nothing was written */
};

/* Fixed text for a status (no data in it). */
const char *store_strerror(enum store_status st);

/* Schema version this code expects (number of migrations). */
#define STORE_SCHEMA_VERSION 7

struct store_config {
    enum store_backend backend;     /* STORE_BACKEND_SQLITE | _POSTGRESQL */
    const char        *path;        /* SQLite file */
    const char        *conninfo;    /* libpq connection string */
    unsigned           pool_size;   /* connections; 0 means 4 */
    unsigned           busy_timeout_ms; /* lock wait; 0 means 5000 */
};

/* Open flags. */
#define STORE_OPEN_MIGRATE 0x1u  /* accept an older schema (store_migrate) */

struct store;
struct store_tenant;

/*
 * Connect and check the schema: a database newer than the code is always
 * refused (STORE_VERSION); an older one (a new, empty one is version 0) is
 * refused unless `flags` has STORE_OPEN_MIGRATE, after which the caller
 * runs store_migrate.  The caller owns *out (store_close).
 */
enum store_status store_open(const struct store_config *cfg, unsigned flags,
                             struct store **out) MAMORI_WARN_UNUSED;

/* Apply every pending migration, each in its own transaction, recording
 * it in schema_migrations.  *from / *to (may be NULL) get the versions. */
enum store_status store_migrate(struct store *st, int *from, int *to)
    MAMORI_WARN_UNUSED;

/* Where a libpq connection string leads, for the sandbox: *tcp false for
 * a Unix socket directory, else the TCP *port.  Returns 0 or -1 (bad
 * string or port). */
int store_pg_endpoint(const char *conninfo, bool *tcp, uint16_t *port)
    MAMORI_WARN_UNUSED;

/* Close every connection and free; NULL is fine.  Tenant contexts must be
 * closed first. */
void store_close(struct store *st);

/* ---- operator calls: no personal data --------------------------------- */

/* STORE_OK if a connection answers and the schema is current. */
enum store_status store_health(struct store *st) MAMORI_WARN_UNUSED;

/* Version recorded in the database. */
enum store_status store_schema_version(struct store *st, int *version)
    MAMORI_WARN_UNUSED;

struct store_counts {
    uint64_t tenants;       /* active tenants */
    uint64_t residents;     /* rows, all tenants or one */
    uint64_t idempotency;   /* remembered write keys */
};

/* Row counts for `tenant`, or the whole store when tenant is NULL. */
enum store_status store_counts(struct store *st, const char *tenant,
                               struct store_counts *out) MAMORI_WARN_UNUSED;

/* Register a tenant (state "active").  Its keys are made separately, by
 * the key holder (keyring_tenant_create). */
enum store_status store_tenant_create(struct store *st, const char *tenant)
    MAMORI_WARN_UNUSED;

/* "active" or "erased" into state[16]. */
enum store_status store_tenant_state(struct store *st, const char *tenant,
                                     char state[16]) MAMORI_WARN_UNUSED;

/*
 * Delete every row of the tenant and mark it "erased" (R1.4, R1.1): its
 * records, staff, sessions, terminals, site devices, transfer and import
 * records, in one transaction.  Other tenants' rows that name it (their
 * inquiries to it, their answers to it) are theirs and stay; its staff
 * IDs stay taken (R6.1).  Run it after keyring_erase: the keys going
 * first is what makes the data unreadable (crypto-shredding); this
 * removes the ciphertext itself (SQLite with secure_delete, then a WAL
 * checkpoint).  Running it again on an erased tenant is harmless.
 */
enum store_status store_tenant_erase(struct store *st, const char *tenant)
    MAMORI_WARN_UNUSED;

/* ---- tenant context ----------------------------------------------------- */

/*
 * REQUEST LAYER ONLY.  Make the context every personal-data call needs,
 * after the request layer has authenticated the caller and established
 * that they act for `tenant`.  Checks the tenant is active and that the
 * provider grants its keys (STORE_KEY otherwise).  `kp` must outlive the
 * context.  The caller owns *out (store_tenant_ctx_close).
 */
enum store_status store_tenant_ctx_open(struct store *st, const char *tenant,
                                        const struct key_provider *kp,
                                        struct store_tenant **out)
    MAMORI_WARN_UNUSED;

/* Free the context and wipe the keys it holds; NULL is fine. */
void store_tenant_ctx_close(struct store_tenant *ctx);

/* The context's tenant id. */
const char *store_tenant_id(const struct store_tenant *ctx);

/* ---- residents (R2.1) ---------------------------------------------------- */

/*
 * One resident.  All text is NUL-terminated UTF-8; "" means unknown.
 * Stored in clear: address_no (宛名番号: the tenant's own record number,
 * needed to find and join records), birth year and the year-month the
 * person ceased to be a resident (target lists by age and expiry, R2.5,
 * R2.10).  Everything else is encrypted; the individual number and the
 * name / kana + birth date are also blind-indexed.  See docs/storage.md.
 */
#define STORE_ADDRNO_MAX 32
/* True if `s` is an address number the store takes: 1..31 of [0-9A-Za-z-]. */
bool store_addrno_ok(const char *s);
#define STORE_NAME_MAX   192
#define STORE_ADDR_MAX   384
#define STORE_DATE_LEN   11      /* "YYYY-MM-DD" + NUL */

struct resident {
    int64_t  id;                        /* out: store row id */
    uint32_t key_version;               /* out: data key version of the row */
    char address_no[STORE_ADDRNO_MAX];  /* required, [0-9A-Za-z-], unique */
    char mynumber[13];                  /* "" or 12 digits, check digit ok */
    char name[STORE_NAME_MAX];          /* required */
    char kana[STORE_NAME_MAX];
    char birth_date[STORE_DATE_LEN];    /* required */
    char sex[4];                        /* "1" male, "2" female, "9" other */
    char postcode[9];
    char address[STORE_ADDR_MAX];
    char katagaki[STORE_NAME_MAX];      /* 方書 */
    char household_no[32];
    char relationship[64];              /* 続柄 */
    char became_date[STORE_DATE_LEN];
    char ceased_date[STORE_DATE_LEN];
    char movement_type[32];             /* 異動事由 */
    char movement_date[STORE_DATE_LEN];
    char prev_address[STORE_ADDR_MAX];
    char next_address[STORE_ADDR_MAX];
    char alias[STORE_NAME_MAX];         /* 通称 (foreign residents) */
};

/* Wipe a resident (it holds personal data). */
void store_resident_wipe(struct resident *r);

/* Idempotency keys: 1..64 of [A-Za-z0-9._:-], chosen by the client. */
#define STORE_IDEM_MAX 64

/*
 * Insert one resident; *id receives its row id.  With a non-NULL
 * `idem_key`, a second call with the same key for this tenant returns the
 * first call's id and writes nothing (a retry after a lost reply).
 */
enum store_status store_resident_insert(struct store_tenant *ctx,
                                        const char *idem_key,
                                        const struct resident *r,
                                        int64_t *id) MAMORI_WARN_UNUSED;

/* Insert `n` residents in one transaction (all or none); ids[i] gets row
 * i's id.  For imports: no idempotency keys. */
enum store_status store_resident_insert_batch(struct store_tenant *ctx,
                                              const struct resident *r,
                                              size_t n, int64_t *ids)
    MAMORI_WARN_UNUSED;

/* Read and decrypt one resident by row id / by address number. */
enum store_status store_resident_get(struct store_tenant *ctx, int64_t id,
                                     struct resident *out) MAMORI_WARN_UNUSED;
enum store_status store_resident_by_address_no(struct store_tenant *ctx,
                                               const char *address_no,
                                               struct resident *out)
    MAMORI_WARN_UNUSED;

/* Row ids (up to `max`, *n found) by individual number (R2.2, R2.8). */
enum store_status store_resident_find_mynumber(struct store_tenant *ctx,
                                               const char *mynumber,
                                               int64_t *ids, size_t max,
                                               size_t *n) MAMORI_WARN_UNUSED;

/* Row ids by name (kanji or kana, any width) + birth date; matches the
 * name or the kana column (4情報 search, R2.8). */
enum store_status store_resident_find_name_dob(struct store_tenant *ctx,
                                               const char *name,
                                               const char *birth_date,
                                               int64_t *ids, size_t max,
                                               size_t *n) MAMORI_WARN_UNUSED;

/*
 * Re-encryption pass after a rotation (R9.2): re-encrypt up to `max` rows
 * whose key version is older than the current one, in one transaction
 * each batch.  *done receives how many moved; 0 means none are left.
 */
enum store_status store_reencrypt(struct store_tenant *ctx, size_t max,
                                  size_t *done) MAMORI_WARN_UNUSED;

#endif
