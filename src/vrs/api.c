/*
 * api.c - the staff HTTP API for vaccination records (R2.1-R2.5,
 * R2.8-R2.10).  What each route does and answers: docs/records.md
 * "HTTP API"; the rules every handler keeps: api.h.
 *
 * Writes follow one pattern (vrs_commit_audited): the store change is made
 * inside one transaction (store_bulk_begin), the audit event naming the
 * new row ids is sent and acknowledged, and only then is the
 * transaction committed.  So a change the audit log does not know of is
 * never committed (R7.1, fail closed), and the event can name the ids.
 */
#include "vrs/api.h"

#include <iconv.h>
#include <errno.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/event.h"
#include "common/log.h"
#include "http/reply.h"
#include "ipc/ipc.h"
#include "ref/mynumber.h"
#include "text/normalize.h"
#include "vrs/export.h"
#include "vrs/fields.h"
#include "vrs/retention.h"
#include "vrs/voucher.h"
#include "worker/worker.h"

#define AUDIT_TIMEOUT_MS 5000
#define CATALOGUE_FILE   "vaccines/catalogue.csv"
#define SEARCH_MAX       20     /* matches answered by one search (R2.8) */
#define VOUCHERS_MAX     32     /* vouchers shown per resident */
#define DOSES_MAX        256    /* vaccinations read per resident */
#define EXPORT_MAX       (512u * 1024u * 1024u) /* one export response, bytes */

struct vrs_env {
    struct vrs_catalogue *cat;
    /* iconv loads its CP932 converter (a gconv module) on first use, by
     * reading files the sandbox no longer allows: open both directions
     * before it closes and keep them open, so the module stays loaded
     * for CP932 exports and imports. */
    iconv_t pin[2];
};

/* ---- environment ------------------------------------------------------------ */

int
vrs_env_init(const struct mamori_config *cfg, struct vrs_env **out)
{
    struct vrs_env *e = calloc(1, sizeof(*e));
    char path[PATH_MAX], err[256] = "";

    if (e == NULL)
        return -1;
    e->pin[0] = iconv_open("CP932", "UTF-8");
    e->pin[1] = iconv_open("UTF-8", "CP932");
    if (e->pin[0] == (iconv_t)-1 || e->pin[1] == (iconv_t)-1) {
        log_error("vrs_init_failed", "iconv has no CP932 converter");
        vrs_env_free(e);
        return -1;
    }
    /* refdata first; an older installed refdata may predate the
     * catalogue, so then the build's own data directories. */
    static const char *const dirs[] = {
        NULL,
#ifdef MAMORI_DATA_DIR
        MAMORI_DATA_DIR,
#endif
        MAMORI_SOURCE_DATA_DIR,
    };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && e->cat == NULL; i++)
        if (util_path_join(path, sizeof(path), dirs[i] ? dirs[i] : cfg->refdata,
                           CATALOGUE_FILE) == 0 && access(path, R_OK) == 0 &&
            vrs_catalogue_load(path, &e->cat, err, sizeof(err)) != 0)
            break;
    if (e->cat == NULL) {
        log_error("vrs_init_failed", "cannot load the vaccine catalogue: %s",
                  err[0] ? err : "no " CATALOGUE_FILE " in refdata");
        vrs_env_free(e);
        return -1;
    }
    *out = e;
    return 0;
}

const struct vrs_catalogue *
vrs_catalogue_of(const struct http_request *req)
{
    const struct worker_env *env = req->env;

    return env->vrs->cat;
}

void
vrs_env_free(struct vrs_env *e)
{
    if (e == NULL)
        return;
    vrs_catalogue_free(e->cat);
    for (size_t i = 0; i < 2; i++)
        if (e->pin[i] != (iconv_t)-1 && e->pin[i] != NULL)
            iconv_close(e->pin[i]);
    free(e);
}

/* ---- small helpers ---------------------------------------------------------------- */

static struct worker_env *
wenv(const struct http_request *req)
{
    return req->env;
}

static const char *
body_str(const struct http_request *req, const char *name)
{
    const char *s = json_string_value(json_object_get(req->body, name));

    return s ? s : "";
}

static bool
body_has(const struct http_request *req, const char *name)
{
    return json_object_get(req->body, name) != NULL;
}

void
vrs_today(char out[STORE_DATE_LEN])
{
    time_t t = time(NULL) + 9 * 3600;   /* JST has no daylight saving time */
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, STORE_DATE_LEN, "%Y-%m-%d", &tm) != 10)
        out[0] = '\0';                  /* the rules then refuse: check_unavailable */
}

json_t *
vrs_object_id(const char *kind, int64_t id)
{
    char s[48];

    snprintf(s, sizeof(s), "%s:%lld", kind, (long long)id);
    return json_string(s);
}

static json_t *
objects1(const char *kind, int64_t id)
{
    json_t *a = json_array();

    json_array_append_new(a, vrs_object_id(kind, id));
    return a;
}

void
vrs_reply_unavailable(struct http_response *resp)
{
    reply_error(resp, 503, "unavailable", "The service cannot do this now.", NULL);
}

void
vrs_reply_audit_failed(struct http_response *resp)
{
    reply_error(resp, 503, "audit_unavailable",
                "The audit log cannot record this now; nothing was done.", NULL);
}

static void
reply_not_found(struct http_response *resp, const char *code, const char *msg,
                const char *field)
{
    reply_error(resp, 404, code, msg, field);
}

/* ---- audit (R7.1) ------------------------------------------------------------------ */

int
vrs_audit(const struct http_request *req, const char *action, const char *outcome,
          const char *reason, const char *subject, json_t *objects, json_t *info)
{
    struct worker_env *env = wenv(req);
    json_t *ev = json_pack("{s:s,s:s}", "action", action, "outcome", outcome);
    char hex[65], *text = NULL;
    uint8_t reply[64];
    struct ipc_hdr rh;
    int rc = -1;

    if (ev == NULL || env == NULL)
        goto out;
    if (req->user_id[0] != '\0')
        json_object_set_new(ev, "actor", json_string(req->user_id));
    if (req->tenant[0] != '\0')
        json_object_set_new(ev, "tenant", json_string(req->tenant));
    if (auth_role_name(req->role) != NULL)
        json_object_set_new(ev, "role", json_string(auth_role_name(req->role)));
    if (req->has_terminal && util_hex_encode(req->terminal_fp, 32, hex, sizeof(hex)) == 0)
        json_object_set_new(ev, "terminal", json_string(hex));
    if (req->source[0] != '\0')
        json_object_set_new(ev, "source", json_string(req->source));
    /* The session (or device token) reference: its stored hash, never
     * the token itself. */
    if (req->authed) {
        char ref[5 + 65] = "hmac:";
        if (util_hex_encode(req->session_hash, 32, ref + 5, sizeof(ref) - 5) == 0)
            json_object_set_new(ev, "session", json_string(ref));
    }
    if (subject != NULL)
        json_object_set_new(ev, "subject", json_string(subject));
    audit_event_put_optional(ev, reason, objects, info);
    text = json_dumps(ev, JSON_COMPACT);
    if (text != NULL &&
        ipc_call(&env->audit, IPC_AUDIT_APPEND, text, strlen(text), &rh, reply,
                 sizeof(reply), AUDIT_TIMEOUT_MS) == 0 && rh.type == IPC_AUDIT_ACK)
        rc = 0;
    else
        log_error("audit_refused", "audit event %s not recorded: operation refused", action);
out:
    free(text);
    json_decref(ev);
    json_decref(objects);
    json_decref(info);
    return rc;
}

/*
 * The keyed hash of a searched personal value for the audit event's
 * `subject` (R7.1): BLAKE2b-256 keyed with a subkey of the tenant's
 * index key made for this purpose only, so equal values searched in one
 * tenant give equal subjects (an auditor can see the same person looked
 * up again) while the value itself, and the store's own blind index, are
 * not in the log.  0, or -1 if the key cannot be had.
 */
static int
subject_hash(const struct http_request *req, const char *kind, const char *value,
             char out[70])
{
    struct worker_env *env = wenv(req);
    struct tenant_key *ik = NULL;
    uint8_t sub[32], h[32];
    crypto_generichash_state s;
    int rc = -1;

    if (env->keys.index_key(env->keys.arg, req->tenant, &ik) != 0)
        return -1;
    if (crypto_kdf_derive_from_key(sub, sizeof(sub), 1, "mamoriAU", ik->key) == 0 &&
        crypto_generichash_init(&s, sub, sizeof(sub), sizeof(h)) == 0 &&
        crypto_generichash_update(&s, (const uint8_t *)kind, strlen(kind) + 1) == 0 &&
        crypto_generichash_update(&s, (const uint8_t *)value, strlen(value)) == 0 &&
        crypto_generichash_final(&s, h, sizeof(h)) == 0) {
        memcpy(out, "hmac:", 5);
        rc = util_hex_encode(h, sizeof(h), out + 5, 65);
    }
    util_wipe(sub, sizeof(sub));
    util_wipe(&s, sizeof(s));
    tenant_key_free(ik);
    return rc;
}

