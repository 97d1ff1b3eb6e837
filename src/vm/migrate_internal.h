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
