/* Built-in SBI (RISC-V Supervisor Binary Interface spec v2.0). */
#include "machine/sbi.h"

#include <sched.h>
#include <string.h>

#include "cpu/csr.h"

enum {
    SBI_EXT_LEGACY_PUTCHAR = 0x01,
    SBI_EXT_LEGACY_GETCHAR = 0x02,
    SBI_EXT_BASE = 0x10,
    SBI_EXT_TIME = 0x54494d45,
    SBI_EXT_IPI = 0x735049,
    SBI_EXT_RFENCE = 0x52464e43,
    SBI_EXT_HSM = 0x48534d,
    SBI_EXT_SRST = 0x53525354,
    SBI_EXT_DBCN = 0x4442434e,
};

enum {
    SBI_SUCCESS = 0,
    SBI_ERR_FAILED = -1,
    SBI_ERR_NOT_SUPPORTED = -2,
    SBI_ERR_INVALID_PARAM = -3,
    SBI_ERR_DENIED = -4,
    SBI_ERR_INVALID_ADDRESS = -5,
    SBI_ERR_ALREADY_AVAILABLE = -6,
    SBI_ERR_ALREADY_STARTED = -7,
    SBI_ERR_ALREADY_STOPPED = -8,
};

#define SBI_SPEC_VERSION ((2u << 24) | 0u)   /* v2.0 */
#define SBI_IMPL_ID 0x4e494d42u                /* "NIMB"; not in the SBI registry */
#define SBI_IMPL_VERSION 1

/* HSM states (SBI spec 9) */
enum { HSM_STARTED = 0, HSM_STOPPED = 1, HSM_START_PENDING = 2 };

struct sbi_ret {
    int64_t error;
    uint64_t value;
};

static struct sbi_ret ok(uint64_t value) { return (struct sbi_ret){ SBI_SUCCESS, value }; }
static struct sbi_ret err(int64_t e) { return (struct sbi_ret){ e, 0 }; }

void sbi_prepare_hart(struct hart *h)
{
    /* What OpenSBI leaves behind for S-mode: PMP entry 0 NAPOT over all of
     * memory, RWX (privileged spec 3.7); counters and Sstc usable from S/U;
     * the interrupts and exceptions Linux handles delegated; the FPU on. */
    hart_csr_write(h, CSR_PMPADDR0, (1ull << 54) - 1);
    hart_csr_write(h, CSR_PMPCFG0, PMPCFG_NAPOT | PMPCFG_R | PMPCFG_W | PMPCFG_X);
    hart_csr_write(h, CSR_MCOUNTEREN, 0x7); /* cycle, time, instret */
    /* ...and for U-mode too, as OpenSBI does: Linux only narrows this from
     * its SBI PMU driver, and the vDSO's clock_gettime reads `time`. */
    hart_csr_write(h, CSR_SCOUNTEREN, 0x7);
    hart_csr_write(h, CSR_MENVCFG, MENVCFG_STCE | MENVCFG_FIOM);
    hart_csr_write(h, CSR_MIDELEG, MIP_SSIP | MIP_STIP | MIP_SEIP);
    hart_csr_write(h, CSR_MEDELEG,
                   (1u << EXC_INSN_MISALIGNED) | (1u << EXC_INSN_ACCESS) |
                   (1u << EXC_ILLEGAL_INSN) | (1u << EXC_BREAKPOINT) |
                   (1u << EXC_LOAD_MISALIGNED) | (1u << EXC_LOAD_ACCESS) |
                   (1u << EXC_STORE_MISALIGNED) | (1u << EXC_STORE_ACCESS) |
                   (1u << EXC_ECALL_U) | (1u << EXC_INSN_PAGE_FAULT) |
                   (1u << EXC_LOAD_PAGE_FAULT) | (1u << EXC_STORE_PAGE_FAULT));
    hart_csr_write(h, CSR_MIE, 0);
    uint64_t mstatus;
    hart_csr_read(h, CSR_MSTATUS, &mstatus);
    hart_csr_write(h, CSR_MSTATUS, mstatus | MSTATUS_FS_INITIAL);
}

/* Iterates the harts named by an SBI hart mask (SBI spec 3.1). `req` is
 * passed through to `fn`. */
