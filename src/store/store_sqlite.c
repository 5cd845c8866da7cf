/*
 * store_sqlite.c - the embedded SQLite backend.
 *
 * Every connection: WAL, synchronous=FULL (a commit is on disk when
 * COMMIT returns, R9.6), foreign_keys=ON, secure_delete=ON (erased rows
 * are zeroed, not left in free pages), busy_timeout, trusted_schema=OFF.
 * Tables are STRICT.  Statements are prepared once per connection.
 */
#include "store/store_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* ---- migrations (numbered; never edit one that has shipped) ------------- */

static const char *const migrations[] = {
    /* 1: tenants, residents, idempotency (R1.1, R2.1) */
    "CREATE TABLE schema_migrations ("
    "  version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL) STRICT;"
    "CREATE TABLE tenants ("
    "  tenant_id TEXT PRIMARY KEY CHECK (length(tenant_id) = 6),"
    "  state TEXT NOT NULL CHECK (state IN ('active', 'erased')),"
    "  created_at TEXT NOT NULL, changed_at TEXT NOT NULL) STRICT;"
    "CREATE TABLE residents ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  resident_id INTEGER NOT NULL,"
    "  address_no TEXT NOT NULL,"
    "  key_version INTEGER NOT NULL,"
    "  birth_year INTEGER NOT NULL,"
    "  ceased_ym TEXT,"
    "  mynumber_bidx BLOB, name_bidx BLOB NOT NULL, kana_bidx BLOB,"
    "  mynumber_ct BLOB NOT NULL, name_ct BLOB NOT NULL, kana_ct BLOB NOT NULL,"
    "  birth_date_ct BLOB NOT NULL, sex_ct BLOB NOT NULL, postcode_ct BLOB NOT NULL,"
    "  address_ct BLOB NOT NULL, katagaki_ct BLOB NOT NULL,"
    "  household_no_ct BLOB NOT NULL, relationship_ct BLOB NOT NULL,"
    "  became_date_ct BLOB NOT NULL, ceased_date_ct BLOB NOT NULL,"
    "  movement_type_ct BLOB NOT NULL, movement_date_ct BLOB NOT NULL,"
    "  prev_address_ct BLOB NOT NULL, next_address_ct BLOB NOT NULL,"
    "  alias_ct BLOB NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  PRIMARY KEY (tenant_id, resident_id),"
    "  UNIQUE (tenant_id, address_no)) STRICT;"
    "CREATE INDEX residents_mynumber ON residents (tenant_id, mynumber_bidx);"
    "CREATE INDEX residents_name ON residents (tenant_id, name_bidx);"
    "CREATE INDEX residents_kana ON residents (tenant_id, kana_bidx);"
    "CREATE INDEX residents_keyver ON residents (tenant_id, key_version);"
    "CREATE TABLE idempotency ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  idem_key TEXT NOT NULL, op TEXT NOT NULL, row_id INTEGER NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  PRIMARY KEY (tenant_id, idem_key)) STRICT;",
    /* 2: staff accounts, terminals, sessions (R3.5, R6.1-R6.8, see store_auth.h) */
    "CREATE TABLE staff ("
    "  user_id TEXT PRIMARY KEY,"
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  role TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'disabled')),"
    "  pw_hash TEXT NOT NULL DEFAULT '',"
    "  pw_changed_at INTEGER NOT NULL DEFAULT 0,"
    "  must_change INTEGER NOT NULL DEFAULT 0,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  locked INTEGER NOT NULL DEFAULT 0,"
    "  totp_ct BLOB,"
    "  totp_last_step INTEGER NOT NULL DEFAULT 0,"
    "  confirmed_at INTEGER NOT NULL,"
    "  enrol_hash BLOB UNIQUE,"
    "  enrol_expires INTEGER NOT NULL DEFAULT 0,"
    "  created_at TEXT NOT NULL, changed_at TEXT NOT NULL) STRICT;"
    "CREATE INDEX staff_tenant ON staff (tenant_id);"
    "CREATE TABLE terminals ("
    "  fingerprint BLOB PRIMARY KEY CHECK (length(fingerprint) = 32),"
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  name TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('active', 'revoked')),"
    "  created_at TEXT NOT NULL, changed_at TEXT NOT NULL) STRICT;"
    "CREATE TABLE sessions ("
    "  token_hash BLOB PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES staff (user_id),"
    "  tenant_id TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  fingerprint BLOB NOT NULL,"
    "  must_change INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL) STRICT;"
    "CREATE INDEX sessions_user ON sessions (user_id);",
    /* 3: vouchers, vaccinations, corrections, imports (R2.3, R2.4, R2.6,
     * R2.9, R2.10; see store_records.h and docs/storage.md).  Children name
     * their resident with a real foreign key; the partial unique index lets
     * a voided dose be entered again. */
    "CREATE TABLE vouchers ("
    "  tenant_id TEXT NOT NULL,"
    "  voucher_no TEXT NOT NULL CHECK (length(voucher_no) = 10),"
    "  resident_id INTEGER NOT NULL,"
    "  ticket_type INTEGER NOT NULL CHECK (ticket_type BETWEEN 0 AND 9),"
    "  issued_date TEXT NOT NULL,"
    "  voided INTEGER NOT NULL DEFAULT 0 CHECK (voided IN (0, 1)),"
    "  created_at TEXT NOT NULL,"
    "  PRIMARY KEY (tenant_id, voucher_no),"
    "  FOREIGN KEY (tenant_id, resident_id) REFERENCES residents (tenant_id, resident_id)"
    ") STRICT;"
    "CREATE INDEX vouchers_resident ON vouchers (tenant_id, resident_id);"
    "CREATE TABLE vaccinations ("
    "  tenant_id TEXT NOT NULL,"
    "  vaccination_id INTEGER NOT NULL,"
    "  resident_id INTEGER NOT NULL,"
    "  vaccine TEXT NOT NULL,"
    "  dose INTEGER NOT NULL CHECK (dose BETWEEN 1 AND 99),"
    "  vaccinated_on TEXT NOT NULL,"
    "  voucher_no TEXT CHECK (voucher_no IS NULL OR length(voucher_no) = 10),"
    "  entered_by TEXT NOT NULL,"
    "  entered_at TEXT NOT NULL,"
    "  voided INTEGER NOT NULL DEFAULT 0 CHECK (voided IN (0, 1)),"
    "  key_version INTEGER NOT NULL,"
    "  details_ct BLOB NOT NULL,"
    "  PRIMARY KEY (tenant_id, vaccination_id),"
    "  FOREIGN KEY (tenant_id, resident_id) REFERENCES residents (tenant_id, resident_id)"
    ") STRICT;"
    "CREATE UNIQUE INDEX vaccinations_dose ON vaccinations "
    "  (tenant_id, resident_id, vaccine, dose) WHERE voided = 0;"
    "CREATE INDEX vaccinations_resident ON vaccinations (tenant_id, resident_id);"
    "CREATE INDEX vaccinations_keyver ON vaccinations (tenant_id, key_version);"
    "CREATE TABLE corrections ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  correction_id INTEGER NOT NULL,"
    "  object TEXT NOT NULL CHECK (object IN ('resident', 'vaccination')),"
    "  object_id INTEGER NOT NULL,"
    "  corrected_at TEXT NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  key_version INTEGER NOT NULL,"
    "  reason_ct BLOB NOT NULL, before_ct BLOB NOT NULL, after_ct BLOB NOT NULL,"
    "  PRIMARY KEY (tenant_id, correction_id)) STRICT;"
    "CREATE INDEX corrections_object ON corrections (tenant_id, object, object_id);"
    "CREATE INDEX corrections_keyver ON corrections (tenant_id, key_version);"
    "CREATE TABLE imports ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  sha256 BLOB NOT NULL CHECK (length(sha256) = 32),"
    "  kind TEXT NOT NULL CHECK (kind IN ('residents', 'vouchers', 'vaccinations')),"
    "  row_count INTEGER NOT NULL CHECK (row_count >= 0),"
    "  actor TEXT NOT NULL,"
    "  imported_at TEXT NOT NULL,"
    "  PRIMARY KEY (tenant_id, sha256)) STRICT;"
    "CREATE INDEX residents_ceased ON residents (tenant_id, ceased_ym);"
    "CREATE INDEX idempotency_row ON idempotency (tenant_id, row_id);",
    /* 4: site-device credentials (R1.5, see store_site.h): only the hash
     * of a device's token is kept. */
    "CREATE TABLE site_devices ("
    "  device_id TEXT PRIMARY KEY CHECK (length(device_id) = 19),"
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  name TEXT NOT NULL,"
    "  token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),"
    "  state TEXT NOT NULL CHECK (state IN ('active', 'revoked')),"
    "  created_at TEXT NOT NULL, changed_at TEXT NOT NULL) STRICT;"
    "CREATE INDEX site_devices_tenant ON site_devices (tenant_id);",
    /* 5: transfer inquiries between tenants: consents, inquiry and provision
     * records, undeliverable messages, bulk jobs and their rows (R3.1-R3.5,
     * R9.5; see store_transfer.h and docs/transfer.md).  Resident ids have
     * no foreign key: a record outlives a resident that retention deletes.
     * The trigger empties the tenant's rows in the same UPDATE that marks
     * it erased (R1.4), so the erase code needs no change. */
    "CREATE TABLE transfer_consents ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  consent_id TEXT NOT NULL CHECK (length(consent_id) = 16),"
    "  subject BLOB NOT NULL CHECK (length(subject) = 32),"
    "  affair TEXT NOT NULL, id_check TEXT NOT NULL, checked_on TEXT NOT NULL,"
    "  checked_by TEXT NOT NULL, created_at TEXT NOT NULL,"
    "  PRIMARY KEY (tenant_id, consent_id)) STRICT;"
    "CREATE TABLE transfer_inquiries ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  inquiry_id TEXT NOT NULL CHECK (length(inquiry_id) = 32),"
    "  to_tenant TEXT NOT NULL, affair TEXT NOT NULL, consent_id TEXT NOT NULL,"
    "  subject BLOB NOT NULL CHECK (length(subject) = 32),"
    "  resident_id INTEGER NOT NULL, actor TEXT NOT NULL,"
    "  mode TEXT NOT NULL CHECK (mode IN ('single', 'bulk')), job_id TEXT,"
    "  sent_at TEXT NOT NULL, answered_at TEXT NOT NULL,"
    "  outcome TEXT NOT NULL CHECK (outcome IN ('found', 'no_record', 'failed')),"
    "  items TEXT NOT NULL, doses INTEGER NOT NULL,"
    "  registered INTEGER NOT NULL DEFAULT 0 CHECK (registered IN (0, 1)),"
    "  key_version INTEGER NOT NULL, result_ct BLOB NOT NULL,"
    "  PRIMARY KEY (tenant_id, inquiry_id)) STRICT;"
    "CREATE INDEX transfer_inquiries_time ON transfer_inquiries (tenant_id, sent_at);"
    "CREATE INDEX transfer_inquiries_resident ON transfer_inquiries (tenant_id, resident_id);"
    "CREATE TABLE transfer_provisions ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  provision_id TEXT NOT NULL CHECK (length(provision_id) = 32),"
    "  inquiry_id TEXT NOT NULL, from_tenant TEXT NOT NULL, affair TEXT NOT NULL,"
    "  consent_ref TEXT NOT NULL, subject BLOB NOT NULL CHECK (length(subject) = 32),"
    "  resident_id INTEGER, mode TEXT NOT NULL CHECK (mode IN ('single', 'bulk')),"
    "  received_at TEXT NOT NULL, answered_at TEXT NOT NULL,"
    "  outcome TEXT NOT NULL CHECK (outcome IN ('found', 'no_record')),"
    "  items TEXT NOT NULL, doses INTEGER NOT NULL,"
    "  PRIMARY KEY (tenant_id, provision_id), UNIQUE (tenant_id, inquiry_id)) STRICT;"
    "CREATE INDEX transfer_provisions_time ON transfer_provisions (tenant_id, answered_at);"
    "CREATE INDEX transfer_provisions_resident ON transfer_provisions (tenant_id, resident_id);"
    "CREATE TABLE transfer_undelivered ("
    "  from_tenant TEXT NOT NULL, message_id TEXT NOT NULL, to_code TEXT NOT NULL,"
    "  at TEXT NOT NULL, PRIMARY KEY (from_tenant, message_id)) STRICT;"
    "CREATE TABLE transfer_jobs ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  job_id TEXT NOT NULL CHECK (length(job_id) = 16),"
    "  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),"
    "  actor TEXT NOT NULL, role TEXT NOT NULL,"
    "  rows_total INTEGER NOT NULL, rows_done INTEGER NOT NULL DEFAULT 0,"
    "  created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,"
    "  runner TEXT, heartbeat INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (tenant_id, job_id)) STRICT;"
    "CREATE UNIQUE INDEX transfer_jobs_active ON transfer_jobs (tenant_id) "
    "  WHERE state IN ('queued', 'running');"
    "CREATE INDEX transfer_jobs_state ON transfer_jobs (state, created_at);"
    "CREATE TABLE transfer_job_rows ("
    "  tenant_id TEXT NOT NULL, job_id TEXT NOT NULL, row_no INTEGER NOT NULL,"
    "  prev_code TEXT NOT NULL, address_no TEXT NOT NULL, consent_id TEXT NOT NULL,"
    "  mynumber_ct BLOB, outcome TEXT, inquiry_id TEXT,"
    "  doses INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (tenant_id, job_id, row_no),"
    "  FOREIGN KEY (tenant_id, job_id) REFERENCES transfer_jobs (tenant_id, job_id)"
    ") STRICT;"
    "CREATE TRIGGER transfer_erase AFTER UPDATE OF state ON tenants "
    "  WHEN NEW.state = 'erased' BEGIN"
    "  DELETE FROM transfer_job_rows WHERE tenant_id = NEW.tenant_id;"
    "  DELETE FROM transfer_jobs WHERE tenant_id = NEW.tenant_id;"
    "  DELETE FROM transfer_inquiries WHERE tenant_id = NEW.tenant_id;"
    "  DELETE FROM transfer_provisions WHERE tenant_id = NEW.tenant_id;"
    "  DELETE FROM transfer_consents WHERE tenant_id = NEW.tenant_id;"
    "  DELETE FROM transfer_undelivered WHERE from_tenant = NEW.tenant_id;"
    "  END;",
    /* 6: import jobs of the HTTP API and the problems each kept (R2.6;
     * store_import.h).  No personal data: ids, counts, states, line
     * numbers, column names and reasons without values.  At most one job
     * queued or running per tenant (the partial unique index); the
     * trigger empties the tenant's rows when it is erased (R1.4). */
    "CREATE TABLE import_jobs ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  job_id TEXT NOT NULL CHECK (length(job_id) = 32),"
    "  kind TEXT NOT NULL CHECK (kind IN ('residents', 'vouchers', 'vaccinations')),"
    "  encoding TEXT NOT NULL CHECK (encoding IN ('utf-8', 'cp932')),"
    "  dry_run INTEGER NOT NULL CHECK (dry_run IN (0, 1)),"
    "  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'imported', 'already',"
    "    'checked', 'refused', 'failed', 'interrupted')),"
    "  actor TEXT NOT NULL, role TEXT NOT NULL, upload_bytes INTEGER NOT NULL,"
    "  row_count INTEGER NOT NULL DEFAULT 0, bad_lines INTEGER NOT NULL DEFAULT 0,"
    "  problem_count INTEGER NOT NULL DEFAULT 0, problems_kept INTEGER NOT NULL DEFAULT 0,"
    "  already_at TEXT, message TEXT, runner TEXT,"
    "  created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,"
    "  PRIMARY KEY (tenant_id, job_id)) STRICT;"
    "CREATE UNIQUE INDEX import_jobs_active ON import_jobs (tenant_id) "
    "  WHERE state IN ('queued', 'running');"
    "CREATE INDEX import_jobs_time ON import_jobs (tenant_id, created_at);"
    "CREATE TABLE import_job_problems ("
    "  tenant_id TEXT NOT NULL, job_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    "  line INTEGER NOT NULL, column_name TEXT NOT NULL, reason TEXT NOT NULL,"
    "  PRIMARY KEY (tenant_id, job_id, seq),"
    "  FOREIGN KEY (tenant_id, job_id) REFERENCES import_jobs (tenant_id, job_id)"
    ") STRICT;"
    "CREATE TRIGGER import_jobs_erase AFTER UPDATE OF state ON tenants "
    "  WHEN NEW.state = 'erased' BEGIN"
    "  DELETE FROM import_job_problems WHERE tenant_id = NEW.tenant_id;"
    "  DELETE FROM import_jobs WHERE tenant_id = NEW.tenant_id;"
    "  END;",
    /* 7: the staff IDs of erased tenants (R6.1, R1.1).  A tenant erase
     * deletes its staff, but an ID the audit log names is never given to
     * another person: it stays here, without its tenant.  Creating a
     * staff row with a retired ID copies the retired row onto itself, a
     * primary-key clash, so the caller sees what a taken ID gives
     * (STORE_EXISTS); RAISE() would be a trigger error instead. */
    "CREATE TABLE staff_ids_retired ("
    "  user_id TEXT PRIMARY KEY, retired_at TEXT NOT NULL) STRICT;"
    "CREATE TRIGGER staff_id_retired BEFORE INSERT ON staff "
    "  WHEN EXISTS (SELECT 1 FROM staff_ids_retired WHERE user_id = NEW.user_id) BEGIN"
    "  INSERT INTO staff_ids_retired (user_id, retired_at)"
    "    SELECT user_id, retired_at FROM staff_ids_retired WHERE user_id = NEW.user_id;"
    "  END;",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum {
    Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_TENANT_CREATE, Q_TENANT_STATE,
    Q_ERASE_IDEM, Q_ERASE_RES, Q_ERASE_TENANT, Q_COUNTS, Q_IDEM_GET,
    Q_IDEM_PUT, Q_NEXT_ID, Q_INSERT, Q_UPDATE, Q_LOAD_ID, Q_LOAD_ADDR,
    Q_FIND_MN, Q_FIND_NAME, Q_STALE, Q_ERASE_COR, Q_ERASE_VAC, Q_ERASE_VOU,
    Q_ERASE_IMP, Q_REC_VAC, Q_REC_COR, Q_ERASE_SES, Q_ERASE_STAFF, Q_ERASE_TERM,
    Q_ERASE_SITE, Q_RETIRE_IDS, Q_COUNT
};

