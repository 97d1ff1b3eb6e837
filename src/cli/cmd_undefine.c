/* nimbus undefine: DELETE /vms/VM on nimbusd. */
#include "cli/cli.h"
#include "cli/daemon_client.h"

int cmd_undefine(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus undefine VM [--connect PATH] [--json]\n"
        "Removes the VM's definition from nimbusd (its disk images stay). A running\n"
        "or paused VM is refused: shut it down or destroy it first.\n"
        DAEMON_CONNECT_USAGE
        "  --json          print nimbusd's reply\n";
    return daemon_vm_simple(argc, argv, usage, NULL, "DELETE", "", "undefined");
}
