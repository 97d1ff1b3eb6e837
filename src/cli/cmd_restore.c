/* nimbus restore: run a VM from a snapshot directory (vm/snapshot.h). */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cpu/jit/jit.h"
#include "net/mac.h"
#include "vm/migrate.h"
#include "vm/sandbox.h"
#include "vm/snapshot.h"
#include "vm/vm.h"

static void restore_usage(FILE *out)
{
    fprintf(out,
        "usage: nimbus restore SNAPSHOT [options]\n"
        "       nimbus restore --incoming unix:PATH|tcp:HOST:PORT [options]\n"
        "\n"
        "Runs the VM saved in the directory SNAPSHOT (made by 'nimbus snapshot' or the\n"
        "API's PUT /vm/snapshot) from the instant it was saved. The machine (RAM,\n"
        "harts, devices, MACs) is the saved one; the options below are the host side.\n"
        "\n"
        "  --incoming ADDR   instead of a snapshot, take a live migration (docs/migration.md):\n"
        "                    listen on ADDR (unix:PATH, or tcp:HOST:PORT; port 0 picks one,\n"
        "                    printed to stderr), build the machine the source describes\n"
        "                    (its disks by the same paths, unless --disk), receive its RAM\n"
        "                    and device state, and run it once the source says go. With\n"
        "                    the source's --copy-storage, the disks (the same paths, or\n"
        "                    --disk ones: made beforehand with the same virtual sizes,\n"
        "                    e.g. qemu-img create -f qcow2 PATH SIZE) are filled from the\n"
        "                    stream. Trusted networks only: the stream is neither\n"
        "                    encrypted nor authenticated\n"
        "  --disk PATH       the first saved disk is PATH instead (repeatable, in slot\n"
        "                    order; an empty PATH keeps that slot's saved disk): a qcow2\n"
        "                    overlay over the saved disk, so that clones write apart.\n"
        "                    Only its size is checked against the saved disk's\n"
        "  --disk fd=N       that slot's saved disk itself, as the open descriptor N\n"
        "                    handed in by the caller (see 'nimbus run --help'): it\n"
        "                    gets the full check, as if opened by its saved name\n"
        "  --net tap,fd=N    the next saved tap card (repeatable, in card order) on\n"
        "                    the attached /dev/net/tun descriptor N instead of\n"
        "                    opening its saved interface by name\n"
        "  --force-disks     restore even when a saved disk changed since the save (its\n"
        "                    size or the checksum of its first 64 KiB differs); the\n"
        "                    guest may then see a file system it does not expect\n"
        "  --memory lazy|eager|uffd\n"
        "                    lazy (default): guest RAM is the memory file mapped\n"
        "                    copy-on-write, loaded page by page as the guest touches it\n"
        "                    (clones of one snapshot share its pages); eager: read it\n"
        "                    all before the guest runs; uffd: RAM is filled through\n"
        "                    userfaultfd, a page when first touched and the rest in the\n"
        "                    background (needs root or vm.unprivileged_userfaultfd=1).\n"
        "                    A compressed snapshot (memory.zst) is always read eagerly\n"
        "  --clone           run as a clone of the saved VM, beside it and its other\n"
        "                    clones: each network card gets a fresh random MAC\n"
        "                    (52:54:00:xx:xx:xx) and a vsock device a random CID, unless\n"
        "                    --mac / --vsock say which. Every restore also gives the guest\n"
        "                    a new VM generation ID, so its kernel reseeds its RNG and\n"
        "                    its init takes the new MAC (docs/snapshots.md)\n"
        "  --mac MAC         the next network card's MAC (repeatable, in card order)\n"
        "  --vsock CID[,path=PATH]\n"
        "                    the vsock device's new CID and host socket (see 'nimbus run\n"
        "                    --help'; default path nimbus-vsock-CID.sock)\n"
        "  --paused          stay paused after the restore (resume through the API)\n"
        "  --timings         print to stderr how long the restore took: ms from the\n"
        "                    command's start until the machine was rebuilt and loaded,\n"
        "                    and until it was resumed (the process's own start, about\n"
        "                    10 ms, comes before; measure it from outside)\n"
        "  --console WHERE   stdio (default), file:PATH or socket:PATH\n"
        "  --api PATH        serve the VM's control API at PATH (docs/api.md)\n"
        CLI_SANDBOX_USAGE
        "  --jit on|off, --jit-cache SIZE, --jit-threshold N\n"
        "                    the binary translator, as for 'nimbus run'\n"
        "\n"
        "Exit status: as for 'nimbus run'; 1 with a message when the snapshot can't be\n"
        "restored (damaged, from a newer Nimbus, a disk that changed).\n");
}