#define LOAD_COLS "resident_id, address_no, key_version, birth_year, " \
    "ceased_ym, created_at, "

static const char *const fixed_sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_TENANT_CREATE] = "INSERT INTO tenants (tenant_id, state, created_at, "
        "changed_at) VALUES (?1, 'active', ?2, ?2)",
    [Q_TENANT_STATE] = "SELECT state FROM tenants WHERE tenant_id = ?1",
    [Q_ERASE_IDEM] = "DELETE FROM idempotency WHERE tenant_id = ?1",
    [Q_ERASE_RES] = "DELETE FROM residents WHERE tenant_id = ?1",
    /* Children before the residents they name (foreign keys). */
    [Q_ERASE_COR] = "DELETE FROM corrections WHERE tenant_id = ?1",
    [Q_ERASE_VAC] = "DELETE FROM vaccinations WHERE tenant_id = ?1",
    [Q_ERASE_VOU] = "DELETE FROM vouchers WHERE tenant_id = ?1",
    [Q_ERASE_IMP] = "DELETE FROM imports WHERE tenant_id = ?1",
    /* Identity rows (R1.1): sessions before the staff they name; a
     * session is the tenant's by its own column or by its account. */
    [Q_ERASE_SES] = "DELETE FROM sessions WHERE tenant_id = ?1 OR user_id IN "
        "(SELECT user_id FROM staff WHERE tenant_id = ?1)",
    [Q_RETIRE_IDS] = "INSERT INTO staff_ids_retired (user_id, retired_at) "
        "SELECT user_id, ?2 FROM staff WHERE tenant_id = ?1 ON CONFLICT DO NOTHING",
    [Q_ERASE_STAFF] = "DELETE FROM staff WHERE tenant_id = ?1",
    [Q_ERASE_TERM] = "DELETE FROM terminals WHERE tenant_id = ?1",
    [Q_ERASE_SITE] = "DELETE FROM site_devices WHERE tenant_id = ?1",
    [Q_REC_VAC] = "SELECT coalesce(max(vaccination_id), 0) + 1 FROM vaccinations "
        "WHERE tenant_id = ?1",
    [Q_REC_COR] = "SELECT coalesce(max(correction_id), 0) + 1 FROM corrections "
        "WHERE tenant_id = ?1",
    [Q_ERASE_TENANT] = "UPDATE tenants SET state = 'erased', changed_at = ?2 "
        "WHERE tenant_id = ?1",
    [Q_COUNTS] = "SELECT (SELECT count(*) FROM tenants WHERE state = 'active' "
        "AND (?1 IS NULL OR tenant_id = ?1)), (SELECT count(*) FROM residents "
        "WHERE ?1 IS NULL OR tenant_id = ?1), (SELECT count(*) FROM idempotency "
        "WHERE ?1 IS NULL OR tenant_id = ?1)",
    [Q_IDEM_GET] = "SELECT op, row_id FROM idempotency WHERE tenant_id = ?1 "
        "AND idem_key = ?2",
    [Q_IDEM_PUT] = "INSERT INTO idempotency (tenant_id, idem_key, op, row_id, "
        "created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_NEXT_ID] = "SELECT coalesce(max(resident_id), 0) + 1 FROM residents "
        "WHERE tenant_id = ?1",
    /* The lookups name their index: without statistics SQLite would walk
     * the primary key for the ORDER BY, reading every row of the tenant
     * (an O(N) lookup; bench_store shows p50/p99 with N rows loaded). */
    [Q_FIND_MN] = "SELECT resident_id FROM residents INDEXED BY residents_mynumber "
        "WHERE tenant_id = ?1 AND mynumber_bidx = ?2 ORDER BY resident_id LIMIT ?3",
    [Q_FIND_NAME] = "SELECT resident_id FROM residents INDEXED BY residents_name "
        "WHERE tenant_id = ?1 AND name_bidx = ?2 UNION "
        "SELECT resident_id FROM residents INDEXED BY residents_kana "
        "WHERE tenant_id = ?1 AND kana_bidx = ?2 ORDER BY 1 LIMIT ?3",
    [Q_STALE] = "SELECT resident_id FROM residents INDEXED BY residents_keyver "
        "WHERE tenant_id = ?1 AND key_version < ?2 ORDER BY resident_id LIMIT ?3",
};

