/*
 * cmd_init.c - `mamori init`: make a data directory with a development
 * PKI (R8.1 server certificate, R6.2 terminal CA and a demo terminal),
 * a master key (R1.4) and a mamorid.conf that uses them.
 *
 * Nothing is ever overwritten: DIR must be new or empty, and every file
 * is created with cli_write_new() (exact mode from the first byte, no
 * replacing, fsync'd).  A failure half way leaves DIR incomplete and
 * says so; the operator removes it and runs init again.
 */
#include "cli/cli.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "store/store.h"

#ifndef MAMORI_SOURCE_DATA_DIR
#error "MAMORI_SOURCE_DATA_DIR must be defined by the build"
#endif

#define WHO              "init"
#define INIT_USER        "mamori"
#define INIT_INTERNAL    "127.0.0.1:8443"
#define INIT_PUBLIC      "127.0.0.1:8444"
#define INIT_USER_MAX    32
#define INIT_HOST_MAX    INET6_ADDRSTRLEN
#define INIT_SAN_IPS     4              /* 127.0.0.1, ::1, two listeners */
#define MASTER_KEY_LEN   32
#define CONFIG_TEXT_MAX  (16u * 1024u)
#define LGCODE_CSV       "municipalities/municipalities_lgcode.csv"

enum { OPT_USER = 256, OPT_INTERNAL, OPT_PUBLIC };

struct init_opts {
    const char *user;
    const char *internal;
    const char *public_;
    const char *dir;
};

struct init_ctx {
    char  dir[PATH_MAX];                /* absolute, resolved */
    bool  as_root;
    uid_t uid;                          /* owner of the tree when as_root */
    gid_t gid;
    char  san_ips[INIT_SAN_IPS][INIT_HOST_MAX];
    const char *san_list[INIT_SAN_IPS + 1];
    char  demo_fp[PKI_FP_HEX_LEN + 1];
};

static const char revlist_header[] =
    "# terminals.txt - terminal certificates mamorid refuses (R6.2)\n"
    "#\n"
    "# One entry per line: the SHA-256 fingerprint of the terminal\n"
    "# certificate's DER encoding as 64 lower-case hex characters,\n"
    "# optionally followed by whitespace and a \"# comment\".  Blank lines\n"
    "# and lines starting with '#' are ignored.\n"
    "#\n"
    "# Add entries with `mamori terminal revoke`, which also sends SIGHUP\n"
    "# to a running mamorid so the revocation takes effect at once.\n";

static int
init_parse(int argc, char **argv, struct init_opts *o)
{
    static const struct option opts[] = {
        { "user",            required_argument, NULL, OPT_USER },
        { "internal-listen", required_argument, NULL, OPT_INTERNAL },
        { "public-listen",   required_argument, NULL, OPT_PUBLIC },
        { "help",            no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int ch;

    o->user = INIT_USER;
    o->internal = INIT_INTERNAL;
    o->public_ = INIT_PUBLIC;
    o->dir = NULL;
    cli_getopt_reset();
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case OPT_USER:      o->user = optarg;       break;
        case OPT_INTERNAL:  o->internal = optarg;   break;
        case OPT_PUBLIC:    o->public_ = optarg;    break;
        case 'h':
            cli_usage(CMD_INIT_SYNOPSIS);
            return CLI_OK;
        default:
            cli_bad_option(WHO, argv);
            return CLI_USAGE;
        }
    }
    if (argc - optind != 1) {
        cli_usage(CMD_INIT_SYNOPSIS);
        return CLI_USAGE;
    }
    o->dir = argv[optind];
    return -1;                          /* parsed; carry on */
}

/* A portable user name ([a-z_][a-z0-9_-]*): it goes into the config. */
static bool
user_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > INIT_USER_MAX || (s[0] >= '0' && s[0] <= '9') ||
        s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* "a.b.c.d:port" or "[v6]:port" with a numeric host and port 0-65535.
 * The host, in canonical form, goes to `host`. */
