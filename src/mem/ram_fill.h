/* Guest RAM filled on demand through userfaultfd(2): RAM stays anonymous
 * memory, and a page the guest (or a device, or the kernel on our behalf)
 * touches for the first time is fetched from a page source - a snapshot's
 * memory file now, the migration stream later (post-copy) - by the filler's
 * own thread, which in between fills the rest in the background (sequential
 * prefetch), so the guest runs at once and all of RAM is soon local.
 *
 * Unlike a private mapping of the memory file (guest_mem_map_file), the
 * pages become ordinary anonymous memory: a reset, the balloon's discards
 * and a later snapshot see RAM as if it had always been there. Needs
 * userfaultfd for kernel faults too (a disk write from a guest buffer): root,
 * or vm.unprivileged_userfaultfd = 1.
 *
 * Threads: start/stop on the control thread; the filler runs its own thread
 * until every page is present (then it unregisters and ends) or stop. */
#ifndef NIMBUS_MEM_RAM_FILL_H
#define NIMBUS_MEM_RAM_FILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem/guest_mem.h"

struct ram_page_source {
    /* Copies `npages` pages of RAM starting at page `pfn` into `buf`.
     * Returns 0, or -errno (the filler then stops, and the faulting access
     * gets zeros: the source is gone). Filler's thread. */
    int (*read)(void *opaque, uint64_t pfn, uint64_t npages, void *buf);
    /* The first page at or after `pfn` that may hold data (a hole's pages
     * read as zero and are mapped to the zero page in bulk); npages if
     * none. NULL: every page may. */
    uint64_t (*next_data)(void *opaque, uint64_t pfn);
    /* The first page at or after `pfn` (a data page) that is in a hole;
     * npages if none. NULL: none. */
    uint64_t (*next_hole)(void *opaque, uint64_t pfn);
    /* Only pages something touches are fetched: no background fill (a
     * post-copy migration drives its own order). */
    bool no_prefetch;
    /* Post-copy: pages arrive by themselves, through ram_fill_place() from
     * another thread. A fault then only asks for its page (request, which
     * must not wait for it) and the faulting access sleeps in the kernel
     * until the page is placed. NULL: faults read() the page themselves.
     * Returns 0 or -errno (the filler stops). Filler's thread. */
    int (*request)(void *opaque, uint64_t pfn);
    /* Pages already in RAM before the start (NULL: none): never fetched,
     * never placed. Copied by ram_fill_start. */
    const uint64_t *present;
    /* Called once when the filler ends (may be NULL): frees `opaque`. */
    void (*release)(void *opaque);
    void *opaque;
};

struct ram_fill_stats {
    uint64_t faults;        /* pages fetched because something touched them */
    uint64_t prefetched;    /* pages filled in the background */
    uint64_t zero;          /* pages mapped to zero (holes) */
    uint64_t done_us;       /* from start until every page was present (0: not yet) */
};

struct ram_filler;

/* Registers all of RAM (which must be untouched: no page present yet) and
 * starts the filler; on success it owns the source (release). Returns 0, or
 * -errno with a message (-EPERM: userfaultfd not allowed). */
int ram_fill_start(struct guest_mem *mem, const struct ram_page_source *src,
                   struct ram_filler **out, char *err, size_t errlen);

/* Puts `n` pages at `pfn` in place: a copy of `data`, or zero pages
 * (data NULL), waking whatever waits on them. A page already present is
 * left as it is. Once every page is present the filler unregisters RAM
 * (done_us). Any thread but the filler's; -errno on a userfaultfd error. */
int ram_fill_place(struct ram_filler *f, uint64_t pfn, uint64_t n, const void *data);

/* Ends the filler, leaving RAM registered no more; pages never fetched read
 * as zero afterwards, so stop only when RAM is thrown away or reset. NULL
 * is fine. */
void ram_fill_stop(struct ram_filler *f);

void ram_fill_get_stats(struct ram_filler *f, struct ram_fill_stats *st);

/* The pages present now (made so by the filler or ram_fill_place, or
 * present from the start) into `bitmap` ((npages + 63) / 64 words);
 * returns how many. Any thread: a page placed meanwhile may or may not be
 * in it (post-copy recovery takes it while nothing places pages). */
uint64_t ram_fill_present(struct ram_filler *f, uint64_t *bitmap);
/* Whether page pfn is present. Any thread. */
bool ram_fill_has(struct ram_filler *f, uint64_t pfn);

#endif
