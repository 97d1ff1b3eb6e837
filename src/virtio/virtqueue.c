/* Split virtqueues. See virtqueue.h for the rules checked and the ordering. */
#include "virtio/virtqueue.h"

#include <errno.h>
#include <string.h>

/* Ring layouts (§2.7.5, §2.7.6, §2.7.8), little-endian like the host. */
struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

#define AVAIL_FLAGS 0
#define AVAIL_IDX   2
#define AVAIL_RING  4
#define USED_FLAGS  0
#define USED_IDX    2
#define USED_RING   4

static uint16_t *avail_word(const struct virtqueue *vq, size_t off)
{
    return (uint16_t *)(void *)(vq->avail + off);
}

static uint16_t *used_word(const struct virtqueue *vq, size_t off)
{
    return (uint16_t *)(void *)(vq->used + off);
}

void vq_reset(struct virtqueue *vq, struct guest_mem *mem)
{
    memset(vq, 0, sizeof(*vq));
    vq->mem = mem;
}

int vq_start(struct virtqueue *vq, bool event_idx, bool indirect)
{
    uint64_t n = vq->num;

    vq->ready = false;
    if (n == 0 || n > VQ_MAX_SIZE || (n & (n - 1)))
        return -EPROTO;
    if ((vq->desc_addr & 15) || (vq->avail_addr & 1) || (vq->used_addr & 3))
        return -EPROTO;
    /* Both rings carry one more u16 at the end: used_event / avail_event. */
    vq->desc = guest_mem_ram_ptr(vq->mem, vq->desc_addr, 16 * n);
    vq->avail = guest_mem_ram_ptr(vq->mem, vq->avail_addr, 6 + 2 * n);
    vq->used = guest_mem_ram_ptr(vq->mem, vq->used_addr, 6 + 8 * n);
    if (!vq->desc || !vq->avail || !vq->used)
        return -EPROTO;
    vq->event_idx = event_idx;
    vq->indirect = indirect;
    vq->last_avail = 0;
    vq->used_idx = 0;
    vq->broken = false;
    vq->ready = true;
    return 0;
}

static int broken(struct virtqueue *vq)
{
    vq->broken = true;
    return -EPROTO;
}

static uint16_t avail_idx_acquire(const struct virtqueue *vq)
{
    return __atomic_load_n(avail_word(vq, AVAIL_IDX), __ATOMIC_ACQUIRE);
}

/* Walks the chain at `head` into `elem`; -EPROTO on any broken rule. */
static int walk_chain(struct virtqueue *vq, uint16_t head, struct vq_elem *elem)
{
    const uint8_t *table = vq->desc;
    unsigned table_size = vq->num, idx = head, count = 0, nbufs = 0;
    bool in_indirect = false, seen_write = false;

    elem->head = head;
    elem->out_num = elem->in_num = 0;
    elem->out_len = elem->in_len = 0;
    for (;;) {
        struct vring_desc d;
        if (idx >= table_size)
            return -EPROTO;
        /* One chain visits at most table_size descriptors of a table
         * (§2.7.4.2: a direct chain is no longer than the queue); a loop
         * exceeds it. */
        if (++count > table_size)
            return -EPROTO;
        memcpy(&d, table + 16 * (size_t)idx, sizeof(d));

        if (d.flags & VRING_DESC_F_INDIRECT) {
            /* §2.7.5.3.1: only when negotiated, never inside an indirect
             * table, never together with NEXT; the table holds whole
             * descriptors, all in RAM. Its size is bounded by
             * VQ_MAX_SIZE rather than the queue size: Linux bounds an
             * indirect chain only by the device's seg_max, so a driver
             * that chose a queue smaller than QueueNumMax still sends
             * up to seg_max + 2 entries (QEMU is lenient the same way). */
            if (!vq->indirect || in_indirect || (d.flags & VRING_DESC_F_NEXT))
                return -EPROTO;
            if (d.len == 0 || (d.len & 15) || d.len / 16 > VQ_MAX_SIZE)
                return -EPROTO;
            table = guest_mem_ram_ptr(vq->mem, d.addr, d.len);
            if (!table)
                return -EPROTO;
            table_size = d.len / 16;
            in_indirect = true;
            idx = 0;
            count = 0;
            continue;
        }

        if (d.len) {
            void *p = guest_mem_ram_ptr(vq->mem, d.addr, d.len);
            if (!p || nbufs >= VQ_MAX_SIZE)
                return -EPROTO;
            if (d.flags & VRING_DESC_F_WRITE) {
                seen_write = true;
                elem->in_num++;
                elem->in_len += d.len;
            } else {
                /* §2.7.4.2: readable buffers come before writable ones. */
                if (seen_write)
                    return -EPROTO;
                elem->out_num++;
                elem->out_len += d.len;
            }
            elem->iov[nbufs++] = (struct iovec){ .iov_base = p, .iov_len = d.len };
        } else if (d.flags & VRING_DESC_F_WRITE) {
            seen_write = true;
        } else if (seen_write) {
            return -EPROTO;
        }
        if (!(d.flags & VRING_DESC_F_NEXT))
            return 0;
        idx = d.next;
    }
}

