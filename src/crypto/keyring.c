/*
 * keyring.c - master key, keystore of wrapped tenant keys, grants.
 */
#include "crypto/keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

#define WRAPPED_LEN (crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + \
                     TENANT_KEY_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define KEYSTORE_MAX (16u * 1024 * 1024)
#define KEYSTORE_FORMAT 1

/* Slots of the guarded scratch area used while a key is unwrapped. */
enum { SLOT_KEK = 0, SLOT_NEWKEK, SLOT_KEY, SLOT_COUNT };
/* Slots of the guarded secrets derived from the master key. */
enum { SECRET_WRAP = 0, SECRET_MAC, SECRET_COUNT };

struct ks_dk {
    uint32_t version;
    char     created[25];
    uint8_t  wrapped[WRAPPED_LEN];      /* under the KEK */
};

struct ks_tenant {
    char          id[TENANT_ID_LEN + 1];
    char          created[25];
    uint32_t      kek_version;
    uint8_t       kek[WRAPPED_LEN];     /* under the wrapping key */
    uint8_t       ik[WRAPPED_LEN];      /* under the KEK */
    size_t        ndk;
    struct ks_dk *dk;                   /* ascending versions */
};

struct keyring {
    pthread_mutex_t       mu;
    uint8_t              *secrets;      /* sodium_malloc, noaccess at rest */
    uint8_t              *scratch;      /* sodium_malloc, noaccess at rest */
    char                  path[PATH_MAX];
    struct ks_tenant    **t;
    size_t                n;
    struct keyring_events ev;
};

static uint8_t *
secret(struct keyring *kr, int i)
{
    return kr->secrets + (size_t)i * TENANT_KEY_BYTES;
}

static uint8_t *
slot(struct keyring *kr, int i)
{
    return kr->scratch + (size_t)i * TENANT_KEY_BYTES;
}

/* Open the guarded areas for one locked operation. */
static void
guard_open(struct keyring *kr)
{
    sodium_mprotect_readonly(kr->secrets);
    sodium_mprotect_readwrite(kr->scratch);
}

static void
guard_close(struct keyring *kr)
{
    sodium_memzero(kr->scratch, SLOT_COUNT * TENANT_KEY_BYTES);
    sodium_mprotect_noaccess(kr->scratch);
    sodium_mprotect_noaccess(kr->secrets);
}

const char *
keyring_op_name(enum keyring_op op)
{
    switch (op) {
    case KEYRING_OP_OPEN:          return "keystore_open";
    case KEYRING_OP_TENANT_CREATE: return "tenant_create";
    case KEYRING_OP_ROTATE:        return "rotate";
    case KEYRING_OP_REWRAP:        return "rewrap";
    case KEYRING_OP_ERASE:         return "erase";
    case KEYRING_OP_GRANT_DATA:    return "grant_data_key";
    case KEYRING_OP_GRANT_INDEX:   return "grant_index_key";
    }
    return "unknown";
}

void
keyring_log_event(void *arg, const struct keyring_event *ev)
{
    json_t *f = json_object();
    bool is_grant = ev->op == KEYRING_OP_GRANT_DATA || ev->op == KEYRING_OP_GRANT_INDEX;

    (void)arg;
    if (f == NULL)
        return;
    json_object_set_new(f, "op", json_string(keyring_op_name(ev->op)));
    if (ev->tenant != NULL)
        json_object_set_new(f, "tenant", json_string(ev->tenant));
    if (ev->version != 0)
        json_object_set_new(f, "key_version", json_integer(ev->version));
    if (ev->kek_version != 0)
        json_object_set_new(f, "kek_version", json_integer(ev->kek_version));
    json_object_set_new(f, "result", json_string(ev->ok ? "ok" : "refused"));
    if (!ev->ok)
        json_object_set_new(f, "error", json_string(strerror(ev->err)));
    log_event(!ev->ok ? LOG_LVL_WARN : is_grant ? LOG_LVL_DEBUG : LOG_LVL_INFO,
              "key_op", f);
}

