/* virtio-rng (VIRTIO 1.2 §5.4, device id 4): fills the driver's buffers
 * from the host's getrandom(2). One queue, one worker thread; a request
 * gets at most VIRTIO_RNG_MAX_REQUEST bytes so one guest can't keep the
 * worker busy for long.
 * Threads: create/destroy on the machine's control thread. */
#ifndef NIMBUS_VIRTIO_RNG_H
#define NIMBUS_VIRTIO_RNG_H

#include "virtio/virtio_mmio.h"

#define VIRTIO_ID_ENTROPY      4u
#define VIRTIO_RNG_MAX_REQUEST 65536u

int virtio_rng_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                      struct virtio_dev **out);

#endif
