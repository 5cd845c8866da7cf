/*
 * cmd_store.c - `mamori migrate` and `mamori tenant`: the protected
 * storage as the platform operator runs it (R1.3, R1.4, R7.7), and the
 * session helpers `mamori key` (cmd_key.c) shares.
 *
 * R1.3: the operator works on the store and the keys but reads no
 * personal data.  These commands call only the store's operator calls
 * (open, migrate, counts, tenant create / state / erase, and the list of
 * a tenant's terminal fingerprints an erase revokes) and print ids,
 * states, versions and counts.  Key operations go through the keyring,
 * whose hook writes one key_op line per operation (R7.7).
 *
 * Tenants are listed from the municipality table (refdata) and the
 * keystore, since the store has no call that enumerates its tenants;
 * `tenant create` therefore accepts only codes in that table, and
 * `tenant list` cross-checks its active count with store_counts().
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "config/config.h"
#include "crypto/keyring.h"
#include "ref/lgcode.h"
#include "store/store.h"
#include "store/store_auth.h"
#include "tls/revoke.h"

#define LGCODE_TABLE "municipalities/municipalities_lgcode.csv"
#define LGCODE_PREFIXES 100000u         /* 5 digits; the 6th is a check */

enum { OPT_CHECK = 256, OPT_CONFIRM, OPT_BATCH };

/* ---- options ----------------------------------------------------------- */

/* The check digit a local government code's first five digits need. */
static char
lgcode_check_digit(const char *code)
{
    unsigned sum = 0;

    for (unsigned i = 0; i < 5; i++)
        sum += (unsigned)(code[i] - '0') * (6 - i);
    return (char)('0' + (11 - sum % 11) % 10);
}

/* 0 if `code` is a local government code; else says why.  Anything
 * but 6 digits is not echoed: an operator who pasted the wrong field
 * (an individual number, say) must not see it in a log. */
static int
code_check(const char *who, const char *what, const char *code)
{
    bool digits = strlen(code) == TENANT_ID_LEN;

    for (size_t i = 0; digits && i < TENANT_ID_LEN; i++)
        digits = code[i] >= '0' && code[i] <= '9';
    if (!digits) {
        cli_errx(who, "%s must be a local government code: 6 digits, the "
                 "last a check digit", what);
        return -1;
    }
    if (!tenant_id_valid(code)) {
        cli_errx(who, "%s is not a local government code: its check digit "
                 "should be %c", code, lgcode_check_digit(code));
        return -1;
    }
    return 0;
}

int
cli_store_parse(int argc, char **argv, const char *who, const char *synopsis,
                unsigned allowed, struct cli_store_opts *o)
{
    struct option opts[6];
    size_t n = 0;
    int ch;

    /* Only the options this command takes: getopt refuses the rest. */
    opts[n++] = (struct option){ "config", required_argument, NULL, 'c' };
    if (allowed & CLI_OPT_CHECK)
        opts[n++] = (struct option){ "check", no_argument, NULL, OPT_CHECK };
    if (allowed & CLI_OPT_CONFIRM)
        opts[n++] = (struct option){ "confirm", required_argument, NULL,
                                     OPT_CONFIRM };
    if (allowed & CLI_OPT_BATCH)
        opts[n++] = (struct option){ "batch", required_argument, NULL,
                                     OPT_BATCH };
    opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
    opts[n] = (struct option){ NULL, 0, NULL, 0 };

    memset(o, 0, sizeof(*o));
    o->config = CLI_DEFAULT_CONFIG;
    o->batch = CLI_REENCRYPT_BATCH;
    cli_getopt_reset();
    while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o->config = optarg;
            break;
        case OPT_CHECK:
            o->check = true;
            break;
        case OPT_CONFIRM:
            o->confirm = optarg;
            break;
        case OPT_BATCH:
            if (util_parse_u64(optarg, 1, CLI_REENCRYPT_BATCH_MAX,
                               &o->batch) != 0) {
                cli_errx(who, "--batch must be a whole number from 1 to %u",
                         CLI_REENCRYPT_BATCH_MAX);
                return CLI_USAGE;
            }
            break;
        case 'h':
            cli_usage(synopsis);
            return CLI_OK;
        default:
            cli_bad_option(who, argv);
            return CLI_USAGE;
        }
    }
    if (argc - optind != ((allowed & CLI_OPT_CODE) ? 1 : 0)) {
        cli_usage(synopsis);
        return CLI_USAGE;
    }
    if (allowed & CLI_OPT_CODE) {
        o->code = argv[optind];
        if (code_check(who, "CODE", o->code) != 0)
            return CLI_USAGE;
    }
    return -1;                          /* parsed; carry on */
}

