/*
 * audit_sink.c - the audit sink of a worker's background jobs
 * (audit_sink.h).
 */
#include "worker/audit_sink.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/ipc.h"
#include "worker/worker.h"

/* How long a job waits for the writer's acknowledgement, as the HTTP
 * handlers do. */
#define AUDIT_TIMEOUT_MS 5000

int
worker_audit_sink(void *worker_env, const json_t *ev)
{
    struct worker_env *we = worker_env;
    char *text = json_dumps(ev, JSON_COMPACT);
    uint8_t reply[64];
    struct ipc_hdr rh;
    int rc = -1;

    if (text != NULL &&
        ipc_call(&we->audit, IPC_AUDIT_APPEND, text, strlen(text), &rh, reply, sizeof(reply),
                 AUDIT_TIMEOUT_MS) == 0 && rh.type == IPC_AUDIT_ACK)
        rc = 0;
    free(text);
    return rc;
}
