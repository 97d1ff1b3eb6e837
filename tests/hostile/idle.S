/* Prints a marker and sleeps in WFI with nothing enabled: the quiet guest
 * the signal and terminal tests run. Any wake-up just sleeps again. */
#include "test.h"
#include "hostile.h"

TEST_BEGIN
    bnez a0, sleep          /* other harts just sleep */
    UART_PUTS msg_ready
sleep:
    csrw mie, zero
1:  wfi
    j 1b

    .data
msg_ready: .asciz "idle ready\r\n"
