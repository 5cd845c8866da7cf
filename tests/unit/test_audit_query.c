/*
 * test_audit_query.c - `mamori audit query` and `mamori audit review`
 * (R7.3, R7.5) run as the built binary against a log written with a
 * fixed clock: every filter returns exactly the matching entries, the
 * review counts records touched, off-hours accesses (the configured
 * hours, Japan time), failures and refusals, the JSON is valid, and CSV
 * cells a spreadsheet would run as a formula are neutralised.  And the
 * bounded, paged search behind the auditors' HTTP API: paging with
 * after_seq returns every row once, bisection finds the start of a
 * range, the time, byte and row bounds stop a query and say so, a
 * review's lists are bounded, and the API's validators.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/event.h"
#include "audit/writer.h"
#include "common/util.h"

#define MAMORI MAMORI_TEST_BINARY_DIR "/mamori"

struct env {
    char base[64];
    char conf[PATH_MAX];
};

/* The log: one event per line of this table, written at `time` (UTC).
 * Office hours are configured 9-17 (JST = UTC + 9). */
struct row {
    const char *time, *tenant, *actor, *action, *outcome, *reason;
    const char *objects[3];
};

static const struct row rows[] = {
    /* 0 */ { "2025-01-06T01:00:00Z", "131016", "clerk-1", "resident.read", "success", NULL,
              { "resident:1" } },                                   /* JST 10:00 */
    /* 1 */ { "2025-01-06T02:00:00Z", "131016", "clerk-1", "resident.correct", "success", NULL,
              { "resident:1", "correction:2" } },                   /* JST 11:00 */
    /* 2 */ { "2025-01-06T13:00:00Z", "131016", "clerk-1", "resident.read", "success", NULL,
              { "resident:3" } },                                   /* JST 22:00: off */
    /* 3 */ { "2025-01-06T23:30:00Z", "131016", "clerk-1", "resident.read", "success", NULL,
              { "resident:1" } },            /* JST 08:30: off for 9-17, not for 8-19 */
    /* 4 */ { "2025-01-07T00:30:00Z", "011002", "clerk-2", "resident.read", "success", NULL,
              { "resident:1" } },                                   /* other tenant */
    /* 5 */ { "2025-01-07T03:00:00Z", "131016", "clerk-1", "auth.login", "failure",
              "bad_password", { NULL } },
    /* 6 */ { "2025-01-07T04:00:00Z", "131016", "clerk-1", "resident.read", "refused",
              "permission_denied", { "resident:9" } },
    /* 7 */ { "2025-01-08T01:00:00Z", "131016", "@sum.a1", "resident.read", "success", NULL,
              { "-2-3", "resident:7" } },    /* names a spreadsheet would evaluate */
    /* 8 */ { "2025-01-08T02:00:00Z", "131016", "clerk-2", "staff.update", "success", NULL,
              { NULL } },
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static int64_t now_us;
static int64_t
fixed_clock(void)
{
    return now_us;
}

static json_t *
make_event(const struct row *r)
{
    enum audit_outcome o = strcmp(r->outcome, "success") == 0 ? AUDIT_SUCCESS
                         : strcmp(r->outcome, "failure") == 0 ? AUDIT_FAILURE
                                                              : AUDIT_REFUSED;
    json_t *ev = audit_event_new(r->action, o);

    assert_non_null(ev);
    assert_int_equal(audit_event_set(ev, AUDIT_F_TENANT, r->tenant), 0);
    assert_int_equal(audit_event_set(ev, AUDIT_F_ACTOR, r->actor), 0);
    if (r->reason != NULL)
        assert_int_equal(audit_event_set(ev, AUDIT_F_REASON, r->reason), 0);
    for (size_t i = 0; i < 3 && r->objects[i] != NULL; i++)
        assert_int_equal(audit_event_add_object(ev, r->objects[i]), 0);
    return ev;
}

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    struct audit_writer_opts o = { .ckpt_entries = 0, .segment_max_bytes = 1u << 26,
                                   .archive_days = 366, .retention_days = 1827 };
    struct audit_writer *w;
    char dir[PATH_MAX], text[PATH_MAX + 128], err[256];
    uint64_t cut, seq;

    if (e == NULL)
        return -1;
    snprintf(e->base, sizeof(e->base), "/tmp/mamori-test-aq-XXXXXX");
    if (mkdtemp(e->base) == NULL) {
        free(e);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s/audit", e->base);
    snprintf(e->conf, sizeof(e->conf), "%s/mamorid.conf", e->base);
    int n = snprintf(text, sizeof(text), "datadir = %s\naudit.office_hours_start = 9\n"
                     "audit.office_hours_end = 17\n", e->base);
    if (mkdir(dir, 0700) != 0 || n <= 0 ||
        util_write_file_atomic(e->conf, text, (size_t)n, 0600) != 0) {
        free(e);
        return -1;
    }
    o.dir = dir;
    audit_set_clock(fixed_clock);
    assert_int_equal(audit_time_parse(rows[0].time, &now_us), 0);
    if (audit_writer_open(&o, &w, &cut, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    for (size_t i = 0; i < NROWS; i++) {
        json_t *ev = make_event(&rows[i]);
        assert_int_equal(audit_time_parse(rows[i].time, &now_us), 0);
        assert_int_equal(audit_writer_begin(w), 0);
        if (audit_writer_append(w, ev, &seq, err, sizeof(err)) != 0)
            fail_msg("append %zu: %s", i, err);
        assert_int_equal(audit_writer_commit(w), 0);
        json_decref(ev);
    }
    audit_writer_close(w);
    audit_set_clock(NULL);
    *state = e;
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->base);
    if (system(cmd) != 0)
        return -1;
    free(e);
    return 0;
}

/* Run `mamori audit <args> -c CONF`; returns its stdout (caller frees)
 * and checks the exit status. */
static char *
run(struct env *e, int want_status, const char *args)
{
    char cmd[PATH_MAX * 2 + 512], *out = NULL;
    size_t cap = 0, len = 0;
    FILE *p;
    int st;

    snprintf(cmd, sizeof(cmd), "%s audit %s -c '%s' 2>/dev/null", MAMORI, args, e->conf);
    p = popen(cmd, "r");
    assert_non_null(p);
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *grown;
            cap = cap * 2 + 8192;
            grown = realloc(out, cap);
            if (grown == NULL)
                free(out);
            assert_non_null(grown);
            out = grown;
        }
        size_t n = fread(out + len, 1, 4096, p);
        if (n == 0)
            break;
        len += n;
    }
    out[len] = '\0';
    st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != want_status)
        fail_msg("`%s` exited %d, expected %d; output:\n%s", cmd,
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1, want_status, out);
    return out;
}

