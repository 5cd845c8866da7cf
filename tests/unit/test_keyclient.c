/*
 * test_keyclient.c - workers get tenant keys only as grants from the real
 * key holder process over IPC; the master key and KEKs never leave it
 * (R1.4), key changes reach a running key holder on reload (R9.2), and an
 * erased tenant gets no key any more (crypto-shredding, R1.4).
 */
#include <errno.h>
#include <limits.h>
#include <ftw.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "config/config.h"
#include "crypto/keyring.h"
#include "ipc/ipc.h"
#include "keyholder/keyclient.h"
#include "keyholder/keyholder.h"
#include "store/store.h"

#define TENANT "131016"
#define OTHER  "011002"

struct env {
    char                 dir[64];
    struct mamori_config cfg;
    pid_t                pid;
    int                  ctl;       /* parent end of the control channel */
    int                  wfd;       /* worker end */
    struct ipc_chan      chan;
    struct key_provider  kp;
};

static void
own(const char *path)
{
    struct passwd *pw = getpwnam("mamori");

    /* As root the key holder drops to "mamori": it must read its files. */
    if (geteuid() == 0 && pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) != 0)
        fail_msg("chown %s: %s", path, strerror(errno));
}

static struct keyring *
open_ring(const struct env *e)
{
    struct keyring *kr = NULL;

    assert_int_equal(keyring_open(e->cfg.master_key, e->cfg.keys_dir, NULL, &kr), 0);
    return kr;
}

