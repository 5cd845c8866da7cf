/*
 * test_revoke.c - the revoked-terminal set (R6.2: revoking a lost
 * terminal's certificate takes effect at once).
 *
 * The list format is checked strictly (a malformed line must never be
 * skipped, or a revoked terminal would stay trusted), and the process-wide
 * set must swap atomically under concurrent readers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tls/revoke.h"

/* Fingerprints written out by hand (not produced by the code under test). */
#define FP_A_HEX "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define FP_A_UP  "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF"
#define FP_B_HEX "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define FP_C_HEX "0000000000000000000000000000000000000000000000000000000000000001"

static const uint8_t FP_A[32] = {
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
};
static const uint8_t FP_B[32] = {
    0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00,
    0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x00,
};
static const uint8_t FP_C[32] = {
    [31] = 0x01,
};

static struct revoke_set *
parse_ok(const char *text)
{
    struct revoke_set *s = NULL;
    unsigned bad = 0;

    if (revoke_set_parse(text, strlen(text), &s, &bad) != 0)
        fail_msg("list refused at line %u:\n%s", bad, text);
    assert_non_null(s);
    return s;
}

static void
expect_bad_line(const char *text, size_t len, unsigned want_line)
{
    struct revoke_set *s = NULL;
    unsigned bad = 0;

    errno = 0;
    if (revoke_set_parse(text, len, &s, &bad) == 0) {
        revoke_set_free(s);
        fail_msg("malformed list accepted:\n%s", text);
    }
    assert_null(s);
    assert_int_equal(bad, want_line);
}

/* ---- parsing -------------------------------------------------------------- */

static void
test_parse_comments_blank_crlf(void **state)
{
    const char *text =
        "# revoked terminals, tenant 131016\r\n"
        "\r\n"
        FP_A_HEX "\r\n"
        "   \t\n"
        "   # indented comment\n"
        "\t" FP_B_HEX "  # lost 2024-05-01\r\n"
        FP_C_HEX "#no space before the comment";   /* no final newline */
    struct revoke_set *s;

    (void)state;
    s = parse_ok(text);
    assert_int_equal(revoke_set_count(s), 3);
    assert_true(revoke_set_contains(s, FP_A));
    assert_true(revoke_set_contains(s, FP_B));
    assert_true(revoke_set_contains(s, FP_C));
    revoke_set_free(s);
}

static void
test_parse_empty_and_comment_only(void **state)
{
    struct revoke_set *s = NULL;
    unsigned bad = 0;

    (void)state;
    assert_int_equal(revoke_set_parse("", 0, &s, &bad), 0);
    assert_int_equal(revoke_set_count(s), 0);
    assert_false(revoke_set_contains(s, FP_A));
    revoke_set_free(s);

    s = parse_ok("# nothing revoked yet\n\n");
    assert_int_equal(revoke_set_count(s), 0);
    assert_false(revoke_set_contains(s, FP_A));
    revoke_set_free(s);
}

static void
test_parse_duplicates_collapsed_any_case(void **state)
{
    struct revoke_set *s;

    (void)state;
    /* The same fingerprint three times, in lower, upper and mixed case. */
    s = parse_ok(FP_A_HEX "\n" FP_A_UP "\n"
                 "00112233445566778899AaBbCcDdEeFf00112233445566778899aAbBcCdDeEfF\n"
                 FP_B_HEX "\n");
    assert_int_equal(revoke_set_count(s), 2);
    assert_true(revoke_set_contains(s, FP_A));
    assert_true(revoke_set_contains(s, FP_B));
    /* The packed form is sorted and unique: A (00..) before B (ff..). */
    assert_memory_equal(revoke_set_raw(s), FP_A, 32);
    assert_memory_equal(revoke_set_raw(s) + 32, FP_B, 32);
    revoke_set_free(s);
}

static void
test_contains_exact_match_only(void **state)
{
    struct revoke_set *s;
    uint8_t near[32];

    (void)state;
    s = parse_ok(FP_A_HEX "\n" FP_B_HEX "\n");
    assert_true(revoke_set_contains(s, FP_A));
    assert_false(revoke_set_contains(s, FP_C));
    /* One bit off anywhere is a different certificate. */
    for (size_t i = 0; i < 32; i++) {
        memcpy(near, FP_A, 32);
        near[i] ^= 0x01;
        assert_false(revoke_set_contains(s, near));
    }
    assert_false(revoke_set_contains(NULL, FP_A));
    revoke_set_free(s);
}

