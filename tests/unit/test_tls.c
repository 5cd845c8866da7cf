/*
 * test_tls.c - the TLS policy a configuration may express (R8.1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "tls/tls.h"

static void
test_default_priorities_accepted(void **state)
{
    char err[256] = "";

    (void)state;
    assert_int_equal(tls_check_priorities(CONFIG_DEFAULT_PRIORITIES, err, sizeof(err)), 0);
}

/* R8.1: narrowing is fine, widening below the policy is refused. */
static void
test_narrower_priorities_accepted(void **state)
{
    char err[256] = "";

    (void)state;
    assert_int_equal(tls_check_priorities(
        "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-256-GCM:-KX-ALL:+ECDHE-ECDSA", err, sizeof(err)), 0);
    assert_int_equal(tls_check_priorities(
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+CHACHA20-POLY1305:-KX-ALL:+ECDHE-RSA:+DHE-RSA", err, sizeof(err)), 0);
}

static void
test_old_protocol_refused(void **state)
{
    char err[256] = "";

    (void)state;
    assert_int_equal(tls_check_priorities(
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.1:-CIPHER-ALL:+AES-128-GCM",
        err, sizeof(err)), -1);
    assert_non_null(strstr(err, "TLS1.1"));
    assert_non_null(strstr(err, "R8.1"));
}

static void
test_non_aead_cipher_refused(void **state)
{
    char err[256] = "";

    (void)state;
    assert_int_equal(tls_check_priorities(
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-128-CBC:-KX-ALL:+ECDHE-ECDSA",
        err, sizeof(err)), -1);
    assert_non_null(strstr(err, "CBC"));
}

static void
test_static_rsa_key_exchange_refused(void **state)
{
    char err[256] = "";

    (void)state;
    assert_int_equal(tls_check_priorities(
        "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:-KX-ALL:+RSA",
        err, sizeof(err)), -1);
    assert_non_null(strstr(err, "forward secrecy"));
}

static void
test_garbage_refused(void **state)
{
    char err[256] = "";

    (void)state;
    assert_int_equal(tls_check_priorities("NORMAL:+NO-SUCH-THING", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "invalid"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_priorities_accepted),
        cmocka_unit_test(test_narrower_priorities_accepted),
        cmocka_unit_test(test_old_protocol_refused),
        cmocka_unit_test(test_non_aead_cipher_refused),
        cmocka_unit_test(test_static_rsa_key_exchange_refused),
        cmocka_unit_test(test_garbage_refused),
    };
    return cmocka_run_group_tests_name("tls policy (R8.1)", tests, NULL, NULL);
}
