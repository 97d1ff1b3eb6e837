/* What the source (migrate_source.c), the destination (migrate_incoming.c)
 * and the common part (migrate.c) of a live migration share. Not for other
 * files: vm/migrate.h is the interface. */
#ifndef NIMBUS_VM_MIGRATE_INTERNAL_H
#define NIMBUS_VM_MIGRATE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "vm/migrate.h"
#include "vm/migrate_stream.h"

struct vm_migration {
    struct virt_machine *m;
    bool source;
    struct vm_migrate_options opts;
    pthread_t thread;
    bool thread_started;
    _Atomic bool cancel;          /* asked to give up (cancel, the VM's end) */
    _Atomic bool handed_over;     /* GO sent or received: the destination is the VM */
    int fd;                       /* the stream's socket, -1 once closed */
    struct migrate_conn conn;
    bool conn_ok;

    pthread_mutex_t lock;         /* p, and the destination's go/failed */
    pthread_cond_t cond;
    struct vm_migrate_progress p;
    int64_t start_ns, last_wake_ns;

    /* The destination, post-copy. */
    struct ram_filler *filler;
    uint64_t npages;
    uint32_t features;            /* negotiated (MIGRATE_F_*) */
    bool go;                      /* GO arrived (under lock) */
    int recv_error;               /* the receiver failed: -errno (under lock) */

    /* Post-copy recovery (migrate_recover.c). */
    uint64_t session;             /* mig_session_id of the STATE payload */
    _Atomic bool pc_paused;       /* destination: requests are only recorded */
    uint64_t *requested;          /* destination: pages faulted on (atomic bit ops) */
    int recover_lfd;              /* destination: listening for the source (-1; lock) */
    struct migrate_addr recover_addr;
    char resume_to[400];          /* source: where to resume ("": not asked; lock) */
};

int64_t mig_now_ns(void);
/* Takes the progress lock. */
void mig_lock(struct vm_migration *g);
/* Releases it after a change: the sequence moves on and, at most every
 * 200 ms or at once with `now`, the I/O thread is woken (the API's events). */
void mig_unlock(struct vm_migration *g, bool now);
void mig_set_phase(struct vm_migration *g, enum vm_migrate_phase ph);
/* Phase failed (or cancelled) with `msg`. */
void mig_fail(struct vm_migration *g, int r, const char *msg);

/* Allocates one for `m` (not attached). */
struct vm_migration *mig_new(struct virt_machine *m, bool source);
void mig_close_stream(struct vm_migration *g);

/* The source's thread (migrate_source.c). */
void *mig_source_main(void *arg);

/* ---- post-copy recovery (migrate_recover.c) ---- */

/* Which migration this is: a hash of the device state (STATE's payload). */
uint64_t mig_session_id(const void *data, size_t len);
/* postcopy-paused or postcopy-recover. */
bool mig_recovery_phase(enum vm_migrate_phase ph);
/* -EBUSY with why, when a cancel must be refused (a paused post-copy); 0
 * otherwise. The I/O thread. */
int mig_cancel_refused(struct vm_migration *g, char *err, size_t errlen);
/* The source: vm_migrate_start with resume. */
int mig_resume(struct virt_machine *m, const char *to, char *err, size_t errlen);
/* The destination's receiver, the stream broken after GO (`err` says
 * why): pauses until the source resumes on a new stream (0: RECEIVED and
 * the pending requests sent, pages may come) or the VM ends (-errno). */
int mig_in_paused(struct vm_migration *g, char *err, size_t errlen);
/* The destination's filler: page pfn was asked for (sent again after a
 * recovery if it has not come). */
void mig_in_note_request(struct vm_migration *g, uint64_t pfn);
/* The source's thread, the stream broken after GO (`err` says why):
 * pauses until resumed and the destination said which pages it has (0:
 * `sent` is that set now) or the VM ends (-errno). */
int mig_src_paused(struct vm_migration *g, uint64_t *sent, uint64_t npages, uint64_t nsent,
                   char *err, size_t errlen);
/* ---- copy-storage on the source (migrate_storage.c) ---- */

#define MIG_DISK_CHUNK_SHIFT 16u   /* dirty tracking and copy unit: 64 KiB */

struct mig_disk {
    unsigned slot;
    struct virtio_dev *dev;
    struct block_backend *b;
    uint64_t nchunks;
    size_t words;
    uint64_t *pending;           /* chunks to send */
    bool logging;
};

struct mig_storage {
    struct vm_migration *g;
    struct mig_disk d[VIRT_MAX_DISKS];
    unsigned n;
    uint8_t *buf;                /* MIGRATE_DISK_CHUNK_MAX, aligned for O_DIRECT */
    /* After each frame: 0 to go on (the cancel check, --max-bandwidth). */
    int (*pace)(void *opaque);
    void *opaque;
    char *err;
    size_t errlen;
};

/* Turns dirty logging on for every writable disk of g->m, then sends the
 * ranges that read as zeros (qcow2 clusters not allocated, raw holes) as
 * zero ranges and marks the rest pending. Returns 0 or -errno (message in
 * err). */
int mig_storage_start(struct mig_storage *st, struct vm_migration *g, int (*pace)(void *),
                      void *opaque, char *err, size_t errlen);
/* Adds the chunks the guest wrote since the last collect to the pending
 * ones; returns the pending bytes. */
uint64_t mig_storage_collect(struct mig_storage *st);
/* Sends every pending chunk (a zero range where it reads as zeros). */
int mig_storage_send(struct mig_storage *st);
/* Makes the copied disks durable here (the VM paused, before the last
 * collect). */
int mig_storage_flush(struct mig_storage *st);
/* Logging off, everything freed (any time after start, even a failed one). */
void mig_storage_stop(struct mig_storage *st);

/* Bitmaps of pages. */
static inline bool bm_test(const uint64_t *b, uint64_t i)
{
    return b[i / 64] >> (i % 64) & 1;
}
static inline void bm_set(uint64_t *b, uint64_t i)
{
    b[i / 64] |= 1ull << (i % 64);
}
static inline void bm_clear(uint64_t *b, uint64_t i)
{
    b[i / 64] &= ~(1ull << (i % 64));
}

#endif
