/* Control and status registers (privileged spec ch. 2, 3.1, 4.1; Sstc;
 * unprivileged spec ch. 10 (Zicntr) and 11.2 (fcsr)).
 * Each access checks privilege and read-only-ness from the CSR number
 * (bits 9:8 lowest privilege, bits 11:10 == 3 read-only) and then the
 * per-register rules; anything not implemented is an illegal instruction. */
#include "cpu/cpu_internal.h"
#include "cpu/csr.h"


#define SSTATUS_MASK (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_UBE | MSTATUS_SPP | MSTATUS_VS | \
                      MSTATUS_FS | MSTATUS_XS | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_UXL |  \
                      MSTATUS_SD)
#define MSTATUS_WRITABLE (MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE |          \
                          MSTATUS_SPP | MSTATUS_MPP | MSTATUS_FS | MSTATUS_MPRV |            \
                          MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR)
#define MIE_MASK (MIP_SSIP | MIP_MSIP | MIP_STIP | MIP_MTIP | MIP_SEIP | MIP_MEIP)
#define MIDELEG_MASK (MIP_SSIP | MIP_STIP | MIP_SEIP)
/* All synchronous exceptions but ecall from M can be delegated. */
#define MEDELEG_MASK 0xb3ffull
#define COUNTEREN_MASK 0xffffffffull

static uint64_t mstatus_read(const struct hart *h)
{
    uint64_t s = h->arch.mstatus;
    if ((s & MSTATUS_FS) == MSTATUS_FS)
        s |= MSTATUS_SD;
    return s | (2ull << 32) | (2ull << 34); /* UXL = SXL = 64 */
}