/* ---- tenant context and store errors ------------------------------------------------ */

int
vrs_tenant_open(const struct http_request *req, struct http_response *resp,
                struct store_tenant **ctx)
{
    struct worker_env *env = wenv(req);
    enum store_status st = store_tenant_ctx_open(env->store, req->tenant, &env->keys, ctx);

    if (st == STORE_OK)
        return 0;
    log_warn("vrs_tenant_unavailable", "tenant context: %s", store_strerror(st));
    vrs_reply_unavailable(resp);
    return -1;
}

/*
 * Audit, then commit the open bulk transaction of `ctx` (see the top of
 * this file).  0 when both are durable; -1 with resp set otherwise: the
 * transaction is rolled back if the writer refused, and if the commit
 * itself failed a failure event follows the success event (best effort).
 */
int
vrs_commit_audited(const struct http_request *req, struct http_response *resp,
                   struct store_tenant *ctx, const char *action, json_t *objects, json_t *info)
{
    json_t *again = json_deep_copy(objects);
    enum store_status st;

    if (vrs_audit(req, action, "success", NULL, NULL, objects, info) != 0) {
        store_bulk_abort(ctx);
        json_decref(again);
        vrs_reply_audit_failed(resp);
        return -1;
    }
    if ((st = store_bulk_commit(ctx)) != STORE_OK) {
        log_error("vrs_commit_failed", "%s: %s after its audit event", action,
                  store_strerror(st));
        if (vrs_audit(req, action, "failure", "commit_failed", NULL, again, NULL) != 0)
            log_error("audit_refused", "failure event of %s not recorded", action);
        vrs_reply_unavailable(resp);
        return -1;
    }
    json_decref(again);
    return 0;
}

/* ---- validators --------------------------------------------------------------------- */

static bool
chars_in(const char *v, const char *extra)
{
    for (; *v; v++)
        if (!((*v >= '0' && *v <= '9') || (*v >= 'a' && *v <= 'z') ||
              (*v >= 'A' && *v <= 'Z') || strchr(extra, *v) != NULL))
            return false;
    return true;
}

/* The resident's fields: the checks are vrs/fields.h's, shared with the
 * import, so the API stores nothing the import would refuse. */
static const char *
check_address_no(const char *v)
{
    return vrs_field_code(v, strlen(v));
}

static const char *
check_household_no(const char *v)
{
    return v[0] == '\0' ? NULL : vrs_field_code(v, strlen(v));
}

/* R2.2: 12 digits with a valid check digit, or "" (unknown).  The
 * messages never repeat the value. */
static const char *
check_mynumber(const char *v)
{
    if (v[0] == '\0')
        return NULL;
    if (strlen(v) != MYNUMBER_LEN || strspn(v, "0123456789") != MYNUMBER_LEN)
        return "must be 12 digits (half-width)";
    return mynumber_valid(v) ? NULL : "is not a valid individual number (check digit)";
}

static const char *
check_mynumber_required(const char *v)
{
    return v[0] == '\0' ? "must be 12 digits (half-width)" : check_mynumber(v);
}

const char *
vrs_check_date(const char *v)
{
    int32_t d;

    return vrs_date_parse(v, &d) == 0 ? NULL : "must be a calendar date written YYYY-MM-DD";
}

static const char *
check_opt_date(const char *v)
{
    return v[0] == '\0' ? NULL : vrs_check_date(v);
}

static const char *
check_sex(const char *v)
{
    return vrs_field_sex(v, strlen(v));
}

static const char *
check_postcode(const char *v)
{
    return v[0] == '\0' ? NULL : vrs_field_postcode(v, strlen(v));
}

/* Name and kana as staff type them (R2.1): resident_apply stores the
 * stored form the same function makes, in the import's layout. */
static const char *
check_typed(const char *v, enum vrs_name_kind kind)
{
    char stored[STORE_NAME_MAX];
    const char *why = vrs_field_name_typed(v, kind, stored);

    util_wipe(stored, sizeof(stored));
    return why;
}

static const char *
check_name(const char *v)
{
    return check_typed(v, VRS_NAME);
}

static const char *
check_kana(const char *v)
{
    return v[0] == '\0' ? NULL : check_typed(v, VRS_KANA);
}

/* A name to search by (R2.8): any form, one part or two, that has a
 * search key. */
static const char *
check_search_name(const char *v)
{
    const char *why = vrs_check_text(v);

    return why != NULL ? why : vrs_field_searchable(v);
}

static const char *
check_movement_type(const char *v)
{
    return v[0] == '\0' ? NULL : vrs_field_movement_type(v);
}

const char *
vrs_check_idem(const char *v)
{
    return v[0] != '\0' && chars_in(v, "._:-") ? NULL
        : "must be 1 to 64 of the characters A-Z, a-z, 0-9, '.', '_', ':' and '-'";
}

static const char *
check_voucher_no(const char *v)
{
    return vrs_voucher_number_check(v) == VRS_VOUCHER_OK ? NULL
        : "must be exactly 10 digits (half-width)";
}

static const char *
check_opt_voucher_no(const char *v)
{
    return v[0] == '\0' ? NULL : check_voucher_no(v);
}

