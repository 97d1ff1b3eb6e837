/* RV64C: every compressed instruction form (explicit c.* mnemonics, so
 * each is really a 16-bit encoding; see objdump) with edge immediates, the
 * HINT encodings (executed as no-ops), c.ebreak (cause 3) and the illegal
 * all-zero halfword (cause 2). */
#include "unpriv.h"

#define MIN 0x8000000000000000
#define MAX 0x7fffffffffffffff

/* a0 = sp - (expected base + off): 0 when sp == base + off */
#define CHECK_SP(n, base, off) \
    la t0, base;               \
    li t1, off;                \
    add t0, t0, t1;            \
    sub a0, sp, t0;            \
    CHECK(n, a0, 0)

/* Hand encodings of c.j and c.beqz/c.bnez with a constant byte offset.
 * Registers for CBEQZ/CBNEZ are given as their 3-bit rs1' number. */
#define CJ(off) (0xa001                            | ((((off) >> 11) & 1) << 12)                  | ((((off) >> 4) & 1) << 11)                   | ((((off) >> 8) & 3) << 9)                    | ((((off) >> 10) & 1) << 8)                   | ((((off) >> 6) & 1) << 7)                    | ((((off) >> 7) & 1) << 6)                    | ((((off) >> 1) & 7) << 3)                    | ((((off) >> 5) & 1) << 2))
#define CB(f3, rs, off) (((f3) << 13) | 1          | ((((off) >> 8) & 1) << 12)                   | ((((off) >> 3) & 3) << 10)                   | (((rs) & 7) << 7)                            | ((((off) >> 6) & 3) << 5)                    | ((((off) >> 1) & 3) << 3)                    | ((((off) >> 5) & 1) << 2))
#define CBEQZ(rs, off) CB(6, rs, off)
#define CBNEZ(rs, off) CB(7, rs, off)
/* a jal that stays 32 bits */
#define JAL32(rd, target) \
    .option push;         \
    .option norvc;        \
    jal rd, target;       \
    .option pop
#define s0_ 0
#define a3_ 5
#define a4_ 6

