/*
 * test_import.c - bulk import and export of residents, vouchers and
 * vaccinations (R2.2, R2.6, R2.7).
 *
 * Pass 1 (the check) is tested alone, with fake tenant lookups: every bad
 * line named with its column and a reason that never repeats the value.
 * The store-backed cases (all or nothing, idempotency, the exports) run on
 * SQLite and, with MAMORI_TEST_PG set, on PostgreSQL, as test_auth.c
 * does.  All residents are synthetic (R9.4).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vrs/catalogue.h"
#include "vrs/import.h"

#define CATALOGUE MAMORI_TEST_SOURCE_DIR "/data/vaccines/catalogue.csv"
#define TODAY     "2024-03-31"

#define HR "address_no,mynumber,name,kana,birth_date,sex,postcode,address,katagaki," \
           "household_no,relationship,became_date,ceased_date,movement_type," \
           "movement_date,prev_address,next_address,alias\n"
#define HV "address_no,voucher_no,ticket_type,issued_date\n"
#define HX "address_no,vaccine,dose,date,lot,voucher_no,site,clinic,doctor\n"

/* Valid (invented) individual numbers: check digits computed by hand
 * with the weights of src/ref/mynumber.h. */
#define MN1 "123456789018"
#define MN2 "111111111118"
#define MN3 "234567890121"

static struct vrs_catalogue *cat;

/* ---- collecting problems ------------------------------------------------ */

struct seen {
    uint64_t line;
    char     column[32];
    char     reason[256];
};

struct report {
    struct seen p[64];
    size_t      n;
    int         stop_after;     /* 0: never */
};

static int
collect(void *arg, const struct import_problem *p)
{
    struct report *r = arg;

    assert_true(r->n < 64);
    r->p[r->n].line = p->line;
    snprintf(r->p[r->n].column, sizeof(r->p[0].column), "%s",
             p->column != NULL ? p->column : "-");
    snprintf(r->p[r->n].reason, sizeof(r->p[0].reason), "%s", p->reason);
    r->n++;
    return r->stop_after != 0 && (int)r->n >= r->stop_after;
}

static void
opts_for(struct import_opts *o, enum import_kind kind, struct report *r)
{
    memset(o, 0, sizeof(*o));
    memset(r, 0, sizeof(*r));
    o->kind = kind;
    o->encoding = CSVIN_UTF8;
    o->catalogue = cat;
    o->today = TODAY;
    o->actor = "test";
    o->sink = collect;
    o->sink_arg = r;
}

static int
check_text(enum import_kind kind, const char *text, const struct import_lookup *lk,
           struct report *r, struct import_result *res)
{
    struct import_opts o;

    opts_for(&o, kind, r);
    return import_check_mem(text, strlen(text), &o, lk, res);
}

/* Assert problem i is (line, column) and its reason contains `part`. */
static void
expect(const struct report *r, size_t i, uint64_t line, const char *column,
       const char *part)
{
    if (i >= r->n)
        fail_msg("problem %zu missing (only %zu)", i, r->n);
    if (r->p[i].line != line || strcmp(r->p[i].column, column) != 0 ||
        strstr(r->p[i].reason, part) == NULL)
        fail_msg("problem %zu: got line %llu %s \"%s\", want line %llu %s \"...%s...\"",
                 i, (unsigned long long)r->p[i].line, r->p[i].column, r->p[i].reason,
                 (unsigned long long)line, column, part);
}

/* No reason may repeat a value from the file (R2.2: never the number). */
static void
no_values(const struct report *r, const char *const *values)
{
    for (size_t i = 0; i < r->n; i++)
        for (size_t k = 0; values[k] != NULL; k++)
            if (strstr(r->p[i].reason, values[k]) != NULL)
                fail_msg("reason \"%s\" repeats a value", r->p[i].reason);
}

/* ---- pass 1: residents ---------------------------------------------------- */

/* R2.6, R2.2: a file with many different bad lines: each is reported with
 * its line, column and reason, and the outcome is a refusal. */
