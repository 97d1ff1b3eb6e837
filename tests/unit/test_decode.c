/* Unit tests for the instruction decoder (cpu/decode.c) through decode_insn():
 *
 *  - one or more encodings of every internal opcode with non-trivial
 *    registers and immediates (sign extension, the extreme values of the
 *    I/S/B/U/J formats, shamt 63), checking the opcode and every field;
 *  - every compressed form, with negative immediates, maximum offsets and
 *    one vector per immediate bit where the bit scattering is irregular;
 *  - reserved and unknown encodings, which must decode to OP_ILLEGAL;
 *  - an exhaustive sweep of all 16-bit encodings and a pseudo-random sweep
 *    of 32-bit encodings for structural invariants.
 *
 * The instruction words were produced by GNU as (riscv64-linux-gnu-as,
 * -march=rv64gc_zba_zbb_zbs_zihintpause) from the text shown next to each,
 * and the reserved encodings were checked to be rejected by objdump (apart
 * from c.addi16sp with a zero immediate, which binutils accepts but the
 * spec reserves). The expected fields were written by hand from the ISA
 * manual. When this file was written, the decoder also agreed field for
 * field with objdump on all 46757 valid compressed encodings. The cross
 * tools are not needed to run the test. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cpu/decode.h"

#include "check.h"

/* Every check in this file carries a context message. */
#undef CHECK
#define CHECK CHECK_MSG

/* One valid encoding and the decoding it must produce. Fields an
 * instruction does not use are expected to be zero. For the A extension imm
 * is the funct5; for Zicsr rs1 is the register or the 5-bit immediate and
 * imm the (unsigned) CSR number; for OP_FP only rd/rs1/rs2 are decoded. */
struct vec {
    uint32_t raw;
    const char *text;
    uint16_t op;
    uint8_t rd, rs1, rs2;
    int64_t imm;
};

/* Register numbers in the texts: zero=0 ra=1 sp=2 gp=3 tp=4 t0-t2=5-7
 * s0/s1=8/9 a0-a7=10-17 s2-s11=18-27 t3-t6=28-31 (fN likewise). */
