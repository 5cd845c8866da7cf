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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <iconv.h>
#include <pwd.h>
#include <sodium.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/log.h"
#include "config/config.h"
#include "common/util.h"
#include "crypto/keyring.h"
#include "store/store.h"
#include "store/store_records.h"
#include "vrs/catalogue.h"
#include "vrs/export.h"
#include "vrs/import.h"
#include "store_fixture.h"

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
        "A003,12345,山田　　次郎,ﾔﾏﾀﾞ　ｼﾞﾛｳ,1960-01-01,1,,,,,,,,,,,,\n"               /* 4 */
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
    /* The UTF-8 file (with its BOM) read as CP932: one problem naming it. */
    opts_for(&o, IMPORT_RESIDENTS, &r);
    o.encoding = CSVIN_CP932;
    assert_int_equal(import_check_mem(utf8, sizeof(utf8) - 1, &o, NULL, &res), 0);
    assert_int_equal(res.outcome, IMPORT_REFUSED);
    assert_int_equal(r.n, 1);
    expect(&r, 0, 1, "-", "the file is UTF-8, not CP932 (see --encoding)");
    /* The CP932 file read as UTF-8: named, with the hint. */
    opts_for(&o, IMPORT_RESIDENTS, &r);
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

/* ---- pure parts of the export ------------------------------------------ */

/* R2.7: the VRS ledger layout (予防接種台帳向け出力): 個別宛名番号, then
 * eight columns per dose. */
static void
test_R2_7_ledger_header(void **state)
{
    char h[4096];

    (void)state;
    assert_int_equal(export_ledger_header(2, h, sizeof(h)), 0);
    assert_string_equal(h,
        "個別宛名番号,"
        "1回目接種履歴登録日時,1回目接種日,1回目券番号,1回目接種自治体コード,"
        "1回目接種会場名,1回目接種医師名,1回目ワクチンメーカー,1回目ワクチンロット番号,"
        "2回目接種履歴登録日時,2回目接種日,2回目券番号,2回目接種自治体コード,"
        "2回目接種会場名,2回目接種医師名,2回目ワクチンメーカー,2回目ワクチンロット番号");
    assert_int_equal(export_ledger_header(99, h, sizeof(h)), -1);  /* too small */
    assert_int_equal(export_ledger_header(100, h, sizeof(h)), -1);
    /* Registration time in JST: 15:00 UTC is midnight the next day. */
    assert_int_equal(export_jst_stamp("2021-12-31T15:00:00.123Z", h), 0);
    assert_string_equal(h, "20220101000000");
    assert_int_equal(export_jst_stamp("2021-06-01T01:02:03Z", h), 0);
    assert_string_equal(h, "20210601100203");
    assert_int_equal(export_jst_stamp("2021-06-01", h), -1);
    /* No replica header holds the individual number (R2.2). */
    for (int k = EXPORT_RESIDENTS; k <= EXPORT_VACCINATIONS; k++)
        assert_null(strstr(export_header((enum export_kind)k), "mynumber"));
    assert_string_equal(export_header(EXPORT_RESIDENTS),
                        "address_no,name,kana,birth_date,sex,postcode,address,katagaki,"
                        "household_no,relationship,became_date,ceased_date,movement_type,"
                        "movement_date,prev_address,next_address,alias");
}

/* ---- store-backed: SQLite, and PostgreSQL with MAMORI_TEST_PG ------------- */

#define T1 "131016"                     /* 千代田区 */

struct fx {
    struct store_fx s;      /* T1, with its context ctx[0] */
    int             nfile;
};

static int
setup_store(void **state)
{
    static const char *const tenants[] = { T1 };
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    *state = f;
    store_fx_open(&f->s, "import", tenants, 1, STORE_FX_CTX);
    return 0;
}

static int
teardown_store(void **state)
{
    struct fx *f = *state;

    store_fx_close(&f->s);
    free(f);
    return 0;
}

#define BEGIN_CASE(f) \
    struct fx *f = *state; \
    do { if ((f)->s.skip) skip(); } while (0)

