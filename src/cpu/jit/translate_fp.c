/* The front end for the F and D extensions (unprivileged spec ch. 11-12),
 * compressed FP loads and stores included (they decode to the same ops).
 *
 * Loads and stores, moves between x and f registers and sign injection
 * are bit operations and are emitted natively (flw and fsgnj.s NaN-box,
 * fmv.x.w sign-extends, fsgnj.s reads unboxed operands as the canonical
 * NaN). Everything that rounds, compares or classifies is
 * a call to the interpreter's own fpu_execute() on the raw instruction (in
 * the form specialised for its kind, fpu_execute_for), so results and
 * fflags cannot drift from the reference.
 *
 * mstatus.FS, as interp.c does it: with FS = Off every F/D instruction
 * raises an illegal-instruction exception; loads and OP-FP instructions
 * set FS to Dirty (stores do not). FS only changes through CSR writes and
 * traps, which are never inside a unit. A unit is entered only at its
 * start and is one straight line: its superblock's taken branches and
 * budget checks are side exits that leave it, and the out-of-line slow
 * paths return to just after the instruction they serve. So every path to
 * an instruction runs all those before it, and the first FP instruction
 * of a unit checks FS for all that follow, and the first one that dirties
 * sets it for the rest.
 *
 * Helper calls are spilled (translate.h); a unit with one keeps only
 * callee-saved cached registers (fp_x_regs, choose_cached), so that costs
 * nothing there. */
#include <stddef.h>

#include "cpu/cpu_internal.h"
#include "cpu/decode.h"
#include "cpu/fpu.h"
#include "cpu/jit/translate.h"

#define FOFF(r) ((int32_t)(offsetof(struct hart, arch.fp.f) + 8 * (size_t)(r)))
#define MSTATUS_OFF ((int32_t)offsetof(struct hart, arch.mstatus))

/* tr_fp_state() bits */
#define FP_CHECKED 1u /* FS checked to be on */
#define FP_DIRTY 2u   /* FS set to Dirty */

/* OP-FP funct5 values */
enum { F5_FSGNJ = 0x04, F5_FCMP = 0x14, F5_FCVT_IF = 0x18, F5_FCVT_FI = 0x1a,
       F5_FMV_X = 0x1c, F5_FMV_F = 0x1e };

static void fp_illegal(struct hart *h, uint64_t raw)
{
    hart_raise_exception(h, EXC_ILLEGAL_INSN, raw);
}

/* The illegal-instruction exception at this instruction, and out. */
static void gen_illegal(struct tr *t, const struct decoded_insn *d, uint64_t pc, unsigned count)
{
    tr_gen_raise(t, fp_illegal, d->raw, pc, count);
}

/* How an OP-FP or fused instruction is emitted. */
enum fp_kind { FK_CALL, FK_FMV_X, FK_FMV_F, FK_FSGNJ };

static enum fp_kind fp_kind(uint32_t raw)
{
    unsigned f3 = (raw >> 12) & 7, rs2 = (raw >> 20) & 31, fmt = (raw >> 25) & 3, f5 = raw >> 27;
    if ((raw & 0x7f) != 0x53 || fmt > 1) /* fused ops have rs3 where OP-FP has funct5 */
        return FK_CALL;
    if (f5 == F5_FMV_X && f3 == 0 && rs2 == 0) /* fmv.x.w, fmv.x.d (not fclass) */
        return FK_FMV_X;
    if (f5 == F5_FMV_F && f3 == 0 && rs2 == 0)
        return FK_FMV_F;
    if (f5 == F5_FSGNJ && f3 < 3)
        return FK_FSGNJ;
    return FK_CALL;
}

/* OP-FP ops whose rs1 is an x register / whose rd is (the helper's too). */
static bool reads_x(uint32_t raw)
{
    unsigned f5 = raw >> 27;
    return (raw & 0x7f) == 0x53 && (f5 == F5_FCVT_FI || f5 == F5_FMV_F);
}

