/* Unit test of the FPU (src/cpu/fpu.c), through fpu_execute() with real
 * instruction words:
 *  1. golden vectors produced by QEMU (fpu_vectors.h, from
 *     tests/isa/gen/gen_fp.py): every record in every rounding mode, static
 *     rm and dynamic frm, on the host-accelerated path and the software path;
 *  2. directed edge cases with hand-computed results (ties, overflow,
 *     tininess after rounding, NaN boxing, fmin/fmax, saturating fcvt, ...);
 *  3. illegal encodings: -1 and no state change; x0 never written;
 *  4. a random differential test of the host path against the software path.
 * 1-3 also through fpu_execute_for (what the binary translator calls).
 * Prints one line per failure (the first 1000), then "fpu: N passed, N failed";
 * exits non-zero on any failure. Vectors: regenerate with tests/isa/gen/gen_fp.py. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cpu/fpu.h"
#include "cpu/fpu_soft.h"
#include "fpu_vectors.h"

#define RD 10
#define RS1 11
#define RS2 12
#define RS3 13
#define SENTINEL 0x5a5aa5a5c3c33c3cull

typedef int (*exec_fn)(struct fp_regs *, uint64_t *, uint32_t);

/* The translator's way in: fpu_execute specialised for the insn's kind. */
static int execute_for(struct fp_regs *fp, uint64_t *x, uint32_t insn)
{
    return fpu_execute_for(insn)(fp, x, insn);
}

static const struct {
    const char *name;
    exec_fn fn;
} paths[] = {{"host", fpu_execute}, {"soft", fpu_execute_soft}, {"kind", execute_for}};

static unsigned long passed, failed;

/* One line per failure; after 1000 of them only the count goes on. */
#define FAIL(...)                                                  \
    do {                                                           \
        failed++;                                                  \
        if (failed <= 1000)                                        \
            printf(__VA_ARGS__);                                   \
        else if (failed == 1001)                                   \
            printf("(more failures: not printed, counted below)\n"); \
    } while (0)

/* ------------------------------------------------------------ encodings */
#define enc_r(f5, fmt, rs2, rm)                                                          \
    ((uint32_t)(f5) << 27 | (uint32_t)(fmt) << 25 | (uint32_t)(rs2) << 20 | RS1 << 15 |   \
     (uint32_t)(rm) << 12 | RD << 7 | 0x53u)
#define enc_r4(opc, fmt, rm)                                                              \
    (RS3 << 27 | (uint32_t)(fmt) << 25 | RS2 << 20 | RS1 << 15 | (uint32_t)(rm) << 12 |   \
     RD << 7 | (uint32_t)(opc))

static uint32_t with_rm(uint32_t insn, unsigned rm) { return (insn & ~0x7000u) | rm << 12; }

#define S 0
#define D 1
#define FADD(f) enc_r(0x00, f, RS2, 0)
#define FSUB(f) enc_r(0x01, f, RS2, 0)
#define FMUL(f) enc_r(0x02, f, RS2, 0)
#define FDIV(f) enc_r(0x03, f, RS2, 0)
#define FSQRT(f) enc_r(0x0b, f, 0, 0)
#define FSGNJ(f, k) enc_r(0x04, f, RS2, k)
#define FMIN(f) enc_r(0x05, f, RS2, 0)
#define FMAX(f) enc_r(0x05, f, RS2, 1)
#define FEQ(f) enc_r(0x14, f, RS2, 2)
#define FLT(f) enc_r(0x14, f, RS2, 1)
#define FLE(f) enc_r(0x14, f, RS2, 0)
#define FCLASS(f) enc_r(0x1c, f, 0, 1)
#define FMVX(f) enc_r(0x1c, f, 0, 0)
#define FMVF(f) enc_r(0x1e, f, 0, 0)
#define FCVT_I(f, k) enc_r(0x18, f, k, 0) /* k: 0 w, 1 wu, 2 l, 3 lu */
#define FCVT_F(f, k) enc_r(0x1a, f, k, 0)
#define FCVT_SD enc_r(0x08, S, 1, 0)
#define FCVT_DS enc_r(0x08, D, 0, 0)
#define FMADD(f) enc_r4(0x43, f, 0)
#define FMSUB(f) enc_r4(0x47, f, 0)
#define FNMSUB(f) enc_r4(0x4b, f, 0)
#define FNMADD(f) enc_r4(0x4f, f, 0)

/* ------------------------------------------------------------ one check */
struct result {
    int ret;
    uint64_t val;
    uint32_t flags;
};

static struct result run(exec_fn fn, uint32_t insn, unsigned frm, uint64_t a, uint64_t b,
                         uint64_t c, bool xres)
{
    struct fp_regs fp;
    uint64_t x[32];
    struct result r;
    for (int i = 0; i < 32; i++) {
        fp.f[i] = SENTINEL ^ (uint64_t)i;
        x[i] = i ? SENTINEL ^ ((uint64_t)i << 8) : 0;
    }
    fp.f[RS1] = x[RS1] = a;
    fp.f[RS2] = x[RS2] = b;
    fp.f[RS3] = x[RS3] = c;
    fp.fflags = 0;
    fp.frm = frm;
    r.ret = fn(&fp, x, insn);
    r.val = xres ? x[RD] : fp.f[RD];
    r.flags = fp.fflags;
    if (x[0] != 0)
        r.ret = 99;
    return r;
}