/* R7.7: every key operation, done or refused, reaches the hook. */
static void
emit(struct keyring *kr, enum keyring_op op, const char *tenant,
     uint32_t version, uint32_t kek_version, int ok, int err)
{
    struct keyring_event ev = { op, tenant, version, kek_version, ok, err };

    kr->ev.on_event(kr->ev.arg, &ev);
}

static void
put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* AD = label NUL tenant a(u32 BE) b(u32 BE): a wrapped key only opens in
 * its own slot, for its own tenant and versions. */
static size_t
wrap_ad(uint8_t ad[48], const char *label, const char *tenant, uint32_t a,
        uint32_t b)
{
    size_t n = strlen(label) + 1;

    memcpy(ad, label, n);
    memcpy(ad + n, tenant, TENANT_ID_LEN);
    put_be32(ad + n + TENANT_ID_LEN, a);
    put_be32(ad + n + TENANT_ID_LEN + 4, b);
    return n + TENANT_ID_LEN + 8;
}

static void
wrap(const uint8_t *kek, const char *label, const char *tenant, uint32_t a,
     uint32_t b, const uint8_t *key, uint8_t out[WRAPPED_LEN])
{
    uint8_t ad[48];
    size_t adlen = wrap_ad(ad, label, tenant, a, b);

    randombytes_buf(out, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, NULL, key,
        TENANT_KEY_BYTES, ad, adlen, NULL, out, kek);
}

static int
unwrap(const uint8_t *kek, const char *label, const char *tenant, uint32_t a,
       uint32_t b, const uint8_t in[WRAPPED_LEN], uint8_t *key)
{
    uint8_t ad[48];
    size_t adlen = wrap_ad(ad, label, tenant, a, b);

    if (crypto_aead_xchacha20poly1305_ietf_decrypt(key, NULL, NULL,
            in + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
            WRAPPED_LEN - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
            ad, adlen, in, kek) != 0) {
        errno = EBADMSG;
        return -1;
    }
    return 0;
}

/* Unwrap the tenant's KEK into `dst` (a scratch slot). */
static int
unwrap_kek(struct keyring *kr, const struct ks_tenant *t, uint8_t *dst)
{
    return unwrap(secret(kr, SECRET_WRAP), "mamori-kek", t->id,
                  t->kek_version, 0, t->kek, dst);
}

static void
tenant_free(struct ks_tenant *t)
{
    if (t == NULL)
        return;
    if (t->dk != NULL) {
        sodium_memzero(t->dk, t->ndk * sizeof(*t->dk));
        free(t->dk);
    }
    sodium_memzero(t, sizeof(*t));
    free(t);
}

/* Deep copy with room for `extra` more data keys. */
static struct ks_tenant *
tenant_clone(const struct ks_tenant *src, size_t extra)
{
    struct ks_tenant *t = malloc(sizeof(*t));

    if (t == NULL)
        return NULL;
    *t = *src;
    t->dk = calloc(src->ndk + extra, sizeof(*t->dk));
    if (t->dk == NULL) {
        free(t);
        return NULL;
    }
    if (src->ndk > 0)
        memcpy(t->dk, src->dk, src->ndk * sizeof(*t->dk));
    return t;
}

static struct ks_tenant *
find(struct keyring *kr, const char *tenant, size_t *idx)
{
    for (size_t i = 0; i < kr->n; i++) {
        if (strcmp(kr->t[i]->id, tenant) == 0) {
            if (idx != NULL)
                *idx = i;
            return kr->t[i];
        }
    }
    return NULL;
}

/* ---- keystore file ---------------------------------------------------- */

static json_t *
hexstr(const uint8_t *p, size_t n)
{
    char buf[2 * WRAPPED_LEN + 1];

    if (util_hex_encode(p, n, buf, sizeof(buf)) != 0)
        return NULL;
    return json_string(buf);
}

