/*
 * test_csv.c - the CSV reader and writer of imports and exports (R2.6,
 * R2.7), and the replay of the fuzzing corpora and regressions through
 * both harnesses (tests/fuzz/).
 *
 * All data is synthetic (R9.4).
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

#include "common/util.h"
#include "vrs/csvin.h"
#include "vrs/csvout.h"

/* The harnesses, under other names, so their corpora can be replayed. */
#define LLVMFuzzerTestOneInput fuzz_csv_import_one
#include "../fuzz/fuzz_csv_import.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_json_body_one
#include "../fuzz/fuzz_json_body.c"
#undef LLVMFuzzerTestOneInput

/* ---- collecting what the reader says ------------------------------------ */

#define MAXREC 32

struct got {
    size_t   nrec;
    uint64_t line[MAXREC];
    size_t   nfields[MAXREC];
    char     text[MAXREC][256];     /* fields joined with '|' */
    size_t   nprob;
    uint64_t pline[MAXREC];
    size_t   pfield[MAXREC];
    enum csvin_problem prob[MAXREC];
};

static int
got_record(void *arg, uint64_t line, const char *const *f, const size_t *lens, size_t n)
{
    struct got *g = arg;
    size_t used = 0;

    assert_true(g->nrec < MAXREC);
    g->line[g->nrec] = line;
    g->nfields[g->nrec] = n;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(strlen(f[i]), lens[i]);
        used += (size_t)snprintf(g->text[g->nrec] + used, sizeof(g->text[0]) - used,
                                 "%s%s", i ? "|" : "", f[i]);
        assert_true(used < sizeof(g->text[0]));
    }
    g->nrec++;
    return 0;
}

static int
got_problem(void *arg, uint64_t line, size_t field, enum csvin_problem p)
{
    struct got *g = arg;

    assert_true(g->nprob < MAXREC);
    g->pline[g->nprob] = line;
    g->pfield[g->nprob] = field;
    g->prob[g->nprob] = p;
    g->nprob++;
    return 0;
}

static enum csvin_status
read_text(const char *data, size_t len, size_t chunk, enum csvin_encoding enc,
          size_t field_max, size_t fields_max, struct got *g)
{
    struct csvin_opts o = { enc, field_max, fields_max };
    struct csvin_callbacks cb;

    memset(g, 0, sizeof(*g));
    cb = (struct csvin_callbacks){ got_record, got_problem, g };
    return csvin_read_mem(data, len, chunk, &o, &cb);
}

#define READ(s, chunk, enc, g) read_text((s), sizeof(s) - 1, (chunk), (enc), 0, 0, (g))

/* ---- reader --------------------------------------------------------------- */

/* R2.6: a quoted field may hold line breaks; every record keeps the line
 * it starts on, so the lines after it are still named right. */
static void
test_R2_6_csvin_line_numbers_after_embedded_newlines(void **state)
{
    static const char in[] =
        "h1,h2\n"
        "\"a\nb\",c\n"          /* lines 2-3 */
        "\n"                    /* blank line 4 is skipped */
        "d,\"e\r\nf\r\ng\"\r\n" /* lines 5-7, CRLF */
        "\"x\"\"y\",z";         /* line 8, no final line break */
    struct got g;

    (void)state;
    for (size_t chunk = 0; chunk <= 7; chunk++) {
        assert_int_equal(READ(in, chunk, CSVIN_UTF8, &g), CSVIN_OK);
        assert_int_equal(g.nprob, 0);
        assert_int_equal(g.nrec, 4);
        assert_int_equal(g.line[0], 1);
        assert_int_equal(g.line[1], 2);
        assert_string_equal(g.text[1], "a\nb|c");
        assert_int_equal(g.line[2], 5);
        assert_string_equal(g.text[2], "d|e\r\nf\r\ng");
        assert_int_equal(g.line[3], 8);
        assert_string_equal(g.text[3], "x\"y|z");
    }
}

