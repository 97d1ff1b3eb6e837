/* The front end: a decoded block, and the blocks after it in the page
 * through not-taken branches -> one unit of host code, through the emitter
 * only (no host ISA here). A taken branch to one of the unit's own
 * instructions (a loop, or a short forward skip) jumps there inside the
 * unit (plan_jumps, flow).
 *
 * Guest registers live in the hart (h->arch.x); the ones a unit uses most are
 * held in host registers within the unit (see NCACHED), loaded at its entry
 * and stored back, if written, at every exit. Other operands are loaded into
 * scratch registers per instruction, results stored at once. h->arch.pc and
 * h->insn_count are written at exits and before helpers that can trap: an
 * exception in the middle of a unit leaves pc, x[] and insn_count exactly as
 * the interpreter would. Semantics follow interp.c, the reference; helpers
 * below mirror it. Translated: RV64I, M, A (through a helper), Zba, Zbb, Zbs, F and D
 * (translate_fp.c). */
#include <stddef.h>
#include <string.h>

#include "cpu/amo.h"
#include "cpu/cpu_internal.h"
#include "cpu/decode.h"
#include "cpu/jit/emit.h"
#include "cpu/jit/jit_internal.h"
#include "cpu/jit/translate.h"

#define XOFF(r) ((int32_t)(offsetof(struct hart, arch.x) + 8 * (size_t)(r)))
#define FOFF(r) ((int32_t)(offsetof(struct hart, arch.fp.f) + 8 * (size_t)(r)))
#define HOFF(f) ((int32_t)offsetof(struct hart, f))
#define LOAD_SIGNED 16
#define LOAD_FP 32 /* to f[rd], NaN-boxed if 4 bytes */

_Static_assert(sizeof(struct tlb_entry) == 16, "translated TLB lookup assumes 16-byte entries");
_Static_assert(offsetof(struct tlb_entry, tag) == 0 && offsetof(struct tlb_entry, addend) == 8,
               "translated TLB lookup assumes tag, addend");

/* ---- helpers called from translated code ---- */

/* The slow paths of loads and stores (TLB miss, MMIO, misaligned,
 * page-crossing), called through the preserving stubs (jit_emit_slow_stubs).
 * Return non-zero if an exception was taken. A load's `info` is the size,
 * | LOAD_SIGNED, | LOAD_FP with the f register << 8 (written here); an x
 * load's value goes to *out. */
static int load_slow(struct hart *h, uint64_t va, uint64_t info, uint64_t unused, uint64_t *out)
{
    (void)unused;
    unsigned size = (unsigned)(info & 15);
    uint64_t v;
    if (mmu_load_slow(h, va, size, &v))
        return 1;
    if (info & LOAD_FP) {
        h->arch.fp.f[(info >> 8) & 31] = size == 4 ? fpu_box32((uint32_t)v) : v;
        return 0;
    }
    if (info & LOAD_SIGNED)
        v = size == 1 ? (uint64_t)(int64_t)(int8_t)v
            : size == 2 ? (uint64_t)(int64_t)(int16_t)v : (uint64_t)(int64_t)(int32_t)v;
    *out = v;
    return 0;
}

static int store_slow(struct hart *h, uint64_t va, uint64_t size, uint64_t value, uint64_t *out)
{
    (void)out;
    return mmu_store_slow(h, va, (unsigned)size, value) != 0;
}

void jit_emit_slow_stubs(struct jit *j, struct emitter *e)
{
    j->slow_load = emit_here(e);
    emit_preserving_stub(e, (const void *)load_slow);
    j->slow_store = emit_here(e);
    emit_preserving_stub(e, (const void *)store_slow);
}

static uint64_t sext32(uint64_t v) { return (uint64_t)(int64_t)(int32_t)v; }

/* LR, SC and AMOs (unprivileged spec ch. 8), as interp.c does them. `info`
 * is the op | funct5 << 16 | rd << 24. Returns non-zero if an exception
 * was taken. */
static int atomic_op(struct hart *h, uint64_t a, uint64_t b, uint64_t info)
{
    unsigned op = info & 0xffff, funct = (info >> 16) & 0xff, rd = (unsigned)(info >> 24);
    bool word = op == OP_LR_W || op == OP_SC_W || op == OP_AMO_W;
    bool is_lr = op == OP_LR_W || op == OP_LR_D;
    void *p;
    if (mmu_atomic_ptr(h, a, word ? 4 : 8, is_lr, &p))
        return 1;
    if (is_lr) {
        uint64_t v = word ? sext32(__atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST))
                          : __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST);
        h->arch.resv_addr = a;
        h->arch.resv_value = v;
        h->arch.resv_valid = true;
        h->arch.x[rd] = v;
    } else if (op == OP_SC_W || op == OP_SC_D) {
        bool ok = amo_store_conditional(&h->arch.resv_valid, h->arch.resv_addr, h->arch.resv_value, a, p, b, word);
        h->arch.x[rd] = !ok;
    } else {
        h->arch.x[rd] = word ? sext32(amo32(p, funct, (uint32_t)b)) : amo64(p, funct, b);
    }
    return 0;
}

static uint64_t op_mulh(uint64_t a, uint64_t b, uint64_t i) { (void)i; return (uint64_t)(((__int128)(int64_t)a * (__int128)(int64_t)b) >> 64); }
static uint64_t op_mulhsu(uint64_t a, uint64_t b, uint64_t i) { (void)i; return (uint64_t)(((__int128)(int64_t)a * (__int128)b) >> 64); }
static uint64_t op_mulhu(uint64_t a, uint64_t b, uint64_t i) { (void)i; return (uint64_t)(((unsigned __int128)a * b) >> 64); }
/* Division by zero and overflow (unprivileged spec 13.2): no traps. */
static uint64_t op_div(uint64_t a, uint64_t b, uint64_t i)
{
    (void)i;
    if (b == 0) return ~0ull;
    if ((int64_t)a == INT64_MIN && (int64_t)b == -1) return a;
    return (uint64_t)((int64_t)a / (int64_t)b);
}
static uint64_t op_divu(uint64_t a, uint64_t b, uint64_t i) { (void)i; return b ? a / b : ~0ull; }
static uint64_t op_rem(uint64_t a, uint64_t b, uint64_t i)
{
    (void)i;
    if (b == 0) return a;
    if ((int64_t)a == INT64_MIN && (int64_t)b == -1) return 0;
    return (uint64_t)((int64_t)a % (int64_t)b);
}
static uint64_t op_remu(uint64_t a, uint64_t b, uint64_t i) { (void)i; return b ? a % b : a; }
static uint64_t op_divw(uint64_t a, uint64_t b, uint64_t i)
{
    (void)i;
    int32_t x = (int32_t)a, y = (int32_t)b;
    if (y == 0) return ~0ull;
    if (x == INT32_MIN && y == -1) return (uint64_t)(int64_t)x;
    return (uint64_t)(int64_t)(x / y);
}
static uint64_t op_divuw(uint64_t a, uint64_t b, uint64_t i) { (void)i; return (uint32_t)b ? sext32((uint32_t)a / (uint32_t)b) : ~0ull; }
static uint64_t op_remw(uint64_t a, uint64_t b, uint64_t i)
{
    (void)i;
    int32_t x = (int32_t)a, y = (int32_t)b;
    if (y == 0) return (uint64_t)(int64_t)x;
    if (x == INT32_MIN && y == -1) return 0;
    return (uint64_t)(int64_t)(x % y);
}
static uint64_t op_remuw(uint64_t a, uint64_t b, uint64_t i) { (void)i; return (uint32_t)b ? sext32((uint32_t)a % (uint32_t)b) : sext32(a); }
static uint64_t op_clz(uint64_t a, uint64_t b, uint64_t i) { (void)b; (void)i; return a ? (uint64_t)__builtin_clzll(a) : 64; }
static uint64_t op_clzw(uint64_t a, uint64_t b, uint64_t i) { (void)b; (void)i; return (uint32_t)a ? (uint64_t)__builtin_clz((uint32_t)a) : 32; }
static uint64_t op_ctz(uint64_t a, uint64_t b, uint64_t i) { (void)b; (void)i; return a ? (uint64_t)__builtin_ctzll(a) : 64; }
static uint64_t op_ctzw(uint64_t a, uint64_t b, uint64_t i) { (void)b; (void)i; return (uint32_t)a ? (uint64_t)__builtin_ctz((uint32_t)a) : 32; }
static uint64_t op_cpop(uint64_t a, uint64_t b, uint64_t i) { (void)b; (void)i; return (uint64_t)__builtin_popcountll(a); }
static uint64_t op_cpopw(uint64_t a, uint64_t b, uint64_t i) { (void)b; (void)i; return (uint64_t)__builtin_popcount((uint32_t)a); }
static uint64_t op_max(uint64_t a, uint64_t b, uint64_t i) { (void)i; return (int64_t)a > (int64_t)b ? a : b; }
static uint64_t op_maxu(uint64_t a, uint64_t b, uint64_t i) { (void)i; return a > b ? a : b; }
static uint64_t op_min(uint64_t a, uint64_t b, uint64_t i) { (void)i; return (int64_t)a < (int64_t)b ? a : b; }
static uint64_t op_minu(uint64_t a, uint64_t b, uint64_t i) { (void)i; return a < b ? a : b; }
static uint64_t op_orc_b(uint64_t a, uint64_t b, uint64_t i)
{
    (void)b;
    (void)i;
    uint64_t r = 0;
    for (int k = 0; k < 64; k += 8)
        if ((a >> k) & 0xff)
            r |= 0xffull << k;
    return r;
}
static uint64_t op_rev8(uint64_t a, uint64_t b, uint64_t i) { (void)b; (void)i; return __builtin_bswap64(a); }
static uint64_t op_bclr(uint64_t a, uint64_t b, uint64_t i) { (void)i; return a & ~(1ull << (b & 63)); }
static uint64_t op_bext(uint64_t a, uint64_t b, uint64_t i) { (void)i; return (a >> (b & 63)) & 1; }
static uint64_t op_binv(uint64_t a, uint64_t b, uint64_t i) { (void)i; return a ^ (1ull << (b & 63)); }
static uint64_t op_bset(uint64_t a, uint64_t b, uint64_t i) { (void)i; return a | (1ull << (b & 63)); }

