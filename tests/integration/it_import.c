/*
 * it_import.c - CSV import over the HTTP API against the real daemon, over
 * TLS (R2.6, R1.1, R1.5, R2.2, R6.6, R7.1; docs/import-export.md "Import
 * over the API").
 *
 * Set-up: two municipalities, 131016 (A) and 131024 (B), each with keys
 * and a registered terminal (the demo certificate for A, "ward-b" for B);
 * a supervisor and a clerk of A and a supervisor of B, signed in once
 * with password + TOTP; two workers, so a job is often polled through a
 * worker other than the one running it.  The files are made by `mamori
 * synth` (R9.4) or written here from invented values.
 *
 * Runs on SQLite and, when MAMORI_TEST_PG names a cluster, once more on
 * PostgreSQL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "store/store.h"

#include "harness.h"
#include "staff.h"

#define TA "131016"
#define TB "131024"
#define PW "Imp0rt!Strong"          /* every account's password */
#define NRES_DEFAULT 20000          /* residents of the big synthetic file */
#define NRES_B 500                  /* residents of B's CP932 file */

static struct instance inst;
static struct mamori_config cfg;
static const char *pg_base;         /* MAMORI_TEST_PG: run again on PostgreSQL */
static char pg_db[64];              /* this run's database, "" on SQLite */
static CURL *term_a, *term_b, *pub;
static char sup[65], clerk[65], sup_b[65];
static char synth_a[300], synth_b[300], badfile[300], numbers[300];
static char first_job[40];          /* A's residents import, for R1.1 */
/* MAMORI_IT_IMPORT_RESIDENTS=N measures a bigger file (docs/import-export.md),
 * polled once a second as a client would, not 20 times */
static int nres = NRES_DEFAULT;
static long poll_ms = 50;

static void assert_clean(const char *body);

/* ---- small helpers -------------------------------------------------------------------- */

static void
sleep_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&t, NULL);
}

static double
h_now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *
jstr(json_t *j, const char *k)
{
    return json_string_value(json_object_get(j, k));
}

static int64_t
jint(json_t *j, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(j, k));
}

static const char *
err_code(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static json_t *
ok(CURL *c, const char *method, const char *path, const char *token, long want)
{
    return h_staff_json(&inst, c, c != pub, method, path, NULL, token, want);
}

static long
file_size(const char *path)
{
    struct stat sb;

    assert_int_equal(stat(path, &sb), 0);
    return (long)sb.st_size;
}

/* Data lines of a CSV file that has no line break inside a field. */
static long
data_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    long n = -1;
    int c, last = '\n';

    assert_non_null(f);
    while ((c = fgetc(f)) != EOF) {
        if (c == '\n')
            n++;
        last = c;
    }
    fclose(f);
    return last == '\n' ? n : n + 1;
}

static int64_t
residents_of(const char *tenant)
{
    struct store_config sc = { cfg.store_backend, cfg.store_path, cfg.store_conninfo, 1, 0 };
    struct store_counts c = { 0, 0, 0 };
    struct store *st = NULL;

    assert_int_equal(store_open(&sc, 0, &st), STORE_OK);
    assert_int_equal(store_counts(st, tenant, &c), STORE_OK);
    store_close(st);
    return (int64_t)c.residents;
}

/* A valid individual number from 11 digits (R2.2 check digit). */
static void
mynumber(const char *eleven, char out[13])
{
    static const int w[11] = { 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2 };
    int sum = 0, r;

    for (int i = 0; i < 11; i++)
        sum += (eleven[i] - '0') * w[i];
    r = sum % 11;
    snprintf(out, 13, "%s%d", eleven, r <= 1 ? 0 : 11 - r);
}

/* ---- the upload: a file streamed with libcurl ------------------------------------------- */

/*
 * POST /v1/imports?<query> with the file as the body, as `ctype`, from
 * terminal `term` ("demo" or "ward-b") with a bearer token (may be NULL);
 * chunked if `chunked`, else with its Content-Length.  On the internal
 * listener unless `public_`.
 */
static void
upload_ex(const char *term, const char *token, const char *query, const char *path,
          const char *ctype, bool chunked, bool public_, struct h_response *r)
{
    char crt[64], key[64], url[512], h[128];
    struct curl_slist *hdrs = NULL;
    FILE *f = fopen(path, "rb");
    CURL *c;

    assert_non_null(f);
    snprintf(crt, sizeof(crt), "terminals/%s.crt", term);
    snprintf(key, sizeof(key), "terminals/%s.key", term);
    c = public_ ? h_curl(&inst, NULL, NULL) : h_curl(&inst, crt, key);
    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "https://localhost:%u/v1/imports%s%s",
             (unsigned)(public_ ? inst.public_port : inst.internal_port),
             query[0] ? "?" : "", query);
    snprintf(h, sizeof(h), "Content-Type: %s", ctype);
    hdrs = curl_slist_append(hdrs, h);
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (chunked)
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    if (token != NULL) {
        snprintf(h, sizeof(h), "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, h);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READDATA, f);
    if (!chunked)
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)file_size(path));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_collect_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    fclose(f);
}

