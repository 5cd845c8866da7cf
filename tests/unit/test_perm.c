/*
 * test_perm.c - the permission matrix (src/auth/perm.c) against every
 * route x every role (R6.6, R6.7, R1.2, R1.3, R3.5).
 *
 * The test holds its own copy of the matrix and of each route's expected
 * permission.  It iterates over mamori_routes[] and all roles, so:
 *  - a new route that is not listed in `expected_routes` fails;
 *  - a route whose permission changes fails;
 *  - a matrix change in perm.c that is not made here too fails.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "auth/perm.h"
#include "http/router.h"

/* Rows: roles; columns: permissions (PERM_INVALID, PERM_ANONYMOUS, ...). */
#define Y 1
#define _ 0
static const int expected_matrix[ROLE_END][PERM_END] = {
    /*                        INV ANO SES STF TRM RRD RWR RAP AUD REP AGG PLT SIT EXP XFR IMP */
    [ROLE_NONE]             = { _, Y, _, _, _, _, _, _, _, _, _, _, _, _, _, _ },
    [ROLE_CLERK]            = { _, Y, Y, _, _, Y, Y, _, _, _, _, _, _, _, Y, _ },
    [ROLE_SUPERVISOR]       = { _, Y, Y, _, _, Y, Y, Y, _, Y, Y, _, _, Y, Y, Y },
    [ROLE_TENANT_ADMIN]     = { _, Y, Y, Y, Y, _, _, _, _, Y, _, _, _, _, _, _ },
    [ROLE_AUDITOR]          = { _, Y, Y, _, _, _, _, _, Y, Y, _, _, _, _, _, _ },
    [ROLE_NATIONAL_VIEWER]  = { _, Y, Y, _, _, _, _, _, _, _, Y, _, _, _, _, _ },
    [ROLE_PREFECTURE_VIEWER]= { _, Y, Y, _, _, _, _, _, _, _, Y, _, _, _, _, _ },
    [ROLE_PLATFORM_OPERATOR]= { _, Y, Y, _, _, _, _, _, _, Y, _, Y, _, _, _, _ },
    [ROLE_SITE_DEVICE]      = { _, Y, Y, _, _, _, _, _, _, _, _, _, Y, _, _, _ },
};
#undef _
#undef Y

