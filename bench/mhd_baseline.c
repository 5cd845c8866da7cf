/*
 * mhd_baseline.c - the least a libmicrohttpd + GnuTLS server can do, as
 * the yardstick for mamorid in bench/healthz.sh.
 *
 * It is configured like one listener of src/http/server.c (same daemon
 * flags, thread pool, connection limits, certificate, key and
 * CONFIG_DEFAULT_PRIORITIES) but has no routing, no validation, no
 * per-request state, no security headers and no logging: every request
 * gets the same small JSON body from one response object made at start.
 * Like server.c it queues the response on the handler's second call, the
 * only way libmicrohttpd keeps a connection alive.
 *
 * usage: mhd_baseline -c CERT -k KEY [-a ADDR] [-p PORT] [-t THREADS]
 *
 * Prints the bound port on stdout (one line), then serves until SIGTERM
 * or SIGINT.  Not a test and not installed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"

#define PEM_MAX (256 * 1024)

static const char body[] = "{\"status\":\"ok\",\"version\":\"baseline\"}";

/* A distinct address per request marks "first call seen". */
static int first_call_marker;

static void
usage(void)
{
    fprintf(stderr, "usage: mhd_baseline -c CERT -k KEY [-a ADDR] [-p PORT] "
                    "[-t THREADS]\n");
    exit(2);
}

static char *
read_pem(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t n;

    if (f == NULL) {
        fprintf(stderr, "mhd_baseline: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    buf = malloc(PEM_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, PEM_MAX, f);
    if (ferror(f) || !feof(f)) {
        fprintf(stderr, "mhd_baseline: %s: unreadable or larger than %d bytes\n",
                path, PEM_MAX);
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int
parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;

    errno = 0;
    *out = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *out > max)
        return -1;
    return 0;
}

/* Bind and listen like proc.c's bind_listener (IPv4 only here). */
static int
listen_on(const char *addr, unsigned port, unsigned *bound)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd, on = 1;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        fprintf(stderr, "mhd_baseline: %s is not a numeric IPv4 address\n", addr);
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        fprintf(stderr, "mhd_baseline: cannot listen on %s:%u: %s\n", addr, port,
                strerror(errno));
        close(fd);
        return -1;
    }
    *bound = ntohs(sin.sin_port);
    return fd;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
           const char *method, const char *version, const char *upload_data,
           size_t *upload_data_size, void **req_cls)
{
    struct MHD_Response *resp = cls;

    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) {
        *req_cls = &first_call_marker;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0;      /* discard any body */
        return MHD_YES;
    }
    return MHD_queue_response(c, MHD_HTTP_OK, resp);
}

int
main(int argc, char *argv[])
{
    const char *cert_path = NULL, *key_path = NULL, *addr = "127.0.0.1";
    unsigned long port = 0, threads = 2;
    unsigned bound = 0;
    struct MHD_Response *resp;
    struct MHD_Daemon *d;
    char *cert, *key;
    sigset_t set;
    int ch, fd, sig;

    while ((ch = getopt(argc, argv, "a:c:k:p:t:")) != -1) {
        switch (ch) {
        case 'a': addr = optarg; break;
        case 'c': cert_path = optarg; break;
        case 'k': key_path = optarg; break;
        case 'p':
            if (parse_uint(optarg, 65535, &port) != 0)
                usage();
            break;
        case 't':
            if (parse_uint(optarg, 64, &threads) != 0 || threads == 0)
                usage();
            break;
        default:
            usage();
        }
    }
    if (optind != argc || cert_path == NULL || key_path == NULL)
        usage();
    cert = read_pem(cert_path);
    key = read_pem(key_path);
    if (cert == NULL || key == NULL)
        return 1;

    /* Signals are taken with sigwait: block them before any thread starts. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);

    fd = listen_on(addr, (unsigned)port, &bound);
    if (fd < 0)
        return 1;
    resp = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)(uintptr_t)body,
                                           MHD_RESPMEM_PERSISTENT);
    if (resp == NULL ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json; charset=utf-8") != MHD_YES)
        return 1;
    /* The same flags and options as http_server_start() in src/http/server.c,
     * minus its connection and completion callbacks and its logger. */
    d = MHD_start_daemon(
        MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
            MHD_USE_ITC | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, resp,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_HTTPS_MEM_CERT, cert,
        MHD_OPTION_HTTPS_MEM_KEY, key,
        MHD_OPTION_HTTPS_PRIORITIES, CONFIG_DEFAULT_PRIORITIES,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1024,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
        MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "mhd_baseline: cannot start libmicrohttpd\n");
        return 1;
    }
    printf("%u\n", bound);
    fflush(stdout);

    do {
        if (sigwait(&set, &sig) != 0)
            break;
    } while (sig != SIGTERM && sig != SIGINT);

    MHD_stop_daemon(d);
    MHD_destroy_response(resp);
    close(fd);
    free(key);
    free(cert);
    return 0;
}
