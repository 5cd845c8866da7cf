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
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/chain.h"
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
    unsigned char              *sign_sk;   /* audit signing key, guarded memory */
    int                         audit_fd;  /* the audit writer's channel */
    const int                  *fds;       /* parent, then one per worker */
    size_t                      nfds;
    /* Key events waiting for the audit writer (R7.7): a ring. */
    uint8_t  q[KEYHOLDER_EVENT_QUEUE][KEYHOLDER_EVENT_LEN];
    size_t   qhead, qlen;
    uint32_t dropped;         /* lost to a full queue since the last pull */
    bool     hinted;          /* IPC_KEY_EVENTS_PENDING sent, no pull since */
    uint8_t  ctx;             /* enum keyholder_ctx of the operation under way */
    uint16_t worker;          /* worker number + 1 of the request under way */
};

static int audit_channel = -1;

static void refuse(int fd, uint32_t id, const char *reason);

void
keyholder_set_audit_channel(int fd)
{
    audit_channel = fd;
}

/* The audit signing key (R7.2): keys.dir/audit-signing.key, 64 bytes,
 * 0600, created on first start; its public half is exported to
 * audit.dir/signing.pub for `mamori audit verify`.  Only this process
 * ever holds the secret half. */
static int
load_signing_key(struct keyholder *k)
{
    char path[PATH_MAX], pub[PATH_MAX], hex[2 * AUDIT_PK_LEN + 2];
    unsigned char pk[AUDIT_PK_LEN];
    struct stat st;
    int fd;

    if (util_path_join(path, sizeof(path), k->cfg->keys_dir, AUDIT_SIGNING_KEY) != 0 ||
        util_path_join(pub, sizeof(pub), k->cfg->audit_dir, AUDIT_SIGNING_PUB) != 0)
        return -1;
    k->sign_sk = sodium_malloc(AUDIT_SK_LEN);
    if (k->sign_sk == NULL)
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        crypto_sign_keypair(pk, k->sign_sk);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || write(fd, k->sign_sk, AUDIT_SK_LEN) != AUDIT_SK_LEN || fsync(fd) != 0 ||
            close(fd) != 0 || util_fsync_parent(path) != 0) {
            log_error("keyholder_init_failed", "cannot create %s: %s", path, strerror(errno));
            return -1;
        }
        log_info("audit_signing_key_created", "created the audit signing key %s", path);
    } else {
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
            (st.st_mode & 077) != 0 || st.st_size != AUDIT_SK_LEN ||
            read(fd, k->sign_sk, AUDIT_SK_LEN) != AUDIT_SK_LEN) {
            log_error("keyholder_init_failed", "%s: not a 64-byte file readable by its owner "
                      "only", path);
            if (fd >= 0)
                close(fd);
            return -1;
        }
        close(fd);
        crypto_sign_ed25519_sk_to_pk(pk, k->sign_sk);
    }
    if (util_hex_encode(pk, sizeof(pk), hex, sizeof(hex)) == 0) {
        size_t l = strlen(hex);
        hex[l] = '\n';
        if (util_write_file_atomic(pub, hex, l + 1, 0644) != 0)
            log_warn("audit_pubkey_export_failed", "cannot write %s: %s", pub, strerror(errno));
    }
    sodium_mprotect_noaccess(k->sign_sk);
    return 0;
}

/* Sign one checkpoint for the audit writer (R7.2): only on its channel,
 * only the fixed 48-byte layout, under a domain prefix so the key signs
 * nothing but checkpoints. */
static void
answer_sign(struct keyholder *k, int fd, const struct ipc_hdr *h, const uint8_t *p)
{
    uint8_t msg[AUDIT_CKPT_MSG_LEN], sig[AUDIT_SIG_LEN];

    if (h->len != AUDIT_SIGN_REQ_LEN || k->sign_sk == NULL) {
        log_warn("ipc_refused", "keyholder: malformed audit sign request");
        refuse(fd, h->id, "malformed_request");
        return;
    }
    audit_ckpt_message(p, msg);
    sodium_mprotect_readonly(k->sign_sk);
    crypto_sign_detached(sig, NULL, msg, sizeof(msg), k->sign_sk);
    sodium_mprotect_noaccess(k->sign_sk);
    if (ipc_send(fd, IPC_AUDIT_SIGNATURE, h->id, 0, sig, sizeof(sig)) != 0)
        log_debug("ipc_send_failed", "keyholder: %s", strerror(errno));
}

static uint8_t
why_of(int err)
{
    switch (err) {
    case 0:       return KH_WHY_NONE;
    case ENOENT:  return KH_WHY_NOT_FOUND;
    case EBADMSG: return KH_WHY_CORRUPT;
    case EPERM:
    case EACCES:  return KH_WHY_PERMISSION;
    case EEXIST:  return KH_WHY_EXISTS;
    case EINVAL:  return KH_WHY_INVALID;
    default:      return KH_WHY_ERROR;
    }
}

static void
put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* The keyring's hook (R7.7): log the operation as before and queue it for
 * the audit log.  Runs under the keyring lock: no keyring calls here. */
