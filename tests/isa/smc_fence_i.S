/* Self-modifying code on one hart (Zifencei): code patched with sw/sh and
 * then fence.i must run new, whether it was cold, hot (called more than 100
 * times first, so translated at the default --jit-threshold of 50 as well
 * as at 0), inside a superblock (after a not-taken branch, after a block
 * cut at 16 instructions), right after the end of a 48-instruction unit
 * or of one ended by a CSR access, the target of a jump in a hot loop, or
 * across a page boundary (a function on two pages, a 4-byte instruction
 * whose halves sit on two pages).
 *
 * Without fence.i the spec lets a hart fetch either the old or the new
 * code (Zifencei; Nimbus documents nothing stronger), so check 60 accepts
 * either, and only asks that nothing else comes out.
 *
 * Checks: 1-2 cold; 10-11 hot, 20 rounds; 20-21 patched every iteration
 * of a hot loop; 30-32 superblock interior; 40-43 unit end; 44-45 the
 * instruction after a CSR access (which ends a unit); 50-52 jump target
 * and jump in a hot loop; 60-61 no fence.i, then fence.i; 70-77 page
 * boundary. */
#include "test.h"

#define ADDI_A0_ZERO(imm) (0x00000513 | ((imm) << 20)) /* addi a0, zero, imm */
#define ADDI_A0_A0(imm)   (0x00050513 | ((imm) << 20)) /* addi a0, a0, imm */
#define HOT 150                                        /* calls to make code hot */

/* sym: = word. Clobbers t0, t1. */
.macro PATCH sym, word
    la t0, \sym
    li t1, \word
    sw t1, 0(t0)
.endm

/* Calls `fn` (a1 = 1) `n` times; every call must return `val` in a0, else
 * check `chk` fails. Clobbers s1, t6, caller-saved. */
.macro CALL_N fn, n, val, chk
    li s1, \n
.Lcall\@:
    li a1, 1
    call \fn
    CHECK(\chk, a0, \val)
    addi s1, s1, -1
    bnez s1, .Lcall\@
.endm

TEST_BEGIN
    /* ---- 1-2: cold code ---- */
    PATCH f_cold, ADDI_A0_ZERO(2)
    fence.i
    call f_cold
    CHECK(1, a0, 2)
    PATCH f_cold, ADDI_A0_ZERO(3)
    fence.i
    call f_cold
    CHECK(2, a0, 3)

    /* ---- 10-11: hot code, 20 rounds of patch + fence.i ---- */
    CALL_N f_hot, HOT, 1, 10
    li s2, 2
1:  la t0, f_hot                    /* f_hot: addi a0, zero, s2 */
    slli t1, s2, 20
    li t2, ADDI_A0_ZERO(0)
    or t1, t1, t2
    sw t1, 0(t0)
    fence.i
    li s1, HOT
2:  call f_hot
    li TESTNUM, 11
    bne a0, s2, fail
    addi s1, s1, -1
    bnez s1, 2b
    addi s2, s2, 1
    li t0, 22
    blt s2, t0, 1b

    /* ---- 20-21: a hot loop patching, fencing and running its target
     * each iteration ---- */
    li s2, 1
3:  la t0, loop_target              /* loop_target: addi a0, zero, s2 */
    slli t1, s2, 20
    li t2, ADDI_A0_ZERO(0)
    or t1, t1, t2
    sw t1, 0(t0)
    fence.i
    jal ra, loop_target
    li TESTNUM, 20
    bne a0, s2, fail
    addi s2, s2, 1
    li t0, 300
    blt s2, t0, 3b
    CHECK(21, s2, 300)

    /* ---- 30-32: inside a superblock ---- */
    CALL_N f_super, HOT, 0x111, 30
    PATCH f_super_b2, ADDI_A0_A0(0x20)  /* second block: after a not-taken beq */
    fence.i
    CALL_N f_super, HOT, 0x121, 31
    PATCH f_super_b3, ADDI_A0_A0(0x200) /* third block: after a cut at 16 */
    fence.i
    CALL_N f_super, HOT, 0x221, 32

    /* ---- 40-43: the end of a 48-instruction unit ---- */
    CALL_N f_long, HOT, 59, 40
    PATCH f_long_48, ADDI_A0_A0(100)    /* first instruction after the unit */
    fence.i
    CALL_N f_long, HOT, 158, 41
    PATCH f_long_47, ADDI_A0_A0(1000)   /* last instruction of the unit */
    fence.i
    CALL_N f_long, HOT, 1157, 42
    PATCH f_long_48, ADDI_A0_A0(1)      /* back: a unit for these bytes existed */
    PATCH f_long_47, ADDI_A0_A0(1)
    fence.i
    CALL_N f_long, HOT, 59, 43
    CALL_N f_csr, HOT, 1, 44            /* a unit ended by a CSR access */
    PATCH f_csr_next, ADDI_A0_ZERO(2)
    fence.i
    CALL_N f_csr, HOT, 2, 45

    /* ---- 50-52: a hot loop's jump target, then the jump ---- */
    CALL_N f_jloop, 4, 200, 50          /* 800 iterations: hot */
    PATCH f_jloop_target, ADDI_A0_A0(2)
    fence.i
    CALL_N f_jloop, 4, 400, 51
    /* retarget `j f_jloop_target` to f_jloop_alt (+3 per iteration) */
    la t0, f_jloop_jump
    la t1, f_jloop_alt
    sub t1, t1, t0                      /* J-type offset, < 2 KiB, positive */
    andi t2, t1, 0x7fe                  /* imm[10:1] -> bits 30:21 */
    slli t2, t2, 20
    srli t3, t1, 11                     /* imm[11] -> bit 20 */
    andi t3, t3, 1
    slli t3, t3, 20
    or t2, t2, t3
    ori t2, t2, 0x6f                    /* jal x0 */
    sw t2, 0(t0)
    fence.i
    CALL_N f_jloop, 4, 600, 52

    /* ---- 60-61: no fence.i: old or new code, nothing else ---- */
    CALL_N f_nofence, HOT, 5, 60
    PATCH f_nofence, ADDI_A0_ZERO(6)
    li s1, HOT
