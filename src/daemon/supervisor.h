/* VM processes that outlive the daemon.
 *
 * nimbusd never makes a VM process its own child: it starts a small
 * supervisor, `nimbusd --shim`, in a session of its own, and the shim
 * starts the VM process (`nimbus run ...`), waits for it and writes how it
 * ended to an exit file. A daemon that stops or restarts leaves both
 * running; the new daemon finds them again by their pids (checked against
 * their start times, since pids are reused) and learns how a VM ended from
 * its exit file - even a VM killed by its seccomp filter while no daemon
 * was there. (conmon plays this part for podman.)
 *
 * Threads: any; no shared state. */
#ifndef NIMBUS_DAEMON_SUPERVISOR_H
#define NIMBUS_DAEMON_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct vm_launch {
    const char *shim;            /* the nimbusd binary */
    char *const *argv;           /* the VM process: argv[0] is the nimbus binary */
    const char *log_path;        /* its stdout and stderr (appended) */
    const char *exit_path;       /* the shim's exit record */
    const char *cgroup_procs;    /* a cgroup.procs file to join before exec, or NULL */
    /* Descriptors for the VM process (its disks and taps: daemon/devices.h):
     * fds[i] is SUPERVISOR_FIRST_FD + i there. The shim keeps none of them
     * once the VM process has them; the caller closes its own copies. */
    const int *fds;
    size_t nfds;
};

/* The first descriptor number handed to a VM process (0-2 are its stdio,
 * 3 the shim's pipe to the daemon). */
#define SUPERVISOR_FIRST_FD 4
#define SUPERVISOR_MAX_FDS  64

struct vm_proc {
    pid_t shim_pid;
    pid_t pid;
    uint64_t pid_start;          /* /proc/PID/stat field 22 */
};

/* Starts the shim and, through it, the VM process. Returns 0 once the VM
 * process exists (not once it is ready), or -errno with a message. */
int supervisor_launch(const struct vm_launch *l, struct vm_proc *out, char *err, size_t errlen);

/* The shim's main: `nimbusd --shim EXIT LOG CGROUP_PROCS|- NFDS -- ARGV...`,
 * with the pipe to the daemon on fd 3 and NFDS descriptors for the VM
 * process from fd 4 on. Returns the exit status. */
int supervisor_shim_main(int argc, char **argv);

/* The start time of process `pid` (0: no such process). */
uint64_t supervisor_start_time(pid_t pid);

/* Is `pid` still the process that started at `start`? */
bool supervisor_alive(pid_t pid, uint64_t start);

/* A pollable fd that becomes readable when `pid` ends (pidfd_open), -errno. */
int supervisor_pidfd(pid_t pid);

/* How the VM process ended, from the shim's exit record: *clean is set for
 * an exit with status 0 (the guest powered off), `reason` gets words for
 * people ("exit status 1", "killed by SIGSYS (a forbidden system call:
 * seccomp)"). Returns 0, or -ENOENT when there is no record (the shim was
 * killed, or the host rebooted). */
int supervisor_exit_reason(const char *exit_path, char *reason, size_t n, bool *clean,
                           int *signal_out);

#endif
