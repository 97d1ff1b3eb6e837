/* The `nimbus` command: a table of subcommands, one file each. */
#ifndef NIMBUS_CLI_CLI_H
#define NIMBUS_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cli_command {
    const char *name;      /* NULL: a heading in the --help list (summary) */
    const char *summary;
    int (*main)(int argc, char **argv); /* argv[0] is the subcommand name */
};

int cmd_run(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_exec(int argc, char **argv);
/* The API's commands (each over --api PATH, src/cli/api_client.h). */
int cmd_status(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_shutdown(int argc, char **argv);
int cmd_destroy(int argc, char **argv);
int cmd_reset(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_migrate_recover(int argc, char **argv);
int cmd_balloon(int argc, char **argv);
int cmd_counters(int argc, char **argv);
int cmd_events(int argc, char **argv);
/* nimbusd's commands (src/cli/daemon_client.h); pause, resume, shutdown and
 * destroy take a VM name for nimbusd as well as --api PATH. */
int cmd_define(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_save(int argc, char **argv);
int cmd_undefine(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_top(int argc, char **argv);

/* Parses a memory size: a number with an optional K, M, G or T suffix
 * (powers of 1024); a bare number means MiB, as in QEMU's -m. Returns 0 or
 * -EINVAL. */
int cli_parse_size(const char *s, unsigned long long *bytes);

/* --vsock CID[,path=PATH]: the CID (3..2^32-2) and the host socket path
 * (default nimbus-vsock-CID.sock). Returns 0 or -EINVAL with a message. */
int cli_parse_vsock(const char *arg, uint64_t *cid, char *path, size_t pathlen, char *err,
                    size_t errlen);

/* A clone's identity (restore --clone, exec): a fresh random MAC for each
 * card from o->nmacs on (those --mac did not name), and a random CID with
 * the socket nimbus-vsock-CID.sock unless o->vsock_cid is set. How many
 * cards there are and whether there is a vsock device only the snapshot
 * knows: the restore takes what it needs. Returns 0, or -1 when the host
 * gives no randomness. */
struct vm_restore_options;
int cli_clone_identity(struct vm_restore_options *o);

/* The translator's options, as run, restore and exec take them: --jit on|off,
 * --jit-cache SIZE (64K..2G), --jit-threshold N (0..65535). Each returns 0
 * or -EINVAL; the callers' messages name the ranges. */
int cli_parse_jit(const char *arg, bool *on);
int cli_parse_jit_cache(const char *arg, uint64_t *bytes);
int cli_parse_jit_threshold(const char *arg, unsigned *threshold);

/* CLOCK_MONOTONIC in ns, for --timings. */
int64_t cli_now_ns(void);

enum vm_restore_memory;
/* --memory lazy|eager|uffd of restore and exec. Returns 0 or -EINVAL. */
int cli_parse_restore_memory(const char *arg, enum vm_restore_memory *how);

/* The confinement options run and restore share (vm/sandbox.h): their
 * --help lines, and --sandbox[=kill|log] (NULL: kill). */
#define CLI_SANDBOX_USAGE \
    "  --sandbox[=log]   confine this process (docs/security.md): no new\n" \
    "                    privileges, a private mount view where permitted (root:\n" \
    "                    a minimal /dev, no /sys, /proc's host knobs read-only),\n" \
    "                    and once start-up is done a seccomp allowlist of the\n" \
    "                    syscalls the monitor uses: any other kills the process\n" \
    "                    (SIGSYS). =log allows and logs them instead (dmesg), to\n" \
    "                    find what is missing. Off by default\n" \
    "  --run-as UID:GID  (root only) after start-up, before the guest runs, become\n" \
    "                    this user and group, with no other groups and no way\n" \
    "                    back; files the VM makes later (snapshots) are theirs\n"
#define CLI_OPT_SANDBOX 0x100
#define CLI_OPT_RUN_AS  0x101
#define CLI_SANDBOX_OPTIONS \
    { "sandbox", optional_argument, NULL, CLI_OPT_SANDBOX }, \
    { "run-as", required_argument, NULL, CLI_OPT_RUN_AS }
enum sandbox_mode;
struct sandbox_options;
int cli_parse_sandbox(const char *arg, enum sandbox_mode *mode);
/* One of CLI_SANDBOX_OPTIONS (getopt's `opt` and optarg) into `o`.
 * Returns 0 or -errno with a message. */
int cli_sandbox_option(int opt, const char *arg, struct sandbox_options *o, char *err,
                       size_t errlen);

/* N of "fd=N" (after the "fd="): an open descriptor above 2, handed in by
 * the caller (the daemon), and `name` the file it was opened as (or
 * "fd:N"). Returns 0 or -errno with a message. */
int cli_parse_fd(const char *arg, int *fd, char *name, size_t namelen, char *err, size_t errlen);

/* A disk's descriptor must be open for reading, and for writing unless
 * the disk is read-only. Returns 0 or -EBADF with a message. */
int cli_check_disk_fd(int fd, bool readonly, char *err, size_t errlen);

/* sandbox_enter / sandbox_lock (IPv4/IPv6 sockets only for a machine `c`
 * with user networking), with their messages on stderr after "CMD: ".
 * Return 0 or -1. */
struct sandbox;
struct virt_config;
int cli_sandbox_enter(const struct sandbox_options *o, struct sandbox *sb, const char *cmd);
int cli_sandbox_lock(struct sandbox *sb, const struct virt_config *c, const char *cmd);

#endif