const char *
vrs_check_vaccine(const char *v)
{
    for (const char *p = v; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return "must be a vaccine code of a-z, 0-9 and '-' (see the vaccine catalogue)";
    return v[0] != '\0' ? NULL : "must not be empty";
}

/* vrs/fields.h: the import's rule too, so a stored lot comes back from
 * the replica (R2.3, R2.7).  The site interface uses it as well. */
const char *
vrs_check_lot(const char *v)
{
    return vrs_field_lot(v, strlen(v));
}

/* A voucher's issue date: not after today, as the import (R2.4). */
static const char *
check_issued_date(const char *v)
{
    char today[STORE_DATE_LEN];
    int32_t now, d;

    vrs_today(today);
    if (vrs_date_parse(today, &now) != 0)
        return "cannot be checked against today's date";
    return vrs_field_date_past(v, strlen(v), now, &d);
}

static const char *
check_reason(const char *v)
{
    const char *why = vrs_check_text(v);

    if (why != NULL)
        return why;
    return vrs_field_searchable(v) != NULL ? "must say why (it must not be blank)" : NULL;
}

static const char *
check_row_id(const char *v)
{
    uint64_t id;

    return util_parse_u64(v, 1, INT64_MAX, &id) == 0 ? NULL : "must be a record number";
}

static const char *
check_part(const char *v)
{
    enum export_kind k;

    return export_kind_parse(v, &k) == 0 && k != EXPORT_LEDGER ? NULL
        : "must be residents, vouchers or vaccinations";
}

static const char *
check_encoding(const char *v)
{
    return strcmp(v, "utf-8") == 0 || strcmp(v, "cp932") == 0 ? NULL
        : "must be utf-8 or cp932";
}

/* ---- route table pieces ---------------------------------------------------------------- */

#define END_FIELDS { NULL, 0, false, 0, 0, 0, NULL }
#define ROW_ID_MAX ((size_t)INT64_MAX)

const struct param_rule vrs_id_params[] = {
    { "id", 19, check_row_id },
    { NULL, 0, NULL },
};

/* Query parameters of the exports (R2.7). */
const struct param_rule vrs_export_params[] = {
    { "part", 16, check_part },
    { "encoding", 8, check_encoding },
    { NULL, 0, NULL },
};

const struct param_rule vrs_ledger_params[] = {
    { "encoding", 8, check_encoding },
    { NULL, 0, NULL },
};
/* The resident's fields, as accepted on creation (R2.1).  Lengths are
 * bytes and match struct resident's buffers. */
#define RESIDENT_OPTIONAL_FIELDS(REQ)                                                   \
    { "kana", FIELD_STRING, false, 0, STORE_NAME_MAX - 1, 0, check_kana },              \
    { "sex", FIELD_STRING, REQ, 1, 1, 0, check_sex },                                   \
    { "postcode", FIELD_STRING, false, 0, 8, 0, check_postcode },                       \
    { "address", FIELD_STRING, false, 0, STORE_ADDR_MAX - 1, 0, vrs_check_text },       \
    { "katagaki", FIELD_STRING, false, 0, STORE_NAME_MAX - 1, 0, vrs_check_text },      \
    { "household_no", FIELD_STRING, false, 0, 31, 0, check_household_no },              \
    { "relationship", FIELD_STRING, false, 0, 63, 0, vrs_check_text },                  \
    { "became_date", FIELD_STRING, false, 0, 10, 0, check_opt_date },                   \
    { "ceased_date", FIELD_STRING, false, 0, 10, 0, check_opt_date },                   \
    { "movement_type", FIELD_STRING, false, 0, 31, 0, check_movement_type },            \
    { "movement_date", FIELD_STRING, false, 0, 10, 0, check_opt_date },                 \
    { "prev_address", FIELD_STRING, false, 0, STORE_ADDR_MAX - 1, 0, vrs_check_text },  \
    { "next_address", FIELD_STRING, false, 0, STORE_ADDR_MAX - 1, 0, vrs_check_text },  \
    { "alias", FIELD_STRING, false, 0, STORE_NAME_MAX - 1, 0, vrs_check_text }

const struct field_rule vrs_resident_fields[] = {
    { "address_no", FIELD_STRING, true, 1, STORE_ADDRNO_MAX - 1, 0, check_address_no },
    { "mynumber", FIELD_STRING, false, 0, MYNUMBER_LEN, 0, check_mynumber },
    { "name", FIELD_STRING, true, 1, STORE_NAME_MAX - 1, 0, check_name },
    { "birth_date", FIELD_STRING, true, 10, 10, 0, vrs_check_date },
    RESIDENT_OPTIONAL_FIELDS(true),
    { "idempotency_key", FIELD_STRING, false, 1, STORE_IDEM_MAX, 0, vrs_check_idem },
    END_FIELDS,
};

/* R2.8: by address number, by individual number, or by the basic items
 * (name + birth date, optionally sex and address). */
const struct field_rule vrs_search_fields[] = {
    { "address_no", FIELD_STRING, false, 1, STORE_ADDRNO_MAX - 1, 0, check_address_no },
    { "mynumber", FIELD_STRING, false, MYNUMBER_LEN, MYNUMBER_LEN, 0, check_mynumber_required },
    { "name", FIELD_STRING, false, 1, STORE_NAME_MAX - 1, 0, check_search_name },
    { "birth_date", FIELD_STRING, false, 10, 10, 0, vrs_check_date },
    { "sex", FIELD_STRING, false, 1, 1, 0, check_sex },
    { "address", FIELD_STRING, false, 1, STORE_ADDR_MAX - 1, 0, vrs_check_text },
    END_FIELDS,
};

/* R2.9, R2.5: any field but the address number, a reason, and the
 * moved-out / deceased flags with their dates. */
const struct field_rule vrs_resident_correct_fields[] = {
    { "reason", FIELD_STRING, true, 1, STORE_REASON_MAX - 1, 0, check_reason },
    { "mynumber", FIELD_STRING, false, 0, MYNUMBER_LEN, 0, check_mynumber },
    { "name", FIELD_STRING, false, 1, STORE_NAME_MAX - 1, 0, check_name },
    { "birth_date", FIELD_STRING, false, 10, 10, 0, vrs_check_date },
    RESIDENT_OPTIONAL_FIELDS(false),
    { "moved_out_date", FIELD_STRING, false, 10, 10, 0, vrs_check_date },
    { "deceased_date", FIELD_STRING, false, 10, 10, 0, vrs_check_date },
    END_FIELDS,
};

/* R2.4.  One ticket type, the import's (vrs_field_ticket_type says
 * why); absent, the handler fills in 1 and today. */
const struct field_rule vrs_voucher_fields[] = {
    { "voucher_no", FIELD_STRING, true, 10, 10, 0, check_voucher_no },
    { "ticket_type", FIELD_INTEGER, false, VRS_TICKET_VACCINATION, VRS_TICKET_VACCINATION, 0,
      NULL },
    { "issued_date", FIELD_STRING, false, 10, 10, 0, check_issued_date },
    END_FIELDS,
};

const struct field_rule vrs_voucher_search_fields[] = {
    { "voucher_no", FIELD_STRING, true, 10, 10, 0, check_voucher_no },
    END_FIELDS,
};

/* R2.3.  The dose is range-checked by the rules (422 dose_out_of_range),
 * an unknown vaccine code too (422 vaccine_unknown); the import reports
 * the same rules (vrs/fields.h).  Site, clinic and doctor are optional
 * on both sides. */
const struct field_rule vrs_vaccination_fields[] = {
    { "resident_id", FIELD_INTEGER, true, 1, ROW_ID_MAX, 0, NULL },
    { "vaccine", FIELD_STRING, true, 1, STORE_VACCINE_MAX - 1, 0, vrs_check_vaccine },
    { "dose", FIELD_INTEGER, true, 0, VRS_FIELD_DOSE_WRITTEN_MAX, 0, NULL },
    { "date", FIELD_STRING, true, 10, 10, 0, vrs_check_date },
    { "lot", FIELD_STRING, true, 1, STORE_LOT_MAX - 1, 0, vrs_check_lot },
    { "voucher_no", FIELD_STRING, false, 0, 10, 0, check_opt_voucher_no },
    { "site", FIELD_STRING, false, 0, STORE_SITE_MAX - 1, 0, vrs_check_text },
    { "clinic", FIELD_STRING, false, 0, STORE_PERSON_MAX - 1, 0, vrs_check_text },
    { "doctor", FIELD_STRING, false, 0, STORE_PERSON_MAX - 1, 0, vrs_check_text },
    { "idempotency_key", FIELD_STRING, false, 1, STORE_IDEM_MAX, 0, vrs_check_idem },
    END_FIELDS,
};

const struct field_rule vrs_vaccination_correct_fields[] = {
    { "reason", FIELD_STRING, true, 1, STORE_REASON_MAX - 1, 0, check_reason },
    { "vaccine", FIELD_STRING, false, 1, STORE_VACCINE_MAX - 1, 0, vrs_check_vaccine },
    { "dose", FIELD_INTEGER, false, 0, VRS_FIELD_DOSE_WRITTEN_MAX, 0, NULL },
    { "date", FIELD_STRING, false, 10, 10, 0, vrs_check_date },
    { "lot", FIELD_STRING, false, 1, STORE_LOT_MAX - 1, 0, vrs_check_lot },
    { "voucher_no", FIELD_STRING, false, 0, 10, 0, check_opt_voucher_no },
    { "site", FIELD_STRING, false, 0, STORE_SITE_MAX - 1, 0, vrs_check_text },
    { "clinic", FIELD_STRING, false, 0, STORE_PERSON_MAX - 1, 0, vrs_check_text },
    { "doctor", FIELD_STRING, false, 0, STORE_PERSON_MAX - 1, 0, vrs_check_text },
    { "void", FIELD_BOOLEAN, false, 0, 0, 0, NULL },
    END_FIELDS,
};

/* ---- residents as JSON --------------------------------------------------------------------- */

struct rfield {
    const char *name;
    size_t      off, size;
};

#define RF(f) { #f, offsetof(struct resident, f), sizeof(((struct resident *)0)->f) }

/* Every text field but the individual number, which is never answered. */
static const struct rfield rfields[] = {
    RF(address_no), RF(name), RF(kana), RF(birth_date), RF(sex), RF(postcode),
    RF(address), RF(katagaki), RF(household_no), RF(relationship), RF(became_date),
    RF(ceased_date), RF(movement_type), RF(movement_date), RF(prev_address),
    RF(next_address), RF(alias),
};
#define NRFIELDS (sizeof(rfields) / sizeof(rfields[0]))

static char *
rfield_at(struct resident *r, const struct rfield *f)
{
    return (char *)r + f->off;
}

static const char *
rfield_get(const struct resident *r, const struct rfield *f)
{
    return (const char *)r + f->off;
}

/* R2.5: "deceased" (死亡), "moved_out" (転出), "ceased" (another
 * cessation, e.g. 職権消除), or "current". */
static const char *
resident_status(const struct resident *r)
{
    if (strcmp(r->movement_type, "死亡") == 0)
        return "deceased";
    if (strcmp(r->movement_type, "転出") == 0)
        return "moved_out";
    return r->ceased_date[0] != '\0' ? "ceased" : "current";
}

void
vrs_resident_facts(const struct resident *r, struct vrs_resident_facts *f)
{
    const char *when = r->ceased_date[0] != '\0' ? r->ceased_date : r->movement_date;

    memset(f, 0, sizeof(*f));
    f->birth_date = r->birth_date;
    if (strcmp(r->movement_type, "死亡") == 0)
        f->deceased_date = when;
    else if (strcmp(r->movement_type, "転出") == 0 || r->ceased_date[0] != '\0')
        f->moved_out_date = when;       /* no longer a resident here */
}

/* The resident as answered: never the individual number (R2.2). */
static json_t *
resident_json(const struct resident *r)
{
    json_t *o = json_pack("{s:I,s:b,s:s}", "id", (json_int_t)r->id,
                          "has_mynumber", r->mynumber[0] != '\0',
                          "status", resident_status(r));

    for (size_t i = 0; o != NULL && i < NRFIELDS; i++)
        json_object_set_new(o, rfields[i].name, json_string(rfield_get(r, &rfields[i])));
    return o;
}

static json_t *
voucher_json(const struct voucher *v)
{
    return json_pack("{s:s,s:I,s:i,s:s,s:b}", "voucher_no", v->voucher_no,
                     "resident_id", (json_int_t)v->resident_id, "ticket_type", v->ticket_type,
                     "issued_date", v->issued_date, "voided", v->voided);
}

static json_t *
vaccination_json(const struct vaccination *v)
{
    return json_pack("{s:I,s:I,s:s,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b}",
                     "id", (json_int_t)v->id, "resident_id", (json_int_t)v->resident_id,
                     "vaccine", v->vaccine, "dose", v->dose, "date", v->date,
                     "voucher_no", v->voucher_no, "lot", v->lot, "site", v->site,
                     "clinic", v->clinic, "doctor", v->doctor, "entered_by", v->entered_by,
                     "entered_at", v->entered_at, "voided", v->voided);
}

/* A correction image without the individual number: has_mynumber and, in
 * the list of changes, the name "mynumber" only (R2.2). */
static json_t *
image_json(const char *text)
{
    json_t *o = text != NULL ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
    json_t *mn;

    if (!json_is_object(o)) {
        json_decref(o);
        return json_object();
    }
    if ((mn = json_object_get(o, "mynumber")) != NULL) {
        bool has = json_is_string(mn) && json_string_length(mn) > 0;
        json_object_del(o, "mynumber");
        json_object_set_new(o, "has_mynumber", json_boolean(has));
    }
    return o;
}

/* Names of the members whose values differ between two images. */
static json_t *
changed_fields(const char *before, const char *after)
{
    json_t *b = json_loads(before ? before : "{}", 0, NULL);
    json_t *a = json_loads(after ? after : "{}", 0, NULL);
    json_t *names = json_array(), *v;
    const char *k;

    json_object_foreach(a, k, v) {
        if (!json_equal(v, json_object_get(b, k)))
            json_array_append_new(names, json_string(k));
    }
    json_decref(b);
    json_decref(a);
    return names;
}

struct corr_list {
    json_t *rows;
    bool    full;       /* with before / after images */
};

static int
correction_row(const struct correction *c, void *p)
{
    struct corr_list *l = p;
    json_t *row = json_pack("{s:I,s:s,s:I,s:s,s:s,s:s,s:o}", "id", (json_int_t)c->id,
                            "object", c->object == STORE_OBJ_RESIDENT ? "resident"
                                                                     : "vaccination",
                            "object_id", (json_int_t)c->object_id, "at", c->at,
                            "actor", c->actor, "reason", c->reason,
                            "fields", changed_fields(c->before_json, c->after_json));

    if (row != NULL && l->full) {
        json_object_set_new(row, "before", image_json(c->before_json));
        json_object_set_new(row, "after", image_json(c->after_json));
    }
    return row != NULL && json_array_append_new(l->rows, row) == 0 ? 0 : 1;
}

/* The resident's corrections and those of its vaccinations, oldest first
 * per object. */
static enum store_status
corrections_json(struct store_tenant *ctx, const struct resident *r,
                 const struct vaccination *v, size_t nv, bool full, json_t **out)
{
    struct corr_list l = { json_array(), full };
    enum store_status st;

    if (l.rows == NULL)
        return STORE_ERROR;
    st = store_corrections_of(ctx, STORE_OBJ_RESIDENT, r->id, correction_row, &l);
    for (size_t i = 0; i < nv && st == STORE_OK; i++)
        st = store_corrections_of(ctx, STORE_OBJ_VACCINATION, v[i].id, correction_row, &l);
    if (st != STORE_OK) {
        json_decref(l.rows);
        return st;
    }
    *out = l.rows;
    return STORE_OK;
}

enum store_status
vrs_doses_of(struct store_tenant *ctx, int64_t resident_id, struct vaccination **out, size_t *n)
{
    struct vaccination *v = calloc(DOSES_MAX, sizeof(*v));
    enum store_status st;

    *n = 0;
    if (v == NULL)
        return STORE_ERROR;
    st = store_vaccinations_of(ctx, resident_id, v, DOSES_MAX, n);
    if (st != STORE_OK) {
        free(v);
        return st;
    }
    *out = v;
    return STORE_OK;
}

/* The inquiry view (R2.8): the resident with vouchers, vaccinations and
 * the list of corrections (full images when `full`). */
static enum store_status
record_json(struct store_tenant *ctx, const struct resident *r, bool full, json_t **out)
{
    struct voucher vs[VOUCHERS_MAX];
    struct vaccination *v = NULL;
    size_t nvs = 0, nv = 0;
    json_t *o, *vouchers = json_array(), *doses = json_array(), *corr = NULL;
    enum store_status st = store_vouchers_of(ctx, r->id, vs, VOUCHERS_MAX, &nvs);

    if (st == STORE_OK)
        st = vrs_doses_of(ctx, r->id, &v, &nv);
    if (st == STORE_OK)
        st = corrections_json(ctx, r, v, nv, full, &corr);
    o = resident_json(r);
    if (st != STORE_OK || o == NULL || vouchers == NULL || doses == NULL) {
        json_decref(o);
        json_decref(vouchers);
        json_decref(doses);
        free(v);
        return st != STORE_OK ? st : STORE_ERROR;
    }
    for (size_t i = 0; i < nvs; i++)
        json_array_append_new(vouchers, voucher_json(&vs[i]));
    for (size_t i = 0; i < nv; i++)
        json_array_append_new(doses, vaccination_json(&v[i]));
    free(v);
    json_object_set_new(o, "vouchers", vouchers);
    json_object_set_new(o, "vaccinations", doses);
    json_object_set_new(o, "corrections", corr);
    *out = o;
    return STORE_OK;
}

/* ---- residents from JSON --------------------------------------------------------------------- */

static int
field_refused(struct http_response *resp, const char *field, const char *msg)
{
    reply_error(resp, 400, "invalid_field", msg, field);
    return -1;
}

/* A typed name or kana into its stored form (vrs/fields.h): the router
 * ran the same check, so a refusal here is only a failure to normalise. */
static int
apply_typed(const struct http_request *req, struct http_response *resp, const char *field,
            enum vrs_name_kind kind, char out[STORE_NAME_MAX])
{
    const char *typed = body_str(req, field), *why;
    char msg[200];

    if (typed[0] == '\0' || (why = vrs_field_name_typed(typed, kind, out)) == NULL)
        return 0;
    snprintf(msg, sizeof(msg), "The field %s %s.", field, why);
    return field_refused(resp, field, msg);
}

/* Copy every resident field present in the body into r ("" clears);
 * name and kana in their stored form, so that the replica holds them as
 * the import expects them (R2.1, R2.7).  0, or -1 and a 400. */
static int
resident_apply(const struct http_request *req, struct http_response *resp, struct resident *r)
{
    for (size_t i = 0; i < NRFIELDS; i++)
        if (body_has(req, rfields[i].name))
            snprintf(rfield_at(r, &rfields[i]), rfields[i].size, "%s",
                     body_str(req, rfields[i].name));
    if (body_has(req, "mynumber"))
        snprintf(r->mynumber, sizeof(r->mynumber), "%s", body_str(req, "mynumber"));
    if (body_has(req, "name") && apply_typed(req, resp, "name", VRS_NAME, r->name) != 0)
        return -1;
    return body_has(req, "kana") ? apply_typed(req, resp, "kana", VRS_KANA, r->kana) : 0;
}

static bool
ceasing_movement(const char *t)
{
    return strcmp(t, "転出") == 0 || strcmp(t, "死亡") == 0 || strcmp(t, "職権消除") == 0;
}

/* The fields together make sense (R2.1, R2.5): dates in order and not in
 * the future, a cessation with its movement.  0, or -1 and a 400. */
static int
resident_consistent(const struct resident *r, struct http_response *resp)
{
    char today[STORE_DATE_LEN];
    int32_t t = 0, birth = 0, d;

    vrs_today(today);
    if (vrs_date_parse(today, &t) != 0 || vrs_date_parse(r->birth_date, &birth) != 0)
        return field_refused(resp, "birth_date", "The field birth_date must be a calendar "
                             "date written YYYY-MM-DD.");
    if (birth > t)
        return field_refused(resp, "birth_date", "The date of birth is in the future.");
    const struct { const char *name, *value; } later[] = {
        { "became_date", r->became_date }, { "ceased_date", r->ceased_date },
        { "movement_date", r->movement_date },
    };
    for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
        if (later[i].value[0] == '\0' || vrs_date_parse(later[i].value, &d) != 0)
            continue;
        if (d < birth)
            return field_refused(resp, later[i].name, "This date is before the date of birth.");
        if (d > t)
            return field_refused(resp, later[i].name, "This date is in the future.");
    }
    /* As the import has it: a movement and its date go together. */
    if ((r->movement_type[0] == '\0') != (r->movement_date[0] == '\0'))
        return field_refused(resp, "movement_date", r->movement_type[0] == '\0'
                             ? "A movement_date needs its movement_type."
                             : "A movement_type needs its movement_date.");
    if (r->became_date[0] != '\0' && r->ceased_date[0] != '\0' &&
        strcmp(r->ceased_date, r->became_date) < 0)
        return field_refused(resp, "ceased_date",
                             "The resident cannot cease to be a resident before becoming one.");
    if (r->ceased_date[0] != '\0' && !ceasing_movement(r->movement_type))
        return field_refused(resp, "movement_type", "A resident who has ceased to be a "
                             "resident needs the movement 転出, 死亡 or 職権消除.");
    if (ceasing_movement(r->movement_type) &&
        (r->ceased_date[0] == '\0' || strcmp(r->ceased_date, r->movement_date) != 0))
        return field_refused(resp, "ceased_date", "With the movement 転出, 死亡 or 職権消除 "
                             "the ceased date must be given and equal the movement date.");
    return 0;
}

