/*
 * voucher.h - the vaccination voucher (接種券) number line and voucher
 * numbers (R2.4).
 *
 * The line printed on a voucher (its OCR line, also carried by the VRS
 * two-dimensional code) is 18 ASCII digits:
 *
 *   digit  1      ticket type (券種)
 *   digit  2      dose (回数), 1..9
 *   digits 3-8    municipality code (市町村コード, JIS X 0402 with its
 *                 check digit)
 *   digits 9-18   voucher number (券番号), 10 digits, no check digit
 *
 * as the 厚生労働省 手引き for COVID-19 vaccination lays it out (sources
 * and the ticket types accepted: docs/records.md "Voucher numbers").
 * Input is taken as it is: full-width digits, spaces or hyphens are
 * refused, not repaired (normalise first, src/text/normalize.h).
 * Refusals never repeat the value.
 */
#ifndef MAMORI_VRS_VOUCHER_H
#define MAMORI_VRS_VOUCHER_H

#include <stdbool.h>

#include "vrs/catalogue.h"      /* enum vrs_lang */

#define VRS_VOUCHER_LINE_LEN   18
#define VRS_VOUCHER_NUMBER_LEN 10

/* 券種 1: the vaccination voucher.  The only type accepted (see
 * docs/records.md for why). */
#define VRS_TICKET_VACCINATION 1

struct vrs_voucher {
    unsigned ticket_type;                       /* VRS_TICKET_* */
    unsigned dose;                              /* 1..9 */
    char     lgcode[6 + 1];                     /* e.g. "131016" */
    char     number[VRS_VOUCHER_NUMBER_LEN + 1]; /* "0000000001" */
};

enum vrs_voucher_status {
    VRS_VOUCHER_OK = 0,
    VRS_VOUCHER_MISSING,        /* NULL or empty input */
    VRS_VOUCHER_LENGTH,         /* line not 18 / number not 10 characters */
    VRS_VOUCHER_NOT_DIGITS,     /* a character other than 0-9 */
    VRS_VOUCHER_TICKET_TYPE,    /* unknown ticket type (digit 1) */
    VRS_VOUCHER_DOSE,           /* dose digit 0 */
    VRS_VOUCHER_LGCODE          /* municipality code: check digit wrong,
                                   or prefecture not 01..47 */
};

/* Parse an 18-digit voucher line.  On VRS_VOUCHER_OK *out (if not NULL)
 * is filled; on any refusal it is zeroed. */
enum vrs_voucher_status vrs_voucher_parse(const char *line,
                                          struct vrs_voucher *out)
    __attribute__((warn_unused_result));

/* Check a voucher number on its own (10 ASCII digits), as the site
 * interface and imports receive it. */
enum vrs_voucher_status vrs_voucher_number_check(const char *number)
    __attribute__((warn_unused_result));

/* Stable machine code of a status, e.g. "voucher_check_digit". */
const char *vrs_voucher_status_code(enum vrs_voucher_status st);

/* A plain sentence naming the part that is wrong, in English or Japanese.
 * `number_only` selects the wording for vrs_voucher_number_check. */
const char *vrs_voucher_message(enum vrs_voucher_status st, bool number_only,
                                enum vrs_lang lang);

#endif
