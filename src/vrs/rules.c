/*
 * rules.c - the checks a vaccination must pass before it is recorded
 * (R2.3, R2.5).  Dates are whole days since 1970-01-01; the calendar is
 * the proleptic Gregorian one (no time zone, no libc time functions, so
 * the result does not depend on TZ or locale).
 */
#include "vrs/rules.h"

#include <stdbool.h>
#include <string.h>

#define YEAR_MIN 1800
#define YEAR_MAX 9999

struct rule_msg {
    const char *code;
    const char *field;
    const char *en;
    const char *ja;
};

/* Index = enum vrs_rule.  Messages say what is wrong and never repeat a
 * value: they may end up in the API's error body and its logs. */
static const struct rule_msg rule_msgs[] = {
    [VRS_RULE_OK] = { "ok", NULL,
        "The vaccination can be recorded.",
        "この接種記録は登録できます。" },
    [VRS_RULE_BAD_CALL] = { "check_unavailable", NULL,
        "The vaccination could not be checked: some required information "
        "was not supplied.",
        "確認に必要な情報が不足しているため、接種記録を確認できません。" },
    [VRS_RULE_DATE_INVALID] = { "date_invalid", "date",
        "The vaccination date is not a valid calendar date (YYYY-MM-DD).",
        "接種日が正しい日付ではありません（YYYY-MM-DD）。" },
    [VRS_RULE_RESIDENT_INVALID] = { "resident_date_invalid", "birth_date",
        "A date recorded for the resident (birth, death or moving out) is "
        "not a valid calendar date.",
        "住民の生年月日・死亡日・転出日のいずれかが正しい日付ではありません。" },
    [VRS_RULE_DATE_IN_FUTURE] = { "date_in_future", "date",
        "The vaccination date is in the future.",
        "接種日が未来の日付です。" },
    [VRS_RULE_BEFORE_BIRTH] = { "date_before_birth", "date",
        "The vaccination date is before the resident's date of birth.",
        "接種日が生年月日より前です。" },
    [VRS_RULE_AFTER_DEATH] = { "date_after_death", "date",
        "The vaccination date is after the resident's date of death; a "
        "deceased resident cannot be vaccinated.",
        "接種日が死亡日より後です。死亡した方の接種は登録できません。" },
    [VRS_RULE_AFTER_MOVE_OUT] = { "date_after_move_out", "date",
        "The vaccination date is after the resident moved out; the "
        "municipality the resident moved to records it.",
        "接種日が転出日より後です。転出先の市区町村で登録してください。" },
    [VRS_RULE_UNKNOWN_VACCINE] = { "vaccine_unknown", "vaccine",
        "The vaccine is not in the vaccine catalogue.",
        "ワクチンがワクチン一覧に登録されていません。" },
    [VRS_RULE_DOSE_OUT_OF_RANGE] = { "dose_out_of_range", "dose",
        "The dose number is outside the doses this vaccine allows.",
        "接種回がこのワクチンで認められる範囲外です。" },
    [VRS_RULE_TOO_YOUNG] = { "below_minimum_age", "date",
        "On the vaccination date the resident has not reached the minimum "
        "age for this vaccine.",
        "接種日の時点で、このワクチンを接種できる月齢に達していません。" },
    [VRS_RULE_HISTORY_INVALID] = { "history_invalid", "history",
        "A dose already recorded for the resident has an invalid dose "
        "number or date; correct it first.",
        "登録済みの接種記録に正しくない接種回または接種日があります。先に修正してください。" },
    [VRS_RULE_DOSE_DUPLICATE] = { "dose_duplicate", "dose",
        "This dose number is already recorded for this vaccine series.",
        "この接種回はすでに登録されています。" },
    [VRS_RULE_DOSE_OUT_OF_ORDER] = { "dose_out_of_order", "dose",
        "The doses are out of order: the previous dose of this series must "
        "be recorded on an earlier date, and later doses on later dates.",
        "接種回の順序が正しくありません。前の回の接種がより前の日付で登録され、"
        "後の回の接種はより後の日付である必要があります。" },
    [VRS_RULE_INTERVAL_TOO_SHORT] = { "interval_too_short", "date",
        "The interval between this dose and the neighbouring dose of the "
        "series is shorter than the minimum for this vaccine.",
        "前後の接種との間隔が、このワクチンの最短間隔より短いです。" },
};
#define RULE_NMSGS (sizeof(rule_msgs) / sizeof(rule_msgs[0]))

static bool
is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
days_in_month(int y, int m)
{
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                   30, 31 };

    return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/* Days since 1970-01-01 of a valid y-m-d (H. Hinnant's days_from_civil). */
static int32_t
days_from_civil(int y, int m, int d)
{
    int era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + doe - 719468);
}

