/* Software binary32/binary64 arithmetic, exact in all five RISC-V rounding
 * modes. See fpu_soft.h.
 *
 * Representation: a finite nonzero operand is unpacked to (sign, exp, sig)
 * with sig normalized so that bit 62 is the leading one, and
 *     value = sig * 2^(exp - 62).
 * Operations compute their result exactly, or truncated with a "sticky" bit
 * ORed into bit 0 that stands for the nonzero bits shifted out, in a 128-bit
 * integer whose leading one is well above the rounding position; a single
 * rounding step (round_pack) then produces the result and the flags. */
#include "cpu/fpu_soft.h"

#include <stdbool.h>
#include <stddef.h>

#include "cpu/fpu.h"

typedef unsigned __int128 u128;

enum { C_ZERO, C_FIN, C_INF, C_QNAN, C_SNAN };

struct unp {
    uint64_t sig;
    int32_t exp;
    int cls;
    bool sign;
};

/* format parameters: d = 0 binary32, d = 1 binary64 */
#define MBITS(d) ((d) ? 52 : 23)
#define BIAS(d) ((d) ? 1023 : 127)
#define EMAX(d) ((d) ? 0x7ff : 0xff)
#define CNAN(d) ((d) ? FPU_CNAN64 : FPU_CNAN32)

static inline int clz64(uint64_t v) { return __builtin_clzll(v); }

static inline int clz128(u128 v)
{
    uint64_t hi = (uint64_t)(v >> 64);
    return hi ? clz64(hi) : 64 + clz64((uint64_t)v);
}

static inline uint64_t shr_jam64(uint64_t v, int32_t n)
{
    if (n <= 0)
        return v;
    if (n >= 64)
        return v != 0;
    return (v >> n) | ((v & ((1ull << n) - 1)) != 0);
}

static inline u128 shr_jam128(u128 v, int32_t n)
{
    if (n <= 0)
        return v;
    if (n >= 128)
        return v != 0;
    return (v >> n) | ((v & (((u128)1 << n) - 1)) != 0);
}

static inline struct unp unpack(int d, uint64_t v)
{
    int mb = MBITS(d);
    struct unp u;
    uint64_t m = v & ((1ull << mb) - 1);
    int32_t e = (int32_t)((v >> mb) & EMAX(d));
    u.sign = (v >> (d ? 63 : 31)) & 1;
    u.exp = 0;
    u.sig = 0;
    if (e == EMAX(d)) {
        if (m == 0)
            u.cls = C_INF;
        else
            u.cls = (m >> (mb - 1)) & 1 ? C_QNAN : C_SNAN;
    } else if (e == 0) {
        if (m == 0) {
            u.cls = C_ZERO;
        } else {
            int s;
            u.cls = C_FIN;
            u.sig = m << (62 - mb);
            s = clz64(u.sig) - 1;
            u.sig <<= s;
            u.exp = 1 - BIAS(d) - s;
        }
    } else {
        u.cls = C_FIN;
        u.sig = (m | 1ull << mb) << (62 - mb);
        u.exp = e - BIAS(d);
    }
    return u;
}

static inline uint64_t pack_zero(int d, bool sign) { return sign ? fpu_soft_sign(d) : 0; }

static inline uint64_t pack_inf(int d, bool sign)
{
    return pack_zero(d, sign) | ((uint64_t)EMAX(d) << MBITS(d));
}

/* NaN result: canonical, NV if any input is signaling. */
static inline uint64_t nan_result(int d, const struct unp *a, const struct unp *b,
                                  const struct unp *c, uint32_t *fl)
{
    if (a->cls == C_SNAN || (b && b->cls == C_SNAN) || (c && c->cls == C_SNAN))
        *fl |= FFLAG_NV;
    return CNAN(d);
}

static inline uint64_t invalid(int d, uint32_t *fl)
{
    *fl |= FFLAG_NV;
    return CNAN(d);
}

/* Rounds sig * 2^(exp - 62) (sig has bit 62 set; bit 0 may be a sticky bit)
 * to format d. Tininess is detected after rounding. */
