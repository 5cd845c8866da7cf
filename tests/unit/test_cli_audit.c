/*
 * test_cli_audit.c - every state-changing `mamori` command leaves an
 * audit record with its outcome, refusals included, and read-only
 * commands leave none (R7.7).  Runs the built binary.
 */
#include <ftw.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/event.h"
#include "audit/query.h"
#include "audit/writer.h"
#include "common/util.h"
#include "config/config.h"

static char dir[64];

static int
run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    int n, status;

    n = snprintf(cmd, sizeof(cmd), "%s/mamori ", MAMORI_TEST_BINARY_DIR);
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
    va_end(ap);
    strncat(cmd, " >/dev/null 2>&1", sizeof(cmd) - strlen(cmd) - 1);
    status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Count records of `action` with `outcome` (NULL: any), via the real
 * `mamori audit query`. */
static int
count(const char *action, const char *outcome)
{
    char cmd[1024], line[4096], want[96];
    FILE *p;
    int n = 0;

    snprintf(cmd, sizeof(cmd), "%s/mamori audit query -c %s/d/mamorid.conf --action %s",
             MAMORI_TEST_BINARY_DIR, dir, action);
    snprintf(want, sizeof(want), "\"outcome\":\"%s\"", outcome ? outcome : "");
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL)
        if (strstr(line, action) != NULL && (outcome == NULL || strstr(line, want) != NULL))
            n++;
    pclose(p);
    return n;
}

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/mamori-test-cliaudit-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    return run("init --internal-listen 127.0.0.1:0 --public-listen 127.0.0.1:0 %s/d", dir);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
teardown(void **state)
{
    (void)state;
    return nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void
test_terminal_changes_recorded(void **state)
{
    (void)state;
    assert_int_equal(run("terminal issue -d %s/d laptop-7", dir), 0);
    assert_int_equal(count("cli.terminal.issue", "success"), 1);
    assert_int_equal(run("terminal revoke -d %s/d laptop-7", dir), 0);
    assert_int_equal(count("cli.terminal.revoke", "success"), 1);
    /* A refused revocation is on the record too. */
    assert_int_not_equal(run("terminal revoke -d %s/d no-such-terminal", dir), 0);
    assert_int_equal(count("cli.terminal.revoke", "failure"), 1);
}

static void
test_key_and_tenant_changes_recorded(void **state)
{
    char cmd[512];
    FILE *p;
    char line[4096];
    bool tenant_named = false;

    (void)state;
    assert_int_equal(run("tenant create -c %s/d/mamorid.conf 131016", dir), 0);
    assert_int_equal(run("key rotate -c %s/d/mamorid.conf 131016", dir), 0);
    assert_int_equal(count("cli.tenant.create", "success"), 1);
    assert_int_equal(count("cli.key.rotate", "success"), 1);
    /* The record names the tenant acted on. */
    snprintf(cmd, sizeof(cmd), "%s/mamori audit query -c %s/d/mamorid.conf --tenant 131016",
             MAMORI_TEST_BINARY_DIR, dir);
    p = popen(cmd, "r");
    while (fgets(line, sizeof(line), p) != NULL)
        tenant_named |= strstr(line, "cli.key.rotate") != NULL;
    pclose(p);
    assert_true(tenant_named);
    /* Erase without the confirmation is refused, and recorded as such. */
    assert_int_not_equal(run("tenant erase -c %s/d/mamorid.conf --confirm 011002 131016", dir), 0);
    assert_int_equal(count("cli.tenant.erase", "refused"), 1);
}

/* R6.2, R1.4, R7.7: the record of an erase says how many terminal
 * certificates it revoked (a count: the record takes no fingerprint). */
static void
test_erase_records_revoked_terminals(void **state)
{
    char cmd[512], line[4096];
    FILE *p;
    bool seen = false;

    (void)state;
    assert_int_equal(run("tenant create -c %s/d/mamorid.conf 011002", dir), 0);
    assert_int_equal(run("terminal issue -d %s/d sapporo-1", dir), 0);
    assert_int_equal(run("staff terminal-register -c %s/d/mamorid.conf --tenant 011002 "
                         "--name sapporo-1 --cert %s/d/terminals/sapporo-1.crt", dir, dir), 0);
    assert_int_equal(run("tenant erase -c %s/d/mamorid.conf --confirm 011002 011002", dir), 0);
    snprintf(cmd, sizeof(cmd), "%s/mamori audit query -c %s/d/mamorid.conf "
             "--action cli.tenant.erase --tenant 011002", MAMORI_TEST_BINARY_DIR, dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL)
        if (strstr(line, "\"outcome\":\"success\"") != NULL) {
            assert_non_null(strstr(line, "\"terminals\":1"));
            assert_non_null(strstr(line, "\"terminals_revoked\":1"));
            seen = true;
        }
    pclose(p);
    assert_true(seen);
}

static void
test_read_only_commands_not_recorded(void **state)
{
    (void)state;
    assert_int_equal(run("tenant list -c %s/d/mamorid.conf", dir), 0);
    assert_int_equal(run("terminal list -d %s/d", dir), 0);
    assert_int_equal(run("migrate --check -c %s/d/mamorid.conf", dir), 0);
    assert_int_equal(count("cli.tenant.list", NULL), 0);
    assert_int_equal(count("cli.store.migrate", NULL), 0);
}

/* Files of the audit log a root-run command made belong to the audit
 * directory's owner (the service user), or the audit writer could not
 * open its own log at the next start. */
static void
test_records_owned_by_service_user(void **state)
{
    char path[256], f[600];
    struct stat ds, st;
    struct dirent *e;
    unsigned files = 0;
    DIR *d;

    (void)state;
    assert_int_equal(run("terminal issue -d %s/d desk-3", dir), 0);
    snprintf(path, sizeof(path), "%s/d/audit", dir);
    assert_int_equal(stat(path, &ds), 0);
    if (geteuid() != 0 || ds.st_uid == 0)
        skip();                      /* nothing to hand over */
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || e->d_name[1] == '.'))
            continue;
        snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
        assert_int_equal(lstat(f, &st), 0);
        assert_int_equal(st.st_uid, ds.st_uid);
        assert_int_equal(st.st_gid, ds.st_gid);
        files++;
    }
    closedir(d);
    assert_true(files >= 2);         /* at least a segment and its lock */
}

