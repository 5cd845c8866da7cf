/*
 * store_transfer.c - consents, inquiry and provision records, undelivered
 * messages and bulk jobs of transfer inquiries (store_transfer.h).
 *
 * SQL is written once for both backends over the generic query, as in
 * store_auth.c and store_records.c: $n placeholders, integers and blobs
 * only compared, no '$' anywhere else.  Fields are sealed with the
 * store's codec (store_seal: tenant, table, column, row in the AD).
 * Nothing here logs; statuses carry no value.
 */
#include "store/store_transfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/field.h"
#include "ref/mynumber.h"
#include "store/store_int.h"

#define OPS(ctx) ((ctx)->st->ops)

/* A history sealed as "vaccine|dose|date\n" lines: at most 32 x 46 bytes,
 * inside one field (FIELD_PLAIN_MAX). */
#define HIST_LINE     (TRANSFER_VACCINE_MAX + 4 + 11)
#define HIST_PLAIN    (TRANSFER_HISTORY_MAX * HIST_LINE)
#define HIST_CT_MAX   FIELD_CT_LEN(HIST_PLAIN)
#define MN_CT_MAX     FIELD_CT_LEN(12)

_Static_assert(HIST_PLAIN <= FIELD_PLAIN_MAX, "a history fits one sealed field");

/* ---- small helpers ----------------------------------------------------------------- */

static enum store_status
query(struct store_tenant *ctx, void *c, const char *sql, const struct qarg *a, size_t na,
      const struct qcol *cols, size_t nc, bool *found, int64_t *changes)
{
    return OPS(ctx)->query(c, sql, a, na, cols, nc, found, changes, NULL, NULL);
}

/* The caller's confirmation, inside the transaction, before the commit. */
static enum store_status
confirmed(enum store_status rc, store_confirm_fn confirm, void *arg)
{
    if (rc == STORE_OK && confirm != NULL && confirm(arg) != 0)
        return STORE_DENIED;
    return rc;
}

/* One write statement in its own transaction (or the bulk one),
 * confirmed before the commit. */
static enum store_status
write1c(struct store_tenant *ctx, const char *sql, const struct qarg *a, size_t na,
        int64_t *changes, store_confirm_fn confirm, void *arg)
{
    void *c;
    enum store_status rc = store_write_begin(ctx, &c);

    if (rc != STORE_OK)
        return rc;
    rc = query(ctx, c, sql, a, na, NULL, 0, NULL, changes);
    return store_write_end(ctx, c, confirmed(rc, confirm, arg), 0);
}

static enum store_status
write1(struct store_tenant *ctx, const char *sql, const struct qarg *a, size_t na,
       int64_t *changes)
{
    return write1c(ctx, sql, a, na, changes, NULL, NULL);
}

/* One read statement (first row) on the context's connection. */
static enum store_status
read1(struct store_tenant *ctx, const char *sql, const struct qarg *a, size_t na,
      const struct qcol *cols, size_t nc, bool *found)
{
    void *c;
    enum store_status rc = store_ctx_conn(ctx, &c);

    if (rc != STORE_OK)
        return rc;
    rc = query(ctx, c, sql, a, na, cols, nc, found, NULL);
    store_ctx_release(ctx, c, rc);
    return rc;
}

/* Optional arguments: NULL in the table when absent (store_opt_text for
 * text). */
static struct qarg
opt_int(int64_t v)
{
    struct qarg a = { .t = QT_NULL };

    if (v > 0) {
        a.t = QT_INT;
        a.i = v;
    }
    return a;
}

static struct qarg
opt_blob(bool present, const void *b, size_t n)
{
    struct qarg a = { .t = QT_NULL };

    if (present) {
        a.t = QT_BLOB;
        a.b = b;
        a.n = n;
    }
    return a;
}

static bool
code_ok(const char *s, size_t size)
{
    size_t n = s != NULL ? strnlen(s, size) : 0;

    if (n == 0 || n == size)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '.'))
            return false;
    return true;
}

static bool
mode_ok(const char *m)
{
    return m != NULL && (strcmp(m, "single") == 0 || strcmp(m, "bulk") == 0);
}

/* The tenant's own blind index of an individual number (the residents
 * table's mynumber_bidx), so records can be joined to its residents. */
static enum store_status
subject_of(struct store_tenant *ctx, const char *mynumber, uint8_t out[BIDX_LEN])
{
    if (mynumber == NULL || !mynumber_valid(mynumber))
        return STORE_INVALID;
    return field_blind_index(ctx->ik, BIDX_MYNUMBER, mynumber, 12, out) == 0 ? STORE_OK
                                                                               : STORE_KEY;
}

/* ---- consents (R3.1) ------------------------------------------------------------------ */

#define CONSENT_COLS "consent_id, affair, id_check, checked_on, checked_by, created_at"

