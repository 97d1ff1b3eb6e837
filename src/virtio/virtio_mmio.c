/* virtio-mmio version 2 transport. See virtio_mmio.h for the threading
 * contract.
 *
 * Lock order: vdev->lock -> queue lock -> PLIC lock (the irq line). Worker
 * handlers run with no transport lock held. */
#include "virtio/virtio_mmio.h"

#include <errno.h>
#include <inttypes.h>
#include <libfdt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state/state.h"

/* Register offsets (§4.2.2). */
enum {
    REG_MAGIC = 0x000, REG_VERSION = 0x004, REG_DEVICE_ID = 0x008, REG_VENDOR_ID = 0x00c,
    REG_DEVICE_FEATURES = 0x010, REG_DEVICE_FEATURES_SEL = 0x014,
    REG_DRIVER_FEATURES = 0x020, REG_DRIVER_FEATURES_SEL = 0x024,
    REG_QUEUE_SEL = 0x030, REG_QUEUE_NUM_MAX = 0x034, REG_QUEUE_NUM = 0x038,
    REG_QUEUE_READY = 0x044, REG_QUEUE_NOTIFY = 0x050,
    REG_INTERRUPT_STATUS = 0x060, REG_INTERRUPT_ACK = 0x064, REG_STATUS = 0x070,
    REG_QUEUE_DESC_LOW = 0x080, REG_QUEUE_DESC_HIGH = 0x084,
    REG_QUEUE_DRIVER_LOW = 0x090, REG_QUEUE_DRIVER_HIGH = 0x094,
    REG_QUEUE_DEVICE_LOW = 0x0a0, REG_QUEUE_DEVICE_HIGH = 0x0a4,
    REG_SHM_SEL = 0x0ac, REG_SHM_LEN_LOW = 0x0b0, REG_SHM_LEN_HIGH = 0x0b4,
    REG_SHM_BASE_LOW = 0x0b8, REG_SHM_BASE_HIGH = 0x0bc,
    REG_CONFIG_GENERATION = 0x0fc, REG_CONFIG = 0x100,
};

#define TRANSPORT_FEATURES ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) | \
                            (1ull << VIRTIO_F_EVENT_IDX))

struct vq_slot {
    pthread_mutex_t lock;
    struct virtqueue vq;
    uint32_t gen;                /* bumped when the queue starts, stops or resets */
};

struct virtio_dev {
    pthread_mutex_t lock;
    pthread_cond_t work_cond;    /* workers wait for pending queues */
    pthread_cond_t idle_cond;    /* reset waits for active == 0 */
    struct guest_mem *mem;
    uint64_t base;
    struct irq_line irq;
    struct virtio_device_params p;
    uint64_t offered;            /* device | transport features */

    /* Registers (under lock). */
    uint64_t driver_features;
    uint32_t device_features_sel, driver_features_sel, queue_sel;
    uint8_t status;
    uint32_t int_status;
    uint32_t config_generation;
    bool irq_level;

    /* Workers (under lock). */
    uint64_t pending;            /* queues to serve, one bit each */
    uint64_t early;              /* notified before DRIVER_OK: served at DRIVER_OK */
    unsigned active;             /* handlers running */
    bool paused;                 /* reset in progress: take no work */
    bool frozen;                 /* virtio_mmio_quiesce: take no work */
    bool halted;                 /* DEVICE_NEEDS_RESET: take no work */
    bool quit;
    bool polled;                 /* no workers: virtio_mmio_poll serves */
    unsigned nworkers;
    pthread_t workers[VIRTIO_MAX_WORKERS];

    struct vq_slot *queues;
};

static void update_irq_locked(struct virtio_dev *d)
{
    bool level = d->int_status != 0;
    if (level != d->irq_level) {
        d->irq_level = level;
        irq_line_set(&d->irq, level);
    }
}

static void raise_locked(struct virtio_dev *d, uint32_t bits)
{
    d->int_status |= bits;
    update_irq_locked(d);
}

static void needs_reset_locked(struct virtio_dev *d)
{
    if (d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)
        return;
    d->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    d->halted = true;
    d->pending = 0;
    /* §2.1.2: with DRIVER_OK set, tell the driver through a configuration
     * change notification. */
    if (d->status & VIRTIO_STATUS_DRIVER_OK)
        raise_locked(d, VIRTIO_INT_CONFIG);
}

/* Waits until no handler runs and keeps new ones from starting. */
static void quiesce_locked(struct virtio_dev *d)
{
    d->paused = true;
    while (d->active)
        pthread_cond_wait(&d->idle_cond, &d->lock);
}

static void resume_locked(struct virtio_dev *d)
{
    d->paused = false;
    if (d->pending && !d->frozen)
        pthread_cond_broadcast(&d->work_cond);
}

