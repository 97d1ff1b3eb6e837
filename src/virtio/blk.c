/* virtio-blk. See blk.h. */
#include "virtio/blk.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Feature bits (§5.2.3). */
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (§5.2.6). */
#define VIRTIO_BLK_T_IN           0u
#define VIRTIO_BLK_T_OUT          1u
#define VIRTIO_BLK_T_FLUSH        4u
#define VIRTIO_BLK_T_GET_ID       8u
#define VIRTIO_BLK_T_DISCARD      11u
#define VIRTIO_BLK_T_WRITE_ZEROES 13u
#define VIRTIO_BLK_S_OK           0u
#define VIRTIO_BLK_S_IOERR        1u
#define VIRTIO_BLK_S_UNSUPP       2u
#define VIRTIO_BLK_WZ_F_UNMAP     1u

#define SECTOR 512u

/* struct virtio_blk_config (§5.2.4), up to write_zeroes_may_unmap. */
struct blk_config {
    uint64_t capacity;
    uint32_t size_max;
    uint32_t seg_max;
    uint16_t cylinders;
    uint8_t heads, sectors;
    uint32_t blk_size;
    uint8_t physical_block_exp, alignment_offset;
    uint16_t min_io_size;
    uint32_t opt_io_size;
    uint8_t writeback, unused0;
    uint16_t num_queues;
    uint32_t max_discard_sectors;
    uint32_t max_discard_seg;
    uint32_t discard_sector_alignment;
    uint32_t max_write_zeroes_sectors;
    uint32_t max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap;
    uint8_t unused1[3];
} __attribute__((packed));

_Static_assert(sizeof(struct blk_config) == 60, "virtio_blk_config layout");

struct req_header {
    uint32_t type;
    uint32_t ioprio;
    uint64_t sector;
};

struct discard_range {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
};

struct virtio_blk {
    struct block_backend *backend;
    struct blk_config config;   /* fixed after create */
    uint64_t capacity;          /* sectors */
    char serial[VIRTIO_BLK_SERIAL_LEN];
    /* Monitor statistics (not guest-visible state), by the workers. */
    _Atomic uint64_t reads, writes, flushes, discards, errors, read_bytes, written_bytes;
    /* Dirty logging (a storage migration): the bitmap under dirty_lock;
     * dirty_on spares the workers the lock while it is off. */
    _Atomic bool dirty_on;
    pthread_mutex_t dirty_lock;
    uint64_t *dirty;
    unsigned dirty_shift;
    size_t dirty_words;
};

/* Marks the chunks of [off, off + len) written (a worker, after the
 * backend is done with them). */
static void mark_dirty(struct virtio_blk *b, uint64_t off, uint64_t len)
{
    if (!atomic_load_explicit(&b->dirty_on, memory_order_acquire) || len == 0)
        return;
    pthread_mutex_lock(&b->dirty_lock);
    if (b->dirty) {
        uint64_t last = ((off + len - 1) >> b->dirty_shift);
        for (uint64_t c = off >> b->dirty_shift; c <= last && c / 64 < b->dirty_words; c++)
            b->dirty[c / 64] |= 1ull << (c % 64);
    }
    pthread_mutex_unlock(&b->dirty_lock);
}

static void blk_config_read(void *dev, uint32_t offset, void *buf, uint32_t len)
{
    struct virtio_blk *b = dev;
    memcpy(buf, (const uint8_t *)&b->config + offset, len);
}

/* [sector, sector + count) inside the disk? */
static bool sectors_ok(const struct virtio_blk *b, uint64_t sector, uint64_t count)
{
    return sector <= b->capacity && count <= b->capacity - sector;
}

