/*
 * synth_vax.c - vouchers (R2.4) and vaccination histories (R2.3) of one
 * synthetic resident (R9.4).
 *
 * COVID-19 follows Japan's special vaccination programme: health workers
 * from 2021-02-17, people aged 65 and over from 2021-04-12, everyone
 * else from June 2021, children aged 5-11 from 2022-02-21, then the
 * booster campaigns (third dose from December 2021, fourth from May 2022,
 * bivalent from September 2022, spring and autumn 2023) until the
 * programme ended on 2024-03-31; from October 2024 routine vaccination
 * (b-covid) for people aged 65 and over.  Products follow the period:
 * mostly Comirnaty and Spikevax, a little Vaxzevria and Nuvaxovid, and
 * Daichirona and Kostaive in the 2023-24 campaign.  Routine (定期)
 * vaccinations: the infant and school-age schedule (a-*) for today's
 * children and influenza, pneumococcal (PPSV23) and COVID-19 for people
 * aged 65 and over (b-*), kept sparse.
 *
 * A person's whole history is drawn first; every dose up to the
 * reference date and before death or moving out is written, also those
 * given before moving in (at a clinic of the municipality they came
 * from, with no voucher of ours), so each series is numbered 1, 2, 3 ...
 * as the import rules want (docs/records.md).  A COVID-19 dose names the
 * voucher when it was given on or after the voucher was issued.
 * Intervals and ages keep to data/vaccines/catalogue.csv.
 */
#include "synth/synth_int.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* The vaccine codes of data/vaccines/catalogue.csv that are written. */
enum vaccine {
    V_COMIRNATY, V_SPIKEVAX, V_VAXZEVRIA, V_NUVAXOVID, V_DAICHIRONA,
    V_KOSTAIVE, V_HIB, V_PCV, V_HEPB, V_ROTA, V_DPT_IPV, V_DPT_IPV_HIB,
    V_BCG, V_MR, V_VARICELLA, V_JE, V_HPV, V_INFLUENZA, V_PPSV23, V_BCOVID,
    V_COUNT
};

static const char *const vaccine_code[V_COUNT] = {
    "covid-comirnaty", "covid-spikevax", "covid-vaxzevria", "covid-nuvaxovid",
    "covid-daichirona", "covid-kostaive", "a-hib", "a-pcv", "a-hepb",
    "a-rota", "a-dpt-ipv", "a-dpt-ipv-hib", "a-bcg", "a-mr", "a-varicella",
    "a-je", "a-hpv", "b-influenza", "b-ppsv23", "b-covid",
};

static bool
is_covid_programme(unsigned v)
{
    return v <= V_KOSTAIVE;
}

/* Words of clinic and site names (checked for CP932 with the rest). */
const char *const synth_vax_words[] = {
    "内科クリニック", "内科医院", "医院", "クリニック", "診療所",
    "ファミリークリニック", "総合病院", "小児科医院", "こどもクリニック",
    "小児科クリニック", "さくら", "ひまわり", "あおば", "みどり", "ひかり",
    "すずらん", "集団接種会場（", "公民館）", "体育館）", "　",
    NULL,
};
static const char *const general_kind[] = {
    "内科クリニック", "内科医院", "医院", "クリニック", "診療所",
    "ファミリークリニック", "総合病院",
};
static const char *const child_kind[] = {
    "小児科医院", "こどもクリニック", "小児科クリニック",
};
static const char *const soft_stem[] = {
    "さくら", "ひまわり", "あおば", "みどり", "ひかり", "すずらん",
};
#define NGENERAL (sizeof(general_kind) / sizeof(general_kind[0]))
#define NCHILD   (sizeof(child_kind) / sizeof(child_kind[0]))
#define NSOFT    (sizeof(soft_stem) / sizeof(soft_stem[0]))

/* ---- clinics ------------------------------------------------------------- */

