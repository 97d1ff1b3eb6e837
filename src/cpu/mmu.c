/* Address translation (privileged spec 4.3-4.6: Sv39, Sv48, Sv57), physical
 * memory protection (3.7), and the slow paths of loads, stores and fetches:
 * TLB fill, MMIO dispatch, and emulation of misaligned accesses. */
#include "cpu/cpu_internal.h"

#include <string.h>

#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_G (1ull << 5)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)
#define PTE_PPN_SHIFT 10
#define PTE_PPN_MASK ((1ull << 44) - 1)
/* Bits 63:54: N (Svnapot), PBMT (Svpbmt) and reserved; none implemented. */
#define PTE_RESERVED (0x3ffull << 54)

static const enum exc_cause page_fault_cause[] = {
    [ACCESS_FETCH] = EXC_INSN_PAGE_FAULT,
    [ACCESS_LOAD] = EXC_LOAD_PAGE_FAULT,
    [ACCESS_STORE] = EXC_STORE_PAGE_FAULT,
};
static const enum exc_cause access_fault_cause[] = {
    [ACCESS_FETCH] = EXC_INSN_ACCESS,
    [ACCESS_LOAD] = EXC_LOAD_ACCESS,
    [ACCESS_STORE] = EXC_STORE_ACCESS,
};

static bool translation_on(const struct hart *h, enum priv_mode mode)
{
    return mode != PRIV_M && (h->arch.satp >> SATP_MODE_SHIFT) != 0;
}

static enum tlb_regime regime_of(enum priv_mode mode, bool sum)
{
    return mode == PRIV_M ? TLB_M : mode == PRIV_U ? TLB_U : sum ? TLB_S_SUM : TLB_S;
}

void mmu_update_regime(struct hart *h)
{
    /* SUM matters to loads and stores only: S-mode never fetches from a
     * user page (4.3.1). */
    enum tlb_regime data = regime_of(hart_data_priv(h), h->arch.mstatus & MSTATUS_SUM);
    h->tlb_fetch = h->tlb.set[regime_of(h->arch.priv, false)].fetch;
    h->tlb_read = h->tlb.set[data].read;
    h->tlb_write = h->tlb.set[data].write;
}

void hart_flush_tlb(struct hart *h)
{
    tlb_flush_all(&h->tlb);
}

void mmu_pmp_changed(struct hart *h)
{
    /* Each entry's range (3.7.1): TOR from the previous entry's address
     * (OFF or not) to its own, NA4 and NAPOT from the address's encoding. */
    uint64_t prev_top = 0;
    h->pmp_count = 0;
    for (int i = 0; i < 16; i++) {
        uint8_t cfg = h->arch.pmpcfg[i];
        uint64_t addr = h->arch.pmpaddr[i];
        uint64_t lo, hi;
        switch ((cfg >> 3) & 3) {
        case 0: /* OFF */
            prev_top = addr << 2;
            continue;
        case 1: /* TOR */
            lo = prev_top;
            hi = addr << 2;
            break;
        case 2: /* NA4 */
            lo = addr << 2;
            hi = lo + 4;
            break;
        default: { /* NAPOT */
            unsigned ones = (unsigned)__builtin_ctzll(~addr);
            if (ones >= 54) {
                lo = 0;
                hi = ~0ull;
            } else {
                lo = (addr & ~((1ull << ones) - 1)) << 2;
                hi = lo + (1ull << (ones + 3));
            }
        }
        }
        prev_top = addr << 2;
        h->pmp[h->pmp_count++] = (struct pmp_range){ .lo = lo, .hi = hi, .cfg = cfg };
    }
    hart_flush_tlb(h);
}

/* PMP (3.7.1): is [pa, pa+len) accessible for `type` in `mode`? The
 * lowest-numbered entry that matches any byte decides. */
