/*
 * import_api.c - CSV import over the HTTP API (import_api.h).
 *
 * The upload goes: body sink (every refusal the headers allow -- no
 * kind, an import of the tenant already queued or running, a full queue
 * -- then a queue place and an encrypted spool, before any byte is read)
 * -> handler (the job's id, board slot, row and
 * acceptance audit event, then the runner's queue) -> runner thread
 * (import_runner.c).  GET answers from the job row and, while the job
 * runs, from the shared board; a job whose worker is gone is stored as
 * interrupted on the first read that notices.
 */
#include "vrs/import_api.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "crypto/spool.h"
#include "http/reply.h"
#include "store/store_import.h"
#include "vrs/api.h"
#include "vrs/import_board.h"
#include "vrs/import_runner.h"
#include "worker/worker.h"

/* What a job whose worker is gone answers (R2.6: the key of its spool
 * died with the worker, so there is nothing to resume). */
#define GONE_MSG "The import ended before it was done (the worker that held it stopped or " \
    "could not go on), so nothing was imported; the upload was kept only in that " \
    "worker's memory: send the file again."
_Static_assert(sizeof(GONE_MSG) <= STORE_IMPORT_MESSAGE_MAX, "the sentence fits its column");

/* ---- the spool directory ---------------------------------------------------------- */

int
import_api_spool_dir(const struct mamori_config *cfg, char *out, size_t outsz)
{
    return util_path_join(out, outsz, cfg->datadir, "spool");
}

/* Files left by a worker that died between creating and unlinking one
 * (spool.c's fallback when O_TMPFILE is missing): their key is gone, so
 * they are unreadable noise; remove them.  Top level only, no links. */
static void
sweep(int dfd)
{
    DIR *d = fdopendir(dfd);
    const struct dirent *e;

    if (d == NULL) {
        close(dfd);
        return;
    }
    while ((e = readdir(d)) != NULL)
        if (e->d_type == DT_REG && unlinkat(dirfd(d), e->d_name, 0) != 0)
            log_warn("spool_sweep_failed", "cannot remove a leftover spool file: %s",
                     strerror(errno));
    closedir(d);
}

/* Owner and mode of the open directory: the service user's, 0700. */
static int
own_dir(int dfd, const struct mamori_config *cfg, char *err, size_t errlen)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    struct stat sb;

    if (uid == 0 && cfg->user[0] != '\0') {
        const struct passwd *pw = getpwnam(cfg->user);
        if (pw == NULL) {
            snprintf(err, errlen, "the service user %s does not exist", cfg->user);
            return -1;
        }
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    if ((geteuid() == 0 && fchown(dfd, uid, gid) != 0) || fchmod(dfd, 0700) != 0 ||
        fstat(dfd, &sb) != 0) {
        snprintf(err, errlen, "cannot set the owner and mode of the spool directory: %s",
                 strerror(errno));
        return -1;
    }
    if (sb.st_uid != uid) {
        snprintf(err, errlen, "the spool directory belongs to another user");
        return -1;
    }
    return 0;
}

int
import_api_prepare(const struct mamori_config *cfg, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    int dfd;

    if (import_api_spool_dir(cfg, dir, sizeof(dir)) != 0) {
        snprintf(err, errlen, "the spool directory's path is too long");
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot make the spool directory %s: %s", dir, strerror(errno));
        return -1;
    }
    /* O_NOFOLLOW | O_DIRECTORY: a link or a file in its place is refused. */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(err, errlen, "the spool directory %s cannot be opened as a directory: %s",
                 dir, strerror(errno));
        return -1;
    }
    if (own_dir(dfd, cfg, err, errlen) != 0) {
        close(dfd);
        return -1;
    }
    sweep(dfd);                          /* closes dfd */
    return 0;
}

/* ---- validators and the route table's pieces ------------------------------------------ */

