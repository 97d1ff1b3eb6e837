/* Control requests served on a running virt machine: balloon target and
 * statistics (virtio/balloon.h), status (harts, RAM, the VMM's RSS from
 * /proc/self/status, devices).
 * Thread: the I/O thread (control_vm_handle is a control_ops handler with
 * the struct virt_machine as opaque). */
#ifndef NIMBUS_API_CONTROL_VM_H
#define NIMBUS_API_CONTROL_VM_H

#include "api/control.h"
#include "machine/virt.h"

int control_vm_handle(void *opaque, const struct control_request *req, json_t *reply, char *err,
                      size_t errlen);

#endif