static void say_listening(void *opaque, const char *addr)
{
    (void)opaque;
    fprintf(stderr, "nimbus restore: waiting for a migration on %s\n", addr);
}

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "nimbus restore: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 1;
}

int cmd_restore(int argc, char **argv)
{
    static const struct option options[] = {
        { "disk", required_argument, NULL, 'D' },
        { "incoming", required_argument, NULL, 'I' },
        { "force-disks", no_argument, NULL, 'f' },
        { "memory", required_argument, NULL, 'M' },
        { "paused", no_argument, NULL, 'p' },
        { "clone", no_argument, NULL, 'L' },
        { "timings", no_argument, NULL, 'S' },
        { "mac", required_argument, NULL, 'A' },
        { "vsock", required_argument, NULL, 'V' },
        { "console", required_argument, NULL, 'c' },
        { "api", required_argument, NULL, 'K' },
        { "net", required_argument, NULL, 'N' },
        CLI_SANDBOX_OPTIONS,
        { "jit", required_argument, NULL, 'J' },
        { "jit-cache", required_argument, NULL, 'C' },
        { "jit-threshold", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct vm_restore_options o = { .memory = VM_RESTORE_LAZY, .console_kind = CONSOLE_STDIO,
                                    .jit = JIT_DEFAULT_ON, .jit_threshold = JIT_THRESHOLD };
    const char *api_path = NULL, *incoming = NULL;
    bool paused = false, clone = false, timings = false;
    int64_t t0 = cli_now_ns();
    char err[1024];
    int opt;
    struct sandbox_options sbo = { 0 };
    struct sandbox sb;
    char fd_names[VIRT_MAX_DISKS][PATH_MAX];   /* --disk fd=N: what each was opened as */

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'D':
            if (o.ndisks >= VIRT_MAX_DISKS)
                return fail("too many --disk options (at most %s)", "one per saved disk");
            if (!strncmp(optarg, "fd=", 3)) {
                if (cli_parse_fd(optarg + 3, &o.disk_fd[o.ndisks], fd_names[o.ndisks], PATH_MAX,
                                 err, sizeof(err)))
                    return fail("--disk: %s", err);
                o.disk_by_fd[o.ndisks] = true;
                o.disks[o.ndisks] = fd_names[o.ndisks];
                o.ndisks++;
                break;
            }
            o.disks[o.ndisks++] = *optarg ? optarg : NULL;
            break;
        case 'N': {
            char name[PATH_MAX];
            if (strncmp(optarg, "tap,fd=", 7))
                return fail("invalid --net '%s' (a restore takes only tap,fd=N)", optarg);
            if (o.ntap_fds >= VIRT_MAX_NETS)
                return fail("too many --net options (%s)", "one per tap card");
            if (cli_parse_fd(optarg + 7, &o.tap_fds[o.ntap_fds], name, sizeof(name), err,
                             sizeof(err)))
                return fail("--net tap: %s", err);
            o.ntap_fds++;
            break;
        }
        case CLI_OPT_SANDBOX:
        case CLI_OPT_RUN_AS:
            if (cli_sandbox_option(opt, optarg, &sbo, err, sizeof(err)))
                return fail("%s", err);
            break;
        case 'f': o.force_disks = true; break;
        case 'I': incoming = optarg; break;
        case 'M':
            if (cli_parse_restore_memory(optarg, &o.memory))
                return fail("invalid --memory '%s' (lazy, eager or uffd)", optarg);
            break;
        case 'p': paused = true; break;
        case 'L': clone = true; break;
        case 'S': timings = true; break;
        case 'A':
            if (o.nmacs >= VIRT_MAX_NETS)
                return fail("too many --mac options (%s)", "one per network card");
            if (net_parse_mac(optarg, o.macs[o.nmacs]))
                return fail("invalid --mac '%s' (e.g. 52:54:00:12:34:56, not multicast)", optarg);
            o.nmacs++;
            break;
        case 'V':
            if (cli_parse_vsock(optarg, &o.vsock_cid, o.vsock_path, sizeof(o.vsock_path), err,
                                sizeof(err)))
                return fail("%s", err);
            break;
        case 'c':
            if (console_parse(optarg, &o.console_kind, o.console_path, sizeof(o.console_path),
                              err, sizeof(err)))
                return fail("%s", err);
            break;
        case 'K':
            if (!*optarg)
                return fail("%s", "--api needs a path");
            api_path = optarg;
            break;
        case 'J':
            if (cli_parse_jit(optarg, &o.jit))
                return fail("invalid --jit '%s' (on or off)", optarg);
            break;
        case 'C':
            if (cli_parse_jit_cache(optarg, &o.jit_cache))
                return fail("invalid --jit-cache '%s' (64K to 2G)", optarg);
            break;
        case 'T':
            if (cli_parse_jit_threshold(optarg, &o.jit_threshold))
                return fail("invalid --jit-threshold '%s' (0 to 65535)", optarg);
            break;
        case 'h':
            restore_usage(stdout);
            return 0;
        case ':':
            return fail("option '%s' needs an argument", argv[optind - 1]);
        default:
            return fail("unknown option '%s' (try 'nimbus restore --help')", argv[optind - 1]);
        }
    }
    if (optind >= argc && !incoming)
        return fail("%s", "which snapshot? (nimbus restore SNAPSHOT-DIRECTORY)");
    if (!incoming)
        o.path = argv[optind++];
    if (optind < argc)
        return fail("unexpected argument '%s' (try 'nimbus restore --help')", argv[optind]);

    if (clone && cli_clone_identity(&o))
        return fail("%s", "no randomness from the host for the clone's MACs and CID");

    if (cli_sandbox_enter(&sbo, &sb, "nimbus restore"))
        return 1;
    struct virt_machine *m;
    struct virt_config_strings strs;
    if (incoming) {
        struct vm_incoming_options io = { .restore = o, .listen = incoming, .rfd = -1,
                                          .wfd = -1, .listening = say_listening };
        bool stay_paused = false;
        /* The guest stands still from the source's pause until it runs
         * here: the API's library is loaded before, not after GO. */
        if (api_path && api_preload(err, sizeof(err)))
            return fail("%s", err);
        if (vm_migrate_incoming(&io, &m, &strs, &stay_paused, err, sizeof(err)))
            return fail("incoming migration: %s", err);
        paused |= stay_paused;
    } else if (vm_snapshot_restore(&o, &m, &strs, err, sizeof(err))) {
        return fail("%s", err);
    }
    int64_t t_loaded = cli_now_ns();
    struct api *api = NULL;
    if (api_path && api_open(api_path, m, &api, err, sizeof(err))) {
        vm_migrate_free(m);
        virt_destroy(m);
        virt_config_strings_free(&strs);
        return fail("%s", err);
    }
    /* Start-up is over: every file, socket and device thread is open. */
    if (cli_sandbox_lock(&sb, &m->config, "nimbus restore")) {
        api_close(api);
        virt_destroy(m);
        virt_config_strings_free(&strs);
        return 1;
    }
    if (!paused && virt_resume(m, err, sizeof(err))) {
        api_close(api);
        vm_migrate_free(m);
        virt_destroy(m);
        virt_config_strings_free(&strs);
        return fail("%s", err);
    }
    if (timings)
        fprintf(stderr, "nimbus restore: timings (ms since the command started): loaded %.1f, "
                "resumed %.1f\n", (double)(t_loaded - t0) / 1e6, (double)(cli_now_ns() - t0) / 1e6);
    struct vm_io_source src = api ? api_io_source(api) : (struct vm_io_source){ 0 };
    int status = vm_run_io(m, api ? &src : NULL);
    api_close(api);
    vm_migrate_free(m);
    virt_destroy(m);
    virt_config_strings_free(&strs);
    return status;
}
