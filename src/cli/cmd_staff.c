/*
 * cmd_staff.c - mamori staff: bootstrap a tenant's first administrator
 * and register terminals to a tenant (R3.5, R6.1, R6.7; docs/access.md).
 *
 *   staff enrol -c CONFIG --tenant CODE --user ID
 *       a pending tenant_admin account and its one-time enrolment secret;
 *       the person completes enrolment (password + TOTP) on a registered
 *       terminal: POST /v1/auth/enrol.  Only tenant_admin: the operator
 *       bootstraps a tenant's administration and nothing else (R1.3, R6.7);
 *       every other account is made by a tenant admin (POST /v1/staff).
 *   staff terminal-register -c CONFIG --tenant CODE --name NAME
 *                           (--cert FILE | --fingerprint HEX)
 *       bind a terminal certificate to a tenant: staff of that tenant may
 *       sign in only from its registered terminals.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/session.h"
#include "cli/cli.h"
#include "common/util.h"
#include "config/config.h"
#include "pki/pki.h"
#include "store/store_auth.h"

#define STAFF_ENROL_SYNOPSIS "staff enrol -c CONFIG --tenant CODE --user ID"
#define STAFF_TERMINAL_SYNOPSIS "staff terminal-register -c CONFIG --tenant CODE " \
    "--name NAME (--cert FILE | --fingerprint HEX)"

enum { OPT_TENANT = 256, OPT_USER, OPT_NAME, OPT_CERT, OPT_FP };

struct staff_opts {
    const char *config, *tenant, *user, *name, *cert, *fp;
};

static int
parse(int argc, char **argv, const char *who, const char *synopsis, struct staff_opts *o)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "tenant", required_argument, NULL, OPT_TENANT },
        { "user", required_argument, NULL, OPT_USER },
        { "name", required_argument, NULL, OPT_NAME },
        { "cert", required_argument, NULL, OPT_CERT },
        { "fingerprint", required_argument, NULL, OPT_FP },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int ch;

    memset(o, 0, sizeof(*o));
    cli_getopt_reset();
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': o->config = optarg; break;
        case OPT_TENANT: o->tenant = optarg; break;
        case OPT_USER: o->user = optarg; break;
        case OPT_NAME: o->name = optarg; break;
        case OPT_CERT: o->cert = optarg; break;
        case OPT_FP: o->fp = optarg; break;
        case 'h':
            cli_usage(synopsis);
            return 1;
        default:
            cli_bad_option(who, argv);
            return -1;
        }
    }
    if (o->config == NULL || o->tenant == NULL || optind != argc) {
        cli_usage(synopsis);
        return -1;
    }
    if (!tenant_id_valid(o->tenant)) {
        cli_errx(who, "--tenant must be a 6-digit local government code (check digit)");
        return -1;
    }
    return 0;
}

static int
open_store(const char *who, const char *config, struct mamori_config *cfg,
           struct store **st)
{
    char err[512];
    struct store_config sc;
    enum store_status rc;

    if (config_load(config, cfg, err, sizeof(err)) != 0) {
        cli_errx(who, "%s", err);
        return -1;
    }
    sc = (struct store_config){ .backend = cfg->store_backend, .path = cfg->store_path,
                                .conninfo = cfg->store_conninfo, .pool_size = 1 };
    if ((rc = store_open(&sc, 0, st)) != STORE_OK) {
        cli_errx(who, "cannot open the store: %s", store_strerror(rc));
        return -1;
    }
    return 0;
}

static const char *
create_error(enum store_status rc)
{
    switch (rc) {
    case STORE_EXISTS: return "already exists";
    case STORE_NOTFOUND: return "no such tenant (mamori tenant create first)";
    case STORE_DENIED: return "the tenant is not active";
    default: return store_strerror(rc);
    }
}

static int
staff_enrol(int argc, char **argv)
{
    const char *who = "staff enrol";
    struct staff_opts o;
    struct mamori_config cfg;
    struct store *st;
    char secret[SESSION_TOKEN_HEX + 1];
    uint8_t h[AUTH_HASH_LEN];
    int64_t now = (int64_t)time(NULL);
    enum store_status rc;
    int p = parse(argc, argv, who, STAFF_ENROL_SYNOPSIS, &o);

    if (p != 0)
        return p > 0 ? CLI_OK : CLI_USAGE;
    if (o.user == NULL || !store_staff_id_valid(o.user)) {
        cli_errx(who, "--user must be 1-32 of a-z 0-9 . _ - starting with a letter or digit");
        return CLI_USAGE;
    }
    if (open_store(who, o.config, &cfg, &st) != 0)
        return CLI_FAIL;
    auth_session_new(secret, h);    /* only the hash is stored */
    rc = store_staff_create(st, o.user, o.tenant, "tenant_admin", h,
                            now + cfg.auth_enrol_ttl, now);
    store_close(st);
    if (rc != STORE_OK) {
        cli_errx(who, "cannot create %s: %s", o.user, create_error(rc));
        util_wipe(secret, sizeof(secret));
        return CLI_FAIL;
    }
    printf("pending tenant_admin %s of tenant %s\n", o.user, o.tenant);
    printf("one-time enrolment secret (valid %u s; give it to the person only):\n%s\n",
           cfg.auth_enrol_ttl, secret);
    printf("complete on a registered terminal of the tenant: POST /v1/auth/enrol "
           "{\"secret\": \"...\", \"password\": \"...\"}\n");
    util_wipe(secret, sizeof(secret));
    return CLI_OK;
}

