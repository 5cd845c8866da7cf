/*
 * fuzz_csv_import.c - libFuzzer harness: the CSV reader and pass 1 of the
 * import (R2.6), no store.
 *
 * Each input is tried as every kind (residents, vouchers, vaccinations)
 * in both encodings, through import_check_mem with a fake tenant (some
 * address numbers known, with dates and recorded doses, some vouchers
 * issued), so the rules path runs too.  Properties checked beyond "no
 * crash, no leak, no undefined behaviour":
 *
 *  - every problem names a line that exists in the input (1 .. newlines+1)
 *    and a reason, and the counts add up;
 *  - the reader gives the same records and problems whether the input
 *    arrives at once or in small pieces (a chunk boundary, for instance
 *    inside a CP932 character, changes nothing).
 *
 * Built with -fsanitize=fuzzer,address,undefined (tests/fuzz/CMakeLists.txt);
 * test_csv replays the seed corpus and every file in regressions/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vrs/catalogue.h"
#include "vrs/csvin.h"
#include "vrs/import.h"

#ifndef FUZZ_CATALOGUE
#define FUZZ_CATALOGUE MAMORI_SOURCE_DATA_DIR "/vaccines/catalogue.csv"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vrs_catalogue *fz_cat;

struct fz_count {
    uint64_t maxline;
    uint64_t problems;
    uint64_t lastline;
    uint64_t records;
    uint64_t fieldsum;          /* sum of field lengths, order-sensitive mix */
};

static void
fz_require(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_csv_import: property broken: %s\n", what);
        abort();
    }
}

static int
fz_sink(void *arg, const struct import_problem *p)
{
    struct fz_count *c = arg;

    fz_require(p->line >= 1 && p->line <= c->maxline, "problem line inside the input");
    fz_require(p->reason != NULL && p->reason[0] != '\0', "problem has a reason");
    c->problems++;
    return 0;
}

/* ---- a fake tenant ------------------------------------------------------ */

static int
fz_resident_id(void *arg, const char *address_no, int64_t *id)
{
    (void)arg;
    /* Address numbers starting with an odd digit are residents. */
    if (address_no[0] < '0' || address_no[0] > '9' || (address_no[0] - '0') % 2 == 0)
        return 0;
    *id = (int64_t)strlen(address_no) * 10 + (address_no[0] - '0');
    return 1;
}

static int
fz_facts(void *arg, int64_t id, struct import_facts *out)
{
    (void)arg;
    memset(out, 0, sizeof(*out));
    snprintf(out->birth_date, sizeof(out->birth_date), "19%02u-04-10",
             (unsigned)((uint64_t)id % 90 + 10) % 100);
    if (id % 7 == 0)
        snprintf(out->deceased_date, sizeof(out->deceased_date), "2022-01-31");
    else if (id % 5 == 0)
        snprintf(out->moved_out_date, sizeof(out->moved_out_date), "2021-12-01");
    return 1;
}

static int
fz_doses(void *arg, int64_t id, struct import_dose *out, size_t max, size_t *n)
{
    (void)arg;
    *n = 0;
    if (id % 3 == 0 && max >= 2) {
        snprintf(out[0].vaccine, sizeof(out[0].vaccine), "covid-comirnaty");
        out[0].dose = 1;
        snprintf(out[0].date, sizeof(out[0].date), "2021-06-01");
        snprintf(out[1].vaccine, sizeof(out[1].vaccine), "covid-comirnaty");
        out[1].dose = 2;
        snprintf(out[1].date, sizeof(out[1].date), "2021-06-22");
        *n = 2;
    }
    return 0;
}

static int
fz_mynumber(void *arg, const char *mn)
{
    (void)arg;
    return mn[0] == '9';
}

static int
fz_voucher(void *arg, const char *no, int64_t *rid)
{
    (void)arg;
    if (no[9] != '7')
        return 0;
    *rid = 13;
    return 1;
}

/* ---- the reader alone, whole and in pieces ------------------------------ */

static int
fz_record(void *arg, uint64_t line, const char *const *f, const size_t *lens, size_t n)
{
    struct fz_count *c = arg;

    fz_require(line >= 1 && line <= c->maxline, "record line inside the input");
    fz_require(line >= c->lastline, "records in line order");
    c->lastline = line;
    c->records++;
    for (size_t i = 0; i < n; i++) {
        fz_require(strlen(f[i]) == lens[i], "field has no NUL inside");
        c->fieldsum = c->fieldsum * 31 + lens[i] + (lens[i] ? (uint8_t)f[i][0] : 0);
    }
    return 0;
}

static int
fz_problem(void *arg, uint64_t line, size_t field, enum csvin_problem p)
{
    struct fz_count *c = arg;

    (void)field;
    fz_require(line >= 1 && line <= c->maxline, "reader problem line inside the input");
    fz_require(csvin_problem_text(p) != NULL, "problem text");
    c->problems = c->problems * 7 + (uint64_t)p + line;
    return 0;
}

static void
fz_reader(const uint8_t *data, size_t size, enum csvin_encoding enc, uint64_t maxline)
{
    struct csvin_opts o = { enc, 64, 8 };
    struct fz_count whole = { maxline, 0, 0, 0, 0 }, piece = whole;
    struct csvin_callbacks cw = { fz_record, fz_problem, &whole };
    struct csvin_callbacks cp = { fz_record, fz_problem, &piece };
    size_t chunk = 1 + (size % 5);
    enum csvin_status a, b;

    a = csvin_read_mem(data, size, 0, &o, &cw);
    b = csvin_read_mem(data, size, chunk, &o, &cp);
    fz_require(a == b, "same status in pieces");
    fz_require(whole.records == piece.records && whole.fieldsum == piece.fieldsum,
               "same records in pieces");
    fz_require(whole.problems == piece.problems, "same problems in pieces");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct import_lookup lk = {
        fz_resident_id, fz_facts, fz_doses, fz_mynumber, fz_voucher, NULL
    };
    uint64_t maxline = 1;
    char err[256];

    if (size > 1u << 20)
        return 0;
    if (fz_cat == NULL && vrs_catalogue_load(FUZZ_CATALOGUE, &fz_cat, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_csv_import: %s\n", err);
        abort();
    }
    for (size_t i = 0; i < size; i++)
        maxline += data[i] == '\n';
    for (int enc = CSVIN_UTF8; enc <= CSVIN_CP932; enc++) {
        fz_reader(data, size, (enum csvin_encoding)enc, maxline);
        for (int kind = IMPORT_RESIDENTS; kind <= IMPORT_VACCINATIONS; kind++) {
            struct fz_count c = { maxline, 0, 0, 0, 0 };
            struct import_opts o;
            struct import_result res;

            memset(&o, 0, sizeof(o));
            o.kind = (enum import_kind)kind;
            o.encoding = (enum csvin_encoding)enc;
            o.catalogue = fz_cat;
            o.today = "2024-03-31";
            o.actor = "fuzz";
            o.sink = fz_sink;
            o.sink_arg = &c;
            if (import_check_mem(data, size, &o, (size & 1) ? &lk : NULL, &res) != 0)
                fz_require(res.outcome == IMPORT_FAILED && res.error[0] != '\0',
                           "a failure says why");
            else
                fz_require((res.outcome == IMPORT_REFUSED) == (c.problems > 0) &&
                           res.problems == c.problems && res.bad_lines <= c.problems,
                           "counts add up");
        }
    }
    return 0;
}
