/*
 * query.c - audit log search and per-staff access review (R7.5).
 *
 * Entries are scanned oldest first.  Each line is first judged by its
 * head ({"seq":N,"time":"…") without parsing the JSON, and lines that
 * cannot match a tenant or actor filter are passed over with one memmem;
 * only the rest is parsed.  See query.h for the bounds.
 */
#include "audit/query.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/event.h"
#include "text/csvcell.h"

#define CHUNK        (1024u * 1024u)   /* read size of a live segment; longest line */
#define HEAD_MAX     96                /* bytes of a line's head we need */
#define CHECK_EVERY  64                /* lines between two looks at the clock */
#define REVIEW_MAX_RECORDS (10u * AUDIT_REVIEW_MAX_ITEMS)

int
audit_jst_hour(int64_t us)
{
    int64_t s = us / 1000000 + 9 * 3600;

    return (int)((s % 86400 + 86400) % 86400 / 3600);
}

int64_t
audit_mono_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- the catalogue of actions (R7.5: a filter names one of these) -------- */

/*
 * Every action the code can record, and nothing else, sorted (C locale),
 * one block per namespace; docs/audit.md "Actions" says what each records.
 * scripts/check-audit-actions.sh (run by scripts/lint.sh and by
 * tests/unit/test_audit_actions.c) fails when the code emits an action
 * that is not here, when an entry here is emitted by nothing, or when the
 * docs' table differs.  An action the code stops emitting is not deleted
 * but marked RETIRED with the day it stopped: the log keeps entries for
 * five years (R7.3), and an auditor must still be able to filter on them.
 */
#define RETIRED(name, yyyy_mm_dd) name   /* no longer emitted since that day */

static const char *const actions[] = {
    /* audit: the writer's own events, auditors' reads */
    "audit.query",
    "audit.review",
    "audit.rotate",
    "audit.segment_start",
    "audit.segments_deleted",
    "audit.start",
    "audit.stop",
    "audit.tail_truncated",
    /* auth: sign-in and the signed-in staff member's own account */
    "auth.lock",
    "auth.login",
    "auth.logout",
    "auth.password_change",
    /* cli: the operator's state-changing mamori commands (cli_audit.c) */
    "cli.import",
    "cli.import.commit",
    "cli.key.reencrypt",
    "cli.key.rewrap",
    "cli.key.rotate",
    "cli.staff.enrol",
    "cli.staff.terminal_register",
    "cli.store.migrate",
    "cli.tenant.create",
    "cli.tenant.erase",
    "cli.terminal.issue",
    "cli.terminal.revoke",
    /* daemon: the mamorid parent */
    "daemon.reload",
    "daemon.start",
    "daemon.stop",
    /* intrusion: detection rules (detect.c) */
    "intrusion.alert",
    /* key: the key holder's records, built by auditd.c (key_event) */
    "key.erase",
    "key.events_dropped",
    "key.grant_refused",
    "key.keystore_open",
    "key.keystore_reload",
    "key.rewrap",
    "key.rotate",
    "key.tenant_create",
    /* resident: residents' records, exports and imports (vrs/) */
    "resident.correct",
    "resident.corrections",
    "resident.create",
    "resident.export",
    "resident.import",
    "resident.import.commit",
    "resident.import.result",
    "resident.read",
    "resident.search",
    "resident.site_check",
    /* retention: the deletion of expired data (R2.10) */
    "retention.purge",
    "retention.run",
    /* site, site_device: vaccination-site devices (vrs/site.c) */
    "site.auth",
    "site_device.create",
    "site_device.revoke",
    /* staff, terminal: a tenant user admin's changes (auth/api.c) */
    "staff.create",
    "staff.disable",
    "staff.enable",
    "staff.enrol",
    "staff.reconfirm",
    "staff.reset",
    "staff.role",
    "terminal.register",
    "terminal.revoke",
    /* transfer: inquiries between municipalities (transfer/) */
    "transfer.bulk",
    "transfer.consent",
    "transfer.disclosure",
    "transfer.inquire",
    "transfer.inquiry.read",
    "transfer.job.read",
    "transfer.job.result",
    "transfer.provide",
    "transfer.records.read",
    "transfer.register",
    "transfer.undeliverable",
    /* vaccination, voucher: vaccination records and vouchers (vrs/) */
    "vaccination.correct",
    "vaccination.create",
    "vaccination.site_create",
    "voucher.issue",
    "voucher.read",
};

