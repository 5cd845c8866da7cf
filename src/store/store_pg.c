/*
 * store_pg.c - the PostgreSQL backend (libpq).
 *
 * Each connection forces synchronous_commit=on and refuses a server with
 * fsync off (R9.6).  Statements are prepared once per connection; bytea
 * parameters and all results travel in binary.  Personal tables lead
 * their primary keys with tenant_id (ready for distribution by tenant).
 */
#include "store/store_int.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

static const char *const migrations[] = {
    /* 1: tenants, residents, idempotency (R1.1, R2.1) */
    "CREATE TABLE schema_migrations ("
    "  version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);"
    "CREATE TABLE tenants ("
    "  tenant_id TEXT PRIMARY KEY CHECK (length(tenant_id) = 6),"
    "  state TEXT NOT NULL CHECK (state IN ('active', 'erased')),"
    "  created_at TEXT NOT NULL, changed_at TEXT NOT NULL);"
    "CREATE SEQUENCE resident_id_seq;"
    "CREATE TABLE residents ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  resident_id BIGINT NOT NULL,"
    "  address_no TEXT NOT NULL,"
    "  key_version BIGINT NOT NULL,"
    "  birth_year INTEGER NOT NULL,"
    "  ceased_ym TEXT,"
    "  mynumber_bidx BYTEA, name_bidx BYTEA NOT NULL, kana_bidx BYTEA,"
    "  mynumber_ct BYTEA NOT NULL, name_ct BYTEA NOT NULL, kana_ct BYTEA NOT NULL,"
    "  birth_date_ct BYTEA NOT NULL, sex_ct BYTEA NOT NULL, postcode_ct BYTEA NOT NULL,"
    "  address_ct BYTEA NOT NULL, katagaki_ct BYTEA NOT NULL,"
    "  household_no_ct BYTEA NOT NULL, relationship_ct BYTEA NOT NULL,"
    "  became_date_ct BYTEA NOT NULL, ceased_date_ct BYTEA NOT NULL,"
    "  movement_type_ct BYTEA NOT NULL, movement_date_ct BYTEA NOT NULL,"
    "  prev_address_ct BYTEA NOT NULL, next_address_ct BYTEA NOT NULL,"
    "  alias_ct BYTEA NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  PRIMARY KEY (tenant_id, resident_id),"
    "  UNIQUE (tenant_id, address_no));"
    "CREATE INDEX residents_mynumber ON residents (tenant_id, mynumber_bidx);"
    "CREATE INDEX residents_name ON residents (tenant_id, name_bidx);"
    "CREATE INDEX residents_kana ON residents (tenant_id, kana_bidx);"
    "CREATE INDEX residents_keyver ON residents (tenant_id, key_version);"
    "CREATE TABLE idempotency ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  idem_key TEXT NOT NULL, op TEXT NOT NULL, row_id BIGINT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  PRIMARY KEY (tenant_id, idem_key));",
    /* 2: staff accounts, terminals, sessions (R3.5, R6.1-R6.8, see store_auth.h) */
    "CREATE TABLE staff ("
    "  user_id TEXT PRIMARY KEY,"
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  role TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'disabled')),"
    "  pw_hash TEXT NOT NULL DEFAULT '',"
    "  pw_changed_at BIGINT NOT NULL DEFAULT 0,"
    "  must_change BIGINT NOT NULL DEFAULT 0,"
    "  failures BIGINT NOT NULL DEFAULT 0,"
    "  locked BIGINT NOT NULL DEFAULT 0,"
    "  totp_ct BYTEA,"
    "  totp_last_step BIGINT NOT NULL DEFAULT 0,"
    "  confirmed_at BIGINT NOT NULL,"
    "  enrol_hash BYTEA UNIQUE,"
    "  enrol_expires BIGINT NOT NULL DEFAULT 0,"
    "  created_at TEXT NOT NULL, changed_at TEXT NOT NULL);"
    "CREATE INDEX staff_tenant ON staff (tenant_id);"
    "CREATE TABLE terminals ("
    "  fingerprint BYTEA PRIMARY KEY CHECK (length(fingerprint) = 32),"
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  name TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('active', 'revoked')),"
    "  created_at TEXT NOT NULL, changed_at TEXT NOT NULL);"
    "CREATE TABLE sessions ("
    "  token_hash BYTEA PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES staff (user_id),"
    "  tenant_id TEXT NOT NULL,"
    "  role TEXT NOT NULL,"
    "  fingerprint BYTEA NOT NULL,"
    "  must_change BIGINT NOT NULL,"
    "  created_at BIGINT NOT NULL,"
    "  last_seen BIGINT NOT NULL);"
    "CREATE INDEX sessions_user ON sessions (user_id);",
    /* 3: vouchers, vaccinations, corrections, imports (R2.3, R2.4, R2.6,
     * R2.9, R2.10; see store_records.h and docs/storage.md).  Children name
     * their resident with a real foreign key; the partial unique index lets
     * a voided dose be entered again.  Record ids come from one sequence,
     * so concurrent writers of a tenant do not serialise on max() + 1. */
    "CREATE SEQUENCE record_id_seq;"
    "CREATE TABLE vouchers ("
    "  tenant_id TEXT NOT NULL,"
    "  voucher_no TEXT NOT NULL CHECK (length(voucher_no) = 10),"
    "  resident_id BIGINT NOT NULL,"
    "  ticket_type INTEGER NOT NULL CHECK (ticket_type BETWEEN 0 AND 9),"
    "  issued_date TEXT NOT NULL,"
    "  voided INTEGER NOT NULL DEFAULT 0 CHECK (voided IN (0, 1)),"
    "  created_at TEXT NOT NULL,"
    "  PRIMARY KEY (tenant_id, voucher_no),"
    "  FOREIGN KEY (tenant_id, resident_id) REFERENCES residents (tenant_id, resident_id));"
    "CREATE INDEX vouchers_resident ON vouchers (tenant_id, resident_id);"
    "CREATE TABLE vaccinations ("
    "  tenant_id TEXT NOT NULL,"
    "  vaccination_id BIGINT NOT NULL,"
    "  resident_id BIGINT NOT NULL,"
    "  vaccine TEXT NOT NULL,"
    "  dose INTEGER NOT NULL CHECK (dose BETWEEN 1 AND 99),"
    "  vaccinated_on TEXT NOT NULL,"
    "  voucher_no TEXT CHECK (voucher_no IS NULL OR length(voucher_no) = 10),"
    "  entered_by TEXT NOT NULL,"
    "  entered_at TEXT NOT NULL,"
    "  voided INTEGER NOT NULL DEFAULT 0 CHECK (voided IN (0, 1)),"
    "  key_version BIGINT NOT NULL,"
    "  details_ct BYTEA NOT NULL,"
    "  PRIMARY KEY (tenant_id, vaccination_id),"
    "  FOREIGN KEY (tenant_id, resident_id) REFERENCES residents (tenant_id, resident_id));"
    "CREATE UNIQUE INDEX vaccinations_dose ON vaccinations "
    "  (tenant_id, resident_id, vaccine, dose) WHERE voided = 0;"
    "CREATE INDEX vaccinations_resident ON vaccinations (tenant_id, resident_id);"
    "CREATE INDEX vaccinations_keyver ON vaccinations (tenant_id, key_version);"
    "CREATE TABLE corrections ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  correction_id BIGINT NOT NULL,"
    "  object TEXT NOT NULL CHECK (object IN ('resident', 'vaccination')),"
    "  object_id BIGINT NOT NULL,"
    "  corrected_at TEXT NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  key_version BIGINT NOT NULL,"
    "  reason_ct BYTEA NOT NULL, before_ct BYTEA NOT NULL, after_ct BYTEA NOT NULL,"
    "  PRIMARY KEY (tenant_id, correction_id));"
    "CREATE INDEX corrections_object ON corrections (tenant_id, object, object_id);"
    "CREATE INDEX corrections_keyver ON corrections (tenant_id, key_version);"
    "CREATE TABLE imports ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  sha256 BYTEA NOT NULL CHECK (length(sha256) = 32),"
    "  kind TEXT NOT NULL CHECK (kind IN ('residents', 'vouchers', 'vaccinations')),"
    "  row_count BIGINT NOT NULL CHECK (row_count >= 0),"
    "  actor TEXT NOT NULL,"
    "  imported_at TEXT NOT NULL,"
    "  PRIMARY KEY (tenant_id, sha256));"
    "CREATE INDEX residents_ceased ON residents (tenant_id, ceased_ym);"
    "CREATE INDEX idempotency_row ON idempotency (tenant_id, row_id);",
    /* 4: site-device credentials (R1.5, see store_site.h): only the hash
     * of a device's token is kept. */
    "CREATE TABLE site_devices ("
    "  device_id TEXT PRIMARY KEY CHECK (length(device_id) = 19),"
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  name TEXT NOT NULL,"
    "  token_hash BYTEA NOT NULL UNIQUE CHECK (length(token_hash) = 32),"
    "  state TEXT NOT NULL CHECK (state IN ('active', 'revoked')),"
    "  created_at TEXT NOT NULL, changed_at TEXT NOT NULL);"
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
    "  subject BYTEA NOT NULL CHECK (length(subject) = 32),"
    "  affair TEXT NOT NULL, id_check TEXT NOT NULL, checked_on TEXT NOT NULL,"
    "  checked_by TEXT NOT NULL, created_at TEXT NOT NULL,"
    "  PRIMARY KEY (tenant_id, consent_id));"
    "CREATE TABLE transfer_inquiries ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  inquiry_id TEXT NOT NULL CHECK (length(inquiry_id) = 32),"
    "  to_tenant TEXT NOT NULL, affair TEXT NOT NULL, consent_id TEXT NOT NULL,"
    "  subject BYTEA NOT NULL CHECK (length(subject) = 32),"
    "  resident_id BIGINT NOT NULL, actor TEXT NOT NULL,"
    "  mode TEXT NOT NULL CHECK (mode IN ('single', 'bulk')), job_id TEXT,"
    "  sent_at TEXT NOT NULL, answered_at TEXT NOT NULL,"
    "  outcome TEXT NOT NULL CHECK (outcome IN ('found', 'no_record', 'failed')),"
    "  items TEXT NOT NULL, doses BIGINT NOT NULL,"
    "  registered INTEGER NOT NULL DEFAULT 0 CHECK (registered IN (0, 1)),"
    "  key_version BIGINT NOT NULL, result_ct BYTEA NOT NULL,"
    "  PRIMARY KEY (tenant_id, inquiry_id));"
    "CREATE INDEX transfer_inquiries_time ON transfer_inquiries (tenant_id, sent_at);"
    "CREATE INDEX transfer_inquiries_resident ON transfer_inquiries (tenant_id, resident_id);"
    "CREATE TABLE transfer_provisions ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  provision_id TEXT NOT NULL CHECK (length(provision_id) = 32),"
    "  inquiry_id TEXT NOT NULL, from_tenant TEXT NOT NULL, affair TEXT NOT NULL,"
    "  consent_ref TEXT NOT NULL, subject BYTEA NOT NULL CHECK (length(subject) = 32),"
    "  resident_id BIGINT, mode TEXT NOT NULL CHECK (mode IN ('single', 'bulk')),"
    "  received_at TEXT NOT NULL, answered_at TEXT NOT NULL,"
    "  outcome TEXT NOT NULL CHECK (outcome IN ('found', 'no_record')),"
    "  items TEXT NOT NULL, doses BIGINT NOT NULL,"
    "  PRIMARY KEY (tenant_id, provision_id), UNIQUE (tenant_id, inquiry_id));"
    "CREATE INDEX transfer_provisions_time ON transfer_provisions (tenant_id, answered_at);"
    "CREATE INDEX transfer_provisions_resident ON transfer_provisions (tenant_id, resident_id);"
    "CREATE TABLE transfer_undelivered ("
    "  from_tenant TEXT NOT NULL, message_id TEXT NOT NULL, to_code TEXT NOT NULL,"
    "  at TEXT NOT NULL, PRIMARY KEY (from_tenant, message_id));"
    "CREATE TABLE transfer_jobs ("
    "  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),"
    "  job_id TEXT NOT NULL CHECK (length(job_id) = 16),"
    "  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),"
    "  actor TEXT NOT NULL, role TEXT NOT NULL,"
    "  rows_total BIGINT NOT NULL, rows_done BIGINT NOT NULL DEFAULT 0,"
    "  created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,"
    "  runner TEXT, heartbeat BIGINT NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (tenant_id, job_id));"
    "CREATE UNIQUE INDEX transfer_jobs_active ON transfer_jobs (tenant_id) "
    "  WHERE state IN ('queued', 'running');"
    "CREATE INDEX transfer_jobs_state ON transfer_jobs (state, created_at);"
    "CREATE TABLE transfer_job_rows ("
    "  tenant_id TEXT NOT NULL, job_id TEXT NOT NULL, row_no BIGINT NOT NULL,"
    "  prev_code TEXT NOT NULL, address_no TEXT NOT NULL, consent_id TEXT NOT NULL,"
    "  mynumber_ct BYTEA, outcome TEXT, inquiry_id TEXT,"
    "  doses BIGINT NOT NULL DEFAULT 0,"
    "  PRIMARY KEY (tenant_id, job_id, row_no),"
    "  FOREIGN KEY (tenant_id, job_id) REFERENCES transfer_jobs (tenant_id, job_id)"
    ");"
    "CREATE FUNCTION transfer_erase() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN "
    "  DELETE FROM transfer_job_rows WHERE tenant_id = NEW.tenant_id;"
    "  DELETE FROM transfer_jobs WHERE tenant_id = NEW.tenant_id;"
    "  DELETE FROM transfer_inquiries WHERE tenant_id = NEW.tenant_id;"
    "  DELETE FROM transfer_provisions WHERE tenant_id = NEW.tenant_id;"
    "  DELETE FROM transfer_consents WHERE tenant_id = NEW.tenant_id;"
    "  DELETE FROM transfer_undelivered WHERE from_tenant = NEW.tenant_id;"
    "  RETURN NULL; END';"
    "CREATE TRIGGER transfer_erase AFTER UPDATE OF state ON tenants FOR EACH ROW "
    "  WHEN (NEW.state = 'erased') EXECUTE FUNCTION transfer_erase();",
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
    "  dry_run BIGINT NOT NULL CHECK (dry_run IN (0, 1)),"
    "  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'imported', 'already',"
    "    'checked', 'refused', 'failed', 'interrupted')),"
    "  actor TEXT NOT NULL, role TEXT NOT NULL, upload_bytes BIGINT NOT NULL,"
    "  row_count BIGINT NOT NULL DEFAULT 0, bad_lines BIGINT NOT NULL DEFAULT 0,"
    "  problem_count BIGINT NOT NULL DEFAULT 0, problems_kept BIGINT NOT NULL DEFAULT 0,"
    "  already_at TEXT, message TEXT, runner TEXT,"
    "  created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,"
    "  PRIMARY KEY (tenant_id, job_id));"
    "CREATE UNIQUE INDEX import_jobs_active ON import_jobs (tenant_id) "
    "  WHERE state IN ('queued', 'running');"
    "CREATE INDEX import_jobs_time ON import_jobs (tenant_id, created_at);"
    "CREATE TABLE import_job_problems ("
    "  tenant_id TEXT NOT NULL, job_id TEXT NOT NULL, seq BIGINT NOT NULL,"
    "  line BIGINT NOT NULL, column_name TEXT NOT NULL, reason TEXT NOT NULL,"
    "  PRIMARY KEY (tenant_id, job_id, seq),"
    "  FOREIGN KEY (tenant_id, job_id) REFERENCES import_jobs (tenant_id, job_id)"
    ");"
    "CREATE FUNCTION import_jobs_erase() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN "
    "  DELETE FROM import_job_problems WHERE tenant_id = NEW.tenant_id;"
    "  DELETE FROM import_jobs WHERE tenant_id = NEW.tenant_id;"
    "  RETURN NULL; END';"
    "CREATE TRIGGER import_jobs_erase AFTER UPDATE OF state ON tenants FOR EACH ROW "
    "  WHEN (NEW.state = 'erased') EXECUTE FUNCTION import_jobs_erase();",
    /* 7: the staff IDs of erased tenants (R6.1, R1.1).  A tenant erase
     * deletes its staff, but an ID the audit log names is never given to
     * another person: it stays here, without its tenant, and creating a
     * staff row with it fails as a taken ID does (unique_violation,
     * STORE_EXISTS). */
    "CREATE TABLE staff_ids_retired ("
    "  user_id TEXT PRIMARY KEY, retired_at TEXT NOT NULL);"
    "CREATE FUNCTION staff_id_retired() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN "
    "  IF EXISTS (SELECT 1 FROM staff_ids_retired WHERE user_id = NEW.user_id) THEN"
    "    RAISE unique_violation USING MESSAGE = ''staff id retired'';"
    "  END IF;"
    "  RETURN NEW; END';"
    "CREATE TRIGGER staff_id_retired BEFORE INSERT ON staff FOR EACH ROW "
    "  EXECUTE FUNCTION staff_id_retired();",
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum {
    Q_TENANT_CREATE, Q_TENANT_STATE, Q_ERASE_IDEM, Q_ERASE_RES, Q_ERASE_TENANT,
    Q_COUNTS, Q_IDEM_GET, Q_IDEM_PUT, Q_NEXT_ID, Q_INSERT, Q_UPDATE, Q_LOAD_ID,
    Q_LOAD_ADDR, Q_FIND_MN, Q_FIND_NAME, Q_STALE, Q_ERASE_COR, Q_ERASE_VAC,
    Q_ERASE_VOU, Q_ERASE_IMP, Q_REC_IDS, Q_ERASE_SES, Q_ERASE_STAFF, Q_ERASE_TERM,
    Q_ERASE_SITE, Q_RETIRE_IDS, Q_COUNT
};

