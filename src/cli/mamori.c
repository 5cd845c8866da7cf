/*
 * mamori.c - the operator's command-line tool: dispatch and usage.
 *
 * The subcommands live in cmd_*.c (linked from mamori_core so tests can
 * call them); this file only picks one from the table below.  Only
 * main() may exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

/* One row per subcommand; usage() is generated from it. */
static const struct cli_command commands[] = {
    { "init", cmd_init, CMD_INIT_SYNOPSIS,
      "create a data directory: development PKI, master key, mamorid.conf" },
    { "terminal", cmd_terminal, CMD_TERMINAL_SYNOPSIS,
      "issue, list and revoke terminal (client) certificates" },
    { "audit", cmd_audit, CMD_AUDIT_SYNOPSIS,
      "verify the audit log, query it, review one staff member's access" },
    { "migrate", cmd_migrate, CMD_MIGRATE_SYNOPSIS,
      "apply pending schema migrations to the store" },
    { "tenant", cmd_tenant, CMD_TENANT_SYNOPSIS,
      "create, list and erase (crypto-shred) tenants" },
    { "key", cmd_key, CMD_KEY_SYNOPSIS,
      "rotate, rewrap, re-encrypt and list a tenant's keys" },
    { "staff", cmd_staff, CMD_STAFF_SYNOPSIS,
      "enrol a tenant's first administrator, register terminals to a tenant" },
    { "import", cmd_import, CMD_IMPORT_SYNOPSIS,
      "import residents, vouchers or vaccinations from CSV into a tenant" },
    { "synth", cmd_synth, CMD_SYNTH_SYNOPSIS,
      "write synthetic residents, vouchers and vaccinations (test data)" },
    { "version", cmd_version, "version", "print the version" },
    { "help", cmd_help, "help", "print this summary" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(void)
{
    const char *lead = "usage:";

    for (size_t i = 0; i < NCOMMANDS; i++) {
        const char *s = commands[i].synopsis;

        while (*s != '\0') {
            size_t n = strcspn(s, "\n");

            fprintf(stderr, "%-6s mamori %.*s\n", lead, (int)n, s);
            lead = "";
            s += n;
            if (*s == '\n')
                s++;
        }
    }
    fputc('\n', stderr);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(stderr, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(stderr, "\nSee mamori(1).\n");
}

static int
cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        cli_usage("version");
        return CLI_USAGE;
    }
    printf("mamori %s\n", MAMORI_VERSION);
    return CLI_OK;
}

static int
cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    usage();
    return CLI_OK;
}

int
main(int argc, char **argv)
{
    const char *name;

    /* Library errors (never key material) as JSON lines on stderr. */
    log_setup("mamori", LOG_TO_STDERR, LOG_LVL_WARN);
    if (argc < 2) {
        usage();
        exit(CLI_USAGE);
    }
    name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0)
        name = "help";
    else if (strcmp(name, "-V") == 0 || strcmp(name, "--version") == 0)
        name = "version";
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0)
            exit(cli_audit_command(argc - 1, argv + 1,
                                   commands[i].run(argc - 1, argv + 1)));
    fprintf(stderr, "mamori: unknown command \"%s\"\n", argv[1]);
    usage();
    exit(CLI_USAGE);
}
