/* Confinement of one VM process (`nimbus run|restore --sandbox`,
 * `--run-as`): what it gives up before guest code runs, so that a guest
 * that takes over the monitor gets as little of the host as possible
 * (docs/security.md has the threat model). OpenBSD vmd and Firecracker's
 * jailer are the models: one process per VM, narrowed after start-up.
 *
 *   sandbox_enter  first thing, while the process has one thread: no new
 *                  privileges (PR_SET_NO_NEW_PRIVS), and where permitted
 *                  (CAP_SYS_ADMIN) a private mount namespace whose mounts
 *                  propagate nowhere.
 *   sandbox_lock   once start-up is done (every file, socket, tap and the
 *                  API socket open, the device threads started), before any
 *                  hart runs: in the private mount view a minimal /dev, an
 *                  empty /sys and /proc's host-wide knobs read-only or
 *                  masked; then the user dropped (--run-as); then a seccomp
 *                  allowlist on every thread, present and future.
 *
 * Threads: the control thread; sandbox_enter while it is the only one. */
#ifndef NIMBUS_VM_SANDBOX_H
#define NIMBUS_VM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum sandbox_mode {
    SANDBOX_OFF = 0,
    SANDBOX_KILL,   /* a syscall off the list kills the process (SIGSYS) */
    SANDBOX_LOG,    /* it is allowed and logged by the kernel (dmesg: "audit:
                       type=1326 ... syscall=N"): for finding what is missing */
};

struct sandbox_options {
    enum sandbox_mode mode;
    bool run_as;           /* drop to uid:gid (root only; neither may be 0) */
    uid_t uid;
    gid_t gid;
};

/* What sandbox_enter managed, for sandbox_lock. */
struct sandbox {
    struct sandbox_options opts;
    bool mount_ns;         /* in a private mount namespace */
    char note[160];        /* a layer skipped and why ("" if none) */
};

/* The first step (see above). A mount namespace that is not permitted is
 * skipped with a note in sb->note; everything else that fails is an error.
 * Returns 0 or -errno with a message. */
int sandbox_enter(const struct sandbox_options *o, struct sandbox *sb, char *err, size_t errlen);

/* The second step (see above); `inet` as in sandbox_options (the caller
 * knows only now whether the VM has user networking: a restore's cards are
 * the snapshot's). Also makes the process not dumpable, so that no other
 * process of the same user may open its /proc/PID/mem. On failure the process must not run the
 * guest: some layers may be in place, others not. Returns 0 or -errno with
 * a message. */
int sandbox_lock(struct sandbox *sb, bool inet, char *err, size_t errlen);

/* Builds the seccomp filter for `mode` (KILL or LOG) without loading it:
 * a libseccomp scmp_filter_ctx, freed with seccomp_release. For tests and
 * sandbox_lock. Returns 0 or -errno with a message. */
int sandbox_filter_build(enum sandbox_mode mode, bool inet, void **ctx, char *err, size_t errlen);

/* How many syscalls the filter allows (some only with certain arguments). */
unsigned sandbox_filter_size(void);

/* "UID:GID" (numbers) into o; the user must be root to use it, and neither
 * may be 0. Returns 0 or -EINVAL/-EPERM with a message. */
int sandbox_parse_run_as(const char *arg, struct sandbox_options *o, char *err, size_t errlen);

#endif
