/* A RISC-V hart (RV64GC, M/S/U): architectural state plus the per-hart caches
 * that make interpretation fast (software TLB, decoded blocks).
 *
 * A hart is data, not a thread: hart_run() executes it on the calling thread
 * until a budget is spent or it waits, stops or is asked to exit. Any
 * scheduler can drive it.
 *
 * Threads: hart_run() and everything that touches registers belong to the one
 * thread currently running the hart ("the hart's thread"). Functions marked
 * "any thread" below only use atomics and may be called from devices, the
 * I/O thread or other harts. */
#ifndef NIMBUS_CPU_HART_H
#define NIMBUS_CPU_HART_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu/fpu.h"
#include "cpu/timebase.h"
#include "cpu/tlb.h"
#include "mem/guest_mem.h"

enum priv_mode { PRIV_U = 0, PRIV_S = 1, PRIV_M = 3 };

/* Interrupt bits of mip/mie (privileged spec 3.1.9). */
#define IRQ_SSI 1
#define IRQ_MSI 3
#define IRQ_STI 5
#define IRQ_MTI 7
#define IRQ_SEI 9
#define IRQ_MEI 11
#define MIP_SSIP (1ull << IRQ_SSI)
#define MIP_MSIP (1ull << IRQ_MSI)
#define MIP_STIP (1ull << IRQ_STI)
#define MIP_MTIP (1ull << IRQ_MTI)
#define MIP_SEIP (1ull << IRQ_SEI)
#define MIP_MEIP (1ull << IRQ_MEI)

/* Exception causes (privileged spec table 3.6). */
enum exc_cause {
    EXC_INSN_MISALIGNED = 0,
    EXC_INSN_ACCESS = 1,
    EXC_ILLEGAL_INSN = 2,
    EXC_BREAKPOINT = 3,
    EXC_LOAD_MISALIGNED = 4,
    EXC_LOAD_ACCESS = 5,
    EXC_STORE_MISALIGNED = 6,
    EXC_STORE_ACCESS = 7,
    EXC_ECALL_U = 8,
    EXC_ECALL_S = 9,
    EXC_ECALL_M = 11,
    EXC_INSN_PAGE_FAULT = 12,
    EXC_LOAD_PAGE_FAULT = 13,
    EXC_STORE_PAGE_FAULT = 15,
};

/* Why hart_run() returned. */
enum hart_exit {
    HART_EXIT_BUDGET = 0, /* ran `budget` instructions */
    HART_EXIT_WFI,        /* executed WFI with nothing pending: park it */
    HART_EXIT_STOPPED,    /* hart is stopped (SBI HSM hart_stop, or never started) */
    HART_EXIT_REQUEST,    /* hart_request_exit() was called */
};

/* Hart run state for SBI HSM (SBI spec ch. 9). START_CLAIMED: a hart_start
 * won the race for this stopped hart and is writing its start parameters;
 * the hart stays stopped until START_PENDING (reported as start pending). */
enum hart_state { HART_STARTED = 0, HART_STOPPED = 1, HART_START_PENDING = 2, HART_START_CLAIMED = 3 };

/* Cross-thread requests, bits of hart.requests. */
#define HART_REQ_EXIT      (1u << 0) /* return from hart_run */
#define HART_REQ_TLB_FLUSH (1u << 1) /* remote sfence.vma: flush the TLB */
#define HART_REQ_FENCE_I   (1u << 2) /* remote fence.i: drop decoded code */
#define HART_REQ_DROP_WRITES (1u << 3) /* dirty logging: drop write TLB entries */

struct hart;

/* Monitor statistics (the API's GET /vm/counters): written only by the
 * hart's thread, with relaxed atomic load+store (plain moves on x86-64, no
 * lock prefix on the hot path, since there is one writer); read by any
 * thread. Not architectural, not saved. */
