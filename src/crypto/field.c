/*
 * field.c - field AEAD bound to its place, and keyed blind indexes.
 */
#include "crypto/field.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "text/normalize.h"

#define AD_MAX (13 + 1 + 3 * (1 + FIELD_NAME_MAX) + 8 + 4)

static void
put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int
put_str(uint8_t *ad, size_t *off, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > FIELD_NAME_MAX)
        return -1;
    ad[(*off)++] = (uint8_t)n;
    memcpy(ad + *off, s, n);
    *off += n;
    return 0;
}

/* Length-prefixed, so ("ab","c") and ("a","bc") never collide. */
static int
build_ad(const struct field_ad *fa, uint32_t version, uint8_t ad[AD_MAX],
         size_t *adlen)
{
    size_t off = 0;
    uint64_t row = (uint64_t)fa->row_id;

    memcpy(ad, "mamori-field", 13);     /* includes the NUL */
    off = 13;
    ad[off++] = FIELD_FORMAT_V1;
    if (put_str(ad, &off, fa->tenant) != 0 || put_str(ad, &off, fa->table) != 0 ||
        put_str(ad, &off, fa->column) != 0) {
        errno = EINVAL;
        return -1;
    }
    put_be32(ad + off, (uint32_t)(row >> 32));
    put_be32(ad + off + 4, (uint32_t)row);
    put_be32(ad + off + 8, version);
    *adlen = off + 12;
    return 0;
}

/*
 * Nonces come from randombytes_buf, drawn 4 KiB at a time per thread: one
 * getrandom() per 170 fields instead of one per field (it dominated the
 * insert profile).  A forked child starts with an empty pool, so parent
 * and child never hand out the same bytes; each nonce is wiped from the
 * pool as it is taken.
 */
#define NONCE_LEN  crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define NONCE_POOL (170 * NONCE_LEN)

static _Thread_local uint8_t nonce_pool[NONCE_POOL];
static _Thread_local size_t  nonce_off = NONCE_POOL;
static pthread_once_t        nonce_once = PTHREAD_ONCE_INIT;

static void
nonce_pool_drop(void)
{
    sodium_memzero(nonce_pool, sizeof(nonce_pool));
    nonce_off = NONCE_POOL;
}

static void
nonce_pool_init(void)
{
    (void)pthread_atfork(NULL, NULL, nonce_pool_drop);
}

static void
next_nonce(uint8_t out[NONCE_LEN])
{
    (void)pthread_once(&nonce_once, nonce_pool_init);
    if (nonce_off + NONCE_LEN > NONCE_POOL) {
        randombytes_buf(nonce_pool, NONCE_POOL);
        nonce_off = 0;
    }
    memcpy(out, nonce_pool + nonce_off, NONCE_LEN);
    sodium_memzero(nonce_pool + nonce_off, NONCE_LEN);
    nonce_off += NONCE_LEN;
}

static int
key_fits(const struct tenant_key *k, const struct field_ad *ad)
{
    if (k == NULL || ad == NULL || k->kind != TENANT_KEY_DATA ||
        ad->tenant == NULL || strcmp(k->tenant, ad->tenant) != 0) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int
field_encrypt(const struct tenant_key *k, const struct field_ad *ad,
              const void *plain, size_t plen, uint8_t *out, size_t outsz,
              size_t *outlen)
{
    uint8_t adbuf[AD_MAX], padded[FIELD_PLAIN_MAX + FIELD_PAD_BLOCK];
    size_t adlen, plen_padded;
    unsigned long long clen;

    if (key_fits(k, ad) != 0 || plen > FIELD_PLAIN_MAX ||
        outsz < FIELD_CT_LEN(plen) || build_ad(ad, k->version, adbuf, &adlen) != 0) {
        errno = EINVAL;
        return -1;
    }
    memcpy(padded, plain, plen);
    if (sodium_pad(&plen_padded, padded, plen, FIELD_PAD_BLOCK,
                   sizeof(padded)) != 0) {
        util_wipe(padded, sizeof(padded));
        errno = EINVAL;
        return -1;
    }
    out[0] = FIELD_FORMAT_V1;
    put_be32(out + 1, k->version);
    next_nonce(out + 5);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + FIELD_HEADER_LEN, &clen,
        padded, plen_padded, adbuf, adlen, NULL, out + 5, k->key);
    util_wipe(padded, plen_padded);
    *outlen = FIELD_HEADER_LEN + (size_t)clen;
    return 0;
}

