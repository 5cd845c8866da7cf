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
    };
    return cmocka_run_group_tests_name("mamori commands are audited (R7.7)", tests,
                                       setup, teardown);
}
