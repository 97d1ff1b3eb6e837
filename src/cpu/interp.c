/* The interpreter: code is decoded into blocks of straight-line
 * instructions (see struct decoded_block in hart.h for when a block stays
 * valid) and run with threaded dispatch: each decoded instruction holds the
 * address of its handler, and each handler jumps straight to the next one.
 *
 * Interrupts, timers and cross-thread requests are checked between slices of
 * about SLICE_INSNS steps, and right after any instruction that can unmask
 * an interrupt (CSR writes, xRET): never per instruction.
 *
 * With a binary translator attached (h->jit), each block entry asks it for
 * translated code first (jit_check below); see cpu/jit/jit.h. */
#include "cpu/amo.h"
#include "cpu/cpu_internal.h"
#include "cpu/decode.h"
#include "cpu/jit/jit.h"

#include <string.h>

#define SLICE_INSNS 1024
#define TIMER_CHECK_INSNS 8192

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

static inline uint64_t sext32(uint64_t v) { return (uint64_t)(int64_t)(int32_t)v; }

static inline uint64_t rotl64(uint64_t v, unsigned s) { s &= 63; return s ? (v << s) | (v >> (64 - s)) : v; }
static inline uint64_t rotr64(uint64_t v, unsigned s) { s &= 63; return s ? (v >> s) | (v << (64 - s)) : v; }
static inline uint32_t rotl32(uint32_t v, unsigned s) { s &= 31; return s ? (v << s) | (v >> (32 - s)) : v; }
static inline uint32_t rotr32(uint32_t v, unsigned s) { s &= 31; return s ? (v >> s) | (v << (32 - s)) : v; }

static uint64_t orc_b(uint64_t v)
{
    uint64_t r = 0;
    for (int i = 0; i < 64; i += 8)
        if ((v >> i) & 0xff)
            r |= 0xffull << i;
    return r;
}

static int64_t div64(int64_t a, int64_t b)
{
    if (b == 0) return -1;
    if (a == INT64_MIN && b == -1) return a;
    return a / b;
}

static int64_t rem64(int64_t a, int64_t b)
{
    if (b == 0) return a;
    if (a == INT64_MIN && b == -1) return 0;
    return a % b;
}

static int32_t div32(int32_t a, int32_t b)
{
    if (b == 0) return -1;
    if (a == INT32_MIN && b == -1) return a;
    return a / b;
}

static int32_t rem32(int32_t a, int32_t b)
{
    if (b == 0) return a;
    if (a == INT32_MIN && b == -1) return 0;
    return a % b;
}

enum slice_result { SLICE_DONE, SLICE_EVENT, SLICE_WFI, SLICE_STOPPED };

static bool fs_off(const struct hart *h)
{
    return (h->arch.mstatus & MSTATUS_FS) == 0;
}

/* Decodes into a cache entry and prepares it for threaded dispatch. */
static void decode_for_dispatch(uint32_t raw, struct decoded_insn *d, const void *const *handlers)
{
    decode_for_block(raw, d);
    d->handler = handlers[d->op];
}

static void set_block_end(struct decoded_insn *d, const void *end_handler)
{
    memset(d, 0, sizeof(*d));
    d->op = OP_ILLEGAL; /* never dispatched through the table */
    d->handler = end_handler;
}

/* Decodes the block whose code is at `code`, with `room` bytes left in the
 * page. Returns false if not even the first instruction fits in the page
 * (it straddles the boundary). */
static bool build_block(struct decoded_block *blk, const uint8_t *code, unsigned room,
                        uint64_t epoch, const void *const *handlers, const void *end_handler)
{
    unsigned n = decode_block(code, room, blk->insns);
    if (n == 0)
        return false;
    for (unsigned i = 0; i < n; i++)
        blk->insns[i].handler = handlers[blk->insns[i].op];
    set_block_end(&blk->insns[n], end_handler);
    blk->code = (uintptr_t)code;
    blk->epoch = epoch;
    blk->jit_unit = NULL;
    blk->jit_hits = 0;
    return true;
}

#define BLOCK_SLOT HART_BLOCK_SLOT

/* Runs about `n` steps (retired instructions or taken traps; a slice may end
 * up to one block late). Within a block, every handler ends by jumping to
 * the next decoded instruction's handler; control transfers enter the next
 * block through a fast path copied at each site, so the host's branch
 * predictor sees one indirect jump per handler and per jump site.
 * Returns early (SLICE_EVENT) after anything that may make an interrupt
 * deliverable or stop the hart.
 *
 * pc, the step counts, the code epoch and the TLB arrays live in locals;
 * h->arch.pc is written back before anything that can trap or look at it. */
