/* Console flood: 512 KiB of a known pattern on the UART, written as a
 * polling driver does (wait for LSR.THRE before each byte), then power off
 * (exit status 0). Byte i is '\n' when i % 64 == 63, else 'a' + i % 26.
 * With a slow reader, every byte must arrive, in order; with a reader that
 * does not read at all, the monitor must still end on SIGTERM / Ctrl-A x.
 *
 * Built with SPEW_NOWAIT (spew_nowait.S), it writes THR without looking at
 * LSR, as a careless driver would: what the host cannot take is dropped,
 * and the program powers off at once with output still buffered. */
#include "test.h"
#include "hostile.h"

#define SPEW_BYTES (512 * 1024)

TEST_BEGIN
    bnez a0, 9f
    li s0, 0
    li s1, SPEW_BYTES
    li s2, 26
    li s3, 'a'
1:  andi t2, s0, 63
    li t3, '\n'
    li t4, 63
    beq t2, t4, 2f
    remu t3, s0, s2
    add t3, t3, s3
2:
#ifdef SPEW_NOWAIT
    li t0, UART_BASE
    sb t3, UART_THR(t0)
#else
    UART_PUTC t3
#endif
    addi s0, s0, 1
    bne s0, s1, 1b
    /* Power off through the finisher (the UART has sent every byte). */
    li t0, FINISHER_BASE
    li t1, FINISHER_PASS
    sw t1, 0(t0)
9:  wfi
    j 9b
