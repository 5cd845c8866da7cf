/*
 * csvcell.c - formula neutralisation of CSV cells (OWASP CSV Injection;
 * R2.7, R7.5).  See csvcell.h.
 */
#include "text/csvcell.h"

#include <csv.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

bool
csvcell_formula_like(const char *s)
{
    return s != NULL && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
}

int
csvcell_fwrite(FILE *f, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    char *t;
    int rc;

    if (!csvcell_formula_like(s))
        return csv_fwrite(f, n > 0 ? s : "", n) == 0 ? 0 : -1;
    /* libcsv quotes what it is given, so the mark goes in with the text:
     * it then stands inside the quotes, where spreadsheets read it. */
    if ((t = malloc(n + 2)) == NULL)
        return -1;
    t[0] = '\'';
    memcpy(t + 1, s, n + 1);
    rc = csv_fwrite(f, t, n + 1) == 0 ? 0 : -1;
    util_wipe(t, n + 1);                /* no copy of the cell outlives the call */
    free(t);
    return rc;
}