static uint8_t do_rw(struct virtio_blk *b, const struct req_header *h, const struct vq_elem *e,
                     bool write, uint32_t *written)
{
    struct iovec data[VQ_MAX_SIZE];
    const struct iovec *in = e->iov + e->out_num;
    size_t len = write ? e->out_len - sizeof(*h) : e->in_len - 1;
    int cnt = write ? vq_iov_slice(e->iov, e->out_num, sizeof(*h), len, data, VQ_MAX_SIZE)
                    : vq_iov_slice(in, e->in_num, 0, len, data, VQ_MAX_SIZE);

    if (cnt < 0 || len % SECTOR || !sectors_ok(b, h->sector, len / SECTOR))
        return VIRTIO_BLK_S_IOERR;
    if (write && b->backend->readonly)
        return VIRTIO_BLK_S_IOERR;   /* §5.2.6.2 with VIRTIO_BLK_F_RO */
    if (len == 0)
        return VIRTIO_BLK_S_OK;
    uint64_t off = h->sector * SECTOR;
    int r = write ? b->backend->ops->pwritev(b->backend, data, cnt, off)
                  : b->backend->ops->preadv(b->backend, data, cnt, off);
    if (write)
        mark_dirty(b, off, len);
    if (r)
        return VIRTIO_BLK_S_IOERR;
    if (!write)
        *written = (uint32_t)len;
    return VIRTIO_BLK_S_OK;
}

static uint8_t do_ranges(struct virtio_blk *b, const struct vq_elem *e, bool zeroes)
{
    size_t len = e->out_len - sizeof(struct req_header);
    if (len == 0 || len % sizeof(struct discard_range))
        return VIRTIO_BLK_S_UNSUPP;
    size_t n = len / sizeof(struct discard_range);
    if (n > VIRTIO_BLK_MAX_SEGS)
        return VIRTIO_BLK_S_UNSUPP;
    if (b->backend->readonly)
        return VIRTIO_BLK_S_IOERR;
    for (size_t i = 0; i < n; i++) {
        struct discard_range rg;
        vq_iov_read(e->iov, e->out_num, sizeof(struct req_header) + i * sizeof(rg), &rg,
                    sizeof(rg));
        /* §5.2.6.2: only the unmap flag exists, and only for write zeroes. */
        if ((rg.flags & ~VIRTIO_BLK_WZ_F_UNMAP) || (!zeroes && rg.flags))
            return VIRTIO_BLK_S_UNSUPP;
        if (rg.num_sectors > VIRTIO_BLK_MAX_RANGE_SECTORS)
            return VIRTIO_BLK_S_UNSUPP;
        if (!sectors_ok(b, rg.sector, rg.num_sectors))
            return VIRTIO_BLK_S_IOERR;
    }
    for (size_t i = 0; i < n; i++) {
        struct discard_range rg;
        vq_iov_read(e->iov, e->out_num, sizeof(struct req_header) + i * sizeof(rg), &rg,
                    sizeof(rg));
        uint64_t off = rg.sector * SECTOR, l = (uint64_t)rg.num_sectors * SECTOR;
        int r = zeroes ? b->backend->ops->write_zeroes(b->backend, off, l,
                                                       rg.flags & VIRTIO_BLK_WZ_F_UNMAP)
                       : b->backend->ops->discard(b->backend, off, l);
        mark_dirty(b, off, l);
        if (r)
            return VIRTIO_BLK_S_IOERR;
    }
    return VIRTIO_BLK_S_OK;
}

