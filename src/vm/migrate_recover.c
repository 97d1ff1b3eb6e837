/* Post-copy recovery, as QEMU's postcopy-recover does it (docs/migration.md
 * "Post-copy recovery"): after GO the destination runs the VM but some of
 * its pages are still only on the source, so a broken stream (the peer
 * gone, an error, a TCP timeout) must not end either side. Both pause in
 * phase postcopy-paused: the destination's guest runs on, harts that touch
 * a missing page sleep in the kernel (userfaultfd) until it comes; the
 * source keeps its RAM. The destination listens again when asked
 * (vm_migrate_recover), the source connects there when asked
 * (vm_migrate_start with resume), and on the new stream
 *
 *   S RESUME   the migration's session (a hash of the device state both
 *              sides had before GO) and the RAM size: another migration,
 *              or another VM, is refused;
 *   D RECEIVED the pages the destination has, then PAGE_REQ for every page
 *              asked for and not there (faults while paused, and requests
 *              lost with the old stream): the source sends these first;
 *
 * the source takes RECEIVED as the pages sent: a page the destination has
 * never goes again, one lost in flight goes once more. A recovery that
 * fails (refused, broken again) returns to postcopy-paused; it may be
 * tried again, any number of times.
 *
 * Threads: the functions named mig_in_* run on the destination's receiver
 * thread, mig_src_* on the source's migration thread; vm_migrate_recover,
 * mig_resume and mig_cancel_refused on the VM's I/O thread (the API). They
 * meet under g->lock (g->recover_lfd, g->resume_to, g->fd, the progress),
 * a leaf lock; waits are timed (WAIT_MS) so that the VM's end is noticed. */
#include "vm/migrate_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "mem/ram_fill.h"

#define WAIT_MS        100      /* how often a paused side looks whether the VM ends */
#define HANDSHAKE_MS   10000    /* RESUME / RECEIVED must come within this */
#define CONNECT_MS     5000

