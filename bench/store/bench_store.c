/*
 * bench_store.c - what encryption at rest costs on inserts.
 *
 *   bench_store [N [BATCH]]      (defaults 20000 rows, 500 per transaction)
 *
 * SQLite: N synthetic residents through the store (17 fields encrypted,
 * 3 blind indexes, per-row id allocation) against the same plaintext rows
 * inserted raw with one prepared statement into an equivalent table with
 * plaintext indexes for the same lookups, same pragmas (WAL,
 * synchronous=FULL) and the same rows per transaction.  Then, with the
 * last run's N rows loaded, lookup latency p50/p99 by individual number
 * and by name + birth date (R2.8) against the plaintext indexes.
 * PostgreSQL (when MAMORI_TEST_PG is set): the store against COPY of the
 * plaintext rows, same rows per transaction.  Prints rows/s and the ratio.
 * Not a test: figures go into docs/storage.md with the machine.
 */
#include <libpq-fe.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "crypto/keyring.h"
#include "store/store.h"

#define TENANT "131016"

/* Process CPU seconds (user + system): immune to the disk's noise. */
static double
cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
make_mynumber(unsigned seed, char out[13])
{
    unsigned sum = 0, r;

    snprintf(out, 13, "%011u", 30000000u + seed);
    for (size_t i = 0; i < 11; i++)
        sum += (unsigned)(out[i] - '0') * (unsigned)(i < 5 ? 6 - i : 12 - i);
    r = sum % 11;
    out[11] = (char)('0' + (r <= 1 ? 0 : 11 - r));
    out[12] = '\0';
}

/*
 * Real individual numbers and names do not arrive in index order, so the
 * plaintext indexes get scattered inserts too (as the blind indexes
 * always do): numbers and name suffixes are a permutation of i.
 */
static unsigned
scatter(unsigned i)
{
    return (unsigned)(((uint64_t)i * 2654435761u) % 99999989u);
}

static void
fake(struct resident *r, unsigned i)
{
    unsigned s = scatter(i);

    memset(r, 0, sizeof(*r));
    snprintf(r->address_no, sizeof(r->address_no), "B%08u", i);
    make_mynumber(s, r->mynumber);
    snprintf(r->name, sizeof(r->name), "テスト %u太郎", s);
    snprintf(r->kana, sizeof(r->kana), "テスト %uタロウ", s);
    snprintf(r->birth_date, sizeof(r->birth_date), "19%02u-0%u-1%u", 30 + i % 70,
             1 + i % 9, i % 10);
    strcpy(r->sex, i % 2 ? "1" : "2");
    strcpy(r->postcode, "1000001");
    snprintf(r->address, sizeof(r->address), "東京都千代田区試験町%u丁目%u番", i % 9, i);
    strcpy(r->katagaki, "テストハイツ101");
    snprintf(r->household_no, sizeof(r->household_no), "H%08u", i);
    strcpy(r->relationship, "世帯主");
    strcpy(r->became_date, "2001-04-01");
    strcpy(r->movement_type, "転入");
    strcpy(r->movement_date, "2001-04-01");
    strcpy(r->prev_address, "大阪府大阪市北区試験町一丁目");
}

#define NTEXT 17

static const char *
field(const struct resident *r, int i)
{
    const char *v[NTEXT] = {
        r->mynumber, r->name, r->kana, r->birth_date, r->sex, r->postcode,
        r->address, r->katagaki, r->household_no, r->relationship, r->became_date,
        r->ceased_date, r->movement_type, r->movement_date, r->prev_address,
        r->next_address, r->alias,
    };
    return v[i];
}

static void
machine(void)
{
    char *info;
    size_t len;

    FILE *f = fopen("/proc/cpuinfo", "r");

    printf("machine: nproc=%ld", sysconf(_SC_NPROCESSORS_ONLN));
    info = NULL;
    len = 0;
    /* /proc files report size 0, so read them line by line. */
    while (f != NULL && getline(&info, &len, f) > 0) {
        char *p;
        if (strncmp(info, "model name", 10) == 0 && (p = strchr(info, ':')) != NULL) {
            p[strcspn(p, "\n")] = '\0';
            printf(", cpu=%s", p + 2);
            break;
        }
    }
    free(info);
    if (f != NULL)
        fclose(f);
    printf(", sqlite %s, libsodium %s\n", sqlite3_libversion(), sodium_version_string());
}