static enum slice_result run_slice(struct hart *h, uint64_t n, uint64_t *steps)
{
#define HANDLER(name) [OP_##name] = &&L_##name,
    static const void *const handlers[OP_COUNT] = { OPS(HANDLER) };
#undef HANDLER
    uint64_t *const x = h->arch.x;
    struct decoded_block *const blocks = h->blocks;
    uint64_t pc = h->arch.pc, npc = 0, a = 0, b = 0;
    /* Steps so far: retired instructions plus taken traps. The budget is
     * checked when entering a block and on traps: a slice overshoots `n` by
     * at most one block. */
    const uint64_t count_base = h->insn_count;
    uint64_t retired = 0, traps = 0;
    const struct tlb_entry *tlb_fetch = h->tlb_fetch;
    const struct tlb_entry *tlb_read = h->tlb_read;
    uint64_t epoch = h->code_epoch;
    const struct tlb_entry *tlb_write = h->tlb_write;
    struct jit *const jit = h->jit;
    struct decoded_block *jit_blk;
    const void *jit_code;
    const struct decoded_insn *d;
    enum slice_result result = SLICE_DONE;

#define SYNC_PC() (h->arch.pc = pc)
#define SYNC_COUNT() (h->insn_count = count_base + retired)
#define BUDGET_LEFT() (retired + traps < n)
/* Start the decoded instruction `d` at `pc`. */
#define EXECUTE()                                                                \
    do {                                                                         \
        npc = pc + d->len;                                                       \
        a = x[d->rs1];                                                           \
        b = x[d->rs2];                                                           \
        goto *d->handler;                                                        \
    } while (0)
/* Straight-line successor: the next entry of the same block (the block's end
 * marker leads to the next block). */
#define NEXT()                                                                   \
    do {                                                                         \
        pc = npc;                                                                \
        retired++;                                                               \
        d++;                                                                     \
        EXECUTE();                                                               \
    } while (0)
/* Into the block at pc: the fast path (same page, block decoded and its
 * code unchanged) is replicated at every site, so each control transfer has
 * its own indirect jump for the host's branch predictor; anything else goes
 * through next_block. */
#define ENTER_BLOCK()                                                            \
    do {                                                                         \
        const uint8_t *code_ = tlb_lookup(tlb_fetch, pc, 2);                     \
        if (unlikely(!BUDGET_LEFT()) || unlikely(code_ == NULL))                 \
            goto next_block;                                                     \
        struct decoded_block *blk_ = BLOCK_SLOT(blocks, code_);                  \
        if (unlikely(blk_->code != (uintptr_t)code_) || unlikely(blk_->epoch != epoch)) \
            goto next_block;                                                     \
        if (jit) {                                                               \
            jit_blk = blk_;                                                      \
            goto jit_check;                                                      \
        }                                                                        \
        d = blk_->insns;                                                         \
        EXECUTE();                                                               \
    } while (0)
/* End of a control transfer: on to the block at the new pc. */
#define NEXT_JUMP()                                                              \
    do {                                                                         \
        pc = npc;                                                                \
        retired++;                                                               \
        ENTER_BLOCK();                                                           \
    } while (0)
#define LOAD(size, va)                                                           \
    ({                                                                           \
        uint64_t va_ = (va), v_;                                                 \
        const void *p_ = tlb_lookup(tlb_read, va_, size);                        \
        if (likely(p_ != NULL)) {                                                \
            v_ = size == 1 ? *(const uint8_t *)p_ : size == 2 ? *(const uint16_t *)p_ \
               : size == 4 ? *(const uint32_t *)p_ : *(const uint64_t *)p_;     \
        } else {                                                                 \
            SYNC_PC();                                                           \
            if (mmu_load_slow(h, va_, size, &v_))                                \
                goto trapped;                                                    \
        }                                                                        \
        v_;                                                                      \
    })
#define STORE(size, va, val)                                                     \
    do {                                                                         \
        uint64_t va_ = (va), val_ = (val);                                       \
        void *p_ = tlb_lookup(tlb_write, va_, size);                             \
        if (likely(p_ != NULL)) {                                                \
            if (size == 1) *(uint8_t *)p_ = (uint8_t)val_;                       \
            else if (size == 2) *(uint16_t *)p_ = (uint16_t)val_;                \
            else if (size == 4) *(uint32_t *)p_ = (uint32_t)val_;                \
            else *(uint64_t *)p_ = val_;                                         \
        } else {                                                                 \
            SYNC_PC();                                                           \
            if (mmu_store_slow(h, va_, size, val_))                              \
                goto trapped;                                                    \
        }                                                                        \
    } while (0)
#define RD (x[d->rd])
#define IMM (d->imm)
#define BRANCH(cond) do { if (cond) npc = pc + (uint64_t)IMM; NEXT_JUMP(); } while (0)

next_block:
    if (unlikely(!BUDGET_LEFT()))
        goto out;
    {
        const uint8_t *code = tlb_lookup(tlb_fetch, pc, 2);
        if (!code)
            goto slow_fetch;
        /* Translated code needs no decoded block. */
        if (jit && (jit_code = jit_lookup(jit, (uintptr_t)code, pc)) != NULL)
            goto jit_run;
        unsigned room = (unsigned)(GUEST_PAGE_SIZE - (pc & 0xfff));
        struct decoded_block *blk = BLOCK_SLOT(blocks, code);
        if ((blk->code != (uintptr_t)code || blk->epoch != epoch) &&
            !build_block(blk, code, room, epoch, handlers, &&L_BLOCK_END))
            goto slow_fetch;
        if (jit) {
            jit_blk = blk;
            goto jit_check;
        }
        d = blk->insns;
        EXECUTE();
    }

jit_check:
    {
        /* The binary translator's hook: run the block's translation if it
         * has one (it may go on through other translations), else
         * interpret it. Translated code keeps h->arch.pc and h->insn_count. */
        jit_code = jit_block_entry(jit, jit_blk, pc);
        if (!jit_code) {
            d = jit_blk->insns;
            EXECUTE();
        }
    }
jit_run:
    {
        SYNC_PC();
        SYNC_COUNT();
        int r = jit_exec(jit, jit_code, count_base + n - traps);
        retired = h->insn_count - count_base;
        pc = h->arch.pc;
        if (r == JIT_EXIT_TRAP) {
            tlb_fetch = h->tlb_fetch;
            tlb_read = h->tlb_read;
            tlb_write = h->tlb_write;
            traps++;
        } else if (r == JIT_EXIT_RESUME) {
            /* On inside the unit's block (decoded again if it was evicted,
             * and only if the code still splits the same way). */
            unsigned idx, off, k = 0, o = 0;
            uintptr_t rc = jit_resume_point(jit, &idx, &off);
            struct decoded_block *rb = BLOCK_SLOT(blocks, rc);
            if ((rb->code == rc && rb->epoch == epoch) ||
                build_block(rb, (const uint8_t *)rc, (unsigned)(GUEST_PAGE_SIZE - (rc & 0xfff)),
                            epoch, handlers, &&L_BLOCK_END)) {
                while (k < idx && rb->insns[k].len)
                    o += rb->insns[k++].len;
                if (k == idx && o == off && rb->insns[k].len) {
                    d = &rb->insns[k];
                    EXECUTE();
                }
            }
        }
        goto next_block;
    }

L_BLOCK_END:
    ENTER_BLOCK();

slow_fetch:
    {
        /* Not in the fetch TLB yet, or an instruction straddling two pages:
         * one instruction through the full fetch path. */
        uint32_t raw;
        SYNC_PC();
        if (mmu_fetch_slow(h, pc, &raw))
            goto trapped; /* fetch fault taken: pc is at the handler */
        struct decoded_insn *single = h->single_step;
        decode_for_dispatch(raw, &single[0], handlers);
        set_block_end(&single[1], &&L_BLOCK_END);
        d = single;
        EXECUTE();
    }

L_LUI: RD = (uint64_t)IMM; NEXT();
L_AUIPC: RD = pc + (uint64_t)IMM; NEXT();
L_JAL: RD = npc; npc = pc + (uint64_t)IMM; NEXT_JUMP();
L_JALR: { uint64_t link = npc; npc = (a + (uint64_t)IMM) & ~1ull; RD = link; NEXT_JUMP(); }
L_BEQ: BRANCH(a == b);
L_BNE: BRANCH(a != b);
L_BLT: BRANCH((int64_t)a < (int64_t)b);
L_BGE: BRANCH((int64_t)a >= (int64_t)b);
L_BLTU: BRANCH(a < b);
L_BGEU: BRANCH(a >= b);

L_LB: RD = (uint64_t)(int8_t)LOAD(1, a + IMM); NEXT();
L_LH: RD = (uint64_t)(int16_t)LOAD(2, a + IMM); NEXT();
L_LW: RD = sext32(LOAD(4, a + IMM)); NEXT();
L_LD: RD = LOAD(8, a + IMM); NEXT();
L_LBU: RD = LOAD(1, a + IMM); NEXT();
L_LHU: RD = LOAD(2, a + IMM); NEXT();
L_LWU: RD = LOAD(4, a + IMM); NEXT();
L_SB: STORE(1, a + IMM, b); NEXT();
L_SH: STORE(2, a + IMM, b); NEXT();
L_SW: STORE(4, a + IMM, b); NEXT();
L_SD: STORE(8, a + IMM, b); NEXT();

L_ADDI: RD = a + (uint64_t)IMM; NEXT();
L_SLTI: RD = (int64_t)a < IMM; NEXT();
L_SLTIU: RD = a < (uint64_t)IMM; NEXT();
L_XORI: RD = a ^ (uint64_t)IMM; NEXT();
L_ORI: RD = a | (uint64_t)IMM; NEXT();
L_ANDI: RD = a & (uint64_t)IMM; NEXT();
L_SLLI: RD = a << IMM; NEXT();
L_SRLI: RD = a >> IMM; NEXT();
L_SRAI: RD = (uint64_t)((int64_t)a >> IMM); NEXT();
L_ADD: RD = a + b; NEXT();
L_SUB: RD = a - b; NEXT();
L_SLL: RD = a << (b & 63); NEXT();
L_SLT: RD = (int64_t)a < (int64_t)b; NEXT();
L_SLTU: RD = a < b; NEXT();
L_XOR: RD = a ^ b; NEXT();
L_SRL: RD = a >> (b & 63); NEXT();
L_SRA: RD = (uint64_t)((int64_t)a >> (b & 63)); NEXT();
L_OR: RD = a | b; NEXT();
L_AND: RD = a & b; NEXT();
L_ADDIW: RD = sext32(a + (uint64_t)IMM); NEXT();
L_SLLIW: RD = sext32((uint32_t)a << IMM); NEXT();
L_SRLIW: RD = sext32((uint32_t)a >> IMM); NEXT();
L_SRAIW: RD = (uint64_t)(int64_t)((int32_t)a >> IMM); NEXT();
L_ADDW: RD = sext32(a + b); NEXT();
L_SUBW: RD = sext32(a - b); NEXT();
L_SLLW: RD = sext32((uint32_t)a << (b & 31)); NEXT();
L_SRLW: RD = sext32((uint32_t)a >> (b & 31)); NEXT();
L_SRAW: RD = (uint64_t)(int64_t)((int32_t)a >> (b & 31)); NEXT();

L_MUL: RD = a * b; NEXT();
L_MULH: RD = (uint64_t)(((__int128)(int64_t)a * (__int128)(int64_t)b) >> 64); NEXT();
L_MULHSU: RD = (uint64_t)(((__int128)(int64_t)a * (__int128)b) >> 64); NEXT();
L_MULHU: RD = (uint64_t)(((unsigned __int128)a * b) >> 64); NEXT();
L_DIV: RD = (uint64_t)div64((int64_t)a, (int64_t)b); NEXT();
L_DIVU: RD = b ? a / b : ~0ull; NEXT();
L_REM: RD = (uint64_t)rem64((int64_t)a, (int64_t)b); NEXT();
L_REMU: RD = b ? a % b : a; NEXT();
L_MULW: RD = sext32(a * b); NEXT();
L_DIVW: RD = (uint64_t)(int64_t)div32((int32_t)a, (int32_t)b); NEXT();
L_DIVUW: RD = (uint32_t)b ? sext32((uint32_t)a / (uint32_t)b) : ~0ull; NEXT();
L_REMW: RD = (uint64_t)(int64_t)rem32((int32_t)a, (int32_t)b); NEXT();
L_REMUW: RD = (uint32_t)b ? sext32((uint32_t)a % (uint32_t)b) : sext32(a); NEXT();

L_LR_W:
L_LR_D: {
    unsigned size = d->op == OP_LR_W ? 4 : 8;
    void *p;
    SYNC_PC();
    if (mmu_atomic_ptr(h, a, size, true, &p))
        goto trapped;
    uint64_t v = size == 4 ? sext32(__atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST))
                           : __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST);
    h->arch.resv_addr = a;
    h->arch.resv_value = v;
    h->arch.resv_valid = true;
    RD = v;
    NEXT();
}
L_SC_W:
L_SC_D: {
    unsigned size = d->op == OP_SC_W ? 4 : 8;
    void *p;
    SYNC_PC();
    if (mmu_atomic_ptr(h, a, size, false, &p))
        goto trapped;
    bool ok = amo_store_conditional(&h->arch.resv_valid, h->arch.resv_addr, h->arch.resv_value, a, p, b, size == 4);
    RD = !ok;
    NEXT();
}
L_AMO_W: {
    void *p;
    SYNC_PC();
    if (mmu_atomic_ptr(h, a, 4, false, &p))
        goto trapped;
    RD = sext32(amo32(p, (unsigned)IMM, (uint32_t)b));
    NEXT();
}
L_AMO_D: {
    void *p;
    SYNC_PC();
    if (mmu_atomic_ptr(h, a, 8, false, &p))
        goto trapped;
    RD = amo64(p, (unsigned)IMM, b);
    NEXT();
}

