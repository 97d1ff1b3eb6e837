/* Differential test of the binary translator against the interpreter, its
 * reference: two identical harts on two identical memories run the same
 * random program, one interpreted, one with the translator (translating
 * every block at once, or after a few runs), in the same chunks of steps.
 * After every chunk the architectural state must be equal: x[], pc,
 * privilege, instret (insn_count), the trap CSRs, mstatus, and all of RAM.
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
 * Some rounds have few branches, mostly not taken, for long superblocks;
 * half of those have no instruction translated through a helper call.
 *
 * A quarter of the stream is F and D: loads and stores (c.fld/c.fsd/
 * c.fldsp/c.fsdsp too) on the same pages, moves, sign injection, every
 * arithmetic, conversion, compare and fused op in static and dynamic
 * rounding modes including the reserved ones, invalid formats, reads and
 * writes of fflags/frm/fcsr, and mstatus.FS switched off and on (so FP
 * instructions also trap as illegal). f[] starts with NaN-boxed and
 * unboxed singles, signalling and quiet NaNs, infinities, -0 and
 * subnormals; f[] and fcsr are compared too.
 * Deterministic: a fixed seed per round. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rv_encode.h"
#include "cpu/cpu_internal.h"
#include "cpu/jit/jit.h"
#include "mem/guest_mem.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1ull << 20)
#define ROUNDS 60
#define CHUNKS 400

#define CODE_VA   0x10000ull
#define CODE_PA   (RAM_BASE + 0x10000)
#define CODE_INSNS 3072           /* page A, then B1 and B2, which take turns at CODE_VA + 4K */
#define HANDLER_PA (RAM_BASE + 0x5800) /* block cache slots apart from the code's */
#define ROOT_PA   (RAM_BASE + 0x1000)
#define L1_PA     (RAM_BASE + 0x2000)
#define L0_PA     (RAM_BASE + 0x3000)
#define DATA_VA   0x20000ull
#define DATA_PA   (RAM_BASE + 0x20000)

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- instruction encoders (rv_encode.h), and: ---- */
static uint32_t csrrs(unsigned rd, unsigned csr) { return i_type((int32_t)csr, 0, 2, rd, 0x73) | (csr & 0x800 ? 0 : 0); }

/* Registers: x8-x11 hold data pointers the stream never overwrites;
 * x30/x31 belong to the trap handler. */
static unsigned rnd_rd(void)
{
    static const uint8_t w[] = { 0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                                 21, 22, 23, 24, 25, 26, 27, 28, 29 };
    return w[rnd() % sizeof(w)];
}
static unsigned rnd_rs(void) { return (unsigned)(rnd() % 32); }

