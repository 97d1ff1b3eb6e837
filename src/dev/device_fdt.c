/* Device-tree helpers shared by the devices' `<dev>_fdt()`. See device.h. */
#include "dev/device.h"

#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>

int device_fdt_errno(int fdt_err)
{
    if (fdt_err >= 0)
        return 0;
    return fdt_err == -FDT_ERR_NOSPACE ? -ENOSPC : -EINVAL;
}

int device_fdt_reg(void *fdt, uint64_t base, uint64_t size)
{
    fdt32_t reg[4] = {
        cpu_to_fdt32((uint32_t)(base >> 32)), cpu_to_fdt32((uint32_t)base),
        cpu_to_fdt32((uint32_t)(size >> 32)), cpu_to_fdt32((uint32_t)size),
    };
    return fdt_property(fdt, "reg", reg, sizeof(reg));
}

int device_fdt_hart_irqs(const struct fdt_ctx *ctx, unsigned nharts, uint32_t irq_a,
                         uint32_t irq_b)
{
    if (nharts > ctx->nharts ||
        nharts > sizeof(ctx->cpu_intc_phandle) / sizeof(ctx->cpu_intc_phandle[0]))
        return -EINVAL;
    fdt32_t *cells = calloc((size_t)nharts * 4, sizeof(*cells));
    if (!cells)
        return -ENOMEM;
    for (unsigned h = 0; h < nharts; h++) {
        cells[h * 4 + 0] = cpu_to_fdt32(ctx->cpu_intc_phandle[h]);
        cells[h * 4 + 1] = cpu_to_fdt32(irq_a);
        cells[h * 4 + 2] = cpu_to_fdt32(ctx->cpu_intc_phandle[h]);
        cells[h * 4 + 3] = cpu_to_fdt32(irq_b);
    }
    int err = fdt_property(ctx->fdt, "interrupts-extended", cells,
                           (int)(nharts * 4 * sizeof(*cells)));
    free(cells);
    return device_fdt_errno(err);
}