static bool writes_x(uint32_t raw)
{
    unsigned f5 = raw >> 27;
    return (raw & 0x7f) == 0x53 && (f5 == F5_FCMP || f5 == F5_FCVT_IF || f5 == F5_FMV_X);
}

unsigned fp_x_regs(const struct decoded_insn *d)
{
    if (d->op != OP_FP) /* loads and stores: the address */
        return FPX_RS1;
    return (reads_x(d->raw) ? FPX_RS1 : 0) | (writes_x(d->raw) ? FPX_RD : 0) |
           (fp_kind(d->raw) == FK_CALL ? FPX_CALL : 0);
}

/* gen_fp: every F/D instruction checks FS (or traps), all but the stores
 * set it to Dirty. */
unsigned fp_facts(const struct decoded_insn *d)
{
    return FP_CHECKED | (d->op == OP_FSW || d->op == OP_FSD ? 0 : FP_DIRTY);
}

static void check_fs(struct tr *t, const struct decoded_insn *d, uint64_t pc, unsigned count)
{
    struct emitter *e = tr_emitter(t);
    unsigned *st = tr_fp_state(t);
    if (*st & FP_CHECKED)
        return;
    *st |= FP_CHECKED;
    emit_load(e, 8, false, JR_T0, JR_HART, MSTATUS_OFF);
    emit_alu_imm(e, JA_AND, false, JR_T0, (int32_t)MSTATUS_FS);
    jlabel on = emit_branch_nz(e, true, JR_T0);
    gen_illegal(t, d, pc, count);
    emit_bind(e, on);
}

static void set_dirty(struct tr *t)
{
    struct emitter *e = tr_emitter(t);
    unsigned *st = tr_fp_state(t);
    if (*st & FP_DIRTY)
        return;
    *st |= FP_DIRTY;
    emit_load(e, 8, false, JR_T0, JR_HART, MSTATUS_OFF);
    emit_alu_imm(e, JA_OR, false, JR_T0, (int32_t)MSTATUS_FS);
    emit_store(e, 8, JR_T0, JR_HART, MSTATUS_OFF);
}

/* r = f[x] as an operand of format fmt: a binary32 value that is not
 * NaN-boxed reads as the canonical NaN (spec 12.2). Clobbers T2 only (the
 * argument registers may hold cached guest registers). */
static void get_operand(struct tr *t, enum jreg r, unsigned x, unsigned fmt)
{
    struct emitter *e = tr_emitter(t);
    emit_load(e, 8, false, r, JR_HART, FOFF(x));
    if (fmt)
        return;
    emit_mov(e, JR_T2, r);
    emit_shift_imm(e, JS_SAR, false, JR_T2, 32);
    emit_not(e, JR_T2); /* 0 iff the upper half is all ones */
    jlabel unboxed = emit_branch_nz(e, false, JR_T2);
    jlabel done = emit_jump(e);
    emit_bind(e, unboxed);
    emit_mov_imm(e, r, 0x7fc00000u);
    emit_bind(e, done);
}

