/*
 * cli_util.c - helpers shared by the `mamori` subcommands: messages,
 * option parsing, no-overwrite durable file creation, PEM reading,
 * telling a running mamorid to reload.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

static void
vmsg(const char *who, int errnum, const char *fmt, va_list ap)
{
    fprintf(stderr, "mamori %s: ", who);
    vfprintf(stderr, fmt, ap);
    if (errnum != 0)
        fprintf(stderr, ": %s", strerror(errnum));
    fputc('\n', stderr);
}

void
cli_errx(const char *who, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vmsg(who, 0, fmt, ap);
    va_end(ap);
}

void
cli_err(const char *who, const char *fmt, ...)
{
    int e = errno;
    va_list ap;

    va_start(ap, fmt);
    vmsg(who, e, fmt, ap);
    va_end(ap);
}

void
cli_usage(const char *synopsis)
{
    const char *lead = "usage:";

    while (*synopsis != '\0') {
        size_t n = strcspn(synopsis, "\n");

        fprintf(stderr, "%-6s mamori %.*s\n", lead, (int)n, synopsis);
        synopsis += n;
        if (*synopsis == '\n')
            synopsis++;
        lead = "";
    }
}

void
cli_getopt_reset(void)
{
    /* 0, not 1: glibc then also forgets its internal scan position. */
    optind = 0;
    opterr = 0;
}

void
cli_bad_option(const char *who, char **argv)
{
    /* getopt has moved past the offending element in every case. */
    const char *arg = optind > 0 ? argv[optind - 1] : "?";

    cli_errx(who, "option %s is unknown or needs a value", arg);
}

static int
write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t w = write(fd, p, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int
cli_write_new(const char *path, const void *data, size_t len, unsigned mode)
{
    char tmp[PATH_MAX];
    int fd, e;

    if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* mkostemp creates 0600 with O_EXCL: nobody else can open it. */
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        return -1;
    if (fchmod(fd, (mode_t)mode) != 0 || write_all(fd, data, len) != 0 ||
        fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    /* link(2) never replaces nor follows what is at `path`. */
    if (link(tmp, path) != 0)
        goto fail;
    unlink(tmp);
    return util_fsync_parent(path);
fail:
    e = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    errno = e;
    return -1;
}

int
cli_own_like_parent(const char *path)
{
    char copy[PATH_MAX];
    struct stat st;

    if (geteuid() != 0)
        return 0;
    if (util_strcpy(copy, sizeof(copy), path) != 0 ||
        stat(dirname(copy), &st) != 0)
        return -1;
    return lchown(path, st.st_uid, st.st_gid);
}

int
cli_read_pem(const char *path, char **out)
{
    size_t len;

    return util_read_file(path, CLI_PEM_MAX, out, &len);
}

int
cli_ca_load(const char *who, const char *dir, const char *base,
            struct cli_ca *ca)
{
    char path[PATH_MAX], name[NAME_MAX];

    memset(ca, 0, sizeof(*ca));
    if (snprintf(name, sizeof(name), "%s.crt", base) >= (int)sizeof(name) ||
        util_path_join(path, sizeof(path), dir, name) != 0) {
        cli_errx(who, "path too long under %s", dir);
        return -1;
    }
    if (cli_read_pem(path, &ca->cert_pem) != 0) {
        cli_err(who, "cannot read %s", path);
        return -1;
    }
    if (snprintf(name, sizeof(name), "%s.key", base) >= (int)sizeof(name) ||
        util_path_join(path, sizeof(path), dir, name) != 0) {
        cli_errx(who, "path too long under %s", dir);
        return -1;
    }
    if (util_read_file(path, CLI_PEM_MAX, &ca->key_pem, &ca->key_len) != 0) {
        cli_err(who, "cannot read %s", path);
        return -1;
    }
    return 0;
}

void
cli_ca_free(struct cli_ca *ca)
{
    free(ca->cert_pem);
    if (ca->key_pem != NULL) {
        util_wipe(ca->key_pem, ca->key_len);
        free(ca->key_pem);
    }
    memset(ca, 0, sizeof(*ca));
}

void
cli_iso8601(time_t t, char out[21])
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL ||
        strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 21, "%s", "?");
}

/* Is `pid` plausibly mamorid?  A stale pid file may name a reused pid;
 * SIGHUP kills most other programs, so look before signalling.  Where
 * /proc is not available, trust the pid file. */
static bool
pid_is_mamorid(long pid)
{
    char path[64], comm[32] = "";
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    if ((f = fopen(path, "re")) == NULL)
        return true;
    if (fgets(comm, sizeof(comm), f) == NULL)
        comm[0] = '\0';
    fclose(f);
    return strncmp(comm, "mamori", 6) == 0;
}

int
cli_daemon_reload(const char *who, const char *pidfile, const char *what)
{
    char *buf = NULL;
    size_t len;
    uint64_t pid;

    if (util_read_file(pidfile, 32, &buf, &len) != 0) {
        if (errno == ENOENT) {
            printf("mamorid is not running (no %s); it reads %s when it "
                   "starts\n", pidfile, what);
            return 0;
        }
        cli_err(who, "warning: cannot read %s", pidfile);
        return 0;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    if (util_parse_u64(buf, 1, INT_MAX, &pid) != 0) {
        free(buf);
        cli_errx(who, "warning: %s does not hold a process id; "
                 "mamorid not signalled", pidfile);
        return 0;
    }
    free(buf);
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
        printf("mamorid is not running (stale %s); it reads %s when it "
               "starts\n", pidfile, what);
        return 0;
    }
    if (!pid_is_mamorid((long)pid)) {
        printf("process %ld named in %s is not mamorid; not signalled\n",
               (long)pid, pidfile);
        return 0;
    }
    if (kill((pid_t)pid, SIGHUP) != 0) {
        cli_errx(who, "%s is updated but mamorid (pid %ld) could not be "
                 "told to reload it (%s); run kill -HUP %ld as its user",
                 what, (long)pid, strerror(errno), (long)pid);
        return -1;
    }
    printf("sent SIGHUP to mamorid (pid %ld): it reloads %s now\n",
           (long)pid, what);
    return 0;
}