/* ---- the session ------------------------------------------------------- */

int
cli_session_begin(struct cli_session *s, const char *who, const char *config)
{
    char err[PATH_MAX + 256];

    memset(s, 0, sizeof(*s));
    s->who = who;
    s->lockfd = -1;
    if (sodium_init() < 0) {
        cli_errx(who, "cannot initialise libsodium");
        return -1;
    }
    if ((s->cfg = calloc(1, sizeof(*s->cfg))) == NULL) {
        cli_err(who, "out of memory");
        return -1;
    }
    if (config_load(config, s->cfg, err, sizeof(err)) != 0) {
        cli_errx(who, "%s", err);
        return -1;
    }
    return 0;
}

int
cli_session_keys(struct cli_session *s, bool exclusive)
{
    const char *dir = s->cfg->keys_dir;
    int op = exclusive ? LOCK_EX : LOCK_SH;

    /* One keystore writer at a time: keyring_open reads the file and a
     * change rewrites it whole, so without the lock a rotation running
     * beside an erase could write the erased keys back. */
    s->lockfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->lockfd < 0) {
        cli_err(s->who, "cannot open the keys directory %s", dir);
        return -1;
    }
    if (flock(s->lockfd, op | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) {
            cli_err(s->who, "cannot lock %s", dir);
            return -1;
        }
        cli_errx(s->who, "waiting for another mamori command using %s", dir);
        if (flock(s->lockfd, op) != 0) {
            cli_err(s->who, "cannot lock %s", dir);
            return -1;
        }
    }
    /* R7.7: the keyring reports each key operation to its default hook
     * as a key_op line at info level; the tool runs at warn, so raise
     * it (grants stay at debug). */
    if (!log_enabled(LOG_LVL_INFO))
        log_setup(NULL, LOG_TO_STDERR, LOG_LVL_INFO);
    if (keyring_open(s->cfg->master_key, dir, NULL, &s->kr) != 0) {
        if (errno == EBADMSG)
            cli_errx(s->who, "%s/%s fails its integrity check: it was "
                     "edited or damaged, or %s is not the master key it "
                     "was made with; nothing changed", dir, KEYRING_FILE,
                     s->cfg->master_key);
        else if (errno == EPERM)
            cli_errx(s->who, "%s must be a 32-byte file readable by its "
                     "owner only (chmod 600)", s->cfg->master_key);
        else
            cli_err(s->who, "cannot open the keyring (%s, %s)",
                    s->cfg->master_key, dir);
        return -1;
    }
    return 0;
}

static bool
sqlite_backend(const struct cli_session *s)
{
    return s->cfg->store_backend == STORE_BACKEND_SQLITE;
}

/* Where the store is, for messages: never the conninfo (a password may
 * be in it). */
static const char *
store_where(const struct cli_session *s)
{
    return sqlite_backend(s) ? s->cfg->store_path :
        "PostgreSQL (store.conninfo)";
}

static enum store_status
store_try(const struct cli_session *s, unsigned flags, struct store **out)
{
    struct store_config sc;

    memset(&sc, 0, sizeof(sc));
    sc.backend = s->cfg->store_backend;
    sc.path = s->cfg->store_path;
    sc.conninfo = s->cfg->store_conninfo;
    return store_open(&sc, flags, out);
}

static void
say_newer(const struct cli_session *s)
{
    cli_errx(s->who, "the database schema in %s is newer than this mamori "
             "(version %d): a newer mamori migrated it; run that version "
             "(a database is never migrated down)", store_where(s),
             STORE_SCHEMA_VERSION);
}

