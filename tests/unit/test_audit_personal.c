/*
 * test_audit_personal.c - what counts as touching a person's record, the
 * one rule the access review (R7.5) and the intrusion rules (R7.4) share
 * (audit_object_is_personal & co., src/audit/event.c): records touched by
 * vaccination, voucher, transfer and export events are in the review;
 * the mass-read and off-hours rules fire on them; they do not fire for
 * events that touch no personal data (auth.*, staff.*, key.*, devices)
 * nor for the daemon's own work (system@mamori).  Under the old rule
 * (only "resident.*" actions) every test below fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/detect.h"
#include "audit/event.h"
#include "audit/query.h"
#include "audit/writer.h"

#define SEC 1000000LL
/* 10:00 JST on some day, in microseconds (as in test_audit.c). */
#define T_DAY ((int64_t)(1700000000 - 1700000000 % 86400 + 3600) * SEC)

/* One synthetic event: action, actor, up to 3 objects, an optional info
 * count (member `count_key`), an optional subject. */
static json_t *
ev_new(const char *action, const char *actor, const char *o1, const char *o2,
       const char *o3)
{
    const char *objs[] = { o1, o2, o3 };
    json_t *ev = audit_event_new(action, AUDIT_SUCCESS);

    assert_non_null(ev);
    assert_int_equal(audit_event_set(ev, AUDIT_F_TENANT, "131016"), 0);
    assert_int_equal(audit_event_set(ev, AUDIT_F_ACTOR, actor), 0);
    for (size_t i = 0; i < 3; i++)
        if (objs[i] != NULL)
            assert_int_equal(audit_event_add_object(ev, objs[i]), 0);
    return ev;
}

static json_t *
ev_bulk(const char *action, const char *actor, const char *count_key, int64_t n)
{
    json_t *ev = ev_new(action, actor, NULL, NULL, NULL);

    assert_int_equal(audit_event_info_int(ev, count_key, n), 0);
    return ev;
}

/* ---- the helper ------------------------------------------------------------ */

static void
test_R7_object_kinds(void **state)
{
    static const char *const personal[] = { "resident:1", "addr:1.a2", "vaccination:10",
                                            "voucher:123456", "correction:3", "consent:ab",
                                            "inquiry:cd", "answer:ef", "job:0a", "import:1b" };
    static const char *const not_personal[] = { "device:sd-1", "r-1", "resident", "residents:1",
                                                "voucherx:1", ":1", "" };
    json_t *ev;

    (void)state;
    for (size_t i = 0; i < sizeof(personal) / sizeof(personal[0]); i++)
        if (!audit_object_is_personal(personal[i]))
            fail_msg("%s is a personal record", personal[i]);
    for (size_t i = 0; i < sizeof(not_personal) / sizeof(not_personal[0]); i++)
        if (audit_object_is_personal(not_personal[i]))
            fail_msg("%s is not a personal record", not_personal[i]);
    assert_false(audit_object_is_personal(NULL));
    assert_true(audit_object_is_person("resident:1"));
    assert_true(audit_object_is_person("addr:1"));
    assert_false(audit_object_is_person("vaccination:1"));
    assert_false(audit_object_is_person("voucher:1"));
    /* bulk reads: exports by rows, the transfer records list by records */
    ev = ev_bulk("resident.export", "sup-1", "rows", 1000);
    assert_int_equal(audit_event_bulk_reads(ev), 1000);
    assert_true(audit_event_is_personal(ev));
    json_decref(ev);
    ev = ev_bulk("transfer.records.read", "clerk-1", "records", 40);
    assert_int_equal(audit_event_bulk_reads(ev), 40);
    json_decref(ev);
    ev = ev_bulk("resident.import.commit", "sup-1", "rows", 1000);   /* a write */
    assert_int_equal(audit_event_bulk_reads(ev), 0);
    assert_false(audit_event_is_personal(ev));
    json_decref(ev);
    ev = ev_new("site_device.create", "admin-1", "device:sd-1", NULL, NULL);
    assert_false(audit_event_is_personal(ev));
    json_decref(ev);
    ev = ev_new("resident.search", "clerk-1", NULL, NULL, NULL);       /* no match */
    assert_false(audit_event_is_personal(ev));
    json_object_set_new(ev, "subject", json_string("hmac:00112233445566778899aabbccddeeff"
                                                   "00112233445566778899aabbccddeeff"));
    assert_true(audit_event_is_personal(ev));
    json_decref(ev);
}

