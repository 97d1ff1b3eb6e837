/* Shared helpers for the privileged-architecture tests (priv_*.S).
 *
 * Include after test.h and before TEST_BEGIN:
 *
 *     #include "test.h"
 *     #include "priv.h"
 *     TEST_BEGIN
 *
 * This header emits code (.text) and data (.data) of its own: a recording
 * M-mode trap handler (`trap_m`), a recording S-mode trap handler
 * (`trap_s`) and their records.
 *
 * Recording handlers. trap_m saves mcause/mepc/mtval/mstatus into `trap_rec`
 * (mstatus as seen inside the handler, so MPP/MPIE describe the trap), counts
 * the trap, and then *resumes* at the address in trap_rec.R_RESUME, in M-mode
 * (it sets MPP=M and clears MPIE, then mret: the resumed code runs in M with
 * MIE=0). The resume address is one-shot: the handler clears it, and a trap
 * that arrives while it is zero is unexpected and fails the test with
 * 1000 + mcause (1100 + code for interrupts), like test.h's handler.
 * All registers are preserved (t0-t2 are saved, mscratch is used).
 *
 * trap_s is the same for S-mode (scause/sepc/stval/sstatus into `strap_rec`,
 * resume in S-mode with SIE=0 via sret; unexpected: fail with 2000 + scause,
 * 2100 + code for interrupts).
 *
 * So code that may trap is written as
 *
 *     M_EXPECT 1f          # next trap resumes at 1: (in M)
 *     <instruction>
 *     ...                  # reached only if it did not trap
 *   1:
 *
 * and code in a lower mode is run with RUN_IN mode, label: it enters `label`
 * in `mode` (PRV_S or PRV_U) via mret and comes back (in M, after the macro)
 * on the first trap, which is usually an ecall at the end of the code or the
 * fault being tested. So after RUN_IN, R_CAUSE == 8/9 means "ran to its
 * ecall without faulting".
 *
 * Check macros (EXPECT*): like test.h's CHECK, numbered, fail with that
 * number. Build with -DPRIV_FLIP=n to invert check n (it must then fail with
 * exit code n): that is how every check is shown to be able to fail.
 *
 * QEMU 7.2 differs from the spec in a few places; the checks for those are
 * skipped when the hart looks like QEMU (SKIP_ON_QEMU, PROBE_TIME; see
 * IS_QEMU) and run everywhere else. -DPRIV_NO_SKIP runs them on QEMU too,
 * where they then fail.
 *
 * Note: the Makefile's rule for build/isa/%.elf depends only on the .S,
 * test.h and link.ld, so after editing this file or priv_vm.inc, remove the
 * priv_*.elf files to rebuild them. */
#ifndef NIMBUS_ISA_PRIV_H
#define NIMBUS_ISA_PRIV_H

#ifndef PRIV_FLIP
#define PRIV_FLIP 0
#endif

/* ---- privilege modes ---- */
#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/* ---- mstatus / sstatus ---- */
#define MSTATUS_SIE   (1 << 1)
#define MSTATUS_MIE   (1 << 3)
#define MSTATUS_SPIE  (1 << 5)
#define MSTATUS_MPIE  (1 << 7)
#define MSTATUS_SPP   (1 << 8)
#define MSTATUS_MPP   (3 << 11)
#define MSTATUS_MPP_S (1 << 11)
#define MSTATUS_FS    (3 << 13)
#define MSTATUS_MPRV  (1 << 17)
#define MSTATUS_SUM   (1 << 18)
#define MSTATUS_MXR   (1 << 19)
#define MSTATUS_TVM   (1 << 20)
#define MSTATUS_TW    (1 << 21)
#define MSTATUS_TSR   (1 << 22)