static void
clinic_code(struct run *r, struct rng *g, struct clinic *c)
{
    /* 医療機関コード-like: prefecture (2), 1 = medical, 7 digits. */
    memcpy(c->code, r->muni->code, 2);
    c->code[2] = '1';
    for (int i = 3; i < 10; i++)
        c->code[i] = (char)('0' + rng_below(g, 10));
    c->code[10] = '\0';
}

static void
clinic_doctors(struct run *r, struct rng *g, struct clinic *c, unsigned n)
{
    c->ndoctors = (uint8_t)n;
    for (unsigned i = 0; i < n; i++) {
        c->doctor_female[i] = rng_chance(g, 0.25);
        c->doctor_family[i] = rng_below(g, (uint32_t)r->d->nfamily);
        c->doctor_given[i] = rng_below(g, (uint32_t)(c->doctor_female[i]
                                                     ? r->d->nfemale
                                                     : r->d->nmale));
    }
}

static void
make_clinic(struct run *r, struct rng *g, struct clinic *c, bool pediatric)
{
    const char *stem, *kind;
    uint32_t pick = rng_below(g, 10);

    if (pick < 5)
        stem = r->d->family[rng_below(g, (uint32_t)r->d->nfamily)].kanji;
    else if (pick < 8)
        stem = r->areas[rng_below(g, (uint32_t)r->nareas)].town;
    else
        stem = soft_stem[rng_below(g, NSOFT)];
    kind = pediatric ? child_kind[rng_below(g, NCHILD)]
                     : general_kind[rng_below(g, NGENERAL)];
    snprintf(c->name, sizeof(c->name), "%s%s", stem, kind);
    c->pediatric = pediatric;
    clinic_code(r, g, c);
    clinic_doctors(r, g, c, (unsigned)rng_range(g, 1, kind == general_kind[6]
                                                ? CLINIC_DOCTORS : 2));
}

int
vax_setup(struct run *r, char *err, size_t errlen)
{
    struct rng g;

    /* A fixed number, not one that grows with --count: a larger run
     * must keep the smaller run's people and their doses unchanged. */
    rng_init(&g, r->key_setup, 2);
    r->nmass = 2;
    r->nclinics = 60 + r->nmass;
    r->clinics = calloc(r->nclinics, sizeof(*r->clinics));
    if (r->clinics == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < r->nmass; i++) {
        struct clinic *c = &r->clinics[i];

        snprintf(c->name, sizeof(c->name), "集団接種会場（%s%s",
                 r->areas[rng_below(&g, (uint32_t)r->nareas)].town,
                 i == 0 ? "公民館）" : "体育館）");
        clinic_code(r, &g, c);
        clinic_doctors(r, &g, c, CLINIC_DOCTORS);
    }
    /* One clinic in five sees children. */
    for (size_t i = r->nmass; i < r->nclinics; i++)
        make_clinic(r, &g, &r->clinics[i], (i - r->nmass) % 5 == 0);
    return 0;
}

static size_t
pick_clinic(const struct run *r, struct rng *g, bool pediatric)
{
    size_t n = r->nclinics - r->nmass, i = rng_below(g, (uint32_t)n);

    /* Clinics alternate 1 pediatric : 4 general (vax_setup). */
    if (pediatric)
        i -= i % 5;
    else if (i % 5 == 0)
        i = i + 1 < n ? i + 1 : i - 1;
    return r->nmass + i;
}

/* ---- one person's doses ------------------------------------------------- */

struct dose {
    int32_t  date;
    uint8_t  vaccine;
    uint8_t  number;
    uint8_t  lot;               /* which of the month's lots */
    uint8_t  doctor;
    uint16_t clinic;
};

#define DOSES_MAX 64

struct history {
    struct dose d[DOSES_MAX];
    unsigned n;
    uint8_t next[V_COUNT];      /* next dose number per category */
    int32_t last_covid;         /* date of the latest programme dose */
    unsigned covid_doses;
    size_t usual;               /* the person's usual clinic */
};

/* Dose numbers count per category: all covid-* products are one series,
 * every other code its own. */