static const char *
check_kind(const char *v)
{
    enum import_kind k;

    return import_kind_parse(v, &k) == 0 ? NULL : "must be residents, vouchers or vaccinations";
}

static const char *
check_encoding(const char *v)
{
    return strcmp(v, "utf-8") == 0 || strcmp(v, "cp932") == 0 ? NULL
                                                              : "must be utf-8 or cp932";
}

static const char *
check_bool(const char *v)
{
    return strcmp(v, "true") == 0 || strcmp(v, "false") == 0 ? NULL : "must be true or false";
}

static const char *
check_id(const char *v)
{
    return store_import_id_ok(v) ? NULL : "is not an import id";
}

static const char *
check_count(const char *v)
{
    uint64_t n;

    return util_parse_u64(v, 0, 999999999, &n) == 0 ? NULL : "must be a whole number";
}

const struct param_rule import_upload_params[] = {
    { "kind", 12, check_kind },
    { "encoding", 5, check_encoding },
    { "dry_run", 5, check_bool },
    { NULL, 0, NULL },
};

const struct param_rule import_id_params[] = {
    { "id", STORE_IMPORT_ID_HEX, check_id },
    { NULL, 0, NULL },
};

const struct param_rule import_problem_params[] = {
    { "id", STORE_IMPORT_ID_HEX, check_id },
    { "after", 9, check_count },
    { "limit", 4, check_count },
    { NULL, 0, NULL },
};

/* ---- helpers -------------------------------------------------------------------------- */

static struct worker_env *
wenv(const struct http_request *req)
{
    return req->env;
}

static json_t *
job_object(const char *id)
{
    char s[8 + STORE_IMPORT_ID_HEX];

    snprintf(s, sizeof(s), "import:%s", id);
    return json_pack("[s]", s);
}

/* ---- a job as JSON ------------------------------------------------------------------ */

static const char *const phase_names[] = {
    [IMPORT_BOARD_QUEUED] = "queued",
    [IMPORT_BOARD_HASHING] = "hashing",
    [IMPORT_BOARD_CHECKING] = "checking",
    [IMPORT_BOARD_WRITING] = "writing",
};

/*
 * One number for the whole job that never goes back: each phase owns a
 * band (hashing is fast, writing the slowest), filled by its bytes.
 * Imports: hashing 0-5, checking 5-35, writing 35-99; dry runs: hashing
 * 0-10, checking 10-99.  100 once the job has ended, however it ended.
 */
static int
percent_of(const struct import_board_view *v, bool dry_run)
{
    static const int bands[2][5] = {
        /* queued, hashing, checking, writing, end */
        { 0, 0, 5, 35, 99 },
        { 0, 0, 10, 99, 99 },
    };
    const int *b = bands[dry_run ? 1 : 0];
    unsigned p = (unsigned)v->phase;
    uint64_t done = v->bytes < v->total ? v->bytes : v->total;

    if (p == IMPORT_BOARD_QUEUED || p > IMPORT_BOARD_WRITING)
        return 0;
    if (v->total == 0)
        return b[p];
    return b[p] + (int)((uint64_t)(b[p + 1] - b[p]) * done / v->total);
}

static json_t *
opt_str(const char *s)
{
    return s[0] != '\0' ? json_string(s) : json_null();
}

/* The job's progress: from the board while it is active, else from its
 * row.  bytes_done is known at the end only when the whole file was read. */