static void
upload(const char *term, const char *token, const char *query, const char *path,
       struct h_response *r)
{
    upload_ex(term, token, query, path, "text/csv", false, false, r);
}

/* An upload that must be accepted: the job's id into id[33]. */
static void
upload_ok(const char *term, const char *token, const char *query, const char *path,
          char id[33])
{
    struct h_response r;
    json_t *j;

    upload(term, token, query, path, &r);
    assert_int_equal(r.rc, CURLE_OK);
    if (r.status != 202)
        fail_msg("upload %s: %ld %s", query, r.status, r.body ? r.body : "");
    assert_clean(r.body);
    j = json_loads(r.body, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(j);
    assert_string_equal(jstr(j, "state"), "queued");
    assert_int_equal(jint(j, "bytes_total"), file_size(path));
    assert_int_equal(strlen(jstr(j, "id")), 32);
    snprintf(id, 33, "%s", jstr(j, "id"));
    {
        char poll[64];
        snprintf(poll, sizeof(poll), "/v1/imports/%s", id);
        assert_string_equal(jstr(j, "poll"), poll);
    }
    json_decref(j);
    free(r.body);
}

/* ---- polling -------------------------------------------------------------------------------- */

static int
phase_rank(const char *s)
{
    static const char *const order[] = { "queued", "hashing", "checking", "writing", "done" };

    for (int i = 0; i < 5; i++)
        if (strcmp(s, order[i]) == 0)
            return i;
    fail_msg("unknown phase %s", s);
    return -1;
}

static bool
final(const char *state)
{
    static const char *const finals[] = { "imported", "already", "checked", "refused", "failed",
                                          "interrupted", NULL };

    for (const char *const *f = finals; *f != NULL; f++)
        if (strcmp(state, *f) == 0)
            return true;
    return false;
}

struct trace {
    int  samples, running;          /* polls, and polls that saw the job running */
    bool saw_writing;
};

/*
 * Poll GET /v1/imports/{id} until the job ends (up to 5 minutes); R2.6:
 * the phase never goes back, the bytes done never go back within a
 * phase, the percent never goes back.  The last answer is returned
 * (caller decrefs).
 */
static json_t *
poll_done(CURL *c, const char *token, const char *id, struct trace *t)
{
    char path[64];
    int last_rank = 0, last_pct = 0;
    int64_t last_bytes = 0;
    struct trace none;

    if (t == NULL)
        t = &none;
    memset(t, 0, sizeof(*t));
    snprintf(path, sizeof(path), "/v1/imports/%s", id);
    for (int i = 0; i < 6000; i++) {
        json_t *j = ok(c, "GET", path, token, 200);
        const char *state = jstr(j, "state");
        int rank = phase_rank(jstr(j, "phase"));
        int pct = (int)jint(j, "percent");
        int64_t bytes = json_is_integer(json_object_get(j, "bytes_done"))
                        ? jint(j, "bytes_done") : last_bytes;

        t->samples++;
        assert_true(rank >= last_rank);
        if (rank == last_rank)
            assert_true(bytes >= last_bytes);
        assert_true(pct >= last_pct);
        assert_true(pct >= 0 && pct <= 100);
        assert_true(bytes <= jint(j, "bytes_total"));
        last_rank = rank;
        last_pct = pct;
        last_bytes = bytes;
        if (final(state)) {
            char *text = json_dumps(j, 0);
            assert_clean(text);             /* R2.2: nothing of the file in the answer */
            free(text);
            return j;
        }
        t->running += strcmp(state, "queued") != 0;
        t->saw_writing |= strcmp(state, "writing") == 0;
        json_decref(j);
        sleep_ms(poll_ms);
    }
    fail_msg("import %s did not end", id);
    return NULL;
}

/* ---- what must never leave the daemon (R2.2) ------------------------------------------------ */

/* Every individual number of a residents file, one per line, appended to
 * the list the leak checks grep for. */
static void
add_numbers(const char *csv)
{
    char line[4096];
    FILE *in = fopen(csv, "r"), *out = fopen(numbers, "a");

    assert_non_null(in);
    assert_non_null(out);
    assert_non_null(fgets(line, sizeof(line), in));         /* header */
    while (fgets(line, sizeof(line), in) != NULL) {
        const char *comma = strchr(line, ',');
        if (comma != NULL && strspn(comma + 1, "0123456789") == 12)
            fprintf(out, "%.12s\n", comma + 1);
    }
    fclose(in);
    fclose(out);
}

/* No listed number in a response body. */
static void
assert_clean(const char *body)
{
    char line[32];
    FILE *f = fopen(numbers, "r");

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] != '\0' && body != NULL && strstr(body, line) != NULL)
            fail_msg("an individual number of an uploaded file is in a response");
    }
    fclose(f);
}

