/* The network follows the VM: after an incoming live migration or a
 * restore, each network card announces the guest's MAC on its network
 * (net/announce.h: NET_ANNOUNCE_ROUNDS rounds of a gratuitous RARP through
 * the card's backend, and the guest asked to send its own gratuitous ARPs
 * where its driver negotiated VIRTIO_NET_F_GUEST_ANNOUNCE), as QEMU's
 * qemu_announce_self after a migration. Switches then send the VM's
 * traffic to the port it is on now, so TCP connections through a tap and
 * a bridge go on.
 *
 * The rounds start once the VM runs (a restore with --paused waits for the
 * resume) and stand still while it is paused. Threads: vm_announce_start
 * on the control thread before vm_run_io; vm_announce_poll on the I/O
 * thread (vm_run_io's loop). */
#ifndef NIMBUS_VM_ANNOUNCE_H
#define NIMBUS_VM_ANNOUNCE_H

#include <stdint.h>

#include "machine/virt.h"

/* Schedules the rounds: the first as soon as the VM runs. */
void vm_announce_start(struct virt_machine *m);

/* Sends the rounds due at `now_ns` (timebase_host_ns); returns when the
 * next one is due, or INT64_MAX when none is (all sent, or the VM
 * paused: the loop wakes for the resume anyway). */
int64_t vm_announce_poll(struct virt_machine *m, int64_t now_ns);

#endif
