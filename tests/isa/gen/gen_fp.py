#!/usr/bin/env python3
"""Generates the golden floating-point test vectors for the F and D extensions.

For every group of operations it builds a set of (instruction, operands)
records, runs them on QEMU (qemu-system-riscv64 -M spike, softfloat, bit-exact)
with a probe build of the test program that prints each result and fflags over
HTIF, and then writes:

  tests/isa/fp_<group>.S   bare-metal programs that re-run every record in
                           every rounding mode (static rm and dynamic frm) and
                           check the result register and fflags bit-exactly
                           against the values QEMU produced;
  tests/unit/fpu_vectors.h the same vectors for tests/unit/test_fpu.c.

Usage: tests/isa/gen/gen_fp.py [--repo DIR] [--seed N] [--scale N]
Requires riscv64-linux-gnu-gcc and qemu-system-riscv64. Deterministic for a
given seed. Re-run it only to change the vector set; the outputs are committed.
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile
from fractions import Fraction

RV_CC = os.environ.get("RV_CC", "riscv64-linux-gnu-gcc")
RV_CFLAGS = ("-march=rv64gc_zba_zbb_zbs_zicsr_zifencei -mabi=lp64d -mcmodel=medany "
             "-nostdlib -nostartfiles -static -Wl,--no-relax -Wl,--no-warn-rwx-segments "
             "-Wl,--build-id=none -no-pie").split()
QEMU = os.environ.get("QEMU", "qemu-system-riscv64")

M64 = (1 << 64) - 1
SENTINEL = 0x5a5aa5a5c3c33c3c

# register numbers used by every tested instruction
RD, RS1, RS2, RS3 = 10, 11, 12, 13


# ---------------------------------------------------------------- formats
class Fmt:
    def __init__(self, d):
        self.d = d
        self.mb = 52 if d else 23
        self.eb = 11 if d else 8
        self.bias = (1 << (self.eb - 1)) - 1
        self.emax = (1 << self.eb) - 1
        self.w = 64 if d else 32
        self.sign = 1 << (self.w - 1)
        self.inf = self.emax << self.mb
        self.qnan = self.inf | (1 << (self.mb - 1))
        self.snan = self.inf | 1
        self.maxnorm = self.inf - 1
        self.minnorm = 1 << self.mb
        self.maxsub = self.minnorm - 1
        self.one = self.bias << self.mb

    def box(self, v):
        return v if self.d else (0xffffffff00000000 | v)

    def make(self, sign, e, mant):
        """e: unbiased exponent of a normal number"""
        return (self.sign if sign else 0) | ((e + self.bias) << self.mb) | mant

    def value(self, b):
        """exact Fraction value of finite bits b"""
        s = -1 if b & self.sign else 1
        e = (b >> self.mb) & self.emax
        m = b & ((1 << self.mb) - 1)
        if e == 0:
            return s * Fraction(m, 1) * Fraction(2) ** (1 - self.bias - self.mb)
        return s * Fraction(m | (1 << self.mb)) * Fraction(2) ** (e - self.bias - self.mb)

    def from_value(self, x):
        """nearest (ties to even) bits for Fraction x; saturates to max finite"""
        if x == 0:
            return 0
        s = self.sign if x < 0 else 0
        x = abs(x)
        e = max(ilog2(x), 1 - self.bias)
        q = x / Fraction(2) ** (e - self.mb)
        n = q.numerator // q.denominator
        r = q - n
        if r > Fraction(1, 2) or (r == Fraction(1, 2) and n & 1):
            n += 1
        b = ((e + self.bias - 1) << self.mb) + n
        return s | min(b, self.maxnorm)

    def rand_finite(self, rng, emin=None, emax=None, sign=None):
        emin = 1 - self.bias if emin is None else emin
        emax = self.bias if emax is None else emax
        e = rng.randint(emin, emax)
        s = rng.getrandbits(1) if sign is None else sign
        return self.make(s, e, self.rand_mant(rng))

    def rand_mant(self, rng):
        k = rng.randrange(6)
        if k == 0:
            return 0
        if k == 1:  # sparse
            m = 0
            for _ in range(rng.randint(1, 3)):
                m |= 1 << rng.randrange(self.mb)
            return m
        if k == 2:  # dense
            return ((1 << self.mb) - 1) ^ (1 << rng.randrange(self.mb)) * rng.getrandbits(1)
        return rng.getrandbits(self.mb)

    def specials(self):
        s = self.sign
        return [0, s, 1, s | 1, self.maxsub, s | self.maxsub, self.minnorm, s | self.minnorm,
                self.maxnorm, s | self.maxnorm, self.one, s | self.one, self.inf, s | self.inf,
                self.qnan, s | self.qnan | 5, self.snan, s | self.snan | 0x12,
                self.one | 1, self.one - 1, self.one + (1 << self.mb) // 2,
                (self.bias + 1 << self.mb), s | (self.bias + 1 << self.mb) | (1 << (self.mb - 1)),
                self.minnorm + 1, self.maxsub - 1, 1 << (self.mb - 1)]


F32, F64 = Fmt(0), Fmt(1)


def ilog2(x):
    """floor(log2(x)) for a positive Fraction"""
    e = x.numerator.bit_length() - x.denominator.bit_length()
    if Fraction(2) ** e > x:
        e -= 1
    return e


def fmt_of(d):
    return F64 if d else F32


# ---------------------------------------------------------------- encodings
def enc_r(f5, fmt, rs2, rm, opc=0x53, rd=RD, rs1=RS1):
    return (f5 << 27) | (fmt << 25) | (rs2 << 20) | (rs1 << 15) | (rm << 12) | (rd << 7) | opc


def enc_r4(opc, fmt, rm, rs3=RS3):
    return (rs3 << 27) | (fmt << 25) | (RS2 << 20) | (RS1 << 15) | (rm << 12) | (RD << 7) | opc


class Op:
    """name, encoding(rm) -> insn, rounding?, integer result?, source kinds"""

    def __init__(self, name, enc, rnd, xres, srcs):
        self.name, self.enc, self.rnd, self.xres, self.srcs = name, enc, rnd, xres, srcs


def sfx(d):
    return "d" if d else "s"


def ops_arith(d):
    return [Op(f"fadd.{sfx(d)}", lambda rm, d=d: enc_r(0x00, d, RS2, rm), True, False, "ff"),
            Op(f"fsub.{sfx(d)}", lambda rm, d=d: enc_r(0x01, d, RS2, rm), True, False, "ff"),
            Op(f"fmul.{sfx(d)}", lambda rm, d=d: enc_r(0x02, d, RS2, rm), True, False, "ff"),
            Op(f"fdiv.{sfx(d)}", lambda rm, d=d: enc_r(0x03, d, RS2, rm), True, False, "ff"),
            Op(f"fsqrt.{sfx(d)}", lambda rm, d=d: enc_r(0x0b, d, 0, rm), True, False, "f")]


def ops_fma(d):
    return [Op(f"{n}.{sfx(d)}", lambda rm, d=d, o=o: enc_r4(o, d, rm), True, False, "fff")
            for n, o in (("fmadd", 0x43), ("fmsub", 0x47), ("fnmsub", 0x4b), ("fnmadd", 0x4f))]


IKINDS = ("w", "wu", "l", "lu")


def ops_cvt():
    ops = []
    for d in (0, 1):
        for k, n in enumerate(IKINDS):
            ops.append(Op(f"fcvt.{n}.{sfx(d)}", lambda rm, d=d, k=k: enc_r(0x18, d, k, rm),
                          True, True, "f"))
            ops.append(Op(f"fcvt.{sfx(d)}.{n}", lambda rm, d=d, k=k: enc_r(0x1a, d, k, rm),
                          True, False, "x"))
    ops.append(Op("fcvt.s.d", lambda rm: enc_r(0x08, 0, 1, rm), True, False, "f"))
    ops.append(Op("fcvt.d.s", lambda rm: enc_r(0x08, 1, 0, rm), True, False, "f"))
    return ops


def ops_misc(d):
    s = sfx(d)
    return [Op(f"fsgnj.{s}", lambda rm, d=d: enc_r(0x04, d, RS2, 0), False, False, "ff"),
            Op(f"fsgnjn.{s}", lambda rm, d=d: enc_r(0x04, d, RS2, 1), False, False, "ff"),
            Op(f"fsgnjx.{s}", lambda rm, d=d: enc_r(0x04, d, RS2, 2), False, False, "ff"),
            Op(f"fmin.{s}", lambda rm, d=d: enc_r(0x05, d, RS2, 0), False, False, "ff"),
            Op(f"fmax.{s}", lambda rm, d=d: enc_r(0x05, d, RS2, 1), False, False, "ff"),
            Op(f"feq.{s}", lambda rm, d=d: enc_r(0x14, d, RS2, 2), False, True, "ff"),
            Op(f"flt.{s}", lambda rm, d=d: enc_r(0x14, d, RS2, 1), False, True, "ff"),
            Op(f"fle.{s}", lambda rm, d=d: enc_r(0x14, d, RS2, 0), False, True, "ff"),
            Op(f"fclass.{s}", lambda rm, d=d: enc_r(0x1c, d, 0, 1), False, True, "f"),
            Op(f"fmv.x.{'d' if d else 'w'}", lambda rm, d=d: enc_r(0x1c, d, 0, 0), False, True, "f"),
            Op(f"fmv.{'d' if d else 'w'}.x", lambda rm, d=d: enc_r(0x1e, d, 0, 0), False, False, "x")]


# ---------------------------------------------------------------- operands
def boxed(d, vals):
    f = fmt_of(d)
    return [f.box(v) for v in vals]


def unboxed_s():
    """binary32 register values that are not properly NaN-boxed"""
    return [0x000000003f800000, 0x7fffffff3f800000, 0xfffffffe00000000, 0x00000000ffffffff,
            0xffff0000c0000000]


def near(f, rng, target, spread=3):
    """bits of a value within `spread` ulps of Fraction target (positive)"""
    b = f.from_value(target)
    return max(1, min(f.maxnorm, b + rng.randint(-spread, spread)))


def boundaries(f):
    """interesting result magnitudes: rounding to overflow, underflow, subnormals"""
    two = Fraction(2)
    mn = f.value(f.minnorm)
    ms = f.value(1)
    mx = f.value(f.maxnorm)
    return [mn, mn * (1 - two ** -(f.mb + 1)), mn * (1 - two ** -(f.mb + 2)), ms, ms / 2, ms * 3 / 2,
            mx, mx + two ** (f.bias - f.mb - 1), mx * 2,
            mn / 2 + ms / 2, ms * 5 / 2]


def binop_cases(d, kind, rng, nrand):
    f = fmt_of(d)
    core = [0, f.sign, 1, f.sign | f.maxsub, f.minnorm, f.sign | f.maxnorm, f.maxnorm, f.one,
            f.sign | f.one | (1 << (f.mb - 1)), f.inf, f.sign | f.inf, f.qnan, f.snan,
            (f.bias + 1 << f.mb) | (1 << (f.mb - 1))]
    cases = [(a, b) for a in core for b in core]
    for _ in range(nrand):
        k = rng.randrange(10)
        if k == 0:  # raw random bits
            a, b = rng.getrandbits(f.w), rng.getrandbits(f.w)
        elif k == 1:  # close exponents: cancellation, carries
            e = rng.randint(-f.bias + 1, f.bias - 3)
            a = f.rand_finite(rng, e, e + 1)
            b = f.rand_finite(rng, e - 1, e + 2)
        elif k == 2:  # mid range, any relation
            a = f.rand_finite(rng, -f.mb - 5, f.mb + 5)
            b = f.rand_finite(rng, -f.mb - 5, f.mb + 5)
        elif k == 3 and kind in ("add", "sub"):  # halfway and near-halfway additions
            e = rng.randint(-f.bias + f.mb + 33, f.bias - 2)
            a = f.make(rng.getrandbits(1), e, f.rand_mant(rng))
            sh = rng.choice([f.mb + 1, f.mb + 2, f.mb, f.mb + 3, f.mb + 30])
            b = f.make(rng.getrandbits(1), e - sh, rng.choice([0, 1, (1 << f.mb) - 1,
                                                               rng.getrandbits(f.mb)]))
        elif k in (3, 4, 5, 6):  # results near a boundary
            t = rng.choice(boundaries(f)) * (rng.choice([1, 1, 1, 2, 3]) if k == 6 else 1)
            sgn = rng.choice([1, -1])
            if kind in ("add", "sub"):
                et = ilog2(t)
                a = f.rand_finite(rng, max(1 - f.bias, min(et, f.bias)), max(1 - f.bias, min(et + 3, f.bias)))
                other = sgn * t - f.value(a)
                if kind == "sub":
                    other = -other
                if other == 0:
                    other = f.value(1)
                b = near(f, rng, abs(other), 2) | (f.sign if other < 0 else 0)
            elif kind == "mul":
                a = f.rand_finite(rng, -f.bias // 2, f.bias // 2)
                av = f.value(a & ~f.sign)
                b = near(f, rng, t / av, 3) | (f.sign if sgn < 0 else 0)
            else:  # div
                b = f.rand_finite(rng, -f.bias // 2, f.bias // 2)
                bv = f.value(b & ~f.sign)
                a = near(f, rng, t * bv, 3) | (f.sign if sgn < 0 else 0)
        elif k == 7:  # a special against a random value
            a = rng.choice(f.specials())
            b = f.rand_finite(rng)
            if rng.getrandbits(1):
                a, b = b, a
        elif k == 8:  # subnormal operands
            a = rng.getrandbits(f.mb) | (f.sign if rng.getrandbits(1) else 0)
            b = f.rand_finite(rng, -f.mb, f.mb) if rng.getrandbits(1) else rng.getrandbits(f.mb)
        else:  # full exponent range
            a, b = f.rand_finite(rng), f.rand_finite(rng)
        cases.append((a & ((1 << f.w) - 1), b & ((1 << f.w) - 1)))
    out = [(f.box(a), f.box(b)) for a, b in cases]
    if not d:
        ub = unboxed_s()
        out += [(ub[i % 5], F32.box(F32.one)) for i in range(3)] + [(F32.box(F32.one), u) for u in ub[:3]]
    return out


def sqrt_cases(d, rng, nrand):
    f = fmt_of(d)
    vals = f.specials() + [f.sign | f.rand_finite(rng) for _ in range(6)]
    for _ in range(nrand):
        k = rng.randrange(5)
        if k == 0:
            vals.append(f.rand_finite(rng, sign=0))
        elif k == 1:  # perfect squares and neighbours
            m = rng.getrandbits((f.mb + 1) // 2) | 1
            v = f.from_value(Fraction(m * m) * Fraction(2) ** rng.randint(-f.bias // 2, f.bias // 4))
            vals.append(v + rng.choice([-1, 0, 0, 1]))
        elif k == 2:  # subnormals
            vals.append(rng.getrandbits(f.mb))
        elif k == 3:
            vals.append(f.rand_finite(rng, -4, 4, sign=0))
        else:
            vals.append(rng.getrandbits(f.w))
    out = [(f.box(v & ((1 << f.w) - 1)),) for v in vals]
    if not d:
        out += [(u,) for u in unboxed_s()[:2]]
    return out


def fma_cases(d, rng, nrand, exhaustive):
    f = fmt_of(d)
    cases = []
    if exhaustive:
        core = [0, f.sign, f.minnorm, f.sign | f.one, f.maxnorm, f.inf, f.sign | f.inf, f.qnan, f.snan]
        cases += [(a, b, c) for a in core for b in core for c in core]
    else:
        sp = f.specials()
        cases += [(rng.choice(sp), rng.choice(sp), rng.choice(sp)) for _ in range(60)]
        cases += [(f.inf, 0, f.qnan), (0, f.sign | f.inf, f.qnan), (f.inf, f.one, f.sign | f.inf),
                  (f.one, f.one, f.sign | f.one), (0, f.one, f.sign)]
    for _ in range(nrand):
        k = rng.randrange(8)
        a = f.rand_finite(rng, -f.bias // 3, f.bias // 3)
        b = f.rand_finite(rng, -f.bias // 3, f.bias // 3)
        p = f.value(a) * f.value(b)
        if k == 0:  # c cancels the rounded product: result is the rounding error
            c = f.from_value(-p)
        elif k == 1:  # exact product, exact cancellation -> signed zero
            a = f.make(rng.getrandbits(1), rng.randint(-20, 20), rng.getrandbits(f.mb // 3) << (f.mb - f.mb // 3))
            b = f.make(rng.getrandbits(1), rng.randint(-20, 20), rng.getrandbits(f.mb // 3) << (f.mb - f.mb // 3))
            c = f.from_value(-f.value(a) * f.value(b))
        elif k == 2:  # result near a boundary
            t = rng.choice(boundaries(f)) * rng.choice([1, -1])
            c = f.from_value(t - p) if abs(t - p) < f.value(f.maxnorm) else f.rand_finite(rng)
            c = c + rng.randint(-2, 2) if c & ((1 << f.mb) - 1) > 4 else c
        elif k == 3:  # product overflows, addend brings it back / product tiny
            a = f.make(0, f.bias, f.rand_mant(rng))
            b = f.make(rng.getrandbits(1), rng.randint(0, 2), f.rand_mant(rng))
            c = f.make(0 if b & f.sign else 1, f.bias, f.rand_mant(rng))
        elif k == 4:  # tiny product plus normal/subnormal addend
            a = f.rand_finite(rng, -f.bias + 1, -f.bias // 2)
            b = f.rand_finite(rng, -f.bias // 2 - f.mb, -f.bias // 2 + 2)
            c = rng.choice([rng.getrandbits(f.mb), f.minnorm, f.sign | f.minnorm, f.rand_finite(rng, -f.bias + 1, -f.bias + 3)])
        elif k == 5:  # addend far smaller or larger than the product
            c = f.rand_finite(rng, -f.bias + 1, f.bias)
        elif k == 6:
            a, b, c = (rng.getrandbits(f.w) for _ in range(3))
        else:  # c close to product: massive cancellation
            c = f.from_value(-p) ^ (rng.randint(0, 3)) if p != 0 else 0
        cases.append((a & ((1 << f.w) - 1), b & ((1 << f.w) - 1), c & ((1 << f.w) - 1)))
    out = [tuple(f.box(v) for v in t) for t in cases]
    if not d:
        out += [(unboxed_s()[0], F32.box(F32.one), F32.box(0)),
                (F32.box(F32.one), F32.box(F32.one), unboxed_s()[1])]
    return out


def f2i_values(d, rng):
    f = fmt_of(d)
    two = Fraction(2)
    xs = [Fraction(0), Fraction(1, 2), Fraction(3, 2), Fraction(5, 2), Fraction(1, 3), Fraction(2, 3),
          Fraction(1), Fraction(7, 4), Fraction(9, 4), Fraction(1, 10 ** 9)]
    for p in (31, 32, 63, 64):
        for k in (-3, -2, -1, 0, 1, 2):
            xs.append(two ** p + k)
        xs += [two ** p - Fraction(1, 2), two ** p + Fraction(1, 2), two ** p * (1 - two ** -f.mb), two ** p * (1 + two ** -f.mb)]
    vals = []
    for x in xs:
        for s in (1, -1):
            vals.append(f.from_value(s * x))
    vals += f.specials()
    vals += [f.sign | f.qnan, f.sign | f.snan]
    for _ in range(40):
        vals.append(f.rand_finite(rng, -3, 66))
    for _ in range(8):
        vals.append(f.rand_finite(rng))
    return [f.box(v) for v in vals] + (unboxed_s()[:1] if not d else [])


def i2f_values(rng):
    vals = [0, 1, M64, 2, 3, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, 0xffffffff80000000,
            0x7fffffffffffffff, 0x8000000000000000, 0x8000000000000001, 0xfffffffffffffffe,
            0x123456789abcdef0, 0xffffffff7fffffff, 0x00000000fffffffe]
    for p in (24, 25, 26, 53, 54, 55, 62, 63):
        for k in (-3, -1, 1, 2, 3, 5):
            vals.append(((1 << p) + k) & M64)
            vals.append((-((1 << p) + k)) & M64)
    for _ in range(30):
        n = rng.randint(1, 64)
        v = rng.getrandbits(n) | (1 << (n - 1))
        vals.append(v if rng.getrandbits(1) else (-v) & M64)
    for _ in range(10):  # halfway patterns: exactly p+1 significant bits, last one set
        p = rng.choice([24, 53])
        n = rng.randint(p + 1, 64)
        v = (rng.getrandbits(p) | (1 << (p - 1))) << 1 | 1
        vals.append((v << (n - p - 1)) & M64)
    return vals


def cvt_sd_values(rng):
    f = F64
    two = Fraction(2)
    vals = F64.specials()
    mx32 = F32.value(F32.maxnorm)
    mn32 = F32.value(F32.minnorm)
    ms32 = F32.value(1)
    for t in (mx32, mx32 + two ** (127 - 24), mx32 + two ** (127 - 24) - two ** (127 - 60), mx32 * 2,
              mn32, mn32 * (1 - two ** -24), mn32 * (1 - two ** -25), mn32 * (1 - two ** -24) * (1 + two ** -40),
              mn32 * (1 - two ** -24) * (1 - two ** -40), ms32, ms32 / 2, ms32 * 3 / 2, ms32 / 2 * (1 + two ** -30),
              ms32 / 2 * (1 - two ** -30), ms32 / 4, Fraction(1) + two ** -24, Fraction(1) + 3 * two ** -24,
              Fraction(1) + two ** -24 + two ** -52):
        for s in (1, -1):
            b = f.from_value(s * t)
            vals += [b, b + 1, b - 1]
    for _ in range(60):
        vals.append(f.rand_finite(rng, -160, 130))
    for _ in range(10):
        vals.append(f.rand_finite(rng))
    return [v & M64 for v in vals]


# ---------------------------------------------------------------- groups
def records_for(op, operands):
    recs = []
    for ops in operands:
        a = ops[0]
        b = ops[1] if len(ops) > 1 else 0
        c = ops[2] if len(ops) > 2 else 0
        recs.append({"op": op, "a": a, "b": b, "c": c})
    return recs


def build_groups(rng, scale=1):
    groups = {}
    for d in (0, 1):
        recs = []
        arith = ops_arith(d)
        for op, kind in zip(arith[:4], ("add", "sub", "mul", "div")):
            recs += records_for(op, binop_cases(d, kind, rng, 360 * scale))
        recs += records_for(arith[4], sqrt_cases(d, rng, 220 * scale))
        groups[f"arith_{sfx(d)}"] = recs
        recs = []
        for i, op in enumerate(ops_fma(d)):
            recs += records_for(op, fma_cases(d, rng, (300 if i == 0 else 170) * scale, i == 0))
        groups[f"fma_{sfx(d)}"] = recs
    recs = []
    for op in ops_cvt():
        if op.name in ("fcvt.s.d",):
            recs += records_for(op, [(v,) for v in cvt_sd_values(rng)])
        elif op.name == "fcvt.d.s":
            vals = F32.specials() + [F32.rand_finite(rng) for _ in range(20)]
            recs += records_for(op, [(F32.box(v),) for v in vals] + [(u,) for u in unboxed_s()])
        elif op.srcs == "x":
            recs += records_for(op, [(v,) for v in i2f_values(rng)])
        else:
            d = 1 if op.name.endswith(".d") else 0
            recs += records_for(op, [(v,) for v in f2i_values(d, rng)])
    groups["cvt"] = recs
    recs = []
    for d in (0, 1):
        f = fmt_of(d)
        vals = f.specials() + [f.rand_finite(rng) for _ in range(4)]
        vals = boxed(d, vals) + (unboxed_s() if not d else [])
        pairs = [(a, b) for a in vals for b in vals]
        rng.shuffle(pairs)
        for op in ops_misc(d):
            if op.srcs == "ff":
                sel = pairs[:120]
                rng.shuffle(pairs)
                # every pair of the small core set for min/max/compare
                core = boxed(d, [0, f.sign, f.one, f.sign | f.one, f.inf, f.sign | f.inf, f.qnan, f.snan,
                                 f.sign | f.snan | 3, 1])
                sel += [(a, b) for a in core for b in core]
                recs += records_for(op, sel)
            elif op.srcs == "f":
                recs += records_for(op, [(v,) for v in vals])
            else:
                recs += records_for(op, [(v,) for v in [0, M64, 0x3f800000, 0x123456787fc00001,
                                                         0xffffffff00000000, 0x7ff0000000000001]])
    groups["ops"] = recs
    return groups


def illegal_cases():
    """(insn, frm) pairs that must raise an illegal-instruction exception"""
    c = []
    for d in (0, 1):
        for rm in (5, 6):
            c += [(enc_r(0x00, d, RS2, rm), 0), (enc_r(0x0b, d, 0, rm), 0), (enc_r(0x18, d, 0, rm), 0),
                  (enc_r(0x1a, d, 2, rm), 0), (enc_r4(0x43, d, rm), 0), (enc_r4(0x4f, d, rm), 0)]
        for frm in (5, 6, 7):
            c += [(enc_r(0x02, d, RS2, 7), frm), (enc_r(0x18, d, 3, 7), frm), (enc_r(0x1a, d, 1, 7), frm),
                  (enc_r4(0x47, d, 7), frm), (enc_r(0x0b, d, 0, 7), frm)]
        c += [(enc_r(0x0b, d, 1, 0), 0), (enc_r(0x0b, d, 2, 0), 0), (enc_r(0x04, d, RS2, 3), 0),
              (enc_r(0x04, d, RS2, 7), 0), (enc_r(0x05, d, RS2, 2), 0), (enc_r(0x14, d, RS2, 3), 0),
              (enc_r(0x1c, d, 0, 2), 0), (enc_r(0x1c, d, 1, 1), 0), (enc_r(0x1c, d, 1, 0), 0),
              (enc_r(0x1e, d, 0, 1), 0), (enc_r(0x1e, d, 1, 0), 0), (enc_r(0x18, d, 4, 0), 0),
              (enc_r(0x1a, d, 5, 0), 0), (enc_r(0x06, d, RS2, 0), 0), (enc_r(0x07, d, RS2, 0), 0),
              (enc_r(0x10, d, RS2, 0), 0), (enc_r(0x1f, d, RS2, 0), 0), (enc_r(0x09, d, RS2, 0), 0)]
    for fmt in (2, 3):
        c += [(enc_r(0x00, fmt, RS2, 0), 0), (enc_r(0x04, fmt, RS2, 0), 0), (enc_r(0x1c, fmt, 0, 1), 0),
              (enc_r4(0x43, fmt, 0), 0), (enc_r4(0x4b, fmt, 0), 0)]
    c += [(enc_r(0x08, 0, 0, 0), 0), (enc_r(0x08, 1, 1, 0), 0), (enc_r(0x08, 0, 2, 0), 0),
          (enc_r(0x08, 0, 3, 0), 0), (enc_r(0x08, 1, 3, 0), 0), (enc_r(0x08, 1, 0, 5), 0),
          (enc_r(0x08, 0, 1, 7), 6), (enc_r(0x08, 1, 0, 7), 5), (enc_r(0x1a, 1, 0, 7), 7)]
    return c


# ---------------------------------------------------------------- programs
HARNESS = r"""
    li t0, 0x6000               /* mstatus.FS = dirty */
    csrs mstatus, t0
    csrwi fcsr, 0
    la s2, stubs
    li s9, 0                    /* check counter */
    li s10, SENTINEL
    la s0, vec_start
    la s1, vec_end
