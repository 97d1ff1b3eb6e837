#include "mem/guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int guest_mem_init(struct guest_mem *mem, uint64_t base, uint64_t size)
{
    memset(mem, 0, sizeof(*mem));
    if (size == 0 || (size & (GUEST_PAGE_SIZE - 1)) || (base & (GUEST_PAGE_SIZE - 1)))
        return -EINVAL;
    /* MAP_NORESERVE: guest RAM is backed lazily, page by page, as the guest
     * touches it, so an idle 512 MiB guest costs what it uses. */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    int err = dirty_log_init(&mem->dirty, size >> GUEST_PAGE_SHIFT);
    if (err) {
        munmap(p, size);
        return err;
    }
    mem->ram = p;
    mem->ram_base = base;
    mem->ram_size = size;
    return 0;
}

void guest_mem_destroy(struct guest_mem *mem)
{
    if (mem->ram)
        munmap(mem->ram, mem->ram_size);
    dirty_log_destroy(&mem->dirty);
    mem->ram = NULL;
    mem->ram_size = 0;
    mem->mmio_count = 0;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

int guest_mem_add_mmio(struct guest_mem *mem, uint64_t base, uint64_t size,
                       const struct mmio_ops *ops, void *opaque, const char *name)
{
    if (size == 0 || base + size < base)
        return -EINVAL;
    if (mem->ram_size && ranges_overlap(base, size, mem->ram_base, mem->ram_size))
        return -EEXIST;
    for (int i = 0; i < mem->mmio_count; i++)
        if (ranges_overlap(base, size, mem->mmio[i].base, mem->mmio[i].size))
            return -EEXIST;
    if (mem->mmio_count == GUEST_MMIO_MAX)
        return -ENOSPC;
    mem->mmio[mem->mmio_count++] = (struct mmio_region){
        .base = base, .size = size, .ops = ops, .opaque = opaque, .name = name,
    };
    return 0;
}

const struct mmio_region *guest_mem_find_mmio(const struct guest_mem *mem, uint64_t pa)
{
    for (int i = 0; i < mem->mmio_count; i++) {
        const struct mmio_region *r = &mem->mmio[i];
        if (pa - r->base < r->size)
            return r;
    }
    return NULL;
}

bool guest_mem_mmio_read(const struct guest_mem *mem, uint64_t pa, unsigned size, uint64_t *value)
{
    const struct mmio_region *r = guest_mem_find_mmio(mem, pa);
    if (!r || pa - r->base + size > r->size || !r->ops->read)
        return false;
    return r->ops->read(r->opaque, pa - r->base, size, value);
}

bool guest_mem_mmio_write(const struct guest_mem *mem, uint64_t pa, unsigned size, uint64_t value)
{
    const struct mmio_region *r = guest_mem_find_mmio(mem, pa);
    if (!r || pa - r->base + size > r->size || !r->ops->write)
        return false;
    return r->ops->write(r->opaque, pa - r->base, size, value);
}

int guest_mem_write(struct guest_mem *mem, uint64_t pa, const void *src, size_t len)
{
    void *dst = guest_mem_ram_ptr(mem, pa, len);
    if (!dst)
        return -EFAULT;
    memcpy(dst, src, len);
    guest_mem_mark_dirty(mem, pa, len);
    return 0;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t pa, void *dst, size_t len)
{
    const void *src = guest_mem_ram_ptr(mem, pa, len);
    if (!src)
        return -EFAULT;
    memcpy(dst, src, len);
    return 0;
}

/* The host's page size, which madvise works in. */
static uintptr_t host_page_size(void)
{
    long hp = sysconf(_SC_PAGESIZE);
    return hp > 0 ? (uintptr_t)hp : 4096;
}

int guest_mem_discard(struct guest_mem *mem, uint64_t pa, uint64_t len)
{
    uint8_t *p = guest_mem_ram_ptr(mem, pa, len);
    if (!p)
        return -EFAULT;
    uintptr_t page = host_page_size();
    uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t end = ((uintptr_t)p + len) & ~(page - 1);
    if (end <= start)
        return 0;
    if (madvise((void *)start, end - start, MADV_DONTNEED))
        return -errno;
    guest_mem_mark_dirty_host(mem, (void *)start, end - start);
    return 0;
}

int guest_mem_zero(struct guest_mem *mem, uint64_t pa, uint64_t len)
{
    uint8_t *p = guest_mem_ram_ptr(mem, pa, len);
    if (!p)
        return -EFAULT;
    uintptr_t page = host_page_size();
    uintptr_t start = (uintptr_t)p, end = start + len;
    uintptr_t first = (start + page - 1) & ~(page - 1), last = end & ~(page - 1);
    if (first >= last) {          /* no whole host page inside */
        memset(p, 0, len);
        guest_mem_mark_dirty(mem, pa, len);
        return 0;
    }
    memset(p, 0, first - start);
    memset((void *)last, 0, end - last);
    int r = guest_mem_discard(mem, pa + (first - start), last - first);
    guest_mem_mark_dirty(mem, pa, len);  /* after the writes it records */
    return r;
}
