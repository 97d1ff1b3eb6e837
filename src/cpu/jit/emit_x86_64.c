/* The x86-64 backend of the emitter (System V ABI).
 *
 * Virtual register map: RET rax, ARG0-3 rdi rsi rdx rcx, T0-2 r8-r10,
 * HART rbx, COUNT r15, S0-3 rbp r13 r14 r12; r11 is the backend's own scratch
 * (shift counts, setcc, far calls). Memory operands are [base + disp8/disp32]. */
#include "cpu/jit/emit.h"

#include <string.h>

#if defined(__x86_64__)

enum { RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7,
       R8 = 8, R9, R10, R11, R12, R13, R14, R15 };

static const uint8_t host_reg[JR_NREGS] = {
    [JR_RET] = RAX, [JR_ARG0] = RDI, [JR_ARG1] = RSI, [JR_ARG2] = RDX, [JR_ARG3] = RCX,
    [JR_T0] = R8, [JR_T1] = R9, [JR_T2] = R10, [JR_HART] = RBX, [JR_COUNT] = R15,
    [JR_S0] = RBP, [JR_S1] = R13, [JR_S2] = R14, [JR_S3] = R12,
};

void emit_init(struct emitter *e, uint8_t *buf, uintptr_t rx, size_t cap)
{
    e->buf = buf;
    e->rx = rx;
    e->pos = 0;
    e->cap = cap;
    e->overflow = false;
}

static void byte(struct emitter *e, uint8_t b)
{
    if (e->pos >= e->cap) {
        e->overflow = true;
        return;
    }
    e->buf[e->pos++] = b;
}

static void u32(struct emitter *e, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        byte(e, (uint8_t)(v >> (8 * i)));
}

static void u64(struct emitter *e, uint64_t v)
{
    u32(e, (uint32_t)v);
    u32(e, (uint32_t)(v >> 32));
}

/* REX prefix; `force` emits it even when empty (byte access to sil/dil). */
static void rex(struct emitter *e, bool w, unsigned reg, unsigned rm, bool force)
{
    uint8_t r = (uint8_t)(0x40 | (w << 3) | ((reg >> 3) << 2) | (rm >> 3));
    if (r != 0x40 || force)
        byte(e, r);
}

static void modrm_reg(struct emitter *e, unsigned reg, unsigned rm)
{
    byte(e, (uint8_t)(0xc0 | ((reg & 7) << 3) | (rm & 7)));
}

static void modrm_mem(struct emitter *e, unsigned reg, unsigned base, int32_t disp)
{
    bool d8 = disp == (int8_t)disp;
    byte(e, (uint8_t)((d8 ? 0x40 : 0x80) | ((reg & 7) << 3) | (base & 7)));
    if ((base & 7) == RSP)
        byte(e, 0x24); /* SIB: base only */
    if (d8)
        byte(e, (uint8_t)disp);
    else
        u32(e, (uint32_t)disp);
}

/* op reg, rm (register direct), opcode of 1 or 2 bytes. */
static void op_rr(struct emitter *e, bool w, unsigned opc, unsigned reg, unsigned rm, bool force)
{
    rex(e, w, reg, rm, force);
    if (opc > 0xff)
        byte(e, (uint8_t)(opc >> 8));
    byte(e, (uint8_t)opc);
    modrm_reg(e, reg, rm);
}

static void op_rm(struct emitter *e, bool w, unsigned opc, unsigned reg, unsigned base, int32_t disp,
                  bool force)
{
    rex(e, w, reg, base, force);
    if (opc > 0xff)
        byte(e, (uint8_t)(opc >> 8));
    byte(e, (uint8_t)opc);
    modrm_mem(e, reg, base, disp);
}

