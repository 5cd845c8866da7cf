/*
 * test_config.c - mamorid.conf(5) parsing (src/config/config.c).
 *
 * The configuration is an allowlist too: an unknown or repeated key, a
 * value out of range or a listener that is not a numeric address must be
 * refused with an error naming the line and the key, so that a typo never
 * silently weakens a setting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

struct fixture {
    char dir[64];
    char path[128];
    char err[1024];
    struct mamori_config cfg;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/mamori-test-config-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/mamorid.conf", f->dir);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void
write_conf_len(struct fixture *f, const char *text, size_t len)
{
    int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

static void
write_conf(struct fixture *f, const char *text)
{
    write_conf_len(f, text, strlen(text));
}

static void
load_ok(struct fixture *f, const char *text)
{
    write_conf(f, text);
    f->err[0] = '\0';
    if (config_load(f->path, &f->cfg, f->err, sizeof(f->err)) != 0)
        fail_msg("valid configuration refused: %s\n---\n%s", f->err, text);
}

/* The file must be refused; the message must carry every `needles` string
 * (the file name is always required). */
static void
load_refused(struct fixture *f, const char *text, const char *const *needles)
{
    write_conf(f, text);
    f->err[0] = '\0';
    if (config_load(f->path, &f->cfg, f->err, sizeof(f->err)) == 0)
        fail_msg("invalid configuration accepted:\n%s", text);
    if (strstr(f->err, f->path) == NULL)
        fail_msg("error does not name the file: \"%s\"", f->err);
    for (; needles != NULL && *needles != NULL; needles++)
        if (strstr(f->err, *needles) == NULL)
            fail_msg("error \"%s\" does not mention \"%s\"\n---\n%s", f->err, *needles, text);
}

#define REFUSED(f, text, ...)                                                   \
    do {                                                                        \
        static const char *const needles_[] = { __VA_ARGS__, NULL };            \
        load_refused((f), (text), needles_);                                    \
    } while (0)

#define DATADIR_LINE "datadir = /var/lib/mamori\n"

/* ---- defaults ----------------------------------------------------------- */

/* The defaults as man/mamorid.conf.5 documents them. */
static void
test_defaults_match_manual(void **state)
{
    struct mamori_config cfg;

    (void)state;
    memset(&cfg, 0xa5, sizeof(cfg));
    config_defaults(&cfg);
    /* No datadir until the file sets one (refused below if absent). */
    assert_string_equal(cfg.datadir, "");
    assert_string_equal(cfg.user, "mamori");
    assert_int_equal(cfg.workers, 1);
    assert_int_equal(cfg.threads, 2);
    assert_int_equal(cfg.connection_timeout, 30);
    assert_int_equal(cfg.drain_timeout, 10);
    assert_int_equal(cfg.max_connections, 1024);
    assert_int_equal(cfg.log_target, LOG_TO_STDERR);
    assert_int_equal(cfg.log_level, LOG_LVL_INFO);
    assert_string_equal(cfg.pidfile, "run/mamorid.pid");
    assert_string_equal(cfg.portsfile, "run/ports.json");
    /* Both listeners on loopback only. */
    assert_string_equal(cfg.internal.host, "127.0.0.1");
    assert_int_equal(cfg.internal.port, 8443);
    assert_string_equal(cfg.public_.host, "127.0.0.1");
    assert_int_equal(cfg.public_.port, 8444);
    assert_string_equal(cfg.internal.cert, "pki/server.crt");
    assert_string_equal(cfg.internal.key, "pki/server.key");
    assert_string_equal(cfg.public_.cert, "pki/server.crt");
    assert_string_equal(cfg.public_.key, "pki/server.key");
    assert_string_equal(cfg.client_ca, "pki/terminal-ca.crt");
    assert_string_equal(cfg.revocation_list, "revocation/terminals.txt");
    assert_string_equal(cfg.master_key, "keys/master.key");
    assert_string_equal(cfg.keys_dir, "keys");
    assert_string_equal(cfg.audit_dir, "audit");
    assert_int_equal(cfg.store_backend, STORE_BACKEND_SQLITE);
    assert_string_equal(cfg.store_path, "db/mamori.sqlite");
    assert_string_equal(cfg.store_conninfo, "");
    assert_true(cfg.refdata[0] == '/');
    /* R8.1: the documented default priorities on both listeners ... */
    static const char documented[] =
        "SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
        ":-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM"
        ":-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA"
        ":-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1"
        ":%SAFE_RENEGOTIATION";
    assert_string_equal(CONFIG_DEFAULT_PRIORITIES, documented);
    assert_string_equal(cfg.internal.priorities, documented);
    assert_string_equal(cfg.public_.priorities, documented);
    /* ... which start from nothing and allow exactly TLS 1.3 and 1.2 and
     * AEAD ciphers only. */
    assert_non_null(strstr(cfg.internal.priorities, "-VERS-ALL"));
    assert_null(strstr(cfg.internal.priorities, "+VERS-TLS1.1"));
    assert_null(strstr(cfg.internal.priorities, "+VERS-TLS1.0"));
    assert_null(strstr(cfg.internal.priorities, "CBC"));
    assert_null(strstr(cfg.internal.priorities, "NORMAL"));
}

