/* Functions shared by the files of the CPU core; not for other layers. */
#ifndef NIMBUS_CPU_INTERNAL_H
#define NIMBUS_CPU_INTERNAL_H

#include "cpu/csr.h"
#include "cpu/hart.h"

/* mstatus fields (privileged spec 3.1.6) */
#define MSTATUS_SIE  (1ull << 1)
#define MSTATUS_MIE  (1ull << 3)
#define MSTATUS_SPIE (1ull << 5)
#define MSTATUS_UBE  (1ull << 6)
#define MSTATUS_MPIE (1ull << 7)
#define MSTATUS_SPP  (1ull << 8)
#define MSTATUS_VS   (3ull << 9)
#define MSTATUS_MPP_SHIFT 11
#define MSTATUS_MPP  (3ull << 11)
#define MSTATUS_FS_SHIFT 13
#define MSTATUS_FS   (3ull << 13)
#define MSTATUS_XS   (3ull << 15)
#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_SUM  (1ull << 18)
#define MSTATUS_MXR  (1ull << 19)
#define MSTATUS_TVM  (1ull << 20)
#define MSTATUS_TW   (1ull << 21)
#define MSTATUS_TSR  (1ull << 22)
#define MSTATUS_UXL  (3ull << 32)
#define MSTATUS_SXL  (3ull << 34)
#define MSTATUS_SD   (1ull << 63)

#define SATP_MODE_SHIFT 60

enum access_type { ACCESS_FETCH = 0, ACCESS_LOAD = 1, ACCESS_STORE = 2 };

/* trap.c */
void trap_take(struct hart *h, uint64_t cause, uint64_t tval, bool interrupt);
/* Takes the highest-priority pending and enabled interrupt, if any. */
bool trap_check_interrupts(struct hart *h);
/* Re-evaluates MTIP and (with Sstc) STIP against the timebase. */
void trap_update_timers(struct hart *h);
void trap_mret(struct hart *h);
void trap_sret(struct hart *h);

/* csr.c: return 0, or -1 for an illegal-instruction exception. */
int csr_read(struct hart *h, unsigned csr, uint64_t *value);
int csr_write(struct hart *h, unsigned csr, uint64_t value);
/* The old value CSRRS/CSRRC (and the immediate forms) modify, given what
 * csr_read() returned: for mip, SEIP is only the software-written bit, not
 * the PLIC's line ORed in (privileged spec 3.1.9), so that firmware's
 * `csrs mip, SSIP` never latches a passing external interrupt for good. */
uint64_t csr_rmw_base(const struct hart *h, unsigned csr, uint64_t read_value);

/* mmu.c */
/* Recomputes the current TLB arrays after a change of priv, MPRV/MPP or satp. */
void mmu_update_regime(struct hart *h);
/* After a change of pmpcfg or pmpaddr: rebuilds h->pmp and drops the TLB,
 * whose entries carry PMP's verdict. */
void mmu_pmp_changed(struct hart *h);
/* Slow paths. Return 0, or the exception cause after raising it (pc moved). */
int mmu_load_slow(struct hart *h, uint64_t va, unsigned size, uint64_t *value);
int mmu_store_slow(struct hart *h, uint64_t va, unsigned size, uint64_t value);
/* Fetches the (up to) 32-bit instruction at pc through translation. */
int mmu_fetch_slow(struct hart *h, uint64_t pc, uint32_t *raw);
/* Host pointer for an aligned atomic access needing write permission. */
int mmu_atomic_ptr(struct hart *h, uint64_t va, unsigned size, bool is_lr, void **host);
/* Translates va for `type` in the hart's current regime without raising:
 * returns 0 and *pa, or the exception cause. Used by the monitor and tests. */
int mmu_translate(struct hart *h, uint64_t va, enum access_type type, uint64_t *pa);

static inline enum priv_mode hart_data_priv(const struct hart *h)
{
    if (h->arch.priv == PRIV_M && (h->arch.mstatus & MSTATUS_MPRV))
        return (enum priv_mode)((h->arch.mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT);
    return h->arch.priv;
}

/* mip as software sees it: device lines plus the software-written SEIP. */
static inline uint64_t hart_mip(const struct hart *h)
{
    return atomic_load_explicit(&h->arch.mip, memory_order_relaxed) | h->arch.mip_sw_seip;
}

static inline uint64_t hart_counter_base(const struct hart *h)
{
    return h->insn_count;
}

#endif