static const struct vec vec32[] = {
    { 0x80000537, "lui a0, 0x80000", OP_LUI, 10, 0, 0, INT32_MIN },
    { 0x7fffffb7, "lui t6, 0x7ffff", OP_LUI, 31, 0, 0, 0x7ffff000 },
    { 0xfffff937, "lui s2, 0xfffff", OP_LUI, 18, 0, 0, -4096 },
    { 0x000010b7, "lui ra, 1", OP_LUI, 1, 0, 0, 4096 },
    { 0x80000997, "auipc s3, 0x80000", OP_AUIPC, 19, 0, 0, INT32_MIN },
    { 0x12345797, "auipc a5, 0x12345", OP_AUIPC, 15, 0, 0, 0x12345000 },
    { 0x7ffffe17, "auipc t3, 0x7ffff", OP_AUIPC, 28, 0, 0, 0x7ffff000 },
    { 0x7ffff2ef, "jal t0, .+1048574", OP_JAL, 5, 0, 0, 0xffffe },
    { 0x800000ef, "jal ra, .-1048576", OP_JAL, 1, 0, 0, -0x100000 },
    { 0xfffff06f, "jal zero, .-2", OP_JAL, 0, 0, 0, -2 },
    { 0x00100def, "jal s11, .+0x800", OP_JAL, 27, 0, 0, 2048 },
    { 0x000015ef, "jal a1, .+0x1000", OP_JAL, 11, 0, 0, 4096 },
    { 0x80058567, "jalr a0, -2048(a1)", OP_JALR, 10, 11, 0, -2048 },
    { 0x7ff280e7, "jalr ra, 2047(t0)", OP_JALR, 1, 5, 0, 2047 },
    { 0x00008067, "jalr zero, 0(ra)", OP_JALR, 0, 1, 0, 0 },
    { 0x80b50063, "beq a0, a1, .-4096", OP_BEQ, 0, 10, 11, -4096 },
    { 0x7e731fe3, "bne t1, t2, .+4094", OP_BNE, 0, 6, 7, 4094 },
    { 0x01fd40e3, "blt s10, t6, .+0x800", OP_BLT, 0, 26, 31, 2048 },
    { 0xfe0fdfe3, "bge t6, zero, .-2", OP_BGE, 0, 31, 0, -2 },
    { 0x0098e163, "bltu a7, s1, .+2", OP_BLTU, 0, 17, 9, 2 },
    { 0x7e41f063, "bgeu gp, tp, .+0x7e0", OP_BGEU, 0, 3, 4, 2016 },
    { 0x80058503, "lb a0, -2048(a1)", OP_LB, 10, 11, 0, -2048 },
    { 0x7ffd9f83, "lh t6, 2047(s11)", OP_LH, 31, 27, 0, 2047 },
    { 0xfff12083, "lw ra, -1(sp)", OP_LW, 1, 2, 0, -1 },
    { 0x0088b403, "ld s0, 8(a7)", OP_LD, 8, 17, 0, 8 },
    { 0x7ffece03, "lbu t3, 0x7ff(t4)", OP_LBU, 28, 29, 0, 2047 },
    { 0x8006d603, "lhu a2, -0x800(a3)", OP_LHU, 12, 13, 0, -2048 },
    { 0x4d2aea03, "lwu s4, 1234(s5)", OP_LWU, 20, 21, 0, 1234 },
    { 0x80a58023, "sb a0, -2048(a1)", OP_SB, 0, 11, 10, -2048 },
    { 0x7ffd9fa3, "sh t6, 2047(s11)", OP_SH, 0, 27, 31, 2047 },
    { 0xfe112fa3, "sw ra, -1(sp)", OP_SW, 0, 2, 1, -1 },
    { 0x0088bfa3, "sd s0, 31(a7)", OP_SD, 0, 17, 8, 31 },
    { 0xffeeb023, "sd t5, -32(t4)", OP_SD, 0, 29, 30, -32 },
    { 0x80058513, "addi a0, a1, -2048", OP_ADDI, 10, 11, 0, -2048 },
    { 0x7fff8f93, "addi t6, t6, 2047", OP_ADDI, 31, 31, 0, 2047 },
    { 0xfff92493, "slti s1, s2, -1", OP_SLTI, 9, 18, 0, -1 },
    { 0xfff73693, "sltiu a3, a4, -1", OP_SLTIU, 13, 14, 0, -1 },
    { 0x55534293, "xori t0, t1, 0x555", OP_XORI, 5, 6, 0, 1365 },
    { 0xaaaa6993, "ori s3, s4, -0x556", OP_ORI, 19, 20, 0, -1366 },
    { 0x7ff27193, "andi gp, tp, 0x7ff", OP_ANDI, 3, 4, 0, 2047 },
    { 0x03f81793, "slli a5, a6, 63", OP_SLLI, 15, 16, 0, 63 },
    { 0x02081793, "slli a5, a6, 32", OP_SLLI, 15, 16, 0, 32 },
    { 0x03fbdb13, "srli s6, s7, 63", OP_SRLI, 22, 23, 0, 63 },
    { 0x43fcdc13, "srai s8, s9, 63", OP_SRAI, 24, 25, 0, 63 },
    { 0x4013d313, "srai t1, t2, 1", OP_SRAI, 6, 7, 0, 1 },
    { 0x00c58533, "add a0, a1, a2", OP_ADD, 10, 11, 12, 0 },
    { 0x401d8fb3, "sub t6, s11, ra", OP_SUB, 31, 27, 1, 0 },
    { 0x013914b3, "sll s1, s2, s3", OP_SLL, 9, 18, 19, 0 },
    { 0x01de28b3, "slt a7, t3, t4", OP_SLT, 17, 28, 29, 0 },
    { 0x002fbf33, "sltu t5, t6, sp", OP_SLTU, 30, 31, 2, 0 },
    { 0x005241b3, "xor gp, tp, t0", OP_XOR, 3, 4, 5, 0 },
    { 0x0083d333, "srl t1, t2, s0", OP_SRL, 6, 7, 8, 0 },
    { 0x416ada33, "sra s4, s5, s6", OP_SRA, 20, 21, 22, 0 },
    { 0x019c6bb3, "or s7, s8, s9", OP_OR, 23, 24, 25, 0 },
    { 0x00e6fd33, "and s10, a3, a4", OP_AND, 26, 13, 14, 0 },
    { 0x8005851b, "addiw a0, a1, -2048", OP_ADDIW, 10, 11, 0, -2048 },
    { 0x7fff0f9b, "addiw t6, t5, 2047", OP_ADDIW, 31, 30, 0, 2047 },
    { 0x01f6961b, "slliw a2, a3, 31", OP_SLLIW, 12, 13, 0, 31 },
    { 0x01f7d71b, "srliw a4, a5, 31", OP_SRLIW, 14, 15, 0, 31 },
    { 0x41f8d81b, "sraiw a6, a7, 31", OP_SRAIW, 16, 17, 0, 31 },
    { 0x4009d91b, "sraiw s2, s3, 0", OP_SRAIW, 18, 19, 0, 0 },
    { 0x013904bb, "addw s1, s2, s3", OP_ADDW, 9, 18, 19, 0 },
    { 0x41ee8e3b, "subw t3, t4, t5", OP_SUBW, 28, 29, 30, 0 },
    { 0x003110bb, "sllw ra, sp, gp", OP_SLLW, 1, 2, 3, 0 },
    { 0x0062d23b, "srlw tp, t0, t1", OP_SRLW, 4, 5, 6, 0 },
    { 0x41addfbb, "sraw t6, s11, s10", OP_SRAW, 31, 27, 26, 0 },
    { 0x0330000f, "fence rw, rw", OP_FENCE, 0, 0, 0, 0 },
    { 0x8330000f, "fence.tso", OP_FENCE, 0, 0, 0, 0 },
    { 0x0100000f, "pause", OP_FENCE, 0, 0, 0, 0 },
    { 0x0ff0000f, "fence iorw, iorw", OP_FENCE, 0, 0, 0, 0 },
    { 0x0000100f, "fence.i", OP_FENCE_I, 0, 0, 0, 0 },
    { 0x00000073, "ecall", OP_ECALL, 0, 0, 0, 0 },
    { 0x00100073, "ebreak", OP_EBREAK, 0, 0, 0, 0 },
    { 0x021f8533, "mul x10, x31, x1", OP_MUL, 10, 31, 1, 0 },
    { 0x023f15b3, "mulh x11, x30, x3", OP_MULH, 11, 30, 3, 0 },
    { 0x025ea633, "mulhsu x12, x29, x5", OP_MULHSU, 12, 29, 5, 0 },
    { 0x027e36b3, "mulhu x13, x28, x7", OP_MULHU, 13, 28, 7, 0 },
    { 0x029dc733, "div x14, x27, x9", OP_DIV, 14, 27, 9, 0 },
    { 0x02bd57b3, "divu x15, x26, x11", OP_DIVU, 15, 26, 11, 0 },
    { 0x02dce833, "rem x16, x25, x13", OP_REM, 16, 25, 13, 0 },
    { 0x02fc78b3, "remu x17, x24, x15", OP_REMU, 17, 24, 15, 0 },
    { 0x03d28a3b, "mulw x20, x5, x29", OP_MULW, 20, 5, 29, 0 },
    { 0x03c34abb, "divw x21, x6, x28", OP_DIVW, 21, 6, 28, 0 },
    { 0x03b3db3b, "divuw x22, x7, x27", OP_DIVUW, 22, 7, 27, 0 },
    { 0x03a46bbb, "remw x23, x8, x26", OP_REMW, 23, 8, 26, 0 },
    { 0x0394fc3b, "remuw x24, x9, x25", OP_REMUW, 24, 9, 25, 0 },
    { 0x1005a52f, "lr.w a0, (a1)", OP_LR_W, 10, 11, 0, 0 },
    { 0x160dafaf, "lr.w.aqrl t6, (s11)", OP_LR_W, 31, 27, 0, 0 },
    { 0x18d7262f, "sc.w a2, a3, (a4)", OP_SC_W, 12, 14, 13, 0 },
    { 0x1a63a2af, "sc.w.rl t0, t1, (t2)", OP_SC_W, 5, 7, 6, 0 },
    { 0x1004b42f, "lr.d s0, (s1)", OP_LR_D, 8, 9, 0, 0 },
    { 0x140130af, "lr.d.aq ra, (sp)", OP_LR_D, 1, 2, 0, 0 },
    { 0x193a392f, "sc.d s2, s3, (s4)", OP_SC_D, 18, 20, 19, 0 },
    { 0x1fdf3e2f, "sc.d.aqrl t3, t4, (t5)", OP_SC_D, 28, 30, 29, 0 },
    { 0x00b6252f, "amoadd.w a0, a1, (a2)", OP_AMO_W, 10, 12, 11, 0 },
    { 0x075b3faf, "amoadd.d.aqrl t6, s5, (s6)", OP_AMO_D, 31, 22, 21, 0 },
    { 0x0cb6252f, "amoswap.w.aq a0, a1, (a2)", OP_AMO_W, 10, 12, 11, 1 },
    { 0x0f5b3faf, "amoswap.d.aqrl t6, s5, (s6)", OP_AMO_D, 31, 22, 21, 1 },
    { 0x20b6252f, "amoxor.w a0, a1, (a2)", OP_AMO_W, 10, 12, 11, 4 },
    { 0x275b3faf, "amoxor.d.aqrl t6, s5, (s6)", OP_AMO_D, 31, 22, 21, 4 },
    { 0x40b6252f, "amoor.w a0, a1, (a2)", OP_AMO_W, 10, 12, 11, 8 },
    { 0x475b3faf, "amoor.d.aqrl t6, s5, (s6)", OP_AMO_D, 31, 22, 21, 8 },
    { 0x60b6252f, "amoand.w a0, a1, (a2)", OP_AMO_W, 10, 12, 11, 12 },
    { 0x675b3faf, "amoand.d.aqrl t6, s5, (s6)", OP_AMO_D, 31, 22, 21, 12 },
    { 0x80b6252f, "amomin.w a0, a1, (a2)", OP_AMO_W, 10, 12, 11, 16 },
    { 0x875b3faf, "amomin.d.aqrl t6, s5, (s6)", OP_AMO_D, 31, 22, 21, 16 },
    { 0xa0b6252f, "amomax.w a0, a1, (a2)", OP_AMO_W, 10, 12, 11, 20 },
    { 0xa75b3faf, "amomax.d.aqrl t6, s5, (s6)", OP_AMO_D, 31, 22, 21, 20 },
    { 0xc0b6252f, "amominu.w a0, a1, (a2)", OP_AMO_W, 10, 12, 11, 24 },
    { 0xc75b3faf, "amominu.d.aqrl t6, s5, (s6)", OP_AMO_D, 31, 22, 21, 24 },
    { 0xe0b6252f, "amomaxu.w a0, a1, (a2)", OP_AMO_W, 10, 12, 11, 28 },
    { 0xe75b3faf, "amomaxu.d.aqrl t6, s5, (s6)", OP_AMO_D, 31, 22, 21, 28 },
    { 0x30059573, "csrrw a0, mstatus, a1", OP_CSRRW, 10, 11, 0, 768 },
    { 0xc0002ff3, "csrrs t6, cycle, zero", OP_CSRRS, 31, 0, 0, 3072 },
    { 0xfffdb473, "csrrc s0, 0xfff, s11", OP_CSRRC, 8, 27, 0, 4095 },
    { 0x180fd073, "csrrwi zero, satp, 31", OP_CSRRWI, 0, 31, 0, 384 },
    { 0x1000e7f3, "csrrsi a5, sstatus, 1", OP_CSRRSI, 15, 1, 0, 256 },
    { 0x800870f3, "csrrci ra, 0x800, 16", OP_CSRRCI, 1, 16, 0, 2048 },
    { 0x30200073, "mret", OP_MRET, 0, 0, 0, 0 },
    { 0x10200073, "sret", OP_SRET, 0, 0, 0, 0 },
    { 0x10500073, "wfi", OP_WFI, 0, 0, 0, 0 },
    { 0x12b50073, "sfence.vma a0, a1", OP_SFENCE_VMA, 0, 10, 11, 0 },
    { 0x13f00073, "sfence.vma zero, t6", OP_SFENCE_VMA, 0, 0, 31, 0 },
    { 0x12000073, "sfence.vma", OP_SFENCE_VMA, 0, 0, 0, 0 },
    { 0x8005a507, "flw fa0, -2048(a1)", OP_FLW, 10, 11, 0, -2048 },
    { 0x7ffdbf87, "fld ft11, 2047(s11)", OP_FLD, 31, 27, 0, 2047 },
    { 0xfe812fa7, "fsw fs0, -1(sp)", OP_FSW, 0, 2, 8, -1 },
    { 0x7f1fbfa7, "fsd fa7, 2047(t6)", OP_FSD, 0, 31, 17, 2047 },
    { 0x02c5f553, "fadd.d fa0, fa1, fa2", OP_FP, 10, 11, 12, 0 },
    { 0x1820f043, "fmadd.s ft0, ft1, ft2, ft3", OP_FP, 0, 1, 2, 0 },
    { 0xa33974c7, "fmsub.d fs1, fs2, fs3, fs4", OP_FP, 9, 18, 19, 0 },
    { 0x80f776cb, "fnmsub.s fa3, fa4, fa5, fa6", OP_FP, 13, 14, 15, 0 },
    { 0xfbeefe4f, "fnmadd.d ft8, ft9, ft10, ft11", OP_FP, 28, 29, 30, 0 },
    { 0xc225f553, "fcvt.l.d a0, fa1", OP_FP, 10, 11, 2, 0 },
    { 0xe20f8fd3, "fmv.x.d t6, ft11", OP_FP, 31, 31, 0, 0 },
    { 0x08c5853b, "add.uw a0, a1, a2", OP_ADD_UW, 10, 11, 12, 0 },
    { 0x207322b3, "sh1add t0, t1, t2", OP_SH1ADD, 5, 6, 7, 0 },
    { 0x2124c433, "sh2add s0, s1, s2", OP_SH2ADD, 8, 9, 18, 0 },
    { 0x21df6fb3, "sh3add t6, t5, t4", OP_SH3ADD, 31, 30, 29, 0 },
    { 0x20f726bb, "sh1add.uw a3, a4, a5", OP_SH1ADD_UW, 13, 14, 15, 0 },
    { 0x2138c83b, "sh2add.uw a6, a7, s3", OP_SH2ADD_UW, 16, 17, 19, 0 },
    { 0x216aea3b, "sh3add.uw s4, s5, s6", OP_SH3ADD_UW, 20, 21, 22, 0 },
    { 0x0bfc1b9b, "slli.uw s7, s8, 63", OP_SLLI_UW, 23, 24, 0, 63 },
    { 0x080c1b9b, "slli.uw s7, s8, 0", OP_SLLI_UW, 23, 24, 0, 0 },
    { 0x40c5f533, "andn a0, a1, a2", OP_ANDN, 10, 11, 12, 0 },
    { 0x407362b3, "orn t0, t1, t2", OP_ORN, 5, 6, 7, 0 },
    { 0x4124c433, "xnor s0, s1, s2", OP_XNOR, 8, 9, 18, 0 },
    { 0x60071693, "clz a3, a4", OP_CLZ, 13, 14, 0, 0 },
    { 0x6008179b, "clzw a5, a6", OP_CLZW, 15, 16, 0, 0 },
    { 0x601d9f93, "ctz t6, s11", OP_CTZ, 31, 27, 0, 0 },
    { 0x6011109b, "ctzw ra, sp", OP_CTZW, 1, 2, 0, 0 },
    { 0x60221193, "cpop gp, tp", OP_CPOP, 3, 4, 0, 0 },
    { 0x602e9e1b, "cpopw t3, t4", OP_CPOPW, 28, 29, 0, 0 },
    { 0x0ac5e533, "max a0, a1, a2", OP_MAX, 10, 11, 12, 0 },
    { 0x0b5a79b3, "maxu s3, s4, s5", OP_MAXU, 19, 20, 21, 0 },
    { 0x0bff4eb3, "min t4, t5, t6", OP_MIN, 29, 30, 31, 0 },
    { 0x0b8bdb33, "minu s6, s7, s8", OP_MINU, 22, 23, 24, 0 },
    { 0x604c9893, "sext.b a7, s9", OP_SEXT_B, 17, 25, 0, 0 },
    { 0x605d9d13, "sext.h s10, s11", OP_SEXT_H, 26, 27, 0, 0 },
    { 0x0803c33b, "zext.h t1, t2", OP_ZEXT_H, 6, 7, 0, 0 },
    { 0x60c59533, "rol a0, a1, a2", OP_ROL, 10, 11, 12, 0 },
    { 0x60f716bb, "rolw a3, a4, a5", OP_ROLW, 13, 14, 15, 0 },
    { 0x6124d433, "ror s0, s1, s2", OP_ROR, 8, 9, 18, 0 },
    { 0x63ff5f93, "rori t6, t5, 63", OP_RORI, 31, 30, 0, 63 },
    { 0x61fa599b, "roriw s3, s4, 31", OP_RORIW, 19, 20, 0, 31 },
    { 0x617b5abb, "rorw s5, s6, s7", OP_RORW, 21, 22, 23, 0 },
    { 0x2878d813, "orc.b a6, a7", OP_ORC_B, 16, 17, 0, 0 },
    { 0x6b8ede13, "rev8 t3, t4", OP_REV8, 28, 29, 0, 0 },
    { 0x48c59533, "bclr a0, a1, a2", OP_BCLR, 10, 11, 12, 0 },
    { 0x4bf31293, "bclri t0, t1, 63", OP_BCLRI, 5, 6, 0, 63 },
    { 0x4924d433, "bext s0, s1, s2", OP_BEXT, 8, 9, 18, 0 },
    { 0x4bfddf93, "bexti t6, s11, 63", OP_BEXTI, 31, 27, 0, 63 },
    { 0x68f716b3, "binv a3, a4, a5", OP_BINV, 13, 14, 15, 0 },
    { 0x6a011093, "binvi ra, sp, 32", OP_BINVI, 1, 2, 0, 32 },
    { 0x295a19b3, "bset s3, s4, s5", OP_BSET, 19, 20, 21, 0 },
    { 0x2bf21193, "bseti gp, tp, 63", OP_BSETI, 3, 4, 0, 63 },
};
static const struct vec vec16[] = {
    { 0x0040, "c.addi4spn s0, sp, 4", OP_ADDI, 8, 2, 0, 4 },
    { 0x1ffc, "c.addi4spn a5, sp, 1020", OP_ADDI, 15, 2, 0, 1020 },
    { 0x0408, "c.addi4spn a0, sp, 512", OP_ADDI, 10, 2, 0, 512 },
    { 0x3d68, "c.fld fa0, 248(a0)", OP_FLD, 10, 10, 0, 248 },
    { 0x2784, "c.fld fs1, 8(a5)", OP_FLD, 9, 15, 0, 8 },
    { 0x5fe8, "c.lw a0, 124(a5)", OP_LW, 10, 15, 0, 124 },
    { 0x40c0, "c.lw s0, 4(s1)", OP_LW, 8, 9, 0, 4 },
    { 0x42b0, "c.lw a2, 64(a3)", OP_LW, 12, 13, 0, 64 },
    { 0x7e6c, "c.ld a1, 248(a2)", OP_LD, 11, 12, 0, 248 },
    { 0x6058, "c.ld a4, 128(s0)", OP_LD, 14, 8, 0, 128 },
    { 0xa784, "c.fsd fs1, 8(a5)", OP_FSD, 0, 15, 9, 8 },
    { 0xbcfc, "c.fsd fa5, 248(s1)", OP_FSD, 0, 9, 15, 248 },
    { 0xdf74, "c.sw a3, 124(a4)", OP_SW, 0, 14, 13, 124 },
    { 0xc3a0, "c.sw s0, 64(a5)", OP_SW, 0, 15, 8, 64 },
    { 0xfc64, "c.sd s1, 248(s0)", OP_SD, 0, 8, 9, 248 },
    { 0xe51c, "c.sd a5, 8(a0)", OP_SD, 0, 10, 15, 8 },
    { 0x0001, "c.nop", OP_ADDI, 0, 0, 0, 0 },
    { 0x1501, "c.addi a0, -32", OP_ADDI, 10, 10, 0, -32 },
    { 0x02fd, "c.addi t0, 31", OP_ADDI, 5, 5, 0, 31 },
    { 0x1ffd, "c.addi t6, -1", OP_ADDI, 31, 31, 0, -1 },
    { 0x35fd, "c.addiw a1, -1", OP_ADDIW, 11, 11, 0, -1 },
    { 0x247d, "c.addiw s0, 31", OP_ADDIW, 8, 8, 0, 31 },
    { 0x3f81, "c.addiw t6, -32", OP_ADDIW, 31, 31, 0, -32 },
    { 0x2601, "c.addiw a2, 0", OP_ADDIW, 12, 12, 0, 0 },
    { 0x5601, "c.li a2, -32", OP_ADDI, 12, 0, 0, -32 },
    { 0x4ffd, "c.li t6, 31", OP_ADDI, 31, 0, 0, 31 },
    { 0x7101, "c.addi16sp sp, -512", OP_ADDI, 2, 2, 0, -512 },
    { 0x617d, "c.addi16sp sp, 496", OP_ADDI, 2, 2, 0, 496 },
    { 0x6141, "c.addi16sp sp, 16", OP_ADDI, 2, 2, 0, 16 },
    { 0x6105, "c.addi16sp sp, 32", OP_ADDI, 2, 2, 0, 32 },
    { 0x6121, "c.addi16sp sp, 64", OP_ADDI, 2, 2, 0, 64 },
    { 0x6109, "c.addi16sp sp, 128", OP_ADDI, 2, 2, 0, 128 },
    { 0x6111, "c.addi16sp sp, 256", OP_ADDI, 2, 2, 0, 256 },
    { 0x7681, "c.lui a3, 0xfffe0", OP_LUI, 13, 0, 0, -0x20000 },
    { 0x62fd, "c.lui t0, 31", OP_LUI, 5, 0, 0, 0x1f000 },
    { 0x6d85, "c.lui s11, 1", OP_LUI, 27, 0, 0, 4096 },
    { 0x70fd, "c.lui ra, 0xfffff", OP_LUI, 1, 0, 0, -4096 },
    { 0x937d, "c.srli a4, 63", OP_SRLI, 14, 14, 0, 63 },
    { 0x8005, "c.srli s0, 1", OP_SRLI, 8, 8, 0, 1 },
    { 0x8785, "c.srai a5, 1", OP_SRAI, 15, 15, 0, 1 },
    { 0x9481, "c.srai s1, 32", OP_SRAI, 9, 9, 0, 32 },
    { 0x9881, "c.andi s1, -32", OP_ANDI, 9, 9, 0, -32 },
    { 0x897d, "c.andi a0, 31", OP_ANDI, 10, 10, 0, 31 },
    { 0x8c05, "c.sub s0, s1", OP_SUB, 8, 8, 9, 0 },
    { 0x8d3d, "c.xor a0, a5", OP_XOR, 10, 10, 15, 0 },
    { 0x8dd1, "c.or a1, a2", OP_OR, 11, 11, 12, 0 },
    { 0x8ef9, "c.and a3, a4", OP_AND, 13, 13, 14, 0 },
    { 0x9f1d, "c.subw a4, a5", OP_SUBW, 14, 14, 15, 0 },
    { 0x9ca1, "c.addw s1, s0", OP_ADDW, 9, 9, 8, 0 },
    { 0xb001, "c.j .-2048", OP_JAL, 0, 0, 0, -2048 },
    { 0xaffd, "c.j .+2046", OP_JAL, 0, 0, 0, 2046 },
    { 0xa009, "c.j .+2", OP_JAL, 0, 0, 0, 2 },
    { 0xa101, "c.j .+0x400", OP_JAL, 0, 0, 0, 1024 },
    { 0xa02d, "c.j .+0x2a", OP_JAL, 0, 0, 0, 42 },
    { 0xae91, "c.j .+0x354", OP_JAL, 0, 0, 0, 852 },
    { 0xd101, "c.beqz a0, .-256", OP_BEQ, 0, 10, 0, -256 },
    { 0xecfd, "c.bnez s1, .+254", OP_BNE, 0, 9, 0, 254 },
    { 0xc7cd, "c.beqz a5, .+0xaa", OP_BEQ, 0, 15, 0, 170 },
    { 0xe831, "c.bnez s0, .+0x54", OP_BNE, 0, 8, 0, 84 },
    { 0x1e7e, "c.slli t3, 63", OP_SLLI, 28, 28, 0, 63 },
    { 0x0506, "c.slli a0, 1", OP_SLLI, 10, 10, 0, 1 },
    { 0x37fe, "c.fldsp fa5, 504(sp)", OP_FLD, 15, 2, 0, 504 },
    { 0x2022, "c.fldsp ft0, 8(sp)", OP_FLD, 0, 2, 0, 8 },
    { 0x50fe, "c.lwsp ra, 252(sp)", OP_LW, 1, 2, 0, 252 },
    { 0x4f92, "c.lwsp t6, 4(sp)", OP_LW, 31, 2, 0, 4 },
    { 0x5502, "c.lwsp a0, 32(sp)", OP_LW, 10, 2, 0, 32 },
    { 0x747e, "c.ldsp s0, 504(sp)", OP_LD, 8, 2, 0, 504 },
    { 0x6fa2, "c.ldsp t6, 8(sp)", OP_LD, 31, 2, 0, 8 },
    { 0x7582, "c.ldsp a1, 32(sp)", OP_LD, 11, 2, 0, 32 },
    { 0x8082, "c.jr ra", OP_JALR, 0, 1, 0, 0 },
    { 0x8f82, "c.jr t6", OP_JALR, 0, 31, 0, 0 },
    { 0x852e, "c.mv a0, a1", OP_ADD, 10, 0, 11, 0 },
    { 0x8fee, "c.mv t6, s11", OP_ADD, 31, 0, 27, 0 },
    { 0x9002, "c.ebreak", OP_EBREAK, 0, 0, 0, 0 },
    { 0x9282, "c.jalr t0", OP_JALR, 1, 5, 0, 0 },
    { 0x9f82, "c.jalr t6", OP_JALR, 1, 31, 0, 0 },
    { 0x947e, "c.add s0, t6", OP_ADD, 8, 8, 31, 0 },
    { 0x90aa, "c.add ra, a0", OP_ADD, 1, 1, 10, 0 },
    { 0xbfee, "c.fsdsp fs11, 504(sp)", OP_FSD, 0, 2, 27, 504 },
    { 0xa42a, "c.fsdsp fa0, 8(sp)", OP_FSD, 0, 2, 10, 8 },
    { 0xdfaa, "c.swsp a0, 252(sp)", OP_SW, 0, 2, 10, 252 },
    { 0xc27e, "c.swsp t6, 4(sp)", OP_SW, 0, 2, 31, 4 },
    { 0xfffe, "c.sdsp t6, 504(sp)", OP_SD, 0, 2, 31, 504 },
    { 0xe406, "c.sdsp ra, 8(sp)", OP_SD, 0, 2, 1, 8 },
    { 0x002c, "c.addi4spn a1, sp, 8", OP_ADDI, 11, 2, 0, 8 },
    { 0x1810, "c.addi4spn a2, sp, 48", OP_ADDI, 12, 2, 0, 48 },
    { 0x0394, "c.addi4spn a3, sp, 448", OP_ADDI, 13, 2, 0, 448 },
    { 0x4798, "c.lw a4, 8(a5)", OP_LW, 14, 15, 0, 8 },
    { 0x4b98, "c.lw a4, 16(a5)", OP_LW, 14, 15, 0, 16 },
    { 0x5398, "c.lw a4, 32(a5)", OP_LW, 14, 15, 0, 32 },
    { 0x6b98, "c.ld a4, 16(a5)", OP_LD, 14, 15, 0, 16 },
    { 0x7398, "c.ld a4, 32(a5)", OP_LD, 14, 15, 0, 32 },
    { 0x63b8, "c.ld a4, 64(a5)", OP_LD, 14, 15, 0, 64 },
    { 0x4622, "c.lwsp a2, 8(sp)", OP_LW, 12, 2, 0, 8 },
    { 0x4642, "c.lwsp a2, 16(sp)", OP_LW, 12, 2, 0, 16 },
    { 0x4606, "c.lwsp a2, 64(sp)", OP_LW, 12, 2, 0, 64 },
    { 0x460a, "c.lwsp a2, 128(sp)", OP_LW, 12, 2, 0, 128 },
    { 0x66c2, "c.ldsp a3, 16(sp)", OP_LD, 13, 2, 0, 16 },
    { 0x6686, "c.ldsp a3, 64(sp)", OP_LD, 13, 2, 0, 64 },
    { 0x668a, "c.ldsp a3, 128(sp)", OP_LD, 13, 2, 0, 128 },
    { 0x6692, "c.ldsp a3, 256(sp)", OP_LD, 13, 2, 0, 256 },
    { 0x2906, "c.fldsp fs2, 64(sp)", OP_FLD, 18, 2, 0, 64 },
    { 0xc43a, "c.swsp a4, 8(sp)", OP_SW, 0, 2, 14, 8 },
    { 0xd03a, "c.swsp a4, 32(sp)", OP_SW, 0, 2, 14, 32 },
    { 0xc0ba, "c.swsp a4, 64(sp)", OP_SW, 0, 2, 14, 64 },
    { 0xc13a, "c.swsp a4, 128(sp)", OP_SW, 0, 2, 14, 128 },
    { 0xe83e, "c.sdsp a5, 16(sp)", OP_SD, 0, 2, 15, 16 },
    { 0xe0be, "c.sdsp a5, 64(sp)", OP_SD, 0, 2, 15, 64 },
    { 0xe23e, "c.sdsp a5, 256(sp)", OP_SD, 0, 2, 15, 256 },
    { 0xa14e, "c.fsdsp fs3, 128(sp)", OP_FSD, 0, 2, 19, 128 },
    { 0xc189, "c.beqz a1, .+2", OP_BEQ, 0, 11, 0, 2 },
    { 0xc185, "c.beqz a1, .+0x20", OP_BEQ, 0, 11, 0, 32 },
    { 0xe241, "c.bnez a2, .+0x80", OP_BNE, 0, 12, 0, 128 },
    { 0xa005, "c.j .+0x20", OP_JAL, 0, 0, 0, 32 },
    { 0xa801, "c.j .+0x10", OP_JAL, 0, 0, 0, 16 },
    { 0xa401, "c.j .+0x200", OP_JAL, 0, 0, 0, 512 },
    { 0xa041, "c.j .+0x80", OP_JAL, 0, 0, 0, 128 },
    { 0x4541, "c.li a0, 16", OP_ADDI, 10, 0, 0, 16 },
    { 0x4505, "c.li a0, 1", OP_ADDI, 10, 0, 0, 1 },
    { 0x1902, "c.slli s2, 32", OP_SLLI, 18, 18, 0, 32 },
    { 0x9181, "c.srli a1, 32", OP_SRLI, 11, 11, 0, 32 },
    { 0x95fd, "c.srai a1, 63", OP_SRAI, 11, 11, 0, 63 },
};


