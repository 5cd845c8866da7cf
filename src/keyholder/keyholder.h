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

/*
 * Key operations into the audit log (R7.7).  The key holder queues a
 * record for every keyring operation except successful grants (those are
 * covered by the worker's own access event) -- keystore opens and
 * reloads, refused grants, key changes -- and tells the audit writer with
 * one empty IPC_KEY_EVENTS_PENDING on the audit channel.  The writer
 * pulls with IPC_KEY_EVENTS_PULL and gets IPC_KEY_EVENTS: dropped(4, BE)
 * then up to KEYHOLDER_EVENTS_PER_MSG records of KEYHOLDER_EVENT_LEN
 * bytes, flag IPC_F_MORE if more are queued.  So requests still flow
 * audit writer -> key holder only; the hint needs no answer.  A record:
 *
 *   op(1)  enum keyring_op          ok(1)      0 refused/failed, 1 done
 *   why(1) enum keyholder_reason    ctx(1)     enum keyholder_ctx
 *   worker(2, BE) 0 = none, else worker number + 1
 *   tenant(6) ASCII digits, or 6 zero bytes for none
 *   version(4, BE)  kek_version(4, BE)
 */
#define KEYHOLDER_EVENT_LEN       22
#define KEYHOLDER_EVENTS_PER_MSG  48
#define KEYHOLDER_EVENTS_HDR      4
#define KEYHOLDER_EVENT_QUEUE     256

enum keyholder_reason {
    KH_WHY_NONE = 0, KH_WHY_NOT_FOUND, KH_WHY_CORRUPT, KH_WHY_PERMISSION,
    KH_WHY_EXISTS, KH_WHY_INVALID, KH_WHY_ERROR, KH_WHY_END
};
enum keyholder_ctx { KH_CTX_START = 0, KH_CTX_RELOAD, KH_CTX_REQUEST, KH_CTX_END };

#endif
