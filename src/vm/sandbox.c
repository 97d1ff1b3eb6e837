/* Confinement of one VM process. See sandbox.h and docs/security.md.
 *
 * The seccomp allowlist holds what the VMM's threads were seen to call
 * after start-up (strace -f over the guest tests: harts, the I/O thread,
 * virtio workers, slirp, vsock, tap, the API, snapshots and their forked
 * memory writer, the userfaultfd filler, the balloon, reboots), restricted
 * by argument where that is cheap: clone without namespace flags, unix
 * sockets (and TCP/UDP ones with user networking), ioctl requests by
 * number, no executable mappings. Anything else kills the whole process (SECCOMP_RET_KILL_PROCESS:
 * every thread, with SIGSYS as its status). */
#include "vm/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "base/errmsg.h"

/* ---- the seccomp filter ---- */

/* Allowed whatever the arguments: each seen after start-up (strace -f,
 * scripts/sandbox-trace.sh) unless a comment says why it is here. */
static const int plain_syscalls[] = {
    /* memory: glibc's allocator (mremap: realloc of large blocks), thread
     * stacks, the balloon's and the restore's MADV_DONTNEED */
    SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
    /* descriptors and I/O: disks, tap, eventfds, pipes, the console */
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
    SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv), SCMP_SYS(pwritev),
    SCMP_SYS(lseek), SCMP_SYS(close), SCMP_SYS(fcntl), SCMP_SYS(pipe2),
    SCMP_SYS(newfstatat), SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate),
    SCMP_SYS(fallocate),
    /* files by name: snapshots (a directory of files written and renamed
     * into place; realpath of the disks: getcwd, readlink), a reboot
     * reloading the images, sockets removed at exit, /proc/self (RSS, page
     * maps), /etc/resolv.conf (slirp) */
    SCMP_SYS(openat), SCMP_SYS(mkdir), SCMP_SYS(renameat), SCMP_SYS(unlink),
    SCMP_SYS(getdents64), SCMP_SYS(readlink), SCMP_SYS(getcwd),
    /* waiting: the I/O thread, workers, slirp, vsock, the API (its timer),
     * harts parking; clocks where the vDSO falls back to the kernel */
    SCMP_SYS(poll), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(futex),
    SCMP_SYS(timerfd_settime), SCMP_SYS(sched_yield), SCMP_SYS(clock_gettime),
    SCMP_SYS(gettimeofday), SCMP_SYS(clock_nanosleep),
    /* sockets, the family checked at socket(): slirp's guest connections,
     * vsock's unix sockets, the API's clients */
    SCMP_SYS(connect), SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(sendto),
    SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(shutdown),
    SCMP_SYS(getpeername), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),
    /* threads and signals: harts (re)started, workers, the forked snapshot
     * writer reaped, signalfd for the quit signals on every run; a syscall
     * restarted after a stop (ptrace, SIGSTOP); signal handlers returning;
     * abort (getpid, gettid); the sanitizers' thread start (signal stacks,
     * the CPU mask) */
    SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(restart_syscall),
    SCMP_SYS(signalfd4), SCMP_SYS(wait4), SCMP_SYS(exit), SCMP_SYS(exit_group),
    SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(sigaltstack), SCMP_SYS(sched_getaffinity),
    /* randomness: virtio-rng, the API, a clone's identity */
    SCMP_SYS(getrandom),
};

/* ioctl requests: the terminal (raw mode and back; isatty), a socket's
 * pending bytes (slirp), tap offloads as the guest sets its features, the
 * userfaultfd filler. */
static const unsigned long ioctl_requests[] = {
    TCGETS, TCSETS, FIONREAD, TUNSETOFFLOAD,
    UFFDIO_COPY, UFFDIO_ZEROPAGE, UFFDIO_WAKE, UFFDIO_UNREGISTER,
};

/* clone() flags that make namespaces: a thread or fork may not. */
#define CLONE_NS_FLAGS (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | \
                        CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET)

/* Allowed with argument rules below: clone, socket, ioctl, mmap, mprotect,
 * prctl, tgkill. (clone3 is not allowed: it gets ENOSYS.) */
#define ARG_RULED_SYSCALLS 7u

