/*
 * test_ref.c - reference data: individual number check (R2.2), local
 * government codes and the shipped municipality table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ref/lgcode.h"
#include "ref/mynumber.h"

#define EXAMPLES_CSV  MAMORI_TEST_SOURCE_DIR "/tests/data/mynumber_examples.csv"
#define SHIPPED_CSV   MAMORI_TEST_SOURCE_DIR "/data/municipalities/municipalities_lgcode.csv"
#define SHIPPED_ROWS  1959

/* ---- individual number (R2.2) ---------------------------------------- */

/* Independent statement of the rule, used to cross-check the module. */
static int
ref_mynumber_check(const char *first11)
{
    static const int w[11] = { 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2 };
    int sum = 0;

    for (int i = 0; i < 11; i++)
        sum += (first11[i] - '0') * w[i];
    return sum % 11 <= 1 ? 0 : 11 - sum % 11;
}

static void
strip_spaces(char *s)
{
    char *d = s;

    for (; *s != '\0'; s++) {
        if (*s != ' ')
            *d++ = *s;
    }
    *d = '\0';
}

/* R2.2: every example in the shared data file is classified as its
 * `expected` column says.  Read at test time so new examples count. */
static void
test_mynumber_examples(void **state)
{
    char line[256];
    int rows = 0, lineno = 0;
    FILE *f = fopen(EXAMPLES_CSV, "r");

    (void)state;
    if (f == NULL) {
        fail_msg("cannot open %s: %s", EXAMPLES_CSV, strerror(errno));
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *value = line, *expected, *end;

        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (lineno == 1) {
            assert_int_equal(strncmp(line, "value,expected,", 15), 0);
            continue;
        }
        if (line[0] == '\0')
            continue;
        expected = strchr(value, ',');
        assert_non_null(expected);
        *expected++ = '\0';
        end = strchr(expected, ',');
        if (end != NULL)
            *end = '\0';

        if (strcmp(expected, "valid") == 0) {
            if (!mynumber_valid(value))
                fail_msg("line %d: %s should be valid", lineno, value);
        } else if (strcmp(expected, "invalid") == 0) {
            if (mynumber_valid(value))
                fail_msg("line %d: %s should be invalid", lineno, value);
        } else if (strcmp(expected, "valid-after-normalising") == 0) {
            /* The module takes digits only: the raw form is refused,
             * the caller's normalised form is accepted. */
            if (mynumber_valid(value))
                fail_msg("line %d: raw '%s' must be refused", lineno, value);
            strip_spaces(value);
            if (!mynumber_valid(value))
                fail_msg("line %d: normalised %s should be valid", lineno,
                         value);
        } else {
            fail_msg("line %d: unknown expected value '%s'", lineno, expected);
        }
        rows++;
    }
    fclose(f);
    assert_true(rows >= 19);
}

/* R2.2: anything but exactly 12 ASCII digits is refused. */
static void
test_mynumber_edges(void **state)
{
    /* 123456789018 is valid; every case below is derived from it. */
    static const char embedded_nul[13] = { '1', '2', '3', '4', '5', '6',
                                           '\0', '8', '9', '0', '1', '8', '\0' };
    char buf[32];

    (void)state;
    assert_true(mynumber_valid("123456789018"));
    assert_false(mynumber_valid(NULL));
    assert_false(mynumber_valid(""));
    assert_false(mynumber_valid("12345678901"));        /* 11 digits */
    assert_false(mynumber_valid("1234567890180"));      /* 13 digits */
    assert_false(mynumber_valid("12345678901A"));
    assert_false(mynumber_valid("A23456789018"));
    assert_false(mynumber_valid("123456789018\n"));     /* trailing newline */
    assert_false(mynumber_valid("123456789018 "));
    assert_false(mynumber_valid(" 123456789018"));
    assert_false(mynumber_valid("+23456789018"));
    assert_false(mynumber_valid("1234-5678-9018"));
    /* Full-width digits １２３４５６７８９０１８ (U+FF11...). */
    assert_false(mynumber_valid("\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93"
                                "\xef\xbc\x94\xef\xbc\x95\xef\xbc\x96"
                                "\xef\xbc\x97\xef\xbc\x98\xef\xbc\x99"
                                "\xef\xbc\x90\xef\xbc\x91\xef\xbc\x98"));
    /* Arabic-Indic and superscript digits are not digits either. */
    assert_false(mynumber_valid("12345678901\xd9\xa8"));
    assert_false(mynumber_valid("12345678901\xc2\xb8"));
    /* Embedded NUL: 13 bytes in memory, but the string ends at byte 6. */
    assert_int_equal(sizeof(embedded_nul), 13);
    assert_false(mynumber_valid(embedded_nul));
    /* Bytes with the high bit set (negative as plain char). */
    memcpy(buf, "123456789018", 13);
    buf[3] = (char)0xb3;
    assert_false(mynumber_valid(buf));
}

