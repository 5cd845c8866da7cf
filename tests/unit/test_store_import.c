/*
 * test_store_import.c - import jobs of the HTTP API in the store
 * (src/store/store_import.h; R2.6, R1.1, R1.4) on SQLite and on
 * PostgreSQL (MAMORI_TEST_PG, as test_store_records.c).
 *
 * Shows: the life of a job row (queued, running, a final state with its
 * kept problems, paged); at most one job queued or running per tenant;
 * another tenant never finds, starts, ends or lists a job (R1.1); an
 * interrupted job; the bound on kept problems and on finished jobs; what
 * the table refuses; a tenant's erase takes its jobs (R1.4).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "crypto/keyring.h"
#include "store/store_import.h"
#include "store_fixture.h"

#define T1 "131016"
#define T2 "131024"

static const char *const tenants[] = { T1, T2 };

/* ---- database behind the store's back ---------------------------------------------- */

static int64_t
count_of(struct store_fx *f, const char *table, const char *tenant)
{
    char sql[160];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE tenant_id = '%s'", table,
             tenant);
    return store_fx_raw_int(f, sql);
}

/* ---- fixture -------------------------------------------------------------------------- */

static int
setup(void **state)
{
    *state = store_fx_new("sij", tenants, 2, STORE_FX_CTX);
    return 0;
}

static int
teardown(void **state)
{
    store_fx_free(*state);
    return 0;
}

#define BEGIN_CASE(f) \
    struct store_fx *f = *state; \
    do { \
        if ((f)->skip) \
            skip(); \
    } while (0)

/* ---- helpers --------------------------------------------------------------------------- */

/* A new job of the context's tenant: a fresh random id. */
static void
new_job(struct store_import_job *j, const char *kind)
{
    uint8_t rnd[16];

    memset(j, 0, sizeof(*j));
    randombytes_buf(rnd, sizeof(rnd));
    assert_int_equal(util_hex_encode(rnd, sizeof(rnd), j->id, sizeof(j->id)), 0);
    snprintf(j->kind, sizeof(j->kind), "%s", kind);
    snprintf(j->encoding, sizeof(j->encoding), "utf-8");
    snprintf(j->actor, sizeof(j->actor), "sato.supervisor");
    snprintf(j->role, sizeof(j->role), "supervisor");
    j->bytes = 12345;
}

static void
problem(struct store_import_problem *p, int64_t line, const char *column, const char *reason)
{
    memset(p, 0, sizeof(*p));
    p->line = line;
    snprintf(p->column, sizeof(p->column), "%s", column);
    snprintf(p->reason, sizeof(p->reason), "%s", reason);
}

struct page {
    struct store_import_problem p[16];
    size_t n;
};

static int
take(const struct store_import_problem *p, void *arg)
{
    struct page *pg = arg;

    if (pg->n < 16)
        pg->p[pg->n++] = *p;
    return 0;
}

struct names {
    char   id[8][STORE_IMPORT_ID_HEX + 1];
    size_t n;
};

static int
take_job(const struct store_import_job *j, void *arg)
{
    struct names *l = arg;

    if (l->n < 8)
        snprintf(l->id[l->n++], sizeof(l->id[0]), "%s", j->id);
    return 0;
}

/* ---- cases ---------------------------------------------------------------------------------- */

/* R2.6: queued -> running -> refused with every kept problem, in order,
 * paged by seq; the row says who, what and when, and nothing else. */
