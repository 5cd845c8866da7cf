/*
 * test_transfer.c - transfer inquiries between tenants (src/transfer,
 * src/store/store_transfer.c): the message format, matching by blind
 * index, the uniform "no record" answer, consents, records on both sides,
 * tenant isolation against crafted messages, erase, and bulk jobs
 * (R3.1-R3.5, R9.5, R1.1, R1.4, R7.1).
 *
 * The store cases run on SQLite and on PostgreSQL (MAMORI_TEST_PG, as
 * test_auth.c and test_store_records.c: each case in a fresh schema;
 * unset, the PostgreSQL cases are skipped loudly).  Keys come from an
 * in-process keyring; audit events go to a sink that keeps them (and can
 * refuse them).  Tenants: 131016 (A, the receiving municipality), 011002
 * (B, the previous one), 012025 (C, a third tenant); 472018 is a valid
 * code of no tenant.  All data is synthetic (R9.4).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "audit/event.h"
#include "common/log.h"
#include "common/util.h"
#include "crypto/field.h"
#include "crypto/keyring.h"
#include "store/store.h"
#include "store/store_records.h"
#include "store/store_transfer.h"
#include "transfer/exchange.h"
#include "transfer/job.h"
#include "transfer/message.h"
#include "store_fixture.h"

#define TA "131016"
#define TB "011002"
#define TC "012025"
#define NT "472018"      /* 那覇市: a valid code, no tenant here */

/* ---- message format (pure) --------------------------------------------------------- */

static void
sample_inquiry(struct transfer_inquiry *q)
{
    memset(q, 0, sizeof(*q));
    transfer_new_id(q->id, TRANSFER_MSG_ID_HEX);
    memcpy(q->from, TA, 7);
    memcpy(q->to, TB, 7);
    snprintf(q->affair, sizeof(q->affair), "%s", TRANSFER_AFFAIR_VACCINATION);
    transfer_new_id(q->consent, TRANSFER_REF_HEX);
    randombytes_buf(q->subject, sizeof(q->subject));
    q->mode = TRANSFER_SINGLE;
    util_utc_now(q->sent_at);
}

static void
test_R3_message_roundtrip(void **state)
{
    struct transfer_inquiry q, q2;
    struct transfer_answer a, a2;
    const char *why = NULL;
    char *t;

    (void)state;
    sample_inquiry(&q);
    assert_non_null(t = transfer_inquiry_encode(&q));
    assert_int_equal(transfer_inquiry_decode(t, strlen(t), &q2, &why), 0);
    assert_memory_equal(&q, &q2, sizeof(q));
    free(t);

    transfer_answer_none(&q, &a);
    a.found = true;
    a.complete = true;
    a.n = 2;
    a.doses[0] = (struct transfer_dose){ "covid-comirnaty", 1, "2021-06-01" };
    a.doses[1] = (struct transfer_dose){ "covid-comirnaty", 2, "2021-06-22" };
    assert_non_null(t = transfer_answer_encode(&a));
    assert_int_equal(transfer_answer_decode(t, strlen(t), &a2, &why), 0);
    assert_memory_equal(&a, &a2, sizeof(a));
    assert_string_equal(a2.reply_to, q.id);
    assert_string_equal(a2.from, TB);
    assert_string_equal(a2.to, TA);
    free(t);
}

