/*
 * event.c - audit event builder and validator (R7.1): an allowlist of
 * members, each with its own value check.
 */
#include "audit/event.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "ref/mynumber.h"

static bool
charset_ok(const char *s, size_t min, size_t max, const char *extra, bool upper_hex_ok)
{
    size_t n = strlen(s);

    (void)upper_hex_ok;
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            continue;
        if (c == '\0' || strchr(extra, c) == NULL)
            return false;
    }
    return true;
}

/* No 12-digit window that is a valid individual number (R7.1: personal
 * values never in clear). */
static bool
no_mynumber(const char *s)
{
    size_t run = 0;

    for (size_t i = 0; s[i] != '\0'; i++) {
        run = (s[i] >= '0' && s[i] <= '9') ? run + 1 : 0;
        if (run >= MYNUMBER_LEN) {
            char w[MYNUMBER_LEN + 1];
            memcpy(w, s + i + 1 - MYNUMBER_LEN, MYNUMBER_LEN);
            w[MYNUMBER_LEN] = '\0';
            if (mynumber_valid(w))
                return false;
        }
    }
    return true;
}

static bool
hex64(const char *s)
{
    return strlen(s) == 64 && charset_ok(s, 64, 64, "", false) &&
           strspn(s, "0123456789abcdef") == 64;
}

/* A hash in hex (64 lower-case hex digits, e.g. prev_hash) is exempt from
 * the individual number check: a digest has 12-digit runs by chance. */
static bool
info_str_ok(const char *s)
{
    if (strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64)
        return true;
    return charset_ok(s, 0, 128, "._:/@-_", false) && no_mynumber(s);
}

static bool
hmac_ok(const char *s)
{
    return strncmp(s, "hmac:", 5) == 0 && hex64(s + 5);
}

static bool
action_ok(const char *s) { return charset_ok(s, 1, 64, "_.", false) && no_mynumber(s); }

static bool
tenant_ok(const char *s) { return strlen(s) == 6 && strspn(s, "0123456789") == 6; }

static bool
actor_ok(const char *s) { return charset_ok(s, 1, 64, "._@-", false) && no_mynumber(s); }

static bool
role_ok(const char *s) { return charset_ok(s, 1, 32, "_", false) && no_mynumber(s); }

static bool
object_ok(const char *s) { return charset_ok(s, 1, 80, "._:-", false) && no_mynumber(s); }


static bool
source_ok(const char *s)
{
    unsigned char a[16];

    return strlen(s) <= 45 && (inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1);
}

static bool
outcome_ok(const char *s)
{
    return strcmp(s, "success") == 0 || strcmp(s, "failure") == 0 ||
           strcmp(s, "refused") == 0;
}

static const char *const outcome_names[] = { "success", "failure", "refused" };

json_t *
audit_event_new(const char *action, enum audit_outcome outcome)
{
    if (action == NULL || !action_ok(action) || (unsigned)outcome > AUDIT_REFUSED)
        return NULL;
    return json_pack("{s:s,s:s}", "action", action, "outcome", outcome_names[outcome]);
}

int
audit_event_set(json_t *ev, enum audit_field f, const char *v)
{
    static const struct { const char *key; bool (*ok)(const char *); } fields[] = {
        [AUDIT_F_TENANT]   = { "tenant", tenant_ok },
        [AUDIT_F_ACTOR]    = { "actor", actor_ok },
        [AUDIT_F_ROLE]     = { "role", role_ok },
        [AUDIT_F_TERMINAL] = { "terminal", hex64 },
        [AUDIT_F_SOURCE]   = { "source", source_ok },
        [AUDIT_F_REASON]   = { "reason", action_ok },
    };

    if (!json_is_object(ev) || v == NULL || (unsigned)f > AUDIT_F_REASON || !fields[f].ok(v))
        return -1;
    return json_object_set_new(ev, fields[f].key, json_string(v));
}

