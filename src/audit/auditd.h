/*
 * auditd.h - the audit writer process: the only process that writes the
 * audit log.  Workers send IPC_AUDIT_APPEND with one event (a JSON
 * object); the writer makes it durable and only then answers
 * IPC_AUDIT_ACK with the event's sequence number, so a worker can
 * acknowledge an operation only after its audit entry is on disk.
 *
 * Behind this interface: the hash chain, signed checkpoints, rotation
 * and retention (R7.2, R7.3, audit/writer.h) and intrusion detection
 * (R7.4, audit/detect.h).  Events must match the schema in
 * audit/event.h (R7.1); others are refused with a reason code.
 */
#ifndef MAMORI_AUDITD_H
#define MAMORI_AUDITD_H

#include <stddef.h>

#include "config/config.h"

int auditd_main(const struct mamori_config *cfg, const int *fds, size_t n);

/* The channel on which the writer asks the key holder to sign checkpoints
 * (R7.2); set in the child before auditd_main.  Without one, checkpoints
 * are not signed (a warning is logged). */
void auditd_set_keyholder_channel(int fd);

/* The channels on which workers send IPC_AUDIT_QUERY (R7.5), one per
 * worker, apart from their append channels; set in the child before
 * auditd_main.  They are served by a thread of the writer's own, so a
 * query never delays an append: IPC_AUDIT_QUERY (JSON: kind "events" or
 * "review", tenant -- required --, filters, from_us/to_us, after_seq,
 * limit) -> IPC_AUDIT_ROWS pages {"part":P,"rows":[...]} with
 * IPC_F_MORE, then {"result":{...}} (docs/audit.md), or IPC_ERROR. */
void auditd_set_query_channels(const int *fds, size_t n);

#endif
