/*
 * test_synth.c - the synthetic resident generator, `mamori synth` (R9.4),
 * against the import formats of R2.1 (residents), R2.3 (vaccinations) and
 * R2.4 (vouchers), with individual numbers checked as R2.2 demands.
 *
 * The files are parsed with libcsv and checked with rules written here,
 * independently of the generator: the check digit, calendar dates
 * (timegm round trip), ages and intervals are recomputed from the text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <limits.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "ref/mynumber.h"
#include "synth/synth.h"

#define NAMES_CSV  MAMORI_TEST_SOURCE_DIR "/data/names/names.csv"
#define LGCODE_CSV MAMORI_TEST_SOURCE_DIR "/data/municipalities/municipalities_lgcode.csv"
#define CATALOGUE  MAMORI_TEST_SOURCE_DIR "/data/vaccines/catalogue.csv"

/* The headers exactly as the import formats state them (docs/synth.md). */
#define H_RESIDENTS "address_no,mynumber,name,kana,birth_date,sex,postcode," \
    "address,katagaki,household_no,relationship,became_date,ceased_date," \
    "movement_type,movement_date,prev_address,next_address,alias"
#define H_VOUCHERS "address_no,voucher_no,ticket_type,issued_date"
#define H_VACCINATIONS "address_no,vaccine,dose,date,lot,voucher_no,site," \
    "clinic,doctor"

/* Residents table columns. */
enum { R_ADDRNO, R_MYNUMBER, R_NAME, R_KANA, R_BIRTH, R_SEX, R_POSTCODE,
       R_ADDRESS, R_KATAGAKI, R_HOUSEHOLD, R_REL, R_BECAME, R_CEASED, R_MOVE,
       R_MOVED, R_PREV, R_NEXT, R_ALIAS, R_NCOLS };
enum { V_ADDRNO, V_VOUCHER, V_TYPE, V_ISSUED, V_NCOLS };
enum { X_ADDRNO, X_VACCINE, X_DOSE, X_DATE, X_LOT, X_VOUCHER, X_SITE,
       X_CLINIC, X_DOCTOR, X_NCOLS };

#define START_DATE "2025-11-01"
#define SAMPLE     6000u

static struct synth_data *data;

/* ---- running the generator into memory -------------------------------- */

struct gen {
    char *buf[3];
    size_t len[3];
    int rc;
    struct synth_stats st;
};

static void
gen_free(struct gen *g)
{
    for (int i = 0; i < 3; i++)
        free(g->buf[i]);
    memset(g, 0, sizeof(*g));
}

static void
run_gen(struct gen *g, const char *muni, uint64_t count, const char *seed,
        enum synth_encoding enc, const char *start)
{
    struct synth_opts o = {
        .municipality = muni, .count = count, .seed = seed,
        .seed_len = strlen(seed), .encoding = enc, .start_date = start,
    };
    FILE *f[3];
    char err[256];

    memset(g, 0, sizeof(*g));
    for (int i = 0; i < 3; i++) {
        f[i] = open_memstream(&g->buf[i], &g->len[i]);
        assert_non_null(f[i]);
    }
    g->rc = synth_write(data, &o, f[0], f[1], f[2], &g->st, err, sizeof(err));
    for (int i = 0; i < 3; i++)
        assert_int_equal(fclose(f[i]), 0);
    if (g->rc != 0)
        print_error("synth_write: %s\n", err);
}

/* ---- a small CSV table (parsed with libcsv) ------------------------------ */

struct table {
    char ***row;                /* row[i][j], NUL-terminated */
    size_t nrows, ncols, cap;
    char **cur;
    size_t ncur;
    bool ragged;
};

static void
t_field(void *s, size_t len, void *data_)
{
    struct table *t = data_;
    char *c = malloc(len + 1);

    assert_non_null(c);
    memcpy(c, s, len);
    c[len] = '\0';
    if (t->cur == NULL)
        t->cur = calloc(64, sizeof(char *));
    assert_non_null(t->cur);
    if (t->ncur < 64)
        t->cur[t->ncur++] = c;
    else
        free(c);
}

static void
t_row(int c, void *data_)
{
    struct table *t = data_;

    (void)c;
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->row = realloc(t->row, t->cap * sizeof(*t->row));
        assert_non_null(t->row);
    }
    if (t->nrows == 0)
        t->ncols = t->ncur;
    else if (t->ncur != t->ncols)
        t->ragged = true;
    t->row[t->nrows++] = t->cur;
    t->cur = NULL;
    t->ncur = 0;
}

static int
keep_spaces(unsigned char c)
{
    (void)c;
    return 0;
}

/* Parse a whole file; row 0 is the header. */
static void
parse(struct table *t, const char *buf, size_t len)
{
    struct csv_parser p;

    memset(t, 0, sizeof(*t));
    assert_int_equal(csv_init(&p, CSV_STRICT | CSV_STRICT_FINI), 0);
    csv_set_space_func(&p, keep_spaces);
    assert_int_equal(csv_parse(&p, buf, len, t_field, t_row, t), len);
    assert_int_equal(csv_fini(&p, t_field, t_row, t), 0);
    csv_free(&p);
    assert_false(t->ragged);
    assert_true(t->nrows >= 1);
}

static void
table_free(struct table *t)
{
    for (size_t i = 0; i < t->nrows; i++) {
        for (size_t j = 0; j < t->ncols; j++)
            free(t->row[i][j]);
        free(t->row[i]);
    }
    free(t->row);
}

