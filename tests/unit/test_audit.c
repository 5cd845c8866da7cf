/*
 * test_audit.c - the tamper-evident audit log (R7.1-R7.7): the tamper
 * matrix against `audit_verify`, the secret canary, crash safety of the
 * writer process under SIGKILL, rotation / archival / retention with an
 * injected clock, the detection rules and webhook delivery, and the
 * key holder signing checkpoints over IPC.
 *
 *   MAMORI_AUDIT_CRASH_ROUNDS  crash rounds (default 20)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "audit/auditd.h"
#include "audit/chain.h"
#include "audit/detect.h"
#include "audit/event.h"
#include "audit/query.h"
#include "audit/writer.h"
#include "cli/cli.h"
#include "common/util.h"
#include "config/config.h"
#include "ipc/ipc.h"
#include "keyholder/keyholder.h"

/* ---- fixtures ---------------------------------------------------------- */

struct env {
    char    dir[128];
    uint8_t pk[AUDIT_PK_LEN], sk[AUDIT_SK_LEN];
    uint8_t other_pk[AUDIT_PK_LEN], other_sk[AUDIT_SK_LEN];
};

static int64_t fake_now_us;
static int64_t
fake_clock(void)
{
    return fake_now_us;
}

static int
signer(void *arg, const uint8_t req[AUDIT_SIGN_REQ_LEN], uint8_t sig[AUDIT_SIG_LEN])
{
    uint8_t msg[AUDIT_CKPT_MSG_LEN];

    audit_ckpt_message(req, msg);
    return crypto_sign_detached(sig, NULL, msg, sizeof(msg), arg);
}

static void
write_pub(const char *dir, const uint8_t pk[AUDIT_PK_LEN])
{
    char path[256], hex[65];

    snprintf(path, sizeof(path), "%s/%s", dir, AUDIT_SIGNING_PUB);
    assert_int_equal(util_hex_encode(pk, AUDIT_PK_LEN, hex, sizeof(hex)), 0);
    hex[64] = '\n';
    assert_int_equal(util_write_file_atomic(path, hex, 65, 0644), 0);
}

static int
env_setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));

    if (e == NULL || sodium_init() < 0)
        return -1;
    snprintf(e->dir, sizeof(e->dir), "/tmp/mamori-test-audit-XXXXXX");
    if (mkdtemp(e->dir) == NULL)
        return -1;
    crypto_sign_keypair(e->pk, e->sk);
    crypto_sign_keypair(e->other_pk, e->other_sk);
    write_pub(e->dir, e->pk);
    audit_set_clock(NULL);
    *state = e;
    return 0;
}

static int
env_teardown(void **state)
{
    struct env *e = *state;
    char cmd[256];

    audit_set_clock(NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        return -1;
    free(e);
    return 0;
}

static struct audit_writer_opts
opts(struct env *e)
{
    struct audit_writer_opts o = {
        .dir = e->dir, .ckpt_entries = 4, .ckpt_seconds = 60,
        .segment_max_bytes = 64u * 1024u * 1024u, .archive_days = 366,
        .retention_days = 1827, .signer = { signer, e->sk },
    };
    return o;
}

static json_t *
ev_read(const char *actor, const char *object)
{
    json_t *ev = audit_event_new("resident.read", AUDIT_SUCCESS);

    assert_non_null(ev);
    assert_int_equal(audit_event_set(ev, AUDIT_F_TENANT, "131016"), 0);
    assert_int_equal(audit_event_set(ev, AUDIT_F_ACTOR, actor), 0);
    assert_int_equal(audit_event_set(ev, AUDIT_F_ROLE, "clerk"), 0);
    assert_int_equal(audit_event_add_object(ev, object), 0);
    return ev;
}

/* Write n events in batches of 3 (group commit), ending with a checkpoint
 * when `sign_end`. */
static void
write_log(struct env *e, struct audit_writer_opts *o, int n, bool sign_end)
{
    struct audit_writer *w;
    char err[256];
    uint64_t cut;

    assert_int_equal(audit_writer_open(o, &w, &cut, err, sizeof(err)), 0);
    for (int i = 0; i < n;) {
        assert_int_equal(audit_writer_begin(w), 0);
        for (int j = 0; j < 3 && i < n; j++, i++) {
            char obj[32];
            uint64_t seq;
            snprintf(obj, sizeof(obj), "r-%d", i);
            json_t *ev = ev_read("clerk-1", obj);
            if (audit_writer_append(w, ev, &seq, err, sizeof(err)) != 0)
                fail_msg("append: %s", err);
            json_decref(ev);
        }
        assert_int_equal(audit_writer_commit(w), 0);
    }
    if (sign_end)
        assert_int_equal(audit_writer_checkpoint(w), 0);
    audit_writer_close(w);
    (void)e;
}

/* The path of the only (or newest) live segment, with extension ext. */
static void
seg_file(struct env *e, const char *ext, char *out, size_t n)
{
    struct audit_segment *s;
    size_t ns;

    assert_int_equal(audit_segments_list(e->dir, &s, &ns), 0);
    assert_true(ns > 0);
    if (strcmp(ext, ".log") == 0)
        snprintf(out, n, "%s", s[ns - 1].path);
    else
        snprintf(out, n, "%s", s[ns - 1].ckpt);
    free(s);
}

static char *
slurp(const char *path, size_t *len)
{
    char *b;
    size_t l;

    assert_int_equal(util_read_file(path, 1u << 28, &b, &l), 0);
    if (len)
        *len = l;
    return b;
}

static void
spit(const char *path, const char *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_TRUNC);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    close(fd);
}

