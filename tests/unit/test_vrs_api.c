/*
 * test_vrs_api.c - the records API fails closed when the audit writer
 * refuses (R7.1): no answer with personal data, and no write committed.
 * Handlers run in process against a real SQLite store and keyring, with
 * a fake audit writer on the IPC channel that acknowledges or refuses.
 * Every event the handlers send is also checked against the audit
 * schema (audit_event_validate), as the real writer does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/event.h"
#include "common/log.h"
#include "crypto/keyring.h"
#include "ipc/ipc.h"
#include "store/store_records.h"
#include "vrs/api.h"
#include "vrs/csvin.h"
#include "vrs/csvout.h"
#include "vrs/export.h"
#include "vrs/import.h"
#include "vrs/site.h"
#include "worker/worker.h"

#define T1 "131016"
#define T2 "011002"     /* 札幌市 */
#define CATALOGUE MAMORI_TEST_SOURCE_DIR "/data/vaccines/catalogue.csv"

struct fx {
    char                 dir[64], mk[96], db[96];
    struct keyring      *kr;
    struct mamori_config cfg;
    struct worker_env    env;
    struct store_tenant *ctx;
};

/* ---- a fake audit writer ---------------------------------------------------- */

struct fake_writer {
    int      fd;
    bool     refuse;
    unsigned events;
    bool     all_valid;         /* every event passed the schema */
    char     last[4096];        /* the last event's text */
};

/* Answers every IPC_AUDIT_APPEND until the channel closes. */
static void *
fake_writer_run(void *arg)
{
    struct fake_writer *w = arg;
    static uint8_t buf[IPC_MAX_PAYLOAD + 1];
    const uint8_t seq[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };
    struct ipc_hdr h;

    while (ipc_recv(w->fd, &h, buf, IPC_MAX_PAYLOAD) == 1 && h.type == IPC_AUDIT_APPEND) {
        char err[64];
        json_t *ev = json_loadb((const char *)buf, h.len, JSON_REJECT_DUPLICATES, NULL);
        w->events++;
        w->all_valid &= ev != NULL && audit_event_validate(ev, err, sizeof(err)) == 0;
        json_decref(ev);
        snprintf(w->last, sizeof(w->last), "%.*s", (int)h.len, (const char *)buf);
        if (w->refuse ? ipc_send(w->fd, IPC_ERROR, h.id, 0, "refused", 7)
                      : ipc_send(w->fd, IPC_AUDIT_ACK, h.id, 0, seq, sizeof(seq)))
            break;
    }
    return NULL;
}

/* Run a handler on `req` (its body, if any, parsed) against a writer
 * that acknowledges or refuses.  Returns the status; *out (may be NULL)
 * gets the response body. */
static unsigned
run(struct fx *f, void (*h)(const struct http_request *, struct http_response *),
    struct http_request *req, struct fake_writer *w, json_t **out)
{
    struct http_response resp = { .status = 0 };
    pthread_t t;
    int fds[2];

    assert_int_equal(ipc_socketpair(fds), 0);
    ipc_chan_init(&f->env.audit, fds[0]);
    w->fd = fds[1];
    w->all_valid = true;
    assert_int_equal(pthread_create(&t, NULL, fake_writer_run, w), 0);
    h(req, &resp);
    ipc_chan_destroy(&f->env.audit);
    close(fds[0]);              /* the writer sees the hang-up and stops */
    pthread_join(t, NULL);
    close(fds[1]);
    if (out != NULL)
        *out = resp.body;
    else
        json_decref(resp.body);
    free(resp.raw);
    return resp.status;
}

static void
request_as(struct fx *f, enum role role, struct http_request *req)
{
    memset(req, 0, sizeof(*req));
    req->listener = LISTENER_INTERNAL;
    req->has_terminal = true;
    req->authed = true;
    req->role = role;
    req->env = &f->env;
    snprintf(req->user_id, sizeof(req->user_id), "tester");
    snprintf(req->tenant, sizeof(req->tenant), T1);
}