/* ---- POST /v1/residents (R2.1, R2.2) -------------------------------------------------------- */

void
vrs_h_resident_create(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct resident r;
    const char *idem = body_has(req, "idempotency_key") ? body_str(req, "idempotency_key")
                                                        : NULL;
    int64_t id = 0;
    enum store_status st;

    memset(&r, 0, sizeof(r));
    if (resident_apply(req, resp, &r) != 0 || resident_consistent(&r, resp) != 0 ||
        vrs_tenant_open(req, resp, &ctx) != 0)
        goto out;
    if ((st = store_bulk_begin(ctx)) != STORE_OK) {
        vrs_reply_unavailable(resp);
        goto out;
    }
    st = store_resident_insert(ctx, idem, &r, &id);
    if (st != STORE_OK) {
        store_bulk_abort(ctx);
        if (st == STORE_EXISTS)
            reply_error(resp, 409, "address_no_exists", "Your municipality already has a "
                        "resident with this address number (or the idempotency key was "
                        "used for another request).", "address_no");
        else if (st == STORE_INVALID)
            reply_error(resp, 400, "invalid_resident", "The resident was refused: a field "
                        "is not in the form the record needs.", NULL);
        else
            vrs_reply_unavailable(resp);
        goto out;
    }
    if (vrs_commit_audited(req, resp, ctx, "resident.create", objects1("resident", id), NULL) != 0)
        goto out;
    /* The individual number is not echoed: has_mynumber says it is there. */
    reply_json(resp, 201, json_pack("{s:I,s:s,s:b}", "id", (json_int_t)id,
                                    "address_no", r.address_no,
                                    "has_mynumber", r.mynumber[0] != '\0'));
out:
    store_resident_wipe(&r);
    store_tenant_ctx_close(ctx);
}

