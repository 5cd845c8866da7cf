/*
 * it_records.c - vaccination records over HTTPS against the real daemon:
 * residents, search, corrections, vouchers, vaccinations and their rules,
 * retention, and the vaccination-site interface (R1.1, R1.5, R2.1-R2.5,
 * R2.8-R2.10, R6.6, R7.1).
 *
 * Set-up (as it_auth.c): two municipalities, 131016 (A) and 131024 (B),
 * each with keys and a registered terminal (the demo certificate for A,
 * "ward-b" for B); a clerk, a supervisor and a tenant admin of A and a
 * clerk of B, enrolled and signed in once with password + TOTP.  All data
 * is synthetic (R9.4).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"

#include "harness.h"
#include "staff.h"

#define TA "131016"
#define TB "131024"
#define PW "Rec0rds!Strong"    /* every account's password */

static struct instance inst;
static struct mamori_config cfg;
static const char *pg_base;         /* MAMORI_TEST_PG: run again on PostgreSQL */
static char pg_db[64];              /* this run's database, "" on SQLite */
static CURL *term_a, *term_b, *pub;
static char clerk[65], sup[65], admin[65], clerk_b[65];

/* ---- requests (staff.h) ----------------------------------------------------------- */

/* One request with a bearer token to the internal (terminal handles) or
 * public (pub) listener. */
static void
req(CURL *c, const char *method, const char *path, const char *body, const char *token,
    struct h_response *r)
{
    h_staff_request(&inst, c, c != pub, method, path, body, &(struct h_cred){ .token = token },
                    r);
}

/* Status only. */
static long
st(CURL *c, const char *method, const char *path, const char *body, const char *token)
{
    return h_staff_status(&inst, c, c != pub, method, path, body, token);
}

/* The request must answer `want`; returns the parsed body (caller decrefs). */
static json_t *
ok(CURL *c, const char *method, const char *path, const char *body, const char *token,
   long want)
{
    return h_staff_json(&inst, c, c != pub, method, path, body, token, want);
}

static const char *
err_code(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "code"));
}

static const char *
err_field(json_t *j)
{
    return json_string_value(json_object_get(json_object_get(j, "error"), "field"));
}

static int64_t
jint(json_t *j, const char *k)
{
    return (int64_t)json_integer_value(json_object_get(j, k));
}

/* ---- synthetic data (R9.4) ------------------------------------------------------------ */

/* A valid individual number from 11 digits (R2.2 check digit). */
static void
mynumber(const char *eleven, char out[13])
{
    static const int w[11] = { 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2 };
    int sum = 0, r;

    for (int i = 0; i < 11; i++)
        sum += (eleven[i] - '0') * w[i];
    r = sum % 11;
    snprintf(out, 13, "%s%d", eleven, r <= 1 ? 0 : 11 - r);
}

/* Create a resident of the clerk's tenant; returns its id. */
static int64_t
resident(CURL *c, const char *tok, const char *addrno, const char *mn, const char *birth,
         const char *extra)
{
    char body[2048];
    json_t *j;
    int64_t id;

    snprintf(body, sizeof(body), "{\"address_no\":\"%s\",%s%s%s\"name\":\"試験　花子\","
             "\"kana\":\"シケン　ハナコ\",\"birth_date\":\"%s\",\"sex\":\"2\","
             "\"postcode\":\"100-0001\",\"address\":\"東京都千代田区千代田1-1\"%s%s}",
             addrno, mn ? "\"mynumber\":\"" : "", mn ? mn : "", mn ? "\"," : "", birth,
             extra ? "," : "", extra ? extra : "");
    j = ok(c, "POST", "/v1/residents", body, tok, 201);
    id = jint(j, "id");
    assert_true(id > 0);
    json_decref(j);
    return id;
}

/* An 18-digit voucher line: type 1, dose, municipality, number. */
static void
voucher_line(int dose, const char *lg, const char *number, char out[19])
{
    snprintf(out, 19, "1%d%s%s", dose, lg, number);
}

/* ---- the record of who did what (R7.1) ------------------------------------------------- */

/* Does an audit event of `action` contain `needle`? */
static bool
audit_has(const char *action, const char *needle)
{
    char cmd[1024], line[16384];
    bool found = false;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "%s/mamori audit query -c %s --action %s",
             MAMORI_TEST_BINARY_DIR, inst.conf, action);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p) != NULL)
        found |= needle == NULL || strstr(line, needle) != NULL;
    pclose(p);
    return found;
}

/* Is `needle` anywhere under the data directory's audit/ or in the
 * daemon's log? */
static bool
leaked(const char *needle)
{
    char cmd[1024], line[256];
    bool hit;
    FILE *p;

    snprintf(cmd, sizeof(cmd), "grep -rl -- %s %s/audit %s 2>/dev/null", needle, inst.dir,
             inst.log);
    p = popen(cmd, "r");
    assert_non_null(p);
    hit = fgets(line, sizeof(line), p) != NULL;
    pclose(p);
    return hit;
}

/* ---- fixture: accounts are signed in once (staff.h, R6.2) --------------------------------- */

