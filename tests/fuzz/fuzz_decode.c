/* Fuzz target: the instruction decoder (src/cpu/decode.c) against an
 * independent reference written here from the specs.
 *
 * Input: a 32-bit little-endian word (shorter inputs are zero-padded; each
 * further 4 bytes is another word).
 *
 * The whole 16-bit space is checked once at start-up. Checks for every word:
 *   - len is 2 exactly when the low two bits are not 11, and a 16-bit
 *     instruction decodes the same whatever the upper half holds;
 *   - op is a known opcode; register fields are < 32;
 *   - a 32-bit word decodes to what the reference table below says: the
 *     op its encoding pattern names (OP_ILLEGAL when none matches) and the
 *     operands of that pattern's format;
 *   - a 16-bit word decodes to exactly the decoding of its 32-bit expansion
 *     (unprivileged spec ch. 16, tables 16.5-16.7), or to OP_ILLEGAL when
 *     the encoding is reserved.
 *
 * The reference patterns are written as the spec draws encodings: bit 31
 * first, '0'/'1' fixed, '-' operand bits (spaces ignored). */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "cpu/decode.h"
#include "fuzz_util.h"

enum fmt {
    F_R,      /* rd, rs1, rs2 */
    F_I,      /* rd, rs1, imm[11:0] */
    F_S,      /* rs1, rs2, store offset */
    F_B,      /* rs1, rs2, branch offset */
    F_U,      /* rd, imm[31:12] << 12 */
    F_J,      /* rd, jump offset */
    F_SH6,    /* rd, rs1, shamt[5:0] */
    F_SH5,    /* rd, rs1, shamt[4:0] */
    F_UNARY,  /* rd, rs1 */
    F_CSR,    /* rd, rs1 (or uimm), csr number */
    F_AMO,    /* rd, rs1, rs2, funct5 */
    F_LR,     /* rd, rs1 */
    F_SFENCE, /* rs1, rs2 */
    F_NONE,   /* no operands */
};

struct pattern {
    const char *bits;
    enum insn_op op;
    enum fmt fmt;
    uint32_t mask, match; /* filled in from bits */
};

#define R7(f7, f3, opc) f7 " ----- ----- " f3 " ----- " opc
#define I3(f3, opc) "------------ ----- " f3 " ----- " opc
#define AMO(f5, f3) f5 " -- ----- ----- " f3 " ----- 0101111"