/* R2.6: a record ended by a lone CR and the next one starting on the same
 * line keeps that line, whatever the chunks (found by fuzz_csv_import:
 * tests/fuzz/regressions/fuzz_csv_import/record_started_after_cr.csv). */
static void
test_R2_6_csvin_line_of_record_after_cr(void **state)
{
    static const char in[] = "a,b\r\"c\nd\",e\r\nf,\"g";
    struct got g;

    (void)state;
    for (size_t chunk = 0; chunk <= 5; chunk++) {
        assert_int_equal(READ(in, chunk, CSVIN_UTF8, &g), CSVIN_OK);
        assert_int_equal(g.nrec, 2);
        assert_int_equal(g.line[0], 1);
        assert_int_equal(g.line[1], 1);         /* "c\nd" starts on line 1 */
        assert_string_equal(g.text[1], "c\nd|e");
        assert_int_equal(g.nprob, 1);
        assert_int_equal(g.prob[0], CSVIN_P_UNTERMINATED);
        assert_int_equal(g.pline[0], 3);
    }
}

/* R2.6: a UTF-8 byte-order mark is dropped, even when it arrives one byte
 * at a time; one that is not at the very start is data. */
static void
test_R2_6_csvin_bom(void **state)
{
    static const char in[] = "\xef\xbb\xbf" "address_no,x\n1,\xef\xbb\xbf\n";
    static const char half[] = "\xef\xbb" "a,b\n";
    struct got g;

    (void)state;
    for (size_t chunk = 0; chunk <= 4; chunk++) {
        assert_int_equal(READ(in, chunk, CSVIN_UTF8, &g), CSVIN_OK);
        assert_int_equal(g.nrec, 2);
        assert_string_equal(g.text[0], "address_no|x");
        assert_string_equal(g.text[1], "1|\xef\xbb\xbf");
    }
    /* Two bytes of a BOM then other text: not a BOM, and not UTF-8. */
    assert_int_equal(READ(half, 1, CSVIN_UTF8, &g), CSVIN_OK);
    assert_int_equal(g.nrec, 0);
    assert_int_equal(g.nprob, 1);
    assert_int_equal(g.prob[0], CSVIN_P_NOT_UTF8);
    assert_int_equal(g.pfield[0], 1);
    /* A UTF-8 file read as CP932 is named as such at once. */
    assert_int_equal(READ(in, 2, CSVIN_CP932, &g), CSVIN_STOPPED);
    assert_int_equal(g.nprob, 1);
    assert_int_equal(g.prob[0], CSVIN_P_UTF8_BOM_IN_CP932);
}

/* R2.6: CP932 becomes UTF-8, whatever chunk boundary falls inside a
 * two-byte character: 髙 (IBM extension FBFC), ① (NEC row 13, 8740),
 * half-width katakana (one byte each). */
static void
test_R2_6_csvin_cp932_split_characters(void **state)
{
    static const char in[] = "\xfb\xfc,\x87\x40,\xca\xdd\xb6\xb8\r\n"
                             "\x8e\x52\x93\x63\x81\x40\x91\xbe\x98\x59,x\r\n";
    struct got g;

    (void)state;
    for (size_t chunk = 0; chunk <= 9; chunk++) {
        assert_int_equal(READ(in, chunk, CSVIN_CP932, &g), CSVIN_OK);
        assert_int_equal(g.nprob, 0);
        assert_int_equal(g.nrec, 2);
        assert_string_equal(g.text[0], "髙|①|ﾊﾝｶｸ");
        assert_string_equal(g.text[1], "山田　太郎|x");
        assert_int_equal(g.line[1], 2);
    }
}

/* R2.6: a byte CP932 does not have is refused with its line and field,
 * and reading goes on with the next line. */