TEST_BEGIN
    .option rvc
    mv tp, sp                                       /* sp is restored from tp */
    li t0, 1 << 13                                  /* mstatus.FS = Initial */
    csrs mstatus, t0

    /* ================= quadrant 1: immediates and ALU ================= */
    /* c.nop */
    li a0, 0x1234
    c.nop
    CHECK(1, a0, 0x1234)

    /* c.addi */
    li a0, 5
    c.addi a0, -32
    CHECK(2, a0, -27)
    c.addi a0, 31
    CHECK(3, a0, 4)
    li t2, MAX
    c.addi t2, 1                                    /* full 5-bit rd, 64-bit wrap */
    CHECK(4, t2, MIN)
    li a0, 0xffffffff
    c.addi a0, 1                                    /* no 32-bit truncation */
    CHECK(5, a0, 0x100000000)

    /* c.addiw */
    li a0, 0x7fffffff
    c.addiw a0, 1
    CHECK(6, a0, 0xffffffff80000000)
    li a0, 0x1ffffffff
    c.addiw a0, 0                                   /* sext.w */
    CHECK(7, a0, -1)
    li s1, 0xffffffff80000000
    c.addiw s1, -32
    CHECK(8, s1, 0x7fffffe0)
    li a7, 0x123456789
    c.addiw a7, 31
    CHECK(9, a7, 0x234567a8)

    /* c.li */
    c.li a0, -32
    CHECK(10, a0, -32)
    c.li a0, 31
    CHECK(11, a0, 31)
    c.li t3, 0
    CHECK(12, t3, 0)
    c.li ra, -1
    CHECK(13, ra, -1)

    /* c.lui: 6-bit immediate, sign-extended from bit 17 */
    c.lui a0, 1
    CHECK(14, a0, 0x1000)
    c.lui a0, 0x1f
    CHECK(15, a0, 0x1f000)
    c.lui a0, 0xfffff
    CHECK(16, a0, 0xfffffffffffff000)
    c.lui t4, 0xfffe0
    CHECK(17, t4, 0xfffffffffffe0000)
    c.lui s11, 0x10
    CHECK(18, s11, 0x10000)

    /* c.srli / c.srai (shamt 1..63) */
    li a0, MIN
    c.srli a0, 63
    CHECK(19, a0, 1)
    li a0, MIN
    c.srli a0, 1
    CHECK(20, a0, 0x4000000000000000)
    li a0, MIN
    c.srli a0, 32
    CHECK(21, a0, 0x80000000)
    li s0, -1
    c.srli s0, 31
    CHECK(22, s0, 0x1ffffffff)
    li a0, MIN
    c.srai a0, 63
    CHECK(23, a0, -1)
    li a0, MIN
    c.srai a0, 1
    CHECK(24, a0, 0xc000000000000000)
    li a5, MIN
    c.srai a5, 32
    CHECK(25, a5, 0xffffffff80000000)
    li a0, MAX
    c.srai a0, 62
    CHECK(26, a0, 1)

    /* c.andi (sign-extended 6-bit immediate) */
    li a0, -1
    c.andi a0, -32
    CHECK(27, a0, 0xffffffffffffffe0)
    li a0, -1
    c.andi a0, 31
    CHECK(28, a0, 31)
    li a4, -1
    c.andi a4, 0
    CHECK(29, a4, 0)
    li a0, 0x123456789abcdef0
    c.andi a0, -1
    CHECK(30, a0, 0x123456789abcdef0)

    /* c.sub / c.xor / c.or / c.and / c.subw / c.addw (x8..x15) */
    li a0, 0
    li a1, 1
    c.sub a0, a1
    CHECK(31, a0, -1)
    li s0, MIN
    li s1, 1
    c.sub s0, s1
    CHECK(32, s0, MAX)
    li a2, 0xff00ff00ff00ff00
    li a3, 0x0f0f0f0f0f0f0f0f
    c.xor a2, a3
    CHECK(33, a2, 0xf00ff00ff00ff00f)
    li a2, 0xff00ff00ff00ff00
    c.or a2, a3
    CHECK(34, a2, 0xff0fff0fff0fff0f)
    li a2, 0xff00ff00ff00ff00
    c.and a2, a3
    CHECK(35, a2, 0x0f000f000f000f00)
    li a4, 0
    li a5, 0x80000000
    c.subw a4, a5
    CHECK(36, a4, 0xffffffff80000000)
    li a4, 0x100000000
    li a5, 1
    c.subw a4, a5
    CHECK(37, a4, -1)
    li a0, 0x7fffffff
    li s1, 1
    c.addw a0, s1
    CHECK(38, a0, 0xffffffff80000000)
    li a0, 0xffffffff
    c.addw a0, s1
    CHECK(39, a0, 0)
    li a0, 0x1234567800000005
    li a1, 0xabcdef0000000007
    c.addw a0, a1                                   /* upper bits ignored */
    CHECK(40, a0, 12)
    li a0, 7
    c.sub a0, a0
    CHECK(41, a0, 0)

    /* ================= quadrant 2: slli, mv, add ================= */
    li a0, 1
    c.slli a0, 63
    CHECK(42, a0, MIN)
    li t5, 1
    c.slli t5, 32
    CHECK(43, t5, 0x100000000)
    li a0, 0x0123456789abcdef
    c.slli a0, 4
    CHECK(44, a0, 0x123456789abcdef0)
    li s10, -1
    c.slli s10, 1
    CHECK(45, s10, -2)

    li t1, MIN
    c.mv a0, t1
    CHECK(46, a0, MIN)
    li a6, 0x123456789abcdef0
    c.mv t4, a6
    CHECK(47, t4, 0x123456789abcdef0)

    li a0, MAX
    li t1, 1
    c.add a0, t1
    CHECK(48, a0, MIN)
    li a0, -1
    li s7, -1
    c.add s7, a0
    CHECK(49, s7, -2)
    li t0, 21
    c.add t0, t0
    CHECK(50, t0, 42)

    /* ================= HINTs (rd = x0 or shift by 0): no effect ======== */
    li a0, 0x5555
    .half 0x0005                                    /* c.nop 1 */
    .half 0x4015                                    /* c.li x0, 5 */
    .half 0x802a                                    /* c.mv x0, a0 */
    .half 0x902a                                    /* c.add x0, a0 */
    .half 0x0006                                    /* c.slli x0, 1 */
    .half 0x6005                                    /* c.lui x0, 1 */
    .half 0x0501                                    /* c.addi a0, 0 */
    .half 0x0502                                    /* c.slli a0, 0 */
    .half 0x8101                                    /* c.srli a0, 0 */
    .half 0x8501                                    /* c.srai a0, 0 */
    CHECK(51, x0, 0)
    CHECK(52, a0, 0x5555)

    /* ================= quadrant 0 and sp-relative ================= */
    la sp, c_area + 512                             /* sp-relative base */

    /* c.addi4spn */
    c.addi4spn a0, sp, 4
    la t0, c_area + 512 + 4
    CHECK_REG(53, a0, t0)
    c.addi4spn s0, sp, 1020
    la t0, c_area + 512 + 1020
    CHECK_REG(54, s0, t0)
    c.addi4spn a5, sp, 8
    la t0, c_area + 512 + 8
    CHECK_REG(55, a5, t0)

    /* c.addi16sp */
    c.addi16sp sp, -512
    CHECK_SP(56, c_area, 0)
    c.addi16sp sp, 496
    CHECK_SP(57, c_area, 496)
    c.addi16sp sp, 16
    CHECK_SP(58, c_area, 512)
    c.addi16sp sp, -16
    CHECK_SP(59, c_area, 496)
    c.addi16sp sp, 16

    /* c.lwsp / c.ldsp / c.fldsp (sp = c_area + 512) */
    la t0, c_area + 512
    li t1, 0x80000001
    sw t1, 252(t0)
    li t1, 0x7ffffffe
    sw t1, 0(t0)
    li t1, 0x0123456789abcdef
    sd t1, 504(t0)
    li t1, 0xfedcba9876543210
    sd t1, 8(t0)
    c.lwsp a0, 252(sp)
    CHECK(60, a0, 0xffffffff80000001)               /* sign-extended */
    c.lwsp s6, 0(sp)
    CHECK(61, s6, 0x7ffffffe)
    c.ldsp s5, 504(sp)
    CHECK(62, s5, 0x0123456789abcdef)
    c.ldsp ra, 8(sp)
    CHECK(63, ra, 0xfedcba9876543210)
    c.fldsp fa0, 504(sp)
    fmv.x.d a0, fa0
    CHECK(64, a0, 0x0123456789abcdef)
    c.fldsp ft11, 8(sp)
    fmv.x.d a0, ft11
    CHECK(65, a0, 0xfedcba9876543210)

    /* c.swsp / c.sdsp / c.fsdsp */
    la t0, c_area + 512
    sd x0, 248(t0)
    sd x0, 496(t0)
    sd x0, 0(t0)
    li a0, 0x1122334455667788
    c.swsp a0, 252(sp)
    ld a1, 248(t0)
    CHECK(66, a1, 0x5566778800000000)
    c.sdsp a0, 504(sp)
    ld a1, 504(t0)
    CHECK(67, a1, 0x1122334455667788)
    c.swsp x0, 252(sp)
    ld a1, 248(t0)
    CHECK(68, a1, 0)
    li a0, 0xdeadbeefcafef00d
    fmv.d.x ft3, a0
    c.fsdsp ft3, 496(sp)
    ld a1, 496(t0)
    CHECK(69, a1, 0xdeadbeefcafef00d)
    c.fsdsp ft3, 0(sp)
    ld a1, 0(t0)
    CHECK(70, a1, 0xdeadbeefcafef00d)
    li a0, 0x0102030405060708
    c.sdsp a0, 0(sp)
    ld a1, 0(t0)
    CHECK(71, a1, 0x0102030405060708)

    mv sp, tp                                       /* restore the stack */

    /* c.lw / c.ld / c.fld (base and data in x8..x15 / f8..f15) */
    la a1, c_data
    c.lw a0, 0(a1)
    CHECK(72, a0, 0xffffffff80000001)
    c.lw s1, 124(a1)
    CHECK(73, s1, 0x7fffffff)
    c.ld a0, 0(a1)
    CHECK(74, a0, 0x1234567880000001)
    c.ld a5, 248(a1)
    CHECK(75, a5, 0xfedcba9876543210)
    c.fld fa0, 248(a1)
    fmv.x.d a0, fa0
    CHECK(76, a0, 0xfedcba9876543210)
    c.fld fs0, 0(a1)
    fmv.x.d a0, fs0
    CHECK(77, a0, 0x1234567880000001)
    mv a2, a1
    c.ld a2, 8(a2)                                  /* rd == rs1 */
    CHECK(78, a2, 0x0f0e0d0c0b0a0908)

    /* c.sw / c.sd / c.fsd */
    la a1, c_sbuf
    li a3, -1
    sd a3, 0(a1)
    sd a3, 120(a1)
    sd a3, 248(a1)
    li a4, 0x1122334455667788
    c.sw a4, 0(a1)
    ld a0, 0(a1)
    CHECK(79, a0, 0xffffffff55667788)
    c.sw a4, 124(a1)
    ld a0, 120(a1)
    CHECK(80, a0, 0x55667788ffffffff)
    c.sd a4, 248(a1)
    ld a0, 248(a1)
    CHECK(81, a0, 0x1122334455667788)
    c.sd a4, 0(a1)
    ld a0, 0(a1)
    CHECK(82, a0, 0x1122334455667788)
    li a0, 0x0bad0bad0bad0bad
    fmv.d.x fa5, a0
    c.fsd fa5, 248(a1)
    ld a0, 248(a1)
    CHECK(83, a0, 0x0bad0bad0bad0bad)
    c.fsd fs1, 8(a1)                                /* fs1 = f9: any bits */
    ld a0, 8(a1)
    fmv.x.d a2, fs1
    CHECK_REG(84, a0, a2)

    /* ================= control transfer ================= */
    /* gas turns a c.j/c.beqz/c.bnez whose target is not yet known into a
     * 32-bit jal/branch, so the forward (and far) ones are hand-encoded with
     * CJ/CBEQZ/CBNEZ; `jal x0` under norvc keeps the filler jumps 4 bytes. */

    /* c.j forward (+4) and backward */
    li a0, 0
    .half CJ(4)                                     /* c.j +4 */
    c.addi a0, 8                                    /* skipped */
    c.addi a0, 1
    .half CJ(8)                                     /* c.j +8, to the c.j 1b */
