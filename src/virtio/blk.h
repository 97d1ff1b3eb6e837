/* virtio-blk (VIRTIO 1.2 §5.2, device id 2) over a block backend
 * (block/block.h: raw, qcow2).
 *
 * Requests: IN, OUT, FLUSH (the backend's flush: durable), GET_ID (the
 * serial), DISCARD and WRITE_ZEROES (up to VIRTIO_BLK_MAX_SEGS ranges of up
 * to VIRTIO_BLK_MAX_RANGE_SECTORS each). Features: SEG_MAX, BLK_SIZE (512),
 * FLUSH, MQ, DISCARD, WRITE_ZEROES, and RO for a read-only backend (writes,
 * discards and zeroing then fail with IOERR). Anything else: UNSUPP. Every
 * request is checked against the capacity; the status byte is written last.
 *
 * Threads: requests run on VIRTIO_BLK_WORKERS worker threads per disk, so
 * that many requests are in flight at once (the backend ops are thread-safe).
 * create/destroy on the machine's control thread. */
#ifndef NIMBUS_VIRTIO_BLK_H
#define NIMBUS_VIRTIO_BLK_H

#include "block/block.h"
#include "virtio/virtio_mmio.h"

#define VIRTIO_ID_BLOCK               2u
#define VIRTIO_BLK_WORKERS            4u
#define VIRTIO_BLK_MAX_QUEUES         16u
#define VIRTIO_BLK_MAX_SEGS           32u
#define VIRTIO_BLK_MAX_RANGE_SECTORS  (1u << 21)   /* 1 GiB per discard range */
#define VIRTIO_BLK_SERIAL_LEN         20u

/* Creates the disk at `base` with `num_queues` request queues (1..
 * VIRTIO_BLK_MAX_QUEUES; the board gives one per hart) and the GET_ID
 * `serial` (at most 20 bytes are used). On success the device owns
 * `backend` and closes it when destroyed. Returns 0 or -errno. */
int virtio_blk_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                      struct block_backend *backend, unsigned num_queues, const char *serial,
                      struct virtio_dev **out);

/* Makes every write the disk completed durable (the backend's flush), as a
 * snapshot needs before it records the disk. Returns 0 or -errno. Any
 * thread; the device quiesced, so no request is in flight. */
int virtio_blk_flush(struct virtio_dev *vdev);

/* The disk's backend (what a snapshot records as the disk's identity; what
 * a storage migration reads and, on the destination before the VM runs,
 * writes). Any thread; the device owns it. */
struct block_backend *virtio_blk_backend(struct virtio_dev *vdev);

/* Dirty logging for a storage migration (vm/migrate_storage.c): from
 * virtio_blk_dirty_start() on, every write, discard and write-zeroes
 * request marks the chunks of 2^shift bytes it touched, once the backend
 * has done it (failed or not), so a copy that reads a chunk after taking
 * its bit sees the write or gets the bit again. Bitmap words: chunk i is
 * bit i % 64 of word i / 64. Any thread (a mutex: the workers take it only
 * while logging is on). Returns 0, -ENOMEM, or -EBUSY (on already). */
int virtio_blk_dirty_start(struct virtio_dev *vdev, unsigned shift);
/* ORs the chunks marked since the last take into `into` (as many words as
 * the disk has chunks / 64, rounded up) and clears them; returns how many
 * there were (0 when logging is off). */
uint64_t virtio_blk_dirty_take(struct virtio_dev *vdev, uint64_t *into);
/* Stops logging and frees the bitmap. */
void virtio_blk_dirty_stop(struct virtio_dev *vdev);

/* Requests served since the device was created (monitor statistics for
 * GET /vm/counters; discards count write-zeroes too; errors are IOERR
 * replies). Any thread. */
struct virtio_blk_stats {
    uint64_t reads, writes, flushes, discards, errors, read_bytes, written_bytes;
};
void virtio_blk_get_stats(struct virtio_dev *vdev, struct virtio_blk_stats *st);

#endif