static void handle(struct virtio_blk *b, struct virtio_dev *vdev, unsigned q, struct vq_elem *e)
{
    struct req_header h;
    uint32_t written = 0;
    uint8_t status;

    /* §5.2.6: a header the device reads, a status byte it writes. */
    if (e->out_len < sizeof(h) || e->in_len < 1) {
        virtio_dev_needs_reset(vdev);
        return;
    }
    vq_iov_read(e->iov, e->out_num, 0, &h, sizeof(h));
    switch (h.type) {
    case VIRTIO_BLK_T_IN:
        status = do_rw(b, &h, e, false, &written);
        break;
    case VIRTIO_BLK_T_OUT:
        status = do_rw(b, &h, e, true, &written);
        break;
    case VIRTIO_BLK_T_FLUSH:
        status = b->backend->ops->flush(b->backend) ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
        break;
    case VIRTIO_BLK_T_GET_ID: {
        const struct iovec *in = e->iov + e->out_num;
        size_t n = e->in_len - 1;
        if (n > VIRTIO_BLK_SERIAL_LEN)
            n = VIRTIO_BLK_SERIAL_LEN;
        written = (uint32_t)vq_iov_write(in, e->in_num, 0, b->serial, n);
        status = VIRTIO_BLK_S_OK;
        break;
    }
    case VIRTIO_BLK_T_DISCARD:
        status = do_ranges(b, e, false);
        break;
    case VIRTIO_BLK_T_WRITE_ZEROES:
        status = do_ranges(b, e, true);
        break;
    default:
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    switch (h.type) {
    case VIRTIO_BLK_T_IN:
        atomic_fetch_add_explicit(&b->reads, 1, memory_order_relaxed);
        if (status == VIRTIO_BLK_S_OK)
            atomic_fetch_add_explicit(&b->read_bytes, written, memory_order_relaxed);
        break;
    case VIRTIO_BLK_T_OUT:
        atomic_fetch_add_explicit(&b->writes, 1, memory_order_relaxed);
        if (status == VIRTIO_BLK_S_OK)
            atomic_fetch_add_explicit(&b->written_bytes, e->out_len - sizeof(h),
                                      memory_order_relaxed);
        break;
    case VIRTIO_BLK_T_FLUSH:
        atomic_fetch_add_explicit(&b->flushes, 1, memory_order_relaxed);
        break;
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES:
        atomic_fetch_add_explicit(&b->discards, 1, memory_order_relaxed);
        break;
    }
    if (status == VIRTIO_BLK_S_IOERR)
        atomic_fetch_add_explicit(&b->errors, 1, memory_order_relaxed);
    /* The status byte is the last byte of the last writable buffer, and is
     * written after the data. */
    vq_iov_write(e->iov + e->out_num, e->in_num, e->in_len - 1, &status, 1);
    virtio_dev_push(vdev, q, e, written + 1);
}

static void blk_queue_notify(void *dev, struct virtio_dev *vdev, unsigned q)
{
    struct virtio_blk *b = dev;
    struct vq_elem e;   /* 4 KiB of a worker's stack */
    while (virtio_dev_pop(vdev, q, &e) == 1) {
        /* Another worker takes the next request while this one waits for
         * the backend: several requests in flight. */
        virtio_dev_kick_if_avail(vdev, q);
        handle(b, vdev, q, &e);
    }
}

static void blk_destroy(void *dev)
{
    struct virtio_blk *b = dev;
    block_close(b->backend);
    pthread_mutex_destroy(&b->dirty_lock);
    free(b->dirty);
    free(b);
}

static const struct virtio_device_ops blk_ops = {
    .name = "blk",
    .device_id = VIRTIO_ID_BLOCK,
    .config_read = blk_config_read,
    .queue_notify = blk_queue_notify,
    /* Nothing beyond the transport: quiesce waits for the requests in
     * flight (a handler completes what it pops); the backend is the
     * configuration's, not the snapshot's. */
    .no_device_state = true,
    .destroy = blk_destroy,
};

int virtio_blk_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                      struct block_backend *backend, unsigned num_queues, const char *serial,
                      struct virtio_dev **out)
{
    if (!backend || num_queues == 0 || num_queues > VIRTIO_BLK_MAX_QUEUES)
        return -EINVAL;
    struct virtio_blk *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->backend = backend;
    b->capacity = backend->size / SECTOR;
    pthread_mutex_init(&b->dirty_lock, NULL);
    if (serial)   /* NUL-padded; a 20-byte serial has no terminator (§5.2.6) */
        memcpy(b->serial, serial, strnlen(serial, sizeof(b->serial)));