static void
add_progress(json_t *o, const struct store_import_job *row, const struct import_board_view *v)
{
    bool read_all = row->state == STORE_IMPORT_IMPORTED || row->state == STORE_IMPORT_ALREADY ||
                    row->state == STORE_IMPORT_CHECKED || row->state == STORE_IMPORT_REFUSED;

    if (v != NULL) {
        const char *phase = (unsigned)v->phase <= IMPORT_BOARD_WRITING ? phase_names[v->phase]
                                                                          : "writing";
        json_object_set_new(o, "state", json_string(phase));
        json_object_set_new(o, "phase", json_string(phase));
        json_object_set_new(o, "bytes_done", json_integer((json_int_t)v->bytes));
        json_object_set_new(o, "bytes_total", json_integer((json_int_t)v->total));
        json_object_set_new(o, "rows", json_integer((json_int_t)v->rows));
        json_object_set_new(o, "percent", json_integer(percent_of(v, row->dry_run)));
        return;
    }
    json_object_set_new(o, "state", json_string(store_import_state_name(row->state)));
    json_object_set_new(o, "phase", json_string(store_import_state_active(row->state)
                                                ? "queued" : "done"));
    json_object_set_new(o, "bytes_done", read_all ? json_integer((json_int_t)row->bytes)
                                                  : json_null());
    json_object_set_new(o, "bytes_total", json_integer((json_int_t)row->bytes));
    json_object_set_new(o, "rows", json_integer((json_int_t)row->rows));
    json_object_set_new(o, "percent", json_integer(store_import_state_active(row->state)
                                                   ? 0 : 100));
}

static json_t *
job_json(const struct store_import_job *row, const struct import_board_view *v)
{
    char poll[40 + STORE_IMPORT_ID_HEX], problems[48 + STORE_IMPORT_ID_HEX];
    json_t *o;

    snprintf(poll, sizeof(poll), "/v1/imports/%s", row->id);
    snprintf(problems, sizeof(problems), "/v1/imports/%s/problems", row->id);
    o = json_pack("{s:s,s:s,s:s,s:b,s:I,s:I,s:I,s:s,s:s,s:s,s:o,s:o,s:s,s:s}",
                  "id", row->id, "kind", row->kind, "encoding", row->encoding,
                  "dry_run", row->dry_run, "bad_lines", (json_int_t)row->bad_lines,
                  "problems", (json_int_t)row->problems,
                  "problems_kept", (json_int_t)row->problems_kept,
                  "submitted_by", row->actor, "role", row->role,
                  "created_at", row->created_at, "started_at", opt_str(row->started_at),
                  "finished_at", opt_str(row->finished_at), "poll", poll,
                  "problems_url", problems);
    if (o == NULL)
        return NULL;
    add_progress(o, row, v);
    if (row->state == STORE_IMPORT_ALREADY)
        json_object_set_new(o, "already_imported_at", json_string(row->already_at));
    if (row->message[0] != '\0')
        json_object_set_new(o, "message", json_string(row->message));
    return o;
}

/*
 * An active job's live view, or, if its slot is gone or stale, the job
 * marked interrupted in the store (the first reader to notice does it).
 * *live says whether v was filled.
 */
static void
resolve(const struct http_request *req, struct store_tenant *ctx, struct store_import_job *row,
        struct import_board_view *v, bool *live)
{
    uint8_t idbin[IMPORT_BOARD_ID_LEN];
    enum store_status st;

    *live = false;
    if (!store_import_state_active(row->state))
        return;
    if (util_hex_decode(row->id, idbin, sizeof(idbin)) == 0 &&
        import_board_find(wenv(req)->import_board, idbin, req->tenant, import_board_now_ms(),
                          v) == 0 && !v->stale) {
        *live = true;
        return;
    }
    st = store_import_job_interrupt(ctx, row->id, GONE_MSG);
    if (st == STORE_OK || st == STORE_NOTFOUND) {
        /* NOTFOUND: it ended meanwhile; either way the row now says how. */
        if (store_import_job_get(ctx, row->id, row) == STORE_OK &&
            !store_import_state_active(row->state))
            return;
    }
    log_warn("import_job_interrupt_unsaved", "import %s: interrupted, not yet stored: %s",
             row->id, store_strerror(st));
    row->state = STORE_IMPORT_INTERRUPTED;
    snprintf(row->message, sizeof(row->message), "%s", GONE_MSG);
}

/* ---- the upload's sink: every refusal from the headers, then a queue place and a spool -- */