/* ---- independent rules --------------------------------------------------- */

/* R2.2, as /work/shared/data/README.md states it. */
static bool
ref_mynumber_ok(const char *s)
{
    static const int w[11] = { 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2 };
    int sum = 0;

    if (strlen(s) != 12 || strspn(s, "0123456789") != 12)
        return false;
    for (int i = 0; i < 11; i++)
        sum += (s[i] - '0') * w[i];
    return s[11] - '0' == (sum % 11 <= 1 ? 0 : 11 - sum % 11);
}

/* A real calendar date written YYYY-MM-DD: libc's timegm must give the
 * same day back.  Returns days since 1970-01-01, or INT_MIN. */
static int
day_of(const char *s)
{
    struct tm tm, back;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
        strspn(s, "0123456789-") != 10 ||
        sscanf(s, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
        return INT_MIN;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_hour = 12;
    t = timegm(&tm);
    if (gmtime_r(&t, &back) == NULL || back.tm_year != tm.tm_year ||
        back.tm_mon != tm.tm_mon || back.tm_mday != tm.tm_mday)
        return INT_MIN;
    return (int)(t / 86400);
}

/* Completed years between two YYYY-MM-DD dates. */
static int
years_between(const char *birth, const char *on)
{
    int by, bm, bd, y, m, d;

    assert_int_equal(sscanf(birth, "%d-%d-%d", &by, &bm, &bd), 3);
    assert_int_equal(sscanf(on, "%d-%d-%d", &y, &m, &d), 3);
    return y - by - ((m < bm || (m == bm && d < bd)) ? 1 : 0);
}

static bool
all_digits(const char *s, size_t n)
{
    return strlen(s) == n && strspn(s, "0123456789") == n;
}

/* ---- the shared sample ------------------------------------------------- */

struct sample {
    struct gen g;
    struct table res, vou, vax;
};

static struct sample *sample_designated, *sample_town;

static struct sample *
make_sample(const char *muni, uint64_t count, const char *seed)
{
    struct sample *s = calloc(1, sizeof(*s));

    assert_non_null(s);
    run_gen(&s->g, muni, count, seed, SYNTH_UTF8, START_DATE);
    assert_int_equal(s->g.rc, 0);
    parse(&s->res, s->g.buf[0], s->g.len[0]);
    parse(&s->vou, s->g.buf[1], s->g.len[1]);
    parse(&s->vax, s->g.buf[2], s->g.len[2]);
    return s;
}

static void
sample_free(struct sample *s)
{
    if (s == NULL)
        return;
    table_free(&s->res);
    table_free(&s->vou);
    table_free(&s->vax);
    gen_free(&s->g);
    free(s);
}

static int
group_setup(void **state)
{
    char err[512];

    (void)state;
    if (sodium_init() < 0)
        return -1;
    if (synth_data_load(NAMES_CSV, LGCODE_CSV, &data, err, sizeof(err)) != 0) {
        print_error("synth_data_load: %s\n", err);
        return -1;
    }
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    sample_free(sample_designated);
    sample_free(sample_town);
    synth_data_free(data);
    return 0;
}

/* 札幌市 (a designated city: addresses in its wards) and 那覇市. */
static const struct sample *
samples(size_t i)
{
    if (sample_designated == NULL)
        sample_designated = make_sample("011002", SAMPLE, "test-seed-1");
    if (sample_town == NULL)
        sample_town = make_sample("472018", SAMPLE, "test-seed-2");
    return i == 0 ? sample_designated : sample_town;
}

/* ---- tests ---------------------------------------------------------------- */

/* R9.4 / R2.1, R2.3, R2.4: the three headers are exactly the import
 * formats', each file has as many columns on every row, and --count is
 * the number of residents. */
static void
test_headers_exact(void **state)
{
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        const struct sample *s = samples(i);

        assert_true(strncmp(s->g.buf[0], H_RESIDENTS "\r\n",
                            strlen(H_RESIDENTS) + 2) == 0);
        assert_true(strncmp(s->g.buf[1], H_VOUCHERS "\r\n",
                            strlen(H_VOUCHERS) + 2) == 0);
        assert_true(strncmp(s->g.buf[2], H_VACCINATIONS "\r\n",
                            strlen(H_VACCINATIONS) + 2) == 0);
        assert_int_equal(s->res.ncols, R_NCOLS);
        assert_int_equal(s->vou.ncols, V_NCOLS);
        assert_int_equal(s->vax.ncols, X_NCOLS);
        assert_int_equal(s->res.nrows - 1, SAMPLE);
        assert_int_equal(s->g.st.residents, SAMPLE);
        assert_int_equal(s->vou.nrows - 1, s->g.st.vouchers);
        assert_int_equal(s->vax.nrows - 1, s->g.st.vaccinations);
    }
}

static void
sha256_of(const struct gen *g, uint8_t out[3][crypto_hash_sha256_BYTES])
{
    for (int i = 0; i < 3; i++)
        crypto_hash_sha256(out[i], (const uint8_t *)g->buf[i], g->len[i]);
}

