/* nimbus exec: run one command in a throwaway clone of a snapshot.
 *
 * The clone is restored in this process (vm/snapshot.h, lazily by default)
 * with a clone's identity (fresh MACs, a random vsock CID) and its vsock
 * socket, console log and disk overlays in a private temporary directory.
 * The calling thread becomes the VM's I/O thread (vm_run_io); a worker
 * thread talks to the guest agent (vm/agent_client.h) - or, for a guest
 * without one, types the command into the shell on its console, made a
 * socket for it (vm/console_exec.h) - and, when it has the command's
 * status or gave up, wakes the I/O thread through an eventfd,
 * which stops the VM. A timerfd does the same for --timeout. Then the
 * machine is destroyed (closing its vsock sockets, which also frees a
 * worker still waiting on them), the worker joined, the directory removed.
 *
 * Disks: the clone must never write the snapshot's disks. Each writable
 * disk gets a qcow2 overlay in the temporary directory whose backing file
 * is the saved disk (block/qcow2_create.c): creating one is three small
 * writes, the saved disk is only opened read-only (shared lock), and the
 * overlay goes with the directory. The saved disks are checked as a
 * restore checks them (size, first-64-KiB checksum). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "block/block.h"
#include "cli/cli.h"
#include "cpu/jit/jit.h"
#include "machine/virt_state.h"
#include "state/state.h"
#include "vm/agent_client.h"
#include "vm/console_exec.h"
#include "vm/snapshot.h"
#include "vm/vm.h"

/* The agent's answer to CONNECT: the guest was running when it was saved,
 * so it answers at once unless the host is very loaded. */
#define CONNECT_TIMEOUT_MS 10000
/* A refused CONNECT is retried with a doubling backoff this long in all:
 * a listener that is there answers the first time. */
#define REFUSED_RETRY_MS   1000
/* nimbus exec's own failures (as docker run and timeout(1) do), so they
 * differ from the command's statuses 126/127; 124 is the timeout's. */
#define EXIT_FAILED        125
#define EXIT_TIMEOUT       124
/* Without an agent: how long the shell on the console may take to start
 * the command (typed into it) before exec gives up. */
#define CONSOLE_START_MS   10000
/* When the agent's connection ends without a status, the guest may be on
 * its way down (a command that powers it off): it gets this long to stop
 * by itself, so the message can say what happened. */
#define GRACE_MS           1000

static void exec_usage(FILE *out)
{
    fprintf(out,
        "usage: nimbus exec --from SNAPSHOT [options] -- CMD [ARGS...]\n"
        "\n"
        "Runs CMD with ARGS in a throwaway clone of the VM saved in SNAPSHOT, through\n"
        "its guest agent, and exits with the command's exit status (128 + N when a\n"
        "signal N killed it). The command's stdout and stderr come out on nimbus's\n"
        "stdout and stderr as the command writes them; nimbus's stdin goes to the\n"
        "command's stdin (give </dev/null for none). Then the clone is destroyed:\n"
        "nothing of it stays.\n"
        "\n"
        "The snapshot should be of a guest started with --vsock and nimbus.agent=PORT\n"
        "on its kernel command line (its init runs the agent then; docs/snapshots.md).\n"
        "Without that, the command is typed into the shell on the guest's console,\n"
        "which must be at a prompt (as the default guest is without a command): its\n"
        "stdout and stderr then both come out on stdout, as a terminal shows them\n"
        "(CR LF made LF), it gets no stdin, and starting it is slower (the typing).\n"
        "The clone gets fresh MACs and a random vsock CID as with 'nimbus restore\n"
        "--clone'; its vsock socket, console log and disk overlays live in a private\n"
        "directory under $TMPDIR (or /tmp). It never writes the snapshot's disks: each\n"
        "writable disk gets a qcow2 overlay there, over the saved disk.\n"
        "\n"
        "  --from SNAPSHOT   the snapshot directory (made by 'nimbus snapshot')\n"
        "  --timeout SECONDS stop the clone and exit 124 when the command has not\n"
        "                    finished this long after the start (default 0: no limit)\n"
        "  --memory lazy|eager|uffd\n"
        "                    lazy (default): guest RAM is the snapshot's memory file\n"
        "                    mapped copy-on-write, read as the guest touches it; eager:\n"
        "                    read it all first; uffd: filled by userfaultfd (see\n"
        "                    'nimbus restore --help')\n"
        "  --force-disks     run even when a saved disk changed since the snapshot\n"
        "  --jit on|off      the binary translator (default on, as for 'nimbus run')\n"
        "  --timings         print how long the steps took, in ms since the start, to\n"
        "                    stderr: restore, agent connected (through the console:\n"
        "                    command started), exit status, clone gone\n"
        "\n"
        "Exit status: the command's; 124 after --timeout; 125 when nimbus exec itself\n"
        "failed (a missing or damaged snapshot, no agent and no shell on the console,\n"
        "the guest stopped before the command ended), with a one-line message; 128 + N\n"
        "when nimbus got signal N.\n");
}

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "nimbus exec: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return EXIT_FAILED;
}