static void
on_key_event(void *arg, const struct keyring_event *ev)
{
    struct keyholder *k = arg;
    bool grant = ev->op == KEYRING_OP_GRANT_DATA || ev->op == KEYRING_OP_GRANT_INDEX;
    uint8_t *r;

    keyring_log_event(NULL, ev);
    /* Granted keys are covered by the worker's access event; refusals,
     * opens, reloads and key changes go to the audit log. */
    if (k->audit_fd < 0 || (grant && ev->ok))
        return;
    if (k->qlen == KEYHOLDER_EVENT_QUEUE) {
        if (k->dropped < UINT32_MAX)
            k->dropped++;
        return;
    }
    r = k->q[(k->qhead + k->qlen++) % KEYHOLDER_EVENT_QUEUE];
    memset(r, 0, KEYHOLDER_EVENT_LEN);
    r[0] = (uint8_t)ev->op;
    r[1] = ev->ok ? 1 : 0;
    r[2] = ev->ok ? KH_WHY_NONE : why_of(ev->err);
    r[3] = k->ctx;
    r[4] = (uint8_t)(k->worker >> 8);
    r[5] = (uint8_t)k->worker;
    if (ev->tenant != NULL && strlen(ev->tenant) == 6)
        memcpy(r + 6, ev->tenant, 6);
    put32(r + 12, ev->version);
    put32(r + 16, ev->kek_version);
    if (!k->hinted) {
        /* One hint at a time: the writer pulls everything before the next. */
        if (ipc_send(k->audit_fd, IPC_KEY_EVENTS_PENDING, 0, 0, NULL, 0) == 0)
            k->hinted = true;
        else
            log_warn("ipc_send_failed", "keyholder: cannot notify the audit writer: %s",
                     strerror(errno));
    }
}

/* The audit writer pulls queued key events (R7.7). */
static void
answer_pull(struct keyholder *k, int fd, const struct ipc_hdr *h)
{
    uint8_t out[KEYHOLDER_EVENTS_HDR + KEYHOLDER_EVENTS_PER_MSG * KEYHOLDER_EVENT_LEN];
    size_t n = 0;

    put32(out, k->dropped);
    while (n < k->qlen && n < KEYHOLDER_EVENTS_PER_MSG) {
        memcpy(out + KEYHOLDER_EVENTS_HDR + n * KEYHOLDER_EVENT_LEN,
               k->q[(k->qhead + n) % KEYHOLDER_EVENT_QUEUE], KEYHOLDER_EVENT_LEN);
        n++;
    }
    if (ipc_send(fd, IPC_KEY_EVENTS, h->id, k->qlen > n ? IPC_F_MORE : 0, out,
                 KEYHOLDER_EVENTS_HDR + n * KEYHOLDER_EVENT_LEN) != 0) {
        log_warn("ipc_send_failed", "keyholder: %s", strerror(errno));
        return;      /* still queued: the writer pulls again */
    }
    k->qhead = (k->qhead + n) % KEYHOLDER_EVENT_QUEUE;
    k->qlen -= n;
    k->dropped = 0;
    if (k->qlen == 0)
        k->hinted = false;
}

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
    k->ctx = KH_CTX_REQUEST;
    k->worker = 0;
    for (size_t i = 1; i < k->nfds && i <= UINT16_MAX; i++)
        if (k->fds[i] == fd)
            k->worker = (uint16_t)i;      /* worker i - 1, plus one */
    rc = rq.kind == TENANT_KEY_INDEX
             ? keyring_grant_index_key(k->kr, rq.tenant, &grant)
             : keyring_grant_data_key(k->kr, rq.tenant, rq.version, &grant);
    k->worker = 0;
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
    struct keyring_events ev = { on_key_event, k };

    k->ctx = KH_CTX_RELOAD;
    if (keyring_open(k->cfg->master_key, k->cfg->keys_dir, &ev, &fresh) != 0) {
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
    if (h->type == IPC_AUDIT_SIGN && !from_parent && fd == k->audit_fd && k->audit_fd >= 0) {
        answer_sign(k, fd, h, payload);
        return 0;
    }
    if (h->type == IPC_KEY_EVENTS_PULL && !from_parent && fd == k->audit_fd &&
        k->audit_fd >= 0) {
        answer_pull(k, fd, h);
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
    static struct keyholder k;     /* the queue is large: not on the stack */
    struct keyring_events kev = { on_key_event, &k };
    int all[1 + 64];
    const char *paths[] = { cfg->keys_dir, NULL };
    struct sandbox_policy pol = {
        .name = "keyholder",
        .read_paths = NULL,
        .write_paths = paths,    /* the keystore lives here */
        .syscalls = SANDBOX_SYS_FILES |
                    (cfg->log_target == LOG_TO_SYSLOG ? SANDBOX_SYS_SYSLOG : 0),
    };
    int rc = 1;

    memset(&k, 0, sizeof(k));
    k.cfg = cfg;
    k.audit_fd = audit_channel;
    k.ctx = KH_CTX_START;
    log_setup("keyholder", cfg->log_target, cfg->log_level);
    if (sodium_init() < 0 || sandbox_no_core_dumps() != 0)
        goto out;
    if (keyring_open(cfg->master_key, cfg->keys_dir, &kev, &k.kr) != 0) {
        log_error("keyholder_init_failed", "cannot open the keyring (%s, %s): %s",
                  cfg->master_key, cfg->keys_dir, strerror(errno));
        goto out;
    }
    if (load_signing_key(&k) != 0 || n >= sizeof(all) / sizeof(all[0]))
        goto out;
    memcpy(all, fds, n * sizeof(*fds));
    k.fds = all;
    k.nfds = n;            /* parent and workers, not the audit channel */
    if (k.audit_fd >= 0)
        all[n++] = k.audit_fd;     /* the audit writer asks for signatures here */
    if (sandbox_drop_privileges(cfg->user) != 0 || sandbox_enter(&pol) != 0)
        goto out;
    if (ipc_send(fds[0], IPC_READY, 0, 0, NULL, 0) != 0)
        goto out;
    rc = service_loop("keyholder", all, n, keyholder_handle, &k);
out:
    keyring_close(k.kr);     /* wipes */
    sodium_free(k.sign_sk);
    return rc;
}
