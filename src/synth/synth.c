/*
 * synth.c - the synthetic resident generator's public API (R9.4): loading
 * the name list and the municipality table, checking options, and the
 * run itself, which writes residents.csv row by row (households from
 * synth_gen.c, vouchers and vaccinations from synth_vax.c).
 *
 * Individual numbers are unique within a run by construction: the
 * resident's index goes through a keyed permutation of the 11-digit
 * space (perm_apply), then gets its check digit.  They are valid-looking
 * numbers that may coincide with a real person's: never use them with
 * real data (data/README and docs/synth.md say so too).
 */
#include "synth/synth_int.h"

#include <csv.h>
#include <errno.h>
#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

#define NAMES_FILE_MAX  (8u << 20)
#define NAME_FIELD_MAX  64u
#define NAMES_COLUMNS   6u

static const char FULLWIDTH_SPACE[] = "\xe3\x80\x80";       /* U+3000 */

/* ---- CP932 ------------------------------------------------------------------- */

struct cp932 {
    iconv_t to, from;
};

static int
cp932_open(struct cp932 *c)
{
    c->to = iconv_open("CP932", "UTF-8");
    c->from = iconv_open("UTF-8", "CP932");
    if (c->to == (iconv_t)-1 || c->from == (iconv_t)-1) {
        if (c->to != (iconv_t)-1)
            iconv_close(c->to);
        if (c->from != (iconv_t)-1)
            iconv_close(c->from);
        return -1;
    }
    return 0;
}

static void
cp932_close(struct cp932 *c)
{
    iconv_close(c->to);
    iconv_close(c->from);
}

static bool
convert(iconv_t cd, const char *in, size_t inlen, char *out, size_t outsz,
        size_t *outlen)
{
    char *ip = (char *)(uintptr_t)in, *op = out;
    size_t il = inlen, ol = outsz;

    iconv(cd, NULL, NULL, NULL, NULL);
    if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1 ||
        iconv(cd, NULL, NULL, &op, &ol) == (size_t)-1)
        return false;
    *outlen = outsz - ol;
    return true;
}

/* True if `s` goes to CP932 and comes back unchanged: then a CP932 file
 * and a UTF-8 file of the same run hold the same text. */
static bool
cp932_round_trips(const struct cp932 *c, const char *s)
{
    char sj[256], back[256];
    size_t n = strlen(s), sjlen, backlen;

    return n < 128 && convert(c->to, s, n, sj, sizeof(sj), &sjlen) &&
           convert(c->from, sj, sjlen, back, sizeof(back), &backlen) &&
           backlen == n && memcmp(back, s, n) == 0;
}

/* ---- names.csv ----------------------------------------------------------------- */

struct names_load {
    struct synth_data *d;
    const struct cp932 *cp;
    char field[NAMES_COLUMNS][NAME_FIELD_MAX + 1];
    size_t nfield, row, cap_family, cap_male, cap_female;
    bool failed;
    char msg[192];
};

static void
names_fail(struct names_load *l, const char *what)
{
    if (l->failed)
        return;
    l->failed = true;
    snprintf(l->msg, sizeof(l->msg), "names.csv record %zu: %s", l->row + 1, what);
}

static void
names_field_cb(void *s, size_t len, void *data)
{
    struct names_load *l = data;

    if (l->failed)
        return;
    if (l->nfield >= NAMES_COLUMNS) {
        names_fail(l, "more than 6 fields");
        return;
    }
    if (len > NAME_FIELD_MAX) {
        names_fail(l, "a field is too long");
        return;
    }
    memcpy(l->field[l->nfield], s, len);
    l->field[l->nfield++][len] = '\0';
}

/* A name we can write unquoted, on one line, in both encodings, and
 * split into family and given name at the full-width space. */
static bool
name_usable(const struct names_load *l, const char *s)
{
    return s[0] != '\0' && strpbrk(s, ",\"\r\n \t") == NULL &&
           strstr(s, FULLWIDTH_SPACE) == NULL && cp932_round_trips(l->cp, s);
}

static int
names_push(struct synth_name **list, size_t *n, size_t *cap, const char *kanji,
           const char *kana)
{
    struct synth_name *e;

    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        struct synth_name *t = realloc(*list, nc * sizeof(**list));

        if (t == NULL)
            return -1;
        *list = t;
        *cap = nc;
    }
    e = &(*list)[*n];
    e->kanji = strdup(kanji);
    e->kana = strdup(kana);
    if (e->kanji == NULL || e->kana == NULL) {
        free(e->kanji);
        free(e->kana);
        return -1;
    }
    (*n)++;
    return 0;
}