1:  c.addi a0, 2
    .half CJ(6)                                     /* c.j +6 */
    c.addi a0, 8                                    /* skipped */
    c.j 1b                                          /* backward, -4 */
    CHECK(85, a0, 3)

    /* c.j with the largest offsets: +2046 and -2048 */
    li a0, 0
cj_far_src:
    .half CJ(2046)                                  /* c.j cj_far_dst */
    .space 2044
cj_far_dst:
    c.addi a0, 1
    JAL32(x0, cj_back_src)
cj_back_dst:
    c.addi a0, 2
    JAL32(x0, 6f)
    .space 2048 - 6
cj_back_src:
    .half CJ(-2048)                                 /* c.j cj_back_dst */
6:  CHECK(86, a0, 3)

    /* c.beqz / c.bnez: the whole 64-bit register is compared with 0 */
    li a0, 0
    li s0, 0
    .half CBEQZ(s0_, 4)                             /* taken */
    c.addi a0, 8
    li s0, MIN
    .half CBEQZ(s0_, 4)                             /* not taken */
    c.addi a0, 1
    li s0, 0x100000000
    .half CBNEZ(s0_, 4)                             /* taken */
    c.addi a0, 8
    li s0, 0
    .half CBNEZ(s0_, 4)                             /* not taken */
    c.addi a0, 2
    CHECK(87, a0, 3)
    /* backward */
    li a0, 0
    li a5, 3
    .half CJ(6)                                     /* c.j 2f */
