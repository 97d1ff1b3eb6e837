/* Lifecycle state names and the state of a running machine. See vm_state.h. */
#include "vm/vm_state.h"

#include "vm/migrate.h"

const char *vm_state_name(enum vm_state s)
{
    switch (s) {
    case VM_STATE_UNDEFINED: return "undefined";
    case VM_STATE_DEFINED:   return "defined";
    case VM_STATE_CREATED:   return "created";
    case VM_STATE_RUNNING:   return "running";
    case VM_STATE_PAUSED:    return "paused";
    case VM_STATE_SAVING:    return "saving";
    case VM_STATE_SAVED:     return "saved";
    case VM_STATE_SHUTDOWN:  return "shutdown";
    case VM_STATE_MIGRATING: return "migrating";
    }
    return "unknown";
}

enum vm_state vm_state_of(struct virt_machine *m)
{
    if (atomic_load(&m->stop) != VIRT_RUNNING)
        return VM_STATE_SHUTDOWN;
    if (vm_migrate_active(m))
        return VM_STATE_MIGRATING;
    return virt_is_paused(m) ? VM_STATE_PAUSED : VM_STATE_RUNNING;
}