/* Through the store: encryption, blind indexes, batches. */
static double
via_store(const struct store_config *cfg, struct key_provider *kp,
          const struct resident *rows, unsigned n, unsigned batch, double *cpu_us)
{
    struct store *st;
    struct store_tenant *ctx;
    int64_t *ids = calloc(batch, sizeof(*ids));
    double t0, t, c0;

    if (ids == NULL || store_open(cfg, STORE_OPEN_MIGRATE, &st) != STORE_OK ||
        store_migrate(st, NULL, NULL) != STORE_OK ||
        store_tenant_create(st, TENANT) != STORE_OK ||
        store_tenant_ctx_open(st, TENANT, kp, &ctx) != STORE_OK) {
        fprintf(stderr, "store setup failed\n");
        exit(1);
    }
    t0 = now_s();
    c0 = cpu_s();
    for (unsigned i = 0; i < n; i += batch) {
        unsigned k = n - i < batch ? n - i : batch;
        if (store_resident_insert_batch(ctx, rows + i, k, ids) != STORE_OK) {
            fprintf(stderr, "store insert failed\n");
            exit(1);
        }
    }
    t = now_s() - t0;
    *cpu_us = (cpu_s() - c0) * 1e6 / n;
    store_tenant_ctx_close(ctx);
    store_close(st);
    free(ids);
    return n / t;
}

#define RAW_DDL_COLS "tenant_id TEXT NOT NULL, resident_id INTEGER NOT NULL, " \
    "address_no TEXT NOT NULL, mynumber TEXT, name TEXT, kana TEXT, birth_date TEXT, " \
    "sex TEXT, postcode TEXT, address TEXT, katagaki TEXT, household_no TEXT, " \
    "relationship TEXT, became_date TEXT, ceased_date TEXT, movement_type TEXT, " \
    "movement_date TEXT, prev_address TEXT, next_address TEXT, alias TEXT, " \
    "created_at TEXT NOT NULL, PRIMARY KEY (tenant_id, resident_id), " \
    "UNIQUE (tenant_id, address_no)"
#define RAW_INDEXES \
    "CREATE INDEX raw_mn ON raw_residents (tenant_id, mynumber);" \
    "CREATE INDEX raw_name ON raw_residents (tenant_id, name, birth_date);" \
    "CREATE INDEX raw_kana ON raw_residents (tenant_id, kana, birth_date);"

/* Plaintext into SQLite with one prepared statement, same pragmas. */
static double
raw_sqlite(const char *path, const struct resident *rows, unsigned n, unsigned batch,
           double *cpu_us)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    char now[25];
    double t0, t, c0;

    util_utc_now(now);
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                     "PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;"
                     "CREATE TABLE raw_residents (" RAW_DDL_COLS ") STRICT;"
                     RAW_INDEXES, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO raw_residents VALUES (?1, ?2, ?3, ?4, ?5, "
                           "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
                           "?18, ?19, ?20, ?21)", -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "raw sqlite setup: %s\n", sqlite3_errmsg(db));
        exit(1);
    }
    t0 = now_s();
    c0 = cpu_s();
    for (unsigned i = 0; i < n; i++) {
        if (i % batch == 0)
            sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        sqlite3_bind_text(s, 1, TENANT, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, i + 1);
        sqlite3_bind_text(s, 3, rows[i].address_no, -1, SQLITE_STATIC);
        for (int f = 0; f < NTEXT; f++)
            sqlite3_bind_text(s, 4 + f, field(&rows[i], f), -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 21, now, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE) {
            fprintf(stderr, "raw insert: %s\n", sqlite3_errmsg(db));
            exit(1);
        }
        sqlite3_reset(s);
        if (i % batch == batch - 1 || i == n - 1)
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    t = now_s() - t0;
    *cpu_us = (cpu_s() - c0) * 1e6 / n;
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n / t;
}

static void
quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static void
pg_ok(PGconn *c, PGresult *r, ExecStatusType want)
{
    if (PQresultStatus(r) != want) {
        fprintf(stderr, "pg: %s\n", PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
}

/* Append `s` to the COPY text buffer with the escapes COPY needs. */
static size_t
copy_escape(char *out, const char *s)
{
    size_t o = 0;

    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '\t' || *s == '\n')
            out[o++] = '\\';
        out[o++] = *s;
    }
    return o;
}