typedef uint64_t (*op_fn)(uint64_t a, uint64_t b, uint64_t imm);

static op_fn helper_of(unsigned op)
{
    switch (op) {
    case OP_MULH: return op_mulh;
    case OP_MULHSU: return op_mulhsu;
    case OP_MULHU: return op_mulhu;
    case OP_DIV: return op_div;
    case OP_DIVU: return op_divu;
    case OP_REM: return op_rem;
    case OP_REMU: return op_remu;
    case OP_DIVW: return op_divw;
    case OP_DIVUW: return op_divuw;
    case OP_REMW: return op_remw;
    case OP_REMUW: return op_remuw;
    case OP_CLZ: return op_clz;
    case OP_CLZW: return op_clzw;
    case OP_CTZ: return op_ctz;
    case OP_CTZW: return op_ctzw;
    case OP_CPOP: return op_cpop;
    case OP_CPOPW: return op_cpopw;
    case OP_MAX: return op_max;
    case OP_MAXU: return op_maxu;
    case OP_MIN: return op_min;
    case OP_MINU: return op_minu;
    case OP_ORC_B: return op_orc_b;
    case OP_REV8: return op_rev8;
    case OP_BCLR: return op_bclr;
    case OP_BEXT: return op_bext;
    case OP_BINV: return op_binv;
    case OP_BSET: return op_bset;
    }
    return NULL;
}

/* ---- code generation ---- */

/* Guest registers held in host registers: four in registers that calls
 * preserve (S0-S3), five in the argument and return registers, which the
 * unit's straight-line code does not otherwise use; around each helper
 * call these are stored (if written) and loaded again. */
#define NCACHED 9
#define NPRESERVED 4

/* An exit out of the straight line, emitted after it: a taken branch whose
 * fall-through the unit goes on with, or a budget check between blocks. */
struct side_exit {
    jlabel from;
    uint64_t pc;
    unsigned count;
    unsigned dirty;  /* t->dirty where it leaves the straight line */
    bool budget;
    int inside;      /* a taken branch to the unit's own instruction inside, or -1 */
};

/* The slow path of a load or store, emitted after the straight line; it
 * returns to `back`. */
struct slow_path {
    jlabel from;
    uintptr_t back;
    uint64_t pc;
    unsigned count, size, rd, rs2;
    unsigned dirty;  /* t->dirty before the instruction */
    bool store, sign;
    bool fp;         /* f[rd] / f[rs2] instead of x */
    enum jreg addr;  /* the register holding the address */
};

struct tr {
    struct jit *j;
    struct emitter e;
    uint64_t vpc;    /* guest pc of the unit */
    uintptr_t code;  /* host address of its guest code */
    /* The decoded block being translated (the unit's first, or one after
     * it): its guest pc, host code address and first instruction's number
     * in the unit, for exits into the interpreter. */
    uint64_t blk_pc;
    uintptr_t blk_code;
    unsigned blk_first;
    bool fall;       /* the unit goes on after the current branch */
    /* Up to two per instruction: a unit of one-instruction blocks (a
     * conditional branch each) has a budget check at every block start and
     * a taken-branch exit at every block end. */
    struct side_exit side[2 * JIT_UNIT_MAX_INSNS];
    unsigned nside;
    struct slow_path slow[JIT_UNIT_MAX_INSNS]; /* one per load/store */
    unsigned nslow;
    /* Guest registers held in host registers within the unit: which (0 =
     * slot unused), and which have been written so far and must be stored
     * back at every exit. While `spilled`, the call-clobbered ones are
     * current in the hart only (around a helper call). */
    uint8_t cached[NCACHED];
    unsigned dirty;
    bool spilled;
    unsigned fp;     /* translate_fp.c's */
    /* Branches within the unit (plan_jumps): for each instruction, the
     * index of the unit's instruction its taken branch or jal goes to, or
     * -1; the guest registers that may have been written before it on some
     * path from the entry (flow), which are dirty there; its guest pc; the
     * host address of its code once emitted (after a block start's budget
     * check), else 0. */
    int16_t inside[JIT_UNIT_MAX_INSNS];
    uint64_t may_written[JIT_UNIT_MAX_INSNS];
    uint64_t pc_of[JIT_UNIT_MAX_INSNS];
    uintptr_t at[JIT_UNIT_MAX_INSNS];
    unsigned fp_facts[JIT_UNIT_MAX_INSNS]; /* `fp` on every path to it */
    unsigned cur;    /* the index of the instruction being emitted */
    /* Exits to the interpreter out of the straight line (budget, a trap in
     * a slow path) share their stores: one tail per dirty set and kind,
     * emitted where first needed (exit_via_tail). */
    struct exit_tail { unsigned dirty; bool trap; uintptr_t at; } tails[2 * JIT_UNIT_MAX_INSNS];
    unsigned ntails;
};

static const enum jreg cache_reg[NCACHED] = { JR_S0, JR_S1, JR_S2, JR_S3, JR_RET, JR_ARG3,
                                              JR_ARG2, JR_ARG0, JR_ARG1 };

static int cache_slot(const struct tr *t, unsigned x)
{
    for (int k = 0; k < NCACHED; k++)
        if (t->cached[k] && t->cached[k] == x)
            return k;
    return -1;
}