/* Replace the first occurrence of `from` in `text` (a malloc'd copy). */
static char *
edited(const char *text, const char *from, const char *to)
{
    const char *p = strstr(text, from);
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *s = malloc(n);

    assert_non_null(p);
    snprintf(s, n, "%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
    return s;
}

/* Every message is hostile: each edit must be refused. */
static void
test_R3_message_refuses_crafted(void **state)
{
    struct transfer_inquiry q, out;
    struct transfer_answer a, aout;
    const char *why = NULL;
    char *t, *bad, subj[65];

    (void)state;
    sample_inquiry(&q);
    t = transfer_inquiry_encode(&q);
    assert_int_equal(util_hex_encode(q.subject, 32, subj, sizeof(subj)), 0);
    const char *edits[][2] = {
        { "\"v\":1", "\"v\":2" },                       /* version */
        { "\"type\":\"inquiry\"", "\"type\":\"answer\"" },
        { "\"mode\":\"single\"", "\"mode\":\"all\"" },
        { "\"affair\":\"vaccination.history\"", "\"affair\":\"tax.income\"" },
        { "\"from\":\"131016\"", "\"from\":\"131017\"" },   /* check digit */
        { "\"to\":\"011002\"", "\"to\":\"11002\"" },
        { subj, "zz" },                                  /* subject not hex */
        { "{", "{\"mynumber\":\"123456789018\"," },      /* an extra member */
        { ",\"v\":1", "" },                              /* a missing member */
        { "\"v\":1", "\"v\":1,\"v\":1" },                /* a duplicate */
        { q.id, "123456789012345678901234abcdefab" },    /* 12-digit run in an id */
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        bad = edited(t, edits[i][0], edits[i][1]);
        if (transfer_inquiry_decode(bad, strlen(bad), &out, &why) == 0)
            fail_msg("edit %zu accepted: %s", i, bad);
        assert_non_null(why);
        free(bad);
    }
    free(t);

    /* A "no record" answer that smuggles a history is refused. */
    transfer_answer_none(&q, &a);
    t = transfer_answer_encode(&a);
    bad = edited(t, "\"history\":[]",
                 "\"history\":[{\"vaccine\":\"covid-comirnaty\",\"dose\":1,\"date\":\"2021-06-01\"}]");
    assert_int_equal(transfer_answer_decode(bad, strlen(bad), &aout, &why), -1);
    free(bad);
    bad = edited(t, "\"items\":\"vaccine,dose,date\"", "\"items\":\"vaccine,dose,date,lot\"");
    assert_int_equal(transfer_answer_decode(bad, strlen(bad), &aout, &why), -1);
    free(bad);
    free(t);
    /* Size bound. */
    char *big = malloc(TRANSFER_MSG_MAX + 2);
    memset(big, ' ', TRANSFER_MSG_MAX + 1);
    big[TRANSFER_MSG_MAX + 1] = '\0';
    assert_int_equal(transfer_inquiry_decode(big, strlen(big), &out, &why), -1);
    assert_string_equal(why, "size");
    free(big);
}

/* Ids never carry a 12-digit run (the audit writer would refuse them). */
static void
test_R7_1_ids_pass_the_audit_number_check(void **state)
{
    char id[TRANSFER_MSG_ID_HEX + 1];

    (void)state;
    for (int i = 0; i < 5000; i++) {
        transfer_new_id(id, i % 2 ? TRANSFER_MSG_ID_HEX : TRANSFER_REF_HEX);
        assert_true(transfer_id_valid(id, i % 2 ? TRANSFER_MSG_ID_HEX : TRANSFER_REF_HEX));
    }
}

/* ---- bulk file (pure) ----------------------------------------------------------------- */

static void
make_mynumber(unsigned seed, char out[13])
{
    unsigned sum = 0, r;

    snprintf(out, 13, "%011u", 20000000u + seed * 7919u % 79999999u);
    for (size_t i = 0; i < 11; i++)
        sum += (unsigned)(out[i] - '0') * (unsigned)(i < 5 ? 6 - i : 12 - i);
    r = sum % 11;
    out[11] = (char)('0' + (r <= 1 ? 0 : 11 - r));
    out[12] = '\0';
}

static void
test_R3_3_bulk_file(void **state)
{
    struct transfer_job_row *rows = NULL;
    size_t n = 0, line = 0;
    char err[160], csv[1024], mn[13], bad[13];

    (void)state;
    make_mynumber(1, mn);
    memcpy(bad, mn, 13);
    bad[11] = (char)(bad[11] == '9' ? '0' : bad[11] + 1);
    snprintf(csv, sizeof(csv), "\xef\xbb\xbf" TRANSFER_BULK_HEADER "\r\n"
             "011002,%s,0123456789abcdef,A1\r\n"
             "011003,%s,0123456789abcdef,A1\r\n"
             "011002,%s,0123456789abcdef,A1\r\n"
             "011002,%s,XYZ,A1\r\n"
             "011002,%s,0123456789abcdef,A=1\r\n\r\n", mn, mn, bad, mn, mn);
    assert_int_equal(transfer_bulk_parse(csv, strlen(csv), &rows, &n, err, sizeof(err), &line),
                     0);
    assert_int_equal(n, 5);
    assert_string_equal(rows[0].outcome, "");
    assert_string_equal(rows[0].mynumber, mn);
    assert_string_equal(rows[1].outcome, "invalid_previous_municipality");
    assert_string_equal(rows[1].mynumber, "");           /* not kept for a dead row */
    assert_string_equal(rows[2].outcome, "invalid_mynumber");
    assert_string_equal(rows[3].outcome, "invalid_consent_id");
    assert_string_equal(rows[4].outcome, "invalid_address_no");
    assert_int_equal(rows[4].row_no, 5);
    util_wipe(rows, n * sizeof(*rows));
    free(rows);

    /* Whole-file refusals name the line, never a value. */
    assert_int_equal(transfer_bulk_parse("a,b\n", 4, &rows, &n, err, sizeof(err), &line), -1);
    assert_int_equal(line, 1);
    snprintf(csv, sizeof(csv), TRANSFER_BULK_HEADER "\n011002,%s,0123456789abcdef\n", mn);
    assert_int_equal(transfer_bulk_parse(csv, strlen(csv), &rows, &n, err, sizeof(err), &line),
                     -1);
    assert_int_equal(line, 2);
    assert_null(strstr(err, mn));
    snprintf(csv, sizeof(csv), TRANSFER_BULK_HEADER "\n011002,\"%s,x,A1\n", mn);
    assert_int_equal(transfer_bulk_parse(csv, strlen(csv), &rows, &n, err, sizeof(err), &line),
                     -1);
    assert_null(strstr(err, mn));
    snprintf(csv, sizeof(csv), TRANSFER_BULK_HEADER "\n");
    assert_int_equal(transfer_bulk_parse(csv, strlen(csv), &rows, &n, err, sizeof(err), &line),
                     -1);
}

/* ---- the store and the exchange on both backends --------------------------------------- */

struct sink {
    json_t *events;
    bool    refuse;
};

struct fx {
    struct store_fx     s;      /* TA, TB, TC with contexts ctx[0..2] */
    struct sink         sink;
    struct transfer_env env;
    /* what travelled (a transport that keeps copies) */
    char                sent[8][TRANSFER_MSG_MAX + 1];
    size_t              nsent;
};

static struct fx *cur;   /* for the keeping transport */

static int
sink_audit(void *arg, const json_t *ev)
{
    struct sink *s = arg;
    char err[64];

    if (s->refuse)
        return -1;
    /* What the real writer would refuse, the sink refuses too. */
    if (audit_event_validate(ev, err, sizeof(err)) != 0)
        fail_msg("invalid audit event (%s)", err);
    json_array_append_new(s->events, json_deep_copy(ev));
    return 0;
}

static int
keeping_send(const struct transfer_env *env, const char *text, size_t len, char **answer)
{
    if (cur->nsent < 8)
        snprintf(cur->sent[cur->nsent++], TRANSFER_MSG_MAX + 1, "%.*s", (int)len, text);
    return transfer_local_send(env, text, len, answer);
}

static int64_t
count(struct fx *f, const char *table, const char *where)
{
    char sql[300];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE %s", table, where);
    return store_fx_raw_int(&f->s, sql);
}

static int
setup(void **state)
{
    static const char *const tenants[] = { TA, TB, TC };
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    *state = f;
    cur = f;
    store_fx_open(&f->s, "xfer", tenants, 3, STORE_FX_CTX);
    if (f->s.skip)
        return 0;
    f->sink.events = json_array();
    f->env = (struct transfer_env){ f->s.st, &f->s.kp, sink_audit, &f->sink, keeping_send };
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    if (!f->s.skip)
        json_decref(f->sink.events);
    store_fx_close(&f->s);
    free(f);
    return 0;
}

#define BEGIN_CASE(f) \
    struct fx *f = *state; \
    if (f->s.skip) { skip(); return; }

/* A resident of ctx; ceased "" or a date of moving out. */
static int64_t
add_resident(struct store_tenant *ctx, const char *addrno, const char *mn, const char *ceased)
{
    struct resident r;
    int64_t id = 0;

    memset(&r, 0, sizeof(r));
    snprintf(r.address_no, sizeof(r.address_no), "%s", addrno);
    snprintf(r.mynumber, sizeof(r.mynumber), "%s", mn);
    snprintf(r.name, sizeof(r.name), "試験　太郎");
    snprintf(r.kana, sizeof(r.kana), "シケン　タロウ");
    snprintf(r.birth_date, sizeof(r.birth_date), "1980-04-01");
    snprintf(r.sex, sizeof(r.sex), "1");
    if (ceased[0] != '\0') {
        snprintf(r.ceased_date, sizeof(r.ceased_date), "%s", ceased);
        snprintf(r.movement_type, sizeof(r.movement_type), "転出");
        snprintf(r.movement_date, sizeof(r.movement_date), "%s", ceased);
    } else {
        snprintf(r.movement_type, sizeof(r.movement_type), "転入");
        snprintf(r.movement_date, sizeof(r.movement_date), "2024-04-01");
    }
    assert_int_equal(store_resident_insert(ctx, NULL, &r, &id), STORE_OK);
    return id;
}

static void
add_dose(struct store_tenant *ctx, int64_t rid, const char *vaccine, int dose, const char *date,
         const char *lot)
{
    struct vaccination v;
    int64_t id;

    memset(&v, 0, sizeof(v));
    v.resident_id = rid;
    snprintf(v.vaccine, sizeof(v.vaccine), "%s", vaccine);
    v.dose = dose;
    snprintf(v.date, sizeof(v.date), "%s", date);
    snprintf(v.lot, sizeof(v.lot), "%s", lot);
    snprintf(v.entered_by, sizeof(v.entered_by), "staff.b");
    assert_int_equal(store_vaccination_insert(ctx, NULL, &v, &id), STORE_OK);
}

/* A consent of ctx for mn, checked `days_ago` days ago. */
static void
add_consent(struct store_tenant *ctx, const char *mn, int days_ago, char id[17])
{
    struct transfer_consent c;
    time_t t = time(NULL) + 9 * 3600 - (time_t)days_ago * 86400;
    struct tm tm;

    memset(&c, 0, sizeof(c));
    snprintf(c.affair, sizeof(c.affair), "%s", TRANSFER_AFFAIR_VACCINATION);
    snprintf(c.id_check, sizeof(c.id_check), "mynumber_card");
    gmtime_r(&t, &tm);
    strftime(c.checked_on, sizeof(c.checked_on), "%Y-%m-%d", &tm);
    snprintf(c.checked_by, sizeof(c.checked_by), "clerk.a");
    assert_int_equal(store_consent_create(ctx, mn, &c, NULL, NULL), STORE_OK);
    memcpy(id, c.id, 17);
}

static const struct transfer_actor clerk_a = { TA, "clerk.a", "clerk", "", "", "" };

static enum transfer_status
ask(struct fx *f, const char *to, const char *mn, const char *consent, const char *addrno,
    struct transfer_outcome *out)
{
    const struct transfer_request rq = { to, mn, consent, addrno, TRANSFER_SINGLE, "" };

    return transfer_inquire(&f->env, f->s.ctx[0], &clerk_a, &rq, out);
}

/* Events of an action, in order. */
static size_t
events_of(struct fx *f, const char *action, json_t **last)
{
    size_t n = 0, i;
    json_t *e;

    json_array_foreach(f->sink.events, i, e)
        if (strcmp(json_string_value(json_object_get(e, "action")), action) == 0) {
            n++;
            if (last != NULL)
                *last = e;
        }
    return n;
}

struct recs {
    size_t n;
    struct transfer_record r[16];
};

static int
keep_rec(const struct transfer_record *r, void *arg)
{
    struct recs *k = arg;

    if (k->n < 16)
        k->r[k->n++] = *r;
    return 0;
}

/* The happy path (R3.1, R3.2): A asks B about a person who moved out of B,
 * gets the doses not voided in date order, and both sides keep a record
 * (R3.4); the number never travels, the answer holds only the listed
 * items (no lot). */
static void
test_R3_1_R3_2_happy_path_and_records_on_both_sides(void **state)
{
    BEGIN_CASE(f);
    char mn[13], consent[17];
    struct transfer_outcome out;
    struct recs ra = { 0 }, rb = { 0 };
    int64_t rb_id, ra_id;
    json_t *ev = NULL;

    make_mynumber(11, mn);
    rb_id = add_resident(f->s.ctx[1], "B1", mn, "2024-03-31");
    add_dose(f->s.ctx[1], rb_id, "covid-comirnaty", 2, "2021-07-01", "LOTZQX2");
    add_dose(f->s.ctx[1], rb_id, "covid-comirnaty", 1, "2021-06-10", "LOTZQX1");
    ra_id = add_resident(f->s.ctx[0], "A1", mn, "");
    add_consent(f->s.ctx[0], mn, 0, consent);

    assert_int_equal(ask(f, TB, mn, consent, "A1", &out), TRANSFER_OK);
    assert_true(out.answer.found);
    assert_true(out.answer.complete);
    assert_int_equal(out.answer.n, 2);
    assert_string_equal(out.answer.doses[0].date, "2021-06-10");
    assert_int_equal(out.answer.doses[0].dose, 1);
    assert_string_equal(out.answer.doses[1].vaccine, "covid-comirnaty");
    assert_int_equal(out.resident_id, ra_id);

    /* What travelled: no individual number, no lot. */
    assert_int_equal(f->nsent, 1);
    assert_null(strstr(f->sent[0], mn));
    assert_null(strstr(f->sent[0], "LOTZQX"));

    /* Both sides: A an inquiry record, B a provision record, each only its own. */
    assert_int_equal(store_transfer_records(f->s.ctx[0],
                                            STORE_XFER_INQUIRIES | STORE_XFER_PROVISIONS, 0,
                                            "", 100, keep_rec, &ra),
                     STORE_OK);
    assert_int_equal(ra.n, 1);
    assert_string_equal(ra.r[0].side, "inquiry");
    assert_string_equal(ra.r[0].other_tenant, TB);
    assert_string_equal(ra.r[0].outcome, "found");
    assert_string_equal(ra.r[0].actor, "clerk.a");
    assert_string_equal(ra.r[0].items, TRANSFER_ITEMS);
    assert_int_equal(ra.r[0].resident_id, ra_id);
    assert_int_equal(store_transfer_records(f->s.ctx[1],
                                            STORE_XFER_INQUIRIES | STORE_XFER_PROVISIONS, 0,
                                            "", 100, keep_rec, &rb),
                     STORE_OK);
    assert_int_equal(rb.n, 1);
    assert_string_equal(rb.r[0].side, "provision");
    assert_string_equal(rb.r[0].other_tenant, TA);
    assert_string_equal(rb.r[0].inquiry_id, out.inquiry_id);
    assert_string_equal(rb.r[0].consent, consent);
    assert_int_equal(rb.r[0].resident_id, rb_id);
    assert_int_equal(rb.r[0].doses, 2);
    /* R9.5: B can show the person who asked for their data. */
    memset(&rb, 0, sizeof(rb));
    assert_int_equal(store_transfer_records(f->s.ctx[1], STORE_XFER_PROVISIONS, rb_id, "", 100,
                                            keep_rec, &rb), STORE_OK);
    assert_int_equal(rb.n, 1);
    assert_string_equal(rb.r[0].other_tenant, TA);

    /* Audit (R7.1): the inquiry on A by the clerk, the provision on B by
     * the system; the number only as a keyed hash. */
    assert_int_equal(events_of(f, "transfer.inquire", &ev), 1);
    assert_string_equal(json_string_value(json_object_get(ev, "tenant")), TA);
    assert_string_equal(json_string_value(json_object_get(ev, "actor")), "clerk.a");
    assert_non_null(json_object_get(ev, "subject"));
    assert_int_equal(events_of(f, "transfer.provide", &ev), 1);
    assert_string_equal(json_string_value(json_object_get(ev, "tenant")), TB);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev, "info"), "from")),
                        TA);
    char *dump = json_dumps(f->sink.events, 0);
    assert_null(strstr(dump, mn));
    free(dump);

    /* The stored answer opens again, the same. */
    struct transfer_inquiry_rec rec;
    struct transfer_answer back;
    assert_int_equal(store_inquiry_get(f->s.ctx[0], out.inquiry_id, &rec, &back), STORE_OK);
    assert_int_equal(back.n, 2);
    assert_memory_equal(back.doses, out.answer.doses, 2 * sizeof(back.doses[0]));
    /* ... and only by A. */
    assert_int_equal(store_inquiry_get(f->s.ctx[1], out.inquiry_id, &rec, &back), STORE_NOTFOUND);
}

