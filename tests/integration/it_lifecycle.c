/*
 * it_lifecycle.c - the daemon's life: configuration check, detaching,
 * SIGTERM draining an in-flight request, SIGHUP with a bad list, the
 * sandboxed processes, and failing closed when a process dies.
 */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int
global_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    gnutls_global_init();
    return 0;
}

static int
global_teardown(void **state)
{
    (void)state;
    gnutls_global_deinit();
    curl_global_cleanup();
    return 0;
}

/* Children of `parent` (from /proc). */
static size_t
children_of(pid_t parent, pid_t *out, size_t max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    size_t n = 0;

    while (d != NULL && (e = readdir(d)) != NULL && n < max) {
        char path[300], buf[512];
        FILE *f;
        long pid = strtol(e->d_name, NULL, 10), ppid = 0;
        if (pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(buf, sizeof(buf), f) != NULL) {
            const char *close = strrchr(buf, ')');
            if (close != NULL && sscanf(close + 2, "%*c %ld", &ppid) == 1 && ppid == parent)
                out[n++] = (pid_t)pid;
        }
        fclose(f);
    }
    if (d != NULL)
        closedir(d);
    return n;
}

static long
status_field(pid_t pid, const char *name)
{
    char path[64], line[256];
    FILE *f;
    long v = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ':')
            v = strtol(line + strlen(name) + 1, NULL, 10);
    if (f != NULL)
        fclose(f);
    return v;
}

/* Every child process runs under seccomp (mode 2) with no_new_privs,
 * and, when started as root, no process keeps uid 0. */
static void
test_processes_are_sandboxed(void **state)
{
    struct instance in;
    pid_t kids[32];
    size_t n;

    (void)state;
    assert_int_equal(h_start(&in, NULL), 0);
    n = children_of(in.pid, kids, 32);
    assert_int_equal(n, 3);            /* keyholder, audit, one worker */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(status_field(kids[i], "Seccomp"), 2);
        assert_int_equal(status_field(kids[i], "NoNewPrivs"), 1);
        if (geteuid() == 0)
            assert_int_not_equal(status_field(kids[i], "Uid"), 0);
    }
    assert_int_equal(status_field(in.pid, "Seccomp"), 2);
    if (geteuid() == 0)
        assert_int_not_equal(status_field(in.pid, "Uid"), 0);
    assert_int_equal(h_stop(&in), 0);
    h_cleanup(&in);
}

/* SIGTERM while a request is half uploaded: the daemon stops accepting,
 * lets the request finish with its full response, then exits 0. */
static void
test_sigterm_finishes_in_flight_request(void **state)
{
    static const char body[] = "{\"codes\":[\"131016\",\"011002\"]}";
    struct instance in;
    gnutls_session_t s;
    gnutls_certificate_credentials_t cred;
    char ca[400], req[512], resp[4096];
    size_t half = sizeof(body) / 2, got = 0;
    int fd, status;
    ssize_t r;

    (void)state;
    assert_int_equal(h_start(&in, NULL), 0);
    snprintf(ca, sizeof(ca), "%s/pki/ca.crt", in.dir);
    assert_int_equal(h_tls_connect(in.public_port, "NORMAL", ca, NULL, NULL, &s, &cred, &fd), 0);
    snprintf(req, sizeof(req),
             "POST /v1/municipalities/lookup HTTP/1.1\r\nHost: localhost\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%.*s",
             strlen(body), (int)half, body);
    assert_true(gnutls_record_send(s, req, strlen(req)) > 0);
    sleep_ms(300);                    /* the server has the headers: in flight */
    kill(in.pid, SIGTERM);
    sleep_ms(500);                    /* shutdown has begun */
    assert_int_equal(waitpid(in.pid, &status, WNOHANG), 0);  /* still draining */
    assert_true(gnutls_record_send(s, body + half, strlen(body) - half) > 0);
    while (got < sizeof(resp) - 1 &&
           (r = gnutls_record_recv(s, resp + got, sizeof(resp) - 1 - got)) > 0)
        got += (size_t)r;
    resp[got] = '\0';
    assert_non_null(strstr(resp, "HTTP/1.1 200"));
    assert_non_null(strstr(resp, "千代田区"));
    assert_non_null(strcasestr(resp, "connection: close"));
    h_tls_close(s, cred, fd);
    assert_int_equal(h_stop(&in), 0);  /* exits cleanly, status 0 */
    h_cleanup(&in);
}

