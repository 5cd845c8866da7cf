/*
 * test_vrs_fields.c - one set of field checks for the staff API and the
 * CSV import (R2.1, R2.3, R2.4, R2.6, R2.8): the primitives of
 * vrs/fields.h, and the same values sent through the real route table
 * (router_validate with POST /v1/residents, /v1/residents/search,
 * /v1/residents/{id}/vouchers and /v1/vaccinations) and through the
 * import's check (import_check_mem), so a divergence between the two
 * entry points fails here.  All names and numbers are invented (R9.4).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"
#include "store/store.h"
#include "vrs/api.h"
#include "vrs/catalogue.h"
#include "vrs/fields.h"
#include "vrs/import.h"
#include "vrs/rules.h"

#define TODAY "2024-03-31"
#define HR    "address_no,mynumber,name,kana,birth_date,sex,postcode,address,katagaki," \
              "household_no,relationship,became_date,ceased_date,movement_type," \
              "movement_date,prev_address,next_address,alias\n"

#define HV    "address_no,voucher_no,ticket_type,issued_date\n"
#define HX    "address_no,vaccine,dose,date,lot,voucher_no,site,clinic,doctor\n"
#define CATALOGUE MAMORI_TEST_SOURCE_DIR "/data/vaccines/catalogue.csv"

#define EM  "\xe2\x80\x83"      /* U+2003 EM SPACE */
#define IDS "\xe3\x80\x80"      /* U+3000 IDEOGRAPHIC SPACE */
#define NEL "\xc2\x85"          /* U+0085, a C1 control */
#define CSI "\xc2\x9b"          /* U+009B, a C1 control */
#define NBSP "\xc2\xa0"         /* U+00A0: not a control */

/* ---- the API: the real route table ------------------------------------------------- */

/* Validate `body` (JSON) against the route for POST `path` on the
 * internal listener, as the server does before any handler runs.
 * Returns 0 if accepted; else the refused field into field[]. */
static int
api_validate(const char *path, const char *body, char field[32])
{
    struct http_request req;
    struct http_response resp;
    char allow[64];
    int rc;

    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    field[0] = '\0';
    assert_int_equal(router_match(mamori_routes, mamori_nroutes, "POST", path,
                                  LISTENER_INTERNAL, &req, allow, sizeof(allow)), ROUTE_FOUND);
    rc = router_validate(req.route, body, strlen(body), &req, &resp);
    if (rc != 0) {
        json_t *err = json_object_get(resp.body, "error");
        const char *f = json_string_value(json_object_get(err, "field"));
        const char *msg = json_string_value(json_object_get(err, "message"));

        assert_int_equal(resp.status, 400);
        assert_non_null(f);
        assert_non_null(msg);
        snprintf(field, 32, "%s", f);
        /* the message names the field, never the value */
        assert_non_null(strstr(msg, f));
    }
    json_decref(req.body);
    json_decref(resp.body);
    return rc;
}

/* A resident body with `name` and `kana` (JSON string contents). */
static int
api_create(const char *name, const char *kana, char field[32])
{
    char body[1024];

    snprintf(body, sizeof(body), "{\"address_no\":\"F001\",\"name\":\"%s\",%s%s%s"
             "\"birth_date\":\"1980-01-01\",\"sex\":\"1\"}", name,
             kana ? "\"kana\":\"" : "", kana ? kana : "", kana ? "\"," : "");
    return api_validate("/v1/residents", body, field);
}

/* ---- the import: pass 1 without a store ---------------------------------------------- */

struct problems {
    char   column[8][32];
    char   reason[8][256];
    size_t n;
};

static int
collect(void *arg, const struct import_problem *p)
{
    struct problems *r = arg;

    if (r->n < 8) {
        snprintf(r->column[r->n], sizeof(r->column[0]), "%s", p->column ? p->column : "-");
        snprintf(r->reason[r->n], sizeof(r->reason[0]), "%s", p->reason);
    }
    r->n++;
    return 0;
}

