/*
 * synth_int.h - internals shared by the files of the synth module
 * (synth.c, synth_gen.c, synth_vax.c, synth_util.c).  Nothing outside
 * src/synth/ includes this.
 */
#ifndef MAMORI_SYNTH_INT_H
#define MAMORI_SYNTH_INT_H

#include <iconv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ref/lgcode.h"
#include "synth/synth.h"

/* ---- dates: days since 1970-01-01 (proleptic Gregorian) ---------------- */

#define DATE_NONE INT32_MIN

int32_t date_from_ymd(int y, int m, int d);
void date_to_ymd(int32_t days, int *y, int *m, int *d);
/* Parse "YYYY-MM-DD" (a real date, years 1900..2199); DATE_NONE if not. */
int32_t date_parse(const char *s);
/* The same day `years` later (29 Feb -> 28 Feb in a common year). */
int32_t date_add_years(int32_t days, int years);
/* Completed years of someone born on `birth`, on `on`. */
int date_age(int32_t birth, int32_t on);

/* ---- deterministic randomness (libsodium) ------------------------------- */

#define RNG_KEYBYTES 32u
#define RNG_BUFBYTES 512u

/*
 * One stream of random bytes: block b of stream s is
 * randombytes_buf_deterministic(RNG_BUFBYTES, BLAKE2b(key; s || b)).  A
 * stream per household keeps every household's draws independent of how
 * many bytes earlier households used.
 */
struct rng {
    uint8_t  key[RNG_KEYBYTES];
    uint64_t stream;
    uint64_t block;
    size_t   pos;
    uint8_t  buf[RNG_BUFBYTES];
};

void rng_init(struct rng *r, const uint8_t key[RNG_KEYBYTES], uint64_t stream);
uint64_t rng_u64(struct rng *r);
/* Uniform in [0, n); n > 0. */
uint32_t rng_below(struct rng *r, uint32_t n);
/* Uniform in [lo, hi]; lo <= hi. */
int32_t rng_range(struct rng *r, int32_t lo, int32_t hi);
/* True with probability p. */
bool rng_chance(struct rng *r, double p);
/* An index drawn with the given integer weights (n > 0, sum > 0). */
size_t rng_weighted(struct rng *r, const uint16_t *weights, size_t n);
/* In [lo, hi], denser towards lo (the smaller of two uniform draws):
 * most people take a vaccine early in its campaign. */
int32_t rng_early(struct rng *r, int32_t lo, int32_t hi);

/* Derive a 32-byte subkey `label` of the run key (BLAKE2b). */
void key_derive(uint8_t out[RNG_KEYBYTES], const uint8_t master[RNG_KEYBYTES],
                const char *label);

/*
 * A keyed permutation of [0, domain): a 4-round Feistel network over
 * libsodium's SipHash-2-4 (crypto_shorthash) on 2*halfbits bits, with
 * cycle-walking down to `domain` (Black & Rogaway).  Distinct x give
 * distinct results, which is how individual and voucher numbers are
 * unique without remembering the ones already used.  domain <= 2^(2h).
 */
uint64_t perm_apply(const uint8_t key[16], uint64_t domain, unsigned halfbits,
                    uint64_t x);

/* ---- CSV rows ------------------------------------------------------------ */

#define ROW_MAX 4096u

/*
 * One output file.  A row is built in `row`, then written whole: as is
 * (UTF-8) or converted with iconv to CP932.  Errors stick: the first one
 * is kept in `failed` and later calls do nothing.
 */
struct out {
    FILE    *f;
    iconv_t  cd;                /* (iconv_t)-1 for UTF-8 */
    size_t   len;
    bool     first;             /* no field written in this row yet */
    int      failed;            /* 0, or what went wrong (OUT_E*) */
    char     row[ROW_MAX];
    char     conv[ROW_MAX * 2];
};

enum { OUT_OK = 0, OUT_ETOOLONG, OUT_EENCODE, OUT_EWRITE };

void out_init(struct out *o, FILE *f, iconv_t cd);
/* A field (quoted when it holds a comma, a quote or a line break). */
void out_field(struct out *o, const char *s);
/* A field made of several strings. */
void out_fieldv(struct out *o, const char *const *parts, size_t n);
/* A decimal field, zero-padded to `width` digits (0: no padding). */
void out_num(struct out *o, uint64_t v, unsigned width);
/* A date field, "" for DATE_NONE. */
void out_date(struct out *o, int32_t days);
/* End the row with CRLF and write it. */
void out_end(struct out *o);
/* Append raw text to the current field (no separator, no quoting; only
 * for text known to need none). */
void out_raw(struct out *o, const char *s);
void out_rawnum(struct out *o, uint64_t v, unsigned width);
/* Start a field whose text follows through out_raw / out_rawnum. */
void out_begin_field(struct out *o);

