/*
 * cmd_terminal.c - `mamori terminal`: issue, make CSRs for, list and
 * revoke terminal (client) certificates (R6.2).
 *
 * A terminal is a registered internal workstation.  Its certificate is
 * issued by the terminal CA in DIR/pki; revoking it adds the SHA-256
 * fingerprint of its DER to the list DIR/mamorid.conf names
 * (internal.revocation_list; DIR/revocation/terminals.txt when DIR has
 * no mamorid.conf) and tells a running mamorid to reload that file, so
 * the revocation takes effect at once.
 *
 * terminals.txt format: one entry per line, 64 lower-case hex
 * characters, optionally followed by whitespace and "# comment"; blank
 * lines and lines starting with '#' are ignored.  It is read here with
 * the daemon's own parser (tls/revoke.h), so `list` shows what mamorid
 * enforces and `revoke` never extends a list mamorid would refuse.
 * `mamori tenant erase` revokes the erased tenant's terminals through
 * the same code (cli_revlist_add).
 */
#include "cli/cli.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "config/config.h"
#include "tls/revoke.h"

#define TERMINAL_NAME_MAX 64
#define TERMINALS_MAX     100000        /* listing refuses more */
/* The daemon reads at most this much of the list (revoke_set_load). */
#define REVLIST_MAX       ((size_t)REVOKE_MAX_ENTRIES * 100)
#define REASON_MAX        200

enum { OPT_DAYS = 256, OPT_CSR, OPT_OUT_KEY, OPT_OUT_CSR, OPT_FINGERPRINT,
       OPT_CERT, OPT_REASON };

bool
cli_terminal_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > TERMINAL_NAME_MAX || name[0] == '.' || name[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';

        if (!ok)
            return false;
    }
    return true;
}