#define LOAD_COLS "resident_id, address_no, key_version, birth_year::int8, " \
    "ceased_ym, created_at, "

static const char *const fixed_sql[Q_COUNT] = {
    [Q_TENANT_CREATE] = "INSERT INTO tenants (tenant_id, state, created_at, "
        "changed_at) VALUES ($1, 'active', $2, $2)",
    [Q_TENANT_STATE] = "SELECT state FROM tenants WHERE tenant_id = $1",
    [Q_ERASE_IDEM] = "DELETE FROM idempotency WHERE tenant_id = $1",
    [Q_ERASE_RES] = "DELETE FROM residents WHERE tenant_id = $1",
    /* Children before the residents they name (foreign keys). */
    [Q_ERASE_COR] = "DELETE FROM corrections WHERE tenant_id = $1",
    [Q_ERASE_VAC] = "DELETE FROM vaccinations WHERE tenant_id = $1",
    [Q_ERASE_VOU] = "DELETE FROM vouchers WHERE tenant_id = $1",
    [Q_ERASE_IMP] = "DELETE FROM imports WHERE tenant_id = $1",
    /* Identity rows (R1.1): sessions before the staff they name; a
     * session is the tenant's by its own column or by its account. */
    [Q_ERASE_SES] = "DELETE FROM sessions WHERE tenant_id = $1 OR user_id IN "
        "(SELECT user_id FROM staff WHERE tenant_id = $1)",
    [Q_RETIRE_IDS] = "INSERT INTO staff_ids_retired (user_id, retired_at) "
        "SELECT user_id, $2 FROM staff WHERE tenant_id = $1 ON CONFLICT DO NOTHING",
    [Q_ERASE_STAFF] = "DELETE FROM staff WHERE tenant_id = $1",
    [Q_ERASE_TERM] = "DELETE FROM terminals WHERE tenant_id = $1",
    [Q_ERASE_SITE] = "DELETE FROM site_devices WHERE tenant_id = $1",
    [Q_REC_IDS] = "SELECT nextval('record_id_seq') FROM generate_series(1, $1)",
    [Q_ERASE_TENANT] = "UPDATE tenants SET state = 'erased', changed_at = $2 "
        "WHERE tenant_id = $1",
    [Q_COUNTS] = "SELECT (SELECT count(*) FROM tenants WHERE state = 'active' "
        "AND ($1::text IS NULL OR tenant_id = $1)), (SELECT count(*) FROM residents "
        "WHERE $1::text IS NULL OR tenant_id = $1), (SELECT count(*) FROM "
        "idempotency WHERE $1::text IS NULL OR tenant_id = $1)",
    [Q_IDEM_GET] = "SELECT op, row_id FROM idempotency WHERE tenant_id = $1 "
        "AND idem_key = $2",
    [Q_IDEM_PUT] = "INSERT INTO idempotency (tenant_id, idem_key, op, row_id, "
        "created_at) VALUES ($1, $2, $3, $4, $5)",
    [Q_NEXT_ID] = "SELECT nextval('resident_id_seq') FROM generate_series(1, $1)",
    [Q_FIND_MN] = "SELECT resident_id FROM residents WHERE tenant_id = $1 AND "
        "mynumber_bidx = $2 ORDER BY resident_id LIMIT $3",
    [Q_FIND_NAME] = "SELECT resident_id FROM residents WHERE tenant_id = $1 AND "
        "(name_bidx = $2 OR kana_bidx = $2) ORDER BY resident_id LIMIT $3",
    [Q_STALE] = "SELECT resident_id FROM residents WHERE tenant_id = $1 AND "
        "key_version < $2 ORDER BY resident_id LIMIT $3 FOR UPDATE",
};

