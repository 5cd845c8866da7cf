/*
 * test_import_source.c - an import read from an encrypted upload spool
 * (import_run_source over spool_*, R2.6) against the same import read from
 * a regular file (import_run): same SHA-256, same rows, same store; and a
 * spool tampered with -- before the import, or between the check and the
 * write -- fails the import with nothing imported.
 *
 * Residents come from the synthetic generator (R9.4), enough of them that
 * the file spans many spool messages.  Runs on SQLite and, with
 * MAMORI_TEST_PG set, on PostgreSQL, as test_import.c does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "crypto/keyring.h"
#include "crypto/spool.h"
#include "store/store.h"
#include "store/store_records.h"
#include "synth/synth.h"
#include "vrs/export.h"
#include "vrs/import.h"
#include "store_fixture.h"

#define NAMES_CSV  MAMORI_TEST_SOURCE_DIR "/data/names/names.csv"
#define LGCODE_CSV MAMORI_TEST_SOURCE_DIR "/data/municipalities/municipalities_lgcode.csv"
#define T1         "131016"             /* 千代田区 */
#define TODAY      "2024-03-31"
#define RESIDENTS  1500u                /* ~300 KB: five spool messages */

static char *residents_csv;             /* synthetic, made once */
static size_t residents_len;

/* ---- one store of one tenant ------------------------------------------------ */

/* A store of T1 with its context (ctx[0]). */
static void
db_open(struct store_fx *d)
{
    static const char *const tenants[] = { T1 };

    store_fx_open(d, "impsrc", tenants, 1, STORE_FX_CTX);
}

static uint64_t
residents_in(struct store_fx *d)
{
    struct store_counts c;

    assert_int_equal(store_counts(d->st, T1, &c), STORE_OK);
    return c.residents;
}

/* ---- the import ------------------------------------------------------------- */

static int
no_problems(void *arg, const struct import_problem *p)
{
    (void)arg;
    fail_msg("unexpected problem on line %llu (%s): %s", (unsigned long long)p->line,
             p->column ? p->column : "-", p->reason);
    return 1;
}

static void
opts_for(struct import_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->kind = IMPORT_RESIDENTS;
    o->encoding = CSVIN_UTF8;
    o->today = TODAY;
    o->actor = "test";
    o->sink = no_problems;
    o->batch = 97;
}

/* The spool as an import source, and a way to tamper with its file at
 * a chosen rewind (1: before the hash, 2: before the check, 3: before
 * the write). */
struct spool_src {
    struct spool *s;
    int           fd;           /* the spool's file, to tamper with */
    int           rewinds;
    int           tamper_at;    /* 0: never */
    off_t         tamper_off;
};

static ssize_t
src_read(void *arg, void *buf, size_t n)
{
    const struct spool_src *p = arg;

    return spool_read(p->s, buf, n);
}

static void
flip(int fd, off_t at)
{
    uint8_t b;

    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x80;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
}

static int
src_rewind(void *arg)
{
    struct spool_src *p = arg;

    if (++p->rewinds == p->tamper_at)
        flip(p->fd, p->tamper_off);
    return spool_rewind(p->s);
}

/* A finished spool holding the synthetic file; the spool's descriptor is
 * the lowest free one when it is created. */
static void
spool_of(const char *dir, struct spool_src *p)
{
    int probe = dup(STDIN_FILENO);

    assert_true(probe >= 0);
    close(probe);
    memset(p, 0, sizeof(*p));
    assert_int_equal(spool_create(dir, &p->s), 0);
    p->fd = probe;
    /* In pieces of odd sizes, as an upload arrives. */
    for (size_t off = 0; off < residents_len;) {
        size_t k = residents_len - off < 7001 ? residents_len - off : 7001;
        assert_int_equal(spool_write(p->s, residents_csv + off, k), 0);
        off += k;
    }
    assert_int_equal(spool_finish(p->s), 0);
}

struct progress_seen {
    uint64_t total;
    uint64_t last_bytes[3];
};

static void
on_progress(void *arg, const struct import_progress *p)
{
    struct progress_seen *ps = arg;

    ps->total = p->total;
    ps->last_bytes[p->phase] = p->bytes;
}

