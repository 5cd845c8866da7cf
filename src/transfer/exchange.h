/*
 * exchange.h - a transfer inquiry from one tenant to another and its
 * answer (転入者照会・提供, R3.1, R3.2, R3.4, R3.5).  docs/transfer.md
 * has the sequence diagram.
 *
 * Three parts, so that the tenants can later live on different servers
 * joined by the linkage hub (R4.1) without the two ends changing:
 *
 *  - the asking side (transfer_inquire): checks the receiving resident
 *    and the consent record, audits, builds the inquiry message with the
 *    person as a blind index under the ANSWERING tenant's key, hands it
 *    to the transport, records the answer (inquiry record);
 *  - the transport (env->send): moves an encoded message to the
 *    answering tenant and its answer back.  transfer_local_send delivers
 *    inside this process; a hub transport would carry the same bytes;
 *  - the answering side (transfer_answer): under the answering tenant's
 *    context only, matches the blind index, records the provision and
 *    audits it, then answers with the history or the uniform "no record".
 *    An inquiry to a code that is no active tenant gets the same answer
 *    after the same amount of work.
 *
 * The individual number exists only in the asking side's memory for the
 * length of one call (and, for a bulk job, sealed in its job row).
 */
#ifndef MAMORI_TRANSFER_EXCHANGE_H
#define MAMORI_TRANSFER_EXCHANGE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto/keyprov.h"
#include "store/store.h"
#include "store/store_transfer.h"
#include "transfer/message.h"

/* A consent is good for inquiries this many days after the identity
 * check (and not before it). */
#define TRANSFER_CONSENT_DAYS 90

/* Answers to bulk inquiries per second per answering tenant, per worker
 * process: the provider's bound, whoever asks (R3.3). */
#define TRANSFER_PROVIDER_RATE 40

struct transfer_env;

/* Deliver one audit event (a valid event object, borrowed); 0 once the
 * writer has acknowledged it durably, -1 otherwise (fail closed). */
typedef int (*transfer_audit_fn)(void *arg, const json_t *event);

/* Carry an encoded inquiry to its answering tenant; *answer gets the
 * encoded answer (malloc'd, the caller frees).  0, or -1 when no answer
 * could be had (the answering side could not record it, or the message
 * was refused). */
typedef int (*transfer_send_fn)(const struct transfer_env *env, const char *inquiry,
                                size_t len, char **answer);

struct transfer_env {
    struct store              *store;
    const struct key_provider *keys;
    transfer_audit_fn          audit;
    void                      *audit_arg;
    transfer_send_fn           send;      /* transfer_local_send in one server */
};

/* Who asks: a signed-in clerk or supervisor, or the job that acts for
 * one.  Strings are what audit events carry; "" for none. */
struct transfer_actor {
    char        tenant[7];
    char        user[33];
    const char *role;           /* static text, e.g. "clerk" */
    char        terminal[65];   /* fingerprint hex */
    char        session[70];    /* "hmac:" + 64 hex */
    char        source[48];
};

struct transfer_request {
    const char        *prev_code;    /* previous municipality, check digit valid */
    const char        *mynumber;     /* 12 digits, check digit valid */
    const char        *consent_id;
    const char        *address_no;   /* the receiving resident */
    enum transfer_mode mode;
    const char        *job_id;       /* "" unless a bulk job row */
};

enum transfer_status {
    TRANSFER_OK = 0,             /* answered: out->answer.found says which */
    TRANSFER_SAME_TENANT,        /* the previous municipality is the asker */
    TRANSFER_NO_RESIDENT,        /* no such receiving resident */
    TRANSFER_NO_CONSENT,         /* no valid consent record of this tenant for this person */
    TRANSFER_INVALID,            /* a field is not valid */
    TRANSFER_AUDIT_FAILED,       /* nothing was sent */
    TRANSFER_UNAVAILABLE,        /* store, keys or the answering side failed */
};

struct transfer_outcome {
    char                   inquiry_id[TRANSFER_MSG_ID_HEX + 1];
    int64_t                resident_id;     /* the receiving resident */
    struct transfer_answer answer;
};

/* Stable code of a status ("no_consent", ...). */
const char *transfer_status_code(enum transfer_status st);

/*
 * The asking side.  `ctx` is the asking tenant's context (who->tenant).
 * Refusals are audited ("transfer.inquire", refused, with a reason) and
 * nothing is sent; otherwise the inquiry is audited before it is sent,
 * and recorded with its answer after.  The caller owns `out`.
 */
enum transfer_status transfer_inquire(const struct transfer_env *env, struct store_tenant *ctx,
                                      const struct transfer_actor *who,
                                      const struct transfer_request *rq,
                                      struct transfer_outcome *out) MAMORI_WARN_UNUSED;

/* The answering side, for a transport: decode the inquiry, answer it
 * (see the top of this file), encode the answer into *answer (malloc'd,
 * caller frees).  0, or -1 with nothing answered. */
int transfer_answer(const struct transfer_env *env, const char *inquiry, size_t len,
                    char **answer) MAMORI_WARN_UNUSED;

/* The local transport: the answering tenant lives in this server. */
int transfer_local_send(const struct transfer_env *env, const char *inquiry, size_t len,
                        char **answer) MAMORI_WARN_UNUSED;

/*
 * An audit event of the asking side, with the actor's fields: `objects`
 * and `info` are stolen (may be NULL), `subject` may be NULL.  0 once
 * acknowledged.  Shared with the HTTP handlers (consents, listings).
 */
int transfer_audit(const struct transfer_env *env, const struct transfer_actor *who,
                   const char *action, const char *outcome, const char *reason,
                   const char *subject, json_t *objects, json_t *info) MAMORI_WARN_UNUSED;

/* "hmac:" + 64 hex: the tenant's keyed hash of an individual number for
 * an audit event's subject, as vrs/api.c makes it for searches (so the
 * auditor can follow one person through searches and inquiries).  0 or
 * -1 (no key). */
int transfer_subject_hash(const struct transfer_env *env, const char *tenant,
                          const char *mynumber, char out[70]) MAMORI_WARN_UNUSED;

#endif