unsigned sandbox_filter_size(void)
{
    return (unsigned)(sizeof(plain_syscalls) / sizeof(plain_syscalls[0])) + ARG_RULED_SYSCALLS;
}

static int add(scmp_filter_ctx ctx, int nr, unsigned n, const struct scmp_arg_cmp *cmp,
               char *err, size_t errlen)
{
    int r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, cmp);
    if (r) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        errmsg(err, errlen, r, "seccomp: cannot allow %s: %s", name ? name : "?", strerror(-r));
        free(name);
    }
    return r;
}

int sandbox_filter_build(enum sandbox_mode mode, bool inet, void **out, char *err, size_t errlen)
{
    *out = NULL;
    if (mode != SANDBOX_KILL && mode != SANDBOX_LOG)
        return errmsg(err, errlen, -EINVAL, "seccomp: no filter for sandbox mode %d", mode);
    scmp_filter_ctx ctx = seccomp_init(mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS);
    if (!ctx)
        return errmsg(err, errlen, -ENOMEM, "seccomp: cannot make a filter");
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (r) {
        errmsg(err, errlen, r, "seccomp: no thread sync (TSYNC): %s", strerror(-r));
        goto fail;
    }
    for (size_t i = 0; i < sizeof(plain_syscalls) / sizeof(plain_syscalls[0]); i++)
        if ((r = add(ctx, plain_syscalls[i], 0, NULL, err, errlen)))
            goto fail;

    /* (Every comparison gives datum_b, 0 where the operator ignores it:
     * clang's -Wmissing-field-initializers, the fuzz build's.) */
    /* Threads (pthread_create) and the snapshot writer (fork): no new
     * namespaces. clone3 passes its flags in memory, out of a filter's
     * reach: ENOSYS makes glibc fall back to clone. */
    struct scmp_arg_cmp no_ns = SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0);
    if ((r = add(ctx, SCMP_SYS(clone), 1, &no_ns, err, errlen)))
        goto fail;
    if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0))) {
        errmsg(err, errlen, r, "seccomp: clone3: %s", strerror(-r));
        goto fail;
    }
    /* Sockets: unix (vsock's host side, the API, migration), TCP over IPv4
     * or IPv6 (a live migration's stream to tcp:HOST:PORT), and with user
     * networking UDP too (slirp) - no raw or packet sockets, no netlink. */
    static const int families[] = { AF_UNIX, AF_INET, AF_INET6 };
    static const int types[] = { SOCK_STREAM, SOCK_DGRAM };
    for (size_t f = 0; f < 3; f++)
        for (size_t t = 0; t < (f == 0 || inet ? 2u : 1u); t++) {
            struct scmp_arg_cmp c[2] = {
                SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)families[f], 0),
                SCMP_A1_32(SCMP_CMP_MASKED_EQ, 0xf /* the type without SOCK_* flags */,
                           (uint32_t)types[t]),
            };
            if ((r = add(ctx, SCMP_SYS(socket), 2, c, err, errlen)))
                goto fail;
        }
    /* socketpair: unix only (the API's in-process stream to the vsock
     * device, virtio_vsock_connect_local). */
    struct scmp_arg_cmp unix_only = SCMP_A0_32(SCMP_CMP_EQ, AF_UNIX, 0);
    if ((r = add(ctx, SCMP_SYS(socketpair), 1, &unix_only, err, errlen)))
        goto fail;
    /* ioctl: the kernel takes the request as 32 bits. */
    for (size_t i = 0; i < sizeof(ioctl_requests) / sizeof(ioctl_requests[0]); i++) {
        struct scmp_arg_cmp c = SCMP_A1_32(SCMP_CMP_EQ, (uint32_t)ioctl_requests[i], 0);
        if ((r = add(ctx, SCMP_SYS(ioctl), 1, &c, err, errlen)))
            goto fail;
    }
    /* No new executable memory (the translator's code cache is mapped at
     * start-up). */
    struct scmp_arg_cmp no_exec = SCMP_A2_64(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
    if ((r = add(ctx, SCMP_SYS(mmap), 1, &no_exec, err, errlen)) ||
        (r = add(ctx, SCMP_SYS(mprotect), 1, &no_exec, err, errlen)))
        goto fail;
    /* prctl: thread names only. */
    struct scmp_arg_cmp set_name = SCMP_A0_32(SCMP_CMP_EQ, PR_SET_NAME, 0);
    if ((r = add(ctx, SCMP_SYS(prctl), 1, &set_name, err, errlen)))
        goto fail;
    /* Signals only to this process (abort, pthread_kill). */
    struct scmp_arg_cmp self = SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)getpid(), 0);
    if ((r = add(ctx, SCMP_SYS(tgkill), 1, &self, err, errlen)))
        goto fail;
    *out = ctx;
    return 0;