/* ---- the review (R7.5) ----------------------------------------------------- */

static int64_t now_us;
static int64_t
fixed_clock(void)
{
    return now_us;
}

struct at {
    int hour_jst;           /* on 2025-01-06, Japan time */
    json_t *ev;
};

/* Write the events to a fresh log in `dir`. */
static void
write_log(const char *dir, struct at *evs, size_t n)
{
    struct audit_writer_opts o = { .dir = dir, .segment_max_bytes = 1u << 26,
                                   .archive_days = 366, .retention_days = 1827,
                                   .no_rotate = true };
    struct audit_writer *w;
    char err[256];
    uint64_t cut, seq;
    int64_t day;

    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(audit_time_parse("2025-01-05T15:00:00Z", &day), 0);  /* 00:00 JST */
    audit_set_clock(fixed_clock);
    now_us = day;
    if (audit_writer_open(&o, &w, &cut, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    for (size_t i = 0; i < n; i++) {
        now_us = day + (int64_t)evs[i].hour_jst * 3600 * SEC + (int64_t)i * SEC;
        assert_int_equal(audit_writer_begin(w), 0);
        if (audit_writer_append(w, evs[i].ev, &seq, err, sizeof(err)) != 0)
            fail_msg("append %zu: %s", i, err);
        assert_int_equal(audit_writer_commit(w), 0);
        json_decref(evs[i].ev);
    }
    audit_writer_close(w);
    audit_set_clock(NULL);
}

static json_int_t
count(const json_t *rep, const char *k)
{
    return json_integer_value(json_object_get(rep, k));
}

static json_int_t
record(const json_t *rep, const char *id)
{
    return json_integer_value(json_object_get(json_object_get(rep, "records"), id));
}

/* R7.5: records touched by vaccination, voucher, transfer and export
 * events are in the review, off-hours lists every access to personal
 * data and nothing else; devices and sign-ins are not records. */
static void
test_R7_5_review_counts_every_personal_record(void **state)
{
    char base[] = "/tmp/mamori-test-ap-XXXXXX", dir[PATH_MAX], *csv, cmd[64];
    struct audit_query range = { .tenant = "131016" };
    json_t *rep;
    size_t len;
    struct at evs[] = {                 /* in time order: the log's times only grow */
        { 3, ev_new("retention.purge", AUDIT_SYSTEM_ACTOR, "addr:1.a2", "addr:3.b4", NULL) },
        { 7, ev_new("vaccination.correct", "clerk-1", "resident:1", "vaccination:10",
                    "correction:5") },                                      /* off hours */
        { 10, ev_new("vaccination.create", "clerk-1", "resident:1", "vaccination:10", NULL) },
        { 11, ev_new("voucher.read", "clerk-1", "voucher:123456", "resident:2", NULL) },
        { 12, ev_new("transfer.inquire", "clerk-1", "inquiry:ab01", "resident:3", NULL) },
        { 13, ev_new("transfer.inquiry.read", "clerk-1", "inquiry:ab01", NULL, NULL) },
        { 14, ev_new("transfer.job.result", "clerk-1", "job:cd02", NULL, NULL) },
        { 22, ev_bulk("resident.export", "clerk-1", "rows", 1000) },         /* off hours */
        { 23, ev_new("auth.login", "clerk-1", NULL, NULL, NULL) },           /* not personal */
        { 23, ev_new("site_device.create", "clerk-1", "device:sd-1", NULL, NULL) },
    };

    (void)state;
    assert_non_null(mkdtemp(base));
    snprintf(dir, sizeof(dir), "%s/audit", base);
    write_log(dir, evs, sizeof(evs) / sizeof(evs[0]));

    assert_int_equal(audit_review(dir, "clerk-1", &range, 9, 17, &rep), 0);
    assert_int_equal(count(rep, "events"), 9);
    /* resident:1 2, vaccination:10 2, correction:5, voucher:123456,
     * resident:2, inquiry:ab01 2, resident:3, job:cd02 */
    assert_int_equal(count(rep, "records_touched"), 8);
    assert_int_equal(record(rep, "resident:1"), 2);
    assert_int_equal(record(rep, "vaccination:10"), 2);
    assert_int_equal(record(rep, "correction:5"), 1);
    assert_int_equal(record(rep, "voucher:123456"), 1);
    assert_int_equal(record(rep, "inquiry:ab01"), 2);
    assert_int_equal(record(rep, "job:cd02"), 1);
    assert_null(json_object_get(json_object_get(rep, "records"), "device:sd-1"));
    /* the export names no record: counted as a bulk read of its rows */
    assert_int_equal(count(rep, "bulk_reads"), 1);
    assert_int_equal(count(rep, "bulk_records"), 1000);
    /* off hours: the 07:00 correction and the 22:00 export, not the
     * 23:00 sign-in nor the device */
    assert_int_equal(count(rep, "off_hours"), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(
        json_object_get(rep, "off_hours_entries"), 0), "action")), "vaccination.correct");
    assert_string_equal(json_string_value(json_object_get(json_array_get(
        json_object_get(rep, "off_hours_entries"), 1), "action")), "resident.export");
    assert_int_equal(audit_review_csv(rep, &csv, &len), 0);
    assert_non_null(strstr(csv, "\"clerk-1\",9,8,2,0,0\n"));
    assert_non_null(strstr(csv, "\n\"vaccination:10\",2\n"));
    assert_non_null(strstr(csv, "\nbulk_reads,bulk_records\n1,1000\n"));
    free(csv);
    json_decref(rep);

    /* the system actor's own review still shows what it deleted */
    assert_int_equal(audit_review(dir, AUDIT_SYSTEM_ACTOR, &range, 9, 17, &rep), 0);
    assert_int_equal(count(rep, "records_touched"), 2);
    assert_int_equal(record(rep, "addr:1.a2"), 1);
    assert_int_equal(count(rep, "off_hours"), 1);
    json_decref(rep);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    assert_int_equal(system(cmd), 0);
}

