/*
 * cmd_audit.c - mamori audit {verify,query,review} (R7.2, R7.3, R7.5) and
 * the offline event path of the operator tool (R7.7).
 */
#include <getopt.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/event.h"
#include "audit/query.h"
#include "audit/writer.h"
#include "cli/cli.h"
#include "config/config.h"
#include "text/csvcell.h"

#ifndef CLI_DEFAULT_CONFIG          /* cli.h gains it with the store commands */
#define CLI_DEFAULT_CONFIG "/etc/mamori/mamorid.conf"
#endif

static struct mamori_config *
load_config(const char *who, const char *path)
{
    struct mamori_config *cfg = malloc(sizeof(*cfg));
    char err[1024];

    if (cfg == NULL) {
        cli_errx(who, "out of memory");
        return NULL;
    }
    if (config_load(path, cfg, err, sizeof(err)) != 0) {
        cli_errx(who, "%s", err);
        free(cfg);
        return NULL;
    }
    return cfg;
}

/*
 * The audit log belongs to the daemon's service user, the owner of the
 * audit directory (mamori init): a segment, lock or checkpoint file that
 * a root-run command created would stop the audit writer from opening
 * its log at the next start.  So what the append made is handed to the
 * directory's owner, as cli_own_like_parent does for single files.
 *
 * The offline append (no rotation, no archival) creates entries at the
 * top of the directory only: segments, checkpoints, .lock and archive/
 * itself, never anything inside archive/.  So only the top is looked at,
 * through a descriptor of the directory and without following a link:
 * the directory's owner (the service user) can replace an entry with a
 * symbolic link at any moment, and root must not follow it.
 */
static int
own_like_dir(const char *dir)
{
    struct stat ds, st;
    struct dirent *e;
    DIR *d;
    int fd, rc = 0;

    if (geteuid() != 0)
        return 0;
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    if (fstat(fd, &ds) != 0) {
        close(fd);
        return -1;
    }
    if (ds.st_uid == 0) {              /* root's own: nothing to hand over */
        close(fd);
        return 0;
    }
    if ((d = fdopendir(fd)) == NULL) {
        close(fd);
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            (st.st_uid == ds.st_uid && st.st_gid == ds.st_gid))
            continue;
        if (fchownat(fd, e->d_name, ds.st_uid, ds.st_gid, AT_SYMLINK_NOFOLLOW) != 0)
            rc = -1;
    }
    closedir(d);                       /* closes fd */
    return rc;
}

static int
append_as_service_user(const struct mamori_config *cfg, const json_t *ev, uint64_t *seq,
                       char *err, size_t errlen)
{
    int rc = audit_append_offline(cfg->audit_dir, ev, seq, err, errlen);

    if (own_like_dir(cfg->audit_dir) != 0 && rc == 0) {
        snprintf(err, errlen, "cannot hand the new audit files to the owner of "
                 "the audit directory");
        rc = -1;
    }
    return rc;
}

int
cli_audit_record(const char *config, const json_t *ev)
{
    struct mamori_config *cfg = load_config("audit", config);
    char err[512];
    uint64_t seq;
    int rc;

    if (cfg == NULL)
        return -1;
    rc = append_as_service_user(cfg, ev, &seq, err, sizeof(err));
    if (rc != 0)
        cli_errx("audit", "cannot record the event: %s", err);
    free(cfg);
    return rc;
}

