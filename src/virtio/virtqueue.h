/* Split virtqueues (VIRTIO 1.2 §2.7): the device side of the descriptor
 * table, the available ring and the used ring, all in guest RAM.
 *
 * Every descriptor is validated before the device sees it: buffers and
 * indirect tables must lie inside guest RAM, a direct chain has at most
 * `num` descriptors and an indirect table at most VQ_MAX_SIZE (which also
 * ends loops), indirect tables follow §2.7.5.3 (no nesting, no NEXT on the
 * indirect descriptor, length a multiple of 16),
 * and device-readable buffers come before device-writable ones (§2.7.4.2).
 * A broken rule makes vq_pop() return -EPROTO and marks the queue broken;
 * the transport then sets DEVICE_NEEDS_RESET. Nothing here ever reads or
 * writes outside guest RAM.
 *
 * Memory ordering (guest RAM is shared with the hart threads): the available
 * index is read with acquire semantics before the ring entries and
 * descriptors it covers; used entries are written before the used index is
 * published with release semantics; a full fence separates publishing an
 * index from reading the other side's event index (§2.7.10, §2.7.7.2).
 *
 * Threads: a virtqueue has no lock of its own; the transport serialises
 * vq_pop()/vq_push() on one queue with the queue's mutex (virtio_mmio.h).
 * Descriptor words are copied once and used from the copy, so a guest that
 * rewrites them concurrently cannot make the checks and the use disagree.
 *
 * Dirty logging: every write to guest RAM here, and the device's writes
 * into a chain's writable buffers, are marked (vq_mark_written). */
#ifndef NIMBUS_VIRTIO_VIRTQUEUE_H
#define NIMBUS_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mem/guest_mem.h"

/* The largest queue a Nimbus device offers (QueueNumMax); also the most
 * buffers one element can carry. */
#define VQ_MAX_SIZE 256u

#define VRING_DESC_F_NEXT     1u
#define VRING_DESC_F_WRITE    2u
#define VRING_DESC_F_INDIRECT 4u
#define VRING_AVAIL_F_NO_INTERRUPT 1u
#define VRING_USED_F_NO_NOTIFY     1u

struct virtqueue {
    struct guest_mem *mem;
    uint16_t num;              /* queue size, a power of two */
    bool ready;
    bool broken;               /* a rule was broken: no more pops or pushes */
    bool event_idx;            /* VIRTIO_F_EVENT_IDX negotiated */
    bool indirect;             /* VIRTIO_F_INDIRECT_DESC negotiated */
    uint64_t desc_addr, avail_addr, used_addr;  /* guest physical */
    uint8_t *desc, *avail, *used;               /* host pointers, set by vq_start */
    uint16_t last_avail;       /* next available entry the device will read */
    uint16_t used_idx;         /* the device's copy of used->idx */
};

/* One popped descriptor chain: iov[0, out_num) are the device-readable
 * buffers, iov[out_num, out_num + in_num) the device-writable ones, each a
 * host pointer into guest RAM. */
struct vq_elem {
    uint16_t head;
    uint32_t gen;              /* virtio_dev_pop: the transport's generation of
                                  the queue, so a chain kept across a queue stop
                                  or reset is never pushed into the new ring */
    unsigned out_num, in_num;
    size_t out_len, in_len;    /* byte totals */
    struct iovec iov[VQ_MAX_SIZE];
};

/* Back to the state before the driver configured the queue. */
void vq_reset(struct virtqueue *vq, struct guest_mem *mem);

/* Checks the ring addresses set by the driver (alignment §2.7: descriptor
 * table 16, available ring 2, used ring 4; every byte in RAM; num a power of
 * two up to VQ_MAX_SIZE) and makes the queue ready. Returns 0 or -EPROTO. */
int vq_start(struct virtqueue *vq, bool event_idx, bool indirect);

/* Takes the next available chain into `elem`. Returns 1 when one was taken,
 * 0 when the ring is empty (with EVENT_IDX, the driver is asked to notify
 * for the next buffer first), -EPROTO when the driver broke a rule. */
int vq_pop(struct virtqueue *vq, struct vq_elem *elem);

/* True when the driver has made buffers available that vq_pop has not
 * taken yet (a peek: no notification is requested). */
bool vq_has_avail(const struct virtqueue *vq);

/* Returns the chain `head` to the driver with `len` bytes written. Returns
 * true when the driver wants an interrupt for it (EVENT_IDX's used_event,
 * or the NO_INTERRUPT flag without it). */
bool vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);

/* Several used entries published with one index update, so the driver sees
 * all of them or none (virtio-net's mergeable receive buffers: a frame
 * spread over several chains, §5.1.6.4). n is at most the queue size. */
struct vq_used {
    uint16_t head;
    uint32_t len;
};
bool vq_push_many(struct virtqueue *vq, const struct vq_used *used, unsigned n);

/* Dirty logging (mem/dirty_log.h): marks the device-writable buffers of
 * `elem` dirty, if logging is on. vq_pop does it when it maps a chain,
 * vq_push/vq_push_many again at completion, with the used ring; a device
 * that drops a written chain without pushing it calls it itself. */
void vq_mark_written(struct virtqueue *vq, const struct vq_elem *elem);

/* Gives back the last `n` chains popped and not pushed: the next vq_pop()
 * takes them again (a frame that did not fit in the buffers there were). */
void vq_unpop(struct virtqueue *vq, unsigned n);

/* Gives back the last chain popped if it is `head` and has not been
 * pushed (the queue is ready, not broken, a chain is outstanding and the
 * available entry just before last_avail names `head`). Returns whether it
 * did. */
bool vq_unpop_head(struct virtqueue *vq, uint16_t head);

/* Helpers over iovec arrays: copy out of / into them starting `offset`
 * bytes in; return the bytes copied (less than `len` at the end). */
size_t vq_iov_read(const struct iovec *iov, unsigned cnt, size_t offset, void *buf, size_t len);
size_t vq_iov_write(const struct iovec *iov, unsigned cnt, size_t offset, const void *buf,
                    size_t len);
/* Describes bytes [offset, offset + len) of `iov` in `dst` (at most `max`
 * entries); returns the entry count, or -1 when the range is not there. */
int vq_iov_slice(const struct iovec *iov, unsigned cnt, size_t offset, size_t len,
                 struct iovec *dst, unsigned max);

#endif