/* ---- interrupts (mip/mie bit numbers and masks) ---- */
#define IRQ_S_SOFT  1
#define IRQ_M_SOFT  3
#define IRQ_S_TIMER 5
#define IRQ_M_TIMER 7
#define IRQ_S_EXT   9
#define IRQ_M_EXT   11
#define MIP_SSIP (1 << IRQ_S_SOFT)
#define MIP_MSIP (1 << IRQ_M_SOFT)
#define MIP_STIP (1 << IRQ_S_TIMER)
#define MIP_MTIP (1 << IRQ_M_TIMER)
#define MIP_SEIP (1 << IRQ_S_EXT)
#define MIP_MEIP (1 << IRQ_M_EXT)
#define S_INTS   (MIP_SSIP | MIP_STIP | MIP_SEIP)
#define INTR     (1 << 63)       /* mcause interrupt bit (li accepts it) */
#define INT_CAUSE(c) (0x8000000000000000 | (c))

/* ---- exception causes ---- */
#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS     1
#define CAUSE_ILLEGAL          2
#define CAUSE_BREAKPOINT       3
#define CAUSE_MISALIGNED_LOAD  4
#define CAUSE_LOAD_ACCESS      5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS     7
#define CAUSE_ECALL_U          8
#define CAUSE_ECALL_S          9
#define CAUSE_ECALL_M          11
#define CAUSE_FETCH_PAGE       12
#define CAUSE_LOAD_PAGE        13
#define CAUSE_STORE_PAGE       15

/* ---- CSRs that older assemblers may not know by name ---- */
#define CSR_MENVCFG  0x30a
#define CSR_STIMECMP 0x14d
#define MENVCFG_STCE (1 << 63)

/* ---- CLINT (same address on Nimbus and QEMU spike) ---- */
#define CLINT_BASE     0x02000000
#define CLINT_MSIP     (CLINT_BASE + 0x0)
#define CLINT_MTIMECMP (CLINT_BASE + 0x4000)
#define CLINT_MTIME    (CLINT_BASE + 0xBFF8)

/* ---- page tables ---- */
#define PTE_V (1 << 0)
#define PTE_R (1 << 1)
#define PTE_W (1 << 2)
#define PTE_X (1 << 3)
#define PTE_U (1 << 4)
#define PTE_G (1 << 5)
#define PTE_A (1 << 6)
#define PTE_D (1 << 7)
#define SATP_MODE_BARE 0
#define SATP_MODE_SV39 8
#define SATP_MODE_SV48 9
#define SATP_MODE_SV57 10

/* ---- trap record layout (trap_rec, strap_rec) ---- */
#define R_CAUSE  0
#define R_EPC    8
#define R_TVAL   16
#define R_STATUS 24
#define R_COUNT  32
#define R_RESUME 40
#define R_SAVE1  48
#define R_SAVE2  56

/* ---- checks (numbered; -DPRIV_FLIP=n inverts check n) ---- */

/* reg == val (any 64-bit constant). Clobbers t6. */
#define EXPECT(n, reg, val)                 \
    li TESTNUM, n;                          \
    li t6, val;                             \
    .if (n) == PRIV_FLIP;                   \
    beq reg, t6, fail;                      \
    .else;                                  \
    bne reg, t6, fail;                      \
    .endif

/* reg == address of symbol. Clobbers t6. */
#define EXPECT_ADDR(n, reg, sym)            \
    li TESTNUM, n;                          \
    la t6, sym;                             \
    .if (n) == PRIV_FLIP;                   \
    beq reg, t6, fail;                      \
    .else;                                  \
    bne reg, t6, fail;                      \
    .endif

/* a == b (registers). */
#define EXPECT_REG(n, a, b)                 \
    li TESTNUM, n;                          \
    .if (n) == PRIV_FLIP;                   \
    beq a, b, fail;                         \
    .else;                                  \
    bne a, b, fail;                         \
    .endif

/* a != b (registers). */
#define EXPECT_NE_REG(n, a, b)              \
    li TESTNUM, n;                          \
    .if (n) == PRIV_FLIP;                   \
    bne a, b, fail;                         \
    .else;                                  \
    beq a, b, fail;                         \
    .endif

/* a < b, unsigned (registers). */
#define EXPECT_LTU(n, a, b)                 \
    li TESTNUM, n;                          \
    .if (n) == PRIV_FLIP;                   \
    bltu a, b, fail;                        \
    .else;                                  \
    bgeu a, b, fail;                        \
    .endif

