/* nimbus pause: a VM by name through nimbusd (PUT /vms/VM/pause), or
 * PUT /vm/pause on a VM process's own API (docs/api.md). */
#include "cli/cli.h"
#include "cli/daemon_client.h"

int cmd_pause(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus pause VM [--connect PATH] [--json]\n"
        "       nimbus pause --api PATH [--json]\n"
        "Pauses the VM: every hart stops at an instruction boundary, the\nvirtio devices go idle and guest time stands still.\n"
        DAEMON_VM_OR_API_USAGE;
    return daemon_vm_simple(argc, argv, usage, "/vm/pause", "PUT", "/pause", "paused");
}
