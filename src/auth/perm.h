/*
 * perm.h - roles, permissions and the one permission matrix (R6.6, R6.7,
 * R1.2, R1.3).
 *
 * Every route declares one permission (http/routes.c); the server lets a
 * request through only if the session's role has it (auth_role_allows,
 * the matrix in perm.c).  Nothing else decides access to a route.
 */
#ifndef MAMORI_AUTH_PERM_H
#define MAMORI_AUTH_PERM_H

#include <stdbool.h>

#include "ref/lgcode.h"

/* Permissions.  0 is deliberately invalid so a route that forgets to
 * declare one is caught by the route-table test (deny by default). */
enum perm {
    PERM_INVALID = 0,
    PERM_ANONYMOUS,        /* no session needed (health, public reference data, login) */
    PERM_SESSION,          /* one's own session: whoami, logout, change password */
    PERM_STAFF_MANAGE,     /* the tenant's staff: create, reset, re-confirm, roles */
    PERM_TERMINAL_MANAGE,  /* the tenant's terminals: register, revoke */
    PERM_RESIDENT_READ,    /* personal records of the tenant */
    PERM_RESIDENT_WRITE,
    PERM_RESIDENT_APPROVE, /* second pair of eyes on a change */
    PERM_AUDIT_READ,       /* audit log and its reports */
    PERM_REPORT_READ,      /* operational reports (no personal data) */
    PERM_AGGREGATE_READ,   /* statistics only, never a record (R1.2) */
    PERM_PLATFORM_OPERATE, /* tenants, keys, health: no personal data (R1.3) */
    PERM_SITE_SUBMIT,      /* a site device submits its readings */
    PERM_RESIDENT_EXPORT,  /* bulk reads of personal data: replica, ledger (R2.7) */
    PERM_TRANSFER_SEND,    /* transfer inquiries to other municipalities (R3.5) */
    PERM_RESIDENT_IMPORT,  /* bulk writes of personal data: CSV import over the API (R2.6) */
    PERM_END
};

enum role {
    ROLE_NONE = 0,
    ROLE_CLERK,
    ROLE_SUPERVISOR,
    ROLE_TENANT_ADMIN,
    ROLE_AUDITOR,
    ROLE_NATIONAL_VIEWER,
    ROLE_PREFECTURE_VIEWER,
    ROLE_PLATFORM_OPERATOR,
    ROLE_SITE_DEVICE,
    ROLE_END
};

/* The matrix.  PERM_ANONYMOUS is allowed to everyone, PERM_INVALID and
 * out-of-range values to no one, ROLE_NONE (no session) only anonymous. */
bool auth_role_allows(enum role role, enum perm perm);

/*
 * Which roles a tenant of each scope may hold (R1.2, R1.3, R6.7):
 *  - a municipality: clerk, supervisor, tenant_admin, auditor, site_device;
 *  - a prefecture: tenant_admin, auditor, prefecture_viewer;
 *  - the national scope (LGCODE_NATIONAL): tenant_admin, auditor,
 *    platform_operator, national_viewer.
 * So no municipality account can see other tenants' aggregates and no
 * platform or viewer account can belong to a municipality.
 */
bool auth_role_in_scope(enum role role, enum lgcode_scope scope);

/* "clerk", "tenant_admin", ... ; NULL for ROLE_NONE or out of range. */
const char *auth_role_name(enum role role);
const char *auth_perm_name(enum perm perm);

/* ROLE_NONE if `name` is not a role. */
enum role auth_role_parse(const char *name);

#endif
