/*
 * test_cli_init.c - `mamori init` and `mamori terminal` (R6.2 terminal
 * certificates and revocation, R8.1 server PKI, R1.4 master key).
 *
 * The subcommands are called directly; their stdout is captured where
 * the printed result matters.  Each test works in its own mkdtemp
 * directory under /tmp and removes it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"
#include "config/config.h"
#include "pki/pki.h"
#include "tls/revoke.h"

struct tmp {
    char base[64];                  /* mkdtemp */
    char data[PATH_MAX];            /* base/data: the init target */
    char user[32];
    uid_t uid;                      /* expected owner of the tree */
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int
setup(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));
    struct passwd *pw;

    if (t == NULL)
        return -1;
    snprintf(t->base, sizeof(t->base), "/tmp/mamori-cli-XXXXXX");
    if (mkdtemp(t->base) == NULL) {
        free(t);
        return -1;
    }
    snprintf(t->data, sizeof(t->data), "%s/data", t->base);
    /* As root, init hands the tree to --user, which must exist. */
    if (geteuid() == 0 && (pw = getpwnam("nobody")) != NULL) {
        snprintf(t->user, sizeof(t->user), "nobody");
        t->uid = pw->pw_uid;
    } else {
        snprintf(t->user, sizeof(t->user), geteuid() == 0 ? "root" : "mamori");
        t->uid = geteuid();
    }
    *state = t;
    return 0;
}

static int
teardown(void **state)
{
    struct tmp *t = *state;

    nftw(t->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
    return 0;
}

/* Run one subcommand (argv[0] "init" or "terminal") with its stdout
 * captured; *out gets it when out is not NULL (malloc'd, caller frees).
 * Error messages still reach stderr, so a failing test shows them. */
static int
run(char **out, int argc, char **argv)
{
    char path[] = "/tmp/mamori-out-XXXXXX", *text;
    int fd, saved, rc;
    size_t len;

    fflush(stdout);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    saved = dup(STDOUT_FILENO);
    assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
    rc = strcmp(argv[0], "init") == 0 ? cmd_init(argc, argv)
                                      : cmd_terminal(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fd);
    assert_int_equal(util_read_file(path, 1 << 20, &text, &len), 0);
    unlink(path);
    if (out != NULL)
        *out = text;
    else
        free(text);
    return rc;
}

#define RUN(out, ...) \
    run((out), (int)(sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *)), \
        (char *[]){ __VA_ARGS__, NULL })

static int
init_default(struct tmp *t)
{
    return RUN(NULL, "init", "--user", t->user, "--internal-listen",
               "127.0.0.1:0", "--public-listen", "[::1]:18444", t->data);
}

static void
join(char out[PATH_MAX], const char *dir, const char *rel)
{
    assert_int_equal(util_path_join(out, PATH_MAX, dir, rel), 0);
}

static void
assert_mode(const struct tmp *t, const char *rel, mode_t type, mode_t mode)
{
    char path[PATH_MAX];
    struct stat st;

    join(path, t->data, rel);
    if (lstat(path, &st) != 0)
        fail_msg("%s is missing", rel);
    if ((st.st_mode & S_IFMT) != type || (st.st_mode & 07777) != mode)
        fail_msg("%s has mode %o, expected %o", rel,
                 (unsigned)st.st_mode, (unsigned)(type | mode));
    assert_int_equal(st.st_uid, t->uid);
}

static char *
slurp(const char *dir, const char *rel)
{
    char path[PATH_MAX], *buf;
    size_t len;

    join(path, dir, rel);
    if (util_read_file(path, 1 << 24, &buf, &len) != 0)
        fail_msg("cannot read %s", path);
    return buf;
}