static void
test_R2_6_every_bad_line_reported(void **state)
{
    static const char file[] =
        HR
        "A001," MN1 ",山田　太郎,ヤマダ　タロウ,1950-04-10,1,100-0001,東京都千代田区1-1,,H001,"
        "世帯主,1950-04-10,,,,,,\n"                                               /* 2 ok */
        "A002,123456789017,山田　花子,ヤマダ　ハナコ,1952-02-30,3,1000001,x,,,,,,,,,,\n" /* 3 */
        "A003,12345,山田次郎,ﾔﾏﾀﾞ　ｼﾞﾛｳ,1960-01-01,1,,,,,,,,,,,,\n"               /* 4 */
        "A 004,,山田　三郎,,2999-01-01,9,,,,,,,,転出,2020-01-01,,,\n"               /* 5 */
        "A005,,山田　四郎,,1950-01-01,1\n"                                         /* 6 */
        "A006,,山田　五郎,,1950-01-01,2,,,,,,1949-12-31,1949-01-01,引越,,,,\n"     /* 7 */
        "A007,,\"山田　\n六郎\",,1950-01-01,1,,,,,,,,,,,,\n"                       /* 8-9 */
        "A008,,山田　七郎,,1950-01-01,1,,,,,,,,死亡,2023-01-01,,,\n"               /* 10 */
        "A001," MN1 ",山田　八郎,,1950-01-01,1,,,,,,,,,,,,\n"                      /* 11 */
        "A009,,山\"田,,1950-01-01,1,,,,,,,,,,,,\n"                                 /* 12 */
        "A010,,山田　九郎,,1950-01-01,1,,,,,,,,,,,,\n";                            /* 13 ok */
    static const char *const values[] = { "123456789017", "12345", MN1, "1952-02-30",
                                          "2999", "A 004", "引越", "1000001", NULL };
    struct import_result res;
    struct report r;

    (void)state;
    assert_int_equal(check_text(IMPORT_RESIDENTS, file, NULL, &r, &res), 0);
    assert_int_equal(res.outcome, IMPORT_REFUSED);
    expect(&r, 0, 3, "mynumber", "the individual number's check digit is wrong");
    expect(&r, 1, 3, "birth_date", "is not a calendar date");
    expect(&r, 2, 3, "sex", "must be 1 (male), 2 (female) or 9");
    expect(&r, 3, 3, "postcode", "NNN-NNNN");
    expect(&r, 4, 4, "mynumber", "the individual number must be 12 digits");
    expect(&r, 5, 4, "name", "separated by one full-width space");
    expect(&r, 6, 4, "kana", "full-width katakana");
    expect(&r, 7, 5, "address_no", "0-9, A-Z, a-z or -");
    expect(&r, 8, 5, "birth_date", "is in the future");
    expect(&r, 9, 5, "ceased_date", "must equal movement_date for 転出 and 死亡");
    expect(&r, 10, 6, "-", "has 6 fields; the residents format has 18");
    expect(&r, 11, 7, "became_date", "is before birth_date");
    expect(&r, 12, 7, "ceased_date", "is before became_date");
    expect(&r, 13, 7, "movement_type", "must be one of");
    expect(&r, 14, 7, "movement_date", "is empty, but a movement_type is given");
    expect(&r, 15, 8, "name", "line break");
    expect(&r, 16, 10, "ceased_date", "must equal movement_date");
    expect(&r, 17, 11, "address_no", "the same address number is on line 2");
    expect(&r, 18, 11, "mynumber", "the same individual number is on line 2");
    expect(&r, 19, 12, "-", "broken quoting");
    assert_int_equal(r.n, 20);
    assert_int_equal(res.problems, 20);
    assert_int_equal(res.bad_lines, 9);
    assert_int_equal(res.rows, 10);     /* line 12 never became a record */
    no_values(&r, values);
}

/* R2.6: a wrong header is one problem and nothing else is checked (the
 * columns cannot be trusted); an empty file and a header without rows
 * are refused too. */
static void
test_R2_6_header(void **state)
{
    struct import_result res;
    struct report r;

    (void)state;
    assert_int_equal(check_text(IMPORT_RESIDENTS, HV "A001,0000000001,1,2021-04-01\n",
                                NULL, &r, &res), 0);
    assert_int_equal(res.outcome, IMPORT_REFUSED);
    assert_int_equal(r.n, 1);
    expect(&r, 0, 1, "-", "the header must be exactly address_no,mynumber,name");
    assert_int_equal(check_text(IMPORT_VOUCHERS, "address_no,voucher_no,ticket_type\n"
                                "A001,0000000001,1\n", NULL, &r, &res), 0);
    assert_int_equal(r.n, 1);
    expect(&r, 0, 1, "-", "(the vouchers format)");
    assert_int_equal(check_text(IMPORT_VOUCHERS, "", NULL, &r, &res), 0);
    expect(&r, 0, 1, "-", "the file is empty");
    assert_int_equal(check_text(IMPORT_VOUCHERS, HV, NULL, &r, &res), 0);
    expect(&r, 0, 1, "-", "no data rows");
    assert_int_equal(res.outcome, IMPORT_REFUSED);
}