/* Every route and the permission it must declare. */
static const struct { const char *method, *pattern; enum perm perm; } expected_routes[] = {
    { "GET",  "/healthz", PERM_ANONYMOUS },
    { "GET",  "/v1/terminal", PERM_ANONYMOUS },
    { "GET",  "/v1/municipalities/{code}", PERM_ANONYMOUS },
    { "POST", "/v1/municipalities/lookup", PERM_ANONYMOUS },
    { "POST", "/v1/auth/login", PERM_ANONYMOUS },
    { "POST", "/v1/auth/enrol", PERM_ANONYMOUS },
    { "POST", "/v1/auth/logout", PERM_SESSION },
    { "GET",  "/v1/auth/me", PERM_SESSION },
    { "POST", "/v1/auth/password", PERM_SESSION },
    { "POST", "/v1/staff", PERM_STAFF_MANAGE },
    { "POST", "/v1/staff/{user}/reset", PERM_STAFF_MANAGE },
    { "POST", "/v1/staff/{user}/reconfirm", PERM_STAFF_MANAGE },
    { "POST", "/v1/terminals", PERM_TERMINAL_MANAGE },
    { "POST", "/v1/terminals/{fingerprint}/revoke", PERM_TERMINAL_MANAGE },
    { "GET",  "/v1/staff", PERM_STAFF_MANAGE },
    { "POST", "/v1/staff/{user}/role", PERM_STAFF_MANAGE },
    { "POST", "/v1/staff/{user}/disable", PERM_STAFF_MANAGE },
    { "POST", "/v1/staff/{user}/enable", PERM_STAFF_MANAGE },
    { "GET",  "/v1/terminals", PERM_TERMINAL_MANAGE },
    /* Vaccination records (R2): clerk and supervisor; corrections and
     * retention the supervisor's; site devices the tenant admin's */
    { "POST", "/v1/residents", PERM_RESIDENT_WRITE },
    { "GET",  "/v1/residents/{id}", PERM_RESIDENT_READ },
    { "POST", "/v1/residents/search", PERM_RESIDENT_READ },
    { "POST", "/v1/residents/{id}/correct", PERM_RESIDENT_APPROVE },
    { "GET",  "/v1/residents/{id}/corrections", PERM_RESIDENT_READ },
    { "POST", "/v1/residents/{id}/vouchers", PERM_RESIDENT_WRITE },
    { "POST", "/v1/vouchers/search", PERM_RESIDENT_READ },
    { "POST", "/v1/vaccinations", PERM_RESIDENT_WRITE },
    { "POST", "/v1/vaccinations/{id}/correct", PERM_RESIDENT_APPROVE },
    { "POST", "/v1/retention/run", PERM_RESIDENT_APPROVE },
    { "GET",  "/v1/exports/replica", PERM_RESIDENT_EXPORT },      /* R2.7: supervisor */
    { "GET",  "/v1/exports/ledger", PERM_RESIDENT_EXPORT },
    { "POST", "/v1/site-devices", PERM_TERMINAL_MANAGE },
    { "GET",  "/v1/site-devices", PERM_TERMINAL_MANAGE },
    { "POST", "/v1/site-devices/{device}/revoke", PERM_TERMINAL_MANAGE },
    { "POST", "/v1/site/check", PERM_SITE_SUBMIT },               /* R1.5: public */
    { "POST", "/v1/site/vaccinations", PERM_SITE_SUBMIT },
    { "GET",  "/v1/audit/events", PERM_AUDIT_READ },        /* R7.5: auditors only */
    { "GET",  "/v1/audit/review", PERM_AUDIT_READ },
    /* Transfer inquiries (R3): clerk and supervisor, terminals only (R3.5) */
    { "POST", "/v1/consents", PERM_TRANSFER_SEND },
    { "POST", "/v1/transfer/inquiries", PERM_TRANSFER_SEND },
    { "GET",  "/v1/transfer/inquiries/{id}", PERM_TRANSFER_SEND },
    { "POST", "/v1/transfer/inquiries/{id}/register", PERM_TRANSFER_SEND },
    { "GET",  "/v1/transfer/records", PERM_TRANSFER_SEND },
    { "GET",  "/v1/transfer/disclosures/{id}", PERM_TRANSFER_SEND },
    { "POST", "/v1/transfer/bulk", PERM_TRANSFER_SEND },
    { "GET",  "/v1/transfer/jobs/{id}", PERM_TRANSFER_SEND },
    { "GET",  "/v1/transfer/jobs/{id}/result", PERM_TRANSFER_SEND },
    /* CSV import over the API (R2.6): a bulk write, the supervisor's alone */
    { "POST", "/v1/imports", PERM_RESIDENT_IMPORT },
    { "GET",  "/v1/imports", PERM_RESIDENT_IMPORT },
    { "GET",  "/v1/imports/{id}", PERM_RESIDENT_IMPORT },
    { "GET",  "/v1/imports/{id}/problems", PERM_RESIDENT_IMPORT },
};
#define NEXPECTED (sizeof(expected_routes) / sizeof(expected_routes[0]))

static enum perm
expected_perm(const struct route *r)
{
    for (size_t i = 0; i < NEXPECTED; i++)
        if (strcmp(expected_routes[i].method, r->method) == 0 &&
            strcmp(expected_routes[i].pattern, r->pattern) == 0)
            return expected_routes[i].perm;
    return PERM_INVALID;
}