/* R3.2: no match, a wrong municipality (a tenant where the person never
 * lived) and a code that is no tenant all get the same answer, and each
 * does the same durable work on the answering side. */
static void
test_R3_2_uniform_no_record(void **state)
{
    BEGIN_CASE(f);
    char mn[13], other[13], c1[17], c2[17];
    struct transfer_outcome o[3];
    const char *why;
    int64_t rb_id;

    make_mynumber(21, mn);
    make_mynumber(22, other);
    rb_id = add_resident(f->s.ctx[1], "B1", mn, "2024-03-31");
    add_dose(f->s.ctx[1], rb_id, "covid-comirnaty", 1, "2021-06-10", "L1");
    add_resident(f->s.ctx[0], "A1", mn, "");
    add_resident(f->s.ctx[0], "A2", other, "");
    add_consent(f->s.ctx[0], mn, 0, c1);
    add_consent(f->s.ctx[0], other, 0, c2);

    assert_int_equal(ask(f, TB, other, c2, "A2", &o[0]), TRANSFER_OK);  /* unknown number */
    assert_int_equal(ask(f, TC, mn, c1, "A1", &o[1]), TRANSFER_OK);     /* wrong tenant */
    assert_int_equal(ask(f, NT, mn, c1, "A1", &o[2]), TRANSFER_OK);     /* no tenant */
    for (int i = 0; i < 3; i++) {
        assert_false(o[i].answer.found);
        assert_int_equal(o[i].answer.n, 0);
        assert_true(o[i].answer.complete);
    }
    /* The three answers as they travelled have the same members and,
     * once ids and times are blanked, the same bytes. */
    assert_int_equal(f->nsent, 3);
    for (int i = 0; i < 3; i++) {
        struct transfer_answer a = o[i].answer;
        char *t;
        memset(a.id, 'a', TRANSFER_MSG_ID_HEX);
        memset(a.reply_to, 'a', TRANSFER_MSG_ID_HEX);
        memcpy(a.from, TB, 7);
        memcpy(a.answered_at, "2000-01-01T00:00:00.000Z", TRANSFER_TS_LEN);
        t = transfer_answer_encode(&a);
        assert_non_null(t);
        struct transfer_answer back;
        assert_int_equal(transfer_answer_decode(t, strlen(t), &back, &why), 0);
        if (i > 0) {
            struct transfer_answer first = o[0].answer;
            memset(first.id, 'a', TRANSFER_MSG_ID_HEX);
            memset(first.reply_to, 'a', TRANSFER_MSG_ID_HEX);
            memcpy(first.from, TB, 7);
            memcpy(first.answered_at, "2000-01-01T00:00:00.000Z", TRANSFER_TS_LEN);
            char *t0 = transfer_answer_encode(&first);
            assert_string_equal(t, t0);
            free(t0);
        }
        free(t);
    }
    /* Equal work: B and C each wrote a provision record and an audit
     * event; the absent code an undelivered row and an audit event. */
    assert_int_equal(count(f, "transfer_provisions", "tenant_id = '011002' AND "
                           "outcome = 'no_record'"), 1);
    assert_int_equal(count(f, "transfer_provisions", "tenant_id = '012025'"), 1);
    assert_int_equal(count(f, "transfer_undelivered", "to_code = '472018'"), 1);
    assert_int_equal(events_of(f, "transfer.provide", NULL), 2);
    assert_int_equal(events_of(f, "transfer.undeliverable", NULL), 1);
    /* The asker records the three as it saw them: no_record. */
    assert_int_equal(count(f, "transfer_inquiries", "tenant_id = '131016' AND "
                           "outcome = 'no_record'"), 3);
}