static unsigned
category(unsigned v)
{
    return is_covid_programme(v) ? V_COMIRNATY : v;
}

static void
record(const struct run *r, struct rng *g, struct history *h, unsigned v,
       int32_t date, size_t clinic)
{
    struct dose *d;
    unsigned cat = category(v);

    if (h->n >= DOSES_MAX)
        return;
    d = &h->d[h->n++];
    d->date = date;
    d->vaccine = (uint8_t)v;
    d->number = ++h->next[cat];
    d->lot = (uint8_t)rng_below(g, 4);
    d->clinic = (uint16_t)clinic;
    d->doctor = (uint8_t)rng_below(g, r->clinics[clinic].ndoctors);
    if (is_covid_programme(v)) {
        h->last_covid = date;
        h->covid_doses++;
    }
}

/* Day numbers of the programme's dates. */
struct covid_dates {
    int32_t hw, elderly, general, child, booster, b3_adult, b3_teen,
        b3_child, b4, bivalent, biv_child, spring, autumn, new_products,
        nuvaxovid, vaxzevria, end;
};

static void
covid_dates(struct covid_dates *c)
{
    c->hw = date_from_ymd(2021, 2, 17);
    c->elderly = date_from_ymd(2021, 4, 12);
    c->general = date_from_ymd(2021, 6, 1);
    c->child = date_from_ymd(2022, 2, 21);
    c->booster = date_from_ymd(2021, 12, 1);
    c->b3_adult = date_from_ymd(2022, 2, 1);
    c->b3_teen = date_from_ymd(2022, 3, 25);
    c->b3_child = date_from_ymd(2022, 9, 6);
    c->b4 = date_from_ymd(2022, 5, 25);
    c->bivalent = date_from_ymd(2022, 9, 20);
    c->biv_child = date_from_ymd(2023, 3, 8);
    c->spring = date_from_ymd(2023, 5, 8);
    c->autumn = date_from_ymd(2023, 9, 20);
    c->new_products = date_from_ymd(2023, 12, 4);
    c->nuvaxovid = date_from_ymd(2022, 5, 25);
    c->vaxzevria = date_from_ymd(2021, 8, 3);
    c->end = date_from_ymd(2024, 3, 31);
}

/* Age classes for uptake: 5-11, 12-17, 18-59, 60-64, 65+. */
static unsigned
age_class(int age)
{
    return age < 12 ? 0 : age < 18 ? 1 : age < 60 ? 2 : age < 65 ? 3 : 4;
}