static int
file_import(struct store_fx *d, struct import_result *res)
{
    char path[160];
    struct import_opts o;
    int fd, rc;

    snprintf(path, sizeof(path), "%s/residents.csv", d->dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, residents_csv, residents_len), (ssize_t)residents_len);
    opts_for(&o);
    rc = import_run(d->ctx[0], fd, &o, res);
    close(fd);
    return rc;
}

static int
spool_import(struct store_fx *d, struct spool_src *p, struct import_result *res,
             struct progress_seen *ps)
{
    struct import_source src = { src_read, src_rewind, spool_size(p->s), p };
    struct import_opts o;

    opts_for(&o);
    o.progress = on_progress;
    o.progress_arg = ps;
    return import_run_source(d->ctx[0], &src, &o, res);
}

/* The whole replica of a store's residents, as CSV. */
struct buf {
    char  *p;
    size_t len, cap;
};

static int
buf_write(void *arg, const void *data, size_t n)
{
    struct buf *b = arg;

    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static void
replica(struct store_fx *d, struct buf *b)
{
    struct export_opts o = { .kind = EXPORT_RESIDENTS, .encoding = CSVOUT_UTF8 };
    struct export_stats st;
    char err[256];

    memset(b, 0, sizeof(*b));
    if (export_run(d->ctx[0], &o, buf_write, b, &st, err, sizeof(err)) != 0)
        fail_msg("export: %s", err);
    assert_int_equal(st.rows, RESIDENTS);
}

/* ---- tests ------------------------------------------------------------------ */

/* R2.6: the same file through a spool and from disk: same SHA-256, same
 * row count, the same residents in the store; and the spool import of a
 * file already imported from disk is recognised as the same file. */
static void
test_R2_6_spool_source_imports_like_the_file(void **state)
{
    struct store_fx a, b;
    struct spool_src p;
    struct import_result rf, rs, again;
    struct progress_seen ps = { 0, { 0, 0, 0 } };
    struct buf xa, xb;

    (void)state;
    if (store_fx_pg_missing())
        skip();
    db_open(&a);
    db_open(&b);
    assert_int_equal(file_import(&a, &rf), 0);
    assert_int_equal(rf.outcome, IMPORT_IMPORTED);
    spool_of(b.dir, &p);
    if (spool_import(&b, &p, &rs, &ps) != 0)
        fail_msg("spool import failed: %s", rs.error);
    assert_int_equal(rs.outcome, IMPORT_IMPORTED);
    assert_memory_equal(rs.sha256, rf.sha256, 32);
    assert_int_equal(rs.rows, RESIDENTS);
    assert_int_equal(rs.rows, rf.rows);
    assert_int_equal(p.rewinds, 3);                 /* hash, check, write */
    assert_int_equal(ps.total, residents_len);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ps.last_bytes[i], residents_len);
    assert_int_equal(residents_in(&a), RESIDENTS);
    assert_int_equal(residents_in(&b), RESIDENTS);
    replica(&a, &xa);
    replica(&b, &xb);
    assert_int_equal(xa.len, xb.len);
    assert_memory_equal(xa.p, xb.p, xa.len);
    /* Idempotent across sources: the spool into the file's store. */
    assert_int_equal(spool_rewind(p.s), 0);
    assert_int_equal(spool_import(&a, &p, &again, &ps), 0);
    assert_int_equal(again.outcome, IMPORT_ALREADY);
    assert_int_equal(residents_in(&a), RESIDENTS);
    free(xa.p);
    free(xb.p);
    spool_free(p.s);
    store_fx_close(&a);
    store_fx_close(&b);
}

/* R2.6: a spool whose file was changed -- before the import (caught by the
 * first read), between the check and the write (caught mid-write), or cut
 * short -- fails the import: IMPORT_FAILED, not one resident, and the file
 * is not recorded as imported (so the honest file still imports). */
