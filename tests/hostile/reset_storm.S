/* Reset storm: the machine reboots in a loop from its first instructions
 * on, forever. Hart 0 writes one "R" on the UART (so that the driver knows
 * the guest runs: a signal sent before that would find the monitor still
 * loading, where SIGTERM's default action applies) and writes the
 * finisher's reset value; the other harts write it after a short spin, so
 * that the "R" usually gets out first.
 *
 * nimbus-args: --smp 2 */
#include "test.h"
#include "hostile.h"

TEST_BEGIN
    li t0, FINISHER_BASE
    li t1, FINISHER_RESET
    beqz a0, 2f
    li t2, 2000
1:  addi t2, t2, -1
    bnez t2, 1b
    j 3f
2:  li t2, UART_BASE
    li t3, 'R'
    sb t3, UART_THR(t2)
3:  sw t1, 0(t0)
    j 3b