static void mov_host_imm(struct emitter *e, unsigned r, uint64_t imm)
{
    if (imm <= 0xffffffffull) {              /* mov r32, imm32 zero-extends */
        rex(e, false, 0, r, false);
        byte(e, (uint8_t)(0xb8 | (r & 7)));
        u32(e, (uint32_t)imm);
    } else if ((int64_t)imm == (int32_t)imm) { /* mov r/m64, simm32 */
        rex(e, true, 0, r, false);
        byte(e, 0xc7);
        modrm_reg(e, 0, r);
        u32(e, (uint32_t)imm);
    } else {
        rex(e, true, 0, r, false);
        byte(e, (uint8_t)(0xb8 | (r & 7)));
        u64(e, imm);
    }
}

void emit_mov_imm(struct emitter *e, enum jreg dst, uint64_t imm)
{
    mov_host_imm(e, host_reg[dst], imm);
}

static void mov_host(struct emitter *e, unsigned dst, unsigned src)
{
    op_rr(e, true, 0x89, src, dst, false);
}

void emit_mov(struct emitter *e, enum jreg dst, enum jreg src)
{
    if (dst != src)
        mov_host(e, host_reg[dst], host_reg[src]);
}

void emit_load(struct emitter *e, unsigned size, bool sign, enum jreg dst, enum jreg base, int32_t disp)
{
    unsigned d = host_reg[dst], b = host_reg[base];
    switch (size) {
    case 1: op_rm(e, sign, sign ? 0x0fbe : 0x0fb6, d, b, disp, false); break;
    case 2: op_rm(e, sign, sign ? 0x0fbf : 0x0fb7, d, b, disp, false); break;
    case 4: op_rm(e, sign, sign ? 0x63 : 0x8b, d, b, disp, false); break;
    default: op_rm(e, true, 0x8b, d, b, disp, false); break;
    }
}

void emit_store(struct emitter *e, unsigned size, enum jreg src, enum jreg base, int32_t disp)
{
    unsigned s = host_reg[src], b = host_reg[base];
    switch (size) {
    case 1: op_rm(e, false, 0x88, s, b, disp, true); break;
    case 2: byte(e, 0x66); op_rm(e, false, 0x89, s, b, disp, false); break;
    case 4: op_rm(e, false, 0x89, s, b, disp, false); break;
    default: op_rm(e, true, 0x89, s, b, disp, false); break;
    }
}

void emit_lea(struct emitter *e, enum jreg dst, enum jreg base, int32_t disp)
{
    op_rm(e, true, 0x8d, host_reg[dst], host_reg[base], disp, false);
}

void emit_add_load(struct emitter *e, enum jreg dst, enum jreg base, int32_t disp)
{
    op_rm(e, true, 0x03, host_reg[dst], host_reg[base], disp, false);
}

/* opc reg, [base + index]: a SIB byte (scale 1) and a zero disp8, which
 * also serves rbp/r13 as base (mod 00 would mean no base for them). */
static void op_idx(struct emitter *e, bool w, unsigned opc, unsigned reg, unsigned base,
                   unsigned index, bool force)
{
    uint8_t r = (uint8_t)(0x40 | (w << 3) | ((reg >> 3) << 2) | ((index >> 3) << 1) | (base >> 3));
    if (r != 0x40 || force)
        byte(e, r);
    if (opc > 0xff)
        byte(e, (uint8_t)(opc >> 8));
    byte(e, (uint8_t)opc);
    byte(e, (uint8_t)(0x44 | ((reg & 7) << 3)));   /* mod 01, rm 100: SIB follows */
    byte(e, (uint8_t)(((index & 7) << 3) | (base & 7)));
    byte(e, 0);
}

void emit_load_idx(struct emitter *e, unsigned size, bool sign, enum jreg dst, enum jreg base,
                   enum jreg index)
{
    unsigned d = host_reg[dst], b = host_reg[base], i = host_reg[index];
    switch (size) {
    case 1: op_idx(e, sign, sign ? 0x0fbe : 0x0fb6, d, b, i, false); break;
    case 2: op_idx(e, sign, sign ? 0x0fbf : 0x0fb7, d, b, i, false); break;
    case 4: op_idx(e, sign, sign ? 0x63 : 0x8b, d, b, i, false); break;
    default: op_idx(e, true, 0x8b, d, b, i, false); break;
    }
}

