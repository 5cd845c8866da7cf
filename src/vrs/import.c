/*
 * import.c - bulk import of residents, vouchers and vaccinations (R2.6).
 *
 * Pass 1 (check) is pure: it sees the file through csvin and the tenant
 * through the import_lookup callbacks, so tests and the fuzzer run it
 * without a store.  Pass 2 (write) runs only after a clean pass 1, inside
 * one bulk transaction (store_records.h).  What each column must be, and
 * why, is in docs/import-export.md.
 */
#include "vrs/import.h"

#include <errno.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "ref/mynumber.h"
#include "store/store.h"
#include "store/store_records.h"
#include "vrs/fields.h"
#include "vrs/rules.h"
#include "vrs/voucher.h"

#define IMPORT_BATCH_DEFAULT 500u
#define IMPORT_BATCH_MAX     5000u
#define IMPORT_FIELD_MAX     4096u     /* csvin limit; columns are tighter */
#define IMPORT_FIELDS_MAX    64u

/* ---- the formats ------------------------------------------------------- */

enum { R_ADDRESS_NO = 0, R_MYNUMBER, R_NAME, R_KANA, R_BIRTH, R_SEX, R_POSTCODE,
       R_ADDRESS, R_KATAGAKI, R_HOUSEHOLD, R_RELATIONSHIP, R_BECAME, R_CEASED,
       R_MOVE_TYPE, R_MOVE_DATE, R_PREV, R_NEXT, R_ALIAS, R_NCOLS };
enum { V_ADDRESS_NO = 0, V_VOUCHER_NO, V_TICKET, V_ISSUED, V_NCOLS };
enum { X_ADDRESS_NO = 0, X_VACCINE, X_DOSE, X_DATE, X_LOT, X_VOUCHER_NO,
       X_SITE, X_CLINIC, X_DOCTOR, X_NCOLS };

static const char *const resident_cols[R_NCOLS] = {
    "address_no", "mynumber", "name", "kana", "birth_date", "sex", "postcode",
    "address", "katagaki", "household_no", "relationship", "became_date",
    "ceased_date", "movement_type", "movement_date", "prev_address",
    "next_address", "alias"
};
static const char *const voucher_cols[V_NCOLS] = {
    "address_no", "voucher_no", "ticket_type", "issued_date"
};
static const char *const vaccination_cols[X_NCOLS] = {
    "address_no", "vaccine", "dose", "date", "lot", "voucher_no", "site",
    "clinic", "doctor"
};

#define MOVE_OUT   "転出"
#define MOVE_DEATH "死亡"

struct format {
    const char *name;
    const char *header;
    const char *const *cols;
    size_t ncols;
};

static const struct format formats[] = {
    [IMPORT_RESIDENTS] = { "residents",
        "address_no,mynumber,name,kana,birth_date,sex,postcode,address,katagaki,"
        "household_no,relationship,became_date,ceased_date,movement_type,"
        "movement_date,prev_address,next_address,alias", resident_cols, R_NCOLS },
    [IMPORT_VOUCHERS] = { "vouchers", "address_no,voucher_no,ticket_type,issued_date",
        voucher_cols, V_NCOLS },
    [IMPORT_VACCINATIONS] = { "vaccinations",
        "address_no,vaccine,dose,date,lot,voucher_no,site,clinic,doctor",
        vaccination_cols, X_NCOLS },
};

static bool
kind_ok(enum import_kind k)
{
    return k == IMPORT_RESIDENTS || k == IMPORT_VOUCHERS || k == IMPORT_VACCINATIONS;
}

const char *
import_kind_name(enum import_kind k)
{
    return kind_ok(k) ? formats[k].name : NULL;
}

int
import_kind_parse(const char *s, enum import_kind *k)
{
    for (int i = IMPORT_RESIDENTS; s != NULL && i <= IMPORT_VACCINATIONS; i++)
        if (strcmp(s, formats[i].name) == 0) {
            *k = (enum import_kind)i;
            return 0;
        }
    return -1;
}

const char *
import_header(enum import_kind k)
{
    return kind_ok(k) ? formats[k].header : NULL;
}

/* ---- a compact set of keyed hashes (duplicates inside the file) -------- */

/*
 * Open addressing over 64-bit SipHash values (libsodium crypto_shorthash,
 * a random key per import, so the set holds no value and cannot be
 * searched for one), with the line each was first seen on.  12 bytes a
 * slot, at most 3/4 full, doubled when it is: 16 to 32 bytes per key.
 * Two different values with the same 64-bit hash (odds about n^2 / 2^65,
 * 3e-8 for a million keys) would be reported as a duplicate: a false
 * refusal, never a false import.
 */
struct hset {
    uint64_t *h;            /* 0 = empty slot */
    uint32_t *line;
    size_t    cap, n;
};

static void
hset_free(struct hset *s)
{
    free(s->h);
    free(s->line);
    memset(s, 0, sizeof(*s));
}

static void
hset_put_raw(struct hset *s, uint64_t h, uint32_t line)
{
    size_t i = (size_t)h & (s->cap - 1);

    while (s->h[i] != 0)
        i = (i + 1) & (s->cap - 1);
    s->h[i] = h;
    s->line[i] = line;
    s->n++;
}

static int
hset_grow(struct hset *s)
{
    struct hset t = { 0 };

    t.cap = s->cap ? s->cap * 2 : 1024;
    if (t.cap > SIZE_MAX / sizeof(*t.h) ||
        (t.h = calloc(t.cap, sizeof(*t.h))) == NULL ||
        (t.line = calloc(t.cap, sizeof(*t.line))) == NULL) {
        hset_free(&t);
        return -1;
    }
    for (size_t i = 0; i < s->cap; i++)
        if (s->h[i] != 0)
            hset_put_raw(&t, s->h[i], s->line[i]);
    hset_free(s);
    *s = t;
    return 0;
}

/* 0: added; >0: the line it was first seen on; -1: out of memory. */
static int64_t
hset_add(struct hset *s, uint64_t h, uint32_t line)
{
    size_t i;

    if (h == 0)
        h = 1;
    if ((s->n + 1) * 4 > s->cap * 3 && hset_grow(s) != 0)
        return -1;
    for (i = (size_t)h & (s->cap - 1); s->h[i] != 0; i = (i + 1) & (s->cap - 1))
        if (s->h[i] == h)
            return s->line[i];
    hset_put_raw(s, h, line);
    return 0;
}

/* ---- pass 1 state --------------------------------------------------------- */

/* One vaccination row kept for the rules (24 bytes). */
struct vrow {
    int64_t  resident;      /* store id, or a keyed hash without a store */
    uint32_t line;
    int32_t  date;          /* days since 1970-01-01 */
    uint16_t vaccine;       /* catalogue index */
    uint16_t series;        /* series id (chk.series) */
    uint16_t dose;          /* VROW_DUP set: a repeat within the file */
};
#define VROW_DUP 0x8000u

/* A problem found after the streaming part (rules, duplicates of
 * vaccinations), emitted in line order at the end. */
struct late {
    uint32_t    line;
    uint32_t    first;      /* earlier line for duplicates, else 0 */
    const char *column;
    const char *reason;
};

struct chk {
    const struct import_opts   *o;
    const struct import_lookup *lk;
    struct import_result       *res;
    const struct format        *fmt;
    uint8_t                     key[crypto_shorthash_KEYBYTES];
    int32_t                     today;

    bool     header_seen;
    bool     stop;          /* sink asked to stop, or a fatal error */
    bool     failed;        /* fatal: res->error says why */
    uint64_t last_bad;      /* last line counted in bad_lines */

    struct hset dup;