/* Run one handler as `role` with `body` (JSON text or NULL) and path
 * parameter id (0: none).  As run(). */
static unsigned
call(struct fx *f, void (*h)(const struct http_request *, struct http_response *),
     enum role role, const char *body, int64_t id, struct fake_writer *w, json_t **out)
{
    struct http_request req;
    unsigned status;

    request_as(f, role, &req);
    if (id > 0) {
        req.nparams = 1;
        snprintf(req.param_names[0], sizeof(req.param_names[0]), "id");
        snprintf(req.params[0], sizeof(req.params[0]), "%lld", (long long)id);
    }
    req.body = body != NULL ? json_loads(body, 0, NULL) : NULL;
    assert_true(body == NULL || req.body != NULL);
    status = run(f, h, &req, w, out);
    json_decref(req.body);
    return status;
}

/* As the server runs a request once the session is checked: the route
 * table's route for method + path, its field rules (router_validate: a
 * refusal is the 400 the client gets), then its handler.  As run(). */
static unsigned
call_route(struct fx *f, const char *method, const char *path, enum role role,
           const char *body, struct fake_writer *w, json_t **out)
{
    struct http_request req;
    struct http_response resp = { .status = 0 };
    char allow[64];
    unsigned status;

    request_as(f, role, &req);
    assert_int_equal(router_match(mamori_routes, mamori_nroutes, method, path,
                                  LISTENER_INTERNAL, &req, allow, sizeof(allow)), ROUTE_FOUND);
    if (router_validate(req.route, body, body != NULL ? strlen(body) : 0, &req, &resp) != 0) {
        json_decref(req.body);
        if (out != NULL)
            *out = resp.body;
        else
            json_decref(resp.body);
        return resp.status;
    }
    status = run(f, req.route->handler, &req, w, out);
    json_decref(req.body);
    return status;
}

