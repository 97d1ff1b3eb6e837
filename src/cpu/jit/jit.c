/* Translator lifecycle, the interpreter hook, the dispatcher between units
 * and whole-cache flushes. */
#include "cpu/jit/jit_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/jit/dump.h"
#include "cpu/jit/emit.h"

/* Room a unit may need: JIT_UNIT_MAX_INSNS instructions of at most ~250
 * bytes each. */
#define UNIT_ROOM (JIT_UNIT_MAX_INSNS * 256)
/* Average unit size assumed when sizing the unit table. */
#define UNIT_AVG 512

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void jit_emit_lookup(const struct jit *j, struct emitter *e)
{
    /* The fetch TLB's hit path for the pc in T2 (as tlb_lookup with size
     * 2), then the jump cache; any miss goes to dispatch. */
    emit_mov(e, JR_T0, JR_T2);
    emit_shift_imm(e, JS_SHR, false, JR_T0, GUEST_PAGE_SHIFT - 4);
    emit_alu_imm(e, JA_AND, false, JR_T0, (TLB_SIZE - 1) << 4);
    emit_load(e, 8, false, JR_T1, JR_HART, (int32_t)offsetof(struct hart, tlb_fetch));
    emit_alu(e, JA_ADD, false, JR_T0, JR_T1);
    emit_mov(e, JR_T1, JR_T2);
    emit_alu_imm(e, JA_AND, false, JR_T1, (int32_t)~0xffeu);
    jlabel miss1 = emit_branch_mem(e, JC_NE, JR_T1, JR_T0, 0);
    emit_load(e, 8, false, JR_T1, JR_T0, 8);
    emit_alu(e, JA_ADD, false, JR_T1, JR_T2);                /* host code address */
    emit_mov(e, JR_T0, JR_T2);
    emit_alu_imm(e, JA_AND, false, JR_T0, ((1 << JIT_JC_BITS) - 1) << 1);
    emit_shift_imm(e, JS_SHL, false, JR_T0, 4);
    emit_mov_imm(e, JR_ARG0, (uintptr_t)j->jc);
    emit_alu(e, JA_ADD, false, JR_T0, JR_ARG0);
    jlabel miss2 = emit_branch_mem(e, JC_NE, JR_T1, JR_T0, (int32_t)offsetof(struct jit_jc, code));
    jlabel miss3 = emit_branch_mem(e, JC_NE, JR_T2, JR_T0, (int32_t)offsetof(struct jit_jc, vpc));
    emit_load(e, 8, false, JR_T0, JR_T0, (int32_t)offsetof(struct jit_jc, entry));
    emit_jump_reg(e, JR_T0);
    emit_bind(e, miss1);
    emit_bind(e, miss2);
    emit_bind(e, miss3);
    emit_mov_imm(e, JR_ARG1, 0);
    emit_jump_abs(e, (const void *)j->dispatch);
}

/* h->insn_count = COUNT + h->jit_limit (through T1). */
static void store_count(struct emitter *e, int32_t count_off, int32_t limit_off)
{
    emit_mov(e, JR_T1, JR_COUNT);
    emit_add_load(e, JR_T1, JR_HART, limit_off);
    emit_store(e, 8, JR_T1, JR_HART, count_off);
}

/* Empties the cache and forgets every unit, then emits the shared code. */
static void flush(struct jit *j)
{
    memset(j->table, 0, sizeof(*j->table) << JIT_TABLE_BITS);
    memset(j->jc, 0, sizeof(*j->jc) << JIT_JC_BITS);
    for (unsigned i = 0; i < (1u << BLOCK_CACHE_BITS); i++)
        j->hart->blocks[i].jit_unit = NULL;
    j->nunits = 0;
    cache_reset(&j->cache);

    struct emitter e;
    emit_init(&e, j->cache.rw, (uintptr_t)j->cache.rx, j->cache.size);
    j->enter = (jit_enter_fn)(uintptr_t)emit_here(&e);
    emit_trampoline(&e, &j->exit_code);

    const int32_t count_off = (int32_t)offsetof(struct hart, insn_count);
    const int32_t limit_off = (int32_t)offsetof(struct hart, jit_limit);
    const int32_t jit_off = (int32_t)offsetof(struct hart, jit);
    /* COUNT holds insn_count - jit_limit, negative while the slice has
     * budget left, so that translated code checks it against an immediate. */
    j->enter_stub = emit_here(&e);
    emit_load(&e, 8, false, JR_COUNT, JR_HART, count_off);
    emit_load(&e, 8, false, JR_T0, JR_HART, limit_off);
    emit_alu(&e, JA_SUB, false, JR_COUNT, JR_T0);
    emit_jump_reg(&e, JR_ARG2);

    static const int status[] = { JIT_EXIT_NORMAL, JIT_EXIT_TRAP, JIT_EXIT_RESUME };
    uintptr_t *exits[] = { &j->exit_normal, &j->exit_trap, &j->exit_resume };
    for (int i = 0; i < 3; i++) {
        *exits[i] = emit_here(&e);
        if (status[i] == JIT_EXIT_RESUME) {
            emit_load(&e, 8, false, JR_T1, JR_HART, jit_off);
            emit_store(&e, 8, JR_T0, JR_T1, (int32_t)offsetof(struct jit, resume_code));
            emit_store(&e, 8, JR_T2, JR_T1, (int32_t)offsetof(struct jit, resume_index));
        }
        store_count(&e, count_off, limit_off);
        emit_mov_imm(&e, JR_RET, (uint64_t)status[i]);
        emit_jump_abs(&e, (const void *)j->exit_code);
    }

    /* dispatch: h->arch.pc is set; find the unit there or return to C. */
    j->dispatch = emit_here(&e);
    store_count(&e, count_off, limit_off);
    emit_load(&e, 8, false, JR_ARG0, JR_HART, jit_off);
    emit_call(&e, (const void *)jit_dispatch);
    jlabel found = emit_branch_nz(&e, false, JR_RET);
    emit_mov_imm(&e, JR_RET, JIT_EXIT_NORMAL);
    emit_jump_abs(&e, (const void *)j->exit_code);
    emit_bind(&e, found);
    emit_jump_reg(&e, JR_RET);

    jit_emit_slow_stubs(j, &e);
    j->cache.used = e.pos;
}