next_rec:
    bgeu s0, s1, vec_done
    lwu s4, 0(s0)               /* first stub */
    lwu s5, 4(s0)               /* info */
    ld a1, 8(s0)
    ld a2, 16(s0)
    ld a3, 24(s0)
    fmv.d.x f11, a1
    fmv.d.x f12, a2
    fmv.d.x f13, a3
    addi s6, s0, 32             /* expected results */
    slli s4, s4, 3
    add s4, s4, s2
    li s7, 0                    /* variant = rounding mode */
    li s8, 1
    andi t0, s5, 1
    beqz t0, var_loop
    li s8, 5
var_loop:
    addi t0, s7, 1              /* static rm: frm holds another mode */
    li t1, 5
    bne t0, t1, 1f
    li t0, 0
1:  csrw frm, t0
    slli t1, s7, 3
    add t2, s4, t1
    jal ra, run_check
    andi t0, s5, 1
    beqz t0, 2f
    csrw frm, s7                /* dynamic rm */
    addi t2, s4, 40
    jal ra, run_check
2:  andi t0, s5, 4
    bnez t0, 3f
    addi s6, s6, 8
3:  addi s7, s7, 1
    blt s7, s8, var_loop
    andi t0, s5, 4
    beqz t0, 4f
    addi s6, s6, 8