static int
group_setup(void **state)
{
    char err[256];
    static const char *const tenants[] = { TA, TB };
    struct h_staff a_clerk = { .user = "rec-clerk", .role = "clerk", .tenant = TA,
                               .password = PW };
    struct h_staff a_sup = { .user = "rec-sup", .role = "supervisor", .tenant = TA,
                             .password = PW };
    struct h_staff a_admin = { .user = "rec-admin", .role = "tenant_admin", .tenant = TA,
                               .password = PW };
    struct h_staff b_clerk = { .user = "rec-clerk-b", .role = "clerk", .tenant = TB,
                               .password = PW };

    (void)state;
    if (h_init(&inst) != 0 || (pg_base != NULL && h_pg_use(&inst, pg_base, "mamori_rec", pg_db, sizeof(pg_db)) != 0) ||
        h_set_conf(&inst, "detect.source_failures", "100000") != 0 ||
        h_set_conf(&inst, "detect.distinct_residents", "100000") != 0 ||
        h_set_conf(&inst, "auth.pwhash_opslimit", "2") != 0 ||
        h_set_conf(&inst, "auth.pwhash_memlimit_kib", "32768") != 0 ||
        config_load(inst.conf, &cfg, err, sizeof(err)) != 0 ||
        h_tenants_create(&cfg, tenants, 2) != 0 || h_launch(&inst) != 0)
        return -1;
    /* the CLI's own audit records go in beside the running writer */
    term_a = h_terminal(&inst, TA, "demo");
    term_b = h_terminal(&inst, TB, "ward-b");
    pub = h_curl(&inst, NULL, NULL);
    if (term_a == NULL || term_b == NULL ||
        h_staff_sign_in(&inst, &cfg, term_a, &a_clerk, clerk) != 0 ||
        h_staff_sign_in(&inst, &cfg, term_a, &a_sup, sup) != 0 ||
        h_staff_sign_in(&inst, &cfg, term_a, &a_admin, admin) != 0 ||
        h_staff_sign_in(&inst, &cfg, term_b, &b_clerk, clerk_b) != 0)
        return -1;
    return 0;
}

static int
group_teardown(void **state)
{
    int rc;

    (void)state;
    curl_easy_cleanup(term_a);
    curl_easy_cleanup(term_b);
    curl_easy_cleanup(pub);
    rc = h_stop(&inst);
    if (rc != 0)
        fprintf(stderr, "mamorid exited with %d; log kept in %s\n", rc, inst.log);
    else
        h_cleanup(&inst);
    h_pg_drop(pg_base, pg_db);
    return rc == 0 ? 0 : -1;
}

/* ---- residents (R2.1, R2.2) -------------------------------------------------------------------- */

static void
test_R2_1_resident_create_and_read(void **state)
{
    char mn[13], bad[13], path[64];
    int64_t id;
    struct h_response r;
    json_t *j;

    (void)state;
    mynumber("10000000001", mn);
    id = resident(term_a, clerk, "1000000001", mn, "1980-04-01", NULL);
    /* R2.2: never echoed; the record says only that there is one */
    snprintf(path, sizeof(path), "/v1/residents/%lld", (long long)id);
    req(term_a, "GET", path, NULL, clerk, &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, mn));
    j = json_loads(r.body, 0, NULL);
    free(r.body);
    assert_true(json_is_true(json_object_get(j, "has_mynumber")));
    assert_null(json_object_get(j, "mynumber"));
    assert_string_equal(json_string_value(json_object_get(j, "address_no")), "1000000001");
    assert_string_equal(json_string_value(json_object_get(j, "kana")), "シケン　ハナコ");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "current");
    assert_true(json_is_array(json_object_get(j, "vaccinations")));
    json_decref(j);

    /* R2.2: a wrong check digit, refused naming the field, not the value */
    memcpy(bad, mn, sizeof(bad));
    bad[11] = (char)('0' + (mn[11] - '0' + 1) % 10);
    {
        char body[300];
        snprintf(body, sizeof(body), "{\"address_no\":\"1000000002\",\"mynumber\":\"%s\","
                 "\"name\":\"試験　一郎\",\"birth_date\":\"1980-01-01\",\"sex\":\"1\"}", bad);
        req(term_a, "POST", "/v1/residents", body, clerk, &r);
        assert_int_equal(r.status, 400);
        assert_null(strstr(r.body, bad));
        j = json_loads(r.body, 0, NULL);
        free(r.body);
        assert_string_equal(err_field(j), "mynumber");
        assert_non_null(strstr(json_string_value(json_object_get(json_object_get(j, "error"),
                                                                 "message")), "check digit"));
        json_decref(j);
    }
    /* other fields: each refusal names its field */
    static const struct { const char *body, *field; } badf[] = {
        { "{\"address_no\":\"x y\",\"name\":\"試験　一郎\",\"birth_date\":\"1980-01-01\","
          "\"sex\":\"1\"}", "address_no" },
        { "{\"address_no\":\"1000000003\",\"birth_date\":\"1980-01-01\",\"sex\":\"1\"}", "name" },
        { "{\"address_no\":\"1000000003\",\"name\":\"試験　一郎\",\"birth_date\":\"1980-02-30\","
          "\"sex\":\"1\"}", "birth_date" },
        { "{\"address_no\":\"1000000003\",\"name\":\"試験　一郎\",\"birth_date\":\"1980-01-01\","
          "\"sex\":\"3\"}", "sex" },
        { "{\"address_no\":\"1000000003\",\"name\":\"試験　一郎\",\"birth_date\":\"1980-01-01\","
          "\"sex\":\"1\",\"postcode\":\"1000001\"}", "postcode" },
        { "{\"address_no\":\"1000000003\",\"name\":\"試験　一郎\",\"birth_date\":\"1980-01-01\","
          "\"sex\":\"1\",\"kana\":\"yamada\"}", "kana" },
        { "{\"address_no\":\"1000000003\",\"name\":\"試験　一郎\",\"birth_date\":\"2999-01-01\","
          "\"sex\":\"1\"}", "birth_date" },
        { "{\"address_no\":\"1000000003\",\"name\":\"試験　一郎\",\"birth_date\":\"1980-01-01\","
          "\"sex\":\"1\",\"ceased_date\":\"2020-01-01\"}", "movement_type" },
        /* R2.1: a name is 1 to 8 parts, as the import has it (vrs/fields.h) */
        { "{\"address_no\":\"1000000003\",\"name\":\"a b c d e f g h i\",\"birth_date\":\"1980-01-01\","
          "\"sex\":\"1\"}", "name" },
        /* a movement and its date go together, as in the import */
        { "{\"address_no\":\"1000000003\",\"name\":\"試験　一郎\",\"birth_date\":\"1980-01-01\","
          "\"sex\":\"1\",\"movement_type\":\"転入\"}", "movement_date" },
    };
    for (size_t i = 0; i < sizeof(badf) / sizeof(badf[0]); i++) {
        j = ok(term_a, "POST", "/v1/residents", badf[i].body, clerk, 400);
        assert_string_equal(err_field(j), badf[i].field);
        json_decref(j);
    }
    /* the address number is unique in the tenant */
    j = ok(term_a, "POST", "/v1/residents", "{\"address_no\":\"1000000001\",\"name\":\"試験　一郎\","
           "\"birth_date\":\"1980-01-01\",\"sex\":\"1\"}", clerk, 409);
    assert_string_equal(err_code(j), "address_no_exists");
    json_decref(j);
    /* an unknown id: 404 */
    assert_int_equal(st(term_a, "GET", "/v1/residents/999999", NULL, clerk), 404);
    /* R7.1: on the record by row id, never the number itself */
    snprintf(path, sizeof(path), "\"resident:%lld\"", (long long)id);
    assert_true(audit_has("resident.create", path));
    assert_true(audit_has("resident.read", path));
    assert_false(leaked(mn));
    assert_false(leaked(bad));
}