struct pg {
    PGconn *db;
    bool    prepared[Q_COUNT];
    char   *sql[Q_COUNT];
    bool    copying;        /* between batch_begin and batch_end */
    char   *line;           /* COPY row buffer (ciphertext only; wiped) */
};

/* Parameters for one statement: text, decimal or binary values. */
#define PG_MAXP 32
struct params {
    const char *v[PG_MAXP];
    int         len[PG_MAXP];
    int         fmt[PG_MAXP];
    char        num[PG_MAXP][24];
    int         n;
};

static void
p_text(struct params *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

static void
p_i64(struct params *p, int64_t v)
{
    snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)v);
    p_text(p, p->num[p->n]);
}

static void
p_bin(struct params *p, const void *b, size_t n)
{
    p->v[p->n] = b;
    p->len[p->n] = (int)n;
    p->fmt[p->n++] = 1;
}

/* SQLSTATE and connection state to store status (R9.6: doubt is fatal). */
static enum store_status
map(PGconn *db, const PGresult *r)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

    if (PQstatus(db) != CONNECTION_OK || state == NULL)
        return STORE_FATAL;
    if (strcmp(state, "23505") == 0)
        return STORE_EXISTS;
    if (strncmp(state, "23", 2) == 0)
        return STORE_INVALID;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
        strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0)
        return STORE_BUSY;
    if (strncmp(state, "53", 2) == 0 || strncmp(state, "58", 2) == 0 ||
        strncmp(state, "XX", 2) == 0 || strncmp(state, "08", 2) == 0)
        return STORE_FATAL;
    return STORE_ERROR;
}

