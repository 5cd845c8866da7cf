/*
 * mynumber.h - the 12-digit individual number (個人番号) format check.
 *
 * Weights 6,5,4,3,2,7,6,5,4,3,2 on the first 11 digits from the left;
 * r = sum mod 11; check digit = 0 if r <= 1 else 11 - r.  This module only
 * validates the format: it never stores, logs or prints a number.
 */
#ifndef MAMORI_MYNUMBER_H
#define MAMORI_MYNUMBER_H

#include <stdbool.h>

#define MYNUMBER_LEN 12

/* True if `s` is exactly 12 ASCII digits with a valid check digit (R2.2). */
bool mynumber_valid(const char *s);

#endif