enum store_status
store_consent_create(struct store_tenant *ctx, const char *mynumber, struct transfer_consent *c,
                     store_confirm_fn confirm, void *arg)
{
    uint8_t subject[BIDX_LEN];
    enum store_status rc;

    if (ctx == NULL || c == NULL)
        return STORE_INVALID;
    if (strcmp(c->affair, TRANSFER_AFFAIR_VACCINATION) != 0 ||
        !code_ok(c->id_check, sizeof(c->id_check)) || !store_date_ok(c->checked_on, true) ||
        !store_actor_ok(c->checked_by))
        return store_write_refuse(ctx, STORE_INVALID);
    if ((rc = subject_of(ctx, mynumber, subject)) != STORE_OK)
        return store_write_refuse(ctx, rc);
    transfer_new_id(c->id, TRANSFER_REF_HEX);
    util_utc_now(c->created_at);
    const struct qarg a[] = { TXT(ctx->tenant), TXT(c->id), BLB(subject, BIDX_LEN),
                              TXT(c->affair), TXT(c->id_check), TXT(c->checked_on),
                              TXT(c->checked_by), TXT(c->created_at) };
    rc = write1c(ctx, "INSERT INTO transfer_consents (tenant_id, consent_id, subject, affair, "
                 "id_check, checked_on, checked_by, created_at) VALUES ($1, $2, $3, $4, $5, "
                 "$6, $7, $8)", a, NELEM(a), NULL, confirm, arg);
    util_wipe(subject, sizeof(subject));
    return rc;
}

enum store_status
store_consent_get(struct store_tenant *ctx, const char *id, const char *mynumber,
                  struct transfer_consent *o)
{
    uint8_t subject[BIDX_LEN];
    bool found = false;
    enum store_status rc;

    if (ctx == NULL || o == NULL)
        return STORE_INVALID;
    memset(o, 0, sizeof(*o));
    if (!transfer_id_valid(id, TRANSFER_REF_HEX))
        return STORE_NOTFOUND;
    if ((rc = subject_of(ctx, mynumber, subject)) != STORE_OK)
        return rc;
    const struct qarg a[] = { TXT(ctx->tenant), TXT(id), BLB(subject, BIDX_LEN) };
    const struct qcol cols[] = {
        { .t = QT_TEXT, .s = o->id, .ssz = sizeof(o->id) },
        { .t = QT_TEXT, .s = o->affair, .ssz = sizeof(o->affair) },
        { .t = QT_TEXT, .s = o->id_check, .ssz = sizeof(o->id_check) },
        { .t = QT_TEXT, .s = o->checked_on, .ssz = sizeof(o->checked_on) },
        { .t = QT_TEXT, .s = o->checked_by, .ssz = sizeof(o->checked_by) },
        { .t = QT_TEXT, .s = o->created_at, .ssz = sizeof(o->created_at) },
    };
    /* The person is part of the key: another person's consent is not found. */
    rc = read1(ctx, "SELECT " CONSENT_COLS " FROM transfer_consents WHERE tenant_id = $1 "
               "AND consent_id = $2 AND subject = $3", a, NELEM(a), cols, NELEM(cols), &found);
    util_wipe(subject, sizeof(subject));
    if (rc == STORE_OK && !found)
        rc = STORE_NOTFOUND;
    if (rc != STORE_OK)
        memset(o, 0, sizeof(*o));
    return rc;
}

/* ---- matching (R3.2) --------------------------------------------------------------------- */

/* One statement for every case: the residents with this index, each
 * joined to its doses not voided (a resident without doses gives one
 * row of NULLs), in date order. */
#define MATCH_SQL "SELECT r.resident_id, v.vaccine, v.dose, v.vaccinated_on FROM residents r " \
    "LEFT JOIN vaccinations v ON v.tenant_id = r.tenant_id AND v.resident_id = " \
    "r.resident_id AND v.voided = 0 WHERE r.tenant_id = $1 AND r.mynumber_bidx = $2 " \
    "ORDER BY v.vaccinated_on, v.dose, r.resident_id LIMIT $3"
#define MATCH_ROWS (TRANSFER_HISTORY_MAX + 8)   /* a few residents without doses, +1 */

struct match {
    int64_t                 rid, dose;
    char                    vaccine[TRANSFER_VACCINE_MAX];
    char                    date[16];
    int64_t                 first;
    size_t                  more;
    struct transfer_answer *a;
    bool                    bad;
};

static int
match_row(void *arg)
{
    struct match *m = arg;

    if (m->first == 0 || (m->rid > 0 && m->rid < m->first))
        m->first = m->rid;
    if (m->vaccine[0] == '\0' || m->a == NULL)
        return 0;                       /* a resident without doses */
    if (m->a->n == TRANSFER_HISTORY_MAX) {
        m->more++;
        return 0;
    }
    struct transfer_dose *d = &m->a->doses[m->a->n];
    if (m->dose < 1 || m->dose > 99 || strlen(m->date) != 10) {
        m->bad = true;
        return 1;
    }
    memcpy(d->vaccine, m->vaccine, sizeof(d->vaccine));
    memcpy(d->date, m->date, sizeof(d->date));
    d->dose = (int)m->dose;
    m->a->n++;
    return 0;
}

static enum store_status
run_match(const struct store_ops *ops, void *c, const char *tenant, const uint8_t *subject,
          struct match *m)
{
    const struct qarg a[] = { TXT(tenant), BLB(subject, TRANSFER_SUBJECT_LEN),
                              INT(MATCH_ROWS) };
    const struct qcol cols[] = {
        { .t = QT_INT, .i = &m->rid },
        { .t = QT_TEXT, .s = m->vaccine, .ssz = sizeof(m->vaccine) },
        { .t = QT_INT, .i = &m->dose },
        { .t = QT_TEXT, .s = m->date, .ssz = sizeof(m->date) },
    };

    return ops->query(c, MATCH_SQL, a, NELEM(a), cols, NELEM(cols), NULL, NULL, match_row, m);
}

