/* nimbus run: build a virt machine from options and run it. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/control.h"
#include "api/control_vm.h"
#include "cli/cli.h"
#include "machine/virt.h"
#include "vm/vm.h"

static void run_usage(FILE *out)
{
    fprintf(out,
        "usage: nimbus run --kernel FILE [options]\n"
        "       nimbus run --bios PROGRAM.elf [options]\n"
        "\n"
        "Boots the RISC-V 'virt' board (QEMU-compatible memory map).\n"
        "\n"
        "  --kernel FILE     Linux kernel: RISC-V ELF or flat Image (Debian's vmlinux-*)\n"
        "  --initrd FILE     initial ramdisk\n"
        "  --append ARGS     kernel command line\n"
        "  --mem SIZE        guest RAM, e.g. 512M, 2G (bare number = MiB; default 512M)\n"
        "  --smp N           number of harts (default 1, at most %u)\n"
        "  --bios FILE       M-mode firmware (ELF or flat binary, e.g. OpenSBI fw_dynamic.bin)\n"
        "                    instead of the built-in SBI. Without --kernel, runs FILE as a\n"
        "                    bare-metal program: every hart starts in M-mode at its entry;\n"
        "                    an ELF with a 'tohost' symbol reports through HTIF, and nimbus\n"
        "                    exits with its status (0 pass, n for fail code n)\n"
        "  --console WHERE   stdio (default; Ctrl-A x quits, Ctrl-A h helps),\n"
        "                    file:PATH (output only) or socket:PATH (unix socket server)\n"
        "  --disk PATH[,format=raw|qcow2][,readonly][,cache=none|writeback]\n"
        "                    a virtio-blk disk (repeatable, at most %u; the first is\n"
        "                    /dev/vda). format: probed when not given (a qcow2 header\n"
        "                    means qcow2); format=raw on a file with a qcow2 header is\n"
        "                    refused. readonly: the guest sees a read-only disk.\n"
        "                    cache=writeback (default): host page cache, made durable\n"
        "                    when the guest flushes; cache=none: O_DIRECT (where the\n"
        "                    file system refuses it, every write is synced instead).\n"
        "                    PATH may not contain commas.\n"
        "  --balloon[=OPTS]  a virtio-balloon device: the host sets a target through\n"
        "                    --control and the guest gives that much memory back (the\n"
        "                    VMM's RSS falls). OPTS, comma-separated (note the '='):\n"
        "                    reporting=on|off    free page reporting: memory the guest\n"
        "                                        frees goes back to the host within\n"
        "                                        seconds (default on)\n"
        "                    deflate-on-oom=on|off  the guest takes pages back from the\n"
        "                                        balloon rather than run out of memory\n"
        "                                        (default on)\n"
        "                    stats=SECONDS       ask the guest for memory statistics this\n"
        "                                        often (default 2; 0: only on request)\n"
        "  --control PATH    serve a control socket (unix stream) at PATH: one JSON\n"
        "                    request per line, one JSON reply per line:\n"
        "                      {\"cmd\":\"status\"}  harts, RAM, the VMM's RSS\n"
        "                      {\"cmd\":\"balloon\",\"target_mib\":N}  balloon target\n"
        "                      {\"cmd\":\"balloon-stats\"}  balloon size, guest statistics\n"
        "                    errors are {\"error\":\"...\"}; lines are limited to 4 KiB.\n"
        "                    A stale socket at PATH is replaced, any other file refused;\n"
        "                    the socket is removed on exit\n"
        "  --dump-dtb FILE   also write the generated device tree blob to FILE\n"
        "  -h, --help        this text\n"
        "\n"
        "Exit status: 0 when the guest powers off (or on Ctrl-A x), the guest's code\n"
        "when it exits through the test finisher with a failure code, 1 on errors.\n"
        "A guest reboot restarts the machine in the same process.\n"
        "\n"
        "Devices: the virtio-mmio slots at 0x10001000 + n*0x1000 (PLIC IRQ 1+n) hold\n"
        "the disks from slot 0 in the order given, then the balloon (with --balloon),\n"
        "and a virtio-rng entropy device in the last slot (0x10008000, IRQ 8).\n",
        VIRT_MAX_HARTS, VIRT_MAX_DISKS);
}

int cli_parse_size(const char *s, unsigned long long *bytes)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return -EINVAL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -EINVAL;
    unsigned shift;
    switch (*end) {
    case '\0': shift = 20; break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: return -EINVAL;
    }
    if (*end == 'i' || *end == 'B' || *end == 'b')
        end += (*end == 'i' && (end[1] == 'B' || end[1] == 'b')) ? 2 : 1;
    if (*end || v > (ULLONG_MAX >> shift))
        return -EINVAL;
    *bytes = v << shift;
    return 0;
}

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "nimbus run: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    return 1;
}

/* PATH[,format=raw|qcow2][,readonly][,cache=none|writeback] into `d`;
 * `d->path` points into `arg`, which is cut at the first comma. */
