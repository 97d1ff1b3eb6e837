/* Trap delegation: medeleg/mideleg, the sstatus/sie/sip views of
 * mstatus/mie/mip, delegated and non-delegated exceptions and interrupts.
 * M traps go to trap_m, S traps to trap_s (priv.h). No paging. */
#include "test.h"
#include "priv.h"

#define STD_INTS 0xaaa   /* SSI MSI STI MTI SEI MEI: ignore e.g. H bits */

TEST_BEGIN
    PRIV_SETUP
    csrw CSR_MENVCFG, zero          /* STCE=0: STIP is a plain mip bit */

    /* ---------- 1-12: mideleg/medeleg/sie/sip ---------- */
    li t0, S_INTS
    csrw mideleg, t0
    csrr a0, mideleg
    EXPECT_BITS(1, a0, S_INTS, S_INTS)
    li t0, (1 << 2) | (1 << 3) | (1 << 8)
    csrw medeleg, t0
    csrr a0, medeleg
    EXPECT_BITS(2, a0, (1 << 2) | (1 << 3) | (1 << 8), (1 << 2) | (1 << 3) | (1 << 8))
    csrw medeleg, zero

    /* sie is mie masked by mideleg */
    csrw mideleg, zero
    csrw mie, zero
    li t0, -1
    csrw sie, t0
    csrr a0, sie
    EXPECT_BITS(3, a0, STD_INTS, 0)
    csrr a0, mie
    EXPECT_BITS(4, a0, STD_INTS, 0)
    li t0, S_INTS
    csrw mideleg, t0
    li t0, MIP_MSIP
    csrw mie, t0
    li t0, -1
    csrw sie, t0
    csrr a0, sie
    EXPECT_BITS(5, a0, STD_INTS, S_INTS)
    csrr a0, mie
    EXPECT_BITS(6, a0, STD_INTS, S_INTS | MIP_MSIP)
    csrw sie, zero
    csrr a0, mie
    EXPECT_BITS(7, a0, STD_INTS, MIP_MSIP)
    csrw mie, zero

    /* sip is mip masked by mideleg */
    li t0, MIP_SSIP
    csrs mip, t0
    csrr a0, sip
    EXPECT_BITS(8, a0, MIP_SSIP, MIP_SSIP)
    csrw mideleg, zero
    csrr a0, sip
    EXPECT_BITS(9, a0, STD_INTS, 0)
    csrr a0, mip
    EXPECT_BITS(10, a0, MIP_SSIP, MIP_SSIP)
    li t0, S_INTS
    csrw mideleg, t0
    csrci sip, MIP_SSIP
    csrr a0, mip
    EXPECT_BITS(11, a0, MIP_SSIP, 0)
    /* STIP and SEIP are read-only in sip */
    li t0, MIP_STIP | MIP_SEIP
    csrs sip, t0
    csrr a0, mip
    EXPECT_BITS(12, a0, MIP_STIP | MIP_SEIP, 0)
    csrw mideleg, zero

    /* ---------- 13-22: sstatus is a restricted view of mstatus ---------- */
    li t0, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_MPRV | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR
    csrc mstatus, t0
    li t0, MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_TW
    csrs mstatus, t0
    li t0, -1
    csrw sstatus, t0
    csrr a0, mstatus
    EXPECT_BITS(13, a0, MSTATUS_MPP, MSTATUS_MPP)
    EXPECT_BITS(14, a0, MSTATUS_MPIE, MSTATUS_MPIE)
    EXPECT_BITS(15, a0, MSTATUS_MIE, 0)
    EXPECT_BITS(16, a0, MSTATUS_TW, MSTATUS_TW)
    EXPECT_BITS(17, a0, MSTATUS_TSR | MSTATUS_TVM | MSTATUS_MPRV, 0)
    EXPECT_BITS(18, a0, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP)
    EXPECT_BITS(19, a0, MSTATUS_SUM | MSTATUS_MXR, MSTATUS_SUM | MSTATUS_MXR)
    csrr a0, sstatus
    EXPECT_BITS(20, a0, MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_TW, 0)
    csrw sstatus, zero
    csrr a0, mstatus
    EXPECT_BITS(21, a0, MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_TW, MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_TW)
    EXPECT_BITS(22, a0, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR, 0)
    li t0, MSTATUS_MPIE | MSTATUS_TW
    csrc mstatus, t0

    /* ---------- 30-37: ecall from U delegated to S ---------- */
    /* (bit 11 too: ecall from M must still go to M, see 50) */
    li t0, (1 << 2) | (1 << 3) | (1 << 8) | (1 << 11)
    csrw medeleg, t0
    CLEAR_COUNTS
    la a0, u_ecall
    RUN_IN PRV_S, s_to_u
    EXPECT_SREC(30, R_CAUSE, CAUSE_ECALL_U)
    EXPECT_SREC_ADDR(31, R_EPC, u_ecall)
    EXPECT_SREC(32, R_TVAL, 0)
    EXPECT_SREC_BITS(33, R_STATUS, MSTATUS_SPP, 0)
    EXPECT_SREC_BITS(34, R_STATUS, MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPIE)
    EXPECT_REC(35, R_CAUSE, CAUSE_ECALL_S)      /* then s_back's ecall */
    EXPECT_REC(36, R_COUNT, 1)                  /* M saw only that */
    EXPECT_SREC(37, R_COUNT, 1)

    /* ---------- 38-42: illegal instruction and ebreak from U -> S ---------- */
    la a0, u_csrr_mstatus
    RUN_IN PRV_S, s_to_u
    EXPECT_SREC(38, R_CAUSE, CAUSE_ILLEGAL)
    EXPECT_SREC_ADDR(39, R_EPC, u_csrr_mstatus)
    EXPECT_STVAL_INSN(40)
    EXPECT_SREC_BITS(41, R_STATUS, MSTATUS_SPP, 0)
    la a0, u_ebreak
    RUN_IN PRV_S, s_to_u
    EXPECT_SREC(42, R_CAUSE, CAUSE_BREAKPOINT)

    /* ---------- 43-47: delegated exception from S stays in S ---------- */
    CLEAR_COUNTS
    RUN_IN PRV_S, s_illegal
    EXPECT_SREC(43, R_CAUSE, CAUSE_ILLEGAL)
    EXPECT_SREC_BITS(44, R_STATUS, MSTATUS_SPP, MSTATUS_SPP)
    EXPECT_SREC_ADDR(45, R_EPC, s_illegal_insn)
    /* ecall from S is not delegated (medeleg[9]=0): goes to M */
    EXPECT_REC(46, R_CAUSE, CAUSE_ECALL_S)
    EXPECT_SREC(47, R_COUNT, 1)

    /* ---------- 48-52: traps taken in M are never delegated ---------- */
    CLEAR_COUNTS
    M_EXPECT 1f
    csrw cycle, zero                 /* illegal (read-only CSR) */
