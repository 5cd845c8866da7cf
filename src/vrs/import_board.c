/*
 * import_board.c - the shared-memory progress board of API imports
 * (import_board.h).
 *
 * Every field of a slot is a lock-free atomic, so processes share them
 * without locks and without undefined behaviour.  A slot moves
 * FREE -> CLAIMING (one claimer wins the compare-and-swap) -> LIVE ->
 * FREE.  Its fields are written by one thread of its owner at a time
 * (the accepting request thread while CLAIMING, then the runner, which
 * gets the job through a mutex-guarded queue) inside a seqlock: the
 * counter is odd while a write is under way, and a reader retries until
 * it saw the same even value before and after its reads.  The heartbeat
 * is a field of its own, outside the seqlock (one atomic store).
 */
#include "vrs/import_board.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Shared between processes, the atomics must not need a lock (a lock
 * would live in one process's memory, not in the mapping). */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics are lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics are lock-free");

#define BOARD_MAGIC 0x4d49424fu    /* "MIBO" */

enum { SLOT_FREE = 0, SLOT_CLAIMING, SLOT_LIVE };

struct slot {
    _Atomic uint32_t state;
    _Atomic uint32_t seq;           /* odd while its fields are being written */
    _Atomic uint64_t id_hi, id_lo;
    _Atomic uint32_t tenant;        /* the 6 digits as a number */
    _Atomic int32_t  pid;
    _Atomic uint32_t phase;
    _Atomic uint64_t bytes, total, rows;
    _Atomic int64_t  beat_ms;
};

struct import_board {
    uint32_t         magic;
    uint32_t         nslots;
    _Atomic int32_t  writer;        /* pid holding the writer token, 0: free */
    struct slot      slot[IMPORT_BOARD_SLOTS];
};

int64_t
import_board_now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int
import_board_create(struct import_board **out)
{
    void *p = mmap(NULL, sizeof(struct import_board), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED)
        return -1;
    /* An anonymous mapping is zero-filled: every slot is FREE. */
    ((struct import_board *)p)->magic = BOARD_MAGIC;
    ((struct import_board *)p)->nslots = IMPORT_BOARD_SLOTS;
    *out = p;
    return 0;
}

void
import_board_destroy(struct import_board *b)
{
    if (b != NULL)
        munmap(b, sizeof(*b));
}

/* ---- ids and tenants as numbers ------------------------------------------------------ */

static uint64_t
be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* "131016" -> 131016; 0 for anything but 6 digits (no tenant is 000000). */
static uint32_t
tenant_num(const char *t)
{
    uint32_t v = 0;

    if (t == NULL)
        return 0;
    for (int i = 0; i < 6; i++) {
        if (t[i] < '0' || t[i] > '9')
            return 0;
        v = v * 10 + (uint32_t)(t[i] - '0');
    }
    return t[6] == '\0' ? v : 0;
}

static bool
slot_ok(const struct import_board *b, int slot)
{
    return b != NULL && slot >= 0 && slot < (int)b->nslots;
}

/* ---- the seqlock ---------------------------------------------------------------------- */

static void
write_begin(struct slot *s)
{
    uint32_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);

    atomic_store_explicit(&s->seq, q + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

static void
write_end(struct slot *s)
{
    uint32_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);

    atomic_store_explicit(&s->seq, q + 1, memory_order_release);
}

#define LD(f) atomic_load_explicit(&(f), memory_order_relaxed)
#define ST(f, v) atomic_store_explicit(&(f), (v), memory_order_relaxed)

/* ---- owners ---------------------------------------------------------------------------- */

int
import_board_claim(struct import_board *b, const uint8_t id[IMPORT_BOARD_ID_LEN],
                   const char *tenant, uint64_t total, int64_t now_ms, int *slot)
{
    uint32_t t = tenant_num(tenant);

    if (b == NULL || id == NULL || t == 0 || slot == NULL)
        return -1;
    for (uint32_t i = 0; i < b->nslots; i++) {
        struct slot *s = &b->slot[i];
        uint32_t want = SLOT_FREE;

        if (atomic_load_explicit(&s->state, memory_order_relaxed) != SLOT_FREE ||
            !atomic_compare_exchange_strong(&s->state, &want, SLOT_CLAIMING))
            continue;
        write_begin(s);
        ST(s->id_hi, be64(id));
        ST(s->id_lo, be64(id + 8));
        ST(s->tenant, t);
        ST(s->pid, (int32_t)getpid());
        ST(s->phase, (uint32_t)IMPORT_BOARD_QUEUED);
        ST(s->bytes, 0);
        ST(s->total, total);
        ST(s->rows, 0);
        ST(s->beat_ms, now_ms);
        write_end(s);
        atomic_store_explicit(&s->state, SLOT_LIVE, memory_order_release);
        *slot = (int)i;
        return 0;
    }
    errno = ENOSPC;
    return -1;
}

void
import_board_progress(struct import_board *b, int slot, enum import_board_phase phase,
                      uint64_t bytes, uint64_t rows, int64_t now_ms)
{
    struct slot *s;

    if (!slot_ok(b, slot))
        return;
    s = &b->slot[slot];
    write_begin(s);
    ST(s->phase, (uint32_t)phase);
    ST(s->bytes, bytes);
    ST(s->rows, rows);
    write_end(s);
    ST(s->beat_ms, now_ms);
}