static void
test_R2_6_tampered_spool_imports_nothing(void **state)
{
    struct store_fx d;
    struct import_result res, ok;
    struct progress_seen ps;
    uint8_t sha[32];
    char when[25];
    const struct { int at; off_t off; } cases[] = {
        { 1, 100 },                                 /* first message, at once */
        { 3, 0 },                                   /* the header, before the write */
        { 3, 24 + 3 * ((off_t)SPOOL_CHUNK + 17) + 5 },  /* the fourth message, mid-write */
    };

    (void)state;
    if (store_fx_pg_missing())
        skip();
    db_open(&d);
    crypto_hash_sha256(sha, (const unsigned char *)residents_csv, residents_len);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct spool_src p;

        spool_of(d.dir, &p);
        p.tamper_at = cases[i].at;
        p.tamper_off = cases[i].off;
        assert_int_equal(spool_import(&d, &p, &res, &ps), -1);
        assert_int_equal(res.outcome, IMPORT_FAILED);
        assert_non_null(strstr(res.error, "cannot be read"));
        assert_int_equal(residents_in(&d), 0);
        assert_int_equal(store_import_seen(d.ctx[0], sha, when), STORE_NOTFOUND);
        spool_free(p.s);
    }
    /* Cut short by a message: the stream never reaches FINAL. */
    {
        struct spool_src p;

        spool_of(d.dir, &p);
        assert_int_equal(ftruncate(p.fd, 24 + 2 * ((off_t)SPOOL_CHUNK + 17)), 0);
        assert_int_equal(spool_import(&d, &p, &res, &ps), -1);
        assert_int_equal(res.outcome, IMPORT_FAILED);
        assert_int_equal(residents_in(&d), 0);
        spool_free(p.s);
    }
    /* The store is untouched: the honest spool imports in full. */
    {
        struct spool_src p;

        spool_of(d.dir, &p);
        assert_int_equal(spool_import(&d, &p, &ok, &ps), 0);
        assert_int_equal(ok.outcome, IMPORT_IMPORTED);
        assert_int_equal(residents_in(&d), RESIDENTS);
        spool_free(p.s);
    }
    store_fx_close(&d);
}

/* A source without read or rewind is refused, not called. */
static void
test_R2_6_incomplete_source_refused(void **state)
{
    struct store_fx d;
    struct import_source none = { NULL, NULL, 0, NULL };
    struct import_opts o;
    struct import_result res;

    (void)state;
    if (store_fx_pg_missing())
        skip();
    db_open(&d);
    opts_for(&o);
    assert_int_equal(import_run_source(d.ctx[0], &none, &o, &res), -1);
    assert_int_equal(res.outcome, IMPORT_FAILED);
    assert_int_equal(import_run_source(d.ctx[0], NULL, &o, &res), -1);
    assert_int_equal(res.outcome, IMPORT_FAILED);
    store_fx_close(&d);
}

/* ---- set-up ----------------------------------------------------------------- */

static int
make_residents(void)
{
    struct synth_data *data = NULL;
    struct synth_opts o = { .municipality = T1, .count = RESIDENTS, .seed = "import-source",
                            .seed_len = 13, .encoding = SYNTH_UTF8, .start_date = TODAY };
    char *other[2] = { NULL, NULL };
    size_t olen[2] = { 0, 0 };
    FILE *f[3];
    char err[256];
    int rc;

    if (synth_data_load(NAMES_CSV, LGCODE_CSV, &data, err, sizeof(err)) != 0) {
        fprintf(stderr, "synth_data_load: %s\n", err);
        return -1;
    }
    f[0] = open_memstream(&residents_csv, &residents_len);
    f[1] = open_memstream(&other[0], &olen[0]);
    f[2] = open_memstream(&other[1], &olen[1]);
    if (f[0] == NULL || f[1] == NULL || f[2] == NULL)
        return -1;
    rc = synth_write(data, &o, f[0], f[1], f[2], NULL, err, sizeof(err));
    for (int i = 0; i < 3; i++)
        if (fclose(f[i]) != 0)
            rc = -1;
    free(other[0]);
    free(other[1]);
    synth_data_free(data);
    if (rc != 0)
        fprintf(stderr, "synth_write: %s\n", err);
    /* The case offsets assume at least five messages. */
    return rc == 0 && residents_len > 4 * SPOOL_CHUNK ? 0 : -1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R2_6_spool_source_imports_like_the_file),
        cmocka_unit_test(test_R2_6_tampered_spool_imports_nothing),
        cmocka_unit_test(test_R2_6_incomplete_source_refused),
    };
    int failed;

    if (sodium_init() < 0 || make_residents() != 0)
        return 1;
    log_setup("test_import_source", LOG_TO_STDERR, LOG_LVL_ERROR);
    failed = STORE_FX_RUN("import source sqlite", "import source postgresql", tests,
                          STORE_FX_PG_IN_CI);
    free(residents_csv);
    return failed != 0;
}