/* GnuTLS's verdict on dir/rel against dir/ca_rel (0 = trusted). */
static unsigned
verify_file(const char *dir, const char *rel, const char *ca_rel,
            const char *purpose)
{
    char *pem = slurp(dir, rel), *ca_pem = slurp(dir, ca_rel);
    gnutls_datum_t d = { (unsigned char *)pem, (unsigned int)strlen(pem) };
    gnutls_datum_t cd = { (unsigned char *)ca_pem,
                          (unsigned int)strlen(ca_pem) };
    gnutls_typed_vdata_st vd = { GNUTLS_DT_KEY_PURPOSE_OID,
                                 (unsigned char *)(uintptr_t)purpose, 0 };
    gnutls_x509_crt_t *list = NULL;
    gnutls_x509_trust_list_t tl;
    unsigned n = 0, status = 0;

    assert_int_equal(gnutls_x509_crt_list_import2(&list, &n, &d,
                                                  GNUTLS_X509_FMT_PEM, 0), 0);
    assert_int_equal(n, 1);             /* leaf only, no chain */
    assert_int_equal(gnutls_x509_trust_list_init(&tl, 0), 0);
    assert_int_equal(gnutls_x509_trust_list_add_trust_mem(tl, &cd, NULL,
                         GNUTLS_X509_FMT_PEM, 0, 0), 1);
    assert_int_equal(gnutls_x509_trust_list_verify_crt2(tl, list, 1, &vd, 1,
                                                        0, &status, NULL), 0);
    gnutls_x509_trust_list_deinit(tl, 1);
    gnutls_x509_crt_deinit(list[0]);
    gnutls_free(list);
    free(pem);
    free(ca_pem);
    return status;
}

/* ---- init --------------------------------------------------------------- */

/* Every file and directory, with its mode and owner; the certificates
 * chain as they should; the master key is 32 bytes. */