/* Check one residents row with `name` and `kana`; the problems into *r. */
static void
import_row(const char *name, const char *kana, struct problems *r)
{
    struct import_opts o;
    struct import_result res;
    char file[1024];
    int n;

    memset(&o, 0, sizeof(o));
    memset(r, 0, sizeof(*r));
    o.kind = IMPORT_RESIDENTS;
    o.encoding = CSVIN_UTF8;
    o.today = TODAY;
    o.sink = collect;
    o.sink_arg = r;
    n = snprintf(file, sizeof(file), HR "F001,,%s,%s,1980-01-01,1,,,,,,,,,,,,\n", name, kana);
    assert_true(n > 0 && (size_t)n < sizeof(file));
    assert_int_equal(import_check_mem(file, (size_t)n, &o, NULL, &res), 0);
    assert_int_equal(res.outcome, r->n == 0 ? IMPORT_CHECKED : IMPORT_REFUSED);
}

/* The import refused exactly one column, `column`. */
static void
import_refuses(const char *name, const char *kana, const char *column)
{
    struct problems r;

    import_row(name, kana, &r);
    if (r.n != 1 || strcmp(r.column[0], column) != 0)
        fail_msg("import: want one problem in %s, got %zu (first: %s %s)", column, r.n,
                 r.n ? r.column[0] : "-", r.n ? r.reason[0] : "");
}

static struct vrs_catalogue *cat;

/* Check a whole file of `kind` (header included); the problems into *r. */
static void
import_file(enum import_kind kind, const char *file, struct problems *r)
{
    struct import_opts o;
    struct import_result res;

    memset(&o, 0, sizeof(o));
    memset(r, 0, sizeof(*r));
    o.kind = kind;
    o.encoding = CSVIN_UTF8;
    o.today = TODAY;
    o.catalogue = cat;
    o.sink = collect;
    o.sink_arg = r;
    assert_int_equal(import_check_mem(file, strlen(file), &o, NULL, &res), 0);
    assert_int_equal(res.outcome, r->n == 0 ? IMPORT_CHECKED : IMPORT_REFUSED);
}

/* The import refused exactly one column of `file`, for `reason` (a part
 * of it), or nothing if column is NULL. */
static void
import_file_refuses(enum import_kind kind, const char *file, const char *column,
                    const char *reason)
{
    struct problems r;

    import_file(kind, file, &r);
    if (column == NULL && r.n == 0)
        return;
    if (column == NULL || r.n != 1 || strcmp(r.column[0], column) != 0 ||
        (reason != NULL && strstr(r.reason[0], reason) == NULL))
        fail_msg("import: want %s %s, got %zu problems (first: %s %s)",
                 column ? column : "none", reason ? reason : "", r.n,
                 r.n ? r.column[0] : "-", r.n ? r.reason[0] : "");
}

/* ---- control characters (R2.1) -------------------------------------------------------- */

/* R2.1, R2.8: invisible formatting characters (Cf) are refused by both
 * ways in: a zero-width space, a right-to-left override, a BOM, a soft
 * hyphen -- a name with one looks like another but is a different value
 * with a different search key.  A variation selector (IVS, category Mn)
 * is not one: 葛 with U+E0100 is a real 住基 spelling and passes. */
static void
test_R2_1_format_characters_refused_by_both(void **state)
{
    static const char *const bad[] = {
        "山田\xe2\x80\x8b太郎",      /* U+200B zero-width space */
        "山田\xe2\x80\xae太郎",      /* U+202E right-to-left override */
        "山田\xef\xbb\xbf太郎",      /* U+FEFF byte-order mark */
        "山田\xc2\xad太郎",           /* U+00AD soft hyphen */
        "山田\xe2\x81\xa6太郎",      /* U+2066 left-to-right isolate */
    };
    char field[32], name[64], body[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = vrs_check_text(bad[i]);

        assert_non_null(why);
        assert_non_null(strstr(why, "invisible formatting"));
        snprintf(name, sizeof(name), "%s　一郎", bad[i]);
        assert_int_equal(api_create(name, NULL, field), -1);
        assert_string_equal(field, "name");
        import_refuses(name, "", "name");
    }
    snprintf(body, sizeof(body), "{\"address_no\":\"F002\",\"name\":\"山田　太郎\","
             "\"birth_date\":\"1980-01-01\",\"sex\":\"1\",\"address\":\"千代田\xe2\x80\xae" "1-1\"}");
    assert_int_equal(api_validate("/v1/residents", body, field), -1);
    assert_string_equal(field, "address");
    /* positive control: an ideographic variation sequence is a letter */
    assert_null(vrs_check_text("\xe8\x91\x9b\xf3\xa0\x84\x80飾"));
    assert_int_equal(api_create("\xe8\x91\x9b\xf3\xa0\x84\x80西　太郎", NULL, field), 0);
}

