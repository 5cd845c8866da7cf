/*
 * detect.c - intrusion detection rules and webhook delivery (R7.4).
 */
#include "audit/detect.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/event.h"
#include "common/log.h"

#define MAX_KEYS    4096      /* tracked actors / sources / terminals per rule */
#define KEY_LEN     80
#define JST_OFFSET_S (9 * 3600)

/* One tracked key: a ring of the last `cap` event times, or (mass_read)
 * the distinct objects seen with their times. */
struct track {
    char     key[KEY_LEN];
    int64_t *times;
    char   (*objs)[KEY_LEN];
    unsigned cap, n, head;
    int64_t  last_alert;
    int64_t  blocked_until;
    int64_t  last_seen;
};

struct table {
    struct track *t;
    size_t n;
};

struct detect {
    struct detect_cfg c;
    struct table acct, src, term, reads, hours;
};

struct detect *
detect_new(const struct detect_cfg *c)
{
    struct detect *d = calloc(1, sizeof(*d));

    if (d != NULL)
        d->c = *c;
    return d;
}

static void
table_free(struct table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->t[i].times);
        free(t->t[i].objs);
    }
    free(t->t);
}

void
detect_free(struct detect *d)
{
    if (d == NULL)
        return;
    table_free(&d->acct);
    table_free(&d->src);
    table_free(&d->term);
    table_free(&d->reads);
    table_free(&d->hours);
    free(d);
}

/* Find or add `key`; when full, the least recently seen entry is reused. */
static struct track *
lookup(struct table *t, const char *key, unsigned cap, bool objs, int64_t now)
{
    size_t victim = 0;

    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->t[i].key, key) == 0) {
            t->t[i].last_seen = now;
            return &t->t[i];
        }
        if (t->t[i].last_seen < t->t[victim].last_seen)
            victim = i;
    }
    if (t->t == NULL) {
        t->t = calloc(MAX_KEYS, sizeof(*t->t));
        if (t->t == NULL)
            return NULL;
    }
    if (t->n < MAX_KEYS)
        victim = t->n++;
    struct track *k = &t->t[victim];
    free(k->times);
    free(k->objs);
    memset(k, 0, sizeof(*k));
    snprintf(k->key, sizeof(k->key), "%s", key);
    k->cap = cap == 0 ? 1 : cap;
    k->times = calloc(k->cap, sizeof(*k->times));
    if (objs)
        k->objs = calloc(k->cap, sizeof(*k->objs));
    if (k->times == NULL || (objs && k->objs == NULL)) {
        t->n--;
        return NULL;
    }
    k->last_seen = now;
    return k;
}

/* Record one occurrence; true when the last `cap` fell within window_us. */
static bool
ring_hit(struct track *k, int64_t now, int64_t window_us)
{
    k->times[k->head] = now;
    k->head = (k->head + 1) % k->cap;
    if (k->n < k->cap)
        k->n++;
    if (k->n < k->cap)
        return false;
    /* The oldest of the last cap events is at head. */
    return now - k->times[k->head] < window_us;
}

static json_t *
alert(const char *rule, const char *field, const char *value, unsigned count,
      unsigned threshold, unsigned window)
{
    json_t *a = audit_event_new("intrusion.alert", AUDIT_SUCCESS);

    if (a == NULL || audit_event_info_str(a, "rule", rule) != 0 ||
        audit_event_info_int(a, "count", count) != 0 ||
        audit_event_info_int(a, "threshold", threshold) != 0 ||
        audit_event_info_int(a, "window_seconds", window) != 0) {
        json_decref(a);
        return NULL;
    }
    /* The value came from a validated event: copy it under the same key. */
    if (field != NULL && value != NULL)
        json_object_set_new(a, field, json_string(value));
    log_event(LOG_LVL_WARN, "intrusion_alert",
              json_pack("{s:s,s:s?,s:s?,s:i,s:i}", "rule", rule, "field", field,
                        "value", value, "count", (int)count, "threshold", (int)threshold));
    return a;
}

static int
add(json_t *alerts, json_t *a)
{
    return a != NULL && json_array_append_new(alerts, a) == 0 ? 1 : 0;
}

/* Events of the daemon acting on its own (transfer answers at any hour,
 * the nightly retention job deleting many residents) are not a staff
 * member's reading: they never raise mass_read or off_hours.  They stay
 * in the log and in the system actor's review. */
static bool
is_staff_access(const json_t *ev, const char *actor)
{
    return actor != NULL && strcmp(actor, AUDIT_SYSTEM_ACTOR) != 0 &&
           audit_event_is_personal(ev);
}

/* Forget the reads that fell out of the window, compacting the set. */
static void
reads_expire(struct track *k, int64_t now, int64_t rwin)
{
    unsigned live = 0;

    for (unsigned j = 0; j < k->n; j++)
        if (now - k->times[j] < rwin) {
            if (live != j) {
                k->times[live] = k->times[j];
                memcpy(k->objs[live], k->objs[j], KEY_LEN);
            }
            live++;
        }
    k->n = live;
}