enum store_status
store_transfer_match(struct store_tenant *ctx, const uint8_t subject[TRANSFER_SUBJECT_LEN],
                     int64_t *resident_id, struct transfer_answer *a)
{
    struct match m = { .a = a };
    enum store_status rc;
    void *c;

    if (ctx == NULL || subject == NULL || resident_id == NULL || a == NULL)
        return STORE_INVALID;
    a->n = 0;
    if ((rc = store_ctx_conn(ctx, &c)) != STORE_OK)
        return rc;
    rc = run_match(OPS(ctx), c, ctx->tenant, subject, &m);
    store_ctx_release(ctx, c, rc);
    if (rc == STORE_OK && m.bad)
        rc = STORE_ERROR;
    *resident_id = rc == STORE_OK ? m.first : 0;
    a->found = rc == STORE_OK && m.first > 0;
    a->complete = m.more == 0;
    if (rc != STORE_OK || !a->found) {
        a->n = 0;
        a->complete = true;
    }
    return rc;
}

enum store_status
store_transfer_match_absent(struct store *st, const char *code,
                            const uint8_t subject[TRANSFER_SUBJECT_LEN])
{
    struct match m = { .a = NULL };
    enum store_status rc;
    void *c;

    if (st == NULL || code == NULL || subject == NULL)
        return STORE_INVALID;
    if ((rc = store_conn_get(st, &c)) != STORE_OK)
        return rc;
    rc = run_match(st->ops, c, code, subject, &m);
    store_conn_put(st, c, rc);
    return rc;
}

/* ---- provision and undelivered records (R3.4) ---------------------------------------------- */

enum store_status
store_provision_add(struct store_tenant *ctx, const struct transfer_provision *p,
                    store_confirm_fn confirm, void *arg)
{
    if (ctx == NULL)
        return STORE_INVALID;
    if (p == NULL || !transfer_id_valid(p->id, TRANSFER_MSG_ID_HEX) ||
        !transfer_id_valid(p->inquiry_id, TRANSFER_MSG_ID_HEX) ||
        !tenant_id_valid(p->from_tenant) || !transfer_id_valid(p->consent_ref, TRANSFER_REF_HEX) ||
        !code_ok(p->outcome, sizeof(p->outcome)) || !mode_ok(p->mode) || p->resident_id < 0 ||
        p->doses < 0)
        return store_write_refuse(ctx, STORE_INVALID);
    const struct qarg a[] = {
        TXT(ctx->tenant), TXT(p->id), TXT(p->inquiry_id), TXT(p->from_tenant),
        TXT(p->affair), TXT(p->consent_ref), BLB(p->subject, TRANSFER_SUBJECT_LEN),
        opt_int(p->resident_id),
        TXT(p->mode), TXT(p->received_at), TXT(p->answered_at), TXT(p->outcome),
        TXT(p->items), INT(p->doses) };
    return write1c(ctx, "INSERT INTO transfer_provisions (tenant_id, provision_id, inquiry_id, "
                   "from_tenant, affair, consent_ref, subject, resident_id, mode, received_at, "
                   "answered_at, outcome, items, doses) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                   "$8, $9, $10, $11, $12, $13, $14)", a, NELEM(a), NULL, confirm, arg);
}

enum store_status
store_undelivered_add(struct store *st, const char *from, const char *message_id,
                      const char *to_code, store_confirm_fn confirm, void *arg)
{
    char now[STORE_TS_LEN];
    enum store_status rc;
    void *c;

    if (st == NULL || !tenant_id_valid(from) || !tenant_id_valid(to_code) ||
        !transfer_id_valid(message_id, TRANSFER_MSG_ID_HEX))
        return STORE_INVALID;
    util_utc_now(now);
    const struct qarg a[] = { TXT(from), TXT(message_id), TXT(to_code), TXT(now) };
    if ((rc = store_conn_get(st, &c)) != STORE_OK)
        return rc;
    rc = st->ops->begin(c);
    if (rc == STORE_OK)
        rc = st->ops->query(c, "INSERT INTO transfer_undelivered (from_tenant, message_id, "
                            "to_code, at) VALUES ($1, $2, $3, $4)", a, NELEM(a), NULL, 0,
                            NULL, NULL, NULL, NULL);
    rc = store_finish(st, c, confirmed(rc, confirm, arg));
    store_conn_put(st, c, rc);
    return rc;
}

/* ---- inquiry records (R3.1, R3.4) ------------------------------------------------------------ */

/* The AD column of a sealed history names the inquiry, so a history
 * moved to another inquiry's row fails its check. */
static void
hist_column(const char *id, char out[64])
{
    snprintf(out, 64, "result_ct/%s", id);
}

static enum store_status
hist_seal(struct store_tenant *ctx, const char *id, const struct transfer_answer *a,
          uint8_t *ct, size_t *ctlen)
{
    char plain[HIST_PLAIN + 1], col[64];
    size_t off = 0;
    enum store_status rc;

    for (size_t i = 0; i < a->n; i++) {
        int w = snprintf(plain + off, sizeof(plain) - off, "%s|%d|%s\n", a->doses[i].vaccine,
                         a->doses[i].dose, a->doses[i].date);
        if (w < 0 || (size_t)w >= sizeof(plain) - off) {
            util_wipe(plain, sizeof(plain));
            return STORE_INVALID;
        }
        off += (size_t)w;
    }
    hist_column(id, col);
    rc = store_seal(ctx, "transfer_inquiries", col, 1, plain, off, ct, HIST_CT_MAX, ctlen);
    util_wipe(plain, sizeof(plain));
    return rc;
}

