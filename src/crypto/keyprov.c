/*
 * keyprov.c - guarded tenant key grants and their wire format.
 */
#include "crypto/keyprov.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "ref/lgcode.h"

static const uint8_t grant_magic[4] = { 'M', 'K', 'G', '1' };

bool
tenant_id_valid(const char *s)
{
    /* One definition of a local government code: src/ref. */
    return lgcode_valid(s);
}

static bool
digits6(const char *s)
{
    for (size_t i = 0; i < TENANT_ID_LEN; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int
tenant_key_new(enum tenant_key_kind kind, const char *tenant, uint32_t version,
               const uint8_t key[TENANT_KEY_BYTES], struct tenant_key **out)
{
    struct tenant_key *k;

    if ((kind != TENANT_KEY_DATA && kind != TENANT_KEY_INDEX) ||
        tenant == NULL || strlen(tenant) != TENANT_ID_LEN || !digits6(tenant) ||
        version == 0) {
        errno = EINVAL;
        return -1;
    }
    /* Guard pages around the key, mlock'd when the limit allows. */
    k = sodium_malloc(sizeof(*k));
    if (k == NULL)
        return -1;
    memset(k, 0, sizeof(*k));
    k->kind = (uint8_t)kind;
    memcpy(k->tenant, tenant, TENANT_ID_LEN + 1);
    k->version = version;
    memcpy(k->key, key, TENANT_KEY_BYTES);
    /* Nothing writes a grant after this: a stray write faults. */
    sodium_mprotect_readonly(k);
    *out = k;
    return 0;
}

void
tenant_key_free(struct tenant_key *k)
{
    /* sodium_free makes the region writable again and zeroes it. */
    if (k != NULL)
        sodium_free(k);
}

int
keygrant_encode(const struct tenant_key *k, uint8_t buf[KEYGRANT_SIZE])
{
    if (k == NULL || (k->kind != TENANT_KEY_DATA && k->kind != TENANT_KEY_INDEX) ||
        k->version == 0) {
        errno = EINVAL;
        return -1;
    }
    memcpy(buf, grant_magic, 4);
    buf[4] = k->kind;
    buf[5] = 0;
    memcpy(buf + 6, k->tenant, TENANT_ID_LEN);
    buf[12] = (uint8_t)(k->version >> 24);
    buf[13] = (uint8_t)(k->version >> 16);
    buf[14] = (uint8_t)(k->version >> 8);
    buf[15] = (uint8_t)k->version;
    memcpy(buf + 16, k->key, TENANT_KEY_BYTES);
    return 0;
}

int
keygrant_decode(const uint8_t *buf, size_t len, struct tenant_key **out)
{
    char tenant[TENANT_ID_LEN + 1];
    uint32_t version;

    /* Size first, before looking at any field. */
    if (buf == NULL || len != KEYGRANT_SIZE || memcmp(buf, grant_magic, 4) != 0 ||
        (buf[4] != TENANT_KEY_DATA && buf[4] != TENANT_KEY_INDEX) || buf[5] != 0) {
        errno = EBADMSG;
        return -1;
    }
    memcpy(tenant, buf + 6, TENANT_ID_LEN);
    tenant[TENANT_ID_LEN] = '\0';
    version = (uint32_t)buf[12] << 24 | (uint32_t)buf[13] << 16 |
        (uint32_t)buf[14] << 8 | buf[15];
    if (!digits6(tenant) || version == 0 ||
        (buf[4] == TENANT_KEY_INDEX && version != 1)) {
        errno = EBADMSG;
        return -1;
    }
    return tenant_key_new((enum tenant_key_kind)buf[4], tenant, version,
                          buf + 16, out);
}