/* R9.4: the same seed and options give byte-identical files. */
static void
test_same_seed_same_bytes(void **state)
{
    struct gen a, b;
    uint8_t ha[3][crypto_hash_sha256_BYTES], hb[3][crypto_hash_sha256_BYTES];

    (void)state;
    run_gen(&a, "131016", 3000, "reproducible", SYNTH_UTF8, START_DATE);
    run_gen(&b, "131016", 3000, "reproducible", SYNTH_UTF8, START_DATE);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    sha256_of(&a, ha);
    sha256_of(&b, hb);
    for (int i = 0; i < 3; i++) {
        assert_true(a.len[i] > 100);
        assert_memory_equal(ha[i], hb[i], sizeof(ha[i]));
    }
    gen_free(&a);
    gen_free(&b);
}

/* R9.4: another seed gives other data, in each of the three files, and
 * so does the same seed for another municipality. */
static void
test_other_seed_differs(void **state)
{
    struct gen a, b, c;
    uint8_t ha[3][crypto_hash_sha256_BYTES], hb[3][crypto_hash_sha256_BYTES],
        hc[3][crypto_hash_sha256_BYTES];

    (void)state;
    run_gen(&a, "131016", 3000, "seed-a", SYNTH_UTF8, START_DATE);
    run_gen(&b, "131016", 3000, "seed-b", SYNTH_UTF8, START_DATE);
    run_gen(&c, "131024", 3000, "seed-a", SYNTH_UTF8, START_DATE);
    assert_int_equal(a.rc | b.rc | c.rc, 0);
    sha256_of(&a, ha);
    sha256_of(&b, hb);
    sha256_of(&c, hc);
    for (int i = 0; i < 3; i++) {
        assert_memory_not_equal(ha[i], hb[i], sizeof(ha[i]));
        assert_memory_not_equal(ha[i], hc[i], sizeof(ha[i]));
    }
    /* Not just a shifted row: the first resident's name changed. */
    assert_true(strncmp(a.buf[0] + strlen(H_RESIDENTS) + 2,
                        b.buf[0] + strlen(H_RESIDENTS) + 2, 80) != 0);
    gen_free(&a);
    gen_free(&b);
    gen_free(&c);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* R2.2: every individual number has 12 digits and a valid check digit by
 * the rule itself (and by mynumber_valid), none repeats, and only a few
 * are "" (unknown). */
static void
test_mynumbers_valid_unique(void **state)
{
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        const struct table *t = &samples(k)->res;
        char **nums = calloc(t->nrows, sizeof(char *));
        size_t n = 0, unknown = 0;

        assert_non_null(nums);
        for (size_t i = 1; i < t->nrows; i++) {
            const char *m = t->row[i][R_MYNUMBER];

            if (m[0] == '\0') {
                unknown++;
                continue;
            }
            assert_true(ref_mynumber_ok(m));
            assert_true(mynumber_valid(m));
            nums[n++] = t->row[i][R_MYNUMBER];
        }
        qsort(nums, n, sizeof(char *), cmp_str);
        for (size_t i = 1; i < n; i++)
            assert_string_not_equal(nums[i - 1], nums[i]);
        assert_true(unknown > 0 && unknown < SAMPLE / 20);
        free(nums);
    }
}

/* A real date or "" (where the column allows it). */
static void
assert_date(const char *s, bool may_be_empty)
{
    if (s[0] == '\0' && may_be_empty)
        return;
    if (day_of(s) == INT_MIN)
        fail_msg("not a real calendar date: \"%s\"", s);
}

/* Every date in every file is a real calendar date, none after the start
 * date, none before birth; ceased_date and movement_date agree for the
 * rows that cease (転出, 死亡, 職権消除). */
static void
test_dates_real_and_ordered(void **state)
{
    int start = day_of(START_DATE);

    (void)state;
    for (size_t k = 0; k < 2; k++) {
        const struct sample *s = samples(k);

        for (size_t i = 1; i < s->res.nrows; i++) {
            char **r = s->res.row[i];
            bool ceases = strcmp(r[R_MOVE], "転出") == 0 ||
                          strcmp(r[R_MOVE], "死亡") == 0 ||
                          strcmp(r[R_MOVE], "職権消除") == 0;

            assert_date(r[R_BIRTH], false);
            assert_date(r[R_BECAME], false);
            assert_date(r[R_MOVED], false);
            assert_date(r[R_CEASED], true);
            assert_true(day_of(r[R_BIRTH]) <= day_of(r[R_BECAME]));
            assert_true(day_of(r[R_BECAME]) <= day_of(r[R_MOVED]));
            assert_true(day_of(r[R_MOVED]) <= start);
            if (ceases)
                assert_string_equal(r[R_CEASED], r[R_MOVED]);
            else
                assert_string_equal(r[R_CEASED], "");
            if (strcmp(r[R_MOVE], "出生") == 0)
                assert_string_equal(r[R_BECAME], r[R_BIRTH]);
        }
        for (size_t i = 1; i < s->vou.nrows; i++) {
            assert_date(s->vou.row[i][V_ISSUED], false);
            assert_true(day_of(s->vou.row[i][V_ISSUED]) <= start);
        }
        for (size_t i = 1; i < s->vax.nrows; i++) {
            assert_date(s->vax.row[i][X_DATE], false);
            assert_true(day_of(s->vax.row[i][X_DATE]) <= start);
        }
    }
}

/* The residents table row of an address_no (rows are in address_no
 * order from 0000000001). */
static char **
resident(const struct table *res, const char *address_no)
{
    unsigned long n;

    assert_true(all_digits(address_no, 10));
    n = strtoul(address_no, NULL, 10);
    assert_true(n >= 1 && n < res->nrows);
    assert_string_equal(res->row[n][R_ADDRNO], address_no);
    return res->row[n];
}