/* A file in the case's directory; returns an fd open for reading. */
static int
put_file(struct fx *f, const void *data, size_t len, char path[256])
{
    int fd;

    snprintf(path, 256, "%s/in%d.csv", f->s.dir, f->nfile++);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* UTF-8 -> CP932 with glibc's table (as the export does). */
static char *
to_cp932(const char *utf8, size_t *len)
{
    iconv_t cd = iconv_open("CP932", "UTF-8");
    size_t inleft = strlen(utf8), outleft = inleft + 1;
    char *out = malloc(outleft), *o = out, *in = (char *)utf8;

    assert_true(cd != (iconv_t)-1);
    assert_non_null(out);
    assert_true(iconv(cd, &in, &inleft, &o, &outleft) != (size_t)-1);
    iconv_close(cd);
    *len = (size_t)(o - out);
    return out;
}

static int
import_text(struct fx *f, enum import_kind kind, enum csvin_encoding enc, const char *text,
            size_t len, struct report *r, struct import_result *res)
{
    struct import_opts o;
    char path[256];
    int fd, rc;

    opts_for(&o, kind, r);
    o.encoding = enc;
    o.batch = 7;            /* several batches even in small files */
    fd = put_file(f, text, len, path);
    rc = import_run(f->s.ctx[0], fd, &o, res);
    close(fd);
    return rc;
}

#define IMPORT_OK(f, kind, text) do { \
        struct report r_; struct import_result res_; \
        if (import_text((f), (kind), CSVIN_UTF8, (text), strlen(text), &r_, &res_) != 0) \
            fail_msg("import refused: %s (%zu problems, first: line %llu %s %s)", \
                     res_.error, r_.n, r_.n ? (unsigned long long)r_.p[0].line : 0ULL, \
                     r_.n ? r_.p[0].column : "", r_.n ? r_.p[0].reason : ""); \
        assert_int_equal(res_.outcome, IMPORT_IMPORTED); \
    } while (0)

static uint64_t
residents_in(struct fx *f)
{
    struct store_counts c;

    assert_int_equal(store_counts(f->s.st, T1, &c), STORE_OK);
    return c.residents;
}

/* Collect an export in memory. */
struct buf {
    char  *p;
    size_t len, cap;
};