/* A minimal file: datadir only; relative defaults land inside it. */
static void
test_minimal_file_resolves_defaults(void **state)
{
    struct fixture *f = *state;

    load_ok(f, DATADIR_LINE);
    assert_string_equal(f->cfg.datadir, "/var/lib/mamori");
    assert_string_equal(f->cfg.path, f->path);
    /* Every relative default now lives under datadir. */
    const char *paths[] = { f->cfg.pidfile, f->cfg.portsfile, f->cfg.internal.cert,
                            f->cfg.internal.key, f->cfg.client_ca,
                            f->cfg.revocation_list, f->cfg.public_.cert,
                            f->cfg.public_.key, f->cfg.master_key, f->cfg.keys_dir,
                            f->cfg.audit_dir, f->cfg.store_path };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (strncmp(paths[i], "/var/lib/mamori/", 16) != 0)
            fail_msg("path %zu not resolved against datadir: %s", i, paths[i]);
}

/* ---- a full file: every key -------------------------------------------- */

static const char full_conf[] =
    "# mamorid.conf written for the test: every key once\n"
    "\n"
    "datadir = /srv/mamori\n"
    "user = mamori-svc\n"
    "workers = 3\n"
    "threads\t=\t5\n"
    "connection_timeout = 45   # seconds\n"
    "drain_timeout = 7\r\n"
    "max_connections = 2048\n"
    "log.target = syslog\n"
    "log.level = debug\n"
    "pidfile = run/test.pid\n"
    "portsfile = /run/mamori/ports.json\n"
    "refdata = ref\n"
    "   internal.listen = 10.1.2.3:9443\n"
    "internal.cert = tls/int.crt\n"
    "internal.key = tls/int.key\n"
    "internal.priorities = SECURE256:-VERS-ALL:+VERS-TLS1.3\n"
    "internal.client_ca = tls/ca.crt\n"
    "internal.revocation_list = tls/revoked.txt\n"
    "public.listen = [::1]:9444\n"
    "public.cert = /etc/mamori/pub.crt\n"
    "public.key = tls/pub.key\n"
    "public.priorities = SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2\n"
    "keys.master = secret/master.key\n"
    "keys.dir = secret\n"
    "audit.dir = /var/log/mamori-audit\n"
    "store.backend = postgresql\n"
    "store.path = db/x.sqlite\n"
    "store.conninfo = host=/run/postgresql dbname=mamori\n";