fail:
    seccomp_release(ctx);
    return r;
}

/* ---- the mount view ---- */

/* What the VMM keeps of /dev once its devices are open. */
static const struct { const char *name; unsigned minor; } dev_nodes[] = {
    { "null", 3 }, { "zero", 5 }, { "full", 7 }, { "random", 8 }, { "urandom", 9 },
};
/* /proc entries that change the whole host: read-only. */
static const char *const proc_readonly[] = {
    "/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs",
};
/* /proc entries that show the host's kernel memory or keys: masked. */
static const char *const proc_masked[] = {
    "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/kallsyms", "/proc/sched_debug",
};

static int mount_err(const char *what, const char *path, char *err, size_t errlen)
{
    return errmsg(err, errlen, -errno, "sandbox: %s %s: %s", what, path, strerror(errno));
}

/* /dev: a fresh tmpfs holding the character devices above, read-only. The
 * devices the VM uses (tap, block devices, its terminal) are open already. */
static int narrow_dev(char *err, size_t errlen)
{
    const unsigned long fl = MS_NOSUID | MS_NOEXEC;
    if (mount("nimbus-dev", "/dev", "tmpfs", fl, "mode=755,size=64k"))
        return mount_err("mounting a tmpfs on", "/dev", err, errlen);
    for (size_t i = 0; i < sizeof(dev_nodes) / sizeof(dev_nodes[0]); i++) {
        char path[32];
        snprintf(path, sizeof(path), "/dev/%s", dev_nodes[i].name);
        if (mknod(path, S_IFCHR | 0666, makedev(1, dev_nodes[i].minor)) || chmod(path, 0666))
            return mount_err("making", path, err, errlen);
    }
    if (mount(NULL, "/dev", NULL, MS_REMOUNT | MS_RDONLY | fl, "mode=755,size=64k"))
        return mount_err("making read-only", "/dev", err, errlen);
    return 0;
}

/* Bind-mounts `src` on `path` read-only (a missing path is skipped). */
static int bind_readonly(const char *src, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st))
        return 0;
    if (mount(src, path, NULL, MS_BIND | MS_REC, NULL))
        return mount_err("bind-mounting", path, err, errlen);
    if (mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV |
              MS_NOEXEC, NULL))
        return mount_err("making read-only", path, err, errlen);
    return 0;
}

