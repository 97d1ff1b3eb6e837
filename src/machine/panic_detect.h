/* Guest panic detection on the console, for guests without a pvpanic
 * device: Debian's riscv64 kernel has no CONFIG_PVPANIC, so the monitor
 * looks for Linux's panic banner (kernel/panic.c prints "Kernel panic - not
 * syncing: MESSAGE" through every console) at the start of a line of the
 * guest's console output, after the optional printk prefixes ("[   12.345678] ",
 * CONFIG_PRINTK_TIME; "[    T1] ", CONFIG_PRINTK_CALLER). The message is
 * the rest of the line, without the ": " (up to the first 255 bytes, other
 * than printable ASCII turned into '?').
 *
 * A heuristic: any guest program that can write to the console can print
 * the banner. It only makes the monitor report a panic (and take the
 * --on-panic action) for that guest itself, which could as well power
 * itself off. A kernel with CONFIG_PVPANIC_MMIO would instead write
 * PVPANIC_PANICKED to a "qemu,pvpanic-mmio" device from its panic notifier,
 * before any console output: exact, and without the message.
 *
 * One detector per output stream (the UART, the virtio console, the SBI
 * console), so that streams written at once do not break each other's lines.
 * Not thread-safe: the caller serializes each detector. */
#ifndef NIMBUS_MACHINE_PANIC_DETECT_H
#define NIMBUS_MACHINE_PANIC_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/guest_event.h"

#define PANIC_BANNER "Kernel panic - not syncing"

struct panic_detect {
    unsigned state;
    unsigned count;            /* bytes of the banner matched, or of a prefix */
    bool after_prefix;
    size_t len;
    char line[GUEST_EVENT_MESSAGE_MAX];
};

/* A detector at the start of a line. */
void panic_detect_reset(struct panic_detect *p);

/* Feeds output bytes. True when a panic line ended in them (at its '\n'):
 * the first such line's message is copied to msg (msglen bytes with the
 * NUL). */
bool panic_detect_feed(struct panic_detect *p, const uint8_t *buf, size_t n, char *msg,
                       size_t msglen);

#endif
