/* Live migration: the object both roles share, its progress, and starting,
 * cancelling and ending it. See migrate.h; the source's work is in
 * migrate_source.c, the destination's in migrate_incoming.c.
 *
 * Lock order: g->lock is a leaf (nothing else is taken while it is held). */
#include "vm/migrate_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "mem/ram_fill.h"

#define WAKE_EVERY_NS 200000000ll

int64_t mig_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *vm_migrate_phase_name(enum vm_migrate_phase p)
{
    switch (p) {
    case VM_MIGRATE_NONE:      return "none";
    case VM_MIGRATE_SETUP:     return "setup";
    case VM_MIGRATE_ROUNDS:    return "precopy";
    case VM_MIGRATE_STOP_COPY: return "stop-copy";
    case VM_MIGRATE_POSTCOPY:  return "postcopy";
    case VM_MIGRATE_POSTCOPY_PAUSED:  return "postcopy-paused";
    case VM_MIGRATE_POSTCOPY_RECOVER: return "postcopy-recover";
    case VM_MIGRATE_COMPLETED: return "completed";
    case VM_MIGRATE_FAILED:    return "failed";
    case VM_MIGRATE_CANCELLED: return "cancelled";
    }
    return "unknown";
}

const char *vm_migrate_mode_name(enum vm_migrate_mode mode)
{
    return mode == VM_MIGRATE_MODE_POSTCOPY ? "postcopy"
           : mode == VM_MIGRATE_MODE_HYBRID ? "hybrid" : "precopy";
}

int vm_migrate_mode_parse(const char *s, enum vm_migrate_mode *mode)
{
    if (!strcmp(s, "precopy"))
        *mode = VM_MIGRATE_MODE_PRECOPY;
    else if (!strcmp(s, "postcopy"))
        *mode = VM_MIGRATE_MODE_POSTCOPY;
    else if (!strcmp(s, "hybrid"))
        *mode = VM_MIGRATE_MODE_HYBRID;
    else
        return -EINVAL;
    return 0;
}

void mig_lock(struct vm_migration *g)
{
    pthread_mutex_lock(&g->lock);
}

void mig_unlock(struct vm_migration *g, bool now)
{
    g->p.seq++;
    g->p.total_ms = (uint64_t)(mig_now_ns() - g->start_ns) / 1000000;
    int64_t t = mig_now_ns();
    bool wake = now || t - g->last_wake_ns >= WAKE_EVERY_NS;
    if (wake)
        g->last_wake_ns = t;
    pthread_mutex_unlock(&g->lock);
    if (wake && g->m && g->m->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(g->m->wake_fd, &one, sizeof(one));
        (void)w;
    }
}

void mig_set_phase(struct vm_migration *g, enum vm_migrate_phase ph)
{
    mig_lock(g);
    g->p.phase = ph;
    mig_unlock(g, true);
}

void mig_fail(struct vm_migration *g, int r, const char *msg)
{
    mig_lock(g);
    (void)r;
    g->p.phase = atomic_load(&g->cancel) && !atomic_load(&g->handed_over)
                 ? VM_MIGRATE_CANCELLED : VM_MIGRATE_FAILED;
    snprintf(g->p.error, sizeof(g->p.error), "%s", msg);
    mig_unlock(g, true);
}

struct vm_migration *mig_new(struct virt_machine *m, bool source)
{
    struct vm_migration *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->m = m;
    g->source = source;
    g->fd = -1;
    g->recover_lfd = -1;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->start_ns = mig_now_ns();
    g->p.source = source;
    g->p.ram_pages = m ? m->mem.ram_size / GUEST_PAGE_SIZE : 0;
    return g;
}

void mig_close_stream(struct vm_migration *g)
{
    if (g->conn_ok) {
        migrate_conn_free(&g->conn);
        g->conn_ok = false;
    }
    pthread_mutex_lock(&g->lock);
    if (g->fd >= 0) {
        close(g->fd);
        g->fd = -1;
    }
    pthread_mutex_unlock(&g->lock);
}

static bool active_phase(enum vm_migrate_phase p)
{
    return p == VM_MIGRATE_SETUP || p == VM_MIGRATE_ROUNDS || p == VM_MIGRATE_STOP_COPY ||
           p == VM_MIGRATE_POSTCOPY || mig_recovery_phase(p);
}

