# nimbus-args: --smp 4
/* SMP atomics stress: NHARTS harts hammer shared counters at the same time.
 *
 * Every hart starts at _start in M-mode (mhartid tells them apart) and
 * gets its own stack; harts numbered NHARTS and up just park. After a start
 * barrier, each of the NHARTS harts runs ITERS iterations of:
 *   A += 1    amoadd.w
 *   B += 1    amoadd.d
 *   C += 1    lr.d/sc.d retry loop
 *   D += 1    plain ld/addi/sd inside a spinlock taken with lr.w.aq/sc.w
 *             and released with fence rw,w + sw zero
 *   E = max   amomax.d with a per-hart value: hart 0 offers ~i (negative,
 *             so a signed max must never pick it), hart h > 0 offers
 *             (h << 32) + i
 *   F |= bit  amoor.w of 1 << hartid
 *   P += 1    plain ld/addi/sd on the hart's own stack (no sharing)
 * then checks P and adds itself to `done`. Hart 0 waits for `done` to reach
 * NHARTS and checks the exact totals: A = B = C = D = NHARTS * ITERS,
 * E = ((NHARTS - 1) << 32) + ITERS - 1, F = (1 << NHARTS) - 1, the lock free
 * and the words next to A and F untouched.
 *
 * All waits are bounded by an iteration count (QEMU's spike machine has no
 * time CSR), so with fewer than NHARTS harts the program fails instead of
 * hanging: check 90 (start barrier) or 91 (waiting for `done`).
 *
 * Checks: 1-9 totals (hart 0); 10 + hartid private stack counter;
 * 90/91 timeouts.
 *
 * Runs with `nimbus run --bios smp_atomics.elf --smp 4` and with
 * `qemu-system-riscv64 -M spike -smp 4 -bios none -kernel smp_atomics.elf`. */
#include "test.h"

#define NHARTS 4
#define ITERS 200000
#define STACK_SIZE 4096
/* Bounded waits, in polling iterations (about 5 instructions each): far
 * longer than the others need to arrive or to finish their ITERS. */
#define WAIT_SPINS 0x4000000
#define GUARD 0x5a5a5a5a

    TEST_BEGIN
    csrr s0, mhartid
    li t0, NHARTS
    bgeu s0, t0, park           /* harts beyond NHARTS take no part */

    /* Own stack: stacks + (hartid + 1) * STACK_SIZE, 16-byte aligned. */
    la sp, stacks
    addi t0, s0, 1
    li t1, STACK_SIZE
    mul t0, t0, t1
    add sp, sp, t0
    addi sp, sp, -16
    sd zero, 0(sp)              /* P: private counter */

    la a0, cnt_a
    la a1, cnt_b
    la a2, cnt_c
    la a3, cnt_d
    la a4, cnt_e
    la a5, cnt_f
    la a6, lock
    li s1, 1
    sll s4, s1, s0              /* this hart's bit */
    li s2, ITERS
    li s3, 0                    /* i */

    /* Start barrier, so that all harts run the loop at the same time. */
    la t0, ready
    amoadd.w.aqrl zero, s1, (t0)
    li t1, WAIT_SPINS
    li t3, NHARTS
1:  lw t2, 0(t0)
    beq t2, t3, loop
    addi t1, t1, -1
    bnez t1, 1b
    bnez s0, park
    li TESTNUM, 90              /* not all NHARTS harts arrived */
    j fail

loop:
    amoadd.w zero, s1, (a0)     /* A */
    amoadd.d zero, s1, (a1)     /* B */

2:  lr.d t0, (a2)               /* C */
    addi t0, t0, 1
    sc.d t1, t0, (a2)
    bnez t1, 2b

3:  lr.w.aq t0, (a6)            /* D under the spinlock */
    bnez t0, 4f
    sc.w t1, s1, (a6)
    bnez t1, 3b
    j 5f
4:  lw t0, 0(a6)                /* held: wait with plain loads */
    bnez t0, 4b
    j 3b
5:  ld t0, 0(a3)
    addi t0, t0, 1
    sd t0, 0(a3)
    fence rw, w
    sw zero, 0(a6)              /* release */

    beqz s0, 6f                 /* E */
    slli t0, s0, 32
    add t0, t0, s3
    j 7f
6:  not t0, s3
7:  amomax.d zero, t0, (a4)

    amoor.w zero, s4, (a5)      /* F */

    ld t0, 0(sp)                /* P */
    addi t0, t0, 1
    sd t0, 0(sp)

    addi s3, s3, 1
    bne s3, s2, loop

    /* Private counter intact: stacks are really per hart. */
    ld t0, 0(sp)
    addi TESTNUM, s0, 10
    bne t0, s2, fail

    la t0, done
    amoadd.w.aqrl zero, s1, (t0)
    bnez s0, park

    /* Hart 0: wait for everyone, then check the totals. */
    li t1, WAIT_SPINS
    li t3, NHARTS
8:  lw t2, 0(t0)
    beq t2, t3, 9f
    addi t1, t1, -1
    bnez t1, 8b
    li TESTNUM, 91              /* some hart never finished */
    j fail
9:  fence rw, rw

    lw t0, 0(a0)
    CHECK(1, t0, NHARTS * ITERS)
    ld t0, 0(a1)
    CHECK(2, t0, NHARTS * ITERS)
    ld t0, 0(a2)
    CHECK(3, t0, NHARTS * ITERS)
    ld t0, 0(a3)
    CHECK(4, t0, NHARTS * ITERS)
    ld t0, 0(a4)
    CHECK(5, t0, ((NHARTS - 1) << 32) + ITERS - 1)
    lw t0, 0(a5)
    CHECK(6, t0, (1 << NHARTS) - 1)
    lw t0, 0(a6)
    CHECK(7, t0, 0)
    lw t0, 4(a0)
    CHECK(8, t0, GUARD)
    lw t0, 4(a5)
    CHECK(9, t0, GUARD)
    TEST_PASS

park:
    wfi
    j park

    .data
    /* Each variable on its own 64-byte line. */
    .balign 64
cnt_a:  .word 0, GUARD
    .balign 64
cnt_b:  .dword 0
    .balign 64
cnt_c:  .dword 0
    .balign 64
cnt_d:  .dword 0
    .balign 64
cnt_e:  .dword 0x8000000000000000
    .balign 64
cnt_f:  .word 0, GUARD
    .balign 64
lock:   .word 0
    .balign 64
ready:  .word 0
    .balign 64
done:   .word 0
    .balign 64

    .bss
    .balign 16
stacks: .space NHARTS * STACK_SIZE