static bool
is_covid(const char *code)
{
    return strncmp(code, "covid-", 6) == 0;
}

/* R2.3: per person and series (all covid-* products are one series,
 * every other code its own), doses are numbered 1, 2, 3 ... in date
 * order, at least three weeks apart; no dose before birth, none on or
 * after death or moving out, none after the start date; COVID-19 doses
 * not before 2021-02-17, the 2023 products not before December 2023. */
static void
test_doses_in_order(void **state)
{
    int start = day_of(START_DATE), covid_start = day_of("2021-02-17");
    int new_products = day_of("2023-12-01");

    (void)state;
    for (size_t k = 0; k < 2; k++) {
        const struct sample *s = samples(k);
        const char *prev_addr = "";
        int prev_row_day = 0;
        size_t covid = 0;

        for (size_t i = 1; i < s->vax.nrows; i++) {
            char **v = s->vax.row[i], **r = resident(&s->res, v[X_ADDRNO]);
            const char *cat = is_covid(v[X_VACCINE]) ? "covid" : v[X_VACCINE];
            int day = day_of(v[X_DATE]), dose;

            assert_true(all_digits(v[X_DOSE], strlen(v[X_DOSE])));
            dose = atoi(v[X_DOSE]);
            assert_true(dose >= 1);
            assert_true(day >= day_of(r[R_BIRTH]));
            assert_true(day <= start);
            if (r[R_CEASED][0] != '\0')
                assert_true(day < day_of(r[R_CEASED]));
            if (is_covid(v[X_VACCINE])) {
                covid++;
                assert_true(day >= covid_start);
            }
            if (strcmp(v[X_VACCINE], "covid-daichirona") == 0 ||
                strcmp(v[X_VACCINE], "covid-kostaive") == 0)
                assert_true(day >= new_products);
            /* Rows of one person are consecutive and sorted by date; look
             * back for the same series: none means this is dose 1. */
            int prev_dose = 0;

            for (size_t j = i - 1; j >= 1 && strcmp(s->vax.row[j][X_ADDRNO],
                                                    v[X_ADDRNO]) == 0; j--) {
                const char *c2 = is_covid(s->vax.row[j][X_VACCINE])
                                     ? "covid" : s->vax.row[j][X_VACCINE];
                if (strcmp(c2, cat) != 0)
                    continue;
                prev_dose = atoi(s->vax.row[j][X_DOSE]);
                assert_true(day - day_of(s->vax.row[j][X_DATE]) >= 21);
                break;
            }
            assert_int_equal(dose, prev_dose + 1);
            /* address_no order; by date within a person. */
            assert_true(strcmp(prev_addr, v[X_ADDRNO]) <= 0);
            if (strcmp(prev_addr, v[X_ADDRNO]) == 0)
                assert_true(day >= prev_row_day);
            prev_addr = v[X_ADDRNO];
            prev_row_day = day;
        }
        assert_true(covid > SAMPLE);     /* COVID-19 rows are really there */
    }
}

/* R2.4: voucher numbers are 10 digits and unique, a resident has at most
 * one, every resident aged 5 or more who still lives here has one, none
 * is issued before the holder was 5 or lived here; a COVID-19 dose names
 * its holder's voucher when given on or after its issue (and while living
 * here), else none, as routine doses. */
static void
test_vouchers(void **state)
{
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        const struct sample *s = samples(k);
        char **nums = calloc(s->vou.nrows, sizeof(char *));
        size_t with_voucher = 0;
        char ***by_resident = calloc(s->res.nrows, sizeof(char **));
        size_t n = 0;

        assert_non_null(nums);
        assert_non_null(by_resident);
        for (size_t i = 1; i < s->vou.nrows; i++) {
            char **v = s->vou.row[i], **r = resident(&s->res, v[V_ADDRNO]);
            unsigned long a = strtoul(v[V_ADDRNO], NULL, 10);

            assert_true(all_digits(v[V_VOUCHER], 10));
            assert_true(all_digits(v[V_TYPE], 1));
            assert_null(by_resident[a]);
            by_resident[a] = v;
            assert_true(years_between(r[R_BIRTH], v[V_ISSUED]) >= 5);
            assert_true(day_of(v[V_ISSUED]) >= day_of(r[R_BECAME]));
            nums[n++] = v[V_VOUCHER];
        }
        qsort(nums, n, sizeof(char *), cmp_str);
        for (size_t i = 1; i < n; i++)
            assert_string_not_equal(nums[i - 1], nums[i]);
        for (size_t i = 1; i < s->res.nrows; i++) {
            char **r = s->res.row[i];

            if (r[R_CEASED][0] == '\0' && years_between(r[R_BIRTH], START_DATE) >= 5)
                assert_non_null(by_resident[i]);
        }
        for (size_t i = 1; i < s->vax.nrows; i++) {
            char **v = s->vax.row[i];
            unsigned long a = strtoul(v[X_ADDRNO], NULL, 10);

            char **mine = by_resident[a];
            int day = day_of(v[X_DATE]);

            if (!is_covid(v[X_VACCINE])) {
                assert_string_equal(v[X_VOUCHER], "");
            } else if (v[X_VOUCHER][0] != '\0') {
                assert_non_null(mine);
                assert_string_equal(v[X_VOUCHER], mine[V_VOUCHER]);
                assert_true(day >= day_of(mine[V_ISSUED]));
                assert_true(day >= day_of(resident(&s->res, v[X_ADDRNO])[R_BECAME]));
                with_voucher++;
            } else {
                assert_true(mine == NULL || day < day_of(mine[V_ISSUED]));
            }
        }
        assert_true(with_voucher > SAMPLE);
        free(nums);
        free(by_resident);
    }
}

