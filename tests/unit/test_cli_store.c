/*
 * test_cli_store.c - `mamori migrate`, `mamori tenant` and `mamori key`
 * (R1.3 the operator reads no personal data, R1.4 crypto-shredding,
 * R7.7 key operations recorded, R9.2 rotation without downtime).
 *
 * Each case makes a data directory with cmd_init (real config and master
 * key) and points a copy of its mamorid.conf at a fresh store: a SQLite
 * file in the temp directory, then, with MAMORI_TEST_PG set (a libpq
 * conninfo; scripts/pg-cluster.sh prints one), a fresh PostgreSQL schema
 * per case, dropped afterwards.  Unset, the PostgreSQL cases FAIL when
 * CI=true and are skipped, loudly, otherwise.
 *
 * Every command's stdout and stderr are captured, and every capture is
 * checked for the synthetic resident's name, kana, address and
 * individual number (R1.3); the same values are read back through the
 * store, so they are really there to leak.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>
#include <sqlite3.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/util.h"
#include "config/config.h"
#include "crypto/keyring.h"
#include "store/store.h"
#include "store/store_auth.h"
#include "tls/revoke.h"

#define T1 "131016"                     /* 千代田区 */
#define T2 "011002"                     /* 札幌市 */

/* Obviously synthetic (R9.4); the number has a valid check digit
 * (tests/data/mynumber_examples.csv). */
#define S_NAME     "テスト 太郎"
#define S_KANA     "テスト タロウ"
#define S_ADDRESS  "東京都千代田区試験町1丁目"
#define S_MYNUMBER "123456789018"

static enum store_backend backend;
static const char *pg_base;             /* MAMORI_TEST_PG */

struct fx {
    bool   skip;
    char   base[64];                    /* mkdtemp */
    char   data[PATH_MAX];              /* base/data: made by cmd_init */
    char   conf[PATH_MAX];              /* base/test.conf: the copy used */
    char   db[PATH_MAX];                /* SQLite file */
    char   schema[40];                  /* PostgreSQL schema */
    char   conninfo[1200];
    char   user[32];
    uid_t  uid;                         /* owner of the tree */
    pid_t  daemon;                      /* a fake mamorid, if running */
    struct mamori_config cfg;           /* test.conf, loaded */
};

/* ---- capture ------------------------------------------------------------- */

static char *
slurp_path(const char *path, size_t *len)
{
    char *buf;
    size_t n;

    if (util_read_file(path, 1 << 24, &buf, &n) != 0)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    if (len != NULL)
        *len = n;
    return buf;
}

/* R1.3: no output of any command holds a personal value. */
static void
assert_no_personal_data(const char *text)
{
    static const char *const needles[] = {
        S_NAME, S_KANA, S_ADDRESS, S_MYNUMBER, "テスト", "試験町",
    };

    for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)
        if (strstr(text, needles[i]) != NULL)
            fail_msg("command output contains \"%s\":\n%s", needles[i], text);
}

static int
dispatch(int argc, char **argv)
{
    if (strcmp(argv[0], "init") == 0)
        return cmd_init(argc, argv);
    if (strcmp(argv[0], "migrate") == 0)
        return cmd_migrate(argc, argv);
    if (strcmp(argv[0], "tenant") == 0)
        return cmd_tenant(argc, argv);
    if (strcmp(argv[0], "key") == 0)
        return cmd_key(argc, argv);
    fail_msg("no command %s", argv[0]);
    return -1;
}

static int
redirect(int fd, char *path)
{
    int tmp = mkstemp(path), saved = dup(fd);

    assert_true(tmp >= 0);
    assert_true(saved >= 0);
    assert_int_equal(dup2(tmp, fd), fd);
    close(tmp);
    return saved;
}

static char *
restore(int fd, int saved, const char *path)
{
    char *text;

    assert_int_equal(dup2(saved, fd), fd);
    close(saved);
    text = slurp_path(path, NULL);
    unlink(path);
    return text;
}

/* Run one subcommand with stdout and stderr captured; *out / *err get
 * them (malloc'd) when not NULL.  Both are checked for personal data,
 * then echoed to the real stderr so a failing case shows them. */
static int
run(char **out, char **err, int argc, char **argv)
{
    char opath[] = "/tmp/mamori-out-XXXXXX", epath[] = "/tmp/mamori-err-XXXXXX";
    char *o, *e;
    int so, se, rc;

    fflush(stdout);
    fflush(stderr);
    so = redirect(STDOUT_FILENO, opath);
    se = redirect(STDERR_FILENO, epath);
    rc = dispatch(argc, argv);
    fflush(stdout);
    fflush(stderr);
    o = restore(STDOUT_FILENO, so, opath);
    e = restore(STDERR_FILENO, se, epath);
    assert_no_personal_data(o);
    assert_no_personal_data(e);
    if (getenv("MAMORI_TEST_VERBOSE") != NULL)
        fprintf(stderr, "--- %s %s -> %d\n%s%s", argv[0],
                argc > 1 ? argv[1] : "", rc, o, e);
    if (out != NULL)
        *out = o;
    else
        free(o);
    if (err != NULL)
        *err = e;
    else
        free(e);
    return rc;
}

#define RUN(out, err, ...) \
    run((out), (err), \
        (int)(sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *)), \
        (char *[]){ __VA_ARGS__, NULL })

static void
assert_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("expected \"%s\" in:\n%s", needle, text);
}

/* Run and expect `rc`; the captured stream `which` ('o' or 'e') must
 * contain `needle` (NULL: no check). */
static void
expect(int rc, char which, const char *needle, int argc, char **argv)
{
    char *o = NULL, *e = NULL;

    assert_int_equal(run(&o, &e, argc, argv), rc);
    if (needle != NULL)
        assert_contains(which == 'o' ? o : e, needle);
    free(o);
    free(e);
}

#define EXPECT(rc, which, needle, ...) \
    expect((rc), (which), (needle), \
           (int)(sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *)), \
           (char *[]){ __VA_ARGS__, NULL })

/* ---- fixture ------------------------------------------------------------- */

static void
no_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static PGconn *
pg_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);

    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to PostgreSQL: %s", PQerrorMessage(c));
    PQsetNoticeProcessor(c, no_notice, NULL);
    return c;
}

