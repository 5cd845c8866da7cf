/*
 * test_import_runner.c - the bound on a worker's import queue
 * (src/vrs/import_runner.h; R2.6).
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
#include <unistd.h>

#include "config/config.h"
#include "crypto/spool.h"
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R2_6_queue_bound),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("import-runner", tests, NULL, NULL);
}
