/*
 * bench_audit.c - audit log benchmark (R7.1, R7.2; docs/audit.md "Benchmark").
 *
 *   bench_audit MAMORI_BINARY DATA_DIR [SECONDS [ENTRIES]]
 *
 * (a) Durable events/s through the real writer process: auditd_main is
 *     forked with one channel per producer, exactly as mamorid spawns it,
 *     and 1, 4 and 16 producer threads each send IPC_AUDIT_APPEND and
 *     wait for the IPC_AUDIT_ACK (which the writer sends only after
 *     fdatasync) -- what a worker pays.  fsync/fdatasync calls of the
 *     writer are counted by wrapping them in this executable (the writer
 *     is linked in statically), so events per fsync shows the group commit.
 * (b) `mamori audit verify` over a log of ENTRIES entries (default
 *     200000), timed as the real binary (page cache warm, best of 3, and
 *     once more with the log's pages evicted), next to raw SHA-256 over
 *     entries of the same average size (libsodium always; `openssl speed`
 *     when openssl is installed); in process also with AUDIT_VERIFY_DEEP,
 *     and a breakdown of where verify's time goes (reading, hashing, the
 *     rest) beside what a jansson parse of every entry costs.
 *
 * Not a test; bench/audit.sh runs it.  DATA_DIR must be on the disk to be
 * measured (not tmpfs: fsync is free there).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <pwd.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit/auditd.h"
#include "audit/chain.h"
#include "audit/event.h"
#include "audit/writer.h"
#include "common/util.h"
#include "config/config.h"
#include "ipc/ipc.h"

/* ---- fsync counting: the writer's calls land here ------------------------ */

static _Atomic unsigned long *sync_count;   /* shared with the forked writer */

int
fdatasync(int fd)
{
    if (sync_count != NULL)
        atomic_fetch_add(sync_count, 1);
    return (int)syscall(SYS_fdatasync, fd);
}

