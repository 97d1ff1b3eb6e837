/* Unit tests for the VM process's confinement (src/vm/sandbox.c) and the
 * descriptors a daemon hands in, without a guest:
 *  - the options: --sandbox[=kill|log], --run-as UID:GID (refused for
 *    non-root callers, root ids, junk), fd=N (closed, stdio, junk), a
 *    disk descriptor's access mode;
 *  - the seccomp filter, loaded in forked children: what the VMM needs
 *    works (threads, fork, sockets of the allowed kinds, terminal ioctls),
 *    clone3 gets ENOSYS, and namespaces, raw and packet sockets, other
 *    ioctls, executable mappings, execve, ptrace and signals to other
 *    processes kill the process with SIGSYS; in log mode they don't;
 *  - sandbox_enter + sandbox_lock as a whole (as root): the private mount
 *    view (a minimal /dev, an empty /sys, /proc/sys read-only), the user
 *    dropped for good, then the filter;
 *  - disks and taps by descriptor: block_open on a descriptor (access mode
 *    checked, reads the file), net_tap_open_fd refusing what is not an
 *    attached tap and taking one that is. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "block/block.h"
#include "cli/cli.h"
#include "net/net.h"
#include "vm/sandbox.h"

#include "check.h"

static void test_options(void)
{
    enum sandbox_mode m = SANDBOX_OFF;
    char err[256], name[4096];
    CHECK(cli_parse_sandbox(NULL, &m) == 0 && m == SANDBOX_KILL);
    CHECK(cli_parse_sandbox("log", &m) == 0 && m == SANDBOX_LOG);
    CHECK(cli_parse_sandbox("kill", &m) == 0 && m == SANDBOX_KILL);
    CHECK_EQ(cli_parse_sandbox("off", &m), -EINVAL);
    CHECK_EQ(cli_parse_sandbox("", &m), -EINVAL);

    struct sandbox_options o = { 0 };
    const char *bad[] = { "", "1000", "1000:", ":1000", "-1:5", "5:-1", "a:b", "1000:1000x",
                          "0:1000", "1000:0", "0:0", "4294967295:5", "99999999999:5" };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_MSG(sandbox_parse_run_as(bad[i], &o, err, sizeof(err)) == -EINVAL, "'%s'", bad[i]);
    CHECK(!o.run_as);
    if (geteuid() == 0) {
        CHECK_EQ(sandbox_parse_run_as("1234:5678", &o, err, sizeof(err)), 0);
        CHECK(o.run_as && o.uid == 1234 && o.gid == 5678);
        /* Not root: refused (in a child that gave root up). */
        pid_t pid = fork();
        if (pid == 0) {
            struct sandbox_options c = { 0 };
            if (setresuid(65534, 65534, 65534))
                _exit(2);
            _exit(sandbox_parse_run_as("1234:5678", &c, err, sizeof(err)) == -EPERM &&
                  strstr(err, "needs root") && !c.run_as ? 0 : 1);
        }
        int st;
        CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    } else {
        CHECK_EQ(sandbox_parse_run_as("1234:5678", &o, err, sizeof(err)), -EPERM);
    }

    /* fd=N */
    int fd = -1;
    CHECK(cli_parse_fd("abc", &fd, name, sizeof(name), err, sizeof(err)) == -EINVAL);
    CHECK(cli_parse_fd("", &fd, name, sizeof(name), err, sizeof(err)) == -EINVAL);
    CHECK(cli_parse_fd("-4", &fd, name, sizeof(name), err, sizeof(err)) == -EINVAL);
    CHECK(cli_parse_fd("2", &fd, name, sizeof(name), err, sizeof(err)) == -EINVAL);
    CHECK(cli_parse_fd("99999999999", &fd, name, sizeof(name), err, sizeof(err)) == -EINVAL);
    CHECK(cli_parse_fd("1000", &fd, name, sizeof(name), err, sizeof(err)) == -EBADF);
    char path[] = "/tmp/nimbus-test-sandbox.XXXXXX";
    int img = mkstemp(path);
    CHECK(img > 2);
    char num[16];
    snprintf(num, sizeof(num), "%d", img);
    CHECK_EQ(cli_parse_fd(num, &fd, name, sizeof(name), err, sizeof(err)), 0);
    CHECK(fd == img);
    CHECK_MSG(!strcmp(name, path), "%s vs %s", name, path);
    int ro = open(path, O_RDONLY);
    CHECK_EQ(cli_check_disk_fd(img, false, err, sizeof(err)), 0);
    CHECK_EQ(cli_check_disk_fd(ro, true, err, sizeof(err)), 0);
    CHECK_EQ(cli_check_disk_fd(ro, false, err, sizeof(err)), -EBADF);
    CHECK(strstr(err, "read-only") != NULL);
    close(ro);
    close(img);
    unlink(path);
}