/* Plaintext into PostgreSQL with COPY, same rows per transaction. */
static double
raw_pg_copy(const char *conninfo, const struct resident *rows, unsigned n,
            unsigned batch, double *cpu_us)
{
    PGconn *c = PQconnectdb(conninfo);
    char *line = malloc(16384), now[25];
    double t0, t, c0;

    util_utc_now(now);
    if (PQstatus(c) != CONNECTION_OK || line == NULL) {
        fprintf(stderr, "pg: %s\n", PQerrorMessage(c));
        exit(1);
    }
    pg_ok(c, PQexec(c, "SET synchronous_commit = on"), PGRES_COMMAND_OK);
    pg_ok(c, PQexec(c, "CREATE TABLE raw_residents (" RAW_DDL_COLS ");" RAW_INDEXES),
          PGRES_COMMAND_OK);
    t0 = now_s();
    c0 = cpu_s();
    for (unsigned i = 0; i < n; i += batch) {
        unsigned k = n - i < batch ? n - i : batch;
        pg_ok(c, PQexec(c, "BEGIN"), PGRES_COMMAND_OK);
        pg_ok(c, PQexec(c, "COPY raw_residents FROM STDIN"), PGRES_COPY_IN);
        for (unsigned j = i; j < i + k; j++) {
            size_t o = (size_t)snprintf(line, 64, "%s\t%u\t%s", TENANT, j + 1,
                                        rows[j].address_no);
            for (int f = 0; f < NTEXT; f++) {
                line[o++] = '\t';
                o += copy_escape(line + o, field(&rows[j], f));
            }
            o += (size_t)snprintf(line + o, 64, "\t%s\n", now);
            if (PQputCopyData(c, line, (int)o) != 1) {
                fprintf(stderr, "copy: %s\n", PQerrorMessage(c));
                exit(1);
            }
        }
        if (PQputCopyEnd(c, NULL) != 1)
            exit(1);
        pg_ok(c, PQgetResult(c), PGRES_COMMAND_OK);
        pg_ok(c, PQexec(c, "COMMIT"), PGRES_COMMAND_OK);
    }
    t = now_s() - t0;
    *cpu_us = (cpu_s() - c0) * 1e6 / n;
    free(line);
    PQfinish(c);
    return n / t;
}

#define MAX_REPEAT 15

struct bench {
    unsigned                   n, batch, repeat;
    const struct resident     *rows;
    struct key_provider       *kp;
    const char                *dir;
    const char                *pg;
};

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double
median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * The disk is shared and noisy, so store and plaintext runs alternate,
 * each on a fresh database, and the medians are reported, with the
 * median of the pairwise ratios.
 */
static void
report(const char *what, const struct bench *b, double *enc, double *raw,
       double *cenc, double *craw)
{
    double ratio[MAX_REPEAT] = { 0 }, mid;

    for (unsigned i = 0; i < b->repeat; i++)
        ratio[i] = enc[i] / raw[i];
    mid = median(ratio, b->repeat);     /* sorts: [0] is min, [n-1] max */
    printf("%-10s N=%u batch=%u runs=%u  store: %7.0f rows/s  plaintext: %7.0f "
           "rows/s  ratio: %.2f (pairwise %.2f..%.2f)\n", what, b->n, b->batch,
           b->repeat, median(enc, b->repeat), median(raw, b->repeat),
           mid, ratio[0], ratio[b->repeat - 1]);
    printf("%-10s client CPU per row: store %.1f us, plaintext %.1f us\n", what,
           median(cenc, b->repeat), median(craw, b->repeat));
}

/* ---- lookups (R2.8): latency with the table loaded ------------------ */

#define LOOKUPS_MAX 10000

static double
percentile(double *v, unsigned n, double p)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return v[(unsigned)(p * (n - 1))];
}

static void
print_latency(const char *what, double *store_us, double *raw_us, unsigned k)
{
    double s50 = percentile(store_us, k, 0.50), s99 = percentile(store_us, k, 0.99);
    double r50 = percentile(raw_us, k, 0.50), r99 = percentile(raw_us, k, 0.99);

    printf("lookup %-16s store p50 %7.1f us  p99 %7.1f us   plaintext p50 %6.1f us  "
           "p99 %6.1f us   (%u lookups)\n", what, s50, s99, r50, r99, k);
}