int
fsync(int fd)
{
    if (sync_count != NULL)
        atomic_fetch_add(sync_count, 1);
    return (int)syscall(SYS_fsync, fd);
}

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
    fprintf(stderr, "bench_audit: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void
machine(const char *data_dir)
{
    struct utsname u;
    struct statfs sf;
    char line[512], model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        char *c = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && c != NULL) {
            snprintf(model, sizeof(model), "%s", c + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    uname(&u);
    printf("machine: nproc %ld, %s, %s %s\n", sysconf(_SC_NPROCESSORS_ONLN), model,
           u.sysname, u.release);
    /* The load others put on a shared machine: wall times move with it. */
    if ((f = fopen("/proc/loadavg", "r")) != NULL) {
        if (fgets(line, sizeof(line), f) != NULL)
            printf("load average at start: %s", line);
        fclose(f);
    }
    if (statfs(data_dir, &sf) == 0)
        printf("data dir: %s (filesystem magic 0x%lx%s)\n", data_dir, (unsigned long)sf.f_type,
               sf.f_type == 0x01021994 ? ", tmpfs: fsync is free, figures meaningless" :
               sf.f_type == 0xEF53 ? ", ext2/3/4" : "");
}

/* A typical worker event: a resident read with every member a worker fills. */
static char *
sample_event(unsigned i)
{
    static const uint8_t key[AUDIT_HMAC_KEY_LEN] = { 1 };
    char obj[32], tok[32];
    json_t *ev = audit_event_new("resident.read", AUDIT_SUCCESS);
    char *s;

    snprintf(obj, sizeof(obj), "resident:%u", 100000 + i % 50000);
    snprintf(tok, sizeof(tok), "session-%u", i % 97);
    if (ev == NULL || audit_event_set(ev, AUDIT_F_TENANT, "131016") != 0 ||
        audit_event_set(ev, AUDIT_F_ACTOR, "clerk-17") != 0 ||
        audit_event_set(ev, AUDIT_F_ROLE, "clerk") != 0 ||
        audit_event_set(ev, AUDIT_F_TERMINAL,
                        "3f5a0c7e9b1d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a") != 0 ||
        audit_event_set(ev, AUDIT_F_SOURCE, "10.20.30.40") != 0 ||
        audit_event_set_hashed(ev, AUDIT_H_SESSION, key, tok) != 0 ||
        audit_event_add_object(ev, obj) != 0) {
        fprintf(stderr, "bench_audit: cannot build the sample event\n");
        exit(1);
    }
    s = audit_event_dump(ev);
    json_decref(ev);
    return s;
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

/* ---- (a) writer throughput over IPC ---------------------------------------- */

struct producer {
    int          fd;
    const char  *ev;
    size_t       evlen;
    atomic_bool *stop;
    unsigned long acked;
    int          failed;
};

static void *
produce(void *arg)
{
    struct producer *p = arg;
    uint8_t buf[256];
    uint32_t id = 1;

    while (!atomic_load(p->stop)) {
        struct ipc_hdr h;
        if (ipc_send(p->fd, IPC_AUDIT_APPEND, id, 0, p->ev, p->evlen) != 0 ||
            ipc_recv(p->fd, &h, buf, sizeof(buf)) != 1 || h.type != IPC_AUDIT_ACK ||
            h.id != id) {
            p->failed = 1;
            break;
        }
        p->acked++;
        id++;
    }
    return NULL;
}

static void
bench_writer(const char *data_dir, unsigned nprod, double secs)
{
    struct mamori_config *cfg = calloc(1, sizeof(*cfg));
    struct passwd *pw = geteuid() == 0 ? getpwnam("mamori") : getpwuid(geteuid());
    int ctl[2], ch[16][2], fds[17];
    struct producer prod[16];
    pthread_t th[16];
    atomic_bool stop = false;
    char dir[PATH_MAX], cmd[PATH_MAX + 16];
    uint8_t buf[64];
    struct ipc_hdr h;
    unsigned long acked = 0, syncs0, syncs;
    double t0, t1;
    char *ev = sample_event(0);
    pid_t pid;
    int st;

    if (cfg == NULL || pw == NULL || ev == NULL || nprod > 16)
        die("setup");
    snprintf(dir, sizeof(dir), "%s/writer-%u", data_dir, nprod);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        die("rm");
    own_dir(dir);
    config_defaults(cfg);
    snprintf(cfg->user, sizeof(cfg->user), "%s", pw->pw_name);
    snprintf(cfg->audit_dir, sizeof(cfg->audit_dir), "%s", dir);
    cfg->log_level = LOG_LVL_ERROR;
    if (ipc_socketpair(ctl) != 0)
        die("socketpair");
    fds[0] = ctl[1];
    for (unsigned i = 0; i < nprod; i++) {
        if (ipc_socketpair(ch[i]) != 0)
            die("socketpair");
        fds[1 + i] = ch[i][1];
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0)
        _exit(auditd_main(cfg, fds, 1 + nprod));
    close(ctl[1]);
    for (unsigned i = 0; i < nprod; i++)
        close(ch[i][1]);
    if (ipc_recv(ctl[0], &h, buf, sizeof(buf)) != 1 || h.type != IPC_READY) {
        fprintf(stderr, "bench_audit: the writer did not start\n");
        exit(1);
    }
    syncs0 = atomic_load(sync_count);
    t0 = now_s();
    for (unsigned i = 0; i < nprod; i++) {
        prod[i] = (struct producer){ ch[i][0], ev, strlen(ev), &stop, 0, 0 };
        if (pthread_create(&th[i], NULL, produce, &prod[i]) != 0)
            die("pthread_create");
    }
    while (now_s() - t0 < secs)
        usleep(10000);
    atomic_store(&stop, true);
    for (unsigned i = 0; i < nprod; i++) {
        pthread_join(th[i], NULL);
        acked += prod[i].acked;
        if (prod[i].failed) {
            fprintf(stderr, "bench_audit: producer %u failed\n", i);
            exit(1);
        }
    }
    t1 = now_s();
    syncs = atomic_load(sync_count) - syncs0;
    if (ipc_send(ctl[0], IPC_SHUTDOWN, 1, 0, NULL, 0) != 0 || waitpid(pid, &st, 0) != pid ||
        !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench_audit: the writer did not stop cleanly\n");
        exit(1);
    }
    printf("writer  %2u producer%s  %8.0f durable events/s  %7lu events  %6lu fsyncs  "
           "%5.1f events/fsync  %6.0f us/event latency\n", nprod, nprod == 1 ? " " : "s",
           (double)acked / (t1 - t0), acked, syncs, syncs ? (double)acked / (double)syncs : 0.0,
           acked ? (t1 - t0) * 1e6 * nprod / (double)acked : 0.0);
    for (unsigned i = 0; i < nprod; i++)
        close(ch[i][0]);
    close(ctl[0]);
    free(ev);
    free(cfg);
}

/* ---- (b) verify against raw hashing ---------------------------------------- */

static int
sign_ckpt(void *arg, const uint8_t req[AUDIT_SIGN_REQ_LEN], uint8_t sig[AUDIT_SIG_LEN])
{
    uint8_t msg[AUDIT_CKPT_MSG_LEN];

    audit_ckpt_message(req, msg);
    return crypto_sign_detached(sig, NULL, msg, sizeof(msg), arg);
}

static void
make_log(const char *base, unsigned long entries, uint8_t pk[AUDIT_PK_LEN])
{
    static uint8_t sk[AUDIT_SK_LEN];
    char dir[PATH_MAX + 16], path[PATH_MAX + 64], hex[2 * AUDIT_PK_LEN + 2], err[256];
    struct audit_writer_opts o = { .ckpt_entries = 1000, .ckpt_seconds = 3600,
                                   .segment_max_bytes = 256u << 20, .archive_days = 366,
                                   .retention_days = 1827, .signer = { sign_ckpt, sk } };
    struct audit_writer *w;
    uint64_t cut, seq;
    json_t *evs[64];

    snprintf(dir, sizeof(dir), "%s/audit", base);
    own_dir(dir);
    o.dir = dir;
    crypto_sign_keypair(pk, sk);
    if (util_hex_encode(pk, AUDIT_PK_LEN, hex, sizeof(hex)) != 0)
        die("hex");
    hex[64] = '\n';
    snprintf(path, sizeof(path), "%s/%s", dir, AUDIT_SIGNING_PUB);
    if (util_write_file_atomic(path, hex, 65, 0644) != 0)
        die(path);
    snprintf(path, sizeof(path), "%s/pinned.pub", base);
    if (util_write_file_atomic(path, hex, 65, 0644) != 0)
        die(path);
    for (unsigned i = 0; i < 64; i++) {
        char *t = sample_event(i * 7919u);
        evs[i] = json_loads(t, 0, NULL);
        free(t);
    }
    if (audit_writer_open(&o, &w, &cut, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_audit: %s\n", err);
        exit(1);
    }
    for (unsigned long i = 0; i < entries;) {
        if (audit_writer_begin(w) != 0)
            die("begin");
        for (unsigned j = 0; j < 1000 && i < entries; j++, i++)
            if (audit_writer_append(w, evs[i % 64], &seq, err, sizeof(err)) != 0)
                die("append");
        if (audit_writer_commit(w) != 0)
            die("commit");
    }
    if (audit_writer_checkpoint(w) != 0)
        die("checkpoint");
    audit_writer_close(w);
    for (unsigned i = 0; i < 64; i++)
        json_decref(evs[i]);
}

/* `openssl speed -seconds 1 -bytes N sha256`: hashes per second, or 0. */
static double
openssl_sha256(size_t n)
{
    char cmd[128], line[512];
    double kbs = 0;
    FILE *p;

    if (system("command -v openssl >/dev/null 2>&1") != 0)
        return 0;
    snprintf(cmd, sizeof(cmd), "openssl speed -seconds 1 -bytes %zu sha256 2>/dev/null", n);
    if ((p = popen(cmd, "r")) == NULL)
        return 0;
    while (fgets(line, sizeof(line), p) != NULL) {
        double v;
        /* The result line: "sha256   123456.78k" (1000s of bytes per second). */
        if (strncmp(line, "sha256 ", 7) == 0 && sscanf(line + 7, " %lfk", &v) == 1)
            kbs = v;
    }
    pclose(p);
    return kbs * 1000.0 / (double)n;
}

/* Drop the log's pages from the page cache (they are clean: the writer
 * fsync'd them), so the next verify reads from the disk. */
static void
evict(const char *audit_dir)
{
    struct audit_segment *segs;
    size_t nseg;

    if (audit_segments_list(audit_dir, &segs, &nseg) != 0)
        die("list");
    for (size_t i = 0; i < nseg; i++) {
        const char *files[2] = { segs[i].path, segs[i].ckpt };
        for (int k = 0; k < 2; k++) {
            int fd = open(files[k], O_RDONLY);
            if (fd < 0)
                continue;
            if (fdatasync(fd) != 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0)
                die("fadvise");
            close(fd);
        }
    }
    free(segs);
}

/* CPU time of this process (user + system): the in-process parts are
 * timed with it, so other load on the 2 shared cores counts less. */
static double
cpu_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double
children_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Run cmd; its wall time and the CPU time of it and its children. */
static void
run_verify_cmd(const char *cmd, double *wall, double *cpu)
{
    double t0 = now_s(), c0 = children_cpu_s();

    if (system(cmd) != 0) {
        fprintf(stderr, "bench_audit: `%s` failed\n", cmd);
        exit(1);
    }
    *wall = now_s() - t0;
    *cpu = children_cpu_s() - c0;
}

static double
verify_in_process(const char *audit_dir, const uint8_t pk[AUDIT_PK_LEN], unsigned flags,
                  struct audit_verify_result *r)
{
    double t0 = cpu_s();

    if (audit_verify_flags(audit_dir, pk, flags, r) != 0) {
        fprintf(stderr, "bench_audit: verify: %s\n", r->what);
        exit(1);
    }
    return cpu_s() - t0;
}

#define ROUNDS 5

/* Raw libsodium SHA-256 over n-byte inputs: the best of ROUNDS rounds of
 * 0.3 s, in hashes per second of wall and of CPU time. */
static void
sodium_sha256(size_t n, double *per_wall, double *per_cpu)
{
    uint8_t *msg = malloc(n), out[32];

    if (msg == NULL)
        die("malloc");
    memset(msg, 'x', n);
    *per_wall = *per_cpu = 0;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_s(), c0 = cpu_s();
        unsigned long k = 0;
        do {
            for (int j = 0; j < 1000; j++, k++)
                crypto_hash_sha256(out, msg, n);
        } while (now_s() - t0 < 0.3);
        double w = (double)k / (now_s() - t0), c = (double)k / (cpu_s() - c0);
        if (w > *per_wall)
            *per_wall = w;
        if (c > *per_cpu)
            *per_cpu = c;
    }
    free(msg);
}

/* Stream every live segment of dir through buf (1 MiB); with `hash`,
 * also split each line and chain-hash it.  Returns the CPU seconds. */
static double
read_all(const char *dir, char *buf, bool hash, size_t *bytes, size_t *lines)
{
    struct audit_segment *segs;
    size_t nseg;
    double t0 = cpu_s();

    *bytes = *lines = 0;
    if (audit_segments_list(dir, &segs, &nseg) != 0)
        die("list");
    for (size_t i = 0; i < nseg; i++) {
        uint8_t prev[AUDIT_HASH_LEN] = { 0 }, h[AUDIT_HASH_LEN];
        size_t have = 0;
        ssize_t k;
        int fd = open(segs[i].path, O_RDONLY);
        if (fd < 0 || segs[i].archived)
            die("open");
        while ((k = read(fd, buf + have, (1u << 20) - have)) > 0) {
            char *p = buf, *end = buf + have + k, *nl;
            *bytes += (size_t)k;
            for (; hash && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL; p = nl + 1) {
                size_t clen;
                if (audit_line_split(p, (size_t)(nl - p), &clen, h) != 0)
                    die("split");
                audit_chain_step(prev, p, clen, h);
                memcpy(prev, h, sizeof(prev));
                (*lines)++;
            }
            have = hash ? (size_t)(end - p) : 0;
            memmove(buf, p, have);
        }
        close(fd);
    }
    free(segs);
    return cpu_s() - t0;
}

static void
bench_verify(const char *mamori, const char *data_dir, unsigned long entries)
{
    char base[PATH_MAX], conf[PATH_MAX + 32], text[PATH_MAX + 64], cmd[3 * PATH_MAX];
    uint8_t pk[AUDIT_PK_LEN];
    struct audit_segment *segs;
    size_t nseg, bytes = 0, lines = 0;
    double t0, t_verify = 1e9, c_verify = 1e9, t_cold, c_cold, t_read = 0, t_parse = 0;
    double t_hash = 0, t_inproc = 1e9, t_deep;
    struct audit_verify_result r, rd;
    char *chunk = malloc(1u << 20);

    snprintf(base, sizeof(base), "%s/verify", data_dir);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
    if (chunk == NULL || system(cmd) != 0)
        die("rm");
    own_dir(base);
    t0 = now_s();
    make_log(base, entries, pk);
    printf("verify  log of %lu entries written in %.1f s; timing %s\n", entries,
           now_s() - t0, mamori);
    snprintf(conf, sizeof(conf), "%s/mamorid.conf", base);
    int n = snprintf(text, sizeof(text), "datadir = %s\n", base);
    if (util_write_file_atomic(conf, text, (size_t)n, 0600) != 0)
        die(conf);
    snprintf(text, sizeof(text), "%s/audit", base);

    /* The real command, page cache warm (the log was just written and is
     * read once before timing), best of ROUNDS by wall and by CPU time;
     * then once from the disk. */
    snprintf(cmd, sizeof(cmd), "'%s' audit verify -c '%s' --pubkey '%s/pinned.pub' >/dev/null",
             mamori, conf, base);
    run_verify_cmd(cmd, &t_cold, &c_cold);
    for (int k = 0; k < ROUNDS; k++) {
        double w, c;
        run_verify_cmd(cmd, &w, &c);
        t_verify = w < t_verify ? w : t_verify;
        c_verify = c < c_verify ? c : c_verify;
    }
    evict(text);
    run_verify_cmd(cmd, &t_cold, &c_cold);

    /* In process (CPU time): as the command does, best of 3, and with
     * every entry in full. */
    for (int k = 0; k < 3; k++) {
        double c = verify_in_process(text, pk, 0, &r);
        t_inproc = c < t_inproc ? c : t_inproc;
    }
    t_deep = verify_in_process(text, pk, AUDIT_VERIFY_DEEP, &rd);

    /* Its parts (CPU time, best of 3): reading through one 1 MiB buffer as
     * verify streams a segment; the floor -- reading plus splitting each
     * line and the chain hash, what any verifier must do --; and what
     * every entry cost before R7.2's scanner and a deep verify still pays,
     * a jansson parse. */
    t_read = t_hash = 1e9;
    for (int k = 0; k < 3; k++) {
        double c = read_all(text, chunk, false, &bytes, &lines);
        t_read = c < t_read ? c : t_read;
        c = read_all(text, chunk, true, &bytes, &lines);
        t_hash = c < t_hash ? c : t_hash;
    }
    if (audit_segments_list(text, &segs, &nseg) != 0)
        die("list");
    for (size_t i = 0; i < nseg; i++) {
        char *buf;
        size_t len;
        if (audit_segment_read(&segs[i], &buf, &len) != 0)
            die("read");
        t0 = cpu_s();
        for (char *p = buf, *nl; p < buf + len; p = nl + 1) {
            json_t *o;
            nl = memchr(p, '\n', (size_t)(buf + len - p));
            o = json_loadb(p, (size_t)(nl - p), JSON_REJECT_DUPLICATES, NULL);
            json_decref(o);
        }
        t_parse += cpu_s() - t0;
        free(buf);
    }
    free(segs);
    free(chunk);

    size_t avg = bytes / lines;
    double sodium_rate, sodium_cpu_rate;
    sodium_sha256(avg, &sodium_rate, &sodium_cpu_rate);
    double ossl_rate = openssl_sha256(avg);
    double verify_rate = (double)lines / t_verify, verify_cpu_rate = (double)lines / c_verify;
    double us = 1e6 / (double)lines;

    printf("verify  %zu entries, %zu bytes, average entry %zu bytes, %u checkpoints, "
           "%llu entries checked in full (deep: %llu)\n", lines, bytes, avg,
           (unsigned)r.checkpoints, (unsigned long long)r.checked_in_full,
           (unsigned long long)rd.checked_in_full);
    printf("verify  mamori audit verify (best of %d, page cache warm): %.3f s wall = %.0f "
           "entries/s; %.3f s CPU = %.0f entries/s\n", ROUNDS, t_verify, verify_rate, c_verify,
           verify_cpu_rate);
    printf("verify  from the disk (log evicted from the page cache): %.3f s wall = %.0f "
           "entries/s; %.3f s CPU\n", t_cold, (double)lines / t_cold, c_cold);
    printf("verify  in process, CPU time: %.0f entries/s (%.2f us/entry); deep (every entry "
           "parsed and schema-checked): %.0f entries/s (%.2f us/entry)\n",
           (double)lines / t_inproc, t_inproc * us, (double)lines / t_deep, t_deep * us);
    printf("hash    libsodium crypto_hash_sha256 over %zu-byte entries (best of %d): %.0f "
           "entries/s wall (%.0f MB/s), %.0f entries/s CPU\n", avg, ROUNDS, sodium_rate,
           sodium_rate * (double)avg / 1e6, sodium_cpu_rate);
    if (ossl_rate > 0)
        printf("hash    openssl speed sha256 -bytes %zu: %.0f entries/s (%.0f MB/s)\n", avg,
               ossl_rate, ossl_rate * (double)avg / 1e6);
    else
        printf("hash    openssl: not installed\n");
    printf("ratio   verify is %.2fx slower than raw libsodium SHA-256 by wall time, %.2fx by "
           "CPU time (goal: within 2x)%s\n", sodium_rate / verify_rate,
           sodium_cpu_rate / verify_cpu_rate,
           sodium_rate / verify_rate <= 2.0 ? ": met" : ": NOT met");
    if (ossl_rate > 0)
        printf("ratio   and %.2fx slower than openssl's SHA-256 (SHA extensions)\n",
               ossl_rate / verify_rate);
    printf("parts   per entry, CPU: read %.2f us; read + split + chain hash (the floor) "
           "%.2f us = %.0f entries/s, verify is %.2fx the floor; the rest of verify (scan, "
           "checks, checkpoints) %.2f us; a jansson parse (deep, and every entry before "
           "R7.2's scanner) %.2f us\n", t_read * us, t_hash * us, (double)lines / t_hash,
           t_inproc / t_hash, (t_inproc - t_hash) * us, t_parse * us);
}

int
main(int argc, char **argv)
{
    const char *mamori, *data_dir;
    double secs = argc > 3 ? strtod(argv[3], NULL) : 3.0;
    unsigned long entries = argc > 4 ? strtoul(argv[4], NULL, 10) : 200000;
    static const unsigned nprod[] = { 1, 4, 16 };

    if (argc < 3) {
        fprintf(stderr, "usage: bench_audit MAMORI_BINARY DATA_DIR [SECONDS [ENTRIES]]\n");
        return 2;
    }
    mamori = argv[1];
    data_dir = argv[2];
    if (sodium_init() < 0)
        return 1;
    sync_count = mmap(NULL, sizeof(*sync_count), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sync_count == MAP_FAILED)
        die("mmap");
    atomic_init(sync_count, 0);
    own_dir(data_dir);
    machine(data_dir);
    for (size_t i = 0; secs > 0 && i < sizeof(nprod) / sizeof(nprod[0]); i++)
        bench_writer(data_dir, nprod[i], secs);       /* SECONDS 0: verify only */
    bench_verify(mamori, data_dir, entries);
    return 0;
}
