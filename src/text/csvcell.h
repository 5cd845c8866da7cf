/*
 * csvcell.h - the one rule for CSV cells a spreadsheet would run as a
 * formula (OWASP "CSV Injection"; R2.7 exports, R7.5 audit reports).
 *
 * A cell whose first byte is = + - @ TAB or CR gets a single quote in
 * front, so Excel, LibreOffice and Sheets show it as text.  Every CSV
 * mamori writes applies this rule through this module: the export writer
 * (vrs/csvout.c, which quotes only where RFC 4180 needs it and may
 * convert to CP932) asks csvcell_formula_like; the audit reports
 * (audit/query.c, cli/cmd_audit.c), which quote every cell, write with
 * csvcell_fwrite.  text/ depends only on common/, so audit/ and cli/
 * need not pull in vrs/ for it.
 */
#ifndef MAMORI_TEXT_CSVCELL_H
#define MAMORI_TEXT_CSVCELL_H

#include <stdbool.h>
#include <stdio.h>

/* True if a spreadsheet could take the cell for a formula: it starts
 * with = + - @ TAB or CR.  NULL and "" are not. */
bool csvcell_formula_like(const char *s);

/*
 * Write one cell to `f`, always quoted (libcsv csv_fwrite: quotes
 * doubled, commas and line breaks kept inside the quotes), with the
 * single quote of csvcell_formula_like inside the quotes.  NULL is
 * written as the empty cell "".  Bytes are written as they are (UTF-8
 * stays UTF-8).  Returns 0, or -1 if the write or an allocation failed.
 * The caller owns `f` and `s`.
 */
int csvcell_fwrite(FILE *f, const char *s) __attribute__((warn_unused_result));

#endif
