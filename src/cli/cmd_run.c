/* nimbus run: build a virt machine from options and run it. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cpu/jit/jit.h"
#include "machine/virt.h"
#include "net/mac.h"
#include "vm/migrate.h"
#include "vm/sandbox.h"
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
        "  --kernel-format auto|raw\n"
        "                    auto (default): FILE must be an ELF or an Image; raw: load\n"
        "                    FILE as it is at 0x80200000 and start there, e.g. U-Boot's\n"
        "                    qemu-riscv64_smode/u-boot.bin\n"
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
        "  --console virtio[,WHERE]\n"
        "                    the console is a virtio-console, the guest's hvc0, on the\n"
        "                    same backends (WHERE as above, default stdio). Put\n"
        "                    console=hvc0 on the kernel command line (and earlycon=sbi\n"
        "                    to see the boot log from before hvc0 is up). The UART\n"
        "                    stays on the board: its output (earlycon, console=ttyS0)\n"
        "                    goes to the same backend; input goes to hvc0 only.\n"
        "  --vsock CID[,path=PATH]\n"
        "                    a virtio-vsock device; the guest's CID is CID (>= 3). The\n"
        "                    host side is the unix socket PATH (default\n"
        "                    nimbus-vsock-CID.sock), Firecracker-style: a host program\n"
        "                    connects to PATH, writes \"CONNECT PORT\\n\", reads\n"
        "                    \"OK HOSTPORT\\n\" and then talks to the guest's listener on\n"
        "                    PORT; a guest connection to CID 2 port P goes to the unix\n"
        "                    socket PATH_P if something listens there.\n"
        "  --disk PATH|fd=N[,format=raw|qcow2][,readonly][,cache=none|writeback]\n"
        "                    a virtio-blk disk (repeatable, at most %u, one fewer each\n"
        "                    for --console virtio and --vsock; the first is\n"
        "                    /dev/vda). format: probed when not given (a qcow2 header\n"
        "                    means qcow2); format=raw on a file with a qcow2 header is\n"
        "                    refused. readonly: the guest sees a read-only disk.\n"
        "                    cache=writeback (default): host page cache, made durable\n"
        "                    when the guest flushes; cache=none: O_DIRECT (where the\n"
        "                    file system refuses it, every write is synced instead).\n"
        "                    PATH may not contain commas. fd=N: the image is the\n"
        "                    open descriptor N, handed in by the caller (nimbusd),\n"
        "                    so this process needs no access to the file by name;\n"
        "                    open for reading and writing unless readonly\n"
        "                    (qcow2 backing files are still opened by name).\n"
        "  --net user[,hostfwd=RULE]...[,mac=MAC]\n"
        "                    a virtio-net card on user-mode NAT (libslirp, QEMU's\n"
        "                    addresses): network 10.0.2.0/24, the host at 10.0.2.2\n"
        "                    (its 127.0.0.1 too), DNS 10.0.2.3, DHCP gives 10.0.2.15.\n"
        "                    The guest reaches what this user's sockets could.\n"
        "                    hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT\n"
        "                    (repeatable) forwards a host port into the guest; an\n"
        "                    empty HOSTADDR is 127.0.0.1 (QEMU: every address; give\n"
        "                    0.0.0.0 for that), an empty GUESTADDR 10.0.2.15.\n"
        "  --net tap,ifname=NAME|fd=N[,mac=MAC]\n"
        "                    a virtio-net card on the tap interface NAME (made for\n"
        "                    the run if missing; needs CAP_NET_ADMIN, or a tap made\n"
        "                    for this user with 'ip tuntap add NAME mode tap user\n"
        "                    USER'), with checksum and TSO offloads passed through.\n"
        "                    fd=N instead of ifname: a /dev/net/tun descriptor the\n"
        "                    caller attached (TUNSETIFF with IFF_TAP, IFF_NO_PI and\n"
        "                    IFF_VNET_HDR), so this process needs neither\n"
        "                    CAP_NET_ADMIN nor /dev/net/tun.\n"
        "                    --net is repeatable; the n-th card's MAC defaults to\n"
        "                    52:54:00:12:34:56+n (QEMU's). At most %u --disk and\n"
        "                    --net options together.\n"
        "  --balloon[=OPTS]  a virtio-balloon device: the host sets a target through\n"
        "                    --api and the guest gives that much memory back (the\n"
        "                    VMM's RSS falls). OPTS, comma-separated (note the '='):\n"
        "                    reporting=on|off    free page reporting: memory the guest\n"
        "                                        frees goes back to the host within\n"
        "                                        seconds (default on)\n"
        "                    deflate-on-oom=on|off  the guest takes pages back from the\n"
        "                                        balloon rather than run out of memory\n"
        "                                        (default on)\n"
        "                    stats=SECONDS       ask the guest for memory statistics this\n"
        "                                        often (default 2; 0: only on request)\n"
        "  --watchdog[=ACTION]\n"
        "                    a watchdog the guest's kernel drives: an Allwinner sun6i\n"
        "                    watchdog at 0x103000 (IRQ 13; Linux's sunxi_wdt, which\n"
        "                    Debian's riscv64 kernel has as a module; the guest pets\n"
        "                    /dev/watchdog, e.g. busybox watchdog). When it expires:\n"
        "                    a line on stderr, a \"watchdog\" event on the --api event\n"
        "                    stream, and ACTION (note the '='): reset (default; the\n"
        "                    guest reboots in this process), poweroff (nimbus exits\n"
        "                    0, as on a guest power-off), pause (PUT /vm/resume goes\n"
        "                    on) or none. Without --watchdog the board has none\n"
        "  --on-panic ACTION what to do when the guest's kernel panics: none (default:\n"
        "                    the guest's own panic= setting decides), pause or\n"
        "                    poweroff. Any action, none too, gives a line on stderr\n"
        "                    and a \"guest_panic\" event, once per boot. The panic is\n"
        "                    found by the kernel's \"Kernel panic - not syncing\" line on\n"
        "                    the console (Debian's kernel has no pvpanic): a\n"
        "                    heuristic that the guest itself can fool (docs/api.md)\n"
        "  --api PATH        serve the VM's control API at PATH: HTTP/1.1 + JSON on a\n"
        "                    unix socket (owner only): state, pause, resume, shutdown,\n"
        "                    destroy, reset, snapshot, balloon, counters, an event\n"
        "                    stream (docs/api.md; 'nimbus status --api PATH' and the\n"
        "                    other commands speak it). A stale socket at PATH is\n"
        "                    replaced, a live one or any other file refused; the\n"
        "                    socket is removed on exit\n"
        CLI_SANDBOX_USAGE
        "  --dump-dtb FILE   also write the generated device tree blob to FILE\n"
        "  --jit on|off      binary translator: hot code runs as x86-64 host code\n"
        "                    (default on; off runs the interpreter, its reference)\n"
        "  --jit-cache SIZE  translator code cache per hart (default 64M)\n"
        "  --jit-stats       print translator statistics per hart at exit\n"
        "  --jit-threshold N translate a block after N executions (default %u;\n"
        "                    0 translates everything, for testing)\n"
        "  --jit-dump FILE   write each translated unit to FILE: its guest code and\n"
        "                    the x86-64 code emitted, disassembled (libcapstone4)\n"
        "  --jit-perf-map    name translated code for perf in /tmp/perf-PID.map\n"
        "  -h, --help        this text\n"
        "\n"
        "Exit status: 0 when the guest powers off (or on Ctrl-A x), the guest's code\n"
        "when it exits through the test finisher with a failure code (1-255; any\n"
        "other failure code exits 255 and is printed in full), 1 on errors.\n"
        "A guest reboot restarts the machine in the same process.\n"
        "\n"
        "Devices: the virtio-mmio slots at 0x10001000 + n*0x1000 (PLIC IRQ 1+n) hold\n"
        "the disks from slot 0 in the order given, then the network cards in the\n"
        "order given, then the virtio console, the vsock device and the balloon\n"
        "(when asked for) in the next free slots, and a virtio-rng entropy device\n"
        "in the last slot (0x10008000, IRQ 8).\n",
        VIRT_MAX_HARTS, VIRT_MAX_DISKS, VIRT_VIRTIO_SLOTS - 1, JIT_THRESHOLD);
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

/* PATH|fd=N[,format=raw|qcow2][,readonly][,cache=none|writeback] into
 * `d`; `d->path` points into `arg`, which is cut at the first comma, or for
 * fd=N to `fd_name` (PATH_MAX bytes), the file it was opened as. */
