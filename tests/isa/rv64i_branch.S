/* RV64I control transfer: beq/bne/blt/bge/bltu/bgeu taken and not taken
 * (signed and unsigned edge values, forward and backward targets, the
 * largest offsets), jal and jalr (link value, rd = x0, rd = rs1, target bit
 * 0 cleared, immediate extremes, long forward and backward jumps). */
#include "unpriv.h"

#define MIN 0x8000000000000000
#define MAX 0x7fffffffffffffff

/* Single-register branch pseudo-ops (beqz, bltz, bgtz, ...: one operand is
 * x0): a0 counts taken branches over a forward and a backward target. */
#define BRZ_COUNT(op, a)    \
    li a0, 0;               \
    li a1, a;               \
    op a1, 9801f;           \
    j 9802f;                \
9801:                       \
    addi a0, a0, 1;         \
9802:                       \
    j 9804f;                \
9803:                       \
    addi a0, a0, 1;         \
    j 9805f;                \
9804:                       \
    op a1, 9803b;           \
9805:
#define TEST_BRZ(n, op, taken, a) \
    BRZ_COUNT(op, a);             \
    CHECK(n, a0, (taken) * 2)

TEST_BEGIN
    .option norvc           /* test the 32-bit encodings */

    /* ---- beq ---- */
    TEST_BR_TAKEN(1, beq, 0, 0)
    TEST_BR_TAKEN(2, beq, 1, 1)
    TEST_BR_TAKEN(3, beq, -1, -1)
    TEST_BR_TAKEN(4, beq, MIN, MIN)
    TEST_BR_NOT_TAKEN(5, beq, 0, 1)
    TEST_BR_NOT_TAKEN(6, beq, 1, 0)
    TEST_BR_NOT_TAKEN(7, beq, -1, 1)
    TEST_BR_NOT_TAKEN(8, beq, 0x100000000, 0)      /* upper half compared */
    TEST_BR_NOT_TAKEN(9, beq, MIN, 0)
    TEST_BR_NOT_TAKEN(10, beq, 0xffffffff, -1)

    /* ---- bne ---- */
    TEST_BR_NOT_TAKEN(11, bne, 0, 0)
    TEST_BR_NOT_TAKEN(12, bne, 1, 1)
    TEST_BR_NOT_TAKEN(13, bne, -1, -1)
    TEST_BR_NOT_TAKEN(14, bne, MIN, MIN)
    TEST_BR_TAKEN(15, bne, 0, 1)
    TEST_BR_TAKEN(16, bne, 1, 0)
    TEST_BR_TAKEN(17, bne, -1, 1)
    TEST_BR_TAKEN(18, bne, 0x100000000, 0)
    TEST_BR_TAKEN(19, bne, MIN, 0)
    TEST_BR_TAKEN(20, bne, 0xffffffff, -1)

    /* ---- blt (signed) ---- */
    TEST_BR_TAKEN(21, blt, 0, 1)
    TEST_BR_NOT_TAKEN(22, blt, 1, 0)
    TEST_BR_TAKEN(23, blt, -1, 1)
    TEST_BR_NOT_TAKEN(24, blt, 1, -1)
    TEST_BR_TAKEN(25, blt, -2, -1)
    TEST_BR_NOT_TAKEN(26, blt, -1, -2)
    TEST_BR_TAKEN(27, blt, MIN, MAX)
    TEST_BR_NOT_TAKEN(28, blt, MAX, MIN)
    TEST_BR_NOT_TAKEN(29, blt, 0, 0)
    TEST_BR_NOT_TAKEN(30, blt, MIN, MIN)
    TEST_BR_TAKEN(31, blt, 0x7fffffff, 0x80000000)   /* 64-bit compare */
    TEST_BR_TAKEN(32, blt, 0xffffffff80000000, 0x7fffffff)
    TEST_BR_TAKEN(33, blt, MIN, 0)

    /* ---- bge (signed) ---- */
    TEST_BR_TAKEN(34, bge, 0, 0)
    TEST_BR_TAKEN(35, bge, 1, 0)
    TEST_BR_NOT_TAKEN(36, bge, 0, 1)
    TEST_BR_NOT_TAKEN(37, bge, -1, 1)
    TEST_BR_TAKEN(38, bge, 1, -1)
    TEST_BR_TAKEN(39, bge, MAX, MIN)
    TEST_BR_NOT_TAKEN(40, bge, MIN, MAX)
    TEST_BR_TAKEN(41, bge, -1, -1)
    TEST_BR_TAKEN(42, bge, MIN, MIN)
    TEST_BR_TAKEN(43, bge, -1, -2)
    TEST_BR_NOT_TAKEN(44, bge, 0x7fffffff, 0x80000000)

    /* ---- bltu (unsigned) ---- */
    TEST_BR_TAKEN(45, bltu, 0, 1)
    TEST_BR_NOT_TAKEN(46, bltu, 1, 0)
    TEST_BR_NOT_TAKEN(47, bltu, -1, 1)
    TEST_BR_TAKEN(48, bltu, 1, -1)
    TEST_BR_NOT_TAKEN(49, bltu, MIN, MAX)
    TEST_BR_TAKEN(50, bltu, MAX, MIN)
    TEST_BR_NOT_TAKEN(51, bltu, 0, 0)
    TEST_BR_TAKEN(52, bltu, -2, -1)
    TEST_BR_TAKEN(53, bltu, 0xffffffff, 0x100000000)
    TEST_BR_NOT_TAKEN(54, bltu, -1, -1)

    /* ---- bgeu (unsigned) ---- */
    TEST_BR_TAKEN(55, bgeu, 0, 0)
    TEST_BR_TAKEN(56, bgeu, 1, 0)
    TEST_BR_NOT_TAKEN(57, bgeu, 0, 1)
    TEST_BR_TAKEN(58, bgeu, -1, 1)
    TEST_BR_NOT_TAKEN(59, bgeu, 1, -1)
    TEST_BR_TAKEN(60, bgeu, MIN, MAX)
    TEST_BR_NOT_TAKEN(61, bgeu, MAX, MIN)
    TEST_BR_TAKEN(62, bgeu, -1, -1)
    TEST_BR_NOT_TAKEN(63, bgeu, 0, -1)
    TEST_BR_NOT_TAKEN(64, bgeu, 0xffffffff, 0x100000000)

    /* ---- one operand is x0 ---- */
    TEST_BRZ(65, beqz, 1, 0)
    TEST_BRZ(66, beqz, 0, MIN)
    TEST_BRZ(67, bnez, 1, MIN)
    TEST_BRZ(68, bnez, 0, 0)
    TEST_BRZ(69, bltz, 1, -1)                      /* blt a1, x0 */
    TEST_BRZ(70, bltz, 0, 0)
    TEST_BRZ(71, bgez, 1, 0)                       /* bge a1, x0 */
    TEST_BRZ(72, bgez, 0, MIN)
    TEST_BRZ(73, bgtz, 1, 1)                       /* blt x0, a1 */
    TEST_BRZ(74, bgtz, 0, 0)
    TEST_BRZ(75, blez, 1, 0)                       /* bge x0, a1 */
    TEST_BRZ(76, blez, 0, MAX)
    /* bltu x0, a1 (taken iff a1 != 0); bgeu a1, x0 always taken */
    li a0, 0
    li a1, 5
    bltu x0, a1, 1f
    addi a0, a0, 1
