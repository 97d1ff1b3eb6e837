/* Virtual memory, SV57 (5-level page tables, satp MODE=10).
 * The checks are in priv_vm.inc, shared with the other priv_vm_sv*.S. */
#include "test.h"
#include "priv.h"

#define VM_LEVELS 5
#define VM_MODE   10
#define ROOT      pt4

#include "priv_vm.inc"