static int
audit_verify_cmd(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' },
        { "pubkey", required_argument, NULL, 'p' },
        { "deep", no_argument, NULL, 'd' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = CLI_DEFAULT_CONFIG, *pubkey = NULL;
    unsigned flags = 0;
    struct mamori_config *cfg;
    struct audit_verify_result r;
    uint8_t pk[AUDIT_PK_LEN];
    int c;

    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "c:p:", lo, NULL)) != -1) {
        if (c == 'c')
            config = optarg;
        else if (c == 'p')
            pubkey = optarg;
        else if (c == 'd')
            flags |= AUDIT_VERIFY_DEEP;   /* every line parsed and schema-checked */
        else {
            cli_usage(CMD_AUDIT_VERIFY_SYNOPSIS);
            return CLI_USAGE;
        }
    }
    if (optind != argc) {
        cli_usage(CMD_AUDIT_VERIFY_SYNOPSIS);
        return CLI_USAGE;
    }
    if (pubkey != NULL && audit_pubkey_load(pubkey, pk) != 0) {
        cli_err("audit verify", "cannot read the public key %s", pubkey);
        return CLI_FAIL;
    }
    if ((cfg = load_config("audit verify", config)) == NULL)
        return CLI_FAIL;
    if (audit_verify_flags(cfg->audit_dir, pubkey ? pk : NULL, flags, &r) != 0) {
        printf("FAILED: %s", r.file);
        if (r.line)
            printf(" line %llu", (unsigned long long)r.line);
        if (r.seq)
            printf(" (seq %llu)", (unsigned long long)r.seq);
        printf(": %s\n", r.what);
        free(cfg);
        return CLI_FAIL;
    }
    printf("OK: %llu segments, %llu entries (seq %llu..%llu), %llu checkpoints; "
           "signed through seq %llu; %llu checked in full%s\n",
           (unsigned long long)r.segments, (unsigned long long)r.entries,
           (unsigned long long)r.first_seq, (unsigned long long)r.last_seq,
           (unsigned long long)r.checkpoints, (unsigned long long)r.last_signed_seq,
           (unsigned long long)r.checked_in_full, pubkey ? "" : " (key from signing.pub: pin it with --pubkey)");
    if (r.last_signed_seq < r.last_seq)
        printf("note: %llu entries after the last signed checkpoint are chained but not "
               "yet signed\n", (unsigned long long)(r.last_seq - r.last_signed_seq));
    free(cfg);
    return CLI_OK;
}

/* One quoted CSV cell of a JSON value: strings as they are, anything else
 * as compact JSON, nothing for a missing value.  A cell a spreadsheet
 * would take for a formula is neutralised (csvcell_fwrite: actor names
 * may start with '-' or '@', R7.5).  0 or -1 (write failed). */
static int
csv_value(FILE *f, json_t *v)
{
    int rc = 0;

    if (json_is_string(v)) {
        rc = csvcell_fwrite(f, json_string_value(v));
    } else if (v != NULL) {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
        rc = csvcell_fwrite(f, t);
        free(t);
    }
    return rc;
}

static const char *const csv_cols[] = { "tenant", "actor", "role", "action", "outcome",
                                        "reason", "objects", "terminal", "session",
                                        "source" };

/* 0, or -1 if a cell could not be written. */
static int
print_rows_csv(json_t *rows)
{
    size_t i;
    json_t *row;
    int rc = 0;

    printf("seq,time");
    for (size_t c = 0; c < sizeof(csv_cols) / sizeof(csv_cols[0]); c++)
        printf(",%s", csv_cols[c]);
    printf("\n");
    json_array_foreach(rows, i, row) {
        json_t *ev = json_object_get(row, "event");
        printf("%lld,", (long long)json_integer_value(json_object_get(row, "seq")));
        rc |= csv_value(stdout, json_object_get(row, "time"));
        for (size_t c = 0; c < sizeof(csv_cols) / sizeof(csv_cols[0]); c++) {
            putchar(',');
            rc |= csv_value(stdout, json_object_get(ev, csv_cols[c]));
        }
        putchar('\n');
    }
    return rc != 0 ? -1 : 0;
}

/* The review as CSV: the writer of the HTTP API (audit_review_csv_tables,
 * one writer for both, R7.5) without the per-record table.  0, or -1 if
 * it could not be made or written. */
static int
print_review_csv(const json_t *rep)
{
    char *csv;
    size_t len;
    int rc;

    if (audit_review_csv_tables(rep, 0, &csv, &len) != 0)
        return -1;
    rc = fwrite(csv, 1, len, stdout) == len ? 0 : -1;
    free(csv);
    return rc;
}

struct qopts {
    const char *config, *format;
    struct audit_query q;
};