static bool pmp_allows(const struct hart *h, uint64_t pa, uint64_t len, enum access_type type,
                       enum priv_mode mode)
{
    for (unsigned i = 0; i < h->pmp_count; i++) {
        const struct pmp_range *r = &h->pmp[i];
        if (pa + len <= r->lo || pa >= r->hi)
            continue;           /* no byte matches */
        if (pa < r->lo || pa + len > r->hi)
            return false;       /* partial match fails (3.7.1.3) */
        if (mode == PRIV_M && !(r->cfg & 0x80))
            return true;
        uint8_t need = type == ACCESS_FETCH ? 4 : type == ACCESS_STORE ? 2 : 1;
        return (r->cfg & need) != 0;
    }
    /* No entry matches: M-mode succeeds, S and U fail (16 entries are
     * implemented, active or not). */
    return mode == PRIV_M;
}

/* Walks the page table. Returns 0 and *pa, or the exception cause. */
static int page_walk(struct hart *h, uint64_t va, enum access_type type, enum priv_mode mode,
                     uint64_t *pa)
{
    unsigned satp_mode = (unsigned)(h->arch.satp >> SATP_MODE_SHIFT);
    int levels = satp_mode == 8 ? 3 : satp_mode == 9 ? 4 : 5;
    int va_bits = 12 + 9 * levels;
    /* VA bits above the top level must equal the top bit (4.3.1). */
    if ((int64_t)(va << (64 - va_bits)) >> (64 - va_bits) != (int64_t)va)
        return page_fault_cause[type];

    uint64_t table = (h->arch.satp & PTE_PPN_MASK) << 12;
    for (int level = levels - 1; level >= 0; level--) {
        uint64_t pte_pa = table + ((va >> (12 + 9 * level)) & 0x1ff) * 8;
        if (!pmp_allows(h, pte_pa, 8, ACCESS_LOAD, PRIV_S))
            return access_fault_cause[type];
        uint64_t *pte_ptr = guest_mem_ram_ptr(h->mem, pte_pa, 8);
        if (!pte_ptr)
            return access_fault_cause[type];
    retry:;
        uint64_t pte = __atomic_load_n(pte_ptr, __ATOMIC_ACQUIRE);
        if (!(pte & PTE_V) || (!(pte & PTE_R) && (pte & PTE_W)) || (pte & PTE_RESERVED))
            return page_fault_cause[type];
        uint64_t ppn = (pte >> PTE_PPN_SHIFT) & PTE_PPN_MASK;
        if (!(pte & (PTE_R | PTE_X))) {
            table = ppn << 12;
            continue;
        }
        /* Leaf: permissions (4.3.2 step 5). */
        bool mxr = h->arch.mstatus & MSTATUS_MXR;
        bool ok;
        switch (type) {
        case ACCESS_FETCH: ok = pte & PTE_X; break;
        case ACCESS_LOAD: ok = (pte & PTE_R) || (mxr && (pte & PTE_X)); break;
        default: ok = pte & PTE_W; break;
        }
        if (pte & PTE_U) {
            if (mode == PRIV_S && (type == ACCESS_FETCH || !(h->arch.mstatus & MSTATUS_SUM)))
                ok = false;
        } else if (mode == PRIV_U) {
            ok = false;
        }
        if (!ok)
            return page_fault_cause[type];
        /* A superpage's low PPN fields must be zero (step 6). */
        uint64_t low_mask = (1ull << (9 * level)) - 1;
        if (ppn & low_mask)
            return page_fault_cause[type];
        /* Hardware A/D update, atomically against other harts (step 7); the
         * write-back is a store to the page table, so PMP must allow it. */
        uint64_t want = pte | PTE_A | (type == ACCESS_STORE ? PTE_D : 0);
        if (want != pte) {
            if (!pmp_allows(h, pte_pa, 8, ACCESS_STORE, PRIV_S))
                return access_fault_cause[type];
            if (!__atomic_compare_exchange_n(pte_ptr, &pte, want, false, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE))
                goto retry;
            guest_mem_mark_dirty(h->mem, pte_pa, 8);  /* a write to the page table */
        }
        *pa = ((ppn & ~low_mask) << 12) | (va & ((1ull << (12 + 9 * level)) - 1));
        return 0;
    }
    return page_fault_cause[type];
}