/* The cache slot whose host register holds x now, or -1 (not cached, or
 * spilled around a helper call). */
static int in_register(const struct tr *t, unsigned x)
{
    int k = cache_slot(t, x);
    return k >= 0 && !(t->spilled && k >= NPRESERVED) ? k : -1;
}

static void get_x(struct tr *t, enum jreg r, unsigned x)
{
    int k = in_register(t, x);
    if (x == 0)
        emit_mov_imm(&t->e, r, 0);
    else if (k >= 0)
        emit_mov(&t->e, r, cache_reg[k]);
    else
        emit_load(&t->e, 8, false, r, JR_HART, XOFF(x));
}

/* x may be 32, the interpreter's sink for results to x0. */
static void set_x(struct tr *t, enum jreg r, unsigned x)
{
    int k = cache_slot(t, x);
    if (k >= 0) {
        emit_mov(&t->e, cache_reg[k], r);
        t->dirty |= 1u << k;
    } else {
        emit_store(&t->e, 8, r, JR_HART, XOFF(x));
    }
}

/* The host register an instruction computes rd's new value in: rd's cached
 * register (no copy from a temporary afterwards), or T0 (put_x stores it). */
static enum jreg dest_reg(const struct tr *t, unsigned rd)
{
    int k = cache_slot(t, rd);
    return k >= 0 && !t->spilled ? cache_reg[k] : JR_T0;
}

/* rd's new value is in `r`, from dest_reg(). */
static void put_x(struct tr *t, enum jreg r, unsigned rd)
{
    if (r == JR_T0)
        set_x(t, JR_T0, rd);
    else
        t->dirty |= 1u << cache_slot(t, rd);
}

/* A register holding x for reading: x's cached register itself, or `tmp`
 * loaded with it. */
static enum jreg src_reg(struct tr *t, unsigned x, enum jreg tmp)
{
    int k = in_register(t, x);
    if (k >= 0)
        return cache_reg[k];
    get_x(t, tmp, x);
    return tmp;
}

/* A helper wrote h->arch.x[x] itself: refresh its cached copy. The copy counts
 * as dirty from here on, as on the path that did not call the helper. */
static void reload_x(struct tr *t, unsigned x)
{
    int k = cache_slot(t, x);
    if (k >= 0) {
        emit_load(&t->e, 8, false, cache_reg[k], JR_HART, XOFF(x));
        t->dirty |= 1u << k;
    }
}

/* Before any exit: the hart's registers must be current. */
static void write_back(struct tr *t)
{
    for (int k = 0; k < NCACHED; k++)
        if ((t->dirty & (1u << k)) && !(t->spilled && k >= NPRESERVED))
            emit_store(&t->e, 8, cache_reg[k], JR_HART, XOFF(t->cached[k]));
}

/* Before a helper call: the call-clobbered cached registers go to the
 * hart; until unspill(), get_x reads them from there. */
static void spill(struct tr *t)
{
    for (int k = NPRESERVED; k < NCACHED; k++)
        if (t->dirty & (1u << k))
            emit_store(&t->e, 8, cache_reg[k], JR_HART, XOFF(t->cached[k]));
    t->spilled = true;
}

/* After the call: loads them again (the helper may have written some). */
static void unspill(struct tr *t)
{
    for (int k = NPRESERVED; k < NCACHED; k++)
        if (t->cached[k])
            emit_load(&t->e, 8, false, cache_reg[k], JR_HART, XOFF(t->cached[k]));
    t->spilled = false;
}

static void add_count(struct tr *t, unsigned n)
{
    if (n)
        emit_alu_imm(&t->e, JA_ADD, false, JR_COUNT, (int32_t)n);
}

/* Jumps to a label bound later if the slice's budget is spent after
 * `count` more instructions: COUNT holds insn_count - jit_limit (jit.c). */
static jlabel budget_spent(struct tr *t, unsigned count)
{
    return emit_branch_imm(&t->e, JC_GE, JR_COUNT, -(int32_t)count);
}

static void set_pc_imm(struct tr *t, uint64_t pc)
{
    emit_mov_imm(&t->e, JR_T0, pc);
    emit_store(&t->e, 8, JR_T0, JR_HART, HOFF(arch.pc));
}

/* Leaves the unit for a known pc after `count` instructions. Within the
 * unit's page the exit first goes through the dispatcher, which patches it
 * into a direct jump once the target has a unit; to another page it goes
 * through the jump cache. */
static void exit_to(struct tr *t, uint64_t target, unsigned count)
{
    write_back(t);
    add_count(t, count);
    if ((target >> GUEST_PAGE_SHIFT) != (t->vpc >> GUEST_PAGE_SHIFT)) {
        /* Another page: its fetch translation may change, so no direct
         * jump; the jump cache (checked against the fetch TLB) instead. */
        emit_mov_imm(&t->e, JR_T2, target);
        emit_store(&t->e, 8, JR_T2, JR_HART, HOFF(arch.pc));
        jit_emit_lookup(t->j, &t->e);
        return;
    }
    uintptr_t site = emit_patchable_jump(&t->e, emit_here(&t->e) + 5);
    set_pc_imm(t, target);
    emit_mov_imm(&t->e, JR_ARG1, site);
    emit_mov_imm(&t->e, JR_ARG2, t->vpc);
    emit_jump_abs(&t->e, (const void *)t->j->dispatch);
}

/* Leaves the unit for the interpreter, COUNT already counting what ran:
 * with a trap taken (`trap`), or at the pc in T0. The stores of the
 * registers written (t->dirty) are shared with the unit's other exits of
 * the same kind and dirty set. */
static void exit_via_tail(struct tr *t, bool trap)
{
    for (unsigned i = 0; i < t->ntails; i++) {
        if (t->tails[i].dirty == t->dirty && t->tails[i].trap == trap) {
            emit_jump_abs(&t->e, (const void *)t->tails[i].at);
            return;
        }
    }
    if (t->ntails < sizeof(t->tails) / sizeof(t->tails[0]))
        t->tails[t->ntails++] = (struct exit_tail){ t->dirty, trap, emit_here(&t->e) };
    write_back(t);
    if (!trap)
        emit_store(&t->e, 8, JR_T0, JR_HART, HOFF(arch.pc));
    emit_jump_abs(&t->e, (const void *)(trap ? t->j->exit_trap : t->j->exit_normal));
}

/* Back to the interpreter at pc, the start of one of its blocks, `count`
 * instructions into the unit (the budget ran out there, or the
 * instruction is one the front end does not translate). */
static void exit_at_block(struct tr *t, uint64_t pc, unsigned count)
{
    add_count(t, count);
    emit_mov_imm(&t->e, JR_T0, pc);
    exit_via_tail(t, false);
}

/* Hands the instruction at pc, the `count`th of the unit, to the
 * interpreter, which goes on inside the same decoded block (at a block's
 * start: from the block lookup, with its budget check, as it would). */
static void exit_interp(struct tr *t, uint64_t pc, unsigned count)
{
    if (count == t->blk_first) {
        exit_at_block(t, pc, count);
        return;
    }
    write_back(t);
    add_count(t, count);
    set_pc_imm(t, pc);
    emit_mov_imm(&t->e, JR_T0, t->blk_code);
    emit_mov_imm(&t->e, JR_T2, (count - t->blk_first) | (pc - t->blk_pc) << 8);
    emit_jump_abs(&t->e, (const void *)t->j->exit_resume);
}

/* The host register rd = f(rs1, rs2) is computed in: rd's cached one,
 * unless rd is rs2 but not rs1 (rs1 copied there first would overwrite
 * rs2). */
static enum jreg dest_reg2(const struct tr *t, const struct decoded_insn *d)
{
    return d->rs2 == d->rd && d->rs1 != d->rd ? JR_T0 : dest_reg(t, d->rd);
}