static int parse_disk(char *arg, struct virt_disk *d, char *fd_name)
{
    char err[256];
    char *save = NULL;
    char *path = strtok_r(arg, ",", &save);
    if (!path || !*path || arg[0] == ',')
        return fail("%s", "--disk needs a path (--disk PATH|fd=N[,format=...][,readonly]"
                          "[,cache=...])");
    *d = (struct virt_disk){ .path = path };
    if (!strncmp(path, "fd=", 3)) {
        if (cli_parse_fd(path + 3, &d->opts.fd, fd_name, PATH_MAX, err, sizeof(err)))
            return fail("--disk: %s", err);
        d->opts.by_fd = true;
        d->path = fd_name;
    }
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
    if (d->opts.by_fd && cli_check_disk_fd(d->opts.fd, d->opts.readonly, err, sizeof(err)))
        return fail("%s", err);
    return 0;
}

/* user[,hostfwd=...]...[,mac=...] or tap,ifname=NAME[,mac=...] into `n`. */
static int parse_net(char *arg, struct virt_net *n)
{
    char err[256];
    char *save = NULL;
    char *kind = strtok_r(arg, ",", &save);
    *n = (struct virt_net){ 0 };
    if (kind && !strcmp(kind, "user"))
        n->kind = VIRT_NET_USER;
    else if (kind && !strcmp(kind, "tap"))
        n->kind = VIRT_NET_TAP;
    else
        return fail("%s", "--net needs a kind: user[,hostfwd=...][,mac=...] or "
                          "tap,ifname=NAME|fd=N[,mac=...]");
    for (char *o; (o = strtok_r(NULL, ",", &save));) {
        if (!strncmp(o, "mac=", 4)) {
            if (net_parse_mac(o + 4, n->mac))
                return fail("bad --net mac '%s' (six hex bytes like 52:54:00:12:34:56, "
                            "not multicast)", o + 4);
            n->has_mac = true;
        } else if (n->kind == VIRT_NET_USER && !strncmp(o, "hostfwd=", 8)) {
            if (n->user.nfwd >= NET_MAX_HOSTFWD) {
                fprintf(stderr, "nimbus run: at most %u hostfwd= per --net\n", NET_MAX_HOSTFWD);
                return 1;
            }
            if (net_parse_hostfwd(o + 8, &n->user.fwd[n->user.nfwd], err, sizeof(err)))
                return fail("--net user: %s", err);
            n->user.nfwd++;
        } else if (n->kind == VIRT_NET_TAP && !strncmp(o, "ifname=", 7)) {
            if (!o[7] || strlen(o + 7) >= sizeof(n->ifname))
                return fail("bad --net tap ifname '%s' (1 to 15 characters)", o + 7);
            snprintf(n->ifname, sizeof(n->ifname), "%s", o + 7);
        } else if (n->kind == VIRT_NET_TAP && !strncmp(o, "fd=", 3)) {
            char name[PATH_MAX];
            if (cli_parse_fd(o + 3, &n->tap_fd, name, sizeof(name), err, sizeof(err)))
                return fail("--net tap: %s", err);
            n->tap_by_fd = true;
        } else {
            return fail(n->kind == VIRT_NET_USER
                            ? "unknown --net user option '%s' (hostfwd=, mac=)"
                            : "unknown --net tap option '%s' (ifname=, fd=, mac=)", o);
        }
    }
    if (n->kind == VIRT_NET_TAP && !n->ifname[0] == !n->tap_by_fd)
        return fail("%s", "--net tap needs one of ifname=NAME and fd=N");
    return 0;
}

