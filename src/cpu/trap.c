/* Traps: synchronous exceptions, interrupts, and the xRET instructions
 * (privileged spec 3.1.6.1, 3.1.9, 3.3.2, 4.1). */
#include "cpu/cpu_internal.h"

void trap_take(struct hart *h, uint64_t cause, uint64_t tval, bool interrupt)
{
    uint64_t deleg = interrupt ? h->arch.mideleg : h->arch.medeleg;
    enum priv_mode from = h->arch.priv;

    hart_stat_add(interrupt ? &h->stats.interrupts : &h->stats.exceptions, 1);
    /* An LR/SC sequence never survives a trap. */
    h->arch.resv_valid = false;

    if (from <= PRIV_S && cause < 64 && ((deleg >> cause) & 1)) {
        h->arch.scause = cause | ((uint64_t)interrupt << 63);
        h->arch.sepc = h->arch.pc;
        h->arch.stval = tval;
        uint64_t s = h->arch.mstatus & ~(MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE);
        if (h->arch.mstatus & MSTATUS_SIE)
            s |= MSTATUS_SPIE;
        if (from == PRIV_S)
            s |= MSTATUS_SPP;
        h->arch.mstatus = s;
        h->arch.pc = (h->arch.stvec & ~3ull) + ((interrupt && (h->arch.stvec & 1)) ? 4 * cause : 0);
        h->arch.priv = PRIV_S;
    } else {
        h->arch.mcause = cause | ((uint64_t)interrupt << 63);
        h->arch.mepc = h->arch.pc;
        h->arch.mtval = tval;
        uint64_t s = h->arch.mstatus & ~(MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MIE);
        if (h->arch.mstatus & MSTATUS_MIE)
            s |= MSTATUS_MPIE;
        s |= (uint64_t)from << MSTATUS_MPP_SHIFT;
        h->arch.mstatus = s;
        h->arch.pc = (h->arch.mtvec & ~3ull) + ((interrupt && (h->arch.mtvec & 1)) ? 4 * cause : 0);
        h->arch.priv = PRIV_M;
    }
    mmu_update_regime(h);
}

void hart_raise_exception(struct hart *h, enum exc_cause cause, uint64_t tval)
{
    trap_take(h, cause, tval, false);
}

/* Interrupt priority: MEI, MSI, MTI, SEI, SSI, STI (privileged spec 3.1.9). */
static const uint8_t irq_priority[] = { IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI, IRQ_SSI, IRQ_STI };

static uint64_t enabled_interrupts(const struct hart *h)
{
    uint64_t pending = hart_mip(h) & h->arch.mie;
    if (!pending)
        return 0;
    uint64_t m = pending & ~h->arch.mideleg;
    if (m && (h->arch.priv < PRIV_M || (h->arch.mstatus & MSTATUS_MIE)))
        return m;
    uint64_t s = pending & h->arch.mideleg;
    if (s && (h->arch.priv < PRIV_S || (h->arch.priv == PRIV_S && (h->arch.mstatus & MSTATUS_SIE))))
        return s;
    return 0;
}

bool trap_check_interrupts(struct hart *h)
{
    uint64_t irqs = enabled_interrupts(h);
    if (!irqs)
        return false;
    for (unsigned i = 0; i < sizeof(irq_priority); i++) {
        if (irqs & (1ull << irq_priority[i])) {
            trap_take(h, irq_priority[i], 0, true);
            return true;
        }
    }
    return false;
}

static void set_mip_bit(struct hart *h, uint64_t bit, bool level)
{
    uint64_t cur = atomic_load_explicit(&h->arch.mip, memory_order_relaxed);
    if (!!(cur & bit) == level)
        return;
    if (level)
        atomic_fetch_or(&h->arch.mip, bit);
    else
        atomic_fetch_and(&h->arch.mip, ~bit);
}

void trap_update_timers(struct hart *h)
{
    uint64_t now = timebase_now(h->timebase);
    set_mip_bit(h, MIP_MTIP, now >= atomic_load_explicit(&h->mtimecmp, memory_order_relaxed));
    if (h->arch.menvcfg & MENVCFG_STCE)
        set_mip_bit(h, MIP_STIP, now >= h->arch.stimecmp);
}

void trap_mret(struct hart *h)
{
    uint64_t s = h->arch.mstatus;
    enum priv_mode to = (enum priv_mode)((s & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT);
    s &= ~(MSTATUS_MIE | MSTATUS_MPP);
    if (s & MSTATUS_MPIE)
        s |= MSTATUS_MIE;
    s |= MSTATUS_MPIE;
    if (to != PRIV_M)
        s &= ~MSTATUS_MPRV;
    h->arch.mstatus = s;
    h->arch.priv = to;
    h->arch.pc = h->arch.mepc;
    mmu_update_regime(h);
}

void trap_sret(struct hart *h)
{
    uint64_t s = h->arch.mstatus;
    enum priv_mode to = (s & MSTATUS_SPP) ? PRIV_S : PRIV_U;
    s &= ~(MSTATUS_SIE | MSTATUS_SPP | MSTATUS_MPRV);
    if (s & MSTATUS_SPIE)
        s |= MSTATUS_SIE;
    s |= MSTATUS_SPIE;
    h->arch.mstatus = s;
    h->arch.priv = to;
    h->arch.pc = h->arch.sepc;
    mmu_update_regime(h);
}