static struct pattern patterns[] = {
    { "------------------------- 0110111", OP_LUI, F_U, 0, 0 },
    { "------------------------- 0010111", OP_AUIPC, F_U, 0, 0 },
    { "------------------------- 1101111", OP_JAL, F_J, 0, 0 },
    { I3("000", "1100111"), OP_JALR, F_I, 0, 0 },
    { I3("000", "1100011"), OP_BEQ, F_B, 0, 0 },
    { I3("001", "1100011"), OP_BNE, F_B, 0, 0 },
    { I3("100", "1100011"), OP_BLT, F_B, 0, 0 },
    { I3("101", "1100011"), OP_BGE, F_B, 0, 0 },
    { I3("110", "1100011"), OP_BLTU, F_B, 0, 0 },
    { I3("111", "1100011"), OP_BGEU, F_B, 0, 0 },
    { I3("000", "0000011"), OP_LB, F_I, 0, 0 },
    { I3("001", "0000011"), OP_LH, F_I, 0, 0 },
    { I3("010", "0000011"), OP_LW, F_I, 0, 0 },
    { I3("011", "0000011"), OP_LD, F_I, 0, 0 },
    { I3("100", "0000011"), OP_LBU, F_I, 0, 0 },
    { I3("101", "0000011"), OP_LHU, F_I, 0, 0 },
    { I3("110", "0000011"), OP_LWU, F_I, 0, 0 },
    { I3("000", "0100011"), OP_SB, F_S, 0, 0 },
    { I3("001", "0100011"), OP_SH, F_S, 0, 0 },
    { I3("010", "0100011"), OP_SW, F_S, 0, 0 },
    { I3("011", "0100011"), OP_SD, F_S, 0, 0 },
    { I3("000", "0010011"), OP_ADDI, F_I, 0, 0 },
    { I3("010", "0010011"), OP_SLTI, F_I, 0, 0 },
    { I3("011", "0010011"), OP_SLTIU, F_I, 0, 0 },
    { I3("100", "0010011"), OP_XORI, F_I, 0, 0 },
    { I3("110", "0010011"), OP_ORI, F_I, 0, 0 },
    { I3("111", "0010011"), OP_ANDI, F_I, 0, 0 },
    { "000000 ------ ----- 001 ----- 0010011", OP_SLLI, F_SH6, 0, 0 },
    { "000000 ------ ----- 101 ----- 0010011", OP_SRLI, F_SH6, 0, 0 },
    { "010000 ------ ----- 101 ----- 0010011", OP_SRAI, F_SH6, 0, 0 },
    { R7("0000000", "000", "0110011"), OP_ADD, F_R, 0, 0 },
    { R7("0100000", "000", "0110011"), OP_SUB, F_R, 0, 0 },
    { R7("0000000", "001", "0110011"), OP_SLL, F_R, 0, 0 },
    { R7("0000000", "010", "0110011"), OP_SLT, F_R, 0, 0 },
    { R7("0000000", "011", "0110011"), OP_SLTU, F_R, 0, 0 },
    { R7("0000000", "100", "0110011"), OP_XOR, F_R, 0, 0 },
    { R7("0000000", "101", "0110011"), OP_SRL, F_R, 0, 0 },
    { R7("0100000", "101", "0110011"), OP_SRA, F_R, 0, 0 },
    { R7("0000000", "110", "0110011"), OP_OR, F_R, 0, 0 },
    { R7("0000000", "111", "0110011"), OP_AND, F_R, 0, 0 },
    { I3("000", "0011011"), OP_ADDIW, F_I, 0, 0 },
    { R7("0000000", "001", "0011011"), OP_SLLIW, F_SH5, 0, 0 },
    { R7("0000000", "101", "0011011"), OP_SRLIW, F_SH5, 0, 0 },
    { R7("0100000", "101", "0011011"), OP_SRAIW, F_SH5, 0, 0 },
    { R7("0000000", "000", "0111011"), OP_ADDW, F_R, 0, 0 },
    { R7("0100000", "000", "0111011"), OP_SUBW, F_R, 0, 0 },
    { R7("0000000", "001", "0111011"), OP_SLLW, F_R, 0, 0 },
    { R7("0000000", "101", "0111011"), OP_SRLW, F_R, 0, 0 },
    { R7("0100000", "101", "0111011"), OP_SRAW, F_R, 0, 0 },
    { I3("000", "0001111"), OP_FENCE, F_NONE, 0, 0 },
    { I3("001", "0001111"), OP_FENCE_I, F_NONE, 0, 0 },
    { "000000000000 00000 000 00000 1110011", OP_ECALL, F_NONE, 0, 0 },
    { "000000000001 00000 000 00000 1110011", OP_EBREAK, F_NONE, 0, 0 },
    /* M */
    { R7("0000001", "000", "0110011"), OP_MUL, F_R, 0, 0 },
    { R7("0000001", "001", "0110011"), OP_MULH, F_R, 0, 0 },
    { R7("0000001", "010", "0110011"), OP_MULHSU, F_R, 0, 0 },
    { R7("0000001", "011", "0110011"), OP_MULHU, F_R, 0, 0 },
    { R7("0000001", "100", "0110011"), OP_DIV, F_R, 0, 0 },
    { R7("0000001", "101", "0110011"), OP_DIVU, F_R, 0, 0 },
    { R7("0000001", "110", "0110011"), OP_REM, F_R, 0, 0 },
    { R7("0000001", "111", "0110011"), OP_REMU, F_R, 0, 0 },
    { R7("0000001", "000", "0111011"), OP_MULW, F_R, 0, 0 },
    { R7("0000001", "100", "0111011"), OP_DIVW, F_R, 0, 0 },
    { R7("0000001", "101", "0111011"), OP_DIVUW, F_R, 0, 0 },
    { R7("0000001", "110", "0111011"), OP_REMW, F_R, 0, 0 },
    { R7("0000001", "111", "0111011"), OP_REMUW, F_R, 0, 0 },
    /* A */
    { "00010 -- 00000 ----- 010 ----- 0101111", OP_LR_W, F_LR, 0, 0 },
    { "00010 -- 00000 ----- 011 ----- 0101111", OP_LR_D, F_LR, 0, 0 },
    { AMO("00011", "010"), OP_SC_W, F_R, 0, 0 },
    { AMO("00011", "011"), OP_SC_D, F_R, 0, 0 },
    { AMO("00000", "010"), OP_AMO_W, F_AMO, 0, 0 }, { AMO("00000", "011"), OP_AMO_D, F_AMO, 0, 0 },
    { AMO("00001", "010"), OP_AMO_W, F_AMO, 0, 0 }, { AMO("00001", "011"), OP_AMO_D, F_AMO, 0, 0 },
    { AMO("00100", "010"), OP_AMO_W, F_AMO, 0, 0 }, { AMO("00100", "011"), OP_AMO_D, F_AMO, 0, 0 },
    { AMO("01000", "010"), OP_AMO_W, F_AMO, 0, 0 }, { AMO("01000", "011"), OP_AMO_D, F_AMO, 0, 0 },
    { AMO("01100", "010"), OP_AMO_W, F_AMO, 0, 0 }, { AMO("01100", "011"), OP_AMO_D, F_AMO, 0, 0 },
    { AMO("10000", "010"), OP_AMO_W, F_AMO, 0, 0 }, { AMO("10000", "011"), OP_AMO_D, F_AMO, 0, 0 },
    { AMO("10100", "010"), OP_AMO_W, F_AMO, 0, 0 }, { AMO("10100", "011"), OP_AMO_D, F_AMO, 0, 0 },
    { AMO("11000", "010"), OP_AMO_W, F_AMO, 0, 0 }, { AMO("11000", "011"), OP_AMO_D, F_AMO, 0, 0 },
    { AMO("11100", "010"), OP_AMO_W, F_AMO, 0, 0 }, { AMO("11100", "011"), OP_AMO_D, F_AMO, 0, 0 },
    /* Zicsr */
    { I3("001", "1110011"), OP_CSRRW, F_CSR, 0, 0 },
    { I3("010", "1110011"), OP_CSRRS, F_CSR, 0, 0 },
    { I3("011", "1110011"), OP_CSRRC, F_CSR, 0, 0 },
    { I3("101", "1110011"), OP_CSRRWI, F_CSR, 0, 0 },
    { I3("110", "1110011"), OP_CSRRSI, F_CSR, 0, 0 },
    { I3("111", "1110011"), OP_CSRRCI, F_CSR, 0, 0 },
    /* privileged (privileged spec ch. 3.3, 10.2) */
    { "0011000 00010 00000 000 00000 1110011", OP_MRET, F_NONE, 0, 0 },
    { "0001000 00010 00000 000 00000 1110011", OP_SRET, F_NONE, 0, 0 },
    { "0001000 00101 00000 000 00000 1110011", OP_WFI, F_NONE, 0, 0 },
    { "0001001 ----- ----- 000 00000 1110011", OP_SFENCE_VMA, F_SFENCE, 0, 0 },
    /* F/D: loads, stores; every other FP major opcode goes to fpu_execute */
    { I3("010", "0000111"), OP_FLW, F_I, 0, 0 },
    { I3("011", "0000111"), OP_FLD, F_I, 0, 0 },
    { I3("010", "0100111"), OP_FSW, F_S, 0, 0 },
    { I3("011", "0100111"), OP_FSD, F_S, 0, 0 },
    { "------------------------- 1000011", OP_FP, F_R, 0, 0 },
    { "------------------------- 1000111", OP_FP, F_R, 0, 0 },
    { "------------------------- 1001011", OP_FP, F_R, 0, 0 },
    { "------------------------- 1001111", OP_FP, F_R, 0, 0 },
    { "------------------------- 1010011", OP_FP, F_R, 0, 0 },
    /* Zba */
    { R7("0000100", "000", "0111011"), OP_ADD_UW, F_R, 0, 0 },
    { R7("0010000", "010", "0110011"), OP_SH1ADD, F_R, 0, 0 },
    { R7("0010000", "100", "0110011"), OP_SH2ADD, F_R, 0, 0 },
    { R7("0010000", "110", "0110011"), OP_SH3ADD, F_R, 0, 0 },
    { R7("0010000", "010", "0111011"), OP_SH1ADD_UW, F_R, 0, 0 },
    { R7("0010000", "100", "0111011"), OP_SH2ADD_UW, F_R, 0, 0 },
    { R7("0010000", "110", "0111011"), OP_SH3ADD_UW, F_R, 0, 0 },
    { "000010 ------ ----- 001 ----- 0011011", OP_SLLI_UW, F_SH6, 0, 0 },
    /* Zbb */
    { R7("0100000", "111", "0110011"), OP_ANDN, F_R, 0, 0 },
    { R7("0100000", "110", "0110011"), OP_ORN, F_R, 0, 0 },
    { R7("0100000", "100", "0110011"), OP_XNOR, F_R, 0, 0 },
    { "011000000000 ----- 001 ----- 0010011", OP_CLZ, F_UNARY, 0, 0 },
    { "011000000000 ----- 001 ----- 0011011", OP_CLZW, F_UNARY, 0, 0 },
    { "011000000001 ----- 001 ----- 0010011", OP_CTZ, F_UNARY, 0, 0 },
    { "011000000001 ----- 001 ----- 0011011", OP_CTZW, F_UNARY, 0, 0 },
    { "011000000010 ----- 001 ----- 0010011", OP_CPOP, F_UNARY, 0, 0 },
    { "011000000010 ----- 001 ----- 0011011", OP_CPOPW, F_UNARY, 0, 0 },
    { R7("0000101", "110", "0110011"), OP_MAX, F_R, 0, 0 },
    { R7("0000101", "111", "0110011"), OP_MAXU, F_R, 0, 0 },
    { R7("0000101", "100", "0110011"), OP_MIN, F_R, 0, 0 },
    { R7("0000101", "101", "0110011"), OP_MINU, F_R, 0, 0 },
    { "011000000100 ----- 001 ----- 0010011", OP_SEXT_B, F_UNARY, 0, 0 },
    { "011000000101 ----- 001 ----- 0010011", OP_SEXT_H, F_UNARY, 0, 0 },
    { "000010000000 ----- 100 ----- 0111011", OP_ZEXT_H, F_UNARY, 0, 0 },
    { R7("0110000", "001", "0110011"), OP_ROL, F_R, 0, 0 },
    { R7("0110000", "001", "0111011"), OP_ROLW, F_R, 0, 0 },
    { R7("0110000", "101", "0110011"), OP_ROR, F_R, 0, 0 },
    { R7("0110000", "101", "0111011"), OP_RORW, F_R, 0, 0 },
    { "011000 ------ ----- 101 ----- 0010011", OP_RORI, F_SH6, 0, 0 },
    { R7("0110000", "101", "0011011"), OP_RORIW, F_SH5, 0, 0 },
    { "001010000111 ----- 101 ----- 0010011", OP_ORC_B, F_UNARY, 0, 0 },
    { "011010111000 ----- 101 ----- 0010011", OP_REV8, F_UNARY, 0, 0 },
    /* Zbs */
    { R7("0100100", "001", "0110011"), OP_BCLR, F_R, 0, 0 },
    { "010010 ------ ----- 001 ----- 0010011", OP_BCLRI, F_SH6, 0, 0 },
    { R7("0100100", "101", "0110011"), OP_BEXT, F_R, 0, 0 },
    { "010010 ------ ----- 101 ----- 0010011", OP_BEXTI, F_SH6, 0, 0 },
    { R7("0110100", "001", "0110011"), OP_BINV, F_R, 0, 0 },
    { "011010 ------ ----- 001 ----- 0010011", OP_BINVI, F_SH6, 0, 0 },
    { R7("0010100", "001", "0110011"), OP_BSET, F_R, 0, 0 },
    { "001010 ------ ----- 001 ----- 0010011", OP_BSETI, F_SH6, 0, 0 },
};
#define NPATTERNS (sizeof(patterns) / sizeof(patterns[0]))