int
field_version(const uint8_t *ct, size_t len, uint32_t *version)
{
    if (ct == NULL || len < FIELD_HEADER_LEN + FIELD_PAD_BLOCK + FIELD_TAG_LEN ||
        ct[0] != FIELD_FORMAT_V1) {
        errno = EBADMSG;
        return -1;
    }
    *version = (uint32_t)ct[1] << 24 | (uint32_t)ct[2] << 16 |
        (uint32_t)ct[3] << 8 | ct[4];
    return 0;
}

int
field_decrypt(const struct tenant_key *k, const struct field_ad *ad,
              const uint8_t *ct, size_t len, char *out, size_t outsz,
              size_t *outlen)
{
    uint8_t adbuf[AD_MAX], padded[FIELD_PLAIN_MAX + FIELD_PAD_BLOCK];
    unsigned long long plen;
    size_t adlen, unpadded;
    uint32_t version;
    int rc = -1;

    if (field_version(ct, len, &version) != 0 || key_fits(k, ad) != 0 ||
        version != k->version ||
        len > FIELD_HEADER_LEN + sizeof(padded) + FIELD_TAG_LEN ||
        build_ad(ad, version, adbuf, &adlen) != 0) {
        errno = EBADMSG;
        return -1;
    }
    /* The tag is checked before any plaintext is written. */
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(padded, &plen, NULL,
            ct + FIELD_HEADER_LEN, len - FIELD_HEADER_LEN, adbuf, adlen,
            ct + 5, k->key) != 0)
        goto out;
    if (sodium_unpad(&unpadded, padded, (size_t)plen, FIELD_PAD_BLOCK) != 0 ||
        unpadded >= outsz)
        goto out;
    memcpy(out, padded, unpadded);
    out[unpadded] = '\0';
    *outlen = unpadded;
    rc = 0;
out:
    util_wipe(padded, sizeof(padded));
    if (rc != 0)
        errno = EBADMSG;
    return rc;
}

int
field_blind_index(const struct tenant_key *ik, enum bidx_purpose purpose,
                  const void *msg, size_t len, uint8_t out[BIDX_LEN])
{
    uint8_t sub[crypto_generichash_KEYBYTES];

    if (ik == NULL || ik->kind != TENANT_KEY_INDEX ||
        (purpose != BIDX_MYNUMBER && purpose != BIDX_NAME_DOB)) {
        errno = EINVAL;
        return -1;
    }
    /* One subkey per purpose: a number and a name never share a space. */
    if (crypto_kdf_derive_from_key(sub, sizeof(sub), (uint64_t)purpose,
                                   "mamoriBI", ik->key) != 0) {
        errno = EINVAL;
        return -1;
    }
    crypto_generichash(out, BIDX_LEN, msg, len, sub, sizeof(sub));
    util_wipe(sub, sizeof(sub));
    return 0;
}

int
field_bidx_name_dob(const struct tenant_key *ik, const char *name,
                    const char *birth_date, uint8_t out[BIDX_LEN])
{
    char norm[TEXT_NAME_MAX * 2 + 16];
    size_t n;
    int rc;

    if (name == NULL || birth_date == NULL ||
        text_normalize_name(name, norm, sizeof(norm) - 16) != 0 || norm[0] == '\0') {
        util_wipe(norm, sizeof(norm));
        errno = EINVAL;
        return -1;
    }
    /* name NUL date: the separator cannot occur inside either part. */
    n = strlen(norm);
    if (strlen(birth_date) > 10) {
        util_wipe(norm, sizeof(norm));
        errno = EINVAL;
        return -1;
    }
    memcpy(norm + n + 1, birth_date, strlen(birth_date));
    n += 1 + strlen(birth_date);
    rc = field_blind_index(ik, BIDX_NAME_DOB, norm, n, out);
    util_wipe(norm, sizeof(norm));
    return rc;
}