int
cli_session_store(struct cli_session *s, unsigned flags)
{
    enum store_status rc;

    /* Opening would create an empty SQLite file; say what is wrong. */
    if (sqlite_backend(s) && !(flags & STORE_OPEN_MIGRATE) &&
        access(s->cfg->store_path, F_OK) != 0 && errno == ENOENT) {
        cli_errx(s->who, "no database at %s: run mamori migrate -c %s "
                 "first", s->cfg->store_path, s->cfg->path);
        return -1;
    }
    rc = store_try(s, flags, &s->st);
    if (rc == STORE_OK)
        return 0;
    s->st = NULL;
    if (rc == STORE_VERSION && !(flags & STORE_OPEN_MIGRATE)) {
        struct store *st = NULL;

        /* Older or newer?  Only an older one opens for migration. */
        rc = store_try(s, STORE_OPEN_MIGRATE, &st);
        store_close(st);
        if (rc == STORE_OK) {
            cli_errx(s->who, "the database schema in %s is older than this "
                     "mamori (version %d): run mamori migrate -c %s",
                     store_where(s), STORE_SCHEMA_VERSION, s->cfg->path);
            return -1;
        }
    }
    if (rc == STORE_VERSION)
        say_newer(s);
    else
        cli_errx(s->who, "cannot open the store in %s: %s", store_where(s),
                 store_strerror(rc));
    return -1;
}

/* Run as root, a file this command created belongs to root; give it to
 * the owner of its directory (the daemon's user), as init did.  Files
 * that already belonged to someone else are left alone. */
static void
own_if_ours(const char *who, const char *path)
{
    struct stat st;

    if (geteuid() != 0 || lstat(path, &st) != 0 || st.st_uid != 0)
        return;
    if (cli_own_like_parent(path) != 0)
        cli_err(who, "warning: cannot give %s to the owner of its "
                "directory", path);
}

void
cli_session_keys_changed(struct cli_session *s)
{
    char path[PATH_MAX];

    s->keys_changed = true;
    if (util_path_join(path, sizeof(path), s->cfg->keys_dir,
                       KEYRING_FILE) == 0)
        own_if_ours(s->who, path);
}

int
cli_session_notify(struct cli_session *s)
{
    return cli_daemon_reload(s->who, s->cfg->pidfile, "the keystore");
}

void
cli_session_end(struct cli_session *s)
{
    bool opened = s->st != NULL;

    store_close(s->st);
    keyring_close(s->kr);
    if (opened && sqlite_backend(s)) {
        static const char *const ext[] = { "", "-wal", "-shm" };
        char path[PATH_MAX];

        for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++)
            if (snprintf(path, sizeof(path), "%s%s", s->cfg->store_path,
                         ext[i]) < (int)sizeof(path))
                own_if_ours(s->who, path);
    }
    if (s->lockfd >= 0)
        close(s->lockfd);               /* releases the lock */
    free(s->cfg);
    memset(s, 0, sizeof(*s));
    s->lockfd = -1;
}

/* ---- mamori migrate ---------------------------------------------------- */

static void
say_pending(int have, int want)
{
    int n = want - have;

    printf("schema version %d, this mamori expects %d: %d migration%s "
           "pending\n", have, want, n, n == 1 ? "" : "s");
}

static int
migrate_check(struct cli_session *s)
{
    int v = 0, want = STORE_SCHEMA_VERSION;
    enum store_status rc;

    if (sqlite_backend(s) && access(s->cfg->store_path, F_OK) != 0 &&
        errno == ENOENT) {
        /* --check creates nothing. */
        printf("no database at %s yet\n", s->cfg->store_path);
        say_pending(0, want);
        return CLI_FAIL;
    }
    if (cli_session_store(s, STORE_OPEN_MIGRATE) != 0)
        return CLI_FAIL;
    if ((rc = store_schema_version(s->st, &v)) != STORE_OK) {
        cli_errx(s->who, "cannot read the schema version: %s",
                 store_strerror(rc));
        return CLI_FAIL;
    }
    if (v == want) {
        printf("up to date (%d)\n", v);
        return CLI_OK;
    }
    say_pending(v, want);
    return CLI_FAIL;
}

int
cmd_migrate(int argc, char **argv)
{
    struct cli_store_opts o;
    struct cli_session s;
    enum store_status st;
    int rc, from = 0, to = 0;

    if ((rc = cli_store_parse(argc, argv, "migrate", CMD_MIGRATE_SYNOPSIS,
                              CLI_OPT_CHECK, &o)) >= 0)
        return rc;
    rc = CLI_FAIL;
    if (cli_session_begin(&s, "migrate", o.config) != 0)
        goto out;
    if (o.check) {
        rc = migrate_check(&s);
        goto out;
    }
    if (cli_session_store(&s, STORE_OPEN_MIGRATE) != 0)
        goto out;
    st = store_migrate(s.st, &from, &to);
    if (st == STORE_VERSION) {
        say_newer(&s);
    } else if (st != STORE_OK) {
        /* Each step is its own transaction: what was applied stays. */
        cli_errx("migrate", "migration to version %d failed: %s; the "
                 "schema is at version %d, run mamori migrate again",
                 to + 1, store_strerror(st), to);
    } else {
        if (from == to)
            printf("up to date (%d)\n", to);
        else
            printf("schema version %d -> %d\n", from, to);
        rc = CLI_OK;
    }
out:
    cli_session_end(&s);
    return rc;
}