L_CSRRW:
L_CSRRS:
L_CSRRC:
L_CSRRWI:
L_CSRRSI:
L_CSRRCI: {
    unsigned csr = (unsigned)IMM;
    bool is_imm = d->op >= OP_CSRRWI;
    unsigned kind = (unsigned)(d->op - (is_imm ? OP_CSRRWI : OP_CSRRW)); /* 0 w, 1 s, 2 c */
    uint64_t src = is_imm ? d->rs1 : a;
    bool do_write = kind == 0 || d->rs1 != 0;
    uint64_t old = 0;
    SYNC_PC();
    SYNC_COUNT();
    if (!(kind == 0 && d->rd == 32) && csr_read(h, csr, &old))
        goto illegal;
    if (do_write) {
        uint64_t base = csr_rmw_base(h, csr, old);
        uint64_t nv = kind == 0 ? src : kind == 1 ? (base | src) : (base & ~src);
        if (csr_write(h, csr, nv))
            goto illegal;
    }
    RD = old;
    if (!do_write)
        NEXT();
    goto event; /* a write may unmask an interrupt or change translation */
}

L_FENCE: NEXT();
L_FENCE_I:
    /* Make stores to code visible to this hart's fetch (Zifencei). */
    hart_fence_i(h);
    epoch = h->code_epoch;
    NEXT();
