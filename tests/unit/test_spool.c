/*
 * test_spool.c - the encrypted upload spool (R2.6 uploads, R1.4 at rest).
 *
 * Round trips at the message boundaries and over several MB with odd
 * write and read sizes and rewinds; then the file as an attacker with the
 * disk sees it: no name in the directory, mode 0600, no plaintext, and
 * every flipped byte, truncation, appended, dropped or swapped message
 * makes reading fail.  The spool's descriptor is found as the lowest free
 * descriptor before spool_create (open(2) always takes that one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/spool.h"

#define MSG_BYTES (SPOOL_CHUNK + 17)   /* ciphertext of one full message */
#define HEADER    24

static const char marker[] = "MAMORI-SPOOL-PLAINTEXT-MARKER-0123456789";

struct fixture {
    char dir[64];
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    *state = f;                 /* teardown frees it */
    snprintf(f->dir, sizeof(f->dir), "/tmp/mamori-spool-XXXXXX");
    if (sodium_init() < 0 || mkdtemp(f->dir) == NULL)
        return -1;
    return 0;
}

/* The directory must be empty again: rmdir fails otherwise. */
static int
teardown(void **state)
{
    struct fixture *f = *state;
    int rc = rmdir(f->dir);

    free(f);
    return rc;
}

/* A spool in dir, and its descriptor. */
static struct spool *
make(const char *dir, int *fd)
{
    struct spool *s = NULL;
    int probe = dup(STDIN_FILENO);

    assert_true(probe >= 0);
    close(probe);
    assert_int_equal(spool_create(dir, &s), 0);
    assert_non_null(s);
    *fd = probe;
    return s;
}

static uint8_t *
random_bytes(size_t n)
{
    uint8_t *p = malloc(n > 0 ? n : 1);

    assert_non_null(p);
    randombytes_buf(p, n);
    return p;
}

/* Write data in pieces of varying odd sizes (1, 3, 7, ... up to 200 KB). */
static void
write_odd(struct spool *s, const uint8_t *data, size_t n)
{
    static const size_t steps[] = { 1, 3, 7, 4093, 65535, 65536, 65537, 200001, 17 };
    size_t off = 0, i = 0;

    while (off < n) {
        size_t k = steps[i++ % (sizeof(steps) / sizeof(steps[0]))];
        if (k > n - off)
            k = n - off;
        assert_int_equal(spool_write(s, data + off, k), 0);
        off += k;
    }
    assert_int_equal(spool_write(s, data, 0), 0);      /* nothing, harmlessly */
}

/* Read everything with reads of `step` bytes; must equal want. */
static void
read_all_equal(struct spool *s, const uint8_t *want, size_t n, size_t step)
{
    uint8_t *buf = malloc(step);
    size_t got = 0;
    ssize_t r;

    assert_non_null(buf);
    while ((r = spool_read(s, buf, step)) > 0) {
        assert_true(got + (size_t)r <= n);
        assert_memory_equal(buf, want + got, (size_t)r);
        got += (size_t)r;
    }
    assert_int_equal(r, 0);
    assert_int_equal(got, n);
    assert_int_equal(spool_read(s, buf, step), 0);       /* stays at the end */
    free(buf);
}

/* Read to the end or the first failure: -1 (errno EBADMSG) or the count. */
static ssize_t
drain(struct spool *s)
{
    uint8_t buf[8192];
    ssize_t r, total = 0;

    while ((r = spool_read(s, buf, sizeof(buf))) > 0)
        total += r;
    return r < 0 ? -1 : total;
}

static void
round_trip(const char *dir, size_t n)
{
    static const size_t reads[] = { 1, 7, 4096, 65536, 65537, 1 << 20 };
    uint8_t *data = random_bytes(n);
    int fd;
    struct spool *s = make(dir, &fd);

    write_odd(s, data, n);
    assert_int_equal(spool_size(s), n);
    assert_int_equal(spool_finish(s), 0);
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        /* Large sizes: read with 1-byte steps only up to 200 KB (time). */
        if (reads[i] == 1 && n > 200000)
            continue;
        read_all_equal(s, data, n, reads[i]);
        assert_int_equal(spool_rewind(s), 0);
    }
    /* A partial read, a rewind, and everything again from byte 0. */
    if (n > 10) {
        uint8_t head[10];
        assert_int_equal(spool_read(s, head, sizeof(head)), (ssize_t)sizeof(head));
        assert_memory_equal(head, data, sizeof(head));
        assert_int_equal(spool_rewind(s), 0);
        read_all_equal(s, data, n, 65537);
    }
    spool_free(s);
    free(data);
}