int vq_pop(struct virtqueue *vq, struct vq_elem *elem)
{
    if (!vq->ready)
        return 0;
    if (vq->broken)
        return -EPROTO;
    uint16_t avail = avail_idx_acquire(vq);
    if (avail == vq->last_avail) {
        if (!vq->event_idx)
            return 0;
        /* §2.7.10: ask for a notification when the next buffer arrives,
         * then look again in case it arrived meanwhile. */
        __atomic_store_n(used_word(vq, USED_RING + 8 * (size_t)vq->num), vq->last_avail,
                         __ATOMIC_RELAXED);
        guest_mem_mark_dirty_host(vq->mem, used_word(vq, USED_RING + 8 * (size_t)vq->num), 2);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        avail = avail_idx_acquire(vq);
        if (avail == vq->last_avail)
            return 0;
    }
    /* The driver can't have more buffers outstanding than the ring holds. */
    if ((uint16_t)(avail - vq->last_avail) > vq->num)
        return broken(vq);
    uint16_t head = __atomic_load_n(avail_word(vq, AVAIL_RING + 2 * (size_t)(vq->last_avail % vq->num)),
                                    __ATOMIC_RELAXED);
    if (walk_chain(vq, head, elem))
        return broken(vq);
    vq->last_avail++;
    /* Dirty logging: the writable buffers are marked when mapped, for a
     * chain that is never pushed (its queue reset meanwhile), and again at
     * completion, after the device wrote them (vq_push_many). */
    vq_mark_written(vq, elem);
    return 1;
}

void vq_mark_written(struct virtqueue *vq, const struct vq_elem *elem)
{
    if (!dirty_log_on(&vq->mem->dirty))
        return;
    for (unsigned i = elem->out_num; i < elem->out_num + elem->in_num; i++)
        guest_mem_mark_dirty_host(vq->mem, elem->iov[i].iov_base, elem->iov[i].iov_len);
}

/* Completion of chain `head` under dirty logging: the device has written
 * its buffers, so they are marked now; a collect that cleared them since
 * the pop cannot lose the writes. The chain is walked again from the
 * descriptor table, which the driver must leave alone until the device
 * has used the chain (VIRTIO 1.2 §2.7): a driver that rewrites it only
 * hides writes to its own memory from its own snapshot. A chain that no
 * longer walks keeps the marks of its pop. Not on the hot path: only while
 * logging is on. */
static void mark_completed(struct virtqueue *vq, uint16_t head)
{
    struct vq_elem e;
    if (head < vq->num && walk_chain(vq, head, &e) == 0)
        vq_mark_written(vq, &e);
}

bool vq_has_avail(const struct virtqueue *vq)
{
    return vq->ready && !vq->broken && avail_idx_acquire(vq) != vq->last_avail;
}

