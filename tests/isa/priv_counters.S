/* Counters: cycle/instret/time advance; mcycle/minstret are writable;
 * mcounteren/scounteren gate S and U access (illegal instruction when the
 * bit is clear). The positive `time` checks need the time CSR and are
 * skipped on QEMU's spike machine, which has none (PROBE_TIME, priv.h).
 * mcountinhibit is not tested. */
#include "test.h"
#include "priv.h"

/* Run `label` in `mode`; the first trap must have cause `cause`
 * (CAUSE_ILLEGAL, or the ecall cause of `mode` when access is allowed). */
.macro TRY n, mode, label, cause
    RUN_IN \mode, \label
    EXPECT_REC(\n, R_CAUSE, \cause)
.endm

TEST_BEGIN
    PRIV_SETUP
    csrw mcounteren, zero
    csrw scounteren, zero

    /* ---------- 1-6: M-mode counters advance; mcycle/minstret writable ---------- */
    rdinstret a0
    li t0, 100
1:  addi t0, t0, -1
    bnez t0, 1b
    rdinstret a1
    EXPECT_LTU(1, a0, a1)
    rdcycle a0
    li t0, 100
1:  addi t0, t0, -1
    bnez t0, 1b
    rdcycle a1
    EXPECT_LTU(2, a0, a1)
    li s1, 1 << 40
    csrw mcycle, s1
    rdcycle a0
    addi a0, a0, 1
    EXPECT_LTU(3, s1, a0)               /* cycle >= written value */
    li t0, 1 << 32
    add t0, t0, s1
    EXPECT_LTU(4, a0, t0)               /* ... and not far past it */
    csrw minstret, s1
    rdinstret a0
    addi a0, a0, 1
    EXPECT_LTU(5, s1, a0)
    li t0, 1 << 32
    add t0, t0, s1
    EXPECT_LTU(6, a0, t0)

    /* ---------- 7-9: time advances and agrees with CLINT mtime ---------- */
    PROBE_TIME 9
    mv s0, a0                           /* s0 = 1: time CSR implemented */
    beqz s0, 1f
    li t0, CLINT_MTIME
    ld a1, 0(t0)
    rdtime a2
    li t0, 1000
2:  addi t0, t0, -1
    bnez t0, 2b
    rdtime a3
    li t0, CLINT_MTIME
    ld a4, 0(t0)
    addi a4, a4, 1
    EXPECT_LTU(7, a2, a3)               /* time advances */
    addi a2, a2, 1
    EXPECT_LTU(8, a1, a2)               /* mtime1 <= time1 */
    EXPECT_LTU(10, a3, a4)              /* time2 <= mtime2 */
1:

    /* ---------- 11-14: S with mcounteren = 0: all illegal ---------- */
    TRY 11, PRV_S, rd_cycle, CAUSE_ILLEGAL
    TRY 12, PRV_S, rd_instret, CAUSE_ILLEGAL
    TRY 13, PRV_S, rd_time, CAUSE_ILLEGAL
    TRY 14, PRV_S, rd_hpm3, CAUSE_ILLEGAL

    /* ---------- 15-18: S with mcounteren = CY|TM|IR|HPM3 (scounteren = 0) ---------- */
    li t0, 0xf
    csrw mcounteren, t0
    TRY 15, PRV_S, rd_cycle, CAUSE_ECALL_S
    TRY 16, PRV_S, rd_instret, CAUSE_ECALL_S
    TRY 17, PRV_S, rd_hpm3, CAUSE_ECALL_S
    beqz s0, 1f
    TRY 18, PRV_S, rd_time, CAUSE_ECALL_S
1:
    /* values seen in S advance */
    RUN_IN PRV_S, rd_cycle_twice
    EXPECT_LTU(19, a0, a1)
    RUN_IN PRV_S, rd_instret_twice
    EXPECT_LTU(20, a0, a1)
    /* counters stay read-only */
    TRY 21, PRV_S, wr_instret, CAUSE_ILLEGAL

    /* ---------- 22-27: one bit at a time ---------- */
    li t0, 1                            /* CY */
    csrw mcounteren, t0
    TRY 22, PRV_S, rd_cycle, CAUSE_ECALL_S
    TRY 23, PRV_S, rd_instret, CAUSE_ILLEGAL
    TRY 24, PRV_S, rd_time, CAUSE_ILLEGAL
    li t0, 4                            /* IR */
    csrw mcounteren, t0
    TRY 25, PRV_S, rd_instret, CAUSE_ECALL_S
    TRY 26, PRV_S, rd_cycle, CAUSE_ILLEGAL
    li t0, 2                            /* TM */
    csrw mcounteren, t0
    TRY 27, PRV_S, rd_cycle, CAUSE_ILLEGAL
    beqz s0, 1f
    TRY 28, PRV_S, rd_time, CAUSE_ECALL_S
1:

    /* ---------- 30-41: U needs both mcounteren and scounteren ---------- */
    li t0, 7
    csrw mcounteren, t0
    csrw scounteren, zero
    TRY 30, PRV_U, rd_cycle, CAUSE_ILLEGAL
    TRY 31, PRV_U, rd_instret, CAUSE_ILLEGAL
    TRY 32, PRV_U, rd_time, CAUSE_ILLEGAL
    li t0, 7
    csrw scounteren, t0
    TRY 33, PRV_U, rd_cycle, CAUSE_ECALL_U
    TRY 34, PRV_U, rd_instret, CAUSE_ECALL_U
    beqz s0, 1f
    TRY 35, PRV_U, rd_time, CAUSE_ECALL_U
1:  csrw mcounteren, zero
    TRY 36, PRV_U, rd_cycle, CAUSE_ILLEGAL
    TRY 37, PRV_U, rd_instret, CAUSE_ILLEGAL
    li t0, 1
    csrw mcounteren, t0
    csrw scounteren, t0
    TRY 38, PRV_U, rd_cycle, CAUSE_ECALL_U
    TRY 39, PRV_U, rd_instret, CAUSE_ILLEGAL
    RUN_IN PRV_U, rd_cycle_twice
    EXPECT_LTU(40, a0, a1)
    EXPECT_REC(41, R_CAUSE, CAUSE_ECALL_U)

    /* ---------- 42: mhpmcounter3 exists in M (may read 0) ---------- */
    M_EXPECT 1f
    csrr a0, mhpmcounter3
1:  EXPECT_REC(42, R_CAUSE, 0xbad)          /* no trap */
    M_EXPECT_CANCEL
    csrw mcounteren, zero
    csrw scounteren, zero

    TEST_PASS

/* ---------------- code run in S / U (no paging) ---------------- */
    .text
rd_cycle:
    rdcycle a0
    ecall
rd_instret:
    rdinstret a0
    ecall
rd_time:
    rdtime a0
    ecall
rd_hpm3:
    csrr a0, hpmcounter3
    ecall
wr_instret:
    csrw instret, zero
    ecall
rd_cycle_twice:
    rdcycle a0
    li t0, 100
1:  addi t0, t0, -1
    bnez t0, 1b
    rdcycle a1
    ecall
rd_instret_twice:
    rdinstret a0
    li t0, 100
1:  addi t0, t0, -1
    bnez t0, 1b
    rdinstret a1
    ecall