/* R2.1: C0, DEL and C1 are refused by the primitive, by the API (the
 * field named) and by the import (the column named); a no-break space,
 * whose UTF-8 also starts with c2, is not a control. */
static void
test_R2_1_control_characters_refused_by_both(void **state)
{
    static const char *const bad[] = {
        "山田" NEL "太郎", "山田" CSI "太郎", "山田\x7f太郎", "山田\t太郎", "山田\x1b太郎",
    };
    char field[32], body[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_non_null(vrs_check_text(bad[i]));
        assert_non_null(vrs_field_text(bad[i], strlen(bad[i]), 191));
    }
    assert_null(vrs_check_text("山田" NBSP "太郎"));
    assert_null(vrs_field_text("東京都千代田区" NBSP "1-1", strlen("東京都千代田区" NBSP "1-1"),
                               383));
    assert_string_equal(vrs_field_text("abc", 3, 2), "is too long");
    {
        char big[193];

        memset(big, 'x', 192);
        big[192] = '\0';
        assert_string_equal(vrs_field_text(big, 192, 191), "is longer than 191 bytes");
        assert_null(vrs_field_text(big, 191, 191));
    }

    /* The API: a C1 character in the name, the kana, the address (R2.1). */
    assert_int_equal(api_create("山田" NEL "　太郎", NULL, field), -1);
    assert_string_equal(field, "name");
    assert_int_equal(api_create("山田　太郎", "ヤマダ" CSI "　タロウ", field), -1);
    assert_string_equal(field, "kana");
    snprintf(body, sizeof(body), "{\"address_no\":\"F001\",\"name\":\"山田　太郎\","
             "\"birth_date\":\"1980-01-01\",\"sex\":\"1\",\"address\":\"千代田" NEL "1-1\"}");
    assert_int_equal(api_validate("/v1/residents", body, field), -1);
    assert_string_equal(field, "address");
    snprintf(body, sizeof(body), "{\"name\":\"山田" CSI "\",\"birth_date\":\"1980-01-01\"}");
    assert_int_equal(api_validate("/v1/residents/search", body, field), -1);
    assert_string_equal(field, "name");
    /* positive control: the same body without the control is accepted */
    assert_int_equal(api_create("山田　太郎", "ヤマダ　タロウ", field), 0);

    /* The import: the same values. */
    import_refuses("山田" NEL "　太郎", "", "name");
    import_refuses("山田　太郎", "ヤマダ" CSI "　タロウ", "kana");
}

/* ---- blank names (R2.8) ----------------------------------------------------------------- */

/* R2.8: a name of U+2003 spaces only has no search key: refused by the
 * primitive, the API (create and search) and the import, as a name of
 * ASCII spaces is. */
static void
test_R2_8_name_of_em_spaces_refused_by_both(void **state)
{
    static const char *const blank[] = {
        EM, EM EM, EM IDS EM, "   ", IDS, " " IDS " ", "\xe2\x80\x8b" IDS "\xe2\x80\x8b",
    };
    char field[32], body[256];

    (void)state;
    for (size_t i = 0; i < sizeof(blank) / sizeof(blank[0]); i++) {
        char stored[STORE_NAME_MAX];

        assert_non_null(vrs_field_searchable(blank[i]));
        assert_non_null(vrs_field_name_stored(blank[i], strlen(blank[i]), VRS_NAME));
        assert_non_null(vrs_field_name_typed(blank[i], VRS_NAME, stored));
        assert_int_equal(api_create(blank[i], NULL, field), -1);
        assert_string_equal(field, "name");
        assert_int_equal(api_create("山田　太郎", blank[i], field), -1);
        assert_string_equal(field, "kana");
        snprintf(body, sizeof(body), "{\"name\":\"%s\",\"birth_date\":\"1980-01-01\"}",
                 blank[i]);
        assert_int_equal(api_validate("/v1/residents/search", body, field), -1);
        assert_string_equal(field, "name");
        import_refuses(blank[i], "", "name");
        import_refuses("山田　太郎", blank[i], "kana");
    }
    /* The blank check itself: zero-width spaces around one U+3000 are one
     * separator in the import's layout, but nothing to search by. */
    assert_string_equal(vrs_field_name_stored("\xe2\x80\x8b" IDS "\xe2\x80\x8b", 7, VRS_NAME),
                        "has no letters once spaces are removed");
    /* positive control: search takes a name in one part, any width */
    assert_int_equal(api_validate("/v1/residents/search",
                                  "{\"name\":\"ﾔﾏﾀﾞﾀﾛｳ\",\"birth_date\":\"1980-01-01\"}",
                                  field), 0);
}

