# nimbus-args: --smp 2
/* Cross-hart code modification (Zifencei): hart 1 rewrites the immediate of
 * an instruction in `patched`, then raises `ready`; hart 0 waits for it,
 * executes fence.i and calls `patched`, which must return the new value.
 * Hart 0 calls the function before every patch too, so a stale decoding is
 * always in its caches: only fence.i makes the new code visible. */
#include "test.h"

#define ROUNDS 200

TEST_BEGIN
    csrr t0, mhartid
    bnez t0, hart1

    /* hart 0 */
    li s0, 1                    /* round */
1:  call patched                /* warm: decodes the current code */
    la t0, ready
2:  lw t1, 0(t0)                /* wait for hart 1's patch of this round */
    bne t1, s0, 2b
    fence.i
    call patched
    li TESTNUM, 1
    bne a0, s0, fail            /* must see the value patched in this round */
    la t0, ack
    sw s0, 0(t0)                /* let hart 1 go on */
    addi s0, s0, 1
    li t1, ROUNDS
    ble s0, t1, 1b
    TEST_PASS

hart1:
    li s0, 1
3:  la t0, ack                  /* wait until hart 0 finished the last round */
    lw t1, 0(t0)
    addi t2, s0, -1
    bne t1, t2, 3b
    /* new instruction: addi a0, x0, s0 (I-type, imm = round) */
    slli t3, s0, 20
    li t4, 0x00000513           /* addi a0, x0, 0 */
    or t3, t3, t4
    la t0, patched
    sw t3, 0(t0)
    fence w, w
    la t0, ready
    sw s0, 0(t0)
    addi s0, s0, 1
    li t1, ROUNDS
    ble s0, t1, 3b
4:  wfi
    j 4b

    .align 2
    .option push
    .option norvc
patched:
    addi a0, x0, 0
    ret
    .option pop

    .data
    .align 3
ready: .word 0
ack:   .word 0