/* Prepare statement q once per connection; NULL or the failed result. */
static PGresult *
prepare(struct pg *c, int q, int nparams)
{
    char name[8];
    PGresult *r;

    if (c->prepared[q])
        return NULL;
    snprintf(name, sizeof(name), "q%d", q);
    r = PQprepare(c->db, name, fixed_sql[q] ? fixed_sql[q] : c->sql[q], nparams, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        log_error("store_pg", "prepare failed: %s", PQerrorMessage(c->db));
        return r;
    }
    PQclear(r);
    c->prepared[q] = true;
    return NULL;
}

static PGresult *
run(struct pg *c, int q, const struct params *p)
{
    char name[8];
    PGresult *r = prepare(c, q, p->n);

    if (r != NULL)
        return r;
    snprintf(name, sizeof(name), "q%d", q);
    return PQexecPrepared(c->db, name, p->n, p->v, p->len, p->fmt, 1);
}

/* Run a statement that returns no rows. */
static enum store_status
exec_q(struct pg *c, int q, const struct params *p)
{
    PGresult *r = run(c, q, p);
    enum store_status st = PQresultStatus(r) == PGRES_COMMAND_OK ? STORE_OK :
        map(c->db, r);

    PQclear(r);
    return st;
}

static int64_t
get_int(const PGresult *r, int row, int col)
{
    const uint8_t *b = (const uint8_t *)PQgetvalue(r, row, col);
    int n = PQgetlength(r, row, col);
    uint64_t v = 0;

    for (int i = 0; i < n && i < 8; i++)
        v = v << 8 | b[i];
    if (n == 4)
        return (int32_t)(uint32_t)v;
    return (int64_t)v;
}