void emit_store_idx(struct emitter *e, unsigned size, enum jreg src, enum jreg base,
                    enum jreg index)
{
    unsigned s = host_reg[src], b = host_reg[base], i = host_reg[index];
    switch (size) {
    case 1: op_idx(e, false, 0x88, s, b, i, true); break;
    case 2: byte(e, 0x66); op_idx(e, false, 0x89, s, b, i, false); break;
    case 4: op_idx(e, false, 0x89, s, b, i, false); break;
    default: op_idx(e, true, 0x89, s, b, i, false); break;
    }
}

void emit_add_mem_imm(struct emitter *e, enum jreg base, int32_t disp, int32_t imm)
{
    op_rm(e, true, 0x81, 0, host_reg[base], disp, false);
    u32(e, (uint32_t)imm);
}

void emit_alu(struct emitter *e, enum jalu op, bool w32, enum jreg dst, enum jreg src)
{
    static const uint8_t opc[] = { [JA_ADD] = 0x01, [JA_SUB] = 0x29, [JA_AND] = 0x21,
                                   [JA_OR] = 0x09, [JA_XOR] = 0x31 };
    unsigned d = host_reg[dst], s = host_reg[src];
    if (op == JA_MUL)
        op_rr(e, !w32, 0x0faf, d, s, false);
    else
        op_rr(e, !w32, opc[op], s, d, false);
}

void emit_alu_imm(struct emitter *e, enum jalu op, bool w32, enum jreg dst, int32_t imm)
{
    static const uint8_t ext[] = { [JA_ADD] = 0, [JA_OR] = 1, [JA_AND] = 4, [JA_SUB] = 5,
                                   [JA_XOR] = 6 };
    unsigned d = host_reg[dst];
    if (op != JA_MUL && imm >= -128 && imm <= 127) {   /* the sign-extended imm8 form */
        op_rr(e, !w32, 0x83, ext[op], d, false);
        byte(e, (uint8_t)imm);
        return;
    }
    if (op == JA_MUL)
        op_rr(e, !w32, 0x69, d, d, false);
    else
        op_rr(e, !w32, 0x81, ext[op], d, false);
    u32(e, (uint32_t)imm);
}

static const uint8_t shift_ext[] = { [JS_ROL] = 0, [JS_ROR] = 1, [JS_SHL] = 4, [JS_SHR] = 5,
                                     [JS_SAR] = 7 };

void emit_shift_imm(struct emitter *e, enum jshift op, bool w32, enum jreg dst, unsigned amount)
{
    op_rr(e, !w32, 0xc1, shift_ext[op], host_reg[dst], false);
    byte(e, (uint8_t)(amount & (w32 ? 31 : 63)));
}

void emit_shift(struct emitter *e, enum jshift op, bool w32, enum jreg dst, enum jreg count)
{
    unsigned d = host_reg[dst], c = host_reg[count];
    if (c == RCX) {
        op_rr(e, !w32, 0xd3, shift_ext[op], d, false);
        return;
    }
    /* The count must be in cl: park rcx in r11 meanwhile. */
    mov_host(e, R11, RCX);
    mov_host(e, RCX, c);
    if (d == RCX) {
        op_rr(e, !w32, 0xd3, shift_ext[op], R11, false);
        if (w32)
            op_rr(e, false, 0x89, R11, RCX, false);
        else
            mov_host(e, RCX, R11);
    } else {
        op_rr(e, !w32, 0xd3, shift_ext[op], d, false);
        mov_host(e, RCX, R11);
    }
}

void emit_sext(struct emitter *e, unsigned bits, enum jreg dst, enum jreg src)
{
    unsigned d = host_reg[dst], s = host_reg[src];
    op_rr(e, true, bits == 8 ? 0x0fbe : bits == 16 ? 0x0fbf : 0x63, d, s, false);
}

