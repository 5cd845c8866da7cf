/*
 * audit_sink.h - the audit sink of a worker's background jobs: one event
 * to the audit writer over the worker's audit channel (R7.1).
 *
 * The daily retention job (retention_sink_fn, vrs/retention.h) and the
 * transfer runner (transfer_audit_fn, transfer/exchange.h) take the same
 * callback; this is the one both are given in mamorid's workers.  The HTTP handlers' senders
 * (vrs_audit, auth/api.c, audit/api.c) are not this: they log their own
 * refusal messages and build the event text themselves.
 *
 * Kept out of worker.c on purpose: worker.c starts those jobs, so the
 * jobs calling into it would make a cycle.
 */
#ifndef MAMORI_WORKER_AUDIT_SINK_H
#define MAMORI_WORKER_AUDIT_SINK_H

#include <jansson.h>

/*
 * Send `ev` (borrowed; a valid event) as one IPC_AUDIT_APPEND on the
 * audit channel of `worker_env` (a struct worker_env *) and wait for the
 * writer's acknowledgement.  0 once IPC_AUDIT_ACK came back, i.e. the
 * event is durable; -1 otherwise (no text, no answer in time, any other
 * reply), so the caller fails closed.  Logs nothing: the callers know
 * which operation was refused.
 */
int worker_audit_sink(void *worker_env, const json_t *ev);

#endif