static int
parse_query(int argc, char **argv, const char *synopsis, struct qopts *o)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' },
        { "tenant", required_argument, NULL, 't' },
        { "actor", required_argument, NULL, 'a' },
        { "action", required_argument, NULL, 'x' },
        { "object", required_argument, NULL, 'o' },
        { "since", required_argument, NULL, 's' },
        { "until", required_argument, NULL, 'u' },
        { "format", required_argument, NULL, 'f' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->config = CLI_DEFAULT_CONFIG;
    o->format = "json";
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "c:", lo, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case 't': o->q.tenant = optarg; break;
        case 'a': o->q.actor = optarg; break;
        case 'x': o->q.action = optarg; break;
        case 'o': o->q.object = optarg; break;
        case 'f': o->format = optarg; break;
        case 's':
        case 'u':
            if (audit_time_parse(optarg, c == 's' ? &o->q.since_us : &o->q.until_us) != 0) {
                cli_errx("audit", "%s: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ", optarg);
                return CLI_USAGE;
            }
            if (c == 's')
                o->q.has_since = true;
            else
                o->q.has_until = true;
            break;
        default:
            cli_usage(synopsis);
            return CLI_USAGE;
        }
    }
    if (optind != argc || (strcmp(o->format, "json") != 0 && strcmp(o->format, "csv") != 0)) {
        cli_usage(synopsis);
        return CLI_USAGE;
    }
    return -1;
}

static int
audit_query_cmd(int argc, char **argv)
{
    struct qopts o;
    struct mamori_config *cfg;
    json_t *rows;
    int r = parse_query(argc, argv, CMD_AUDIT_QUERY_SYNOPSIS, &o), written = 0;

    if (r >= 0)
        return r;
    if ((cfg = load_config("audit query", o.config)) == NULL)
        return CLI_FAIL;
    if (audit_query_run(cfg->audit_dir, &o.q, &rows) != 0) {
        cli_err("audit query", "cannot read the audit log in %s", cfg->audit_dir);
        free(cfg);
        return CLI_FAIL;
    }
    if (strcmp(o.format, "csv") == 0) {
        written = print_rows_csv(rows);
    } else {
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) {
            char *t = json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (t != NULL)
                printf("%s\n", t);
            free(t);
        }
    }
    json_decref(rows);
    free(cfg);
    if (written != 0) {
        cli_errx("audit query", "cannot write the CSV");
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int
audit_review_cmd(int argc, char **argv)
{
    struct qopts o;
    struct mamori_config *cfg;
    json_t *rep;
    int r = parse_query(argc, argv, CMD_AUDIT_REVIEW_SYNOPSIS, &o), written = 0;

    if (r >= 0)
        return r;
    if (o.q.actor == NULL || o.q.tenant || o.q.action || o.q.object) {
        cli_usage(CMD_AUDIT_REVIEW_SYNOPSIS);
        return CLI_USAGE;
    }
    if ((cfg = load_config("audit review", o.config)) == NULL)
        return CLI_FAIL;
    if (audit_review(cfg->audit_dir, o.q.actor, &o.q, cfg->audit_office_start,
                     cfg->audit_office_end, &rep) != 0) {
        cli_err("audit review", "cannot read the audit log in %s", cfg->audit_dir);
        free(cfg);
        return CLI_FAIL;
    }
    if (strcmp(o.format, "csv") == 0) {
        written = print_review_csv(rep);
    } else {
        char *t = json_dumps(rep, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (t != NULL)
            printf("%s\n", t);
        free(t);
    }
    json_decref(rep);
    free(cfg);
    if (written != 0) {
        cli_errx("audit review", "cannot write the CSV");
        return CLI_FAIL;
    }
    return CLI_OK;
}

int
cmd_audit(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return audit_verify_cmd(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "query") == 0)
        return audit_query_cmd(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "review") == 0)
        return audit_review_cmd(argc - 1, argv + 1);
    cli_usage(CMD_AUDIT_SYNOPSIS);
    return CLI_USAGE;
}