struct sq {
    sqlite3      *db;
    sqlite3_stmt *q[Q_COUNT];
    char         *sql[Q_COUNT];     /* built at open: insert, update, loads */
};

/* SQLite result code to store status.  I/O, full disk and corruption put
 * durability in doubt and are fatal for the handle (R9.6). */
static enum store_status
map(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_ROW: case SQLITE_DONE:
        return STORE_OK;
    case SQLITE_BUSY: case SQLITE_LOCKED:
        return STORE_BUSY;
    case SQLITE_CONSTRAINT:
        return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ?
            STORE_EXISTS : STORE_INVALID;
    case SQLITE_IOERR: case SQLITE_FULL: case SQLITE_CORRUPT: case SQLITE_NOTADB:
        return STORE_FATAL;
    default:
        return STORE_ERROR;
    }
}

static char *
build_sql(const char *fmt, const char *a, const char *b)
{
    size_t n = strlen(fmt) + strlen(a) + strlen(b) + 1;
    char *s = malloc(n);

    if (s != NULL)
        snprintf(s, n, fmt, a, b);
    return s;
}

/* Statements that list the 17 ciphertext columns are built from
 * store_rescols so the SQL and the AD names cannot drift apart. */
static int
build_dynamic(struct sq *c)
{
    char cols[1024], ph[512], set[1536];
    size_t off = 0, soff = 0;

    if (store_ct_columns(cols, sizeof(cols)) != 0)
        return -1;
    for (int i = 0; i < RES_NCT; i++) {
        off += (size_t)snprintf(ph + off, sizeof(ph) - off, ", ?%d", 11 + i);
        soff += (size_t)snprintf(set + soff, sizeof(set) - soff, ", %s_ct = ?%d",
                                 store_rescols[i].name, 4 + i);
    }
    c->sql[Q_INSERT] = build_sql("INSERT INTO residents (tenant_id, resident_id, "
        "address_no, key_version, birth_year, ceased_ym, mynumber_bidx, name_bidx, "
        "kana_bidx, created_at, %s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
        "?10%s)", cols, ph);
    c->sql[Q_UPDATE] = build_sql("UPDATE residents SET key_version = ?3%s%s "
        "WHERE tenant_id = ?1 AND resident_id = ?2", set, "");
    c->sql[Q_LOAD_ID] = build_sql("SELECT " LOAD_COLS "%s FROM residents "
        "WHERE tenant_id = ?1 AND resident_id = ?2%s", cols, "");
    c->sql[Q_LOAD_ADDR] = build_sql("SELECT " LOAD_COLS "%s FROM residents "
        "WHERE tenant_id = ?1 AND address_no = ?2%s", cols, "");
    for (int i = 0; i < Q_COUNT; i++)
        if (fixed_sql[i] == NULL && c->sql[i] == NULL)
            return -1;
    return 0;
}