/* What the query asks for: kind (required), encoding (utf-8), dry_run
 * (false).  The route's param rules already checked each value given and
 * refused anything else; they cannot say "required", so kind is checked
 * here.  0, or -1 with a 400 in resp. */
struct upload_query {
    enum import_kind    kind;
    enum csvin_encoding encoding;
    bool                dry_run;
};

static int
parse_upload(const struct http_request *req, struct upload_query *q, struct http_response *resp)
{
    if (import_kind_parse(http_param(req, "kind"), &q->kind) != 0) {
        reply_error(resp, 400, "invalid_parameter", "The query parameter kind is required: "
                    "residents, vouchers or vaccinations.", "kind");
        return -1;
    }
    q->encoding = strcmp(http_param(req, "encoding"), "cp932") == 0 ? CSVIN_CP932 : CSVIN_UTF8;
    q->dry_run = strcmp(http_param(req, "dry_run"), "true") == 0;
    return 0;
}

/* A refused upload is on the record like other refused requests. */
static void
audit_refusal(const struct http_request *req, const char *reason)
{
    if (vrs_audit(req, "resident.import", "refused", reason, NULL, NULL, NULL) != 0)
        log_warn("audit_refused", "a refused upload is not on the audit record");
}

static int
first_active(const struct store_import_job *j, void *arg)
{
    struct store_import_job *out = arg;

    if (!store_import_state_active(j->state))
        return 0;
    *out = *j;
    return 1;
}

/* The tenant's job that is queued or running, if any, into *row: 1, 0 for
 * none, -1 if the store cannot say.  At most one is (a partial unique
 * index), and none can be newer, so the newest jobs are enough. */
static int
active_job(struct store_tenant *ctx, struct store_import_job *row)
{
    row->id[0] = '\0';
    if (store_import_job_list(ctx, IMPORT_LIST_MAX, first_active, row) != STORE_OK)
        return -1;
    return row->id[0] != '\0' ? 1 : 0;
}

/* 409 import_running; the job in the way (the session's tenant's own,
 * so its id may be named) when it is known. */
static void
reply_running(struct http_response *resp, const struct store_import_job *in_way)
{
    json_t *err;

    reply_error(resp, 409, "import_running", "An import for this municipality is already "
                "queued or running; wait until it has finished, then send the file again.",
                NULL);
    err = json_object_get(resp->body, "error");
    if (in_way != NULL && err != NULL) {
        char poll[16 + STORE_IMPORT_ID_HEX];
        snprintf(poll, sizeof(poll), "/v1/imports/%s", in_way->id);
        json_object_set_new(err, "import_id", json_string(in_way->id));
        json_object_set_new(err, "poll", json_string(poll));
    }
}

/* R2.6: a tenant with an import queued or running gets its 409 from the
 * headers, not after sending up to 1 GiB.  A job whose worker is gone is
 * stored as interrupted first, as a GET would, and holds nothing up.
 * The job row's unique index stays the last word (accept_job): two
 * uploads at once both pass here.  0, or -1 with resp set. */
static int
refuse_if_running(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct store_import_job row;
    struct import_board_view v;
    bool live;
    int rc = 0, found;

    if (vrs_tenant_open(req, resp, &ctx) != 0)
        return -1;
    found = active_job(ctx, &row);
    if (found < 0) {
        vrs_reply_unavailable(resp);
        rc = -1;
    } else if (found > 0) {
        resolve(req, ctx, &row, &v, &live);
        if (store_import_state_active(row.state)) {
            audit_refusal(req, "import_running");
            reply_running(resp, &row);
            rc = -1;
        }
    }
    store_tenant_ctx_close(ctx);
    return rc;
}

/* A full queue: 503 with Retry-After, for the queue drains by itself. */
static void
reply_queue_full(const struct http_request *req, struct http_response *resp)
{
    audit_refusal(req, "queue_full");
    reply_error(resp, 503, "queue_full", "This server has as many imports waiting as it takes; "
                "send the file again in a minute or two.", NULL);
    resp->retry_after = IMPORT_RETRY_AFTER_S;
}

