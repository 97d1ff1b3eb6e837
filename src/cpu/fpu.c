/* F and D extensions: decode and execution of OP-FP and fused multiply-add.
 *
 * How results stay bit-exact:
 *  - Sign injection, moves, compares, min/max, fclass: integer bit operations.
 *  - Conversions between floats and integers, fcvt.d.s: software (fpu_soft.c),
 *    integer-only and exact in every rounding mode.
 *  - add, sub, mul, div, sqrt, fma, fcvt.s.d: on x86-64 the host SSE unit
 *    (FMA3 for fused ops when the CPU has it), under an MXCSR that we load
 *    ourselves (all exceptions masked, no DAZ/FTZ, rounding from rm) and whose
 *    sticky flags we read back. SSE is IEEE 754 conformant with tininess
 *    detected after rounding and, with underflow masked, UE raised only for
 *    a tiny and inexact result: exactly the RISC-V rules. The host is used
 *    only when no operand is a NaN (NaN results are then only produced by
 *    invalid operations and are replaced by the canonical NaN) and for the
 *    four rounding modes x86 has. NaN operands, RMM, hosts other than x86-64
 *    and x86 CPUs without FMA3 (for fused ops) take the software path.
 *    In round-to-nearest-even, the common case, most of these need no MXCSR
 *    access at all (see rne_arith).
 *
 * Around each host operation the MXCSR is set from rm and then put back to
 * the ABI default (see host_enter), so the emulator's own floating-point code
 * is not affected. No global state. */
#include "cpu/fpu.h"

#include <stdbool.h>
#include <string.h>

#include "cpu/fpu_soft.h"

/* -DFPU_HOST_X86=0 builds the portable (software-only) FPU on x86-64 too. */
#ifndef FPU_HOST_X86
#if defined(__x86_64__)
#define FPU_HOST_X86 1
#else
#define FPU_HOST_X86 0
#endif
#endif

#define SIGN64 0x8000000000000000ull
#define SIGN32 0x80000000ull

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

ALWAYS_INLINE bool is_nan(int d, uint64_t v)
{
    return d ? (v & ~SIGN64) > 0x7ff0000000000000ull : (v & 0x7fffffffu) > 0x7f800000u;
}

ALWAYS_INLINE bool is_snan(int d, uint64_t v)
{
    return is_nan(d, v) && !(d ? (v >> 51) & 1 : (v >> 22) & 1);
}

ALWAYS_INLINE uint64_t sign_bit(int d) { return d ? SIGN64 : SIGN32; }

ALWAYS_INLINE uint64_t canon_nan(int d) { return d ? FPU_CNAN64 : FPU_CNAN32; }

/* Reads an operand: binary32 values must be NaN-boxed, else they read as the
 * canonical NaN. */
ALWAYS_INLINE uint64_t rdf(const struct fp_regs *fp, unsigned r, int d)
{
    uint64_t v = fp->f[r];
    if (d)
        return v;
    return (v >> 32) == 0xffffffffu ? (uint32_t)v : FPU_CNAN32;
}

ALWAYS_INLINE void wrf(struct fp_regs *fp, unsigned r, int d, uint64_t v)
{
    fp->f[r] = d ? v : fpu_box32((uint32_t)v);
}

ALWAYS_INLINE void wrx(uint64_t *x, unsigned r, uint64_t v)
{
    if (r)
        x[r] = v;
}

#if FPU_HOST_X86
/* RISC-V rm (RNE, RTZ, RDN, RUP) -> MXCSR.RC */
static const uint8_t x86_rc[4] = {0, 3, 1, 2};

/* MXCSR exception flags (IE DE ZE OE UE PE) -> fflags; DE is ignored */
#define MXF(m) ((((m) & 1) ? FFLAG_NV : 0) | (((m) & 4) ? FFLAG_DZ : 0) | \
                (((m) & 8) ? FFLAG_OF : 0) | (((m) & 16) ? FFLAG_UF : 0) | \
                (((m) & 32) ? FFLAG_NX : 0))
#define MXF4(m) MXF(m), MXF((m) + 1), MXF((m) + 2), MXF((m) + 3)
#define MXF16(m) MXF4(m), MXF4((m) + 4), MXF4((m) + 8), MXF4((m) + 12)
static const uint8_t mx_flags[64] = {MXF16(0), MXF16(16), MXF16(32), MXF16(48)};

