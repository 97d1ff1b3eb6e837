/* Shared by the files of the translator; not for other layers. */
#ifndef NIMBUS_CPU_JIT_INTERNAL_H
#define NIMBUS_CPU_JIT_INTERNAL_H

#include "cpu/jit/cache.h"
#include "cpu/jit/jit.h"

/* Instructions in a unit at most: a decoded block and the blocks that
 * follow it in the page through not-taken branches (a superblock), whole
 * blocks only. */
#define JIT_UNIT_MAX_INSNS (4 * BLOCK_MAX_INSNS)

/* One translated superblock. */
struct jit_unit {
    uintptr_t code;      /* host address of the guest code */
    uint64_t vpc;        /* guest virtual pc it was translated for */
    uint64_t epoch;      /* hart's code epoch it was last valid in */
    const void *entry;   /* host code (executable view) */
    unsigned len;        /* bytes of guest code translated */
    const uint8_t *bytes; /* and their contents, kept in the code cache
                           * right after the unit's host code */
};

/* The jump cache: the last unit found for a guest pc, looked up inline by
 * translated code at indirect jumps (jalr) and at exits to another page,
 * without calling C. An entry holds while the fetch translation maps `vpc`
 * to `code` (checked through the fetch TLB at each use) and the unit's
 * entry checks its epoch, so it needs no invalidation but the flush. C
 * lookups use it too, checking `epoch` (a unit valid in an epoch stays
 * valid while that epoch is current). */
struct jit_jc {
    uint64_t vpc;
    uintptr_t code;
    const void *entry;
    uint64_t epoch;   /* the code epoch the unit was valid in (for C) */
};
#define JIT_JC_BITS 15

typedef int (*jit_enter_fn)(struct hart *h, const void *code, uint64_t arg);

struct jit {
    struct hart *hart;
    uintptr_t resume_code;      /* JIT_EXIT_RESUME: block (host code address) */
    uint64_t resume_index;      /* and instruction index in it | byte offset << 8 */
    unsigned threshold;
    struct code_cache cache;
    struct jit_unit *units;     /* allocated in order, freed by a flush */
    /* Unit lookup by host code address (direct-mapped; a newer unit
     * replaces an older one in its slot, which stays reachable through the
     * direct jumps to it until the next flush). */
    struct jit_unit **table;
    /* Executions of untranslated blocks, by the same hash of the code
     * address (collisions only make a block hot a little early). Kept here,
     * not in the decoded block, so that hot code evicted from the block
     * cache now and then still gets translated. */
    uint16_t *hits;
    struct jit_jc *jc;          /* 1 << JIT_JC_BITS entries */
    size_t nunits, max_units;
    /* Shared code at the start of the cache (re-emitted after a flush). */
    jit_enter_fn enter;
    uintptr_t exit_code;        /* returns RET to jit_exec */
    uintptr_t enter_stub;       /* loads COUNT, jumps to the unit in ARG2 */
    uintptr_t exit_normal;      /* returns JIT_EXIT_NORMAL */
    uintptr_t exit_trap;        /* returns JIT_EXIT_TRAP */
    uintptr_t exit_resume;      /* returns JIT_EXIT_RESUME, with T0 and T2
                                 * stored to resume_code and resume_index */
    uintptr_t dispatch;         /* ARG1 = patch site or 0, ARG2 = source pc */
    uintptr_t slow_load;        /* preserving stubs (emit_preserving_stub) of */
    uintptr_t slow_store;       /* the load and store slow paths */
    /* In translated code the hart's insn_count lives in COUNT, less
     * h->jit_limit; the stubs above store it back before anything in C can
     * look at it. */
    struct jit_stats stats;
    struct jit_dump *dump;      /* --jit-dump / --jit-perf-map, or NULL */
};

#define JIT_TABLE_BITS 18
static inline unsigned jit_hash(uintptr_t code)
{
    return (unsigned)((code >> 1) ^ (code >> (JIT_TABLE_BITS + 1))) & ((1u << JIT_TABLE_BITS) - 1);
}

static inline struct jit_jc *jit_jc_slot(struct jit *j, uint64_t pc)
{
    return &j->jc[(pc >> 1) & ((1u << JIT_JC_BITS) - 1)];
}

static inline struct jit_unit **jit_slot(struct jit *j, uintptr_t code)
{
    return &j->table[jit_hash(code)];
}

/* translate.c: translates `blk` (valid, at guest `pc`), and the decoded
 * blocks that follow it through not-taken branches, into the cache.
 * Returns the unit, or NULL if its first instruction cannot be translated
 * or the cache is full (then the caller flushes and may retry). */
struct jit_unit *jit_translate(struct jit *j, const struct decoded_block *blk, uint64_t pc);

struct emitter;
/* translate.c: emits the shared stubs of the load and store slow paths
 * (with the rest of the shared code at the start of the cache). */
void jit_emit_slow_stubs(struct jit *j, struct emitter *e);
/* jit.c: emits the jump to the unit at pc T2 (= h->arch.pc, registers
 * stored back): through the jump cache, else the dispatcher. Inline at
 * each site, so that the host predicts each indirect jump on its own. */
void jit_emit_lookup(const struct jit *j, struct emitter *e);

/* jit.c: called by translated code. */
const void *jit_dispatch(struct jit *j, uintptr_t site, uint64_t src_pc);
/* At the entry of unit `u` from an older code epoch: makes it valid in the
 * current one if its guest code is unchanged (returns 1), else returns 0.
 * The caller has checked that the fetch translation still maps u->vpc to
 * u->code. */
int jit_revalidate(struct jit *j, struct jit_unit *u);

#endif
