/*
 * store_site.h - credentials of vaccination-site devices (R1.5).
 * Schema: migration 4 of each backend (table site_devices).
 *
 * A site device (a tablet at a vaccination venue) talks to the public
 * listener with a bearer token of its own, issued per tenant by the
 * tenant's administrator.  The token is 32 random bytes; only its
 * BLAKE2b-256 hash is stored (like staff session tokens, auth/session.h),
 * so a copy of the database cannot be replayed as a device.  The rows
 * hold no resident data: these are operator-level calls on
 * `struct store *`, like store_auth.h.
 */
#ifndef MAMORI_STORE_SITE_H
#define MAMORI_STORE_SITE_H

#include <stdint.h>

#include "store/store.h"

#define SITE_DEVICE_ID_LEN   19     /* "sd-" + 16 of [a-z] */
#define SITE_DEVICE_NAME_MAX 65     /* 1..64 bytes of UTF-8 */
#define SITE_TOKEN_HASH_LEN  32

struct site_device {
    char device_id[SITE_DEVICE_ID_LEN + 1];
    char tenant[TENANT_ID_LEN + 1];
    char name[SITE_DEVICE_NAME_MAX];
    char state[12];                 /* active | revoked */
    char created_at[25];
    char changed_at[25];
};

/* True if `s` has the form of a device id: "sd-" and 16 of a-z. */
bool store_site_device_id_valid(const char *s);

/* Register a device of an active tenant with the hash of its token.
 * STORE_EXISTS if the id or the hash is taken, STORE_NOTFOUND /
 * STORE_DENIED for an unknown / erased tenant, STORE_INVALID for a bad
 * id or name. */
enum store_status store_site_device_create(struct store *st, const char *tenant,
                                           const char *device_id, const char *name,
                                           const uint8_t token_hash[SITE_TOKEN_HASH_LEN])
    MAMORI_WARN_UNUSED;

/* The device whose token hashes to `h`, whatever its state, provided its
 * tenant is active (an erased tenant's devices are not found). */
enum store_status store_site_device_by_token(struct store *st,
                                             const uint8_t h[SITE_TOKEN_HASH_LEN],
                                             struct site_device *out) MAMORI_WARN_UNUSED;

/* One device of `tenant` by id (STORE_NOTFOUND for another tenant's). */
enum store_status store_site_device_get(struct store *st, const char *tenant,
                                        const char *device_id, struct site_device *out)
    MAMORI_WARN_UNUSED;

/* The tenant's devices by creation time; fn returns non-zero to stop. */
enum store_status store_site_device_list(struct store *st, const char *tenant,
                                         int (*fn)(const struct site_device *, void *),
                                         void *ctx) MAMORI_WARN_UNUSED;

/* Mark a device of `tenant` revoked: its token stops working at once.
 * STORE_NOTFOUND if the tenant has no such active device. */
enum store_status store_site_device_revoke(struct store *st, const char *tenant,
                                           const char *device_id) MAMORI_WARN_UNUSED;

#endif
