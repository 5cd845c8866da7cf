/*
 * sandbox.h - how a mamorid process locks itself down before it reads
 * any input: privilege drop, no core dumps, Landlock path (and TCP) rules,
 * and a seccomp syscall allowlist.
 *
 * Linux counterpart of OpenBSD's pledge()/unveil(): Landlock restricts
 * which files the process can open, seccomp which syscalls it can make.
 * Where the kernel lacks Landlock the process carries on with a logged
 * warning (seccomp is required).
 */
#ifndef MAMORI_SANDBOX_H
#define MAMORI_SANDBOX_H

#include <stdbool.h>

/* Syscall groups a process may need on top of the base set
 * (memory, time, signals to itself, I/O on descriptors it holds). */
#define SANDBOX_SYS_THREADS 0x1u   /* create threads (clone with CLONE_THREAD) */
#define SANDBOX_SYS_ACCEPT  0x2u   /* accept on inherited listening sockets */
#define SANDBOX_SYS_FILES   0x4u   /* open/create/sync files (Landlock limits where) */
#define SANDBOX_SYS_SUPERVISE 0x8u /* signal and reap child processes (the parent) */
#define SANDBOX_SYS_SYSLOG  0x10u  /* connect a local socket to /dev/log (log.target = syslog) */
#define SANDBOX_SYS_CONNECT 0x20u  /* stream sockets to a database: Unix, or TCP to connect_tcp_port */

struct sandbox_policy {
    const char *name;                 /* for logs: "worker", "keyholder", ... */
    const char *const *read_paths;    /* NULL-terminated; read-only beneath */
    const char *const *write_paths;   /* NULL-terminated; read-write beneath */
    unsigned syscalls;                /* SANDBOX_SYS_* */
    unsigned connect_tcp_port;        /* with SANDBOX_SYS_CONNECT: the one TCP
                                         port Landlock lets it connect to; 0 none */
};

/* Stop core dumps (they would hold keys and personal data): RLIMIT_CORE 0
 * and not dumpable.  Call first in every process. */
int sandbox_no_core_dumps(void) __attribute__((warn_unused_result));

/* If running as root, switch to `user` for good (groups, gid, uid) and
 * check it cannot be undone.  Not root: nothing to do.  Returns 0 or -1
 * (an unknown user is an error). */
int sandbox_drop_privileges(const char *user) __attribute__((warn_unused_result));

/* Apply Landlock then seccomp for this process (all its threads created
 * afterwards inherit both).  Irreversible.  Returns 0 or -1. */
int sandbox_enter(const struct sandbox_policy *p) __attribute__((warn_unused_result));

/* Highest Landlock ABI the running kernel offers; 0 when none. */
int sandbox_landlock_abi(void);

#endif
