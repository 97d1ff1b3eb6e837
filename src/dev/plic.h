/* SiFive PLIC as on QEMU's `virt` board (0x0c00_0000, size 0x600000 =
 * VIRT_PLIC_SIZE(VIRT_CPUS_MAX * 2) with QEMU's 512-hart maximum), 96 sources
 * (1..95 usable, riscv,ndev = 95), 3 priority bits (0..7, WARL):
 *   +0x000000 + 4*id            source priority
 *   +0x001000 + 4*word          pending bits (read-only)
 *   +0x002000 + 0x80*ctx        enable bits
 *   +0x200000 + 0x1000*ctx      priority threshold
 *   +0x200004 + 0x1000*ctx      claim (read) / complete (write)
 * Context 2*h is hart h's M-mode external interrupt, 2*h+1 its S-mode one.
 * Only 32-bit aligned accesses are valid (others fault, as in QEMU); unknown
 * registers read 0 and ignore writes.
 *
 * Gateways are level-triggered: a source becomes pending while its line is
 * high and it is not claimed; a line that drops before the claim retracts the
 * request. Claim returns the highest-priority pending source enabled for the
 * context with priority above its threshold (ties: lowest id), clears its
 * pending bit and holds the gateway closed; completion reopens it, and a line
 * still high makes the source pending again. Like QEMU (and unlike the letter
 * of the spec) a completion is honoured even when the source is not enabled
 * for that context: older Linux kernels complete masked sources.
 *
 * Threads: MMIO ops run on hart threads, plic_set_irq() on any thread. State
 * is under one mutex. set_external is called with the plic lock held, only
 * when a context's output changes (and for every context on reset and load), so the
 * calls for one context arrive in order. Lock order: device locks -> plic
 * lock -> set_external's (hart) locks; set_external must not call back into
 * the plic. */
#ifndef NIMBUS_DEV_PLIC_H
#define NIMBUS_DEV_PLIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dev/device.h"
#include "mem/guest_mem.h"

#define PLIC_VIRT_BASE      0x0c000000ull
#define PLIC_SIZE           0x600000ull
#define PLIC_NUM_SOURCES    96u     /* including the nonexistent source 0 */
#define PLIC_MAX_PRIORITY   7u
#define PLIC_MAX_HARTS      512u    /* 2 contexts each fit in PLIC_SIZE */

struct plic;

struct plic_host {
    /* Context (hart, s_mode) now has / no longer has a claimable interrupt:
     * drive the hart's MEIP (s_mode false) or SEIP (s_mode true). Required. */
    void (*set_external)(void *opaque, unsigned hart, bool s_mode, bool level);
    void *opaque;
};

/* Creates a PLIC for `nharts` harts (1..PLIC_MAX_HARTS) and, when `mem` is not
 * NULL, registers [base, base + PLIC_SIZE). Starts in the reset state (all
 * outputs low); create calls no callback. Returns 0 or -errno.
 * Thread: machine setup. */
int plic_create(struct guest_mem *mem, uint64_t base, unsigned nharts,
                const struct plic_host *host, struct plic **out);

/* Frees the device; no access may be in flight. Accepts NULL. */
void plic_destroy(struct plic *p);

/* Clears priorities, thresholds, enables and claims; pending bits are
 * recomputed from the input lines (they belong to the devices, which reset
 * themselves). Calls set_external(..., false) for every context.
 * Thread: any. */
void plic_reset(struct plic *p);

/* Input line `irq` (1..PLIC_NUM_SOURCES-1; others ignored) is now `level`.
 * Signature matches struct irq_line's set_level; `plic` is a struct plic *.
 * Thread: any. */
void plic_set_irq(void *plic, unsigned irq, bool level);

/* A ready-made irq_line for source `irq` of this PLIC. */
static inline struct irq_line plic_irq_line(struct plic *p, unsigned irq)
{
    return (struct irq_line){ .set_level = plic_set_irq, .controller = p, .irq = irq };
}

struct state_writer;
struct state_reader;

#define PLIC_STATE_TAG   "plic"
#define PLIC_STATE_MAJOR 1
#define PLIC_STATE_MINOR 0

/* Saves section "plic"[0]: priorities, input levels, pending and claimed
 * bits, and each context's enables and threshold. Returns the writer's
 * error (0 or -errno). Thread: any, while no hart runs. */
int plic_save(struct plic *p, struct state_writer *w);
/* Loads section "plic"[0] saved by a PLIC with the same number of harts.
 * Every field is checked (priorities and thresholds in 0..7, nothing for
 * source 0, pending == level & ~claimed, as the gateways keep it) before
 * anything changes; then set_external is called for every context with its
 * recomputed output. Returns 0, or -errno with a one-line message in `err`.
 * Thread: any, while no hart runs. */
int plic_load(struct plic *p, const struct state_reader *r, char *err, size_t errlen);

/* Writes /soc/plic@<base> with phandle = ctx->plic_phandle: compatible
 * "sifive,plic-1.0.0", "riscv,plic0", #interrupt-cells 1, #address-cells 0,
 * interrupt-controller, reg, riscv,ndev 95, interrupts-extended =
 * <intc[h] 11 intc[h] 9> per hart. Needs nharts <= ctx->nharts and <= 64.
 * Returns 0 or -errno. */
int plic_fdt(struct plic *p, struct fdt_ctx *ctx);

#endif
