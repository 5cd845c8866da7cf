/*
 * export.c - CSV exports of a tenant's records (R2.7): the replica in the
 * import formats without individual numbers (R2.2), and the VRS ledger
 * layout (予防接種台帳向け出力).  Layouts and sources:
 * docs/import-export.md.
 */
#include "vrs/export.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "store/store.h"
#include "store/store_records.h"

#define EXPORT_PAGE_DEFAULT 1000u
#define EXPORT_PAGE_MAX     10000u  /* the store's walk limit */
/* Vouchers or vaccinations of one resident read in one go at first;
 * more are read by doubling up to EXPORT_PER_RESIDENT_MAX. */
#define EXPORT_PER_RESIDENT     64u
#define EXPORT_PER_RESIDENT_MAX 4096u
#define LEDGER_GROUP            8u
#define LEDGER_DOSE_MAX         99u  /* VRS_DOSE_MAX */

static const char *const kind_names[] = { "residents", "vouchers", "vaccinations",
                                          "ledger" };

/* The replica headers: the import formats, residents without mynumber
 * (R2.2: no export holds an individual number). */
static const char *const headers[] = {
    "address_no,name,kana,birth_date,sex,postcode,address,katagaki,household_no,"
    "relationship,became_date,ceased_date,movement_type,movement_date,prev_address,"
    "next_address,alias",
    "address_no,voucher_no,ticket_type,issued_date",
    "address_no,vaccine,dose,date,lot,voucher_no,site,clinic,doctor",
};

/* One dose group of the ledger, after 「接種記録データの確認方法」 (VRS,
 * 予防接種台帳向け出力): N回目 + each of these. */
static const char *const ledger_group[LEDGER_GROUP] = {
    "接種履歴登録日時", "接種日", "券番号", "接種自治体コード", "接種会場名",
    "接種医師名", "ワクチンメーカー", "ワクチンロット番号"
};
#define LEDGER_FIRST "個別宛名番号"

const char *
export_kind_name(enum export_kind k)
{
    return (unsigned)k < sizeof(kind_names) / sizeof(*kind_names) ? kind_names[k] : NULL;
}

int
export_kind_parse(const char *s, enum export_kind *k)
{
    for (size_t i = 0; s != NULL && i < sizeof(kind_names) / sizeof(*kind_names); i++)
        if (strcmp(s, kind_names[i]) == 0) {
            *k = (enum export_kind)i;
            return 0;
        }
    return -1;
}

const char *
export_header(enum export_kind k)
{
    return (unsigned)k < sizeof(headers) / sizeof(*headers) ? headers[k] : NULL;
}

int
export_ledger_header(unsigned max_dose, char *out, size_t outsz)
{
    size_t used;
    int n;

    if (out == NULL || outsz == 0 || max_dose > LEDGER_DOSE_MAX)
        return -1;
    n = snprintf(out, outsz, "%s", LEDGER_FIRST);
    if (n < 0 || (size_t)n >= outsz)
        return -1;
    used = (size_t)n;
    for (unsigned d = 1; d <= max_dose; d++)
        for (size_t g = 0; g < LEDGER_GROUP; g++) {
            n = snprintf(out + used, outsz - used, ",%u回目%s", d, ledger_group[g]);
            if (n < 0 || (size_t)n >= outsz - used)
                return -1;
            used += (size_t)n;
        }
    return 0;
}

int
export_jst_stamp(const char *utc, char out[15])
{
    struct tm tm;
    time_t t;
    unsigned y, mo, d, h, mi, s;
    char tail = '\0';

    if (utc == NULL || strlen(utc) < 20 || utc[4] != '-' || utc[10] != 'T' ||
        sscanf(utc, "%4u-%2u-%2uT%2u:%2u:%2u%c", &y, &mo, &d, &h, &mi, &s, &tail) != 7 ||
        (tail != '.' && tail != 'Z') || y < 1900 || mo < 1 || mo > 12 || d < 1 ||
        d > 31 || h > 23 || mi > 59 || s > 60)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = (int)y - 1900;
    tm.tm_mon = (int)mo - 1;
    tm.tm_mday = (int)d;
    tm.tm_hour = (int)h;
    tm.tm_min = (int)mi;
    tm.tm_sec = (int)s;
    /* Japan has no daylight saving time: JST is UTC+9 all year. */
    t = timegm(&tm) + 9 * 3600;
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(out, 15, "%Y%m%d%H%M%S", &tm) != 14)
        return -1;
    return 0;
}

/* ---- the run --------------------------------------------------------------- */

/* One resident of a page: what the second step needs, no personal data
 * beyond the address number (a record number, stored in clear). */
struct who {
    int64_t id;
    char    address_no[STORE_ADDRNO_MAX];
};