/* Reserved or unsupported encodings: all must decode to OP_ILLEGAL. */
struct ill {
    uint32_t raw;
    const char *what;
};

static const struct ill ill[] = {
    { 0x0000, "all-zero halfword" },
    { 0x0004, "c.addi4spn a1 with zero imm" },
    { 0x0018, "c.addi4spn a4 with zero imm" },
    { 0x6501, "c.lui a0 with zero imm" },
    { 0x6101, "c.addi16sp with zero imm" },
    { 0x4002, "c.lwsp rd=0" },
    { 0x5002, "c.lwsp rd=0 imm" },
    { 0x6002, "c.ldsp rd=0" },
    { 0x8002, "c.jr rs1=0" },
    { 0x2001, "c.addiw rd=0" },
    { 0x307d, "c.addiw rd=0 imm -1" },
    { 0x8000, "quadrant 0 funct3=4" },
    { 0x9ffc, "quadrant 0 funct3=4, other bits" },
    { 0x9c41, "c.subw-space reserved (12=1 6:5=2)" },
    { 0x9c61, "c.subw-space reserved (12=1 6:5=3)" },
    { 0x0205951b, "slliw with imm[5]=1" },
    { 0x03f5d51b, "srliw with imm[5]=1" },
    { 0x43f5d51b, "sraiw with imm[5]=1" },
    { 0x0005a51b, "OP-IMM-32 funct3=2" },
    { 0x04c58533, "OP funct7=0x02" },
    { 0x80c58533, "OP funct7=0x40" },
    { 0x40c59533, "OP funct7=0x20 funct3=1" },
    { 0x40c5a533, "OP funct7=0x20 funct3=2" },
    { 0x20c58533, "OP funct7=0x10 funct3=0" },
    { 0x0ac58533, "OP funct7=0x05 funct3=0" },
    { 0x60c58533, "OP funct7=0x30 funct3=0" },
    { 0x28c5d533, "OP funct7=0x14 funct3=5" },
    { 0x68c5d533, "OP funct7=0x34 funct3=5" },
    { 0x04c5853b, "OP-32 funct7=0x02" },
    { 0x00c5a53b, "OP-32 funct7=0 funct3=2" },
    { 0x40c5953b, "OP-32 funct7=0x20 funct3=1" },
    { 0x02c5953b, "OP-32 funct7=1 funct3=1" },
    { 0x0815c53b, "zext.h with rs2=1" },
    { 0x08c5953b, "OP-32 funct7=4 funct3=1" },
    { 0x0805c533, "zext.h in OP (rv32 form)" },
    { 0x1015a52f, "lr.w with rs2=1" },
    { 0x15f5b52f, "lr.d.rl with rs2=31" },
    { 0x28c5a52f, "AMO funct5=0x05" },
    { 0xf8c5b52f, "AMO funct5=0x1f" },
    { 0x30c5a52f, "AMO funct5=0x06" },
    { 0x00c5852f, "amoadd.b (funct3=0)" },
    { 0x00c5c52f, "AMO funct3=4" },
    { 0x0000200f, "FENCE funct3=2" },
    { 0x0000700f, "FENCE funct3=7" },
    { 0x30004573, "SYSTEM funct3=4" },
    { 0x00200073, "uret" },
    { 0x7b200073, "dret" },
    { 0x00000573, "ecall with rd=a0" },
    { 0x00108073, "ebreak with rs1=ra" },
    { 0x12b50573, "sfence.vma with rd=a0" },
    { 0x10500573, "wfi with rd=a0" },
    { 0x00059567, "jalr funct3=1" },
    { 0x0005c567, "jalr funct3=4" },
    { 0x0005f503, "load funct3=7" },
    { 0x00a5c023, "store funct3=4" },
    { 0x00a5d023, "store funct3=5" },
    { 0x00a5e023, "store funct3=6" },
    { 0x00a5f023, "store funct3=7" },
    { 0x00a5a063, "branch funct3=2" },
    { 0x00a5b063, "branch funct3=3" },
    { 0x00059507, "flh (funct3=1)" },
    { 0x0005c507, "flq (funct3=4)" },
    { 0x00a59027, "fsh (funct3=1)" },
    { 0x10059513, "OP-IMM funct3=1 funct6=0x04" },
    { 0x60359513, "OP-IMM funct3=1 funct12=0x603" },
    { 0x60659513, "OP-IMM funct3=1 funct12=0x606" },
    { 0x1005d513, "OP-IMM funct3=5 funct6=0x04" },
    { 0x2885d513, "orc.b neighbour (funct12=0x288)" },
    { 0x6b05d513, "rev8 neighbour (funct12=0x6b0)" },
    { 0x6985d513, "rev8 RV32 encoding (funct12=0x698)" },
    { 0x60759513, "OP-IMM funct12=0x607" },
    { 0x10508073, "wfi with rs1=ra" },
    { 0x6035951b, "OP-IMM-32 funct12=0x603" },
    { 0x6205d51b, "roriw with imm[5]=1" },
    { 0x0000000b, "custom-0 opcode" },
    { 0x0000005b, "custom-2 opcode" },
    { 0x0000001f, "48-bit instruction prefix" },
    { 0x0000003f, "64-bit instruction prefix" },
    { 0xffffffff, "all-ones word" },
};

