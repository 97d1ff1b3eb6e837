/* Guest physical address space: one RAM region backed by host memory, plus
 * MMIO regions dispatched to device ops.
 *
 * Threads: the region table is built before any hart runs and is read-only
 * afterwards, so any thread may look up addresses without locking. Devices
 * lock their own state inside their ops. */
#ifndef NIMBUS_MEM_GUEST_MEM_H
#define NIMBUS_MEM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem/dirty_log.h"

#define GUEST_PAGE_SHIFT 12
#define GUEST_PAGE_SIZE  (1ull << GUEST_PAGE_SHIFT)
#define GUEST_MMIO_MAX   32

/* MMIO accessors. `offset` is relative to the region base, `size` is 1, 2, 4
 * or 8. Return false to make the access fault (the hart raises an access
 * fault exception); true when handled. */
struct mmio_ops {
    bool (*read)(void *opaque, uint64_t offset, unsigned size, uint64_t *value);
    bool (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
};

struct mmio_region {
    uint64_t base;
    uint64_t size;
    const struct mmio_ops *ops;
    void *opaque;
    const char *name;
};

struct ram_filler;

struct guest_mem {
    uint64_t ram_base;
    uint64_t ram_size;
    uint8_t *ram;              /* host mapping of guest RAM */
    bool file_backed;          /* RAM is a private mapping of a snapshot's memory file */
    struct mmio_region mmio[GUEST_MMIO_MAX];
    int mmio_count;
    struct dirty_log dirty;    /* dirty pages of RAM (mem/dirty_log.h) */
    struct ram_filler *filler; /* RAM still being filled on demand (mem/ram_fill.h), or NULL */
};

/* Maps `size` bytes of anonymous, lazily backed host memory as guest RAM at
 * guest physical `base`, with its dirty log (off). Returns 0 or -errno. */
int guest_mem_init(struct guest_mem *mem, uint64_t base, uint64_t size);
void guest_mem_destroy(struct guest_mem *mem);

/* Replaces all of RAM with a private (copy-on-write) mapping of `fd`, whose
 * first ram_size bytes are the RAM's contents: pages load from the file on
 * first touch, writes stay in this process, so several VMs can share one
 * snapshot's memory file (Firecracker's "file" memory backend). The mapping
 * keeps its address. Before any hart runs. Returns 0 or -errno (-EINVAL for
 * a file shorter than RAM). */
int guest_mem_map_file(struct guest_mem *mem, int fd);

/* Sets, in `bitmap` (one bit per 4 KiB page of RAM, zeroed by the caller),
 * the pages that may hold something other than zeros: on anonymous RAM the
 * ones the host has backed (present or swapped out, from
 * /proc/self/pagemap), so a save never touches - and never backs - a page
 * the guest never wrote; on file-backed RAM every page. Returns 0 or -errno
 * (then treat every page as possibly non-zero). Any thread. */
int guest_mem_backed_pages(const struct guest_mem *mem, uint64_t *bitmap);

/* All of RAM reads as zero again and holds no host memory (a power cycle),
 * whether it was anonymous or a file's mapping. No hart may run. Returns 0
 * or -errno. */
int guest_mem_clear(struct guest_mem *mem);

/* Registers an MMIO region; regions must not overlap RAM or each other.
 * Returns 0 or -errno (-EEXIST on overlap, -ENOSPC when the table is full). */
int guest_mem_add_mmio(struct guest_mem *mem, uint64_t base, uint64_t size,
                       const struct mmio_ops *ops, void *opaque, const char *name);

/* Host pointer for [pa, pa+len) if the whole range is RAM, else NULL. */
static inline void *guest_mem_ram_ptr(const struct guest_mem *mem, uint64_t pa, uint64_t len)
{
    uint64_t off = pa - mem->ram_base;
    if (pa < mem->ram_base || off >= mem->ram_size || len > mem->ram_size - off)
        return NULL;
    return mem->ram + off;
}

/* Records a write to RAM [pa, pa+len) in the dirty log, if logging is on
 * (one predictable branch when off). Every writer of RAM that does not go
 * through the functions below calls it after writing. Any thread. */
static inline void guest_mem_mark_dirty(struct guest_mem *mem, uint64_t pa, uint64_t len)
{
    if (__builtin_expect(dirty_log_on(&mem->dirty), 0) && len && pa >= mem->ram_base) {
        uint64_t first = (pa - mem->ram_base) >> GUEST_PAGE_SHIFT;
        uint64_t last = (pa - mem->ram_base + len - 1) >> GUEST_PAGE_SHIFT;
        dirty_log_mark(&mem->dirty, first, last - first + 1);
    }
}

/* The same for a host pointer into RAM (as guest_mem_ram_ptr gave). */
static inline void guest_mem_mark_dirty_host(struct guest_mem *mem, const void *p, size_t len)
{
    if (__builtin_expect(dirty_log_on(&mem->dirty), 0))
        guest_mem_mark_dirty(mem, mem->ram_base + (uint64_t)((const uint8_t *)p - mem->ram), len);
}

const struct mmio_region *guest_mem_find_mmio(const struct guest_mem *mem, uint64_t pa);

/* Device access for one naturally sized access (1, 2, 4, 8). Returns false
 * when nothing is mapped there or the device refuses the access. */
bool guest_mem_mmio_read(const struct guest_mem *mem, uint64_t pa, unsigned size, uint64_t *value);
bool guest_mem_mmio_write(const struct guest_mem *mem, uint64_t pa, unsigned size, uint64_t value);

/* Copies between host buffers and guest physical memory (RAM only), as used by
 * loaders and DMA-style devices; writes are marked in the dirty log. Return 0
 * or -EFAULT if any byte is not RAM. */
int guest_mem_write(struct guest_mem *mem, uint64_t pa, const void *src, size_t len);
int guest_mem_read(const struct guest_mem *mem, uint64_t pa, void *dst, size_t len);

/* Makes [pa, pa+len) of RAM read as zero. Whole pages are handed back to the
 * host (MADV_DONTNEED on the private anonymous mapping), so clearing a large
 * range never touches or backs memory; partial pages are cleared in place.
 * On file-backed RAM (guest_mem_map_file) the range is cleared in place.
 * The range is marked in the dirty log. Returns 0, -EFAULT if any byte is
 * not RAM, or -errno from madvise. */
int guest_mem_zero(struct guest_mem *mem, uint64_t pa, uint64_t len);

/* Gives the host pages wholly inside [pa, pa+len) back to the host kernel
 * (madvise MADV_DONTNEED on the private anonymous mapping): the process's
 * RSS falls, and the guest reads zeros there afterwards. Partial host pages
 * at the ends keep their contents. Used by the balloon (inflated and
 * reported free pages). The discarded pages (their contents changed) are
 * marked in the dirty log. Returns 0, -EFAULT if any byte is not RAM, or the
 * madvise error. On file-backed RAM the pages read what the memory file
 * holds afterwards, not zeros: the balloon's pages are the driver's to
 * refill (VIRTIO 1.2 §5.5.6), and their private copies are still freed.
 *
 * Any thread, while harts run: the mapping itself stays, so the host
 * pointers harts hold in their software TLBs (and virtqueue iovecs) stay
 * valid and need no flush; a hart that touches a discarded page simply
 * faults in a fresh zero page, which is what VIRTIO 1.2 §5.5.6 allows for a
 * page the driver gave to the device. */
int guest_mem_discard(struct guest_mem *mem, uint64_t pa, uint64_t len);

#endif
