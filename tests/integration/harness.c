/*
 * harness.c - integration test harness.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *
h_bin(const char *name)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];

    snprintf(p, 512, "%s/%s", MAMORI_TEST_BINARY_DIR, name);
    return p;
}

int
h_run(char *const argv[], char *out, size_t outsz)
{
    int pipefd[2], status;
    pid_t pid;
    size_t got = 0;

    if (pipe(pipefd) != 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pipefd[1]);
    for (;;) {
        char buf[512];
        ssize_t n = read(pipefd[0], buf, sizeof(buf));
        if (n <= 0)
            break;
        if (out != NULL && got + 1 < outsz) {
            size_t take = (size_t)n < outsz - 1 - got ? (size_t)n : outsz - 1 - got;
            memcpy(out + got, buf, take);
            got += take;
        }
    }
    if (out != NULL)
        out[got] = '\0';
    close(pipefd[0]);
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

long
h_state(const struct instance *in, const char *field)
{
    char path[400];
    json_t *doc;
    long v = -1;

    snprintf(path, sizeof(path), "%s/run/ports.json", in->dir);
    doc = json_load_file(path, 0, NULL);
    if (doc != NULL && json_is_integer(json_object_get(doc, field)))
        v = (long)json_integer_value(json_object_get(doc, field));
    json_decref(doc);
    return v;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

bool
h_wait_state_above(const struct instance *in, const char *field, long than)
{
    for (int i = 0; i < 1000; i++) {
        if (h_state(in, field) > than)
            return true;
        sleep_ms(10);
    }
    return false;
}

int
h_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int
append_conf(const struct instance *in, const char *extra)
{
    FILE *f = fopen(in->conf, "a");

    if (f == NULL)
        return -1;
    fputs(extra, f);
    return fclose(f);
}

int
h_init(struct instance *in)
{
    char tmpl[] = "/tmp/mamori-it-XXXXXX";
    char *argv_init[] = { (char *)h_bin("mamori"), "init", "--internal-listen",
                          "127.0.0.1:0", "--public-listen", "127.0.0.1:0", in->dir, NULL };
    char *root = mkdtemp(tmpl);

    memset(in, 0, sizeof(*in));
    /* The daemon drops to an unprivileged user when run as root: it must
     * be able to reach the data directory. */
    if (root == NULL || chmod(root, 0711) != 0)
        return -1;
    /* init wants a directory that does not exist yet (or is empty). */
    snprintf(in->dir, sizeof(in->dir), "%s/data", root);
    snprintf(in->conf, sizeof(in->conf), "%s/mamorid.conf", in->dir);
    snprintf(in->log, sizeof(in->log), "%s/mamorid.log", root);
    argv_init[6] = in->dir;
    if (h_run(argv_init, NULL, 0) != 0)
        return -1;
    /* The daily retention job (R2.10) runs at start once its time of the
     * day has passed: off unless a test asks for it (it_retention.c), so
     * no test meets events or deletions it did not cause. */
    return append_conf(in, "records.retention_schedule = off\n");
}

int
h_set_conf(const struct instance *in, const char *key, const char *value)
{
    FILE *f = fopen(in->conf, "r");
    char line[2048], *out = NULL;
    size_t outlen = 0, klen = strlen(key);
    FILE *mem = open_memstream(&out, &outlen);
    bool done = false;

    if (f == NULL || mem == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, klen) == 0 && (line[klen] == ' ' || line[klen] == '=')) {
            fprintf(mem, "%s = %s\n", key, value);
            done = true;
        } else {
            fputs(line, mem);
        }
    }
    if (!done)
        fprintf(mem, "%s = %s\n", key, value);
    fclose(f);
    fclose(mem);
    f = fopen(in->conf, "w");
    if (f == NULL) {
        free(out);
        return -1;
    }
    fwrite(out, 1, outlen, f);
    free(out);
    return fclose(f);
}

