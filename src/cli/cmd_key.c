/*
 * cmd_key.c - `mamori key`: rotate, rewrap, re-encrypt and list the
 * keys of one tenant (R9.2 yearly rotation without downtime, R1.4,
 * R7.7 key operations recorded).
 *
 * rotate, rewrap and versions work on the keystore alone: they neither
 * need nor touch the database.  reencrypt is the optional pass after a
 * rotation that moves old rows to the newest data key.  Every key
 * operation reaches the keyring's key_op hook (cli_session_keys), and
 * after a change a running mamorid is sent SIGHUP so its key holder
 * re-reads the keystore.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crypto/keyring.h"
#include "store/store.h"

static void
no_keys(const char *who, const char *code)
{
    if (errno == ENOENT)
        cli_errx(who, "tenant %s has no keys: it was never created, or it "
                 "was erased", code);
    else
        cli_err(who, "cannot read the keys of tenant %s", code);
}

/* ---- mamori key rotate ------------------------------------------------- */

static int
key_rotate(int argc, char **argv)
{
    const char *who = "key rotate";
    struct cli_store_opts o;
    struct cli_session s;
    uint32_t old = 0, kv = 0, nv = 0;
    int rc;

    if ((rc = cli_store_parse(argc, argv, who, CMD_KEY_ROTATE_SYNOPSIS,
                              CLI_OPT_CODE, &o)) >= 0)
        return rc;
    rc = CLI_FAIL;
    if (cli_session_begin(&s, who, o.config) != 0 ||
        cli_session_keys(&s, true) != 0)
        goto out;
    if (keyring_versions(s.kr, o.code, &old, &kv) != 0) {
        no_keys(who, o.code);
        goto out;
    }
    /* R9.2: a new version for new writes; the old ones stay, so every
     * row stays readable and nothing waits. */
    if (keyring_rotate(s.kr, o.code, &nv) != 0) {
        cli_err(who, "cannot rotate the data key of tenant %s; nothing "
                "changed", o.code);
        goto out;
    }
    cli_session_keys_changed(&s);
    printf("tenant %s: data key v%u -> v%u\n", o.code, (unsigned)old,
           (unsigned)nv);
    printf("rows written before stay readable; mamori key reencrypt moves "
           "them to v%u (optional)\n", (unsigned)nv);
    rc = cli_session_notify(&s) == 0 ? CLI_OK : CLI_FAIL;
out:
    cli_session_end(&s);
    return rc;
}

/* ---- mamori key rewrap ------------------------------------------------- */

static int
key_rewrap(int argc, char **argv)
{
    const char *who = "key rewrap";
    struct cli_store_opts o;
    struct cli_session s;
    uint32_t dv = 0, old = 0, nv = 0;
    char range[48];
    int rc;

    if ((rc = cli_store_parse(argc, argv, who, CMD_KEY_REWRAP_SYNOPSIS,
                              CLI_OPT_CODE, &o)) >= 0)
        return rc;
    rc = CLI_FAIL;
    if (cli_session_begin(&s, who, o.config) != 0 ||
        cli_session_keys(&s, true) != 0)
        goto out;
    if (keyring_versions(s.kr, o.code, &dv, &old) != 0) {
        no_keys(who, o.code);
        goto out;
    }
    /* A new KEK; the data keys are the same keys, wrapped anew, so no
     * stored row changes (the database is not even opened). */
    if (keyring_rewrap(s.kr, o.code, &nv) != 0) {
        cli_err(who, "cannot rewrap the keys of tenant %s; nothing "
                "changed", o.code);
        goto out;
    }
    cli_session_keys_changed(&s);
    if (dv == 1)
        snprintf(range, sizeof(range), "data key v1");
    else
        snprintf(range, sizeof(range), "data keys v1-v%u", (unsigned)dv);
    printf("tenant %s: KEK v%u -> v%u; index key and %s rewrapped, no "
           "stored row changed\n", o.code, (unsigned)old, (unsigned)nv,
           range);
    rc = cli_session_notify(&s) == 0 ? CLI_OK : CLI_FAIL;
out:
    cli_session_end(&s);
    return rc;
}

/* ---- mamori key reencrypt ---------------------------------------------- */

static int
ctx_open(struct cli_session *s, const char *code,
         const struct key_provider *kp, struct store_tenant **ctx)
{
    enum store_status st = store_tenant_ctx_open(s->st, code, kp, ctx);

    if (st == STORE_OK)
        return 0;
    if (st == STORE_DENIED)
        cli_errx(s->who, "tenant %s is not active in the store (never "
                 "created, or erased)", code);
    else
        cli_errx(s->who, "cannot open tenant %s: %s", code,
                 store_strerror(st));
    return -1;
}

