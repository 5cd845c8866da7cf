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
    void (*after_erase)(void *c);            /* e.g. WAL checkpoint */
    enum store_status (*counts)(void *c, const char *t, struct store_counts *o);
    /* STORE_OK and *id if `key` was used for `op`; STORE_EXISTS if it was
     * used for another operation; STORE_NOTFOUND if unused. */
    enum store_status (*idem_get)(void *c, const char *t, const char *key,
                                  const char *op, int64_t *id);
    enum store_status (*idem_put)(void *c, const char *t, const char *key,
                                  const char *op, int64_t id, const char *now);
    /* `n` new row ids for tenant `t`, ascending, inside the transaction. */
    enum store_status (*next_ids)(void *c, const char *t, size_t n, int64_t *ids);
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

/* Column list "a_ct, b_ct, ..." for SQL building. */
int store_ct_columns(char *out, size_t outsz);

#endif
