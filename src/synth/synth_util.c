/*
 * synth_util.c - what the generator is built on: calendar dates,
 * deterministic randomness from libsodium, the keyed permutation that
 * makes numbers unique, and the CSV row writer (UTF-8 or CP932).
 */
#include "synth/synth_int.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

/* ---- dates ---------------------------------------------------------------
 * Days since 1970-01-01 in the proleptic Gregorian calendar, by the
 * era arithmetic of H. Hinnant's "chrono-compatible low-level date
 * algorithms" (exact for every date this module uses). */

int32_t
date_from_ymd(int y, int m, int d)
{
    int yy = m <= 2 ? y - 1 : y;
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    int yoe = yy - era * 400;
    int doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return (int32_t)(era * 146097 + doe - 719468);
}

void
date_to_ymd(int32_t days, int *y, int *m, int *d)
{
    int z = days + 719468;
    int era = (z >= 0 ? z : z - 146096) / 146097;
    int doe = z - era * 146097;
    int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int mp = (5 * doy + 2) / 153;

    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

static int
month_days(int y, int m)
{
    static const int n[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : n[m - 1];
}

int32_t
date_parse(const char *s)
{
    int v[3] = { 0, 0, 0 };
    static const int width[3] = { 4, 2, 2 };

    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return DATE_NONE;
    for (int f = 0, i = 0; f < 3; f++, i++) {
        for (int k = 0; k < width[f]; k++, i++) {
            if (s[i] < '0' || s[i] > '9')
                return DATE_NONE;
            v[f] = v[f] * 10 + (s[i] - '0');
        }
    }
    if (v[0] < 1900 || v[0] > 2199 || v[1] < 1 || v[1] > 12 || v[2] < 1 ||
        v[2] > month_days(v[0], v[1]))
        return DATE_NONE;
    return date_from_ymd(v[0], v[1], v[2]);
}

int32_t
date_add_years(int32_t days, int years)
{
    int y, m, d;

    date_to_ymd(days, &y, &m, &d);
    y += years;
    if (d > month_days(y, m))
        d = month_days(y, m);
    return date_from_ymd(y, m, d);
}

int
date_age(int32_t birth, int32_t on)
{
    int by, bm, bd, y, m, d, age;

    date_to_ymd(birth, &by, &bm, &bd);
    date_to_ymd(on, &y, &m, &d);
    age = y - by;
    if (m < bm || (m == bm && d < bd))
        age--;
    return age;
}

/* ---- randomness ---------------------------------------------------------- */

static void
store64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
rng_refill(struct rng *r)
{
    uint8_t msg[16], seed[randombytes_SEEDBYTES];

    store64(msg, r->stream);
    store64(msg + 8, r->block++);
    crypto_generichash(seed, sizeof(seed), msg, sizeof(msg), r->key,
                       sizeof(r->key));
    randombytes_buf_deterministic(r->buf, sizeof(r->buf), seed);
    r->pos = 0;
}

void
rng_init(struct rng *r, const uint8_t key[RNG_KEYBYTES], uint64_t stream)
{
    memcpy(r->key, key, RNG_KEYBYTES);
    r->stream = stream;
    r->block = 0;
    r->pos = sizeof(r->buf);            /* the first draw fills the buffer */
}

uint64_t
rng_u64(struct rng *r)
{
    uint64_t v = 0;

    if (r->pos + 8 > sizeof(r->buf))
        rng_refill(r);
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->buf[r->pos + (size_t)i] << (8 * i);
    r->pos += 8;
    return v;
}

uint32_t
rng_below(struct rng *r, uint32_t n)
{
    /* Multiply-high (Lemire): the bias is below n / 2^32, far under
     * anything a test of this data could see. */
    return (uint32_t)(((rng_u64(r) >> 32) * n) >> 32);
}

int32_t
rng_range(struct rng *r, int32_t lo, int32_t hi)
{
    return lo + (int32_t)rng_below(r, (uint32_t)(hi - lo) + 1u);
}

bool
rng_chance(struct rng *r, double p)
{
    /* 53 random bits as a fraction in [0, 1). */
    return (double)(rng_u64(r) >> 11) * 0x1.0p-53 < p;
}

size_t
rng_weighted(struct rng *r, const uint16_t *weights, size_t n)
{
    uint32_t sum = 0, x;

    for (size_t i = 0; i < n; i++)
        sum += weights[i];
    x = rng_below(r, sum);
    for (size_t i = 0; i < n; i++) {
        if (x < weights[i])
            return i;
        x -= weights[i];
    }
    return n - 1;
}

int32_t
rng_early(struct rng *r, int32_t lo, int32_t hi)
{
    int32_t a = rng_range(r, lo, hi), b = rng_range(r, lo, hi);

    return a < b ? a : b;
}

void
key_derive(uint8_t out[RNG_KEYBYTES], const uint8_t master[RNG_KEYBYTES],
           const char *label)
{
    crypto_generichash(out, RNG_KEYBYTES, (const uint8_t *)label,
                       strlen(label), master, RNG_KEYBYTES);
}

/* ---- keyed permutation -------------------------------------------------- */

static uint64_t
feistel(const uint8_t key[16], unsigned h, uint64_t x)
{
    uint64_t mask = (UINT64_C(1) << h) - 1, l = x >> h, rt = x & mask;
    uint8_t msg[9], f[crypto_shorthash_BYTES];

    for (uint8_t round = 0; round < 4; round++) {
        uint64_t fv = 0, nl = rt;

        msg[0] = round;
        store64(msg + 1, rt);
        crypto_shorthash(f, msg, sizeof(msg), key);
        for (int i = 0; i < 8; i++)
            fv |= (uint64_t)f[i] << (8 * i);
        rt = l ^ (fv & mask);
        l = nl;
    }
    return (l << h) | rt;
}

uint64_t
perm_apply(const uint8_t key[16], uint64_t domain, unsigned halfbits,
           uint64_t x)
{
    /* Cycle-walking: x < domain, and the walk stays on x's cycle of the
     * permutation of [0, 2^2h), so it returns to [0, domain) and the
     * result is a permutation of [0, domain). */
    do
        x = feistel(key, halfbits, x);
    while (x >= domain);
    return x;
}

/* ---- CSV rows ------------------------------------------------------------ */

void
out_init(struct out *o, FILE *f, iconv_t cd)
{
    o->f = f;
    o->cd = cd;
    o->len = 0;
    o->first = true;
    o->failed = OUT_OK;
}

static void
put(struct out *o, const char *s, size_t n)
{
    if (o->failed != OUT_OK)
        return;
    if (o->len + n + 2 > sizeof(o->row)) {      /* keep room for CRLF */
        o->failed = OUT_ETOOLONG;
        return;
    }
    memcpy(o->row + o->len, s, n);
    o->len += n;
}

void
out_begin_field(struct out *o)
{
    if (!o->first)
        put(o, ",", 1);
    o->first = false;
}

void
out_raw(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

void
out_rawnum(struct out *o, uint64_t v, unsigned width)
{
    char tmp[24];
    size_t n = 0;

    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && n < sizeof(tmp));
    while (n < width && n < sizeof(tmp))
        tmp[sizeof(tmp) - 1 - n++] = '0';
    put(o, tmp + sizeof(tmp) - n, n);
}

static bool
needs_quotes(const char *s)
{
    return strpbrk(s, ",\"\r\n") != NULL;
}

/* RFC 4180: a field with a comma, quote or line break is quoted and its
 * quotes doubled.  The generator's own strings never need it; names.csv
 * rows are checked on loading, so this is a safety net. */
static void
put_quoted(struct out *o, const char *s)
{
    put(o, "\"", 1);
    for (; *s != '\0'; s++) {
        if (*s == '"')
            put(o, "\"", 1);
        put(o, s, 1);
    }
    put(o, "\"", 1);
}

void
out_field(struct out *o, const char *s)
{
    out_begin_field(o);
    if (needs_quotes(s))
        put_quoted(o, s);
    else
        out_raw(o, s);
}

void
out_fieldv(struct out *o, const char *const *parts, size_t n)
{
    bool quote = false;

    for (size_t i = 0; i < n; i++)
        quote = quote || needs_quotes(parts[i]);
    out_begin_field(o);
    if (quote)
        put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (!quote) {
            out_raw(o, parts[i]);
            continue;
        }
        for (const char *s = parts[i]; *s != '\0'; s++) {
            if (*s == '"')
                put(o, "\"", 1);
            put(o, s, 1);
        }
    }
    if (quote)
        put(o, "\"", 1);
}

void
out_num(struct out *o, uint64_t v, unsigned width)
{
    out_begin_field(o);
    out_rawnum(o, v, width);
}

void
out_date(struct out *o, int32_t days)
{
    int y, m, d;

    out_begin_field(o);
    if (days == DATE_NONE)
        return;
    date_to_ymd(days, &y, &m, &d);
    out_rawnum(o, (uint64_t)y, 4);
    put(o, "-", 1);
    out_rawnum(o, (uint64_t)m, 2);
    put(o, "-", 1);
    out_rawnum(o, (uint64_t)d, 2);
}

static void
write_converted(struct out *o)
{
    char *in = o->row, *outp = o->conv;
    size_t inleft = o->len, outleft = sizeof(o->conv);

    if (iconv(o->cd, &in, &inleft, &outp, &outleft) == (size_t)-1 ||
        iconv(o->cd, NULL, NULL, &outp, &outleft) == (size_t)-1) {
        o->failed = OUT_EENCODE;
        return;
    }
    if (fwrite(o->conv, 1, sizeof(o->conv) - outleft, o->f) !=
        sizeof(o->conv) - outleft)
        o->failed = OUT_EWRITE;
}

void
out_end(struct out *o)
{
    put(o, "\r\n", 2);
    if (o->failed == OUT_OK) {
        if (o->cd != (iconv_t)-1)
            write_converted(o);
        else if (fwrite(o->row, 1, o->len, o->f) != o->len)
            o->failed = OUT_EWRITE;
    }
    o->len = 0;
    o->first = true;
}