/* A malformed revocation list on SIGHUP is refused: the previous list
 * stays in force and the daemon keeps serving. */
static void
test_sighup_with_bad_list_keeps_previous(void **state)
{
    struct instance in;
    char path[400];
    CURL *c;
    struct h_response r;
    long gen;

    (void)state;
    assert_int_equal(h_start(&in, NULL), 0);
    gen = h_state(&in, "revocation_generation");
    snprintf(path, sizeof(path), "%s/revocation/terminals.txt", in.dir);
    assert_int_equal(h_write(path, "not-a-fingerprint\n"), 0);
    kill(in.pid, SIGHUP);
    sleep_ms(500);
    assert_int_equal(h_state(&in, "revocation_generation"), gen);
    c = h_curl(&in, "terminals/demo.crt", "terminals/demo.key");
    h_request(&in, c, true, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    h_response_free(&r);
    curl_easy_cleanup(c);
    assert_non_null(in.pid);
    assert_int_equal(h_stop(&in), 0);
    h_cleanup(&in);
}

/* If a child process dies, the parent stops everything and exits
 * non-zero rather than run without it (fail closed). */
static void
test_child_death_stops_all(void **state)
{
    struct instance in;
    pid_t kids[32];
    size_t n;
    int status = 0;

    (void)state;
    assert_int_equal(h_start(&in, NULL), 0);
    n = children_of(in.pid, kids, 32);
    assert_true(n >= 3);
    kill(kids[0], SIGKILL);
    for (int i = 0; i < 1000 && waitpid(in.pid, &status, WNOHANG) == 0; i++)
        sleep_ms(10);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 0);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(kill(kids[i], 0), -1);   /* none left behind */
    in.pid = 0;
    h_cleanup(&in);
}

/* mamorid -n accepts the generated configuration and refuses a broken
 * one, naming the line and key. */
static void
test_config_check(void **state)
{
    struct instance in;
    char out[1024], conf[400], bad[400], cmd[2400];
    char *argv_ok[] = { (char *)h_bin("mamorid"), "-n", "-c", conf, NULL };
    FILE *p;
    size_t got;

    (void)state;
    assert_int_equal(h_start(&in, NULL), 0);
    assert_int_equal(h_stop(&in), 0);
    snprintf(conf, sizeof(conf), "%s", in.conf);
    assert_int_equal(h_run(argv_ok, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "valid"));
    snprintf(bad, sizeof(bad), "%s/bad.conf", in.dir);
    snprintf(cmd, sizeof(cmd), "cp %s %s && echo 'workres = 2' >> %s && %s -n -c %s 2>&1",
             conf, bad, bad, h_bin("mamorid"), bad);
    p = popen(cmd, "r");
    got = fread(out, 1, sizeof(out) - 1, p);
    out[got] = '\0';
    assert_int_not_equal(pclose(p), 0);
    assert_non_null(strstr(out, "workres"));
    assert_non_null(strstr(out, "unknown key"));
    assert_non_null(strstr(out, "line"));
    h_cleanup(&in);
}

/* Without -f the daemon detaches: the command returns 0 once it is
 * ready, and the pidfile names the running daemon. */
