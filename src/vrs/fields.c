/*
 * fields.c - the checks of a resident's, a voucher's and a vaccination's
 * fields shared by the staff API and the CSV import (R2.1, R2.3, R2.4,
 * R2.6, R2.8).  What each side accepts and why: fields.h.
 */
#include "vrs/fields.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unictype.h>
#include <unistr.h>

#include "store/store_records.h"
#include "text/normalize.h"
#include "vrs/rules.h"
#include "vrs/voucher.h"

#define IDEO_SPACE 0x3000

/* Reasons: static text, never the value; arrays, so that one reason is
 * one address and may be compared by pointer. */
static const char R_CONTROL[] = "must not contain line breaks or other control characters";
static const char R_FORMAT[] =
    "must not contain invisible formatting characters (zero-width spaces, direction marks)";
static const char R_BLANK[] = "has no letters once spaces are removed";
static const char R_NAME_STORED[] =
    "must be 1 to 8 parts (family name, given names) separated by one full-width space each";
static const char R_KANA_STORED[] =
    "must be 1 to 8 parts in katakana, separated by one full-width space each";
static const char R_KANA_CHARS[] = "must be written in full-width katakana";
static const char R_NAME_TYPED[] = "must be 1 to 8 parts (family name, given names)";
static const char R_KANA_TYPED[] = "must be 1 to 8 parts in kana";
static const char R_KANA_TCHARS[] = "must be written in kana (katakana or hiragana) and spaces";
static const char R_NORM_LONG[] = "is too long once normalised for search";
static const char R_NORM_FAIL[] = "cannot be normalised for search";

static const char *const movement_types[] = {
    "出生", "転入", "転居", "転出", "死亡", "職権記載", "職権消除",
};

/* ---- text ----------------------------------------------------------------------- */

/* C0 (line breaks included), DEL, and C1: U+0080..U+009F, which UTF-8
 * writes c2 80..c2 9f (s is valid UTF-8, so c2 is always a lead byte). */
static bool
has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f ||
            (ch == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] <= 0x9f))
            return true;
    }
    return false;
}

/* Invisible formatting characters (Unicode category Cf): zero-width
 * spaces and joiners, the byte-order mark, direction marks and overrides
 * (U+200B..U+200F, U+202A..U+202E, U+2066..U+2069, U+FEFF ...).  A name
 * holding them looks like another on screen and on paper (and a direction
 * override can make a line read backwards), yet is a different value with
 * a different search key; no 住基 field has any.  Variation selectors
 * (Mn, the IVS of 髙-type variants) are not Cf and stay allowed. */
static bool
has_format(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + n;

    while (p < end) {
        ucs4_t c;
        int len = u8_mbtouc(&c, p, (size_t)(end - p));

        /* CJK and kana (U+3000..U+FDFF), most of any Japanese text,
         * hold no Cf: skip the table lookup there. */
        if (c >= 0x80 && (c < 0x3000 || c >= 0xfe00) &&
            uc_is_general_category(c, UC_CATEGORY_Cf))
            return true;
        p += len > 0 ? len : 1;
    }
    return false;
}

/* "is longer than N bytes" for the store's limits: fixed text, so a
 * reason needs no buffer. */
static const char *
too_long(size_t max)
{
    switch (max) {
    case 63:  return "is longer than 63 bytes";
    case 64:  return "is longer than 64 bytes";
    case 128: return "is longer than 128 bytes";
    case 191: return "is longer than 191 bytes";
    case 383: return "is longer than 383 bytes";
    default:  return "is too long";
    }
}

const char *
vrs_field_text(const char *s, size_t n, size_t max)
{
    if (n > max)
        return too_long(max);
    if (has_control(s, n))
        return R_CONTROL;
    return has_format(s, n) ? R_FORMAT : NULL;
}

const char *
vrs_check_text(const char *v)
{
    return vrs_field_text(v, strlen(v), SIZE_MAX);
}

const char *
vrs_field_searchable(const char *s)
{
    /* The store's search key is built from the same normal form
     * (field_bidx_name_dob); a value that normalises to nothing has none. */
    char norm[TEXT_NAME_MAX + 1];
    int rc = text_normalize_name(s, norm, sizeof(norm));
    int err = errno;
    bool empty = rc == 0 && norm[0] == '\0';

    util_wipe(norm, sizeof(norm));
    if (rc != 0)
        return err == ENAMETOOLONG ? R_NORM_LONG : R_NORM_FAIL;
    return empty ? R_BLANK : NULL;
}

/* ---- names and kana ------------------------------------------------------------------ */

/* Spaces as Unicode defines them (White_Space): ASCII, no-break, U+1680,
 * U+2000..U+200A, U+2028/2029, U+202F, U+205F and U+3000. */
