/* Save/load of a hart's architectural state (struct hart_arch) as section
 * "hart"[hartid]. Every field is written explicitly, little-endian, so the
 * layout of the struct never leaks into the format. A load checks each CSR
 * by writing it through the CSR write path (the WARL rules of csr.c) on a
 * scratch hart: a value that path would not keep is refused, so a snapshot
 * cannot give a hart a state its own instructions could not reach. */
#include "cpu/cpu_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"

/* mip bits that software owns (the rest follow devices and timers). */
#define MIP_SW_BITS (MIP_SSIP | MIP_STIP)

/* The CSRs saved as their raw fields, in save order; each is checked by a
 * write through csr_write() at M. */
static const struct {
    unsigned csr;
    size_t off;
    const char *name;
} csr_fields[] = {
#define F(c, f) { CSR_##c, offsetof(struct hart_arch, f), #f }
    F(MSTATUS, mstatus), F(MISA, misa), F(MEDELEG, medeleg), F(MIDELEG, mideleg),
    F(MIE, mie), F(MTVEC, mtvec), F(MSCRATCH, mscratch), F(MEPC, mepc),
    F(MCAUSE, mcause), F(MTVAL, mtval), F(MCOUNTEREN, mcounteren), F(MENVCFG, menvcfg),
    F(MCOUNTINHIBIT, mcountinhibit), F(STVEC, stvec), F(SSCRATCH, sscratch), F(SEPC, sepc),
    F(SCAUSE, scause), F(STVAL, stval), F(SATP, satp), F(SCOUNTEREN, scounteren),
    F(SENVCFG, senvcfg), F(STIMECMP, stimecmp),
#undef F
};
#define NCSR (sizeof(csr_fields) / sizeof(csr_fields[0]))

static uint64_t *field(struct hart_arch *a, size_t i)
{
    return (uint64_t *)((char *)a + csr_fields[i].off);
}

int hart_save(struct hart *h, struct state_writer *w)
{
    struct hart_arch *a = &h->arch;
    int hsm = atomic_load(&a->state);

    if (hsm == HART_START_CLAIMED)
        return -EBUSY; /* a hart_start is writing the parameters right now */
    state_begin(w, HART_STATE_TAG, (uint32_t)h->hartid, HART_STATE_MAJOR, HART_STATE_MINOR);
    state_put_u8(w, (uint8_t)hsm);
    state_put_u8(w, (uint8_t)a->priv);
    state_put_u64(w, a->pc);
    for (int i = 1; i < 32; i++)
        state_put_u64(w, a->x[i]);
    for (int i = 0; i < 32; i++)
        state_put_u64(w, a->fp.f[i]);
    state_put_u8(w, (uint8_t)a->fp.fflags);
    state_put_u8(w, (uint8_t)a->fp.frm);
    for (size_t i = 0; i < NCSR; i++)
        state_put_u64(w, *field(a, i));
    uint64_t mip = atomic_load(&a->mip) & MIP_SW_BITS;
    if (a->menvcfg & MENVCFG_STCE)
        mip &= ~MIP_STIP; /* Sstc: STIP follows stimecmp */
    state_put_u64(w, mip);
    state_put_u64(w, a->mip_sw_seip);
    state_put_u64(w, hart_counter_base(h) + (uint64_t)a->mcycle_offset);
    state_put_u64(w, hart_counter_base(h) + (uint64_t)a->minstret_offset);
    state_put_bytes(w, a->pmpcfg, sizeof(a->pmpcfg));
    for (int i = 0; i < 16; i++)
        state_put_u64(w, a->pmpaddr[i]);
    state_put_u8(w, a->resv_valid);
    state_put_u64(w, a->resv_addr);
    state_put_u64(w, a->resv_value);
    state_put_u64(w, a->start_addr);
    state_put_u64(w, a->start_opaque);
    return state_end(w);
}

