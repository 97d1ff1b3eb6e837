/* Dirty-page logging of the virt machine's RAM (mem/dirty_log.h), for diff
 * snapshots and pre-copy migration rounds: start, collect while the harts
 * run (or while paused), stop.
 *
 * Guarantee: copy the pages a collect reports (after it returned), and the
 * copy of every page the guest or a device wrote since the previous
 * collect is at least as new as the collect's start; whatever is written
 * after that is reported by the next collect. So with the VM paused and
 * quiesced (virt_pause), a last collect plus a copy of its pages makes the
 * copy equal to RAM. The first collect after start reports every page.
 *
 * Threads: one control thread, not a hart thread, and not at the same time
 * as virt_reset(). Works while the hart threads run (vm/) or the VM is
 * paused; a collect with no hart threads running at all times out. */
#ifndef NIMBUS_MACHINE_VIRT_DIRTY_H
#define NIMBUS_MACHINE_VIRT_DIRTY_H

#include <stddef.h>
#include <stdint.h>

#include "machine/virt.h"

/* Turns logging on (every page dirty). Returns 0 or -EALREADY. */
int virt_dirty_start(struct virt_machine *m, char *err, size_t errlen);
/* Turns logging off. Returns 0 or -EINVAL when it was not on. */
int virt_dirty_stop(struct virt_machine *m, char *err, size_t errlen);

/* Words a collect bitmap needs: one bit per 4 KiB page of RAM. */
size_t virt_dirty_bitmap_words(const struct virt_machine *m);

/* Hands out the pages dirtied since the last collect (or since start) in
 * bitmap[0, words): bit (pfn % 64) of word (pfn / 64), pfn counted in 4 KiB
 * pages from the start of RAM; those bits are clear afterwards. Does the
 * whole sequence of mem/dirty_log.h: fetch and clear the bits, then every
 * hart drops its write TLB entries and acknowledges (at its next
 * instruction boundary; a parked hart is woken for it, the harts of a
 * paused VM are served directly), then returns: only now read the pages.
 * Returns the number of dirty pages, or -EINVAL (logging off, bitmap too
 * short), -ESHUTDOWN (the VM stopped meanwhile) or -ETIMEDOUT (harts did
 * not answer); after an error, every page it fetched is marked again. */
int64_t virt_dirty_collect(struct virt_machine *m, uint64_t *bitmap, size_t words, char *err,
                           size_t errlen);

#endif
