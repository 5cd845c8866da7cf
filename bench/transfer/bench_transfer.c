/*
 * bench_transfer.c - transfer inquiries per second and their latency
 * (R3.1-R3.3): single inquiries from 1 and from 4 threads, a bulk job
 * without its rate limit, and the three "no record" paths side by side.
 *
 *   bench_transfer DATA_DIR [N [THREADS]]     (defaults 400 inquiries, 4 threads)
 *
 * What runs is the daemon's code below HTTP: transfer_inquire with the
 * local transport, the answering side, the store (SQLite in DATA_DIR,
 * WAL + synchronous=FULL; PostgreSQL too when MAMORI_TEST_PG is set) and
 * the real audit writer, forked as mamorid forks it, one IPC channel per
 * thread, each event fsync'd before it is acknowledged.  So every
 * inquiry costs what it costs in the daemon: two audit events and two
 * store commits, each durable.  HTTPS and the session check are not in
 * these figures (it_transfer prints end-to-end latencies).
 * Not a test: figures go into docs/transfer.md with the machine.
 * All data is synthetic (R9.4).
 */
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit/auditd.h"
#include "common/log.h"
#include "common/util.h"
#include "config/config.h"
#include "crypto/keyring.h"
#include "ipc/ipc.h"
#include "store/store.h"
#include "store/store_records.h"
#include "store/store_transfer.h"
#include "transfer/exchange.h"
#include "transfer/job.h"
#include "vrs/api.h"

#define TA "131016"
#define TB "011002"
#define TC "012025"
#define NT "472018"
#define MAXT 16
#define UNIFORM_K 100           /* samples of each "no record" path */