/* ---- search (R2.8) ------------------------------------------------------------------------------ */

static void
test_R2_8_search(void **state)
{
    char mn[13], body[400];
    int64_t id;
    json_t *j, *m;
    struct h_response r;

    (void)state;
    mynumber("20000000002", mn);
    id = resident(term_a, clerk, "2000000001", mn, "1975-07-07", NULL);
    /* by address number */
    j = ok(term_a, "POST", "/v1/residents/search", "{\"address_no\":\"2000000001\"}", clerk, 200);
    assert_int_equal(jint(j, "count"), 1);
    m = json_array_get(json_object_get(j, "matches"), 0);
    assert_int_equal(jint(m, "id"), id);
    /* the whole history comes with it */
    assert_true(json_is_array(json_object_get(m, "vouchers")));
    assert_true(json_is_array(json_object_get(m, "vaccinations")));
    assert_true(json_is_array(json_object_get(m, "corrections")));
    json_decref(j);
    /* by individual number: found, never echoed, its keyed hash on the record */
    snprintf(body, sizeof(body), "{\"mynumber\":\"%s\"}", mn);
    req(term_a, "POST", "/v1/residents/search", body, clerk, &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, mn));
    j = json_loads(r.body, 0, NULL);
    free(r.body);
    assert_int_equal(jint(j, "count"), 1);
    json_decref(j);
    assert_true(audit_has("resident.search", "\"subject\":\"hmac:"));
    assert_false(leaked(mn));
    /* by name and birth date: half-width kana and hiragana find the same person */
    j = ok(term_a, "POST", "/v1/residents/search", "{\"name\":\"ｼｹﾝ ﾊﾅｺ\","
           "\"birth_date\":\"1975-07-07\"}", clerk, 200);
    assert_int_equal(jint(j, "count"), 1);
    json_decref(j);
    /* full-width digits and hyphen fold (NFKC) like the name's kana */
    j = ok(term_a, "POST", "/v1/residents/search", "{\"name\":\"しけん　はなこ\","
           "\"birth_date\":\"1975-07-07\",\"sex\":\"2\",\"address\":\"東京都千代田区千代田１－１\"}",
           clerk, 200);
    assert_int_equal(jint(j, "count"), 1);
    json_decref(j);
    j = ok(term_a, "POST", "/v1/residents/search", "{\"name\":\"しけん　はなこ\","
           "\"birth_date\":\"1975-07-07\",\"sex\":\"2\",\"address\":\"東京都千代田区 千代田1-1\"}",
           clerk, 200);
    assert_int_equal(jint(j, "count"), 1);                  /* the 4 basic items */
    json_decref(j);
    j = ok(term_a, "POST", "/v1/residents/search", "{\"name\":\"しけん　はなこ\","
           "\"birth_date\":\"1975-07-07\",\"sex\":\"1\"}", clerk, 200);
    assert_int_equal(jint(j, "count"), 0);                  /* other sex */
    json_decref(j);
    /* one way at a time */
    j = ok(term_a, "POST", "/v1/residents/search", "{\"name\":\"a\"}", clerk, 400);
    assert_string_equal(err_code(j), "search_mode");
    json_decref(j);
    j = ok(term_a, "POST", "/v1/residents/search", "{\"address_no\":\"2000000001\","
           "\"sex\":\"2\"}", clerk, 400);
    json_decref(j);
    assert_true(audit_has("resident.search", "\"by\":\"basic_items\""));
}

/* ---- tenant isolation (R1.1) ---------------------------------------------------------------------- */

static void
test_R1_1_tenant_isolation(void **state)
{
    char mn[13], path[64], body[200];
    int64_t id;
    json_t *j;

    (void)state;
    mynumber("30000000003", mn);
    id = resident(term_a, clerk, "3000000001", mn, "1990-01-01", NULL);
    snprintf(path, sizeof(path), "/v1/residents/%lld", (long long)id);
    /* B's clerk: neither by id nor by any search */
    j = ok(term_b, "GET", path, NULL, clerk_b, 404);
    assert_string_equal(err_code(j), "unknown_resident");
    json_decref(j);
    j = ok(term_b, "POST", "/v1/residents/search", "{\"address_no\":\"3000000001\"}",
           clerk_b, 200);
    assert_int_equal(jint(j, "count"), 0);
    json_decref(j);
    snprintf(body, sizeof(body), "{\"mynumber\":\"%s\"}", mn);
    j = ok(term_b, "POST", "/v1/residents/search", body, clerk_b, 200);
    assert_int_equal(jint(j, "count"), 0);
    json_decref(j);
    j = ok(term_b, "POST", "/v1/residents/search", "{\"name\":\"シケン　ハナコ\","
           "\"birth_date\":\"1990-01-01\"}", clerk_b, 200);
    assert_int_equal(jint(j, "count"), 0);
    json_decref(j);
    /* B keeps its own numbering: the same address number is B's own resident */
    (void)resident(term_b, clerk_b, "3000000001", NULL, "1990-01-01", NULL);
    /* A's clerk cannot use B's terminal (R3.5) */
    assert_int_equal(st(term_b, "GET", path, NULL, clerk), 401);
}

