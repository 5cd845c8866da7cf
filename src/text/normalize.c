/*
 * normalize.c - NFKC + kana folding for blind-index input.
 */
#include "text/normalize.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>
#include <uninorm.h>

/* Hiragana that have a katakana twin exactly 0x60 code points above
 * (ぁ..ゖ, ゝ, ゞ).  ゟ (U+309F) has none and stays. */
static ucs4_t
fold_kana(ucs4_t c)
{
    if ((c >= 0x3041 && c <= 0x3096) || c == 0x309D || c == 0x309E)
        return c + 0x60;
    return c;
}

static int
is_space(ucs4_t c)
{
    /* After NFKC most compatibility spaces (U+3000, U+2000..U+200A) are
     * already U+0020; the rest are listed for safety. */
    return c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D ||
        c == 0xA0 || c == 0x3000 || (c >= 0x2000 && c <= 0x200B) ||
        c == 0x202F || c == 0x205F || c == 0xFEFF;
}

/* Fold `nf` (NFKC output, length n) into out; returns 0 or -1. */
static int
fold_into(const uint8_t *nf, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    const uint8_t *p = nf, *end = nf + n;

    while (p < end) {
        ucs4_t c;
        int len = u8_mbtouc(&c, p, (size_t)(end - p));
        uint8_t enc[6];
        int elen;

        if (len <= 0 || c == 0xFFFD) {
            errno = EILSEQ;
            return -1;
        }
        p += len;
        if (is_space(c))
            continue;
        c = fold_kana(c);
        if (c >= 'a' && c <= 'z')
            c -= 'a' - 'A';
        elen = u8_uctomb(enc, c, (int)sizeof(enc));
        if (elen <= 0) {
            errno = EILSEQ;
            return -1;
        }
        if (o + (size_t)elen >= outsz) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(out + o, enc, (size_t)elen);
        o += (size_t)elen;
    }
    out[o] = '\0';
    return 0;
}

int
text_normalize_name(const char *in, char *out, size_t outsz)
{
    size_t inlen, nlen = 0;
    uint8_t *nf;
    int rc;

    if (in == NULL || out == NULL || outsz == 0) {
        errno = EINVAL;
        return -1;
    }
    inlen = strlen(in);
    if (inlen > TEXT_NAME_MAX) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* u8_check refuses overlongs, surrogates and truncated sequences. */
    if (u8_check((const uint8_t *)in, inlen) != NULL) {
        errno = EILSEQ;
        return -1;
    }
    nf = u8_normalize(UNINORM_NFKC, (const uint8_t *)in, inlen, NULL, &nlen);
    if (nf == NULL)
        return -1;
    rc = fold_into(nf, nlen, out, outsz);
    util_wipe(nf, nlen);
    free(nf);
    if (rc != 0)
        util_wipe(out, outsz);
    return rc;
}
