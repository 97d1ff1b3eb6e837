/* Decoder for RV64GC + Zba/Zbb/Zbs (unprivileged spec ch. 2, 7, 8, 11-13,
 * 16 (C), 28 (B); privileged spec ch. 3.3 for SYSTEM instructions). */
#include "cpu/decode.h"

#include <string.h>

#define OP_NAME(name) #name,
static const char *const op_names[OP_COUNT] = { OPS(OP_NAME) };
#undef OP_NAME

const char *decode_op_name(unsigned op)
{
    return op < OP_COUNT ? op_names[op] : "?";
}

static inline uint32_t bits(uint32_t v, int hi, int lo)
{
    return (v >> lo) & ((1u << (hi - lo + 1)) - 1);
}

static inline int64_t sext(uint64_t v, int width)
{
    return (int64_t)(v << (64 - width)) >> (64 - width);
}

static void set(struct decoded_insn *d, enum insn_op op, unsigned rd, unsigned rs1,
                unsigned rs2, int64_t imm)
{
    d->op = (uint16_t)op;
    d->rd = (uint8_t)rd;
    d->rs1 = (uint8_t)rs1;
    d->rs2 = (uint8_t)rs2;
    d->imm = imm;
}

static void decode_op_imm(uint32_t r, struct decoded_insn *d, unsigned rd, unsigned rs1)
{
    int64_t imm = (int32_t)r >> 20;
    unsigned f3 = bits(r, 14, 12), shamt = bits(r, 25, 20), f6 = bits(r, 31, 26);
    unsigned f12 = bits(r, 31, 20);
    static const enum insn_op simple[8] = {
        [0] = OP_ADDI, [2] = OP_SLTI, [3] = OP_SLTIU, [4] = OP_XORI, [6] = OP_ORI, [7] = OP_ANDI,
    };
    switch (f3) {
    case 1:
        if (f6 == 0x00) return set(d, OP_SLLI, rd, rs1, 0, shamt);
        if (f6 == 0x0a) return set(d, OP_BSETI, rd, rs1, 0, shamt);
        if (f6 == 0x12) return set(d, OP_BCLRI, rd, rs1, 0, shamt);
        if (f6 == 0x1a) return set(d, OP_BINVI, rd, rs1, 0, shamt);
        switch (f12) {
        case 0x600: return set(d, OP_CLZ, rd, rs1, 0, 0);
        case 0x601: return set(d, OP_CTZ, rd, rs1, 0, 0);
        case 0x602: return set(d, OP_CPOP, rd, rs1, 0, 0);
        case 0x604: return set(d, OP_SEXT_B, rd, rs1, 0, 0);
        case 0x605: return set(d, OP_SEXT_H, rd, rs1, 0, 0);
        }
        return;
    case 5:
        if (f6 == 0x00) return set(d, OP_SRLI, rd, rs1, 0, shamt);
        if (f6 == 0x10) return set(d, OP_SRAI, rd, rs1, 0, shamt);
        if (f6 == 0x18) return set(d, OP_RORI, rd, rs1, 0, shamt);
        if (f6 == 0x12) return set(d, OP_BEXTI, rd, rs1, 0, shamt);
        if (f12 == 0x287) return set(d, OP_ORC_B, rd, rs1, 0, 0);
        if (f12 == 0x6b8) return set(d, OP_REV8, rd, rs1, 0, 0);
        return;
    default:
        return set(d, simple[f3], rd, rs1, 0, imm);
    }
}

