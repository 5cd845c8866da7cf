/*
 * password.c - password policy, blocklist and Argon2id hashing (R6.3).
 */
#include "auth/password.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BL_MAX_ENTRIES 100000
#define BL_FILE_MAX    (4u * 1024u * 1024u)

struct pw_blocklist {
    char  **v;
    size_t  n;
    char   *text;      /* the file, lines NUL-terminated in place */
};

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
auth_blocklist_load(const char *path, struct pw_blocklist **out)
{
    struct pw_blocklist *bl = calloc(1, sizeof(*bl));
    size_t len;
    char *p, *line, *save = NULL;

    if (bl == NULL)
        return -1;
    if (util_read_file(path, BL_FILE_MAX, &bl->text, &len) != 0 ||
        (bl->v = calloc(BL_MAX_ENTRIES, sizeof(*bl->v))) == NULL) {
        auth_blocklist_free(bl);
        return -1;
    }
    for (p = bl->text; (line = strtok_r(p, "\r\n", &save)) != NULL; p = NULL) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (bl->n == BL_MAX_ENTRIES) {
            auth_blocklist_free(bl);
            errno = EFBIG;
            return -1;
        }
        for (char *c = line; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        bl->v[bl->n++] = line;
    }
    qsort(bl->v, bl->n, sizeof(*bl->v), cmp_str);
    *out = bl;
    return 0;
}

void
auth_blocklist_free(struct pw_blocklist *bl)
{
    if (bl == NULL)
        return;
    free(bl->v);
    free(bl->text);
    free(bl);
}

bool
auth_blocklist_contains(const struct pw_blocklist *bl, const char *pw)
{
    char low[PW_MAX_BYTES + 1];
    const char *key = low;
    size_t n = strlen(pw);

    if (bl == NULL || n > PW_MAX_BYTES)
        return false;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)pw[i]);
    bool found = bsearch(&key, bl->v, bl->n, sizeof(*bl->v), cmp_str) != NULL;
    util_wipe(low, sizeof(low));
    return found;
}

/* Case-insensitive substring test (user IDs are ASCII). */
static bool
contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);

    if (n == 0)
        return false;
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

const char *
auth_password_check(enum pw_profile profile, const char *pw, const char *user_id,
                    const struct pw_blocklist *bl)
{
    size_t len = strlen(pw), chars = 0;
    int upper = 0, lower = 0, digit = 0, symbol = 0;

    if (len > PW_MAX_BYTES)
        return "too_long";
    /* Count characters, not bytes: a multi-byte UTF-8 sequence is one. */
    for (const unsigned char *c = (const unsigned char *)pw; *c; c++) {
        if ((*c & 0xc0) != 0x80)
            chars++;
        if (*c < 0x20 || *c == 0x7f)
            return "invalid";
        if (isupper(*c))
            upper = 1;
        else if (islower(*c))
            lower = 1;
        else if (isdigit(*c))
            digit = 1;
        else
            symbol = 1;          /* punctuation, space or non-ASCII */
    }
    if (chars < 8)                                  /* R6.3; NIST with MFA */
        return "too_short";
    if (profile == PW_PROFILE_NIST && chars > 64)
        return "too_long";
    if (profile == PW_PROFILE_R63 && upper + lower + digit + symbol < 3)
        return "classes";                           /* R6.3 */
    if (contains_ci(pw, user_id))                   /* R6.3 */
        return "contains_user_id";
    if (auth_blocklist_contains(bl, pw))
        return "blocklisted";
    return NULL;
}

const char *
auth_password_reason_text(const char *code)
{
    static const struct { const char *code, *text; } t[] = {
        { "too_short", "The password must have at least 8 characters." },
        { "too_long", "The password is too long." },
        { "classes", "The password must use at least three of: upper-case "
                     "letters, lower-case letters, digits, symbols." },
        { "contains_user_id", "The password must not contain the user ID." },
        { "blocklisted", "This password is too common." },
        { "invalid", "The password contains control characters." },
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(t[i].code, code) == 0)
            return t[i].text;
    return "The password is not acceptable.";
}

int
auth_password_hash(const char *pw, unsigned long long opslimit, size_t memlimit,
                   char out[PW_HASH_LEN])
{
    return crypto_pwhash_str_alg(out, pw, strlen(pw), opslimit, memlimit,
                                 crypto_pwhash_ALG_ARGON2ID13);
}

bool
auth_password_verify(const char *hash, const char *pw)
{
    if (strncmp(hash, crypto_pwhash_argon2id_STRPREFIX,
                strlen(crypto_pwhash_argon2id_STRPREFIX)) != 0)
        return false;
    return crypto_pwhash_str_verify(hash, pw, strlen(pw)) == 0;
}

bool
auth_password_expired(enum pw_profile profile, int64_t changed_at, int64_t now)
{
    if (profile != PW_PROFILE_R63)
        return false;                   /* SP 800-63B: no periodic change */
    return now - changed_at >= PW_MAX_AGE;   /* R6.3 */
}
