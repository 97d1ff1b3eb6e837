/* Differential testing of the binary translator against the interpreter, its
 * reference: the random program generator and the harness shared by
 * tests/unit/test_jit_diff.c (fixed seeds, `make test`) and
 * tests/fuzz/fuzz_jit_diff.c (libFuzzer input bytes, `make fuzz`).
 *
 * Two identical harts on two identical memories run the same random
 * program, one interpreted, one with the translator (translating every
 * block at once, or after a few runs), in the same chunks of steps. After
 * every chunk the architectural state must be equal: x[], pc, privilege,
 * instret (insn_count), the trap CSRs, mstatus, f[], fcsr and all of RAM.
 *
 * The program runs in S-mode under Sv39 with pages that are code,
 * read-write data, read-only, not yet dirty, unmapped, and mapped to a
 * physical hole, so loads and stores take the TLB hit path, the slow path,
 * misaligned and page-crossing emulation, page faults and access faults in
 * the middle of translated units. Every trap goes to an M-mode handler
 * that skips the instruction (or restarts the program after a fetch
 * fault). The stream mixes RV64IMA, Zba/Zbb/Zbs, branches, jal, jalr
 * (through auipc), calls and returns through x1, counters (rdinstret
 * checks instret at CSR reads), ecall, fence.i and illegal words; operands
 * include 0, -1 and INT64_MIN for the division edge cases. The program
 * spans two virtual pages, and now and then the second is mapped to other
 * code (a page-table change and a TLB flush, no fence.i), so jumps between
 * pages and the translator's jump cache meet a changed fetch translation.
 * "Straight" rounds have few branches, mostly not taken, for long
 * superblocks; "native" ones have no instruction translated through a
 * helper call.
 *
 * A quarter of the stream is F and D: loads and stores (c.fld/c.fsd/
 * c.fldsp/c.fsdsp too) on the same pages, moves, sign injection, every
 * arithmetic, conversion, compare and fused op in static and dynamic
 * rounding modes including the reserved ones, invalid formats, reads and
 * writes of fflags/frm/fcsr, and mstatus.FS switched off and on (so FP
 * instructions also trap as illegal). f[] starts with NaN-boxed and
 * unboxed singles, signalling and quiet NaNs, infinities, -0 and
 * subnormals.
 *
 * Randomness (struct jd_gen): every choice of the generator (instruction
 * kinds, registers, immediates, chunk lengths...) is jd_pick(), which takes
 * bytes off `in` while there are any, then falls back to a splitmix64
 * PRNG; bulk values (RAM contents, register values) are jd_rnd(), always
 * the PRNG. With no input bytes jd_pick(g, n) is exactly jd_rnd(g) % n,
 * so the unit test's fixed seeds give the programs they always gave. */
#ifndef NIMBUS_TESTS_UNIT_JIT_DIFF_H
#define NIMBUS_TESTS_UNIT_JIT_DIFF_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rv_encode.h"
#include "cpu/cpu_internal.h"
#include "cpu/jit/jit.h"
#include "mem/guest_mem.h"

#define JD_RAM_BASE 0x80000000ull
#define JD_RAM_SIZE (1ull << 20)

#define JD_CODE_VA    0x10000ull
#define JD_CODE_PA    (JD_RAM_BASE + 0x10000)
#define JD_CODE_INSNS 3072                /* page A, then B1 and B2, which take turns at CODE_VA + 4K */
#define JD_HANDLER_PA (JD_RAM_BASE + 0x5800) /* block cache slots apart from the code's */
#define JD_ROOT_PA    (JD_RAM_BASE + 0x1000)
#define JD_L1_PA      (JD_RAM_BASE + 0x2000)
#define JD_L0_PA      (JD_RAM_BASE + 0x3000)
#define JD_DATA_VA    0x20000ull
#define JD_DATA_PA    (JD_RAM_BASE + 0x20000)
#define JD_DATA_PAGES 8

struct jd_gen {
    uint64_t state;      /* splitmix64 */
    const uint8_t *in;   /* choices come from these bytes while they last */
    size_t in_len;
};