static void decode_op(uint32_t r, struct decoded_insn *d, unsigned rd, unsigned rs1, unsigned rs2)
{
    unsigned f3 = bits(r, 14, 12), f7 = bits(r, 31, 25);
    enum insn_op op = OP_ILLEGAL;
    switch (f7) {
    case 0x00: {
        static const enum insn_op t[8] = { OP_ADD, OP_SLL, OP_SLT, OP_SLTU,
                                           OP_XOR, OP_SRL, OP_OR, OP_AND };
        op = t[f3];
        break;
    }
    case 0x20: {
        static const enum insn_op t[8] = { [0] = OP_SUB, [4] = OP_XNOR, [5] = OP_SRA,
                                           [6] = OP_ORN, [7] = OP_ANDN };
        op = t[f3];
        break;
    }
    case 0x01: {
        static const enum insn_op t[8] = { OP_MUL, OP_MULH, OP_MULHSU, OP_MULHU,
                                           OP_DIV, OP_DIVU, OP_REM, OP_REMU };
        op = t[f3];
        break;
    }
    case 0x10: {
        static const enum insn_op t[8] = { [2] = OP_SH1ADD, [4] = OP_SH2ADD, [6] = OP_SH3ADD };
        op = t[f3];
        break;
    }
    case 0x05: {
        static const enum insn_op t[8] = { [4] = OP_MIN, [5] = OP_MINU, [6] = OP_MAX, [7] = OP_MAXU };
        op = t[f3];
        break;
    }
    case 0x30: op = f3 == 1 ? OP_ROL : f3 == 5 ? OP_ROR : OP_ILLEGAL; break;
    case 0x14: op = f3 == 1 ? OP_BSET : OP_ILLEGAL; break;
    case 0x24: op = f3 == 1 ? OP_BCLR : f3 == 5 ? OP_BEXT : OP_ILLEGAL; break;
    case 0x34: op = f3 == 1 ? OP_BINV : OP_ILLEGAL; break;
    }
    set(d, op, rd, rs1, rs2, 0);
}

static void decode_op_imm32(uint32_t r, struct decoded_insn *d, unsigned rd, unsigned rs1)
{
    unsigned f3 = bits(r, 14, 12), f7 = bits(r, 31, 25), shamt = bits(r, 24, 20);
    unsigned f12 = bits(r, 31, 20);
    if (f3 == 0)
        return set(d, OP_ADDIW, rd, rs1, 0, (int32_t)r >> 20);
    if (f3 == 1) {
        if (f7 == 0x00) return set(d, OP_SLLIW, rd, rs1, 0, shamt);
        if (bits(r, 31, 26) == 0x02) return set(d, OP_SLLI_UW, rd, rs1, 0, bits(r, 25, 20));
        if (f12 == 0x600) return set(d, OP_CLZW, rd, rs1, 0, 0);
        if (f12 == 0x601) return set(d, OP_CTZW, rd, rs1, 0, 0);
        if (f12 == 0x602) return set(d, OP_CPOPW, rd, rs1, 0, 0);
    } else if (f3 == 5) {
        if (f7 == 0x00) return set(d, OP_SRLIW, rd, rs1, 0, shamt);
        if (f7 == 0x20) return set(d, OP_SRAIW, rd, rs1, 0, shamt);
        if (f7 == 0x30) return set(d, OP_RORIW, rd, rs1, 0, shamt);
    }
}

static void decode_op32(uint32_t r, struct decoded_insn *d, unsigned rd, unsigned rs1, unsigned rs2)
{
    unsigned f3 = bits(r, 14, 12), f7 = bits(r, 31, 25);
    enum insn_op op = OP_ILLEGAL;
    switch (f7) {
    case 0x00: op = f3 == 0 ? OP_ADDW : f3 == 1 ? OP_SLLW : f3 == 5 ? OP_SRLW : OP_ILLEGAL; break;
    case 0x20: op = f3 == 0 ? OP_SUBW : f3 == 5 ? OP_SRAW : OP_ILLEGAL; break;
    case 0x01: {
        static const enum insn_op t[8] = { [0] = OP_MULW, [4] = OP_DIVW, [5] = OP_DIVUW,
                                           [6] = OP_REMW, [7] = OP_REMUW };
        op = t[f3];
        break;
    }
    case 0x04:
        if (f3 == 0) op = OP_ADD_UW;
        else if (f3 == 4 && rs2 == 0) op = OP_ZEXT_H;
        break;
    case 0x10: {
        static const enum insn_op t[8] = { [2] = OP_SH1ADD_UW, [4] = OP_SH2ADD_UW,
                                           [6] = OP_SH3ADD_UW };
        op = t[f3];
        break;
    }
    case 0x30: op = f3 == 1 ? OP_ROLW : f3 == 5 ? OP_RORW : OP_ILLEGAL; break;
    }
    set(d, op, rd, rs1, rs2, 0);
}

