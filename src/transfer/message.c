/*
 * message.c - encode and decode the inquiry and answer messages of a
 * transfer (message.h).  jansson parses; every check is an allowlist.
 */
#include "transfer/message.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keyprov.h"
#include "vrs/rules.h"

/* ---- small checks ----------------------------------------------------------------- */

/* Longest run of decimal digits in s. */
static size_t
digit_run(const char *s)
{
    size_t run = 0, max = 0;

    for (; *s; s++) {
        run = (*s >= '0' && *s <= '9') ? run + 1 : 0;
        max = run > max ? run : max;
    }
    return max;
}

/* Ids travel into audit events, whose writer refuses any 12-digit run
 * that could be an individual number (R7.1); a random hex id has one
 * now and then (about 1 in 200 for 32 characters), so such draws are
 * simply drawn again. */
void
transfer_new_id(char *out, size_t hexlen)
{
    uint8_t rnd[TRANSFER_MSG_ID_HEX / 2];

    if (hexlen > TRANSFER_MSG_ID_HEX || hexlen % 2 != 0) {
        out[0] = '\0';
        return;
    }
    do {
        randombytes_buf(rnd, hexlen / 2);
        if (util_hex_encode(rnd, hexlen / 2, out, hexlen + 1) != 0) {
            out[0] = '\0';
            return;
        }
    } while (digit_run(out) >= 12);
}