/* A key provider that counts the keys asked of it, granted or refused. */
struct counting_kp {
    const struct key_provider *inner;
    unsigned                   asked;
};

static int
count_current(void *arg, const char *tenant, struct tenant_key **out)
{
    struct counting_kp *c = arg;

    c->asked++;
    return c->inner->current_key(c->inner->arg, tenant, out);
}

static int
count_data(void *arg, const char *tenant, uint32_t version, struct tenant_key **out)
{
    struct counting_kp *c = arg;

    c->asked++;
    return c->inner->data_key(c->inner->arg, tenant, version, out);
}

static int
count_index(void *arg, const char *tenant, struct tenant_key **out)
{
    struct counting_kp *c = arg;

    c->asked++;
    return c->inner->index_key(c->inner->arg, tenant, out);
}

/* R3.2 "same work" at the key holder: no match, a tenant where the person
 * never lived, a code of no tenant and an erased tenant's code ask for the
 * same number of keys (a code with no keys is asked exactly as a context
 * would be), and each leaves one durable row and one audit event. */
static void
test_R3_2_no_record_paths_ask_the_same_keys(void **state)
{
    BEGIN_CASE(f);
    char mn[13], other[13], c1[17], c2[17];
    struct counting_kp ck = { &f->s.kp, 0 };
    const struct key_provider counted = { count_current, count_data, count_index, &ck };
    struct transfer_outcome o;
    unsigned asked[4];

    make_mynumber(23, mn);
    make_mynumber(24, other);
    add_resident(f->s.ctx[1], "B1", mn, "2024-03-31");
    add_resident(f->s.ctx[0], "A1", mn, "");
    add_resident(f->s.ctx[0], "A2", other, "");
    add_consent(f->s.ctx[0], mn, 0, c1);
    add_consent(f->s.ctx[0], other, 0, c2);
    f->env.keys = &counted;

    assert_int_equal(ask(f, TB, other, c2, "A2", &o), TRANSFER_OK);    /* unknown number */
    assert_false(o.answer.found);
    asked[0] = ck.asked;
    assert_int_equal(ask(f, TC, mn, c1, "A1", &o), TRANSFER_OK);       /* wrong tenant */
    assert_false(o.answer.found);
    asked[1] = ck.asked - asked[0];
    assert_int_equal(ask(f, NT, mn, c1, "A1", &o), TRANSFER_OK);       /* no tenant */
    assert_false(o.answer.found);
    asked[2] = ck.asked - asked[0] - asked[1];
    store_tenant_ctx_close(f->s.ctx[2]);
    f->s.ctx[2] = NULL;
    assert_int_equal(keyring_erase(f->s.kr, TC), 0);
    assert_int_equal(store_tenant_erase(f->s.st, TC), STORE_OK);
    assert_int_equal(ask(f, TC, mn, c1, "A1", &o), TRANSFER_OK);       /* erased tenant */
    assert_false(o.answer.found);
    assert_int_equal(o.answer.n, 0);
    assert_true(o.answer.complete);
    asked[3] = ck.asked - asked[0] - asked[1] - asked[2];
    f->env.keys = &f->s.kp;

    assert_true(asked[0] > 0);
    assert_int_equal(asked[1], asked[0]);
    assert_int_equal(asked[2], asked[0]);
    assert_int_equal(asked[3], asked[0]);
    /* The erased code is answered as no tenant: an undelivered row and a
     * platform event, as for the code that never was one. */
    assert_int_equal(count(f, "transfer_undelivered", "to_code = '012025'"), 1);
    assert_int_equal(count(f, "transfer_undelivered", "to_code = '472018'"), 1);
    assert_int_equal(events_of(f, "transfer.provide", NULL), 2);
    assert_int_equal(events_of(f, "transfer.undeliverable", NULL), 2);
}

