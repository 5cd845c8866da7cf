/*
 * spool.c - the encrypted upload spool (see spool.h for the file layout).
 *
 * Why a stream cipher construction rather than per-block AEAD: libsodium's
 * secretstream already binds each message to its position (a counter in
 * the nonce) and marks the last one, so reordering, dropping and
 * truncation are caught without a format of our own.
 *
 * The key and the stream state live in sodium_malloc'd memory (guard
 * pages, mlock'd where the limit allows, excluded from core dumps); the
 * two 64 KiB buffers are plain heap memory wiped before they are freed
 * and after every failure, since they held plaintext.
 */
#include "crypto/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SP_HEADER  crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define SP_ABYTES  crypto_secretstream_xchacha20poly1305_ABYTES
#define SP_MSG_MAX (SPOOL_CHUNK + SP_ABYTES)   /* ciphertext of one message */

/* Everything that would let someone read the file. */
struct spool_secret {
    uint8_t key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
    crypto_secretstream_xchacha20poly1305_state st;
};

enum spool_state { SP_WRITING = 0, SP_FINISHED, SP_BROKEN };

struct spool {
    int                  fd;
    enum spool_state     state;
    struct spool_secret *sec;       /* sodium_malloc'd */
    uint8_t             *plain;     /* SPOOL_CHUNK bytes */
    uint8_t             *cipher;    /* SP_MSG_MAX bytes */
    size_t               plain_len; /* writing: buffered; reading: decrypted */
    size_t               plain_pos; /* reading: next byte to hand out */
    uint64_t             size;      /* plaintext bytes written */
    uint64_t             off;       /* writing: end of file; reading: next message */
    bool                 eof;       /* reading: FINAL seen and checked */
    bool                 bad;       /* reading: failed, until spool_rewind */
};

/* ---- the file ------------------------------------------------------------ */

/* A file without a name in dir: O_TMPFILE, or where the file system has
 * none, a random name removed at once (a crash between the two calls
 * leaves an unreadable file behind: its key was never written). */