/* ---- roles (R6.6) ------------------------------------------------------------------------------------ */

static void
test_R6_6_roles(void **state)
{
    int64_t id;
    char path[80];

    (void)state;
    id = resident(term_a, clerk, "4000000001", NULL, "1960-01-01", NULL);
    snprintf(path, sizeof(path), "/v1/residents/%lld", (long long)id);
    /* the tenant admin reads no personal data */
    assert_int_equal(st(term_a, "GET", path, NULL, admin), 403);
    assert_int_equal(st(term_a, "POST", "/v1/residents/search", "{\"address_no\":\"1\"}",
                        admin), 403);
    assert_int_equal(st(term_a, "POST", "/v1/vaccinations", "{\"resident_id\":1}", admin), 403);
    /* a clerk neither corrects by authority nor deletes expired data */
    snprintf(path, sizeof(path), "/v1/residents/%lld/correct", (long long)id);
    assert_int_equal(st(term_a, "POST", path, "{\"reason\":\"x\",\"name\":\"b\"}", clerk), 403);
    assert_int_equal(st(term_a, "POST", "/v1/retention/run", NULL, clerk), 403);
    assert_int_equal(st(term_a, "POST", "/v1/vaccinations/1/correct", "{\"reason\":\"x\"}",
                        clerk), 403);
    /* site devices are the tenant admin's to manage, not a clerk's */
    assert_int_equal(st(term_a, "GET", "/v1/site-devices", NULL, clerk), 403);
    /* no session, no record */
    snprintf(path, sizeof(path), "/v1/residents/%lld", (long long)id);
    assert_int_equal(st(term_a, "GET", path, NULL, NULL), 401);
    assert_int_equal(st(term_a, "GET", path, NULL, clerk), 200);
    /* the staff routes do not exist on the public listener */
    assert_int_equal(st(pub, "POST", "/v1/residents/search", "{\"address_no\":\"1\"}", clerk),
                     404);
}

/* ---- vouchers (R2.4) ---------------------------------------------------------------------------------- */

static void
test_R2_4_vouchers(void **state)
{
    int64_t id, id2;
    char path[80];
    json_t *j;

    (void)state;
    id = resident(term_a, clerk, "5000000001", NULL, "1950-05-05", NULL);
    id2 = resident(term_a, clerk, "5000000002", NULL, "1951-05-05", NULL);
    snprintf(path, sizeof(path), "/v1/residents/%lld/vouchers", (long long)id);
    j = ok(term_a, "POST", path, "{\"voucher_no\":\"0000050001\"}", clerk, 201);
    assert_string_equal(json_string_value(json_object_get(j, "voucher_no")), "0000050001");
    assert_int_equal(jint(j, "ticket_type"), 1);
    json_decref(j);
    /* one number, one resident, within the tenant */
    snprintf(path, sizeof(path), "/v1/residents/%lld/vouchers", (long long)id2);
    j = ok(term_a, "POST", path, "{\"voucher_no\":\"0000050001\"}", clerk, 409);
    assert_string_equal(err_code(j), "voucher_exists");
    json_decref(j);
    j = ok(term_a, "POST", path, "{\"voucher_no\":\"12345\"}", clerk, 400);
    assert_string_equal(err_field(j), "voucher_no");
    json_decref(j);
    assert_int_equal(st(term_a, "POST", "/v1/residents/999999/vouchers",
                        "{\"voucher_no\":\"0000059999\"}", clerk), 404);
    /* looked up by number through a body */
    j = ok(term_a, "POST", "/v1/vouchers/search", "{\"voucher_no\":\"0000050001\"}", clerk, 200);
    assert_int_equal(jint(j, "resident_id"), id);
    assert_string_equal(json_string_value(json_object_get(j, "address_no")), "5000000001");
    json_decref(j);
    assert_int_equal(st(term_a, "POST", "/v1/vouchers/search", "{\"voucher_no\":\"0000050009\"}",
                        clerk), 404);
    /* another tenant may issue the same number */
    {
        int64_t b = resident(term_b, clerk_b, "5000000001", NULL, "1950-05-05", NULL);
        snprintf(path, sizeof(path), "/v1/residents/%lld/vouchers", (long long)b);
        assert_int_equal(st(term_b, "POST", path, "{\"voucher_no\":\"0000050001\"}", clerk_b),
                         201);
    }
    assert_true(audit_has("voucher.issue", "\"voucher:0000050001\""));
    assert_true(audit_has("voucher.read", NULL));
}

/* ---- vaccinations and their rules (R2.3, R2.5) ---------------------------------------------------------- */

/* Post a vaccination as the clerk; want_code / want_req: the refusal
 * expected (NULL for 201). */
static void
vax(int64_t rid, const char *vaccine, int dose, const char *date, long want,
    const char *want_code, const char *want_req)
{
    char body[400];
    json_t *j;

    snprintf(body, sizeof(body), "{\"resident_id\":%lld,\"vaccine\":\"%s\",\"dose\":%d,"
             "\"date\":\"%s\",\"lot\":\"FA1234\",\"site\":\"区役所集団接種会場\","
             "\"clinic\":\"試験クリニック\",\"doctor\":\"試験　医師\"}",
             (long long)rid, vaccine, dose, date);
    j = ok(term_a, "POST", "/v1/vaccinations", body, clerk, want);
    if (want_code != NULL) {
        json_t *e = json_object_get(j, "error");
        assert_string_equal(err_code(j), want_code);
        /* English and Japanese, and the requirement it enforces */
        assert_non_null(json_string_value(json_object_get(e, "message")));
        assert_non_null(json_string_value(json_object_get(e, "message_ja")));
        assert_string_equal(json_string_value(json_object_get(e, "requirement")), want_req);
    } else {
        assert_string_equal(json_string_value(json_object_get(j, "entered_by")), "rec-clerk");
    }
    json_decref(j);
}

