/* Unit tests for address translation (cpu/mmu.c): page tables built by hand
 * in a small guest RAM and walked through mmu_translate() on a real hart,
 * for Sv39, Sv48 and Sv57:
 *
 *  - leaves at every level (4K, 2M, 1G, 512G, 256T pages), low and high half;
 *  - page faults: invalid PTE at each level, W without R, reserved bits
 *    63:54, misaligned superpages, a pointer PTE at the last level,
 *    non-canonical addresses;
 *  - permissions: R/W/X, U pages from S with and without SUM, S fetch from
 *    a U page, U access to S pages, MXR;
 *  - access faults when a PTE is outside RAM or PMP denies the walk;
 *  - A/D bits written to RAM by the walk;
 *  - bare mode, M-mode, and MPRV;
 *  - the TLB through hart_run(): a program in S-mode sees a changed PTE
 *    after sfence.vma, and SUM changes drop cached translations.
 *
 * The instruction words of the programs were assembled with GNU as. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_internal.h"
#include "cpu/hart.h"
#include "mem/guest_mem.h"

#include "check.h"

/* Every check in this file carries a context message. */
#undef CHECK
#define CHECK CHECK_MSG

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (16ull << 20)

/* Page tables live in [PT_BASE, PT_END); data pages above. */
#define PT_BASE (RAM_BASE + 0x100000)
#define PT_END  (RAM_BASE + 0x200000)

#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_G (1ull << 5)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)
#define PPN_MASK ((1ull << 44) - 1)

struct mode {
    const char *name;
    unsigned satp_mode;
    int levels;
};

static const struct mode modes[] = {
    { "sv39", 8, 3 },
    { "sv48", 9, 4 },
    { "sv57", 10, 5 },
};

/* Cause by access type (ACCESS_FETCH, ACCESS_LOAD, ACCESS_STORE). */
static const int page_fault[3] = { EXC_INSN_PAGE_FAULT, EXC_LOAD_PAGE_FAULT, EXC_STORE_PAGE_FAULT };
static const int access_fault[3] = { EXC_INSN_ACCESS, EXC_LOAD_ACCESS, EXC_STORE_ACCESS };
static const char *const type_name[3] = { "fetch", "load", "store" };

static struct guest_mem mem;
static struct timebase tb;
static struct hart *h;
static const struct mode *cur; /* mode under test, for messages */
static uint64_t pt_next;

static uint64_t *ram64(uint64_t pa)
{
    uint64_t *p = guest_mem_ram_ptr(&mem, pa, 8);
    if (!p) {
        printf("test bug: 0x%llx is not RAM\n", (unsigned long long)pa);
        exit(2);
    }
    return p;
}

static uint64_t page_size(int level)
{
    return 1ull << (12 + 9 * level);
}

static int va_bits(const struct mode *m)
{
    return 12 + 9 * m->levels;
}

static uint64_t sext_va(const struct mode *m, uint64_t va)
{
    int s = 64 - va_bits(m);
    return (uint64_t)((int64_t)(va << s) >> s);
}

static unsigned vpn(uint64_t va, int level)
{
    return (unsigned)(va >> (12 + 9 * level)) & 0x1ff;
}

static uint64_t pte_make(uint64_t pa, uint64_t flags)
{
    return ((pa >> 12) << 10) | flags;
}

static uint64_t pte_pa(uint64_t pte)
{
    return ((pte >> 10) & PPN_MASK) << 12;
}

/* Empties the page-table area; returns a fresh root table. */
static uint64_t pt_reset(void)
{
    memset(guest_mem_ram_ptr(&mem, PT_BASE, PT_END - PT_BASE), 0, PT_END - PT_BASE);
    pt_next = PT_BASE;
    uint64_t root = pt_next;
    pt_next += 4096;
    return root;
}

static uint64_t pt_alloc(void)
{
    if (pt_next >= PT_END) {
        printf("test bug: page-table area full\n");
        exit(2);
    }
    uint64_t pa = pt_next;
    pt_next += 4096;
    return pa;
}

/* The PTE for `va` at `level`, creating pointer PTEs above it as needed. */
static uint64_t *pte_slot(const struct mode *m, uint64_t root, uint64_t va, int level)
{
    uint64_t table = root;
    for (int l = m->levels - 1; l > level; l--) {
        uint64_t *p = ram64(table + vpn(va, l) * 8);
        if (!(*p & PTE_V))
            *p = pte_make(pt_alloc(), PTE_V);
        table = pte_pa(*p);
    }
    return ram64(table + vpn(va, level) * 8);
}

static uint64_t *map(const struct mode *m, uint64_t root, uint64_t va, int level, uint64_t pa,
                     uint64_t flags)
{
    uint64_t *p = pte_slot(m, root, va, level);
    *p = pte_make(pa, flags);
    return p;
}