static int
buf_write(void *arg, const void *data, size_t n)
{
    struct buf *b = arg;

    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static void
export_to(struct fx *f, enum export_kind kind, enum csvout_encoding enc, struct buf *b,
          struct export_stats *st)
{
    struct export_opts o;
    char err[256];

    memset(b, 0, sizeof(*b));
    memset(&o, 0, sizeof(o));
    o.kind = kind;
    o.encoding = enc;
    o.crlf = true;
    o.catalogue = cat;
    o.page = 2;             /* several pages even with a few residents */
    if (export_run(f->s.ctx[0], &o, buf_write, b, st, err, sizeof(err)) != 0)
        fail_msg("export: %s", err);
    if (b->p == NULL)
        buf_write(b, "", 0);
}

#define R_A001 "A001," MN1 ",髙橋　一郎,タカハシ　イチロウ,1950-04-10,1,100-0001," \
               "東京都千代田区千代田1-1,ﾊﾝｶｸﾏﾝｼｮﾝ①号室,H001,世帯主,1950-04-10,,,,,,"
#define R_A002 "A002,,山田　花子,ヤマダ　ハナコ,1985-12-31,2,100-0002,\"東京都千代田区1-2, 3F\"," \
               "=1+1,H001,妻,2010-05-01,2023-03-01,転出,2023-03-01,,大阪府大阪市北区1-1,"
#define R_A003 "A003," MN3 ",佐藤　次郎,サトウ　ジロウ,1940-01-05,1,,東京都千代田区3-3,,H003," \
               "世帯主,1940-01-05,,,,,,"
/* The same rows as the replica writes them: no mynumber, =1+1 neutralised. */
#define X_A001 "A001,髙橋　一郎,タカハシ　イチロウ,1950-04-10,1,100-0001," \
               "東京都千代田区千代田1-1,ﾊﾝｶｸﾏﾝｼｮﾝ①号室,H001,世帯主,1950-04-10,,,,,,"
#define X_A002 "A002,山田　花子,ヤマダ　ハナコ,1985-12-31,2,100-0002,\"東京都千代田区1-2, 3F\"," \
               "'=1+1,H001,妻,2010-05-01,2023-03-01,転出,2023-03-01,,大阪府大阪市北区1-1,"

#define V_FILE HV "A001,0000000001,1,2021-04-01\nA003,0000000003,1,2021-04-01\n"
#define X_FILE HX \
    "A001,covid-comirnaty,1,2021-06-01,FA1234,0000000001,髙島屋①会場,ﾊﾝｶｸ医院,髙橋　一郎\n" \
    "A001,covid-comirnaty,2,2021-06-22,FA1235,,髙島屋①会場,ﾊﾝｶｸ医院,髙橋　一郎\n" \
    "A001,covid-spikevax,3,2022-01-10,M-0001,,\"会場, 二\",,医師　三郎\n" \
    "A001,b-influenza,1,2023-10-01,B1,,クリニック,,\n" \
    "A003,covid-comirnaty,1,2021-07-01,FA2000,0000000003,会場B,,医師　四郎\n"

/* R2.6: a file with bad lines imports nothing; the same file corrected
 * imports every row. */
static void
test_R2_6_store_refused_file_imports_nothing(void **state)
{
    BEGIN_CASE(f);
    static const char bad[] = HR R_A001 "\n" R_A003 "\nA004,,名無し　,,1950-02-30,1,,,,,,,,,,,,\n";
    struct import_result res;
    struct report r;

    assert_int_equal(import_text(f, IMPORT_RESIDENTS, CSVIN_UTF8, bad, strlen(bad), &r,
                                 &res), -1);
    assert_int_equal(res.outcome, IMPORT_REFUSED);
    assert_int_equal(r.n, 2);
    expect(&r, 0, 4, "name", "separated by one full-width space");
    expect(&r, 1, 4, "birth_date", "calendar date");
    assert_int_equal(residents_in(f), 0);
    IMPORT_OK(f, IMPORT_RESIDENTS, HR R_A001 "\n" R_A002 "\n" R_A003 "\n");
    assert_int_equal(residents_in(f), 3);
    /* Now the tenant has them: the same rows again are conflicts. */
    assert_int_equal(import_text(f, IMPORT_RESIDENTS, CSVIN_UTF8, HR R_A003 "\n",
                                 strlen(HR R_A003 "\n"), &r, &res), -1);
    expect(&r, 0, 2, "address_no", "already exists in the tenant");
    expect(&r, 1, 2, "mynumber", "already exists in the tenant");
}

/* R2.6: idempotent by content: the same bytes again (under another name)
 * change nothing and say when they were imported. */
static void
test_R2_6_store_reimport_changes_nothing(void **state)
{
    BEGIN_CASE(f);
    static const char file[] = HR R_A001 "\n" R_A003 "\n";
    struct import_result res, again;
    struct report r;

    assert_int_equal(import_text(f, IMPORT_RESIDENTS, CSVIN_UTF8, file, strlen(file), &r,
                                 &res), 0);
    assert_int_equal(res.outcome, IMPORT_IMPORTED);
    assert_int_equal(res.rows, 2);
    assert_int_equal(import_text(f, IMPORT_RESIDENTS, CSVIN_UTF8, file, strlen(file), &r,
                                 &again), 0);
    assert_int_equal(again.outcome, IMPORT_ALREADY);
    assert_int_equal(r.n, 0);           /* not even checked: no conflicts */
    assert_int_equal(strlen(again.when), 24);
    assert_memory_equal(res.sha256, again.sha256, 32);
    assert_int_equal(residents_in(f), 2);
    /* A dry run of a new file checks and writes nothing. */
    {
        struct import_opts o;
        char path[256];
        int fd;

        opts_for(&o, IMPORT_RESIDENTS, &r);
        o.dry_run = true;
        fd = put_file(f, HR R_A002 "\n", strlen(HR R_A002 "\n"), path);
        assert_int_equal(import_run(f->s.ctx[0], fd, &o, &res), 0);
        close(fd);
        assert_int_equal(res.outcome, IMPORT_CHECKED);
        assert_int_equal(residents_in(f), 2);
    }
}

struct changer {
    const char *path;
    off_t       at;
    bool        done;
    uint64_t    rows_written;
    int         phases;         /* bit per phase seen */
};

/* Called by pass 2 after its first chunk: change a byte further on. */
static void
change_file(void *arg, const struct import_progress *p)
{
    struct changer *c = arg;

    c->phases |= 1 << p->phase;
    if (p->phase != IMPORT_PHASE_WRITE)
        return;
    if (p->rows > c->rows_written)
        c->rows_written = p->rows;
    if (!c->done) {
        int fd = open(c->path, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "1", 1, c->at), 1);  /* 1950 -> 1951 */
        close(fd);
        c->done = true;
    }
}

/* R2.6: all or nothing: pass 2 fails after many batches were written (the
 * file changed under it) and none of them stays. */