4:  mv s0, s6
    j next_rec

/* runs the stub at t2 and checks (or prints) result and fflags */
run_check:
    mv s11, ra
    addi s9, s9, 1
    mv TESTNUM, s9
    csrwi fflags, 0
    mv a0, s10
    fmv.d.x f10, s10
    jalr ra, 0(t2)
    frflags t3
    andi t0, s5, 2
    bnez t0, 1f
    fmv.x.d a0, f10
1:
#ifdef FP_DUMP
    mv a5, a0
    li a6, 16
    jal ra, put_hex
    li a4, 32
    jal ra, put_char
    mv a5, t3
    li a6, 2
    jal ra, put_hex
    li a4, 10
    jal ra, put_char
#else
    ld t1, 0(s6)
    bne a0, t1, fail
    li t0, 5
    mul t0, t0, s7
    addi t0, t0, 3
    srl t1, s5, t0
    andi t1, t1, 31
    bne t3, t1, fail
#endif
    jr s11

vec_done:
    la s0, ill_start
    la s1, ill_end
    la t0, ill_trap
    csrw mtvec, t0
ill_loop:
    bgeu s0, s1, ill_done
    lwu s4, 0(s0)
    lwu t0, 4(s0)
    csrw frm, t0
    addi s9, s9, 1
    mv TESTNUM, s9
    csrwi fflags, 0
    mv a0, s10
    fmv.d.x f10, s10
    li s3, 0
    slli t2, s4, 3
    add t2, t2, s2
    jalr ra, 0(t2)
    frflags t3
    fmv.x.d t4, f10