static int64_t for_each_hart(const struct sbi_platform *p, uint64_t mask, uint64_t base,
                             void (*fn)(struct hart *target, struct hart *self, unsigned req),
                             struct hart *self, unsigned req)
{
    if (base == ~0ull) {
        for (unsigned i = 0; i < p->nharts; i++)
            fn(p->harts[i], self, req);
        return SBI_SUCCESS;
    }
    for (unsigned bit = 0; bit < 64; bit++) {
        if (!((mask >> bit) & 1))
            continue;
        if (base + bit >= p->nharts || base + bit < base)
            return SBI_ERR_INVALID_PARAM;
    }
    for (unsigned bit = 0; bit < 64; bit++)
        if ((mask >> bit) & 1)
            fn(p->harts[base + bit], self, req);
    return SBI_SUCCESS;
}

static void send_ipi(struct hart *target, struct hart *self, unsigned req)
{
    (void)self;
    (void)req;
    hart_set_irq(target, MIP_SSIP, true);
}

/* Does a fence request (HART_REQ_TLB_FLUSH / HART_REQ_FENCE_I) here. */
static void fence_locally(struct hart *h, unsigned req)
{
    if (req & HART_REQ_TLB_FLUSH)
        hart_flush_tlb(h);
    if (req & HART_REQ_FENCE_I)
        hart_fence_i(h);
}

static void post_fence(struct hart *target, struct hart *self, unsigned req)
{
    if (target == self)
        fence_locally(self, req);
    else if (atomic_load(&target->arch.state) == HART_STARTED)
        hart_post_request(target, req);
}

static void wait_fence(struct hart *target, struct hart *self, unsigned req)
{
    /* Remote fences complete before the call returns (SBI spec 8). Serve our
     * own fence requests while waiting so two harts fencing each other
     * cannot deadlock. */
    const unsigned fences = HART_REQ_TLB_FLUSH | HART_REQ_FENCE_I;
    while ((atomic_load(&target->requests) & req) &&
           atomic_load(&target->arch.state) == HART_STARTED) {
        /* The VM is stopping: the target's thread may already be gone. */
        if (atomic_load(&self->requests) & HART_REQ_EXIT)
            return;
        unsigned mine = atomic_fetch_and(&self->requests, ~fences) & fences;
        if (mine)
            fence_locally(self, mine);
        sched_yield();
    }
}

static struct sbi_ret sbi_base(struct hart *h, unsigned fid)
{
    switch (fid) {
    case 0: return ok(SBI_SPEC_VERSION);
    case 1: return ok(SBI_IMPL_ID);
    case 2: return ok(SBI_IMPL_VERSION);
    case 3:
        switch (h->arch.x[10]) {
        case SBI_EXT_BASE: case SBI_EXT_TIME: case SBI_EXT_IPI: case SBI_EXT_RFENCE:
        case SBI_EXT_HSM: case SBI_EXT_SRST: case SBI_EXT_DBCN:
        case SBI_EXT_LEGACY_PUTCHAR: case SBI_EXT_LEGACY_GETCHAR:
            return ok(1);
        }
        return ok(0);
    case 4: case 5: case 6: return ok(0); /* mvendorid, marchid, mimpid */
    }
    return err(SBI_ERR_NOT_SUPPORTED);
}

static struct sbi_ret sbi_hsm(struct hart *h, const struct sbi_platform *p, unsigned fid)
{
    uint64_t id = h->arch.x[10];
    switch (fid) {
    case 0: { /* hart_start(hartid, start_addr, opaque) */
        if (id >= p->nharts)
            return err(SBI_ERR_INVALID_PARAM);
        struct hart *t = p->harts[id];
        if (!guest_mem_ram_ptr(h->mem, h->arch.x[11], 2))
            return err(SBI_ERR_INVALID_ADDRESS);
        /* Claim the stopped hart before touching its start parameters: a
         * losing hart_start (SBI_ERR_ALREADY_AVAILABLE) must not change
         * where a hart that is already starting will start. The target
         * reads them only once it sees START_PENDING. */
        int expected = HART_STOPPED;
        if (!atomic_compare_exchange_strong(&t->arch.state, &expected, HART_START_CLAIMED))
            return err(SBI_ERR_ALREADY_AVAILABLE);
        t->arch.start_addr = h->arch.x[11];
        t->arch.start_opaque = h->arch.x[12];
        atomic_store(&t->arch.state, HART_START_PENDING);
        hart_kick(t);
        return ok(0);
    }
    case 1: /* hart_stop */
        atomic_store(&h->arch.state, HART_STOPPED);
        return ok(0);
    case 2: { /* hart_get_status */
        if (id >= p->nharts)
            return err(SBI_ERR_INVALID_PARAM);
        int s = atomic_load(&p->harts[id]->arch.state);
        return ok(s == HART_STARTED ? HSM_STARTED : s == HART_STOPPED ? HSM_STOPPED
                                                                      : HSM_START_PENDING); /* or claimed */
    }
    case 3: /* hart_suspend: only the default retentive type, served like WFI */
        if ((uint32_t)h->arch.x[10] == 0)
            return ok(0);
        return err(SBI_ERR_NOT_SUPPORTED);
    }
    return err(SBI_ERR_NOT_SUPPORTED);
}