static const char *
err_code(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

/* ---- fixture -------------------------------------------------------------------- */

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct store_config sc = { .backend = STORE_BACKEND_SQLITE };
    int v1, v2;

    assert_non_null(f);
    *state = f;
    snprintf(f->dir, sizeof(f->dir), "/tmp/mamori-vrsapi-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->mk, sizeof(f->mk), "%s/master.key", f->dir);
    snprintf(f->db, sizeof(f->db), "%s/store.db", f->dir);
    assert_int_equal(keyring_master_key_create(f->mk), 0);
    assert_int_equal(keyring_open(f->mk, f->dir, NULL, &f->kr), 0);
    assert_int_equal(keyring_tenant_create(f->kr, T1), 0);
    keyring_provider(f->kr, &f->env.keys);
    sc.path = f->db;
    assert_int_equal(store_open(&sc, STORE_OPEN_MIGRATE, &f->env.store), STORE_OK);
    assert_int_equal(store_migrate(f->env.store, &v1, &v2), STORE_OK);
    assert_int_equal(store_tenant_create(f->env.store, T1), STORE_OK);
    config_defaults(&f->cfg);       /* refdata: the source tree's data/ */
    f->env.cfg = &f->cfg;
    assert_int_equal(vrs_env_init(&f->cfg, &f->env.vrs), 0);
    assert_int_equal(store_tenant_ctx_open(f->env.store, T1, &f->env.keys, &f->ctx), STORE_OK);
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    store_tenant_ctx_close(f->ctx);
    store_close(f->env.store);
    vrs_env_free(f->env.vrs);
    keyring_close(f->kr);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static int64_t
add_resident(struct fx *f, const char *address_no, const char *ceased)
{
    struct resident r;
    int64_t id = 0;

    memset(&r, 0, sizeof(r));
    snprintf(r.address_no, sizeof(r.address_no), "%s", address_no);
    snprintf(r.name, sizeof(r.name), "試験　太郎");
    snprintf(r.birth_date, sizeof(r.birth_date), "1950-01-01");
    snprintf(r.sex, sizeof(r.sex), "1");
    if (ceased != NULL) {
        snprintf(r.movement_type, sizeof(r.movement_type), "死亡");
        snprintf(r.movement_date, sizeof(r.movement_date), "%s", ceased);
        snprintf(r.ceased_date, sizeof(r.ceased_date), "%s", ceased);
    }
    assert_int_equal(store_resident_insert(f->ctx, NULL, &r, &id), STORE_OK);
    return id;
}

/* ---- tests ------------------------------------------------------------------------ */

/* R7.1: a resident is not created unless its event is durable. */
static void
test_R7_1_create_fails_closed(void **state)
{
    struct fx *f = *state;
    struct fake_writer w = { .refuse = true };
    const char *body = "{\"address_no\":\"X0001\",\"name\":\"試験　一郎\","
                       "\"birth_date\":\"1980-01-01\",\"sex\":\"1\"}";
    int64_t id;
    json_t *j;

    assert_int_equal(call(f, vrs_h_resident_create, ROLE_CLERK, body, 0, &w, &j), 503);
    assert_string_equal(err_code(j), "audit_unavailable");
    json_decref(j);
    assert_int_equal(w.events, 1);
    assert_int_equal(store_resident_id(f->ctx, "X0001", &id), STORE_NOTFOUND);
    /* positive control: acknowledged, created, and the event names the row */
    w = (struct fake_writer){ .refuse = false };
    assert_int_equal(call(f, vrs_h_resident_create, ROLE_CLERK, body, 0, &w, NULL), 201);
    assert_int_equal(store_resident_id(f->ctx, "X0001", &id), STORE_OK);
    assert_true(w.all_valid);
    {
        char obj[40];
        snprintf(obj, sizeof(obj), "\"resident:%lld\"", (long long)id);
        assert_non_null(strstr(w.last, obj));
    }
}

/* R7.1: a read refused by the writer answers no personal data. */
static void
test_R7_1_read_fails_closed(void **state)
{
    struct fx *f = *state;
    struct fake_writer w = { .refuse = true };
    int64_t id = add_resident(f, "X0002", NULL);
    json_t *j;

    assert_int_equal(call(f, vrs_h_resident_get, ROLE_CLERK, NULL, id, &w, &j), 503);
    {
        char *text = json_dumps(j, 0);
        assert_null(strstr(text, "試験"));
        free(text);
    }
    json_decref(j);
    w = (struct fake_writer){ .refuse = false };
    assert_int_equal(call(f, vrs_h_resident_get, ROLE_CLERK, NULL, id, &w, &j), 200);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "試験　太郎");
    json_decref(j);
    assert_true(w.all_valid);
}

/* R7.1, R2.3: a dose is not recorded unless its event is durable. */
static void
test_R7_1_vaccination_fails_closed(void **state)
{
    struct fx *f = *state;
    struct fake_writer w = { .refuse = true };
    int64_t id = add_resident(f, "X0003", NULL);
    struct vaccination v[4];
    char body[256];
    size_t n = 0;

    snprintf(body, sizeof(body), "{\"resident_id\":%lld,\"vaccine\":\"covid-comirnaty\","
             "\"dose\":1,\"date\":\"2021-06-01\",\"lot\":\"EY0001\"}", (long long)id);
    assert_int_equal(call(f, vrs_h_vaccination_create, ROLE_CLERK, body, 0, &w, NULL), 503);
    assert_int_equal(store_vaccinations_of(f->ctx, id, v, 4, &n), STORE_OK);
    assert_int_equal(n, 0);
    w = (struct fake_writer){ .refuse = false };
    assert_int_equal(call(f, vrs_h_vaccination_create, ROLE_CLERK, body, 0, &w, NULL), 201);
    assert_int_equal(store_vaccinations_of(f->ctx, id, v, 4, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_true(w.all_valid);
    /* a rule refusal is on the record too; refused by the writer: 503 */
    w = (struct fake_writer){ .refuse = true };
    assert_int_equal(call(f, vrs_h_vaccination_create, ROLE_CLERK, body, 0, &w, NULL), 503);
    w = (struct fake_writer){ .refuse = false };
    assert_int_equal(call(f, vrs_h_vaccination_create, ROLE_CLERK, body, 0, &w, NULL), 422);
    assert_non_null(strstr(w.last, "\"reason\":\"dose_duplicate\""));
    assert_true(w.all_valid);
}

/* R2.10, R7.1: nothing is deleted unless the batch's event is durable;
 * the event lists the address numbers in the schema's alphabet. */
static void
test_R2_10_retention_fails_closed(void **state)
{
    struct fx *f = *state;
    struct fake_writer w = { .refuse = true };
    int64_t id, old = add_resident(f, "Ab-0123456789012345", "2010-05-01");
    json_t *j;

    (void)add_resident(f, "X0004", NULL);
    assert_int_equal(call(f, vrs_h_retention_run, ROLE_SUPERVISOR, NULL, 0, &w, NULL), 503);
    assert_int_equal(store_resident_id(f->ctx, "Ab-0123456789012345", &id), STORE_OK);
    assert_int_equal(id, old);
    w = (struct fake_writer){ .refuse = false };
    assert_int_equal(call(f, vrs_h_retention_run, ROLE_SUPERVISOR, NULL, 0, &w, &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "deleted")), 1);
    json_decref(j);
    assert_int_equal(store_resident_id(f->ctx, "Ab-0123456789012345", &id), STORE_NOTFOUND);
    assert_int_equal(store_resident_id(f->ctx, "X0004", &id), STORE_OK);
    /* capitals as ".x", a ":" after 11 digits in a row: no 12-digit run */
    assert_non_null(strstr(w.last, "\"addr:.ab-01234567890:12345\""));
    assert_true(w.all_valid);
}

/* R7.7: a site device's token is on the record before it exists; when
 * the store then refuses the device, a failure event follows, so the log
 * does not show a credential that was never made. */
static void
test_R7_7_site_device_create_failure_recorded(void **state)
{
    struct fx *f = *state;
    struct fake_writer w = { .refuse = false };
    const char *body = "{\"name\":\"Hall A\"}";

    /* positive control: one success event, the device made */
    assert_int_equal(call(f, vrs_site_h_device_create, ROLE_TENANT_ADMIN, body, 0, &w,
                          NULL), 201);
    assert_int_equal(w.events, 1);
    assert_non_null(strstr(w.last, "\"outcome\":\"success\""));
    /* an erased tenant: the store refuses after the success event */
    assert_int_equal(store_tenant_erase(f->env.store, T1), STORE_OK);
    w = (struct fake_writer){ .refuse = false };
    assert_int_equal(call(f, vrs_site_h_device_create, ROLE_TENANT_ADMIN, body, 0, &w,
                          NULL), 503);
    assert_int_equal(w.events, 2);
    assert_non_null(strstr(w.last, "\"action\":\"site_device.create\""));
    assert_non_null(strstr(w.last, "\"outcome\":\"failure\""));
    assert_non_null(strstr(w.last, "\"reason\":\"commit_failed\""));
    assert_true(w.all_valid);
}

/* ---- the replica round trip (R2.1, R2.6, R2.7) ------------------------------------ */

struct buf {
    char  *p;
    size_t len;
};

static int
buf_write(void *arg, const void *data, size_t n)
{
    struct buf *b = arg;
    char *p = realloc(b->p, b->len + n + 1);

    assert_non_null(p);
    memcpy(p + b->len, data, n);
    b->p = p;
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static void
replica_of(struct store_tenant *ctx, enum export_kind kind, struct buf *b)
{
    struct export_opts o = { .kind = kind, .encoding = CSVOUT_UTF8 };
    struct export_stats st;
    char err[256];

    memset(b, 0, sizeof(*b));
    if (export_run(ctx, &o, buf_write, b, &st, err, sizeof(err)) != 0)
        fail_msg("export: %s", err);
}

static void
replica_residents(struct store_tenant *ctx, struct buf *b)
{
    replica_of(ctx, EXPORT_RESIDENTS, b);
}

/* One replica record written again in the import's layout: the same
 * cells, with the individual-number column the replica leaves out (R2.2)
 * put back after the address number, empty ("mynumber" in the header). */
static int
with_mynumber_column(void *arg, uint64_t line, const char *const *fields, const size_t *lens,
                     size_t n)
{
    struct csvout *w = arg;

    (void)lens;
    assert_int_equal(n, 17);
    assert_int_equal(csvout_cell(w, fields[0]), 0);
    assert_int_equal(csvout_cell(w, line == 1 ? "mynumber" : ""), 0);
    for (size_t i = 1; i < n; i++)
        assert_int_equal(csvout_cell(w, fields[i]), 0);
    assert_int_equal(csvout_end(w), 0);
    return 0;
}

static void
as_import_file(const struct buf *replica, struct buf *file)
{
    struct csvout_opts oo = { .encoding = CSVOUT_UTF8, .crlf = false };
    struct csvin_opts io = { .encoding = CSVIN_UTF8 };
    struct csvout *w = NULL;
    struct csvin *r = NULL;

    memset(file, 0, sizeof(*file));
    assert_int_equal(csvout_new(&oo, buf_write, file, &w), 0);
    {
        struct csvin_callbacks cb = { with_mynumber_column, NULL, w };
        assert_int_equal(csvin_new(&io, &cb, &r), CSVIN_OK);
    }
    assert_int_equal(csvin_feed(r, replica->p, replica->len), CSVIN_OK);
    assert_int_equal(csvin_finish(r), CSVIN_OK);
    assert_int_equal(csvout_flush(w), 0);
    csvin_free(r);
    csvout_free(w);
}

static int
count_problem(void *arg, const struct import_problem *p)
{
    (void)p;
    (*(unsigned *)arg)++;
    return 0;
}

/*
 * R2.7, R2.1, R2.6: what the API stores survives the replica and a
 * re-import.  Residents are created and corrected through the route
 * table and the handlers with names and kana typed as staff type them
 * (ASCII and U+2003 spaces, hiragana, half-width kana); the replica holds
 * them in the import's layout; that file, with the individual-number
 * column it leaves out put back empty, passes the import's check with no
 * problem, and imported into another tenant gives the same replica byte
 * for byte.
 */
static void
test_R2_7_api_residents_round_trip_through_the_replica(void **state)
{
    static const char *const bodies[] = {
        "{\"address_no\":\"RT001\",\"name\":\"山田 太郎\",\"kana\":\"やまだ たろう\","
        "\"birth_date\":\"1950-04-10\",\"sex\":\"1\"}",
        "{\"address_no\":\"RT002\",\"name\":\"\u2003佐藤\u2003\u2003花子 \","
        "\"kana\":\"ｻﾄｳ ﾊﾅｺ\",\"birth_date\":\"1985-12-31\",\"sex\":\"2\","
        "\"postcode\":\"100-0001\",\"address\":\"東京都千代田区千代田1-1\","
        "\"household_no\":\"H-01\",\"relationship\":\"世帯主\","
        "\"became_date\":\"2010-05-01\",\"movement_type\":\"転入\","
        "\"movement_date\":\"2010-05-01\"}",
        "{\"address_no\":\"RT003\",\"name\":\"髙橋　一郎\",\"kana\":\"タカハシ　イチロウ\","
        "\"birth_date\":\"1940-01-05\",\"sex\":\"1\",\"address\":\"東京都千代田区3-3, 2F\"}",
    };
    static const char want[] =
        "address_no,name,kana,birth_date,sex,postcode,address,katagaki,household_no,"
        "relationship,became_date,ceased_date,movement_type,movement_date,prev_address,"
        "next_address,alias\n"
        "RT001,山田　太郎,ヤマダ　タロウ,1950-04-10,1,,,,,,,,,,,,\n"
        "RT002,佐藤　花子,サトウ　ハナコ,1985-12-31,2,100-0001,東京都千代田区千代田1-1,,H-01,"
        "世帯主,2010-05-01,,転入,2010-05-01,,,\n"
        "RT003,髙橋　次郎,タカハシ　ジロウ,1940-01-05,1,,\"東京都千代田区3-3, 2F\",,,,,,,,,,\n";
    struct fx *f = *state;
    struct fake_writer w;
    struct store_tenant *ctx2 = NULL;
    struct buf rep, file, rep2;
    struct import_opts o;
    struct import_result res;
    char today[STORE_DATE_LEN], path[128], rt3[64];
    unsigned problems = 0;
    json_t *j;
    int fd;

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        w = (struct fake_writer){ .refuse = false };
        assert_int_equal(call_route(f, "POST", "/v1/residents", ROLE_CLERK, bodies[i], &w,
                                    &j), 201);
        if (i == 2)
            snprintf(rt3, sizeof(rt3), "/v1/residents/%lld/correct",
                     (long long)json_integer_value(json_object_get(j, "id")));
        json_decref(j);
    }
    /* a correction by authority types the name again (R2.9) */
    w = (struct fake_writer){ .refuse = false };
    assert_int_equal(call_route(f, "POST", rt3, ROLE_SUPERVISOR,
                                "{\"reason\":\"届出による修正\",\"name\":\"髙橋 次郎\","
                                "\"kana\":\"たかはし じろう\"}", &w, NULL), 200);
    assert_true(w.all_valid);
    /* a name of nine parts has no stored form: refused, named */
    assert_int_equal(call_route(f, "POST", "/v1/residents", ROLE_CLERK,
                                "{\"address_no\":\"RT004\",\"name\":\"a b c d e f g h i\","
                                "\"birth_date\":\"1950-04-10\",\"sex\":\"1\"}", &w, &j), 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"),
                                                          "field")), "name");
    json_decref(j);

    /* The replica: the stored forms, in the import's layout (R2.7). */
    replica_residents(f->ctx, &rep);
    assert_string_equal(rep.p, want);

    /* ... passes the import's check unchanged (R2.6) ... */
    as_import_file(&rep, &file);
    assert_non_null(strstr(file.p, import_header(IMPORT_RESIDENTS)));
    vrs_today(today);
    memset(&o, 0, sizeof(o));
    o.kind = IMPORT_RESIDENTS;
    o.encoding = CSVIN_UTF8;
    o.today = today;
    o.actor = "tester";
    o.sink = count_problem;
    o.sink_arg = &problems;
    assert_int_equal(import_check_mem(file.p, file.len, &o, NULL, &res), 0);
    assert_int_equal(problems, 0);
    assert_int_equal(res.outcome, IMPORT_CHECKED);
    assert_int_equal(res.rows, 3);

    /* ... and imports into another tenant as the same replica. */
    assert_int_equal(keyring_tenant_create(f->kr, T2), 0);
    assert_int_equal(store_tenant_create(f->env.store, T2), STORE_OK);
    assert_int_equal(store_tenant_ctx_open(f->env.store, T2, &f->env.keys, &ctx2), STORE_OK);
    snprintf(path, sizeof(path), "%s/replica-residents.csv", f->dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, file.p, file.len), (ssize_t)file.len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(import_run(ctx2, fd, &o, &res), 0);
    close(fd);
    assert_int_equal(res.outcome, IMPORT_IMPORTED);
    assert_int_equal(problems, 0);
    replica_residents(ctx2, &rep2);
    assert_int_equal(rep2.len, rep.len);
    assert_memory_equal(rep2.p, rep.p, rep.len);
    store_tenant_ctx_close(ctx2);
    free(rep.p);
    free(rep2.p);
    free(file.p);
}