static json_t *
tenant_json(const struct ks_tenant *t)
{
    json_t *o = json_object(), *dks = json_array();

    if (o == NULL || dks == NULL) {
        json_decref(o);
        json_decref(dks);
        return NULL;
    }
    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "created", json_string(t->created));
    json_object_set_new(o, "kek_version", json_integer(t->kek_version));
    json_object_set_new(o, "kek", hexstr(t->kek, WRAPPED_LEN));
    json_object_set_new(o, "index_key", hexstr(t->ik, WRAPPED_LEN));
    for (size_t i = 0; i < t->ndk; i++) {
        json_t *d = json_object();
        if (d == NULL)
            break;
        json_object_set_new(d, "version", json_integer(t->dk[i].version));
        json_object_set_new(d, "created", json_string(t->dk[i].created));
        json_object_set_new(d, "key", hexstr(t->dk[i].wrapped, WRAPPED_LEN));
        json_array_append_new(dks, d);
    }
    json_object_set_new(o, "data_keys", dks);
    return o;
}

/* MAC over the compact, key-sorted dump of everything but "mac". */
static int
body_mac(struct keyring *kr, json_t *body, uint8_t mac[32])
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);

    if (text == NULL) {
        errno = ENOMEM;
        return -1;
    }
    crypto_generichash(mac, 32, (const uint8_t *)text, strlen(text),
                       secret(kr, SECRET_MAC), TENANT_KEY_BYTES);
    free(text);
    return 0;
}

/* Write `list` as the keystore, durably.  Needs guard_open. */
static int
ks_save(struct keyring *kr, struct ks_tenant *const *list, size_t n)
{
    json_t *body = json_object(), *arr = json_array();
    uint8_t mac[32];
    char *text = NULL;
    int rc = -1;

    if (body == NULL || arr == NULL) {
        json_decref(body);
        json_decref(arr);
        errno = ENOMEM;
        return -1;
    }
    json_object_set_new(body, "format", json_integer(KEYSTORE_FORMAT));
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, tenant_json(list[i]));
    json_object_set_new(body, "tenants", arr);
    if (body_mac(kr, body, mac) != 0)
        goto out;
    json_object_set_new(body, "mac", hexstr(mac, sizeof(mac)));
    text = json_dumps(body, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (text == NULL) {
        errno = ENOMEM;
        goto out;
    }
    rc = util_write_file_atomic(kr->path, text, strlen(text), 0600);
out:
    free(text);
    json_decref(body);
    return rc;
}

static int
get_hex(json_t *o, const char *key, uint8_t *out, size_t n)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? util_hex_decode(s, out, n) : -1;
}

static int
get_u32(json_t *o, const char *key, uint32_t *out)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > (json_int_t)UINT32_MAX)
        return -1;
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

static int
get_str(json_t *o, const char *key, char *out, size_t outsz)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? util_strcpy(out, outsz, s) : -1;
}

static struct ks_tenant *
tenant_parse(json_t *o)
{
    struct ks_tenant *t = calloc(1, sizeof(*t));
    json_t *dks = json_object_get(o, "data_keys");
    size_t i;

    if (t == NULL)
        return NULL;
    if (get_str(o, "id", t->id, sizeof(t->id)) != 0 || !tenant_id_valid(t->id) ||
        get_str(o, "created", t->created, sizeof(t->created)) != 0 ||
        get_u32(o, "kek_version", &t->kek_version) != 0 ||
        get_hex(o, "kek", t->kek, WRAPPED_LEN) != 0 ||
        get_hex(o, "index_key", t->ik, WRAPPED_LEN) != 0 ||
        !json_is_array(dks) || json_array_size(dks) == 0)
        goto bad;
    t->ndk = json_array_size(dks);
    t->dk = calloc(t->ndk, sizeof(*t->dk));
    if (t->dk == NULL)
        goto bad;
    for (i = 0; i < t->ndk; i++) {
        json_t *d = json_array_get(dks, i);
        if (get_u32(d, "version", &t->dk[i].version) != 0 ||
            get_str(d, "created", t->dk[i].created, sizeof(t->dk[i].created)) != 0 ||
            get_hex(d, "key", t->dk[i].wrapped, WRAPPED_LEN) != 0 ||
            (i > 0 && t->dk[i].version <= t->dk[i - 1].version))
            goto bad;
    }
    return t;
bad:
    tenant_free(t);
    return NULL;
}