/* ---- mamori tenant create ---------------------------------------------- */

static int
municipalities_load(const struct cli_session *s, struct lgcode_table **out)
{
    char path[PATH_MAX], err[PATH_MAX + 256];

    if (util_path_join(path, sizeof(path), s->cfg->refdata,
                       LGCODE_TABLE) != 0) {
        cli_errx(s->who, "refdata path too long: %s", s->cfg->refdata);
        return -1;
    }
    if (lgcode_table_load(path, out, err, sizeof(err)) != 0) {
        cli_errx(s->who, "cannot load the municipality table: %s", err);
        return -1;
    }
    return 0;
}

/* Data key versions 1..`last` (a rotation always adds the next one). */
static void
key_range(char *out, size_t outsz, uint32_t last)
{
    if (last == 1)
        snprintf(out, outsz, "data key v1");
    else
        snprintf(out, outsz, "data keys v1-v%u", (unsigned)last);
}

/* Keys first, then the row; if the row cannot be made the new keys are
 * destroyed again, so a refusal leaves nothing.  Keys found without a
 * row are those of a create that stopped half way: kept and used. */
static int
tenant_make(struct cli_session *s, const char *code)
{
    bool resumed = keyring_tenant_exists(s->kr, code) != 0;
    enum store_status st;

    if (!resumed) {
        if (keyring_tenant_create(s->kr, code) != 0) {
            cli_err(s->who, "cannot create the keys of tenant %s", code);
            return -1;
        }
        cli_session_keys_changed(s);
    }
    if ((st = store_tenant_create(s->st, code)) != STORE_OK) {
        cli_errx(s->who, "cannot create tenant %s in the store: %s", code,
                 store_strerror(st));
        if (!resumed) {
            if (keyring_erase(s->kr, code) == 0)
                cli_errx(s->who, "its new keys were destroyed again; "
                         "nothing was created");
            else
                cli_err(s->who, "its new keys could not be removed; run "
                        "mamori tenant create again once the store works");
        }
        return -1;
    }
    if (resumed)
        printf("tenant %s created (its keys were made by an earlier, "
               "interrupted create)\n", code);
    else
        printf("tenant %s created: KEK v1, index key, data key v1\n", code);
    return 0;
}

static int
tenant_create(int argc, char **argv)
{
    const char *who = "tenant create";
    struct cli_store_opts o;
    struct cli_session s;
    struct lgcode_table *lg = NULL;
    char state[16];
    enum store_status st;
    int rc;

    if ((rc = cli_store_parse(argc, argv, who, CMD_TENANT_CREATE_SYNOPSIS,
                              CLI_OPT_CODE, &o)) >= 0)
        return rc;
    rc = CLI_FAIL;
    if (cli_session_begin(&s, who, o.config) != 0 ||
        municipalities_load(&s, &lg) != 0)
        goto out;
    /* The check digit catches most typos, not all: a tenant must be a
     * municipality or prefecture of the table (which also keeps `tenant
     * list` whole), or the national scope of platform operators and
     * national viewers (LGCODE_NATIONAL, docs/access.md). */
    if (lgcode_scope(lg, o.code) == LGCODE_SCOPE_UNKNOWN) {
        cli_errx(who, "%s has a valid check digit but is not in the "
                 "municipality table (%s/%s), nor the national scope %s",
                 o.code, s.cfg->refdata, LGCODE_TABLE, LGCODE_NATIONAL);
        goto out;
    }
    if (cli_session_keys(&s, true) != 0 || cli_session_store(&s, 0) != 0)
        goto out;
    st = store_tenant_state(s.st, o.code, state);
    if (st == STORE_OK) {
        /* Nothing is touched: an erased tenant's code stays used. */
        cli_errx(who, "tenant %s already exists (%s)", o.code, state);
        goto out;
    }
    if (st != STORE_NOTFOUND) {
        cli_errx(who, "cannot read tenant %s: %s", o.code,
                 store_strerror(st));
        goto out;
    }
    if (tenant_make(&s, o.code) == 0) {
        printf("scope: %s\n", lgcode_scope_name(lgcode_scope(lg, o.code)));
        rc = CLI_OK;
    }
    if (s.keys_changed && cli_session_notify(&s) != 0)
        rc = CLI_FAIL;
out:
    lgcode_table_free(lg);
    cli_session_end(&s);
    return rc;
}

