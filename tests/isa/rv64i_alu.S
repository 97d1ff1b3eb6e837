/* RV64I integer computational instructions: add/sub/logic/compare,
 * lui/auipc, 64-bit shifts (register amount taken mod 64), and the W forms
 * (32-bit result sign-extended, register amount taken mod 32). */
#include "unpriv.h"

#define MIN 0x8000000000000000
#define MAX 0x7fffffffffffffff

TEST_BEGIN
    .option norvc           /* test the 32-bit encodings */

    /* ---- add ---- */
    TEST_RR(1,  add, 0, 0, 0)
    TEST_RR(2,  add, 2, 1, 1)
    TEST_RR(3,  add, 10, 3, 7)
    TEST_RR(4,  add, 0xffffffffffff8000, 0xffffffffffff8000, 0)
    TEST_RR(5,  add, MIN, MAX, 1)                  /* signed overflow wraps */
    TEST_RR(6,  add, 0, -1, 1)                     /* unsigned carry-out lost */
    TEST_RR(7,  add, 0, MIN, MIN)
    TEST_RR(8,  add, 0x100000000, 0xffffffff, 1)   /* no 32-bit truncation */
    TEST_RR(9,  add, 0x80000000, 0x7fffffff, 1)
    TEST_RR(10, add, -2, -1, -1)
    TEST_RR_SRC1_DEST(11, add, 24, 13, 11)
    TEST_RR_SRC2_DEST(12, add, 25, 14, 11)
    TEST_RR_SAME(13, add, 26, 13)
    TEST_RR_ZERODEST(14, add, 1, 2)
    TEST_RR_ZEROSRC1(15, add, 15, 15)
    TEST_RR_ZEROSRC2(16, add, 32, 32)

    /* ---- sub ---- */
    TEST_RR(17, sub, 0, 0, 0)
    TEST_RR(18, sub, 0, 1, 1)
    TEST_RR(19, sub, -4, 3, 7)
    TEST_RR(20, sub, -1, 0, 1)
    TEST_RR(21, sub, MAX, MIN, 1)                  /* wraps */
    TEST_RR(22, sub, MIN, 0, MIN)                  /* -MIN == MIN */
    TEST_RR(23, sub, 0xffffffff, 0x100000000, 1)
    TEST_RR(24, sub, 0, -1, -1)
    TEST_RR_SRC1_DEST(25, sub, 2, 13, 11)
    TEST_RR_SRC2_DEST(26, sub, 3, 14, 11)
    TEST_RR_SAME(27, sub, 0, 13)
    TEST_RR_ZERODEST(28, sub, 1, 2)
    TEST_RR_ZEROSRC1(29, sub, -15, 15)             /* neg */

    /* ---- addi (12-bit signed immediate) ---- */
    TEST_RI(30, addi, 0, 0, 0)
    TEST_RI(31, addi, 2047, 0, 2047)
    TEST_RI(32, addi, 0xfffffffffffff800, 0, -2048)
    TEST_RI(33, addi, MIN, MAX, 1)
    TEST_RI(34, addi, 0, 1, -1)
    TEST_RI(35, addi, 0x100000000, 0xffffffff, 1)
    TEST_RI(36, addi, 0, -1, 1)
    TEST_RI(37, addi, MAX, MIN, -1)
    TEST_RI(38, addi, 0x7ffff7ff, 0x7fffffff, -2048)
    TEST_RI_SRC1_DEST(39, addi, 24, 13, 11)
    TEST_RI_ZERODEST(40, addi, 5, 7)
    addi a0, x0, -1                                /* li */
    CHECK(41, a0, -1)

    /* ---- and / or / xor ---- */
    TEST_RR(42, and, 0x0f000f000f000f00, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
    TEST_RR(43, and, 0, 0xaaaaaaaaaaaaaaaa, 0x5555555555555555)
    TEST_RR(44, and, -1, -1, -1)
    TEST_RR(45, or,  0xff0fff0fff0fff0f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
    TEST_RR(46, or,  -1, 0xaaaaaaaaaaaaaaaa, 0x5555555555555555)
    TEST_RR(47, or,  0, 0, 0)
    TEST_RR(48, xor, 0xf00ff00ff00ff00f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
    TEST_RR(49, xor, 0, 0x123456789abcdef0, 0x123456789abcdef0)
    TEST_RR(50, xor, 0xedcba9876543210f, 0x123456789abcdef0, -1)
    TEST_RR_SAME(51, xor, 0, 0x5555)
    TEST_RR_ZERODEST(52, or, -1, 1)

    /* ---- andi / ori / xori (immediate sign-extended to 64 bits) ---- */
    TEST_RI(53, andi, 0x0ff00ff00ff00f00, 0x0ff00ff00ff00ff0, -241)
    TEST_RI(54, andi, 0x7ff, -1, 0x7ff)
    TEST_RI(55, andi, 0x123456789abcdef0, 0x123456789abcdef0, -1)
    TEST_RI(56, andi, 0xffffffffffff8800, 0xffffffffffff8fff, -2048)
    TEST_RI(57, andi, 0, 0x123456789abcdef0, 0)
    TEST_RI(58, ori,  0xffffffffffffff0f, 0xff00ff00ff00ff00, -241)
    TEST_RI(59, ori,  0x7ff, 0, 0x7ff)
    TEST_RI(60, ori,  0xfffffffffffff923, 0x123, -2048)
    TEST_RI(61, ori,  0x123456789abcdef0, 0x123456789abcdef0, 0)
    TEST_RI(62, xori, 0xff00ff00ff00ff00, 0x00ff00ff00ff00ff, -1)   /* not */
    TEST_RI(63, xori, 0xff00ff00ff00f80f, 0xff00ff00ff00ff00, 0x70f)
    TEST_RI(64, xori, 0x00ff00ff00ff07f0, 0xff00ff00ff00fff0, -2048)
    TEST_RI_ZERODEST(65, andi, -1, -1)
    TEST_RI_ZERODEST(66, ori, 0, 1)
    TEST_RI_ZERODEST(67, xori, 0, -1)

    /* ---- slt / sltu ---- */
    TEST_RR(68, slt, 0, 0, 0)
    TEST_RR(69, slt, 0, 1, 1)
    TEST_RR(70, slt, 1, 3, 7)
    TEST_RR(71, slt, 0, 7, 3)
    TEST_RR(72, slt, 1, MIN, 0)
    TEST_RR(73, slt, 0, 0, MIN)
    TEST_RR(74, slt, 1, -1, 0)
    TEST_RR(75, slt, 0, 0, -1)
    TEST_RR(76, slt, 0, MAX, MIN)
    TEST_RR(77, slt, 1, MIN, MAX)
    TEST_RR(78, slt, 1, 0x7fffffff, 0x80000000)    /* 64-bit compare */
    TEST_RR(79, slt, 1, -2, -1)
    TEST_RR(80, sltu, 0, 0, 0)
    TEST_RR(81, sltu, 1, 3, 7)
    TEST_RR(82, sltu, 0, 7, 3)
    TEST_RR(83, sltu, 0, -1, 0)
    TEST_RR(84, sltu, 1, 0, -1)
    TEST_RR(85, sltu, 0, MIN, MAX)
    TEST_RR(86, sltu, 1, MAX, MIN)
    TEST_RR(87, sltu, 1, 0xffffffff, 0x100000000)
    TEST_RR(88, sltu, 1, -2, -1)
    TEST_RR_ZEROSRC1(89, sltu, 1, 5)               /* snez */
    TEST_RR_ZEROSRC1(90, sltu, 0, 0)
    TEST_RR_ZEROSRC2(91, slt, 1, -5)               /* sltz */
    TEST_RR_ZERODEST(92, slt, -1, 0)

    /* ---- slti / sltiu (sltiu compares against the sign-extended imm) ---- */
    TEST_RI(93,  slti, 0, 0, 0)
    TEST_RI(94,  slti, 1, 0, 1)
    TEST_RI(95,  slti, 0, 0, -1)
    TEST_RI(96, slti, 1, -1, 0)
    TEST_RI(97, slti, 1, 0xfffffffffffff7ff, -2048)
    TEST_RI(98, slti, 0, 0xfffffffffffff800, -2048)
    TEST_RI(99, slti, 1, MIN, 2047)
    TEST_RI(100, slti, 0, MAX, -2048)
    TEST_RI(101, slti, 0, 2047, 2047)
    TEST_RI(102, slti, 1, 2046, 2047)
    TEST_RI(103, sltiu, 0, 0, 0)
    TEST_RI(104, sltiu, 1, 0, 1)                   /* seqz */
    TEST_RI(105, sltiu, 0, 1, 1)
    TEST_RI(106, sltiu, 1, 0, -1)                  /* imm is 0xffff...ffff */
    TEST_RI(107, sltiu, 0, -1, -1)
    TEST_RI(108, sltiu, 1, -2, -1)
    TEST_RI(109, sltiu, 0, 0xfffffffffffff800, -2048)
    TEST_RI(110, sltiu, 1, MAX, -2048)
    TEST_RI(111, sltiu, 0, 0x800, 2047)
    TEST_RI(112, sltiu, 1, 0x7fe, 2047)
    TEST_RI_ZERODEST(113, slti, 0, 1)

    /* ---- lui ---- */
    lui a0, 0
    CHECK(114, a0, 0)
    lui a0, 0xfffff
    CHECK(115, a0, 0xfffffffffffff000)
    lui a0, 0x80000
    CHECK(116, a0, 0xffffffff80000000)             /* bit 31 sign-extends */
    lui a0, 0x7ffff
    CHECK(117, a0, 0x7ffff000)
    lui a0, 1
    CHECK(118, a0, 0x1000)
    lui x0, 0x12345
    CHECK(119, x0, 0)
    lui a0, 0x12345
    addi a0, a0, 0x678
    CHECK(120, a0, 0x12345678)

    /* ---- auipc ---- */
1:  auipc a0, 0
    la a1, 1b
    CHECK_REG(121, a0, a1)
2:  auipc a0, 1
    la a1, 2b
    li t0, 0x1000
    add a1, a1, t0
    CHECK_REG(122, a0, a1)
3:  auipc a0, 0xfffff                              /* pc - 4096 */
    la a1, 3b
    addi a1, a1, -2048
    addi a1, a1, -2048
    CHECK_REG(123, a0, a1)
4:  auipc a0, 0x80000                              /* pc - 2 GiB (sign-extended) */
    la a1, 4b
    li t0, 0xffffffff80000000
    add a1, a1, t0
    CHECK_REG(124, a0, a1)
5:  auipc a0, 0x7ffff
    la a1, 5b
    li t0, 0x7ffff000
    add a1, a1, t0
    CHECK_REG(125, a0, a1)
    auipc x0, 1
    CHECK(126, x0, 0)

    /* ---- sll (amount = rs2 mod 64) ---- */
    TEST_RR(127, sll, 1, 1, 0)
    TEST_RR(128, sll, 2, 1, 1)
    TEST_RR(129, sll, 0x80000000, 1, 31)
    TEST_RR(130, sll, 0x100000000, 1, 32)
    TEST_RR(131, sll, MIN, 1, 63)
    TEST_RR(132, sll, 1, 1, 64)                    /* 64 mod 64 = 0 */
    TEST_RR(133, sll, 2, 1, 65)
    TEST_RR(134, sll, MIN, 1, -1)                  /* low 6 bits = 63 */
    TEST_RR(135, sll, 0xffffffff00000000, -1, 32)
    TEST_RR(136, sll, 0x123456789abcdef0, 0x0123456789abcdef, 4)
    TEST_RR(137, sll, 0x8000000000000000, 0x0123456789abcdef, 0xfffffffffffffc3f)
    TEST_RR_SRC1_DEST(138, sll, 0x80, 1, 7)
    TEST_RR_SRC2_DEST(139, sll, 0x4000, 1, 14)
    TEST_RR_SAME(140, sll, 24, 3)
    TEST_RR_ZERODEST(141, sll, 1, 3)
    TEST_RR_ZEROSRC2(142, sll, -1, -1)

    /* ---- srl ---- */
    TEST_RR(143, srl, MIN, MIN, 0)
    TEST_RR(144, srl, 0x4000000000000000, MIN, 1)
    TEST_RR(145, srl, 0x100000000, MIN, 31)
    TEST_RR(146, srl, 0x80000000, MIN, 32)
    TEST_RR(147, srl, 1, MIN, 63)
    TEST_RR(148, srl, MIN, MIN, 64)
    TEST_RR(149, srl, MAX, -1, 1)
    TEST_RR(150, srl, 1, -1, 63)
    TEST_RR(151, srl, 0x1ffffffff, 0xffffffff80000000, 31)
    TEST_RR(152, srl, 0x00000000ffffffff, -1, 0xffffffffffffffe0)  /* 32 */
    TEST_RR_ZERODEST(153, srl, -1, 1)

    /* ---- sra ---- */
    TEST_RR(154, sra, MIN, MIN, 0)
    TEST_RR(155, sra, 0xc000000000000000, MIN, 1)
    TEST_RR(156, sra, 0xffffffff00000000, MIN, 31)
    TEST_RR(157, sra, 0xffffffff80000000, MIN, 32)
    TEST_RR(158, sra, -1, MIN, 63)
    TEST_RR(159, sra, MIN, MIN, 64)
    TEST_RR(160, sra, 0, MAX, 63)
    TEST_RR(161, sra, 0x7fffffff, MAX, 32)
    TEST_RR(162, sra, 0x3fffffffffffffff, MAX, 1)
    TEST_RR(163, sra, -1, -1, 0xffffffffffffffc1)  /* amount 1 */
    TEST_RR(164, sra, 0xfffffffff8000000, 0xffffffff80000000, 4)
    TEST_RR_ZERODEST(165, sra, -1, 1)

    /* ---- slli / srli / srai (6-bit immediate amounts) ---- */
    TEST_RI(166, slli, 1, 1, 0)
    TEST_RI(167, slli, 0x80000000, 1, 31)
    TEST_RI(168, slli, 0x100000000, 1, 32)
    TEST_RI(169, slli, MIN, 1, 63)
    TEST_RI(170, slli, 0xffffffff00000000, -1, 32)
    TEST_RI(171, slli, 0x123456789abcdef0, 0x0123456789abcdef, 4)
    TEST_RI(172, srli, MIN, MIN, 0)
    TEST_RI(173, srli, 0x100000000, MIN, 31)
    TEST_RI(174, srli, 0x80000000, MIN, 32)
    TEST_RI(175, srli, 1, MIN, 63)
    TEST_RI(176, srli, 0x00000000ffffffff, -1, 32)
    TEST_RI(177, srai, MIN, MIN, 0)
    TEST_RI(178, srai, 0xffffffff00000000, MIN, 31)
    TEST_RI(179, srai, 0xffffffff80000000, MIN, 32)
    TEST_RI(180, srai, -1, MIN, 63)
    TEST_RI(181, srai, 0, MAX, 63)
    TEST_RI(182, srai, 0x7fffffff, MAX, 32)
    TEST_RI_SRC1_DEST(183, srai, 0xfffffffffffffff8, 0xffffffffffffff80, 4)
    TEST_RI_ZERODEST(184, slli, 1, 1)
    TEST_RI_ZERODEST(185, srli, -1, 1)
    TEST_RI_ZERODEST(186, srai, -1, 1)

    /* ---- addw / subw / addiw: 32-bit result, sign-extended ---- */
    TEST_RR(187, addw, 0xffffffff80000000, 0x7fffffff, 1)
    TEST_RR(188, addw, 0, 0xffffffff, 1)
    TEST_RR(189, addw, 0, 0x80000000, 0x80000000)
    TEST_RR(190, addw, -2, -1, -1)
    TEST_RR(191, addw, 3, 0x1234567800000001, 0xabcdef0000000002)   /* upper bits ignored */
    TEST_RR(192, addw, 0x7fffffff, 0x7ffffffe, 1)
    TEST_RR(193, addw, -1, 0xffffffff, 0)
    TEST_RR_ZERODEST(194, addw, 1, 1)
    TEST_RR(195, subw, -1, 0, 1)
    TEST_RR(196, subw, 0x7fffffff, 0x80000000, 1)
    TEST_RR(197, subw, 0xffffffff80000000, 0, 0x80000000)
    TEST_RR(198, subw, -1, 0x100000000, 1)
    TEST_RR(199, subw, -4, 3, 7)
    TEST_RR(200, subw, 0, 0x123456789, 0x223456789)
    TEST_RR_ZERODEST(201, subw, 1, 2)
    TEST_RI(202, addiw, 0xffffffff80000000, 0x7fffffff, 1)
    TEST_RI(203, addiw, 0xfffffffffffff800, 0, -2048)
    TEST_RI(204, addiw, -1, 0xffffffff, 0)         /* sext.w */
    TEST_RI(205, addiw, 0x23456789, 0x123456789, 0)
    TEST_RI(206, addiw, 0x7fffffff, 0x80000000, -1)
    TEST_RI(207, addiw, 0xffffffff800007fe, 0x17fffffff, 2047)
    TEST_RI(208, addiw, 0x7fffffff, 0xffffffff7fffffff, 0)
    TEST_RI_ZERODEST(209, addiw, 1, 1)

    /* ---- sllw / srlw / sraw (amount = rs2 mod 32) ---- */
    TEST_RR(210, sllw, 0xffffffff80000000, 1, 31)
    TEST_RR(211, sllw, 1, 1, 32)
    TEST_RR(212, sllw, 0xffffffff80000000, 1, 63)
    TEST_RR(213, sllw, 0xfffffffffffffffe, 0xffffffff, 1)
    TEST_RR(214, sllw, 0xffffffffabcdef00, 0x123456789abcdef0, 4)
    TEST_RR(215, sllw, 1, 0x100000001, 0)
    TEST_RR(216, sllw, 0xffffffff80000000, 0x80000000, 0)
    TEST_RR(217, sllw, -1, 0xffffffff, 0xffffffffffffffe0)   /* -32 mod 32 = 0 */
    TEST_RR(218, srlw, 0xffffffff80000000, 0x80000000, 0)
    TEST_RR(219, srlw, 0x40000000, 0x80000000, 1)
    TEST_RR(220, srlw, 1, 0x80000000, 31)
    TEST_RR(221, srlw, 0xffffffff80000000, 0x80000000, 32)
    TEST_RR(222, srlw, 0x7fffffff, -1, 1)
    TEST_RR(223, srlw, 0, 0x1234567800000000, 4)
    TEST_RR(224, srlw, 1, 0xffffffff80000000, 63)
    TEST_RR(225, srlw, 0x01000000, 0xffffffff80000000, 0x27)   /* 39 mod 32 = 7 */
    TEST_RR(226, sraw, 0xffffffff80000000, 0x80000000, 0)
    TEST_RR(227, sraw, 0xffffffffc0000000, 0x80000000, 1)
    TEST_RR(228, sraw, -1, 0x80000000, 31)
    TEST_RR(229, sraw, 0xffffffff80000000, 0x80000000, 32)
    TEST_RR(230, sraw, 0, 0x7fffffff, 31)
    TEST_RR(231, sraw, 0x3fffffff, 0x7fffffff, 1)
    TEST_RR(232, sraw, 0xfffffffff8000000, 0x80000000, 4)
    TEST_RR(233, sraw, 0, 0x8000000000000000, 0)
    TEST_RR(234, sraw, 0x7fff, 0x17fffffff, 16)
    TEST_RR(235, sraw, -1, 0x80000000, 63)
    TEST_RR_ZERODEST(236, sllw, 1, 1)
    TEST_RR_ZERODEST(237, srlw, -1, 1)
    TEST_RR_ZERODEST(238, sraw, -1, 1)

    /* ---- slliw / srliw / sraiw (5-bit immediate amounts) ---- */
    TEST_RI(239, slliw, 0xffffffff80000000, 1, 31)
    TEST_RI(240, slliw, -1, 0xffffffff, 0)
    TEST_RI(241, slliw, 0x7ffffffe, 0xbfffffff, 1)
    TEST_RI(242, slliw, 0xffffffffabcdef00, 0x123456789abcdef0, 4)
    TEST_RI(243, srliw, 0xffffffff80000000, 0x80000000, 0)
    TEST_RI(244, srliw, 1, 0xffffffff80000000, 31)
    TEST_RI(245, srliw, 0x7fffffff, -1, 1)
    TEST_RI(246, srliw, 0x00012345, 0xfedcba9812345678, 12)
    TEST_RI(247, sraiw, -1, 0x80000000, 31)
    TEST_RI(248, sraiw, 0x7fffffff, 0xffffffff7fffffff, 0)
    TEST_RI(249, sraiw, 0xfffffffffff89abc, 0x00000000f89abcde, 8)
    TEST_RI(250, sraiw, 0, 0x7fffffff, 31)
    TEST_RI_ZERODEST(251, slliw, 1, 1)
    TEST_RI_ZERODEST(252, srliw, -1, 1)
    TEST_RI_ZERODEST(253, sraiw, -1, 1)

    /* x0 reads as zero after all of the above */
    CHECK(254, x0, 0)

    TEST_PASS
