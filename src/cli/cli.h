/*
 * cli.h - internal interface of the `mamori` operator tool.
 *
 * Each subcommand is one cmd_<name>(argc, argv) function, argv[0] being
 * the subcommand's name.  It never calls exit(): it returns CLI_OK,
 * CLI_FAIL or CLI_USAGE, prints results on stdout and each error on
 * stderr as one plain sentence ("mamori init: DIR already exists and is
 * not empty").  Adding a subcommand = one function here, one row in the
 * table in mamori.c, one section in man/mamori.1.
 */
#ifndef MAMORI_CLI_H
#define MAMORI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "pki/pki.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* One row of the dispatch table.  `synopsis` may hold several lines
 * separated by '\n', each without the leading "mamori ". */
struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *synopsis;
    const char *help;                   /* one line */
};

#define CMD_INIT_SYNOPSIS \
    "init [--user NAME] [--internal-listen ADDR] [--public-listen ADDR] DIR"
#define CMD_TERMINAL_SYNOPSIS \
    "terminal issue -d DIR [--days N] [--csr FILE] NAME\n" \
    "terminal csr --out-key KEY --out-csr CSR NAME\n" \
    "terminal list -d DIR\n" \
    "terminal revoke -d DIR (--fingerprint HEX | --cert FILE | NAME) " \
    "[--reason TEXT]"

/* mamori audit (cmd_audit.c, R7.2, R7.5). */
#define CMD_AUDIT_VERIFY_SYNOPSIS "audit verify [-c CONFIG] [--pubkey FILE]"
#define CMD_AUDIT_QUERY_SYNOPSIS \
    "audit query [-c CONFIG] [--tenant T] [--actor A] [--action X] [--object O] " \
    "[--since ISO] [--until ISO] [--format json|csv]"
#define CMD_AUDIT_REVIEW_SYNOPSIS \
    "audit review [-c CONFIG] --actor A [--since ISO] [--until ISO] [--format json|csv]"
#define CMD_AUDIT_SYNOPSIS CMD_AUDIT_VERIFY_SYNOPSIS "\n" CMD_AUDIT_QUERY_SYNOPSIS "\n" \
    CMD_AUDIT_REVIEW_SYNOPSIS

/* Validity periods of what `mamori init` and `terminal issue` make. */
#define CLI_CA_DAYS       3653u         /* ten years */
#define CLI_LEAF_DAYS     365u
#define CLI_MAX_DAYS      3653u
/* Certificates start a little in the past so a terminal whose clock is
 * slightly behind still accepts them. */
#define CLI_BACKDATE_SECS 300

/* Largest PEM file (certificate, key, CSR) the tool reads. */
#define CLI_PEM_MAX       (64u * 1024u)

/* mamori init: make a data directory (see man/mamori.1). */
int cmd_init(int argc, char **argv);

/* mamori terminal {issue,csr,list,revoke}. */
int cmd_terminal(int argc, char **argv);

/* mamori audit {verify,query,review} (cmd_audit.c). */
int cmd_audit(int argc, char **argv);

/* Append one audit event for an offline command (R7.7): loads `config`,
 * then appends durably under the log's lock, exactly as the audit writer
 * does (audit_append_offline).  Errors are printed.  0 or -1. */
struct json_t;
int cli_audit_record(const char *config, const struct json_t *ev)
    __attribute__((warn_unused_result));

/* Issue terminal certificate `name` (subject CN `cn`) into
 * dir/terminals/ from the terminal CA `ca`: sign `csr_pem` when not NULL
 * (only NAME.crt is written), else also generate NAME.key (0600).  Never
 * overwrites.  Writes the certificate's fingerprint to `fp`.  Errors are
 * printed as "mamori <who>: ...".  Returns 0 or -1. */
int cli_terminal_make(const char *who, const char *dir, const char *name,
                      const char *cn, const char *csr_pem, unsigned days,
                      const struct pki_issuer *ca,
                      char fp[PKI_FP_HEX_LEN + 1]);

/* True if `name` is 1-64 of [A-Za-z0-9._-] not starting with '.' or
 * '-' (it becomes a file name and a certificate CN). */
bool cli_terminal_name_ok(const char *name);

/* --- helpers shared by the subcommands (cli_util.c) --- */

/* "mamori <who>: <message>" on stderr; cli_err appends ": strerror". */
void cli_errx(const char *who, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cli_err(const char *who, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print "usage: mamori <synopsis>" (one line per synopsis line). */
void cli_usage(const char *synopsis);

/* Reset getopt before a subcommand parses its options (subcommands may
 * run several times in one process, e.g. in tests), and silence its own
 * messages so every error reads the same way. */
void cli_getopt_reset(void);

/* Report the option getopt_long just refused. */
void cli_bad_option(const char *who, char **argv);

/* Create `path` with exactly `mode` and contents `data`, durably, and
 * fail with EEXIST if anything (even a dangling symlink) is already
 * there.  The bytes go to a private temp file first (0600 from its
 * creation), which is then hard-linked into place, so no reader ever
 * sees a partial file or a looser mode. */
int cli_write_new(const char *path, const void *data, size_t len,
                  unsigned mode) __attribute__((warn_unused_result));

/* When run as root, give `path` the owner and group of its directory,
 * so files added later to a tree `mamori init` handed to the daemon's
 * user stay that user's.  Does nothing for other users.  0 or -1. */
int cli_own_like_parent(const char *path) __attribute__((warn_unused_result));

/* Read a PEM file of at most CLI_PEM_MAX bytes into a NUL-terminated
 * malloc'd string owned by the caller.  Returns 0 or -1 (errno set). */
int cli_read_pem(const char *path, char **out)
    __attribute__((warn_unused_result));

/* A CA read from disk; the key is wiped by cli_ca_free(). */
struct cli_ca {
    char  *cert_pem;
    char  *key_pem;
    size_t key_len;
};

/* Read dir/<base>.crt and dir/<base>.key.  Errors are printed.  The
 * caller owns *ca and releases it with cli_ca_free() (also after a
 * failure).  Returns 0 or -1. */
int cli_ca_load(const char *who, const char *dir, const char *base,
                struct cli_ca *ca) __attribute__((warn_unused_result));
void cli_ca_free(struct cli_ca *ca);

/* "YYYY-MM-DDTHH:MM:SSZ" (out needs 21 bytes). */
void cli_iso8601(time_t t, char out[21]);

/* mamori staff {enrol,terminal-register} (cmd_staff.c, docs/access.md). */
#define CMD_STAFF_SYNOPSIS \
    "staff enrol -c CONFIG --tenant CODE --user ID\n" \
    "staff terminal-register -c CONFIG --tenant CODE --name NAME " \
    "(--cert FILE | --fingerprint HEX)"
int cmd_staff(int argc, char **argv);

#endif