static inline uint64_t jd_rnd(struct jd_gen *g)
{
    uint64_t z = (g->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A choice in [0, n): one input byte for n <= 256, two up to 65536 (so a
 * mutated byte changes one choice), else the PRNG. */
static inline uint64_t jd_pick(struct jd_gen *g, uint64_t n)
{
    if (!g->in_len)
        return jd_rnd(g) % n;
    uint64_t v = *g->in++;
    g->in_len--;
    if (n > 256 && g->in_len) {
        v = v << 8 | *g->in++;
        g->in_len--;
    }
    return v % n;
}

/* ---- instruction encoders (rv_encode.h), and: ---- */
static inline uint32_t jd_csrrs(unsigned rd, unsigned csr) { return i_type((int32_t)csr, 0, 2, rd, 0x73); }

/* Registers: x8-x11 hold data pointers the stream never overwrites;
 * x30/x31 belong to the trap handler. */
static inline unsigned jd_rd(struct jd_gen *g)
{
    static const uint8_t w[] = { 0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                                 21, 22, 23, 24, 25, 26, 27, 28, 29 };
    return w[jd_pick(g, sizeof(w))];
}
static inline unsigned jd_rs(struct jd_gen *g) { return (unsigned)jd_pick(g, 32); }

/* R-type ops: funct7, funct3, opcode. */
static const struct { uint8_t f7, f3, opc; } jd_r_ops[] = {
    /* RV64I */
    { 0x00, 0, 0x33 }, { 0x20, 0, 0x33 }, { 0x00, 1, 0x33 }, { 0x00, 2, 0x33 }, { 0x00, 3, 0x33 },
    { 0x00, 4, 0x33 }, { 0x00, 5, 0x33 }, { 0x20, 5, 0x33 }, { 0x00, 6, 0x33 }, { 0x00, 7, 0x33 },
    { 0x00, 0, 0x3b }, { 0x20, 0, 0x3b }, { 0x00, 1, 0x3b }, { 0x00, 5, 0x3b }, { 0x20, 5, 0x3b },
    /* M */
    { 0x01, 0, 0x33 }, { 0x01, 1, 0x33 }, { 0x01, 2, 0x33 }, { 0x01, 3, 0x33 }, { 0x01, 4, 0x33 },
    { 0x01, 5, 0x33 }, { 0x01, 6, 0x33 }, { 0x01, 7, 0x33 }, { 0x01, 0, 0x3b }, { 0x01, 4, 0x3b },
    { 0x01, 5, 0x3b }, { 0x01, 6, 0x3b }, { 0x01, 7, 0x3b },
    /* Zba */
    { 0x04, 0, 0x3b }, { 0x10, 2, 0x33 }, { 0x10, 4, 0x33 }, { 0x10, 6, 0x33 }, { 0x10, 2, 0x3b },
    { 0x10, 4, 0x3b }, { 0x10, 6, 0x3b },
    /* Zbb */
    { 0x20, 7, 0x33 }, { 0x20, 6, 0x33 }, { 0x20, 4, 0x33 }, { 0x05, 6, 0x33 }, { 0x05, 7, 0x33 },
    { 0x05, 4, 0x33 }, { 0x05, 5, 0x33 }, { 0x30, 1, 0x33 }, { 0x30, 5, 0x33 }, { 0x30, 1, 0x3b },
    { 0x30, 5, 0x3b },
    /* Zbs */
    { 0x24, 1, 0x33 }, { 0x24, 5, 0x33 }, { 0x34, 1, 0x33 }, { 0x14, 1, 0x33 },
};

/* I-type ALU words without rd/rs1 (shamt or sub-opcode in the immediate). */
static inline uint32_t jd_op_imm(struct jd_gen *g, unsigned rd, unsigned rs1)
{
    int32_t imm = (int32_t)jd_pick(g, 4096) - 2048;
    unsigned sh = (unsigned)jd_pick(g, 64), sh5 = (unsigned)jd_pick(g, 32);
    switch (jd_pick(g, 22)) {
    case 0: case 1: return i_type(imm, rs1, 0, rd, 0x13);           /* addi */
    case 2: return i_type(imm, rs1, 2, rd, 0x13);                   /* slti */
    case 3: return i_type(imm, rs1, 3, rd, 0x13);                   /* sltiu */
    case 4: return i_type(imm, rs1, 4, rd, 0x13);                   /* xori */
    case 5: return i_type(imm, rs1, 6, rd, 0x13);                   /* ori */
    case 6: return i_type(imm, rs1, 7, rd, 0x13);                   /* andi */
    case 7: return i_type((int32_t)sh, rs1, 1, rd, 0x13);           /* slli */
    case 8: return i_type((int32_t)sh, rs1, 5, rd, 0x13);           /* srli */
    case 9: return i_type((int32_t)(0x400 | sh), rs1, 5, rd, 0x13); /* srai */
    case 10: return i_type(imm, rs1, 0, rd, 0x1b);                  /* addiw */
    case 11: return i_type((int32_t)sh5, rs1, 1, rd, 0x1b);         /* slliw */
    case 12: return i_type((int32_t)sh5, rs1, 5, rd, 0x1b);         /* srliw */
    case 13: return i_type((int32_t)(0x400 | sh5), rs1, 5, rd, 0x1b); /* sraiw */
    case 14: return i_type((int32_t)(0x600 | jd_pick(g, 6)), rs1, 1, rd, 0x13); /* clz ctz cpop sext.b/h */
    case 15: return i_type((int32_t)(0x600 | jd_pick(g, 3)), rs1, 1, rd, 0x1b); /* clzw ctzw cpopw */
    case 16: return i_type((int32_t)(0x600 | sh), rs1, 5, rd, 0x13);  /* rori */
    case 17: return i_type((int32_t)(0x600 | sh5), rs1, 5, rd, 0x1b); /* roriw */
    case 18: return i_type(jd_pick(g, 2) ? 0x287 : 0x6b8, rs1, 5, rd, 0x13); /* orc.b, rev8 */
    case 19: return i_type((int32_t)(0x080 | sh), rs1, 1, rd, 0x1b);  /* slli.uw */
    case 20: {                                                      /* bseti bclri binvi bexti */
        static const uint16_t hi[] = { 0x280, 0x480, 0x680, 0x480 };
        unsigned k = (unsigned)jd_pick(g, 4);
        return i_type((int32_t)(hi[k] | sh), rs1, k == 3 ? 5 : 1, rd, 0x13);
    }
    default: return r_type(0x04, 0, rs1, 4, rd, 0x3b);               /* zext.h */
    }
}

static inline unsigned jd_base(struct jd_gen *g)
{
    return jd_pick(g, 10) < 8 ? 8 + (unsigned)jd_pick(g, 4) : jd_rs(g);
}

/* Interesting FP bit patterns: binary64 and NaN-boxed binary32 zeros,
 * infinities, quiet and signalling NaNs, subnormals, 1, limits of the
 * integer conversions; and binary32 values that are not NaN-boxed. */
static const uint64_t jd_fp_specials[] = {
    0, 1ull << 63, 0x7ff0000000000000ull, 0xfff0000000000000ull, 0x7ff8000000000000ull,
    0x7ff4000000000000ull, 0xfff8000000000001ull, 1, 0x800fffffffffffffull,
    0x3ff0000000000000ull, 0xbff8000000000000ull, 0x41e0000000000000ull, 0xc3e0000000000000ull,
    0x7fefffffffffffffull, 0x0010000000000000ull, 0x43f0000000000000ull,
    0xffffffff00000000ull, 0xffffffff80000000ull, 0xffffffff7f800000ull, 0xffffffffff800000ull,
    0xffffffff7fc00000ull, 0xffffffff7fa00000ull, 0xffffffff00000001ull, 0xffffffff807fffffull,
    0xffffffff3f800000ull, 0xffffffff4f000000ull, 0xffffffffdf000000ull, 0xffffffff7f7fffffull,
    0x3f800000ull, 0x00000000ffffffffull, 0xfffffffe3f800000ull,
};
#define JD_N_FP_SPECIALS (sizeof(jd_fp_specials) / sizeof(jd_fp_specials[0]))

static inline uint64_t jd_fp_value(struct jd_gen *g)
{
    return jd_pick(g, 3) ? jd_fp_specials[jd_pick(g, JD_N_FP_SPECIALS)] : jd_rnd(g);
}

/* A rounding mode: mostly dynamic or RNE, sometimes the reserved 5 and 6. */
static inline unsigned jd_rm(struct jd_gen *g)
{
    static const uint8_t rm[] = { 7, 7, 7, 0, 0, 1, 2, 3, 4, 5, 6 };
    return rm[jd_pick(g, sizeof(rm))];
}

/* S or D, now and then the reserved H/Q encodings. */
static inline unsigned jd_fmt(struct jd_gen *g)
{
    return jd_pick(g, 16) ? (unsigned)jd_pick(g, 2) : 2 + (unsigned)jd_pick(g, 2);
}

/* One F/D word (two compressed instructions for c.fld & co). May use the
 * next word (returns the index of the last word written). `native`: only
 * kinds the translator emits without a helper call. */
static inline unsigned jd_fp_insn(struct jd_gen *g, uint32_t *code, unsigned i, bool native)
{
    unsigned frd = (unsigned)jd_pick(g, 32), fs1 = (unsigned)jd_pick(g, 32), fs2 = (unsigned)jd_pick(g, 32);
    unsigned fs3 = (unsigned)jd_pick(g, 32), fmt = jd_fmt(g), rm = jd_rm(g);
    unsigned k = (unsigned)jd_pick(g, native ? 44 : 100);
    uint32_t w;
    if (k < 14) {                                                    /* flw, fld */
        int32_t imm = (int32_t)jd_pick(g, 48) - 16;
        w = i_type(imm, jd_base(g), 2 + (unsigned)jd_pick(g, 2), frd, 0x07);
    } else if (k < 24) {                                             /* fsw, fsd */
        int32_t imm = (int32_t)jd_pick(g, 48) - 16;
        w = s_type(imm, fs2, jd_base(g), 2 + (unsigned)jd_pick(g, 2)) | 0x04;
    } else if (k < 30) {                                             /* c.fld, c.fsd, c.fldsp, c.fsdsp */
        uint16_t h[2];
        for (int n = 0; n < 2; n++) {
            unsigned r3 = (unsigned)jd_pick(g, 8), b3 = (unsigned)jd_pick(g, 4);
            unsigned u = (unsigned)jd_pick(g, 32) << 3;
            switch (jd_pick(g, 5)) {
            case 0: h[n] = (uint16_t)(1u << 13 | ((u >> 3) & 7) << 10 | b3 << 7 | ((u >> 6) & 3) << 5 | r3 << 2); break;
            case 1: h[n] = (uint16_t)(5u << 13 | ((u >> 3) & 7) << 10 | b3 << 7 | ((u >> 6) & 3) << 5 | r3 << 2); break;
            case 2: h[n] = (uint16_t)(1u << 13 | ((u >> 5) & 1) << 12 | frd << 7 | ((u >> 3) & 3) << 5 | ((u >> 6) & 7) << 2 | 2); break;
            case 3: h[n] = (uint16_t)(5u << 13 | ((u >> 3) & 7) << 10 | ((u >> 6) & 7) << 7 | fs2 << 2 | 2); break;
            default: h[n] = 0x0001; break;                           /* c.nop */
            }
        }
        w = (uint32_t)h[0] | (uint32_t)h[1] << 16;
    } else if (k < 36) {                                             /* fmv.{w,d}.x, fmv.x.{w,d}, fclass */
        unsigned t = (unsigned)jd_pick(g, native ? 2 : 3);
        w = t == 0 ? r_type(0x1e << 2 | fmt, 0, jd_rs(g), 0, frd, 0x53)
                   : r_type(0x1c << 2 | fmt, 0, fs1, t - 1, jd_rd(g), 0x53);
    } else if (k < 44) {                                             /* fsgnj, fsgnjn, fsgnjx (3: reserved) */
        unsigned f3 = jd_pick(g, 8) ? (unsigned)jd_pick(g, 3) : 3;
        w = r_type(0x04 << 2 | fmt, jd_pick(g, 4) ? fs2 : fs1, fs1, f3, frd, 0x53);
    } else if (k < 60) {                                             /* fadd fsub fmul fdiv */
        w = r_type((unsigned)jd_pick(g, 4) << 2 | fmt, fs2, fs1, rm, frd, 0x53);
    } else if (k < 63) {                                             /* fsqrt */
        w = r_type(0x0b << 2 | fmt, jd_pick(g, 8) ? 0 : 1, fs1, rm, frd, 0x53);
    } else if (k < 67) {                                             /* fmin, fmax */
        w = r_type(0x05 << 2 | fmt, fs2, fs1, (unsigned)jd_pick(g, 3), frd, 0x53);
    } else if (k < 70) {                                             /* fcvt.s.d, fcvt.d.s */
        w = r_type(0x08 << 2 | fmt, jd_pick(g, 8) ? 1 - (fmt & 1) : fmt & 1, fs1, rm, frd, 0x53);
    } else if (k < 75) {                                             /* feq flt fle */
        w = r_type(0x14 << 2 | fmt, fs2, fs1, (unsigned)jd_pick(g, 4), jd_rd(g), 0x53);
    } else if (k < 80) {                                             /* fcvt.{w,wu,l,lu}.fmt */
        w = r_type(0x18 << 2 | fmt, (unsigned)jd_pick(g, 5), fs1, rm, jd_rd(g), 0x53);
    } else if (k < 85) {                                             /* fcvt.fmt.{w,wu,l,lu} */
        w = r_type(0x1a << 2 | fmt, (unsigned)jd_pick(g, 5), jd_rs(g), rm, frd, 0x53);
    } else if (k < 93) {                                             /* fmadd fmsub fnmsub fnmadd */
        w = fs3 << 27 | fmt << 25 | fs2 << 20 | fs1 << 15 | rm << 12 | frd << 7 |
            (0x43 | (unsigned)jd_pick(g, 4) << 2);
    } else if (k < 97) {                                             /* fflags, frm, fcsr */
        static const uint8_t f3[] = { 1, 2, 3, 5, 6, 7 };
        unsigned csr = 1 + (unsigned)jd_pick(g, 3);
        unsigned src = jd_pick(g, 2) ? jd_rs(g) : (unsigned)jd_pick(g, 32);
        w = i_type((int32_t)csr, src, f3[jd_pick(g, 6)], jd_rd(g), 0x73);
    } else if (i + 1 < JD_CODE_INSNS) {                              /* mstatus.FS off or on */
        unsigned t = 12 + (unsigned)jd_pick(g, 18);
        bool off = jd_pick(g, 3) == 0;
        code[i++] = (uint32_t)((off ? 6u : 2u + 4u * (unsigned)jd_pick(g, 2)) << 12 | t << 7 | 0x37);
        w = i_type(0x100, t, off ? 3 : 2, 0, 0x73);                  /* csrrc/csrrs sstatus */
    } else {
        w = 0x00000013;
    }
    code[i] = w;
    return i;
}

/* `straight`: few branches, which almost never jump (long superblocks).
 * `native`: no instruction the translator does through a helper call
 * (M, A, most of Zbb, FP arithmetic), so units keep all eight cached
 * registers, the five call-clobbered ones included. */
static inline void jd_make_program(struct jd_gen *g, uint32_t *code, bool straight, bool native)
{
    for (unsigned i = 0; i < JD_CODE_INSNS; i++) {
        unsigned rd = jd_rd(g), rs1 = jd_rs(g), rs2 = jd_rs(g);
        uint32_t w;
        if (jd_pick(g, 4) == 0) {
            i = jd_fp_insn(g, code, i, native);
            continue;
        }
        unsigned k = (unsigned)jd_pick(g, 100);
        if (native && k < 50) {                                      /* RV64I ALU ops */
            static const uint8_t f3[] = { 0, 2, 3, 4, 6, 7 };
            unsigned o = (unsigned)jd_pick(g, 15);
            w = (k & 1) ? r_type(jd_r_ops[o].f7, rs2, rs1, jd_r_ops[o].f3, rd, jd_r_ops[o].opc)
                        : i_type((int32_t)jd_pick(g, 4096) - 2048, rs1, f3[jd_pick(g, 6)], rd, 0x13);
        } else if (straight && k >= 76 && k < 92) {
            if (k < 78)                                              /* bne x0, x0: not taken */
                w = b_type(((int32_t)jd_pick(g, 40) - 12) * 4, 0, 0, 1);
            else
                w = jd_op_imm(g, rd, rs1);
        } else if (k < 4) {                                          /* LR, SC, AMOs */
            static const uint8_t f5[] = { 0x02, 0x03, 0x03, 0x00, 0x01, 0x04, 0x08, 0x0c,
                                          0x10, 0x14, 0x18, 0x1c };
            unsigned f = f5[jd_pick(g, sizeof(f5))], base = jd_base(g), f3 = 2 + (unsigned)jd_pick(g, 2);
            if (f == 0x03 && jd_pick(g, 2) && i + 1 < JD_CODE_INSNS) /* an LR/SC pair */
                code[i++] = r_type(0x02 << 2, 0, base, f3, jd_rd(g), 0x2f);
            w = r_type(f << 2 | (unsigned)jd_pick(g, 4), f == 0x02 ? 0 : rs2, base, f3, rd, 0x2f);
        } else if (k < 30) {
            unsigned o = (unsigned)jd_pick(g, sizeof(jd_r_ops) / sizeof(jd_r_ops[0]));
            w = r_type(jd_r_ops[o].f7, rs2, rs1, jd_r_ops[o].f3, rd, jd_r_ops[o].opc);
        } else if (k < 50) {
            w = jd_op_imm(g, rd, rs1);
        } else if (k < 53) {                                         /* lui/auipc */
            w = (uint32_t)(jd_rnd(g) & 0xfffff000) | rd << 7 | (jd_pick(g, 2) ? 0x37 : 0x17);
        } else if (k < 66) {                                         /* loads */
            static const uint8_t f3[] = { 0, 1, 2, 3, 4, 5, 6 };
            int32_t imm = (int32_t)jd_pick(g, 48) - 16;
            w = i_type(imm, jd_base(g), f3[jd_pick(g, 7)], rd, 0x03);
        } else if (k < 76) {                                         /* stores */
            int32_t imm = (int32_t)jd_pick(g, 48) - 16;
            w = s_type(imm, rs2, jd_base(g), (unsigned)jd_pick(g, 4));
        } else if (k < 86) {                                         /* branches */
            static const uint8_t f3[] = { 0, 1, 4, 5, 6, 7 };
            int32_t off = ((int32_t)jd_pick(g, 40) - 12) * 4;
            w = b_type(off, rs2, rs1, f3[jd_pick(g, 6)]);
        } else if (k < 89) {                                         /* jal */
            int32_t off = ((int32_t)jd_pick(g, 40) - 8) * 4;
            w = j_type(off, rd);
        } else if (k < 92 && i + 1 < JD_CODE_INSNS) {                /* auipc + jalr */
            unsigned t = 12 + (unsigned)jd_pick(g, 18);
            code[i++] = (uint32_t)(t << 7 | 0x17);
            int32_t off = ((int32_t)jd_pick(g, 40) - 8) * 4 + (int32_t)jd_pick(g, 2);
            w = i_type(off, t, 0, rd, 0x67);
        } else if (k < 93) {                                         /* jalr through any register */
            w = i_type((int32_t)jd_pick(g, 64), rs1, 0, rd, 0x67);
        } else if (k < 94) {                                         /* call, return, other page */
            unsigned m = (unsigned)jd_pick(g, 3);
            if (m == 0) {
                w = j_type(((int32_t)jd_pick(g, 40) - 8) * 4, 1);    /* jal ra */
            } else if (m == 1) {
                w = i_type(0, 1, 0, 0, 0x67);                        /* ret */
            } else if (i + 1 < JD_CODE_INSNS) {                      /* auipc t, +-4K; jalr */
                unsigned t = 12 + (unsigned)jd_pick(g, 18);
                code[i++] = (uint32_t)(jd_pick(g, 2) ? 0x1000 : 0xfffff000) | t << 7 | 0x17;
                w = i_type(((int32_t)jd_pick(g, 40) - 8) * 4, t, 0, rd, 0x67);
            } else {
                w = 0x00000013;
            }
        } else if (k < 97) {                                         /* counters */
            w = jd_csrrs(rd, jd_pick(g, 2) ? 0xc02 : 0xc00);
        } else if (k < 98) {
            w = 0x00000073;                                          /* ecall */
        } else if (k < 99) {
            w = 0x0000100f;                                          /* fence.i */
        } else {
            w = jd_pick(g, 2) ? 0 : 0x0000000f;                      /* illegal / fence */
        }
        code[i] = w;
    }
}

/* What a data page at DATA_VA + n * 4K is. */
enum jd_page {
    JD_PAGE_RW,        /* read-write, accessed and dirty */
    JD_PAGE_RO,        /* read-only */
    JD_PAGE_UNMAPPED,
    JD_PAGE_HOLE,      /* mapped to a physical address with nothing there */
    JD_PAGE_CLEAN,     /* read-write, not dirty yet */
    JD_PAGE_UNACCESSED, /* read-write, A clear */
    JD_PAGE_XONLY,     /* execute-only */
    JD_PAGE_RWX,
    JD_PAGE_KINDS
};

/* The unit test's layout: 16K of data, then read-only, unmapped, hole,
 * not dirty. */
static const uint8_t jd_default_layout[JD_DATA_PAGES] = {
    JD_PAGE_RW, JD_PAGE_RW, JD_PAGE_RW, JD_PAGE_RW, JD_PAGE_RO, JD_PAGE_UNMAPPED,
    JD_PAGE_HOLE, JD_PAGE_CLEAN,
};

/* What a round does. */
struct jd_round {
    bool straight, native;        /* see jd_make_program() */
    bool fs_off;                  /* mstatus.FS starts Off (else Initial/Clean/Dirty) */
    unsigned chunks;              /* hart_run() calls of 1-300 steps, compared after each */
    const uint8_t *layout;        /* JD_DATA_PAGES enum jd_page */
    /* Replay only (0: off): stop after `stop_steps` steps of chunk
     * `stop_chunk` - 1, which is compared at once. */
    unsigned stop_chunk, stop_steps;
};

struct jd_board {
    struct guest_mem mem;
    struct hart *hart;
};

/* The outcome of a round. */
struct jd_result {
    uint64_t insns, units, flushes, traps; /* traps: chunks that saw one */
    bool differ;
    unsigned chunk;               /* the chunk after which the state differed */
    uint64_t steps;               /* its length */
    char why[200];                /* the field that differs, both values */
};

static inline void jd_map4k(uint8_t *ram, uint64_t va, uint64_t pa, uint64_t flags)
{
    uint64_t *l0 = (uint64_t *)(ram + (JD_L0_PA - JD_RAM_BASE));
    l0[(va >> 12) & 0x1ff] = (pa >> 12) << 10 | flags;
}

enum { JD_V = 1, JD_R = 2, JD_W = 4, JD_X = 8, JD_A = 64, JD_D = 128 };

/* Memory image: page tables, handler, data, program. */
static inline void jd_build_image(struct jd_gen *g, uint8_t *ram, const struct jd_round *r)
{
    memset(ram, 0, JD_RAM_SIZE);
    uint64_t *root = (uint64_t *)(ram + (JD_ROOT_PA - JD_RAM_BASE));
    uint64_t *l1 = (uint64_t *)(ram + (JD_L1_PA - JD_RAM_BASE));
    root[0] = (JD_L1_PA >> 12) << 10 | JD_V;
    l1[0] = (JD_L0_PA >> 12) << 10 | JD_V;
    jd_map4k(ram, JD_CODE_VA, JD_CODE_PA, JD_V | JD_R | JD_X | JD_A);
    jd_map4k(ram, JD_CODE_VA + 0x1000, JD_CODE_PA + 0x1000, JD_V | JD_R | JD_X | JD_A);
    static const uint8_t flags[JD_PAGE_KINDS] = {
        [JD_PAGE_RW] = JD_V | JD_R | JD_W | JD_A | JD_D,
        [JD_PAGE_RO] = JD_V | JD_R | JD_A,
        [JD_PAGE_HOLE] = JD_V | JD_R | JD_W | JD_A | JD_D,
        [JD_PAGE_CLEAN] = JD_V | JD_R | JD_W | JD_A,
        [JD_PAGE_UNACCESSED] = JD_V | JD_R | JD_W,
        [JD_PAGE_XONLY] = JD_V | JD_X | JD_A,
        [JD_PAGE_RWX] = JD_V | JD_R | JD_W | JD_X | JD_A | JD_D,
    };
    for (unsigned p = 0; p < JD_DATA_PAGES; p++) {
        unsigned kind = r->layout[p] % JD_PAGE_KINDS;
        if (kind != JD_PAGE_UNMAPPED)
            jd_map4k(ram, JD_DATA_VA + 0x1000ull * p,
                     kind == JD_PAGE_HOLE ? 0x1000 : JD_DATA_PA + 0x1000ull * p, flags[kind]);
    }

    /* M-mode handler: skip the instruction; after a fetch fault go on at
     * an offset in the program taken from minstret (the same on both
     * harts, or the test fails anyway), so execution spreads over all of
     * it instead of repeating one path. */
    uint32_t handler[] = {
        jd_csrrs(31, 0x341),              /* csrr x31, mepc */
        i_type(4, 31, 0, 31, 0x13),       /* addi x31, x31, 4 */
        jd_csrrs(30, 0x342),              /* csrr x30, mcause */
        i_type(-12, 30, 0, 30, 0x13),     /* addi x30, x30, -12 */
        b_type(28, 0, 30, 1),             /* bne x30, x0, +28 */
        jd_csrrs(31, 0xb02),              /* csrr x31, minstret */
        i_type(51, 31, 1, 31, 0x13),      /* slli x31, x31, 51 */
        i_type(51, 31, 5, 31, 0x13),      /* srli x31, x31, 51 */
        i_type(-4, 31, 7, 31, 0x13),      /* andi x31, x31, -4 */
        (uint32_t)(JD_CODE_VA | 30 << 7 | 0x37), /* lui x30, CODE_VA (8K-aligned) */
        r_type(0, 30, 31, 6, 31, 0x33),   /* or x31, x31, x30 */
        i_type(0x341, 31, 1, 0, 0x73),    /* csrw mepc, x31 */
        0x30200073,                       /* mret */
    };
    memcpy(ram + (JD_HANDLER_PA - JD_RAM_BASE), handler, sizeof(handler));
    /* RAM contents are bulk values: from the PRNG, not the input bytes. */
    size_t in_len = g->in_len;
    g->in_len = 0;
    for (uint64_t off = 0x20000; off < 0x28000; off += 8) {
        uint64_t v = jd_pick(g, 4) ? jd_rnd(g) : jd_fp_value(g);
        memcpy(ram + off, &v, 8);
    }
    g->in_len = in_len;
    jd_make_program(g, (uint32_t *)(ram + (JD_CODE_PA - JD_RAM_BASE)), r->straight, r->native);
}

/* Maps CODE_VA + 4K to B1 or B2 (as the guest would: a PTE store, then
 * sfence.vma; no fence.i). */
static inline void jd_remap_code(struct hart *h, uint8_t *ram, unsigned which)
{
    jd_map4k(ram, JD_CODE_VA + 0x1000, JD_CODE_PA + 0x1000ull * (1 + which), JD_V | JD_R | JD_X | JD_A);
    hart_flush_tlb(h);
}

static inline int jd_setup_hart(struct hart *h, const uint64_t *regs, const struct fp_regs *fp, uint64_t fs)
{
    hart_reset(h, JD_CODE_VA);
    memcpy(h->arch.x, regs, 32 * sizeof(uint64_t));
    h->arch.fp = *fp;
    h->arch.mstatus = (h->arch.mstatus & ~MSTATUS_FS) | fs;
    h->arch.x[0] = 0;
    if (csr_write(h, 0x305, JD_HANDLER_PA) ||                 /* mtvec */
        csr_write(h, 0x306, 7) ||                             /* mcounteren */
        csr_write(h, 0x3b0, ~0ull >> 10) ||                   /* pmpaddr0: everything */
        csr_write(h, 0x3a0, 0x1f) ||                          /* pmpcfg0: NAPOT, RWX */
        csr_write(h, 0x180, 8ull << 60 | JD_ROOT_PA >> 12))   /* satp: Sv39 */
        return -EINVAL;
    h->arch.priv = PRIV_S;
    mmu_update_regime(h);
    return 0;
}

static inline bool jd_same_state(const struct jd_board *a, const struct jd_board *b, char *why, size_t len)
{
    const struct hart *x = a->hart, *y = b->hart;
    for (int i = 0; i < 32; i++)
        if (x->arch.x[i] != y->arch.x[i])
            return snprintf(why, len, "x%d %llx vs %llx", i, (unsigned long long)x->arch.x[i],
                            (unsigned long long)y->arch.x[i]), false;
#define SAME(f) if (x->f != y->f) return snprintf(why, len, #f " %llx vs %llx", \
        (unsigned long long)x->f, (unsigned long long)y->f), false
    SAME(arch.pc);
    SAME(insn_count);
    SAME(arch.priv);
    SAME(arch.mstatus);
    SAME(arch.mepc);
    SAME(arch.mcause);
    SAME(arch.mtval);
    SAME(arch.resv_valid);
    SAME(arch.fp.fflags);
    SAME(arch.fp.frm);
    for (int i = 0; i < 32; i++)
        if (x->arch.fp.f[i] != y->arch.fp.f[i])
            return snprintf(why, len, "f%d %llx vs %llx", i, (unsigned long long)x->arch.fp.f[i],
                            (unsigned long long)y->arch.fp.f[i]), false;
#undef SAME
    if (memcmp(a->mem.ram, b->mem.ram, JD_RAM_SIZE)) {
        size_t off = 0;
        while (a->mem.ram[off] == b->mem.ram[off])
            off++;
        return snprintf(why, len, "memory differs at %llx: %02x vs %02x",
                        (unsigned long long)(JD_RAM_BASE + off), a->mem.ram[off], b->mem.ram[off]), false;
    }
    return true;
}

/* One round on boards b[0] (interpreted) and b[1] (translated by a new or
 * jit_reset() translator): builds the image from `g`, runs r->chunks
 * chunks, comparing after each. Returns 0 (res->differ says whether the
 * states differed) or -errno. */
static inline int jd_run_round(struct jd_board *b, struct jd_gen *g, const struct jd_round *r,
                               struct jd_result *res)
{
    memset(res, 0, sizeof(*res));
    jd_build_image(g, b[0].mem.ram, r);
    memcpy(b[1].mem.ram, b[0].mem.ram, JD_RAM_SIZE);
    static const uint64_t specials[] = { 0, 1, ~0ull, 1ull << 63, 0x7fffffffffffffffull,
                                         0x80000000ull, 0xffffffff80000000ull, 31, 64 };
    uint64_t regs[32];
    for (int i = 0; i < 32; i++)
        regs[i] = jd_pick(g, 2) ? specials[jd_pick(g, 9)] : jd_rnd(g);
    regs[8] = JD_DATA_VA + 0x800;       /* read-write data */
    regs[9] = JD_DATA_VA + 0x1ffd;      /* near a page boundary: crossing, misaligned */
    regs[10] = JD_DATA_VA + 0x4ff8;     /* read-only page, next to the unmapped one */
    regs[11] = jd_pick(g, 2) ? JD_DATA_VA + 0x6010 : JD_DATA_VA + 0x7ff0; /* hole / not dirty */
    for (int i = 12; i < 30; i++)
        if (jd_pick(g, 4) == 0)
            regs[i] = jd_fp_value(g);
    struct fp_regs fp = { .fflags = (uint32_t)jd_pick(g, 32), .frm = (uint32_t)jd_pick(g, 8) };
    if (jd_pick(g, 2))
        fp.frm = 0; /* RNE: as most code has it; else any, reserved ones too */
    for (int i = 0; i < 32; i++)
        fp.f[i] = jd_fp_value(g);
    /* mstatus.FS: Off, or Initial, Clean or Dirty */
    uint64_t fs = (uint64_t)(r->fs_off ? 0 : 1 + jd_pick(g, 3)) << 13;
    int err;
    for (int i = 0; i < 2; i++)
        if ((err = jd_setup_hart(b[i].hart, regs, &fp, fs)))
            return err;

    uint64_t start = b[0].hart->insn_count;
    for (unsigned c = 0; c < r->chunks; c++) {
        uint64_t steps = 1 + jd_pick(g, 300);
        bool last = r->stop_chunk && c + 1 == r->stop_chunk;
        if (last)
            steps = r->stop_steps;
        enum hart_exit e0 = hart_run(b[0].hart, steps);
        enum hart_exit e1 = hart_run(b[1].hart, steps);
        if (!last) {
            /* Loops with nothing to break them are common in random
             * code: now and then move both harts elsewhere in the program. */
            if (c % 4 == 3 && b[0].hart->arch.priv == PRIV_S) {
                uint64_t pc = JD_CODE_VA + 4 * jd_pick(g, 2048);
                b[0].hart->arch.pc = b[1].hart->arch.pc = pc;
            }
            if (c % 16 == 9) {
                unsigned which = (unsigned)jd_pick(g, 2);
                for (int i = 0; i < 2; i++)
                    jd_remap_code(b[i].hart, b[i].mem.ram, which);
            }
            res->traps += b[0].hart->arch.mcause != 0;
            b[0].hart->arch.mcause = b[1].hart->arch.mcause = 0;
        }
        if (e0 != e1 || !jd_same_state(&b[0], &b[1], res->why, sizeof(res->why))) {
            if (e0 != e1)
                snprintf(res->why, sizeof(res->why), "exit %d vs %d", e0, e1);
            res->differ = true;
            res->chunk = c;
            res->steps = steps;
            break;
        }
        if (last)
            break;
    }
    res->insns = b[0].hart->insn_count - start;
    struct jit_stats s;
    jit_get_stats(b[1].hart->jit, &s);
    res->units = s.units;
    res->flushes = s.flushes;
    return 0;
}

/* The instruction word at virtual address `pc` of board `b` in privilege
 * `priv` (M: physical; S: through the test's page tables), or 0 if there
 * is none. */
static inline uint32_t jd_insn_at(const struct jd_board *b, uint64_t pc, unsigned priv)
{
    uint64_t pa = pc;
    if (priv != PRIV_M) {
        if (pc >= (1ull << 21))
            return 0;
        uint64_t pte;
        memcpy(&pte, b->mem.ram + (JD_L0_PA - JD_RAM_BASE) + 8 * ((pc >> 12) & 0x1ff), 8);
        if (!(pte & JD_V))
            return 0;
        pa = (pte >> 10) << 12 | (pc & 0xfff);
    }
    if (pa < JD_RAM_BASE || pa + 4 > JD_RAM_BASE + JD_RAM_SIZE)
        return 0;
    uint32_t w;
    memcpy(&w, b->mem.ram + (pa - JD_RAM_BASE), 4);
    return w;
}

#endif
