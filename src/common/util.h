/*
 * util.h - small, checked helpers shared by every module.
 *
 * All functions return 0 on success and -1 on failure (errno set) unless
 * documented otherwise.
 */
#ifndef MAMORI_UTIL_H
#define MAMORI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAMORI_WARN_UNUSED __attribute__((warn_unused_result))

/* Parse a decimal unsigned integer in [min, max]; the whole string must be
 * digits (no sign, no spaces).  Like OpenBSD's strtonum. */
int util_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
    MAMORI_WARN_UNUSED;

/* Lower-case hex of `n` bytes into `out` (needs 2n+1 bytes). */
int util_hex_encode(const uint8_t *in, size_t n, char *out, size_t outsz)
    MAMORI_WARN_UNUSED;

/* Decode exactly `n` bytes of hex (2n characters, either case). */
int util_hex_decode(const char *hex, uint8_t *out, size_t n) MAMORI_WARN_UNUSED;

/* Read a whole file of at most `max` bytes.  On success *out is a
 * NUL-terminated malloc'd buffer owned by the caller (free()), *len
 * excludes the terminator.  Larger files fail with EFBIG. */
int util_read_file(const char *path, size_t max, char **out, size_t *len)
    MAMORI_WARN_UNUSED;

/* Write `len` bytes to `path` durably: temp file in the same directory
 * with `mode`, fsync, rename over `path`, fsync the directory. */
int util_write_file_atomic(const char *path, const void *data, size_t len,
                           unsigned mode) MAMORI_WARN_UNUSED;

/* fsync the directory holding `path`, so a create or rename in it is
 * durable. */
int util_fsync_parent(const char *path) MAMORI_WARN_UNUSED;

/* Join dir and name into out ("dir/name"); an absolute name is copied
 * as is.  Fails with ENAMETOOLONG. */
int util_path_join(char *out, size_t outsz, const char *dir, const char *name)
    MAMORI_WARN_UNUSED;

/* Copy with truncation check (strlcpy that fails instead of truncating). */
int util_strcpy(char *dst, size_t dstsz, const char *src) MAMORI_WARN_UNUSED;

/* Zero memory in a way the compiler cannot elide. */
void util_wipe(void *p, size_t n);

/* Compare in time independent of the contents.  Returns true if equal. */
bool util_ct_equal(const void *a, const void *b, size_t n);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ" (out needs 25 bytes). */
void util_utc_now(char out[25]);

#endif