/* ---- the filter, in children ---- */

enum probe {
    P_ALLOWED, P_CLONE3, P_UNSHARE, P_CLONE_NEWNET, P_SOCK_PACKET, P_SOCK_RAW, P_SOCK_NETLINK,
    P_IOCTL_TIOCSTI, P_MMAP_EXEC, P_MPROTECT_EXEC, P_EXECVE, P_PTRACE, P_KILL_OTHER, P_MOUNT,
    P_SETUID, P_BPF, P_SOCK_INET, P_SOCK_UDP, P_SOCK_UNIX,
};

static void *thread_main(void *arg)
{
    return arg;
}

/* The VMM's ordinary moves; 0 when all worked. */
static int allowed_moves(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) || write(p[1], "x", 1) != 1)
        return 1;
    char c;
    if (read(p[0], &c, 1) != 1 || c != 'x')
        return 2;
    pthread_t t;   /* glibc tries clone3 (ENOSYS) and falls back to clone */
    if (pthread_create(&t, NULL, thread_main, NULL) || pthread_join(t, NULL))
        return 3;
    pid_t pid = fork();   /* the snapshot's memory writer */
    if (pid == 0)
        _exit(7);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
        return 4;
    int s4 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int s6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int su = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s4 < 0 || su < 0 || (s6 < 0 && errno != EAFNOSUPPORT))
        return 5;
    struct termios tio;
    if (ioctl(p[0], TCGETS, &tio) == 0 || errno != ENOTTY)   /* allowed, and no terminal */
        return 6;
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m, 4096, PROT_READ) || madvise(m, 4096, MADV_DONTNEED))
        return 7;
    if (syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), 0))   /* signal 0 to itself */
        return 8;
    return 0;
}

static int probe(enum probe what)
{
    int fd;
    switch (what) {
    case P_ALLOWED:
        return allowed_moves();
    case P_CLONE3: {
        char args[88] = { 0 };
        return syscall(SYS_clone3, args, sizeof(args)) == -1 && errno == ENOSYS ? 0 : 1;
    }
    case P_UNSHARE:
        return unshare(0) == 0 ? 0 : 1;   /* a no-op, if it were allowed */
    case P_CLONE_NEWNET: {
        long r = syscall(SYS_clone, CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, 0);
        if (r == 0)
            _exit(0);
        return 0;   /* only reached in log mode (or without the privilege) */
    }
    case P_SOCK_PACKET:
        fd = socket(AF_PACKET, SOCK_RAW, 0);
        return 0;
    case P_SOCK_RAW:
        fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
        return 0;
    case P_SOCK_NETLINK:
        fd = socket(AF_NETLINK, SOCK_RAW, 0);
        return 0;
    case P_IOCTL_TIOCSTI: {
        char c = 'x';
        return ioctl(0, TIOCSTI, &c) < 0 ? 0 : 0;
    }
    case P_MMAP_EXEC:
        return mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
               MAP_FAILED;
    case P_MPROTECT_EXEC: {
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return mprotect(m, 4096, PROT_READ | PROT_EXEC) != 0;
    }
    case P_EXECVE: {
        char *argv[] = { "/bin/true", NULL };
        execve("/bin/true", argv, NULL);
        return 0;
    }
    case P_PTRACE:
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        return 0;
    case P_KILL_OTHER:
        syscall(SYS_tgkill, 1, 1, 0);   /* signal 0: harmless if it got through */
        return 0;
    case P_MOUNT:
        syscall(SYS_mount, "none", "/nonexistent", "tmpfs", 0, NULL);
        return 0;
    case P_SETUID:
        syscall(SYS_setresuid, -1, -1, -1);
        return 0;
    case P_BPF:
        syscall(SYS_bpf, 0, NULL, 0);
        return 0;
    case P_SOCK_INET:
        fd = socket(AF_INET, SOCK_STREAM, 0);
        return 0;
    case P_SOCK_UDP:
        fd = socket(AF_INET6, SOCK_DGRAM, 0);
        return 0;
    case P_SOCK_UNIX:
        return socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0) < 0;
    }
    (void)fd;
    return 9;
}