/* Sets the translation regime directly, as the CSR code would. */
static void enter(const struct mode *m, uint64_t root, enum priv_mode priv, uint64_t mstatus)
{
    h->arch.satp = m ? ((uint64_t)m->satp_mode << SATP_MODE_SHIFT) | (root >> 12) : 0;
    h->arch.priv = priv;
    h->arch.mstatus = mstatus;
    hart_flush_tlb(h);
    mmu_update_regime(h);
}

static void open_pmp(void)
{
    memset(h->arch.pmpcfg, 0, sizeof(h->arch.pmpcfg));
    memset(h->arch.pmpaddr, 0, sizeof(h->arch.pmpaddr));
    h->arch.pmpaddr[0] = (1ull << 54) - 1; /* NAPOT, all of memory */
    h->arch.pmpcfg[0] = 0x18 | 0x7;        /* RWX */
    mmu_pmp_changed(h);
}

#define MODE_NAME (cur ? cur->name : "bare")

static void expect_pa(const char *what, uint64_t va, enum access_type t, uint64_t want)
{
    uint64_t pa = 0xdeadull;
    int r = mmu_translate(h, va, t, &pa);
    CHECK(r == 0 && pa == want, "%s %s: %s va 0x%llx -> cause %d pa 0x%llx, want pa 0x%llx",
          MODE_NAME, what, type_name[t], (unsigned long long)va, r, (unsigned long long)pa,
          (unsigned long long)want);
}

static void expect_fault(const char *what, uint64_t va, enum access_type t, int cause)
{
    uint64_t pa = 0;
    int r = mmu_translate(h, va, t, &pa);
    CHECK(r == cause, "%s %s: %s va 0x%llx -> cause %d (pa 0x%llx), want cause %d", MODE_NAME,
          what, type_name[t], (unsigned long long)va, r, (unsigned long long)pa, cause);
}

static void expect_pf_all(const char *what, uint64_t va)
{
    for (int t = 0; t < 3; t++)
        expect_fault(what, va, (enum access_type)t, page_fault[t]);
}

static void expect_af_all(const char *what, uint64_t va)
{
    for (int t = 0; t < 3; t++)
        expect_fault(what, va, (enum access_type)t, access_fault[t]);
}

/* A VA with a different index at every level (and the top bit of the
 * top index set when `high`), plus `off` inside a page of `level`. */
static uint64_t test_va(const struct mode *m, int level, bool high, uint64_t off)
{
    uint64_t va = 0;
    for (int l = m->levels - 1; l >= level; l--) {
        unsigned idx = (unsigned)(7 * l + 3);
        if (high && l == m->levels - 1)
            idx |= 0x100;
        va |= (uint64_t)idx << (12 + 9 * l);
    }
    return sext_va(m, va | off);
}

/* ---- tests on mmu_translate ---- */