/* ---- GET /v1/residents/{id} ------------------------------------------------------------------ */

static int64_t
param_id(const struct http_request *req)
{
    uint64_t id = 0;

    return util_parse_u64(http_param(req, "id"), 1, INT64_MAX, &id) == 0 ? (int64_t)id : 0;
}

/* Load the tenant's resident `id`; on failure the refusal is audited
 * (`action`, failure) and answered (404 for an unknown id or another
 * tenant's, alike: R1.1). */
static int
load_resident(const struct http_request *req, struct http_response *resp,
              struct store_tenant *ctx, int64_t id, const char *action, const char *field,
              struct resident *r)
{
    enum store_status st = store_resident_get(ctx, id, r);

    if (st == STORE_OK)
        return 0;
    if (st != STORE_NOTFOUND) {
        vrs_reply_unavailable(resp);
        return -1;
    }
    if (vrs_audit(req, action, "failure", "not_found", NULL, objects1("resident", id),
                  NULL) != 0)
        vrs_reply_audit_failed(resp);
    else
        reply_not_found(resp, "unknown_resident", "Your municipality has no resident with "
                        "this id.", field);
    return -1;
}

void
vrs_h_resident_get(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct resident r;
    int64_t id = param_id(req);
    json_t *rec = NULL;

    memset(&r, 0, sizeof(r));
    if (vrs_tenant_open(req, resp, &ctx) != 0 ||
        load_resident(req, resp, ctx, id, "resident.read", "id", &r) != 0)
        goto out;
    if (record_json(ctx, &r, false, &rec) != STORE_OK) {
        vrs_reply_unavailable(resp);
        goto out;
    }
    if (vrs_audit(req, "resident.read", "success", NULL, NULL, objects1("resident", id),
                  NULL) != 0) {
        vrs_reply_audit_failed(resp);
        goto out;
    }
    reply_json(resp, 200, rec);
    rec = NULL;
out:
    json_decref(rec);
    store_resident_wipe(&r);
    store_tenant_ctx_close(ctx);
}

/* ---- POST /v1/residents/search (R2.8) ------------------------------------------------------------ */

enum search_by { BY_NONE, BY_ADDRESS_NO, BY_MYNUMBER, BY_NAME };

static enum search_by
search_mode(const struct http_request *req)
{
    bool a = body_has(req, "address_no"), m = body_has(req, "mynumber");
    bool n = body_has(req, "name"), b = body_has(req, "birth_date");
    bool extra = body_has(req, "sex") || body_has(req, "address");

    if (a && !m && !n && !b && !extra)
        return BY_ADDRESS_NO;
    if (m && !a && !n && !b && !extra)
        return BY_MYNUMBER;
    if (n && b && !a && !m)
        return BY_NAME;
    return BY_NONE;
}

/* Compare two texts in their search form (width, kana and spaces folded). */
static bool
same_text(const char *a, const char *b)
{
    char na[TEXT_NAME_MAX + 1], nb[TEXT_NAME_MAX + 1];
    bool eq = text_normalize_name(a, na, sizeof(na)) == 0 &&
              text_normalize_name(b, nb, sizeof(nb)) == 0 && strcmp(na, nb) == 0;

    util_wipe(na, sizeof(na));
    util_wipe(nb, sizeof(nb));
    return eq;
}

/* Row ids for the search (up to max), and the audit subject. */
static enum store_status
search_ids(const struct http_request *req, struct store_tenant *ctx, enum search_by by,
           int64_t *ids, size_t max, size_t *n, char subject[70], bool *has_subject)
{
    enum store_status st;
    char key[TEXT_NAME_MAX + STORE_DATE_LEN + 2];

    *n = 0;
    *has_subject = false;
    switch (by) {
    case BY_ADDRESS_NO:
        st = store_resident_id(ctx, body_str(req, "address_no"), &ids[0]);
        if (st == STORE_OK)
            *n = 1;
        return st == STORE_NOTFOUND ? STORE_OK : st;
    case BY_MYNUMBER:
        /* R7.1: the number itself never reaches the log, its keyed hash does */
        *has_subject = subject_hash(req, "mynumber", body_str(req, "mynumber"), subject) == 0;
        if (!*has_subject)
            return STORE_KEY;
        return store_resident_find_mynumber(ctx, body_str(req, "mynumber"), ids, max, n);
    case BY_NAME:
        /* the search form of the name, so ｶﾅ and カナ give one subject */
        if (text_normalize_name(body_str(req, "name"), key, sizeof(key) - STORE_DATE_LEN) != 0)
            return STORE_INVALID;
        snprintf(key + strlen(key), STORE_DATE_LEN + 1, "|%s", body_str(req, "birth_date"));
        *has_subject = subject_hash(req, "name_dob", key, subject) == 0;
        util_wipe(key, sizeof(key));
        if (!*has_subject)
            return STORE_KEY;
        return store_resident_find_name_dob(ctx, body_str(req, "name"),
                                            body_str(req, "birth_date"), ids, max, n);
    case BY_NONE:
        break;
    }
    return STORE_INVALID;
}

/* The basic items beyond name and birth date: sex and address, if given. */
static bool
basic_items_match(const struct http_request *req, const struct resident *r)
{
    if (body_has(req, "sex") && strcmp(body_str(req, "sex"), r->sex) != 0)
        return false;
    return !body_has(req, "address") || same_text(body_str(req, "address"), r->address);
}

static const char *const search_names[] = {
    [BY_NONE] = "none", [BY_ADDRESS_NO] = "address_no", [BY_MYNUMBER] = "mynumber",
    [BY_NAME] = "basic_items",
};

void
vrs_h_resident_search(const struct http_request *req, struct http_response *resp)
{
    enum search_by by = search_mode(req);
    struct store_tenant *ctx = NULL;
    int64_t ids[SEARCH_MAX + 1];
    size_t n = 0;
    char subject[70];
    bool has_subject = false;
    json_t *matches = json_array(), *objects = json_array();
    struct resident r;
    enum store_status st;

    memset(&r, 0, sizeof(r));
    if (by == BY_NONE) {
        reply_error(resp, 400, "search_mode", "Search by address_no alone, by mynumber "
                    "alone, or by name and birth_date (with sex and address if known).", NULL);
        goto out;
    }
    if (vrs_tenant_open(req, resp, &ctx) != 0)
        goto out;
    st = search_ids(req, ctx, by, ids, SEARCH_MAX + 1, &n, subject, &has_subject);
    for (size_t i = 0; st == STORE_OK && i < n && i < SEARCH_MAX; i++) {
        json_t *rec = NULL;
        if ((st = store_resident_get(ctx, ids[i], &r)) != STORE_OK)
            break;
        if (by == BY_NAME && !basic_items_match(req, &r)) {
            store_resident_wipe(&r);
            continue;
        }
        if ((st = record_json(ctx, &r, false, &rec)) == STORE_OK) {
            json_array_append_new(matches, rec);
            json_array_append_new(objects, vrs_object_id("resident", r.id));
        }
        store_resident_wipe(&r);
    }
    if (st != STORE_OK) {
        vrs_reply_unavailable(resp);
        goto out;
    }
    if (vrs_audit(req, "resident.search", "success", NULL, has_subject ? subject : NULL,
                  objects, json_pack("{s:s,s:I,s:i}", "by", search_names[by], "matches",
                                     (json_int_t)json_array_size(matches),
                                     "truncated", n > SEARCH_MAX)) != 0) {
        objects = NULL;
        vrs_reply_audit_failed(resp);
        goto out;
    }
    objects = NULL;
    reply_json(resp, 200, json_pack("{s:I,s:b,s:o}", "count",
                                    (json_int_t)json_array_size(matches),
                                    "truncated", n > SEARCH_MAX, "matches", matches));
    matches = NULL;
out:
    util_wipe(subject, sizeof(subject));
    store_resident_wipe(&r);
    json_decref(matches);
    json_decref(objects);
    store_tenant_ctx_close(ctx);
}