static double
now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void
die(const char *what)
{
    fprintf(stderr, "bench_transfer: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
quantile(double *v, size_t n, double q)
{
    size_t i = (size_t)(q * (double)n + 0.999999);

    qsort(v, n, sizeof(*v), cmp_double);
    return v[i == 0 ? 0 : (i > n ? n : i) - 1];
}

static void
make_mynumber(unsigned seed, char out[13])
{
    unsigned sum = 0, r;

    snprintf(out, 13, "%011u", 40000000u + seed);
    for (size_t i = 0; i < 11; i++)
        sum += (unsigned)(out[i] - '0') * (unsigned)(i < 5 ? 6 - i : 12 - i);
    r = sum % 11;
    out[11] = (char)('0' + (r <= 1 ? 0 : 11 - r));
    out[12] = '\0';
}

/* dir/name into out, or exit. */
static void
join(char *out, size_t n, const char *dir, const char *name)
{
    int w = snprintf(out, n, "%s/%s", dir, name);

    if (w < 0 || (size_t)w >= n) {
        fprintf(stderr, "bench_transfer: path too long\n");
        exit(1);
    }
}

static void
no_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static void
own_dir(const char *path)
{
    struct passwd *pw;

    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        die(path);
    if (geteuid() == 0 && (pw = getpwnam("mamori")) != NULL &&
        chown(path, pw->pw_uid, pw->pw_gid) != 0)
        die(path);
}

/* ---- the audit writer, as mamorid forks it ------------------------------------------ */

struct writer {
    pid_t           pid;
    int             ctl;
    struct ipc_chan chan[MAXT + 1];
};

static void
writer_start(const char *dir, unsigned n, struct writer *w)
{
    struct mamori_config *cfg = calloc(1, sizeof(*cfg));
    struct passwd *pw = geteuid() == 0 ? getpwnam("mamori") : getpwuid(geteuid());
    int ctl[2], ch[MAXT + 1][2], fds[MAXT + 2];
    struct ipc_hdr h;
    uint8_t buf[64];

    if (cfg == NULL || pw == NULL)
        die("writer setup");
    own_dir(dir);
    config_defaults(cfg);
    snprintf(cfg->user, sizeof(cfg->user), "%s", pw->pw_name);
    snprintf(cfg->audit_dir, sizeof(cfg->audit_dir), "%s", dir);
    cfg->log_level = LOG_LVL_ERROR;
    if (ipc_socketpair(ctl) != 0)
        die("socketpair");
    fds[0] = ctl[1];
    for (unsigned i = 0; i < n; i++) {
        if (ipc_socketpair(ch[i]) != 0)
            die("socketpair");
        fds[1 + i] = ch[i][1];
    }
    fflush(NULL);
    if ((w->pid = fork()) < 0)
        die("fork");
    if (w->pid == 0) {
        /* Only the writer's ends: with ours closed it sees us go away. */
        close(ctl[0]);
        for (unsigned i = 0; i < n; i++)
            close(ch[i][0]);
        _exit(auditd_main(cfg, fds, 1 + n));
    }
    close(ctl[1]);
    w->ctl = ctl[0];
    for (unsigned i = 0; i < n; i++) {
        close(ch[i][1]);
        ipc_chan_init(&w->chan[i], ch[i][0]);
    }
    if (ipc_recv(w->ctl, &h, buf, sizeof(buf)) != 1 || h.type != IPC_READY) {
        fprintf(stderr, "bench_transfer: the audit writer did not start\n");
        exit(1);
    }
    free(cfg);
}

static void
writer_stop(struct writer *w, unsigned n)
{
    int st;

    if (ipc_send(w->ctl, IPC_SHUTDOWN, 1, 0, NULL, 0) != 0 || waitpid(w->pid, &st, 0) != w->pid)
        fprintf(stderr, "bench_transfer: the audit writer did not stop cleanly\n");
    for (unsigned i = 0; i < n; i++)
        ipc_chan_destroy(&w->chan[i]);
    close(w->ctl);
}

static int
ipc_audit(void *arg, const json_t *ev)
{
    struct ipc_chan *c = arg;
    char *text = json_dumps(ev, JSON_COMPACT);
    uint8_t reply[64];
    struct ipc_hdr rh;
    int rc = text != NULL && ipc_call(c, IPC_AUDIT_APPEND, text, strlen(text), &rh, reply,
                                      sizeof(reply), 5000) == 0 && rh.type == IPC_AUDIT_ACK
        ? 0 : -1;

    free(text);
    return rc;
}

/* ---- fixture ------------------------------------------------------------------------- */

struct bench {
    struct store       *st;
    struct keyring     *kr;
    struct key_provider kp;
    struct writer       w;
    unsigned            n;
    char              (*consent)[17];
};

static void
populate(struct bench *b)
{
    struct store_tenant *a = NULL, *pb = NULL;
    struct resident r;
    struct vaccination v;
    int64_t id, vid;

    if (store_tenant_ctx_open(b->st, TA, &b->kp, &a) != STORE_OK ||
        store_tenant_ctx_open(b->st, TB, &b->kp, &pb) != STORE_OK)
        die("contexts");
    /* Persons 0..n-1 moved from B to A; n..n+UNIFORM_K-1 live in A only. */
    for (unsigned i = 0; i < b->n + UNIFORM_K; i++) {
        memset(&r, 0, sizeof(r));
        make_mynumber(i, r.mynumber);
        snprintf(r.address_no, sizeof(r.address_no), "B%07u", i);
        snprintf(r.name, sizeof(r.name), "ベンチ　太郎%u", i);
        snprintf(r.birth_date, sizeof(r.birth_date), "1970-01-01");
        snprintf(r.ceased_date, sizeof(r.ceased_date), "2024-03-31");
        snprintf(r.movement_type, sizeof(r.movement_type), "転出");
        snprintf(r.movement_date, sizeof(r.movement_date), "2024-03-31");
        if (i < b->n && store_resident_insert(pb, NULL, &r, &id) != STORE_OK)
            die("resident B");
        for (int d = 1; d <= 2 && i < b->n; d++) {
            memset(&v, 0, sizeof(v));
            v.resident_id = id;
            snprintf(v.vaccine, sizeof(v.vaccine), "covid-comirnaty");
            v.dose = d;
            snprintf(v.date, sizeof(v.date), "2021-0%d-10", 5 + d);
            snprintf(v.entered_by, sizeof(v.entered_by), "bench");
            if (store_vaccination_insert(pb, NULL, &v, &vid) != STORE_OK)
                die("vaccination B");
        }
        snprintf(r.address_no, sizeof(r.address_no), "A%07u", i);
        r.ceased_date[0] = '\0';
        snprintf(r.movement_type, sizeof(r.movement_type), "転入");
        snprintf(r.movement_date, sizeof(r.movement_date), "2024-04-01");
        if (store_resident_insert(a, NULL, &r, &id) != STORE_OK)
            die("resident A");
        struct transfer_consent c;
        memset(&c, 0, sizeof(c));
        snprintf(c.affair, sizeof(c.affair), "%s", TRANSFER_AFFAIR_VACCINATION);
        snprintf(c.id_check, sizeof(c.id_check), "mynumber_card");
        vrs_today(c.checked_on);
        snprintf(c.checked_by, sizeof(c.checked_by), "bench");
        if (store_consent_create(a, r.mynumber, &c, NULL, NULL) != STORE_OK)
            die("consent");
        memcpy(b->consent[i], c.id, 17);
        store_resident_wipe(&r);
    }
    store_tenant_ctx_close(a);
    store_tenant_ctx_close(pb);
}

static const struct transfer_actor who = { TA, "bench", "clerk", "", "", "" };

/* ---- single inquiries ---------------------------------------------------------------- */

struct worker {
    struct bench *b;
    unsigned      t, from, to;
    double       *lat;
    const char   *code;         /* NULL: the person's previous municipality */
    int           failed;
};

static void *
run_single(void *arg)
{
    struct worker *w = arg;
    struct transfer_env env = { w->b->st, &w->b->kp, ipc_audit, &w->b->w.chan[w->t],
                                transfer_local_send };
    struct store_tenant *a = NULL;
    struct transfer_outcome out;
    char mn[13], addr[16];

    if (store_tenant_ctx_open(w->b->st, TA, &w->b->kp, &a) != STORE_OK) {
        w->failed = 1;
        return NULL;
    }
    for (unsigned i = w->from; i < w->to; i++) {
        make_mynumber(i, mn);
        snprintf(addr, sizeof(addr), "A%07u", i);
        struct transfer_request rq = { w->code ? w->code : TB, mn, w->b->consent[i], addr,
                                       TRANSFER_SINGLE, "" };
        double t0 = now_s();
        if (transfer_inquire(&env, a, &who, &rq, &out) != TRANSFER_OK ||
            out.answer.found != (w->code == NULL)) {
            w->failed = 1;
            break;
        }
        w->lat[i - w->from] = (now_s() - t0) * 1e3;
    }
    store_tenant_ctx_close(a);
    return NULL;
}

static void
bench_single(struct bench *b, unsigned threads, const char *label)
{
    struct worker w[MAXT];
    pthread_t th[MAXT];
    double *lat = calloc(b->n, sizeof(double)), t0, t1;
    unsigned per = b->n / threads, done = 0;

    if (lat == NULL)
        die("calloc");
    t0 = now_s();
    for (unsigned t = 0; t < threads; t++) {
        w[t] = (struct worker){ b, t, t * per, (t + 1) * per, lat + t * per, NULL, 0 };
        if (pthread_create(&th[t], NULL, run_single, &w[t]) != 0)
            die("pthread_create");
    }
    for (unsigned t = 0; t < threads; t++) {
        pthread_join(th[t], NULL);
        if (w[t].failed) {
            fprintf(stderr, "bench_transfer: an inquiry failed\n");
            exit(1);
        }
        done += per;
    }
    t1 = now_s();
    printf("%-10s single, %2u thread%s  %7.1f inquiries/s  p50 %6.2f ms  p99 %6.2f ms  (%u)\n",
           label, threads, threads == 1 ? " " : "s", done / (t1 - t0),
           quantile(lat, done, 0.5), quantile(lat, done, 0.99), done);
    free(lat);
}

/* The three "no record" paths, interleaved so drift touches all alike:
 * a person B does not know, asked of B; a person of B asked of C; the
 * same asked of a code with no tenant. */
static void
bench_uniform(struct bench *b, const char *label)
{
    static const char *const names[3] = { "no match", "wrong tenant", "no tenant" };
    const unsigned k = UNIFORM_K;     /* main() makes n >= UNIFORM_K */
    double *lat[3];
    struct worker w = { b, 0, 0, 0, NULL, NULL, 0 };

    for (int i = 0; i < 3; i++)
        if ((lat[i] = calloc(k, sizeof(double))) == NULL)
            die("calloc");
    for (unsigned j = 0; j < k; j++)
        for (int i = 0; i < 3; i++) {
            double one = 0;
            w.from = i == 0 ? b->n + j : j;
            w.to = w.from + 1;
            w.lat = &one;
            w.code = i == 0 ? TB : i == 1 ? TC : NT;
            run_single(&w);
            if (w.failed) {
                fprintf(stderr, "bench_transfer: an inquiry failed\n");
                exit(1);
            }
            lat[i][j] = one;
        }
    printf("%-10s no record, %u each:", label, k);
    for (int i = 0; i < 3; i++) {
        printf("  %s p50 %.2f p99 %.2f ms", names[i], quantile(lat[i], k, 0.5),
               quantile(lat[i], k, 0.99));
        free(lat[i]);
    }
    printf("\n");
}

/* ---- bulk ------------------------------------------------------------------------------- */

static void
bench_bulk(struct bench *b, const char *label)
{
    struct transfer_env env = { b->st, &b->kp, ipc_audit, &b->w.chan[0], transfer_local_send };
    struct transfer_job_row *rows = calloc(b->n, sizeof(*rows));
    struct store_tenant *a = NULL;
    struct transfer_job job;
    bool ran = false;
    double t0, t1;

    if (rows == NULL || store_tenant_ctx_open(b->st, TA, &b->kp, &a) != STORE_OK)
        die("bulk setup");
    for (unsigned i = 0; i < b->n; i++) {
        rows[i].row_no = i + 1;
        snprintf(rows[i].prev_code, 7, "%s", TB);
        make_mynumber(i, rows[i].mynumber);
        memcpy(rows[i].consent_id, b->consent[i], 17);
        snprintf(rows[i].address_no, sizeof(rows[i].address_no), "A%07u", i);
    }
    memset(&job, 0, sizeof(job));
    snprintf(job.actor, sizeof(job.actor), "bench");
    snprintf(job.role, sizeof(job.role), "clerk");
    t0 = now_s();
    if (store_job_create(a, &job, rows, b->n, NULL, NULL) != STORE_OK)
        die("job create");
    t1 = now_s();
    printf("%-10s bulk queue %u rows: %.2f s (%.0f rows/s: parse not included)\n", label, b->n,
           t1 - t0, b->n / (t1 - t0));
    t0 = now_s();
    if (transfer_job_run_once(&env, "bench", 0, NULL, &ran) != 0 || !ran)
        die("job run");
    t1 = now_s();
    char id[sizeof(job.id)];
    memcpy(id, job.id, sizeof(id));
    if (store_job_get(a, id, &job) != STORE_OK || strcmp(job.state, "done") != 0)
        die("job state");
    printf("%-10s bulk, no rate limit  %7.1f rows/s  (%u rows, one runner; the daemon "
           "runs a job at %d rows/s)\n", label, b->n / (t1 - t0), b->n, TRANSFER_JOB_RATE);
    util_wipe(rows, b->n * sizeof(*rows));
    free(rows);
    store_tenant_ctx_close(a);
}

/* ---- one backend ----------------------------------------------------------------------- */

static void
run_backend(const char *dir, enum store_backend be, const char *pg, unsigned n, unsigned threads)
{
    char path[PATH_MAX], mk[PATH_MAX], conninfo[1200], schema[40] = "";
    struct store_config sc = { .backend = be };
    struct bench b = { .n = n };
    const char *label = be == STORE_BACKEND_SQLITE ? "sqlite" : "postgresql";
    static const char *const tenants[] = { TA, TB, TC };
    int v1, v2;

    join(path, sizeof(path), dir, label);
    own_dir(path);
    join(mk, sizeof(mk), path, "master.key");
    if (keyring_master_key_create(mk) != 0 || keyring_open(mk, path, NULL, &b.kr) != 0)
        die("keyring");
    keyring_provider(b.kr, &b.kp);
    if (be == STORE_BACKEND_SQLITE) {
        join(conninfo, sizeof(conninfo), path, "store.db");
        sc.path = conninfo;
    } else {
        uint8_t rnd[6];
        char hex[13], sql[80];
        PGconn *c = PQconnectdb(pg);
        PQsetNoticeProcessor(c, no_notice, NULL);
        randombytes_buf(rnd, sizeof(rnd));
        if (util_hex_encode(rnd, sizeof(rnd), hex, sizeof(hex)) != 0)
            die("hex");
        snprintf(schema, sizeof(schema), "bt_%s", hex);
        snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
        PQclear(PQexec(c, sql));
        PQfinish(c);
        snprintf(conninfo, sizeof(conninfo), "%s options='-csearch_path=%s'", pg, schema);
        sc.conninfo = conninfo;
    }
    sc.pool_size = threads + 2;
    if (store_open(&sc, STORE_OPEN_MIGRATE, &b.st) != STORE_OK ||
        store_migrate(b.st, &v1, &v2) != STORE_OK)
        die("store");
    for (size_t i = 0; i < 3; i++)
        if (keyring_tenant_create(b.kr, tenants[i]) != 0 ||
            store_tenant_create(b.st, tenants[i]) != STORE_OK)
            die("tenant");
    if ((b.consent = calloc(n + UNIFORM_K, sizeof(*b.consent))) == NULL)
        die("calloc");
    populate(&b);
    join(mk, sizeof(mk), path, "audit");
    writer_start(mk, threads, &b.w);
    bench_single(&b, 1, label);
    bench_single(&b, threads, label);
    bench_uniform(&b, label);
    bench_bulk(&b, label);
    writer_stop(&b.w, threads);
    store_close(b.st);
    keyring_close(b.kr);
    free(b.consent);
    if (schema[0] != '\0') {
        char sql[80];
        PGconn *c = PQconnectdb(pg);
        PQsetNoticeProcessor(c, no_notice, NULL);
        snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schema);
        PQclear(PQexec(c, sql));
        PQfinish(c);
    }
}

int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : NULL;
    unsigned n = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 400;
    unsigned threads = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 4;
    const char *pg = getenv("MAMORI_TEST_PG");
    struct utsname u;
    FILE *f;

    if (dir == NULL || n < UNIFORM_K || threads < 1 || threads > MAXT || sodium_init() < 0) {
        fprintf(stderr, "usage: bench_transfer DATA_DIR [N >= 100 [THREADS 1..16]]\n");
        return 2;
    }
    n -= n % threads;
    log_setup("bench_transfer", LOG_TO_STDERR, LOG_LVL_ERROR);
    own_dir(dir);
    uname(&u);
    printf("machine: nproc %ld, %s %s", sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release);
    if ((f = fopen("/proc/loadavg", "r")) != NULL) {
        char line[256];
        if (fgets(line, sizeof(line), f) != NULL)
            printf(", load average at start %s", line);
        fclose(f);
    } else
        printf("\n");
    run_backend(dir, STORE_BACKEND_SQLITE, NULL, n, threads);
    if (pg != NULL && pg[0] != '\0')
        run_backend(dir, STORE_BACKEND_POSTGRESQL, pg, n, threads);
    else
        printf("postgresql: MAMORI_TEST_PG unset, skipped\n");
    return 0;
}