/* ---- names and kana: typed (API) and stored (import) forms (R2.1) ------------------------ */

struct typed_case {
    enum vrs_name_kind kind;
    const char *typed, *stored;
};

/* R2.1: what staff may type and the stored form it becomes. */
static const struct typed_case typed_cases[] = {
    { VRS_NAME, "山田　太郎", "山田　太郎" },
    { VRS_NAME, "山田 太郎", "山田　太郎" },                   /* ASCII space */
    { VRS_NAME, " 山田" EM EM "太郎" IDS, "山田　太郎" },     /* runs, ends trimmed */
    { VRS_NAME, "髙橋" NBSP "ﾊﾅｺ", "髙橋　ﾊﾅｺ" },               /* a name is not folded */
    { VRS_NAME, "山田太郎", "山田太郎" },                       /* one part (a single name) */
    { VRS_NAME, "NGUYEN VAN  AN", "NGUYEN　VAN　AN" },          /* middle name: three parts */
    { VRS_KANA, "ぐえん ばん あん", "グエン　バン　アン" },
    { VRS_KANA, "ヤマダ　タロウ", "ヤマダ　タロウ" },
    { VRS_KANA, "やまだ たろう", "ヤマダ　タロウ" },           /* hiragana */
    { VRS_KANA, "ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ　タロウ" },                 /* half-width, voiced */
    { VRS_KANA, "ｻﾄｳ･ﾊﾟｰｸ　ゆゞ", "サトウ・パーク　ユヾ" },    /* dot, long mark, ゞ */
};

static void
test_R2_1_typed_names_become_the_stored_form(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(typed_cases) / sizeof(typed_cases[0]); i++) {
        const struct typed_case *c = &typed_cases[i];
        char stored[STORE_NAME_MAX], again[STORE_NAME_MAX];
        const char *why = vrs_field_name_typed(c->typed, c->kind, stored);

        if (why != NULL)
            fail_msg("case %zu refused: %s", i, why);
        assert_string_equal(stored, c->stored);
        /* the stored form is what the import accepts, and a fixed point */
        assert_null(vrs_field_name_stored(stored, strlen(stored), c->kind));
        assert_null(vrs_field_name_typed(stored, c->kind, again));
        assert_string_equal(again, stored);
    }
}

/* R2.1, R2.6: the import takes the stored form only; the API takes the
 * typed forms but not what has no stored form.  Each refusal names the
 * field on both sides, and no reason repeats the value. */