static sqlite3_stmt *
stmt(struct sq *c, int q)
{
    if (c->q[q] == NULL) {
        const char *sql = fixed_sql[q] != NULL ? fixed_sql[q] : c->sql[q];
        if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                               &c->q[q], NULL) != SQLITE_OK) {
            log_error("store_sqlite", "prepare failed: %s", sqlite3_errmsg(c->db));
            return NULL;
        }
    }
    return c->q[q];
}

/* Step a statement that returns no rows, then reset it. */
static enum store_status
exec_q(sqlite3_stmt *s)
{
    int rc = s != NULL ? sqlite3_step(s) : SQLITE_ERROR;

    if (s != NULL) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    return rc == SQLITE_DONE ? STORE_OK : map(rc == SQLITE_ROW ? SQLITE_ERROR : rc);
}

static void
done_q(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Read a one-text-column pragma answer. */
static int
pragma_text(sqlite3 *db, const char *sql, char *out, size_t outsz)
{
    sqlite3_stmt *s;
    int rc = -1;

    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL) {
        snprintf(out, outsz, "%s", (const char *)sqlite3_column_text(s, 0));
        rc = 0;
    }
    sqlite3_finalize(s);
    return rc;
}

static void
sq_close(void *conn)
{
    struct sq *c = conn;

    if (c == NULL)
        return;
    for (int i = 0; i < Q_COUNT; i++) {
        sqlite3_finalize(c->q[i]);
        free(c->sql[i]);
    }
    sqlite3_close_v2(c->db);
    free(c);
}