static void
pg_exec(const char *conninfo, const char *sql)
{
    PGconn *c = pg_connect(conninfo);
    PGresult *r = PQexec(c, sql);

    if (PQresultStatus(r) != PGRES_COMMAND_OK &&
        PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* data/mamorid.conf with the store.* lines replaced by ours. */
static void
write_config(struct fx *f)
{
    char path[PATH_MAX], *text, *line, *next, *out;
    size_t len, n = 0, cap;
    char err[512];
    int w;

    assert_int_equal(util_path_join(path, sizeof(path), f->data,
                                    "mamorid.conf"), 0);
    text = slurp_path(path, &len);
    cap = len + 2048;
    out = malloc(cap);
    assert_non_null(out);
    for (line = text; line != NULL && *line != '\0'; line = next) {
        size_t l = strcspn(line, "\n");

        next = line[l] == '\n' ? line + l + 1 : NULL;
        if (strncmp(line, "store.", 6) == 0)
            continue;
        memcpy(out + n, line, l);
        n += l;
        out[n++] = '\n';
    }
    if (backend == STORE_BACKEND_SQLITE)
        w = snprintf(out + n, cap - n, "store.backend = sqlite\n"
                     "store.path = %s\n", f->db);
    else
        w = snprintf(out + n, cap - n, "store.backend = postgresql\n"
                     "store.conninfo = %s\n", f->conninfo);
    assert_true(w > 0 && (size_t)w < cap - n);
    n += (size_t)w;
    assert_int_equal(util_write_file_atomic(f->conf, out, n, 0600), 0);
    free(out);
    free(text);
    if (config_load(f->conf, &f->cfg, err, sizeof(err)) != 0)
        fail_msg("%s", err);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct passwd *pw;

    assert_non_null(f);
    *state = f;
    if (backend == STORE_BACKEND_POSTGRESQL && pg_base == NULL) {
        f->skip = true;
        return 0;
    }
    snprintf(f->base, sizeof(f->base), "/tmp/mamori-clistore-XXXXXX");
    assert_non_null(mkdtemp(f->base));
    snprintf(f->data, sizeof(f->data), "%s/data", f->base);
    snprintf(f->conf, sizeof(f->conf), "%s/test.conf", f->base);
    /* In data/db (the daemon user's), not the one init may have made. */
    assert_int_equal(util_path_join(f->db, sizeof(f->db), f->data,
                                    "db/test.sqlite"), 0);
    /* As root, init hands the tree to --user, which must exist. */
    if (geteuid() == 0 && (pw = getpwnam("nobody")) != NULL) {
        snprintf(f->user, sizeof(f->user), "nobody");
        f->uid = pw->pw_uid;
    } else {
        snprintf(f->user, sizeof(f->user), geteuid() == 0 ? "root" : "mamori");
        f->uid = geteuid();
    }
    assert_int_equal(RUN(NULL, NULL, "init", "--user", f->user,
                         "--internal-listen", "127.0.0.1:0",
                         "--public-listen", "127.0.0.1:0", f->data), CLI_OK);
    if (backend == STORE_BACKEND_POSTGRESQL) {
        unsigned char rnd[6];
        char hex[13], sql[80];

        /* A fresh schema per case, so reruns never collide. */
        randombytes_buf(rnd, sizeof(rnd));
        assert_int_equal(util_hex_encode(rnd, sizeof(rnd), hex, sizeof(hex)), 0);
        snprintf(f->schema, sizeof(f->schema), "cli_%s", hex);
        snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", f->schema);
        pg_exec(pg_base, sql);
        snprintf(f->conninfo, sizeof(f->conninfo),
                 "%s options='-csearch_path=%s' application_name=%s",
                 pg_base, f->schema, f->schema);
    }
    write_config(f);
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    if (f->daemon > 0) {                /* a case failed with it up */
        int status;

        kill(f->daemon, SIGKILL);
        waitpid(f->daemon, &status, 0);
    }
    if (!f->skip) {
        if (f->schema[0] != '\0') {
            char sql[80];

            snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", f->schema);
            pg_exec(pg_base, sql);
        }
        nftw(f->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    free(f);
    return 0;
}

#define BEGIN_CASE(f) \
    struct fx *f = *state; \
    do { \
        if ((f)->skip) \
            skip(); \
    } while (0)

/* ---- the test's own view of the store and keys --------------------------- */

static void
quiet_event(void *arg, const struct keyring_event *ev)
{
    (void)arg;
    (void)ev;
}

/* The keyring as it is on disk now (reopened each time: the commands
 * change the keystore behind the test's back). */
struct view {
    struct keyring     *kr;
    struct key_provider kp;
    struct store       *st;
};

static void
view_open(struct fx *f, struct view *v)
{
    struct keyring_events ev = { quiet_event, NULL };
    struct store_config sc;

    memset(v, 0, sizeof(*v));
    memset(&sc, 0, sizeof(sc));
    assert_int_equal(keyring_open(f->cfg.master_key, f->cfg.keys_dir, &ev,
                                  &v->kr), 0);
    keyring_provider(v->kr, &v->kp);
    sc.backend = backend;
    sc.path = f->db;
    sc.conninfo = f->conninfo;
    assert_int_equal(store_open(&sc, 0, &v->st), STORE_OK);
}

static void
view_close(struct view *v)
{
    store_close(v->st);
    keyring_close(v->kr);
}

static void
synthetic(struct resident *r, unsigned i)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->address_no, sizeof(r->address_no), "A%07u", i);
    snprintf(r->mynumber, sizeof(r->mynumber), "%s", S_MYNUMBER);
    snprintf(r->name, sizeof(r->name), "%s", S_NAME);
    snprintf(r->kana, sizeof(r->kana), "%s", S_KANA);
    snprintf(r->birth_date, sizeof(r->birth_date), "1970-01-01");
    snprintf(r->sex, sizeof(r->sex), "1");
    snprintf(r->postcode, sizeof(r->postcode), "1000001");
    snprintf(r->address, sizeof(r->address), "%s", S_ADDRESS);
}

/* Insert `n` synthetic residents into `tenant`; ids[i] gets row i's id. */
static void
put(struct fx *f, const char *tenant, unsigned n, int64_t *ids)
{
    static unsigned seq;                /* address numbers stay unique */
    struct view v;
    struct store_tenant *ctx = NULL;

    view_open(f, &v);
    assert_int_equal(store_tenant_ctx_open(v.st, tenant, &v.kp, &ctx),
                     STORE_OK);
    for (unsigned i = 0; i < n; i++) {
        struct resident r;

        synthetic(&r, ++seq);
        assert_int_equal(store_resident_insert(ctx, NULL, &r, &ids[i]),
                         STORE_OK);
        store_resident_wipe(&r);
    }
    store_tenant_ctx_close(ctx);
    view_close(&v);
}

/* Read row `id` of `tenant` through the store; returns its key version
 * and checks that it decrypts to the synthetic values. */
static uint32_t
read_back(struct fx *f, const char *tenant, int64_t id)
{
    struct view v;
    struct store_tenant *ctx = NULL;
    struct resident r;
    uint32_t kv;

    view_open(f, &v);
    assert_int_equal(store_tenant_ctx_open(v.st, tenant, &v.kp, &ctx),
                     STORE_OK);
    assert_int_equal(store_resident_get(ctx, id, &r), STORE_OK);
    assert_string_equal(r.name, S_NAME);
    assert_string_equal(r.mynumber, S_MYNUMBER);
    assert_string_equal(r.address, S_ADDRESS);
    kv = r.key_version;
    store_resident_wipe(&r);
    store_tenant_ctx_close(ctx);
    view_close(&v);
    return kv;
}

static void
versions(struct fx *f, const char *tenant, uint32_t *dv, uint32_t *kv)
{
    struct view v;

    view_open(f, &v);
    assert_int_equal(keyring_versions(v.kr, tenant, dv, kv), 0);
    view_close(&v);
}

static bool
has_keys(struct fx *f, const char *tenant)
{
    struct view v;
    bool yes;

    view_open(f, &v);
    yes = keyring_tenant_exists(v.kr, tenant) != 0;
    view_close(&v);
    return yes;
}

static enum store_status
state_of(struct fx *f, const char *tenant, char state[16])
{
    struct view v;
    enum store_status st;

    view_open(f, &v);
    st = store_tenant_state(v.st, tenant, state);
    view_close(&v);
    return st;
}

static struct store_counts
counts(struct fx *f, const char *tenant)
{
    struct view v;
    struct store_counts c;

    view_open(f, &v);
    assert_int_equal(store_counts(v.st, tenant, &c), STORE_OK);
    view_close(&v);
    return c;
}

static char *
keystore_bytes(struct fx *f, size_t *len)
{
    char path[PATH_MAX];

    assert_int_equal(util_path_join(path, sizeof(path), f->cfg.keys_dir,
                                    KEYRING_FILE), 0);
    return slurp_path(path, len);
}

static void
assert_keystore(struct fx *f, const char *before, size_t len)
{
    size_t n;
    char *now = keystore_bytes(f, &n);

    assert_int_equal(n, len);
    assert_memory_equal(now, before, len);
    free(now);
}

/* Run SQL on the database behind the store's back. */
static void
raw_exec(struct fx *f, const char *sql)
{
    if (backend == STORE_BACKEND_SQLITE) {
        sqlite3 *db;
        char *err = NULL;

        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
            fail_msg("%s: %s", sql, err);
        sqlite3_close(db);
    } else {
        pg_exec(f->conninfo, sql);
    }
}

/* BLAKE2b over every stored byte of the residents table, in key order. */
static void
rows_digest(struct fx *f, uint8_t out[32])
{
    crypto_generichash_state h;

    crypto_generichash_init(&h, NULL, 0, 32);
    if (backend == STORE_BACKEND_SQLITE) {
        sqlite3 *db;
        sqlite3_stmt *s;

        assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY,
                                         NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT * FROM residents "
                         "ORDER BY tenant_id, resident_id", -1, &s, NULL),
                         SQLITE_OK);
        while (sqlite3_step(s) == SQLITE_ROW)
            for (int i = 0; i < sqlite3_column_count(s); i++) {
                const void *b = sqlite3_column_blob(s, i);

                crypto_generichash_update(&h, b != NULL ? b : (const void *)"",
                                          (size_t)sqlite3_column_bytes(s, i));
            }
        sqlite3_finalize(s);
        sqlite3_close(db);
    } else {
        PGconn *c = pg_connect(f->conninfo);
        PGresult *r = PQexec(c, "SELECT r::text FROM residents r "
                             "ORDER BY tenant_id, resident_id");

        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        for (int i = 0; i < PQntuples(r); i++)
            crypto_generichash_update(&h, (const uint8_t *)PQgetvalue(r, i, 0),
                                      (size_t)PQgetlength(r, i, 0));
        PQclear(r);
        PQfinish(c);
    }
    crypto_generichash_final(&h, out, 32);
}