static bool covered[OP_COUNT];

static void check_vec(const struct vec *v, bool compressed)
{
    struct decoded_insn d;
    decode_insn(v->raw, &d);
    CHECK(d.op == v->op, "%s (0x%08x): op %s, want %s", v->text, v->raw,
          decode_op_name(d.op), decode_op_name(v->op));
    CHECK(d.rd == v->rd && d.rs1 == v->rs1 && d.rs2 == v->rs2,
          "%s (0x%08x): rd/rs1/rs2 %u/%u/%u, want %u/%u/%u", v->text, v->raw,
          d.rd, d.rs1, d.rs2, v->rd, v->rs1, v->rs2);
    CHECK(d.imm == v->imm, "%s (0x%08x): imm %lld (0x%llx), want %lld", v->text, v->raw,
          (long long)d.imm, (unsigned long long)d.imm, (long long)v->imm);
    CHECK(d.len == (compressed ? 2 : 4) && d.raw == v->raw, "%s: len %u raw 0x%x",
          v->text, d.len, d.raw);
    if (compressed) {
        /* The upper half of the word is the next instruction: ignored. */
        struct decoded_insn e;
        decode_insn(v->raw | 0xdead0000u, &e);
        CHECK(e.op == d.op && e.rd == d.rd && e.rs1 == d.rs1 && e.rs2 == d.rs2 &&
              e.imm == d.imm && e.len == 2 && e.raw == v->raw,
              "%s: decoding depends on the upper halfword", v->text);
    }
    covered[v->op] = true;
}