/* R3.1: no valid consent of the asking tenant for this person, no
 * inquiry: nothing travels, the refusal is audited. */
static void
test_R3_1_no_consent_no_inquiry(void **state)
{
    BEGIN_CASE(f);
    char mn[13], other[13], c_other[17], c_b[17], c_old[17], c_ok[17], fake[17];
    struct transfer_outcome out;

    make_mynumber(31, mn);
    make_mynumber(32, other);
    add_resident(f->s.ctx[1], "B1", mn, "2024-03-31");
    add_resident(f->s.ctx[0], "A1", mn, "");
    add_consent(f->s.ctx[0], other, 0, c_other);         /* another person's */
    add_consent(f->s.ctx[1], mn, 0, c_b);                /* another tenant's */
    add_consent(f->s.ctx[0], mn, TRANSFER_CONSENT_DAYS + 1, c_old);   /* lapsed */
    add_consent(f->s.ctx[0], mn, TRANSFER_CONSENT_DAYS, c_ok);        /* the last good day */
    transfer_new_id(fake, TRANSFER_REF_HEX);

    assert_int_equal(ask(f, TB, mn, fake, "A1", &out), TRANSFER_NO_CONSENT);
    assert_int_equal(ask(f, TB, mn, c_other, "A1", &out), TRANSFER_NO_CONSENT);
    assert_int_equal(ask(f, TB, mn, c_b, "A1", &out), TRANSFER_NO_CONSENT);
    assert_int_equal(ask(f, TB, mn, c_old, "A1", &out), TRANSFER_NO_CONSENT);
    assert_int_equal(f->nsent, 0);
    assert_int_equal(events_of(f, "transfer.inquire", NULL), 4);
    json_t *ev = json_array_get(f->sink.events, json_array_size(f->sink.events) - 1);
    assert_string_equal(json_string_value(json_object_get(ev, "outcome")), "refused");
    assert_string_equal(json_string_value(json_object_get(ev, "reason")), "consent_invalid");
    assert_int_equal(count(f, "transfer_provisions", "1 = 1"), 0);

    /* Other refusals of the asking side. */
    assert_int_equal(ask(f, TA, mn, c_ok, "A1", &out), TRANSFER_SAME_TENANT);
    assert_int_equal(ask(f, TB, mn, c_ok, "NOPE", &out), TRANSFER_NO_RESIDENT);
    assert_int_equal(f->nsent, 0);
    /* If the audit writer refuses, nothing is sent (fail closed). */
    f->sink.refuse = true;
    assert_int_equal(ask(f, TB, mn, c_ok, "A1", &out), TRANSFER_AUDIT_FAILED);
    assert_int_equal(f->nsent, 0);
    f->sink.refuse = false;
    assert_int_equal(ask(f, TB, mn, c_ok, "A1", &out), TRANSFER_OK);
    assert_int_equal(f->nsent, 1);
}