/*
 * The sink's open(): called once the session, its permission and the
 * query's values are checked, before the body.  Every refusal the headers
 * allow is made here, so nothing is read to be refused (R2.6): a missing
 * kind (400), the tenant's import already queued or running (409), a full
 * queue (503).  Then a queue place and an empty encrypted spool.
 */
static int
sink_open(const struct http_request *req, struct http_response *resp, void **sink)
{
    struct worker_env *we = wenv(req);
    struct upload_query q;
    char dir[PATH_MAX];
    struct import_job *j;

    if (we == NULL || we->imports == NULL ||
        import_api_spool_dir(we->cfg, dir, sizeof(dir)) != 0) {
        vrs_reply_unavailable(resp);
        return -1;
    }
    if (parse_upload(req, &q, resp) != 0 || refuse_if_running(req, resp) != 0)
        return -1;
    if ((j = import_runner_reserve(we->imports, dir)) == NULL) {
        int e = errno;
        if (e == EBUSY) {
            reply_queue_full(req, resp);
        } else {
            log_error("spool_failed", "cannot make an upload spool in %s: %s", dir, strerror(e));
            vrs_reply_unavailable(resp);
        }
        return -1;
    }
    j->kind = q.kind;
    j->encoding = q.encoding;
    j->dry_run = q.dry_run;
    *sink = j;
    return 0;
}

static int
sink_write(void *sink, const void *data, size_t n)
{
    struct import_job *j = sink;

    return spool_write(j->spool, data, n);
}

static void
sink_discard(void *sink)
{
    import_job_cancel(sink);
}

static const char *const upload_types[] = { "text/csv", "application/octet-stream", NULL };

const struct body_sink import_upload_sink = {
    upload_types, sink_open, sink_write, sink_discard,
};

/* ---- POST /v1/imports -------------------------------------------------------------------- */

/* The job's row, from the request and the spool. */
static void
row_of(const struct http_request *req, const struct import_job *j, struct store_import_job *row)
{
    memset(row, 0, sizeof(*row));
    memcpy(row->id, j->id, sizeof(row->id));
    snprintf(row->kind, sizeof(row->kind), "%s", import_kind_name(j->kind));
    snprintf(row->encoding, sizeof(row->encoding), "%s",
             j->encoding == CSVIN_CP932 ? "cp932" : "utf-8");
    row->dry_run = j->dry_run;
    snprintf(row->actor, sizeof(row->actor), "%s", req->user_id);
    snprintf(row->role, sizeof(row->role), "%s", auth_role_name(req->role));
    row->bytes = (int64_t)spool_size(j->spool);
}

static size_t
digit_run(const char *s)
{
    size_t run = 0, longest = 0;

    for (; *s != '\0'; s++) {
        run = *s >= '0' && *s <= '9' ? run + 1 : 0;
        if (run > longest)
            longest = run;
    }
    return longest;
}

_Static_assert(IMPORT_BOARD_ID_LEN == 16 && STORE_IMPORT_ID_HEX == 32, "a job id is 128 bits");

void
import_api_new_id(uint8_t bin[16], char hex[33])
{
    do {
        randombytes_buf(bin, 16);
        if (util_hex_encode(bin, 16, hex, 33) != 0)
            hex[0] = '\0';
    } while (hex[0] == '\0' || digit_run(hex) >= 12);
}

/* The job's id and its place on the board. */
static int
name_job(const struct http_request *req, struct import_job *j, struct http_response *resp)
{
    import_api_new_id(j->idbin, j->id);
    if (import_board_claim(wenv(req)->import_board, j->idbin, req->tenant,
                           spool_size(j->spool), import_board_now_ms(), &j->slot) != 0) {
        j->slot = -1;
        log_error("import_board_full", "no free slot on the import board");
        vrs_reply_unavailable(resp);
        return -1;
    }
    return 0;
}

