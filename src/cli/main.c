/* nimbus: entry point and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define NIMBUS_VERSION "0.1.0"

static const struct cli_command commands[] = {
    { "run", "boot a virtual machine (a Linux kernel, or a bare-metal program)", cmd_run },
    { "restore", "run a virtual machine from a snapshot", cmd_restore },
    { "exec", "run a command in a throwaway clone of a snapshot", cmd_exec },
    { NULL, "VMs kept by nimbusd, the host daemon (VM is a name):", NULL },
    { "define", "define a VM from a JSON definition", cmd_define },
    { "list", "list the running VMs (--all: every VM)", cmd_list },
    { "info", "a VM's state, resources, devices and sockets", cmd_info },
    { "start", "boot a VM, or restore a saved one", cmd_start },
    { "save", "save a VM's state and memory and end its process", cmd_save },
    { "undefine", "remove a VM's definition", cmd_undefine },
    { "console", "attach to a VM's console (Ctrl-] detaches)", cmd_console },
    { "logs", "a VM's log (-n LINES, -f to follow)", cmd_logs },
    { "top", "the VMs' CPU, memory, disk and network, refreshed", cmd_top },
    { NULL, "A VM by name through nimbusd, or the VM process at --api PATH:", NULL },
    { "pause", "pause a VM: harts, devices and guest time stand still", cmd_pause },
    { "resume", "resume a paused VM", cmd_resume },
    { "shutdown", "ask the guest (its agent) to power off; destroy it after a timeout", cmd_shutdown },
    { "destroy", "stop a VM at once", cmd_destroy },
    { NULL, "The VM process at --api PATH (nimbus run --api PATH, docs/api.md):", NULL },
    { "status", "a running VM's state, uptime and configuration", cmd_status },
    { "reset", "reboot a VM", cmd_reset },
    { "snapshot", "save a VM to a directory", cmd_snapshot },
    { "migrate", "move a running VM to another Nimbus process, live", cmd_migrate },
    { "migrate-recover", "destination of a broken post-copy: listen for the source again",
      cmd_migrate_recover },
    { "balloon", "set the balloon's target, or show its figures", cmd_balloon },
    { "counters", "per-hart and per-device counters", cmd_counters },
    { "events", "follow a VM's events (state changes, ...)", cmd_events },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: nimbus <command> [options]\n"
            "\n"
            "Nimbus runs RISC-V (RV64GC) virtual machines on any Linux host.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (commands[i].name)
            fprintf(out, "  %-15s %s\n", commands[i].name, commands[i].summary);
        else
            fprintf(out, "\n %s\n", commands[i].summary);
    }
    fprintf(out, "\nnimbusd's socket: --connect PATH, else $NIMBUS_CONNECT, else\n"
                 "/run/nimbus/nimbusd.sock as root, $XDG_RUNTIME_DIR/nimbus/nimbusd.sock\n"
                 "otherwise (docs/cli.md).\n"
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
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].name && !strcmp(argv[1], commands[i].name))
            return commands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "nimbus: unknown command '%s' (try 'nimbus --help')\n", argv[1]);
    return 2;
}