static void
test_R2_6_csvin_cp932_bad_byte(void **state)
{
    static const char in[] = "a,b\r\nc,\x8e\x52\xff\r\n\xa0,e\r\nf,g\r\n";
    struct got g;

    (void)state;
    for (size_t chunk = 0; chunk <= 3; chunk++) {
        assert_int_equal(READ(in, chunk, CSVIN_CP932, &g), CSVIN_OK);
        assert_int_equal(g.nprob, 2);
        assert_int_equal(g.pline[0], 2);
        assert_int_equal(g.pfield[0], 2);
        assert_int_equal(g.prob[0], CSVIN_P_NOT_CP932);
        assert_int_equal(g.pline[1], 3);
        assert_int_equal(g.pfield[1], 1);
        assert_int_equal(g.nrec, 2);
        assert_string_equal(g.text[1], "f|g");
        assert_int_equal(g.line[1], 4);
    }
}

/* R2.6: invalid UTF-8 (a lone continuation byte, an overlong form, a
 * surrogate) is refused field by field. */
static void
test_R2_6_csvin_invalid_utf8(void **state)
{
    static const char in[] = "ok,\x80\n\xc0\xaf,x\n\xed\xa0\x80,y\n\xe3\x81\x82,z\n";
    struct got g;

    (void)state;
    assert_int_equal(READ(in, 0, CSVIN_UTF8, &g), CSVIN_OK);
    assert_int_equal(g.nprob, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(g.prob[i], CSVIN_P_NOT_UTF8);
        assert_int_equal(g.pline[i], i + 1);
    }
    assert_int_equal(g.pfield[0], 2);
    assert_int_equal(g.nrec, 1);
    assert_string_equal(g.text[0], "あ|z");
}

/* R2.6: broken quoting is named with its line, and the next line is
 * read normally; a quote still open at the end is named too. */
static void
test_R2_6_csvin_quoting(void **state)
{
    static const char in[] = "a,b\"c\nd,e\n\"f\"g,h\ni,\"j\nk";
    struct got g;

    (void)state;
    for (size_t chunk = 0; chunk <= 3; chunk++) {
        assert_int_equal(READ(in, chunk, CSVIN_UTF8, &g), CSVIN_OK);
        assert_int_equal(g.nrec, 1);
        assert_string_equal(g.text[0], "d|e");
        assert_int_equal(g.line[0], 2);
        assert_int_equal(g.nprob, 3);
        assert_int_equal(g.prob[0], CSVIN_P_QUOTING);
        assert_int_equal(g.pline[0], 1);
        assert_int_equal(g.prob[1], CSVIN_P_QUOTING);
        assert_int_equal(g.pline[1], 3);
        assert_int_equal(g.prob[2], CSVIN_P_UNTERMINATED);
        assert_int_equal(g.pline[2], 4);
    }
}

/* R2.6: the limits of one record: field length (as UTF-8), field count,
 * NUL bytes; fields beyond the hard cap never grow the buffer. */