static void
test_R2_3_vaccination_rules(void **state)
{
    int64_t id;
    char future[11], path[80];
    time_t t = time(NULL) + 30 * 86400;
    struct tm tm;

    (void)state;
    gmtime_r(&t, &tm);
    strftime(future, sizeof(future), "%Y-%m-%d", &tm);
    id = resident(term_a, clerk, "6000000001", NULL, "1970-03-03", NULL);
    vax(id, "covid-comirnaty", 1, "2021-06-01", 201, NULL, NULL);
    vax(id, "covid-comirnaty", 2, "2021-06-29", 201, NULL, NULL);
    /* R2.3 refusals, each with its rule's code */
    vax(id, "covid-comirnaty", 3, future, 422, "date_in_future", "R2.3");
    vax(id, "covid-comirnaty", 3, "1969-12-31", 422, "date_before_birth", "R2.3");
    vax(id, "covid-nosuch", 3, "2022-01-10", 422, "vaccine_unknown", "R2.3");
    vax(id, "covid-comirnaty", 5, "2022-01-10", 422, "dose_out_of_order", "R2.3");
    vax(id, "covid-spikevax", 2, "2022-01-10", 422, "dose_duplicate", "R2.3");
    vax(id, "covid-comirnaty", 0, "2022-01-10", 422, "dose_out_of_range", "R2.3");
    /* cross-product: a スパイクバックス third dose follows two コミナティ */
    vax(id, "covid-spikevax", 3, "2022-01-10", 201, NULL, NULL);
    /* unknown resident */
    assert_int_equal(st(term_a, "POST", "/v1/vaccinations", "{\"resident_id\":999999,"
                        "\"vaccine\":\"covid-comirnaty\",\"dose\":1,\"date\":\"2021-06-01\","
                        "\"lot\":\"A1\"}", clerk), 404);
    /* R2.5: deceased (by a supervisor's correction), then nothing after death */
    snprintf(path, sizeof(path), "/v1/residents/%lld/correct", (long long)id);
    json_decref(ok(term_a, "POST", path, "{\"reason\":\"死亡届（試験）\","
                   "\"deceased_date\":\"2022-03-01\"}", sup, 200));
    vax(id, "covid-comirnaty", 4, "2022-03-02", 422, "date_after_death", "R2.5");
    vax(id, "covid-comirnaty", 4, "2022-03-01", 201, NULL, NULL);   /* the day itself */
    /* R2.5: moved out, likewise */
    id = resident(term_a, clerk, "6000000002", NULL, "1970-03-03",
                  "\"movement_type\":\"転出\",\"movement_date\":\"2021-01-31\","
                  "\"ceased_date\":\"2021-01-31\"");
    vax(id, "covid-comirnaty", 1, "2021-02-01", 422, "date_after_move_out", "R2.5");
    /* every refusal is on the record with the rule (R7.1) */
    assert_true(audit_has("vaccination.create", "\"reason\":\"date_after_death\""));
    assert_true(audit_has("vaccination.create", "\"reason\":\"dose_out_of_order\""));
    assert_true(audit_has("vaccination.create", "\"vaccination:"));
}

/* ---- corrections by authority (R2.9, R2.5) ----------------------------------------------------------------- */

