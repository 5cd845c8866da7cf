/*
 * revoke.h - the set of revoked terminal certificates (R6.2).
 *
 * A terminal is revoked by the SHA-256 fingerprint of its certificate.
 * The list file has one fingerprint per line (64 hex characters),
 * optionally followed by "# comment"; blank and '#' lines are ignored.
 * A process holds one "current" set; the parent re-reads the file on
 * SIGHUP and pushes the new set to the workers, which swap it in
 * atomically, so revocation applies to the very next request.
 */
#ifndef MAMORI_REVOKE_H
#define MAMORI_REVOKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REVOKE_FP_LEN 32
#define REVOKE_MAX_ENTRIES 1000000u

struct revoke_set;  /* immutable once built */

/* Parse list text.  On a bad line returns -1 with *bad_line set (1-based).
 * On success *out is owned by the caller. */
int revoke_set_parse(const char *text, size_t len, struct revoke_set **out,
                     unsigned *bad_line) __attribute__((warn_unused_result));

/* Read and parse a list file (a missing file is an error). */
int revoke_set_load(const char *path, struct revoke_set **out, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

/* Build from n packed fingerprints (copied). */
int revoke_set_from_raw(const uint8_t *fps, size_t n, struct revoke_set **out)
    __attribute__((warn_unused_result));

bool revoke_set_contains(const struct revoke_set *s, const uint8_t fp[REVOKE_FP_LEN]);
size_t revoke_set_count(const struct revoke_set *s);
/* Packed, sorted fingerprints (count * 32 bytes), owned by the set. */
const uint8_t *revoke_set_raw(const struct revoke_set *s);
void revoke_set_free(struct revoke_set *s);

/* The process-wide current set.  install() takes ownership of s (NULL
 * installs an empty set) and frees the previous one once no reader
 * holds it.  Thread-safe. */
void revoke_current_install(struct revoke_set *s);
bool revoke_current_contains(const uint8_t fp[REVOKE_FP_LEN]);
size_t revoke_current_count(void);
/* Install the current set together with n more fingerprints (copied);
 * -1 (nothing changes) if memory runs out or the set would be too big. */
int revoke_current_add(const uint8_t *fps, size_t n) __attribute__((warn_unused_result));

#endif
