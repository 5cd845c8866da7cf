/*
 * cmd_import.c - `mamori import`: bulk import of residents, vouchers or
 * vaccinations from an existing system's CSV file into one tenant (R2.6;
 * formats and the report: docs/import-export.md).
 *
 * R1.3: the platform operator may write personal data but never read it.
 * The import decrypts what the checks need (a resident's dates for the
 * vaccination rules) inside the process and prints only line numbers,
 * column names, reasons and counts: never a value.  For the same reason
 * there is no `mamori export`: an export is reading, so it is offered
 * only through the HTTP API, to the tenant's own staff (export.h).
 *
 * Every run is recorded by the audit hook (cli_audit.c) with its outcome
 * and counts.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "config/config.h"
#include "crypto/keyprov.h"
#include "crypto/keyring.h"
#include "store/store.h"
#include "store/store_records.h"
#include "vrs/catalogue.h"
#include "vrs/import.h"

#define CATALOGUE_CSV "vaccines/catalogue.csv"

enum { OPT_TENANT = 256, OPT_KIND, OPT_ENCODING, OPT_DRY_RUN, OPT_REPORT };

struct import_cli {
    const char         *config;
    const char         *tenant;
    const char         *file;
    const char         *report;
    enum import_kind    kind;
    bool                kind_set;
    enum csvin_encoding encoding;
    bool                dry_run;
};

/* ---- options ------------------------------------------------------------ */

static int
parse(int argc, char **argv, struct import_cli *o)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "tenant", required_argument, NULL, OPT_TENANT },
        { "kind", required_argument, NULL, OPT_KIND },
        { "encoding", required_argument, NULL, OPT_ENCODING },
        { "dry-run", no_argument, NULL, OPT_DRY_RUN },
        { "report", required_argument, NULL, OPT_REPORT },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    memset(o, 0, sizeof(*o));
    o->config = CLI_DEFAULT_CONFIG;
    cli_getopt_reset();
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o->config = optarg;
            break;
        case OPT_TENANT:
            o->tenant = optarg;
            break;
        case OPT_KIND:
            if (import_kind_parse(optarg, &o->kind) != 0) {
                cli_errx("import", "--kind must be residents, vouchers or vaccinations");
                return CLI_USAGE;
            }
            o->kind_set = true;
            break;
        case OPT_ENCODING:
            if (strcmp(optarg, "utf-8") == 0 || strcmp(optarg, "utf8") == 0)
                o->encoding = CSVIN_UTF8;
            else if (strcmp(optarg, "cp932") == 0 || strcmp(optarg, "shift_jis") == 0 ||
                     strcmp(optarg, "sjis") == 0)
                o->encoding = CSVIN_CP932;
            else {
                cli_errx("import", "--encoding must be utf-8 or cp932");
                return CLI_USAGE;
            }
            break;
        case OPT_DRY_RUN:
            o->dry_run = true;
            break;
        case OPT_REPORT:
            o->report = optarg;
            break;
        case 'h':
            cli_usage(CMD_IMPORT_SYNOPSIS);
            return CLI_OK;
        default:
            cli_bad_option("import", argv);
            return CLI_USAGE;
        }
    }
    if (argc - optind != 1 || o->tenant == NULL || !o->kind_set) {
        cli_usage(CMD_IMPORT_SYNOPSIS);
        return CLI_USAGE;
    }
    o->file = argv[optind];
    /* Anything but 6 digits is not echoed: it may be a pasted value. */
    if (strlen(o->tenant) != TENANT_ID_LEN || !tenant_id_valid(o->tenant)) {
        cli_errx("import", "--tenant must be a local government code: 6 digits, the "
                 "last a check digit");
        return CLI_USAGE;
    }
    return -1;
}

/* ---- the report and the progress bar ------------------------------------ */

struct out {
    FILE    *report;
    bool     tty;               /* progress bar on stderr */
    int      last_pct;
    int      last_phase;
    time_t   last_draw;
};

/* "line 12, mynumber: the individual number's check digit is wrong":
 * no value of the file ever reaches this line (import.h). */
static int
sink(void *arg, const struct import_problem *p)
{
    struct out *o = arg;

    if (p->column != NULL)
        fprintf(o->report, "line %llu, %s: %s\n", (unsigned long long)p->line,
                p->column, p->reason);
    else
        fprintf(o->report, "line %llu: %s\n", (unsigned long long)p->line, p->reason);
    return 0;
}

