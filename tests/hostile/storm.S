/* Interrupt and trap storm on 4 harts, forever: each hart in a loop raises
 * its own machine software interrupt (self-IPI), pokes the next hart's MSIP
 * (cross-IPI), sets its mtimecmp to 0 (a timer interrupt at once), makes an
 * ecall and runs an illegal instruction. The handler clears each source and
 * skips each exception. Hart 0 prints "storm running" after 20000 rounds.
 * An unexpected trap fails the program (HTIF).
 *
 * nimbus-args: --smp 4 */
#include "test.h"
#include "hostile.h"

#define NHARTS 4

TEST_BEGIN
    mv s0, a0               /* hartid */
    la t0, storm_trap
    csrw mtvec, t0
    slli s1, s0, 2
    li t0, CLINT_MSIP
    add s1, s1, t0          /* own MSIP */
    addi t0, s0, 1
    andi t0, t0, NHARTS - 1
    slli t0, t0, 2
    li t1, CLINT_MSIP
    add s2, t0, t1          /* next hart's MSIP */
    slli s3, s0, 3
    li t0, CLINT_MTIMECMP
    add s3, s3, t0          /* own mtimecmp */
    li t0, -1
    sd t0, 0(s3)
    li t0, MIP_MSIP | MIP_MTIP
    csrw mie, t0
    csrsi mstatus, MSTATUS_MIE
    li s4, 0                /* rounds */
    li s5, 20000
    li s6, 1
1:  sw s6, 0(s1)            /* self-IPI */
    sw s6, 0(s2)            /* cross-IPI */
    sd zero, 0(s3)          /* timer fires now */
    ecall
    .option push
    .option norvc
    csrrw x0, cycle, x0     /* illegal: cycle is read-only */
    .option pop
    addi s4, s4, 1
    bnez s0, 1b
    bne s4, s5, 1b
    UART_PUTS msg_storm
    j 1b

/* s8, s9 belong to the handler; s0-s3 hold this hart's addresses. */
    .align 6
storm_trap:
    csrr s8, mcause
    bltz s8, 2f
    li s9, 2                /* illegal instruction */
    beq s8, s9, 1f
    li s9, 11               /* ecall from M */
    beq s8, s9, 1f
    j unexpected_trap
1:  csrr s9, mepc
    addi s9, s9, 4
    csrw mepc, s9
    mret
2:  slli s8, s8, 1
    srli s8, s8, 1
    li s9, 3
    beq s8, s9, 3f
    li s9, 7
    bne s8, s9, unexpected_trap
    li s9, -1               /* timer: push mtimecmp away */
    sd s9, 0(s3)
    mret
3:  sw zero, 0(s1)          /* software: clear own MSIP */
    mret

    .data
msg_storm: .asciz "storm running\r\n"
