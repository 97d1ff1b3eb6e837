/* A minimal virtio-mmio driver for the unit tests: the register dance Linux
 * does (§3.1.1), one split queue per index laid out in a heap-backed guest
 * RAM, adding chains and waiting for used entries. Included by the
 * transport and device tests. */
#ifndef NIMBUS_TESTS_UNIT_VIRTIO_DRIVER_H
#define NIMBUS_TESTS_UNIT_VIRTIO_DRIVER_H

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem/guest_mem.h"
#include "virtio/virtio_mmio.h"

#define DRV_RAM_BASE 0x80000000ull
#define DRV_RAM_SIZE (2ull << 20)
#define DRV_DATA     (DRV_RAM_BASE + 0x100000)  /* buffers from here up */
#define DRV_MAX_Q    4

enum {
    R_MAGIC = 0x000, R_VERSION = 0x004, R_DEVICE_ID = 0x008, R_VENDOR_ID = 0x00c,
    R_DEV_FEATURES = 0x010, R_DEV_FEATURES_SEL = 0x014, R_DRV_FEATURES = 0x020,
    R_DRV_FEATURES_SEL = 0x024, R_QUEUE_SEL = 0x030, R_QUEUE_NUM_MAX = 0x034,
    R_QUEUE_NUM = 0x038, R_QUEUE_READY = 0x044, R_QUEUE_NOTIFY = 0x050,
    R_INT_STATUS = 0x060, R_INT_ACK = 0x064, R_STATUS = 0x070,
    R_DESC_LO = 0x080, R_DESC_HI = 0x084, R_DRIVER_LO = 0x090, R_DRIVER_HI = 0x094,
    R_DEVICE_LO = 0x0a0, R_DEVICE_HI = 0x0a4, R_CONFIG_GEN = 0x0fc, R_CONFIG = 0x100,
};

struct drv_queue {
    uint16_t num;
    uint64_t desc, avail, used;
    uint16_t avail_idx;
    unsigned next_desc;
};

struct drv {
    struct guest_mem *mem;
    uint64_t base;
    unsigned slot;   /* 0..3: which rings area this driver's queues use */
    struct drv_queue q[DRV_MAX_Q];
};

/* Heap-backed RAM (the sanitizer sees accesses outside it); the MMIO table
 * works on it like on the real mapping. Free with drv_mem_free. */
static inline void drv_mem_init(struct guest_mem *mem)
{
    memset(mem, 0, sizeof(*mem));
    mem->ram_base = DRV_RAM_BASE;
    mem->ram_size = DRV_RAM_SIZE;
    mem->ram = calloc(1, DRV_RAM_SIZE);
    if (!mem->ram)
        exit(1);
}

static inline void drv_mem_free(struct guest_mem *mem)
{
    free(mem->ram);
    mem->ram = NULL;
}

static inline void *drv_ram(struct drv *d, uint64_t pa)
{
    return d->mem->ram + (pa - DRV_RAM_BASE);
}

static inline uint32_t drv_rd(struct drv *d, uint64_t off)
{
    uint64_t v = 0xdeadbeef;
    if (!guest_mem_mmio_read(d->mem, d->base + off, 4, &v))
        return 0xdeadbeef;
    return (uint32_t)v;
}

static inline void drv_wr(struct drv *d, uint64_t off, uint32_t v)
{
    guest_mem_mmio_write(d->mem, d->base + off, 4, v);
}

static inline uint64_t drv_device_features(struct drv *d)
{
    drv_wr(d, R_DEV_FEATURES_SEL, 0);
    uint64_t lo = drv_rd(d, R_DEV_FEATURES);
    drv_wr(d, R_DEV_FEATURES_SEL, 1);
    return lo | (uint64_t)drv_rd(d, R_DEV_FEATURES) << 32;
}

/* Reset, ACKNOWLEDGE, DRIVER, write `features`, FEATURES_OK; returns the
 * status read back (FEATURES_OK clear: refused). */
