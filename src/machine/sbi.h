/* The built-in SBI v2.0 implementation (RISC-V SBI spec v2.0): the monitor
 * plays the M-mode firmware, and S-mode ecalls are hypercalls served here.
 * Extensions: Base, TIME, IPI, RFENCE, HSM, SRST, DBCN, and the legacy
 * console putchar/getchar.
 *
 * Threads: sbi_handle_ecall() runs on the calling hart's thread; the
 * platform callbacks must be safe to call from any hart thread. */
#ifndef NIMBUS_MACHINE_SBI_H
#define NIMBUS_MACHINE_SBI_H

#include <stddef.h>
#include <stdint.h>

#include "cpu/hart.h"

enum sbi_reset_type { SBI_RESET_SHUTDOWN = 0, SBI_RESET_COLD = 1, SBI_RESET_WARM = 2 };

struct sbi_platform {
    struct hart **harts;
    unsigned nharts;
    /* Returns how many bytes the console took (fewer when its output is
     * backed up; DBCN console_write reports that to the guest). */
    size_t (*console_write)(void *opaque, const uint8_t *buf, size_t n);
    /* Returns bytes read (0 if none pending). */
    size_t (*console_read)(void *opaque, uint8_t *buf, size_t n);
    /* reason: 0 = no reason, 1 = system failure (SBI spec 10.1). */
    void (*system_reset)(void *opaque, enum sbi_reset_type type, uint32_t reason);
    void *opaque;
};

/* Hart hook: serves the ecall in a7/a6/a0..a5, returns in a0/a1. Always
 * handled (unknown calls return SBI_ERR_NOT_SUPPORTED). */
bool sbi_handle_ecall(struct hart *hart, void *platform);

/* Prepares a hart as the firmware would before jumping to S-mode: PMP open,
 * counters and Sstc available to S-mode, interrupts and exceptions that
 * Linux handles delegated. */
void sbi_prepare_hart(struct hart *hart);

#endif