/* rd = rs1 OP rs2, computed in dest_reg2(), reading cached operands where
 * they are. */
static void gen_rr(struct tr *t, const struct decoded_insn *d, enum jalu op, bool w32)
{
    enum jreg r = dest_reg2(t, d);
    enum jreg b = src_reg(t, d->rs2, JR_T1);
    emit_mov(&t->e, r, src_reg(t, d->rs1, r));
    emit_alu(&t->e, op, w32, r, b);
    if (w32)
        emit_sext(&t->e, 32, r, r);
    put_x(t, r, d->rd);
}

/* rd = rs1 OP imm, in rd's cached register where it has one; adding,
 * or-ing or xor-ing 0 (mv, sext.w) emits no ALU instruction. */
static void gen_ri(struct tr *t, const struct decoded_insn *d, enum jalu op, bool w32)
{
    enum jreg r = dest_reg(t, d->rd);
    emit_mov(&t->e, r, src_reg(t, d->rs1, r));
    if (d->imm || (op != JA_ADD && op != JA_OR && op != JA_XOR))
        emit_alu_imm(&t->e, op, w32, r, (int32_t)d->imm);
    if (w32)
        emit_sext(&t->e, 32, r, r);
    put_x(t, r, d->rd);
}

static void gen_shift_imm(struct tr *t, const struct decoded_insn *d, enum jshift op, bool w32)
{
    enum jreg r = dest_reg(t, d->rd);
    emit_mov(&t->e, r, src_reg(t, d->rs1, r));
    emit_shift_imm(&t->e, op, w32, r, (unsigned)d->imm);
    if (w32)
        emit_sext(&t->e, 32, r, r);
    put_x(t, r, d->rd);
}

static void gen_shift(struct tr *t, const struct decoded_insn *d, enum jshift op, bool w32)
{
    enum jreg r = dest_reg2(t, d);
    enum jreg b = src_reg(t, d->rs2, JR_T1);
    emit_mov(&t->e, r, src_reg(t, d->rs1, r));
    emit_shift(&t->e, op, w32, r, b);
    if (w32)
        emit_sext(&t->e, 32, r, r);
    put_x(t, r, d->rd);
}

/* rd = (rs1 COND rs2/imm) */
static void gen_set(struct tr *t, const struct decoded_insn *d, enum jcond c, bool imm)
{
    enum jreg r = dest_reg(t, d->rd);
    enum jreg a = src_reg(t, d->rs1, JR_T0);
    if (imm || d->rs2 == 0)
        emit_setcc_imm(&t->e, c, r, a, imm ? (int32_t)d->imm : 0);
    else
        emit_setcc(&t->e, c, r, a, src_reg(t, d->rs2, JR_T1));
    put_x(t, r, d->rd);
}

/* rd = (zext32(rs1) if uw) << sh, + rs2 (Zba). rs1 is shifted in place
 * before rs2 is read: rd's cached register only if rd is not rs2 (found by
 * fuzz_jit_diff: sh3add x28, x28, x28). */
static void gen_shadd(struct tr *t, const struct decoded_insn *d, unsigned sh, bool uw)
{
    enum jreg r = d->rs2 == d->rd ? JR_T0 : dest_reg(t, d->rd);
    enum jreg b = src_reg(t, d->rs2, JR_T1);
    emit_mov(&t->e, r, src_reg(t, d->rs1, r));
    if (uw)
        emit_zext(&t->e, 32, r, r);
    if (sh)
        emit_shift_imm(&t->e, JS_SHL, false, r, sh);
    emit_alu(&t->e, JA_ADD, false, r, b);
    put_x(t, r, d->rd);
}

/* rd = rs1 OP ~rs2, inverted afterwards for xnor (Zbb) */
static void gen_logic_not(struct tr *t, const struct decoded_insn *d, enum jalu op, bool invert_b)
{
    get_x(t, JR_T0, d->rs1);
    get_x(t, JR_T1, d->rs2);
    if (invert_b)
        emit_not(&t->e, JR_T1);
    emit_alu(&t->e, op, false, JR_T0, JR_T1);
    if (!invert_b)
        emit_not(&t->e, JR_T0);
    set_x(t, JR_T0, d->rd);
}

static void gen_helper(struct tr *t, const struct decoded_insn *d, op_fn fn)
{
    spill(t);
    get_x(t, JR_ARG0, d->rs1);
    get_x(t, JR_ARG1, d->rs2);
    emit_mov_imm(&t->e, JR_ARG2, (uint64_t)d->imm);
    emit_call(&t->e, (const void *)fn);
    emit_mov(&t->e, JR_T0, JR_RET);
    unspill(t);
    set_x(t, JR_T0, d->rd);
}

/* A load or store: the software TLB's hit path inline (index, tag compare
 * that also rejects misaligned accesses, add the host offset), everything
 * else out of line (slow_path) through the interpreter's slow path, which
 * may take an exception: then the unit ends with `count` instructions
 * retired. FP loads and stores (fp) move f[rd] / f[rs2] instead of x. */
static void gen_access(struct tr *t, const struct decoded_insn *d, uint64_t pc, unsigned count,
                       bool store, unsigned size, bool sign, bool fp)
{
    struct emitter *e = &t->e;
    unsigned dirty = t->dirty;
    /* The address: rs1's register itself when the offset is 0, else T2. */
    enum jreg addr = src_reg(t, d->rs1, JR_T2);
    if (d->imm) {
        emit_lea(e, JR_T2, addr, (int32_t)d->imm);
        addr = JR_T2;
    }
    emit_mov(e, JR_T0, addr);
    emit_shift_imm(e, JS_SHR, false, JR_T0, GUEST_PAGE_SHIFT - 4);
    emit_alu_imm(e, JA_AND, true, JR_T0, (TLB_SIZE - 1) << 4);
    emit_add_load(e, JR_T0, JR_HART, store ? HOFF(tlb_write) : HOFF(tlb_read));
    emit_mov(e, JR_T1, addr);
    emit_alu_imm(e, JA_AND, false, JR_T1, (int32_t)~(uint32_t)(0xfff & ~(size - 1)));
    jlabel miss = emit_branch_mem(e, JC_NE, JR_T1, JR_T0, 0);
    /* T1: the host offset of the page; the access is at [T1 + addr]. */
    emit_load(e, 8, false, JR_T1, JR_T0, 8);
    if (store && fp) {
        emit_load(e, 8, false, JR_T0, JR_HART, FOFF(d->rs2));
        emit_store_idx(e, size, JR_T0, JR_T1, addr);
    } else if (store) {
        emit_store_idx(e, size, src_reg(t, d->rs2, JR_T0), JR_T1, addr);
    } else if (fp) {
        emit_load_idx(e, size, sign, JR_T0, JR_T1, addr);
        if (size == 4) {
            emit_mov_imm(e, JR_T1, 0xffffffff00000000ull);
            emit_alu(e, JA_OR, false, JR_T0, JR_T1);
        }
        emit_store(e, 8, JR_T0, JR_HART, FOFF(d->rd));
    } else {
        enum jreg r = dest_reg(t, d->rd);   /* straight into rd's cached register */
        emit_load_idx(e, size, sign, r, JR_T1, addr);
        put_x(t, r, d->rd);
    }
    t->slow[t->nslow++] = (struct slow_path){ .from = miss, .back = emit_here(e), .pc = pc,
                                              .count = count, .size = size, .rd = d->rd,
                                              .rs2 = d->rs2, .dirty = dirty, .store = store,
                                              .sign = sign, .fp = fp, .addr = addr };
}

/* Unit end: the slow paths of gen_access, through the preserving stubs:
 * the cached registers stay where they are. */