/* Counts the problems and says which: synthetic values only (R9.4). */
static int
show_problem(void *arg, const struct import_problem *p)
{
    fprintf(stderr, "import: line %llu, %s: %s\n", (unsigned long long)p->line,
            p->column != NULL ? p->column : "-", p->reason);
    (*(unsigned *)arg)++;
    return 0;
}

/* Check `file` as `kind`, then import it into ctx; no problem on either. */
static void
import_clean(struct fx *f, struct store_tenant *ctx, enum import_kind kind,
             const struct vrs_catalogue *cat, const struct buf *file, const char *name)
{
    struct import_opts o;
    struct import_result res;
    char today[STORE_DATE_LEN], path[128];
    unsigned problems = 0;
    int fd;

    vrs_today(today);
    memset(&o, 0, sizeof(o));
    o.kind = kind;
    o.encoding = CSVIN_UTF8;
    o.today = today;
    o.actor = "tester";
    o.catalogue = cat;
    o.sink = show_problem;
    o.sink_arg = &problems;
    assert_non_null(strstr(file->p, import_header(kind)));
    assert_int_equal(import_check_mem(file->p, file->len, &o, NULL, &res), 0);
    assert_int_equal(problems, 0);
    assert_int_equal(res.outcome, IMPORT_CHECKED);
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, file->p, file->len), (ssize_t)file->len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(import_run(ctx, fd, &o, &res), 0);
    close(fd);
    assert_int_equal(problems, 0);
    assert_int_equal(res.outcome, IMPORT_IMPORTED);
}