static void decode_system(uint32_t r, struct decoded_insn *d, unsigned rd, unsigned rs1, unsigned rs2)
{
    unsigned f3 = bits(r, 14, 12);
    static const enum insn_op csr_ops[8] = { [1] = OP_CSRRW, [2] = OP_CSRRS, [3] = OP_CSRRC,
                                             [5] = OP_CSRRWI, [6] = OP_CSRRSI, [7] = OP_CSRRCI };
    if (f3 != 0)
        return set(d, csr_ops[f3], rd, rs1, 0, bits(r, 31, 20));
    if (bits(r, 31, 25) == 0x09 && rd == 0)
        return set(d, OP_SFENCE_VMA, 0, rs1, rs2, 0);
    switch (r) {
    case 0x00000073: return set(d, OP_ECALL, 0, 0, 0, 0);
    case 0x00100073: return set(d, OP_EBREAK, 0, 0, 0, 0);
    case 0x30200073: return set(d, OP_MRET, 0, 0, 0, 0);
    case 0x10200073: return set(d, OP_SRET, 0, 0, 0, 0);
    case 0x10500073: return set(d, OP_WFI, 0, 0, 0, 0);
    }
}

static void decode_amo(uint32_t r, struct decoded_insn *d, unsigned rd, unsigned rs1, unsigned rs2)
{
    unsigned f3 = bits(r, 14, 12), f5 = bits(r, 31, 27);
    bool dword = f3 == 3;
    if (f3 != 2 && f3 != 3)
        return;
    if (f5 == 0x02) {
        if (rs2 == 0)
            set(d, dword ? OP_LR_D : OP_LR_W, rd, rs1, 0, 0);
        return;
    }
    if (f5 == 0x03)
        return set(d, dword ? OP_SC_D : OP_SC_W, rd, rs1, rs2, 0);
    switch (f5) {
    case AMO_ADD: case AMO_SWAP: case AMO_XOR: case AMO_OR: case AMO_AND:
    case AMO_MIN: case AMO_MAX: case AMO_MINU: case AMO_MAXU:
        set(d, dword ? OP_AMO_D : OP_AMO_W, rd, rs1, rs2, f5);
    }
}

static void decode32(uint32_t r, struct decoded_insn *d)
{
    unsigned rd = bits(r, 11, 7), rs1 = bits(r, 19, 15), rs2 = bits(r, 24, 20);
    unsigned f3 = bits(r, 14, 12);
    int64_t imm_i = (int32_t)r >> 20;
    int64_t imm_s = sext(bits(r, 31, 25) << 5 | bits(r, 11, 7), 12);
    int64_t imm_b = sext((uint64_t)(bits(r, 31, 31) << 12 | bits(r, 7, 7) << 11 |
                                    bits(r, 30, 25) << 5 | bits(r, 11, 8) << 1), 13);
    int64_t imm_u = (int32_t)(r & 0xfffff000u);
    int64_t imm_j = sext((uint64_t)(bits(r, 31, 31) << 20 | bits(r, 19, 12) << 12 |
                                    bits(r, 20, 20) << 11 | bits(r, 30, 21) << 1), 21);

    switch (r & 0x7f) {
    case 0x37: return set(d, OP_LUI, rd, 0, 0, imm_u);
    case 0x17: return set(d, OP_AUIPC, rd, 0, 0, imm_u);
    case 0x6f: return set(d, OP_JAL, rd, 0, 0, imm_j);
    case 0x67:
        if (f3 == 0) set(d, OP_JALR, rd, rs1, 0, imm_i);
        return;
    case 0x63: {
        static const enum insn_op t[8] = { OP_BEQ, OP_BNE, OP_ILLEGAL, OP_ILLEGAL,
                                           OP_BLT, OP_BGE, OP_BLTU, OP_BGEU };
        return set(d, t[f3], 0, rs1, rs2, imm_b);
    }
    case 0x03: {
        static const enum insn_op t[8] = { OP_LB, OP_LH, OP_LW, OP_LD,
                                           OP_LBU, OP_LHU, OP_LWU, OP_ILLEGAL };
        return set(d, t[f3], rd, rs1, 0, imm_i);
    }
    case 0x23: {
        static const enum insn_op t[8] = { OP_SB, OP_SH, OP_SW, OP_SD };
        return set(d, t[f3], 0, rs1, rs2, imm_s);
    }
    case 0x13: return decode_op_imm(r, d, rd, rs1);
    case 0x33: return decode_op(r, d, rd, rs1, rs2);
    case 0x1b: return decode_op_imm32(r, d, rd, rs1);
    case 0x3b: return decode_op32(r, d, rd, rs1, rs2);
    case 0x0f:
        /* FENCE (incl. PAUSE and FENCE.TSO) orders nothing for us: every host
         * access is already sequentially consistent enough for one hart, and
         * AMOs/LR/SC use host atomics. */
        if (f3 == 0) set(d, OP_FENCE, 0, 0, 0, 0);
        else if (f3 == 1) set(d, OP_FENCE_I, 0, 0, 0, 0);
        return;
    case 0x73: return decode_system(r, d, rd, rs1, rs2);
    case 0x2f: return decode_amo(r, d, rd, rs1, rs2);
    case 0x07:
        if (f3 == 2) set(d, OP_FLW, rd, rs1, 0, imm_i);
        else if (f3 == 3) set(d, OP_FLD, rd, rs1, 0, imm_i);
        return;
    case 0x27:
        if (f3 == 2) set(d, OP_FSW, 0, rs1, rs2, imm_s);
        else if (f3 == 3) set(d, OP_FSD, 0, rs1, rs2, imm_s);
        return;
    case 0x43: case 0x47: case 0x4b: case 0x4f: case 0x53:
        /* fpu_execute decodes the rest from the raw bits */
        return set(d, OP_FP, rd, rs1, rs2, 0);
    }
}

