/*
 * field.h - worker-side field encryption and blind indexes (R1.4, R2.2).
 *
 * Ciphertext format (binary, stored as BLOB / BYTEA), byte by byte:
 *
 *   offset    size  field
 *   0         1     format, FIELD_FORMAT_V1 (0x01)
 *   1         4     data key version, big-endian (like Vault's "vN:")
 *   5         24    XChaCha20 nonce (randombytes_buf, never reused)
 *   29        n     XChaCha20-Poly1305-IETF ciphertext of the padded text
 *   29+n      16    Poly1305 tag
 *
 * The plaintext is padded (ISO/IEC 7816-4, sodium_pad) to a multiple of
 * FIELD_PAD_BLOCK bytes so lengths leak only in 16-byte steps.
 *
 * Associated data (authenticated, not stored):
 *   "mamori-field" 0x00 | format | len8 tenant | tenant | len8 table | table |
 *   len8 column | column | row id (u64 BE) | key version (u32 BE)
 * so a ciphertext copied to another row, column, table or tenant, or with
 * its version byte edited, fails the tag check (R1.1, R1.4).
 *
 * Blind index: BLAKE2b-256 keyed with a subkey derived (crypto_kdf) from
 * the tenant's index key, one subkey per purpose, so equal values give
 * equal indexes within one tenant and purpose only.  It leaks equality.
 */
#ifndef MAMORI_CRYPTO_FIELD_H
#define MAMORI_CRYPTO_FIELD_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "crypto/keyprov.h"

#define FIELD_FORMAT_V1   0x01
#define FIELD_HEADER_LEN  29
#define FIELD_TAG_LEN     16
#define FIELD_PAD_BLOCK   16
#define FIELD_PLAIN_MAX   2048   /* largest field we encrypt, bytes */
/* Ciphertext size for a plaintext of `n` bytes (padding included). */
#define FIELD_CT_LEN(n) \
    (FIELD_HEADER_LEN + ((size_t)(n) / FIELD_PAD_BLOCK + 1) * FIELD_PAD_BLOCK + \
     FIELD_TAG_LEN)
#define FIELD_CT_MAX      FIELD_CT_LEN(FIELD_PLAIN_MAX)
#define FIELD_NAME_MAX    63     /* table / column name limit for the AD */

#define BIDX_LEN 32

enum bidx_purpose {
    BIDX_MYNUMBER = 1,  /* individual number, 12 digits */
    BIDX_NAME_DOB = 2,  /* normalised name + birth date (4情報 search) */
};

/* What a ciphertext is bound to. */
struct field_ad {
    const char *tenant;
    const char *table;
    const char *column;
    int64_t     row_id;
};

/*
 * Encrypt `plen` bytes (<= FIELD_PLAIN_MAX) under data key `k` into `out`
 * (outsz >= FIELD_CT_LEN(plen)); *outlen receives the size.  The key's
 * tenant must equal ad->tenant.  The caller owns all buffers.
 */
int field_encrypt(const struct tenant_key *k, const struct field_ad *ad,
                  const void *plain, size_t plen, uint8_t *out, size_t outsz,
                  size_t *outlen) MAMORI_WARN_UNUSED;

/* Read the key version out of a ciphertext header (no authentication). */
int field_version(const uint8_t *ct, size_t len, uint32_t *version)
    MAMORI_WARN_UNUSED;

/*
 * Check and decrypt.  `k` must be the data key of the version the header
 * names.  On success writes the plaintext and a NUL after it into `out`
 * (outsz must exceed the plaintext), sets *outlen.  On any failure -1,
 * errno EBADMSG, and `out` holds nothing of the plaintext.
 */
int field_decrypt(const struct tenant_key *k, const struct field_ad *ad,
                  const uint8_t *ct, size_t len, char *out, size_t outsz,
                  size_t *outlen) MAMORI_WARN_UNUSED;

/* Keyed hash of `msg` for `purpose` under index key `ik`. */
int field_blind_index(const struct tenant_key *ik, enum bidx_purpose purpose,
                      const void *msg, size_t len, uint8_t out[BIDX_LEN])
    MAMORI_WARN_UNUSED;

/* Blind index of a name (normalised by text_normalize_name) and a birth
 * date "YYYY-MM-DD": ｶﾀｶﾅ, カタカナ and かたかな give the same value. */
int field_bidx_name_dob(const struct tenant_key *ik, const char *name,
                        const char *birth_date, uint8_t out[BIDX_LEN])
    MAMORI_WARN_UNUSED;

#endif
