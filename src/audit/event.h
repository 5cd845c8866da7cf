/*
 * event.h - build and validate audit events (R7.1).
 *
 * An event is a JSON object with these members only (docs/audit.md):
 *
 *   action    required, [a-z0-9_.]{1,64}          "resident.read"
 *   outcome   required, success | failure | refused
 *   tenant    6-digit local government code
 *   actor     [a-z0-9._@-]{1,64}                  staff login name
 *   role      [a-z0-9_]{1,32}
 *   terminal  64 lower-case hex: client certificate fingerprint
 *   session   "hmac:" + 64 hex: keyed hash of the session token
 *   subject   "hmac:" + 64 hex: keyed hash of a personal value to match later
 *   source    an IPv4 / IPv6 address
 *   objects   array (<= 64) of record ids [a-z0-9._:-]{1,80}
 *   reason    [a-z0-9_.]{1,64}                    a code, never free text
 *   info      object (<= 16 members, keys [a-z0-9_]{1,32}) of integers
 *             or strings [a-z0-9._:/@-]{0,128}
 *
 * Anything else is refused, as is any value holding a 12-digit run that
 * is a valid individual number.  Plain fields take only lower-case
 * identifiers and codes, so a password, a TOTP secret or a token cannot
 * pass through them; personal values reach the log only as keyed hashes
 * (HMAC-SHA-256 with a per-deployment key), like Vault's HMAC'd fields.
 */
#ifndef MAMORI_AUDIT_EVENT_H
#define MAMORI_AUDIT_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUDIT_HMAC_KEY_LEN 32
#define AUDIT_MAX_OBJECTS  64
#define AUDIT_MAX_INFO     16

enum audit_outcome { AUDIT_SUCCESS, AUDIT_FAILURE, AUDIT_REFUSED };

/* Plain fields set with audit_event_set. */
enum audit_field {
    AUDIT_F_TENANT, AUDIT_F_ACTOR, AUDIT_F_ROLE, AUDIT_F_TERMINAL,
    AUDIT_F_SOURCE, AUDIT_F_REASON
};
/* Fields that hold a keyed hash of a secret or personal value. */
enum audit_hashed_field { AUDIT_H_SESSION, AUDIT_H_SUBJECT };

/* New event; the caller owns it (json_decref).  NULL on a bad action. */
json_t *audit_event_new(const char *action, enum audit_outcome outcome);

/* Each returns 0, or -1 (value refused, event unchanged). */
int audit_event_set(json_t *ev, enum audit_field f, const char *value)
    __attribute__((warn_unused_result));
int audit_event_add_object(json_t *ev, const char *id) __attribute__((warn_unused_result));
/* Store "hmac:" + hex(HMAC-SHA-256(key, value)); the value is never stored. */
int audit_event_set_hashed(json_t *ev, enum audit_hashed_field f,
                           const uint8_t key[AUDIT_HMAC_KEY_LEN], const char *value)
    __attribute__((warn_unused_result));
int audit_event_info_int(json_t *ev, const char *key, int64_t v)
    __attribute__((warn_unused_result));
int audit_event_info_str(json_t *ev, const char *key, const char *v)
    __attribute__((warn_unused_result));

/* The keyed hash alone (for matching: query --subject). out: "hmac:"+64 hex. */
void audit_hmac(const uint8_t key[AUDIT_HMAC_KEY_LEN], const char *value, char out[70]);

/* Check a whole event (what the writer does with every event it is sent).
 * 0, or -1 with a reason code in err. */
int audit_event_validate(const json_t *ev, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Compact JSON text of a valid event; the caller frees it.  NULL if the
 * event does not validate. */
char *audit_event_dump(const json_t *ev);

/* The optional members that event builders take as arguments (vrs_audit,
 * the retention job's job_audit): reason when not NULL, objects when it
 * holds any, info when not NULL.  Set as given, not checked here: the
 * writer validates the whole event (audit_event_validate).  objects and
 * info are borrowed (the event takes its own reference). */
void audit_event_put_optional(json_t *ev, const char *reason, json_t *objects, json_t *info);

/*
 * What counts as touching a person's record (R7.1, R7.4, R7.5) - the one
 * rule the access review (query.c) and the intrusion rules (detect.c)
 * share, decided from what an event names rather than from its action.
 */

/* The daemon acting on its own (transfer answers, the daily retention
 * job); no staff login name can hold an '@'. */
#define AUDIT_SYSTEM_ACTOR "system@mamori"

/* Is `id` ("kind:rest") a record of personal data: a resident (resident:,
 * addr:) or a record about one (vaccination:, voucher:, correction:,
 * consent:, inquiry:, answer:) or a file of them (import:, job:)?  Any
 * other kind (device:, ...) or an id without a kind is not.  A new
 * object kind naming personal data must be added to the list in event.c. */
bool audit_object_is_personal(const char *id);

/* Does `id` name the person (resident:, addr:) rather than a record
 * about them?  The mass-read rule counts people by these. */
bool audit_object_is_person(const char *id);

/* How many people's records `ev` read at once without naming them (a
 * CSV export: info "rows"; the transfer records list: info "records");
 * 0 for any other event.  Bulk writes (imports, retention) are not
 * counted here: they name their file (import:) or each person (addr:). */
int64_t audit_event_bulk_reads(const json_t *ev);

/* Does `ev` touch personal data at all: a personal object, a `subject`
 * (keyed hash of a personal value, e.g. a search with no match), or a
 * bulk read? */
bool audit_event_is_personal(const json_t *ev);

#endif