static bool
is_space(ucs4_t c)
{
    return uc_is_property_white_space(c);
}

/* The stored kana: full-width katakana, the prolonged sound mark, the
 * middle dot and the iteration marks (ァ..ヾ). */
static bool
is_stored_kana(ucs4_t c)
{
    return c >= 0x30a1 && c <= 0x30fe;
}

/* What staff may type as kana: hiragana, katakana of either width. */
static bool
is_typed_kana(ucs4_t c)
{
    return (c >= 0x3041 && c <= 0x309f) || (c >= 0x30a0 && c <= 0x30ff) ||
        (c >= 0xff65 && c <= 0xff9f);
}

const char *
vrs_field_name_stored(const char *s, size_t n, enum vrs_name_kind kind)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + n;
    size_t parts = 0, cur = 0;
    bool bad = false, not_kana = false;

    while (p < end) {
        ucs4_t c;
        int len = u8_mbtouc(&c, p, (size_t)(end - p));

        p += len > 0 ? len : 1;
        if (c == IDEO_SPACE) {
            bad |= cur == 0;            /* leading, or two in a row */
            cur = 0;
            continue;
        }
        if (is_space(c))
            bad = true;
        else if (kind == VRS_KANA && !is_stored_kana(c))
            not_kana = true;
        if (cur++ == 0)
            parts++;
    }
    if (bad || cur == 0 || parts > VRS_NAME_PARTS_MAX)
        return kind == VRS_KANA ? R_KANA_STORED : R_NAME_STORED;
    if (not_kana)
        return R_KANA_CHARS;
    return vrs_field_searchable(s);
}

struct parts {
    const char *at[VRS_NAME_PARTS_MAX];
    size_t      len[VRS_NAME_PARTS_MAX];
    size_t      n;          /* parts seen; MAX + 1 means "too many" */
};

/* Split at runs of spaces; for kana, refuse what is not typed kana. */
static const char *
split_typed(const char *typed, enum vrs_name_kind kind, struct parts *pt)
{
    const uint8_t *p = (const uint8_t *)typed, *end = p + strlen(typed);
    bool in = false;

    pt->n = 0;
    while (p < end && pt->n <= VRS_NAME_PARTS_MAX) {
        ucs4_t c;
        int len = u8_mbtouc(&c, p, (size_t)(end - p));

        len = len > 0 ? len : 1;
        if (is_space(c)) {
            in = false;
        } else if (kind == VRS_KANA && !is_typed_kana(c)) {
            return R_KANA_TCHARS;
        } else if (!in && ++pt->n <= VRS_NAME_PARTS_MAX) {
            in = true;
            pt->at[pt->n - 1] = (const char *)p;
            pt->len[pt->n - 1] = (size_t)len;
        } else if (in) {
            pt->len[pt->n - 1] += (size_t)len;
        }
        p += len;
    }
    return pt->n >= 1 && pt->n <= VRS_NAME_PARTS_MAX ? NULL :
        kind == VRS_KANA ? R_KANA_TYPED : R_NAME_TYPED;
}

/* A kana part in its stored form: NFKC (half-width to full-width, voiced
 * marks composed) and hiragana -> katakana, i.e. text_normalize_name of
 * a part that has no spaces.  0, or -1 with a reason. */
static int
kana_part(const char *at, size_t len, char *out, size_t outsz, const char **why)
{
    char part[STORE_NAME_MAX];
    int rc = -1, err = ENAMETOOLONG;

    if (len < sizeof(part)) {
        memcpy(part, at, len);
        part[len] = '\0';
        rc = text_normalize_name(part, out, outsz);
        err = errno;
    }
    util_wipe(part, sizeof(part));
    if (rc != 0)
        *why = err == ENAMETOOLONG ? too_long(STORE_NAME_MAX - 1) : R_NORM_FAIL;
    return rc;
}

const char *
vrs_field_name_typed(const char *typed, enum vrs_name_kind kind, char out[STORE_NAME_MAX])
{
    struct parts pt;
    char norm[VRS_NAME_PARTS_MAX][TEXT_NAME_MAX + 1];
    const char *why;
    size_t o = 0;

    if ((why = vrs_check_text(typed)) != NULL || (why = split_typed(typed, kind, &pt)) != NULL)
        goto fail;
    for (size_t i = 0; kind == VRS_KANA && i < pt.n; i++) {
        if (kana_part(pt.at[i], pt.len[i], norm[i], sizeof(norm[i]), &why) != 0)
            goto fail;
        pt.at[i] = norm[i];
        pt.len[i] = strlen(norm[i]);
    }
    /* One U+3000 (3 bytes) between the parts, within the store's limit:
     * a name typed with ASCII spaces grows by two bytes per space. */
    for (size_t i = 0; i < pt.n; i++) {
        size_t sep = i > 0 ? 3 : 0;

        if (o + sep + pt.len[i] > STORE_NAME_MAX - 1) {
            why = too_long(STORE_NAME_MAX - 1);
            goto fail;
        }
        memcpy(out + o, "\xe3\x80\x80", sep);
        memcpy(out + o + sep, pt.at[i], pt.len[i]);
        o += sep + pt.len[i];
    }
    out[o] = '\0';
    /* The import's rule holds by construction; checking it keeps the
     * round trip (fields.h) true should the folding ever change. */
    why = vrs_field_name_stored(out, o, kind);
    if (why == R_KANA_CHARS)
        why = R_KANA_TCHARS;        /* e.g. a lone voiced mark ゛ */
fail:
    util_wipe(norm, sizeof(norm));
    if (why != NULL)
        util_wipe(out, STORE_NAME_MAX);
    return why;
}