4:  call f_nofence
    li TESTNUM, 60
    li t0, 5
    beq a0, t0, 5f
    li t0, 6
    bne a0, t0, fail
5:  addi s1, s1, -1
    bnez s1, 4b
    fence.i
    CALL_N f_nofence, 2, 6, 61

    /* ---- 70-77: across a page boundary ---- */
    CALL_N f_straddle, HOT, 0, 70       /* a0 = 0, a1 = 0, a2 = 0, a3 kept */
    li a3, 0x99
    call f_straddle
    CHECK(71, a3, 0x99)
    /* imm of the straddling `addi a1, zero, 0`: its upper half, on the
     * second page */
    la t0, f_straddle_insn
    li t1, 0x55 << 4
    sh t1, 2(t0)
    fence.i
    call f_straddle
    CHECK(72, a1, 0x55)
    /* its lower half, on the first page: rd a1 -> a3 */
    li t1, (13 << 7) | 0x13
    sh t1, 0(t0)
    fence.i
    li a1, 0x11
    call f_straddle
    CHECK(73, a3, 0x55)
    CHECK(74, a1, 0x11)
    /* whole instructions on each side, hot again */
    PATCH f_straddle, ADDI_A0_ZERO(0x77)
    PATCH f_straddle_p2, (0x00000613 | (0x66 << 20)) /* addi a2, zero, 0x66 */
    fence.i
    CALL_N f_straddle, HOT, 0x77, 75
    CHECK(76, a2, 0x66)
    CHECK(77, a3, 0x55)
    TEST_PASS

/* ---------------- patched code ---------------- */
    .option push
    .option norvc
    .align 2
f_cold:
    addi a0, zero, 1
    ret

f_hot:
    addi a0, zero, 1
    ret

loop_target:
    addi a0, zero, 0
    ret

    /* a1 = 1: the beq is not taken, so one unit holds all three blocks */
f_super:
    addi a0, zero, 0x1
    beq a1, zero, 1f
f_super_b2:
    addi a0, a0, 0x10                   /* block 2: 16 instructions */
    .rept 15
    nop
    .endr
f_super_b3:
    addi a0, a0, 0x100                  /* block 3 */
1:  ret

    /* 60 instructions then ret, in one page: the first unit holds 48 */
    .balign 512
f_long:
    li a0, 0
    .rept 46
    addi a0, a0, 1
    .endr
f_long_47:
    addi a0, a0, 1                      /* instruction 47 (from 0) */
f_long_48:
    addi a0, a0, 1                      /* instruction 48: a new unit */
    .rept 11
    addi a0, a0, 1
    .endr
    ret

    /* The translator hands csrr to the interpreter: f_csr_next starts the
     * next unit. */
f_csr:
    csrr t0, mscratch
f_csr_next:
    addi a0, zero, 1
    ret

    /* 200 iterations of a loop that jumps to a target block and back */
    .balign 256
f_jloop:
    li a0, 0
    li t0, 200
f_jloop_jump:
    j f_jloop_target
f_jloop_back:
    addi t0, t0, -1
    bnez t0, f_jloop_jump
    ret
f_jloop_target:
    addi a0, a0, 1
    j f_jloop_back
f_jloop_alt:
    addi a0, a0, 3
    j f_jloop_back

f_nofence:
    addi a0, zero, 5
    ret

    /* A function whose third instruction straddles a page boundary. */
    .section .text.straddle, "ax", @progbits
    .balign 4096
    .skip 4096 - 8
f_straddle:
    addi a0, zero, 0                    /* page end - 8 */
    .2byte 0x0001                       /* c.nop, page end - 4 */
f_straddle_insn:
    addi a1, zero, 0                    /* page end - 2: halves on two pages */
f_straddle_p2:
    addi a2, zero, 0                    /* second page */
    ret
    .option pop
