/*
 * cli_audit.c - every state-changing `mamori` command leaves an audit
 * record (R7.7): terminal issue and revocation, migrations, tenant
 * creation and erasure, key rotation, rewrap and re-encryption, staff
 * enrolment and terminal registration, imports (with the counts the
 * command notes: cli_audit_note_*).
 *
 * It is done once, here, around the dispatch rather than in each
 * command, so a new state-changing subcommand only needs a row in the
 * table below.  The record is written after the command with its outcome
 * (refusals too); if it cannot be written, the tool says so and exits
 * non-zero: the change happened but is not yet on the record, which an
 * operator must not mistake for success.
 */
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit/event.h"
#include "cli/cli.h"
#include "ref/lgcode.h"

struct audited {
    const char *command;
    const char *sub;        /* NULL: the command has no subcommand */
    const char *action;
};

static const struct audited audited[] = {
    { "terminal", "issue",             "cli.terminal.issue" },
    { "terminal", "revoke",            "cli.terminal.revoke" },
    { "migrate",  NULL,                "cli.store.migrate" },
    { "tenant",   "create",            "cli.tenant.create" },
    { "tenant",   "erase",             "cli.tenant.erase" },
    { "key",      "rotate",            "cli.key.rotate" },
    { "key",      "rewrap",            "cli.key.rewrap" },
    { "key",      "reencrypt",         "cli.key.reencrypt" },
    { "staff",    "enrol",             "cli.staff.enrol" },
    { "staff",    "terminal-register", "cli.staff.terminal_register" },
    { "import",   NULL,                "cli.import" },
};

/* Details the command added (cli_audit_note_*): at most a few, static
 * keys and strings, so nothing here can carry a value from the data. */
#define NOTES_MAX 8
struct note {
    const char *key;
    const char *str;        /* NULL: an integer */
    int64_t     num;
};
static struct note notes[NOTES_MAX];
static size_t nnotes;

static void
note(const char *key, const char *str, int64_t num)
{
    for (size_t i = 0; i < nnotes; i++)
        if (strcmp(notes[i].key, key) == 0) {
            notes[i].str = str;
            notes[i].num = num;
            return;
        }
    if (nnotes < NOTES_MAX)
        notes[nnotes++] = (struct note){ key, str, num };
}

void
cli_audit_note_int(const char *key, int64_t value)
{
    note(key, NULL, value);
}

void
cli_audit_note_str(const char *key, const char *value)
{
    if (value != NULL)
        note(key, value, 0);
}

static const char *
action_of(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof(audited) / sizeof(audited[0]); i++) {
        const struct audited *a = &audited[i];
        if (strcmp(argv[0], a->command) != 0)
            continue;
        if (a->sub == NULL || (argc > 1 && strcmp(argv[1], a->sub) == 0))
            return a->action;
    }
    return NULL;
}

static bool
has_flag(int argc, char **argv, const char *flag)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return true;
    return false;
}

/* The configuration the command used: -c/--config, or -d DIR (terminal
 * commands name the data directory). */
static void
config_of(int argc, char **argv, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s", CLI_DEFAULT_CONFIG);
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            snprintf(out, outsz, "%s", argv[i + 1]);
        else if (strncmp(argv[i], "--config=", 9) == 0)
            snprintf(out, outsz, "%s", argv[i] + 9);
        else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
            snprintf(out, outsz, "%s/mamorid.conf", argv[i + 1]);
    }
}

/* The operating system account, as an audit actor ([a-z0-9._@-]). */
static void
actor_of(char *out, size_t outsz)
{
    const struct passwd *pw = getpwuid(getuid());
    size_t n = 0;

    if (pw != NULL)
        for (const char *p = pw->pw_name; *p != '\0' && n + 1 < outsz && n < 64; p++) {
            char c = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
            if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("._@-", c))
                out[n++] = c;
        }
    out[n] = '\0';
    if (n == 0)
        snprintf(out, outsz, "uid_%u", (unsigned)getuid());
}

/* An event of the operator running this command; NULL on error. */
static json_t *
operator_event(const char *action, enum audit_outcome outcome)
{
    json_t *ev = audit_event_new(action, outcome);
    char actor[72];

    if (ev == NULL)
        return NULL;
    actor_of(actor, sizeof(actor));
    if (audit_event_set(ev, AUDIT_F_ACTOR, actor) != 0 ||
        audit_event_set(ev, AUDIT_F_ROLE, "platform_operator") != 0) {
        json_decref(ev);
        return NULL;
    }
    return ev;
}

int
cli_audit_before(const char *config, const char *action, const char *tenant, int64_t rows)
{
    json_t *ev = operator_event(action, AUDIT_SUCCESS);
    int rc = -1;

    if (ev != NULL && audit_event_set(ev, AUDIT_F_TENANT, tenant) == 0 &&
        audit_event_info_int(ev, "rows", rows) == 0)
        rc = cli_audit_record(config, ev);
    json_decref(ev);
    return rc;
}

static json_t *
build_event(const char *action, int argc, char **argv, int exit_code)
{
    /* A usage error on a state-changing command (say, an erase whose
     * confirmation does not match) is a refusal, and on the record too. */
    json_t *ev = operator_event(action, exit_code == CLI_OK      ? AUDIT_SUCCESS
                                        : exit_code == CLI_USAGE ? AUDIT_REFUSED
                                                                 : AUDIT_FAILURE);

    if (ev == NULL)
        return NULL;
    if (audit_event_info_int(ev, "exit_status", exit_code) != 0) {
        json_decref(ev);
        return NULL;
    }
    for (size_t i = 0; i < nnotes; i++)
        if ((notes[i].str != NULL ? audit_event_info_str(ev, notes[i].key, notes[i].str)
                                  : audit_event_info_int(ev, notes[i].key, notes[i].num))
            != 0) {
            json_decref(ev);
            return NULL;
        }
    /* The tenant the command acted on: the first valid code among its
     * arguments (all of them are operator input, none personal data). */
    for (int i = 1; i < argc; i++)
        if (strlen(argv[i]) == LGCODE_LEN && lgcode_valid(argv[i])) {
            if (audit_event_set(ev, AUDIT_F_TENANT, argv[i]) != 0) {
                json_decref(ev);
                return NULL;
            }
            break;
        }
    return ev;
}

int
cli_audit_command(int argc, char **argv, int exit_code)
{
    const char *action;
    char config[PATH_MAX];
    json_t *ev;
    int rc;

    if (argc < 1 || (action = action_of(argc, argv)) == NULL ||
        (strcmp(argv[0], "migrate") == 0 && has_flag(argc, argv, "--check"))) {
        nnotes = 0;
        return exit_code;
    }
    config_of(argc, argv, config, sizeof(config));
    ev = build_event(action, argc, argv, exit_code);
    nnotes = 0;
    rc = ev != NULL ? cli_audit_record(config, ev) : -1;
    json_decref(ev);
    if (rc != 0) {
        fprintf(stderr, "mamori: %s %s, but it could not be recorded in the audit log "
                "(R7.7); fix the audit log and record it by hand\n", action,
                exit_code == CLI_OK ? "was done" : "failed or was refused");
        return CLI_FAIL;
    }
    return exit_code;
}
