# nimbus-args: --smp 2
/* Cross-hart code modification while the code runs hot (Zifencei; unlike
 * smp_fence_i, where hart 0 waits in a load loop, here hart 0 keeps calling
 * the code hart 1 rewrites, so its translations are in use during the
 * stores). Two targets, both `addi a0, zero, round`: f_word, rewritten with
 * sw, and f_str, whose 4 bytes straddle a page boundary and whose upper half
 * (the immediate, on the second page) is rewritten with sh.
 *
 * Round r: hart 1 rewrites both to return r, then raises `ready`. Hart 0
 * calls both in a loop until it sees ready == r: before its fence.i either
 * value, r - 1 or r, may come back (the spec allows stale code until
 * fence.i), nothing else (checks 1, 2); after fence.i only r (3, 4).
 *
 * QEMU 7.2 fails check 3: after fence.i hart 0 gets the previous round's
 * value. Its fence.i only ends the translation block (QEMU relies on
 * catching stores to translated code instead), and that apparently misses
 * a store made while the other vCPU is translating the same code. */
#include "test.h"

#define ROUNDS 200

TEST_BEGIN
    csrr t0, mhartid
    bnez t0, hart1

    li s0, 1                        /* round */
1:  addi s2, s0, -1                 /* the old value */
2:  call f_word
    li TESTNUM, 1
    beq a0, s0, 3f
    bne a0, s2, fail
3:  call f_str
    li TESTNUM, 2
    beq a0, s0, 4f
    bne a0, s2, fail
4:  la t0, ready
    lw t1, 0(t0)
    bne t1, s0, 2b
    fence.i
    call f_word
    CHECK_REG(3, a0, s0)
    call f_str
    CHECK_REG(4, a0, s0)
    la t0, ack
    sw s0, 0(t0)
    addi s0, s0, 1
    li t1, ROUNDS
    ble s0, t1, 1b
    TEST_PASS

hart1:
    li s0, 1
5:  la t0, ack                      /* hart 0 done with the last round */
    lw t1, 0(t0)
    addi t2, s0, -1
    bne t1, t2, 5b
    slli t3, s0, 20                 /* addi a0, zero, s0 */
    li t4, 0x00000513
    or t3, t3, t4
    la t0, f_word
    sw t3, 0(t0)
    slli t3, s0, 4                  /* upper half: imm << 4 (rs1 = 0) */
    la t0, f_str_insn
    sh t3, 2(t0)
    fence w, w
    la t0, ready
    sw s0, 0(t0)
    addi s0, s0, 1
    li t1, ROUNDS
    ble s0, t1, 5b
6:  wfi
    j 6b

    .option push
    .option norvc
    /* A section of its own: the linker aligns it (an .align after RVC code
     * in .text is not honoured when linking with --no-relax), and the
     * stores to f_word must be aligned to be single-copy atomic. */
    .section .text.f_word, "ax", @progbits
    .balign 64
f_word:
    addi a0, zero, 0
    ret

    .section .text.straddle, "ax", @progbits
    .balign 4096
    .skip 4096 - 4
f_str:
    .2byte 0x0001                   /* c.nop: page end - 4 */
f_str_insn:
    addi a0, zero, 0                /* page end - 2: halves on two pages */
    ret
    .option pop

    .data
    .align 3
ready: .word 0
ack:   .word 0