void emit_zext(struct emitter *e, unsigned bits, enum jreg dst, enum jreg src)
{
    unsigned d = host_reg[dst], s = host_reg[src];
    if (bits == 32)
        op_rr(e, false, 0x89, s, d, false);
    else
        op_rr(e, false, bits == 8 ? 0x0fb6 : 0x0fb7, d, s, true);
}

void emit_not(struct emitter *e, enum jreg dst)
{
    op_rr(e, true, 0xf7, 2, host_reg[dst], false);
}

static const uint8_t cc[] = { [JC_EQ] = 0x4, [JC_NE] = 0x5, [JC_LT] = 0xc, [JC_GE] = 0xd,
                              [JC_LTU] = 0x2, [JC_GEU] = 0x3 };

static void cmp_host(struct emitter *e, unsigned a, unsigned b)
{
    op_rr(e, true, 0x39, b, a, false); /* cmp a, b: flags of a - b */
}

/* dst = the flags' COND ? 1 : 0 */
static void set_from_flags(struct emitter *e, enum jcond c, enum jreg dst)
{
    op_rr(e, false, 0x0f90 | cc[c], 0, R11, true);         /* setcc r11b */
    op_rr(e, false, 0x0fb6, host_reg[dst], R11, true);     /* movzx dst32, r11b */
}

void emit_setcc(struct emitter *e, enum jcond c, enum jreg dst, enum jreg a, enum jreg b)
{
    cmp_host(e, host_reg[a], host_reg[b]);
    set_from_flags(e, c, dst);
}

/* cmp r, imm (64-bit, imm sign-extended) */
static void cmp_imm(struct emitter *e, unsigned r, int32_t imm)
{
    if (imm >= -128 && imm <= 127) {
        op_rr(e, true, 0x83, 7, r, false);
        byte(e, (uint8_t)imm);
    } else {
        op_rr(e, true, 0x81, 7, r, false);
        u32(e, (uint32_t)imm);
    }
}

void emit_setcc_imm(struct emitter *e, enum jcond c, enum jreg dst, enum jreg a, int32_t imm)
{
    cmp_imm(e, host_reg[a], imm);
    set_from_flags(e, c, dst);
}

static jlabel jcc(struct emitter *e, enum jcond c)
{
    byte(e, 0x0f);
    byte(e, (uint8_t)(0x80 | cc[c]));
    jlabel l = e->pos;
    u32(e, 0);
    return l;
}

jlabel emit_branch(struct emitter *e, enum jcond c, enum jreg a, enum jreg b)
{
    cmp_host(e, host_reg[a], host_reg[b]);
    return jcc(e, c);
}

jlabel emit_branch_imm(struct emitter *e, enum jcond c, enum jreg a, int32_t imm)
{
    cmp_imm(e, host_reg[a], imm);
    return jcc(e, c);
}

jlabel emit_branch_mem(struct emitter *e, enum jcond c, enum jreg a, enum jreg base, int32_t disp)
{
    op_rm(e, true, 0x3b, host_reg[a], host_reg[base], disp, false); /* cmp a, [mem] */
    return jcc(e, c);
}

jlabel emit_branch_nz(struct emitter *e, bool w32, enum jreg reg)
{
    unsigned r = host_reg[reg];
    op_rr(e, !w32, 0x85, r, r, false);
    return jcc(e, JC_NE);
}

jlabel emit_jump(struct emitter *e)
{
    byte(e, 0xe9);
    jlabel l = e->pos;
    u32(e, 0);
    return l;
}

void emit_bind(struct emitter *e, jlabel l)
{
    if (e->overflow || l + 4 > e->cap)
        return;
    uint32_t rel = (uint32_t)(e->pos - (l + 4));
    memcpy(e->buf + l, &rel, 4);
}

static bool rel32_ok(int64_t d)
{
    return d == (int32_t)d;
}

void emit_call(struct emitter *e, const void *fn)
{
    int64_t d = (int64_t)((uintptr_t)fn - (emit_here(e) + 5));
    if (rel32_ok(d)) {
        byte(e, 0xe8);
        u32(e, (uint32_t)d);
        return;
    }
    mov_host_imm(e, R11, (uintptr_t)fn);
    op_rr(e, false, 0xff, 2, R11, false); /* call r11 */
}

