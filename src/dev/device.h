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

/* Helpers for `<dev>_fdt()` (device_fdt.c). */

/* A libfdt result as 0 or -errno: -FDT_ERR_NOSPACE -> -ENOSPC, any other
 * error -> -EINVAL, >= 0 -> 0. */
int device_fdt_errno(int fdt_err);

/* Writes "reg" = <base size>, two address and two size cells. Returns the
 * libfdt result (pass it through device_fdt_errno()). */
int device_fdt_reg(void *fdt, uint64_t base, uint64_t size);

/* Writes "interrupts-extended" with, for each of the first `nharts` harts,
 * <cpu_intc_phandle irq_a cpu_intc_phandle irq_b>. Returns 0 or -errno:
 * -EINVAL if `nharts` exceeds ctx->nharts or ctx->cpu_intc_phandle. */
int device_fdt_hart_irqs(const struct fdt_ctx *ctx, unsigned nharts, uint32_t irq_a,
                         uint32_t irq_b);

#endif