static void
test_R2_6_store_failure_in_pass_2_rolls_back(void **state)
{
    BEGIN_CASE(f);
    struct import_opts o;
    struct import_result res;
    struct report r;
    struct changer ch = { NULL, 0, false, 0, 0 };
    char path[256], *text;
    size_t len = 0, cap = 4000 * 120 + 256;
    int fd;

    text = malloc(cap);
    assert_non_null(text);
    len = (size_t)snprintf(text, cap, "%s", HR);
    for (int i = 0; i < 4000; i++)
        len += (size_t)snprintf(text + len, cap - len, "B%05d,,山田　太郎,ヤマダ　タロウ,"
                                "1950-04-10,1,,,,,,,,,,,,\n", i);
    fd = put_file(f, text, len, path);
    ch.path = path;
    ch.at = (off_t)(len - strlen("0-04-10,1,,,,,,,,,,,,\n"));   /* last row's year */
    assert_int_equal(text[ch.at], '0');
    opts_for(&o, IMPORT_RESIDENTS, &r);
    o.batch = 50;
    o.progress = change_file;
    o.progress_arg = &ch;
    assert_int_equal(import_run(f->s.ctx[0], fd, &o, &res), -1);
    close(fd);
    free(text);
    assert_int_equal(res.outcome, IMPORT_FAILED);
    assert_non_null(strstr(res.error, "the file changed while it was being imported"));
    assert_int_equal(ch.phases, 7);             /* hash, check, write */
    assert_true(ch.rows_written > 1000);        /* batches were written ... */
    assert_int_equal(residents_in(f), 0);       /* ... and rolled back */
    /* The context is usable again. */
    IMPORT_OK(f, IMPORT_RESIDENTS, HR R_A001 "\n");
    assert_int_equal(residents_in(f), 1);
}

/* R2.6, R2.7: CP932 with 髙, ① and half-width katakana round-trips through
 * import and export byte for byte (the replica has no mynumber column). */
static void
test_R2_6_R2_7_cp932_round_trip(void **state)
{
    BEGIN_CASE(f);
    static const char res_in[] = HR R_A001 "\n" R_A002 "\n";
    static const char res_out[] =
        "address_no,name,kana,birth_date,sex,postcode,address,katagaki,household_no,"
        "relationship,became_date,ceased_date,movement_type,movement_date,prev_address,"
        "next_address,alias\r\n" X_A001 "\r\n" X_A002 "\r\n";
    static const char vac_in[] = HX
        "A001,covid-comirnaty,1,2021-06-01,FA1234,0000000001,髙島屋①会場,ﾊﾝｶｸ医院,髙橋　一郎\r\n"
        "A001,covid-comirnaty,2,2021-06-22,FA1235,,髙島屋①会場,ﾊﾝｶｸ医院,髙橋　一郎\r\n";
    struct import_result res;
    struct report r;
    struct buf b;
    size_t n, m;
    char *cp, *want;

    /* Inputs written with CRLF except the header line of HR; make it all CRLF. */
    char crlf[2048];
    size_t k = 0;
    for (const char *p = res_in; *p != '\0'; p++) {
        if (*p == '\n')
            crlf[k++] = '\r';
        crlf[k++] = *p;
    }
    crlf[k] = '\0';
    cp = to_cp932(crlf, &n);
    assert_int_equal(import_text(f, IMPORT_RESIDENTS, CSVIN_CP932, cp, n, &r, &res), 0);
    free(cp);
    IMPORT_OK(f, IMPORT_VOUCHERS, HV "A001,0000000001,1,2021-04-01\n");
    cp = to_cp932(vac_in, &n);
    assert_int_equal(import_text(f, IMPORT_VACCINATIONS, CSVIN_CP932, cp, n, &r, &res), 0);

    export_to(f, EXPORT_VACCINATIONS, CSVOUT_CP932, &b, NULL);
    {
        /* The header line of HX ends in LF in vac_in; the export writes CRLF. */
        char *want_utf8 = malloc(strlen(vac_in) + 2);
        assert_non_null(want_utf8);
        snprintf(want_utf8, strlen(vac_in) + 2, "%.*s\r%s", (int)strlen(HX) - 1, vac_in,
                 vac_in + strlen(HX) - 1);
        want = to_cp932(want_utf8, &m);
        free(want_utf8);
    }
    assert_int_equal(b.len, m);
    assert_memory_equal(b.p, want, m);
    free(want);
    free(cp);
    free(b.p);

    export_to(f, EXPORT_RESIDENTS, CSVOUT_CP932, &b, NULL);
    want = to_cp932(res_out, &m);
    assert_int_equal(b.len, m);
    assert_memory_equal(b.p, want, m);
    free(want);
    free(b.p);
}