/* Offset of line k (1-based) in b. */
static size_t
line_at(const char *b, size_t len, int k)
{
    size_t off = 0;

    for (int i = 1; i < k; i++) {
        const char *nl = memchr(b + off, '\n', len - off);
        assert_non_null(nl);
        off = (size_t)(nl - b) + 1;
    }
    return off;
}

static size_t
line_len(const char *b, size_t len, size_t off)
{
    const char *nl = memchr(b + off, '\n', len - off);

    assert_non_null(nl);
    return (size_t)(nl - (b + off)) + 1;
}

static void
expect_bad(struct env *e, const uint8_t *pk, const char *want_file_part, const char *want_what)
{
    struct audit_verify_result r;

    if (audit_verify(e->dir, pk, &r) == 0)
        fail_msg("verify passed a tampered log (%llu entries)", (unsigned long long)r.entries);
    assert_false(r.ok);
    if (want_file_part != NULL && strstr(r.file, want_file_part) == NULL)
        fail_msg("verify named %s, expected a file with %s (%s)", r.file, want_file_part, r.what);
    if (want_what != NULL && strstr(r.what, want_what) == NULL)
        fail_msg("verify said \"%s\", expected \"%s\"", r.what, want_what);
}

static void
expect_good(struct env *e, const uint8_t *pk, uint64_t last_seq)
{
    struct audit_verify_result r;

    if (audit_verify(e->dir, pk, &r) != 0)
        fail_msg("verify failed: %s line %llu: %s", r.file, (unsigned long long)r.line, r.what);
    assert_true(r.ok);
    if (last_seq != 0)
        assert_int_equal(r.last_seq, last_seq);
}

/* ---- the tamper matrix (R7.2) --------------------------------------------- */

static void
test_untouched_log_verifies(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);
    struct audit_verify_result r;

    write_log(e, &o, 10, true);
    /* segment_start + 10 */
    assert_int_equal(audit_verify(e->dir, e->pk, &r), 0);
    assert_int_equal(r.entries, 11);
    assert_int_equal(r.last_seq, 11);
    assert_int_equal(r.last_signed_seq, 11);
    assert_true(r.checkpoints >= 2);
    /* Also with the key from signing.pub. */
    expect_good(e, NULL, 11);
}

static void
test_changed_byte_in_entry_detected(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);
    char path[512];
    size_t len;

    write_log(e, &o, 10, true);
    seg_file(e, ".log", path, sizeof(path));
    char *b = slurp(path, &len);
    /* Every byte position of entry 5, one at a time. */
    size_t off = line_at(b, len, 5), ll = line_len(b, len, off);
    for (size_t i = off; i < off + ll - 1; i++) {
        char was = b[i];
        b[i] = (char)(was == 'a' ? 'b' : was == '1' ? '2' : was ^ 0x01);
        spit(path, b, len);
        struct audit_verify_result r;
        if (audit_verify(e->dir, e->pk, &r) == 0)
            fail_msg("a changed byte at offset %zu of entry 5 was not detected", i - off);
        assert_int_equal(r.line, 5);
        b[i] = was;
    }
    spit(path, b, len);
    expect_good(e, e->pk, 11);
    free(b);
}

