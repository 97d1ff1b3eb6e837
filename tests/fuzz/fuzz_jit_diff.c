/* Fuzz target: the binary translator (src/cpu/jit/) against the
 * interpreter, its reference, on random RV64GC programs in S-mode under
 * Sv39 - the harness and generator of tests/unit/test_jit_diff.c
 * (tests/unit/jit_diff.h), driven by the input instead of a fixed seed.
 *
 * Input:
 *   u64 seed     the PRNG: RAM contents, register values, and every choice
 *                once the input bytes are used up
 *   u8 flags     bit 0 straight (few branches, long superblocks), bit 1
 *                native (nothing translated through a helper call), bit 2
 *                mstatus.FS starts Off, bit 3 the smallest code cache
 *                (64 KiB: about a third of the inputs fill it
 *                and it is flushed whole), bits 4-5 the
 *                translation threshold (0, 1, 3, 50 runs), bit 6 the data
 *                page layout below instead of the unit test's
 *   u24 layout   8 x 3 bits: what each data page is (enum jd_page: RW, RO,
 *                unmapped, physical hole, not dirty, not accessed,
 *                execute-only, RWX)
 *   then         the generator's choices (jd_pick(): instruction kinds,
 *                registers, immediates, chunk lengths), one byte each (two
 *                for immediates), in program order from the first word
 * The program is 3072 words, more than an input has choices for: the rest
 * of it comes from the PRNG.
 *
 * Runs CHUNKS chunks of 1-300 steps on both harts (~5,000 instructions)
 * and checks after each that the architectural state (x[], pc, privilege,
 * instret, trap CSRs, mstatus, f[], fcsr, RAM) is the same. On a
 * difference it replays the input, stopping the chunk earlier and earlier,
 * to find the first step that differs, prints the field, pc and the
 * instruction word there, and aborts. Deterministic: both harts start
 * every input from instret 0 with a new translator. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "jit_diff.h"

#define CHUNKS 24

/* The interpreted hart, and a translated one for each code cache size:
 * their translators are jit_reset() for each input, not created anew
 * (fresh tables cost ~5 MiB of page faults, most of an input's time). */
static struct timebase tb;
static struct jd_board boards[3];

static void setup(void)
{
    timebase_init(&tb);
    for (int i = 0; i < 3; i++) {
        FUZZ_SETUP(guest_mem_init(&boards[i].mem, JD_RAM_BASE, JD_RAM_SIZE) == 0);
        FUZZ_SETUP(posix_memalign((void **)&boards[i].hart, 4096, sizeof(struct hart)) == 0);
        FUZZ_SETUP(hart_init(boards[i].hart, 0, &boards[i].mem, &tb, JD_RAM_BASE) == 0);
    }
    FUZZ_SETUP(jit_create(boards[1].hart, 1u << 20, 0) == 0);
    FUZZ_SETUP(jit_create(boards[2].hart, JIT_MIN_CACHE, 0) == 0);
}

/* What an input runs. */
struct input {
    struct jd_gen gen;
    struct jd_round round;
    bool small_cache;
    unsigned threshold;
    uint8_t layout[JD_DATA_PAGES];
};

/* Runs the input's round, or `r` (a part of it), from the start, on the
 * interpreted hart and the translated one `in` asks for; both start from
 * instret 0, the translator empty. pair[] gets the two boards. */
static void run(const struct input *in, const struct jd_round *r, struct jd_board *pair,
                struct jd_result *res)
{
    struct jd_gen g = in->gen;
    pair[0] = boards[0];
    pair[1] = boards[in->small_cache ? 2 : 1];
    for (int i = 0; i < 2; i++)
        pair[i].hart->insn_count = 0;
    jit_reset(pair[1].hart->jit, in->threshold);
    FUZZ_SETUP(jd_run_round(pair, &g, r, res) == 0);
}

/* The states differed after chunk res->chunk: finds the shortest start of
 * that chunk after which they differ and reports what ran last. (A budget
 * of k steps is not exactly k instructions: hart_run() may overshoot to
 * the end of a block, the same on both harts, so "the step" from k - 1 to
 * k may be a few instructions.) */
static void report(const struct input *in, const struct jd_result *res)
{
    struct jd_board pair[2];
    struct jd_round part = in->round;
    struct jd_result at;
    part.stop_chunk = res->chunk + 1;
    for (uint64_t k = 1; k <= res->steps; k++) {
        part.stop_steps = (unsigned)k;
        run(in, &part, pair, &at);
        if (at.differ)
            break;
    }
    uint64_t step = part.stop_steps, instret_after = pair[0].hart->insn_count;
    /* The state before that step: the chunk's first steps, or the end of
     * the previous chunk (pc moved, code remapped) for its first. */
    struct jd_round before = in->round;
    struct jd_result res_before;
    if (step > 1) {
        before.stop_chunk = res->chunk + 1;
        before.stop_steps = (unsigned)step - 1;
    } else {
        before.chunks = res->chunk;
    }
    run(in, &before, pair, &res_before);
    const struct hart *h = pair[0].hart;
    FUZZ_CHECK(!at.differ && !res->differ,
               "translated hart differs from the interpreter after step %llu of chunk %u "
               "(of %llu steps): %s; that step ran instret %llu-%llu from pc %llx (priv %u, "
               "insn %08x)",
               (unsigned long long)step, res->chunk, (unsigned long long)res->steps,
               at.differ ? at.why : res->why, (unsigned long long)h->insn_count,
               (unsigned long long)instret_after, (unsigned long long)h->arch.pc, h->arch.priv,
               jd_insn_at(&pair[0], h->arch.pc, h->arch.priv));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!boards[0].hart)
        setup();
    struct fuzz_in fin = { data, size };
    static const unsigned thresholds[] = { 0, 1, 3, 50 };
    struct input in = { .gen.state = fuzz_u64(&fin, 8) };
    unsigned flags = fuzz_u8(&fin);
    uint32_t layout_bits = (uint32_t)fuzz_u64(&fin, 3);
    in.gen.in = fin.p;
    in.gen.in_len = fin.n;
    for (unsigned p = 0; p < JD_DATA_PAGES; p++)
        in.layout[p] = flags & 0x40 ? (uint8_t)(layout_bits >> (3 * p) & 7) : jd_default_layout[p];
    in.small_cache = flags & 8;
    in.threshold = thresholds[flags >> 4 & 3];
    in.round = (struct jd_round){
        .straight = flags & 1,
        .native = flags & 2,
        .fs_off = flags & 4,
        .chunks = CHUNKS,
        .layout = in.layout,
    };
    struct jd_board pair[2];
    struct jd_result res;
    run(&in, &in.round, pair, &res);
    if (res.differ)
        report(&in, &res);
    return 0;
}