ALWAYS_INLINE uint32_t mx_read(void)
{
    uint32_t m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    return m;
}

ALWAYS_INLINE void mx_write(uint32_t m) { __asm__ volatile("ldmxcsr %0" : : "m"(m)); }

/* Host MXCSR protocol. The SysV x86-64 ABI makes the MXCSR status flags
 * caller-saved and its control bits callee-saved; Nimbus always runs with the
 * default control bits (0x1f80: all exceptions masked, round to nearest, no
 * DAZ/FTZ) and never changes them. So a host operation loads its own MXCSR
 * (default control bits, rounding from rm, clear flags), runs, reads the flags
 * once (STMXCSR is slow on some CPUs: ~8 ns on AMD Zen, LDMXCSR ~1 ns), and
 * loads the default back. The asm statements are volatile, so the compiler
 * keeps them, and the volatile arithmetic between them, in program order. */
#define MXCSR_DEFAULT 0x1f80u

ALWAYS_INLINE void host_enter(int rm) { mx_write(MXCSR_DEFAULT | (uint32_t)x86_rc[rm] << 13); }

/* Returns the fflags raised since host_enter and restores the default MXCSR. */
ALWAYS_INLINE uint32_t host_leave(void)
{
    uint32_t m = mx_read();
    mx_write(MXCSR_DEFAULT);
    return mx_flags[m & 0x3f];
}

ALWAYS_INLINE double u2d(uint64_t v)
{
    double x;
    memcpy(&x, &v, sizeof x);
    return x;
}

ALWAYS_INLINE uint64_t d2u(double x)
{
    uint64_t v;
    memcpy(&v, &x, sizeof v);
    return v;
}

ALWAYS_INLINE float u2f(uint64_t v)
{
    uint32_t w = (uint32_t)v;
    float x;
    memcpy(&x, &w, sizeof x);
    return x;
}

ALWAYS_INLINE uint64_t f2u(float x)
{
    uint32_t w;
    memcpy(&w, &x, sizeof w);
    return w;
}

ALWAYS_INLINE bool host_has_fma(void) { return __builtin_cpu_supports("fma"); }

ALWAYS_INLINE uint64_t host_arith(int d, int op, uint64_t a, uint64_t b, int rm, uint32_t *fl)
{
    host_enter(rm);
    uint64_t r;
    if (d) {
        double x = u2d(a), y = u2d(b);
        switch (op) {
        case OP_ADD: __asm__ volatile("addsd %1, %0" : "+x"(x) : "x"(y)); break;
        case OP_SUB: __asm__ volatile("subsd %1, %0" : "+x"(x) : "x"(y)); break;
        case OP_MUL: __asm__ volatile("mulsd %1, %0" : "+x"(x) : "x"(y)); break;
        default: __asm__ volatile("divsd %1, %0" : "+x"(x) : "x"(y)); break;
        }
        r = d2u(x);
    } else {
        float x = u2f(a), y = u2f(b);
        switch (op) {
        case OP_ADD: __asm__ volatile("addss %1, %0" : "+x"(x) : "x"(y)); break;
        case OP_SUB: __asm__ volatile("subss %1, %0" : "+x"(x) : "x"(y)); break;
        case OP_MUL: __asm__ volatile("mulss %1, %0" : "+x"(x) : "x"(y)); break;
        default: __asm__ volatile("divss %1, %0" : "+x"(x) : "x"(y)); break;
        }
        r = f2u(x);
    }
    *fl |= host_leave();
    return is_nan(d, r) ? canon_nan(d) : r;
}

ALWAYS_INLINE uint64_t host_sqrt(int d, uint64_t a, int rm, uint32_t *fl)
{
    host_enter(rm);
    uint64_t r;
    if (d) {
        double x = u2d(a), y;
        __asm__ volatile("sqrtsd %1, %0" : "=x"(y) : "x"(x));
        r = d2u(y);
    } else {
        float x = u2f(a), y;
        __asm__ volatile("sqrtss %1, %0" : "=x"(y) : "x"(x));
        r = f2u(y);
    }
    *fl |= host_leave();
    return is_nan(d, r) ? canon_nan(d) : r;
}