static int parse_disk(char *arg, struct virt_disk *d)
{
    char *save = NULL;
    char *path = strtok_r(arg, ",", &save);
    if (!path || !*path || arg[0] == ',')
        return fail("%s", "--disk needs a path (--disk PATH[,format=...][,readonly][,cache=...])");
    *d = (struct virt_disk){ .path = path };
    for (char *o; (o = strtok_r(NULL, ",", &save));) {
        if (!strcmp(o, "format=raw"))
            d->opts.format = BLOCK_FORMAT_RAW;
        else if (!strcmp(o, "format=qcow2"))
            d->opts.format = BLOCK_FORMAT_QCOW2;
        else if (!strcmp(o, "readonly"))
            d->opts.readonly = true;
        else if (!strcmp(o, "cache=none"))
            d->opts.cache = BLOCK_CACHE_NONE;
        else if (!strcmp(o, "cache=writeback"))
            d->opts.cache = BLOCK_CACHE_WRITEBACK;
        else
            return fail("unknown --disk option '%s' (format=raw|qcow2, readonly, "
                        "cache=none|writeback)", o);
    }
    return 0;
}

/* OPTS of --balloon=OPTS (NULL: plain --balloon) into `o`. */
static int parse_balloon(char *arg, struct virtio_balloon_options *o)
{
    *o = (struct virtio_balloon_options){
        .deflate_on_oom = true, .reporting = true, .stats_interval_ms = 2000,
    };
    char *save = NULL;
    for (char *t = arg ? strtok_r(arg, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
        char *v = strchr(t, '=');
        if (v)
            *v++ = '\0';
        bool *flag = !strcmp(t, "reporting") ? &o->reporting
                     : !strcmp(t, "deflate-on-oom") ? &o->deflate_on_oom : NULL;
        if (flag && v && (!strcmp(v, "on") || !strcmp(v, "off"))) {
            *flag = !strcmp(v, "on");
        } else if (!strcmp(t, "stats") && v) {
            char *end;
            errno = 0;
            long n = strtol(v, &end, 10);
            if (errno || end == v || *end || n < 0 || n > 3600)
                return fail("invalid --balloon stats=%s (seconds, 0 to 3600)", v);
            o->stats_interval_ms = (unsigned)n * 1000;
        } else {
            return fail("invalid --balloon option '%s' (reporting=on|off, deflate-on-oom=on|off, "
                        "stats=SECONDS)", t);
        }
    }
    return 0;
}

static int check_readable(const char *what, const char *path)
{
    if (access(path, R_OK)) {
        fprintf(stderr, "nimbus run: cannot read %s %s: %s\n", what, path, strerror(errno));
        return -1;
    }
    return 0;
}

int cmd_run(int argc, char **argv)
{
    static const struct option options[] = {
        { "kernel", required_argument, NULL, 'k' },
        { "initrd", required_argument, NULL, 'i' },
        { "append", required_argument, NULL, 'a' },
        { "mem", required_argument, NULL, 'm' },
        { "smp", required_argument, NULL, 's' },
        { "bios", required_argument, NULL, 'b' },
        { "console", required_argument, NULL, 'c' },
        { "dump-dtb", required_argument, NULL, 'd' },
        { "disk", required_argument, NULL, 'D' },
        { "balloon", optional_argument, NULL, 'B' },
        { "control", required_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct virt_config config = {
        .ram_size = 512ull << 20,
        .nharts = 1,
        .console_kind = CONSOLE_STDIO,
    };
    const char *control_path = NULL;
    char err[512];
    int opt;

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'k': config.kernel = optarg; break;
        case 'i': config.initrd = optarg; break;
        case 'a': config.append = optarg; break;
        case 'b': config.bios = optarg; break;
        case 'd': config.dump_dtb = optarg; break;
        case 'D':
            if (config.ndisks >= VIRT_MAX_DISKS) {
                fprintf(stderr, "nimbus run: too many --disk options (at most %u)\n", VIRT_MAX_DISKS);
                return 1;
            }
            if (parse_disk(optarg, &config.disks[config.ndisks]))
                return 1;
            config.ndisks++;
            break;
        case 'B':
            if (parse_balloon(optarg, &config.balloon_opts))
                return 1;
            config.balloon = true;
            break;
        case 'C':
            if (!*optarg)
                return fail("%s", "--control needs a path");
            control_path = optarg;
            break;
        case 'm': {
            unsigned long long bytes;
            if (cli_parse_size(optarg, &bytes))
                return fail("invalid --mem '%s' (use e.g. 512M or 2G)", optarg);
            long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
            if (pages > 0 && page > 0 && bytes > (unsigned long long)pages * (unsigned long long)page)
                return fail("--mem %s is more than this host's memory", optarg);
            if (bytes < VIRT_MIN_RAM)
                return fail("--mem %s is too small (at least 16M)", optarg);
            config.ram_size = bytes;
            break;
        }
        case 's': {
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || n < 1 || n > VIRT_MAX_HARTS) {
                fprintf(stderr, "nimbus run: invalid --smp '%s' (1 to %u)\n", optarg, VIRT_MAX_HARTS);
                return 1;
            }
            config.nharts = (unsigned)n;
            break;
        }
        case 'c':
            if (console_parse(optarg, &config.console_kind, config.console_path,
                              sizeof(config.console_path), err, sizeof(err))) {
                fprintf(stderr, "nimbus run: %s\n", err);
                return 1;
            }
            break;
        case 'h':
            run_usage(stdout);
            return 0;
        case ':':
            return fail("option '%s' needs an argument", argv[optind - 1]);
        default:
            return fail("unknown option '%s' (try 'nimbus run --help')", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail("unexpected argument '%s' (try 'nimbus run --help')", argv[optind]);
    if (!config.kernel && !config.bios)
        return fail("%s", "give --kernel FILE (or --bios PROGRAM for a bare-metal run)");
    if ((config.kernel && check_readable("kernel", config.kernel)) ||
        (config.initrd && check_readable("initrd", config.initrd)) ||
        (config.bios && check_readable("firmware", config.bios)))
        return 1;
    if (config.initrd && !config.kernel)
        return fail("%s", "--initrd needs --kernel");

    struct virt_machine *m;
    if (virt_create(&config, &m, err, sizeof(err))) {
        fprintf(stderr, "nimbus run: %s\n", err);
        return 1;
    }
    struct control *ctl = NULL;
    if (control_path) {
        struct control_ops ops = { .handle = control_vm_handle, .opaque = m };
        if (control_open(control_path, &ops, &ctl, err, sizeof(err))) {
            fprintf(stderr, "nimbus run: %s\n", err);
            virt_destroy(m);
            return 1;
        }
    }
    struct vm_io_source src = ctl ? control_io_source(ctl) : (struct vm_io_source){ 0 };
    int status = vm_run_io(m, ctl ? &src : NULL);
    control_close(ctl);
    virt_destroy(m);
    return status;
}
