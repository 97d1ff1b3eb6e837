/* F and D extensions: the floating-point register file and the execution of
 * OP-FP and fused multiply-add instructions (RISC-V unprivileged spec ch. 11-12).
 * FP loads and stores are done by the interpreter and the translator (they are
 * memory accesses);
 * everything that computes lives here.
 *
 * Results and fflags are bit-exact with the spec in every rounding mode:
 * canonical NaNs, NaN-boxing of single values in the 64-bit registers,
 * IEEE 754-2008 minimumNumber/maximumNumber for fmin/fmax (with -0 < +0),
 * saturating conversions to integers with NV set.
 *
 * Pure functions of their arguments: any thread may call them on its own state. */
#ifndef NIMBUS_CPU_FPU_H
#define NIMBUS_CPU_FPU_H

#include <stdint.h>

/* fflags bits (fcsr[4:0]) */
#define FFLAG_NX 0x01u /* inexact */
#define FFLAG_UF 0x02u /* underflow */
#define FFLAG_OF 0x04u /* overflow */
#define FFLAG_DZ 0x08u /* divide by zero */
#define FFLAG_NV 0x10u /* invalid */

/* rounding modes (frm and the instruction rm field) */
enum fp_rounding {
    FRM_RNE = 0, FRM_RTZ = 1, FRM_RDN = 2, FRM_RUP = 3, FRM_RMM = 4, FRM_DYN = 7,
};

struct fp_regs {
    uint64_t f[32];
    uint32_t fflags; /* accrued exception flags, 5 bits */
    uint32_t frm;    /* dynamic rounding mode, 3 bits */
};

/* Executes one instruction with major opcode OP-FP (0x53), MADD (0x43),
 * MSUB (0x47), NMSUB (0x4b) or NMADD (0x4f), for the S and D formats.
 * Integer results (fcvt.w*, fmv.x.*, feq/flt/fle, fclass) go to xregs[rd];
 * x0 is never written. Returns 0 when executed, -1 when the encoding is
 * illegal (unknown funct, reserved rm, or rm=DYN with an invalid frm); in that
 * case no state is changed. The caller has already checked mstatus.FS != Off. */
int fpu_execute(struct fp_regs *fp, uint64_t *xregs, uint32_t insn);

typedef int (*fpu_exec_fn)(struct fp_regs *fp, uint64_t *xregs, uint32_t insn);
/* fpu_execute specialised for the kind of `insn` (opcode, funct5, fmt):
 * the same results for every instruction of that kind, without decoding
 * those fields on each call. For the binary translator. */
fpu_exec_fn fpu_execute_for(uint32_t insn);

/* NaN-boxing helpers used by FP loads/stores and moves. */
static inline uint64_t fpu_box32(uint32_t v) { return 0xffffffff00000000ull | v; }

#endif