static int
ks_parse(struct keyring *kr, json_t *root)
{
    json_t *arr = json_object_get(root, "tenants");
    uint8_t mac[32], want[32];

    if (!json_is_object(root) || get_hex(root, "mac", want, sizeof(want)) != 0 ||
        json_integer_value(json_object_get(root, "format")) != KEYSTORE_FORMAT ||
        !json_is_array(arr))
        return -1;
    json_object_del(root, "mac");
    if (body_mac(kr, root, mac) != 0 || !util_ct_equal(mac, want, sizeof(mac)))
        return -1;      /* edited, forged, or another master key */
    kr->t = calloc(json_array_size(arr) + 1, sizeof(*kr->t));
    if (kr->t == NULL)
        return -1;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        struct ks_tenant *t = tenant_parse(json_array_get(arr, i));
        if (t == NULL || find(kr, t->id, NULL) != NULL) {
            tenant_free(t);
            return -1;
        }
        kr->t[kr->n++] = t;
    }
    return 0;
}

static int
ks_load(struct keyring *kr)
{
    char *text;
    size_t len;
    json_t *root;
    int rc;

    if (util_read_file(kr->path, KEYSTORE_MAX, &text, &len) != 0) {
        if (errno != ENOENT)
            return -1;
        kr->t = calloc(1, sizeof(*kr->t));     /* fresh, empty keystore */
        return kr->t != NULL ? 0 : -1;
    }
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    rc = root != NULL ? ks_parse(kr, root) : -1;
    json_decref(root);
    if (rc != 0)
        errno = EBADMSG;
    return rc;
}

/* ---- master key ---------------------------------------------------------- */

int
keyring_master_key_create(const char *path)
{
    uint8_t *mk;
    int rc;

    if (access(path, F_OK) == 0) {
        errno = EEXIST;
        return -1;
    }
    mk = sodium_malloc(KEYRING_MASTER_KEY_BYTES);
    if (mk == NULL)
        return -1;
    randombytes_buf(mk, KEYRING_MASTER_KEY_BYTES);
    rc = util_write_file_atomic(path, mk, KEYRING_MASTER_KEY_BYTES, 0600);
    sodium_free(mk);
    return rc;
}