/* One person read: `id` seen again only refreshes its time; NULL is one
 * record of a bulk read, never the same as another. */
static void
reads_add(struct track *k, const char *id, int64_t now)
{
    if (id != NULL)
        for (unsigned j = 0; j < k->n; j++)
            if (k->objs[j][0] != '\0' && strcmp(k->objs[j], id) == 0) {
                k->times[j] = now;
                return;
            }
    if (k->n < k->cap) {
        snprintf(k->objs[k->n], KEY_LEN, "%s", id != NULL ? id : "");
        k->times[k->n++] = now;
    }
}

/* The people an event touches, counted as detect.distinct_residents says:
 * the residents it names (resident:, addr:); failing those, its subject
 * (a search that matched nobody); failing that, each personal record it
 * names (vaccination:, inquiry: ...), standing for one person each; and
 * the records of a bulk read (an export), each a person of its own. */
static void
reads_feed(struct track *k, const json_t *ev, int64_t now)
{
    json_t *objs = json_object_get(ev, "objects"), *o;
    const char *subject = json_string_value(json_object_get(ev, "subject"));
    bool persons = false;
    size_t i;

    json_array_foreach(objs, i, o)
        persons = persons || audit_object_is_person(json_string_value(o));
    json_array_foreach(objs, i, o) {
        const char *id = json_string_value(o);
        if (persons ? audit_object_is_person(id)
                    : subject == NULL && audit_object_is_personal(id))
            reads_add(k, id, now);
    }
    if (!persons && subject != NULL)
        reads_add(k, subject, now);
    for (int64_t r = audit_event_bulk_reads(ev); r > 0 && k->n < k->cap; r--)
        reads_add(k, NULL, now);
}

/* R7.4 mass_read and off_hours for one event touching personal data. */
static int
rules_personal(struct detect *d, const json_t *ev, const char *actor, int64_t now,
               json_t *alerts)
{
    int64_t rwin = (int64_t)d->c.read_window * 1000000;
    int64_t win = (int64_t)d->c.window * 1000000;
    int added = 0, hour;
    struct track *k;

    if ((k = lookup(&d->reads, actor, d->c.distinct_residents, true, now)) != NULL) {
        reads_expire(k, now, rwin);
        reads_feed(k, ev, now);
        if (k->n >= k->cap) {       /* at most one alert an event */
            added += add(alerts, alert("mass_read", "actor", actor, k->n,
                                       d->c.distinct_residents, d->c.read_window));
            k->n = 0;               /* fire again only after as many more */
        }
    }
    hour = (int)(((now / 1000000 + JST_OFFSET_S) % 86400) / 3600);
    if ((unsigned)hour < d->c.office_start || (unsigned)hour >= d->c.office_end) {
        if ((k = lookup(&d->hours, actor, 1, false, now)) != NULL &&
            (k->last_alert == 0 || now - k->last_alert >= win)) {
            k->last_alert = now;
            added += add(alerts, alert("off_hours", "actor", actor, 1, 1, d->c.window));
        }
    }
    return added;
}

int
detect_feed(struct detect *d, const json_t *ev, int64_t now, json_t *alerts)
{
    const char *action = json_string_value(json_object_get(ev, "action"));
    const char *outcome = json_string_value(json_object_get(ev, "outcome"));
    const char *actor = json_string_value(json_object_get(ev, "actor"));
    const char *source = json_string_value(json_object_get(ev, "source"));
    const char *reason = json_string_value(json_object_get(ev, "reason"));
    const char *terminal = json_string_value(json_object_get(ev, "terminal"));
    int64_t win = (int64_t)d->c.window * 1000000;
    int added = 0;
    struct track *k;

    if (action == NULL || outcome == NULL || strcmp(action, "intrusion.alert") == 0)
        return 0;
    if (strcmp(action, "auth.login") == 0 && strcmp(outcome, "success") != 0) {
        if (actor != NULL &&
            (k = lookup(&d->acct, actor, d->c.login_failures, false, now)) != NULL &&
            ring_hit(k, now, win) && now - k->last_alert >= win) {
            k->last_alert = now;
            added += add(alerts, alert("login_failures_account", "actor", actor,
                                       d->c.login_failures, d->c.login_failures, d->c.window));
        }
        if (source != NULL &&
            (k = lookup(&d->src, source, d->c.source_failures, false, now)) != NULL &&
            ring_hit(k, now, win) && now - k->last_alert >= win) {
            k->last_alert = now;
            k->blocked_until = now + (int64_t)d->c.block_seconds * 1000000;
            added += add(alerts, alert("login_failures_source", "source", source,
                                       d->c.source_failures, d->c.source_failures, d->c.window));
        }
    }
    if (reason != NULL && (strcmp(reason, "terminal_unregistered") == 0 ||
                           strcmp(reason, "terminal_revoked") == 0)) {
        const char *key = terminal ? terminal : source ? source : "unknown";
        if ((k = lookup(&d->term, key, 1, false, now)) != NULL &&
            (k->last_alert == 0 || now - k->last_alert >= win)) {
            k->last_alert = now;
            added += add(alerts, alert("terminal_refused", terminal ? "terminal" : "source",
                                       terminal ? terminal : source, 1, 1, d->c.window));
        }
    }
    if (is_staff_access(ev, actor))
        added += rules_personal(d, ev, actor, now, alerts);
    return added;
}

