/* What every platform and virtio device shares: an interrupt line and the
 * device-tree context each device uses to write its own node.
 *
 * Devices are one per file, created with `<dev>_create(...)`, register their
 * MMIO window with guest_mem_add_mmio() and lock their own state (their MMIO
 * ops are called from hart threads, their backends from the I/O thread). */
#ifndef NIMBUS_DEV_DEVICE_H
#define NIMBUS_DEV_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

/* A level-triggered interrupt line into an interrupt controller (the PLIC). */
struct irq_line {
    void (*set_level)(void *controller, unsigned irq, bool level);
    void *controller;
    unsigned irq;
};

static inline void irq_line_set(const struct irq_line *line, bool level)
{
    if (line->set_level)
        line->set_level(line->controller, line->irq, level);
}

/* Passed to each device's `<dev>_fdt()` so it can add its node under /soc.
 * `fdt` is a libfdt tree open for sequential writing (fdt_begin_node ...). */
struct fdt_ctx {
    void *fdt;
    uint32_t plic_phandle;     /* interrupt-parent for device interrupts */
    uint32_t cpu_intc_phandle[64]; /* per hart: the cpu's interrupt-controller */
    unsigned nharts;
};

#endif
