/* Bit manipulation: Zba (add.uw, sh[123]add, sh[123]add.uw, slli.uw), Zbb
 * (andn, orn, xnor, clz[w], ctz[w], cpop[w], max[u], min[u], sext.b/h,
 * zext.h, rol[w], ror[w], rori[w], orc.b, rev8) and Zbs (bclr[i], bext[i],
 * binv[i], bset[i]) with edge operands: 0, all ones, sign bits, shift and
 * bit indices taken mod 64 (mod 32 for the W forms), W results
 * sign-extended. */
#include "unpriv.h"

#define MIN 0x8000000000000000
#define MAX 0x7fffffffffffffff
#define X   0x0123456789abcdef

TEST_BEGIN
    .option norvc

    /* ================= Zba ================= */
    /* add.uw: rs2 + zext32(rs1) */
    TEST_RR(1,  add.uw, 0x80000001, 0xffffffff80000000, 1)
    TEST_RR(2,  add.uw, 0xfffffffe, -1, -1)
    TEST_RR(3,  add.uw, 5, 0x100000000, 5)
    TEST_RR(4,  add.uw, 0x1fffffffe, 0xffffffff, 0xffffffff)
    TEST_RR_ZEROSRC2(5, add.uw, 0xffffffff, -1)    /* zext.w */
    li a1, 0x8765432187654321
    zext.w a0, a1
    CHECK(6, a0, 0x87654321)
    TEST_RR_ZERODEST(7, add.uw, 1, 1)
    /* shNadd: (rs1 << N) + rs2 */
    TEST_RR(8,  sh1add, 4, 1, 2)
    TEST_RR(9,  sh1add, 1, MIN, 1)
    TEST_RR(10, sh1add, -2, -1, 0)
    TEST_RR(11, sh1add, MIN, 0x4000000000000000, 0)
    TEST_RR(12, sh2add, 6, 1, 2)
    TEST_RR(13, sh2add, -4, -1, 0)
    TEST_RR(14, sh2add, 1, 0x4000000000000000, 1)
    TEST_RR(15, sh2add, MIN, 0x2000000000000000, 0)
    TEST_RR(16, sh3add, 10, 1, 2)
    TEST_RR(17, sh3add, -8, -1, 0)
    TEST_RR(18, sh3add, 3, 0x2000000000000000, 3)
    TEST_RR(19, sh3add, MAX, 0x0fffffffffffffff, 7)
    TEST_RR_ZERODEST(20, sh3add, 1, 1)
    /* shNadd.uw: (zext32(rs1) << N) + rs2 */
    TEST_RR(21, sh1add.uw, 0x1fffffffe, -1, 0)
    TEST_RR(22, sh1add.uw, 2, 0x100000001, 0)
    TEST_RR(23, sh1add.uw, 0x100000001, 0x80000000, 1)
    TEST_RR(24, sh2add.uw, 0x3fffffffc, -1, 0)
    TEST_RR(25, sh2add.uw, 0x200000000, 0x80000000, 0)
    TEST_RR(26, sh2add.uw, 3, 0xffffffff00000000, 3)
    TEST_RR(27, sh3add.uw, 0x7fffffff8, -1, 0)
    TEST_RR(28, sh3add.uw, 16, 0xffffffff00000001, 8)
    TEST_RR(29, sh3add.uw, 7, 0x8000000000000000, 7)
    /* slli.uw: zext32(rs1) << shamt */
    TEST_RI(30, slli.uw, 0xffffffff, -1, 0)
    TEST_RI(31, slli.uw, 0xffffffff00000000, -1, 32)
    TEST_RI(32, slli.uw, MIN, -1, 63)
    TEST_RI(33, slli.uw, 0x8000000000000000, 0x80000000, 32)
    TEST_RI(34, slli.uw, 0x234567890, 0x123456789, 4)
    TEST_RI(35, slli.uw, 0x7fffffff80000000, -1, 31)
    TEST_RI(36, slli.uw, 0, 0xffffffff00000000, 5)
    TEST_RI_ZERODEST(37, slli.uw, -1, 1)

    /* ================= Zbb: logic with negate ================= */
    TEST_RR(38, andn, 0xf000f000f000f000, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
    TEST_RR(39, andn, -1, -1, 0)
    TEST_RR(40, andn, 0, 0x123456789abcdef0, -1)
    TEST_RR(41, orn,  0xfff0fff0fff0fff0, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
    TEST_RR(42, orn,  -1, 0, 0)
    TEST_RR(43, orn,  0, 0, -1)
    TEST_RR(44, xnor, 0x0ff00ff00ff00ff0, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
    TEST_RR(45, xnor, -1, X, X)
    TEST_RR(46, xnor, 0, X, ~X)
    TEST_RR_SAME(47, andn, 0, X)
    TEST_RR_ZERODEST(48, orn, 0, 0)

    /* ================= Zbb: counts ================= */
    TEST_R(49, clz, 64, 0)
    TEST_R(50, clz, 63, 1)
    TEST_R(51, clz, 0, MIN)
    TEST_R(52, clz, 0, -1)
    TEST_R(53, clz, 32, 0xffffffff)
    TEST_R(54, clz, 31, 0x100000000)
    TEST_R(55, clz, 1, MAX)
    TEST_R(56, clzw, 32, 0)
    TEST_R(57, clzw, 31, 1)
    TEST_R(58, clzw, 0, 0x80000000)
    TEST_R(59, clzw, 32, 0xffffffff00000000)        /* upper bits ignored */
    TEST_R(60, clzw, 16, 0xffff)
    TEST_R(61, clzw, 31, 0x100000001)
    TEST_R(62, clzw, 0, -1)
    TEST_R(63, ctz, 64, 0)
    TEST_R(64, ctz, 0, 1)
    TEST_R(65, ctz, 63, MIN)
    TEST_R(66, ctz, 32, 0x100000000)
    TEST_R(67, ctz, 0, -1)
    TEST_R(68, ctz, 4, X << 4)
    TEST_R(69, ctzw, 32, 0)
    TEST_R(70, ctzw, 32, 0x100000000)               /* low word is 0 */
    TEST_R(71, ctzw, 31, 0x80000000)
    TEST_R(72, ctzw, 16, 0xffffffff00010000)
    TEST_R(73, ctzw, 0, 1)
    TEST_R(74, cpop, 0, 0)
    TEST_R(75, cpop, 64, -1)
    TEST_R(76, cpop, 32, 0x5555555555555555)
    TEST_R(77, cpop, 1, MIN)
    TEST_R(78, cpop, 32, 0xffffffff)
    TEST_R(79, cpop, 32, X)
    TEST_R(80, cpopw, 32, -1)
    TEST_R(81, cpopw, 0, 0xffffffff00000000)
    TEST_R(82, cpopw, 16, 0x5555555555555555)
    TEST_R(83, cpopw, 2, 0x80000001)
    TEST_R(84, cpopw, 0, 0)
    li a1, -1
    clz x0, a1
    cpop x0, a1
    CHECK(85, x0, 0)

    /* ================= Zbb: min/max ================= */
    TEST_RR(86, max,  1, -1, 1)
    TEST_RR(87, max,  MAX, MIN, MAX)
    TEST_RR(88, max,  -1, -2, -1)
    TEST_RR(89, max,  5, 5, 5)
    TEST_RR(90, max,  0, MIN, 0)
    TEST_RR(91, maxu, -1, -1, 1)
    TEST_RR(92, maxu, MIN, MIN, MAX)
    TEST_RR(93, maxu, -1, 0, -1)
    TEST_RR(94, min,  -1, -1, 1)
    TEST_RR(95, min,  MIN, MIN, MAX)
    TEST_RR(96, min,  -2, -1, -2)
    TEST_RR(97, min,  MIN, 0, MIN)
    TEST_RR(98, minu, 1, -1, 1)
    TEST_RR(99, minu, MAX, MIN, MAX)
    TEST_RR(100, minu, 0, 0, -1)
    TEST_RR(101, minu, 0xffffffff, 0x100000000, 0xffffffff)
    TEST_RR_ZERODEST(102, max, 1, 2)
    TEST_RR_ZERODEST(103, minu, 1, 2)

    /* ================= Zbb: sign/zero extension ================= */
    TEST_R(104, sext.b, 0x7f, 0x7f)
    TEST_R(105, sext.b, 0xffffffffffffff80, 0x80)
    TEST_R(106, sext.b, 0xfffffffffffffff0, 0x123456789abcdef0)
    TEST_R(107, sext.b, -1, 0xff)
    TEST_R(108, sext.b, 0, 0x100)
    TEST_R(109, sext.b, 0x7f, 0xffffffffffffff7f)
    TEST_R(110, sext.h, 0x7fff, 0x7fff)
    TEST_R(111, sext.h, 0xffffffffffff8000, 0x8000)
    TEST_R(112, sext.h, 0xffffffffffffdef0, 0x123456789abcdef0)
    TEST_R(113, sext.h, 0, 0x10000)
    TEST_R(114, sext.h, 0x7fff, 0xffffffffffff7fff)
    TEST_R(115, zext.h, 0xffff, -1)
    TEST_R(116, zext.h, 0xdef0, 0x123456789abcdef0)
    TEST_R(117, zext.h, 0x8000, 0x8000)
    TEST_R(118, zext.h, 0, 0xffffffffffff0000)

    /* ================= Zbb: rotates ================= */
    TEST_RR(119, rol, 3, 0x8000000000000001, 1)
    TEST_RR(120, rol, X, X, 0)
    TEST_RR(121, rol, X, X, 64)                     /* amount mod 64 */
    TEST_RR(122, rol, 0x123456789abcdef0, X, 4)
    TEST_RR(123, rol, 0xf0123456789abcde, X, 60)
    TEST_RR(124, rol, 0x8091a2b3c4d5e6f7, X, -1)    /* 63 */
    TEST_RR(125, rol, 0x89abcdef01234567, X, 32)
    TEST_RR(126, ror, MIN, 1, 1)
    TEST_RR(127, ror, 0xf0123456789abcde, X, 4)
    TEST_RR(128, ror, X, X, 64)
    TEST_RR(129, ror, 0x89abcdef01234567, X, 32)
    TEST_RR(130, ror, 0x02468acf13579bde, X, 63)
    TEST_RR(131, ror, 0x02468acf13579bde, X, 0xffffffffffffffff)
    TEST_RI(132, rori, 0xf0123456789abcde, X, 4)
    TEST_RI(133, rori, 0x02468acf13579bde, X, 63)
    TEST_RI(134, rori, X, X, 0)
    TEST_RI(135, rori, 2, 1, 63)
    TEST_RI(136, rori, 0x89abcdef01234567, X, 32)
    /* W rotates: low 32 bits, amount mod 32, result sign-extended */
    TEST_RR(137, rolw, 3, 0x80000001, 1)
    TEST_RR(138, rolw, 0xffffffff80000000, 0x40000000, 1)
    TEST_RR(139, rolw, 0x23456781, 0x12345678, 36)
    TEST_RR(140, rolw, 0x23456781, 0xffffffff12345678, 4)
    TEST_RR(141, rolw, 0x12345678, 0x12345678, 0)
    TEST_RR(142, rolw, 0xffffffff87654321, 0x87654321, 0)
    TEST_RR(143, rolw, 0xffffffff87654321, 0x87654321, 32)
    TEST_RR(144, rolw, 0xffffffffc3b2a190, 0x87654321, 31)
    TEST_RR(145, rorw, 0xffffffff80000000, 1, 1)
    TEST_RR(146, rorw, 0xffffffff81234567, 0x12345678, 4)
    TEST_RR(147, rorw, 0xffffffff81234567, 0x12345678, 36)
    TEST_RR(148, rorw, 0x12345678, 0x12345678, 32)
    TEST_RR(149, rorw, 0x2468acf0, 0x12345678, 31)
    TEST_RR(150, rorw, 0xffffffff80000000, 0xffffffff00000001, 1)
    TEST_RI(151, roriw, 0xffffffff81234567, 0x12345678, 4)
    TEST_RI(152, roriw, 0x12345678, 0x12345678, 0)
    TEST_RI(153, roriw, 1, 0x80000000, 31)
    TEST_RI(154, roriw, 2, 1, 31)
    TEST_RI(155, roriw, 0xffffffff80000000, 0xffffffff00000001, 1)
    TEST_RI(156, roriw, 0xffffffff87654321, 0xabcdef0087654321, 0)
    TEST_RR_ZERODEST(157, rolw, 1, 1)
    TEST_RI_ZERODEST(158, rori, 1, 1)

    /* ================= Zbb: orc.b, rev8 ================= */
    TEST_R(159, orc.b, 0x00ff000000ffff00, 0x0001000000ff8000)
    TEST_R(160, orc.b, 0, 0)
    TEST_R(161, orc.b, -1, -1)
    TEST_R(162, orc.b, 0xffffffff00000000, 0x0102030400000000)
    TEST_R(163, orc.b, 0xff000000000000ff, 0x8000000000000001)
    TEST_R(164, rev8, 0xefcdab8967452301, X)
    TEST_R(165, rev8, 0x8000000000000000, 0x80)
    TEST_R(166, rev8, -1, -1)
    TEST_R(167, rev8, 0x80, 0x8000000000000000)

    /* ================= Zbs ================= */
    TEST_RR(168, bclr, -2, -1, 0)
    TEST_RR(169, bclr, MAX, -1, 63)
    TEST_RR(170, bclr, -2, -1, 64)                  /* index mod 64 */
    TEST_RR(171, bclr, 0, 0, 5)
    TEST_RR(172, bclr, 0xfffffffeffffffff, -1, 32)
    TEST_RR(173, bclr, 0xffffffff7fffffff, -1, 31)
    TEST_RI(174, bclri, MAX, -1, 63)
    TEST_RI(175, bclri, 0xffffffff7fffffff, -1, 31)
    TEST_RI(176, bclri, -2, -1, 0)
    TEST_RI(177, bclri, 0xfffffffeffffffff, -1, 32)
    TEST_RR(178, bext, 1, MIN, 63)
    TEST_RR(179, bext, 0, MIN, 62)
    TEST_RR(180, bext, 1, 1, 64)
    TEST_RR(181, bext, 1, 0x100000000, 32)
    TEST_RR(182, bext, 0, 0xfffffffeffffffff, 32)
    TEST_RR(183, bext, 1, MIN, -1)
    TEST_RI(184, bexti, 1, MIN, 63)
    TEST_RI(185, bexti, 1, 0x100000000, 32)
    TEST_RI(186, bexti, 1, 0x80000000, 31)
    TEST_RI(187, bexti, 0, -2, 0)
    TEST_RI(188, bexti, 0, MAX, 63)
    TEST_RR(189, binv, MIN, 0, 63)
    TEST_RR(190, binv, 0, MIN, 63)
    TEST_RR(191, binv, 1, 0, 64)
    TEST_RR(192, binv, 0xfffffffeffffffff, -1, 32)
    TEST_RR(193, binv, 0x80000000, 0, 31)
    TEST_RI(194, binvi, MIN, 0, 63)
    TEST_RI(195, binvi, 0x80000000, 0, 31)          /* not sign-extended */
    TEST_RI(196, binvi, -2, -1, 0)
    TEST_RI(197, binvi, 0x100000000, 0, 32)
    TEST_RR(198, bset, MIN, 0, 63)
    TEST_RR(199, bset, 0x80000000, 0, 31)
    TEST_RR(200, bset, MIN, 0, 127)
    TEST_RR(201, bset, 1, 1, 0)
    TEST_RR(202, bset, 0x100000000, 0, 32)
    TEST_RI(203, bseti, MIN, 0, 63)
    TEST_RI(204, bseti, 0x100000000, 0, 32)
    TEST_RI(205, bseti, 0x80000000, 0, 31)
    TEST_RI(206, bseti, -1, -1, 7)
    TEST_RR_ZERODEST(207, bset, 0, 1)
    TEST_RI_ZERODEST(208, binvi, 0, 1)
    TEST_RR_SRC2_DEST(209, bset, 0x10000000000, 0, 40)

    /* Destination among the sources: the translator computes in rd's
     * host register, and shNadd shifts rs1 there before it adds rs2. */
    TEST_RR_SAME(210, sh3add, 27, 3)
    TEST_RR_SAME(211, sh1add, -3, -1)
    TEST_RR_SAME(212, sh2add.uw, 0x500000000 - 5, 0xffffffff)
    TEST_RR_SRC2_DEST(213, sh3add, 0x17, 2, 7)
    TEST_RR_SRC1_DEST(214, sh2add, 0x13, 4, 3)
    TEST_RR_SRC2_DEST(215, sh1add.uw, 0x1fffffffe + 9, 0xffffffffffffffff, 9)
    TEST_RR_SAME(216, rol, 3, 0x8000000000000001)

    TEST_PASS