static int
key_reencrypt(int argc, char **argv)
{
    const char *who = "key reencrypt";
    struct cli_store_opts o;
    struct cli_session s;
    struct key_provider kp;
    struct store_tenant *ctx = NULL;
    unsigned long long total = 0;
    uint32_t cur = 0, kv = 0;
    enum store_status st;
    size_t done;
    int rc;

    if ((rc = cli_store_parse(argc, argv, who, CMD_KEY_REENCRYPT_SYNOPSIS,
                              CLI_OPT_CODE | CLI_OPT_BATCH, &o)) >= 0)
        return rc;
    rc = CLI_FAIL;
    /* Shared lock: no rotation or erase by another operator meanwhile. */
    if (cli_session_begin(&s, who, o.config) != 0 ||
        cli_session_keys(&s, false) != 0 || cli_session_store(&s, 0) != 0)
        goto out;
    if (keyring_versions(s.kr, o.code, &cur, &kv) != 0) {
        no_keys(who, o.code);
        goto out;
    }
    /*
     * R1.3: this is the one operator command with a tenant context.  It
     * needs one because re-encryption decrypts each old field and
     * encrypts it again under the newest data key; that happens inside
     * store_reencrypt, whose plaintext never leaves it.  The operator
     * process reads ciphertext and writes ciphertext; all it prints are
     * row counts and key versions.
     */
    keyring_provider(s.kr, &kp);
    if (ctx_open(&s, o.code, &kp, &ctx) != 0)
        goto out;
    for (;;) {
        st = store_reencrypt(ctx, (size_t)o.batch, &done);
        if (st != STORE_OK) {
            cli_errx(who, "re-encryption stopped after %llu row%s: %s; "
                     "run it again to go on", total, total == 1 ? "" : "s",
                     store_strerror(st));
            goto out;
        }
        if (done == 0)
            break;
        total += done;
        printf("tenant %s: %zu row%s moved to data key v%u (%llu so far)\n",
               o.code, done, done == 1 ? "" : "s", (unsigned)cur, total);
        fflush(stdout);
    }
    if (total == 0)
        printf("tenant %s: nothing to re-encrypt, every row is on data key "
               "v%u\n", o.code, (unsigned)cur);
    else
        printf("tenant %s: %llu row%s re-encrypted, every row is on data key "
               "v%u\n", o.code, total, total == 1 ? "" : "s", (unsigned)cur);
    rc = CLI_OK;
out:
    store_tenant_ctx_close(ctx);        /* wipes its grants */
    cli_session_end(&s);
    return rc;
}

/* ---- mamori key versions ----------------------------------------------- */

static int
key_versions(int argc, char **argv)
{
    const char *who = "key versions";
    struct cli_store_opts o;
    struct cli_session s;
    uint32_t dv = 0, kv = 0;
    int rc;

    if ((rc = cli_store_parse(argc, argv, who, CMD_KEY_VERSIONS_SYNOPSIS,
                              CLI_OPT_CODE, &o)) >= 0)
        return rc;
    rc = CLI_FAIL;
    if (cli_session_begin(&s, who, o.config) != 0 ||
        cli_session_keys(&s, false) != 0)
        goto out;
    if (keyring_versions(s.kr, o.code, &dv, &kv) != 0) {
        no_keys(who, o.code);
        goto out;
    }
    /* Versions are 1..current: a rotation adds the next, none is ever
     * removed alone (only erase removes them all). */
    printf("tenant %s: KEK v%u\n", o.code, (unsigned)kv);
    for (uint32_t v = 1; v <= dv; v++)
        printf("data key v%u%s\n", (unsigned)v,
               v == dv ? " (current: new writes use it)" : "");
    rc = CLI_OK;
out:
    cli_session_end(&s);
    return rc;
}

/* ---- dispatch ---------------------------------------------------------- */

int
cmd_key(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } cmds[] = {
        { "rotate",    key_rotate },
        { "rewrap",    key_rewrap },
        { "reencrypt", key_reencrypt },
        { "versions",  key_versions },
    };

    if (argc < 2) {
        cli_usage(CMD_KEY_SYNOPSIS);
        return CLI_USAGE;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].run(argc - 1, argv + 1);
    cli_errx("key", "unknown subcommand \"%s\"", argv[1]);
    cli_usage(CMD_KEY_SYNOPSIS);
    return CLI_USAGE;
}