static enum store_status
hist_open(struct store_tenant *ctx, const char *id, const uint8_t *ct, size_t ctlen,
          struct transfer_answer *a)
{
    char plain[HIST_PLAIN + 1], col[64];
    size_t n = 0, off = 0;
    enum store_status rc;

    a->n = 0;
    hist_column(id, col);
    rc = store_unseal(ctx, "transfer_inquiries", col, 1, ct, ctlen, plain, sizeof(plain), &n);
    /* Lines "vaccine|dose|date\n"; authentic but not this shape is refused. */
    while (rc == STORE_OK && off < n) {
        struct transfer_dose *d = &a->doses[a->n];
        char *line = plain + off, *end = memchr(line, '\n', n - off);
        char *dose = end ? memchr(line, '|', (size_t)(end - line)) : NULL;
        char *date = dose ? memchr(dose + 1, '|', (size_t)(end - dose - 1)) : NULL;
        uint64_t v = 0;
        if (a->n == TRANSFER_HISTORY_MAX || date == NULL) {
            rc = STORE_KEY;
            break;
        }
        *end = *dose = *date = '\0';
        if (util_strcpy(d->vaccine, sizeof(d->vaccine), line) != 0 ||
            util_strcpy(d->date, sizeof(d->date), date + 1) != 0 ||
            util_parse_u64(dose + 1, 1, 99, &v) != 0) {
            rc = STORE_KEY;
            break;
        }
        d->dose = (int)v;
        a->n++;
        off = (size_t)(end - plain) + 1;
    }
    util_wipe(plain, sizeof(plain));
    if (rc != STORE_OK)
        a->n = 0;
    return rc;
}

enum store_status
store_inquiry_add(struct store_tenant *ctx, const char *mynumber,
                  const struct transfer_inquiry_rec *r, const struct transfer_answer *ans)
{
    uint8_t subject[BIDX_LEN], ct[HIST_CT_MAX];
    size_t ctlen = 0;
    enum store_status rc;

    if (ctx == NULL)
        return STORE_INVALID;
    if (r == NULL || ans == NULL || !transfer_id_valid(r->id, TRANSFER_MSG_ID_HEX) ||
        !tenant_id_valid(r->to_tenant) || !transfer_id_valid(r->consent_id, TRANSFER_REF_HEX) ||
        r->resident_id <= 0 || !store_actor_ok(r->actor) || !mode_ok(r->mode) ||
        (r->job_id[0] != '\0' && !transfer_id_valid(r->job_id, TRANSFER_REF_HEX)) ||
        !code_ok(r->outcome, sizeof(r->outcome)) || ans->n > TRANSFER_HISTORY_MAX)
        return store_write_refuse(ctx, STORE_INVALID);
    if ((rc = subject_of(ctx, mynumber, subject)) != STORE_OK ||
        (rc = hist_seal(ctx, r->id, ans, ct, &ctlen)) != STORE_OK)
        return store_write_refuse(ctx, rc);
    const struct qarg a[] = {
        TXT(ctx->tenant), TXT(r->id), TXT(r->to_tenant), TXT(r->affair), TXT(r->consent_id),
        BLB(subject, BIDX_LEN), INT(r->resident_id), TXT(r->actor), TXT(r->mode),
        store_opt_text(r->job_id),
        TXT(r->sent_at), TXT(r->answered_at), TXT(r->outcome), TXT(r->items),
        INT((int64_t)ans->n), INT((int64_t)ctx->cur->version), BLB(ct, ctlen) };
    rc = write1(ctx, "INSERT INTO transfer_inquiries (tenant_id, inquiry_id, to_tenant, affair, "
                "consent_id, subject, resident_id, actor, mode, job_id, sent_at, answered_at, "
                "outcome, items, doses, key_version, result_ct) VALUES ($1, $2, $3, $4, $5, "
                "$6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)", a, NELEM(a), NULL);
    util_wipe(subject, sizeof(subject));
    return rc;
}

#define INQ_COLS "inquiry_id, to_tenant, affair, consent_id, resident_id, actor, mode, " \
    "job_id, sent_at, answered_at, outcome, items, doses, registered, result_ct"

enum store_status
store_inquiry_get(struct store_tenant *ctx, const char *id, struct transfer_inquiry_rec *o,
                  struct transfer_answer *ans)
{
    uint8_t *ct;
    size_t ctlen = 0;
    int64_t reg = 0;
    bool found = false;
    enum store_status rc;