static void
test_changed_byte_in_checkpoint_detected(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);
    char path[512];
    size_t len;

    write_log(e, &o, 10, true);
    seg_file(e, ".ckpt", path, sizeof(path));
    char *b = slurp(path, &len);
    for (size_t i = 0; i + 1 < line_len(b, len, 0); i++) {
        char was = b[i];
        b[i] = (char)(was == 'a' ? 'b' : was == '1' ? '2' : was ^ 0x01);
        spit(path, b, len);
        struct audit_verify_result r;
        if (audit_verify(e->dir, e->pk, &r) == 0)
            fail_msg("a changed byte at offset %zu of a checkpoint was not detected", i);
        b[i] = was;
    }
    spit(path, b, len);
    expect_good(e, e->pk, 11);
    free(b);
}

static void
test_deleted_entry_detected(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);
    char path[512];
    size_t len;

    write_log(e, &o, 10, true);
    seg_file(e, ".log", path, sizeof(path));
    char *b = slurp(path, &len);
    size_t off = line_at(b, len, 4), ll = line_len(b, len, off);
    memmove(b + off, b + off + ll, len - off - ll);
    spit(path, b, len - ll);
    expect_bad(e, e->pk, ".log", "seq 5 where 4 was expected");
    free(b);
}

static void
test_inserted_entry_detected(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);
    char path[512];
    size_t len;

    write_log(e, &o, 10, true);
    seg_file(e, ".log", path, sizeof(path));
    char *b = slurp(path, &len);
    /* A copy of entry 3 inserted after it. */
    size_t off = line_at(b, len, 3), ll = line_len(b, len, off);
    char *nb = malloc(len + ll);
    memcpy(nb, b, off + ll);
    memcpy(nb + off + ll, b + off, ll);
    memcpy(nb + off + 2 * ll, b + off + ll, len - off - ll);
    spit(path, nb, len + ll);
    expect_bad(e, e->pk, ".log", "where 4 was expected");
    free(nb);
    free(b);
}

/* An inserted entry with a consistent chain after it: the attacker
 * re-hashes everything after the insertion and renumbers; only the signed
 * checkpoints can tell. */
static void
test_inserted_entry_rechained_detected(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);
    char path[512];

    write_log(e, &o, 10, true);
    seg_file(e, ".log", path, sizeof(path));
    /* Rebuild the segment: lines 1..3, a forged one, then 4.. renumbered. */
    size_t len;
    char *b = slurp(path, &len);
    FILE *f = fopen(path, "w");
    uint8_t prev[AUDIT_HASH_LEN] = { 0 };
    uint64_t seq = 0;
    int ln = 0;
    assert_non_null(f);
    for (size_t off = 0; off < len; ln++) {
        size_t ll = line_len(b, len, off);
        for (int twice = 0; twice < (ln == 3 ? 2 : 1); twice++) {
            json_t *o2 = json_loadb(b + off, ll - 1, 0, NULL);
            char *canon, hex[65];
            uint8_t h[AUDIT_HASH_LEN];
            json_t *ev = json_object_get(o2, "event");
            if (twice == 1)
                json_object_set_new(ev, "reason", json_string("forged"));
            char *evs = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
            assert_true(asprintf(&canon, "{\"seq\":%llu,\"time\":\"%s\",\"event\":%s",
                                 (unsigned long long)++seq,
                                 json_string_value(json_object_get(o2, "time")), evs) > 0);
            audit_chain_step(prev, canon, strlen(canon), h);
            memcpy(prev, h, sizeof(h));
            assert_int_equal(util_hex_encode(h, 32, hex, sizeof(hex)), 0);
            fprintf(f, "%s,\"hash\":\"%s\"}\n", canon, hex);
            free(canon);
            free(evs);
            json_decref(o2);
        }
        off += ll;
    }
    fclose(f);
    free(b);
    expect_bad(e, e->pk, ".ckpt", "does not match the chain");
}

static void
test_reordered_entries_detected(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);
    char path[512];
    size_t len;

    write_log(e, &o, 10, true);
    seg_file(e, ".log", path, sizeof(path));
    char *b = slurp(path, &len);
    size_t a = line_at(b, len, 6), al = line_len(b, len, a);
    size_t c = line_at(b, len, 7), cl = line_len(b, len, c);
    char *nb = malloc(len);
    memcpy(nb, b, a);
    memcpy(nb + a, b + c, cl);
    memcpy(nb + a + cl, b + a, al);
    memcpy(nb + a + cl + al, b + c + cl, len - c - cl);
    spit(path, nb, len);
    expect_bad(e, e->pk, ".log", "where 6 was expected");
    free(nb);
    free(b);
}