static enum store_status
sq_open(const struct store *st, void **out)
{
    struct sq *c = calloc(1, sizeof(*c));
    char mode[16] = "", sync[8] = "";

    if (c == NULL)
        return STORE_ERROR;
    /* One connection per thread at a time (the pool), so no SQLite mutex. */
    if (sqlite3_open_v2(st->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK)
        goto fail;
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, (int)st->busy_timeout_ms);
    /* synchronous reads back as 2 for FULL: every commit is fsync'd. */
    if (sqlite3_exec(c->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
                     "PRAGMA secure_delete = ON; PRAGMA trusted_schema = OFF;"
                     "PRAGMA cache_size = -16384;",
                     NULL, NULL, NULL) != SQLITE_OK ||
        pragma_text(c->db, "PRAGMA journal_mode = WAL", mode, sizeof(mode)) != 0 ||
        strcmp(mode, "wal") != 0 ||
        pragma_text(c->db, "PRAGMA synchronous", sync, sizeof(sync)) != 0 ||
        strcmp(sync, "2") != 0 || build_dynamic(c) != 0)
        goto fail;
    *out = c;
    return STORE_OK;
fail:
    log_error("store_sqlite", "cannot open database (journal %s, sync %s): %s",
              mode, sync, c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
    sq_close(c);
    return STORE_ERROR;
}

static enum store_status
sq_begin(void *conn)
{
    /* IMMEDIATE takes the write lock now, so id allocation is race-free. */
    return exec_q(stmt(conn, Q_BEGIN));
}

static enum store_status
sq_commit(void *conn)
{
    struct sq *c = conn;
    sqlite3_stmt *s = stmt(c, Q_COMMIT);
    int rc = s != NULL ? sqlite3_step(s) : SQLITE_ERROR;

    if (s != NULL)
        sqlite3_reset(s);
    if (rc == SQLITE_DONE)
        return STORE_OK;
    /* Never retried: the outcome is unknown (R9.6). */
    log_error("store_sqlite", "commit failed: %s", sqlite3_errmsg(c->db));
    return STORE_FATAL;
}

static void
sq_rollback(void *conn)
{
    struct sq *c = conn;

    if (!sqlite3_get_autocommit(c->db))
        (void)exec_q(stmt(c, Q_ROLLBACK));
}

static enum store_status
sq_schema_version(void *conn, int *v)
{
    struct sq *c = conn;
    sqlite3_stmt *s;
    int rc;

    if (sqlite3_prepare_v2(c->db, "SELECT count(*) FROM sqlite_schema WHERE "
                           "type = 'table' AND name = 'schema_migrations'", -1,
                           &s, NULL) != SQLITE_OK)
        return map(sqlite3_errcode(c->db));
    rc = sqlite3_step(s);
    *v = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    sqlite3_finalize(s);
    if (*v < 0)
        return map(rc);
    if (*v == 0)
        return STORE_OK;        /* a new database */
    if (sqlite3_prepare_v2(c->db, "SELECT coalesce(max(version), 0) FROM "
                           "schema_migrations", -1, &s, NULL) != SQLITE_OK)
        return map(sqlite3_errcode(c->db));
    rc = sqlite3_step(s);
    *v = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? STORE_OK : map(rc);
}

static int
sq_migrations(void)
{
    return NMIGRATIONS;
}

static enum store_status
sq_migrate_one(void *conn, int version, const char *now)
{
    struct sq *c = conn;
    sqlite3_stmt *s;
    int rc;

    if (version < 1 || version > NMIGRATIONS)
        return STORE_VERSION;
    if ((rc = sqlite3_exec(c->db, migrations[version - 1], NULL, NULL, NULL)) != SQLITE_OK) {
        log_error("store_sqlite", "migration %d failed: %s", version,
                  sqlite3_errmsg(c->db));
        return map(rc);
    }
    if (sqlite3_prepare_v2(c->db, "INSERT INTO schema_migrations (version, "
                           "applied_at) VALUES (?1, ?2)", -1, &s, NULL) != SQLITE_OK)
        return map(sqlite3_errcode(c->db));
    sqlite3_bind_int(s, 1, version);
    sqlite3_bind_text(s, 2, now, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? STORE_OK : map(rc);
}

static enum store_status
sq_tenant_create(void *conn, const char *t, const char *now)
{
    sqlite3_stmt *s = stmt(conn, Q_TENANT_CREATE);

    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, now, -1, SQLITE_STATIC);
    return exec_q(s);
}

static enum store_status
sq_tenant_state(void *conn, const char *t, char state[16])
{
    sqlite3_stmt *s = stmt(conn, Q_TENANT_STATE);
    int rc;

    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        snprintf(state, 16, "%s", (const char *)sqlite3_column_text(s, 0));
    done_q(s);
    return rc == SQLITE_ROW ? STORE_OK : rc == SQLITE_DONE ? STORE_NOTFOUND : map(rc);
}

static enum store_status
bind_tenant_exec(struct sq *c, int q, const char *t, const char *now)
{
    sqlite3_stmt *s = stmt(c, q);

    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    if (now != NULL)
        sqlite3_bind_text(s, 2, now, -1, SQLITE_STATIC);
    return exec_q(s);
}

static enum store_status
sq_tenant_erase(void *conn, const char *t, const char *now)
{
    /* The transfer and import-job tables are emptied by their triggers
     * (migrations 5 and 6) when the UPDATE marks the tenant erased. */
    static const int order[] = { Q_ERASE_SES, Q_ERASE_STAFF, Q_ERASE_TERM, Q_ERASE_SITE,
                                 Q_ERASE_IDEM, Q_ERASE_COR, Q_ERASE_VAC, Q_ERASE_VOU,
                                 Q_ERASE_IMP, Q_ERASE_RES };
    struct sq *c = conn;
    enum store_status rc;

    /* R6.1: its staff IDs stay taken once the staff rows are gone. */
    rc = bind_tenant_exec(c, Q_RETIRE_IDS, t, now);
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && rc == STORE_OK; i++)
        rc = bind_tenant_exec(c, order[i], t, NULL);
    if (rc == STORE_OK)
        rc = bind_tenant_exec(c, Q_ERASE_TENANT, t, now);
    if (rc == STORE_OK && sqlite3_changes(c->db) != 1)
        rc = STORE_NOTFOUND;
    return rc;
}