/* ---- data shared by the generator files ---------------------------------- */

struct synth_name {
    char *kanji;
    char *kana;                 /* katakana */
};

struct synth_data {
    struct synth_name *family, *male, *female;
    size_t nfamily, nmale, nfemale;
    uint32_t *family_cum;       /* cumulative weights (frequency order) */
    size_t skipped;
    struct lgcode_table *lg;
    const struct lgcode_entry **places; /* every city, town, village,
                                           special ward and ward */
    size_t nplaces;
};

/* A 町域 of the municipality, with its postcode. */
struct area {
    const struct lgcode_entry *place;   /* the municipality or its ward */
    const char *town;
    uint32_t postcode;                  /* 7 digits */
};

#define CLINIC_DOCTORS 4

struct clinic {
    char     name[96];
    char     code[11];
    bool     pediatric;
    uint8_t  ndoctors;
    uint32_t doctor_family[CLINIC_DOCTORS];
    uint32_t doctor_given[CLINIC_DOCTORS];
    bool     doctor_female[CLINIC_DOCTORS];
};

/* Everything one synth_write call works with. */
struct run {
    const struct synth_data *d;
    const struct synth_opts *o;
    const struct lgcode_entry *muni;
    int32_t ref;                        /* --start-date */
    uint8_t key_rows[RNG_KEYBYTES];
    uint8_t key_setup[RNG_KEYBYTES];
    uint8_t key_mynumber[16];
    uint8_t key_voucher[16];
    uint8_t key_lot[16];
    struct area *areas;
    size_t nareas;
    struct clinic *clinics;             /* [0, nmass) are mass sites */
    size_t nclinics, nmass;
    struct out res, vou, vax;
    uint64_t next_resident;             /* 0-based: address_no - 1 */
    uint64_t next_household;
    uint64_t next_voucher;
    struct synth_stats stats;
};

/* ---- people ------------------------------------------------------------- */

enum move_type {
    MOVE_NONE = 0, MOVE_BIRTH, MOVE_IN, MOVE_WITHIN, MOVE_OUT, MOVE_DEATH,
    MOVE_RECORD, MOVE_DELETE
};

/* An address in another municipality (転入前住所 / 転出先住所). */
struct elsewhere {
    const struct lgcode_entry *place;   /* NULL: none */
    uint16_t town;
    uint8_t  chome, ban, go;
};

struct person {
    const char *rel;                    /* 続柄 */
    int32_t  birth;
    uint8_t  sex;                       /* 1 male, 2 female */
    bool     foreign;
    bool     hw;                        /* health worker (COVID priority) */
    uint32_t family, given;             /* name indices */
    uint32_t alias_family, alias_given; /* UINT32_MAX: no 通称 */
    int32_t  became, ceased, moved;
    uint8_t  became_how, move_type;
    struct elsewhere prev, next;
    bool     no_number;                 /* mynumber "" */
};

#define HH_MAX 8

struct household {
    size_t   area;
    uint8_t  chome, ban, go;
    bool     katagaki;
    uint8_t  bldg_style, bldg_prefix, bldg_stem;
    uint16_t room;
    uint8_t  n;
    struct person m[HH_MAX];
};

/* synth_gen.c: make one household (at most `room` people, room >= 1). */
void gen_household(struct run *r, struct rng *g, unsigned room,
                   struct household *h);

struct person_name {
    const char *family, *given, *family_kana, *given_kana;
};

/* The person's registered name, or with `alias` their 通称. */
void gen_name(const struct run *r, const struct person *p, bool alias,
              struct person_name *out);

/* The 方書 field of the household's rows ("" when none). */
void gen_katagaki(const struct run *r, const struct household *h,
                  struct out *o);

/* synth_vax.c: write the voucher and vaccination rows of one person. */
void vax_person(struct run *r, struct rng *g, const struct person *p,
                uint64_t address_no);
/* Set up clinics and mass vaccination sites for the run. */
int vax_setup(struct run *r, char *err, size_t errlen);

/* The 町域 names (synth_gen.c). */
#define SYNTH_TOWNS_MAX 128u
extern const char *const synth_towns[];
extern const size_t synth_ntowns;
/* Call fn on every fixed word the generator writes (those of
 * synth_gen.c and synth.c; clinic words are synth_vax_words, NULL-
 * terminated), stopping at the first false.  synth_data_load checks that
 * each survives CP932. */
typedef bool (*synth_word_fn)(const void *arg, const char *word);
bool synth_each_word(synth_word_fn fn, const void *arg);
extern const char *const synth_vax_words[];

/* Postcode range of a prefecture (first three digits). */
void synth_postcode_range(int pref, unsigned *lo, unsigned *hi);

#endif
