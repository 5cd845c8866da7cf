/*
 * csvin.h - a streaming CSV reader for imports (R2.6).
 *
 * Bytes go in (csvin_feed, or csvin_read_fd / csvin_read_cb in chunks of
 * CSVIN_CHUNK),
 * records come out through a callback, each with the physical line it
 * starts on.  Memory is bounded by the options (one record of at most
 * fields_max fields of field_max bytes), never by the size of the input.
 *
 * Parsing is libcsv in strict mode (RFC 4180 quoting; a stray quote is an
 * error, not data), without trimming spaces.  Encodings:
 *
 *  - UTF-8, with an optional byte-order mark at the very start (dropped).
 *    Every field must be well-formed UTF-8 (RFC 3629: no overlong forms,
 *    no surrogates).
 *  - CP932 (Windows Shift_JIS).  The raw bytes are parsed and each field is
 *    converted to UTF-8 with iconv.  This is exact because the CSV
 *    separators (comma, quote, CR, LF: all below 0x40) never occur as the
 *    second byte of a CP932 character (0x40-0x7E, 0x80-0xFC); and because
 *    libcsv joins a field across reads, a character split between two
 *    chunks needs no special case.  A byte sequence that is not CP932 is
 *    refused with the field it is in.
 *
 * Problems are of two kinds.  A problem in one record (a field too long,
 * not UTF-8 / not CP932, a NUL byte, too many fields) is reported through
 * the problem callback and that record is skipped; reading goes on, so
 * every bad line is seen.  Broken quoting is reported with the physical
 * line where it was found; the reader then skips to the end of that line
 * and starts afresh, so one stray quote does not hide the rest of the
 * file.  No callback ever receives a field of a refused record, and no
 * problem carries a field's value.
 */
#ifndef MAMORI_VRS_CSVIN_H
#define MAMORI_VRS_CSVIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CSVIN_CHUNK        (64u * 1024u)   /* bytes per read() */
#define CSVIN_FIELD_LIMIT  (64u * 1024u)   /* largest field_max accepted */
#define CSVIN_FIELDS_LIMIT 256u            /* largest fields_max accepted */
#define CSVIN_FIELD_DEFAULT  4096u
#define CSVIN_FIELDS_DEFAULT 64u

enum csvin_encoding { CSVIN_UTF8 = 0, CSVIN_CP932 };

/* What was wrong with a record (or, for QUOTING, a line). */
enum csvin_problem {
    CSVIN_P_FIELD_TOO_LONG = 1,  /* longer than field_max bytes (as UTF-8) */
    CSVIN_P_TOO_MANY_FIELDS,     /* more than fields_max fields */
    CSVIN_P_NOT_UTF8,            /* UTF-8 input: not well-formed UTF-8 */
    CSVIN_P_NOT_CP932,           /* CP932 input: a byte sequence iconv refuses */
    CSVIN_P_NUL,                 /* a NUL byte in the field */
    CSVIN_P_QUOTING,             /* a quote inside an unquoted field, or
                                    text after a closing quote */
    CSVIN_P_UNTERMINATED,        /* a quoted field still open at the end */
    CSVIN_P_UTF8_BOM_IN_CP932    /* CP932 input starting with a UTF-8 BOM */
};

struct csvin_opts {
    enum csvin_encoding encoding;
    size_t field_max;    /* bytes of one field after conversion; 0: default */
    size_t fields_max;   /* fields of one record; 0: default */
};

struct csvin_callbacks {
    /* A record whose every field passed: n fields, fields[i] is
     * NUL-terminated UTF-8 without NUL bytes, lens[i] its length.  Valid
     * only during the call (the buffer is reused and wiped).  Return 0 to
     * go on, non-zero to stop reading (csvin then returns CSVIN_STOPPED). */
    int (*record)(void *arg, uint64_t line, const char *const *fields,
                  const size_t *lens, size_t n);
    /* A refused record: its first line (for QUOTING the line where the
     * quote was found), the 1-based field or 0 for the record as a whole.
     * Non-zero stops reading.  May be NULL (problems are then skipped). */
    int (*problem)(void *arg, uint64_t line, size_t field,
                   enum csvin_problem p);
    void *arg;
};

enum csvin_status {
    CSVIN_OK = 0,       /* read to the end (problems may have been reported) */
    CSVIN_STOPPED,      /* a callback asked to stop */
    CSVIN_ERR_READ,     /* read() failed (errno kept) */
    CSVIN_ERR_NOMEM,
    CSVIN_ERR_ARG       /* bad options, or iconv has no CP932 */
};

struct csvin;

/* A reader; the caller owns *out (csvin_free).  The callbacks struct is
 * copied. */
enum csvin_status csvin_new(const struct csvin_opts *o,
                            const struct csvin_callbacks *cb,
                            struct csvin **out)
    __attribute__((warn_unused_result));

/* Feed the next bytes (any split).  After a non-OK status the reader is
 * finished: further calls return that status again. */
enum csvin_status csvin_feed(struct csvin *r, const void *buf, size_t len)
    __attribute__((warn_unused_result));

/* End of input: emits a last record without a line break, or reports an
 * unterminated quote. */
enum csvin_status csvin_finish(struct csvin *r)
    __attribute__((warn_unused_result));

/* Wipes the buffers (they held field values) and frees; NULL is fine. */
void csvin_free(struct csvin *r);

/*
 * Read `fd` to its end in chunks of `chunk` bytes (0: CSVIN_CHUNK); each
 * chunk is handed to `bytes` (may be NULL: hashing, progress) before it
 * is parsed.  The descriptor is neither rewound nor closed.
 */
enum csvin_status csvin_read_fd(int fd, size_t chunk, const struct csvin_opts *o,
                                const struct csvin_callbacks *cb,
                                void (*bytes)(void *arg, const uint8_t *buf,
                                              size_t n),
                                void *bytes_arg)
    __attribute__((warn_unused_result));

/* Where csvin_read_cb gets its bytes: up to n into buf, 0 at the end, -1
 * on error with errno set (retrying EINTR is the reader's business). */
typedef ssize_t (*csvin_read_fn)(void *arg, void *buf, size_t n);

/*
 * csvin_read_fd for any reader (an encrypted spool, say): `rd` is called
 * until it returns 0 or -1 (CSVIN_ERR_READ, its errno kept), and each
 * chunk goes to `bytes` then to the parser, exactly as with a descriptor.
 */
enum csvin_status csvin_read_cb(csvin_read_fn rd, void *rd_arg, size_t chunk,
                                const struct csvin_opts *o,
                                const struct csvin_callbacks *cb,
                                void (*bytes)(void *arg, const uint8_t *buf,
                                              size_t n),
                                void *bytes_arg)
    __attribute__((warn_unused_result));

/* The same over a buffer in memory (tests, fuzzing), fed in pieces of
 * `chunk` bytes (0: all at once). */
enum csvin_status csvin_read_mem(const void *buf, size_t len, size_t chunk,
                                 const struct csvin_opts *o,
                                 const struct csvin_callbacks *cb)
    __attribute__((warn_unused_result));

/* A plain phrase for a problem, to follow "field N" or "line N":
 * "is not valid UTF-8".  Never a value. */
const char *csvin_problem_text(enum csvin_problem p);

#endif
