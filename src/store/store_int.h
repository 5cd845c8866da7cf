/*
 * store_int.h - private to src/store: the backend interface and the
 * encrypted form of a row.  Nothing outside src/store includes this.
 */
#ifndef MAMORI_STORE_INT_H
#define MAMORI_STORE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>

#include "crypto/field.h"
#include "store/store.h"

/* Encrypted resident columns, in table order; each is "<name>_ct". */
#define RES_NCT 17
struct store_rescol {
    const char *name;
    size_t      off;    /* offsetof(struct resident, field) */
    size_t      size;   /* sizeof the field */
};
extern const struct store_rescol store_rescols[RES_NCT];

/* Largest resident field is an address. */
#define RES_CT_SLOT FIELD_CT_LEN(STORE_ADDR_MAX)

/* A resident as stored: plaintext metadata, blind indexes, ciphertexts. */
struct enc_resident {
    char     tenant[TENANT_ID_LEN + 1];
    int64_t  id;
    char     address_no[STORE_ADDRNO_MAX];
    uint32_t key_version;
    int      birth_year;
    char     ceased_ym[8];              /* "YYYY-MM" or "" (NULL) */
    bool     has_mynumber_bidx;
    uint8_t  mynumber_bidx[BIDX_LEN];
    uint8_t  name_bidx[BIDX_LEN];
    bool     has_kana_bidx;
    uint8_t  kana_bidx[BIDX_LEN];
    char     created_at[25];
    size_t   ct_len[RES_NCT];
    uint8_t  ct[RES_NCT][RES_CT_SLOT];
};

enum res_lookup { RES_BY_ID, RES_BY_ADDRNO };
enum rec_table { REC_VACCINATIONS = 1, REC_CORRECTIONS };
enum res_index { RES_IDX_MYNUMBER, RES_IDX_NAME };

/* A parameter or result column of store_ops.query (identity tables,
 * store_auth.c).  NULL results read as "" / 0 / length 0. */
enum qtype { QT_NULL = 0, QT_TEXT, QT_INT, QT_BLOB };
struct qarg {
    enum qtype  t;
    const char *s;
    int64_t     i;
    const void *b;
    size_t      n;
};
struct qcol {
    enum qtype t;
    char      *s;       /* QT_TEXT: buffer of ssz bytes */
    size_t     ssz;
    int64_t   *i;       /* QT_INT */
    uint8_t   *b;       /* QT_BLOB: buffer of bsz bytes, *blen gets the size */
    size_t     bsz;
    size_t    *blen;
};
#define STORE_QMAXARGS 16

/* Arguments of store_ops.query, for the files that write SQL once for
 * both backends (store_auth.c, store_site.c, store_records.c,
 * store_transfer.c). */
#define TXT(v) { .t = QT_TEXT, .s = (v) }
#define INT(v) { .t = QT_INT, .i = (v) }
#define BLB(v, len) { .t = QT_BLOB, .b = (v), .n = (len) }
#define NULLARG { .t = QT_NULL }
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* An optional text argument: SQL NULL when v is NULL or "", so an absent
 * value reads back as absent on both backends.  Borrows v. */
struct qarg store_opt_text(const char *v);

/*
 * One backend.  `c` is a connection used by one thread at a time.  Every
 * function returns a store status; errors that put durability in doubt
 * (commit failure, I/O error) return STORE_FATAL.
 */
