/* mip read-modify-write (privileged spec 3.1.9): CSRRS/CSRRC on mip modify
 * the software-written SEIP bit only. Reading mip ORs in the PLIC's line, so
 * a firmware `csrs mip, SSIP` (OpenSBI does this to forward an IPI) while an
 * external interrupt was pending used to latch SEIP in the software bit for
 * good: the kernel then saw a supervisor external interrupt that never went
 * away (an SMP guest under OpenSBI hung with a "hard LOCKUP"). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/hart.h"
#include "cpu/timebase.h"
#include "mem/guest_mem.h"

#define RAM_BASE 0x80000000ull

int main(void)
{
    static const uint32_t code[] = {
        0x34416073, /* csrrsi x0, mip, 2   (set SSIP) */
        0x10500073, /* wfi */
        0x34402573, /* csrr a0, mip */
        0x10500073, /* wfi */
        0x34417073, /* csrrci x0, mip, 2   (clear SSIP) */
        0x10500073, /* wfi */
        0x34402573, /* csrr a0, mip */
        0x10500073, /* wfi */
    };
    struct guest_mem mem;
    struct timebase tb;
    struct hart *h = NULL;
    timebase_init(&tb);
    if (guest_mem_init(&mem, RAM_BASE, 16ull << 20) || posix_memalign((void **)&h, 4096, sizeof(*h)) ||
        hart_init(h, 0, &mem, &tb, RAM_BASE)) {
        printf("cannot set up a hart\n");
        return 1;
    }
    CHECK_EQ(guest_mem_write(&mem, RAM_BASE, code, sizeof(code)), 0);
    atomic_store(&h->arch.state, HART_STARTED);

    hart_set_irq(h, MIP_SEIP, true);     /* the PLIC asserts SEIP ... */
    CHECK_EQ(hart_run(h, 1000), HART_EXIT_WFI);
    hart_set_irq(h, MIP_SEIP, false);    /* ... and drops it again */
    CHECK_EQ(hart_run(h, 1000), HART_EXIT_WFI);
    CHECK_EQ(h->arch.x[10] & (MIP_SEIP | MIP_SSIP), MIP_SSIP);

    hart_set_irq(h, MIP_SEIP, true);     /* the same for csrrc */
    CHECK_EQ(hart_run(h, 1000), HART_EXIT_WFI);
    hart_set_irq(h, MIP_SEIP, false);
    CHECK_EQ(hart_run(h, 1000), HART_EXIT_WFI);
    CHECK_EQ(h->arch.x[10] & (MIP_SEIP | MIP_SSIP), 0);

    hart_destroy(h);
    free(h);
    guest_mem_destroy(&mem);
    return check_summary("csr_mip");
}