static void
test_full_file_every_key(void **state)
{
    struct fixture *f = *state;
    const struct mamori_config *c = &f->cfg;

    load_ok(f, full_conf);
    assert_string_equal(c->datadir, "/srv/mamori");
    assert_string_equal(c->user, "mamori-svc");
    assert_int_equal(c->workers, 3);
    assert_int_equal(c->threads, 5);
    assert_int_equal(c->connection_timeout, 45);
    assert_int_equal(c->drain_timeout, 7);
    assert_int_equal(c->max_connections, 2048);
    assert_int_equal(c->log_target, LOG_TO_SYSLOG);
    assert_int_equal(c->log_level, LOG_LVL_DEBUG);
    assert_string_equal(c->pidfile, "/srv/mamori/run/test.pid");
    assert_string_equal(c->portsfile, "/run/mamori/ports.json");
    assert_string_equal(c->refdata, "/srv/mamori/ref");
    assert_string_equal(c->internal.host, "10.1.2.3");
    assert_int_equal(c->internal.port, 9443);
    assert_string_equal(c->internal.cert, "/srv/mamori/tls/int.crt");
    assert_string_equal(c->internal.key, "/srv/mamori/tls/int.key");
    assert_string_equal(c->internal.priorities, "SECURE256:-VERS-ALL:+VERS-TLS1.3");
    assert_string_equal(c->client_ca, "/srv/mamori/tls/ca.crt");
    assert_string_equal(c->revocation_list, "/srv/mamori/tls/revoked.txt");
    assert_string_equal(c->public_.host, "::1");
    assert_int_equal(c->public_.port, 9444);
    assert_string_equal(c->public_.cert, "/etc/mamori/pub.crt");
    assert_string_equal(c->public_.key, "/srv/mamori/tls/pub.key");
    assert_string_equal(c->public_.priorities,
                        "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2");
    assert_string_equal(c->master_key, "/srv/mamori/secret/master.key");
    assert_string_equal(c->keys_dir, "/srv/mamori/secret");
    assert_string_equal(c->audit_dir, "/var/log/mamori-audit");
    assert_int_equal(c->store_backend, STORE_BACKEND_POSTGRESQL);
    assert_string_equal(c->store_path, "/srv/mamori/db/x.sqlite");
    assert_string_equal(c->store_conninfo, "host=/run/postgresql dbname=mamori");
}

/* ---- refusals, each naming line and key -------------------------------- */

static void
test_unknown_key_refused(void **state)
{
    struct fixture *f = *state;

    /* A typo must not be ignored: it would leave the default in force. */
    REFUSED(f, DATADIR_LINE "# comment\n\nwokers = 4\n", "line 4", "wokers", "unknown key");
    REFUSED(f, DATADIR_LINE "internal.revocation = x\n", "line 2", "internal.revocation");
    /* Keys are case-sensitive. */
    REFUSED(f, "Datadir = /x\n", "line 1", "Datadir");
    REFUSED(f, DATADIR_LINE "= 4\n", "line 2");
    REFUSED(f, DATADIR_LINE "workers 4\n", "line 2", "key = value");
}

static void
test_duplicate_key_refused(void **state)
{
    struct fixture *f = *state;

    REFUSED(f, DATADIR_LINE "workers = 2\n\n# again\nworkers = 2\n", "line 5", "workers",
            "twice");
    /* datadir itself too: the second one must not win silently. */
    REFUSED(f, DATADIR_LINE "datadir = /tmp/evil\n", "line 2", "datadir");
}

static void
test_bad_number_refused(void **state)
{
    struct fixture *f = *state;

    REFUSED(f, DATADIR_LINE "workers = two\n", "line 2", "workers");
    REFUSED(f, DATADIR_LINE "threads = 4x\n", "line 2", "threads");
    REFUSED(f, DATADIR_LINE "threads = -1\n", "line 2", "threads");
    REFUSED(f, DATADIR_LINE "threads = 0x10\n", "line 2", "threads");
    REFUSED(f, DATADIR_LINE "threads = 1 2\n", "line 2", "threads");
    REFUSED(f, DATADIR_LINE "threads =\n", "line 2", "threads");
    REFUSED(f, DATADIR_LINE "max_connections = 18446744073709551617\n", "line 2",
            "max_connections");
}

