/* Privilege modes: mret/sret state transitions, ecall causes, and which
 * instructions/CSRs are illegal in lower modes (incl. mstatus TSR/TVM/TW).
 * No paging, no delegation: every trap goes to M (priv.h's trap_m). */
#include "test.h"
#include "priv.h"

/* Run `label` in `mode`; expect an illegal-instruction trap at `label`
 * (checks n: cause, n+1: mepc, n+2: mtval = instruction bits). */
.macro ILLEGAL_IN n, mode, label
    RUN_IN \mode, \label
    EXPECT_REC(\n, R_CAUSE, CAUSE_ILLEGAL)
    EXPECT_REC_ADDR(\n+1, R_EPC, \label)
    EXPECT_TVAL_INSN(\n+2)
.endm

/* Run `label` in S; expect it to reach its ecall without trapping. */
.macro LEGAL_IN_S n, label
    RUN_IN PRV_S, \label
    EXPECT_REC(\n, R_CAUSE, CAUSE_ECALL_S)
.endm

TEST_BEGIN
    PRIV_SETUP

    /* ---- 1-4: mret to M: MIE <- MPIE, MPIE <- 1, MPP <- U ---- */
    li t0, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP
    csrc mstatus, t0
    li t0, MSTATUS_MPIE | MSTATUS_MPP
    csrs mstatus, t0
    la t0, 1f
    csrw mepc, t0
    mret
1:  csrr a0, mstatus
    EXPECT_BITS(1, a0, MSTATUS_MIE, MSTATUS_MIE)
    EXPECT_BITS(2, a0, MSTATUS_MPIE, MSTATUS_MPIE)
    EXPECT_BITS(3, a0, MSTATUS_MPP, 0)
    li t0, MSTATUS_MPIE
    csrc mstatus, t0
    SET_MPP PRV_M
    la t0, 1f
    csrw mepc, t0
    mret
1:  csrr a0, mstatus
    EXPECT_BITS(4, a0, MSTATUS_MIE | MSTATUS_MPIE, MSTATUS_MPIE)
    csrci mstatus, MSTATUS_MIE

    /* ---- 5-10: mret to S, ecall from S ---- */
    li t0, MSTATUS_MPIE
    csrs mstatus, t0
    RUN_IN PRV_S, s_ecall
    EXPECT_REC(5, R_CAUSE, CAUSE_ECALL_S)
    EXPECT_REC_ADDR(6, R_EPC, s_ecall)
    EXPECT_REC_BITS(7, R_STATUS, MSTATUS_MPP, MSTATUS_MPP_S)
    /* mret set MIE=MPIE=1 in S; the trap moved it to MPIE and cleared MIE */
    EXPECT_REC_BITS(8, R_STATUS, MSTATUS_MPIE | MSTATUS_MIE, MSTATUS_MPIE)
    li t0, MSTATUS_MPIE
    csrc mstatus, t0
    RUN_IN PRV_S, s_ecall
    EXPECT_REC_BITS(9, R_STATUS, MSTATUS_MPIE | MSTATUS_MIE, 0)
    EXPECT_REC(10, R_TVAL, 0)            /* ecall: mtval = 0 */

    /* ---- 11-13: mret to U, ecall from U ---- */
    RUN_IN PRV_U, u_ecall
    EXPECT_REC(11, R_CAUSE, CAUSE_ECALL_U)
    EXPECT_REC_ADDR(12, R_EPC, u_ecall)
    EXPECT_REC_BITS(13, R_STATUS, MSTATUS_MPP, 0)

    /* ---- 14-16: ecall from M ---- */
    M_EXPECT 1f
m_ecall:
    ecall
