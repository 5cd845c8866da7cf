/*
 * csvout.h - the CSV writer of exports (R2.7).
 *
 * RFC 4180: a cell holding a comma, a double quote, CR or LF is quoted
 * and its quotes doubled; records end with CRLF (the RFC, and what Excel
 * and most municipal systems expect) or LF.  Cells come in as UTF-8 and
 * go out as UTF-8 or CP932 (iconv); a character CP932 cannot hold fails
 * the cell (EILSEQ) rather than being replaced, because a reconciliation
 * file with silently altered names would be worse than none.
 *
 * Formula neutralisation, always on: a cell starting with = + - @ TAB or
 * CR gets a single quote in front, so a spreadsheet shows it as text
 * instead of evaluating it (OWASP, "CSV Injection"; the rule is
 * csvcell_formula_like, text/csvcell.h).  The writer applies it to every
 * cell; callers cannot turn it off.
 *
 * Output goes through a write callback in blocks of up to CSVOUT_BUF
 * bytes; memory does not depend on how much is written.
 */
#ifndef MAMORI_VRS_CSVOUT_H
#define MAMORI_VRS_CSVOUT_H

#include <stdbool.h>
#include <stddef.h>

#define CSVOUT_BUF   (64u * 1024u)
#define CSVOUT_CELL_MAX (64u * 1024u)   /* longest cell, in UTF-8 bytes */

enum csvout_encoding { CSVOUT_UTF8 = 0, CSVOUT_CP932 };

struct csvout_opts {
    enum csvout_encoding encoding;
    bool crlf;                  /* records end with CRLF (else LF) */
};

/* Write all n bytes; 0 or -1 (errno set). */
typedef int (*csvout_write_fn)(void *arg, const void *buf, size_t n);

struct csvout;

/* The caller owns *out (csvout_free).  Returns 0, or -1 (EINVAL, ENOMEM,
 * or iconv's errno when it has no CP932). */
int csvout_new(const struct csvout_opts *o, csvout_write_fn write, void *arg,
               struct csvout **out) __attribute__((warn_unused_result));

/* Append one cell (NUL-terminated UTF-8) to the current record.
 * Returns 0, or -1: EILSEQ (not UTF-8, or not representable in CP932),
 * E2BIG (longer than CSVOUT_CELL_MAX), or the write callback's errno.
 * After an error the writer refuses everything (sticky). */
int csvout_cell(struct csvout *w, const char *s) __attribute__((warn_unused_result));

/* End the current record. */
int csvout_end(struct csvout *w) __attribute__((warn_unused_result));

/* A whole record: n cells then the end. */
int csvout_record(struct csvout *w, const char *const *cells, size_t n)
    __attribute__((warn_unused_result));

/* Hand everything buffered to the write callback. */
int csvout_flush(struct csvout *w) __attribute__((warn_unused_result));

/* Bytes handed to the write callback so far. */
unsigned long long csvout_bytes(const struct csvout *w);

/* Wipe the buffers (they held personal data) and free; unflushed output
 * is dropped.  NULL is fine. */
void csvout_free(struct csvout *w);

#endif
