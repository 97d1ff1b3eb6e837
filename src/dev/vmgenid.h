/* VM generation ID ("microsoft,vmgenid", Linux drivers/virt/vmgenid.c and
 * Documentation/devicetree/bindings/rng/microsoft,vmgenid.yaml): a 16-byte
 * identifier that changes whenever the VM may have been duplicated - each
 * restore of a snapshot, and so each clone. When it changes, the device
 * raises its interrupt; Linux then reads the new ID, mixes it into its RNG
 * and reseeds at once (add_vmfork_randomness), so two clones of one
 * snapshot never hand out the same random numbers, and sends a uevent
 * (NEW_VMGENID=1) that the guest's init acts on (docs/snapshots.md).
 *
 * Registers: the ID at offset 0..15 (read-only, any size); the rest of the
 * 4 KiB window reads 0. The PLIC's gateways are level-triggered, so the line
 * stays high from the change until the guest reads the ID (the driver's
 * interrupt handler does), which acknowledges it.
 *
 * Threads: MMIO on hart threads; vmgenid_new_generation on the control
 * thread. State under one mutex. */
#ifndef NIMBUS_DEV_VMGENID_H
#define NIMBUS_DEV_VMGENID_H

#include <stddef.h>
#include <stdint.h>

#include "dev/device.h"
#include "mem/guest_mem.h"

#define VMGENID_VIRT_BASE 0x00102000ull
#define VMGENID_SIZE      0x1000ull
#define VMGENID_VIRT_IRQ  12u
#define VMGENID_ID_LEN    16u

struct vmgenid;

/* Creates the device with a random ID and, when `mem` is not NULL,
 * registers its window. Returns 0 or -errno. */
int vmgenid_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                   struct vmgenid **out);
void vmgenid_destroy(struct vmgenid *g);

/* A new random ID, and the interrupt that tells the guest. Returns 0 or
 * -errno (no randomness from the host). */
int vmgenid_new_generation(struct vmgenid *g);
/* The current ID. */
void vmgenid_get(struct vmgenid *g, uint8_t id[VMGENID_ID_LEN]);

struct state_writer;
struct state_reader;

/* Section "vmgenid"[0] v1.0: the ID and the interrupt line's level. */
int vmgenid_save(struct vmgenid *g, struct state_writer *w);
int vmgenid_load(struct vmgenid *g, const struct state_reader *r, char *err, size_t errlen);

/* vmgenid@<base> { compatible = "microsoft,vmgenid"; reg; interrupts; } */
int vmgenid_fdt(struct vmgenid *g, struct fdt_ctx *ctx);

#endif
