/*
 * test_util.c - the checked helpers every module leans on (src/common/util.h).
 *
 * Each test pins a bound or a refusal that other controls depend on: a
 * number parser that wraps, a file reader that ignores its limit or a
 * string copy that truncates silently would weaken config, revocation
 * and key loading at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

/* ---- a private temp directory per test -------------------------------- */

static int
setup_dir(void **state)
{
    char *dir = strdup("/tmp/mamori-test-util-XXXXXX");

    if (dir == NULL || mkdtemp(dir) == NULL) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

static int
teardown_dir(void **state)
{
    char cmd[PATH_MAX + 16];

    /* The directory is ours and its name has no shell metacharacters. */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", (char *)*state);
    if (system(cmd) != 0)
        return -1;
    free(*state);
    return 0;
}

static void
write_plain(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/* ---- util_parse_u64 ----------------------------------------------------- */

static void
test_parse_u64_accepts_in_range(void **state)
{
    uint64_t v = 12345;

    (void)state;
    assert_int_equal(util_parse_u64("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(util_parse_u64("10", 0, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(util_parse_u64("1", 1, 1, &v), 0);
    assert_int_equal(v, 1);
    /* Leading zeros are digits like any other. */
    assert_int_equal(util_parse_u64("007", 0, 10, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(util_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
}

static void
test_parse_u64_bounds_refused(void **state)
{
    uint64_t v = 777;

    (void)state;
    errno = 0;
    assert_int_equal(util_parse_u64("11", 0, 10, &v), -1);
    assert_int_equal(errno, ERANGE);
    errno = 0;
    assert_int_equal(util_parse_u64("0", 1, 10, &v), -1);
    assert_int_equal(errno, ERANGE);
    errno = 0;
    assert_int_equal(util_parse_u64("65536", 0, 65535, &v), -1);
    assert_int_equal(errno, ERANGE);
    /* A refused value leaves the output alone. */
    assert_int_equal(v, 777);
}

static void
test_parse_u64_overflow_refused(void **state)
{
    uint64_t v = 777;

    (void)state;
    /* UINT64_MAX + 1: must not wrap to 0 and be "in range". */
    errno = 0;
    assert_int_equal(util_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -1);
    assert_int_equal(errno, ERANGE);
    /* 2^64 + 5 would wrap to 5, inside [0, 10]. */
    errno = 0;
    assert_int_equal(util_parse_u64("18446744073709551621", 0, 10, &v), -1);
    assert_int_equal(errno, ERANGE);
    /* Twenty nines overflow too. */
    assert_int_equal(util_parse_u64("99999999999999999999", 0, UINT64_MAX, &v), -1);
    /* Longer than any uint64 in decimal, even if it is all zeros. */
    errno = 0;
    assert_int_equal(util_parse_u64("000000000000000000001", 0, 10, &v), -1);
    assert_int_equal(v, 777);
}

static void
test_parse_u64_garbage_refused(void **state)
{
    static const char *const bad[] = {
        "", " 1", "1 ", "+1", "-1", "1a", "a1", "0x10", "1.0", "1e3", "١",
        "12\n", "\t7",
    };
    uint64_t v = 777;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        if (util_parse_u64(bad[i], 0, UINT64_MAX, &v) != -1)
            fail_msg("\"%s\" was accepted as a number", bad[i]);
        assert_int_equal(errno, EINVAL);
    }
    assert_int_equal(util_parse_u64(NULL, 0, 10, &v), -1);
    assert_int_equal(v, 777);
}

/* ---- hex ----------------------------------------------------------------- */

static void
test_hex_round_trip(void **state)
{
    uint8_t in[256], back[256];
    char hex[513];

    (void)state;
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)i;
    assert_int_equal(util_hex_encode(in, sizeof(in), hex, sizeof(hex)), 0);
    assert_int_equal(strlen(hex), 512);
    /* Known values written out independently. */
    assert_memory_equal(hex, "000102030405060708090a0b0c0d0e0f10", 34);
    assert_memory_equal(hex + 2 * 0xfa, "fafbfcfdfeff", 12);
    memset(back, 0xaa, sizeof(back));
    assert_int_equal(util_hex_decode(hex, back, sizeof(back)), 0);
    assert_memory_equal(in, back, sizeof(in));
}

static void
test_hex_decode_either_case(void **state)
{
    uint8_t out[4];
    static const uint8_t want[4] = { 0xde, 0xad, 0xbe, 0xef };

    (void)state;
    assert_int_equal(util_hex_decode("DEADBEEF", out, 4), 0);
    assert_memory_equal(out, want, 4);
    assert_int_equal(util_hex_decode("dEaDbEeF", out, 4), 0);
    assert_memory_equal(out, want, 4);
}

static void
test_hex_bad_refused(void **state)
{
    static const char *const bad[] = {
        "deadbee",     /* odd: one short */
        "deadbeef00",  /* one byte too many */
        "deadbeeg",    /* not hex */
        "dead beef",
        "0xdeadbe",
        "deadbe\xef",
        "",
    };
    uint8_t out[4];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        if (util_hex_decode(bad[i], out, 4) != -1)
            fail_msg("bad hex \"%s\" was accepted", bad[i]);
        assert_int_equal(errno, EINVAL);
    }
}

static void
test_hex_encode_small_buffer_refused(void **state)
{
    uint8_t in[4] = { 1, 2, 3, 4 };
    char out[9];

    (void)state;
    memset(out, 'x', sizeof(out));
    errno = 0;
    /* 4 bytes need 9 characters (with the NUL); 8 is one short. */
    assert_int_equal(util_hex_encode(in, 4, out, 8), -1);
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(out[0], 'x');
    assert_int_equal(util_hex_encode(in, 4, out, 9), 0);
    assert_string_equal(out, "01020304");
}

/* ---- files -------------------------------------------------------------- */

static void
test_read_file_limit_and_nul(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX];
    char *text = NULL;
    size_t len = 0;

    snprintf(path, sizeof(path), "%s/ten", dir);
    write_plain(path, "0123456789", 10);

    /* Exactly at the limit: read, NUL-terminated, length without it. */
    assert_int_equal(util_read_file(path, 10, &text, &len), 0);
    assert_int_equal(len, 10);
    assert_int_equal(text[10], '\0');
    assert_string_equal(text, "0123456789");
    free(text);

    /* One byte over the limit: EFBIG, nothing handed out. */
    text = NULL;
    errno = 0;
    assert_int_equal(util_read_file(path, 9, &text, &len), -1);
    assert_int_equal(errno, EFBIG);
    assert_null(text);

    /* An empty file is an empty string. */
    snprintf(path, sizeof(path), "%s/empty", dir);
    write_plain(path, "", 0);
    assert_int_equal(util_read_file(path, 10, &text, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);

    /* Embedded NULs are kept and counted in len (callers check). */
    snprintf(path, sizeof(path), "%s/nul", dir);
    write_plain(path, "ab\0cd", 5);
    assert_int_equal(util_read_file(path, 10, &text, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(text, "ab\0cd\0", 6);
    free(text);
}

static void
test_read_file_refuses_non_regular_and_symlink(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX], link[PATH_MAX];
    char *text = NULL;
    size_t len;

    /* A directory is not a file. */
    errno = 0;
    assert_int_equal(util_read_file(dir, 1024, &text, &len), -1);
    assert_null(text);

    /* O_NOFOLLOW: a symlink planted in place of a file is not followed. */
    snprintf(path, sizeof(path), "%s/target", dir);
    write_plain(path, "secret", 6);
    snprintf(link, sizeof(link), "%s/link", dir);
    assert_int_equal(symlink(path, link), 0);
    errno = 0;
    assert_int_equal(util_read_file(link, 1024, &text, &len), -1);
    assert_int_equal(errno, ELOOP);
    assert_null(text);

    /* A missing file. */
    snprintf(path, sizeof(path), "%s/missing", dir);
    errno = 0;
    assert_int_equal(util_read_file(path, 1024, &text, &len), -1);
    assert_int_equal(errno, ENOENT);
}

static void
test_write_file_atomic_mode_and_content(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX];
    char *text = NULL;
    size_t len;
    struct stat st;
    mode_t old = umask(0);

    snprintf(path, sizeof(path), "%s/out", dir);
    /* umask 0 so the mode seen is the one asked for, not a masked default. */
    assert_int_equal(util_write_file_atomic(path, "first", 5, 0600), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(util_read_file(path, 100, &text, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal(text, "first");
    free(text);

    /* Replacing: new content and the new mode, even under a strict umask. */
    umask(077);
    assert_int_equal(util_write_file_atomic(path, "second!", 7, 0644), 0);
    umask(old);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(util_read_file(path, 100, &text, &len), 0);
    assert_int_equal(len, 7);
    assert_string_equal(text, "second!");
    free(text);

    /* No temp file is left behind. */
    {
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
        assert_int_equal(system(cmd), 0);
    }
}

static void
test_write_file_atomic_failure_cleans_up(void **state)
{
    const char *dir = *state;
    char path[PATH_MAX], inner[PATH_MAX + 8], cmd[PATH_MAX + 64];
    char *text = NULL;
    size_t len;

    /* The directory does not exist: refused, errno kept. */
    snprintf(path, sizeof(path), "%s/nodir/out", dir);
    errno = 0;
    assert_int_equal(util_write_file_atomic(path, "x", 1, 0600), -1);
    assert_int_equal(errno, ENOENT);

    /* The final rename fails (a non-empty directory is in the way): the
     * call fails, what was there is untouched and no temp file remains. */
    snprintf(path, sizeof(path), "%s/busy", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(inner, sizeof(inner), "%s/keep", path);
    write_plain(inner, "old", 3);
    errno = 0;
    assert_int_equal(util_write_file_atomic(path, "new", 3, 0600), -1);
    assert_true(errno == EISDIR || errno == ENOTEMPTY || errno == EEXIST);
    assert_int_equal(util_read_file(inner, 100, &text, &len), 0);
    assert_string_equal(text, "old");
    free(text);
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- strings and paths --------------------------------------------------- */

static void
test_path_join(void **state)
{
    char out[32];

    (void)state;
    assert_int_equal(util_path_join(out, sizeof(out), "/var/lib/mamori", "db/x"), 0);
    assert_string_equal(out, "/var/lib/mamori/db/x");
    /* An absolute name stands on its own. */
    assert_int_equal(util_path_join(out, sizeof(out), "/var/lib/mamori", "/etc/x"), 0);
    assert_string_equal(out, "/etc/x");

    /* "/d/" + 28 chars = 31 characters + NUL fits in 32; one more does not. */
    assert_int_equal(util_path_join(out, sizeof(out), "/d", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 0);
    assert_int_equal(strlen(out), 31);
    errno = 0;
    assert_int_equal(util_path_join(out, sizeof(out), "/d", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    errno = 0;
    assert_int_equal(util_path_join(out, 8, "/x", "/absolute/too/long"), -1);
    assert_int_equal(errno, ENAMETOOLONG);
}

static void
test_strcpy_truncation_refused(void **state)
{
    char dst[6];

    (void)state;
    assert_int_equal(util_strcpy(dst, sizeof(dst), "hello"), 0);
    assert_string_equal(dst, "hello");
    memcpy(dst, "keep!", 6);
    errno = 0;
    assert_int_equal(util_strcpy(dst, sizeof(dst), "hello!"), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    /* Refused, not truncated: the destination is untouched. */
    assert_string_equal(dst, "keep!");
    assert_int_equal(util_strcpy(dst, 0, ""), -1);
    assert_int_equal(util_strcpy(dst, 1, ""), 0);
    assert_string_equal(dst, "");
}

static void
test_ct_equal(void **state)
{
    uint8_t a[64], b[64];

    (void)state;
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = b[i] = (uint8_t)(i * 7);
    assert_true(util_ct_equal(a, b, sizeof(a)));
    /* A difference in the first, a middle and the last byte is seen. */
    for (size_t pos = 0; pos < sizeof(a); pos += 21) {
        b[pos] ^= 0x01;
        assert_false(util_ct_equal(a, b, sizeof(a)));
        b[pos] ^= 0x01;
    }
    b[63] ^= 0x80;
    assert_false(util_ct_equal(a, b, sizeof(a)));
    /* Only n bytes are compared. */
    assert_true(util_ct_equal(a, b, 63));
    assert_true(util_ct_equal(a, b, 0));
}

static void
test_utc_now_shape(void **state)
{
    char ts[25];

    (void)state;
    memset(ts, 'x', sizeof(ts));
    util_utc_now(ts);
    assert_int_equal(strlen(ts), 24);
    /* YYYY-MM-DDTHH:MM:SS.mmmZ */
    for (int i = 0; i < 24; i++) {
        const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
        if (shape[i] == 'd')
            assert_true(ts[i] >= '0' && ts[i] <= '9');
        else
            assert_int_equal(ts[i], shape[i]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_u64_accepts_in_range),
        cmocka_unit_test(test_parse_u64_bounds_refused),
        cmocka_unit_test(test_parse_u64_overflow_refused),
        cmocka_unit_test(test_parse_u64_garbage_refused),
        cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_hex_decode_either_case),
        cmocka_unit_test(test_hex_bad_refused),
        cmocka_unit_test(test_hex_encode_small_buffer_refused),
        cmocka_unit_test_setup_teardown(test_read_file_limit_and_nul, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_read_file_refuses_non_regular_and_symlink,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_write_file_atomic_mode_and_content,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_write_file_atomic_failure_cleans_up,
                                        setup_dir, teardown_dir),
        cmocka_unit_test(test_path_join),
        cmocka_unit_test(test_strcpy_truncation_refused),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_utc_now_shape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
