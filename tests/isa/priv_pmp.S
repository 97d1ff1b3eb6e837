/* PMP (short): NAPOT all-RWX lets S run; TOR regions without permissions
 * give access faults (load 5, store 7, fetch 1) in S/U but not in M unless
 * locked; a locked entry cannot be rewritten. Regions are 4 KiB aligned so
 * that any PMP granularity up to 4 KiB works. */
#include "test.h"
#include "priv.h"

#define PMP_R     0x01
#define PMP_W     0x02
#define PMP_X     0x04
#define PMP_TOR   0x08
#define PMP_NAPOT 0x18
#define PMP_L     0x80

#define DATA_VAL  0x600df00d600df00d
#define RO_VAL    0x0123012301230123

/* pmpaddrN = (address of sym + off) >> 2 */
.macro PMPADDR n, sym, off
    la t0, \sym
    li t1, \off
    add t0, t0, t1
    srli t0, t0, 2
    csrw pmpaddr\n, t0
.endm

TEST_BEGIN
    PRIV_SETUP
    la t0, pmp_data
    li t1, DATA_VAL
    sd t1, 0(t0)
    la t0, pmp_ro
    li t1, RO_VAL
    sd t1, 0(t0)

    /* ---------- 1: NAPOT over everything, RWX: S works ---------- */
    la a1, pmp_data
    RUN_IN PRV_S, s_load
    EXPECT(1, a0, DATA_VAL)

    /* ---------- regions ----------
     * 0: TOR [0, xpage)              RWX
     * 1: TOR [xpage, xpage+4K)       R    (no X)
     * 2: TOR [xpage+4K, data)        RWX
     * 3: TOR [data, data+4K)         -    (no access)
     * 4: TOR [data+4K, data+8K)      R    (pmp_ro)
     * 5: NAPOT everything            RWX */
    PMPADDR 0, pmp_xpage, 0
    PMPADDR 1, pmp_xpage, 4096
    PMPADDR 2, pmp_data, 0
    PMPADDR 3, pmp_data, 4096
    PMPADDR 4, pmp_data, 8192
    li t0, -1
    csrw pmpaddr5, t0
#define CFG ((PMP_TOR | PMP_R | PMP_W | PMP_X) | ((PMP_TOR | PMP_R) << 8) | ((PMP_TOR | PMP_R | PMP_W | PMP_X) << 16) | (PMP_TOR << 24) | ((PMP_TOR | PMP_R) << 32) | ((PMP_NAPOT | PMP_R | PMP_W | PMP_X) << 40))
    li t0, CFG
    csrw pmpcfg0, t0
    sfence.vma
    csrr a0, pmpcfg0
    EXPECT(2, a0, CFG)
    csrr a0, pmpaddr3
    la t0, pmp_data + 4096
    srli t0, t0, 2
    EXPECT_REG(3, a0, t0)

    /* ---------- 4-9: no-permission region ---------- */
    la a1, pmp_data
    RUN_IN PRV_S, s_load
    EXPECT_REC(4, R_CAUSE, CAUSE_LOAD_ACCESS)
    EXPECT_REC_REG(5, R_TVAL, a1)
    la a1, pmp_data + 8
    RUN_IN PRV_S, s_store
    EXPECT_REC(6, R_CAUSE, CAUSE_STORE_ACCESS)
    EXPECT_REC_REG(7, R_TVAL, a1)
    la a1, pmp_data                      /* M is not restricted (no L) */
    ld a0, 0(a1)
    EXPECT(8, a0, DATA_VAL)
    li a2, 0x1234
    sd a2, 16(a1)
    ld a0, 16(a1)
    EXPECT(9, a0, 0x1234)

    /* ---------- 10-11: read-only region ---------- */
    la a1, pmp_ro
    RUN_IN PRV_S, s_load
    EXPECT(10, a0, RO_VAL)
    EXPECT_REC(24, R_CAUSE, CAUSE_ECALL_S)
    RUN_IN PRV_S, s_store
    EXPECT_REC(11, R_CAUSE, CAUSE_STORE_ACCESS)

    /* ---------- 12-16: region without X ---------- */
    la a1, pmp_xfunc
    RUN_IN PRV_S, s_jump
    EXPECT_REC(12, R_CAUSE, CAUSE_FETCH_ACCESS)
    EXPECT_REC_REG(13, R_TVAL, a1)
    EXPECT_REC_REG(14, R_EPC, a1)
    li a0, 0
    jalr t3, 0(a1)                       /* M can execute it */
    EXPECT(15, a0, 0x15)
    la a1, pmp_xfunc                     /* S can read it (R) */
    RUN_IN PRV_S, s_load_w
    lw t0, 0(a1)
    EXPECT_REG(16, a0, t0)

    /* ---------- 17: U is restricted like S ---------- */
    la a1, pmp_data
    RUN_IN PRV_U, s_load
    EXPECT_REC(17, R_CAUSE, CAUSE_LOAD_ACCESS)

    /* ---------- 18-23: locking entry 3 restricts M too ---------- */
#define CFG_L (CFG | (PMP_L << 24))
    li t0, CFG_L
    csrw pmpcfg0, t0
    csrr a0, pmpcfg0
    EXPECT(25, a0, CFG_L)
    la a1, pmp_data
    M_EXPECT 1f
    ld a0, 0(a1)
1:  EXPECT_REC(18, R_CAUSE, CAUSE_LOAD_ACCESS)
    EXPECT_REC_REG(19, R_TVAL, a1)
    M_EXPECT 1f
    sd a0, 0(a1)
1:  EXPECT_REC(20, R_CAUSE, CAUSE_STORE_ACCESS)
    li t0, CFG                           /* try to unlock: ignored */
    csrw pmpcfg0, t0
    csrr a0, pmpcfg0
    EXPECT(21, a0, CFG_L)
    csrr s1, pmpaddr3                    /* locked: pmpaddr3 ... */
    li t0, -1
    csrw pmpaddr3, t0
    csrr a0, pmpaddr3
    EXPECT_REG(22, a0, s1)
    csrr s1, pmpaddr2                    /* ... and, with TOR, pmpaddr2 */
    li t0, 0
    csrw pmpaddr2, t0
    csrr a0, pmpaddr2
    EXPECT_REG(23, a0, s1)

    TEST_PASS

    .text
s_load:
    ld a0, 0(a1)
    ecall
s_load_w:
    lw a0, 0(a1)
    ecall
s_store:
    sd a1, 0(a1)
    ecall
s_jump:
    jalr t3, 0(a1)
    ecall

    .section .text.pmp_x, "ax", @progbits
    .align 12
pmp_xpage:
pmp_xfunc:
    .option push
    .option norvc
    addi a0, zero, 0x15
    jalr zero, 0(t3)
    .option pop
    .align 12
pmp_xpage_end:

    .bss
    .align 12
pmp_data: .space 4096
pmp_ro:   .space 4096
