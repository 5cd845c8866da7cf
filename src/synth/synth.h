/*
 * synth.h - the synthetic resident generator (R9.4).
 *
 * Writes residents.csv, vouchers.csv and vaccinations.csv in the import
 * formats of docs/synth.md ("Import formats") for one real municipality:
 * invented people with kana names, households, movement histories, valid
 * (but invented) individual numbers, vouchers and vaccination histories.
 *
 * Reproducible: every random choice is drawn from libsodium's
 * randombytes_buf_deterministic (ChaCha20) keyed by the seed, so the same
 * data, options and seed give byte-identical files.  Streaming: rows are
 * written household by household, so memory does not grow with --count.
 *
 * Test data only.  Nothing here reads, stores or logs personal data, and
 * the output must never be mixed with real records.
 */
#ifndef MAMORI_SYNTH_H
#define MAMORI_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Paths below a data directory (the shipped data/, installed as
 * share/mamori/). */
#define SYNTH_NAMES_CSV   "names/names.csv"
#define SYNTH_LGCODE_CSV  "municipalities/municipalities_lgcode.csv"

#define SYNTH_COUNT_MAX   100000000u    /* residents per run */
#define SYNTH_SEED_MAX    256u          /* bytes of --seed */

/* The output files and their exact headers (docs/synth.md). */
#define SYNTH_RESIDENTS_CSV    "residents.csv"
#define SYNTH_VOUCHERS_CSV     "vouchers.csv"
#define SYNTH_VACCINATIONS_CSV "vaccinations.csv"
#define SYNTH_RESIDENTS_HEADER \
    "address_no,mynumber,name,kana,birth_date,sex,postcode,address,katagaki," \
    "household_no,relationship,became_date,ceased_date,movement_type," \
    "movement_date,prev_address,next_address,alias"
#define SYNTH_VOUCHERS_HEADER "address_no,voucher_no,ticket_type,issued_date"
#define SYNTH_VACCINATIONS_HEADER \
    "address_no,vaccine,dose,date,lot,voucher_no,site,clinic,doctor"

enum synth_encoding { SYNTH_UTF8 = 0, SYNTH_CP932 = 1 };

/* What the generator reads once: the name list and the municipality
 * table.  Immutable after loading; one may serve many runs. */
struct synth_data;

/*
 * Load `names_csv` (data/names/names.csv) and `lgcode_csv` (the
 * municipality table).  Names whose kanji or katakana do not survive a
 * round trip through CP932 are skipped (so UTF-8 and CP932 runs hold the
 * same people).  On failure returns -1 and writes a plain sentence into
 * err.  The caller owns *out and frees it with synth_data_free().
 */
int synth_data_load(const char *names_csv, const char *lgcode_csv,
                    struct synth_data **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void synth_data_free(struct synth_data *d);

/* How many names the loader skipped (not representable in CP932). */
size_t synth_data_names_skipped(const struct synth_data *d);

struct synth_opts {
    const char         *municipality;   /* 6-digit local government code */
    uint64_t            count;          /* residents, 1..SYNTH_COUNT_MAX */
    const char         *seed;           /* 1..SYNTH_SEED_MAX bytes */
    size_t              seed_len;
    enum synth_encoding encoding;
    const char         *start_date;     /* "YYYY-MM-DD": the "as of" date */
};

struct synth_stats {
    uint64_t residents;
    uint64_t households;
    uint64_t vouchers;
    uint64_t vaccinations;
};

/*
 * 0 if `code` is one a run can use: a 6-digit code with a valid check
 * digit that the table lists as a municipality (市区町村, special wards
 * included).  Prefectures and the wards of designated cities are refused
 * (a ward's city is the municipality).  Else -1 and a sentence in err.
 */
int synth_check_municipality(const struct synth_data *d, const char *code,
                             char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* True if `s` is a real calendar date written YYYY-MM-DD in the years
 * 1900..2199. */
bool synth_date_valid(const char *s);

/*
 * Generate o->count residents and write the three CSV files, header
 * first, to the given streams (each row is written as soon as it is made;
 * the streams are flushed, not closed).  Returns 0, or -1 with a plain
 * sentence in err (bad options, an encoding failure, a write error).  On
 * failure the streams may hold a partial file.  stats may be NULL.
 */
int synth_write(const struct synth_data *d, const struct synth_opts *o,
                FILE *residents, FILE *vouchers, FILE *vaccinations,
                struct synth_stats *stats, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