static void gen_slow_path(struct tr *t, const struct slow_path *sp)
{
    struct emitter *e = &t->e;
    /* Cached registers not written yet before the instruction may hold
     * nothing (not loaded at the entry): only those written count. */
    emit_bind(e, sp->from);
    t->dirty = sp->dirty;
    emit_mov(e, JR_T2, sp->addr); /* the stub's address argument */
    set_pc_imm(t, sp->pc);
    if (sp->store) {
        if (sp->fp)
            emit_load(e, 8, false, JR_T1, JR_HART, FOFF(sp->rs2));
        else
            get_x(t, JR_T1, sp->rs2);
        emit_mov_imm(e, JR_T0, sp->size);
        emit_call(e, (const void *)t->j->slow_store);
    } else {
        emit_mov_imm(e, JR_T0, sp->size | (sp->sign ? LOAD_SIGNED : 0) |
                               (sp->fp ? LOAD_FP | (uint64_t)sp->rd << 8 : 0));
        emit_call(e, (const void *)t->j->slow_load);
    }
    jlabel fault = emit_branch_nz(e, true, JR_T0);
    if (!sp->store && !sp->fp)
        set_x(t, JR_T1, sp->rd);
    emit_jump_abs(e, (const void *)sp->back);
    emit_bind(e, fault);
    /* Not rd, which set_x() counted as written: a faulting load wrote
     * nothing, and rd's register may hold nothing yet (choose_cached). */
    t->dirty = sp->dirty;
    add_count(t, sp->count);
    exit_via_tail(t, true);
}

static void gen_mem(struct tr *t, const struct decoded_insn *d, uint64_t pc, unsigned count,
                    bool store, unsigned size, bool sign)
{
    gen_access(t, d, pc, count, store, size, sign, false);
}

static void gen_atomic(struct tr *t, const struct decoded_insn *d, uint64_t pc, unsigned count)
{
    struct emitter *e = &t->e;
    unsigned dirty = t->dirty;
    spill(t);
    set_pc_imm(t, pc);
    emit_mov(e, JR_ARG0, JR_HART);
    get_x(t, JR_ARG1, d->rs1);
    get_x(t, JR_ARG2, d->rs2);
    emit_mov_imm(e, JR_ARG3, d->op | ((uint64_t)d->imm & 0xff) << 16 | (uint64_t)d->rd << 24);
    emit_call(e, (const void *)atomic_op);
    jlabel fault = emit_branch_nz(e, true, JR_RET);
    unspill(t);
    reload_x(t, d->rd);
    jlabel ok = emit_jump(e);
    unsigned after = t->dirty;
    emit_bind(e, fault);
    t->dirty = dirty;
    t->spilled = true; /* the call-clobbered ones are in the hart already */
    write_back(t);
    t->spilled = false;
    t->dirty = after;
    add_count(t, count);
    emit_jump_abs(e, (const void *)t->j->exit_trap);
    emit_bind(e, ok);
}

/* A jump to the unit's own instruction `to` after `count` instructions
 * (a taken branch or a jal inside the unit's range): the registers stay
 * where they are. COUNT is rebased so that the counts emitted at `to` (the
 * instructions before it on the straight line) hold on this path too; the
 * budget is checked as the interpreter checks it at every block start, so
 * a loop inside a unit still ends its slice. If `to` was not emitted (the
 * unit ended before it), an ordinary exit. */
static void jump_inside(struct tr *t, unsigned to, unsigned count)
{
    struct emitter *e = &t->e;
    if (!t->at[to]) {
        exit_to(t, t->pc_of[to], count);
        return;
    }
    if (count != to)
        emit_alu_imm(e, JA_ADD, false, JR_COUNT, (int32_t)count - (int32_t)to);
    jlabel over = budget_spent(t, to);
    emit_jump_abs(e, (const void *)t->at[to]);
    emit_bind(e, over);
    exit_at_block(t, t->pc_of[to], to);
}

static void gen_branch(struct tr *t, const struct decoded_insn *d, uint64_t pc, unsigned count,
                       enum jcond c)
{
    enum jreg a = src_reg(t, d->rs1, JR_T0);
    jlabel taken = d->rs2 == 0 ? emit_branch_imm(&t->e, c, a, 0) /* beqz, bltz... */
                   : in_register(t, d->rs2) < 0
                       ? emit_branch_mem(&t->e, c, a, JR_HART, XOFF(d->rs2)) /* cmp a, [x] */
                       : emit_branch(&t->e, c, a, src_reg(t, d->rs2, JR_T1));
    int inside = t->inside[t->cur];
    if (t->fall || inside >= 0) {
        /* Out of the straight line, after it: by then every instruction
         * a branch inside the unit can go to has its code. */
        t->side[t->nside++] = (struct side_exit){ .from = taken, .pc = pc + (uint64_t)d->imm,
                                                  .count = count, .dirty = t->dirty,
                                                  .inside = inside };
        if (!t->fall)
            exit_to(t, pc + d->len, count);
        return;
    }
    exit_to(t, pc + d->len, count);
    emit_bind(&t->e, taken);
    exit_to(t, pc + (uint64_t)d->imm, count);
}

/* Emits one instruction. Returns 1 if it ended the unit, 0 to go on, -1
 * if it cannot be translated. `count` is the number of instructions before
 * it in the unit. */