1:  c.addi a0, 1
    c.addi a5, -1
2:  c.bnez a5, 1b
    CHECK(88, a0, 3)
    li a0, 0
    li a4, 0
    .half CJ(6)                                     /* c.j 2f */
1:  c.addi a0, 1
    .half CJ(4)                                     /* c.j 3f */
2:  c.beqz a4, 1b
3:  CHECK(89, a0, 1)

    /* largest branch offsets: c.beqz +254, c.bnez -256 */
    li a0, 0
    li a3, 0
    li a4, 1
cb_far_src:
    .half CBEQZ(a3_, 254)                           /* c.beqz a3, cb_far_dst */
    .space 252
cb_far_dst:
    c.addi a0, 1
    JAL32(x0, cb_back_src)
cb_back_dst:
    c.addi a0, 2
    JAL32(x0, 6f)
    .space 256 - 6
cb_back_src:
    .half CBNEZ(a4_, -256)                          /* c.bnez a4, cb_back_dst */
6:  CHECK(90, a0, 3)

    /* c.jr */
    li a0, 0
    la t0, 1f
    c.jr t0
    addi a0, a0, 100
1:  addi a0, a0, 1
    CHECK(91, a0, 1)
    /* c.jr clears bit 0 of the target */
    li a0, 0
    la t0, 1f
    addi t0, t0, 1
    c.jr t0
    addi a0, a0, 100