L_ECALL: {
    enum exc_cause cause = h->arch.priv == PRIV_U ? EXC_ECALL_U
                           : h->arch.priv == PRIV_S ? EXC_ECALL_S : EXC_ECALL_M;
    SYNC_PC();
    SYNC_COUNT();
    if (h->arch.priv != PRIV_M && h->hooks.ecall && !((h->arch.medeleg >> cause) & 1) &&
        h->hooks.ecall(h, h->hooks.opaque)) {
        hart_stat_add(&h->stats.sbi_calls, 1);
        goto event;
    }
    hart_raise_exception(h, cause, 0);
    goto trapped;
}
L_EBREAK:
    SYNC_PC();
    hart_raise_exception(h, EXC_BREAKPOINT, pc);
    goto trapped;
L_MRET:
    if (h->arch.priv < PRIV_M)
        goto illegal;
    trap_mret(h);
    npc = h->arch.pc;
    goto event;
L_SRET:
    if (h->arch.priv < PRIV_S || (h->arch.priv == PRIV_S && (h->arch.mstatus & MSTATUS_TSR)))
        goto illegal;
    trap_sret(h);
    npc = h->arch.pc;
    goto event;
L_WFI:
    if (h->arch.priv == PRIV_U || (h->arch.priv == PRIV_S && (h->arch.mstatus & MSTATUS_TW)))
        goto illegal;
    pc = npc;
    retired++;
    trap_update_timers(h);
    result = hart_wfi_wakeup(h) ? SLICE_EVENT : SLICE_WFI;
    goto out;
