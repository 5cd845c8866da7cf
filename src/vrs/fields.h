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
 */
#ifndef MAMORI_VRS_FIELDS_H
#define MAMORI_VRS_FIELDS_H

#include <stddef.h>

#include "common/util.h"
#include "store/store.h"

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

#endif
