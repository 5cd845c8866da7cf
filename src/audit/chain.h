/*
 * chain.h - the on-disk format of the tamper-evident audit log (R7.2,
 * R7.6) and its verifier.  docs/audit.md describes the same format byte
 * by byte for independent verifiers.
 *
 * A log is a directory of segments, each a file of JSON lines:
 *
 *   {"seq":N,"time":"YYYY-MM-DDTHH:MM:SS.uuuuuuZ","event":{...},"hash":"<64 hex>"}\n
 *
 * The "hash" member is always last and is exactly the 75 bytes
 * `,"hash":"` + 64 lower-case hex + `"}`.  Everything before it is the
 * entry's canonical bytes C; hash(N) = SHA-256(hash(N-1) || C(N)) with
 * hash(0) = 32 zero bytes.  The chain runs across segments.
 *
 * Segments: `seg-<first seq, 20 digits>-<YYYYMMDDTHHMMSSZ>.log` in the
 * audit directory, or `archive/<same>.log.zst` once archived.  Signed
 * checkpoints of a segment are JSON lines in `<same>.ckpt` beside it.
 */
#ifndef MAMORI_AUDIT_CHAIN_H
#define MAMORI_AUDIT_CHAIN_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_HASH_LEN      32
#define AUDIT_SIG_LEN       64      /* Ed25519 */
#define AUDIT_PK_LEN        32
#define AUDIT_SK_LEN        64      /* libsodium's crypto_sign secret key */
#define AUDIT_SUFFIX_LEN    75      /* ,"hash":"<64 hex>"} */
#define AUDIT_SIGN_REQ_LEN  48      /* head hash(32) seq(8, BE) time_us(8, BE) */
#define AUDIT_CKPT_DOMAIN   "mamori audit checkpoint v1\n"
#define AUDIT_CKPT_DOMAIN_LEN 27
#define AUDIT_CKPT_MSG_LEN  (AUDIT_CKPT_DOMAIN_LEN + AUDIT_SIGN_REQ_LEN)
#define AUDIT_TIME_LEN      27      /* 2025-01-02T03:04:05.123456Z */
#define AUDIT_SEG_NAME_MAX  64
#define AUDIT_SIGNING_PUB   "signing.pub"   /* in the audit directory */
#define AUDIT_SIGNING_KEY   "audit-signing.key" /* in keys.dir, key holder only */

/* Microseconds since the epoch, UTC, from CLOCK_REALTIME -- or from the
 * hook when a test set one (rotation, archival and retention are tested
 * with an injected clock). */
int64_t audit_now_us(void);
void audit_set_clock(int64_t (*hook)(void));

/* Format `us` as AUDIT_TIME_LEN characters plus NUL. */
void audit_time_format(int64_t us, char out[AUDIT_TIME_LEN + 1]);
/* Parse that exact form; also accepts "YYYY-MM-DD" and
 * "YYYY-MM-DDTHH:MM:SSZ" (for query bounds).  0 or -1. */
int audit_time_parse(const char *s, int64_t *us) __attribute__((warn_unused_result));

/* hash = SHA-256(prev || canon). */
void audit_chain_step(const uint8_t prev[AUDIT_HASH_LEN], const char *canon, size_t len,
                      uint8_t out[AUDIT_HASH_LEN]);

/* Split one line (without its newline): *canon_len = bytes before the
 * hash member, hash decoded.  0, or -1 if the suffix is not exactly ours. */
int audit_line_split(const char *line, size_t len, size_t *canon_len,
                     uint8_t hash[AUDIT_HASH_LEN]) __attribute__((warn_unused_result));

/* The fixed 48-byte IPC_AUDIT_SIGN payload and the message the key holder
 * signs (domain || payload). */
void audit_sign_req_encode(const uint8_t hash[AUDIT_HASH_LEN], uint64_t seq, int64_t time_us,
                           uint8_t out[AUDIT_SIGN_REQ_LEN]);