/* ---- mamori tenant list ------------------------------------------------ */

struct list_totals {
    size_t   shown, active, erased, odd;
};

/* One line for `code` if the store or the keystore knows it. */
static int
tenant_show(struct cli_session *s, const char *code, struct list_totals *t)
{
    struct store_counts c;
    uint32_t dv = 0, kv = 0;
    char state[16], dks[16] = "-", kek[16] = "-";
    bool keys = keyring_versions(s->kr, code, &dv, &kv) == 0;
    enum store_status st = store_tenant_state(s->st, code, state);

    if (st == STORE_NOTFOUND) {
        if (!keys)
            return 0;
        snprintf(state, sizeof(state), "keys-only");
    } else if (st != STORE_OK) {
        cli_errx(s->who, "cannot read tenant %s: %s", code,
                 store_strerror(st));
        return -1;
    }
    if ((st = store_counts(s->st, code, &c)) != STORE_OK) {
        cli_errx(s->who, "cannot count the rows of tenant %s: %s", code,
                 store_strerror(st));
        return -1;
    }
    if (keys) {
        snprintf(dks, sizeof(dks), "v%u", (unsigned)dv);
        snprintf(kek, sizeof(kek), "v%u", (unsigned)kv);
    }
    printf("%-6s  %-9s  %-8s  %-4s  %9llu  %9llu\n", code, state, dks, kek,
           (unsigned long long)c.residents,
           (unsigned long long)c.idempotency);
    t->shown++;
    if (strcmp(state, "active") == 0) {
        t->active++;
        t->odd += !keys;
    } else if (strcmp(state, "erased") == 0) {
        t->erased++;
        t->odd += keys;
    } else {
        t->odd++;
    }
    return 0;
}

static int
tenant_list(int argc, char **argv)
{
    const char *who = "tenant list";
    struct cli_store_opts o;
    struct cli_session s;
    struct lgcode_table *lg = NULL;
    struct list_totals t = { 0, 0, 0, 0 };
    struct store_counts all;
    enum store_status st;
    int rc;

    if ((rc = cli_store_parse(argc, argv, who, CMD_TENANT_LIST_SYNOPSIS, 0,
                              &o)) >= 0)
        return rc;
    rc = CLI_FAIL;
    if (cli_session_begin(&s, who, o.config) != 0 ||
        municipalities_load(&s, &lg) != 0 ||
        cli_session_keys(&s, false) != 0 || cli_session_store(&s, 0) != 0)
        goto out;
    printf("%-6s  %-9s  %-8s  %-4s  %9s  %9s\n", "TENANT", "STATE",
           "DATA-KEY", "KEK", "RESIDENTS", "IDEM-KEYS");
    /* Every code: those of the table, and any the keystore holds. */
    for (unsigned p = 0; p < LGCODE_PREFIXES; p++) {
        char code[TENANT_ID_LEN + 1];

        snprintf(code, sizeof(code), "%05u", p);
        code[5] = lgcode_check_digit(code);
        code[6] = '\0';
        if ((lgcode_lookup(lg, code) != NULL ||
             keyring_tenant_exists(s.kr, code)) &&
            tenant_show(&s, code, &t) != 0)
            goto out;
    }
    if ((st = store_counts(s.st, NULL, &all)) != STORE_OK) {
        cli_errx(who, "cannot count the store's rows: %s",
                 store_strerror(st));
        goto out;
    }
    printf("%zu tenant%s: %zu active, %zu erased; %llu resident row%s in "
           "the store\n", t.shown, t.shown == 1 ? "" : "s", t.active,
           t.erased, (unsigned long long)all.residents,
           all.residents == 1 ? "" : "s");
    if (t.odd > 0)
        printf("%zu tenant%s half created or half erased: finish with "
               "mamori tenant create or mamori tenant erase\n", t.odd,
               t.odd == 1 ? " is" : "s are");
    rc = CLI_OK;
    if (all.tenants != t.active) {
        cli_errx(who, "the store has %llu active tenants but %zu are listed: "
                 "some have codes outside the municipality table",
                 (unsigned long long)all.tenants, t.active);
        rc = CLI_FAIL;
    }
out:
    lgcode_table_free(lg);
    cli_session_end(&s);
    return rc;
}