    if (ctx == NULL || o == NULL)
        return STORE_INVALID;
    memset(o, 0, sizeof(*o));
    if (!transfer_id_valid(id, TRANSFER_MSG_ID_HEX))
        return STORE_NOTFOUND;
    if ((ct = malloc(HIST_CT_MAX)) == NULL)
        return STORE_ERROR;
    const struct qarg a[] = { TXT(ctx->tenant), TXT(id) };
    const struct qcol cols[] = {
        { .t = QT_TEXT, .s = o->id, .ssz = sizeof(o->id) },
        { .t = QT_TEXT, .s = o->to_tenant, .ssz = sizeof(o->to_tenant) },
        { .t = QT_TEXT, .s = o->affair, .ssz = sizeof(o->affair) },
        { .t = QT_TEXT, .s = o->consent_id, .ssz = sizeof(o->consent_id) },
        { .t = QT_INT, .i = &o->resident_id },
        { .t = QT_TEXT, .s = o->actor, .ssz = sizeof(o->actor) },
        { .t = QT_TEXT, .s = o->mode, .ssz = sizeof(o->mode) },
        { .t = QT_TEXT, .s = o->job_id, .ssz = sizeof(o->job_id) },
        { .t = QT_TEXT, .s = o->sent_at, .ssz = sizeof(o->sent_at) },
        { .t = QT_TEXT, .s = o->answered_at, .ssz = sizeof(o->answered_at) },
        { .t = QT_TEXT, .s = o->outcome, .ssz = sizeof(o->outcome) },
        { .t = QT_TEXT, .s = o->items, .ssz = sizeof(o->items) },
        { .t = QT_INT, .i = &o->doses },
        { .t = QT_INT, .i = &reg },
        { .t = QT_BLOB, .b = ct, .bsz = HIST_CT_MAX, .blen = &ctlen },
    };
    rc = read1(ctx, "SELECT " INQ_COLS " FROM transfer_inquiries WHERE tenant_id = $1 AND "
               "inquiry_id = $2", a, NELEM(a), cols, NELEM(cols), &found);
    if (rc == STORE_OK && !found)
        rc = STORE_NOTFOUND;
    o->registered = reg != 0;
    if (rc == STORE_OK && ans != NULL) {
        memset(ans, 0, sizeof(*ans));
        rc = hist_open(ctx, o->id, ct, ctlen, ans);
        ans->found = strcmp(o->outcome, "found") == 0;
    }
    free(ct);
    if (rc != STORE_OK)
        memset(o, 0, sizeof(*o));
    return rc;
}

enum store_status
store_inquiry_mark_registered(struct store_tenant *ctx, const char *id)
{
    int64_t changes = 0;
    enum store_status rc;

    if (ctx == NULL)
        return STORE_INVALID;
    if (!transfer_id_valid(id, TRANSFER_MSG_ID_HEX))
        return store_write_refuse(ctx, STORE_NOTFOUND);
    const struct qarg a[] = { TXT(ctx->tenant), TXT(id) };
    rc = write1(ctx, "UPDATE transfer_inquiries SET registered = 1 WHERE tenant_id = $1 AND "
                "inquiry_id = $2 AND registered = 0", a, NELEM(a), &changes);
    return rc == STORE_OK && changes != 1 ? STORE_EXISTS : rc;
}

/* ---- listings (R3.4, R9.5) ---------------------------------------------------------------- */

struct listing {
    struct transfer_record r;
    int (*fn)(const struct transfer_record *, void *);
    void *arg;
    bool  stopped;
};

static int
listing_row(void *p)
{
    struct listing *l = p;

    if (l->fn(&l->r, l->arg) != 0) {
        l->stopped = true;
        return 1;
    }
    return 0;
}

static enum store_status
list_side(struct store_tenant *ctx, void *c, bool inquiries, int64_t resident_id,
          const char *before, size_t max, struct listing *l)
{
    struct transfer_record *r = &l->r;
    const char *sql = inquiries
        ? "SELECT inquiry_id, inquiry_id, to_tenant, affair, consent_id, resident_id, actor, "
          "mode, job_id, sent_at, outcome, items, doses FROM transfer_inquiries WHERE "
          "tenant_id = $1 AND ($2 = 0 OR resident_id = $2) AND ($3 = '' OR sent_at < $3) "
          "ORDER BY sent_at DESC, inquiry_id LIMIT $4"
        : "SELECT provision_id, inquiry_id, from_tenant, affair, consent_ref, resident_id, '', "
          "mode, '', answered_at, outcome, items, doses FROM transfer_provisions WHERE "
          "tenant_id = $1 AND ($2 = 0 OR resident_id = $2) AND ($3 = '' OR answered_at < $3) "
          "ORDER BY answered_at DESC, provision_id LIMIT $4";
    const struct qarg a[] = { TXT(ctx->tenant), INT(resident_id), TXT(before),
                              INT((int64_t)max) };
    const struct qcol cols[] = {
        { .t = QT_TEXT, .s = r->id, .ssz = sizeof(r->id) },
        { .t = QT_TEXT, .s = r->inquiry_id, .ssz = sizeof(r->inquiry_id) },
        { .t = QT_TEXT, .s = r->other_tenant, .ssz = sizeof(r->other_tenant) },
        { .t = QT_TEXT, .s = r->affair, .ssz = sizeof(r->affair) },
        { .t = QT_TEXT, .s = r->consent, .ssz = sizeof(r->consent) },
        { .t = QT_INT, .i = &r->resident_id },
        { .t = QT_TEXT, .s = r->actor, .ssz = sizeof(r->actor) },
        { .t = QT_TEXT, .s = r->mode, .ssz = sizeof(r->mode) },
        { .t = QT_TEXT, .s = r->job_id, .ssz = sizeof(r->job_id) },
        { .t = QT_TEXT, .s = r->at, .ssz = sizeof(r->at) },
        { .t = QT_TEXT, .s = r->outcome, .ssz = sizeof(r->outcome) },
        { .t = QT_TEXT, .s = r->items, .ssz = sizeof(r->items) },
        { .t = QT_INT, .i = &r->doses },
    };

    r->side = inquiries ? "inquiry" : "provision";
    return OPS(ctx)->query(c, sql, a, NELEM(a), cols, NELEM(cols), NULL, NULL, listing_row, l);
}

