/*
 * test_import_board.c - the shared-memory progress board of API imports
 * (src/vrs/import_board.h; R2.6 "long imports show progress", R1.1).
 *
 * Shows: a slot is found only by its job id *and* tenant; progress
 * written by one process is read by another through the inherited
 * mapping; a reader never sees a torn update; the staleness rule (no
 * heartbeat for IMPORT_BOARD_STALE_MS) and the parent's freeing of a dead
 * worker's slots; a full board refuses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vrs/import_board.h"

#define T1 "131016"
#define T2 "131024"

static void
id_of(unsigned n, uint8_t id[IMPORT_BOARD_ID_LEN])
{
    memset(id, 0xa5, IMPORT_BOARD_ID_LEN);
    memcpy(id, &n, sizeof(n));
}

/* R1.1: a job is found by its id and its tenant, never by the id alone. */
static void
test_claim_find_release(void **state)
{
    struct import_board *b = NULL;
    struct import_board_view v;
    uint8_t id[IMPORT_BOARD_ID_LEN], other[IMPORT_BOARD_ID_LEN];
    int slot = -1;

    (void)state;
    assert_int_equal(import_board_create(&b), 0);
    id_of(1, id);
    id_of(2, other);
    assert_int_equal(import_board_used(b), 0);
    assert_int_equal(import_board_claim(b, id, T1, 1000, 5000, &slot), 0);
    assert_int_equal(import_board_used(b), 1);
    assert_int_equal(import_board_find(b, id, T1, 5000, &v), 0);
    assert_int_equal(v.phase, IMPORT_BOARD_QUEUED);
    assert_int_equal(v.total, 1000);
    assert_int_equal(v.bytes, 0);
    assert_int_equal(v.pid, getpid());
    assert_false(v.stale);
    assert_int_equal(import_board_find(b, id, T2, 5000, &v), -1);     /* another tenant */
    assert_int_equal(import_board_find(b, other, T1, 5000, &v), -1);  /* another id */
    assert_int_equal(import_board_find(b, id, "13101", 5000, &v), -1);
    assert_int_equal(import_board_claim(b, id, "abcdef", 1, 5000, &slot), -1);

    import_board_progress(b, slot, IMPORT_BOARD_CHECKING, 400, 7, 6000);
    assert_int_equal(import_board_find(b, id, T1, 6000, &v), 0);
    assert_int_equal(v.phase, IMPORT_BOARD_CHECKING);
    assert_int_equal(v.bytes, 400);
    assert_int_equal(v.rows, 7);
    assert_int_equal(v.beat_ms, 6000);

    import_board_release(b, slot);
    assert_int_equal(import_board_find(b, id, T1, 6000, &v), -1);
    assert_int_equal(import_board_used(b), 0);
    import_board_destroy(b);
}

/* A worker that stops beating is gone after IMPORT_BOARD_STALE_MS, and
 * a beat brings every slot of its process back. */
static void
test_staleness(void **state)
{
    struct import_board *b = NULL;
    struct import_board_view v;
    uint8_t id[IMPORT_BOARD_ID_LEN];
    int slot;

    (void)state;
    assert_int_equal(import_board_create(&b), 0);
    id_of(3, id);
    assert_int_equal(import_board_claim(b, id, T1, 10, 1000, &slot), 0);
    assert_int_equal(import_board_find(b, id, T1, 1000 + IMPORT_BOARD_STALE_MS, &v), 0);
    assert_false(v.stale);
    assert_int_equal(import_board_find(b, id, T1, 1001 + IMPORT_BOARD_STALE_MS, &v), 0);
    assert_true(v.stale);
    import_board_beat(b, getpid() + 1, 40000);      /* someone else's beat: no change */
    assert_int_equal(import_board_find(b, id, T1, 40000, &v), 0);
    assert_true(v.stale);
    import_board_beat(b, getpid(), 40000);
    assert_int_equal(import_board_find(b, id, T1, 40000, &v), 0);
    assert_false(v.stale);
    /* progress beats too */
    import_board_progress(b, slot, IMPORT_BOARD_WRITING, 1, 1, 90000);
    assert_int_equal(import_board_find(b, id, T1, 90000 + IMPORT_BOARD_STALE_MS, &v), 0);
    assert_false(v.stale);
    import_board_destroy(b);
}

static void
test_full_board(void **state)
{
    struct import_board *b = NULL;
    uint8_t id[IMPORT_BOARD_ID_LEN];
    int slot, first = -1;

    (void)state;
    assert_int_equal(import_board_create(&b), 0);
    for (unsigned i = 0; i < IMPORT_BOARD_SLOTS; i++) {
        id_of(100 + i, id);
        assert_int_equal(import_board_claim(b, id, T1, 1, 0, &slot), 0);
        if (i == 0)
            first = slot;
    }
    id_of(99, id);
    assert_int_equal(import_board_claim(b, id, T1, 1, 0, &slot), -1);
    import_board_release(b, first);
    assert_int_equal(import_board_claim(b, id, T1, 1, 0, &slot), 0);
    assert_int_equal(slot, first);
    import_board_destroy(b);
}

/* The mapping is shared across fork: a child's claim and progress are
 * seen by the parent; when the parent reaps it, forget_pid frees its
 * slots (the parent mamorid does this for a dead worker). */