/* Checks `insn` (rm field ignored if rnd) in every mode, static and dynamic,
 * on both paths. res/fl: expected per mode (index 0 only if !rnd). */
static void check(const char *what, uint32_t insn, bool rnd, bool xres, uint64_t a, uint64_t b,
                  uint64_t c, const uint64_t *res, const uint32_t *fl)
{
    for (unsigned p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        for (unsigned m = 0; m < (rnd ? 5u : 1u); m++) {
            for (unsigned dyn = 0; dyn < (rnd ? 2u : 1u); dyn++) {
                uint32_t i = rnd ? with_rm(insn, dyn ? 7 : m) : insn;
                unsigned frm = dyn ? m : (m + 1) % 5;
                struct result r = run(paths[p].fn, i, frm, a, b, c, xres);
                if (r.ret != 0 || r.val != res[m] || r.flags != fl[m]) {
                    FAIL("FAIL %s [%s] insn %08x rm %u%s a %016" PRIx64 " b %016" PRIx64
                         " c %016" PRIx64 ": got ret %d %016" PRIx64 " flags %02x, want %016" PRIx64
                         " flags %02x\n",
                         what, paths[p].name, i, m, dyn ? " (dyn)" : "", a, b, c, r.ret, r.val,
                         r.flags, res[m], fl[m]);
                } else {
                    passed++;
                }
            }
        }
    }
}

/* ------------------------------------------------------------ golden vectors */
static void test_vectors(void)
{
    size_t i = 0;
    unsigned long n = 0;
    while (i < sizeof fpu_vectors / sizeof fpu_vectors[0]) {
        uint32_t insn = (uint32_t)fpu_vectors[i];
        uint32_t info = (uint32_t)(fpu_vectors[i] >> 32);
        bool rnd = info & 1, xres = info & 2, uni = info & 4;
        uint64_t res[5];
        uint32_t fl[5];
        char what[48];
        for (unsigned m = 0; m < 5; m++) {
            res[m] = fpu_vectors[i + 4 + (uni ? 0 : m)];
            fl[m] = (info >> (3 + 5 * m)) & 31;
        }
        snprintf(what, sizeof what, "vector %lu", n);
        check(what, insn, rnd, xres, fpu_vectors[i + 1], fpu_vectors[i + 2], fpu_vectors[i + 3],
              res, fl);
        i += 4 + (uni || !rnd ? 1 : 5);
        n++;
    }
    if (n != FPU_VEC_RECORDS)
        FAIL("FAIL vector table walk: %lu records, expected %d\n", n, FPU_VEC_RECORDS);
}

/* ------------------------------------------------------------ directed cases */
#define NX FFLAG_NX
#define UF FFLAG_UF
#define OF FFLAG_OF
#define DZ FFLAG_DZ
#define NV FFLAG_NV
#define B(v) (0xffffffff00000000ull | (v)) /* NaN-boxed single */

struct dcase {
    const char *name;
    uint32_t insn;
    bool rnd, xres;
    uint64_t a, b, c;
    uint64_t res[5]; /* RNE RTZ RDN RUP RMM */
    uint32_t fl[5];
};

#define ALL(v) {v, v, v, v, v}
#define V(...) {__VA_ARGS__}
/* rounding op, f result */
#define RF(n, i, a, b, c, r, f) {n, i, true, false, a, b, c, r, f}
/* rounding op, x result */
#define RX(n, i, a, b, c, r, f) {n, i, true, true, a, b, c, r, f}
/* non-rounding op */
#define NF(n, i, a, b, r, f) {n, i, false, false, a, b, 0, ALL(r), ALL(f)}
#define NXR(n, i, a, b, r, f) {n, i, false, true, a, b, 0, ALL(r), ALL(f)}

#define D_ONE 0x3ff0000000000000ull
#define D_MAX 0x7fefffffffffffffull
#define D_MINN 0x0010000000000000ull
#define D_MAXS 0x000fffffffffffffull
#define D_INF 0x7ff0000000000000ull
#define D_QNAN 0x7ff8000000000000ull
#define D_SNAN 0x7ff0000000000001ull
#define D_NEG 0x8000000000000000ull
#define S_QNAN 0x7fc00000ull
#define S_SNAN 0x7f800001ull