static int
listen_parse(const char *s, char host[INIT_HOST_MAX])
{
    unsigned char bin[16];
    const char *start = s, *port;
    size_t hlen;
    uint64_t v;
    int af = AF_INET;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');

        if (end == NULL || end[1] != ':')
            return -1;
        af = AF_INET6;
        start = s + 1;
        hlen = (size_t)(end - start);
        port = end + 2;
    } else {
        const char *colon = strchr(s, ':');

        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
        port = colon + 1;
    }
    if (hlen == 0 || hlen >= INIT_HOST_MAX)
        return -1;
    memcpy(host, start, hlen);
    host[hlen] = '\0';
    if (inet_pton(af, host, bin) != 1 ||
        inet_ntop(af, bin, host, INIT_HOST_MAX) == NULL)
        return -1;
    return util_parse_u64(port, 0, 65535, &v);
}

/* Add a listener's address to the server certificate's IP SANs, unless
 * it is the wildcard address or already there. */
static void
san_add(struct init_ctx *c, const char *host)
{
    size_t n = 0;

    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        return;
    while (n < INIT_SAN_IPS && c->san_list[n] != NULL) {
        if (strcmp(c->san_list[n], host) == 0)
            return;
        n++;
    }
    if (n == INIT_SAN_IPS)
        return;
    snprintf(c->san_ips[n], sizeof(c->san_ips[n]), "%s", host);
    c->san_list[n] = c->san_ips[n];
    c->san_list[n + 1] = NULL;
}

static int
init_check(const struct init_opts *o, struct init_ctx *c)
{
    char host[INIT_HOST_MAX];

    if (!user_ok(o->user)) {
        cli_errx(WHO, "--user must be a user name like \"mamori\" "
                 "(a-z, 0-9, _ and -; at most %d characters)", INIT_USER_MAX);
        return -1;
    }
    san_add(c, "127.0.0.1");
    san_add(c, "::1");
    if (listen_parse(o->internal, host) != 0) {
        cli_errx(WHO, "--internal-listen must be IPV4:PORT or [IPV6]:PORT "
                 "with a numeric address, not \"%s\"", o->internal);
        return -1;
    }
    san_add(c, host);
    if (listen_parse(o->public_, host) != 0) {
        cli_errx(WHO, "--public-listen must be IPV4:PORT or [IPV6]:PORT "
                 "with a numeric address, not \"%s\"", o->public_);
        return -1;
    }
    san_add(c, host);
    return 0;
}

/* Root hands the tree to the daemon's user, which must already exist
 * (the install script creates it); nobody else can chown. */
static int
init_owner(const struct init_opts *o, struct init_ctx *c)
{
    struct passwd *pw;

    c->as_root = geteuid() == 0;
    if (!c->as_root)
        return 0;
    errno = 0;
    if ((pw = getpwnam(o->user)) == NULL) {
        cli_errx(WHO, "user \"%s\" does not exist; create it first "
                 "(the install script makes a \"mamori\" system user) or "
                 "pass --user", o->user);
        return -1;
    }
    c->uid = pw->pw_uid;
    c->gid = pw->pw_gid;
    return 0;
}

static int
dir_is_empty(const char *path)
{
    struct dirent *de;
    DIR *d = opendir(path);
    int empty = 1;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

/* Create DIR, or accept an existing empty directory that is ours (or,
 * for root, already the daemon user's); then resolve it. */
static int
init_dir(const char *dir, struct init_ctx *c)
{
    struct stat st;

    if (mkdir(dir, 0700) != 0) {
        if (errno != EEXIST) {
            cli_err(WHO, "cannot create %s", dir);
            return -1;
        }
        if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            cli_errx(WHO, "%s already exists and is not a directory", dir);
            return -1;
        }
        if (dir_is_empty(dir) != 1) {
            cli_errx(WHO, "%s already exists and is not empty", dir);
            return -1;
        }
        if (st.st_uid != geteuid() && !(c->as_root && st.st_uid == c->uid)) {
            cli_errx(WHO, "%s belongs to another user", dir);
            return -1;
        }
    }
    if (chmod(dir, 0700) != 0 || realpath(dir, c->dir) == NULL) {
        cli_err(WHO, "cannot prepare %s", dir);
        return -1;
    }
    return 0;
}