static void
test_R2_1_R2_6_name_and_kana_rules_of_each_side(void **state)
{
    /* R2.1: a person may have one name or several; a name is 1 to
     * VRS_NAME_PARTS_MAX parts.  Typed: nothing but spaces, or too many
     * parts.  Stored (import): also an empty part. */
    static const char *const typed_bad_parts[] = {
        "a b c d e f g h i", "　 ",
    };
    static const char *const stored_bad_parts[] = {
        "a　b　c　d　e　f　g　h　i", "　山田太郎", "山田太郎　", "山田　　太郎", "山田 太郎",
    };
    static const char *const not_kana[] = {
        "yamada taro", "山田　タロウ", "ヤマダ　タロウ1", "カ゛　タロウ", "ヤマダ　゠タロウ",
    };
    char field[32], stored[STORE_NAME_MAX];
    struct problems r;

    (void)state;
    for (size_t i = 0; i < sizeof(typed_bad_parts) / sizeof(typed_bad_parts[0]); i++) {
        const char *v = typed_bad_parts[i];
        const char *why = vrs_field_name_typed(v, VRS_NAME, stored);

        assert_non_null(why);
        assert_non_null(strstr(why, "1 to 8 parts"));
        assert_int_equal(api_create(v, NULL, field), -1);
        assert_string_equal(field, "name");
    }
    for (size_t i = 0; i < sizeof(stored_bad_parts) / sizeof(stored_bad_parts[0]); i++) {
        const char *v = stored_bad_parts[i];
        const char *why = vrs_field_name_stored(v, strlen(v), VRS_NAME);

        assert_non_null(why);
        assert_non_null(strstr(why, "1 to 8 parts"));
        import_refuses(v, "", "name");
    }
    for (size_t i = 0; i < sizeof(not_kana) / sizeof(not_kana[0]); i++) {
        const char *v = not_kana[i];

        assert_non_null(vrs_field_name_typed(v, VRS_KANA, stored));
        assert_int_equal(api_create("山田　太郎", v, field), -1);
        assert_string_equal(field, "kana");
        import_refuses("山田　太郎", v, "kana");
    }
    /* Typed forms the API takes and the import does not: the source
     * system writes the stored form, so anything else there is a sign of
     * a wrong column or encoding. */
    for (size_t i = 0; i < sizeof(typed_cases) / sizeof(typed_cases[0]); i++) {
        const struct typed_case *c = &typed_cases[i];

        if (c->kind == VRS_NAME)
            assert_int_equal(api_create(c->typed, NULL, field), 0);
        else
            assert_int_equal(api_create("山田　太郎", c->typed, field), 0);
        if (strcmp(c->typed, c->stored) == 0)
            continue;
        import_row(c->kind == VRS_NAME ? c->typed : "山田　太郎",
                   c->kind == VRS_KANA ? c->typed : "ヤマダ　タロウ", &r);
        assert_int_equal(r.n, 1);
        assert_string_equal(r.column[0], c->kind == VRS_NAME ? "name" : "kana");
        assert_null(strstr(r.reason[0], c->typed));
        import_row(c->kind == VRS_NAME ? c->stored : "山田　太郎",
                   c->kind == VRS_KANA ? c->stored : "ヤマダ　タロウ", &r);
        assert_int_equal(r.n, 0);
    }
    /* Reasons of the import for the kana layout and characters. */
    assert_string_equal(vrs_field_name_stored("やまだ　たろう", strlen("やまだ　たろう"),
                                              VRS_KANA),
                        "must be written in full-width katakana");
    assert_non_null(strstr(vrs_field_name_stored("ヤマダ タロウ", strlen("ヤマダ タロウ"),
                                                 VRS_KANA), "one full-width space"));
}

/* R2.1: the stored form must fit the store: a 191-byte name typed with
 * an ASCII space would need 193 bytes and is refused, not cut. */
static void
test_R2_1_stored_form_within_the_store_limit(void **state)
{
    char typed[STORE_NAME_MAX], stored[STORE_NAME_MAX], field[32];
    size_t n = 0;

    (void)state;
    /* 31 x 山 (93 bytes), an ASCII space, 32 x 田 (96 bytes): 190 bytes */
    for (int i = 0; i < 31; i++, n += 3)
        memcpy(typed + n, "山", 3);
    typed[n++] = ' ';
    for (int i = 0; i < 32; i++, n += 3)
        memcpy(typed + n, "田", 3);
    typed[n] = '\0';
    assert_int_equal(n, 190);                   /* the router lets it through */
    assert_string_equal(vrs_field_name_typed(typed, VRS_NAME, stored),
                        "is longer than 191 bytes");
    assert_int_equal(api_create(typed, NULL, field), -1);
    assert_string_equal(field, "name");
    /* one character less in the given name: 189 bytes stored */
    typed[n - 3] = '\0';
    assert_null(vrs_field_name_typed(typed, VRS_NAME, stored));
    assert_int_equal(strlen(stored), 189);
}