struct ex {
    struct store_tenant      *ctx;
    const struct export_opts *o;
    struct csvout            *w;
    struct export_stats       st;
    char                     *err;
    size_t                    errlen;
    bool                      failed;
    size_t                    page;

    struct who               *who;          /* one page of residents */
    size_t                    nwho;

    struct vaccination       *vac;          /* one resident's, grown */
    struct voucher           *vou;
    size_t                    capvac, capvou;

    const char               *series;       /* ledger */
};

static void ex_fail(struct ex *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
ex_fail(struct ex *x, const char *fmt, ...)
{
    va_list ap;

    if (x->failed)
        return;
    x->failed = true;
    if (x->err == NULL || x->errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(x->err, x->errlen, fmt, ap);
    va_end(ap);
}

/* A failed cell: the reason, never the value. */
static void
ex_write_failed(struct ex *x)
{
    int e = errno;

    if (e == EILSEQ)
        ex_fail(x, "a value cannot be written in %s; export in UTF-8 instead",
                x->o->encoding == CSVOUT_CP932 ? "CP932" : "UTF-8");
    else if (e == E2BIG)
        ex_fail(x, "a value is too long for a CSV cell");
    else
        ex_fail(x, "the export could not be written: %s", strerror(e));
}

static int
ex_row(struct ex *x, const char *const *cells, size_t n)
{
    if (x->failed)
        return -1;
    if (csvout_record(x->w, cells, n) != 0) {
        ex_write_failed(x);
        return -1;
    }
    return 0;
}

static int
ex_header_line(struct ex *x, const char *line)
{
    const char *cells[1 + LEDGER_GROUP * LEDGER_DOSE_MAX];
    char *copy = strdup(line), *save = NULL;
    size_t n = 0;
    int rc;

    if (copy == NULL) {
        ex_fail(x, "out of memory");
        return -1;
    }
    for (char *t = strtok_r(copy, ",", &save); t != NULL && n < sizeof(cells) / sizeof(*cells);
         t = strtok_r(NULL, ",", &save))
        cells[n++] = t;
    rc = ex_row(x, cells, n);
    free(copy);
    return rc;
}

/* ---- residents ------------------------------------------------------------- */

static int
resident_row(const struct resident *r, void *arg)
{
    struct ex *x = arg;
    /* R2.2: every column of the import format but mynumber. */
    const char *cells[] = {
        r->address_no, r->name, r->kana, r->birth_date, r->sex, r->postcode,
        r->address, r->katagaki, r->household_no, r->relationship, r->became_date,
        r->ceased_date, r->movement_type, r->movement_date, r->prev_address,
        r->next_address, r->alias
    };

    if (ex_row(x, cells, sizeof(cells) / sizeof(*cells)) != 0)
        return 1;
    x->st.rows++;
    return 0;
}

/* Remember a page of residents (id, address number) for per-resident
 * reads after the walk, which must not run inside the walk's query. */
static int
remember(const struct resident *r, void *arg)
{
    struct ex *x = arg;
    struct who *w = &x->who[x->nwho++];

    w->id = r->id;
    snprintf(w->address_no, sizeof(w->address_no), "%s", r->address_no);
    return 0;
}

/* Walk every resident a page at a time: `row` writes directly, or `each`
 * runs per remembered resident after each page. */
static void
walk_residents(struct ex *x, int (*row)(const struct resident *, void *),
               void (*each)(struct ex *, const struct who *))
{
    int64_t after = 0, last = 0;
    size_t n = 0;

    do {
        enum store_status rc;

        x->nwho = 0;
        rc = store_resident_walk(x->ctx, after, x->page, false,
                                 row != NULL ? row : remember, x, &last, &n);
        if (rc != STORE_OK) {
            if (!x->failed)
                ex_fail(x, "the store could not list residents: %s", store_strerror(rc));
            return;
        }
        for (size_t i = 0; each != NULL && i < x->nwho && !x->failed; i++)
            each(x, &x->who[i]);
        util_wipe(x->who, x->page * sizeof(*x->who));
        after = last;
    } while (n > 0 && !x->failed);
}

/* ---- per-resident reads --------------------------------------------------- */

static int
load_vaccinations(struct ex *x, int64_t id, size_t *n)
{
    for (;;) {
        enum store_status rc = store_vaccinations_of(x->ctx, id, x->vac, x->capvac, n);
        void *p;

        if (rc != STORE_OK) {
            ex_fail(x, "the store could not list vaccinations: %s", store_strerror(rc));
            return -1;
        }
        if (*n < x->capvac)
            return 0;
        if (x->capvac >= EXPORT_PER_RESIDENT_MAX) {
            ex_fail(x, "a resident has more than %u vaccinations", EXPORT_PER_RESIDENT_MAX);
            return -1;
        }
        util_wipe(x->vac, x->capvac * sizeof(*x->vac));
        if ((p = realloc(x->vac, 2 * x->capvac * sizeof(*x->vac))) == NULL) {
            ex_fail(x, "out of memory");
            return -1;
        }
        x->vac = p;
        x->capvac *= 2;
    }
}

static int
load_vouchers(struct ex *x, int64_t id, size_t *n)
{
    for (;;) {
        enum store_status rc = store_vouchers_of(x->ctx, id, x->vou, x->capvou, n);
        void *p;

        if (rc != STORE_OK) {
            ex_fail(x, "the store could not list vouchers: %s", store_strerror(rc));
            return -1;
        }
        if (*n < x->capvou)
            return 0;
        if (x->capvou >= EXPORT_PER_RESIDENT_MAX) {
            ex_fail(x, "a resident has more than %u vouchers", EXPORT_PER_RESIDENT_MAX);
            return -1;
        }
        if ((p = realloc(x->vou, 2 * x->capvou * sizeof(*x->vou))) == NULL) {
            ex_fail(x, "out of memory");
            return -1;
        }
        x->vou = p;
        x->capvou *= 2;
    }
}

static void
voucher_rows(struct ex *x, const struct who *r)
{
    size_t n = 0;

    if (load_vouchers(x, r->id, &n) != 0)
        return;
    for (size_t i = 0; i < n && !x->failed; i++) {
        const struct voucher *v = &x->vou[i];
        char tt[12];
        const char *cells[4] = { r->address_no, v->voucher_no, tt, v->issued_date };

        if (v->voided)
            continue;
        snprintf(tt, sizeof(tt), "%d", v->ticket_type);
        if (ex_row(x, cells, 4) == 0)
            x->st.rows++;
    }
}

static void
vaccination_rows(struct ex *x, const struct who *r)
{
    size_t n = 0;

    if (load_vaccinations(x, r->id, &n) != 0)
        return;
    for (size_t i = 0; i < n && !x->failed; i++) {
        const struct vaccination *v = &x->vac[i];
        char dose[12];
        const char *cells[9] = { r->address_no, v->vaccine, dose, v->date, v->lot,
                                 v->voucher_no, v->site, v->clinic, v->doctor };

        if (v->voided)
            continue;
        snprintf(dose, sizeof(dose), "%d", v->dose);
        if (ex_row(x, cells, 9) == 0)
            x->st.rows++;
    }
    util_wipe(x->vac, n * sizeof(*x->vac));
}

/* ---- the ledger ------------------------------------------------------------ */

static bool
in_series(const struct ex *x, const struct vaccination *v)
{
    const struct vrs_vaccine *vv = vrs_catalogue_lookup(x->o->catalogue, v->vaccine);

    return !v->voided && vv != NULL && strcmp(vv->series, x->series) == 0 &&
           v->dose >= 1 && v->dose <= (int)LEDGER_DOSE_MAX;
}

static int
max_dose_of(const struct vaccination *v, void *arg)
{
    struct ex *x = arg;

    if (in_series(x, v) && (unsigned)v->dose > x->st.max_dose)
        x->st.max_dose = (unsigned)v->dose;
    return 0;
}

/* First pass: the highest dose present decides the columns. */
static void
ledger_max_dose(struct ex *x)
{
    int64_t after = 0, last = 0;
    size_t n = 0;

    do {
        enum store_status rc = store_vaccination_walk(x->ctx, after, x->page, max_dose_of,
                                                      x, &last, &n);
        if (rc != STORE_OK) {
            ex_fail(x, "the store could not list vaccinations: %s", store_strerror(rc));
            return;
        }
        after = last;
    } while (n > 0);
}

static void
ledger_row(struct ex *x, const struct who *r)
{
    /* Per dose group: 8 cells, texts owned here or pointing into x->vac. */
    char stamp[LEDGER_DOSE_MAX][15], day[LEDGER_DOSE_MAX][9];
    const char *cells[1 + LEDGER_GROUP * LEDGER_DOSE_MAX];
    const char *tenant = store_tenant_id(x->ctx);
    size_t n = 0, ncells = 1 + LEDGER_GROUP * (size_t)x->st.max_dose;
    bool any = false;

    if (load_vaccinations(x, r->id, &n) != 0)
        return;
    cells[0] = r->address_no;
    for (size_t i = 1; i < ncells; i++)
        cells[i] = "";
    for (size_t i = 0; i < n; i++) {
        const struct vaccination *v = &x->vac[i];
        const struct vrs_vaccine *vv;
        size_t d, at;

        if (!in_series(x, v) || (unsigned)v->dose > x->st.max_dose)
            continue;
        d = (size_t)v->dose - 1;
        at = 1 + LEDGER_GROUP * d;
        if (cells[at + 1][0] != '\0')
            continue;       /* a second live row of one dose cannot be stored */
        vv = vrs_catalogue_lookup(x->o->catalogue, v->vaccine);
        if (export_jst_stamp(v->entered_at, stamp[d]) != 0)
            stamp[d][0] = '\0';
        /* 接種日 YYYYMMDD: the stored date without its hyphens. */
        memcpy(day[d], v->date, 4);
        memcpy(day[d] + 4, v->date + 5, 2);
        memcpy(day[d] + 6, v->date + 8, 2);
        day[d][8] = '\0';
        cells[at] = stamp[d];
        cells[at + 1] = day[d];
        cells[at + 2] = v->voucher_no;
        cells[at + 3] = tenant;
        cells[at + 4] = v->site;
        cells[at + 5] = v->doctor;
        cells[at + 6] = vv != NULL ? vv->maker_ja : "";
        cells[at + 7] = v->lot;
        any = true;
    }
    /* Residents without a dose of the series have no row. */
    if (any && ex_row(x, cells, ncells) == 0)
        x->st.rows++;
    util_wipe(x->vac, n * sizeof(*x->vac));
}

/* ---- entry point ----------------------------------------------------------- */

static int
ex_start(struct ex *x, csvout_write_fn write, void *arg)
{
    struct csvout_opts co = { x->o->encoding, x->o->crlf };

    if (csvout_new(&co, write, arg, &x->w) != 0) {
        ex_fail(x, "the CSV writer cannot be made (%s)", strerror(errno));
        return -1;
    }
    x->page = x->o->page == 0 ? EXPORT_PAGE_DEFAULT
            : x->o->page > EXPORT_PAGE_MAX ? EXPORT_PAGE_MAX : x->o->page;
    x->capvac = x->capvou = EXPORT_PER_RESIDENT;
    if ((x->who = calloc(x->page, sizeof(*x->who))) == NULL ||
        (x->vac = calloc(x->capvac, sizeof(*x->vac))) == NULL ||
        (x->vou = calloc(x->capvou, sizeof(*x->vou))) == NULL) {
        ex_fail(x, "out of memory");
        return -1;
    }
    return 0;
}

int
export_run(struct store_tenant *ctx, const struct export_opts *o, csvout_write_fn write,
           void *arg, struct export_stats *stats, char *err, size_t errlen)
{
    struct ex x;
    char *hdr = NULL;

    memset(&x, 0, sizeof(x));
    x.ctx = ctx;
    x.o = o;
    x.err = err;
    x.errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (ctx == NULL || o == NULL || write == NULL || export_kind_name(o->kind) == NULL ||
        (o->kind == EXPORT_LEDGER && o->catalogue == NULL)) {
        ex_fail(&x, "the export was called with incomplete options");
        return -1;
    }
    x.series = o->series != NULL ? o->series : "covid";
    if (ex_start(&x, write, arg) != 0)
        goto out;
    switch (o->kind) {
    case EXPORT_RESIDENTS:
        if (ex_header_line(&x, headers[o->kind]) == 0)
            walk_residents(&x, resident_row, NULL);
        break;
    case EXPORT_VOUCHERS:
        if (ex_header_line(&x, headers[o->kind]) == 0)
            walk_residents(&x, NULL, voucher_rows);
        break;
    case EXPORT_VACCINATIONS:
        if (ex_header_line(&x, headers[o->kind]) == 0)
            walk_residents(&x, NULL, vaccination_rows);
        break;
    case EXPORT_LEDGER: {
        size_t sz = 64 + (size_t)LEDGER_DOSE_MAX * LEDGER_GROUP * 48;

        ledger_max_dose(&x);
        if (x.failed)
            break;
        /* No dose at all: the first group's columns still name the layout. */
        if (x.st.max_dose == 0)
            x.st.max_dose = 1;
        if ((hdr = malloc(sz)) == NULL ||
            export_ledger_header(x.st.max_dose, hdr, sz) != 0) {
            ex_fail(&x, "out of memory");
            break;
        }
        if (ex_header_line(&x, hdr) == 0)
            walk_residents(&x, NULL, ledger_row);
        break;
    }
    }
    if (!x.failed && csvout_flush(x.w) != 0)
        ex_write_failed(&x);
out:
    x.st.bytes = csvout_bytes(x.w);
    if (stats != NULL)
        *stats = x.st;
    free(hdr);
    csvout_free(x.w);
    if (x.who != NULL) {
        util_wipe(x.who, x.page * sizeof(*x.who));
        free(x.who);
    }
    if (x.vac != NULL) {
        util_wipe(x.vac, x.capvac * sizeof(*x.vac));
        free(x.vac);
    }
    free(x.vou);
    return x.failed ? -1 : 0;
}