L_SFENCE_VMA:
    if (h->arch.priv == PRIV_U || (h->arch.priv == PRIV_S && (h->arch.mstatus & MSTATUS_TVM)))
        goto illegal;
    if (d->rs1 == 0)
        tlb_flush_translated(&h->tlb);
    else
        tlb_flush_page(&h->tlb, a);
    NEXT();

L_FLW: {
    if (fs_off(h))
        goto illegal;
    uint64_t v = LOAD(4, a + IMM);
    h->arch.fp.f[d->rd] = fpu_box32((uint32_t)v);
    h->arch.mstatus |= MSTATUS_FS;
    NEXT();
}
L_FLD: {
    if (fs_off(h))
        goto illegal;
    h->arch.fp.f[d->rd] = LOAD(8, a + IMM);
    h->arch.mstatus |= MSTATUS_FS;
    NEXT();
}
L_FSW:
    if (fs_off(h))
        goto illegal;
    STORE(4, a + IMM, h->arch.fp.f[d->rs2]);
    NEXT();
L_FSD:
    if (fs_off(h))
        goto illegal;
    STORE(8, a + IMM, h->arch.fp.f[d->rs2]);
    NEXT();
L_FP:
    if (fs_off(h) || fpu_execute(&h->arch.fp, x, d->raw))
        goto illegal;
    h->arch.mstatus |= MSTATUS_FS;
    NEXT();