/* Truncation that removes signed entries is detected; truncation of only
 * entries after the last checkpoint cannot be (nothing signed them) and
 * verify reports where the signed part ends instead. */
static void
test_truncation_before_last_checkpoint_detected(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);
    char path[512];
    size_t len;

    write_log(e, &o, 10, true);
    seg_file(e, ".log", path, sizeof(path));
    char *b = slurp(path, &len);
    size_t off = line_at(b, len, 9);
    assert_int_equal(truncate(path, (off_t)off), 0);
    expect_bad(e, e->pk, ".ckpt", "the segment was truncated");
    /* A torn cut in the middle of a line is named as such. */
    assert_int_equal(truncate(path, (off_t)off - 7), 0);
    expect_bad(e, e->pk, ".log", "incomplete last line");
    free(b);
}

static void
test_truncation_after_last_checkpoint_reported(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);
    struct audit_verify_result r;
    char path[512];
    size_t len;

    o.ckpt_entries = 5;
    write_log(e, &o, 10, false);       /* signed at 7, 11 unsigned: no end checkpoint */
    assert_int_equal(audit_verify(e->dir, e->pk, &r), 0);
    assert_int_equal(r.last_seq, 11);
    assert_int_equal(r.last_signed_seq, 7);
    seg_file(e, ".log", path, sizeof(path));
    char *b = slurp(path, &len);
    assert_int_equal(truncate(path, (off_t)line_at(b, len, 9)), 0);
    /* Still verifies: entries 9..11 were never signed.  What is reported
     * is that the signed part ends at 7, which an auditor compares with
     * an exported checkpoint. */
    assert_int_equal(audit_verify(e->dir, e->pk, &r), 0);
    assert_int_equal(r.last_seq, 8);
    assert_int_equal(r.last_signed_seq, 7);
    /* Cut into the signed part: detected. */
    assert_int_equal(truncate(path, (off_t)line_at(b, len, 7)), 0);
    expect_bad(e, e->pk, ".ckpt", "truncated");
    free(b);
}

static void
test_forged_checkpoint_signature_detected(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);
    char path[512];
    size_t len;

    write_log(e, &o, 10, true);
    seg_file(e, ".ckpt", path, sizeof(path));
    char *b = slurp(path, &len);
    /* Flip one hex digit of the last signature. */
    char *sig = strstr(b + line_at(b, len, 2), "\"sig\":\"");
    assert_non_null(sig);
    sig[10] = sig[10] == '0' ? '1' : '0';
    spit(path, b, len);
    expect_bad(e, e->pk, ".ckpt", "signature does not verify");
    free(b);
}

static void
test_checkpoint_signed_by_other_key_detected(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);

    /* The attacker rewrites a log and signs it with their own key ... */
    o.signer.arg = e->other_sk;
    write_log(e, &o, 10, true);
    expect_bad(e, e->pk, ".ckpt", "signature does not verify");
    /* ... and even replaces signing.pub: a pinned key still catches it. */
    write_pub(e->dir, e->other_pk);
    expect_bad(e, e->pk, ".ckpt", "signature does not verify");
    expect_good(e, NULL, 11);   /* what an unpinned verify would believe */
}

/* ---- rotation, archival, retention (R7.3) with an injected clock --------- */

#define DAY ((int64_t)86400 * 1000000)

static void
one_event(struct audit_writer_opts *o, const char *obj)
{
    struct audit_writer *w;
    char err[256];
    uint64_t seq, cut;

    assert_int_equal(audit_writer_open(o, &w, &cut, err, sizeof(err)), 0);
    assert_int_equal(audit_writer_begin(w), 0);
    json_t *ev = ev_read("clerk-2", obj);
    if (audit_writer_append(w, ev, &seq, err, sizeof(err)) != 0)
        fail_msg("append: %s", err);
    json_decref(ev);
    assert_int_equal(audit_writer_commit(w), 0);
    assert_int_equal(audit_writer_checkpoint(w), 0);
    audit_writer_close(w);
}

