/*
 * test_import_runner.c - the bound on a worker's import queue
 * (src/vrs/import_runner.h; R2.6), and job ids (import_api.h).
 *
 * One import runs and IMPORT_QUEUE_MAX wait per worker; a place is
 * taken before the upload's body is read (the route's body sink), so the
 * next upload is refused (503) with nothing spooled.  A place given back
 * (an upload refused or cut off) is free again; a stopping runner takes
 * no more.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "common/util.h"
#include "crypto/spool.h"
#include "vrs/import_api.h"
#include "vrs/import_board.h"
#include "vrs/import_runner.h"
#include "worker/worker.h"

static void
test_R2_6_queue_bound(void **state)
{
    static struct mamori_config cfg;
    struct worker_env we = { .cfg = &cfg };
    struct import_runner *r = NULL;
    struct import_job *held[IMPORT_QUEUE_MAX + 1];
    char dir[] = "/tmp/mamori-runner-XXXXXX";

    (void)state;
    config_defaults(&cfg);
    assert_non_null(mkdtemp(dir));
    assert_int_equal(import_board_create(&we.import_board), 0);
    assert_int_equal(import_runner_start(&we, &r), 0);
    we.imports = r;
    for (size_t i = 0; i < IMPORT_QUEUE_MAX + 1; i++) {
        held[i] = import_runner_reserve(r, dir);
        assert_non_null(held[i]);
        assert_int_equal(spool_write(held[i]->spool, "x", 1), 0);
    }
    errno = 0;
    assert_null(import_runner_reserve(r, dir));             /* full: 503 */
    assert_int_equal(errno, EBUSY);
    import_job_cancel(held[2]);                             /* an upload cut off */
    held[2] = import_runner_reserve(r, dir);
    assert_non_null(held[2]);
    assert_null(import_runner_reserve(r, dir));
    /* a spool that cannot be made gives its place back */
    for (size_t i = 0; i < IMPORT_QUEUE_MAX + 1; i++)
        import_job_cancel(held[i]);
    errno = 0;
    assert_null(import_runner_reserve(r, "/nonexistent/spool"));
    assert_int_not_equal(errno, EBUSY);
    for (size_t i = 0; i < IMPORT_QUEUE_MAX + 1; i++) {
        held[i] = import_runner_reserve(r, dir);
        assert_non_null(held[i]);
    }
    for (size_t i = 0; i < IMPORT_QUEUE_MAX + 1; i++)
        import_job_cancel(held[i]);
    import_runner_stop(r);
    assert_int_equal(import_board_used(we.import_board), 0);
    import_board_destroy(we.import_board);
    assert_int_equal(rmdir(dir), 0);                        /* nothing left in it */
}

/* A job id goes into audit events ("import:<id>"), which refuse any
 * value that could be an individual number: no id may hold a run of 12
 * decimal digits.  Drawn plainly, about one in thirteen 32-hex-digit ids
 * would (and about one in a hundred would then be refused), which made
 * uploads fail now and then (R2.2, R7.1). */
static void
test_R7_1_ids_never_look_like_numbers(void **state)
{
    uint8_t bin[16], back[16];
    char hex[33];
    unsigned plain_runs = 0;

    (void)state;
    for (int i = 0; i < 20000; i++) {
        size_t run = 0, longest = 0;
        import_api_new_id(bin, hex);
        assert_int_equal(strlen(hex), 32);
        assert_int_equal(strspn(hex, "0123456789abcdef"), 32);
        assert_int_equal(util_hex_decode(hex, back, sizeof(back)), 0);
        assert_memory_equal(bin, back, sizeof(bin));
        for (const char *p = hex; *p != '\0'; p++) {
            run = *p >= '0' && *p <= '9' ? run + 1 : 0;
            longest = run > longest ? run : longest;
        }
        assert_true(longest < 12);
        /* the same draw without the rule, for the record */
        randombytes_buf(bin, sizeof(bin));
        assert_int_equal(util_hex_encode(bin, sizeof(bin), hex, sizeof(hex)), 0);
        run = longest = 0;
        for (const char *p = hex; *p != '\0'; p++) {
            run = *p >= '0' && *p <= '9' ? run + 1 : 0;
            longest = run > longest ? run : longest;
        }
        plain_runs += longest >= 12;
    }
    print_message("plain random ids with a 12-digit run: %u of 20000\n", plain_runs);
    assert_true(plain_runs > 0);        /* the rule is not idle */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R2_6_queue_bound),
        cmocka_unit_test(test_R7_1_ids_never_look_like_numbers),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("import-runner", tests, NULL, NULL);
}