static int32_t
later(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

/* Who was first in line, when their vouchers went out, when they could
 * start and how many took it. */
static void
primary_group(const struct covid_dates *c, const struct person *p,
              struct rng *g, int32_t *voucher_base, int32_t *start,
              double *uptake)
{
    int age_hw = date_age(p->birth, c->hw), age_el = date_age(p->birth, c->elderly);
    int32_t twelve = date_add_years(p->birth, 12), five = date_add_years(p->birth, 5);
    static const double general_uptake[] = { 0.72, 0.72, 0.76, 0.86, 0.88 };

    if (p->hw && age_hw >= 20 && age_hw <= 64) {
        *voucher_base = date_from_ymd(2021, 2, 1) + rng_range(g, 0, 14);
        *start = c->hw;
        *uptake = 0.95;
    } else if (age_el >= 65) {
        *voucher_base = date_from_ymd(2021, 3, 25) + rng_range(g, 0, 16);
        *start = c->elderly;
        *uptake = 0.92;
    } else if (twelve <= c->general) {
        *voucher_base = date_from_ymd(2021, 5, 10) + rng_range(g, 0, 20);
        *start = c->general;
        *uptake = general_uptake[age_class(date_age(p->birth, c->general))];
    } else if (twelve <= c->child) {
        *voucher_base = later(date_from_ymd(2021, 5, 10), twelve) + rng_range(g, 7, 30);
        *start = later(c->general, twelve);
        *uptake = 0.70;
    } else {
        *voucher_base = later(date_from_ymd(2022, 2, 10), five) + rng_range(g, 7, 30);
        *start = later(c->child, five);
        *uptake = *start < date_from_ymd(2023, 1, 1) ? 0.22 : 0.08;
    }
}

static unsigned
primary_product(const struct covid_dates *c, struct rng *g, int age, int32_t d1)
{
    uint32_t x = rng_below(g, 1000);

    if (age < 12)
        return V_COMIRNATY;
    if (d1 >= c->nuvaxovid && x < 50)
        return V_NUVAXOVID;
    if (x < 810)
        return V_COMIRNATY;
    if (x < 985 || age < 40 || d1 < c->vaxzevria)
        return age < 18 ? V_COMIRNATY : V_SPIKEVAX;
    return V_VAXZEVRIA;
}

static int32_t
second_gap(struct rng *g, unsigned v)
{
    switch (v) {
    case V_SPIKEVAX:
        return rng_range(g, 28, 35);
    case V_VAXZEVRIA:
        return rng_range(g, 28, 84);
    default:
        return rng_early(g, 21, 42);
    }
}

static size_t
covid_site(const struct run *r, struct rng *g, const struct history *h,
           int32_t date)
{
    double mass = date < date_from_ymd(2022, 1, 1) ? 0.35 : 0.10;

    return rng_chance(g, mass) ? rng_below(g, (uint32_t)r->nmass) : h->usual;
}

static void
covid_primary(const struct run *r, struct rng *g, const struct covid_dates *c,
              const struct person *p, struct history *h, int32_t base,
              int32_t start, double uptake)
{
    int32_t lo = later(start, base + 3), d1, d2;
    int32_t hi = lo + (rng_chance(g, 0.1) ? 450 : 150);
    unsigned v;

    if (!rng_chance(g, uptake) || lo > c->end)
        return;
    d1 = rng_early(g, lo, hi < c->end ? hi : c->end);
    v = primary_product(c, g, date_age(p->birth, d1), d1);
    record(r, g, h, v, d1, covid_site(r, g, h, d1));
    if (!rng_chance(g, 0.98))
        return;
    d2 = d1 + second_gap(g, v);
    record(r, g, h, v, d2, covid_site(r, g, h, d2));
}

/* A booster campaign: [start_by_class, end], at least `gap` days after
 * the previous dose, for people with `min_prior` doses already. */
struct campaign {
    int32_t start[5];           /* per age class; INT32_MAX: not eligible */
    int32_t end;
    int32_t gap;
    unsigned min_prior;
    double uptake[5];
};

static unsigned
booster_product(const struct covid_dates *c, struct rng *g, int age,
                int32_t date)
{
    uint32_t x = rng_below(g, 1000);

    if (age < 12)
        return V_COMIRNATY;
    if (date >= c->autumn) {
        if (date >= c->new_products && x >= 830)
            return x >= 915 && age >= 18 ? V_KOSTAIVE : V_DAICHIRONA;
        return x < 620 || age < 18 ? V_COMIRNATY : V_SPIKEVAX;
    }
    if (date >= c->nuvaxovid && date < c->bivalent && x >= 985 && age >= 18)
        return V_NUVAXOVID;
    return x < 540 || age < 18 ? V_COMIRNATY : V_SPIKEVAX;
}

static void
covid_booster(const struct run *r, struct rng *g, const struct covid_dates *c,
              const struct person *p, struct history *h,
              const struct campaign *k)
{
    unsigned cls;
    int32_t lo, hi, d;

    if (h->covid_doses < k->min_prior)
        return;
    lo = h->last_covid + k->gap;
    cls = age_class(date_age(p->birth, later(lo, k->start[4])));
    if (k->start[cls] == INT32_MAX || !rng_chance(g, k->uptake[cls]))
        return;
    lo = later(lo, k->start[cls]);
    if (lo > k->end)
        return;
    hi = lo + 120 < k->end ? lo + 120 : k->end;
    d = rng_early(g, lo, hi);
    record(r, g, h, booster_product(c, g, date_age(p->birth, d), d), d,
           covid_site(r, g, h, d));
}

static void
covid_boosters(const struct run *r, struct rng *g, const struct covid_dates *c,
               const struct person *p, struct history *h)
{
    const int32_t no = INT32_MAX;
    int32_t b3_old = p->hw ? c->booster : date_from_ymd(2022, 1, 1);
    const struct campaign k[] = {
        { { c->b3_child, c->b3_teen, p->hw ? c->booster : c->b3_adult, b3_old,
            b3_old }, c->spring - 1, 165, 2, { 0.10, 0.40, 0.68, 0.85, 0.90 } },
        { { no, no, p->hw ? date_from_ymd(2022, 7, 22) : no, c->b4, c->b4 },
          c->bivalent - 1, 150, 3, { 0, 0, 0.60, 0.80, 0.80 } },
        { { c->biv_child, c->bivalent, c->bivalent, c->bivalent, c->bivalent },
          c->spring - 1, 90, 2, { 0.05, 0.20, 0.35, 0.60, 0.75 } },
        { { c->spring, c->spring, c->spring, c->spring, c->spring },
          c->autumn - 1, 90, 2, { 0.03, 0.03, 0.03, 0.03, 0.62 } },
        { { c->autumn, c->autumn, c->autumn, c->autumn, c->autumn },
          c->end, 90, 2, { 0.03, 0.06, 0.12, 0.35, 0.52 } },
    };

    for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
        covid_booster(r, g, c, p, h, &k[i]);
}

/* Routine COVID-19 vaccination (B類) each autumn from 2024, 65 and over. */
static void
covid_routine(const struct run *r, struct rng *g, const struct person *p,
              struct history *h)
{
    int y1, m1, d1;

    date_to_ymd(r->ref, &y1, &m1, &d1);
    for (int y = 2024; y <= y1; y++) {
        int32_t lo = date_from_ymd(y, 10, 1), hi = date_from_ymd(y + 1, 3, 31);

        lo = later(lo, date_add_years(p->birth, 65));
        if (h->last_covid != DATE_NONE)
            lo = later(lo, h->last_covid + 90);
        if (lo > hi || !rng_chance(g, 0.22))
            continue;
        hi = lo + 100 < hi ? lo + 100 : hi;
        record(r, g, h, V_BCOVID, rng_early(g, lo, hi), h->usual);
    }
}

/* ---- routine vaccinations (定期接種) ------------------------------------ */

/* One dose of a schedule: no earlier than `age_days` after birth and
 * `gap` days after the previous dose, then within `spread` days. */
struct step {
    int32_t age_days, gap, spread;
};

struct schedule {
    uint8_t vaccine;
    int32_t from;               /* routine since (date of the dose) */
    int32_t born_from, born_to; /* cohorts it applies to (inclusive) */
    bool girls_only;
    double uptake;
    uint8_t nsteps;
    struct step steps[4];
};

static void
run_schedule(const struct run *r, struct rng *g, const struct person *p,
             struct history *h, const struct schedule *s)
{
    int32_t prev = DATE_NONE;

    if (p->birth < s->born_from || p->birth > s->born_to ||
        (s->girls_only && p->sex != 2) || !rng_chance(g, s->uptake))
        return;
    for (unsigned i = 0; i < s->nsteps; i++) {
        const struct step *st = &s->steps[i];
        int32_t lo = p->birth + st->age_days, d;

        if (prev != DATE_NONE)
            lo = later(lo, prev + st->gap);
        d = rng_early(g, lo, lo + st->spread);
        if (d > r->ref || (prev == DATE_NONE && d < s->from) ||
            (i > 0 && !rng_chance(g, 0.97)))
            return;
        record(r, g, h, s->vaccine, d, h->usual);
        prev = d;
    }
}

static void
routine_children(const struct run *r, struct rng *g, const struct person *p,
                 struct history *h)
{
    const int32_t y = 365, any = INT32_MIN, none = INT32_MAX;
    const int32_t five_in_one = date_from_ymd(2024, 2, 1);
    /* Minimum ages and intervals keep to data/vaccines/catalogue.csv
     * (min_interval_days N: N whole days between doses, so N + 1 apart;
     * 2 months = 63 days, 12 months = 370 days at the latest). */
    const struct schedule s[] = {
        { V_BCG, date_from_ymd(2005, 4, 1), any, none, false, 0.75, 1,
          { { 150, 0, 90 } } },
        { V_HIB, date_from_ymd(2013, 4, 1), any, five_in_one - 1, false, 0.75, 4,
          { { 63, 0, 30 }, { 0, 28, 28 }, { 0, 28, 28 }, { y + 5, 200, 120 } } },
        { V_PCV, date_from_ymd(2013, 4, 1), any, none, false, 0.75, 4,
          { { 63, 0, 30 }, { 0, 28, 28 }, { 0, 28, 28 }, { y + 5, 61, 120 } } },
        { V_HEPB, date_from_ymd(2016, 10, 1), date_from_ymd(2016, 4, 1), none,
          false, 0.72, 3, { { 63, 0, 30 }, { 0, 28, 14 }, { 0, 112, 60 } } },
        { V_ROTA, date_from_ymd(2020, 10, 1), date_from_ymd(2020, 8, 1), none,
          false, 0.70, 2, { { 56, 0, 40 }, { 0, 28, 14 } } },
        { V_DPT_IPV, date_from_ymd(2012, 11, 1), any, five_in_one - 1, false,
          0.75, 4, { { 90, 0, 30 }, { 0, 21, 35 }, { 0, 21, 35 },
                     { 0, 183, 200 } } },
        { V_DPT_IPV_HIB, date_from_ymd(2024, 4, 1), five_in_one, none, false,
          0.75, 4, { { 63, 0, 30 }, { 0, 21, 35 }, { 0, 21, 35 },
                     { 0, 183, 200 } } },
        { V_MR, date_from_ymd(2006, 4, 1), any, none, false, 0.75, 2,
          { { y + 5, 0, 90 }, { 5 * y + 90, 0, 300 } } },
        { V_VARICELLA, date_from_ymd(2014, 10, 1), any, none, false, 0.70, 2,
          { { y + 5, 0, 90 }, { 0, 183, 180 } } },
        { V_JE, date_from_ymd(2010, 4, 1), any, none, false, 0.65, 4,
          { { 3 * y, 0, 180 }, { 0, 21, 7 }, { 0, 183, 180 },
            { 9 * y, 0, 365 } } },
        { V_HPV, date_from_ymd(2022, 4, 1), any, none, true, 0.35, 3,
          { { 12 * y, 0, 3 * y }, { 0, 56, 14 }, { 0, 120, 30 } } },
    };

    /* Only today's children (and teenagers, for HPV) have these rows. */
    if (date_age(p->birth, r->ref) > 16)
        return;
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        run_schedule(r, g, p, h, &s[i]);
}

static void
routine_elderly(const struct run *r, struct rng *g, const struct person *p,
                struct history *h)
{
    int32_t at65 = date_add_years(p->birth, 65), window = date_add_years(r->ref, -3);
    int y1, m1, d1;

    if (at65 > r->ref)
        return;
    /* PPSV23 once, in the year after turning 65 (routine since 2014-10). */
    if (at65 >= date_from_ymd(2014, 10, 1) && rng_chance(g, 0.35))
        record(r, g, h, V_PPSV23, rng_early(g, at65, at65 + 364), h->usual);
    /* Influenza each autumn; only the last three seasons are kept. */
    date_to_ymd(window, &y1, &m1, &d1);
    for (int y = y1; date_from_ymd(y, 10, 1) <= r->ref; y++) {
        int32_t lo = later(date_from_ymd(y, 10, 1), at65);
        int32_t hi = date_from_ymd(y, 12, 28);

        if (lo < window || lo > hi || !rng_chance(g, 0.55))
            continue;
        record(r, g, h, V_INFLUENZA, rng_early(g, lo, hi), h->usual);
    }
}

/* ---- writing -------------------------------------------------------------- */

/* Lots: four per vaccine and month, derived from the run's lot key, so
 * people vaccinated in the same month share lots as in reality. */
static void
lot_text(const struct run *r, unsigned v, int32_t date, unsigned k, char out[21])
{
    static const char letters[] = "ABCDEFGHJKLMNPRSTUVWXYZ";
    uint8_t msg[4], h[crypto_shorthash_BYTES];
    int y, m, d;
    uint64_t x = 0;

    date_to_ymd(date, &y, &m, &d);
    msg[0] = (uint8_t)v;
    msg[1] = (uint8_t)k;
    msg[2] = (uint8_t)((y * 12 + m) & 0xff);
    msg[3] = (uint8_t)((y * 12 + m) >> 8);
    crypto_shorthash(h, msg, sizeof(msg), r->key_lot);
    for (int i = 0; i < 8; i++)
        x |= (uint64_t)h[i] << (8 * i);
    switch (v) {
    case V_COMIRNATY:
        snprintf(out, 21, "%c%c%04u", letters[x % 23], letters[(x / 23) % 23],
                 (unsigned)((x >> 16) % 10000));
        break;
    case V_SPIKEVAX:
        snprintf(out, 21, "30%05u", (unsigned)(x % 100000));
        break;
    case V_VAXZEVRIA:
        snprintf(out, 21, "CTMAV%03u", (unsigned)(x % 1000));
        break;
    case V_NUVAXOVID:
        snprintf(out, 21, "4300%03uA", (unsigned)(x % 1000));
        break;
    case V_DAICHIRONA:
        snprintf(out, 21, "DC%04u", (unsigned)(x % 10000));
        break;
    case V_KOSTAIVE:
        snprintf(out, 21, "KV%05u", (unsigned)(x % 100000));
        break;
    default:
        snprintf(out, 21, "%c%c%03u-%u", letters[x % 23], letters[(x / 23) % 23],
                 (unsigned)((x >> 16) % 1000), (unsigned)((x >> 32) % 10));
        break;
    }
}

static void
sort_doses(struct history *h)
{
    /* Insertion sort, stable: a handful of doses per person. */
    for (unsigned i = 1; i < h->n; i++) {
        struct dose t = h->d[i];
        unsigned j = i;

        for (; j > 0 && h->d[j - 1].date > t.date; j--)
            h->d[j] = h->d[j - 1];
        h->d[j] = t;
    }
}

/* voucher: the voucher number, or UINT64_MAX for "" (routine doses, and
 * COVID-19 doses given before this municipality issued one). */
static void
write_dose(struct run *r, const struct dose *d, const struct clinic *c,
           uint64_t address_no, uint64_t voucher)
{
    const struct synth_name *giv = c->doctor_female[d->doctor]
                                       ? &r->d->female[c->doctor_given[d->doctor]]
                                       : &r->d->male[c->doctor_given[d->doctor]];
    const char *doctor[3] = { r->d->family[c->doctor_family[d->doctor]].kanji,
                              "\xe3\x80\x80", giv->kanji };
    char lot[21];

    lot_text(r, d->vaccine, d->date, d->lot, lot);
    out_num(&r->vax, address_no, 10);
    out_field(&r->vax, vaccine_code[d->vaccine]);
    out_num(&r->vax, d->number, 0);
    out_date(&r->vax, d->date);
    out_field(&r->vax, lot);
    if (voucher != UINT64_MAX)
        out_num(&r->vax, voucher, 10);
    else
        out_field(&r->vax, "");
    out_field(&r->vax, c->code);
    out_field(&r->vax, c->name);
    out_fieldv(&r->vax, doctor, 3);
    out_end(&r->vax);
    r->stats.vaccinations++;
}

/* The clinic a person went to before moving here: in the municipality
 * they came from (any other one for 職権記載, which names none). */
static void
clinic_elsewhere(struct run *r, struct rng *g, const struct person *p,
                 struct clinic *c)
{
    const struct lgcode_entry *pl = p->prev.place;
    const char *town = synth_towns[p->prev.town];

    while (pl == NULL || strcmp(pl->code, r->muni->code) == 0 ||
           strcmp(pl->parent, r->muni->code) == 0) {
        pl = r->d->places[rng_below(g, (uint32_t)r->d->nplaces)];
        town = synth_towns[rng_below(g, (uint32_t)synth_ntowns)];
    }
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s%s", town,
             general_kind[rng_below(g, NGENERAL)]);
    memcpy(c->code, pl->code, 2);
    c->code[2] = '1';
    for (int i = 3; i < 10; i++)
        c->code[i] = (char)('0' + rng_below(g, 10));
    clinic_doctors(r, g, c, 1);
}

