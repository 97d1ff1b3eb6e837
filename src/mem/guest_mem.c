#include "mem/guest_mem.h"

#include "mem/ram_fill.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The host's transparent huge pages under guest RAM, where the host allows
 * them (as QEMU asks for them): a 1-hart boot took 37,400 page faults with
 * 4 KiB pages and 12,500 with them, and a guest's accesses miss the host's
 * TLB less. The error is ignored: without THP, RAM works the same. */
#define HUGE_PAGE_SIZE (2ull << 20)
static void advise_huge(void *p, uint64_t size)
{
    madvise(p, size, MADV_HUGEPAGE);
}

int guest_mem_init(struct guest_mem *mem, uint64_t base, uint64_t size)
{
    memset(mem, 0, sizeof(*mem));
    if (size == 0 || (size & (GUEST_PAGE_SIZE - 1)) || (base & (GUEST_PAGE_SIZE - 1)))
        return -EINVAL;
    /* MAP_NORESERVE: guest RAM is backed lazily, page by page, as the guest
     * touches it, so an idle 512 MiB guest costs what it uses. Aligned to
     * a huge page (the head and tail of a larger reservation are given
     * back), so that the host can back it with huge pages. */
    uint8_t *raw = mmap(NULL, size + HUGE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED)
        return -errno;
    uint8_t *p = (uint8_t *)(((uintptr_t)raw + HUGE_PAGE_SIZE - 1) & ~(uintptr_t)(HUGE_PAGE_SIZE - 1));
    if (p > raw)
        munmap(raw, (size_t)(p - raw));
    munmap(p + size, (size_t)(raw + HUGE_PAGE_SIZE - p));
    advise_huge(p, size);
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
    ram_fill_stop(mem->filler);
    mem->filler = NULL;
    if (mem->ram)
        munmap(mem->ram, mem->ram_size);
    dirty_log_destroy(&mem->dirty);
    mem->ram = NULL;
    mem->ram_size = 0;
    mem->mmio_count = 0;
}

int guest_mem_map_file(struct guest_mem *mem, int fd)
{
    struct stat st;
    if (fstat(fd, &st))
        return -errno;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < mem->ram_size)
        return -EINVAL;
    void *p = mmap(mem->ram, mem->ram_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    mem->file_backed = true;
    return 0;
}

/* /proc/self/pagemap entries (Documentation/admin-guide/mm/pagemap.rst):
 * bit 63 page present, bit 62 swapped. Readable without privileges (only
 * the frame numbers are hidden then). */
#define PAGEMAP_PRESENT (1ull << 63)
#define PAGEMAP_SWAPPED (1ull << 62)

int guest_mem_backed_pages(const struct guest_mem *mem, uint64_t *bitmap)
{
    uint64_t npages = mem->ram_size / GUEST_PAGE_SIZE;
    long hp = sysconf(_SC_PAGESIZE);
    if (mem->file_backed || hp != (long)GUEST_PAGE_SIZE) {
        for (uint64_t p = 0; p < npages; p++)
            bitmap[p / 64] |= 1ull << (p % 64);
        return 0;
    }
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    uint64_t entries[512];
    uint64_t first = (uintptr_t)mem->ram / GUEST_PAGE_SIZE;
    int r = 0;
    for (uint64_t p = 0; p < npages && !r;) {
        uint64_t n = npages - p < 512 ? npages - p : 512;
        ssize_t got = pread(fd, entries, n * 8, (off_t)((first + p) * 8));
        if (got <= 0 || got % 8) {
            r = got < 0 ? -errno : -EIO;
            break;
        }
        for (uint64_t i = 0; i < (uint64_t)got / 8; i++, p++)
            if (entries[i] & (PAGEMAP_PRESENT | PAGEMAP_SWAPPED))
                bitmap[p / 64] |= 1ull << (p % 64);
    }
    close(fd);
    return r;
}

int guest_mem_clear(struct guest_mem *mem)
{
    /* Fresh RAM is zero, not what a filler would fetch. */
    ram_fill_stop(mem->filler);
    mem->filler = NULL;
    /* Every page changes (to zero): a dirty log must resend them all. */
    guest_mem_mark_dirty(mem, mem->ram_base, mem->ram_size);
    if (!mem->file_backed)
        return madvise(mem->ram, mem->ram_size, MADV_DONTNEED) ? -errno : 0;
    /* MADV_DONTNEED on a private file mapping would bring back the file's
     * contents: map fresh anonymous memory in its place instead. */
    void *p = mmap(mem->ram, mem->ram_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    advise_huge(p, mem->ram_size);
    mem->file_backed = false;
    return 0;
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
    if (first >= last || mem->file_backed) { /* no whole host page inside, or
                                                 DONTNEED would not zero */
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