/* SQLite: the database file and its WAL, byte for byte. */
static void
file_digest(struct fx *f, uint8_t out[32])
{
    static const char *const ext[] = { "", "-wal" };
    crypto_generichash_state h;

    crypto_generichash_init(&h, NULL, 0, 32);
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_MAX + 8];
        char *buf;
        size_t len;

        snprintf(path, sizeof(path), "%s%s", f->db, ext[i]);
        if (access(path, F_OK) != 0)
            continue;
        buf = slurp_path(path, &len);
        crypto_generichash_update(&h, (const uint8_t *)path, strlen(path));
        crypto_generichash_update(&h, (const uint8_t *)buf, len);
        free(buf);
    }
    crypto_generichash_final(&h, out, 32);
}

static void
assert_owner(struct fx *f, const char *path)
{
    struct stat st;

    assert_int_equal(lstat(path, &st), 0);
    if (st.st_uid != f->uid)
        fail_msg("%s belongs to uid %u, not %u", path, (unsigned)st.st_uid,
                 (unsigned)f->uid);
}

static void
migrated(struct fx *f)
{
    EXPECT(CLI_OK, 'o', NULL, "migrate", "-c", f->conf);
}

static void
created(struct fx *f, char *tenant)
{
    EXPECT(CLI_OK, 'o', "created", "tenant", "create", "-c", f->conf, tenant);
}

/* ---- cases --------------------------------------------------------------- */

/* migrate on a fresh database, then "up to date"; --check exit codes;
 * a database newer than the code is refused by every command. */
static void
test_migrate(void **state)
{
    BEGIN_CASE(f);
    char want[64], *out;

    /* Fresh: --check reports and creates nothing. */
    EXPECT(CLI_FAIL, 'o', "pending", "migrate", "-c", f->conf, "--check");
    if (backend == STORE_BACKEND_SQLITE)
        assert_int_equal(access(f->db, F_OK), -1);
    /* Other commands refuse an unmigrated store. */
    EXPECT(CLI_FAIL, 'e', "mamori migrate", "tenant", "list", "-c", f->conf);
    if (backend == STORE_BACKEND_SQLITE)
        assert_int_equal(access(f->db, F_OK), -1);

    assert_int_equal(RUN(&out, NULL, "migrate", "-c", f->conf), CLI_OK);
    snprintf(want, sizeof(want), "schema version 0 -> %d\n",
             STORE_SCHEMA_VERSION);
    assert_string_equal(out, want);
    free(out);
    snprintf(want, sizeof(want), "up to date (%d)\n", STORE_SCHEMA_VERSION);
    assert_int_equal(RUN(&out, NULL, "migrate", "-c", f->conf), CLI_OK);
    assert_string_equal(out, want);
    free(out);
    assert_int_equal(RUN(&out, NULL, "migrate", "--check", "-c", f->conf),
                     CLI_OK);
    assert_string_equal(out, want);
    free(out);
    if (backend == STORE_BACKEND_SQLITE)
        assert_owner(f, f->db);         /* the daemon's user can open it */

    /* A database migrated by a newer mamori. */
    raw_exec(f, "INSERT INTO schema_migrations (version, applied_at) "
                "VALUES (99, 'future')");
    EXPECT(CLI_FAIL, 'e', "newer", "migrate", "-c", f->conf);
    EXPECT(CLI_FAIL, 'e', "newer", "migrate", "-c", f->conf, "--check");
    EXPECT(CLI_FAIL, 'e', "newer", "tenant", "list", "-c", f->conf);
    raw_exec(f, "DELETE FROM schema_migrations WHERE version = 99");
    EXPECT(CLI_OK, 'o', "up to date", "migrate", "-c", f->conf, "--check");

    /* Command line. */
    EXPECT(CLI_USAGE, 'e', "usage", "migrate", "-c", f->conf, "extra");
    EXPECT(CLI_USAGE, 'e', "--confirm", "migrate", "--confirm", T1);
    EXPECT(CLI_FAIL, 'e', "cannot read", "migrate", "-c",
           "/nonexistent/mamorid.conf");
}

