/* Running a machine: one host thread per hart (until the credit scheduler
 * arrives in sched/) and the calling thread as the VM's I/O thread. */
#ifndef NIMBUS_VM_VM_H
#define NIMBUS_VM_VM_H

#include "machine/virt.h"

/* Runs the machine until it stops; a guest reboot restarts it in-process.
 * Returns the process exit status: 0 after poweroff or a user quit, the
 * guest's code after a failure exit, 1 if the monitor failed.
 * Thread: the control thread, which becomes the I/O thread meanwhile. */
int vm_run(struct virt_machine *m);

#endif
