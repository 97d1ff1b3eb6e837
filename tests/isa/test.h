/* Harness for bare-metal RISC-V test programs (assembly).
 *
 * Each program includes this file, starts with TEST_BEGIN and ends in
 * TEST_PASS or a jump to `fail`. Results go through the HTIF `tohost` word,
 * as Spike and QEMU's spike machine do: 1 = pass, (n << 1) | 1 = fail with n.
 * gp (x3) holds the number of the check in progress, so a failure reports
 * which check failed. Any trap that the test did not expect fails the test
 * with 1000 + mcause.
 *
 * Runs unchanged on `nimbus run --bios X.elf` and on
 * `qemu-system-riscv64 -M spike -bios none -kernel X.elf`. */
#ifndef NIMBUS_ISA_TEST_H
#define NIMBUS_ISA_TEST_H

#define TESTNUM gp

/* Entry: M-mode, stack at the end of the image, mtvec = unexpected-trap handler. */
#define TEST_BEGIN                                  \
    .option nopic;                                  \
    .section .text.init;                            \
    .globl _start;                                  \
_start:                                             \
    la sp, _stack_top;                              \
    la t0, unexpected_trap;                         \
    csrw mtvec, t0;                                 \
    li TESTNUM, 0;                                  \
    j test_main;                                    \
    .align 2;                                       \
unexpected_trap:                                    \
    csrr a0, mcause;                                \
    bltz a0, 1f;                                    \
    addi TESTNUM, a0, 1000;                         \
    j fail;                                         \
1:  slli a0, a0, 1;                                 \
    srli a0, a0, 1;                                 \
    addi TESTNUM, a0, 1100;                         \
    j fail;                                         \
    .globl fail;                                    \
fail:                                               \
    fence;                                          \
    slli a0, TESTNUM, 1;                            \
    ori a0, a0, 1;                                  \
    la t0, tohost;                                  \
    sd a0, 0(t0);                                   \
2:  j 2b;                                           \
    .globl pass;                                    \
pass:                                               \
    fence;                                          \
    li a0, 1;                                       \
    la t0, tohost;                                  \
    sd a0, 0(t0);                                   \
3:  j 3b;                                           \
    .section .tohost, "aw", @progbits;              \
    .align 6;                                       \
    .globl tohost;                                  \
tohost: .dword 0;                                   \
    .size tohost, 8;                                \
    .align 6;                                       \
    .globl fromhost;                                \
fromhost: .dword 0;                                 \
    .size fromhost, 8;                              \
    .section .bss;                                  \
    .align 4;                                       \
    .space 16384;                                   \
_stack_top:                                         \
    .text;                                          \
test_main:

#define TEST_PASS j pass
#define TEST_FAIL j fail

/* Check that register `reg` equals `expected` (any 64-bit constant), as
 * check number `n`. Clobbers t6. */
#define CHECK(n, reg, expected) \
    li TESTNUM, n;              \
    li t6, expected;            \
    bne reg, t6, fail

/* Check register equality of two registers as check `n`. */
#define CHECK_REG(n, reg, other) \
    li TESTNUM, n;               \
    bne reg, other, fail

#endif