static void test_vectors(void)
{
    for (size_t i = 0; i < sizeof(vec32) / sizeof(vec32[0]); i++)
        check_vec(&vec32[i], false);
    /* Every opcode but OP_ILLEGAL has a 32-bit encoding in the table. */
    for (unsigned op = 1; op < OP_COUNT; op++)
        CHECK(covered[op], "no 32-bit vector for OP_%s", decode_op_name(op));
    for (size_t i = 0; i < sizeof(vec16) / sizeof(vec16[0]); i++)
        check_vec(&vec16[i], true);
}

static void test_illegal(void)
{
    for (size_t i = 0; i < sizeof(ill) / sizeof(ill[0]); i++) {
        struct decoded_insn d;
        bool compressed = (ill[i].raw & 3) != 3;
        decode_insn(ill[i].raw, &d);
        CHECK(d.op == OP_ILLEGAL, "%s (0x%08x) decodes to %s", ill[i].what, ill[i].raw,
              decode_op_name(d.op));
        CHECK(d.len == (compressed ? 2 : 4), "%s: len %u", ill[i].what, d.len);
        /* raw is the decode cache tag: exactly the instruction's bits. */
        CHECK(d.raw == (compressed ? (ill[i].raw & 0xffff) : ill[i].raw), "%s: raw 0x%x",
              ill[i].what, d.raw);
    }
    /* A 16-bit illegal encoding is illegal whatever follows it. */
    struct decoded_insn d;
    decode_insn(0xffff0000u, &d);
    CHECK(d.op == OP_ILLEGAL && d.len == 2 && d.raw == 0, "0x0000 + 0xffff upper half: %s",
          decode_op_name(d.op));
    /* Nothing of an earlier decoding survives in the output. */
    decode_insn(0xfffdb473, &d); /* csrrc s0, 0xfff, s11 */
    decode_insn(0x0000, &d);
    CHECK(d.op == OP_ILLEGAL && d.rd == 0 && d.rs1 == 0 && d.rs2 == 0 && d.rs3 == 0 && d.imm == 0,
          "stale fields after an illegal decode");
}