void emit_jump_abs(struct emitter *e, const void *target)
{
    int64_t d = (int64_t)((uintptr_t)target - (emit_here(e) + 5));
    if (rel32_ok(d)) {
        byte(e, 0xe9);
        u32(e, (uint32_t)d);
        return;
    }
    mov_host_imm(e, R11, (uintptr_t)target);
    op_rr(e, false, 0xff, 4, R11, false); /* jmp r11 */
}

void emit_jump_reg(struct emitter *e, enum jreg target)
{
    op_rr(e, false, 0xff, 4, host_reg[target], false);
}

uintptr_t emit_patchable_jump(struct emitter *e, uintptr_t target)
{
    uintptr_t site = emit_here(e);
    byte(e, 0xe9);
    u32(e, (uint32_t)(target - (site + 5)));
    return site;
}

void emit_patch_jump(uint8_t *site_rw, uintptr_t site, uintptr_t target)
{
    uint32_t rel = (uint32_t)(target - (site + 5));
    /* Only the hart's own thread runs this code, so a plain write is safe:
     * x86 keeps instruction fetch coherent with stores. */
    memcpy(site_rw + 1, &rel, 4);
}

static void push(struct emitter *e, unsigned r)
{
    rex(e, false, 0, r, false);
    byte(e, (uint8_t)(0x50 | (r & 7)));
}

static void pop(struct emitter *e, unsigned r)
{
    rex(e, false, 0, r, false);
    byte(e, (uint8_t)(0x58 | (r & 7)));
}

void emit_preserving_stub(struct emitter *e, const void *fn)
{
    /* Translated code runs with rsp 16-byte aligned (emit_trampoline); the
     * call, six pushes and the `out` slot keep it so for fn. r8, r9 (T0,
     * T1) return results; r11 is scratch everywhere. */
    static const uint8_t saved[] = { RAX, RCX, RDX, RSI, RDI, R10 };
    for (unsigned i = 0; i < sizeof(saved); i++)
        push(e, saved[i]);
    op_rr(e, true, 0x83, 5, RSP, false); /* sub rsp, 8: `out` */
    byte(e, 8);
    mov_host(e, RDI, RBX);
    mov_host(e, RSI, R10);
    mov_host(e, RDX, R8);
    mov_host(e, RCX, R9);
    mov_host(e, R8, RSP);
    mov_host_imm(e, R11, (uintptr_t)fn);
    op_rr(e, false, 0xff, 2, R11, false); /* call r11 */
    mov_host(e, R8, RAX);
    op_rm(e, true, 0x8b, R9, RSP, 0, false); /* mov r9, [rsp] */
    op_rr(e, true, 0x83, 0, RSP, false);  /* add rsp, 8 */
    byte(e, 8);
    for (int i = (int)sizeof(saved) - 1; i >= 0; i--)
        pop(e, saved[i]);
    byte(e, 0xc3);                        /* ret */
}

void emit_trampoline(struct emitter *e, uintptr_t *exit)
{
    static const uint8_t saved[] = { RBX, RBP, R12, R13, R14, R15 };
    for (unsigned i = 0; i < sizeof(saved); i++)
        push(e, saved[i]);
    op_rr(e, true, 0x83, 5, RSP, false);                /* sub rsp, 8: keep 16-byte alignment */
    byte(e, 8);
    mov_host(e, RBX, RDI);
    op_rr(e, false, 0xff, 4, RSI, false);               /* jmp rsi */
    *exit = emit_here(e);
    op_rr(e, true, 0x83, 0, RSP, false);                /* add rsp, 8 */
    byte(e, 8);
    for (int i = (int)sizeof(saved) - 1; i >= 0; i--)
        pop(e, saved[i]);
    byte(e, 0xc3);                                      /* ret */
}

#endif
