/* Code remapped under a virtual address (S-mode, Sv39): after a page-table
 * or satp change and sfence.vma, a virtual address that was hot with one
 * physical page's code runs the new page's code. No fence.i is needed for
 * that (the new page's bytes were not stored by this hart since it started),
 * so none is executed, except where S-mode itself writes new code into a
 * page (the "freed page reused for new code" case: then it runs fence.i
 * first, as Linux does).
 *
 * Each code page holds the same function at the same offset (a 10-times
 * loop adding K to a0: returns 10 * K), only K differs, so only the
 * physical page tells the translations apart. Every mapping is called 150
 * times (hot: translated at the default --jit-threshold of 50 too).
 *
 * VA 0x40001000 (W) -> code_a (K=1), code_b (K=2), code_c (K=3, via a
 * second root table). VA 0x40002000/0x40003000: a function whose third
 * instruction straddles the two pages; the second page is str_p2a or
 * str_p2b, which hold different second halves (neither is the page
 * physically after str_p1).
 *
 * Checks: 1-5 W remapped by PTE, back, by satp, back; 6 a page rewritten
 * by S-mode then mapped again; 7 W on code_b meanwhile; 10-16 the straddling function; 20 S-mode
 * ran to its ecall. */
#include "test.h"
#include "priv.h"

#define TEST_BASE 0x40000000
#define VA4K(i) (TEST_BASE + ((i) << 12))
#define W VA4K(1)
#define STR_FN (VA4K(3) - 8)            /* the straddling function */
#define LEAF_RWX (PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D)
#define LEAF_RX  (PTE_V | PTE_R | PTE_X | PTE_A)
#define HOT 150

/* Calls `va` `n` times; a0 must be `val` every time (check `chk`).
 * Clobbers s1, t3, t5, t6, ra and what the callee does. */
.macro S_CALL_N va, n, val, chk
    li s1, \n
.Lsc\@:
    li t3, \va
    jalr ra, 0(t3)
    EXPECT(\chk, a0, \val)
    addi s1, s1, -1
    bnez s1, .Lsc\@
.endm

/* A code page: f returns 10 * k. */
.macro CODE_PAGE name, k
    .section .text.\name, "ax", @progbits
    .align 12
\name:
    li a0, 0
    li t0, 10
1:  addi a0, a0, \k
    addi t0, t0, -1
    bnez t0, 1b
    ret
.endm

TEST_BEGIN
    PRIV_SETUP
    ZERO_PAGE pt2
    ZERO_PAGE pt1
    ZERO_PAGE pt0
    ZERO_PAGE pt2b
    ZERO_PAGE pt1b
    ZERO_PAGE pt0b
    /* root A: identity gigapage for code and data, W -> code_a */
    PTE_PA pt2, 2, 0x80000000, LEAF_RWX
    PTE_PTR pt2, 1, pt1
    PTE_PTR pt1, 0, pt0
    PTE_SYM pt0, 1, code_a, LEAF_RX
    PTE_SYM pt0, 2, str_p1, LEAF_RX
    PTE_SYM pt0, 3, str_p2a, LEAF_RX
    /* root B: the same, but W -> code_c */
    PTE_PA pt2b, 2, 0x80000000, LEAF_RWX
    PTE_PTR pt2b, 1, pt1b
    PTE_PTR pt1b, 0, pt0b
    PTE_SYM pt0b, 1, code_c, LEAF_RX
    SET_SATP SATP_MODE_SV39, pt2
    RUN_IN PRV_S, s_main
    EXPECT_REC(20, R_CAUSE, CAUSE_ECALL_S)
    csrw satp, zero
    sfence.vma
    TEST_PASS

/* ---------------- S-mode (identity mapped) ---------------- */
    .text
s_main:
    /* ---- 1-5: W remapped ---- */
    S_CALL_N W, HOT, 10, 1
    PTE_SYM pt0, 1, code_b, LEAF_RX
    sfence.vma
    S_CALL_N W, HOT, 20, 2
    PTE_SYM pt0, 1, code_a, LEAF_RX
    sfence.vma
    S_CALL_N W, HOT, 10, 3
    SET_SATP SATP_MODE_SV39, pt2b
    S_CALL_N W, HOT, 30, 4
    SET_SATP SATP_MODE_SV39, pt2
    S_CALL_N W, HOT, 10, 5

    /* ---- 6: code_a's page rewritten while unmapped (K=1 -> K=5), then
     * mapped at W again ---- */
    PTE_SYM pt0, 1, code_b, LEAF_RX
    sfence.vma
    S_CALL_N W, 2, 20, 7
    la t0, code_a + 8                   /* addi a0, a0, 1 -> 5 */
    li t1, 0x00550513
    sw t1, 0(t0)
    fence.i
    PTE_SYM pt0, 1, code_a, LEAF_RX
    sfence.vma
    S_CALL_N W, HOT, 50, 6

    /* ---- 10-15: a function across two pages, its second page remapped ---- */
    li a3, 0
    S_CALL_N STR_FN, HOT, 0x10, 10
    EXPECT(11, a1, 0x21)
    EXPECT(12, a2, 0x31)
    PTE_SYM pt0, 3, str_p2b, LEAF_RX
    sfence.vma
    S_CALL_N STR_FN, HOT, 0x10, 10
    EXPECT(13, a1, 0x22)
    EXPECT(14, a2, 0x32)
    PTE_SYM pt0, 3, str_p2a, LEAF_RX
    sfence.vma
    S_CALL_N STR_FN, HOT, 0x10, 10
    EXPECT(15, a1, 0x21)
    EXPECT(16, a2, 0x31)
    ecall

/* ---------------- the code pages ---------------- */
    .option push
    .option norvc
    CODE_PAGE code_a, 1
    CODE_PAGE code_b, 2
    CODE_PAGE code_c, 3

    /* str_p1's last 8 bytes, then str_p2a or str_p2b at offset 0: */
    .section .text.str_p1, "ax", @progbits
    .align 12
str_p1:
    .skip 4096 - 8
    addi a0, zero, 0x10
    .2byte 0x0001                       /* c.nop */
    .2byte 0x0593                       /* addi a1, zero, ...: lower half */
    .section .text.str_p2a, "ax", @progbits
    .align 12
str_p2a:
    .2byte 0x021 << 4                   /* imm 0x21 */
    addi a2, zero, 0x31
    ret
    .section .text.str_p2b, "ax", @progbits
    .align 12
str_p2b:
    .2byte 0x022 << 4                   /* imm 0x22 */
    addi a2, zero, 0x32
    ret
    .option pop

    .bss
    .align 12
pt2:  .space 4096
pt1:  .space 4096
pt0:  .space 4096
pt2b: .space 4096
pt1b: .space 4096
pt0b: .space 4096