/* The length rule: bits 1:0 == 11 means 32 bits, anything else 16. */
static void test_length(void)
{
    for (unsigned low = 0; low < 4; low++) {
        struct decoded_insn d;
        decode_insn(0x00000010u | low, &d);
        CHECK(d.len == (low == 3 ? 4 : 2), "low bits %u: len %u", low, d.len);
    }
    struct decoded_insn d;
    decode_insn(0x00c58533, &d); /* add a0, a1, a2 */
    CHECK(d.len == 4 && d.op == OP_ADD, "add: len %u", d.len);
    decode_insn(0x852e, &d);     /* c.mv a0, a1 */
    CHECK(d.len == 2 && d.op == OP_ADD, "c.mv: len %u", d.len);
}

static void test_names(void)
{
    CHECK(!strcmp(decode_op_name(OP_ILLEGAL), "ILLEGAL"), "%s", decode_op_name(OP_ILLEGAL));
    CHECK(!strcmp(decode_op_name(OP_ADD), "ADD"), "%s", decode_op_name(OP_ADD));
    CHECK(!strcmp(decode_op_name(OP_SFENCE_VMA), "SFENCE_VMA"), "%s",
          decode_op_name(OP_SFENCE_VMA));
    CHECK(!strcmp(decode_op_name(OP_BSETI), "BSETI"), "%s", decode_op_name(OP_BSETI));
    CHECK(!strcmp(decode_op_name(OP_COUNT), "?"), "%s", decode_op_name(OP_COUNT));
    CHECK(!strcmp(decode_op_name(~0u), "?"), "%s", decode_op_name(~0u));
    int dup = 0;
    for (unsigned a = 0; a < OP_COUNT; a++)
        for (unsigned b = a + 1; b < OP_COUNT; b++)
            dup += !strcmp(decode_op_name(a), decode_op_name(b));
    CHECK(dup == 0, "%d duplicate op names", dup);
}

