/*
 * synth_gen.c - households: who lives together, how old they are, what
 * they are called, and how they came to live here (R9.4).
 *
 * A household is drawn from its head's age (the age bands of Japan's
 * household heads) and a type (single, couple, couple with children,
 * lone parent, three generations, flat-share) whose odds depend on that
 * age, as in the 2020 census; the other members' ages follow from the
 * head's, so the population comes out old, as Japan's is.  Then its
 * history: born here (出生) or moved in (転入) on one date, maybe moved
 * within the municipality (転居), and for a few, moved out (転出),
 * died (死亡) or were removed by authority (職権消除).  Figures are
 * rounded and plausible, not statistics.
 */
#include "synth/synth_int.h"

#include <string.h>

/* ---- fixed words ---------------------------------------------------------- */

/* 町域 names: common, invented, none tied to a real place. */
const char *const synth_towns[] = {
    "中央", "本町", "緑町", "栄町", "旭町", "幸町", "寿町", "錦町",
    "末広町", "昭和町", "大和町", "平和町", "弥生町", "若葉町", "桜町",
    "松原", "青葉町", "宮前", "駅前", "朝日町", "日の出町", "港町", "柳町",
    "住吉町", "城北", "城南", "城東", "城西", "富士見町", "春日町", "泉町",
    "花園町", "大手町", "曙町", "千歳町", "新町", "元町", "東町", "西町",
    "南町", "北町", "上町", "仲町", "山手町", "緑ケ丘", "桜ケ丘",
    "希望ケ丘", "美園", "清水町", "今泉", "本郷", "石原", "大野", "高田",
    "白山町", "八幡町", "天神町", "稲荷町", "御幸町", "明神町", "光町",
    "みどり野", "さくら台", "ひばりが丘",
};
const size_t synth_ntowns = sizeof(synth_towns) / sizeof(synth_towns[0]);

static const char *const bldg_prefix[] = {
    "コーポ", "ハイツ", "メゾン", "レジデンス", "グランハイツ", "サンハイツ",
    "パレス", "シャトー", "ヴィラ", "フォレスト",
};
static const char *const bldg_stem[] = {
    "中央", "本町", "緑", "桜", "若葉", "旭", "青葉", "栄", "富士見",
    "さくら", "ひまわり", "すみれ", "あおい",
};
#define NPREFIX (sizeof(bldg_prefix) / sizeof(bldg_prefix[0]))
#define NSTEM   (sizeof(bldg_stem) / sizeof(bldg_stem[0]))

/* Foreign residents (about 2% of people in Japan): a few common Korean
 * and Chinese names written in kanji, as registered, with katakana. */
struct fname {
    const char *kanji, *kana;
};
static const struct fname foreign_family[] = {
    { "金", "キム" }, { "李", "イ" }, { "朴", "パク" }, { "崔", "チェ" },
    { "鄭", "チョン" }, { "王", "ワン" }, { "張", "チャン" },
    { "劉", "リュウ" }, { "陳", "チン" }, { "楊", "ヤン" },
};
static const struct fname foreign_male[] = {
    { "民俊", "ミンジュン" }, { "志勲", "ジフン" }, { "成浩", "ソンホ" },
    { "東賢", "ドンヒョン" }, { "偉", "ウェイ" }, { "浩然", "ハオラン" },
    { "建国", "ジェングオ" },
};
static const struct fname foreign_female[] = {
    { "智恩", "ジウン" }, { "美英", "ミヨン" }, { "恩恵", "ウネ" },
    { "秀珍", "スジン" }, { "芳", "ファン" }, { "静", "ジン" },
    { "麗華", "リーファ" },
};
#define NFFAM  (sizeof(foreign_family) / sizeof(foreign_family[0]))
#define NFMALE (sizeof(foreign_male) / sizeof(foreign_male[0]))
#define NFFEM  (sizeof(foreign_female) / sizeof(foreign_female[0]))