/* ---- mamori tenant erase ----------------------------------------------- */

/* R1.4 crypto-shredding: the keys go before the rows, durably, so from
 * then on nothing of the tenant can be decrypted, even if the row
 * deletion below never happens (a crash, the database down); running
 * the command again finishes it.  Only the revocation of its terminals
 * (erase_terminals), which destroys nothing, comes earlier. */
static int
erase_keys(struct cli_session *s, const char *code)
{
    uint32_t dv = 0, kv = 0;
    char range[48];

    if (keyring_versions(s->kr, code, &dv, &kv) != 0) {
        printf("tenant %s: no keys (destroyed before)\n", code);
        return 0;
    }
    if (keyring_erase(s->kr, code) != 0) {
        cli_err(s->who, "cannot destroy the keys of tenant %s; nothing "
                "was erased", code);
        return -1;
    }
    cli_session_keys_changed(s);
    key_range(range, sizeof(range), dv);
    printf("tenant %s: keys destroyed: KEK v%u, index key, %s\n", code,
           (unsigned)kv, range);
    return 0;
}

/* The fingerprints of a tenant's registered terminals, any state. */
struct fp_vec {
    uint8_t *fps;                       /* n * PKI_FP_LEN, owned */
    size_t   n, cap;
    bool     failed;                    /* a stopped walk is STORE_OK */
};

static int
collect_fp(const struct terminal_info *t, void *ctx)
{
    struct fp_vec *v = ctx;

    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        uint8_t *grown;

        if (cap > REVOKE_MAX_ENTRIES ||
            (grown = realloc(v->fps, cap * PKI_FP_LEN)) == NULL) {
            v->failed = true;
            return -1;                  /* stops the walk */
        }
        v->fps = grown;
        v->cap = cap;
    }
    memcpy(v->fps + v->n++ * PKI_FP_LEN, t->fingerprint, PKI_FP_LEN);
    return 0;
}

/* R6.2, R1.4: before anything is destroyed, every terminal certificate
 * the tenant registered (active or revoked through the API) goes into
 * the revocation list mamorid reads.  Its store rows go with the erase,
 * and with them the store's part of the TLS layer's revoked set, so
 * without this a certificate revoked through the API would pass the
 * handshake again.  Fails closed: if the list cannot be written, the
 * caller erases nothing.  A rerun adds nothing it already holds. */
static int
erase_terminals(struct cli_session *s, const char *code, size_t *added)
{
    struct fp_vec v = { NULL, 0, 0, false };
    char reason[48];
    enum store_status st;
    int rc = -1;

    *added = 0;
    st = store_terminal_list(s->st, code, collect_fp, &v);
    if (st != STORE_OK || v.failed) {
        cli_errx(s->who, "cannot list the terminals of tenant %s (%s); "
                 "nothing erased", code, v.failed ?
                 "too many, or out of memory" : store_strerror(st));
        goto out;
    }
    snprintf(reason, sizeof(reason), "tenant %s erased", code);
    if (cli_revlist_add(s->who, s->cfg->revocation_list, v.fps, v.n, reason,
                        added) != 0) {
        cli_errx(s->who, "cannot add the %zu terminal certificate%s of "
                 "tenant %s to the revocation list %s; nothing erased",
                 v.n, v.n == 1 ? "" : "s", code, s->cfg->revocation_list);
        goto out;
    }
    printf("tenant %s: %zu terminal certificate%s revoked in %s", code,
           *added, *added == 1 ? "" : "s", s->cfg->revocation_list);
    if (v.n > *added)
        printf(" (%zu listed already)", v.n - *added);
    printf("\n");
    cli_audit_note_int("terminals", (int64_t)v.n);
    cli_audit_note_int("terminals_revoked", (int64_t)*added);
    rc = 0;
out:
    free(v.fps);
    return rc;
}