static void
test_R2_6_csvin_limits(void **state)
{
    static const char in[] = "12345678,x\n123456789,x\na,b,c,d\n\"n\0l\",x\nok,1\n";
    struct got g;
    char *big;
    size_t n = CSVIN_FIELD_LIMIT + 5000;

    (void)state;
    assert_int_equal(read_text(in, sizeof(in) - 1, 0, CSVIN_UTF8, 8, 3, &g), CSVIN_OK);
    assert_int_equal(g.nrec, 2);
    assert_string_equal(g.text[0], "12345678|x");
    assert_string_equal(g.text[1], "ok|1");
    assert_int_equal(g.nprob, 3);
    assert_int_equal(g.prob[0], CSVIN_P_FIELD_TOO_LONG);
    assert_int_equal(g.pline[0], 2);
    assert_int_equal(g.pfield[0], 1);
    assert_int_equal(g.prob[1], CSVIN_P_TOO_MANY_FIELDS);
    assert_int_equal(g.pline[1], 3);
    assert_int_equal(g.prob[2], CSVIN_P_NUL);
    assert_int_equal(g.pline[2], 4);
    /* Three bytes of UTF-8 count as three: あ x 3 = 9 > 8. */
    assert_int_equal(read_text("あああ\n", 10, 0, CSVIN_UTF8, 8, 3, &g), CSVIN_OK);
    assert_int_equal(g.prob[0], CSVIN_P_FIELD_TOO_LONG);
    /* CP932 is measured after conversion: 3 two-byte characters = 9. */
    assert_int_equal(read_text("\x82\xa0\x82\xa0\x82\xa0\n", 7, 0, CSVIN_CP932, 8, 3, &g),
                     CSVIN_OK);
    assert_int_equal(g.prob[0], CSVIN_P_FIELD_TOO_LONG);
    /* Past the hard cap libcsv gets no more memory: still one problem,
     * then the next line. */
    big = malloc(n + 16);
    assert_non_null(big);
    memset(big, 'a', n);
    memcpy(big + n, "\nb,c\n", 5);
    assert_int_equal(read_text(big, n + 5, 4096, CSVIN_UTF8, CSVIN_FIELD_LIMIT, 3, &g),
                     CSVIN_OK);
    free(big);
    assert_int_equal(g.nprob, 1);
    assert_int_equal(g.prob[0], CSVIN_P_FIELD_TOO_LONG);
    assert_int_equal(g.nrec, 1);
    assert_int_equal(g.line[0], 2);
    /* Options beyond the limits are refused. */
    assert_int_equal(read_text("a", 1, 0, CSVIN_UTF8, CSVIN_FIELD_LIMIT + 1, 0, &g),
                     CSVIN_ERR_ARG);
}

static int
stop_at_two(void *arg, uint64_t line, const char *const *f, const size_t *lens, size_t n)
{
    (void)f;
    (void)lens;
    (void)n;
    *(uint64_t *)arg = line;
    return line == 2;
}

struct tally {
    uint64_t records, last;
};

static int
tally_record(void *arg, uint64_t line, const char *const *f, const size_t *lens, size_t n)
{
    struct tally *t = arg;

    (void)f;
    (void)lens;
    assert_int_equal(n, 2);
    t->records++;
    t->last = line;
    return 0;
}

static void
count_bytes(void *arg, const uint8_t *buf, size_t n)
{
    (void)buf;
    *(size_t *)arg += n;
}

/* R2.6: reading a descriptor in chunks (the bytes callback sees each);
 * a record callback can stop it. */
static void
test_R2_6_csvin_fd(void **state)
{
    char path[512];
    struct csvin_opts o = { CSVIN_UTF8, 0, 0 };
    uint64_t last = 0;
    struct csvin_callbacks stop = { stop_at_two, NULL, &last };
    struct tally t = { 0, 0 };
    struct csvin_callbacks all = { tally_record, NULL, &t };
    size_t bytes = 0;
    long size;
    FILE *f;
    int fd;

    (void)state;
    snprintf(path, sizeof(path), "%s/test_csv_fd.XXXXXX", MAMORI_TEST_BINARY_DIR);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w+");
    assert_non_null(f);
    for (int i = 0; i < 20000; i++)
        fprintf(f, "%d,%s\n", i, i == 1 ? "\"two\nlines\"" : "x");
    fflush(f);
    size = ftell(f);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(csvin_read_fd(fd, 1000, &o, &stop, count_bytes, &bytes), CSVIN_STOPPED);
    assert_int_equal(last, 2);
    assert_int_equal(bytes, 1000);
    /* To the end: 20000 records, the last on line 20001 (record 2 spans
     * two lines); every byte went through the bytes callback. */
    bytes = 0;
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(csvin_read_fd(fd, 0, &o, &all, count_bytes, &bytes), CSVIN_OK);
    assert_int_equal(t.records, 20000);
    assert_int_equal(t.last, 20001);
    assert_int_equal(bytes, (size_t)size);
    fclose(f);
    unlink(path);
}