void audit_sign_req_decode(const uint8_t in[AUDIT_SIGN_REQ_LEN], uint8_t hash[AUDIT_HASH_LEN],
                           uint64_t *seq, int64_t *time_us);
void audit_ckpt_message(const uint8_t req[AUDIT_SIGN_REQ_LEN], uint8_t msg[AUDIT_CKPT_MSG_LEN]);

/* Segment file names (without directory and without .zst). */
void audit_segment_name(uint64_t first_seq, int64_t start_us, char out[AUDIT_SEG_NAME_MAX]);
/* Parse a segment or checkpoint file name: "seg-...-....log", ".log.zst"
 * or ".ckpt".  Returns 0 and the parts, or -1. */
int audit_segment_parse(const char *name, uint64_t *first_seq, int64_t *start_s,
                        char base[AUDIT_SEG_NAME_MAX]) __attribute__((warn_unused_result));

/* Read the public key file (64 hex characters, optional newline). */
int audit_pubkey_load(const char *path, uint8_t pk[AUDIT_PK_LEN])
    __attribute__((warn_unused_result));

/* One segment as found on disk (sorted list from audit_segments_list). */
struct audit_segment {
    uint64_t first_seq;
    int64_t  start_s;
    bool     archived;
    char     base[AUDIT_SEG_NAME_MAX];     /* seg-...-... without extension */
    char     path[PATH_MAX];               /* the .log or .log.zst */
    char     ckpt[PATH_MAX];               /* its .ckpt (may not exist) */
};

/* List the segments of `dir` (live and archive/), sorted by first seq.
 * The caller frees *out.  0 or -1. */
int audit_segments_list(const char *dir, struct audit_segment **out, size_t *n)
    __attribute__((warn_unused_result));

/* Read a segment into memory (decompressing an archived one); the caller
 * frees *buf.  0 or -1. */
int audit_segment_read(const struct audit_segment *s, char **buf, size_t *len)
    __attribute__((warn_unused_result));

/* What audit_verify found. */
struct audit_verify_result {
    bool     ok;
    char     file[PATH_MAX];    /* where the first problem is */
    uint64_t line;              /* 1-based line in that file, 0 if n/a */
    uint64_t seq;               /* sequence concerned, 0 if n/a */
    char     what[256];         /* one sentence */
    uint64_t segments, entries, checkpoints;
    uint64_t checked_in_full;   /* entries also parsed whole and checked against
                                 * the schema (see audit_verify_flags) */
    uint64_t first_seq, last_seq, last_signed_seq;
    uint8_t  head[AUDIT_HASH_LEN];
};

/*
 * Walk every segment and checkpoint of `dir` (R7.2).  pk: the signing
 * key to trust; NULL reads dir/signing.pub (pin the key with --pubkey to
 * detect a replaced signing.pub).  Returns 0 if everything verifies, -1
 * with the first problem in *r.  Entries after the last signed checkpoint
 * cannot be checked against truncation: r->last_signed_seq says where
 * the signed part ends.
 */
int audit_verify(const char *dir, const uint8_t *pk, struct audit_verify_result *r);

/* Check every entry in full, not only those no signature covers yet. */
#define AUDIT_VERIFY_DEEP 0x1u

/*
 * audit_verify with flags.  Every entry's envelope (seq, time, action) is
 * read by a strict scanner, its link, sequence and time checked and its
 * hash recomputed.  An entry is also parsed whole and checked against the
 * schema and the canonical form (the event re-serialised compact with
 * sorted keys must give the same bytes) when no verified checkpoint of
 * its segment is at or above it, when it is one of the writer's own
 * "audit.*" entries, and, with AUDIT_VERIFY_DEEP, always.  Entries under a
 * verified checkpoint need not be: verify succeeds only if the chain
 * reaches that checkpoint unchanged, so their bytes are the writer's, and
 * the writer emits only validated, canonical entries (docs/audit.md).
 */
int audit_verify_flags(const char *dir, const uint8_t *pk, unsigned flags,
                       struct audit_verify_result *r);

#endif
