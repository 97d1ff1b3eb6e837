/* What the translator's front end (translate.c) offers the parts of it that
 * live in other files (translate_fp.c), and what they offer back. Internal
 * to cpu/jit/. Threads: the translating hart's thread. */
#ifndef NIMBUS_CPU_JIT_TRANSLATE_H
#define NIMBUS_CPU_JIT_TRANSLATE_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu/jit/emit.h"

struct tr;            /* one unit being translated (translate.c) */
struct decoded_insn;
struct hart;

/* translate.c */
struct emitter *tr_emitter(struct tr *t);
/* State translate_fp.c keeps per unit, zero at the unit's start. */
unsigned *tr_fp_state(struct tr *t);
/* r = guest x[x] / guest x[x] = r (x may be the sink 32) */
void tr_get_x(struct tr *t, enum jreg r, unsigned x);
void tr_set_x(struct tr *t, enum jreg r, unsigned x);
/* Every helper call goes between tr_spill (the cached guest registers
 * held in call-clobbered host registers go to the hart, if written) and
 * tr_unspill (they are loaded again); in between, tr_get_x reads the hart. */
void tr_spill(struct tr *t);
void tr_unspill(struct tr *t);
/* Before a helper reads h->arch.x[x]: stores its cached copy, if dirty
 * (tr_spill stores only the call-clobbered ones). */
void tr_sync_x(struct tr *t, unsigned x);
/* After a helper wrote h->arch.x[x] (and after tr_unspill): reloads its
 * cached copy. */
void tr_reload_x(struct tr *t, unsigned x);
/* On a path that ends here: fn(h, arg) raises an exception at pc, and the
 * unit is left with `count` instructions retired. Spilled or not. */
void tr_gen_raise(struct tr *t, void (*fn)(struct hart *h, uint64_t arg), uint64_t arg, uint64_t pc,
                  unsigned count);
/* An FP load (f[rd] = [x[rs1] + imm], NaN-boxed if size 4) or store
 * ([x[rs1] + imm] = f[rs2]), with the same inline TLB hit path and slow
 * path as the integer ones. */
void tr_gen_fp_mem(struct tr *t, const struct decoded_insn *d, uint64_t pc, unsigned count,
                   bool store, unsigned size);

/* translate_fp.c: emits an F/D instruction (OP_FLW, OP_FLD, OP_FSW,
 * OP_FSD, OP_FP), the `count`th of the unit, at guest `pc`. Returns 0
 * (translation goes on after it). */
int gen_fp(struct tr *t, const struct decoded_insn *d, uint64_t pc, unsigned count);

/* The tr_fp_state() bits an F/D instruction makes true for the
 * instructions after it (when it does not trap). */
unsigned fp_facts(const struct decoded_insn *d);

/* For choose_cached: which fields of such an instruction name x registers
 * (its other register fields are f registers), and whether it is emitted
 * as a helper call. */
#define FPX_RS1 1u
#define FPX_RD 2u
#define FPX_CALL 4u
unsigned fp_x_regs(const struct decoded_insn *d);

#endif