1:  bgeu x0, a1, 2f
    addi a0, a0, 2
2:  bgeu a1, x0, 3f
    addi a0, a0, 4
3:  bltu a1, x0, 4f                                /* never taken */
    addi a0, a0, 8
4:  CHECK(77, a0, 10)

    /* ---- largest branch offsets: +4094 and -4096 ---- */
    li a0, 0
far_b_src:
    /* beq x0, x0, +4094 hand-encoded: gas turns a forward branch it cannot
     * yet resolve into bne + jal, even when it would fit */
    .word 0x7e000fe3
    .space 4090                                    /* zeros: illegal if executed */
far_b_dst:
    .if far_b_dst - far_b_src != 4094
    .error "far branch offset is not 4094"
    .endif
    addi a0, a0, 1
    j 5f
far_b_back_dst:
    addi a0, a0, 2
    j 6f
    .space 4096 - 12
5:  li a1, 1
far_b_back_src:
    bne x0, a1, far_b_back_dst                     /* offset -4096 */
    addi a0, a0, 4                                 /* not reached */
6:  CHECK(78, a0, 3)

    /* ---- jal ---- */
    li a0, 0
jal1:
    jal ra, 1f                                     /* forward */
jal1_ret:
    addi a0, a0, 100                               /* not reached */
1:  addi a0, a0, 1
    CHECK(79, a0, 1)
    la t0, jal1_ret
    CHECK_REG(80, ra, t0)                          /* link = pc + 4 */

    li a0, 0
    j 2f
