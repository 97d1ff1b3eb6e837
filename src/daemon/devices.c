/* A VM's disks and taps, opened by nimbusd. See devices.h. */
#include "daemon/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/errmsg.h"

/* The image as nimbus run would open it (block_open_file's flags), locked
 * as qcow2_open locks it: one writer or any number of readers. Raw images
 * take no lock there, nor here. */
static int open_disk(const struct vmdef_disk *k, const char *f, char *err, size_t errlen)
{
    int fd = open(k->path, (k->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errmsg(err, errlen, -errno, "%s: %.200s: %s%s", f, k->path, strerror(errno),
                      errno == EROFS || errno == EACCES ? (k->readonly ? "" : " (for writing)")
                                                        : "");
    if (k->format == BLOCK_FORMAT_QCOW2 &&
        flock(fd, (k->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return errmsg(err, errlen, -EBUSY, "%s: %.200s: image is in use (locked by another "
                          "process)", f, k->path);
        return errmsg(err, errlen, -e, "%s: %.200s: cannot lock: %s", f, k->path, strerror(e));
    }
    return fd;
}

/* Creates (if missing) and attaches the tap `ifname`, as net_tap_open does. */
static int open_tap(const char *ifname, const char *f, char *err, size_t errlen)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errmsg(err, errlen, -errno, "%s: %s: cannot open /dev/net/tun: %s", f, ifname,
                      strerror(errno));
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(fd, TUNSETIFF, &ifr)) {
        int e = errno;
        close(fd);
        const char *hint = e == EPERM || e == EACCES
                               ? " (needs CAP_NET_ADMIN, or a tap made for the daemon's user "
                                 "with 'ip tuntap add NAME mode tap user USER')"
                           : e == EBUSY  ? " (in use by another process, or not a tap)"
                           : e == EINVAL ? " (an interface of that name that is not a tap)"
                                         : "";
        return errmsg(err, errlen, -e, "%s: %s: cannot attach: %s%s", f, ifname, strerror(e),
                      hint);
    }
    return fd;
}

int vm_devices_open(const struct vmdef *d, int first_fd, struct vm_devices *out, char *field,
                    size_t fieldlen, char *err, size_t errlen)
{
    *out = (struct vm_devices){ .nfds = 0 };
    for (unsigned i = 0; i < VMDEF_MAX_DEVICES; i++)
        out->disk_fd[i] = out->tap_fd[i] = -1;
    char f[48];
    int fd = 0;
    for (unsigned i = 0; i < d->ndisks && fd >= 0; i++) {
        snprintf(f, sizeof(f), "disks[%u].path", i);
        if ((fd = open_disk(&d->disks[i], f, err, errlen)) >= 0) {
            out->disk_fd[i] = first_fd + (int)out->nfds;
            out->fds[out->nfds++] = fd;
        }
    }
    for (unsigned i = 0; i < d->nnets && fd >= 0; i++) {
        if (d->nets[i].type != VMDEF_NET_TAP)
            continue;
        snprintf(f, sizeof(f), "nets[%u].ifname", i);
        if ((fd = open_tap(d->nets[i].ifname, f, err, errlen)) >= 0) {
            out->tap_fd[i] = first_fd + (int)out->nfds;
            out->fds[out->nfds++] = fd;
        }
    }
    if (fd < 0) {
        snprintf(field, fieldlen, "%s", f);
        vm_devices_close(out);
        return fd;
    }
    return 0;
}

void vm_devices_close(struct vm_devices *v)
{
    for (size_t i = 0; i < v->nfds; i++)
        close(v->fds[i]);
    v->nfds = 0;
}