static int
staff_terminal_register(int argc, char **argv)
{
    const char *who = "staff terminal-register";
    struct staff_opts o;
    struct mamori_config cfg;
    struct store *st;
    uint8_t fp[32];
    char hex[65];
    enum store_status rc;
    int p = parse(argc, argv, who, STAFF_TERMINAL_SYNOPSIS, &o);

    if (p != 0)
        return p > 0 ? CLI_OK : CLI_USAGE;
    if (o.name == NULL || o.name[0] == '\0' || strlen(o.name) >= TERMINAL_NAME_MAX ||
        (o.cert == NULL) == (o.fp == NULL)) {
        cli_usage(STAFF_TERMINAL_SYNOPSIS);
        return CLI_USAGE;
    }
    if (o.fp != NULL && (strlen(o.fp) != 64 || util_hex_decode(o.fp, fp, sizeof(fp)) != 0)) {
        cli_errx(who, "--fingerprint must be 64 hex digits (SHA-256 of the certificate)");
        return CLI_USAGE;
    }
    if (o.cert != NULL) {
        char *pem = NULL;
        size_t len;
        int bad = util_read_file(o.cert, 256 * 1024, &pem, &len) != 0 ||
                  pki_fingerprint(pem, fp) != 0;
        free(pem);
        if (bad) {
            cli_errx(who, "cannot read a certificate from %s", o.cert);
            return CLI_FAIL;
        }
    }
    if (open_store(who, o.config, &cfg, &st) != 0)
        return CLI_FAIL;
    rc = store_terminal_register(st, o.tenant, fp, o.name);
    store_close(st);
    if (rc != STORE_OK) {
        cli_errx(who, "cannot register the terminal: %s", create_error(rc));
        return CLI_FAIL;
    }
    if (util_hex_encode(fp, sizeof(fp), hex, sizeof(hex)) != 0)
        return CLI_FAIL;
    printf("terminal %s (%s) registered to tenant %s\n", o.name, hex, o.tenant);
    return CLI_OK;
}

int
cmd_staff(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "enrol") == 0)
        return staff_enrol(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "terminal-register") == 0)
        return staff_terminal_register(argc - 1, argv + 1);
    if (argc >= 2)
        cli_errx("staff", "unknown subcommand \"%s\"", argv[1]);
    cli_usage(CMD_STAFF_SYNOPSIS);
    return CLI_USAGE;
}