/* R2.6: sizes on each side of a message boundary, and several MB. */
static void
test_R2_6_round_trip_sizes(void **state)
{
    struct fixture *f = *state;
    const size_t sizes[] = { 0, 1, SPOOL_CHUNK - 1, SPOOL_CHUNK, SPOOL_CHUNK + 1,
                             2 * SPOOL_CHUNK, (size_t)5 * 1024 * 1024 + 12345 };

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        round_trip(f->dir, sizes[i]);
}

/* The file on disk: whole length as the layout says, no name, 0600, no
 * plaintext marker anywhere, and a second spool of the same data has
 * other bytes (its own key). */
static void
test_R1_4_file_is_nameless_private_and_ciphertext(void **state)
{
    struct fixture *f = *state;
    size_t n = 3 * SPOOL_CHUNK + 500, ml = sizeof(marker) - 1;
    uint8_t *data = malloc(n), *disk = malloc(n + 4096), *disk2 = malloc(n + 4096);
    int fd, fd2;
    struct spool *s, *s2;
    struct stat sb;
    char link[64], target[512];
    ssize_t len, tl;
    DIR *d;
    const struct dirent *e;

    assert_non_null(data);
    assert_non_null(disk);
    assert_non_null(disk2);
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)marker[i % ml];
    s = make(f->dir, &fd);
    s2 = make(f->dir, &fd2);
    assert_int_equal(spool_write(s, data, n), 0);
    assert_int_equal(spool_write(s2, data, n), 0);
    assert_int_equal(spool_finish(s), 0);
    assert_int_equal(spool_finish(s2), 0);

    /* No name in the directory, no link to it anywhere, owner-only. */
    assert_non_null(d = opendir(f->dir));
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            fail_msg("the spool directory holds a name: %s", e->d_name);
    closedir(d);
    assert_int_equal(fstat(fd, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_nlink, 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    assert_int_equal(sb.st_size, HEADER + 3 * MSG_BYTES + 500 + 17);
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    tl = readlink(link, target, sizeof(target) - 1);
    assert_true(tl > 0);
    target[tl] = '\0';
    assert_non_null(strstr(target, f->dir));        /* it is the spool's descriptor */
    assert_non_null(strstr(target, "(deleted)"));

    /* Scan the file as anyone with the disk would. */
    len = pread(fd, disk, n + 4096, 0);
    assert_int_equal(len, sb.st_size);
    assert_null(memmem(disk, (size_t)len, marker, 8));
    assert_null(memmem(disk, (size_t)len, marker + 10, 8));
    assert_int_equal(pread(fd2, disk2, n + 4096, 0), len);
    assert_memory_not_equal(disk, disk2, (size_t)len);

    read_all_equal(s, data, n, 4096);
    spool_free(s);
    spool_free(s2);
    free(data);
    free(disk);
    free(disk2);
}

/* A spool of `n` random bytes, finished; *data its plaintext. */
static struct spool *
finished(const char *dir, size_t n, uint8_t **data, int *fd)
{
    struct spool *s = make(dir, fd);

    *data = random_bytes(n);
    assert_int_equal(spool_write(s, *data, n), 0);
    assert_int_equal(spool_finish(s), 0);
    return s;
}

static void
flip(int fd, off_t at)
{
    uint8_t b;

    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x01;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
}

/* Any one flipped bit anywhere makes reading fail (EBADMSG), and only
 * verified bytes come out before it; undoing it and rewinding reads
 * again. */
static void
test_R2_6_flipped_byte_fails(void **state)
{
    struct fixture *f = *state;
    size_t n = 3 * SPOOL_CHUNK + 1000;
    uint8_t *data;
    int fd;
    struct spool *s = finished(f->dir, n, &data, &fd);
    off_t size = HEADER + 3 * MSG_BYTES + 1000 + 17;
    const off_t where[] = { 0, 23, HEADER, HEADER + 1, HEADER + 16, HEADER + 17,
                            HEADER + MSG_BYTES - 1, HEADER + MSG_BYTES,
                            HEADER + 2 * MSG_BYTES + 40000, HEADER + 3 * MSG_BYTES,
                            size - 17, size - 1 };

    for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
        ssize_t r;

        flip(fd, where[i]);
        assert_int_equal(spool_rewind(s), 0);
        errno = 0;
        r = drain(s);
        if (r != -1)
            fail_msg("a flipped byte at %lld went unnoticed", (long long)where[i]);
        assert_int_equal(errno, EBADMSG);
        /* sticky until rewind */
        {
            uint8_t b;
            assert_int_equal(spool_read(s, &b, 1), -1);
        }
        flip(fd, where[i]);
        assert_int_equal(spool_rewind(s), 0);
        read_all_equal(s, data, n, 65536);
    }
    /* A flip in the third message: the first two come out, then failure. */
    flip(fd, HEADER + 2 * MSG_BYTES + 5);
    assert_int_equal(spool_rewind(s), 0);
    {
        uint8_t *buf = malloc(2 * SPOOL_CHUNK);
        assert_non_null(buf);
        assert_int_equal(spool_read(s, buf, 2 * SPOOL_CHUNK), (ssize_t)(2 * SPOOL_CHUNK));
        assert_memory_equal(buf, data, 2 * SPOOL_CHUNK);
        assert_int_equal(spool_read(s, buf, 1), -1);
        free(buf);
    }
    spool_free(s);
    free(data);
}

