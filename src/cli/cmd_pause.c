/* nimbus pause: PUT /vm/pause on the VM's API (docs/api.md). */
#include "cli/api_client.h"
#include "cli/cli.h"

int cmd_pause(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus pause --api PATH [--json]\n"
        "Pauses the VM: every hart stops at an instruction boundary, the\nvirtio devices go idle and guest time stands still.\n"
        "  --api PATH   the VM's API socket (nimbus run --api PATH)\n"
        "  --json       print the server's JSON reply\n"
        "Prints the VM's state after it; on an error (a VM in the wrong state, say)\n"
        "prints the server's message and exits with status 1.\n";
    return api_cmd_simple(argc, argv, usage, "PUT", "/vm/pause", NULL);
}