/* The acceptance: the row (409 if the tenant has a job queued or
 * running), then the audit event; if the event cannot be written, the
 * row is ended as failed and nothing runs. */
static int
accept_job(const struct http_request *req, struct import_job *j, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct store_import_job row;
    enum store_status st;
    int rc = -1;

    if (vrs_tenant_open(req, resp, &ctx) != 0)
        return -1;
    row_of(req, j, &row);
    st = store_import_job_create(ctx, &row);
    if (st == STORE_EXISTS) {
        /* Another upload of the tenant got its row in first (both passed
         * refuse_if_running): name it if it can be found. */
        struct store_import_job other;
        audit_refusal(req, "import_running");
        reply_running(resp, active_job(ctx, &other) > 0 ? &other : NULL);
    } else if (st == STORE_BUSY) {
        /* SQLite: another tenant's import holds the one write lock for
         * its whole pass 2 (docs/import-export.md). */
        audit_refusal(req, "store_busy");
        reply_error(resp, 503, "store_busy", "The store is busy writing another import; send "
                    "the file again in a few minutes.", NULL);
        resp->retry_after = IMPORT_RETRY_AFTER_S;
    } else if (st != STORE_OK) {
        log_warn("import_job_unsaved", "an upload's job row: %s", store_strerror(st));
        vrs_reply_unavailable(resp);
    } else if (vrs_audit(req, "resident.import", "success", NULL, NULL, job_object(j->id),
                         json_pack("{s:s,s:s,s:I,s:I}", "kind", row.kind, "encoding",
                                   row.encoding, "bytes", (json_int_t)row.bytes, "dry_run",
                                   (json_int_t)row.dry_run)) != 0) {
        row.state = STORE_IMPORT_FAILED;
        snprintf(row.message, sizeof(row.message), "The audit log could not record the "
                 "upload, so nothing was imported; send the file again.");
        if (store_import_job_finish(ctx, &row, NULL, 0) != STORE_OK)
            log_warn("import_job_unsaved", "import %s: not ended after its audit failed", j->id);
        vrs_reply_audit_failed(resp);
    } else {
        reply_json(resp, 202, job_json(&row, NULL));
        rc = 0;
    }
    store_tenant_ctx_close(ctx);
    return rc;
}

void
import_h_upload(const struct http_request *req, struct http_response *resp)
{
    struct import_job *j = http_request_take_upload(req);

    if (j == NULL) {
        vrs_reply_unavailable(resp);
        return;
    }
    import_job_identity(&j->who, req);       /* kind, encoding, dry_run: sink_open's */
    if (spool_finish(j->spool) != 0) {
        log_error("spool_failed", "cannot finish an upload spool: %s", strerror(errno));
        vrs_reply_unavailable(resp);
        goto cancel;
    }
    if (name_job(req, j, resp) != 0 || accept_job(req, j, resp) != 0)
        goto cancel;
    import_runner_submit(j);            /* the runner owns it now */
    return;
cancel:
    import_job_cancel(j);               /* wipes the spool, frees the slot */
}

/* ---- GET /v1/imports/{id} and its problems ------------------------------------------------------ */

/* The tenant's job, or 404 for an unknown id and for another tenant's,
 * alike (R1.1).  0, or -1 with resp set. */
static int
load_job(const struct http_request *req, struct http_response *resp, struct store_tenant *ctx,
         struct store_import_job *row)
{
    enum store_status st = store_import_job_get(ctx, http_param(req, "id"), row);

    if (st == STORE_OK)
        return 0;
    if (st == STORE_NOTFOUND)
        reply_error(resp, 404, "unknown_import", "No import job has this id.", "id");
    else
        vrs_reply_unavailable(resp);
    return -1;
}