/* CID[,path=PATH] into the config. */
static int parse_vsock(const char *arg, struct virt_config *c)
{
    char err[256];
    if (cli_parse_vsock(arg, &c->vsock_cid, c->vsock_path, sizeof(c->vsock_path), err,
                        sizeof(err)))
        return fail("%s", err);
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

/* Long options without a short letter (above CLI_OPT_*). */
enum { OPT_JIT_DUMP = 0x200, OPT_JIT_PERF_MAP };

int cmd_run(int argc, char **argv)
{
    static const struct option options[] = {
        { "kernel", required_argument, NULL, 'k' },
        { "kernel-format", required_argument, NULL, 'F' },
        { "initrd", required_argument, NULL, 'i' },
        { "append", required_argument, NULL, 'a' },
        { "mem", required_argument, NULL, 'm' },
        { "smp", required_argument, NULL, 's' },
        { "bios", required_argument, NULL, 'b' },
        { "console", required_argument, NULL, 'c' },
        { "dump-dtb", required_argument, NULL, 'd' },
        { "jit", required_argument, NULL, 'J' },
        { "jit-cache", required_argument, NULL, 'C' },
        { "jit-stats", no_argument, NULL, 'S' },
        { "jit-threshold", required_argument, NULL, 'T' },
        { "jit-dump", required_argument, NULL, OPT_JIT_DUMP },
        { "jit-perf-map", no_argument, NULL, OPT_JIT_PERF_MAP },
        { "disk", required_argument, NULL, 'D' },
        { "net", required_argument, NULL, 'N' },
        { "vsock", required_argument, NULL, 'V' },
        { "balloon", optional_argument, NULL, 'B' },
        { "api", required_argument, NULL, 'K' },
        { "watchdog", optional_argument, NULL, 'W' },
        { "on-panic", required_argument, NULL, 'P' },
        CLI_SANDBOX_OPTIONS,
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct virt_config config = {
        .ram_size = 512ull << 20,
        .nharts = 1,
        .console_kind = CONSOLE_STDIO,
        .jit = JIT_DEFAULT_ON,
        .jit_threshold = JIT_THRESHOLD,
    };
    const char *api_path = NULL;
    char err[512];
    int opt;
    bool jit_stats = false;
    struct sandbox_options sbo = { 0 };
    struct sandbox sb;
    char fd_names[VIRT_MAX_DISKS][PATH_MAX];   /* --disk fd=N: what each was opened as */

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (opt) {
        case 'k': config.kernel = optarg; break;
        case 'F':
            if (!strcmp(optarg, "raw"))
                config.kernel_raw = true;
            else if (strcmp(optarg, "auto"))
                return fail("invalid --kernel-format '%s' (auto or raw)", optarg);
            else
                config.kernel_raw = false;
            break;
        case 'i': config.initrd = optarg; break;
        case 'a': config.append = optarg; break;
        case 'b': config.bios = optarg; break;
        case 'd': config.dump_dtb = optarg; break;
        case 'D':
            if (config.ndisks >= VIRT_MAX_DISKS) {
                fprintf(stderr, "nimbus run: too many --disk options (at most %u)\n", VIRT_MAX_DISKS);
                return 1;
            }
            if (parse_disk(optarg, &config.disks[config.ndisks], fd_names[config.ndisks]))
                return 1;
            config.ndisks++;
            break;
        case 'N':
            if (config.nnets >= VIRT_MAX_NETS) {
                fprintf(stderr, "nimbus run: too many --net options (at most %u)\n", VIRT_MAX_NETS);
                return 1;
            }
            if (parse_net(optarg, &config.nets[config.nnets]))
                return 1;
            config.nnets++;
            break;
        case 'B':
            if (parse_balloon(optarg, &config.balloon_opts))
                return 1;
            config.balloon = true;
            break;
        case 'W':
            config.watchdog = true;
            config.watchdog_action = GUEST_ACTION_RESET;
            if (optarg && guest_action_parse(optarg, GUEST_ACTIONS_WATCHDOG,
                                             &config.watchdog_action))
                return fail("invalid --watchdog action '%s' (reset, poweroff, pause or none)",
                            optarg);
            break;
        case 'P':
            if (guest_action_parse(optarg, GUEST_ACTIONS_PANIC, &config.panic_action))
                return fail("invalid --on-panic '%s' (none, pause or poweroff)", optarg);
            break;
        case 'K':
            if (!*optarg)
                return fail("%s", "--api needs a path");
            api_path = optarg;
            break;
        case CLI_OPT_SANDBOX:
        case CLI_OPT_RUN_AS:
            if (cli_sandbox_option(opt, optarg, &sbo, err, sizeof(err)))
                return fail("%s", err);
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
        case 'J':
            if (cli_parse_jit(optarg, &config.jit))
                return fail("invalid --jit '%s' (on or off)", optarg);
            break;
        case 'C':
            if (cli_parse_jit_cache(optarg, &config.jit_cache))
                return fail("invalid --jit-cache '%s' (64K to 2G)", optarg);
            break;
        case 'S': jit_stats = true; break;
        case OPT_JIT_DUMP: config.jit_dump = optarg; break;
        case OPT_JIT_PERF_MAP: config.jit_perf_map = true; break;
        case 'T':
            if (cli_parse_jit_threshold(optarg, &config.jit_threshold))
                return fail("invalid --jit-threshold '%s' (0 to 65535)", optarg);
            break;
        case 'V':
            if (parse_vsock(optarg, &config))
                return 1;
            break;
        case 'c': {
            /* "virtio" or "virtio,WHERE": the same backends behind hvc0. */
            const char *where = optarg;
            config.console_virtio = false;
            if (!strcmp(optarg, "virtio")) {
                config.console_virtio = true;
                where = "stdio";
            } else if (!strncmp(optarg, "virtio,", 7)) {
                config.console_virtio = true;
                where = optarg + 7;
            }
            if (console_parse(where, &config.console_kind, config.console_path,
                              sizeof(config.console_path), err, sizeof(err))) {
                fprintf(stderr, "nimbus run: %s\n", err);
                return 1;
            }
            break;
        }
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
    if (!config.jit && (config.jit_dump || config.jit_perf_map))
        return fail("%s need the translator (not with --jit off)", "--jit-dump and --jit-perf-map");
    if (!config.kernel && !config.bios)
        return fail("%s", "give --kernel FILE (or --bios PROGRAM for a bare-metal run)");
    if ((config.kernel && check_readable("kernel", config.kernel)) ||
        (config.initrd && check_readable("initrd", config.initrd)) ||
        (config.bios && check_readable("firmware", config.bios)))
        return 1;
    if (config.initrd && !config.kernel)
        return fail("%s", "--initrd needs --kernel");
    if (config.ndisks + config.nnets > VIRT_VIRTIO_SLOTS - 1) {
        fprintf(stderr, "nimbus run: at most %u --disk and --net options together\n",
                VIRT_VIRTIO_SLOTS - 1);
        return 1;
    }

    if (cli_sandbox_enter(&sbo, &sb, "nimbus run"))
        return 1;
    struct virt_machine *m;
    if (virt_create(&config, &m, err, sizeof(err))) {
        fprintf(stderr, "nimbus run: %s\n", err);
        return 1;
    }
    struct api *api = NULL;
    if (api_path && api_open(api_path, m, &api, err, sizeof(err))) {
        fprintf(stderr, "nimbus run: %s\n", err);
        virt_destroy(m);
        return 1;
    }
    /* Start-up is over: every file, socket and device thread is open. */
    if (cli_sandbox_lock(&sb, &m->config, "nimbus run")) {
        api_close(api);
        virt_destroy(m);
        return 1;
    }
    struct vm_io_source src = api ? api_io_source(api) : (struct vm_io_source){ 0 };
    int status = vm_run_io(m, api ? &src : NULL);
    api_close(api);
    for (unsigned i = 0; jit_stats && i < m->nharts; i++) {
        char name[32];
        snprintf(name, sizeof(name), "hart %u", i);
        if (m->harts[i]->jit)
            jit_print_stats(m->harts[i]->jit, name, stderr);
    }
    vm_migrate_free(m);
    virt_destroy(m);
    return status;
}
