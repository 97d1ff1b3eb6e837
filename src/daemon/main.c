/* nimbusd: the host daemon's entry point (daemon.h, docs/daemon.md). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

static const char usage[] =
    "usage: nimbusd [options]\n"
    "\n"
    "The Nimbus host daemon: keeps VM definitions (sqlite3), starts each VM as\n"
    "its own confined 'nimbus run' process, and serves the host's API on a unix\n"
    "socket (docs/daemon.md). VMs keep running when nimbusd stops; a restarted\n"
    "nimbusd finds them again. SIGTERM or SIGINT stops it.\n"
    "\n"
    "  --socket PATH     the API socket (default: RUN_DIR/nimbusd.sock)\n"
    "  --run-dir DIR     sockets and exit records of the VMs (default /run/nimbus as\n"
    "                    root, else $XDG_RUNTIME_DIR/nimbus or /tmp/nimbus-UID)\n"
    "  --data-dir DIR    the database and each VM's log and saved state (default\n"
    "                    /var/lib/nimbus as root, else $XDG_DATA_HOME/nimbus or\n"
    "                    ~/.local/share/nimbus)\n"
    "  --nimbus PATH     the VM binary (default: 'nimbus' beside nimbusd)\n"
    "  --no-sandbox      start VMs without --sandbox (no seccomp filter)\n"
    "  --no-autostart    do not start the VMs marked autostart\n"
    "  --vm-uid-base N   as root, each VM's process runs as a user of its own,\n"
    "                    uid = gid from N on (default 1000000; 0: as root)\n"
    "  --help, --version\n";

static int copy_opt(char *dst, size_t n, const char *src, const char *opt)
{
    if (strlen(src) >= n) {
        fprintf(stderr, "nimbusd: %s: too long\n", opt);
        return -1;
    }
    snprintf(dst, n, "%s", src);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--shim"))
        return supervisor_shim_main(argc, argv);

    struct daemon_config cfg;
    char err[512];
    if (nimbusd_default_config(&cfg, err, sizeof(err))) {
        fprintf(stderr, "nimbusd: %s\n", err);
        return 1;
    }
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "run-dir", required_argument, NULL, 'r' },
        { "data-dir", required_argument, NULL, 'd' },
        { "nimbus", required_argument, NULL, 'n' },
        { "no-sandbox", no_argument, NULL, 'S' },
        { "no-autostart", no_argument, NULL, 'A' },
        { "vm-uid-base", required_argument, NULL, 'U' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    bool socket_given = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 's':
            bad = copy_opt(cfg.socket_path, sizeof(cfg.socket_path), optarg, "--socket");
            socket_given = true;
            break;
        case 'r':
            bad = copy_opt(cfg.run_dir, sizeof(cfg.run_dir), optarg, "--run-dir");
            break;
        case 'd':
            bad = copy_opt(cfg.data_dir, sizeof(cfg.data_dir), optarg, "--data-dir");
            break;
        case 'n':
            bad = copy_opt(cfg.nimbus_bin, sizeof(cfg.nimbus_bin), optarg, "--nimbus");
            break;
        case 'S':
            cfg.sandbox = false;
            break;
        case 'A':
            cfg.autostart = false;
            break;
        case 'U': {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (*end || v < 0 || v > 4000000000LL - ND_VM_UIDS || (v > 0 && v < 1000)) {
                fprintf(stderr, "nimbusd: --vm-uid-base: 0, or from 1000 to %lld\n",
                        4000000000LL - ND_VM_UIDS);
                return 2;
            }
            cfg.vm_uid_base = v;
            break;
        }
        case 'h':
            fputs(usage, stdout);
            return 0;
        case 'V':
            puts("nimbusd 0.1.0");
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
        if (bad)
            return 2;
    }
    if (cfg.vm_uid_base && geteuid() != 0) {
        fprintf(stderr, "nimbusd: --vm-uid-base needs root (VMs run as the daemon's user)\n");
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "nimbusd: unexpected argument '%s'\n%s", argv[optind], usage);
        return 2;
    }
    if (!socket_given &&
        snprintf(cfg.socket_path, sizeof(cfg.socket_path), "%s/nimbusd.sock", cfg.run_dir) >=
            (int)sizeof(cfg.socket_path)) {
        fprintf(stderr, "nimbusd: %s/nimbusd.sock: too long for a socket (--socket)\n",
                cfg.run_dir);
        return 2;
    }

    /* Every thread inherits this mask; the main thread takes the signals. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct nimbusd *d;
    if (nimbusd_open(&cfg, &d, err, sizeof(err))) {
        fprintf(stderr, "nimbusd: %s\n", err);
        return 1;
    }
    fprintf(stderr, "nimbusd: serving on %s (data in %s)\n", cfg.socket_path, cfg.data_dir);
    if (cfg.autostart)
        nd_autostart(d);
    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {
        /* Nothing to reload yet. */
    }
    fprintf(stderr, "nimbusd: stopping (signal %d); the VMs keep running\n", sig);
    nimbusd_close(d);
    return 0;
}