#define NACTIONS (sizeof(actions) / sizeof(actions[0]))

bool
audit_action_known(const char *action)
{
    size_t n = action != NULL ? strlen(action) : 0;

    if (n == 0)
        return false;
    /* "ns.*": every action of a namespace some catalogued action has. */
    if (n >= 3 && strcmp(action + n - 2, ".*") == 0) {
        for (size_t i = 0; i < NACTIONS; i++)
            if (strncmp(actions[i], action, n - 1) == 0)
                return true;
        return false;
    }
    for (size_t i = 0; i < NACTIONS; i++)
        if (strcmp(actions[i], action) == 0)
            return true;
    return false;
}

const char *
audit_filter_check(enum audit_filter f, const char *v)
{
    json_t *ev;
    int rc;

    if (v == NULL || v[0] == '\0')
        return "must not be empty";
    switch (f) {
    case AUDIT_FILTER_TENANT:
        return strlen(v) == 6 && strspn(v, "0123456789") == 6 ? NULL : "must be 6 digits";
    case AUDIT_FILTER_ACTION:
        return audit_action_known(v) ? NULL : "is not a known action (or namespace.*)";
    case AUDIT_FILTER_OUTCOME:
        return strcmp(v, "success") == 0 || strcmp(v, "failure") == 0 ||
               strcmp(v, "refused") == 0 ? NULL : "must be success, failure or refused";
    case AUDIT_FILTER_ACTOR:
    case AUDIT_FILTER_OBJECT:
        /* The event schema decides (audit/event.c), so a filter can name
         * exactly what an event can hold. */
        ev = audit_event_new("audit.query", AUDIT_SUCCESS);
        rc = ev == NULL ? -1 : f == AUDIT_FILTER_ACTOR ? audit_event_set(ev, AUDIT_F_ACTOR, v)
                                                       : audit_event_add_object(ev, v);
        json_decref(ev);
        if (rc == 0)
            return NULL;
        return f == AUDIT_FILTER_ACTOR ? "must be 1 to 64 of a-z, 0-9, '.', '_', '@', '-'"
                                       : "must be 1 to 80 of a-z, 0-9, '.', '_', ':', '-'";
    }
    return "is not a filter";
}

/* ---- matching --------------------------------------------------------------- */

static bool
has_object(json_t *ev, const char *id)
{
    size_t i;
    json_t *o;

    json_array_foreach(json_object_get(ev, "objects"), i, o)
        if (json_is_string(o) && strcmp(json_string_value(o), id) == 0)
            return true;
    return false;
}

static bool
field_is(json_t *ev, const char *k, const char *want)
{
    const char *v = json_string_value(json_object_get(ev, k));

    return want == NULL || (v != NULL && strcmp(v, want) == 0);
}

static bool
action_is(json_t *ev, const char *want)
{
    const char *v = json_string_value(json_object_get(ev, "action"));
    size_t n = want != NULL ? strlen(want) : 0;

    if (want == NULL)
        return true;
    if (v == NULL)
        return false;
    if (n >= 2 && strcmp(want + n - 2, ".*") == 0)
        return strncmp(v, want, n - 1) == 0;
    return strcmp(v, want) == 0;
}

static bool
matches(const struct audit_query *q, json_t *ev)
{
    return field_is(ev, "tenant", q->tenant) && field_is(ev, "actor", q->actor) &&
           action_is(ev, q->action) && field_is(ev, "outcome", q->outcome) &&
           (q->object == NULL || has_object(ev, q->object));
}

/* `"key":"value"` as the writer prints it (compact, no escapes needed),
 * or "" when the value has characters JSON might escape: no prefilter. */
static void
member_text(char *out, size_t outsz, const char *key, const char *value)
{
    out[0] = '\0';
    if (value == NULL)
        return;
    for (const char *c = value; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || strchr("._@:-", *c) != NULL))
            return;
    if (snprintf(out, outsz, "\"%s\":\"%s\"", key, value) >= (int)outsz)
        out[0] = '\0';
}

