/*
 * keyring.h - the key holder's side: master key, wrapped tenant keys,
 * create / rotate / rewrap / erase, and grants (R1.4, R9.2, R7.7).
 *
 * Only the key-holder process links this in the daemon.  The master key
 * file is exactly 32 random bytes, mode 0600 (made by `mamori init`).  It
 * is read once; what stays in memory are two keys derived from it
 * (crypto_kdf, context "mamoriMK": 1 = wrapping key, 2 = keystore MAC
 * key) in guarded memory that is inaccessible between operations.
 *
 * The keystore, `<keys_dir>/keystore.json`, holds per tenant: the KEK
 * version and the KEK wrapped under the wrapping key, the index key and
 * every data key version wrapped under the KEK.  Wrapped blobs are
 * nonce(24) || XChaCha20-Poly1305 ciphertext(32) || tag(16), with AD naming
 * the kind, tenant and versions.  The whole file carries a keyed BLAKE2b
 * MAC, so any edit is refused at load.  It is replaced atomically (0600,
 * util_write_file_atomic) and the in-memory state changes only after the
 * new file is durable.
 *
 * All functions are thread-safe (one mutex) and return 0, or -1 with errno
 * (ENOENT unknown tenant or version, EEXIST, EINVAL, EBADMSG corrupt or
 * forged keystore, EPERM master key file too open).
 */
#ifndef MAMORI_CRYPTO_KEYRING_H
#define MAMORI_CRYPTO_KEYRING_H

#include <stdint.h>

#include "common/util.h"
#include "crypto/keyprov.h"

#define KEYRING_MASTER_KEY_BYTES 32
#define KEYRING_FILE "keystore.json"

struct keyring;

enum keyring_op {
    KEYRING_OP_OPEN = 1,        /* keystore loaded */
    KEYRING_OP_TENANT_CREATE,   /* KEK + index key + data key v1 made */
    KEYRING_OP_ROTATE,          /* new data key version */
    KEYRING_OP_REWRAP,          /* new KEK, data keys rewrapped */
    KEYRING_OP_ERASE,           /* tenant keys destroyed */
    KEYRING_OP_GRANT_DATA,      /* data key unwrapped for a worker */
    KEYRING_OP_GRANT_INDEX,     /* index key unwrapped for a worker */
};

/* One key operation, as reported to the hook.  Never carries key bytes. */
struct keyring_event {
    enum keyring_op op;
    const char     *tenant;       /* NULL for OPEN */
    uint32_t        version;      /* data key version concerned, or 0 */
    uint32_t        kek_version;  /* KEK version after the op, or 0 */
    int             ok;           /* 1 done, 0 refused / failed */
    int             err;          /* errno when !ok */
};

/*
 * Where key operations are recorded (R7.7).  The audit writer supplies
 * one; on_event runs after the operation's outcome is final (durable or
 * refused), under the keyring lock, so it must not call back into the
 * keyring.  NULL hooks mean keyring_log_event.
 */
struct keyring_events {
    void (*on_event)(void *arg, const struct keyring_event *ev);
    void *arg;
};

/* The default hook: one log_event line "key_op" without key material
 * (grants at debug level, everything else at info). */
void keyring_log_event(void *arg, const struct keyring_event *ev);

/* Name of an operation ("tenant_create", ...), for hooks. */
const char *keyring_op_name(enum keyring_op op);

/*
 * Write a new master key (32 bytes from randombytes_buf) to `path`,
 * atomically, mode 0600.  Refuses (EEXIST) to replace an existing file.
 */
int keyring_master_key_create(const char *path) MAMORI_WARN_UNUSED;

/*
 * Read the master key and the keystore in `keys_dir` (a missing keystore
 * is an empty one).  The master key file must be a regular file of exactly
 * 32 bytes readable by its owner only.  `ev` may be NULL; it is copied.
 * The caller owns *out (keyring_close).
 */
int keyring_open(const char *master_key_path, const char *keys_dir,
                 const struct keyring_events *ev, struct keyring **out)
    MAMORI_WARN_UNUSED;

/* Wipe every secret and free; NULL is fine. */
void keyring_close(struct keyring *kr);

/* Make KEK v1, an index key and data key v1 for a new tenant. */
int keyring_tenant_create(struct keyring *kr, const char *tenant)
    MAMORI_WARN_UNUSED;

/* True if the tenant has keys. */
int keyring_tenant_exists(struct keyring *kr, const char *tenant);

/* New data key version; new writes use it, old versions stay (R9.2). */
int keyring_rotate(struct keyring *kr, const char *tenant,
                   uint32_t *new_version) MAMORI_WARN_UNUSED;

/* New KEK; the index key and every data key are rewrapped under it.  The
 * data keys themselves do not change, so no stored row changes. */
int keyring_rewrap(struct keyring *kr, const char *tenant,
                   uint32_t *new_kek_version) MAMORI_WARN_UNUSED;

/* Destroy the tenant's keys (crypto-shredding, R1.4): the new keystore
 * without them is durable before this returns. */
int keyring_erase(struct keyring *kr, const char *tenant) MAMORI_WARN_UNUSED;

/* Current data key version and KEK version. */
int keyring_versions(struct keyring *kr, const char *tenant,
                     uint32_t *data_version, uint32_t *kek_version)
    MAMORI_WARN_UNUSED;

/* Unwrap data key `version` (0 = current) into a new grant owned by the
 * caller (tenant_key_free). */
int keyring_grant_data_key(struct keyring *kr, const char *tenant,
                           uint32_t version, struct tenant_key **out)
    MAMORI_WARN_UNUSED;

/* Unwrap the tenant's index key into a new grant owned by the caller. */
int keyring_grant_index_key(struct keyring *kr, const char *tenant,
                            struct tenant_key **out) MAMORI_WARN_UNUSED;

/* A provider calling this keyring in process (tests, CLI).  `kr` must
 * outlive every use of *out. */
void keyring_provider(struct keyring *kr, struct key_provider *out);

#endif
