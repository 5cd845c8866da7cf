/*
 * store_records.c - vouchers, vaccinations, corrections by authority,
 * walks, retention and import records (R2.3-R2.6, R2.9, R2.10).
 *
 * SQL is written once for both backends over the generic query, as in
 * store_auth.c: $n placeholders, integers and blobs only compared.  The
 * dialect differences are drawing new row ids, the rec_ids op, and
 * matching a batch's list of ids, the id_in fragment (store_int.h says
 * why).  Fields are sealed with the store's codec
 * (store_seal / store_unseal: tenant, table, column, row id and key
 * version in the AD), never with a cipher of our own.  Nothing here
 * logs: statuses carry no field value.
 *
 * Every write goes through store_write_begin / store_write_end, so it
 * joins the context's bulk transaction when one is open (R2.6).
 */
#include "store/store_records.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "store/store_int.h"

#define OPS(ctx) ((ctx)->st->ops)

#define IDEM_VAC    "vaccination.insert"
#define WALK_MAX    10000   /* rows per walk call: bounds a PostgreSQL result */
#define PURGE_MAX   10000   /* residents per retention call */
#define ID_CHUNK    1000    /* record ids drawn per round trip in a batch */

/* Vaccination details: lot, site, clinic and doctor joined by NUL bytes
 * (none can hold one), sealed as one field of the row. */
#define DETAILS_PLAIN_MAX (STORE_LOT_MAX + STORE_SITE_MAX + 2 * STORE_PERSON_MAX)
#define DETAILS_CT_MAX    FIELD_CT_LEN(DETAILS_PLAIN_MAX)

/*
 * Correction images: JSON of up to IMG_MAX bytes (a resident at every
 * field's maximum, escaped, fits).  The codec seals at most
 * FIELD_PLAIN_MAX bytes, so an image is sealed in segments, each stored
 * as a 2-byte big-endian length and a field ciphertext whose AD column
 * is "<column>#<index>/<count>": a segment moved, dropped or reordered
 * fails its check.
 */
#define IMG_MAX     16384
#define IMG_SEGS    ((IMG_MAX + FIELD_PLAIN_MAX - 1) / FIELD_PLAIN_MAX)
#define IMG_CT_MAX  (IMG_SEGS * (2 + FIELD_CT_MAX))
#define REASON_CT_MAX FIELD_CT_LEN(STORE_REASON_MAX)

#define VAC_COLS "vaccination_id, resident_id, vaccine, dose, vaccinated_on, " \
    "voucher_no, entered_by, entered_at, voided, details_ct"

/* ---- input checks (validation at the edge) -------------------------------- */

static bool
charset_ok(const char *s, size_t size, size_t min, size_t max, bool upper_ok)
{
    size_t n = strnlen(s, size);

    if (n == size || n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' ||
              (upper_ok && c >= 'A' && c <= 'Z')))
            return false;
    }
    return true;
}

