/*
 * keyholder.c - the key holder process.
 *
 * For now it loads and guards the master key and answers PING; the
 * storage layer adds data-key grants through keyholder_handle().
 */
#include "keyholder/keyholder.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "proc/service.h"
#include "sandbox/sandbox.h"

struct keyholder {
    unsigned char *master;   /* sodium_malloc'd, no access except when used */
};

/* Read the master key into guarded memory.  The file must be a regular
 * file of exactly 32 bytes, not readable by group or others. */
static int
load_master(const char *path, struct keyholder *k)
{
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        log_error("keyholder_init_failed", "cannot open the master key file %s: %s",
                  path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 ||
        st.st_size != KEYHOLDER_MASTER_KEY_LEN) {
        log_error("keyholder_init_failed",
                  "%s must be a 32-byte file with mode 0600", path);
        close(fd);
        return -1;
    }
    k->master = sodium_malloc(KEYHOLDER_MASTER_KEY_LEN);
    if (k->master == NULL) {
        close(fd);
        return -1;
    }
    n = read(fd, k->master, KEYHOLDER_MASTER_KEY_LEN);
    close(fd);
    if (n != KEYHOLDER_MASTER_KEY_LEN) {
        log_error("keyholder_init_failed", "short read of %s", path);
        return -1;
    }
    sodium_mprotect_noaccess(k->master);
    return 0;
}

static int
keyholder_handle(void *arg, int fd, int from_parent, const struct ipc_hdr *h,
                 const uint8_t *payload)
{
    static const char reason[] = "unsupported";

    (void)arg;
    (void)payload;
    log_event(LOG_LVL_WARN, "ipc_refused",
              json_pack("{s:s,s:s,s:b}", "process", "keyholder",
                        "type", ipc_type_name(h->type), "from_parent", from_parent));
    /* Refused and answered; a peer that is gone is noticed by the loop. */
    if (ipc_send(fd, IPC_ERROR, h->id, 0, reason, sizeof(reason) - 1) != 0)
        log_debug("ipc_send_failed", "keyholder: %s", strerror(errno));
    return 0;
}

int
keyholder_main(const struct mamori_config *cfg, const int *fds, size_t n)
{
    struct keyholder k = { NULL };
    const char *paths[] = { cfg->keys_dir, NULL };
    struct sandbox_policy pol = {
        .name = "keyholder",
        .read_paths = NULL,
        .write_paths = paths,    /* key rotation rewrites the keystore */
        .syscalls = SANDBOX_SYS_FILES |
                    (cfg->log_target == LOG_TO_SYSLOG ? SANDBOX_SYS_SYSLOG : 0),
    };
    int rc = 1;

    log_setup("keyholder", cfg->log_target, cfg->log_level);
    if (sodium_init() < 0 || sandbox_no_core_dumps() != 0 ||
        load_master(cfg->master_key, &k) != 0 ||
        sandbox_drop_privileges(cfg->user) != 0 || sandbox_enter(&pol) != 0)
        goto out;
    if (ipc_send(fds[0], IPC_READY, 0, 0, NULL, 0) != 0)
        goto out;
    rc = service_loop("keyholder", fds, n, keyholder_handle, &k);
out:
    sodium_free(k.master);   /* wipes */
    return rc;
}
