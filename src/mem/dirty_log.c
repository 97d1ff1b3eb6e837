/* Dirty-page logging of guest RAM. See dirty_log.h for the protocol. */
#include "mem/dirty_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int dirty_log_init(struct dirty_log *log, uint64_t npages)
{
    memset(log, 0, sizeof(*log));
    size_t nwords = (size_t)((npages + 63) / 64);
    /* calloc of a large bitmap is fresh anonymous memory: it costs only
     * once logging touches it. */
    _Atomic uint64_t *bits = calloc(nwords ? nwords : 1, sizeof(*bits));
    if (!bits)
        return -ENOMEM;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr)) {
        free(bits);
        return -ENOMEM;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int err = pthread_cond_init(&log->sync_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (err) {
        free(bits);
        return -err;
    }
    err = pthread_mutex_init(&log->sync_lock, NULL);
    if (err) {
        pthread_cond_destroy(&log->sync_cond);
        free(bits);
        return -err;
    }
    log->bits = bits;
    log->npages = npages;
    log->nwords = nwords;
    return 0;
}

void dirty_log_destroy(struct dirty_log *log)
{
    if (!log->bits)
        return;
    free((void *)log->bits);
    pthread_mutex_destroy(&log->sync_lock);
    pthread_cond_destroy(&log->sync_cond);
    memset(log, 0, sizeof(*log));
}

void dirty_log_enable(struct dirty_log *log)
{
    if (!log->bits)
        return;
    for (size_t i = 0; i < log->nwords; i++) {
        uint64_t all = ~0ull;
        if (i == log->nwords - 1 && (log->npages & 63))
            all = (1ull << (log->npages & 63)) - 1;  /* no bits past the last page */
        atomic_store_explicit(&log->bits[i], all, memory_order_relaxed);
    }
    /* Release: a writer that sees `enabled` sees the bitmap too. */
    atomic_store_explicit(&log->enabled, true, memory_order_release);
}

void dirty_log_disable(struct dirty_log *log)
{
    /* The bitmap stays until dirty_log_destroy: a writer that saw `enabled`
     * just before may still mark. */
    atomic_store_explicit(&log->enabled, false, memory_order_release);
}

void dirty_log_mark(struct dirty_log *log, uint64_t first, uint64_t count)
{
    if (!log->bits || first >= log->npages)
        return;
    if (count > log->npages - first)
        count = log->npages - first;
    uint64_t end = first + count;
    while (first < end) {
        unsigned bit = (unsigned)(first & 63);
        uint64_t n = end - first < 64 - bit ? end - first : 64 - bit;
        uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << bit;
        atomic_fetch_or_explicit(&log->bits[first / 64], mask, memory_order_release);
        first += n;
    }
}

int64_t dirty_log_collect(struct dirty_log *log, uint64_t *out, size_t nwords)
{
    if (!log->bits || nwords < log->nwords)
        return -EINVAL;
    int64_t n = 0;
    for (size_t i = 0; i < log->nwords; i++) {
        /* Acquire pairs with the markers' release: the writes a bit
         * records are visible once the bit is fetched. */
        uint64_t w = atomic_exchange_explicit(&log->bits[i], 0, memory_order_acq_rel);
        out[i] = w;
        n += __builtin_popcountll(w);
    }
    for (size_t i = log->nwords; i < nwords; i++)
        out[i] = 0;
    return n;
}

void dirty_log_wake(struct dirty_log *log)
{
    /* Pairs with dirty_log_wait: the caller published its acknowledgement
     * (seq_cst) before this load, the waiter counts itself before testing
     * done(), so one of the two sees the other. */
    if (!atomic_load(&log->waiters))
        return;
    pthread_mutex_lock(&log->sync_lock);
    pthread_cond_broadcast(&log->sync_cond);
    pthread_mutex_unlock(&log->sync_lock);
}

bool dirty_log_wait(struct dirty_log *log, bool (*done)(void *opaque), void *opaque,
                    unsigned timeout_ms)
{
    if (!log->bits)
        return done(opaque);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&log->sync_lock);
    atomic_fetch_add(&log->waiters, 1);
    bool ok;
    while (!(ok = done(opaque)))
        if (pthread_cond_timedwait(&log->sync_cond, &log->sync_lock, &ts) == ETIMEDOUT) {
            ok = done(opaque);
            break;
        }
    atomic_fetch_sub(&log->waiters, 1);
    pthread_mutex_unlock(&log->sync_lock);
    return ok;
}