/* tenant create: keys and row; a duplicate, a bad check digit, a code
 * that is not a municipality and a pasted individual number are refused
 * with nothing created. */
static void
test_tenant_create(void **state)
{
    BEGIN_CASE(f);
    char st[16], *ks, *out, *err;
    size_t kslen;
    uint32_t dv, kv;

    migrated(f);
    assert_int_equal(RUN(&out, &err, "tenant", "create", "-c", f->conf, T1),
                     CLI_OK);
    assert_contains(out, "tenant " T1 " created");
    /* R7.7: the key operation is on stderr as a key_op line. */
    assert_contains(err, "\"event\":\"key_op\"");
    assert_contains(err, "\"op\":\"tenant_create\",\"tenant\":\"" T1 "\"");
    free(out);
    free(err);
    versions(f, T1, &dv, &kv);
    assert_int_equal(dv, 1);
    assert_int_equal(kv, 1);
    assert_int_equal(state_of(f, T1, st), STORE_OK);
    assert_string_equal(st, "active");
    {
        char path[PATH_MAX];

        assert_int_equal(util_path_join(path, sizeof(path), f->cfg.keys_dir,
                                        KEYRING_FILE), 0);
        assert_owner(f, path);
    }

    ks = keystore_bytes(f, &kslen);
    EXPECT(CLI_FAIL, 'e', "tenant 131016 already exists", "tenant", "create",
           "-c", f->conf, T1);
    EXPECT(CLI_USAGE, 'e', "131017 is not a local government code: its "
           "check digit should be 6", "tenant", "create", "-c", f->conf,
           "131017");
    EXPECT(CLI_FAIL, 'e', "999997 has a valid check digit but is not in the "
           "municipality table", "tenant", "create", "-c", f->conf, "999997");
    EXPECT(CLI_USAGE, 'e', "6 digits", "tenant", "create", "-c", f->conf,
           "13101");
    /* An individual number pasted by mistake: refused, never echoed
     * (run() fails if it appears in the output). */
    EXPECT(CLI_USAGE, 'e', "6 digits", "tenant", "create", "-c", f->conf,
           S_MYNUMBER);
    EXPECT(CLI_USAGE, 'e', "usage", "tenant", "create", "-c", f->conf);
    assert_keystore(f, ks, kslen);
    free(ks);
    assert_false(has_keys(f, "131017"));
    assert_false(has_keys(f, "999997"));
    assert_int_equal(counts(f, NULL).tenants, 1);

    /* A create that stopped after the keys: the next one finishes it. */
    {
        struct view v;

        view_open(f, &v);
        assert_int_equal(keyring_tenant_create(v.kr, T2), 0);
        view_close(&v);
    }
    EXPECT(CLI_OK, 'o', "keys-only", "tenant", "list", "-c", f->conf);
    EXPECT(CLI_OK, 'o', "interrupted", "tenant", "create", "-c", f->conf, T2);
    assert_int_equal(state_of(f, T2, st), STORE_OK);
    assert_string_equal(st, "active");

    assert_int_equal(RUN(&out, NULL, "tenant", "list", "-c", f->conf), CLI_OK);
    assert_contains(out, "TENANT  STATE");
    assert_contains(out, "011002  active     v1        v1            0");
    assert_contains(out, "131016  active     v1        v1            0");
    assert_contains(out, "2 tenants: 2 active, 0 erased");
    assert_null(strstr(out, "half"));
    free(out);
}

/* R9.2: rotate makes v2 current; a row written under v1 still reads. */
static void
test_rotate(void **state)
{
    BEGIN_CASE(f);
    int64_t id1, id2;
    uint32_t dv, kv;
    char *out, *err;

    migrated(f);
    created(f, T1);
    put(f, T1, 1, &id1);
    assert_int_equal(read_back(f, T1, id1), 1);

    assert_int_equal(RUN(&out, &err, "key", "rotate", "-c", f->conf, T1),
                     CLI_OK);
    assert_int_equal(strncmp(out, "tenant 131016: data key v1 -> v2\n", 33),
                     0);
    assert_contains(err, "\"op\":\"rotate\",\"tenant\":\"" T1 "\","
                    "\"key_version\":2,\"result\":\"ok\"");
    free(out);
    free(err);
    versions(f, T1, &dv, &kv);
    assert_int_equal(dv, 2);
    assert_int_equal(kv, 1);
    assert_int_equal(read_back(f, T1, id1), 1);         /* old row reads */
    put(f, T1, 1, &id2);
    assert_int_equal(read_back(f, T1, id2), 2);         /* new writes: v2 */

    assert_int_equal(RUN(&out, NULL, "key", "versions", "-c", f->conf, T1),
                     CLI_OK);
    assert_string_equal(out, "tenant 131016: KEK v1\ndata key v1\n"
                        "data key v2 (current: new writes use it)\n");
    free(out);

    EXPECT(CLI_FAIL, 'e', "tenant 011002 has no keys", "key", "rotate",
           "-c", f->conf, T2);
    EXPECT(CLI_USAGE, 'e', "check digit", "key", "rotate", "-c", f->conf,
           "011001");
    EXPECT(CLI_USAGE, 'e', "unknown subcommand", "key", "spin", "-c",
           f->conf, T1);
    versions(f, T1, &dv, &kv);
    assert_int_equal(dv, 2);
}

/* rewrap: a new KEK, and not one stored byte changes. */
static void
test_rewrap(void **state)
{
    BEGIN_CASE(f);
    uint8_t rows0[32], rows1[32], file0[32];
    int64_t ids[3];
    uint32_t dv, kv;
    char *ks, *now;
    size_t kslen, nowlen;

    migrated(f);
    created(f, T1);
    put(f, T1, 3, ids);
    rows_digest(f, rows0);
    file_digest(f, file0);
    ks = keystore_bytes(f, &kslen);

    EXPECT(CLI_OK, 'o', "tenant 131016: KEK v1 -> v2; index key and data "
           "key v1 rewrapped, no stored row changed", "key", "rewrap", "-c",
           f->conf, T1);
    rows_digest(f, rows1);
    assert_memory_equal(rows0, rows1, 32);
    if (backend == STORE_BACKEND_SQLITE) {
        uint8_t file1[32];

        file_digest(f, file1);
        assert_memory_equal(file0, file1, 32);          /* file bytes too */
    }
    now = keystore_bytes(f, &nowlen);
    assert_true(nowlen != kslen || memcmp(now, ks, kslen) != 0);
    free(now);
    free(ks);
    versions(f, T1, &dv, &kv);
    assert_int_equal(dv, 1);
    assert_int_equal(kv, 2);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(read_back(f, T1, ids[i]), 1);
}

