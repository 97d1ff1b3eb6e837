/* Code cache: shared memory with a read-write and a read-execute mapping of
 * the same pages. */
#include "cpu/jit/cache.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

/* The executable view of `rw`: mremap of a shared mapping with an old size
 * of 0 maps the same pages again (mremap(2)), made executable, never
 * writable. Preferred to a memfd because perf reads /tmp/perf-PID.map
 * (--jit-perf-map) only for mappings it takes as anonymous, which a
 * memfd's name is not. NULL where that form of mremap is missing
 * (valgrind). */
static void *second_view(void *rw, size_t size)
{
    void *rx = mremap(rw, 0, size, MREMAP_MAYMOVE);
    if (rx == MAP_FAILED)
        return NULL;
    if (mprotect(rx, size, PROT_READ | PROT_EXEC)) {
        munmap(rx, size);
        return NULL;
    }
    return rx;
}

/* Both views of a memfd instead. */
static int memfd_views(struct code_cache *c, size_t size)
{
    int fd = memfd_create("nimbus-jit", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = 0;
    void *rw = MAP_FAILED, *rx = MAP_FAILED;
    if (ftruncate(fd, (off_t)size) ||
        (rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED ||
        (rx = mmap(NULL, size, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0)) == MAP_FAILED) {
        r = -errno;
        if (rw != MAP_FAILED)
            munmap(rw, size);
    } else {
        c->rw = rw;
        c->rx = rx;
    }
    close(fd);   /* the mappings keep the pages */
    return r;
}

int cache_init(struct code_cache *c, size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        page = 4096;
    size = (size + (size_t)page - 1) & ~((size_t)page - 1);
    c->rw = c->rx = NULL;
    c->size = size;
    c->used = 0;
    void *rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (rw == MAP_FAILED)
        return -errno;
    void *rx = second_view(rw, size);
    if (rx) {
        c->rw = rw;
        c->rx = rx;
        return 0;
    }
    munmap(rw, size);
    return memfd_views(c, size);
}

void cache_destroy(struct code_cache *c)
{
    if (c->rw)
        munmap(c->rw, c->size);
    if (c->rx)
        munmap(c->rx, c->size);
    c->rw = c->rx = NULL;
}