static const struct dcase dcases[] = {
    /* ties in every mode: 1 + 2^-53 (even), (1 + 2^-52) + 2^-53 (odd), negatives */
    RF("tie even", FADD(D), D_ONE, 0x3ca0000000000000, 0,
       V(D_ONE, D_ONE, D_ONE, D_ONE + 1, D_ONE + 1), ALL(NX)),
    RF("tie odd", FADD(D), D_ONE + 1, 0x3ca0000000000000, 0,
       V(D_ONE + 2, D_ONE + 1, D_ONE + 1, D_ONE + 2, D_ONE + 2), ALL(NX)),
    RF("tie neg", FADD(D), D_NEG | D_ONE, 0xbca0000000000000, 0,
       V(D_NEG | D_ONE, D_NEG | D_ONE, (D_NEG | D_ONE) + 1, D_NEG | D_ONE,
                     (D_NEG | D_ONE) + 1),
       ALL(NX)),
    RF("tie single", FADD(S), B(0x3f800000), B(0x33800000), 0,
       V(B(0x3f800000), B(0x3f800000), B(0x3f800000), B(0x3f800001), B(0x3f800001)),
       ALL(NX)),
    RF("sub tie", FSUB(D), D_ONE + 1, 0x3ca0000000000000, 0,
       V(D_ONE, D_ONE, D_ONE, D_ONE + 1, D_ONE + 1), ALL(NX)),
    /* exact cancellation: +0, -0 in RDN */
    RF("x-x", FSUB(D), 0x4008000000000000, 0x4008000000000000, 0,
       V(0, 0, D_NEG, 0, 0), ALL(0)),
    RF("-0+-0", FADD(D), D_NEG, D_NEG, 0, ALL(D_NEG), ALL(0)),
    RF("+0+-0", FADD(S), B(0), B(0x80000000), 0,
       V(B(0), B(0), B(0x80000000), B(0), B(0)), ALL(0)),
    /* overflow: inf or max finite by mode */
    RF("ovf +", FADD(D), D_MAX, D_MAX, 0, V(D_INF, D_MAX, D_MAX, D_INF, D_INF),
       ALL(OF | NX)),
    RF("ovf -", FMUL(D), D_NEG | D_MAX, 0x4000000000000000, 0,
       V(D_NEG | D_INF, D_NEG | D_MAX, D_NEG | D_INF, D_NEG | D_MAX, D_NEG | D_INF),
       ALL(OF | NX)),
    RF("ovf s", FMUL(S), B(0x7f7fffff), B(0x3f800001), 0,
       V(B(0x7f800000), B(0x7f7fffff), B(0x7f7fffff), B(0x7f800000), B(0x7f800000)),
       ALL(OF | NX)),
    /* max + half an ulp: tie at the overflow threshold */
    RF("ovf tie", FADD(D), D_MAX, 0x7c90000000000000, 0,
       V(D_INF, D_MAX, D_MAX, D_INF, D_INF),
       V(OF | NX, NX, NX, OF | NX, OF | NX)),
    /* underflow: exact subnormal result raises nothing */
    RF("exact subnormal", FMUL(D), D_MINN, 0x3fe0000000000000, 0, ALL(0x0008000000000000), ALL(0)),
    /* min subnormal / 2: tie between 0 and min subnormal */
    RF("half min sub", FMUL(D), 1, 0x3fe0000000000000, 0, V(0, 0, 0, 1, 1),
       ALL(UF | NX)),
    RF("half min sub neg", FMUL(S), B(0x80000001), B(0x3f000000), 0,
       V(B(0x80000000), B(0x80000000), B(0x80000001), B(0x80000000), B(0x80000001)),
       ALL(UF | NX)),
    /* minnorm * (1 - 2^-53): rounds to minnorm in RNE yet is tiny after
     * rounding (exact at 53 bits, below 2^-1022): UF set */
    RF("tiny->minnorm", FMUL(D), D_MINN, 0x3fefffffffffffff, 0,
       V(D_MINN, D_MAXS, D_MAXS, D_MINN, D_MINN), ALL(UF | NX)),
    /* minnorm - 2^-1080 (fma): rounds to minnorm and is not tiny after
     * rounding in RNE/RUP/RMM: no UF; tiny in RTZ/RDN */
    RF("not tiny after rounding", FMADD(D), 0x1e30000000000000, 0x9e30000000000000, D_MINN,
       V(D_MINN, D_MAXS, D_MAXS, D_MINN, D_MINN),
       V(NX, UF | NX, UF | NX, NX, NX)),
    RF("not tiny s", FMADD(S), B(0x19000000), B(0x98800000), B(0x00800000),
       V(B(0x00800000), B(0x007fffff), B(0x007fffff), B(0x00800000), B(0x00800000)),
       V(NX, UF | NX, UF | NX, NX, NX)),
    /* division */
    RF("1/3", FDIV(D), D_ONE, 0x4008000000000000, 0,
       V(0x3fd5555555555555, 0x3fd5555555555555, 0x3fd5555555555555,
                     0x3fd5555555555556, 0x3fd5555555555555),
       ALL(NX)),
    RF("0/0", FDIV(D), 0, D_NEG, 0, ALL(D_QNAN), ALL(NV)),
    RF("x/0", FDIV(D), D_NEG | D_ONE, 0, 0, ALL(D_NEG | D_INF), ALL(DZ)),
    RF("x/-0 s", FDIV(S), B(0x3f800000), B(0x80000000), 0, ALL(B(0xff800000)), ALL(DZ)),
    RF("inf/0", FDIV(D), D_INF, 0, 0, ALL(D_INF), ALL(0)),
    RF("inf/inf", FDIV(S), B(0x7f800000), B(0xff800000), 0, ALL(B(S_QNAN)), ALL(NV)),
    RF("0/inf", FDIV(D), D_NEG, D_INF, 0, ALL(D_NEG), ALL(0)),
    /* invalid operations */
    RF("inf-inf", FADD(D), D_INF, D_NEG | D_INF, 0, ALL(D_QNAN), ALL(NV)),
    RF("inf-inf sub", FSUB(S), B(0x7f800000), B(0x7f800000), 0, ALL(B(S_QNAN)), ALL(NV)),
    RF("0*inf", FMUL(D), D_NEG, D_INF, 0, ALL(D_QNAN), ALL(NV)),
    RF("sqrt -1", FSQRT(D), D_NEG | D_ONE, 0, 0, ALL(D_QNAN), ALL(NV)),
    RF("sqrt -inf", FSQRT(S), B(0xff800000), 0, 0, ALL(B(S_QNAN)), ALL(NV)),
    RF("sqrt -0", FSQRT(D), D_NEG, 0, 0, ALL(D_NEG), ALL(0)),
    RF("sqrt inf", FSQRT(D), D_INF, 0, 0, ALL(D_INF), ALL(0)),
    RF("sqrt 2", FSQRT(D), 0x4000000000000000, 0, 0,
       V(0x3ff6a09e667f3bcd, 0x3ff6a09e667f3bcc, 0x3ff6a09e667f3bcc,
                     0x3ff6a09e667f3bcd, 0x3ff6a09e667f3bcd),
       ALL(NX)),
    RF("sqrt 4 s", FSQRT(S), B(0x40800000), 0, 0, ALL(B(0x40000000)), ALL(0)),
    RF("sqrt min sub", FSQRT(D), 1, 0, 0, ALL(0x1e60000000000000), ALL(0)),
    /* NaN inputs: canonical NaN out, NV only for signaling */
    RF("qnan+1", FADD(D), 0xfff8000000000123, D_ONE, 0, ALL(D_QNAN), ALL(0)),
    RF("snan+1", FADD(D), D_ONE, 0xfff0000000000123, 0, ALL(D_QNAN), ALL(NV)),
    RF("snan s", FMUL(S), B(S_SNAN), B(0x3f800000), 0, ALL(B(S_QNAN)), ALL(NV)),
    RF("sqrt snan", FSQRT(D), D_SNAN, 0, 0, ALL(D_QNAN), ALL(NV)),
    /* NaN boxing: an operand that is not boxed reads as the canonical NaN */
    RF("unboxed", FADD(S), 0x000000003f800000, B(0x3f800000), 0, ALL(B(S_QNAN)), ALL(0)),
    RF("half boxed", FMUL(S), B(0x3f800000), 0x7fffffff3f800000, 0, ALL(B(S_QNAN)), ALL(0)),
    RF("boxed result", FADD(S), B(0x3f800000), B(0x3f800000), 0, ALL(B(0x40000000)), ALL(0)),
    /* fused multiply-add: single rounding */
    RF("fma exact", FMADD(D), D_ONE + 1, 0x3fefffffffffffff, D_NEG | D_ONE,
       ALL(0x3c9ffffffffffffe), ALL(0)),
    RF("fma rounding error", FMADD(D), 0x3ff0000000000001, 0x3ff0000000000001, 0xbff0000000000002,
       ALL(0x3970000000000000), ALL(0)),
    RF("fma product overflow", FMADD(D), D_MAX, D_ONE + 1, D_NEG | D_MAX, ALL(0x7cafffffffffffff),
       ALL(0)),
    RF("fmsub", FMSUB(D), 0x4000000000000000, 0x4008000000000000, D_ONE, ALL(0x4014000000000000),
       ALL(0)),
    RF("fnmsub", FNMSUB(D), 0x4000000000000000, 0x4008000000000000, D_ONE, ALL(0xc014000000000000),
       ALL(0)),
    RF("fnmadd", FNMADD(D), 0x4000000000000000, 0x4008000000000000, D_ONE, ALL(0xc01c000000000000),
       ALL(0)),
    RF("fnmadd zero", FNMADD(D), 0, D_ONE, D_NEG, V(0, 0, D_NEG, 0, 0), ALL(0)),
    RF("fnmsub zero", FNMSUB(S), B(0), B(0x3f800000), B(0),
       V(B(0), B(0), B(0x80000000), B(0), B(0)), ALL(0)),
    RF("fmadd -0", FMADD(D), D_NEG, D_ONE, D_NEG, ALL(D_NEG), ALL(0)),
    RF("fma cancel", FMADD(S), B(0x40000000), B(0x40400000), B(0xc0c00000),
       V(B(0), B(0), B(0x80000000), B(0), B(0)), ALL(0)),
    RF("fma inf*0+qnan", FMADD(D), D_INF, 0, D_QNAN, ALL(D_QNAN), ALL(NV)),
    RF("fma 0*inf+qnan s", FMADD(S), B(0), B(0xff800000), B(S_QNAN), ALL(B(S_QNAN)), ALL(NV)),
    RF("fma inf-inf", FMSUB(D), D_INF, D_ONE, D_INF, ALL(D_QNAN), ALL(NV)),
    RF("fma qnan", FMADD(D), D_QNAN, D_ONE, D_ONE, ALL(D_QNAN), ALL(0)),
    RF("fma snan c", FMADD(D), D_ONE, D_ONE, D_SNAN, ALL(D_QNAN), ALL(NV)),
    /* fcvt.w.d */
    RX("w 2.5", FCVT_I(D, 0), 0x4004000000000000, 0, 0, V(2, 2, 2, 3, 3), ALL(NX)),
    RX("w -2.5", FCVT_I(D, 0), 0xc004000000000000, 0, 0,
       V((uint64_t)-2, (uint64_t)-2, (uint64_t)-3, (uint64_t)-2, (uint64_t)-3),
       ALL(NX)),
    RX("w 3.5", FCVT_I(D, 0), 0x400c000000000000, 0, 0, V(4, 3, 3, 4, 4), ALL(NX)),
    RX("w 0.3", FCVT_I(S, 0), B(0x3e99999a), 0, 0, V(0, 0, 0, 1, 0), ALL(NX)),
    RX("w nan", FCVT_I(D, 0), 0xfff8000000000000, 0, 0, ALL(0x7fffffff), ALL(NV)),
    RX("w -inf", FCVT_I(D, 0), D_NEG | D_INF, 0, 0, ALL(0xffffffff80000000), ALL(NV)),
    RX("w +inf", FCVT_I(S, 0), B(0x7f800000), 0, 0, ALL(0x7fffffff), ALL(NV)),
    RX("w 2^31", FCVT_I(D, 0), 0x41e0000000000000, 0, 0, ALL(0x7fffffff), ALL(NV)),
    RX("w -2^31", FCVT_I(D, 0), 0xc1e0000000000000, 0, 0, ALL(0xffffffff80000000), ALL(0)),
    RX("w -2^31-0.5", FCVT_I(D, 0), 0xc1e0000000100000, 0, 0,
       V(0xffffffff80000000, 0xffffffff80000000, 0xffffffff80000000,
                     0xffffffff80000000, 0xffffffff80000000),
       V(NX, NX, NV, NX, NV)),
    RX("w 2^31-0.5", FCVT_I(D, 0), 0x41dfffffffe00000, 0, 0,
       ALL(0x7fffffff),
       V(NV, NX, NX, NV, NV)),
    RX("w unboxed", FCVT_I(S, 0), 0x3f800000, 0, 0, ALL(0x7fffffff), ALL(NV)),
    /* fcvt.wu */
    RX("wu -1", FCVT_I(D, 1), D_NEG | D_ONE, 0, 0, ALL(0), ALL(NV)),
    RX("wu -0.25", FCVT_I(D, 1), 0xbfd0000000000000, 0, 0, ALL(0),
       V(NX, NX, NV, NX, NX)),
    RX("wu 3e9", FCVT_I(D, 1), 0x41e65a0bc0000000, 0, 0, ALL(0xffffffffb2d05e00), ALL(0)),
    RX("wu 2^32-0.5", FCVT_I(D, 1), 0x41effffffff00000, 0, 0, ALL(~0ull),
       V(NV, NX, NX, NV, NV)),
    RX("wu nan", FCVT_I(S, 1), B(0xffc00000), 0, 0, ALL(~0ull), ALL(NV)),
    RX("wu -inf", FCVT_I(S, 1), B(0xff800000), 0, 0, ALL(0), ALL(NV)),
    /* fcvt.l / lu */
    RX("l 2^63", FCVT_I(D, 2), 0x43e0000000000000, 0, 0, ALL(0x7fffffffffffffff), ALL(NV)),
    RX("l -2^63", FCVT_I(D, 2), 0xc3e0000000000000, 0, 0, ALL(0x8000000000000000), ALL(0)),
    RX("l nan", FCVT_I(S, 2), B(S_SNAN), 0, 0, ALL(0x7fffffffffffffff), ALL(NV)),
    RX("l -inf", FCVT_I(D, 2), D_NEG | D_INF, 0, 0, ALL(0x8000000000000000), ALL(NV)),
    RX("l -1.5", FCVT_I(S, 2), B(0xbfc00000), 0, 0,
       V((uint64_t)-2, (uint64_t)-1, (uint64_t)-2, (uint64_t)-1, (uint64_t)-2),
       ALL(NX)),
    RX("lu 2^64", FCVT_I(D, 3), 0x43f0000000000000, 0, 0, ALL(~0ull), ALL(NV)),
    RX("lu 2^64-2048", FCVT_I(D, 3), 0x43efffffffffffff, 0, 0, ALL(0xfffffffffffff800), ALL(0)),
    RX("lu -1", FCVT_I(D, 3), D_NEG | D_ONE, 0, 0, ALL(0), ALL(NV)),
    RX("lu nan", FCVT_I(D, 3), D_QNAN, 0, 0, ALL(~0ull), ALL(NV)),
    RX("lu +inf", FCVT_I(S, 3), B(0x7f800000), 0, 0, ALL(~0ull), ALL(NV)),
    RX("lu tiny", FCVT_I(D, 3), 1, 0, 0, V(0, 0, 0, 1, 0), ALL(NX)),
    /* integer -> float */
    RF("s.w 2^24+1", FCVT_F(S, 0), 0x1000001, 0, 0,
       V(B(0x4b800000), B(0x4b800000), B(0x4b800000), B(0x4b800001), B(0x4b800001)),
       ALL(NX)),
    RF("s.w -(2^24+3)", FCVT_F(S, 0), (uint64_t)-0x1000003, 0, 0,
       V(B(0xcb800002), B(0xcb800001), B(0xcb800002), B(0xcb800001), B(0xcb800002)),
       ALL(NX)),
    RF("s.w low 32 only", FCVT_F(S, 0), 0x12345678ffffffff, 0, 0, ALL(B(0xbf800000)), ALL(0)),
    RF("s.wu", FCVT_F(S, 1), 0xffffffffffffffff, 0, 0,
       V(B(0x4f800000), B(0x4f7fffff), B(0x4f7fffff), B(0x4f800000), B(0x4f800000)),
       ALL(NX)),
    RF("d.w", FCVT_F(D, 0), 0x80000000, 0, 0, ALL(0xc1e0000000000000), ALL(0)),
    RF("d.wu", FCVT_F(D, 1), 0x80000000, 0, 0, ALL(0x41e0000000000000), ALL(0)),
    RF("d.l min", FCVT_F(D, 2), 0x8000000000000000, 0, 0, ALL(0xc3e0000000000000), ALL(0)),
    RF("d.lu max", FCVT_F(D, 3), ~0ull, 0, 0,
       V(0x43f0000000000000, 0x43efffffffffffff, 0x43efffffffffffff,
                     0x43f0000000000000, 0x43f0000000000000),
       ALL(NX)),
    RF("d.l 0", FCVT_F(D, 2), 0, 0, 0, ALL(0), ALL(0)),
    RF("s.l 2^53+1", FCVT_F(S, 2), 0x20000000000001, 0, 0,
       V(B(0x5a000000), B(0x5a000000), B(0x5a000000), B(0x5a000001), B(0x5a000000)),
       ALL(NX)),
    /* float <-> float */
    RF("s.d ovf", FCVT_SD, 0x47f0000000000000, 0, 0,
       V(B(0x7f800000), B(0x7f7fffff), B(0x7f7fffff), B(0x7f800000), B(0x7f800000)),
       ALL(OF | NX)),
    RF("s.d tiny", FCVT_SD, 0x3690000000000000, 0, 0,
       V(B(0), B(0), B(0), B(1), B(1)), ALL(UF | NX)),
    RF("s.d nan", FCVT_SD, 0xfff0000000000001, 0, 0, ALL(B(S_QNAN)), ALL(NV)),
    RF("s.d 1/3", FCVT_SD, 0x3fd5555555555555, 0, 0,
       V(B(0x3eaaaaab), B(0x3eaaaaaa), B(0x3eaaaaaa), B(0x3eaaaaab), B(0x3eaaaaab)),
       ALL(NX)),
    RF("d.s sub", FCVT_DS, B(1), 0, 0, ALL(0x36a0000000000000), ALL(0)),
    RF("d.s snan", FCVT_DS, B(0xff800001), 0, 0, ALL(D_QNAN), ALL(NV)),
    RF("d.s unboxed", FCVT_DS, 0x3f800000, 0, 0, ALL(D_QNAN), ALL(0)),
    /* fmin / fmax: minimumNumber / maximumNumber, -0 < +0 */
    NF("fmin -0 +0", FMIN(D), D_NEG, 0, D_NEG, 0),
    NF("fmin +0 -0", FMIN(D), 0, D_NEG, D_NEG, 0),
    NF("fmax -0 +0", FMAX(D), D_NEG, 0, 0, 0),
    NF("fmax s +0 -0", FMAX(S), B(0), B(0x80000000), B(0), 0),
    NF("fmin qnan", FMIN(D), D_QNAN, D_ONE, D_ONE, 0),
    NF("fmax snan", FMAX(D), D_ONE, D_SNAN, D_ONE, NV),
    NF("fmin 2 nan", FMIN(S), B(S_QNAN), B(0xffc00001), B(S_QNAN), 0),
    NF("fmax snan qnan", FMAX(S), B(S_SNAN), B(S_QNAN), B(S_QNAN), NV),
    NF("fmin unboxed", FMIN(S), 0x3f800000, B(0x40000000), B(0x40000000), 0),
    NF("fmin", FMIN(D), 0xc000000000000000, D_ONE, 0xc000000000000000, 0),
    NF("fmax", FMAX(D), 0xc000000000000000, D_NEG | D_INF, 0xc000000000000000, 0),
    /* compares */
    NXR("feq qnan", FEQ(D), D_QNAN, D_QNAN, 0, 0),
    NXR("feq snan", FEQ(D), D_SNAN, D_ONE, 0, NV),
    NXR("flt qnan", FLT(D), D_ONE, D_QNAN, 0, NV),
    NXR("fle qnan", FLE(S), B(S_QNAN), B(0), 0, NV),
    NXR("feq -0 +0", FEQ(D), D_NEG, 0, 1, 0),
    NXR("flt -0 +0", FLT(D), D_NEG, 0, 0, 0),
    NXR("fle -0 +0", FLE(S), B(0x80000000), B(0), 1, 0),
    NXR("flt -2 -1", FLT(D), 0xc000000000000000, D_NEG | D_ONE, 1, 0),
    NXR("flt -1 -2", FLT(D), D_NEG | D_ONE, 0xc000000000000000, 0, 0),
    NXR("fle inf inf", FLE(D), D_INF, D_INF, 1, 0),
    NXR("feq unboxed", FEQ(S), 0x3f800000, 0x3f800000, 0, 0),
    /* fclass: every class */
    NXR("class -inf", FCLASS(D), D_NEG | D_INF, 0, 1 << 0, 0),
    NXR("class -norm", FCLASS(D), D_NEG | D_ONE, 0, 1 << 1, 0),
    NXR("class -sub", FCLASS(D), D_NEG | 1, 0, 1 << 2, 0),
    NXR("class -0", FCLASS(D), D_NEG, 0, 1 << 3, 0),
    NXR("class +0", FCLASS(D), 0, 0, 1 << 4, 0),
    NXR("class +sub", FCLASS(D), D_MAXS, 0, 1 << 5, 0),
    NXR("class +norm", FCLASS(D), D_MAX, 0, 1 << 6, 0),
    NXR("class +inf", FCLASS(D), D_INF, 0, 1 << 7, 0),
    NXR("class snan", FCLASS(D), D_SNAN, 0, 1 << 8, 0),
    NXR("class qnan", FCLASS(D), D_QNAN, 0, 1 << 9, 0),
    NXR("class s -inf", FCLASS(S), B(0xff800000), 0, 1 << 0, 0),
    NXR("class s -norm", FCLASS(S), B(0xbf800000), 0, 1 << 1, 0),
    NXR("class s -sub", FCLASS(S), B(0x807fffff), 0, 1 << 2, 0),
    NXR("class s -0", FCLASS(S), B(0x80000000), 0, 1 << 3, 0),
    NXR("class s +0", FCLASS(S), B(0), 0, 1 << 4, 0),
    NXR("class s +sub", FCLASS(S), B(1), 0, 1 << 5, 0),
    NXR("class s +norm", FCLASS(S), B(0x00800000), 0, 1 << 6, 0),
    NXR("class s +inf", FCLASS(S), B(0x7f800000), 0, 1 << 7, 0),
    NXR("class s snan", FCLASS(S), B(0xffbfffff), 0, 1 << 8, 0),
    NXR("class s qnan", FCLASS(S), B(0xffc00000), 0, 1 << 9, 0),
    NXR("class s unboxed", FCLASS(S), 0x00000000ff800000, 0, 1 << 9, 0),
    /* sign injection (checks boxing) and moves (do not) */
    NF("fsgnj", FSGNJ(D, 0), D_ONE, D_NEG, D_NEG | D_ONE, 0),
    NF("fsgnjn", FSGNJ(D, 1), D_NEG | D_ONE, D_NEG, D_ONE, 0),
    NF("fsgnjx", FSGNJ(D, 2), D_NEG | D_ONE, D_NEG | D_INF, D_ONE, 0),
    NF("fsgnj snan", FSGNJ(D, 0), D_SNAN, D_NEG, D_NEG | D_SNAN, 0),
    NF("fsgnjn s unboxed", FSGNJ(S, 1), 0x3f800000, B(0x3f800000), B(0xffc00000), 0),
    NF("fsgnj s unboxed rs2", FSGNJ(S, 0), B(0x3f800000), 0x80000000, B(0x3f800000), 0),
    NXR("fmv.x.w", FMVX(S), 0x12345678cafef00d, 0, 0xffffffffcafef00d, 0),
    NXR("fmv.x.w pos", FMVX(S), B(0x3f800000), 0, 0x3f800000, 0),
    NXR("fmv.x.d", FMVX(D), 0xfff0000000000001, 0, 0xfff0000000000001, 0),
    NF("fmv.w.x", FMVF(S), 0x1234567880000001, 0, B(0x80000001), 0),
    NF("fmv.d.x", FMVF(D), 0x7ff0000000000001, 0, 0x7ff0000000000001, 0),
};