1:  addi a0, a0, 1
    j 3f
2:  jal a5, 1b                                     /* backward, rd = a5 */
jal2_ret:
    addi a0, a0, 100                               /* not reached */
3:  CHECK(81, a0, 1)
    la t0, jal2_ret
    CHECK_REG(82, a5, t0)

    li a0, 0
    jal x0, 1f                                     /* j: no link */
    addi a0, a0, 100
1:  CHECK(83, x0, 0)
    CHECK(84, a0, 0)

    /* long jal: forward +0x15556 and backward -0x1554e (many imm bits) */
    li a0, 0
    li ra, 0
jal_far_src:
    jal ra, jal_far_dst
jal_far_ret:
    addi a0, a0, 100
    j 7f
jal_far_back_dst:
    addi a0, a0, 2
    j 8f
    .space 0x15556 - 4 - 4 - 4 - 4 - 4
jal_far_dst:
    addi a0, a0, 1
    jal x0, jal_far_back_dst
7:  /* fall through only if the long jumps went wrong */
    addi a0, a0, 100
8:  CHECK(85, a0, 3)
    la t0, jal_far_ret
    CHECK_REG(86, ra, t0)

    /* ---- jalr ---- */
    li a0, 0
    la t0, 1f
    jalr ra, 0(t0)
jalr1_ret:
    addi a0, a0, 100
1:  addi a0, a0, 1
    CHECK(87, a0, 1)
    la t1, jalr1_ret
    CHECK_REG(88, ra, t1)

    /* target bit 0 is cleared: odd rs1 */
    li a0, 0
    la t0, 1f
    addi t0, t0, 1
    jalr ra, 0(t0)
jalr2_ret:
    addi a0, a0, 100
1:  addi a0, a0, 1
    CHECK(89, a0, 1)
    la t1, jalr2_ret
    CHECK_REG(90, ra, t1)

    /* target bit 0 is cleared: even rs1 + odd immediate (2047) */
    li a0, 0
    la t0, 1f
    addi t0, t0, -2046
    jalr ra, 2047(t0)
    addi a0, a0, 100
1:  addi a0, a0, 1
    CHECK(91, a0, 1)

    /* immediate -2048 */
    li a0, 0
    la t0, 1f
    addi t0, t0, 2047
    addi t0, t0, 1
    jalr ra, -2048(t0)
    addi a0, a0, 100
1:  addi a0, a0, 1
    CHECK(92, a0, 1)

    /* backward jalr with a negative immediate */
    li a0, 0
    j 2f
1:  addi a0, a0, 1
    jalr x0, 0(ra)                                 /* ret */
2:  la t0, 1b
    addi t0, t0, 12
    jalr ra, -12(t0)
jalr3_ret:
    CHECK(93, a0, 1)
    la t1, jalr3_ret                               /* ret came back here */
    CHECK_REG(94, ra, t1)

    /* rd == rs1: target uses the old value, then rd gets the link */
    li a0, 0
    la t0, 1f
    jalr t0, 0(t0)
jalr4_ret:
    addi a0, a0, 100
1:  addi a0, a0, 1
    CHECK(95, a0, 1)
    la t1, jalr4_ret
    CHECK_REG(96, t0, t1)

    /* rd == rs1 with an odd immediate */
    li a0, 0
    la a3, 1f
    addi a3, a3, -3
    jalr a3, 3(a3)
jalr5_ret:
    addi a0, a0, 100
1:  addi a0, a0, 1
    CHECK(97, a0, 1)
    la t1, jalr5_ret
    CHECK_REG(98, a3, t1)

    /* rd = x0: no link */
    li a0, 0
    la t0, 1f
    jalr x0, 0(t0)
    addi a0, a0, 100
1:  CHECK(99, x0, 0)
    CHECK(100, a0, 0)

    /* jalr to a far target (call/ret pair through the long-jump area) */
    li a0, 0
    la t0, far_func
    jalr ra, 0(t0)
jalr6_ret:
    CHECK(101, a0, 7)
    la t1, jalr6_ret
    CHECK_REG(102, ra, t1)

    /* jal and jalr that link into the same register they jump through twice */
    li a0, 0
    call 1f                                        /* auipc+jalr pair */
    addi a0, a0, 100
    j 2f
1:  addi a0, a0, 1
    ret
2:  CHECK(103, a0, 101)

    TEST_PASS

    .align 2
far_func:
    li a0, 7
    ret
