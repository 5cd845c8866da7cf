/*
 * sandbox.c - privilege drop, Landlock and seccomp.
 */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/landlock.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"

/* Older uapi headers lack the later ABI's rights: define what we use. */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

/* The ruleset attribute as of ABI 6; the kernel takes a prefix of it. */
struct ll_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath {
    uint64_t allowed_access;
    int32_t  parent_fd;
} __attribute__((packed));

struct ll_net_port {
    uint64_t allowed_access;
    uint64_t port;
};

#ifndef LANDLOCK_RULE_NET_PORT
#define LANDLOCK_RULE_NET_PORT 2
#endif

#define LL_READ  (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_WRITE (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_FILE | \
                  LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_DIR |      \
                  LANDLOCK_ACCESS_FS_REMOVE_DIR)

int
sandbox_no_core_dumps(void)
{
    struct rlimit rl = { 0, 0 };

    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        return -1;
#ifndef MAMORI_SANITIZE
    /* Not dumpable also keeps other processes of the same uid from
     * ptrace-attaching.  Sanitizer builds need ptrace for leak checks. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return -1;
#endif
    return 0;
}

int
sandbox_drop_privileges(const char *user)
{
    struct passwd *pw;

    if (geteuid() != 0)
        return 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        log_error("privdrop_failed", "user %s does not exist", user);
        errno = ENOENT;
        return -1;
    }
    if (pw->pw_uid == 0) {
        log_error("privdrop_failed", "refusing to run as root: user %s has uid 0", user);
        errno = EPERM;
        return -1;
    }
    if (setgroups(1, &pw->pw_gid) != 0 ||
        setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
        setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0)
        return -1;
    /* Paranoia, as OpenBSD daemons do: make sure there is no way back. */
    if (setuid(0) == 0 || geteuid() == 0 || getegid() == 0) {
        errno = EPERM;
        return -1;
    }
    return 0;
}

int
sandbox_landlock_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
                       LANDLOCK_CREATE_RULESET_VERSION);
    return abi < 0 ? 0 : (int)abi;
}

static uint64_t
fs_rights_for_abi(int abi)
{
    uint64_t all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  /* ABI 1 */

    if (abi >= 2)
        all |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        all |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        all |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return all;
}

static int
add_path_rule(int ruleset, const char *path, uint64_t access, uint64_t handled)
{
    struct ll_path_beneath rule;
    int fd = open(path, O_PATH | O_CLOEXEC);
    int rc;

    if (fd < 0) {
        log_warn("sandbox_path_missing", "sandbox: %s does not exist; no access granted", path);
        return 0;
    }
    rule.allowed_access = access & handled;
    rule.parent_fd = fd;
    rc = (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH,
                      &rule, 0);
    if (rc != 0 && errno == EINVAL) {
        /* A file (not a directory) only takes file rights. */
        rule.allowed_access &= LANDLOCK_ACCESS_FS_READ_FILE |
                               LANDLOCK_ACCESS_FS_WRITE_FILE |
                               LANDLOCK_ACCESS_FS_TRUNCATE;
        rc = (int)syscall(SYS_landlock_add_rule, ruleset,
                          LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
    }
    close(fd);
    return rc;
}

static int
apply_landlock(const struct sandbox_policy *p)
{
    struct ll_ruleset_attr attr = { 0, 0, 0 };
    size_t attr_size = sizeof(uint64_t);
    int abi = sandbox_landlock_abi();
    int ruleset, rc = -1;

    if (abi <= 0) {
        log_warn("landlock_unavailable",
                 "%s: this kernel offers no Landlock; file access is not restricted", p->name);
        return 0;
    }
    attr.handled_access_fs = fs_rights_for_abi(abi);
    if (abi >= 4) {
        /* No process of ours makes or binds TCP sockets after start-up. */
        attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP |
                                  LANDLOCK_ACCESS_NET_CONNECT_TCP;
        attr_size = 2 * sizeof(uint64_t);
    }
    /* A supervisor must still signal its children, which live in their
     * own Landlock domains. */
    if (abi >= 6 && (p->syscalls & SANDBOX_SYS_SUPERVISE) == 0) {
        attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
        attr_size = sizeof(attr);
    }
    ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
    if (ruleset < 0)
        return -1;
    for (const char *const *r = p->read_paths; r != NULL && *r != NULL; r++)
        if (add_path_rule(ruleset, *r, LL_READ, attr.handled_access_fs) != 0)
            goto out;
    for (const char *const *w = p->write_paths; w != NULL && *w != NULL; w++)
        if (add_path_rule(ruleset, *w, LL_READ | LL_WRITE | LANDLOCK_ACCESS_FS_TRUNCATE,
                          attr.handled_access_fs) != 0)
            goto out;
    if (abi >= 4 && (p->syscalls & SANDBOX_SYS_CONNECT) && p->connect_tcp_port != 0) {
        struct ll_net_port np;
        np.allowed_access = LANDLOCK_ACCESS_NET_CONNECT_TCP;
        np.port = p->connect_tcp_port;
        if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_NET_PORT, &np, 0) != 0)
            goto out;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        goto out;
    rc = (int)syscall(SYS_landlock_restrict_self, ruleset, 0);
    if (rc == 0)
        log_event(LOG_LVL_DEBUG, "landlock_applied",
                  json_pack("{s:s,s:i}", "process", p->name, "abi", abi));
out:
    close(ruleset);
    return rc;
}