static void
test_R2_6_job_life(void **state)
{
    BEGIN_CASE(f);
    struct store_import_job j, got;
    struct store_import_problem kept[3];
    struct page pg = { .n = 0 };

    new_job(&j, "residents");
    j.dry_run = true;
    assert_int_equal(store_import_job_create(f->ctx[0], &j), STORE_OK);
    assert_int_equal(j.state, STORE_IMPORT_QUEUED);
    assert_int_equal(strlen(j.created_at), 24);
    assert_int_equal(store_import_job_get(f->ctx[0], j.id, &got), STORE_OK);
    assert_string_equal(got.id, j.id);
    assert_string_equal(got.kind, "residents");
    assert_string_equal(got.encoding, "utf-8");
    assert_true(got.dry_run);
    assert_int_equal(got.state, STORE_IMPORT_QUEUED);
    assert_string_equal(got.actor, "sato.supervisor");
    assert_string_equal(got.role, "supervisor");
    assert_int_equal(got.bytes, 12345);
    assert_string_equal(got.started_at, "");
    assert_string_equal(got.finished_at, "");

    assert_int_equal(store_import_job_start(f->ctx[0], j.id, "worker-0.123"), STORE_OK);
    assert_int_equal(store_import_job_start(f->ctx[0], j.id, "worker-1.456"), STORE_NOTFOUND);
    assert_int_equal(store_import_job_get(f->ctx[0], j.id, &got), STORE_OK);
    assert_int_equal(got.state, STORE_IMPORT_RUNNING);
    assert_string_equal(got.runner, "worker-0.123");
    assert_int_equal(strlen(got.started_at), 24);

    problem(&kept[0], 2, "mynumber", "the individual number's check digit is wrong");
    problem(&kept[1], 2, "birth_date", "is not a date");
    problem(&kept[2], 9, "", "has 3 fields; the header has 20");
    j.state = STORE_IMPORT_REFUSED;
    j.rows = 10;
    j.bad_lines = 2;
    j.problems = 5;                     /* more found than kept */
    assert_int_equal(store_import_job_finish(f->ctx[0], &j, kept, 3), STORE_OK);
    assert_int_equal(store_import_job_finish(f->ctx[0], &j, kept, 3), STORE_NOTFOUND);
    assert_int_equal(store_import_job_get(f->ctx[0], j.id, &got), STORE_OK);
    assert_int_equal(got.state, STORE_IMPORT_REFUSED);
    assert_int_equal(got.rows, 10);
    assert_int_equal(got.bad_lines, 2);
    assert_int_equal(got.problems, 5);
    assert_int_equal(got.problems_kept, 3);
    assert_int_equal(strlen(got.finished_at), 24);

    assert_int_equal(store_import_job_problems(f->ctx[0], j.id, 0, 2, take, &pg), STORE_OK);
    assert_int_equal(pg.n, 2);
    assert_int_equal(pg.p[0].seq, 1);
    assert_int_equal(pg.p[0].line, 2);
    assert_string_equal(pg.p[0].column, "mynumber");
    assert_string_equal(pg.p[0].reason, "the individual number's check digit is wrong");
    assert_int_equal(pg.p[1].seq, 2);
    assert_string_equal(pg.p[1].column, "birth_date");
    pg.n = 0;
    assert_int_equal(store_import_job_problems(f->ctx[0], j.id, 2, 100, take, &pg), STORE_OK);
    assert_int_equal(pg.n, 1);
    assert_int_equal(pg.p[0].seq, 3);
    assert_int_equal(pg.p[0].line, 9);
    assert_string_equal(pg.p[0].column, "");
    pg.n = 0;
    assert_int_equal(store_import_job_problems(f->ctx[0], j.id, 3, 100, take, &pg), STORE_OK);
    assert_int_equal(pg.n, 0);
}

/* R2.6: one job queued or running per tenant; another tenant is not
 * held up; once it ends the tenant may start the next. */
static void
test_R2_6_one_active_per_tenant(void **state)
{
    BEGIN_CASE(f);
    struct store_import_job a, b, c;

    new_job(&a, "residents");
    new_job(&b, "vouchers");
    new_job(&c, "vaccinations");
    assert_int_equal(store_import_job_create(f->ctx[0], &a), STORE_OK);
    assert_int_equal(store_import_job_create(f->ctx[0], &b), STORE_EXISTS);
    assert_int_equal(store_import_job_create(f->ctx[1], &c), STORE_OK);
    assert_int_equal(store_import_job_start(f->ctx[0], a.id, "worker-0.1"), STORE_OK);
    assert_int_equal(store_import_job_create(f->ctx[0], &b), STORE_EXISTS);     /* running too */
    a.state = STORE_IMPORT_IMPORTED;
    a.rows = 3;
    assert_int_equal(store_import_job_finish(f->ctx[0], &a, NULL, 0), STORE_OK);
    assert_int_equal(store_import_job_create(f->ctx[0], &b), STORE_OK);
    /* the same id twice is refused too */
    assert_int_equal(store_import_job_interrupt(f->ctx[0], b.id, "stopped"), STORE_OK);
    assert_int_equal(store_import_job_create(f->ctx[0], &b), STORE_EXISTS);
}