/* No listed number in the daemon's log or the audit log. */
static void
assert_not_logged(void)
{
    char cmd[1200], out[256];
    FILE *p;
    bool hit;

    snprintf(cmd, sizeof(cmd), "grep -rlF -f %s %s %s/audit 2>/dev/null", numbers, inst.log,
             inst.dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    hit = fgets(out, sizeof(out), p) != NULL;
    pclose(p);
    if (hit)
        fail_msg("an individual number of an uploaded file is in %s", out);
}

/* The record of who did what (R7.1). */
static bool
audit_has(const char *action, const char *needle)
{
    char cmd[1024], line[16384];
    bool found = false;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "%s/mamori audit query -c %s --tenant %s", MAMORI_TEST_BINARY_DIR,
             inst.conf, TA);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL)
        found |= strstr(line, action) != NULL && (needle == NULL || strstr(line, needle) != NULL);
    pclose(p);
    return found;
}

/* ---- the files ------------------------------------------------------------------------------ */

static int
synth(const char *code, int count, const char *seed, const char *encoding, const char *out)
{
    char n[16];
    char *argv[] = { (char *)h_bin("mamori"), "synth", "--municipality", (char *)code,
                     "--count", n, "--seed", (char *)seed, "--start-date", "2025-11-01",
                     "--encoding", (char *)encoding, "--out", (char *)out, NULL };

    snprintf(n, sizeof(n), "%d", count);
    return h_run(argv, NULL, 0);
}

/* Residents with five different bad lines and one good one, invented
 * here (R9.4).  Their address numbers start with X, so none is taken. */