/* R2.2: for any 11 leading digits exactly one check digit is accepted,
 * and it is the one the rule gives. */
static void
test_mynumber_one_check_digit(void **state)
{
    uint32_t x = 2463534242u;   /* xorshift32: deterministic prefixes */
    char s[MYNUMBER_LEN + 1];

    (void)state;
    s[MYNUMBER_LEN] = '\0';
    for (int n = 0; n < 20000; n++) {
        int valid = 0, want;

        for (int i = 0; i < 11; i++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            s[i] = (char)('0' + x % 10);
        }
        want = ref_mynumber_check(s);
        for (int d = 0; d <= 9; d++) {
            s[11] = (char)('0' + d);
            if (mynumber_valid(s)) {
                valid++;
                assert_int_equal(d, want);
            }
        }
        assert_int_equal(valid, 1);
    }
}

/* ---- local government codes ------------------------------------------ */

static const char *const known_codes[] = { "131016", "011002", "010006", "221384" };

static void
test_lgcode_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(known_codes) / sizeof(known_codes[0]); i++)
        assert_true(lgcode_valid(known_codes[i]));
    assert_true(lgcode_valid("221317"));    /* old 浜松市中区: valid, unlisted */
    assert_false(lgcode_valid(NULL));
    assert_false(lgcode_valid(""));
    assert_false(lgcode_valid("13101"));
    assert_false(lgcode_valid("1310160"));
    assert_false(lgcode_valid("13101a"));
    assert_false(lgcode_valid("131016\n"));
    assert_false(lgcode_valid(" 131016"));
    assert_false(lgcode_valid("011003"));    /* check digit should be 2 */
    /* Full-width １３１０１６. */
    assert_false(lgcode_valid("\xef\xbc\x91\xef\xbc\x93\xef\xbc\x91"
                              "\xef\xbc\x90\xef\xbc\x91\xef\xbc\x96"));
}

static unsigned
lg_sum_mod11(const char *c)
{
    static const unsigned w[5] = { 6, 5, 4, 3, 2 };
    unsigned sum = 0;

    for (int i = 0; i < 5; i++)
        sum += (unsigned)(c[i] - '0') * w[i];
    return sum % 11;
}

/*
 * Change one digit of a valid code and the result must be invalid.  The
 * rule has one blind spot: sum mod 11 = 0 and = 10 both give check digit 1,
 * so a change that moves the sum between those two goes unnoticed.  None of
 * the known codes is affected; the loop over the shipped table shows that
 * the blind spot is the only exception.
 */
static void
check_single_digit_changes(const char *code, bool allow_blind_spot)
{
    char c[LGCODE_LEN + 1];

    for (int pos = 0; pos < LGCODE_LEN; pos++) {
        for (char d = '0'; d <= '9'; d++) {
            if (d == code[pos])
                continue;
            memcpy(c, code, sizeof(c));
            c[pos] = d;
            if (!lgcode_valid(c))
                continue;
            if (allow_blind_spot && pos < 5) {
                unsigned a = lg_sum_mod11(code), b = lg_sum_mod11(c);

                if ((a == 0 && b == 10) || (a == 10 && b == 0))
                    continue;
            }
            fail_msg("%s -> %s is still valid", code, c);
        }
    }
}

static void
test_lgcode_single_digit_change(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(known_codes) / sizeof(known_codes[0]); i++)
        check_single_digit_changes(known_codes[i], false);
}

