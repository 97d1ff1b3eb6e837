/* RV64I loads and stores: lb/lh/lw/ld/lbu/lhu/lwu/sb/sh/sw/sd, sign and zero
 * extension, positive/negative/extreme offsets, little-endian byte order,
 * misaligned accesses inside a page and across a page boundary (emulated
 * transparently, as QEMU does), fence variants, and fence.i after
 * self-modifying code. */
#include "unpriv.h"

#define P 0xa5a5a5a5a5a5a5a5

/* Fill the four dwords base-16 .. base+15 with P; leaves a1 = base. */
#define FILL(base)        \
    la a1, base;          \
    li a2, P;             \
    sd a2, -16(a1);       \
    sd a2, -8(a1);        \
    sd a2, 0(a1);         \
    sd a2, 8(a1)

/* FILL, then `op value, off(base)`. */
#define DO_ST(op, value, base, off) \
    FILL(base);                     \
    li a2, value;                   \
    op a2, off(a1)

/* The dword at base+off (aligned) must be `expected`. */
#define CHECK_MEM(n, base, off, expected) \
    la a1, base;                          \
    ld a0, off(a1);                       \
    CHECK(n, a0, expected)

/* Store then check one dword. */
#define TEST_ST(n, op, value, base, off, chk, expected) \
    DO_ST(op, value, base, off);                        \
    CHECK_MEM(n, base, chk, expected)

#define V 0x1234567890abcdef