static void
test_init_tree(void **state)
{
    struct tmp *t = *state;
    char *key, *revl, *demo;
    struct pki_cert_info info;
    char path[PATH_MAX];
    struct stat st;

    assert_int_equal(init_default(t), CLI_OK);
    assert_mode(t, ".", S_IFDIR, 0700);
    assert_mode(t, "pki", S_IFDIR, 0700);
    assert_mode(t, "terminals", S_IFDIR, 0700);
    assert_mode(t, "keys", S_IFDIR, 0700);
    assert_mode(t, "audit", S_IFDIR, 0700);
    assert_mode(t, "db", S_IFDIR, 0700);
    assert_mode(t, "run", S_IFDIR, 0755);
    assert_mode(t, "revocation", S_IFDIR, 0700);
    assert_mode(t, "pki/ca.crt", S_IFREG, 0644);
    assert_mode(t, "pki/ca.key", S_IFREG, 0600);
    assert_mode(t, "pki/server.crt", S_IFREG, 0644);
    assert_mode(t, "pki/server.key", S_IFREG, 0600);
    assert_mode(t, "pki/terminal-ca.crt", S_IFREG, 0644);
    assert_mode(t, "pki/terminal-ca.key", S_IFREG, 0600);
    assert_mode(t, "revocation/terminals.txt", S_IFREG, 0644);
    assert_mode(t, "terminals/demo.crt", S_IFREG, 0644);
    assert_mode(t, "terminals/demo.key", S_IFREG, 0600);
    assert_mode(t, "keys/master.key", S_IFREG, 0600);
    assert_mode(t, "mamorid.conf", S_IFREG, 0600);

    join(path, t->data, "keys/master.key");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 32);
    key = slurp(t->data, "keys/master.key");
    assert_false(util_ct_equal(key, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
                               "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 32));
    free(key);

    /* R8.1: server.crt is a leaf for TLS servers under ca.crt only. */
    assert_int_equal(verify_file(t->data, "pki/server.crt", "pki/ca.crt",
                                 GNUTLS_KP_TLS_WWW_SERVER), 0);
    assert_int_not_equal(verify_file(t->data, "pki/server.crt",
                                     "pki/terminal-ca.crt",
                                     GNUTLS_KP_TLS_WWW_SERVER), 0);
    /* R6.2: the demo terminal is a client under the terminal CA only. */
    assert_int_equal(verify_file(t->data, "terminals/demo.crt",
                                 "pki/terminal-ca.crt",
                                 GNUTLS_KP_TLS_WWW_CLIENT), 0);
    assert_int_not_equal(verify_file(t->data, "terminals/demo.crt",
                                     "pki/ca.crt",
                                     GNUTLS_KP_TLS_WWW_CLIENT), 0);
    demo = slurp(t->data, "terminals/demo.crt");
    assert_int_equal(pki_cert_info(demo, &info), 0);
    assert_string_equal(info.common_name, "demo-terminal");
    free(demo);

    /* The revocation list starts with a header and no entry. */
    revl = slurp(t->data, "revocation/terminals.txt");
    assert_true(revl[0] == '#');
    for (const char *l = revl; *l != '\0'; l++) {
        assert_true(*l == '#' || *l == '\n');
        l += strcspn(l, "\n");
        if (*l == '\0')
            break;
    }
    free(revl);
}

/* The config holds exactly the documented keys, the listeners given on
 * the command line, the absolute datadir, and config_load accepts it. */
static void
test_init_config(void **state)
{
    static const char *const keys[] = {
        "datadir", "user", "workers", "threads", "connection_timeout",
        "drain_timeout", "max_connections", "log.target", "log.level",
        "pidfile", "portsfile", "refdata", "internal.listen",
        "internal.cert", "internal.key", "internal.client_ca",
        "internal.revocation_list", "public.listen", "public.cert",
        "public.key", "keys.master", "keys.dir", "audit.dir",
        "store.backend", "store.path",
    };
    struct tmp *t = *state;
    char *conf, want[PATH_MAX + 64], real[PATH_MAX], err[256];
    struct mamori_config *cfg = calloc(1, sizeof(*cfg));
    size_t nkeys = sizeof(keys) / sizeof(keys[0]), seen = 0;

    assert_non_null(cfg);
    assert_int_equal(init_default(t), CLI_OK);
    conf = slurp(t->data, "mamorid.conf");
    assert_non_null(strstr(conf, "\ninternal.listen = 127.0.0.1:0\n"));
    assert_non_null(strstr(conf, "\npublic.listen = [::1]:18444\n"));
    assert_non_null(realpath(t->data, real));
    snprintf(want, sizeof(want), "\ndatadir = %s\n", real);
    assert_non_null(strstr(conf, want));
    snprintf(want, sizeof(want), "\nuser = %s\n", t->user);
    assert_non_null(strstr(conf, want));

    /* Every non-comment line is one of the documented keys, once each. */
    for (char *l = strtok(conf, "\n"); l != NULL; l = strtok(NULL, "\n")) {
        size_t klen = strcspn(l, " ");
        bool known = false;

        if (l[0] == '#')
            continue;
        for (size_t i = 0; i < nkeys; i++)
            if (strlen(keys[i]) == klen && strncmp(l, keys[i], klen) == 0)
                known = true;
        if (!known)
            fail_msg("unexpected config line: %s", l);
        assert_int_equal(strncmp(l + klen, " = ", 3), 0);
        seen++;
    }
    assert_int_equal(seen, nkeys);
    free(conf);

    /* The daemon's own parser reads it back. */
    join(want, t->data, "mamorid.conf");
    if (config_load(want, cfg, err, sizeof(err)) != 0)
        fail_msg("config_load: %s", err);
    assert_string_equal(cfg->datadir, real);
    assert_int_equal(cfg->internal.port, 0);
    assert_int_equal(cfg->public_.port, 18444);
    assert_string_equal(cfg->public_.host, "::1");
    free(cfg);
}

/* A non-empty directory is refused and left as it was; an empty one is
 * accepted; two inits never share key material. */
static void
test_init_refuses_nonempty(void **state)
{
    struct tmp *t = *state;
    char path[PATH_MAX], other[PATH_MAX], *k1, *k2, *c1, *c2;

    assert_int_equal(mkdir(t->data, 0755), 0);
    join(path, t->data, "precious");
    assert_int_equal(util_write_file_atomic(path, "x", 1, 0644), 0);
    assert_int_equal(init_default(t), CLI_FAIL);
    join(path, t->data, "pki");
    assert_int_equal(access(path, F_OK), -1);
    join(path, t->data, "mamorid.conf");
    assert_int_equal(access(path, F_OK), -1);

    /* Running init on a finished directory is refused too. */
    join(path, t->data, "precious");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(init_default(t), CLI_OK);      /* empty: accepted */
    k1 = slurp(t->data, "keys/master.key");
    c1 = slurp(t->data, "pki/ca.key");
    assert_int_equal(init_default(t), CLI_FAIL);
    k2 = slurp(t->data, "keys/master.key");
    assert_memory_equal(k1, k2, 32);                /* untouched */
    free(k2);

    join(other, t->base, "second");
    assert_int_equal(RUN(NULL, "init", "--user", t->user, other), CLI_OK);
    k2 = slurp(other, "keys/master.key");
    c2 = slurp(other, "pki/ca.key");
    assert_memory_not_equal(k1, k2, 32);
    assert_string_not_equal(c1, c2);
    free(k1);
    free(k2);
    free(c1);
    free(c2);
}

/* Bad arguments: usage errors, nothing created. */
static void
test_init_bad_arguments(void **state)
{
    struct tmp *t = *state;

    assert_int_equal(RUN(NULL, "init", "--internal-listen", "localhost:8443",
                         t->data), CLI_USAGE);
    assert_int_equal(RUN(NULL, "init", "--public-listen", "127.0.0.1:70000",
                         t->data), CLI_USAGE);
    assert_int_equal(RUN(NULL, "init", "--public-listen", "[::1]8444",
                         t->data), CLI_USAGE);
    assert_int_equal(RUN(NULL, "init", "--user", "bad\nname", t->data),
                     CLI_USAGE);
    assert_int_equal(RUN(NULL, "init", "--bogus", t->data), CLI_USAGE);
    assert_int_equal(RUN(NULL, "init"), CLI_USAGE);
    assert_int_equal(access(t->data, F_OK), -1);
    if (geteuid() == 0) {
        /* Root must hand the tree to an existing user. */
        assert_int_equal(RUN(NULL, "init", "--user", "no-such-user-xq",
                             t->data), CLI_FAIL);
        assert_int_equal(access(t->data, F_OK), -1);
    }
}

/* ---- terminal issue / csr / list (R6.2) --------------------------------- */

static void
fp_of_file(const char *dir, const char *rel, char hex[PKI_FP_HEX_LEN + 1])
{
    char *pem = slurp(dir, rel);

    assert_int_equal(pki_fingerprint_hex(pem, hex), 0);
    free(pem);
}

static void
test_terminal_issue(void **state)
{
    struct tmp *t = *state;
    char fp[PKI_FP_HEX_LEN + 1], *out, *before, *after;

    assert_int_equal(init_default(t), CLI_OK);
    assert_int_equal(RUN(&out, "terminal", "issue", "-d", t->data,
                         "--days", "30", "clerk-01"), CLI_OK);
    fp_of_file(t->data, "terminals/clerk-01.crt", fp);
    assert_non_null(strstr(out, fp));               /* printed */
    free(out);
    /* Key 0600; both owned like the rest of the tree (root hands them
     * to the daemon's user as init did). */
    assert_mode(t, "terminals/clerk-01.key", S_IFREG, 0600);
    assert_mode(t, "terminals/clerk-01.crt", S_IFREG, 0644);
    assert_int_equal(verify_file(t->data, "terminals/clerk-01.crt",
                                 "pki/terminal-ca.crt",
                                 GNUTLS_KP_TLS_WWW_CLIENT), 0);

    /* Never overwritten. */
    before = slurp(t->data, "terminals/clerk-01.crt");
    assert_int_equal(RUN(NULL, "terminal", "issue", "-d", t->data,
                         "clerk-01"), CLI_FAIL);
    after = slurp(t->data, "terminals/clerk-01.crt");
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* Names that could escape terminals/ or hide are refused. */
    assert_int_equal(RUN(NULL, "terminal", "issue", "-d", t->data,
                         "../evil"), CLI_USAGE);
    assert_int_equal(RUN(NULL, "terminal", "issue", "-d", t->data,
                         ".hidden"), CLI_USAGE);
    assert_int_equal(RUN(NULL, "terminal", "issue", "-d", t->data,
                         "a234567890123456789012345678901234567890"
                         "12345678901234567890123456"), CLI_USAGE);
    assert_int_equal(RUN(NULL, "terminal", "issue", "-d", t->data,
                         "--days", "0", "x"), CLI_USAGE);
}

/* The CSR path: the key stays with the terminal, the certificate carries
 * it, and only NAME.crt appears in terminals/. */
static void
test_terminal_csr(void **state)
{
    struct tmp *t = *state;
    char keyp[PATH_MAX], csrp[PATH_MAX], path[PATH_MAX];
    char *key, *crt;
    unsigned char kid[20], cid[20];
    size_t klen = 20, clen = 20;
    gnutls_x509_privkey_t pk;
    gnutls_x509_crt_t x;
    gnutls_datum_t d;
    struct pki_cert_info info;
    struct stat st;

    assert_int_equal(init_default(t), CLI_OK);
    join(keyp, t->base, "tablet.key");
    join(csrp, t->base, "tablet.csr");
    assert_int_equal(RUN(NULL, "terminal", "csr", "--out-key", keyp,
                         "--out-csr", csrp, "whatever"), CLI_OK);
    assert_int_equal(stat(keyp, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* Refuses to overwrite the terminal's key. */
    assert_int_equal(RUN(NULL, "terminal", "csr", "--out-key", keyp,
                         "--out-csr", csrp, "whatever"), CLI_FAIL);

    assert_int_equal(RUN(NULL, "terminal", "issue", "-d", t->data, "--csr",
                         csrp, "tablet-3"), CLI_OK);
    join(path, t->data, "terminals/tablet-3.key");
    assert_int_equal(access(path, F_OK), -1);
    crt = slurp(t->data, "terminals/tablet-3.crt");
    assert_int_equal(pki_cert_info(crt, &info), 0);
    assert_string_equal(info.common_name, "tablet-3");

    key = slurp(t->base, "tablet.key");
    d.data = (unsigned char *)key;
    d.size = (unsigned int)strlen(key);
    assert_int_equal(gnutls_x509_privkey_init(&pk), 0);
    assert_int_equal(gnutls_x509_privkey_import2(pk, &d, GNUTLS_X509_FMT_PEM,
                                                 NULL, 0), 0);
    assert_int_equal(gnutls_x509_privkey_get_key_id(pk, 0, kid, &klen), 0);
    d.data = (unsigned char *)crt;
    d.size = (unsigned int)strlen(crt);
    assert_int_equal(gnutls_x509_crt_init(&x), 0);
    assert_int_equal(gnutls_x509_crt_import(x, &d, GNUTLS_X509_FMT_PEM), 0);
    assert_int_equal(gnutls_x509_crt_get_key_id(x, 0, cid, &clen), 0);
    assert_memory_equal(kid, cid, 20);
    gnutls_x509_crt_deinit(x);
    gnutls_x509_privkey_deinit(pk);
    free(crt);
    util_wipe(key, strlen(key));
    free(key);
}

/* ---- terminal revoke (R6.2) -------------------------------------------- */

static unsigned
count_entries(const char *list, char first[PKI_FP_HEX_LEN + 1])
{
    unsigned n = 0;

    while (*list != '\0') {
        size_t len = strcspn(list, "\n");

        if (len > 0 && list[0] != '#') {
            /* Well formed: 64 lower-case hex, a blank, a comment. */
            assert_true(len > PKI_FP_HEX_LEN + 2);
            for (size_t i = 0; i < PKI_FP_HEX_LEN; i++)
                assert_non_null(strchr("0123456789abcdef", list[i]));
            assert_true(list[PKI_FP_HEX_LEN] == ' ');
            assert_true(list[PKI_FP_HEX_LEN + 1] == '#');
            if (n == 0) {
                memcpy(first, list, PKI_FP_HEX_LEN);
                first[PKI_FP_HEX_LEN] = '\0';
            }
            n++;
        }
        list += len;
        assert_true(*list == '\n');         /* every line terminated */
        list++;
    }
    return n;
}

static void
test_terminal_revoke(void **state)
{
    struct tmp *t = *state;
    char fp[PKI_FP_HEX_LEN + 1], got[PKI_FP_HEX_LEN + 1], upper[65];
    char path[PATH_MAX], certp[PATH_MAX], *before, *after, *out;

    assert_int_equal(init_default(t), CLI_OK);
    assert_int_equal(RUN(NULL, "terminal", "issue", "-d", t->data, "lost"),
                     CLI_OK);
    fp_of_file(t->data, "terminals/lost.crt", fp);
    join(path, t->data, "revocation/terminals.txt");
    assert_int_equal(chmod(path, 0640), 0);
    before = slurp(t->data, "revocation/terminals.txt");

    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data,
                         "--reason", "lost on the train", "lost"), CLI_OK);
    after = slurp(t->data, "revocation/terminals.txt");
    assert_int_equal(count_entries(after, got), 1);
    assert_string_equal(got, fp);
    assert_non_null(strstr(after, "lost on the train"));
    assert_int_equal(strncmp(after, before, strlen(before)), 0); /* kept */
    assert_mode(t, "revocation/terminals.txt", S_IFREG, 0640); /* kept */
    free(before);
    {
        /* ...and mamorid's own parser sees exactly that entry. */
        struct revoke_set *set = NULL;
        uint8_t raw[PKI_FP_LEN];
        unsigned bad = 0;

        assert_int_equal(revoke_set_parse(after, strlen(after), &set, &bad),
                         0);
        assert_int_equal(revoke_set_count(set), 1);
        assert_int_equal(util_hex_decode(fp, raw, sizeof(raw)), 0);
        assert_true(revoke_set_contains(set, raw));
        revoke_set_free(set);
    }

    /* Idempotent, whichever way the terminal is named. */
    join(certp, t->data, "terminals/lost.crt");
    for (size_t i = 0; i < PKI_FP_HEX_LEN; i++)
        upper[i] = (char)(fp[i] >= 'a' ? fp[i] - 32 : fp[i]);
    upper[PKI_FP_HEX_LEN] = '\0';
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data, "lost"),
                     CLI_OK);
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data,
                         "--cert", certp), CLI_OK);
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data,
                         "--fingerprint", upper), CLI_OK);
    before = slurp(t->data, "revocation/terminals.txt");
    assert_string_equal(before, after);
    free(before);

    /* Bad input changes nothing. */
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data,
                         "--reason", "two\nlines", "demo"), CLI_USAGE);
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data,
                         "--fingerprint", "abc"), CLI_FAIL);
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data,
                         "--fingerprint", fp, "demo"), CLI_USAGE);
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data,
                         "nobody-here"), CLI_FAIL);
    before = slurp(t->data, "revocation/terminals.txt");
    assert_string_equal(before, after);
    free(before);
    free(after);

    /* list shows the revoked one as revoked and the demo as active. */
    assert_int_equal(RUN(&out, "terminal", "list", "-d", t->data), CLI_OK);
    {
        char *l = strstr(out, "\nlost ");
        char *d = strstr(out, "\ndemo ");

        assert_non_null(l);
        assert_non_null(d);
        assert_non_null(strstr(l, fp));
        assert_true(strncmp(l + 1 + strcspn(l + 1, "\n") - 7, "revoked", 7) == 0);
        assert_true(strncmp(d + 1 + strcspn(d + 1, "\n") - 6, "active", 6) == 0);
    }
    free(out);
}

