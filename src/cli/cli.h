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
#include <stdint.h>
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
#define CMD_AUDIT_VERIFY_SYNOPSIS "audit verify [-c CONFIG] [--pubkey FILE] [--deep]"
#define CMD_AUDIT_QUERY_SYNOPSIS \
    "audit query [-c CONFIG] [--tenant T] [--actor A] [--action X] [--object O] " \
    "[--since ISO] [--until ISO] [--format json|csv]"
#define CMD_AUDIT_REVIEW_SYNOPSIS \
    "audit review [-c CONFIG] --actor A [--since ISO] [--until ISO] [--format json|csv]"
#define CMD_AUDIT_SYNOPSIS CMD_AUDIT_VERIFY_SYNOPSIS "\n" CMD_AUDIT_QUERY_SYNOPSIS "\n" \
    CMD_AUDIT_REVIEW_SYNOPSIS

/* The store and key commands (cmd_store.c, cmd_key.c) read mamorid.conf. */
#define CLI_DEFAULT_CONFIG "/etc/mamori/mamorid.conf"
#define CMD_MIGRATE_SYNOPSIS "migrate [-c CONFIG] [--check]"
#define CMD_TENANT_CREATE_SYNOPSIS "tenant create [-c CONFIG] CODE"
#define CMD_TENANT_LIST_SYNOPSIS "tenant list [-c CONFIG]"
#define CMD_TENANT_ERASE_SYNOPSIS "tenant erase [-c CONFIG] --confirm CODE CODE"
#define CMD_TENANT_SYNOPSIS CMD_TENANT_CREATE_SYNOPSIS "\n" \
    CMD_TENANT_LIST_SYNOPSIS "\n" CMD_TENANT_ERASE_SYNOPSIS
#define CMD_KEY_ROTATE_SYNOPSIS "key rotate [-c CONFIG] CODE"
#define CMD_KEY_REWRAP_SYNOPSIS "key rewrap [-c CONFIG] CODE"
#define CMD_KEY_REENCRYPT_SYNOPSIS "key reencrypt [-c CONFIG] [--batch N] CODE"
#define CMD_KEY_VERSIONS_SYNOPSIS "key versions [-c CONFIG] CODE"
#define CMD_KEY_SYNOPSIS CMD_KEY_ROTATE_SYNOPSIS "\n" \
    CMD_KEY_REWRAP_SYNOPSIS "\n" CMD_KEY_REENCRYPT_SYNOPSIS "\n" \
    CMD_KEY_VERSIONS_SYNOPSIS

/* Rows per transaction of `key reencrypt` (--batch). */
#define CLI_REENCRYPT_BATCH     500u
#define CLI_REENCRYPT_BATCH_MAX 100000u

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

/* After a subcommand ran (argv[0] is its name): if it changes state,
 * append its audit record with the outcome (R7.7).  Returns the exit
 * status to use: exit_code, or CLI_FAIL when the record cannot be
 * written (cli_audit.c). */
int cli_audit_command(int argc, char **argv, int exit_code);

/* Record `action` on `tenant` (with a row count) now, before a command's
 * change is made durable, as an import does before its commit: the
 * command must not commit if this fails (R7.1).  0 or -1. */
int cli_audit_before(const char *config, const char *action, const char *tenant,
                     int64_t rows);

/* mamori migrate (cmd_store.c). */
int cmd_migrate(int argc, char **argv);

/* mamori tenant {create,list,erase} (cmd_store.c). */
int cmd_tenant(int argc, char **argv);

/* mamori key {rotate,rewrap,reencrypt,versions} (cmd_key.c). */
int cmd_key(int argc, char **argv);

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

/* Revoke terminal certificates in the revocation list file `path`, as
 * `mamori terminal revoke` does (R6.2; cmd_terminal.c): under an exclusive
 * flock on the list's directory, read the list with mamorid's own parser
 * (a list it would refuse is an error, a missing file an empty list),
 * append one "HEX # revoked TIME[: reason]" line for each of the n raw
 * SHA-256 fingerprints `fps` (n * PKI_FP_LEN bytes) not in it yet, and
 * replace the file atomically, keeping its mode and owner.  `reason` is
 * NULL or 1-200 printable ASCII characters.  *added gets the number of
 * lines appended (0: already all there, nothing written).  Does not tell
 * mamorid (cli_daemon_reload).  Errors are printed as "mamori <who>: ...".
 * Returns 0, or -1 with the file unchanged. */
