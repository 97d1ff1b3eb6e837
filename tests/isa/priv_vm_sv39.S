/* Virtual memory, SV39 (3-level page tables, satp MODE=8).
 * The checks are in priv_vm.inc, shared with the other priv_vm_sv*.S. */
#include "test.h"
#include "priv.h"

#define VM_LEVELS 3
#define VM_MODE   8
#define ROOT      pt2

#include "priv_vm.inc"
