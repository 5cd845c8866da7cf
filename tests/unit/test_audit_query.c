/*
 * test_audit_query.c - `mamori audit query` and `mamori audit review`
 * (R7.3, R7.5) run as the built binary against a log written with a
 * fixed clock: every filter returns exactly the matching entries, the
 * review counts records touched, off-hours accesses (the configured
 * hours, Japan time), failures and refusals, the JSON is valid, and CSV
 * cells a spreadsheet would run as a formula are neutralised.
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
              { "r-1" } },                                          /* JST 10:00 */
    /* 1 */ { "2025-01-06T02:00:00Z", "131016", "clerk-1", "resident.update", "success", NULL,
              { "r-1", "r-2" } },                                   /* JST 11:00 */
    /* 2 */ { "2025-01-06T13:00:00Z", "131016", "clerk-1", "resident.read", "success", NULL,
              { "r-3" } },                                          /* JST 22:00: off */
    /* 3 */ { "2025-01-06T23:30:00Z", "131016", "clerk-1", "resident.read", "success", NULL,
              { "r-1" } },                   /* JST 08:30: off for 9-17, not for 8-19 */
    /* 4 */ { "2025-01-07T00:30:00Z", "011002", "clerk-2", "resident.read", "success", NULL,
              { "r-1" } },                                          /* other tenant */
    /* 5 */ { "2025-01-07T03:00:00Z", "131016", "clerk-1", "auth.login", "failure",
              "bad_password", { NULL } },
    /* 6 */ { "2025-01-07T04:00:00Z", "131016", "clerk-1", "resident.read", "refused",
              "permission_denied", { "r-9" } },
    /* 7 */ { "2025-01-08T01:00:00Z", "131016", "@sum.a1", "resident.read", "success", NULL,
              { "-2-3" } },                  /* names a spreadsheet would evaluate */
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
    Q(e, "query --object r-1", 0, 1, 3, 4);
    Q(e, "query --object r-2", 1);
    /* [since, until): since is included, until is not. */
    Q(e, "query --actor clerk-1 --since 2025-01-07 --until 2025-01-08", 5, 6);
    Q(e, "query --tenant 131016 --since 2025-01-06T02:00:00Z --until 2025-01-06T23:30:00Z",
      1, 2);
    Q(e, "query --actor clerk-1 --action resident.read --object r-1", 0, 3);
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
    assert_non_null(strstr(l2, "\"[\"\"-2-3\"\"]\""));
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
    /* r-1 (3 times: read, update, read), r-2, r-3, r-9. */
    assert_int_equal(json_integer_value(json_object_get(r, "records_touched")), 4);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "records"), "r-1")),
                     3);
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_query_filters_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_csv_neutralises_formulas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_review_csv, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