/* R2.2, R2.7: no export holds an individual number, and a formula-like
 * cell is neutralised in every export. */
static void
test_R2_2_R2_7_exports_without_individual_numbers(void **state)
{
    BEGIN_CASE(f);
    struct export_stats st;
    struct buf b;

    IMPORT_OK(f, IMPORT_RESIDENTS, HR R_A001 "\n" R_A002 "\n" R_A003 "\n");
    IMPORT_OK(f, IMPORT_VOUCHERS, V_FILE);
    IMPORT_OK(f, IMPORT_VACCINATIONS, HX "A003,covid-comirnaty,1,2021-07-01,FA2000,,"
              "\"=HYPERLINK(\"\"x\"\")\",,-1\n");
    for (int k = EXPORT_RESIDENTS; k <= EXPORT_LEDGER; k++) {
        export_to(f, (enum export_kind)k, CSVOUT_UTF8, &b, &st);
        assert_null(strstr(b.p, MN1));
        assert_null(strstr(b.p, MN3));
        assert_null(strstr(b.p, "mynumber"));
        assert_null(strstr(b.p, ",=1+1"));
        assert_null(strstr(b.p, ",=HYPERLINK"));
        assert_null(strstr(b.p, ",-1"));
        if (k == EXPORT_RESIDENTS) {
            assert_int_equal(st.rows, 3);
            assert_non_null(strstr(b.p, ",'=1+1,"));
        }
        if (k == EXPORT_VOUCHERS) {
            assert_int_equal(st.rows, 2);
            assert_non_null(strstr(b.p, "A003,0000000003,1,2021-04-01\r\n"));
        }
        if (k == EXPORT_VACCINATIONS) {
            assert_int_equal(st.rows, 1);
            assert_non_null(strstr(b.p, ",\"'=HYPERLINK(\"\"x\"\")\",,'-1\r\n"));
        }
        assert_int_equal(st.bytes, b.len);
        free(b.p);
    }
}

/* R2.7: the ledger: one row per resident with a COVID-19 dose, eight
 * columns per dose up to the highest dose present, routine vaccines and
 * residents without a dose left out. */
static void
test_R2_7_ledger_rows(void **state)
{
    BEGIN_CASE(f);
    struct export_stats st;
    struct buf b;
    char hdr[4096], *row, *end;
    const char *cells[32];
    size_t n = 0;

    IMPORT_OK(f, IMPORT_RESIDENTS, HR R_A001 "\n" R_A002 "\n" R_A003 "\n");
    IMPORT_OK(f, IMPORT_VOUCHERS, V_FILE);
    IMPORT_OK(f, IMPORT_VACCINATIONS, X_FILE);
    export_to(f, EXPORT_LEDGER, CSVOUT_UTF8, &b, &st);
    assert_int_equal(st.max_dose, 3);
    assert_int_equal(st.rows, 2);               /* A001, A003; not A002 */
    assert_int_equal(export_ledger_header(3, hdr, sizeof(hdr)), 0);
    assert_int_equal(strncmp(b.p, hdr, strlen(hdr)), 0);
    assert_int_equal(b.p[strlen(hdr)], '\r');
    row = b.p + strlen(hdr) + 2;
    end = strstr(row, "\r\n");
    assert_non_null(end);
    *end = '\0';
    /* Split A001's row (no quoted commas except "会場, 二"). */
    for (char *p = row; n < 32;) {
        cells[n++] = p;
        if (*p == '"') {
            p = strchr(p + 1, '"');
            assert_non_null(p);
            p++;
        } else {
            p = p + strcspn(p, ",");
        }
        if (*p == '\0')
            break;
        *p++ = '\0';
    }
    assert_int_equal(n, 25);
    assert_string_equal(cells[0], "A001");
    assert_int_equal(strlen(cells[1]), 14);     /* YYYYMMDDHHMMSS (JST) */
    assert_string_equal(cells[2], "20210601");
    assert_string_equal(cells[3], "0000000001");
    assert_string_equal(cells[4], T1);
    assert_string_equal(cells[5], "髙島屋①会場");
    assert_string_equal(cells[6], "髙橋　一郎");
    assert_string_equal(cells[7], "ファイザー/BioNTech");
    assert_string_equal(cells[8], "FA1234");
    assert_string_equal(cells[10], "20210622");
    assert_string_equal(cells[11], "");
    assert_string_equal(cells[18], "20220110");
    assert_string_equal(cells[21], "\"会場, 二\"");
    assert_string_equal(cells[23], "モデルナ");
    assert_string_equal(cells[24], "M-0001");
    assert_null(strstr(end + 2, "A002"));
    assert_non_null(strstr(end + 2, "A003,"));
    free(b.p);
}