static void test_leaf_levels(const struct mode *m)
{
    for (int level = 0; level < m->levels; level++) {
        for (int high = 0; high < 2; high++) {
            uint64_t root = pt_reset();
            uint64_t size = page_size(level);
            uint64_t off = size - 0x123;
            uint64_t va = test_va(m, level, high, off);
            /* 4K pages in RAM; superpages at an aligned PA (translation
             * does not care whether the target is RAM). */
            uint64_t base = level == 0 ? RAM_BASE + 0x400000 + 0x1000 * (uint64_t)high
                                       : (uint64_t)(3 + high) << (12 + 9 * level);
            map(m, root, va, level, base, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
            enter(m, root, PRIV_S, 0);
            char what[64];
            snprintf(what, sizeof(what), "level-%d leaf%s", level, high ? " (high half)" : "");
            for (int t = 0; t < 3; t++)
                expect_pa(what, va, (enum access_type)t, base + off);
            /* First byte of the page, and the neighbouring page unmapped. */
            expect_pa(what, va - off, ACCESS_LOAD, base);
            expect_fault(what, sext_va(m, va - off + size), ACCESS_LOAD, EXC_LOAD_PAGE_FAULT);
            /* The same leaf as a U page, from U-mode. */
            *pte_slot(m, root, va, level) |= PTE_U;
            enter(m, root, PRIV_U, 0);
            for (int t = 0; t < 3; t++)
                expect_pa(what, va, (enum access_type)t, base + off);
        }
    }
}

static void test_invalid_levels(const struct mode *m)
{
    uint64_t root = pt_reset();
    uint64_t va = test_va(m, 0, false, 0x888);
    uint64_t pa = RAM_BASE + 0x400000;
    map(m, root, va, 0, pa, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    enter(m, root, PRIV_S, 0);
    expect_pa("4K page", va, ACCESS_LOAD, pa + 0x888);
    for (int level = 0; level < m->levels; level++) {
        uint64_t *p = pte_slot(m, root, va, level);
        uint64_t saved = *p;
        char what[64];
        snprintf(what, sizeof(what), "V=0 at level %d", level);
        *p = saved & ~PTE_V;
        expect_pf_all(what, va);
        snprintf(what, sizeof(what), "zero PTE at level %d", level);
        *p = 0;
        expect_pf_all(what, va);
        *p = saved;
        expect_pa("restored", va, ACCESS_STORE, pa + 0x888);
    }
}

static void test_bad_ptes(const struct mode *m)
{
    uint64_t root = pt_reset();
    uint64_t va = test_va(m, 0, false, 0x10);
    uint64_t pa = RAM_BASE + 0x400000;
    uint64_t *leaf = map(m, root, va, 0, pa, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    enter(m, root, PRIV_S, 0);
    const uint64_t good = *leaf;

    *leaf = pte_make(pa, PTE_V | PTE_W | PTE_A | PTE_D);
    expect_pf_all("W without R", va);
    *leaf = pte_make(pa, PTE_V | PTE_W | PTE_X | PTE_A | PTE_D);
    expect_pf_all("W+X without R", va);

    /* Bits 63:54 (N, PBMT, reserved): none implemented, all must fault. */
    static const int rbits[] = { 54, 55, 58, 60, 61, 62, 63 };
    for (size_t i = 0; i < sizeof(rbits) / sizeof(rbits[0]); i++) {
        char what[64];
        snprintf(what, sizeof(what), "leaf with bit %d", rbits[i]);
        *leaf = good | (1ull << rbits[i]);
        expect_pf_all(what, va);
        *leaf = good;
        uint64_t *top = pte_slot(m, root, va, m->levels - 1);
        uint64_t saved = *top;
        snprintf(what, sizeof(what), "pointer PTE with bit %d", rbits[i]);
        *top = saved | (1ull << rbits[i]);
        expect_pf_all(what, va);
        *top = saved;
    }
    /* A pointer PTE may not have W set (W without R). */
    uint64_t *mid = pte_slot(m, root, va, 1);
    uint64_t saved = *mid;
    *mid = saved | PTE_W;
    expect_pf_all("pointer PTE with W", va);
    *mid = saved;

    /* A pointer PTE at level 0: the walk runs out of levels. */
    *leaf = pte_make(PT_BASE, PTE_V);
    expect_pf_all("pointer PTE at level 0", va);
    *leaf = good;
    expect_pa("restored", va, ACCESS_LOAD, pa + 0x10);

    /* Superpages whose low PPN fields are not zero. */
    for (int level = 1; level < m->levels; level++) {
        root = pt_reset();
        uint64_t sva = test_va(m, level, false, 0x40);
        uint64_t base = 5ull << (12 + 9 * level);
        uint64_t *p = map(m, root, sva, level, base, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
        enter(m, root, PRIV_S, 0);
        expect_pa("aligned superpage", sva, ACCESS_LOAD, base + 0x40);
        char what[64];
        snprintf(what, sizeof(what), "level-%d superpage, ppn[0]=1", level);
        *p = pte_make(base + 0x1000, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
        expect_pf_all(what, sva);
        snprintf(what, sizeof(what), "level-%d superpage, ppn[%d] low bit", level, level - 1);
        *p = pte_make(base + page_size(level - 1), PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
        expect_pf_all(what, sva);
    }
}

static void test_canonical(const struct mode *m)
{
    uint64_t root = pt_reset();
    int bits = va_bits(m);
    /* Map the top-level slots that the non-canonical addresses would index
     * if the walker ignored the upper bits. */
    uint64_t lo_top = 1ull << (bits - 1);         /* index 0x100 at the top */
    uint64_t hi_top = ~0ull ^ (1ull << (bits - 1)); /* index 0x0ff at the top */
    map(m, root, lo_top, m->levels - 1, 0, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    map(m, root, hi_top, m->levels - 1, 0, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    enter(m, root, PRIV_S, 0);
    expect_pa("canonical high address", sext_va(m, lo_top), ACCESS_LOAD, 0);
    expect_pf_all("non-canonical (top VA bit set, upper bits clear)", lo_top);
    expect_pf_all("non-canonical (top VA bit clear, upper bits set)", hi_top);
    expect_pf_all("non-canonical (bit 63 only)", 1ull << 63);
    expect_pf_all("non-canonical (bit just above the VA)", 1ull << bits);
}

static void test_permissions(const struct mode *m)
{
    uint64_t root = pt_reset();
    const uint64_t AD = PTE_A | PTE_D;
    struct page { uint64_t va, flags; } p_r = { 0x10000000, PTE_V | PTE_R | AD },
        p_x = { 0x10001000, PTE_V | PTE_X | AD },
        p_rw = { 0x10002000, PTE_V | PTE_R | PTE_W | AD },
        p_urwx = { 0x10003000, PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | AD },
        p_ux = { 0x10004000, PTE_V | PTE_X | PTE_U | AD },
        p_rx = { 0x10005000, PTE_V | PTE_R | PTE_X | AD },
        p_g = { 0x10006000, PTE_V | PTE_R | PTE_W | PTE_X | PTE_G | AD };
    const struct page *all[] = { &p_r, &p_x, &p_rw, &p_urwx, &p_ux, &p_rx, &p_g };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        map(m, root, all[i]->va, 0, RAM_BASE + 0x400000 + i * 0x1000, all[i]->flags);
#define PA_OF(p) (RAM_BASE + 0x400000 + (((p).va - 0x10000000) & ~0xfffull))

    /* S-mode, SUM=0, MXR=0 */
    enter(m, root, PRIV_S, 0);
    expect_pa("S, R page", p_r.va + 8, ACCESS_LOAD, PA_OF(p_r) + 8);
    expect_fault("S, R page", p_r.va, ACCESS_STORE, EXC_STORE_PAGE_FAULT);
    expect_fault("S, R page", p_r.va, ACCESS_FETCH, EXC_INSN_PAGE_FAULT);
    expect_pa("S, X page", p_x.va, ACCESS_FETCH, PA_OF(p_x));
    expect_fault("S, X page without MXR", p_x.va, ACCESS_LOAD, EXC_LOAD_PAGE_FAULT);
    expect_fault("S, X page", p_x.va, ACCESS_STORE, EXC_STORE_PAGE_FAULT);
    expect_pa("S, RW page", p_rw.va, ACCESS_STORE, PA_OF(p_rw));
    expect_pa("S, RW page", p_rw.va, ACCESS_LOAD, PA_OF(p_rw));
    expect_fault("S, RW page", p_rw.va, ACCESS_FETCH, EXC_INSN_PAGE_FAULT);
    expect_pa("S, RX page", p_rx.va, ACCESS_FETCH, PA_OF(p_rx));
    expect_pa("S, RX page", p_rx.va, ACCESS_LOAD, PA_OF(p_rx));
    expect_fault("S, RX page", p_rx.va, ACCESS_STORE, EXC_STORE_PAGE_FAULT);
    expect_pa("S, global page", p_g.va, ACCESS_STORE, PA_OF(p_g));
    expect_pf_all("S, U page without SUM", p_urwx.va);
    expect_pf_all("S, U X-only page without SUM", p_ux.va);

    /* S-mode, SUM=1: loads and stores to U pages allowed, fetch never. */
    enter(m, root, PRIV_S, MSTATUS_SUM);
    expect_pa("S+SUM, U page", p_urwx.va, ACCESS_LOAD, PA_OF(p_urwx));
    expect_pa("S+SUM, U page", p_urwx.va, ACCESS_STORE, PA_OF(p_urwx));
    expect_fault("S+SUM, U page", p_urwx.va, ACCESS_FETCH, EXC_INSN_PAGE_FAULT);
    expect_fault("S+SUM, U X-only page", p_ux.va, ACCESS_LOAD, EXC_LOAD_PAGE_FAULT);
    expect_pa("S+SUM, S page", p_rw.va, ACCESS_STORE, PA_OF(p_rw));

    /* MXR: loads from execute-only pages. */
    enter(m, root, PRIV_S, MSTATUS_MXR);
    expect_pa("S+MXR, X page", p_x.va + 0x10, ACCESS_LOAD, PA_OF(p_x) + 0x10);
    expect_fault("S+MXR, X page", p_x.va, ACCESS_STORE, EXC_STORE_PAGE_FAULT);
    expect_fault("S+MXR, U X page without SUM", p_ux.va, ACCESS_LOAD, EXC_LOAD_PAGE_FAULT);
    enter(m, root, PRIV_S, MSTATUS_MXR | MSTATUS_SUM);
    expect_pa("S+MXR+SUM, U X page", p_ux.va, ACCESS_LOAD, PA_OF(p_ux));

    /* U-mode: only U pages; SUM does not matter. */
    for (int sum = 0; sum < 2; sum++) {
        enter(m, root, PRIV_U, sum ? MSTATUS_SUM : 0);
        for (int t = 0; t < 3; t++)
            expect_pa("U, U page", p_urwx.va + 0xff8, (enum access_type)t, PA_OF(p_urwx) + 0xff8);
        expect_pf_all("U, S RW page", p_rw.va);
        expect_pf_all("U, S X page", p_x.va);
        expect_pf_all("U, S global page", p_g.va);
        expect_fault("U, S R page", p_r.va, ACCESS_LOAD, EXC_LOAD_PAGE_FAULT);
        expect_pa("U, U X page", p_ux.va, ACCESS_FETCH, PA_OF(p_ux));
        expect_fault("U, U X page without MXR", p_ux.va, ACCESS_LOAD, EXC_LOAD_PAGE_FAULT);
    }
    enter(m, root, PRIV_U, MSTATUS_MXR);
    expect_pa("U+MXR, U X page", p_ux.va, ACCESS_LOAD, PA_OF(p_ux));
    expect_fault("U+MXR, S X page", p_x.va, ACCESS_LOAD, EXC_LOAD_PAGE_FAULT);
#undef PA_OF
}

static void test_access_faults(const struct mode *m)
{
    uint64_t va = test_va(m, 0, false, 0x20);
    /* Root table outside RAM. */
    enter(m, 0x1000, PRIV_S, 0);
    expect_af_all("root table below RAM", va);
    enter(m, RAM_BASE + RAM_SIZE, PRIV_S, 0);
    expect_af_all("root table just past RAM", va);

    /* A pointer PTE to a table outside RAM, at each level. */
    for (int level = m->levels - 1; level >= 1; level--) {
        uint64_t root = pt_reset();
        map(m, root, va, 0, RAM_BASE + 0x400000, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
        *pte_slot(m, root, va, level) = pte_make(0x40000000, PTE_V);
        enter(m, root, PRIV_S, 0);
        char what[64];
        snprintf(what, sizeof(what), "level-%d table outside RAM", level - 1);
        expect_af_all(what, va);
    }

    /* PMP checks the walk's own reads as S-mode accesses. */
    uint64_t root = pt_reset();
    map(m, root, va, 0, RAM_BASE + 0x400000, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    enter(m, root, PRIV_S, 0);
    expect_pa("PMP open", va, ACCESS_LOAD, RAM_BASE + 0x400020);
    h->arch.pmpaddr[0] = PT_BASE >> 2; /* TOR [0, PT_BASE): page tables outside */
    h->arch.pmpcfg[0] = 0x08 | 0x7;
    mmu_pmp_changed(h);
    expect_af_all("PMP denies the page table", va);
    h->arch.pmpaddr[0] = PT_END >> 2;  /* TOR [0, PT_END): read-only is enough */
    h->arch.pmpcfg[0] = 0x08 | 0x1;
    mmu_pmp_changed(h);
    expect_pa("PMP allows reading the page table", va, ACCESS_LOAD, RAM_BASE + 0x400020);
    memset(h->arch.pmpcfg, 0, sizeof(h->arch.pmpcfg)); /* no entry active: S-mode gets nothing */
    mmu_pmp_changed(h);
    expect_af_all("PMP all off", va);
    open_pmp();
    expect_pa("PMP reopened", va, ACCESS_LOAD, RAM_BASE + 0x400020);
}

static void test_ad_bits(const struct mode *m)
{
    uint64_t root = pt_reset();
    uint64_t va = test_va(m, 0, false, 0x30);
    uint64_t pa = RAM_BASE + 0x400000;
    uint64_t *leaf = map(m, root, va, 0, pa, PTE_V | PTE_R | PTE_W | PTE_X);
    enter(m, root, PRIV_S, 0);
    /* Snapshot the pointer PTEs: the walk must not touch them. */
    uint64_t ptrs[5], *ptr_at[5];
    for (int l = 1; l < m->levels; l++) {
        ptr_at[l] = pte_slot(m, root, va, l);
        ptrs[l] = *ptr_at[l];
    }
    const uint64_t base = pte_make(pa, PTE_V | PTE_R | PTE_W | PTE_X);

    expect_pa("A/D", va, ACCESS_LOAD, pa + 0x30);
    CHECK(*leaf == (base | PTE_A), "%s: load sets A only: pte 0x%llx", m->name,
          (unsigned long long)*leaf);
    *leaf = base;
    expect_pa("A/D", va, ACCESS_FETCH, pa + 0x30);
    CHECK(*leaf == (base | PTE_A), "%s: fetch sets A only: pte 0x%llx", m->name,
          (unsigned long long)*leaf);
    *leaf = base;
    expect_pa("A/D", va, ACCESS_STORE, pa + 0x30);
    CHECK(*leaf == (base | PTE_A | PTE_D), "%s: store sets A and D: pte 0x%llx", m->name,
          (unsigned long long)*leaf);
    *leaf = base | PTE_D;
    expect_pa("A/D", va, ACCESS_LOAD, pa + 0x30);
    CHECK(*leaf == (base | PTE_A | PTE_D), "%s: load with D set: pte 0x%llx", m->name,
          (unsigned long long)*leaf);
    /* A faulting access leaves the PTE alone. */
    *leaf = pte_make(pa, PTE_V | PTE_R);
    expect_fault("A/D", va, ACCESS_STORE, EXC_STORE_PAGE_FAULT);
    CHECK(*leaf == pte_make(pa, PTE_V | PTE_R), "%s: faulting store changed the pte: 0x%llx",
          m->name, (unsigned long long)*leaf);
    expect_fault("A/D", va, ACCESS_FETCH, EXC_INSN_PAGE_FAULT);
    CHECK(*leaf == pte_make(pa, PTE_V | PTE_R), "%s: faulting fetch changed the pte: 0x%llx",
          m->name, (unsigned long long)*leaf);
    for (int l = 1; l < m->levels; l++)
        CHECK(*ptr_at[l] == ptrs[l], "%s: pointer PTE at level %d changed: 0x%llx", m->name, l,
              (unsigned long long)*ptr_at[l]);

    /* A superpage leaf gets its A/D bits too. */
    root = pt_reset();
    uint64_t sva = test_va(m, 1, false, 0x1234);
    uint64_t *sleaf = map(m, root, sva, 1, 0x40000000, PTE_V | PTE_R | PTE_W);
    enter(m, root, PRIV_S, 0);
    expect_pa("A/D superpage", sva, ACCESS_STORE, 0x40001234);
    CHECK(*sleaf == pte_make(0x40000000, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D),
          "%s: superpage store: pte 0x%llx", m->name, (unsigned long long)*sleaf);
}

static void test_bare_m_mprv(const struct mode *m)
{
    uint64_t root = pt_reset();
    uint64_t s_va = 0x20000000, u_va = 0x20001000;
    uint64_t s_pa = RAM_BASE + 0x400000, u_pa = RAM_BASE + 0x401000;
    map(m, root, s_va, 0, s_pa, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    map(m, root, u_va, 0, u_pa, PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D);
    const uint64_t weird = 0xfedcba9876543210ull; /* non-canonical in every mode */

    /* M-mode ignores satp for everything. */
    enter(m, root, PRIV_M, 0);
    for (int t = 0; t < 3; t++) {
        expect_pa("M-mode", s_va, (enum access_type)t, s_va);
        expect_pa("M-mode", weird, (enum access_type)t, weird);
    }

    /* MPRV with MPP=S: loads and stores translate as S; fetches do not. */
    uint64_t mpp_s = (uint64_t)PRIV_S << MSTATUS_MPP_SHIFT;
    uint64_t mpp_u = (uint64_t)PRIV_U << MSTATUS_MPP_SHIFT;
    uint64_t mpp_m = (uint64_t)PRIV_M << MSTATUS_MPP_SHIFT;
    enter(m, root, PRIV_M, MSTATUS_MPRV | mpp_s);
    expect_pa("MPRV/MPP=S", s_va + 4, ACCESS_LOAD, s_pa + 4);
    expect_pa("MPRV/MPP=S", s_va + 4, ACCESS_STORE, s_pa + 4);
    expect_pa("MPRV/MPP=S fetch", s_va + 4, ACCESS_FETCH, s_va + 4);
    expect_fault("MPRV/MPP=S", weird, ACCESS_LOAD, EXC_LOAD_PAGE_FAULT);
    expect_pa("MPRV/MPP=S fetch", weird, ACCESS_FETCH, weird);
    expect_fault("MPRV/MPP=S, U page", u_va, ACCESS_LOAD, EXC_LOAD_PAGE_FAULT);
    enter(m, root, PRIV_M, MSTATUS_MPRV | mpp_s | MSTATUS_SUM);
    expect_pa("MPRV/MPP=S+SUM, U page", u_va, ACCESS_LOAD, u_pa);
    /* MPRV with MPP=U: U permissions. */
    enter(m, root, PRIV_M, MSTATUS_MPRV | mpp_u);
    expect_pa("MPRV/MPP=U, U page", u_va, ACCESS_STORE, u_pa);
    expect_fault("MPRV/MPP=U, S page", s_va, ACCESS_STORE, EXC_STORE_PAGE_FAULT);
    /* MPRV with MPP=M: no translation. */
    enter(m, root, PRIV_M, MSTATUS_MPRV | mpp_m);
    expect_pa("MPRV/MPP=M", s_va, ACCESS_LOAD, s_va);
    /* MPRV only matters in M-mode. */
    enter(m, root, PRIV_S, MSTATUS_MPRV | mpp_u);
    expect_pa("S with MPRV/MPP=U set, S page", s_va, ACCESS_LOAD, s_pa);
    /* MPP=S without MPRV: M stays bare. */
    enter(m, root, PRIV_M, mpp_s);
    expect_pa("M with MPP=S, no MPRV", s_va, ACCESS_LOAD, s_va);
}

static void test_bare(void)
{
    cur = NULL;
    const uint64_t vas[] = { 0, 0x80001234, 0x123456789abcull, 0xfedcba9876543210ull };
    for (int priv = 0; priv < 2; priv++) {
        enter(NULL, 0, priv ? PRIV_S : PRIV_U, 0);
        for (size_t i = 0; i < sizeof(vas) / sizeof(vas[0]); i++)
            for (int t = 0; t < 3; t++)
                expect_pa(priv ? "bare S" : "bare U", vas[i], (enum access_type)t, vas[i]);
    }
    /* A root PPN with mode 0 means nothing. */
    h->arch.satp = 0x1234;
    h->arch.priv = PRIV_S;
    expect_pa("bare with a PPN", 0x5000, ACCESS_LOAD, 0x5000);
    h->arch.satp = 0;
}

/* ---- the TLB, through hart_run() ---- */

#define CODE_VA   0x10000000ull
#define DATA_VA   0x40000000ull
#define USER_VA   0x50000000ull
#define NX_VA     0x60000000ull
#define UNMAP_VA  0x70000000ull
#define CODE_PA   (RAM_BASE + 0x10000)
#define STUB_PA   (RAM_BASE + 0x20000)
#define P1        (RAM_BASE + 0x300000)
#define P2        (RAM_BASE + 0x301000)
#define PU        (RAM_BASE + 0x302000)
#define PN        (RAM_BASE + 0x303000)
#define V1        0x1111111111111111ull
#define V1B       0x5555555555555555ull
#define V2        0x2222222222222222ull
#define V4        0x4444444444444444ull
#define VU        0x7777777777777777ull

static const uint32_t program[] = {
    /* p1, CODE_VA + 0x00 */
    0x00053583, /* ld a1, 0(a0)     */
    0x10500073, /* wfi              */
    0x00053603, /* ld a2, 0(a0)     */
    0x12000073, /* sfence.vma       */
    0x00053683, /* ld a3, 0(a0)     */
    0x10500073, /* wfi              */
    0x00e53423, /* sd a4, 8(a0)     */
    0x00853783, /* ld a5, 8(a0)     */
    0x10500073, /* wfi              */
    0x12050073, /* sfence.vma a0    */
    0x00053803, /* ld a6, 0(a0)     */
    0x00853883, /* ld a7, 8(a0)     */
    0x10500073, /* wfi              */
    0x00043483, /* ld s1, 0(s0)     */
    0x10500073, /* wfi              */
    /* p2, CODE_VA + 0x3c */
    0x00093303, /* ld t1, 0(s2)     */
    0x1002b073, /* csrc sstatus, t0 */
    0x00093383, /* ld t2, 0(s2)     */
    0x10500073, /* wfi              */
    /* p3, CODE_VA + 0x4c */
    0x00098067, /* jr s3            */
};
static const uint32_t stub[] = { 0x10500073 /* wfi */ };

enum { A0 = 10, A1, A2, A3, A4, A5, A6, A7, S0 = 8, S1, T0 = 5, T1, T2, S2 = 18, S3 };

/* Runs the hart until it waits; returns how hart_run() ended. */
static enum hart_exit run(void)
{
    return hart_run(h, 1000);
}

static void start_s(const struct mode *m, uint64_t root, uint64_t pc, uint64_t mstatus)
{
    enter(m, root, PRIV_S, mstatus);
    h->arch.pc = pc;
}

static void expect_m_trap(const char *what, int cause, uint64_t tval, uint64_t epc)
{
    CHECK(h->arch.priv == PRIV_M && h->arch.mcause == (uint64_t)cause && h->arch.mtval == tval &&
          h->arch.mepc == epc && h->arch.pc == STUB_PA + 4,
          "%s %s: priv %d mcause %llu mtval 0x%llx mepc 0x%llx pc 0x%llx, want cause %d tval "
          "0x%llx epc 0x%llx", cur->name, what, h->arch.priv, (unsigned long long)h->arch.mcause,
          (unsigned long long)h->arch.mtval, (unsigned long long)h->arch.mepc, (unsigned long long)h->arch.pc,
          cause, (unsigned long long)tval, (unsigned long long)epc);
}

static void test_tlb_run(const struct mode *m)
{
    uint64_t root = pt_reset();
    guest_mem_write(&mem, CODE_PA, program, sizeof(program));
    guest_mem_write(&mem, STUB_PA, stub, sizeof(stub));
    uint64_t words[][2] = { { P1, V1 }, { P1 + 8, V1B }, { P2, V2 }, { P2 + 8, 0 }, { PU, VU } };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        *ram64(words[i][0]) = words[i][1];
    map(m, root, CODE_VA, 0, CODE_PA, PTE_V | PTE_R | PTE_X | PTE_A);
    uint64_t *data = map(m, root, DATA_VA, 0, P1, PTE_V | PTE_R | PTE_W);
    map(m, root, USER_VA, 0, PU, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D);
    map(m, root, NX_VA, 0, PN, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    h->arch.mtvec = STUB_PA;
    h->arch.medeleg = 0;
    memset(h->arch.x, 0, sizeof(h->arch.x));

    /* p1: load through a fresh translation. */
    start_s(m, root, CODE_VA, 0);
    h->arch.x[A0] = DATA_VA;
    enum hart_exit e = run();
    CHECK(e == HART_EXIT_WFI && h->arch.priv == PRIV_S && h->arch.pc == CODE_VA + 8,
          "%s p1 step 1: exit %d priv %d pc 0x%llx mcause %llu", m->name, e, h->arch.priv,
          (unsigned long long)h->arch.pc, (unsigned long long)h->arch.mcause);
    CHECK(h->arch.x[A1] == V1, "%s first load: 0x%llx", m->name, (unsigned long long)h->arch.x[A1]);
    CHECK(*data == pte_make(P1, PTE_V | PTE_R | PTE_W | PTE_A),
          "%s: load through hart_run sets A only: pte 0x%llx", m->name, (unsigned long long)*data);

    /* Remap the page behind the hart's back: after sfence.vma the new
     * mapping must be used (before it, either may be). */
    *data = pte_make(P2, PTE_V | PTE_R | PTE_W | PTE_A);
    e = run();
    CHECK(e == HART_EXIT_WFI && h->arch.pc == CODE_VA + 0x18, "%s p1 step 2: exit %d pc 0x%llx",
          m->name, e, (unsigned long long)h->arch.pc);
    CHECK(h->arch.x[A2] == V1 || h->arch.x[A2] == V2, "%s load before sfence: 0x%llx", m->name,
          (unsigned long long)h->arch.x[A2]);
    CHECK(h->arch.x[A3] == V2, "%s load after sfence.vma: 0x%llx, want the new page's 0x%llx",
          m->name, (unsigned long long)h->arch.x[A3], (unsigned long long)V2);

    /* Store through the new mapping: D gets set, RAM of P2 changes. */
    h->arch.x[A4] = V4;
    e = run();
    CHECK(e == HART_EXIT_WFI && h->arch.pc == CODE_VA + 0x24, "%s p1 step 3: exit %d pc 0x%llx",
          m->name, e, (unsigned long long)h->arch.pc);
    CHECK(h->arch.x[A5] == V4 && *ram64(P2 + 8) == V4 && *ram64(P1 + 8) == V1B,
          "%s store: a5 0x%llx P2+8 0x%llx P1+8 0x%llx", m->name, (unsigned long long)h->arch.x[A5],
          (unsigned long long)*ram64(P2 + 8), (unsigned long long)*ram64(P1 + 8));
    CHECK(*data == pte_make(P2, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D),
          "%s: store through hart_run sets D: pte 0x%llx", m->name, (unsigned long long)*data);

    /* Back to P1, flushed with the address form of sfence.vma. */
    *data = pte_make(P1, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    e = run();
    CHECK(e == HART_EXIT_WFI && h->arch.pc == CODE_VA + 0x34, "%s p1 step 4: exit %d pc 0x%llx",
          m->name, e, (unsigned long long)h->arch.pc);
    CHECK(h->arch.x[A6] == V1 && h->arch.x[A7] == V1B,
          "%s after sfence.vma a0: a6 0x%llx a7 0x%llx, want the old page", m->name,
          (unsigned long long)h->arch.x[A6], (unsigned long long)h->arch.x[A7]);

    /* A load from an unmapped address traps to M with the VA. */
    h->arch.x[S0] = UNMAP_VA + 0x18;
    e = run();
    CHECK(e == HART_EXIT_WFI, "%s p1 step 5: exit %d", m->name, e);
    expect_m_trap("unmapped load", EXC_LOAD_PAGE_FAULT, UNMAP_VA + 0x18, CODE_VA + 0x34);
    CHECK(((h->arch.mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT) == PRIV_S, "%s MPP after trap",
          m->name);

    /* p2: clearing SUM must drop the cached U-page translation. */
    start_s(m, root, CODE_VA + 0x3c, MSTATUS_SUM);
    h->arch.x[T0] = MSTATUS_SUM;
    h->arch.x[S2] = USER_VA + 0x10;
    *ram64(PU + 0x10) = VU;
    e = run();
    CHECK(e == HART_EXIT_WFI && h->arch.x[T1] == VU, "%s p2: exit %d t1 0x%llx", m->name, e,
          (unsigned long long)h->arch.x[T1]);
    expect_m_trap("U page after SUM cleared", EXC_LOAD_PAGE_FAULT, USER_VA + 0x10,
                  CODE_VA + 0x44);

    /* p3: jumping to a non-executable page is an instruction page fault. */
    start_s(m, root, CODE_VA + 0x4c, 0);
    h->arch.x[S3] = NX_VA + 0x100;
    e = run();
    CHECK(e == HART_EXIT_WFI, "%s p3: exit %d", m->name, e);
    expect_m_trap("fetch from NX page", EXC_INSN_PAGE_FAULT, NX_VA + 0x100, NX_VA + 0x100);
}

int main(void)
{
    if (guest_mem_init(&mem, RAM_BASE, RAM_SIZE) != 0) {
        printf("guest_mem_init failed\n");
        return 2;
    }
    timebase_init(&tb);
    h = calloc(1, sizeof(*h));
    if (!h || hart_init(h, 0, &mem, &tb, RAM_BASE) != 0) {
        printf("hart_init failed\n");
        return 2;
    }
    open_pmp();
    test_bare();
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        cur = &modes[i];
        test_leaf_levels(cur);
        test_invalid_levels(cur);
        test_bad_ptes(cur);
        test_canonical(cur);
        test_permissions(cur);
        test_access_faults(cur);
        test_ad_bits(cur);
        test_bare_m_mprv(cur);
        test_tlb_run(cur);
    }
    hart_destroy(h);
    free(h);
    guest_mem_destroy(&mem);
    return check_summary("mmu");
}