/* The list is read as mamorid reads it: an entry mamorid honours counts
 * as revoked, and a line that makes mamorid refuse the list stops both
 * `list` and `revoke` with nothing changed. */
static void
test_revoke_list_as_daemon_reads_it(void **state)
{
    struct tmp *t = *state;
    char fp[PKI_FP_HEX_LEN + 1], up[PKI_FP_HEX_LEN + 1], path[PATH_MAX];
    char text[256], *out, *before, *after;

    assert_int_equal(init_default(t), CLI_OK);
    fp_of_file(t->data, "terminals/demo.crt", fp);
    join(path, t->data, "revocation/terminals.txt");

    /* Upper case, indented, comment without a blank: mamorid accepts it. */
    for (size_t i = 0; i <= PKI_FP_HEX_LEN; i++)
        up[i] = (char)(fp[i] >= 'a' ? fp[i] - 32 : fp[i]);
    snprintf(text, sizeof(text), "# hand-edited\n  %s#lost\n", up);
    assert_int_equal(util_write_file_atomic(path, text, strlen(text), 0644), 0);
    assert_int_equal(RUN(&out, "terminal", "list", "-d", t->data), CLI_OK);
    assert_non_null(strstr(out, "revoked"));
    assert_null(strstr(out, "active"));
    free(out);
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data, "demo"),
                     CLI_OK);
    after = slurp(t->data, "revocation/terminals.txt");
    assert_string_equal(after, text);               /* already revoked */
    free(after);

    /* A line mamorid refuses: both commands fail, nothing is written. */
    strcat(text, "not a fingerprint\n");
    assert_int_equal(util_write_file_atomic(path, text, strlen(text), 0644), 0);
    assert_int_equal(RUN(NULL, "terminal", "issue", "-d", t->data, "new"),
                     CLI_OK);
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data, "new"),
                     CLI_FAIL);
    assert_int_equal(RUN(NULL, "terminal", "list", "-d", t->data), CLI_FAIL);
    before = slurp(t->data, "revocation/terminals.txt");
    assert_string_equal(before, text);
    free(before);
}