static void
test_detached_mode(void **state)
{
    struct instance in;
    char pidpath[400], *argv_d[] = { (char *)h_bin("mamorid"), "-c", in.conf, NULL };
    FILE *f;
    long pid = 0;

    (void)state;
    assert_int_equal(h_start(&in, NULL), 0);
    assert_int_equal(h_stop(&in), 0);
    argv_d[2] = in.conf;
    setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1", 1);  /* see harness.c */
    assert_int_equal(h_run(argv_d, NULL, 0), 0);
    snprintf(pidpath, sizeof(pidpath), "%s/run/mamorid.pid", in.dir);
    f = fopen(pidpath, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    assert_true(pid > 1);
    assert_int_equal(kill((pid_t)pid, 0), 0);
    assert_true(h_state(&in, "public_port") > 0);
    kill((pid_t)pid, SIGTERM);
    for (int i = 0; i < 1000 && kill((pid_t)pid, 0) == 0; i++)
        sleep_ms(10);
    assert_int_equal(kill((pid_t)pid, 0), -1);
    assert_int_equal(access(pidpath, F_OK), -1);   /* removed on exit */
    h_cleanup(&in);
}

/* R6.2: `mamori terminal revoke` finds the running daemon through the pid
 * file its configuration names, not a fixed path, so the revocation
 * applies at once there too. */
static void
test_revoke_follows_configured_pidfile(void **state)
{
    struct instance in;
    char *argv_issue[] = { (char *)h_bin("mamori"), "terminal", "issue", "-d", in.dir,
                           "moved-pid", NULL };
    char *argv_revoke[] = { (char *)h_bin("mamori"), "terminal", "revoke", "-d", in.dir,
                            "moved-pid", NULL };
    long gen;

    (void)state;
    assert_int_equal(h_init(&in), 0);
    assert_int_equal(h_set_conf(&in, "pidfile", "run/elsewhere.pid"), 0);
    assert_int_equal(h_launch(&in), 0);
    argv_issue[4] = in.dir;
    argv_revoke[4] = in.dir;
    assert_int_equal(h_run(argv_issue, NULL, 0), 0);
    gen = h_state(&in, "revocation_generation");
    assert_int_equal(h_run(argv_revoke, NULL, 0), 0);
    assert_true(h_wait_state_above(&in, "revocation_generation", gen));
    assert_int_equal(h_state(&in, "revoked_terminals"), 1);
    assert_int_equal(h_stop(&in), 0);
    h_cleanup(&in);
}

/* `mamori audit verify` on a log the daemon signed at shutdown: "N
 * entries ...; M checked in full".  *entries, *full from its summary. */
static int
verify_summary(const struct instance *in, const char *extra, unsigned long long *entries,
               unsigned long long *full)
{
    char cmd[1024], line[1024];
    int ok = 0;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "%s audit verify -c %s %s", h_bin("mamori"), in->conf, extra);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL)
        if (sscanf(line, "OK: %*u segments, %llu entries", entries) == 1) {
            const char *f = strstr(line, "signed through seq ");
            ok = f != NULL && sscanf(f, "signed through seq %*u; %llu checked in full", full) == 1;
        }
    return WEXITSTATUS(pclose(p)) == 0 && ok ? 0 : -1;
}

/* R7.2: entries under a signed checkpoint are verified by their chain;
 * --deep parses and schema-checks every one of them too. */
static void
test_audit_verify_deep(void **state)
{
    struct instance in;
    struct h_response r;
    unsigned long long n1 = 0, f1 = 0, n2 = 0, f2 = 0;
    CURL *c;

    (void)state;
    assert_int_equal(h_init(&in), 0);
    assert_int_equal(h_launch(&in), 0);
    c = h_curl(&in, "terminals/demo.crt", "terminals/demo.key");
    for (int i = 0; i < 3; i++) {      /* staff events: auth.login failures */
        h_request(&in, c, true, "POST", "/v1/auth/login",
                  "{\"user\":\"nobody\",\"password\":\"x\",\"code\":\"000000\"}", &r);
        assert_int_equal(r.status, 401);
        h_response_free(&r);
    }
    curl_easy_cleanup(c);
    assert_int_equal(h_stop(&in), 0);     /* signs a checkpoint over everything */
    assert_int_equal(verify_summary(&in, "", &n1, &f1), 0);
    assert_int_equal(verify_summary(&in, "--deep", &n2, &f2), 0);
    assert_true(n1 > 3 && n1 == n2);
    assert_true(f1 < n1);                 /* the signed auth.* entries: chain only */
    assert_true(f2 == n2);                /* --deep: every entry in full */
    assert_int_not_equal(verify_summary(&in, "--deeper", &n2, &f2), 0);
    h_cleanup(&in);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_processes_are_sandboxed),
        cmocka_unit_test(test_sigterm_finishes_in_flight_request),
        cmocka_unit_test(test_sighup_with_bad_list_keeps_previous),
        cmocka_unit_test(test_child_death_stops_all),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_detached_mode),
        cmocka_unit_test(test_revoke_follows_configured_pidfile),
        cmocka_unit_test(test_audit_verify_deep),
    };
    return cmocka_run_group_tests_name("integration/lifecycle", tests, global_setup,
                                       global_teardown);
}