    const uint16_t queue_max = VQ_MAX_SIZE;
    struct blk_config *c = &b->config;
    c->capacity = b->capacity;
    c->seg_max = queue_max - 2;   /* header and status take two descriptors */
    c->blk_size = SECTOR;
    c->num_queues = (uint16_t)num_queues;
    c->max_discard_sectors = VIRTIO_BLK_MAX_RANGE_SECTORS;
    c->max_discard_seg = VIRTIO_BLK_MAX_SEGS;
    c->discard_sector_alignment = 4096 / SECTOR;   /* host file system blocks */
    c->max_write_zeroes_sectors = VIRTIO_BLK_MAX_RANGE_SECTORS;
    c->max_write_zeroes_seg = VIRTIO_BLK_MAX_SEGS;
    c->write_zeroes_may_unmap = 1;

    uint64_t features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
                        (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_MQ) |
                        (1ull << VIRTIO_BLK_F_DISCARD) | (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
    if (backend->readonly)
        features |= 1ull << VIRTIO_BLK_F_RO;
    struct virtio_device_params p = {
        .ops = &blk_ops, .dev = b, .features = features, .config_size = sizeof(*c),
        .num_queues = num_queues, .queue_max = queue_max, .nworkers = VIRTIO_BLK_WORKERS,
    };
    int ret = virtio_mmio_create(mem, base, irq, &p, out);
    if (ret) {
        pthread_mutex_destroy(&b->dirty_lock);
        free(b);   /* the caller still owns the backend */
    }
    return ret;
}

int virtio_blk_flush(struct virtio_dev *vdev)
{
    struct virtio_blk *b = virtio_dev_priv(vdev);
    return b->backend->readonly ? 0 : b->backend->ops->flush(b->backend);
}

struct block_backend *virtio_blk_backend(struct virtio_dev *vdev)
{
    return ((struct virtio_blk *)virtio_dev_priv(vdev))->backend;
}

int virtio_blk_dirty_start(struct virtio_dev *vdev, unsigned shift)
{
    struct virtio_blk *b = virtio_dev_priv(vdev);
    if (shift < 9 || shift > 30)
        return -EINVAL;
    size_t words = (size_t)(((b->backend->size + (1ull << shift) - 1) >> shift) + 63) / 64;
    uint64_t *bm = calloc(words ? words : 1, 8);
    if (!bm)
        return -ENOMEM;
    pthread_mutex_lock(&b->dirty_lock);
    if (b->dirty) {
        pthread_mutex_unlock(&b->dirty_lock);
        free(bm);
        return -EBUSY;
    }
    b->dirty = bm;
    b->dirty_shift = shift;
    b->dirty_words = words;
    atomic_store_explicit(&b->dirty_on, true, memory_order_release);
    pthread_mutex_unlock(&b->dirty_lock);
    return 0;
}

uint64_t virtio_blk_dirty_take(struct virtio_dev *vdev, uint64_t *into)
{
    struct virtio_blk *b = virtio_dev_priv(vdev);
    uint64_t n = 0;
    pthread_mutex_lock(&b->dirty_lock);
    for (size_t i = 0; b->dirty && i < b->dirty_words; i++) {
        n += (uint64_t)__builtin_popcountll(b->dirty[i]);
        into[i] |= b->dirty[i];
        b->dirty[i] = 0;
    }
    pthread_mutex_unlock(&b->dirty_lock);
    return n;
}

void virtio_blk_dirty_stop(struct virtio_dev *vdev)
{
    struct virtio_blk *b = virtio_dev_priv(vdev);
    pthread_mutex_lock(&b->dirty_lock);
    atomic_store(&b->dirty_on, false);
    free(b->dirty);
    b->dirty = NULL;
    b->dirty_words = 0;
    pthread_mutex_unlock(&b->dirty_lock);
}

void virtio_blk_get_stats(struct virtio_dev *vdev, struct virtio_blk_stats *st)
{
    struct virtio_blk *b = virtio_dev_priv(vdev);
    st->reads = atomic_load(&b->reads);
    st->writes = atomic_load(&b->writes);
    st->flushes = atomic_load(&b->flushes);
    st->discards = atomic_load(&b->discards);
    st->errors = atomic_load(&b->errors);
    st->read_bytes = atomic_load(&b->read_bytes);
    st->written_bytes = atomic_load(&b->written_bytes);
}