/* R2.1: one 世帯主 per household; its members share address, postcode,
 * 方書 and household_no; children are at least 15 years younger than the
 * head, parents at least 15 years older, grandchildren 30; a household
 * has at most one spouse of the head, of the other sex.  Names and kana are family name,
 * U+3000, given name. */
static void
test_households_consistent(void **state)
{
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        const struct table *t = &samples(k)->res;
        size_t i = 1, households = 0, big = 0;

        while (i < t->nrows) {
            size_t j = i, heads = 0, spouses = 0;
            char **h = NULL;

            /* Households are written together, head first. */
            while (j < t->nrows && strcmp(t->row[j][R_HOUSEHOLD],
                                          t->row[i][R_HOUSEHOLD]) == 0)
                j++;
            households++;
            big += j - i >= 3;
            for (size_t m = i; m < j; m++) {
                char **r = t->row[m];

                if (strcmp(r[R_REL], "世帯主") == 0) {
                    heads++;
                    h = r;
                }
                spouses += strcmp(r[R_REL], "妻") == 0 || strcmp(r[R_REL], "夫") == 0;
                assert_string_equal(r[R_ADDRESS], t->row[i][R_ADDRESS]);
                assert_string_equal(r[R_POSTCODE], t->row[i][R_POSTCODE]);
                assert_string_equal(r[R_KATAGAKI], t->row[i][R_KATAGAKI]);
                assert_non_null(strstr(r[R_NAME], "\xe3\x80\x80"));
                assert_non_null(strstr(r[R_KANA], "\xe3\x80\x80"));
                assert_true(strcmp(r[R_SEX], "1") == 0 || strcmp(r[R_SEX], "2") == 0);
                assert_true(all_digits(r[R_HOUSEHOLD], 10));
            }
            assert_int_equal(heads, 1);
            assert_ptr_equal(h, t->row[i]);
            assert_true(spouses <= 1);
            for (size_t m = i; m < j; m++) {
                char **r = t->row[m];
                int older = years_between(r[R_BIRTH], h[R_BIRTH]);
                int younger = years_between(h[R_BIRTH], r[R_BIRTH]);

                if (strcmp(r[R_REL], "子") == 0)
                    assert_true(younger >= 15);
                if (strcmp(r[R_REL], "父") == 0 || strcmp(r[R_REL], "母") == 0)
                    assert_true(older >= 15);
                if (strcmp(r[R_REL], "孫") == 0)
                    assert_true(younger >= 30);
                /* 妻 is a head's wife, 夫 a head's husband. */
                if (strcmp(r[R_REL], "妻") == 0)
                    assert_true(strcmp(h[R_SEX], "1") == 0 && strcmp(r[R_SEX], "2") == 0);
                if (strcmp(r[R_REL], "夫") == 0)
                    assert_true(strcmp(h[R_SEX], "2") == 0 && strcmp(r[R_SEX], "1") == 0);
            }
            i = j;
        }
        assert_true(households > SAMPLE / 4 && households < SAMPLE * 2 / 3);
        assert_true(big > households / 10);
    }
}

/* Addresses: "<prefecture><municipality><town>N丁目N番N号", the
 * municipality the run is for (a ward of 札幌市 for 011002), postcodes
 * NNN-NNNN; 転入 rows come from another real municipality and 転出 rows
 * go to one. */
static void
test_addresses(void **state)
{
    static const char *const own[2] = { "北海道札幌市", "沖縄県那覇市" };

    (void)state;
    for (size_t k = 0; k < 2; k++) {
        const struct table *t = &samples(k)->res;
        size_t katagaki = 0, moved_in = 0, moved_out = 0;

        for (size_t i = 1; i < t->nrows; i++) {
            char **r = t->row[i];
            const char *pc = r[R_POSTCODE], *a = r[R_ADDRESS];

            assert_int_equal(strlen(pc), 8);
            assert_true(pc[3] == '-' && strspn(pc, "0123456789") == 3 &&
                        strspn(pc + 4, "0123456789") == 4);
            assert_true(strncmp(a, own[k], strlen(own[k])) == 0);
            if (k == 0)     /* a ward: 札幌市<ward>区<town> */
                assert_non_null(strstr(a + strlen(own[k]), "区"));
            assert_non_null(strstr(a, "丁目"));
            assert_true(strlen(a) > 3 && strcmp(a + strlen(a) - 3, "号") == 0);
            katagaki += r[R_KATAGAKI][0] != '\0';
            if (strcmp(r[R_MOVE], "転入") == 0) {
                moved_in++;
                assert_true(r[R_PREV][0] != '\0');
                assert_true(strncmp(r[R_PREV], own[k], strlen(own[k])) != 0);
            }
            if (strcmp(r[R_MOVE], "転出") == 0) {
                moved_out++;
                assert_true(r[R_NEXT][0] != '\0');
                assert_true(strncmp(r[R_NEXT], own[k], strlen(own[k])) != 0);
            } else {
                assert_string_equal(r[R_NEXT], "");
            }
        }
        assert_true(katagaki > SAMPLE / 20);
        assert_true(moved_in > 0 && moved_out > 0);
    }
}