static void
names_row_cb(int c, void *data)
{
    static const char *const header[NAMES_COLUMNS] = {
        "part", "gender", "kanji", "hiragana", "katakana", "romaji" };
    struct names_load *l = data;
    struct synth_data *d = l->d;
    const char *part = l->field[0], *gender = l->field[1];

    (void)c;
    if (!l->failed && l->nfield != NAMES_COLUMNS)
        names_fail(l, "not 6 fields");
    for (size_t i = 0; !l->failed && l->row == 0 && i < NAMES_COLUMNS; i++)
        if (strcmp(l->field[i], header[i]) != 0)
            names_fail(l, "the header is not part,gender,kanji,hiragana,katakana,romaji");
    if (!l->failed && l->row > 0) {
        int rc = 0;

        if (!name_usable(l, l->field[2]) || !name_usable(l, l->field[4]))
            d->skipped++;
        else if (strcmp(part, "last") == 0)
            rc = names_push(&d->family, &d->nfamily, &l->cap_family,
                            l->field[2], l->field[4]);
        else if (strcmp(part, "first") == 0 && strcmp(gender, "male") == 0)
            rc = names_push(&d->male, &d->nmale, &l->cap_male, l->field[2],
                            l->field[4]);
        else if (strcmp(part, "first") == 0 && strcmp(gender, "female") == 0)
            rc = names_push(&d->female, &d->nfemale, &l->cap_female,
                            l->field[2], l->field[4]);
        else
            names_fail(l, "part/gender is not last, first/male or first/female");
        if (rc != 0)
            names_fail(l, "out of memory");
    }
    l->nfield = 0;
    l->row++;
}

static int
no_space(unsigned char c)
{
    (void)c;
    return 0;                   /* keep blanks: a name must not hide any */
}

static int
load_names(struct synth_data *d, const struct cp932 *cp, const char *path,
           char *err, size_t errlen)
{
    struct names_load l = { .d = d, .cp = cp };
    struct csv_parser p;
    char *buf = NULL;
    size_t len = 0;

    if (util_read_file(path, NAMES_FILE_MAX, &buf, &len) != 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        free(buf);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    csv_set_space_func(&p, no_space);
    if (csv_parse(&p, buf, len, names_field_cb, names_row_cb, &l) != len)
        names_fail(&l, csv_strerror(csv_error(&p)));
    if (!l.failed && csv_fini(&p, names_field_cb, names_row_cb, &l) != 0)
        names_fail(&l, csv_strerror(csv_error(&p)));
    csv_free(&p);
    free(buf);
    if (!l.failed && (d->nfamily == 0 || d->nmale == 0 || d->nfemale == 0))
        names_fail(&l, "no family, male or female names left");
    if (l.failed) {
        snprintf(err, errlen, "%s (%s)", l.msg, path);
        return -1;
    }
    return 0;
}

/* Family names are listed most common first (佐藤, 林, 清水, 鈴木 ...):
 * weigh them like a Zipf law, so common names are common. */
static int
weigh_families(struct synth_data *d)
{
    uint32_t sum = 0;

    d->family_cum = calloc(d->nfamily, sizeof(*d->family_cum));
    if (d->family_cum == NULL)
        return -1;
    for (size_t i = 0; i < d->nfamily; i++) {
        sum += (uint32_t)(1000000u / (i + 20));
        d->family_cum[i] = sum;
    }
    return 0;
}

/* ---- municipalities -------------------------------------------------------- */

static char
lgcode_check(const char *five)
{
    unsigned sum = 0;

    for (unsigned i = 0; i < 5; i++)
        sum += (unsigned)(five[i] - '0') * (6 - i);
    return (char)('0' + (11 - sum % 11) % 10);
}

/* Every place an address can be in: municipalities and the wards of
 * designated cities (whose addresses name the ward), not prefectures
 * or the designated cities themselves.  The table has no iterator, so
 * every 5-digit prefix is looked up (as cmd_store.c does). */
static int
collect_places(struct synth_data *d)
{
    size_t n = lgcode_count(d->lg);

    d->places = calloc(n, sizeof(*d->places));
    if (d->places == NULL)
        return -1;
    for (unsigned v = 0; v < 100000u && d->nplaces < n; v++) {
        char code[LGCODE_LEN + 1];
        const struct lgcode_entry *e;

        snprintf(code, sizeof(code), "%05u", v);
        code[5] = lgcode_check(code);
        code[6] = '\0';
        e = lgcode_lookup(d->lg, code);
        if (e != NULL && strcmp(e->kind, "prefecture") != 0 &&
            strcmp(e->kind, "designated_city") != 0)
            d->places[d->nplaces++] = e;
    }
    return d->nplaces > 1 ? 0 : -1;
}

static bool
word_ok(const void *cp, const char *word)
{
    return cp932_round_trips(cp, word);
}

static int
check_fixed_strings(const struct cp932 *cp, char *err, size_t errlen)
{
    bool ok = synth_each_word(word_ok, cp);

    for (const char *const *s = synth_vax_words; ok && *s != NULL; s++)
        ok = cp932_round_trips(cp, *s);
    if (!ok) {
        snprintf(err, errlen, "internal error: a fixed word of the generator "
                 "is not representable in CP932");
        return -1;
    }
    return 0;
}

int
synth_data_load(const char *names_csv, const char *lgcode_csv,
                struct synth_data **out, char *err, size_t errlen)
{
    struct synth_data *d;
    struct cp932 cp;
    int rc = -1;

    *out = NULL;
    if (cp932_open(&cp) != 0) {
        snprintf(err, errlen, "iconv cannot convert between UTF-8 and CP932");
        return -1;
    }
    if ((d = calloc(1, sizeof(*d))) == NULL) {
        snprintf(err, errlen, "out of memory");
        cp932_close(&cp);
        return -1;
    }
    if (check_fixed_strings(&cp, err, errlen) == 0 &&
        load_names(d, &cp, names_csv, err, errlen) == 0 &&
        lgcode_table_load(lgcode_csv, &d->lg, err, errlen) == 0) {
        if (weigh_families(d) != 0 || collect_places(d) != 0)
            snprintf(err, errlen, "out of memory");
        else
            rc = 0;
    }
    cp932_close(&cp);
    if (rc != 0) {
        synth_data_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

static void
free_names(struct synth_name *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i].kanji);
        free(list[i].kana);
    }
    free(list);
}