/* Every route x every role: allowed exactly where the matrix says. */
static void
test_every_route_every_role(void **state)
{
    size_t checked = 0;

    (void)state;
    assert_int_equal(mamori_nroutes, NEXPECTED);
    for (size_t i = 0; i < mamori_nroutes; i++) {
        const struct route *r = &mamori_routes[i];
        enum perm want = expected_perm(r);
        if (want == PERM_INVALID || r->perm != want)
            fail_msg("route %s %s: no rule in this test, or its permission changed "
                     "(declares %s)", r->method, r->pattern,
                     auth_perm_name(r->perm) ? auth_perm_name(r->perm) : "none");
        for (unsigned role = ROLE_NONE; role < ROLE_END; role++) {
            bool got = auth_role_allows((enum role)role, r->perm);
            if (got != (expected_matrix[role][r->perm] != 0))
                fail_msg("route %s %s, role %s: %s", r->method, r->pattern,
                         role ? auth_role_name((enum role)role) : "(none)",
                         got ? "allowed but should not be" : "refused but should be allowed");
            checked++;
        }
        /* R3.5: anything needing a session is served to terminals only;
         * R1.5: site devices only on the public listener, where nothing
         * else takes a credential */
        if (r->perm == PERM_SITE_SUBMIT)
            assert_int_equal(r->listeners, LISTENER_PUBLIC);
        else if (r->perm != PERM_ANONYMOUS)
            assert_int_equal(r->listeners, LISTENER_INTERNAL);
    }
    assert_int_equal(checked, mamori_nroutes * ROLE_END);
}

/* The whole matrix, including permissions no route uses yet. */
static void
test_matrix_cells(void **state)
{
    (void)state;
    for (unsigned role = ROLE_NONE; role < ROLE_END; role++)
        for (unsigned p = 0; p < PERM_END; p++)
            if (auth_role_allows((enum role)role, (enum perm)p) != (expected_matrix[role][p] != 0))
                fail_msg("role %u perm %s differs from the documented matrix", role,
                         auth_perm_name((enum perm)p) ? auth_perm_name((enum perm)p) : "invalid");
    /* deny by default: invalid and out-of-range values */
    assert_false(auth_role_allows(ROLE_SUPERVISOR, PERM_INVALID));
    assert_false(auth_role_allows(ROLE_SUPERVISOR, PERM_END));
    assert_false(auth_role_allows(ROLE_END, PERM_SESSION));
    assert_false(auth_role_allows((enum role)-1, PERM_SESSION));
}

/* R6.7: no role can do everything; R1.3, R1.2 and the tenant admin split. */
static void
test_separation_of_duties(void **state)
{
    static const enum perm personal[] = { PERM_RESIDENT_READ, PERM_RESIDENT_WRITE,
                                          PERM_RESIDENT_APPROVE, PERM_RESIDENT_EXPORT,
                                          PERM_RESIDENT_IMPORT };
    (void)state;
    for (unsigned role = ROLE_NONE + 1; role < ROLE_END; role++) {
        unsigned n = 0;
        for (unsigned p = PERM_ANONYMOUS + 1; p < PERM_END; p++)
            n += auth_role_allows((enum role)role, (enum perm)p);
        assert_true(n < PERM_END - PERM_ANONYMOUS - 1);         /* R6.7 */
    }
    for (size_t i = 0; i < sizeof(personal) / sizeof(personal[0]); i++) {
        assert_false(auth_role_allows(ROLE_PLATFORM_OPERATOR, personal[i]));   /* R1.3 */
        assert_false(auth_role_allows(ROLE_TENANT_ADMIN, personal[i]));
        assert_false(auth_role_allows(ROLE_AUDITOR, personal[i]));
        assert_false(auth_role_allows(ROLE_NATIONAL_VIEWER, personal[i]));     /* R1.2 */
        assert_false(auth_role_allows(ROLE_PREFECTURE_VIEWER, personal[i]));
    }
    /* R2.7: bulk exports of personal data are the supervisor's alone */
    for (unsigned role = ROLE_NONE; role < ROLE_END; role++)
        assert_int_equal(auth_role_allows((enum role)role, PERM_RESIDENT_EXPORT),
                         role == ROLE_SUPERVISOR);
    /* R2.6: so are bulk imports over the API (a clerk writes one record at a time) */
    for (unsigned role = ROLE_NONE; role < ROLE_END; role++)
        assert_int_equal(auth_role_allows((enum role)role, PERM_RESIDENT_IMPORT),
                         role == ROLE_SUPERVISOR);
    assert_false(auth_role_allows(ROLE_PLATFORM_OPERATOR, PERM_STAFF_MANAGE)); /* R1.3 */
    assert_false(auth_role_allows(ROLE_PLATFORM_OPERATOR, PERM_AUDIT_READ));
    /* the auditor reads logs and reports only */
    for (unsigned p = PERM_SESSION + 1; p < PERM_END; p++)
        if (p != PERM_AUDIT_READ && p != PERM_REPORT_READ)
            assert_false(auth_role_allows(ROLE_AUDITOR, (enum perm)p));
    /* viewers: aggregates only */
    for (unsigned p = PERM_SESSION + 1; p < PERM_END; p++)
        if (p != PERM_AGGREGATE_READ) {
            assert_false(auth_role_allows(ROLE_NATIONAL_VIEWER, (enum perm)p));
            assert_false(auth_role_allows(ROLE_PREFECTURE_VIEWER, (enum perm)p));
        }
}