/* Read exactly 32 bytes from an owner-only regular file into mk. */
static int
read_master_key(const char *path, uint8_t *mk)
{
    struct stat st;
    uint8_t extra;
    ssize_t r;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size != KEYRING_MASTER_KEY_BYTES) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    while (got < KEYRING_MASTER_KEY_BYTES) {
        r = read(fd, mk + got, KEYRING_MASTER_KEY_BYTES - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    r = read(fd, &extra, 1);
    close(fd);
    if (got != KEYRING_MASTER_KEY_BYTES || r != 0) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

static int
derive_secrets(struct keyring *kr, const char *master_key_path)
{
    uint8_t *mk = sodium_malloc(KEYRING_MASTER_KEY_BYTES);
    int rc = -1;

    if (mk == NULL)
        return -1;
    if (read_master_key(master_key_path, mk) == 0 &&
        crypto_kdf_derive_from_key(secret(kr, SECRET_WRAP), TENANT_KEY_BYTES,
                                   1, "mamoriMK", mk) == 0 &&
        crypto_kdf_derive_from_key(secret(kr, SECRET_MAC), TENANT_KEY_BYTES,
                                   2, "mamoriMK", mk) == 0)
        rc = 0;
    sodium_free(mk);    /* the master key itself is not kept */
    return rc;
}

int
keyring_open(const char *master_key_path, const char *keys_dir,
             const struct keyring_events *ev, struct keyring **out)
{
    struct keyring *kr = calloc(1, sizeof(*kr));
    int e;

    if (kr == NULL)
        return -1;
    kr->ev.on_event = keyring_log_event;
    if (ev != NULL && ev->on_event != NULL)
        kr->ev = *ev;
    pthread_mutex_init(&kr->mu, NULL);
    kr->secrets = sodium_malloc(SECRET_COUNT * TENANT_KEY_BYTES);
    kr->scratch = sodium_malloc(SLOT_COUNT * TENANT_KEY_BYTES);
    if (kr->secrets == NULL || kr->scratch == NULL ||
        util_path_join(kr->path, sizeof(kr->path), keys_dir, KEYRING_FILE) != 0 ||
        derive_secrets(kr, master_key_path) != 0)
        goto fail;
    if (ks_load(kr) != 0)
        goto fail;
    guard_close(kr);
    emit(kr, KEYRING_OP_OPEN, NULL, 0, 0, 1, 0);
    *out = kr;
    return 0;
fail:
    e = errno;
    if (kr->secrets != NULL)
        emit(kr, KEYRING_OP_OPEN, NULL, 0, 0, 0, e);
    keyring_close(kr);
    errno = e;
    return -1;
}

void
keyring_close(struct keyring *kr)
{
    if (kr == NULL)
        return;
    for (size_t i = 0; i < kr->n; i++)
        tenant_free(kr->t[i]);
    free(kr->t);
    if (kr->secrets != NULL)
        sodium_free(kr->secrets);
    if (kr->scratch != NULL)
        sodium_free(kr->scratch);
    pthread_mutex_destroy(&kr->mu);
    free(kr);
}

/* ---- mutations ------------------------------------------------------------ */

/*
 * Make `list` (n entries) the keystore: durable first, then in memory.
 * On success the old array and `drop` (a replaced or erased tenant) are
 * freed; on failure the caller still owns `list` and what it added.
 */
static int
commit_list(struct keyring *kr, struct ks_tenant **list, size_t n,
            struct ks_tenant *drop)
{
    if (ks_save(kr, list, n) != 0)
        return -1;
    free(kr->t);
    kr->t = list;
    kr->n = n;
    tenant_free(drop);
    return 0;
}

/* Copy of the tenant array with entry `idx` replaced by `with` (or removed
 * if `with` is NULL), or with `with` appended if idx == kr->n. */
static struct ks_tenant **
list_with(struct keyring *kr, size_t idx, struct ks_tenant *with, size_t *n)
{
    struct ks_tenant **list = calloc(kr->n + 1, sizeof(*list));
    size_t j = 0;

    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < kr->n; i++) {
        if (i != idx)
            list[j++] = kr->t[i];
        else if (with != NULL)
            list[j++] = with;
    }
    if (idx == kr->n)
        list[j++] = with;
    *n = j;
    return list;
}

static int
replace_tenant(struct keyring *kr, size_t idx, struct ks_tenant *with)
{
    size_t n;
    struct ks_tenant **list = list_with(kr, idx, with, &n);
    struct ks_tenant *old = idx < kr->n ? kr->t[idx] : NULL;

    if (list == NULL)
        return -1;
    if (commit_list(kr, list, n, old) != 0) {
        free(list);
        return -1;
    }
    return 0;
}

static struct ks_tenant *
tenant_generate(struct keyring *kr, const char *tenant)
{
    struct ks_tenant *t = calloc(1, sizeof(*t));

    if (t == NULL || (t->dk = calloc(1, sizeof(*t->dk))) == NULL) {
        free(t);
        return NULL;
    }
    memcpy(t->id, tenant, TENANT_ID_LEN + 1);
    util_utc_now(t->created);
    t->kek_version = 1;
    t->ndk = 1;
    t->dk[0].version = 1;
    memcpy(t->dk[0].created, t->created, sizeof(t->created));
    /* Keys come from libsodium's generators only. */
    crypto_aead_xchacha20poly1305_ietf_keygen(slot(kr, SLOT_KEK));
    wrap(secret(kr, SECRET_WRAP), "mamori-kek", t->id, 1, 0,
         slot(kr, SLOT_KEK), t->kek);
    crypto_kdf_keygen(slot(kr, SLOT_KEY));
    wrap(slot(kr, SLOT_KEK), "mamori-ik", t->id, 1, 0, slot(kr, SLOT_KEY), t->ik);
    crypto_aead_xchacha20poly1305_ietf_keygen(slot(kr, SLOT_KEY));
    wrap(slot(kr, SLOT_KEK), "mamori-dk", t->id, 1, 1, slot(kr, SLOT_KEY),
         t->dk[0].wrapped);
    return t;
}

int
keyring_tenant_create(struct keyring *kr, const char *tenant)
{
    struct ks_tenant *t = NULL;
    int rc = -1, e = 0;

    if (!tenant_id_valid(tenant)) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&kr->mu);
    guard_open(kr);
    if (find(kr, tenant, NULL) != NULL)
        e = EEXIST;
    else if ((t = tenant_generate(kr, tenant)) == NULL)
        e = ENOMEM;
    else if (replace_tenant(kr, kr->n, t) != 0) {
        e = errno;
        tenant_free(t);
    } else
        rc = 0;
    guard_close(kr);
    emit(kr, KEYRING_OP_TENANT_CREATE, tenant, rc == 0 ? 1 : 0,
         rc == 0 ? 1 : 0, rc == 0, e);
    pthread_mutex_unlock(&kr->mu);
    errno = e;
    return rc;
}

