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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/event.h"
#include "common/log.h"
#include "crypto/keyring.h"
#include "ipc/ipc.h"
#include "store/store_records.h"
#include "vrs/api.h"
#include "vrs/site.h"
#include "worker/worker.h"

#define T1 "131016"

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

/* Run one handler as `role` with `body` (JSON text or NULL) and path
 * parameter id (0: none) against a writer that acknowledges or refuses.
 * Returns the status; *out (may be NULL) gets the response body. */
static unsigned
call(struct fx *f, void (*h)(const struct http_request *, struct http_response *),
     enum role role, const char *body, int64_t id, struct fake_writer *w, json_t **out)
{
    struct http_request req = { .listener = LISTENER_INTERNAL, .has_terminal = true,
                                .authed = true, .role = role, .env = &f->env };
    struct http_response resp = { .status = 0 };
    pthread_t t;
    int fds[2];

    snprintf(req.user_id, sizeof(req.user_id), "tester");
    snprintf(req.tenant, sizeof(req.tenant), T1);
    if (id > 0) {
        req.nparams = 1;
        snprintf(req.param_names[0], sizeof(req.param_names[0]), "id");
        snprintf(req.params[0], sizeof(req.params[0]), "%lld", (long long)id);
    }
    req.body = body != NULL ? json_loads(body, 0, NULL) : NULL;
    assert_true(body == NULL || req.body != NULL);
    assert_int_equal(ipc_socketpair(fds), 0);
    ipc_chan_init(&f->env.audit, fds[0]);
    w->fd = fds[1];
    w->all_valid = true;
    assert_int_equal(pthread_create(&t, NULL, fake_writer_run, w), 0);
    h(&req, &resp);
    ipc_chan_destroy(&f->env.audit);
    close(fds[0]);              /* the writer sees the hang-up and stops */
    pthread_join(t, NULL);
    close(fds[1]);
    json_decref(req.body);
    if (out != NULL)
        *out = resp.body;
    else
        json_decref(resp.body);
    free(resp.raw);
    return resp.status;
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
    };

    if (sodium_init() < 0)
        return 1;
    log_setup("test_vrs_api", LOG_TO_STDERR, LOG_LVL_ERROR);
    return cmocka_run_group_tests_name("vrs_api", tests, NULL, NULL);
}