static void
get_text(const PGresult *r, int row, int col, char *out, size_t outsz)
{
    int n = PQgetisnull(r, row, col) ? 0 : PQgetlength(r, row, col);

    if ((size_t)n >= outsz)
        n = (int)outsz - 1;
    memcpy(out, PQgetvalue(r, row, col), (size_t)n);
    out[n] = '\0';
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

static int
build_dynamic(struct pg *c)
{
    char cols[1024], ph[512], set[1536];
    size_t off = 0, soff = 0;

    if (store_ct_columns(cols, sizeof(cols)) != 0)
        return -1;
    for (int i = 0; i < RES_NCT; i++) {
        off += (size_t)snprintf(ph + off, sizeof(ph) - off, ", $%d", 11 + i);
        soff += (size_t)snprintf(set + soff, sizeof(set) - soff, ", %s_ct = $%d",
                                 store_rescols[i].name, 4 + i);
    }
    c->sql[Q_INSERT] = build_sql("INSERT INTO residents (tenant_id, resident_id, "
        "address_no, key_version, birth_year, ceased_ym, mynumber_bidx, name_bidx, "
        "kana_bidx, created_at, %s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
        "$10%s)", cols, ph);
    c->sql[Q_UPDATE] = build_sql("UPDATE residents SET key_version = $3%s%s "
        "WHERE tenant_id = $1 AND resident_id = $2", set, "");
    c->sql[Q_LOAD_ID] = build_sql("SELECT " LOAD_COLS "%s FROM residents "
        "WHERE tenant_id = $1 AND resident_id = $2%s", cols, "");
    c->sql[Q_LOAD_ADDR] = build_sql("SELECT " LOAD_COLS "%s FROM residents "
        "WHERE tenant_id = $1 AND address_no = $2%s", cols, "");
    for (int i = 0; i < Q_COUNT; i++)
        if (fixed_sql[i] == NULL && c->sql[i] == NULL)
            return -1;
    return 0;
}

static void
pg_close(void *conn)
{
    struct pg *c = conn;

    if (c == NULL)
        return;
    for (int i = 0; i < Q_COUNT; i++)
        free(c->sql[i]);
    free(c->line);
    PQfinish(c->db);
    free(c);
}

/* Simple-protocol command; STORE_OK if it completed. */
static enum store_status
simple(struct pg *c, const char *sql)
{
    PGresult *r = PQexec(c->db, sql);
    ExecStatusType s = PQresultStatus(r);
    enum store_status st = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ?
        STORE_OK : map(c->db, r);

    PQclear(r);
    return st;
}

static void
quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* The server must fsync and this session must wait for it (R9.6). */
static int
durable_server(struct pg *c)
{
    PGresult *r = PQexec(c->db, "SHOW fsync");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
        strcmp(PQgetvalue(r, 0, 0), "on") == 0;

    PQclear(r);
    if (!ok)
        log_error("store_pg", "server runs with fsync off: refused");
    return ok;
}

static enum store_status
pg_open(const struct store *st, void **out)
{
    struct pg *c = calloc(1, sizeof(*c));
    char lock[64];

    if (c == NULL)
        return STORE_ERROR;
    c->db = PQconnectdb(st->conninfo);
    if (PQstatus(c->db) != CONNECTION_OK) {
        log_error("store_pg", "cannot connect: %s", PQerrorMessage(c->db));
        pg_close(c);
        return STORE_ERROR;
    }
    PQsetNoticeProcessor(c->db, quiet, NULL);
    snprintf(lock, sizeof(lock), "SET lock_timeout = %u", st->busy_timeout_ms);
    if (simple(c, "SET synchronous_commit = on") != STORE_OK ||
        simple(c, lock) != STORE_OK || !durable_server(c) || build_dynamic(c) != 0) {
        pg_close(c);
        return STORE_ERROR;
    }
    *out = c;
    return STORE_OK;
}

static enum store_status
pg_begin(void *conn)
{
    return simple(conn, "BEGIN");
}

static enum store_status
pg_commit(void *conn)
{
    struct pg *c = conn;
    PGresult *r = PQexec(c->db, "COMMIT");
    /* An aborted transaction "commits" as ROLLBACK: check the tag. */
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK &&
        strcmp(PQcmdStatus(r), "COMMIT") == 0;

    PQclear(r);
    if (ok)
        return STORE_OK;
    log_error("store_pg", "commit failed: %s", PQerrorMessage(c->db));
    return STORE_FATAL;   /* outcome unknown: never retried (R9.6) */
}

static void
pg_rollback(void *conn)
{
    (void)simple(conn, "ROLLBACK");
}

/* One-value text query into *v (0 when the answer is NULL). */
static enum store_status
query_int(struct pg *c, const char *sql, int *v)
{
    PGresult *r = PQexec(c->db, sql);
    enum store_status st = STORE_OK;
    uint64_t n = 0;

    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        st = map(c->db, r);
    else if (!PQgetisnull(r, 0, 0) &&
             util_parse_u64(PQgetvalue(r, 0, 0), 0, INT32_MAX, &n) != 0)
        st = STORE_ERROR;
    PQclear(r);
    *v = (int)n;
    return st;
}

static enum store_status
pg_schema_version(void *conn, int *v)
{
    int exists = 0;
    enum store_status st = query_int(conn, "SELECT CASE WHEN to_regclass("
        "'schema_migrations') IS NULL THEN 0 ELSE 1 END", &exists);

    *v = 0;
    if (st != STORE_OK || !exists)
        return st;      /* a new database is version 0 */
    return query_int(conn, "SELECT max(version) FROM schema_migrations", v);
}

static int
pg_migrations(void)
{
    return NMIGRATIONS;
}

static enum store_status
pg_migrate_one(void *conn, int version, const char *now)
{
    struct pg *c = conn;
    struct params p = { .n = 0 };
    PGresult *r;
    enum store_status st;

    if (version < 1 || version > NMIGRATIONS)
        return STORE_VERSION;
    /* Two migrators at once: the second waits, then fails on the key. */
    if ((st = simple(c, "SELECT pg_advisory_xact_lock(4242001)")) != STORE_OK ||
        (st = simple(c, migrations[version - 1])) != STORE_OK) {
        log_error("store_pg", "migration %d failed: %s", version,
                  PQerrorMessage(c->db));
        return st;
    }
    p_i64(&p, version);
    p_text(&p, now);
    r = PQexecParams(c->db, "INSERT INTO schema_migrations (version, applied_at) "
                     "VALUES ($1, $2)", p.n, NULL, p.v, p.len, p.fmt, 0);
    st = PQresultStatus(r) == PGRES_COMMAND_OK ? STORE_OK : map(c->db, r);
    PQclear(r);
    return st;
}

static enum store_status
pg_tenant_create(void *conn, const char *t, const char *now)
{
    struct params p = { .n = 0 };

    p_text(&p, t);
    p_text(&p, now);
    return exec_q(conn, Q_TENANT_CREATE, &p);
}

static enum store_status
pg_tenant_state(void *conn, const char *t, char state[16])
{
    struct pg *c = conn;
    struct params p = { .n = 0 };
    PGresult *r;
    enum store_status st;

    p_text(&p, t);
    r = run(c, Q_TENANT_STATE, &p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        st = map(c->db, r);
    else if (PQntuples(r) == 0)
        st = STORE_NOTFOUND;
    else {
        get_text(r, 0, 0, state, 16);
        st = STORE_OK;
    }
    PQclear(r);
    return st;
}

static enum store_status
pg_tenant_erase(void *conn, const char *t, const char *now)
{
    struct pg *c = conn;
    struct params p = { .n = 0 }, pn = { .n = 0 };     /* (tenant), (tenant, now) */
    PGresult *r;
    enum store_status st;

    /* The transfer and import-job tables are emptied by their triggers
     * (migrations 5 and 6) when the UPDATE marks the tenant erased. */
    static const int order[] = { Q_ERASE_SES, Q_ERASE_STAFF, Q_ERASE_TERM, Q_ERASE_SITE,
                                 Q_ERASE_IDEM, Q_ERASE_COR, Q_ERASE_VAC, Q_ERASE_VOU,
                                 Q_ERASE_IMP, Q_ERASE_RES };

    p_text(&p, t);
    p_text(&pn, t);
    p_text(&pn, now);
    /* R6.1: its staff IDs stay taken once the staff rows are gone. */
    if ((st = exec_q(c, Q_RETIRE_IDS, &pn)) != STORE_OK)
        return st;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if ((st = exec_q(c, order[i], &p)) != STORE_OK)
            return st;
    r = run(c, Q_ERASE_TENANT, &pn);
    st = PQresultStatus(r) != PGRES_COMMAND_OK ? map(c->db, r) :
        strcmp(PQcmdTuples(r), "1") == 0 ? STORE_OK : STORE_NOTFOUND;
    PQclear(r);
    return st;
}

static void
pg_after_erase(void *conn)
{
    /* Dead tuples go at the next (auto)vacuum; the keys are gone already. */
    (void)conn;
}

static enum store_status
pg_counts(void *conn, const char *t, struct store_counts *o)
{
    struct pg *c = conn;
    struct params p = { .n = 0 };
    PGresult *r;
    enum store_status st = STORE_OK;

    if (t != NULL)
        p_text(&p, t);
    else
        p_text(&p, NULL);
    r = run(c, Q_COUNTS, &p);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        o->tenants = (uint64_t)get_int(r, 0, 0);
        o->residents = (uint64_t)get_int(r, 0, 1);
        o->idempotency = (uint64_t)get_int(r, 0, 2);
    } else
        st = map(c->db, r);
    PQclear(r);
    return st;
}

static enum store_status
pg_idem_get(void *conn, const char *t, const char *key, const char *op, int64_t *id)
{
    struct pg *c = conn;
    struct params p = { .n = 0 };
    PGresult *r;
    enum store_status st;
    char got[64];

    p_text(&p, t);
    p_text(&p, key);
    r = run(c, Q_IDEM_GET, &p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        st = map(c->db, r);
    else if (PQntuples(r) == 0)
        st = STORE_NOTFOUND;
    else {
        get_text(r, 0, 0, got, sizeof(got));
        *id = get_int(r, 0, 1);
        st = strcmp(got, op) == 0 ? STORE_OK : STORE_EXISTS;
    }
    PQclear(r);
    return st;
}

static enum store_status
pg_idem_put(void *conn, const char *t, const char *key, const char *op,
            int64_t id, const char *now)
{
    struct params p = { .n = 0 };

    p_text(&p, t);
    p_text(&p, key);
    p_text(&p, op);
    p_i64(&p, id);
    p_text(&p, now);
    return exec_q(conn, Q_IDEM_PUT, &p);
}

/* One round trip for a whole batch of ids. */
static enum store_status
pg_next_ids(void *conn, const char *t, size_t n, int64_t *ids)
{
    struct pg *c = conn;
    struct params p = { .n = 0 };
    PGresult *r;
    enum store_status st = STORE_OK;

    (void)t;    /* one sequence; ids are unique across tenants too */
    p_i64(&p, (int64_t)n);
    r = run(c, Q_NEXT_ID, &p);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && (size_t)PQntuples(r) == n) {
        for (size_t i = 0; i < n; i++)
            ids[i] = get_int(r, (int)i, 0);
    } else
        st = map(c->db, r);
    PQclear(r);
    return st;
}

/* Record ids (vaccinations, corrections) from their own sequence: no
 * writer waits for another, and ids are unique across tenants too. */
static enum store_status
pg_rec_ids(void *conn, const char *t, enum rec_table table, size_t n, int64_t *ids)
{
    struct pg *c = conn;
    struct params p = { .n = 0 };
    PGresult *r;
    enum store_status st = STORE_OK;

    (void)t;
    (void)table;
    p_i64(&p, (int64_t)n);
    r = run(c, Q_REC_IDS, &p);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && (size_t)PQntuples(r) == n) {
        for (size_t i = 0; i < n; i++)
            ids[i] = get_int(r, (int)i, 0);
    } else
        st = map(c->db, r);
    PQclear(r);
    return st;
}

