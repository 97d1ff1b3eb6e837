/* An independent model of the split-virtqueue rules src/virtio/virtqueue.h
 * promises (VIRTIO 1.2 §2.7), for the fuzz targets: given guest RAM and a
 * descriptor table, it says whether the chain at `head` is one the device
 * must accept and, if so, which guest-physical buffers it describes. The
 * targets compare the device's behaviour with it (fuzz_virtqueue: every
 * iovec; the device targets: which chains may come back in the used ring,
 * with how many writable bytes, and which must set DEVICE_NEEDS_RESET).
 *
 * The rules, written from the header's contract and the spec rather than
 * from virtqueue.c:
 *   - a descriptor index is below the size of the table it indexes;
 *   - a chain visits at most that many descriptors of one table (loops);
 *   - INDIRECT only when negotiated, not inside an indirect table, not with
 *     NEXT; the table is 1..VQ_MAX_SIZE whole descriptors, all in RAM; the
 *     walk continues at its descriptor 0 (§2.7.5.3);
 *   - a buffer with len > 0 lies wholly in RAM; at most VQ_MAX_SIZE of them;
 *   - no device-readable descriptor after a device-writable one (§2.7.4.2),
 *     zero-length ones included. */
#ifndef NIMBUS_TESTS_FUZZ_VQ_MODEL_H
#define NIMBUS_TESTS_FUZZ_VQ_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "virtio/virtqueue.h"

struct vqm_buf {
    uint64_t pa;
    uint32_t len;
    bool write;
};

struct vqm_chain {
    bool ok;
    bool used_indirect;
    unsigned nbuf, out_num, in_num;
    uint64_t out_len, in_len;
    struct vqm_buf buf[VQ_MAX_SIZE];
};

struct vqm_ram {
    const uint8_t *ram;
    uint64_t base, size;
};

static inline bool vqm_in_ram(const struct vqm_ram *r, uint64_t pa, uint64_t len)
{
    return pa >= r->base && pa - r->base <= r->size && len <= r->size - (pa - r->base);
}

/* Walks the chain at `head` of the `num`-entry table at `desc_pa`. */
static inline void vqm_walk(const struct vqm_ram *r, uint64_t desc_pa, unsigned num,
                            bool indirect_ok, unsigned head, struct vqm_chain *c)
{
    uint64_t table = desc_pa;
    unsigned size = num, idx = head, visited = 0;
    bool in_ind = false, wrote = false;

    memset(c, 0, offsetof(struct vqm_chain, buf));
    for (;;) {
        if (idx >= size || ++visited > size)
            return;
        uint64_t d_addr;
        uint32_t d_len;
        uint16_t d_flags, d_next;
        const uint8_t *d = r->ram + (table + 16ull * idx - r->base);
        memcpy(&d_addr, d, 8);
        memcpy(&d_len, d + 8, 4);
        memcpy(&d_flags, d + 12, 2);
        memcpy(&d_next, d + 14, 2);
        if (d_flags & VRING_DESC_F_INDIRECT) {
            if (!indirect_ok || in_ind || (d_flags & VRING_DESC_F_NEXT))
                return;
            if (d_len == 0 || d_len % 16 || d_len / 16 > VQ_MAX_SIZE ||
                !vqm_in_ram(r, d_addr, d_len))
                return;
            table = d_addr;
            size = d_len / 16;
            idx = 0;
            visited = 0;
            in_ind = true;
            c->used_indirect = true;
            continue;
        }
        bool w = d_flags & VRING_DESC_F_WRITE;
        if (!w && wrote)
            return;
        wrote |= w;
        if (d_len) {
            if (!vqm_in_ram(r, d_addr, d_len) || c->nbuf >= VQ_MAX_SIZE)
                return;
            c->buf[c->nbuf++] = (struct vqm_buf){ d_addr, d_len, w };
            if (w) {
                c->in_num++;
                c->in_len += d_len;
            } else {
                c->out_num++;
                c->out_len += d_len;
            }
        }
        if (!(d_flags & VRING_DESC_F_NEXT)) {
            c->ok = true;
            return;
        }
        idx = d_next;
    }
}

#endif
