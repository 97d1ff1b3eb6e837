/* The API's requests served on a virt machine (the ops of api_open):
 * state and configuration, pause/resume, destroy, reset, snapshots
 * (vm/snapshot.h), the balloon's target and statistics, counters (each
 * hart's, each device's where it counts), the guest agent to ask for a
 * shutdown.
 * Thread: the I/O thread. */
#ifndef NIMBUS_API_API_VM_H
#define NIMBUS_API_API_VM_H

#include "api/api.h"
#include "machine/virt.h"

/* The ops with `m` as opaque. */
struct api_ops api_vm_ops(struct virt_machine *m);

#endif