/* Truncated anywhere (even exactly at a message boundary), extended,
 * or with messages dropped or swapped: reading fails. */
static void
test_R2_6_truncated_or_rearranged_fails(void **state)
{
    struct fixture *f = *state;
    size_t n = 3 * SPOOL_CHUNK + 1000;
    off_t size = HEADER + 3 * MSG_BYTES + 1000 + 17;
    const off_t cut[] = { size - 1, HEADER + 3 * MSG_BYTES, HEADER + MSG_BYTES,
                          HEADER + 5, HEADER, 10, 0 };
    uint8_t *msg = malloc(2 * MSG_BYTES), *data;
    int fd;

    assert_non_null(msg);
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        struct spool *s = finished(f->dir, n, &data, &fd);
        assert_int_equal(ftruncate(fd, cut[i]), 0);
        if (spool_rewind(s) == 0 && drain(s) != -1)
            fail_msg("a spool truncated to %lld bytes was read", (long long)cut[i]);
        spool_free(s);
        free(data);
    }
    /* One byte appended after FINAL: after a short last message (the
     * byte is read with it) and after a full one (nothing is read with
     * it: only the check that FINAL ends the file sees it). */
    {
        struct spool *s = finished(f->dir, n, &data, &fd);
        uint8_t z = 0;
        assert_int_equal(pwrite(fd, &z, 1, size), 1);
        assert_int_equal(spool_rewind(s), 0);
        assert_int_equal(drain(s), -1);
        spool_free(s);
        free(data);
        s = finished(f->dir, 2 * SPOOL_CHUNK, &data, &fd);
        assert_int_equal(pwrite(fd, &z, 1, HEADER + 2 * MSG_BYTES), 1);
        assert_int_equal(spool_rewind(s), 0);
        assert_int_equal(drain(s), -1);
        assert_int_equal(errno, EBADMSG);
        spool_free(s);
        free(data);
    }
    /* The first two messages swapped. */
    {
        struct spool *s = finished(f->dir, n, &data, &fd);
        assert_int_equal(pread(fd, msg, 2 * MSG_BYTES, HEADER), 2 * MSG_BYTES);
        assert_int_equal(pwrite(fd, msg + MSG_BYTES, MSG_BYTES, HEADER), MSG_BYTES);
        assert_int_equal(pwrite(fd, msg, MSG_BYTES, HEADER + MSG_BYTES), MSG_BYTES);
        assert_int_equal(spool_rewind(s), 0);
        assert_int_equal(drain(s), -1);
        spool_free(s);
        free(data);
    }
    /* The second message dropped (the rest moved up). */
    {
        struct spool *s = finished(f->dir, n, &data, &fd);
        size_t rest = (size_t)(size - HEADER - 2 * MSG_BYTES);
        uint8_t *tail = malloc(rest);
        assert_non_null(tail);
        assert_int_equal(pread(fd, tail, rest, HEADER + 2 * MSG_BYTES), (ssize_t)rest);
        assert_int_equal(pwrite(fd, tail, rest, HEADER + MSG_BYTES), (ssize_t)rest);
        assert_int_equal(ftruncate(fd, size - MSG_BYTES), 0);
        assert_int_equal(spool_rewind(s), 0);
        assert_int_equal(drain(s), -1);
        spool_free(s);
        free(tail);
        free(data);
    }
    free(msg);
}

/* The lifecycle is enforced: no reading while writing, no writing after
 * the end; a NULL spool is refused, and freed harmlessly. */
static void
test_spool_lifecycle(void **state)
{
    struct fixture *f = *state;
    uint8_t b = 'x';
    int fd;
    struct spool *s = make(f->dir, &fd), *none = NULL;

    assert_int_equal(spool_read(s, &b, 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(spool_rewind(s), -1);
    assert_int_equal(spool_write(s, &b, 1), 0);
    assert_int_equal(spool_finish(s), 0);
    assert_int_equal(spool_write(s, &b, 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(spool_finish(s), -1);
    assert_int_equal(spool_read(s, &b, 1), 1);
    assert_int_equal(spool_size(s), 1);
    spool_free(s);
    spool_free(NULL);
    assert_int_equal(spool_create("/nonexistent/mamori-spool", &none), -1);
    assert_null(none);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_R2_6_round_trip_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R1_4_file_is_nameless_private_and_ciphertext,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_6_flipped_byte_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_6_truncated_or_rearranged_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spool_lifecycle, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