/* R1.1: another tenant's job is not found, started, ended, interrupted,
 * paged or listed, exactly like a job that does not exist. */
static void
test_R1_1_other_tenant(void **state)
{
    BEGIN_CASE(f);
    struct store_import_job j, got, fake;
    struct store_import_problem p;
    struct page pg = { .n = 0 };
    struct names l = { .n = 0 };

    new_job(&j, "residents");
    assert_int_equal(store_import_job_create(f->ctx[0], &j), STORE_OK);
    new_job(&fake, "residents");        /* an id nobody has */
    assert_int_equal(store_import_job_get(f->ctx[1], j.id, &got), STORE_NOTFOUND);
    assert_int_equal(store_import_job_get(f->ctx[1], fake.id, &got), STORE_NOTFOUND);
    assert_int_equal(store_import_job_start(f->ctx[1], j.id, "worker-0.1"), STORE_NOTFOUND);
    assert_int_equal(store_import_job_interrupt(f->ctx[1], j.id, "stopped"), STORE_NOTFOUND);
    problem(&p, 1, "name", "is empty");
    j.state = STORE_IMPORT_REFUSED;
    j.problems = 1;
    assert_int_equal(store_import_job_finish(f->ctx[1], &j, &p, 1), STORE_NOTFOUND);
    assert_int_equal(store_import_job_problems(f->ctx[1], j.id, 0, 10, take, &pg), STORE_NOTFOUND);
    assert_int_equal(store_import_job_list(f->ctx[1], 10, take_job, &l), STORE_OK);
    assert_int_equal(l.n, 0);
    /* and the owner's job is untouched by all of that */
    assert_int_equal(store_import_job_get(f->ctx[0], j.id, &got), STORE_OK);
    assert_int_equal(got.state, STORE_IMPORT_QUEUED);
    assert_int_equal(count_of(f, "import_job_problems", T1), 0);
    assert_int_equal(store_import_job_list(f->ctx[0], 10, take_job, &l), STORE_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.id[0], j.id);
}

/* A job whose worker is gone: interrupted with its sentence; it cannot
 * be interrupted twice; a runner that did finish after all still writes
 * its real end (an import that committed is never reported lost). */
static void
test_R2_6_interrupted(void **state)
{
    BEGIN_CASE(f);
    struct store_import_job j, got;

    new_job(&j, "vaccinations");
    assert_int_equal(store_import_job_create(f->ctx[0], &j), STORE_OK);
    assert_int_equal(store_import_job_start(f->ctx[0], j.id, "worker-2.99"), STORE_OK);
    assert_int_equal(store_import_job_interrupt(f->ctx[0], j.id, "send the file again"), STORE_OK);
    assert_int_equal(store_import_job_interrupt(f->ctx[0], j.id, "again"), STORE_NOTFOUND);
    assert_int_equal(store_import_job_get(f->ctx[0], j.id, &got), STORE_OK);
    assert_int_equal(got.state, STORE_IMPORT_INTERRUPTED);
    assert_string_equal(got.message, "send the file again");
    assert_int_equal(strlen(got.finished_at), 24);
    assert_int_equal(store_import_job_start(f->ctx[0], j.id, "worker-2.99"), STORE_NOTFOUND);
    j.state = STORE_IMPORT_IMPORTED;
    j.rows = 42;
    assert_int_equal(store_import_job_finish(f->ctx[0], &j, NULL, 0), STORE_OK);
    assert_int_equal(store_import_job_get(f->ctx[0], j.id, &got), STORE_OK);
    assert_int_equal(got.state, STORE_IMPORT_IMPORTED);
    assert_int_equal(got.rows, 42);
}

