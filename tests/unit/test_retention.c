/*
 * test_retention.c - the scheduled deletion of expired data (R2.10,
 * src/vrs/retention.c): the schedule's arithmetic in Japan time, the
 * records.retention_schedule key, and the daily job run in process by its
 * tick function, with the time it is given, against a real store (SQLite,
 * and PostgreSQL when MAMORI_TEST_PG is set: each case in a fresh schema;
 * unset, those cases are skipped loudly), a real keyring and the real
 * audit log code (every event appended with audit_append_offline, which
 * checks it against the schema, chains it and fsyncs it, then read back
 * with audit_query_run).
 *
 * Tenants: 011002 (A, runs first), 131016 (B), 012033 (N, no residents)
 * and 012025 (E, erased).  All residents are synthetic (R9.4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>
#include <sodium.h>

#include "audit/event.h"
#include "audit/query.h"
#include "audit/writer.h"
#include "common/log.h"
#include "common/util.h"
#include "config/config.h"
#include "crypto/keyring.h"
#include "store/store.h"
#include "store/store_records.h"
#include "vrs/retention.h"
#include "store_fixture.h"

#define TA "011002"
#define TB "131016"
#define TN "012033"
#define TE "012025"

/* UTC seconds of "YYYY-MM-DDTHH:MM:SSZ". */
static int64_t
utc(const char *s)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    assert_non_null(strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm));
    return (int64_t)timegm(&tm);
}

/* ---- the schedule's arithmetic (pure) ------------------------------------------ */

/* R2.10: the job's time is a Japan-time (UTC+9) time of day, whatever the
 * host's zone; the next run is the first one strictly after now. */