/*
 * Batches go in with COPY: one statement for the whole batch, rows
 * streamed as text (bytea as \\x hex).  A bad row fails the COPY and so
 * the batch, which is all-or-none anyway.
 */
#define COPY_LINE_MAX (64 + STORE_ADDRNO_MAX + 3 * (4 + 2 * BIDX_LEN) + \
                       RES_NCT * (4 + 2 * RES_CT_SLOT) + 64)

static enum store_status
pg_batch_begin(void *conn)
{
    struct pg *c = conn;
    char cols[1024], sql[1400];
    PGresult *r;
    enum store_status st = STORE_OK;

    if (store_ct_columns(cols, sizeof(cols)) != 0)
        return STORE_ERROR;
    if (c->line == NULL && (c->line = malloc(COPY_LINE_MAX)) == NULL)
        return STORE_ERROR;
    snprintf(sql, sizeof(sql), "COPY residents (tenant_id, resident_id, address_no, "
             "key_version, birth_year, ceased_ym, mynumber_bidx, name_bidx, kana_bidx, "
             "created_at, %s) FROM STDIN", cols);
    r = PQexec(c->db, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN)
        st = map(c->db, r);
    PQclear(r);
    c->copying = st == STORE_OK;
    return st;
}

static enum store_status
pg_batch_end(void *conn)
{
    struct pg *c = conn;
    PGresult *r;
    enum store_status st = STORE_OK;

    if (!c->copying)
        return STORE_ERROR;
    c->copying = false;
    if (PQputCopyEnd(c->db, NULL) != 1)
        return STORE_FATAL;
    while ((r = PQgetResult(c->db)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && st == STORE_OK)
            st = map(c->db, r);
        PQclear(r);
    }
    if (c->line != NULL)
        util_wipe(c->line, COPY_LINE_MAX);
    return st;
}