static void
sq_after_erase(void *conn)
{
    struct sq *c = conn;

    /* Fold the WAL (which still holds the deleted pages, or a whole
     * import) into the database file and truncate it. */
    if (sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                  NULL, NULL) != SQLITE_OK)
        log_warn("store_sqlite", "checkpoint after erase or import: %s",
                 sqlite3_errmsg(c->db));
}

static enum store_status
sq_counts(void *conn, const char *t, struct store_counts *o)
{
    sqlite3_stmt *s = stmt(conn, Q_COUNTS);
    int rc;

    if (s == NULL)
        return STORE_ERROR;
    if (t != NULL)
        sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        o->tenants = (uint64_t)sqlite3_column_int64(s, 0);
        o->residents = (uint64_t)sqlite3_column_int64(s, 1);
        o->idempotency = (uint64_t)sqlite3_column_int64(s, 2);
    }
    done_q(s);
    return rc == SQLITE_ROW ? STORE_OK : map(rc);
}

static enum store_status
sq_idem_get(void *conn, const char *t, const char *key, const char *op, int64_t *id)
{
    sqlite3_stmt *s = stmt(conn, Q_IDEM_GET);
    enum store_status st;
    int rc;

    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        st = strcmp((const char *)sqlite3_column_text(s, 0), op) == 0 ?
            STORE_OK : STORE_EXISTS;
        *id = sqlite3_column_int64(s, 1);
    } else
        st = rc == SQLITE_DONE ? STORE_NOTFOUND : map(rc);
    done_q(s);
    return st;
}

