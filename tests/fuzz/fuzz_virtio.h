/* A hostile virtio driver for the device fuzz targets (fuzz_virtio_blk.c,
 * fuzz_virtio_net.c, fuzz_virtio_dev.c): it drives one device through the
 * virtio-mmio transport as a guest would (register writes, rings in guest
 * RAM, notifies) from the fuzz input, and checks the device against the
 * rules of VIRTIO 1.2 after every step.
 *
 * Determinism: the transport runs in polled mode (virtio_mmio_set_polled):
 * no worker threads; after each step the target runs the handlers itself
 * (virtio_mmio_poll). A device is created and destroyed for every input,
 * so nothing (threads, connections, state) carries over between inputs.
 *
 * Guest RAM (FV_RAM_SIZE at FV_RAM_BASE) is mmap'd between PROT_NONE guard
 * pages and laid out as: the rings of queue q at FV_RINGS + q * 0x4000
 * (descriptor table +0, avail ring +0x1000, used ring +0x2000, room for 256
 * entries each), a pool of indirect tables, and a data area the buffers
 * are taken from (never overlapping a buffer still out with the device).
 * Everything starts as a canary pattern.
 *
 * Input: a setup record (features, queue sizes), then operations:
 *   CHAIN     a descriptor chain on a queue, built from the input: 1..121
 *             buffers, readable/writable, zero-length, outside RAM
 *             (below, past the end, straddling it, wrapping), over the
 *             rings, through an indirect table; optionally hostile: a loop,
 *             a next index out of range, INDIRECT with NEXT, a nested
 *             indirect descriptor, a table of a bad length or outside RAM,
 *             a direct buffer before the indirect one. Readable bytes come
 *             from the input. Made available, then notified (or not).
 *   NOTIFY    a QueueNotify of any value
 *   SETUP     reset and the whole setup again (features, sizes, DRIVER_OK)
 *   RESTART   QueueReady 0, fresh rings, QueueReady 1
 *   STATUS    a raw Status write (0: reset)
 *   CONFIG    a configuration space read or write, any offset and width
 *   INTACK    InterruptStatus acknowledged
 *   RESUBMIT  an outstanding chain made available a second time
 *   BUMP      the avail index moved past the queue size (§2.7.13.3 broken)
 *   HOST      a device-specific host action (a frame, console input, a
 *             vsock client, a balloon target...)
 *
 * Checks (beyond ASan/UBSan and the guard pages):
 *   - every used entry names a chain that is out with the device, was made
 *     available valid (fuzz_vq_model.h) and keeps the device's rules, and
 *     its length is at most the chain's writable bytes;
 *   - a queue the device drains on a notify (its request queues) has every
 *     chain back after the step, or DEVICE_NEEDS_RESET (0x40) is set; an
 *     invalid chain, a rule-breaking request or a moved avail index on such
 *     a queue sets it; it is never set without such a cause;
 *   - guest RAM outside the writable buffers of valid chains and the used
 *     rings is unchanged (the canary), checked at the end of each input;
 *   - the handlers end (no endless re-kick), and an input takes less than
 *     FV_MAX_SECONDS;
 *   - the device's own checks (struct fv_dev's hooks) on each used entry. */
#ifndef NIMBUS_TESTS_FUZZ_VIRTIO_H
#define NIMBUS_TESTS_FUZZ_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "fuzz_util.h"
#include "fuzz_vq_model.h"
#include "mem/guest_mem.h"
#include "virtio/virtio_mmio.h"

#define FV_RAM_BASE   0x80000000ull
#define FV_RINGS      0x0u
#define FV_RING_SPAN  0x4000u
#define FV_POOL       0x10000u
#define FV_POOL_N     32u
#define FV_DATA       0x30000u
#define FV_RAM_SIZE   0xb0000u
#define FV_MMIO_BASE  0x10001000ull
#define FV_MAX_Q      4u
#define FV_MAX_ENT    256u      /* entries out with the device, per queue */
#define FV_MAX_CALLS  10000u    /* handler calls per step before it counts as a livelock */
#define FV_MAX_SECONDS 2.0

enum {
    FV_R_DEV_FEATURES = 0x010, FV_R_DEV_FEATURES_SEL = 0x014, FV_R_DRV_FEATURES = 0x020,
    FV_R_DRV_FEATURES_SEL = 0x024, FV_R_QUEUE_SEL = 0x030, FV_R_QUEUE_NUM_MAX = 0x034,
    FV_R_QUEUE_NUM = 0x038, FV_R_QUEUE_READY = 0x044, FV_R_QUEUE_NOTIFY = 0x050,
    FV_R_INT_STATUS = 0x060, FV_R_INT_ACK = 0x064, FV_R_STATUS = 0x070,
    FV_R_DESC_LO = 0x080, FV_R_DESC_HI = 0x084, FV_R_DRIVER_LO = 0x090, FV_R_DRIVER_HI = 0x094,
    FV_R_DEVICE_LO = 0x0a0, FV_R_DEVICE_HI = 0x0a4, FV_R_CONFIG = 0x100,
};