static int
write_badfile(void)
{
    char good1[13], good2[13], good3[13], good4[13], bad[13];
    FILE *f = fopen(badfile, "w"), *nf = fopen(numbers, "a");
    const char *tail = ",100-0001,東京都千代田区千代田1-1,,X0000001,世帯主,1980-01-01,,,,,,\r\n";

    if (f == NULL || nf == NULL)
        return -1;
    mynumber("71000000001", good1);
    mynumber("71000000002", good2);
    mynumber("71000000003", good3);
    mynumber("71000000004", good4);
    mynumber("71000000005", bad);
    bad[11] = (char)('0' + (bad[11] - '0' + 1) % 10);           /* wrong check digit */
    fprintf(f, "address_no,mynumber,name,kana,birth_date,sex,postcode,address,katagaki,"
            "household_no,relationship,became_date,ceased_date,movement_type,movement_date,"
            "prev_address,next_address,alias\r\n");
    /* line 2: the individual number's check digit (R2.2) */
    fprintf(f, "X0000001,%s,試験　一郎,シケン　イチロウ,1980-01-01,1%s", bad, tail);
    /* line 3: no such date */
    fprintf(f, "X0000002,%s,試験　二郎,シケン　ジロウ,1990-02-30,1%s", good1, tail);
    /* line 4: sex out of its codes */
    fprintf(f, "X0000003,%s,試験　花子,シケン　ハナコ,1980-01-01,5%s", good2, tail);
    /* line 5: too few fields */
    fprintf(f, "X0000004,%s,試験　三郎\r\n", good3);
    /* line 6: a postcode without its hyphen */
    fprintf(f, "X0000005,%s,試験　四郎,シケン　シロウ,1980-01-01,1,1000001,東京都千代田区,,"
            "X0000001,子,1980-01-01,,,,,,\r\n", good4);
    /* line 7: good */
    fprintf(f, "X0000006,,試験　五郎,シケン　ゴロウ,1980-01-01,1%s", tail);
    fprintf(nf, "%s\n%s\n%s\n%s\n%s\n", bad, good1, good2, good3, good4);
    fclose(nf);
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- fixture --------------------------------------------------------------------------------- */

static int
make_files(void)
{
    char path[400];
    int fd;

    snprintf(synth_a, sizeof(synth_a), "%s/../synth-a", inst.dir);
    snprintf(synth_b, sizeof(synth_b), "%s/../synth-b", inst.dir);
    snprintf(badfile, sizeof(badfile), "%s/../bad.csv", inst.dir);
    snprintf(numbers, sizeof(numbers), "%s/../numbers.txt", inst.dir);
    if ((fd = creat(numbers, 0600)) < 0)
        return -1;
    close(fd);
    if (synth(TA, nres, "it-import-a", "utf-8", synth_a) != 0 ||
        synth(TB, NRES_B, "it-import-b", "cp932", synth_b) != 0 || write_badfile() != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/residents.csv", synth_a);
    add_numbers(path);
    return 0;
}

static int
group_setup(void **state)
{
    char err[256];
    static const char *const tenants[] = { TA, TB };
    struct h_staff a_sup = { .user = "imp-sup", .role = "supervisor", .tenant = TA,
                             .password = PW };
    struct h_staff a_clerk = { .user = "imp-clerk", .role = "clerk", .tenant = TA,
                               .password = PW };
    struct h_staff b_sup = { .user = "imp-sup-b", .role = "supervisor", .tenant = TB,
                             .password = PW };

    (void)state;
    if (h_init(&inst) != 0 || (pg_base != NULL && h_pg_use(&inst, pg_base, "mamori_imp", pg_db, sizeof(pg_db)) != 0) ||
        h_set_conf(&inst, "workers", "2") != 0 ||
        h_set_conf(&inst, "detect.source_failures", "100000") != 0 ||
        h_set_conf(&inst, "detect.distinct_residents", "100000") != 0 ||
        h_set_conf(&inst, "auth.pwhash_opslimit", "2") != 0 ||
        h_set_conf(&inst, "auth.pwhash_memlimit_kib", "32768") != 0 ||
        config_load(inst.conf, &cfg, err, sizeof(err)) != 0 ||
        h_tenants_create(&cfg, tenants, 2) != 0 || make_files() != 0 || h_launch(&inst) != 0)
        return -1;
    term_a = h_terminal(&inst, TA, "demo");
    term_b = h_terminal(&inst, TB, "ward-b");
    pub = h_curl(&inst, NULL, NULL);
    if (term_a == NULL || term_b == NULL ||
        h_staff_sign_in(&inst, &cfg, term_a, &a_sup, sup) != 0 ||
        h_staff_sign_in(&inst, &cfg, term_a, &a_clerk, clerk) != 0 ||
        h_staff_sign_in(&inst, &cfg, term_b, &b_sup, sup_b) != 0)
        return -1;
    return 0;
}

static int
group_teardown(void **state)
{
    int rc;

    (void)state;
    curl_easy_cleanup(term_a);
    curl_easy_cleanup(term_b);
    curl_easy_cleanup(pub);
    rc = h_stop(&inst);
    if (rc != 0)
        fprintf(stderr, "mamorid exited with %d; log kept in %s\n", rc, inst.log);
    else
        h_cleanup(&inst);
    h_pg_drop(pg_base, pg_db);
    return rc == 0 ? 0 : -1;
}

/* ---- tests ----------------------------------------------------------------------------------- */

/* R2.6: 20,000 synthetic residents uploaded by a supervisor, polled until
 * done: the progress never goes back and ends at the file's size and row
 * count; then the residents are found (R2.8). */
static void
test_R2_6_upload_progress_import(void **state)
{
    char path[400], id[33], body[128];
    struct trace t;
    double t0, t1, t2;
    json_t *j;

    (void)state;
    snprintf(path, sizeof(path), "%s/residents.csv", synth_a);
    assert_int_equal(residents_of(TA), 0);
    t0 = h_now_s();
    upload_ok("demo", sup, "kind=residents", path, id);
    t1 = h_now_s();
    snprintf(first_job, sizeof(first_job), "%s", id);
    j = poll_done(term_a, sup, id, &t);
    t2 = h_now_s();
    print_message("%d residents, %ld bytes: upload %.2f s, upload to imported %.2f s "
                  "(%.0f rows/s)\n", nres, file_size(path), t1 - t0, t2 - t0,
                  nres / (t2 - t0));
    assert_string_equal(jstr(j, "state"), "imported");
    assert_string_equal(jstr(j, "phase"), "done");
    assert_int_equal(jint(j, "percent"), 100);
    assert_int_equal(jint(j, "bytes_done"), file_size(path));
    assert_int_equal(jint(j, "bytes_total"), file_size(path));
    assert_int_equal(jint(j, "rows"), data_lines(path));
    assert_int_equal(jint(j, "rows"), nres);
    assert_int_equal(jint(j, "problems"), 0);
    assert_string_equal(jstr(j, "kind"), "residents");
    assert_string_equal(jstr(j, "encoding"), "utf-8");
    assert_string_equal(jstr(j, "submitted_by"), "imp-sup");
    assert_non_null(jstr(j, "started_at"));
    assert_non_null(jstr(j, "finished_at"));
    json_decref(j);
    print_message("%d polls, %d saw it running%s\n", t.samples, t.running,
                  t.saw_writing ? ", one in the writing phase" : "");
    assert_true(t.running > 0);                 /* progress was seen, not only the end */
    assert_int_equal(residents_of(TA), nres);
    /* findable: the first and the last address number of the file */
    snprintf(body, sizeof(body), "{\"address_no\":\"%010d\"}", 1);
    j = h_staff_json(&inst, term_a, true, "POST", "/v1/residents/search", body, sup, 200);
    assert_int_equal(jint(j, "count"), 1);
    json_decref(j);
    snprintf(body, sizeof(body), "{\"address_no\":\"%010d\"}", nres);
    j = h_staff_json(&inst, term_a, true, "POST", "/v1/residents/search", body, sup, 200);
    assert_int_equal(jint(j, "count"), 1);
    json_decref(j);
    /* R7.1: accepted, on the record before the commit, and the outcome */
    assert_true(audit_has("\"resident.import\"", id));
    assert_true(audit_has("resident.import.commit", id));
    assert_true(audit_has("resident.import.result", "\"result\":\"imported\""));
    assert_not_logged();
}

/* R2.6: the same file again is "already" and changes nothing. */
static void
test_R2_6_reupload_already(void **state)
{
    char path[400], id[33];
    json_t *j;

    (void)state;
    snprintf(path, sizeof(path), "%s/residents.csv", synth_a);
    upload_ok("demo", sup, "kind=residents&encoding=utf-8", path, id);
    j = poll_done(term_a, sup, id, NULL);
    assert_string_equal(jstr(j, "state"), "already");
    assert_non_null(jstr(j, "already_imported_at"));
    assert_int_equal(jint(j, "bytes_done"), file_size(path));
    json_decref(j);
    assert_int_equal(residents_of(TA), nres);
}

/* R2.6: a file with several different bad lines is refused; each problem
 * is listed with its line, column and reason, none with a value; nothing
 * is imported, not even the good line. */
static void
test_R2_6_refused_every_line(void **state)
{
    char id[33], path[128];
    struct h_response r;
    json_t *j, *items, *p;
    bool lines[8] = { false };
    size_t i;

    (void)state;
    upload_ok("demo", sup, "kind=residents", badfile, id);
    j = poll_done(term_a, sup, id, NULL);
    assert_string_equal(jstr(j, "state"), "refused");
    assert_int_equal(jint(j, "bad_lines"), 5);
    assert_true(jint(j, "problems") >= 5);
    assert_int_equal(jint(j, "problems_kept"), jint(j, "problems"));
    json_decref(j);
    snprintf(path, sizeof(path), "/v1/imports/%s/problems", id);
    h_staff_request(&inst, term_a, true, "GET", path, NULL, &(struct h_cred){ .token = sup },
                    &r);
    assert_int_equal(r.status, 200);
    assert_clean(r.body);
    j = json_loads(r.body, JSON_REJECT_DUPLICATES, NULL);
    free(r.body);
    items = json_object_get(j, "items");
    assert_true(json_array_size(items) >= 5);
    assert_true(json_is_null(json_object_get(j, "next_after")));
    json_array_foreach(items, i, p) {
        int64_t line = jint(p, "line");
        assert_true(line >= 2 && line <= 6);
        assert_non_null(jstr(p, "reason"));
        assert_true(strlen(jstr(p, "reason")) > 0);
        assert_int_equal(jint(p, "seq"), (int64_t)i + 1);
        lines[line] = true;
        if (line == 2)
            assert_string_equal(jstr(p, "column"), "mynumber");
        if (line == 3)
            assert_string_equal(jstr(p, "column"), "birth_date");
        if (line == 4)
            assert_string_equal(jstr(p, "column"), "sex");
        if (line == 6)
            assert_string_equal(jstr(p, "column"), "postcode");
    }
    for (int l = 2; l <= 6; l++)
        assert_true(lines[l]);
    assert_false(lines[7]);
    json_decref(j);
    /* paged: one at a time */
    snprintf(path, sizeof(path), "/v1/imports/%s/problems?after=1&limit=1", id);
    j = ok(term_a, "GET", path, sup, 200);
    assert_int_equal(json_array_size(json_object_get(j, "items")), 1);
    assert_int_equal(jint(json_array_get(json_object_get(j, "items"), 0), "seq"), 2);
    assert_int_equal(jint(j, "next_after"), 2);
    json_decref(j);
    /* nothing imported: the good line 7 neither */
    assert_int_equal(residents_of(TA), nres);
    j = h_staff_json(&inst, term_a, true, "POST", "/v1/residents/search",
                     "{\"address_no\":\"X0000006\"}", sup, 200);
    assert_int_equal(jint(j, "count"), 0);
    json_decref(j);
    assert_true(audit_has("resident.import.result", "\"result\":\"refused\""));
    assert_not_logged();
}

/* R2.6: a CP932 (Shift_JIS) file imports, for B, through B's terminal;
 * sent chunked, as application/octet-stream. */
static void
test_R2_6_cp932(void **state)
{
    char path[400], id[33];
    struct h_response r;
    json_t *j;

    (void)state;
    snprintf(path, sizeof(path), "%s/residents.csv", synth_b);
    upload_ex("ward-b", sup_b, "kind=residents&encoding=cp932", path,
              "application/octet-stream", true, false, &r);
    assert_int_equal(r.status, 202);
    j = json_loads(r.body, 0, NULL);
    free(r.body);
    snprintf(id, sizeof(id), "%s", jstr(j, "id"));
    json_decref(j);
    j = poll_done(term_b, sup_b, id, NULL);
    assert_string_equal(jstr(j, "state"), "imported");
    assert_string_equal(jstr(j, "encoding"), "cp932");
    assert_int_equal(jint(j, "rows"), NRES_B);
    json_decref(j);
    assert_int_equal(residents_of(TB), NRES_B);
}

/*
 * POST /v1/imports?<query> with headers announcing a 100 MB body, and not
 * one byte of it sent: the answer must be `want` ("HTTP/1.1 409") and
 * close the connection.  A server that waited for the body would leave
 * the read to time out (20 s) and fail here: so a refusal seen here was
 * made from the headers alone (R2.6, R6.6).  The whole answer, as far as
 * it fits, into out (status line, headers, body).
 */
static void
raw_refusal_ex(const char *token, const char *query, const char *want, char *out,
               size_t outsz)
{
    char ca[400], crt[400], key[400], req[512];
    gnutls_certificate_credentials_t cred = NULL;
    gnutls_session_t s = NULL;
    struct timeval tv = { 20, 0 };
    int fd = -1, len;
    size_t got = 0;
    ssize_t n;

    snprintf(ca, sizeof(ca), "%s/pki/ca.crt", inst.dir);
    snprintf(crt, sizeof(crt), "%s/terminals/demo.crt", inst.dir);
    snprintf(key, sizeof(key), "%s/terminals/demo.key", inst.dir);
    assert_int_equal(h_tls_connect(inst.internal_port, "NORMAL", ca, crt, key, &s, &cred, &fd),
                     0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    len = snprintf(req, sizeof(req), "POST /v1/imports%s%s HTTP/1.1\r\n"
                   "Host: localhost\r\nContent-Type: text/csv\r\n"
                   "Content-Length: 100000000\r\n%s%s%s\r\n",
                   query[0] ? "?" : "", query, token ? "Authorization: Bearer " : "",
                   token ? token : "", token ? "\r\n" : "");
    assert_int_equal(gnutls_record_send(s, req, (size_t)len), len);
    /* until the server closes (it must: Connection: close) or out is full */
    while (got < outsz - 1 && (n = gnutls_record_recv(s, out + got, outsz - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    if (got <= 12 || strncmp(out, want, strlen(want)) != 0)
        fail_msg("wanted %s before any body, got: %.60s", want, out);
    assert_non_null(strstr(out, "Connection: close"));
    h_tls_close(s, cred, fd);
}

/* The JSON body of a raw answer (caller decrefs). */
static json_t *
raw_body(const char *answer)
{
    const char *b = strstr(answer, "\r\n\r\n");
    json_t *j;

    assert_non_null(b);
    j = json_loads(b + 4, 0, NULL);
    assert_non_null(j);
    return j;
}

/* R6.6: a clerk (403) and no session (401) are refused from the headers:
 * the answer comes while not one byte of the announced body was sent. */
static void
raw_refusal(const char *token, const char *want)
{
    char out[2048];

    raw_refusal_ex(token, "kind=residents", want, out, sizeof(out));
}

static void
test_R6_6_refused_before_body(void **state)
{
    char path[400];
    struct h_response r;

    (void)state;
    raw_refusal(clerk, "HTTP/1.1 403");
    raw_refusal(NULL, "HTTP/1.1 401");
    /* and through curl, with a whole (small) body offered */
    upload("demo", clerk, "kind=residents", badfile, &r);
    assert_int_equal(r.status, 403);
    free(r.body);
    /* a large one is cut off unread: a refusal or a closed connection,
     * never an accepted upload */
    snprintf(path, sizeof(path), "%s/residents.csv", synth_a);
    upload("demo", clerk, "kind=residents", path, &r);
    assert_true(r.status == 403 || (r.status == 0 && r.rc != CURLE_OK));
    free(r.body);
    assert_int_equal(h_staff_status(&inst, term_a, true, "GET", "/v1/imports", NULL, clerk), 403);
    /* the route's edge: kind checked, other types and parameters refused */
    upload("demo", sup, "kind=staff", badfile, &r);
    assert_int_equal(r.status, 400);
    free(r.body);
    upload("demo", sup, "kind=residents&tenant=131024", badfile, &r);
    assert_int_equal(r.status, 400);
    free(r.body);
    upload_ex("demo", sup, "kind=residents", badfile, "application/json", false, false, &r);
    assert_int_equal(r.status, 415);
    free(r.body);
    upload("demo", sup, "", badfile, &r);                   /* no kind */
    assert_int_equal(r.status, 400);
    free(r.body);
    /* R2.6: a supervisor's upload with no kind, or a bad one, is refused
     * from the headers too: 400 naming kind, 100 MB announced, none sent */
    {
        static const char *const queries[] = { "", "encoding=utf-8", "kind=staff" };
        char out[2048];
        for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
            json_t *j;
            raw_refusal_ex(sup, queries[i], "HTTP/1.1 400", out, sizeof(out));
            j = raw_body(out);
            assert_string_equal(err_code(j), "invalid_parameter");
            assert_string_equal(jstr(json_object_get(j, "error"), "field"), "kind");
            json_decref(j);
        }
    }
}

/* R1.5: not served on the public listener at all. */
static void
test_R1_5_not_public(void **state)
{
    struct h_response r;

    (void)state;
    upload_ex("demo", sup, "kind=residents", badfile, "text/csv", false, true, &r);
    assert_int_equal(r.status, 404);
    free(r.body);
    assert_int_equal(h_staff_status(&inst, pub, false, "GET", "/v1/imports", NULL, sup), 404);
}

/* R1.1: B's supervisor gets 404 for A's job, exactly as for an id that
 * does not exist, and never sees it listed. */
static void
test_R1_1_other_tenant(void **state)
{
    char path[96];
    json_t *j, *k, *list, *e;
    size_t i;

    (void)state;
    assert_int_equal(strlen(first_job), 32);
    snprintf(path, sizeof(path), "/v1/imports/%s", first_job);
    j = ok(term_b, "GET", path, sup_b, 404);
    k = ok(term_b, "GET", "/v1/imports/0123456789abcdef0123456789abcdef", sup_b, 404);
    assert_string_equal(err_code(j), err_code(k));
    assert_string_equal(jstr(json_object_get(j, "error"), "message"),
                        jstr(json_object_get(k, "error"), "message"));
    json_decref(j);
    json_decref(k);
    snprintf(path, sizeof(path), "/v1/imports/%s/problems", first_job);
    json_decref(ok(term_b, "GET", path, sup_b, 404));
    list = ok(term_b, "GET", "/v1/imports", sup_b, 200);
    json_array_foreach(json_object_get(list, "imports"), i, e) {
        assert_string_not_equal(jstr(e, "id"), first_job);
    }
    json_decref(list);
    list = ok(term_a, "GET", "/v1/imports", sup, 200);
    assert_true(json_array_size(json_object_get(list, "imports")) >= 3);
    assert_string_equal(jstr(json_array_get(json_object_get(list, "imports"), 0), "kind"),
                        "residents");
    json_decref(list);
}

/* R2.6: the vouchers go in; then one import at a time per tenant: while
 * a long dry run of A's vaccinations is checked, A's next upload is 409,
 * answered from the headers (100 MB announced, none sent) and naming the
 * job in the way; B, another tenant, is not held up by it. */
static void
test_R2_6_one_at_a_time(void **state)
{
    char vax[400], vou[400], bres[400], id[33], id2[33], idb[33];
    struct h_response r;
    json_t *j;

    (void)state;
    snprintf(vax, sizeof(vax), "%s/vaccinations.csv", synth_a);
    snprintf(bres, sizeof(bres), "%s/residents.csv", synth_b);
    snprintf(vou, sizeof(vou), "%s/vouchers.csv", synth_a);
    upload_ok("demo", sup, "kind=vouchers", vou, id2);
    j = poll_done(term_a, sup, id2, NULL);
    assert_string_equal(jstr(j, "state"), "imported");
    assert_int_equal(jint(j, "rows"), data_lines(vou));
    json_decref(j);
    upload_ok("demo", sup, "kind=vaccinations&dry_run=true", vax, id);
    {
        char out[2048], poll[64];
        raw_refusal_ex(sup, "kind=vouchers", "HTTP/1.1 409", out, sizeof(out));
        j = raw_body(out);
        assert_string_equal(err_code(j), "import_running");
        assert_string_equal(jstr(json_object_get(j, "error"), "import_id"), id);
        snprintf(poll, sizeof(poll), "/v1/imports/%s", id);
        assert_string_equal(jstr(json_object_get(j, "error"), "poll"), poll);
        json_decref(j);
    }
    upload_ok("ward-b", sup_b, "kind=residents&encoding=cp932&dry_run=true", bres, idb);
    upload("demo", sup, "kind=vouchers", badfile, &r);
    if (r.status != 409)
        fail_msg("a second upload while one runs: %ld %s", r.status, r.body ? r.body : "");
    j = json_loads(r.body, 0, NULL);
    assert_string_equal(err_code(j), "import_running");
    json_decref(j);
    free(r.body);
    j = poll_done(term_a, sup, id, NULL);
    assert_string_equal(jstr(j, "state"), "checked");
    assert_true(jint(j, "rows") > nres);
    assert_true(json_is_true(json_object_get(j, "dry_run")));
    json_decref(j);
    j = poll_done(term_b, sup_b, idb, NULL);           /* B's file is in already */
    if (strcmp(jstr(j, "state"), "already") != 0 && strcmp(jstr(j, "state"), "checked") != 0)
        fail_msg("B's dry run beside A's: %s", jstr(j, "state"));
    json_decref(j);
    assert_true(audit_has("resident.import", "\"reason\":\"import_running\""));
}

/* R2.6, R6.5: on SQLite an import's pass 2 holds the one write lock for
 * as long as it writes.  Held here by the test itself: a signed-in
 * supervisor still polls (the session's idle touch is skipped, not the
 * request refused), and an upload is refused with a plain 503 rather
 * than hanging.  PostgreSQL has no such lock. */
static void
test_R2_6_poll_while_locked(void **state)
{
    char path[64];
    struct h_response r;
    sqlite3 *db;
    json_t *j;

    (void)state;
    if (cfg.store_backend != STORE_BACKEND_SQLITE)
        skip();
    assert_int_equal(sqlite3_open(cfg.store_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    snprintf(path, sizeof(path), "/v1/imports/%s", first_job);
    j = ok(term_a, "GET", path, sup, 200);
    assert_string_equal(jstr(j, "state"), "imported");
    json_decref(j);
    upload("demo", sup, "kind=vouchers", badfile, &r);
    assert_int_equal(r.status, 503);
    j = json_loads(r.body, 0, NULL);
    assert_string_equal(err_code(j), "store_busy");
    json_decref(j);
    free(r.body);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_true(audit_has("resident.import", "\"reason\":\"store_busy\""));
}

/* The job row names its runner, "worker-<n>.<pid>". */
static pid_t
runner_pid(const char *id)
{
    char sql[160], runner[64] = "";
    const char *dot;

    snprintf(sql, sizeof(sql), "SELECT coalesce(runner, '') FROM import_jobs WHERE job_id = '%s'",
             id);
    if (cfg.store_backend == STORE_BACKEND_SQLITE) {
        sqlite3 *db;
        sqlite3_stmt *s;
        assert_int_equal(sqlite3_open(cfg.store_path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
        if (sqlite3_step(s) == SQLITE_ROW)
            snprintf(runner, sizeof(runner), "%s", (const char *)sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
        sqlite3_close(db);
    } else {
        PGconn *c = PQconnectdb(cfg.store_conninfo);
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            snprintf(runner, sizeof(runner), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        PQfinish(c);
    }
    dot = strrchr(runner, '.');
    return dot != NULL ? (pid_t)strtol(dot + 1, NULL, 10) : 0;
}

/* R2.6: a worker killed during an import takes the spool's key with it:
 * the job is reported, and stored, as interrupted, with the advice to
 * send the file again; the tenant can then import again.  The spool
 * directory is left empty. */
static void
test_R2_6_interrupted(void **state)
{
    char vax[400], id[33], path[64], spool[400];
    pid_t pid = 0;
    json_t *j;
    DIR *d;
    const struct dirent *e;
    struct stat sb;

    (void)state;
    snprintf(vax, sizeof(vax), "%s/vaccinations.csv", synth_a);
    upload_ok("demo", sup, "kind=vaccinations&dry_run=true", vax, id);
    snprintf(path, sizeof(path), "/v1/imports/%s", id);
    for (int i = 0; i < 2000 && pid <= 0; i++) {
        j = ok(term_a, "GET", path, sup, 200);
        if (strcmp(jstr(j, "state"), "checking") == 0)
            pid = runner_pid(id);
        else if (final(jstr(j, "state")))
            fail_msg("the dry run ended before the worker could be stopped");
        json_decref(j);
        sleep_ms(10);
    }
    assert_true(pid > 0);
    assert_not_logged();                    /* the log is started afresh below */
    assert_int_equal(kill(pid, SIGKILL), 0);
    /* the parent stops the whole set when a worker dies (proc.h) */
    assert_int_not_equal(h_stop(&inst), 0);
    assert_int_equal(h_launch(&inst), 0);
    j = ok(term_a, "GET", path, sup, 200);
    assert_string_equal(jstr(j, "state"), "interrupted");
    assert_non_null(strstr(jstr(j, "message"), "send the file again"));
    json_decref(j);
    j = ok(term_a, "GET", path, sup, 200);          /* stored, not only answered */
    assert_string_equal(jstr(j, "state"), "interrupted");
    json_decref(j);
    upload_ok("demo", sup, "kind=vaccinations&dry_run=true", badfile, id);
    j = poll_done(term_a, sup, id, NULL);
    assert_string_equal(jstr(j, "state"), "refused");       /* a residents file */
    json_decref(j);
    /* the spool: the service user's alone, and nothing left in it */
    snprintf(spool, sizeof(spool), "%s/spool", inst.dir);
    assert_int_equal(lstat(spool, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0700);
    d = opendir(spool);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            fail_msg("left in the spool: %s", e->d_name);
    closedir(d);
    assert_not_logged();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R2_6_upload_progress_import),
        cmocka_unit_test(test_R2_6_reupload_already),
        cmocka_unit_test(test_R2_6_refused_every_line),
        cmocka_unit_test(test_R2_6_cp932),
        cmocka_unit_test(test_R6_6_refused_before_body),
        cmocka_unit_test(test_R1_5_not_public),
        cmocka_unit_test(test_R1_1_other_tenant),
        cmocka_unit_test(test_R2_6_one_at_a_time),
        cmocka_unit_test(test_R2_6_poll_while_locked),
        cmocka_unit_test(test_R2_6_interrupted),
    };
    const char *pg = getenv("MAMORI_TEST_PG");
    int failed;

    if (sodium_init() < 0)
        return 1;
    if (getenv("MAMORI_IT_IMPORT_RESIDENTS") != NULL)
        nres = (int)strtol(getenv("MAMORI_IT_IMPORT_RESIDENTS"), NULL, 10);
    if (nres < 1000 || nres > 2000000)
        nres = NRES_DEFAULT;
    if (nres != NRES_DEFAULT)
        poll_ms = 1000;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests_name("integration/import/sqlite", tests, group_setup,
                                         group_teardown);
    if (pg != NULL && pg[0] != '\0') {
        pg_base = pg;
        failed += cmocka_run_group_tests_name("integration/import/postgresql", tests,
                                              group_setup, group_teardown);
    } else {
        fprintf(stderr, "*** MAMORI_TEST_PG unset: PostgreSQL run SKIPPED ***\n");
    }
    curl_global_cleanup();
    return failed;
}