/* R9.4 "realistic": an old population like Japan's (65 and over between
 * 22 and 36 per cent of those living here), most people born here or
 * moved in, some 転居, and a few per cent 転出 and 死亡. */
static void
test_realistic_shares(void **state)
{
    (void)state;
    for (size_t k = 0; k < 2; k++) {
        const struct table *t = &samples(k)->res;
        size_t alive = 0, old = 0, child = 0, birth_in = 0, within = 0, out = 0,
            died = 0, n = t->nrows - 1;

        for (size_t i = 1; i < t->nrows; i++) {
            char **r = t->row[i];
            int age = years_between(r[R_BIRTH], START_DATE);

            if (r[R_CEASED][0] == '\0') {
                alive++;
                old += age >= 65;
                child += age < 15;
            }
            birth_in += strcmp(r[R_MOVE], "出生") == 0 || strcmp(r[R_MOVE], "転入") == 0;
            within += strcmp(r[R_MOVE], "転居") == 0;
            out += strcmp(r[R_MOVE], "転出") == 0;
            died += strcmp(r[R_MOVE], "死亡") == 0;
        }
        assert_true(old * 100 >= alive * 22 && old * 100 <= alive * 36);
        assert_true(child * 100 >= alive * 7 && child * 100 <= alive * 16);
        assert_true(birth_in * 100 >= n * 60);
        assert_true(within * 100 >= n * 3);
        assert_true(out * 1000 >= n * 5 && out * 100 <= n * 8);
        assert_true(died * 1000 >= n * 5 && died * 100 <= n * 8);
    }
}

/* --start-date bounds everything: as of 2022-01-01 no date is later, no
 * booster campaign after it appears, and the routine b-covid (from
 * 2024-10) does not exist yet. */
static void
test_start_date_bounds(void **state)
{
    struct gen g;
    struct table res, vax;
    int start = day_of("2022-01-01");

    (void)state;
    run_gen(&g, "472018", 2000, "early", SYNTH_UTF8, "2022-01-01");
    assert_int_equal(g.rc, 0);
    parse(&res, g.buf[0], g.len[0]);
    parse(&vax, g.buf[2], g.len[2]);
    for (size_t i = 1; i < res.nrows; i++) {
        assert_true(day_of(res.row[i][R_BIRTH]) <= start);
        assert_true(day_of(res.row[i][R_MOVED]) <= start);
    }
    for (size_t i = 1; i < vax.nrows; i++) {
        assert_true(day_of(vax.row[i][X_DATE]) <= start);
        assert_string_not_equal(vax.row[i][X_VACCINE], "b-covid");
        assert_string_not_equal(vax.row[i][X_VACCINE], "covid-daichirona");
        if (is_covid(vax.row[i][X_VACCINE]))
            assert_true(atoi(vax.row[i][X_DOSE]) <= 3);
    }
    table_free(&res);
    table_free(&vax);
    gen_free(&g);
}

static char *
to_utf8(const char *in, size_t len, size_t *outlen)
{
    iconv_t cd = iconv_open("UTF-8", "CP932");
    size_t cap = len * 2 + 16, il = len, ol = cap;
    char *out = malloc(cap), *ip = (char *)(uintptr_t)in, *op = out;

    assert_true(cd != (iconv_t)-1);
    assert_non_null(out);
    assert_true(iconv(cd, &ip, &il, &op, &ol) != (size_t)-1);
    iconv_close(cd);
    *outlen = cap - ol;
    return out;
}

/* R2.6 / R9.4: the CP932 files, converted back with iconv, are the UTF-8
 * files byte for byte (so every generated character is representable),
 * and they really are CP932 (not UTF-8 passed through). */
static void
test_cp932_round_trip(void **state)
{
    struct gen u, c;

    (void)state;
    run_gen(&u, "011002", 3000, "cp932", SYNTH_UTF8, START_DATE);
    run_gen(&c, "011002", 3000, "cp932", SYNTH_CP932, START_DATE);
    assert_int_equal(u.rc | c.rc, 0);
    for (int i = 0; i < 3; i++) {
        size_t n;
        char *back = to_utf8(c.buf[i], c.len[i], &n);

        assert_int_equal(n, u.len[i]);
        assert_memory_equal(back, u.buf[i], n);
        free(back);
    }
    assert_true(c.len[0] < u.len[0]);       /* 2 bytes a kanji, not 3 */
    assert_null(strstr(c.buf[0], "\xe3\x80\x80"));
    gen_free(&u);
    gen_free(&c);
}

/* Growing --count keeps the people already made: a smaller run is a
 * prefix of a larger one with the same seed, but for its last household,
 * which was cut to fit. */
static void
test_prefix_stable(void **state)
{
    struct gen a, b;
    const char *cut;

    (void)state;
    run_gen(&a, "131016", 500, "prefix", SYNTH_UTF8, START_DATE);
    run_gen(&b, "131016", 6000, "prefix", SYNTH_UTF8, START_DATE);
    assert_int_equal(a.rc | b.rc, 0);
    /* Everything up to the start of a's last household is shared. */
    cut = a.buf[0] + a.len[0] - 2;
    for (int lines = 0; lines < 12 && cut > a.buf[0]; cut--)
        lines += *cut == '\n';
    assert_true(cut - a.buf[0] > (ptrdiff_t)a.len[0] / 2);
    assert_memory_equal(a.buf[0], b.buf[0], (size_t)(cut - a.buf[0]));
    /* The first residents' vouchers and doses too. */
    for (int i = 1; i < 3; i++)
        assert_memory_equal(a.buf[i], b.buf[i], a.len[i] / 2);
    gen_free(&a);
    gen_free(&b);
}

