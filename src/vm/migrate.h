/* Live migration of a running VM to another Nimbus process (docs/migration.md),
 * over the stream of vm/migrate_stream.h:
 *
 *  - pre-copy (Clark et al., NSDI 2005): round 0 sends every page the host
 *    has backed, each later round the pages the guest dirtied meanwhile
 *    (machine/virt_dirty.h), until the rest fits the downtime limit at the
 *    measured bandwidth (or a round limit); then pause, the rest and the
 *    device state, and the destination runs once it confirms;
 *  - post-copy (Hines & Gopalan, VEE 2009): the device state first, the
 *    destination runs at once and its faults fetch pages on demand
 *    (mem/ram_fill.h) while the source pushes the rest, pages around recent
 *    faults first (adaptive pre-paging), never a page twice;
 *  - hybrid: pre-copy rounds, then post-copy;
 *  - copy-storage (migrate_storage.c): the writable disks' contents go
 *    first over the same stream, the writes the guest makes meanwhile
 *    logged (virtio/blk.h) and sent again, the rest while paused; the
 *    destination writes them into its own images.
 *
 * One struct vm_migration per VM (virt_machine.migration), in either role.
 * The source's work runs on a thread of its own, so the guest and the I/O
 * thread go on; the destination receives on the calling thread until the
 * VM can run, then (post-copy) on a receiver thread.
 *
 * Threads: vm_migrate_start/cancel/get on the VM's I/O thread (the API);
 * vm_migrate_join/free on the thread that runs the VM (vm_run_io, the CLI). */
#ifndef NIMBUS_VM_MIGRATE_H
#define NIMBUS_VM_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/virt.h"
#include "machine/virt_state.h"
#include "vm/snapshot.h"

#define VM_MIGRATE_DOWNTIME_MS 30u     /* default downtime limit */
#define VM_MIGRATE_MAX_ROUNDS  30u     /* default round limit */
#define VM_MIGRATE_POSTCOPY_AFTER 2u   /* hybrid: pre-copy rounds before the switch */

enum vm_migrate_mode { VM_MIGRATE_MODE_PRECOPY, VM_MIGRATE_MODE_POSTCOPY, VM_MIGRATE_MODE_HYBRID };

enum vm_migrate_phase {
    VM_MIGRATE_NONE,
    VM_MIGRATE_SETUP,       /* connecting, handshake */
    VM_MIGRATE_ROUNDS,      /* pre-copy rounds, the guest running */
    VM_MIGRATE_STOP_COPY,   /* paused: the rest and the device state */
    VM_MIGRATE_POSTCOPY,    /* the destination runs; pages follow */
    VM_MIGRATE_POSTCOPY_PAUSED,  /* post-copy, the stream broke: waiting for recovery */
    VM_MIGRATE_POSTCOPY_RECOVER, /* post-copy, a new stream: which pages are missing */
    VM_MIGRATE_COMPLETED,
    VM_MIGRATE_FAILED,
    VM_MIGRATE_CANCELLED,
};

struct vm_migrate_options {
    char to[400];                 /* unix:PATH or tcp:HOST:PORT */
    uint64_t max_bandwidth;       /* bytes/s; 0: as fast as it goes */
    unsigned downtime_limit_ms;   /* 0: VM_MIGRATE_DOWNTIME_MS */
    unsigned max_rounds;          /* 0: VM_MIGRATE_MAX_ROUNDS */
    bool auto_converge;
    enum vm_migrate_mode mode;
    unsigned postcopy_after;      /* hybrid: rounds before post-copy (0: default) */
    bool no_prepage;              /* post-copy: only the faulting pages go ahead of the
                                     background order (a baseline for benchmarks) */
    bool compress;                /* zstd per batch of pages */
    bool resume;                  /* resume a paused post-copy at `to` (nothing else) */
    bool copy_storage;            /* mirror the writable disks over the stream */
};

