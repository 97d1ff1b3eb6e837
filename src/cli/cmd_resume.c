/* nimbus resume: a VM by name through nimbusd (PUT /vms/VM/resume), or
 * PUT /vm/resume on a VM process's own API (docs/api.md). */
#include "cli/cli.h"
#include "cli/daemon_client.h"

int cmd_resume(int argc, char **argv)
{
    static const char usage[] =
        "usage: nimbus resume VM [--connect PATH] [--json]\n"
        "       nimbus resume --api PATH [--json]\n"
        "Resumes a paused VM; guest time goes on from where it stopped.\n"
        DAEMON_VM_OR_API_USAGE;
    return daemon_vm_simple(argc, argv, usage, "/vm/resume", "PUT", "/resume", "resumed");
}