int hart_load(struct hart *h, const struct state_reader *r, char *err, size_t errlen)
{
    struct state_section s;
    struct hart_arch a;
    uint8_t hsm, priv, fflags, frm;
    uint64_t mip, mcycle, minstret, csr[NCSR];
    int ret = state_reader_section(r, HART_STATE_TAG, (uint32_t)h->hartid, HART_STATE_MAJOR,
                                   &s, err, errlen);
    if (ret)
        return ret;
    memset(&a, 0, sizeof(a));
    state_get_u8(&s, &hsm);
    state_get_u8(&s, &priv);
    state_get_u64(&s, &a.pc);
    for (int i = 1; i < 32; i++)
        state_get_u64(&s, &a.x[i]);
    for (int i = 0; i < 32; i++)
        state_get_u64(&s, &a.fp.f[i]);
    state_get_u8(&s, &fflags);
    state_get_u8(&s, &frm);
    for (size_t i = 0; i < NCSR; i++)
        state_get_u64(&s, &csr[i]);
    state_get_u64(&s, &mip);
    state_get_u64(&s, &a.mip_sw_seip);
    state_get_u64(&s, &mcycle);
    state_get_u64(&s, &minstret);
    state_get_bytes(&s, a.pmpcfg, sizeof(a.pmpcfg));
    for (int i = 0; i < 16; i++)
        state_get_u64(&s, &a.pmpaddr[i]);
    state_get_bool(&s, &a.resv_valid);
    state_get_u64(&s, &a.resv_addr);
    state_get_u64(&s, &a.resv_value);
    state_get_u64(&s, &a.start_addr);
    state_get_u64(&s, &a.start_opaque);
    if ((ret = state_section_done(&s, err, errlen)))
        return ret;

    if (hsm != HART_STARTED && hsm != HART_STOPPED && hsm != HART_START_PENDING)
        return state_section_error(&s, err, errlen, -EINVAL, "HSM state %u", hsm);
    if (priv != PRIV_U && priv != PRIV_S && priv != PRIV_M)
        return state_section_error(&s, err, errlen, -EINVAL, "privilege mode %u", priv);
    if (a.pc & 1)
        return state_section_error(&s, err, errlen, -EINVAL, "pc 0x%llx is odd",
                                   (unsigned long long)a.pc);
    if (fflags > 0x1f || frm > 7)
        return state_section_error(&s, err, errlen, -EINVAL, "fflags 0x%x / frm %u out of range",
                                   fflags, frm);
    if (a.mip_sw_seip & ~MIP_SEIP)
        return state_section_error(&s, err, errlen, -EINVAL, "software SEIP 0x%llx",
                                   (unsigned long long)a.mip_sw_seip);

    /* The CSRs through the write path, on a scratch hart: pmpaddr before
     * pmpcfg (a locked entry would refuse its address). */
    struct hart *t = calloc(1, sizeof(*t));
    if (!t)
        return state_section_error(&s, err, errlen, -ENOMEM, "out of memory");
    t->mem = h->mem;
    t->timebase = h->timebase;
    hart_reset(t, 0);
    ret = -EINVAL;
    for (int i = 0; i < 16; i++)
        csr_write(t, CSR_PMPADDR0 + i, a.pmpaddr[i]);
    for (int i = 0; i < 16; i += 8) {
        uint64_t v = 0;
        for (int k = 0; k < 8; k++)
            v |= (uint64_t)a.pmpcfg[i + k] << (8 * k);
        csr_write(t, CSR_PMPCFG0 + i / 4, v);
    }
    if (memcmp(t->arch.pmpcfg, a.pmpcfg, sizeof(a.pmpcfg)) ||
        memcmp(t->arch.pmpaddr, a.pmpaddr, sizeof(a.pmpaddr))) {
        state_section_error(&s, err, errlen, ret, "PMP entries the hart cannot hold");
        goto out;
    }
    for (size_t i = 0; i < NCSR; i++) {
        if (csr_write(t, csr_fields[i].csr, csr[i]) || *field(&t->arch, i) != csr[i]) {
            state_section_error(&s, err, errlen, ret,
                                "%s 0x%llx is not a value the hart can hold (it keeps 0x%llx)",
                                csr_fields[i].name, (unsigned long long)csr[i],
                                (unsigned long long)*field(&t->arch, i));
            goto out;
        }
        *field(&a, i) = csr[i];
    }
    uint64_t sw_bits = MIP_SW_BITS & ((a.menvcfg & MENVCFG_STCE) ? ~MIP_STIP : ~0ull);
    if (mip & ~sw_bits) {
        state_section_error(&s, err, errlen, ret, "mip 0x%llx has bits software cannot set",
                            (unsigned long long)mip);
        goto out;
    }

    /* Commit. mip keeps what the devices drive now (their loads push it). */
    struct hart_arch *d = &h->arch;
    memcpy(d->x, a.x, sizeof(d->x));
    d->x[0] = d->x[32] = 0;
    d->pc = a.pc;
    d->fp = a.fp;
    d->fp.fflags = fflags;
    d->fp.frm = frm;
    d->priv = (enum priv_mode)priv;
    for (size_t i = 0; i < NCSR; i++)
        *field(d, i) = *field(&a, i);
    uint64_t dev = atomic_load(&d->mip) & ~MIP_SW_BITS;
    atomic_store(&d->mip, dev | mip);
    d->mip_sw_seip = a.mip_sw_seip;
    d->mcycle_offset = (int64_t)(mcycle - hart_counter_base(h));
    d->minstret_offset = (int64_t)(minstret - hart_counter_base(h));
    memcpy(d->pmpcfg, a.pmpcfg, sizeof(d->pmpcfg));
    memcpy(d->pmpaddr, a.pmpaddr, sizeof(d->pmpaddr));
    mmu_pmp_changed(h);
    d->resv_valid = a.resv_valid;
    d->resv_addr = a.resv_addr;
    d->resv_value = a.resv_value;
    d->start_addr = a.start_addr;
    d->start_opaque = a.start_opaque;
    atomic_store(&d->state, hsm);

    /* Nothing cached survives: translations, decoded blocks and JIT units
     * (a new code epoch makes both re-check the guest's code). */
    hart_flush_tlb(h);
    mmu_update_regime(h);
    hart_fence_i(h);
    h->next_timer_check = 0;
    trap_update_timers(h);
    ret = 0;
out:
    free(t);
    return ret;
}
