/* nimbus: entry point and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define NIMBUS_VERSION "0.1.0"

static const struct cli_command commands[] = {
    { "run", "boot a virtual machine (a Linux kernel, or a bare-metal program)", cmd_run },
    { "restore", "run a virtual machine from a snapshot", cmd_restore },
    { "exec", "run a command in a throwaway clone of a snapshot", cmd_exec },
    { "status", "a running VM's state, uptime and configuration (--api PATH)", cmd_status },
    { "pause", "pause a VM: harts, devices and guest time stand still", cmd_pause },
    { "resume", "resume a paused VM", cmd_resume },
    { "shutdown", "ask the guest (its agent) to power off; destroy it after a timeout", cmd_shutdown },
    { "destroy", "stop a VM at once", cmd_destroy },
    { "reset", "reboot a VM", cmd_reset },
    { "snapshot", "save a VM to a directory", cmd_snapshot },
    { "migrate", "move a running VM to another Nimbus process, live", cmd_migrate },
    { "balloon", "set the balloon's target, or show its figures", cmd_balloon },
    { "counters", "per-hart and per-device counters", cmd_counters },
    { "events", "follow a VM's events (state changes, ...)", cmd_events },
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: nimbus <command> [options]\n"
            "\n"
            "Nimbus runs RISC-V (RV64GC) virtual machines on any Linux host.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nEvery command but run speaks to a running VM's API: --api PATH, the\n"
                 "socket of 'nimbus run --api PATH' (docs/api.md).\n"
                 "'nimbus <command> --help' describes a command's options;\n"
                 "'nimbus --version' prints the version.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("nimbus %s\n", NIMBUS_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "nimbus: unknown command '%s' (try 'nimbus --help')\n", argv[1]);
    return 2;
}