/* C extension, RV64 (unprivileged spec ch. 16, table 16.5-16.7). */
static void decode16(uint32_t r, struct decoded_insn *d)
{
    unsigned f3 = bits(r, 15, 13);
    unsigned rd = bits(r, 11, 7), rs2 = bits(r, 6, 2);
    unsigned rdp = 8 + bits(r, 4, 2), rs1p = 8 + bits(r, 9, 7);
    int64_t imm6 = sext(bits(r, 12, 12) << 5 | bits(r, 6, 2), 6);
    unsigned uimm_d = bits(r, 12, 10) << 3 | bits(r, 6, 5) << 6;            /* c.ld/c.sd/c.fld */
    unsigned uimm_w = bits(r, 12, 10) << 3 | bits(r, 6, 6) << 2 | bits(r, 5, 5) << 6;

    switch ((r & 3) << 3 | f3) {
    /* quadrant 0 */
    case 000: {
        unsigned nz = bits(r, 12, 11) << 4 | bits(r, 10, 7) << 6 | bits(r, 6, 6) << 2 |
                      bits(r, 5, 5) << 3;
        if (nz) set(d, OP_ADDI, rdp, 2, 0, nz);
        return;
    }
    case 001: return set(d, OP_FLD, rdp, rs1p, 0, uimm_d);
    case 002: return set(d, OP_LW, rdp, rs1p, 0, uimm_w);
    case 003: return set(d, OP_LD, rdp, rs1p, 0, uimm_d);
    case 005: return set(d, OP_FSD, 0, rs1p, rdp, uimm_d);
    case 006: return set(d, OP_SW, 0, rs1p, rdp, uimm_w);
    case 007: return set(d, OP_SD, 0, rs1p, rdp, uimm_d);
    /* quadrant 1 */
    case 010: return set(d, OP_ADDI, rd, rd, 0, imm6);
    case 011:
        if (rd) set(d, OP_ADDIW, rd, rd, 0, imm6);
        return;
    case 012: return set(d, OP_ADDI, rd, 0, 0, imm6);
    case 013:
        if (rd == 2) {
            int64_t nz = sext(bits(r, 12, 12) << 9 | bits(r, 6, 6) << 4 | bits(r, 5, 5) << 6 |
                              bits(r, 4, 3) << 7 | bits(r, 2, 2) << 5, 10);
            if (nz) set(d, OP_ADDI, 2, 2, 0, nz);
        } else if (imm6) {
            set(d, OP_LUI, rd, 0, 0, imm6 * 4096);
        }
        return;
    case 014: {
        unsigned shamt = bits(r, 12, 12) << 5 | bits(r, 6, 2);
        unsigned rs2p = rdp;
        switch (bits(r, 11, 10)) {
        case 0: return set(d, OP_SRLI, rs1p, rs1p, 0, shamt);
        case 1: return set(d, OP_SRAI, rs1p, rs1p, 0, shamt);
        case 2: return set(d, OP_ANDI, rs1p, rs1p, 0, imm6);
        }
        static const enum insn_op t[8] = { OP_SUB, OP_XOR, OP_OR, OP_AND,
                                           OP_SUBW, OP_ADDW, OP_ILLEGAL, OP_ILLEGAL };
        return set(d, t[bits(r, 12, 12) << 2 | bits(r, 6, 5)], rs1p, rs1p, rs2p, 0);
    }
    case 015: {
        int64_t off = sext(bits(r, 12, 12) << 11 | bits(r, 11, 11) << 4 | bits(r, 10, 9) << 8 |
                           bits(r, 8, 8) << 10 | bits(r, 7, 7) << 6 | bits(r, 6, 6) << 7 |
                           bits(r, 5, 3) << 1 | bits(r, 2, 2) << 5, 12);
        return set(d, OP_JAL, 0, 0, 0, off);
    }
    case 016: case 017: {
        int64_t off = sext(bits(r, 12, 12) << 8 | bits(r, 11, 10) << 3 | bits(r, 6, 5) << 6 |
                           bits(r, 4, 3) << 1 | bits(r, 2, 2) << 5, 9);
        return set(d, f3 == 6 ? OP_BEQ : OP_BNE, 0, rs1p, 0, off);
    }
    /* quadrant 2 */
    case 020: return set(d, OP_SLLI, rd, rd, 0, bits(r, 12, 12) << 5 | bits(r, 6, 2));
    case 021:
        return set(d, OP_FLD, rd, 2, 0, bits(r, 12, 12) << 5 | bits(r, 6, 5) << 3 | bits(r, 4, 2) << 6);
    case 022:
        if (rd) set(d, OP_LW, rd, 2, 0, bits(r, 12, 12) << 5 | bits(r, 6, 4) << 2 | bits(r, 3, 2) << 6);
        return;
    case 023:
        if (rd) set(d, OP_LD, rd, 2, 0, bits(r, 12, 12) << 5 | bits(r, 6, 5) << 3 | bits(r, 4, 2) << 6);
        return;
    case 024:
        if (!bits(r, 12, 12)) {
            if (rs2) set(d, OP_ADD, rd, 0, rs2, 0);          /* c.mv */
            else if (rd) set(d, OP_JALR, 0, rd, 0, 0);       /* c.jr */
        } else {
            if (rs2) set(d, OP_ADD, rd, rd, rs2, 0);         /* c.add */
            else if (rd) set(d, OP_JALR, 1, rd, 0, 0);       /* c.jalr */
            else set(d, OP_EBREAK, 0, 0, 0, 0);              /* c.ebreak */
        }
        return;
    case 025: return set(d, OP_FSD, 0, 2, rs2, bits(r, 12, 10) << 3 | bits(r, 9, 7) << 6);
    case 026: return set(d, OP_SW, 0, 2, rs2, bits(r, 12, 9) << 2 | bits(r, 8, 7) << 6);
    case 027: return set(d, OP_SD, 0, 2, rs2, bits(r, 12, 10) << 3 | bits(r, 9, 7) << 6);
    }
}

void decode_insn(uint32_t raw, struct decoded_insn *out)
{
    memset(out, 0, sizeof(*out));
    out->op = OP_ILLEGAL;
    if ((raw & 3) == 3) {
        out->raw = raw;
        out->len = 4;
        decode32(raw, out);
    } else {
        out->raw = raw & 0xffff;
        out->len = 2;
        decode16(raw & 0xffff, out);
    }
}

unsigned decode_block(const uint8_t *code, unsigned room, struct decoded_insn *out)
{
    unsigned n = 0, off = 0;
    while (n < BLOCK_MAX_INSNS && room - off >= 2) {
        uint16_t lo;
        memcpy(&lo, code + off, 2);
        unsigned len = (lo & 3) == 3 ? 4 : 2;
        if (len > room - off)
            break;
        uint32_t raw = lo;
        if (len == 4)
            memcpy(&raw, code + off, 4);
        decode_for_block(raw, &out[n]);
        off += len;
        if (decode_ends_block(out[n++].op))
            break;
    }
    return n;
}