int
audit_event_add_object(json_t *ev, const char *id)
{
    json_t *a = json_object_get(ev, "objects");

    if (!json_is_object(ev) || id == NULL || !object_ok(id))
        return -1;
    if (a == NULL) {
        a = json_array();
        if (a == NULL || json_object_set_new(ev, "objects", a) != 0)
            return -1;
    }
    if (json_array_size(a) >= AUDIT_MAX_OBJECTS)
        return -1;
    return json_array_append_new(a, json_string(id));
}

void
audit_hmac(const uint8_t key[AUDIT_HMAC_KEY_LEN], const char *value, char out[70])
{
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, key, AUDIT_HMAC_KEY_LEN);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)value, strlen(value));
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, "hmac:", 5);
    if (util_hex_encode(mac, sizeof(mac), out + 5, 65) != 0)
        out[5] = '\0';
    util_wipe(&st, sizeof(st));
}

int
audit_event_set_hashed(json_t *ev, enum audit_hashed_field f,
                       const uint8_t key[AUDIT_HMAC_KEY_LEN], const char *value)
{
    char h[70];

    if (!json_is_object(ev) || value == NULL || key == NULL || (unsigned)f > AUDIT_H_SUBJECT)
        return -1;
    audit_hmac(key, value, h);
    return json_object_set_new(ev, f == AUDIT_H_SESSION ? "session" : "subject",
                               json_string(h));
}

static json_t *
info_obj(json_t *ev, const char *key)
{
    json_t *o = json_object_get(ev, "info");

    if (!json_is_object(ev) || key == NULL || !charset_ok(key, 1, 32, "_", false))
        return NULL;
    if (o == NULL) {
        o = json_object();
        if (o == NULL || json_object_set_new(ev, "info", o) != 0)
            return NULL;
    }
    if (json_object_size(o) >= AUDIT_MAX_INFO && json_object_get(o, key) == NULL)
        return NULL;
    return o;
}

int
audit_event_info_int(json_t *ev, const char *key, int64_t v)
{
    json_t *o = info_obj(ev, key);

    return o == NULL ? -1 : json_object_set_new(o, key, json_integer((json_int_t)v));
}

int
audit_event_info_str(json_t *ev, const char *key, const char *v)
{
    json_t *o = info_obj(ev, key);

    if (o == NULL || v == NULL || !info_str_ok(v))
        return -1;
    return json_object_set_new(o, key, json_string(v));
}

static int
refuse(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return -1;
}

static int
check_member(const char *k, json_t *v, char *err, size_t errlen)
{
    const char *s = json_string_value(v);
    static const struct { const char *key; bool (*ok)(const char *); } strs[] = {
        { "action", action_ok }, { "outcome", outcome_ok }, { "tenant", tenant_ok },
        { "actor", actor_ok }, { "role", role_ok }, { "terminal", hex64 },
        { "session", hmac_ok }, { "subject", hmac_ok }, { "source", source_ok },
        { "reason", action_ok },
    };

    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (strcmp(k, strs[i].key) == 0)
            return s != NULL && strs[i].ok(s) ? 0 : refuse(err, errlen, "bad_value");
    if (strcmp(k, "objects") == 0) {
        size_t i;
        json_t *o;
        if (!json_is_array(v) || json_array_size(v) > AUDIT_MAX_OBJECTS)
            return refuse(err, errlen, "bad_value");
        json_array_foreach(v, i, o)
            if (!json_is_string(o) || !object_ok(json_string_value(o)))
                return refuse(err, errlen, "bad_value");
        return 0;
    }
    if (strcmp(k, "info") == 0) {
        const char *ik;
        json_t *iv;
        if (!json_is_object(v) || json_object_size(v) > AUDIT_MAX_INFO)
            return refuse(err, errlen, "bad_value");
        json_object_foreach(v, ik, iv) {
            if (!charset_ok(ik, 1, 32, "_", false))
                return refuse(err, errlen, "bad_value");
            if (!json_is_integer(iv) &&
                !(json_is_string(iv) && info_str_ok(json_string_value(iv))))
                return refuse(err, errlen, "bad_value");
        }
        return 0;
    }
    return refuse(err, errlen, "unknown_field");
}

