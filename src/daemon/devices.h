/* A VM's disks and taps, opened by nimbusd and handed to its process.
 *
 * The daemon opens each disk image of a definition (read-only or
 * read-write as the definition says, with the lock nimbus run would take:
 * flock, shared for a read-only qcow2 image, exclusive otherwise) and
 * creates or attaches each tap interface (TUNSETIFF on /dev/net/tun, with
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, as nimbus run's own tap open does).
 * The descriptors go to the VM process through its supervisor at fixed
 * numbers (`first_fd` on) and its command line names them (`--disk fd=N`,
 * `--net tap,fd=N`): the VM process never opens an image or /dev/net/tun
 * by name, so its user needs no right on either (docs/security.md). A
 * qcow2 image's backing files are the exception: the VM process opens
 * them by name, read-only, at start-up (as QEMU does under libvirt).
 *
 * A lock lives with the open file description: it is the VM process's once
 * the daemon closed its copies, and ends with that process.
 *
 * Errors: -errno and one line "FIELD: PATH: why" naming the definition's
 * field (disks[1].path, nets[0].ifname), which goes into `field`.
 *
 * Threads: any; a struct vm_devices is not shared. */
#ifndef NIMBUS_DAEMON_DEVICES_H
#define NIMBUS_DAEMON_DEVICES_H

#include <stddef.h>

#include "daemon/vmdef.h"

struct vm_devices {
    int fds[2 * VMDEF_MAX_DEVICES];       /* the daemon's descriptors, in passing order */
    size_t nfds;
    int disk_fd[VMDEF_MAX_DEVICES];       /* each disk's number in the VM process */
    int tap_fd[VMDEF_MAX_DEVICES];        /* each card's, -1 for a user-network card */
};

/* Opens d's disks and taps (O_CLOEXEC: they reach only the process they
 * are passed to). The i-th descriptor of out->fds becomes first_fd + i in
 * the VM process. On failure nothing is left open. */
int vm_devices_open(const struct vmdef *d, int first_fd, struct vm_devices *out, char *field,
                    size_t fieldlen, char *err, size_t errlen);

/* Closes the daemon's copies (once the supervisor holds them, or on failure). */
void vm_devices_close(struct vm_devices *v);

#endif
