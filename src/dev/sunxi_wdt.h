/* Allwinner sun6i watchdog ("allwinner,sun6i-a31-wdt"): the register set
 * that Linux's drivers/watchdog/sunxi_wdt.c drives (its sun6i_wdt_reg) and
 * QEMU's hw/watchdog/allwinner-wdt.c emulates. Debian's riscv64 kernel
 * builds that driver (CONFIG_SUNXI_WATCHDOG=m, for the Allwinner D1) but
 * neither pvpanic nor a PCI watchdog, so this is the watchdog an unmodified
 * guest can drive through /dev/watchdog. Offsets in the window:
 *   0x00 IRQ_EN   bit 0: interrupt on expiry (with CFG = interrupt only)
 *   0x04 IRQ_STA  bit 0: expired in interrupt mode; writing 1 clears it
 *   0x10 CTRL     a write of (0xA57 << 1) | 1 (KEY_FIELD bits 12:1, RSTART
 *                 bit 0) restarts the count; other keys are ignored; reads 0
 *   0x14 CFG      bits 1:0: 1 = reset the whole system on expiry, 2 = only
 *                 interrupt; 0 and 3 do nothing on expiry
 *   0x18 MODE     bit 0 EN; bits 7:4 INTV_VALUE, the interval: 0.5, 1, 2,
 *                 3, 4, 5, 6, 8, 10, 12, 14, 16 s for 0..11 (12..15 are
 *                 reserved and count 16 s)
 * Other bits read 0 and ignore writes; other offsets read 0. Only aligned
 * 32-bit accesses are valid (others fault, as in QEMU).
 *
 * Counting: a rising edge of EN, or a restart while EN is set, starts a
 * count of the current interval; clearing EN stops it; a new interval
 * written while counting takes effect at the next restart (the driver's
 * set_timeout restarts right after). The count runs on the guest's clock
 * (the VM's timebase, which stands still while the VM is paused) and is
 * one-shot: after an expiry the watchdog stays quiet until restarted.
 * Expiry with CFG = 1 is the system reset; what that does is the board's
 * choice (nimbus run --watchdog=ACTION), not the device's.
 *
 * There is no timer thread: the machine's I/O thread asks
 * sunxi_wdt_next_deadline_ns() when to call sunxi_wdt_poll(), and the
 * optional `deadline_changed` callback tells it when to ask again.
 *
 * Threads: MMIO ops on hart threads, poll/deadline on the I/O thread; state
 * under one mutex. The irq line and deadline_changed are called with the
 * lock held. Lock order: wdt lock -> PLIC lock; deadline_changed must not
 * call back into the device (kick an eventfd). */
#ifndef NIMBUS_DEV_SUNXI_WDT_H
#define NIMBUS_DEV_SUNXI_WDT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu/timebase.h"
#include "dev/device.h"
#include "mem/guest_mem.h"

#define SUNXI_WDT_VIRT_BASE 0x00103000ull
#define SUNXI_WDT_SIZE      0x1000ull
#define SUNXI_WDT_VIRT_IRQ  13u

#define SUNXI_WDT_IRQ_EN    0x00u
#define SUNXI_WDT_IRQ_STA   0x04u
#define SUNXI_WDT_CTRL      0x10u
#define SUNXI_WDT_CFG       0x14u
#define SUNXI_WDT_MODE      0x18u
#define SUNXI_WDT_KEY       0xa57u
#define SUNXI_WDT_RESTART   ((SUNXI_WDT_KEY << 1) | 1u)   /* the driver's WDT_CTRL_RELOAD */
#define SUNXI_WDT_CFG_SYSTEM 1u
#define SUNXI_WDT_CFG_IRQ   2u
#define SUNXI_WDT_MODE_EN   1u

struct sunxi_wdt;

struct sunxi_wdt_host {
    /* Optional: the value sunxi_wdt_next_deadline_ns() returns may have
     * changed (a count started, stopped or restarted). */
    void (*deadline_changed)(void *opaque);
    void *opaque;
};

/* Creates the watchdog (stopped, registers 0) counting on `tb` (which must
 * outlive it) and, when `mem` is not NULL, registers [base, base +
 * SUNXI_WDT_SIZE). `host` may be NULL. Returns 0 or -errno. Thread: machine
 * setup. */
int sunxi_wdt_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                     const struct timebase *tb, const struct sunxi_wdt_host *host,
                     struct sunxi_wdt **out);

/* Frees the device; no access may be in flight. Accepts NULL. */
void sunxi_wdt_destroy(struct sunxi_wdt *w);

/* Power-on state: every register 0, no count, the line low. Thread: any. */
void sunxi_wdt_reset(struct sunxi_wdt *w);

/* Host CLOCK_MONOTONIC ns at which sunxi_wdt_poll() should run next, or
 * INT64_MAX when nothing counts. Meaningful only while guest time runs (the
 * caller does not poll a paused VM). Thread: I/O thread (any). */
int64_t sunxi_wdt_next_deadline_ns(struct sunxi_wdt *w);

/* Expires the count if it is due (harmless to call early or often). True
 * when it expired configured to reset the system: the caller takes the
 * board's watchdog action. In interrupt mode it sets IRQ_STA (the line goes
 * up with IRQ_EN) and returns false. Thread: I/O thread (any). */
bool sunxi_wdt_poll(struct sunxi_wdt *w);

/* Guest ticks left until the count expires (0 when due), or UINT64_MAX
 * when nothing counts. For tests and diagnostics. */
uint64_t sunxi_wdt_ticks_left(struct sunxi_wdt *w);

struct state_writer;
struct state_reader;

#define SUNXI_WDT_STATE_TAG   "sunxi_wdt"
#define SUNXI_WDT_STATE_MAJOR 1
#define SUNXI_WDT_STATE_MINOR 0

/* Saves section "sunxi_wdt"[0]: IRQ_EN, IRQ_STA, CFG, MODE, whether a count
 * runs and the guest ticks it has left (relative to the guest's clock, which
 * the aclint section restores). Thread: any, while no hart runs. */
int sunxi_wdt_save(struct sunxi_wdt *w, struct state_writer *wr);
/* Loads section "sunxi_wdt"[0] (after the aclint's, which sets guest time),
 * refusing bits the registers do not have, a count without EN and more
 * ticks left than the longest interval; drives the line and calls
 * deadline_changed. Returns 0, or -errno with a one-line message.
 * Thread: any, while no hart runs. */
int sunxi_wdt_load(struct sunxi_wdt *w, const struct state_reader *r, char *err,
                   size_t errlen);

/* Writes /soc/watchdog@<base>: compatible "allwinner,sun6i-a31-wdt", reg,
 * interrupt-parent = ctx->plic_phandle, interrupts = <irq>. Returns 0 or
 * -errno. */
int sunxi_wdt_fdt(struct sunxi_wdt *w, struct fdt_ctx *ctx);

#endif