/* Report a blocked syscall before dying, so operators see which one. */
static void
sigsys_handler(int sig, siginfo_t *si, void *ctx)
{
    char msg[96];
    int n;

    (void)sig;
    (void)ctx;
    n = snprintf(msg, sizeof(msg),
                 "{\"level\":\"error\",\"event\":\"seccomp_violation\",\"syscall\":%d}\n",
                 si->si_syscall);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, msg, (size_t)n);
        (void)w;
    }
    _exit(70);
}

static const int base_syscalls[] = {
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
    SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(close), SCMP_SYS(fstat),
    SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(mmap), SCMP_SYS(munmap),
    SCMP_SYS(mprotect), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(brk),
    SCMP_SYS(futex), SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday), SCMP_SYS(getrandom),
    SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigaction),
    SCMP_SYS(sigaltstack), SCMP_SYS(exit), SCMP_SYS(exit_group),
    SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid),
    SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(getppid), SCMP_SYS(fcntl),
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(epoll_create1),
    SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait),
    SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(recvfrom),
    SCMP_SYS(restart_syscall), SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity), SCMP_SYS(tgkill), SCMP_SYS(getrusage),
    SCMP_SYS(prlimit64), SCMP_SYS(eventfd2), SCMP_SYS(pipe2), SCMP_SYS(dup),
    SCMP_SYS(shutdown), SCMP_SYS(uname), SCMP_SYS(sysinfo), SCMP_SYS(signalfd4),
    SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(membarrier),
    SCMP_SYS(mlock), SCMP_SYS(munlock),   /* libsodium guarded memory */
};

static const int accept_syscalls[] = {
    SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(setsockopt),
    SCMP_SYS(getsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
};

static const int file_syscalls[] = {
    SCMP_SYS(openat), SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate),
    SCMP_SYS(rename), SCMP_SYS(renameat), SCMP_SYS(unlink), SCMP_SYS(unlinkat),
    SCMP_SYS(mkdirat), SCMP_SYS(fchmod), SCMP_SYS(fallocate), SCMP_SYS(flock),
    SCMP_SYS(getdents64), SCMP_SYS(statx), SCMP_SYS(access), SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2), SCMP_SYS(readlink), SCMP_SYS(getcwd), SCMP_SYS(fstatfs),
};

static const int connect_syscalls[] = {
    SCMP_SYS(connect), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),
    SCMP_SYS(getsockname), SCMP_SYS(getpeername),
};

static const int supervise_syscalls[] = {
    SCMP_SYS(kill), SCMP_SYS(wait4), SCMP_SYS(waitid),
};