/* reencrypt moves every row to the newest version, in batches. */
static void
test_reencrypt(void **state)
{
    BEGIN_CASE(f);
    int64_t ids[7];
    char *out;

    migrated(f);
    created(f, T1);
    put(f, T1, 7, ids);
    EXPECT(CLI_OK, 'o', "v1 -> v2", "key", "rotate", "-c", f->conf, T1);
    assert_int_equal(RUN(&out, NULL, "key", "reencrypt", "-c", f->conf,
                         "--batch", "3", T1), CLI_OK);
    assert_string_equal(out,
        "tenant 131016: 3 rows moved to data key v2 (3 so far)\n"
        "tenant 131016: 3 rows moved to data key v2 (6 so far)\n"
        "tenant 131016: 1 row moved to data key v2 (7 so far)\n"
        "tenant 131016: 7 rows re-encrypted, every row is on data key v2\n");
    free(out);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(read_back(f, T1, ids[i]), 2);
    EXPECT(CLI_OK, 'o', "nothing to re-encrypt", "key", "reencrypt", "-c",
           f->conf, T1);
    EXPECT(CLI_USAGE, 'e', "--batch must be", "key", "reencrypt", "-c",
           f->conf, "--batch", "0", T1);
    EXPECT(CLI_FAIL, 'e', "no keys", "key", "reencrypt", "-c", f->conf, T2);
    assert_int_equal(counts(f, T1).residents, 7);
}

/* R1.4: erase needs the code twice; then keys and rows are gone, nothing
 * of the tenant decrypts, the other tenant is untouched, and the list
 * shows it erased. */
static void
test_erase(void **state)
{
    BEGIN_CASE(f);
    int64_t a[2], b;
    char st[16], *ks, *out, *err;
    size_t kslen;
    uint8_t rows0[32], rows1[32];

    migrated(f);
    created(f, T1);
    created(f, T2);
    put(f, T1, 2, a);
    put(f, T2, 1, &b);
    EXPECT(CLI_OK, 'o', "v1 -> v2", "key", "rotate", "-c", f->conf, T1);

    /* Refused: no --confirm, another code, a short one; nothing changes. */
    ks = keystore_bytes(f, &kslen);
    rows_digest(f, rows0);
    EXPECT(CLI_USAGE, 'e', "--confirm 131016", "tenant", "erase", "-c",
           f->conf, T1);
    EXPECT(CLI_USAGE, 'e', "does not repeat", "tenant", "erase", "-c",
           f->conf, "--confirm", T2, T1);
    EXPECT(CLI_USAGE, 'e', "does not repeat", "tenant", "erase", "-c",
           f->conf, "--confirm", "13101", T1);
    EXPECT(CLI_USAGE, 'e', "usage", "tenant", "erase", "-c", f->conf,
           "--confirm", T1);
    assert_keystore(f, ks, kslen);
    rows_digest(f, rows1);
    assert_memory_equal(rows0, rows1, 32);
    free(ks);
    assert_int_equal(read_back(f, T1, a[0]), 1);

    assert_int_equal(RUN(&out, &err, "tenant", "erase", "-c", f->conf,
                         "--confirm", T1, T1), CLI_OK);
    assert_contains(out, "tenant 131016: keys destroyed: KEK v1, index key, "
                    "data keys v1-v2\n");
    assert_contains(out, "tenant 131016: 2 resident rows and 0 idempotency "
                    "keys deleted; state erased\n");
    assert_contains(err, "\"op\":\"erase\",\"tenant\":\"" T1 "\","
                    "\"result\":\"ok\"");
    /* Keys first: the erase key_op line comes before the rows go. */
    assert_true(strstr(err, "\"op\":\"erase\"") <
                strstr(err, "store_tenant_erase"));
    free(out);
    free(err);

    /* Nothing of T1 decrypts: no key can be granted, no context opens. */
    {
        struct view v;
        struct tenant_key *k = NULL;
        struct store_tenant *ctx = NULL;

        view_open(f, &v);
        assert_false(keyring_tenant_exists(v.kr, T1));
        for (uint32_t ver = 0; ver <= 2; ver++) {
            assert_int_equal(keyring_grant_data_key(v.kr, T1, ver, &k), -1);
            assert_int_equal(errno, ENOENT);
        }
        assert_int_equal(keyring_grant_index_key(v.kr, T1, &k), -1);
        assert_int_equal(store_tenant_ctx_open(v.st, T1, &v.kp, &ctx),
                         STORE_DENIED);
        assert_null(ctx);
        view_close(&v);
    }
    assert_int_equal(counts(f, T1).residents, 0);
    assert_int_equal(state_of(f, T1, st), STORE_OK);
    assert_string_equal(st, "erased");
    assert_int_equal(read_back(f, T2, b), 1);           /* untouched */

    assert_int_equal(RUN(&out, NULL, "tenant", "list", "-c", f->conf), CLI_OK);
    assert_contains(out, "131016  erased     -         -             0");
    assert_contains(out, "011002  active     v1        v1            1");
    assert_contains(out, "2 tenants: 1 active, 1 erased; 1 resident row in");
    free(out);

    /* Again: nothing left to do; the code stays used. */
    EXPECT(CLI_OK, 'o', "already erased", "tenant", "erase", "-c", f->conf,
           "--confirm", T1, T1);
    EXPECT(CLI_FAIL, 'e', "no keys", "key", "versions", "-c", f->conf, T1);
    EXPECT(CLI_FAIL, 'e', "already exists (erased)", "tenant", "create", "-c",
           f->conf, T1);
    EXPECT(CLI_FAIL, 'e', "no tenant 131067", "tenant", "erase", "-c",
           f->conf, "--confirm", "131067", "131067");
    assert_false(has_keys(f, T1));
}

/* A crash between the two steps of an erase leaves the keys gone (the
 * data unreadable); the list says so and a second erase finishes. */