int jit_create(struct hart *h, size_t cache_size, unsigned threshold)
{
#if !defined(__x86_64__)
    (void)h;
    (void)cache_size;
    (void)threshold;
    return -ENOTSUP;
#else
    int r;
    if (cache_size < JIT_MIN_CACHE)
        cache_size = JIT_MIN_CACHE;
    struct jit *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->hart = h;
    j->threshold = threshold;
    r = cache_init(&j->cache, cache_size);
    if (r)
        goto fail;
    j->max_units = cache_size / UNIT_AVG;
    j->units = calloc(j->max_units, sizeof(*j->units));
    j->table = calloc(1u << JIT_TABLE_BITS, sizeof(*j->table));
    j->hits = calloc(1u << JIT_TABLE_BITS, sizeof(*j->hits));
    j->jc = calloc(1u << JIT_JC_BITS, sizeof(*j->jc));
    if (!j->units || !j->table || !j->hits || !j->jc) {
        r = -ENOMEM;
        goto fail;
    }
    flush(j);
    j->stats.flushes = 0;
    h->jit = j;
    return 0;
fail:
    cache_destroy(&j->cache);
    free(j->units);
    free(j->table);
    free(j->hits);
    free(j->jc);
    free(j);
    return r;
#endif
}

void jit_set_dump(struct jit *j, struct jit_dump *d) { j->dump = d; }

void jit_reset(struct jit *j, unsigned threshold)
{
    j->threshold = threshold;
    memset(j->hits, 0, sizeof(*j->hits) << JIT_TABLE_BITS);
    memset(&j->stats, 0, sizeof(j->stats));
    flush(j);
    j->stats.flushes = 0;
}

void jit_destroy(struct hart *h)
{
    struct jit *j = h->jit;
    if (!j)
        return;
    for (unsigned i = 0; i < (1u << BLOCK_CACHE_BITS); i++)
        h->blocks[i].jit_unit = NULL;
    h->jit = NULL;
    cache_destroy(&j->cache);
    free(j->units);
    free(j->table);
    free(j->hits);
    free(j->jc);
    free(j);
}

/* Makes the jump cache find `u` at its pc (replacing any older unit there,
 * which may be stale). */
static void remember(struct jit *j, const struct jit_unit *u)
{
    *jit_jc_slot(j, u->vpc) = (struct jit_jc){ .vpc = u->vpc, .code = u->code, .entry = u->entry,
                                                .epoch = u->epoch };
}

/* The unit for `code` at `pc`, valid in the current code epoch. A unit
 * from an older epoch (fence.i since) is revalidated if the code it was
 * translated from is unchanged: fence.i only promises that this hart's
 * fetches see earlier stores, and identical bytes translate identically. */
static struct jit_unit *find(struct jit *j, uintptr_t code, uint64_t pc)
{
    struct jit_unit *u = *jit_slot(j, code);
    if (!u || u->code != code || u->vpc != pc)
        return NULL;
    if (u->epoch != j->hart->code_epoch && !jit_revalidate(j, u))
        return NULL;
    remember(j, u);
    return u;
}

int jit_revalidate(struct jit *j, struct jit_unit *u)
{
    /* Each guest byte is read once. Another hart may be storing to this
     * code, and memcmp may read a byte twice (glibc's finds the first
     * difference, then loads those bytes again to order them): on memory
     * changing under it, it can call different bytes equal, and a unit of
     * code older than the fence.i would run (tests/isa/smp_smc_hot.S). */
    const uint8_t *code = (const uint8_t *)u->code;
    unsigned i = 0;
    for (; i + 8 <= u->len; i += 8) {
        uint64_t now, then;
        memcpy(&now, code + i, 8);
        memcpy(&then, u->bytes + i, 8);
        if (now != then)
            return 0;
    }
    for (; i < u->len; i++)
        if (code[i] != u->bytes[i])
            return 0;
    u->epoch = j->hart->code_epoch;
    j->stats.revalidated++;
    return 1;
}