/* ---- writer --------------------------------------------------------------- */

struct sink {
    char   buf[8192];
    size_t len;
    int    fail;            /* make writes fail */
};

static int
sink_write(void *arg, const void *p, size_t n)
{
    struct sink *s = arg;

    if (s->fail) {
        errno = ENOSPC;
        return -1;
    }
    assert_true(s->len + n <= sizeof(s->buf));
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

static void
write_cells(enum csvout_encoding enc, bool crlf, const char *const *cells, size_t n,
            struct sink *s)
{
    struct csvout_opts o = { enc, crlf };
    struct csvout *w;

    memset(s, 0, sizeof(*s));
    assert_int_equal(csvout_new(&o, sink_write, s, &w), 0);
    assert_int_equal(csvout_record(w, cells, n), 0);
    assert_int_equal(csvout_flush(w), 0);
    csvout_free(w);
}

/* R2.7: RFC 4180 quoting, CRLF or LF. */
static void
test_R2_7_csvout_quoting(void **state)
{
    const char *cells[] = { "plain", "a,b", "say \"hi\"", "two\nlines", "", "cr\r" };
    struct sink s;

    (void)state;
    write_cells(CSVOUT_UTF8, true, cells, 6, &s);
    assert_int_equal(s.len, strlen("plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",,\"cr\r\"\r\n"));
    assert_memory_equal(s.buf, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",,\"cr\r\"\r\n", s.len);
    write_cells(CSVOUT_UTF8, false, cells, 1, &s);
    assert_int_equal(s.len, 6);
    assert_memory_equal(s.buf, "plain\n", 6);
}

/* R2.7 (OWASP CSV injection): every cell starting with = + - @ TAB or CR
 * gets a single quote in front; others are untouched. */
static void
test_R2_7_csvout_formula_neutralised(void **state)
{
    const char *cells[] = { "=1+1", "+81", "-2", "@SUM(A1)", "\tx", "\rx", "a=1", "'q" };
    static const char want[] = "'=1+1,'+81,'-2,'@SUM(A1),'\tx,\"'\rx\",a=1,'q\r\n";
    struct sink s;

    (void)state;
    write_cells(CSVOUT_UTF8, true, cells, 8, &s);
    assert_int_equal(s.len, sizeof(want) - 1);
    assert_memory_equal(s.buf, want, s.len);
}

/* R2.7: CP932 output, byte for byte; a character CP932 lacks fails the
 * cell instead of being replaced, and the writer stays failed. */
static void
test_R2_7_csvout_cp932(void **state)
{
    const char *cells[] = { "髙", "①", "ﾊﾝｶｸ", "山田　太郎" };
    static const char want[] = "\xfb\xfc,\x87\x40,\xca\xdd\xb6\xb8,"
                               "\x8e\x52\x93\x63\x81\x40\x91\xbe\x98\x59\r\n";
    struct csvout_opts o = { CSVOUT_CP932, true };
    struct csvout *w;
    struct sink s;

    (void)state;
    write_cells(CSVOUT_CP932, true, cells, 4, &s);
    assert_int_equal(s.len, sizeof(want) - 1);
    assert_memory_equal(s.buf, want, s.len);

    memset(&s, 0, sizeof(s));
    assert_int_equal(csvout_new(&o, sink_write, &s, &w), 0);
    assert_int_equal(csvout_cell(w, "\xf0\xa0\xae\xb7"), -1);      /* 𠮷 */
    assert_int_equal(errno, EILSEQ);
    assert_int_equal(csvout_cell(w, "ok"), -1);
    assert_int_equal(csvout_end(w), -1);
    csvout_free(w);
    /* Not UTF-8 at all. */
    o.encoding = CSVOUT_UTF8;
    assert_int_equal(csvout_new(&o, sink_write, &s, &w), 0);
    assert_int_equal(csvout_cell(w, "\xff"), -1);
    assert_int_equal(errno, EILSEQ);
    csvout_free(w);
}

static int
count_write(void *arg, const void *p, size_t n)
{
    (void)p;
    *(size_t *)arg += n;
    return 0;
}

/* R2.7: output larger than the buffer is handed over in pieces, all of
 * it; a failing write is reported and sticks. */
static void
test_R2_7_csvout_streaming(void **state)
{
    struct csvout_opts o = { CSVOUT_UTF8, true };
    struct csvout *w;
    struct sink s;
    size_t total = 0;

    (void)state;
    assert_int_equal(csvout_new(&o, count_write, &total, &w), 0);
    for (int i = 0; i < 50000; i++) {
        const char *cells[] = { "0123456789", "abcdefghij" };
        assert_int_equal(csvout_record(w, cells, 2), 0);
    }
    assert_int_equal(csvout_flush(w), 0);
    assert_int_equal(total, 50000u * 23u);
    assert_int_equal(csvout_bytes(w), 50000u * 23u);
    csvout_free(w);

    memset(&s, 0, sizeof(s));
    s.fail = 1;
    assert_int_equal(csvout_new(&o, sink_write, &s, &w), 0);
    assert_int_equal(csvout_cell(w, "x"), 0);
    assert_int_equal(csvout_flush(w), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(csvout_cell(w, "y"), -1);
    csvout_free(w);
}

/* ---- fuzzing corpora and regressions --------------------------------------- */

static size_t
replay_dir(const char *dir, int (*one)(const uint8_t *, size_t))
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[1024];
        char *data = NULL;
        size_t len = 0;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (util_read_file(path, 1u << 20, &data, &len) != 0)
            continue;       /* a directory or unreadable: not an input */
        assert_int_equal(one((const uint8_t *)data, len), 0);
        free(data);
        n++;
    }
    closedir(d);
    return n;
}