/* R1.1, R3.2: a tenant cannot read another's data by crafting messages.
 * A sends B messages of its own making: a subject made with A's own key
 * (the only key A should have), a replay of an answered inquiry, a
 * message naming another sender, malformed ones.  None reveals B's data
 * or writes B's records twice; A cannot read B's records or jobs. */
static void
test_R1_1_crafted_inquiries_reveal_nothing(void **state)
{
    BEGIN_CASE(f);
    struct transfer_inquiry q;
    struct transfer_answer a;
    struct tenant_key *ika = NULL, *ikb = NULL;
    char mn[13], *text, *reply = NULL;
    const char *why;
    int64_t rb_id;
    struct recs r = { 0 };

    make_mynumber(41, mn);
    rb_id = add_resident(f->s.ctx[1], "B1", mn, "2024-03-31");
    add_dose(f->s.ctx[1], rb_id, "covid-comirnaty", 1, "2021-06-10", "L1");

    /* 1. Subject under A's own index key: matches nothing in B. */
    sample_inquiry(&q);
    assert_int_equal(f->s.kp.index_key(f->s.kp.arg, TA, &ika), 0);
    assert_int_equal(field_blind_index(ika, BIDX_MYNUMBER, mn, 12, q.subject), 0);
    text = transfer_inquiry_encode(&q);
    assert_int_equal(transfer_answer(&f->env, text, strlen(text), &reply), 0);
    assert_int_equal(transfer_answer_decode(reply, strlen(reply), &a, &why), 0);
    assert_false(a.found);
    free(reply);
    free(text);

    /* 2. The right subject (as the asking side makes it) is answered once;
     * the same message again is refused and not recorded twice. */
    sample_inquiry(&q);
    assert_int_equal(f->s.kp.index_key(f->s.kp.arg, TB, &ikb), 0);
    assert_int_equal(field_blind_index(ikb, BIDX_MYNUMBER, mn, 12, q.subject), 0);
    text = transfer_inquiry_encode(&q);
    assert_int_equal(transfer_answer(&f->env, text, strlen(text), &reply), 0);
    free(reply);
    reply = NULL;
    assert_int_equal(transfer_answer(&f->env, text, strlen(text), &reply), -1);
    assert_null(reply);
    free(text);
    assert_int_equal(count(f, "transfer_provisions", "tenant_id = '011002'"), 2);

    /* 3. A message addressed to B but matched under C's context cannot
     * happen: the answering side opens the context the message names and
     * nothing else; C's subject space is C's.  A subject made for B and
     * sent to C finds nothing. */
    sample_inquiry(&q);
    memcpy(q.to, TC, 7);
    assert_int_equal(field_blind_index(ikb, BIDX_MYNUMBER, mn, 12, q.subject), 0);
    text = transfer_inquiry_encode(&q);
    assert_int_equal(transfer_answer(&f->env, text, strlen(text), &reply), 0);
    assert_int_equal(transfer_answer_decode(reply, strlen(reply), &a, &why), 0);
    assert_false(a.found);
    free(reply);
    free(text);

    /* 4. Malformed messages are refused before any store access. */
    const char *junk[] = { "", "{}", "[]", "{\"v\":1}", "not json" };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        reply = NULL;
        assert_int_equal(transfer_answer(&f->env, junk[i], strlen(junk[i]), &reply), -1);
        assert_null(reply);
    }
    assert_int_equal(count(f, "transfer_provisions", "1 = 1"), 3);

    /* 5. B's records and provisions are not A's to read. */
    assert_int_equal(store_transfer_records(f->s.ctx[0],
                                            STORE_XFER_INQUIRIES | STORE_XFER_PROVISIONS, 0,
                                            "", 100, keep_rec, &r),
                     STORE_OK);
    assert_int_equal(r.n, 0);
    assert_int_equal(store_transfer_records(f->s.ctx[0], STORE_XFER_PROVISIONS, rb_id, "", 100,
                                            keep_rec, &r), STORE_OK);
    assert_int_equal(r.n, 0);
    tenant_key_free(ika);
    tenant_key_free(ikb);
}