static int translate(struct hart *h, uint64_t va, enum access_type type, uint64_t *pa)
{
    enum priv_mode mode = type == ACCESS_FETCH ? h->arch.priv : hart_data_priv(h);
    hart_stat_add(&h->stats.tlb_misses, 1);
    if (!translation_on(h, mode)) {
        *pa = va;
        return 0;
    }
    return page_walk(h, va, type, mode, pa);
}

int mmu_translate(struct hart *h, uint64_t va, enum access_type type, uint64_t *pa)
{
    return translate(h, va, type, pa);
}

/* Translates and checks PMP for one access that stays within a page;
 * installs a TLB entry when the whole page is RAM that PMP allows.
 * Returns 0 with *host (RAM) or *host = NULL and *pa (MMIO), or a cause. */
static int access_page(struct hart *h, uint64_t va, unsigned len, enum access_type type,
                       void **host, uint64_t *pa_out)
{
    uint64_t pa;
    int cause = translate(h, va, type, &pa);
    if (cause)
        return cause;
    enum priv_mode mode = type == ACCESS_FETCH ? h->arch.priv : hart_data_priv(h);
    if (!pmp_allows(h, pa, len, type, mode))
        return access_fault_cause[type];
    *pa_out = pa;
    uint8_t *page = guest_mem_ram_ptr(h->mem, pa & ~0xfffull, GUEST_PAGE_SIZE);
    if (!page) {
        *host = NULL;
        return type == ACCESS_FETCH ? EXC_INSN_ACCESS : 0;
    }
    *host = page + (pa & 0xfff);
    /* Dirty logging: every store that gets here is about to write the page,
     * through the entry installed below or *host; marking first is safe
     * because a collect makes the hart drop its write entries after
     * clearing the bits (mem/dirty_log.h). */
    if (type == ACCESS_STORE)
        guest_mem_mark_dirty(h->mem, pa & ~0xfffull, GUEST_PAGE_SIZE);
    if (pmp_allows(h, pa & ~0xfffull, GUEST_PAGE_SIZE, type, mode)) {
        struct tlb_entry *array = type == ACCESS_FETCH ? h->tlb_fetch
                                  : type == ACCESS_LOAD ? h->tlb_read : h->tlb_write;
        struct tlb_entry *e = &array[tlb_index(va)];
        e->tag = va & ~0xfffull;
        e->addend = (uintptr_t)page - (uintptr_t)(va & ~0xfffull);
    }
    return 0;
}

static uint64_t load_le(const uint8_t *p, unsigned size)
{
    switch (size) {
    case 1: return *p;
    case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
    default: { uint64_t v; memcpy(&v, p, 8); return v; }
    }
}

static void store_le(uint8_t *p, unsigned size, uint64_t v)
{
    switch (size) {
    case 1: *p = (uint8_t)v; break;
    case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
    default: memcpy(p, &v, 8); break;
    }
}

/* Translates both halves of an access of `size` bytes at `va` that crosses
 * a page boundary (misaligned, emulated): both must be RAM, since no device
 * access straddles pages. Nothing is read or written here, so a fault in
 * the second half leaves memory untouched. Returns 0 with host[] and *first
 * (bytes in the first page), or the cause with *fault_va set to the start
 * of the half that faulted. */
static int access_split(struct hart *h, uint64_t va, unsigned size, enum access_type type,
                        uint8_t *host[2], unsigned *first, uint64_t *fault_va)
{
    *first = (unsigned)(GUEST_PAGE_SIZE - (va & 0xfff));
    uint64_t half_va[2] = { va, va + *first };
    unsigned half_len[2] = { *first, size - *first };
    for (int i = 0; i < 2; i++) {
        void *p;
        uint64_t pa;
        int cause = access_page(h, half_va[i], half_len[i], type, &p, &pa);
        if (!cause && !p)
            cause = access_fault_cause[type];
        if (cause) {
            *fault_va = half_va[i];
            return cause;
        }
        host[i] = p;
    }
    return 0;
}