static void compile_patterns(void)
{
    for (size_t i = 0; i < NPATTERNS; i++) {
        struct pattern *p = &patterns[i];
        int bit = 31;
        for (const char *c = p->bits; *c; c++) {
            if (*c == ' ')
                continue;
            FUZZ_SETUP(bit >= 0);
            if (*c != '-') {
                p->mask |= 1u << bit;
                if (*c == '1')
                    p->match |= 1u << bit;
            }
            bit--;
        }
        FUZZ_SETUP(bit == -1); /* exactly 32 bits */
    }
}

static uint32_t bits(uint32_t v, int hi, int lo) { return (v >> lo) & ((1u << (hi - lo + 1)) - 1); }
static int64_t sext(uint64_t v, int width) { return (int64_t)(v << (64 - width)) >> (64 - width); }

struct ref {
    unsigned op, rd, rs1, rs2;
    int64_t imm;
};

/* The reference decoding of a 32-bit word. */
static struct ref ref_decode32(uint32_t r)
{
    const struct pattern *hit = NULL;
    for (size_t i = 0; i < NPATTERNS; i++) {
        if ((r & patterns[i].mask) != patterns[i].match)
            continue;
        FUZZ_CHECK(!hit, "reference table: 0x%08x matches two patterns (%s, %s)", r,
                   hit ? decode_op_name(hit->op) : "", decode_op_name(patterns[i].op));
        hit = &patterns[i];
    }
    struct ref x = { OP_ILLEGAL, 0, 0, 0, 0 };
    if (!hit)
        return x;
    unsigned rd = bits(r, 11, 7), rs1 = bits(r, 19, 15), rs2 = bits(r, 24, 20);
    x.op = hit->op;
    switch (hit->fmt) {
    case F_R: x.rd = rd; x.rs1 = rs1; x.rs2 = rs2; break;
    case F_I: x.rd = rd; x.rs1 = rs1; x.imm = sext(bits(r, 31, 20), 12); break;
    case F_S: x.rs1 = rs1; x.rs2 = rs2; x.imm = sext(bits(r, 31, 25) << 5 | bits(r, 11, 7), 12); break;
    case F_B:
        x.rs1 = rs1;
        x.rs2 = rs2;
        x.imm = sext(bits(r, 31, 31) << 12 | bits(r, 7, 7) << 11 | bits(r, 30, 25) << 5 |
                     bits(r, 11, 8) << 1, 13);
        break;
    case F_U: x.rd = rd; x.imm = sext(r & 0xfffff000u, 32); break;
    case F_J:
        x.rd = rd;
        x.imm = sext(bits(r, 31, 31) << 20 | bits(r, 19, 12) << 12 | bits(r, 20, 20) << 11 |
                     bits(r, 30, 21) << 1, 21);
        break;
    case F_SH6: x.rd = rd; x.rs1 = rs1; x.imm = bits(r, 25, 20); break;
    case F_SH5: x.rd = rd; x.rs1 = rs1; x.imm = bits(r, 24, 20); break;
    case F_UNARY: case F_LR: x.rd = rd; x.rs1 = rs1; break;
    case F_CSR: x.rd = rd; x.rs1 = rs1; x.imm = bits(r, 31, 20); break;
    case F_AMO: x.rd = rd; x.rs1 = rs1; x.rs2 = rs2; x.imm = bits(r, 31, 27); break;
    case F_SFENCE: x.rs1 = rs1; x.rs2 = rs2; break;
    case F_NONE: break;
    }
    return x;
}