/* R-type ops: funct7, funct3, opcode. */
static const struct { uint8_t f7, f3, opc; } r_ops[] = {
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
static uint32_t random_op_imm(unsigned rd, unsigned rs1)
{
    int32_t imm = (int32_t)(rnd() % 4096) - 2048;
    unsigned sh = (unsigned)(rnd() % 64), sh5 = (unsigned)(rnd() % 32);
    switch (rnd() % 22) {
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
    case 14: return i_type((int32_t)(0x600 | (rnd() % 6)), rs1, 1, rd, 0x13); /* clz ctz cpop sext.b/h */
    case 15: return i_type((int32_t)(0x600 | (rnd() % 3)), rs1, 1, rd, 0x1b); /* clzw ctzw cpopw */
    case 16: return i_type((int32_t)(0x600 | sh), rs1, 5, rd, 0x13);  /* rori */
    case 17: return i_type((int32_t)(0x600 | sh5), rs1, 5, rd, 0x1b); /* roriw */
    case 18: return i_type((int32_t)((rnd() & 1) ? 0x287 : 0x6b8), rs1, 5, rd, 0x13); /* orc.b, rev8 */
    case 19: return i_type((int32_t)(0x080 | sh), rs1, 1, rd, 0x1b);  /* slli.uw */
    case 20: {                                                      /* bseti bclri binvi bexti */
        static const uint16_t hi[] = { 0x280, 0x480, 0x680, 0x480 };
        unsigned k = (unsigned)(rnd() % 4);
        return i_type((int32_t)(hi[k] | sh), rs1, k == 3 ? 5 : 1, rd, 0x13);
    }
    default: return r_type(0x04, 0, rs1, 4, rd, 0x3b);               /* zext.h */
    }
}

static unsigned rnd_base(void)
{
    return (rnd() % 10) < 8 ? 8 + (unsigned)(rnd() % 4) : rnd_rs();
}

/* Interesting FP bit patterns: binary64 and NaN-boxed binary32 zeros,
 * infinities, quiet and signalling NaNs, subnormals, 1, limits of the
 * integer conversions; and binary32 values that are not NaN-boxed. */
static const uint64_t fp_specials[] = {
    0, 1ull << 63, 0x7ff0000000000000ull, 0xfff0000000000000ull, 0x7ff8000000000000ull,
    0x7ff4000000000000ull, 0xfff8000000000001ull, 1, 0x800fffffffffffffull,
    0x3ff0000000000000ull, 0xbff8000000000000ull, 0x41e0000000000000ull, 0xc3e0000000000000ull,
    0x7fefffffffffffffull, 0x0010000000000000ull, 0x43f0000000000000ull,
    0xffffffff00000000ull, 0xffffffff80000000ull, 0xffffffff7f800000ull, 0xffffffffff800000ull,
    0xffffffff7fc00000ull, 0xffffffff7fa00000ull, 0xffffffff00000001ull, 0xffffffff807fffffull,
    0xffffffff3f800000ull, 0xffffffff4f000000ull, 0xffffffffdf000000ull, 0xffffffff7f7fffffull,
    0x3f800000ull, 0x00000000ffffffffull, 0xfffffffe3f800000ull,
};
#define N_FP_SPECIALS (sizeof(fp_specials) / sizeof(fp_specials[0]))

static uint64_t rnd_fp_value(void)
{
    return (rnd() % 3) ? fp_specials[rnd() % N_FP_SPECIALS] : rnd();
}

/* A rounding mode: mostly dynamic or RNE, sometimes the reserved 5 and 6. */
static unsigned rnd_rm(void)
{
    static const uint8_t rm[] = { 7, 7, 7, 0, 0, 1, 2, 3, 4, 5, 6 };
    return rm[rnd() % sizeof(rm)];
}

/* S or D, now and then the reserved H/Q encodings. */
static unsigned rnd_fmt(void) { return (rnd() % 16) ? (unsigned)(rnd() & 1) : 2 + (unsigned)(rnd() & 1); }

/* One F/D word (two compressed instructions for c.fld & co). May use the
 * next word (returns the index of the last word written). `native`: only
 * kinds the translator emits without a helper call. */
static unsigned random_fp(uint32_t *code, unsigned i, bool native)
{
    unsigned frd = (unsigned)(rnd() % 32), fs1 = (unsigned)(rnd() % 32), fs2 = (unsigned)(rnd() % 32);
    unsigned fs3 = (unsigned)(rnd() % 32), fmt = rnd_fmt(), rm = rnd_rm();
    unsigned k = (unsigned)(rnd() % (native ? 44 : 100));
    uint32_t w;
    if (k < 14) {                                                    /* flw, fld */
        int32_t imm = (int32_t)(rnd() % 48) - 16;
        w = i_type(imm, rnd_base(), 2 + (unsigned)(rnd() & 1), frd, 0x07);
    } else if (k < 24) {                                             /* fsw, fsd */
        int32_t imm = (int32_t)(rnd() % 48) - 16;
        w = s_type(imm, fs2, rnd_base(), 2 + (unsigned)(rnd() & 1)) | 0x04;
    } else if (k < 30) {                                             /* c.fld, c.fsd, c.fldsp, c.fsdsp */
        uint16_t h[2];
        for (int n = 0; n < 2; n++) {
            unsigned r3 = (unsigned)(rnd() % 8), b3 = (unsigned)(rnd() % 4);
            unsigned u = (unsigned)(rnd() % 32) << 3;
            switch (rnd() % 5) {
            case 0: h[n] = (uint16_t)(1u << 13 | ((u >> 3) & 7) << 10 | b3 << 7 | ((u >> 6) & 3) << 5 | r3 << 2); break;
            case 1: h[n] = (uint16_t)(5u << 13 | ((u >> 3) & 7) << 10 | b3 << 7 | ((u >> 6) & 3) << 5 | r3 << 2); break;
            case 2: h[n] = (uint16_t)(1u << 13 | ((u >> 5) & 1) << 12 | frd << 7 | ((u >> 3) & 3) << 5 | ((u >> 6) & 7) << 2 | 2); break;
            case 3: h[n] = (uint16_t)(5u << 13 | ((u >> 3) & 7) << 10 | ((u >> 6) & 7) << 7 | fs2 << 2 | 2); break;
            default: h[n] = 0x0001; break;                           /* c.nop */
            }
        }
        w = (uint32_t)h[0] | (uint32_t)h[1] << 16;
    } else if (k < 36) {                                             /* fmv.{w,d}.x, fmv.x.{w,d}, fclass */
        unsigned t = (unsigned)(rnd() % (native ? 2 : 3));
        w = t == 0 ? r_type(0x1e << 2 | fmt, 0, rnd_rs(), 0, frd, 0x53)
                   : r_type(0x1c << 2 | fmt, 0, fs1, t - 1, rnd_rd(), 0x53);
    } else if (k < 44) {                                             /* fsgnj, fsgnjn, fsgnjx (3: reserved) */
        unsigned f3 = (rnd() % 8) ? (unsigned)(rnd() % 3) : 3;
        w = r_type(0x04 << 2 | fmt, (rnd() % 4) ? fs2 : fs1, fs1, f3, frd, 0x53);
    } else if (k < 60) {                                             /* fadd fsub fmul fdiv */
        w = r_type((unsigned)(rnd() % 4) << 2 | fmt, fs2, fs1, rm, frd, 0x53);
    } else if (k < 63) {                                             /* fsqrt */
        w = r_type(0x0b << 2 | fmt, (rnd() % 8) ? 0 : 1, fs1, rm, frd, 0x53);
    } else if (k < 67) {                                             /* fmin, fmax */
        w = r_type(0x05 << 2 | fmt, fs2, fs1, (unsigned)(rnd() % 3), frd, 0x53);
    } else if (k < 70) {                                             /* fcvt.s.d, fcvt.d.s */
        w = r_type(0x08 << 2 | fmt, (rnd() % 8) ? 1 - (fmt & 1) : fmt & 1, fs1, rm, frd, 0x53);
    } else if (k < 75) {                                             /* feq flt fle */
        w = r_type(0x14 << 2 | fmt, fs2, fs1, (unsigned)(rnd() % 4), rnd_rd(), 0x53);
    } else if (k < 80) {                                             /* fcvt.{w,wu,l,lu}.fmt */
        w = r_type(0x18 << 2 | fmt, (unsigned)(rnd() % 5), fs1, rm, rnd_rd(), 0x53);
    } else if (k < 85) {                                             /* fcvt.fmt.{w,wu,l,lu} */
        w = r_type(0x1a << 2 | fmt, (unsigned)(rnd() % 5), rnd_rs(), rm, frd, 0x53);
    } else if (k < 93) {                                             /* fmadd fmsub fnmsub fnmadd */
        w = fs3 << 27 | fmt << 25 | fs2 << 20 | fs1 << 15 | rm << 12 | frd << 7 |
            (0x43 | (unsigned)(rnd() % 4) << 2);
    } else if (k < 97) {                                             /* fflags, frm, fcsr */
        static const uint8_t f3[] = { 1, 2, 3, 5, 6, 7 };
        unsigned csr = 1 + (unsigned)(rnd() % 3);
        unsigned src = (rnd() & 1) ? rnd_rs() : (unsigned)(rnd() % 32);
        w = i_type((int32_t)csr, src, f3[rnd() % 6], rnd_rd(), 0x73);
    } else if (i + 1 < CODE_INSNS) {                                 /* mstatus.FS off or on */
        unsigned t = 12 + (unsigned)(rnd() % 18);
        bool off = rnd() % 3 == 0;
        code[i++] = (uint32_t)((off ? 6u : 2u + 4u * (unsigned)(rnd() & 1)) << 12 | t << 7 | 0x37);
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
static void make_program(uint32_t *code, bool straight, bool native)
{
    for (unsigned i = 0; i < CODE_INSNS; i++) {
        unsigned rd = rnd_rd(), rs1 = rnd_rs(), rs2 = rnd_rs();
        uint32_t w;
        if (rnd() % 4 == 0) {
            i = random_fp(code, i, native);
            continue;
        }
        unsigned k = (unsigned)(rnd() % 100);
        if (native && k < 50) {                                      /* RV64I ALU ops */
            static const uint8_t f3[] = { 0, 2, 3, 4, 6, 7 };
            unsigned o = (unsigned)(rnd() % 15);
            w = (k & 1) ? r_type(r_ops[o].f7, rs2, rs1, r_ops[o].f3, rd, r_ops[o].opc)
                        : i_type((int32_t)(rnd() % 4096) - 2048, rs1, f3[rnd() % 6], rd, 0x13);
        } else if (straight && k >= 76 && k < 92) {
            if (k < 78)                                              /* bne x0, x0: not taken */
                w = b_type(((int32_t)(rnd() % 40) - 12) * 4, 0, 0, 1);
            else
                w = random_op_imm(rd, rs1);
        } else if (k < 4) {                                                 /* LR, SC, AMOs */
            static const uint8_t f5[] = { 0x02, 0x03, 0x03, 0x00, 0x01, 0x04, 0x08, 0x0c,
                                          0x10, 0x14, 0x18, 0x1c };
            unsigned f = f5[rnd() % sizeof(f5)], base = rnd_base(), f3 = 2 + (unsigned)(rnd() & 1);
            if (f == 0x03 && (rnd() & 1) && i + 1 < CODE_INSNS)    /* an LR/SC pair */
                code[i++] = r_type(0x02 << 2, 0, base, f3, rnd_rd(), 0x2f);
            w = r_type(f << 2 | (unsigned)(rnd() & 3), f == 0x02 ? 0 : rs2, base, f3, rd, 0x2f);
        } else if (k < 30) {
            unsigned o = (unsigned)(rnd() % (sizeof(r_ops) / sizeof(r_ops[0])));
            w = r_type(r_ops[o].f7, rs2, rs1, r_ops[o].f3, rd, r_ops[o].opc);
        } else if (k < 50) {
            w = random_op_imm(rd, rs1);
        } else if (k < 53) {
            w = (uint32_t)(rnd() & 0xfffff000) | rd << 7 | ((rnd() & 1) ? 0x37 : 0x17); /* lui/auipc */
        } else if (k < 66) {                                         /* loads */
            static const uint8_t f3[] = { 0, 1, 2, 3, 4, 5, 6 };
            int32_t imm = (int32_t)(rnd() % 48) - 16;
            w = i_type(imm, rnd_base(), f3[rnd() % 7], rd, 0x03);
        } else if (k < 76) {                                         /* stores */
            int32_t imm = (int32_t)(rnd() % 48) - 16;
            w = s_type(imm, rs2, rnd_base(), (unsigned)(rnd() % 4));
        } else if (k < 86) {                                         /* branches */
            static const uint8_t f3[] = { 0, 1, 4, 5, 6, 7 };
            int32_t off = ((int32_t)(rnd() % 40) - 12) * 4;
            w = b_type(off, rs2, rs1, f3[rnd() % 6]);
        } else if (k < 89) {                                         /* jal */
            int32_t off = ((int32_t)(rnd() % 40) - 8) * 4;
            w = j_type(off, rd);
        } else if (k < 92 && i + 1 < CODE_INSNS) {                   /* auipc + jalr */
            unsigned t = 12 + (unsigned)(rnd() % 18);
            code[i++] = (uint32_t)(t << 7 | 0x17);
            int32_t off = ((int32_t)(rnd() % 40) - 8) * 4 + (int32_t)(rnd() % 2);
            w = i_type(off, t, 0, rd, 0x67);
        } else if (k < 93) {                                         /* jalr through any register */
            w = i_type((int32_t)(rnd() % 64), rs1, 0, rd, 0x67);
        } else if (k < 94) {                                         /* call, return, other page */
            unsigned m = (unsigned)(rnd() % 3);
            if (m == 0) {
                w = j_type(((int32_t)(rnd() % 40) - 8) * 4, 1);      /* jal ra */
            } else if (m == 1) {
                w = i_type(0, 1, 0, 0, 0x67);                        /* ret */
            } else if (i + 1 < CODE_INSNS) {                         /* auipc t, +-4K; jalr */
                unsigned t = 12 + (unsigned)(rnd() % 18);
                code[i++] = (uint32_t)((rnd() & 1) ? 0x1000 : 0xfffff000) | t << 7 | 0x17;
                w = i_type(((int32_t)(rnd() % 40) - 8) * 4, t, 0, rd, 0x67);
            } else {
                w = 0x00000013;
            }
        } else if (k < 97) {                                         /* counters */
            w = csrrs(rd, (rnd() & 1) ? 0xc02 : 0xc00);
        } else if (k < 98) {
            w = 0x00000073;                                          /* ecall */
        } else if (k < 99) {
            w = 0x0000100f;                                          /* fence.i */
        } else {
            w = (rnd() & 1) ? 0 : 0x0000000f;                        /* illegal / fence */
        }
        code[i] = w;
    }
}

struct board {
    struct guest_mem mem;
    struct hart *hart;
};

static void map4k(uint8_t *ram, uint64_t va, uint64_t pa, uint64_t flags)
{
    uint64_t *l0 = (uint64_t *)(ram + (L0_PA - RAM_BASE));
    l0[(va >> 12) & 0x1ff] = (pa >> 12) << 10 | flags;
}

/* Memory image: page tables, handler, program. */
static void build_image(uint8_t *ram, bool straight, bool native)
{
    memset(ram, 0, RAM_SIZE);
    uint64_t *root = (uint64_t *)(ram + (ROOT_PA - RAM_BASE));
    uint64_t *l1 = (uint64_t *)(ram + (L1_PA - RAM_BASE));
    root[0] = (L1_PA >> 12) << 10 | 1;
    l1[0] = (L0_PA >> 12) << 10 | 1;
    enum { V = 1, R = 2, W = 4, X = 8, A = 64, D = 128 };
    map4k(ram, CODE_VA, CODE_PA, V | R | X | A);
    map4k(ram, CODE_VA + 0x1000, CODE_PA + 0x1000, V | R | X | A);
    for (int p = 0; p < 4; p++)
        map4k(ram, DATA_VA + 0x1000ull * p, DATA_PA + 0x1000ull * p, V | R | W | A | D);
    map4k(ram, DATA_VA + 0x4000, DATA_PA + 0x4000, V | R | A);         /* read-only */
    /* DATA_VA + 0x5000: unmapped */
    map4k(ram, DATA_VA + 0x6000, 0x1000, V | R | W | A | D);           /* physical hole */
    map4k(ram, DATA_VA + 0x7000, DATA_PA + 0x7000, V | R | W | A);     /* not dirty yet */

    /* M-mode handler: skip the instruction; after a fetch fault go on at
     * an offset in the program taken from minstret (the same on both
     * harts, or the test fails anyway), so execution spreads over all of
     * it instead of repeating one path. */
    uint32_t handler[] = {
        csrrs(31, 0x341),                 /* csrr x31, mepc */
        i_type(4, 31, 0, 31, 0x13),       /* addi x31, x31, 4 */
        csrrs(30, 0x342),                 /* csrr x30, mcause */
        i_type(-12, 30, 0, 30, 0x13),     /* addi x30, x30, -12 */
        b_type(28, 0, 30, 1),             /* bne x30, x0, +28 */
        csrrs(31, 0xb02),                 /* csrr x31, minstret */
        i_type(51, 31, 1, 31, 0x13),      /* slli x31, x31, 51 */
        i_type(51, 31, 5, 31, 0x13),      /* srli x31, x31, 51 */
        i_type(-4, 31, 7, 31, 0x13),      /* andi x31, x31, -4 */
        (uint32_t)(CODE_VA | 30 << 7 | 0x37), /* lui x30, CODE_VA (8K-aligned) */
        r_type(0, 30, 31, 6, 31, 0x33),   /* or x31, x31, x30 */
        i_type(0x341, 31, 1, 0, 0x73),    /* csrw mepc, x31 */
        0x30200073,                       /* mret */
    };
    memcpy(ram + (HANDLER_PA - RAM_BASE), handler, sizeof(handler));
    for (uint64_t off = 0x20000; off < 0x28000; off += 8) {
        uint64_t v = (rnd() % 4) ? rnd() : rnd_fp_value();
        memcpy(ram + off, &v, 8);
    }
    make_program((uint32_t *)(ram + (CODE_PA - RAM_BASE)), straight, native);
}

/* Maps CODE_VA + 4K to B1 or B2 (as the guest would: a PTE store, then
 * sfence.vma; no fence.i). */
static void remap_code(struct hart *h, uint8_t *ram, unsigned which)
{
    enum { V = 1, R = 2, X = 8, A = 64 };
    map4k(ram, CODE_VA + 0x1000, CODE_PA + 0x1000ull * (1 + which), V | R | X | A);
    hart_flush_tlb(h);
}

static void setup_hart(struct hart *h, const uint64_t *regs, const struct fp_regs *fp, uint64_t fs)
{
    hart_reset(h, CODE_VA);
    memcpy(h->arch.x, regs, 32 * sizeof(uint64_t));
    h->arch.fp = *fp;
    h->arch.mstatus = (h->arch.mstatus & ~MSTATUS_FS) | fs;
    h->arch.x[0] = 0;
    CHECK_EQ(csr_write(h, 0x305, HANDLER_PA), 0);             /* mtvec */
    CHECK_EQ(csr_write(h, 0x306, 7), 0);                      /* mcounteren */
    CHECK_EQ(csr_write(h, 0x3b0, ~0ull >> 10), 0);            /* pmpaddr0: everything */
    CHECK_EQ(csr_write(h, 0x3a0, 0x1f), 0);                   /* pmpcfg0: NAPOT, RWX */
    CHECK_EQ(csr_write(h, 0x180, 8ull << 60 | ROOT_PA >> 12), 0); /* satp: Sv39 */
    h->arch.priv = PRIV_S;
    mmu_update_regime(h);
}

static bool same_state(const struct board *a, const struct board *b, char *why, size_t len)
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
    if (memcmp(a->mem.ram, b->mem.ram, RAM_SIZE))
        return snprintf(why, len, "memory differs"), false;
    return true;
}

int main(void)
{
    struct timebase tb;
    struct board b[2];
    timebase_init(&tb);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(guest_mem_init(&b[i].mem, RAM_BASE, RAM_SIZE), 0);
        if (posix_memalign((void **)&b[i].hart, 4096, sizeof(struct hart)))
            return 1;
        CHECK_EQ(hart_init(b[i].hart, 0, &b[i].mem, &tb, RAM_BASE), 0);
    }

    uint64_t total = 0, translated = 0, traps = 0, flushes = 0;
    unsigned mismatches = 0;
    for (unsigned round = 0; round < ROUNDS; round++) {
        rng_state = 0xd1ff0000ull + round;
        build_image(b[0].mem.ram, round % 5 == 4, round % 5 == 4 && round % 2);
        memcpy(b[1].mem.ram, b[0].mem.ram, RAM_SIZE);
        static const uint64_t specials[] = { 0, 1, ~0ull, 1ull << 63, 0x7fffffffffffffffull,
                                             0x80000000ull, 0xffffffff80000000ull, 31, 64 };
        uint64_t regs[32];
        for (int i = 0; i < 32; i++)
            regs[i] = (rnd() & 1) ? specials[rnd() % 9] : rnd();
        regs[8] = DATA_VA + 0x800;       /* read-write data */
        regs[9] = DATA_VA + 0x1ffd;      /* near a page boundary: crossing, misaligned */
        regs[10] = DATA_VA + 0x4ff8;     /* read-only page, next to the unmapped one */
        regs[11] = (rnd() & 1) ? DATA_VA + 0x6010 : DATA_VA + 0x7ff0; /* hole / not dirty */
        for (int i = 12; i < 30; i++)
            if (rnd() % 4 == 0)
                regs[i] = rnd_fp_value();
        struct fp_regs fp = { .fflags = (uint32_t)(rnd() & 31), .frm = (uint32_t)(rnd() % 8) };
        if (rnd() & 1)
            fp.frm = 0; /* RNE: as most code has it; else any, reserved ones too */
        for (int i = 0; i < 32; i++)
            fp.f[i] = rnd_fp_value();
        /* mstatus.FS: mostly Initial or Dirty, Off in some rounds */
        uint64_t fs = (uint64_t)(round % 7 == 3 ? 0 : 1 + rnd() % 3) << 13; /* not the straight rounds */
        jit_destroy(b[1].hart);
        /* Translate at once in most rounds; after a few runs in others, so
         * translated and interpreted blocks mix. Some rounds have the
         * smallest code cache, which fills and is flushed whole (chains
         * and all) many times. */
        CHECK_EQ(jit_create(b[1].hart, round % 4 == 1 ? JIT_MIN_CACHE : 1u << 20,
                            round % 3 == 2 ? 3 : 0), 0);
        for (int i = 0; i < 2; i++)
            setup_hart(b[i].hart, regs, &fp, fs);

        char why[160];
        uint64_t start = b[0].hart->insn_count;
        for (unsigned c = 0; c < CHUNKS; c++) {
            uint64_t steps = 1 + rnd() % 300;
            enum hart_exit e0 = hart_run(b[0].hart, steps);
            enum hart_exit e1 = hart_run(b[1].hart, steps);
            /* Loops with nothing to break them are common in random
             * code: now and then move both harts elsewhere in the program. */
            if (c % 4 == 3 && b[0].hart->arch.priv == PRIV_S) {
                uint64_t pc = CODE_VA + 4 * (rnd() % 2048);
                b[0].hart->arch.pc = b[1].hart->arch.pc = pc;
            }
            if (c % 16 == 9) {
                unsigned which = (unsigned)(rnd() & 1);
                for (int i = 0; i < 2; i++)
                    remap_code(b[i].hart, b[i].mem.ram, which);
            }
            traps += b[0].hart->arch.mcause != 0;
            b[0].hart->arch.mcause = b[1].hart->arch.mcause = 0;
            if (e0 != e1 || !same_state(&b[0], &b[1], why, sizeof(why))) {
                if (e0 != e1)
                    snprintf(why, sizeof(why), "exit %d vs %d", e0, e1);
                CHECK_MSG(false, "round %u chunk %u (pc %llx, %llu insns): %s", round, c,
                          (unsigned long long)b[0].hart->arch.pc,
                          (unsigned long long)b[0].hart->insn_count, why);
                mismatches++;
                break;
            }
        }
        total += b[0].hart->insn_count - start;
        struct jit_stats s;
        jit_get_stats(b[1].hart->jit, &s);
        translated += s.units;
        flushes += s.flushes;
        if (mismatches > 3)
            break;
    }
    CHECK_EQ(mismatches, 0);
    CHECK(total > 100000);
    CHECK(translated > 1000);
    CHECK(traps > 1000);
    CHECK(flushes > 10);
    printf("jit_diff: %u rounds, %llu instructions, %llu units translated, %llu cache flushes, "
           "traps seen in %llu chunks\n", ROUNDS, (unsigned long long)total,
           (unsigned long long)translated, (unsigned long long)flushes, (unsigned long long)traps);
    for (int i = 0; i < 2; i++) {
        jit_destroy(b[i].hart);
        hart_destroy(b[i].hart);
        free(b[i].hart);
        guest_mem_destroy(&b[i].mem);
    }
    return check_summary("jit_diff");
}