/* R3.4: if the answering side cannot audit its provision, it provides
 * nothing and keeps no record; the asker records a failed inquiry. */
static void
test_R3_4_provision_fails_closed(void **state)
{
    BEGIN_CASE(f);
    char mn[13], consent[17];
    struct transfer_outcome out;
    struct transfer_inquiry q;
    char *text, *reply = NULL;
    struct tenant_key *ikb = NULL;

    make_mynumber(51, mn);
    add_resident(f->s.ctx[1], "B1", mn, "2024-03-31");
    add_resident(f->s.ctx[0], "A1", mn, "");
    add_consent(f->s.ctx[0], mn, 0, consent);
    sample_inquiry(&q);
    assert_int_equal(f->s.kp.index_key(f->s.kp.arg, TB, &ikb), 0);
    assert_int_equal(field_blind_index(ikb, BIDX_MYNUMBER, mn, 12, q.subject), 0);
    tenant_key_free(ikb);
    text = transfer_inquiry_encode(&q);
    f->sink.refuse = true;
    assert_int_equal(transfer_answer(&f->env, text, strlen(text), &reply), -1);
    assert_null(reply);
    free(text);
    assert_int_equal(count(f, "transfer_provisions", "1 = 1"), 0);
    f->sink.refuse = false;
    assert_int_equal(ask(f, TB, mn, consent, "A1", &out), TRANSFER_OK);
    assert_true(out.answer.found);
}

/* R1.4: erasing a tenant removes its consents, records and jobs; the
 * other tenants' records of it stay theirs. */
static void
test_R1_4_erase_removes_transfer_rows(void **state)
{
    BEGIN_CASE(f);
    char mn[13], consent[17];
    struct transfer_outcome out;

    make_mynumber(61, mn);
    add_resident(f->s.ctx[1], "B1", mn, "2024-03-31");
    add_resident(f->s.ctx[0], "A1", mn, "");
    add_consent(f->s.ctx[0], mn, 0, consent);
    assert_int_equal(ask(f, TB, mn, consent, "A1", &out), TRANSFER_OK);
    assert_int_equal(ask(f, NT, mn, consent, "A1", &out), TRANSFER_OK);
    assert_int_equal(count(f, "transfer_inquiries", "tenant_id = '131016'"), 2);
    store_tenant_ctx_close(f->s.ctx[0]);
    f->s.ctx[0] = NULL;
    assert_int_equal(keyring_erase(f->s.kr, TA), 0);
    assert_int_equal(store_tenant_erase(f->s.st, TA), STORE_OK);
    assert_int_equal(count(f, "transfer_inquiries", "tenant_id = '131016'"), 0);
    assert_int_equal(count(f, "transfer_consents", "tenant_id = '131016'"), 0);
    assert_int_equal(count(f, "transfer_undelivered", "from_tenant = '131016'"), 0);
    assert_int_equal(count(f, "transfer_provisions", "tenant_id = '011002'"), 1);
}

/* ---- bulk jobs (R3.3) ------------------------------------------------------------------- */

struct kept_rows {
    size_t                  n;
    struct transfer_job_row r[16];
};

static int
keep_row(const struct transfer_job_row *r, void *arg)
{
    struct kept_rows *k = arg;

    if (k->n < 16)
        k->r[k->n++] = *r;
    return 0;
}

static void
test_R3_3_bulk_job_mixed_rows(void **state)
{
    BEGIN_CASE(f);
    char m1[13], m2[13], m3[13], bad[13], c1[17], c2[17], fake[17], csv[2048], *out;
    struct transfer_job_row *rows = NULL;
    struct transfer_job job, again;
    struct kept_rows k = { 0 };
    size_t n = 0, line = 0, len = 0;
    char err[160];
    bool ran = false;
    int64_t rid;

    make_mynumber(71, m1);
    make_mynumber(72, m2);
    make_mynumber(73, m3);
    memcpy(bad, m1, 13);
    bad[11] = (char)(bad[11] == '9' ? '0' : bad[11] + 1);
    rid = add_resident(f->s.ctx[1], "B1", m1, "2024-03-31");
    add_dose(f->s.ctx[1], rid, "covid-comirnaty", 1, "2021-06-10", "L1");
    add_resident(f->s.ctx[0], "A1", m1, "");
    add_resident(f->s.ctx[0], "-A2", m2, "");
    add_resident(f->s.ctx[0], "A3", m3, "");
    add_consent(f->s.ctx[0], m1, 0, c1);
    add_consent(f->s.ctx[0], m2, 0, c2);
    transfer_new_id(fake, TRANSFER_REF_HEX);
    snprintf(csv, sizeof(csv), TRANSFER_BULK_HEADER "\n"
             "011002,%s,%s,A1\n"            /* found */
             "011002,%s,%s,-A2\n"           /* no record (and a formula-like cell) */
             "011002,%s,%s,A3\n"            /* no consent */
             "011002,%s,%s,A9\n"            /* unknown receiving resident */
             "011002,%s,%s,A1\n"            /* bad check digit */
             "472018,%s,%s,A1\n",           /* no tenant: no record */
             m1, c1, m2, c2, m3, fake, m1, c1, bad, c1, m1, c1);
    assert_int_equal(transfer_bulk_parse(csv, strlen(csv), &rows, &n, err, sizeof(err), &line),
                     0);
    memset(&job, 0, sizeof(job));
    snprintf(job.actor, sizeof(job.actor), "clerk.a");
    snprintf(job.role, sizeof(job.role), "clerk");
    assert_int_equal(store_job_create(f->s.ctx[0], &job, rows, n, NULL, NULL), STORE_OK);
    /* One job at a time per tenant. */
    again = job;
    assert_int_equal(store_job_create(f->s.ctx[0], &again, rows, n, NULL, NULL), STORE_EXISTS);
    util_wipe(rows, n * sizeof(*rows));
    free(rows);
    /* The numbers wait sealed, never in clear. */
    assert_int_equal(count(f, "transfer_job_rows", "mynumber_ct IS NOT NULL"), 5);

    assert_int_equal(transfer_job_run_once(&f->env, "runner-test", 0, NULL, &ran), 0);
    assert_true(ran);
    assert_int_equal(store_job_get(f->s.ctx[0], job.id, &again), STORE_OK);
    assert_string_equal(again.state, "done");
    assert_int_equal(again.rows_done, 6);
    assert_int_equal(store_job_rows(f->s.ctx[0], job.id, keep_row, &k), STORE_OK);
    assert_int_equal(k.n, 6);
    assert_string_equal(k.r[0].outcome, "found");
    assert_int_equal(k.r[0].doses, 1);
    assert_string_equal(k.r[1].outcome, "no_record");
    assert_string_equal(k.r[2].outcome, "consent_invalid");
    assert_string_equal(k.r[3].outcome, "unknown_resident");
    assert_string_equal(k.r[4].outcome, "invalid_mynumber");
    assert_string_equal(k.r[5].outcome, "no_record");
    assert_true(transfer_id_valid(k.r[0].inquiry_id, TRANSFER_MSG_ID_HEX));
    /* Sealed numbers are gone once their rows ran. */
    assert_int_equal(count(f, "transfer_job_rows", "mynumber_ct IS NOT NULL"), 0);
    /* A job of A is not B's to see. */
    assert_int_equal(store_job_get(f->s.ctx[1], job.id, &again), STORE_NOTFOUND);
    /* The bulk inquiries are records like any other, marked bulk. */
    assert_int_equal(count(f, "transfer_inquiries", "mode = 'bulk'"), 3);
    assert_int_equal(count(f, "transfer_provisions", "mode = 'bulk'"), 2);

    /* The result file: no individual number, formula-like cells neutralised. */
    assert_int_equal(transfer_job_result_csv(f->s.ctx[0], job.id, &out, &len), STORE_OK);
    assert_non_null(out);
    assert_null(strstr(out, m1));
    assert_null(strstr(out, m2));
    assert_non_null(strstr(out, "row,previous_municipality,address_no,consent_id,outcome,"
                                "doses,inquiry_id\r\n"));
    assert_non_null(strstr(out, ",'-A2,"));
    assert_non_null(strstr(out, "\r\n5,011002,A1,"));
    free(out);
    /* Nothing else to run; a second job may now be queued. */
    assert_int_equal(transfer_job_run_once(&f->env, "runner-test", 0, NULL, &ran), 0);
    assert_false(ran);
}