#ifdef FP_DUMP
    li a4, 78
    beqz s3, 1f
    li a4, 84
1:  jal ra, put_char
    li a4, 10
    jal ra, put_char
#else
    beqz s3, fail               /* no illegal-instruction trap */
    bnez t3, fail               /* no state change */
    bne a0, s10, fail
    bne t4, s10, fail
#endif
    addi s0, s0, 8
    j ill_loop
    .align 2
ill_trap:
    csrr t0, mcause
    li t1, 2
    beq t0, t1, 1f
    addi TESTNUM, t0, 1000
    j fail
1:  csrr t0, mepc
    addi t0, t0, 4
    csrw mepc, t0
    li s3, 1
    mret
ill_done:
    la t0, unexpected_trap
    csrw mtvec, t0
    csrwi fcsr, 0
    TEST_PASS

#ifdef FP_DUMP
put_hex:                        /* prints the a6 low hex digits of a5 */
    mv s3, ra
1:  addi a6, a6, -1
    slli t0, a6, 2
    srl a4, a5, t0
    andi a4, a4, 15
    li t0, 10
    blt a4, t0, 2f
    addi a4, a4, 39
2:  addi a4, a4, 48
    jal ra, put_char
    bnez a6, 1b
    jr s3
put_char:                       /* HTIF console putchar of a4 */
    li t5, 0x0101000000000000
    or t5, t5, a4
    la t6, tohost
    sd t5, 0(t6)
    ret