struct exec_run {
    /* Set before the worker starts. */
    char uds[108];      /* the vsock socket, or the console's (console) */
    bool console;       /* no agent: through the shell on the console */
    uint32_t port;
    uint8_t *cmd;       /* the command's frames (agent_command), sent with CONNECT */
    size_t cmd_len;
    int argc;           /* the command, for the console */
    char **argv;
    int in_fd;
    int done_fd;        /* eventfd: the worker is done */
    int timer_fd;       /* timerfd of --timeout, or -1 */
    int grace_fd;       /* timerfd: GRACE_MS after a failed agent run */
    struct virt_machine *m;
    /* The worker's, read after pthread_join. */
    int result;
    int status;
    char msg[512];
    int64_t t_connected, t_status;
    /* The I/O thread's. */
    bool timed_out;
};

/* The worker without an agent: the command typed into the console's shell
 * (vm/console_exec.h). */
static int console_run(struct exec_run *x)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", x->uds);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        int r = errmsg(x->msg, sizeof(x->msg), -errno, "the clone's console %s: %s", x->uds,
                       strerror(errno));
        if (fd >= 0)
            close(fd);
        return r;
    }
    int r = console_exec(fd, x->argc, x->argv, STDOUT_FILENO, CONSOLE_START_MS, &x->status,
                         &x->t_connected, x->msg, sizeof(x->msg));
    x->t_status = cli_now_ns();
    close(fd);
    return r;
}

static void *agent_worker(void *arg)
{
    struct exec_run *x = arg;
    int fd = -1, r;
    char why[400];
    if (x->console) {
        r = console_run(x);
        goto done;
    }
    for (int backoff_ms = 1, waited = 0;; backoff_ms *= 2) {
        /* The command goes with the connection request: it reaches the
         * agent with the connection, not a round trip later. */
        r = agent_vsock_connect(x->uds, x->port, x->cmd, x->cmd_len, CONNECT_TIMEOUT_MS, &fd, why,
                                sizeof(why));
        if (r != -ECONNREFUSED || waited >= REFUSED_RETRY_MS)
            break;
        nanosleep(&(struct timespec){ .tv_nsec = backoff_ms * 1000000L }, NULL);
        waited += backoff_ms;
    }
    if (r == -ECONNREFUSED)
        errmsg(x->msg, sizeof(x->msg), r, "no guest agent listens on vsock port %u (the guest "
               "must run it: nimbus.agent=%u on its kernel command line)", x->port, x->port);
    else if (r)
        errmsg(x->msg, sizeof(x->msg), r, "the guest agent: %s", why);
    if (r == 0) {
        x->t_connected = cli_now_ns();
        r = agent_relay(fd, x->in_fd, STDOUT_FILENO, STDERR_FILENO, &x->status, x->msg,
                        sizeof(x->msg));
        x->t_status = cli_now_ns();
        close(fd);
    }
done:
    x->result = r;
    uint64_t one = 1;
    ssize_t w = write(x->done_fd, &one, sizeof(one));   /* after the results: a release */
    (void)w;
    return NULL;
}

/* The I/O thread's extra descriptors: the worker's "done" and the timer. */
static unsigned exec_fill(void *opaque, struct pollfd *fds, unsigned max)
{
    struct exec_run *x = opaque;
    unsigned n = 0;
    if (n < max)
        fds[n++] = (struct pollfd){ .fd = x->done_fd, .events = POLLIN };
    if (x->timer_fd >= 0 && n < max)
        fds[n++] = (struct pollfd){ .fd = x->timer_fd, .events = POLLIN };
    if (n < max)
        fds[n++] = (struct pollfd){ .fd = x->grace_fd, .events = POLLIN };
    return n;
}