static void
reown_keys(const struct env *e)
{
    char path[PATH_MAX + 16];

    snprintf(path, sizeof(path), "%s/keystore.json", e->cfg.keys_dir);
    own(path);
}

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    struct keyring *kr;
    int ctl[2], w[2];

    assert_true(sodium_init() >= 0);
    snprintf(e->dir, sizeof(e->dir), "/tmp/mamori-test-kc-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    chmod(e->dir, 0711);
    config_defaults(&e->cfg);
    snprintf(e->cfg.datadir, sizeof(e->cfg.datadir), "%s", e->dir);
    snprintf(e->cfg.keys_dir, sizeof(e->cfg.keys_dir), "%s/keys", e->dir);
    snprintf(e->cfg.master_key, sizeof(e->cfg.master_key), "%s/keys/master.key", e->dir);
    assert_int_equal(mkdir(e->cfg.keys_dir, 0700), 0);
    own(e->cfg.keys_dir);
    assert_int_equal(keyring_master_key_create(e->cfg.master_key), 0);
    own(e->cfg.master_key);
    kr = open_ring(e);
    assert_int_equal(keyring_tenant_create(kr, TENANT), 0);
    keyring_close(kr);
    reown_keys(e);

    assert_int_equal(ipc_socketpair(ctl), 0);
    assert_int_equal(ipc_socketpair(w), 0);
    e->pid = fork();
    assert_true(e->pid >= 0);
    if (e->pid == 0) {
        int fds[2] = { ctl[1], w[1] };
        close(ctl[0]);
        close(w[0]);
        _exit(keyholder_main(&e->cfg, fds, 2));
    }
    close(ctl[1]);
    close(w[1]);
    e->ctl = ctl[0];
    e->wfd = w[0];
    {
        struct ipc_hdr h;
        uint8_t buf[IPC_MAX_PAYLOAD];
        assert_int_equal(ipc_recv(e->ctl, &h, buf, sizeof(buf)), 1);
        assert_int_equal(h.type, IPC_READY);
    }
    ipc_chan_init(&e->chan, e->wfd);
    keyclient_provider(&e->chan, &e->kp);
    *state = e;
    return 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
teardown(void **state)
{
    struct env *e = *state;
    int status = -1;

    if (ipc_send(e->ctl, IPC_SHUTDOWN, 0, 0, NULL, 0) != 0)
        kill(e->pid, SIGKILL);
    waitpid(e->pid, &status, 0);
    ipc_chan_destroy(&e->chan);
    close(e->ctl);
    close(e->wfd);
    nftw(e->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(e);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void
reload(struct env *e)
{
    uint8_t ping[4] = { 1, 2, 3, 4 };
    struct ipc_hdr h;
    uint8_t buf[64];

    reown_keys(e);
    assert_int_equal(ipc_send(e->ctl, IPC_KEYS_RELOAD, 0, 0, NULL, 0), 0);
    /* The key holder serves its channels in order: a PING answered on the
     * control channel means the reload before it is done. */
    assert_int_equal(ipc_send(e->ctl, IPC_PING, 77, 0, ping, sizeof(ping)), 0);
    assert_int_equal(ipc_recv(e->ctl, &h, buf, sizeof(buf)), 1);
    assert_int_equal(h.type, IPC_PONG);
    assert_int_equal(h.id, 77);
}

/* R1.4: the grant over IPC is the tenant's real data key: equal to what
 * the keyring unwraps in process, and nothing else travels. */
static void
test_grant_is_the_real_key(void **state)
{
    struct env *e = *state;
    struct tenant_key *got = NULL, *want = NULL;
    struct keyring *kr = open_ring(e);

    assert_int_equal(e->kp.current_key(e->kp.arg, TENANT, &got), 0);
    assert_int_equal(keyring_grant_data_key(kr, TENANT, 0, &want), 0);
    assert_int_equal(got->kind, TENANT_KEY_DATA);
    assert_string_equal(got->tenant, TENANT);
    assert_int_equal(got->version, 1);
    assert_memory_equal(got->key, want->key, TENANT_KEY_BYTES);
    tenant_key_free(got);
    tenant_key_free(want);
    assert_int_equal(e->kp.index_key(e->kp.arg, TENANT, &got), 0);
    assert_int_equal(got->kind, TENANT_KEY_INDEX);
    tenant_key_free(got);
    keyring_close(kr);
}

/* Unknown tenants and versions get nothing. */
static void
test_no_key_for_unknown(void **state)
{
    struct env *e = *state;
    struct tenant_key *k = NULL;

    assert_int_equal(e->kp.current_key(e->kp.arg, OTHER, &k), -1);
    assert_int_equal(errno, ENOENT);
    assert_null(k);
    assert_int_equal(e->kp.data_key(e->kp.arg, TENANT, 2, &k), -1);
    assert_null(k);
    /* A tenant id with a wrong check digit never leaves the worker. */
    assert_int_equal(e->kp.current_key(e->kp.arg, "131017", &k), -1);
    assert_int_equal(errno, EINVAL);
}

/* Every message is hostile: malformed requests are refused, and the key
 * holder still serves the next good one. */
static void
test_malformed_request_refused(void **state)
{
    struct env *e = *state;
    static const uint8_t bad_tenant[KEYCLIENT_REQUEST_SIZE] = { 1, '1', '3', '1', '0', '1', '7', 0, 0, 0, 0 };
    static const uint8_t bad_kind[KEYCLIENT_REQUEST_SIZE] = { 9, '1', '3', '1', '0', '1', '6', 0, 0, 0, 0 };
    static const uint8_t index_version[KEYCLIENT_REQUEST_SIZE] = { 2, '1', '3', '1', '0', '1', '6', 0, 0, 0, 3 };
    const uint8_t *bad[] = { bad_tenant, bad_kind, index_version };
    struct tenant_key *k = NULL;
    struct ipc_hdr h;
    uint8_t buf[128];

    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(ipc_send(e->wfd, IPC_KEY_REQUEST, 100 + (uint32_t)i, 0, bad[i],
                                  KEYCLIENT_REQUEST_SIZE), 0);
        assert_int_equal(ipc_recv(e->wfd, &h, buf, sizeof(buf)), 1);
        assert_int_equal(h.type, IPC_ERROR);
        assert_int_equal(h.id, 100 + i);
        assert_memory_equal(buf, "malformed_request", h.len);
    }
    /* A worker may not ask the key holder to reload. */
    assert_int_equal(ipc_send(e->wfd, IPC_KEYS_RELOAD, 9, 0, NULL, 0), 0);
    assert_int_equal(ipc_recv(e->wfd, &h, buf, sizeof(buf)), 1);
    assert_int_equal(h.type, IPC_ERROR);
    assert_int_equal(e->kp.current_key(e->kp.arg, TENANT, &k), 0);
    tenant_key_free(k);
}

/* R9.2: a rotation made by the operator tool reaches the running key
 * holder on reload; old versions stay available. */
static void
test_rotation_reaches_running_keyholder(void **state)
{
    struct env *e = *state;
    struct keyring *kr = open_ring(e);
    struct tenant_key *k = NULL;
    uint32_t v = 0;

    assert_int_equal(keyring_rotate(kr, TENANT, &v), 0);
    assert_int_equal(v, 2);
    keyring_close(kr);
    assert_int_equal(e->kp.current_key(e->kp.arg, TENANT, &k), 0);
    assert_int_equal(k->version, 1);          /* not yet reloaded */
    tenant_key_free(k);
    reload(e);
    assert_int_equal(e->kp.current_key(e->kp.arg, TENANT, &k), 0);
    assert_int_equal(k->version, 2);
    tenant_key_free(k);
    assert_int_equal(e->kp.data_key(e->kp.arg, TENANT, 1, &k), 0);
    assert_int_equal(k->version, 1);
    tenant_key_free(k);
}

/* The store works through the IPC provider exactly as in process: a
 * resident written and read back with keys that came as grants. */
static void
test_store_through_grants(void **state)
{
    struct env *e = *state;
    char path[128];
    struct store_config sc = { STORE_BACKEND_SQLITE, path, NULL, 1, 0 };
    struct store *st = NULL;
    struct store_tenant *ctx = NULL;
    struct resident r, got;
    int64_t id = 0;

    snprintf(path, sizeof(path), "%s/kc.sqlite", e->dir);
    assert_int_equal(store_open(&sc, STORE_OPEN_MIGRATE, &st), STORE_OK);
    assert_int_equal(store_migrate(st, NULL, NULL), STORE_OK);
    assert_int_equal(store_tenant_create(st, TENANT), STORE_OK);
    assert_int_equal(store_tenant_ctx_open(st, TENANT, &e->kp, &ctx), STORE_OK);
    memset(&r, 0, sizeof(r));
    snprintf(r.address_no, sizeof(r.address_no), "A0000001");
    snprintf(r.mynumber, sizeof(r.mynumber), "123456789018");
    snprintf(r.name, sizeof(r.name), "テスト 太郎");
    snprintf(r.kana, sizeof(r.kana), "テスト タロウ");
    snprintf(r.birth_date, sizeof(r.birth_date), "1980-04-01");
    snprintf(r.sex, sizeof(r.sex), "1");
    snprintf(r.address, sizeof(r.address), "東京都千代田区テスト町1-1");
    assert_int_equal(store_resident_insert(ctx, "kc-1", &r, &id), STORE_OK);
    assert_int_equal(store_resident_get(ctx, id, &got), STORE_OK);
    assert_string_equal(got.name, r.name);
    assert_string_equal(got.mynumber, r.mynumber);
    store_resident_wipe(&got);
    store_tenant_ctx_close(ctx);
    store_close(st);
}

/* R1.4: after the operator erases a tenant's keys, a running key holder
 * (once reloaded) grants nothing for it. */
static void
test_erased_tenant_gets_nothing(void **state)
{
    struct env *e = *state;
    struct keyring *kr = open_ring(e);
    struct tenant_key *k = NULL;

    assert_int_equal(keyring_erase(kr, TENANT), 0);
    keyring_close(kr);
    reload(e);
    assert_int_equal(e->kp.current_key(e->kp.arg, TENANT, &k), -1);
    assert_int_equal(e->kp.index_key(e->kp.arg, TENANT, &k), -1);
    assert_int_equal(e->kp.data_key(e->kp.arg, TENANT, 1, &k), -1);
    assert_null(k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grant_is_the_real_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_key_for_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_request_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_reaches_running_keyholder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_through_grants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erased_tenant_gets_nothing, setup, teardown),
    };
    return cmocka_run_group_tests_name("keyholder grants over IPC (R1.4, R9.2)", tests,
                                       NULL, NULL);
}