static void
test_shared_across_fork_and_forget(void **state)
{
    struct import_board *b = NULL;
    struct import_board_view v;
    uint8_t id[IMPORT_BOARD_ID_LEN], mine[IMPORT_BOARD_ID_LEN];
    int slot, status, p[2];
    char c;
    pid_t pid;

    (void)state;
    assert_int_equal(import_board_create(&b), 0);
    id_of(7, id);
    id_of(8, mine);
    assert_int_equal(import_board_claim(b, mine, T2, 5, 0, &slot), 0);
    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int s;
        if (import_board_claim(b, id, T1, 100, 0, &s) != 0)
            _exit(1);
        import_board_progress(b, s, IMPORT_BOARD_WRITING, 60, 3, 0);
        if (write(p[1], "x", 1) != 1)
            _exit(1);
        _exit(0);               /* dies holding the slot */
    }
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(import_board_find(b, id, T1, 0, &v), 0);
    assert_int_equal(v.pid, pid);
    assert_int_equal(v.phase, IMPORT_BOARD_WRITING);
    assert_int_equal(v.bytes, 60);
    assert_int_equal(import_board_forget_pid(b, pid), 1);
    assert_int_equal(import_board_find(b, id, T1, 0, &v), -1);
    /* the parent's own slot stays */
    assert_int_equal(import_board_find(b, mine, T2, 0, &v), 0);
    close(p[0]);
    close(p[1]);
    import_board_destroy(b);
}

/* A reader never sees half an update: for 400 ms a child publishes
 * bytes = 3 x rows and phase = rows % 3 + 1 (with a short pause between,
 * as an import publishes once per chunk) while the parent reads as fast
 * as it can; and it always finds the slot. */
static void
test_no_torn_reads(void **state)
{
    struct import_board *b = NULL;
    struct import_board_view v;
    uint8_t id[IMPORT_BOARD_ID_LEN];
    int slot, status;
    unsigned reads = 0, moved = 0;
    uint64_t last = 0;
    pid_t pid;

    (void)state;
    assert_int_equal(import_board_create(&b), 0);
    id_of(9, id);
    assert_int_equal(import_board_claim(b, id, T1, UINT64_MAX, 0, &slot), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int64_t end = import_board_now_ms() + 400;
        uint64_t r = 0;
        while (r % 1000 != 0 || import_board_now_ms() < end) {
            r++;
            /* an import publishes once per chunk it reads: a pause */
            for (volatile int k = 0; k < 100; k++)
                ;
            import_board_progress(b, slot, (enum import_board_phase)(r % 3 + 1), 3 * r, r, 0);
        }
        /* the last count, where the parent can check it */
        import_board_progress(b, slot, IMPORT_BOARD_QUEUED, 0, 0, 0);
        _exit(r > 0 ? 0 : 1);
    }
    while (waitpid(pid, &status, WNOHANG) == 0) {
        for (int k = 0; k < 10000; k++) {
            assert_int_equal(import_board_find(b, id, T1, 0, &v), 0);
            if (v.rows == 0 && v.phase == IMPORT_BOARD_QUEUED)
                break;                      /* the child's last word */
            if (v.bytes != 3 * v.rows || (v.rows > 0 && v.phase != v.rows % 3 + 1))
                fail_msg("torn read: phase %d, bytes %llu, rows %llu", (int)v.phase,
                         (unsigned long long)v.bytes, (unsigned long long)v.rows);
            assert_true(v.rows >= last);    /* never back */
            moved += v.rows != last;
            last = v.rows;
            reads++;
        }
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(import_board_find(b, id, T1, 0, &v), 0);
    assert_int_equal(v.phase, IMPORT_BOARD_QUEUED);
    assert_true(reads > 0);
    print_message("%u reads, %u saw the writer move\n", reads, moved);
    import_board_destroy(b);
}

/* One import writer at a time on a SQLite store, across processes; a
 * dead holder's token is freed with its slots. */
static void
test_writer_token(void **state)
{
    struct import_board *b = NULL;
    int status, go[2], back[2];
    char c;
    pid_t pid;

    (void)state;
    assert_int_equal(import_board_create(&b), 0);
    assert_int_equal(import_board_writer_take(b, getpid()), 0);
    assert_int_equal(import_board_writer_take(b, getpid()), 0);      /* held already */
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(back), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the parent holds it: refused; once given back: taken */
        char r = import_board_writer_take(b, getpid()) == -1 ? 'y' : 'n';
        if (write(back[1], &r, 1) != 1 || read(go[0], &r, 1) != 1 ||
            import_board_writer_take(b, getpid()) != 0)
            _exit(1);
        _exit(0);               /* dies holding it */
    }
    assert_int_equal(read(back[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    import_board_writer_give(b, pid);                 /* not the holder: no effect */
    assert_int_equal(import_board_writer_take(b, pid), -1);
    import_board_writer_give(b, getpid());
    assert_int_equal(write(go[1], "x", 1), 1);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(import_board_writer_take(b, getpid()), -1);     /* the dead child's */
    assert_int_equal(import_board_forget_pid(b, pid), 0);            /* no slots, but... */
    assert_int_equal(import_board_writer_take(b, getpid()), 0);      /* ...its token freed */
    close(go[0]);
    close(go[1]);
    close(back[0]);
    close(back[1]);
    import_board_destroy(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_find_release),
        cmocka_unit_test(test_staleness),
        cmocka_unit_test(test_full_board),
        cmocka_unit_test(test_shared_across_fork_and_forget),
        cmocka_unit_test(test_no_torn_reads),
        cmocka_unit_test(test_writer_token),
    };

    return cmocka_run_group_tests_name("import-board", tests, NULL, NULL);
}