/* The audit directory belongs to the service user, who may put a
 * symbolic link in it: a root-run command hands the link itself over and
 * never what it points at (R7.7). */
static void
test_links_in_audit_dir_not_followed(void **state)
{
    char audit[256], target[256], link[300];
    struct stat ds, st;
    FILE *f;
    int issued;

    (void)state;
    snprintf(audit, sizeof(audit), "%s/d/audit", dir);
    assert_int_equal(stat(audit, &ds), 0);
    if (geteuid() != 0 || ds.st_uid == 0)
        skip();                      /* nothing to hand over */
    snprintf(target, sizeof(target), "%s/root-owned", dir);
    f = fopen(target, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(link, sizeof(link), "%s/decoy", audit);
    assert_int_equal(symlink(target, link), 0);
    issued = count("cli.terminal.issue", "success");
    assert_int_equal(run("terminal issue -d %s/d desk-9", dir), 0);
    assert_int_equal(count("cli.terminal.issue", "success"), issued + 1);
    assert_int_equal(stat(target, &st), 0);
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(lstat(link, &st), 0);
    assert_int_equal(st.st_uid, ds.st_uid);
    assert_int_equal(unlink(link), 0);
}

/* Append `ev` (taken) to the log `w`. */
static void
append(struct audit_writer *w, json_t *ev)
{
    char err[256];
    uint64_t seq;

    assert_non_null(ev);
    assert_int_equal(audit_writer_begin(w), 0);
    if (audit_writer_append(w, ev, &seq, err, sizeof(err)) != 0)
        fail_msg("append: %s", err);
    assert_int_equal(audit_writer_commit(w), 0);
    json_decref(ev);
}

static json_t *
clerk_event(const char *action, enum audit_outcome o)
{
    json_t *ev = audit_event_new(action, o);

    assert_non_null(ev);
    assert_int_equal(audit_event_set(ev, AUDIT_F_TENANT, "131016"), 0);
    assert_int_equal(audit_event_set(ev, AUDIT_F_ACTOR, "clerk-1"), 0);
    return ev;
}

/*
 * R7.5: `mamori audit review --format csv` prints what the report's own
 * CSV writer makes (audit_review_csv_tables without the per-record
 * table), byte for byte, so the CLI has the tables the HTTP API has:
 * here the bulk-read table, which the CLI's own copy of the layout
 * lacked (an export names no record, so only that table shows it).
 */
static void
test_R7_5_review_csv_one_writer(void **state)
{
    struct audit_writer_opts o = { .segment_max_bytes = 1u << 26, .archive_days = 366,
                                   .retention_days = 1827, .no_rotate = true };
    struct audit_query q = { .actor = "clerk-1" };
    static struct mamori_config cfg;
    struct audit_writer *w;
    char base[128], adir[160], conf[160], text[256], cmd[512], err[256];
    char *got = NULL, *want, *all;
    size_t gotlen = 0, wantlen, alllen;
    uint64_t cut;
    json_t *ev, *rep;
    FILE *p;
    int n;

    (void)state;
    snprintf(base, sizeof(base), "%s/review", dir);
    snprintf(adir, sizeof(adir), "%s/audit", base);
    snprintf(conf, sizeof(conf), "%s/mamorid.conf", base);
    n = snprintf(text, sizeof(text), "datadir = %s\n", base);
    assert_int_equal(mkdir(base, 0700), 0);
    assert_int_equal(mkdir(adir, 0700), 0);
    assert_int_equal(util_write_file_atomic(conf, text, (size_t)n, 0600), 0);
    o.dir = adir;
    if (audit_writer_open(&o, &w, &cut, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    ev = clerk_event("resident.export", AUDIT_SUCCESS);
    assert_int_equal(audit_event_info_int(ev, "rows", 250), 0);
    append(w, ev);
    ev = clerk_event("resident.read", AUDIT_SUCCESS);
    assert_int_equal(audit_event_add_object(ev, "resident:1"), 0);
    append(w, ev);
    ev = clerk_event("auth.login", AUDIT_FAILURE);
    assert_int_equal(audit_event_set(ev, AUDIT_F_REASON, "bad_password"), 0);
    append(w, ev);
    audit_writer_close(w);

    snprintf(cmd, sizeof(cmd), "%s/mamori audit review -c %s --actor clerk-1 --format csv",
             MAMORI_TEST_BINARY_DIR, conf);
    p = popen(cmd, "r");
    assert_non_null(p);
    {
        FILE *m = open_memstream(&got, &gotlen);
        int c;

        assert_non_null(m);
        while ((c = fgetc(p)) != EOF)
            fputc(c, m);
        fclose(m);
    }
    assert_int_equal(pclose(p), 0);

    assert_int_equal(config_load(conf, &cfg, err, sizeof(err)), 0);
    assert_int_equal(audit_review(adir, "clerk-1", &q, cfg.audit_office_start,
                                  cfg.audit_office_end, &rep), 0);
    assert_int_equal(audit_review_csv_tables(rep, 0, &want, &wantlen), 0);
    assert_int_equal(audit_review_csv(rep, &all, &alllen), 0);
    json_decref(rep);
    assert_string_equal(got, want);
    assert_non_null(strstr(got, "\nbulk_reads,bulk_records\n1,250\n"));
    assert_non_null(strstr(got, "\nfailure,"));
    assert_null(strstr(got, "record,accesses"));
    /* the API's CSV: the same plus the per-record table */
    assert_non_null(strstr(all, "\nrecord,accesses\n\"resident:1\",1\n"));
    free(got);
    free(want);
    free(all);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terminal_changes_recorded),
        cmocka_unit_test(test_key_and_tenant_changes_recorded),
        cmocka_unit_test(test_erase_records_revoked_terminals),
        cmocka_unit_test(test_read_only_commands_not_recorded),
        cmocka_unit_test(test_records_owned_by_service_user),
        cmocka_unit_test(test_links_in_audit_dir_not_followed),
        cmocka_unit_test(test_R7_5_review_csv_one_writer),
    };
    return cmocka_run_group_tests_name("mamori commands are audited (R7.7)", tests,
                                       setup, teardown);
}