/* The ranges of man/mamorid.conf.5: both ends accepted, one beyond refused. */
static void
test_number_ranges_from_manual(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *key;
        unsigned long min, max;
        size_t off;
    } ranges[] = {
        { "workers", 1, 16, offsetof(struct mamori_config, workers) },
        { "threads", 1, 64, offsetof(struct mamori_config, threads) },
        { "connection_timeout", 1, 3600, offsetof(struct mamori_config, connection_timeout) },
        { "drain_timeout", 1, 600, offsetof(struct mamori_config, drain_timeout) },
        { "max_connections", 1, 100000, offsetof(struct mamori_config, max_connections) },
    };
    char text[256];

    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        unsigned long ok[2] = { ranges[i].min, ranges[i].max };
        unsigned long bad[2] = { ranges[i].min - 1, ranges[i].max + 1 };
        for (int j = 0; j < 2; j++) {
            snprintf(text, sizeof(text), DATADIR_LINE "%s = %lu\n", ranges[i].key, ok[j]);
            load_ok(f, text);
            unsigned got;
            memcpy(&got, (const char *)&f->cfg + ranges[i].off, sizeof(got));
            assert_int_equal(got, ok[j]);
            snprintf(text, sizeof(text), DATADIR_LINE "\n%s = %lu\n", ranges[i].key, bad[j]);
            {
                const char *needles[] = { "line 3", ranges[i].key, NULL };
                load_refused(f, text, needles);
            }
        }
        /* A value that would wrap an unsigned int is refused too. */
        snprintf(text, sizeof(text), DATADIR_LINE "%s = 4294967297\n", ranges[i].key);
        {
            const char *needles[] = { "line 2", ranges[i].key, NULL };
            load_refused(f, text, needles);
        }
    }
}

static void
test_enum_values_refused(void **state)
{
    struct fixture *f = *state;

    REFUSED(f, DATADIR_LINE "log.level = verbose\n", "line 2", "log.level");
    REFUSED(f, DATADIR_LINE "log.target = file\n", "line 2", "log.target");
    REFUSED(f, DATADIR_LINE "store.backend = mysql\n", "line 2", "store.backend");
    REFUSED(f, DATADIR_LINE "store.backend = SQLite\n", "line 2", "store.backend");
}

static void
test_listen_addresses(void **state)
{
    struct fixture *f = *state;
    struct listener_config l;

    (void)f;
    /* Accepted: numeric IPv4, bracketed IPv6, port 0 (ephemeral) and 65535. */
    memset(&l, 0, sizeof(l));
    assert_int_equal(config_parse_listen("192.0.2.10:443", &l), 0);
    assert_string_equal(l.host, "192.0.2.10");
    assert_int_equal(l.port, 443);
    assert_int_equal(config_parse_listen("[::1]:8443", &l), 0);
    assert_string_equal(l.host, "::1");
    assert_int_equal(l.port, 8443);
    assert_int_equal(config_parse_listen("[2001:db8::5]:65535", &l), 0);
    assert_string_equal(l.host, "2001:db8::5");
    assert_int_equal(l.port, 65535);
    assert_int_equal(config_parse_listen("0.0.0.0:0", &l), 0);
    assert_int_equal(l.port, 0);

    /* Refused; a refused value leaves the listener as it was. */
    static const char *const bad[] = {
        "localhost:80",        /* names are refused: numeric only */
        "mamori.example.jp:443",
        "127.0.0.1:70000",     /* port out of range */
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "127.0.0.1:",
        "127.0.0.1",
        ":8443",
        "[::1]8443",
        "[::1]",
        "[::1:8443",
        "[]:8443",
        "256.0.0.1:80",
        "127.0.0.1:80x",
        "127.0.0.1 :80",
        "[localhost]:80",
    };
    memset(&l, 0, sizeof(l));
    snprintf(l.host, sizeof(l.host), "untouched");
    l.port = 1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (config_parse_listen(bad[i], &l) == 0)
            fail_msg("listen address \"%s\" was accepted", bad[i]);
        assert_string_equal(l.host, "untouched");
        assert_int_equal(l.port, 1);
    }
}

