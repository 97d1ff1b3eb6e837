# nimbus-args: --smp 2
/* Interrupt latency in tight loops, which the binary translator runs as
 * chained superblocks: the machine timer and software interrupts must
 * interrupt them within a bounded number of instructions.
 *
 * The bounds come from the interpreter's run loop (src/cpu/interp.c), which
 * translated code keeps (every unit entry, chained ones too, and every
 * block boundary inside a unit checks the slice's step budget):
 *  - pending interrupts are checked before each slice, and a slice runs at
 *    most SLICE_INSNS (1024) steps plus one decoded block (16 instructions:
 *    BLOCK_MAX_INSNS) past its budget;
 *  - MTIP follows mtime >= mtimecmp only where the run loop updates the
 *    timers: every TIMER_CHECK_INSNS (8192) instructions, at a slice start.
 * So once the hart has seen mtime >= mtimecmp (with mie.MTIE set), the
 * timer interrupt is taken within 8192 + 1024 + 16 instructions (the next
 * timer update, at most a slice late); an MSIP raised by the hart's own
 * store within 1024 + 16. Both bounds get SLACK instructions for the code
 * around the loop and trap_m, which run between the two minstret reads.
 *
 * Checks: 1-4 timer in a counting loop (no loads), 5-8 timer in a loop
 * jumping to itself, 9-12 timer in a loop of three blocks (a superblock
 * through a not-taken branch): n cause, n+1 mepc in the loop, n+2 the
 * latency bound, n+3 the counting loop did not run out; 20-22 MSIP raised
 * by the hart itself in a loop jumping to itself: cause, mepc, bound;
 * 30-31 MSIP raised by hart 1 while hart 0 spins in a loop jumping to
 * itself: cause, mepc (a missing interrupt hangs: the runner's timeout).
 *
 * On QEMU 7.2 (without -icount minstret counts host time, and its bounds
 * are not these) the latency checks n+2 are skipped: see SKIP_ON_QEMU. */
#include "test.h"
#include "priv.h"

#define SLICE_STEPS 1024
#define BLOCK_INSNS 16
#define TIMER_CHECK 8192
#define SLACK 128
#define TIMER_BOUND (TIMER_CHECK + SLICE_STEPS + BLOCK_INSNS + SLACK)
#define MSIP_BOUND (SLICE_STEPS + BLOCK_INSNS + SLACK)
#define DELAY_TICKS 1000                    /* 100 us at 10 MHz */
#define SPINS (1 << 24)

/* Arms the timer DELAY_TICKS ahead, waits with MIE = 0 until mtime passes
 * mtimecmp, reads minstret into s1, enables MIE and jumps to `loop`; the
 * interrupt resumes at `back` (in M, MIE = 0) with minstret in s2. */
.macro TIMER_INTO loop, back
    li t0, MSTATUS_MIE
    csrc mstatus, t0
    li t0, MIP_MTIP
    csrw mie, t0
    li t2, CLINT_MTIME
    ld t1, 0(t2)
    li t0, DELAY_TICKS
    add t1, t1, t0
    li t0, CLINT_MTIMECMP
    sd t1, 0(t0)
.Lwait\@:
    ld t0, 0(t2)
    bltu t0, t1, .Lwait\@
    M_EXPECT \back
    li a0, 0
    li a1, SPINS
    csrr s1, minstret
    csrsi mstatus, MSTATUS_MIE
    j \loop
.endm

/* After an interrupt: timer off, then checks n (cause == `cause`), n+1
 * (mepc in [lo, hi)), n+2 (s2 - s1 < bound). */
.macro CHECK_IRQ n, cause, lo, hi, bound
    csrr s2, minstret
    li t0, -1
    li t1, CLINT_MTIMECMP
    sd t0, 0(t1)
    csrw mie, zero
    EXPECT_REC(\n, R_CAUSE, INT_CAUSE(\cause))
    la t5, trap_rec
    ld t5, R_EPC(t5)
    la t4, \lo
    la t3, \hi
    li TESTNUM, \n + 1
    bltu t5, t4, fail
    bgeu t5, t3, fail
    SKIP_ON_QEMU .Lno_bound\@
    sub a2, s2, s1
    li a3, \bound
    EXPECT_LTU(\n + 2, a2, a3)
.Lno_bound\@:
.endm

TEST_BEGIN
    csrr t0, mhartid
    bnez t0, hart1
    PRIV_SETUP
    li t0, CLINT_MSIP
    sw zero, 0(t0)

    /* ---- 1-4: counting loop, no loads ---- */
    TIMER_INTO count_loop, 1f
count_loop:
    addi a0, a0, 1
    bne a0, a1, count_loop
count_loop_end:
    li TESTNUM, 4                       /* SPINS iterations, no interrupt */
    j fail
1:  CHECK_IRQ 1, IRQ_M_TIMER, count_loop, count_loop_end, TIMER_BOUND

    /* ---- 5-8: a loop jumping to itself ---- */
    TIMER_INTO self_loop, 1f
self_loop:
    j self_loop
self_loop_end:
1:  CHECK_IRQ 5, IRQ_M_TIMER, self_loop, self_loop_end, TIMER_BOUND

    /* ---- 9-12: three blocks, chained through not-taken branches ---- */
    TIMER_INTO super_loop, 1f
super_loop:
    addi a0, a0, 1
    beq a0, zero, super_out             /* never taken */
    addi a2, a2, 3
    beq a2, zero, super_out             /* never taken (a2 = 3k, no wrap) */
    xor a3, a3, a0
    bne a0, a1, super_loop
super_out:
    li TESTNUM, 12
    j fail
super_loop_end:
1:  CHECK_IRQ 9, IRQ_M_TIMER, super_loop, super_loop_end, TIMER_BOUND

    /* ---- 20-22: MSIP from this hart's own store, in a self loop ---- */
    li t0, MIP_MSIP
    csrw mie, t0
    M_EXPECT 1f
    li t0, CLINT_MSIP
    li t1, 1
    csrsi mstatus, MSTATUS_MIE
    csrr s1, minstret
    sw t1, 0(t0)
msip_loop:
    j msip_loop
msip_loop_end:
1:  li t0, CLINT_MSIP
    sw zero, 0(t0)
    CHECK_IRQ 20, IRQ_M_SOFT, msip_loop, msip_loop_end, MSIP_BOUND

    /* ---- 30-31: MSIP from hart 1 while this hart spins ---- */
    li t0, MIP_MSIP
    csrw mie, t0
    M_EXPECT 1f
    csrsi mstatus, MSTATUS_MIE
    li t0, CLINT_MSIP + 4               /* wake hart 1 */
    li t1, 1
    sw t1, 0(t0)
remote_loop:
    j remote_loop
remote_loop_end:
1:  li t0, CLINT_MSIP
    sw zero, 0(t0)
    csrw mie, zero
    EXPECT_REC(30, R_CAUSE, INT_CAUSE(IRQ_M_SOFT))
    /* The interrupt comes after the store to hart 1's MSIP: in the loop. */
    EXPECT_REC_ADDR(31, R_EPC, remote_loop)
    TEST_PASS

/* Hart 1: sleeps until hart 0 raises its MSIP (MIE = 0: wfi just returns),
 * then raises hart 0's. */
hart1:
    li t0, MIP_MSIP
    csrw mie, t0
2:  wfi
    csrr t0, mip
    andi t0, t0, MIP_MSIP
    beqz t0, 2b
    li t0, CLINT_MSIP + 4
    sw zero, 0(t0)
    li t0, CLINT_MSIP
    li t1, 1
    sw t1, 0(t0)
    csrw mie, zero
3:  wfi
    j 3b