static void test_directed(void)
{
    for (size_t i = 0; i < sizeof dcases / sizeof dcases[0]; i++) {
        const struct dcase *t = &dcases[i];
        check(t->name, t->insn, t->rnd, t->xres, t->a, t->b, t->c, t->res, t->fl);
    }
}

/* ------------------------------------------------------------ illegal, x0 */
static void test_illegal_one(uint32_t insn, unsigned frm)
{
    for (unsigned p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        struct fp_regs fp, fp0;
        uint64_t x[32], x0[32];
        for (int i = 0; i < 32; i++) {
            fp.f[i] = SENTINEL + (uint64_t)i;
            x[i] = i ? SENTINEL - (uint64_t)i : 0;
        }
        fp.fflags = 0x1f;
        fp.frm = frm;
        memcpy(&fp0, &fp, sizeof fp);
        memcpy(x0, x, sizeof x);
        int r = paths[p].fn(&fp, x, insn);
        if (r != -1 || memcmp(&fp, &fp0, sizeof fp) || memcmp(x, x0, sizeof x))
            FAIL("FAIL illegal [%s] insn %08x frm %u: ret %d or state changed\n", paths[p].name,
                 insn, frm, r);
        else
            passed++;
    }
}

static void test_illegal(void)
{
    for (unsigned i = 0; i < FPU_ILLEGAL_COUNT; i++)
        test_illegal_one((uint32_t)fpu_illegal[i], (unsigned)(fpu_illegal[i] >> 32));
    /* reserved rm on every rounding instruction; DYN with frm 5..7 */
    static const uint32_t rounding[] = {FADD(S), FSUB(D), FMUL(S), FDIV(D), FSQRT(S), FSQRT(D),
                                        FCVT_I(S, 0), FCVT_I(D, 3), FCVT_F(S, 2), FCVT_F(D, 1),
                                        FCVT_SD, FCVT_DS, FMADD(S), FMSUB(D), FNMSUB(S),
                                        FNMADD(D)};
    for (size_t i = 0; i < sizeof rounding / sizeof rounding[0]; i++) {
        test_illegal_one(with_rm(rounding[i], 5), 0);
        test_illegal_one(with_rm(rounding[i], 6), 0);
        for (unsigned frm = 5; frm < 8; frm++)
            test_illegal_one(with_rm(rounding[i], 7), frm);
    }
    /* other major opcodes, formats H and Q */
    test_illegal_one(0x00000013, 0); /* addi */
    test_illegal_one((FADD(D) & ~0x7fu) | 0x33, 0);
    test_illegal_one(FADD(D) | 2u << 25, 0);
    test_illegal_one(FMADD(D) | 3u << 25, 0);
}