/* Times of the rows `mamori audit query <args>` prints as JSON lines;
 * every line must be a valid JSON object. */
static void
expect_query(struct env *e, const char *args, const int *want, size_t nwant)
{
    char *out = run(e, 0, args), *line, *save = NULL;
    size_t got = 0;

    for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &je);
        if (!json_is_object(o))
            fail_msg("query %s: not a JSON object: %s (%s)", args, line, je.text);
        json_t *ev = json_object_get(o, "event");
        const char *t = json_string_value(json_object_get(o, "time"));
        assert_non_null(t);
        assert_null(json_object_get(o, "hash"));
        if (json_is_string(json_object_get(ev, "action")) &&
            strncmp(json_string_value(json_object_get(ev, "action")), "audit.", 6) == 0) {
            /* The writer's own entries (segment starts) match only
             * filters they satisfy: no tenant, actor or object. */
            assert_null(strstr(args, "--tenant"));
            assert_null(strstr(args, "--actor"));
            assert_null(strstr(args, "--object"));
            json_decref(o);
            continue;
        }
        if (got >= nwant)
            fail_msg("query %s: unexpected extra row %s", args, line);
        int64_t want_us, got_us;
        assert_int_equal(audit_time_parse(rows[want[got]].time, &want_us), 0);
        assert_int_equal(audit_time_parse(t, &got_us), 0);
        if (want_us != got_us)
            fail_msg("query %s: row %zu is %s, expected row %d (%s)", args, got, t,
                     want[got], rows[want[got]].time);
        assert_string_equal(json_string_value(json_object_get(ev, "action")),
                            rows[want[got]].action);
        got++;
        json_decref(o);
    }
    if (got != nwant)
        fail_msg("query %s: %zu rows, expected %zu", args, got, nwant);
    free(out);
}

#define Q(e, args, ...) do { \
        static const int w_[] = { __VA_ARGS__ }; \
        expect_query(e, args, w_, sizeof(w_) / sizeof(w_[0])); \
    } while (0)