ALWAYS_INLINE uint64_t host_fma(int d, uint64_t a, uint64_t b, uint64_t c, int rm, uint32_t *fl)
{
    host_enter(rm);
    uint64_t r;
    if (d) {
        double x = u2d(a), y = u2d(b), z = u2d(c);
        __asm__ volatile("vfmadd231sd %2, %1, %0" : "+x"(z) : "x"(x), "x"(y));
        r = d2u(z);
    } else {
        float x = u2f(a), y = u2f(b), z = u2f(c);
        __asm__ volatile("vfmadd231ss %2, %1, %0" : "+x"(z) : "x"(x), "x"(y));
        r = f2u(z);
    }
    *fl |= host_leave();
    return is_nan(d, r) ? canon_nan(d) : r;
}

/* Round to nearest-even without touching the MXCSR. The default MXCSR
 * already rounds to nearest-even, and reading its flags is what costs
 * (see host_leave), so for RNE add, sub, mul, div and sqrt on operands and
 * results well inside the normal range the flags come from the values:
 * the only exception possible there is inexact, and it is raised iff an
 * exact error term is non-zero:
 *  - add/sub: TwoSum's error (exact for all finite operands without
 *    overflow; a tiny sum is always exact, so no underflow either);
 *  - mul, div, sqrt in binary64: a*b - r, a - r*b, a - r*r by FMA, exact
 *    when nothing underflows (Boldo & Daumas, "Representable correcting
 *    terms for possibly underflowing floating point operations", 2003);
 *  - binary32: the same terms in binary64, where the products are exact;
 *  - fma in binary64: a*b + c - r = gamma + alpha2 exactly by ErrFma
 *    (Boldo & Muller, "Exact and approximated error of the FMA", IEEE TC
 *    2011), so inexact iff gamma != -alpha2; in binary32, a*b + c is
 *    s + e exactly in binary64 (TwoSum), and s - r is exact (Sterbenz).
 * "Well inside": every operand and the result have a biased exponent in
 * [SAFE_LO, SAFE_HI] (zeros and subnormals allowed for add/sub, zero for
 * the addend of fma; for fma the product a*b too), far from
 * underflow, overflow, inf and NaN; everything else, and RTZ/RDN/RUP, take
 * the MXCSR path, RMM and NaN operands the software one. fpu_execute_soft
 * is the reference (tests/unit/test_fpu.c compares the two at random). */
#define SAFE_LO(d) ((d) ? 128u : 32u)
#define SAFE_HI(d) ((d) ? 1919u : 223u)

ALWAYS_INLINE unsigned expo(int d, uint64_t v)
{
    return d ? (unsigned)(v >> 52) & 0x7ff : (unsigned)(v >> 23) & 0xff;
}

ALWAYS_INLINE bool safe(int d, uint64_t v)
{
    unsigned e = expo(d, v);
    return e >= SAFE_LO(d) && e <= SAFE_HI(d);
}

ALWAYS_INLINE double fma_host(double a, double b, double c)
{
    __asm__("vfmadd231sd %2, %1, %0" : "+x"(c) : "x"(a), "x"(b));
    return c;
}

/* Returns true with *r and the flags set if the fast path applies. */
ALWAYS_INLINE bool rne_arith(int d, int op, uint64_t a, uint64_t b, uint64_t *r, uint32_t *fl)
{
    bool inexact;
    if (op == OP_ADD || op == OP_SUB) {
        if (expo(d, a) > SAFE_HI(d) || expo(d, b) > SAFE_HI(d))
            return false;
        if (op == OP_SUB)
            b ^= sign_bit(d);
        if (d) {
            double x = u2d(a), y = u2d(b), s = x + y, yy = s - x, xx = s - yy;
            inexact = (x - xx) + (y - yy) != 0;
            *r = d2u(s);
        } else {
            float x = u2f(a), y = u2f(b), s = x + y, yy = s - x, xx = s - yy;
            inexact = (x - xx) + (y - yy) != 0;
            *r = f2u(s);
        }
    } else {
        if (!safe(d, a) || !safe(d, b) || (d && !host_has_fma()))
            return false;
        if (d) {
            double x = u2d(a), y = u2d(b), z = op == OP_MUL ? x * y : x / y;
            if (!safe(1, d2u(z)))
                return false;
            inexact = op == OP_MUL ? fma_host(x, y, -z) != 0 : fma_host(z, y, -x) != 0;
            *r = d2u(z);
        } else {
            float x = u2f(a), y = u2f(b), z = op == OP_MUL ? x * y : x / y;
            if (!safe(0, f2u(z)))
                return false;
            inexact = op == OP_MUL ? (double)x * y != z : (double)z * y != x;
            *r = f2u(z);
        }
    }
    if (inexact)
        *fl |= FFLAG_NX;
    return true;
}