static enum store_status
sq_idem_put(void *conn, const char *t, const char *key, const char *op,
            int64_t id, const char *now)
{
    sqlite3_stmt *s = stmt(conn, Q_IDEM_PUT);

    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, op, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, id);
    sqlite3_bind_text(s, 5, now, -1, SQLITE_STATIC);
    return exec_q(s);
}

/* BEGIN IMMEDIATE holds the write lock, so max + 1.. is ours alone. */
static enum store_status
sq_next_ids(void *conn, const char *t, size_t n, int64_t *ids)
{
    sqlite3_stmt *s = stmt(conn, Q_NEXT_ID);
    int64_t base = 0;
    int rc;

    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        base = sqlite3_column_int64(s, 0);
    done_q(s);
    for (size_t i = 0; i < n; i++)
        ids[i] = base + (int64_t)i;
    return rc == SQLITE_ROW ? STORE_OK : map(rc);
}

/* Record ids the same way: the write lock makes max + 1.. ours. */
static enum store_status
sq_rec_ids(void *conn, const char *t, enum rec_table table, size_t n, int64_t *ids)
{
    sqlite3_stmt *s = stmt(conn, table == REC_VACCINATIONS ? Q_REC_VAC : Q_REC_COR);
    int64_t base = 0;
    int rc;

    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        base = sqlite3_column_int64(s, 0);
    done_q(s);
    for (size_t i = 0; i < n; i++)
        ids[i] = base + (int64_t)i;
    return rc == SQLITE_ROW ? STORE_OK : map(rc);
}

static void
bind_cts(sqlite3_stmt *s, const struct enc_resident *e, int first)
{
    for (int i = 0; i < RES_NCT; i++)
        sqlite3_bind_blob(s, first + i, e->ct[i], (int)e->ct_len[i], SQLITE_STATIC);
}

static enum store_status
sq_res_insert(void *conn, const struct enc_resident *e)
{
    sqlite3_stmt *s = stmt(conn, Q_INSERT);

    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, e->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, e->id);
    sqlite3_bind_text(s, 3, e->address_no, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, e->key_version);
    sqlite3_bind_int(s, 5, e->birth_year);
    if (e->ceased_ym[0] != '\0')
        sqlite3_bind_text(s, 6, e->ceased_ym, -1, SQLITE_STATIC);
    if (e->has_mynumber_bidx)
        sqlite3_bind_blob(s, 7, e->mynumber_bidx, BIDX_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(s, 8, e->name_bidx, BIDX_LEN, SQLITE_STATIC);
    if (e->has_kana_bidx)
        sqlite3_bind_blob(s, 9, e->kana_bidx, BIDX_LEN, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, e->created_at, -1, SQLITE_STATIC);
    bind_cts(s, e, 11);
    return exec_q(s);
}

static enum store_status
sq_res_update(void *conn, const struct enc_resident *e)
{
    struct sq *c = conn;
    sqlite3_stmt *s = stmt(c, Q_UPDATE);
    enum store_status rc;

    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, e->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, e->id);
    sqlite3_bind_int64(s, 3, e->key_version);
    bind_cts(s, e, 4);
    rc = exec_q(s);
    return rc == STORE_OK && sqlite3_changes(c->db) != 1 ? STORE_NOTFOUND : rc;
}

static void
copy_text(sqlite3_stmt *s, int col, char *out, size_t outsz)
{
    const unsigned char *v = sqlite3_column_text(s, col);

    snprintf(out, outsz, "%s", v != NULL ? (const char *)v : "");
}

/* Row (LOAD_COLS + cts) into e; STORE_KEY if a ciphertext is oversized. */
static enum store_status
read_row(sqlite3_stmt *s, const char *t, struct enc_resident *e)
{
    snprintf(e->tenant, sizeof(e->tenant), "%s", t);
    e->id = sqlite3_column_int64(s, 0);
    copy_text(s, 1, e->address_no, sizeof(e->address_no));
    e->key_version = (uint32_t)sqlite3_column_int64(s, 2);
    e->birth_year = sqlite3_column_int(s, 3);
    copy_text(s, 4, e->ceased_ym, sizeof(e->ceased_ym));
    copy_text(s, 5, e->created_at, sizeof(e->created_at));
    for (int i = 0; i < RES_NCT; i++) {
        const void *b = sqlite3_column_blob(s, 6 + i);
        int n = sqlite3_column_bytes(s, 6 + i);
        if (b == NULL || n <= 0 || (size_t)n > RES_CT_SLOT)
            return STORE_KEY;
        memcpy(e->ct[i], b, (size_t)n);
        e->ct_len[i] = (size_t)n;
    }
    return STORE_OK;
}