1:  addi a0, a0, 1
    CHECK(92, a0, 1)

    /* c.jalr: link = pc + 2 */
    li a0, 0
    la t0, 1f
cjalr1:
    c.jalr t0
cjalr1_ret:
    addi a0, a0, 100
1:  addi a0, a0, 1
    CHECK(93, a0, 1)
    la t1, cjalr1_ret
    CHECK_REG(94, ra, t1)
    la t1, cjalr1
    addi t1, t1, 2
    CHECK_REG(95, ra, t1)
    /* c.jalr ra: jumps to the old ra, then links */
    li a0, 0
    la ra, 1f
    c.jalr ra
cjalr2_ret:
    addi a0, a0, 100
1:  addi a0, a0, 1
    CHECK(96, a0, 1)
    la t1, cjalr2_ret
    CHECK_REG(97, ra, t1)
    /* call / return through c.jalr and c.jr ra */
    li a0, 0
    la t0, c_func
    c.jalr t0
    CHECK(98, a0, 0x2a)

    /* ================= traps ================= */
    TRAP_EXPECT_ON
    TEST_TRAP(99, 3, c.ebreak)                     /* breakpoint */
    TEST_TRAP(101, 2, .half 0)                      /* all-zero: illegal */
    TRAP_EXPECT_OFF

    TEST_PASS

    .align 2
c_func:
    c.li a0, 0
    c.addi a0, 21
    c.add a0, a0
    c.jr ra

    EXPECT_TRAP_HANDLER

    .data
    .align 4
c_data:
    .dword 0x1234567880000001
    .dword 0x0f0e0d0c0b0a0908
    .space 120 - 16
    .word 0
    .word 0x7fffffff                                /* at 124 */
    .space 248 - 128
    .dword 0xfedcba9876543210                       /* at 248 */
    .align 4
c_sbuf:
    .space 256
    .align 4
c_area:
    .space 1024 + 512