1:  EXPECT_REC(48, R_CAUSE, CAUSE_ILLEGAL)
    EXPECT_SREC(49, R_COUNT, 0)
    M_EXPECT 1f
    ecall
1:  EXPECT_REC(50, R_CAUSE, CAUSE_ECALL_M)
    M_EXPECT 1f
    ebreak
1:  EXPECT_REC(51, R_CAUSE, CAUSE_BREAKPOINT)
    EXPECT_SREC(52, R_COUNT, 0)

    /* ---------- 53-56: non-delegated exception from U goes to M ---------- */
    li t0, (1 << 8)
    csrw medeleg, t0
    CLEAR_COUNTS
    RUN_IN PRV_U, u_csrr_mstatus
    EXPECT_REC(53, R_CAUSE, CAUSE_ILLEGAL)
    EXPECT_REC_BITS(54, R_STATUS, MSTATUS_MPP, 0)
    EXPECT_REC_ADDR(55, R_EPC, u_csrr_mstatus)
    EXPECT_SREC(56, R_COUNT, 0)
    csrw medeleg, zero

    /* ---------- 60-66: delegated SSI (set in mip by M), taken in S only with SIE ---------- */
    li t0, MIP_SSIP
    csrw mideleg, t0
    csrw mie, t0
    csrs mip, t0
    CLEAR_COUNTS
    RUN_IN PRV_S, s_int_wait
    EXPECT_SREC(60, R_CAUSE, INT_CAUSE(IRQ_S_SOFT))
    EXPECT_SREC_ADDR(61, R_EPC, s_int_after)
    EXPECT_SREC_BITS(62, R_STATUS, MSTATUS_SPP, MSTATUS_SPP)
    EXPECT_SREC_BITS(63, R_STATUS, MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPIE)
    EXPECT_REC(64, R_CAUSE, CAUSE_ECALL_S)
    EXPECT_BITS(65, a0, MIP_SSIP, 0)         /* S cleared it via sip */
    EXPECT_BITS(66, a2, MIP_SSIP, MIP_SSIP)  /* pending in sip before SIE=1 */

    /* ---------- 70-72: SSIP set by S through sip ---------- */
    RUN_IN PRV_S, s_sip_set
    EXPECT_BITS(70, a2, MIP_SSIP, MIP_SSIP)
    EXPECT_SREC(71, R_CAUSE, INT_CAUSE(IRQ_S_SOFT))
    EXPECT_SREC_ADDR(72, R_EPC, s_sip_after)
    csrr a0, mip
    EXPECT_BITS(73, a0, MIP_SSIP, 0)

    /* ---------- 74: delegated interrupt never taken in M ---------- */
    CLEAR_COUNTS
    li t0, MIP_SSIP
    csrs mip, t0
    csrsi mstatus, MSTATUS_MIE | MSTATUS_SIE
    nop
    nop
    nop
    nop
    csrci mstatus, MSTATUS_MIE | MSTATUS_SIE
    la t5, trap_rec
    ld a0, R_COUNT(t5)
    la t5, strap_rec
    ld a1, R_COUNT(t5)
    or a0, a0, a1
    EXPECT(74, a0, 0)

    /* ---------- 75-78: ... but taken in U even with SIE=0 ---------- */
    S_EXPECT s_clear_ssip
    RUN_IN PRV_U, u_spin
    EXPECT_SREC(75, R_CAUSE, INT_CAUSE(IRQ_S_SOFT))
    EXPECT_SREC_ADDR(76, R_EPC, u_spin)
    EXPECT_SREC_BITS(77, R_STATUS, MSTATUS_SPP, 0)
    EXPECT_REC(78, R_CAUSE, CAUSE_ECALL_S)

    /* ---------- 80-85: non-delegated SSI is an M interrupt ---------- */
    csrw mideleg, zero
    li t0, MIP_SSIP
    csrs mip, t0
    RUN_IN PRV_S, s_spin             /* taken in S although MIE=0 */
    EXPECT_REC(80, R_CAUSE, INT_CAUSE(IRQ_S_SOFT))
    EXPECT_REC_ADDR(81, R_EPC, s_spin)
    EXPECT_REC_BITS(82, R_STATUS, MSTATUS_MPP, MSTATUS_MPP_S)
    CLEAR_COUNTS
    nop                               /* in M with MIE=0: not taken */
    nop
    EXPECT_REC(83, R_COUNT, 0)
    M_EXPECT 1f
    csrsi mstatus, MSTATUS_MIE