int
keyring_tenant_exists(struct keyring *kr, const char *tenant)
{
    int found;

    pthread_mutex_lock(&kr->mu);
    found = tenant != NULL && find(kr, tenant, NULL) != NULL;
    pthread_mutex_unlock(&kr->mu);
    return found;
}

static int
rotate_locked(struct keyring *kr, const char *tenant, uint32_t *v)
{
    size_t idx;
    struct ks_tenant *cur = find(kr, tenant, &idx), *t;
    struct ks_dk *d;

    if (cur == NULL) {
        errno = ENOENT;
        return -1;
    }
    if (cur->dk[cur->ndk - 1].version == UINT32_MAX) {
        errno = EOVERFLOW;
        return -1;
    }
    if (unwrap_kek(kr, cur, slot(kr, SLOT_KEK)) != 0 ||
        (t = tenant_clone(cur, 1)) == NULL)
        return -1;
    d = &t->dk[t->ndk];
    d->version = cur->dk[cur->ndk - 1].version + 1;
    util_utc_now(d->created);
    crypto_aead_xchacha20poly1305_ietf_keygen(slot(kr, SLOT_KEY));
    wrap(slot(kr, SLOT_KEK), "mamori-dk", t->id, d->version, t->kek_version,
         slot(kr, SLOT_KEY), d->wrapped);
    t->ndk++;
    if (replace_tenant(kr, idx, t) != 0) {
        int e = errno;
        tenant_free(t);
        errno = e;
        return -1;
    }
    *v = d->version;
    return 0;
}

int
keyring_rotate(struct keyring *kr, const char *tenant, uint32_t *new_version)
{
    uint32_t v = 0;
    int rc, e;

    pthread_mutex_lock(&kr->mu);
    guard_open(kr);
    rc = rotate_locked(kr, tenant, &v);
    e = rc == 0 ? 0 : errno;
    guard_close(kr);
    emit(kr, KEYRING_OP_ROTATE, tenant, v, 0, rc == 0, e);
    pthread_mutex_unlock(&kr->mu);
    if (rc == 0 && new_version != NULL)
        *new_version = v;
    errno = e;
    return rc;
}

