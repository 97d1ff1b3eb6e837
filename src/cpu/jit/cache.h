/* The code cache: shared memory mapped twice, a writable view where code is
 * emitted and an executable view where it runs (W^X: no mapping is ever
 * both writable and executable). Bump allocation; when full, the owner
 * flushes it whole (cache_reset) and translates again.
 *
 * Threads: a cache belongs to one hart's thread. */
#ifndef NIMBUS_CPU_JIT_CACHE_H
#define NIMBUS_CPU_JIT_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct code_cache {
    uint8_t *rw;        /* writable view */
    uint8_t *rx;        /* executable view */
    size_t size, used;
};

/* Maps a cache of `size` bytes (rounded up to the host page size).
 * Returns 0 or -errno. */
int cache_init(struct code_cache *c, size_t size);
void cache_destroy(struct code_cache *c);
/* Forgets all code. */
static inline void cache_reset(struct code_cache *c) { c->used = 0; }
/* Writable pointer for an executable address inside the cache. */
static inline uint8_t *cache_rw(const struct code_cache *c, uintptr_t rx)
{
    return c->rw + (rx - (uintptr_t)c->rx);
}

#endif