static void test_x0(void)
{
    static const uint32_t ops[] = {FEQ(D), FLT(S), FCLASS(D), FMVX(S), FCVT_I(D, 0), FCVT_I(S, 3)};
    for (unsigned p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
            struct fp_regs fp;
            uint64_t x[32] = {0};
            memset(&fp, 0, sizeof fp);
            fp.f[RS1] = fp.f[RS2] = 0xffffffff3f800000;
            int r = paths[p].fn(&fp, x, ops[i] & ~(31u << 7)); /* rd = x0 */
            if (r != 0 || x[0] != 0)
                FAIL("FAIL x0 [%s] insn %08x: ret %d x0 %016" PRIx64 "\n", paths[p].name,
                     ops[i] & ~(31u << 7), r, x[0]);
            else
                passed++;
        }
    }
    /* fflags accumulate; frm is not modified */
    struct fp_regs fp;
    uint64_t x[32] = {0};
    memset(&fp, 0, sizeof fp);
    fp.fflags = FFLAG_DZ;
    fp.frm = FRM_RUP;
    fp.f[RS1] = D_ONE;
    fp.f[RS2] = 0x4008000000000000;
    if (fpu_execute(&fp, x, with_rm(FDIV(D), 7)) != 0 || fp.fflags != (FFLAG_DZ | FFLAG_NX) ||
        fp.frm != FRM_RUP || fp.f[RD] != 0x3fd5555555555556)
        FAIL("FAIL fflags accumulate / dynamic RUP\n");
    else
        passed++;
}