struct store_ops {
    const char *name;
    enum store_status (*conn_open)(const struct store *st, void **c);
    void (*conn_close)(void *c);
    enum store_status (*begin)(void *c);     /* write transaction */
    enum store_status (*commit)(void *c);
    void (*rollback)(void *c);
    enum store_status (*schema_version)(void *c, int *v);
    int (*migrations)(void);                 /* how many exist */
    enum store_status (*migrate_one)(void *c, int version, const char *now);
    enum store_status (*tenant_create)(void *c, const char *t, const char *now);
    enum store_status (*tenant_state)(void *c, const char *t, char state[16]);
    enum store_status (*tenant_erase)(void *c, const char *t, const char *now);
    /* After a commit that deleted or wrote much (tenant erase, retention,
     * a bulk import): e.g. fold the WAL into the database and truncate it,
     * so deleted ciphertext is overwritten and the file does not stay the
     * size of the largest transaction. */
    void (*after_erase)(void *c);
    enum store_status (*counts)(void *c, const char *t, struct store_counts *o);
    /* STORE_OK and *id if `key` was used for `op`; STORE_EXISTS if it was
     * used for another operation; STORE_NOTFOUND if unused. */
    enum store_status (*idem_get)(void *c, const char *t, const char *key,
                                  const char *op, int64_t *id);
    enum store_status (*idem_put)(void *c, const char *t, const char *key,
                                  const char *op, int64_t id, const char *now);
    /* `n` new row ids for tenant `t`, ascending, inside the transaction. */
    enum store_status (*next_ids)(void *c, const char *t, size_t n, int64_t *ids);
    /* `n` new ids for rows of `table` of tenant `t`, ascending, inside
     * the transaction.  An op of its own (store_records.c is otherwise SQL
     * written once) because this is where the dialects must differ:
     * PostgreSQL draws from a sequence, so concurrent writers of a tenant
     * neither wait for each other nor collide (a max() + 1 there would
     * turn a race into a false STORE_EXISTS); SQLite's BEGIN IMMEDIATE
     * already serialises writers, so max() + 1 is exact and needs no
     * extra table. */
    enum store_status (*rec_ids)(void *c, const char *t, enum rec_table table,
                                 size_t n, int64_t *ids);
    /* SQL that matches an integer column against $2, a list of row ids
     * as text ("3,5,8"), so a batch is one statement instead of one per
     * row (the retention purge, R2.10): the other dialect difference,
     * PostgreSQL reading an array, SQLite a JSON array (json_each). */
    const char *id_in;
    /* Optional: bracket many res_insert calls so a backend can pipeline
     * them (results, and the first error, come back at batch_end). */
    enum store_status (*batch_begin)(void *c);
    enum store_status (*batch_end)(void *c);
    enum store_status (*res_insert)(void *c, const struct enc_resident *e);
    enum store_status (*res_update)(void *c, const struct enc_resident *e);
    enum store_status (*res_load)(void *c, const char *t, enum res_lookup by,
                                  int64_t id, const char *addrno,
                                  struct enc_resident *e);
    enum store_status (*res_find)(void *c, const char *t, enum res_index idx,
                                  const uint8_t *bidx, int64_t *ids, size_t max,
                                  size_t *n);
    enum store_status (*res_stale)(void *c, const char *t, uint32_t below,
                                   int64_t *ids, size_t max, size_t *n);
    /* Run `sql` (placeholders $1..$n, no '$' anywhere else) with `na`
     * arguments.  If nc > 0, the first row (if any) fills `cols` and
     * *found says whether there was one; *changes (may be NULL) gets
     * the rows a write touched.  A value too big for its buffer is
     * STORE_ERROR.  With `each` non-NULL every row fills `cols` in turn
     * and each(ctx) is called after it; a non-zero return stops the walk
     * (STORE_OK).  Listings use this; nothing here holds personal data. */
    enum store_status (*query)(void *c, const char *sql, const struct qarg *a,
                               size_t na, const struct qcol *cols, size_t nc,
                               bool *found, int64_t *changes,
                               int (*each)(void *ctx), void *ctx);
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

struct store {
    const struct store_ops *ops;
    char            path[PATH_MAX];
    char            conninfo[1024];
    unsigned        busy_timeout_ms;
    size_t          max;        /* pool size */
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    void          **idle;       /* idle connections (stack) */
    size_t          nidle;
    size_t          nopen;
    bool            fatal;      /* a commit failed: refuse everything */
};

/* The connection pool and commit-or-rollback of store.c, for the other
 * files of the module (store_auth.c). */
enum store_status store_conn_get(struct store *st, void **c);
void store_conn_put(struct store *st, void *c, enum store_status rc);
enum store_status store_finish(struct store *st, void *c, enum store_status rc);

/* One statement on a pooled connection.  A write runs in a transaction of
 * its own and returns STORE_OK only once committed (R9.6).  A read runs
 * outside any transaction: SQLite's BEGIN IMMEDIATE would make it take the
 * write lock and queue behind every writer, a bulk import included, and
 * one statement is consistent on its own.  Arguments as ops->query. */
enum store_status store_run1(struct store *st, bool write, const char *sql,
                             const struct qarg *a, size_t na, const struct qcol *cols,
                             size_t nc, bool *found, int64_t *changes,
                             int (*each)(void *), void *ctx);

/* Column list "a_ct, b_ct, ..." for SQL building. */
int store_ct_columns(char *out, size_t outsz);

/* ---- tenant contexts (store.c), for store_records.c ----------------------- */

#define STORE_KEY_CACHE 8

/*
 * A tenant context.  Bulk mode (store_records.h): while `bulk` is set,
 * every call on the context runs on that connection, inside its one open
 * transaction.  After a failed call inside it the transaction has been
 * rolled back and `bulk_failed` refuses writes (they must not land
 * outside the import) until store_bulk_abort or store_bulk_commit.
 */
struct store_tenant {
    struct store              *st;
    char                       tenant[TENANT_ID_LEN + 1];
    const struct key_provider *kp;
    struct tenant_key         *ik;          /* index key */
    struct tenant_key         *cur;         /* data key for new writes */
    struct tenant_key         *old[STORE_KEY_CACHE]; /* other versions, for reads */
    unsigned                   next_old;
    void                      *bulk;        /* connection of the bulk transaction */
    bool                       bulk_failed;
    size_t                     bulk_writes; /* write calls inside it (store_bulk_commit) */
};

/* A bulk transaction of at least this many write calls (an import's
 * batches, not an API request's one or two rows) has its WAL folded into
 * the database at commit (ops->after_erase). */
#define STORE_BULK_FOLD_WRITES 16

/* A connection for a read of `ctx`: the bulk transaction's if one is
 * open (reads see the import's own rows), else a pooled one.  Release it
 * with the call's status: inside a bulk transaction a backend error ends
 * it (PostgreSQL has aborted it anyway). */
enum store_status store_ctx_conn(struct store_tenant *ctx, void **c);
void store_ctx_release(struct store_tenant *ctx, void *c, enum store_status rc);

/* A write of `ctx`: store_write_begin gives the bulk connection, or a
 * pooled one with a new transaction (STORE_DENIED after a failed bulk
 * call).  store_write_end with the call's status: outside bulk mode it
 * commits on STORE_OK (rolls back with STORE_W_DISCARD: a replayed
 * idempotent call), else rolls back, and gives the connection back;
 * inside, a failure rolls the whole bulk transaction back.  A write
 * refused before it began (bad input) goes through store_write_refuse,
 * which fails an open bulk transaction the same way.  All return the
 * call's final status. */
#define STORE_W_DISCARD    0x1u
#define STORE_W_CHECKPOINT 0x2u     /* after_erase once committed */
enum store_status store_write_begin(struct store_tenant *ctx, void **c);
enum store_status store_write_end(struct store_tenant *ctx, void *c,
                                  enum store_status rc, unsigned flags);
enum store_status store_write_refuse(struct store_tenant *ctx, enum store_status rc);

/* Field encryption with the context's keys (crypto/field.h): seal under
 * the current data key, bound by the AD to tenant, table, column, row id
 * and key version; unseal with whatever version the header names.
 * STORE_INVALID if a plaintext does not fit, STORE_KEY if a ciphertext
 * fails its check or its key is not granted. */
enum store_status store_seal(struct store_tenant *ctx, const char *table,
                             const char *column, int64_t row, const void *plain,
                             size_t len, uint8_t *out, size_t outsz, size_t *outlen);
enum store_status store_unseal(struct store_tenant *ctx, const char *table,
                               const char *column, int64_t row, const uint8_t *ct,
                               size_t len, char *out, size_t outsz, size_t *outlen);

/* Input checks shared with store_records.c. */
bool store_date_ok(const char *s, bool required);   /* a calendar date, 1800-9999 */
bool store_idem_ok(const char *k);
bool store_actor_ok(const char *s);     /* a staff user id or a site device id */

/* The idempotency op of store_resident_insert (retention deletes its keys). */
#define STORE_IDEM_RES "resident.insert"

/* After an idempotent insert failed with STORE_EXISTS outside a bulk
 * transaction: a concurrent call with the same key for `op` may have
 * won.  STORE_OK and its *id if so, else STORE_EXISTS. */
enum store_status store_idem_recheck(struct store_tenant *ctx, const char *idem_key,
                                     const char *op, int64_t *id);
enum store_status store_res_validate(const struct resident *r);

/* The resident codec: blind indexes, clear metadata and every field
 * encrypted for row e->id (set it first); and back. */
enum store_status store_res_encode(struct store_tenant *ctx, const struct resident *r,
                                   struct enc_resident *e);
enum store_status store_res_decode(struct store_tenant *ctx, const struct enc_resident *e,
                                   struct resident *out);

/* Re-encrypt up to `max` record rows (vaccinations, corrections) with an
 * older key version inside the open transaction on `c`; *done gets how
 * many (store_reencrypt, store_records.c). */
enum store_status store_records_reencrypt(struct store_tenant *ctx, void *c, size_t max,
                                          size_t *done);

#endif
