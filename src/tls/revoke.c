/*
 * revoke.c - revoked terminal fingerprints: a sorted array, binary search.
 */
#include "tls/revoke.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

struct revoke_set {
    size_t   n;
    uint8_t *fps;   /* n * REVOKE_FP_LEN, sorted, unique */
};

static int
cmp_fp(const void *a, const void *b)
{
    return memcmp(a, b, REVOKE_FP_LEN);
}

static size_t
sort_unique(uint8_t *fps, size_t n)
{
    size_t w = 0;

    if (n == 0)
        return 0;
    qsort(fps, n, REVOKE_FP_LEN, cmp_fp);
    for (size_t r = 1; r < n; r++) {
        if (memcmp(fps + r * REVOKE_FP_LEN, fps + w * REVOKE_FP_LEN, REVOKE_FP_LEN) != 0) {
            w++;
            memmove(fps + w * REVOKE_FP_LEN, fps + r * REVOKE_FP_LEN, REVOKE_FP_LEN);
        }
    }
    return w + 1;
}

int
revoke_set_from_raw(const uint8_t *fps, size_t n, struct revoke_set **out)
{
    struct revoke_set *s;

    if (n > REVOKE_MAX_ENTRIES) {
        errno = E2BIG;
        return -1;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    if (n > 0) {
        s->fps = malloc(n * REVOKE_FP_LEN);
        if (s->fps == NULL) {
            free(s);
            return -1;
        }
        memcpy(s->fps, fps, n * REVOKE_FP_LEN);
    }
    s->n = sort_unique(s->fps, n);
    *out = s;
    return 0;
}

/* Parse one line into fp; returns 1 if it held an entry, 0 if not, -1 bad. */
static int
parse_line(const char *line, size_t len, uint8_t fp[REVOKE_FP_LEN])
{
    char hex[REVOKE_FP_LEN * 2 + 1];
    size_t i = 0;

    if (len > 0 && line[len - 1] == '\r')   /* tolerate CRLF files */
        len--;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len || line[i] == '#')
        return 0;
    if (len - i < REVOKE_FP_LEN * 2)
        return -1;
    memcpy(hex, line + i, REVOKE_FP_LEN * 2);
    hex[REVOKE_FP_LEN * 2] = '\0';
    if (util_hex_decode(hex, fp, REVOKE_FP_LEN) != 0)
        return -1;
    i += REVOKE_FP_LEN * 2;
    /* After the fingerprint only whitespace and an optional comment. */
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i < len && line[i] != '#')
        return -1;
    return 1;
}

int
revoke_set_parse(const char *text, size_t len, struct revoke_set **out,
                 unsigned *bad_line)
{
    uint8_t *fps = NULL;
    size_t n = 0, cap = 0, pos = 0;
    unsigned lineno = 0;
    int rc = -1;

    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t llen = (nl != NULL ? (size_t)(nl - (text + pos)) : len - pos);
        uint8_t fp[REVOKE_FP_LEN];
        int r;

        lineno++;
        r = parse_line(text + pos, llen, fp);
        if (r < 0 || memchr(text + pos, '\0', llen) != NULL) {
            *bad_line = lineno;
            errno = EINVAL;
            goto out;
        }
        if (r == 1) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                uint8_t *nf;
                if (ncap > REVOKE_MAX_ENTRIES)
                    ncap = REVOKE_MAX_ENTRIES;
                if (n == REVOKE_MAX_ENTRIES) {
                    errno = E2BIG;
                    *bad_line = lineno;
                    goto out;
                }
                nf = realloc(fps, ncap * REVOKE_FP_LEN);
                if (nf == NULL)
                    goto out;
                fps = nf;
                cap = ncap;
            }
            memcpy(fps + n * REVOKE_FP_LEN, fp, REVOKE_FP_LEN);
            n++;
        }
        pos += llen + (nl != NULL ? 1 : 0);
    }
    rc = revoke_set_from_raw(fps, n, out);
out:
    free(fps);
    return rc;
}

int
revoke_set_load(const char *path, struct revoke_set **out, char *err, size_t errlen)
{
    char *text;
    size_t len;
    unsigned bad = 0;
    int rc;

    if (util_read_file(path, (size_t)REVOKE_MAX_ENTRIES * 100, &text, &len) != 0) {
        snprintf(err, errlen, "%s: cannot read the revocation list: %s", path,
                 strerror(errno));
        return -1;
    }
    rc = revoke_set_parse(text, len, out, &bad);
    free(text);
    if (rc != 0)
        snprintf(err, errlen, "%s line %u: expected a 64-character hex SHA-256 "
                 "fingerprint, optionally followed by # comment", path, bad);
    return rc;
}

bool
revoke_set_contains(const struct revoke_set *s, const uint8_t fp[REVOKE_FP_LEN])
{
    return s != NULL && s->n > 0 &&
           bsearch(fp, s->fps, s->n, REVOKE_FP_LEN, cmp_fp) != NULL;
}

size_t
revoke_set_count(const struct revoke_set *s)
{
    return s != NULL ? s->n : 0;
}

const uint8_t *
revoke_set_raw(const struct revoke_set *s)
{
    return s->fps;
}

void
revoke_set_free(struct revoke_set *s)
{
    if (s == NULL)
        return;
    free(s->fps);
    free(s);
}

/* Readers are every request; writers are rare reloads: an rwlock fits. */
static pthread_rwlock_t   current_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct revoke_set *current;

void
revoke_current_install(struct revoke_set *s)
{
    struct revoke_set *old;

    pthread_rwlock_wrlock(&current_lock);
    old = current;
    current = s;
    pthread_rwlock_unlock(&current_lock);
    revoke_set_free(old);
}

bool
revoke_current_contains(const uint8_t fp[REVOKE_FP_LEN])
{
    bool hit;

    pthread_rwlock_rdlock(&current_lock);
    hit = revoke_set_contains(current, fp);
    pthread_rwlock_unlock(&current_lock);
    return hit;
}

size_t
revoke_current_count(void)
{
    size_t n;

    pthread_rwlock_rdlock(&current_lock);
    n = revoke_set_count(current);
    pthread_rwlock_unlock(&current_lock);
    return n;
}

int
revoke_current_add(const uint8_t *fps, size_t n)
{
    struct revoke_set *next = NULL;
    uint8_t *all;
    size_t have;
    int rc;

    if (n == 0)
        return 0;
    /* The write lock is held across the rebuild so two adds cannot race
     * and lose one another's entries; adds are rare (an API revocation). */
    pthread_rwlock_wrlock(&current_lock);
    have = revoke_set_count(current);
    if (have + n > REVOKE_MAX_ENTRIES || (all = malloc((have + n) * REVOKE_FP_LEN)) == NULL) {
        pthread_rwlock_unlock(&current_lock);
        return -1;
    }
    if (have > 0)
        memcpy(all, current->fps, have * REVOKE_FP_LEN);
    memcpy(all + have * REVOKE_FP_LEN, fps, n * REVOKE_FP_LEN);
    rc = revoke_set_from_raw(all, have + n, &next);
    if (rc == 0) {
        revoke_set_free(current);
        current = next;
    }
    pthread_rwlock_unlock(&current_lock);
    free(all);
    return rc;
}
