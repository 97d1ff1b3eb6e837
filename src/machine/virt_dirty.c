/* Dirty-page logging of the virt machine (virt_dirty.h): the bitmap lives in
 * the RAM's dirty log (mem/dirty_log.h), the harts' side of a collect in
 * cpu/hart.h; here the VM-level sequence, with the hart threads running or
 * the VM paused.
 *
 * Lock order: the dirty log's sync_lock is never held together with
 * pause_lock here (dirty_log_wait returns before pause_lock is taken). */
#include "machine/virt_dirty.h"

#include <errno.h>
#include <inttypes.h>
#include <time.h>

#include "base/errmsg.h"

/* How long a collect waits for the harts, and how often it looks at the
 * VM's state (stop, pause) while it waits. */
#define COLLECT_TIMEOUT_MS 30000
#define COLLECT_POLL_MS    10

int virt_dirty_start(struct virt_machine *m, char *err, size_t errlen)
{
    if (dirty_log_on(&m->mem.dirty))
        return errmsg(err, errlen, -EALREADY, "wrong state: dirty logging is on already");
    if (!m->mem.dirty.bits)
        return errmsg(err, errlen, -ENOMEM, "no dirty bitmap for guest RAM");
    dirty_log_enable(&m->mem.dirty);
    return 0;
}

int virt_dirty_stop(struct virt_machine *m, char *err, size_t errlen)
{
    if (!dirty_log_on(&m->mem.dirty))
        return errmsg(err, errlen, -EINVAL, "wrong state: dirty logging is off");
    dirty_log_disable(&m->mem.dirty);
    return 0;
}

size_t virt_dirty_bitmap_words(const struct virt_machine *m)
{
    return dirty_log_words(&m->mem.dirty);
}

struct acks {
    struct virt_machine *m;
    uint64_t ticket[VIRT_MAX_HARTS];
};

static bool all_acked(void *opaque)
{
    struct acks *a = opaque;
    for (unsigned i = 0; i < a->m->nharts; i++)
        if (!hart_drop_writes_done(a->m->harts[i], a->ticket[i]))
            return false;
    return true;
}

/* With pause_lock held and every hart thread waiting at its pause point
 * (they need the lock to leave it), serve the harts that have not answered. */
static bool serve_paused(struct virt_machine *m, struct acks *a)
{
    bool served = false;
    pthread_mutex_lock(&m->pause_lock);
    if (m->harts_waiting == m->nharts) {
        for (unsigned i = 0; i < m->nharts; i++)
            if (!hart_drop_writes_done(m->harts[i], a->ticket[i]))
                hart_drop_writes(m->harts[i]);
        served = true;
    }
    pthread_mutex_unlock(&m->pause_lock);
    return served;
}

/* Puts the pages of a failed collect back into the log. */
static void remark(struct dirty_log *log, const uint64_t *bitmap, size_t words)
{
    for (size_t w = 0; w < words; w++)
        for (uint64_t bits = bitmap[w]; bits; bits &= bits - 1)
            dirty_log_mark(log, w * 64 + (uint64_t)__builtin_ctzll(bits), 1);
}

int64_t virt_dirty_collect(struct virt_machine *m, uint64_t *bitmap, size_t words, char *err,
                           size_t errlen)
{
    struct dirty_log *log = &m->mem.dirty;
    if (!dirty_log_on(log))
        return errmsg(err, errlen, -EINVAL, "wrong state: dirty logging is off");
    if (words < dirty_log_words(log))
        return errmsg(err, errlen, -EINVAL, "dirty bitmap of %zu words, %zu needed", words,
                      dirty_log_words(log));
    /* (1) fetch and clear. */
    int64_t n = dirty_log_collect(log, bitmap, words);
    if (n < 0)
        return errmsg(err, errlen, (int)n, "cannot collect the dirty bitmap");
    /* The monitor clears a bare-metal program's HTIF tohost word in place
     * (virt.c, not through guest_mem_write): report its page every time, so
     * no such write is ever missed. */
    if (m->tohost && m->tohost >= m->mem.ram_base) {
        uint64_t pfn = (m->tohost - m->mem.ram_base) >> GUEST_PAGE_SHIFT;
        if (pfn / 64 < words && !(bitmap[pfn / 64] & (1ull << (pfn % 64)))) {
            bitmap[pfn / 64] |= 1ull << (pfn % 64);
            n++;
        }
    }
    /* (2) every hart drops its write entries and acknowledges. */
    struct acks a = { .m = m };
    for (unsigned i = 0; i < m->nharts; i++)
        a.ticket[i] = hart_request_drop_writes(m->harts[i]);
    for (unsigned waited = 0;; waited += COLLECT_POLL_MS) {
        /* Harts waiting at a pause point serve nothing until resumed. */
        if (all_acked(&a) || serve_paused(m, &a) ||
            dirty_log_wait(log, all_acked, &a, COLLECT_POLL_MS))
            break;
        if (atomic_load(&m->stop) != VIRT_RUNNING) {
            remark(log, bitmap, words);
            return errmsg(err, errlen, -ESHUTDOWN, "wrong state: the VM stopped");
        }
        if (waited >= COLLECT_TIMEOUT_MS) {
            remark(log, bitmap, words);
            return errmsg(err, errlen, -ETIMEDOUT, "harts did not drop their write entries "
                          "within %u ms", COLLECT_TIMEOUT_MS);
        }
    }
    /* (3) the caller may read the pages now. */
    return n;
}