/* One chain made available and not yet back in the used ring. */
struct fv_entry {
    bool live;
    bool valid;          /* the model accepts the chain */
    bool rule_broken;    /* valid, but a request the device must refuse */
    bool shared;         /* its buffers are out twice (RESUBMIT) */
    uint16_t head;
    uint32_t seq;        /* order made available */
    int pool;            /* indirect table it pins, -1 none */
    uint8_t slots[VQ_MAX_SIZE / 8];   /* descriptor slots it pins */
    struct vqm_chain c;
};

struct fv_queue {
    bool configured;     /* set up by us and ready */
    bool poisoned;       /* avail index moved past the size */
    unsigned num;
    uint64_t desc, avail, used;
    uint16_t avail_idx, used_seen;
    uint8_t pin[VQ_MAX_SIZE];
    struct fv_entry ent[FV_MAX_ENT];
};

struct fv;

/* What a device target provides. */
struct fv_dev {
    const char *name;
    /* Creates the device at FV_MMIO_BASE in f->mem (options from the input),
     * sets f->vdev and f->nq. Returns 0, or nonzero to skip the input. */
    int (*create)(struct fv *f, struct fuzz_in *in);
    /* Destroys it (virtio_mmio_destroy and the target's own state). */
    void (*destroy)(struct fv *f);
    /* How many chains the device may keep after a notify of queue q
     * (0 for a request queue it drains), or -1 if it need not pop at all
     * (a receive queue). */
    int (*keeps)(struct fv *f, unsigned q);
    /* Optional: a valid chain the device must refuse with NEEDS_RESET. */
    bool (*rule_broken)(struct fv *f, unsigned q, const struct vqm_chain *c);
    /* Optional: a chain is about to be made available (e->c walked). */
    void (*avail)(struct fv *f, unsigned q, const struct fv_entry *e);
    /* Optional: a used entry came back (generic checks passed). */
    void (*used)(struct fv *f, unsigned q, const struct fv_entry *e, uint32_t len);
    /* Optional: a host-side action from the input. */
    void (*host)(struct fv *f, struct fuzz_in *in);
    /* Optional: checks at the end of the input, before destroy. */
    void (*finish)(struct fv *f);
};

struct fv {
    const struct fv_dev *dev;
    struct guest_mem mem;
    uint8_t *ram;
    uint8_t *shadow;                   /* RAM as the driver wrote it */
    uint8_t allowed[FV_RAM_SIZE / 8];  /* bytes the device may write */
    struct virtio_dev *vdev;
    unsigned nq;
    uint64_t features;                 /* accepted by the device */
    bool features_ok;
    bool chaos;       /* a writable buffer over the rings: the device may
                         rewrite them, so only the sanitizers judge */
    bool reason;      /* a rule was broken: NEEDS_RESET is allowed */
    bool nr_seen;     /* NEEDS_RESET already checked for its interrupt */
    uint32_t seq;
    uint64_t data_cur;
    unsigned npend;                    /* buffers of the chain being built */
    uint64_t pend_pa[VQ_MAX_SIZE];
    uint32_t pend_len[VQ_MAX_SIZE];
    uint8_t pool_pin[FV_POOL_N];
    struct fv_queue q[FV_MAX_Q];
    void *priv;                        /* the device target's */
    int verbose;                       /* NIMBUS_FUZZ_VERBOSE: say what happens */
};

/* ---- guest RAM ---- */

static inline struct vqm_ram fv_r(const struct fv *f)
{
    return (struct vqm_ram){ f->ram, FV_RAM_BASE, FV_RAM_SIZE };
}

static inline bool fv_in_ram(uint64_t pa, uint64_t len)
{
    return pa >= FV_RAM_BASE && pa - FV_RAM_BASE <= FV_RAM_SIZE &&
           len <= FV_RAM_SIZE - (pa - FV_RAM_BASE);
}

/* The driver writes guest RAM (and the shadow). */
static inline void fv_write(struct fv *f, uint64_t pa, const void *src, size_t len)
{
    if (!fv_in_ram(pa, len))
        return;
    memcpy(f->ram + (pa - FV_RAM_BASE), src, len);
    memcpy(f->shadow + (pa - FV_RAM_BASE), src, len);
}

static inline void fv_zero(struct fv *f, uint64_t pa, size_t len)
{
    if (!fv_in_ram(pa, len))
        return;
    memset(f->ram + (pa - FV_RAM_BASE), 0, len);
    memset(f->shadow + (pa - FV_RAM_BASE), 0, len);
}

static inline uint16_t fv_rd16(const struct fv *f, uint64_t pa)
{
    uint16_t v;
    memcpy(&v, f->ram + (pa - FV_RAM_BASE), 2);
    return v;
}

static inline uint32_t fv_rd32(const struct fv *f, uint64_t pa)
{
    uint32_t v;
    memcpy(&v, f->ram + (pa - FV_RAM_BASE), 4);
    return v;
}

