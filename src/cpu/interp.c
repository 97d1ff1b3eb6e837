/* The interpreter: fetch through the fetch TLB, decode through the per-hart
 * decode cache (tagged by the instruction bits, so self-modifying code and
 * fence.i need no invalidation), execute with a switch.
 *
 * Interrupts, timers and cross-thread requests are checked between slices of
 * at most SLICE_INSNS instructions, and right after any instruction that can
 * unmask an interrupt (CSR writes, xRET): never per instruction. */
#include "cpu/cpu_internal.h"
#include "cpu/decode.h"

#include <string.h>

#define SLICE_INSNS 1024
#define TIMER_CHECK_INSNS 8192

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

static inline uint64_t sext32(uint64_t v) { return (uint64_t)(int64_t)(int32_t)v; }

static inline int load(struct hart *h, uint64_t va, unsigned size, uint64_t *v)
{
    void *p = tlb_lookup(h->tlb_read, va, size);
    if (likely(p != NULL)) {
        switch (size) {
        case 1: *v = *(uint8_t *)p; break;
        case 2: *v = *(uint16_t *)p; break;
        case 4: *v = *(uint32_t *)p; break;
        default: *v = *(uint64_t *)p; break;
        }
        return 0;
    }
    return mmu_load_slow(h, va, size, v);
}

static inline int store(struct hart *h, uint64_t va, unsigned size, uint64_t v)
{
    void *p = tlb_lookup(h->tlb_write, va, size);
    if (likely(p != NULL)) {
        switch (size) {
        case 1: *(uint8_t *)p = (uint8_t)v; break;
        case 2: *(uint16_t *)p = (uint16_t)v; break;
        case 4: *(uint32_t *)p = (uint32_t)v; break;
        default: *(uint64_t *)p = v; break;
        }
        return 0;
    }
    return mmu_store_slow(h, va, size, v);
}