struct hart_stats {
    _Atomic uint64_t insns;        /* instructions retired, published when hart_run returns */
    _Atomic uint64_t tlb_misses;   /* slow-path translations: software-TLB misses, and every
                                      MMIO access (never cached) */
    _Atomic uint64_t exceptions;   /* synchronous traps taken (including ecalls to the guest) */
    _Atomic uint64_t interrupts;   /* interrupts taken */
    _Atomic uint64_t sbi_calls;    /* ecalls the monitor served: hypercalls, the VM exits
                                      of this machine */
    _Atomic uint64_t wfi_exits;    /* hart_run returns because the hart waits (WFI) */
};

/* One more to a hart_stats counter; the hart's thread only. */
static inline void hart_stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* The monitor's hooks into a hart. The built-in SBI uses `ecall` to serve
 * S-mode ecalls that would otherwise trap to an absent M-mode firmware. */
struct hart_hooks {
    /* Called for an ecall from S or U mode whose trap would be taken in
     * M-mode. Return true if the monitor handled it (pc advances past the
     * ecall), false to take the trap normally. */
    bool (*ecall)(struct hart *hart, void *opaque);
    void *opaque;
};

/* Decoded blocks: up to BLOCK_MAX_INSNS straight-line instructions within
 * one page, decoded once. A block is keyed by the host address of its code
 * (a guest-physical location, so other address spaces never hit it) and is
 * valid while the hart's code epoch is the one it was decoded in. The epoch
 * advances on fence.i (local, or remote through the SBI / an IPI to
 * firmware) and on reset: the spec makes modified code visible to a hart
 * only after it executes fence.i, and guests issue it wherever real
 * hardware, whose instruction caches are not coherent either, needs it. */
#define BLOCK_CACHE_BITS 12
#define BLOCK_MAX_INSNS 16

struct decoded_insn {
    uint32_t raw;    /* instruction bits: the cache tag */
    uint16_t op;     /* internal opcode (enum in decode.h) */
    uint8_t rd, rs1, rs2, rs3;
    uint8_t len;     /* 2 or 4 */
    int64_t imm;
    const void *handler; /* interpreter's code for `op`, filled in by the interpreter */
};

struct jit;
struct jit_unit;

struct decoded_block {
    uintptr_t code;      /* host address of the first instruction; 0 = empty */
    uint64_t epoch;      /* the hart's code epoch when decoded */
    /* For the binary translator (cpu/jit/jit.h): this block's unit, a hint
     * it checks, and in jit_hits 1 once it looked for a unit, UINT32_MAX
     * once it found nothing to translate; both restart whenever the block
     * is decoded again. */
    const struct jit_unit *jit_unit;
    uint32_t jit_hits;
    /* the instructions, then an end marker that leads to the next block */
    struct decoded_insn insns[BLOCK_MAX_INSNS + 1];
};

/* The block cache slot for code at host address `code`. */
#define HART_BLOCK_SLOT(blocks, code) \
    (&(blocks)[((uintptr_t)(code) >> 1) & ((1u << BLOCK_CACHE_BITS) - 1)])

/* The hart's architectural state: everything a snapshot saves
 * (hart_save(), field by field), and nothing else - no host pointers,
 * caches or identity. Plain data; mip and the SBI HSM state are atomics
 * because devices and other harts change them. Not here: mhartid (fixed by
 * the board), mtimecmp (the ACLINT's register, mirrored in struct hart),
 * the retired-instruction count (a monitor statistic; the counters are
 * saved as their values). WFI needs no state: the hart resumes after it, and
 * the spec lets WFI return at any time (privileged spec 3.3.3). */
struct hart_arch {
    /* x[0] is always 0; x[32] is a sink the interpreter writes results with
     * rd = x0 to, so it never has to re-zero x[0]. Not architectural, not saved. */
    uint64_t x[33];
    uint64_t pc;
    struct fp_regs fp;
    enum priv_mode priv;