bool
detect_blocked(struct detect *d, const char *source, int64_t now, unsigned *left)
{
    *left = 0;
    for (size_t i = 0; i < d->src.n; i++)
        if (strcmp(d->src.t[i].key, source) == 0 && d->src.t[i].blocked_until > now) {
            *left = (unsigned)((d->src.t[i].blocked_until - now + 999999) / 1000000);
            return true;
        }
    return false;
}

/* ---- webhook -------------------------------------------------------- */

#define QUEUE_MAX 256

struct notifier {
    char            url[512];
    unsigned        attempts, first_delay_ms;
    pthread_t       thr;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    char           *q[QUEUE_MAX];
    size_t          qh, qn;
    bool            stop;
    unsigned        delivered, dropped;
};

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static int
post_once(const char *url, const char *body)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    long code = 0;
    CURLcode r;

    if (c == NULL)
        return -1;
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    r = curl_easy_perform(c);
    if (r == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r == CURLE_OK && code >= 200 && code < 300 ? 0 : -1;
}

static void
sleep_ms(struct notifier *n, unsigned ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&n->mu);
    while (!n->stop && pthread_cond_timedwait(&n->cv, &n->mu, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&n->mu);
}

static void *
notifier_main(void *arg)
{
    struct notifier *n = arg;

    for (;;) {
        char *body;
        pthread_mutex_lock(&n->mu);
        while (n->qn == 0 && !n->stop)
            pthread_cond_wait(&n->cv, &n->mu);
        if (n->qn == 0) {
            pthread_mutex_unlock(&n->mu);
            return NULL;
        }
        body = n->q[n->qh];
        n->qh = (n->qh + 1) % QUEUE_MAX;
        n->qn--;
        pthread_mutex_unlock(&n->mu);
        unsigned delay = n->first_delay_ms;
        bool ok = false;
        for (unsigned i = 0; i < n->attempts && !ok; i++) {
            if (i > 0) {
                sleep_ms(n, delay);
                delay = delay * 2 > 60000 ? 60000 : delay * 2;
            }
            ok = post_once(n->url, body) == 0;
            pthread_mutex_lock(&n->mu);
            bool stopping = n->stop;
            pthread_mutex_unlock(&n->mu);
            if (stopping && !ok)
                break;
        }
        pthread_mutex_lock(&n->mu);
        if (ok)
            n->delivered++;
        else
            n->dropped++;
        pthread_mutex_unlock(&n->mu);
        if (!ok)
            log_warn("webhook_failed", "an intrusion alert could not be delivered to the "
                     "webhook (it is in the audit log and syslog)");
        free(body);
    }
}

int
notifier_start(const char *url, unsigned attempts, unsigned first_delay_ms,
               struct notifier **out)
{
    struct notifier *n = calloc(1, sizeof(*n));

    *out = NULL;
    if (n == NULL || snprintf(n->url, sizeof(n->url), "%s", url) >= (int)sizeof(n->url)) {
        free(n);
        return -1;
    }
    n->attempts = attempts ? attempts : 1;
    n->first_delay_ms = first_delay_ms ? first_delay_ms : 1000;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    if (pthread_create(&n->thr, NULL, notifier_main, n) != 0) {
        pthread_mutex_destroy(&n->mu);
        pthread_cond_destroy(&n->cv);
        free(n);
        return -1;
    }
    *out = n;
    return 0;
}

void
notifier_post(struct notifier *n, const json_t *a)
{
    char *body;

    if (n == NULL || (body = json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
        return;
    pthread_mutex_lock(&n->mu);
    if (n->qn < QUEUE_MAX) {
        n->q[(n->qh + n->qn) % QUEUE_MAX] = body;
        n->qn++;
        body = NULL;
        pthread_cond_signal(&n->cv);
    } else {
        n->dropped++;
    }
    pthread_mutex_unlock(&n->mu);
    free(body);
}

unsigned
notifier_delivered(struct notifier *n)
{
    unsigned v;

    pthread_mutex_lock(&n->mu);
    v = n->delivered;
    pthread_mutex_unlock(&n->mu);
    return v;
}

void
notifier_stop(struct notifier *n, unsigned wait_ms)
{
    if (n == NULL)
        return;
    for (unsigned waited = 0; waited < wait_ms; waited += 50) {
        pthread_mutex_lock(&n->mu);
        size_t left = n->qn;
        pthread_mutex_unlock(&n->mu);
        if (left == 0)
            break;
        struct timespec ts = { 0, 50000000L };
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&n->mu);
    n->stop = true;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->thr, NULL);
    while (n->qn > 0) {
        free(n->q[n->qh]);
        n->qh = (n->qh + 1) % QUEUE_MAX;
        n->qn--;
    }
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    free(n);
}