/* ---- corrections by authority (R2.9, R2.5) ------------------------------------------------------------- */

/* The moved-out / deceased flags set the movement, its date and the
 * ceased date together (R2.5). */
static int
apply_flags(const struct http_request *req, struct http_response *resp, struct resident *r)
{
    bool dead = body_has(req, "deceased_date"), gone = body_has(req, "moved_out_date");

    if (dead && gone)
        return field_refused(resp, "deceased_date", "Give either deceased_date or "
                             "moved_out_date, not both.");
    if (!dead && !gone)
        return 0;
    if (body_has(req, "movement_type") || body_has(req, "movement_date") ||
        body_has(req, "ceased_date"))
        return field_refused(resp, dead ? "deceased_date" : "moved_out_date",
                             "The flag sets movement_type, movement_date and ceased_date "
                             "itself; do not send them with it.");
    snprintf(r->movement_type, sizeof(r->movement_type), "%s", dead ? "死亡" : "転出");
    snprintf(r->movement_date, sizeof(r->movement_date), "%s",
             body_str(req, dead ? "deceased_date" : "moved_out_date"));
    snprintf(r->ceased_date, sizeof(r->ceased_date), "%s", r->movement_date);
    return 0;
}

/* Names of the fields that differ, and '/'-joined within 128 bytes for
 * the audit event (names only, never values). */
static json_t *
resident_diff(const struct resident *a, const struct resident *b, char joined[129])
{
    json_t *names = json_array();

    joined[0] = '\0';
    if (strcmp(a->mynumber, b->mynumber) != 0)
        json_array_append_new(names, json_string("mynumber"));
    for (size_t i = 0; i < NRFIELDS; i++)
        if (strcmp(rfield_get(a, &rfields[i]), rfield_get(b, &rfields[i])) != 0)
            json_array_append_new(names, json_string(rfields[i].name));
    for (size_t i = 0; i < json_array_size(names); i++) {
        const char *s = json_string_value(json_array_get(names, i));
        size_t used = strlen(joined);
        if (used + strlen(s) + 2 > 129)
            break;
        snprintf(joined + used, 129 - used, "%s%s", used ? "/" : "", s);
    }
    return names;
}

void
vrs_h_resident_correct(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct resident before, after;
    int64_t id = param_id(req), cid = 0;
    json_t *changed = NULL, *objects;
    char joined[129];
    enum store_status st;

    memset(&before, 0, sizeof(before));
    memset(&after, 0, sizeof(after));
    if (vrs_tenant_open(req, resp, &ctx) != 0 ||
        load_resident(req, resp, ctx, id, "resident.correct", "id", &before) != 0)
        goto out;
    after = before;
    if (resident_apply(req, resp, &after) != 0 || apply_flags(req, resp, &after) != 0 ||
        resident_consistent(&after, resp) != 0)
        goto out;
    changed = resident_diff(&before, &after, joined);
    if (json_array_size(changed) == 0) {
        reply_error(resp, 400, "nothing_to_change", "The body changes no field of the "
                    "resident.", NULL);
        goto out;
    }
    if ((st = store_bulk_begin(ctx)) != STORE_OK ||
        (st = store_resident_correct(ctx, id, &after, req->user_id, body_str(req, "reason"),
                                     &cid)) != STORE_OK) {
        if (st != STORE_OK)
            store_bulk_abort(ctx);
        if (st == STORE_INVALID)
            reply_error(resp, 400, "invalid_resident", "The corrected resident was "
                        "refused: a field is not in the form the record needs.", NULL);
        else
            vrs_reply_unavailable(resp);
        goto out;
    }
    objects = objects1("resident", id);
    json_array_append_new(objects, vrs_object_id("correction", cid));
    if (vrs_commit_audited(req, resp, ctx, "resident.correct", objects,
                       json_pack("{s:s,s:I}", "fields", joined, "changed",
                                 (json_int_t)json_array_size(changed))) != 0)
        goto out;
    reply_json(resp, 200, json_pack("{s:I,s:I,s:s,s:O}", "id", (json_int_t)id,
                                    "correction_id", (json_int_t)cid,
                                    "status", resident_status(&after), "changed", changed));
out:
    json_decref(changed);
    store_resident_wipe(&before);
    store_resident_wipe(&after);
    store_tenant_ctx_close(ctx);
}

void
vrs_h_resident_corrections(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct resident r;
    struct vaccination *v = NULL;
    size_t nv = 0;
    int64_t id = param_id(req);
    json_t *rows = NULL;

    memset(&r, 0, sizeof(r));
    if (vrs_tenant_open(req, resp, &ctx) != 0 ||
        load_resident(req, resp, ctx, id, "resident.corrections", "id", &r) != 0)
        goto out;
    if (vrs_doses_of(ctx, id, &v, &nv) != STORE_OK ||
        corrections_json(ctx, &r, v, nv, true, &rows) != STORE_OK) {
        vrs_reply_unavailable(resp);
        goto out;
    }
    if (vrs_audit(req, "resident.corrections", "success", NULL, NULL,
                  objects1("resident", id), NULL) != 0) {
        vrs_reply_audit_failed(resp);
        goto out;
    }
    reply_json(resp, 200, json_pack("{s:I,s:o}", "id", (json_int_t)id, "corrections", rows));
    rows = NULL;
out:
    json_decref(rows);
    free(v);
    store_resident_wipe(&r);
    store_tenant_ctx_close(ctx);
}

/* ---- vouchers (R2.4) ---------------------------------------------------------------------------- */

void
vrs_h_voucher_issue(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct voucher v;
    json_t *objects;
    enum store_status st;

    memset(&v, 0, sizeof(v));
    snprintf(v.voucher_no, sizeof(v.voucher_no), "%s", body_str(req, "voucher_no"));
    v.resident_id = param_id(req);
    v.ticket_type = body_has(req, "ticket_type")
        ? (int)json_integer_value(json_object_get(req->body, "ticket_type"))
        : VRS_TICKET_VACCINATION;
    if (body_has(req, "issued_date"))
        snprintf(v.issued_date, sizeof(v.issued_date), "%s", body_str(req, "issued_date"));
    else
        vrs_today(v.issued_date);
    if (vrs_tenant_open(req, resp, &ctx) != 0)
        goto out;
    if ((st = store_bulk_begin(ctx)) != STORE_OK ||
        (st = store_voucher_issue(ctx, &v)) != STORE_OK) {
        if (st != STORE_OK)
            store_bulk_abort(ctx);
        if (st == STORE_EXISTS)
            reply_error(resp, 409, "voucher_exists", "This voucher number is already issued "
                        "in your municipality (R2.4: one resident per number).", "voucher_no");
        else if (st == STORE_NOTFOUND)
            reply_not_found(resp, "unknown_resident", "Your municipality has no resident "
                            "with this id.", "id");
        else if (st == STORE_INVALID)
            reply_error(resp, 400, "invalid_voucher", "The voucher was refused: a field is "
                        "not in the form the record needs.", NULL);
        else
            vrs_reply_unavailable(resp);
        goto out;
    }
    objects = objects1("resident", v.resident_id);
    json_array_append_new(objects, json_pack("s+", "voucher:", v.voucher_no));
    if (vrs_commit_audited(req, resp, ctx, "voucher.issue", objects, NULL) != 0)
        goto out;
    reply_json(resp, 201, voucher_json(&v));
out:
    store_tenant_ctx_close(ctx);
}

void
vrs_h_voucher_search(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct voucher v;
    struct resident r;
    json_t *objects = json_array(), *o;
    enum store_status st;

    memset(&r, 0, sizeof(r));
    json_array_append_new(objects, json_pack("s+", "voucher:", body_str(req, "voucher_no")));
    if (vrs_tenant_open(req, resp, &ctx) != 0)
        goto out;
    st = store_voucher_get(ctx, body_str(req, "voucher_no"), &v);
    if (st == STORE_OK)
        st = store_resident_get(ctx, v.resident_id, &r);
    if (st == STORE_NOTFOUND) {
        if (vrs_audit(req, "voucher.read", "failure", "not_found", NULL, objects, NULL) != 0)
            vrs_reply_audit_failed(resp);
        else
            reply_not_found(resp, "unknown_voucher", "Your municipality has no voucher with "
                            "this number.", "voucher_no");
        objects = NULL;
        goto out;
    }
    if (st != STORE_OK) {
        vrs_reply_unavailable(resp);
        goto out;
    }
    json_array_append_new(objects, vrs_object_id("resident", r.id));
    if (vrs_audit(req, "voucher.read", "success", NULL, NULL, objects, NULL) != 0) {
        objects = NULL;
        vrs_reply_audit_failed(resp);
        goto out;
    }
    objects = NULL;
    o = voucher_json(&v);
    json_object_set_new(o, "address_no", json_string(r.address_no));
    reply_json(resp, 200, o);
out:
    json_decref(objects);
    store_resident_wipe(&r);
    store_tenant_ctx_close(ctx);
}