static int
make_subdir(const struct init_ctx *c, const char *rel, mode_t mode)
{
    char path[PATH_MAX];

    if (util_path_join(path, sizeof(path), c->dir, rel) != 0 ||
        mkdir(path, 0700) != 0 || chmod(path, mode) != 0) {
        cli_err(WHO, "cannot create %s/%s", c->dir, rel);
        return -1;
    }
    return 0;
}

static int
make_file(const struct init_ctx *c, const char *rel, const void *data,
          size_t len, unsigned mode)
{
    char path[PATH_MAX];

    if (util_path_join(path, sizeof(path), c->dir, rel) != 0 ||
        cli_write_new(path, data, len, mode) != 0) {
        cli_err(WHO, "cannot create %s/%s", c->dir, rel);
        return -1;
    }
    return 0;
}

static int
make_dirs(const struct init_ctx *c)
{
    static const struct {
        const char *rel;
        mode_t      mode;
    } dirs[] = {
        { "pki", 0700 }, { "terminals", 0700 }, { "keys", 0700 },
        { "audit", 0700 }, { "db", 0700 },
        /* Its own directory: the parent may read only this one after
         * sandboxing (the list is replaced by rename, so the rule must
         * be on the directory, and pki/ holds private keys). */
        { "revocation", 0700 },
        { "run", 0755 },                /* pid and ports files: public */
    };

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        if (make_subdir(c, dirs[i].rel, dirs[i].mode) != 0)
            return -1;
    return 0;
}

/* Issue a certificate, write <base>.crt (0644) and <base>.key (0600),
 * and hand both PEMs back when the caller wants to sign with them. */
static int
make_pair(const struct init_ctx *c, const struct pki_spec *spec,
          const struct pki_issuer *issuer, const char *base,
          char **crt_out, char **key_out)
{
    char crtrel[64], keyrel[64], *crt = NULL, *key = NULL;
    int ret = -1;

    snprintf(crtrel, sizeof(crtrel), "%s.crt", base);
    snprintf(keyrel, sizeof(keyrel), "%s.key", base);
    if (pki_issue(spec, issuer, &crt, &key) != 0) {
        cli_errx(WHO, "cannot issue %s", crtrel);
        return -1;
    }
    if (make_file(c, keyrel, key, strlen(key), 0600) == 0 &&
        make_file(c, crtrel, crt, strlen(crt), 0644) == 0)
        ret = 0;
    if (ret == 0 && crt_out != NULL) {
        *crt_out = crt;
        *key_out = key;
        return 0;
    }
    free(crt);
    pki_free_secret(key);
    return ret;
}

static void
spec_init(struct pki_spec *spec, enum pki_kind kind, const char *cn,
          unsigned days)
{
    time_t now = time(NULL);

    memset(spec, 0, sizeof(*spec));
    spec->kind = kind;
    spec->common_name = cn;
    spec->organization = "mamori development PKI";
    spec->not_before = now - CLI_BACKDATE_SECS;
    spec->not_after = now + (time_t)days * 86400;
}

/* R8.1: the server CA and the certificate both listeners present. */
static int
make_server_pki(const struct init_ctx *c)
{
    static const char *const dns[] = { "localhost", NULL };
    struct pki_spec spec;
    struct pki_issuer ca;
    char *ca_crt = NULL, *ca_key = NULL;
    int ret;

    spec_init(&spec, PKI_KIND_CA, "mamori development server CA",
              CLI_CA_DAYS);
    if (make_pair(c, &spec, NULL, "pki/ca", &ca_crt, &ca_key) != 0)
        return -1;
    spec_init(&spec, PKI_KIND_SERVER, "localhost", CLI_LEAF_DAYS);
    spec.dns_names = dns;
    spec.ip_addrs = c->san_list;
    ca.cert_pem = ca_crt;
    ca.key_pem = ca_key;
    ret = make_pair(c, &spec, &ca, "pki/server", NULL, NULL);
    free(ca_crt);
    pki_free_secret(ca_key);
    return ret;
}

