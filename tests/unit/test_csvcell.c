/*
 * test_csvcell.c - the one formula neutraliser of every CSV mamori writes
 * (text/csvcell.h; OWASP CSV Injection): the exports (R2.7, vrs/csvout.c)
 * and the audit reports (R7.5, audit/query.c and the CLI's cmd_audit.c).
 *
 * All data is synthetic (R9.4).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/query.h"
#include "text/csvcell.h"
#include "vrs/csvout.h"

/* One cell through csvcell_fwrite, as bytes; the caller frees. */
static char *
cell(const char *s, size_t *len)
{
    char *out = NULL;
    FILE *f = open_memstream(&out, len);

    assert_non_null(f);
    assert_int_equal(csvcell_fwrite(f, s), 0);
    assert_int_equal(fclose(f), 0);
    return out;
}

/* R2.7, R7.5: the leading characters a spreadsheet evaluates (= + - @ TAB
 * CR) are neutralised, nothing else is; quotes, commas and line breaks stay
 * inside the quotes; multi-byte UTF-8 passes byte for byte. */
static void
test_R2_7_R7_5_csvcell_fwrite(void **state)
{
    static const struct { const char *in, *out; } cases[] = {
        { "=1+1", "\"'=1+1\"" },
        { "+81", "\"'+81\"" },
        { "-2", "\"'-2\"" },
        { "@SUM(A1)", "\"'@SUM(A1)\"" },
        { "\tx", "\"'\tx\"" },
        { "\rx", "\"'\rx\"" },
        /* the classic payload: the mark goes in, the quotes are doubled */
        { "=HYPERLINK(\"http://x.example\",\"y\")",
          "\"'=HYPERLINK(\"\"http://x.example\"\",\"\"y\"\")\"" },
        { "=a,b\nc", "\"'=a,b\nc\"" },
        /* inside a cell the characters are harmless */
        { "a=1", "\"a=1\"" },
        { "x-@+", "\"x-@+\"" },
        { "'q", "\"'q\"" },                    /* already text: left alone */
        { "a,b", "\"a,b\"" },
        { "say \"hi\"", "\"say \"\"hi\"\"\"" },
        { "\"", "\"\"\"\"" },
        { "two\nlines", "\"two\nlines\"" },
        { "\nx", "\"\nx\"" },                  /* LF is not evaluated */
        { " =1", "\" =1\"" },
        { "", "\"\"" },
        /* multi-byte UTF-8: unchanged; a full-width ＝ (U+FF1D) is not '=' */
        { "山田　太郎", "\"山田　太郎\"" },
        { "ｶﾞｯｺｳ,\"東京\"", "\"ｶﾞｯｺｳ,\"\"東京\"\"\"" },
        { "＝1+1", "\"＝1+1\"" },
        { "=山田", "\"'=山田\"" },
        { "-𠮷野", "\"'-𠮷野\"" },             /* a 4-byte character */
    };
    size_t len;
    char *out;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        out = cell(cases[i].in, &len);
        if (len != strlen(cases[i].out) || memcmp(out, cases[i].out, len) != 0)
            fail_msg("case %zu: got [%.*s], want [%s]", i, (int)len, out, cases[i].out);
        free(out);
    }
    out = cell(NULL, &len);                     /* NULL is the empty cell */
    assert_int_equal(len, 2);
    assert_memory_equal(out, "\"\"", 2);
    free(out);
}

/* The predicate over every leading byte: exactly = + - @ TAB CR. */
static void
test_csvcell_formula_like_every_byte(void **state)
{
    (void)state;
    for (int c = 1; c < 256; c++) {
        char s[3] = { (char)c, 'x', '\0' };
        bool want = c == '=' || c == '+' || c == '-' || c == '@' || c == '\t' || c == '\r';
        if (csvcell_formula_like(s) != want)
            fail_msg("leading byte 0x%02x: %d", c, !want);
    }
    assert_true(csvcell_formula_like("="));
    assert_false(csvcell_formula_like(""));
    assert_false(csvcell_formula_like(NULL));
}

/* A failed write is reported, neutralised or not. */
static void
test_csvcell_write_failure(void **state)
{
    FILE *f = fopen("/dev/null", "r");

    (void)state;
    assert_non_null(f);
    assert_int_equal(csvcell_fwrite(f, "plain"), -1);
    assert_int_equal(csvcell_fwrite(f, "=1+1"), -1);
    fclose(f);
}

static int
mem_write(void *arg, const void *p, size_t n)
{
    FILE *f = arg;

    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

/* The export writer's cell (RFC 4180: quoted only where needed) in `buf`;
 * the caller frees. */
static char *
export_cell(const char *s, size_t *len)
{
    const struct csvout_opts o = { .encoding = CSVOUT_UTF8, .crlf = false };
    char *out = NULL;
    FILE *f = open_memstream(&out, len);
    struct csvout *w;

    assert_non_null(f);
    assert_int_equal(csvout_new(&o, mem_write, f, &w), 0);
    assert_int_equal(csvout_cell(w, s), 0);
    assert_int_equal(csvout_flush(w), 0);
    csvout_free(w);
    assert_int_equal(fclose(f), 0);
    return out;
}

/* Every writer follows the one rule: for each leading ASCII byte the
 * export (csvout) and the audit review report (audit_review_csv) mark the
 * cell exactly when csvcell_formula_like says so (R2.7, R7.5). */
static void
test_every_writer_uses_the_rule(void **state)
{
    static const char head[] = "actor,events,records_touched,off_hours,failures,refusals\n";

    (void)state;
    for (int c = 1; c < 128; c++) {
        char s[3] = { (char)c, 'x', '\0' }, *out, *p;
        json_t *rep = json_pack("{s:s}", "actor", s);
        size_t len, n;
        bool like = csvcell_formula_like(s);

        /* the export: after the opening quote RFC 4180 adds for , " CR LF,
         * the mark then the cell's first byte, or the first byte at once */
        out = export_cell(s, &len);
        n = out[0] == '"' ? 1 : 0;
        assert_true(len >= n + 2);
        if (like ? out[n] != '\'' || out[n + 1] != (char)c : out[n] != (char)c)
            fail_msg("csvout, leading byte 0x%02x", c);
        free(out);
        /* the audit review report: its actor cell, always quoted */
        assert_non_null(rep);
        assert_int_equal(audit_review_csv(rep, &out, &len), 0);
        assert_true(len > sizeof(head) + 2 && memcmp(out, head, sizeof(head) - 1) == 0);
        p = out + sizeof(head) - 1;
        if (p[0] != '"' || (like ? p[1] != '\'' || p[2] != (char)c : p[1] != (char)c))
            fail_msg("audit_review_csv, leading byte 0x%02x", c);
        free(out);
        json_decref(rep);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R2_7_R7_5_csvcell_fwrite),
        cmocka_unit_test(test_csvcell_formula_like_every_byte),
        cmocka_unit_test(test_csvcell_write_failure),
        cmocka_unit_test(test_every_writer_uses_the_rule),
    };

    return cmocka_run_group_tests_name("csvcell", tests, NULL, NULL);
}