static void exec_handle(void *opaque, const struct pollfd *fds, unsigned n)
{
    struct exec_run *x = opaque;
    for (unsigned i = 0; i < n; i++) {
        if (!(fds[i].revents & POLLIN))
            continue;
        uint64_t v;
        if (read(fds[i].fd, &v, sizeof(v)) != sizeof(v))
            continue;
        if (fds[i].fd == x->timer_fd)
            x->timed_out = true;
        /* The eventfd's read orders the worker's result before this. */
        if (fds[i].fd == x->done_fd && x->result) {
            struct itimerspec its = { .it_value = { .tv_sec = GRACE_MS / 1000,
                                                    .tv_nsec = GRACE_MS % 1000 * 1000000L } };
            if (timerfd_settime(x->grace_fd, 0, &its, NULL) == 0)
                continue;
        }
        virt_request_stop(x->m, VIRT_STOP_QUIT, 0);
    }
}

/* Removes the temporary directory and everything in it (flat: the vsock
 * sockets, the console log, the overlays). */
static void remove_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(path);
}

/* The snapshot's board section: its disks, vsock device and kernel command
 * line, before anything is restored. */
static int read_board(const char *snap, struct virt_config *c, struct virt_config_strings *strs,
                      char *err, size_t errlen)
{
    char path[PATH_MAX], why[512];
    snprintf(path, sizeof(path), "%s/vm.state", snap);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errmsg(err, errlen, -errno, "snapshot %s: %s", snap, strerror(errno));
    struct state_reader rd;
    int r = state_reader_open_fd(&rd, fd, why, sizeof(why));
    close(fd);
    if (r)
        return errmsg(err, errlen, r, "%s: %s", path, why);
    uint64_t tohost, fromhost;
    r = virt_config_load(&rd, c, &tohost, &fromhost, strs, why, sizeof(why));
    state_reader_free(&rd);
    if (r)
        return errmsg(err, errlen, r, "%s: %s", path, why);
    return 0;
}

/* A qcow2 overlay in `dir` over each writable saved disk. */
static int make_overlays(const struct virt_config *c, const char *dir,
                         struct vm_restore_options *o, char paths[][PATH_MAX], char *err,
                         size_t errlen)
{
    for (unsigned i = 0; i < c->ndisks; i++) {
        if (c->disks[i].opts.readonly)
            continue;   /* the clone cannot write it: used as it is */
        char base[PATH_MAX];
        if (!realpath(c->disks[i].path, base))   /* an overlay names its backing file */
            return errmsg(err, errlen, -errno, "disk %u (%s): %s", i, c->disks[i].path,
                          strerror(errno));
        struct block_options bo = c->disks[i].opts;
        bo.readonly = true;
        bo.cache = BLOCK_CACHE_WRITEBACK;
        struct block_backend *b;
        int r = block_open(base, &bo, &b, err, errlen);
        if (r)
            return r;
        struct qcow2_create_options q = { .size = b->size, .backing = base,
                                          .backing_format = b->ops->name };
        block_close(b);
        snprintf(paths[i], PATH_MAX, "%s/disk%u.qcow2", dir, i);
        if ((r = qcow2_create(paths[i], &q, err, errlen)))
            return r;
        o->disks[i] = paths[i];
        o->disk_formats[i] = BLOCK_FORMAT_QCOW2;
        o->ndisks = i + 1;
    }
    o->disks_over_saved = true;
    return 0;
}

static const char *stop_text(enum virt_stop why)
{
    switch (why) {
    case VIRT_STOP_POWEROFF: return "powered off";
    case VIRT_STOP_FAIL: return "stopped with a failure";
    case VIRT_STOP_RESET: return "rebooted";
    default: return "stopped (the monitor failed)";
    }
}

