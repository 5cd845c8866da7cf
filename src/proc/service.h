/*
 * service.h - the shared loop of the key holder and the audit writer:
 * serve framed requests from the parent and from every worker.
 */
#ifndef MAMORI_SERVICE_H
#define MAMORI_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "ipc/ipc.h"

/* Answer one valid request.  `from_parent` tells the control channel
 * apart.  Write the reply with ipc_send on fd.  Return 0 to go on, -1 to
 * stop the service (a broken invariant). */
typedef int (*service_handler)(void *arg, int fd, int from_parent,
                               const struct ipc_hdr *h, const uint8_t *payload);

/* Poll fds[0] (the parent) and fds[1..n-1] (workers) until the parent
 * sends IPC_SHUTDOWN or goes away.  PING is answered here; malformed
 * messages are logged and dropped; a worker that closes its channel is
 * forgotten.  Returns 0 on a requested shutdown, 1 otherwise. */
int service_loop(const char *name, const int *fds, size_t n,
                 service_handler handle, void *arg);

#endif