static uint64_t amo32(void *p, unsigned funct, uint32_t src)
{
    uint32_t *m = p;
    uint32_t old, val;
    switch (funct) {
    case AMO_SWAP: return __atomic_exchange_n(m, src, __ATOMIC_SEQ_CST);
    case AMO_ADD: return __atomic_fetch_add(m, src, __ATOMIC_SEQ_CST);
    case AMO_XOR: return __atomic_fetch_xor(m, src, __ATOMIC_SEQ_CST);
    case AMO_AND: return __atomic_fetch_and(m, src, __ATOMIC_SEQ_CST);
    case AMO_OR: return __atomic_fetch_or(m, src, __ATOMIC_SEQ_CST);
    }
    old = __atomic_load_n(m, __ATOMIC_RELAXED);
    do {
        switch (funct) {
        case AMO_MIN: val = (int32_t)old < (int32_t)src ? old : src; break;
        case AMO_MAX: val = (int32_t)old > (int32_t)src ? old : src; break;
        case AMO_MINU: val = old < src ? old : src; break;
        default: val = old > src ? old : src; break;
        }
    } while (!__atomic_compare_exchange_n(m, &old, val, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    return old;
}

static uint64_t amo64(void *p, unsigned funct, uint64_t src)
{
    uint64_t *m = p;
    uint64_t old, val;
    switch (funct) {
    case AMO_SWAP: return __atomic_exchange_n(m, src, __ATOMIC_SEQ_CST);
    case AMO_ADD: return __atomic_fetch_add(m, src, __ATOMIC_SEQ_CST);
    case AMO_XOR: return __atomic_fetch_xor(m, src, __ATOMIC_SEQ_CST);
    case AMO_AND: return __atomic_fetch_and(m, src, __ATOMIC_SEQ_CST);
    case AMO_OR: return __atomic_fetch_or(m, src, __ATOMIC_SEQ_CST);
    }
    old = __atomic_load_n(m, __ATOMIC_RELAXED);
    do {
        switch (funct) {
        case AMO_MIN: val = (int64_t)old < (int64_t)src ? old : src; break;
        case AMO_MAX: val = (int64_t)old > (int64_t)src ? old : src; break;
        case AMO_MINU: val = old < src ? old : src; break;
        default: val = old > src ? old : src; break;
        }
    } while (!__atomic_compare_exchange_n(m, &old, val, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    return old;
}

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
    return (h->mstatus & MSTATUS_FS) == 0;
}

/* Runs up to `n` instructions. Returns early (SLICE_EVENT) after anything
 * that may make an interrupt deliverable or stop the hart. */
static enum slice_result run_slice(struct hart *h, uint64_t n, uint64_t *steps)
{
    uint64_t *x = h->x;
    uint64_t start = n;
    enum slice_result result = SLICE_DONE;
    for (; n; n--) {
        uint64_t pc = h->pc;
        uint32_t raw;
        const uint8_t *host = tlb_lookup(h->tlb_fetch, pc, 2);
        if (likely(host != NULL) && likely((pc & 0xfff) != 0xffe)) {
            memcpy(&raw, host, 4);
            if ((raw & 3) != 3)
                raw &= 0xffff;
        } else if (mmu_fetch_slow(h, pc, &raw)) {
            continue; /* fetch fault taken: pc is at the handler */
        }
        struct decoded_insn *d = &h->decode_cache[(pc >> 1) & ((1u << DECODE_CACHE_BITS) - 1)];
        if (unlikely(d->raw != raw))
            decode_insn(raw, d);

        uint64_t npc = pc + d->len;
        uint64_t a = x[d->rs1], b = x[d->rs2], v;
        int64_t imm = d->imm;
        bool event = false;

        switch ((enum insn_op)d->op) {
        case OP_LUI: x[d->rd] = (uint64_t)imm; break;
        case OP_AUIPC: x[d->rd] = pc + (uint64_t)imm; break;
        case OP_JAL: x[d->rd] = npc; npc = pc + (uint64_t)imm; break;
        case OP_JALR: npc = (a + (uint64_t)imm) & ~1ull; x[d->rd] = pc + d->len; break;
        case OP_BEQ: if (a == b) npc = pc + (uint64_t)imm; break;
        case OP_BNE: if (a != b) npc = pc + (uint64_t)imm; break;
        case OP_BLT: if ((int64_t)a < (int64_t)b) npc = pc + (uint64_t)imm; break;
        case OP_BGE: if ((int64_t)a >= (int64_t)b) npc = pc + (uint64_t)imm; break;
        case OP_BLTU: if (a < b) npc = pc + (uint64_t)imm; break;
        case OP_BGEU: if (a >= b) npc = pc + (uint64_t)imm; break;

        case OP_LB: if (load(h, a + imm, 1, &v)) goto trapped; x[d->rd] = (uint64_t)(int8_t)v; break;
        case OP_LH: if (load(h, a + imm, 2, &v)) goto trapped; x[d->rd] = (uint64_t)(int16_t)v; break;
        case OP_LW: if (load(h, a + imm, 4, &v)) goto trapped; x[d->rd] = sext32(v); break;
        case OP_LD: if (load(h, a + imm, 8, &v)) goto trapped; x[d->rd] = v; break;
        case OP_LBU: if (load(h, a + imm, 1, &v)) goto trapped; x[d->rd] = v; break;
        case OP_LHU: if (load(h, a + imm, 2, &v)) goto trapped; x[d->rd] = v; break;
        case OP_LWU: if (load(h, a + imm, 4, &v)) goto trapped; x[d->rd] = v; break;
        case OP_SB: if (store(h, a + imm, 1, b)) goto trapped; break;
        case OP_SH: if (store(h, a + imm, 2, b)) goto trapped; break;
        case OP_SW: if (store(h, a + imm, 4, b)) goto trapped; break;
        case OP_SD: if (store(h, a + imm, 8, b)) goto trapped; break;

        case OP_ADDI: x[d->rd] = a + (uint64_t)imm; break;
        case OP_SLTI: x[d->rd] = (int64_t)a < imm; break;
        case OP_SLTIU: x[d->rd] = a < (uint64_t)imm; break;
        case OP_XORI: x[d->rd] = a ^ (uint64_t)imm; break;
        case OP_ORI: x[d->rd] = a | (uint64_t)imm; break;
        case OP_ANDI: x[d->rd] = a & (uint64_t)imm; break;
        case OP_SLLI: x[d->rd] = a << imm; break;
        case OP_SRLI: x[d->rd] = a >> imm; break;
        case OP_SRAI: x[d->rd] = (uint64_t)((int64_t)a >> imm); break;
        case OP_ADD: x[d->rd] = a + b; break;
        case OP_SUB: x[d->rd] = a - b; break;
        case OP_SLL: x[d->rd] = a << (b & 63); break;
        case OP_SLT: x[d->rd] = (int64_t)a < (int64_t)b; break;
        case OP_SLTU: x[d->rd] = a < b; break;
        case OP_XOR: x[d->rd] = a ^ b; break;
        case OP_SRL: x[d->rd] = a >> (b & 63); break;
        case OP_SRA: x[d->rd] = (uint64_t)((int64_t)a >> (b & 63)); break;
        case OP_OR: x[d->rd] = a | b; break;
        case OP_AND: x[d->rd] = a & b; break;
        case OP_ADDIW: x[d->rd] = sext32(a + (uint64_t)imm); break;
        case OP_SLLIW: x[d->rd] = sext32((uint32_t)a << imm); break;
        case OP_SRLIW: x[d->rd] = sext32((uint32_t)a >> imm); break;
        case OP_SRAIW: x[d->rd] = (uint64_t)(int64_t)((int32_t)a >> imm); break;
        case OP_ADDW: x[d->rd] = sext32(a + b); break;
        case OP_SUBW: x[d->rd] = sext32(a - b); break;
        case OP_SLLW: x[d->rd] = sext32((uint32_t)a << (b & 31)); break;
        case OP_SRLW: x[d->rd] = sext32((uint32_t)a >> (b & 31)); break;
        case OP_SRAW: x[d->rd] = (uint64_t)(int64_t)((int32_t)a >> (b & 31)); break;

        case OP_MUL: x[d->rd] = a * b; break;
        case OP_MULH: x[d->rd] = (uint64_t)(((__int128)(int64_t)a * (__int128)(int64_t)b) >> 64); break;
        case OP_MULHSU: x[d->rd] = (uint64_t)(((__int128)(int64_t)a * (__int128)b) >> 64); break;
        case OP_MULHU: x[d->rd] = (uint64_t)(((unsigned __int128)a * b) >> 64); break;
        case OP_DIV: x[d->rd] = (uint64_t)div64((int64_t)a, (int64_t)b); break;
        case OP_DIVU: x[d->rd] = b ? a / b : ~0ull; break;
        case OP_REM: x[d->rd] = (uint64_t)rem64((int64_t)a, (int64_t)b); break;
        case OP_REMU: x[d->rd] = b ? a % b : a; break;
        case OP_MULW: x[d->rd] = sext32(a * b); break;
        case OP_DIVW: x[d->rd] = (uint64_t)(int64_t)div32((int32_t)a, (int32_t)b); break;
        case OP_DIVUW: x[d->rd] = (uint32_t)b ? sext32((uint32_t)a / (uint32_t)b) : ~0ull; break;
        case OP_REMW: x[d->rd] = (uint64_t)(int64_t)rem32((int32_t)a, (int32_t)b); break;
        case OP_REMUW: x[d->rd] = (uint32_t)b ? sext32((uint32_t)a % (uint32_t)b) : sext32(a); break;

        case OP_LR_W: case OP_LR_D: {
            unsigned size = d->op == OP_LR_W ? 4 : 8;
            void *p;
            if (mmu_atomic_ptr(h, a, size, true, &p)) goto trapped;
            v = size == 4 ? sext32(__atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST))
                          : __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST);
            h->resv_addr = a;
            h->resv_value = v;
            h->resv_valid = true;
            x[d->rd] = v;
            break;
        }
        case OP_SC_W: case OP_SC_D: {
            unsigned size = d->op == OP_SC_W ? 4 : 8;
            void *p;
            if (mmu_atomic_ptr(h, a, size, false, &p)) goto trapped;
            bool ok = false;
            if (h->resv_valid && h->resv_addr == a) {
                if (size == 4) {
                    uint32_t expect = (uint32_t)h->resv_value;
                    ok = __atomic_compare_exchange_n((uint32_t *)p, &expect, (uint32_t)b, false,
                                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
                } else {
                    uint64_t expect = h->resv_value;
                    ok = __atomic_compare_exchange_n((uint64_t *)p, &expect, b, false,
                                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
                }
            }
            h->resv_valid = false;
            x[d->rd] = !ok;
            break;
        }
        case OP_AMO_W: {
            void *p;
            if (mmu_atomic_ptr(h, a, 4, false, &p)) goto trapped;
            x[d->rd] = sext32(amo32(p, (unsigned)imm, (uint32_t)b));
            break;
        }
        case OP_AMO_D: {
            void *p;
            if (mmu_atomic_ptr(h, a, 8, false, &p)) goto trapped;
            x[d->rd] = amo64(p, (unsigned)imm, b);
            break;
        }

        case OP_CSRRW: case OP_CSRRS: case OP_CSRRC:
        case OP_CSRRWI: case OP_CSRRSI: case OP_CSRRCI: {
            unsigned csr = (unsigned)imm;
            bool is_imm = d->op >= OP_CSRRWI;
            unsigned kind = (unsigned)(d->op - (is_imm ? OP_CSRRWI : OP_CSRRW)); /* 0 w, 1 s, 2 c */
            uint64_t src = is_imm ? d->rs1 : a;
            bool do_write = kind == 0 || d->rs1 != 0;
            uint64_t old = 0;
            if (!(kind == 0 && d->rd == 0) && csr_read(h, csr, &old))
                goto illegal;
            if (do_write) {
                uint64_t nv = kind == 0 ? src : kind == 1 ? (old | src) : (old & ~src);
                if (csr_write(h, csr, nv))
                    goto illegal;
                event = true;
            }
            x[d->rd] = old;
            break;
        }

        case OP_FENCE: case OP_FENCE_I: break;
        case OP_ECALL: {
            enum exc_cause cause = h->priv == PRIV_U ? EXC_ECALL_U
                                   : h->priv == PRIV_S ? EXC_ECALL_S : EXC_ECALL_M;
            if (h->priv != PRIV_M && h->hooks.ecall && !((h->medeleg >> cause) & 1) &&
                h->hooks.ecall(h, h->hooks.opaque)) {
                event = true;
                break;
            }
            hart_raise_exception(h, cause, 0);
            goto trapped;
        }
        case OP_EBREAK: hart_raise_exception(h, EXC_BREAKPOINT, pc); goto trapped;
        case OP_MRET:
            if (h->priv < PRIV_M) goto illegal;
            trap_mret(h);
            h->insn_count++;
            result = SLICE_EVENT;
            n--;
            goto out;
        case OP_SRET:
            if (h->priv < PRIV_S || (h->priv == PRIV_S && (h->mstatus & MSTATUS_TSR)))
                goto illegal;
            trap_sret(h);
            h->insn_count++;
            result = SLICE_EVENT;
            n--;
            goto out;
        case OP_WFI:
            if (h->priv == PRIV_U || (h->priv == PRIV_S && (h->mstatus & MSTATUS_TW)))
                goto illegal;
            h->pc = npc;
            h->insn_count++;
            trap_update_timers(h);
            result = hart_wfi_wakeup(h) ? SLICE_EVENT : SLICE_WFI;
            n--;
            goto out;
        case OP_SFENCE_VMA:
            if (h->priv == PRIV_U || (h->priv == PRIV_S && (h->mstatus & MSTATUS_TVM)))
                goto illegal;
            if (d->rs1 == 0)
                hart_flush_tlb(h);
            else
                tlb_flush_page(&h->tlb, a);
            break;

        case OP_FLW: case OP_FLD: {
            if (fs_off(h)) goto illegal;
            unsigned size = d->op == OP_FLW ? 4 : 8;
            if (load(h, a + imm, size, &v)) goto trapped;
            h->fp.f[d->rd] = size == 4 ? fpu_box32((uint32_t)v) : v;
            h->mstatus |= MSTATUS_FS;
            break;
        }
        case OP_FSW: case OP_FSD: {
            if (fs_off(h)) goto illegal;
            if (store(h, a + imm, d->op == OP_FSW ? 4 : 8, h->fp.f[d->rs2])) goto trapped;
            break;
        }
        case OP_FP:
            if (fs_off(h) || fpu_execute(&h->fp, x, d->raw))
                goto illegal;
            h->mstatus |= MSTATUS_FS;
            break;

        case OP_ADD_UW: x[d->rd] = b + (uint32_t)a; break;
        case OP_SH1ADD: x[d->rd] = b + (a << 1); break;
        case OP_SH2ADD: x[d->rd] = b + (a << 2); break;
        case OP_SH3ADD: x[d->rd] = b + (a << 3); break;
        case OP_SH1ADD_UW: x[d->rd] = b + ((uint64_t)(uint32_t)a << 1); break;
        case OP_SH2ADD_UW: x[d->rd] = b + ((uint64_t)(uint32_t)a << 2); break;
        case OP_SH3ADD_UW: x[d->rd] = b + ((uint64_t)(uint32_t)a << 3); break;
        case OP_SLLI_UW: x[d->rd] = (uint64_t)(uint32_t)a << imm; break;
        case OP_ANDN: x[d->rd] = a & ~b; break;
        case OP_ORN: x[d->rd] = a | ~b; break;
        case OP_XNOR: x[d->rd] = ~(a ^ b); break;
        case OP_CLZ: x[d->rd] = a ? (uint64_t)__builtin_clzll(a) : 64; break;
        case OP_CLZW: x[d->rd] = (uint32_t)a ? (uint64_t)__builtin_clz((uint32_t)a) : 32; break;
        case OP_CTZ: x[d->rd] = a ? (uint64_t)__builtin_ctzll(a) : 64; break;
        case OP_CTZW: x[d->rd] = (uint32_t)a ? (uint64_t)__builtin_ctz((uint32_t)a) : 32; break;
        case OP_CPOP: x[d->rd] = (uint64_t)__builtin_popcountll(a); break;
        case OP_CPOPW: x[d->rd] = (uint64_t)__builtin_popcount((uint32_t)a); break;
        case OP_MAX: x[d->rd] = (int64_t)a > (int64_t)b ? a : b; break;
        case OP_MAXU: x[d->rd] = a > b ? a : b; break;
        case OP_MIN: x[d->rd] = (int64_t)a < (int64_t)b ? a : b; break;
        case OP_MINU: x[d->rd] = a < b ? a : b; break;
        case OP_SEXT_B: x[d->rd] = (uint64_t)(int64_t)(int8_t)a; break;
        case OP_SEXT_H: x[d->rd] = (uint64_t)(int64_t)(int16_t)a; break;
        case OP_ZEXT_H: x[d->rd] = (uint16_t)a; break;
        case OP_ROL: x[d->rd] = rotl64(a, (unsigned)b); break;
        case OP_ROR: x[d->rd] = rotr64(a, (unsigned)b); break;
        case OP_RORI: x[d->rd] = rotr64(a, (unsigned)imm); break;
        case OP_ROLW: x[d->rd] = sext32(rotl32((uint32_t)a, (unsigned)b)); break;
        case OP_RORW: x[d->rd] = sext32(rotr32((uint32_t)a, (unsigned)b)); break;
        case OP_RORIW: x[d->rd] = sext32(rotr32((uint32_t)a, (unsigned)imm)); break;
        case OP_ORC_B: x[d->rd] = orc_b(a); break;
        case OP_REV8: x[d->rd] = __builtin_bswap64(a); break;
        case OP_BCLR: x[d->rd] = a & ~(1ull << (b & 63)); break;
        case OP_BCLRI: x[d->rd] = a & ~(1ull << imm); break;
        case OP_BEXT: x[d->rd] = (a >> (b & 63)) & 1; break;
        case OP_BEXTI: x[d->rd] = (a >> imm) & 1; break;
        case OP_BINV: x[d->rd] = a ^ (1ull << (b & 63)); break;
        case OP_BINVI: x[d->rd] = a ^ (1ull << imm); break;
        case OP_BSET: x[d->rd] = a | (1ull << (b & 63)); break;
        case OP_BSETI: x[d->rd] = a | (1ull << imm); break;

        case OP_ILLEGAL:
        default:
            goto illegal;
        }
        x[0] = 0;
        h->pc = npc;
        h->insn_count++;
        if (unlikely(event)) {
            n--;
            result = atomic_load_explicit(&h->state, memory_order_relaxed) != HART_STARTED
                     ? SLICE_STOPPED : SLICE_EVENT;
            goto out;
        }
        continue;
    illegal:
        hart_raise_exception(h, EXC_ILLEGAL_INSN, d->raw);
    trapped:
        x[0] = 0;
    }
out:
    x[0] = 0;
    *steps = start - n;
    return result;
}

static void apply_start(struct hart *h)
{
    /* SBI HSM hart_start (SBI spec 9.1): S-mode, a0 = hartid, a1 = opaque,
     * translation and interrupts off. */
    h->priv = PRIV_S;
    h->pc = h->start_addr;
    h->x[10] = h->hartid;
    h->x[11] = h->start_opaque;
    h->satp = 0;
    h->mstatus &= ~MSTATUS_SIE;
    hart_flush_tlb(h);
    mmu_update_regime(h);
    atomic_store(&h->state, HART_STARTED);
}

/* Serves cross-thread requests; true if the hart must return to its caller. */
static bool serve_requests(struct hart *h)
{
    unsigned req = atomic_exchange(&h->requests, 0);
    if (req & HART_REQ_TLB_FLUSH)
        hart_flush_tlb(h);
    return req & HART_REQ_EXIT;
}

enum hart_exit hart_run(struct hart *h, uint64_t budget)
{
    if (atomic_load(&h->requests) && serve_requests(h))
        return HART_EXIT_REQUEST;
    int state = atomic_load(&h->state);
    if (state == HART_START_PENDING)
        apply_start(h);
    else if (state == HART_STOPPED)
        return HART_EXIT_STOPPED;

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
        budget -= steps;
        if (r == SLICE_WFI)
            return HART_EXIT_WFI;
        if (r == SLICE_STOPPED)
            return HART_EXIT_STOPPED;

    }
    return HART_EXIT_BUDGET;
}
