/* Option values that several commands take (run, restore, exec). See cli.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "cli/cli.h"
#include "cpu/jit/jit.h"
#include "vm/sandbox.h"
#include "vm/snapshot.h"

int cli_parse_vsock(const char *arg, uint64_t *cid_out, char *path, size_t pathlen, char *err,
                    size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long long cid = strtoull(arg, &end, 10);
    if (errno || end == arg || (*end && *end != ',') || arg[0] == '-')
        return errmsg(err, errlen, -EINVAL, "invalid --vsock '%s' (CID[,path=PATH])", arg);
    /* 0, 1 and 2 are the hypervisor, local and host; -1U is VMADDR_CID_ANY. */
    if (cid < 3 || cid >= 0xffffffffull)
        return errmsg(err, errlen, -EINVAL, "--vsock CID must be between 3 and 4294967294 "
                      "(got '%s')", arg);
    *cid_out = cid;
    if (*end == '\0') {
        snprintf(path, pathlen, "nimbus-vsock-%llu.sock", cid);
        return 0;
    }
    const char *opt = end + 1;
    if (strncmp(opt, "path=", 5) || !opt[5])
        return errmsg(err, errlen, -EINVAL, "unknown --vsock option '%s' (path=PATH)", opt);
    /* PATH_PORT must fit too: room for "_4294967295". */
    if (strlen(opt + 5) + 11 >= pathlen)
        return errmsg(err, errlen, -EINVAL, "--vsock path too long (at most %zu bytes): %s",
                      pathlen - 12, opt + 5);
    snprintf(path, pathlen, "%s", opt + 5);
    return 0;
}

int cli_clone_identity(struct vm_restore_options *o)
{
    uint8_t rnd[VIRT_MAX_NETS * 3 + 4];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        return -1;
    o->clone_macs = true;
    for (unsigned i = o->nmacs; i < VIRT_MAX_NETS; i++) {
        /* QEMU's locally administered prefix, three random bytes. */
        uint8_t mac[6] = { 0x52, 0x54, 0x00, rnd[3 * i], rnd[3 * i + 1], rnd[3 * i + 2] };
        memcpy(o->macs[i], mac, 6);
    }
    if (!o->vsock_cid) {
        uint32_t v;
        memcpy(&v, rnd + VIRT_MAX_NETS * 3, 4);
        o->vsock_cid = 3 + v % (0xfffffffeu - 3);
        snprintf(o->vsock_path, sizeof(o->vsock_path), "nimbus-vsock-%llu.sock",
                 (unsigned long long)o->vsock_cid);
        o->vsock_cid_optional = true;
    }
    return 0;
}

int cli_parse_restore_memory(const char *arg, enum vm_restore_memory *how)
{
    if (!strcmp(arg, "lazy"))
        *how = VM_RESTORE_LAZY;
    else if (!strcmp(arg, "eager"))
        *how = VM_RESTORE_EAGER;
    else if (!strcmp(arg, "uffd"))
        *how = VM_RESTORE_UFFD;
    else
        return -EINVAL;
    return 0;
}

int cli_parse_jit(const char *arg, bool *on)
{
    if (strcmp(arg, "on") && strcmp(arg, "off"))
        return -EINVAL;
    *on = !strcmp(arg, "on");
    return 0;
}

int cli_parse_jit_cache(const char *arg, uint64_t *bytes)
{
    unsigned long long v;
    if (cli_parse_size(arg, &v) || v < JIT_MIN_CACHE || v > (1ull << 31))
        return -EINVAL;
    *bytes = v;
    return 0;
}

int cli_parse_jit_threshold(const char *arg, unsigned *threshold)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (errno || *end || end == arg || *arg == '-' || v > JIT_MAX_THRESHOLD)
        return -EINVAL;
    *threshold = (unsigned)v;
    return 0;
}

int64_t cli_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int cli_parse_sandbox(const char *arg, enum sandbox_mode *mode)
{
    if (!arg || !strcmp(arg, "kill"))
        *mode = SANDBOX_KILL;
    else if (!strcmp(arg, "log"))
        *mode = SANDBOX_LOG;
    else
        return -EINVAL;
    return 0;
}

int cli_sandbox_option(int opt, const char *arg, struct sandbox_options *o, char *err,
                       size_t errlen)
{
    if (opt == CLI_OPT_RUN_AS)
        return sandbox_parse_run_as(arg, o, err, errlen);
    if (cli_parse_sandbox(arg, &o->mode))
        return errmsg(err, errlen, -EINVAL, "invalid --sandbox=%s (kill or log)", arg);
    return 0;
}

int cli_parse_fd(const char *arg, int *fd, char *name, size_t namelen, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long n = strtol(arg, &end, 10);
    if (errno || end == arg || *end || n < 0 || n > INT_MAX)
        return errmsg(err, errlen, -EINVAL, "invalid descriptor 'fd=%s' (a number)", arg);
    if (n <= 2)
        return errmsg(err, errlen, -EINVAL, "fd=%ld is standard input, output or error", n);
    if (fcntl((int)n, F_GETFD) < 0)
        return errmsg(err, errlen, -EBADF, "fd=%ld is not an open descriptor", n);
    *fd = (int)n;
    /* The file it was opened as, for messages and the snapshot's record
     * (a qcow2 image's relative backing names resolve from it too). */
    char proc[32];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", *fd);
    ssize_t k = readlink(proc, name, namelen - 1);
    if (k <= 0 || name[0] != '/')
        k = snprintf(name, namelen, "fd:%d", *fd);
    name[k < (ssize_t)namelen ? k : (ssize_t)namelen - 1] = '\0';
    return 0;
}

int cli_check_disk_fd(int fd, bool readonly, char *err, size_t errlen)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return errmsg(err, errlen, -EBADF, "--disk fd=%d is not an open descriptor", fd);
    if ((fl & O_ACCMODE) == O_WRONLY || (!readonly && (fl & O_ACCMODE) != O_RDWR))
        return errmsg(err, errlen, -EBADF, "--disk fd=%d is open %s: a disk needs it open for "
                      "reading%s", fd, (fl & O_ACCMODE) == O_WRONLY ? "write-only" : "read-only",
                      readonly ? "" : " and writing (or give readonly)");
    return 0;
}

int cli_sandbox_enter(const struct sandbox_options *o, struct sandbox *sb, const char *cmd)
{
    char err[256];
    if (sandbox_enter(o, sb, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return -1;
    }
    if (sb->note[0])
        fprintf(stderr, "%s: note: %s\n", cmd, sb->note);
    return 0;
}

int cli_sandbox_lock(struct sandbox *sb, const struct virt_config *c, const char *cmd)
{
    char err[256];
    bool inet = false;
    for (unsigned i = 0; i < c->nnets; i++)
        inet |= c->nets[i].kind == VIRT_NET_USER;
    if (sandbox_lock(sb, inet, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return -1;
    }
    return 0;
}