/* One plaintext lookup: prepared statement, one bound key (or two). */
static double
raw_lookup(sqlite3_stmt *s, const char *a, const char *b2)
{
    double t0 = now_s();

    sqlite3_bind_text(s, 1, TENANT, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a, -1, SQLITE_STATIC);
    if (b2 != NULL)
        sqlite3_bind_text(s, 3, b2, -1, SQLITE_STATIC);
    while (sqlite3_step(s) == SQLITE_ROW)
        ;
    sqlite3_reset(s);
    return (now_s() - t0) * 1e6;
}

/*
 * In-process lookups against the last run's databases, which hold all N
 * rows: by individual number and by name + birth date through the store
 * (blind index, then the row decrypted), against plaintext indexes.
 */
static void
lookups(const struct bench *b, const char *db, const char *rawdb)
{
    struct store_config cfg = { .backend = STORE_BACKEND_SQLITE, .path = db };
    unsigned k = 0;
    double *mn = calloc(LOOKUPS_MAX, sizeof(double)), *nm = calloc(LOOKUPS_MAX, sizeof(double));
    double *rmn = calloc(LOOKUPS_MAX, sizeof(double)), *rnm = calloc(LOOKUPS_MAX, sizeof(double));
    struct store *st;
    struct store_tenant *ctx;
    struct resident out;
    sqlite3 *raw;
    sqlite3_stmt *smn, *snm;

    if (mn == NULL || nm == NULL || rmn == NULL || rnm == NULL ||
        store_open(&cfg, 0, &st) != STORE_OK ||
        store_tenant_ctx_open(st, TENANT, b->kp, &ctx) != STORE_OK ||
        sqlite3_open(rawdb, &raw) != SQLITE_OK ||
        sqlite3_prepare_v2(raw, "SELECT * FROM raw_residents WHERE tenant_id = ?1 AND "
                           "mynumber = ?2", -1, &smn, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(raw, "SELECT * FROM raw_residents WHERE tenant_id = ?1 AND "
                           "kana = ?2 AND birth_date = ?3", -1, &snm, NULL) != SQLITE_OK) {
        fprintf(stderr, "lookup setup failed\n");
        exit(1);
    }
    for (unsigned q = 0; q < LOOKUPS_MAX && q < b->n; q++, k++) {
        const struct resident *r = &b->rows[scatter(q) % b->n];
        int64_t ids[4];
        size_t n = 0;
        double t0 = now_s();

        if (store_resident_find_mynumber(ctx, r->mynumber, ids, 4, &n) != STORE_OK || n != 1 ||
            store_resident_get(ctx, ids[0], &out) != STORE_OK) {
            fprintf(stderr, "lookup by individual number failed\n");
            exit(1);
        }
        mn[q] = (now_s() - t0) * 1e6;
        t0 = now_s();
        if (store_resident_find_name_dob(ctx, r->kana, r->birth_date, ids, 4, &n) != STORE_OK ||
            n < 1 || store_resident_get(ctx, ids[0], &out) != STORE_OK) {
            fprintf(stderr, "lookup by name and birth date failed\n");
            exit(1);
        }
        nm[q] = (now_s() - t0) * 1e6;
        rmn[q] = raw_lookup(smn, r->mynumber, NULL);
        rnm[q] = raw_lookup(snm, r->kana, r->birth_date);
    }
    store_resident_wipe(&out);
    printf("lookups with N=%u rows loaded, each finding the row and reading it whole:\n", b->n);
    print_latency("by mynumber", mn, rmn, k);
    print_latency("by name+birth", nm, rnm, k);
    sqlite3_finalize(smn);
    sqlite3_finalize(snm);
    sqlite3_close(raw);
    store_tenant_ctx_close(ctx);
    store_close(st);
    free(mn);
    free(nm);
    free(rmn);
    free(rnm);
}

static void
bench_sqlite(const struct bench *b)
{
    double enc[MAX_REPEAT], raw[MAX_REPEAT], cenc[MAX_REPEAT], craw[MAX_REPEAT];
    struct store_config cfg = { .backend = STORE_BACKEND_SQLITE };
    char db[160], rawdb[160];

    for (unsigned r = 0; r < b->repeat; r++) {
        snprintf(db, sizeof(db), "%s/store%u.db", b->dir, r);
        snprintf(rawdb, sizeof(rawdb), "%s/raw%u.db", b->dir, r);
        cfg.path = db;
        enc[r] = via_store(&cfg, b->kp, b->rows, b->n, b->batch, &cenc[r]);
        raw[r] = raw_sqlite(rawdb, b->rows, b->n, b->batch, &craw[r]);
    }
    report("sqlite", b, enc, raw, cenc, craw);
    lookups(b, db, rawdb);
}

static void
bench_pg(const struct bench *b)
{
    double enc[MAX_REPEAT], raw[MAX_REPEAT], cenc[MAX_REPEAT], craw[MAX_REPEAT];
    struct store_config cfg = { .backend = STORE_BACKEND_POSTGRESQL };
    PGconn *c = PQconnectdb(b->pg);
    char ci[1200], sql[80], hex[9];
    uint8_t rnd[4];

    PQsetNoticeProcessor(c, quiet, NULL);
    for (unsigned r = 0; r < b->repeat; r++) {
        randombytes_buf(rnd, sizeof(rnd));
        if (util_hex_encode(rnd, sizeof(rnd), hex, sizeof(hex)) != 0)
            exit(1);
        snprintf(sql, sizeof(sql), "CREATE SCHEMA bench_%s", hex);
        pg_ok(c, PQexec(c, sql), PGRES_COMMAND_OK);
        snprintf(ci, sizeof(ci), "%s options='-csearch_path=bench_%s'", b->pg, hex);
        cfg.conninfo = ci;
        enc[r] = via_store(&cfg, b->kp, b->rows, b->n, b->batch, &cenc[r]);
        raw[r] = raw_pg_copy(ci, b->rows, b->n, b->batch, &craw[r]);
        snprintf(sql, sizeof(sql), "DROP SCHEMA bench_%s CASCADE", hex);
        pg_ok(c, PQexec(c, sql), PGRES_COMMAND_OK);
    }
    PQfinish(c);
    report("postgresql", b, enc, raw, cenc, craw);
}

int
main(int argc, char **argv)
{
    uint64_t v;
    char dir[] = "/tmp/mamori-bench-XXXXXX", mk[128], cmd[128];
    struct keyring *kr;
    struct key_provider kp;
    struct resident *rows;
    struct bench b = { .n = 20000, .batch = 500, .repeat = 5 };
    const char *env;

    if (argc > 1 && util_parse_u64(argv[1], 1, 10000000, &v) == 0)
        b.n = (unsigned)v;
    if (argc > 2 && util_parse_u64(argv[2], 1, 100000, &v) == 0)
        b.batch = (unsigned)v;
    if ((env = getenv("MAMORI_BENCH_REPEAT")) != NULL &&
        util_parse_u64(env, 1, MAX_REPEAT, &v) == 0)
        b.repeat = (unsigned)v;
    if (sodium_init() < 0 || mkdtemp(dir) == NULL)
        return 1;
    log_setup("bench_store", LOG_TO_STDERR, LOG_LVL_WARN);
    machine();
    rows = calloc(b.n, sizeof(*rows));
    if (rows == NULL)
        return 1;
    for (unsigned i = 0; i < b.n; i++)
        fake(&rows[i], i);
    snprintf(mk, sizeof(mk), "%s/master.key", dir);
    if (keyring_master_key_create(mk) != 0 || keyring_open(mk, dir, NULL, &kr) != 0 ||
        keyring_tenant_create(kr, TENANT) != 0)
        return 1;
    keyring_provider(kr, &kp);
    b.rows = rows;
    b.kp = &kp;
    b.dir = dir;
    b.pg = getenv("MAMORI_TEST_PG");
    bench_sqlite(&b);
    if (b.pg != NULL && b.pg[0] != '\0')
        bench_pg(&b);
    else
        printf("postgresql: skipped (MAMORI_TEST_PG unset)\n");
    keyring_close(kr);
    for (unsigned i = 0; i < b.n; i++)
        store_resident_wipe(&rows[i]);
    free(rows);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