/* Native forms of the OP-FP bit operations; returns false for the rest. */
static bool gen_fp_native(struct tr *t, uint32_t raw)
{
    struct emitter *e = tr_emitter(t);
    unsigned rd = (raw >> 7) & 31, f3 = (raw >> 12) & 7, rs1 = (raw >> 15) & 31;
    unsigned rs2 = (raw >> 20) & 31, fmt = (raw >> 25) & 3;
    enum fp_kind k = fp_kind(raw);
    if (k == FK_FMV_X) { /* fmv.x.w (sign-extends), fmv.x.d */
        if (rd) {
            emit_load(e, fmt ? 8 : 4, true, JR_T0, JR_HART, FOFF(rs1));
            tr_set_x(t, JR_T0, rd);
        }
        return true;
    }
    if (k == FK_FMV_F) { /* fmv.w.x (NaN-boxes), fmv.d.x */
        tr_get_x(t, JR_T0, rs1);
        if (!fmt) {
            emit_zext(e, 32, JR_T0, JR_T0);
            emit_mov_imm(e, JR_T1, 0xffffffff00000000ull);
            emit_alu(e, JA_OR, false, JR_T0, JR_T1);
        }
        emit_store(e, 8, JR_T0, JR_HART, FOFF(rd));
        return true;
    }
    if (k == FK_FSGNJ) { /* fsgnj, fsgnjn, fsgnjx */
        const uint64_t sign = fmt ? 1ull << 63 : 1ull << 31;
        get_operand(t, JR_T0, rs1, fmt);
        if (rs1 != rs2 || f3 != 0) { /* else fmv: a copy */
            get_operand(t, JR_T1, rs2, fmt);
            if (f3 == 1)
                emit_not(e, JR_T1);
            else if (f3 == 2)
                emit_alu(e, JA_XOR, false, JR_T1, JR_T0);
            emit_mov_imm(e, JR_T2, sign);
            emit_alu(e, JA_AND, false, JR_T1, JR_T2);
            emit_not(e, JR_T2);
            emit_alu(e, JA_AND, false, JR_T0, JR_T2);
            emit_alu(e, JA_OR, false, JR_T0, JR_T1);
        }
        if (!fmt) {
            emit_mov_imm(e, JR_T1, 0xffffffff00000000ull);
            emit_alu(e, JA_OR, false, JR_T0, JR_T1);
        }
        emit_store(e, 8, JR_T0, JR_HART, FOFF(rd));
        return true;
    }
    return false;
}

/* Everything else of OP-FP and the fused multiply-adds: fpu_execute(). */
static void gen_fp_helper(struct tr *t, const struct decoded_insn *d, uint64_t pc, unsigned count)
{
    struct emitter *e = tr_emitter(t);
    uint32_t raw = d->raw;
    unsigned rd = (raw >> 7) & 31, rs1 = (raw >> 15) & 31;
    if (reads_x(raw))
        tr_sync_x(t, rs1); /* the helper reads h->arch.x */
    tr_spill(t);
    /* fpu_execute_for(raw)(&h->arch.fp, h->arch.x, raw): non-zero if the
     * encoding is illegal (state then unchanged) */
    emit_mov(e, JR_ARG0, JR_HART);
    emit_alu_imm(e, JA_ADD, false, JR_ARG0, (int32_t)offsetof(struct hart, arch.fp));
    emit_mov(e, JR_ARG1, JR_HART);
    emit_alu_imm(e, JA_ADD, false, JR_ARG1, (int32_t)offsetof(struct hart, arch.x));
    emit_mov_imm(e, JR_ARG2, raw);
    emit_call(e, (const void *)fpu_execute_for(raw));
    emit_mov_imm(e, JR_T0, 0);
    jlabel ok = emit_branch(e, JC_EQ, JR_RET, JR_T0);
    gen_illegal(t, d, pc, count);
    emit_bind(e, ok);
    tr_unspill(t);
    if (writes_x(raw))
        tr_reload_x(t, rd); /* the helper wrote h->arch.x[rd] */
}

int gen_fp(struct tr *t, const struct decoded_insn *d, uint64_t pc, unsigned count)
{
    check_fs(t, d, pc, count);
    switch (d->op) {
    case OP_FLW: tr_gen_fp_mem(t, d, pc, count, false, 4); break;
    case OP_FLD: tr_gen_fp_mem(t, d, pc, count, false, 8); break;
    case OP_FSW: tr_gen_fp_mem(t, d, pc, count, true, 4); return 0;
    case OP_FSD: tr_gen_fp_mem(t, d, pc, count, true, 8); return 0;
    default:
        if (!gen_fp_native(t, d->raw))
            gen_fp_helper(t, d, pc, count);
        break;
    }
    set_dirty(t);
    return 0;
}