/* Append one COPY text field; only hex, digits and checked ASCII occur. */
static size_t
copy_text(char *out, size_t o, const char *s, bool last)
{
    size_t n = strlen(s);

    memcpy(out + o, s, n);
    out[o + n] = last ? '\n' : '\t';
    return o + n + 1;
}

static size_t
copy_bytea(char *out, size_t o, const uint8_t *b, size_t n, bool present)
{
    if (!present)
        return copy_text(out, o, "\\N", false);
    memcpy(out + o, "\\\\x", 3);
    o += 3;
    if (util_hex_encode(b, n, out + o, 2 * n + 1) != 0)
        return 0;
    out[o + 2 * n] = '\t';
    return o + 2 * n + 1;
}

static enum store_status
copy_row(struct pg *c, const struct enc_resident *e)
{
    char num[3][24];
    size_t o = 0;

    snprintf(num[0], sizeof(num[0]), "%lld", (long long)e->id);
    snprintf(num[1], sizeof(num[1]), "%u", e->key_version);
    snprintf(num[2], sizeof(num[2]), "%d", e->birth_year);
    o = copy_text(c->line, o, e->tenant, false);
    o = copy_text(c->line, o, num[0], false);
    o = copy_text(c->line, o, e->address_no, false);    /* [0-9A-Za-z-] */
    o = copy_text(c->line, o, num[1], false);
    o = copy_text(c->line, o, num[2], false);
    o = copy_text(c->line, o, e->ceased_ym[0] ? e->ceased_ym : "\\N", false);
    o = copy_bytea(c->line, o, e->mynumber_bidx, BIDX_LEN, e->has_mynumber_bidx);
    o = copy_bytea(c->line, o, e->name_bidx, BIDX_LEN, true);
    o = copy_bytea(c->line, o, e->kana_bidx, BIDX_LEN, e->has_kana_bidx);
    o = copy_text(c->line, o, e->created_at, false);
    for (int i = 0; i < RES_NCT && o != 0; i++)
        o = copy_bytea(c->line, o, e->ct[i], e->ct_len[i], true);
    if (o == 0)
        return STORE_ERROR;
    c->line[o - 1] = '\n';
    return PQputCopyData(c->db, c->line, (int)o) == 1 ? STORE_OK : STORE_FATAL;
}

static void
add_cts(struct params *p, const struct enc_resident *e)
{
    for (int i = 0; i < RES_NCT; i++)
        p_bin(p, e->ct[i], e->ct_len[i]);
}

static enum store_status
pg_res_insert(void *conn, const struct enc_resident *e)
{
    struct params p = { .n = 0 };

    if (((struct pg *)conn)->copying)
        return copy_row(conn, e);
    p_text(&p, e->tenant);
    p_i64(&p, e->id);
    p_text(&p, e->address_no);
    p_i64(&p, e->key_version);
    p_i64(&p, e->birth_year);
    p_text(&p, e->ceased_ym[0] != '\0' ? e->ceased_ym : NULL);
    if (e->has_mynumber_bidx)
        p_bin(&p, e->mynumber_bidx, BIDX_LEN);
    else
        p_text(&p, NULL);
    p_bin(&p, e->name_bidx, BIDX_LEN);
    if (e->has_kana_bidx)
        p_bin(&p, e->kana_bidx, BIDX_LEN);
    else
        p_text(&p, NULL);
    p_text(&p, e->created_at);
    add_cts(&p, e);
    return exec_q(conn, Q_INSERT, &p);
}

static enum store_status
pg_res_update(void *conn, const struct enc_resident *e)
{
    struct pg *c = conn;
    struct params p = { .n = 0 };
    PGresult *r;
    enum store_status st;

    p_text(&p, e->tenant);
    p_i64(&p, e->id);
    p_i64(&p, e->key_version);
    add_cts(&p, e);
    r = run(c, Q_UPDATE, &p);
    st = PQresultStatus(r) != PGRES_COMMAND_OK ? map(c->db, r) :
        strcmp(PQcmdTuples(r), "1") == 0 ? STORE_OK : STORE_NOTFOUND;
    PQclear(r);
    return st;
}

static enum store_status
read_row(const PGresult *r, const char *t, struct enc_resident *e)
{
    snprintf(e->tenant, sizeof(e->tenant), "%s", t);
    e->id = get_int(r, 0, 0);
    get_text(r, 0, 1, e->address_no, sizeof(e->address_no));
    e->key_version = (uint32_t)get_int(r, 0, 2);
    e->birth_year = (int)get_int(r, 0, 3);
    get_text(r, 0, 4, e->ceased_ym, sizeof(e->ceased_ym));
    get_text(r, 0, 5, e->created_at, sizeof(e->created_at));
    for (int i = 0; i < RES_NCT; i++) {
        int n = PQgetlength(r, 0, 6 + i);
        if (PQgetisnull(r, 0, 6 + i) || n <= 0 || (size_t)n > RES_CT_SLOT)
            return STORE_KEY;
        memcpy(e->ct[i], PQgetvalue(r, 0, 6 + i), (size_t)n);
        e->ct_len[i] = (size_t)n;
    }
    return STORE_OK;
}

