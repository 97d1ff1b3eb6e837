/* Helpers for the hostile-guest programs (tests/hostile/*.S).
 *
 * These programs attack the monitor rather than check the ISA: they sweep
 * device windows, program extreme timer values, storm interrupts and traps,
 * reset in a loop, make random SBI calls. tests/hostile/hostile.py runs them
 * and checks that nimbus survives, stays cheap while the guest sleeps and
 * still ends promptly on SIGTERM or Ctrl-A x.
 *
 * M-mode programs include tests/isa/test.h (HTIF pass/fail, `fail`, `pass`)
 * and this file. Markers are printed on the UART with UART_PUTS so that the
 * driver can tell how far a program got. */
#ifndef NIMBUS_HOSTILE_H
#define NIMBUS_HOSTILE_H

#define UART_BASE      0x10000000
#define UART_THR       0
#define UART_IER       1
#define UART_FCR       2
#define UART_LCR       3
#define UART_MCR       4
#define UART_LSR       5
#define LSR_THRE       0x20

#define FINISHER_BASE  0x00100000
#define FINISHER_PASS  0x5555
#define FINISHER_RESET 0x7777

#define CLINT_BASE     0x02000000
#define CLINT_MSIP     (CLINT_BASE + 0x0)
#define CLINT_MTIMECMP (CLINT_BASE + 0x4000)
#define CLINT_MTIME    (CLINT_BASE + 0xbff8)

#define CSR_MENVCFG    0x30a
#define CSR_STIMECMP   0x14d

#define MIP_SSIP (1 << 1)
#define MIP_MSIP (1 << 3)
#define MIP_STIP (1 << 5)
#define MIP_MTIP (1 << 7)
#define MSTATUS_MIE (1 << 3)

/* Puts the UART back into a sane state (8N1, no FIFO, no interrupts, no
 * loopback) after a program may have scribbled over its registers.
 * Clobbers t0. */
.macro UART_SANE
    li t0, UART_BASE
    sb zero, UART_LCR(t0)
    sb zero, UART_IER(t0)
    sb zero, UART_MCR(t0)
    sb zero, UART_FCR(t0)
    li t1, 3
    sb t1, UART_LCR(t0)
.endm

/* Writes the byte in register `reg` to the UART, waiting for THRE as a real
 * driver does. Clobbers t0, t1. */
.macro UART_PUTC reg
    li t0, UART_BASE
.Lputc_wait\@:
    lbu t1, UART_LSR(t0)
    andi t1, t1, LSR_THRE
    beqz t1, .Lputc_wait\@
    sb \reg, UART_THR(t0)
.endm

/* Writes the NUL-terminated string at symbol `sym`. Clobbers t0-t3. */
.macro UART_PUTS sym
    la t2, \sym
.Lputs_loop\@:
    lbu t3, 0(t2)
    beqz t3, .Lputs_done\@
    UART_PUTC t3
    addi t2, t2, 1
    j .Lputs_loop\@
.Lputs_done\@:
.endm

#endif
