/*
 * test_vrs.c - the pure logic of vaccination records (src/vrs/): the
 * vaccine catalogue (R2.3), voucher lines and numbers (R2.4) and the
 * rules a vaccination must pass before it is recorded (R2.3, R2.5).
 *
 * The rule tests load a small crafted catalogue, so that each boundary
 * they pin (an interval of 20 days, a minimum age of 2 months) stays the
 * one written here whatever the shipped data says; the shipped file has
 * tests of its own.  All residents and vouchers are synthetic (R9.4).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vrs/catalogue.h"
#include "vrs/rules.h"
#include "vrs/voucher.h"

#define SHIPPED_CATALOGUE MAMORI_TEST_SOURCE_DIR "/data/vaccines/catalogue.csv"
#define SHIPPED_ROWS      21

#define HDR "code,category,series,disease_ja,product_ja,product_en,maker_ja," \
            "max_dose,min_interval_days,min_age_months,source\n"

/* ---- temp files -------------------------------------------------------- */

struct tmpfile {
    char dir[512];
    char path[600];
};

static void
tmp_write(struct tmpfile *t, const char *data, size_t len)
{
    FILE *f;

    if (t->dir[0] == '\0') {
        snprintf(t->dir, sizeof(t->dir), "%s/test_vrs.XXXXXX",
                 MAMORI_TEST_BINARY_DIR);
        assert_non_null(mkdtemp(t->dir));
        /* The real name, so messages read as they would in production. */
        snprintf(t->path, sizeof(t->path), "%s/catalogue.csv", t->dir);
    }
    f = fopen(t->path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void
tmp_remove(struct tmpfile *t)
{
    if (t->dir[0] == '\0')
        return;
    unlink(t->path);
    rmdir(t->dir);
    t->dir[0] = '\0';
}

static struct vrs_catalogue *
load_text(const char *data)
{
    struct tmpfile t = { "", "" };
    struct vrs_catalogue *c = NULL;
    char err[256];

    tmp_write(&t, data, strlen(data));
    if (vrs_catalogue_load(t.path, &c, err, sizeof(err)) != 0)
        fail_msg("crafted catalogue refused: %s", err);
    tmp_remove(&t);
    return c;
}

/* Loading `data` must fail with a message containing `want`. */
static void
expect_refused_n(const char *data, size_t len, const char *want)
{
    struct tmpfile t = { "", "" };
    struct vrs_catalogue *c = (struct vrs_catalogue *)&t;     /* poison */
    char err[256];

    tmp_write(&t, data, len);
    memset(err, 'x', sizeof(err));
    if (vrs_catalogue_load(t.path, &c, err, sizeof(err)) == 0)
        fail_msg("accepted a catalogue that should fail with \"%s\"", want);
    assert_null(c);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    tmp_remove(&t);
}

static void
expect_refused(const char *data, const char *want)
{
    expect_refused_n(data, strlen(data), want);
}

/* ---- catalogue (R2.3) -------------------------------------------------- */

static const struct vrs_vaccine *
must_find(const struct vrs_catalogue *c, const char *code)
{
    const struct vrs_vaccine *v = vrs_catalogue_lookup(c, code);

    if (v == NULL)
        fail_msg("%s missing", code);
    return v;
}

/* R2.3: the shipped catalogue loads and holds every code other engineers
 * generate records against, each in its category. */
static void
test_R2_3_catalogue_shipped_has_stable_codes(void **state)
{
    static const struct {
        const char *code, *product_ja, *maker_ja;
    } covid[] = {
        { "covid-comirnaty", "コミナティ", "ファイザー" },
        { "covid-spikevax", "スパイクバックス", "モデルナ" },
        { "covid-vaxzevria", "バキスゼブリア", "アストラゼネカ" },
        { "covid-nuvaxovid", "ヌバキソビッド", "武田" },
        { "covid-jcovden", "ジェコビデン", "ヤンセン" },
        { "covid-daichirona", "ダイチロナ", "第一三共" },
        { "covid-kostaive", "コスタイベ", "Meiji Seika ファルマ" },
    };
    static const char *const routine_a[] = {
        "a-dpt-ipv", "a-dpt-ipv-hib", "a-hib", "a-pcv", "a-hepb", "a-bcg",
        "a-mr", "a-varicella", "a-je", "a-hpv", "a-rota"
    };
    static const char *const routine_b[] = {
        "b-influenza", "b-ppsv23", "b-covid"
    };
    struct vrs_catalogue *c = NULL;
    char err[256];

    (void)state;
    if (vrs_catalogue_load(SHIPPED_CATALOGUE, &c, err, sizeof(err)) != 0)
        fail_msg("shipped catalogue refused: %s", err);
    assert_int_equal(vrs_catalogue_count(c), SHIPPED_ROWS);
    for (size_t i = 0; i < sizeof(covid) / sizeof(covid[0]); i++) {
        const struct vrs_vaccine *v = must_find(c, covid[i].code);

        assert_int_equal(v->category, VRS_CAT_COVID);
        /* Every COVID product numbers its doses in one series (交互接種). */
        assert_string_equal(v->series, "covid");
        assert_string_equal(v->product_ja, covid[i].product_ja);
        assert_non_null(strstr(v->maker_ja, covid[i].maker_ja));
        /* 接種回 1..7 and beyond: no upper bound on COVID doses. */
        assert_int_equal(v->max_dose, 0);
    }
    for (size_t i = 0; i < sizeof(routine_a) / sizeof(routine_a[0]); i++) {
        const struct vrs_vaccine *v = must_find(c, routine_a[i]);

        assert_int_equal(v->category, VRS_CAT_ROUTINE_A);
        assert_string_equal(vrs_category_name(v->category), "routine_a");
    }
    for (size_t i = 0; i < sizeof(routine_b) / sizeof(routine_b[0]); i++) {
        const struct vrs_vaccine *v = must_find(c, routine_b[i]);

        assert_int_equal(v->category, VRS_CAT_ROUTINE_B);
    }
    /* Entries come back in code order, each with its texts. */
    for (size_t i = 0; i < vrs_catalogue_count(c); i++) {
        const struct vrs_vaccine *v = vrs_catalogue_at(c, i);

        assert_non_null(v);
        assert_true(v->disease_ja[0] != '\0' && v->product_ja[0] != '\0' &&
                    v->product_en[0] != '\0');
        if (i > 0)
            assert_true(strcmp(vrs_catalogue_at(c, i - 1)->code, v->code) < 0);
    }
    assert_null(vrs_catalogue_at(c, SHIPPED_ROWS));
    vrs_catalogue_free(c);
}

/* R2.3: a crafted catalogue is read cell by cell: empty cells mean "none"
 * (0 or -1), quoted cells and CRLF line ends are accepted. */
static void
test_R2_3_catalogue_cells(void **state)
{
    struct vrs_catalogue *c;
    const struct vrs_vaccine *v;

    (void)state;
    c = load_text(HDR
        "a-hib,routine_a,a-hib,Hib感染症,\"ヒブ, 乾燥\",Hib,,4,20,2,t\r\n"
        "covid-x,covid,covid,新型コロナ,X,X,メーカー,,,,t");
    assert_int_equal(vrs_catalogue_count(c), 2);
    v = vrs_catalogue_lookup(c, "a-hib");
    assert_non_null(v);
    assert_string_equal(v->product_ja, "ヒブ, 乾燥");
    assert_string_equal(v->maker_ja, "");
    assert_int_equal(v->max_dose, 4);
    assert_int_equal(v->min_interval_days, 20);
    assert_int_equal(v->min_age_months, 2);
    v = vrs_catalogue_lookup(c, "covid-x");
    assert_non_null(v);
    assert_int_equal(v->max_dose, 0);
    assert_int_equal(v->min_interval_days, 0);
    assert_int_equal(v->min_age_months, -1);
    assert_string_equal(v->maker_ja, "メーカー");

    /* Lookups that must find nothing. */
    assert_null(vrs_catalogue_lookup(c, "a-hi"));
    assert_null(vrs_catalogue_lookup(c, "A-HIB"));
    assert_null(vrs_catalogue_lookup(c, NULL));
    assert_null(vrs_catalogue_lookup(NULL, "a-hib"));
    assert_null(vrs_catalogue_lookup(c, "a-hib-and-a-very-long-code-beyond-the-limit"));
    vrs_catalogue_free(c);
    vrs_catalogue_free(NULL);
}

/* R2.3: a wrong header is refused, naming the column. */
static void
test_R2_3_catalogue_bad_header(void **state)
{
    (void)state;
    expect_refused("code,kind,series,disease_ja,product_ja,product_en,maker_ja,"
                   "max_dose,min_interval_days,min_age_months,source\n"
                   "a-bcg,routine_a,a-bcg,結核,BCG,BCG,,1,,0,t\n",
                   "catalogue.csv line 1: header column 2 must be \"category\"");
    expect_refused("code,category,series,disease_ja,product_ja,product_en,"
                   "maker_ja,max_dose,min_interval_days,min_age_months\n",
                   "line 1: expected 11 fields, found 10");
    expect_refused("\xef\xbb\xbf" HDR "a-bcg,routine_a,a-bcg,結核,BCG,BCG,,1,,0,t\n",
                   "line 1: the file starts with a byte-order mark");
    expect_refused("", "catalogue.csv: empty file");
    expect_refused(HDR, "catalogue.csv: no rows after the header");
}

/* R2.3: a code may appear once; the later line is reported. */
static void
test_R2_3_catalogue_duplicate_code(void **state)
{
    struct tmpfile t = { "", "" };
    struct vrs_catalogue *c = NULL;
    char err[256];
    static const char data[] = HDR
        "a-bcg,routine_a,a-bcg,結核,BCG,BCG,,1,,0,t\n"
        "a-hib,routine_a,a-hib,Hib感染症,ヒブ,Hib,,4,20,2,t\n"
        "a-bcg,routine_a,a-bcg,結核,BCG,BCG,,1,,0,t\n";

    (void)state;
    tmp_write(&t, data, strlen(data));
    assert_int_equal(vrs_catalogue_load(t.path, &c, err, sizeof(err)), -1);
    assert_int_equal(errno, EINVAL);
    assert_null(c);
    assert_string_equal(err, "catalogue.csv line 4: code a-bcg already "
                             "appears on line 2");
    tmp_remove(&t);
}

/* R2.3: the category must be one of three and match the code's prefix. */
static void
test_R2_3_catalogue_bad_category(void **state)
{
    (void)state;
    expect_refused(HDR "a-bcg,routine_c,a-bcg,結核,BCG,BCG,,1,,0,t\n",
                   "line 2: code a-bcg has an unknown category");
    expect_refused(HDR "a-bcg,Routine_A,a-bcg,結核,BCG,BCG,,1,,0,t\n",
                   "line 2: code a-bcg has an unknown category");
    expect_refused(HDR "a-bcg,routine_b,a-bcg,結核,BCG,BCG,,1,,0,t\n",
                   "line 2: code a-bcg of category routine_b must start with \"b-\"");
    expect_refused(HDR "b-,routine_b,b-x,x,x,x,,1,,0,t\n",
                   "line 2: code must be 1 to 31");
    expect_refused(HDR "covid,covid,covid,x,x,x,,,,,t\n",
                   "line 2: code covid of category covid must start with \"covid-\"");
    /* One series, two categories: doses would be numbered together. */
    expect_refused(HDR "a-x,routine_a,shared,x,x,x,,1,,,t\n"
                   "b-x,routine_b,shared,x,x,x,,1,,,t\n",
                   "line 3: series shared of code b-x is already used by "
                   "category routine_a on line 2");
}

/* R2.3: every other cell is checked, and nothing half-loaded escapes. */
static void
test_R2_3_catalogue_bad_cells(void **state)
{
    (void)state;
    expect_refused(HDR "A-BCG,routine_a,a-bcg,結核,BCG,BCG,,1,,0,t\n",
                   "line 2: code must be 1 to 31 lower-case");
    /* 31 characters fit a 32-byte buffer; 32 do not. */
    expect_refused(HDR "a-abcdefghijklmnopqrstuvwxyz0123,routine_a,a-x,x,x,x,,1,,0,t\n",
                   "line 2: code must be 1 to 31");
    {
        struct vrs_catalogue *c = load_text(HDR
            "a-abcdefghijklmnopqrstuvwxyz012,routine_a,a-x,x,x,x,,1,,0,t\n");

        assert_non_null(vrs_catalogue_lookup(c, "a-abcdefghijklmnopqrstuvwxyz012"));
        vrs_catalogue_free(c);
    }
    expect_refused(HDR " a-bcg,routine_a,a-bcg,結核,BCG,BCG,,1,,0,t\n",
                   "line 2: code must be");
    expect_refused(HDR "a-bcg,routine_a,a_bcg,結核,BCG,BCG,,1,,0,t\n",
                   "line 2: series of code a-bcg must be");
    expect_refused(HDR "a-bcg,routine_a,a-bcg,,BCG,BCG,,1,,0,t\n",
                   "line 2: column disease_ja of code a-bcg is empty");
    expect_refused(HDR "a-bcg,routine_a,a-bcg,結核,BCG,,,1,,0,t\n",
                   "line 2: column product_en of code a-bcg is empty");
    expect_refused(HDR "a-bcg,routine_a,a-bcg,結\xff核,BCG,BCG,,1,,0,t\n",
                   "line 2: column disease_ja of code a-bcg is not valid UTF-8");
    expect_refused(HDR "a-bcg,routine_a,a-bcg,結核,B\tCG,BCG,,1,,0,t\n",
                   "line 2: column product_ja of code a-bcg is not valid UTF-8");
    expect_refused(HDR "a-bcg,routine_a,a-bcg,結核,BCG,BCG,,0,,0,t\n",
                   "line 2: max_dose of code a-bcg must be empty or a whole "
                   "number from 1 to 99");
    expect_refused(HDR "a-bcg,routine_a,a-bcg,結核,BCG,BCG,,1,-3,0,t\n",
                   "line 2: min_interval_days of code a-bcg must be empty");
    expect_refused(HDR "a-bcg,routine_a,a-bcg,結核,BCG,BCG,,1,,2.5,t\n",
                   "line 2: min_age_months of code a-bcg must be empty");
    expect_refused(HDR "a-bcg,routine_a,a-bcg,結核,BCG,BCG,,1,,0,\n",
                   "line 2: source of code a-bcg must name a source");
    expect_refused(HDR "a-bcg,routine_a,a-bcg,結核,BCG,BCG,,1,,0\n",
                   "line 2: expected 11 fields, found 10");
    expect_refused(HDR "a-bcg,routine_a,a-bcg,結核,BCG,BCG,,1,,0,t,x\n",
                   "line 2: expected 11 fields, found 12");
    expect_refused(HDR "a-bcg,routine_a,a-bcg,\"結核,BCG,BCG,,1,,0,t\n"
                   "a-hib,routine_a,a-hib,Hib,ヒブ,Hib,,4,20,2,t\n",
                   "line 2: unterminated quoted field");
    expect_refused(HDR "a-bcg,routine_a,a-bcg,結\"核,BCG,BCG,,1,,0,t\n",
                   "line 2: malformed CSV quoting");
    {
        static const char nul[] = HDR "a-bcg,routine_a,a-bcg,結\0核,BCG,BCG,,1,,0,t\n";

        expect_refused_n(nul, sizeof(nul) - 1,
                         "line 2: column disease_ja of code a-bcg is not valid UTF-8");
    }
    {
        char big[600];

        memset(big, 'x', sizeof(big));
        memcpy(big, HDR, strlen(HDR));
        expect_refused_n(big, sizeof(big), "line 2: field 1 is longer than 256 bytes");
    }
}

/* R2.3: a missing or oversized file fails with a sentence, not a crash. */
static void
test_R2_3_catalogue_file_errors(void **state)
{
    struct vrs_catalogue *c = NULL;
    char err[256];
    char *big;
    size_t len = 300 * 1024;

    (void)state;
    assert_int_equal(vrs_catalogue_load(MAMORI_TEST_BINARY_DIR "/no-such.csv",
                                        &c, err, sizeof(err)), -1);
    assert_null(c);
    assert_non_null(strstr(err, "no-such.csv: cannot open"));
    assert_int_equal(vrs_catalogue_load(NULL, &c, err, sizeof(err)), -1);
    assert_int_equal(vrs_catalogue_load(SHIPPED_CATALOGUE, NULL, NULL, 0), -1);

    /* A symbolic link is refused, even to the shipped file
     * (docs/records.md). */
    {
        char link[600];

        snprintf(link, sizeof(link), "%s/test_vrs_link.%ld.csv",
                 MAMORI_TEST_BINARY_DIR, (long)getpid());
        assert_int_equal(symlink(SHIPPED_CATALOGUE, link), 0);
        assert_int_equal(vrs_catalogue_load(link, &c, err, sizeof(err)), -1);
        assert_int_equal(errno, ELOOP);
        assert_null(c);
        assert_non_null(strstr(err, "cannot open"));
        unlink(link);
    }

    big = malloc(len);
    assert_non_null(big);
    memset(big, '\n', len);
    memcpy(big, HDR, strlen(HDR));
    expect_refused_n(big, len, "catalogue.csv: larger than 262144 bytes");
    free(big);
}

/* ---- voucher (R2.4) ---------------------------------------------------- */

/* A synthetic voucher: ticket 1, dose 3, 千代田区 131016, number 1. */
#define GOOD_LINE "13" "131016" "0000000001"

/* R2.4: the 18-digit line splits into its four parts. */
static void
test_R2_4_voucher_parse_good(void **state)
{
    struct vrs_voucher v;

    (void)state;
    assert_int_equal(vrs_voucher_parse(GOOD_LINE, &v), VRS_VOUCHER_OK);
    assert_int_equal(v.ticket_type, VRS_TICKET_VACCINATION);
    assert_int_equal(v.dose, 3);
    assert_string_equal(v.lgcode, "131016");
    assert_string_equal(v.number, "0000000001");

    assert_int_equal(vrs_voucher_parse("19" "011002" "9876543210", &v),
                     VRS_VOUCHER_OK);
    assert_int_equal(v.dose, 9);
    assert_string_equal(v.lgcode, "011002");
    assert_string_equal(v.number, "9876543210");
    /* Validation only. */
    assert_int_equal(vrs_voucher_parse(GOOD_LINE, NULL), VRS_VOUCHER_OK);
}

static void
expect_voucher(const char *line, enum vrs_voucher_status want)
{
    struct vrs_voucher v;

    memset(&v, 0x5a, sizeof(v));
    assert_int_equal(vrs_voucher_parse(line, &v), want);
    /* Nothing of a refused line is left behind. */
    assert_int_equal(v.ticket_type, 0);
    assert_int_equal(v.dose, 0);
    assert_string_equal(v.lgcode, "");
    assert_string_equal(v.number, "");
}

/* R2.4: each kind of bad line is refused with the part that is wrong. */
static void
test_R2_4_voucher_parse_bad(void **state)
{
    (void)state;
    expect_voucher(NULL, VRS_VOUCHER_MISSING);
    expect_voucher("", VRS_VOUCHER_MISSING);
    expect_voucher("13131016000000000", VRS_VOUCHER_LENGTH);       /* 17 */
    expect_voucher(GOOD_LINE "0", VRS_VOUCHER_LENGTH);             /* 19 */
    expect_voucher("0000000001", VRS_VOUCHER_LENGTH);              /* number only */
    expect_voucher("13131016000000000A", VRS_VOUCHER_NOT_DIGITS);
    expect_voucher("13 131016 00000001", VRS_VOUCHER_NOT_DIGITS);
    expect_voucher("13-131016-00000001", VRS_VOUCHER_NOT_DIGITS);
    /* A full-width digit is 3 bytes: 16 ASCII digits + "１" = 19 bytes. */
    expect_voucher("1313101600000000\xef\xbc\x91", VRS_VOUCHER_LENGTH);
    expect_voucher("131310160000000\xef\xbc\x91", VRS_VOUCHER_NOT_DIGITS);
    expect_voucher("03" "131016" "0000000001", VRS_VOUCHER_TICKET_TYPE);
    expect_voucher("23" "131016" "0000000001", VRS_VOUCHER_TICKET_TYPE);
    expect_voucher("93" "131016" "0000000001", VRS_VOUCHER_TICKET_TYPE);
    expect_voucher("10" "131016" "0000000001", VRS_VOUCHER_DOSE);
    expect_voucher("13" "131017" "0000000001", VRS_VOUCHER_LGCODE);
    expect_voucher("13" "131010" "0000000001", VRS_VOUCHER_LGCODE);
    /* Right check digits, but no prefecture 00 or 48: not a municipality. */
    expect_voucher("13" "000001" "0000000001", VRS_VOUCHER_LGCODE);
    expect_voucher("13" "480011" "0000000001", VRS_VOUCHER_LGCODE);
    {
        struct vrs_voucher v;

        assert_int_equal(vrs_voucher_parse("13" "472018" "0000000001", &v),
                         VRS_VOUCHER_OK);
        assert_string_equal(v.lgcode, "472018");
    }
}

/* R2.4: a voucher number alone is exactly 10 ASCII digits. */
static void
test_R2_4_voucher_number(void **state)
{
    (void)state;
    assert_int_equal(vrs_voucher_number_check("0000000001"), VRS_VOUCHER_OK);
    assert_int_equal(vrs_voucher_number_check("9999999999"), VRS_VOUCHER_OK);
    assert_int_equal(vrs_voucher_number_check(NULL), VRS_VOUCHER_MISSING);
    assert_int_equal(vrs_voucher_number_check(""), VRS_VOUCHER_MISSING);
    assert_int_equal(vrs_voucher_number_check("000000001"), VRS_VOUCHER_LENGTH);
    assert_int_equal(vrs_voucher_number_check("00000000011"), VRS_VOUCHER_LENGTH);
    assert_int_equal(vrs_voucher_number_check(GOOD_LINE), VRS_VOUCHER_LENGTH);
    assert_int_equal(vrs_voucher_number_check("000000000x"), VRS_VOUCHER_NOT_DIGITS);
    assert_int_equal(vrs_voucher_number_check("-000000001"), VRS_VOUCHER_NOT_DIGITS);
}

/* R2.4: messages name the part in both languages and never repeat the
 * value that was sent. */
static void
test_R2_4_voucher_messages(void **state)
{
    static const struct {
        enum vrs_voucher_status st;
        const char *code, *en_part, *ja_part;
    } want[] = {
        { VRS_VOUCHER_LENGTH, "voucher_length", "18 digits", "18桁" },
        { VRS_VOUCHER_NOT_DIGITS, "voucher_not_digits", "digits", "数字" },
        { VRS_VOUCHER_TICKET_TYPE, "voucher_ticket_type", "ticket type", "券種" },
        { VRS_VOUCHER_DOSE, "voucher_dose", "dose", "接種回数" },
        { VRS_VOUCHER_LGCODE, "voucher_municipality_code", "municipality code",
          "市町村コード" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *en = vrs_voucher_message(want[i].st, false, VRS_LANG_EN);
        const char *ja = vrs_voucher_message(want[i].st, false, VRS_LANG_JA);

        assert_string_equal(vrs_voucher_status_code(want[i].st), want[i].code);
        if (strstr(en, want[i].en_part) == NULL || strstr(ja, want[i].ja_part) == NULL)
            fail_msg("%s: \"%s\" / \"%s\"", want[i].code, en, ja);
        assert_null(strstr(en, "131016"));
        assert_null(strstr(ja, "0000000001"));
    }
    assert_non_null(strstr(vrs_voucher_message(VRS_VOUCHER_LENGTH, true,
                                               VRS_LANG_EN), "10 digits"));
    assert_non_null(strstr(vrs_voucher_message(VRS_VOUCHER_LENGTH, true,
                                               VRS_LANG_JA), "10桁"));
    assert_string_equal(vrs_voucher_status_code((enum vrs_voucher_status)99),
                        "voucher_invalid");
    assert_non_null(vrs_voucher_message((enum vrs_voucher_status)99, false,
                                        VRS_LANG_JA));
}

/* ---- rules (R2.3, R2.5) ------------------------------------------------ */

/* The crafted catalogue every rule test uses. */
static const char rules_catalogue[] = HDR
    "covid-x,covid,covid,新型コロナ,X,X,M,,20,,t\n"
    "covid-y,covid,covid,新型コロナ,Y,Y,M,,27,,t\n"
    "covid-z,covid,covid,新型コロナ,Z,Z,M,,,,t\n"
    "a-hib,routine_a,a-hib,Hib感染症,ヒブ,Hib,,4,20,2,t\n"
    "a-pcv,routine_a,a-pcv,肺炎球菌,PCV,PCV,,4,27,2,t\n"
    "a-bcg,routine_a,a-bcg,結核,BCG,BCG,,1,,0,t\n"
    "a-je,routine_a,a-je,日本脳炎,JE,JE,,4,6,6,t\n";

#define TODAY "2024-06-30"

static struct vrs_catalogue *cat;

static int
rules_setup(void **state)
{
    (void)state;
    cat = load_text(rules_catalogue);
    return cat != NULL ? 0 : -1;
}

static int
rules_teardown(void **state)
{
    (void)state;
    vrs_catalogue_free(cat);
    cat = NULL;
    return 0;
}

/* An adult with no flags, born long before any test date. */
static const struct vrs_resident_facts adult = { "1960-04-01", NULL, NULL };

static enum vrs_rule
check(const char *code, unsigned dose, const char *date,
      const struct vrs_resident_facts *r, const struct vrs_dose *h, size_t n,
      struct vrs_verdict *v)
{
    struct vrs_dose p = { code, dose, date };
    struct vrs_verdict local;

    return vrs_rules_check(cat, &p, r, h, n, TODAY, v != NULL ? v : &local);
}

#define CHECK(code, dose, date) check(code, dose, date, &adult, NULL, 0, NULL)

/* R2.3: the vaccination date must be a calendar date, strictly written. */
static void
test_R2_3_rule_date_invalid(void **state)
{
    static const char *const bad[] = {
        "2023-02-29", "1900-02-29", "2023-04-31", "2023-13-01", "2023-00-10",
        "2023-01-00", "2023-4-01", "2023/04/01", "20230401", "2023-04-01 ",
        "２０２３-04-01", "1799-12-31", "", "2023-04-01T00:00"
    };
    struct vrs_verdict v;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (check("covid-x", 1, bad[i], &adult, NULL, 0, &v) != VRS_RULE_DATE_INVALID)
            fail_msg("\"%s\" was not refused as an invalid date", bad[i]);
        assert_string_equal(v.field, "date");
    }
    assert_int_equal(CHECK("covid-x", 1, NULL), VRS_RULE_DATE_INVALID);
    /* Leap days that exist. */
    assert_int_equal(CHECK("covid-x", 1, "2024-02-29"), VRS_RULE_OK);
    assert_int_equal(CHECK("covid-x", 1, "2000-02-29"), VRS_RULE_OK);
    assert_int_equal(CHECK("covid-x", 1, "2023-12-31"), VRS_RULE_OK);
}

/* R2.3: a date after "today" is refused; today itself is fine. */
static void
test_R2_3_rule_date_in_future(void **state)
{
    struct vrs_verdict v;

    (void)state;
    assert_int_equal(check("covid-x", 1, "2024-07-01", &adult, NULL, 0, &v),
                     VRS_RULE_DATE_IN_FUTURE);
    assert_string_equal(v.field, "date");
    assert_int_equal(CHECK("covid-x", 1, "2099-01-01"), VRS_RULE_DATE_IN_FUTURE);
    assert_int_equal(CHECK("covid-x", 1, TODAY), VRS_RULE_OK);
}

/* R2.3: nobody is vaccinated before birth; the day of birth is possible
 * (BCG has minimum age 0 months). */
static void
test_R2_3_rule_before_birth(void **state)
{
    const struct vrs_resident_facts baby = { "2024-03-15", NULL, NULL };
    struct vrs_verdict v;

    (void)state;
    assert_int_equal(check("a-bcg", 1, "2024-03-14", &baby, NULL, 0, &v),
                     VRS_RULE_BEFORE_BIRTH);
    assert_string_equal(v.field, "date");
    assert_int_equal(check("a-bcg", 1, "2024-03-15", &baby, NULL, 0, NULL),
                     VRS_RULE_OK);
}

/* R2.5: a deceased resident cannot be vaccinated after death. */
static void
test_R2_5_rule_after_death(void **state)
{
    const struct vrs_resident_facts dead = { "1940-01-01", "2024-05-10", NULL };
    const struct vrs_resident_facts no_flag = { "1940-01-01", "", "" };
    struct vrs_verdict v;

    (void)state;
    assert_int_equal(check("covid-x", 1, "2024-05-11", &dead, NULL, 0, &v),
                     VRS_RULE_AFTER_DEATH);
    assert_string_equal(v.field, "date");
    assert_string_equal(vrs_rule_code(v.rule), "date_after_death");
    assert_int_equal(check("covid-x", 1, "2024-06-30", &dead, NULL, 0, NULL),
                     VRS_RULE_AFTER_DEATH);
    /* The day of death and before: the record may stand. */
    assert_int_equal(check("covid-x", 1, "2024-05-10", &dead, NULL, 0, NULL),
                     VRS_RULE_OK);
    assert_int_equal(check("covid-x", 1, "2023-05-10", &dead, NULL, 0, NULL),
                     VRS_RULE_OK);
    /* An empty flag date means no flag. */
    assert_int_equal(check("covid-x", 1, "2024-05-11", &no_flag, NULL, 0, NULL),
                     VRS_RULE_OK);
}

/* R2.5: after moving out, the new municipality records vaccinations. */
static void
test_R2_5_rule_after_move_out(void **state)
{
    const struct vrs_resident_facts gone = { "1980-01-01", NULL, "2024-04-01" };
    const struct vrs_resident_facts both = { "1980-01-01", "2024-04-20", "2024-04-01" };
    struct vrs_verdict v;

    (void)state;
    assert_int_equal(check("covid-x", 1, "2024-04-02", &gone, NULL, 0, &v),
                     VRS_RULE_AFTER_MOVE_OUT);
    assert_string_equal(v.field, "date");
    assert_int_equal(check("covid-x", 1, "2024-04-01", &gone, NULL, 0, NULL),
                     VRS_RULE_OK);
    /* Death is reported before moving out when both apply. */
    assert_int_equal(check("covid-x", 1, "2024-05-01", &both, NULL, 0, NULL),
                     VRS_RULE_AFTER_DEATH);
}

/* R2.3, R2.5: the resident's own dates must be calendar dates; the field
 * names which one. */
static void
test_R2_5_rule_resident_dates_invalid(void **state)
{
    const struct vrs_resident_facts bad_birth = { "2023-02-29", NULL, NULL };
    const struct vrs_resident_facts no_birth = { NULL, NULL, NULL };
    const struct vrs_resident_facts bad_death = { "1950-01-01", "2024-02-30", NULL };
    const struct vrs_resident_facts bad_move = { "1950-01-01", NULL, "yesterday" };
    struct vrs_verdict v;

    (void)state;
    assert_int_equal(check("covid-x", 1, "2024-01-10", &bad_birth, NULL, 0, &v),
                     VRS_RULE_RESIDENT_INVALID);
    assert_string_equal(v.field, "birth_date");
    assert_int_equal(check("covid-x", 1, "2024-01-10", &no_birth, NULL, 0, &v),
                     VRS_RULE_RESIDENT_INVALID);
    assert_string_equal(v.field, "birth_date");
    assert_int_equal(check("covid-x", 1, "2024-01-10", &bad_death, NULL, 0, &v),
                     VRS_RULE_RESIDENT_INVALID);
    assert_string_equal(v.field, "deceased_date");
    assert_int_equal(check("covid-x", 1, "2024-01-10", &bad_move, NULL, 0, &v),
                     VRS_RULE_RESIDENT_INVALID);
    assert_string_equal(v.field, "moved_out_date");
}

/* R2.3: only catalogue vaccines can be recorded. */
static void
test_R2_3_rule_unknown_vaccine(void **state)
{
    struct vrs_verdict v;

    (void)state;
    assert_int_equal(check("covid-sputnik", 1, "2024-01-10", &adult, NULL, 0, &v),
                     VRS_RULE_UNKNOWN_VACCINE);
    assert_string_equal(v.field, "vaccine");
    assert_int_equal(CHECK("COVID-X", 1, "2024-01-10"), VRS_RULE_UNKNOWN_VACCINE);
    assert_int_equal(CHECK(NULL, 1, "2024-01-10"), VRS_RULE_UNKNOWN_VACCINE);
    assert_int_equal(CHECK("", 1, "2024-01-10"), VRS_RULE_UNKNOWN_VACCINE);
}

/* R2.3: dose numbers start at 1, stop at the vaccine's max_dose and have
 * no cap below 99 for COVID (接種回 1..7 and beyond). */
static void
test_R2_3_rule_dose_range(void **state)
{
    struct vrs_dose h[8];
    char dates[8][11];
    struct vrs_verdict v;

    (void)state;
    assert_int_equal(check("covid-x", 0, "2024-01-10", &adult, NULL, 0, &v),
                     VRS_RULE_DOSE_OUT_OF_RANGE);
    assert_string_equal(v.field, "dose");
    assert_int_equal(CHECK("covid-x", VRS_DOSE_MAX + 1, "2024-01-10"),
                     VRS_RULE_DOSE_OUT_OF_RANGE);
    assert_int_equal(CHECK("a-bcg", 2, "2024-01-10"), VRS_RULE_DOSE_OUT_OF_RANGE);
    assert_int_equal(CHECK("a-hib", 5, "2024-01-10"), VRS_RULE_DOSE_OUT_OF_RANGE);

    /* Doses 1..8 half a year apart: the 9th is accepted. */
    for (unsigned i = 0; i < 8; i++) {
        snprintf(dates[i], sizeof(dates[i]), "20%02u-0%u-01", 20u + i / 2,
                 i % 2 ? 7u : 1u);
        h[i] = (struct vrs_dose){ "covid-x", i + 1, dates[i] };
    }
    assert_int_equal(check("covid-x", 9, "2024-06-01", &adult, h, 8, NULL),
                     VRS_RULE_OK);
}

/* R2.3: a catalogue minimum age counts calendar months from birth. */
static void
test_R2_3_rule_minimum_age(void **state)
{
    const struct vrs_resident_facts born_apr = { "2024-02-10", NULL, NULL };
    const struct vrs_resident_facts born_dec31 = { "2023-12-31", NULL, NULL };
    struct vrs_verdict v;

    (void)state;
    /* Two months old from 4/10. */
    assert_int_equal(check("a-hib", 1, "2024-04-09", &born_apr, NULL, 0, &v),
                     VRS_RULE_TOO_YOUNG);
    assert_string_equal(v.field, "date");
    assert_int_equal(check("a-hib", 1, "2024-04-10", &born_apr, NULL, 0, NULL),
                     VRS_RULE_OK);
    /* No 2/31: two months old from 3/1 (民法 143条). */
    assert_int_equal(check("a-hib", 1, "2024-02-29", &born_dec31, NULL, 0, NULL),
                     VRS_RULE_TOO_YOUNG);
    assert_int_equal(check("a-hib", 1, "2024-03-01", &born_dec31, NULL, 0, NULL),
                     VRS_RULE_OK);
    /* Across a year: six months from 2023-12-31 is 2024-06-30 (no 6/31
     * → 7/1). */
    assert_int_equal(check("a-je", 1, "2024-06-30", &born_dec31, NULL, 0, NULL),
                     VRS_RULE_TOO_YOUNG);
    /* No minimum in the catalogue (covid-x): any age. */
    assert_int_equal(check("covid-x", 1, "2024-01-01", &born_dec31, NULL, 0, NULL),
                     VRS_RULE_OK);
}

/* R2.3: a dose number is recorded once per series. */
static void
test_R2_3_rule_dose_duplicate(void **state)
{
    const struct vrs_dose h[] = {
        { "covid-x", 1, "2021-06-01" }, { "covid-x", 2, "2021-06-22" },
    };
    const struct vrs_dose other_series[] = { { "a-pcv", 1, "2021-06-01" } };
    struct vrs_verdict v;

    (void)state;
    assert_int_equal(check("covid-x", 2, "2022-01-10", &adult, h, 2, &v),
                     VRS_RULE_DOSE_DUPLICATE);
    assert_string_equal(v.field, "dose");
    /* Another COVID product is the same series (交互接種). */
    assert_int_equal(check("covid-y", 1, "2022-01-10", &adult, h, 2, NULL),
                     VRS_RULE_DOSE_DUPLICATE);
    /* Another series' dose 1 is not a duplicate. */
    assert_int_equal(check("a-hib", 1, "2022-01-10", &adult, other_series, 1, NULL),
                     VRS_RULE_OK);
}

/* R2.3: dose n needs dose n-1 of the same series on an earlier date, and
 * no later dose may come on or before it. */
static void
test_R2_3_rule_dose_out_of_order(void **state)
{
    const struct vrs_dose one[] = { { "covid-x", 1, "2021-06-01" } };
    const struct vrs_dose pcv1[] = { { "a-pcv", 1, "2021-06-01" } };
    const struct vrs_dose unknown[] = { { "covid-retired", 1, "2021-06-01" } };
    const struct vrs_dose gap[] = {
        { "covid-x", 1, "2021-06-01" }, { "covid-x", 3, "2021-12-01" },
    };
    struct vrs_verdict v;

    (void)state;
    assert_int_equal(check("covid-x", 2, "2021-07-01", &adult, NULL, 0, &v),
                     VRS_RULE_DOSE_OUT_OF_ORDER);
    assert_string_equal(v.field, "dose");
    assert_int_equal(check("covid-x", 3, "2021-12-01", &adult, one, 1, NULL),
                     VRS_RULE_DOSE_OUT_OF_ORDER);
    /* Dose 1 on the same day or later does not come before dose 2. */
    assert_int_equal(check("covid-x", 2, "2021-06-01", &adult, one, 1, NULL),
                     VRS_RULE_DOSE_OUT_OF_ORDER);
    assert_int_equal(check("covid-x", 2, "2021-05-01", &adult, one, 1, NULL),
                     VRS_RULE_DOSE_OUT_OF_ORDER);
    assert_int_equal(check("covid-x", 2, "2021-07-01", &adult, one, 1, NULL),
                     VRS_RULE_OK);
    /* Cross-product within COVID counts; another series does not. */
    assert_int_equal(check("covid-y", 2, "2021-07-01", &adult, one, 1, NULL),
                     VRS_RULE_OK);
    assert_int_equal(check("a-hib", 2, "2021-07-01", &adult, pcv1, 1, NULL),
                     VRS_RULE_DOSE_OUT_OF_ORDER);
    /* A code the catalogue no longer knows vouches for nothing. */
    assert_int_equal(check("covid-x", 2, "2021-07-01", &adult, unknown, 1, NULL),
                     VRS_RULE_DOSE_OUT_OF_ORDER);
    /* Filling a gap: dose 2 must fall between doses 1 and 3. */
    assert_int_equal(check("covid-x", 2, "2021-09-01", &adult, gap, 2, NULL),
                     VRS_RULE_OK);
    assert_int_equal(check("covid-x", 2, "2021-12-01", &adult, gap, 2, NULL),
                     VRS_RULE_DOSE_OUT_OF_ORDER);
    assert_int_equal(check("covid-x", 2, "2022-01-01", &adult, gap, 2, NULL),
                     VRS_RULE_DOSE_OUT_OF_ORDER);
}

/* R2.3: 「N日以上の間隔をおく」 — N whole days between the two dates. */
static void
test_R2_3_rule_interval_too_short(void **state)
{
    const struct vrs_dose x1[] = { { "covid-x", 1, "2021-06-01" } };
    const struct vrs_dose je1[] = { { "a-je", 1, "2024-04-01" } };
    const struct vrs_dose y2[] = { { "covid-y", 2, "2021-07-01" } };
    const struct vrs_dose z1[] = { { "covid-z", 1, "2021-06-01" } };
    const struct vrs_resident_facts child = { "2020-01-01", NULL, NULL };
    struct vrs_verdict v;

    (void)state;
    /* covid-x, 20 days: 6/1 → 6/22 (3 weeks later) at the earliest. */
    assert_int_equal(check("covid-x", 2, "2021-06-21", &adult, x1, 1, &v),
                     VRS_RULE_INTERVAL_TOO_SHORT);
    assert_string_equal(v.field, "date");
    assert_int_equal(check("covid-x", 2, "2021-06-22", &adult, x1, 1, NULL),
                     VRS_RULE_OK);
    /* The proposed product's minimum applies: covid-y needs 27 days. */
    assert_int_equal(check("covid-y", 2, "2021-06-28", &adult, x1, 1, NULL),
                     VRS_RULE_INTERVAL_TOO_SHORT);
    assert_int_equal(check("covid-y", 2, "2021-06-29", &adult, x1, 1, NULL),
                     VRS_RULE_OK);
    /* a-je, 6 days: one week later on the same weekday. */
    assert_int_equal(check("a-je", 2, "2024-04-07", &child, je1, 1, NULL),
                     VRS_RULE_INTERVAL_TOO_SHORT);
    assert_int_equal(check("a-je", 2, "2024-04-08", &child, je1, 1, NULL),
                     VRS_RULE_OK);
    /* Recording an earlier dose late: the later dose's own minimum holds
     * (covid-y dose 2 on 7/1 needs 27 days: dose 1 on 6/4 is too close,
     * 6/3 is the latest allowed). */
    {
        const struct vrs_dose h[] = { y2[0], { "covid-x", 3, "2022-01-10" } };

        assert_int_equal(check("covid-x", 1, "2021-06-04", &adult, h, 2, NULL),
                         VRS_RULE_INTERVAL_TOO_SHORT);
        assert_int_equal(check("covid-x", 1, "2021-06-03", &adult, h, 2, NULL),
                         VRS_RULE_OK);
    }
    /* No minimum in the catalogue: the next day is accepted. */
    assert_int_equal(check("covid-z", 2, "2021-06-02", &adult, z1, 1, NULL),
                     VRS_RULE_OK);
}

/* R2.3: a damaged history is refused rather than trusted. */
static void
test_R2_3_rule_history_invalid(void **state)
{
    const struct vrs_dose bad_date[] = { { "a-pcv", 1, "2021-02-30" } };
    const struct vrs_dose bad_dose[] = { { "a-pcv", 0, "2021-02-01" } };
    struct vrs_verdict v;

    (void)state;
    assert_int_equal(check("covid-x", 1, "2024-01-10", &adult, bad_date, 1, &v),
                     VRS_RULE_HISTORY_INVALID);
    assert_string_equal(v.field, "history");
    assert_int_equal(check("covid-x", 1, "2024-01-10", &adult, bad_dose, 1, NULL),
                     VRS_RULE_HISTORY_INVALID);
}

/* R2.3: missing arguments or a bad "today" never accept. */
static void
test_R2_3_rule_bad_call(void **state)
{
    struct vrs_dose p = { "covid-x", 1, "2024-01-10" };
    struct vrs_verdict v;

    (void)state;
    assert_int_equal(vrs_rules_check(NULL, &p, &adult, NULL, 0, TODAY, &v),
                     VRS_RULE_BAD_CALL);
    assert_null(v.field);
    assert_int_equal(vrs_rules_check(cat, NULL, &adult, NULL, 0, TODAY, &v),
                     VRS_RULE_BAD_CALL);
    assert_int_equal(vrs_rules_check(cat, &p, NULL, NULL, 0, TODAY, &v),
                     VRS_RULE_BAD_CALL);
    assert_int_equal(vrs_rules_check(cat, &p, &adult, NULL, 1, TODAY, &v),
                     VRS_RULE_BAD_CALL);
    assert_int_equal(vrs_rules_check(cat, &p, &adult, NULL, 0, NULL, &v),
                     VRS_RULE_BAD_CALL);
    assert_int_equal(vrs_rules_check(cat, &p, &adult, NULL, 0, "2024-13-01", &v),
                     VRS_RULE_BAD_CALL);
    assert_int_equal(vrs_rules_check(cat, &p, &adult, NULL, 0, TODAY, NULL),
                     VRS_RULE_OK);
}

/* R2.3: every rule has a distinct code, an English and a Japanese
 * sentence, and no message carries a digit (so none can echo a date,
 * dose or code that was sent). */
static void
test_R2_3_rule_messages(void **state)
{
    (void)state;
    for (int r = VRS_RULE_OK; r <= VRS_RULE_INTERVAL_TOO_SHORT; r++) {
        const char *en = vrs_rule_message((enum vrs_rule)r, VRS_LANG_EN);
        const char *ja = vrs_rule_message((enum vrs_rule)r, VRS_LANG_JA);

        assert_non_null(en);
        assert_non_null(ja);
        assert_true(strlen(en) > 10 && strlen(ja) > 10);
        assert_string_not_equal(en, ja);
        /* Japanese text: at least one multi-byte character. */
        assert_true((unsigned char)ja[0] >= 0x80);
        assert_null(strpbrk(en, "0123456789"));
        assert_null(strpbrk(ja, "0123456789"));
        for (int o = VRS_RULE_OK; o < r; o++)
            assert_string_not_equal(vrs_rule_code((enum vrs_rule)r),
                                    vrs_rule_code((enum vrs_rule)o));
    }
    assert_string_equal(vrs_rule_code(VRS_RULE_AFTER_DEATH), "date_after_death");
    assert_string_equal(vrs_rule_field(VRS_RULE_UNKNOWN_VACCINE), "vaccine");
    assert_string_equal(vrs_rule_code((enum vrs_rule)99), "invalid");
    assert_null(vrs_rule_field((enum vrs_rule)99));
    assert_non_null(vrs_rule_message((enum vrs_rule)99, VRS_LANG_JA));
}

/* R2.3: the date parser itself, against days known by other means. */
static void
test_R2_3_date_parse(void **state)
{
    int32_t d = 0;

    (void)state;
    assert_int_equal(vrs_date_parse("1970-01-01", &d), 0);
    assert_int_equal(d, 0);
    assert_int_equal(vrs_date_parse("2000-03-01", &d), 0);
    assert_int_equal(d, 11017);
    assert_int_equal(vrs_date_parse("1800-01-01", &d), 0);
    assert_int_equal(d, -62091);
    assert_int_equal(vrs_date_parse("9999-12-31", &d), 0);
    assert_int_equal(d, 2932896);
    assert_int_equal(vrs_date_parse("2023-02-29", &d), -1);
    assert_int_equal(vrs_date_parse("2024-02-29", NULL), -1);
}

/* R2.3: the writer is the parser's exact inverse over its whole range
 * (the import checks file rows with it). */
static void
test_R2_3_date_format(void **state)
{
    char out[11];
    int32_t first = 0, last = 0, back = 0;

    (void)state;
    vrs_date_format(0, out);
    assert_string_equal(out, "1970-01-01");
    vrs_date_format(11017, out);
    assert_string_equal(out, "2000-03-01");
    vrs_date_format(11016, out);
    assert_string_equal(out, "2000-02-29");
    assert_int_equal(vrs_date_parse("1800-01-01", &first), 0);
    assert_int_equal(vrs_date_parse("9999-12-31", &last), 0);
    for (int32_t d = first; d <= last; d++) {
        vrs_date_format(d, out);
        if (vrs_date_parse(out, &back) != 0 || back != d)
            fail_msg("day %ld written as %s", (long)d, out);
    }
}

int
main(void)
{
    const struct CMUnitTest catalogue_tests[] = {
        cmocka_unit_test(test_R2_3_catalogue_shipped_has_stable_codes),
        cmocka_unit_test(test_R2_3_catalogue_cells),
        cmocka_unit_test(test_R2_3_catalogue_bad_header),
        cmocka_unit_test(test_R2_3_catalogue_duplicate_code),
        cmocka_unit_test(test_R2_3_catalogue_bad_category),
        cmocka_unit_test(test_R2_3_catalogue_bad_cells),
        cmocka_unit_test(test_R2_3_catalogue_file_errors),
        cmocka_unit_test(test_R2_4_voucher_parse_good),
        cmocka_unit_test(test_R2_4_voucher_parse_bad),
        cmocka_unit_test(test_R2_4_voucher_number),
        cmocka_unit_test(test_R2_4_voucher_messages),
        cmocka_unit_test(test_R2_3_date_parse),
        cmocka_unit_test(test_R2_3_date_format),
    };
    const struct CMUnitTest rule_tests[] = {
        cmocka_unit_test(test_R2_3_rule_date_invalid),
        cmocka_unit_test(test_R2_3_rule_date_in_future),
        cmocka_unit_test(test_R2_3_rule_before_birth),
        cmocka_unit_test(test_R2_5_rule_after_death),
        cmocka_unit_test(test_R2_5_rule_after_move_out),
        cmocka_unit_test(test_R2_5_rule_resident_dates_invalid),
        cmocka_unit_test(test_R2_3_rule_unknown_vaccine),
        cmocka_unit_test(test_R2_3_rule_dose_range),
        cmocka_unit_test(test_R2_3_rule_minimum_age),
        cmocka_unit_test(test_R2_3_rule_dose_duplicate),
        cmocka_unit_test(test_R2_3_rule_dose_out_of_order),
        cmocka_unit_test(test_R2_3_rule_interval_too_short),
        cmocka_unit_test(test_R2_3_rule_history_invalid),
        cmocka_unit_test(test_R2_3_rule_bad_call),
        cmocka_unit_test(test_R2_3_rule_messages),
    };
    int failed = cmocka_run_group_tests_name("vrs catalogue and voucher",
                                             catalogue_tests, NULL, NULL);

    failed += cmocka_run_group_tests_name("vrs rules", rule_tests,
                                          rules_setup, rules_teardown);
    return failed != 0;
}
