/* Option values that several commands take (run, restore, exec). See cli.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#include "base/errmsg.h"
#include "cli/cli.h"
#include "cpu/jit/jit.h"
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