static void
test_erase_interrupted(void **state)
{
    BEGIN_CASE(f);
    int64_t id;
    char st[16], *out;

    migrated(f);
    created(f, T1);
    put(f, T1, 1, &id);
    {
        struct view v;

        view_open(f, &v);
        assert_int_equal(keyring_erase(v.kr, T1), 0);   /* the first step */
        view_close(&v);
    }
    assert_int_equal(RUN(&out, NULL, "tenant", "list", "-c", f->conf), CLI_OK);
    assert_contains(out, "131016  active     -         -             1");
    assert_contains(out, "1 tenant is half created or half erased");
    free(out);
    assert_int_equal(RUN(&out, NULL, "tenant", "erase", "-c", f->conf,
                         "--confirm", T1, T1), CLI_OK);
    assert_contains(out, "tenant 131016: no keys (destroyed before)\n"
                    "tenant 131016: 1 resident row and 0 idempotency keys "
                    "deleted; state erased\n");
    assert_null(strstr(out, "SIGHUP"));                 /* no key change */
    free(out);
    assert_int_equal(state_of(f, T1, st), STORE_OK);
    assert_string_equal(st, "erased");
    assert_int_equal(counts(f, T1).residents, 0);
}

/* ---- a running mamorid learns of key changes ----------------------------- */

static volatile sig_atomic_t got_hup;

static void
on_hup(int sig)
{
    (void)sig;
    got_hup = 1;
}

/* A stand-in daemon named `name`: "r" when ready, "h" per SIGHUP. */
static pid_t
fake_daemon(struct fx *f, const char *name, int *rfd)
{
    int p[2];
    pid_t pid;

    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct sigaction sa;

        close(p[0]);
        prctl(PR_SET_NAME, name, 0, 0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_hup;
        sigaction(SIGHUP, &sa, NULL);
        if (write(p[1], "r", 1) != 1)
            _exit(1);
        for (;;) {
            pause();
            if (got_hup) {
                got_hup = 0;
                if (write(p[1], "h", 1) != 1)
                    _exit(1);
            }
        }
    }
    close(p[1]);
    *rfd = p[0];
    f->daemon = pid;
    return pid;
}

static char
read_byte(int fd, int ms)
{
    struct pollfd pfd = { fd, POLLIN, 0 };
    char c = 0;

    if (poll(&pfd, 1, ms) == 1 && read(fd, &c, 1) == 1)
        return c;
    return 0;
}

static void
write_pidfile(struct fx *f, pid_t pid)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%ld\n", (long)pid);

    assert_int_equal(util_write_file_atomic(f->cfg.pidfile, text, (size_t)n,
                                            0644), 0);
}

static void
stop(struct fx *f, int rfd)
{
    int status;

    kill(f->daemon, SIGKILL);
    waitpid(f->daemon, &status, 0);
    f->daemon = 0;
    close(rfd);
}

static void
test_daemon_told(void **state)
{
    BEGIN_CASE(f);
    int rfd;
    pid_t pid;

    migrated(f);
    pid = fake_daemon(f, "mamorid", &rfd);
    assert_int_equal(read_byte(rfd, 5000), 'r');
    write_pidfile(f, pid);

    EXPECT(CLI_OK, 'o', "sent SIGHUP to mamorid", "tenant", "create", "-c",
           f->conf, T1);
    assert_int_equal(read_byte(rfd, 5000), 'h');
    EXPECT(CLI_OK, 'o', "sent SIGHUP to mamorid", "key", "rotate", "-c",
           f->conf, T1);
    assert_int_equal(read_byte(rfd, 5000), 'h');
    EXPECT(CLI_OK, 'o', "sent SIGHUP to mamorid", "key", "rewrap", "-c",
           f->conf, T1);
    assert_int_equal(read_byte(rfd, 5000), 'h');
    /* Reading changes nothing: no signal. */
    EXPECT(CLI_OK, 'o', NULL, "key", "versions", "-c", f->conf, T1);
    EXPECT(CLI_OK, 'o', NULL, "key", "reencrypt", "-c", f->conf, T1);
    EXPECT(CLI_OK, 'o', NULL, "tenant", "list", "-c", f->conf);
    /* Refused: no signal. */
    EXPECT(CLI_USAGE, 'e', NULL, "tenant", "erase", "-c", f->conf,
           "--confirm", T2, T1);
    EXPECT(CLI_FAIL, 'e', NULL, "key", "rotate", "-c", f->conf, T2);
    assert_int_equal(read_byte(rfd, 300), 0);
    EXPECT(CLI_OK, 'o', "sent SIGHUP to mamorid", "tenant", "erase", "-c",
           f->conf, "--confirm", T1, T1);
    assert_int_equal(read_byte(rfd, 5000), 'h');
    stop(f, rfd);

    /* Some other program under a reused pid is left alone. */
    pid = fake_daemon(f, "sshd", &rfd);
    assert_int_equal(read_byte(rfd, 5000), 'r');
    write_pidfile(f, pid);
    EXPECT(CLI_OK, 'o', "is not mamorid; not signalled", "tenant", "create",
           "-c", f->conf, T2);
    assert_int_equal(read_byte(rfd, 300), 0);
    stop(f, rfd);
    /* ...and a stale pid file does not fail the command. */
    EXPECT(CLI_OK, 'o', "not running (stale", "key", "rotate", "-c",
           f->conf, T2);
}

/* ---- an erase revokes the tenant's terminals (R6.2, R1.4) ---------------- */

#define T1_TERMINALS 3
#define T2_TERMINALS 2

/* Register `n` terminals with random fingerprints (fps: n * 32 bytes)
 * for `tenant` in the store; revoke the first one there if `revoke_first`
 * (as the API does). */
static void
terminals_register(struct fx *f, const char *tenant, size_t n, uint8_t *fps,
                   bool revoke_first)
{
    struct view v;

    view_open(f, &v);
    for (size_t i = 0; i < n; i++) {
        char name[32];

        randombytes_buf(fps + i * 32, 32);
        snprintf(name, sizeof(name), "pc-%s-%zu", tenant, i);
        assert_int_equal(store_terminal_register(v.st, tenant, fps + i * 32,
                                                 name), STORE_OK);
    }
    if (revoke_first)
        assert_int_equal(store_terminal_revoke(v.st, fps), STORE_OK);
    view_close(&v);
}

static int
count_terminal(const struct terminal_info *t, void *ctx)
{
    (void)t;
    (*(size_t *)ctx)++;
    return 0;
}

static size_t
terminals_in_store(struct fx *f, const char *tenant)
{
    struct view v;
    size_t n = 0;

    view_open(f, &v);
    assert_int_equal(store_terminal_list(v.st, tenant, count_terminal, &n),
                     STORE_OK);
    view_close(&v);
    return n;
}

