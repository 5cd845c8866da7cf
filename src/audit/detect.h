/*
 * detect.h - intrusion detection on the audit event stream (R7.4), run in
 * the audit writer on every event it has made durable, and the webhook
 * that carries alerts out.
 *
 * Rules (thresholds from mamorid.conf, see mamorid.conf(5)):
 *   login_failures_account  >= detect.login_failures failed "auth.login"
 *                           events of one actor within detect.window s
 *   login_failures_source   >= detect.source_failures of one source address;
 *                           the source is then blocked for detect.block_seconds
 *   terminal_refused        any event refused for reason terminal_unregistered
 *                           or terminal_revoked (once per terminal per window)
 *   mass_read               one actor touching >= detect.distinct_residents
 *                           distinct people within detect.read_window s,
 *                           whatever the action: the residents an event
 *                           names, else its subject, else each personal
 *                           record it names, plus the rows of a bulk read
 *                           (audit_object_is_personal & co., event.h)
 *   off_hours               an access to personal data (audit_event_is_personal)
 *                           outside the office hours (Japan time), once per
 *                           actor per window
 * The last two never fire for AUDIT_SYSTEM_ACTOR (the daemon's own work).
 * Each alert is an "intrusion.alert" event (appended to the log by the
 * caller), a log_event "intrusion_alert" at warn, and a webhook POST.
 */
#ifndef MAMORI_AUDIT_DETECT_H
#define MAMORI_AUDIT_DETECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct detect_cfg {
    unsigned login_failures, source_failures, window;
    unsigned distinct_residents, read_window;
    unsigned block_seconds;
    unsigned office_start, office_end;     /* hours, Japan time, [start, end) */
};

struct detect;

struct detect *detect_new(const struct detect_cfg *c);
void detect_free(struct detect *d);

/* Evaluate one durable event written at `now_us`; append alert events
 * (new references) to the array `alerts`.  Returns the number added. */
int detect_feed(struct detect *d, const json_t *ev, int64_t now_us, json_t *alerts);

/* Is `source` blocked at now_us?  *left = seconds remaining. */
bool detect_blocked(struct detect *d, const char *source, int64_t now_us, unsigned *left);

/* Webhook delivery: a thread with a bounded queue; POSTs each alert as
 * JSON, retrying with exponential backoff (1 s doubling to 60 s, at most
 * `attempts` tries).  Never blocks the caller: when the queue is full the
 * alert is dropped and counted (it is in the audit log and syslog anyway). */
struct notifier;

int notifier_start(const char *url, unsigned attempts, unsigned first_delay_ms,
                   struct notifier **out) __attribute__((warn_unused_result));
void notifier_post(struct notifier *n, const json_t *alert);
/* Stop after at most wait_ms for the queue to drain. */
void notifier_stop(struct notifier *n, unsigned wait_ms);
/* Deliveries that succeeded / were given up (tests, stats). */
unsigned notifier_delivered(struct notifier *n);

#endif