/* R1.2, R1.3, R6.7: which roles each kind of tenant may hold.  The table
 * is this test's own (docs/access.md "Tenants and scopes"). */
static void
test_roles_by_scope(void **state)
{
    static const struct { enum role role; bool muni, pref, national; } want[] = {
        { ROLE_CLERK,             true,  false, false },
        { ROLE_SUPERVISOR,        true,  false, false },
        { ROLE_TENANT_ADMIN,      true,  true,  true  },
        { ROLE_AUDITOR,           true,  true,  true  },
        { ROLE_SITE_DEVICE,       true,  false, false },
        { ROLE_PREFECTURE_VIEWER, false, true,  false },
        { ROLE_NATIONAL_VIEWER,   false, false, true  },
        { ROLE_PLATFORM_OPERATOR, false, false, true  },
    };
    (void)state;
    assert_int_equal(sizeof(want) / sizeof(want[0]), ROLE_END - 1);   /* every role */
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(auth_role_in_scope(want[i].role, LGCODE_SCOPE_MUNICIPALITY), want[i].muni);
        assert_int_equal(auth_role_in_scope(want[i].role, LGCODE_SCOPE_PREFECTURE), want[i].pref);
        assert_int_equal(auth_role_in_scope(want[i].role, LGCODE_SCOPE_NATIONAL),
                         want[i].national);
        assert_false(auth_role_in_scope(want[i].role, LGCODE_SCOPE_UNKNOWN));
    }
    assert_false(auth_role_in_scope(ROLE_NONE, LGCODE_SCOPE_MUNICIPALITY));
    assert_false(auth_role_in_scope(ROLE_END, LGCODE_SCOPE_NATIONAL));
    assert_false(auth_role_in_scope(ROLE_CLERK, (enum lgcode_scope)99));
}

static void
test_role_names(void **state)
{
    (void)state;
    for (unsigned role = ROLE_NONE + 1; role < ROLE_END; role++) {
        assert_non_null(auth_role_name((enum role)role));
        assert_int_equal(auth_role_parse(auth_role_name((enum role)role)), role);
    }
    assert_int_equal(auth_role_parse("root"), ROLE_NONE);
    assert_int_equal(auth_role_parse(""), ROLE_NONE);
    assert_int_equal(auth_role_parse(NULL), ROLE_NONE);
    for (unsigned p = PERM_ANONYMOUS; p < PERM_END; p++)
        assert_non_null(auth_perm_name((enum perm)p));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_every_role),
        cmocka_unit_test(test_matrix_cells),
        cmocka_unit_test(test_separation_of_duties),
        cmocka_unit_test(test_roles_by_scope),
        cmocka_unit_test(test_role_names),
    };

    return cmocka_run_group_tests_name("perm", tests, NULL, NULL);
}