static bool
hex_ok(const char *s, size_t hexlen)
{
    if (s == NULL || strnlen(s, hexlen + 1) != hexlen)
        return false;
    for (size_t i = 0; i < hexlen; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

bool
transfer_id_valid(const char *s, size_t hexlen)
{
    return hex_ok(s, hexlen) && digit_run(s) < 12;
}

/* A catalogue code: 1..31 of [a-z0-9-] (vrs/catalogue.h). */
static bool
vaccine_ok(const char *s)
{
    size_t n = s != NULL ? strnlen(s, TRANSFER_VACCINE_MAX) : 0;

    if (n == 0 || n >= TRANSFER_VACCINE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static bool
date_ok(const char *s)
{
    int32_t d;

    return s != NULL && vrs_date_parse(s, &d) == 0;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" with digits where digits belong. */
static bool
ts_ok(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";

    if (s == NULL || strnlen(s, TRANSFER_TS_LEN) != TRANSFER_TS_LEN - 1)
        return false;
    for (size_t i = 0; i < TRANSFER_TS_LEN - 1; i++)
        if (shape[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return false;
    return true;
}

static bool
affair_ok(const char *s)
{
    return s != NULL && strcmp(s, TRANSFER_AFFAIR_VACCINATION) == 0;
}

static const char *
mode_name(enum transfer_mode m)
{
    return m == TRANSFER_SINGLE ? "single" : m == TRANSFER_BULK ? "bulk" : NULL;
}

static bool
inquiry_ok(const struct transfer_inquiry *q)
{
    return transfer_id_valid(q->id, TRANSFER_MSG_ID_HEX) && tenant_id_valid(q->from) &&
        tenant_id_valid(q->to) && affair_ok(q->affair) &&
        transfer_id_valid(q->consent, TRANSFER_REF_HEX) && mode_name(q->mode) != NULL &&
        ts_ok(q->sent_at);
}

static bool
answer_ok(const struct transfer_answer *a)
{
    if (!transfer_id_valid(a->id, TRANSFER_MSG_ID_HEX) ||
        !transfer_id_valid(a->reply_to, TRANSFER_MSG_ID_HEX) || !tenant_id_valid(a->from) ||
        !tenant_id_valid(a->to) || a->n > TRANSFER_HISTORY_MAX || !ts_ok(a->answered_at) ||
        (!a->found && (a->n != 0 || !a->complete)))
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!vaccine_ok(a->doses[i].vaccine) || a->doses[i].dose < 1 ||
            a->doses[i].dose > 99 || !date_ok(a->doses[i].date))
            return false;
    return true;
}

/* ---- encode -------------------------------------------------------------------------- */

static char *
dump(json_t *o)
{
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

    json_decref(o);
    if (s != NULL && strlen(s) > TRANSFER_MSG_MAX) {
        free(s);
        s = NULL;
    }
    return s;
}

char *
transfer_inquiry_encode(const struct transfer_inquiry *q)
{
    char subject[2 * TRANSFER_SUBJECT_LEN + 1];

    if (q == NULL || !inquiry_ok(q) ||
        util_hex_encode(q->subject, TRANSFER_SUBJECT_LEN, subject, sizeof(subject)) != 0)
        return NULL;
    return dump(json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}",
                          "v", TRANSFER_MSG_VERSION, "type", "inquiry", "id", q->id,
                          "from", q->from, "to", q->to, "affair", q->affair,
                          "consent", q->consent, "subject", subject,
                          "mode", mode_name(q->mode), "sent_at", q->sent_at));
}

char *
transfer_answer_encode(const struct transfer_answer *a)
{
    json_t *h;

    if (a == NULL || !answer_ok(a) || (h = json_array()) == NULL)
        return NULL;
    for (size_t i = 0; i < a->n; i++)
        if (json_array_append_new(h, json_pack("{s:s,s:i,s:s}", "vaccine", a->doses[i].vaccine,
                                               "dose", a->doses[i].dose,
                                               "date", a->doses[i].date)) != 0) {
            json_decref(h);
            return NULL;
        }
    return dump(json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:o,s:s}",
                          "v", TRANSFER_MSG_VERSION, "type", "answer", "id", a->id,
                          "reply_to", a->reply_to, "from", a->from, "to", a->to,
                          "result", a->found ? "found" : "no_record",
                          "items", TRANSFER_ITEMS, "complete", a->complete,
                          "history", h, "answered_at", a->answered_at));
}

/* ---- decode -------------------------------------------------------------------------- */

/* Parse an object with exactly the members `names` (n of them). */
static json_t *
parse_exact(const char *text, size_t len, const char *const *names, size_t n,
            const char **why)
{
    json_error_t e;
    json_t *o;

    if (text == NULL || len == 0 || len > TRANSFER_MSG_MAX) {
        *why = "size";
        return NULL;
    }
    o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    if (!json_is_object(o)) {
        *why = "malformed";
        json_decref(o);
        return NULL;
    }
    if (json_object_size(o) != n) {
        *why = "members";
        json_decref(o);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (json_object_get(o, names[i]) == NULL) {
            *why = "members";
            json_decref(o);
            return NULL;
        }
    return o;
}

/* Copy a string member into dst (size dstsz); -1 if not a string or too long. */
static int
str_member(const json_t *o, const char *name, char *dst, size_t dstsz)
{
    const json_t *v = json_object_get(o, name);

    if (!json_is_string(v) || json_string_length(v) >= dstsz ||
        strlen(json_string_value(v)) != json_string_length(v))   /* no NUL inside */
        return -1;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int
header_ok(const json_t *o, const char *type)
{
    const json_t *v = json_object_get(o, "v");
    char t[16];

    return json_is_integer(v) && json_integer_value(v) == TRANSFER_MSG_VERSION &&
        str_member(o, "type", t, sizeof(t)) == 0 && strcmp(t, type) == 0 ? 0 : -1;
}

int
transfer_inquiry_decode(const char *text, size_t len, struct transfer_inquiry *out,
                        const char **why)
{
    static const char *const names[] = { "v", "type", "id", "from", "to", "affair",
                                          "consent", "subject", "mode", "sent_at" };
    char subject[2 * TRANSFER_SUBJECT_LEN + 1], mode[8];
    json_t *o = parse_exact(text, len, names, sizeof(names) / sizeof(names[0]), why);
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (o == NULL)
        return -1;
    *why = "field";
    if (header_ok(o, "inquiry") == 0 && str_member(o, "id", out->id, sizeof(out->id)) == 0 &&
        str_member(o, "from", out->from, sizeof(out->from)) == 0 &&
        str_member(o, "to", out->to, sizeof(out->to)) == 0 &&
        str_member(o, "affair", out->affair, sizeof(out->affair)) == 0 &&
        str_member(o, "consent", out->consent, sizeof(out->consent)) == 0 &&
        str_member(o, "subject", subject, sizeof(subject)) == 0 &&
        hex_ok(subject, 2 * TRANSFER_SUBJECT_LEN) &&
        util_hex_decode(subject, out->subject, TRANSFER_SUBJECT_LEN) == 0 &&
        str_member(o, "mode", mode, sizeof(mode)) == 0 &&
        str_member(o, "sent_at", out->sent_at, sizeof(out->sent_at)) == 0) {
        out->mode = strcmp(mode, "single") == 0 ? TRANSFER_SINGLE
                  : strcmp(mode, "bulk") == 0 ? TRANSFER_BULK : 0;
        if (inquiry_ok(out))
            rc = 0;
    }
    json_decref(o);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

static int
history_decode(const json_t *h, struct transfer_answer *out)
{
    size_t n = json_array_size(h);

    if (!json_is_array(h) || n > TRANSFER_HISTORY_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *d = json_array_get(h, i), *dose = json_object_get(d, "dose");
        if (!json_is_object(d) || json_object_size(d) != 3 || !json_is_integer(dose) ||
            json_integer_value(dose) < 1 || json_integer_value(dose) > 99 ||
            str_member(d, "vaccine", out->doses[i].vaccine, TRANSFER_VACCINE_MAX) != 0 ||
            str_member(d, "date", out->doses[i].date, sizeof(out->doses[i].date)) != 0)
            return -1;
        out->doses[i].dose = (int)json_integer_value(dose);
    }
    out->n = n;
    return 0;
}

int
transfer_answer_decode(const char *text, size_t len, struct transfer_answer *out,
                       const char **why)
{
    static const char *const names[] = { "v", "type", "id", "reply_to", "from", "to",
                                          "result", "items", "complete", "history",
                                          "answered_at" };
    char result[16], items[32];
    json_t *o = parse_exact(text, len, names, sizeof(names) / sizeof(names[0]), why);
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (o == NULL)
        return -1;
    *why = "field";
    if (header_ok(o, "answer") == 0 && str_member(o, "id", out->id, sizeof(out->id)) == 0 &&
        str_member(o, "reply_to", out->reply_to, sizeof(out->reply_to)) == 0 &&
        str_member(o, "from", out->from, sizeof(out->from)) == 0 &&
        str_member(o, "to", out->to, sizeof(out->to)) == 0 &&
        str_member(o, "result", result, sizeof(result)) == 0 &&
        (strcmp(result, "found") == 0 || strcmp(result, "no_record") == 0) &&
        str_member(o, "items", items, sizeof(items)) == 0 &&
        strcmp(items, TRANSFER_ITEMS) == 0 &&
        json_is_boolean(json_object_get(o, "complete")) &&
        history_decode(json_object_get(o, "history"), out) == 0 &&
        str_member(o, "answered_at", out->answered_at, sizeof(out->answered_at)) == 0) {
        out->found = strcmp(result, "found") == 0;
        out->complete = json_is_true(json_object_get(o, "complete"));
        if (answer_ok(out))
            rc = 0;
    }
    json_decref(o);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

void
transfer_answer_none(const struct transfer_inquiry *q, struct transfer_answer *a)
{
    memset(a, 0, sizeof(*a));
    transfer_new_id(a->id, TRANSFER_MSG_ID_HEX);
    memcpy(a->reply_to, q->id, sizeof(a->reply_to));
    memcpy(a->from, q->to, sizeof(a->from));
    memcpy(a->to, q->from, sizeof(a->to));
    a->found = false;
    a->complete = true;
    util_utc_now(a->answered_at);
}