/* When this municipality issued the person's voucher; DATE_NONE if it
 * never did (under 5, gone before issue, or the reference date is
 * before the programme). */
static int32_t
voucher_issued(const struct run *r, struct rng *g, const struct person *p,
               int32_t base)
{
    int32_t at = later(base, p->became + rng_range(g, 7, 21));

    /* base carries up to 30 days of postal delay: someone who became
     * eligible just before the reference date has theirs already. */
    if (base - 30 > r->ref)
        return DATE_NONE;
    if (at > r->ref)
        at = r->ref;
    if (date_age(p->birth, at) < 5 || at < p->became ||
        (p->ceased != DATE_NONE && at >= p->ceased))
        return DATE_NONE;
    return at;
}

static void
write_voucher(struct run *r, uint64_t address_no, uint64_t voucher,
              int32_t issued)
{
    out_num(&r->vou, address_no, 10);
    out_num(&r->vou, voucher, 10);
    out_field(&r->vou, "1");            /* ticket type: see docs/synth.md */
    out_date(&r->vou, issued);
    out_end(&r->vou);
    r->stats.vouchers++;
}

void
vax_person(struct run *r, struct rng *g, const struct person *p,
           uint64_t address_no)
{
    struct covid_dates c;
    struct history h;
    int32_t base = DATE_NONE, start = DATE_NONE, issued;
    uint64_t voucher = 0;
    double uptake = 0;
    struct clinic elsewhere;
    bool have_elsewhere = false;

    memset(&h, 0, sizeof(h));
    h.last_covid = DATE_NONE;
    h.usual = pick_clinic(r, g, date_age(p->birth, r->ref) < 15);
    covid_dates(&c);
    primary_group(&c, p, g, &base, &start, &uptake);
    issued = voucher_issued(r, g, p, base);
    if (issued != DATE_NONE) {
        voucher = perm_apply(r->key_voucher, UINT64_C(10000000000), 17,
                             r->next_voucher++);
        write_voucher(r, address_no, voucher, issued);
    }
    covid_primary(r, g, &c, p, &h, base, start, uptake);
    covid_boosters(r, g, &c, p, &h);
    covid_routine(r, g, p, &h);
    routine_children(r, g, p, &h);
    routine_elderly(r, g, p, &h);
    sort_doses(&h);
    /* The whole history up to the reference date and while alive and
     * resident (VRS and the 予防接種台帳 keep what was given before moving
     * in), so every series runs 1, 2, 3 ... without gaps. */
    for (unsigned i = 0; i < h.n; i++) {
        const struct dose *d = &h.d[i];
        bool here = d->date >= p->became, with_voucher;

        if (d->date > r->ref || (p->ceased != DATE_NONE && d->date >= p->ceased))
            continue;
        if (!here && !have_elsewhere) {
            clinic_elsewhere(r, g, p, &elsewhere);
            have_elsewhere = true;
        }
        with_voucher = is_covid_programme(d->vaccine) && issued != DATE_NONE &&
                       d->date >= issued;
        write_dose(r, d, here ? &r->clinics[d->clinic] : &elsewhere, address_no,
                   with_voucher ? voucher : UINT64_MAX);
    }
}