static int narrow_mounts(char *err, size_t errlen)
{
    int r = narrow_dev(err, errlen);
    if (r)
        return r;
    /* /sys: nothing after start-up (cgroups, devices, the host's knobs). */
    if (mount("nimbus-sys", "/sys", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=555,size=4k"))
        return mount_err("mounting an empty tmpfs on", "/sys", err, errlen);
    for (size_t i = 0; i < sizeof(proc_readonly) / sizeof(proc_readonly[0]); i++)
        if ((r = bind_readonly(proc_readonly[i], proc_readonly[i], err, errlen)))
            return r;
    for (size_t i = 0; i < sizeof(proc_masked) / sizeof(proc_masked[0]); i++)
        if ((r = bind_readonly("/dev/null", proc_masked[i], err, errlen)))
            return r;
    return 0;
}

/* ---- the user ---- */

int sandbox_parse_run_as(const char *arg, struct sandbox_options *o, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long uid = strtoul(arg, &end, 10);
    if (errno || end == arg || *arg == '-' || *end != ':')
        return errmsg(err, errlen, -EINVAL, "invalid --run-as '%s' (UID:GID, numbers)", arg);
    const char *g = end + 1;
    unsigned long gid = strtoul(g, &end, 10);
    if (errno || end == g || *g == '-' || *end)
        return errmsg(err, errlen, -EINVAL, "invalid --run-as '%s' (UID:GID, numbers)", arg);
    /* (uid_t)-1 means "unchanged" to setresuid. */
    if (uid == 0 || gid == 0 || uid >= 0xffffffffu || gid >= 0xffffffffu)
        return errmsg(err, errlen, -EINVAL, "--run-as %s: the user and group must be neither "
                      "root (0) nor -1", arg);
    if (geteuid() != 0)
        return errmsg(err, errlen, -EPERM, "--run-as needs root (it drops to that user after "
                      "start-up)");
    o->run_as = true;
    o->uid = (uid_t)uid;
    o->gid = (gid_t)gid;
    return 0;
}

/* Becomes uid:gid with no supplementary groups, then checks that none of
 * root's identity or capabilities is left and that root cannot be taken
 * back. */
static int drop_user(uid_t uid, gid_t gid, char *err, size_t errlen)
{
    if (setgroups(0, NULL) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid))
        return errmsg(err, errlen, -errno, "--run-as %u:%u: %s", (unsigned)uid, (unsigned)gid,
                      strerror(errno));
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct caps[2];
    if (getresuid(&ru, &eu, &su) || getresgid(&rg, &eg, &sg) || getgroups(0, NULL) != 0 ||
        ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid ||
        syscall(SYS_capget, &h, caps) ||
        caps[0].effective || caps[0].permitted || caps[1].effective || caps[1].permitted)
        return errmsg(err, errlen, -EPERM, "--run-as %u:%u: the process still has other ids, "
                      "groups or capabilities", (unsigned)uid, (unsigned)gid);
    if (setresuid(0, 0, 0) == 0 || setresgid(0, 0, 0) == 0 || setgroups(0, NULL) == 0)
        return errmsg(err, errlen, -EPERM, "--run-as %u:%u: root could be taken back",
                      (unsigned)uid, (unsigned)gid);
    return 0;
}

/* ---- the two steps ---- */

int sandbox_enter(const struct sandbox_options *o, struct sandbox *sb, char *err, size_t errlen)
{
    *sb = (struct sandbox){ .opts = *o };
    if (o->mode == SANDBOX_OFF && !o->run_as)
        return 0;
    /* Nothing this process could exec would gain privileges (and a seccomp
     * filter may be installed without CAP_SYS_ADMIN). */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        return errmsg(err, errlen, -errno, "sandbox: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    if (o->mode == SANDBOX_OFF)
        return 0;
    if (unshare(CLONE_NEWNS)) {
        snprintf(sb->note, sizeof(sb->note), "no private mount view (unshare(CLONE_NEWNS): %s)",
                 strerror(errno));
        return 0;
    }
    /* Before any mount: nothing here may reach the host's mount table. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
        return mount_err("making private", "/", err, errlen);
    sb->mount_ns = true;
    return 0;
}

int sandbox_lock(struct sandbox *sb, bool inet, char *err, size_t errlen)
{
    int r;
    /* Not dumpable: /proc/PID/mem, ptrace and the like need CAP_SYS_PTRACE
     * (the kernel does this on a change of user, not otherwise). */
    if ((sb->opts.mode != SANDBOX_OFF || sb->opts.run_as) && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
        return errmsg(err, errlen, -errno, "sandbox: PR_SET_DUMPABLE: %s", strerror(errno));
    if (sb->mount_ns && (r = narrow_mounts(err, errlen)))
        return r;
    if (sb->opts.run_as && (r = drop_user(sb->opts.uid, sb->opts.gid, err, errlen)))
        return r;
    if (sb->opts.mode == SANDBOX_OFF)
        return 0;
    void *ctx;
    if ((r = sandbox_filter_build(sb->opts.mode, inet, &ctx, err, errlen)))
        return r;
    r = seccomp_load(ctx);
    seccomp_release(ctx);
    if (r)
        return errmsg(err, errlen, r, "seccomp: cannot load the filter on every thread: %s",
                      strerror(-r));
    return 0;
}
