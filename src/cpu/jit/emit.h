/* The emitter: the only interface between the translator's front end
 * (translate.c, which knows RISC-V) and a host backend (emit_x86_64.c, which
 * knows the host ISA). The front end works with a handful of virtual
 * registers and simple two-address operations; a backend for another host
 * (arm64) implements these functions and nothing in the front end changes.
 *
 * Code is written through the cache's writable view (`buf`) but computed for
 * the address it will run at (`rx`): the two views of one shared mapping (see
 * cache.h). On overflow the emitter stops writing and sets `overflow`; the
 * front end then discards the unit.
 *
 * Threads: an emitter belongs to the hart's thread that translates. */
#ifndef NIMBUS_CPU_JIT_EMIT_H
#define NIMBUS_CPU_JIT_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Virtual registers. RET and ARG0-3 are the host's return and first four
 * argument registers; T0-T2 are scratch. All of these are clobbered by
 * emit_call. The rest are preserved by calls (callee-saved on every host):
 * HART holds the hart for the whole of translated execution (everything
 * else is reached through it), COUNT the instruction count, S0-S3 are for
 * the front end's use (guest registers cached within a unit). */
enum jreg {
    JR_RET, JR_ARG0, JR_ARG1, JR_ARG2, JR_ARG3, JR_T0, JR_T1, JR_T2,
    JR_HART, JR_COUNT, JR_S0, JR_S1, JR_S2, JR_S3, JR_NREGS
};

/* dst = dst OP src (or imm). W32 forms compute on the low 32 bits and
 * zero-extend the result. */
enum jalu { JA_ADD, JA_SUB, JA_AND, JA_OR, JA_XOR, JA_MUL };
enum jshift { JS_SHL, JS_SHR, JS_SAR, JS_ROL, JS_ROR };
/* Comparisons of two 64-bit registers. */
enum jcond { JC_EQ, JC_NE, JC_LT, JC_GE, JC_LTU, JC_GEU };

struct emitter {
    uint8_t *buf;     /* writable view of the code */
    uintptr_t rx;     /* address buf[0] runs at */
    size_t pos, cap;
    bool overflow;
};

/* A forward jump whose target is bound later. */
typedef size_t jlabel;

void emit_init(struct emitter *e, uint8_t *buf, uintptr_t rx, size_t cap);
static inline uintptr_t emit_here(const struct emitter *e) { return e->rx + e->pos; }

void emit_mov_imm(struct emitter *e, enum jreg dst, uint64_t imm);
void emit_mov(struct emitter *e, enum jreg dst, enum jreg src);
/* dst = [base + disp], `size` bytes (1, 2, 4, 8), sign- or zero-extended. */
void emit_load(struct emitter *e, unsigned size, bool sign, enum jreg dst, enum jreg base, int32_t disp);
/* [base + disp] = low `size` bytes of src. */
void emit_store(struct emitter *e, unsigned size, enum jreg src, enum jreg base, int32_t disp);
/* [base + disp] (64-bit) += imm. */
void emit_add_mem_imm(struct emitter *e, enum jreg base, int32_t disp, int32_t imm);
/* dst = base + disp (64-bit; flags untouched). */
void emit_lea(struct emitter *e, enum jreg dst, enum jreg base, int32_t disp);
/* dst += [base + disp] (64-bit). */
void emit_add_load(struct emitter *e, enum jreg dst, enum jreg base, int32_t disp);
/* As emit_load / emit_store at [base + index]. */
void emit_load_idx(struct emitter *e, unsigned size, bool sign, enum jreg dst, enum jreg base,
                   enum jreg index);
void emit_store_idx(struct emitter *e, unsigned size, enum jreg src, enum jreg base,
                    enum jreg index);

void emit_alu(struct emitter *e, enum jalu op, bool w32, enum jreg dst, enum jreg src);
void emit_alu_imm(struct emitter *e, enum jalu op, bool w32, enum jreg dst, int32_t imm);
void emit_shift_imm(struct emitter *e, enum jshift op, bool w32, enum jreg dst, unsigned amount);
/* Shift by a register; the amount is taken modulo the width, as RISC-V
 * does. `count` must differ from `dst`. */
void emit_shift(struct emitter *e, enum jshift op, bool w32, enum jreg dst, enum jreg count);
/* dst = sign-extension of the low `bits` (8, 16, 32) bits of src;
 * emit_zext: zero-extension. */
void emit_sext(struct emitter *e, unsigned bits, enum jreg dst, enum jreg src);
void emit_zext(struct emitter *e, unsigned bits, enum jreg dst, enum jreg src);
void emit_not(struct emitter *e, enum jreg dst);
/* dst = (a COND b) ? 1 : 0; dst may be a or b. emit_setcc_imm: against
 * imm sign-extended to 64 bits. */
void emit_setcc(struct emitter *e, enum jcond c, enum jreg dst, enum jreg a, enum jreg b);
void emit_setcc_imm(struct emitter *e, enum jcond c, enum jreg dst, enum jreg a, int32_t imm);

/* Jumps to a label bound later, if a COND b / if a COND imm (sign-extended)
 * / if a COND [base+disp] (64-bit) / always. */
jlabel emit_branch(struct emitter *e, enum jcond c, enum jreg a, enum jreg b);
jlabel emit_branch_imm(struct emitter *e, enum jcond c, enum jreg a, int32_t imm);
jlabel emit_branch_mem(struct emitter *e, enum jcond c, enum jreg a, enum jreg base, int32_t disp);
jlabel emit_jump(struct emitter *e);
/* Jumps to a label when reg (its low 32 bits if w32) is non-zero. */
jlabel emit_branch_nz(struct emitter *e, bool w32, enum jreg reg);
/* Makes `l` jump to the current position. */
void emit_bind(struct emitter *e, jlabel l);

/* Calls a C function with ARG0-3 as arguments; result in RET. */
void emit_call(struct emitter *e, const void *fn);
void emit_jump_abs(struct emitter *e, const void *target);
void emit_jump_reg(struct emitter *e, enum jreg target);

/* A direct jump that can be redirected later (chaining): emits it to
 * `target` and returns its address (rx) for emit_patch_jump. */
uintptr_t emit_patchable_jump(struct emitter *e, uintptr_t target);
/* Redirects the patchable jump at `site` (rx address; `site_rw` is the same
 * byte in the writable view) to `target`. */
void emit_patch_jump(uint8_t *site_rw, uintptr_t site, uintptr_t target);

/* A shared stub for the out-of-line paths of translated code, emitted once
 * (at the current position): translated code calls it (emit_call) with a
 * guest address in T2 and two arguments in T0 and T1; it calls
 *   int fn(struct hart *h, uint64_t addr, uint64_t a, uint64_t b, uint64_t *out)
 * with HART, T2, T0, T1 and returns fn's result in T0 and *out in T1. Unlike
 * emit_call it preserves every other register, so the caller keeps its
 * values in the call-clobbered ones across it. */
void emit_preserving_stub(struct emitter *e, const void *fn);

/* The entry trampoline, called from C as
 *   int enter(struct hart *h, const void *code, uint64_t arg)
 * saves the callee-saved registers, loads HART and jumps to code, with
 * code in ARG1 and arg in ARG2. Translated code returns to C by jumping to
 * the returned `exit` address with the result in RET (32-bit). */
void emit_trampoline(struct emitter *e, uintptr_t *exit);

#endif
