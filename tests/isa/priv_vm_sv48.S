/* Virtual memory, SV48 (4-level page tables, satp MODE=9).
 * The checks are in priv_vm.inc, shared with the other priv_vm_sv*.S. */
#include "test.h"
#include "priv.h"

#define VM_LEVELS 4
#define VM_MODE   9
#define ROOT      pt3

#include "priv_vm.inc"