/* ---- RVC expansion (unprivileged spec ch. 16), RV64 ---- */

static uint32_t enc_r(unsigned f7, unsigned rs2, unsigned rs1, unsigned f3, unsigned rd, unsigned opc)
{
    return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc;
}

static uint32_t enc_i(int64_t imm, unsigned rs1, unsigned f3, unsigned rd, unsigned opc)
{
    return ((uint32_t)imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc;
}

static uint32_t enc_s(int64_t imm, unsigned rs2, unsigned rs1, unsigned f3, unsigned opc)
{
    uint32_t u = (uint32_t)imm & 0xfff;
    return (u >> 5) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (u & 31) << 7 | opc;
}

static uint32_t enc_b(int64_t imm, unsigned rs2, unsigned rs1, unsigned f3)
{
    uint32_t u = (uint32_t)imm & 0x1fff;
    return bits(u, 12, 12) << 31 | bits(u, 10, 5) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 |
           bits(u, 4, 1) << 8 | bits(u, 11, 11) << 7 | 0x63;
}

static uint32_t enc_j(int64_t imm, unsigned rd)
{
    uint32_t u = (uint32_t)imm & 0x1fffff;
    return bits(u, 20, 20) << 31 | bits(u, 10, 1) << 21 | bits(u, 11, 11) << 20 |
           bits(u, 19, 12) << 12 | rd << 7 | 0x6f;
}

enum { OPC_LOAD = 0x03, OPC_LOAD_FP = 0x07, OPC_OP_IMM = 0x13, OPC_STORE = 0x23,
       OPC_STORE_FP = 0x27, OPC_OP = 0x33, OPC_LUI = 0x37, OPC_OP_IMM32 = 0x1b,
       OPC_OP32 = 0x3b, OPC_JALR = 0x67 };

/* The 32-bit instruction a compressed one stands for, or 0 if reserved. */
static uint32_t rvc_expand(uint32_t c)
{
    unsigned f3 = bits(c, 15, 13), rd = bits(c, 11, 7), rs2 = bits(c, 6, 2);
    unsigned rdp = 8 + bits(c, 4, 2), rs1p = 8 + bits(c, 9, 7);
    int64_t imm6 = sext(bits(c, 12, 12) << 5 | bits(c, 6, 2), 6);
    unsigned shamt = bits(c, 12, 12) << 5 | bits(c, 6, 2);
    unsigned off_d = bits(c, 12, 10) << 3 | bits(c, 6, 5) << 6;               /* C.LD/C.SD/C.FLD/C.FSD */
    unsigned off_w = bits(c, 12, 10) << 3 | bits(c, 6, 6) << 2 | bits(c, 5, 5) << 6; /* C.LW/C.SW */

    switch (bits(c, 1, 0)) {
    case 0:
        switch (f3) {
        case 0: { /* C.ADDI4SPN: nzuimm[5:4|9:6|2|3] */
            unsigned nz = bits(c, 12, 11) << 4 | bits(c, 10, 7) << 6 | bits(c, 6, 6) << 2 |
                          bits(c, 5, 5) << 3;
            return nz ? enc_i(nz, 2, 0, rdp, OPC_OP_IMM) : 0;
        }
        case 1: return enc_i(off_d, rs1p, 3, rdp, OPC_LOAD_FP);
        case 2: return enc_i(off_w, rs1p, 2, rdp, OPC_LOAD);
        case 3: return enc_i(off_d, rs1p, 3, rdp, OPC_LOAD);
        case 4: return 0;
        case 5: return enc_s(off_d, rdp, rs1p, 3, OPC_STORE_FP);
        case 6: return enc_s(off_w, rdp, rs1p, 2, OPC_STORE);
        case 7: return enc_s(off_d, rdp, rs1p, 3, OPC_STORE);
        }
        break;
    case 1:
        switch (f3) {
        case 0: return enc_i(imm6, rd, 0, rd, OPC_OP_IMM);            /* C.ADDI, C.NOP, hints */
        case 1: return rd ? enc_i(imm6, rd, 0, rd, OPC_OP_IMM32) : 0; /* C.ADDIW */
        case 2: return enc_i(imm6, 0, 0, rd, OPC_OP_IMM);             /* C.LI */
        case 3:
            if (rd == 2) { /* C.ADDI16SP: nzimm[9|4|6|8:7|5] */
                int64_t nz = sext(bits(c, 12, 12) << 9 | bits(c, 6, 6) << 4 | bits(c, 5, 5) << 6 |
                                  bits(c, 4, 3) << 7 | bits(c, 2, 2) << 5, 10);
                return nz ? enc_i(nz, 2, 0, 2, OPC_OP_IMM) : 0;
            }
            /* C.LUI: nzimm[17|16:12] */
            return imm6 ? ((uint32_t)imm6 & 0xfffff) << 12 | rd << 7 | OPC_LUI : 0;
        case 4:
            switch (bits(c, 11, 10)) {
            case 0: return enc_i(shamt, rs1p, 5, rs1p, OPC_OP_IMM);               /* C.SRLI */
            case 1: return enc_i(0x400 | shamt, rs1p, 5, rs1p, OPC_OP_IMM);       /* C.SRAI */
            case 2: return enc_i(imm6, rs1p, 7, rs1p, OPC_OP_IMM);                /* C.ANDI */
            }
            switch (bits(c, 12, 12) << 2 | bits(c, 6, 5)) {
            case 0: return enc_r(0x20, rdp, rs1p, 0, rs1p, OPC_OP);   /* C.SUB */
            case 1: return enc_r(0x00, rdp, rs1p, 4, rs1p, OPC_OP);   /* C.XOR */
            case 2: return enc_r(0x00, rdp, rs1p, 6, rs1p, OPC_OP);   /* C.OR */
            case 3: return enc_r(0x00, rdp, rs1p, 7, rs1p, OPC_OP);   /* C.AND */
            case 4: return enc_r(0x20, rdp, rs1p, 0, rs1p, OPC_OP32); /* C.SUBW */
            case 5: return enc_r(0x00, rdp, rs1p, 0, rs1p, OPC_OP32); /* C.ADDW */
            }
            return 0;
        case 5: /* C.J: offset[11|4|9:8|10|6|7|3:1|5] */
            return enc_j(sext(bits(c, 12, 12) << 11 | bits(c, 11, 11) << 4 | bits(c, 10, 9) << 8 |
                              bits(c, 8, 8) << 10 | bits(c, 7, 7) << 6 | bits(c, 6, 6) << 7 |
                              bits(c, 5, 3) << 1 | bits(c, 2, 2) << 5, 12), 0);
        case 6: case 7: /* C.BEQZ, C.BNEZ: offset[8|4:3] [7:6|2:1|5] */
            return enc_b(sext(bits(c, 12, 12) << 8 | bits(c, 11, 10) << 3 | bits(c, 6, 5) << 6 |
                              bits(c, 4, 3) << 1 | bits(c, 2, 2) << 5, 9), 0, rs1p, f3 == 6 ? 0 : 1);
        }
        break;
    case 2:
        switch (f3) {
        case 0: return enc_i(shamt, rd, 1, rd, OPC_OP_IMM); /* C.SLLI */
        case 1: /* C.FLDSP: offset[5] [4:3|8:6] */
            return enc_i(bits(c, 12, 12) << 5 | bits(c, 6, 5) << 3 | bits(c, 4, 2) << 6, 2, 3, rd,
                         OPC_LOAD_FP);
        case 2: /* C.LWSP: offset[5] [4:2|7:6] */
            return rd ? enc_i(bits(c, 12, 12) << 5 | bits(c, 6, 4) << 2 | bits(c, 3, 2) << 6, 2, 2,
                              rd, OPC_LOAD) : 0;
        case 3: /* C.LDSP */
            return rd ? enc_i(bits(c, 12, 12) << 5 | bits(c, 6, 5) << 3 | bits(c, 4, 2) << 6, 2, 3,
                              rd, OPC_LOAD) : 0;
        case 4:
            if (!bits(c, 12, 12)) {
                if (rs2)
                    return enc_r(0, rs2, 0, 0, rd, OPC_OP);          /* C.MV */
                return rd ? enc_i(0, rd, 0, 0, OPC_JALR) : 0;        /* C.JR */
            }
            if (rs2)
                return enc_r(0, rs2, rd, 0, rd, OPC_OP);             /* C.ADD */
            return rd ? enc_i(0, rd, 0, 1, OPC_JALR) : 0x00100073;   /* C.JALR, C.EBREAK */
        case 5: /* C.FSDSP: offset[5:3|8:6] */
            return enc_s(bits(c, 12, 10) << 3 | bits(c, 9, 7) << 6, rs2, 2, 3, OPC_STORE_FP);
        case 6: /* C.SWSP: offset[5:2|7:6] */
            return enc_s(bits(c, 12, 9) << 2 | bits(c, 8, 7) << 6, rs2, 2, 2, OPC_STORE);
        case 7: /* C.SDSP */
            return enc_s(bits(c, 12, 10) << 3 | bits(c, 9, 7) << 6, rs2, 2, 3, OPC_STORE);
        }
        break;
    }
    return 0;
}

static void check_common(uint32_t raw, const struct decoded_insn *d)
{
    bool compressed = (raw & 3) != 3;
    FUZZ_CHECK(d->len == (compressed ? 2 : 4), "0x%08x: len %u", raw, d->len);
    FUZZ_CHECK(d->raw == (compressed ? (raw & 0xffff) : raw), "0x%08x: raw 0x%x", raw, d->raw);
    FUZZ_CHECK(d->op < OP_COUNT && decode_op_name(d->op)[0] != '?', "0x%08x: op %u", raw, d->op);
    FUZZ_CHECK(d->rd < 32 && d->rs1 < 32 && d->rs2 < 32 && d->rs3 < 32, "0x%08x: register > 31", raw);
}

static void check_against(uint32_t raw, const struct decoded_insn *d, const struct ref *x,
                          const char *what)
{
    FUZZ_CHECK(d->op == x->op, "0x%08x: decoded %s, %s says %s", raw, decode_op_name(d->op), what,
               decode_op_name(x->op));
    if (d->op == OP_ILLEGAL)
        return; /* operands of an illegal instruction mean nothing */
    FUZZ_CHECK(d->rd == x->rd && d->rs1 == x->rs1 && d->rs2 == x->rs2 && d->imm == x->imm,
               "0x%08x (%s): decoded rd %u rs1 %u rs2 %u imm %lld, %s says rd %u rs1 %u rs2 %u "
               "imm %lld", raw, decode_op_name(d->op), d->rd, d->rs1, d->rs2, (long long)d->imm,
               what, x->rd, x->rs1, x->rs2, (long long)x->imm);
}

static void check_word(uint32_t raw)
{
    struct decoded_insn d;
    decode_insn(raw, &d);
    check_common(raw, &d);
    if ((raw & 3) == 3) {
        struct ref x = ref_decode32(raw);
        check_against(raw, &d, &x, "the reference");
        return;
    }
    struct decoded_insn low;
    decode_insn(raw & 0xffff, &low);
    FUZZ_CHECK(memcmp(&d, &low, sizeof(d)) == 0, "0x%08x: upper half changes a 16-bit decode", raw);

    uint32_t wide = rvc_expand(raw & 0xffff);
    struct ref x = { OP_ILLEGAL, 0, 0, 0, 0 };
    if (wide) {
        FUZZ_CHECK((wide & 3) == 3, "expansion of 0x%04x is not 32-bit", raw & 0xffff);
        struct decoded_insn w;
        decode_insn(wide, &w);
        struct ref rw = ref_decode32(wide);
        check_against(wide, &w, &rw, "the reference");
        FUZZ_CHECK(w.op != OP_ILLEGAL, "expansion 0x%08x of 0x%04x is illegal", wide, raw & 0xffff);
        x = (struct ref){ w.op, w.rd, w.rs1, w.rs2, w.imm };
    }
    check_against(raw & 0xffff, &d, &x, wide ? "its 32-bit expansion" : "the spec (reserved)");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        compile_patterns();
        ready = true;
        /* The 16-bit space is small: check all of it once per process. */
        for (uint32_t c = 0; c < 0x10000; c++)
            if ((c & 3) != 3)
                check_word(c);
    }
    struct fuzz_in in = { data, size };
    do
        check_word((uint32_t)fuzz_u64(&in, 4));
    while (in.n);
    return 0;
}