static int gen_insn(struct tr *t, const struct decoded_insn *d, uint64_t pc, unsigned count)
{
    struct emitter *e = &t->e;
    unsigned after = count + 1;
    /* Pure computations with rd = x0 do nothing. */
    bool pure = !(d->op >= OP_JAL && d->op <= OP_SD) && d->op != OP_FENCE;
    if (pure && d->rd == 32 && (helper_of(d->op) || d->op == OP_LUI || d->op == OP_AUIPC ||
                                (d->op >= OP_ADDI && d->op <= OP_SRAW) ||
                                (d->op >= OP_MUL && d->op <= OP_REMUW) ||
                                (d->op >= OP_ADD_UW && d->op <= OP_BSETI)))
        return 0;
    op_fn fn = helper_of(d->op);
    if (fn) {
        gen_helper(t, d, fn);
        return 0;
    }
    switch (d->op) {
    case OP_LUI:
    case OP_AUIPC: {
        enum jreg r = dest_reg(t, d->rd);
        emit_mov_imm(e, r, (d->op == OP_AUIPC ? pc : 0) + (uint64_t)d->imm);
        put_x(t, r, d->rd);
        return 0;
    }
    case OP_JAL:
        if (d->rd != 32) {
            emit_mov_imm(e, JR_T0, pc + d->len);
            set_x(t, JR_T0, d->rd);
        }
        if (t->inside[count] >= 0)
            jump_inside(t, (unsigned)t->inside[count], after); /* back: a loop */
        else
            exit_to(t, pc + (uint64_t)d->imm, after);
        return 1;
    case OP_JALR:
        get_x(t, JR_T2, d->rs1);
        emit_alu_imm(e, JA_ADD, false, JR_T2, (int32_t)d->imm);
        emit_alu_imm(e, JA_AND, false, JR_T2, -2);
        if (d->rd != 32) {
            emit_mov_imm(e, JR_T0, pc + d->len);
            set_x(t, JR_T0, d->rd);
        }
        emit_store(e, 8, JR_T2, JR_HART, HOFF(arch.pc));
        write_back(t);
        add_count(t, after);
        jit_emit_lookup(t->j, e);
        return 1;
    case OP_BEQ: gen_branch(t, d, pc, after, JC_EQ); return 1;
    case OP_BNE: gen_branch(t, d, pc, after, JC_NE); return 1;
    case OP_BLT: gen_branch(t, d, pc, after, JC_LT); return 1;
    case OP_BGE: gen_branch(t, d, pc, after, JC_GE); return 1;
    case OP_BLTU: gen_branch(t, d, pc, after, JC_LTU); return 1;
    case OP_BGEU: gen_branch(t, d, pc, after, JC_GEU); return 1;
    case OP_LB: gen_mem(t, d, pc, count, false, 1, true); return 0;
    case OP_LH: gen_mem(t, d, pc, count, false, 2, true); return 0;
    case OP_LW: gen_mem(t, d, pc, count, false, 4, true); return 0;
    case OP_LD: gen_mem(t, d, pc, count, false, 8, false); return 0;
    case OP_LBU: gen_mem(t, d, pc, count, false, 1, false); return 0;
    case OP_LHU: gen_mem(t, d, pc, count, false, 2, false); return 0;
    case OP_LWU: gen_mem(t, d, pc, count, false, 4, false); return 0;
    case OP_SB: gen_mem(t, d, pc, count, true, 1, false); return 0;
    case OP_SH: gen_mem(t, d, pc, count, true, 2, false); return 0;
    case OP_SW: gen_mem(t, d, pc, count, true, 4, false); return 0;
    case OP_SD: gen_mem(t, d, pc, count, true, 8, false); return 0;
    case OP_LR_W: case OP_SC_W: case OP_AMO_W: case OP_LR_D: case OP_SC_D: case OP_AMO_D:
        gen_atomic(t, d, pc, count);
        return 0;
    case OP_FLW: case OP_FLD: case OP_FSW: case OP_FSD: case OP_FP:
        return gen_fp(t, d, pc, count);
    case OP_FENCE: return 0; /* one hart's accesses are already in order; x86 is TSO */
    case OP_ADDI: gen_ri(t, d, JA_ADD, false); return 0;
    case OP_SLTI: gen_set(t, d, JC_LT, true); return 0;
    case OP_SLTIU: gen_set(t, d, JC_LTU, true); return 0;
    case OP_XORI: gen_ri(t, d, JA_XOR, false); return 0;
    case OP_ORI: gen_ri(t, d, JA_OR, false); return 0;
    case OP_ANDI: gen_ri(t, d, JA_AND, false); return 0;
    case OP_SLLI: gen_shift_imm(t, d, JS_SHL, false); return 0;
    case OP_SRLI: gen_shift_imm(t, d, JS_SHR, false); return 0;
    case OP_SRAI: gen_shift_imm(t, d, JS_SAR, false); return 0;
    case OP_ADD: gen_rr(t, d, JA_ADD, false); return 0;
    case OP_SUB: gen_rr(t, d, JA_SUB, false); return 0;
    case OP_SLL: gen_shift(t, d, JS_SHL, false); return 0;
    case OP_SLT: gen_set(t, d, JC_LT, false); return 0;
    case OP_SLTU: gen_set(t, d, JC_LTU, false); return 0;
    case OP_XOR: gen_rr(t, d, JA_XOR, false); return 0;
    case OP_SRL: gen_shift(t, d, JS_SHR, false); return 0;
    case OP_SRA: gen_shift(t, d, JS_SAR, false); return 0;
    case OP_OR: gen_rr(t, d, JA_OR, false); return 0;
    case OP_AND: gen_rr(t, d, JA_AND, false); return 0;
    case OP_ADDIW: gen_ri(t, d, JA_ADD, true); return 0;
    case OP_SLLIW: gen_shift_imm(t, d, JS_SHL, true); return 0;
    case OP_SRLIW: gen_shift_imm(t, d, JS_SHR, true); return 0;
    case OP_SRAIW: gen_shift_imm(t, d, JS_SAR, true); return 0;
    case OP_ADDW: gen_rr(t, d, JA_ADD, true); return 0;
    case OP_SUBW: gen_rr(t, d, JA_SUB, true); return 0;
    case OP_SLLW: gen_shift(t, d, JS_SHL, true); return 0;
    case OP_SRLW: gen_shift(t, d, JS_SHR, true); return 0;
    case OP_SRAW: gen_shift(t, d, JS_SAR, true); return 0;
    case OP_MUL: gen_rr(t, d, JA_MUL, false); return 0;
    case OP_MULW: gen_rr(t, d, JA_MUL, true); return 0;
    case OP_ADD_UW: gen_shadd(t, d, 0, true); return 0;
    case OP_SH1ADD: gen_shadd(t, d, 1, false); return 0;
    case OP_SH2ADD: gen_shadd(t, d, 2, false); return 0;
    case OP_SH3ADD: gen_shadd(t, d, 3, false); return 0;
    case OP_SH1ADD_UW: gen_shadd(t, d, 1, true); return 0;
    case OP_SH2ADD_UW: gen_shadd(t, d, 2, true); return 0;
    case OP_SH3ADD_UW: gen_shadd(t, d, 3, true); return 0;
    case OP_SLLI_UW:
        get_x(t, JR_T0, d->rs1);
        emit_zext(e, 32, JR_T0, JR_T0);
        emit_shift_imm(e, JS_SHL, false, JR_T0, (unsigned)d->imm);
        set_x(t, JR_T0, d->rd);
        return 0;
    case OP_ANDN: gen_logic_not(t, d, JA_AND, true); return 0;
    case OP_ORN: gen_logic_not(t, d, JA_OR, true); return 0;
    case OP_XNOR: gen_logic_not(t, d, JA_XOR, false); return 0;
    case OP_SEXT_B: case OP_SEXT_H: case OP_ZEXT_H:
        get_x(t, JR_T0, d->rs1);
        if (d->op == OP_ZEXT_H)
            emit_zext(e, 16, JR_T0, JR_T0);
        else
            emit_sext(e, d->op == OP_SEXT_B ? 8 : 16, JR_T0, JR_T0);
        set_x(t, JR_T0, d->rd);
        return 0;
    case OP_ROL: gen_shift(t, d, JS_ROL, false); return 0;
    case OP_ROR: gen_shift(t, d, JS_ROR, false); return 0;
    case OP_ROLW: gen_shift(t, d, JS_ROL, true); return 0;
    case OP_RORW: gen_shift(t, d, JS_ROR, true); return 0;
    case OP_RORI: gen_shift_imm(t, d, JS_ROR, false); return 0;
    case OP_RORIW: gen_shift_imm(t, d, JS_ROR, true); return 0;
    case OP_BSETI: case OP_BCLRI: case OP_BINVI:
        get_x(t, JR_T0, d->rs1);
        emit_mov_imm(e, JR_T1, d->op == OP_BCLRI ? ~(1ull << d->imm) : 1ull << d->imm);
        emit_alu(e, d->op == OP_BSETI ? JA_OR : d->op == OP_BCLRI ? JA_AND : JA_XOR, false,
                 JR_T0, JR_T1);
        set_x(t, JR_T0, d->rd);
        return 0;
    case OP_BEXTI:
        get_x(t, JR_T0, d->rs1);
        emit_shift_imm(e, JS_SHR, false, JR_T0, (unsigned)d->imm);
        emit_alu_imm(e, JA_AND, false, JR_T0, 1);
        set_x(t, JR_T0, d->rd);
        return 0;
    }
    return -1;
}

static uint64_t reg_bit(unsigned x)
{
    return x < 64 ? 1ull << x : 0;
}

/* flow() tracks translate_fp.c's facts as if they were registers written
 * by the F/D instructions that establish them, in these bits. */
#define FP_FACTS_SHIFT 40

static bool fp_insn(unsigned op)
{
    return op == OP_FLW || op == OP_FLD || op == OP_FSW || op == OP_FSD || op == OP_FP;
}

/* The x registers `d` reads and writes (reg_bit masks), and whether it is
 * emitted as a helper call. Reads are over-approximated: rs1 and rs2 of
 * every instruction, read before its rd is written, so `ld a0, 0(a0)`
 * reads a0. */