/* ------------------------------------------------------------ host vs soft */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* random operand for format d: all classes, biased to interesting exponents */
static uint64_t rnd_operand(int d)
{
    uint64_t r = rnd64(), m = rnd64();
    int mb = d ? 52 : 23, emax = d ? 0x7ff : 0xff;
    uint64_t sign = (r & 1) ? (d ? D_NEG : 0x80000000ull) : 0;
    uint64_t mant = m & ((1ull << mb) - 1);
    int e;
    switch ((r >> 1) % 16) {
    case 0: e = 0; break;                                        /* subnormal or zero */
    case 1: e = emax; mant = (r >> 8) & 1 ? mant : 0; break;      /* inf or NaN */
    case 2: e = 1 + (int)((r >> 8) % 4); break;                   /* near min normal */
    case 3: e = emax - 1 - (int)((r >> 8) % 4); break;            /* near max */
    case 4: mant &= ~((1ull << (mb - 3)) - 1); /* fallthrough */   /* short mantissa */
    case 5: e = (emax >> 1) + (int)((r >> 8) % 9) - 4; break;     /* near 1 */
    case 6: e = (int)((r >> 8) % (unsigned)emax); mant |= (1ull << mb) - 64; break;
    default: e = 1 + (int)((r >> 8) % (unsigned)(emax - 1)); break;
    }
    uint64_t v = sign | ((uint64_t)e << mb) | mant;
    return d ? v : 0xffffffff00000000ull | v;
}

