/* Differential test of the binary translator against the interpreter, its
 * reference (the generator and harness: jit_diff.h, which says what the
 * programs do and what is compared): 60 rounds of a 3072-instruction random
 * program, 400 chunks each. Rounds differ in their seed and their kind:
 * every fifth is "straight" (few branches, long superblocks), half of those
 * "native" (nothing translated through a helper call); the translator
 * translates at once in most rounds and after 3 runs in every third (so
 * translated and interpreted blocks mix); every fourth has the smallest
 * code cache, which fills and is flushed whole (chains and all) many times;
 * every seventh starts with mstatus.FS Off.
 * Deterministic: a fixed seed per round. tests/fuzz/fuzz_jit_diff.c runs
 * the same harness on programs chosen by libFuzzer's input. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "jit_diff.h"

#define ROUNDS 60
#define CHUNKS 400

int main(void)
{
    struct timebase tb;
    struct jd_board b[2];
    timebase_init(&tb);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(guest_mem_init(&b[i].mem, JD_RAM_BASE, JD_RAM_SIZE), 0);
        if (posix_memalign((void **)&b[i].hart, 4096, sizeof(struct hart)))
            return 1;
        CHECK_EQ(hart_init(b[i].hart, 0, &b[i].mem, &tb, JD_RAM_BASE), 0);
    }

    uint64_t total = 0, translated = 0, traps = 0, flushes = 0;
    unsigned mismatches = 0;
    for (unsigned round = 0; round < ROUNDS; round++) {
        struct jd_gen g = { .state = 0xd1ff0000ull + round };
        struct jd_round r = {
            .straight = round % 5 == 4,
            .native = round % 5 == 4 && round % 2,
            .fs_off = round % 7 == 3, /* not the straight rounds */
            .chunks = CHUNKS,
            .layout = jd_default_layout,
        };
        /* Translate at once in most rounds; after a few runs in others, so
         * translated and interpreted blocks mix. Some rounds have the
         * smallest code cache, which fills and is flushed whole (chains
         * and all) many times. */
        jit_destroy(b[1].hart);
        CHECK_EQ(jit_create(b[1].hart, round % 4 == 1 ? JIT_MIN_CACHE : 1u << 20,
                            round % 3 == 2 ? 3 : 0), 0);
        struct jd_result res;
        CHECK_EQ(jd_run_round(b, &g, &r, &res), 0);
        if (res.differ) {
            const struct hart *h = b[0].hart;
            CHECK_MSG(false, "round %u chunk %u (pc %llx insn %08x, %llu insns): %s", round, res.chunk,
                      (unsigned long long)h->arch.pc, jd_insn_at(&b[0], h->arch.pc, h->arch.priv),
                      (unsigned long long)h->insn_count, res.why);
            mismatches++;
        }
        total += res.insns;
        translated += res.units;
        flushes += res.flushes;
        traps += res.traps;
        if (mismatches > 3)
            break;
    }
    CHECK_EQ(mismatches, 0);
    CHECK(total > 100000);
    CHECK(translated > 1000);
    CHECK(traps > 1000);
    CHECK(flushes > 10);
    printf("jit_diff: %u rounds, %llu instructions, %llu units translated, %llu cache flushes, "
           "traps seen in %llu chunks\n", ROUNDS, (unsigned long long)total,
           (unsigned long long)translated, (unsigned long long)flushes, (unsigned long long)traps);
    for (int i = 0; i < 2; i++) {
        jit_destroy(b[i].hart);
        hart_destroy(b[i].hart);
        free(b[i].hart);
        guest_mem_destroy(&b[i].mem);
    }
    return check_summary("jit_diff");
}
