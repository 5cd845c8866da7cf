/*
 * test_store_site.c - site-device credentials in the store (R1.5, R1.1,
 * R1.4) on SQLite and PostgreSQL (MAMORI_TEST_PG, as test_auth.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/store_site.h"
#include "store_fixture.h"

#define T1 "131016"
#define T2 "131024"
#define DEV1 "sd-abcdefghijklmnop"
#define DEV2 "sd-qrstuvwxyzabcdef"

static int
setup(void **state)
{
    static const char *const tenants[] = { T1, T2 };

    *state = store_fx_new("site", tenants, 2, 0);
    return 0;
}

static int
teardown(void **state)
{
    store_fx_free(*state);
    return 0;
}

static int
count_row(const struct site_device *d, void *p)
{
    (void)d;
    (*(int *)p)++;
    return 0;
}

/* R1.5: a device is found by its token's hash only; revoked, it is still
 * found (so the refusal can be recorded) but no longer active. */
static void
test_create_find_revoke(void **state)
{
    struct store_fx *f = *state;
    uint8_t h1[SITE_TOKEN_HASH_LEN], h2[SITE_TOKEN_HASH_LEN];
    struct site_device d;
    int n = 0;

    if (f->skip)
        skip();
    randombytes_buf(h1, sizeof(h1));
    randombytes_buf(h2, sizeof(h2));
    assert_int_equal(store_site_device_create(f->st, T1, DEV1, "会場A", h1), STORE_OK);
    assert_int_equal(store_site_device_by_token(f->st, h1, &d), STORE_OK);
    assert_string_equal(d.device_id, DEV1);
    assert_string_equal(d.tenant, T1);
    assert_string_equal(d.name, "会場A");
    assert_string_equal(d.state, "active");
    assert_int_equal(store_site_device_by_token(f->st, h2, &d), STORE_NOTFOUND);
    /* one hash, one device; one id, one device */
    assert_int_equal(store_site_device_create(f->st, T1, DEV2, "会場B", h1), STORE_EXISTS);
    assert_int_equal(store_site_device_create(f->st, T2, DEV1, "会場B", h2), STORE_EXISTS);
    assert_int_equal(store_site_device_create(f->st, T1, DEV2, "会場B", h2), STORE_OK);
    assert_int_equal(store_site_device_list(f->st, T1, count_row, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_site_device_revoke(f->st, T1, DEV1), STORE_OK);
    assert_int_equal(store_site_device_by_token(f->st, h1, &d), STORE_OK);
    assert_string_equal(d.state, "revoked");
    assert_int_equal(store_site_device_revoke(f->st, T1, DEV1), STORE_NOTFOUND);
    assert_int_equal(store_site_device_get(f->st, T1, DEV2, &d), STORE_OK);
    assert_string_equal(d.state, "active");
}

/* R1.1: another tenant's device is neither listed, read nor revoked. */
static void
test_tenant_bound(void **state)
{
    struct store_fx *f = *state;
    uint8_t h[SITE_TOKEN_HASH_LEN];
    struct site_device d;
    int n = 0;

    if (f->skip)
        skip();
    randombytes_buf(h, sizeof(h));
    assert_int_equal(store_site_device_create(f->st, T1, DEV1, "会場A", h), STORE_OK);
    assert_int_equal(store_site_device_get(f->st, T2, DEV1, &d), STORE_NOTFOUND);
    assert_int_equal(store_site_device_revoke(f->st, T2, DEV1), STORE_NOTFOUND);
    assert_int_equal(store_site_device_list(f->st, T2, count_row, &n), STORE_OK);
    assert_int_equal(n, 0);
    /* unknown tenant, bad id, bad name */
    assert_int_equal(store_site_device_create(f->st, "132012", DEV2, "x", h), STORE_NOTFOUND);
    assert_int_equal(store_site_device_create(f->st, T1, "sd-ABC", "x", h), STORE_INVALID);
    assert_int_equal(store_site_device_create(f->st, T1, DEV2, "", h), STORE_INVALID);
    assert_false(store_site_device_id_valid("sd-abcdefghijklmno1"));
    assert_true(store_site_device_id_valid(DEV1));
}

/* R1.4: an erased tenant's devices no longer authenticate. */
static void
test_erased_tenant(void **state)
{
    struct store_fx *f = *state;
    uint8_t h[SITE_TOKEN_HASH_LEN];
    struct site_device d;

    if (f->skip)
        skip();
    randombytes_buf(h, sizeof(h));
    assert_int_equal(store_site_device_create(f->st, T2, DEV1, "会場A", h), STORE_OK);
    assert_int_equal(store_tenant_erase(f->st, T2), STORE_OK);
    assert_int_equal(store_site_device_by_token(f->st, h, &d), STORE_NOTFOUND);
    assert_int_equal(store_site_device_create(f->st, T2, DEV2, "会場B", h), STORE_DENIED);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_find_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erased_tenant, setup, teardown),
    };
    int failed;

    if (sodium_init() < 0)
        return 1;
    log_setup("test_store_site", LOG_TO_STDERR, LOG_LVL_ERROR);
    failed = STORE_FX_RUN("store-site/sqlite", "store-site/postgresql", tests, 0);
    return failed;
}