/* ---- vaccinations (R2.3, R2.5) ----------------------------------------------------------------------- */

/* Which requirement a rule enforces, for the refusal body. */
static const char *
rule_requirement(enum vrs_rule rule)
{
    return rule == VRS_RULE_AFTER_DEATH || rule == VRS_RULE_AFTER_MOVE_OUT ? "R2.5" : "R2.3";
}

int
vrs_check_vaccination(const struct http_request *req, struct http_response *resp,
                      struct store_tenant *ctx, const struct resident *r,
                      const struct vaccination *v, int64_t skip_id, enum vrs_rule *rule)
{
    struct vaccination *rec = NULL;
    struct vrs_dose *hist = NULL, prop = { v->vaccine, (unsigned)v->dose, v->date };
    struct vrs_resident_facts facts;
    struct vrs_verdict verdict = { VRS_RULE_BAD_CALL, NULL };
    char today[STORE_DATE_LEN];
    size_t n = 0, nh = 0;
    json_t *err;

    if (vrs_doses_of(ctx, r->id, &rec, &n) != STORE_OK ||
        (hist = calloc(n > 0 ? n : 1, sizeof(*hist))) == NULL) {
        free(rec);
        vrs_reply_unavailable(resp);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!rec[i].voided && rec[i].id != skip_id)
            hist[nh++] = (struct vrs_dose){ rec[i].vaccine, (unsigned)rec[i].dose, rec[i].date };
    vrs_resident_facts(r, &facts);
    vrs_today(today);
    /* the verdict says it all: its rule is also the return value */
    if (vrs_rules_check(vrs_catalogue_of(req), &prop, &facts, hist, nh, today, &verdict) ==
        VRS_RULE_OK)
        verdict.rule = VRS_RULE_OK;
    free(hist);
    free(rec);
    if (rule != NULL)
        *rule = verdict.rule;
    if (verdict.rule == VRS_RULE_OK)
        return 0;
    reply_error(resp, 422, vrs_rule_code(verdict.rule),
                vrs_rule_message(verdict.rule, VRS_LANG_EN), verdict.field);
    if ((err = json_object_get(resp->body, "error")) != NULL) {
        json_object_set_new(err, "message_ja",
                            json_string(vrs_rule_message(verdict.rule, VRS_LANG_JA)));
        json_object_set_new(err, "requirement", json_string(rule_requirement(verdict.rule)));
    }
    return -1;
}

/* A rule refusal is an access to the resident's record too: on the
 * record, then answered (the 422 already in resp), or 503. */
static void
audit_refusal(const struct http_request *req, struct http_response *resp, const char *action,
              enum vrs_rule rule, int64_t resident_id)
{
    if (vrs_audit(req, action, "refused", vrs_rule_code(rule), NULL,
                  objects1("resident", resident_id), NULL) != 0)
        vrs_reply_audit_failed(resp);
}

/* The voucher named for a vaccination must be the resident's, not voided
 * (R2.4: a number maps to one resident). */
static int
voucher_fits(const struct http_request *req, struct http_response *resp,
             struct store_tenant *ctx, const char *voucher_no, int64_t resident_id)
{
    struct voucher v;
    enum store_status st;

    (void)req;
    if (voucher_no[0] == '\0')
        return 0;
    st = store_voucher_get(ctx, voucher_no, &v);
    if (st == STORE_OK && v.resident_id == resident_id && !v.voided)
        return 0;
    if (st != STORE_OK && st != STORE_NOTFOUND) {
        vrs_reply_unavailable(resp);
        return -1;
    }
    reply_error(resp, 422, "voucher_not_for_resident", "The voucher number is not a valid "
                "voucher of this resident.", "voucher_no");
    json_object_set_new(json_object_get(resp->body, "error"), "message_ja",
                        json_string("この券番号はこの方の有効な接種券ではありません。"));
    return -1;
}

static void
vaccination_from_body(const struct http_request *req, struct vaccination *v)
{
    static const struct { const char *name; size_t off, size; } f[] = {
        { "vaccine", offsetof(struct vaccination, vaccine), STORE_VACCINE_MAX },
        { "date", offsetof(struct vaccination, date), STORE_DATE_LEN },
        { "voucher_no", offsetof(struct vaccination, voucher_no), STORE_VOUCHER_LEN + 1 },
        { "lot", offsetof(struct vaccination, lot), STORE_LOT_MAX },
        { "site", offsetof(struct vaccination, site), STORE_SITE_MAX },
        { "clinic", offsetof(struct vaccination, clinic), STORE_PERSON_MAX },
        { "doctor", offsetof(struct vaccination, doctor), STORE_PERSON_MAX },
    };

    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (body_has(req, f[i].name))
            snprintf((char *)v + f[i].off, f[i].size, "%s", body_str(req, f[i].name));
    if (body_has(req, "dose"))
        v->dose = (int)json_integer_value(json_object_get(req->body, "dose"));
}

void
vrs_h_vaccination_create(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct resident r;
    struct vaccination v;
    const char *idem = body_has(req, "idempotency_key") ? body_str(req, "idempotency_key")
                                                        : NULL;
    enum vrs_rule rule = VRS_RULE_OK;
    json_t *objects;
    enum store_status st;

    memset(&r, 0, sizeof(r));
    memset(&v, 0, sizeof(v));
    vaccination_from_body(req, &v);
    v.resident_id = (int64_t)json_integer_value(json_object_get(req->body, "resident_id"));
    snprintf(v.entered_by, sizeof(v.entered_by), "%s", req->user_id);
    if (vrs_tenant_open(req, resp, &ctx) != 0 ||
        load_resident(req, resp, ctx, v.resident_id, "vaccination.create", "resident_id", &r) != 0 ||
        voucher_fits(req, resp, ctx, v.voucher_no, r.id) != 0)
        goto out;
    if (vrs_check_vaccination(req, resp, ctx, &r, &v, 0, &rule) != 0) {
        if (rule != VRS_RULE_OK)
            audit_refusal(req, resp, "vaccination.create", rule, r.id);
        goto out;
    }
    if ((st = store_bulk_begin(ctx)) != STORE_OK ||
        (st = store_vaccination_insert(ctx, idem, &v, &v.id)) != STORE_OK) {
        if (st != STORE_OK)
            store_bulk_abort(ctx);
        if (st == STORE_EXISTS) {       /* a concurrent entry of the same dose */
            reply_error(resp, 422, vrs_rule_code(VRS_RULE_DOSE_DUPLICATE),
                        vrs_rule_message(VRS_RULE_DOSE_DUPLICATE, VRS_LANG_EN), "dose");
            json_object_set_new(json_object_get(resp->body, "error"), "message_ja",
                                json_string(vrs_rule_message(VRS_RULE_DOSE_DUPLICATE,
                                                             VRS_LANG_JA)));
        } else if (st == STORE_INVALID) {
            reply_error(resp, 400, "invalid_vaccination", "The vaccination was refused: a "
                        "field is not in the form the record needs.", NULL);
        } else {
            vrs_reply_unavailable(resp);
        }
        goto out;
    }
    objects = objects1("resident", r.id);
    json_array_append_new(objects, vrs_object_id("vaccination", v.id));
    if (vrs_commit_audited(req, resp, ctx, "vaccination.create", objects, NULL) != 0)
        goto out;
    if (store_vaccination_get(ctx, v.id, &v) != STORE_OK)
        v.entered_at[0] = '\0';         /* answered without the store's timestamp */
    reply_json(resp, 201, vaccination_json(&v));
out:
    store_resident_wipe(&r);
    util_wipe(&v, sizeof(v));
    store_tenant_ctx_close(ctx);
}

static bool
vaccination_differs(const struct vaccination *a, const struct vaccination *b)
{
    return strcmp(a->vaccine, b->vaccine) != 0 || a->dose != b->dose ||
           strcmp(a->date, b->date) != 0 || strcmp(a->voucher_no, b->voucher_no) != 0 ||
           strcmp(a->lot, b->lot) != 0 || strcmp(a->site, b->site) != 0 ||
           strcmp(a->clinic, b->clinic) != 0 || strcmp(a->doctor, b->doctor) != 0 ||
           a->voided != b->voided;
}

/* Load the tenant's vaccination `id` and its resident, or answer 404. */
static int
load_vaccination(const struct http_request *req, struct http_response *resp,
                 struct store_tenant *ctx, int64_t id, struct vaccination *v,
                 struct resident *r)
{
    enum store_status st = store_vaccination_get(ctx, id, v);

