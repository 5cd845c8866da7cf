/*
 * catalogue.h - the vaccine catalogue (R2.3): every vaccine a vaccination
 * record may name, with the few scheduling facts the rules check.
 *
 * The shipped table is data/vaccines/catalogue.csv (columns, sources and
 * the meaning of an empty cell: data/vaccines/README.md and
 * docs/records.md).  Codes are stable identifiers: "covid-comirnaty",
 * "a-hib", "b-influenza" ...  The module has no storage or HTTP
 * dependency; the loaded table is immutable and safe to share between
 * threads.
 */
#ifndef MAMORI_VRS_CATALOGUE_H
#define MAMORI_VRS_CATALOGUE_H

#include <stdbool.h>
#include <stddef.h>

/* Longest code (and series) accepted, without the terminator: a code
 * fits a 32-byte buffer (STORE_VACCINE_MAX in store/store_records.h). */
#define VRS_CODE_MAX 31

/* Language of a message: the staff interface speaks Japanese, logs and
 * the API's "message" English. */
enum vrs_lang { VRS_LANG_EN = 0, VRS_LANG_JA };

enum vrs_category {
    VRS_CAT_COVID = 0,      /* "covid": COVID-19 products (特例臨時接種) */
    VRS_CAT_ROUTINE_A,      /* "routine_a": 定期接種 A類 */
    VRS_CAT_ROUTINE_B       /* "routine_b": 定期接種 B類 */
};

struct vrs_vaccine {
    const char        *code;          /* e.g. "covid-comirnaty" */
    enum vrs_category  category;
    const char        *series;        /* doses are numbered within a series:
                                         every covid-* product is "covid" */
    const char        *disease_ja;
    const char        *product_ja;
    const char        *product_en;
    const char        *maker_ja;      /* "" where several makers supply it */
    unsigned           max_dose;      /* 0: no upper bound */
    unsigned           min_interval_days; /* whole days that must lie between
                                             two doses of the series
                                             (「N日以上の間隔をおく」); 0: none */
    int                min_age_months;    /* -1: none in the catalogue */
};

struct vrs_catalogue;

/* Load the catalogue CSV (strict libcsv, fixed header, bounded sizes,
 * UTF-8, every column checked, unique codes).  On failure returns -1,
 * *out is NULL and err holds one sentence naming the file and line
 * ("catalogue.csv line 4: ...").  Free the table with vrs_catalogue_free. */
int vrs_catalogue_load(const char *csv_path, struct vrs_catalogue **out,
                       char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The vaccine with this code, or NULL.  The entry lives as long as the
 * table. */
const struct vrs_vaccine *vrs_catalogue_lookup(const struct vrs_catalogue *c,
                                               const char *code);

size_t vrs_catalogue_count(const struct vrs_catalogue *c);

/* Entry i (0 <= i < count) in code order, or NULL. */
const struct vrs_vaccine *vrs_catalogue_at(const struct vrs_catalogue *c,
                                           size_t i);

/* "covid", "routine_a" or "routine_b". */
const char *vrs_category_name(enum vrs_category cat);

void vrs_catalogue_free(struct vrs_catalogue *c);

#endif