/* The list file as mamorid reads it (revoke_set_load). */
static struct revoke_set *
revlist(struct fx *f)
{
    struct revoke_set *set = NULL;
    char err[512];

    if (revoke_set_load(f->cfg.revocation_list, &set, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    return set;
}

static void
revlist_put(struct fx *f, const char *text)
{
    assert_int_equal(util_write_file_atomic(f->cfg.revocation_list, text,
                                            strlen(text), 0644), 0);
}

/* Make the row deletion of an erase fail (the terminals of every tenant
 * cannot be deleted), or let it work again. */
static void
block_row_erase(struct fx *f, bool on)
{
    if (backend == STORE_BACKEND_SQLITE)
        raw_exec(f, on ? "CREATE TRIGGER block_erase BEFORE DELETE ON "
                 "terminals BEGIN SELECT RAISE(ABORT, 'blocked'); END"
                 : "DROP TRIGGER block_erase");
    else if (on)
        raw_exec(f, "CREATE FUNCTION block_erase() RETURNS trigger "
                 "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'blocked'; "
                 "END $$; CREATE TRIGGER block_erase BEFORE DELETE ON "
                 "terminals FOR EACH ROW EXECUTE FUNCTION block_erase()");
    else
        raw_exec(f, "DROP TRIGGER block_erase ON terminals; "
                 "DROP FUNCTION block_erase()");
}

/* The tenant's keys, rows and terminal registrations are all still
 * there: the erase refused before destroying anything. */
static void
assert_nothing_erased(struct fx *f, const char *tenant)
{
    char st[16];

    assert_true(has_keys(f, tenant));
    assert_int_equal(state_of(f, tenant, st), STORE_OK);
    assert_string_equal(st, "active");
    assert_int_equal(counts(f, tenant).residents, 1);
    assert_int_equal(terminals_in_store(f, tenant), T1_TERMINALS);
}

/* R6.2, R1.4: `tenant erase` puts every terminal certificate the tenant
 * registered - active, and revoked through the API - into the revocation
 * list before it destroys anything, and none of another tenant's; if the
 * list cannot be written or mamorid would refuse it, nothing is erased;
 * a rerun adds no line twice; a running mamorid gets one SIGHUP for the
 * keys and the list together. */
static void
test_R6_2_erase_revokes_terminals(void **state)
{
    BEGIN_CASE(f);
    uint8_t t1[T1_TERMINALS * 32], t2[T2_TERMINALS * 32];
    char hex[65], head[200], want[PATH_MAX + 128], moved[PATH_MAX + 8];
    char dir[PATH_MAX];
    char *before, *after, *out, *err;
    struct revoke_set *set;
    int64_t id;
    size_t len;
    int rfd;
    pid_t pid;

    migrated(f);
    created(f, T1);
    created(f, T2);
    put(f, T1, 1, &id);
    terminals_register(f, T1, T1_TERMINALS, t1, true);
    terminals_register(f, T2, T2_TERMINALS, t2, false);
    /* One of T1's is in the list already (revoked by hand earlier). */
    assert_int_equal(util_hex_encode(t1 + 32, 32, hex, sizeof(hex)), 0);
    snprintf(head, sizeof(head), "# terminals\n%s # lost\n", hex);
    revlist_put(f, head);
    pid = fake_daemon(f, "mamorid", &rfd);
    assert_int_equal(read_byte(rfd, 5000), 'r');
    write_pidfile(f, pid);

    /* Fail closed: the list's directory is gone, so it cannot be written. */
    assert_int_equal(util_strcpy(dir, sizeof(dir), f->cfg.revocation_list), 0);
    *strrchr(dir, '/') = '\0';
    snprintf(moved, sizeof(moved), "%s.off", dir);
    assert_int_equal(rename(dir, moved), 0);
    EXPECT(CLI_FAIL, 'e', "to the revocation list", "tenant", "erase", "-c",
           f->conf, "--confirm", T1, T1);
    EXPECT(CLI_FAIL, 'e', "nothing erased", "tenant", "erase", "-c", f->conf,
           "--confirm", T1, T1);
    assert_int_equal(rename(moved, dir), 0);
    assert_nothing_erased(f, T1);
    /* ... and a list mamorid would refuse is not extended. */
    revlist_put(f, "not a fingerprint\n");
    EXPECT(CLI_FAIL, 'e', "mamorid refuses the whole list", "tenant", "erase",
           "-c", f->conf, "--confirm", T1, T1);
    assert_nothing_erased(f, T1);
    before = slurp_path(f->cfg.revocation_list, NULL);
    assert_string_equal(before, "not a fingerprint\n");
    free(before);
    assert_int_equal(read_byte(rfd, 300), 0);           /* no signal */
    revlist_put(f, head);

    /* The rows cannot go this time: the list and the keys are done
     * first, and mamorid is told once about both. */
    block_row_erase(f, true);
    assert_int_equal(RUN(&out, &err, "tenant", "erase", "-c", f->conf,
                         "--confirm", T1, T1), CLI_FAIL);
    snprintf(want, sizeof(want), "tenant 131016: 2 terminal certificates "
             "revoked in %s (1 listed already)\n", f->cfg.revocation_list);
    assert_contains(out, want);
    assert_contains(out, "it reloads the keystore and the revocation list "
                    "now");
    assert_contains(err, "run mamori tenant erase again");
    /* The list before the keys: nothing is destroyed unless it is done. */
    assert_true(strstr(out, "terminal certificates revoked") <
                strstr(out, "keys destroyed"));
    free(out);
    free(err);
    assert_int_equal(read_byte(rfd, 5000), 'h');
    assert_int_equal(read_byte(rfd, 300), 0);           /* one SIGHUP */
    assert_false(has_keys(f, T1));
    assert_int_equal(terminals_in_store(f, T1), T1_TERMINALS);
    block_row_erase(f, false);

    set = revlist(f);
    assert_int_equal(revoke_set_count(set), T1_TERMINALS);
    for (size_t i = 0; i < T1_TERMINALS; i++)
        assert_true(revoke_set_contains(set, t1 + i * 32));
    for (size_t i = 0; i < T2_TERMINALS; i++)
        assert_false(revoke_set_contains(set, t2 + i * 32));
    revoke_set_free(set);
    before = slurp_path(f->cfg.revocation_list, &len);
    assert_int_equal(strncmp(before, head, strlen(head)), 0);   /* kept */
    assert_non_null(strstr(before, ": tenant 131016 erased\n"));

    /* Again: it finishes the rows, adds no line, and has nothing new to
     * tell mamorid (the keys were gone, the list is unchanged). */
    assert_int_equal(RUN(&out, NULL, "tenant", "erase", "-c", f->conf,
                         "--confirm", T1, T1), CLI_OK);
    snprintf(want, sizeof(want), "tenant 131016: 0 terminal certificates "
             "revoked in %s (3 listed already)\n", f->cfg.revocation_list);
    assert_contains(out, want);
    assert_contains(out, "state erased");
    assert_null(strstr(out, "SIGHUP"));
    free(out);
    assert_int_equal(read_byte(rfd, 300), 0);
    after = slurp_path(f->cfg.revocation_list, NULL);
    assert_string_equal(after, before);
    free(after);
    assert_int_equal(terminals_in_store(f, T1), 0);
    assert_int_equal(terminals_in_store(f, T2), T2_TERMINALS);
    /* And once it is erased, a third run changes nothing either. */
    EXPECT(CLI_OK, 'o', "already erased", "tenant", "erase", "-c", f->conf,
           "--confirm", T1, T1);
    after = slurp_path(f->cfg.revocation_list, NULL);
    assert_string_equal(after, before);
    free(after);
    free(before);
    stop(f, rfd);
}

/* ---- the built binary ----------------------------------------------------- */

/* Run MAMORI_TEST_BINARY_DIR/mamori with `args`; capture both streams. */
static int
run_binary(char **out, char **err, char *const args[])
{
    char opath[] = "/tmp/mamori-bout-XXXXXX", epath[] = "/tmp/mamori-berr-XXXXXX";
    int ofd = mkstemp(opath), efd = mkstemp(epath), status;
    pid_t pid;

    assert_true(ofd >= 0 && efd >= 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(ofd, STDOUT_FILENO);
        dup2(efd, STDERR_FILENO);
        execv(MAMORI_TEST_BINARY_DIR "/mamori", args);
        _exit(127);
    }
    close(ofd);
    close(efd);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *out = slurp_path(opath, NULL);
    *err = slurp_path(epath, NULL);
    unlink(opath);
    unlink(epath);
    assert_no_personal_data(*out);
    assert_no_personal_data(*err);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* Hold the keys lock as another operator would: `mamori key rotate`
 * waits, changes nothing meanwhile, and goes on once it is released. */
static void
rotate_while_locked(struct fx *f)
{
    char opath[] = "/tmp/mamori-lock-XXXXXX", *ks, *out;
    size_t kslen;
    int lk, status, ofd;
    pid_t pid;

    lk = open(f->cfg.keys_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(lk >= 0);
    assert_int_equal(flock(lk, LOCK_EX), 0);
    ks = keystore_bytes(f, &kslen);
    ofd = mkstemp(opath);
    assert_true(ofd >= 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *args[] = { "mamori", "key", "rotate", "-c", f->conf, T1, NULL };

        dup2(ofd, STDOUT_FILENO);
        dup2(ofd, STDERR_FILENO);
        execv(MAMORI_TEST_BINARY_DIR "/mamori", args);
        _exit(127);
    }
    close(ofd);
    /* Wait until it says it waits (a loaded machine may take seconds to
     * start it); releasing the lock earlier would test nothing. */
    for (int i = 0; i < 600; i++) {
        char *sofar = slurp_path(opath, NULL);
        bool said = sofar != NULL && strstr(sofar, "waiting for another mamori command") != NULL;

        free(sofar);
        if (said)
            break;
        usleep(50 * 1000);
    }
    assert_int_equal(waitpid(pid, &status, WNOHANG), 0);   /* waiting */
    assert_keystore(f, ks, kslen);
    free(ks);
    close(lk);                                              /* released */
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    out = slurp_path(opath, NULL);
    unlink(opath);
    assert_no_personal_data(out);
    assert_contains(out, "waiting for another mamori command");
    assert_contains(out, "tenant 131016: data key v1 -> v2");
    assert_contains(out, "\"op\":\"rotate\"");
    free(out);
}

/* The real program: dispatch and usage, and (through its own log set-up
 * at warn level) the key_op lines still reach stderr (R7.7).  A second
 * operator waits for the keys lock instead of losing a change. */
static void
test_binary(void **state)
{
    BEGIN_CASE(f);
    char *out, *err;
    int64_t id;

    {
        char *args[] = { "mamori", "help", NULL };

        assert_int_equal(run_binary(&out, &err, args), 0);
        assert_contains(err, "mamori migrate [-c CONFIG] [--check]");
        assert_contains(err, "tenant erase [-c CONFIG] --confirm CODE CODE");
        assert_contains(err, "key reencrypt [-c CONFIG] [--batch N] CODE");
        free(out);
        free(err);
    }
    {
        char *args[] = { "mamori", "migrate", "-c", f->conf, NULL };

        assert_int_equal(run_binary(&out, &err, args), 0);
        free(out);
        free(err);
    }
    {
        char *args[] = { "mamori", "tenant", "create", "-c", f->conf, T1,
                         NULL };

        assert_int_equal(run_binary(&out, &err, args), 0);
        assert_contains(err, "\"op\":\"tenant_create\"");
        free(out);
        free(err);
    }
    put(f, T1, 1, &id);
    rotate_while_locked(f);
    {
        char *args[] = { "mamori", "key", "reencrypt", "-c", f->conf, T1,
                         NULL };

        assert_int_equal(run_binary(&out, &err, args), 0);
        assert_contains(out, "1 row re-encrypted");
        free(out);
        free(err);
    }
    assert_int_equal(read_back(f, T1, id), 2);
    {
        char *args[] = { "mamori", "tenant", "list", "-c", f->conf, NULL };

        assert_int_equal(run_binary(&out, &err, args), 0);
        assert_contains(out, "131016  active     v2        v1            1");
        free(out);
        free(err);
    }
    {
        char *args[] = { "mamori", "tenant", "erase", "-c", f->conf, T1,
                         NULL };

        assert_int_equal(run_binary(&out, &err, args), 2);
        free(out);
        free(err);
    }
    assert_int_equal(read_back(f, T1, id), 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reencrypt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erase_interrupted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_daemon_told, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R6_2_erase_revokes_terminals,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary, setup, teardown),
    };
    const char *ci = getenv("CI");
    int failed;

    if (sodium_init() < 0)
        return 1;
    log_setup("test_cli_store", LOG_TO_STDERR, LOG_LVL_WARN);
    pg_base = getenv("MAMORI_TEST_PG");
    if (pg_base != NULL && pg_base[0] == '\0')
        pg_base = NULL;
    backend = STORE_BACKEND_SQLITE;
    failed = cmocka_run_group_tests_name("cli_store/sqlite", tests, NULL,
                                         NULL);
    if (pg_base == NULL) {
        if (ci != NULL && strcmp(ci, "true") == 0) {
            fprintf(stderr, "FAIL: MAMORI_TEST_PG is not set in CI: the "
                    "PostgreSQL backend was not tested\n");
            return failed + 1;
        }
        fprintf(stderr, "\n***************************************************\n"
                "*** MAMORI_TEST_PG unset: PostgreSQL cases SKIPPED ***\n"
                "*** export MAMORI_TEST_PG=\"$(scripts/pg-cluster.sh start DIR)\"\n"
                "***************************************************\n\n");
    }
    backend = STORE_BACKEND_POSTGRESQL;
    failed += cmocka_run_group_tests_name("cli_store/postgresql", tests, NULL,
                                          NULL);
    return failed;
}
