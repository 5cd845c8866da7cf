/*
 * test_crypto.c - keyring, grants, field AEAD, blind indexes, kana
 * normalisation (R1.1, R1.4, R2.2, R7.7, R9.2).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/util.h"
#include "crypto/field.h"
#include "crypto/keyprov.h"
#include "crypto/keyring.h"
#include "text/normalize.h"

#define T1 "131016"     /* 千代田区 */
#define T2 "011002"     /* 札幌市 */

struct fx {
    char dir[64];
    char mk[128];
    struct keyring *kr;
    int events[16];     /* count per enum keyring_op */
};

static void
count_event(void *arg, const struct keyring_event *ev)
{
    struct fx *f = arg;

    if (ev->ok && (unsigned)ev->op < 16)
        f->events[ev->op]++;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct keyring_events ev = { count_event, f };

    assert_non_null(f);
    strcpy(f->dir, "/tmp/mamori-crypto-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->mk, sizeof(f->mk), "%s/master.key", f->dir);
    assert_int_equal(keyring_master_key_create(f->mk), 0);
    assert_int_equal(keyring_open(f->mk, f->dir, &ev, &f->kr), 0);
    assert_int_equal(keyring_tenant_create(f->kr, T1), 0);
    assert_int_equal(keyring_tenant_create(f->kr, T2), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    keyring_close(f->kr);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static size_t
enc(const struct tenant_key *k, const struct field_ad *ad, const char *s,
    uint8_t *ct)
{
    size_t n;

    assert_int_equal(field_encrypt(k, ad, s, strlen(s), ct, FIELD_CT_MAX, &n), 0);
    return n;
}

static int
dec(const struct tenant_key *k, const struct field_ad *ad, const uint8_t *ct,
    size_t n, char *out)
{
    size_t outlen;

    return field_decrypt(k, ad, ct, n, out, 256, &outlen);
}

/* R1.4: round trip, and the version is carried in the header. */
static void
test_field_roundtrip(void **state)
{
    struct fx *f = *state;
    struct tenant_key *k;
    struct field_ad ad = { T1, "residents", "name", 42 };
    uint8_t ct[FIELD_CT_MAX];
    char out[256];
    uint32_t v;
    size_t n;

    assert_int_equal(keyring_grant_data_key(f->kr, T1, 0, &k), 0);
    n = enc(k, &ad, "テスト 太郎", ct);
    assert_int_equal(n, FIELD_CT_LEN(strlen("テスト 太郎")));
    assert_null(memmem(ct, n, "テスト", strlen("テスト")));
    assert_int_equal(field_version(ct, n, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(dec(k, &ad, ct, n, out), 0);
    assert_string_equal(out, "テスト 太郎");
    /* Empty values encrypt too (padding hides that they are empty). */
    n = enc(k, &ad, "", ct);
    assert_int_equal(dec(k, &ad, ct, n, out), 0);
    assert_string_equal(out, "");
    tenant_key_free(k);
}

/* R1.1, R1.4: a ciphertext moved to another row, column, table or tenant
 * does not decrypt; nor does one with any byte flipped. */
static void
test_field_moved_fails(void **state)
{
    struct fx *f = *state;
    struct tenant_key *k1, *k2;
    struct field_ad ad = { T1, "residents", "name", 7 };
    struct field_ad other_row = { T1, "residents", "name", 8 };
    struct field_ad other_col = { T1, "residents", "kana", 7 };
    struct field_ad other_tab = { T1, "vaccinations", "name", 7 };
    struct field_ad other_ten = { T2, "residents", "name", 7 };
    uint8_t ct[FIELD_CT_MAX];
    char out[256];
    size_t n;

    assert_int_equal(keyring_grant_data_key(f->kr, T1, 1, &k1), 0);
    assert_int_equal(keyring_grant_data_key(f->kr, T2, 1, &k2), 0);
    n = enc(k1, &ad, "テスト 花子", ct);
    assert_int_equal(dec(k1, &ad, ct, n, out), 0);
    assert_int_equal(dec(k1, &other_row, ct, n, out), -1);
    assert_int_equal(dec(k1, &other_col, ct, n, out), -1);
    assert_int_equal(dec(k1, &other_tab, ct, n, out), -1);
    /* Another tenant's key, with that tenant's AD: still nothing. */
    assert_int_equal(dec(k2, &other_ten, ct, n, out), -1);
    /* Key of one tenant with the AD of another is refused outright. */
    assert_int_equal(dec(k1, &other_ten, ct, n, out), -1);
    for (size_t i = 0; i < n; i++) {
        ct[i] ^= 0x01;
        assert_int_equal(dec(k1, &ad, ct, n, out), -1);
        ct[i] ^= 0x01;
    }
    assert_int_equal(dec(k1, &ad, ct, n - 1, out), -1);
    tenant_key_free(k1);
    tenant_key_free(k2);
}

/* R9.2: rotation makes v2 current; v1 ciphertexts still decrypt. */
static void
test_rotate(void **state)
{
    struct fx *f = *state;
    struct tenant_key *k1, *k2, *cur;
    struct field_ad ad = { T1, "residents", "address", 1 };
    uint8_t ct[FIELD_CT_MAX];
    char out[256];
    uint32_t v, dv, kv;
    size_t n;

    assert_int_equal(keyring_grant_data_key(f->kr, T1, 0, &k1), 0);
    n = enc(k1, &ad, "東京都千代田区テスト1-1", ct);
    assert_int_equal(keyring_rotate(f->kr, T1, &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(keyring_versions(f->kr, T1, &dv, &kv), 0);
    assert_int_equal(dv, 2);
    assert_int_equal(keyring_grant_data_key(f->kr, T1, 0, &cur), 0);
    assert_int_equal(cur->version, 2);
    assert_memory_not_equal(cur->key, k1->key, TENANT_KEY_BYTES);
    /* The v1 ciphertext names v1, so v2 cannot open it ... */
    assert_int_equal(dec(cur, &ad, ct, n, out), -1);
    /* ... and v1, granted again, still can. */
    assert_int_equal(keyring_grant_data_key(f->kr, T1, 1, &k2), 0);
    assert_int_equal(dec(k2, &ad, ct, n, out), 0);
    assert_string_equal(out, "東京都千代田区テスト1-1");
    assert_int_equal(f->events[KEYRING_OP_ROTATE], 1);       /* R7.7 */
    assert_int_equal(keyring_rotate(f->kr, "999999", &v), -1);
    tenant_key_free(k1);
    tenant_key_free(k2);
    tenant_key_free(cur);
}

/* R9.2: rewrap changes the KEK (and the keystore file) but not the data
 * or index keys, so stored ciphertexts need no change. */
static void
test_rewrap(void **state)
{
    struct fx *f = *state;
    struct tenant_key *a, *b, *ia, *ib;
    char path[160], *before, *after;
    size_t lb, la;
    uint32_t kv;

    snprintf(path, sizeof(path), "%s/%s", f->dir, KEYRING_FILE);
    assert_int_equal(keyring_grant_data_key(f->kr, T1, 1, &a), 0);
    assert_int_equal(keyring_grant_index_key(f->kr, T1, &ia), 0);
    assert_int_equal(util_read_file(path, 1 << 20, &before, &lb), 0);
    assert_int_equal(keyring_rewrap(f->kr, T1, &kv), 0);
    assert_int_equal(kv, 2);
    assert_int_equal(util_read_file(path, 1 << 20, &after, &la), 0);
    assert_true(lb != la || memcmp(before, after, la) != 0);
    assert_int_equal(keyring_grant_data_key(f->kr, T1, 1, &b), 0);
    assert_int_equal(keyring_grant_index_key(f->kr, T1, &ib), 0);
    assert_memory_equal(a->key, b->key, TENANT_KEY_BYTES);
    assert_memory_equal(ia->key, ib->key, TENANT_KEY_BYTES);
    assert_int_equal(f->events[KEYRING_OP_REWRAP], 1);       /* R7.7 */
    free(before);
    free(after);
    tenant_key_free(a);
    tenant_key_free(b);
    tenant_key_free(ia);
    tenant_key_free(ib);
}

/* R1.4: after erase no key of the tenant can be granted, even after the
 * keystore is read again; other tenants are untouched. */
static void
test_erase(void **state)
{
    struct fx *f = *state;
    struct tenant_key *k, *k2;
    struct keyring *again;
    struct field_ad ad = { T1, "residents", "name", 3 };
    uint8_t ct[FIELD_CT_MAX];
    size_t n;

    assert_int_equal(keyring_grant_data_key(f->kr, T1, 0, &k), 0);
    n = enc(k, &ad, "テスト 次郎", ct);
    tenant_key_free(k);
    assert_int_equal(keyring_erase(f->kr, T1), 0);
    assert_int_equal(f->events[KEYRING_OP_ERASE], 1);
    assert_int_equal(keyring_grant_data_key(f->kr, T1, 1, &k), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(keyring_grant_index_key(f->kr, T1, &k), -1);
    assert_int_equal(keyring_open(f->mk, f->dir, NULL, &again), 0);
    assert_false(keyring_tenant_exists(again, T1));
    assert_int_equal(keyring_grant_data_key(again, T1, 1, &k), -1);
    /* Re-creating the tenant gives new keys: the old text stays sealed. */
    assert_int_equal(keyring_tenant_create(again, T1), 0);
    assert_int_equal(keyring_grant_data_key(again, T1, 1, &k), 0);
    {
        char out[256];
        size_t ol;
        assert_int_equal(field_decrypt(k, &ad, ct, n, out, sizeof(out), &ol), -1);
    }
    assert_int_equal(keyring_grant_data_key(again, T2, 1, &k2), 0);
    tenant_key_free(k);
    tenant_key_free(k2);
    keyring_close(again);
}

/* A keystore edited on disk is refused (MAC), as is another master key. */
static void
test_keystore_tamper(void **state)
{
    struct fx *f = *state;
    struct keyring *kr;
    char path[160], *text;
    size_t len;
    char *p;

    snprintf(path, sizeof(path), "%s/%s", f->dir, KEYRING_FILE);
    assert_int_equal(util_read_file(path, 1 << 20, &text, &len), 0);
    p = strstr(text, "\"kek_version\": 1");
    assert_non_null(p);
    p[strlen("\"kek_version\": ")] = '2';
    assert_int_equal(util_write_file_atomic(path, text, len, 0600), 0);
    assert_int_equal(keyring_open(f->mk, f->dir, NULL, &kr), -1);
    assert_int_equal(errno, EBADMSG);
    p[strlen("\"kek_version\": ")] = '1';
    assert_int_equal(util_write_file_atomic(path, text, len, 0600), 0);
    assert_int_equal(keyring_open(f->mk, f->dir, NULL, &kr), 0);
    keyring_close(kr);
    free(text);
    /* Another master key: the MAC fails, nothing is unwrapped. */
    assert_int_equal(unlink(f->mk), 0);
    assert_int_equal(keyring_master_key_create(f->mk), 0);
    assert_int_equal(keyring_open(f->mk, f->dir, NULL, &kr), -1);
    assert_int_equal(errno, EBADMSG);
}

/* The master key file: 32 bytes, owner-only, created once. */
static void
test_master_key_file(void **state)
{
    struct fx *f = *state;
    struct keyring *kr;
    struct stat st;

    assert_int_equal(stat(f->mk, &st), 0);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(keyring_master_key_create(f->mk), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(chmod(f->mk, 0640), 0);
    assert_int_equal(keyring_open(f->mk, f->dir, NULL, &kr), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(chmod(f->mk, 0600), 0);
    assert_int_equal(truncate(f->mk, 31), 0);
    assert_int_equal(keyring_open(f->mk, f->dir, NULL, &kr), -1);
    assert_int_equal(errno, EINVAL);
}

/* The grant message: round trip, and every malformed form refused. */
static void
test_grant_wire(void **state)
{
    struct fx *f = *state;
    struct tenant_key *k, *back;
    uint8_t buf[KEYGRANT_SIZE + 1];

    assert_int_equal(keyring_grant_data_key(f->kr, T2, 0, &k), 0);
    assert_int_equal(keygrant_encode(k, buf), 0);
    assert_memory_equal(buf, "MKG1\x01\x00" T2 "\x00\x00\x00\x01", 16);
    assert_int_equal(keygrant_decode(buf, KEYGRANT_SIZE, &back), 0);
    assert_int_equal(back->kind, TENANT_KEY_DATA);
    assert_string_equal(back->tenant, T2);
    assert_int_equal(back->version, 1);
    assert_memory_equal(back->key, k->key, TENANT_KEY_BYTES);
    tenant_key_free(back);
    back = NULL;
    assert_int_equal(keygrant_decode(buf, KEYGRANT_SIZE - 1, &back), -1);
    assert_int_equal(keygrant_decode(buf, KEYGRANT_SIZE + 1, &back), -1);
    buf[0] = 'X';
    assert_int_equal(keygrant_decode(buf, KEYGRANT_SIZE, &back), -1);
    buf[0] = 'M';
    buf[4] = 3;
    assert_int_equal(keygrant_decode(buf, KEYGRANT_SIZE, &back), -1);
    buf[4] = 1;
    buf[5] = 1;
    assert_int_equal(keygrant_decode(buf, KEYGRANT_SIZE, &back), -1);
    buf[5] = 0;
    buf[8] = 'a';
    assert_int_equal(keygrant_decode(buf, KEYGRANT_SIZE, &back), -1);
    buf[8] = '1';
    buf[15] = 0;
    assert_int_equal(keygrant_decode(buf, KEYGRANT_SIZE, &back), -1);
    assert_null(back);
    util_wipe(buf, sizeof(buf));
    tenant_key_free(k);
}

static void
test_tenant_id(void **state)
{
    (void)state;
    assert_true(tenant_id_valid("131016"));
    assert_true(tenant_id_valid("011002"));
    assert_false(tenant_id_valid("131017"));
    assert_false(tenant_id_valid("13101"));
    assert_false(tenant_id_valid("1310160"));
    assert_false(tenant_id_valid("13101a"));
    assert_false(tenant_id_valid(NULL));
}

static void
norm(const char *in, const char *want)
{
    char out[256];

    assert_int_equal(text_normalize_name(in, out, sizeof(out)), 0);
    assert_string_equal(out, want);
}

/* Width and kana folding, spaces removed (4情報 search). */
static void
test_normalize(void **state)
{
    char out[8];

    (void)state;
    norm("ｶﾀｶﾅ", "カタカナ");
    norm("かたかな", "カタカナ");
    norm("カタカナ", "カタカナ");
    norm("ﾃｽﾄ ﾀﾞﾛｳ", "テストダロウ");          /* voiced mark composed */
    norm("てすと　たろう", "テストタロウ");      /* U+3000 removed */
    norm("テスト 太郎", "テスト太郎");
    norm("ＴＥＳＴ　ｔａｒｏ", "TESTTARO");
    norm("ゝゞ", "ヽヾ");
    assert_int_equal(text_normalize_name("\xff\xfe", out, sizeof(out)), -1);
    assert_int_equal(errno, EILSEQ);
    assert_int_equal(text_normalize_name("\xe3\x81", out, sizeof(out)), -1);
    assert_int_equal(text_normalize_name("かたかなかたかな", out, sizeof(out)), -1);
    assert_int_equal(errno, ENAMETOOLONG);
}

/* R2.2: blind indexes are equal for equal (normalised) input within a
 * tenant, differ across names, dates, tenants and purposes. */
static void
test_blind_index(void **state)
{
    struct fx *f = *state;
    struct tenant_key *i1, *i2;
    uint8_t a[BIDX_LEN], b[BIDX_LEN], c[BIDX_LEN], d[BIDX_LEN];

    assert_int_equal(keyring_grant_index_key(f->kr, T1, &i1), 0);
    assert_int_equal(keyring_grant_index_key(f->kr, T2, &i2), 0);
    assert_int_equal(field_bidx_name_dob(i1, "ｶﾀｶﾅ", "1950-01-02", a), 0);
    assert_int_equal(field_bidx_name_dob(i1, "カタカナ", "1950-01-02", b), 0);
    assert_int_equal(field_bidx_name_dob(i1, "かたかな", "1950-01-02", c), 0);
    assert_memory_equal(a, b, BIDX_LEN);
    assert_memory_equal(a, c, BIDX_LEN);
    assert_int_equal(field_bidx_name_dob(i1, "カタカナ　", "1950-01-02", d), 0);
    assert_memory_equal(a, d, BIDX_LEN);
    assert_int_equal(field_bidx_name_dob(i1, "カタカタ", "1950-01-02", d), 0);
    assert_memory_not_equal(a, d, BIDX_LEN);
    assert_int_equal(field_bidx_name_dob(i1, "カタカナ", "1950-01-03", d), 0);
    assert_memory_not_equal(a, d, BIDX_LEN);
    assert_int_equal(field_bidx_name_dob(i2, "カタカナ", "1950-01-02", d), 0);
    assert_memory_not_equal(a, d, BIDX_LEN);
    assert_int_equal(field_blind_index(i1, BIDX_MYNUMBER, "123456789018", 12, a), 0);
    assert_int_equal(field_blind_index(i1, BIDX_MYNUMBER, "123456789018", 12, b), 0);
    assert_memory_equal(a, b, BIDX_LEN);
    assert_int_equal(field_blind_index(i2, BIDX_MYNUMBER, "123456789018", 12, c), 0);
    assert_memory_not_equal(a, c, BIDX_LEN);
    assert_int_equal(field_blind_index(i1, BIDX_NAME_DOB, "123456789018", 12, c), 0);
    assert_memory_not_equal(a, c, BIDX_LEN);
    assert_int_equal(field_bidx_name_dob(i1, " 　", "1950-01-02", d), -1);
    /* A data key is not an index key. */
    {
        struct tenant_key *dk;
        assert_int_equal(keyring_grant_data_key(f->kr, T1, 0, &dk), 0);
        assert_int_equal(field_blind_index(dk, BIDX_MYNUMBER, "1", 1, a), -1);
        tenant_key_free(dk);
    }
    tenant_key_free(i1);
    tenant_key_free(i2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_field_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_moved_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keystore_tamper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grant_wire, setup, teardown),
        cmocka_unit_test(test_tenant_id),
        cmocka_unit_test(test_normalize),
        cmocka_unit_test_setup_teardown(test_blind_index, setup, teardown),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