L_ADD_UW: RD = b + (uint32_t)a; NEXT();
L_SH1ADD: RD = b + (a << 1); NEXT();
L_SH2ADD: RD = b + (a << 2); NEXT();
L_SH3ADD: RD = b + (a << 3); NEXT();
L_SH1ADD_UW: RD = b + ((uint64_t)(uint32_t)a << 1); NEXT();
L_SH2ADD_UW: RD = b + ((uint64_t)(uint32_t)a << 2); NEXT();
L_SH3ADD_UW: RD = b + ((uint64_t)(uint32_t)a << 3); NEXT();
L_SLLI_UW: RD = (uint64_t)(uint32_t)a << IMM; NEXT();
L_ANDN: RD = a & ~b; NEXT();
L_ORN: RD = a | ~b; NEXT();
L_XNOR: RD = ~(a ^ b); NEXT();
L_CLZ: RD = a ? (uint64_t)__builtin_clzll(a) : 64; NEXT();
L_CLZW: RD = (uint32_t)a ? (uint64_t)__builtin_clz((uint32_t)a) : 32; NEXT();
L_CTZ: RD = a ? (uint64_t)__builtin_ctzll(a) : 64; NEXT();
L_CTZW: RD = (uint32_t)a ? (uint64_t)__builtin_ctz((uint32_t)a) : 32; NEXT();
L_CPOP: RD = (uint64_t)__builtin_popcountll(a); NEXT();
L_CPOPW: RD = (uint64_t)__builtin_popcount((uint32_t)a); NEXT();
L_MAX: RD = (int64_t)a > (int64_t)b ? a : b; NEXT();
L_MAXU: RD = a > b ? a : b; NEXT();
L_MIN: RD = (int64_t)a < (int64_t)b ? a : b; NEXT();
L_MINU: RD = a < b ? a : b; NEXT();
L_SEXT_B: RD = (uint64_t)(int64_t)(int8_t)a; NEXT();
L_SEXT_H: RD = (uint64_t)(int64_t)(int16_t)a; NEXT();
L_ZEXT_H: RD = (uint16_t)a; NEXT();
L_ROL: RD = rotl64(a, (unsigned)b); NEXT();
L_ROR: RD = rotr64(a, (unsigned)b); NEXT();
L_RORI: RD = rotr64(a, (unsigned)IMM); NEXT();
L_ROLW: RD = sext32(rotl32((uint32_t)a, (unsigned)b)); NEXT();
L_RORW: RD = sext32(rotr32((uint32_t)a, (unsigned)b)); NEXT();
L_RORIW: RD = sext32(rotr32((uint32_t)a, (unsigned)IMM)); NEXT();
L_ORC_B: RD = orc_b(a); NEXT();
L_REV8: RD = __builtin_bswap64(a); NEXT();
L_BCLR: RD = a & ~(1ull << (b & 63)); NEXT();
L_BCLRI: RD = a & ~(1ull << IMM); NEXT();
L_BEXT: RD = (a >> (b & 63)) & 1; NEXT();
L_BEXTI: RD = (a >> IMM) & 1; NEXT();
L_BINV: RD = a ^ (1ull << (b & 63)); NEXT();
L_BINVI: RD = a ^ (1ull << IMM); NEXT();
L_BSET: RD = a | (1ull << (b & 63)); NEXT();
L_BSETI: RD = a | (1ull << IMM); NEXT();

