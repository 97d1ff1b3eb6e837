/* Instruction decoder: raw bits -> struct decoded_insn (internal opcode plus
 * operand fields). Compressed instructions (C extension) are expanded into
 * the same form as their 32-bit equivalents, so the executor sees one ISA.
 *
 * Decoding depends only on the instruction bits, never on hart state or
 * privilege mode, so a decoded block serves every mode.
 * Pure functions: any thread. */
#ifndef NIMBUS_CPU_DECODE_H
#define NIMBUS_CPU_DECODE_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/hart.h"

#define OPS(X)                                                                       \
    X(ILLEGAL)                                                                       \
    /* RV64I */                                                                      \
    X(LUI) X(AUIPC) X(JAL) X(JALR)                                                   \
    X(BEQ) X(BNE) X(BLT) X(BGE) X(BLTU) X(BGEU)                                      \
    X(LB) X(LH) X(LW) X(LD) X(LBU) X(LHU) X(LWU)                                     \
    X(SB) X(SH) X(SW) X(SD)                                                          \
    X(ADDI) X(SLTI) X(SLTIU) X(XORI) X(ORI) X(ANDI) X(SLLI) X(SRLI) X(SRAI)          \
    X(ADD) X(SUB) X(SLL) X(SLT) X(SLTU) X(XOR) X(SRL) X(SRA) X(OR) X(AND)            \
    X(ADDIW) X(SLLIW) X(SRLIW) X(SRAIW) X(ADDW) X(SUBW) X(SLLW) X(SRLW) X(SRAW)      \
    X(FENCE) X(FENCE_I) X(ECALL) X(EBREAK)                                           \
    /* M */                                                                          \
    X(MUL) X(MULH) X(MULHSU) X(MULHU) X(DIV) X(DIVU) X(REM) X(REMU)                  \
    X(MULW) X(DIVW) X(DIVUW) X(REMW) X(REMUW)                                        \
    /* A: imm holds the funct5 for AMOs */                                           \
    X(LR_W) X(SC_W) X(AMO_W) X(LR_D) X(SC_D) X(AMO_D)                                \
    /* Zicsr: imm = CSR number; rs1 = register or 5-bit immediate */                 \
    X(CSRRW) X(CSRRS) X(CSRRC) X(CSRRWI) X(CSRRSI) X(CSRRCI)                         \
    /* privileged */                                                                 \
    X(MRET) X(SRET) X(WFI) X(SFENCE_VMA)                                             \
    /* F/D: loads and stores here, everything else through fpu_execute */           \
    X(FLW) X(FLD) X(FSW) X(FSD) X(FP)                                                \
    /* Zba */                                                                        \
    X(ADD_UW) X(SH1ADD) X(SH2ADD) X(SH3ADD) X(SH1ADD_UW) X(SH2ADD_UW) X(SH3ADD_UW)   \
    X(SLLI_UW)                                                                       \
    /* Zbb */                                                                        \
    X(ANDN) X(ORN) X(XNOR) X(CLZ) X(CLZW) X(CTZ) X(CTZW) X(CPOP) X(CPOPW)            \
    X(MAX) X(MAXU) X(MIN) X(MINU) X(SEXT_B) X(SEXT_H) X(ZEXT_H)                      \
    X(ROL) X(ROLW) X(ROR) X(RORI) X(RORIW) X(RORW) X(ORC_B) X(REV8)                  \
    /* Zbs */                                                                        \
    X(BCLR) X(BCLRI) X(BEXT) X(BEXTI) X(BINV) X(BINVI) X(BSET) X(BSETI)

#define OP_ENUM(name) OP_##name,
enum insn_op { OPS(OP_ENUM) OP_COUNT };
#undef OP_ENUM

/* AMO funct5 values (unprivileged spec ch. 8.4) */
enum amo_funct {
    AMO_ADD = 0x00, AMO_SWAP = 0x01, AMO_XOR = 0x04, AMO_OR = 0x08, AMO_AND = 0x0c,
    AMO_MIN = 0x10, AMO_MAX = 0x14, AMO_MINU = 0x18, AMO_MAXU = 0x1c,
};

/* Decodes `raw` (a 32-bit instruction, or a 16-bit one in the low half when
 * raw & 3 != 3) into *out. Unknown encodings decode to OP_ILLEGAL. */
void decode_insn(uint32_t raw, struct decoded_insn *out);

/* decode_insn for execution from a decoded block: results for x0 go to
 * the sink x[32] (FP loads name an f register). */
static inline void decode_for_block(uint32_t raw, struct decoded_insn *out)
{
    decode_insn(raw, out);
    if (out->rd == 0 && out->op != OP_FLW && out->op != OP_FLD)
        out->rd = 32;
}

/* Ends a decoded block: after one of these the next pc is not simply
 * pc + len, or the hart must look at interrupts before going on. */
static inline bool decode_ends_block(unsigned op)
{
    switch (op) {
    case OP_JAL: case OP_JALR: case OP_BEQ: case OP_BNE: case OP_BLT: case OP_BGE:
    case OP_BLTU: case OP_BGEU: case OP_ECALL: case OP_EBREAK: case OP_MRET: case OP_SRET:
    case OP_WFI: case OP_SFENCE_VMA: case OP_FENCE_I: case OP_ILLEGAL:
    case OP_CSRRW: case OP_CSRRS: case OP_CSRRC: case OP_CSRRWI: case OP_CSRRSI: case OP_CSRRCI:
        return true;
    }
    return false;
}

/* Decodes the straight-line block at host address `code`, with `room`
 * bytes left in its page, into out[] (room for BLOCK_MAX_INSNS), as
 * decode_for_block does, ending after an instruction that ends a block.
 * Returns the count, 0 if not even the first instruction fits in the page
 * (it straddles the boundary). */
unsigned decode_block(const uint8_t *code, unsigned room, struct decoded_insn *out);

/* Name of an internal opcode, for tracing and tests. */
const char *decode_op_name(unsigned op);

#endif