void
import_board_beat(struct import_board *b, pid_t pid, int64_t now_ms)
{
    if (b == NULL)
        return;
    for (uint32_t i = 0; i < b->nslots; i++) {
        struct slot *s = &b->slot[i];
        if (atomic_load_explicit(&s->state, memory_order_acquire) == SLOT_LIVE &&
            LD(s->pid) == (int32_t)pid)
            ST(s->beat_ms, now_ms);
    }
}

void
import_board_release(struct import_board *b, int slot)
{
    struct slot *s;

    if (!slot_ok(b, slot))
        return;
    s = &b->slot[slot];
    /* Readers that raced with this see the counter move and look again. */
    write_begin(s);
    ST(s->id_hi, 0);
    ST(s->id_lo, 0);
    ST(s->tenant, 0);
    write_end(s);
    atomic_store_explicit(&s->state, SLOT_FREE, memory_order_release);
}

int
import_board_writer_take(struct import_board *b, pid_t pid)
{
    int32_t want = 0;

    if (b == NULL || pid <= 0)
        return -1;
    if (atomic_load(&b->writer) == (int32_t)pid)
        return 0;
    return atomic_compare_exchange_strong(&b->writer, &want, (int32_t)pid) ? 0 : -1;
}

void
import_board_writer_give(struct import_board *b, pid_t pid)
{
    int32_t held = (int32_t)pid;

    if (b != NULL)
        (void)atomic_compare_exchange_strong(&b->writer, &held, 0);
}

int
import_board_forget_pid(struct import_board *b, pid_t pid)
{
    int n = 0;

    if (b == NULL || pid <= 0)
        return 0;
    import_board_writer_give(b, pid);
    for (uint32_t i = 0; i < b->nslots; i++) {
        struct slot *s = &b->slot[i];
        uint32_t live = SLOT_LIVE;
        if (LD(s->pid) == (int32_t)pid &&
            atomic_compare_exchange_strong(&s->state, &live, SLOT_FREE))
            n++;
    }
    return n;
}

/* ---- readers --------------------------------------------------------------------------- */

/* How long a reader waits for a writer to finish an update: a live
 * owner publishes in nanoseconds, once per chunk it reads; one that is
 * stopped in the middle of a write for this long is as good as gone. */
#define READ_PATIENCE_MS 1000

/* One snapshot of slot s if it is live and holds (hi, lo, t). */
static bool
read_slot(struct slot *s, uint64_t hi, uint64_t lo, uint32_t t, struct import_board_view *v)
{
    int64_t give_up = 0;

    for (unsigned long tries = 0;; tries++) {
        if (atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_LIVE)
            return false;
        uint32_t q1 = atomic_load_explicit(&s->seq, memory_order_acquire);
        if ((q1 & 1u) == 0) {
            bool match = LD(s->id_hi) == hi && LD(s->id_lo) == lo && LD(s->tenant) == t;
            v->phase = (enum import_board_phase)LD(s->phase);
            v->bytes = LD(s->bytes);
            v->total = LD(s->total);
            v->rows = LD(s->rows);
            v->pid = (pid_t)LD(s->pid);
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&s->seq, memory_order_relaxed) == q1)
                return match && atomic_load_explicit(&s->state, memory_order_acquire) ==
                                    SLOT_LIVE;
        }
        /* A write is under way, or one came between our reads. */
        if (tries % 1024 == 1023) {
            int64_t now = import_board_now_ms();
            if (give_up == 0)
                give_up = now + READ_PATIENCE_MS;
            else if (now > give_up)
                return false;
        }
        if (tries >= 64)
            sched_yield();
    }
}

int
import_board_find(const struct import_board *b, const uint8_t id[IMPORT_BOARD_ID_LEN],
                  const char *tenant, int64_t now_ms, struct import_board_view *out)
{
    uint32_t t = tenant_num(tenant);
    uint64_t hi, lo;

    if (b == NULL || id == NULL || t == 0 || out == NULL)
        return -1;
    hi = be64(id);
    lo = be64(id + 8);
    for (uint32_t i = 0; i < b->nslots; i++) {
        /* Loads only; the cast drops const for the atomic_load API. */
        struct slot *s = (struct slot *)(uintptr_t)&b->slot[i];
        if (!read_slot(s, hi, lo, t, out))
            continue;
        out->beat_ms = atomic_load_explicit(&s->beat_ms, memory_order_relaxed);
        out->stale = now_ms - out->beat_ms > IMPORT_BOARD_STALE_MS;
        return 0;
    }
    return -1;
}

unsigned
import_board_used(const struct import_board *b)
{
    unsigned n = 0;

    if (b == NULL)
        return 0;
    for (uint32_t i = 0; i < b->nslots; i++)
        n += atomic_load_explicit((_Atomic uint32_t *)(uintptr_t)&b->slot[i].state,
                                  memory_order_relaxed) != SLOT_FREE;
    return n;
}