static void
progress(void *arg, const struct import_progress *p)
{
    static const char *const what[] = { "hashing", "checking", "importing" };
    struct out *o = arg;
    int pct = p->total > 0 ? (int)(p->bytes * 100 / p->total) : 0;
    time_t now = time(NULL);

    if (!o->tty || (pct == o->last_pct && (int)p->phase == o->last_phase &&
                    now == o->last_draw))
        return;
    o->last_pct = pct;
    o->last_phase = (int)p->phase;
    o->last_draw = now;
    fprintf(stderr, "\r%-9s [%-40.*s] %3d%% %llu rows ", what[p->phase], pct * 40 / 100,
            "========================================", pct, (unsigned long long)p->rows);
    fflush(stderr);
}

static void
progress_end(struct out *o)
{
    if (o->tty && o->last_pct >= 0)
        fprintf(stderr, "\r%-70s\r", "");
}

/* ---- helpers -------------------------------------------------------------- */

/* Today in Japan (JST, UTC+9, no daylight saving): the rules' clock. */
static void
today_jst(char out[11])
{
    time_t t = time(NULL) + 9 * 3600;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, 11, "%Y-%m-%d", &tm) != 10)
        snprintf(out, 11, "1970-01-01");
}

/* Who imported: the operating system account, as the store's actor
 * (1..32 printable ASCII), kept on every vaccination row it writes. */
static void
actor(char out[STORE_ACTOR_MAX])
{
    const struct passwd *pw = getpwuid(getuid());
    size_t n = 0;

    if (pw != NULL)
        for (const char *p = pw->pw_name; *p != '\0' && n + 1 < STORE_ACTOR_MAX; p++)
            if (*p > 0x20 && *p < 0x7f)
                out[n++] = *p;
    out[n] = '\0';
    if (n == 0)
        snprintf(out, STORE_ACTOR_MAX, "uid-%u", (unsigned)getuid());
}

static FILE *
open_report(const char *path)
{
    int fd;
    FILE *f;

    if (path == NULL)
        return stdout;
    /* The report names lines and columns only, but it describes a file of
     * personal data: readable by its owner only. */
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return NULL;
    if ((f = fdopen(fd, "w")) == NULL)
        close(fd);
    return f;
}

static void
say_result(const struct import_cli *o, const struct import_result *res, FILE *to)
{
    const char *kind = import_kind_name(o->kind);

    switch (res->outcome) {
    case IMPORT_IMPORTED:
        fprintf(to, "imported %llu %s into tenant %s\n", (unsigned long long)res->rows,
                kind, o->tenant);
        break;
    case IMPORT_ALREADY:
        fprintf(to, "already imported at %s: this file (same content) was imported into "
                "tenant %s before; nothing changed\n", res->when, o->tenant);
        break;
    case IMPORT_CHECKED:
        fprintf(to, "checked %llu %s: no problem found; nothing was imported (--dry-run)\n",
                (unsigned long long)res->rows, kind);
        break;
    case IMPORT_REFUSED:
        fprintf(to, "refused: %llu problem%s on %llu line%s; nothing was imported\n",
                (unsigned long long)res->problems, res->problems == 1 ? "" : "s",
                (unsigned long long)res->bad_lines, res->bad_lines == 1 ? "" : "s");
        break;
    case IMPORT_FAILED:
        break;
    }
}

static const char *
outcome_name(enum import_outcome oc)
{
    static const char *const names[] = { "imported", "already_imported", "checked",
                                         "refused", "failed" };

    return (unsigned)oc < sizeof(names) / sizeof(*names) ? names[oc] : "failed";
}

/* ---- the command ---------------------------------------------------------- */

/* Before the commit, the import goes on the audit record; if it cannot,
 * nothing is committed (R7.1).  The command's own record (cli_audit.c)
 * follows with the outcome. */
static int
record_before_commit(void *arg, const struct import_result *res)
{
    const struct import_cli *o = arg;

    return cli_audit_before(o->config, "cli.import.commit", o->tenant, (int64_t)res->rows);
}