/* ---- codes ---------------------------------------------------------------------------- */

/* Not starting with '-': every export neutralises a cell starting with
 * '-' as a formula ("'-1", text/csvcell.h), which the import would then
 * refuse, so such a number could not come back from the replica. */
const char *
vrs_field_code(const char *s, size_t n)
{
    bool ok = n >= 1 && n <= STORE_ADDRNO_MAX - 1 && s[0] != '-';

    for (size_t i = 0; ok && i < n; i++) {
        char ch = s[i];
        ok = (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= 'a' && ch <= 'z') || ch == '-';
    }
    return ok ? NULL : "must be 1 to 31 characters, each 0-9, A-Z, a-z or -, not starting with -";
}

static bool
digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

const char *
vrs_field_postcode(const char *s, size_t n)
{
    return n == 8 && digits(s, 3) && s[3] == '-' && digits(s + 4, 4) ? NULL
        : "must be 7 digits written NNN-NNNN";
}

const char *
vrs_field_sex(const char *s, size_t n)
{
    return n == 1 && (s[0] == '1' || s[0] == '2' || s[0] == '9') ? NULL
        : "must be 1 (male), 2 (female) or 9 (other or unknown)";
}

const char *
vrs_field_movement_type(const char *s)
{
    for (size_t i = 0; i < sizeof(movement_types) / sizeof(movement_types[0]); i++)
        if (strcmp(s, movement_types[i]) == 0)
            return NULL;
    return "must be one of 出生, 転入, 転居, 転出, 死亡, 職権記載, 職権消除, or empty";
}

/* ---- vouchers and vaccinations ------------------------------------------------------- */

_Static_assert(VRS_TICKET_VACCINATION == 1, "the ticket type's reason says 1");
_Static_assert(VRS_FIELD_DOSE_WRITTEN_MAX == 999, "vrs_field_dose takes 3 digits");
_Static_assert(STORE_LOT_MAX - 1 == 20, "the lot's reason says 20");

const char *
vrs_field_ticket_type(const char *s, size_t n)
{
    return n == 1 && s[0] == '0' + VRS_TICKET_VACCINATION ? NULL
        : "must be 1 (a vaccination voucher)";
}

const char *
vrs_field_date_past(const char *s, size_t n, int32_t today, int32_t *days)
{
    *days = 0;
    if (n == 0)
        return "is empty";
    if (vrs_date_parse(s, days) != 0)
        return "is not a calendar date written YYYY-MM-DD";
    if (*days > today) {
        *days = 0;
        return "is in the future";
    }
    return NULL;
}

const char *
vrs_field_lot(const char *s, size_t n)
{
    if (n == 0)
        return "is empty";
    /* vrs_field_code's form, with the lot's own length */
    if (n > STORE_LOT_MAX - 1 || vrs_field_code(s, n) != NULL)
        return "must be 1 to 20 characters, each 0-9, A-Z, a-z or -, not starting with -";
    return NULL;
}

const char *
vrs_field_dose(const char *s, size_t n, unsigned *dose)
{
    *dose = 0;
    if (n == 0)
        return "is empty";
    if (n > 3 || !digits(s, n) || (s[0] == '0' && n > 1))
        return "must be a whole number written in digits, without a leading zero";
    for (size_t i = 0; i < n; i++)
        *dose = *dose * 10 + (unsigned)(s[i] - '0');
    return NULL;
}

const char *
vrs_field_dose_range(const struct vrs_vaccine *v, unsigned dose)
{
    /* The test of vrs_rules_check, in the same words (test_vrs_fields
     * holds the two together for every catalogue row). */
    if (dose < 1 || dose > VRS_DOSE_MAX || (v != NULL && v->max_dose > 0 && dose > v->max_dose))
        return vrs_rule_message(VRS_RULE_DOSE_OUT_OF_RANGE, VRS_LANG_EN);
    return NULL;
}