static void reset_locked(struct virtio_dev *d)
{
    quiesce_locked(d);
    d->pending = 0;
    d->early = 0;
    if (d->p.ops->reset)
        d->p.ops->reset(d->p.dev);
    for (unsigned q = 0; q < d->p.num_queues; q++) {
        pthread_mutex_lock(&d->queues[q].lock);
        vq_reset(&d->queues[q].vq, d->mem);
        d->queues[q].gen++;
        pthread_mutex_unlock(&d->queues[q].lock);
    }
    d->driver_features = 0;
    d->device_features_sel = d->driver_features_sel = d->queue_sel = 0;
    d->status = 0;
    d->int_status = 0;
    d->halted = false;
    update_irq_locked(d);
    if (d->p.ops->status_changed)
        d->p.ops->status_changed(d->p.dev, 0);
    resume_locked(d);
}

static void *worker_main(void *arg)
{
    struct virtio_dev *d = arg;

    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (!d->quit && (d->paused || d->frozen || d->halted || !d->pending))
            pthread_cond_wait(&d->work_cond, &d->lock);
        if (d->quit)
            break;
        unsigned q = (unsigned)__builtin_ctzll(d->pending);
        d->pending &= ~(1ull << q);
        if (d->pending)
            pthread_cond_signal(&d->work_cond);
        d->active++;
        pthread_mutex_unlock(&d->lock);
        d->p.ops->queue_notify(d->p.dev, d, q);
        pthread_mutex_lock(&d->lock);
        if (--d->active == 0)
            pthread_cond_broadcast(&d->idle_cond);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

/* ---- for devices ---- */

int virtio_dev_pop(struct virtio_dev *d, unsigned q, struct vq_elem *elem)
{
    if (q >= d->p.num_queues)
        return 0;
    struct vq_slot *s = &d->queues[q];
    pthread_mutex_lock(&s->lock);
    int r = vq_pop(&s->vq, elem);
    elem->gen = s->gen;
    pthread_mutex_unlock(&s->lock);
    if (r < 0) {
        virtio_dev_needs_reset(d);
        return 0;
    }
    return r;
}

void virtio_dev_push(struct virtio_dev *d, unsigned q, const struct vq_elem *elem, uint32_t len)
{
    if (q >= d->p.num_queues)
        return;
    struct vq_slot *s = &d->queues[q];
    pthread_mutex_lock(&s->lock);
    /* A chain a device kept (the balloon's statistics buffer) while the
     * driver stopped and restarted the queue belongs to the old ring: the
     * driver gets nothing back for it (§2.6.1: a reset queue has no
     * buffers in use). Its writes are marked for dirty logging either way. */
    vq_mark_written(&s->vq, elem);
    bool notify = elem->gen == s->gen && vq_push(&s->vq, elem->head, len);
    pthread_mutex_unlock(&s->lock);
    if (notify) {
        pthread_mutex_lock(&d->lock);
        raise_locked(d, VIRTIO_INT_USED);
        pthread_mutex_unlock(&d->lock);
    }
}

void virtio_dev_push_many(struct virtio_dev *d, unsigned q, const struct vq_used *used,
                          unsigned n)
{
    if (q >= d->p.num_queues)
        return;
    struct vq_slot *s = &d->queues[q];
    pthread_mutex_lock(&s->lock);
    bool notify = vq_push_many(&s->vq, used, n);
    pthread_mutex_unlock(&s->lock);
    if (notify) {
        pthread_mutex_lock(&d->lock);
        raise_locked(d, VIRTIO_INT_USED);
        pthread_mutex_unlock(&d->lock);
    }
}

bool virtio_dev_give_back(struct virtio_dev *d, unsigned q, const struct vq_elem *elem)
{
    if (q >= d->p.num_queues)
        return false;
    struct vq_slot *s = &d->queues[q];
    pthread_mutex_lock(&s->lock);
    /* A chain of an earlier ring (the queue restarted since) is not in
     * this one: nothing to give back. */
    bool ok = elem->gen == s->gen && vq_unpop_head(&s->vq, elem->head);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

void virtio_dev_unpop(struct virtio_dev *d, unsigned q, unsigned n)
{
    if (q >= d->p.num_queues)
        return;
    struct vq_slot *s = &d->queues[q];
    pthread_mutex_lock(&s->lock);
    vq_unpop(&s->vq, n);
    pthread_mutex_unlock(&s->lock);
}

void virtio_dev_kick(struct virtio_dev *d, unsigned q)
{
    if (q >= d->p.num_queues)
        return;
    pthread_mutex_lock(&d->lock);
    if (d->status & VIRTIO_STATUS_DRIVER_OK) {
        d->pending |= 1ull << q;
        pthread_cond_signal(&d->work_cond);
    } else if (d->status & VIRTIO_STATUS_FEATURES_OK) {
        /* Host-side work (typed input, say) before DRIVER_OK waits for it,
         * as a driver's early notify does: §3.1, no buffers used before. */
        d->early |= 1ull << q;
    }
    pthread_mutex_unlock(&d->lock);
}

void virtio_dev_kick_if_avail(struct virtio_dev *d, unsigned q)
{
    if (q >= d->p.num_queues)
        return;
    struct vq_slot *s = &d->queues[q];
    pthread_mutex_lock(&s->lock);
    bool more = vq_has_avail(&s->vq);
    pthread_mutex_unlock(&s->lock);
    if (more)
        virtio_dev_kick(d, q);
}

void virtio_dev_needs_reset(struct virtio_dev *d)
{
    pthread_mutex_lock(&d->lock);
    needs_reset_locked(d);
    pthread_mutex_unlock(&d->lock);
}

void virtio_dev_config_changed(struct virtio_dev *d)
{
    pthread_mutex_lock(&d->lock);
    d->config_generation++;
    if (d->status & VIRTIO_STATUS_DRIVER_OK)
        raise_locked(d, VIRTIO_INT_CONFIG);
    pthread_mutex_unlock(&d->lock);
}

uint64_t virtio_dev_features(struct virtio_dev *d)
{
    pthread_mutex_lock(&d->lock);
    uint64_t f = d->driver_features;
    pthread_mutex_unlock(&d->lock);
    return f;
}

void *virtio_dev_priv(struct virtio_dev *d)
{
    return d->p.dev;
}

uint8_t virtio_dev_status(struct virtio_dev *d)
{
    pthread_mutex_lock(&d->lock);
    uint8_t s = d->status;
    pthread_mutex_unlock(&d->lock);
    return s;
}

/* ---- registers ---- */

static struct vq_slot *sel_queue(struct virtio_dev *d)
{
    return d->queue_sel < d->p.num_queues ? &d->queues[d->queue_sel] : NULL;
}

static uint32_t queue_reg_read(struct virtio_dev *d, uint64_t offset)
{
    struct vq_slot *s = sel_queue(d);
    if (!s)
        return 0;   /* QueueNumMax 0: no such queue (§4.2.3.2) */
    pthread_mutex_lock(&s->lock);
    struct virtqueue *vq = &s->vq;
    uint32_t v = 0;
    switch (offset) {
    case REG_QUEUE_NUM_MAX: v = d->p.queue_max; break;
    case REG_QUEUE_NUM: v = vq->num; break;
    case REG_QUEUE_READY: v = vq->ready; break;
    case REG_QUEUE_DESC_LOW: v = (uint32_t)vq->desc_addr; break;
    case REG_QUEUE_DESC_HIGH: v = (uint32_t)(vq->desc_addr >> 32); break;
    case REG_QUEUE_DRIVER_LOW: v = (uint32_t)vq->avail_addr; break;
    case REG_QUEUE_DRIVER_HIGH: v = (uint32_t)(vq->avail_addr >> 32); break;
    case REG_QUEUE_DEVICE_LOW: v = (uint32_t)vq->used_addr; break;
    case REG_QUEUE_DEVICE_HIGH: v = (uint32_t)(vq->used_addr >> 32); break;
    }
    pthread_mutex_unlock(&s->lock);
    return v;
}

static bool mmio_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    struct virtio_dev *d = opaque;
    uint64_t v = 0;

    if (offset >= REG_CONFIG) {
        uint64_t off = offset - REG_CONFIG;
        pthread_mutex_lock(&d->lock);
        if (off + size <= d->p.config_size)
            d->p.ops->config_read(d->p.dev, (uint32_t)off, &v, size);
        pthread_mutex_unlock(&d->lock);
        *value = v;
        return true;
    }
    if (size != 4 || (offset & 3))
        return false;
    pthread_mutex_lock(&d->lock);
    switch (offset) {
    case REG_MAGIC: v = VIRTIO_MMIO_MAGIC; break;
    case REG_VERSION: v = 2; break;
    case REG_DEVICE_ID: v = d->p.ops->device_id; break;
    case REG_VENDOR_ID: v = VIRTIO_MMIO_VENDOR; break;
    case REG_DEVICE_FEATURES:
        v = d->device_features_sel < 2 ? (uint32_t)(d->offered >> (32 * d->device_features_sel)) : 0;
        break;
    case REG_QUEUE_NUM_MAX: case REG_QUEUE_NUM: case REG_QUEUE_READY:
    case REG_QUEUE_DESC_LOW: case REG_QUEUE_DESC_HIGH:
    case REG_QUEUE_DRIVER_LOW: case REG_QUEUE_DRIVER_HIGH:
    case REG_QUEUE_DEVICE_LOW: case REG_QUEUE_DEVICE_HIGH:
        v = queue_reg_read(d, offset);
        break;
    case REG_INTERRUPT_STATUS: v = d->int_status; break;
    case REG_STATUS: v = d->status; break;
    case REG_SHM_LEN_LOW: case REG_SHM_LEN_HIGH:
    case REG_SHM_BASE_LOW: case REG_SHM_BASE_HIGH:
        v = 0xffffffffu;   /* no shared memory regions */
        break;
    case REG_CONFIG_GENERATION: v = d->config_generation; break;
    default: break;
    }
    pthread_mutex_unlock(&d->lock);
    *value = v;
    return true;
}

static void write_status_locked(struct virtio_dev *d, uint32_t v)
{
    if (v == 0) {
        reset_locked(d);   /* §4.2.3.1 */
        return;
    }
    uint8_t keep = d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    uint8_t want = (uint8_t)v & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    /* §2.1.2: the driver never clears a bit other than by a reset. */
    if (d->status & ~keep & ~want)
        return;
    if ((want & VIRTIO_STATUS_FEATURES_OK) && !(d->status & VIRTIO_STATUS_FEATURES_OK)) {
        /* §3.1.1: refuse features we did not offer; §6.1: VERSION_1 is a
         * must for this (non-legacy) transport. */
        if ((d->driver_features & ~d->offered) ||
            !(d->driver_features & (1ull << VIRTIO_F_VERSION_1)))
            want &= ~VIRTIO_STATUS_FEATURES_OK;
    }
    if ((want & VIRTIO_STATUS_FEATURES_OK) && !(d->status & VIRTIO_STATUS_FEATURES_OK) &&
        d->p.ops->features_ok)
        d->p.ops->features_ok(d->p.dev, d->driver_features);
    if ((want & VIRTIO_STATUS_DRIVER_OK) && !(want & VIRTIO_STATUS_FEATURES_OK))
        want &= ~VIRTIO_STATUS_DRIVER_OK;
    uint8_t old = d->status;
    d->status = want | keep;
    if ((d->status & VIRTIO_STATUS_DRIVER_OK) && d->early && !d->halted) {
        d->pending |= d->early;
        pthread_cond_signal(&d->work_cond);
    }
    if (d->status & VIRTIO_STATUS_DRIVER_OK)
        d->early = 0;
    if (d->status != old && d->p.ops->status_changed)
        d->p.ops->status_changed(d->p.dev, d->status);
}

static void queue_ready_locked(struct virtio_dev *d, struct vq_slot *s, uint32_t v)
{
    pthread_mutex_lock(&s->lock);
    bool ready = s->vq.ready;
    pthread_mutex_unlock(&s->lock);
    if (v & 1) {
        if (ready || !(d->status & VIRTIO_STATUS_FEATURES_OK))
            return;
        pthread_mutex_lock(&s->lock);
        int r = vq_start(&s->vq, d->driver_features & (1ull << VIRTIO_F_EVENT_IDX),
                         d->driver_features & (1ull << VIRTIO_F_INDIRECT_DESC));
        s->gen++;
        pthread_mutex_unlock(&s->lock);
        if (r)
            needs_reset_locked(d);
    } else if (ready) {
        /* Stopping one queue: no handler may be using it. */
        quiesce_locked(d);
        pthread_mutex_lock(&s->lock);
        s->vq.ready = false;
        s->gen++;
        pthread_mutex_unlock(&s->lock);
        resume_locked(d);
    }
}

static void queue_reg_write_locked(struct virtio_dev *d, uint64_t offset, uint32_t v)
{
    struct vq_slot *s = sel_queue(d);
    if (!s)
        return;
    if (offset == REG_QUEUE_READY) {
        queue_ready_locked(d, s, v);
        return;
    }
    pthread_mutex_lock(&s->lock);
    struct virtqueue *vq = &s->vq;
    if (!vq->ready) {   /* §4.2.2.2: set only while the queue is not ready */
        switch (offset) {
        case REG_QUEUE_NUM: vq->num = (uint16_t)(v <= d->p.queue_max ? v : 0); break;
        case REG_QUEUE_DESC_LOW: vq->desc_addr = (vq->desc_addr & ~0xffffffffull) | v; break;
        case REG_QUEUE_DESC_HIGH: vq->desc_addr = (vq->desc_addr & 0xffffffffull) | (uint64_t)v << 32; break;
        case REG_QUEUE_DRIVER_LOW: vq->avail_addr = (vq->avail_addr & ~0xffffffffull) | v; break;
        case REG_QUEUE_DRIVER_HIGH: vq->avail_addr = (vq->avail_addr & 0xffffffffull) | (uint64_t)v << 32; break;
        case REG_QUEUE_DEVICE_LOW: vq->used_addr = (vq->used_addr & ~0xffffffffull) | v; break;
        case REG_QUEUE_DEVICE_HIGH: vq->used_addr = (vq->used_addr & 0xffffffffull) | (uint64_t)v << 32; break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static bool mmio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    struct virtio_dev *d = opaque;
    uint32_t v = (uint32_t)value;

    if (offset >= REG_CONFIG) {
        uint64_t off = offset - REG_CONFIG;
        pthread_mutex_lock(&d->lock);
        if (off + size <= d->p.config_size && d->p.ops->config_write)
            d->p.ops->config_write(d->p.dev, (uint32_t)off, &value, size);
        pthread_mutex_unlock(&d->lock);
        return true;
    }
    if (size != 4 || (offset & 3))
        return false;
    pthread_mutex_lock(&d->lock);
    switch (offset) {
    case REG_DEVICE_FEATURES_SEL: d->device_features_sel = v; break;
    case REG_DRIVER_FEATURES_SEL: d->driver_features_sel = v; break;
    case REG_DRIVER_FEATURES:
        /* Fixed once FEATURES_OK is set (§3.1.1). */
        if (!(d->status & VIRTIO_STATUS_FEATURES_OK) && d->driver_features_sel < 2) {
            unsigned sh = 32 * d->driver_features_sel;
            d->driver_features = (d->driver_features & ~(0xffffffffull << sh)) | ((uint64_t)v << sh);
        }
        break;
    case REG_QUEUE_SEL: d->queue_sel = v; break;
    case REG_QUEUE_NUM: case REG_QUEUE_READY:
    case REG_QUEUE_DESC_LOW: case REG_QUEUE_DESC_HIGH:
    case REG_QUEUE_DRIVER_LOW: case REG_QUEUE_DRIVER_HIGH:
    case REG_QUEUE_DEVICE_LOW: case REG_QUEUE_DEVICE_HIGH:
        queue_reg_write_locked(d, offset, v);
        break;
    case REG_QUEUE_NOTIFY:
        /* Never host I/O on the hart: hand the queue to a worker. */
        if (v < d->p.num_queues && (d->status & VIRTIO_STATUS_DRIVER_OK) && !d->halted) {
            d->pending |= 1ull << v;
            pthread_cond_signal(&d->work_cond);
        } else if (v < d->p.num_queues && (d->status & VIRTIO_STATUS_FEATURES_OK)) {
            /* Linux's balloon primes its statistics queue and notifies
             * before it sets DRIVER_OK: keep that for then (§3.1: the
             * device uses no buffers before DRIVER_OK). */
            d->early |= 1ull << v;
        }
        break;
    case REG_INTERRUPT_ACK:
        d->int_status &= ~v;
        update_irq_locked(d);
        break;
    case REG_STATUS:
        write_status_locked(d, v);
        break;
    default: break;
    }
    pthread_mutex_unlock(&d->lock);
    return true;
}

static const struct mmio_ops virtio_mmio_ops = {
    .read = mmio_read,
    .write = mmio_write,
};

/* ---- life cycle ---- */

static void stop_workers(struct virtio_dev *d)
{
    pthread_mutex_lock(&d->lock);
    d->quit = true;
    pthread_cond_broadcast(&d->work_cond);
    pthread_mutex_unlock(&d->lock);
    for (unsigned i = 0; i < d->nworkers; i++)
        pthread_join(d->workers[i], NULL);
    d->nworkers = 0;
}

static void free_dev(struct virtio_dev *d)
{
    for (unsigned q = 0; q < d->p.num_queues; q++)
        pthread_mutex_destroy(&d->queues[q].lock);
    free(d->queues);
    pthread_cond_destroy(&d->idle_cond);
    pthread_cond_destroy(&d->work_cond);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

int virtio_mmio_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                       const struct virtio_device_params *params, struct virtio_dev **out)
{
    int ret;

    if (!out)
        return -EINVAL;
    *out = NULL;
    const struct virtio_device_ops *ops = params->ops;
    if (!ops || !ops->queue_notify || !ops->config_read || !ops->destroy ||
        params->num_queues == 0 || params->num_queues > VIRTIO_MAX_QUEUES ||
        params->queue_max == 0 || params->queue_max > VQ_MAX_SIZE ||
        (params->queue_max & (params->queue_max - 1)) || params->nworkers == 0 ||
        params->nworkers > VIRTIO_MAX_WORKERS || params->config_size > VIRTIO_MMIO_SIZE - REG_CONFIG)
        return -EINVAL;

    struct virtio_dev *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->queues = calloc(params->num_queues, sizeof(*d->queues));
    if (!d->queues) {
        free(d);
        return -ENOMEM;
    }
    d->mem = mem;
    d->base = base;
    d->irq = irq;
    d->p = *params;
    d->offered = params->features | TRANSPORT_FEATURES;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->work_cond, NULL);
    pthread_cond_init(&d->idle_cond, NULL);
    for (unsigned q = 0; q < params->num_queues; q++) {
        pthread_mutex_init(&d->queues[q].lock, NULL);
        vq_reset(&d->queues[q].vq, mem);
    }

    /* Workers take no signals: the I/O thread's signalfd must get them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    ret = 0;
    for (unsigned i = 0; i < params->nworkers; i++) {
        int e = pthread_create(&d->workers[i], NULL, worker_main, d);
        if (e) {
            ret = -e;
            break;
        }
        char name[16];   /* the kernel's limit for thread names */
        snprintf(name, sizeof(name), "virtio-%.6s%u", ops->name ? ops->name : "", i % 10);
        pthread_setname_np(d->workers[i], name);
        d->nworkers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret)
        goto err;

    if (mem) {
        ret = guest_mem_add_mmio(mem, base, VIRTIO_MMIO_SIZE, &virtio_mmio_ops, d,
                                 ops->name ? ops->name : "virtio");
        if (ret)
            goto err;
    }
    *out = d;
    return 0;

err:
    stop_workers(d);
    free_dev(d);
    return ret;
}

void virtio_mmio_destroy(struct virtio_dev *d)
{
    if (!d)
        return;
    stop_workers(d);
    d->p.ops->destroy(d->p.dev);
    free_dev(d);
}

void virtio_mmio_set_polled(struct virtio_dev *d)
{
    stop_workers(d);
    pthread_mutex_lock(&d->lock);
    d->quit = false;   /* stop_workers set it for the workers it joined */
    d->polled = true;
    pthread_mutex_unlock(&d->lock);
}

unsigned virtio_mmio_poll(struct virtio_dev *d, unsigned max_calls, unsigned wait_ms)
{
    unsigned calls = 0;

    pthread_mutex_lock(&d->lock);
    if (!d->polled) {
        pthread_mutex_unlock(&d->lock);
        return 0;
    }
    if (wait_ms && !d->pending) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);   /* work_cond's clock */
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000;
        ts.tv_sec += wait_ms / 1000 + ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        while (!d->pending && pthread_cond_timedwait(&d->work_cond, &d->lock, &ts) == 0)
            ;
    }
    /* The loop of worker_main, on this thread. */
    while (calls < max_calls && !d->paused && !d->frozen && !d->halted && d->pending) {
        unsigned q = (unsigned)__builtin_ctzll(d->pending);
        d->pending &= ~(1ull << q);
        d->active++;
        pthread_mutex_unlock(&d->lock);
        d->p.ops->queue_notify(d->p.dev, d, q);
        calls++;
        pthread_mutex_lock(&d->lock);
        if (--d->active == 0)
            pthread_cond_broadcast(&d->idle_cond);
    }
    pthread_mutex_unlock(&d->lock);
    return calls;
}

