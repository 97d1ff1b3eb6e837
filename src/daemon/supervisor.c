/* VM processes that outlive the daemon. See supervisor.h. */
#include "daemon/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/errmsg.h"

#define SHIM_PIPE_FD 3
#define LAUNCH_TIMEOUT_MS 10000

extern char **environ;

uint64_t supervisor_start_time(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: count
     * fields from the last ')'. starttime is field 22, the 20th after it. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    for (int field = 2; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

bool supervisor_alive(pid_t pid, uint64_t start)
{
    return pid > 0 && start && supervisor_start_time(pid) == start;
}

int supervisor_pidfd(pid_t pid)
{
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : (int)fd;
}

static int read_line(int fd, char *buf, size_t n, int timeout_ms)
{
    size_t len = 0;
    while (len + 1 < n) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int pr = poll(&p, 1, timeout_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return pr == 0 ? -ETIMEDOUT : -errno;
        ssize_t k = read(fd, buf + len, n - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return k == 0 ? -EPIPE : -errno;
        len += (size_t)k;
        buf[len] = '\0';
        if (memchr(buf, '\n', len))
            return 0;
    }
    return -E2BIG;
}

int supervisor_launch(const struct vm_launch *l, struct vm_proc *out, char *err, size_t errlen)
{
    size_t nargs = 0;
    while (l->argv[nargs])
        nargs++;
    if (l->nfds > SUPERVISOR_MAX_FDS)
        return errmsg(err, errlen, -EINVAL, "too many descriptors for a VM (%zu)", l->nfds);
    char **sargv = calloc(nargs + 8, sizeof(*sargv));
    if (!sargv)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    char nfds[24];
    snprintf(nfds, sizeof(nfds), "%zu", l->nfds);
    sargv[0] = (char *)l->shim;
    sargv[1] = (char *)"--shim";
    sargv[2] = (char *)l->exit_path;
    sargv[3] = (char *)l->log_path;
    sargv[4] = (char *)(l->cgroup_procs ? l->cgroup_procs : "-");
    sargv[5] = nfds;
    sargv[6] = (char *)"--";
    memcpy(sargv + 7, l->argv, nargs * sizeof(*sargv));

    unlink(l->exit_path);   /* a record of an earlier run */
    /* Every source above every target number first: a dup2 into fd 4 must
     * not close a source still to come (the daemon's descriptors may have
     * any numbers, the pipe's too). */
    int above = SUPERVISOR_FIRST_FD + (int)l->nfds;
    int p[2] = { -1, -1 }, tmp[SUPERVISOR_MAX_FDS + 1];
    size_t ntmp = 0;
    int e = 0;
    if (pipe2(p, O_CLOEXEC))
        e = errno;
    for (size_t i = 0; !e && i <= l->nfds; i++) {
        int src = i < l->nfds ? l->fds[i] : p[1];
        if ((tmp[ntmp] = fcntl(src, F_DUPFD_CLOEXEC, above)) < 0)
            e = errno;
        else
            ntmp++;
    }
    if (e) {
        for (size_t i = 0; i < ntmp; i++)
            close(tmp[i]);
        if (p[0] >= 0) {
            close(p[0]);
            close(p[1]);
        }
        free(sargv);
        return errmsg(err, errlen, -e, "descriptors for the VM: %s", strerror(e));
    }
    close(p[1]);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, tmp[l->nfds], SHIM_PIPE_FD);
    for (size_t i = 0; i < l->nfds; i++)
        posix_spawn_file_actions_adddup2(&fa, tmp[i], SUPERVISOR_FIRST_FD + (int)i);
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    /* A session of its own: the daemon's terminal and process group
     * signals never reach the VMs. */
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                  POSIX_SPAWN_SETSIGDEF);
    pid_t shim;
    int rc = posix_spawn(&shim, l->shim, &fa, &at, sargv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    free(sargv);
    for (size_t i = 0; i < ntmp; i++)
        close(tmp[i]);
    if (rc) {
        close(p[0]);
        return errmsg(err, errlen, -rc, "cannot start %s: %s", l->shim, strerror(rc));
    }
    char line[64];
    int r = read_line(p[0], line, sizeof(line), LAUNCH_TIMEOUT_MS);
    close(p[0]);
    int pid = 0;
    unsigned long long start = 0;
    if (r == 0 && sscanf(line, "%d %llu", &pid, &start) != 2)
        r = -EPROTO;
    if (r || pid <= 0) {
        kill(shim, SIGKILL);
        waitpid(shim, NULL, 0);
        return errmsg(err, errlen, r ? r : -EPROTO, "the VM's supervisor did not start it (%s)",
                      strerror(r ? -r : EPROTO));
    }
    *out = (struct vm_proc){ .shim_pid = shim, .pid = pid, .pid_start = start };
    return 0;
}

static void write_record(const char *exit_path, int status)
{
    char tmp[4096], rec[64];
    snprintf(tmp, sizeof(tmp), "%s.tmp", exit_path);
    int n = WIFSIGNALED(status)
                ? snprintf(rec, sizeof(rec), "signal %d%s\n", WTERMSIG(status),
                           WCOREDUMP(status) ? " core" : "")
                : snprintf(rec, sizeof(rec), "exit %d\n", WEXITSTATUS(status));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return;
    ssize_t w = write(fd, rec, (size_t)n);
    fsync(fd);
    close(fd);
    if (w == n)
        rename(tmp, exit_path);
}

int supervisor_shim_main(int argc, char **argv)
{
    char *end = NULL;
    unsigned long nfds = argc > 5 ? strtoul(argv[5], &end, 10) : 0;
    if (argc < 8 || strcmp(argv[1], "--shim") || !end || *end || end == argv[5] ||
        nfds > SUPERVISOR_MAX_FDS || strcmp(argv[6], "--")) {
        fprintf(stderr, "nimbusd --shim is started by nimbusd only\n");
        return 2;
    }
    const char *exit_path = argv[2], *log_path = argv[3], *cg = argv[4];
    int last_fd = SUPERVISOR_FIRST_FD + (int)nfds - 1;
    /* Nothing of the daemon's but the pipe to it and the VM's devices. */
    syscall(SYS_close_range, (unsigned)last_fd + 1, ~0u, 0);
    /* Stopping the shim would lose the record: only SIGKILL does. */
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);

    pid_t pid = fork();
    if (pid < 0) {
        dprintf(SHIM_PIPE_FD, "0 0\n");
        return 1;
    }
    if (pid == 0) {
        signal(SIGHUP, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        close(SHIM_PIPE_FD);
        int log = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (log < 0 || null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
            _exit(126);
        if (strcmp(cg, "-")) {
            /* Join the VM's cgroup before running: its limits hold from
             * the first instruction on. */
            int fd = open(cg, O_WRONLY | O_CLOEXEC);
            if (fd < 0 || write(fd, "0\n", 2) != 2) {
                dprintf(2, "nimbusd: cannot join the cgroup %s: %s\n", cg, strerror(errno));
                _exit(126);
            }
            close(fd);
        }
        execv(argv[7], argv + 7);
        dprintf(2, "nimbusd: cannot run %s: %s\n", argv[7], strerror(errno));
        _exit(127);
    }
    /* The devices are the VM process's alone: a tap the daemon made goes
     * away with it, a disk's lock ends with it. */
    for (int fd = SUPERVISOR_FIRST_FD; fd <= last_fd; fd++)
        close(fd);
    dprintf(SHIM_PIPE_FD, "%d %" PRIu64 "\n", (int)pid, supervisor_start_time(pid));
    close(SHIM_PIPE_FD);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 1;
    write_record(exit_path, status);
    return 0;
}

int supervisor_exit_reason(const char *exit_path, char *reason, size_t n, bool *clean,
                           int *signal_out)
{
    FILE *f = fopen(exit_path, "re");
    if (!f)
        return -ENOENT;
    char kind[16] = "";
    int value = -1;
    int k = fscanf(f, "%15s %d", kind, &value);
    fclose(f);
    *clean = false;
    if (signal_out)
        *signal_out = 0;
    if (k != 2)
        return -ENOENT;
    if (!strcmp(kind, "exit")) {
        *clean = value == 0;
        if (value == 0)
            snprintf(reason, n, "the guest powered off");
        else
            snprintf(reason, n, "exit status %d", value);
        return 0;
    }
    const char *abbrev = sigabbrev_np(value);
    if (signal_out)
        *signal_out = value;
    snprintf(reason, n, "killed by SIG%s%s", abbrev ? abbrev : "?",
             value == SIGSYS ? " (a forbidden system call: seccomp)" :
             value == SIGKILL ? " (killed from outside, or out of memory)" : "");
    return 0;
}