/* --count is exact even when it cuts a household. */
static void
test_count_exact(void **state)
{
    static const uint64_t counts[] = { 1, 2, 7, 333 };

    (void)state;
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        struct gen g;
        struct table t;

        run_gen(&g, "472018", counts[i], "count", SYNTH_UTF8, START_DATE);
        assert_int_equal(g.rc, 0);
        parse(&t, g.buf[0], g.len[0]);
        assert_int_equal(t.nrows - 1, counts[i]);
        assert_string_equal(t.row[1][R_REL], "世帯主");
        table_free(&t);
        gen_free(&g);
    }
}

/* Only real municipalities: a bad check digit, a code not in the table,
 * a prefecture, a ward of a designated city and anything but 6 digits
 * are refused, and synth_write refuses them too (nothing written). */
static void
test_municipality_checked(void **state)
{
    static const char *const bad[] = {
        "131017", "999997", "130001", "011011", "13101", "1310166", "13101a", "",
    };
    static const char *const good[] = { "131016", "011002", "472018", "014290" };
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gen g;

        err[0] = '\0';
        assert_int_equal(synth_check_municipality(data, bad[i], err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
        run_gen(&g, bad[i], 10, "x", SYNTH_UTF8, START_DATE);
        assert_int_equal(g.rc, -1);
        assert_int_equal(g.len[0], 0);
        gen_free(&g);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(synth_check_municipality(data, good[i], err, sizeof(err)), 0);
    assert_false(synth_date_valid("2023-02-29"));
    assert_false(synth_date_valid("2024-13-01"));
    assert_false(synth_date_valid("2024-1-01"));
    assert_true(synth_date_valid("2024-02-29"));
}

/* Completed months of age on `on` (民法 143: born 4/10, two months old
 * from 6/10; born 12/31, from 3/1). */
static int
months_between(const char *birth, const char *on)
{
    int by, bm, bd, y, m, d;

    assert_int_equal(sscanf(birth, "%d-%d-%d", &by, &bm, &bd), 3);
    assert_int_equal(sscanf(on, "%d-%d-%d", &y, &m, &d), 3);
    return (y - by) * 12 + (m - bm) - (d < bd ? 1 : 0);
}

static size_t
column(const struct table *t, const char *name)
{
    for (size_t j = 0; j < t->ncols; j++)
        if (strcmp(t->row[0][j], name) == 0)
            return j;
    fail_msg("catalogue.csv has no column %s", name);
    return 0;
}

/* The catalogue row of a code; fails if there is none. */
static char **
catalogue_row(const struct table *cat, size_t code_col, const char *code)
{
    for (size_t r = 1; r < cat->nrows; r++)
        if (strcmp(cat->row[r][code_col], code) == 0)
            return cat->row[r];
    fail_msg("%s is not in catalogue.csv", code);
    return NULL;
}

/* R2.3: every vaccine code written is one of data/vaccines/catalogue.csv
 * and keeps to its numbers: dose at most max_dose, more than
 * min_interval_days whole days after the previous dose of the series,
 * and the person at least min_age_months old (the import rules of
 * docs/records.md).  Skipped while the catalogue is not there. */
static void
test_codes_in_catalogue(void **state)
{
    FILE *f = fopen(CATALOGUE, "r");
    char *buf = NULL, chunk[4096];
    size_t len = 0, cap = 0, n, c_code, c_series, c_max, c_gap, c_age;
    struct table cat;

    (void)state;
    if (f == NULL)
        skip();
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n > cap) {
            char *grown = realloc(buf, (len + n) * 2);

            assert_non_null(grown);
            buf = grown;
            cap = (len + n) * 2;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    parse(&cat, buf, len);
    c_code = column(&cat, "code");
    c_series = column(&cat, "series");
    c_max = column(&cat, "max_dose");
    c_gap = column(&cat, "min_interval_days");
    c_age = column(&cat, "min_age_months");
    for (size_t k = 0; k < 2; k++) {
        const struct sample *s = samples(k);

        for (size_t i = 1; i < s->vax.nrows; i++) {
            char **v = s->vax.row[i], **c = catalogue_row(&cat, c_code, v[X_VACCINE]);
            char **r = resident(&s->res, v[X_ADDRNO]);

            if (c[c_max][0] != '\0')
                assert_true(atoi(v[X_DOSE]) <= atoi(c[c_max]));
            if (c[c_age][0] != '\0')
                assert_true(months_between(r[R_BIRTH], v[X_DATE]) >= atoi(c[c_age]));
            if (c[c_gap][0] == '\0')
                continue;
            for (size_t j = i - 1; j >= 1 && strcmp(s->vax.row[j][X_ADDRNO],
                                                    v[X_ADDRNO]) == 0; j--) {
                char **pc = catalogue_row(&cat, c_code, s->vax.row[j][X_VACCINE]);

                if (strcmp(pc[c_series], c[c_series]) != 0)
                    continue;
                assert_true(day_of(v[X_DATE]) - day_of(s->vax.row[j][X_DATE]) >
                            atoi(c[c_gap]));
                break;
            }
        }
    }
    table_free(&cat);
    free(buf);
}

static void
write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Names that CP932 cannot hold (𠮷, a JIS X 0213 kanji) are skipped and
 * counted, so UTF-8 and CP932 runs hold the same people; a names file
 * with another header is refused, not half-used. */
static void
test_names_loader(void **state)
{
    char path[] = "/tmp/test_synth_names_XXXXXX";
    int fd = mkstemp(path);
    struct synth_data *d = NULL;
    char err[512];

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    write_text(path, "part,gender,kanji,hiragana,katakana,romaji\n"
               "last,,佐藤,さとう,サトウ,Satou\n"
               "last,,\xf0\xa0\xae\xb7田,よしだ,ヨシダ,Yoshida\n"
               "first,male,太郎,たろう,タロウ,Tarou\n"
               "first,female,花子,はなこ,ハナコ,Hanako\n");
    assert_int_equal(synth_data_load(path, LGCODE_CSV, &d, err, sizeof(err)), 0);
    assert_int_equal(synth_data_names_skipped(d), 1);
    synth_data_free(d);
    d = NULL;
    write_text(path, "part,sex,kanji,hiragana,katakana,romaji\n"
               "last,,佐藤,さとう,サトウ,Satou\n");
    assert_int_equal(synth_data_load(path, LGCODE_CSV, &d, err, sizeof(err)), -1);
    assert_null(d);
    assert_non_null(strstr(err, "header"));
    unlink(path);
}

/* ---- the command -------------------------------------------------------- */

static char *
read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Run cmd_synth with stderr captured into *err (caller frees). */
static int
run_cmd(char **argv, int argc, char **err)
{
    char path[] = "/tmp/test_synth_err_XXXXXX";
    int fd = mkstemp(path), saved = dup(2), rc;
    size_t len;

    assert_true(fd >= 0 && saved >= 0);
    fflush(stderr);
    assert_true(dup2(fd, 2) >= 0);
    rc = cmd_synth(argc, argv);
    fflush(stderr);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);
    close(fd);
    *err = read_all(path, &len);
    assert_non_null(*err);
    unlink(path);
    return rc;
}

static void
rm_out(const char *dir)
{
    char p[PATH_MAX];
    static const char *const files[] = { "residents.csv", "vouchers.csv",
                                         "vaccinations.csv" };

    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* mamori synth writes the three files into --out, says on stderr that
 * they are synthetic (R9.4), never overwrites them, and refuses a bad
 * municipality before creating anything. */
static void
test_cli(void **state)
{
    char dir[] = "/tmp/test_synth_XXXXXX", out[64], path[PATH_MAX];
    char *err, *first, *again;
    size_t len1, len2;
    char *ok[] = { "synth", "--municipality", "131016", "--count", "50",
                   "--seed", "cli", "--out", out, "--start-date", START_DATE,
                   NULL };
    char *bad[] = { "synth", "--municipality", "131017", "--out", out, NULL };

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(out, sizeof(out), "%s/new", dir);
    assert_int_equal(run_cmd(bad, 5, &err), CLI_USAGE);
    assert_non_null(strstr(err, "check digit"));
    free(err);
    assert_int_equal(access(out, F_OK), -1);

    assert_int_equal(run_cmd(ok, 11, &err), CLI_OK);
    assert_non_null(strstr(err, "SYNTHETIC TEST DATA"));
    assert_non_null(strstr(err, "R9.4"));
    free(err);
    snprintf(path, sizeof(path), "%s/residents.csv", out);
    first = read_all(path, &len1);
    assert_non_null(first);
    assert_true(strncmp(first, H_RESIDENTS "\r\n", strlen(H_RESIDENTS) + 2) == 0);
    snprintf(path, sizeof(path), "%s/vaccinations.csv", out);
    assert_int_equal(access(path, R_OK), 0);

    /* A second run finds the files and leaves them as they were. */
    ok[6] = "other";
    assert_int_equal(run_cmd(ok, 11, &err), CLI_FAIL);
    assert_non_null(strstr(err, "already exists"));
    free(err);
    snprintf(path, sizeof(path), "%s/residents.csv", out);
    again = read_all(path, &len2);
    assert_non_null(again);
    assert_int_equal(len1, len2);
    assert_memory_equal(first, again, len1);
    free(first);
    free(again);
    rm_out(out);
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_exact),
        cmocka_unit_test(test_same_seed_same_bytes),
        cmocka_unit_test(test_other_seed_differs),
        cmocka_unit_test(test_mynumbers_valid_unique),
        cmocka_unit_test(test_dates_real_and_ordered),
        cmocka_unit_test(test_doses_in_order),
        cmocka_unit_test(test_vouchers),
        cmocka_unit_test(test_households_consistent),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_realistic_shares),
        cmocka_unit_test(test_start_date_bounds),
        cmocka_unit_test(test_cp932_round_trip),
        cmocka_unit_test(test_prefix_stable),
        cmocka_unit_test(test_count_exact),
        cmocka_unit_test(test_municipality_checked),
        cmocka_unit_test(test_codes_in_catalogue),
        cmocka_unit_test(test_names_loader),
        cmocka_unit_test(test_cli),
    };

    return cmocka_run_group_tests_name("synth (R9.4)", tests, group_setup,
                                       group_teardown);
}