enum store_status
store_transfer_records(struct store_tenant *ctx, unsigned sides, int64_t resident_id,
                       const char *before, size_t max,
                       int (*fn)(const struct transfer_record *, void *), void *arg)
{
    struct listing l = { .fn = fn, .arg = arg };
    enum store_status rc;
    void *c;

    if (ctx == NULL || fn == NULL || before == NULL || resident_id < 0 || max == 0 ||
        max > 10000 || strnlen(before, STORE_TS_LEN) == STORE_TS_LEN)
        return STORE_INVALID;
    if ((rc = store_ctx_conn(ctx, &c)) != STORE_OK)
        return rc;
    if (sides & STORE_XFER_INQUIRIES)
        rc = list_side(ctx, c, true, resident_id, before, max, &l);
    if (rc == STORE_OK && !l.stopped && (sides & STORE_XFER_PROVISIONS))
        rc = list_side(ctx, c, false, resident_id, before, max, &l);
    store_ctx_release(ctx, c, rc);
    return rc;
}

/* ---- bulk jobs (R3.3) ---------------------------------------------------------------------- */

/* A job row's number is sealed with the job in the AD column. */
static void
mn_column(const char *job_id, char out[64])
{
    snprintf(out, 64, "mynumber_ct/%s", job_id);
}

static enum store_status
job_row_insert(struct store_tenant *ctx, void *c, const char *job_id,
               const struct transfer_job_row *r)
{
    uint8_t ct[MN_CT_MAX];
    size_t ctlen = 0;
    char col[64];
    bool pending = r->outcome[0] == '\0';
    enum store_status rc = STORE_OK;

    if (r->row_no < 1 || r->row_no > STORE_XFER_JOB_MAX ||
        (pending && (!mynumber_valid(r->mynumber) || !tenant_id_valid(r->prev_code) ||
                     !store_addrno_ok(r->address_no) ||
                     !transfer_id_valid(r->consent_id, TRANSFER_REF_HEX))) ||
        (!pending && !code_ok(r->outcome, sizeof(r->outcome))) ||
        (r->prev_code[0] && !tenant_id_valid(r->prev_code)) ||
        (r->address_no[0] && !store_addrno_ok(r->address_no)) ||
        (r->consent_id[0] && !transfer_id_valid(r->consent_id, TRANSFER_REF_HEX)))
        return STORE_INVALID;
    mn_column(job_id, col);
    if (pending)
        rc = store_seal(ctx, "transfer_job_rows", col, r->row_no, r->mynumber, 12, ct,
                        sizeof(ct), &ctlen);
    const struct qarg a[] = {
        TXT(ctx->tenant), TXT(job_id), INT(r->row_no), TXT(r->prev_code), TXT(r->address_no),
        TXT(r->consent_id), opt_blob(pending, ct, ctlen),
        store_opt_text(pending ? NULL : r->outcome) };
    if (rc == STORE_OK)
        rc = query(ctx, c, "INSERT INTO transfer_job_rows (tenant_id, job_id, row_no, "
                   "prev_code, address_no, consent_id, mynumber_ct, outcome) VALUES ($1, $2, "
                   "$3, $4, $5, $6, $7, $8)", a, NELEM(a), NULL, 0, NULL, NULL);
    util_wipe(ct, sizeof(ct));
    return rc;
}

enum store_status
store_job_create(struct store_tenant *ctx, struct transfer_job *job,
                 const struct transfer_job_row *rows, size_t n, store_confirm_fn confirm,
                 void *arg)
{
    int64_t done = 0;
    enum store_status rc;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (job == NULL || (rows == NULL && n > 0) || n == 0 || n > STORE_XFER_JOB_MAX ||
        !store_actor_ok(job->actor) || !code_ok(job->role, sizeof(job->role)))
        return store_write_refuse(ctx, STORE_INVALID);
    for (size_t i = 0; i < n; i++)
        done += rows[i].outcome[0] != '\0';
    transfer_new_id(job->id, TRANSFER_REF_HEX);
    snprintf(job->state, sizeof(job->state), "queued");
    util_utc_now(job->created_at);
    job->rows_total = (int64_t)n;
    job->rows_done = done;
    const struct qarg a[] = { TXT(ctx->tenant), TXT(job->id), TXT(job->actor), TXT(job->role),
                              INT(job->rows_total), INT(done), TXT(job->created_at) };
    if ((rc = store_write_begin(ctx, &c)) != STORE_OK)
        return rc;
    /* The partial unique index (one queued or running job per tenant)
     * turns a second job into STORE_EXISTS. */
    rc = query(ctx, c, "INSERT INTO transfer_jobs (tenant_id, job_id, state, actor, role, "
               "rows_total, rows_done, created_at) VALUES ($1, $2, 'queued', $3, $4, $5, $6, "
               "$7)", a, NELEM(a), NULL, 0, NULL, NULL);
    for (size_t i = 0; i < n && rc == STORE_OK; i++)
        rc = job_row_insert(ctx, c, job->id, &rows[i]);
    return store_write_end(ctx, c, confirmed(rc, confirm, arg), 0);
}

