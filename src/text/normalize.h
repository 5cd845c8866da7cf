/*
 * normalize.h - name normalisation for exact-match search (4情報検索).
 *
 * A clerk may type a name in full-width katakana, half-width katakana or
 * hiragana, with or without spaces; the blind index must see one form.
 * The normal form is: NFKC (folds half-width to full-width and composes
 * voiced marks: ｶﾞ -> ガ), then hiragana -> katakana, then every space
 * (U+0020, tab, U+3000 ideographic space, other Unicode spaces) removed,
 * then ASCII letters upper-cased (romaji and foreign names).
 *
 * Kanji variants (髙/高, 﨑/崎) are NOT folded: that needs a curated
 * table and belongs to a later issue.
 */
#ifndef MAMORI_TEXT_NORMALIZE_H
#define MAMORI_TEXT_NORMALIZE_H

#include <stddef.h>

#include "common/util.h"

/* Longest normalised name we accept, in bytes, terminator excluded. */
#define TEXT_NAME_MAX 512

/*
 * Normalise the NUL-terminated UTF-8 string `in` into `out` (outsz bytes,
 * NUL-terminated).  Returns 0, or -1 with errno EILSEQ (not UTF-8),
 * ENAMETOOLONG (result does not fit) or ENOMEM.  The caller owns both
 * buffers; no heap copy of the input outlives the call (it is wiped).
 */
int text_normalize_name(const char *in, char *out, size_t outsz)
    MAMORI_WARN_UNUSED;

#endif
