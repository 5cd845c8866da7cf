/*
 * export.h - CSV exports of a tenant's records (R2.7), streamed from the
 * store's walks through the CSV writer (src/vrs/csvout.h), so memory does
 * not grow with the tenant.  Layouts: docs/import-export.md.
 *
 *  - The replica for reconciliation with the originals: residents,
 *    vouchers and vaccinations in the import formats, except that the
 *    residents file has NO mynumber column.  No export contains an
 *    individual number (R2.2).
 *  - The VRS ledger layout (予防接種台帳向け出力): one row per resident
 *    with doses of one series (COVID-19 by default), 個別宛名番号 then
 *    eight columns per dose up to the highest dose present.
 *
 * Every cell goes through formula neutralisation (csvout).  The caller
 * holds a tenant context, so it has already decided the reader may see
 * these records (the HTTP API: staff of the tenant; never the platform
 * operator, R1.3), and it records the export in the audit log.
 */
#ifndef MAMORI_VRS_EXPORT_H
#define MAMORI_VRS_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vrs/catalogue.h"
#include "vrs/csvout.h"

enum export_kind {
    EXPORT_RESIDENTS = 0,   /* import format without mynumber */
    EXPORT_VOUCHERS,        /* import format, vouchers not voided */
    EXPORT_VACCINATIONS,    /* import format, vaccinations not voided */
    EXPORT_LEDGER           /* 予防接種台帳向け出力 */
};

/* "residents", "vouchers", "vaccinations", "ledger"; NULL otherwise. */
const char *export_kind_name(enum export_kind k);
int export_kind_parse(const char *s, enum export_kind *k)
    __attribute__((warn_unused_result));

/* The header of the replica kinds (the ledger's depends on its data). */
const char *export_header(enum export_kind k);

struct export_opts {
    enum export_kind      kind;
    enum csvout_encoding  encoding;
    bool                  crlf;         /* CRLF line ends (default for files
                                           opened by Excel and VRS tools) */
    const struct vrs_catalogue *catalogue;  /* ledger: required (makers) */
    const char           *series;       /* ledger: NULL means "covid" */
    size_t                page;         /* rows per store call; 0: 1000 */
};

struct export_stats {
    uint64_t rows;          /* data rows written */
    uint64_t bytes;         /* bytes handed to the write callback */
    unsigned max_dose;      /* ledger: dose groups written */
};

struct store_tenant;

/*
 * Write the export to `write` (see csvout.h), header first.  Returns 0,
 * or -1 with a plain sentence in err (a store error, a character that
 * CP932 cannot hold, a failed write); output already written is not
 * taken back, so the caller discards it.  stats may be NULL.
 */
int export_run(struct store_tenant *ctx, const struct export_opts *o,
               csvout_write_fn write, void *arg, struct export_stats *stats,
               char *err, size_t errlen) __attribute__((warn_unused_result));

/* The ledger's column names for dose groups 1..max_dose, as one
 * comma-separated line without line end, into out (NUL-terminated).
 * 0, or -1 if it does not fit. */
int export_ledger_header(unsigned max_dose, char *out, size_t outsz)
    __attribute__((warn_unused_result));

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) as the ledger's registration time:
 * YYYYMMDDHHMMSS in Japan Standard Time.  0, or -1 for anything else. */
int export_jst_stamp(const char *utc, char out[15])
    __attribute__((warn_unused_result));

#endif