static enum store_status
pg_res_load(void *conn, const char *t, enum res_lookup by, int64_t id,
            const char *addrno, struct enc_resident *e)
{
    struct pg *c = conn;
    struct params p = { .n = 0 };
    PGresult *r;
    enum store_status st;

    p_text(&p, t);
    if (by == RES_BY_ID)
        p_i64(&p, id);
    else
        p_text(&p, addrno);
    r = run(c, by == RES_BY_ID ? Q_LOAD_ID : Q_LOAD_ADDR, &p);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        st = map(c->db, r);
    else if (PQntuples(r) == 0)
        st = STORE_NOTFOUND;
    else
        st = read_row(r, t, e);
    PQclear(r);
    return st;
}

static enum store_status
collect_ids(struct pg *c, int q, struct params *p, int64_t *ids, size_t max,
            size_t *n)
{
    PGresult *r;
    enum store_status st = STORE_OK;

    p_i64(p, (int64_t)max);
    r = run(c, q, p);
    *n = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        for (int i = 0; i < PQntuples(r) && *n < max; i++)
            ids[(*n)++] = get_int(r, i, 0);
    } else
        st = map(c->db, r);
    PQclear(r);
    return st;
}

static enum store_status
pg_res_find(void *conn, const char *t, enum res_index idx, const uint8_t *bidx,
            int64_t *ids, size_t max, size_t *n)
{
    struct params p = { .n = 0 };

    p_text(&p, t);
    p_bin(&p, bidx, BIDX_LEN);
    return collect_ids(conn, idx == RES_IDX_MYNUMBER ? Q_FIND_MN : Q_FIND_NAME,
                       &p, ids, max, n);
}

static enum store_status
pg_res_stale(void *conn, const char *t, uint32_t below, int64_t *ids, size_t max,
             size_t *n)
{
    struct params p = { .n = 0 };

    p_text(&p, t);
    p_i64(&p, below);
    return collect_ids(conn, Q_STALE, &p, ids, max, n);
}

/* ---- generic query (identity tables, store_auth.c) ------------------------ */

static enum store_status
pg_col(const PGresult *r, int row, int i, const struct qcol *c)
{
    bool null = PQgetisnull(r, row, i);
    size_t n = null ? 0 : (size_t)PQgetlength(r, row, i);

    switch (c->t) {
    case QT_TEXT:
        if (n >= c->ssz)
            return STORE_ERROR;
        memcpy(c->s, PQgetvalue(r, row, i), n);
        c->s[n] = '\0';
        return STORE_OK;
    case QT_INT:
        *c->i = null ? 0 : get_int(r, row, i);
        return STORE_OK;
    case QT_BLOB:
        if (n > c->bsz)
            return STORE_ERROR;
        memcpy(c->b, PQgetvalue(r, row, i), n);
        *c->blen = n;
        return STORE_OK;
    case QT_NULL:
        return STORE_OK;
    }
    return STORE_ERROR;
}

static enum store_status
pg_query(void *conn, const char *sql, const struct qarg *a, size_t na,
         const struct qcol *cols, size_t nc, bool *found, int64_t *changes,
         int (*each)(void *ctx), void *ctx)
{
    struct pg *c = conn;
    struct params p = { .n = 0 };
    enum store_status st = STORE_OK;
    PGresult *r;
    uint64_t ch = 0;

    if (na > PG_MAXP)
        return STORE_INVALID;
    for (size_t i = 0; i < na; i++) {
        switch (a[i].t) {
        case QT_TEXT: p_text(&p, a[i].s); break;
        case QT_INT: p_i64(&p, a[i].i); break;
        case QT_BLOB: p_bin(&p, a[i].b, a[i].n); break;
        case QT_NULL: p_text(&p, NULL); break;
        }
    }
    r = PQexecParams(c->db, sql, p.n, NULL, p.v, p.len, p.fmt, 1);
    switch (PQresultStatus(r)) {
    case PGRES_TUPLES_OK:
        if (found != NULL)
            *found = PQntuples(r) > 0;
        for (int row = 0; row < PQntuples(r) && st == STORE_OK; row++) {
            for (size_t i = 0; i < nc && st == STORE_OK; i++)
                st = pg_col(r, row, (int)i, &cols[i]);
            if (each == NULL || st != STORE_OK || each(ctx) != 0)
                break;
        }
        break;
    case PGRES_COMMAND_OK:
        if (found != NULL)
            *found = false;
        break;
    default:
        st = map(c->db, r);
        break;
    }
    if (changes != NULL) {
        const char *t = PQcmdTuples(r);
        *changes = t != NULL && t[0] != '\0' &&
                   util_parse_u64(t, 0, INT64_MAX, &ch) == 0 ? (int64_t)ch : 0;
    }
    PQclear(r);
    return st;
}

const struct store_ops store_pg_ops = {
    .name = "postgresql",
    .conn_open = pg_open,
    .conn_close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .schema_version = pg_schema_version,
    .migrations = pg_migrations,
    .migrate_one = pg_migrate_one,
    .tenant_create = pg_tenant_create,
    .tenant_state = pg_tenant_state,
    .tenant_erase = pg_tenant_erase,
    .after_erase = pg_after_erase,
    .counts = pg_counts,
    .idem_get = pg_idem_get,
    .idem_put = pg_idem_put,
    .next_ids = pg_next_ids,
    .rec_ids = pg_rec_ids,
    .id_in = "= ANY (CAST(string_to_array($2, ',') AS bigint[]))",
    .batch_begin = pg_batch_begin,
    .batch_end = pg_batch_end,
    .res_insert = pg_res_insert,
    .res_update = pg_res_update,
    .res_load = pg_res_load,
    .res_find = pg_res_find,
    .res_stale = pg_res_stale,
    .query = pg_query,
};

int
store_pg_endpoint(const char *conninfo, bool *tcp, uint16_t *port)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    const char *host = NULL, *portstr = NULL;
    uint64_t p = 5432;
    int rc = 0;

    if (opts == NULL) {
        PQfreemem(err);
        return -1;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0)
            host = host ? host : o->val;
        else if (strcmp(o->keyword, "port") == 0)
            portstr = o->val;
    }
    /* libpq's default host is a Unix socket directory. */
    *tcp = host != NULL && host[0] != '\0' && host[0] != '/' && host[0] != '@';
    if (portstr != NULL && portstr[0] != '\0' && util_parse_u64(portstr, 1, 65535, &p) != 0)
        rc = -1;
    *port = (uint16_t)p;
    PQconninfoFree(opts);
    return rc;
}