/* R2.6, R2.3: the rules see what the store holds: a dose already
 * recorded, and a dose after the resident moved out, are refused. */
static void
test_R2_6_store_rules_against_recorded_doses(void **state)
{
    BEGIN_CASE(f);
    static const char more[] = HX
        "A001,covid-comirnaty,2,2021-06-23,FA9,,会場,,\n"       /* 2 already recorded */
        "A002,covid-comirnaty,1,2023-04-01,FA8,,会場,,\n"       /* 3 after 転出 */
        "A001,covid-comirnaty,4,2022-06-01,FA7,0000000003,会場,,\n"; /* 4 voucher of A003 */
    struct import_result res;
    struct report r;

    IMPORT_OK(f, IMPORT_RESIDENTS, HR R_A001 "\n" R_A002 "\n" R_A003 "\n");
    IMPORT_OK(f, IMPORT_VOUCHERS, V_FILE);
    IMPORT_OK(f, IMPORT_VACCINATIONS, X_FILE);
    assert_int_equal(import_text(f, IMPORT_VACCINATIONS, CSVIN_UTF8, more, strlen(more),
                                 &r, &res), -1);
    assert_int_equal(res.outcome, IMPORT_REFUSED);
    expect(&r, 0, 4, "voucher_no", "issued to another resident");
    expect(&r, 1, 2, "dose", "already");
    expect(&r, 2, 3, "date", "moved out");
    assert_int_equal(r.n, 3);
}

/* ---- mamori import --------------------------------------------------------- */

struct clifx {
    char base[64];
    char data[300];
    char conf[340];
    char file[340];
    char report[340];
    char audit[PATH_MAX];
};

/* Run a command as main() does, audit hook included; stdout and stderr
 * into *out (malloc'd). */
static int
cli_run(char **out, int argc, char **argv)
{
    char path[] = "/tmp/mamori-imp-out-XXXXXX";
    int tmp = mkstemp(path), so, se, rc;
    char *text = NULL;
    size_t len;

    assert_true(tmp >= 0);
    fflush(stdout);
    fflush(stderr);
    so = dup(STDOUT_FILENO);
    se = dup(STDERR_FILENO);
    assert_int_equal(dup2(tmp, STDOUT_FILENO), STDOUT_FILENO);
    assert_int_equal(dup2(tmp, STDERR_FILENO), STDERR_FILENO);
    close(tmp);
    if (strcmp(argv[0], "init") == 0)
        rc = cmd_init(argc, argv);
    else if (strcmp(argv[0], "tenant") == 0)
        rc = cmd_tenant(argc, argv);
    else
        rc = cmd_import(argc, argv);
    rc = cli_audit_command(argc, argv, rc);
    fflush(stdout);
    fflush(stderr);
    assert_int_equal(dup2(so, STDOUT_FILENO), STDOUT_FILENO);
    assert_int_equal(dup2(se, STDERR_FILENO), STDERR_FILENO);
    close(so);
    close(se);
    assert_int_equal(util_read_file(path, 1 << 20, &text, &len), 0);
    unlink(path);
    if (getenv("MAMORI_TEST_VERBOSE") != NULL)
        fprintf(stderr, "--- %s -> %d\n%s", argv[0], rc, text);
    if (out != NULL)
        *out = text;
    else
        free(text);
    return rc;
}

#define CLI(out, ...) \
    cli_run((out), (int)(sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *)), \
            (char *[]){ __VA_ARGS__, NULL })

