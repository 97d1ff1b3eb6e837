/* Goldfish RTC, as on QEMU's `virt` board (0x0010_1000, IRQ 11), the register
 * set of Linux's drivers/rtc/rtc-goldfish.c:
 *   0x00 TIME_LOW   read: ns since the epoch, low half (latches TIME_HIGH)
 *   0x04 TIME_HIGH  read: the latched high half
 *                   writes to either half set that half of the time (the
 *                   device keeps an offset from host CLOCK_REALTIME)
 *   0x08 ALARM_LOW  write arms the alarm at ALARM_HIGH:ALARM_LOW (an alarm in
 *                   the past fires at once)
 *   0x0c ALARM_HIGH
 *   0x10 IRQ_ENABLED      bit 0
 *   0x14 CLEAR_ALARM      write: disarm
 *   0x18 ALARM_STATUS     read: 1 while armed
 *   0x1c CLEAR_INTERRUPT  write: drop the interrupt
 * The line is high while an alarm fired (not yet cleared) and IRQ_ENABLED.
 * Only aligned 32-bit accesses are valid (others fault, as in QEMU).
 *
 * There is no timer thread: the machine's I/O thread asks
 * goldfish_rtc_next_deadline_ns() when to call goldfish_rtc_poll(), and the
 * optional `deadline_changed` callback tells it when to ask again.
 *
 * Threads: MMIO ops on hart threads, poll/deadline on the I/O thread; state
 * under one mutex. The irq line and deadline_changed are called with the rtc
 * lock held. Lock order: rtc lock -> PLIC lock; deadline_changed must not call
 * back into the rtc (kick an eventfd). */
#ifndef NIMBUS_DEV_GOLDFISH_RTC_H
#define NIMBUS_DEV_GOLDFISH_RTC_H

#include <stddef.h>
#include <stdint.h>

#include "dev/device.h"
#include "mem/guest_mem.h"

#define GOLDFISH_RTC_VIRT_BASE 0x00101000ull
#define GOLDFISH_RTC_SIZE      0x1000ull
#define GOLDFISH_RTC_VIRT_IRQ  11u

struct goldfish_rtc;

struct goldfish_rtc_host {
    /* Optional: the value goldfish_rtc_next_deadline_ns() returns may have
     * changed (alarm armed, disarmed, fired, or time set while armed). */
    void (*deadline_changed)(void *opaque);
    void *opaque;
};

/* Creates the RTC (time = host CLOCK_REALTIME, offset 0) and, when `mem` is
 * not NULL, registers [base, base + GOLDFISH_RTC_SIZE). `host` may be NULL.
 * Returns 0 or -errno. Thread: machine setup. */
int goldfish_rtc_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                        const struct goldfish_rtc_host *host, struct goldfish_rtc **out);

/* Frees the device; no access may be in flight. Accepts NULL. */
void goldfish_rtc_destroy(struct goldfish_rtc *r);

/* Disarms the alarm, clears IRQ_ENABLED and the interrupt, lowers the line.
 * The time offset the guest set is kept, like a battery-backed clock.
 * Thread: any. */
void goldfish_rtc_reset(struct goldfish_rtc *r);

/* Host CLOCK_MONOTONIC time, in ns, at which goldfish_rtc_poll() should run
 * next, or INT64_MAX when no alarm is armed. Thread: I/O thread (any). */
int64_t goldfish_rtc_next_deadline_ns(struct goldfish_rtc *r);

/* Fires the alarm if it is armed and due; harmless to call early or often.
 * Thread: I/O thread (any). */
void goldfish_rtc_poll(struct goldfish_rtc *r);

struct state_writer;
struct state_reader;

#define GOLDFISH_RTC_STATE_TAG   "goldfish_rtc"
#define GOLDFISH_RTC_STATE_MAJOR 1
#define GOLDFISH_RTC_STATE_MINOR 0

/* Saves section "goldfish_rtc"[0]. The RTC is a wall clock: what is saved
 * is the guest's offset from host CLOCK_REALTIME, so a restored guest reads
 * the current date (plus whatever offset it set), not the date it was saved
 * at; the alarm is saved as its absolute guest time. Thread: any. */
int goldfish_rtc_save(struct goldfish_rtc *r, struct state_writer *w);
/* Loads section "goldfish_rtc"[0] (flags must be 0/1), drives the line to
 * match and calls deadline_changed. An armed alarm that fell due while the
 * VM was saved fires at the next goldfish_rtc_poll(). Returns 0, or -errno
 * with a one-line message. Thread: any, while no hart runs. */
int goldfish_rtc_load(struct goldfish_rtc *r, const struct state_reader *rd, char *err,
                      size_t errlen);

/* Writes /soc/rtc@<base>: compatible "google,goldfish-rtc", reg,
 * interrupt-parent = ctx->plic_phandle, interrupts = <irq>. Returns 0 or
 * -errno. */
int goldfish_rtc_fdt(struct goldfish_rtc *r, struct fdt_ctx *ctx);

#endif
