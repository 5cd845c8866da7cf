/*
 * keyholder.c - the key holder process.
 *
 * It opens the keyring (master key and keystore) and answers key requests
 * from workers with grants: one unwrapped data or index key of one
 * tenant.  The master key and the tenants' key-encryption keys never
 * leave this process (R1.4).
 */
#include "keyholder/keyholder.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "crypto/keyprov.h"
#include "crypto/keyring.h"
#include "keyholder/keyclient.h"
#include "proc/service.h"
#include "sandbox/sandbox.h"

struct keyholder {
    const struct mamori_config *cfg;
    struct keyring             *kr;
};

static void
refuse(int fd, uint32_t id, const char *reason)
{
    if (ipc_send(fd, IPC_ERROR, id, 0, reason, strlen(reason)) != 0)
        log_debug("ipc_send_failed", "keyholder: %s", strerror(errno));
}

/* One grant for a worker.  The request was size-checked by ipc_recv;
 * its contents are checked here. */
static void
answer_key_request(struct keyholder *k, int fd, const struct ipc_hdr *h,
                   const uint8_t *p)
{
    struct keyclient_request rq;
    struct tenant_key *grant = NULL;
    uint8_t wire[KEYGRANT_SIZE];
    int rc;

    if (keyclient_request_decode(p, h->len, &rq) != 0) {
        log_warn("ipc_refused", "keyholder: malformed key request");
        refuse(fd, h->id, "malformed_request");
        return;
    }
    rc = rq.kind == TENANT_KEY_INDEX
             ? keyring_grant_index_key(k->kr, rq.tenant, &grant)
             : keyring_grant_data_key(k->kr, rq.tenant, rq.version, &grant);
    if (rc != 0 || keygrant_encode(grant, wire) != 0) {
        /* Unknown or erased tenant, or no such version. */
        tenant_key_free(grant);
        refuse(fd, h->id, "no_such_key");
        return;
    }
    tenant_key_free(grant);
    if (ipc_send(fd, IPC_KEY_GRANT, h->id, 0, wire, sizeof(wire)) != 0)
        log_debug("ipc_send_failed", "keyholder: %s", strerror(errno));
    util_wipe(wire, sizeof(wire));
}

/* Re-read the keystore after `mamori key` or `mamori tenant` changed it
 * (SIGHUP to mamorid).  On failure the keyring in use stays. */
static void
reload(struct keyholder *k)
{
    struct keyring *fresh;

    if (keyring_open(k->cfg->master_key, k->cfg->keys_dir, NULL, &fresh) != 0) {
        log_error("keystore_reload_failed", "cannot re-read the keystore: %s; "
                  "the keys in use stay", strerror(errno));
        return;
    }
    keyring_close(k->kr);
    k->kr = fresh;
    log_info("keystore_reloaded", "keystore re-read");
}

static int
keyholder_handle(void *arg, int fd, int from_parent, const struct ipc_hdr *h,
                 const uint8_t *payload)
{
    struct keyholder *k = arg;

    if (h->type == IPC_KEY_REQUEST && !from_parent) {
        answer_key_request(k, fd, h, payload);
        return 0;
    }
    if (h->type == IPC_KEYS_RELOAD && from_parent) {
        reload(k);
        return 0;
    }
    log_event(LOG_LVL_WARN, "ipc_refused",
              json_pack("{s:s,s:s,s:b}", "process", "keyholder",
                        "type", ipc_type_name(h->type), "from_parent", from_parent));
    refuse(fd, h->id, "unsupported");
    return 0;
}

int
keyholder_main(const struct mamori_config *cfg, const int *fds, size_t n)
{
    struct keyholder k = { cfg, NULL };
    const char *paths[] = { cfg->keys_dir, NULL };
    struct sandbox_policy pol = {
        .name = "keyholder",
        .read_paths = NULL,
        .write_paths = paths,    /* the keystore lives here */
        .syscalls = SANDBOX_SYS_FILES |
                    (cfg->log_target == LOG_TO_SYSLOG ? SANDBOX_SYS_SYSLOG : 0),
    };
    int rc = 1;

    log_setup("keyholder", cfg->log_target, cfg->log_level);
    if (sodium_init() < 0 || sandbox_no_core_dumps() != 0)
        goto out;
    if (keyring_open(cfg->master_key, cfg->keys_dir, NULL, &k.kr) != 0) {
        log_error("keyholder_init_failed", "cannot open the keyring (%s, %s): %s",
                  cfg->master_key, cfg->keys_dir, strerror(errno));
        goto out;
    }
    if (sandbox_drop_privileges(cfg->user) != 0 || sandbox_enter(&pol) != 0)
        goto out;
    if (ipc_send(fds[0], IPC_READY, 0, 0, NULL, 0) != 0)
        goto out;
    rc = service_loop("keyholder", fds, n, keyholder_handle, &k);
out:
    keyring_close(k.kr);     /* wipes */
    return rc;
}
