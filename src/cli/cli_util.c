/*
 * cli_util.c - helpers shared by the `mamori` subcommands: messages,
 * option parsing, no-overwrite durable file creation, PEM reading.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
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