/* The head of a line: {"seq":N,"time":"<AUDIT_TIME_LEN>", ... */
static bool
line_head(const char *p, size_t n, uint64_t *seq, int64_t *t)
{
    static const char a[] = "{\"seq\":", b[] = ",\"time\":\"";
    char ts[AUDIT_TIME_LEN + 1];
    uint64_t v = 0;
    size_t i = sizeof(a) - 1, digits = 0;

    if (n < i || memcmp(p, a, i) != 0)
        return false;
    for (; i < n && p[i] >= '0' && p[i] <= '9' && digits < 19; i++, digits++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    if (digits == 0 || n - i < sizeof(b) - 1 + AUDIT_TIME_LEN + 1 ||
        memcmp(p + i, b, sizeof(b) - 1) != 0)
        return false;
    i += sizeof(b) - 1;
    memcpy(ts, p + i, AUDIT_TIME_LEN);
    ts[AUDIT_TIME_LEN] = '\0';
    if (p[i + AUDIT_TIME_LEN] != '"' || audit_time_parse(ts, t) != 0)
        return false;
    *seq = v;
    return true;
}

/* Entirely before the range asked for (by number or by time)?  True for
 * a prefix of every segment: seq and time only grow (R7.6). */
static bool
before_range(const struct audit_query *q, uint64_t seq, int64_t t)
{
    return (q->after_seq > 0 && seq <= q->after_seq) || (q->has_since && t < q->since_us);
}

/* ---- reading segments -------------------------------------------------------- */

/* A live segment is read CHUNK bytes at a time, up to its size when
 * opened (the writer may be appending: a last line without its newline
 * is not read); an archived one is decompressed whole. */
struct reader {
    int    fd;
    char  *buf;
    size_t len, pos;       /* valid bytes in buf, next unread */
    off_t  off, end;       /* file offset of buf[0]; the size when opened */
    bool   whole, failed;
};

static int
reader_open(struct reader *r, const struct audit_segment *s)
{
    struct stat st;

    memset(r, 0, sizeof(*r));
    r->fd = -1;
    if (s->archived) {
        r->whole = true;
        return audit_segment_read(s, &r->buf, &r->len);
    }
    r->fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (r->fd < 0)
        return -1;
    if (fstat(r->fd, &st) != 0 || (r->buf = malloc(CHUNK)) == NULL) {
        int e = errno;
        close(r->fd);
        r->fd = -1;
        errno = e;
        return -1;
    }
    r->end = st.st_size;
    return 0;
}

static void
reader_close(struct reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    free(r->buf);
    r->fd = -1;
    r->buf = NULL;
}

/* The next complete line (without its newline) and its length, or NULL
 * at the end (r->failed on a read error). */
static const char *
reader_line(struct reader *r, size_t *n)
{
    for (;;) {
        char *p = r->buf + r->pos;
        char *nl = r->len > r->pos ? memchr(p, '\n', r->len - r->pos) : NULL;
        off_t at;
        ssize_t got;

        if (nl != NULL) {
            *n = (size_t)(nl - p);
            r->pos = (size_t)(nl - r->buf) + 1;
            return p;
        }
        if (r->whole)
            return NULL;
        if (r->pos == 0 && r->len == CHUNK) {
            r->failed = true;      /* a line longer than any the writer makes */
            return NULL;
        }
        memmove(r->buf, p, r->len - r->pos);
        r->off += (off_t)r->pos;
        r->len -= r->pos;
        r->pos = 0;
        at = r->off + (off_t)r->len;
        if (at >= r->end)
            return NULL;
        got = pread(r->fd, r->buf + r->len,
                    (size_t)(r->end - at) < CHUNK - r->len ? (size_t)(r->end - at)
                                                           : CHUNK - r->len, at);
        if (got <= 0) {
            r->failed = got < 0;
            return NULL;
        }
        r->len += (size_t)got;
    }
}

/* The first line starting at or after byte `at`: its offset and head. */
static int
line_after(int fd, off_t at, off_t end, off_t *start, uint64_t *seq, int64_t *t)
{
    char buf[HEAD_MAX];
    off_t s = at;

    /* Lines end with a newline: find the one before `at` ends. */
    while (s > 0) {
        ssize_t got = pread(fd, buf, sizeof(buf), s - 1);
        char *nl = got > 0 ? memchr(buf, '\n', (size_t)got) : NULL;
        if (got <= 0)
            return -1;
        if (nl != NULL) {
            s += nl - buf;
            break;
        }
        s += got;
        if (s >= end)
            return -1;
    }
    ssize_t got = s < end ? pread(fd, buf, sizeof(buf), s) : -1;
    if (got <= 0 || !line_head(buf, (size_t)got, seq, t))
        return -1;
    *start = s;
    return 0;
}

/* Bisection: a line start such that every line before it is before the
 * range.  Anything unreadable only makes the result earlier (safe). */
static off_t
seek_start(int fd, off_t end, const struct audit_query *q)
{
    off_t lo = 0, hi = end;

    while (hi - lo > 2 * HEAD_MAX * 64) {
        off_t mid = lo + (hi - lo) / 2, s;
        uint64_t seq;
        int64_t t;
        if (line_after(fd, mid, end, &s, &seq, &t) != 0 || s >= hi)
            hi = mid;
        else if (before_range(q, seq, t))
            lo = s;
        else
            hi = s;
    }
    return lo;
}

/* ---- the walk -------------------------------------------------------------------- */

/* Called for every matching entry; returns 0 to go on, 1 to stop (its own
 * bound: it sets *stopped), -1 on error. */
typedef int (*entry_fn)(void *arg, json_t *entry, json_t *ev, int64_t t, size_t linelen);

struct walk {
    struct audit_query         q;       /* after_seq moves on after a retry */
    const struct audit_bounds *b;
    struct audit_progress     *p;
    uint64_t                   start_after;
    entry_fn                   fn;
    void                      *arg;
    char                       tenant_text[32], actor_text[96];
    size_t                     lines;
};

enum { WALK_ON = 0, WALK_DONE, WALK_STOP, WALK_VANISHED, WALK_ERROR };

/* Out of time (or cancelled)?  Time stops a walk only once it has moved
 * past something, so a caller resuming from last_seq always progresses. */
static bool
out_of_time(struct walk *w)
{
    const struct audit_bounds *b = w->b;

    if (b == NULL || ++w->lines % CHECK_EVERY != 0)
        return false;
    if (b->cancel != NULL && atomic_load(b->cancel))
        return true;
    return b->deadline_ms > 0 && w->p->last_seq > w->start_after &&
           audit_mono_ms() >= b->deadline_ms;
}

static int
one_line(struct walk *w, const char *line, size_t n)
{
    const struct audit_query *q = &w->q;
    uint64_t seq;
    int64_t t;
    json_t *o, *ev;
    int rc;

    if (!line_head(line, n, &seq, &t) || seq <= q->after_seq)
        return WALK_ON;
    if (q->max_seq > 0 && seq > q->max_seq)
        return WALK_DONE;              /* not yet durable: the range ends here */
    w->p->last_seq = seq;
    if ((q->has_since && t < q->since_us) || (q->has_until && t >= q->until_us))
        return WALK_ON;
    w->p->scanned++;
    if ((w->tenant_text[0] != '\0' && memmem(line, n, w->tenant_text,
                                             strlen(w->tenant_text)) == NULL) ||
        (w->actor_text[0] != '\0' && memmem(line, n, w->actor_text,
                                            strlen(w->actor_text)) == NULL))
        return WALK_ON;
    o = json_loadb(line, n, 0, NULL);
    ev = json_object_get(o, "event");
    rc = WALK_ON;
    if (json_is_object(ev) && matches(q, ev)) {
        int r = w->fn(w->arg, o, ev, t, n);
        rc = r < 0 ? WALK_ERROR : r > 0 ? WALK_STOP : WALK_ON;
    }
    json_decref(o);
    return rc;
}

static int
walk_segment(struct walk *w, const struct audit_segment *s)
{
    struct reader r;
    const char *line;
    size_t n;
    int rc = WALK_ON;

    if (reader_open(&r, s) != 0)
        return !s->archived && errno == ENOENT ? WALK_VANISHED : WALK_ERROR;
    if (!r.whole && (w->q.after_seq > 0 || w->q.has_since)) {
        r.off = seek_start(r.fd, r.end, &w->q);
        r.len = r.pos = 0;
    }
    while (rc == WALK_ON && (line = reader_line(&r, &n)) != NULL) {
        if (out_of_time(w)) {
            w->p->stopped_by = "time";
            rc = WALK_STOP;
            break;
        }
        rc = one_line(w, line, n);
    }
    if (rc == WALK_ON && r.failed)
        rc = WALK_ERROR;
    reader_close(&r);
    return rc;
}

static int
walk_once(const char *dir, struct walk *w)
{
    const struct audit_query *q = &w->q;
    struct audit_segment *segs;
    size_t n;
    int rc = WALK_ON;

    if (audit_segments_list(dir, &segs, &n) != 0)
        return WALK_ERROR;
    for (size_t i = 0; i < n && rc == WALK_ON; i++) {
        /* Segment i holds entries before segment i+1's first, and ends no
         * later than segment i+1 starts. */
        if (i + 1 < n && q->after_seq > 0 && segs[i + 1].first_seq <= q->after_seq + 1)
            continue;
        if (q->has_since && i + 1 < n && segs[i + 1].start_s * 1000000 < q->since_us)
            continue;
        if ((q->has_until && segs[i].start_s * 1000000 >= q->until_us) ||
            (q->max_seq > 0 && segs[i].first_seq > q->max_seq))
            break;
        rc = walk_segment(w, &segs[i]);
    }
    free(segs);
    return rc;
}

/* Walk the range calling fn; fills *p.  0 or -1. */
static int
walk(const char *dir, const struct audit_query *q, const struct audit_bounds *b,
     struct audit_progress *p, entry_fn fn, void *arg)
{
    struct walk w;
    int rc = WALK_VANISHED;

    memset(&w, 0, sizeof(w));
    memset(p, 0, sizeof(*p));
    w.q = *q;
    w.b = b;
    w.p = p;
    w.fn = fn;
    w.arg = arg;
    w.start_after = p->last_seq = q->after_seq;
    member_text(w.tenant_text, sizeof(w.tenant_text), "tenant", q->tenant);
    member_text(w.actor_text, sizeof(w.actor_text), "actor", q->actor);
    /* A live segment archived between listing and opening: list again
     * and go on after the last entry seen. */
    for (int tries = 0; rc == WALK_VANISHED && tries < 3; tries++) {
        w.q.after_seq = p->last_seq;
        rc = walk_once(dir, &w);
    }
    p->complete = rc == WALK_ON || rc == WALK_DONE;
    if (p->complete)
        p->stopped_by = NULL;
    return rc == WALK_ERROR || rc == WALK_VANISHED ? -1 : 0;
}

/* ---- search ------------------------------------------------------------------------ */

struct collect {
    json_t     *rows;
    size_t      limit, bytes, max_bytes;
    const char **stopped;
};

static int
collect_one(void *arg, json_t *entry, json_t *ev, int64_t t, size_t linelen)
{
    struct collect *c = arg;

    (void)ev;
    (void)t;
    json_object_del(entry, "hash");
    if (json_array_append(c->rows, entry) != 0)
        return -1;
    c->bytes += linelen;
    if (c->limit > 0 && json_array_size(c->rows) >= c->limit) {
        *c->stopped = "limit";
        return 1;
    }
    if (c->max_bytes > 0 && c->bytes >= c->max_bytes) {
        *c->stopped = "bytes";
        return 1;
    }
    return 0;
}

int
audit_query_page(const char *dir, const struct audit_query *q, const struct audit_bounds *b,
                 json_t **rows, struct audit_progress *p)
{
    const char *stopped = NULL;
    struct collect c = { json_array(), q->limit, 0, b != NULL ? b->max_bytes : 0, &stopped };

    *rows = NULL;
    if (c.rows == NULL || walk(dir, q, b, p, collect_one, &c) != 0) {
        json_decref(c.rows);
        return -1;
    }
    if (!p->complete && p->stopped_by == NULL)
        p->stopped_by = stopped;
    *rows = c.rows;
    return 0;
}

int
audit_query_run(const char *dir, const struct audit_query *q, json_t **rows)
{
    struct audit_progress p;

    return audit_query_page(dir, q, NULL, rows, &p);
}

/* ---- review ------------------------------------------------------------------------ */

struct review {
    json_t  *touched;     /* personal object -> count */
    json_t  *off_hours, *failures, *refusals;
    unsigned start, end;
    size_t   events;
    size_t   n_off, n_fail, n_ref;    /* exact counts; the lists may be cut */
    bool     bounded, truncated;
    size_t   bulk_reads;              /* exports and lists naming no record */
    int64_t  bulk_records;            /* the records they read */
};

static json_t *
brief(json_t *entry)
{
    json_t *ev = json_object_get(entry, "event");

    return json_pack("{s:O,s:O,s:O,s:O*,s:O*,s:O*}", "seq", json_object_get(entry, "seq"),
                     "time", json_object_get(entry, "time"),
                     "action", json_object_get(ev, "action"),
                     "objects", json_object_get(ev, "objects"),
                     "reason", json_object_get(ev, "reason"),
                     "terminal", json_object_get(ev, "terminal"));
}

/* Add an entry to one of the lists, which the API bounds. */
static void
listed(struct review *r, json_t *list, size_t *count, json_t *entry)
{
    (*count)++;
    if (r->bounded && json_array_size(list) >= AUDIT_REVIEW_MAX_ITEMS) {
        r->truncated = true;
        return;
    }
    json_array_append_new(list, brief(entry));
}

/* Count the personal records an event names (R7.5): every kind of
 * record about a person, whatever the action (audit_object_is_personal);
 * a device or a job of another kind is not a record touched. */
static void
count_touched(struct review *r, json_t *ev)
{
    size_t i;
    json_t *o;

    json_array_foreach(json_object_get(ev, "objects"), i, o) {
        const char *id = json_string_value(o);
        json_int_t c;
        if (id == NULL || !audit_object_is_personal(id))
            continue;
        c = json_integer_value(json_object_get(r->touched, id));
        if (c == 0 && r->bounded && json_object_size(r->touched) >= REVIEW_MAX_RECORDS) {
            r->truncated = true;
            continue;
        }
        json_object_set_new(r->touched, id, json_integer(c + 1));
    }
}

static int
review_one(void *arg, json_t *entry, json_t *ev, int64_t t, size_t linelen)
{
    struct review *r = arg;
    const char *outcome = json_string_value(json_object_get(ev, "outcome"));
    int64_t bulk = audit_event_bulk_reads(ev);
    int h = audit_jst_hour(t);

    (void)linelen;
    r->events++;
    count_touched(r, ev);
    if (bulk > 0) {
        r->bulk_reads++;
        r->bulk_records += bulk;
    }
    if (audit_event_is_personal(ev) && ((unsigned)h < r->start || (unsigned)h >= r->end))
        listed(r, r->off_hours, &r->n_off, entry);
    if (outcome != NULL && strcmp(outcome, "failure") == 0)
        listed(r, r->failures, &r->n_fail, entry);
    if (outcome != NULL && strcmp(outcome, "refused") == 0)
        listed(r, r->refusals, &r->n_ref, entry);
    return 0;
}

int
audit_review_page(const char *dir, const char *actor, const struct audit_query *range,
                  unsigned office_start, unsigned office_end, const struct audit_bounds *b,
                  json_t **report, struct audit_progress *p)
{
    struct audit_query q = *range;
    struct review r = { json_object(), json_array(), json_array(), json_array(),
                        office_start, office_end, 0, 0, 0, 0, b != NULL, false, 0, 0 };
    int rc = -1;

    *report = NULL;
    q.actor = actor;
    q.limit = 0;
    if (r.touched != NULL && r.off_hours != NULL && r.failures != NULL && r.refusals != NULL &&
        walk(dir, &q, b, p, review_one, &r) == 0) {
        *report = json_pack("{s:s,s:I,s:I,s:O,s:I,s:O,s:I,s:O,s:I,s:O}",
                            "actor", actor, "events", (json_int_t)r.events,
                            "records_touched", (json_int_t)json_object_size(r.touched),
                            "records", r.touched,
                            "off_hours", (json_int_t)r.n_off,
                            "off_hours_entries", r.off_hours,
                            "failures", (json_int_t)r.n_fail,
                            "failure_entries", r.failures,
                            "refusals", (json_int_t)r.n_ref,
                            "refusal_entries", r.refusals);
        if (*report != NULL &&
            (json_object_set_new(*report, "bulk_reads", json_integer((json_int_t)r.bulk_reads))
                 != 0 ||
             json_object_set_new(*report, "bulk_records", json_integer(r.bulk_records)) != 0)) {
            json_decref(*report);
            *report = NULL;
        }
        if (*report != NULL && b != NULL &&
            json_object_set_new(*report, "truncated", json_boolean(r.truncated)) != 0) {
            json_decref(*report);
            *report = NULL;
        }
        rc = *report != NULL ? 0 : -1;
    }
    json_decref(r.touched);
    json_decref(r.off_hours);
    json_decref(r.failures);
    json_decref(r.refusals);
    return rc;
}

int
audit_review(const char *dir, const char *actor, const struct audit_query *range,
             unsigned office_start, unsigned office_end, json_t **report)
{
    struct audit_progress p;

    return audit_review_page(dir, actor, range, office_start, office_end, NULL, report, &p);
}

/* ---- CSV ------------------------------------------------------------------------------ */

/* A JSON value as a cell: strings as they are, anything else as compact
 * JSON text, nothing for a missing value.  Every cell is quoted, and one
 * a spreadsheet would evaluate is neutralised (csvcell_fwrite; actor
 * names may start with '-' or '@'). */
static int
csv_json(FILE *f, json_t *v)
{
    char *t;
    int rc;

    if (v == NULL)
        return 0;
    if (json_is_string(v))
        return csvcell_fwrite(f, json_string_value(v));
    t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    if (t == NULL)
        return -1;
    rc = csvcell_fwrite(f, t);
    free(t);
    return rc;
}

static int
csv_entries(FILE *f, const json_t *report, const char *list, const char *kind)
{
    static const char *const cols[] = { "time", "action", "objects", "reason", "terminal" };
    size_t i;
    json_t *e;

    json_array_foreach(json_object_get(report, list), i, e) {
        if (fprintf(f, "%s,%lld", kind,
                    (long long)json_integer_value(json_object_get(e, "seq"))) < 0)
            return -1;
        for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++)
            if (fputc(',', f) == EOF || csv_json(f, json_object_get(e, cols[c])) != 0)
                return -1;
        if (fputc('\n', f) == EOF)
            return -1;
    }
    return 0;
}

