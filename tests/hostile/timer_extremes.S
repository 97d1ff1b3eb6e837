/* Timer extremes: mtimecmp (ACLINT) and stimecmp (Sstc) at 0, 1,
 * INT64_MAX/100 - 1 (the largest value whose deadline in ns still fits in
 * 63 bits at 10 MHz), INT64_MAX and UINT64_MAX, each followed by WFI with
 * both timer interrupts enabled (mstatus.MIE = 0: WFI wakes, nothing traps).
 *
 * For each value of one comparator the other is set 200 ms ahead, so the
 * WFI must wake at once for 0 and 1 (the extreme comparator fires), and after
 * ~200 ms from the other comparator for the large values: the monitor has to
 * sleep meanwhile, not spin on a deadline that overflowed. The driver
 * measures the host CPU time used between "timer idle begin" and "timer idle
 * end" (six 200 ms sleeps), then, after "timer sleep", with both comparators
 * at UINT64_MAX and WFI forever, and ends the run with SIGTERM.
 * A wrong wake-up source fails the program (HTIF). */
#include "test.h"
#include "hostile.h"

#define DELAY 2000000       /* 200 ms at 10 MHz */

TEST_BEGIN
    bnez a0, park
    csrw mie, zero
    csrci mstatus, MSTATUS_MIE
    li t0, 1
    slli t0, t0, 63
    csrs CSR_MENVCFG, t0    /* Sstc on */
    li t0, -1
    csrw CSR_STIMECMP, t0
    li t1, CLINT_MTIMECMP
    sd t0, 0(t1)
    li t0, MIP_MTIP | MIP_STIP
    csrw mie, t0
    UART_PUTS msg_begin

    la s1, values
    li s3, 100              /* check numbers: 100 + 2 * index (+1: stimecmp) */
1:  ld s2, 0(s1)
    /* mtimecmp = value, stimecmp = now + 200 ms */
    rdtime t0
    li t1, DELAY
    add t0, t0, t1
    csrw CSR_STIMECMP, t0
    li t1, CLINT_MTIMECMP
    sd s2, 0(t1)
    call wait_wake
    li a1, MIP_MTIP         /* expected source */
    ld t0, 8(s1)
    bnez t0, 2f
    li a1, MIP_STIP
2:  mv TESTNUM, s3
    bne a0, a1, fail
    call quiet
    /* stimecmp = value, mtimecmp = now + 200 ms */
    rdtime t0
    li t1, DELAY
    add t0, t0, t1
    li t1, CLINT_MTIMECMP
    sd t0, 0(t1)
    csrw CSR_STIMECMP, s2
    call wait_wake
    li a1, MIP_STIP
    ld t0, 8(s1)
    bnez t0, 2f
    li a1, MIP_MTIP
2:  addi TESTNUM, s3, 1
    bne a0, a1, fail
    call quiet
    addi s3, s3, 2
    addi s1, s1, 16
    ld t0, 0(s1)
    li t1, 0x5a5a
    bne t0, t1, 1b          /* table ends with a sentinel */
    UART_PUTS msg_end
    /* Both comparators at UINT64_MAX, timers enabled, sleep forever. */
    call quiet
    UART_PUTS msg_sleep
4:  wfi
    j 4b

/* WFI until a timer interrupt is pending; a0 = the pending timer bits
 * (only one of them: both pending means a wrong wake). */
wait_wake:
1:  wfi
    csrr a0, mip
    andi a0, a0, MIP_MTIP | MIP_STIP
    beqz a0, 1b
    ret

/* Both comparators to UINT64_MAX: no timer pending. Clobbers t0, t1. */
quiet:
    li t0, -1
    csrw CSR_STIMECMP, t0
    li t1, CLINT_MTIMECMP
    sd t0, 0(t1)
    ret

park:
    csrw mie, zero
1:  wfi
    j 1b

    .data
    .align 3
/* value, fires at once (1) or never (0) */
values:
    .dword 0, 1
    .dword 1, 1
    .dword 0x0147ae147ae147ad, 0     /* INT64_MAX / 100 - 1 */
    .dword 0x7fffffffffffffff, 0
    .dword 0xffffffffffffffff, 0
    .dword 0x5a5a, 0                 /* sentinel */

msg_begin: .asciz "timer idle begin\r\n"
msg_end:   .asciz "timer idle end\r\n"
msg_sleep: .asciz "timer sleep\r\n"