static void test_random(unsigned long n)
{
    static const uint32_t ops[] = {FADD(S), FADD(D), FSUB(S), FSUB(D), FMUL(S), FMUL(D), FDIV(S),
                                   FDIV(D), FSQRT(S), FSQRT(D), FMADD(S), FMADD(D), FMSUB(S),
                                   FMSUB(D), FNMSUB(S), FNMSUB(D), FNMADD(S), FNMADD(D), FCVT_SD};
    unsigned long bad = 0;
    for (unsigned long i = 0; i < n; i++) {
        uint32_t insn = ops[rnd64() % (sizeof ops / sizeof ops[0])];
        int d = insn == FCVT_SD ? 1 : (int)((insn >> 25) & 1);
        unsigned rm = (unsigned)(rnd64() % 5);
        uint64_t a = rnd_operand(d), b = rnd_operand(d), c = rnd_operand(d);
        /* products and sums near the extremes: correlate exponents */
        if ((i & 7) == 0 && d) {
            b = (b & ~(0x7ffull << 52)) | ((0x7feull - ((a >> 52) & 0x7ff) + (rnd64() % 5)) % 0x7ff) << 52;
        }
        /* cancellation: c close to -(a*b) for fused ops, b close to -a for
         * sums (the host path's exact error terms see most work there) */
        if ((i & 7) == 1) {
            uint32_t mul = d ? FMUL(D) : FMUL(S);
            uint64_t p = run(fpu_execute_soft, with_rm(mul, (unsigned)(rnd64() % 5)), 0, a, b, 0, false).val;
            c = (p ^ (d ? D_NEG : 0x80000000ull)) + (rnd64() % 9) - 4;
            if (!d)
                c = 0xffffffff00000000ull | (uint32_t)c;
        } else if ((i & 7) == 2) {
            b = (a ^ (d ? D_NEG : 0x80000000ull)) + (rnd64() % 9) - 4;
            if (!d)
                b = 0xffffffff00000000ull | (uint32_t)b;
        }
        insn = with_rm(insn, rm);
        struct result h = run((i & 1) ? execute_for : fpu_execute, insn, 0, a, b, c, false);
        struct result s = run(fpu_execute_soft, insn, 0, a, b, c, false);
        if (h.ret != s.ret || h.val != s.val || h.flags != s.flags) {
            if (++bad <= 20)
                FAIL("FAIL random insn %08x a %016" PRIx64 " b %016" PRIx64 " c %016" PRIx64
                     ": host %016" PRIx64 "/%02x soft %016" PRIx64 "/%02x\n",
                     insn, a, b, c, h.val, h.flags, s.val, s.flags);
            else
                failed++;
        } else {
            passed++;
        }
    }
}

int main(void)
{
    test_vectors();
    test_directed();
    test_illegal();
    test_x0();
    test_random(1000000);
    printf("fpu: %lu passed, %lu failed\n", passed, failed);
    return failed != 0;
}