static uint64_t round_pack(int d, bool sign, int32_t exp, uint64_t sig, int rm, uint32_t *fl)
{
    const int mb = MBITS(d);
    const int r = 62 - mb;
    const uint64_t mask = (1ull << r) - 1, half = 1ull << (r - 1);
    int32_t e = exp + BIAS(d);
    uint64_t inc, rbits;

    switch (rm) {
    case FRM_RTZ: inc = 0; break;
    case FRM_RDN: inc = sign ? mask : 0; break;
    case FRM_RUP: inc = sign ? 0 : mask; break;
    default: inc = half; break; /* RNE, RMM */
    }
    if (e <= 0) {
        /* Tiny if, rounded to full precision with an unbounded exponent, the
         * result is still below the smallest normal number. */
        bool tiny = e < 0 || sig + inc < (1ull << 63);
        sig = shr_jam64(sig, 1 - e);
        e = 1;
        if (tiny && (sig & mask))
            *fl |= FFLAG_UF;
    }
    rbits = sig & mask;
    if (rbits)
        *fl |= FFLAG_NX;
    sig = (sig + inc) >> r;
    if (rm == FRM_RNE && rbits == half)
        sig &= ~1ull;
    /* sig >> mb is 0 (subnormal or zero), 1 (normal) or 2 (rounding carried) */
    if (e - 1 + (int32_t)(sig >> mb) >= EMAX(d)) {
        bool to_inf;
        *fl |= FFLAG_OF | FFLAG_NX;
        switch (rm) {
        case FRM_RTZ: to_inf = false; break;
        case FRM_RDN: to_inf = sign; break;
        case FRM_RUP: to_inf = !sign; break;
        default: to_inf = true; break;
        }
        if (to_inf)
            return pack_inf(d, sign);
        return pack_inf(d, sign) - 1; /* largest finite */
    }
    return pack_zero(d, sign) + ((uint64_t)(e - 1) << mb) + sig;
}

/* Rounds s * 2^(exp - 126) (s nonzero, any normalization; bit 0 may be
 * sticky; at least 2 bits of s below the rounding position) to format d. */
static uint64_t round_pack128(int d, bool sign, int32_t exp, u128 s, int rm, uint32_t *fl)
{
    int lz = clz128(s);
    uint64_t sig;
    s <<= lz;
    sig = (uint64_t)(s >> 65) | (((uint64_t)s | ((uint64_t)(s >> 64) & 1)) != 0);
    return round_pack(d, sign, exp + 1 - lz, sig, rm, fl);
}

/* a + b, both finite nonzero */
static uint64_t add_fin(int d, struct unp a, struct unp b, int rm, uint32_t *fl)
{
    u128 sa, sb, s;
    bool sign;
    if (a.exp < b.exp) {
        struct unp t = a;
        a = b;
        b = t;
    }
    sa = (u128)a.sig << 64;
    sb = shr_jam128((u128)b.sig << 64, a.exp - b.exp);
    if (a.sign == b.sign) {
        s = sa + sb;
        sign = a.sign;
    } else if (sa >= sb) {
        s = sa - sb;
        sign = a.sign;
    } else {
        s = sb - sa;
        sign = b.sign;
    }
    if (s == 0)
        return pack_zero(d, rm == FRM_RDN);
    return round_pack128(d, sign, a.exp, s, rm, fl);
}

uint64_t fpu_soft_add(int d, uint64_t a, uint64_t b, int rm, uint32_t *fl)
{
    struct unp ua = unpack(d, a), ub = unpack(d, b);
    if (ua.cls >= C_QNAN || ub.cls >= C_QNAN)
        return nan_result(d, &ua, &ub, NULL, fl);
    if (ua.cls == C_INF) {
        if (ub.cls == C_INF && ua.sign != ub.sign)
            return invalid(d, fl);
        return a;
    }
    if (ub.cls == C_INF)
        return b;
    if (ua.cls == C_ZERO) {
        if (ub.cls == C_ZERO)
            return pack_zero(d, ua.sign == ub.sign ? ua.sign : rm == FRM_RDN);
        return b;
    }
    if (ub.cls == C_ZERO)
        return a;
    return add_fin(d, ua, ub, rm, fl);
}

uint64_t fpu_soft_mul(int d, uint64_t a, uint64_t b, int rm, uint32_t *fl)
{
    struct unp ua = unpack(d, a), ub = unpack(d, b);
    bool sign = ua.sign ^ ub.sign;
    if (ua.cls >= C_QNAN || ub.cls >= C_QNAN)
        return nan_result(d, &ua, &ub, NULL, fl);
    if (ua.cls == C_INF || ub.cls == C_INF) {
        if (ua.cls == C_ZERO || ub.cls == C_ZERO)
            return invalid(d, fl);
        return pack_inf(d, sign);
    }
    if (ua.cls == C_ZERO || ub.cls == C_ZERO)
        return pack_zero(d, sign);
    return round_pack128(d, sign, ua.exp + ub.exp + 2, (u128)ua.sig * ub.sig, rm, fl);
}