static void insn_regs(const struct decoded_insn *d, uint64_t *reads, uint64_t *writes, bool *calls)
{
    if (fp_insn(d->op)) {
        /* Only the x operands count: rd, rs2 (and rs3) name f registers. */
        unsigned x = fp_x_regs(d);
        *reads = x & FPX_RS1 ? reg_bit(d->rs1) : 0;
        *writes = (x & FPX_RD ? reg_bit(d->rd) : 0) | (uint64_t)fp_facts(d) << FP_FACTS_SHIFT;
        *calls = x & FPX_CALL;
        return;
    }
    *reads = reg_bit(d->rs1) | reg_bit(d->rs2);
    *writes = reg_bit(d->rd);
    *calls = helper_of(d->op) || (d->op >= OP_LR_W && d->op <= OP_AMO_D);
}

static bool cond_branch(unsigned op)
{
    return op >= OP_BEQ && op <= OP_BGEU;
}

/* Branches and jals whose target is one of the unit's own instructions
 * jump there instead of leaving the unit (t->inside): the loop of a hot
 * function runs inside one unit, and a taken branch forward over a few
 * instructions skips them without an exit and an entry.
 * The budget is checked where the interpreter checks it, at the start of
 * each of its blocks; from a jump's target q the interpreter's block ends
 * at the first instruction that ends a block, or 16 instructions on. The
 * unit's next block start after q is the same unless q lies inside a
 * block that the decoder cut at BLOCK_MAX_INSNS (starts[] marks the
 * unit's blocks): such targets are left to an exit. */
static void plan_jumps(struct tr *t, const struct decoded_insn *insns, const bool *starts,
                       unsigned n, uint64_t pc)
{
    bool in_cut[JIT_UNIT_MAX_INSNS];
    for (unsigned p = 0; p < n; pc += insns[p++].len)
        t->pc_of[p] = pc;
    for (unsigned s = 0, e; s < n; s = e) {
        for (e = s + 1; e < n && !starts[e]; e++)
            ;
        bool cut = e - s == BLOCK_MAX_INSNS && !decode_ends_block(insns[e - 1].op);
        for (unsigned p = s; p < e; p++)
            in_cut[p] = cut && p != s;
    }
    for (unsigned p = 0; p < n; p++) {
        const struct decoded_insn *d = &insns[p];
        t->inside[p] = -1;
        if (!cond_branch(d->op) && d->op != OP_JAL)
            continue;
        uint64_t target = t->pc_of[p] + (uint64_t)d->imm;
        for (unsigned q = 0; q < n; q++)
            if (t->pc_of[q] == target && !in_cut[q])
                t->inside[p] = (int16_t)q;
    }
}

/* Which registers may have been written before each instruction on some
 * path from the unit's entry (t->may_written: they count as dirty there,
 * so every exit stores them), and which registers the unit must load at
 * its entry: those read, or dirty, at an instruction that some path
 * reaches without writing them (on a straight line, a register read
 * before it is written; a branch inside the unit can skip a write, or
 * bring one from a later instruction: a loop). Also which of
 * translate_fp.c's facts hold on every path to each instruction
 * (t->fp_facts). The paths are the straight line and the jumps inside
 * (plan_jumps); an instruction the front end cannot emit ends the unit
 * earlier, which only drops paths. Returns the reg_bit mask of the
 * registers to load. */
static uint64_t flow(struct tr *t, const struct decoded_insn *insns, unsigned n)
{
    uint64_t reads[JIT_UNIT_MAX_INSNS], writes[JIT_UNIT_MAX_INSNS], must[JIT_UNIT_MAX_INSNS];
    uint64_t *may = t->may_written, load = 0;
    for (unsigned p = 0; p < n; p++) {
        bool calls;
        insn_regs(&insns[p], &reads[p], &writes[p], &calls);
        may[p] = 0;
        must[p] = p ? ~0ull : 0;
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (unsigned p = 0; p < n; p++) {
            /* The first instruction's predecessor is the entry, where
             * nothing is written; the others' the one before, unless it
             * jumps away. */
            uint64_t w = 0, m = p ? ~0ull : 0;
            if (p && insns[p - 1].op != OP_JAL && insns[p - 1].op != OP_JALR) {
                w = may[p - 1] | writes[p - 1];
                m = must[p - 1] | writes[p - 1];
            }
            for (unsigned q = 0; q < n; q++) {
                if (t->inside[q] == (int)p) {
                    w |= may[q] | writes[q];
                    m &= must[q] | writes[q];
                }
            }
            if (w != may[p] || m != must[p]) {
                may[p] = w;
                must[p] = m;
                changed = true;
            }
        }
    }
    for (unsigned p = 0; p < n; p++) {
        load |= (reads[p] | may[p]) & ~must[p];
        t->fp_facts[p] = (unsigned)(must[p] >> FP_FACTS_SHIFT);
    }
    return load & ((1ull << 33) - 1);
}

/* The cache slots of the registers in `regs` (a reg_bit mask). */
static unsigned slots_of(const struct tr *t, uint64_t regs)
{
    unsigned slots = 0;
    for (unsigned k = 0; k < NCACHED; k++)
        if (t->cached[k] && ((regs >> t->cached[k]) & 1))
            slots |= 1u << k;
    return slots;
}

/* Picks the guest registers the unit uses most (at least twice) to hold
 * in host registers: in the call-clobbered ones too only if the unit calls
 * no helper. Returns the mask of slots that must be loaded at the entry:
 * those whose register is in `need` (flow). A register not loaded holds
 * nothing until it is written, which is safe: it is stored back (exits,
 * helper calls, slow paths) only where it counts as written (dirty), and
 * reloaded from the hart after calls. */
static unsigned choose_cached(struct tr *t, const struct decoded_insn *insns, unsigned n, uint64_t need)
{
    unsigned uses[33] = { 0 }, slots = NCACHED;
    for (unsigned i = 0; i < n; i++) {
        const struct decoded_insn *d = &insns[i];
        uint64_t reads, writes;
        bool calls;
        insn_regs(d, &reads, &writes, &calls);
        if (calls)
            slots = NPRESERVED;
        if (fp_insn(d->op)) {
            unsigned x = fp_x_regs(d);
            uses[d->rs1] += !!(x & FPX_RS1);
            uses[d->rd] += !!(x & FPX_RD);
        } else {
            uses[d->rs1]++;
            uses[d->rs2]++;
            uses[d->rd]++;
        }
    }
    uses[0] = uses[32] = 0;
    unsigned load = 0;
    for (unsigned k = 0; k < slots; k++) {
        unsigned best = 0;
        for (unsigned x = 1; x < 32; x++)
            if (uses[x] >= 2 && uses[x] > uses[best])
                best = x;
        t->cached[k] = (uint8_t)best;
        if (best && ((need >> best) & 1))
            load |= 1u << k;
        uses[best] = 0;
    }
    return load;
}

/* The instructions of the unit starting with `blk`: it and the blocks that
 * follow in the page after a not-taken conditional branch or after a block
 * cut at BLOCK_MAX_INSNS. starts[k] marks the first instruction of each
 * block. Returns the count. */
static unsigned gather(const struct decoded_block *blk, uint64_t pc, struct decoded_insn *insns,
                       bool *starts)
{
    unsigned n = 0, off = 0, in_blk = 0;
    while (n < BLOCK_MAX_INSNS && blk->insns[n].len) {
        insns[n] = blk->insns[n];
        starts[n] = n == 0;
        off += insns[n++].len;
    }
    in_blk = n;
    for (;;) {
        const struct decoded_insn *last = &insns[n - 1];
        bool cut = in_blk == BLOCK_MAX_INSNS && !decode_ends_block(last->op);
        uint64_t next = pc + off;
        if ((!cut && !cond_branch(last->op)) || (next >> GUEST_PAGE_SHIFT) != (pc >> GUEST_PAGE_SHIFT))
            return n;
        struct decoded_insn more[BLOCK_MAX_INSNS];
        in_blk = decode_block((const uint8_t *)blk->code + off,
                              (unsigned)(GUEST_PAGE_SIZE - (next & (GUEST_PAGE_SIZE - 1))), more);
        if (in_blk == 0 || n + in_blk > JIT_UNIT_MAX_INSNS)
            return n; /* a unit ends where one of the interpreter's blocks does */
        for (unsigned i = 0; i < in_blk; i++) {
            insns[n + i] = more[i];
            starts[n + i] = i == 0;
            off += more[i].len;
        }
        n += in_blk;
    }
}

