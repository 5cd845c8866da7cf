/*
 * auditd.h - the audit writer process: the only process that writes the
 * audit log.  Workers send IPC_AUDIT_APPEND with one event (a JSON
 * object); the writer makes it durable and only then answers
 * IPC_AUDIT_ACK with the event's sequence number, so a worker can
 * acknowledge an operation only after its audit entry is on disk.
 *
 * This is the message interface; the tamper-evident chain, signed
 * checkpoints and rotation (R7.2, R7.3) are built behind it.
 */
#ifndef MAMORI_AUDITD_H
#define MAMORI_AUDITD_H

#include <stddef.h>

#include "config/config.h"

int auditd_main(const struct mamori_config *cfg, const int *fds, size_t n);

#endif