struct vm_migrate_progress {
    bool source;                  /* else the destination */
    enum vm_migrate_phase phase;
    enum vm_migrate_mode mode;
    unsigned round;
    uint64_t ram_pages;
    uint64_t pages_sent;          /* entries sent (or received): data + zero */
    uint64_t zero_pages;          /* of which were a flag only */
    uint64_t pages_remaining;     /* dirty (pre-copy) or not yet sent (post-copy) */
    uint64_t bytes;               /* stream bytes sent (source) or received */
    uint64_t dirty_rate;          /* pages/s, last round */
    uint64_t bandwidth;           /* bytes/s, measured */
    uint64_t expected_downtime_ms;
    uint64_t downtime_us;         /* pause until the destination was told to run */
    uint64_t total_ms;
    unsigned throttle_pct;
    bool converged;               /* pre-copy: the rest fit the downtime limit */
    uint64_t requests;            /* post-copy: pages the destination faulted on */
    uint64_t prepaged;            /* post-copy: pages sent around faults */
    unsigned recoveries;          /* post-copy: streams that broke and were recovered */
    unsigned recover_attempts;    /* resumes asked for (source), connections taken (dest) */
    uint64_t recover_missing;     /* pages the destination lacked at the last recovery */
    uint64_t recover_sent;        /* source: pages sent since then (= missing at the end) */
    uint64_t duplicate_pages;     /* destination: pages that came when present (never) */
    char recover_listen[128];     /* destination: where it waits for the source again */
    bool copy_storage;
    uint64_t disk_bytes;          /* copy-storage: the copied disks' virtual size */
    uint64_t disk_sent;           /* bytes of data sent (received), resent ones too */
    uint64_t disk_zero;           /* bytes that went as a zero range only */
    uint64_t disk_remaining;      /* bytes known dirty, not sent yet (source) */
    uint64_t seq;                 /* changes whenever something above changed */
    char error[256];
};

/* Starts migrating `m` to o->to on a thread of its own; the VM is
 * "migrating" until it ends. Returns 0, or -errno with a message (-EBUSY:
 * one is under way; -EINVAL: bad options). */
int vm_migrate_start(struct virt_machine *m, const struct vm_migrate_options *o, char *err,
                     size_t errlen);
/* Cancels an outgoing migration before the destination runs (afterwards it
 * can't be: -EBUSY; nor a paused post-copy on either side: the VM's memory
 * is split between the two). -EINVAL when none is under way. */
int vm_migrate_cancel(struct virt_machine *m, char *err, size_t errlen);
/* Post-copy recovery (migrate_recover.c, docs/migration.md). On the
 * destination, in phase postcopy-paused: listens at `listen` (unix:PATH or
 * tcp:HOST:PORT, port 0: any) for the source to resume (vm_migrate_start
 * with o->resume there). Returns 0 (the progress' recover_listen says the
 * address bound), or -errno with a message: -EINVAL not a paused incoming
 * post-copy, -EBUSY listening already, an address that cannot be bound.
 * The VM's I/O thread. */
int vm_migrate_recover(struct virt_machine *m, const char *listen, char *err, size_t errlen);

/* The progress of the last migration; false when there was none. */
bool vm_migrate_get(struct virt_machine *m, struct vm_migrate_progress *p);
/* True while a migration is under way in either role (VM state migrating). */
bool vm_migrate_active(struct virt_machine *m);
/* Stops the migration's thread (a reboot, the VM's end): cancels what is not
 * handed over yet and waits for it. */
void vm_migrate_join(struct virt_machine *m);
/* Frees it (after vm_run_io, before virt_destroy). */
void vm_migrate_free(struct virt_machine *m);

const char *vm_migrate_phase_name(enum vm_migrate_phase p);
const char *vm_migrate_mode_name(enum vm_migrate_mode mode);
/* "precopy", "postcopy", "hybrid"; 0 or -EINVAL. */
int vm_migrate_mode_parse(const char *s, enum vm_migrate_mode *mode);

/* ---- the destination ---- */

struct vm_incoming_options {
    struct vm_restore_options restore;   /* the host side, as a restore's */
    const char *listen;                  /* unix:PATH or tcp:HOST:PORT */
    /* Or an open stream (tests, fuzzing): rfd >= 0 is read, wfd written. */
    int rfd, wfd;
    /* Called once listening (the address really bound: tcp port 0). */
    void (*listening)(void *opaque, const char *addr);
    void *opaque;
    /* Refuse what a fuzz input must not make: more RAM, disks, network
     * cards, vsock (host resources), post-copy (threads, userfaultfd). */
    uint64_t max_ram;                    /* 0: no limit */
    bool no_host_devices, no_postcopy;
};

/* Takes an incoming migration: listens, builds the machine from the
 * source's board, receives RAM and the device state and tells the source it
 * is ready; returns once the source said go, with the VM loaded and paused
 * (virt_resume runs it; *stay_paused when the source VM was paused). For a
 * post-copy the pages still coming arrive on a thread of m->migration.
 * Returns 0, or -errno with a one-line message; the source is told why. */
int vm_migrate_incoming(const struct vm_incoming_options *o, struct virt_machine **out,
                        struct virt_config_strings *strs, bool *stay_paused, char *err,
                        size_t errlen);

#endif