m_int_after:
    nop
    nop
    li TESTNUM, 84
    j fail
1:  EXPECT_REC(84, R_CAUSE, INT_CAUSE(IRQ_S_SOFT))
    EXPECT_REC_ADDR(85, R_EPC, m_int_after)
    li t0, MIP_SSIP
    csrc mip, t0
    csrw mie, zero

    /* ---------- 86-90: delegated STI / SEI set by M in mip ---------- */
    li t0, MIP_STIP | MIP_SEIP
    csrw mideleg, t0
    li t0, MIP_STIP
    csrw mie, t0
    csrs mip, t0
    RUN_IN PRV_S, s_enable_sie
    EXPECT_SREC(86, R_CAUSE, INT_CAUSE(IRQ_S_TIMER))
    csrr a0, mip                      /* S could not clear it via sip */
    EXPECT_BITS(87, a0, MIP_STIP, MIP_STIP)
    li t0, MIP_STIP
    csrc mip, t0
    csrr a0, mip
    EXPECT_BITS(88, a0, MIP_STIP, 0)
    li t0, MIP_SEIP
    csrw mie, t0
    csrs mip, t0
    RUN_IN PRV_S, s_enable_sie
    EXPECT_SREC(89, R_CAUSE, INT_CAUSE(IRQ_S_EXT))
    li t0, MIP_SEIP
    csrc mip, t0
    csrr a0, mip
    EXPECT_BITS(90, a0, MIP_SEIP, 0)
    csrw mie, zero
    csrw mideleg, zero

    TEST_PASS

/* ---------------- code run in S / U ---------------- */
    .text
/* S: sret to U at a0 with SIE=1 there; the S trap resumes at s_back. */
s_to_u:
    S_EXPECT s_back
    li t0, MSTATUS_SPP
    csrc sstatus, t0
    li t0, MSTATUS_SPIE
    csrs sstatus, t0
    csrw sepc, a0
    sret
s_back:
    ecall

s_illegal:
    S_EXPECT s_back
s_illegal_insn:
    csrr a1, mstatus
    ecall

/* Delegated SSI is pending; not taken until SIE=1. */
s_int_wait:
    S_EXPECT s_int_back
    csrr a2, sip
    nop
    nop
    csrsi sstatus, MSTATUS_SIE
s_int_after:
    nop
    nop
    ecall
s_int_back:
    csrci sip, MIP_SSIP
    csrr a0, sip
    ecall

s_sip_set:
    S_EXPECT s_sip_back
    csrsi sip, MIP_SSIP
    csrr a2, sip
    csrsi sstatus, MSTATUS_SIE
s_sip_after:
    nop
    nop
    ecall
s_sip_back:
    csrci sip, MIP_SSIP
    ecall

s_clear_ssip:
    csrci sip, MIP_SSIP
    ecall

/* Enable SIE; the pending delegated interrupt resumes at s_try_clear. */
s_enable_sie:
    S_EXPECT s_try_clear
    csrsi sstatus, MSTATUS_SIE
    nop
    nop
    ecall
s_try_clear:
    li t0, MIP_STIP | MIP_SEIP
    csrc sip, t0
    ecall

s_spin:
    nop
    nop
    ecall

u_ecall:
    ecall
u_csrr_mstatus:
    csrr a1, mstatus
    ecall
u_ebreak:
    ebreak
    ecall
u_spin:
    nop
    nop
    ecall
