/*
 * test_audit_actions.c - the auditors' action catalogue (R7.5, R7.1).
 *
 * An auditor's filter must name a catalogued action (audit_action_known,
 * src/audit/query.c), so an action the code records but the catalogue
 * lacks cannot be reviewed.  These tests run the drift check
 * (scripts/check-audit-actions.sh, also run by scripts/lint.sh) on this
 * tree, show it failing on a catalogue, a source tree and a doc broken on
 * purpose, and check that filters on the records' actions (vaccinations,
 * transfers, imports, site devices) are accepted.
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

#include "audit/event.h"
#include "audit/query.h"

#define SRC     MAMORI_TEST_SOURCE_DIR
#define CHECK   SRC "/scripts/check-audit-actions.sh"
#define QUERY_C SRC "/src/audit/query.c"
#define AUDIT_MD SRC "/docs/audit.md"

struct tmp {
    char dir[64];
    char cat[PATH_MAX], doc[PATH_MAX];
};

static int
setup(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return -1;
    snprintf(t->dir, sizeof(t->dir), "/tmp/mamori-actions-XXXXXX");
    if (mkdtemp(t->dir) == NULL) {
        free(t);
        return -1;
    }
    snprintf(t->cat, sizeof(t->cat), "%s/query.c", t->dir);
    snprintf(t->doc, sizeof(t->doc), "%s/audit.md", t->dir);
    *state = t;
    return 0;
}

static int
teardown(void **state)
{
    struct tmp *t = *state;
    char path[PATH_MAX];

    unlink(t->cat);
    unlink(t->doc);
    snprintf(path, sizeof(path), "%s/src/x.c", t->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/src", t->dir);
    rmdir(path);
    if (rmdir(t->dir) != 0)
        fprintf(stderr, "could not remove %s\n", t->dir);
    free(t);
    return 0;
}

/* The check's exit status; its output (stdout and stderr) in out. */
static int
run_check(const char *args, char *out, size_t outsz)
{
    char cmd[3 * PATH_MAX];
    size_t n = 0, r;
    FILE *p;
    int st;

    snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", CHECK, args);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (n + 1 < outsz && (r = fread(out + n, 1, outsz - 1 - n, p)) > 0)
        n += r;
    out[n] = '\0';
    /* Read to the end, so the check never dies writing to a closed pipe. */
    do
        r = fread(cmd, 1, sizeof(cmd), p);
    while (r > 0);
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A copy of `from` with the first `find` replaced by `repl`. */
static void
copy_edited(const char *from, const char *to, const char *find, const char *repl)
{
    char *s = slurp(from), *at = strstr(s, find);
    FILE *f = fopen(to, "wb");

    assert_non_null(at);
    assert_non_null(f);
    fwrite(s, 1, (size_t)(at - s), f);
    fputs(repl, f);
    fputs(at + strlen(find), f);
    assert_int_equal(fclose(f), 0);
    free(s);
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* R7.5: this tree's catalogue, code and docs agree. */
static void
test_R7_5_catalogue_matches_code_and_docs(void **state)
{
    char out[16384];

    (void)state;
    assert_int_equal(run_check("", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "check-audit-actions: OK"));
}

/* R7.5: an action the code emits but the catalogue lacks fails the check,
 * named with where it is emitted. */
static void
test_R7_5_uncatalogued_action_fails(void **state)
{
    static const char *const names[] = { "vaccination.create", "transfer.inquire",
                                         "resident.import.result", "key.rewrap" };
    struct tmp *t = *state;
    char find[64], args[2 * PATH_MAX], out[16384], want[96];

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(find, sizeof(find), "    \"%s\",\n", names[i]);
        copy_edited(QUERY_C, t->cat, find, "");
        snprintf(args, sizeof(args), "--catalogue '%s'", t->cat);
        assert_int_equal(run_check(args, out, sizeof(out)), 1);
        snprintf(want, sizeof(want), "%s (src/", names[i]);
        assert_non_null(strstr(out, want));
        assert_non_null(strstr(out, "is not in the catalogue"));
    }
}

/* R7.5, R7.3: a catalogued action nothing emits fails, unless it is marked
 * retired (old entries stay filterable) in the catalogue and the docs. */
static void
test_R7_5_unemitted_action_fails_unless_retired(void **state)
{
    struct tmp *t = *state;
    char args[3 * PATH_MAX], out[16384];
    static const char site[] = "    \"resident.site_check\",\n";
    static const char row[] = "| `resident.site_check` |";

    snprintf(args, sizeof(args), "--catalogue '%s'", t->cat);
    copy_edited(QUERY_C, t->cat, site, "    \"resident.site_check\",\n    \"resident.update\",\n");
    assert_int_equal(run_check(args, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "resident.update is in the catalogue but nothing in src/ "
                                "emits it"));

    /* Retired in the catalogue only: the docs disagree. */
    copy_edited(QUERY_C, t->cat, site, "    \"resident.site_check\",\n"
                "    RETIRED(\"resident.update\", \"2026-11-23\"),\n");
    assert_int_equal(run_check(args, out, sizeof(out)), 1);
    assert_null(strstr(out, "nothing in src/ emits it"));
    assert_non_null(strstr(out, "resident.update: in the catalogue, missing from the docs table"));

    /* Retired in both: accepted, and the compiled rule is the same. */
    copy_edited(AUDIT_MD, t->doc, row, "| `resident.update` | retired 2026-11-23: a test |\n"
                "| `resident.site_check` |");
    snprintf(args, sizeof(args), "--catalogue '%s' --docs '%s'", t->cat, t->doc);
    assert_int_equal(run_check(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "1 retired"));

    /* A retired action emitted again fails. */
    copy_edited(QUERY_C, t->cat, "    \"resident.read\",\n",
                "    RETIRED(\"resident.read\", \"2026-11-23\"),\n");
    copy_edited(AUDIT_MD, t->doc, "| `resident.read` |", "| `resident.read` | retired 2026-11-23:");
    assert_int_equal(run_check(args, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "resident.read (src/"));
    assert_non_null(strstr(out, "is emitted but marked RETIRED"));
}

/* The catalogue's shape and the docs' table are checked too. */
static void
test_R7_5_unsorted_catalogue_and_missing_doc_row_fail(void **state)
{
    struct tmp *t = *state;
    char args[2 * PATH_MAX], out[16384];

    copy_edited(QUERY_C, t->cat, "    \"audit.query\",\n    \"audit.review\",\n",
                "    \"audit.review\",\n    \"audit.query\",\n");
    snprintf(args, sizeof(args), "--catalogue '%s'", t->cat);
    assert_int_equal(run_check(args, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "audit.query: the catalogue is not sorted"));

    copy_edited(AUDIT_MD, t->doc, "| `vaccination.create` |", "| vaccination.create |");
    snprintf(args, sizeof(args), "--docs '%s'", t->doc);
    assert_int_equal(run_check(args, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "vaccination.create: in the catalogue, missing from the docs "
                                "table"));
}

/* What counts as emitted: any action-shaped literal in code, in any
 * namespace, but not in a comment; an action built from a format must be
 * declared. */
static void
test_R7_5_scanner_sees_new_namespaces_and_formats(void **state)
{
    struct tmp *t = *state;
    char path[PATH_MAX], args[4 * PATH_MAX], out[32768];

    snprintf(path, sizeof(path), "%s/src", t->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/src/x.c", t->dir);
    write_file(path, "/* \"comment.only\" is not emitted */\n"
               "static const char *a = \"consent.record\";\n"
               "static const char *f = \"resident.%s\";\n"
               "static const char *g = \"residents.csv\";\n");
    snprintf(args, sizeof(args), "--root '%s' --catalogue '%s' --docs '%s'", t->dir,
             QUERY_C, AUDIT_MD);
    assert_int_equal(run_check(args, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "consent.record (src/x.c:2) is not in the catalogue"));
    assert_non_null(strstr(out, "src/x.c:3: builds an action at run time"));
    assert_null(strstr(out, "comment.only"));
    assert_null(strstr(out, "residents.csv"));
}

/* R7.5: every catalogued action, as the check reads the catalogue, is
 * accepted by the filter and by the event schema, and so is its
 * namespace. */
static void
test_R7_5_every_catalogued_action_is_filterable(void **state)
{
    char out[16384], *line, *save = NULL;
    size_t n = 0;

    (void)state;
    assert_int_equal(run_check("--list", out, sizeof(out)), 0);
    for (line = strtok_r(out, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        char ns[72];
        const char *dot = strchr(line, '.');
        json_t *ev;

        assert_null(strchr(line, ' '));                     /* none retired yet */
        assert_null(audit_filter_check(AUDIT_FILTER_ACTION, line));
        ev = audit_event_new(line, AUDIT_SUCCESS);
        assert_non_null(ev);
        json_decref(ev);
        assert_non_null(dot);
        snprintf(ns, sizeof(ns), "%.*s.*", (int)(dot - line), line);
        assert_true(audit_action_known(ns));
        n++;
    }
    assert_true(n >= 70);
}

/* R7.5: an auditor can filter on what clerks, site devices, transfers and
 * imports do; names that are not actions stay refused. */
static void
test_R7_5_filters_on_record_actions_accepted(void **state)
{
    static const char *const ok[] = {
        "vaccination.create", "vaccination.correct", "vaccination.site_create",
        "transfer.inquire", "transfer.provide", "transfer.consent", "transfer.bulk",
        "resident.import", "resident.import.commit", "resident.import.result",
        "resident.create", "resident.correct", "resident.export", "cli.import",
        "site_device.create", "site.auth", "voucher.issue",
        "vaccination.*", "transfer.*", "site_device.*", "voucher.*", "resident.import.*",
    };
    static const char *const refused[] = {
        "resident.update", "resident.insert", "resident.delete",   /* never emitted */
        "vaccination.insert", "vaccination.history",   /* an idempotency op, an affair */
        "site.*x", "transfer", "transfer.", "consent.*",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (audit_filter_check(AUDIT_FILTER_ACTION, ok[i]) != NULL)
            fail_msg("the filter action=%s is refused", ok[i]);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (audit_filter_check(AUDIT_FILTER_ACTION, refused[i]) == NULL)
            fail_msg("the filter action=%s is accepted", refused[i]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R7_5_catalogue_matches_code_and_docs),
        cmocka_unit_test_setup_teardown(test_R7_5_uncatalogued_action_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R7_5_unemitted_action_fails_unless_retired, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_R7_5_unsorted_catalogue_and_missing_doc_row_fail,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_R7_5_scanner_sees_new_namespaces_and_formats,
                                        setup, teardown),
        cmocka_unit_test(test_R7_5_every_catalogued_action_is_filterable),
        cmocka_unit_test(test_R7_5_filters_on_record_actions_accepted),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