ALWAYS_INLINE bool rne_sqrt(int d, uint64_t a, uint64_t *r, uint32_t *fl)
{
    if (!safe(d, a) || (a & sign_bit(d)) || (d && !host_has_fma()))
        return false;
    bool inexact;
    if (d) {
        double x = u2d(a), z;
        __asm__("sqrtsd %1, %0" : "=x"(z) : "x"(x));
        inexact = fma_host(z, z, -x) != 0;
        *r = d2u(z);
    } else {
        float x = u2f(a), z;
        __asm__("sqrtss %1, %0" : "=x"(z) : "x"(x));
        inexact = (double)z * z != x;
        *r = f2u(z);
    }
    if (inexact)
        *fl |= FFLAG_NX;
    return true;
}

/* TwoSum: s + e == x + y exactly (no overflow). */
#define TWO_SUM(T, x, y, s, e)                                                 \
    T s = (x) + (y), s##_y = s - (x), e = ((x) - (s - s##_y)) + ((y) - s##_y)

ALWAYS_INLINE bool rne_fma(int d, uint64_t a, uint64_t b, uint64_t c, uint64_t *r, uint32_t *fl)
{
    if (!safe(d, a) || !safe(d, b) || (!safe(d, c) && (c & ~sign_bit(d))) || !host_has_fma())
        return false;
    bool inexact;
    if (d) {
        double x = u2d(a), y = u2d(b), z = u2d(c), r1 = fma_host(x, y, z), u1 = x * y;
        if (!safe(1, d2u(r1)) || !safe(1, d2u(u1)))
            return false;
        double u2 = fma_host(x, y, -u1);
        TWO_SUM(double, z, u2, a1, a2);
        TWO_SUM(double, u1, a1, b1, b2);
        double g = (b1 - r1) + b2;
        inexact = g != -a2;
        *r = d2u(r1);
    } else {
        float x = u2f(a), y = u2f(b), z = u2f(c), r1 = z;
        __asm__("vfmadd231ss %2, %1, %0" : "+x"(r1) : "x"(x), "x"(y));
        if (!safe(0, f2u(r1)))
            return false;
        double p = (double)x * y, zd = z;
        TWO_SUM(double, p, zd, s1, e1);
        inexact = s1 - (double)r1 != -e1;
        *r = f2u(r1);
    }
    if (inexact)
        *fl |= FFLAG_NX;
    return true;
}

/* binary64 -> binary32 */
ALWAYS_INLINE uint64_t host_cvt_sd(uint64_t a, int rm, uint32_t *fl)
{
    host_enter(rm);
    double x = u2d(a);
    float y;
    __asm__ volatile("cvtsd2ss %1, %0" : "=x"(y) : "x"(x));
    *fl |= host_leave();
    return f2u(y);
}
#endif /* FPU_HOST_X86 */

ALWAYS_INLINE uint64_t do_arith(int d, int op, uint64_t a, uint64_t b, int rm, uint32_t *fl,
                                bool host)
{
#if FPU_HOST_X86
    uint64_t r;
    if (host && rm == FRM_RNE && rne_arith(d, op, a, b, &r, fl))
        return r;
    if (host && rm != FRM_RMM && !is_nan(d, a) && !is_nan(d, b))
        return host_arith(d, op, a, b, rm, fl);
#else
    (void)host;
#endif
    switch (op) {
    case OP_ADD: return fpu_soft_add(d, a, b, rm, fl);
    case OP_SUB: return fpu_soft_add(d, a, b ^ sign_bit(d), rm, fl);
    case OP_MUL: return fpu_soft_mul(d, a, b, rm, fl);
    default: return fpu_soft_div(d, a, b, rm, fl);
    }
}