    uint64_t mstatus;  /* also backs sstatus */
    uint64_t misa;
    uint64_t medeleg, mideleg;
    uint64_t mie;
    _Atomic uint64_t mip; /* devices set MEIP/SEIP/MSIP/MTIP with atomics */
    uint64_t mip_sw_seip;  /* SEIP as written by M-mode, ORed with the PLIC's (3.1.9) */
    uint64_t mtvec, mscratch, mepc, mcause, mtval;
    uint64_t mcounteren, menvcfg, mcountinhibit;
    uint64_t stvec, sscratch, sepc, scause, stval, satp;
    uint64_t scounteren, senvcfg;
    uint64_t stimecmp;     /* Sstc */
    int64_t mcycle_offset, minstret_offset; /* counters = insn_count + offset */
    uint8_t pmpcfg[16];
    uint64_t pmpaddr[16];

    /* LR/SC: LR remembers the address and the value it read; SC succeeds
     * with a host compare-and-swap against that value. */
    uint64_t resv_addr;
    uint64_t resv_value;
    bool resv_valid;

    _Atomic int state;     /* enum hart_state */
    /* SBI HSM start parameters, written by the starting hart before
     * state becomes STARTED. */
    uint64_t start_addr, start_opaque;
};

struct hart {
    /* First, so the hot registers sit at small fixed offsets (the binary
     * translator addresses them from the hart pointer). */
    struct hart_arch arch;

    /* ---- identity and a device's mirror (not in the hart's section) ---- */
    uint64_t hartid;
    _Atomic uint64_t mtimecmp; /* owned by the ACLINT, read here for MTIP */

    /* ---- monitor state (not saved; rebuilt) ---- */
    struct guest_mem *mem;
    const struct timebase *timebase;
    struct hart_hooks hooks;
    _Atomic unsigned requests;
    /* Wakes the hart's thread from a WFI park. */
    pthread_mutex_t park_lock;
    pthread_cond_t park_cond;

    /* Dirty logging's handshake (hart_request_drop_writes): tickets asked
     * for and the last one served, after the write entries were dropped. */
    _Atomic uint64_t drop_writes_req, drop_writes_ack;

    struct tlb tlb;
    /* The arrays of `tlb` for the current regime: fetch follows priv, loads
     * and stores follow the effective mode (mstatus.MPRV). */
    struct tlb_entry *tlb_fetch, *tlb_read, *tlb_write;
    /* PMP's active entries (A not OFF) in priority order, their address
     * ranges worked out: rebuilt by mmu_pmp_changed() at each pmpcfg or
     * pmpaddr write, so that a TLB miss does not decode all 16 entries for
     * each of its (up to five) checks. None: PMP is off. */
    struct pmp_range { uint64_t lo, hi; uint8_t cfg; } pmp[16];
    unsigned pmp_count;
    struct decoded_block *blocks;       /* 1 << BLOCK_CACHE_BITS, zeroed */
    struct jit *jit;                    /* binary translator, NULL: interpret only */
    uint64_t code_epoch;                /* see struct decoded_block */
    struct decoded_insn single_step[2]; /* an instruction straddling two pages, + end */
    uint64_t insn_count;   /* instructions retired since creation */
    uint64_t jit_limit;    /* translated code stops when insn_count reaches it */
    struct hart_stats stats;
    uint64_t next_timer_check;
};

/* Initialises a hart in reset state (M-mode, pc = reset_pc). Returns 0 or -errno. */
int hart_init(struct hart *hart, uint64_t hartid, struct guest_mem *mem,
              const struct timebase *tb, uint64_t reset_pc);
void hart_destroy(struct hart *hart);
/* Back to reset state (privileged spec 3.4). Hart's thread. */
void hart_reset(struct hart *hart, uint64_t reset_pc);

/* Runs up to `budget` instructions. Hart's thread. */
enum hart_exit hart_run(struct hart *hart, uint64_t budget);