    if (st == STORE_NOTFOUND) {
        if (vrs_audit(req, "vaccination.correct", "failure", "not_found", NULL,
                      objects1("vaccination", id), NULL) != 0)
            vrs_reply_audit_failed(resp);
        else
            reply_not_found(resp, "unknown_vaccination", "Your municipality has no "
                            "vaccination record with this id.", "id");
        return -1;
    }
    if (st != STORE_OK || store_resident_get(ctx, v->resident_id, r) != STORE_OK) {
        vrs_reply_unavailable(resp);
        return -1;
    }
    return 0;
}

void
vrs_h_vaccination_correct(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct resident r;
    struct vaccination before, after;
    int64_t id = param_id(req), cid = 0;
    enum vrs_rule rule = VRS_RULE_OK;
    json_t *objects;
    enum store_status st;

    memset(&r, 0, sizeof(r));
    memset(&before, 0, sizeof(before));
    if (vrs_tenant_open(req, resp, &ctx) != 0 ||
        load_vaccination(req, resp, ctx, id, &before, &r) != 0)
        goto out;
    after = before;
    vaccination_from_body(req, &after);
    if (body_has(req, "void"))
        after.voided = json_is_true(json_object_get(req->body, "void"));
    if (!vaccination_differs(&before, &after)) {
        reply_error(resp, 400, "nothing_to_change", "The body changes no field of the "
                    "vaccination.", NULL);
        goto out;
    }
    if (!after.voided && voucher_fits(req, resp, ctx, after.voucher_no, r.id) != 0)
        goto out;
    /* The corrected dose must pass the same rules as a new one, judged
     * against the other doses (R2.3). */
    if (!after.voided && vrs_check_vaccination(req, resp, ctx, &r, &after, id, &rule) != 0) {
        if (rule != VRS_RULE_OK)
            audit_refusal(req, resp, "vaccination.correct", rule, r.id);
        goto out;
    }
    if ((st = store_bulk_begin(ctx)) != STORE_OK ||
        (st = store_vaccination_correct(ctx, id, &after, req->user_id,
                                        body_str(req, "reason"), &cid)) != STORE_OK) {
        if (st != STORE_OK)
            store_bulk_abort(ctx);
        if (st == STORE_EXISTS)
            reply_error(resp, 422, vrs_rule_code(VRS_RULE_DOSE_DUPLICATE),
                        vrs_rule_message(VRS_RULE_DOSE_DUPLICATE, VRS_LANG_EN), "dose");
        else if (st == STORE_INVALID)
            reply_error(resp, 400, "invalid_vaccination", "The corrected vaccination was "
                        "refused: a field is not in the form the record needs.", NULL);
        else
            vrs_reply_unavailable(resp);
        goto out;
    }
    objects = objects1("resident", r.id);
    json_array_append_new(objects, vrs_object_id("vaccination", id));
    json_array_append_new(objects, vrs_object_id("correction", cid));
    if (vrs_commit_audited(req, resp, ctx, "vaccination.correct", objects,
                       json_pack("{s:i}", "voided", after.voided ? 1 : 0)) != 0)
        goto out;
    if (store_vaccination_get(ctx, id, &after) != STORE_OK)
        after.entered_at[0] = '\0';
    reply_json(resp, 200, json_pack("{s:I,s:o}", "correction_id", (json_int_t)cid,
                                    "vaccination", vaccination_json(&after)));
out:
    store_resident_wipe(&r);
    store_tenant_ctx_close(ctx);
}

/* ---- retention (R2.10): the batches are vrs/retention.c's ------------------------------------------------ */

/* The route's events name the signed-in supervisor (vrs_audit). */
static int
request_audit(void *arg, const char *action, const char *outcome, const char *reason,
              json_t *objects, json_t *info)
{
    return vrs_audit(arg, action, outcome, reason, NULL, objects, info);
}

void
vrs_h_retention_run(const struct http_request *req, struct http_response *resp)
{
    const struct retention_actor who = { request_audit, (void *)(uintptr_t)req };
    const struct retention_opts o = { .years = wenv(req)->cfg->records_retention_years,
                                      .now = (int64_t)time(NULL),
                                      .max_batches = RETENTION_ROUNDS };
    struct store_tenant *ctx = NULL;
    struct retention_result r;
    enum retention_status rs;

    if (vrs_tenant_open(req, resp, &ctx) != 0)
        return;
    /* Batches before a failure stay deleted and recorded. */
    rs = retention_run(ctx, &who, &o, &r);
    if (rs == RETENTION_AUDIT)
        vrs_reply_audit_failed(resp);
    else if (rs != RETENTION_OK)
        vrs_reply_unavailable(resp);
    else
        reply_json(resp, 200, json_pack("{s:I,s:i,s:s,s:i,s:b}", "deleted",
                                        (json_int_t)r.deleted, "batches", (int)r.batches,
                                        "ceased_before", r.cutoff, "retention_years",
                                        (int)o.years, "more", r.more));
    store_tenant_ctx_close(ctx);
}

/* ---- exports (R2.7) ----------------------------------------------------------------------------------- */

/* The response body, grown as the export writes, up to EXPORT_MAX. */
struct membuf {
    char  *p;
    size_t n, cap;
};

static int
membuf_write(void *arg, const void *buf, size_t n)
{
    struct membuf *m = arg;

    if (n > EXPORT_MAX - m->n) {
        errno = EFBIG;
        return -1;
    }
    if (m->n + n > m->cap) {
        size_t cap = m->cap ? m->cap : 64 * 1024;
        char *g;
        while (cap < m->n + n)
            cap = cap > EXPORT_MAX / 2 ? EXPORT_MAX : cap * 2;
        if ((g = malloc(cap)) == NULL)
            return -1;
        /* copy, then wipe the old block: it holds personal data */
        if (m->n > 0)
            memcpy(g, m->p, m->n);
        if (m->p != NULL)
            util_wipe(m->p, m->cap);
        free(m->p);
        m->p = g;
        m->cap = cap;
    }
    memcpy(m->p + m->n, buf, n);
    m->n += n;
    return 0;
}

static void
membuf_drop(struct membuf *m)
{
    if (m->p != NULL)
        util_wipe(m->p, m->cap);
    free(m->p);
    memset(m, 0, sizeof(*m));
}

/*
 * Make the export in memory, record it (resident.export: kind, rows,
 * encoding; no record ids, there are too many), then answer it as CSV.
 * No export has an individual number column (vrs/export.h, R2.2).
 */
static void
export_reply(const struct http_request *req, struct http_response *resp, enum export_kind k)
{
    bool cp932 = strcmp(http_param(req, "encoding"), "cp932") == 0;
    struct export_opts o = { .kind = k, .encoding = cp932 ? CSVOUT_CP932 : CSVOUT_UTF8,
                             .crlf = true, .catalogue = vrs_catalogue_of(req) };
    struct export_stats stats = { 0 };
    struct store_tenant *ctx = NULL;
    struct membuf m = { NULL, 0, 0 };
    char err[256];

    if (vrs_tenant_open(req, resp, &ctx) != 0)
        return;
    if (export_run(ctx, &o, membuf_write, &m, &stats, err, sizeof(err)) != 0) {
        /* err names the reason, never a value (vrs/export.c ex_fail) */
        char msg[320];
        log_warn("export_failed", "%s export: %s", export_kind_name(k), err);
        snprintf(msg, sizeof(msg), "The export could not be made: %s.", err);
        /* a value CP932 cannot hold is the request's to change; the rest is ours */
        reply_error(resp, strstr(err, "cannot be written in") != NULL ? 422 : 503,
                    "export_failed", msg, NULL);
        goto out;
    }
    if (vrs_audit(req, "resident.export", "success", NULL, NULL, NULL,
                  json_pack("{s:s,s:I,s:s}", "kind", export_kind_name(k),
                            "rows", (json_int_t)stats.rows,
                            "encoding", cp932 ? "cp932" : "utf-8")) != 0) {
        vrs_reply_audit_failed(resp);
        goto out;
    }
    resp->status = 200;
    resp->raw = m.p;
    resp->raw_len = m.n;
    resp->content_type = cp932 ? "text/csv; charset=Windows-31J" : "text/csv; charset=utf-8";
    m.p = NULL;                         /* the server frees it after sending */
out:
    membuf_drop(&m);
    store_tenant_ctx_close(ctx);
}

void
vrs_h_export_replica(const struct http_request *req, struct http_response *resp)
{
    enum export_kind k;

    if (export_kind_parse(http_param(req, "part"), &k) != 0 || k == EXPORT_LEDGER) {
        reply_error(resp, 400, "invalid_parameter", "The query parameter part is required: "
                    "residents, vouchers or vaccinations.", "part");
        return;
    }
    export_reply(req, resp, k);
}

void
vrs_h_export_ledger(const struct http_request *req, struct http_response *resp)
{
    export_reply(req, resp, EXPORT_LEDGER);
}