enum store_status
store_job_claim(struct store *st, const char *runner, int64_t now, int64_t stale_before,
                char tenant[7], char job_id[STORE_XFER_REF])
{
    bool found = false;
    int64_t changes = 0;
    enum store_status rc;
    void *c;

    if (st == NULL || !store_actor_ok(runner) || tenant == NULL || job_id == NULL)
        return STORE_INVALID;
    tenant[0] = job_id[0] = '\0';
    const struct qarg a[] = { INT(stale_before) };
    const struct qcol cols[] = {
        { .t = QT_TEXT, .s = tenant, .ssz = 7 },
        { .t = QT_TEXT, .s = job_id, .ssz = STORE_XFER_REF },
    };
    if ((rc = store_conn_get(st, &c)) != STORE_OK)
        return rc;
    rc = st->ops->begin(c);
    if (rc == STORE_OK)
        rc = st->ops->query(c, "SELECT j.tenant_id, j.job_id FROM transfer_jobs j JOIN tenants t "
                            "ON t.tenant_id = j.tenant_id AND t.state = 'active' WHERE "
                            "j.state = 'queued' OR (j.state = 'running' AND j.heartbeat < $1) "
                            "ORDER BY j.created_at LIMIT 1", a, 1, cols, 2, &found, NULL,
                            NULL, NULL);
    if (rc == STORE_OK && found) {
        char ts[STORE_TS_LEN];
        util_utc_now(ts);
        const struct qarg u[] = { TXT(tenant), TXT(job_id), TXT(runner), INT(now),
                                  INT(stale_before), TXT(ts) };
        /* The WHERE is checked again under the row lock: of two runners
         * racing for one job, one changes it and the other nothing. */
        rc = st->ops->query(c, "UPDATE transfer_jobs SET state = 'running', runner = $3, "
                            "heartbeat = $4, started_at = coalesce(started_at, $6) "
                            "WHERE tenant_id = $1 AND job_id = $2 AND (state = 'queued' OR "
                            "(state = 'running' AND heartbeat < $5))", u, NELEM(u), NULL, 0,
                            NULL, &changes, NULL, NULL);
    }
    if (rc == STORE_OK && (!found || changes != 1))
        rc = STORE_NOTFOUND;
    rc = store_finish(st, c, rc);
    store_conn_put(st, c, rc);
    if (rc != STORE_OK)
        tenant[0] = job_id[0] = '\0';
    return rc;
}

enum store_status
store_job_heartbeat(struct store_tenant *ctx, const char *job_id, const char *runner,
                    int64_t now)
{
    int64_t changes = 0;
    enum store_status rc;

    if (ctx == NULL || !transfer_id_valid(job_id, TRANSFER_REF_HEX) || !store_actor_ok(runner))
        return STORE_INVALID;
    const struct qarg a[] = { TXT(ctx->tenant), TXT(job_id), TXT(runner), INT(now) };
    rc = write1(ctx, "UPDATE transfer_jobs SET heartbeat = $4 WHERE tenant_id = $1 AND "
                "job_id = $2 AND runner = $3 AND state = 'running'", a, NELEM(a), &changes);
    return rc == STORE_OK && changes != 1 ? STORE_NOTFOUND : rc;
}

#define ROW_COLS "row_no, prev_code, address_no, consent_id, outcome, inquiry_id, doses"

static void
row_bind(struct transfer_job_row *r, struct qcol cols[7])
{
    cols[0] = (struct qcol){ .t = QT_INT, .i = &r->row_no };
    cols[1] = (struct qcol){ .t = QT_TEXT, .s = r->prev_code, .ssz = sizeof(r->prev_code) };
    cols[2] = (struct qcol){ .t = QT_TEXT, .s = r->address_no, .ssz = sizeof(r->address_no) };
    cols[3] = (struct qcol){ .t = QT_TEXT, .s = r->consent_id, .ssz = sizeof(r->consent_id) };
    cols[4] = (struct qcol){ .t = QT_TEXT, .s = r->outcome, .ssz = sizeof(r->outcome) };
    cols[5] = (struct qcol){ .t = QT_TEXT, .s = r->inquiry_id, .ssz = sizeof(r->inquiry_id) };
    cols[6] = (struct qcol){ .t = QT_INT, .i = &r->doses };
}

enum store_status
store_job_next_row(struct store_tenant *ctx, const char *job_id, struct transfer_job_row *o)
{
    uint8_t ct[MN_CT_MAX];
    size_t ctlen = 0, n = 0;
    struct qcol cols[8];
    bool found = false;
    enum store_status rc;

    if (ctx == NULL || o == NULL || !transfer_id_valid(job_id, TRANSFER_REF_HEX))
        return STORE_INVALID;
    memset(o, 0, sizeof(*o));
    row_bind(o, cols);
    cols[7] = (struct qcol){ .t = QT_BLOB, .b = ct, .bsz = sizeof(ct), .blen = &ctlen };
    const struct qarg a[] = { TXT(ctx->tenant), TXT(job_id) };
    rc = read1(ctx, "SELECT " ROW_COLS ", mynumber_ct FROM transfer_job_rows WHERE "
               "tenant_id = $1 AND job_id = $2 AND outcome IS NULL ORDER BY row_no LIMIT 1",
               a, NELEM(a), cols, NELEM(cols), &found);
    if (rc == STORE_OK && !found)
        rc = STORE_NOTFOUND;
    if (rc == STORE_OK) {
        char col[64];
        mn_column(job_id, col);
        rc = store_unseal(ctx, "transfer_job_rows", col, o->row_no, ct, ctlen, o->mynumber,
                          sizeof(o->mynumber), &n);
        if (rc == STORE_OK && (n != 12 || !mynumber_valid(o->mynumber)))
            rc = STORE_KEY;
    }
    util_wipe(ct, sizeof(ct));
    if (rc != STORE_OK)
        util_wipe(o, sizeof(*o));
    return rc;
}