static void
test_query_filters_exact(void **state)
{
    struct env *e = *state;

    Q(e, "query --tenant 011002", 4);
    Q(e, "query --tenant 131016", 0, 1, 2, 3, 5, 6, 7, 8);
    Q(e, "query --actor clerk-1", 0, 1, 2, 3, 5, 6);
    Q(e, "query --actor clerk-2", 4, 8);
    Q(e, "query --action resident.read", 0, 2, 3, 4, 6, 7);
    Q(e, "query --action auth.login", 5);
    Q(e, "query --object resident:1", 0, 1, 3, 4);
    Q(e, "query --object correction:2", 1);
    /* [since, until): since is included, until is not. */
    Q(e, "query --actor clerk-1 --since 2025-01-07 --until 2025-01-08", 5, 6);
    Q(e, "query --tenant 131016 --since 2025-01-06T02:00:00Z --until 2025-01-06T23:30:00Z",
      1, 2);
    Q(e, "query --actor clerk-1 --action resident.read --object resident:1", 0, 3);
    /* Nothing matches: no rows, still success. */
    char *out = run(e, 0, "query --actor nobody");
    assert_string_equal(out, "");
    free(out);
    /* A malformed bound is a usage error. */
    free(run(e, 2, "query --since yesterday"));
}

static void
test_query_csv_neutralises_formulas(void **state)
{
    struct env *e = *state;
    char *out = run(e, 0, "query --format csv --actor @sum.a1");
    char *l2 = strchr(out, '\n');

    assert_non_null(l2);
    assert_true(strncmp(out, "seq,time,tenant,actor,", 22) == 0);
    /* One data row; the actor cell starts with an apostrophe, the JSON
     * array of objects is left alone (it starts with '['). */
    assert_non_null(strstr(l2, ",\"'@sum.a1\","));
    assert_null(strstr(l2, ",\"@sum.a1\""));
    assert_non_null(strstr(l2, "\"[\"\"-2-3\"\",\"\"resident:7\"\"]\""));
    assert_null(strchr(strchr(l2 + 1, '\n') + 1, '\n'));
    free(out);
    /* Plain cells are unchanged. */
    out = run(e, 0, "query --format csv --tenant 011002");
    assert_non_null(strstr(out, ",\"011002\",\"clerk-2\","));
    free(out);
}

static void
test_review_counts(void **state)
{
    struct env *e = *state;
    char *out = run(e, 0, "review --actor clerk-1 --format json");
    json_error_t je;
    json_t *r = json_loads(out, JSON_REJECT_DUPLICATES, &je);

    if (!json_is_object(r))
        fail_msg("review output is not JSON: %s\n%s", je.text, out);
    assert_string_equal(json_string_value(json_object_get(r, "actor")), "clerk-1");
    assert_int_equal(json_integer_value(json_object_get(r, "events")), 6);
    /* resident:1 (3 times: read, correct, read), correction:2, resident:3,
     * resident:9 (R7.5). */
    assert_int_equal(json_integer_value(json_object_get(r, "records_touched")), 4);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "records"),
                                                        "resident:1")), 3);
    /* Off hours for the configured 9-17: 22:00 and 08:30 JST. */
    assert_int_equal(json_integer_value(json_object_get(r, "off_hours")), 2);
    json_t *oh = json_object_get(r, "off_hours_entries");
    assert_int_equal(json_array_size(oh), 2);
    int64_t t0, t1, w0, w1;
    assert_int_equal(audit_time_parse(json_string_value(json_object_get(json_array_get(oh, 0),
                                                                        "time")), &t0), 0);
    assert_int_equal(audit_time_parse(json_string_value(json_object_get(json_array_get(oh, 1),
                                                                        "time")), &t1), 0);
    assert_int_equal(audit_time_parse(rows[2].time, &w0), 0);
    assert_int_equal(audit_time_parse(rows[3].time, &w1), 0);
    assert_true(t0 == w0 && t1 == w1);
    assert_int_equal(json_integer_value(json_object_get(r, "failures")), 1);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(json_object_get(r, "failure_entries"), 0), "reason")), "bad_password");
    assert_int_equal(json_integer_value(json_object_get(r, "refusals")), 1);
    assert_string_equal(json_string_value(json_object_get(
        json_array_get(json_object_get(r, "refusal_entries"), 0), "reason")),
        "permission_denied");
    json_decref(r);
    free(out);

    /* A period: only 2025-01-07 (the failure and the refusal). */
    out = run(e, 0, "review --actor clerk-1 --since 2025-01-07 --until 2025-01-08 "
                    "--format json");
    r = json_loads(out, 0, &je);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "events")), 2);
    assert_int_equal(json_integer_value(json_object_get(r, "records_touched")), 1);
    assert_int_equal(json_integer_value(json_object_get(r, "off_hours")), 0);
    assert_int_equal(json_integer_value(json_object_get(r, "failures")), 1);
    assert_int_equal(json_integer_value(json_object_get(r, "refusals")), 1);
    json_decref(r);
    free(out);

    /* Another staff member's activity is not counted. */
    out = run(e, 0, "review --actor clerk-2 --format json");
    r = json_loads(out, 0, &je);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "events")), 2);
    assert_int_equal(json_integer_value(json_object_get(r, "records_touched")), 1);
    assert_int_equal(json_integer_value(json_object_get(r, "off_hours")), 0);
    json_decref(r);
    free(out);

    /* review needs --actor. */
    free(run(e, 2, "review --format json"));
}