static int
open_nameless(const char *dir)
{
    char path[PATH_MAX];
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, S_IRUSR | S_IWUSR);

    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
        return fd;
    if ((size_t)snprintf(path, sizeof(path), "%s/.mamori-spool-XXXXXX", dir) >=
        sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if ((fd = mkostemp(path, O_CLOEXEC)) < 0)       /* mode 0600 */
        return -1;
    if (unlink(path) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int
write_at(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Up to n bytes at off; fewer only at the end of the file. */
static ssize_t
read_at(int fd, uint8_t *p, size_t n, uint64_t off)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, (off_t)(off + got));

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* ---- writing ------------------------------------------------------------- */

/* A failed write leaves the stream state advanced past what is on disk:
 * the spool can only be freed from here on. */
static int
broken(struct spool *s)
{
    int e = errno;

    s->state = SP_BROKEN;
    sodium_memzero(s->plain, SPOOL_CHUNK);
    s->plain_len = 0;
    errno = e != 0 ? e : EIO;
    return -1;
}

/* Encrypt the buffered plaintext as one message and append it. */
static int
flush(struct spool *s, unsigned char tag)
{
    unsigned long long clen = 0;

    if (crypto_secretstream_xchacha20poly1305_push(&s->sec->st, s->cipher, &clen, s->plain,
                                                   s->plain_len, NULL, 0, tag) != 0) {
        errno = EIO;
        return broken(s);
    }
    sodium_memzero(s->plain, s->plain_len);
    s->plain_len = 0;
    if (write_at(s->fd, s->cipher, (size_t)clen, s->off) != 0)
        return broken(s);
    s->off += clen;
    return 0;
}

int
spool_create(const char *dir, struct spool **out)
{
    uint8_t header[SP_HEADER];
    struct spool *s;

    if (out == NULL || dir == NULL) {
        errno = EINVAL;
        return -1;
    }
    *out = NULL;
    if (sodium_init() < 0) {
        errno = EIO;
        return -1;
    }
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return -1;
    s->fd = -1;
    s->sec = sodium_malloc(sizeof(*s->sec));
    s->plain = malloc(SPOOL_CHUNK);
    s->cipher = malloc(SP_MSG_MAX);
    if (s->sec == NULL || s->plain == NULL || s->cipher == NULL) {
        spool_free(s);
        errno = ENOMEM;
        return -1;
    }
    crypto_secretstream_xchacha20poly1305_keygen(s->sec->key);
    if ((s->fd = open_nameless(dir)) < 0 ||
        crypto_secretstream_xchacha20poly1305_init_push(&s->sec->st, header,
                                                        s->sec->key) != 0 ||
        write_at(s->fd, header, sizeof(header), 0) != 0) {
        int e = errno != 0 ? errno : EIO;
        spool_free(s);
        errno = e;
        return -1;
    }
    s->off = sizeof(header);
    *out = s;
    return 0;
}

int
spool_write(struct spool *s, const void *data, size_t n)
{
    const uint8_t *p = data;

    if (s == NULL || (data == NULL && n > 0) || s->state != SP_WRITING) {
        errno = s != NULL && s->state == SP_BROKEN ? EIO : EINVAL;
        return -1;
    }
    while (n > 0) {
        size_t take;

        /* A full buffer becomes a MESSAGE only once more data follows: the
         * last SPOOL_CHUNK bytes always go out with the FINAL tag. */
        if (s->plain_len == SPOOL_CHUNK &&
            flush(s, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) != 0)
            return -1;
        take = SPOOL_CHUNK - s->plain_len < n ? SPOOL_CHUNK - s->plain_len : n;
        memcpy(s->plain + s->plain_len, p, take);
        s->plain_len += take;
        s->size += take;
        p += take;
        n -= take;
    }
    return 0;
}

int
spool_finish(struct spool *s)
{
    if (s == NULL || s->state != SP_WRITING) {
        errno = s != NULL && s->state == SP_BROKEN ? EIO : EINVAL;
        return -1;
    }
    if (flush(s, crypto_secretstream_xchacha20poly1305_TAG_FINAL) != 0)
        return -1;
    s->state = SP_FINISHED;
    return spool_rewind(s);
}

uint64_t
spool_size(const struct spool *s)
{
    return s != NULL ? s->size : 0;
}

/* ---- reading ------------------------------------------------------------- */

int
spool_rewind(struct spool *s)
{
    uint8_t header[SP_HEADER];
    ssize_t got;

    if (s == NULL || s->state != SP_FINISHED) {
        errno = s != NULL && s->state == SP_BROKEN ? EIO : EINVAL;
        return -1;
    }
    sodium_memzero(s->plain, SPOOL_CHUNK);
    s->plain_len = s->plain_pos = 0;
    s->eof = false;
    s->bad = true;                  /* until the header is in */
    if ((got = read_at(s->fd, header, sizeof(header), 0)) < 0)
        return -1;
    if ((size_t)got != sizeof(header)) {
        errno = EBADMSG;
        return -1;
    }
    if (crypto_secretstream_xchacha20poly1305_init_pull(&s->sec->st, header,
                                                        s->sec->key) != 0) {
        errno = EBADMSG;
        return -1;
    }
    s->off = sizeof(header);
    s->bad = false;
    return 0;
}

/* Sticky read failure: nothing decrypted so far stays in memory. */
static ssize_t
read_failed(struct spool *s, int e)
{
    s->bad = true;
    sodium_memzero(s->plain, SPOOL_CHUNK);
    s->plain_len = s->plain_pos = 0;
    errno = e;
    return -1;
}

/* Decrypt the next message into plain.  Every message but the last holds
 * exactly SPOOL_CHUNK bytes; the last is tagged FINAL and ends the file. */
static int
next_message(struct spool *s)
{
    unsigned long long mlen = 0;
    unsigned char tag = 0;
    struct stat sb;
    ssize_t got = read_at(s->fd, s->cipher, SP_MSG_MAX, s->off);

    if (got < 0)
        return (int)read_failed(s, errno);
    if ((size_t)got < SP_ABYTES ||
        crypto_secretstream_xchacha20poly1305_pull(&s->sec->st, s->plain, &mlen, &tag,
                                                   s->cipher, (size_t)got, NULL, 0) != 0)
        return (int)read_failed(s, EBADMSG);
    s->off += (uint64_t)got;
    s->plain_len = (size_t)mlen;
    s->plain_pos = 0;
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
        /* Nothing may follow the end (an appended message is tampering). */
        if (fstat(s->fd, &sb) != 0)
            return (int)read_failed(s, errno);
        if ((uint64_t)sb.st_size != s->off)
            return (int)read_failed(s, EBADMSG);
        s->eof = true;
    } else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE ||
               mlen != SPOOL_CHUNK) {
        return (int)read_failed(s, EBADMSG);
    }
    return 0;
}

ssize_t
spool_read(struct spool *s, void *buf, size_t n)
{
    uint8_t *out = buf;
    size_t done = 0;

    if (s == NULL || (buf == NULL && n > 0) || s->state != SP_FINISHED) {
        errno = s != NULL && s->state == SP_BROKEN ? EIO : EINVAL;
        return -1;
    }
    if (s->bad) {
        errno = EBADMSG;
        return -1;
    }
    if (n > SSIZE_MAX)
        n = SSIZE_MAX;
    while (done < n) {
        size_t take;

        if (s->plain_pos == s->plain_len) {
            if (s->eof)
                break;
            if (next_message(s) != 0)
                return -1;
            continue;
        }
        take = s->plain_len - s->plain_pos < n - done ? s->plain_len - s->plain_pos
                                                      : n - done;
        memcpy(out + done, s->plain + s->plain_pos, take);
        s->plain_pos += take;
        done += take;
    }
    return (ssize_t)done;
}

void
spool_free(struct spool *s)
{
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    sodium_free(s->sec);            /* wipes the key and stream state */
    if (s->plain != NULL) {
        sodium_memzero(s->plain, SPOOL_CHUNK);
        free(s->plain);
    }
    if (s->cipher != NULL) {
        sodium_memzero(s->cipher, SP_MSG_MAX);
        free(s->cipher);
    }
    free(s);
}