/* R2.6: a UTF-8 BOM, CRLF, quoted commas and CP932 text (髙, ①, half-width
 * katakana) pass the check. */
static void
test_R2_6_encodings_pass(void **state)
{
    static const char utf8[] =
        "\xef\xbb\xbf" "address_no,mynumber,name,kana,birth_date,sex,postcode,address,"
        "katagaki,household_no,relationship,became_date,ceased_date,movement_type,"
        "movement_date,prev_address,next_address,alias\r\n"
        "A001,,髙橋　一郎,タカハシ　イチロウ,1950-04-10,1,100-0001,\"東京都千代田区1-1, "
        "ﾊﾝｶｸﾏﾝｼｮﾝ\",①号室,,,,,,,,,\r\n";
    /* The same row in CP932, header in ASCII. */
    static const char cp932[] =
        HR "A001,,\xfb\xfc\x8b\xb4\x81\x40\x88\xea\x98\x59,\x83\x5e\x83\x4a\x83\x6e\x83"
        "\x56\x81\x40\x83\x43\x83\x60\x83\x8d\x83\x45,1950-04-10,1,,\xca\xdd\xb6\xb8,"
        "\x87\x40,,,,,,,,,\r\n";
    struct import_opts o;
    struct import_result res;
    struct report r;

    (void)state;
    assert_int_equal(check_text(IMPORT_RESIDENTS, utf8, NULL, &r, &res), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(res.outcome, IMPORT_CHECKED);
    assert_int_equal(res.rows, 1);
    opts_for(&o, IMPORT_RESIDENTS, &r);
    o.encoding = CSVIN_CP932;
    assert_int_equal(import_check_mem(cp932, sizeof(cp932) - 1, &o, NULL, &res), 0);
    assert_int_equal(r.n, 0);
    assert_int_equal(res.outcome, IMPORT_CHECKED);
    /* The CP932 file read as UTF-8: named, with the hint. */
    o.encoding = CSVIN_UTF8;
    assert_int_equal(import_check_mem(cp932, sizeof(cp932) - 1, &o, NULL, &res), 0);
    assert_int_equal(res.outcome, IMPORT_REFUSED);
    expect(&r, 0, 2, "name", "is not valid UTF-8 (is the file CP932? see --encoding)");
}

/* ---- fake tenant lookups ------------------------------------------------- */

/* Residents R1 (id 1, born 1950), R2 (id 2, died 2022-01-31), R3 (id 3,
 * moved out 2021-12-01), R4 (id 4, two comirnaty doses recorded); voucher
 * 0000000001 issued to R1; individual number MN2 held already. */
static int
fk_resident_id(void *arg, const char *a, int64_t *id)
{
    (void)arg;
    if (strlen(a) == 2 && a[0] == 'R' && a[1] >= '1' && a[1] <= '4') {
        *id = a[1] - '0';
        return 1;
    }
    return strcmp(a, "FAIL") == 0 ? -1 : 0;
}

static int
fk_facts(void *arg, int64_t id, struct import_facts *out)
{
    (void)arg;
    memset(out, 0, sizeof(*out));
    snprintf(out->birth_date, sizeof(out->birth_date), "1950-04-10");
    if (id == 2)
        snprintf(out->deceased_date, sizeof(out->deceased_date), "2022-01-31");
    if (id == 3)
        snprintf(out->moved_out_date, sizeof(out->moved_out_date), "2021-12-01");
    return 1;
}

static int
fk_doses(void *arg, int64_t id, struct import_dose *out, size_t max, size_t *n)
{
    (void)arg;
    *n = 0;
    if (id == 4 && max >= 2) {
        out[0] = (struct import_dose){ "covid-comirnaty", 1, "2021-06-01" };
        out[1] = (struct import_dose){ "covid-comirnaty", 2, "2021-06-22" };
        *n = 2;
    }
    return 0;
}

static int
fk_mynumber(void *arg, const char *mn)
{
    (void)arg;
    return strcmp(mn, MN2) == 0;
}

static int
fk_voucher(void *arg, const char *no, int64_t *rid)
{
    (void)arg;
    if (strcmp(no, "0000000001") != 0)
        return 0;
    *rid = 1;
    return 1;
}

static const struct import_lookup fake = {
    fk_resident_id, fk_facts, fk_doses, fk_mynumber, fk_voucher, NULL
};

/* R2.6: rows that conflict with what the tenant holds: an address number
 * or individual number already there. */
static void
test_R2_6_conflicts_with_the_tenant(void **state)
{
    static const char file[] = HR
        "R1,,山田　太郎,,1950-04-10,1,,,,,,,,,,,,\n"
        "N1," MN2 ",山田　花子,,1950-04-10,2,,,,,,,,,,,,\n"
        "N2," MN3 ",山田　次郎,,1950-04-10,1,,,,,,,,,,,,\n";
    struct import_result res;
    struct report r;

    (void)state;
    assert_int_equal(check_text(IMPORT_RESIDENTS, file, &fake, &r, &res), 0);
    assert_int_equal(r.n, 2);
    expect(&r, 0, 2, "address_no", "already exists in the tenant");
    expect(&r, 1, 3, "mynumber", "a resident with this individual number already exists");
    /* A failing lookup is an error, not a verdict. */
    assert_int_equal(check_text(IMPORT_RESIDENTS, HR "FAIL,,山田　太郎,,1950-04-10,1,,,,,,,,,,,,\n",
                                &fake, &r, &res), -1);
    assert_int_equal(res.outcome, IMPORT_FAILED);
    assert_true(strstr(res.error, "address numbers") != NULL);
}

/* R2.6, R2.4: vouchers: the resident must exist, numbers are 10 digits,
 * unique in the file and in the tenant, ticket type 1, a real date. */
static void
test_R2_6_vouchers(void **state)
{
    static const char file[] = HV
        "R1,0000000002,1,2021-04-01\n"      /* 2 ok */
        "X9,0000000003,1,2021-04-01\n"      /* 3 unknown resident */
        "R2,000000004,1,2021-04-01\n"       /* 4 9 digits */
        "R2,0000000001,1,2021-04-01\n"      /* 5 taken in the tenant */
        "R3,0000000002,2,2025-01-01\n";     /* 6 repeat, ticket, future */
    struct import_result res;
    struct report r;

    (void)state;
    assert_int_equal(check_text(IMPORT_VOUCHERS, file, &fake, &r, &res), 0);
    expect(&r, 0, 3, "address_no", "no resident with this address number");
    expect(&r, 1, 4, "voucher_no", "the voucher number must be exactly 10 digits");
    expect(&r, 2, 5, "voucher_no", "already issued in the tenant");
    expect(&r, 3, 6, "ticket_type", "must be 1");
    expect(&r, 4, 6, "issued_date", "is in the future");
    expect(&r, 5, 6, "voucher_no", "the same voucher number is on line 2");
    assert_int_equal(r.n, 6);
}

/* R2.6, R2.3, R2.5: vaccinations: fields, the voucher's owner, repeats in
 * the file, and the rules against what the store holds and the rest of
 * the file, whatever the order of the rows. */
static void
test_R2_6_vaccinations_and_rules(void **state)
{
    static const char file[] = HX
        "R1,covid-comirnaty,2,2021-06-22,FA2,,会場A,,\n"               /* 2 ok (dose 1 below) */
        "R1,covid-comirnaty,1,2021-06-01,FA1,0000000001,会場A,,\n"     /* 3 ok */
        "R2,covid-comirnaty,1,2022-02-01,FA3,,会場A,,\n"               /* 4 after death */
        "R3,covid-spikevax,1,2022-01-10,M1,,会場A,,\n"                 /* 5 after move-out */
        "R4,covid-spikevax,3,2021-07-01,M2,,会場A,,\n"                 /* 6 interval */
        "R4,covid-comirnaty,2,2021-06-22,FA4,,会場A,,\n"               /* 7 already recorded */
        "R1,covid-comirnaty,2,2021-06-23,FA5,,会場A,,\n"               /* 8 repeat of 2 */
        "R2,b-influenza,1,2020-10-01,B1,0000000001,会場B,,\n"          /* 9 voucher of R1 */
        "X9,a-bcg,9,2021-01-01,L1,,会場,,\n"                           /* 10 resident, dose */
        "R1,covid-comirnaty,4,2021-08-01,FA6,,会場A,,\n";              /* 11 out of order */
    struct import_result res;
    struct report r;

    (void)state;
    assert_int_equal(check_text(IMPORT_VACCINATIONS, file, &fake, &r, &res), 0);
    assert_int_equal(res.outcome, IMPORT_REFUSED);
    /* Streamed problems first, in line order ... */
    expect(&r, 0, 9, "voucher_no", "issued to another resident");
    expect(&r, 1, 10, "address_no", "no resident with this address number");
    expect(&r, 2, 10, "dose", "outside the doses this vaccine allows");
    /* ... then repeats and rules, in line order. */
    expect(&r, 3, 4, "date", "after the resident's date of death");
    expect(&r, 4, 5, "date", "after the resident moved out");
    expect(&r, 5, 6, "date", "interval");
    expect(&r, 6, 7, "dose", "already");
    expect(&r, 7, 8, "dose", "the same dose of this vaccine's series is on line 2");
    expect(&r, 8, 11, "dose", "out of order");
    assert_int_equal(r.n, 9);
    /* Without the tenant only the file is checked: repeats, not rules. */
    assert_int_equal(check_text(IMPORT_VACCINATIONS, file, NULL, &r, &res), 0);
    expect(&r, 0, 10, "dose", "outside the doses");
    expect(&r, 1, 8, "dose", "the same dose of this vaccine's series is on line 2");
    assert_int_equal(r.n, 2);
}

struct prog {
    uint64_t calls, last_bytes, last_rows, total;
};

static void
on_progress(void *arg, const struct import_progress *p)
{
    struct prog *g = arg;

    assert_int_equal(p->phase, IMPORT_PHASE_CHECK);
    assert_true(p->bytes >= g->last_bytes);
    g->calls++;
    g->last_bytes = p->bytes;
    g->last_rows = p->rows;
    g->total = p->total;
}

/* R2.6: progress (bytes of total, rows) from a descriptor; the sink can
 * stop the check early. */
static void
test_R2_6_progress_and_stop(void **state)
{
    char path[512];
    struct import_opts o;
    struct import_result res;
    struct report r;
    struct prog g = { 0, 0, 0, 0 };
    FILE *f;
    long size;
    int fd;

    (void)state;
    snprintf(path, sizeof(path), "%s/test_import.XXXXXX", MAMORI_TEST_BINARY_DIR);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w+");
    assert_non_null(f);
    fputs(HR, f);
    for (int i = 0; i < 30000; i++)
        fprintf(f, "A%05d,,山田　太郎,ヤマダ　タロウ,1950-04-10,%d,,,,,,,,,,,,\n", i,
                i % 1000 == 7 ? 3 : 1);
    fflush(f);
    size = ftell(f);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    opts_for(&o, IMPORT_RESIDENTS, &r);
    o.progress = on_progress;
    o.progress_arg = &g;
    assert_int_equal(import_check_fd(fd, &o, NULL, &res), 0);
    assert_true(g.calls >= 20);         /* 64 KiB chunks of ~1.7 MB */
    assert_int_equal(g.last_bytes, (uint64_t)size);
    assert_int_equal(g.total, (uint64_t)size);
    assert_int_equal(res.rows, 30000);
    assert_int_equal(r.n, 30);
    assert_int_equal(res.bad_lines, 30);
    /* Stop after the third problem. */
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    opts_for(&o, IMPORT_RESIDENTS, &r);
    r.stop_after = 3;
    assert_int_equal(import_check_fd(fd, &o, NULL, &res), 0);
    assert_int_equal(res.outcome, IMPORT_REFUSED);
    assert_int_equal(r.n, 3);
    fclose(f);
    unlink(path);
}

/* ---- set-up ------------------------------------------------------------- */

static int
setup_catalogue(void **state)
{
    char err[256];

    (void)state;
    if (vrs_catalogue_load(CATALOGUE, &cat, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int
teardown_catalogue(void **state)
{
    (void)state;
    vrs_catalogue_free(cat);
    cat = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest check_tests[] = {
        cmocka_unit_test(test_R2_6_every_bad_line_reported),
        cmocka_unit_test(test_R2_6_header),
        cmocka_unit_test(test_R2_6_encodings_pass),
        cmocka_unit_test(test_R2_6_conflicts_with_the_tenant),
        cmocka_unit_test(test_R2_6_vouchers),
        cmocka_unit_test(test_R2_6_vaccinations_and_rules),
        cmocka_unit_test(test_R2_6_progress_and_stop),
    };

    return cmocka_run_group_tests_name("import check (pass 1)", check_tests,
                                       setup_catalogue, teardown_catalogue);
}