static long long
count_of(const json_t *report, const char *k)
{
    return (long long)json_integer_value(json_object_get(report, k));
}

int
audit_review_csv(const json_t *report, char **out, size_t *len)
{
    return audit_review_csv_tables(report, AUDIT_CSV_RECORDS, out, len);
}

int
audit_review_csv_tables(const json_t *report, unsigned tables, char **out, size_t *len)
{
    FILE *f;
    int rc = 0;

    *out = NULL;
    *len = 0;
    f = open_memstream(out, len);
    if (f == NULL)
        return -1;
    if (fputs("actor,events,records_touched,off_hours,failures,refusals\n", f) == EOF ||
        csv_json(f, json_object_get(report, "actor")) != 0 ||
        fprintf(f, ",%lld,%lld,%lld,%lld,%lld\n\nkind,seq,time,action,objects,reason,terminal\n",
                count_of(report, "events"), count_of(report, "records_touched"),
                count_of(report, "off_hours"), count_of(report, "failures"),
                count_of(report, "refusals")) < 0 ||
        csv_entries(f, report, "off_hours_entries", "off_hours") != 0 ||
        csv_entries(f, report, "failure_entries", "failure") != 0 ||
        csv_entries(f, report, "refusal_entries", "refusal") != 0 ||
        ((tables & AUDIT_CSV_RECORDS) && fputs("\nrecord,accesses\n", f) == EOF))
        rc = -1;
    if (tables & AUDIT_CSV_RECORDS) {
        const char *key;
        json_t *v;

        json_object_foreach(json_object_get(report, "records"), key, v) {
            if (rc == 0 && (csvcell_fwrite(f, key) != 0 ||
                            fprintf(f, ",%lld\n", (long long)json_integer_value(v)) < 0))
                rc = -1;
        }
    }
    /* Reads that name no record (exports, R7.5): a table of their own,
     * so the summary row keeps its columns. */
    if (rc == 0 && fprintf(f, "\nbulk_reads,bulk_records\n%lld,%lld\n",
                           count_of(report, "bulk_reads"), count_of(report, "bulk_records")) < 0)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *len = 0;
    }
    return rc;
}