static size_t
count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    if (d == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > strlen(suffix) && strcmp(de->d_name + l - strlen(suffix), suffix) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void
test_rotation_archival_retention(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);
    char arch[256];

    snprintf(arch, sizeof(arch), "%s/archive", e->dir);
    audit_set_clock(fake_clock);
    fake_now_us = (int64_t)1577836800 * 1000000;     /* 2020-01-01 */
    /* One event a month for six years: a new segment each (new day). */
    for (int m = 0; m < 72; m++) {
        char obj[16];
        snprintf(obj, sizeof(obj), "r-%d", m);
        one_event(&o, obj);
        if (m == 14) {
            /* After 15 months: the oldest segments are archived, the last
             * year is live. */
            assert_true(count_files(arch, ".log.zst") >= 1);
            assert_true(count_files(e->dir, ".log") >= 12);
            expect_good(e, e->pk, 0);
        }
        fake_now_us += 30 * DAY;
    }
    /* Nearly six years: nothing live is older than a year (+1 segment),
     * the oldest archives (over five years) are gone, and their deletion
     * is an audit event naming the range (R7.3). */
    assert_true(count_files(e->dir, ".log") <= 14);
    assert_true(count_files(arch, ".log.zst") >= 40);
    struct audit_segment *s;
    size_t n;
    assert_int_equal(audit_segments_list(e->dir, &s, &n), 0);
    assert_true(s[0].first_seq > 1);
    assert_true(s[0].archived);
    free(s);
    struct audit_query q = { 0 };
    q.action = "audit.segments_deleted";
    json_t *rows = NULL;
    assert_int_equal(audit_query_run(e->dir, &q, &rows), 0);
    assert_true(json_array_size(rows) >= 1);
    json_decref(rows);
    expect_good(e, e->pk, 0);
    /* An archived segment tampered with is detected. */
    assert_int_equal(audit_segments_list(e->dir, &s, &n), 0);
    size_t zl;
    char *z = slurp(s[1].path, &zl);
    size_t pl;
    char *plain;
    assert_int_equal(audit_segment_read(&s[1], &plain, &pl), 0);
    char *p = strstr(plain, "clerk-2");
    assert_non_null(p);
    p[5] = '3';
    size_t cap = ZSTD_compressBound(pl);
    char *nz = malloc(cap);
    size_t nzl = ZSTD_compress(nz, cap, plain, pl, 3);
    assert_false(ZSTD_isError(nzl));
    spit(s[1].path, nz, nzl);
    expect_bad(e, e->pk, ".log.zst", "hash mismatch");
    spit(s[1].path, z, zl);
    expect_good(e, e->pk, 0);
    /* Deleting an archived segment in the middle is detected too. */
    assert_int_equal(unlink(s[2].path), 0);
    expect_bad(e, e->pk, NULL, "expected");
    free(nz);
    free(plain);
    free(z);
    free(s);
}

static void
test_rotation_by_size(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);

    o.segment_max_bytes = 2000;
    write_log(e, &o, 40, true);
    assert_true(count_files(e->dir, ".log") >= 4);
    expect_good(e, e->pk, 0);
}

static void
test_time_never_goes_backwards(void **state)
{
    struct env *e = *state;
    struct audit_writer_opts o = opts(e);
    size_t len;
    char path[512];

    audit_set_clock(fake_clock);
    fake_now_us = (int64_t)1700000000 * 1000000;
    one_event(&o, "r-1");
    fake_now_us -= 3600 * 1000000LL;       /* the clock is set back an hour */
    one_event(&o, "r-2");
    seg_file(e, ".log", path, sizeof(path));
    char *b = slurp(path, &len);
    /* R7.6: the second entry carries the first one's time, not earlier. */
    assert_non_null(strstr(b, "2023-11-14T22:13:20.000000Z\",\"event\":{\"action\":\"resident.read\",\"actor\":\"clerk-2\",\"objects\":[\"r-2\"]"));
    assert_non_null(strstr(b, "\"clock\":\"clock_realtime\""));
    free(b);
    expect_good(e, e->pk, 0);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, env_setup, env_teardown)
    const struct CMUnitTest tests[] = {
        T(test_untouched_log_verifies),
        T(test_changed_byte_in_entry_detected),
        T(test_changed_byte_in_checkpoint_detected),
        T(test_deleted_entry_detected),
        T(test_inserted_entry_detected),
        T(test_inserted_entry_rechained_detected),
        T(test_reordered_entries_detected),
        T(test_truncation_before_last_checkpoint_detected),
        T(test_truncation_after_last_checkpoint_reported),
        T(test_forged_checkpoint_signature_detected),
        T(test_checkpoint_signed_by_other_key_detected),
        T(test_rotation_archival_retention),
        T(test_rotation_by_size),
        T(test_time_never_goes_backwards),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
