/*
 * keyprov.h - tenant keys as handed to workers, and the provider interface
 * the store asks for them.
 *
 * Key hierarchy (R1.4, see docs/storage.md):
 *
 *   master key (keys/master.key, key holder only)
 *     └─ per tenant KEK (versioned, wrapped under the master key)
 *          ├─ data keys v1..vN (wrapped under the KEK; field AEAD)
 *          └─ index key       (wrapped under the KEK; blind indexes)
 *
 * A worker never sees the master key or a KEK: it receives *grants*, one
 * unwrapped data or index key of one tenant, held in guarded memory
 * (sodium_malloc, read-only after fill, wiped by tenant_key_free).
 *
 * Grant wire format (KEYGRANT_SIZE = 48 bytes, fixed; the IPC layer carries
 * it as one message and must wipe its buffers after decoding):
 *
 *   offset  size  field
 *   0       4     magic "MKG1" (0x4d 0x4b 0x47 0x31)
 *   4       1     kind: 1 = data key, 2 = index key
 *   5       1     reserved, must be 0
 *   6       6     tenant id, 6 ASCII digits, no terminator
 *   12      4     key version, big-endian, >= 1 (index key: always 1)
 *   16      32    key bytes
 *
 * keygrant_decode refuses any other length, magic, kind, non-zero reserved
 * byte, non-digit tenant or version 0: every message is hostile.
 */
#ifndef MAMORI_CRYPTO_KEYPROV_H
#define MAMORI_CRYPTO_KEYPROV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define TENANT_ID_LEN    6
#define TENANT_KEY_BYTES 32
#define KEYGRANT_SIZE    48

enum tenant_key_kind { TENANT_KEY_DATA = 1, TENANT_KEY_INDEX = 2 };

struct tenant_key {
    uint8_t  kind;                       /* enum tenant_key_kind */
    char     tenant[TENANT_ID_LEN + 1];
    uint32_t version;
    uint8_t  key[TENANT_KEY_BYTES];
};

/* True if `s` is a local government code: 6 ASCII digits, the last the
 * check digit over the first five (weights 6..2, (11 - sum%11) % 10). */
bool tenant_id_valid(const char *s);

/*
 * Make a grant in guarded memory holding a copy of `key`.  The copy is made
 * read-only; the caller owns *out and releases it with tenant_key_free.
 * The caller still owns (and should wipe) `key`.
 */
int tenant_key_new(enum tenant_key_kind kind, const char *tenant,
                   uint32_t version, const uint8_t key[TENANT_KEY_BYTES],
                   struct tenant_key **out) MAMORI_WARN_UNUSED;

/* Wipe and free a grant; NULL is fine. */
void tenant_key_free(struct tenant_key *k);

/* Serialise a grant into `buf` (layout above).  `buf` then holds key
 * material: the caller wipes it (util_wipe) once sent. */
int keygrant_encode(const struct tenant_key *k, uint8_t buf[KEYGRANT_SIZE])
    MAMORI_WARN_UNUSED;

/* Parse and check a received grant; on success *out is a new guarded grant
 * owned by the caller.  `buf` is not wiped: the caller does that. */
int keygrant_decode(const uint8_t *buf, size_t len, struct tenant_key **out)
    MAMORI_WARN_UNUSED;

/*
 * Where the store gets keys.  In the daemon this is an IPC client of the
 * key holder; in tests and the CLI keyring_provider() calls the keyring in
 * process.  Every function returns 0 and a new grant owned by the caller
 * (free with tenant_key_free), or -1 with errno (ENOENT: unknown or erased
 * tenant, or no such version).  Functions must be safe to call from
 * several threads at once.
 */
struct key_provider {
    /* The data key new writes use (the tenant's highest version). */
    int (*current_key)(void *arg, const char *tenant, struct tenant_key **out);
    /* Data key `version` (>= 1), to read what it encrypted. */
    int (*data_key)(void *arg, const char *tenant, uint32_t version,
                    struct tenant_key **out);
    /* The tenant's blind-index key. */
    int (*index_key)(void *arg, const char *tenant, struct tenant_key **out);
    void *arg;
};

#endif