uint64_t fpu_soft_div(int d, uint64_t a, uint64_t b, int rm, uint32_t *fl)
{
    struct unp ua = unpack(d, a), ub = unpack(d, b);
    bool sign = ua.sign ^ ub.sign;
    u128 n, q;
    if (ua.cls >= C_QNAN || ub.cls >= C_QNAN)
        return nan_result(d, &ua, &ub, NULL, fl);
    if (ua.cls == C_INF) {
        if (ub.cls == C_INF)
            return invalid(d, fl);
        return pack_inf(d, sign);
    }
    if (ub.cls == C_INF)
        return pack_zero(d, sign);
    if (ub.cls == C_ZERO) {
        if (ua.cls == C_ZERO)
            return invalid(d, fl);
        *fl |= FFLAG_DZ;
        return pack_inf(d, sign);
    }
    if (ua.cls == C_ZERO)
        return pack_zero(d, sign);
    /* q = floor(sig_a * 2^64 / sig_b), in (2^63, 2^65): 64+ significant bits */
    n = (u128)ua.sig << 64;
    q = n / ub.sig;
    q |= (q * ub.sig != n);
    return round_pack128(d, sign, ua.exp - ub.exp + 62, q, rm, fl);
}

/* floor(sqrt(n)), *exact = (remainder == 0); n < 2^127 */
static uint64_t isqrt128(u128 n, bool *exact)
{
    u128 res = 0, one = (u128)1 << 126;
    while (one > n)
        one >>= 2;
    while (one) {
        if (n >= res + one) {
            n -= res + one;
            res = (res >> 1) + one;
        } else {
            res >>= 1;
        }
        one >>= 2;
    }
    *exact = n == 0;
    return (uint64_t)res;
}

uint64_t fpu_soft_sqrt(int d, uint64_t a, int rm, uint32_t *fl)
{
    struct unp ua = unpack(d, a);
    int k;
    uint64_t r;
    bool exact;
    if (ua.cls >= C_QNAN)
        return nan_result(d, &ua, NULL, NULL, fl);
    if (ua.cls == C_ZERO)
        return a;
    if (ua.sign)
        return invalid(d, fl);
    if (ua.cls == C_INF)
        return a;
    /* value = (sig << k) * 2^(exp - 62 - k) with an even power of two */
    k = (ua.exp & 1) ? 63 : 64;
    r = isqrt128((u128)ua.sig << k, &exact);
    return round_pack128(d, false, (ua.exp - 62 - k) / 2 + 126, (u128)(r | !exact), rm, fl);
}

uint64_t fpu_soft_fma(int d, uint64_t a, uint64_t b, uint64_t c, int rm, uint32_t *fl)
{
    struct unp ua = unpack(d, a), ub = unpack(d, b), uc = unpack(d, c);
    bool sp = ua.sign ^ ub.sign, sign;
    int32_t ep, e;
    u128 p, sc, s;

    if (ua.cls >= C_QNAN || ub.cls >= C_QNAN || uc.cls >= C_QNAN) {
        /* inf * 0 is invalid even when the addend is a quiet NaN */
        if ((ua.cls == C_INF && ub.cls == C_ZERO) || (ua.cls == C_ZERO && ub.cls == C_INF))
            *fl |= FFLAG_NV;
        return nan_result(d, &ua, &ub, &uc, fl);
    }
    if (ua.cls == C_INF || ub.cls == C_INF) {
        if (ua.cls == C_ZERO || ub.cls == C_ZERO)
            return invalid(d, fl);
        if (uc.cls == C_INF && uc.sign != sp)
            return invalid(d, fl);
        return pack_inf(d, sp);
    }
    if (uc.cls == C_INF)
        return c;
    if (ua.cls == C_ZERO || ub.cls == C_ZERO) {
        if (uc.cls == C_ZERO)
            return pack_zero(d, sp == uc.sign ? sp : rm == FRM_RDN);
        return c;
    }
    p = (u128)ua.sig * ub.sig; /* in [2^124, 2^126) */
    if (uc.cls == C_ZERO)
        return round_pack128(d, sp, ua.exp + ub.exp + 2, p, rm, fl);
    /* both with the leading one at bit 125: value = x * 2^(e - 125) */
    if (p >> 125) {
        ep = ua.exp + ub.exp + 1;
    } else {
        p <<= 1;
        ep = ua.exp + ub.exp;
    }
    sc = (u128)uc.sig << 63;
    if (ep >= uc.exp) {
        sc = shr_jam128(sc, ep - uc.exp);
        e = ep;
    } else {
        p = shr_jam128(p, uc.exp - ep);
        e = uc.exp;
    }
    if (sp == uc.sign) {
        s = p + sc;
        sign = sp;
    } else if (p >= sc) {
        s = p - sc;
        sign = sp;
    } else {
        s = sc - p;
        sign = uc.sign;
    }
    if (s == 0)
        return pack_zero(d, rm == FRM_RDN);
    return round_pack128(d, sign, e + 1, s, rm, fl);
}

