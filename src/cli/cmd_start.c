/* nimbus start: PUT /vms/VM/start on nimbusd: boots a defined or stopped
 * VM, restores a saved one. */
#include "cli/cli.h"
#include "cli/daemon_client.h"

int cmd_start(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus start VM [--connect PATH] [--json]\n"
        "Starts the VM: a defined, shut down or crashed one boots; a saved one is\n"
        "restored from its snapshot and goes on from where it was saved.\n"
        DAEMON_CONNECT_USAGE
        "  --json          print nimbusd's reply (the VM's info)\n"
        "On an error (a VM already running, say) prints nimbusd's message and exits\n"
        "with status 1.\n";
    return daemon_vm_simple(argc, argv, usage, NULL, "PUT", "/start", "started");
}