static void
test_review_csv(void **state)
{
    struct env *e = *state;
    char *out = run(e, 0, "review --actor clerk-1 --format csv");

    assert_non_null(strstr(out, "actor,events,records_touched,off_hours,failures,refusals\n"
                                "\"clerk-1\",6,4,2,1,1\n"));
    assert_non_null(strstr(out, "\nkind,seq,time,action,objects,reason,terminal\n"));
    assert_non_null(strstr(out, "\"bad_password\""));
    assert_non_null(strstr(out, "\"permission_denied\""));
    /* Two off-hours lines, one failure line, one refusal line. */
    size_t off = 0, fail = 0, ref = 0;
    for (char *p = out; (p = strchr(p, '\n')) != NULL; p++) {
        off += strncmp(p + 1, "off_hours,", 10) == 0;
        fail += strncmp(p + 1, "failure,", 8) == 0;
        ref += strncmp(p + 1, "refusal,", 8) == 0;
    }
    assert_int_equal(off, 2);
    assert_int_equal(fail, 1);
    assert_int_equal(ref, 1);
    free(out);
    /* The actor cell of a formula-like name is neutralised. */
    out = run(e, 0, "review --actor @sum.a1 --format csv");
    assert_non_null(strstr(out, "\n\"'@sum.a1\",1,1,"));
    free(out);
}

/* ---- the bounded, paged search behind the HTTP API (R7.5) ----------------- */

#include "audit/api.h"
#include "audit/query.h"

/* A log of n entries one second apart from t0, tenants alternating
 * 131016 / 011002, actor clerk-<i % 7>, one object r-<i>; every 5th is
 * refused.  One live segment (the writer makes it in one go). */