/* Runs `what` in a child under the filter; its wait status. */
static int run_filtered_inet(enum sandbox_mode mode, bool inet, enum probe what)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        void *ctx;
        char err[256];
        if (sandbox_filter_build(mode, inet, &ctx, err, sizeof(err)) || seccomp_load(ctx))
            _exit(98);
        seccomp_release(ctx);
        _exit(probe(what));
    }
    int st = -1;
    waitpid(pid, &st, 0);
    return st;
}

static int run_filtered(enum sandbox_mode mode, enum probe what)
{
    return run_filtered_inet(mode, true, what);
}

static bool killed_by_sigsys(int st)
{
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS;
}

static void test_filter(void)
{
    void *ctx;
    char err[256];
    CHECK_EQ(sandbox_filter_build(SANDBOX_KILL, true, &ctx, err, sizeof(err)), 0);
    seccomp_release(ctx);
    CHECK_EQ(sandbox_filter_build(SANDBOX_LOG, false, &ctx, err, sizeof(err)), 0);
    seccomp_release(ctx);
    CHECK_EQ(sandbox_filter_build(SANDBOX_OFF, true, &ctx, err, sizeof(err)), -EINVAL);
    unsigned n = sandbox_filter_size();
    CHECK(n > 50 && n < 150);
    printf("seccomp allowlist: %u syscalls\n", n);

    int st = run_filtered(SANDBOX_KILL, P_ALLOWED);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "allowed moves: status 0x%x", st);
    st = run_filtered(SANDBOX_KILL, P_CLONE3);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "clone3: status 0x%x", st);
    static const struct { enum probe p; const char *name; } forbidden[] = {
        { P_UNSHARE, "unshare" }, { P_CLONE_NEWNET, "clone(CLONE_NEWNET)" },
        { P_SOCK_PACKET, "socket(AF_PACKET)" }, { P_SOCK_RAW, "socket(AF_INET, SOCK_RAW)" },
        { P_SOCK_NETLINK, "socket(AF_NETLINK)" }, { P_IOCTL_TIOCSTI, "ioctl(TIOCSTI)" },
        { P_MMAP_EXEC, "mmap(PROT_EXEC)" }, { P_MPROTECT_EXEC, "mprotect(PROT_EXEC)" },
        { P_EXECVE, "execve" }, { P_PTRACE, "ptrace" }, { P_KILL_OTHER, "tgkill(other)" },
        { P_MOUNT, "mount" }, { P_SETUID, "setresuid" }, { P_BPF, "bpf" },
    };
    for (unsigned i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        st = run_filtered(SANDBOX_KILL, forbidden[i].p);
        CHECK_MSG(killed_by_sigsys(st), "%s: status 0x%x, not SIGSYS", forbidden[i].name, st);
    }
    /* Without user networking: unix sockets, and TCP (a migration's
     * stream), but no UDP. */
    st = run_filtered_inet(SANDBOX_KILL, false, P_SOCK_UDP);
    CHECK_MSG(killed_by_sigsys(st), "socket(AF_INET6, SOCK_DGRAM) without inet: status 0x%x", st);
    st = run_filtered_inet(SANDBOX_KILL, false, P_SOCK_INET);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "socket(AF_INET) without inet: 0x%x", st);
    st = run_filtered_inet(SANDBOX_KILL, true, P_SOCK_UDP);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "UDP with inet: 0x%x", st);
    st = run_filtered_inet(SANDBOX_KILL, false, P_SOCK_UNIX);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "socket(AF_UNIX) without inet: 0x%x", st);
    /* Log mode: logged, not killed. */
    st = run_filtered(SANDBOX_LOG, P_UNSHARE);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "log mode unshare: status 0x%x", st);
    st = run_filtered(SANDBOX_LOG, P_ALLOWED);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "log mode: status 0x%x", st);
}

