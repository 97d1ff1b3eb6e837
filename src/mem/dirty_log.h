/* Dirty-page logging of guest RAM: one bit per 4 KiB RAM page, set by
 * every writer of RAM while logging is on, fetched and cleared by a
 * collector (diff snapshots, pre-copy migration rounds).
 *
 * Enabling makes every page dirty: the first collect hands out all of RAM
 * (the base copy), each later one the pages written since the one before.
 * That way no write from before the enable, or through a write TLB entry a
 * hart installed before it, can be missed: such pages are dirty anyway
 * until the first collect, which makes every hart drop its write entries.
 *
 * Who marks (see docs/architecture.md, "Dirty logging"):
 *  - harts mark a page when they install a write TLB entry for it, and on
 *    every slow-path store, AMO and A/D-bit update; a hart keeps writing
 *    through its entry unmarked until it drops its write entries;
 *  - devices and the monitor mark after writing (guest_mem_write/zero/
 *    discard, virtqueue completion, the loader).
 * So a collect is complete only with the hart handshake (cpu/hart.h:
 * hart_request_drop_writes), in this order: (1) dirty_log_collect()
 * fetches and clears the bits; (2) every hart drops its write entries and
 * acknowledges; (3) only then may the caller read page contents. A store
 * through a still-cached entry between (1) and (2) lands before the copy
 * in (3); any store after (2) misses the TLB and marks the page again. The
 * other order, drop then clear, would lose a write through an entry
 * installed between the two. machine/virt_dirty.c does the whole sequence.
 *
 * Threads: marking is lock-free (atomic OR, release) from any thread.
 * enable/disable/collect belong to one collector thread at a time. */
#ifndef NIMBUS_MEM_DIRTY_LOG_H
#define NIMBUS_MEM_DIRTY_LOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dirty_log {
    _Atomic uint64_t *bits;  /* bit (pfn % 64) of word (pfn / 64); NULL: no log */
    uint64_t npages;
    size_t nwords;
    _Atomic bool enabled;
    /* A collector waiting for harts to acknowledge (dirty_log_wait). */
    _Atomic unsigned waiters;
    pthread_mutex_t sync_lock;
    pthread_cond_t sync_cond;
};

/* Allocates the bitmap for `npages` pages, logging off. A zeroed struct
 * that was never initialised is a valid log that is always off. Returns 0
 * or -ENOMEM. */
int dirty_log_init(struct dirty_log *log, uint64_t npages);
void dirty_log_destroy(struct dirty_log *log);

/* Turns logging on with every page dirty (see above), or off. Collector's
 * thread. Enabling again while on makes every page dirty again. */
void dirty_log_enable(struct dirty_log *log);
void dirty_log_disable(struct dirty_log *log);

static inline bool dirty_log_on(const struct dirty_log *log)
{
    return atomic_load_explicit(&log->enabled, memory_order_acquire);
}

/* Marks pages [first, first + count) dirty (clipped to the log). Call
 * after the write it records (release: a collector that fetches the bit
 * sees the write), or before it when a hart handshake follows. Any thread,
 * only while dirty_log_on() (the bitmap exists). */
void dirty_log_mark(struct dirty_log *log, uint64_t first, uint64_t count);

/* Words of a bitmap that holds every page: (npages + 63) / 64. */
static inline size_t dirty_log_words(const struct dirty_log *log)
{
    return log->nwords;
}

/* Step (1) of a collect: moves the dirty bits into out[0, nwords) (bit
 * pfn % 64 of word pfn / 64, pfn counted from the start of RAM) and clears
 * them, word by word with an atomic exchange. Returns the number of dirty
 * pages, or -EINVAL when out is too short or there is no log. Collector's
 * thread; works whether logging is on or off (off: what was left). */
int64_t dirty_log_collect(struct dirty_log *log, uint64_t *out, size_t nwords);

/* Hart side of step (2): after publishing its acknowledgement, a hart
 * wakes a collector blocked in dirty_log_wait(). Any thread. */
void dirty_log_wake(struct dirty_log *log);

/* Collector side of step (2): waits until done(opaque) is true, or at most
 * timeout_ms. done() is evaluated under the log's lock after every wake.
 * Returns done()'s last value. Collector's thread. */
bool dirty_log_wait(struct dirty_log *log, bool (*done)(void *opaque), void *opaque,
                    unsigned timeout_ms);

#endif