static void
test_parse_bad_lines_numbered(void **state)
{
    char t[512];

    (void)state;
    /* 63 hex characters (the last one dropped). */
    snprintf(t, sizeof(t), "# ok\n%s\n%.63s\n", FP_A_HEX, FP_B_HEX);
    expect_bad_line(t, strlen(t), 3);
    /* 63 hex characters followed by a comment still is not a fingerprint. */
    snprintf(t, sizeof(t), "%.63s # x\n", FP_B_HEX);
    expect_bad_line(t, strlen(t), 1);
    /* 65 hex characters. */
    snprintf(t, sizeof(t), "%s\n%s0\n", FP_B_HEX, FP_A_HEX);
    expect_bad_line(t, strlen(t), 2);
    /* A non-hex character inside (position 40 of 64). */
    snprintf(t, sizeof(t), "\n\n\n\n%.40sg%s\n", FP_A_HEX, &FP_A_HEX[41]);
    assert_int_equal(strlen(t), 4 + 65);
    expect_bad_line(t, strlen(t), 5);
    /* Text after the fingerprint that is not a '#' comment, CRLF file. */
    snprintf(t, sizeof(t), "%s\r\n%s lost laptop\r\n", FP_A_HEX, FP_B_HEX);
    expect_bad_line(t, strlen(t), 2);
    snprintf(t, sizeof(t), "%s;\n", FP_A_HEX);
    expect_bad_line(t, strlen(t), 1);
    /* A fingerprint with colons (openssl -fingerprint style). */
    {
        size_t o = 0;
        for (int i = 0; i < 32; i++)
            o += (size_t)snprintf(t + o, sizeof(t) - o, "%s%.2s", i ? ":" : "", &FP_A_HEX[2 * i]);
        snprintf(t + o, sizeof(t) - o, "\n");
        expect_bad_line(t, strlen(t), 1);
    }
    /* A NUL byte hidden in a comment line. */
    {
        static const char z[] = "# a\n# b\0c\n" FP_A_HEX "\n";
        expect_bad_line(z, sizeof(z) - 1, 2);
    }
    /* A bad last line without a newline. */
    snprintf(t, sizeof(t), "%s\nnope", FP_A_HEX);
    expect_bad_line(t, strlen(t), 2);
    /* The sanity of the good half of these inputs. */
    snprintf(t, sizeof(t), "# ok\n%s\n%s\n", FP_A_HEX, FP_B_HEX);
    revoke_set_free(parse_ok(t));
}