static bool is_prime_reg(unsigned r) { return r >= 8 && r <= 15; }

/* All 49152 16-bit encodings: structural invariants of the expansion. */
static void test_all_compressed(void)
{
    unsigned illegal = 0, bad_len = 0, bad_reg = 0, bad_align = 0, bad_prime = 0;
    for (uint32_t w = 0; w < 0x10000; w++) {
        if ((w & 3) == 3)
            continue;
        struct decoded_insn d;
        decode_insn(w, &d);
        if (d.len != 2 || d.raw != w || d.op >= OP_COUNT)
            bad_len++;
        if (d.rd > 31 || d.rs1 > 31 || d.rs2 > 31)
            bad_reg++;
        unsigned quadrant = w & 3, f3 = w >> 13;
        switch (d.op) {
        case OP_ILLEGAL: illegal++; break;
        case OP_LW: case OP_SW:
            bad_align += (d.imm & 3) != 0 || d.imm < 0 || d.imm > 252;
            break;
        case OP_LD: case OP_SD: case OP_FLD: case OP_FSD:
            bad_align += (d.imm & 7) != 0 || d.imm < 0 || d.imm > 504;
            break;
        case OP_JAL:
            bad_align += (d.imm & 1) != 0 || d.imm < -2048 || d.imm > 2046 || d.rd != 0;
            break;
        case OP_BEQ: case OP_BNE:
            bad_align += (d.imm & 1) != 0 || d.imm < -256 || d.imm > 254 || d.rs2 != 0;
            bad_prime += !is_prime_reg(d.rs1);
            break;
        case OP_LUI:
            bad_align += (d.imm & 0xfff) != 0 || d.imm == 0 || d.imm < -(32 << 12) ||
                         d.imm > (31 << 12);
            break;
        default: break;
        }
        /* Quadrant 0 uses x8-x15 only, apart from sp in c.addi4spn. */
        if (quadrant == 0 && d.op != OP_ILLEGAL)
            bad_prime += !(is_prime_reg(d.rd) || d.rd == 0) ||
                         !(is_prime_reg(d.rs1) || d.rs1 == 2) ||
                         !(is_prime_reg(d.rs2) || d.rs2 == 0);
        /* c.lwsp/c.ldsp/c.fldsp/c.swsp/c.sdsp/c.fsdsp address off sp. */
        if (quadrant == 2 && f3 != 0 && f3 != 4 && d.op != OP_ILLEGAL)
            bad_prime += d.rs1 != 2;
    }
    CHECK(bad_len == 0, "%u halfwords with a wrong len/raw/op", bad_len);
    CHECK(bad_reg == 0, "%u halfwords with a register above x31", bad_reg);
    CHECK(bad_align == 0, "%u halfwords with an out-of-range immediate", bad_align);
    CHECK(bad_prime == 0, "%u halfwords with a wrong register class", bad_prime);
    /* The reserved 16-bit space of RV64C: quadrant 0 funct3=4 (2048),
     * c.addi4spn with a zero immediate (8), c.addiw rd=0 (64), c.lui and
     * c.addi16sp with a zero immediate (32), the reserved c.subw/c.addw
     * neighbours (128), c.lwsp and c.ldsp rd=0 (64 + 64), c.jr x0 (1).
     * Hints (rd=0 forms of c.li, c.lui, c.mv, c.slli, ...) are legal. */
    CHECK(illegal == 2409, "%u illegal halfwords, want 2409", illegal);
}