struct jit_unit *jit_translate(struct jit *j, const struct decoded_block *blk, uint64_t pc)
{
    struct hart *h = j->hart;
    struct tr t = { .j = j, .vpc = pc, .code = blk->code, .blk_pc = pc, .blk_code = blk->code };
    struct emitter *e = &t.e;
    struct decoded_insn insns[JIT_UNIT_MAX_INSNS];
    bool starts[JIT_UNIT_MAX_INSNS];
    unsigned total = gather(blk, pc, insns, starts);
    emit_init(e, j->cache.rw + j->cache.used, (uintptr_t)j->cache.rx + j->cache.used,
              j->cache.size - j->cache.used);
    uintptr_t entry = emit_here(e);

    /* The step budget, checked on every entry (chained ones too). */
    jlabel budget = budget_spent(&t, 0);
    /* Still valid in the current code epoch? (Direct jumps from other units
     * skip the lookup that checks it.) Otherwise revalidated at once (below)
     * or back to the interpreter, which retranslates. */
    struct jit_unit *u = &j->units[j->nunits];
    emit_mov_imm(e, JR_T0, (uintptr_t)&u->epoch);
    emit_load(e, 8, false, JR_T0, JR_T0, 0);
    jlabel stale = emit_branch_mem(e, JC_NE, JR_T0, JR_HART, HOFF(code_epoch));
    uintptr_t valid = emit_here(e);
    plan_jumps(&t, insns, starts, total, pc);
    unsigned load = choose_cached(&t, insns, total, flow(&t, insns, total));
    for (int k = 0; k < NCACHED; k++)
        if (load & (1u << k))
            emit_load(e, 8, false, cache_reg[k], JR_HART, XOFF(t.cached[k]));

    unsigned n = 0;
    uint64_t ipc = pc;
    for (;;) {
        if (n == total) { /* the last block's end marker */
            exit_to(&t, ipc, n);
            break;
        }
        const struct decoded_insn *d = &insns[n];
        t.cur = n;
        t.dirty |= slots_of(&t, t.may_written[n]);
        /* translate_fp.c's facts (FS checked, set Dirty) hold at n only if
         * they hold on every path to it (flow). */
        t.fp = t.fp_facts[n];
        if (n && starts[n]) {
            /* Where the interpreter would enter the next block, it would
             * check the budget: so does the unit. */
            t.blk_pc = ipc;
            t.blk_code = blk->code + (ipc - pc);
            t.blk_first = n;
            t.side[t.nside++] = (struct side_exit){ .from = budget_spent(&t, n),
                                                    .pc = ipc, .count = n, .dirty = t.dirty,
                                                    .budget = true, .inside = -1 };
        }
        t.at[n] = emit_here(e);
        t.fall = n + 1 < total;
        int r = gen_insn(&t, d, ipc, n);
        if (r < 0) {
            if (n == 0)
                return NULL;
            exit_interp(&t, ipc, n);
            break;
        }
        n++;
        ipc += d->len;
        if (r > 0 && !(t.fall && cond_branch(d->op)))
            break;
    }
    for (unsigned i = 0; i < t.nslow; i++)
        gen_slow_path(&t, &t.slow[i]);
    /* The side exits, out of the straight line. */
    for (unsigned i = 0; i < t.nside; i++) {
        const struct side_exit *s = &t.side[i];
        emit_bind(e, s->from);
        t.dirty = s->dirty;
        if (s->budget) {
            exit_at_block(&t, s->pc, s->count);
        } else {
            if (s->inside >= 0)
                jump_inside(&t, (unsigned)s->inside, s->count);
            else
                exit_to(&t, s->pc, s->count);
        }
    }
    /* Out of line: a stale unit whose code is unchanged goes on (every
     * fence.i makes all units stale, and Linux runs many). */
    emit_bind(e, stale);
    emit_load(e, 8, false, JR_ARG0, JR_HART, HOFF(jit));
    emit_mov_imm(e, JR_ARG1, (uintptr_t)u);
    emit_call(e, (const void *)jit_revalidate);
    jlabel changed = emit_branch_nz(e, true, JR_RET);
    jlabel gone = emit_jump(e);
    emit_bind(e, changed);
    emit_jump_abs(e, (const void *)valid);
    emit_bind(e, gone);
    emit_bind(e, budget);
    t.dirty = 0; /* reached before the cached registers are loaded */
    t.blk_first = 0;
    exit_interp(&t, pc, 0);
    unsigned len = (unsigned)(ipc - pc);
    if (e->overflow || e->pos + len > e->cap)
        return NULL;

    /* The bytes the unit was decoded from (memory may differ by now, if
     * the guest stored to its code without a fence.i since), for
     * jit_revalidate: in the cache right after its code, as many as there
     * are. */
    uint8_t *copy = j->cache.rw + j->cache.used + e->pos;
    for (unsigned i = 0, off = 0; i < n; off += insns[i++].len)
        memcpy(copy + off, &insns[i].raw, insns[i].len);
    *u = (struct jit_unit){ .code = blk->code, .vpc = pc, .epoch = h->code_epoch,
                            .entry = (const void *)entry, .len = len,
                            .bytes = (const uint8_t *)(e->rx + e->pos) };
    j->cache.used += e->pos + len;
    j->nunits++;
    j->stats.units++;
    j->stats.insns += n;
    return u;
}

/* ---- for translate_fp.c (translate.h) ---- */

struct emitter *tr_emitter(struct tr *t) { return &t->e; }
unsigned *tr_fp_state(struct tr *t) { return &t->fp; }
void tr_get_x(struct tr *t, enum jreg r, unsigned x) { get_x(t, r, x); }
void tr_set_x(struct tr *t, enum jreg r, unsigned x) { set_x(t, r, x); }
void tr_reload_x(struct tr *t, unsigned x) { reload_x(t, x); }

void tr_sync_x(struct tr *t, unsigned x)
{
    int k = cache_slot(t, x);
    if (k >= 0 && (t->dirty & (1u << k)))
        emit_store(&t->e, 8, cache_reg[k], JR_HART, XOFF(x));
}

void tr_spill(struct tr *t) { spill(t); }
void tr_unspill(struct tr *t) { unspill(t); }

void tr_gen_raise(struct tr *t, void (*fn)(struct hart *h, uint64_t arg), uint64_t arg, uint64_t pc,
                  unsigned count)
{
    bool was = t->spilled;
    if (!was)
        spill(t); /* only on this path, which ends: nothing to unspill */
    set_pc_imm(t, pc);
    emit_mov(&t->e, JR_ARG0, JR_HART);
    emit_mov_imm(&t->e, JR_ARG1, arg);
    emit_call(&t->e, (const void *)fn);
    write_back(t); /* the callee-saved ones; the rest are in the hart */
    add_count(t, count);
    emit_jump_abs(&t->e, (const void *)t->j->exit_trap);
    t->spilled = was;
}

void tr_gen_fp_mem(struct tr *t, const struct decoded_insn *d, uint64_t pc, unsigned count,
                   bool store, unsigned size)
{
    gen_access(t, d, pc, count, store, size, false, true);
}
