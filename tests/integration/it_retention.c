/*
 * it_retention.c - the daily retention job in the real mamorid (R2.10).
 *
 * Two tenants get synthetic residents through the real `mamori import`
 * (R9.4): some who ceased long ago, one who ceased recently, one still
 * resident.  mamorid then starts with two workers and
 * records.retention_schedule = 00:00: the job's time of the Japan-time
 * day has always passed, so the job runs that day's run at once, as it
 * does after any start later in the day than its time (no test hook, no
 * clock set: the value any operator may write).  The test checks the
 * audit log (retention.purge naming the address numbers, one
 * retention.run per tenant by the system actor), the store (only the
 * expired are gone), that one worker alone ran it, and that a restart the
 * same day runs nothing again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "audit/query.h"
#include "config/config.h"
#include "store/store.h"
#include "store/store_records.h"
#include "vrs/retention.h"

#include "harness.h"
#include "staff.h"

#define TA "011002"
#define TB "131016"

#define HEADER "address_no,mynumber,name,kana,birth_date,sex,postcode,address,katagaki," \
    "household_no,relationship,became_date,ceased_date,movement_type,movement_date," \
    "prev_address,next_address,alias\n"
/* a resident who ceased (死亡 / 転出) on `d`, or "" for one still resident */
#define CEASED(no, d, how) no ",,試験　太郎,,1940-01-01,1,,,,,,," d "," how "," d ",,,\n"
#define LIVING(no) no ",,試験　花子,,1980-01-01,2,,,,,,,,,,,,\n"

static struct instance in;
static struct mamori_config cfg;

static void
import(const char *tenant, const char *csv)
{
    char path[400];
    char *argv[] = { (char *)h_bin("mamori"), "import", "-c", in.conf, "--tenant",
                     (char *)tenant, "--kind", "residents", path, NULL };

    snprintf(path, sizeof(path), "%s/residents-%s.csv", in.dir, tenant);
    assert_int_equal(h_write(path, csv), 0);
    assert_int_equal(h_run(argv, NULL, 0), 0);
}

/* How many lines of the daemon's log are the event `ev`. */
static int
log_count(const char *ev)
{
    char needle[80], line[8192];
    FILE *f = fopen(in.log, "r");
    int n = 0;

    snprintf(needle, sizeof(needle), "\"event\":\"%s\"", ev);
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* Wait (up to 30 s) for the job to have finished a day's run. */
static void
wait_day_done(void)
{
    for (int i = 0; i < 3000 && log_count("retention_day") == 0; i++)
        usleep(10 * 1000);
    assert_int_equal(log_count("retention_day"), 1);
}

static json_t *
events(const char *tenant, const char *action)
{
    struct audit_query q = { .tenant = tenant, .action = action };
    json_t *rows = NULL;

    assert_int_equal(audit_query_run(cfg.audit_dir, &q, &rows), 0);
    return rows;
}

static uint64_t
residents(const char *tenant)
{
    struct store_config sc = { .backend = cfg.store_backend, .path = cfg.store_path,
                               .conninfo = cfg.store_conninfo };
    struct store *st = NULL;
    struct store_counts c;

    assert_int_equal(store_open(&sc, 0, &st), STORE_OK);
    assert_int_equal(store_counts(st, tenant, &c), STORE_OK);
    store_close(st);
    return c.residents;
}

/* The one retention.run of `tenant`: by the system, successful, `deleted`. */
static void
check_run(const char *tenant, json_int_t deleted, char day[11])
{
    json_t *rows = events(tenant, "retention.run");
    json_t *ev = json_object_get(json_array_get(rows, 0), "event");
    json_t *info = json_object_get(ev, "info");

    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_object_get(ev, "actor")), RETENTION_SYSTEM_ACTOR);
    assert_string_equal(json_string_value(json_object_get(ev, "outcome")), "success");
    assert_int_equal(json_integer_value(json_object_get(info, "deleted")), deleted);
    assert_int_equal(json_integer_value(json_object_get(info, "retention_years")), 5);
    snprintf(day, 11, "%s", json_string_value(json_object_get(info, "day")));
    json_decref(rows);
}

static void
test_R2_10_daily_job_in_mamorid(void **state)
{
    static const char *const tenants[] = { TA, TB };
    char err[512], day_a[11], day_b[11], today[11], later[11], *text;
    json_t *rows;

    (void)state;
    assert_int_equal(h_init(&in), 0);
    assert_int_equal(h_set_conf(&in, "workers", "2"), 0);
    assert_int_equal(h_set_conf(&in, "records.retention_schedule", "00:00"), 0);
    assert_int_equal(config_load(in.conf, &cfg, err, sizeof(err)), 0);
    assert_int_equal(h_tenants_create(&cfg, tenants, 2), 0);
    import(TA, HEADER CEASED("9000000001", "2015-02-01", "死亡")
                      CEASED("9000000002", "2016-03-01", "転出")
                      CEASED("9000000003", "2024-02-01", "転出")
                      LIVING("9000000004"));
    import(TB, HEADER CEASED("9100000001", "2012-12-31", "死亡") LIVING("9100000002"));

    retention_jst_date((int64_t)time(NULL), today);
    assert_int_equal(h_launch(&in), 0);
    wait_day_done();
    /* worker 0 only: one job started, though there are two workers */
    assert_int_equal(log_count("retention_scheduled"), 1);
    check_run(TA, 2, day_a);
    check_run(TB, 1, day_b);
    assert_string_equal(day_a, day_b);
    rows = events(TA, "retention.purge");
    assert_int_equal(json_array_size(rows), 1);
    text = json_dumps(rows, JSON_COMPACT);
    assert_non_null(strstr(text, "\"addr:9000000001\""));
    assert_non_null(strstr(text, "\"addr:9000000002\""));
    assert_null(strstr(text, "9000000003"));
    assert_non_null(strstr(text, "\"actor\":\"" RETENTION_SYSTEM_ACTOR "\""));
    free(text);
    json_decref(rows);
    assert_int_equal(h_stop(&in), 0);
    assert_int_equal(residents(TA), 2);         /* the recent mover and the resident */
    assert_int_equal(residents(TB), 1);

    /* a restart the same (Japan-time) day: the runs are claimed, nothing again */
    import(TB, HEADER CEASED("9100000003", "2011-01-01", "死亡"));
    assert_int_equal(h_launch(&in), 0);         /* a new log */
    wait_day_done();
    assert_int_equal(h_stop(&in), 0);
    retention_jst_date((int64_t)time(NULL), later);
    if (strcmp(today, later) != 0 || strcmp(day_a, today) != 0) {
        fprintf(stderr, "*** Japan's midnight passed during the test: the same-day "
                "check is not made ***\n");
    } else {
        check_run(TA, 2, day_a);
        check_run(TB, 1, day_b);
        assert_int_equal(residents(TB), 2);
    }
    h_cleanup(&in);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R2_10_daily_job_in_mamorid),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("integration/retention", tests, NULL, NULL);
}
