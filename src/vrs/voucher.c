/*
 * voucher.c - parse the 18-digit voucher line and check voucher numbers
 * (R2.4).  Layout and sources: voucher.h and docs/records.md.
 *
 * Checks run from the whole to the parts (length, then characters, then
 * each field left to right), so the message names the first thing a
 * person reading the voucher would have to look at.
 */
#include "vrs/voucher.h"

#include <string.h>

#include "ref/lgcode.h"

/* Offsets into the line. */
#define OFF_TICKET 0
#define OFF_DOSE   1
#define OFF_LGCODE 2
#define OFF_NUMBER (OFF_LGCODE + LGCODE_LEN)

_Static_assert(OFF_NUMBER + VRS_VOUCHER_NUMBER_LEN == VRS_VOUCHER_LINE_LEN,
               "the voucher line is 1 + 1 + 6 + 10 digits");

struct voucher_msg {
    const char *code;
    const char *line_en, *line_ja;      /* for the 18-digit line */
    const char *num_en, *num_ja;        /* for a voucher number alone */
};

/* Index = enum vrs_voucher_status. */
static const struct voucher_msg voucher_msgs[] = {
    [VRS_VOUCHER_OK] = { "ok", "The voucher line is valid.",
        "接種券の番号は正しい形式です。",
        "The voucher number is valid.", "券番号は正しい形式です。" },
    [VRS_VOUCHER_MISSING] = { "voucher_missing",
        "The voucher line is missing.", "接種券の番号が入力されていません。",
        "The voucher number is missing.", "券番号が入力されていません。" },
    [VRS_VOUCHER_LENGTH] = { "voucher_length",
        "The voucher line must be exactly 18 digits.",
        "接種券の番号は18桁で入力してください。",
        "The voucher number must be exactly 10 digits.",
        "券番号は10桁で入力してください。" },
    [VRS_VOUCHER_NOT_DIGITS] = { "voucher_not_digits",
        "The voucher line may contain only the digits 0-9 (half-width).",
        "接種券の番号は半角数字のみで入力してください。",
        "The voucher number may contain only the digits 0-9 (half-width).",
        "券番号は半角数字のみで入力してください。" },
    [VRS_VOUCHER_TICKET_TYPE] = { "voucher_ticket_type",
        "The ticket type (the 1st digit) is not a vaccination voucher.",
        "券種（1桁目）が接種券を示していません。",
        NULL, NULL },
    [VRS_VOUCHER_DOSE] = { "voucher_dose",
        "The dose (the 2nd digit) must be 1 to 9.",
        "接種回数（2桁目）は1から9で入力してください。",
        NULL, NULL },
    [VRS_VOUCHER_LGCODE] = { "voucher_municipality_code",
        "The municipality code (digits 3-8) is not valid: a wrong check "
        "digit, or no such prefecture.",
        "市町村コード（3〜8桁目）が正しくありません（チェックディジットまたは都道府県コードの誤り）。",
        NULL, NULL },
};
#define VOUCHER_NMSGS (sizeof(voucher_msgs) / sizeof(voucher_msgs[0]))

static bool
all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* JIS X 0401: prefectures are 01..47.  The check digit alone lets
 * "000001" through (lgcode.h uses it for the national scope), and a
 * voucher is always issued by a municipality. */
static bool
prefecture_ok(const char *lgcode)
{
    int pref = (lgcode[0] - '0') * 10 + (lgcode[1] - '0');

    return pref >= 1 && pref <= 47;
}

/* Length first, then characters: shared by the line and the number. */
static enum vrs_voucher_status
check_digits(const char *s, size_t want)
{
    size_t n;

    if (s == NULL || s[0] == '\0')
        return VRS_VOUCHER_MISSING;
    /* Bounded: never reads more than want + 1 bytes of a long input. */
    n = strnlen(s, want + 1);
    if (n != want)
        return VRS_VOUCHER_LENGTH;
    if (!all_digits(s, n))
        return VRS_VOUCHER_NOT_DIGITS;
    return VRS_VOUCHER_OK;
}

enum vrs_voucher_status
vrs_voucher_parse(const char *line, struct vrs_voucher *out)
{
    struct vrs_voucher v;
    enum vrs_voucher_status st;

    memset(&v, 0, sizeof(v));
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    st = check_digits(line, VRS_VOUCHER_LINE_LEN);
    if (st != VRS_VOUCHER_OK)
        return st;
    v.ticket_type = (unsigned)(line[OFF_TICKET] - '0');
    if (v.ticket_type != VRS_TICKET_VACCINATION)
        return VRS_VOUCHER_TICKET_TYPE;
    v.dose = (unsigned)(line[OFF_DOSE] - '0');
    if (v.dose == 0)
        return VRS_VOUCHER_DOSE;
    memcpy(v.lgcode, line + OFF_LGCODE, LGCODE_LEN);
    v.lgcode[LGCODE_LEN] = '\0';
    if (!lgcode_valid(v.lgcode) || !prefecture_ok(v.lgcode))
        return VRS_VOUCHER_LGCODE;
    memcpy(v.number, line + OFF_NUMBER, VRS_VOUCHER_NUMBER_LEN);
    v.number[VRS_VOUCHER_NUMBER_LEN] = '\0';
    if (out != NULL)
        *out = v;
    return VRS_VOUCHER_OK;
}

enum vrs_voucher_status
vrs_voucher_number_check(const char *number)
{
    return check_digits(number, VRS_VOUCHER_NUMBER_LEN);
}

const char *
vrs_voucher_status_code(enum vrs_voucher_status st)
{
    if ((size_t)st >= VOUCHER_NMSGS)
        return "voucher_invalid";
    return voucher_msgs[st].code;
}

const char *
vrs_voucher_message(enum vrs_voucher_status st, bool number_only,
                    enum vrs_lang lang)
{
    const struct voucher_msg *m;
    const char *s;

    if ((size_t)st >= VOUCHER_NMSGS)
        return lang == VRS_LANG_JA ? "接種券の番号が正しくありません。"
                                   : "The voucher line is not valid.";
    m = &voucher_msgs[st];
    s = number_only ? (lang == VRS_LANG_JA ? m->num_ja : m->num_en)
                    : (lang == VRS_LANG_JA ? m->line_ja : m->line_en);
    /* A number alone has no ticket type, dose or municipality part. */
    if (s == NULL)
        s = lang == VRS_LANG_JA ? m->line_ja : m->line_en;
    return s;
}