static void
test_R2_9_corrections(void **state)
{
    char mn[13], mn2[13], path[96], body[300];
    int64_t id, vid, cid;
    struct h_response r;
    json_t *j, *rows, *c;

    (void)state;
    mynumber("70000000007", mn);
    mynumber("70000000017", mn2);
    id = resident(term_a, clerk, "7000000001", mn, "1985-08-08", NULL);
    snprintf(path, sizeof(path), "/v1/residents/%lld/correct", (long long)id);
    snprintf(body, sizeof(body), "{\"reason\":\"住基照合による修正\",\"name\":\"試験　花江\","
             "\"mynumber\":\"%s\"}", mn2);
    j = ok(term_a, "POST", path, body, sup, 200);
    cid = jint(j, "correction_id");
    assert_true(cid > 0);
    json_decref(j);
    /* nothing to change, no reason: refused */
    j = ok(term_a, "POST", path, "{\"reason\":\"x\",\"name\":\"試験　花江\"}", sup, 400);
    assert_string_equal(err_code(j), "nothing_to_change");
    json_decref(j);
    assert_int_equal(st(term_a, "POST", path, "{\"name\":\"b\"}", sup), 400);
    /* the address number never changes */
    assert_int_equal(st(term_a, "POST", path, "{\"reason\":\"x\",\"address_no\":\"9\"}", sup),
                     400);
    /* who, when, why, before and after (R2.9), without the numbers */
    snprintf(path, sizeof(path), "/v1/residents/%lld/corrections", (long long)id);
    req(term_a, "GET", path, NULL, clerk, &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, mn));
    assert_null(strstr(r.body, mn2));
    j = json_loads(r.body, 0, NULL);
    free(r.body);
    rows = json_object_get(j, "corrections");
    assert_int_equal(json_array_size(rows), 1);
    c = json_array_get(rows, 0);
    assert_int_equal(jint(c, "id"), cid);
    assert_string_equal(json_string_value(json_object_get(c, "actor")), "rec-sup");
    assert_string_equal(json_string_value(json_object_get(c, "reason")), "住基照合による修正");
    assert_non_null(json_string_value(json_object_get(c, "at")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "before"), "name")),
                        "試験　花子");
    assert_string_equal(json_string_value(json_object_get(json_object_get(c, "after"), "name")),
                        "試験　花江");
    assert_true(json_is_true(json_object_get(json_object_get(c, "after"), "has_mynumber")));
    json_decref(j);
    /* a vaccination corrected (voided) by a supervisor */
    j = ok(term_a, "POST", "/v1/vaccinations", "{\"resident_id\":0,\"vaccine\":\"x\"}", clerk, 400);
    json_decref(j);
    snprintf(body, sizeof(body), "{\"resident_id\":%lld,\"vaccine\":\"covid-comirnaty\","
             "\"dose\":1,\"date\":\"2021-07-01\",\"lot\":\"EY0001\"}", (long long)id);
    j = ok(term_a, "POST", "/v1/vaccinations", body, clerk, 201);
    vid = jint(j, "id");
    json_decref(j);
    snprintf(path, sizeof(path), "/v1/vaccinations/%lld/correct", (long long)vid);
    j = ok(term_a, "POST", path, "{\"reason\":\"日付誤り\",\"date\":\"2030-01-01\"}", sup, 422);
    assert_string_equal(err_code(j), "date_in_future");       /* the same rules */
    json_decref(j);
    j = ok(term_a, "POST", path, "{\"reason\":\"日付誤り\",\"date\":\"2021-07-02\"}", sup, 200);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "vaccination"),
                                                          "date")), "2021-07-02");
    json_decref(j);
    j = ok(term_a, "POST", path, "{\"reason\":\"二重登録\",\"void\":true}", sup, 200);
    assert_true(json_is_true(json_object_get(json_object_get(j, "vaccination"), "voided")));
    json_decref(j);
    /* dose 1 may now be entered again */
    j = ok(term_a, "POST", "/v1/vaccinations", body, clerk, 201);
    json_decref(j);
    snprintf(path, sizeof(path), "/v1/residents/%lld/corrections", (long long)id);
    j = ok(term_a, "GET", path, NULL, clerk, 200);
    assert_int_equal(json_array_size(json_object_get(j, "corrections")), 3);
    json_decref(j);
    snprintf(path, sizeof(path), "\"correction:%lld\"", (long long)cid);
    assert_true(audit_has("resident.correct", path));
    assert_true(audit_has("vaccination.correct", "\"voided\":1"));
    assert_false(leaked(mn2));
}

/* ---- retention (R2.10) ------------------------------------------------------------------------------------------ */

static void
test_R2_10_retention(void **state)
{
    int64_t old, recent;
    char path[80], body[300];
    json_t *j;

    (void)state;
    old = resident(term_a, clerk, "8000000001", NULL, "1940-01-01",
                   "\"movement_type\":\"死亡\",\"movement_date\":\"2015-02-01\","
                   "\"ceased_date\":\"2015-02-01\"");
    recent = resident(term_a, clerk, "8000000002", NULL, "1940-01-01",
                      "\"movement_type\":\"転出\",\"movement_date\":\"2024-02-01\","
                      "\"ceased_date\":\"2024-02-01\"");
    snprintf(path, sizeof(path), "/v1/residents/%lld/vouchers", (long long)old);
    json_decref(ok(term_a, "POST", path, "{\"voucher_no\":\"0000080001\"}", clerk, 201));
    snprintf(body, sizeof(body), "{\"resident_id\":%lld,\"vaccine\":\"b-influenza\","
             "\"dose\":1,\"date\":\"2014-11-01\",\"lot\":\"FLU1\"}", (long long)old);
    json_decref(ok(term_a, "POST", "/v1/vaccinations", body, clerk, 201));
    j = ok(term_a, "POST", "/v1/retention/run", NULL, sup, 200);
    assert_true(jint(j, "deleted") >= 1);
    assert_int_equal(jint(j, "retention_years"), 5);
    json_decref(j);
    snprintf(path, sizeof(path), "/v1/residents/%lld", (long long)old);
    assert_int_equal(st(term_a, "GET", path, NULL, clerk), 404);
    assert_int_equal(st(term_a, "POST", "/v1/vouchers/search", "{\"voucher_no\":\"0000080001\"}",
                        clerk), 404);
    snprintf(path, sizeof(path), "/v1/residents/%lld", (long long)recent);
    assert_int_equal(st(term_a, "GET", path, NULL, clerk), 200);
    /* the deletion is on the record, by address number */
    assert_true(audit_has("retention.purge", "\"addr:8000000001\""));
    /* nothing left: a second run deletes nothing */
    j = ok(term_a, "POST", "/v1/retention/run", NULL, sup, 200);
    assert_int_equal(jint(j, "deleted"), 0);
    json_decref(j);
}

/* ---- the site interface (R1.5) ------------------------------------------------------------------------------------ */

static void
new_device(const char *name, char token[65], char id[32])
{
    char body[100];
    json_t *j;

    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    j = ok(term_a, "POST", "/v1/site-devices", body, admin, 201);
    snprintf(token, 65, "%s", json_string_value(json_object_get(j, "token")));
    snprintf(id, 32, "%s", json_string_value(json_object_get(j, "device_id")));
    assert_int_equal(strlen(token), 64);
    json_decref(j);
}

/* Everything a site must never see of a resident. */
static void
no_personal_numbers(const char *text, const char *mn, const char *addrno, int64_t id)
{
    char sid[32];

    snprintf(sid, sizeof(sid), "\"id\":%lld", (long long)id);
    assert_null(strstr(text, mn));
    assert_null(strstr(text, addrno));
    assert_null(strstr(text, "千代田1-1"));
    assert_null(strstr(text, sid));
    assert_null(strstr(text, "resident_id"));
    assert_null(strstr(text, "address"));
}

