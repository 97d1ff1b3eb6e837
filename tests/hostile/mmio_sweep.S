/* MMIO sweep: loads (every width, signed and unsigned), stores (every
 * width, with 0 and all-ones), AMOs, LR/SC and instruction fetches at every
 * byte alignment over every device window of the virt board, their edges,
 * samples of the gaps between them, the end of RAM and the top of the
 * physical address space (where an 8-byte access wraps around).
 *
 * The M-mode trap handler skips a faulting access (mepc += 4; a faulting
 * fetch returns to ra) and counts it. The program passes (HTIF) when it got
 * through both passes, the gaps faulted, and afterwards plain device
 * accesses still work without faulting.
 *
 * nimbus-args: --mem 64M */
#include "test.h"
#include "hostile.h"

#define COUNT s10   /* faults taken */

TEST_BEGIN
    la t0, skip_trap
    csrw mtvec, t0
    csrw mie, zero
    li COUNT, 0

    li s2, 0                /* pass 1: stores write 0 */
    call sweep_all
    li s2, -1               /* pass 2: stores write all-ones */
    call sweep_all

    UART_SANE
    /* The gaps must have faulted: at least one fault per gap sample. */
    li TESTNUM, 1
    li t0, 4000
    bltu COUNT, t0, fail
    /* Device registers still answer, without faults. */
    li COUNT, 0
    li t0, UART_BASE
    lbu t1, UART_LSR(t0)
    li t0, CLINT_MTIME
    ld t1, 0(t0)
    li t0, CLINT_MSIP
    sw zero, 0(t0)
    li TESTNUM, 2
    bnez COUNT, fail
    /* And an unmapped address still faults. */
    li t0, 0x40000000
    lw t1, 0(t0)
    li TESTNUM, 3
    li t0, 1
    bne COUNT, t0, fail
    UART_PUTS msg_done
    TEST_PASS

/* Sweeps every range in the table. Clobbers s3-s7, a0, t*. */
sweep_all:
    mv s7, ra
    la s3, ranges
1:  ld s4, 0(s3)            /* start */
    ld s5, 8(s3)            /* count */
    ld s6, 16(s3)           /* step */
    beqz s5, 3f
2:  mv a0, s4
    call probe8
    add s4, s4, s6
    addi s5, s5, -1
    bnez s5, 2b
    addi s3, s3, 24
    j 1b
3:  mv ra, s7
    ret

/* Every access kind at a0 + 0..7. Clobbers a0, a1, t4, t5. */
probe8:
    mv t5, ra
    li a1, 8
    .option push
    .option norvc
1:  lb t4, 0(a0)
    lbu t4, 0(a0)
    lh t4, 0(a0)
    lhu t4, 0(a0)
    lw t4, 0(a0)
    lwu t4, 0(a0)
    ld t4, 0(a0)
    sb s2, 0(a0)
    sh s2, 0(a0)
    sw s2, 0(a0)
    sd s2, 0(a0)
    amoswap.w t4, s2, (a0)
    amoadd.d t4, s2, (a0)
    lr.w t4, (a0)
    sc.w t4, s2, (a0)
    andi t4, a1, 7
    bnez t4, 2f             /* fetch once per 8 bytes: at the aligned address */
    srli t4, a0, 26
    addi t4, t4, -(0x80000000 >> 26)
    li t6, 0x4000000 >> 26
    bltu t4, t6, 2f         /* not in RAM (0x8000_0000 + 64 MiB): it would run */
    jalr ra, 0(a0)
2:  addi a0, a0, 1
    addi a1, a1, -1
    bnez a1, 1b
    .option pop
    mv ra, t5
    ret

/* Skips faulting data accesses, returns from faulting fetches. */
    .align 6
skip_trap:
    csrr t6, mcause
    addi COUNT, COUNT, 1
    li t4, 2
    bltu t6, t4, 1f         /* 0, 1: misaligned / access-faulting fetch */
    li t4, 4
    bltu t6, t4, unexpected_trap
    li t4, 8
    bgeu t6, t4, unexpected_trap
    csrr t6, mepc           /* 4..7: load/store/AMO fault */
    addi t6, t6, 4
    csrw mepc, t6
    mret
1:  csrw mepc, ra
    mret

    .data
    .align 3
/* start, count, step: accesses at start + k * step + 0..7. */
ranges:
    .dword 0x00000000, 64, 0x3ff8            /* gap below the finisher */
    .dword 0x000fffc0, 0x2080 / 8, 8         /* finisher + RTC, dense, edges */
    .dword 0x00102040, 63, 0x7f000           /* gap up to the ACLINT */
    .dword 0x01ffffc0, 40, 8                 /* ACLINT start: msip */
    .dword 0x02004000, 40, 8                 /* mtimecmp */
    .dword 0x0200bf00, 40, 8                 /* mtime, end edge */
    .dword 0x02000000, 0x10000 / 0x88, 0x88  /* the whole ACLINT, strided */
    .dword 0x02010040, 64, 0x27fff8          /* gap up to the PLIC */
    .dword 0x0bffffc0, 40, 8                 /* PLIC priorities */
    .dword 0x0c001000, 32, 8                 /* pending */
    .dword 0x0c002000, 32, 8                 /* enables */
    .dword 0x0c200000, 32, 8                 /* context 0 threshold/claim */
    .dword 0x0c201000, 32, 8                 /* context 1 */
    .dword 0x0c5fff00, 40, 8                 /* end edge */
    .dword 0x0c000000, 0x600000 / 0x1008, 0x1008  /* the whole PLIC, strided */
    .dword 0x0c600040, 66, 0xdfff8           /* gap up to the UART */
    .dword 0x0fffffc0, 0x180 / 8, 8          /* UART, edges */
    .dword 0x10000100, 0x9000 / 0x48, 0x48   /* virtio-mmio slots, strided */
    .dword 0x10008fc0, 16, 8                 /* end of the virtio slots */
    .dword 0x10009040, 64, 0x1bffff8         /* gap up to RAM */
    .dword 0x83ffffc0, 16, 8                 /* end of RAM (--mem 64M) */
    .dword 0x84000040, 64, 0x1fffff8         /* above RAM */
    .dword 0x100000000, 16, 0x10000000000    /* far above */
    .dword 0x00ffffffffffffc0, 16, 8         /* top of a 56-bit space */
    .dword 0xffffffffffffffc0, 8, 8          /* top of the 64-bit space: wraps */
    .dword 0, 0, 0

msg_done: .asciz "mmio sweep done\r\n"
