/*
 * message.h - the messages of a transfer inquiry between tenants
 * (転入者照会・提供, R3.1, R3.2, R4.1 later).  docs/transfer.md has the
 * flow and the format with examples.
 *
 * Two messages, JSON objects, versioned ("v": 1), every member required
 * and nothing else accepted:
 *
 *   inquiry  {"v","type":"inquiry","id","from","to","affair","consent",
 *             "subject","mode","sent_at"}
 *   answer   {"v","type":"answer","id","reply_to","from","to","result",
 *             "items","complete","history","answered_at"}
 *
 * `subject` is the person: the blind index (BLAKE2b keyed by the
 * ANSWERING tenant's index key, crypto/field.h BIDX_MYNUMBER) of the
 * individual number, 64 hex.  The number itself is never in a message.
 * `result` is "found" or "no_record"; a "no_record" answer has the same
 * members, an empty history and complete true, whatever the reason (no
 * such person, wrong municipality, no such tenant): R3.2.
 *
 * Decoding treats every message as hostile: size bound, duplicate keys
 * refused, exact member set, types, lengths and charsets checked, and
 * nothing of the input is echoed in an error.
 */
#ifndef MAMORI_TRANSFER_MESSAGE_H
#define MAMORI_TRANSFER_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define TRANSFER_MSG_VERSION  1
#define TRANSFER_MSG_MAX      8192     /* bytes of one encoded message */
#define TRANSFER_MSG_ID_HEX   32       /* 16 random bytes, lower-case hex */
#define TRANSFER_REF_HEX      16       /* consent and job ids: 8 random bytes */
#define TRANSFER_SUBJECT_LEN  32       /* blind index bytes */
#define TRANSFER_HISTORY_MAX  32       /* doses in one answer */
#define TRANSFER_VACCINE_MAX  32       /* a catalogue code and its NUL */
#define TRANSFER_TS_LEN       25       /* "YYYY-MM-DDTHH:MM:SS.mmmZ" + NUL */

/* The one affair (事務) this system answers for now, and the items an
 * answer carries: what the receiving municipality needs to continue a
 * schedule, nothing more (no lot, site, clinic, doctor). */
#define TRANSFER_AFFAIR_VACCINATION "vaccination.history"
#define TRANSFER_ITEMS              "vaccine,dose,date"

enum transfer_mode { TRANSFER_SINGLE = 1, TRANSFER_BULK };

struct transfer_inquiry {
    char               id[TRANSFER_MSG_ID_HEX + 1];
    char               from[7];              /* requesting tenant */
    char               to[7];                /* previous municipality */
    char               affair[32];
    char               consent[TRANSFER_REF_HEX + 1];  /* requester's consent record */
    uint8_t            subject[TRANSFER_SUBJECT_LEN];
    enum transfer_mode mode;
    char               sent_at[TRANSFER_TS_LEN];
};

struct transfer_dose {
    char vaccine[TRANSFER_VACCINE_MAX];
    int  dose;                              /* 1..99 */
    char date[11];                          /* YYYY-MM-DD */
};

struct transfer_answer {
    char                 id[TRANSFER_MSG_ID_HEX + 1];
    char                 reply_to[TRANSFER_MSG_ID_HEX + 1];
    char                 from[7];           /* answering tenant (= inquiry's to) */
    char                 to[7];             /* requesting tenant */
    bool                 found;
    bool                 complete;          /* false: more doses than an answer holds */
    size_t               n;
    struct transfer_dose doses[TRANSFER_HISTORY_MAX];
    char                 answered_at[TRANSFER_TS_LEN];
};

/* A new random message id (TRANSFER_MSG_ID_HEX hex) or reference id
 * (TRANSFER_REF_HEX hex): `hexlen` characters and a NUL into out. */
void transfer_new_id(char *out, size_t hexlen);

/* True if `s` is exactly `hexlen` lower-case hex characters with no run
 * of 12 digits (an id must pass the audit writer's number check). */
bool transfer_id_valid(const char *s, size_t hexlen);

/* Encode into a malloc'd NUL-terminated string the caller frees; NULL if
 * a field is invalid (the same checks decode makes) or memory ran out. */
char *transfer_inquiry_encode(const struct transfer_inquiry *q);
char *transfer_answer_encode(const struct transfer_answer *a);

/* Decode `len` bytes.  0, or -1 with a reason code (static text, names
 * no value) in *why. */
int transfer_inquiry_decode(const char *text, size_t len, struct transfer_inquiry *out,
                            const char **why) MAMORI_WARN_UNUSED;
int transfer_answer_decode(const char *text, size_t len, struct transfer_answer *out,
                           const char **why) MAMORI_WARN_UNUSED;

/* The uniform "no record" answer to `q` (R3.2): found false, no doses,
 * complete true; a new id, answered now. */
void transfer_answer_none(const struct transfer_inquiry *q, struct transfer_answer *a);

#endif
