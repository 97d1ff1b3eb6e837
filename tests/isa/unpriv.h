/* Extra macros for the unprivileged-ISA test programs (rv64i_*.S, rv64m.S,
 * rv64a.S, rvc.S, zb.S, zicsr.S). Builds on test.h.
 *
 * Register conventions used by these macros:
 *   a0      result of the operation under test
 *   a1, a2  source operands
 *   t6      scratch of CHECK
 *   s9..s11 written by the expected-trap handler (mcause, mepc, mtval)
 *   t5      scratch of the expected-trap handler
 * Local labels 97xx-99xx are reserved for macros.
 *
 * STRICT_SPEC: where QEMU 7.2 (the reference these programs are validated
 * on) departs from the spec, the default build accepts both the spec and
 * the QEMU behaviour; building with -DSTRICT_SPEC accepts only the spec
 * (rv64a.S: misaligned AMO cause; zicsr.S: time CSR present, csrrs/csrrc
 * with a zero-valued rs1 != x0 on a read-only CSR trap). */
#ifndef NIMBUS_ISA_UNPRIV_H
#define NIMBUS_ISA_UNPRIV_H

#include "test.h"

/* ---- Register/immediate operations ----------------------------------- */

/* a0 = op(a, b) */
#define TEST_RR(n, op, expected, a, b) \
    li a1, a;                          \
    li a2, b;                          \
    op a0, a1, a2;                     \
    CHECK(n, a0, expected)

/* a1 = op(a1 = a, a2 = b): destination is the first source */
#define TEST_RR_SRC1_DEST(n, op, expected, a, b) \
    li a1, a;                                    \
    li a2, b;                                    \
    op a1, a1, a2;                               \
    CHECK(n, a1, expected)

/* a2 = op(a1 = a, a2 = b): destination is the second source */
#define TEST_RR_SRC2_DEST(n, op, expected, a, b) \
    li a1, a;                                    \
    li a2, b;                                    \
    op a2, a1, a2;                               \
    CHECK(n, a2, expected)

/* a1 = op(a1, a1): both sources and the destination are one register */
#define TEST_RR_SAME(n, op, expected, a) \
    li a1, a;                            \
    op a1, a1, a1;                       \
    CHECK(n, a1, expected)

/* x0 = op(a, b): the write is discarded, x0 still reads 0 */
#define TEST_RR_ZERODEST(n, op, a, b) \
    li a1, a;                         \
    li a2, b;                         \
    op x0, a1, a2;                    \
    CHECK(n, x0, 0)

/* a0 = op(x0, b) */
#define TEST_RR_ZEROSRC1(n, op, expected, b) \
    li a2, b;                                \
    op a0, x0, a2;                           \
    CHECK(n, a0, expected)

/* a0 = op(a, x0) */
#define TEST_RR_ZEROSRC2(n, op, expected, a) \
    li a1, a;                                \
    op a0, a1, x0;                           \
    CHECK(n, a0, expected)

/* a0 = op(a, imm) */
#define TEST_RI(n, op, expected, a, imm) \
    li a1, a;                            \
    op a0, a1, imm;                      \
    CHECK(n, a0, expected)

/* a1 = op(a1 = a, imm) */
#define TEST_RI_SRC1_DEST(n, op, expected, a, imm) \
    li a1, a;                                      \
    op a1, a1, imm;                                \
    CHECK(n, a1, expected)

/* x0 = op(a, imm) */
#define TEST_RI_ZERODEST(n, op, a, imm) \
    li a1, a;                           \
    op x0, a1, imm;                     \
    CHECK(n, x0, 0)

/* a0 = op(a) (unary, e.g. clz, sext.b) */
#define TEST_R(n, op, expected, a) \
    li a1, a;                      \
    op a0, a1;                     \
    CHECK(n, a0, expected)

/* ---- Branches --------------------------------------------------------- */

/* Branch `op a, b`, once to a forward and once to a backward target; a0
 * counts the taken branches (2 when taken, 0 when not). */
#define BR_COUNT(op, a, b)  \
    li a0, 0;               \
    li a1, a;               \
    li a2, b;               \
    op a1, a2, 9901f;       \
    j 9902f;                \
9901:                       \
    addi a0, a0, 1;         \
9902:                       \
    j 9904f;                \
9903:                       \
    addi a0, a0, 1;         \
    j 9905f;                \
9904:                       \
    op a1, a2, 9903b;       \
9905:

#define TEST_BR_TAKEN(n, op, a, b) \
    BR_COUNT(op, a, b);            \
    CHECK(n, a0, 2)

#define TEST_BR_NOT_TAKEN(n, op, a, b) \
    BR_COUNT(op, a, b);                \
    CHECK(n, a0, 0)

/* ---- Memory ----------------------------------------------------------- */

/* a0 = load(base + off) */
#define TEST_LD(n, op, expected, base, off) \
    la a1, base;                            \
    op a0, off(a1);                         \
    CHECK(n, a0, expected)

/* ---- Expected traps --------------------------------------------------- */

/* Emits the handler that the TRAP_* macros below install. Place it once in
 * a program, outside the straight-line flow (e.g. after TEST_PASS). It
 * records mcause/mepc/mtval in s9/s10/s11, steps mepc over the trapping
 * instruction (2 or 4 bytes, from its low bits) and returns. */
#define EXPECT_TRAP_HANDLER      \
    .align 2;                    \
expect_trap:                     \
    csrr s9, mcause;             \
    csrr s10, mepc;              \
    csrr s11, mtval;             \
    lhu t5, 0(s10);              \
    andi t5, t5, 3;              \
    addi t5, t5, -3;             \
    bnez t5, 9921f;              \
    addi t5, s10, 4;             \
    j 9922f;                     \
9921:                            \
    addi t5, s10, 2;             \
9922:                            \
    csrw mepc, t5;               \
    mret

/* Route traps to expect_trap (s9 = -1 means "no trap yet"). */
#define TRAP_EXPECT_ON   \
    la t5, expect_trap;  \
    csrw mtvec, t5;      \
    li s9, -1

/* Route traps back to the harness's unexpected-trap handler. */
#define TRAP_EXPECT_OFF     \
    la t5, unexpected_trap; \
    csrw mtvec, t5

/* Run the instruction(s) `insn` (one trapping instruction) expecting a trap
 * with mcause `cause` (check n) and mepc at that instruction (check n+1).
 * Needs TRAP_EXPECT_ON in effect. */
#define TEST_TRAP(n, cause, insn...) \
    li s9, -1;                       \
    li s10, 0;                       \
9931:                                \
    insn;                            \
    CHECK(n, s9, cause);             \
    la t5, 9931b;                    \
    CHECK_REG((n) + 1, s10, t5)

#endif