#define FUZZ_DIR MAMORI_TEST_SOURCE_DIR "/tests/fuzz"

/* Every seed and every regression input goes through the harness with
 * its properties (tests/fuzz/); a crash found once stays fixed. */
static void
test_fuzz_corpora_replay(void **state)
{
    (void)state;
    assert_true(replay_dir(FUZZ_DIR "/corpus/fuzz_csv_import", fuzz_csv_import_one) >= 10);
    assert_true(replay_dir(FUZZ_DIR "/corpus/fuzz_json_body", fuzz_json_body_one) >= 10);
    (void)replay_dir(FUZZ_DIR "/regressions/fuzz_csv_import", fuzz_csv_import_one);
    (void)replay_dir(FUZZ_DIR "/regressions/fuzz_json_body", fuzz_json_body_one);
}

static int
teardown_catalogue(void **state)
{
    (void)state;
    vrs_catalogue_free(fz_cat);
    fz_cat = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R2_6_csvin_line_numbers_after_embedded_newlines),
        cmocka_unit_test(test_R2_6_csvin_line_of_record_after_cr),
        cmocka_unit_test(test_R2_6_csvin_bom),
        cmocka_unit_test(test_R2_6_csvin_cp932_split_characters),
        cmocka_unit_test(test_R2_6_csvin_cp932_bad_byte),
        cmocka_unit_test(test_R2_6_csvin_invalid_utf8),
        cmocka_unit_test(test_R2_6_csvin_quoting),
        cmocka_unit_test(test_R2_6_csvin_limits),
        cmocka_unit_test(test_R2_6_csvin_fd),
        cmocka_unit_test(test_R2_7_csvout_quoting),
        cmocka_unit_test(test_R2_7_csvout_formula_neutralised),
        cmocka_unit_test(test_R2_7_csvout_cp932),
        cmocka_unit_test(test_R2_7_csvout_streaming),
        cmocka_unit_test_teardown(test_fuzz_corpora_replay, teardown_catalogue),
    };

    return cmocka_run_group_tests_name("csv reader, writer, fuzz replay", tests, NULL, NULL);
}