void virtio_mmio_reset(struct virtio_dev *d)
{
    pthread_mutex_lock(&d->lock);
    reset_locked(d);
    pthread_mutex_unlock(&d->lock);
}

/* ---- snapshots ---- */

void virtio_mmio_quiesce(struct virtio_dev *d)
{
    pthread_mutex_lock(&d->lock);
    d->frozen = true;
    while (d->active)
        pthread_cond_wait(&d->idle_cond, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

void virtio_mmio_resume(struct virtio_dev *d)
{
    pthread_mutex_lock(&d->lock);
    d->frozen = false;
    if (d->pending)
        pthread_cond_broadcast(&d->work_cond);
    pthread_mutex_unlock(&d->lock);
}

/* One queue as saved (no host pointers). */
struct vq_saved {
    uint16_t num;
    bool ready, broken, event_idx, indirect;
    uint64_t desc, avail, used;
    uint16_t last_avail, used_idx;
};

struct mmio_saved {
    uint32_t device_id, num_queues;
    uint8_t status;
    uint64_t driver_features;
    uint32_t device_features_sel, driver_features_sel, queue_sel;
    uint32_t int_status, config_generation;
    uint64_t early;
    struct vq_saved q[VIRTIO_MAX_QUEUES];
};

static bool quiesced_locked(const struct virtio_dev *d)
{
    return d->frozen && !d->active;
}

int virtio_mmio_save(struct virtio_dev *d, struct state_writer *w, uint32_t instance)
{
    const struct virtio_device_ops *ops = d->p.ops;
    int ret;

    pthread_mutex_lock(&d->lock);
    bool ok = quiesced_locked(d);
    pthread_mutex_unlock(&d->lock);
    if (!ok)
        return -EBUSY;
    if (!ops->no_device_state && !ops->save)
        return -ENOTSUP;
    /* First the device: it may give back chains it holds, which the ring
     * indices saved below must include. */
    if (ops->save && (ret = ops->save(d->p.dev, d, w, instance)))
        return ret;

    pthread_mutex_lock(&d->lock);
    for (unsigned q = 0; q < d->p.num_queues; q++) {
        const struct virtqueue *vq = &d->queues[q].vq;
        if (vq->ready && vq->last_avail != vq->used_idx) {
            pthread_mutex_unlock(&d->lock);
            return -EBUSY;   /* a chain the device holds and did not give back */
        }
    }
    state_begin(w, VIRTIO_MMIO_STATE_TAG, instance, VIRTIO_MMIO_STATE_MAJOR,
                VIRTIO_MMIO_STATE_MINOR);
    state_put_u32(w, ops->device_id);
    state_put_u32(w, d->p.num_queues);
    state_put_u8(w, d->status);
    state_put_u64(w, d->driver_features);
    state_put_u32(w, d->device_features_sel);
    state_put_u32(w, d->driver_features_sel);
    state_put_u32(w, d->queue_sel);
    state_put_u32(w, d->int_status);
    state_put_u32(w, d->config_generation);
    state_put_u64(w, d->early);
    for (unsigned q = 0; q < d->p.num_queues; q++) {
        /* Quiesced: no handler touches the queue, its lock is not needed
         * for reading, but the order stays the documented one. */
        pthread_mutex_lock(&d->queues[q].lock);
        const struct virtqueue *vq = &d->queues[q].vq;
        state_put_u16(w, vq->num);
        state_put_u8(w, vq->ready);
        state_put_u8(w, vq->broken);
        state_put_u8(w, vq->event_idx);
        state_put_u8(w, vq->indirect);
        state_put_u64(w, vq->desc_addr);
        state_put_u64(w, vq->avail_addr);
        state_put_u64(w, vq->used_addr);
        state_put_u16(w, vq->last_avail);
        state_put_u16(w, vq->used_idx);
        pthread_mutex_unlock(&d->queues[q].lock);
    }
    pthread_mutex_unlock(&d->lock);
    return state_end(w);
}

/* Checks what a guest could not have produced through the registers. */
static int check_saved(const struct virtio_dev *d, const struct mmio_saved *m,
                       const struct state_section *s, char *err, size_t errlen)
{
    const uint8_t st = m->status;
    const bool fok = st & VIRTIO_STATUS_FEATURES_OK;

    if ((st & VIRTIO_STATUS_DRIVER_OK) && !fok)
        return state_section_error(s, err, errlen, -EINVAL, "status 0x%02x: DRIVER_OK without FEATURES_OK", st);
    /* §3.1.1: FEATURES_OK only sticks for offered features with VERSION_1.
     * Before it, the register holds whatever the driver wrote. */
    if (fok && (m->driver_features & ~d->offered))
        return state_section_error(s, err, errlen, -EINVAL,
                                   "driver features 0x%016" PRIx64 " not offered by this device (0x%016" PRIx64 ")",
                                   m->driver_features, d->offered);
    if (fok && !(m->driver_features & (1ull << VIRTIO_F_VERSION_1)))
        return state_section_error(s, err, errlen, -EINVAL, "FEATURES_OK without VERSION_1");
    if ((st & VIRTIO_STATUS_DEVICE_NEEDS_RESET) && !fok)
        return state_section_error(s, err, errlen, -EINVAL, "status 0x%02x: DEVICE_NEEDS_RESET without FEATURES_OK", st);
    if (m->int_status & ~(VIRTIO_INT_USED | VIRTIO_INT_CONFIG))
        return state_section_error(s, err, errlen, -EINVAL, "interrupt status 0x%x", m->int_status);
    uint64_t qmask = m->num_queues == 64 ? ~0ull : (1ull << m->num_queues) - 1;
    if ((m->early & ~qmask) || (m->early && !fok))
        return state_section_error(s, err, errlen, -EINVAL, "early notifications 0x%" PRIx64, m->early);

    for (unsigned q = 0; q < d->p.num_queues; q++) {
        const struct vq_saved *v = &m->q[q];
        if (v->num > d->p.queue_max)
            return state_section_error(s, err, errlen, -EINVAL, "queue %u: size %u above %u", q,
                                       v->num, d->p.queue_max);
        if (v->broken && !(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET))
            return state_section_error(s, err, errlen, -EINVAL, "queue %u: broken without DEVICE_NEEDS_RESET", q);
        if (!v->ready)
            continue;
        if (!fok)
            return state_section_error(s, err, errlen, -EINVAL, "queue %u: ready without FEATURES_OK", q);
        if (v->num == 0 || (v->num & (v->num - 1)))
            return state_section_error(s, err, errlen, -EINVAL, "queue %u: size %u is not a power of two", q, v->num);
        if (v->event_idx != !!(m->driver_features & (1ull << VIRTIO_F_EVENT_IDX)) ||
            v->indirect != !!(m->driver_features & (1ull << VIRTIO_F_INDIRECT_DESC)))
            return state_section_error(s, err, errlen, -EINVAL,
                                       "queue %u: event_idx %d, indirect %d disagree with the features", q,
                                       v->event_idx, v->indirect);
        /* The very checks the driver's QueueReady went through. */
        struct virtqueue tmp;
        vq_reset(&tmp, d->mem);
        tmp.num = v->num;
        tmp.desc_addr = v->desc;
        tmp.avail_addr = v->avail;
        tmp.used_addr = v->used;
        if (vq_start(&tmp, v->event_idx, v->indirect))
            return state_section_error(s, err, errlen, -EINVAL,
                                       "queue %u: rings (desc 0x%" PRIx64 ", avail 0x%" PRIx64 ", used 0x%" PRIx64
                                       ", size %u) misaligned or outside RAM", q, v->desc, v->avail, v->used, v->num);
        if (v->last_avail != v->used_idx)
            return state_section_error(s, err, errlen, -EINVAL,
                                       "queue %u: %u chains outstanding (last_avail %u, used_idx %u)", q,
                                       (uint16_t)(v->last_avail - v->used_idx), v->last_avail, v->used_idx);
    }
    return 0;
}

int virtio_mmio_load(struct virtio_dev *d, const struct state_reader *r, uint32_t instance,
                     char *err, size_t errlen)
{
    const struct virtio_device_ops *ops = d->p.ops;
    struct state_section s;
    int ret;

    pthread_mutex_lock(&d->lock);
    bool ok = quiesced_locked(d);
    pthread_mutex_unlock(&d->lock);
    if (!ok) {
        snprintf(err, errlen, "state: virtio-mmio[%u]: device not quiesced", instance);
        return -EBUSY;
    }
    if (!ops->no_device_state && !ops->load) {
        snprintf(err, errlen, "state: virtio-mmio[%u]: virtio-%s cannot be restored yet", instance,
                 ops->name ? ops->name : "?");
        return -ENOTSUP;
    }
    ret = state_reader_section(r, VIRTIO_MMIO_STATE_TAG, instance, VIRTIO_MMIO_STATE_MAJOR, &s,
                               err, errlen);
    if (ret)
        return ret;

    struct mmio_saved *m = calloc(1, sizeof(*m));
    if (!m)
        return state_section_error(&s, err, errlen, -ENOMEM, "out of memory");
    state_get_u32(&s, &m->device_id);
    state_get_u32(&s, &m->num_queues);
    /* Fewer queues: saved by a build before the device gained queues, which
     * stay unconfigured here, as a driver that has not set them up yet
     * leaves them (virtio-net's control queue). */
    if (m->device_id != ops->device_id || m->num_queues > d->p.num_queues) {
        ret = state_section_error(&s, err, errlen, -EINVAL,
                                  "saved for device id %u with %u queues, this one is %u with %u",
                                  m->device_id, m->num_queues, ops->device_id, d->p.num_queues);
        goto out;
    }
    state_get_u8(&s, &m->status);
    state_get_u64(&s, &m->driver_features);
    state_get_u32(&s, &m->device_features_sel);
    state_get_u32(&s, &m->driver_features_sel);
    state_get_u32(&s, &m->queue_sel);
    state_get_u32(&s, &m->int_status);
    state_get_u32(&s, &m->config_generation);
    state_get_u64(&s, &m->early);
    for (unsigned q = 0; q < m->num_queues; q++) {
        struct vq_saved *v = &m->q[q];
        state_get_u16(&s, &v->num);
        state_get_bool(&s, &v->ready);
        state_get_bool(&s, &v->broken);
        state_get_bool(&s, &v->event_idx);
        state_get_bool(&s, &v->indirect);
        state_get_u64(&s, &v->desc);
        state_get_u64(&s, &v->avail);
        state_get_u64(&s, &v->used);
        state_get_u16(&s, &v->last_avail);
        state_get_u16(&s, &v->used_idx);
    }
    if ((ret = state_section_done(&s, err, errlen)) || (ret = check_saved(d, m, &s, err, errlen)))
        goto out;
    /* The device's part last among the checks: it applies itself when it
     * accepts, and nothing below can fail. */
    if (ops->load && (ret = ops->load(d->p.dev, d, r, instance, err, errlen)))
        goto out;

    pthread_mutex_lock(&d->lock);
    uint8_t old_status = d->status;
    d->driver_features = m->driver_features;
    d->device_features_sel = m->device_features_sel;
    d->driver_features_sel = m->driver_features_sel;
    d->queue_sel = m->queue_sel;
    d->status = m->status;
    d->halted = m->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET;
    d->int_status = m->int_status;
    d->config_generation = m->config_generation;
    d->early = m->early;
    d->pending = 0;
    for (unsigned q = 0; q < d->p.num_queues; q++) {
        const struct vq_saved *v = &m->q[q];
        struct vq_slot *slot = &d->queues[q];
        pthread_mutex_lock(&slot->lock);
        struct virtqueue *vq = &slot->vq;
        vq_reset(vq, d->mem);
        vq->num = v->num;
        vq->desc_addr = v->desc;
        vq->avail_addr = v->avail;
        vq->used_addr = v->used;
        /* Host pointers come back through vq_start, checked above. */
        if (v->ready)
            vq_start(vq, v->event_idx, v->indirect);   /* cannot fail: checked */
        vq->event_idx = v->event_idx;
        vq->indirect = v->indirect;
        vq->broken = v->broken;
        vq->last_avail = v->last_avail;
        vq->used_idx = v->used_idx;
        /* Chains popped before the load belong to the old rings. */
        slot->gen++;
        /* Buffers the driver made available and the device had not taken
         * yet: served at resume (a notification may have been pending). */
        if (vq->ready && (m->status & VIRTIO_STATUS_DRIVER_OK) && !d->halted && vq_has_avail(vq))
            d->pending |= 1ull << q;
        pthread_mutex_unlock(&slot->lock);
    }
    update_irq_locked(d);
    if ((d->status & VIRTIO_STATUS_FEATURES_OK) && ops->features_ok)
        ops->features_ok(d->p.dev, d->driver_features);
    if (d->status != old_status && ops->status_changed)
        ops->status_changed(d->p.dev, d->status);
    pthread_mutex_unlock(&d->lock);
    ret = 0;
out:
    free(m);
    return ret;
}

int virtio_mmio_saved_features(const struct state_reader *r, uint32_t instance, uint8_t *status,
                               uint64_t *features)
{
    struct state_section s;
    uint32_t id, nq;
    int ret = state_reader_section(r, VIRTIO_MMIO_STATE_TAG, instance, VIRTIO_MMIO_STATE_MAJOR, &s,
                                   NULL, 0);
    if (ret)
        return ret;
    state_get_u32(&s, &id);
    state_get_u32(&s, &nq);
    state_get_u8(&s, status);
    state_get_u64(&s, features);
    return s.overrun ? -EBADMSG : 0;
}

int virtio_mmio_fdt(struct virtio_dev *d, struct fdt_ctx *ctx)
{
    char name[48];
    void *fdt = ctx->fdt;
    int err;

    snprintf(name, sizeof(name), "virtio_mmio@%llx", (unsigned long long)d->base);
    if ((err = fdt_begin_node(fdt, name)) ||
        (err = fdt_property_string(fdt, "compatible", "virtio,mmio")) ||
        (err = device_fdt_reg(fdt, d->base, VIRTIO_MMIO_SIZE)) ||
        (err = fdt_property_u32(fdt, "interrupt-parent", ctx->plic_phandle)) ||
        (err = fdt_property_u32(fdt, "interrupts", d->irq.irq)) ||
        (err = fdt_end_node(fdt)))
        return device_fdt_errno(err);
    return 0;
}