/* dir/terminals/<name><ext> */
static int
terminal_path(char *out, size_t outsz, const char *dir, const char *name,
              const char *ext)
{
    int n = snprintf(out, outsz, "%s/terminals/%s%s", dir, name, ext);

    if (n < 0 || (size_t)n >= outsz) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static bool
path_taken(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 || errno != ENOENT;
}

/* Create one file of a terminal, owned like terminals/ itself.  A file
 * this call created but could not hand over is removed again. */
static int
terminal_file(const char *who, const char *path, const char *pem,
              unsigned mode)
{
    if (cli_write_new(path, pem, strlen(pem), mode) != 0) {
        cli_err(who, "cannot create %s", path);
        return -1;
    }
    if (cli_own_like_parent(path) != 0) {
        cli_err(who, "cannot set the owner of %s", path);
        unlink(path);
        return -1;
    }
    return 0;
}

/* Write NAME.key (if any) then NAME.crt; a key without its certificate
 * is removed again so a retry starts clean. */
static int
terminal_store(const char *who, const char *crtpath, const char *keypath,
               const char *cert, const char *key)
{
    if (key != NULL && terminal_file(who, keypath, key, 0600) != 0)
        return -1;
    if (terminal_file(who, crtpath, cert, 0644) != 0) {
        if (key != NULL)
            unlink(keypath);
        return -1;
    }
    return 0;
}

int
cli_terminal_make(const char *who, const char *dir, const char *name,
                  const char *cn, const char *csr_pem, unsigned days,
                  const struct pki_issuer *ca, char fp[PKI_FP_HEX_LEN + 1])
{
    char crtpath[PATH_MAX], keypath[PATH_MAX];
    struct pki_spec spec;
    char *cert = NULL, *key = NULL;
    time_t now = time(NULL);
    int ret = -1;

    if (terminal_path(crtpath, sizeof(crtpath), dir, name, ".crt") != 0 ||
        terminal_path(keypath, sizeof(keypath), dir, name, ".key") != 0) {
        cli_errx(who, "path too long under %s", dir);
        return -1;
    }
    /* R6.2: one name, one certificate; never replace a terminal's. */
    if (path_taken(crtpath) || (csr_pem == NULL && path_taken(keypath))) {
        cli_errx(who, "terminal %s already exists in %s/terminals; "
                 "not overwriting", name, dir);
        return -1;
    }
    memset(&spec, 0, sizeof(spec));
    spec.kind = PKI_KIND_CLIENT;
    spec.common_name = cn;
    spec.not_before = now - CLI_BACKDATE_SECS;
    spec.not_after = now + (time_t)days * 86400;
    if (csr_pem != NULL) {
        if (pki_sign_csr(csr_pem, &spec, ca, &cert) != 0) {
            cli_errx(who, "cannot sign the CSR: it is malformed, its "
                     "signature does not verify or its key is too weak "
                     "(or the terminal CA in %s/pki is unusable)", dir);
            return -1;
        }
    } else if (pki_issue(&spec, ca, &cert, &key) != 0) {
        cli_errx(who, "cannot issue a certificate with the terminal CA "
                 "in %s/pki", dir);
        return -1;
    }
    if (pki_fingerprint_hex(cert, fp) != 0)
        cli_errx(who, "cannot fingerprint the new certificate");
    else if (terminal_store(who, crtpath, keypath, cert, key) == 0)
        ret = 0;
    free(cert);
    pki_free_secret(key);
    return ret;
}

/* ---- mamori terminal issue ---- */

static int
terminal_issue(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir",  required_argument, NULL, 'd' },
        { "days", required_argument, NULL, OPT_DAYS },
        { "csr",  required_argument, NULL, OPT_CSR },
        { "help", no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *who = "terminal issue", *dir = NULL, *csrfile = NULL;
    char *csr = NULL;
    struct cli_ca ca;
    struct pki_issuer issuer;
    uint64_t days = CLI_LEAF_DAYS;
    int ch, ret = CLI_FAIL;

    cli_getopt_reset();
    while ((ch = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case OPT_DAYS:
            if (util_parse_u64(optarg, 1, CLI_MAX_DAYS, &days) != 0) {
                cli_errx(who, "--days must be a whole number from 1 to %u",
                         CLI_MAX_DAYS);
                return CLI_USAGE;
            }
            break;
        case OPT_CSR:
            csrfile = optarg;
            break;
        case 'h':
            cli_usage("terminal issue -d DIR [--days N] [--csr FILE] NAME");
            return CLI_OK;
        default:
            cli_bad_option(who, argv);
            return CLI_USAGE;
        }
    }
    if (dir == NULL || argc - optind != 1) {
        cli_usage("terminal issue -d DIR [--days N] [--csr FILE] NAME");
        return CLI_USAGE;
    }
    if (!cli_terminal_name_ok(argv[optind])) {
        cli_errx(who, "NAME must be 1-64 of A-Z a-z 0-9 . _ - and not "
                 "start with '.' or '-'");
        return CLI_USAGE;
    }
    if (csrfile != NULL && cli_read_pem(csrfile, &csr) != 0) {
        cli_err(who, "cannot read %s", csrfile);
        return CLI_FAIL;
    }
    if (cli_ca_load(who, dir, "pki/terminal-ca", &ca) == 0) {
        char fp[PKI_FP_HEX_LEN + 1];

        issuer.cert_pem = ca.cert_pem;
        issuer.key_pem = ca.key_pem;
        if (cli_terminal_make(who, dir, argv[optind], argv[optind], csr,
                              (unsigned)days, &issuer, fp) == 0) {
            printf("issued %s/terminals/%s.crt%s\n", dir, argv[optind],
                   csr == NULL ? " and its key (.key, mode 0600)" : "");
            printf("fingerprint (SHA-256): %s\n", fp);
            ret = CLI_OK;
        }
    }
    cli_ca_free(&ca);
    free(csr);
    return ret;
}

/* ---- mamori terminal csr ---- */

static int
terminal_csr(int argc, char **argv)
{
    static const struct option opts[] = {
        { "out-key", required_argument, NULL, OPT_OUT_KEY },
        { "out-csr", required_argument, NULL, OPT_OUT_CSR },
        { "help",    no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *who = "terminal csr", *keyfile = NULL, *csrfile = NULL;
    char *csr = NULL, *key = NULL;
    int ch, ret = CLI_FAIL;

    cli_getopt_reset();
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_OUT_KEY:
            keyfile = optarg;
            break;
        case OPT_OUT_CSR:
            csrfile = optarg;
            break;
        case 'h':
            cli_usage("terminal csr --out-key KEY --out-csr CSR NAME");
            return CLI_OK;
        default:
            cli_bad_option(who, argv);
            return CLI_USAGE;
        }
    }
    if (keyfile == NULL || csrfile == NULL || argc - optind != 1) {
        cli_usage("terminal csr --out-key KEY --out-csr CSR NAME");
        return CLI_USAGE;
    }
    if (!cli_terminal_name_ok(argv[optind])) {
        cli_errx(who, "NAME must be 1-64 of A-Z a-z 0-9 . _ - and not "
                 "start with '.' or '-'");
        return CLI_USAGE;
    }
    if (pki_make_csr(argv[optind], &csr, &key) != 0) {
        cli_errx(who, "cannot make a key and CSR");
        return CLI_FAIL;
    }
    if (cli_write_new(keyfile, key, strlen(key), 0600) != 0) {
        cli_err(who, "cannot create %s", keyfile);
    } else if (cli_write_new(csrfile, csr, strlen(csr), 0644) != 0) {
        cli_err(who, "cannot create %s", csrfile);
        unlink(keyfile);
    } else {
        printf("wrote %s (private key, mode 0600; keep it on this "
               "terminal) and %s\n", keyfile, csrfile);
        printf("next, on the server: mamori terminal issue -d DIR "
               "--csr %s %s\n", csrfile, argv[optind]);
        ret = CLI_OK;
    }
    free(csr);
    pki_free_secret(key);
    return ret;
}

/* ---- the revocation list ---- */

/* DIR/mamorid.conf, loaded once per command into a static (the struct
 * is large).  Returns 1 and sets *cfg when DIR has one, 0 when it has
 * none, -1 (reported) when it exists but does not load. */
static int
dir_config(const char *who, const char *dir, const struct mamori_config **cfg)
{
    static struct mamori_config conf;
    char path[PATH_MAX], err[512];
    struct stat st;

    *cfg = NULL;
    if (util_path_join(path, sizeof(path), dir, "mamorid.conf") != 0) {
        cli_errx(who, "path too long: %s", dir);
        return -1;
    }
    if (lstat(path, &st) != 0 && errno == ENOENT)
        return 0;
    if (config_load(path, &conf, err, sizeof(err)) != 0) {
        cli_errx(who, "%s", err);
        return -1;
    }
    *cfg = &conf;
    return 1;
}

/* R6.2: the list mamorid enforces is the one DIR/mamorid.conf names
 * (internal.revocation_list, which `mamori tenant erase` writes too);
 * DIR/revocation/terminals.txt only when DIR has no mamorid.conf.  A
 * mamorid.conf that does not load is an error rather than a fallback:
 * a revocation written where mamorid does not look would not take
 * effect, and `list` would show the wrong verdicts. */
static int
revlist_path(const char *who, const char *dir, char *out, size_t outsz)
{
    const struct mamori_config *cfg;
    int rc = dir_config(who, dir, &cfg);

    if (rc < 0)
        return -1;
    if ((rc > 0 ? util_strcpy(out, outsz, cfg->revocation_list)
                : util_path_join(out, outsz, dir,
                                 "revocation/terminals.txt")) != 0) {
        cli_errx(who, "path too long: %s", dir);
        return -1;
    }
    return 0;
}

/* Read and parse the list as mamorid does; a missing file is an empty
 * list (text "").  A line mamorid would refuse is an error here too.
 * The caller frees *text and revoke_set_free()s *set. */
static int
revlist_load(const char *who, const char *path, char **text, size_t *len,
             struct revoke_set **set)
{
    unsigned bad = 0;

    if (util_read_file(path, REVLIST_MAX, text, len) != 0) {
        if (errno != ENOENT) {
            cli_err(who, "cannot read %s", path);
            return -1;
        }
        if ((*text = strdup("")) == NULL) {
            cli_err(who, "out of memory");
            return -1;
        }
        *len = 0;
    }
    if (revoke_set_parse(*text, *len, set, &bad) != 0) {
        if (bad > 0)
            cli_errx(who, "%s line %u is not a fingerprint, a comment or "
                     "blank, so mamorid refuses the whole list; fix it "
                     "first", path, bad);
        else
            cli_err(who, "cannot parse %s", path);
        free(*text);
        *text = NULL;
        return -1;
    }
    return 0;
}

static bool
revlist_has(const struct revoke_set *set, const char *hex)
{
    uint8_t fp[PKI_FP_LEN];

    return util_hex_decode(hex, fp, sizeof(fp)) == 0 &&
           revoke_set_contains(set, fp);
}

/* ---- mamori terminal list ---- */

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The NAME of every dir/terminals/NAME.crt, sorted. */
static int
terminal_names(const char *who, const char *dir, char ***out, size_t *count)
{
    char path[PATH_MAX], **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    DIR *d;

    if (util_path_join(path, sizeof(path), dir, "terminals") != 0 ||
        (d = opendir(path)) == NULL) {
        cli_err(who, "cannot open %s/terminals", dir);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char stem[NAME_MAX + 1];

        if (len <= 4 || strcmp(de->d_name + len - 4, ".crt") != 0)
            continue;
        memcpy(stem, de->d_name, len - 4);
        stem[len - 4] = '\0';
        if (!cli_terminal_name_ok(stem))
            continue;
        if (n == cap) {
            char **grown;

            cap = cap ? cap * 2 : 16;
            if (cap > TERMINALS_MAX ||
                (grown = realloc(names, cap * sizeof(*names))) == NULL)
                goto fail;
            names = grown;
        }
        if ((names[n] = strdup(stem)) == NULL)
            goto fail;
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), name_cmp);
    *out = names;
    *count = n;
    return 0;
fail:
    cli_errx(who, "too many terminals or out of memory");
    closedir(d);
    names_free(names, n);
    return -1;
}

/* One line of the listing; -1 if the certificate cannot be read. */
static int
terminal_show(const char *dir, const char *name,
              const struct revoke_set *revoked, int width)
{
    char path[PATH_MAX], fp[PKI_FP_HEX_LEN + 1], when[21], *pem = NULL;
    struct pki_cert_info info;
    int ok;

    ok = terminal_path(path, sizeof(path), dir, name, ".crt") == 0 &&
         cli_read_pem(path, &pem) == 0 &&
         pki_fingerprint_hex(pem, fp) == 0 &&
         pki_cert_info(pem, &info) == 0;
    free(pem);
    if (!ok) {
        printf("%-*s  %-*s  %-20s  %s\n", width, name, PKI_FP_HEX_LEN, "-",
               "-", "unreadable");
        return -1;
    }
    cli_iso8601(info.not_after, when);
    printf("%-*s  %s  %-20s  %s\n", width, name, fp, when,
           revlist_has(revoked, fp) ? "revoked" : "active");
    return 0;
}

static int
terminal_list(int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir",  required_argument, NULL, 'd' },
        { "help", no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *who = "terminal list", *dir = NULL;
    char path[PATH_MAX], *text = NULL, **names = NULL;
    struct revoke_set *revoked = NULL;
    size_t len, n = 0;
    int ch, width = 4, ret = CLI_OK;

    cli_getopt_reset();
    while ((ch = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case 'h':
            cli_usage("terminal list -d DIR");
            return CLI_OK;
        default:
            cli_bad_option(who, argv);
            return CLI_USAGE;
        }
    }
    if (dir == NULL || argc != optind) {
        cli_usage("terminal list -d DIR");
        return CLI_USAGE;
    }
    if (revlist_path(who, dir, path, sizeof(path)) != 0 ||
        revlist_load(who, path, &text, &len, &revoked) != 0)
        return CLI_FAIL;
    free(text);
    if (terminal_names(who, dir, &names, &n) != 0) {
        revoke_set_free(revoked);
        return CLI_FAIL;
    }
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(names[i]) > width)
            width = (int)strlen(names[i]);
    printf("%-*s  %-*s  %-20s  %s\n", width, "NAME", PKI_FP_HEX_LEN,
           "FINGERPRINT (SHA-256)", "NOT-AFTER (UTC)", "STATUS");
    for (size_t i = 0; i < n; i++)
        if (terminal_show(dir, names[i], revoked, width) != 0)
            ret = CLI_FAIL;
    names_free(names, n);
    revoke_set_free(revoked);
    return ret;
}

/* ---- mamori terminal revoke ---- */

struct revoke_opts {
    const char *dir;
    const char *fingerprint;
    const char *cert;
    const char *name;
    const char *reason;
};

static bool
reason_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > REASON_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    return true;
}