static int
erase_rows(struct cli_session *s, const char *code, const char *state)
{
    struct store_counts c;
    enum store_status st;

    if (strcmp(state, "erased") == 0) {
        printf("tenant %s: rows already deleted\n", code);
        return 0;
    }
    if ((st = store_counts(s->st, code, &c)) != STORE_OK ||
        (st = store_tenant_erase(s->st, code)) != STORE_OK) {
        cli_errx(s->who, "%s, but the rows of tenant %s could not be "
                 "deleted (%s): run mamori tenant erase again",
                 s->keys_changed ? "the keys are destroyed, so the data is "
                 "unreadable already" : "the keys were gone before", code,
                 store_strerror(st));
        return -1;
    }
    printf("tenant %s: %llu resident row%s and %llu idempotency key%s "
           "deleted; state erased\n", code, (unsigned long long)c.residents,
           c.residents == 1 ? "" : "s", (unsigned long long)c.idempotency,
           c.idempotency == 1 ? "" : "s");
    return 0;
}

/* Tell a running mamorid what changed: the keystore (its key holder),
 * the revocation list (its workers), or both with one SIGHUP. */
static int
erase_notify(struct cli_session *s, bool list_changed)
{
    if (s->keys_changed && list_changed)
        return cli_daemon_reload(s->who, s->cfg->pidfile,
                                 "the keystore and the revocation list");
    if (list_changed)
        return cli_daemon_reload(s->who, s->cfg->pidfile,
                                 "the revocation list");
    return s->keys_changed ? cli_session_notify(s) : 0;
}

static int
tenant_erase(int argc, char **argv)
{
    const char *who = "tenant erase";
    struct cli_store_opts o;
    struct cli_session s;
    char state[16] = "";
    enum store_status st;
    size_t revoked = 0;
    bool keys;
    int rc;

    if ((rc = cli_store_parse(argc, argv, who, CMD_TENANT_ERASE_SYNOPSIS,
                              CLI_OPT_CODE | CLI_OPT_CONFIRM, &o)) >= 0)
        return rc;
    /* Irreversible: the code is typed twice, and must be the same. */
    if (o.confirm == NULL) {
        cli_errx(who, "erasing destroys the tenant's keys and rows for "
                 "ever: repeat the code with --confirm %s", o.code);
        return CLI_USAGE;
    }
    if (strcmp(o.confirm, o.code) != 0) {
        cli_errx(who, "--confirm does not repeat %s; nothing erased",
                 o.code);
        return CLI_USAGE;
    }
    rc = CLI_FAIL;
    if (cli_session_begin(&s, who, o.config) != 0 ||
        cli_session_keys(&s, true) != 0 || cli_session_store(&s, 0) != 0)
        goto out;
    keys = keyring_tenant_exists(s.kr, o.code) != 0;
    st = store_tenant_state(s.st, o.code, state);
    if (st != STORE_OK && st != STORE_NOTFOUND) {
        cli_errx(who, "cannot read tenant %s: %s; nothing erased", o.code,
                 store_strerror(st));
        goto out;
    }
    if (!keys && st == STORE_NOTFOUND) {
        cli_errx(who, "no tenant %s", o.code);
        goto out;
    }
    if (!keys && strcmp(state, "erased") == 0) {
        printf("tenant %s is already erased\n", o.code);
        rc = CLI_OK;
        goto out;
    }
    /* The list first (it is what can fail without harm), then the keys,
     * then the rows. */
    if (st == STORE_OK && erase_terminals(&s, o.code, &revoked) != 0)
        goto out;
    if (erase_keys(&s, o.code) != 0)
        goto out;
    /* One SIGHUP: the key holder drops the keys and the workers refuse
     * the certificates now, not after the rows. */
    rc = erase_notify(&s, revoked > 0) != 0 ? CLI_FAIL : CLI_OK;
    if (st == STORE_OK && erase_rows(&s, o.code, state) != 0)
        rc = CLI_FAIL;
out:
    cli_session_end(&s);
    return rc;
}

/* ---- dispatch ---------------------------------------------------------- */

int
cmd_tenant(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } cmds[] = {
        { "create", tenant_create },
        { "list",   tenant_list },
        { "erase",  tenant_erase },
    };

    if (argc < 2) {
        cli_usage(CMD_TENANT_SYNOPSIS);
        return CLI_USAGE;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].run(argc - 1, argv + 1);
    cli_errx("tenant", "unknown subcommand \"%s\"", argv[1]);
    cli_usage(CMD_TENANT_SYNOPSIS);
    return CLI_USAGE;
}