/* R6.2: the terminal CA, an empty revocation list and a demo terminal. */
static int
make_terminal_pki(struct init_ctx *c)
{
    struct pki_spec spec;
    struct pki_issuer ca;
    char *ca_crt = NULL, *ca_key = NULL;
    int ret = -1;

    spec_init(&spec, PKI_KIND_CA, "mamori development terminal CA",
              CLI_CA_DAYS);
    if (make_pair(c, &spec, NULL, "pki/terminal-ca", &ca_crt, &ca_key) != 0)
        return -1;
    ca.cert_pem = ca_crt;
    ca.key_pem = ca_key;
    if (make_file(c, "revocation/terminals.txt", revlist_header,
                  strlen(revlist_header), 0644) == 0 &&
        cli_terminal_make(WHO, c->dir, "demo", "demo-terminal", NULL,
                          CLI_LEAF_DAYS, &ca, c->demo_fp) == 0)
        ret = 0;
    free(ca_crt);
    pki_free_secret(ca_key);
    return ret;
}

/* R1.4: the root of the key hierarchy, raw bytes, readable by its owner
 * only (the key holder process). */
static int
make_master_key(const struct init_ctx *c)
{
    unsigned char key[MASTER_KEY_LEN];
    int ret;

    randombytes_buf(key, sizeof(key));
    ret = make_file(c, "keys/master.key", key, sizeof(key), 0600);
    util_wipe(key, sizeof(key));
    return ret;
}

/* The first shipped data directory that holds the municipality table. */
static const char *
refdata_dir(void)
{
    static const char *const dirs[] = {
#ifdef MAMORI_DATA_DIR
        MAMORI_DATA_DIR,
#endif
        MAMORI_SOURCE_DATA_DIR,
    };
    char path[PATH_MAX];

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        if (util_path_join(path, sizeof(path), dirs[i], LGCODE_CSV) == 0 &&
            access(path, R_OK) == 0)
            return dirs[i];
    return MAMORI_SOURCE_DATA_DIR;
}

/* A value the config parser reads back unchanged: printable, no '#'
 * (a comment), no surrounding blanks (trimmed). */
static bool
config_value_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || s[0] == ' ' || s[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '#')
            return false;
    return true;
}

static int
make_config(const struct init_ctx *c, const struct init_opts *o)
{
    const char *refdata = refdata_dir();
    char text[CONFIG_TEXT_MAX];
    int n;

    if (!config_value_ok(c->dir) || !config_value_ok(refdata)) {
        cli_errx(WHO, "%s cannot be written to mamorid.conf (control "
                 "character, '#' or surrounding space in the path)",
                 config_value_ok(c->dir) ? refdata : c->dir);
        return -1;
    }
    n = snprintf(text, sizeof(text),
        "# mamorid.conf - generated by `mamori init`; see mamorid.conf(5)\n"
        "datadir = %s\n"
        "user = %s\n"
        "\n# Processes and limits\n"
        "workers = 1\n"
        "threads = 2\n"
        "connection_timeout = 30\n"
        "drain_timeout = 10\n"
        "max_connections = 1024\n"
        "\n# Operational log (never personal data)\n"
        "log.target = stderr\n"
        "log.level = info\n"
        "\n# Files; relative paths are under datadir\n"
        "pidfile = run/mamorid.pid\n"
        "portsfile = run/ports.json\n"
        "refdata = %s\n"
        "\n# Internal (LG-WAN) listener: registered terminals only (R6.2, R8.1)\n"
        "internal.listen = %s\n"
        "internal.cert = pki/server.crt\n"
        "internal.key = pki/server.key\n"
        "internal.client_ca = pki/terminal-ca.crt\n"
        "internal.revocation_list = revocation/terminals.txt\n"
        "\n# Public listener: vaccination sites, residents; no individual "
        "numbers (R1.5)\n"
        "public.listen = %s\n"
        "public.cert = pki/server.crt\n"
        "public.key = pki/server.key\n"
        "\n# Keys, read by the key holder only (R1.4)\n"
        "keys.master = keys/master.key\n"
        "keys.dir = keys\n"
        "\n# Audit log, written by the audit writer only (R7.2)\n"
        "audit.dir = audit\n"
        "\n# Record store\n"
        "store.backend = sqlite\n"
        "store.path = db/mamori.sqlite\n",
        c->dir, o->user, refdata, o->internal, o->public_);
    if (n < 0 || (size_t)n >= sizeof(text)) {
        cli_errx(WHO, "mamorid.conf would be too long");
        return -1;
    }
    return make_file(c, "mamorid.conf", text, (size_t)n, 0600);
}

