/*
 * proc.h - mamorid's process table and the parent (supervisor).
 *
 *   parent     binds the listeners, forks the others, reloads the
 *              revocation list on SIGHUP, drains on SIGTERM
 *   keyholder  the only reader of the master key (and signing keys)
 *   audit      the only writer of the audit log
 *   worker[N]  TLS + HTTP on both listeners, sandboxed
 *
 * If any child dies unexpectedly the parent stops the others and exits
 * non-zero: a supervisor (systemd) restarts the whole set, so no process
 * ever runs beside a half-initialised peer.
 */
#ifndef MAMORI_PROC_H
#define MAMORI_PROC_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

/* Check everything start-up would check, without starting (mamorid -n):
 * certificates and keys readable and matching, TLS priorities valid,
 * revocation list and reference data well-formed.  Returns 0, or -1 with
 * a plain sentence in err. */
int proc_check(const struct mamori_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Run the daemon.  When !foreground the process detaches; the calling
 * process returns only after the daemon is ready (0) or has failed (1).
 * Returns the exit status. */
int proc_run(const struct mamori_config *cfg, bool foreground);

#endif