const void *jit_lookup(struct jit *j, uintptr_t code, uint64_t pc)
{
    /* The jump cache first: one cache line, where the unit table and the
     * unit cost two misses. */
    const struct jit_jc *c = jit_jc_slot(j, pc);
    if (c->vpc == pc && c->code == code && c->epoch == j->hart->code_epoch)
        return c->entry;
    const struct jit_unit *u = find(j, code, pc);
    return u ? u->entry : NULL;
}

const void *jit_block_entry(struct jit *j, struct decoded_block *blk, uint64_t pc)
{
    const struct jit_unit *u = blk->jit_unit;
    if (u && u->vpc == pc)
        return u->entry;
    if (blk->jit_hits == UINT32_MAX)
        return NULL; /* nothing here can be translated */
    /* Units are made here and attached to their block: once the table had
     * none for this block, it gets one only below (looking again at each
     * entry of a cold block costs two cache misses). */
    if (blk->jit_hits == 0 || (u && u->vpc != pc)) {
        blk->jit_hits = 1;
        if ((u = find(j, blk->code, pc)) != NULL) {
            blk->jit_unit = u;
            return u->entry;
        }
    }
    uint16_t *hits = &j->hits[jit_hash(blk->code)];
    if (*hits < j->threshold) {
        (*hits)++;
        return NULL;
    }

    uint64_t t0 = now_ns();
    if (j->cache.size - j->cache.used < UNIT_ROOM || j->nunits == j->max_units) {
        flush(j);
        j->stats.flushes++;
    }
    struct jit_unit *nu = jit_translate(j, blk, pc);
    j->stats.translate_ns += now_ns() - t0;
    if (nu && j->dump)
        jit_dump_unit(j->dump, (unsigned)j->hart->hartid, nu->vpc, nu->bytes, nu->len,
                      nu->entry, (size_t)(nu->bytes - (const uint8_t *)nu->entry));
    *hits = 0; /* if its slot is taken over, it must get hot again */
    if (!nu) {
        blk->jit_hits = UINT32_MAX;
        return NULL;
    }
    *jit_slot(j, blk->code) = nu;
    remember(j, nu);
    blk->jit_unit = nu;
    return nu->entry;
}

int jit_exec(struct jit *j, const void *code, uint64_t limit)
{
    uint64_t before = j->hart->insn_count;
    j->hart->jit_limit = limit;
    int r = j->enter(j->hart, (const void *)j->enter_stub, (uintptr_t)code);
    j->stats.insns_run += j->hart->insn_count - before;
    return r;
}

const void *jit_dispatch(struct jit *j, uintptr_t site, uint64_t src_pc)
{
    struct hart *h = j->hart;
    uint64_t pc = h->arch.pc;
    if (h->insn_count >= h->jit_limit)
        return NULL;
    const uint8_t *code = tlb_lookup(h->tlb_fetch, pc, 2);
    if (!code)
        goto miss;
    const void *entry = jit_lookup(j, (uintptr_t)code, pc);
    if (!entry)
        goto miss;
    /* A direct exit to a pc in the source unit's page: same fetch
     * translation and the same epoch, so the link stays valid as long as
     * both units exist (until the next flush). */
    if (site && (pc >> GUEST_PAGE_SHIFT) == (src_pc >> GUEST_PAGE_SHIFT)) {
        emit_patch_jump(cache_rw(&j->cache, site), site, (uintptr_t)entry);
        j->stats.chains++;
    }
    j->stats.dispatch_hits++;
    return entry;
miss:
    j->stats.dispatch_misses++;
    return NULL;
}

uintptr_t jit_resume_point(const struct jit *j, unsigned *index, unsigned *offset)
{
    *index = (unsigned)(j->resume_index & 0xff);
    *offset = (unsigned)(j->resume_index >> 8);
    return j->resume_code;
}

void jit_get_stats(const struct jit *j, struct jit_stats *out)
{
    *out = j->stats;
    out->cache_bytes = j->cache.used;
    out->cache_size = j->cache.size;
}

void jit_print_stats(const struct jit *j, const char *name, FILE *out)
{
    struct jit_stats s;
    jit_get_stats(j, &s);
    fprintf(out, "%s: jit: %" PRIu64 " units (%" PRIu64 " insns), cache %" PRIu64 "/%" PRIu64
            " KiB, %" PRIu64 " flushes, %" PRIu64 " chains, dispatch %" PRIu64 " hits %" PRIu64
            " misses, %" PRIu64 " revalidated, translating %.1f ms, %" PRIu64 " of %" PRIu64
            " insns run translated\n",
            name, s.units, s.insns, s.cache_bytes >> 10, s.cache_size >> 10, s.flushes, s.chains,
            s.dispatch_hits, s.dispatch_misses, s.revalidated, (double)s.translate_ns / 1e6, s.insns_run,
            j->hart->insn_count);
}
