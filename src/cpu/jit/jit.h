/* The binary translator: RISC-V code to host code, a layer over the
 * interpreter (STYLE.md principle 4). This header is the narrow hook the
 * interpreter calls; everything else of the translator stays in cpu/jit/.
 *
 * The interpreter stays in charge: at each entry into a decoded block it
 * asks jit_block_entry() whether the block has a translation (counting
 * executions and translating blocks that get hot), and runs translated
 * code with jit_exec(). Translated code covers RV64I, M, A, Zba/Zbb/Zbs, F, D
 * and loads/stores; at anything else (CSR, system, fence.i...) it hands
 * back to the interpreter with the hart's state exactly as the interpreter
 * would have left it at that instruction.
 *
 * A translation ("unit") is keyed like the decoded block it came from: the
 * host address of the code, the hart's code epoch (fence.i makes a new one)
 * and, because translated code embeds it, the guest virtual pc. After a
 * fence.i a unit is used again only once its guest code bytes are found
 * unchanged; every unit entry, chained ones too, checks the epoch. Units jump
 * to each other directly ("chaining") only within one guest page, where the
 * fetch translation of the first unit holds for the others. The translator
 * keeps nothing guest-visible: dropping every unit changes nothing but
 * speed.
 *
 * Threads: a struct jit belongs to one hart and to that hart's thread;
 * jit_create/jit_destroy run while the hart is not running. */
#ifndef NIMBUS_CPU_JIT_JIT_H
#define NIMBUS_CPU_JIT_JIT_H

#include <stdint.h>
#include <stdio.h>

#include "cpu/hart.h"

/* The translator runs unless --jit off asks for the interpreter alone: every
 * ISA program and guest test passes both ways (tests/run.sh). */
#define JIT_DEFAULT_ON true
#define JIT_DEFAULT_CACHE (64u << 20)
#define JIT_MIN_CACHE (64u << 10)
/* Executions of a decoded block before it is translated (default). */
#define JIT_THRESHOLD 50
#define JIT_MAX_THRESHOLD 65535

/* How translated code returned. */
enum jit_exit {
    JIT_EXIT_NORMAL = 0, /* h->arch.pc is the next instruction to run */
    JIT_EXIT_TRAP = 1,   /* an exception was taken: h->arch.pc is the handler */
    JIT_EXIT_RESUME = 2, /* stopped inside a block at an instruction it does
                          * not translate: jit_resume_insn() says where */
};

struct jit_stats {
    uint64_t units;          /* units translated */
    uint64_t insns;          /* guest instructions translated */
    uint64_t cache_bytes;    /* code-cache bytes in use now */
    uint64_t cache_size;
    uint64_t flushes;        /* whole-cache flushes */
    uint64_t chains;         /* direct jumps patched between units */
    uint64_t dispatch_hits;  /* indirect exits that found a unit */
    uint64_t dispatch_misses;
    uint64_t revalidated;    /* units found unchanged after a fence.i */
    uint64_t translate_ns;   /* host time spent translating */
    uint64_t insns_run;      /* guest instructions retired in translated code */
};

struct jit;

/* Creates the translator of hart `h` with a code cache of `cache_size`
 * bytes, translating blocks after `threshold` executions (0: at once), and
 * attaches it (h->jit). Returns 0 or -errno (-ENOTSUP on a host
 * without a backend). */
int jit_create(struct hart *h, size_t cache_size, unsigned threshold);
/* Detaches and frees h->jit, if any. */
void jit_destroy(struct hart *h);
/* Makes `j` what jit_create() made, with the same cache and a new
 * threshold, without reallocating: every translation, block count and
 * statistic is dropped. (Fresh tables cost a few MiB of page faults; the
 * differential fuzz target resets between inputs.) */
void jit_reset(struct jit *j, unsigned threshold);
/* Writes each unit translated from now on to `d` (cpu/jit/dump.h; NULL:
 * none). `d` outlives the translator. */
struct jit_dump;
void jit_set_dump(struct jit *j, struct jit_dump *d);

/* Interpreter hook: translated code for the guest code at host address
 * `code` (found through the current fetch TLB) at guest pc `pc` in the
 * current code epoch, or NULL. */
const void *jit_lookup(struct jit *j, uintptr_t code, uint64_t pc);
/* Interpreter hook: the interpreter is about to run the valid decoded block
 * `blk` at guest pc `pc`. Returns translated code to run instead, or NULL. */
const void *jit_block_entry(struct jit *j, struct decoded_block *blk, uint64_t pc);
/* Runs translated code from `code` (h->arch.pc and h->insn_count in sync) until
 * it leaves translated code or h->insn_count reaches `limit`. On return
 * h->arch.pc and h->insn_count are exact. Returns enum jit_exit. */
int jit_exec(struct jit *j, const void *code, uint64_t limit);

/* After JIT_EXIT_RESUME: where the interpreter goes on, exactly where it
 * would have been within a decoded block (no extra block boundary, so no
 * extra budget check): the block whose code is at the returned host
 * address, its instruction number *index, which starts *offset bytes into
 * the block (h->arch.pc). */
uintptr_t jit_resume_point(const struct jit *j, unsigned *index, unsigned *offset);

void jit_get_stats(const struct jit *j, struct jit_stats *out);
/* Prints the statistics as one line prefixed by `name`. */
void jit_print_stats(const struct jit *j, const char *name, FILE *out);

#endif