uint64_t fpu_soft_cvt_ff(int d, uint64_t a, int rm, uint32_t *fl)
{
    struct unp ua = unpack(!d, a);
    switch (ua.cls) {
    case C_QNAN:
    case C_SNAN: return nan_result(d, &ua, NULL, NULL, fl);
    case C_INF: return pack_inf(d, ua.sign);
    case C_ZERO: return pack_zero(d, ua.sign);
    default: return round_pack(d, ua.sign, ua.exp, ua.sig, rm, fl);
    }
}

uint64_t fpu_soft_cvt_fi(int d, uint64_t a, enum fpu_ikind k, int rm, uint32_t *fl)
{
    struct unp ua = unpack(d, a);
    bool is_signed = !(k & 1), is_w = k < FPU_L;
    /* magnitude limits */
    uint64_t max_pos = is_w ? (is_signed ? 0x7fffffffull : 0xffffffffull)
                            : (is_signed ? 0x7fffffffffffffffull : ~0ull);
    uint64_t max_neg = is_signed ? max_pos + 1 : 0;
    uint64_t mag, frac = 0, half = 0, ip, res;
    bool inc = false;
    int32_t sh;

    if (ua.cls >= C_QNAN) {
        *fl |= FFLAG_NV;
        res = max_pos;
        goto out;
    }
    if (ua.cls == C_ZERO)
        return 0;
    if (ua.cls == C_INF || ua.exp >= 64)
        goto overflow;
    sh = 62 - ua.exp;
    if (sh <= 0) {
        ip = ua.sig << -sh;
    } else if (sh > 64) {
        /* |value| < 1/4: below half, inexact */
        ip = 0;
        frac = 1;
        half = 2;
    } else {
        ip = sh == 64 ? 0 : ua.sig >> sh;
        frac = sh == 64 ? ua.sig : ua.sig & ((1ull << sh) - 1);
        half = 1ull << (sh - 1);
    }
    if (frac) {
        switch (rm) {
        case FRM_RNE: inc = frac > half || (frac == half && (ip & 1)); break;
        case FRM_RMM: inc = frac >= half; break;
        case FRM_RUP: inc = !ua.sign; break;
        case FRM_RDN: inc = ua.sign; break;
        default: break;
        }
    }
    mag = ip + inc;
    if (mag > (ua.sign ? max_neg : max_pos))
        goto overflow;
    if (frac)
        *fl |= FFLAG_NX;
    res = ua.sign ? -mag : mag;
    goto out;
overflow:
    *fl |= FFLAG_NV;
    res = ua.sign ? -max_neg : max_pos;
out:
    if (is_w)
        res = (uint64_t)(int64_t)(int32_t)(uint32_t)res;
    return res;
}

uint64_t fpu_soft_cvt_if(int d, uint64_t x, enum fpu_ikind k, int rm, uint32_t *fl)
{
    bool sign = false;
    uint64_t mag, sig;
    int lz;
    switch (k) {
    case FPU_W:
        mag = (uint64_t)(int64_t)(int32_t)(uint32_t)x;
        break;
    case FPU_WU: mag = (uint32_t)x; break;
    default: mag = x; break;
    }
    if (!(k & 1) && (int64_t)mag < 0) {
        sign = true;
        mag = -mag;
    }
    if (mag == 0)
        return 0;
    lz = clz64(mag);
    if (lz == 0)
        sig = (mag >> 1) | (mag & 1);
    else
        sig = mag << (lz - 1);
    return round_pack(d, sign, 63 - lz, sig, rm, fl);
}