static inline uint32_t drv_negotiate(struct drv *d, uint64_t features)
{
    drv_wr(d, R_STATUS, 0);
    drv_wr(d, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    drv_wr(d, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    drv_wr(d, R_DRV_FEATURES_SEL, 0);
    drv_wr(d, R_DRV_FEATURES, (uint32_t)features);
    drv_wr(d, R_DRV_FEATURES_SEL, 1);
    drv_wr(d, R_DRV_FEATURES, (uint32_t)(features >> 32));
    drv_wr(d, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    return drv_rd(d, R_STATUS);
}

/* Lays out queue `qi` with `num` entries at addresses derived from the
 * driver's slot and qi. */
static inline void drv_queue_setup(struct drv *d, unsigned qi, uint16_t num)
{
    struct drv_queue *q = &d->q[qi];
    uint64_t at = DRV_RAM_BASE + 0x10000 * (1 + qi + DRV_MAX_Q * d->slot);
    *q = (struct drv_queue){ .num = num, .desc = at, .avail = at + 0x4000, .used = at + 0x8000 };
    memset(drv_ram(d, at), 0, 0x10000);
    drv_wr(d, R_QUEUE_SEL, qi);
    drv_wr(d, R_QUEUE_NUM, num);
    drv_wr(d, R_DESC_LO, (uint32_t)q->desc);
    drv_wr(d, R_DESC_HI, (uint32_t)(q->desc >> 32));
    drv_wr(d, R_DRIVER_LO, (uint32_t)q->avail);
    drv_wr(d, R_DRIVER_HI, (uint32_t)(q->avail >> 32));
    drv_wr(d, R_DEVICE_LO, (uint32_t)q->used);
    drv_wr(d, R_DEVICE_HI, (uint32_t)(q->used >> 32));
    drv_wr(d, R_QUEUE_READY, 1);
}

static inline void drv_driver_ok(struct drv *d)
{
    drv_wr(d, R_STATUS, drv_rd(d, R_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* One buffer of a chain: guest address, length, device-writable? */
struct drv_buf {
    uint64_t addr;
    uint32_t len;
    bool write;
};

static inline void drv_set_desc(struct drv *d, unsigned qi, unsigned i, uint64_t addr, uint32_t len,
                                uint16_t flags, uint16_t next)
{
    uint8_t *p = drv_ram(d, d->q[qi].desc + 16 * i);
    memcpy(p, &addr, 8);
    memcpy(p + 8, &len, 4);
    memcpy(p + 12, &flags, 2);
    memcpy(p + 14, &next, 2);
}

/* Makes `head` available and notifies. */
static inline void drv_kick_head(struct drv *d, unsigned qi, uint16_t head)
{
    struct drv_queue *q = &d->q[qi];
    uint16_t *avail = drv_ram(d, q->avail);
    avail[2 + q->avail_idx % q->num] = head;
    __atomic_store_n(&avail[1], (uint16_t)(q->avail_idx + 1), __ATOMIC_RELEASE);
    q->avail_idx++;
    drv_wr(d, R_QUEUE_NOTIFY, qi);
}

/* Adds a chain of direct descriptors, returns its head. */
static inline uint16_t drv_add(struct drv *d, unsigned qi, const struct drv_buf *b, unsigned n)
{
    struct drv_queue *q = &d->q[qi];
    uint16_t head = (uint16_t)(q->next_desc % q->num);
    for (unsigned i = 0; i < n; i++) {
        unsigned idx = (q->next_desc + i) % q->num;
        unsigned next = (q->next_desc + i + 1) % q->num;
        drv_set_desc(d, qi, idx, b[i].addr, b[i].len,
                     (uint16_t)((b[i].write ? VRING_DESC_F_WRITE : 0) |
                                (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
                     (uint16_t)next);
    }
    q->next_desc += n;
    drv_kick_head(d, qi, head);
    return head;
}

static inline uint16_t drv_used_idx(struct drv *d, unsigned qi)
{
    uint16_t *used = drv_ram(d, d->q[qi].used);
    return __atomic_load_n(&used[1], __ATOMIC_ACQUIRE);
}

/* Used entry i of queue qi: id and len. */
static inline void drv_used_entry(struct drv *d, unsigned qi, uint16_t i, uint32_t *id, uint32_t *len)
{
    uint8_t *e = drv_ram(d, d->q[qi].used + 4 + 8 * (i % d->q[qi].num));
    memcpy(id, e, 4);
    memcpy(len, e + 4, 4);
}

static inline void drv_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

/* Waits (up to 10 s: workers are threads) until used idx reaches `want`. */
static inline bool drv_wait_used(struct drv *d, unsigned qi, uint16_t want)
{
    for (int i = 0; i < 10000; i++) {
        if (drv_used_idx(d, qi) == want)
            return true;
        drv_sleep_ms(1);
    }
    return false;
}

/* Waits until the status register has `bits`. */
static inline bool drv_wait_status(struct drv *d, uint32_t bits)
{
    for (int i = 0; i < 10000; i++) {
        if ((drv_rd(d, R_STATUS) & bits) == bits)
            return true;
        drv_sleep_ms(1);
    }
    return false;
}

#endif