/* ---- the rules (R7.4) ------------------------------------------------------ */

/* login failures, source failures, window, distinct_residents = 5,
 * read_window, block, office hours 8-19 */
static struct detect_cfg dcfg = { 3, 4, 300, 5, 3600, 900, 8, 19 };

/* Alerts of `rule` raised by one event (consumed). */
static size_t
feed(struct detect *d, json_t *ev, int64_t t, const char *rule)
{
    json_t *alerts = json_array(), *a;
    size_t n = 0, i;

    detect_feed(d, ev, t, alerts);
    json_array_foreach(alerts, i, a) {
        char why[64];
        assert_int_equal(audit_event_validate(a, why, sizeof(why)), 0);
        n += strcmp(json_string_value(json_object_get(json_object_get(a, "info"), "rule")),
                    rule) == 0;
    }
    json_decref(alerts);
    json_decref(ev);
    return n;
}

static json_t *
vaccination(const char *actor, int person, bool with_resident)
{
    char r[32], v[32];

    snprintf(r, sizeof(r), "resident:%d", person);
    snprintf(v, sizeof(v), "vaccination:%d", 1000 + person);
    return with_resident ? ev_new("vaccination.create", actor, r, v, NULL)
                         : ev_new("vaccination.correct", actor, v, NULL, NULL);
}

/* R7.4: a clerk touching many people's vaccination records raises
 * mass_read; the people are counted, not the records about each. */
static void
test_R7_4_mass_read_on_vaccination_records(void **state)
{
    struct detect *d = detect_new(&dcfg);

    (void)state;
    /* four people, each named with two records, again and again: below */
    for (int i = 0; i < 12; i++)
        assert_int_equal(feed(d, vaccination("clerk-v", i % 4, true), T_DAY + i * SEC,
                              "mass_read"), 0);
    /* the fifth person: at the threshold, once */
    assert_int_equal(feed(d, vaccination("clerk-v", 4, true), T_DAY + 20 * SEC, "mass_read"), 1);
    /* records naming no resident stand for one person each */
    for (int i = 0; i < 4; i++)
        assert_int_equal(feed(d, vaccination("clerk-w", 10 + i, false), T_DAY + i * SEC,
                              "mass_read"), 0);
    assert_int_equal(feed(d, vaccination("clerk-w", 14, false), T_DAY + 5 * SEC, "mass_read"),
                     1);
    /* another clerk is counted separately */
    assert_int_equal(feed(d, vaccination("clerk-x", 1, true), T_DAY + 21 * SEC, "mass_read"), 0);
    detect_free(d);
}