ALWAYS_INLINE uint64_t do_sqrt(int d, uint64_t a, int rm, uint32_t *fl, bool host)
{
#if FPU_HOST_X86
    uint64_t r;
    if (host && rm == FRM_RNE && rne_sqrt(d, a, &r, fl))
        return r;
    if (host && rm != FRM_RMM && !is_nan(d, a))
        return host_sqrt(d, a, rm, fl);
#else
    (void)host;
#endif
    return fpu_soft_sqrt(d, a, rm, fl);
}

ALWAYS_INLINE uint64_t do_fma(int d, uint64_t a, uint64_t b, uint64_t c, int rm, uint32_t *fl,
                              bool host)
{
#if FPU_HOST_X86
    uint64_t r;
    if (host && rm == FRM_RNE && rne_fma(d, a, b, c, &r, fl))
        return r;
    if (host && rm != FRM_RMM && !is_nan(d, a) && !is_nan(d, b) && !is_nan(d, c) &&
        host_has_fma())
        return host_fma(d, a, b, c, rm, fl);
#else
    (void)host;
#endif
    return fpu_soft_fma(d, a, b, c, rm, fl);
}

ALWAYS_INLINE uint64_t do_cvt_sd(uint64_t a, int rm, uint32_t *fl, bool host)
{
#if FPU_HOST_X86
    if (host && rm != FRM_RMM && !is_nan(1, a))
        return host_cvt_sd(a, rm, fl);
#else
    (void)host;
#endif
    return fpu_soft_cvt_ff(0, a, rm, fl);
}

/* Total order on non-NaN values with -0 < +0 (for fmin/fmax). */
ALWAYS_INLINE int64_t key_total(int d, uint64_t v)
{
    int64_t m = (int64_t)(v & (sign_bit(d) - 1));
    return (v & sign_bit(d)) ? -m - 1 : m;
}

/* IEEE order on non-NaN values, -0 == +0 (for flt/fle). */
ALWAYS_INLINE int64_t key_ieee(int d, uint64_t v)
{
    int64_t m = (int64_t)(v & (sign_bit(d) - 1));
    return (v & sign_bit(d)) ? -m : m;
}

ALWAYS_INLINE uint64_t do_minmax(int d, uint64_t a, uint64_t b, bool max, uint32_t *fl)
{
    bool an = is_nan(d, a), bn = is_nan(d, b);
    if (UNLIKELY(an || bn)) {
        if (is_snan(d, a) || is_snan(d, b))
            *fl |= FFLAG_NV;
        if (an && bn)
            return canon_nan(d);
        return an ? b : a;
    }
    if (max)
        return key_total(d, a) >= key_total(d, b) ? a : b;
    return key_total(d, a) <= key_total(d, b) ? a : b;
}

/* funct3: 2 = feq, 1 = flt, 0 = fle */
ALWAYS_INLINE uint64_t do_cmp(int d, uint64_t a, uint64_t b, unsigned f3, uint32_t *fl)
{
    if (UNLIKELY(is_nan(d, a) || is_nan(d, b))) {
        if (f3 != 2 || is_snan(d, a) || is_snan(d, b))
            *fl |= FFLAG_NV;
        return 0;
    }
    switch (f3) {
    case 2: return key_ieee(d, a) == key_ieee(d, b);
    case 1: return key_ieee(d, a) < key_ieee(d, b);
    default: return key_ieee(d, a) <= key_ieee(d, b);
    }
}

ALWAYS_INLINE uint64_t do_class(int d, uint64_t v)
{
    int mb = d ? 52 : 23;
    uint64_t emax = d ? 0x7ff : 0xff;
    uint64_t e = (v >> mb) & emax, m = v & ((1ull << mb) - 1);
    bool neg = (v & sign_bit(d)) != 0;
    if (e == emax) {
        if (m == 0)
            return neg ? 1u << 0 : 1u << 7;
        return (m >> (mb - 1)) ? 1u << 9 : 1u << 8;
    }
    if (e == 0) {
        if (m == 0)
            return neg ? 1u << 3 : 1u << 4;
        return neg ? 1u << 2 : 1u << 5;
    }
    return neg ? 1u << 1 : 1u << 6;
}