int vm_migrate_start(struct virt_machine *m, const struct vm_migrate_options *o, char *err,
                     size_t errlen)
{
    if (o->resume)
        return mig_resume(m, o->to, err, errlen);
    struct migrate_addr a;
    int r = migrate_addr_parse(o->to, &a, err, errlen);
    if (r)
        return r;
    if (vm_migrate_active(m))
        return errmsg(err, errlen, -EBUSY, "a migration is under way already");
    if (o->mode == VM_MIGRATE_MODE_HYBRID && o->postcopy_after > o->max_rounds && o->max_rounds)
        return errmsg(err, errlen, -EINVAL, "postcopy_after %u is beyond max_rounds %u",
                      o->postcopy_after, o->max_rounds);
    if (m->migration) {
        /* The last one ended (failed or cancelled: the VM is still here). */
        vm_migrate_join(m);
        vm_migrate_free(m);
    }
    struct vm_migration *g = mig_new(m, true);
    if (!g)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    g->opts = *o;
    if (!g->opts.downtime_limit_ms)
        g->opts.downtime_limit_ms = VM_MIGRATE_DOWNTIME_MS;
    if (!g->opts.max_rounds)
        g->opts.max_rounds = VM_MIGRATE_MAX_ROUNDS;
    if (g->opts.mode == VM_MIGRATE_MODE_HYBRID && !g->opts.postcopy_after)
        g->opts.postcopy_after = VM_MIGRATE_POSTCOPY_AFTER;
    g->p.mode = o->mode;
    g->p.phase = VM_MIGRATE_SETUP;
    m->migration = g;
    if ((r = -pthread_create(&g->thread, NULL, mig_source_main, g))) {
        m->migration = NULL;
        free(g);
        return errmsg(err, errlen, r, "cannot start the migration thread: %s", strerror(-r));
    }
    g->thread_started = true;
    pthread_setname_np(g->thread, "migrate");
    return 0;
}

int vm_migrate_cancel(struct virt_machine *m, char *err, size_t errlen)
{
    struct vm_migration *g = m->migration;
    int r;
    if (g && (r = mig_cancel_refused(g, err, errlen)))
        return r;
    if (!g || !g->source || !vm_migrate_active(m))
        return errmsg(err, errlen, -EINVAL, "no outgoing migration is under way");
    if (atomic_load(&g->handed_over))
        return errmsg(err, errlen, -EBUSY, "too late: the destination runs the VM already");
    atomic_store(&g->cancel, true);
    /* Out of any blocking read or write on the stream. */
    mig_lock(g);
    if (g->fd >= 0)
        shutdown(g->fd, SHUT_RDWR);
    mig_unlock(g, true);
    return 0;
}

bool vm_migrate_get(struct virt_machine *m, struct vm_migrate_progress *p)
{
    struct vm_migration *g = m->migration;
    if (!g)
        return false;
    pthread_mutex_lock(&g->lock);
    *p = g->p;
    if (active_phase(p->phase))
        p->total_ms = (uint64_t)(mig_now_ns() - g->start_ns) / 1000000;
    if (!g->source && g->filler) {
        struct ram_fill_stats st;
        ram_fill_get_stats(g->filler, &st);
        p->requests = st.faults;
    }
    pthread_mutex_unlock(&g->lock);
    return true;
}

bool vm_migrate_active(struct virt_machine *m)
{
    struct vm_migration *g = m->migration;
    if (!g)
        return false;
    pthread_mutex_lock(&g->lock);
    bool a = active_phase(g->p.phase);
    pthread_mutex_unlock(&g->lock);
    return a;
}

void vm_migrate_join(struct virt_machine *m)
{
    struct vm_migration *g = m->migration;
    if (!g || !g->thread_started)
        return;
    atomic_store(&g->cancel, true);
    mig_lock(g);
    if (g->fd >= 0)
        shutdown(g->fd, SHUT_RDWR);
    mig_unlock(g, false);
    pthread_join(g->thread, NULL);
    g->thread_started = false;
}

void vm_migrate_free(struct virt_machine *m)
{
    struct vm_migration *g = m->migration;
    if (!g)
        return;
    vm_migrate_join(m);
    mig_close_stream(g);
    if (g->recover_lfd >= 0) {
        close(g->recover_lfd);   /* a recover nobody came to */
        if (!g->recover_addr.tcp)
            unlink(g->recover_addr.path);
    }
    free(g->requested);
    pthread_mutex_destroy(&g->lock);
    pthread_cond_destroy(&g->cond);
    free(g);
    m->migration = NULL;
}
