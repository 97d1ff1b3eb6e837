/* Whole-VM snapshots: a directory holding the state stream (every
 * component's sections, src/state/state.h) and guest RAM apart from it
 * (docs/snapshots.md has the layout).
 *
 *   DIR/vm.state    the sections: the board config, each hart, each
 *                   platform device, each virtio device and its transport
 *   DIR/memory      guest RAM, page N at offset N * 4 KiB, zero pages left
 *                   as holes (a sparse file); or, compressed,
 *   DIR/memory.zst  guest RAM in zstd-compressed chunks
 *
 * Threads: the VM's I/O thread (the API's and the control socket's). */
#ifndef NIMBUS_VM_SNAPSHOT_H
#define NIMBUS_VM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/virt.h"

struct vm_snapshot_options {
    const char *path;   /* the snapshot directory (created; must not exist or be empty) */
    bool diff;          /* only the pages written since the last snapshot (needs one) */
    bool compress;      /* memory.zst instead of a sparse memory file */
    bool stop;          /* end the VM after saving (running/paused -> saved) */
};

struct vm_snapshot_result {
    uint64_t pause_us;         /* how long the guest stood still (0 if it was paused) */
    uint64_t save_us;          /* writing the state and memory */
    uint64_t state_bytes;      /* size of vm.state */
    uint64_t memory_bytes;     /* bytes of memory data written (after compression) */
    uint64_t pages_written;    /* non-zero (or, for a diff, dirty) pages written */
};

/* Saves the VM. A running VM is paused for the save and resumed after it
 * (unless opts->stop); a paused one stays paused. Returns 0, or -errno with
 * a one-line message: -EINVAL (bad options), -EEXIST (a non-empty
 * directory), -ENOTSUP (a device that can't be saved), -ESHUTDOWN (the VM
 * stopped), or an I/O error. A failed save leaves the VM as it was. */
int vm_snapshot_save(struct virt_machine *m, const struct vm_snapshot_options *opts,
                     struct vm_snapshot_result *res, char *err, size_t errlen);

#endif