static int
revoke_parse(int argc, char **argv, struct revoke_opts *o)
{
    static const struct option opts[] = {
        { "dir",         required_argument, NULL, 'd' },
        { "fingerprint", required_argument, NULL, OPT_FINGERPRINT },
        { "cert",        required_argument, NULL, OPT_CERT },
        { "reason",      required_argument, NULL, OPT_REASON },
        { "help",        no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *who = "terminal revoke";
    int ch, given;

    memset(o, 0, sizeof(*o));
    cli_getopt_reset();
    while ((ch = getopt_long(argc, argv, "d:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':               o->dir = optarg;          break;
        case OPT_FINGERPRINT:   o->fingerprint = optarg;  break;
        case OPT_CERT:          o->cert = optarg;         break;
        case OPT_REASON:        o->reason = optarg;       break;
        case 'h':
            cli_usage(strrchr(CMD_TERMINAL_SYNOPSIS, '\n') + 1);
            return CLI_OK;
        default:
            cli_bad_option(who, argv);
            return CLI_USAGE;
        }
    }
    if (argc - optind == 1)
        o->name = argv[optind];
    given = (o->fingerprint != NULL) + (o->cert != NULL) + (o->name != NULL);
    if (o->dir == NULL || argc - optind > 1 || given != 1) {
        cli_usage(strrchr(CMD_TERMINAL_SYNOPSIS, '\n') + 1);
        return CLI_USAGE;
    }
    if (o->reason != NULL && !reason_ok(o->reason)) {
        cli_errx(who, "--reason must be 1-%d printable ASCII characters",
                 REASON_MAX);
        return CLI_USAGE;
    }
    if (o->name != NULL && !cli_terminal_name_ok(o->name)) {
        cli_errx(who, "NAME must be 1-64 of A-Z a-z 0-9 . _ - and not "
                 "start with '.' or '-'");
        return CLI_USAGE;
    }
    return -1;                          /* parsed; carry on */
}

/* The fingerprint to revoke, from whichever of the three forms was given. */
static int
revoke_target(const char *who, const struct revoke_opts *o,
              char fp[PKI_FP_HEX_LEN + 1])
{
    char path[PATH_MAX], *pem = NULL;
    int rc;

    if (o->fingerprint != NULL) {
        uint8_t raw[PKI_FP_LEN];

        /* Either case in, canonical lower case out. */
        if (util_hex_decode(o->fingerprint, raw, sizeof(raw)) != 0 ||
            util_hex_encode(raw, sizeof(raw), fp, PKI_FP_HEX_LEN + 1) != 0) {
            cli_errx(who, "--fingerprint must be 64 hex characters "
                     "(SHA-256 of the certificate)");
            return -1;
        }
        return 0;
    }
    if (o->cert != NULL)
        rc = util_strcpy(path, sizeof(path), o->cert);
    else
        rc = terminal_path(path, sizeof(path), o->dir, o->name, ".crt");
    if (rc != 0 || cli_read_pem(path, &pem) != 0) {
        cli_err(who, "cannot read %s", rc != 0 ? "the certificate" : path);
        return -1;
    }
    rc = pki_fingerprint_hex(pem, fp);
    free(pem);
    if (rc != 0)
        cli_errx(who, "%s is not a PEM certificate", path);
    return rc;
}

/* One entry line for fp (raw) into line[]; its length or -1. */
static int
revlist_line(char *line, size_t linesz, const uint8_t fp[PKI_FP_LEN],
             const char *when, const char *reason)
{
    char hex[PKI_FP_HEX_LEN + 1];
    int n;

    if (util_hex_encode(fp, PKI_FP_LEN, hex, sizeof(hex)) != 0)
        return -1;
    n = snprintf(line, linesz, "%s # revoked %s%s%s\n", hex, when,
                 reason != NULL ? ": " : "", reason != NULL ? reason : "");
    return n < 0 || (size_t)n >= linesz ? -1 : n;
}

static int
fp_cmp(const void *a, const void *b)
{
    return memcmp(a, b, PKI_FP_LEN);
}

/* The new list: the old bytes, a newline if the last line lacked one
 * (and something is added), then one entry line per fingerprint of fps
 * (n, no duplicates) not in `old_set`.  Returns a malloc'd buffer or NULL
 * (out of memory, or more entries than mamorid takes); *added counts the
 * lines appended. */
static char *
revlist_append(const char *old, size_t oldlen, const struct revoke_set *old_set,
               const uint8_t *fps, size_t n, const char *reason,
               size_t *newlen, size_t *added)
{
    enum { LINE_MAX_LEN = PKI_FP_HEX_LEN + REASON_MAX + 64 };
    char when[21], *buf;
    size_t len = oldlen, fresh = 0;

    /* Count first: memory in proportion to what is added, and never a
     * list longer than mamorid takes. */
    for (size_t i = 0; i < n; i++)
        fresh += !revoke_set_contains(old_set, fps + i * PKI_FP_LEN);
    *added = 0;
    if (revoke_set_count(old_set) + fresh > REVOKE_MAX_ENTRIES ||
        (buf = malloc(oldlen + 1 + fresh * LINE_MAX_LEN + 1)) == NULL)
        return NULL;
    memcpy(buf, old, oldlen);
    if (oldlen > 0 && fresh > 0 && old[oldlen - 1] != '\n')
        buf[len++] = '\n';
    cli_iso8601(time(NULL), when);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *fp = fps + i * PKI_FP_LEN;
        int w;

        if (revoke_set_contains(old_set, fp))
            continue;
        w = revlist_line(buf + len, LINE_MAX_LEN + 1, fp, when, reason);
        if (w < 0) {
            free(buf);
            return NULL;
        }
        len += (size_t)w;
        (*added)++;
    }
    buf[len] = '\0';
    *newlen = len;
    return buf;
}

/* Write the list back with the old file's mode and owner (root may run
 * this on a tree owned by the daemon's user). */
static int
revlist_write(const char *who, const char *path, const char *buf, size_t len,
              const struct stat *old)
{
    unsigned mode = old != NULL ? (unsigned)(old->st_mode & 07777) : 0644;

    if (util_write_file_atomic(path, buf, len, mode) != 0) {
        cli_err(who, "cannot write %s", path);
        return -1;
    }
    if (old != NULL && geteuid() == 0 &&
        lchown(path, old->st_uid, old->st_gid) != 0) {
        cli_err(who, "cannot restore the owner of %s", path);
        return -1;
    }
    return 0;
}

/* R6.2: tell a running daemon to reload the list now: the pid file the
 * data directory's mamorid.conf names (DIR/run/mamorid.pid when there is
 * no readable configuration).  Returns -1 only when a running mamorid
 * could not be told. */
static int
revoke_notify(const char *who, const char *dir)
{
    const struct mamori_config *cfg;
    char path[PATH_MAX];

    if (dir_config(who, dir, &cfg) > 0)
        return cli_daemon_reload(who, cfg->pidfile, "the list");
    if (util_path_join(path, sizeof(path), dir, "run/mamorid.pid") != 0)
        return -1;
    return cli_daemon_reload(who, path, "the list");
}

/* Lock the directory that holds `path` (exclusive); the fd or -1. */
static int
revlist_lock(const char *who, const char *path)
{
    char dir[PATH_MAX];
    char *slash;
    int fd;

    if (util_strcpy(dir, sizeof(dir), path) != 0) {
        cli_errx(who, "path too long: %s", path);
        return -1;
    }
    slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        cli_err(who, "cannot lock %s", dir);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* The new list must read back as mamorid reads it, with every entry
 * added: a list it would refuse is never written (R6.2). */
static int
revlist_check(const char *who, const char *path, const char *buf, size_t len,
              size_t want)
{
    struct revoke_set *set = NULL;
    unsigned bad = 0;
    size_t got;

    if (len > REVLIST_MAX || revoke_set_parse(buf, len, &set, &bad) != 0) {
        cli_errx(who, "%s would not read back as mamorid reads it (too "
                 "long: at most %u entries; or out of memory); nothing "
                 "written", path, REVOKE_MAX_ENTRIES);
        return -1;
    }
    got = revoke_set_count(set);
    revoke_set_free(set);
    if (got != want) {
        cli_errx(who, "%s would not hold every entry; nothing written", path);
        return -1;
    }
    return 0;
}

int
cli_revlist_add(const char *who, const char *path, const uint8_t *fps,
                size_t n, const char *reason, size_t *added)
{
    char *old = NULL, *buf = NULL;
    uint8_t *sorted = NULL;
    struct revoke_set *revoked = NULL;
    struct stat st;
    size_t oldlen, len, uniq = 0;
    int lockfd, ret = -1;

    *added = 0;
    if (reason != NULL && !reason_ok(reason)) {
        cli_errx(who, "a revocation reason must be 1-%d printable ASCII "
                 "characters", REASON_MAX);
        return -1;
    }
    /* Sorted and without duplicates, so a fingerprint given twice makes
     * one line. */
    if (n > 0) {
        if (n > REVOKE_MAX_ENTRIES ||
            (sorted = malloc(n * PKI_FP_LEN)) == NULL) {
            cli_errx(who, "too many fingerprints or out of memory");
            return -1;
        }
        memcpy(sorted, fps, n * PKI_FP_LEN);
        qsort(sorted, n, PKI_FP_LEN, fp_cmp);
        for (size_t i = 0; i < n; i++)
            if (uniq == 0 || memcmp(sorted + (uniq - 1) * PKI_FP_LEN,
                                    sorted + i * PKI_FP_LEN, PKI_FP_LEN) != 0)
                memmove(sorted + uniq++ * PKI_FP_LEN, sorted + i * PKI_FP_LEN,
                        PKI_FP_LEN);
    }
    /* Under an exclusive lock on the list's directory, so two concurrent
     * revocations cannot lose one another's line. */
    if ((lockfd = revlist_lock(who, path)) < 0) {
        free(sorted);
        return -1;
    }
    if (revlist_load(who, path, &old, &oldlen, &revoked) != 0)
        goto out;
    buf = revlist_append(old, oldlen, revoked, sorted, uniq, reason, &len,
                         added);
    if (buf == NULL) {
        cli_errx(who, "%s cannot take %zu more entries (at most %u) or out "
                 "of memory; nothing written", path, uniq, REVOKE_MAX_ENTRIES);
        goto out;
    }
    if (*added == 0) {
        ret = 0;                        /* all there already: no write */
        goto out;
    }
    if (revlist_check(who, path, buf, len,
                      revoke_set_count(revoked) + *added) == 0 &&
        revlist_write(who, path, buf, len,
                      lstat(path, &st) == 0 ? &st : NULL) == 0)
        ret = 0;
out:
    if (ret != 0)
        *added = 0;
    revoke_set_free(revoked);
    free(old);
    free(buf);
    free(sorted);
    close(lockfd);                      /* releases the lock */
    return ret;
}

static int
terminal_revoke(int argc, char **argv)
{
    const char *who = "terminal revoke";
    struct revoke_opts o;
    char fp[PKI_FP_HEX_LEN + 1], path[PATH_MAX];
    uint8_t raw[PKI_FP_LEN];
    size_t added;
    int rc;

    if ((rc = revoke_parse(argc, argv, &o)) >= 0)
        return rc;
    if (revoke_target(who, &o, fp) != 0)
        return CLI_FAIL;
    if (revlist_path(who, o.dir, path, sizeof(path)) != 0)
        return CLI_FAIL;
    if (util_hex_decode(fp, raw, sizeof(raw)) != 0) {
        cli_errx(who, "bad fingerprint: %s", fp);
        return CLI_FAIL;
    }
    if (cli_revlist_add(who, path, raw, 1, o.reason, &added) != 0)
        return CLI_FAIL;
    if (added == 0) {
        printf("%s is already revoked; nothing changed\n", fp);
        return CLI_OK;
    }
    printf("revoked %s in %s\n", fp, path);
    return revoke_notify(who, o.dir) == 0 ? CLI_OK : CLI_FAIL;
}

/* ---- dispatch ---- */

static const struct {
    const char *name;
    int (*run)(int, char **);
} terminal_cmds[] = {
    { "issue",  terminal_issue },
    { "csr",    terminal_csr },
    { "list",   terminal_list },
    { "revoke", terminal_revoke },
};

int
cmd_terminal(int argc, char **argv)
{
    if (argc < 2) {
        cli_usage(CMD_TERMINAL_SYNOPSIS);
        return CLI_USAGE;
    }
    for (size_t i = 0; i < sizeof(terminal_cmds) / sizeof(terminal_cmds[0]);
         i++)
        if (strcmp(argv[1], terminal_cmds[i].name) == 0)
            return terminal_cmds[i].run(argc - 1, argv + 1);
    cli_errx("terminal", "unknown subcommand \"%s\"", argv[1]);
    cli_usage(CMD_TERMINAL_SYNOPSIS);
    return CLI_USAGE;
}
