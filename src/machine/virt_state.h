/* The virt board's part of a snapshot: its configuration (section "board")
 * and the state of every component on it (each hart, the platform devices,
 * each virtio slot). vm/snapshot.c adds guest RAM and the disks' identities.
 *
 * "board" v1.0 holds what the guest can see of the machine (RAM size, harts,
 * which devices sit in which slot, the firmware mode, the MACs and the vsock
 * CID) and the host-side settings a restore starts from unless told
 * otherwise (image and disk paths, network backends): the restored machine
 * is built from it, so the slots and addresses are the saved ones. v1.1
 * adds the watchdog (a flag) and the actions on its expiry and on a guest
 * panic (two bytes at the end); a v1.0 section loads with neither.
 *
 * Threads: the VM's control (I/O) thread; the machine paused or not yet run. */
#ifndef NIMBUS_MACHINE_VIRT_STATE_H
#define NIMBUS_MACHINE_VIRT_STATE_H

#include <stddef.h>

#include "machine/virt.h"
#include "state/state.h"

#define VIRT_BOARD_MAJOR 1
#define VIRT_BOARD_MINOR 1

/* Strings a loaded config points to (virt_config holds const char *). */
struct virt_config_strings {
    char *s[8 + VIRT_MAX_DISKS];
    unsigned n;
};

/* Writes section "board"[0] for `c` (and the HTIF words of a bare-metal
 * program). Returns the writer's error. */
int virt_config_save(const struct virt_config *c, uint64_t tohost, uint64_t fromhost,
                     struct state_writer *w);

/* Reads section "board"[0] into `c` (zeroed first; the strings go to `strs`,
 * freed by virt_config_strings_free) and checks every field as the command
 * line would. Returns 0, or -errno with a one-line message. */
int virt_config_load(const struct state_reader *r, struct virt_config *c, uint64_t *tohost,
                     uint64_t *fromhost, struct virt_config_strings *strs, char *err,
                     size_t errlen);
void virt_config_strings_free(struct virt_config_strings *strs);

/* Saves the board section and every component. The machine must be paused
 * (virt_pause). Returns 0 or -errno with a message (-ENOTSUP for a device
 * that can't be saved, -EBUSY for one that is not quiesced). */
int virt_save(struct virt_machine *m, struct state_writer *w, char *err, size_t errlen);

/* Loads every component's section into a machine built with
 * config.no_boot from the same board section, whose RAM is already in
 * place. The machine is left paused, with guest time at the saved moment:
 * virt_resume() starts it. Returns 0 or -errno with a message naming the
 * section. */
int virt_load(struct virt_machine *m, const struct state_reader *r, char *err, size_t errlen);

#endif
