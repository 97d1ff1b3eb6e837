/* Software IEEE 754 binary32/binary64 arithmetic for the FPU (internal to
 * cpu/fpu*.c). Exact in every RISC-V rounding mode, with RISC-V semantics:
 * canonical NaN results, tininess detected after rounding, saturating
 * float-to-integer conversions.
 *
 * Values are raw bit patterns: a binary32 value sits in the low 32 bits of
 * the uint64_t (already unboxed by the caller), results likewise (the caller
 * NaN-boxes them). `d` selects the format: 0 = binary32, 1 = binary64.
 * `rm` is a resolved rounding mode (FRM_RNE..FRM_RMM). Exception flags are
 * ORed into *fl (FFLAG_* bits).
 *
 * Pure functions: any thread may call them. */
#ifndef NIMBUS_CPU_FPU_SOFT_H
#define NIMBUS_CPU_FPU_SOFT_H

#include <stdint.h>

#define FPU_CNAN32 0x7fc00000ull
#define FPU_CNAN64 0x7ff8000000000000ull

/* integer conversion kinds: the rs2 field of fcvt.int.fmt / fcvt.fmt.int */
enum fpu_ikind { FPU_W = 0, FPU_WU = 1, FPU_L = 2, FPU_LU = 3 };

uint64_t fpu_soft_add(int d, uint64_t a, uint64_t b, int rm, uint32_t *fl);
uint64_t fpu_soft_mul(int d, uint64_t a, uint64_t b, int rm, uint32_t *fl);
uint64_t fpu_soft_div(int d, uint64_t a, uint64_t b, int rm, uint32_t *fl);
uint64_t fpu_soft_sqrt(int d, uint64_t a, int rm, uint32_t *fl);
/* a * b + c with a single rounding. Negations (fmsub, fnmadd...) are done
 * by the caller by flipping sign bits of the inputs. */
uint64_t fpu_soft_fma(int d, uint64_t a, uint64_t b, uint64_t c, int rm, uint32_t *fl);
/* binary64 -> binary32 (d = 0) or binary32 -> binary64 (d = 1):
 * d is the destination format. */
uint64_t fpu_soft_cvt_ff(int d, uint64_t a, int rm, uint32_t *fl);
/* float -> integer, result as the 64-bit x register value (W kinds are
 * sign-extended from 32 bits). */
uint64_t fpu_soft_cvt_fi(int d, uint64_t a, enum fpu_ikind k, int rm, uint32_t *fl);
/* integer (x register value; W kinds use the low 32 bits) -> float */
uint64_t fpu_soft_cvt_if(int d, uint64_t x, enum fpu_ikind k, int rm, uint32_t *fl);

struct fp_regs;
/* For tests: fpu_execute() that never uses the host FPU (fpu.c). */
int fpu_execute_soft(struct fp_regs *fp, uint64_t *xregs, uint32_t insn);

static inline uint64_t fpu_soft_sign(int d) { return d ? 1ull << 63 : 1ull << 31; }

#endif
