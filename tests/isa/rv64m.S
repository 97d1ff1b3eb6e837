/* RV64M: mul/mulh/mulhsu/mulhu/mulw/div/divu/rem/remu/divw/divuw/remw/remuw,
 * including division by zero (quotient all ones, remainder = dividend),
 * signed overflow (MIN / -1 = MIN, MIN % -1 = 0), sign extension of the W
 * forms (also of divuw/remuw results) and high products of negative
 * operands. */
#include "unpriv.h"

#define MIN 0x8000000000000000
#define MAX 0x7fffffffffffffff
#define A   0x123456789abcdef0
#define B   0xfedcba9876543210

TEST_BEGIN
    .option norvc

    /* ---- mul: low 64 bits ---- */
    TEST_RR(1,  mul, 0, 0, 0)
    TEST_RR(2,  mul, 1, 1, 1)
    TEST_RR(3,  mul, 21, 3, 7)
    TEST_RR(4,  mul, 1, -1, -1)
    TEST_RR(5,  mul, -1, -1, 1)
    TEST_RR(6,  mul, MIN, MIN, -1)
    TEST_RR(7,  mul, 1, MAX, MAX)
    TEST_RR(8,  mul, 0, 0x100000000, 0x100000000)
    TEST_RR(9,  mul, 0xfffffffe00000001, 0xffffffff, 0xffffffff)
    TEST_RR(10, mul, 0x2236d88fe5618cf0, A, 0x0fedcba987654321)
    TEST_RR(11, mul, -21, -3, 7)
    TEST_RR_SRC1_DEST(12, mul, 143, 13, 11)
    TEST_RR_SRC2_DEST(13, mul, 154, 14, 11)
    TEST_RR_SAME(14, mul, 169, 13)
    TEST_RR_ZERODEST(15, mul, 3, 5)

    /* ---- mulh: signed x signed, high 64 bits ---- */
    TEST_RR(16, mulh, 0, 0, 0)
    TEST_RR(17, mulh, 0, 1, 1)
    TEST_RR(18, mulh, 0, -1, -1)
    TEST_RR(19, mulh, -1, -1, 1)
    TEST_RR(20, mulh, -1, -2, 3)
    TEST_RR(21, mulh, 0x4000000000000000, MIN, MIN)
    TEST_RR(22, mulh, 0, MIN, -1)                      /* +2^63 */
    TEST_RR(23, mulh, 0xc000000000000000, MIN, MAX)
    TEST_RR(24, mulh, 0x3fffffffffffffff, MAX, MAX)
    TEST_RR(25, mulh, 0xffeb49923cc09532, A, B)
    TEST_RR(26, mulh, 0xffeb49923cc09532, B, A)
    TEST_RR(27, mulh, 0xfede05ff528828bd, A, -0x0fedcba987654321)
    TEST_RR_ZERODEST(28, mulh, MIN, MIN)

    /* ---- mulhsu: signed rs1 x unsigned rs2 ---- */
    TEST_RR(29, mulhsu, 0, 0, 0)
    TEST_RR(30, mulhsu, -1, -1, -1)                    /* -(2^64-1) */
    TEST_RR(31, mulhsu, 0, 1, -1)                      /* 2^64-1 */
    TEST_RR(32, mulhsu, 0x8000000000000000, MIN, -1)
    TEST_RR(33, mulhsu, 0, -1, 0)
    TEST_RR(34, mulhsu, -1, -2, 1)
    TEST_RR(35, mulhsu, -1, -2, MIN)                   /* -2^64 -> high -1 */
    TEST_RR(36, mulhsu, 0x7ffffffffffffffe, MAX, -1)
    TEST_RR(37, mulhsu, 0x121fa00ad77d7422, A, B)
    TEST_RR(38, mulhsu, 0xffeb49923cc09532, B, A)
    TEST_RR_ZERODEST(39, mulhsu, -1, -1)

    /* ---- mulhu: unsigned x unsigned ---- */
    TEST_RR(40, mulhu, 0, 0, 0)
    TEST_RR(41, mulhu, 0xfffffffffffffffe, -1, -1)
    TEST_RR(42, mulhu, 1, MIN, 2)
    TEST_RR(43, mulhu, 0, 0xffffffff, 0xffffffff)
    TEST_RR(44, mulhu, 0x121fa00ad77d7422, A, B)
    TEST_RR(45, mulhu, 0x121fa00ad77d7422, B, A)
    TEST_RR(46, mulhu, 0x4000000000000000, MIN, MIN)
    TEST_RR(47, mulhu, 0, -1, 0)
    TEST_RR_ZERODEST(48, mulhu, -1, -1)

    /* ---- mulw: low 32 bits, sign-extended ---- */
    TEST_RR(49, mulw, 21, 3, 7)
    TEST_RR(50, mulw, -2, 0x7fffffff, 2)
    TEST_RR(51, mulw, 0, 0x10000, 0x10000)
    TEST_RR(52, mulw, 0xffffffff80000000, 0x10000, 0x8000)
    TEST_RR(53, mulw, 15, 0x100000003, 0xf00000005)    /* upper bits ignored */
    TEST_RR(54, mulw, 1, -1, -1)
    TEST_RR(55, mulw, 0xffffffff80000000, 0x80000000, -1)
    TEST_RR(56, mulw, 0x7fffffff, 0x7fffffff, 1)
    TEST_RR(57, mulw, 0xffffffff9abcdef0, A, 1)
    TEST_RR_ZERODEST(58, mulw, 3, 5)

    /* ---- div: signed, rounds towards zero ---- */
    TEST_RR(59, div, 3, 20, 6)
    TEST_RR(60, div, -3, -20, 6)
    TEST_RR(61, div, -3, 20, -6)
    TEST_RR(62, div, 3, -20, -6)
    TEST_RR(63, div, 0, 0, 1)
    TEST_RR(64, div, -1, 0x1234, 0)                    /* by zero: all ones */
    TEST_RR(65, div, -1, -1, 0)
    TEST_RR(66, div, -1, 0, 0)
    TEST_RR(67, div, -1, MIN, 0)
    TEST_RR(68, div, MIN, MIN, -1)                     /* overflow */
    TEST_RR(69, div, MIN, MIN, 1)
    TEST_RR(70, div, 0xc000000000000000, MIN, 2)
    TEST_RR(71, div, 0, 1, MIN)
    TEST_RR(72, div, -MAX, MAX, -1)
    TEST_RR(73, div, 0, 5, 6)
    TEST_RR(74, div, 0, -5, 6)
    TEST_RR_SAME(75, div, 1, -7)
    TEST_RR_ZERODEST(76, div, 20, 6)
    TEST_RR_ZERODEST(77, div, 20, 0)

    /* ---- divu ---- */
    TEST_RR(78, divu, 3, 20, 6)
    TEST_RR(79, divu, 0x2aaaaaaaaaaaaaa7, -20, 6)
    TEST_RR(80, divu, -1, 0x1234, 0)
    TEST_RR(81, divu, -1, 0, 0)
    TEST_RR(82, divu, 0, MIN, -1)
    TEST_RR(83, divu, 1, -1, -1)
    TEST_RR(84, divu, -1, -1, 1)
    TEST_RR(85, divu, MAX, -1, 2)
    TEST_RR(86, divu, 0, 20, -6)
    TEST_RR_ZERODEST(87, divu, 20, 0)

    /* ---- rem: sign of the dividend ---- */
    TEST_RR(88, rem, 2, 20, 6)
    TEST_RR(89, rem, -2, -20, 6)
    TEST_RR(90, rem, 2, 20, -6)
    TEST_RR(91, rem, -2, -20, -6)
    TEST_RR(92, rem, 0x1234, 0x1234, 0)                /* by zero: dividend */
    TEST_RR(93, rem, -5, -5, 0)
    TEST_RR(94, rem, MIN, MIN, 0)
    TEST_RR(95, rem, 0, 0, 0)
    TEST_RR(96, rem, 0, MIN, -1)                       /* overflow */
    TEST_RR(97, rem, 0, MIN, 1)
    TEST_RR(98, rem, -2, MIN, 3)
    TEST_RR(99, rem, 1, 1, MIN)
    TEST_RR(100, rem, -1, -1, MIN)
    TEST_RR_SAME(101, rem, 0, -7)
    TEST_RR_ZERODEST(102, rem, 20, 6)
    TEST_RR_ZERODEST(103, rem, 20, 0)

    /* ---- remu ---- */
    TEST_RR(104, remu, 2, 20, 6)
    TEST_RR(105, remu, 2, -20, 6)
    TEST_RR(106, remu, 0x1234, 0x1234, 0)
    TEST_RR(107, remu, -1, -1, 0)
    TEST_RR(108, remu, 0, -1, -1)
    TEST_RR(109, remu, MIN, MIN, -1)
    TEST_RR(110, remu, 5, 5, -1)
    TEST_RR(111, remu, 1, -1, 2)
    TEST_RR(112, remu, 20, 20, -6)
    TEST_RR_ZERODEST(113, remu, 20, 0)

    /* ---- divw: 32-bit signed, result sign-extended ---- */
    TEST_RR(114, divw, 3, 20, 6)
    TEST_RR(115, divw, -3, -20, 6)
    TEST_RR(116, divw, 3, -20, -6)
    TEST_RR(117, divw, -1, 20, 0)
    TEST_RR(118, divw, -1, 20, 0x100000000)            /* low 32 bits of divisor are 0 */
    TEST_RR(119, divw, 0xffffffff80000000, 0x80000000, -1)   /* overflow */
    TEST_RR(120, divw, 0xffffffff80000000, 0x80000000, 0xffffffff)
    TEST_RR(121, divw, 3, 0xffffffff00000014, 0x1234567800000006)
    TEST_RR(122, divw, 0xffffffffc0000000, 0x80000000, 2)
    TEST_RR(123, divw, 0x7fffffff, 0x7fffffff, 1)
    TEST_RR(124, divw, -0x7fffffff, 0x7fffffff, -1)
    TEST_RR_ZERODEST(125, divw, 20, 6)

    /* ---- divuw: 32-bit unsigned, result sign-extended ---- */
    TEST_RR(126, divuw, 3, 20, 6)
    TEST_RR(127, divuw, 0x2aaaaaa7, -20, 6)
    TEST_RR(128, divuw, -1, 20, 0)                     /* 0xffffffff sign-extended */
    TEST_RR(129, divuw, -1, 20, 0xffffffff00000000)
    TEST_RR(130, divuw, 0xffffffff80000000, 0x80000000, 1)
    TEST_RR(131, divuw, -1, 0xffffffff, 1)
    TEST_RR(132, divuw, 0x7fffffff, 0xffffffff, 2)
    TEST_RR(133, divuw, 0, 0x80000000, -1)
    TEST_RR(134, divuw, 3, 0xabcdef0000000014, 0x1234567800000006)
    TEST_RR_ZERODEST(135, divuw, 20, 0)

    /* ---- remw: 32-bit signed, result sign-extended ---- */
    TEST_RR(136, remw, 2, 20, 6)
    TEST_RR(137, remw, -2, -20, 6)
    TEST_RR(138, remw, -2, -20, -6)
    TEST_RR(139, remw, 0xffffffff80000000, 0x180000000, 0)   /* by zero: sext(dividend) */
    TEST_RR(140, remw, 5, 0x100000005, 0x200000000)
    TEST_RR(141, remw, 0, 0x80000000, -1)              /* overflow */
    TEST_RR(142, remw, -1, 0xffffffff, 0)
    TEST_RR(143, remw, 0x7fffffff, 0x7fffffff, 0x80000000)
    TEST_RR_ZERODEST(144, remw, 20, 6)

    /* ---- remuw: 32-bit unsigned, result sign-extended ---- */
    TEST_RR(145, remuw, 2, 20, 6)
    TEST_RR(146, remuw, 2, -20, 6)
    TEST_RR(147, remuw, 0xffffffff80000000, 0x80000000, 0)   /* by zero: sext(dividend) */
    TEST_RR(148, remuw, 5, 0x100000005, 0)
    TEST_RR(149, remuw, 0xf, 0xffffffff, 0x10)
    TEST_RR(150, remuw, 1, 0x80000001, 0x80000000)
    TEST_RR(151, remuw, 0xffffffff80000000, 0x80000000, 0x80000001)
    TEST_RR(152, remuw, 0, 0xffffffff, -1)
    TEST_RR_ZERODEST(153, remuw, 20, 0)

    TEST_PASS
