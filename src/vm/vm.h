/* Running a machine: one host thread per hart (until the credit scheduler
 * arrives in sched/) and the calling thread as the VM's I/O thread. */
#ifndef NIMBUS_VM_VM_H
#define NIMBUS_VM_VM_H

#include <poll.h>

#include "machine/virt.h"

/* More descriptors for the I/O thread to serve (the API, say),
 * given by a higher layer. Both callbacks run on the I/O thread. */
struct vm_io_source {
    /* Puts up to `max` descriptors to poll in `fds`; returns how many. */
    unsigned (*fill)(void *opaque, struct pollfd *fds, unsigned max);
    /* After each poll, with the entries fill gave (revents set). */
    void (*handle)(void *opaque, const struct pollfd *fds, unsigned n);
    void *opaque;
};
#define VM_IO_SOURCE_MAX_FDS 32u

/* Runs the machine until it stops; a guest reboot restarts it in-process.
 * Returns the process exit status: 0 after poweroff or a user quit, the
 * guest's code after a failure exit, 1 if the monitor failed.
 * Thread: the control thread, which becomes the I/O thread meanwhile. */
int vm_run(struct virt_machine *m);

/* vm_run, with `src` (NULL: none) served by the I/O thread as well, across
 * reboots. */
int vm_run_io(struct virt_machine *m, const struct vm_io_source *src);

/* One turn of a hart thread's loop, which runs it while m->stop is
 * VIRT_RUNNING: waits at a pause point if a pause is asked for, or runs a
 * slice of the hart (slowed by a migration's auto-converge throttle,
 * m->throttle_pct), polls HTIF and parks the hart on WFI. vm_run's hart
 * threads, and unit tests that drive a machine without vm_run. Thread: the
 * hart's own. */
void vm_hart_turn(struct virt_machine *m, struct hart *h);

#endif