/* 続柄.  Compared by pointer inside this file. */
#define REL_HEAD       rel_words[0]
#define REL_WIFE       rel_words[1]
#define REL_HUSBAND    rel_words[2]
#define REL_CHILD      rel_words[3]
#define REL_FATHER     rel_words[4]
#define REL_MOTHER     rel_words[5]
#define REL_CHILD_WIFE rel_words[6]
#define REL_GRANDCHILD rel_words[7]
#define REL_LODGER     rel_words[8]
static const char *const rel_words[] = {
    "世帯主", "妻", "夫", "子", "父", "母", "子の妻", "孫", "同居人",
};

/* Words synth.c and gen_katagaki put around the generated parts. */
static const char *const other_words[] = {
    "丁目", "番", "号", "団地", "号棟", "号室", "\xe3\x80\x80",
    "出生", "転入", "転居", "転出", "死亡", "職権記載", "職権消除",
};
#define NOTHER (sizeof(other_words) / sizeof(other_words[0]))

static bool
each_in(const char *const *list, size_t n, synth_word_fn fn, const void *arg)
{
    for (size_t i = 0; i < n; i++)
        if (!fn(arg, list[i]))
            return false;
    return true;
}

static bool
each_fname(const struct fname *list, size_t n, synth_word_fn fn, const void *arg)
{
    for (size_t i = 0; i < n; i++)
        if (!fn(arg, list[i].kanji) || !fn(arg, list[i].kana))
            return false;
    return true;
}

bool
synth_each_word(synth_word_fn fn, const void *arg)
{
    return each_in(synth_towns, synth_ntowns, fn, arg) &&
           each_in(bldg_prefix, NPREFIX, fn, arg) &&
           each_in(bldg_stem, NSTEM, fn, arg) &&
           each_in(other_words, NOTHER, fn, arg) &&
           each_in(rel_words, sizeof(rel_words) / sizeof(rel_words[0]), fn, arg) &&
           each_fname(foreign_family, NFFAM, fn, arg) &&
           each_fname(foreign_male, NFMALE, fn, arg) &&
           each_fname(foreign_female, NFFEM, fn, arg);
}

/* ---- names ---------------------------------------------------------------- */

void
gen_name(const struct run *r, const struct person *p, bool alias,
         struct person_name *out)
{
    const struct synth_data *d = r->d;

    if (p->foreign && !alias) {
        const struct fname *g = p->sex == 1 ? &foreign_male[p->given % NFMALE]
                                            : &foreign_female[p->given % NFFEM];
        out->family = foreign_family[p->family % NFFAM].kanji;
        out->family_kana = foreign_family[p->family % NFFAM].kana;
        out->given = g->kanji;
        out->given_kana = g->kana;
        return;
    }
    uint32_t fam = alias ? p->alias_family : p->family;
    uint32_t giv = alias ? p->alias_given : p->given;
    const struct synth_name *g = p->sex == 1 ? &d->male[giv] : &d->female[giv];

    out->family = d->family[fam].kanji;
    out->family_kana = d->family[fam].kana;
    out->given = g->kanji;
    out->given_kana = g->kana;
}