/* Point DIR/mamorid.conf's internal.revocation_list at `list`. */
static void
set_revocation_list(const struct tmp *t, const char *list)
{
    const char *key = "internal.revocation_list = revocation/terminals.txt\n";
    char path[PATH_MAX], *conf, *at, *text;

    join(path, t->data, "mamorid.conf");
    conf = slurp(t->data, "mamorid.conf");
    at = strstr(conf, key);
    assert_non_null(at);
    *at = '\0';
    assert_true(asprintf(&text, "%sinternal.revocation_list = %s\n%s", conf,
                         list, at + strlen(key)) > 0);
    assert_int_equal(util_write_file_atomic(path, text, strlen(text), 0600),
                     0);
    free(text);
    free(conf);
}

/* R6.2: revoke and list use the list mamorid.conf names (the one mamorid
 * enforces and `tenant erase` writes), not a fixed path; the default only
 * when DIR has no mamorid.conf; a mamorid.conf that does not load stops
 * both, with nothing written anywhere. */
static void
test_R6_2_revoke_uses_configured_list(void **state)
{
    struct tmp *t = *state;
    char fp[PKI_FP_HEX_LEN + 1], got[PKI_FP_HEX_LEN + 1], path[PATH_MAX];
    char altdir[PATH_MAX], conf[PATH_MAX], *deflt, *text, *out;

    assert_int_equal(init_default(t), CLI_OK);
    fp_of_file(t->data, "terminals/demo.crt", fp);
    join(altdir, t->base, "elsewhere");
    assert_int_equal(mkdir(altdir, 0700), 0);
    join(path, altdir, "revoked.txt");
    set_revocation_list(t, path);
    deflt = slurp(t->data, "revocation/terminals.txt");

    assert_int_equal(RUN(&out, "terminal", "revoke", "-d", t->data, "demo"),
                     CLI_OK);
    assert_non_null(strstr(out, path));             /* says where */
    free(out);
    text = slurp(altdir, "revoked.txt");
    assert_int_equal(count_entries(text, got), 1);
    assert_string_equal(got, fp);
    free(text);
    text = slurp(t->data, "revocation/terminals.txt");
    assert_string_equal(text, deflt);               /* untouched */
    free(text);
    assert_int_equal(RUN(&out, "terminal", "list", "-d", t->data), CLI_OK);
    assert_non_null(strstr(out, "revoked"));        /* read from there */
    assert_null(strstr(out, "active"));
    free(out);

    /* A mamorid.conf that does not load: no guess, nothing written. */
    join(conf, t->data, "mamorid.conf");
    assert_int_equal(util_write_file_atomic(conf, "no such key = 1\n", 16,
                                            0600), 0);
    assert_int_equal(RUN(NULL, "terminal", "issue", "-d", t->data, "x"),
                     CLI_OK);
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data, "x"),
                     CLI_FAIL);
    assert_int_equal(RUN(NULL, "terminal", "list", "-d", t->data), CLI_FAIL);
    out = slurp(t->data, "revocation/terminals.txt");
    assert_string_equal(out, deflt);
    free(out);
    out = slurp(altdir, "revoked.txt");
    assert_int_equal(count_entries(out, got), 1);
    free(out);

    /* No mamorid.conf at all: the default list. */
    assert_int_equal(unlink(conf), 0);
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data, "x"),
                     CLI_OK);
    text = slurp(t->data, "revocation/terminals.txt");
    assert_int_equal(count_entries(text, got), 1);
    free(text);
    free(deflt);
}