/* R2.1: the other resident fields have one rule on both sides. */
static void
test_R2_1_codes_postcode_sex_movement(void **state)
{
    (void)state;
    assert_null(vrs_field_code("Ab-09", 5));
    assert_non_null(vrs_field_code("", 0));
    assert_non_null(vrs_field_code("A 1", 3));
    assert_non_null(vrs_field_code("A_1", 3));
    assert_non_null(vrs_field_code("-1", 2));           /* exported as '-1 */
    assert_null(vrs_field_code("1-", 2));
    assert_non_null(vrs_field_code("0123456789012345678901234567890123", 32));
    assert_null(vrs_field_postcode("100-0001", 8));
    assert_non_null(vrs_field_postcode("1000001", 7));
    assert_non_null(vrs_field_postcode("100-000a", 8));
    assert_null(vrs_field_sex("9", 1));
    assert_non_null(vrs_field_sex("3", 1));
    assert_non_null(vrs_field_sex("", 0));
    assert_null(vrs_field_movement_type("職権消除"));
    assert_non_null(vrs_field_movement_type("引越"));
}

/* ---- vouchers (R2.4) -------------------------------------------------------------------- */

/* A voucher body for POST /v1/residents/1/vouchers. */
static int
api_voucher(const char *extra, char field[32])
{
    char body[256];

    snprintf(body, sizeof(body), "{\"voucher_no\":\"8000000001\"%s}", extra);
    return api_validate("/v1/residents/1/vouchers", body, field);
}

/* R2.4: one ticket type, 1, on both sides -- the API allowed 0-9 and
 * the import only 1, so a voucher issued as type 2 could not come back
 * from the replica, nor be read by a site (vrs_voucher_parse). */
static void
test_R2_4_ticket_type_one_on_both_sides(void **state)
{
    static const char *const bad[] = { "0", "2", "9" };
    char field[32], extra[64], file[256];

    (void)state;
    assert_null(vrs_field_ticket_type("1", 1));
    assert_non_null(vrs_field_ticket_type("01", 2));
    assert_non_null(vrs_field_ticket_type("", 0));
    assert_int_equal(api_voucher("", field), 0);                    /* default 1 */
    assert_int_equal(api_voucher(",\"ticket_type\":1", field), 0);
    snprintf(file, sizeof(file), HV "F001,8000000001,1,2024-01-05\n");
    import_file_refuses(IMPORT_VOUCHERS, file, NULL, NULL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_non_null(vrs_field_ticket_type(bad[i], 1));
        snprintf(extra, sizeof(extra), ",\"ticket_type\":%s", bad[i]);
        assert_int_not_equal(api_voucher(extra, field), 0);
        assert_string_equal(field, "ticket_type");
        snprintf(file, sizeof(file), HV "F001,8000000001,%s,2024-01-05\n", bad[i]);
        import_file_refuses(IMPORT_VOUCHERS, file, "ticket_type", "must be 1");
    }
}

/* R2.4: an issue date is a calendar date not after today on both sides
 * (the API took any date, the import none after today).  Absent, the API
 * fills in today; an empty cell is refused by the import (fields.h says
 * why). */
static void
test_R2_4_issued_date_not_in_the_future_on_both_sides(void **state)
{
    char field[32], today[STORE_DATE_LEN], extra[64];
    int32_t now, d;

    (void)state;
    assert_int_equal(vrs_date_parse(TODAY, &now), 0);
    assert_null(vrs_field_date_past(TODAY, 10, now, &d));
    assert_int_equal(d, now);
    assert_non_null(vrs_field_date_past("2024-04-01", 10, now, &d));
    assert_non_null(vrs_field_date_past("2024-02-30", 10, now, &d));
    assert_non_null(vrs_field_date_past("", 0, now, &d));
    /* the API's today is the clock's (JST) */
    vrs_today(today);
    snprintf(extra, sizeof(extra), ",\"issued_date\":\"%s\"", today);
    assert_int_equal(api_voucher(extra, field), 0);
    assert_int_equal(api_voucher(",\"issued_date\":\"2021-08-01\"", field), 0);
    assert_int_not_equal(api_voucher(",\"issued_date\":\"2999-01-01\"", field), 0);
    assert_string_equal(field, "issued_date");
    assert_int_not_equal(api_voucher(",\"issued_date\":\"2021-02-29\"", field), 0);
    assert_string_equal(field, "issued_date");
    import_file_refuses(IMPORT_VOUCHERS, HV "F001,8000000001,1,2024-03-31\n", NULL, NULL);
    import_file_refuses(IMPORT_VOUCHERS, HV "F001,8000000001,1,2024-04-01\n", "issued_date",
                        "in the future");
    import_file_refuses(IMPORT_VOUCHERS, HV "F001,8000000001,1,2021-02-29\n", "issued_date",
                        "calendar date");
    import_file_refuses(IMPORT_VOUCHERS, HV "F001,8000000001,1,\n", "issued_date", "empty");
}