static void
test_lgcode_shipped_table(void **state)
{
    struct lgcode_table *t = NULL;
    const struct lgcode_entry *e;
    char err[256], line[1024];
    size_t lines = 0;
    FILE *f;

    (void)state;
    if (lgcode_table_load(SHIPPED_CSV, &t, err, sizeof(err)) != 0)
        fail_msg("load failed: %s", err);
    assert_int_equal(lgcode_count(t), SHIPPED_ROWS);

    e = lgcode_lookup(t, "131016");
    assert_non_null(e);
    assert_string_equal(e->name, "千代田区");
    assert_string_equal(e->name_kana, "ちよだく");
    assert_string_equal(e->kind, "special_ward");
    assert_string_equal(e->parent, "130001");
    assert_string_equal(e->pref_name, "東京都");

    /* Tenant scopes (docs/access.md): a ward is a municipality, 東京都 a
     * prefecture, 000001 the national scope though no table row has it. */
    assert_int_equal(lgcode_scope(t, "131016"), LGCODE_SCOPE_MUNICIPALITY);
    assert_int_equal(lgcode_scope(t, "130001"), LGCODE_SCOPE_PREFECTURE);
    assert_int_equal(lgcode_scope(t, "011002"), LGCODE_SCOPE_MUNICIPALITY);
    assert_true(lgcode_valid(LGCODE_NATIONAL));
    assert_null(lgcode_lookup(t, LGCODE_NATIONAL));
    assert_int_equal(lgcode_scope(t, LGCODE_NATIONAL), LGCODE_SCOPE_NATIONAL);
    assert_int_equal(lgcode_scope(t, "131017"), LGCODE_SCOPE_UNKNOWN);   /* bad check digit */
    assert_int_equal(lgcode_scope(t, "990001"), LGCODE_SCOPE_UNKNOWN);   /* valid, no such place */
    assert_string_equal(lgcode_scope_name(LGCODE_SCOPE_PREFECTURE), "prefecture");

    e = lgcode_lookup(t, "011002");
    assert_non_null(e);
    assert_string_equal(e->name, "札幌市");
    assert_string_equal(e->kind, "designated_city");
    assert_string_equal(e->parent, "010006");
    assert_string_equal(e->pref_name, "北海道");

    e = lgcode_lookup(t, "010006");
    assert_non_null(e);
    assert_string_equal(e->name, "北海道");
    assert_string_equal(e->kind, "prefecture");
    assert_string_equal(e->parent, "");

    e = lgcode_lookup(t, "221384");
    assert_non_null(e);
    assert_string_equal(e->name, "浜松市中央区");
    assert_string_equal(e->name_kana, "はままつしちゅうおうく");
    assert_string_equal(e->kind, "ward");
    assert_string_equal(e->parent, "221309");
    assert_string_equal(e->pref_name, "静岡県");

    /* Valid codes that are not in the table, and malformed keys. */
    assert_null(lgcode_lookup(t, "221317"));     /* 浜松市中区, gone 2024 */
    assert_null(lgcode_lookup(t, "131017"));
    assert_null(lgcode_lookup(t, "13101"));
    assert_null(lgcode_lookup(t, "1310160"));
    assert_null(lgcode_lookup(t, ""));
    assert_null(lgcode_lookup(t, NULL));
    assert_null(lgcode_lookup(NULL, "131016"));
    assert_int_equal(lgcode_count(NULL), 0);

    /* Read the file independently: every code passes the check digit, is
     * found, and the single-digit property holds but for the blind spot. */
    f = fopen(SHIPPED_CSV, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));      /* header */
    while (fgets(line, sizeof(line), f) != NULL) {
        char code[LGCODE_LEN + 1];

        assert_true(strlen(line) > LGCODE_LEN && line[LGCODE_LEN] == ',');
        memcpy(code, line, LGCODE_LEN);
        code[LGCODE_LEN] = '\0';
        if (!lgcode_valid(code))
            fail_msg("shipped code %s fails its check digit", code);
        e = lgcode_lookup(t, code);
        assert_non_null(e);
        assert_string_equal(e->code, code);
        check_single_digit_changes(code, true);
        lines++;
    }
    fclose(f);
    assert_int_equal(lines, SHIPPED_ROWS);
    lgcode_table_free(t);
    lgcode_table_free(NULL);
}