static volatile sig_atomic_t got_hup;

static void
on_hup(int sig)
{
    (void)sig;
    got_hup = 1;
}

/* A stand-in daemon: named `name`, reports "r" when ready and "h" when it
 * gets SIGHUP, then waits to be killed. */
static pid_t
fake_daemon(const char *name, int *rfd)
{
    int p[2];
    pid_t pid;

    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sigaction sa;

        close(p[0]);
        prctl(PR_SET_NAME, name, 0, 0, 0);
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_hup;
        sigaction(SIGHUP, &sa, NULL);
        if (write(p[1], "r", 1) != 1)
            _exit(1);
        for (;;) {
            pause();
            if (got_hup) {
                got_hup = 0;
                if (write(p[1], "h", 1) != 1)
                    _exit(1);
            }
        }
    }
    close(p[1]);
    *rfd = p[0];
    return pid;
}

static char
read_byte(int fd, int ms)
{
    struct pollfd pfd = { fd, POLLIN, 0 };
    char c = 0;

    if (poll(&pfd, 1, ms) == 1 && read(fd, &c, 1) == 1)
        return c;
    return 0;
}

static void
write_pidfile(const struct tmp *t, long pid)
{
    char path[PATH_MAX], text[32];
    int n = snprintf(text, sizeof(text), "%ld\n", pid);

    join(path, t->data, "run/mamorid.pid");
    assert_int_equal(util_write_file_atomic(path, text, (size_t)n, 0644), 0);
}