/* ---- vaccinations (R2.3) ----------------------------------------------------------------- */

/* A vaccination body for POST /v1/vaccinations with `dose`, `lot` and
 * the JSON members `extra`. */
static int
api_vax(int dose, const char *lot, const char *extra, char field[32])
{
    char body[512];

    snprintf(body, sizeof(body), "{\"resident_id\":1,\"vaccine\":\"covid-comirnaty\","
             "\"dose\":%d,\"date\":\"2022-01-10\",\"lot\":\"%s\"%s}", dose, lot, extra);
    return api_validate("/v1/vaccinations", body, field);
}

/* One vaccinations row of resident F001 with `vaccine`, `dose`, `lot`
 * and `site` (cells as written). */
static void
import_vax(const char *vaccine, const char *dose, const char *lot, const char *site,
           const char *column, const char *reason)
{
    char file[512];

    snprintf(file, sizeof(file), HX "F001,%s,%s,2022-01-10,%s,,%s,,\n", vaccine, dose, lot,
             site);
    import_file_refuses(IMPORT_VACCINATIONS, file, column, reason);
}

/* R2.3: the site is optional on both sides -- the import required it,
 * so a record the API or a site's tablet stored without one could not
 * come back from the replica.  Its text rule is the same. */
static void
test_R2_3_site_optional_on_both_sides(void **state)
{
    char field[32];

    (void)state;
    assert_int_equal(api_vax(1, "FA1234", "", field), 0);
    assert_int_equal(api_vax(1, "FA1234", ",\"site\":\"\"", field), 0);
    import_vax("covid-comirnaty", "1", "FA1234", "", NULL, NULL);
    import_vax("covid-comirnaty", "1", "FA1234", "集団接種会場", NULL, NULL);
    assert_int_not_equal(api_vax(1, "FA1234", ",\"site\":\"a\\tb\"", field), 0);
    assert_string_equal(field, "site");
    import_vax("covid-comirnaty", "1", "FA1234", "\"a\tb\"", "site", "control");
}

/* R2.3, R2.7: a lot is 1 to 20 of 0-9 A-Z a-z '-', not starting with
 * '-', on both sides (the replica writes '-1 for -1, which neither side
 * takes back). */
static void
test_R2_3_lot_one_rule_on_both_sides(void **state)
{
    static const char *const good[] = { "FA1234", "A-1", "12345678901234567890" };
    static const char *const bad[] = { "-A1", "", "123456789012345678901", "A 1", "A_1",
                                       "ＦＡ１" };
    char field[32];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_null(vrs_field_lot(good[i], strlen(good[i])));
        assert_int_equal(api_vax(1, good[i], "", field), 0);
        import_vax("covid-comirnaty", "1", good[i], "", NULL, NULL);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_non_null(vrs_field_lot(bad[i], strlen(bad[i])));
        assert_int_not_equal(api_vax(1, bad[i], "", field), 0);
        assert_string_equal(field, "lot");
        import_vax("covid-comirnaty", "1", bad[i], "", "lot", NULL);
    }
}

/* R2.3: the dose's range is the rules' on both sides.  The primitive
 * agrees with vrs_rules_check for every catalogue row and every number
 * a request can write; the import reports the rule's sentence for 0,
 * 100 and a vaccine's max_dose + 1, the numbers the API's route lets
 * through to the rules (which answer 422 dose_out_of_range,
 * test_vrs_api.c); both refuse a number of 4 digits as a form error. */