int cmd_exec(int argc, char **argv)
{
    int64_t t0 = cli_now_ns();
    static const struct option options[] = {
        { "from", required_argument, NULL, 'F' },
        { "timeout", required_argument, NULL, 't' },
        { "memory", required_argument, NULL, 'M' },
        { "force-disks", no_argument, NULL, 'f' },
        { "jit", required_argument, NULL, 'J' },
        { "timings", no_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct vm_restore_options o = { .memory = VM_RESTORE_LAZY, .console_kind = CONSOLE_FILE,
                                    .jit = JIT_DEFAULT_ON, .jit_threshold = JIT_THRESHOLD };
    const char *snap = NULL;
    unsigned long timeout_s = 0;
    bool timings = false;
    char err[1024];
    int opt;

    opterr = 0;
    optind = 1;
    /* "+": options end at the first non-option (the command's own options
     * stay the command's, with or without "--"). */
    while ((opt = getopt_long(argc, argv, "+:h", options, NULL)) != -1) {
        switch (opt) {
        case 'F': snap = optarg; break;
        case 't': {
            char *end;
            errno = 0;
            timeout_s = strtoul(optarg, &end, 10);
            if (errno || *end || end == optarg || *optarg == '-' || timeout_s > 86400 * 365)
                return fail("invalid --timeout '%s' (whole seconds, 0: none)", optarg);
            break;
        }
        case 'M':
            if (cli_parse_restore_memory(optarg, &o.memory))
                return fail("invalid --memory '%s' (lazy, eager or uffd)", optarg);
            break;
        case 'J':
            if (cli_parse_jit(optarg, &o.jit))
                return fail("invalid --jit '%s' (on or off)", optarg);
            break;
        case 'f': o.force_disks = true; break;
        case 'T': timings = true; break;
        case 'h':
            exec_usage(stdout);
            return 0;
        case ':':
            return fail("option '%s' needs an argument", argv[optind - 1]);
        default:
            return fail("unknown option '%s' (try 'nimbus exec --help')", argv[optind - 1]);
        }
    }
    if (!snap)
        return fail("%s", "which snapshot? (nimbus exec --from SNAPSHOT -- CMD [ARGS...])");
    if (optind >= argc)
        return fail("%s", "which command? (nimbus exec --from SNAPSHOT -- CMD [ARGS...])");
    o.path = snap;

    /* The snapshot first: is there an agent to talk to? */
    struct virt_config c;
    struct virt_config_strings cstrs;
    if (read_board(snap, &c, &cstrs, err, sizeof(err)))
        return fail("%s", err);
    uint32_t port = 0;
    int pr = agent_port_from_cmdline(c.append, &port);
    bool has_vsock = c.vsock_cid != 0;
    virt_config_strings_free(&cstrs);   /* c's disk paths go with it: re-read below */
    if (pr && pr != -ENOENT)
        return fail("%s", "the snapshot's nimbus.agent= on the kernel command line is not a port");
    /* No agent (no vsock device, or no nimbus.agent=): the console. */
    bool console = !has_vsock || pr == -ENOENT;

    /* Quit signals wait (blocked) for the I/O thread's signalfd, which
     * ends the run cleanly; the worker inherits the mask. */
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);
    signal(SIGPIPE, SIG_IGN);   /* a closed stdout is an error to report, not a death */

    int status = EXIT_FAILED;
    /* Stdin goes to the command when there is one (a file, a pipe, a
     * terminal; /dev/null gives an empty stdin). */
    struct exec_run x = { .port = port, .console = console, .argc = argc - optind,
                          .argv = argv + optind, .done_fd = -1, .timer_fd = -1, .grace_fd = -1,
                          .in_fd = fcntl(STDIN_FILENO, F_GETFL) >= 0 ? STDIN_FILENO : -1 };
    struct virt_machine *m = NULL;
    struct virt_config_strings strs = { 0 };
    /* The overlays' paths, which the restore options point to: 28 KiB, on
     * the heap rather than the stack (and not static: no global state). */
    char (*overlay_paths)[PATH_MAX] = calloc(VIRT_MAX_DISKS, PATH_MAX);
    if (!overlay_paths) {
        fprintf(stderr, "nimbus exec: out of memory\n");
        goto out_mask;
    }
    /* The command checked before anything is restored. */
    if (console) {
        char line[CONSOLE_EXEC_MAX_LINE + 1];
        int n = console_exec_line(x.argc, x.argv, "0123456789abcdef", line, sizeof(line));
        if (n < 0) {
            fprintf(stderr, "nimbus exec: the snapshot's guest has no agent, and the command "
                    "cannot be typed into its console: %s\n", n == -E2BIG
                    ? "longer than a shell line there may be" : "a control character in it");
            goto out_mask;
        }
    } else if (agent_command(x.argc, x.argv, x.in_fd < 0, &x.cmd, &x.cmd_len, err,
                             sizeof(err))) {
        fprintf(stderr, "nimbus exec: %s\n", err);
        goto out_mask;
    }
    /* The vsock socket's path, and PATH_PORT beside it, must fit a
     * sun_path (108 bytes): a long $TMPDIR is passed over for /tmp. */
    char dir[80];
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp || strlen(tmp) >= sizeof(dir) - sizeof("/nimbus-exec.XXXXXX"))
        tmp = "/tmp";
    snprintf(dir, sizeof(dir), "%s/nimbus-exec.XXXXXX", tmp);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "nimbus exec: a temporary directory in %s: %s\n", tmp, strerror(errno));
        goto out_mask;
    }
    if (read_board(snap, &c, &cstrs, err, sizeof(err)) ||
        make_overlays(&c, dir, &o, overlay_paths, err, sizeof(err))) {
        virt_config_strings_free(&cstrs);
        fprintf(stderr, "nimbus exec: %s\n", err);
        goto out_dir;
    }
    virt_config_strings_free(&cstrs);
    if (console) {   /* the worker types into it */
        o.console_kind = CONSOLE_SOCKET;
        snprintf(x.uds, sizeof(x.uds), "%s/console.sock", dir);
        snprintf(o.console_path, sizeof(o.console_path), "%s", x.uds);
    } else {
        snprintf(o.console_path, sizeof(o.console_path), "%s/console.log", dir);
    }
    if (cli_clone_identity(&o)) {   /* random MACs, a random CID */
        fprintf(stderr, "nimbus exec: no randomness from the host for the clone's identity\n");
        goto out_dir;
    }
    snprintf(o.vsock_path, sizeof(o.vsock_path), "%s/v.sock", dir);
    if (vm_snapshot_restore(&o, &m, &strs, err, sizeof(err))) {
        fprintf(stderr, "nimbus exec: %s\n", err);
        goto out_dir;
    }
    int64_t t_restored = cli_now_ns();
    if (!console)
        snprintf(x.uds, sizeof(x.uds), "%s", m->config.vsock_path);
    x.m = m;
    x.done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    x.grace_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (x.done_fd < 0 || x.grace_fd < 0) {
        fprintf(stderr, "nimbus exec: eventfd/timerfd: %s\n", strerror(errno));
        goto out_vm;
    }
    if (timeout_s) {
        x.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        /* From the start of nimbus exec: the restore counts too. */
        int64_t end = t0 + (int64_t)timeout_s * 1000000000;
        struct itimerspec its = { .it_value = { .tv_sec = end / 1000000000,
                                                .tv_nsec = end % 1000000000 } };
        if (x.timer_fd < 0 || timerfd_settime(x.timer_fd, TFD_TIMER_ABSTIME, &its, NULL)) {
            fprintf(stderr, "nimbus exec: timerfd: %s\n", strerror(errno));
            goto out_vm;
        }
    }
    if (virt_resume(m, err, sizeof(err))) {
        fprintf(stderr, "nimbus exec: %s\n", err);
        goto out_vm;
    }
    pthread_t worker;
    int e = pthread_create(&worker, NULL, agent_worker, &x);
    if (e) {
        fprintf(stderr, "nimbus exec: cannot start a thread: %s\n", strerror(e));
        goto out_vm;
    }
    struct vm_io_source src = { .fill = exec_fill, .handle = exec_handle, .opaque = &x };
    vm_run_io(m, &src);   /* its status: `why` and `quit` below say more */
    enum virt_stop why = (enum virt_stop)atomic_load(&m->stop);
    int quit = atomic_load(&m->quit_request);
    /* Closes the clone's vsock sockets: a worker still waiting on the
     * guest sees its connection end. */
    virt_destroy(m);
    m = NULL;
    pthread_join(worker, NULL);

    if (x.timed_out) {
        fprintf(stderr, "nimbus exec: timed out after %lu s; the clone is destroyed\n", timeout_s);
        status = EXIT_TIMEOUT;
    } else if (why == VIRT_STOP_QUIT && quit > 128) {
        fprintf(stderr, "nimbus exec: interrupted (signal %d); the clone is destroyed\n",
                quit - 128);
        status = quit;
    } else if (x.result == 0) {
        status = x.status & 0xff;
    } else if (why != VIRT_STOP_QUIT) {
        fprintf(stderr, "nimbus exec: the guest %s before the command finished (%s)\n",
                stop_text(why), x.msg);
    } else {
        fprintf(stderr, "nimbus exec: %s\n", x.msg);
    }
    if (timings) {
        int64_t t_end = cli_now_ns();
        fprintf(stderr, "nimbus exec: timings (ms since start): restored %.1f, %s %.1f, "
                "exit status %.1f, clone destroyed %.1f\n", (double)(t_restored - t0) / 1e6,
                console ? "command started (console)" : "agent connected",
                x.t_connected ? (double)(x.t_connected - t0) / 1e6 : -1.0,
                x.t_status ? (double)(x.t_status - t0) / 1e6 : -1.0, (double)(t_end - t0) / 1e6);
    }
out_vm:
    virt_destroy(m);
    virt_config_strings_free(&strs);
    if (x.done_fd >= 0)
        close(x.done_fd);
    if (x.timer_fd >= 0)
        close(x.timer_fd);
    if (x.grace_fd >= 0)
        close(x.grace_fd);
out_dir:
    remove_dir(dir);
out_mask:
    free(x.cmd);
    free(overlay_paths);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return status;
}