1:  EXPECT_REC(14, R_CAUSE, CAUSE_ECALL_M)
    EXPECT_REC_ADDR(15, R_EPC, m_ecall)
    EXPECT_REC_BITS(16, R_STATUS, MSTATUS_MPP, MSTATUS_MPP)

    /* ---- 17-22: sret from S to U: SIE <- SPIE, SPIE <- 1, SPP <- U ---- */
    RUN_IN PRV_S, s_sret_to_u
    EXPECT_REC(17, R_CAUSE, CAUSE_ECALL_U)
    EXPECT_REC_ADDR(18, R_EPC, u_ecall2)
    EXPECT_REC_BITS(19, R_STATUS, MSTATUS_SIE, MSTATUS_SIE)
    EXPECT_REC_BITS(20, R_STATUS, MSTATUS_SPIE, MSTATUS_SPIE)
    EXPECT_REC_BITS(21, R_STATUS, MSTATUS_SPP, 0)
    EXPECT_REC_BITS(22, R_STATUS, MSTATUS_MPP, 0)

    /* ---- 23-27: sret from S to S (SPP=1, SPIE=0) ---- */
    RUN_IN PRV_S, s_sret_to_s
    EXPECT_REC(23, R_CAUSE, CAUSE_ECALL_S)
    EXPECT_REC_ADDR(24, R_EPC, s_ecall2)
    EXPECT_REC_BITS(25, R_STATUS, MSTATUS_SIE, 0)
    EXPECT_REC_BITS(26, R_STATUS, MSTATUS_SPIE, MSTATUS_SPIE)
    EXPECT_REC_BITS(27, R_STATUS, MSTATUS_SPP, 0)
    csrci sstatus, MSTATUS_SIE

    /* ---- 30-56: illegal in lower modes (cause 2, mepc, mtval = bits) ---- */
    ILLEGAL_IN 30, PRV_S, s_csrr_mstatus
    ILLEGAL_IN 33, PRV_S, s_csrr_mhartid
    ILLEGAL_IN 36, PRV_S, s_mret
    ILLEGAL_IN 39, PRV_U, u_csrr_sstatus
    ILLEGAL_IN 42, PRV_U, u_csrr_mstatus
    ILLEGAL_IN 45, PRV_U, u_sret
    ILLEGAL_IN 48, PRV_U, u_mret
    ILLEGAL_IN 51, PRV_U, u_sfence
    /* WFI in U is illegal whenever S-mode exists (TW=0 here, and no
     * interrupt is enabled in mie, so it could never complete). */
    ILLEGAL_IN 54, PRV_U, u_wfi

    /* ---- 57-59: TSR=1: sret in S is illegal ---- */
    li t0, MSTATUS_TSR
    csrs mstatus, t0
    ILLEGAL_IN 57, PRV_S, s_sret_plain
    li t0, MSTATUS_TSR
    csrc mstatus, t0

    /* ---- 60-68: TVM=1: satp and sfence.vma illegal in S; fine in M ---- */
    li t0, MSTATUS_TVM
    csrs mstatus, t0
    ILLEGAL_IN 60, PRV_S, s_csrr_satp
    ILLEGAL_IN 63, PRV_S, s_csrw_satp
    ILLEGAL_IN 66, PRV_S, s_sfence
    csrr a0, satp            /* M is not affected (would be an unexpected trap) */
    sfence.vma
    li t0, MSTATUS_TVM
    csrc mstatus, t0

    /* ---- 69-71: TW=1: wfi in S is illegal (nothing can wake it) ---- */
    li t0, MSTATUS_TW
    csrs mstatus, t0
    ILLEGAL_IN 69, PRV_S, s_wfi
    li t0, MSTATUS_TW
    csrc mstatus, t0

    /* ---- 72-75: the same things are legal in S without TVM/TSR/TW ---- */
    LEGAL_IN_S 72, s_csrr_satp
    LEGAL_IN_S 73, s_sfence
    /* TSR=0: sret in S to S works (ends in s_ecall) */
    RUN_IN PRV_S, s_sret_plain_ok
    EXPECT_REC(74, R_CAUSE, CAUSE_ECALL_S)
    /* TW=0: wfi in S completes when an interrupt is pending and enabled in
     * sie/mie, even though it is not taken (delegated SSI, SIE=0). */
    li t0, MIP_SSIP
    csrw mideleg, t0
    csrw mie, t0
    csrs mip, t0
    csrci sstatus, MSTATUS_SIE
    LEGAL_IN_S 75, s_wfi
    li t0, MIP_SSIP
    csrc mip, t0
    csrw mie, zero
    csrw mideleg, zero

    /* ---- 76-78: writing a read-only CSR is illegal even in M ---- */
    M_EXPECT 1f
m_csrw_cycle:
    csrw cycle, zero
1:  EXPECT_REC(76, R_CAUSE, CAUSE_ILLEGAL)
    EXPECT_REC_ADDR(77, R_EPC, m_csrw_cycle)
    EXPECT_TVAL_INSN(78)

    /* ---- 79-81: ebreak (M and U): cause 3, mepc; mtval = 0 or pc ---- */
    M_EXPECT 1f
m_ebreak:
    ebreak
1:  EXPECT_REC(79, R_CAUSE, CAUSE_BREAKPOINT)
    EXPECT_REC_ADDR(80, R_EPC, m_ebreak)
    RUN_IN PRV_U, u_ebreak
    EXPECT_REC(81, R_CAUSE, CAUSE_BREAKPOINT)
    EXPECT_REC_BITS(82, R_STATUS, MSTATUS_MPP, 0)
    la t5, trap_rec
    ld a0, R_TVAL(t5)
    bnez a0, 1f              /* mtval may be 0 (QEMU 7.2) or the pc */
    la a0, u_ebreak
1:  EXPECT_ADDR(83, a0, u_ebreak)

    TEST_PASS

/* ---------------- code run in S / U ---------------- */
    .text
s_ecall:
    ecall
u_ecall:
    ecall
u_ecall2:
    ecall
s_ecall2:
    ecall

s_sret_to_u:
    li t0, MSTATUS_SPP
    csrc sstatus, t0
    li t0, MSTATUS_SPIE
    csrs sstatus, t0
    csrci sstatus, MSTATUS_SIE
    la t0, u_ecall2
    csrw sepc, t0
    sret

s_sret_to_s:
    li t0, MSTATUS_SPP
    csrs sstatus, t0
    li t0, MSTATUS_SPIE
    csrc sstatus, t0
    csrsi sstatus, MSTATUS_SIE
    la t0, s_ecall2
    csrw sepc, t0
    sret

s_sret_plain_ok:
    li t0, MSTATUS_SPP
    csrs sstatus, t0
    la t0, s_ecall
    csrw sepc, t0
s_sret_plain:
    sret
    ecall

s_csrr_mstatus:
    csrr a0, mstatus
    ecall
s_csrr_mhartid:
    csrr a0, mhartid
    ecall
s_mret:
    mret
    ecall
s_csrr_satp:
    csrr a0, satp
    ecall
s_csrw_satp:
    csrw satp, zero
    ecall
s_sfence:
    sfence.vma
    ecall
s_wfi:
    wfi
    ecall

u_csrr_sstatus:
    csrr a0, sstatus
    ecall
u_csrr_mstatus:
    csrr a0, mstatus
    ecall
u_sret:
    sret
    ecall
u_mret:
    mret
    ecall
u_sfence:
    sfence.vma
    ecall
u_wfi:
    wfi
    ecall
u_ebreak:
    ebreak
    ecall
