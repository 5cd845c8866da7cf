/*
 * lgcode.h - local government codes (全国地方公共団体コード).
 *
 * A code is 6 ASCII digits: 5 digits and a check digit (weights 6,5,4,3,2;
 * check = (11 - sum mod 11) mod 10).  The table of municipalities shipped
 * in data/municipalities/ maps a code to its name, reading and kind.
 */
#ifndef MAMORI_LGCODE_H
#define MAMORI_LGCODE_H

#include <stdbool.h>
#include <stddef.h>

#define LGCODE_LEN 6

/* True if `s` is exactly 6 ASCII digits whose last is the right check digit. */
bool lgcode_valid(const char *s);

struct lgcode_entry {
    char code[LGCODE_LEN + 1];
    char parent[LGCODE_LEN + 1];   /* "" for prefectures */
    const char *pref_name;         /* e.g. 北海道 */
    const char *name;              /* e.g. 札幌市中央区 */
    const char *name_kana;         /* hiragana */
    const char *kind;              /* prefecture | designated_city | ward | city | town | village | special_ward */
};

struct lgcode_table;

/* Load municipalities_lgcode.csv (strict CSV via libcsv; every row's code
 * must pass the check digit).  On failure returns -1 and writes a plain
 * sentence with the line number into err.  The table is immutable after
 * loading and safe to share between threads; free with lgcode_table_free. */
int lgcode_table_load(const char *csv_path, struct lgcode_table **out,
                      char *err, size_t errlen) __attribute__((warn_unused_result));

/* Find a code; NULL if absent.  The entry lives as long as the table. */
const struct lgcode_entry *lgcode_lookup(const struct lgcode_table *t,
                                         const char *code);

size_t lgcode_count(const struct lgcode_table *t);

/*
 * The national scope: the tenant of platform operators and national
 * viewers, who belong to no local government (docs/access.md).  No
 * prefecture has the prefix 00, and its check digit is right, so the
 * code passes every tenant-id check without meaning a place.
 */
#define LGCODE_NATIONAL "000001"

enum lgcode_scope {
    LGCODE_SCOPE_UNKNOWN = 0,    /* not in the table, not national */
    LGCODE_SCOPE_MUNICIPALITY,   /* city, town, village, ward */
    LGCODE_SCOPE_PREFECTURE,
    LGCODE_SCOPE_NATIONAL,
};

/* What kind of tenant `code` can be. */
enum lgcode_scope lgcode_scope(const struct lgcode_table *t, const char *code);

/* "municipality", "prefecture", "national" or "unknown". */
const char *lgcode_scope_name(enum lgcode_scope s);

void lgcode_table_free(struct lgcode_table *t);

#endif