/* nftw() has no user pointer; init runs once per process at a time. */
static uid_t chown_uid;
static gid_t chown_gid;

static int
chown_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return lchown(path, chown_uid, chown_gid);
}

static int
init_chown(const struct init_ctx *c)
{
    if (!c->as_root)
        return 0;
    chown_uid = c->uid;
    chown_gid = c->gid;
    if (nftw(c->dir, chown_one, 16, FTW_PHYS) != 0) {
        cli_err(WHO, "cannot give %s to its user", c->dir);
        return -1;
    }
    return 0;
}

static void
init_summary(const struct init_ctx *c, const struct init_opts *o)
{
    printf("mamori init: created %s\n", c->dir);
    printf("  pki/ca.crt, ca.key                 development server CA "
           "(10 years)\n"
           "  pki/server.crt, server.key         server certificate for "
           "localhost and");
    for (size_t i = 0; c->san_list[i] != NULL; i++)
        printf(" %s", c->san_list[i]);
    printf(" (1 year)\n"
           "  pki/terminal-ca.crt, .key          terminal CA (10 years)\n"
           "  revocation/terminals.txt          terminal revocation list "
           "(empty)\n"
           "  terminals/demo.crt, demo.key       demo terminal "
           "\"demo-terminal\" (1 year)\n"
           "  keys/master.key                    master key (32 random "
           "bytes, mode 0600)\n"
           "  audit/ db/ run/                    audit log, store, run "
           "files\n"
           "  mamorid.conf                       user %s, internal %s, "
           "public %s\n", o->user, o->internal, o->public_);
    printf("demo terminal fingerprint (SHA-256): %s\n", c->demo_fp);
    printf("next: mamorid -f -c %s/mamorid.conf\n", c->dir);
}

/* The embedded store, created at the current schema so the daemon can
 * start at once (later schema changes go through `mamori migrate`). */
static int
make_store(const struct init_ctx *c)
{
    char path[PATH_MAX];
    struct store_config sc = { STORE_BACKEND_SQLITE, path, NULL, 1, 0 };
    struct store *st = NULL;
    enum store_status rc;

    if (util_path_join(path, sizeof(path), c->dir, "db/mamori.sqlite") != 0)
        return -1;
    rc = store_open(&sc, STORE_OPEN_MIGRATE, &st);
    if (rc == STORE_OK)
        rc = store_migrate(st, NULL, NULL);
    store_close(st);
    if (rc != STORE_OK) {
        cli_errx(WHO, "cannot create the SQLite store %s: %s", path, store_strerror(rc));
        return -1;
    }
    return 0;
}

int
cmd_init(int argc, char **argv)
{
    struct init_opts o;
    struct init_ctx c;
    int rc;

    if ((rc = init_parse(argc, argv, &o)) >= 0)
        return rc;
    memset(&c, 0, sizeof(c));
    if (init_check(&o, &c) != 0)
        return CLI_USAGE;
    if (init_owner(&o, &c) != 0)
        return CLI_FAIL;
    if (sodium_init() < 0) {
        cli_errx(WHO, "cannot initialise libsodium");
        return CLI_FAIL;
    }
    if (init_dir(o.dir, &c) != 0)
        return CLI_FAIL;
    if (make_dirs(&c) != 0 || make_server_pki(&c) != 0 ||
        make_terminal_pki(&c) != 0 || make_master_key(&c) != 0 ||
        make_config(&c, &o) != 0 || make_store(&c) != 0 || init_chown(&c) != 0) {
        cli_errx(WHO, "%s is incomplete; remove it and run mamori init "
                 "again", c.dir);
        return CLI_FAIL;
    }
    init_summary(&c, &o);
    return CLI_OK;
}