static void
make_log(const char *dir, unsigned n, int64_t t0)
{
    struct audit_writer_opts o = { .dir = dir, .segment_max_bytes = 1u << 30,
                                   .archive_days = 366, .retention_days = 1827,
                                   .no_rotate = true };
    struct audit_writer *w;
    char err[256], actor[16], obj[24];
    uint64_t cut, seq;

    assert_int_equal(mkdir(dir, 0700), 0);
    audit_set_clock(fixed_clock);
    now_us = t0;
    if (audit_writer_open(&o, &w, &cut, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    assert_int_equal(audit_writer_begin(w), 0);
    for (unsigned i = 0; i < n; i++) {
        json_t *ev = audit_event_new("resident.read", i % 5 == 4 ? AUDIT_REFUSED
                                                                 : AUDIT_SUCCESS);
        snprintf(actor, sizeof(actor), "clerk-%u", i % 7);
        snprintf(obj, sizeof(obj), "resident:%u", i);
        now_us = t0 + (int64_t)i * 1000000;
        assert_int_equal(audit_event_set(ev, AUDIT_F_TENANT, i % 2 ? "011002" : "131016"), 0);
        assert_int_equal(audit_event_set(ev, AUDIT_F_ACTOR, actor), 0);
        assert_int_equal(audit_event_add_object(ev, obj), 0);
        if (audit_writer_append(w, ev, &seq, err, sizeof(err)) != 0)
            fail_msg("append %u: %s", i, err);
        json_decref(ev);
    }
    assert_int_equal(audit_writer_commit(w), 0);
    audit_writer_close(w);
    audit_set_clock(NULL);
}

static uint64_t
seq_of(json_t *got, size_t i)
{
    return (uint64_t)json_integer_value(json_object_get(json_array_get(got, i), "seq"));
}

/* Page through with after_seq; every row once, in order, the same as
 * one unbounded search. */
static void
expect_paging_equals_run(const char *dir, struct audit_query q, const struct audit_bounds *b,
                         size_t want_min_pages)
{
    json_t *all, *paged = json_array();
    struct audit_progress p;
    struct audit_query whole = q;
    size_t pages = 0;

    whole.limit = 0;
    assert_int_equal(audit_query_run(dir, &whole, &all), 0);
    assert_true(json_array_size(all) > 0);
    q.after_seq = 0;
    do {
        json_t *got;
        uint64_t before = q.after_seq;
        assert_int_equal(audit_query_page(dir, &q, b, &got, &p), 0);
        json_array_extend(paged, got);
        json_decref(got);
        pages++;
        if (!p.complete) {
            assert_non_null(p.stopped_by);
            assert_true(p.last_seq > before);       /* always moves on */
        }
        q.after_seq = p.last_seq;
        assert_true(pages < 100000);
    } while (!p.complete);
    assert_true(json_equal(all, paged));
    assert_true(pages >= want_min_pages);
    json_decref(all);
    json_decref(paged);
}

static void
test_page_limit_and_cursor(void **state)
{
    struct env *e = *state;
    char dir[PATH_MAX];
    struct audit_query q = { .tenant = "131016", .limit = 7 };
    struct audit_progress p;
    json_t *got;

    snprintf(dir, sizeof(dir), "%s/big", e->base);
    make_log(dir, 3000, 1735689600LL * 1000000);          /* 2025-01-01 */
    /* R7.5: 1500 got of 131016, 7 a page */
    expect_paging_equals_run(dir, q, NULL, 1500 / 7);
    /* a page stops at its limit and says so; the cursor is its last row */
    assert_int_equal(audit_query_page(dir, &q, NULL, &got, &p), 0);
    assert_int_equal(json_array_size(got), 7);
    assert_false(p.complete);
    assert_string_equal(p.stopped_by, "limit");
    assert_int_equal(p.last_seq, seq_of(got, 6));
    json_decref(got);
    /* bisection to after_seq and to since in a live segment: the first row
     * is exactly the next one, wherever the cut falls */
    for (uint64_t after = 1; after < 3000; after += 337) {
        q.after_seq = after;
        assert_int_equal(audit_query_page(dir, &q, NULL, &got, &p), 0);
        assert_true(seq_of(got, 0) > after && seq_of(got, 0) <= after + 2);
        json_decref(got);
    }
    q.after_seq = 0;
    q.tenant = NULL;
    for (int64_t k = 5; k < 3000; k += 411) {
        q.has_since = true;
        q.since_us = (1735689600LL + k) * 1000000;
        assert_int_equal(audit_query_page(dir, &q, NULL, &got, &p), 0);
        {
            int64_t t;
            assert_int_equal(audit_time_parse(json_string_value(json_object_get(
                json_array_get(got, 0), "time")), &t), 0);
            assert_true(t == q.since_us);
        }
        json_decref(got);
    }
    /* max_seq: nothing past what is durable, and that is the end */
    q = (struct audit_query){ .tenant = "131016", .max_seq = 100 };
    assert_int_equal(audit_query_page(dir, &q, NULL, &got, &p), 0);
    assert_true(p.complete);
    assert_true(seq_of(got, json_array_size(got) - 1) <= 100);
    assert_true(json_array_size(got) >= 48);
    json_decref(got);
    /* filters: outcome, actor, an action namespace */
    q = (struct audit_query){ .tenant = "131016", .actor = "clerk-3", .outcome = "refused",
                              .action = "resident.*" };
    expect_paging_equals_run(dir, (struct audit_query){ .tenant = "131016", .actor = "clerk-3",
                                                        .outcome = "refused", .limit = 5 },
                             NULL, 1);
    assert_int_equal(audit_query_run(dir, &q, &got), 0);
    assert_true(json_array_size(got) > 0);
    for (size_t i = 0; i < json_array_size(got); i++) {
        json_t *ev = json_object_get(json_array_get(got, i), "event");
        assert_string_equal(json_string_value(json_object_get(ev, "actor")), "clerk-3");
        assert_string_equal(json_string_value(json_object_get(ev, "outcome")), "refused");
        assert_string_equal(json_string_value(json_object_get(ev, "tenant")), "131016");
    }
    json_decref(got);
    q.action = "auth.*";
    assert_int_equal(audit_query_run(dir, &q, &got), 0);
    assert_int_equal(json_array_size(got), 0);
    json_decref(got);
}

/* R7.5: the time bound stops a query after it has moved on, says so, and
 * resuming from its cursor finishes with exactly the unbounded got; a
 * cancelled query stops too.  (A deadline already past: deterministic.) */
static void
test_page_time_bound_and_cancel(void **state)
{
    struct env *e = *state;
    char dir[PATH_MAX];
    struct audit_query q = { .tenant = "131016", .limit = 1000 };
    struct audit_bounds b = { 0, 1, NULL };               /* long past */
    atomic_bool cancel = true;
    struct audit_progress p;
    json_t *got;

    snprintf(dir, sizeof(dir), "%s/big", e->base);
    make_log(dir, 3000, 1735689600LL * 1000000);
    assert_int_equal(audit_query_page(dir, &q, &b, &got, &p), 0);
    assert_false(p.complete);
    assert_string_equal(p.stopped_by, "time");
    assert_true(p.last_seq > 0 && p.last_seq < 3000);
    assert_true(json_array_size(got) < 1000);
    json_decref(got);
    expect_paging_equals_run(dir, q, &b, 3000 / 64);
    /* bytes */
    b = (struct audit_bounds){ 4096, 0, NULL };
    assert_int_equal(audit_query_page(dir, &q, &b, &got, &p), 0);
    assert_string_equal(p.stopped_by, "bytes");
    assert_true(json_array_size(got) < 100);
    json_decref(got);
    /* cancel */
    b = (struct audit_bounds){ 0, 0, &cancel };
    assert_int_equal(audit_query_page(dir, &q, &b, &got, &p), 0);
    assert_false(p.complete);
    assert_true(json_array_size(got) <= 64);
    json_decref(got);
}

/* R7.5: a bounded review keeps exact counts but cuts its lists. */
static void
test_review_bounded_lists(void **state)
{
    struct env *e = *state;
    char dir[PATH_MAX];
    struct audit_query range = { .tenant = "131016" };
    struct audit_bounds b = { 0, 0, NULL };
    struct audit_progress p;
    json_t *rep;

    snprintf(dir, sizeof(dir), "%s/big", e->base);
    /* 7 actors; clerk-0 has every 7th entry: of 140000, 10000 of 131016
     * (i even), of which every 5th is refused */
    make_log(dir, 140000, 1735689600LL * 1000000);
    assert_int_equal(audit_review_page(dir, "clerk-0", &range, 0, 24, &b, &rep, &p), 0);
    assert_true(p.complete);
    assert_int_equal(json_integer_value(json_object_get(rep, "events")), 10000);
    assert_int_equal(json_integer_value(json_object_get(rep, "records_touched")), 10000);
    assert_int_equal(json_integer_value(json_object_get(rep, "refusals")), 2000);
    assert_false(json_is_true(json_object_get(rep, "truncated")));
    json_decref(rep);
    /* office hours 0-0: every access is off hours: 10000 listed, no more */
    assert_int_equal(audit_review_page(dir, "clerk-0", &range, 0, 0, &b, &rep, &p), 0);
    assert_int_equal(json_integer_value(json_object_get(rep, "off_hours")), 10000);
    assert_int_equal(json_array_size(json_object_get(rep, "off_hours_entries")),
                     AUDIT_REVIEW_MAX_ITEMS);
    json_decref(rep);
    range.tenant = NULL;            /* 20000 of clerk-0 in both tenants */
    assert_int_equal(audit_review_page(dir, "clerk-0", &range, 0, 0, &b, &rep, &p), 0);
    assert_int_equal(json_integer_value(json_object_get(rep, "off_hours")), 20000);
    assert_int_equal(json_array_size(json_object_get(rep, "off_hours_entries")),
                     AUDIT_REVIEW_MAX_ITEMS);
    assert_true(json_is_true(json_object_get(rep, "truncated")));
    json_decref(rep);
}

/* CSV of the review: libcsv quoting, formula-like cells neutralised. */
static void
test_review_csv_cells(void **state)
{
    json_t *rep = json_pack("{s:s,s:i,s:i,s:{s:i,s:i,s:i},s:i,s:[{s:i,s:s,s:s,s:[s],s:s}],"
                            "s:i,s:[],s:i,s:[]}",
                            "actor", "=cmd", "events", 3, "records_touched", 3,
                            "records", "+1", 1, "r-\"q\"", 1, "\tx", 2,
                            "off_hours", 1, "off_hours_entries", "seq", 9, "time",
                            "2025-01-01T00:00:00.000000Z", "action", "resident.read",
                            "objects", "@x", "reason", "-r",
                            "failures", 0, "failure_entries", "refusals", 0,
                            "refusal_entries");
    char *csv;
    size_t len;

    (void)state;
    assert_non_null(rep);
    assert_int_equal(audit_review_csv(rep, &csv, &len), 0);
    assert_int_equal(strlen(csv), len);
    assert_non_null(strstr(csv, "actor,events,records_touched,off_hours,failures,refusals\n"
                                "\"'=cmd\",3,3,1,0,0\n"));
    assert_non_null(strstr(csv, "\noff_hours,9,\"2025-01-01T00:00:00.000000Z\","
                                "\"resident.read\",\"[\"\"@x\"\"]\",\"'-r\",\n"));
    assert_non_null(strstr(csv, "\nrecord,accesses\n\"'+1\",1\n\"r-\"\"q\"\"\",1\n"
                                "\"'\tx\",2\n"));
    free(csv);
    json_decref(rep);
}

/* The edge validators of the HTTP API (R7.5). */
static void
test_api_validators(void **state)
{
    static const char *const good_times[] = { "2026-02-28", "2024-02-29", "2026-02-28T23:59:59Z",
                                              "2026-02-28T23:59:59.123456Z" };
    static const char *const bad_times[] = { "2026-02-30", "2025-02-29", "2026-13-01",
                                             "2026-02-28T24:00:00Z", "2026-02-28T23:59:60Z",
                                             "2026-02-28 10:00:00Z", "2026-02-28T10:00:00",
                                             "2026-02-28T10:00:00+09:00", "yesterday", "",
                                             "2026-02-28T10:00:00.1Z" };

    (void)state;
    for (size_t i = 0; i < sizeof(good_times) / sizeof(good_times[0]); i++)
        if (audit_check_time(good_times[i]) != NULL)
            fail_msg("%s refused", good_times[i]);
    for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++)
        if (audit_check_time(bad_times[i]) == NULL)
            fail_msg("%s accepted", bad_times[i]);
    assert_null(audit_check_limit("1"));
    assert_null(audit_check_limit("1000"));
    assert_non_null(audit_check_limit("0"));
    assert_non_null(audit_check_limit("1001"));
    assert_non_null(audit_check_limit("01x"));
    assert_true(audit_action_known("auth.login"));
    assert_true(audit_action_known("resident.*"));
    assert_true(audit_action_known("cli.*"));
    assert_false(audit_action_known("resident.bogus"));
    assert_false(audit_action_known("nosuch.*"));
    assert_false(audit_action_known("*"));
    assert_false(audit_action_known(".*"));
    assert_false(audit_action_known("resident."));
    assert_null(audit_filter_check(AUDIT_FILTER_ACTOR, "@sum.a1"));
    assert_non_null(audit_filter_check(AUDIT_FILTER_ACTOR, "Clerk"));
    assert_non_null(audit_filter_check(AUDIT_FILTER_OBJECT, "a b"));
    /* an individual number is personal data: never a filter (R7.1) */
    assert_non_null(audit_filter_check(AUDIT_FILTER_OBJECT, "123456789018"));
    assert_non_null(audit_filter_check(AUDIT_FILTER_TENANT, "13101"));
    assert_non_null(audit_filter_check(AUDIT_FILTER_OUTCOME, "ok"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_query_filters_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_csv_neutralises_formulas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_limit_and_cursor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_time_bound_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_bounded_lists, setup, teardown),
        cmocka_unit_test(test_review_csv_cells),
        cmocka_unit_test(test_api_validators),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
