/*
 * spool.h - an upload held on disk only encrypted (R2.6, R1.4).
 *
 * An upload held on disk only encrypted, under a key that exists only in
 * this process's memory: the file has no name (O_TMPFILE in dir, falling
 * back to mkstemp+unlink), mode 0600, and is unreadable once the process
 * ends.  libsodium crypto_secretstream_xchacha20poly1305, SPOOL_CHUNK
 * (64 KiB) of plaintext per message, the last one tagged FINAL.
 *
 * File layout (never read by anything but this module):
 *
 *   offset  size                       what
 *   0       24                         secretstream header
 *   24      (SPOOL_CHUNK + 17) * k     k messages of exactly SPOOL_CHUNK
 *                                      plaintext bytes, tagged MESSAGE
 *   ...     17 + (0..SPOOL_CHUNK)      one last message, tagged FINAL
 *                                      (an empty upload is that alone)
 *
 * Reading verifies every message before handing out a byte of it, and
 * that FINAL ends the file exactly: a flipped bit, a reordered, dropped
 * or appended message and a truncated file all make spool_read fail
 * (errno EBADMSG).  Lifecycle: spool_create, spool_write..., spool_finish
 * (then read-only, positioned at byte 0), spool_read... / spool_rewind,
 * spool_free.  A spool is used by one thread at a time.
 */
#ifndef MAMORI_CRYPTO_SPOOL_H
#define MAMORI_CRYPTO_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPOOL_CHUNK ((size_t)64 * 1024)   /* plaintext bytes per message */

struct spool;

/* A new, empty spool in directory `dir` (which must allow O_TMPFILE or
 * file creation).  0 and *out owned by the caller (spool_free), or -1
 * with errno set. */
int spool_create(const char *dir, struct spool **out)
    __attribute__((warn_unused_result));

/* Append n bytes of plaintext.  0, or -1 with errno set (ENOSPC kept);
 * after a failure the spool only refuses (free it).  -1/EINVAL after
 * spool_finish. */
int spool_write(struct spool *s, const void *data, size_t n)
    __attribute__((warn_unused_result));

/* Write the FINAL message; the spool is then read-only and positioned at
 * byte 0.  0, or -1 with errno set. */
int spool_finish(struct spool *s) __attribute__((warn_unused_result));

/* Plaintext bytes written so far. */
uint64_t spool_size(const struct spool *s);

/* Back to byte 0 (after spool_finish; -1/EINVAL before).  Also clears a
 * failed read: the next read verifies again from the start. */
int spool_rewind(struct spool *s) __attribute__((warn_unused_result));

/* Up to n bytes of plaintext into buf; 0 at the end; -1 on an I/O error
 * (errno kept) or on any tampering or truncation (errno EBADMSG), and
 * again on every call until spool_rewind.  Only verified bytes are ever
 * copied to buf. */
ssize_t spool_read(struct spool *s, void *buf, size_t n)
    __attribute__((warn_unused_result));

/* Wipe the key and buffers, close the file (its blocks are freed: it has
 * no name).  NULL is fine. */
void spool_free(struct spool *s);

#endif
