/*
 * keyclient.h - the workers' side of the key holder: a key_provider
 * (crypto/keyprov.h) that asks the key holder over IPC.
 *
 * Request layout (IPC_KEY_REQUEST, 11 bytes):
 *   offset 0  size 1  kind: 1 = data key, 2 = index key
 *   offset 1  size 6  tenant id, 6 ASCII digits (local government code)
 *   offset 7  size 4  data key version, big-endian; 0 = current (index: 0)
 * The reply is IPC_KEY_GRANT (keyprov.h grant layout) or IPC_ERROR.
 */
#ifndef MAMORI_KEYCLIENT_H
#define MAMORI_KEYCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keyprov.h"
#include "ipc/ipc.h"

#define KEYCLIENT_REQUEST_SIZE 11
#define KEYCLIENT_TIMEOUT_MS   5000

struct keyclient_request {
    uint8_t  kind;                       /* enum tenant_key_kind */
    char     tenant[TENANT_ID_LEN + 1];
    uint32_t version;                    /* 0 = current */
};

/* Encode/decode a request; decode refuses anything malformed (-1). */
int keyclient_request_encode(const struct keyclient_request *rq,
                             uint8_t out[KEYCLIENT_REQUEST_SIZE])
    __attribute__((warn_unused_result));
int keyclient_request_decode(const uint8_t *buf, size_t len,
                             struct keyclient_request *rq)
    __attribute__((warn_unused_result));

/* A provider whose calls go to the key holder over `chan` (thread-safe:
 * the channel serialises calls).  `chan` must outlive *out. */
void keyclient_provider(struct ipc_chan *chan, struct key_provider *out);

#endif