/* The device may write [pa, pa + len) from now on (this input). */
static inline void fv_allow(struct fv *f, uint64_t pa, uint64_t len)
{
    if (!fv_in_ram(pa, len))
        return;
    for (uint64_t i = pa - FV_RAM_BASE; i < pa - FV_RAM_BASE + len; i++)
        f->allowed[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* Copies bytes [off, off + len) of a chain's readable (write false) or
 * writable part out of guest RAM; returns the bytes copied. */
static inline size_t fv_chain_read(const struct fv *f, const struct vqm_chain *c, bool write,
                                   size_t off, void *dst, size_t len)
{
    size_t done = 0;
    for (unsigned i = 0; i < c->nbuf && done < len; i++) {
        if (c->buf[i].write != write)
            continue;
        if (off >= c->buf[i].len) {
            off -= c->buf[i].len;
            continue;
        }
        size_t k = c->buf[i].len - off;
        if (k > len - done)
            k = len - done;
        memcpy((uint8_t *)dst + done, f->ram + (c->buf[i].pa + off - FV_RAM_BASE), k);
        done += k;
        off = 0;
    }
    return done;
}

/* ---- registers ---- */

static inline uint32_t fv_rd(struct fv *f, uint64_t off)
{
    uint64_t v = 0;
    FUZZ_CHECK(guest_mem_mmio_read(&f->mem, FV_MMIO_BASE + off, 4, &v), "register 0x%llx read",
               (unsigned long long)off);
    return (uint32_t)v;
}

static inline void fv_wr(struct fv *f, uint64_t off, uint32_t v)
{
    FUZZ_CHECK(guest_mem_mmio_write(&f->mem, FV_MMIO_BASE + off, 4, v), "register 0x%llx write",
               (unsigned long long)off);
}

/* ---- checks ---- */

static inline void fv_release(struct fv *f, struct fv_queue *q, struct fv_entry *e)
{
    for (unsigned s = 0; s < VQ_MAX_SIZE; s++)
        if (e->slots[s / 8] & (1u << (s % 8)))
            q->pin[s]--;
    if (e->pool >= 0)
        f->pool_pin[e->pool]--;
    e->live = false;
}

/* New used entries of queue qi: each must be a live, valid chain's, with no
 * more bytes than it had writable. */
static inline unsigned fv_check_used(struct fv *f, unsigned qi)
{
    struct fv_queue *q = &f->q[qi];
    if (!q->configured || f->chaos)
        return 0;
    uint16_t idx = __atomic_load_n((uint16_t *)(void *)(f->ram + (q->used + 2 - FV_RAM_BASE)),
                                   __ATOMIC_ACQUIRE);
    uint16_t n = (uint16_t)(idx - q->used_seen);
    unsigned live = 0;
    for (unsigned i = 0; i < FV_MAX_ENT; i++)
        live += q->ent[i].live;
    FUZZ_CHECK(n <= live, "queue %u: %u new used entries, %u chains out", qi, n, live);
    for (uint16_t k = 0; k < n; k++) {
        uint64_t at = q->used + 4 + 8ull * ((uint16_t)(q->used_seen + k) % q->num);
        uint32_t id = fv_rd32(f, at), len = fv_rd32(f, at + 4);
        FUZZ_CHECK(id < q->num, "queue %u: used id %u, queue size %u", qi, id, q->num);
        struct fv_entry *e = NULL;
        for (unsigned i = 0; i < FV_MAX_ENT; i++) {
            struct fv_entry *x = &q->ent[i];
            if (x->live && x->head == id && (!e || (int32_t)(x->seq - e->seq) < 0))
                e = x;
        }
        FUZZ_CHECK(e, "queue %u: used id %u is not out with the device", qi, id);
        FUZZ_CHECK(e->valid, "queue %u: the device used chain %u, which breaks §2.7 rules", qi, id);
        FUZZ_CHECK(!e->rule_broken, "queue %u: the device completed a request it must refuse", qi);
        FUZZ_CHECK(len <= e->c.in_len, "queue %u: used len %u > %llu writable bytes", qi, len,
                   (unsigned long long)e->c.in_len);
        if (f->verbose)
            fprintf(stderr, "  q%u used: head %u len %u of %llu/%llu bytes\n", qi, id, len,
                    (unsigned long long)e->c.out_len, (unsigned long long)e->c.in_len);
        if (f->dev->used)
            f->dev->used(f, qi, e, len);
        fv_release(f, q, e);
    }
    q->used_seen = idx;
    return n;
}

/* Runs the handlers, then checks every queue. `notified` is the queue a
 * notify just went to (-1 none) and `was_live` whether the device was
 * running (DRIVER_OK, no NEEDS_RESET) when it was sent. */
static inline void fv_settle(struct fv *f, int notified, bool was_live, unsigned wait_ms)
{
    unsigned calls = virtio_mmio_poll(f->vdev, FV_MAX_CALLS, wait_ms);
    FUZZ_CHECK(calls < FV_MAX_CALLS, "handlers still busy after %u calls (livelock)", calls);
    unsigned used = 0;
    for (unsigned q = 0; q < f->nq && q < FV_MAX_Q; q++)
        used += fv_check_used(f, q);
    uint32_t status = fv_rd(f, FV_R_STATUS), isr = fv_rd(f, FV_R_INT_STATUS);
    bool nr = status & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    FUZZ_CHECK(!nr || f->reason || f->chaos, "DEVICE_NEEDS_RESET (status 0x%x) but no rule broken",
               status);
    /* §2.1.2: NEEDS_RESET while DRIVER_OK comes with a configuration
     * change interrupt. */
    if (nr && !f->nr_seen) {
        f->nr_seen = true;
        FUZZ_CHECK(!(status & VIRTIO_STATUS_DRIVER_OK) || (isr & VIRTIO_INT_CONFIG),
                   "DEVICE_NEEDS_RESET without a configuration interrupt (0x%x)", isr);
    }
    /* §2.7.7: without EVENT_IDX, and the driver not asking for silence
     * (its avail flags are 0), every used buffer interrupts. */
    if (used && !(f->features & (1ull << VIRTIO_F_EVENT_IDX)))
        FUZZ_CHECK(isr & VIRTIO_INT_USED, "%u buffers used and no interrupt (0x%x)", used, isr);
    if (notified < 0 || (unsigned)notified >= f->nq || notified >= (int)FV_MAX_Q || !was_live ||
        f->chaos)
        return;
    struct fv_queue *q = &f->q[notified];
    int keeps = f->dev->keeps(f, (unsigned)notified);
    if (!q->configured || keeps < 0)
        return;
    unsigned live = 0;
    bool bad = q->poisoned;
    for (unsigned i = 0; i < FV_MAX_ENT; i++) {
        if (!q->ent[i].live)
            continue;
        live++;
        bad |= !q->ent[i].valid || q->ent[i].rule_broken;
    }
    /* §2.1.2: a device that found the driver's error says so. */
    if (bad)
        FUZZ_CHECK(nr, "queue %d holds a broken chain after a notify, status 0x%x", notified,
                   status);
    else
        FUZZ_CHECK(nr || live <= (unsigned)keeps, "queue %d: %u chains not used after a notify",
                   notified, live);
}

static inline bool fv_live(struct fv *f)
{
    uint32_t s = fv_rd(f, FV_R_STATUS);
    return (s & VIRTIO_STATUS_DRIVER_OK) && !(s & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

static inline void fv_check_canary(struct fv *f)
{
    if (f->chaos)
        return;
    for (size_t i = 0; i < FV_RAM_SIZE; i += 4096) {
        if (memcmp(f->ram + i, f->shadow + i, 4096) == 0)
            continue;
        for (size_t j = i; j < i + 4096; j++) {
            if (f->ram[j] != f->shadow[j] && !(f->allowed[j / 8] & (1u << (j % 8))))
                FUZZ_CHECK(false, "the device wrote guest RAM at 0x%llx (%02x, was %02x), "
                                  "outside the writable buffers and used rings",
                           (unsigned long long)(FV_RAM_BASE + j), f->ram[j], f->shadow[j]);
        }
    }
}

/* ---- the driver ---- */

static inline void fv_forget_queues(struct fv *f)
{
    for (unsigned qi = 0; qi < FV_MAX_Q; qi++) {
        struct fv_queue *q = &f->q[qi];
        q->configured = q->poisoned = false;
        for (unsigned i = 0; i < FV_MAX_ENT; i++)
            q->ent[i].live = false;
        memset(q->pin, 0, sizeof(q->pin));
    }
    memset(f->pool_pin, 0, sizeof(f->pool_pin));
    f->reason = false;
    f->nr_seen = false;
}

/* Lays out fresh rings for queue qi of `num` entries and enables it. */
static inline void fv_queue_start(struct fv *f, unsigned qi, unsigned num, bool hostile)
{
    struct fv_queue *q = &f->q[qi];
    uint64_t at = FV_RAM_BASE + FV_RINGS + FV_RING_SPAN * qi;
    for (unsigned i = 0; i < FV_MAX_ENT; i++)
        q->ent[i].live = false;
    memset(q->pin, 0, sizeof(q->pin));
    q->configured = q->poisoned = false;
    q->num = num;
    q->desc = at;
    q->avail = at + 0x1000;
    q->used = at + 0x2000;
    q->avail_idx = q->used_seen = 0;
    fv_zero(f, at, FV_RING_SPAN);
    fv_wr(f, FV_R_QUEUE_SEL, qi);
    fv_wr(f, FV_R_QUEUE_NUM, num);
    fv_wr(f, FV_R_DESC_LO, (uint32_t)q->desc);
    fv_wr(f, FV_R_DESC_HI, (uint32_t)(q->desc >> 32));
    fv_wr(f, FV_R_DRIVER_LO, (uint32_t)q->avail);
    fv_wr(f, FV_R_DRIVER_HI, (uint32_t)(q->avail >> 32));
    fv_wr(f, FV_R_DEVICE_LO, (uint32_t)q->used);
    fv_wr(f, FV_R_DEVICE_HI, (uint32_t)(q->used >> 32));
    fv_wr(f, FV_R_QUEUE_READY, 1);
    q->configured = fv_rd(f, FV_R_QUEUE_READY) == 1;
    if (q->configured)
        fv_allow(f, q->used, 6 + 8ull * num);   /* §2.7.8: the used ring and avail_event */
    if (hostile && !q->configured) {
        f->reason = true;   /* vq_start refused it: NEEDS_RESET (§2.1.2) */
        f->nr_seen = true;  /* before DRIVER_OK: no interrupt is due */
    }
}

/* SETUP: u8 flags (bit 0 features as given, bit 1 no DRIVER_OK, bit 2
 * hostile queue sizes), u64 features, a u8 size selector per queue. */
static inline void fv_setup(struct fv *f, struct fuzz_in *in)
{
    uint8_t flags = fuzz_u8(in);
    uint64_t want = fuzz_u64(in, 8);

    fv_wr(f, FV_R_STATUS, 0);
    fv_forget_queues(f);
    fv_wr(f, FV_R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    fv_wr(f, FV_R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    fv_wr(f, FV_R_DEV_FEATURES_SEL, 0);
    uint64_t offered = fv_rd(f, FV_R_DEV_FEATURES);
    fv_wr(f, FV_R_DEV_FEATURES_SEL, 1);
    offered |= (uint64_t)fv_rd(f, FV_R_DEV_FEATURES) << 32;
    uint64_t feat = (flags & 1) ? want : (want & offered) | (1ull << VIRTIO_F_VERSION_1);
    fv_wr(f, FV_R_DRV_FEATURES_SEL, 0);
    fv_wr(f, FV_R_DRV_FEATURES, (uint32_t)feat);
    fv_wr(f, FV_R_DRV_FEATURES_SEL, 1);
    fv_wr(f, FV_R_DRV_FEATURES, (uint32_t)(feat >> 32));
    fv_wr(f, FV_R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                               VIRTIO_STATUS_FEATURES_OK);
    f->features_ok = fv_rd(f, FV_R_STATUS) & VIRTIO_STATUS_FEATURES_OK;
    /* §3.1.1: refused exactly when something was not offered or VERSION_1 is missing. */
    FUZZ_CHECK(f->features_ok == (!(feat & ~offered) && (feat & (1ull << VIRTIO_F_VERSION_1))),
               "features 0x%llx of 0x%llx offered: FEATURES_OK %d", (unsigned long long)feat,
               (unsigned long long)offered, f->features_ok);
    f->features = f->features_ok ? feat : 0;
    for (unsigned qi = 0; qi < f->nq; qi++) {
        uint8_t sel = fuzz_u8(in);
        if (qi >= FV_MAX_Q || !f->features_ok)
            continue;
        fv_wr(f, FV_R_QUEUE_SEL, qi);
        unsigned max = fv_rd(f, FV_R_QUEUE_NUM_MAX);
        unsigned num = 1u << (sel % 9);
        bool hostile = (flags & 4) && sel >= 0xf0;
        if (hostile)
            num = (sel & 1) ? max * 2 : (sel & 0xe) * 3;   /* too large, 0, not a power of two */
        else if (num > max)
            num = max;
        fv_queue_start(f, qi, num, hostile);
    }
    if (f->features_ok && !(flags & 2))
        fv_wr(f, FV_R_STATUS, fv_rd(f, FV_R_STATUS) | VIRTIO_STATUS_DRIVER_OK);
    fv_settle(f, -1, false, 0);
}

/* Finds `n` free descriptor slots of queue q; false if there are not. */
static inline bool fv_alloc_slots(struct fv_queue *q, unsigned n, uint16_t *out)
{
    unsigned k = 0;
    for (unsigned s = 0; s < q->num && k < n; s++)
        if (!q->pin[s])
            out[k++] = (uint16_t)s;
    return k == n;
}

static inline bool fv_overlaps_live(const struct fv *f, uint64_t pa, uint64_t len)
{
    for (unsigned i = 0; i < f->npend; i++)
        if (pa < f->pend_pa[i] + f->pend_len[i] && f->pend_pa[i] < pa + len)
            return true;
    for (unsigned qi = 0; qi < FV_MAX_Q; qi++)
        for (unsigned i = 0; i < FV_MAX_ENT; i++) {
            const struct fv_entry *e = &f->q[qi].ent[i];
            if (!e->live)
                continue;
            for (unsigned b = 0; b < e->c.nbuf; b++)
                if (pa < e->c.buf[b].pa + e->c.buf[b].len && e->c.buf[b].pa < pa + len)
                    return true;
        }
    return false;
}

/* A buffer of `len` bytes in the data area that overlaps no buffer still
 * out with the device; 0 if there is none right now. */
static inline uint64_t fv_alloc_data(struct fv *f, uint32_t len)
{
    const uint64_t lo = FV_RAM_BASE + FV_DATA, hi = FV_RAM_BASE + FV_RAM_SIZE;
    for (int tries = 0; tries < 8; tries++) {
        if (f->data_cur < lo || f->data_cur + len > hi)
            f->data_cur = lo;
        uint64_t pa = f->data_cur;
        f->data_cur += len;
        if (!fv_overlaps_live(f, pa, len)) {
            if (f->npend < VQ_MAX_SIZE) {
                f->pend_pa[f->npend] = pa;
                f->pend_len[f->npend++] = len;
            }
            return pa;
        }
        f->data_cur += 4096;
    }
    return 0;
}

/* A free entry, unless `num` chains are out already: the ring has room
 * for no more (§2.7.6: avail - used never exceeds the queue size). */
static inline struct fv_entry *fv_new_entry(struct fv_queue *q)
{
    struct fv_entry *e = NULL;
    unsigned live = 0;
    for (unsigned i = 0; i < FV_MAX_ENT; i++) {
        if (q->ent[i].live)
            live++;
        else if (!e)
            e = &q->ent[i];
    }
    return live < q->num ? e : NULL;
}

/* Makes entry e's chain available on queue qi (walking the model first)
 * and notifies unless told not to. */
static inline void fv_make_available(struct fv *f, unsigned qi, struct fv_entry *e, bool notify)
{
    struct fv_queue *q = &f->q[qi];
    const struct vqm_ram r = fv_r(f);
    vqm_walk(&r, q->desc, q->num, f->features & (1ull << VIRTIO_F_INDIRECT_DESC), e->head, &e->c);
    e->valid = e->c.ok;
    e->rule_broken = e->valid && f->dev->rule_broken && f->dev->rule_broken(f, qi, &e->c);
    e->live = true;
    e->seq = f->seq++;
    if (f->verbose)
        fprintf(stderr, "  q%u avail: head %u %s%s, %u buffers, %llu/%llu bytes\n", qi, e->head,
                e->valid ? "valid" : "INVALID", e->rule_broken ? " rule-broken" : "", e->c.nbuf,
                (unsigned long long)e->c.out_len, (unsigned long long)e->c.in_len);
    if (!e->valid || e->rule_broken)
        f->reason = true;
    if (e->valid)
        for (unsigned b = 0; b < e->c.nbuf; b++)
            if (e->c.buf[b].write)
                fv_allow(f, e->c.buf[b].pa, e->c.buf[b].len);
    for (unsigned s = 0; s < VQ_MAX_SIZE; s++)
        if (e->slots[s / 8] & (1u << (s % 8)))
            q->pin[s]++;
    if (e->pool >= 0)
        f->pool_pin[e->pool]++;
    uint16_t head = e->head;
    fv_write(f, q->avail + 4 + 2ull * (q->avail_idx % q->num), &head, 2);
    q->avail_idx++;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    fv_write(f, q->avail + 2, &q->avail_idx, 2);
    /* After the ring writes: a readable buffer may lie over the avail ring. */
    if (f->dev->avail)
        f->dev->avail(f, qi, e);
    if (notify) {
        bool live = fv_live(f);
        fv_wr(f, FV_R_QUEUE_NOTIFY, qi);
        fv_settle(f, (int)qi, live, 0);
    }
}

static inline void fv_set_desc(struct fv *f, uint64_t at, uint64_t addr, uint32_t len,
                               uint16_t flags, uint16_t next)
{
    uint8_t d[16];
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
    fv_write(f, at, d, 16);
}

/* CHAIN: u8 queue, u8 count, u8 mode (bit 0 indirect, bit 1 no notify,
 * bits 2-4 hostility, bits 5-7 its variant), then per buffer u8 flags
 * (bit 0 writable, bit 1 zero length, bits 2-3 where: 0/1 data area,
 * 2 outside RAM, 3 over the rings), u16 length, u8 n and n bytes of
 * content (readable buffers); a writable buffer over the rings needs bits
 * 4-5 set too. */
static inline void fv_op_chain(struct fv *f, struct fuzz_in *in)
{
    unsigned qi = fuzz_u8(in) % (f->nq ? f->nq : 1);
    uint8_t nsel = fuzz_u8(in), mode = fuzz_u8(in);
    unsigned n = nsel < 0xf8 ? 1u + nsel % 8 : 16u * (nsel & 7) + 9;
    bool ind = mode & 1, notify = !(mode & 2);
    unsigned hostile = (mode >> 2) & 7, variant = mode >> 5;
    static struct { uint64_t pa; uint32_t len; uint16_t flags; } b[VQ_MAX_SIZE];
    static uint8_t lit[256];

    f->npend = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t fl = fuzz_u8(in);
        uint32_t len = (uint32_t)fuzz_u64(in, 2);
        unsigned nlit = fuzz_u8(in);
        for (unsigned k = 0; k < nlit; k++)
            lit[k] = fuzz_u8(in);
        if (fl & 2)
            len = 0;
        b[i].len = len;
        b[i].flags = (fl & 1) ? VRING_DESC_F_WRITE : 0;
        switch ((fl >> 2) & 3) {
        case 2: {   /* outside RAM: below, straddling the end, just past it, wrapping */
            static const uint64_t where[4] = { FV_RAM_BASE - 16, FV_RAM_BASE + FV_RAM_SIZE - 8,
                                               FV_RAM_BASE + FV_RAM_SIZE, ~0ull - 8 };
            b[i].pa = where[(fl >> 4) & 3];
            break;
        }
        case 3:     /* over queue 0's descriptors and avail ring: readable, or
                       (rarely: it ends the model's checks) writable */
            if ((fl & 1) && ((fl >> 4) & 3) != 3)
                goto data;
            b[i].pa = FV_RAM_BASE + FV_RINGS + ((uint32_t)(nlit ? lit[0] : 0) << 4);
            if (b[i].pa + len > FV_RAM_BASE + FV_RINGS + 0x2000)
                b[i].len = len = (uint32_t)(FV_RAM_BASE + FV_RINGS + 0x2000 - b[i].pa);
            if (fl & 1)
                f->chaos = true;
            break;
        default:
        data:
            b[i].pa = len ? fv_alloc_data(f, len) : FV_RAM_BASE + FV_DATA;
            if (!b[i].pa)
                return;   /* no room now */
            if (!(fl & 1))
                fv_write(f, b[i].pa, lit, nlit < len ? nlit : len);
            break;
        }
    }
    if (qi >= FV_MAX_Q || !f->q[qi].configured)
        return;
    struct fv_queue *q = &f->q[qi];
    struct fv_entry *e = fv_new_entry(q);
    if (!e)
        return;
    memset(e->slots, 0, sizeof(e->slots));
    e->pool = -1;
    e->shared = false;
    uint16_t slot[VQ_MAX_SIZE];
    uint16_t ndir = ind ? (hostile == 5 ? 2 : 1) : (uint16_t)n;
    if (ndir > q->num || !fv_alloc_slots(q, ndir, slot))
        return;
    for (unsigned i = 0; i < ndir; i++)
        e->slots[slot[i] / 8] |= (uint8_t)(1u << (slot[i] % 8));
    uint64_t table;
    uint16_t tsize;
    if (ind) {
        int p = -1;
        for (unsigned k = 0; k < FV_POOL_N && p < 0; k++)
            if (!f->pool_pin[k])
                p = (int)k;
        if (p < 0)
            return;
        e->pool = p;
        table = FV_RAM_BASE + FV_POOL + 4096ull * (unsigned)p;
        tsize = (uint16_t)n;
    } else {
        table = q->desc;
        tsize = q->num;
    }
    /* The buffers, linked in order (slot[i] in the ring, i in a table). */
    for (unsigned i = 0; i < n; i++) {
        uint16_t idx = ind ? (uint16_t)i : slot[i];
        uint16_t next = ind ? (uint16_t)(i + 1) : (i + 1 < n ? slot[i + 1] : 0);
        uint16_t flags = b[i].flags | (i + 1 < n ? VRING_DESC_F_NEXT : 0);
        if (i + 1 == n && hostile == 1) {            /* a loop back */
            flags |= VRING_DESC_F_NEXT;
            next = ind ? (uint16_t)(variant % n) : slot[variant % n];
        }
        if (i == variant % n && hostile == 2) {      /* next out of the table */
            flags |= VRING_DESC_F_NEXT;
            next = (uint16_t)(tsize + variant);
        }
        if (i == variant % n && hostile == 4 && ind) /* nested indirect */
            flags |= VRING_DESC_F_INDIRECT;
        fv_set_desc(f, table + 16ull * idx, b[i].pa, b[i].len, flags, next);
    }
    e->head = slot[0];
    if (ind) {
        uint32_t tlen = 16u * n;
        uint64_t taddr = table;
        uint16_t iflags = VRING_DESC_F_INDIRECT;
        if (hostile == 3)                            /* INDIRECT with NEXT */
            iflags |= VRING_DESC_F_NEXT;
        if (hostile == 6) {                          /* a bad table */
            static const uint32_t lens[4] = { 0, 8, 16 * 257, 24 };
            if (variant < 4)
                tlen = lens[variant];
            else
                taddr = FV_RAM_BASE + FV_RAM_SIZE - 16 * (variant - 4);
        }
        uint16_t at = slot[0];
        if (hostile == 5) {                          /* a direct buffer, then the table */
            fv_set_desc(f, q->desc + 16ull * slot[0], b[0].pa, b[0].len,
                        (b[0].flags & ~VRING_DESC_F_WRITE) | VRING_DESC_F_NEXT, slot[1]);
            at = slot[1];
        }
        fv_set_desc(f, q->desc + 16ull * at, taddr, tlen, iflags, 0);
    }
    fv_make_available(f, qi, e, notify);
}

/* RESUBMIT: u8 queue, u8 which: an outstanding chain's head again. */
static inline void fv_op_resubmit(struct fv *f, struct fuzz_in *in)
{
    unsigned qi = fuzz_u8(in) % (f->nq ? f->nq : 1), k = fuzz_u8(in);
    if (qi >= FV_MAX_Q || !f->q[qi].configured)
        return;
    struct fv_queue *q = &f->q[qi];
    struct fv_entry *old = NULL;
    unsigned nlive = 0;
    for (unsigned i = 0; i < FV_MAX_ENT; i++)
        nlive += q->ent[i].live;
    if (!nlive)
        return;
    k %= nlive;
    for (unsigned i = 0; i < FV_MAX_ENT && !old; i++)
        if (q->ent[i].live && k-- == 0)
            old = &q->ent[i];
    struct fv_entry *e = fv_new_entry(q);
    if (!e)
        return;
    e->head = old->head;
    memcpy(e->slots, old->slots, sizeof(e->slots));
    e->pool = old->pool;
    e->shared = old->shared = true;
    fv_make_available(f, qi, e, true);
}

/* One input: create, set up, run the operations, check, destroy. */
static inline void fv_run(struct fv *f, const struct fv_dev *dev, const uint8_t *data, size_t size)
{
    static uint8_t *canary;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!f->ram) {
        f->verbose = getenv("NIMBUS_FUZZ_VERBOSE") != NULL;
        uint8_t *p = mmap(NULL, FV_RAM_SIZE + 2 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
                          -1, 0);
        FUZZ_SETUP(p != MAP_FAILED);
        f->ram = p + 4096;
        FUZZ_SETUP(mprotect(f->ram, FV_RAM_SIZE, PROT_READ | PROT_WRITE) == 0);
        f->shadow = malloc(FV_RAM_SIZE);
        canary = malloc(FV_RAM_SIZE);
        FUZZ_SETUP(f->shadow && canary);
        for (size_t i = 0; i < FV_RAM_SIZE; i++)
            canary[i] = (uint8_t)(0x5a ^ (i * 167) ^ (i >> 11));
    }
    memcpy(f->ram, canary, FV_RAM_SIZE);
    memcpy(f->shadow, canary, FV_RAM_SIZE);
    memset(f->allowed, 0, sizeof(f->allowed));
    memset(&f->mem, 0, sizeof(f->mem));
    f->mem.ram = f->ram;
    f->mem.ram_base = FV_RAM_BASE;
    f->mem.ram_size = FV_RAM_SIZE;
    f->dev = dev;
    f->vdev = NULL;
    f->nq = 0;
    f->features = 0;
    f->features_ok = false;
    f->chaos = false;
    f->seq = 0;
    f->data_cur = 0;
    fv_forget_queues(f);

    struct fuzz_in in = { data, size };
    if (dev->create(f, &in))
        return;
    virtio_mmio_set_polled(f->vdev);
    fv_setup(f, &in);
    for (unsigned ops = 0; in.n && ops < 256; ops++) {
        uint8_t op = fuzz_u8(&in);
        if (f->verbose)
            fprintf(stderr, "op %u, status 0x%x\n", op % 10, fv_rd(f, FV_R_STATUS));
        switch (op % 10) {
        case 0:
            fv_op_chain(f, &in);
            break;
        case 1: {
            uint32_t v = fuzz_u8(&in);
            bool live = fv_live(f);
            fv_wr(f, FV_R_QUEUE_NOTIFY, v >= 0xf0 ? v << 24 : v % 8);
            fv_settle(f, v < 0xf0 ? (int)(v % 8) : -1, live, 0);
            break;
        }
        case 2:
            fv_setup(f, &in);
            break;
        case 3: {
            unsigned qi = fuzz_u8(&in) % (f->nq ? f->nq : 1);
            if (qi < FV_MAX_Q && f->q[qi].configured) {
                fv_wr(f, FV_R_QUEUE_SEL, qi);
                fv_wr(f, FV_R_QUEUE_READY, 0);
                FUZZ_CHECK(fv_rd(f, FV_R_QUEUE_READY) == 0, "QueueReady stays 1");
                fv_queue_start(f, qi, f->q[qi].num, false);
                fv_settle(f, -1, false, 0);
            }
            break;
        }
        case 4: {
            uint8_t v = fuzz_u8(&in);
            fv_wr(f, FV_R_STATUS, v);
            if (v == 0) {
                fv_forget_queues(f);
                FUZZ_CHECK(fv_rd(f, FV_R_STATUS) == 0, "status after reset");
            }
            fv_settle(f, -1, false, 0);
            break;
        }
        case 5: {
            uint8_t off = fuzz_u8(&in), sz = (uint8_t)(1u << (fuzz_u8(&in) % 4)), wr = fuzz_u8(&in);
            uint64_t v = fuzz_u64(&in, 8);
            off &= (uint8_t)~(sz - 1);
            if (wr & 1)
                guest_mem_mmio_write(&f->mem, FV_MMIO_BASE + FV_R_CONFIG + off, sz, v);
            else
                guest_mem_mmio_read(&f->mem, FV_MMIO_BASE + FV_R_CONFIG + off, sz, &v);
            fv_settle(f, -1, false, 0);
            break;
        }
        case 6:
            fv_wr(f, FV_R_INT_ACK, fv_rd(f, FV_R_INT_STATUS));
            FUZZ_CHECK((fv_rd(f, FV_R_INT_STATUS) & ~3u) == 0, "InterruptStatus has unknown bits");
            break;
        case 7:
            fv_op_resubmit(f, &in);
            break;
        case 8: {
            unsigned qi = fuzz_u8(&in) % (f->nq ? f->nq : 1);
            uint8_t d = fuzz_u8(&in);
            if (qi < FV_MAX_Q && f->q[qi].configured) {
                struct fv_queue *q = &f->q[qi];
                q->avail_idx = (uint16_t)(q->avail_idx + q->num + 1 + d);
                fv_write(f, q->avail + 2, &q->avail_idx, 2);
                q->poisoned = true;
                f->reason = true;
                bool live = fv_live(f);
                fv_wr(f, FV_R_QUEUE_NOTIFY, qi);
                fv_settle(f, (int)qi, live, 0);
            }
            break;
        }
        case 9:
            if (dev->host)
                dev->host(f, &in);
            break;
        }
    }
    fv_settle(f, -1, false, 0);
    fv_check_canary(f);
    if (dev->finish)
        dev->finish(f);
    dev->destroy(f);
    f->vdev = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    FUZZ_CHECK(s < FV_MAX_SECONDS, "one input took %.2f s", s);
}

#endif
