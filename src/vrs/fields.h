/*
 * fields.h - the checks of a resident's fields (R2.1), one set for the
 * two ways a resident comes in: the staff API (vrs/api.c) and the CSV
 * import from the existing systems (vrs/import.c, R2.6).
 *
 * Every check returns NULL when the value is fine, or a reason: static
 * text in plain words, never the value, written to follow the field's
 * name ("The field name <reason>." in an API answer, "line 4, name:
 * <reason>" in an import report).  No check keeps state or allocates
 * beyond the call, so checks may run in several threads.  Values are
 * valid UTF-8 (the router and csvin have checked); a value that held
 * personal data is wiped from every scratch buffer before a check
 * returns.
 *
 * Where the API and the import differ, on purpose (docs/records.md,
 * docs/import-export.md "What the API accepts and what the import
 * accepts"):
 *
 *  - Name and kana.  The import reads the 住基 source layout, so a value
 *    must already be in the STORED FORM: 1 to VRS_NAME_PARTS_MAX parts
 *    ("family<U+3000>given"; one part for a person with a single name,
 *    more for a foreign resident's alphabet name with middle names),
 *    exactly one ideographic space between parts and no other space, and
 *    kana in full-width katakana (vrs_field_name_stored).  Staff type
 *    names by hand, so the API takes any space (or run of spaces) between
 *    the parts and kana in katakana of either width or hiragana, and
 *    stores the same stored form (vrs_field_name_typed).  Whatever the API stores is
 *    therefore written by the replica (vrs/export.h) in the import's
 *    layout and accepted by the import again.
 *  - Search (R2.8) takes a name in any form that leaves something once
 *    normalised (vrs_field_searchable): one part or two, any width.
 *
 * Everything else is the same on both sides: no control characters in
 * any text, the store's byte limits, a name or kana that leaves letters
 * once normalised (the 4-item search key, R2.8), the code, postcode, sex
 * and movement-type forms.
 *
 * Vouchers (R2.4) and vaccinations (R2.3) follow the same idea: one
 * check here, called by both sides, so what the API stores is what the
 * import takes back from the replica.  Where the two still differ, on
 * purpose:
 *
 *  - Defaults.  JSON may leave out a voucher's ticket_type (1) and
 *    issued_date (today); the API fills them in before storing.  A CSV
 *    row has every column, so the import refuses an empty one: an empty
 *    issue date in an existing system's file is a broken export, not a
 *    voucher issued today.  Stored, both are always present.
 *  - The resident.  The API names it by row id (the route), the import by
 *    address number (a column): each side's key for a resident.
 *  - The vaccine code.  The API checks its form at the edge (400) and the
 *    rules refuse a code the catalogue does not hold (422
 *    vaccine_unknown); the import refuses both on the column.  The same
 *    codes pass.  The manufacturer and the product are the catalogue's
 *    row for the code (docs/records.md), never a field of their own.
 *  - The vaccination date and the dose as the rules see them (future,
 *    before birth, after death or moving out, the vaccine's doses, the
 *    series' order and intervals) are vrs_rules_check on both sides; the
 *    API answers 422 with the rule's code, the import reports the rule's
 *    sentence on the column.
 */
#ifndef MAMORI_VRS_FIELDS_H
#define MAMORI_VRS_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "store/store.h"
#include "vrs/catalogue.h"

/* Parts of a name: family name, given name, middle names. */
#define VRS_NAME_PARTS_MAX 8

enum vrs_name_kind {
    VRS_NAME = 0,       /* 氏名: any letters */
    VRS_KANA            /* フリガナ: kana only */
};

/*
 * Text of n bytes (s NUL-terminated at n): at most `max` bytes (the
 * store's limit, terminator excluded) and no control character: C0 (line
 * breaks and tabs included), DEL, or C1 (U+0080..U+009F).  Every
 * consumer of these values (the ledger, VRS, printed vouchers, the
 * replica) is one line per value.  An empty value passes: whether a
 * field is required is the caller's rule.
 */
const char *vrs_field_text(const char *s, size_t n, size_t max) MAMORI_WARN_UNUSED;

/* vrs_field_text without the length, as a route-table validator (the
 * router checks lengths itself). */
const char *vrs_check_text(const char *v) MAMORI_WARN_UNUSED;

/*
 * Something is left once the value is normalised for search
 * (text_normalize_name: NFKC, kana folded, every kind of space removed):
 * so the value is not blank, and a name has a 4-item search key (R2.8).
 * Refuses a value of U+2003 spaces as it refuses one of ASCII spaces.
 */
const char *vrs_field_searchable(const char *s) MAMORI_WARN_UNUSED;