L_ILLEGAL:
illegal:
    SYNC_PC();
    hart_raise_exception(h, EXC_ILLEGAL_INSN, d->raw);
trapped:
    /* A trap was taken (pc, privilege and maybe the regime changed). */
    pc = h->arch.pc;
    tlb_fetch = h->tlb_fetch;
    tlb_read = h->tlb_read;
    tlb_write = h->tlb_write;
    traps++;
    goto next_block;

event:
    /* The instruction retired and may have changed what is deliverable. */
    pc = npc;
    retired++;
    result = atomic_load_explicit(&h->arch.state, memory_order_relaxed) != HART_STARTED
             ? SLICE_STOPPED : SLICE_EVENT;
out:
    h->arch.pc = pc;
    SYNC_COUNT();
    *steps = retired + traps;
    return result;
#undef SYNC_PC
#undef SYNC_COUNT
#undef BUDGET_LEFT
#undef NEXT_JUMP
#undef ENTER_BLOCK
#undef EXECUTE
#undef NEXT
#undef LOAD
#undef STORE
#undef RD
#undef IMM
#undef BRANCH
}

static void apply_start(struct hart *h)
{
    /* SBI HSM hart_start (SBI spec 9.1): S-mode, a0 = hartid, a1 = opaque,
     * translation and interrupts off. */
    h->arch.priv = PRIV_S;
    h->arch.pc = h->arch.start_addr;
    h->arch.x[10] = h->hartid;
    h->arch.x[11] = h->arch.start_opaque;
    h->arch.satp = 0;
    h->arch.mstatus &= ~MSTATUS_SIE;
    hart_flush_tlb(h);
    mmu_update_regime(h);
    /* Code written while the hart was stopped must be what it runs: remote
     * fence.i requests skip stopped harts, so start in a new code epoch. */
    hart_fence_i(h);
    atomic_store(&h->arch.state, HART_STARTED);
}

/* Serves cross-thread requests; true if the hart must return to its caller. */
static bool serve_requests(struct hart *h)
{
    unsigned req = atomic_exchange(&h->requests, 0);
    if (req & HART_REQ_TLB_FLUSH)
        hart_flush_tlb(h);
    if (req & HART_REQ_FENCE_I)
        hart_fence_i(h);
    if (req & HART_REQ_DROP_WRITES)
        hart_drop_writes(h);
    return req & HART_REQ_EXIT;
}

static enum hart_exit run(struct hart *h, uint64_t budget)
{
    if (atomic_load(&h->requests) && serve_requests(h))
        return HART_EXIT_REQUEST;
    int state = atomic_load(&h->arch.state);
    if (state == HART_START_PENDING)
        apply_start(h);
    else if (state != HART_STARTED)
        return HART_EXIT_STOPPED; /* stopped, or claimed by a hart_start */

    /* The budget counts steps: retired instructions and taken traps, so a
     * guest stuck in a trap loop still returns to its scheduler. */
    while (budget) {
        if (unlikely(atomic_load_explicit(&h->requests, memory_order_acquire)) &&
            serve_requests(h))
            return HART_EXIT_REQUEST;
        if (h->insn_count >= h->next_timer_check) {
            trap_update_timers(h);
            h->next_timer_check = h->insn_count + TIMER_CHECK_INSNS;
        }
        trap_check_interrupts(h);
        uint64_t steps;
        enum slice_result r = run_slice(h, budget < SLICE_INSNS ? budget : SLICE_INSNS, &steps);
        budget = steps < budget ? budget - steps : 0; /* slices may overshoot */
        if (r == SLICE_WFI)
            return HART_EXIT_WFI;
        if (r == SLICE_STOPPED)
            return HART_EXIT_STOPPED;

    }
    return HART_EXIT_BUDGET;
}

enum hart_exit hart_run(struct hart *h, uint64_t budget)
{
    enum hart_exit e = run(h, budget);
    /* Published once per call, not per instruction (the counters' readers
     * are the API's, which want figures, not cycle accuracy). */
    atomic_store_explicit(&h->stats.insns, h->insn_count, memory_order_relaxed);
    if (e == HART_EXIT_WFI)
        hart_stat_add(&h->stats.wfi_exits, 1);
    return e;
}