/* Lookups from several threads at once on one table (read-only). */
static void *
lookup_all(void *arg)
{
    static const char *const codes[] = { "131016", "011002", "010006",
                                         "221384", "221317", "472018" };
    const struct lgcode_table *t = arg;
    uintptr_t bad = 0;

    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
            const struct lgcode_entry *e = lgcode_lookup(t, codes[i]);

            if ((e == NULL) != (strcmp(codes[i], "221317") == 0))
                bad++;
            else if (e != NULL && strcmp(e->code, codes[i]) != 0)
                bad++;
        }
    }
    return (void *)bad;
}

static void
test_lgcode_threads(void **state)
{
    struct lgcode_table *t = NULL;
    pthread_t th[4];
    char err[256];

    (void)state;
    if (lgcode_table_load(SHIPPED_CSV, &t, err, sizeof(err)) != 0)
        fail_msg("load failed: %s", err);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, lookup_all, t), 0);
    for (int i = 0; i < 4; i++) {
        void *bad = NULL;

        assert_int_equal(pthread_join(th[i], &bad), 0);
        assert_int_equal((uintptr_t)bad, 0);
    }
    lgcode_table_free(t);
}

/* ---- crafted tables: each must be refused, naming the line ------------ */

#define H "lgcode,pref_code,pref_name,pref_kana,pref_katakana,name,name_kana,name_katakana,kind,parent_lgcode\n"
#define P "010006,01,北海道,ほっかいどう,ホッカイドウ,北海道,ほっかいどう,ホッカイドウ,prefecture,\n"
#define S "011002,01,北海道,ほっかいどう,ホッカイドウ,札幌市,さっぽろし,サッポロシ,designated_city,010006\n"
#define W "011011,01,北海道,ほっかいどう,ホッカイドウ,札幌市中央区,さっぽろしちゅうおうく,サッポロシチュウオウク,ward,011002\n"

struct tmpdir {
    char dir[512];
    char path[600];
};

static void
tmp_setup(struct tmpdir *td)
{
    snprintf(td->dir, sizeof(td->dir), "%s/test_ref.XXXXXX",
             MAMORI_TEST_BINARY_DIR);
    assert_non_null(mkdtemp(td->dir));
    /* The real name, so messages read as they would in production. */
    snprintf(td->path, sizeof(td->path), "%s/municipalities_lgcode.csv",
             td->dir);
}

