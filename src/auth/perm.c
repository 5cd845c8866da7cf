/*
 * perm.c - the permission matrix: role x permission, in one place
 * (R6.6, R6.7).  docs/access.md shows the same table; the route x role
 * test (tests/unit/test_perm.c) holds its own copy, so a change here
 * that the test does not expect fails the build's tests.
 *
 * Separation of duties (R6.7): no role holds every permission.
 *  - platform_operator runs the platform but reads no personal data and
 *    manages no tenant's staff (R1.3);
 *  - tenant_admin manages staff and terminals, reads no personal data;
 *  - auditor reads the audit log and reports only;
 *  - national / prefecture viewers get aggregates only (R1.2).
 *  - bulk exports of personal data (R2.7) are the supervisor's alone, and so
 *    are bulk imports over the API (R2.6): one upload writes thousands of
 *    people's records at once.
 *  - transfer inquiries to other municipalities (R3.5): clerk and supervisor.
 */
#include "auth/perm.h"

#include <string.h>

#define A(p) (1u << (p))

static const unsigned matrix[ROLE_END] = {
    [ROLE_NONE] = 0,
    [ROLE_CLERK] = A(PERM_SESSION) | A(PERM_RESIDENT_READ) | A(PERM_RESIDENT_WRITE) |
        A(PERM_TRANSFER_SEND),
    [ROLE_SUPERVISOR] = A(PERM_SESSION) | A(PERM_RESIDENT_READ) |
        A(PERM_RESIDENT_WRITE) | A(PERM_RESIDENT_APPROVE) | A(PERM_REPORT_READ) |
        A(PERM_AGGREGATE_READ) | A(PERM_RESIDENT_EXPORT) | A(PERM_TRANSFER_SEND) |
        A(PERM_RESIDENT_IMPORT),
    [ROLE_TENANT_ADMIN] = A(PERM_SESSION) | A(PERM_STAFF_MANAGE) |
        A(PERM_TERMINAL_MANAGE) | A(PERM_REPORT_READ),
    [ROLE_AUDITOR] = A(PERM_SESSION) | A(PERM_AUDIT_READ) | A(PERM_REPORT_READ),
    [ROLE_NATIONAL_VIEWER] = A(PERM_SESSION) | A(PERM_AGGREGATE_READ),
    [ROLE_PREFECTURE_VIEWER] = A(PERM_SESSION) | A(PERM_AGGREGATE_READ),
    [ROLE_PLATFORM_OPERATOR] = A(PERM_SESSION) | A(PERM_PLATFORM_OPERATE) |
        A(PERM_REPORT_READ),
    [ROLE_SITE_DEVICE] = A(PERM_SESSION) | A(PERM_SITE_SUBMIT),
};

#define R(r) (1u << (r))

static const unsigned scope_roles[] = {
    [LGCODE_SCOPE_UNKNOWN] = 0,
    [LGCODE_SCOPE_MUNICIPALITY] = R(ROLE_CLERK) | R(ROLE_SUPERVISOR) | R(ROLE_TENANT_ADMIN) |
        R(ROLE_AUDITOR) | R(ROLE_SITE_DEVICE),
    [LGCODE_SCOPE_PREFECTURE] = R(ROLE_TENANT_ADMIN) | R(ROLE_AUDITOR) |
        R(ROLE_PREFECTURE_VIEWER),
    [LGCODE_SCOPE_NATIONAL] = R(ROLE_TENANT_ADMIN) | R(ROLE_AUDITOR) |
        R(ROLE_PLATFORM_OPERATOR) | R(ROLE_NATIONAL_VIEWER),
};

bool
auth_role_in_scope(enum role role, enum lgcode_scope scope)
{
    if ((unsigned)role >= ROLE_END || role == ROLE_NONE ||
        (unsigned)scope >= sizeof(scope_roles) / sizeof(scope_roles[0]))
        return false;
    return (scope_roles[scope] & R(role)) != 0;
}

static const char *const role_names[ROLE_END] = {
    [ROLE_CLERK] = "clerk",
    [ROLE_SUPERVISOR] = "supervisor",
    [ROLE_TENANT_ADMIN] = "tenant_admin",
    [ROLE_AUDITOR] = "auditor",
    [ROLE_NATIONAL_VIEWER] = "national_viewer",
    [ROLE_PREFECTURE_VIEWER] = "prefecture_viewer",
    [ROLE_PLATFORM_OPERATOR] = "platform_operator",
    [ROLE_SITE_DEVICE] = "site_device",
};

static const char *const perm_names[PERM_END] = {
    [PERM_ANONYMOUS] = "anonymous",
    [PERM_SESSION] = "session",
    [PERM_STAFF_MANAGE] = "staff_manage",
    [PERM_TERMINAL_MANAGE] = "terminal_manage",
    [PERM_RESIDENT_READ] = "resident_read",
    [PERM_RESIDENT_WRITE] = "resident_write",
    [PERM_RESIDENT_APPROVE] = "resident_approve",
    [PERM_AUDIT_READ] = "audit_read",
    [PERM_REPORT_READ] = "report_read",
    [PERM_AGGREGATE_READ] = "aggregate_read",
    [PERM_PLATFORM_OPERATE] = "platform_operate",
    [PERM_SITE_SUBMIT] = "site_submit",
    [PERM_RESIDENT_EXPORT] = "resident_export",
    [PERM_TRANSFER_SEND] = "transfer_send",
    [PERM_RESIDENT_IMPORT] = "resident_import",
};

bool
auth_role_allows(enum role role, enum perm perm)
{
    if ((unsigned)perm >= PERM_END || perm == PERM_INVALID)
        return false;                                  /* deny by default */
    if (perm == PERM_ANONYMOUS)
        return true;
    if ((unsigned)role >= ROLE_END)
        return false;
    return (matrix[role] & A(perm)) != 0;              /* R6.6 */
}

const char *
auth_role_name(enum role role)
{
    return (unsigned)role < ROLE_END ? role_names[role] : NULL;
}

const char *
auth_perm_name(enum perm perm)
{
    return (unsigned)perm < PERM_END ? perm_names[perm] : NULL;
}

enum role
auth_role_parse(const char *name)
{
    for (unsigned r = ROLE_NONE + 1; r < ROLE_END; r++)
        if (name != NULL && strcmp(name, role_names[r]) == 0)
            return (enum role)r;
    return ROLE_NONE;
}
