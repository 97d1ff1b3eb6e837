/* Code cache: a memfd with a read-write and a read-execute mapping. */
#include "cpu/jit/cache.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

int cache_init(struct code_cache *c, size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    int r;
    if (page <= 0)
        page = 4096;
    size = (size + (size_t)page - 1) & ~((size_t)page - 1);
    c->rw = c->rx = NULL;
    c->size = size;
    c->used = 0;
    c->fd = memfd_create("nimbus-jit", MFD_CLOEXEC);
    if (c->fd < 0)
        return -errno;
    if (ftruncate(c->fd, (off_t)size)) {
        r = -errno;
        goto fail;
    }
    void *rw = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
    if (rw == MAP_FAILED) {
        r = -errno;
        goto fail;
    }
    c->rw = rw;
    void *rx = mmap(NULL, size, PROT_READ | PROT_EXEC, MAP_SHARED, c->fd, 0);
    if (rx == MAP_FAILED) {
        r = -errno;
        goto fail;
    }
    c->rx = rx;
    return 0;
fail:
    cache_destroy(c);
    return r;
}

void cache_destroy(struct code_cache *c)
{
    if (c->rw)
        munmap(c->rw, c->size);
    if (c->rx)
        munmap(c->rx, c->size);
    if (c->fd >= 0)
        close(c->fd);
    c->rw = c->rx = NULL;
    c->fd = -1;
}