static int
date_fields(const char *s, int *y, int *m, int *d)
{
    if (s == NULL || strnlen(s, 11) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (size_t i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    }
    *y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 +
         (s[3] - '0');
    *m = (s[5] - '0') * 10 + (s[6] - '0');
    *d = (s[8] - '0') * 10 + (s[9] - '0');
    if (*y < YEAR_MIN || *y > YEAR_MAX || *m < 1 || *m > 12 || *d < 1 ||
        *d > days_in_month(*y, *m))
        return -1;
    return 0;
}

int
vrs_date_parse(const char *s, int32_t *days)
{
    int y, m, d;

    if (days == NULL || date_fields(s, &y, &m, &d) != 0)
        return -1;
    *days = days_from_civil(y, m, d);
    return 0;
}

void
vrs_date_format(int32_t days, char out[11])
{
    /* civil_from_days (H. Hinnant), the inverse of days_from_civil. */
    int64_t z = (int64_t)days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;

    unsigned yy = (unsigned)(y + (m <= 2)) % 10000, mm = (unsigned)m % 100,
             dd = (unsigned)d % 100;

    /* Years 1800-9999 have 4 digits; the modulos only keep a caller's
     * out-of-range value from writing past out. */
    out[0] = (char)('0' + yy / 1000);
    out[1] = (char)('0' + yy / 100 % 10);
    out[2] = (char)('0' + yy / 10 % 10);
    out[3] = (char)('0' + yy % 10);
    out[4] = '-';
    out[5] = (char)('0' + mm / 10);
    out[6] = (char)('0' + mm % 10);
    out[7] = '-';
    out[8] = (char)('0' + dd / 10);
    out[9] = (char)('0' + dd % 10);
    out[10] = '\0';
}

/*
 * The first day on which someone born on `birth` is `months` months old.
 * Age counts from the day of birth (年齢計算ニ関スル法律) and a period of
 * months ends the day before the corresponding day, or at the end of the
 * month where there is none (民法 143条): born 4/10, two months old from
 * 6/10; born 1/31, one month old from 3/1.
 */
static int32_t
age_reached(const char *birth, int months)
{
    int y, m, d, idx;

    if (date_fields(birth, &y, &m, &d) != 0)
        return INT32_MAX;           /* cannot happen: checked before */
    idx = (m - 1) + months;
    y += idx / 12;
    m = idx % 12 + 1;
    /* No corresponding day: the first of the next month.  December has
     * 31 days, so this never runs past the year. */
    if (d > days_in_month(y, m)) {
        d = 1;
        m++;
    }
    return days_from_civil(y, m, d);
}

/* An optional date: NULL or "" means none (*has = false). */
static int
optional_date(const char *s, bool *has, int32_t *days)
{
    *has = s != NULL && s[0] != '\0';
    return *has ? vrs_date_parse(s, days) : 0;
}

static enum vrs_rule
verdict(struct vrs_verdict *out, enum vrs_rule rule, const char *field)
{
    if (out != NULL) {
        out->rule = rule;
        out->field = field != NULL ? field : vrs_rule_field(rule);
    }
    return rule;
}

/* What the recorded doses of one series say about the proposed one. */
struct series_view {
    bool    duplicate;      /* a dose with the same number */
    bool    have_prev;      /* dose n-1 */
    int32_t prev_day;       /* its latest date if several were recorded */
    bool    later_too_early;/* a dose > n on or before the proposed date */
    bool    next_too_close; /* a dose n+1 within its own vaccine's minimum */
};

/* Recorded doses must themselves be sane before they can vouch for the
 * order of a new one. */
static bool
history_ok(const struct vrs_dose *history, size_t n)
{
    int32_t day;

    for (size_t i = 0; i < n; i++) {
        if (history[i].dose < 1 || history[i].dose > VRS_DOSE_MAX ||
            vrs_date_parse(history[i].date, &day) != 0)
            return false;
    }
    return true;
}

/* Fold one recorded dose of the same series into the view. */
static void
view_dose(struct series_view *sv, const struct vrs_vaccine *hv, unsigned hd,
          int32_t hday, unsigned dose, int32_t day)
{
    if (hd == dose)
        sv->duplicate = true;
    if (hd + 1 == dose && (!sv->have_prev || hday > sv->prev_day)) {
        sv->have_prev = true;
        sv->prev_day = hday;
    }
    if (hd > dose && hday <= day)
        sv->later_too_early = true;
    /* The later dose's own minimum governs the gap before it. */
    if (hd == dose + 1 && hv->min_interval_days > 0 &&
        hday - day <= (int32_t)hv->min_interval_days)
        sv->next_too_close = true;
}

/* Series checks (R2.3): numbering, order and interval.  Entries of other
 * series, and codes the catalogue does not know, say nothing here. */
static enum vrs_rule
check_series(const struct vrs_catalogue *cat, const struct vrs_vaccine *v,
             const struct vrs_dose *p, int32_t day,
             const struct vrs_dose *history, size_t n)
{
    struct series_view sv;

    if (!history_ok(history, n))
        return VRS_RULE_HISTORY_INVALID;
    memset(&sv, 0, sizeof(sv));
    for (size_t i = 0; i < n; i++) {
        const struct vrs_vaccine *hv = vrs_catalogue_lookup(cat, history[i].code);
        int32_t hday = 0;

        if (hv == NULL || strcmp(hv->series, v->series) != 0 ||
            vrs_date_parse(history[i].date, &hday) != 0)
            continue;
        view_dose(&sv, hv, history[i].dose, hday, p->dose, day);
    }
    if (sv.duplicate)
        return VRS_RULE_DOSE_DUPLICATE;
    if ((p->dose > 1 && (!sv.have_prev || sv.prev_day >= day)) ||
        sv.later_too_early)
        return VRS_RULE_DOSE_OUT_OF_ORDER;
    /* 「N日以上の間隔をおく」: N whole days lie between the two dates. */
    if ((p->dose > 1 && v->min_interval_days > 0 &&
         day - sv.prev_day <= (int32_t)v->min_interval_days) ||
        sv.next_too_close)
        return VRS_RULE_INTERVAL_TOO_SHORT;
    return VRS_RULE_OK;
}

/* Resident facts (R2.5): dates exist, and the vaccination falls within
 * the resident's life and residence here. */
static enum vrs_rule
check_resident(const struct vrs_resident_facts *r, int32_t day,
               int32_t today, const char **field)
{
    int32_t birth, death = 0, moved = 0;
    bool dead, gone;

    *field = "birth_date";
    if (vrs_date_parse(r->birth_date, &birth) != 0)
        return VRS_RULE_RESIDENT_INVALID;
    *field = "deceased_date";
    if (optional_date(r->deceased_date, &dead, &death) != 0)
        return VRS_RULE_RESIDENT_INVALID;
    *field = "moved_out_date";
    if (optional_date(r->moved_out_date, &gone, &moved) != 0)
        return VRS_RULE_RESIDENT_INVALID;
    *field = NULL;
    if (day > today)
        return VRS_RULE_DATE_IN_FUTURE;
    if (day < birth)
        return VRS_RULE_BEFORE_BIRTH;
    /* The day of death itself is allowed: a dose may precede death on
     * the same day. */
    if (dead && day > death)
        return VRS_RULE_AFTER_DEATH;
    if (gone && day > moved)
        return VRS_RULE_AFTER_MOVE_OUT;
    return VRS_RULE_OK;
}

enum vrs_rule
vrs_rules_check(const struct vrs_catalogue *cat,
                const struct vrs_dose *proposed,
                const struct vrs_resident_facts *resident,
                const struct vrs_dose *history, size_t n,
                const char *today, struct vrs_verdict *out)
{
    const struct vrs_vaccine *v;
    const char *field = NULL;
    int32_t day, now;
    enum vrs_rule rule;

    if (cat == NULL || proposed == NULL || resident == NULL ||
        (history == NULL && n > 0) || vrs_date_parse(today, &now) != 0)
        return verdict(out, VRS_RULE_BAD_CALL, NULL);
    if (vrs_date_parse(proposed->date, &day) != 0)
        return verdict(out, VRS_RULE_DATE_INVALID, NULL);
    rule = check_resident(resident, day, now, &field);
    if (rule != VRS_RULE_OK)
        return verdict(out, rule, field);
    v = vrs_catalogue_lookup(cat, proposed->code);
    if (v == NULL)
        return verdict(out, VRS_RULE_UNKNOWN_VACCINE, NULL);
    if (proposed->dose < 1 || proposed->dose > VRS_DOSE_MAX ||
        (v->max_dose > 0 && proposed->dose > v->max_dose))
        return verdict(out, VRS_RULE_DOSE_OUT_OF_RANGE, NULL);
    if (v->min_age_months >= 0 &&
        day < age_reached(resident->birth_date, v->min_age_months))
        return verdict(out, VRS_RULE_TOO_YOUNG, NULL);
    return verdict(out, check_series(cat, v, proposed, day, history, n), NULL);
}

const char *
vrs_rule_code(enum vrs_rule rule)
{
    if ((size_t)rule >= RULE_NMSGS)
        return "invalid";
    return rule_msgs[rule].code;
}

const char *
vrs_rule_field(enum vrs_rule rule)
{
    if ((size_t)rule >= RULE_NMSGS)
        return NULL;
    return rule_msgs[rule].field;
}

const char *
vrs_rule_message(enum vrs_rule rule, enum vrs_lang lang)
{
    if ((size_t)rule >= RULE_NMSGS)
        rule = VRS_RULE_BAD_CALL;
    return lang == VRS_LANG_JA ? rule_msgs[rule].ja : rule_msgs[rule].en;
}