/* R7.4: a bulk transfer (its inquiries name each resident) and an
 * export (rows) raise mass_read; an export raises it once. */
static void
test_R7_4_mass_read_on_bulk_transfer_and_export(void **state)
{
    struct detect *d = detect_new(&dcfg);
    char q[32], r[32];

    (void)state;
    for (int i = 0; i < 5; i++) {
        snprintf(q, sizeof(q), "inquiry:%02x", i);
        snprintf(r, sizeof(r), "resident:%d", i);
        assert_int_equal(feed(d, ev_new("transfer.inquire", "clerk-t", q, r, NULL),
                              T_DAY + i * SEC, "mass_read"), i == 4 ? 1 : 0);
    }
    assert_int_equal(feed(d, ev_bulk("resident.export", "sup-e", "rows", 10000), T_DAY,
                          "mass_read"), 1);
    assert_int_equal(feed(d, ev_bulk("resident.export", "sup-f", "rows", 4), T_DAY,
                          "mass_read"), 0);
    detect_free(d);
}

/* R7.4: events that touch no personal data never raise mass_read or
 * off_hours, however many and whenever; nor does the daemon's own work;
 * then the same actor's personal accesses do. */
static void
test_R7_4_rules_only_for_personal_access(void **state)
{
    static const char *const actions[] = { "auth.login", "auth.logout", "staff.create",
                                           "staff.role", "key.rotate", "terminal.register",
                                           "audit.query" };
    struct detect *d = detect_new(&dcfg);
    int64_t night = T_DAY + 12 * 3600 * SEC;             /* 22:00 JST */
    char dev[32], addr[32];

    (void)state;
    for (int i = 0; i < 50; i++) {
        json_t *ev = ev_new(actions[i % 7], "clerk-n", NULL, NULL, NULL);
        assert_int_equal(feed(d, json_incref(ev), night + i * SEC, "mass_read"), 0);
        assert_int_equal(feed(d, ev, night + i * SEC + 1, "off_hours"), 0);
        snprintf(dev, sizeof(dev), "device:sd-%d", i);
        assert_int_equal(feed(d, ev_new("site_device.create", "clerk-n", dev, NULL, NULL),
                              night + i * SEC + 2, "mass_read"), 0);
    }
    /* the nightly retention job deleting residents and transfer answers */
    for (int i = 0; i < 50; i++) {
        json_t *ev;
        snprintf(addr, sizeof(addr), "addr:%d", i);
        ev = ev_new("retention.purge", AUDIT_SYSTEM_ACTOR, addr, NULL, NULL);
        assert_int_equal(feed(d, json_incref(ev), night + i * SEC, "mass_read"), 0);
        assert_int_equal(feed(d, ev, night + i * SEC, "off_hours"), 0);
        snprintf(addr, sizeof(addr), "resident:%d", i);
        assert_int_equal(feed(d, ev_new("transfer.provide", AUDIT_SYSTEM_ACTOR, "inquiry:0a",
                                        addr, NULL), night + i * SEC, "off_hours"), 0);
    }
    /* the same clerk reading a vaccination record at night: off_hours */
    assert_int_equal(feed(d, vaccination("clerk-n", 1, false), night + 100 * SEC, "off_hours"),
                     1);
    detect_free(d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R7_object_kinds),
        cmocka_unit_test(test_R7_5_review_counts_every_personal_record),
        cmocka_unit_test(test_R7_4_mass_read_on_vaccination_records),
        cmocka_unit_test(test_R7_4_mass_read_on_bulk_transfer_and_export),
        cmocka_unit_test(test_R7_4_rules_only_for_personal_access),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
