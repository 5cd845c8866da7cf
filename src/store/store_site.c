/*
 * store_site.c - site-device credentials over the backends' generic
 * query (R1.5), written once for both backends like store_auth.c:
 * $n placeholders, blobs and text only compared.
 */
#include "store/store_site.h"

#include <string.h>

#include "store/store_int.h"

#define DEVICE_COLS "d.device_id, d.tenant_id, d.name, d.state, d.created_at, d.changed_at"

bool
store_site_device_id_valid(const char *s)
{
    if (s == NULL || strlen(s) != SITE_DEVICE_ID_LEN || strncmp(s, "sd-", 3) != 0)
        return false;
    for (size_t i = 3; i < SITE_DEVICE_ID_LEN; i++)
        if (s[i] < 'a' || s[i] > 'z')
            return false;
    return true;
}

enum store_status
store_site_device_create(struct store *st, const char *tenant, const char *device_id,
                         const char *name, const uint8_t token_hash[SITE_TOKEN_HASH_LEN])
{
    char ts[25], state[16];
    const struct qarg a[] = { TXT(device_id), TXT(tenant), TXT(name),
                              BLB(token_hash, SITE_TOKEN_HASH_LEN), TXT(ts) };
    enum store_status rc;

    if (!tenant_id_valid(tenant) || !store_site_device_id_valid(device_id) ||
        name == NULL || name[0] == '\0' || strlen(name) >= SITE_DEVICE_NAME_MAX ||
        token_hash == NULL)
        return STORE_INVALID;
    if ((rc = store_tenant_state(st, tenant, state)) != STORE_OK)
        return rc;
    if (strcmp(state, "active") != 0)
        return STORE_DENIED;
    util_utc_now(ts);
    return store_run1(st, true, "INSERT INTO site_devices (device_id, tenant_id, name, "
                      "token_hash, state, created_at, changed_at) VALUES "
                      "($1, $2, $3, $4, 'active', $5, $5)", a, 5, NULL, 0, NULL, NULL,
                      NULL, NULL);
}

/* Result columns of DEVICE_COLS into `o`. */
static void
device_cols(struct site_device *o, struct qcol cols[6])
{
    cols[0] = (struct qcol){ .t = QT_TEXT, .s = o->device_id, .ssz = sizeof(o->device_id) };
    cols[1] = (struct qcol){ .t = QT_TEXT, .s = o->tenant, .ssz = sizeof(o->tenant) };
    cols[2] = (struct qcol){ .t = QT_TEXT, .s = o->name, .ssz = sizeof(o->name) };
    cols[3] = (struct qcol){ .t = QT_TEXT, .s = o->state, .ssz = sizeof(o->state) };
    cols[4] = (struct qcol){ .t = QT_TEXT, .s = o->created_at, .ssz = sizeof(o->created_at) };
    cols[5] = (struct qcol){ .t = QT_TEXT, .s = o->changed_at, .ssz = sizeof(o->changed_at) };
}

enum store_status
store_site_device_by_token(struct store *st, const uint8_t h[SITE_TOKEN_HASH_LEN],
                           struct site_device *out)
{
    const struct qarg a[] = { BLB(h, SITE_TOKEN_HASH_LEN) };
    struct qcol cols[6];
    bool found = false;
    enum store_status rc;

    memset(out, 0, sizeof(*out));
    device_cols(out, cols);
    /* R1.4: an erased tenant's devices are as good as unknown. */
    rc = store_run1(st, false, "SELECT " DEVICE_COLS " FROM site_devices d JOIN tenants t "
                    "ON t.tenant_id = d.tenant_id WHERE d.token_hash = $1 AND "
                    "t.state = 'active'", a, 1, cols, 6, &found, NULL, NULL, NULL);
    return rc == STORE_OK && !found ? STORE_NOTFOUND : rc;
}

enum store_status
store_site_device_get(struct store *st, const char *tenant, const char *device_id,
                      struct site_device *out)
{
    const struct qarg a[] = { TXT(device_id), TXT(tenant) };
    struct qcol cols[6];
    bool found = false;
    enum store_status rc;

    memset(out, 0, sizeof(*out));
    if (!tenant_id_valid(tenant) || !store_site_device_id_valid(device_id))
        return STORE_NOTFOUND;
    device_cols(out, cols);
    rc = store_run1(st, false, "SELECT " DEVICE_COLS " FROM site_devices d WHERE "
                    "d.device_id = $1 AND d.tenant_id = $2", a, 2, cols, 6, &found, NULL,
                    NULL, NULL);
    return rc == STORE_OK && !found ? STORE_NOTFOUND : rc;
}

struct device_walk {
    struct site_device row;
    int (*fn)(const struct site_device *, void *);
    void *ctx;
};

static int
device_walk_row(void *p)
{
    struct device_walk *w = p;

    return w->fn(&w->row, w->ctx);
}

enum store_status
store_site_device_list(struct store *st, const char *tenant,
                       int (*fn)(const struct site_device *, void *), void *ctx)
{
    struct device_walk w = { .fn = fn, .ctx = ctx };
    const struct qarg a[] = { TXT(tenant) };
    struct qcol cols[6];

    if (!tenant_id_valid(tenant) || fn == NULL)
        return STORE_INVALID;
    device_cols(&w.row, cols);
    /* Never the token hash: nothing an administrator needs. */
    return store_run1(st, false, "SELECT " DEVICE_COLS " FROM site_devices d WHERE "
                      "d.tenant_id = $1 ORDER BY d.created_at, d.device_id", a, 1, cols, 6,
                      NULL, NULL, device_walk_row, &w);
}

enum store_status
store_site_device_revoke(struct store *st, const char *tenant, const char *device_id)
{
    char ts[25];
    int64_t changes = 0;
    enum store_status rc;

    if (!tenant_id_valid(tenant) || !store_site_device_id_valid(device_id))
        return STORE_NOTFOUND;
    util_utc_now(ts);
    const struct qarg a[] = { TXT(device_id), TXT(tenant), TXT(ts) };
    rc = store_run1(st, true, "UPDATE site_devices SET state = 'revoked', changed_at = $3 "
                    "WHERE device_id = $1 AND tenant_id = $2 AND state = 'active'", a, 3,
                    NULL, 0, NULL, &changes, NULL, NULL);
    return rc == STORE_OK && changes != 1 ? STORE_NOTFOUND : rc;
}
