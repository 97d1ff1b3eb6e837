/* virtio-console (VIRTIO 1.2 §5.3, device id 3): one port, no MULTIPORT.
 * The guest's hvc0. Output (transmitq) goes to a host callback, the
 * machine's console backend; input comes from virtio_console_input(),
 * buffered (at most VIRTIO_CONSOLE_INPUT_MAX bytes; more is dropped) while
 * the driver has no receive buffers posted.
 *
 * Threads: create/destroy on the machine's control thread; the output
 * callback runs on the device's worker thread, never on a hart (a hart's
 * QueueNotify only wakes the worker); virtio_console_input from any thread
 * (the VM's I/O thread). */
#ifndef NIMBUS_VIRTIO_CONSOLE_H
#define NIMBUS_VIRTIO_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#include "virtio/virtio_mmio.h"

#define VIRTIO_ID_CONSOLE        3u
#define VIRTIO_CONSOLE_INPUT_MAX 4096u

/* Its snapshot section, saved and loaded through virtio_mmio_save/_load:
 * the typed input not yet delivered, and a transmit chain held for
 * back-pressure as "chain HEAD, N bytes out" (given back to the ring at
 * save and popped again, see console.c). */
#define VIRTIO_CONSOLE_STATE_TAG   "virtio-console"
#define VIRTIO_CONSOLE_STATE_MAJOR 1
#define VIRTIO_CONSOLE_STATE_MINOR 0

struct virtio_console_host {
    /* Guest output, on the worker thread; never blocks. Returns how many
     * bytes it took: fewer than n when the backend is full, and then the
     * device waits for virtio_console_output_ready() to go on. */
    size_t (*output)(void *opaque, const uint8_t *buf, size_t n);
    void *opaque;
};

struct virtio_console;

/* Creates the device; *con is its handle for virtio_console_input(), valid
 * until virtio_mmio_destroy(*out). Returns 0 or -errno. */
int virtio_console_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                          const struct virtio_console_host *host, struct virtio_dev **out,
                          struct virtio_console **con);

/* The backend has room again after taking fewer bytes than offered: the
 * held output goes on (on the worker). Any thread. */
void virtio_console_output_ready(struct virtio_console *con);

/* Bytes typed for the guest. Returns how many were taken (less than n when
 * the input buffer is full). Any thread. */
size_t virtio_console_input(struct virtio_console *con, const uint8_t *buf, size_t n);

#endif
