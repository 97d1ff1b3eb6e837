/* Reset storm: every hart writes the finisher's reset value at once, so the
 * machine reboots in a loop from the first instruction on, forever.
 *
 * nimbus-args: --smp 2 */
#include "test.h"
#include "hostile.h"

TEST_BEGIN
    li t0, FINISHER_BASE
    li t1, FINISHER_RESET
1:  sw t1, 0(t0)
    j 1b