static void
cli_setup(struct clifx *c)
{
    struct mamori_config cfg;
    const char *user = "root";
    char err[512];

    snprintf(c->base, sizeof(c->base), "/tmp/mamori-cliimp-XXXXXX");
    assert_non_null(mkdtemp(c->base));
    snprintf(c->data, sizeof(c->data), "%s/data", c->base);
    snprintf(c->conf, sizeof(c->conf), "%s/mamorid.conf", c->data);
    snprintf(c->file, sizeof(c->file), "%s/residents.csv", c->base);
    snprintf(c->report, sizeof(c->report), "%s/report.txt", c->base);
    /* As root, init hands the tree to --user, which must exist. */
    if (geteuid() == 0 && getpwnam("nobody") != NULL)
        user = "nobody";
    else if (geteuid() != 0)
        user = getpwuid(geteuid())->pw_name;
    assert_int_equal(CLI(NULL, "init", "--user", (char *)user, "--internal-listen",
                         "127.0.0.1:0", "--public-listen", "127.0.0.1:0", c->data),
                     CLI_OK);
    assert_int_equal(CLI(NULL, "tenant", "create", "-c", c->conf, T1), CLI_OK);
    assert_int_equal(config_load(c->conf, &cfg, err, sizeof(err)), 0);
    snprintf(c->audit, sizeof(c->audit), "%s", cfg.audit_dir);
}