static void
test_listen_in_file(void **state)
{
    struct fixture *f = *state;

    REFUSED(f, DATADIR_LINE "\ninternal.listen = localhost:80\n", "line 3", "internal.listen");
    REFUSED(f, DATADIR_LINE "public.listen = 127.0.0.1:70000\n", "line 2", "public.listen");
    load_ok(f, DATADIR_LINE "internal.listen = [::1]:8443\npublic.listen = 127.0.0.1:8443\n");
    assert_string_equal(f->cfg.internal.host, "::1");
    assert_int_equal(f->cfg.internal.port, 8443);
    assert_string_equal(f->cfg.public_.host, "127.0.0.1");
    assert_int_equal(f->cfg.public_.port, 8443);
}

static void
test_same_address_for_both_listeners_refused(void **state)
{
    struct fixture *f = *state;

    REFUSED(f, DATADIR_LINE "internal.listen = 127.0.0.1:9000\npublic.listen = 127.0.0.1:9000\n",
            "internal.listen", "public.listen");
    /* The defaults are distinct; setting only one to the other's value. */
    struct mamori_config d;
    char line[160];
    config_defaults(&d);
    snprintf(line, sizeof(line), DATADIR_LINE "public.listen = %s:%u\n", d.internal.host,
             (unsigned)d.internal.port);
    REFUSED(f, line, "public.listen");
    /* Port 0 (ephemeral, for tests) on both is allowed, as documented. */
    load_ok(f, DATADIR_LINE "internal.listen = 127.0.0.1:0\npublic.listen = 127.0.0.1:0\n");
    assert_int_equal(f->cfg.internal.port, 0);
    assert_int_equal(f->cfg.public_.port, 0);
    /* Same port on different addresses is two addresses. */
    load_ok(f, DATADIR_LINE "internal.listen = 127.0.0.1:9000\npublic.listen = 127.0.0.2:9000\n");
}

static void
test_non_ascii_value_refused(void **state)
{
    struct fixture *f = *state;

    /* "まもり" in UTF-8. */
    REFUSED(f, DATADIR_LINE "user = \xe3\x81\xbe\xe3\x82\x82\xe3\x82\x8a\n", "line 2", "user");
    REFUSED(f, DATADIR_LINE "store.path = db/\xc3\xa9.sqlite\n", "line 2", "store.path");
    /* Control characters, e.g. an escape sequence aimed at a terminal. */
    REFUSED(f, DATADIR_LINE "pidfile = run/\x1b[2Jx.pid\n", "line 2", "pidfile");
    REFUSED(f, DATADIR_LINE "user = a\tb\n", "line 2", "user");
    /* A non-ASCII datadir on line 1. */
    REFUSED(f, "datadir = /srv/\xe5\xae\x88\n", "line 1", "datadir");
}

static void
test_empty_and_too_long_values_refused(void **state)
{
    struct fixture *f = *state;
    char text[8192];

    REFUSED(f, DATADIR_LINE "pidfile =\n", "line 2", "pidfile");
    REFUSED(f, DATADIR_LINE "keys.master =   # nothing\n", "line 2", "keys.master");
    /* user holds 63 characters: 64 must be refused, not truncated. */
    snprintf(text, sizeof(text), DATADIR_LINE "user = %064d\n", 0);
    REFUSED(f, text, "line 2", "user");
    snprintf(text, sizeof(text), DATADIR_LINE "user = %063d\n", 0);
    load_ok(f, text);
    assert_int_equal(strlen(f->cfg.user), 63);
    /* A path that only becomes too long when joined to datadir. */
    {
        char longdir[PATH_MAX];
        memset(longdir, 'd', sizeof(longdir));
        longdir[0] = '/';
        longdir[PATH_MAX - 20] = '\0';
        snprintf(text, sizeof(text), "datadir = %s\nstore.path = db/mamori-database.sqlite\n",
                 longdir);
        REFUSED(f, text, "too long");
    }
}