static void
tmp_write(const struct tmpdir *td, const char *data, size_t len)
{
    FILE *f = fopen(td->path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void
tmp_teardown(const struct tmpdir *td)
{
    unlink(td->path);
    rmdir(td->dir);
}

/* Load `data`; it must fail with a message containing `want`. */
static void
expect_refused_n(const char *data, size_t len, const char *want)
{
    struct tmpdir td = { "", "" };
    struct lgcode_table *t = (struct lgcode_table *)&td;   /* poison */
    char err[256];

    tmp_setup(&td);
    tmp_write(&td, data, len);
    memset(err, 'x', sizeof(err));
    if (lgcode_table_load(td.path, &t, err, sizeof(err)) == 0)
        fail_msg("accepted a table that should fail with \"%s\"", want);
    assert_null(t);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    tmp_teardown(&td);
}

static void
expect_refused(const char *data, const char *want)
{
    expect_refused_n(data, strlen(data), want);
}

static void
test_lgcode_crafted_good(void **state)
{
    struct tmpdir td = { "", "" };
    struct lgcode_table *t = NULL;
    char err[256];
    /* Same rows, CRLF line ends, no final line end, out of order. */
    static const char crlf[] =
        "lgcode,pref_code,pref_name,pref_kana,pref_katakana,name,name_kana,"
        "name_katakana,kind,parent_lgcode\r\n"
        "011011,01,北海道,ほっかいどう,ホッカイドウ,札幌市中央区,"
        "さっぽろしちゅうおうく,サッポロシチュウオウク,ward,011002\r\n"
        "010006,01,北海道,ほっかいどう,ホッカイドウ,北海道,ほっかいどう,"
        "ホッカイドウ,prefecture,\r\n"
        "011002,01,\"北海道\",ほっかいどう,ホッカイドウ,札幌市,さっぽろし,"
        "サッポロシ,designated_city,010006";

    (void)state;
    tmp_setup(&td);
    tmp_write(&td, H P S W, strlen(H P S W));
    if (lgcode_table_load(td.path, &t, err, sizeof(err)) != 0)
        fail_msg("minimal table refused: %s", err);
    assert_int_equal(lgcode_count(t), 3);
    assert_string_equal(lgcode_lookup(t, "011011")->name, "札幌市中央区");
    lgcode_table_free(t);

    tmp_write(&td, crlf, strlen(crlf));
    t = NULL;
    if (lgcode_table_load(td.path, &t, err, sizeof(err)) != 0)
        fail_msg("CRLF table refused: %s", err);
    assert_int_equal(lgcode_count(t), 3);
    assert_string_equal(lgcode_lookup(t, "011002")->pref_name, "北海道");
    lgcode_table_free(t);

    /* A NULL or empty error buffer is allowed. */
    t = NULL;
    assert_int_equal(lgcode_table_load(td.path, &t, NULL, 0), 0);
    lgcode_table_free(t);
    tmp_write(&td, "", 0);
    t = NULL;
    assert_int_equal(lgcode_table_load(td.path, &t, NULL, 0), -1);
    assert_int_equal(lgcode_table_load(td.path, &t, err, 0), -1);
    assert_null(t);
    tmp_teardown(&td);
}

static void
test_lgcode_crafted_bad(void **state)
{
    (void)state;
    /* The exact sentence, once. */
    {
        struct tmpdir td = { "", "" };
        struct lgcode_table *t = NULL;
        char err[256];
        const char *data = H P S
            "011003,01,北海道,ほっかいどう,ホッカイドウ,札幌市,さっぽろし,"
            "サッポロシ,designated_city,010006\n";

        tmp_setup(&td);
        tmp_write(&td, data, strlen(data));
        assert_int_equal(lgcode_table_load(td.path, &t, err, sizeof(err)), -1);
        assert_int_equal(errno, EINVAL);
        assert_string_equal(err, "municipalities_lgcode.csv line 4: code "
                                 "011003 has a wrong check digit");
        tmp_teardown(&td);
    }

    /* Blank lines are skipped by libcsv but still counted. */
    expect_refused(H P "\n\r\n" "011003,01,北海道,ほっかいどう,ホッカイドウ,札幌市,"
                   "さっぽろし,サッポロシ,designated_city,010006\n",
                   "line 5: code 011003 has a wrong check digit");

    /* Wrong column count: too few, too many, blank-ish line. */
    expect_refused(H P "011002,01,北海道,ほっかいどう,ホッカイドウ,札幌市,"
                   "さっぽろし,サッポロシ,designated_city\n" W,
                   "csv line 3: expected 10 fields, found 9");
    expect_refused(H P S "011011,01,北海道,ほっかいどう,ホッカイドウ,札幌市中央区,"
                   "さっぽろしちゅうおうく,サッポロシチュウオウク,ward,011002,x\n",
                   "line 4: expected 10 fields, found 11");
    expect_refused(H P " \n" S, "line 3: lgcode is not 6 ASCII digits");

    /* Unterminated quote: in the middle (more lines follow) and at EOF. */
    expect_refused(H P "011002,01,\"北海道,ほっかいどう,ホッカイドウ,札幌市,"
                   "さっぽろし,サッポロシ,designated_city,010006\n" W,
                   "line 3: unterminated quoted field");
    expect_refused(H P S "011011,01,北海道,ほっかいどう,ホッカイドウ,\"札幌市中央区",
                   "line 4: unterminated quoted field");
    /* Quotes in the wrong place. */
    expect_refused(H P "011002,01,北\"海道,ほっかいどう,ホッカイドウ,札幌市,"
                   "さっぽろし,サッポロシ,designated_city,010006\n",
                   "line 3: malformed CSV quoting");
    expect_refused(H P "011002,01,\"北海道\"x,ほっかいどう,ホッカイドウ,札幌市,"
                   "さっぽろし,サッポロシ,designated_city,010006\n",
                   "line 3: malformed CSV quoting");

    /* Header. */
    expect_refused("lgcode,prefcode,pref_name,pref_kana,pref_katakana,name,"
                   "name_kana,name_katakana,kind,parent_lgcode\n" P,
                   "line 1: header column 2 must be \"pref_code\"");
    expect_refused("lgcode,pref_code,pref_name,pref_kana,pref_katakana,name,"
                   "name_kana,name_katakana,kind\n" P,
                   "line 1: expected 10 fields, found 9");
    expect_refused("\xef\xbb\xbf" H P, "line 1: the file starts with a byte-order mark");
    expect_refused("", "municipalities_lgcode.csv: empty file");
    expect_refused("\n\n", "empty file");
    expect_refused(H, "no rows after the header");

    /* Duplicates, reported on the later line. */
    expect_refused(H P S W S, "line 5: code 011002 already appears on line 3");
    expect_refused(H P P, "line 3: code 010006 already appears on line 2");

    /* Codes, kinds, parents. */
    expect_refused(H P " 011002,01,北海道,ほっかいどう,ホッカイドウ,札幌市,"
                   "さっぽろし,サッポロシ,designated_city,010006\n",
                   "line 3: lgcode is not 6 ASCII digits");
    expect_refused(H P "011002,02,北海道,ほっかいどう,ホッカイドウ,札幌市,"
                   "さっぽろし,サッポロシ,designated_city,010006\n",
                   "line 3: pref_code does not match");
    expect_refused(H P "011002,01,北海道,ほっかいどう,ホッカイドウ,札幌市,"
                   "さっぽろし,サッポロシ,metropolis,010006\n",
                   "line 3: code 011002 has an unknown kind");
    expect_refused(H P "011002,01,北海道,ほっかいどう,ホッカイドウ,札幌市,"
                   "さっぽろし,サッポロシ,designated_city,010007\n",
                   "line 3: parent_lgcode 010007 of code 011002 has a wrong check digit");
    expect_refused(H P "011002,01,北海道,ほっかいどう,ホッカイドウ,札幌市,"
                   "さっぽろし,サッポロシ,designated_city,\n",
                   "line 3: parent_lgcode of code 011002 is not 6 ASCII digits");
    expect_refused(H "010006,01,北海道,ほっかいどう,ホッカイドウ,北海道,"
                   "ほっかいどう,ホッカイドウ,prefecture,010006\n",
                   "line 2: prefecture 010006 must have an empty parent_lgcode");
    expect_refused(H P W, "line 3: parent_lgcode 011002 of code 011011 is not in the table");
    expect_refused(H P "011011,01,北海道,ほっかいどう,ホッカイドウ,札幌市中央区,"
                   "さっぽろしちゅうおうく,サッポロシチュウオウク,ward,010006\n",
                   "line 3: parent_lgcode 010006 of ward 011011 is a prefecture");

    /* Text must be non-empty, valid UTF-8 without control characters. */
    expect_refused(H P "011002,01,北海道,ほっかいどう,ホッカイドウ,,"
                   "さっぽろし,サッポロシ,designated_city,010006\n",
                   "line 3: column name of code 011002 is empty");
    expect_refused(H P "011002,01,北海道,ほっかいどう,ホッカイドウ,札幌\xff市,"
                   "さっぽろし,サッポロシ,designated_city,010006\n",
                   "line 3: column name of code 011002 is not valid UTF-8");
    expect_refused(H P "011002,01,北海道,ほっかいどう,ホッカイドウ,\xc0\xaf,"
                   "さっぽろし,サッポロシ,designated_city,010006\n",
                   "line 3: column name of code 011002 is not valid UTF-8");
    expect_refused(H P "011002,01,北海道,ほっかいどう,ホッカイドウ,\xed\xa0\x80,"
                   "さっぽろし,サッポロシ,designated_city,010006\n",
                   "line 3: column name of code 011002 is not valid UTF-8");
    expect_refused(H P "011002,01,北海道,ほっかいどう,ホッカイドウ,札幌市,"
                   "さっぽろし,\xe3\x82,designated_city,010006\n",
                   "line 3: column name_katakana of code 011002 is not valid UTF-8");
    expect_refused(H P "011002,01,北海道,ほっかいどう,ホッカイドウ,札幌\t市,"
                   "さっぽろし,サッポロシ,designated_city,010006\n",
                   "line 3: column name of code 011002 is not valid UTF-8");
    {
        static const char nul[] = H P "011002,01,北海道,ほっかいどう,ホッカイドウ,"
            "札幌\0市,さっぽろし,サッポロシ,designated_city,010006\n";

        expect_refused_n(nul, sizeof(nul) - 1,
                         "line 3: column name of code 011002 is not valid UTF-8");
    }
}

/* Line numbers stay right deep into the file, across read chunks: the
 * shipped table with one check digit broken on line 1500. */
static void
test_lgcode_crafted_deep_line(void **state)
{
    char *data, *p;
    size_t len;
    int line = 1;
    FILE *f = fopen(SHIPPED_CSV, "rb");

    (void)state;
    assert_non_null(f);
    data = malloc(512 * 1024);
    assert_non_null(data);
    len = fread(data, 1, 512 * 1024 - 1, f);
    fclose(f);
    assert_true(len > 200 * 1024);
    for (p = data; line < 1500; p++) {
        if (*p == '\n')
            line++;
    }
    /* Turn the valid check digit into the next one, which is wrong. */
    p[5] = p[5] == '9' ? '0' : (char)(p[5] + 1);
    {
        char want[64];

        snprintf(want, sizeof(want), "line 1500: code %.6s has a wrong", p);
        expect_refused_n(data, len, want);
    }
    free(data);
}

/* Size bounds: one field, the whole file. */
static void
test_lgcode_crafted_limits(void **state)
{
    struct tmpdir td = { "", "" };
    struct lgcode_table *t = NULL;
    char err[256];
    int fd;

    (void)state;
    for (size_t len = 257; len <= 100000; len = len * 10) {
        size_t cap = strlen(H P) + len + 200, n;
        char *buf = malloc(cap);

        assert_non_null(buf);
        n = (size_t)snprintf(buf, cap, "%s011002,01,北海道,ほっかいどう,"
                             "ホッカイドウ,", H P);
        memset(buf + n, 'a', len);
        n += len;
        n += (size_t)snprintf(buf + n, cap - n, ",さっぽろし,サッポロシ,"
                              "designated_city,010006\n");
        expect_refused_n(buf, n, "line 3: field 6 is longer than 256 bytes");
        free(buf);
    }

    /* 4 MiB + 1 (sparse, so cheap). */
    tmp_setup(&td);
    fd = open(td.path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 4 * 1024 * 1024 + 1), 0);
    close(fd);
    assert_int_equal(lgcode_table_load(td.path, &t, err, sizeof(err)), -1);
    assert_int_equal(errno, EFBIG);
    assert_non_null(strstr(err, "larger than 4194304 bytes"));

    /* Not a regular file; no file. */
    assert_int_equal(lgcode_table_load(td.dir, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a regular file"));
    unlink(td.path);
    assert_int_equal(lgcode_table_load(td.path, &t, err, sizeof(err)), -1);
    assert_int_equal(errno, ENOENT);
    assert_non_null(strstr(err, "municipalities_lgcode.csv: cannot open"));
    assert_null(t);
    assert_int_equal(lgcode_table_load(NULL, &t, err, sizeof(err)), -1);
    assert_int_equal(lgcode_table_load(SHIPPED_CSV, NULL, err, sizeof(err)), -1);
    tmp_teardown(&td);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mynumber_examples),
        cmocka_unit_test(test_mynumber_edges),
        cmocka_unit_test(test_mynumber_one_check_digit),
        cmocka_unit_test(test_lgcode_valid),
        cmocka_unit_test(test_lgcode_single_digit_change),
        cmocka_unit_test(test_lgcode_shipped_table),
        cmocka_unit_test(test_lgcode_threads),
        cmocka_unit_test(test_lgcode_crafted_good),
        cmocka_unit_test(test_lgcode_crafted_bad),
        cmocka_unit_test(test_lgcode_crafted_deep_line),
        cmocka_unit_test(test_lgcode_crafted_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