static void
test_R1_5_site_interface(void **state)
{
    char mn[13], tok[65], dev[32], line[19], other[19], body[600], path[96];
    int64_t id;
    struct h_response r;
    json_t *j;

    (void)state;
    mynumber("90000000009", mn);
    id = resident(term_a, clerk, "9000000001", mn, "1960-09-09", NULL);
    snprintf(path, sizeof(path), "/v1/residents/%lld/vouchers", (long long)id);
    json_decref(ok(term_a, "POST", path, "{\"voucher_no\":\"0000090001\"}", clerk, 201));
    vax(id, "covid-comirnaty", 1, "2021-06-01", 201, NULL, NULL);
    new_device("集団接種会場A-1", tok, dev);
    /* the list shows the device, never its token */
    req(term_a, "GET", "/v1/site-devices", NULL, admin, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, dev));
    assert_null(strstr(r.body, tok));
    free(r.body);

    /* check: only what confirms the person */
    voucher_line(2, TA, "0000090001", line);
    snprintf(body, sizeof(body), "{\"voucher_line\":\"%s\"}", line);
    req(pub, "POST", "/v1/site/check", body, tok, &r);
    assert_int_equal(r.status, 200);
    no_personal_numbers(r.body, mn, "9000000001", id);
    j = json_loads(r.body, 0, NULL);
    free(r.body);
    assert_string_equal(json_string_value(json_object_get(j, "kana")), "シケン　ハナコ");
    assert_string_equal(json_string_value(json_object_get(j, "birth_date")), "1960-09-09");
    assert_string_equal(json_string_value(json_object_get(j, "sex")), "2");
    assert_int_equal(jint(j, "next_dose"), 2);
    assert_int_equal(json_array_size(json_object_get(j, "doses")), 1);
    assert_int_equal(json_object_size(j), 6);   /* kana, birth, sex, voucher/next dose, doses */
    json_decref(j);
    /* another municipality's code answers like an unknown number (R1.5) */
    voucher_line(2, TB, "0000090001", other);
    snprintf(body, sizeof(body), "{\"voucher_line\":\"%s\"}", other);
    j = ok(pub, "POST", "/v1/site/check", body, tok, 404);
    assert_string_equal(err_code(j), "unknown_voucher");
    json_decref(j);
    j = ok(pub, "POST", "/v1/site/check", "{\"voucher_line\":\"121310160000099999\"}", tok, 404);
    assert_string_equal(err_code(j), "unknown_voucher");
    json_decref(j);
    j = ok(pub, "POST", "/v1/site/check", "{\"voucher_line\":\"121310170000090001\"}", tok, 400);
    assert_string_equal(err_code(j), "voucher_municipality_code");
    json_decref(j);

    /* record the second dose through the same rules */
    snprintf(body, sizeof(body), "{\"voucher_line\":\"%s\",\"vaccine\":\"covid-comirnaty\","
             "\"dose\":2,\"date\":\"2030-01-01\",\"lot\":\"FF1111\",\"clinic\":\"会場診療所\","
             "\"doctor\":\"試験　医師\"}", line);
    j = ok(pub, "POST", "/v1/site/vaccinations", body, tok, 422);
    assert_string_equal(err_code(j), "date_in_future");
    assert_non_null(json_string_value(json_object_get(json_object_get(j, "error"), "message_ja")));
    json_decref(j);
    snprintf(body, sizeof(body), "{\"voucher_line\":\"%s\",\"vaccine\":\"covid-comirnaty\","
             "\"dose\":2,\"date\":\"2021-06-29\",\"lot\":\"FF1111\",\"clinic\":\"会場診療所\","
             "\"doctor\":\"試験　医師\"}", line);
    req(pub, "POST", "/v1/site/vaccinations", body, tok, &r);
    assert_int_equal(r.status, 201);
    no_personal_numbers(r.body, mn, "9000000001", id);
    free(r.body);
    /* entered by the device, at the site its name names */
    snprintf(path, sizeof(path), "/v1/residents/%lld", (long long)id);
    req(term_a, "GET", path, NULL, clerk, &r);
    assert_non_null(strstr(r.body, dev));
    assert_non_null(strstr(r.body, "集団接種会場A-1"));
    free(r.body);
    /* routine vaccines are not recorded against a voucher */
    snprintf(body, sizeof(body), "{\"voucher_line\":\"%s\",\"vaccine\":\"b-influenza\","
             "\"dose\":1,\"date\":\"2021-06-29\",\"lot\":\"FF1111\"}", line);
    j = ok(pub, "POST", "/v1/site/vaccinations", body, tok, 422);
    assert_string_equal(err_code(j), "vaccine_not_for_voucher");
    json_decref(j);

    /* crafted bodies: an individual number in every field, and as a key */
    {
        const char *crafted[] = {
            "{\"voucher_line\":\"%s\"}",
            "{\"voucher_line\":\"%s000000\"}",
            "{\"%s\":\"1\"}",
            ("{\"voucher_line\":\"%s\",\"vaccine\":\"%s\",\"dose\":1,\"date\":\"%s\","
             "\"lot\":\"%s\",\"clinic\":\"%s\",\"doctor\":\"%s\",\"idempotency_key\":\"%s\"}"),
            "{\"voucher_line\":\"%s\",\"%s\":1}",
            "[\"%s\"]",
            "{\"voucher_line\":12}",
        };
        const char *paths[] = { "/v1/site/check", "/v1/site/vaccinations" };
        for (size_t p = 0; p < 2; p++)
            for (size_t i = 0; i < sizeof(crafted) / sizeof(crafted[0]); i++) {
                snprintf(body, sizeof(body), crafted[i], mn, mn, mn, mn, mn, mn, mn);
                req(pub, "POST", paths[p], body, tok, &r);
                assert_true(r.status >= 400);
                if (strstr(r.body, mn) != NULL)
                    fail_msg("%s echoed an individual number: %s", paths[p], r.body);
                free(r.body);
            }
        /* in the path or the query string too */
        snprintf(path, sizeof(path), "/v1/site/check/%s", mn);
        req(pub, "POST", path, body, tok, &r);
        assert_null(strstr(r.body, mn));
        free(r.body);
        snprintf(path, sizeof(path), "/v1/site/check?%s=%s", mn, mn);
        req(pub, "POST", path, "{\"voucher_line\":\"1\"}", tok, &r);
        assert_int_equal(r.status, 400);
        assert_null(strstr(r.body, mn));
        free(r.body);
    }

    /* credentials: a device token is no staff session, and the reverse */
    snprintf(path, sizeof(path), "/v1/residents/%lld", (long long)id);
    assert_int_equal(st(term_a, "GET", path, NULL, tok), 401);
    assert_int_equal(st(pub, "POST", "/v1/site/check", "{\"voucher_line\":\"1\"}", clerk), 401);
    assert_int_equal(st(pub, "POST", "/v1/site/check", "{\"voucher_line\":\"1\"}", NULL), 401);
    /* revoked: refused from the next request on */
    snprintf(path, sizeof(path), "/v1/site-devices/%s/revoke", dev);
    json_decref(ok(term_a, "POST", path, NULL, admin, 200));
    snprintf(body, sizeof(body), "{\"voucher_line\":\"%s\"}", line);
    assert_int_equal(st(pub, "POST", "/v1/site/check", body, tok), 401);
    assert_int_equal(st(term_a, "POST", path, NULL, admin), 404);
    /* on the record (R7.1, R7.7) */
    assert_true(audit_has("resident.site_check", "\"voucher:0000090001\""));
    assert_true(audit_has("vaccination.site_create", dev));
    assert_true(audit_has("site_device.revoke", dev));
    assert_true(audit_has("site.auth", "device_revoked"));
    assert_false(leaked(mn));
    assert_false(leaked(tok));
}