static void
test_datadir_missing_or_relative_refused(void **state)
{
    struct fixture *f = *state;

    REFUSED(f, "# no datadir here\nworkers = 2\n", "datadir");
    REFUSED(f, "", "datadir");
    REFUSED(f, "datadir = var/lib/mamori\n", "datadir");
    REFUSED(f, "datadir = ./mamori\n", "datadir");
}

static void
test_postgresql_without_conninfo_refused(void **state)
{
    struct fixture *f = *state;

    REFUSED(f, DATADIR_LINE "store.backend = postgresql\n", "store.backend", "store.conninfo");
    REFUSED(f, DATADIR_LINE "store.backend = postgresql\nstore.conninfo =\n",
            "store.conninfo");
    load_ok(f, DATADIR_LINE "store.backend = postgresql\nstore.conninfo = dbname=m\n");
    assert_int_equal(f->cfg.store_backend, STORE_BACKEND_POSTGRESQL);
    assert_string_equal(f->cfg.store_conninfo, "dbname=m");
}

static void
test_line_numbers_count_every_line(void **state)
{
    struct fixture *f = *state;

    /* Blank lines, comments and CRLF endings all count as lines. */
    REFUSED(f, "# 1\r\n\r\n" DATADIR_LINE "\n   \n\t# 6\r\nworkers = 2\r\nbogus = 1\r\n",
            "line 8", "bogus");
    /* A bad last line without a final newline. */
    REFUSED(f, DATADIR_LINE "workers = 2\nthreads = x", "line 3", "threads");
}

static void
test_unreadable_or_nul_file_refused(void **state)
{
    struct fixture *f = *state;
    static const char with_nul[] = DATADIR_LINE "user = a\0b\n";

    write_conf_len(f, with_nul, sizeof(with_nul) - 1);
    assert_int_equal(config_load(f->path, &f->cfg, f->err, sizeof(f->err)), -1);
    assert_non_null(strstr(f->err, f->path));
    assert_non_null(strstr(f->err, "NUL"));

    /* At most 1 MiB: exactly 1 MiB loads, one byte more does not. */
    {
        size_t max = 1u << 20;
        char *big = malloc(max + 2);
        assert_non_null(big);
        memset(big, ' ', max + 1);
        memcpy(big, DATADIR_LINE "#", sizeof(DATADIR_LINE));
        big[max - 1] = '\n';
        write_conf_len(f, big, max);
        if (config_load(f->path, &f->cfg, f->err, sizeof(f->err)) != 0)
            fail_msg("a 1 MiB file was refused: %s", f->err);
        big[max - 1] = ' ';
        big[max] = '\n';
        write_conf_len(f, big, max + 1);
        assert_int_equal(config_load(f->path, &f->cfg, f->err, sizeof(f->err)), -1);
        assert_non_null(strstr(f->err, f->path));
        free(big);
    }

    assert_int_equal(unlink(f->path), 0);
    assert_int_equal(config_load(f->path, &f->cfg, f->err, sizeof(f->err)), -1);
    assert_non_null(strstr(f->err, f->path));
    assert_non_null(strstr(f->err, strerror(ENOENT)));
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_manual),
        T(test_minimal_file_resolves_defaults),
        T(test_full_file_every_key),
        T(test_unknown_key_refused),
        T(test_duplicate_key_refused),
        T(test_bad_number_refused),
        T(test_number_ranges_from_manual),
        T(test_enum_values_refused),
        T(test_listen_addresses),
        T(test_listen_in_file),
        T(test_same_address_for_both_listeners_refused),
        T(test_non_ascii_value_refused),
        T(test_empty_and_too_long_values_refused),
        T(test_datadir_missing_or_relative_refused),
        T(test_postgresql_without_conninfo_refused),
        T(test_line_numbers_count_every_line),
        T(test_unreadable_or_nul_file_refused),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