/* Unwrap every key under the old KEK and wrap it under a fresh one. */
static int
rewrap_into(struct keyring *kr, const struct ks_tenant *cur, struct ks_tenant *t)
{
    uint32_t nv = cur->kek_version + 1;

    crypto_aead_xchacha20poly1305_ietf_keygen(slot(kr, SLOT_NEWKEK));
    if (unwrap(slot(kr, SLOT_KEK), "mamori-ik", cur->id, cur->kek_version, 0,
               cur->ik, slot(kr, SLOT_KEY)) != 0)
        return -1;
    wrap(slot(kr, SLOT_NEWKEK), "mamori-ik", t->id, nv, 0, slot(kr, SLOT_KEY), t->ik);
    for (size_t i = 0; i < cur->ndk; i++) {
        if (unwrap(slot(kr, SLOT_KEK), "mamori-dk", cur->id, cur->dk[i].version,
                   cur->kek_version, cur->dk[i].wrapped, slot(kr, SLOT_KEY)) != 0)
            return -1;
        wrap(slot(kr, SLOT_NEWKEK), "mamori-dk", t->id, t->dk[i].version, nv,
             slot(kr, SLOT_KEY), t->dk[i].wrapped);
    }
    wrap(secret(kr, SECRET_WRAP), "mamori-kek", t->id, nv, 0,
         slot(kr, SLOT_NEWKEK), t->kek);
    t->kek_version = nv;
    return 0;
}

static int
rewrap_locked(struct keyring *kr, const char *tenant, uint32_t *kv)
{
    size_t idx;
    struct ks_tenant *cur = find(kr, tenant, &idx), *t;

    if (cur == NULL) {
        errno = ENOENT;
        return -1;
    }
    if (cur->kek_version == UINT32_MAX) {
        errno = EOVERFLOW;
        return -1;
    }
    if (unwrap_kek(kr, cur, slot(kr, SLOT_KEK)) != 0 ||
        (t = tenant_clone(cur, 0)) == NULL)
        return -1;
    if (rewrap_into(kr, cur, t) != 0 || replace_tenant(kr, idx, t) != 0) {
        int e = errno;
        tenant_free(t);
        errno = e;
        return -1;
    }
    *kv = t->kek_version;
    return 0;
}

int
keyring_rewrap(struct keyring *kr, const char *tenant, uint32_t *new_kek_version)
{
    uint32_t kv = 0;
    int rc, e;

    pthread_mutex_lock(&kr->mu);
    guard_open(kr);
    rc = rewrap_locked(kr, tenant, &kv);
    e = rc == 0 ? 0 : errno;
    guard_close(kr);
    emit(kr, KEYRING_OP_REWRAP, tenant, 0, kv, rc == 0, e);
    pthread_mutex_unlock(&kr->mu);
    if (rc == 0 && new_kek_version != NULL)
        *new_kek_version = kv;
    errno = e;
    return rc;
}

int
keyring_erase(struct keyring *kr, const char *tenant)
{
    size_t idx, n;
    struct ks_tenant **list;
    int rc = -1, e = 0;

    pthread_mutex_lock(&kr->mu);
    guard_open(kr);
    if (tenant == NULL || find(kr, tenant, &idx) == NULL)
        e = ENOENT;
    else if ((list = list_with(kr, idx, NULL, &n)) == NULL)
        e = ENOMEM;
    else if (commit_list(kr, list, n, kr->t[idx]) != 0) {
        e = errno;
        free(list);
    } else
        rc = 0;
    guard_close(kr);
    emit(kr, KEYRING_OP_ERASE, tenant, 0, 0, rc == 0, e);
    pthread_mutex_unlock(&kr->mu);
    errno = e;
    return rc;
}