/* Pseudo-random 32-bit words: never out of range, and register fields are
 * always either the standard bit fields or zero (unused). */
static void test_random32(void)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    unsigned bad = 0, legal = 0;
    for (int i = 0; i < 1000000; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        uint32_t w = (uint32_t)(s >> 16) | 3;
        struct decoded_insn d;
        decode_insn(w, &d);
        unsigned rd = (w >> 7) & 31, rs1 = (w >> 15) & 31, rs2 = (w >> 20) & 31;
        bool ok = d.len == 4 && d.raw == w && d.op < OP_COUNT &&
                  (d.rd == rd || d.rd == 0) && (d.rs1 == rs1 || d.rs1 == 0) &&
                  (d.rs2 == rs2 || d.rs2 == 0);
        if (!ok && bad++ < 5)
            printf("random 0x%08x: %s rd %u rs1 %u rs2 %u len %u\n", w, decode_op_name(d.op),
                   d.rd, d.rs1, d.rs2, d.len);
        legal += d.op != OP_ILLEGAL;
    }
    CHECK(bad == 0, "%u random words broke an invariant", bad);
    CHECK(legal > 100000, "only %u of 1000000 random words decode", legal);
}

int main(void)
{
    test_vectors();
    test_illegal();
    test_length();
    test_names();
    test_all_compressed();
    test_random32();
    return check_summary("decode");
}