int mmu_load_slow(struct hart *h, uint64_t va, unsigned size, uint64_t *value)
{
    uint64_t page_off = va & 0xfff;
    void *host;
    uint64_t pa;
    int cause;
    if (page_off + size <= GUEST_PAGE_SIZE) {
        cause = access_page(h, va, size, ACCESS_LOAD, &host, &pa);
        if (cause)
            goto fault;
        if (host) {
            *value = load_le(host, size);
            return 0;
        }
        /* MMIO: only naturally aligned accesses reach devices. */
        if ((va & (size - 1)) || !guest_mem_mmio_read(h->mem, pa, size, value)) {
            cause = EXC_LOAD_ACCESS;
            goto fault;
        }
        return 0;
    }
    uint8_t *halves[2], buf[8];
    unsigned first;
    cause = access_split(h, va, size, ACCESS_LOAD, halves, &first, &va);
    if (cause)
        goto fault;
    memcpy(buf, halves[0], first);
    memcpy(buf + first, halves[1], size - first);
    *value = load_le(buf, size);
    return 0;
fault:
    hart_raise_exception(h, (enum exc_cause)cause, va);
    return cause;
}

int mmu_store_slow(struct hart *h, uint64_t va, unsigned size, uint64_t value)
{
    uint64_t page_off = va & 0xfff;
    void *host;
    uint64_t pa;
    int cause;
    /* A store may hit a page holding a reservation of this hart; LR/SC pairs
     * compare values, so nothing to do here. */
    if (page_off + size <= GUEST_PAGE_SIZE) {
        cause = access_page(h, va, size, ACCESS_STORE, &host, &pa);
        if (cause)
            goto fault;
        if (host) {
            store_le(host, size, value);
            return 0;
        }
        if ((va & (size - 1)) || !guest_mem_mmio_write(h->mem, pa, size, value)) {
            cause = EXC_STORE_ACCESS;
            goto fault;
        }
        return 0;
    }
    uint8_t *halves[2], buf[8];
    unsigned first;
    cause = access_split(h, va, size, ACCESS_STORE, halves, &first, &va);
    if (cause)
        goto fault;
    store_le(buf, size, value);
    memcpy(halves[0], buf, first);
    memcpy(halves[1], buf + first, size - first);
    return 0;
fault:
    hart_raise_exception(h, (enum exc_cause)cause, va);
    return cause;
}

int mmu_fetch_slow(struct hart *h, uint64_t pc, uint32_t *raw)
{
    void *host;
    uint64_t pa;
    int cause = access_page(h, pc, 2, ACCESS_FETCH, &host, &pa);
    if (cause) {
        hart_raise_exception(h, (enum exc_cause)cause, pc);
        return cause;
    }
    uint16_t lo;
    memcpy(&lo, host, 2);
    if ((lo & 3) != 3) {
        *raw = lo;
        return 0;
    }
    if ((pc & 0xfff) != 0xffe) {
        memcpy(raw, host, 4);
        return 0;
    }
    /* A 32-bit instruction straddling a page boundary. */
    cause = access_page(h, pc + 2, 2, ACCESS_FETCH, &host, &pa);
    if (cause) {
        hart_raise_exception(h, (enum exc_cause)cause, pc + 2);
        return cause;
    }
    uint16_t hi;
    memcpy(&hi, host, 2);
    *raw = (uint32_t)hi << 16 | lo;
    return 0;
}

int mmu_atomic_ptr(struct hart *h, uint64_t va, unsigned size, bool is_lr, void **host)
{
    int cause;
    if (va & (size - 1)) {
        cause = is_lr ? EXC_LOAD_MISALIGNED : EXC_STORE_MISALIGNED;
        goto fault;
    }
    void *p = tlb_lookup(is_lr ? h->tlb_read : h->tlb_write, va, size);
    if (p) {
        *host = p;
        return 0;
    }
    uint64_t pa;
    cause = access_page(h, va, size, is_lr ? ACCESS_LOAD : ACCESS_STORE, host, &pa);
    if (!cause && !*host)
        cause = is_lr ? EXC_LOAD_ACCESS : EXC_STORE_ACCESS; /* no atomics on MMIO */
    if (!cause)
        return 0;
fault:
    hart_raise_exception(h, (enum exc_cause)cause, va);
    return cause;
}