/*
 * The import's rule: s (n bytes) is already in the stored form --
 * 1 to VRS_NAME_PARTS_MAX parts joined by one U+3000 each, no part
 * empty, no other space character (ASCII, no-break, U+2000..U+200A ...),
 * kana parts in full-width
 * katakana U+30A1..U+30FE (ァ..ヾ, ー, ・), and searchable.  Run
 * vrs_field_text first (controls, length).
 */
const char *vrs_field_name_stored(const char *s, size_t n, enum vrs_name_kind kind)
    MAMORI_WARN_UNUSED;

/*
 * The API's rule: `typed` is what staff typed -- 1 to VRS_NAME_PARTS_MAX
 * parts separated by any run of spaces (leading and trailing spaces dropped); for kana,
 * katakana of either width, hiragana, the prolonged sound mark and the
 * middle dot.  On success `out` holds the stored form (parts joined by
 * one U+3000; kana folded to full-width katakana by NFKC and
 * hiragana -> katakana), which vrs_field_name_stored accepts.  On
 * failure `out` is wiped.
 */
const char *vrs_field_name_typed(const char *typed, enum vrs_name_kind kind,
                                 char out[STORE_NAME_MAX]) MAMORI_WARN_UNUSED;

/* 1 to 31 of 0-9 A-Z a-z '-', not starting with '-' (address and
 * household numbers). */
const char *vrs_field_code(const char *s, size_t n) MAMORI_WARN_UNUSED;

/* A postcode "NNN-NNNN" (not empty: an empty postcode is "unknown"). */
const char *vrs_field_postcode(const char *s, size_t n) MAMORI_WARN_UNUSED;

/* Sex: "1" male, "2" female, "9" other or unknown. */
const char *vrs_field_sex(const char *s, size_t n) MAMORI_WARN_UNUSED;

/* One of the movement types 出生, 転入, 転居, 転出, 死亡, 職権記載,
 * 職権消除 (not empty: an empty type is "none"). */
const char *vrs_field_movement_type(const char *s) MAMORI_WARN_UNUSED;

/* ---- vouchers and vaccinations (R2.3, R2.4) ----------------------------------------- */

/*
 * A ticket type (券種) written as a CSV cell: exactly "1", the
 * vaccination voucher (VRS_TICKET_VACCINATION, vrs/voucher.h).  The API
 * takes the same single value as a JSON integer (the route's range is
 * VRS_TICKET_VACCINATION..VRS_TICKET_VACCINATION).  Every other digit is
 * refused on both sides: the site interface reads a voucher only through
 * its 18-digit line (vrs_voucher_parse), which refuses any other type, so
 * a voucher stored with another type could never be used.
 */
const char *vrs_field_ticket_type(const char *s, size_t n) MAMORI_WARN_UNUSED;

/*
 * A date that is a calendar date "YYYY-MM-DD" (vrs_date_parse) and not
 * after `today` (days since 1970-01-01, the municipality's day): a
 * voucher's issue date.  An empty value is refused; *days is the date
 * (0 on refusal).
 */
const char *vrs_field_date_past(const char *s, size_t n, int32_t today, int32_t *days)
    MAMORI_WARN_UNUSED;

/*
 * A lot number (ロット番号): 1 to STORE_LOT_MAX - 1 (20) of 0-9 A-Z a-z
 * '-', not starting with '-' (as vrs_field_code, and for its reason: the
 * replica would write it "'-...", which no check takes back).  Required
 * on both sides: R2.3 names it, and VRS records carry it.
 */
const char *vrs_field_lot(const char *s, size_t n) MAMORI_WARN_UNUSED;

/* The largest dose a request may write: 3 digits.  The API's JSON
 * integer range is 0..VRS_FIELD_DOSE_WRITTEN_MAX, the import's cell 1 to
 * 3 digits; whether the number is a dose is vrs_field_dose_range's. */
#define VRS_FIELD_DOSE_WRITTEN_MAX 999

/*
 * A dose written as a CSV cell: 1 to 3 ASCII digits, no sign, no leading
 * zero ("0" itself is a number, refused by the range).  *dose is the
 * number (0 on refusal).
 */
const char *vrs_field_dose(const char *s, size_t n, unsigned *dose) MAMORI_WARN_UNUSED;

/*
 * The dose number's range (接種回, R2.3): 1..VRS_DOSE_MAX (vrs/rules.h)
 * and, when `v` is not NULL and has one, the vaccine's max_dose.  The
 * test vrs_rules_check makes (VRS_RULE_DOSE_OUT_OF_RANGE), with its
 * sentence as the reason, so the import reports what the API answers.
 */
const char *vrs_field_dose_range(const struct vrs_vaccine *v, unsigned dose) MAMORI_WARN_UNUSED;

/* A vaccination's site (会場), clinic (医療機関) and doctor (医師) are
 * vrs_field_text, optional on both sides: a dose given at a clinic
 * (個別接種) has no 会場, and the VRS items of R2.3 hold none.  (A
 * site's tablet records its device name as the site, vrs/site.h.) */

#endif