    /* vaccinations */
    size_t          ncat;
    uint16_t       *series;     /* catalogue index -> series id */
    struct vrow    *rows;
    size_t          nrows, caprows;
    struct late    *late;
    size_t          nlate, caplate;

    /* hashing and progress */
    crypto_hash_sha256_state sha;
    uint64_t bytes, total;
    enum import_phase phase;
};

static void fail_chk(struct chk *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail_chk(struct chk *c, const char *fmt, ...)
{
    va_list ap;

    if (c->failed)
        return;
    c->failed = true;
    c->stop = true;
    va_start(ap, fmt);
    vsnprintf(c->res->error, sizeof(c->res->error), fmt, ap);
    va_end(ap);
}

/* One style for every reason, whoever wrote it: the sentences of
 * voucher.h and rules.h ("The dose ... .") become "the dose ...". */
static const char *
plain(const char *reason, char *buf, size_t size)
{
    size_t n = strlen(reason);

    if (n == 0 || n >= size || !(reason[n - 1] == '.' ||
                                 (reason[0] >= 'A' && reason[0] <= 'Z')))
        return reason;
    memcpy(buf, reason, n + 1);
    if (buf[n - 1] == '.')
        buf[n - 1] = '\0';
    if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
        buf[0] = (char)(buf[0] - 'A' + 'a');
    return buf;
}

static void
report(struct chk *c, uint64_t line, const char *column, const char *reason)
{
    char buf[384];
    struct import_problem p = { line, column, plain(reason, buf, sizeof(buf)) };

    if (c->stop)
        return;
    c->res->problems++;
    if (line != c->last_bad) {
        c->res->bad_lines++;
        c->last_bad = line;
    }
    if (c->o->sink(c->o->sink_arg, &p) != 0)
        c->stop = true;
}

static uint64_t
keyed(const struct chk *c, char domain, const char *s, size_t n)
{
    unsigned char msg[1 + 64], out[crypto_shorthash_BYTES];
    uint64_t h = 0;

    /* Values hashed here are at most 31 bytes (checked before). */
    if (n > sizeof(msg) - 1)
        n = sizeof(msg) - 1;
    msg[0] = (unsigned char)domain;
    memcpy(msg + 1, s, n);
    crypto_shorthash(out, msg, n + 1, c->key);
    sodium_memzero(msg, sizeof(msg));
    memcpy(&h, out, sizeof(h));
    return h;
}

/* ---- field checks: NULL if fine, else a reason without the value ------- */

static bool
is_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Text within the store's limit, without control characters
 * (vrs/fields.h, the same rule as the API's). */
static const char *
check_text(const char *s, size_t n, size_t max, bool required)
{
    if (n == 0)
        return required ? "is empty" : NULL;
    return vrs_field_text(s, n, max);
}

static const char *
check_date(const char *s, size_t n, bool required, int32_t *days)
{
    *days = 0;
    if (n == 0)
        return required ? "is empty" : NULL;
    if (vrs_date_parse(s, days) != 0)
        return "is not a calendar date written YYYY-MM-DD";
    return NULL;
}

/* ---- per kind ----------------------------------------------------------- */

#define F(i) fields[i], lens[i]

static void
check_resident(struct chk *c, uint64_t line, const char *const *fields,
               const size_t *lens)
{
    const char *const *col = resident_cols;
    const char *why;
    int32_t birth = 0, became = 0, ceased = 0, moved = 0;
    bool ok_addr, ok_mn = false, move_known = false;
    int64_t first;

    why = vrs_field_code(F(R_ADDRESS_NO));
    ok_addr = why == NULL;
    if (!ok_addr)
        report(c, line, col[R_ADDRESS_NO], lens[R_ADDRESS_NO] == 0 ? "is empty" : why);
    if (lens[R_MYNUMBER] != 0) {
        if (lens[R_MYNUMBER] != MYNUMBER_LEN || !is_digits(F(R_MYNUMBER)))
            report(c, line, col[R_MYNUMBER], "the individual number must be 12 digits");
        else if (!mynumber_valid(fields[R_MYNUMBER]))
            report(c, line, col[R_MYNUMBER], "the individual number's check digit is wrong");
        else
            ok_mn = true;
    }
    /* Name and kana in the 住基 layout, already in the stored form (the
     * API folds what staff type into the same form: vrs/fields.h). */
    if ((why = check_text(F(R_NAME), STORE_NAME_MAX - 1, true)) != NULL ||
        (why = vrs_field_name_stored(F(R_NAME), VRS_NAME)) != NULL)
        report(c, line, col[R_NAME], why);
    if (lens[R_KANA] != 0 &&
        ((why = check_text(F(R_KANA), STORE_NAME_MAX - 1, false)) != NULL ||
         (why = vrs_field_name_stored(F(R_KANA), VRS_KANA)) != NULL))
        report(c, line, col[R_KANA], why);
    if ((why = check_date(F(R_BIRTH), true, &birth)) != NULL)
        report(c, line, col[R_BIRTH], why);
    else if (birth > c->today)
        report(c, line, col[R_BIRTH], "is in the future");
    if ((why = vrs_field_sex(F(R_SEX))) != NULL)
        report(c, line, col[R_SEX], why);
    if (lens[R_POSTCODE] != 0 && (why = vrs_field_postcode(F(R_POSTCODE))) != NULL)
        report(c, line, col[R_POSTCODE], why);
    if ((why = check_text(F(R_ADDRESS), STORE_ADDR_MAX - 1, false)) != NULL)
        report(c, line, col[R_ADDRESS], why);
    if ((why = check_text(F(R_KATAGAKI), STORE_NAME_MAX - 1, false)) != NULL)
        report(c, line, col[R_KATAGAKI], why);
    if (lens[R_HOUSEHOLD] != 0 && (why = vrs_field_code(F(R_HOUSEHOLD))) != NULL)
        report(c, line, col[R_HOUSEHOLD], why);
    if ((why = check_text(F(R_RELATIONSHIP), 63, false)) != NULL)
        report(c, line, col[R_RELATIONSHIP], why);
    if ((why = check_date(F(R_BECAME), false, &became)) != NULL)
        report(c, line, col[R_BECAME], why);
    else if (became != 0 && birth != 0 && became < birth)
        report(c, line, col[R_BECAME], "is before birth_date");
    if ((why = check_date(F(R_CEASED), false, &ceased)) != NULL)
        report(c, line, col[R_CEASED], why);
    else if (ceased != 0 && became != 0 && ceased < became)
        report(c, line, col[R_CEASED], "is before became_date");
    if (lens[R_MOVE_TYPE] != 0) {
        move_known = (why = vrs_field_movement_type(fields[R_MOVE_TYPE])) == NULL;
        if (!move_known)
            report(c, line, col[R_MOVE_TYPE], why);
    }
    if ((why = check_date(F(R_MOVE_DATE), false, &moved)) != NULL)
        report(c, line, col[R_MOVE_DATE], why);
    else if ((lens[R_MOVE_TYPE] == 0) != (lens[R_MOVE_DATE] == 0))
        report(c, line, col[R_MOVE_DATE], lens[R_MOVE_TYPE] == 0
               ? "is given without a movement_type"
               : "is empty, but a movement_type is given");
    if (move_known && (strcmp(fields[R_MOVE_TYPE], MOVE_OUT) == 0 ||
                       strcmp(fields[R_MOVE_TYPE], MOVE_DEATH) == 0) &&
        lens[R_MOVE_DATE] != 0 &&
        (lens[R_CEASED] != lens[R_MOVE_DATE] ||
         memcmp(fields[R_CEASED], fields[R_MOVE_DATE], lens[R_CEASED]) != 0))
        report(c, line, col[R_CEASED], "must equal movement_date for 転出 and 死亡");
    if ((why = check_text(F(R_PREV), STORE_ADDR_MAX - 1, false)) != NULL)
        report(c, line, col[R_PREV], why);
    if ((why = check_text(F(R_NEXT), STORE_ADDR_MAX - 1, false)) != NULL)
        report(c, line, col[R_NEXT], why);
    if ((why = check_text(F(R_ALIAS), STORE_NAME_MAX - 1, false)) != NULL)
        report(c, line, col[R_ALIAS], why);

    /* Uniqueness: in the file, then in the tenant. */
    if (ok_addr) {
        first = hset_add(&c->dup, keyed(c, 'A', F(R_ADDRESS_NO)), (uint32_t)line);
        if (first < 0) {
            fail_chk(c, "out of memory");
            return;
        }
        if (first > 0) {
            char msg[80];
            snprintf(msg, sizeof(msg), "the same address number is on line %lld",
                     (long long)first);
            report(c, line, col[R_ADDRESS_NO], msg);
        } else if (c->lk != NULL && c->lk->resident_id != NULL) {
            int64_t id;
            int rc = c->lk->resident_id(c->lk->arg, fields[R_ADDRESS_NO], &id);
            if (rc < 0)
                fail_chk(c, "the store could not be asked about address numbers");
            else if (rc > 0)
                report(c, line, col[R_ADDRESS_NO], "a resident with this address "
                       "number already exists in the tenant");
        }
    }
    if (ok_mn) {
        first = hset_add(&c->dup, keyed(c, 'M', F(R_MYNUMBER)), (uint32_t)line);
        if (first < 0) {
            fail_chk(c, "out of memory");
            return;
        }
        if (first > 0) {
            char msg[80];
            snprintf(msg, sizeof(msg), "the same individual number is on line %lld",
                     (long long)first);
            report(c, line, col[R_MYNUMBER], msg);
        } else if (c->lk != NULL && c->lk->mynumber_taken != NULL) {
            int rc = c->lk->mynumber_taken(c->lk->arg, fields[R_MYNUMBER]);
            if (rc < 0)
                fail_chk(c, "the store could not be asked about individual numbers");
            else if (rc > 0)
                report(c, line, col[R_MYNUMBER], "a resident with this individual "
                       "number already exists in the tenant");
        }
    }
}

/* The resident an address number names: 1 with *id, 0 reported, -1 fatal. */
static int
known_resident(struct chk *c, uint64_t line, const char *addr, size_t n,
               int64_t *id)
{
    const char *why = vrs_field_code(addr, n);
    int rc;

    if (why != NULL) {
        report(c, line, "address_no", n == 0 ? "is empty" : why);
        return 0;
    }
    if (c->lk == NULL || c->lk->resident_id == NULL) {
        /* No store: a stand-in key, so that rows can still be grouped. */
        *id = (int64_t)(keyed(c, 'A', addr, n) >> 1);
        return 1;
    }
    rc = c->lk->resident_id(c->lk->arg, addr, id);
    if (rc < 0) {
        fail_chk(c, "the store could not be asked about address numbers");
        return -1;
    }
    if (rc == 0)
        report(c, line, "address_no", "no resident with this address number "
               "exists in the tenant (import the residents first)");
    return rc;
}

static void
check_voucher(struct chk *c, uint64_t line, const char *const *fields,
              const size_t *lens)
{
    const char *const *col = voucher_cols;
    enum vrs_voucher_status vs;
    const char *why;
    int64_t rid = 0, first;
    int32_t issued;

    (void)known_resident(c, line, F(V_ADDRESS_NO), &rid);
    vs = vrs_voucher_number_check(fields[V_VOUCHER_NO]);
    if (vs != VRS_VOUCHER_OK)
        report(c, line, col[V_VOUCHER_NO], vrs_voucher_message(vs, true, VRS_LANG_EN));
    /* R2.4: the API's rules too (vrs/fields.h) */
    if ((why = vrs_field_ticket_type(F(V_TICKET))) != NULL)
        report(c, line, col[V_TICKET], why);
    if ((why = vrs_field_date_past(F(V_ISSUED), c->today, &issued)) != NULL)
        report(c, line, col[V_ISSUED], why);
    if (vs != VRS_VOUCHER_OK || c->stop)
        return;
    first = hset_add(&c->dup, keyed(c, 'V', F(V_VOUCHER_NO)), (uint32_t)line);
    if (first < 0) {
        fail_chk(c, "out of memory");
    } else if (first > 0) {
        char msg[80];
        snprintf(msg, sizeof(msg), "the same voucher number is on line %lld",
                 (long long)first);
        report(c, line, col[V_VOUCHER_NO], msg);
    } else if (c->lk != NULL && c->lk->voucher != NULL) {
        int64_t owner;
        int rc = c->lk->voucher(c->lk->arg, fields[V_VOUCHER_NO], &owner);
        if (rc < 0)
            fail_chk(c, "the store could not be asked about voucher numbers");
        else if (rc > 0)
            report(c, line, col[V_VOUCHER_NO], "this voucher number is already "
                   "issued in the tenant");
    }
}

static int
catalogue_index(const struct chk *c, const struct vrs_vaccine *v)
{
    for (size_t i = 0; i < c->ncat; i++)
        if (vrs_catalogue_at(c->o->catalogue, i) == v)
            return (int)i;
    return -1;
}

static int
keep_row(struct chk *c, const struct vrow *r)
{
    if (c->nrows == c->caprows) {
        size_t cap = c->caprows ? c->caprows + c->caprows / 2 : 4096;
        struct vrow *p;

        if (cap > SIZE_MAX / sizeof(*p) ||
            (p = realloc(c->rows, cap * sizeof(*p))) == NULL)
            return -1;
        c->rows = p;
        c->caprows = cap;
    }
    c->rows[c->nrows++] = *r;
    return 0;
}

/* The voucher named on a vaccination row must be one of the tenant's,
 * issued to the same resident. */
static void
check_vax_voucher(struct chk *c, uint64_t line, const char *no, size_t n,
                  bool resident_known, int64_t rid)
{
    enum vrs_voucher_status vs;
    int64_t owner = 0;
    int rc;

    if (n == 0)
        return;
    vs = vrs_voucher_number_check(no);
    if (vs != VRS_VOUCHER_OK) {
        report(c, line, "voucher_no", vrs_voucher_message(vs, true, VRS_LANG_EN));
        return;
    }
    if (!resident_known || c->lk == NULL || c->lk->voucher == NULL ||
        c->lk->resident_id == NULL)
        return;
    rc = c->lk->voucher(c->lk->arg, no, &owner);
    if (rc < 0)
        fail_chk(c, "the store could not be asked about voucher numbers");
    else if (rc == 0)
        report(c, line, "voucher_no", "no voucher with this number was issued "
               "in the tenant");
    else if (owner != rid)
        report(c, line, "voucher_no", "this voucher was issued to another resident");
}

static void
check_vaccination(struct chk *c, uint64_t line, const char *const *fields,
                  const size_t *lens)
{
    const char *const *col = vaccination_cols;
    const struct vrs_vaccine *v = NULL;
    const char *why;
    struct vrow row;
    unsigned dose = 0;
    int32_t date = 0;
    int64_t rid = 0;
    int known, idx = -1;
    bool ok;

    known = known_resident(c, line, F(X_ADDRESS_NO), &rid);
    if (known < 0)
        return;
    ok = known > 0;
    if (lens[X_VACCINE] == 0 || lens[X_VACCINE] > VRS_CODE_MAX ||
        (v = vrs_catalogue_lookup(c->o->catalogue, fields[X_VACCINE])) == NULL ||
        (idx = catalogue_index(c, v)) < 0) {
        report(c, line, col[X_VACCINE], lens[X_VACCINE] == 0 ? "is empty"
               : "is not a vaccine code of the catalogue");
        ok = false;
    }
    /* R2.3: the written form, then the rules' range, as the API */
    if ((why = vrs_field_dose(F(X_DOSE), &dose)) != NULL ||
        (why = vrs_field_dose_range(v, dose)) != NULL) {
        report(c, line, col[X_DOSE], why);
        ok = false;
    }
    if ((why = check_date(F(X_DATE), true, &date)) != NULL) {
        report(c, line, col[X_DATE], why);
        ok = false;
    } else if (date > c->today) {
        report(c, line, col[X_DATE], "is in the future");
        ok = false;
    }
    if ((why = vrs_field_lot(F(X_LOT))) != NULL)
        report(c, line, col[X_LOT], why);
    check_vax_voucher(c, line, F(X_VOUCHER_NO), known > 0, rid);
    /* optional, as in the API: a site's tablet names none (vrs/fields.h) */
    if ((why = check_text(F(X_SITE), STORE_SITE_MAX - 1, false)) != NULL)
        report(c, line, col[X_SITE], why);
    if ((why = check_text(F(X_CLINIC), STORE_PERSON_MAX - 1, false)) != NULL)
        report(c, line, col[X_CLINIC], why);
    if ((why = check_text(F(X_DOCTOR), STORE_PERSON_MAX - 1, false)) != NULL)
        report(c, line, col[X_DOCTOR], why);
    if (!ok || c->stop)
        return;
    /* Kept for the duplicates within the file and the rules, which need
     * every row of a resident (finish_vaccinations). */
    memset(&row, 0, sizeof(row));
    row.resident = rid;
    row.line = (uint32_t)line;
    row.date = date;
    row.vaccine = (uint16_t)idx;
    row.series = c->series[idx];
    row.dose = (uint16_t)dose;
    if (keep_row(c, &row) != 0)
        fail_chk(c, "out of memory");
}

/* ---- vaccinations: duplicates in the file and the rules ------------------ */

static int
vrow_cmp(const void *a, const void *b)
{
    const struct vrow *x = a, *y = b;

    if (x->resident != y->resident)
        return x->resident < y->resident ? -1 : 1;
    if (x->series != y->series)
        return x->series < y->series ? -1 : 1;
    if (x->dose != y->dose)
        return x->dose < y->dose ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

static int
late_cmp(const void *a, const void *b)
{
    const struct late *x = a, *y = b;

    return x->line < y->line ? -1 : x->line > y->line;
}

static void
add_late(struct chk *c, uint32_t line, uint32_t first, const char *column,
         const char *reason)
{
    if (c->nlate == c->caplate) {
        size_t cap = c->caplate ? c->caplate * 2 : 256;
        struct late *p;

        if (cap > SIZE_MAX / sizeof(*p) ||
            (p = realloc(c->late, cap * sizeof(*p))) == NULL) {
            fail_chk(c, "out of memory");
            return;
        }
        c->late = p;
        c->caplate = cap;
    }
    c->late[c->nlate++] = (struct late){ line, first, column, reason };
}

static const char *
rule_column(const char *field)
{
    static const char *const cols[] = { "date", "vaccine", "dose" };

    for (size_t i = 0; field != NULL && i < sizeof(cols) / sizeof(*cols); i++)
        if (strcmp(field, cols[i]) == 0)
            return cols[i];
    return "address_no";        /* the resident's own record is the obstacle */
}

/* Scratch space of one resident's rules check, allocated once. */
struct rules_buf {
    struct import_dose *stored;     /* IMPORT_DOSES_MAX */
    struct vrs_dose    *hist;       /* 2 * IMPORT_DOSES_MAX */
    char              (*dates)[11]; /* IMPORT_DOSES_MAX */
};

static struct vrs_dose
file_dose(const struct chk *c, const struct rules_buf *b, const struct vrow *g,
          size_t k)
{
    return (struct vrs_dose){ vrs_catalogue_at(c->o->catalogue, g[k].vaccine)->code,
                              g[k].dose & ~VROW_DUP, b->dates[k] };
}

/* The rules for the file rows g[0..n) (n <= IMPORT_DOSES_MAX) of one
 * resident the store knows: each row against everything else recorded or
 * in the file for that resident, so the order of rows does not matter. */
static void
rules_for(struct chk *c, struct rules_buf *b, const struct vrow *g, size_t n)
{
    struct import_facts facts;
    struct vrs_resident_facts rf;
    size_t ns = 0;
    int rc;

    memset(&facts, 0, sizeof(facts));
    rc = c->lk->resident_facts(c->lk->arg, g[0].resident, &facts);
    if (rc <= 0) {
        if (rc < 0)
            fail_chk(c, "the store could not be asked about a resident");
        return;
    }
    if (c->lk->doses(c->lk->arg, g[0].resident, b->stored, IMPORT_DOSES_MAX, &ns) < 0 ||
        ns > IMPORT_DOSES_MAX) {
        fail_chk(c, "the store could not list a resident's vaccinations");
        sodium_memzero(&facts, sizeof(facts));
        return;
    }
    for (size_t i = 0; i < ns; i++)
        b->hist[i] = (struct vrs_dose){ b->stored[i].vaccine, b->stored[i].dose,
                                        b->stored[i].date };
    for (size_t i = 0; i < n; i++)
        vrs_date_format(g[i].date, b->dates[i]);
    rf = (struct vrs_resident_facts){ facts.birth_date, facts.deceased_date,
                                      facts.moved_out_date };
    for (size_t i = 0; i < n && !c->failed; i++) {
        struct vrs_dose mine = file_dose(c, b, g, i);
        struct vrs_verdict vd;
        size_t m = ns;

        if (g[i].dose & VROW_DUP)
            continue;           /* reported as a repeat, not compared */
        for (size_t k = 0; k < n; k++)
            if (k != i && !(g[k].dose & VROW_DUP))
                b->hist[m++] = file_dose(c, b, g, k);
        if (vrs_rules_check(c->o->catalogue, &mine, &rf, b->hist, m, c->o->today,
                            &vd) != VRS_RULE_OK)
            add_late(c, g[i].line, 0, rule_column(vd.field),
                     vrs_rule_message(vd.rule, VRS_LANG_EN));
    }
    sodium_memzero(&facts, sizeof(facts));
    sodium_memzero(b->stored, ns * sizeof(*b->stored));
}

/* Repeats of (resident, series, dose) within the file, then the rules,
 * then every such problem in line order. */
static void
finish_vaccinations(struct chk *c)
{
    struct rules_buf b = { 0 };
    bool rules = c->lk != NULL && c->lk->resident_id != NULL &&
                 c->lk->resident_facts != NULL && c->lk->doses != NULL;

    if (c->nrows == 0 || c->stop)
        return;
    qsort(c->rows, c->nrows, sizeof(*c->rows), vrow_cmp);
    if (rules && ((b.stored = calloc(IMPORT_DOSES_MAX, sizeof(*b.stored))) == NULL ||
                  (b.hist = calloc(2 * IMPORT_DOSES_MAX, sizeof(*b.hist))) == NULL ||
                  (b.dates = calloc(IMPORT_DOSES_MAX, sizeof(*b.dates))) == NULL)) {
        fail_chk(c, "out of memory");
        goto out;
    }
    for (size_t i = 0, j; i < c->nrows && !c->failed; i = j) {
        struct vrow *g = &c->rows[i];

        for (j = i + 1; j < c->nrows && c->rows[j].resident == g->resident; j++) {
            struct vrow *r = &c->rows[j], *p = &c->rows[j - 1];
            if (r->series == p->series && (r->dose & ~VROW_DUP) == (p->dose & ~VROW_DUP)) {
                /* The earliest line of the run stays; it is never a DUP. */
                uint32_t first = (p->dose & VROW_DUP) ? 0 : p->line;
                for (size_t k = j - 1; first == 0; k--)
                    if (!(c->rows[k].dose & VROW_DUP))
                        first = c->rows[k].line;
                r->dose |= VROW_DUP;
                add_late(c, r->line, first, "dose", NULL);
            }
        }
        if (j - i > IMPORT_DOSES_MAX) {
            for (size_t k = i; k < j; k++)
                add_late(c, c->rows[k].line, 0, "address_no",
                         "the file holds more than 512 vaccinations of this resident");
            continue;
        }
        if (rules)
            rules_for(c, &b, g, j - i);
    }
    if (c->failed)
        goto out;
    if (c->nlate > 1)
        qsort(c->late, c->nlate, sizeof(*c->late), late_cmp);
    for (size_t i = 0; i < c->nlate && !c->stop; i++) {
        const struct late *l = &c->late[i];

        if (l->reason == NULL) {
            char msg[96];
            snprintf(msg, sizeof(msg), "the same dose of this vaccine's series is "
                     "on line %u", l->first);
            report(c, l->line, l->column, msg);
        } else {
            report(c, l->line, l->column, l->reason);
        }
    }
out:
    free(b.stored);
    free(b.hist);
    free(b.dates);
}

/* ---- pass 1: the reader's callbacks -------------------------------------- */

static const char *
column_of(const struct chk *c, size_t field)
{
    return field >= 1 && field <= c->fmt->ncols ? c->fmt->cols[field - 1] : NULL;
}

static int
on_problem(void *arg, uint64_t line, size_t field, enum csvin_problem p)
{
    struct chk *c = arg;

    if (p == CSVIN_P_UTF8_BOM_IN_CP932) {
        report(c, line, NULL, csvin_problem_text(p));
        c->stop = true;
        return 1;
    }
    if (!c->header_seen) {
        /* The header itself is unreadable: nothing after it can be trusted. */
        report(c, line, NULL, "the header row cannot be read; the file must start "
               "with the header of the format");
        c->stop = true;
        return 1;
    }
    report(c, line, column_of(c, field), csvin_problem_text(p));
    return c->stop ? 1 : 0;
}

static void
check_header(struct chk *c, uint64_t line, const char *const *fields,
             const size_t *lens, size_t n)
{
    char msg[512];

    c->header_seen = true;
    if (n == c->fmt->ncols) {
        size_t i = 0;

        while (i < n && strcmp(fields[i], c->fmt->cols[i]) == 0)
            i++;
        if (i == n)
            return;
    }
    (void)lens;
    snprintf(msg, sizeof(msg), "the header must be exactly %s (the %s format)",
             c->fmt->header, c->fmt->name);
    report(c, line, NULL, msg);
    c->stop = true;         /* columns cannot be trusted: check nothing more */
}

static int
on_record(void *arg, uint64_t line, const char *const *fields, const size_t *lens,
          size_t n)
{
    struct chk *c = arg;

    if (c->stop)
        return 1;
    if (!c->header_seen) {
        check_header(c, line, fields, lens, n);
        return c->stop ? 1 : 0;
    }
    c->res->rows++;
    if (line > UINT32_MAX) {
        fail_chk(c, "the file has more lines than an import can take");
        return 1;
    }
    if (n != c->fmt->ncols) {
        char msg[80];
        snprintf(msg, sizeof(msg), "has %zu fields; the %s format has %zu", n,
                 c->fmt->name, c->fmt->ncols);
        report(c, line, NULL, msg);
        return c->stop ? 1 : 0;
    }
    switch (c->o->kind) {
    case IMPORT_RESIDENTS:
        check_resident(c, line, fields, lens);
        break;
    case IMPORT_VOUCHERS:
        check_voucher(c, line, fields, lens);
        break;
    case IMPORT_VACCINATIONS:
        check_vaccination(c, line, fields, lens);
        break;
    }
    return c->stop ? 1 : 0;
}

static void
progress(struct chk *c)
{
    struct import_progress p = { c->phase, c->bytes, c->total, c->res->rows };

    if (c->o->progress != NULL)
        c->o->progress(c->o->progress_arg, &p);
}

static void
on_bytes(void *arg, const uint8_t *buf, size_t n)
{
    struct chk *c = arg;

    crypto_hash_sha256_update(&c->sha, buf, n);
    c->bytes += n;
    progress(c);
}

/* ---- pass 1: set-up and the two entry points ----------------------------- */

static int
opts_ok(const struct import_opts *o, struct import_result *res)
{
    int32_t d;

    if (res == NULL)
        return -1;
    memset(res, 0, sizeof(*res));
    res->outcome = IMPORT_FAILED;
    if (o == NULL || !kind_ok(o->kind) || o->sink == NULL ||
        (o->encoding != CSVIN_UTF8 && o->encoding != CSVIN_CP932) ||
        o->today == NULL || vrs_date_parse(o->today, &d) != 0 ||
        (o->kind == IMPORT_VACCINATIONS && o->catalogue == NULL)) {
        snprintf(res->error, sizeof(res->error), "the import was called with "
                 "incomplete options");
        return -1;
    }
    if (sodium_init() < 0) {
        snprintf(res->error, sizeof(res->error), "libsodium cannot be initialised");
        return -1;
    }
    return 0;
}

static int
chk_init(struct chk *c, const struct import_opts *o, const struct import_lookup *lk,
         struct import_result *res)
{
    memset(c, 0, sizeof(*c));
    c->o = o;
    c->lk = lk;
    c->res = res;
    c->fmt = &formats[o->kind];
    c->phase = IMPORT_PHASE_CHECK;
    if (vrs_date_parse(o->today, &c->today) != 0)
        return -1;                  /* checked by opts_ok */
    randombytes_buf(c->key, sizeof(c->key));
    crypto_hash_sha256_init(&c->sha);
    if (o->kind == IMPORT_VACCINATIONS) {
        c->ncat = vrs_catalogue_count(o->catalogue);
        if (c->ncat > UINT16_MAX ||
            (c->series = calloc(c->ncat ? c->ncat : 1, sizeof(*c->series))) == NULL)
            return -1;
        /* Series id: the index of the first entry of the same series. */
        for (size_t i = 0; i < c->ncat; i++) {
            const struct vrs_vaccine *v = vrs_catalogue_at(o->catalogue, i);
            c->series[i] = (uint16_t)i;
            for (size_t k = 0; k < i; k++)
                if (strcmp(vrs_catalogue_at(o->catalogue, k)->series, v->series) == 0) {
                    c->series[i] = (uint16_t)k;
                    break;
                }
        }
    }
    return 0;
}

static void
chk_free(struct chk *c)
{
    hset_free(&c->dup);
    free(c->series);
    free(c->rows);
    free(c->late);
    sodium_memzero(c->key, sizeof(c->key));
}

static int
chk_finish(struct chk *c, enum csvin_status st)
{
    struct import_result *res = c->res;

    crypto_hash_sha256_final(&c->sha, res->sha256);
    if (st == CSVIN_ERR_READ)
        fail_chk(c, "the file cannot be read: %s", strerror(errno));
    else if (st == CSVIN_ERR_NOMEM)
        fail_chk(c, "out of memory");
    else if (st == CSVIN_ERR_ARG)
        fail_chk(c, "the file cannot be read as %s (iconv)",
                 c->o->encoding == CSVIN_CP932 ? "CP932" : "UTF-8");
    if (!c->failed && !c->stop) {
        if (!c->header_seen)
            report(c, 1, NULL, "the file is empty: it must start with the header "
                   "of the format");
        else if (res->rows == 0 && res->problems == 0)
            report(c, 1, NULL, "the file has a header but no data rows");
        else if (c->o->kind == IMPORT_VACCINATIONS)
            finish_vaccinations(c);
    }
    chk_free(c);
    if (c->failed) {
        res->outcome = IMPORT_FAILED;
        return -1;
    }
    res->outcome = res->problems > 0 ? IMPORT_REFUSED : IMPORT_CHECKED;
    return 0;
}

static const struct csvin_opts *
reader_opts(const struct import_opts *o, struct csvin_opts *ro)
{
    memset(ro, 0, sizeof(*ro));
    ro->encoding = o->encoding;
    ro->field_max = IMPORT_FIELD_MAX;
    ro->fields_max = IMPORT_FIELDS_MAX;
    return ro;
}

/* A descriptor as an import source (arg: the int). */
static ssize_t
fd_read(void *arg, void *buf, size_t n)
{
    const int *fd = arg;
    ssize_t got;

    do
        got = read(*fd, buf, n);
    while (got < 0 && errno == EINTR);
    return got;
}

static int
fd_rewind(void *arg)
{
    const int *fd = arg;

    return lseek(*fd, 0, SEEK_SET) == 0 ? 0 : -1;
}

/* Pass 1 over a source from where it stands. */
static int
check_source(const struct import_source *src, const struct import_opts *o,
             const struct import_lookup *lk, struct import_result *res)
{
    struct csvin_callbacks cb;
    struct csvin_opts ro;
    struct chk c;
    enum csvin_status st;

    if (opts_ok(o, res) != 0)
        return -1;
    if (chk_init(&c, o, lk, res) != 0) {
        chk_free(&c);
        snprintf(res->error, sizeof(res->error), "out of memory");
        return -1;
    }
    c.total = src->size;
    cb = (struct csvin_callbacks){ on_record, on_problem, &c };
    st = csvin_read_cb(src->read, src->arg, 0, reader_opts(o, &ro), &cb, on_bytes, &c);
    return chk_finish(&c, st);
}

int
import_check_fd(int fd, const struct import_opts *o, const struct import_lookup *lk,
                struct import_result *res)
{
    struct import_source src = { fd_read, fd_rewind, 0, &fd };
    struct stat sb;

    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode))
        src.size = (uint64_t)sb.st_size;
    return check_source(&src, o, lk, res);
}

int
import_check_mem(const void *buf, size_t len, const struct import_opts *o,
                 const struct import_lookup *lk, struct import_result *res)
{
    struct csvin_callbacks cb;
    struct csvin_opts ro;
    struct chk c;
    enum csvin_status st;

    if (opts_ok(o, res) != 0)
        return -1;
    if (chk_init(&c, o, lk, res) != 0) {
        chk_free(&c);
        snprintf(res->error, sizeof(res->error), "out of memory");
        return -1;
    }
    c.total = len;
    if (len > 0)
        on_bytes(&c, buf, len);
    cb = (struct csvin_callbacks){ on_record, on_problem, &c };
    st = csvin_read_mem(buf, len, 0, reader_opts(o, &ro), &cb);
    return chk_finish(&c, st);
}

/* ---- the tenant's data, from the store ----------------------------------- */

static int
st_resident_id(void *arg, const char *address_no, int64_t *id)
{
    enum store_status rc = store_resident_id(arg, address_no, id);

    return rc == STORE_OK ? 1 : rc == STORE_NOTFOUND ? 0 : -1;
}

/* 死亡 is death; any other end of residence (転出, 職権消除) is a move out
 * for the rules (R2.5). */
static int
st_facts(void *arg, int64_t id, struct import_facts *out)
{
    struct resident *r = calloc(1, sizeof(*r));
    enum store_status rc;
    int ret = -1;

    if (r == NULL)
        return -1;
    rc = store_resident_get(arg, id, r);
    if (rc == STORE_NOTFOUND)
        ret = 0;
    else if (rc == STORE_OK &&
             util_strcpy(out->birth_date, sizeof(out->birth_date), r->birth_date) == 0) {
        out->deceased_date[0] = out->moved_out_date[0] = '\0';
        if (r->ceased_date[0] != '\0')
            snprintf(strcmp(r->movement_type, MOVE_DEATH) == 0 ? out->deceased_date
                                                               : out->moved_out_date,
                     sizeof(out->deceased_date), "%.10s", r->ceased_date);
        ret = 1;
    }
    store_resident_wipe(r);
    free(r);
    return ret;
}

/* Recorded doses not voided.  A first look at 32 rows covers nearly
 * everyone; more are read only for those who have more. */
static int
st_doses(void *arg, int64_t id, struct import_dose *out, size_t max, size_t *n)
{
    size_t want = 32, got = 0;
    struct vaccination *v = NULL;
    int ret = -1;

    *n = 0;
    for (;;) {
        free(v);
        if ((v = calloc(want + 1, sizeof(*v))) == NULL)
            return -1;
        if (store_vaccinations_of(arg, id, v, want + 1, &got) != STORE_OK)
            goto out;
        if (got <= want || want >= max)
            break;
        util_wipe(v, (want + 1) * sizeof(*v));
        want = max;
    }
    ret = 0;
    for (size_t i = 0; i < got && ret == 0; i++) {
        if (v[i].voided)
            continue;
        if (*n == max) {
            ret = -1;                   /* more than the rules check takes */
            break;
        }
        snprintf(out[*n].vaccine, sizeof(out[*n].vaccine), "%s", v[i].vaccine);
        out[*n].dose = (unsigned)v[i].dose;
        snprintf(out[*n].date, sizeof(out[*n].date), "%s", v[i].date);
        (*n)++;
    }
out:
    util_wipe(v, (want + 1) * sizeof(*v));
    free(v);
    return ret;
}

static int
st_mynumber(void *arg, const char *mynumber)
{
    int64_t ids[1];
    size_t n = 0;

    if (store_resident_find_mynumber(arg, mynumber, ids, 1, &n) != STORE_OK)
        return -1;
    return n > 0;
}

static int
st_voucher(void *arg, const char *voucher_no, int64_t *resident_id)
{
    struct voucher v;
    enum store_status rc = store_voucher_get(arg, voucher_no, &v);

    if (rc == STORE_NOTFOUND)
        return 0;
    if (rc != STORE_OK)
        return -1;
    *resident_id = v.resident_id;
    return 1;
}

void
import_store_lookup(struct store_tenant *ctx, struct import_lookup *out)
{
    *out = (struct import_lookup){ st_resident_id, st_facts, st_doses, st_mynumber,
                                   st_voucher, ctx };
}

/* ---- pass 2: writing ---------------------------------------------------- */

struct wr {
    struct store_tenant      *ctx;
    const struct import_opts *o;
    struct import_result     *res;
    const struct format      *fmt;
    bool                      header_seen;
    bool                      failed;
    size_t                    batch, n;
    struct resident          *residents;    /* batch rows, wiped after use */
    struct vaccination       *vaccinations;
    int64_t                  *ids;
    uint64_t                  rows, last_line;
    crypto_hash_sha256_state  sha;
    uint64_t                  bytes, total;
};

static void wr_fail(struct wr *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
wr_fail(struct wr *w, const char *fmt, ...)
{
    va_list ap;

    if (w->failed)
        return;
    w->failed = true;
    va_start(ap, fmt);
    vsnprintf(w->res->error, sizeof(w->res->error), fmt, ap);
    va_end(ap);
}

/* A store refusal after a clean check: something changed in between (a
 * concurrent import, say).  Named by line, never by value. */
static void
wr_store_fail(struct wr *w, uint64_t line, enum store_status rc)
{
    if (rc == STORE_EXISTS)
        wr_fail(w, "line %llu conflicts with a row written since the check (%s); "
                "nothing was imported", (unsigned long long)line, store_strerror(rc));
    else
        wr_fail(w, "the store refused the rows up to line %llu: %s; nothing was "
                "imported", (unsigned long long)line, store_strerror(rc));
}

static void
copy(char *dst, size_t size, const char *src, bool *ok)
{
    if (util_strcpy(dst, size, src) != 0)
        *ok = false;
}

static void
wr_flush(struct wr *w, uint64_t line)
{
    enum store_status rc = STORE_OK;

    if (w->n == 0 || w->failed)
        return;
    if (w->o->kind == IMPORT_RESIDENTS) {
        rc = store_resident_insert_batch(w->ctx, w->residents, w->n, w->ids);
        util_wipe(w->residents, w->n * sizeof(*w->residents));
    } else if (w->o->kind == IMPORT_VACCINATIONS) {
        rc = store_vaccination_insert_batch(w->ctx, w->vaccinations, w->n, w->ids);
        util_wipe(w->vaccinations, w->n * sizeof(*w->vaccinations));
    }
    if (rc != STORE_OK)
        wr_store_fail(w, line, rc);
    w->n = 0;
}

static void
wr_resident(struct wr *w, uint64_t line, const char *const *f)
{
    struct resident *r = &w->residents[w->n];
    bool ok = true;

    memset(r, 0, sizeof(*r));
    copy(r->address_no, sizeof(r->address_no), f[R_ADDRESS_NO], &ok);
    copy(r->mynumber, sizeof(r->mynumber), f[R_MYNUMBER], &ok);
    copy(r->name, sizeof(r->name), f[R_NAME], &ok);
    copy(r->kana, sizeof(r->kana), f[R_KANA], &ok);
    copy(r->birth_date, sizeof(r->birth_date), f[R_BIRTH], &ok);
    copy(r->sex, sizeof(r->sex), f[R_SEX], &ok);
    copy(r->postcode, sizeof(r->postcode), f[R_POSTCODE], &ok);
    copy(r->address, sizeof(r->address), f[R_ADDRESS], &ok);
    copy(r->katagaki, sizeof(r->katagaki), f[R_KATAGAKI], &ok);
    copy(r->household_no, sizeof(r->household_no), f[R_HOUSEHOLD], &ok);
    copy(r->relationship, sizeof(r->relationship), f[R_RELATIONSHIP], &ok);
    copy(r->became_date, sizeof(r->became_date), f[R_BECAME], &ok);
    copy(r->ceased_date, sizeof(r->ceased_date), f[R_CEASED], &ok);
    copy(r->movement_type, sizeof(r->movement_type), f[R_MOVE_TYPE], &ok);
    copy(r->movement_date, sizeof(r->movement_date), f[R_MOVE_DATE], &ok);
    copy(r->prev_address, sizeof(r->prev_address), f[R_PREV], &ok);
    copy(r->next_address, sizeof(r->next_address), f[R_NEXT], &ok);
    copy(r->alias, sizeof(r->alias), f[R_ALIAS], &ok);
    if (!ok) {
        wr_fail(w, "line %llu no longer fits the store (was the file changed?)",
                (unsigned long long)line);
        return;
    }
    if (++w->n == w->batch)
        wr_flush(w, line);
}

static int64_t
wr_resident_id(struct wr *w, uint64_t line, const char *address_no)
{
    int64_t id = 0;
    enum store_status rc = store_resident_id(w->ctx, address_no, &id);

    if (rc != STORE_OK) {
        wr_store_fail(w, line, rc);
        return 0;
    }
    return id;
}

static void
wr_voucher(struct wr *w, uint64_t line, const char *const *f)
{
    struct voucher v;
    enum store_status rc;
    bool ok = true;

    memset(&v, 0, sizeof(v));
    if ((v.resident_id = wr_resident_id(w, line, f[V_ADDRESS_NO])) == 0)
        return;
    copy(v.voucher_no, sizeof(v.voucher_no), f[V_VOUCHER_NO], &ok);
    copy(v.issued_date, sizeof(v.issued_date), f[V_ISSUED], &ok);
    v.ticket_type = f[V_TICKET][0] - '0';
    if (!ok) {
        wr_fail(w, "line %llu no longer fits the store (was the file changed?)",
                (unsigned long long)line);
        return;
    }
    /* No batch call for vouchers: one insert each, in the same transaction. */
    if ((rc = store_voucher_issue(w->ctx, &v)) != STORE_OK)
        wr_store_fail(w, line, rc);
}

static void
wr_vaccination(struct wr *w, uint64_t line, const char *const *f)
{
    struct vaccination *v = &w->vaccinations[w->n];
    uint64_t dose = 0;
    bool ok = true;

    memset(v, 0, sizeof(*v));
    if ((v->resident_id = wr_resident_id(w, line, f[X_ADDRESS_NO])) == 0)
        return;
    copy(v->vaccine, sizeof(v->vaccine), f[X_VACCINE], &ok);
    copy(v->date, sizeof(v->date), f[X_DATE], &ok);
    copy(v->voucher_no, sizeof(v->voucher_no), f[X_VOUCHER_NO], &ok);
    copy(v->lot, sizeof(v->lot), f[X_LOT], &ok);
    copy(v->site, sizeof(v->site), f[X_SITE], &ok);
    copy(v->clinic, sizeof(v->clinic), f[X_CLINIC], &ok);
    copy(v->doctor, sizeof(v->doctor), f[X_DOCTOR], &ok);
    copy(v->entered_by, sizeof(v->entered_by), w->o->actor, &ok);
    if (!ok || util_parse_u64(f[X_DOSE], 1, VRS_DOSE_MAX, &dose) != 0) {
        wr_fail(w, "line %llu no longer fits the store (was the file changed?)",
                (unsigned long long)line);
        return;
    }
    v->dose = (int)dose;
    if (++w->n == w->batch)
        wr_flush(w, line);
}

static int
wr_record(void *arg, uint64_t line, const char *const *fields, const size_t *lens,
          size_t n)
{
    struct wr *w = arg;

    (void)lens;
    if (w->failed)
        return 1;
    if (!w->header_seen) {
        w->header_seen = true;
        return 0;
    }
    if (n != w->fmt->ncols) {
        wr_fail(w, "line %llu changed since the check (was the file changed?)",
                (unsigned long long)line);
        return 1;
    }
    w->rows++;
    w->last_line = line;
    switch (w->o->kind) {
    case IMPORT_RESIDENTS:
        wr_resident(w, line, fields);
        break;
    case IMPORT_VOUCHERS:
        wr_voucher(w, line, fields);
        break;
    case IMPORT_VACCINATIONS:
        wr_vaccination(w, line, fields);
        break;
    }
    return w->failed ? 1 : 0;
}

static int
wr_problem(void *arg, uint64_t line, size_t field, enum csvin_problem p)
{
    struct wr *w = arg;

    (void)field;
    (void)p;
    wr_fail(w, "line %llu cannot be read any more (was the file changed?)",
            (unsigned long long)line);
    return 1;
}

static void
wr_bytes(void *arg, const uint8_t *buf, size_t n)
{
    struct wr *w = arg;
    struct import_progress p;

    crypto_hash_sha256_update(&w->sha, buf, n);
    w->bytes += n;
    p = (struct import_progress){ IMPORT_PHASE_WRITE, w->bytes, w->total, w->rows };
    if (w->o->progress != NULL)
        w->o->progress(w->o->progress_arg, &p);
}

/* Pass 2 inside the bulk transaction; 0, or -1 with res->error set. */
static int
write_all(struct store_tenant *ctx, const struct import_source *src,
          const struct import_opts *o, struct import_result *res)
{
    struct csvin_callbacks cb;
    struct csvin_opts ro;
    struct wr w;
    uint8_t sha[32];
    enum csvin_status st;

    memset(&w, 0, sizeof(w));
    w.ctx = ctx;
    w.o = o;
    w.res = res;
    w.fmt = &formats[o->kind];
    w.total = src->size;
    w.batch = o->batch == 0 ? IMPORT_BATCH_DEFAULT
            : o->batch > IMPORT_BATCH_MAX ? IMPORT_BATCH_MAX : o->batch;
    crypto_hash_sha256_init(&w.sha);
    if ((w.ids = calloc(w.batch, sizeof(*w.ids))) == NULL ||
        (o->kind == IMPORT_RESIDENTS &&
         (w.residents = calloc(w.batch, sizeof(*w.residents))) == NULL) ||
        (o->kind == IMPORT_VACCINATIONS &&
         (w.vaccinations = calloc(w.batch, sizeof(*w.vaccinations))) == NULL)) {
        wr_fail(&w, "out of memory");
        goto out;
    }
    cb = (struct csvin_callbacks){ wr_record, wr_problem, &w };
    st = csvin_read_cb(src->read, src->arg, 0, reader_opts(o, &ro), &cb, wr_bytes, &w);
    if (st == CSVIN_ERR_READ)
        wr_fail(&w, "the file cannot be read: %s", strerror(errno));
    else if (st != CSVIN_OK && !w.failed)
        wr_fail(&w, "the file cannot be read a second time");
    wr_flush(&w, w.last_line);
    crypto_hash_sha256_final(&w.sha, sha);
    if (!w.failed && sodium_memcmp(sha, res->sha256, sizeof(sha)) != 0)
        wr_fail(&w, "the file changed while it was being imported; nothing was imported");
    if (!w.failed) {
        enum store_status rc = store_import_record(ctx, res->sha256,
                                                   formats[o->kind].name, w.rows,
                                                   o->actor);
        if (rc != STORE_OK)
            wr_fail(&w, "the import could not be recorded: %s; nothing was imported",
                    store_strerror(rc));
    }
    res->rows = w.rows;
out:
    if (w.residents != NULL) {
        util_wipe(w.residents, w.batch * sizeof(*w.residents));
        free(w.residents);
    }
    if (w.vaccinations != NULL) {
        util_wipe(w.vaccinations, w.batch * sizeof(*w.vaccinations));
        free(w.vaccinations);
    }
    free(w.ids);
    return w.failed ? -1 : 0;
}

/* The SHA-256 of the whole file before anything else, so that a file
 * imported before is recognised without checking it against the rows it
 * created itself. */
static int
hash_file(const struct import_source *src, const struct import_opts *o, uint8_t out[32])
{
    crypto_hash_sha256_state sha;
    uint8_t *buf = malloc(CSVIN_CHUNK);
    uint64_t bytes = 0;
    ssize_t got;

    if (buf == NULL)
        return -1;
    crypto_hash_sha256_init(&sha);
    while ((got = src->read(src->arg, buf, CSVIN_CHUNK)) != 0) {
        struct import_progress p;

        if (got > 0 && (size_t)got > CSVIN_CHUNK) {
            got = -1;                   /* a broken source: never overrun */
            errno = EIO;
        }
        if (got < 0) {
            int e = errno;
            util_wipe(buf, CSVIN_CHUNK);
            free(buf);
            errno = e;
            return -1;
        }
        crypto_hash_sha256_update(&sha, buf, (size_t)got);
        bytes += (uint64_t)got;
        p = (struct import_progress){ IMPORT_PHASE_HASH, bytes, src->size, 0 };
        if (o->progress != NULL)
            o->progress(o->progress_arg, &p);
    }
    crypto_hash_sha256_final(&sha, out);
    util_wipe(buf, CSVIN_CHUNK);
    free(buf);
    return 0;
}

static bool
actor_ok(const char *s)
{
    size_t n = s != NULL ? strnlen(s, STORE_ACTOR_MAX) : 0;

    if (n == 0 || n == STORE_ACTOR_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

static int
run_failed(struct import_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
run_failed(struct import_result *res, const char *fmt, ...)
{
    va_list ap;

    res->outcome = IMPORT_FAILED;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, ap);
    va_end(ap);
    return -1;
}

/* Back to the first byte for the next pass; 0, or -1 with res set. */
static int
source_rewind(const struct import_source *src, struct import_result *res, const char *what)
{
    if (src->rewind(src->arg) == 0)
        return 0;
    return run_failed(res, "the file cannot be read%s: %s", what, strerror(errno));
}

int
import_run_source(struct store_tenant *ctx, const struct import_source *src,
                  const struct import_opts *o, struct import_result *res)
{
    struct import_lookup lk;
    uint8_t sha[32];
    enum store_status rc;

    if (opts_ok(o, res) != 0)
        return -1;
    if (ctx == NULL || !actor_ok(o->actor))
        return run_failed(res, "the import needs a tenant and an actor of 1 to 32 "
                          "printable ASCII characters");
    if (src == NULL || src->read == NULL || src->rewind == NULL)
        return run_failed(res, "the import was called without a file to read");
    if (source_rewind(src, res, "") != 0)
        return -1;
    if (hash_file(src, o, sha) != 0)
        return run_failed(res, "the file cannot be read: %s", strerror(errno));
    memcpy(res->sha256, sha, sizeof(sha));
    rc = store_import_seen(ctx, sha, res->when);
    if (rc == STORE_OK) {
        res->outcome = IMPORT_ALREADY;  /* idempotent: nothing changes */
        return 0;
    }
    if (rc != STORE_NOTFOUND)
        return run_failed(res, "the store cannot say whether this file was imported: %s",
                          store_strerror(rc));

    import_store_lookup(ctx, &lk);
    if (source_rewind(src, res, " again") != 0)
        return -1;
    if (check_source(src, o, &lk, res) != 0)
        return -1;
    if (sodium_memcmp(sha, res->sha256, sizeof(sha)) != 0)
        return run_failed(res, "the file changed while it was being checked; nothing "
                          "was imported");
    if (res->outcome == IMPORT_REFUSED)
        return -1;
    if (o->dry_run)
        return 0;                       /* IMPORT_CHECKED */

    if (source_rewind(src, res, " again") != 0)
        return -1;
    if ((rc = store_bulk_begin(ctx)) != STORE_OK)
        return run_failed(res, "the store cannot start the import: %s",
                          store_strerror(rc));
    if (write_all(ctx, src, o, res) != 0) {
        store_bulk_abort(ctx);          /* all or nothing (R2.6) */
        res->outcome = IMPORT_FAILED;
        return -1;
    }
    if (o->before_commit != NULL && o->before_commit(o->commit_arg, res) != 0) {
        store_bulk_abort(ctx);
        return run_failed(res, "the import could not be put on the audit record; nothing "
                          "was imported");
    }
    if ((rc = store_bulk_commit(ctx)) != STORE_OK) {
        store_bulk_abort(ctx);
        /* R9.6: after a failed commit the outcome is unknown; the import
         * is idempotent, so running it again settles it. */
        return run_failed(res, "the import could not be committed (%s): run it again; "
                          "if it was committed after all, it says so", store_strerror(rc));
    }
    res->outcome = IMPORT_IMPORTED;
    return 0;
}

int
import_run(struct store_tenant *ctx, int fd, const struct import_opts *o,
           struct import_result *res)
{
    struct import_source src = { fd_read, fd_rewind, 0, &fd };
    struct stat sb;

    if (opts_ok(o, res) != 0)
        return -1;
    if (ctx == NULL || !actor_ok(o->actor))
        return run_failed(res, "the import needs a tenant and an actor of 1 to 32 "
                          "printable ASCII characters");
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        return run_failed(res, "the file to import must be a regular file");
    src.size = (uint64_t)sb.st_size;
    return import_run_source(ctx, &src, o, res);
}