/* (reg & mask) == val. reg may be t5. Clobbers t5, t6. */
#define EXPECT_BITS(n, reg, mask, val)      \
    li t6, mask;                            \
    and t5, reg, t6;                        \
    EXPECT(n, t5, val)

/* M trap record field == val / == symbol / == register. Clobber t5, t6. */
#define EXPECT_REC(n, field, val)           \
    la t5, trap_rec;                        \
    ld t5, field(t5);                       \
    EXPECT(n, t5, val)
#define EXPECT_REC_ADDR(n, field, sym)      \
    la t5, trap_rec;                        \
    ld t5, field(t5);                       \
    EXPECT_ADDR(n, t5, sym)
#define EXPECT_REC_REG(n, field, reg)       \
    la t5, trap_rec;                        \
    ld t5, field(t5);                       \
    EXPECT_REG(n, t5, reg)
#define EXPECT_REC_BITS(n, field, mask, val) \
    la t5, trap_rec;                        \
    ld t5, field(t5);                       \
    EXPECT_BITS(n, t5, mask, val)
/* Same for the S-mode record. */
#define EXPECT_SREC(n, field, val)          \
    la t5, strap_rec;                       \
    ld t5, field(t5);                       \
    EXPECT(n, t5, val)
#define EXPECT_SREC_ADDR(n, field, sym)     \
    la t5, strap_rec;                       \
    ld t5, field(t5);                       \
    EXPECT_ADDR(n, t5, sym)
#define EXPECT_SREC_REG(n, field, reg)      \
    la t5, strap_rec;                       \
    ld t5, field(t5);                       \
    EXPECT_REG(n, t5, reg)
#define EXPECT_SREC_BITS(n, field, mask, val) \
    la t5, strap_rec;                       \
    ld t5, field(t5);                       \
    EXPECT_BITS(n, t5, mask, val)

/* M trap record: mtval holds the 32-bit instruction at mepc (read
 * physically, so only for code at identity addresses). Clobbers t4-t6. */
#define EXPECT_TVAL_INSN(n)                 \
    la t5, trap_rec;                        \
    ld t4, R_EPC(t5);                       \
    lwu t4, 0(t4);                          \
    ld t5, R_TVAL(t5);                      \
    EXPECT_REG(n, t5, t4)
#define EXPECT_STVAL_INSN(n)                \
    la t5, strap_rec;                       \
    ld t4, R_EPC(t5);                       \
    lwu t4, 0(t4);                          \
    ld t5, R_TVAL(t5);                      \
    EXPECT_REG(n, t5, t4)

/* ---- assembler macros ---- */

/* Next M-mode trap resumes at `label` (in M); R_CAUSE is set to 0xbad so
 * that a missing trap shows. Clobbers t0, t1. */
.macro M_EXPECT label
    la t0, \label
    la t1, trap_rec
    sd t0, R_RESUME(t1)
    li t0, 0xbad            /* no trap -> cause checks see 0xbad */
    sd t0, R_CAUSE(t1)
.endm

/* Next S-mode trap (trap_s) resumes at `label` (in S). Clobbers t0, t1. */
.macro S_EXPECT label
    la t0, \label
    la t1, strap_rec
    sd t0, R_RESUME(t1)
    li t0, 0xbad
    sd t0, R_CAUSE(t1)
.endm

/* Cancel a pending M_EXPECT (the instruction did not trap). Clobbers t1. */
.macro M_EXPECT_CANCEL
    la t1, trap_rec
    sd zero, R_RESUME(t1)
.endm

/* t0 = 1 if the hart looks like QEMU (mvendorid 0, marchid == mimpid != 0:
 * QEMU puts its version in both), else 0. Nimbus reports marchid 0.
 * Clobbers t0, t1. */
.macro IS_QEMU
    csrr t0, mvendorid
    bnez t0, .Lnot_qemu\@
    csrr t0, marchid
    beqz t0, .Lnot_qemu\@
    csrr t1, mimpid
    bne t0, t1, .Lnot_qemu\@
    li t0, 1
    j .Lqemu_done\@
.Lnot_qemu\@:
    li t0, 0
.Lqemu_done\@:
.endm