/* The two steps together, as root: mount view, user, filter. */
static int whole_child(void)
{
    struct sandbox_options o = { .mode = SANDBOX_KILL, .run_as = true, .uid = 65534,
                                 .gid = 65534 };
    struct sandbox sb;
    char err[256];
    if (sandbox_enter(&o, &sb, err, sizeof(err)) || !sb.mount_ns)
        return 10;
    /* Start-up: a descriptor opened before the lock stays usable. */
    int null_before = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_before < 0 || sandbox_lock(&sb, false, err, sizeof(err))) {
        fprintf(stderr, "lock: %s\n", err);
        return 11;
    }
    if (getuid() != 65534 || geteuid() != 65534 || getgid() != 65534)
        return 12;
    struct stat st;
    if (stat("/dev/null", &st) || !S_ISCHR(st.st_mode) || !stat("/dev/net/tun", &st) ||
        !stat("/dev/pts", &st))
        return 13;   /* /dev: only the harmless nodes */
    if (!stat("/sys/kernel", &st) || !stat("/sys/fs/cgroup", &st))
        return 14;   /* /sys: empty */
    int fd = open("/proc/sys/kernel/hostname", O_WRONLY);
    if (fd >= 0)
        return 15;   /* /proc/sys: read-only (EROFS; EACCES as the new user) */
    if (write(null_before, "x", 1) != 1)
        return 16;
    if (open("/proc/self/status", O_RDONLY) < 0)
        return 17;   /* /proc/self stays */
    if (prctl(PR_GET_DUMPABLE) != 0)
        return 19;
    syscall(SYS_setresuid, 0, 0, 0);   /* the filter: SIGSYS */
    return 18;
}