int
audit_event_validate(const json_t *ev, char *err, size_t errlen)
{
    const char *k;
    json_t *v;

    if (!json_is_object(ev))
        return refuse(err, errlen, "malformed_event");
    if (!json_is_string(json_object_get(ev, "action")) ||
        !json_is_string(json_object_get(ev, "outcome")))
        return refuse(err, errlen, "missing_field");
    /* json_object_foreach wants a non-const object; it does not modify it. */
    json_object_foreach((json_t *)(uintptr_t)ev, k, v)
        if (check_member(k, v, err, errlen) != 0)
            return -1;
    return 0;
}

char *
audit_event_dump(const json_t *ev)
{
    char err[32];

    if (audit_event_validate(ev, err, sizeof(err)) != 0)
        return NULL;
    return json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
}

void
audit_event_put_optional(json_t *ev, const char *reason, json_t *objects, json_t *info)
{
    if (reason != NULL)
        json_object_set_new(ev, "reason", json_string(reason));
    if (objects != NULL && json_array_size(objects) > 0)
        json_object_set(ev, "objects", objects);
    if (info != NULL)
        json_object_set(ev, "info", info);
}

/* ---- touching a person's record (R7.4, R7.5) ------------------------------------- */

/* Object kinds that name personal data (docs/records.md, docs/transfer.md
 * "Audit events").  person: the kind names the resident themself. */
static const struct {
    const char *kind;
    bool        person;
} personal_kinds[] = {
    { "addr", true },           /* retention.purge: the deleted resident */
    { "answer", false },        /* transfer.provide: the doses answered */
    { "consent", false },       /* transfer.consent: a person's consent record */
    { "correction", false },    /* before and after images of a record */
    { "import", false },        /* an uploaded file of residents */
    { "inquiry", false },       /* a transfer inquiry about one person */
    { "job", false },           /* a bulk transfer file of people */
    { "resident", true },
    { "vaccination", false },
    { "voucher", false },
};

static int
personal_kind(const char *id)
{
    const char *colon = id != NULL ? strchr(id, ':') : NULL;

    if (colon == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(personal_kinds) / sizeof(personal_kinds[0]); i++) {
        size_t n = strlen(personal_kinds[i].kind);
        if ((size_t)(colon - id) == n && memcmp(id, personal_kinds[i].kind, n) == 0)
            return (int)i;
    }
    return -1;
}

bool
audit_object_is_personal(const char *id)
{
    return personal_kind(id) >= 0;
}

bool
audit_object_is_person(const char *id)
{
    int k = personal_kind(id);

    return k >= 0 && personal_kinds[k].person;
}

int64_t
audit_event_bulk_reads(const json_t *ev)
{
    /* Reads of many people's records that name none of them (too many
     * for objects); the info member says how many were read. */
    static const struct { const char *action, *count; } bulk[] = {
        { "resident.export", "rows" },
        { "transfer.records.read", "records" },
    };
    const char *action = json_string_value(json_object_get(ev, "action"));
    json_int_t n;

    if (action == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(bulk) / sizeof(bulk[0]); i++)
        if (strcmp(action, bulk[i].action) == 0) {
            n = json_integer_value(json_object_get(json_object_get(ev, "info"),
                                                   bulk[i].count));
            return n > 0 ? (int64_t)n : 0;
        }
    return 0;
}

bool
audit_event_is_personal(const json_t *ev)
{
    size_t i;
    json_t *o;

    if (json_object_get(ev, "subject") != NULL || audit_event_bulk_reads(ev) > 0)
        return true;
    json_array_foreach(json_object_get(ev, "objects"), i, o)
        if (audit_object_is_personal(json_string_value(o)))
            return true;
    return false;
}