static void
test_R2_3_dose_range_is_the_rules_on_both_sides(void **state)
{
    const struct vrs_resident_facts facts = { "1950-01-01", NULL, NULL };
    const struct vrs_vaccine *a_mr = vrs_catalogue_lookup(cat, "a-mr");
    char field[32], dose[8];
    unsigned d;

    (void)state;
    assert_non_null(a_mr);
    assert_true(a_mr->max_dose > 0);
    for (size_t i = 0; i < vrs_catalogue_count(cat); i++) {
        const struct vrs_vaccine *v = vrs_catalogue_at(cat, i);

        for (unsigned n = 0; n <= VRS_FIELD_DOSE_WRITTEN_MAX + 1; n++) {
            struct vrs_dose p = { v->code, n, "2024-01-10" };
            enum vrs_rule rule = vrs_rules_check(cat, &p, &facts, NULL, 0, TODAY, NULL);

            if ((vrs_field_dose_range(v, n) != NULL) != (rule == VRS_RULE_DOSE_OUT_OF_RANGE))
                fail_msg("dose %u of %s: fields and rules disagree", n, v->code);
        }
    }
    assert_null(vrs_field_dose("1", 1, &d));
    assert_int_equal(d, 1);
    assert_null(vrs_field_dose("999", 3, &d));
    assert_int_equal(d, 999);
    assert_non_null(vrs_field_dose("01", 2, &d));
    assert_non_null(vrs_field_dose("1000", 4, &d));
    assert_non_null(vrs_field_dose("+1", 2, &d));
    assert_non_null(vrs_field_dose("", 0, &d));
    /* through the route: the form only; the range goes on to the rules */
    assert_int_equal(api_vax(0, "FA1234", "", field), 0);
    assert_int_equal(api_vax(100, "FA1234", "", field), 0);
    assert_int_equal(api_vax(999, "FA1234", "", field), 0);
    assert_int_not_equal(api_vax(1000, "FA1234", "", field), 0);
    assert_string_equal(field, "dose");
    /* through the import: the same range, in the rule's words */
    import_vax("covid-comirnaty", "99", "FA1234", "", NULL, NULL);
    import_vax("covid-comirnaty", "0", "FA1234", "", "dose", "outside the doses");
    import_vax("covid-comirnaty", "100", "FA1234", "", "dose", "outside the doses");
    snprintf(dose, sizeof(dose), "%u", a_mr->max_dose + 1);
    import_vax("a-mr", dose, "FA1234", "", "dose", "outside the doses");
    import_vax("covid-comirnaty", "1000", "FA1234", "", "dose", "whole number");
    import_vax("covid-comirnaty", "01", "FA1234", "", "dose", "whole number");
}

static int
load_catalogue(void **state)
{
    char err[256];

    (void)state;
    if (vrs_catalogue_load(CATALOGUE, &cat, err, sizeof(err)) != 0) {
        fprintf(stderr, "catalogue: %s\n", err);
        return -1;
    }
    return 0;
}

static int
free_catalogue(void **state)
{
    (void)state;
    vrs_catalogue_free(cat);
    cat = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_R2_1_control_characters_refused_by_both),
        cmocka_unit_test(test_R2_1_format_characters_refused_by_both),
        cmocka_unit_test(test_R2_8_name_of_em_spaces_refused_by_both),
        cmocka_unit_test(test_R2_1_typed_names_become_the_stored_form),
        cmocka_unit_test(test_R2_1_R2_6_name_and_kana_rules_of_each_side),
        cmocka_unit_test(test_R2_1_stored_form_within_the_store_limit),
        cmocka_unit_test(test_R2_1_codes_postcode_sex_movement),
        cmocka_unit_test(test_R2_4_ticket_type_one_on_both_sides),
        cmocka_unit_test(test_R2_4_issued_date_not_in_the_future_on_both_sides),
        cmocka_unit_test(test_R2_3_site_optional_on_both_sides),
        cmocka_unit_test(test_R2_3_lot_one_rule_on_both_sides),
        cmocka_unit_test(test_R2_3_dose_range_is_the_rules_on_both_sides),
    };

    return cmocka_run_group_tests_name("vrs_fields", tests, load_catalogue, free_catalogue);
}
