/*
 * mynumber.c - the 12-digit individual number (個人番号) format check.
 *
 * Pure: no allocation, no global state, nothing logged.  The argument is
 * a number in clear, so it is never copied anywhere (R2.2).
 */
#include "ref/mynumber.h"

#include <stddef.h>

/* Weights of the first 11 digits, left to right (総務省令第85号 第5条). */
static const unsigned mynumber_weights[MYNUMBER_LEN - 1] = {
    6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2
};

/*
 * R2.2: exactly 12 ASCII digits and a valid check digit; anything else is
 * refused.  The digit test is an explicit range check, not isdigit(), so
 * the locale cannot widen it, and any byte of a multi-byte character
 * (full-width digits are U+FF10..U+FF19) fails it.  The loop stops at the
 * first non-digit, so it never reads past a shorter string's terminator.
 */
bool
mynumber_valid(const char *s)
{
    unsigned sum = 0, r, check;

    if (s == NULL)
        return false;
    for (size_t i = 0; i < MYNUMBER_LEN; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    if (s[MYNUMBER_LEN] != '\0')
        return false;

    for (size_t i = 0; i < MYNUMBER_LEN - 1; i++)
        sum += (unsigned)(s[i] - '0') * mynumber_weights[i];
    r = sum % 11;
    check = r <= 1 ? 0 : 11 - r;
    return (unsigned)(s[MYNUMBER_LEN - 1] - '0') == check;
}