static struct sbi_ret sbi_dbcn(struct hart *h, const struct sbi_platform *p, unsigned fid)
{
    /* base_hi (a2) is for RV32 only: on RV64 an address with it set is not
     * one we can reach. */
    uint64_t n = h->arch.x[10], addr = h->arch.x[11], base_hi = h->arch.x[12];
    switch (fid) {
    case 0: { /* console_write(num_bytes, base_lo, base_hi): physical address */
        const uint8_t *buf = guest_mem_ram_ptr(h->mem, addr, n);
        if (!buf || base_hi)
            return err(SBI_ERR_INVALID_PARAM);
        /* A non-blocking call that may write part or nothing (SBI v2.0
         * DBCN): the guest retries with the rest, paced by our reader. */
        return ok(p->console_write ? p->console_write(p->opaque, buf, n) : n);
    }
    case 1: { /* console_read */
        uint8_t *buf = guest_mem_ram_ptr(h->mem, addr, n);
        if (!buf || base_hi)
            return err(SBI_ERR_INVALID_PARAM);
        uint64_t got = p->console_read ? p->console_read(p->opaque, buf, n) : 0;
        guest_mem_mark_dirty(h->mem, addr, got);
        return ok(got);
    }
    case 2: { /* console_write_byte */
        uint8_t c = (uint8_t)h->arch.x[10];
        if (p->console_write)
            p->console_write(p->opaque, &c, 1);
        return ok(0);
    }
    }
    return err(SBI_ERR_NOT_SUPPORTED);
}

bool sbi_handle_ecall(struct hart *h, void *opaque)
{
    const struct sbi_platform *p = opaque;
    uint64_t eid = h->arch.x[17];
    unsigned fid = (unsigned)h->arch.x[16];
    struct sbi_ret r = err(SBI_ERR_NOT_SUPPORTED);

    switch (eid) {
    case SBI_EXT_LEGACY_PUTCHAR: {
        uint8_t c = (uint8_t)h->arch.x[10];
        if (p->console_write)
            p->console_write(p->opaque, &c, 1);
        h->arch.x[10] = 0;
        return true;
    }
    case SBI_EXT_LEGACY_GETCHAR: {
        uint8_t c;
        h->arch.x[10] = (p->console_read && p->console_read(p->opaque, &c, 1) == 1) ? c : (uint64_t)-1;
        return true;
    }
    case SBI_EXT_BASE: r = sbi_base(h, fid); break;
    case SBI_EXT_TIME:
        if (fid == 0) {
            /* set_timer: Sstc does the work; the pending STIP follows stimecmp. */
            hart_csr_write(h, CSR_STIMECMP, h->arch.x[10]);
            r = ok(0);
        }
        break;
    case SBI_EXT_IPI:
        if (fid == 0) {
            int64_t e = for_each_hart(p, h->arch.x[10], h->arch.x[11], send_ipi, h, 0);
            r = e ? err(e) : ok(0);
        }
        break;
    case SBI_EXT_RFENCE:
        if (fid <= 2) {
            /* 0: remote fence.i; 1, 2: sfence.vma (with or without ASID),
             * done as a flush of each target's whole TLB. */
            unsigned req = fid == 0 ? HART_REQ_FENCE_I : HART_REQ_TLB_FLUSH;
            int64_t e = for_each_hart(p, h->arch.x[10], h->arch.x[11], post_fence, h, req);
            if (!e)
                for_each_hart(p, h->arch.x[10], h->arch.x[11], wait_fence, h, req);
            r = e ? err(e) : ok(0);
        }
        break;
    case SBI_EXT_HSM: r = sbi_hsm(h, p, fid); break;
    case SBI_EXT_SRST:
        if (fid == 0) {
            uint32_t type = (uint32_t)h->arch.x[10], reason = (uint32_t)h->arch.x[11];
            if (type > SBI_RESET_WARM) {
                r = err(SBI_ERR_INVALID_PARAM);
                break;
            }
            if (p->system_reset)
                p->system_reset(p->opaque, (enum sbi_reset_type)type, reason);
            r = ok(0);
        }
        break;
    case SBI_EXT_DBCN: r = sbi_dbcn(h, p, fid); break;
    }
    h->arch.x[10] = (uint64_t)r.error;
    h->arch.x[11] = r.value;
    return true;
}