#ifdef MAMORI_SANITIZE
/* The sanitizer runtime reads /proc and stops threads for leak checks. */
static const int sanitizer_syscalls[] = {
    SCMP_SYS(openat), SCMP_SYS(readlink), SCMP_SYS(ptrace), SCMP_SYS(prctl),
    SCMP_SYS(clone), SCMP_SYS(wait4), SCMP_SYS(getdents64), SCMP_SYS(sched_getparam),
    SCMP_SYS(sched_getscheduler), SCMP_SYS(statx), SCMP_SYS(kill),
};
#endif

static int
allow_all(scmp_filter_ctx ctx, const int *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, list[i], 0) != 0)
            return -1;
    return 0;
}

static int
build_seccomp(scmp_filter_ctx ctx, unsigned groups)
{
#define ALLOW(list) allow_all(ctx, list, sizeof(list) / sizeof(list[0]))
    if (ALLOW(base_syscalls) != 0)
        return -1;
    if ((groups & SANDBOX_SYS_ACCEPT) && ALLOW(accept_syscalls) != 0)
        return -1;
    if ((groups & SANDBOX_SYS_FILES) && ALLOW(file_syscalls) != 0)
        return -1;
    if ((groups & SANDBOX_SYS_SUPERVISE) && ALLOW(supervise_syscalls) != 0)
        return -1;
    /* syslog(3) (re)connects to /dev/log, so only processes that log to
     * syslog may make a local datagram socket and connect it.  TCP stays
     * impossible: no AF_INET socket, and Landlock (ABI 4+) forbids TCP
     * connect and bind. */
    if ((groups & SANDBOX_SYS_SYSLOG) &&
        (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
                          SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0),
                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff, SOCK_DGRAM)) != 0 ||
         ((groups & SANDBOX_SYS_CONNECT) == 0 &&
          seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0) != 0)))
        return -1;
    /* A database client: stream sockets only (Unix, or TCP limited to one
     * port by Landlock), and connect. */
    if ((groups & SANDBOX_SYS_CONNECT) &&
        (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
                          SCMP_A0(SCMP_CMP_EQ, AF_UNIX, 0),
                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff, SOCK_STREAM)) != 0 ||
         seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
                          SCMP_A0(SCMP_CMP_EQ, AF_INET, 0),
                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff, SOCK_STREAM)) != 0 ||
         seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
                          SCMP_A0(SCMP_CMP_EQ, AF_INET6, 0),
                          SCMP_A1(SCMP_CMP_MASKED_EQ, 0xff, SOCK_STREAM)) != 0 ||
         ALLOW(connect_syscalls) != 0))
        return -1;
#ifndef MAMORI_SANITIZE
    /* prctl only to name threads (libmicrohttpd does). */
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                         SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME, 0)) != 0)
        return -1;
#endif
    if (groups & SANDBOX_SYS_THREADS) {
        /* Threads only: clone must share the thread group.  clone3 passes
         * its flags in memory seccomp cannot read, so make glibc fall
         * back to clone. */
        if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)) != 0 ||
            seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0)
            return -1;
    }
#ifdef MAMORI_SANITIZE
    if (ALLOW(sanitizer_syscalls) != 0)
        return -1;
#endif
    return 0;
#undef ALLOW
}

static int
apply_seccomp(const struct sandbox_policy *p)
{
    struct sigaction sa;
    scmp_filter_ctx ctx;
    int rc = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = sigsys_handler;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSYS, &sa, NULL) != 0)
        return -1;
    ctx = seccomp_init(SCMP_ACT_TRAP);
    if (ctx == NULL)
        return -1;
    if (build_seccomp(ctx, p->syscalls) == 0 && seccomp_load(ctx) == 0)
        rc = 0;
    seccomp_release(ctx);
    return rc;
}

int
sandbox_enter(const struct sandbox_policy *p)
{
    int abi = sandbox_landlock_abi();   /* asked now: seccomp forbids it later */

    if (apply_landlock(p) != 0) {
        log_error("sandbox_failed", "%s: Landlock: %s", p->name, strerror(errno));
        return -1;
    }
    if (apply_seccomp(p) != 0) {
        log_error("sandbox_failed", "%s: seccomp: %s", p->name, strerror(errno));
        return -1;
    }
    log_event(LOG_LVL_INFO, "sandboxed",
              json_pack("{s:s,s:i}", "process", p->name, "landlock_abi", abi));
    return 0;
}