static enum store_status
sq_res_load(void *conn, const char *t, enum res_lookup by, int64_t id,
            const char *addrno, struct enc_resident *e)
{
    sqlite3_stmt *s = stmt(conn, by == RES_BY_ID ? Q_LOAD_ID : Q_LOAD_ADDR);
    enum store_status st;
    int rc;

    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    if (by == RES_BY_ID)
        sqlite3_bind_int64(s, 2, id);
    else
        sqlite3_bind_text(s, 2, addrno, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    st = rc == SQLITE_ROW ? read_row(s, t, e) :
        rc == SQLITE_DONE ? STORE_NOTFOUND : map(rc);
    done_q(s);
    return st;
}

/* Collect up to `max` ids from a (tenant, key, limit) query. */
static enum store_status
collect_ids(sqlite3_stmt *s, int64_t *ids, size_t max, size_t *n)
{
    int rc;

    sqlite3_bind_int64(s, 3, (sqlite3_int64)max);
    *n = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && *n < max)
        ids[(*n)++] = sqlite3_column_int64(s, 0);
    done_q(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? STORE_OK : map(rc);
}

static enum store_status
sq_res_find(void *conn, const char *t, enum res_index idx, const uint8_t *bidx,
            int64_t *ids, size_t max, size_t *n)
{
    sqlite3_stmt *s = stmt(conn, idx == RES_IDX_MYNUMBER ? Q_FIND_MN : Q_FIND_NAME);

    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, bidx, BIDX_LEN, SQLITE_STATIC);
    return collect_ids(s, ids, max, n);
}

static enum store_status
sq_res_stale(void *conn, const char *t, uint32_t below, int64_t *ids, size_t max,
             size_t *n)
{
    sqlite3_stmt *s = stmt(conn, Q_STALE);

    if (s == NULL)
        return STORE_ERROR;
    sqlite3_bind_text(s, 1, t, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, below);
    return collect_ids(s, ids, max, n);
}

/* ---- generic query (identity tables, store_auth.c) ------------------------ */

static enum store_status
sq_col(sqlite3_stmt *s, int i, const struct qcol *c)
{
    int n = sqlite3_column_bytes(s, i);
    const void *v;

    switch (c->t) {
    case QT_TEXT:
        v = sqlite3_column_text(s, i);
        if ((size_t)n >= c->ssz)
            return STORE_ERROR;
        if (v != NULL)
            memcpy(c->s, v, (size_t)n);
        c->s[v != NULL ? n : 0] = '\0';
        return STORE_OK;
    case QT_INT:
        *c->i = sqlite3_column_int64(s, i);
        return STORE_OK;
    case QT_BLOB:
        v = sqlite3_column_blob(s, i);
        if ((size_t)n > c->bsz)
            return STORE_ERROR;
        if (v != NULL && n > 0)
            memcpy(c->b, v, (size_t)n);
        *c->blen = v != NULL ? (size_t)n : 0;
        return STORE_OK;
    case QT_NULL:
        return STORE_OK;
    }
    return STORE_ERROR;
}

static enum store_status
sq_query(void *conn, const char *sql, const struct qarg *a, size_t na,
         const struct qcol *cols, size_t nc, bool *found, int64_t *changes,
         int (*each)(void *ctx), void *ctx)
{
    struct sq *c = conn;
    char *text = strdup(sql);
    sqlite3_stmt *s = NULL;
    enum store_status st = STORE_OK;
    int rc;

    if (text == NULL)
        return STORE_ERROR;
    for (char *p = text; *p; p++)       /* $1 (PostgreSQL) is ?1 here */
        if (*p == '$')
            *p = '?';
    rc = sqlite3_prepare_v2(c->db, text, -1, &s, NULL);
    free(text);
    if (rc != SQLITE_OK) {
        log_error("store_sqlite", "prepare failed: %s", sqlite3_errmsg(c->db));
        return STORE_ERROR;
    }
    for (size_t i = 0; i < na; i++) {
        int k = (int)i + 1;
        switch (a[i].t) {
        case QT_TEXT: sqlite3_bind_text(s, k, a[i].s, -1, SQLITE_STATIC); break;
        case QT_INT: sqlite3_bind_int64(s, k, a[i].i); break;
        case QT_BLOB: sqlite3_bind_blob(s, k, a[i].b, (int)a[i].n, SQLITE_STATIC); break;
        case QT_NULL: sqlite3_bind_null(s, k); break;
        }
    }
    rc = sqlite3_step(s);
    if (found != NULL)
        *found = rc == SQLITE_ROW;
    while (rc == SQLITE_ROW) {
        for (size_t i = 0; i < nc && st == STORE_OK; i++)
            st = sq_col(s, (int)i, &cols[i]);
        if (each == NULL || st != STORE_OK || each(ctx) != 0)
            break;
        rc = sqlite3_step(s);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        st = map(rc);
    if (changes != NULL)
        *changes = sqlite3_changes(c->db);
    sqlite3_finalize(s);
    return st;
}

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .conn_open = sq_open,
    .conn_close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .schema_version = sq_schema_version,
    .migrations = sq_migrations,
    .migrate_one = sq_migrate_one,
    .tenant_create = sq_tenant_create,
    .tenant_state = sq_tenant_state,
    .tenant_erase = sq_tenant_erase,
    .after_erase = sq_after_erase,
    .counts = sq_counts,
    .idem_get = sq_idem_get,
    .idem_put = sq_idem_put,
    .next_ids = sq_next_ids,
    .rec_ids = sq_rec_ids,
    .id_in = "IN (SELECT value FROM json_each('[' || $2 || ']'))",
    .res_insert = sq_res_insert,
    .res_update = sq_res_update,
    .res_load = sq_res_load,
    .res_find = sq_res_find,
    .res_stale = sq_res_stale,
    .query = sq_query,
};