static void mstatus_write(struct hart *h, uint64_t value, uint64_t mask)
{
    uint64_t old = h->arch.mstatus;
    uint64_t s = (old & ~mask) | (value & mask);
    /* MPP is WARL: the reserved encoding 2 keeps the previous mode. */
    if (((s & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT) == 2)
        s = (s & ~MSTATUS_MPP) | (old & MSTATUS_MPP);
    h->arch.mstatus = s & ~MSTATUS_SD;
    if ((old ^ s) & (MSTATUS_MPRV | MSTATUS_MPP | MSTATUS_SUM | MSTATUS_MXR)) {
        /* MXR changes what a cached translation allows; SUM selects arrays
         * of their own (tlb.h). */
        if ((old ^ s) & MSTATUS_MXR)
            hart_flush_tlb(h);
        mmu_update_regime(h);
    }
}

/* Zicntr/Zihpm access from S/U (privileged spec 3.1.11, 4.1.4). */
static bool counter_allowed(const struct hart *h, unsigned csr)
{
    uint64_t bit = 1ull << (csr & 31);
    if (h->arch.priv < PRIV_M && !(h->arch.mcounteren & bit))
        return false;
    if (h->arch.priv == PRIV_U && !(h->arch.scounteren & bit))
        return false;
    return true;
}

static bool fs_enabled(const struct hart *h)
{
    return (h->arch.mstatus & MSTATUS_FS) != 0;
}

static void fs_dirty(struct hart *h)
{
    h->arch.mstatus |= MSTATUS_FS;
}

int csr_read(struct hart *h, unsigned csr, uint64_t *v)
{
    if (((csr >> 8) & 3) > h->arch.priv)
        return -1;
    switch (csr) {
    case CSR_FFLAGS: if (!fs_enabled(h)) return -1; *v = h->arch.fp.fflags; return 0;
    case CSR_FRM: if (!fs_enabled(h)) return -1; *v = h->arch.fp.frm; return 0;
    case CSR_FCSR: if (!fs_enabled(h)) return -1; *v = h->arch.fp.frm << 5 | h->arch.fp.fflags; return 0;
    case CSR_CYCLE:
        if (!counter_allowed(h, csr)) return -1;
        *v = hart_counter_base(h) + (uint64_t)h->arch.mcycle_offset;
        return 0;
    case CSR_TIME:
        if (!counter_allowed(h, csr)) return -1;
        *v = timebase_now(h->timebase);
        return 0;
    case CSR_INSTRET:
        if (!counter_allowed(h, csr)) return -1;
        *v = hart_counter_base(h) + (uint64_t)h->arch.minstret_offset;
        return 0;
    case CSR_SSTATUS: *v = mstatus_read(h) & SSTATUS_MASK; return 0;
    case CSR_SIE: *v = h->arch.mie & h->arch.mideleg; return 0;
    case CSR_STVEC: *v = h->arch.stvec; return 0;
    case CSR_SCOUNTEREN: *v = h->arch.scounteren; return 0;
    case CSR_SENVCFG: *v = h->arch.senvcfg; return 0;
    case CSR_SSCRATCH: *v = h->arch.sscratch; return 0;
    case CSR_SEPC: *v = h->arch.sepc; return 0;
    case CSR_SCAUSE: *v = h->arch.scause; return 0;
    case CSR_STVAL: *v = h->arch.stval; return 0;
    case CSR_SIP: *v = hart_mip(h) & h->arch.mideleg; return 0;
    case CSR_STIMECMP:
        if (h->arch.priv < PRIV_M && (!(h->arch.mcounteren & 2) || !(h->arch.menvcfg & MENVCFG_STCE)))
            return -1;
        *v = h->arch.stimecmp;
        return 0;
    case CSR_SATP:
        if (h->arch.priv == PRIV_S && (h->arch.mstatus & MSTATUS_TVM)) return -1;
        *v = h->arch.satp;
        return 0;
    case CSR_MVENDORID: case CSR_MARCHID: case CSR_MIMPID: case CSR_MCONFIGPTR:
        *v = 0;
        return 0;
    case CSR_MHARTID: *v = h->hartid; return 0;
    case CSR_MSTATUS: *v = mstatus_read(h); return 0;
    case CSR_MISA: *v = h->arch.misa; return 0;
    case CSR_MEDELEG: *v = h->arch.medeleg; return 0;
    case CSR_MIDELEG: *v = h->arch.mideleg; return 0;
    case CSR_MIE: *v = h->arch.mie; return 0;
    case CSR_MTVEC: *v = h->arch.mtvec; return 0;
    case CSR_MCOUNTEREN: *v = h->arch.mcounteren; return 0;
    case CSR_MENVCFG: *v = h->arch.menvcfg; return 0;
    case CSR_MCOUNTINHIBIT: *v = h->arch.mcountinhibit; return 0;
    case CSR_MSCRATCH: *v = h->arch.mscratch; return 0;
    case CSR_MEPC: *v = h->arch.mepc; return 0;
    case CSR_MCAUSE: *v = h->arch.mcause; return 0;
    case CSR_MTVAL: *v = h->arch.mtval; return 0;
    case CSR_MIP: *v = hart_mip(h); return 0;
    case CSR_MCYCLE: *v = hart_counter_base(h) + (uint64_t)h->arch.mcycle_offset; return 0;
    case CSR_MINSTRET: *v = hart_counter_base(h) + (uint64_t)h->arch.minstret_offset; return 0;
    }
    if (csr >= CSR_HPMCOUNTER3 && csr <= CSR_HPMCOUNTER31) {
        if (!counter_allowed(h, csr)) return -1;
        *v = 0;
        return 0;
    }
    if ((csr >= CSR_MHPMCOUNTER3 && csr <= CSR_MHPMCOUNTER31) ||
        (csr >= CSR_MHPMEVENT3 && csr <= CSR_MHPMEVENT31)) {
        *v = 0;
        return 0;
    }
    if (csr >= CSR_PMPCFG0 && csr <= CSR_PMPCFG15) {
        if (csr & 1) return -1; /* odd pmpcfg do not exist on RV64 */
        unsigned first = (csr - CSR_PMPCFG0) * 4;
        *v = 0;
        for (unsigned i = 0; i < 8; i++)
            if (first + i < 16)
                *v |= (uint64_t)h->arch.pmpcfg[first + i] << (8 * i);
        return 0;
    }
    if (csr >= CSR_PMPADDR0 && csr <= CSR_PMPADDR63) {
        unsigned i = csr - CSR_PMPADDR0;
        *v = i < 16 ? h->arch.pmpaddr[i] : 0;
        return 0;
    }
    return -1;
}

static void pmpcfg_write(struct hart *h, unsigned first, uint64_t value)
{
    for (unsigned i = 0; i < 8 && first + i < 16; i++) {
        uint8_t cfg = (uint8_t)(value >> (8 * i));
        if (h->arch.pmpcfg[first + i] & 0x80)
            continue; /* locked */
        cfg &= 0x9f;  /* L, A, X, W, R */
        if ((cfg & 3) == 2)
            cfg &= ~3; /* R=0 W=1 is reserved: drop W */
        h->arch.pmpcfg[first + i] = cfg;
    }
    mmu_pmp_changed(h);
}

int csr_write(struct hart *h, unsigned csr, uint64_t v)
{
    if (((csr >> 8) & 3) > h->arch.priv || (csr >> 10) == 3)
        return -1;
    switch (csr) {
    case CSR_FFLAGS: if (!fs_enabled(h)) return -1; h->arch.fp.fflags = v & 0x1f; fs_dirty(h); return 0;
    case CSR_FRM: if (!fs_enabled(h)) return -1; h->arch.fp.frm = v & 7; fs_dirty(h); return 0;
    case CSR_FCSR:
        if (!fs_enabled(h)) return -1;
        h->arch.fp.fflags = v & 0x1f;
        h->arch.fp.frm = (v >> 5) & 7;
        fs_dirty(h);
        return 0;
    case CSR_SSTATUS: mstatus_write(h, v, SSTATUS_MASK & MSTATUS_WRITABLE); return 0;
    case CSR_SIE: h->arch.mie = (h->arch.mie & ~h->arch.mideleg) | (v & h->arch.mideleg & MIE_MASK); return 0;
    case CSR_STVEC: h->arch.stvec = v & ~2ull; return 0;
    case CSR_SCOUNTEREN: h->arch.scounteren = v & COUNTEREN_MASK; return 0;
    case CSR_SENVCFG: h->arch.senvcfg = v & 1; return 0;
    case CSR_SSCRATCH: h->arch.sscratch = v; return 0;
    case CSR_SEPC: h->arch.sepc = v & ~1ull; return 0;
    case CSR_SCAUSE: h->arch.scause = v; return 0;
    case CSR_STVAL: h->arch.stval = v; return 0;
    case CSR_SIP: {
        uint64_t mask = MIP_SSIP & h->arch.mideleg;
        if (v & mask) atomic_fetch_or(&h->arch.mip, mask);
        else atomic_fetch_and(&h->arch.mip, ~mask);
        return 0;
    }
    case CSR_STIMECMP:
        if (h->arch.priv < PRIV_M && (!(h->arch.mcounteren & 2) || !(h->arch.menvcfg & MENVCFG_STCE)))
            return -1;
        h->arch.stimecmp = v;
        trap_update_timers(h);
        return 0;
    case CSR_SATP: {
        if (h->arch.priv == PRIV_S && (h->arch.mstatus & MSTATUS_TVM)) return -1;
        uint64_t mode = v >> SATP_MODE_SHIFT;
        /* Unsupported modes make the whole write have no effect (4.1.11). */
        if (mode != 0 && mode != 8 && mode != 9 && mode != 10)
            return 0;
        /* ASIDLEN = 16; the physical page number is 44 bits. */
        h->arch.satp = v & ((0xfull << 60) | (0xffffull << 44) | ((1ull << 44) - 1));
        /* The TLB is not ASID-tagged, so any satp change drops it. */
        tlb_flush_translated(&h->tlb);
        mmu_update_regime(h);
        return 0;
    }
    case CSR_MSTATUS: mstatus_write(h, v, MSTATUS_WRITABLE); return 0;
    case CSR_MISA: return 0; /* WARL: extensions cannot be turned off */
    case CSR_MEDELEG: h->arch.medeleg = v & MEDELEG_MASK; return 0;
    case CSR_MIDELEG: h->arch.mideleg = v & MIDELEG_MASK; return 0;
    case CSR_MIE: h->arch.mie = v & MIE_MASK; return 0;
    case CSR_MTVEC: h->arch.mtvec = v & ~2ull; return 0;
    case CSR_MCOUNTEREN: h->arch.mcounteren = v & COUNTEREN_MASK; return 0;
    case CSR_MENVCFG:
        h->arch.menvcfg = v & (MENVCFG_STCE | 1);
        trap_update_timers(h);
        return 0;
    case CSR_MCOUNTINHIBIT: h->arch.mcountinhibit = v & 5; return 0;
    case CSR_MSCRATCH: h->arch.mscratch = v; return 0;
    case CSR_MEPC: h->arch.mepc = v & ~1ull; return 0;
    case CSR_MCAUSE: h->arch.mcause = v; return 0;
    case CSR_MTVAL: h->arch.mtval = v; return 0;
    case CSR_MIP: {
        /* SSIP is always writable; STIP only while Sstc does not own it;
         * SEIP writes set the software copy, ORed with the PLIC's line.
         * MEIP/MTIP/MSIP come from devices and are read-only here. */
        h->arch.mip_sw_seip = v & MIP_SEIP;
        uint64_t mask = MIP_SSIP | ((h->arch.menvcfg & MENVCFG_STCE) ? 0 : MIP_STIP);
        uint64_t set = v & mask, clear = ~v & mask;
        if (set) atomic_fetch_or(&h->arch.mip, set);
        if (clear) atomic_fetch_and(&h->arch.mip, ~clear);
        return 0;
    }
    case CSR_MCYCLE: h->arch.mcycle_offset = (int64_t)(v - hart_counter_base(h)); return 0;
    case CSR_MINSTRET:
        /* The write happens instead of this instruction's own increment. */
        h->arch.minstret_offset = (int64_t)(v - hart_counter_base(h) - 1);
        return 0;
    }
    if ((csr >= CSR_MHPMCOUNTER3 && csr <= CSR_MHPMCOUNTER31) ||
        (csr >= CSR_MHPMEVENT3 && csr <= CSR_MHPMEVENT31))
        return 0; /* hardwired to zero */
    if (csr >= CSR_PMPCFG0 && csr <= CSR_PMPCFG15) {
        if (csr & 1) return -1;
        pmpcfg_write(h, (csr - CSR_PMPCFG0) * 4, v);
        return 0;
    }
    if (csr >= CSR_PMPADDR0 && csr <= CSR_PMPADDR63) {
        unsigned i = csr - CSR_PMPADDR0;
        if (i >= 16)
            return 0;
        bool locked = h->arch.pmpcfg[i] & 0x80;
        /* A locked TOR entry above also locks this address. */
        if (i + 1 < 16 && (h->arch.pmpcfg[i + 1] & 0x80) && ((h->arch.pmpcfg[i + 1] >> 3) & 3) == 1)
            locked = true;
        if (!locked) {
            h->arch.pmpaddr[i] = v & ((1ull << 54) - 1);
            mmu_pmp_changed(h);
        }
        return 0;
    }
    return -1;
}

int hart_csr_write(struct hart *h, unsigned csr, uint64_t value)
{
    /* As M-mode firmware: the access itself runs at M, the hart stays put. */
    enum priv_mode saved = h->arch.priv;
    h->arch.priv = PRIV_M;
    int r = csr_write(h, csr, value);
    h->arch.priv = saved;
    mmu_update_regime(h);
    return r;
}

int hart_csr_read(struct hart *h, unsigned csr, uint64_t *value)
{
    enum priv_mode saved = h->arch.priv;
    h->arch.priv = PRIV_M;
    int r = csr_read(h, csr, value);
    h->arch.priv = saved;
    return r;
}

void hart_set_priv(struct hart *h, enum priv_mode mode)
{
    h->arch.priv = mode;
    mmu_update_regime(h);
}

uint64_t csr_rmw_base(const struct hart *h, unsigned csr, uint64_t read_value)
{
    if (csr == CSR_MIP)
        return (read_value & ~MIP_SEIP) | h->arch.mip_sw_seip;
    return read_value;
}
