/*
 * query.c - audit log search and per-staff access review (R7.5).
 */
#include "audit/query.h"

#include <stdlib.h>
#include <string.h>

#include "audit/chain.h"

int
audit_jst_hour(int64_t us)
{
    int64_t s = us / 1000000 + 9 * 3600;

    return (int)((s % 86400 + 86400) % 86400 / 3600);
}

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

typedef int (*entry_fn)(void *arg, json_t *entry, json_t *ev, int64_t t);

/* Call fn for every entry in the time range, oldest first. */
static int
walk(const char *dir, const struct audit_query *q, entry_fn fn, void *arg)
{
    struct audit_segment *segs;
    size_t n;
    int rc = 0;

    if (audit_segments_list(dir, &segs, &n) != 0)
        return -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char *buf;
        size_t len;
        /* Segment i ends no later than segment i+1 starts. */
        if (q->has_since && i + 1 < n && segs[i + 1].start_s * 1000000 < q->since_us)
            continue;
        if (q->has_until && segs[i].start_s * 1000000 >= q->until_us)
            break;
        if (audit_segment_read(&segs[i], &buf, &len) != 0) {
            rc = -1;
            break;
        }
        for (char *p = buf; p < buf + len && rc == 0;) {
            char *nl = memchr(p, '\n', (size_t)(buf + len - p));
            if (nl == NULL)
                break;
            json_t *o = json_loadb(p, (size_t)(nl - p), 0, NULL);
            json_t *ev = json_object_get(o, "event");
            int64_t t;
            p = nl + 1;
            if (!json_is_object(ev) ||
                audit_time_parse(json_string_value(json_object_get(o, "time")) ?
                                 json_string_value(json_object_get(o, "time")) : "", &t) != 0) {
                json_decref(o);
                continue;
            }
            if ((!q->has_since || t >= q->since_us) && (!q->has_until || t < q->until_us) &&
                field_is(ev, "tenant", q->tenant) && field_is(ev, "actor", q->actor) &&
                field_is(ev, "action", q->action) &&
                (q->object == NULL || has_object(ev, q->object)))
                rc = fn(arg, o, ev, t);
            json_decref(o);
        }
        free(buf);
    }
    free(segs);
    return rc < 0 ? -1 : 0;
}

struct collect {
    json_t *rows;
    size_t  limit;
};

static int
collect_one(void *arg, json_t *entry, json_t *ev, int64_t t)
{
    struct collect *c = arg;

    (void)ev;
    (void)t;
    json_object_del(entry, "hash");
    if (json_array_append(c->rows, entry) != 0)
        return -1;
    return c->limit > 0 && json_array_size(c->rows) >= c->limit ? 1 : 0;
}

int
audit_query_run(const char *dir, const struct audit_query *q, json_t **rows)
{
    struct collect c = { json_array(), q->limit };

    *rows = NULL;
    if (c.rows == NULL || walk(dir, q, collect_one, &c) != 0) {
        json_decref(c.rows);
        return -1;
    }
    *rows = c.rows;
    return 0;
}

struct review {
    json_t  *touched;     /* object -> count */
    json_t  *off_hours, *failures, *refusals;
    unsigned start, end;
    size_t   events;
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

static int
review_one(void *arg, json_t *entry, json_t *ev, int64_t t)
{
    struct review *r = arg;
    const char *action = json_string_value(json_object_get(ev, "action"));
    const char *outcome = json_string_value(json_object_get(ev, "outcome"));
    bool resident = action != NULL && strncmp(action, "resident.", 9) == 0;
    int h = audit_jst_hour(t);

    r->events++;
    if (resident) {
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(ev, "objects"), i, o) {
            const char *id = json_string_value(o);
            json_int_t c = json_integer_value(json_object_get(r->touched, id));
            if (id != NULL)
                json_object_set_new(r->touched, id, json_integer(c + 1));
        }
    }
    if (resident && ((unsigned)h < r->start || (unsigned)h >= r->end))
        json_array_append_new(r->off_hours, brief(entry));
    if (outcome != NULL && strcmp(outcome, "failure") == 0)
        json_array_append_new(r->failures, brief(entry));
    if (outcome != NULL && strcmp(outcome, "refused") == 0)
        json_array_append_new(r->refusals, brief(entry));
    return 0;
}

int
audit_review(const char *dir, const char *actor, const struct audit_query *range,
             unsigned office_start, unsigned office_end, json_t **report)
{
    struct audit_query q = *range;
    struct review r = { json_object(), json_array(), json_array(), json_array(),
                        office_start, office_end, 0 };
    int rc = -1;

    *report = NULL;
    q.actor = actor;
    if (r.touched != NULL && r.off_hours != NULL && r.failures != NULL && r.refusals != NULL &&
        walk(dir, &q, review_one, &r) == 0) {
        *report = json_pack("{s:s,s:I,s:I,s:O,s:I,s:O,s:I,s:O,s:I,s:O}",
                            "actor", actor, "events", (json_int_t)r.events,
                            "records_touched", (json_int_t)json_object_size(r.touched),
                            "records", r.touched,
                            "off_hours", (json_int_t)json_array_size(r.off_hours),
                            "off_hours_entries", r.off_hours,
                            "failures", (json_int_t)json_array_size(r.failures),
                            "failure_entries", r.failures,
                            "refusals", (json_int_t)json_array_size(r.refusals),
                            "refusal_entries", r.refusals);
        rc = *report != NULL ? 0 : -1;
    }
    json_decref(r.touched);
    json_decref(r.off_hours);
    json_decref(r.failures);
    json_decref(r.refusals);
    return rc;
}
