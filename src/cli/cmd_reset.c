/* nimbus reset: PUT /vm/reset on the VM's API (docs/api.md). */
#include "cli/api_client.h"
#include "cli/cli.h"

int cmd_reset(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus reset --api PATH [--json]\n"
        "Reboots the VM in its process (as a guest reboot does; a paused\n  VM is resumed first).\n"
        "  --api PATH   the VM's API socket (nimbus run --api PATH)\n"
        "  --json       print the server's JSON reply\n"
        "Prints the VM's state after it; on an error (a VM in the wrong state, say)\n"
        "prints the server's message and exits with status 1.\n";
    return api_cmd_simple(argc, argv, usage, "PUT", "/vm/reset", NULL);
}
