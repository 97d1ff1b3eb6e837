/* Per-hart software TLB: guest-virtual page -> host pointer, holding the
 * combined translation of the guest page table and the guest-physical map.
 *
 * Separate fetch/read/write arrays per privilege mode (U, S, M), so a
 * privilege switch needs no flush; each mode's entries also carry that
 * mode's PMP verdict. S-mode data accesses with mstatus.SUM set have arrays
 * of their own (TLB_S_SUM): Linux sets and clears SUM around every access
 * to user memory, and a flush at each change cost a refill of the TLB.
 * A write entry is only installed once the page's PTE is dirty and the
 * page is plain RAM: anything that must see writes (MMIO) simply gets no
 * write entry and takes the slow path. Dirty logging (mem/dirty_log.h) marks a page when its
 * write entry is installed and makes harts drop all write entries
 * (tlb_flush_writes) at each collect, so the next store to the page takes
 * the slow path and marks it again.
 *
 * Only RAM is ever cached here; MMIO accesses always take the slow path. */
#ifndef NIMBUS_CPU_TLB_H
#define NIMBUS_CPU_TLB_H

#include <stdint.h>
#include <string.h>

/* 1024 entries: a 1-hart Linux boot took 2.0 M misses with 256 and 1.1 M
 * with 1024; the kernel's code alone spans more pages than 256. */
#define TLB_BITS 10
#define TLB_SIZE (1u << TLB_BITS)
#define TLB_INVALID_TAG (~0ull)

enum tlb_regime { TLB_U = 0, TLB_S = 1, TLB_S_SUM = 2, TLB_M = 3, TLB_REGIMES = 4 };

struct tlb_entry {
    uint64_t tag;     /* virtual page address, or TLB_INVALID_TAG */
    uintptr_t addend; /* host address = addend + guest virtual address */
};

struct tlb_set {
    struct tlb_entry read[TLB_SIZE];
    struct tlb_entry write[TLB_SIZE];
    struct tlb_entry fetch[TLB_SIZE];
};

struct tlb {
    struct tlb_set set[TLB_REGIMES];
};

static inline void tlb_flush_all(struct tlb *tlb)
{
    memset(tlb, 0xff, sizeof(*tlb)); /* every tag becomes TLB_INVALID_TAG */
}

/* Drops the entries of the translated regimes (U and S), after a satp
 * write or an sfence.vma: M-mode's entries map physical addresses. */
_Static_assert(TLB_M == TLB_REGIMES - 1, "the translated regimes come first");
static inline void tlb_flush_translated(struct tlb *tlb)
{
    memset(tlb->set, 0xff, sizeof(tlb->set[0]) * TLB_M);
}

/* Drops every write entry (dirty logging); reads and fetches stay. */
static inline void tlb_flush_writes(struct tlb *tlb)
{
    for (int r = 0; r < TLB_REGIMES; r++)
        memset(tlb->set[r].write, 0xff, sizeof(tlb->set[r].write));
}

static inline unsigned tlb_index(uint64_t va)
{
    return (unsigned)(va >> 12) & (TLB_SIZE - 1);
}

/* Drops every cached translation of the page containing `va`. */
static inline void tlb_flush_page(struct tlb *tlb, uint64_t va)
{
    unsigned i = tlb_index(va);
    for (int r = 0; r < TLB_REGIMES; r++) {
        tlb->set[r].read[i].tag = TLB_INVALID_TAG;
        tlb->set[r].write[i].tag = TLB_INVALID_TAG;
        tlb->set[r].fetch[i].tag = TLB_INVALID_TAG;
    }
}

/* Fast-path lookup for an access of `size` bytes: hits only when the access
 * lies inside one cached page and is naturally aligned (misaligned accesses
 * take the slow path, which emulates them). Returns the host pointer or NULL. */
static inline void *tlb_lookup(const struct tlb_entry *array, uint64_t va, unsigned size)
{
    const struct tlb_entry *e = &array[tlb_index(va)];
    if (__builtin_expect(e->tag == (va & ~(uint64_t)(0xfff & ~(size - 1))), 1))
        return (void *)(e->addend + (uintptr_t)va);
    return NULL;
}

#endif
