/* nimbus destroy: a VM by name through nimbusd (PUT /vms/VM/destroy), or
 * PUT /vm/destroy on a VM process's own API (docs/api.md). */
#include "cli/cli.h"
#include "cli/daemon_client.h"

int cmd_destroy(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus destroy VM [--connect PATH] [--json]\n"
        "       nimbus destroy --api PATH [--json]\n"
        "Stops the VM at once (a hard stop: the guest is not asked). Through nimbusd\n"
        "the VM is then shut down, and can be started again; its own process exits\n"
        "with status 0.\n"
        DAEMON_VM_OR_API_USAGE;
    return daemon_vm_simple(argc, argv, usage, "/vm/destroy", "PUT", "/destroy", "destroyed");
}