/* True if an interrupt is pending and enabled enough to wake a WFI
 * (mip & mie != 0, regardless of global enables). Hart's thread. */
bool hart_wfi_wakeup(struct hart *hart);
/* Host monotonic ns when the earliest armed timer (mtimecmp/stimecmp) fires,
 * INT64_MAX if none. Hart's thread. */
int64_t hart_timer_deadline_ns(struct hart *hart);
/* Parks the calling (hart's) thread until an interrupt can wake the hart, a
 * request arrives or the timer deadline passes. */
void hart_park(struct hart *hart);

/* Any thread: set or clear device-driven bits of mip and wake the hart. */
void hart_set_irq(struct hart *hart, uint64_t mip_bits, bool level);
/* Any thread: post a request (HART_REQ_*) and wake the hart. */
void hart_post_request(struct hart *hart, unsigned req);
/* Any thread: wakes the hart if it is parked. */
void hart_kick(struct hart *hart);

/* Hart's thread: raise a synchronous exception (sets pc to the handler). */
void hart_raise_exception(struct hart *hart, enum exc_cause cause, uint64_t tval);

/* Hart's thread, or any thread while the hart is not running: CSR access
 * performed as M-mode firmware would (same WARL rules as the instructions),
 * whatever mode the hart is in. CSR numbers are in cpu/csr.h. Return 0, or
 * -1 if there is no such CSR. */
int hart_csr_read(struct hart *hart, unsigned csr, uint64_t *value);
int hart_csr_write(struct hart *hart, unsigned csr, uint64_t value);
/* Same threads: puts the hart in `mode` (boot code, firmware emulation). */
void hart_set_priv(struct hart *hart, enum priv_mode mode);

struct state_writer;
struct state_reader;

#define HART_STATE_TAG   "hart"
#define HART_STATE_MAJOR 1
#define HART_STATE_MINOR 0

/* Saves struct hart_arch as section "hart"[hartid], field by field: the
 * integer and FP registers, privilege mode, every CSR (mcycle/minstret as
 * their values, mip as its software-owned bits), PMP, the LR reservation
 * and the SBI HSM state and start parameters. Returns the writer's error,
 * or -EBUSY while a hart_start is claiming this hart. Any thread while the
 * hart is not running. */
int hart_save(struct hart *hart, struct state_writer *w);
/* Loads section "hart"[hartid]. Every field is checked before anything
 * changes: HSM state, privilege mode, an even pc, fflags/frm in range, and
 * each CSR must be a value the CSR write path keeps (reserved and WARL bits
 * as an instruction would leave them). mip's device bits (MSIP, MTIP, MEIP,
 * SEIP) stay as the devices drive them: load the ACLINT and PLIC too. Then
 * the TLB, decoded blocks and translations are dropped. Returns 0, or
 * -errno with a one-line message naming the section. Any thread while the
 * hart is not running. */
int hart_load(struct hart *hart, const struct state_reader *r, char *err, size_t errlen);

/* Hart's thread: flush all cached translations. */
void hart_flush_tlb(struct hart *hart);

/* Dirty logging (mem/dirty_log.h), step (2) of a collect. Any thread: asks
 * the hart to drop its write TLB entries at its next instruction boundary
 * (between slices of hart_run, or at once when parked: the request wakes
 * it) and returns a ticket for hart_drop_writes_done(). */
uint64_t hart_request_drop_writes(struct hart *hart);
/* Any thread: true once the hart dropped its write entries after the
 * request that gave `ticket`; its stores before that are visible to the
 * caller then (acquire). */
bool hart_drop_writes_done(struct hart *hart, uint64_t ticket);
/* The hart's thread, or any thread while the hart is not running (paused,
 * before its thread starts): drops the write entries now and serves every
 * ticket asked so far. */
void hart_drop_writes(struct hart *hart);
/* Hart's thread: forget all decoded code, as fence.i does. */
void hart_fence_i(struct hart *hart);

#endif