/* Every audit log segment (audit.dir/seg-*.log, docs/audit.md), joined. */
static char *
read_audit(const struct clifx *c)
{
    DIR *d = opendir(c->audit);
    struct dirent *e;
    char *all = calloc(1, 1);
    size_t n = 0;

    assert_non_null(d);
    assert_non_null(all);
    while ((e = readdir(d)) != NULL) {
        char path[PATH_MAX + 300], *text;
        size_t len, k = strlen(e->d_name);

        if (k < 4 || strcmp(e->d_name + k - 4, ".log") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", c->audit, e->d_name);
        assert_int_equal(util_read_file(path, 1 << 22, &text, &len), 0);
        {
            char *grown = realloc(all, n + len + 1);
            assert_non_null(grown);
            all = grown;
        }
        memcpy(all + n, text, len + 1);
        n += len;
        free(text);
    }
    closedir(d);
    return all;
}

static void
cli_file(const struct clifx *c, const char *text)
{
    int fd = open(c->file, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void
contains(const char *text, const char *needle, bool want)
{
    if ((strstr(text, needle) != NULL) != want)
        fail_msg("\"%s\" %s in:\n%s", needle, want ? "missing" : "found", text);
}

/* R2.6, R7.7, R1.3: `mamori import`: every bad line in the report file
 * (mode 0600), exit 1 and nothing imported; then the good file imported
 * (exit 0), again "already imported" (exit 0); each run on the audit
 * record with its outcome and counts; no value anywhere in the output,
 * the report or the audit log. */
static void
test_R2_6_cli_import(void **state)
{
    static const char *const values[] = { MN1, MN3, "髙橋", "タカハシ", "千代田1-1",
                                          "1950-04-10", "123456789017", NULL };
    struct clifx c = { "", "", "", "", "", "" };
    struct stat sb;
    char *out = NULL, *rep = NULL, *log = NULL, cmd[128];
    size_t len;

    (void)state;
    cli_setup(&c);
    cli_file(&c, HR R_A001 "\n" "A003,123456789017,佐藤　次郎,,1940-01-05,1,,,,,,,,,,,,\n");
    assert_int_equal(CLI(&out, "import", "-c", c.conf, "--tenant", T1, "--kind",
                         "residents", "--report", c.report, c.file), CLI_FAIL);
    contains(out, "refused: 1 problem on 1 line; nothing was imported", true);
    free(out);
    assert_int_equal(stat(c.report, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(util_read_file(c.report, 1 << 20, &rep, &len), 0);
    contains(rep, "line 3, mynumber: the individual number's check digit is wrong\n", true);
    for (size_t i = 0; values[i] != NULL; i++)
        contains(rep, values[i], false);
    free(rep);

    cli_file(&c, HR R_A001 "\n" R_A003 "\n");
    assert_int_equal(CLI(&out, "import", "-c", c.conf, "--tenant", T1, "--kind",
                         "residents", "--dry-run", c.file), CLI_OK);
    contains(out, "checked 2 residents: no problem found; nothing was imported", true);
    free(out);
    assert_int_equal(CLI(&out, "import", "-c", c.conf, "--tenant", T1, "--kind",
                         "residents", c.file), CLI_OK);
    contains(out, "imported 2 residents into tenant " T1, true);
    free(out);
    assert_int_equal(CLI(&out, "import", "-c", c.conf, "--tenant", T1, "--kind",
                         "residents", c.file), CLI_OK);
    contains(out, "already imported at ", true);
    contains(out, "nothing changed", true);
    free(out);
    /* Usage: a bad kind, a tenant that is not a code (not echoed). */
    assert_int_equal(CLI(&out, "import", "-c", c.conf, "--tenant", T1, "--kind",
                         "people", c.file), CLI_USAGE);
    free(out);
    assert_int_equal(CLI(&out, "import", "-c", c.conf, "--tenant", MN1, "--kind",
                         "residents", c.file), CLI_USAGE);
    contains(out, MN1, false);
    free(out);

    log = read_audit(&c);
    contains(log, "\"action\":\"cli.import\"", true);
    contains(log, "\"result\":\"refused\"", true);
    contains(log, "\"result\":\"imported\"", true);
    contains(log, "\"result\":\"already_imported\"", true);
    contains(log, "\"rows\":2", true);
    contains(log, "\"problems\":1", true);
    for (size_t i = 0; values[i] != NULL; i++)
        contains(log, values[i], false);
    free(log);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", c.base);
    assert_int_equal(system(cmd), 0);
    /* The key commands raised the log level to info; back to quiet. */
    log_setup("test_import", LOG_TO_STDERR, LOG_LVL_ERROR);
}

/* R7.1: the import is put on the audit record before it is committed;
 * when the record cannot be written nothing is committed, and the record
 * of a committed import precedes the command's own. */
static void
test_R7_1_cli_import_recorded_before_commit(void **state)
{
    struct clifx c = { "", "", "", "", "", "" };
    char *out = NULL, *log = NULL, lock[PATH_MAX + 8], cmd[128];
    const char *commit, *done;

    (void)state;
    cli_setup(&c);
    cli_file(&c, HR R_A001 "\n" R_A003 "\n");
    /* An audit log that cannot be written: its lock is not a file. */
    snprintf(lock, sizeof(lock), "%s/.lock", c.audit);
    unlink(lock);
    assert_int_equal(mkdir(lock, 0700), 0);
    assert_int_equal(CLI(&out, "import", "-c", c.conf, "--tenant", T1, "--kind",
                         "residents", c.file), CLI_FAIL);
    contains(out, "could not be put on the audit record; nothing was imported", true);
    free(out);
    assert_int_equal(rmdir(lock), 0);
    /* Nothing landed: the same file imports now, it is not "already imported". */
    assert_int_equal(CLI(&out, "import", "-c", c.conf, "--tenant", T1, "--kind",
                         "residents", c.file), CLI_OK);
    contains(out, "imported 2 residents into tenant " T1, true);
    free(out);
    log = read_audit(&c);
    commit = strstr(log, "\"action\":\"cli.import.commit\"");
    assert_non_null(commit);
    done = strstr(commit, "\"action\":\"cli.import\"");
    assert_non_null(done);                      /* after the commit record */
    free(log);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", c.base);
    assert_int_equal(system(cmd), 0);
    log_setup("test_import", LOG_TO_STDERR, LOG_LVL_ERROR);
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
        cmocka_unit_test(test_R2_7_ledger_header),
        cmocka_unit_test(test_R2_6_cli_import),
        cmocka_unit_test(test_R7_1_cli_import_recorded_before_commit),
    };
#define STORED(t) cmocka_unit_test_setup_teardown(t, setup_store, teardown_store)
    const struct CMUnitTest stored[] = {
        STORED(test_R2_6_store_refused_file_imports_nothing),
        STORED(test_R2_6_store_reimport_changes_nothing),
        STORED(test_R2_6_store_failure_in_pass_2_rolls_back),
        STORED(test_R2_6_R2_7_cp932_round_trip),
        STORED(test_R2_2_R2_7_exports_without_individual_numbers),
        STORED(test_R2_7_ledger_rows),
        STORED(test_R2_6_store_rules_against_recorded_doses),
    };
    int failed;

    if (sodium_init() < 0 || setup_catalogue(NULL) != 0)
        return 1;
    log_setup("test_import", LOG_TO_STDERR, LOG_LVL_ERROR);
    failed = cmocka_run_group_tests_name("import check (pass 1)", check_tests, NULL, NULL);
    failed += STORE_FX_RUN("import/export sqlite", "import/export postgresql", stored,
                           STORE_FX_PG_IN_CI);
    teardown_catalogue(NULL);
    return failed != 0;
}