uint64_t mig_session_id(const void *data, size_t len)
{
    /* FNV-1a, 64 bits: not a defence (the stream is unauthenticated,
     * docs/migration.md), a check that both ends speak of one migration. */
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

bool mig_recovery_phase(enum vm_migrate_phase ph)
{
    return ph == VM_MIGRATE_POSTCOPY_PAUSED || ph == VM_MIGRATE_POSTCOPY_RECOVER;
}

static bool ending(struct vm_migration *g)
{
    return atomic_load(&g->cancel) || atomic_load(&g->m->stop) != VIRT_RUNNING;
}

/* Sets the phase and, if `msg`, the error line (the reason it paused). */
static void set_phase(struct vm_migration *g, enum vm_migrate_phase ph, const char *msg)
{
    mig_lock(g);
    g->p.phase = ph;
    if (msg)
        snprintf(g->p.error, sizeof(g->p.error), "%.255s", msg);
    mig_unlock(g, true);
}

/* Drops the stream: writers on it fail from now on (-EBADF), a thread
 * blocked in a write on it returns. */
static void detach(struct vm_migration *g)
{
    mig_lock(g);
    int fd = g->fd;
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    mig_unlock(g, false);
    migrate_conn_rebind(&g->conn, -1, -1);
    mig_lock(g);
    if (g->fd >= 0)
        close(g->fd);
    g->fd = -1;
    mig_unlock(g, false);
}

/* Puts fd under the connection (and where vm_migrate_join shuts it down). */
static void attach(struct vm_migration *g, int fd)
{
    struct timeval tv = { .tv_sec = HANDSHAKE_MS / 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    mig_lock(g);
    g->fd = fd;
    mig_unlock(g, false);
    migrate_conn_rebind(&g->conn, fd, fd);
}

/* The handshake is over: reads and writes block as long as they must (the
 * TCP timeouts of migrate_stream.c find a silent peer). */
static void handshake_done(int fd)
{
    struct timeval tv = { 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void timed_wait(struct vm_migration *g)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += WAIT_MS * 1000000l;
    if (ts.tv_nsec >= 1000000000l) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000l;
    }
    pthread_cond_timedwait(&g->cond, &g->lock, &ts);
}

int mig_cancel_refused(struct vm_migration *g, char *err, size_t errlen)
{
    pthread_mutex_lock(&g->lock);
    bool paused = mig_recovery_phase(g->p.phase);
    pthread_mutex_unlock(&g->lock);
    if (!paused)
        return 0;
    /* QEMU refuses migrate_cancel here too. */
    return errmsg(err, errlen, -EBUSY, "post-copy is paused: the destination runs the VM and the "
                  "source holds the pages it lacks, neither can go on alone; recover it "
                  "(migrate-recover, then migrate --resume) or destroy the VM to give it up");
}

/* ---- the destination ---- */

int vm_migrate_recover(struct virt_machine *m, const char *listen, char *err, size_t errlen)
{
    struct vm_migration *g = m->migration;
    struct migrate_addr a, bound;
    int r = migrate_addr_parse(listen, &a, err, errlen);
    if (r)
        return r;
    if (!g || g->source)
        return errmsg(err, errlen, -EINVAL, "no incoming post-copy migration here to recover");
    char at[sizeof(g->p.recover_listen)];
    pthread_mutex_lock(&g->lock);
    enum vm_migrate_phase ph = g->p.phase;
    bool listening = g->recover_lfd >= 0;
    memcpy(at, g->p.recover_listen, sizeof(at));
    pthread_mutex_unlock(&g->lock);
    if (ph != VM_MIGRATE_POSTCOPY_PAUSED)
        return errmsg(err, errlen, -EINVAL, "recover needs a post-copy in postcopy-paused; "
                      "this migration is %s", vm_migrate_phase_name(ph));
    if (listening)
        return errmsg(err, errlen, -EBUSY, "listening for the source already, at %s", at);
    int lfd = migrate_listen(&a, &bound, err, errlen);
    if (lfd < 0)
        return lfd;
    mig_lock(g);
    g->recover_lfd = lfd;
    g->recover_addr = a;
    migrate_addr_format(&bound, g->p.recover_listen, sizeof(g->p.recover_listen));
    pthread_cond_broadcast(&g->cond);
    mig_unlock(g, true);
    return 0;
}

/* Waits for a listener, then for the source on it. The connection's fd,
 * or -errno: -ECANCELED when the VM ends, else a failed accept. */
static int in_accept(struct vm_migration *g, char *err, size_t errlen)
{
    int lfd;
    pthread_mutex_lock(&g->lock);
    while (g->recover_lfd < 0 && !ending(g))
        timed_wait(g);
    lfd = g->recover_lfd;
    pthread_mutex_unlock(&g->lock);
    if (lfd < 0)
        return -ECANCELED;   /* (a listener that came too late: vm_migrate_free closes it) */
    int fd = -1;
    while (!ending(g)) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        int n = poll(&p, 1, WAIT_MS);
        if (n > 0) {
            fd = migrate_accept(lfd, g->recover_addr.tcp, err, errlen);
            break;
        }
        if (n < 0 && errno != EINTR) {
            fd = errmsg(err, errlen, -errno, "waiting for the source: %s", strerror(errno));
            break;
        }
    }
    /* One critical section with the phase: a recover asked meanwhile finds
     * this one under way, not a paused migration with no listener. */
    mig_lock(g);
    g->recover_lfd = -1;
    g->p.recover_listen[0] = '\0';
    if (fd >= 0) {
        g->p.phase = VM_MIGRATE_POSTCOPY_RECOVER;
        g->p.recover_attempts++;
    }
    mig_unlock(g, true);
    close(lfd);
    if (!g->recover_addr.tcp)
        unlink(g->recover_addr.path);
    if (ending(g)) {
        if (fd >= 0)
            close(fd);
        return -ECANCELED;
    }
    return fd;
}

/* RESUME in, RECEIVED out, then the requests the source must serve first. */
static int in_handshake(struct vm_migration *g, char *err, size_t errlen)
{
    struct migrate_frame f;
    struct migrate_resume res;
    int r = migrate_recv(&g->conn, &f, err, errlen);
    if (r == -EAGAIN)
        return errmsg(err, errlen, -ETIMEDOUT, "no RESUME from the source within %d s",
                      HANDSHAKE_MS / 1000);
    if (r || (r = migrate_resume_parse(&f, &res, err, errlen)))
        return r;
    if (res.session != g->session)
        return errmsg(err, errlen, -EPERM, "RESUME of another migration (session %016llx, this "
                      "one %016llx)", (unsigned long long)res.session,
                      (unsigned long long)g->session);
    if (res.ram_size != g->npages * GUEST_PAGE_SIZE)
        return errmsg(err, errlen, -EBADMSG, "RESUME for %llu bytes of RAM; this VM has %llu",
                      (unsigned long long)res.ram_size,
                      (unsigned long long)(g->npages * GUEST_PAGE_SIZE));
    size_t words = (size_t)((g->npages + 63) / 64);
    uint64_t *have = calloc(words ? words : 1, 8);
    if (!have)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    /* Nothing places pages now (this is the only thread that does). */
    uint64_t n = ram_fill_present(g->filler, have);
    r = migrate_received_send(&g->conn, have, g->npages);
    free(have);
    if (r)
        return errmsg(err, errlen, r, "sending RECEIVED: %s", strerror(-r));
    handshake_done(g->fd);
    mig_lock(g);
    g->p.phase = VM_MIGRATE_POSTCOPY;
    g->p.recoveries++;
    g->p.recover_missing = g->npages - n;
    g->p.pages_remaining = g->npages - n;
    g->p.error[0] = '\0';
    mig_unlock(g, true);
    /* Requests go straight out again; those recorded while paused (and
     * any the old stream lost) now. A request both ways is harmless: the
     * source sends a page once. */
    atomic_store(&g->pc_paused, false);
    uint64_t batch[MIGRATE_MAX_REQ];
    uint32_t k = 0;
    for (size_t w = 0; w < words; w++) {
        uint64_t bits = atomic_load_explicit((_Atomic uint64_t *)&g->requested[w],
                                             memory_order_seq_cst);
        for (; bits; bits &= bits - 1) {
            uint64_t pfn = w * 64 + (uint64_t)__builtin_ctzll(bits);
            if (ram_fill_has(g->filler, pfn))
                continue;
            batch[k++] = pfn;
            if (k == MIGRATE_MAX_REQ) {
                if (migrate_req_send(&g->conn, batch, k))
                    return 0;   /* broken again: the receiver finds out */
                k = 0;
            }
        }
    }
    if (k)
        migrate_req_send(&g->conn, batch, k);
    return 0;
}

void mig_in_note_request(struct vm_migration *g, uint64_t pfn)
{
    atomic_fetch_or_explicit((_Atomic uint64_t *)&g->requested[pfn / 64], 1ull << (pfn % 64),
                             memory_order_seq_cst);
}

int mig_in_paused(struct vm_migration *g, char *err, size_t errlen)
{
    char why[256];
    snprintf(why, sizeof(why), "post-copy paused: %.200s", err[0] ? err : "the stream broke");
    atomic_store(&g->pc_paused, true);
    detach(g);
    fprintf(stderr, "nimbus: %s; harts wait for the pages still on the source until it "
            "resumes (PUT /vm/migration/recover)\n", why);
    set_phase(g, VM_MIGRATE_POSTCOPY_PAUSED, why);
    for (;;) {
        int fd = in_accept(g, err, errlen);
        if (fd == -ECANCELED)
            break;
        if (fd < 0) {
            snprintf(why, sizeof(why), "post-copy paused: recovery failed: %.180s", err);
            set_phase(g, VM_MIGRATE_POSTCOPY_PAUSED, why);
            continue;
        }
        attach(g, fd);
        int r = in_handshake(g, err, errlen);
        if (!r) {
            fprintf(stderr, "nimbus: post-copy resumed\n");
            return 0;
        }
        if (r != -EREMOTEIO && r != -ECONNRESET)
            migrate_send_error(&g->conn, r, err);
        detach(g);
        snprintf(why, sizeof(why), "post-copy paused: recovery failed: %.180s", err);
        set_phase(g, VM_MIGRATE_POSTCOPY_PAUSED, why);
    }
    return errmsg(err, errlen, -ESHUTDOWN, "the VM ended while post-copy was paused: the pages "
                  "still on the source are lost");
}

/* ---- the source ---- */

int mig_resume(struct virt_machine *m, const char *to, char *err, size_t errlen)
{
    struct vm_migration *g = m->migration;
    struct migrate_addr a;
    int r = migrate_addr_parse(to, &a, err, errlen);
    if (r)
        return r;
    if (!g || !g->source)
        return errmsg(err, errlen, -EINVAL, "no outgoing post-copy migration here to resume");
    mig_lock(g);
    if (g->p.phase != VM_MIGRATE_POSTCOPY_PAUSED) {
        enum vm_migrate_phase ph = g->p.phase;
        mig_unlock(g, false);
        return errmsg(err, errlen, mig_recovery_phase(ph) ? -EBUSY : -EINVAL, "resume needs a "
                      "post-copy in postcopy-paused; this migration is %s",
                      vm_migrate_phase_name(ph));
    }
    snprintf(g->resume_to, sizeof(g->resume_to), "%s", to);
    g->p.recover_attempts++;
    /* At once, so that a follower of the events never sees "paused" again
     * unless this attempt failed. */
    g->p.phase = VM_MIGRATE_POSTCOPY_RECOVER;
    pthread_cond_broadcast(&g->cond);
    mig_unlock(g, true);
    return 0;
}

/* Connects to `to`, RESUME, RECEIVED into `sent`. */
static int src_handshake(struct vm_migration *g, const char *to, uint64_t *sent, uint64_t npages,
                         uint64_t nsent, char *err, size_t errlen)
{
    struct migrate_addr a;
    int r = migrate_addr_parse(to, &a, err, errlen);
    if (r)
        return r;
    int fd = migrate_connect(&a, CONNECT_MS, err, errlen);
    if (fd < 0)
        return fd;
    attach(g, fd);
    struct migrate_resume res = { .session = g->session, .ram_size = npages * GUEST_PAGE_SIZE,
                                  .pages_sent = nsent };
    if ((r = migrate_resume_send(&g->conn, &res)))
        return errmsg(err, errlen, r, "sending RESUME: %s", strerror(-r));
    struct migrate_frame f;
    if ((r = migrate_recv(&g->conn, &f, err, errlen)))
        return r == -EAGAIN ? errmsg(err, errlen, -ETIMEDOUT, "no RECEIVED from the destination "
                                     "within %d s", HANDSHAKE_MS / 1000) : r;
    if ((r = migrate_received_parse(&f, npages, sent, err, errlen)))
        return r;
    handshake_done(fd);
    return 0;
}

int mig_src_paused(struct vm_migration *g, uint64_t *sent, uint64_t npages, uint64_t nsent,
                   char *err, size_t errlen)
{
    char why[256];
    snprintf(why, sizeof(why), "post-copy paused: %.200s", err[0] ? err : "the stream broke");
    detach(g);
    fprintf(stderr, "nimbus: %s; this process keeps the pages the destination lacks until it "
            "resumes (PUT /vm/migrate with resume)\n", why);
    set_phase(g, VM_MIGRATE_POSTCOPY_PAUSED, why);
    size_t words = (size_t)((npages + 63) / 64);
    uint64_t *got = calloc(words ? words : 1, 8);
    if (!got)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    for (;;) {
        char to[sizeof(g->resume_to)];
        pthread_mutex_lock(&g->lock);
        while (!g->resume_to[0] && !ending(g))
            timed_wait(g);
        memcpy(to, g->resume_to, sizeof(to));
        g->resume_to[0] = '\0';
        pthread_mutex_unlock(&g->lock);
        if (ending(g))
            break;
        int r = src_handshake(g, to, got, npages, nsent, err, errlen);
        if (!r) {
            memcpy(sent, got, words * 8);
            uint64_t have = 0;
            for (size_t w = 0; w < words; w++)
                have += (uint64_t)__builtin_popcountll(got[w]);
            mig_lock(g);
            g->p.phase = VM_MIGRATE_POSTCOPY;
            g->p.recoveries++;
            g->p.recover_missing = npages - have;
            g->p.pages_remaining = npages - have;
            g->p.error[0] = '\0';
            mig_unlock(g, true);
            free(got);
            fprintf(stderr, "nimbus: post-copy resumed: %llu pages to send\n",
                    (unsigned long long)(npages - have));
            return 0;
        }
        if (r != -EREMOTEIO && r != -ECONNRESET && g->fd >= 0)
            migrate_send_error(&g->conn, r, err);
        detach(g);
        snprintf(why, sizeof(why), "post-copy paused: recovery failed: %.180s", err);
        set_phase(g, VM_MIGRATE_POSTCOPY_PAUSED, why);
    }
    free(got);
    return errmsg(err, errlen, -ECANCELED, "the VM ended while post-copy was paused: the "
                  "destination never gets the pages it lacks");
}