TEST_BEGIN
    .option norvc           /* test the 32-bit encodings */

    /* ---- aligned loads, sign and zero extension ---- */
    TEST_LD(1,  lb,  0x11, d0, 0)
    TEST_LD(2,  lb,  0xffffffffffffff88, d0, 7)
    TEST_LD(3,  lbu, 0x88, d0, 7)
    TEST_LD(4,  lb,  0x7f, d1, 7)
    TEST_LD(5,  lbu, 0x7f, d1, 7)
    TEST_LD(6,  lb,  0x22, d0, 1)
    TEST_LD(7,  lh,  0x2211, d0, 0)
    TEST_LD(8,  lh,  0xffffffffffff8877, d0, 6)
    TEST_LD(9,  lhu, 0x8877, d0, 6)
    TEST_LD(10, lh,  0x7f6e, d1, 6)
    TEST_LD(11, lhu, 0x4433, d0, 2)
    TEST_LD(12, lw,  0x44332211, d0, 0)
    TEST_LD(13, lw,  0xffffffff88776655, d0, 4)
    TEST_LD(14, lwu, 0x88776655, d0, 4)
    TEST_LD(15, lw,  0x7f6e5d4c, d1, 4)
    TEST_LD(16, lwu, 0x7f6e5d4c, d1, 4)
    TEST_LD(17, ld,  0x8877665544332211, d0, 0)
    TEST_LD(18, ld,  0x7f6e5d4c3b2a1908, d1, 0)
    TEST_LD(19, ld,  0xfedcba9876543210, d2, 0)
    TEST_LD(20, lbu, 0xff, ones, 0)
    TEST_LD(21, lhu, 0xffff, ones, 0)
    TEST_LD(22, lwu, 0xffffffff, ones, 0)
    TEST_LD(23, lb,  -1, ones, 0)
    TEST_LD(24, lh,  -1, ones, 0)
    TEST_LD(25, lw,  -1, ones, 0)
    TEST_LD(26, ld,  -1, ones, 0)

    /* ---- negative and extreme offsets ---- */
    TEST_LD(27, lb,  0xffffffffffffff88, d1, -1)
    TEST_LD(28, lhu, 0x8877, d1, -2)
    TEST_LD(29, lw,  0xffffffff88776655, d1, -4)
    TEST_LD(30, ld,  0x8877665544332211, d1, -8)
    TEST_LD(31, ld,  0x8877665544332211, d0 + 2048, -2048)
    TEST_LD(32, lbu, 0x88, d0 + 7 - 2047, 2047)
    TEST_LD(33, lwu, 0x88776655, d0 + 2, 2)        /* odd base, aligned sum */
    TEST_LD(34, ld,  0x7f6e5d4c3b2a1908, d0 + 9, -1)

    /* rd == rs1 */
    la a0, d2
    ld a0, 0(a0)
    CHECK(35, a0, 0xfedcba9876543210)
    /* load into x0: discarded */
    la a1, d2
    ld x0, 0(a1)
    lb x0, 7(a1)
    CHECK(36, x0, 0)

    /* ---- aligned stores: only the addressed bytes change, little-endian ---- */
    TEST_ST(37, sb, V, sbuf, 0,  0,  0xa5a5a5a5a5a5a5ef)
    TEST_ST(38, sb, V, sbuf, 3,  0,  0xa5a5a5a5efa5a5a5)
    TEST_ST(39, sb, V, sbuf, 7,  0,  0xefa5a5a5a5a5a5a5)
    TEST_ST(40, sb, V, sbuf, -1, -8, 0xefa5a5a5a5a5a5a5)
    TEST_ST(41, sb, V, sbuf, 7,  8,  P)                /* neighbour untouched */
    TEST_ST(42, sh, V, sbuf, 0,  0,  0xa5a5a5a5a5a5cdef)
    TEST_ST(43, sh, V, sbuf, 6,  0,  0xcdefa5a5a5a5a5a5)
    TEST_ST(44, sh, V, sbuf, -2, -8, 0xcdefa5a5a5a5a5a5)
    TEST_ST(45, sh, V, sbuf, 6,  8,  P)
    TEST_ST(46, sw, V, sbuf, 0,  0,  0xa5a5a5a590abcdef)
    TEST_ST(47, sw, V, sbuf, 4,  0,  0x90abcdefa5a5a5a5)
    TEST_ST(48, sw, V, sbuf, -4, -8, 0x90abcdefa5a5a5a5)
    TEST_ST(49, sw, V, sbuf, 4,  8,  P)
    TEST_ST(50, sd, V, sbuf, 0,  0,  V)
    TEST_ST(51, sd, V, sbuf, -8, -8, V)
    TEST_ST(52, sd, V, sbuf, 8,  8,  V)
    TEST_ST(53, sd, V, sbuf, 0,  8,  P)
    TEST_ST(54, sd, V, sbuf, 0,  -8, P)
    FILL(sbuf)
    addi a1, a1, 2047
    addi a1, a1, 1
    li a2, V
    sd a2, -2048(a1)                                /* most negative offset */
    CHECK_MEM(55, sbuf, 0, V)
    /* read back a stored dword byte by byte: byte 0 is the least significant */
    DO_ST(sd, 0x0102030405060708, sbuf, 0)
    lbu a0, 0(a1)
    CHECK(56, a0, 0x08)
    lbu a0, 7(a1)
    CHECK(57, a0, 0x01)
    lhu a0, 2(a1)
    CHECK(58, a0, 0x0506)
    lwu a0, 4(a1)
    CHECK(59, a0, 0x01020304)
    /* store from x0 stores zeros */
    FILL(sbuf)
    sw x0, 2(a1)
    sb x0, 7(a1)
    CHECK_MEM(60, sbuf, 0, 0x00a500000000a5a5)
    FILL(sbuf)
    sd x0, 0(a1)
    CHECK_MEM(61, sbuf, 0, 0)
    /* store with a large positive offset */
    la a1, sbuf
    addi a1, a1, -2047
    li a2, V
    sd a2, 2047(a1)
    CHECK_MEM(62, sbuf, 0, V)

    /* ---- misaligned loads inside a page ---- */
    TEST_LD(63, lh,  0x3322, d0, 1)
    TEST_LD(64, lh,  0x0888, d0, 7)                    /* straddles d0/d1 */
    TEST_LD(65, lhu, 0x0888, d0, 7)
    TEST_LD(66, lh,  0x7766, d0, 5)
    TEST_LD(67, lh,  0xffffffffffffdcba, d2, 5)
    TEST_LD(68, lhu, 0xdcba, d2, 5)
    TEST_LD(69, lw,  0x55443322, d0, 1)
    TEST_LD(70, lw,  0x77665544, d0, 3)
    TEST_LD(71, lw,  0x19088877, d0, 6)
    TEST_LD(72, lw,  0xffffffffeffedcba, d2, 5)
    TEST_LD(73, lwu, 0xeffedcba, d2, 5)
    TEST_LD(74, lw,  0x2a190888, d0, 7)
    TEST_LD(75, ld,  0x0888776655443322, d0, 1)
    TEST_LD(76, ld,  0x3b2a190888776655, d0, 4)
    TEST_LD(77, ld,  0x6e5d4c3b2a190888, d0, 7)
    TEST_LD(78, ld,  0x2a19088877665544, d0, 3)

    /* ---- misaligned stores inside a page ---- */
    TEST_ST(79, sh, V, sbuf, 1,  0, 0xa5a5a5a5a5cdefa5)
    TEST_ST(80, sh, V, sbuf, 7,  0, 0xefa5a5a5a5a5a5a5)
    TEST_ST(81, sh, V, sbuf, 7,  8, 0xa5a5a5a5a5a5a5cd)
    TEST_ST(82, sw, V, sbuf, 1,  0, 0xa5a5a590abcdefa5)
    TEST_ST(83, sw, V, sbuf, 6,  0, 0xcdefa5a5a5a5a5a5)
    TEST_ST(84, sw, V, sbuf, 6,  8, 0xa5a5a5a5a5a590ab)
    TEST_ST(85, sw, V, sbuf, 3,  0, 0xa590abcdefa5a5a5)
    TEST_ST(86, sd, V, sbuf, 3,  0, 0x7890abcdefa5a5a5)
    TEST_ST(87, sd, V, sbuf, 3,  8, 0xa5a5a5a5a5123456)
    TEST_ST(88, sd, V, sbuf, -1, -8, 0xefa5a5a5a5a5a5a5)
    TEST_ST(89, sd, V, sbuf, -1, 0, 0xa51234567890abcd)
    TEST_ST(90, sd, V, sbuf, 5, -8, P)
    /* misaligned store then misaligned load of the same bytes */
    DO_ST(sd, V, sbuf, 5)
    ld a0, 5(a1)
    CHECK(91, a0, V)
    lw a0, 9(a1)
    CHECK(92, a0, 0x12345678)

    /* ---- misaligned accesses across a page boundary (page_b) ---- */
    la a1, page_b
    li a2, 0x8877665544332211
    sd a2, -8(a1)
    li a2, 0x76543210fedcba98
    sd a2, 0(a1)
    TEST_LD(93,  lh,  0xffffffffffff9888, page_b, -1)
    TEST_LD(94,  lhu, 0x9888, page_b, -1)
    TEST_LD(95,  lw,  0xffffffffdcba9888, page_b, -1)
    TEST_LD(96,  lwu, 0xdcba9888, page_b, -1)
    TEST_LD(97,  lw,  0xffffffffba988877, page_b, -2)
    TEST_LD(98,  lw,  0xffffffff98887766, page_b, -3)
    TEST_LD(99,  lwu, 0x98887766, page_b, -3)
    TEST_LD(100, ld,  0x543210fedcba9888, page_b, -1)
    TEST_LD(101, ld,  0xfedcba9888776655, page_b, -4)
    TEST_LD(102, ld,  0x9888776655443322, page_b, -7)
    TEST_LD(103, ld,  0x10fedcba98887766, page_b, -3)
    TEST_ST(104, sh, 0xbeef, page_b, -1, -8, 0xefa5a5a5a5a5a5a5)
    TEST_ST(105, sh, 0xbeef, page_b, -1, 0,  0xa5a5a5a5a5a5a5be)
    TEST_ST(106, sw, 0xdeadbeef, page_b, -2, -8, 0xbeefa5a5a5a5a5a5)
    TEST_ST(107, sw, 0xdeadbeef, page_b, -2, 0,  0xa5a5a5a5a5a5dead)
    TEST_ST(108, sw, 0xdeadbeef, page_b, -1, -8, 0xefa5a5a5a5a5a5a5)
    TEST_ST(109, sw, 0xdeadbeef, page_b, -1, 0,  0xa5a5a5a5a5deadbe)
    TEST_ST(110, sd, 0x1122334455667788, page_b, -3, -8, 0x667788a5a5a5a5a5)
    TEST_ST(111, sd, 0x1122334455667788, page_b, -3, 0,  0xa5a5a51122334455)
    TEST_ST(112, sd, 0x1122334455667788, page_b, -7, -8, 0x22334455667788a5)
    TEST_ST(113, sd, 0x1122334455667788, page_b, -7, 0,  0xa5a5a5a5a5a5a511)
    TEST_ST(114, sd, 0x1122334455667788, page_b, -1, 0,  0xa511223344556677)
    TEST_ST(115, sd, 0x1122334455667788, page_b, -1, -16, P)
    TEST_ST(116, sd, 0x1122334455667788, page_b, -1, 8, P)
    /* store across the boundary, load it back across the boundary */
    DO_ST(sd, V, page_b, -5)
    ld a0, -5(a1)
    CHECK(117, a0, V)
    lw a0, -2(a1)
    CHECK(118, a0, 0x34567890)

    /* ---- fences: all execute as ordering no-ops here ---- */
    li a0, 5
    fence
    fence rw, rw
    fence r, r
    fence w, w
    fence i, o
    fence iorw, iorw
    fence.i
    CHECK(119, a0, 5)

    /* ---- self-modifying code + fence.i ---- */
    call smc_fn                                     /* run (and cache) the old code */
    CHECK(120, a0, 1)
    la t0, smc_fn
    li t1, 0x00200513                               /* addi a0, x0, 2 */
    sw t1, 0(t0)
    fence.i
    call smc_fn
    CHECK(121, a0, 2)
    li t1, 0x7ff00513                               /* addi a0, x0, 2047 */
    sw t1, 0(t0)
    fence.i
    call smc_fn
    CHECK(122, a0, 2047)
    /* patch a compressed instruction: c.li a0, 5 -> c.li a0, 7 */
    call smc_fn_c
    CHECK(123, a0, 5)
    la t0, smc_fn_c
    li t1, 0x451d                                   /* c.li a0, 7 */
    sh t1, 0(t0)
    fence.i
    call smc_fn_c
    CHECK(124, a0, 7)
    /* patch an instruction ahead in the straight-line code being executed,
     * in a loop so that the old version has run before */
    li a3, 0                                        /* iteration */
    li a4, 0                                        /* sum of results */