#endif
"""


def layout(recs, illegal):
    """assigns stubs: rounding ops get 6 (rm 0..4, 7), others 1"""
    stubs, index = [], {}
    for r in recs:
        op = r["op"]
        key = op.enc(0)
        if key not in index:
            index[key] = len(stubs)
            stubs += [op.enc(rm) for rm in (0, 1, 2, 3, 4, 7)] if op.rnd else [op.enc(0)]
        r["stub"] = index[key]
    ill = []
    for insn, frm in illegal:
        if insn not in index:
            index[insn] = len(stubs)
            stubs.append(insn)
        ill.append((index[insn], frm))
    return stubs, ill


def hx(v):
    return f"0x{v:x}"


def program(name, recs, stubs, ill, dump):
    out = []
    out.append(f"/* FP golden vectors: {name}. Generated by tests/isa/gen/gen_fp.py from results of")
    out.append(" * qemu-system-riscv64 (softfloat); do not edit. Each record runs in every rounding")
    out.append(" * mode, static and dynamic, and checks rd and fflags bit-exactly; then encodings")
    out.append(" * that must be illegal are checked to trap with no state change.")
    out.append(" * Record: .word first stub, info (bit 0 rounding op: 5 modes; bit 1 result in x10;")
    out.append(" * bit 2 one result for all modes; bits 3+5m: fflags in mode m); .dword rs1, rs2, rs3")
    out.append(" * operands (x and f registers 11-13); .dword expected results. */")
    if dump:
        out.append("#define FP_DUMP 1")
    out.append('#include "test.h"')
    out.append(f"#define SENTINEL {hx(SENTINEL)}")
    out.append("TEST_BEGIN")
    out.append('#include "fp_harness.inc"')
    out.append("    .align 3")
    out.append("    .option push")
    out.append("    .option norvc")
    out.append("stubs:")
    for s in stubs:
        out.append(f"    .word {hx(s)}; jalr x0, 0(ra)")
    out.append("    .option pop")
    out.append("    .data")
    out.append("    .align 3")
    out.append("vec_start:")
    for r in recs:
        if dump:
            res = [0] * (5 if r["op"].rnd else 1)
            info = (1 if r["op"].rnd else 0) | (2 if r["op"].xres else 0)
        else:
            res = r["res"]
            info = r["info"]
        vals = ",".join(hx(v) for v in [r["a"], r["b"], r["c"]] + res)
        out.append(f"    .word {r['stub']},{hx(info)}; .dword {vals}  /* {r['op'].name} */")
    out.append("vec_end:")
    out.append("ill_start:")
    for s, frm in ill:
        out.append(f"    .word {s},{frm}")
    out.append("ill_end:")
    return "\n".join(out) + "\n"


def run_qemu(src, tmp, name):
    s = os.path.join(tmp, name + ".S")
    elf = os.path.join(tmp, name + ".elf")
    with open(s, "w") as fh:
        fh.write(src)
    inc = os.path.join(ROOT, "tests", "isa")
    subprocess.run([RV_CC] + RV_CFLAGS + ["-I" + inc, "-T", os.path.join(inc, "link.ld"), "-o", elf, s],
                   check=True)
    out = os.path.join(tmp, name + ".out")
    # A file chardev: stdio may drop characters when the pipe is full.
    p = subprocess.run([QEMU, "-M", "spike", "-bios", "none", "-kernel", elf, "-display", "none",
                        "-monitor", "none", "-serial", "file:" + out],
                       stdout=subprocess.DEVNULL, timeout=1800, check=False)
    if p.returncode != 0:
        sys.exit(f"{name}: qemu exited with {p.returncode}")
    with open(out) as fh:
        return fh.read().replace("\r", "").split("\n")


def collect(recs, ill, lines):
    want = sum(10 if r["op"].rnd else 1 for r in recs) + len(ill)
    if len(lines) != want + 1 or lines[want] != "":
        sys.exit(f"probe output has {len(lines) - 1} lines, expected {want}")
    for i, line in enumerate(lines[:want]):
        ok = line in ("T", "N") if i >= want - len(ill) else (
            len(line) == 19 and line[16] == " " and all(c in "0123456789abcdef" for c in line[:16] + line[17:]))
        if not ok:
            sys.exit(f"malformed probe output line {i}: {line!r}")
    pos = 0
    for r in recs:
        n = 5 if r["op"].rnd else 1
        res, flags = [], []
        for m in range(n):
            v, f = lines[pos].split()
            pos += 1
            if r["op"].rnd:
                v2, f2 = lines[pos].split()
                pos += 1
                if (v2, f2) != (v, f):
                    sys.exit(f"static/dynamic mismatch for {r['op'].name}")
            res.append(int(v, 16))
            flags.append(int(f, 16))
        info = (1 if r["op"].rnd else 0) | (2 if r["op"].xres else 0)
        for m, f in enumerate(flags):
            info |= f << (3 + 5 * m)
        if all(x == res[0] for x in res):
            info |= 4
            res = res[:1]
        r["res"], r["info"] = res, info
    for i, _ in enumerate(ill):
        if lines[pos] != "T":
            sys.exit(f"illegal case {i} did not trap on QEMU")
        pos += 1


def header(all_recs):
    out = ["/* FP golden vectors for test_fpu.c, generated by tests/isa/gen/gen_fp.py from",
           " * results of qemu-system-riscv64 (softfloat); do not edit.",
           " * Each record: insn | info << 32 (insn with rm = 0 for rounding ops; info as in",
           " * tests/isa/fp_*.S: bit 0 rounding op, bit 1 integer result, bit 2 one result",
           " * for all modes, bits 3+5m fflags in mode m), rs1, rs2, rs3 operands, then 5",
           " * results (1 if bit 2). Registers: rd 10, rs1 11, rs2 12, rs3 13. */",
           "#ifndef NIMBUS_TESTS_FPU_VECTORS_H", "#define NIMBUS_TESTS_FPU_VECTORS_H",
           "#include <stdint.h>", f"#define FPU_VEC_RECORDS {len(all_recs)}",
           "static const uint64_t fpu_vectors[] = {"]
    for r in all_recs:
        vals = [r["op"].enc(0) | (r["info"] << 32), r["a"], r["b"], r["c"]] + r["res"]
        out.append("    " + ",".join(hx(v) for v in vals) + ",")
    out.append("};")
    ill = illegal_cases()
    out.append(f"#define FPU_ILLEGAL_COUNT {len(ill)}")
    out.append("/* insn | frm << 32: must be rejected (-1) with no state change */")
    out.append("static const uint64_t fpu_illegal[] = {")
    for i in range(0, len(ill), 6):
        out.append("    " + ",".join(hx(insn | frm << 32) for insn, frm in ill[i:i + 6]) + ",")
    out.append("};")
    out.append("#endif")
    return "\n".join(out) + "\n"


def main():
    global ROOT
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", default=os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--scale", type=int, default=1,
                    help="multiply the random cases (for one-off deep checks; commit scale 1)")
    args = ap.parse_args()
    ROOT = args.repo
    rng = random.Random(args.seed)
    groups = build_groups(rng, args.scale)
    all_recs = []
    total = 0
    with open(os.path.join(ROOT, "tests", "isa", "fp_harness.inc"), "w") as fh:
        fh.write("/* Runner shared by the generated FP programs (tests/isa/fp_*.S): walks the\n"
                 " * vector table in every rounding mode, checks results and fflags, then the\n"
                 " * encodings that must trap. Written by tests/isa/gen/gen_fp.py; do not edit. */"
                 + HARNESS)
    with tempfile.TemporaryDirectory() as tmp:
        for name, recs in groups.items():
            ill = illegal_cases() if name == "ops" else []
            stubs, ill_l = layout(recs, ill)
            lines = run_qemu(program(name, recs, stubs, ill_l, True), tmp, "probe_" + name)
            collect(recs, ill_l, lines)
            src = program(name, recs, stubs, ill_l, False)
            with open(os.path.join(ROOT, "tests", "isa", f"fp_{name}.S"), "w") as fh:
                fh.write(src)
            checks = sum((10 if r["op"].rnd else 1) for r in recs) + len(ill_l)
            total += checks
            print(f"fp_{name}.S: {len(recs)} records, {checks} checks, {len(src) // 1024} KiB")
            all_recs += recs
    with open(os.path.join(ROOT, "tests", "unit", "fpu_vectors.h"), "w") as fh:
        fh.write(header(all_recs))
    print(f"total {len(all_recs)} records, {total} checks")


if __name__ == "__main__":
    main()