void
synth_data_free(struct synth_data *d)
{
    if (d == NULL)
        return;
    free_names(d->family, d->nfamily);
    free_names(d->male, d->nmale);
    free_names(d->female, d->nfemale);
    free(d->family_cum);
    free(d->places);
    if (d->lg != NULL)
        lgcode_table_free(d->lg);
    free(d);
}

size_t
synth_data_names_skipped(const struct synth_data *d)
{
    return d->skipped;
}

int
synth_check_municipality(const struct synth_data *d, const char *code,
                         char *err, size_t errlen)
{
    const struct lgcode_entry *e;
    bool digits = code != NULL && strlen(code) == LGCODE_LEN;

    for (size_t i = 0; digits && i < LGCODE_LEN; i++)
        digits = code[i] >= '0' && code[i] <= '9';
    if (!digits) {
        snprintf(err, errlen, "the municipality must be a local government "
                 "code: 6 digits, the last a check digit");
        return -1;
    }
    if (!lgcode_valid(code)) {
        snprintf(err, errlen, "%s is not a local government code: its check "
                 "digit should be %c", code, lgcode_check(code));
        return -1;
    }
    if ((e = lgcode_lookup(d->lg, code)) == NULL) {
        snprintf(err, errlen, "%s is not in the municipality table", code);
        return -1;
    }
    if (strcmp(e->kind, "prefecture") == 0) {
        snprintf(err, errlen, "%s is a prefecture (%s), not a municipality",
                 code, e->name);
        return -1;
    }
    if (strcmp(e->kind, "ward") == 0) {
        const struct lgcode_entry *city = lgcode_lookup(d->lg, e->parent);

        snprintf(err, errlen, "%s is a ward of %s: give the city's code %s",
                 code, city != NULL ? city->name : "a designated city", e->parent);
        return -1;
    }
    return 0;
}

bool
synth_date_valid(const char *s)
{
    return date_parse(s) != DATE_NONE;
}

/* ---- the run ---------------------------------------------------------------- */

/* Postcodes: the first three digits by prefecture, as Japan Post
 * assigns them (roughly); the rest invented. */