int cli_revlist_add(const char *who, const char *path, const uint8_t *fps,
                    size_t n, const char *reason, size_t *added)
    __attribute__((warn_unused_result));

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

/* Send SIGHUP to the mamorid whose pid `pidfile` holds, so it reloads
 * `what` ("the list", "the keystore"), and say so on stdout.  No pid
 * file, a stale one, or a pid that is not a process called mamori* is
 * reported and not signalled (a reused pid is never hit).  Returns -1
 * only when a running mamorid could not be told. */
int cli_daemon_reload(const char *who, const char *pidfile, const char *what);

/* --- the store and key commands (shared by cmd_store.c, cmd_key.c) --- */

struct mamori_config;
struct keyring;
struct store;

/* Options of those commands; which ones a command takes is a mask. */
#define CLI_OPT_CHECK   0x1u            /* --check */
#define CLI_OPT_CONFIRM 0x2u            /* --confirm CODE */
#define CLI_OPT_BATCH   0x4u            /* --batch N */
#define CLI_OPT_CODE    0x8u            /* one CODE operand (else none) */

struct cli_store_opts {
    const char *config;                 /* -c, default CLI_DEFAULT_CONFIG */
    bool        check;
    const char *confirm;
    uint64_t    batch;                  /* default CLI_REENCRYPT_BATCH */
    const char *code;                   /* a valid local government code */
};

/* Parse argv of one store or key command.  Returns -1 when parsed (carry
 * on), else the exit status (usage printed, -h answered, bad CODE named). */
int cli_store_parse(int argc, char **argv, const char *who,
                    const char *synopsis, unsigned allowed,
                    struct cli_store_opts *o);

/*
 * What one such command works with.  cli_session_begin loads the
 * configuration; cli_session_keys takes the keys directory lock (shared
 * for readers, exclusive for commands that change the keystore, so two
 * operators never lose each other's change) and opens the keyring with
 * the default key_op hook (R7.7); cli_session_store opens the store.
 * Each prints its own error and returns 0 or -1.  cli_session_end closes
 * everything (also after a failure) and, when run as root, gives files
 * this command created to the owner of their directory, so the daemon's
 * user can still read them.
 */
struct cli_session {
    const char           *who;
    struct mamori_config *cfg;
    int                   lockfd;       /* keys directory, flock'd; -1 */
    struct keyring       *kr;
    struct store         *st;
    bool                  keys_changed; /* keystore rewritten */
};

int cli_session_begin(struct cli_session *s, const char *who,
                      const char *config) __attribute__((warn_unused_result));
int cli_session_keys(struct cli_session *s, bool exclusive)
    __attribute__((warn_unused_result));
int cli_session_store(struct cli_session *s, unsigned flags)
    __attribute__((warn_unused_result));
/* Record that the keystore was rewritten (its owner is fixed at once). */
void cli_session_keys_changed(struct cli_session *s);
/* Tell a running mamorid to re-read the keystore; 0 or -1. */
int cli_session_notify(struct cli_session *s);
void cli_session_end(struct cli_session *s);

/* mamori staff {enrol,terminal-register} (cmd_staff.c, docs/access.md). */
#define CMD_STAFF_SYNOPSIS \
    "staff enrol -c CONFIG --tenant CODE --user ID\n" \
    "staff terminal-register -c CONFIG --tenant CODE --name NAME " \
    "(--cert FILE | --fingerprint HEX)"
int cmd_staff(int argc, char **argv);

/* mamori import (cmd_import.c, docs/import-export.md): bulk import into one
 * tenant (R2.6).  No export here: the operator reads no personal data
 * (R1.3); exports are served by the HTTP API. */
#define CMD_IMPORT_SYNOPSIS \
    "import -c CONFIG --tenant CODE --kind residents|vouchers|vaccinations " \
    "[--encoding utf-8|cp932] [--dry-run] [--report FILE] FILE"
int cmd_import(int argc, char **argv);

/* Details a command adds to its own audit record (cli_audit.c): counts,
 * modes, outcomes; never a value from the data.  Kept until the record
 * is written; the key and a string value must be static text. */
void cli_audit_note_int(const char *key, int64_t value);
void cli_audit_note_str(const char *key, const char *value);

/* mamori synth (cmd_synth.c, docs/synth.md): synthetic test data (R9.4). */
#define CMD_SYNTH_SYNOPSIS \
    "synth --municipality CODE [--count N] [--seed S] [--out DIR] " \
    "[--encoding utf-8|cp932] [--start-date YYYY-MM-DD]"
int cmd_synth(int argc, char **argv);

#endif
