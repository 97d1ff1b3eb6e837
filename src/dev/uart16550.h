/* NS16550A UART, as on QEMU's `virt` board (0x1000_0000, IRQ 10, reg-shift 0).
 *
 * Guest side: byte registers at offsets 0..7 (RBR/THR/DLL, IER/DLM, IIR/FCR,
 * LCR, MCR, LSR, MSR, SCR); any access size is accepted and uses the low byte.
 * Transmission is instantaneous: every THR write goes straight to the host
 * `tx` callback, and LSR.THRE and LSR.TEMT read 1 - unless the host says its
 * output is backed up (`tx_busy`): then they read 0 and no THRE interrupt is
 * raised until the host calls uart16550_tx_ready(). Every 16550 driver
 * (Linux's 8250, OpenSBI, polling loops) waits for THRE before it writes, so
 * the guest is paced by its reader as by a real line's baud rate; a byte
 * written anyway still goes to `tx`.
 *
 * Host side: the I/O thread feeds input with uart16550_receive(), which takes
 * only what fits in the RX FIFO (16 bytes, 1 when the guest has FIFOs off) and
 * never drops a byte. When it refused some bytes, the device calls the host's
 * `rx_ready` callback once room appears again (the guest read RBR, cleared the
 * FIFO, left loopback or reset the device).
 *
 * Threads: MMIO ops run on hart threads, uart16550_receive() and
 * uart16550_can_receive() on the I/O thread; all state is under one mutex.
 * Lock order: uart lock -> interrupt controller lock (the irq line is raised
 * with the uart lock held). `tx` and `rx_ready` are also called with the uart
 * lock held: they must not call back into this uart and should not block for
 * long (buffer, or kick an eventfd). */
#ifndef NIMBUS_DEV_UART16550_H
#define NIMBUS_DEV_UART16550_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/device.h"
#include "mem/guest_mem.h"

#define UART16550_VIRT_BASE  0x10000000ull
#define UART16550_SIZE       0x100ull
#define UART16550_VIRT_IRQ   10u
#define UART16550_CLOCK_HZ   3686400u   /* 0x384000, as QEMU advertises */
#define UART16550_FIFO_SIZE  16u

struct uart16550;

struct uart16550_host {
    /* Guest output: `n` bytes written to THR (n is 1 today). Required. */
    void (*tx)(void *opaque, const uint8_t *buf, size_t n);
    /* Optional: called (from a hart thread, with the uart lock held) when the
     * RX FIFO has room again after uart16550_receive() accepted less than it
     * was offered. Typically signals the I/O thread. */
    void (*rx_ready)(void *opaque);
    /* Optional: true while the host cannot take output for now (called with
     * the uart lock held, from hart threads; must not block). The host then
     * calls uart16550_tx_ready() when it can again. */
    bool (*tx_busy)(void *opaque);
    void *opaque;
};

/* Creates the UART and, when `mem` is not NULL, registers its MMIO window
 * [base, base + UART16550_SIZE). `irq` is the line to the PLIC (a zeroed line
 * means no interrupt). The state after create equals the state after reset.
 * Returns 0 or -errno (-EINVAL, -ENOMEM, or guest_mem_add_mmio's error).
 * Thread: machine setup. */
int uart16550_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                     const struct uart16550_host *host, struct uart16550 **out);

/* Frees the device. The caller must make sure no MMIO access or I/O-thread
 * call is in flight (guest_mem has no removal: destroy it first or together).
 * Accepts NULL. Thread: machine teardown. */
void uart16550_destroy(struct uart16550 *u);

/* Power-on state: FIFOs off and empty, IER = 0, LCR = 0, MCR = 0, divisor 0,
 * interrupt line lowered. Thread: any (takes the lock). */
void uart16550_reset(struct uart16550 *u);

/* Offers `n` input bytes; returns how many were accepted (0..16), the caller
 * keeps the rest and retries after `rx_ready` or when
 * uart16550_can_receive() says there is room. In loopback mode the receiver
 * is disconnected and nothing is accepted. Thread: I/O thread (any). */
int uart16550_receive(struct uart16550 *u, const uint8_t *buf, size_t n);

/* The host can take output again (after tx_busy said it could not): raises
 * the THRE interrupt if the guest enabled it. Thread: any (the I/O thread). */
void uart16550_tx_ready(struct uart16550 *u);

/* How many bytes uart16550_receive() would accept now. Thread: any. */
size_t uart16550_can_receive(struct uart16550 *u);

struct state_writer;
struct state_reader;

#define UART16550_STATE_TAG   "uart16550"
#define UART16550_STATE_MAJOR 1
#define UART16550_STATE_MINOR 0

/* Saves section "uart16550"[instance]: the registers, the RX FIFO's bytes
 * in order and the latched THRE interrupt. Returns the writer's error.
 * Thread: any, while no hart runs. */
int uart16550_save(struct uart16550 *u, struct state_writer *w, uint32_t instance);
/* Loads section "uart16550"[instance]. Every register is checked against
 * what the guest could have written (reserved IER/MCR bits clear, FCR as
 * fcr_write keeps it, MSR status lines consistent with MCR, RX FIFO within
 * its capacity) before anything changes; then the interrupt line is driven
 * to match and the host's rx_ready is called if the FIFO has room.
 * Returns 0, or -errno with a one-line message. Thread: any, while no hart runs. */
int uart16550_load(struct uart16550 *u, const struct state_reader *r, uint32_t instance,
                   char *err, size_t errlen);

/* Writes /soc/serial@<base>: compatible "ns16550a", reg, clock-frequency,
 * interrupt-parent = ctx->plic_phandle, interrupts = <irq>. The caller has
 * /soc open with #address-cells = #size-cells = 2 (and may point
 * /chosen/stdout-path at "/soc/serial@<base>"). Returns 0 or -errno. */
int uart16550_fdt(struct uart16550 *u, struct fdt_ctx *ctx);

#endif