void
synth_postcode_range(int pref, unsigned *lo, unsigned *hi)
{
    static const uint16_t range[47][2] = {
        { 40, 99 }, { 30, 39 }, { 20, 29 }, { 980, 989 }, { 10, 19 },
        { 990, 999 }, { 960, 979 }, { 300, 319 }, { 320, 329 }, { 370, 379 },
        { 330, 369 }, { 260, 299 }, { 100, 208 }, { 210, 259 }, { 940, 959 },
        { 930, 939 }, { 920, 929 }, { 910, 919 }, { 400, 409 }, { 380, 399 },
        { 500, 509 }, { 410, 439 }, { 440, 499 }, { 510, 519 }, { 520, 529 },
        { 600, 629 }, { 530, 599 }, { 650, 679 }, { 630, 639 }, { 640, 649 },
        { 680, 689 }, { 690, 699 }, { 700, 719 }, { 720, 739 }, { 740, 759 },
        { 770, 779 }, { 760, 769 }, { 790, 799 }, { 780, 789 }, { 800, 839 },
        { 840, 849 }, { 850, 859 }, { 860, 869 }, { 870, 879 }, { 880, 889 },
        { 890, 899 }, { 900, 909 },
    };
    int i = pref >= 1 && pref <= 47 ? pref - 1 : 12;

    *lo = range[i][0];
    *hi = range[i][1];
}

/* The town names of each place (the municipality, or each ward of a
 * designated city), distinct within a place, with a postcode each. */
static void
add_place_areas(struct run *r, struct rng *g, const struct lgcode_entry *pl,
                size_t per)
{
    uint16_t order[SYNTH_TOWNS_MAX];
    unsigned lo, hi, prefix;

    synth_postcode_range((pl->code[0] - '0') * 10 + (pl->code[1] - '0'), &lo, &hi);
    prefix = (unsigned)rng_range(g, (int32_t)lo, (int32_t)hi);
    for (size_t k = 0; k < synth_ntowns; k++)
        order[k] = (uint16_t)k;
    for (size_t k = 0; k < per; k++) {          /* partial Fisher-Yates */
        size_t j = k + rng_below(g, (uint32_t)(synth_ntowns - k));
        uint16_t t = order[k];
        struct area *a = &r->areas[r->nareas++];

        order[k] = order[j];
        order[j] = t;
        a->place = pl;
        a->town = synth_towns[order[k]];
        a->postcode = prefix * 10000u + rng_below(g, 10000);
    }
}

/* The town names of each place (the municipality, or each ward of a
 * designated city), distinct within a place, with a postcode each. */