enum store_status
store_job_row_done(struct store_tenant *ctx, const char *job_id,
                   const struct transfer_job_row *r)
{
    int64_t changes = 0;
    enum store_status rc;
    void *c;

    if (ctx == NULL)
        return STORE_INVALID;
    if (r == NULL || !transfer_id_valid(job_id, TRANSFER_REF_HEX) ||
        !code_ok(r->outcome, sizeof(r->outcome)) || r->doses < 0 ||
        (r->inquiry_id[0] && !transfer_id_valid(r->inquiry_id, TRANSFER_MSG_ID_HEX)))
        return store_write_refuse(ctx, STORE_INVALID);
    const struct qarg a[] = {
        TXT(ctx->tenant), TXT(job_id), INT(r->row_no), TXT(r->outcome),
        store_opt_text(r->inquiry_id),
        INT(r->doses) };
    if ((rc = store_write_begin(ctx, &c)) != STORE_OK)
        return rc;
    /* The sealed number goes with the row's completion (same commit). */
    rc = query(ctx, c, "UPDATE transfer_job_rows SET outcome = $4, inquiry_id = $5, doses = $6, "
               "mynumber_ct = NULL WHERE tenant_id = $1 AND job_id = $2 AND row_no = $3 AND "
               "outcome IS NULL", a, NELEM(a), NULL, 0, NULL, &changes);
    if (rc == STORE_OK && changes != 1)
        rc = STORE_NOTFOUND;
    if (rc == STORE_OK)
        rc = query(ctx, c, "UPDATE transfer_jobs SET rows_done = rows_done + 1 WHERE "
                   "tenant_id = $1 AND job_id = $2", a, 2, NULL, 0, NULL, NULL);
    return store_write_end(ctx, c, rc, 0);
}

enum store_status
store_job_finish(struct store_tenant *ctx, const char *job_id, const char *state)
{
    char now[STORE_TS_LEN];
    int64_t changes = 0;
    enum store_status rc;

    if (ctx == NULL || !transfer_id_valid(job_id, TRANSFER_REF_HEX) || state == NULL ||
        (strcmp(state, "done") != 0 && strcmp(state, "failed") != 0))
        return STORE_INVALID;
    util_utc_now(now);
    const struct qarg a[] = { TXT(ctx->tenant), TXT(job_id), TXT(state), TXT(now) };
    rc = write1(ctx, "UPDATE transfer_jobs SET state = $3, finished_at = $4, runner = NULL "
                "WHERE tenant_id = $1 AND job_id = $2 AND state IN ('queued', 'running')",
                a, NELEM(a), &changes);
    return rc == STORE_OK && changes != 1 ? STORE_NOTFOUND : rc;
}

enum store_status
store_job_get(struct store_tenant *ctx, const char *job_id, struct transfer_job *o)
{
    bool found = false;
    enum store_status rc;

    if (ctx == NULL || o == NULL)
        return STORE_INVALID;
    memset(o, 0, sizeof(*o));
    if (!transfer_id_valid(job_id, TRANSFER_REF_HEX))
        return STORE_NOTFOUND;
    const struct qarg a[] = { TXT(ctx->tenant), TXT(job_id) };
    const struct qcol cols[] = {
        { .t = QT_TEXT, .s = o->id, .ssz = sizeof(o->id) },
        { .t = QT_TEXT, .s = o->state, .ssz = sizeof(o->state) },
        { .t = QT_TEXT, .s = o->actor, .ssz = sizeof(o->actor) },
        { .t = QT_TEXT, .s = o->role, .ssz = sizeof(o->role) },
        { .t = QT_INT, .i = &o->rows_total },
        { .t = QT_INT, .i = &o->rows_done },
        { .t = QT_TEXT, .s = o->created_at, .ssz = sizeof(o->created_at) },
        { .t = QT_TEXT, .s = o->started_at, .ssz = sizeof(o->started_at) },
        { .t = QT_TEXT, .s = o->finished_at, .ssz = sizeof(o->finished_at) },
    };
    rc = read1(ctx, "SELECT job_id, state, actor, role, rows_total, rows_done, created_at, "
               "started_at, finished_at FROM transfer_jobs WHERE tenant_id = $1 AND "
               "job_id = $2", a, NELEM(a), cols, NELEM(cols), &found);
    return rc == STORE_OK && !found ? STORE_NOTFOUND : rc;
}

struct rowwalk {
    struct transfer_job_row r;
    int (*fn)(const struct transfer_job_row *, void *);
    void *arg;
};

static int
rowwalk_row(void *p)
{
    struct rowwalk *w = p;

    return w->fn(&w->r, w->arg);
}

enum store_status
store_job_rows(struct store_tenant *ctx, const char *job_id,
               int (*fn)(const struct transfer_job_row *, void *), void *arg)
{
    struct rowwalk w = { .fn = fn, .arg = arg };
    struct qcol cols[7];
    enum store_status rc;
    void *c;

    if (ctx == NULL || fn == NULL || !transfer_id_valid(job_id, TRANSFER_REF_HEX))
        return STORE_INVALID;
    row_bind(&w.r, cols);
    const struct qarg a[] = { TXT(ctx->tenant), TXT(job_id) };
    if ((rc = store_ctx_conn(ctx, &c)) != STORE_OK)
        return rc;
    rc = OPS(ctx)->query(c, "SELECT " ROW_COLS " FROM transfer_job_rows WHERE tenant_id = $1 "
                         "AND job_id = $2 ORDER BY row_no", a, NELEM(a), cols, NELEM(cols),
                         NULL, NULL, rowwalk_row, &w);
    store_ctx_release(ctx, c, rc);
    return rc;
}
