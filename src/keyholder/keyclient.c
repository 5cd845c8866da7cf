/*
 * keyclient.c - key requests from workers to the key holder.
 */
#include "keyholder/keyclient.h"

#include <errno.h>
#include <string.h>

#include "common/util.h"

int
keyclient_request_encode(const struct keyclient_request *rq,
                         uint8_t out[KEYCLIENT_REQUEST_SIZE])
{
    if ((rq->kind != TENANT_KEY_DATA && rq->kind != TENANT_KEY_INDEX) ||
        !tenant_id_valid(rq->tenant)) {
        errno = EINVAL;
        return -1;
    }
    out[0] = rq->kind;
    memcpy(out + 1, rq->tenant, TENANT_ID_LEN);
    out[7] = (uint8_t)(rq->version >> 24);
    out[8] = (uint8_t)(rq->version >> 16);
    out[9] = (uint8_t)(rq->version >> 8);
    out[10] = (uint8_t)rq->version;
    return 0;
}

int
keyclient_request_decode(const uint8_t *buf, size_t len, struct keyclient_request *rq)
{
    if (len != KEYCLIENT_REQUEST_SIZE ||
        (buf[0] != TENANT_KEY_DATA && buf[0] != TENANT_KEY_INDEX))
        goto bad;
    rq->kind = buf[0];
    memcpy(rq->tenant, buf + 1, TENANT_ID_LEN);
    rq->tenant[TENANT_ID_LEN] = '\0';
    rq->version = (uint32_t)buf[7] << 24 | (uint32_t)buf[8] << 16 |
                  (uint32_t)buf[9] << 8 | buf[10];
    if (!tenant_id_valid(rq->tenant) ||
        (rq->kind == TENANT_KEY_INDEX && rq->version != 0))
        goto bad;
    return 0;
bad:
    errno = EBADMSG;
    return -1;
}

static int
ask(void *arg, uint8_t kind, const char *tenant, uint32_t version,
    struct tenant_key **out)
{
    struct keyclient_request rq = { kind, "", version };
    uint8_t req[KEYCLIENT_REQUEST_SIZE], reply[KEYGRANT_SIZE];
    struct ipc_hdr h;
    int rc = -1;

    if (util_strcpy(rq.tenant, sizeof(rq.tenant), tenant) != 0 ||
        keyclient_request_encode(&rq, req) != 0) {
        errno = EINVAL;
        return -1;
    }
    if (ipc_call(arg, IPC_KEY_REQUEST, req, sizeof(req), &h, reply, sizeof(reply),
                 KEYCLIENT_TIMEOUT_MS) != 0)
        return -1;
    if (h.type == IPC_KEY_GRANT && keygrant_decode(reply, h.len, out) == 0) {
        /* A grant for something other than what was asked is as bad as none. */
        if ((*out)->kind == kind && strcmp((*out)->tenant, tenant) == 0 &&
            (version == 0 || (*out)->version == version)) {
            rc = 0;
        } else {
            tenant_key_free(*out);
            *out = NULL;
        }
    }
    if (rc != 0)
        errno = ENOENT;
    util_wipe(reply, sizeof(reply));
    return rc;
}

static int
current_key(void *arg, const char *tenant, struct tenant_key **out)
{
    *out = NULL;
    return ask(arg, TENANT_KEY_DATA, tenant, 0, out);
}

static int
data_key(void *arg, const char *tenant, uint32_t version, struct tenant_key **out)
{
    *out = NULL;
    if (version == 0) {
        errno = EINVAL;
        return -1;
    }
    return ask(arg, TENANT_KEY_DATA, tenant, version, out);
}

static int
index_key(void *arg, const char *tenant, struct tenant_key **out)
{
    *out = NULL;
    return ask(arg, TENANT_KEY_INDEX, tenant, 0, out);
}

void
keyclient_provider(struct ipc_chan *chan, struct key_provider *out)
{
    out->current_key = current_key;
    out->data_key = data_key;
    out->index_key = index_key;
    out->arg = chan;
}