int
keyring_versions(struct keyring *kr, const char *tenant, uint32_t *data_version,
                 uint32_t *kek_version)
{
    struct ks_tenant *t;
    int rc = -1;

    pthread_mutex_lock(&kr->mu);
    t = tenant != NULL ? find(kr, tenant, NULL) : NULL;
    if (t != NULL) {
        if (data_version != NULL)
            *data_version = t->dk[t->ndk - 1].version;
        if (kek_version != NULL)
            *kek_version = t->kek_version;
        rc = 0;
    }
    pthread_mutex_unlock(&kr->mu);
    if (rc != 0)
        errno = ENOENT;
    return rc;
}

/* ---- grants --------------------------------------------------------------- */

static int
grant_locked(struct keyring *kr, const char *tenant, enum tenant_key_kind kind,
             uint32_t *version, struct tenant_key **out)
{
    struct ks_tenant *t = find(kr, tenant, NULL);
    const struct ks_dk *d = NULL;

    if (t == NULL) {
        errno = ENOENT;
        return -1;
    }
    if (kind == TENANT_KEY_DATA) {
        for (size_t i = 0; i < t->ndk; i++)
            if (t->dk[i].version == *version ||
                (*version == 0 && i == t->ndk - 1))
                d = &t->dk[i];
        if (d == NULL) {
            errno = ENOENT;
            return -1;
        }
        *version = d->version;
    } else
        *version = 1;
    if (unwrap_kek(kr, t, slot(kr, SLOT_KEK)) != 0)
        return -1;
    if (kind == TENANT_KEY_DATA ?
        unwrap(slot(kr, SLOT_KEK), "mamori-dk", t->id, d->version,
               t->kek_version, d->wrapped, slot(kr, SLOT_KEY)) :
        unwrap(slot(kr, SLOT_KEK), "mamori-ik", t->id, t->kek_version, 0,
               t->ik, slot(kr, SLOT_KEY)))
        return -1;
    return tenant_key_new(kind, t->id, *version, slot(kr, SLOT_KEY), out);
}

static int
grant(struct keyring *kr, const char *tenant, enum tenant_key_kind kind,
      uint32_t version, struct tenant_key **out)
{
    int rc, e;

    if (kr == NULL || out == NULL || !tenant_id_valid(tenant)) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&kr->mu);
    guard_open(kr);
    rc = grant_locked(kr, tenant, kind, &version, out);
    e = rc == 0 ? 0 : errno;
    guard_close(kr);
    emit(kr, kind == TENANT_KEY_DATA ? KEYRING_OP_GRANT_DATA : KEYRING_OP_GRANT_INDEX,
         tenant, version, 0, rc == 0, e);
    pthread_mutex_unlock(&kr->mu);
    errno = e;
    return rc;
}

int
keyring_grant_data_key(struct keyring *kr, const char *tenant, uint32_t version,
                       struct tenant_key **out)
{
    return grant(kr, tenant, TENANT_KEY_DATA, version, out);
}

int
keyring_grant_index_key(struct keyring *kr, const char *tenant,
                        struct tenant_key **out)
{
    return grant(kr, tenant, TENANT_KEY_INDEX, 1, out);
}

static int
prov_current(void *arg, const char *tenant, struct tenant_key **out)
{
    return keyring_grant_data_key(arg, tenant, 0, out);
}

static int
prov_data(void *arg, const char *tenant, uint32_t version, struct tenant_key **out)
{
    if (version == 0) {
        errno = EINVAL;
        return -1;
    }
    return keyring_grant_data_key(arg, tenant, version, out);
}

static int
prov_index(void *arg, const char *tenant, struct tenant_key **out)
{
    return keyring_grant_index_key(arg, tenant, out);
}

void
keyring_provider(struct keyring *kr, struct key_provider *out)
{
    out->current_key = prov_current;
    out->data_key = prov_data;
    out->index_key = prov_index;
    out->arg = kr;
}