/* What the table refuses: bad ids, kinds, encodings, actors; an active
 * state as an end; more kept problems than the bound or than found; a
 * reason with a control character. */
static void
test_refused_input(void **state)
{
    BEGIN_CASE(f);
    struct store_import_job j, got;
    struct store_import_problem p;
    struct page pg = { .n = 0 };

    memset(&p, 0, sizeof(p));
    new_job(&j, "residents");
    snprintf(j.kind, sizeof(j.kind), "staff");
    assert_int_equal(store_import_job_create(f->ctx[0], &j), STORE_INVALID);
    new_job(&j, "residents");
    snprintf(j.encoding, sizeof(j.encoding), "latin1");
    assert_int_equal(store_import_job_create(f->ctx[0], &j), STORE_INVALID);
    new_job(&j, "residents");
    j.id[5] = 'G';
    assert_int_equal(store_import_job_create(f->ctx[0], &j), STORE_INVALID);
    assert_int_equal(store_import_job_get(f->ctx[0], j.id, &got), STORE_NOTFOUND);
    new_job(&j, "residents");
    snprintf(j.actor, sizeof(j.actor), "sa to");
    assert_int_equal(store_import_job_create(f->ctx[0], &j), STORE_INVALID);
    new_job(&j, "residents");
    assert_int_equal(store_import_job_create(f->ctx[0], &j), STORE_OK);
    j.state = STORE_IMPORT_RUNNING;
    assert_int_equal(store_import_job_finish(f->ctx[0], &j, NULL, 0), STORE_INVALID);
    j.state = STORE_IMPORT_REFUSED;
    j.problems = STORE_IMPORT_PROBLEMS_MAX + 5;
    assert_int_equal(store_import_job_finish(f->ctx[0], &j, &p, STORE_IMPORT_PROBLEMS_MAX + 1),
                     STORE_INVALID);
    problem(&p, 3, "name", "is empty");
    j.problems = 0;
    assert_int_equal(store_import_job_finish(f->ctx[0], &j, &p, 1), STORE_INVALID);
    j.problems = 1;
    problem(&p, 3, "name", "bad\nreason");
    assert_int_equal(store_import_job_finish(f->ctx[0], &j, &p, 1), STORE_INVALID);
    problem(&p, 3, "Name;", "is empty");
    assert_int_equal(store_import_job_finish(f->ctx[0], &j, &p, 1), STORE_INVALID);
    /* nothing of the refused ends landed */
    assert_int_equal(store_import_job_get(f->ctx[0], j.id, &got), STORE_OK);
    assert_int_equal(got.state, STORE_IMPORT_QUEUED);
    assert_int_equal(store_import_job_problems(f->ctx[0], j.id, 0, 10, take, &pg), STORE_OK);
    assert_int_equal(pg.n, 0);
    assert_int_equal(store_import_job_problems(f->ctx[0], j.id, 0, 0, take, &pg), STORE_INVALID);
}

/* STORE_IMPORT_PROBLEMS_MAX problems are kept in one transaction; the
 * newest STORE_IMPORT_JOBS_KEEP jobs are kept, older ones go with their
 * problems. */