static int
run(const struct import_cli *o, struct cli_session *s, int fd, struct out *out,
    struct import_result *res)
{
    struct vrs_catalogue *cat = NULL;
    struct store_tenant *ctx = NULL;
    struct key_provider kp;
    struct import_opts io;
    char today[11], who[STORE_ACTOR_MAX], path[PATH_MAX], err[PATH_MAX + 256];
    enum store_status st;
    int rc = CLI_FAIL;

    if (o->kind == IMPORT_VACCINATIONS) {
        if (util_path_join(path, sizeof(path), s->cfg->refdata, CATALOGUE_CSV) != 0) {
            cli_errx(s->who, "refdata path too long: %s", s->cfg->refdata);
            return CLI_FAIL;
        }
        if (vrs_catalogue_load(path, &cat, err, sizeof(err)) != 0) {
            cli_errx(s->who, "the vaccine catalogue %s: %s", path, err);
            return CLI_FAIL;
        }
    }
    keyring_provider(s->kr, &kp);
    st = store_tenant_ctx_open(s->st, o->tenant, &kp, &ctx);
    if (st != STORE_OK) {
        if (st == STORE_DENIED)
            cli_errx(s->who, "tenant %s is not active in the store (never created, or "
                     "erased)", o->tenant);
        else
            cli_errx(s->who, "cannot open tenant %s: %s", o->tenant, store_strerror(st));
        goto out;
    }
    today_jst(today);
    actor(who);
    memset(&io, 0, sizeof(io));
    io.kind = o->kind;
    io.encoding = o->encoding;
    io.catalogue = cat;
    io.today = today;
    io.actor = who;
    io.sink = sink;
    io.sink_arg = out;
    io.progress = progress;
    io.progress_arg = out;
    io.dry_run = o->dry_run;
    io.before_commit = record_before_commit;
    io.commit_arg = (void *)o;
    /* -1 is a refusal or a failure, and res->outcome says which. */
    if (import_run(ctx, fd, &io, res) != 0 && res->outcome != IMPORT_REFUSED)
        res->outcome = IMPORT_FAILED;
    progress_end(out);
    if (res->outcome == IMPORT_FAILED) {
        cli_errx(s->who, "%s", res->error);
    } else {
        say_result(o, res, out->report);
        if (out->report != stdout)
            say_result(o, res, stdout);
        if (res->outcome != IMPORT_REFUSED)
            rc = CLI_OK;
    }
out:
    store_tenant_ctx_close(ctx);            /* wipes its grants */
    vrs_catalogue_free(cat);
    return rc;
}

int
cmd_import(int argc, char **argv)
{
    struct import_cli o;
    struct cli_session s;
    struct import_result res;
    struct out out = { NULL, false, -1, -1, 0 };
    int rc, fd = -1;

    if ((rc = parse(argc, argv, &o)) >= 0)
        return rc;
    memset(&res, 0, sizeof(res));
    res.outcome = IMPORT_FAILED;
    rc = CLI_FAIL;
    if (cli_session_begin(&s, "import", o.config) != 0)
        goto out;
    fd = open(o.file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_err("import", "cannot open %s", o.file);
        goto out;
    }
    if ((out.report = open_report(o.report)) == NULL) {
        cli_err("import", "cannot write the report to %s", o.report);
        goto out;
    }
    out.tty = isatty(STDERR_FILENO) == 1;
    /* Shared lock: no key rotation or erase by another operator meanwhile. */
    if (cli_session_keys(&s, false) != 0 || cli_session_store(&s, 0) != 0)
        goto out;
    rc = run(&o, &s, fd, &out, &res);
out:
    /* R7.7: outcome and counts on the record, never a value. */
    cli_audit_note_str("kind", import_kind_name(o.kind));
    cli_audit_note_str("result", outcome_name(res.outcome));
    cli_audit_note_int("rows", (int64_t)res.rows);
    cli_audit_note_int("problems", (int64_t)res.problems);
    cli_audit_note_int("dry_run", o.dry_run ? 1 : 0);
    if (out.report != NULL && out.report != stdout && fclose(out.report) != 0) {
        cli_err("import", "cannot write the report to %s", o.report);
        rc = CLI_FAIL;
    }
    if (fd >= 0)
        close(fd);
    cli_session_end(&s);
    return rc;
}