/* Jump to `label` on QEMU, to skip checks of behaviour that QEMU 7.2 gets
 * wrong (each use says what). -DPRIV_NO_SKIP runs them anyway (so they can
 * be seen failing on QEMU). Clobbers t0, t1. */
.macro SKIP_ON_QEMU label
#ifndef PRIV_NO_SKIP
    IS_QEMU
    bnez t0, \label
#endif
.endm

/* a0 = 1 if the `time` CSR is implemented (rdtime does not trap in M),
 * else 0. QEMU's spike machine has no time CSR (it gives its CLINT no rdtime
 * callback, and so has no Sstc either), so a0 = 0 is accepted on QEMU; on
 * any other hart (Nimbus) check n fails then.
 * Clobbers a1, t0, t1, t5, t6. */
.macro PROBE_TIME n
    li a0, 0
    M_EXPECT .Lpt_trap\@
    rdtime a1
    li a0, 1
    M_EXPECT_CANCEL
    j .Lpt_done\@
.Lpt_trap\@:
    IS_QEMU
    EXPECT(\n, t0, 1)
    li a0, 0
.Lpt_done\@:
.endm

/* Zero the trap counters. Clobbers t0. */
.macro CLEAR_COUNTS
    la t0, trap_rec
    sd zero, R_COUNT(t0)
    sd zero, R_CAUSE(t0)
    la t0, strap_rec
    sd zero, R_COUNT(t0)
    sd zero, R_CAUSE(t0)
.endm

/* Set mstatus.MPP to `mode`. Clobbers t0. */
.macro SET_MPP mode
    li t0, MSTATUS_MPP
    csrc mstatus, t0
    li t0, ((\mode) << 11)
    csrs mstatus, t0
.endm

/* Run `label` in `mode` (PRV_S / PRV_U); continue after the macro, in M,
 * at the first trap into M. Clobbers t0, t1. */
.macro RUN_IN mode, label
    M_EXPECT .Lrun_back\@
    SET_MPP \mode
    la t0, \label
    csrw mepc, t0
    mret
.Lrun_back\@:
.endm

/* Same, entry point in register `reg` (not t0/t1). */
.macro RUN_AT mode, reg
    M_EXPECT .Lrun_at_back\@
    SET_MPP \mode
    csrw mepc, \reg
    mret
.Lrun_at_back\@:
.endm

/* One PMP entry covering all memory with RWX, so that S and U can run.
 * (Required on QEMU: with no PMP entry programmed, QEMU 7.2 makes mret to
 * S/U an illegal instruction.) Clobbers t0. */
.macro PMP_ALLOW_ALL
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f            /* A=NAPOT, X, W, R */
    csrw pmpcfg0, t0
.endm

/* Standard setup: mtvec = trap_m, PMP allows everything, nothing delegated,
 * no interrupts enabled, mtimecmp far in the future. Clobbers t0, t1. */
.macro PRIV_SETUP
    la t0, trap_m
    csrw mtvec, t0
    la t0, trap_s
    csrw stvec, t0
    PMP_ALLOW_ALL
    csrw medeleg, zero
    csrw mideleg, zero
    csrw mie, zero
    li t0, -1
    li t1, CLINT_MTIMECMP
    sd t0, 0(t1)
    CLEAR_COUNTS
.endm

/* Page-table entry: table[index] = PTE(pa in register `pa`, flags).
 * Clobbers t0-t2. */
.macro PTE_REG table, index, pa, flags
    srli t0, \pa, 12
    slli t0, t0, 10
    li t1, \flags
    or t0, t0, t1
    la t1, \table
    li t2, (\index) * 8
    add t1, t1, t2
    sd t0, 0(t1)
.endm

/* table[index] = PTE(address of symbol, flags). Clobbers t0-t3. */
.macro PTE_SYM table, index, sym, flags
    la t3, \sym
    PTE_REG \table, \index, t3, \flags
.endm

/* table[index] = PTE(constant physical address, flags). Clobbers t0-t3. */
.macro PTE_PA table, index, pa, flags
    li t3, \pa
    PTE_REG \table, \index, t3, \flags
.endm