static void
test_R2_6_bounds(void **state)
{
    BEGIN_CASE(f);
    struct store_import_problem *kept = calloc(STORE_IMPORT_PROBLEMS_MAX, sizeof(*kept));
    struct store_import_job j, first;
    struct page pg = { .n = 0 };
    struct timespec ms = { 0, 2 * 1000 * 1000 };

    assert_non_null(kept);
    for (size_t i = 0; i < STORE_IMPORT_PROBLEMS_MAX; i++)
        problem(&kept[i], (int64_t)i + 2, "address_no", "is not an address number");
    new_job(&first, "residents");
    assert_int_equal(store_import_job_create(f->ctx[0], &first), STORE_OK);
    first.state = STORE_IMPORT_REFUSED;
    first.problems = 2 * STORE_IMPORT_PROBLEMS_MAX;
    assert_int_equal(store_import_job_finish(f->ctx[0], &first, kept, STORE_IMPORT_PROBLEMS_MAX),
                     STORE_OK);
    free(kept);
    assert_int_equal(count_of(f, "import_job_problems", T1), STORE_IMPORT_PROBLEMS_MAX);
    assert_int_equal(store_import_job_problems(f->ctx[0], first.id, STORE_IMPORT_PROBLEMS_MAX - 1,
                                               10, take, &pg), STORE_OK);
    assert_int_equal(pg.n, 1);
    assert_int_equal(pg.p[0].seq, STORE_IMPORT_PROBLEMS_MAX);
    assert_int_equal(pg.p[0].line, STORE_IMPORT_PROBLEMS_MAX + 1);

    for (int i = 0; i < STORE_IMPORT_JOBS_KEEP; i++) {
        nanosleep(&ms, NULL);           /* created_at has millisecond steps */
        new_job(&j, "vouchers");
        assert_int_equal(store_import_job_create(f->ctx[0], &j), STORE_OK);
        j.state = STORE_IMPORT_CHECKED;
        assert_int_equal(store_import_job_finish(f->ctx[0], &j, NULL, 0), STORE_OK);
    }
    assert_int_equal(count_of(f, "import_jobs", T1), STORE_IMPORT_JOBS_KEEP);
    assert_int_equal(store_import_job_get(f->ctx[0], first.id, &j), STORE_NOTFOUND);
    assert_int_equal(count_of(f, "import_job_problems", T1), 0);
}

/* R1.4: erasing a tenant takes its jobs and problems, not another's. */
static void
test_R1_4_erase(void **state)
{
    BEGIN_CASE(f);
    struct store_import_job a, b;
    struct store_import_problem p;

    new_job(&a, "residents");
    new_job(&b, "residents");
    assert_int_equal(store_import_job_create(f->ctx[0], &a), STORE_OK);
    assert_int_equal(store_import_job_create(f->ctx[1], &b), STORE_OK);
    problem(&p, 4, "sex", "must be 1, 2 or 9");
    a.state = b.state = STORE_IMPORT_REFUSED;
    a.problems = b.problems = 1;
    assert_int_equal(store_import_job_finish(f->ctx[0], &a, &p, 1), STORE_OK);
    assert_int_equal(store_import_job_finish(f->ctx[1], &b, &p, 1), STORE_OK);
    store_tenant_ctx_close(f->ctx[0]);
    f->ctx[0] = NULL;
    assert_int_equal(store_tenant_erase(f->st, T1), STORE_OK);
    assert_int_equal(count_of(f, "import_jobs", T1), 0);
    assert_int_equal(count_of(f, "import_job_problems", T1), 0);
    assert_int_equal(count_of(f, "import_jobs", T2), 1);
    assert_int_equal(count_of(f, "import_job_problems", T2), 1);
}

static void
test_names(void **state)
{
    (void)state;
    assert_string_equal(store_import_state_name(STORE_IMPORT_INTERRUPTED), "interrupted");
    assert_null(store_import_state_name((enum store_import_state)99));
    assert_true(store_import_state_active(STORE_IMPORT_QUEUED));
    assert_true(store_import_state_active(STORE_IMPORT_RUNNING));
    assert_false(store_import_state_active(STORE_IMPORT_ALREADY));
    assert_true(store_import_id_ok("0123456789abcdef0123456789abcdef"));
    assert_false(store_import_id_ok("0123456789ABCDEF0123456789abcdef"));
    assert_false(store_import_id_ok("0123456789abcdef0123456789abcde"));
    assert_false(store_import_id_ok("0123456789abcdef0123456789abcdef0"));
    assert_false(store_import_id_ok(NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_R2_6_job_life, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_6_one_active_per_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R1_1_other_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_6_interrupted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_6_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R1_4_erase, setup, teardown),
        cmocka_unit_test(test_names),
    };
    int failed;

    if (sodium_init() < 0)
        return 1;
    log_setup("test_store_import", LOG_TO_STDERR, LOG_LVL_ERROR);
    failed = STORE_FX_RUN("store-import/sqlite", "store-import/postgresql", tests, 0);
    return failed;
}