static void test_whole(void)
{
    if (geteuid() != 0) {
        printf("not root: skipping sandbox_enter/lock as a whole\n");
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(whole_child());
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK_MSG(killed_by_sigsys(st), "status 0x%x (exit %d)", st, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    /* The mounts were the child's own: this process still sees /dev. */
    struct stat s;
    CHECK(stat("/dev/pts", &s) == 0 || stat("/dev/net/tun", &s) == 0);

    /* Without privilege: the mount view is skipped with a note, and
     * --sandbox still works. */
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
            _exit(20);
        struct sandbox_options o = { .mode = SANDBOX_KILL };
        struct sandbox sb;
        char err[256];
        if (sandbox_enter(&o, &sb, err, sizeof(err)) || sb.mount_ns ||
            !strstr(sb.note, "no private mount view"))
            _exit(21);
        if (sandbox_lock(&sb, false, err, sizeof(err)))
            _exit(22);
        _exit(unshare(0) ? 23 : 24);
    }
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK_MSG(killed_by_sigsys(st), "unprivileged: status 0x%x (exit %d)", st,
              WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* ---- devices by descriptor ---- */

static void test_block_fd(void)
{
    char path[] = "/tmp/nimbus-test-sandbox-disk.XXXXXX", err[512];
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    char data[4096];
    memset(data, 0x5a, sizeof(data));
    CHECK_EQ(pwrite(fd, data, sizeof(data), 0), sizeof(data));
    CHECK(ftruncate(fd, 1 << 20) == 0);
    int ro = open(path, O_RDONLY | O_CLOEXEC);
    /* The file goes: only the descriptors know it. */
    unlink(path);

    struct block_backend *b;
    struct block_options w = { .format = BLOCK_FORMAT_RAW, .by_fd = true, .fd = ro };
    CHECK_EQ(block_open("disk", &w, &b, err, sizeof(err)), -EBADF);
    struct block_options r = { .format = BLOCK_FORMAT_RAW, .readonly = true, .by_fd = true,
                               .fd = ro };
    CHECK_EQ(block_open("disk", &r, &b, err, sizeof(err)), 0);
    if (b) {
        CHECK_EQ(b->size, 1 << 20);
        char got[512];
        struct iovec iov = { got, sizeof(got) };
        CHECK_EQ(b->ops->preadv(b, &iov, 1, 0), 0);
        CHECK(got[0] == 0x5a && got[511] == 0x5a);
        block_close(b);
    }
    w.fd = fd;
    CHECK_EQ(block_open("disk", &w, &b, err, sizeof(err)), 0);
    if (b) {
        char z[512] = { 0 };
        struct iovec iov = { z, sizeof(z) };
        CHECK_EQ(b->ops->pwritev(b, &iov, 1, 0), 0);
        block_close(b);
        char got;
        CHECK(pread(fd, &got, 1, 0) == 1 && got == 0);   /* it wrote the file */
    }
    /* Still open after the backends closed their duplicates. */
    CHECK(fcntl(fd, F_GETFD) >= 0 && fcntl(ro, F_GETFD) >= 0);
    /* A pipe is no disk. */
    int p[2];
    CHECK(pipe(p) == 0);
    struct block_options pp = { .by_fd = true, .fd = p[0], .readonly = true };
    CHECK(block_open("pipe", &pp, &b, err, sizeof(err)) < 0);
    CHECK_MSG(strstr(err, "not a regular file") != NULL, "%s", err);
    close(p[0]);
    close(p[1]);
    close(fd);
    close(ro);
}

static void test_tap_fd(void)
{
    char err[256], ifname[16];
    struct net_backend *b = NULL;
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK_EQ(net_tap_open_fd(p[0], ifname, &b, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "not a /dev/net/tun") != NULL);
    close(p[0]);
    close(p[1]);
    CHECK_EQ(net_tap_open_fd(1000, ifname, &b, err, sizeof(err)), -EBADF);
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        printf("no /dev/net/tun: skipping tap descriptors\n");
        return;
    }
    CHECK_EQ(net_tap_open_fd(fd, ifname, &b, err, sizeof(err)), -EINVAL);
    CHECK_MSG(strstr(err, "not attached") != NULL, "%s", err);
    /* A tun (not tap) interface, then a tap without the vnet header:
     * refused. Both vanish when their descriptor closes. */
    struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR };
    if (ioctl(fd, TUNSETIFF, &ifr)) {
        printf("no CAP_NET_ADMIN: skipping attached tap descriptors\n");
        close(fd);
        return;
    }
    CHECK_EQ(net_tap_open_fd(fd, ifname, &b, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "not a tap") != NULL);
    close(fd);
    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    ifr = (struct ifreq){ .ifr_flags = IFF_TAP | IFF_NO_PI };
    CHECK(ioctl(fd, TUNSETIFF, &ifr) == 0);
    CHECK_EQ(net_tap_open_fd(fd, ifname, &b, err, sizeof(err)), -EINVAL);
    close(fd);
    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    ifr = (struct ifreq){ .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
    CHECK(ioctl(fd, TUNSETIFF, &ifr) == 0);
    CHECK_EQ(net_tap_open_fd(fd, ifname, &b, err, sizeof(err)), 0);
    CHECK_MSG(!strcmp(ifname, ifr.ifr_name), "%s vs %s", ifname, ifr.ifr_name);
    CHECK(b && b->vnet_hdr);
    net_backend_close(b);
    close(fd);
}

int main(void)
{
    test_options();
    test_filter();
    test_whole();
    test_block_fd();
    test_tap_fd();
    return check_summary("test_sandbox");
}