void
import_h_get(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct store_import_job row;
    struct import_board_view v;
    bool live;

    if (vrs_tenant_open(req, resp, &ctx) != 0)
        return;
    if (load_job(req, resp, ctx, &row) == 0) {
        json_t *o;
        resolve(req, ctx, &row, &v, &live);
        if ((o = job_json(&row, live ? &v : NULL)) != NULL)
            reply_json(resp, 200, o);
        else
            vrs_reply_unavailable(resp);
    }
    store_tenant_ctx_close(ctx);
}

static int
add_problem(const struct store_import_problem *p, void *arg)
{
    json_t *list = arg;

    json_array_append_new(list, json_pack("{s:I,s:I,s:o,s:s}", "seq", (json_int_t)p->seq,
                                          "line", (json_int_t)p->line, "column",
                                          p->column[0] ? json_string(p->column) : json_null(),
                                          "reason", p->reason));
    return 0;
}

void
import_h_problems(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct store_import_job row;
    uint64_t after = 0, limit = IMPORT_PROBLEMS_PAGE;
    json_t *list;
    size_t n;

    if ((http_has_param(req, "after") &&
         util_parse_u64(http_param(req, "after"), 0, STORE_IMPORT_PROBLEMS_MAX, &after) != 0) ||
        (http_has_param(req, "limit") &&
         util_parse_u64(http_param(req, "limit"), 1, IMPORT_PROBLEMS_PAGE_MAX, &limit) != 0)) {
        reply_error(resp, 400, "invalid_parameter", "after must be 0 to 10000 and limit 1 to "
                    "1000.", http_has_param(req, "limit") ? "limit" : "after");
        return;
    }
    if (vrs_tenant_open(req, resp, &ctx) != 0)
        return;
    if (load_job(req, resp, ctx, &row) != 0 || (list = json_array()) == NULL)
        goto out;
    if (store_import_job_problems(ctx, row.id, (int64_t)after, (size_t)limit, add_problem,
                                  list) != STORE_OK) {
        json_decref(list);
        vrs_reply_unavailable(resp);
        goto out;
    }
    n = json_array_size(list);
    /* A full page may have more after it; the last seq is where to go on. */
    reply_json(resp, 200, json_pack("{s:s,s:I,s:I,s:o,s:o}", "id", row.id,
                                    "problems", (json_int_t)row.problems,
                                    "problems_kept", (json_int_t)row.problems_kept,
                                    "items", list, "next_after",
                                    n == limit ? json_integer((json_int_t)(after + n))
                                               : json_null()));
out:
    store_tenant_ctx_close(ctx);
}

/* ---- GET /v1/imports ---------------------------------------------------------------------- */

struct listing {
    struct store_import_job rows[IMPORT_LIST_MAX];
    size_t                  n;
};

static int
collect(const struct store_import_job *j, void *arg)
{
    struct listing *l = arg;

    if (l->n == IMPORT_LIST_MAX)
        return 1;
    l->rows[l->n++] = *j;
    return 0;
}

void
import_h_list(const struct http_request *req, struct http_response *resp)
{
    struct store_tenant *ctx = NULL;
    struct listing *l = calloc(1, sizeof(*l));
    json_t *list = json_array();

    if (l == NULL || list == NULL) {
        vrs_reply_unavailable(resp);
        goto out;
    }
    if (vrs_tenant_open(req, resp, &ctx) != 0)
        goto out;
    if (store_import_job_list(ctx, IMPORT_LIST_MAX, collect, l) != STORE_OK) {
        vrs_reply_unavailable(resp);
        goto out;
    }
    /* Resolved after the walk: resolve may write (an interrupted job). */
    for (size_t i = 0; i < l->n; i++) {
        struct import_board_view v;
        bool live;
        resolve(req, ctx, &l->rows[i], &v, &live);
        json_array_append_new(list, job_json(&l->rows[i], live ? &v : NULL));
    }
    reply_json(resp, 200, json_pack("{s:O}", "imports", list));
out:
    json_decref(list);
    store_tenant_ctx_close(ctx);
    free(l);
}