/* Exactly 10 ASCII digits (R2.4), or "" where none is allowed. */
static bool
voucher_ok(const char *s, bool empty_ok)
{
    size_t n = strnlen(s, STORE_VOUCHER_LEN + 1);

    if (n == 0)
        return empty_ok;
    if (n != STORE_VOUCHER_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* UTF-8 inside its array, no control characters (they would travel into
 * CSV exports and JSON images). */
static bool
text_ok(const char *s, size_t size, bool required)
{
    size_t n = strnlen(s, size);

    if (n == size || (required && n == 0) || u8_check((const uint8_t *)s, n) != NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* "YYYY-MM", years from 1800. */
static bool
ym_ok(const char *s)
{
    if (s == NULL || strnlen(s, 8) != 7 || s[4] != '-')
        return false;
    for (size_t i = 0; i < 7; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return false;
    return s[0] >= '1' && (s[0] > '1' || s[1] >= '8') &&
        ((s[5] == '0' && s[6] >= '1') || (s[5] == '1' && s[6] <= '2'));
}

/* The fields a caller sets; entered_by only on insert. */
static enum store_status
vacc_validate(const struct vaccination *v, bool insert)
{
    if (v == NULL || v->resident_id <= 0 ||
        !charset_ok(v->vaccine, sizeof(v->vaccine), 1, 31, false) ||
        v->dose < 1 || v->dose > 99 || !store_date_ok(v->date, true) ||
        !voucher_ok(v->voucher_no, true) ||
        !charset_ok(v->lot, sizeof(v->lot), 0, 20, true) ||
        !text_ok(v->site, sizeof(v->site), false) ||
        !text_ok(v->clinic, sizeof(v->clinic), false) ||
        !text_ok(v->doctor, sizeof(v->doctor), false) ||
        (insert && !store_actor_ok(v->entered_by)))
        return STORE_INVALID;
    return STORE_OK;
}

/* ---- small helpers ---------------------------------------------------------- */

static enum store_status
query(struct store_tenant *ctx, void *c, const char *sql, const struct qarg *a, size_t na,
      const struct qcol *cols, size_t nc, bool *found, int64_t *changes)
{
    return OPS(ctx)->query(c, sql, a, na, cols, nc, found, changes, NULL, NULL);
}

/* One statement that must touch exactly one row; else `none`. */
static enum store_status
change1(struct store_tenant *ctx, void *c, const char *sql, const struct qarg *a,
        size_t na, enum store_status none)
{
    int64_t changes = 0;
    enum store_status rc = query(ctx, c, sql, a, na, NULL, 0, NULL, &changes);

    return rc == STORE_OK && changes != 1 ? none : rc;
}

/* STORE_OK if `sql` ($1 tenant, $2 id) finds a row, else STORE_NOTFOUND. */
static enum store_status
exists(struct store_tenant *ctx, void *c, const char *sql, int64_t id)
{
    const struct qarg a[] = { TXT(ctx->tenant), INT(id) };
    int64_t one = 0;
    const struct qcol col = { .t = QT_INT, .i = &one };
    bool found = false;
    enum store_status rc = query(ctx, c, sql, a, 2, &col, 1, &found, NULL);

    return rc == STORE_OK && !found ? STORE_NOTFOUND : rc;
}

#define RESIDENT_EXISTS "SELECT 1 FROM residents WHERE tenant_id = $1 AND resident_id = $2"
#define VACCINATION_EXISTS "SELECT 1 FROM vaccinations WHERE tenant_id = $1 AND " \
    "vaccination_id = $2"

/* ---- vaccination details ---------------------------------------------------- */

static enum store_status
details_seal(struct store_tenant *ctx, int64_t id, const struct vaccination *v,
             uint8_t ct[DETAILS_CT_MAX], size_t *ctlen)
{
    const char *part[4] = { v->lot, v->site, v->clinic, v->doctor };
    char plain[DETAILS_PLAIN_MAX];
    size_t off = 0;
    enum store_status rc;

    for (size_t i = 0; i < 4; i++) {
        size_t n = strlen(part[i]);     /* validated: fits its array */
        memcpy(plain + off, part[i], n);
        off += n;
        if (i < 3)
            plain[off++] = '\0';
    }
    rc = store_seal(ctx, "vaccinations", "details_ct", id, plain, off, ct, DETAILS_CT_MAX,
                    ctlen);
    util_wipe(plain, sizeof(plain));
    return rc;
}

/* Open a row's details into v; STORE_KEY if it is not ours or not of
 * this row (moved, edited, another tenant's). */
static enum store_status
details_open(struct store_tenant *ctx, int64_t id, const uint8_t *ct, size_t ctlen,
             struct vaccination *v)
{
    char plain[DETAILS_PLAIN_MAX + 1];
    char *dst[4] = { v->lot, v->site, v->clinic, v->doctor };
    const size_t dsz[4] = { sizeof(v->lot), sizeof(v->site), sizeof(v->clinic),
                            sizeof(v->doctor) };
    size_t n = 0, off = 0;
    enum store_status rc = store_unseal(ctx, "vaccinations", "details_ct", id, ct, ctlen,
                                        plain, sizeof(plain), &n);

    for (size_t i = 0; i < 4 && rc == STORE_OK; i++) {
        size_t len = off <= n ? strnlen(plain + off, n - off) : dsz[i];
        /* Three separators, the last part up to the end: anything else is
         * authentic but not our shape, and refused. */
        if (len >= dsz[i] || (i < 3 ? off + len >= n : off + len != n))
            rc = STORE_KEY;
        else {
            memcpy(dst[i], plain + off, len);
            dst[i][len] = '\0';
            off += len + 1;
        }
    }
    util_wipe(plain, sizeof(plain));
    return rc;
}

/* A vaccination row as the query fills it (VAC_COLS). */
struct vrow {
    struct vaccination v;
    int64_t            dose, voided;
    uint8_t            ct[DETAILS_CT_MAX];
    size_t             ctlen;
    struct qcol        cols[10];
};

static void
vrow_bind(struct vrow *r)
{
    struct vaccination *v = &r->v;

    r->cols[0] = (struct qcol){ .t = QT_INT, .i = &v->id };
    r->cols[1] = (struct qcol){ .t = QT_INT, .i = &v->resident_id };
    r->cols[2] = (struct qcol){ .t = QT_TEXT, .s = v->vaccine, .ssz = sizeof(v->vaccine) };
    r->cols[3] = (struct qcol){ .t = QT_INT, .i = &r->dose };
    r->cols[4] = (struct qcol){ .t = QT_TEXT, .s = v->date, .ssz = sizeof(v->date) };
    r->cols[5] = (struct qcol){ .t = QT_TEXT, .s = v->voucher_no,
                                .ssz = sizeof(v->voucher_no) };
    r->cols[6] = (struct qcol){ .t = QT_TEXT, .s = v->entered_by,
                                .ssz = sizeof(v->entered_by) };
    r->cols[7] = (struct qcol){ .t = QT_TEXT, .s = v->entered_at,
                                .ssz = sizeof(v->entered_at) };
    r->cols[8] = (struct qcol){ .t = QT_INT, .i = &r->voided };
    r->cols[9] = (struct qcol){ .t = QT_BLOB, .b = r->ct, .bsz = sizeof(r->ct),
                                .blen = &r->ctlen };
}

/* Finish a fetched row: clear fields, then the details opened. */
static enum store_status
vrow_open(struct store_tenant *ctx, struct vrow *r)
{
    r->v.dose = (int)r->dose;
    r->v.voided = r->voided != 0;
    return details_open(ctx, r->v.id, r->ct, r->ctlen, &r->v);
}

/* Load and open one vaccination of the tenant on `c`. */
static enum store_status
vrow_load(struct store_tenant *ctx, void *c, int64_t id, struct vrow *r)
{
    const struct qarg a[] = { TXT(ctx->tenant), INT(id) };
    bool found = false;
    enum store_status rc;

    vrow_bind(r);
    rc = query(ctx, c, "SELECT " VAC_COLS " FROM vaccinations WHERE tenant_id = $1 AND "
               "vaccination_id = $2", a, 2, r->cols, NELEM(r->cols), &found, NULL);
    if (rc == STORE_OK && !found)
        rc = STORE_NOTFOUND;
    if (rc == STORE_OK)
        rc = vrow_open(ctx, r);
    return rc;
}

/* ---- vouchers (R2.4) ----------------------------------------------------------- */

enum store_status
store_voucher_issue(struct store_tenant *ctx, const struct voucher *v)
{
    char now[STORE_TS_LEN];
    enum store_status rc;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (v == NULL || !voucher_ok(v->voucher_no, false) || v->resident_id <= 0 ||
        v->ticket_type < 0 || v->ticket_type > 9 || !store_date_ok(v->issued_date, true))
        return store_write_refuse(ctx, STORE_INVALID);
    util_utc_now(now);
    const struct qarg a[] = { TXT(ctx->tenant), TXT(v->voucher_no), INT(v->resident_id),
                              INT(v->ticket_type), TXT(v->issued_date), TXT(now) };
    if ((rc = store_write_begin(ctx, &c)) != STORE_OK)
        return rc;
    /* Selecting from residents binds the voucher to a resident of this
     * tenant: none found, nothing inserted (STORE_NOTFOUND). */
    rc = change1(ctx, c, "INSERT INTO vouchers (tenant_id, voucher_no, resident_id, "
                 "ticket_type, issued_date, voided, created_at) SELECT $1, $2, $3, $4, $5, "
                 "0, $6 FROM residents WHERE tenant_id = $1 AND resident_id = $3",
                 a, NELEM(a), STORE_NOTFOUND);
    return store_write_end(ctx, c, rc, 0);
}

struct vouchers_out {
    struct voucher  row;
    int64_t         type, voided;
    struct voucher *out;
    size_t          max, *n;
    struct qcol     cols[5];
};

static void
voucher_bind(struct vouchers_out *w)
{
    struct voucher *v = &w->row;

    w->cols[0] = (struct qcol){ .t = QT_TEXT, .s = v->voucher_no,
                                .ssz = sizeof(v->voucher_no) };
    w->cols[1] = (struct qcol){ .t = QT_INT, .i = &v->resident_id };
    w->cols[2] = (struct qcol){ .t = QT_INT, .i = &w->type };
    w->cols[3] = (struct qcol){ .t = QT_TEXT, .s = v->issued_date,
                                .ssz = sizeof(v->issued_date) };
    w->cols[4] = (struct qcol){ .t = QT_INT, .i = &w->voided };
}

static int
voucher_row(void *p)
{
    struct vouchers_out *w = p;

    if (*w->n >= w->max)
        return 1;
    w->row.ticket_type = (int)w->type;
    w->row.voided = w->voided != 0;
    w->out[(*w->n)++] = w->row;
    return 0;
}

#define VOUCHER_COLS "voucher_no, resident_id, ticket_type, issued_date, voided"

enum store_status
store_voucher_get(struct store_tenant *ctx, const char *voucher_no, struct voucher *out)
{
    struct vouchers_out w = { .max = 1 };
    size_t n = 0;
    enum store_status rc;
    void *c;

    if (ctx == NULL || out == NULL || voucher_no == NULL || !voucher_ok(voucher_no, false))
        return STORE_INVALID;
    w.out = out;
    w.n = &n;
    voucher_bind(&w);
    const struct qarg a[] = { TXT(ctx->tenant), TXT(voucher_no) };
    if ((rc = store_ctx_conn(ctx, &c)) != STORE_OK)
        return rc;
    rc = OPS(ctx)->query(c, "SELECT " VOUCHER_COLS " FROM vouchers WHERE tenant_id = $1 "
                         "AND voucher_no = $2", a, 2, w.cols, NELEM(w.cols), NULL, NULL,
                         voucher_row, &w);
    store_ctx_release(ctx, c, rc);
    return rc == STORE_OK && n == 0 ? STORE_NOTFOUND : rc;
}

enum store_status
store_vouchers_of(struct store_tenant *ctx, int64_t resident_id, struct voucher *out,
                  size_t max, size_t *n)
{
    struct vouchers_out w = { .out = out, .max = max, .n = n };
    enum store_status rc;
    void *c;

    if (ctx == NULL || n == NULL || (out == NULL && max > 0) || resident_id <= 0 ||
        max > INT64_MAX)
        return STORE_INVALID;
    *n = 0;
    voucher_bind(&w);
    const struct qarg a[] = { TXT(ctx->tenant), INT(resident_id), INT((int64_t)max) };
    if ((rc = store_ctx_conn(ctx, &c)) != STORE_OK)
        return rc;
    rc = exists(ctx, c, RESIDENT_EXISTS, resident_id);     /* R1.1: NOTFOUND */
    if (rc == STORE_OK && max > 0)
        rc = OPS(ctx)->query(c, "SELECT " VOUCHER_COLS " FROM vouchers WHERE "
                             "tenant_id = $1 AND resident_id = $2 ORDER BY issued_date, "
                             "voucher_no LIMIT $3", a, 3, w.cols, NELEM(w.cols), NULL, NULL,
                             voucher_row, &w);
    store_ctx_release(ctx, c, rc);
    return rc;
}

/* ---- vaccinations (R2.3) ---------------------------------------------------------- */

/* Seal and insert one validated row as `id`.  Selecting from residents
 * binds it to a resident of this tenant (else STORE_NOTFOUND); the
 * partial unique index refuses a second live (resident, vaccine, dose). */
static enum store_status
vacc_insert_row(struct store_tenant *ctx, void *c, const struct vaccination *v, int64_t id,
                const char *now, uint8_t ct[DETAILS_CT_MAX])
{
    size_t ctlen = 0;
    enum store_status rc = details_seal(ctx, id, v, ct, &ctlen);

    if (rc != STORE_OK)
        return rc;
    const struct qarg a[] = {
        TXT(ctx->tenant), INT(id), INT(v->resident_id), TXT(v->vaccine), INT(v->dose),
        TXT(v->date), v->voucher_no[0] != '\0' ? (struct qarg)TXT(v->voucher_no) :
        (struct qarg)NULLARG, TXT(v->entered_by), TXT(now), INT(ctx->cur->version),
        BLB(ct, ctlen),
    };
    return change1(ctx, c, "INSERT INTO vaccinations (tenant_id, vaccination_id, "
                   "resident_id, vaccine, dose, vaccinated_on, voucher_no, entered_by, "
                   "entered_at, voided, key_version, details_ct) SELECT $1, $2, $3, $4, $5, "
                   "$6, $7, $8, $9, 0, $10, $11 FROM residents WHERE tenant_id = $1 AND "
                   "resident_id = $3", a, NELEM(a), STORE_NOTFOUND);
}

/* The body of one insert; a key seen before answers with its first id. */
static enum store_status
vacc_insert_tx(struct store_tenant *ctx, void *c, const char *idem_key,
               const struct vaccination *v, int64_t *id, bool *replay)
{
    char now[STORE_TS_LEN];
    enum store_status rc = STORE_NOTFOUND;
    int64_t nid = 0;

    if (idem_key != NULL)
        rc = OPS(ctx)->idem_get(c, ctx->tenant, idem_key, IDEM_VAC, &nid);
    if (rc == STORE_OK) {
        *id = nid;
        *replay = true;
        return STORE_OK;
    }
    if (rc != STORE_NOTFOUND)
        return rc;      /* STORE_EXISTS: the key was used for another operation */
    util_utc_now(now);
    rc = OPS(ctx)->rec_ids(c, ctx->tenant, REC_VACCINATIONS, 1, &nid);
    if (rc == STORE_OK) {
        uint8_t ct[DETAILS_CT_MAX];
        rc = vacc_insert_row(ctx, c, v, nid, now, ct);
    }
    if (rc == STORE_OK && idem_key != NULL)
        rc = OPS(ctx)->idem_put(c, ctx->tenant, idem_key, IDEM_VAC, nid, now);
    if (rc == STORE_OK)
        *id = nid;
    return rc;
}

enum store_status
store_vaccination_insert(struct store_tenant *ctx, const char *idem_key,
                         const struct vaccination *v, int64_t *id)
{
    enum store_status rc;
    bool replay = false, bulk;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (id == NULL || (idem_key != NULL && !store_idem_ok(idem_key)) ||
        vacc_validate(v, true) != STORE_OK)
        return store_write_refuse(ctx, STORE_INVALID);
    bulk = ctx->bulk != NULL;
    if ((rc = store_write_begin(ctx, &c)) != STORE_OK)
        return rc;
    rc = vacc_insert_tx(ctx, c, idem_key, v, id, &replay);
    rc = store_write_end(ctx, c, rc, replay ? STORE_W_DISCARD : 0);
    /* Inside a bulk transaction the failure has ended it already. */
    if (rc == STORE_EXISTS && idem_key != NULL && !bulk)
        rc = store_idem_recheck(ctx, idem_key, IDEM_VAC, id);
    return rc;
}

enum store_status
store_vaccination_insert_batch(struct store_tenant *ctx, const struct vaccination *v,
                               size_t n, int64_t *ids)
{
    char now[STORE_TS_LEN];
    uint8_t ct[DETAILS_CT_MAX];
    int64_t chunk[ID_CHUNK];
    enum store_status rc;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (v == NULL && n > 0)
        return store_write_refuse(ctx, STORE_INVALID);
    for (size_t i = 0; i < n; i++)
        if (vacc_validate(&v[i], true) != STORE_OK)
            return store_write_refuse(ctx, STORE_INVALID);
    if ((rc = store_write_begin(ctx, &c)) != STORE_OK)
        return rc;
    util_utc_now(now);
    for (size_t base = 0; base < n && rc == STORE_OK; base += ID_CHUNK) {
        size_t k = n - base < ID_CHUNK ? n - base : ID_CHUNK;
        rc = OPS(ctx)->rec_ids(c, ctx->tenant, REC_VACCINATIONS, k, chunk);
        for (size_t i = 0; i < k && rc == STORE_OK; i++) {
            rc = vacc_insert_row(ctx, c, &v[base + i], chunk[i], now, ct);
            if (ids != NULL)
                ids[base + i] = chunk[i];
        }
    }
    return store_write_end(ctx, c, rc, 0);
}

enum store_status
store_vaccination_get(struct store_tenant *ctx, int64_t id, struct vaccination *out)
{
    struct vrow *r;
    enum store_status rc;
    void *c;

    if (ctx == NULL || out == NULL || id <= 0)
        return STORE_INVALID;
    if ((r = calloc(1, sizeof(*r))) == NULL)
        return STORE_ERROR;
    if ((rc = store_ctx_conn(ctx, &c)) == STORE_OK) {
        rc = vrow_load(ctx, c, id, r);
        store_ctx_release(ctx, c, rc);
    }
    if (rc == STORE_OK)
        *out = r->v;
    util_wipe(r, sizeof(*r));
    free(r);
    return rc;
}

/* Rows of a vaccination query, each opened and handed on. */
struct vwalk {
    struct store_tenant *ctx;
    struct vrow          r;
    enum store_status    rc;
    /* either into an array ... */
    struct vaccination  *out;
    size_t               max;
    /* ... or to a callback */
    int                (*fn)(const struct vaccination *, void *);
    void                *arg;
    int64_t              last;
    size_t               n;
};

static int
vwalk_row(void *p)
{
    struct vwalk *w = p;
    int stop = 0;

    if (w->fn == NULL && w->n >= w->max)
        return 1;
    w->rc = vrow_open(w->ctx, &w->r);
    if (w->rc != STORE_OK)
        return 1;
    if (w->fn != NULL)
        stop = w->fn(&w->r.v, w->arg);
    else
        w->out[w->n] = w->r.v;
    w->last = w->r.v.id;
    w->n++;
    util_wipe(&w->r.v, sizeof(w->r.v));
    return stop;
}

enum store_status
store_vaccinations_of(struct store_tenant *ctx, int64_t resident_id,
                      struct vaccination *out, size_t max, size_t *n)
{
    struct vwalk *w;
    enum store_status rc;
    void *c;

    if (ctx == NULL || n == NULL || (out == NULL && max > 0) || resident_id <= 0 ||
        max > INT64_MAX)
        return STORE_INVALID;
    *n = 0;
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return STORE_ERROR;
    w->ctx = ctx;
    w->out = out;
    w->max = max;
    vrow_bind(&w->r);
    const struct qarg a[] = { TXT(ctx->tenant), INT(resident_id), INT((int64_t)max) };
    if ((rc = store_ctx_conn(ctx, &c)) == STORE_OK) {
        rc = exists(ctx, c, RESIDENT_EXISTS, resident_id);     /* R1.1: NOTFOUND */
        if (rc == STORE_OK && max > 0)
            rc = OPS(ctx)->query(c, "SELECT " VAC_COLS " FROM vaccinations WHERE "
                                 "tenant_id = $1 AND resident_id = $2 ORDER BY "
                                 "vaccinated_on, dose, vaccination_id LIMIT $3", a, 3,
                                 w->r.cols, NELEM(w->r.cols), NULL, NULL, vwalk_row, w);
        store_ctx_release(ctx, c, rc);
    }
    if (rc == STORE_OK)
        rc = w->rc;
    if (rc == STORE_OK)
        *n = w->n;
    else if (out != NULL)
        util_wipe(out, max * sizeof(*out));     /* nothing half-read stays */
    util_wipe(w, sizeof(*w));
    free(w);
    return rc;
}

enum store_status
store_vaccination_walk(struct store_tenant *ctx, int64_t after_id, size_t max,
                       int (*fn)(const struct vaccination *, void *), void *arg,
                       int64_t *last, size_t *n)
{
    struct vwalk *w;
    enum store_status rc;
    void *c;

    if (ctx == NULL || fn == NULL || last == NULL || n == NULL || after_id < 0 ||
        max == 0 || max > WALK_MAX)
        return STORE_INVALID;
    *n = 0;
    *last = after_id;
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return STORE_ERROR;
    w->ctx = ctx;
    w->fn = fn;
    w->arg = arg;
    w->last = after_id;
    vrow_bind(&w->r);
    const struct qarg a[] = { TXT(ctx->tenant), INT(after_id), INT((int64_t)max) };
    if ((rc = store_ctx_conn(ctx, &c)) == STORE_OK) {
        rc = OPS(ctx)->query(c, "SELECT " VAC_COLS " FROM vaccinations WHERE "
                             "tenant_id = $1 AND vaccination_id > $2 ORDER BY "
                             "vaccination_id LIMIT $3", a, 3, w->r.cols, NELEM(w->r.cols),
                             NULL, NULL, vwalk_row, w);
        store_ctx_release(ctx, c, rc);
    }
    if (rc == STORE_OK)
        rc = w->rc;
    *n = w->n;
    *last = w->last;
    util_wipe(w, sizeof(*w));
    free(w);
    return rc;
}

/* ---- corrections by authority (R2.9) ------------------------------------------- */

/* Seal a JSON image in segments (see IMG_MAX). */
static enum store_status
img_seal(struct store_tenant *ctx, int64_t cid, const char *column, const char *json,
         size_t len, uint8_t *out, size_t *outlen)
{
    size_t nseg = len == 0 ? 1 : (len + FIELD_PLAIN_MAX - 1) / FIELD_PLAIN_MAX, o = 0;
    enum store_status rc = STORE_OK;

    if (nseg > IMG_SEGS)
        return STORE_INVALID;
    for (size_t i = 0; i < nseg && rc == STORE_OK; i++) {
        size_t off = i * FIELD_PLAIN_MAX, seg = len - off, ctlen = 0;
        char col[FIELD_NAME_MAX + 1];
        if (seg > FIELD_PLAIN_MAX)
            seg = FIELD_PLAIN_MAX;
        snprintf(col, sizeof(col), "%s#%zu/%zu", column, i, nseg);
        rc = store_seal(ctx, "corrections", col, cid, json + off, seg, out + o + 2,
                        IMG_CT_MAX - o - 2, &ctlen);
        out[o] = (uint8_t)(ctlen >> 8);
        out[o + 1] = (uint8_t)ctlen;
        o += 2 + ctlen;
    }
    *outlen = o;
    return rc;
}

/* Open a sealed image into out[IMG_MAX + 1], NUL-terminated. */
static enum store_status
img_open(struct store_tenant *ctx, int64_t cid, const char *column, const uint8_t *ct,
         size_t len, char *out)
{
    size_t nseg = 0, o, off = 0;
    enum store_status rc = STORE_OK;

    for (o = 0; o < len; nseg++) {
        size_t seg;
        if (len - o < 2)
            return STORE_KEY;
        seg = (size_t)ct[o] << 8 | ct[o + 1];
        if (seg > len - o - 2)
            return STORE_KEY;
        o += 2 + seg;
    }
    if (nseg == 0 || nseg > IMG_SEGS)
        return STORE_KEY;
    o = 0;
    for (size_t i = 0; i < nseg && rc == STORE_OK; i++) {
        size_t seg = (size_t)ct[o] << 8 | ct[o + 1], n = 0;
        char col[FIELD_NAME_MAX + 1];
        snprintf(col, sizeof(col), "%s#%zu/%zu", column, i, nseg);
        rc = store_unseal(ctx, "corrections", col, cid, ct + o + 2, seg, out + off,
                          IMG_MAX + 1 - off, &n);
        off += n;
        o += 2 + seg;
    }
    if (rc == STORE_OK)
        out[off] = '\0';
    else
        util_wipe(out, IMG_MAX + 1);    /* no segment of a failed image stays */
    return rc;
}

static int
set_str(json_t *o, const char *key, const char *v)
{
    return json_object_set_new(o, key, json_string(v));
}

/* The fields of a resident / a vaccination as JSON text in out[IMG_MAX].
 * jansson's own copies are freed unwiped; the output buffer is ours. */
static enum store_status
img_dump(json_t *o, int bad, char *out, size_t *len)
{
    size_t n = bad == 0 && o != NULL ? json_dumpb(o, out, IMG_MAX,
                                                  JSON_COMPACT | JSON_SORT_KEYS) : 0;

    json_decref(o);
    if (n == 0 || n > IMG_MAX)
        return STORE_INVALID;
    *len = n;
    return STORE_OK;
}

/* Keys are the field names of store.h / store_records.h. */
static enum store_status
res_image(const struct resident *r, char *out, size_t *len)
{
    json_t *o = json_object();
    int bad;

    if (o == NULL)
        return STORE_ERROR;
    bad = set_str(o, "address_no", r->address_no);
    for (size_t i = 0; i < RES_NCT && bad == 0; i++)
        bad = set_str(o, store_rescols[i].name, (const char *)r + store_rescols[i].off);
    return img_dump(o, bad, out, len);
}

static enum store_status
vacc_image(const struct vaccination *v, char *out, size_t *len)
{
    json_t *o = json_object();
    int bad;

    if (o == NULL)
        return STORE_ERROR;
    bad = json_object_set_new(o, "resident_id", json_integer(v->resident_id)) |
        json_object_set_new(o, "dose", json_integer(v->dose)) |
        json_object_set_new(o, "voided", json_boolean(v->voided)) |
        set_str(o, "vaccine", v->vaccine) | set_str(o, "date", v->date) |
        set_str(o, "voucher_no", v->voucher_no) | set_str(o, "lot", v->lot) |
        set_str(o, "site", v->site) | set_str(o, "clinic", v->clinic) |
        set_str(o, "doctor", v->doctor) | set_str(o, "entered_by", v->entered_by) |
        set_str(o, "entered_at", v->entered_at);
    return img_dump(o, bad, out, len);
}

/* Working memory of a correction: images and their ciphertexts. */
struct corr_buf {
    char    before[IMG_MAX + 1], after[IMG_MAX + 1];
    size_t  blen, alen;
    uint8_t reason_ct[REASON_CT_MAX], before_ct[IMG_CT_MAX], after_ct[IMG_CT_MAX];
    size_t  rlen, bctlen, actlen;
};

/* Record who, when, why, before and after in the open transaction (R2.9). */
static enum store_status
correction_put(struct store_tenant *ctx, void *c, enum store_object object, int64_t oid,
               const char *actor, const char *reason, struct corr_buf *b, int64_t *cid)
{
    char now[STORE_TS_LEN];
    int64_t id = 0;
    enum store_status rc = OPS(ctx)->rec_ids(c, ctx->tenant, REC_CORRECTIONS, 1, &id);

    if (rc == STORE_OK)
        rc = store_seal(ctx, "corrections", "reason_ct", id, reason, strlen(reason),
                        b->reason_ct, sizeof(b->reason_ct), &b->rlen);
    if (rc == STORE_OK)
        rc = img_seal(ctx, id, "before_ct", b->before, b->blen, b->before_ct, &b->bctlen);
    if (rc == STORE_OK)
        rc = img_seal(ctx, id, "after_ct", b->after, b->alen, b->after_ct, &b->actlen);
    if (rc != STORE_OK)
        return rc;
    util_utc_now(now);
    const struct qarg a[] = {
        TXT(ctx->tenant), INT(id),
        TXT(object == STORE_OBJ_RESIDENT ? "resident" : "vaccination"), INT(oid), TXT(now),
        TXT(actor), INT(ctx->cur->version), BLB(b->reason_ct, b->rlen),
        BLB(b->before_ct, b->bctlen), BLB(b->after_ct, b->actlen),
    };
    rc = change1(ctx, c, "INSERT INTO corrections (tenant_id, correction_id, object, "
                 "object_id, corrected_at, actor, key_version, reason_ct, before_ct, "
                 "after_ct) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                 a, NELEM(a), STORE_ERROR);
    if (rc == STORE_OK && cid != NULL)
        *cid = id;
    return rc;
}

static bool
reason_ok(const char *reason)
{
    return reason != NULL && text_ok(reason, STORE_REASON_MAX, true);
}

struct res_corr {
    struct enc_resident e;
    struct resident     before;
    struct corr_buf     b;
};

/* Lock the row first (PostgreSQL: no other correction reads the same
 * "before"), then read, re-encrypt and record, in one transaction. */
static enum store_status
res_correct_tx(struct store_tenant *ctx, void *c, int64_t id, const struct resident *after,
               const char *actor, const char *reason, struct res_corr *w, int64_t *cid)
{
    const struct qarg a[] = { TXT(ctx->tenant), INT(id) };
    enum store_status rc = change1(ctx, c, "UPDATE residents SET key_version = key_version "
                                   "WHERE tenant_id = $1 AND resident_id = $2", a, 2,
                                   STORE_NOTFOUND);

    if (rc == STORE_OK)
        rc = OPS(ctx)->res_load(c, ctx->tenant, RES_BY_ID, id, NULL, &w->e);
    if (rc == STORE_OK)
        rc = store_res_decode(ctx, &w->e, &w->before);
    if (rc == STORE_OK && strcmp(w->before.address_no, after->address_no) != 0)
        rc = STORE_INVALID;     /* the address number is the record's identity */
    if (rc == STORE_OK)
        rc = res_image(&w->before, w->b.before, &w->b.blen);
    if (rc == STORE_OK)
        rc = res_image(after, w->b.after, &w->b.alen);
    if (rc == STORE_OK) {
        memset(&w->e, 0, sizeof(w->e));
        w->e.id = id;
        rc = store_res_encode(ctx, after, &w->e);
    }
    if (rc == STORE_OK)
        rc = OPS(ctx)->res_update(c, &w->e);
    if (rc == STORE_OK) {
        /* The clear columns and blind indexes follow the new fields. */
        const struct qarg m[] = {
            TXT(ctx->tenant), INT(id), INT(w->e.birth_year),
            w->e.ceased_ym[0] != '\0' ? (struct qarg)TXT(w->e.ceased_ym) :
            (struct qarg)NULLARG,
            w->e.has_mynumber_bidx ? (struct qarg)BLB(w->e.mynumber_bidx, BIDX_LEN) :
            (struct qarg)NULLARG,
            BLB(w->e.name_bidx, BIDX_LEN),
            w->e.has_kana_bidx ? (struct qarg)BLB(w->e.kana_bidx, BIDX_LEN) :
            (struct qarg)NULLARG,
        };
        rc = change1(ctx, c, "UPDATE residents SET birth_year = $3, ceased_ym = $4, "
                     "mynumber_bidx = $5, name_bidx = $6, kana_bidx = $7 WHERE "
                     "tenant_id = $1 AND resident_id = $2", m, NELEM(m), STORE_NOTFOUND);
    }
    if (rc == STORE_OK)
        rc = correction_put(ctx, c, STORE_OBJ_RESIDENT, id, actor, reason, &w->b, cid);
    return rc;
}

enum store_status
store_resident_correct(struct store_tenant *ctx, int64_t id, const struct resident *after,
                       const char *actor, const char *reason, int64_t *correction_id)
{
    struct res_corr *w;
    enum store_status rc;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (id <= 0 || !store_actor_ok(actor) || !reason_ok(reason) ||
        store_res_validate(after) != STORE_OK)
        return store_write_refuse(ctx, STORE_INVALID);
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return store_write_refuse(ctx, STORE_ERROR);
    if ((rc = store_write_begin(ctx, &c)) == STORE_OK)
        rc = store_write_end(ctx, c, res_correct_tx(ctx, c, id, after, actor, reason, w,
                                                    correction_id), 0);
    util_wipe(w, sizeof(*w));
    free(w);
    return rc;
}

struct vac_corr {
    struct vrow        r;
    struct vaccination next;
    uint8_t            ct[DETAILS_CT_MAX];
    struct corr_buf    b;
};

static enum store_status
vac_correct_tx(struct store_tenant *ctx, void *c, int64_t id, const struct vaccination *after,
               const char *actor, const char *reason, struct vac_corr *w, int64_t *cid)
{
    const struct qarg a[] = { TXT(ctx->tenant), INT(id) };
    struct vaccination *n = &w->next;
    size_t ctlen = 0;
    enum store_status rc = change1(ctx, c, "UPDATE vaccinations SET voided = voided WHERE "
                                   "tenant_id = $1 AND vaccination_id = $2", a, 2,
                                   STORE_NOTFOUND);

    if (rc == STORE_OK)
        rc = vrow_load(ctx, c, id, &w->r);
    if (rc == STORE_OK && after->resident_id != w->r.v.resident_id)
        rc = STORE_INVALID;     /* a record stays with its person: void and re-enter */
    if (rc != STORE_OK)
        return rc;
    /* Who entered it and when stay; the correction row says who changed it. */
    *n = *after;
    n->id = id;
    memcpy(n->entered_by, w->r.v.entered_by, sizeof(n->entered_by));
    memcpy(n->entered_at, w->r.v.entered_at, sizeof(n->entered_at));
    rc = vacc_image(&w->r.v, w->b.before, &w->b.blen);
    if (rc == STORE_OK)
        rc = vacc_image(n, w->b.after, &w->b.alen);
    if (rc == STORE_OK)
        rc = details_seal(ctx, id, n, w->ct, &ctlen);
    if (rc == STORE_OK) {
        const struct qarg u[] = {
            TXT(ctx->tenant), INT(id), TXT(n->vaccine), INT(n->dose), TXT(n->date),
            n->voucher_no[0] != '\0' ? (struct qarg)TXT(n->voucher_no) :
            (struct qarg)NULLARG, INT(n->voided ? 1 : 0), INT(ctx->cur->version),
            BLB(w->ct, ctlen),
        };
        rc = change1(ctx, c, "UPDATE vaccinations SET vaccine = $3, dose = $4, "
                     "vaccinated_on = $5, voucher_no = $6, voided = $7, key_version = $8, "
                     "details_ct = $9 WHERE tenant_id = $1 AND vaccination_id = $2",
                     u, NELEM(u), STORE_NOTFOUND);
    }
    if (rc == STORE_OK)
        rc = correction_put(ctx, c, STORE_OBJ_VACCINATION, id, actor, reason, &w->b, cid);
    return rc;
}

enum store_status
store_vaccination_correct(struct store_tenant *ctx, int64_t id,
                          const struct vaccination *after, const char *actor,
                          const char *reason, int64_t *correction_id)
{
    struct vac_corr *w;
    enum store_status rc;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (id <= 0 || !store_actor_ok(actor) || !reason_ok(reason) ||
        vacc_validate(after, false) != STORE_OK)
        return store_write_refuse(ctx, STORE_INVALID);
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return store_write_refuse(ctx, STORE_ERROR);
    if ((rc = store_write_begin(ctx, &c)) == STORE_OK)
        rc = store_write_end(ctx, c, vac_correct_tx(ctx, c, id, after, actor, reason, w,
                                                    correction_id), 0);
    util_wipe(w, sizeof(*w));
    free(w);
    return rc;
}

struct cwalk {
    struct store_tenant *ctx;
    struct correction    row;
    struct corr_buf      b;
    int                (*fn)(const struct correction *, void *);
    void                *arg;
    enum store_status    rc;
};

static int
cwalk_row(void *p)
{
    struct cwalk *w = p;
    struct correction *r = &w->row;
    size_t n = 0;
    int stop;

    w->rc = store_unseal(w->ctx, "corrections", "reason_ct", r->id, w->b.reason_ct,
                         w->b.rlen, r->reason, sizeof(r->reason), &n);
    if (w->rc == STORE_OK)
        w->rc = img_open(w->ctx, r->id, "before_ct", w->b.before_ct, w->b.bctlen,
                         w->b.before);
    if (w->rc == STORE_OK)
        w->rc = img_open(w->ctx, r->id, "after_ct", w->b.after_ct, w->b.actlen,
                         w->b.after);
    if (w->rc != STORE_OK)
        return 1;
    r->before_json = w->b.before;
    r->after_json = w->b.after;
    stop = w->fn(r, w->arg);
    /* The images hold personal data: gone once the callback returns. */
    util_wipe(w->b.before, sizeof(w->b.before));
    util_wipe(w->b.after, sizeof(w->b.after));
    util_wipe(r->reason, sizeof(r->reason));
    return stop;
}

enum store_status
store_corrections_of(struct store_tenant *ctx, enum store_object object, int64_t object_id,
                     int (*fn)(const struct correction *, void *), void *arg)
{
    struct cwalk *w;
    enum store_status rc;
    void *c;

    if (ctx == NULL || fn == NULL || object_id <= 0 ||
        (object != STORE_OBJ_RESIDENT && object != STORE_OBJ_VACCINATION))
        return STORE_INVALID;
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return STORE_ERROR;
    w->ctx = ctx;
    w->fn = fn;
    w->arg = arg;
    w->row.object = object;
    w->row.object_id = object_id;
    const struct qarg a[] = {
        TXT(ctx->tenant), TXT(object == STORE_OBJ_RESIDENT ? "resident" : "vaccination"),
        INT(object_id),
    };
    const struct qcol cols[] = {
        { .t = QT_INT, .i = &w->row.id },
        { .t = QT_TEXT, .s = w->row.at, .ssz = sizeof(w->row.at) },
        { .t = QT_TEXT, .s = w->row.actor, .ssz = sizeof(w->row.actor) },
        { .t = QT_BLOB, .b = w->b.reason_ct, .bsz = sizeof(w->b.reason_ct),
          .blen = &w->b.rlen },
        { .t = QT_BLOB, .b = w->b.before_ct, .bsz = sizeof(w->b.before_ct),
          .blen = &w->b.bctlen },
        { .t = QT_BLOB, .b = w->b.after_ct, .bsz = sizeof(w->b.after_ct),
          .blen = &w->b.actlen },
    };
    if ((rc = store_ctx_conn(ctx, &c)) == STORE_OK) {
        /* R1.1: another tenant's object is unknown here, not empty. */
        rc = exists(ctx, c, object == STORE_OBJ_RESIDENT ? RESIDENT_EXISTS :
                    VACCINATION_EXISTS, object_id);
        if (rc == STORE_OK)
            rc = OPS(ctx)->query(c, "SELECT correction_id, corrected_at, actor, reason_ct, "
                                 "before_ct, after_ct FROM corrections WHERE tenant_id = $1 "
                                 "AND object = $2 AND object_id = $3 ORDER BY corrected_at, "
                                 "correction_id", a, 3, cols, NELEM(cols), NULL, NULL,
                                 cwalk_row, w);
        store_ctx_release(ctx, c, rc);
    }
    if (rc == STORE_OK)
        rc = w->rc;
    util_wipe(w, sizeof(*w));
    free(w);
    return rc;
}

/* ---- lookups and walks ------------------------------------------------------------ */

enum store_status
store_resident_id(struct store_tenant *ctx, const char *address_no, int64_t *id)
{
    bool found = false;
    enum store_status rc;
    void *c;

    if (ctx == NULL || id == NULL || address_no == NULL || !store_addrno_ok(address_no))
        return STORE_INVALID;
    const struct qarg a[] = { TXT(ctx->tenant), TXT(address_no) };
    const struct qcol col = { .t = QT_INT, .i = id };
    if ((rc = store_ctx_conn(ctx, &c)) != STORE_OK)
        return rc;
    rc = query(ctx, c, "SELECT resident_id FROM residents WHERE tenant_id = $1 AND "
               "address_no = $2", a, 2, &col, 1, &found, NULL);
    store_ctx_release(ctx, c, rc);
    return rc == STORE_OK && !found ? STORE_NOTFOUND : rc;
}

struct rwalk {
    struct store_tenant *ctx;
    struct enc_resident  e;
    int64_t              kv, by;
    struct resident      r;
    int                (*fn)(const struct resident *, void *);
    void                *arg;
    int64_t              last;
    size_t               n;
    enum store_status    rc;
    struct qcol          cols[6 + RES_NCT];
};

/* One row: decrypted only now, when it is handed on (so a stopped walk
 * decrypted nothing more), and wiped after. */
static int
rwalk_row(void *p)
{
    struct rwalk *w = p;
    int stop;

    w->e.key_version = (uint32_t)w->kv;
    w->e.birth_year = (int)w->by;
    w->rc = store_res_decode(w->ctx, &w->e, &w->r);
    if (w->rc != STORE_OK)
        return 1;
    stop = w->fn(&w->r, w->arg);
    store_resident_wipe(&w->r);
    w->last = w->e.id;
    w->n++;
    return stop;
}

enum store_status
store_resident_walk(struct store_tenant *ctx, int64_t after_id, size_t max,
                    bool current_only, int (*fn)(const struct resident *, void *),
                    void *arg, int64_t *last, size_t *n)
{
    char cts[1024], sql[1600];
    struct rwalk *w;
    enum store_status rc;
    void *c;

    if (ctx == NULL || fn == NULL || last == NULL || n == NULL || after_id < 0 ||
        max == 0 || max > WALK_MAX || store_ct_columns(cts, sizeof(cts)) != 0)
        return STORE_INVALID;
    *n = 0;
    *last = after_id;
    /* R2.5: moved-out and deceased residents have a clear ceased_ym. */
    snprintf(sql, sizeof(sql), "SELECT resident_id, address_no, key_version, birth_year, "
             "ceased_ym, created_at, %s FROM residents WHERE tenant_id = $1 AND "
             "resident_id > $2%s ORDER BY resident_id LIMIT $3", cts,
             current_only ? " AND ceased_ym IS NULL" : "");
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return STORE_ERROR;
    w->ctx = ctx;
    w->fn = fn;
    w->arg = arg;
    w->last = after_id;
    memcpy(w->e.tenant, ctx->tenant, sizeof(w->e.tenant));
    w->cols[0] = (struct qcol){ .t = QT_INT, .i = &w->e.id };
    w->cols[1] = (struct qcol){ .t = QT_TEXT, .s = w->e.address_no,
                                .ssz = sizeof(w->e.address_no) };
    w->cols[2] = (struct qcol){ .t = QT_INT, .i = &w->kv };
    w->cols[3] = (struct qcol){ .t = QT_INT, .i = &w->by };
    w->cols[4] = (struct qcol){ .t = QT_TEXT, .s = w->e.ceased_ym,
                                .ssz = sizeof(w->e.ceased_ym) };
    w->cols[5] = (struct qcol){ .t = QT_TEXT, .s = w->e.created_at,
                                .ssz = sizeof(w->e.created_at) };
    for (size_t i = 0; i < RES_NCT; i++)
        w->cols[6 + i] = (struct qcol){ .t = QT_BLOB, .b = w->e.ct[i], .bsz = RES_CT_SLOT,
                                        .blen = &w->e.ct_len[i] };
    const struct qarg a[] = { TXT(ctx->tenant), INT(after_id), INT((int64_t)max) };
    if ((rc = store_ctx_conn(ctx, &c)) == STORE_OK) {
        rc = OPS(ctx)->query(c, sql, a, 3, w->cols, NELEM(w->cols), NULL, NULL, rwalk_row, w);
        store_ctx_release(ctx, c, rc);
    }
    if (rc == STORE_OK)
        rc = w->rc;
    *n = w->n;
    *last = w->last;
    util_wipe(w, sizeof(*w));
    free(w);
    return rc;
}

/* ---- imports (R2.6) ---------------------------------------------------------------- */

enum store_status
store_import_seen(struct store_tenant *ctx, const uint8_t sha256[32], char when[STORE_TS_LEN])
{
    bool found = false;
    enum store_status rc;
    void *c;

    if (ctx == NULL || sha256 == NULL || when == NULL)
        return STORE_INVALID;
    const struct qarg a[] = { TXT(ctx->tenant), BLB(sha256, 32) };
    const struct qcol col = { .t = QT_TEXT, .s = when, .ssz = STORE_TS_LEN };
    if ((rc = store_ctx_conn(ctx, &c)) != STORE_OK)
        return rc;
    rc = query(ctx, c, "SELECT imported_at FROM imports WHERE tenant_id = $1 AND "
               "sha256 = $2", a, 2, &col, 1, &found, NULL);
    store_ctx_release(ctx, c, rc);
    return rc == STORE_OK && !found ? STORE_NOTFOUND : rc;
}

enum store_status
store_import_record(struct store_tenant *ctx, const uint8_t sha256[32], const char *kind,
                    uint64_t rows, const char *actor)
{
    char now[STORE_TS_LEN];
    enum store_status rc;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (sha256 == NULL || kind == NULL || rows > INT64_MAX || !store_actor_ok(actor) ||
        (strcmp(kind, "residents") != 0 && strcmp(kind, "vouchers") != 0 &&
         strcmp(kind, "vaccinations") != 0))
        return store_write_refuse(ctx, STORE_INVALID);
    util_utc_now(now);
    const struct qarg a[] = { TXT(ctx->tenant), BLB(sha256, 32), TXT(kind),
                              INT((int64_t)rows), TXT(actor), TXT(now) };
    if ((rc = store_write_begin(ctx, &c)) != STORE_OK)
        return rc;
    rc = query(ctx, c, "INSERT INTO imports (tenant_id, sha256, kind, row_count, actor, "
               "imported_at) VALUES ($1, $2, $3, $4, $5, $6)", a, NELEM(a), NULL, 0,
               NULL, NULL);
    return store_write_end(ctx, c, rc, 0);
}

/* ---- retention (R2.10) --------------------------------------------------------------- */

struct purge {
    int64_t *ids;
    char   (*addr)[STORE_ADDRNO_MAX];
    size_t   n, max;
    int64_t  id;
    char     a[STORE_ADDRNO_MAX];
};

static int
purge_row(void *p)
{
    struct purge *w = p;

    if (w->n >= w->max)
        return 1;
    w->ids[w->n] = w->id;
    memcpy(w->addr[w->n], w->a, sizeof(w->a));
    w->n++;
    return 0;
}

/* The batch's ids as "3,5,8" for the backend's id_in ($2).  The caller
 * owns the string (free). */
static char *
purge_ids(const struct purge *w)
{
    size_t sz = w->n * 21 + 1, off = 0;     /* 20 digits and a comma each */
    char *s = malloc(sz);

    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < w->n; i++)
        off += (size_t)snprintf(s + off, sz - off, "%s%lld", i > 0 ? "," : "",
                                (long long)w->ids[i]);
    return s;
}

/* One statement over the whole batch: `head` + the backend's id_in
 * ($2: the ids) + `tail`.  With want > 0 it must touch exactly that many
 * rows, else STORE_BUSY. */
static enum store_status
purge_stmt(struct store_tenant *ctx, void *c, const struct qarg *a, size_t na,
           const char *head, const char *tail, int64_t want)
{
    char sql[512];
    int64_t changes = 0;
    int len = snprintf(sql, sizeof(sql), "%s%s%s", head, OPS(ctx)->id_in, tail);
    enum store_status rc;

    if (len < 0 || (size_t)len >= sizeof(sql))
        return STORE_ERROR;
    rc = query(ctx, c, sql, a, na, NULL, 0, NULL, &changes);
    return rc == STORE_OK && want > 0 && changes != want ? STORE_BUSY : rc;
}

/*
 * Delete the selected residents and everything that names them, a
 * statement per table for the whole batch (PostgreSQL: 8 round trips, not
 * 8 per resident).  The first statement locks the rows and checks they
 * are all still expired (PostgreSQL: a correction committed since the
 * selection wins, and the whole call stops with STORE_BUSY rather than
 * delete a resident it should not); the last must delete every one.
 */
static enum store_status
purge_rows(struct store_tenant *ctx, void *c, const struct purge *w, const char *before)
{
    static const char *const del[][2] = {
        { ("DELETE FROM idempotency WHERE tenant_id = $1 AND op = '" IDEM_VAC "' AND "
           "row_id IN (SELECT vaccination_id FROM vaccinations WHERE tenant_id = $1 AND "
           "resident_id "), ")" },
        { ("DELETE FROM idempotency WHERE tenant_id = $1 AND op = '" STORE_IDEM_RES "' "
           "AND row_id "), "" },
        { ("DELETE FROM corrections WHERE tenant_id = $1 AND object = 'vaccination' AND "
           "object_id IN (SELECT vaccination_id FROM vaccinations WHERE tenant_id = $1 "
           "AND resident_id "), ")" },
        { ("DELETE FROM corrections WHERE tenant_id = $1 AND object = 'resident' AND "
           "object_id "), "" },
        { "DELETE FROM vaccinations WHERE tenant_id = $1 AND resident_id ", "" },
        { "DELETE FROM vouchers WHERE tenant_id = $1 AND resident_id ", "" },
    };
    char *ids = purge_ids(w);
    const struct qarg a[] = { TXT(ctx->tenant), TXT(ids), TXT(before) };
    const int64_t n = (int64_t)w->n;
    enum store_status rc;

    if (ids == NULL)
        return STORE_ERROR;
    rc = purge_stmt(ctx, c, a, 3, "UPDATE residents SET ceased_ym = ceased_ym WHERE "
                    "tenant_id = $1 AND ceased_ym IS NOT NULL AND ceased_ym < $3 AND "
                    "resident_id ", "", n);
    for (size_t i = 0; i < NELEM(del) && rc == STORE_OK; i++)
        rc = purge_stmt(ctx, c, a, 2, del[i][0], del[i][1], 0);
    if (rc == STORE_OK)
        rc = purge_stmt(ctx, c, a, 2, "DELETE FROM residents WHERE tenant_id = $1 AND "
                        "resident_id ", "", n);
    free(ids);
    return rc;
}

static enum store_status
purge_tx(struct store_tenant *ctx, void *c, const char *before, struct purge *w,
         int (*fn)(const char *, void *), void *arg)
{
    const struct qarg a[] = { TXT(ctx->tenant), TXT(before), INT((int64_t)w->max) };
    const struct qcol cols[] = {
        { .t = QT_INT, .i = &w->id },
        { .t = QT_TEXT, .s = w->a, .ssz = sizeof(w->a) },
    };
    enum store_status rc = OPS(ctx)->query(c, "SELECT resident_id, address_no FROM "
                                           "residents WHERE tenant_id = $1 AND ceased_ym "
                                           "IS NOT NULL AND ceased_ym < $2 ORDER BY "
                                           "resident_id LIMIT $3", a, 3, cols, 2, NULL,
                                           NULL, purge_row, w);

    if (rc == STORE_OK && w->n > 0)
        rc = purge_rows(ctx, c, w, before);
    /* Deleted but not yet committed: the caller records each one now, and
     * may still stop it (R2.10: no deletion without its record). */
    for (size_t i = 0; i < w->n && rc == STORE_OK; i++)
        if (fn(w->addr[i], arg) != 0)
            rc = STORE_ERROR;
    return rc;
}

enum store_status
store_retention_purge(struct store_tenant *ctx, const char *ceased_before, size_t max,
                      int (*fn)(const char *address_no, void *), void *arg,
                      size_t *deleted)
{
    struct purge w = { .max = max };
    enum store_status rc;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (!ym_ok(ceased_before) || fn == NULL || deleted == NULL || max == 0 ||
        max > PURGE_MAX)
        return store_write_refuse(ctx, STORE_INVALID);
    *deleted = 0;
    w.ids = calloc(max, sizeof(*w.ids));
    w.addr = calloc(max, sizeof(*w.addr));
    if (w.ids == NULL || w.addr == NULL)
        rc = store_write_refuse(ctx, STORE_ERROR);
    else if ((rc = store_write_begin(ctx, &c)) == STORE_OK) {
        rc = purge_tx(ctx, c, ceased_before, &w, fn, arg);
        /* Secure delete reaches the WAL too once it is folded (SQLite). */
        rc = store_write_end(ctx, c, rc, w.n > 0 ? STORE_W_CHECKPOINT : 0);
    }
    if (rc == STORE_OK)
        *deleted = w.n;
    free(w.ids);
    free(w.addr);
    return rc;
}

/* ---- the scheduled job's tenants and daily claims (R2.10, vrs/retention.h) ---------- */

/* The claim's op, and its key: "retention/" + the Japan-time date.  A
 * client's idempotency key never holds a "/" (store_idem_ok), so no
 * request can take a day's claim ahead of the job. */
#define CLAIM_OP     "retention.run"
#define CLAIM_PREFIX "retention/"

struct tenant_walk {
    char tenant[TENANT_ID_LEN + 1];
    int (*fn)(const char *, void *);
    void *arg;
};

static int
tenant_row(void *p)
{
    struct tenant_walk *w = p;

    return w->fn(w->tenant, w->arg);
}

enum store_status
store_retention_tenants(struct store *st, int (*fn)(const char *tenant, void *), void *arg)
{
    struct tenant_walk w = { .fn = fn, .arg = arg };
    const struct qcol col = { .t = QT_TEXT, .s = w.tenant, .ssz = sizeof(w.tenant) };

    if (st == NULL || fn == NULL)
        return STORE_INVALID;
    return store_run1(st, false, "SELECT tenant_id FROM tenants WHERE state = 'active' "
                      "ORDER BY tenant_id", NULL, 0, &col, 1, NULL, NULL, tenant_row, &w);
}

/* A calendar date "YYYY-MM-DD" in the key. */
static bool
day_ok(const char *s)
{
    return s != NULL && strnlen(s, STORE_DATE_LEN) == STORE_DATE_LEN - 1 &&
           store_date_ok(s, true);
}

enum store_status
store_retention_claim(struct store *st, const char *tenant, const char *day)
{
    char key[sizeof(CLAIM_PREFIX) + STORE_DATE_LEN], now[25];
    const struct qarg a[] = { TXT(tenant), TXT(key), TXT(now) };
    int64_t changes = 0;
    enum store_status rc;
    void *c;

    if (st == NULL || tenant == NULL || !tenant_id_valid(tenant) || !day_ok(day))
        return STORE_INVALID;
    snprintf(key, sizeof(key), CLAIM_PREFIX "%s", day);
    util_utc_now(now);
    if ((rc = store_conn_get(st, &c)) != STORE_OK)
        return rc;
    rc = st->ops->begin(c);
    /* Earlier days' claims have done their work (the fixed-width dates
     * order as text); the audit log keeps what each run did. */
    if (rc == STORE_OK)
        rc = st->ops->query(c, "DELETE FROM idempotency WHERE tenant_id = $1 AND op = '"
                            CLAIM_OP "' AND idem_key < $2", a, 2, NULL, 0, NULL, NULL,
                            NULL, NULL);
    /* One winner per tenant and day, whichever process or restart asks:
     * the primary key (tenant_id, idem_key) decides, and a loser waits
     * for the winner's commit and then inserts nothing. */
    if (rc == STORE_OK)
        rc = st->ops->query(c, "INSERT INTO idempotency (tenant_id, idem_key, op, row_id, "
                            "created_at) VALUES ($1, $2, '" CLAIM_OP "', 0, $3) "
                            "ON CONFLICT (tenant_id, idem_key) DO NOTHING", a, 3, NULL, 0,
                            NULL, &changes, NULL, NULL);
    rc = store_finish(st, c, rc);
    store_conn_put(st, c, rc);
    return rc == STORE_OK && changes != 1 ? STORE_EXISTS : rc;
}

/* ---- key rotation of the records (R9.2, called by store_reencrypt) ------------------ */

/* Ids (up to max) of `sql` ($1 tenant, $2 version, $3 limit). */
struct idlist {
    int64_t *ids, id;
    size_t   n, max;
};

static int
id_row(void *p)
{
    struct idlist *l = p;

    if (l->n >= l->max)
        return 1;
    l->ids[l->n++] = l->id;
    return 0;
}

static enum store_status
stale_ids(struct store_tenant *ctx, void *c, const char *sql, struct idlist *l)
{
    const struct qarg a[] = { TXT(ctx->tenant), INT(ctx->cur->version),
                              INT((int64_t)l->max) };
    const struct qcol col = { .t = QT_INT, .i = &l->id };

    l->n = 0;
    return OPS(ctx)->query(c, sql, a, 3, &col, 1, NULL, NULL, id_row, l);
}

static enum store_status
vacc_reseal(struct store_tenant *ctx, void *c, int64_t id, struct vac_corr *w)
{
    const struct qarg a[] = { TXT(ctx->tenant), INT(id) };
    size_t ctlen = 0;
    enum store_status rc = change1(ctx, c, "UPDATE vaccinations SET voided = voided WHERE "
                                   "tenant_id = $1 AND vaccination_id = $2", a, 2,
                                   STORE_NOTFOUND);

    if (rc == STORE_OK)
        rc = vrow_load(ctx, c, id, &w->r);
    if (rc == STORE_OK)
        rc = details_seal(ctx, id, &w->r.v, w->ct, &ctlen);
    if (rc == STORE_OK) {
        const struct qarg u[] = { TXT(ctx->tenant), INT(id), INT(ctx->cur->version),
                                  BLB(w->ct, ctlen) };
        rc = change1(ctx, c, "UPDATE vaccinations SET key_version = $3, details_ct = $4 "
                     "WHERE tenant_id = $1 AND vaccination_id = $2", u, 4, STORE_NOTFOUND);
    }
    util_wipe(&w->r.v, sizeof(w->r.v));
    return rc;
}

static enum store_status
corr_reseal(struct store_tenant *ctx, void *c, int64_t id, struct corr_buf *b,
            char reason[STORE_REASON_MAX])
{
    const struct qarg a[] = { TXT(ctx->tenant), INT(id) };
    const struct qcol cols[] = {
        { .t = QT_BLOB, .b = b->reason_ct, .bsz = sizeof(b->reason_ct), .blen = &b->rlen },
        { .t = QT_BLOB, .b = b->before_ct, .bsz = sizeof(b->before_ct), .blen = &b->bctlen },
        { .t = QT_BLOB, .b = b->after_ct, .bsz = sizeof(b->after_ct), .blen = &b->actlen },
    };
    bool found = false;
    size_t n = 0;
    enum store_status rc = query(ctx, c, "SELECT reason_ct, before_ct, after_ct FROM "
                                 "corrections WHERE tenant_id = $1 AND correction_id = $2",
                                 a, 2, cols, 3, &found, NULL);

    if (rc == STORE_OK && !found)
        rc = STORE_NOTFOUND;
    if (rc == STORE_OK)
        rc = store_unseal(ctx, "corrections", "reason_ct", id, b->reason_ct, b->rlen,
                          reason, STORE_REASON_MAX, &n);
    if (rc == STORE_OK)
        rc = img_open(ctx, id, "before_ct", b->before_ct, b->bctlen, b->before);
    if (rc == STORE_OK)
        rc = img_open(ctx, id, "after_ct", b->after_ct, b->actlen, b->after);
    if (rc == STORE_OK)
        rc = store_seal(ctx, "corrections", "reason_ct", id, reason, n, b->reason_ct,
                        sizeof(b->reason_ct), &b->rlen);
    if (rc == STORE_OK)
        rc = img_seal(ctx, id, "before_ct", b->before, strlen(b->before), b->before_ct,
                      &b->bctlen);
    if (rc == STORE_OK)
        rc = img_seal(ctx, id, "after_ct", b->after, strlen(b->after), b->after_ct,
                      &b->actlen);
    if (rc == STORE_OK) {
        const struct qarg u[] = { TXT(ctx->tenant), INT(id), INT(ctx->cur->version),
                                  BLB(b->reason_ct, b->rlen), BLB(b->before_ct, b->bctlen),
                                  BLB(b->after_ct, b->actlen) };
        rc = change1(ctx, c, "UPDATE corrections SET key_version = $3, reason_ct = $4, "
                     "before_ct = $5, after_ct = $6 WHERE tenant_id = $1 AND "
                     "correction_id = $2", u, 6, STORE_NOTFOUND);
    }
    util_wipe(b->before, sizeof(b->before));
    util_wipe(b->after, sizeof(b->after));
    util_wipe(reason, STORE_REASON_MAX);
    return rc;
}

enum store_status
store_records_reencrypt(struct store_tenant *ctx, void *c, size_t max, size_t *done)
{
    struct idlist l = { .max = max };
    struct vac_corr *w = calloc(1, sizeof(*w));
    size_t moved = 0;
    enum store_status rc = STORE_OK;

    *done = 0;
    l.ids = calloc(max, sizeof(*l.ids));
    if (w == NULL || l.ids == NULL)
        rc = STORE_ERROR;
    if (rc == STORE_OK)
        rc = stale_ids(ctx, c, "SELECT vaccination_id FROM vaccinations WHERE tenant_id = $1 "
                       "AND key_version < $2 ORDER BY vaccination_id LIMIT $3", &l);
    for (size_t i = 0; i < l.n && rc == STORE_OK; i++, moved++)
        rc = vacc_reseal(ctx, c, l.ids[i], w);
    if (rc == STORE_OK && moved < max) {
        char reason[STORE_REASON_MAX];
        l.max = max - moved;
        rc = stale_ids(ctx, c, "SELECT correction_id FROM corrections WHERE tenant_id = $1 "
                       "AND key_version < $2 ORDER BY correction_id LIMIT $3", &l);
        for (size_t i = 0; i < l.n && rc == STORE_OK; i++, moved++)
            rc = corr_reseal(ctx, c, l.ids[i], &w->b, reason);
    }
    if (rc == STORE_OK)
        *done = moved;
    if (w != NULL)
        util_wipe(w, sizeof(*w));
    free(w);
    free(l.ids);
    return rc;
}