bool vq_push_many(struct virtqueue *vq, const struct vq_used *used, unsigned n)
{
    if (!vq->ready || vq->broken || n == 0 || n > vq->num)
        return false;
    uint16_t old = vq->used_idx, new = (uint16_t)(old + n);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *ent = vq->used + USED_RING + 8 * (size_t)((uint16_t)(old + i) % vq->num);
        uint32_t id = used[i].head;
        memcpy(ent, &id, 4);
        memcpy(ent + 4, &used[i].len, 4);
    }
    vq->used_idx = new;
    __atomic_store_n(used_word(vq, USED_IDX), new, __ATOMIC_RELEASE);
    if (dirty_log_on(&vq->mem->dirty)) {
        for (unsigned i = 0; i < n; i++)
            mark_completed(vq, used[i].head);
        guest_mem_mark_dirty_host(vq->mem, vq->used, 6 + 8 * (size_t)vq->num);
    }
    /* The driver writes used_event and then reads used->idx; we did the
     * reverse: a full fence keeps either side from missing the other. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (vq->event_idx) {
        uint16_t event = __atomic_load_n(avail_word(vq, AVAIL_RING + 2 * (size_t)vq->num),
                                         __ATOMIC_RELAXED);
        /* vring_need_event (§2.7.10): interrupt when event lies in [old, new). */
        return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
    }
    return !(__atomic_load_n(avail_word(vq, AVAIL_FLAGS), __ATOMIC_RELAXED) &
             VRING_AVAIL_F_NO_INTERRUPT);
}

bool vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
    struct vq_used u = { .head = head, .len = len };
    return vq_push_many(vq, &u, 1);
}

void vq_unpop(struct virtqueue *vq, unsigned n)
{
    vq->last_avail = (uint16_t)(vq->last_avail - n);
}

bool vq_unpop_head(struct virtqueue *vq, uint16_t head)
{
    if (!vq->ready || vq->broken || vq->last_avail == vq->used_idx)
        return false;
    uint16_t prev = (uint16_t)(vq->last_avail - 1);
    uint16_t h = __atomic_load_n(avail_word(vq, AVAIL_RING + 2 * (size_t)(prev % vq->num)),
                                 __ATOMIC_RELAXED);
    if (h != head)
        return false;
    vq->last_avail = prev;
    return true;
}

/* Copies between `buf` and bytes [offset, offset + len) of an iovec array,
 * into the iovecs when `to_iov`; returns the bytes copied. */
static size_t iov_copy(const struct iovec *iov, unsigned cnt, size_t offset, uint8_t *buf,
                       size_t len, bool to_iov)
{
    size_t done = 0;
    for (unsigned i = 0; i < cnt && done < len; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t n = iov[i].iov_len - offset;
        if (n > len - done)
            n = len - done;
        uint8_t *part = (uint8_t *)iov[i].iov_base + offset;
        if (to_iov)
            memcpy(part, buf + done, n);
        else
            memcpy(buf + done, part, n);
        done += n;
        offset = 0;
    }
    return done;
}

size_t vq_iov_read(const struct iovec *iov, unsigned cnt, size_t offset, void *buf, size_t len)
{
    return iov_copy(iov, cnt, offset, buf, len, false);
}

size_t vq_iov_write(const struct iovec *iov, unsigned cnt, size_t offset, const void *buf,
                    size_t len)
{
    /* iov_copy only reads `buf` in this direction. */
    return iov_copy(iov, cnt, offset, (uint8_t *)(uintptr_t)buf, len, true);
}

int vq_iov_slice(const struct iovec *iov, unsigned cnt, size_t offset, size_t len,
                 struct iovec *dst, unsigned max)
{
    unsigned n = 0;
    for (unsigned i = 0; i < cnt && len; i++) {
        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        size_t k = iov[i].iov_len - offset;
        if (k > len)
            k = len;
        if (n >= max)
            return -1;
        dst[n++] = (struct iovec){ .iov_base = (uint8_t *)iov[i].iov_base + offset, .iov_len = k };
        len -= k;
        offset = 0;
    }
    return len ? -1 : (int)n;
}