int
h_launch(struct instance *in)
{
    in->pid = fork();
    if (in->pid < 0)
        return -1;
    if (in->pid == 0) {
        int fd = open(in->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        /* LeakSanitizer stops the world with ptrace from a helper process,
         * which the daemon's own seccomp and Landlock rules (rightly)
         * forbid; leaks are checked by the unit tests of every module. */
        setenv("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1", 1);
        execl(h_bin("mamorid"), "mamorid", "-f", "-c", in->conf, (char *)NULL);
        _exit(127);
    }
    /* ports.json appears once every process reported ready. */
    for (int i = 0; i < 3000; i++) {
        long ip = h_state(in, "internal_port"), pp = h_state(in, "public_port");
        if (ip > 0 && pp > 0) {
            in->internal_port = (uint16_t)ip;
            in->public_port = (uint16_t)pp;
            return 0;
        }
        if (waitpid(in->pid, NULL, WNOHANG) == in->pid) {
            in->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    return -1;
}

int
h_start(struct instance *in, const char *extra_conf)
{
    if (h_init(in) != 0)
        return -1;
    if (extra_conf != NULL && append_conf(in, extra_conf) != 0)
        return -1;
    return h_launch(in);
}

int
h_stop(struct instance *in)
{
    int status;

    if (in->pid <= 0)
        return -1;
    kill(in->pid, SIGTERM);
    for (int i = 0; i < 3000; i++) {
        pid_t r = waitpid(in->pid, &status, WNOHANG);
        if (r == in->pid) {
            in->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        sleep_ms(10);
    }
    kill(in->pid, SIGKILL);
    waitpid(in->pid, &status, 0);
    in->pid = 0;
    return -1;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
h_cleanup(struct instance *in)
{
    char root[256];
    char *slash;

    if (in->pid > 0)
        (void)h_stop(in);
    if (in->dir[0] == '\0')
        return;
    snprintf(root, sizeof(root), "%s", in->dir);
    slash = strrchr(root, '/');
    if (slash != NULL)
        *slash = '\0';
    if (getenv("MAMORI_KEEP_TEST_DIRS") == NULL)
        nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
abs_path(const struct instance *in, const char *p, char *out, size_t outsz)
{
    if (p[0] == '/')
        snprintf(out, outsz, "%s", p);
    else
        snprintf(out, outsz, "%s/%s", in->dir, p);
}

CURL *
h_curl(const struct instance *in, const char *cert, const char *key)
{
    CURL *c = curl_easy_init();
    char ca[400];

    abs_path(in, "pki/ca.crt", ca, sizeof(ca));
    curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (cert != NULL && key != NULL) {
        char cp[400], kp[400];
        abs_path(in, cert, cp, sizeof(cp));
        abs_path(in, key, kp, sizeof(kp));
        curl_easy_setopt(c, CURLOPT_SSLCERT, cp);
        curl_easy_setopt(c, CURLOPT_SSLKEY, kp);
    }
    return c;
}

size_t
h_collect_body(char *data, size_t size, size_t n, void *arg)
{
    struct h_response *r = arg;
    size_t add = size * n;
    char *grown = realloc(r->body, r->len + add + 1);

    if (grown == NULL)
        return 0;
    r->body = grown;
    memcpy(r->body + r->len, data, add);
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
    struct h_response *r = arg;
    size_t used = strlen(r->headers), add = size * n;

    if (used + add < sizeof(r->headers)) {
        memcpy(r->headers + used, data, add);
        r->headers[used + add] = '\0';
    }
    return add;
}

/* What every request shares: the URL, the callbacks filling r, the
 * transfer, its status and Content-Type.  hdrs: the caller's (may be NULL). */
static void
perform(const struct instance *in, CURL *c, bool internal, const char *path,
        struct curl_slist *hdrs, struct h_response *r)
{
    char url[1400];
    char *ct = NULL;

    snprintf(url, sizeof(url), "https://localhost:%u%s",
             (unsigned)(internal ? in->internal_port : in->public_port), path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_collect_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &r->connects);
    if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct != NULL)
        snprintf(r->ctype, sizeof(r->ctype), "%s", ct);
    /* the list is freed by the caller: the handle must not keep it */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
}

void
h_request(const struct instance *in, CURL *c, bool internal, const char *method,
          const char *path, const char *body, struct h_response *r)
{
    struct curl_slist *hdrs = NULL;

    memset(r, 0, sizeof(*r));
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(c, CURLOPT_HTTPGET, strcmp(method, "GET") == 0 ? 1L : 0L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    perform(in, c, internal, path, hdrs, r);
    curl_slist_free_all(hdrs);
}

void
h_request_cred(const struct instance *in, CURL *c, bool internal, const char *method,
               const char *path, const char *body, const struct h_cred *cred,
               struct h_response *r)
{
    static const struct h_cred none;
    struct curl_slist *hdrs = NULL;
    char h[128];

    if (cred == NULL)
        cred = &none;
    memset(r, 0, sizeof(*r));
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {                        /* an empty body: Content-Length: 0 */
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    if (cred->token != NULL) {
        snprintf(h, sizeof(h), "Authorization: Bearer %s", cred->token);
        hdrs = curl_slist_append(hdrs, h);
    }
    if (cred->csrf != NULL) {
        snprintf(h, sizeof(h), "X-CSRF-Token: %s", cred->csrf);
        hdrs = curl_slist_append(hdrs, h);
    }
    curl_easy_setopt(c, CURLOPT_COOKIE, cred->cookie);
    perform(in, c, internal, path, hdrs, r);
    curl_easy_setopt(c, CURLOPT_COOKIE, NULL);
    curl_slist_free_all(hdrs);
}

void
h_response_free(struct h_response *r)
{
    free(r->body);
    r->body = NULL;
}

json_t *
h_json(const struct h_response *r)
{
    return r->body ? json_loads(r->body, 0, NULL) : NULL;
}

int
h_tls_connect(uint16_t port, const char *priorities, const char *cafile,
              const char *cert, const char *key, gnutls_session_t *s,
              gnutls_certificate_credentials_t *cred, int *fd)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
    int r;

    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || connect(*fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return GNUTLS_E_PUSH_ERROR;
    gnutls_certificate_allocate_credentials(cred);
    gnutls_certificate_set_x509_trust_file(*cred, cafile, GNUTLS_X509_FMT_PEM);
    if (cert != NULL)
        gnutls_certificate_set_x509_key_file(*cred, cert, key, GNUTLS_X509_FMT_PEM);
    gnutls_init(s, GNUTLS_CLIENT);
    r = gnutls_priority_set_direct(*s, priorities, NULL);
    if (r < 0)
        return r;
    gnutls_credentials_set(*s, GNUTLS_CRD_CERTIFICATE, *cred);
    gnutls_server_name_set(*s, GNUTLS_NAME_DNS, "localhost", 9);
    gnutls_session_set_verify_cert(*s, "localhost", 0);
    gnutls_transport_set_int(*s, *fd);
    gnutls_handshake_set_timeout(*s, 10000);
    do {
        r = gnutls_handshake(*s);
    } while (r < 0 && gnutls_error_is_fatal(r) == 0);
    return r < 0 ? r : 0;
}

void
h_tls_close(gnutls_session_t s, gnutls_certificate_credentials_t cred, int fd)
{
    if (s != NULL)
        gnutls_deinit(s);
    if (cred != NULL)
        gnutls_certificate_free_credentials(cred);
    if (fd >= 0)
        close(fd);
}