static int
setup_areas(struct run *r, char *err, size_t errlen)
{
    const struct synth_data *d = r->d;
    bool city = strcmp(r->muni->kind, "designated_city") == 0;
    size_t per = city ? 10 : 24, nplace = city ? 0 : 1;
    struct rng g;

    for (size_t i = 0; city && i < d->nplaces; i++)
        nplace += strcmp(d->places[i]->parent, r->muni->code) == 0;
    if (nplace == 0 || per > synth_ntowns || synth_ntowns > SYNTH_TOWNS_MAX) {
        snprintf(err, errlen, "internal error: no places or towns for %s",
                 r->muni->code);
        return -1;
    }
    if ((r->areas = calloc(nplace * per, sizeof(*r->areas))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rng_init(&g, r->key_setup, 1);
    if (!city)
        add_place_areas(r, &g, r->muni, per);
    for (size_t i = 0; city && i < d->nplaces; i++)
        if (strcmp(d->places[i]->parent, r->muni->code) == 0)
            add_place_areas(r, &g, d->places[i], per);
    return 0;
}

static void
derive_keys(struct run *r)
{
    static const uint8_t domain[crypto_generichash_KEYBYTES] =
        "mamori synth v1: residents data";
    uint8_t master[RNG_KEYBYTES], k[RNG_KEYBYTES];
    crypto_generichash_state st;

    /* The run key: the seed and the municipality, so the same seed gives
     * other people elsewhere. */
    crypto_generichash_init(&st, domain, sizeof(domain), sizeof(master));
    crypto_generichash_update(&st, (const uint8_t *)r->muni->code, LGCODE_LEN);
    crypto_generichash_update(&st, (const uint8_t *)r->o->seed, r->o->seed_len);
    crypto_generichash_final(&st, master, sizeof(master));
    key_derive(r->key_rows, master, "rows");
    key_derive(r->key_setup, master, "setup");
    key_derive(k, master, "mynumber");
    memcpy(r->key_mynumber, k, sizeof(r->key_mynumber));
    key_derive(k, master, "voucher");
    memcpy(r->key_voucher, k, sizeof(r->key_voucher));
    key_derive(k, master, "lot");
    memcpy(r->key_lot, k, sizeof(r->key_lot));
    sodium_memzero(master, sizeof(master));
    sodium_memzero(k, sizeof(k));
}

static int
check_opts(const struct synth_data *d, const struct synth_opts *o,
           char *err, size_t errlen)
{
    if (synth_check_municipality(d, o->municipality, err, errlen) != 0)
        return -1;
    if (o->count < 1 || o->count > SYNTH_COUNT_MAX) {
        snprintf(err, errlen, "the count must be a whole number from 1 to %u",
                 SYNTH_COUNT_MAX);
        return -1;
    }
    if (o->seed == NULL || o->seed_len < 1 || o->seed_len > SYNTH_SEED_MAX) {
        snprintf(err, errlen, "the seed must be 1 to %u bytes", SYNTH_SEED_MAX);
        return -1;
    }
    if (!synth_date_valid(o->start_date)) {
        snprintf(err, errlen, "the start date must be a real date written "
                 "YYYY-MM-DD between 1900 and 2199");
        return -1;
    }
    if (o->encoding != SYNTH_UTF8 && o->encoding != SYNTH_CP932) {
        snprintf(err, errlen, "the encoding must be utf-8 or cp932");
        return -1;
    }
    return 0;
}

/* ---- residents.csv ------------------------------------------------------- */

static const char *
move_name(uint8_t t)
{
    static const char *const names[] = {
        "", "出生", "転入", "転居", "転出", "死亡", "職権記載", "職権消除",
    };

    return t < sizeof(names) / sizeof(names[0]) ? names[t] : "";
}

static void
write_address(struct out *o, const struct lgcode_entry *place, const char *town,
              unsigned chome, unsigned ban, unsigned go)
{
    out_begin_field(o);
    if (place == NULL)
        return;
    out_raw(o, place->pref_name);
    out_raw(o, place->name);
    out_raw(o, town);
    out_rawnum(o, chome, 0);
    out_raw(o, "丁目");
    out_rawnum(o, ban, 0);
    out_raw(o, "番");
    out_rawnum(o, go, 0);
    out_raw(o, "号");
}

static void
write_elsewhere(struct out *o, const struct elsewhere *e)
{
    write_address(o, e->place, e->place ? synth_towns[e->town] : "", e->chome,
                  e->ban, e->go);
}

static void
write_mynumber(struct run *r, const struct person *p, uint64_t index)
{
    static const unsigned w[11] = { 6, 5, 4, 3, 2, 7, 6, 5, 4, 3, 2 };
    uint64_t body, v;
    unsigned sum = 0, rem;

    if (p->no_number) {
        out_field(&r->res, "");
        return;
    }
    /* 11 digits unique per index, then the check digit (R2.2). */
    body = perm_apply(r->key_mynumber, UINT64_C(100000000000), 19, index);
    v = body;
    for (int i = 10; i >= 0; i--, v /= 10)
        sum += (unsigned)(v % 10) * w[i];
    rem = sum % 11;
    out_begin_field(&r->res);
    out_rawnum(&r->res, body, 11);
    out_rawnum(&r->res, rem <= 1 ? 0 : 11 - rem, 0);
}

static void
write_name(struct out *o, const struct person_name *n, bool kana)
{
    const char *parts[3] = { kana ? n->family_kana : n->family, FULLWIDTH_SPACE,
                             kana ? n->given_kana : n->given };

    out_fieldv(o, parts, 3);
}

static void
write_resident(struct run *r, const struct household *h, const struct person *p,
               uint64_t index, uint64_t household_no)
{
    const struct area *a = &r->areas[h->area];
    struct out *o = &r->res;
    struct person_name n;

    out_num(o, index + 1, 10);
    write_mynumber(r, p, index);
    gen_name(r, p, false, &n);
    write_name(o, &n, false);
    write_name(o, &n, true);
    out_date(o, p->birth);
    out_num(o, p->sex, 0);
    out_begin_field(o);
    out_rawnum(o, a->postcode / 10000, 3);
    out_raw(o, "-");
    out_rawnum(o, a->postcode % 10000, 4);
    write_address(o, a->place, a->town, h->chome, h->ban, h->go);
    gen_katagaki(r, h, o);
    out_num(o, household_no, 10);
    out_field(o, p->rel);
    out_date(o, p->became);
    out_date(o, p->ceased);
    out_field(o, move_name(p->move_type));
    out_date(o, p->moved);
    write_elsewhere(o, &p->prev);
    write_elsewhere(o, &p->next);
    if (p->alias_family != UINT32_MAX) {
        gen_name(r, p, true, &n);
        write_name(o, &n, false);
    } else {
        out_field(o, "");
    }
    out_end(o);
}

static void
write_household(struct run *r, uint64_t remaining)
{
    struct household h;
    struct rng g;
    uint64_t first = r->next_resident, hno = ++r->next_household;

    rng_init(&g, r->key_rows, hno);
    gen_household(r, &g, remaining < HH_MAX ? (unsigned)remaining : HH_MAX, &h);
    for (unsigned i = 0; i < h.n; i++)
        write_resident(r, &h, &h.m[i], r->next_resident++, hno);
    for (unsigned i = 0; i < h.n; i++)
        vax_person(r, &g, &h.m[i], first + i + 1);
    r->stats.residents += h.n;
    r->stats.households++;
}

static int
out_status(const struct run *r, char *err, size_t errlen)
{
    const struct out *outs[3] = { &r->res, &r->vou, &r->vax };
    static const char *const files[3] = {
        SYNTH_RESIDENTS_CSV, SYNTH_VOUCHERS_CSV, SYNTH_VACCINATIONS_CSV };

    for (size_t i = 0; i < 3; i++) {
        const char *why = NULL;

        switch (outs[i]->failed) {
        case OUT_ETOOLONG:
            why = "a row was longer than the generator allows";
            break;
        case OUT_EENCODE:
            why = "a row could not be converted to CP932";
            break;
        case OUT_EWRITE:
            why = "writing failed";
            break;
        default:
            if (ferror(outs[i]->f))
                why = "writing failed";
            break;
        }
        if (why != NULL) {
            snprintf(err, errlen, "%s: %s", files[i], why);
            return -1;
        }
    }
    return 0;
}

static void
run_free(struct run *r)
{
    free(r->areas);
    free(r->clinics);
    sodium_memzero(r, offsetof(struct run, res));
}

int
synth_write(const struct synth_data *d, const struct synth_opts *o,
            FILE *residents, FILE *vouchers, FILE *vaccinations,
            struct synth_stats *stats, char *err, size_t errlen)
{
    struct run *r;
    iconv_t cd;
    int rc = -1;

    if (check_opts(d, o, err, errlen) != 0)
        return -1;
    if (sodium_init() < 0 || (r = calloc(1, sizeof(*r))) == NULL) {
        snprintf(err, errlen, "cannot initialise (libsodium or memory)");
        return -1;
    }
    r->d = d;
    r->o = o;
    r->muni = lgcode_lookup(d->lg, o->municipality);
    r->ref = date_parse(o->start_date);
    derive_keys(r);
    cd = o->encoding == SYNTH_CP932 ? iconv_open("CP932", "UTF-8") : (iconv_t)-1;
    if (o->encoding == SYNTH_CP932 && cd == (iconv_t)-1) {
        snprintf(err, errlen, "iconv cannot convert UTF-8 to CP932");
        goto done;
    }
    if (setup_areas(r, err, errlen) != 0 || vax_setup(r, err, errlen) != 0)
        goto done;
    out_init(&r->res, residents, cd);
    out_init(&r->vou, vouchers, cd);
    out_init(&r->vax, vaccinations, cd);
    out_raw(&r->res, SYNTH_RESIDENTS_HEADER);
    out_end(&r->res);
    out_raw(&r->vou, SYNTH_VOUCHERS_HEADER);
    out_end(&r->vou);
    out_raw(&r->vax, SYNTH_VACCINATIONS_HEADER);
    out_end(&r->vax);
    while (r->next_resident < o->count && out_status(r, err, errlen) == 0)
        write_household(r, o->count - r->next_resident);
    if (fflush(residents) != 0 || fflush(vouchers) != 0 || fflush(vaccinations) != 0)
        r->res.failed = r->res.failed ? r->res.failed : OUT_EWRITE;
    if (out_status(r, err, errlen) == 0) {
        rc = 0;
        if (stats != NULL)
            *stats = r->stats;
    }
done:
    if (cd != (iconv_t)-1)
        iconv_close(cd);
    run_free(r);
    free(r);
    return rc;
}