ALWAYS_INLINE int execute(struct fp_regs *fp, uint64_t *x, uint32_t insn, bool host)
{
    const unsigned opc = insn & 0x7f, rd = (insn >> 7) & 31, f3 = (insn >> 12) & 7;
    const unsigned rs1 = (insn >> 15) & 31, rs2 = (insn >> 20) & 31;
    const unsigned fmt = (insn >> 25) & 3, f5 = insn >> 27;
    const int d = (int)fmt;
    uint32_t fl = 0;
    int rm = (int)f3;
    uint64_t a, b, r;

    if (fmt > 1)
        return -1;
    if (rm == FRM_DYN)
        rm = (int)(fp->frm & 7);
    /* rm is only checked by the instructions that round (below) */

    if (opc != 0x53) {
        uint64_t c;
        if ((opc & 0x73) != 0x43 || rm > FRM_RMM)
            return -1;
        a = rdf(fp, rs1, d);
        b = rdf(fp, rs2, d);
        c = rdf(fp, f5, d);
        if (opc & 8) /* fnmsub, fnmadd: negate the product */
            a ^= sign_bit(d);
        if (opc & 4) /* fmsub, fnmadd: negate the addend */
            c ^= sign_bit(d);
        r = do_fma(d, a, b, c, rm, &fl, host);
        goto write_f;
    }

    switch (f5) {
    case 0x00: /* fadd */
    case 0x01: /* fsub */
    case 0x02: /* fmul */
    case 0x03: /* fdiv */
        if (rm > FRM_RMM)
            return -1;
        a = rdf(fp, rs1, d);
        b = rdf(fp, rs2, d);
        switch (f5) {
        case 0x00: r = do_arith(d, OP_ADD, a, b, rm, &fl, host); break;
        case 0x01: r = do_arith(d, OP_SUB, a, b, rm, &fl, host); break;
        case 0x02: r = do_arith(d, OP_MUL, a, b, rm, &fl, host); break;
        default: r = do_arith(d, OP_DIV, a, b, rm, &fl, host); break;
        }
        goto write_f;
    case 0x0b: /* fsqrt */
        if (rs2 != 0 || rm > FRM_RMM)
            return -1;
        r = do_sqrt(d, rdf(fp, rs1, d), rm, &fl, host);
        goto write_f;
    case 0x04: /* fsgnj, fsgnjn, fsgnjx */
        a = rdf(fp, rs1, d);
        b = rdf(fp, rs2, d);
        switch (f3) {
        case 0: b &= sign_bit(d); break;
        case 1: b = ~b & sign_bit(d); break;
        case 2: b = (a ^ b) & sign_bit(d); break;
        default: return -1;
        }
        r = (a & ~sign_bit(d)) | b;
        goto write_f;
    case 0x05: /* fmin, fmax */
        if (f3 > 1)
            return -1;
        r = do_minmax(d, rdf(fp, rs1, d), rdf(fp, rs2, d), f3 == 1, &fl);
        goto write_f;
    case 0x08: /* fcvt.s.d (fmt S, rs2 1), fcvt.d.s (fmt D, rs2 0) */
        if (rs2 != (d ? 0u : 1u) || rm > FRM_RMM)
            return -1;
        if (d)
            r = fpu_soft_cvt_ff(1, rdf(fp, rs1, 0), rm, &fl);
        else
            r = do_cvt_sd(fp->f[rs1], rm, &fl, host);
        goto write_f;
    case 0x14: /* fle, flt, feq */
        if (f3 > 2)
            return -1;
        r = do_cmp(d, rdf(fp, rs1, d), rdf(fp, rs2, d), f3, &fl);
        goto write_x;
    case 0x18: /* fcvt.{w,wu,l,lu}.fmt */
        if (rs2 > 3 || rm > FRM_RMM)
            return -1;
        r = fpu_soft_cvt_fi(d, rdf(fp, rs1, d), (enum fpu_ikind)rs2, rm, &fl);
        goto write_x;
    case 0x1a: /* fcvt.fmt.{w,wu,l,lu} */
        if (rs2 > 3 || rm > FRM_RMM)
            return -1;
        r = fpu_soft_cvt_if(d, x[rs1], (enum fpu_ikind)rs2, rm, &fl);
        goto write_f;
    case 0x1c: /* fmv.x.fmt, fclass */
        if (rs2 != 0)
            return -1;
        if (f3 == 0) {
            r = fp->f[rs1];
            if (!d)
                r = (uint64_t)(int64_t)(int32_t)(uint32_t)r;
        } else if (f3 == 1) {
            r = do_class(d, rdf(fp, rs1, d));
        } else {
            return -1;
        }
        goto write_x;
    case 0x1e: /* fmv.fmt.x */
        if (rs2 != 0 || f3 != 0)
            return -1;
        r = x[rs1];
        goto write_f;
    default:
        return -1;
    }

write_f:
    wrf(fp, rd, d, r);
    fp->fflags |= fl;
    return 0;
write_x:
    wrx(x, rd, r);
    fp->fflags |= fl;
    return 0;
}