/* R3.3: a job runs at most `rate` rows per second, whatever its size. */
static void
test_R3_3_job_rate_is_bounded(void **state)
{
    BEGIN_CASE(f);
    struct transfer_job_row rows[10];
    struct transfer_job job;
    struct timespec t0, t1;
    bool ran;
    char c[17];

    add_resident(f->s.ctx[0], "A1", "", "");
    transfer_new_id(c, TRANSFER_REF_HEX);
    memset(rows, 0, sizeof(rows));
    for (int i = 0; i < 10; i++) {
        rows[i].row_no = i + 1;
        snprintf(rows[i].prev_code, 7, TB);
        make_mynumber(100 + (unsigned)i, rows[i].mynumber);
        snprintf(rows[i].consent_id, 17, "%s", c);
        snprintf(rows[i].address_no, sizeof(rows[i].address_no), "A1");
    }
    memset(&job, 0, sizeof(job));
    snprintf(job.actor, sizeof(job.actor), "clerk.a");
    snprintf(job.role, sizeof(job.role), "clerk");
    assert_int_equal(store_job_create(f->s.ctx[0], &job, rows, 10, NULL, NULL), STORE_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(transfer_job_run_once(&f->env, "runner-test", 20, NULL, &ran), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* 10 rows at 20/s: the 10th starts 0.45 s after the first. */
    assert_true((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9 >=
                0.44);
}

/* R3.1 at rest: after consents, inquiries and a job, the database holds
 * no individual number in clear (SQLite file and WAL). */
static void
test_R3_numbers_never_at_rest(void **state)
{
    BEGIN_CASE(f);
    char mn[13], consent[17], cmd[512];
    struct transfer_outcome out;

    if (store_fx_backend() != STORE_BACKEND_SQLITE) {
        skip();
        return;
    }
    make_mynumber(81, mn);
    add_resident(f->s.ctx[1], "B1", mn, "2024-03-31");
    add_resident(f->s.ctx[0], "A1", mn, "");
    add_consent(f->s.ctx[0], mn, 0, consent);
    assert_int_equal(ask(f, TB, mn, consent, "A1", &out), TRANSFER_OK);
    snprintf(cmd, sizeof(cmd), "grep -rqa -- %s %s", mn, f->s.dir);
    assert_int_not_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_R3_message_roundtrip),
        cmocka_unit_test(test_R3_message_refuses_crafted),
        cmocka_unit_test(test_R7_1_ids_pass_the_audit_number_check),
        cmocka_unit_test(test_R3_3_bulk_file),
    };
    const struct CMUnitTest stored[] = {
        cmocka_unit_test_setup_teardown(test_R3_1_R3_2_happy_path_and_records_on_both_sides,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_R3_2_uniform_no_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R3_2_no_record_paths_ask_the_same_keys, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_R3_1_no_consent_no_inquiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R1_1_crafted_inquiries_reveal_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_R3_4_provision_fails_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R1_4_erase_removes_transfer_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R3_3_bulk_job_mixed_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R3_3_job_rate_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_R3_numbers_never_at_rest, setup, teardown),
    };
    int failed;

    if (sodium_init() < 0)
        return 1;
    log_setup("test_transfer", LOG_TO_STDERR, LOG_LVL_ERROR);
    failed = cmocka_run_group_tests_name("transfer", pure, NULL, NULL);
    failed += STORE_FX_RUN("transfer-store/sqlite", "transfer-store/postgresql", stored, 0);
    return failed;
}
