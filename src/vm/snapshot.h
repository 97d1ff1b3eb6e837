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
#include "machine/virt_state.h"

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

enum vm_restore_memory {
    VM_RESTORE_LAZY,    /* map the memory file privately: pages load on first touch */
    VM_RESTORE_EAGER,   /* read all of it into fresh RAM before the guest runs */
    VM_RESTORE_UFFD,    /* fresh RAM filled on first touch by userfaultfd, the rest in
                           the background (mem/ram_fill.h) */
};

struct vm_restore_options {
    const char *path;                     /* the snapshot directory */
    /* Disks in place of the saved ones, in slot order (NULL: the saved
     * path): an overlay over the saved disk, say. Only its size is
     * checked against the saved disk's. */
    const char *disks[VIRT_MAX_DISKS];
    unsigned ndisks;
    /* A replacement's format (BLOCK_FORMAT_PROBE: the saved disk's): a
     * qcow2 overlay over a disk saved with format=raw, say. */
    enum block_format disk_formats[VIRT_MAX_DISKS];
    /* Slot i's disk handed in as the open descriptor disk_fd[i] (block.h's
     * by_fd; disks[i] then only names it): the saved disk itself, opened by
     * someone else, so it gets the full check (size and checksum). */
    bool disk_by_fd[VIRT_MAX_DISKS];
    int disk_fd[VIRT_MAX_DISKS];
    /* The i-th tap card (in card order among the tap cards) on the attached
     * descriptor tap_fds[i] instead of opening its saved interface. */
    int tap_fds[VIRT_MAX_NETS];
    unsigned ntap_fds;
    /* The replacements are overlays over the saved disks: the saved disks
     * get the full check (size and checksum) as if not replaced. */
    bool disks_over_saved;
    bool force_disks;                     /* restore even if a disk is not the one saved */
    /* Check only each disk's size, not its first 64 KiB (a migration: the
     * source's guest goes on writing the shared disk). */
    bool disks_size_only;
    enum vm_restore_memory memory;
    /* Guest-visible identity of a clone: network cards 0..nmacs-1 get
     * macs[i] instead of the saved MAC, and a vsock device gets vsock_cid
     * (non-zero) and the host socket vsock_path. */
    uint8_t macs[VIRT_MAX_NETS][6];
    unsigned nmacs;
    bool clone_macs;           /* macs[] holds one for every card the snapshot may have */
    uint64_t vsock_cid;
    bool vsock_cid_optional;   /* ignore vsock_cid if the snapshot has no vsock device */
    char vsock_path[108];
    /* Host-side settings of the new process (not guest-visible). */
    enum console_kind console_kind;
    char console_path[4096];
    bool jit;
    uint64_t jit_cache;
    unsigned jit_threshold;
};

/* Builds a machine from a snapshot, paused at the saved instant (virt_resume
 * runs it). The saved disks must be the same files (size and a checksum of
 * their first 64 KiB, a qcow2 header's dirty bit aside) unless
 * opts->force_disks. `strs` holds the loaded configuration's strings: free
 * it with virt_config_strings_free() after virt_destroy(). Returns 0, or
 * -errno with a one-line message (-ENOENT: no snapshot there, -EBADMSG: a
 * damaged file, -ENOTSUP: a newer format, -EINVAL: a field or a file that
 * does not fit, -ESTALE: a disk that changed). */
int vm_snapshot_restore(const struct vm_restore_options *opts, struct virt_machine **out,
                        struct virt_config_strings *strs, char *err, size_t errlen);

/* The first half of a restore, shared with an incoming migration: builds
 * the machine from the "board" section of `rd` with the host side of `o`
 * (disk replacements, identities, console, jit), checking the disks
 * against the "disk" sections. RAM is fresh (reads as zero) and nothing is
 * loaded: the machine waits, not started, for its RAM and virt_load().
 * Returns 0, or -errno with a one-line message (strs freed on failure). */
int vm_restore_build(const struct state_reader *rd, const struct vm_restore_options *o,
                     struct virt_machine **out, struct virt_config_strings *strs, char *err,
                     size_t errlen);

/* Writes the "board" section and the disks' identities ("disk"[i]) of a
 * running or paused VM, without flushing: what a destination checks
 * before it takes a migration. Returns 0 or -errno with a message. */
int vm_snapshot_save_board(struct virt_machine *m, struct state_writer *w, char *err,
                           size_t errlen);

#endif