int fpu_execute(struct fp_regs *fp, uint64_t *xregs, uint32_t insn)
{
    return execute(fp, xregs, insn, true);
}

int fpu_execute_soft(struct fp_regs *fp, uint64_t *xregs, uint32_t insn)
{
    return execute(fp, xregs, insn, false);
}

/* fpu_execute for one kind of instruction: with the opcode, funct5 and fmt
 * fields constant the compiler folds their decoding away. For OP-FP the
 * kind is funct7 (funct5 and fmt) and the opcode; fused ops keep rs3 where
 * OP-FP has funct5. */
#define OPFP_MASK 0xfe00007fu
#define FUSED_MASK 0x0600007fu
#define KIND(f5, fmt) ((uint32_t)(f5) << 27 | (uint32_t)(fmt) << 25 | 0x53u)
#define FUSED(opc, fmt) ((uint32_t)(fmt) << 25 | (uint32_t)(opc))
#define KINDS(X)                                                                     \
    X(add_s, OPFP_MASK, KIND(0x00, 0)) X(add_d, OPFP_MASK, KIND(0x00, 1))             \
    X(sub_s, OPFP_MASK, KIND(0x01, 0)) X(sub_d, OPFP_MASK, KIND(0x01, 1))             \
    X(mul_s, OPFP_MASK, KIND(0x02, 0)) X(mul_d, OPFP_MASK, KIND(0x02, 1))             \
    X(div_s, OPFP_MASK, KIND(0x03, 0)) X(div_d, OPFP_MASK, KIND(0x03, 1))             \
    X(sqrt_s, OPFP_MASK, KIND(0x0b, 0)) X(sqrt_d, OPFP_MASK, KIND(0x0b, 1))           \
    X(minmax_s, OPFP_MASK, KIND(0x05, 0)) X(minmax_d, OPFP_MASK, KIND(0x05, 1))       \
    X(cvt_ff_s, OPFP_MASK, KIND(0x08, 0)) X(cvt_ff_d, OPFP_MASK, KIND(0x08, 1))       \
    X(cmp_s, OPFP_MASK, KIND(0x14, 0)) X(cmp_d, OPFP_MASK, KIND(0x14, 1))             \
    X(cvt_fi_s, OPFP_MASK, KIND(0x18, 0)) X(cvt_fi_d, OPFP_MASK, KIND(0x18, 1))       \
    X(cvt_if_s, OPFP_MASK, KIND(0x1a, 0)) X(cvt_if_d, OPFP_MASK, KIND(0x1a, 1))       \
    X(madd_s, FUSED_MASK, FUSED(0x43, 0)) X(madd_d, FUSED_MASK, FUSED(0x43, 1))       \
    X(msub_s, FUSED_MASK, FUSED(0x47, 0)) X(msub_d, FUSED_MASK, FUSED(0x47, 1))       \
    X(nmsub_s, FUSED_MASK, FUSED(0x4b, 0)) X(nmsub_d, FUSED_MASK, FUSED(0x4b, 1))     \
    X(nmadd_s, FUSED_MASK, FUSED(0x4f, 0)) X(nmadd_d, FUSED_MASK, FUSED(0x4f, 1))

#define DEFINE_KIND(name, mask, bits)                                                 \
    static int exec_##name(struct fp_regs *fp, uint64_t *x, uint32_t insn)           \
    {                                                                                 \
        return execute(fp, x, (insn & ~(mask)) | (bits), true);                      \
    }
KINDS(DEFINE_KIND)

fpu_exec_fn fpu_execute_for(uint32_t insn)
{
#define MATCH_KIND(name, mask, bits)                                                  \
    if ((insn & (mask)) == (bits))                                                    \
        return exec_##name;
    KINDS(MATCH_KIND)
    return fpu_execute;
}