static void
test_R2_10_next_run_in_japan_time(void **state)
{
    static const struct { int at; const char *now, *next; } cases[] = {
        /* 02:30 JST is 17:30 UTC of the day before */
        { 150, "2026-01-01T17:29:59Z", "2026-01-01T17:30:00Z" },
        { 150, "2026-01-01T17:30:00Z", "2026-01-02T17:30:00Z" },   /* strictly after */
        { 150, "2026-01-01T17:30:01Z", "2026-01-02T17:30:00Z" },
        /* across midnight in Japan: 23:59:59 JST, the next 00:10 is 11 min away
         * (in UTC it is still 14:59 of the same date) */
        { 10, "2026-01-01T14:59:59Z", "2026-01-01T15:10:00Z" },
        { 10, "2026-01-01T15:10:00Z", "2026-01-02T15:10:00Z" },
        /* 23:50 JST just after Japan's midnight: that same Japan day, the next UTC date */
        { 1430, "2026-01-01T15:00:00Z", "2026-01-02T14:50:00Z" },
        /* 09:00 JST is midnight UTC */
        { 540, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z" },
        { 540, "2025-12-31T23:59:59Z", "2026-01-01T00:00:00Z" },
        /* month and leap-day ends */
        { 0, "2028-02-28T15:00:00Z", "2028-02-29T15:00:00Z" },
        { 0, "2026-12-31T14:59:59Z", "2026-12-31T15:00:00Z" },
        /* 00:00 JST at the epoch's own edge */
        { 0, "1970-01-01T00:00:00Z", "1970-01-01T15:00:00Z" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t got = retention_next_run(utc(cases[i].now), cases[i].at);
        if (got != utc(cases[i].next))
            fail_msg("case %zu: at %d from %s: got %lld, want %s", i, cases[i].at,
                     cases[i].now, (long long)got, cases[i].next);
    }
    /* the same wall-clock minute computed in UTC would be 9 hours off */
    assert_int_not_equal(retention_next_run(utc("2026-01-01T14:59:59Z"), 10),
                         utc("2026-01-02T00:10:00Z"));
}

/* R2.10: the day a run belongs to and the cutoff month are Japan's. */
static void
test_R2_10_day_and_cutoff_in_japan_time(void **state)
{
    char d[11], c[8];

    (void)state;
    retention_jst_date(utc("2026-01-01T14:59:59Z"), d);
    assert_string_equal(d, "2026-01-01");
    retention_jst_date(utc("2026-01-01T15:00:00Z"), d);
    assert_string_equal(d, "2026-01-02");
    /* 2026-04-01 00:00 JST: April, so residents who ceased before 2021-04 */
    retention_cutoff(5, utc("2026-03-31T15:00:00Z"), c);
    assert_string_equal(c, "2021-04");
    retention_cutoff(5, utc("2026-03-31T14:59:59Z"), c);
    assert_string_equal(c, "2021-03");
    retention_cutoff(1, utc("2026-01-01T00:00:00Z"), c);
    assert_string_equal(c, "2025-01");
}

/* R2.10: "off" never runs; a tick before the day's time does nothing
 * (the store is not even there) and names that time. */
static void
test_R2_10_off_and_not_yet_due(void **state)
{
    struct retention_env env = { .years = 5, .at = -1, .rate = 0 };
    struct retention_sched *s = NULL;
    int64_t now = utc("2026-06-15T17:30:00Z");

    (void)state;
    assert_int_equal(retention_sched_new(&env, &s), 0);
    assert_int_equal(retention_sched_tick(s, now), now + 86400);
    retention_sched_free(s);
    env.at = 150;
    assert_int_equal(retention_sched_new(&env, &s), 0);
    assert_int_equal(retention_sched_tick(s, utc("2026-06-15T17:29:59Z")),
                     utc("2026-06-15T17:30:00Z"));
    retention_sched_free(s);
}

/* R2.10, R7.5: an auditor can ask the log for the job's events by action
 * (the auditors' API takes catalogued actions only). */
static void
test_R2_10_actions_catalogued(void **state)
{
    (void)state;
    assert_true(audit_action_known("retention.run"));
    assert_true(audit_action_known("retention.purge"));
    assert_true(audit_action_known("retention.*"));
}

/* ---- records.retention_schedule (config) ------------------------------------------ */

/* Load a file of datadir + `line`; 0 or -1 with err set. */
static int
load_with(const char *line, struct mamori_config *cfg, char *err, size_t errlen)
{
    char dir[] = "/tmp/mamori-test-retcfg-XXXXXX", path[64];
    FILE *f;
    int rc;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/mamorid.conf", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "datadir = %s\n%s\n", dir, line);
    assert_int_equal(fclose(f), 0);
    rc = config_load(path, cfg, err, errlen);
    unlink(path);
    rmdir(dir);
    return rc;
}

static void
test_R2_10_schedule_config(void **state)
{
    static const struct { const char *v; int at; } good[] = {
        { "00:00", 0 }, { "02:30", 150 }, { "23:59", 1439 }, { "off", -1 },
    };
    static const char *const bad[] = {
        "24:00", "02:60", "2:30", "0230", "02:30:00", "02:3a", "OFF", "-1:00", "+2:30",
        "02 30", "02:30pm", "",
    };
    struct mamori_config cfg;
    char err[512], line[80];

    (void)state;
    assert_int_equal(load_with("", &cfg, err, sizeof(err)), 0);
    assert_int_equal(cfg.records_retention_at, 150);        /* default 02:30 */
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        snprintf(line, sizeof(line), "records.retention_schedule = %s", good[i].v);
        assert_int_equal(load_with(line, &cfg, err, sizeof(err)), 0);
        assert_int_equal(cfg.records_retention_at, good[i].at);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(line, sizeof(line), "records.retention_schedule = %s", bad[i]);
        if (load_with(line, &cfg, err, sizeof(err)) == 0)
            fail_msg("'%s' was accepted", bad[i]);
        /* the line, the key and what is wanted */
        assert_non_null(strstr(err, "line 2"));
        assert_non_null(strstr(err, "records.retention_schedule"));
        assert_non_null(strstr(err, "HH:MM"));
    }
}

/* ---- the job against a real store and audit log ---------------------------------- */

struct sink {
    char            dir[96];
    pthread_mutex_t mu;
    bool            refuse_purge;   /* the writer refuses retention.purge events */
    unsigned        events;         /* appended */
};

struct fx {
    struct store_fx      s;         /* keyring and store of TA, TB, TN, TE */
    struct sink          sink;
    struct retention_env env;
};

static int
sink_audit(void *arg, const json_t *ev)
{
    struct sink *s = arg;
    const char *action = json_string_value(json_object_get(ev, "action"));
    uint64_t seq;
    int rc = -1;

    pthread_mutex_lock(&s->mu);
    if (!(s->refuse_purge && strcmp(action, "retention.purge") == 0)) {
        char err[256];
        if (audit_append_offline(s->dir, ev, &seq, err, sizeof(err)) != 0)
            fail_msg("the audit log refused an event: %s", err);
        s->events++;
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static unsigned
sink_count(struct sink *s)
{
    unsigned n;

    pthread_mutex_lock(&s->mu);
    n = s->events;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static int
setup(void **state)
{
    static const char *const tenants[] = { TA, TB, TN, TE };
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    *state = f;
    store_fx_open(&f->s, "ret", tenants, sizeof(tenants) / sizeof(tenants[0]), 0);
    if (f->s.skip)
        return 0;
    snprintf(f->sink.dir, sizeof(f->sink.dir), "%s/audit", f->s.dir);
    assert_int_equal(mkdir(f->sink.dir, 0700), 0);
    pthread_mutex_init(&f->sink.mu, NULL);
    assert_int_equal(store_tenant_erase(f->s.st, TE), STORE_OK);
    f->env = (struct retention_env){ f->s.st, &f->s.kp, sink_audit, &f->sink, 5, 150,
                                     RETENTION_RATE };
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    if (!f->s.skip)
        pthread_mutex_destroy(&f->sink.mu);
    store_fx_close(&f->s);
    free(f);
    return 0;
}

/* `n` residents "<prefix>NNNN" of `tenant`, ceased on `ceased` (NULL:
 * still residents), inserted 64 at a time. */
static void
add_residents(struct fx *f, const char *tenant, const char *prefix, size_t n,
              const char *ceased)
{
    struct store_tenant *ctx = NULL;
    struct resident *r = calloc(64, sizeof(*r));
    int64_t ids[64];

    assert_non_null(r);
    assert_int_equal(store_tenant_ctx_open(f->s.st, tenant, &f->s.kp, &ctx), STORE_OK);
    for (size_t done = 0; done < n;) {
        size_t k = n - done;
        if (k > 64)
            k = 64;
        memset(r, 0, 64 * sizeof(*r));
        for (size_t i = 0; i < k; i++) {
            snprintf(r[i].address_no, sizeof(r[i].address_no), "%s%04zu", prefix, done + i);
            snprintf(r[i].name, sizeof(r[i].name), "試験　太郎");
            snprintf(r[i].birth_date, sizeof(r[i].birth_date), "1940-01-01");
            snprintf(r[i].sex, sizeof(r[i].sex), "1");
            if (ceased != NULL) {
                snprintf(r[i].movement_type, sizeof(r[i].movement_type), "死亡");
                snprintf(r[i].movement_date, sizeof(r[i].movement_date), "%s", ceased);
                snprintf(r[i].ceased_date, sizeof(r[i].ceased_date), "%s", ceased);
            }
        }
        assert_int_equal(store_resident_insert_batch(ctx, r, k, ids), STORE_OK);
        done += k;
    }
    store_tenant_ctx_close(ctx);
    free(r);
}

static uint64_t
residents(struct fx *f, const char *tenant)
{
    struct store_counts c;

    assert_int_equal(store_counts(f->s.st, tenant, &c), STORE_OK);
    return c.residents;
}

static bool
has_resident(struct fx *f, const char *tenant, const char *address_no)
{
    struct store_tenant *ctx = NULL;
    int64_t id;
    enum store_status st;

    assert_int_equal(store_tenant_ctx_open(f->s.st, tenant, &f->s.kp, &ctx), STORE_OK);
    st = store_resident_id(ctx, address_no, &id);
    store_tenant_ctx_close(ctx);
    assert_true(st == STORE_OK || st == STORE_NOTFOUND);
    return st == STORE_OK;
}

/* The log's entries of `tenant` (NULL: any) and `action`, oldest first. */
static json_t *
events(struct fx *f, const char *tenant, const char *action)
{
    struct audit_query q = { .tenant = tenant, .action = action };
    json_t *rows = NULL;

    assert_int_equal(audit_query_run(f->sink.dir, &q, &rows), 0);
    return rows;
}

static size_t
nevents(struct fx *f, const char *tenant, const char *action)
{
    json_t *rows = events(f, tenant, action);
    size_t n = json_array_size(rows);

    json_decref(rows);
    return n;
}

/* The event of the i-th entry of rows. */
static json_t *
ev_at(json_t *rows, size_t i)
{
    return json_object_get(json_array_get(rows, i), "event");
}

static json_int_t
info_int(json_t *ev, const char *key)
{
    return json_integer_value(json_object_get(json_object_get(ev, "info"), key));
}

static const char *
info_str(json_t *ev, const char *key)
{
    return json_string_value(json_object_get(json_object_get(ev, "info"), key));
}

static const char *
member(json_t *ev, const char *key)
{
    return json_string_value(json_object_get(ev, key));
}

/* Check the one retention.run event of `tenant`. */
static void
check_run(struct fx *f, const char *tenant, const char *outcome, json_int_t deleted,
          const char *day)
{
    json_t *rows = events(f, tenant, "retention.run"), *ev;

    assert_int_equal(json_array_size(rows), 1);
    ev = ev_at(rows, 0);
    assert_string_equal(member(ev, "actor"), RETENTION_SYSTEM_ACTOR);
    assert_string_equal(member(ev, "tenant"), tenant);
    assert_string_equal(member(ev, "outcome"), outcome);
    assert_int_equal(info_int(ev, "deleted"), deleted);
    assert_int_equal(info_int(ev, "retention_years"), 5);
    assert_string_equal(info_str(ev, "ceased_before"), "2021-06");
    assert_string_equal(info_str(ev, "day"), day);
    json_decref(rows);
}

/*
 * R2.10: at its time the job deletes, in every active tenant, exactly the
 * residents who ceased before the cutoff month (2021-06 on 2026-06-16 JST
 * with 5 years), in batches recorded as retention.purge by the system
 * actor with the tenant, and ends each tenant with retention.run, also
 * where nothing was deleted.  Before its time it does nothing; a second
 * tick the same day, or a new job (a restart, another worker), does
 * nothing either, even with a resident expired since; the next day's run
 * takes that one.
 */
static void
test_R2_10_job_runs_every_tenant_once_a_day(void **state)
{
    struct fx *f = *state;
    struct retention_sched *s = NULL, *again = NULL;
    json_t *rows;

    if (f->s.skip)
        skip();
    add_residents(f, TA, "A-OLD", 70, "2015-05-01");       /* two batches: 64 + 6 */
    add_residents(f, TA, "A-EDGE-OUT", 1, "2021-05-31");   /* the last day before the cutoff */
    add_residents(f, TA, "A-EDGE-IN", 1, "2021-06-01");    /* the cutoff month: kept */
    add_residents(f, TA, "A-LIVE", 3, NULL);
    add_residents(f, TB, "B-OLD", 2, "2001-01-01");
    add_residents(f, TB, "B-NEW", 2, "2024-03-01");
    assert_int_equal(retention_sched_new(&f->env, &s), 0);

    /* 02:29:59 JST on 16 June 2026: not yet */
    assert_int_equal(retention_sched_tick(s, utc("2026-06-15T17:29:59Z")),
                     utc("2026-06-15T17:30:00Z"));
    assert_int_equal(sink_count(&f->sink), 0);
    assert_int_equal(residents(f, TA), 75);

    /* 02:30 JST: the run; next is tomorrow's */
    assert_int_equal(retention_sched_tick(s, utc("2026-06-15T17:30:00Z")),
                     utc("2026-06-16T17:30:00Z"));
    assert_int_equal(residents(f, TA), 4);
    assert_false(has_resident(f, TA, "A-EDGE-OUT0000"));
    assert_true(has_resident(f, TA, "A-EDGE-IN0000"));
    assert_true(has_resident(f, TA, "A-LIVE0002"));
    assert_int_equal(residents(f, TB), 2);
    assert_true(has_resident(f, TB, "B-NEW0001"));
    check_run(f, TA, "success", 71, "2026-06-16");
    check_run(f, TB, "success", 2, "2026-06-16");
    check_run(f, TN, "success", 0, "2026-06-16");           /* recorded though nothing went */
    assert_int_equal(nevents(f, TE, NULL), 0);              /* erased: not run */
    rows = events(f, TA, "retention.purge");
    assert_int_equal(json_array_size(rows), 2);
    assert_int_equal(info_int(ev_at(rows, 0), "deleted"), 64);
    assert_int_equal(info_int(ev_at(rows, 1), "deleted"), 7);
    assert_int_equal(info_int(ev_at(rows, 1), "batch"), 2);
    assert_string_equal(member(ev_at(rows, 0), "actor"), RETENTION_SYSTEM_ACTOR);
    assert_int_equal(json_array_size(json_object_get(ev_at(rows, 0), "objects")), 64);
    json_decref(rows);
    assert_int_equal(nevents(f, TN, "retention.purge"), 0);
    rows = events(f, TB, "retention.purge");
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(ev_at(rows, 0), "objects"), 0)), "addr:.b-.o.l.d0000");
    json_decref(rows);

    /* the same day again: this job, and a new one, do nothing */
    unsigned had = sink_count(&f->sink);
    add_residents(f, TB, "B-LATE", 1, "2010-10-10");
    assert_int_equal(retention_sched_tick(s, utc("2026-06-15T20:00:00Z")),
                     utc("2026-06-16T17:30:00Z"));
    assert_int_equal(retention_sched_new(&f->env, &again), 0);
    assert_int_equal(retention_sched_tick(again, utc("2026-06-16T14:59:59Z")),
                     utc("2026-06-16T17:30:00Z"));
    assert_int_equal(sink_count(&f->sink), had);
    assert_true(has_resident(f, TB, "B-LATE0000"));

    /* the next day (17 June JST, after midnight but before 02:30: not yet) */
    assert_int_equal(retention_sched_tick(again, utc("2026-06-16T15:00:00Z")),
                     utc("2026-06-16T17:30:00Z"));
    assert_int_equal(sink_count(&f->sink), had);
    (void)retention_sched_tick(again, utc("2026-06-16T17:30:00Z"));
    assert_false(has_resident(f, TB, "B-LATE0000"));
    rows = events(f, TB, "retention.run");
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(info_str(ev_at(rows, 1), "day"), "2026-06-17");
    assert_int_equal(info_int(ev_at(rows, 1), "deleted"), 1);
    json_decref(rows);
    retention_sched_free(s);
    retention_sched_free(again);
}

struct ticker {
    struct retention_sched *s;
    int64_t                 now;
};

static void *
tick_thread(void *arg)
{
    struct ticker *t = arg;

    (void)retention_sched_tick(t->s, t->now);
    return NULL;
}

/*
 * R2.10: exactly one process runs a tenant's day.  Two jobs over two
 * store handles (two worker processes, or two daemons on one store) tick
 * at the same moment: each tenant gets one retention.run and its
 * residents are deleted once, whoever ran it.
 */
static void
test_R2_10_one_run_per_tenant_and_day_across_processes(void **state)
{
    struct fx *f = *state;
    struct retention_sched *s[2] = { NULL, NULL };
    struct store *st2 = NULL;
    struct ticker t[2];
    pthread_t th[2];

    if (f->s.skip)
        skip();
    add_residents(f, TA, "A-OLD", 130, "2015-05-01");
    add_residents(f, TB, "B-OLD", 5, "2015-05-01");
    assert_int_equal(store_open(&f->s.cfg, 0, &st2), STORE_OK);
    assert_int_equal(retention_sched_new(&f->env, &s[0]), 0);
    struct retention_env env2 = f->env;
    env2.store = st2;
    assert_int_equal(retention_sched_new(&env2, &s[1]), 0);
    for (int i = 0; i < 2; i++) {
        t[i] = (struct ticker){ s[i], utc("2026-06-15T18:00:00Z") };
        assert_int_equal(pthread_create(&th[i], NULL, tick_thread, &t[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    check_run(f, TA, "success", 130, "2026-06-16");
    check_run(f, TB, "success", 5, "2026-06-16");
    check_run(f, TN, "success", 0, "2026-06-16");
    assert_int_equal(nevents(f, TA, "retention.purge"), 3);     /* 64 + 64 + 2, once */
    assert_int_equal(residents(f, TA), 0);
    retention_sched_free(s[0]);
    retention_sched_free(s[1]);
    store_close(st2);
}

/*
 * R2.10, R7.1: fail closed.  The audit writer refuses the purge events:
 * nothing is deleted, and each tenant's retention.run says so
 * (outcome failure, reason audit_unavailable).
 */
static void
test_R2_10_job_fails_closed(void **state)
{
    struct fx *f = *state;
    struct retention_sched *s = NULL;
    json_t *rows;

    if (f->s.skip)
        skip();
    add_residents(f, TA, "A-OLD", 3, "2015-05-01");
    f->sink.refuse_purge = true;
    assert_int_equal(retention_sched_new(&f->env, &s), 0);
    (void)retention_sched_tick(s, utc("2026-06-15T17:30:00Z"));
    assert_int_equal(residents(f, TA), 3);
    check_run(f, TA, "failure", 0, "2026-06-16");
    rows = events(f, TA, "retention.run");
    assert_string_equal(member(ev_at(rows, 0), "reason"), "audit_unavailable");
    json_decref(rows);
    check_run(f, TN, "success", 0, "2026-06-16");   /* nothing to delete, nothing to refuse */
    retention_sched_free(s);
}

/*
 * R2.10: a run stopped by shutdown finishes the batch it is in (a whole
 * 64), records what it did (retention.run, failure, reason stopped) and
 * goes no further: the next tenant is neither claimed nor run, so a
 * restart the same day runs it.  The pace (RETENTION_RATE batches per
 * second) is what gives the test time to ask.
 */
static void
test_R2_10_stop_finishes_the_batch(void **state)
{
    struct fx *f = *state;
    struct retention_sched *s = NULL, *after = NULL;
    struct ticker t;
    pthread_t th;
    json_t *rows;
    json_int_t deleted;

    if (f->s.skip)
        skip();
    add_residents(f, TA, "A-OLD", 64 * 6, "2015-05-01");
    add_residents(f, TB, "B-OLD", 1, "2015-05-01");
    assert_int_equal(retention_sched_new(&f->env, &s), 0);
    t = (struct ticker){ s, utc("2026-06-15T17:30:00Z") };
    assert_int_equal(pthread_create(&th, NULL, tick_thread, &t), 0);
    for (int i = 0; i < 500 && sink_count(&f->sink) == 0; i++)
        usleep(10 * 1000);                          /* the first batch is recorded */
    retention_sched_stop(s);
    pthread_join(th, NULL);
    rows = events(f, TA, "retention.run");
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(member(ev_at(rows, 0), "outcome"), "failure");
    assert_string_equal(member(ev_at(rows, 0), "reason"), "stopped");
    deleted = info_int(ev_at(rows, 0), "deleted");
    json_decref(rows);
    assert_true(deleted >= 64 && deleted < 64 * 6 && deleted % 64 == 0);
    assert_int_equal(residents(f, TA), (uint64_t)(64 * 6 - deleted));
    assert_int_equal(nevents(f, TA, "retention.purge"), (size_t)(deleted / 64));
    assert_int_equal(nevents(f, TB, NULL), 0);
    assert_true(has_resident(f, TB, "B-OLD0000"));
    /* a restart the same day: the stopped tenant waits for tomorrow, the
     * others run now */
    assert_int_equal(retention_sched_new(&f->env, &after), 0);
    (void)retention_sched_tick(after, utc("2026-06-15T18:00:00Z"));
    assert_false(has_resident(f, TB, "B-OLD0000"));
    check_run(f, TB, "success", 1, "2026-06-16");
    assert_int_equal(nevents(f, TA, "retention.run"), 1);
    retention_sched_free(s);
    retention_sched_free(after);
}

/* R2.10: the claim itself - one STORE_OK per tenant and day; a code of
 * no tenant, or a malformed one or day, refused. */
static void
test_R2_10_claims(void **state)
{
    struct fx *f = *state;

    if (f->s.skip)
        skip();
    assert_int_equal(store_retention_claim(f->s.st, TA, "2026-06-16"), STORE_OK);
    assert_int_equal(store_retention_claim(f->s.st, TA, "2026-06-16"), STORE_EXISTS);
    assert_int_equal(store_retention_claim(f->s.st, TB, "2026-06-16"), STORE_OK);
    assert_int_equal(store_retention_claim(f->s.st, TA, "2026-06-17"), STORE_OK);
    assert_int_equal(store_retention_claim(f->s.st, TA, "2026-06-17"), STORE_EXISTS);
    assert_int_equal(store_retention_claim(f->s.st, TA, "2026-6-17"), STORE_INVALID);
    assert_int_equal(store_retention_claim(f->s.st, TA, "2026-02-30"), STORE_INVALID);
    assert_int_equal(store_retention_claim(f->s.st, "123456", "2026-06-17"), STORE_INVALID);
    assert_int_not_equal(store_retention_claim(f->s.st, "472018", "2026-06-17"), STORE_OK);
}

int
main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_R2_10_next_run_in_japan_time),
        cmocka_unit_test(test_R2_10_day_and_cutoff_in_japan_time),
        cmocka_unit_test(test_R2_10_off_and_not_yet_due),
        cmocka_unit_test(test_R2_10_schedule_config),
        cmocka_unit_test(test_R2_10_actions_catalogued),
    };
    const struct CMUnitTest stored[] = {
        cmocka_unit_test_setup_teardown(test_R2_10_job_runs_every_tenant_once_a_day, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_R2_10_one_run_per_tenant_and_day_across_processes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_10_job_fails_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_10_stop_finishes_the_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_10_claims, setup, teardown),
    };
    int failed;

    if (sodium_init() < 0)
        return 1;
    log_setup("test_retention", LOG_TO_STDERR, LOG_LVL_ERROR);
    failed = cmocka_run_group_tests_name("retention", pure, NULL, NULL);
    failed += STORE_FX_RUN("retention-store/sqlite", "retention-store/postgresql", stored, 0);
    return failed;
}
