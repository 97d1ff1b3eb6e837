/* nimbus destroy: PUT /vm/destroy on the VM's API (docs/api.md). */
#include "cli/api_client.h"
#include "cli/cli.h"

int cmd_destroy(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus destroy --api PATH [--json]\n"
        "Stops the VM at once (a hard stop: the guest is not asked; the\nnimbus run process exits with status 0).\n"
        "  --api PATH   the VM's API socket (nimbus run --api PATH)\n"
        "  --json       print the server's JSON reply\n"
        "Prints the VM's state after it; on an error (a VM in the wrong state, say)\n"
        "prints the server's message and exits with status 1.\n";
    return api_cmd_simple(argc, argv, usage, "PUT", "/vm/destroy", NULL);
}
