/*
 * rules.h - may this vaccination be recorded?  (R2.3, R2.5)
 *
 * Pure decision logic: the caller hands in the proposed dose, the
 * resident's dates and the doses already recorded, plus "today", and gets
 * back an accept or one refusal: a stable code, the field it concerns and
 * a plain sentence in English or Japanese.  No storage, no clock, no
 * logging; nothing here reads personal data beyond what it is given, and
 * no message repeats a value.  The rules, their order and their sources:
 * docs/records.md "Validation rules".
 */
#ifndef MAMORI_VRS_RULES_H
#define MAMORI_VRS_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "vrs/catalogue.h"

/* Dose numbers run 1..VRS_DOSE_MAX (接種回 1..7 and beyond, R2.3); a
 * vaccine's own max_dose narrows that. */
#define VRS_DOSE_MAX 99

/* One dose: proposed or already recorded. */
struct vrs_dose {
    const char *code;       /* catalogue code */
    unsigned    dose;       /* 1-based number within the vaccine's series */
    const char *date;       /* "YYYY-MM-DD" */
};

struct vrs_resident_facts {
    const char *birth_date;     /* "YYYY-MM-DD", required */
    const char *deceased_date;  /* NULL or "": not deceased (R2.5) */
    const char *moved_out_date; /* NULL or "": not moved out (R2.5) */
};

/* The first rule a proposal breaks, in the order they are checked. */
enum vrs_rule {
    VRS_RULE_OK = 0,
    VRS_RULE_BAD_CALL,          /* missing argument or invalid "today" */
    VRS_RULE_DATE_INVALID,      /* not a calendar date, e.g. 2023-02-29 */
    VRS_RULE_RESIDENT_INVALID,  /* a resident date is not a calendar date */
    VRS_RULE_DATE_IN_FUTURE,
    VRS_RULE_BEFORE_BIRTH,
    VRS_RULE_AFTER_DEATH,       /* R2.5 */
    VRS_RULE_AFTER_MOVE_OUT,    /* R2.5 */
    VRS_RULE_UNKNOWN_VACCINE,
    VRS_RULE_DOSE_OUT_OF_RANGE,
    VRS_RULE_TOO_YOUNG,
    VRS_RULE_HISTORY_INVALID,   /* a recorded dose has a bad number or date */
    VRS_RULE_DOSE_DUPLICATE,
    VRS_RULE_DOSE_OUT_OF_ORDER,
    VRS_RULE_INTERVAL_TOO_SHORT
};

struct vrs_verdict {
    enum vrs_rule rule;
    const char   *field;        /* static string, NULL for BAD_CALL/OK */
};

/*
 * Decide whether `proposed` may be recorded for a resident with the given
 * facts and `history` (n entries, any order; entries whose code is not in
 * the catalogue are ignored).  `today` is "YYYY-MM-DD" in the
 * municipality's time zone (JST): the caller owns the clock.  Returns the
 * rule (also in out->rule if out is not NULL).
 */
enum vrs_rule vrs_rules_check(const struct vrs_catalogue *cat,
                              const struct vrs_dose *proposed,
                              const struct vrs_resident_facts *resident,
                              const struct vrs_dose *history, size_t n,
                              const char *today, struct vrs_verdict *out)
    __attribute__((warn_unused_result));

/* Stable machine code, e.g. "date_after_death". */
const char *vrs_rule_code(enum vrs_rule rule);

/* The field a rule concerns by default ("date", "vaccine", "dose", ...). */
const char *vrs_rule_field(enum vrs_rule rule);

/* A plain sentence for staff, in English or Japanese. */
const char *vrs_rule_message(enum vrs_rule rule, enum vrs_lang lang);

/* Parse a strict "YYYY-MM-DD" calendar date (years 1800-9999) into days
 * since 1970-01-01.  Returns 0, or -1 for anything else. */
int vrs_date_parse(const char *s, int32_t *days)
    __attribute__((warn_unused_result));

/* The inverse: days since 1970-01-01 of a year 1800-9999 (what
 * vrs_date_parse gives) written "YYYY-MM-DD" into out. */
void vrs_date_format(int32_t days, char out[11]);

#endif
