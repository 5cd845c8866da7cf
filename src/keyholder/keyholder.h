/*
 * keyholder.h - the key holder process: the only process that ever reads
 * the master key file (and, later, the signing keys).  Workers ask it for
 * what they need over their channels; it never sends the master key.
 */
#ifndef MAMORI_KEYHOLDER_H
#define MAMORI_KEYHOLDER_H

#include <stddef.h>

#include "config/config.h"

#define KEYHOLDER_MASTER_KEY_LEN 32

/* Serve fds[0] (parent) and fds[1..n-1] (workers) until shutdown.
 * Returns the process exit status. */
int keyholder_main(const struct mamori_config *cfg, const int *fds, size_t n);

/* The audit writer's channel: the only one on which IPC_AUDIT_SIGN is
 * answered (R7.2).  Set in the child before keyholder_main. */
void keyholder_set_audit_channel(int fd);

#endif