static void
test_load_file(void **state)
{
    char path[] = "/tmp/mamori-test-revoke-XXXXXX";
    char err[512];
    struct revoke_set *s = NULL;
    const char *good = "# list\n" FP_B_HEX "\n";
    const char *bad = "# list\n\n" FP_B_HEX " x\n";
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
    assert_int_equal(close(fd), 0);
    assert_int_equal(revoke_set_load(path, &s, err, sizeof(err)), 0);
    assert_int_equal(revoke_set_count(s), 1);
    assert_true(revoke_set_contains(s, FP_B));
    revoke_set_free(s);

    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    assert_int_equal(close(fd), 0);
    s = NULL;
    err[0] = '\0';
    assert_int_equal(revoke_set_load(path, &s, err, sizeof(err)), -1);
    assert_null(s);
    /* The message names the file and the 1-based line. */
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "line 3"));

    assert_int_equal(unlink(path), 0);
    err[0] = '\0';
    assert_int_equal(revoke_set_load(path, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
}

/* ---- the size bound ------------------------------------------------------ */

static void
make_fp(uint8_t fp[32], uint32_t i)
{
    memset(fp, 0x5a, 32);
    fp[0] = (uint8_t)(i >> 24);
    fp[1] = (uint8_t)(i >> 16);
    fp[2] = (uint8_t)(i >> 8);
    fp[3] = (uint8_t)i;
}

static char *
make_list(size_t n, size_t *len)
{
    static const char digits[] = "0123456789abcdef";
    char *text = malloc(n * 65 + 1);
    uint8_t fp[32];

    assert_non_null(text);
    for (size_t i = 0; i < n; i++) {
        make_fp(fp, (uint32_t)i);
        for (size_t j = 0; j < 32; j++) {
            text[i * 65 + 2 * j] = digits[fp[j] >> 4];
            text[i * 65 + 2 * j + 1] = digits[fp[j] & 15];
        }
        text[i * 65 + 64] = '\n';
    }
    text[n * 65] = '\0';
    *len = n * 65;
    return text;
}

/* REVOKE_MAX_ENTRIES is the documented capacity: a list of exactly that
 * many distinct fingerprints loads, one more is refused (E2BIG) rather
 * than growing memory without bound. */
static void
test_parse_capacity_is_max_entries(void **state)
{
    struct revoke_set *s = NULL;
    unsigned bad = 0;
    size_t len;
    char *text = make_list(REVOKE_MAX_ENTRIES + 1, &len);
    uint8_t fp[32];

    (void)state;
    errno = 0;
    if (revoke_set_parse(text, len - 65, &s, &bad) != 0)
        fail_msg("a list of REVOKE_MAX_ENTRIES (%u) fingerprints was refused "
                 "at line %u (errno %d)", REVOKE_MAX_ENTRIES, bad, errno);
    assert_int_equal(revoke_set_count(s), REVOKE_MAX_ENTRIES);
    make_fp(fp, REVOKE_MAX_ENTRIES - 1);
    assert_true(revoke_set_contains(s, fp));
    revoke_set_free(s);

    s = NULL;
    errno = 0;
    assert_int_equal(revoke_set_parse(text, len, &s, &bad), -1);
    assert_int_equal(errno, E2BIG);
    assert_null(s);
    free(text);
}

static void
test_from_raw_bound_and_order(void **state)
{
    struct revoke_set *s = NULL;
    uint8_t three[3 * 32];
    uint8_t *many;

    (void)state;
    memcpy(three, FP_B, 32);
    memcpy(three + 32, FP_C, 32);
    memcpy(three + 64, FP_B, 32);
    assert_int_equal(revoke_set_from_raw(three, 3, &s), 0);
    assert_int_equal(revoke_set_count(s), 2);
    assert_memory_equal(revoke_set_raw(s), FP_C, 32);
    assert_memory_equal(revoke_set_raw(s) + 32, FP_B, 32);
    /* The set holds a copy. */
    memset(three, 0, sizeof(three));
    assert_true(revoke_set_contains(s, FP_B));
    revoke_set_free(s);

    many = calloc(REVOKE_MAX_ENTRIES + 1, 32);
    assert_non_null(many);
    s = NULL;
    errno = 0;
    assert_int_equal(revoke_set_from_raw(many, REVOKE_MAX_ENTRIES + 1, &s), -1);
    assert_int_equal(errno, E2BIG);
    assert_null(s);
    free(many);
}

/* ---- the process-wide set under concurrent readers (R6.2) --------------- */

struct reader {
    atomic_bool stop;
    atomic_bool saw_b;
    atomic_ulong reads;
    atomic_ulong lost_a;     /* A is in every installed set: never missing */
    atomic_ulong saw_c;      /* C is in no installed set */
};

static void *
reader_main(void *arg)
{
    struct reader *r = arg;

    while (!atomic_load(&r->stop)) {
        if (!revoke_current_contains(FP_A))
            atomic_fetch_add(&r->lost_a, 1);
        if (revoke_current_contains(FP_C))
            atomic_fetch_add(&r->saw_c, 1);
        if (revoke_current_contains(FP_B))
            atomic_store(&r->saw_b, true);
        (void)revoke_current_count();
        atomic_fetch_add(&r->reads, 1);
    }
    return NULL;
}

static void
test_current_swap_under_readers(void **state)
{
    struct reader r;
    pthread_t th[2];
    struct timespec t0, now;

    (void)state;
    atomic_init(&r.stop, false);
    atomic_init(&r.saw_b, false);
    atomic_init(&r.reads, 0);
    atomic_init(&r.lost_a, 0);
    atomic_init(&r.saw_c, 0);

    revoke_current_install(parse_ok(FP_A_HEX "\n"));
    assert_true(revoke_current_contains(FP_A));
    assert_false(revoke_current_contains(FP_B));
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &r), 0);

    /* Many swaps while the readers run: each old set is freed under them. */
    for (int i = 0; i < 3000; i++)
        revoke_current_install(parse_ok(i % 2 ? FP_A_HEX "\n" FP_B_HEX "\n"
                                              : FP_A_HEX "\n"));
    /* The final set revokes B; the readers must see it. */
    revoke_current_install(parse_ok(FP_B_HEX "\n" FP_A_HEX "\n"));
    atomic_store(&r.saw_b, false);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!atomic_load(&r.saw_b)) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 10)
            break;
        usleep(1000);
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);

    assert_true(atomic_load(&r.saw_b));
    assert_true(atomic_load(&r.reads) > 0);
    assert_int_equal(atomic_load(&r.lost_a), 0);
    assert_int_equal(atomic_load(&r.saw_c), 0);
    /* Revocation applies to the very next check in this thread too. */
    assert_true(revoke_current_contains(FP_B));
    assert_int_equal(revoke_current_count(), 2);

    /* NULL installs the empty set. */
    revoke_current_install(NULL);
    assert_false(revoke_current_contains(FP_A));
    assert_int_equal(revoke_current_count(), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_comments_blank_crlf),
        cmocka_unit_test(test_parse_empty_and_comment_only),
        cmocka_unit_test(test_parse_duplicates_collapsed_any_case),
        cmocka_unit_test(test_contains_exact_match_only),
        cmocka_unit_test(test_parse_bad_lines_numbered),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_parse_capacity_is_max_entries),
        cmocka_unit_test(test_from_raw_bound_and_order),
        cmocka_unit_test(test_current_swap_under_readers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