/* table[index] = pointer to the next-level table `next`. Clobbers t0-t3. */
.macro PTE_PTR table, index, next
    PTE_SYM \table, \index, \next, PTE_V
.endm

/* reg = address of table[index]. */
.macro PTE_ADDR reg, table, index
    la \reg, \table
    li t6, (\index) * 8
    add \reg, \reg, t6
.endm

/* Zero the 4 KiB page at symbol `sym`. Clobbers t0, t1. */
.macro ZERO_PAGE sym
    la t0, \sym
    li t1, 4096
    add t1, t1, t0
.Lzero\@:
    sd zero, 0(t0)
    addi t0, t0, 8
    bltu t0, t1, .Lzero\@
.endm

/* satp = mode | root PPN; sfence.vma. Clobbers t0, t1. */
.macro SET_SATP mode, root
    la t0, \root
    srli t0, t0, 12
    li t1, (\mode) << 60
    or t0, t0, t1
    csrw satp, t0
    sfence.vma
.endm

/* reg = VA of `sym` in a mapping of the page containing `page` at `va`
 * (va + (sym - page)). */
.macro ALIAS reg, va, sym, page
    la \reg, \sym
    la t6, \page
    sub \reg, \reg, t6
    li t6, \va
    add \reg, \reg, t6
.endm

/* ---- the recording handlers ---- */
    .section .text.priv, "ax", @progbits
    .align 6
    .globl trap_m
trap_m:
    csrw mscratch, t0
    la t0, trap_rec
    sd t1, R_SAVE1(t0)
    sd t2, R_SAVE2(t0)
    csrr t1, mcause
    sd t1, R_CAUSE(t0)
    csrr t1, mepc
    sd t1, R_EPC(t0)
    csrr t1, mtval
    sd t1, R_TVAL(t0)
    csrr t1, mstatus
    sd t1, R_STATUS(t0)
    ld t1, R_COUNT(t0)
    addi t1, t1, 1
    sd t1, R_COUNT(t0)
    ld t1, R_RESUME(t0)
    beqz t1, 1f
    sd zero, R_RESUME(t0)
    csrw mepc, t1
    li t1, MSTATUS_MPP          /* resume in M ... */
    csrs mstatus, t1
    li t1, MSTATUS_MPIE         /* ... with MIE = 0 */
    csrc mstatus, t1
    ld t1, R_SAVE1(t0)
    ld t2, R_SAVE2(t0)
    csrr t0, mscratch
    mret
1:  csrr t0, mscratch
    j unexpected_trap

    .align 6
    .globl trap_s
trap_s:
    csrw sscratch, t0
    la t0, strap_rec
    sd t1, R_SAVE1(t0)
    sd t2, R_SAVE2(t0)
    csrr t1, scause
    sd t1, R_CAUSE(t0)
    csrr t1, sepc
    sd t1, R_EPC(t0)
    csrr t1, stval
    sd t1, R_TVAL(t0)
    csrr t1, sstatus
    sd t1, R_STATUS(t0)
    ld t1, R_COUNT(t0)
    addi t1, t1, 1
    sd t1, R_COUNT(t0)
    ld t1, R_RESUME(t0)
    beqz t1, 1f
    sd zero, R_RESUME(t0)
    csrw sepc, t1
    li t1, MSTATUS_SPP          /* resume in S ... */
    csrs sstatus, t1
    li t1, MSTATUS_SPIE         /* ... with SIE = 0 */
    csrc sstatus, t1
    ld t1, R_SAVE1(t0)
    ld t2, R_SAVE2(t0)
    csrr t0, sscratch
    sret
1:  csrr t0, scause
    bltz t0, 2f
    li TESTNUM, 2000
    add TESTNUM, TESTNUM, t0
    j fail
2:  slli t0, t0, 1
    srli t0, t0, 1
    li TESTNUM, 2100
    add TESTNUM, TESTNUM, t0
    j fail

    .section .data.priv, "aw", @progbits
    .align 6
    .globl trap_rec, strap_rec
trap_rec:  .dword 0, 0, 0, 0, 0, 0, 0, 0
strap_rec: .dword 0, 0, 0, 0, 0, 0, 0, 0

    .text
#endif
