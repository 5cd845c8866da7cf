/*
 * service.c - request loop shared by the key holder and the audit writer.
 */
#include "proc/service.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

#include "common/log.h"

static int
serve_one(const char *name, int fd, int from_parent, uint8_t *buf,
          service_handler handle, void *arg)
{
    struct ipc_hdr h;
    int r = ipc_recv(fd, &h, buf, IPC_MAX_PAYLOAD);

    if (r == 0)
        return from_parent ? 3 : 2;       /* closed */
    if (r < 0) {
        if (errno != EBADMSG)
            return from_parent ? 3 : 2;
        /* Every message is hostile until checked, even the parent's. */
        log_event(LOG_LVL_WARN, "ipc_refused",
                  json_pack("{s:s,s:b}", "process", name, "from_parent", from_parent));
        return 1;
    }
    if (h.type == IPC_SHUTDOWN && from_parent)
        return 0;
    if (h.type == IPC_PING)
        return ipc_send(fd, IPC_PONG, h.id, 0, buf, h.len) == 0 ? 1 : 2;
    return handle(arg, fd, from_parent, &h, buf) == 0 ? 1 : -1;
}

int
service_loop(const char *name, const int *fds, size_t n,
             service_handler handle, void *arg)
{
    struct pollfd *pfd = calloc(n, sizeof(*pfd));
    uint8_t *buf = malloc(IPC_MAX_PAYLOAD);
    int rc = 1;

    if (pfd == NULL || buf == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        pfd[i].fd = fds[i];
        pfd[i].events = POLLIN;
    }
    for (;;) {
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            if (pfd[i].fd < 0 || pfd[i].revents == 0)
                continue;
            int r = serve_one(name, pfd[i].fd, i == 0, buf, handle, arg);
            if (r == 0) {
                rc = 0;
                goto out;
            }
            if (r == -1 || r == 3)
                goto out;
            if (r == 2)
                pfd[i].fd = -1;    /* that worker is gone */
        }
    }
out:
    free(pfd);
    free(buf);
    return rc;
}