smc_loop:
    la t0, smc_inline
    beqz a3, 1f
    li t1, 0x06400513                               /* addi a0, x0, 100 */
    sw t1, 0(t0)
    fence.i
1:
smc_inline:
    addi a0, x0, 1
    add a4, a4, a0
    addi a3, a3, 1
    li t1, 2
    blt a3, t1, smc_loop
    CHECK(125, a4, 101)
    /* fence.i also orders a store made with a misaligned/page-crossing sw */
    la t0, smc_cross
    li t1, 0x02a00513                               /* addi a0, x0, 42 */
    sw t1, 0(t0)
    fence.i
    call smc_cross
    CHECK(126, a0, 42)

    TEST_PASS

    /* functions that get patched */
    .align 2
smc_fn:
    addi a0, x0, 1
    ret
    .align 2
smc_fn_c:
    .option push
    .option rvc
    c.li a0, 5
    .option pop
    ret
    /* an instruction that straddles a page of the code area */
    .balign 4096
    .space 4096 - 2
smc_cross:
    addi a0, x0, 1
    ret

    .data
    .align 3
d0: .dword 0x8877665544332211                       /* bytes 11 22 .. 88 */
d1: .dword 0x7f6e5d4c3b2a1908
d2: .dword 0xfedcba9876543210
d3: .dword 0x0123456789abcdef
ones: .dword -1
    .align 4
    .space 16
sbuf: .space 32
    .balign 4096
page_a: .space 4096
page_b: .space 4096