/* ---- exports (R2.7) ---------------------------------------------------------------------------------------------- */

static void
test_R2_7_exports(void **state)
{
    static const char *const elevens[] = { "10000000001", "20000000002", "30000000003",
                                           "70000000007", "70000000017", "90000000009" };
    struct h_response r;
    char mn[13];
    json_t *j;

    (void)state;
    /* the supervisor's alone (R6.6) */
    assert_int_equal(st(term_a, "GET", "/v1/exports/replica?part=residents", NULL, clerk), 403);
    assert_int_equal(st(term_a, "GET", "/v1/exports/ledger", NULL, admin), 403);
    req(term_a, "GET", "/v1/exports/replica?part=residents", NULL, sup, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "text/csv; charset=utf-8");
    assert_true(strncmp(r.body, "address_no,", 11) == 0);
    assert_null(strstr(r.body, "mynumber"));
    assert_non_null(strstr(r.body, "\r\n1000000001,"));
    /* R2.2: no individual number in any export */
    for (size_t i = 0; i < sizeof(elevens) / sizeof(elevens[0]); i++) {
        mynumber(elevens[i], mn);
        assert_null(strstr(r.body, mn));
    }
    assert_null(strstr(r.body, "\r\n3000000001,1990"));      /* only this tenant's: */
    free(r.body);                                           /* B's is not here */
    req(term_a, "GET", "/v1/exports/replica?part=vaccinations", NULL, sup, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "covid-comirnaty"));
    free(r.body);
    req(term_a, "GET", "/v1/exports/replica?part=vouchers&encoding=cp932", NULL, sup, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "text/csv; charset=Windows-31J");
    assert_non_null(strstr(r.body, "0000090001"));
    free(r.body);
    /* 試験 in CP932 is 8e 8e 8c b1 */
    req(term_a, "GET", "/v1/exports/replica?part=residents&encoding=cp932", NULL, sup, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(memmem(r.body, r.len, "\x8e\x8e\x8c\xb1", 4));
    assert_null(memmem(r.body, r.len, "試験", strlen("試験")));
    free(r.body);
    req(term_a, "GET", "/v1/exports/ledger", NULL, sup, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "text/csv; charset=utf-8");
    free(r.body);
    /* parameters are declared and checked */
    j = ok(term_a, "GET", "/v1/exports/replica", NULL, sup, 400);
    assert_string_equal(err_field(j), "part");
    json_decref(j);
    assert_int_equal(st(term_a, "GET", "/v1/exports/replica?part=ledger", NULL, sup), 400);
    assert_int_equal(st(term_a, "GET", "/v1/exports/replica?part=residents&encoding=latin1",
                        NULL, sup), 400);
    assert_int_equal(st(term_a, "GET", "/v1/exports/replica?part=residents&tenant=131024",
                        NULL, sup), 400);
    /* on the record (R7.1) */
    assert_true(audit_has("resident.export", "\"kind\":\"residents\""));
    assert_true(audit_has("resident.export", "\"encoding\":\"cp932\""));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R2_1_resident_create_and_read),
        cmocka_unit_test(test_R2_8_search),
        cmocka_unit_test(test_R1_1_tenant_isolation),
        cmocka_unit_test(test_R6_6_roles),
        cmocka_unit_test(test_R2_4_vouchers),
        cmocka_unit_test(test_R2_3_vaccination_rules),
        cmocka_unit_test(test_R2_9_corrections),
        cmocka_unit_test(test_R2_10_retention),
        cmocka_unit_test(test_R1_5_site_interface),
        cmocka_unit_test(test_R2_7_exports),
    };

    const char *pg = getenv("MAMORI_TEST_PG");
    int failed;

    if (sodium_init() < 0)
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests_name("integration/records/sqlite", tests, group_setup,
                                         group_teardown);
    /* the same tests once more on PostgreSQL, where a cluster is given */
    if (pg != NULL && pg[0] != '\0') {
        pg_base = pg;
        failed += cmocka_run_group_tests_name("integration/records/postgresql", tests,
                                              group_setup, group_teardown);
    } else {
        fprintf(stderr, "*** MAMORI_TEST_PG unset: PostgreSQL run SKIPPED ***\n");
    }
    curl_global_cleanup();
    return failed;
}
