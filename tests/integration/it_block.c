/*
 * it_block.c - R7.4: repeated login failures from one source make the
 * audit writer's intrusion rule block that source for a while, and the
 * workers enforce it: further logins from it are refused (recorded as
 * "source_blocked") with the same response as any failed sign-in (R6.4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define THRESHOLD 3

static struct instance inst;

static int
setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (h_init(&inst) != 0 ||
        h_set_conf(&inst, "detect.source_failures", "3") != 0 ||
        h_set_conf(&inst, "detect.login_failures", "100000") != 0 ||
        h_set_conf(&inst, "detect.block_seconds", "600") != 0 ||
        h_set_conf(&inst, "auth.pwhash_opslimit", "2") != 0 ||
        h_set_conf(&inst, "auth.pwhash_memlimit_kib", "32768") != 0)
        return -1;
    return h_launch(&inst);
}

static int
teardown(void **state)
{
    (void)state;
    int rc = h_stop(&inst);
    h_cleanup(&inst);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

/* The body without its request id, which differs on purpose. */
static void
body_sans_id(const char *body, char *out, size_t outsz)
{
    json_t *doc = json_loads(body, 0, NULL);

    assert_non_null(doc);
    json_object_del(json_object_get(doc, "error"), "request_id");
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(out, outsz, "%s", text);
    free(text);
    json_decref(doc);
}

static void
failed_login(CURL *c, const char *user, char *body, size_t bodysz)
{
    char req[256];
    struct h_response r;

    snprintf(req, sizeof(req),
             "{\"user\":\"%s\",\"password\":\"Wr0ng!pass\",\"code\":\"000000\"}", user);
    h_request(&inst, c, true, "POST", "/v1/auth/login", req, &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 401);
    body_sans_id(r.body, body, bodysz);
    h_response_free(&r);
}

/* How many auth.login records carry `reason`, via the real CLI. */
static int
records_with(const char *reason)
{
    char cmd[1024], line[4096], want[96];
    FILE *p;
    int n = 0;

    snprintf(cmd, sizeof(cmd), "%s/mamori audit query -c %s --action auth.login",
             MAMORI_TEST_BINARY_DIR, inst.conf);
    snprintf(want, sizeof(want), "\"reason\":\"%s\"", reason);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL)
        if (strstr(line, want) != NULL && strstr(line, "\"source\":\"127.0.0.1\"") != NULL)
            n++;
    pclose(p);
    return n;
}

static void
test_repeated_failures_block_the_source(void **state)
{
    CURL *c = h_curl(&inst, "terminals/demo.crt", "terminals/demo.key");
    char before[512], after[512];

    (void)state;
    for (int i = 0; i < THRESHOLD; i++)
        failed_login(c, "nobody-here", before, sizeof(before));
    /* Below and at the threshold the attempts were judged on their own. */
    assert_int_equal(records_with("source_blocked"), 0);
    assert_int_equal(records_with("unknown_user"), THRESHOLD);
    /* Now the source is blocked: refused before anything else counts. */
    failed_login(c, "nobody-here", after, sizeof(after));
    failed_login(c, "someone-else", after, sizeof(after));
    assert_int_equal(records_with("source_blocked"), 2);
    assert_int_equal(records_with("unknown_user"), THRESHOLD);
    /* R6.4: the blocked answer is the ordinary failed sign-in. */
    assert_string_equal(before, after);
    curl_easy_cleanup(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeated_failures_block_the_source),
    };
    return cmocka_run_group_tests_name("integration/block (R7.4)", tests, setup, teardown);
}