/* R6.2: a running mamorid is told at once; a stale pid file or a pid
 * that is not mamorid is not signalled and does not fail the revoke. */
static void
test_revoke_signals_daemon(void **state)
{
    struct tmp *t = *state;
    int rfd, status;
    pid_t pid;

    assert_int_equal(init_default(t), CLI_OK);
    assert_int_equal(RUN(NULL, "terminal", "issue", "-d", t->data, "a"),
                     CLI_OK);
    assert_int_equal(RUN(NULL, "terminal", "issue", "-d", t->data, "b"),
                     CLI_OK);

    pid = fake_daemon("mamorid", &rfd);
    assert_int_equal(read_byte(rfd, 5000), 'r');
    write_pidfile(t, (long)pid);
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data, "a"),
                     CLI_OK);
    assert_int_equal(read_byte(rfd, 5000), 'h');
    /* Already revoked: nothing to reload, no signal. */
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data, "a"),
                     CLI_OK);
    assert_int_equal(read_byte(rfd, 300), 0);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    close(rfd);

    /* Some other program under a reused pid is left alone. */
    pid = fake_daemon("sshd", &rfd);
    assert_int_equal(read_byte(rfd, 5000), 'r');
    write_pidfile(t, (long)pid);
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data, "b"),
                     CLI_OK);
    assert_int_equal(read_byte(rfd, 300), 0);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    close(rfd);

    /* Stale pid file (the process is gone) and a garbage pid file. */
    write_pidfile(t, (long)pid);
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data,
                         "demo"), CLI_OK);
    {
        char path[PATH_MAX];

        join(path, t->data, "run/mamorid.pid");
        assert_int_equal(util_write_file_atomic(path, "-1\n", 3, 0644), 0);
    }
    assert_int_equal(RUN(NULL, "terminal", "revoke", "-d", t->data,
                         "--fingerprint", "00000000000000000000000000000000"
                         "00000000000000000000000000000000"), CLI_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_refuses_nonempty, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_init_bad_arguments, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_terminal_issue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminal_csr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminal_revoke, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_revoke_list_as_daemon_reads_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_signals_daemon, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_R6_2_revoke_uses_configured_list,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