/* POST `body` to `path` as a clerk; the status, the answer into *out. */
static unsigned
post_clerk(struct fx *f, const char *path, const char *body, json_t **out)
{
    struct fake_writer w = { .refuse = false };

    return call_route(f, "POST", path, ROLE_CLERK, body, &w, out);
}

/*
 * R2.7, R2.3, R2.4, R2.6: vouchers and vaccinations the API stores
 * survive the replica and a re-import.  Through the route table and the
 * handlers: a voucher with the defaults (type 1, today) and one with a
 * date; a vaccination without a site, one with site, clinic, doctor and a
 * lot with a hyphen.  The values the two sides used to disagree on are
 * refused by the API first: ticket type 2, an issue date after today, a
 * lot starting with '-'; a dose of 100 reaches the rules (422
 * dose_out_of_range, the sentence the import reports).  The three
 * replicas pass the import's check with no problem and import into
 * another tenant as the same vouchers and vaccinations, byte for byte.
 */
static void
test_R2_7_api_vouchers_and_vaccinations_round_trip_through_the_replica(void **state)
{
    struct fx *f = *state;
    struct vrs_catalogue *cat = NULL;
    struct store_tenant *ctx2 = NULL;
    struct buf rep, file, vou, vax, vou2, vax2;
    char err[256], path[64], body[512];
    long long id;
    json_t *j;

    assert_int_equal(vrs_catalogue_load(CATALOGUE, &cat, err, sizeof(err)), 0);
    assert_int_equal(post_clerk(f, "/v1/residents", "{\"address_no\":\"VX001\","
                                "\"name\":\"試験 花子\",\"kana\":\"しけん はなこ\","
                                "\"birth_date\":\"1950-04-10\",\"sex\":\"2\"}", &j), 201);
    id = (long long)json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    snprintf(path, sizeof(path), "/v1/residents/%lld/vouchers", id);
    /* refused where the import would refuse (R2.4) */
    assert_int_equal(post_clerk(f, path, "{\"voucher_no\":\"8000000009\",\"ticket_type\":2}",
                                &j), 400);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"),
                                                          "field")), "ticket_type");
    json_decref(j);
    assert_int_equal(post_clerk(f, path, "{\"voucher_no\":\"8000000009\","
                                "\"issued_date\":\"2999-01-01\"}", NULL), 400);
    assert_int_equal(post_clerk(f, path, "{\"voucher_no\":\"8000000001\","
                                "\"issued_date\":\"2021-05-01\"}", NULL), 201);
    assert_int_equal(post_clerk(f, path, "{\"voucher_no\":\"8000000002\"}", NULL), 201);
    /* vaccinations (R2.3) */
    snprintf(body, sizeof(body), "{\"resident_id\":%lld,\"vaccine\":\"covid-comirnaty\","
             "\"dose\":1,\"date\":\"2021-06-01\",\"lot\":\"FA1234\","
             "\"voucher_no\":\"8000000001\"}", id);
    assert_int_equal(post_clerk(f, "/v1/vaccinations", body, NULL), 201);
    snprintf(body, sizeof(body), "{\"resident_id\":%lld,\"vaccine\":\"covid-comirnaty\","
             "\"dose\":2,\"date\":\"2021-06-22\",\"lot\":\"-FA1234\"}", id);
    assert_int_equal(post_clerk(f, "/v1/vaccinations", body, NULL), 400);
    snprintf(body, sizeof(body), "{\"resident_id\":%lld,\"vaccine\":\"covid-comirnaty\","
             "\"dose\":100,\"date\":\"2021-06-22\",\"lot\":\"FA1234\"}", id);
    assert_int_equal(post_clerk(f, "/v1/vaccinations", body, &j), 422);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"),
                                                          "code")), "dose_out_of_range");
    json_decref(j);
    snprintf(body, sizeof(body), "{\"resident_id\":%lld,\"vaccine\":\"covid-spikevax\","
             "\"dose\":2,\"date\":\"2021-06-29\",\"lot\":\"EY-0572\","
             "\"site\":\"集団接種会場（公民館）\",\"clinic\":\"試験クリニック\","
             "\"doctor\":\"試験　一郎\"}", id);
    assert_int_equal(post_clerk(f, "/v1/vaccinations", body, NULL), 201);

    /* The replicas (R2.7) ... */
    replica_of(f->ctx, EXPORT_VOUCHERS, &vou);
    replica_of(f->ctx, EXPORT_VACCINATIONS, &vax);
    assert_non_null(strstr(vou.p, "VX001,8000000001,1,2021-05-01\n"));
    assert_non_null(strstr(vax.p, "VX001,covid-comirnaty,1,2021-06-01,FA1234,8000000001,,,\n"));
    assert_non_null(strstr(vax.p, "VX001,covid-spikevax,2,2021-06-29,EY-0572,,"
                                  "集団接種会場（公民館）,試験クリニック,試験　一郎\n"));

    /* ... pass the import's check and import into another tenant (R2.6) */
    assert_int_equal(keyring_tenant_create(f->kr, T2), 0);
    assert_int_equal(store_tenant_create(f->env.store, T2), STORE_OK);
    assert_int_equal(store_tenant_ctx_open(f->env.store, T2, &f->env.keys, &ctx2), STORE_OK);
    replica_residents(f->ctx, &rep);
    as_import_file(&rep, &file);
    import_clean(f, ctx2, IMPORT_RESIDENTS, cat, &file, "rt-residents.csv");
    import_clean(f, ctx2, IMPORT_VOUCHERS, cat, &vou, "rt-vouchers.csv");
    import_clean(f, ctx2, IMPORT_VACCINATIONS, cat, &vax, "rt-vaccinations.csv");
    replica_of(ctx2, EXPORT_VOUCHERS, &vou2);
    replica_of(ctx2, EXPORT_VACCINATIONS, &vax2);
    assert_int_equal(vou2.len, vou.len);
    assert_memory_equal(vou2.p, vou.p, vou.len);
    assert_int_equal(vax2.len, vax.len);
    assert_memory_equal(vax2.p, vax.p, vax.len);
    store_tenant_ctx_close(ctx2);
    vrs_catalogue_free(cat);
    free(rep.p);
    free(file.p);
    free(vou.p);
    free(vax.p);
    free(vou2.p);
    free(vax2.p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_R7_1_create_fails_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R7_1_read_fails_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R7_1_vaccination_fails_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R2_10_retention_fails_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R7_7_site_device_create_failure_recorded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_R2_7_api_residents_round_trip_through_the_replica,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_R2_7_api_vouchers_and_vaccinations_round_trip_through_the_replica, setup,
            teardown),
    };

    if (sodium_init() < 0)
        return 1;
    log_setup("test_vrs_api", LOG_TO_STDERR, LOG_LVL_ERROR);
    return cmocka_run_group_tests_name("vrs_api", tests, NULL, NULL);
}