static uint32_t
pick_family(const struct run *r, struct rng *g)
{
    const struct synth_data *d = r->d;
    uint32_t x = rng_below(g, d->family_cum[d->nfamily - 1]);
    size_t lo = 0, hi = d->nfamily - 1;

    /* First index whose cumulative weight exceeds x. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (d->family_cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return (uint32_t)lo;
}

static uint32_t
pick_given(const struct run *r, struct rng *g, uint8_t sex, bool foreign)
{
    if (foreign)
        return rng_below(g, sex == 1 ? NFMALE : NFFEM);
    return rng_below(g, (uint32_t)(sex == 1 ? r->d->nmale : r->d->nfemale));
}

/* ---- members -------------------------------------------------------------- */

enum hh_type { HH_SINGLE, HH_COUPLE, HH_NUCLEAR, HH_LONE, HH_THREE, HH_SHARE,
               HH_NTYPES };

/* Household heads by age band (roughly the 2020 census), and the odds of
 * each household type for a head of that age (per mille). */
static const int band_lo[] = { 18, 30, 40, 50, 60, 70, 80, 90 };
static const int band_hi[] = { 29, 39, 49, 59, 69, 79, 89, 99 };
static const uint16_t band_w[] = { 100, 105, 135, 140, 165, 195, 125, 45 };
static const uint16_t type_w[][HH_NTYPES] = {
    { 640, 120, 120,  40,  10,  70 },
    { 300, 120, 450,  70,  40,  20 },
    { 260,  80, 480, 100,  70,  10 },
    { 280, 160, 360, 100,  90,  10 },
    { 270, 330, 200,  80, 120,   0 },
    { 320, 400, 100,  80, 100,   0 },
    { 450, 300,  50, 120,  80,   0 },
    { 550, 150,  20, 200,  80,   0 },
};
#define NBANDS (sizeof(band_w) / sizeof(band_w[0]))

static struct person *
add(struct run *r, struct rng *g, struct household *h, const char *rel,
    uint8_t sex, int age)
{
    struct person *p;

    if (h->n >= HH_MAX)
        return NULL;
    p = &h->m[h->n++];
    memset(p, 0, sizeof(*p));
    p->rel = rel;
    p->sex = sex;
    if (age < 0)
        age = 0;
    /* Exactly `age` completed years on the reference date. */
    p->birth = date_add_years(r->ref, -age) - rng_range(g, 0, 364);
    if (p->birth > r->ref)
        p->birth = r->ref;
    p->alias_family = p->alias_given = UINT32_MAX;
    p->ceased = DATE_NONE;
    return p;
}

static uint8_t
coin_sex(struct rng *g)
{
    return rng_chance(g, 0.51) ? 1 : 2;
}

/* Children of a mother aged `ma`: 1-3, one to five years apart, the
 * first born when she was 23-38 (those not born yet are not added).
 * Returns how many were added; `max_age` drops the ones old enough to
 * have left home. */
static int
add_children(struct run *r, struct rng *g, struct household *h,
             const char *rel, int ma, int max_age)
{
    static const uint16_t nkids_w[] = { 40, 45, 15 };
    int want = (int)rng_weighted(g, nkids_w, 3) + 1, added = 0, age;

    if (ma < 21)
        return 0;
    age = ma - rng_range(g, 23, 38);
    for (int k = 0; k < want && age >= 0; k++) {
        if (age <= max_age && add(r, g, h, rel, coin_sex(g), age) != NULL)
            added++;
        age -= rng_range(g, 1, 5);
    }
    return added;
}

/* The spouse of a head aged `age` of sex `sex`; returns the wife's age. */
static int
add_spouse(struct run *r, struct rng *g, struct household *h, uint8_t sex,
           int age)
{
    int wife = sex == 1 ? age - rng_range(g, -3, 7) : age;
    int husband = sex == 1 ? age : age + rng_range(g, -3, 7);

    if (wife < 18)
        wife = 18;
    if (husband < 18)
        husband = 18;
    add(r, g, h, sex == 1 ? REL_WIFE : REL_HUSBAND, sex == 1 ? 2 : 1,
        sex == 1 ? wife : husband);
    return wife;
}

/* Three generations: an older head with a son, his wife and their
 * children, or a younger couple with the head's parents. */
static void
add_three(struct run *r, struct rng *g, struct household *h, uint8_t sex,
          int age)
{
    int wife = age;

    if (age >= 60) {
        int son, dil;

        if (rng_chance(g, 0.7))
            wife = add_spouse(r, g, h, sex, age);
        son = wife - rng_range(g, 24, 36);
        if (son < 20)
            son = 20;
        add(r, g, h, REL_CHILD, 1, son);
        dil = son - rng_range(g, -3, 5);
        add(r, g, h, REL_CHILD_WIFE, 2, dil < 20 ? 20 : dil);
        add_children(r, g, h, REL_GRANDCHILD, dil < 20 ? 20 : dil, 30);
        return;
    }
    wife = add_spouse(r, g, h, sex, age);
    add_children(r, g, h, REL_CHILD, wife, 30);
    if (rng_chance(g, 0.6))
        add(r, g, h, REL_FATHER, 1, age + rng_range(g, 25, 36));
    add(r, g, h, REL_MOTHER, 2, age + rng_range(g, 23, 33));
}

static void
compose(struct run *r, struct rng *g, struct household *h)
{
    size_t band = rng_weighted(g, band_w, NBANDS);
    enum hh_type t = (enum hh_type)rng_weighted(g, type_w[band], HH_NTYPES);
    int age = rng_range(g, band_lo[band], band_hi[band]);
    bool old = age >= 60;
    uint8_t sex;
    int wife;

    if (t == HH_SINGLE)
        sex = rng_chance(g, age >= 65 ? 0.38 : 0.56) ? 1 : 2;
    else if (t == HH_LONE)
        sex = rng_chance(g, 0.15) ? 1 : 2;
    else if (t == HH_SHARE)
        sex = coin_sex(g);
    else
        sex = rng_chance(g, 0.92) ? 1 : 2;
    add(r, g, h, REL_HEAD, sex, age);
    switch (t) {
    case HH_SINGLE:
        break;
    case HH_COUPLE:
        add_spouse(r, g, h, sex, age);
        break;
    case HH_NUCLEAR:
        wife = add_spouse(r, g, h, sex, age);
        if (add_children(r, g, h, REL_CHILD, wife, old ? 60 : 30) == 0 && old)
            add(r, g, h, REL_CHILD, coin_sex(g), wife - rng_range(g, 25, 38));
        break;
    case HH_LONE:
        if (old)
            add(r, g, h, REL_CHILD, coin_sex(g), age - rng_range(g, 24, 38));
        else
            add_children(r, g, h, REL_CHILD, sex == 2 ? age : age - 2, 30);
        break;
    case HH_THREE:
        add_three(r, g, h, sex, age);
        break;
    case HH_SHARE:
    case HH_NTYPES:
        age += rng_range(g, -3, 3);
        add(r, g, h, REL_LODGER, coin_sex(g), age < 18 ? 18 : age);
        break;
    }
}

/* ---- names and flags ---------------------------------------------------- */

static void
name_members(struct run *r, struct rng *g, struct household *h)
{
    bool foreign = h->n <= 4 && rng_chance(g, 0.012);
    bool alias = foreign && rng_chance(g, 0.5);
    uint32_t fam = foreign ? rng_below(g, NFFAM) : pick_family(r, g);
    uint32_t afam = pick_family(r, g);

    for (unsigned i = 0; i < h->n; i++) {
        struct person *p = &h->m[i];

        p->foreign = foreign;
        p->family = p->rel == REL_LODGER ? (foreign ? rng_below(g, NFFAM)
                                                    : pick_family(r, g))
                                         : fam;
        p->given = pick_given(r, g, p->sex, foreign);
        if (alias) {
            p->alias_family = afam;
            p->alias_given = pick_given(r, g, p->sex, false);
        }
        p->hw = rng_chance(g, 0.04);     /* if of working age in 2021 */
        p->no_number = rng_chance(g, 0.01);
    }
}

/* ---- history ---------------------------------------------------------- */

static void
elsewhere(const struct run *r, struct rng *g, struct elsewhere *e)
{
    const struct lgcode_entry *p;

    /* Another municipality (or another ward's city): not this one. */
    do
        p = r->d->places[rng_below(g, (uint32_t)r->d->nplaces)];
    while (strcmp(p->code, r->muni->code) == 0 ||
           strcmp(p->parent, r->muni->code) == 0);
    e->place = p;
    e->town = (uint16_t)rng_below(g, (uint32_t)synth_ntowns);
    e->chome = (uint8_t)rng_range(g, 1, 5);
    e->ban = (uint8_t)rng_range(g, 1, 30);
    e->go = (uint8_t)rng_range(g, 1, 30);
}

static void
set_became(struct person *p, int32_t when, uint8_t how,
           const struct elsewhere *from)
{
    p->became = p->moved = when;
    p->became_how = p->move_type = how;
    if (from != NULL)
        p->prev = *from;
}

/* Someone who married into the household: moved in at 20-28 or later,
 * no earlier than `floor`, no later than `by`. */
static void
marry_in(const struct run *r, struct rng *g, struct person *p, int32_t floor,
         int32_t by)
{
    struct elsewhere from;
    int32_t m = date_add_years(p->birth, 20) + rng_range(g, 0, 8 * 365);

    if (m < floor)
        m = floor;
    if (m > by)
        m = by;
    if (m < p->birth)
        m = p->birth;
    elsewhere(r, g, &from);
    set_became(p, m, MOVE_IN, &from);
}

static int32_t
eldest_birth(const struct household *h, const char *rel)
{
    int32_t e = INT32_MAX;

    for (unsigned i = 0; i < h->n; i++)
        if (h->m[i].rel == rel && h->m[i].birth < e)
            e = h->m[i].birth;
    return e;
}

/* How each member became a resident. */
static void
settle(struct run *r, struct rng *g, struct household *h)
{
    struct person *head = &h->m[0];
    int age = date_age(head->birth, r->ref);
    bool native = h->m[h->n - 1].rel != REL_LODGER && rng_chance(g, 0.25);
    int32_t adult = date_add_years(head->birth, 18), s;
    int32_t kids = eldest_birth(h, REL_CHILD), gkids = eldest_birth(h, REL_GRANDCHILD);
    struct elsewhere from;
    int years;

    double u = (double)rng_below(g, 1000) / 1000.0;
    years = u < 0.35 ? rng_range(g, 0, 4)
          : u < 0.65 ? rng_range(g, 5, 14)
                     : rng_range(g, 15, age - 18 > 15 ? age - 18 : 15);
    s = date_add_years(r->ref, -years) - rng_range(g, 0, 364);
    if (native || s < adult)
        s = adult;
    if (s > r->ref)
        s = r->ref;
    elsewhere(r, g, &from);
    for (unsigned i = 0; i < h->n; i++) {
        struct person *p = &h->m[i];
        int32_t by = p->rel == REL_CHILD_WIFE ? gkids : kids;

        if (by > r->ref)
            by = r->ref;
        if (!native && by < s)
            by = s;             /* the family came together on `s` */
        if (p->rel == REL_LODGER) {
            struct elsewhere own;
            int32_t lo = date_add_years(p->birth, 18);

            lo = lo < s ? s : lo > r->ref ? r->ref : lo;
            elsewhere(r, g, &own);
            set_became(p, rng_range(g, lo, r->ref), MOVE_IN, &own);
        } else if (p->rel == REL_WIFE || p->rel == REL_HUSBAND ||
                   p->rel == REL_CHILD_WIFE) {
            marry_in(r, g, p, native ? p->birth : s, by);
        } else if (native || p->birth >= s) {
            set_became(p, p->birth, MOVE_BIRTH, NULL);
        } else if (rng_chance(g, 0.003)) {
            set_became(p, s, MOVE_RECORD, NULL);    /* 職権記載 */
        } else {
            set_became(p, s, MOVE_IN, &from);
        }
    }
}

/* Annual deaths per 100,000 by age (five-year bands, rounded from
 * Japan's life tables, both sexes). */
static unsigned
mortality(int age)
{
    static const unsigned q[] = {
        60, 10, 10, 20, 30, 40, 50, 70, 110, 170, 260, 400, 650, 1000,
        1600, 2800, 5200, 9500, 17000, 27000, 40000,
    };
    size_t i = (size_t)(age < 0 ? 0 : age) / 5;

    return q[i < sizeof(q) / sizeof(q[0]) ? i : sizeof(q) / sizeof(q[0]) - 1];
}

static void
cease(struct person *p, int32_t when, uint8_t how)
{
    p->ceased = p->moved = when;
    p->move_type = how;
}

/* The last three years' 転出, 死亡 and 職権消除, after 転居. */
static void
leave(struct run *r, struct rng *g, struct household *h)
{
    int32_t window = date_add_years(r->ref, -3), last = window;
    struct elsewhere to;

    for (unsigned i = 0; i < h->n; i++)
        if (h->m[i].moved + 1 > last)
            last = h->m[i].moved + 1;
    if (last <= r->ref && rng_chance(g, 0.03)) {
        int32_t c = rng_range(g, last, r->ref);

        elsewhere(r, g, &to);
        for (unsigned i = 0; i < h->n; i++) {
            cease(&h->m[i], c, MOVE_OUT);
            h->m[i].next = to;
        }
        return;
    }
    for (unsigned i = 0; i < h->n; i++) {
        struct person *p = &h->m[i];
        int age = date_age(p->birth, r->ref);
        int32_t lo = p->moved + 1 > window ? p->moved + 1 : window;

        if (lo > r->ref)
            continue;
        if (p->rel == REL_CHILD && age >= 18 && age <= 35 &&
            date_add_years(p->birth, 18) <= lo && rng_chance(g, 0.05)) {
            cease(p, rng_range(g, lo, r->ref), MOVE_OUT);
            elsewhere(r, g, &p->next);
        } else if (p->rel != REL_HEAD || h->n == 1) {
            /* A head who leaves others behind would need a new head. */
            if (rng_below(g, 100000) < 3 * mortality(age))
                cease(p, rng_range(g, lo, r->ref), MOVE_DEATH);
            else if (age >= 18 && rng_chance(g, 0.001))
                cease(p, rng_range(g, lo, r->ref), MOVE_DELETE);
        }
    }
}

/* 転居: the whole household moved within the municipality. */
static void
move_within(struct run *r, struct rng *g, struct household *h)
{
    int32_t first = INT32_MAX, lo, t;

    if (!rng_chance(g, 0.12))
        return;
    for (unsigned i = 0; i < h->n; i++)
        if (h->m[i].became < first)
            first = h->m[i].became;
    lo = first + 30;
    if (lo < date_add_years(r->ref, -20))
        lo = date_add_years(r->ref, -20);
    if (lo > r->ref)
        return;
    t = rng_range(g, lo, r->ref);
    for (unsigned i = 0; i < h->n; i++) {
        if (h->m[i].became < t) {
            h->m[i].moved = t;
            h->m[i].move_type = MOVE_WITHIN;
        }
    }
}

static void
place_household(struct run *r, struct rng *g, struct household *h)
{
    static const uint16_t chome_w[] = { 30, 28, 22, 12, 8 };

    h->area = rng_below(g, (uint32_t)r->nareas);
    h->chome = (uint8_t)(rng_weighted(g, chome_w, 5) + 1);
    h->ban = (uint8_t)rng_range(g, 1, 30);
    h->go = (uint8_t)rng_range(g, 1, 30);
    h->katagaki = rng_chance(g, 0.25);
    if (h->katagaki) {
        h->bldg_style = rng_chance(g, 0.8) ? 0 : 1;
        h->bldg_prefix = (uint8_t)rng_below(g, NPREFIX);
        h->bldg_stem = (uint8_t)rng_below(g, h->bldg_style == 0 ? NSTEM : 12);
        h->room = (uint16_t)(rng_range(g, 1, h->bldg_style == 0 ? 8 : 5) * 100 +
                             rng_range(g, 1, 12));
    }
}

void
gen_household(struct run *r, struct rng *g, unsigned room, struct household *h)
{
    memset(h, 0, sizeof(*h));
    compose(r, g, h);
    if (h->n > room)
        h->n = (uint8_t)room;
    place_household(r, g, h);
    name_members(r, g, h);
    settle(r, g, h);
    move_within(r, g, h);
    leave(r, g, h);
}

/* ---- katagaki -------------------------------------------------------------- */

void
gen_katagaki(const struct run *r, const struct household *h, struct out *o)
{
    out_begin_field(o);
    if (!h->katagaki)
        return;
    if (h->bldg_style == 0) {
        out_raw(o, bldg_prefix[h->bldg_prefix]);
        out_raw(o, bldg_stem[h->bldg_stem]);
    } else {
        out_raw(o, r->areas[h->area].town);
        out_raw(o, "団地");
        out_rawnum(o, (uint64_t)h->bldg_stem + 1, 0);
        out_raw(o, "号棟");
    }
    out_rawnum(o, h->room, 0);
    out_raw(o, "号室");
}
