/* The VM's lifecycle states (issue "VM state and lifecycle"). One VM
 * process knows created, running, paused, saving and shutdown; the host
 * daemon adds undefined, defined and saved (a VM that exists only as a
 * definition or a snapshot), and live migration adds migrating. All are
 * named here so that every layer and the API speak one vocabulary.
 *
 *   undefined -define-> defined -start-> created -> running <-pause/resume-> paused
 *   running/paused -save-> saving -> saved (the process ends) | back (save and go on)
 *   running/paused -shutdown/destroy/poweroff-> shutdown
 *   running/paused -migrate-> migrating -> shutdown (here) / running (there) */
#ifndef NIMBUS_VM_VM_STATE_H
#define NIMBUS_VM_VM_STATE_H

#include <stdbool.h>

#include "machine/virt.h"

enum vm_state {
    VM_STATE_UNDEFINED,
    VM_STATE_DEFINED,
    VM_STATE_CREATED,
    VM_STATE_RUNNING,
    VM_STATE_PAUSED,
    VM_STATE_SAVING,
    VM_STATE_SAVED,
    VM_STATE_SHUTDOWN,
    VM_STATE_MIGRATING,
};

/* "running", "paused", ... (the API's and the CLI's spelling). */
const char *vm_state_name(enum vm_state s);

/* The state of a VM process's machine: shutdown once it stopped (or is
 * stopping), paused while paused, else running. Any thread. */
enum vm_state vm_state_of(struct virt_machine *m);

#endif
