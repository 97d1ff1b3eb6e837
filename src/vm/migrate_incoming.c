/* The destination of a live migration: takes the stream, builds the machine
 * from the source's board, puts the pages in RAM and loads the device state;
 * for a post-copy, a receiver thread places the pages that follow while the
 * guest runs, and the faults it takes ask the source for theirs
 * (mem/ram_fill.h). See migrate.h and docs/migration.md. */
#include "vm/migrate_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "mem/ram_fill.h"
#include "virtio/blk.h"
#include "vm/announce.h"

#define ACCEPT_TIMEOUT_MS -1

struct incoming {
    struct vm_migration *g;
    struct virt_machine *m;
    uint64_t npages;
    uint64_t *received;       /* pages in RAM (before post-copy) */
    uint32_t features;
    uint64_t pages, zero;
    /* copy-storage: each disk's size, 0 for one not copied (read-only) */
    bool copy_storage;
    uint64_t disk_sizes[VIRT_MAX_DISKS];
};

/* ---- copy-storage: disk chunks into the destination's own images ---- */

static int put_disk(struct incoming *in, const struct migrate_frame *f, char *err, size_t errlen)
{
    struct migrate_disk_chunk d;
    int r = migrate_disk_parse(f, in->disk_sizes, in->m->config.ndisks, &d, err, errlen);
    if (r)
        return r;
    /* Through the block layer: a qcow2 image allocates as for the guest's
     * writes. Zeros may unmap: the range reads as zeros either way. */
    struct block_backend *b = virtio_blk_backend(in->m->virtio[d.disk]);
    struct iovec v = { (void *)d.data, (size_t)d.len };
    r = d.zero ? b->ops->write_zeroes(b, d.offset, d.len, true) : b->ops->pwritev(b, &v, 1, d.offset);
    if (r)
        return errmsg(err, errlen, r, "writing disk %u (%s): %s", d.disk, b->path, strerror(-r));
    struct vm_migration *g = in->g;
    mig_lock(g);
    if (d.zero)
        g->p.disk_zero += d.len;
    else
        g->p.disk_sent += d.len;
    g->p.bytes = g->conn.bytes_in;
    mig_unlock(g, false);
    return 0;
}

/* Everything copied made durable before the destination says READY. */
static int flush_disks(struct incoming *in, char *err, size_t errlen)
{
    for (unsigned i = 0; i < in->m->config.ndisks; i++) {
        struct block_backend *b = virtio_blk_backend(in->m->virtio[i]);
        int r = in->disk_sizes[i] ? b->ops->flush(b) : 0;
        if (r)
            return errmsg(err, errlen, r, "flushing disk %u (%s): %s", i, b->path, strerror(-r));
    }
    return 0;
}

/* ---- pages before the VM runs: plain RAM ---- */

static int put_pages(void *opaque, uint64_t pfn, uint64_t n, const void *data)
{
    struct incoming *in = opaque;
    uint8_t *dst = in->m->mem.ram + pfn * GUEST_PAGE_SIZE;
    if (data) {
        memcpy(dst, data, n * GUEST_PAGE_SIZE);
    } else if (bm_test(in->received, pfn)) {
        /* Sent before with data, zero now (fresh RAM reads zero anyway). */
        madvise(dst, GUEST_PAGE_SIZE, MADV_DONTNEED);
    } else {
        in->zero++;
    }
    for (uint64_t i = 0; i < n; i++)
        bm_set(in->received, pfn + i);
    in->pages += n;
    return 0;
}

/* ---- post-copy: the receiver thread and the filler's requests ---- */

static int request_page(void *opaque, uint64_t pfn)
{
    struct vm_migration *g = opaque;
    /* Recorded first: if the stream is (or breaks) down, the request goes
     * again after the recovery; the filler must go on either way. */
    mig_in_note_request(g, pfn);
    if (!atomic_load(&g->pc_paused))
        migrate_req_send(&g->conn, &pfn, 1);
    return 0;
}

static int place_pages(void *opaque, uint64_t pfn, uint64_t n, const void *data)
{
    struct vm_migration *g = opaque;
    uint64_t dup = 0;
    for (uint64_t i = 0; i < n; i++)
        dup += ram_fill_has(g->filler, pfn + i);
    int r = ram_fill_place(g->filler, pfn, n, data);
    if (!r) {
        mig_lock(g);
        g->p.duplicate_pages += dup;
        g->p.pages_sent += n;
        if (!data)
            g->p.zero_pages += n;
        g->p.pages_remaining = g->p.pages_remaining > n ? g->p.pages_remaining - n : 0;
        g->p.bytes = g->conn.bytes_in;
        mig_unlock(g, false);
    }
    return r;
}

static void receiver_done(struct vm_migration *g, int r, const char *msg)
{
    pthread_mutex_lock(&g->lock);
    if (r && !g->recv_error)
        g->recv_error = r;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
    if (!r) {
        mig_lock(g);
        g->p.phase = VM_MIGRATE_COMPLETED;
        g->p.pages_remaining = 0;
        mig_unlock(g, true);
        return;
    }
    if (atomic_load(&g->cancel))
        return;   /* the VM is ending here anyway */
    mig_fail(g, r, msg);
    if (atomic_load(&g->handed_over)) {
        /* The source is gone with pages the guest never got: it cannot go
         * on. Stop it, and release harts waiting for a page (they read
         * zeros, and stop at their next look at the stop word). */
        fprintf(stderr, "nimbus: post-copy migration broke: %s; the VM cannot go on\n", msg);
        virt_request_stop(g->m, VIRT_STOP_ERROR, 1);
        struct ram_filler *f = g->filler;
        g->m->mem.filler = NULL;
        ram_fill_stop(f);
        pthread_mutex_lock(&g->lock);
        g->filler = NULL;
        pthread_mutex_unlock(&g->lock);
    }
}

/* Post-copy until COMPLETE is sent: 0, or -errno with `err`. */
static int receive_postcopy(struct vm_migration *g, char *err, size_t errlen)
{
    int r = 0;
    bool pages_done = false;
    for (;;) {
        if (pages_done && atomic_load(&g->handed_over)) {
            r = migrate_send(&g->conn, MIGRATE_COMPLETE, 0, NULL, 0, NULL, 0);
            if (r)
                errmsg(err, errlen, r, "sending COMPLETE: %s", strerror(-r));
            break;
        }
        struct migrate_frame f;
        if ((r = migrate_recv(&g->conn, &f, err, errlen)))
            break;
        if (f.type == MIGRATE_PAGES) {
            r = migrate_pages_parse(&g->conn, &f, g->npages, g->features & MIGRATE_F_ZSTD,
                                    place_pages, g, err, errlen);
            if (r) {
                if (!err[0])
                    errmsg(err, errlen, r, "placing pages: %s", strerror(-r));
                break;
            }
        } else if (f.type == MIGRATE_GO && !f.len && !atomic_load(&g->handed_over)) {
            atomic_store(&g->handed_over, true);
            pthread_mutex_lock(&g->lock);
            g->go = true;
            pthread_cond_broadcast(&g->cond);
            pthread_mutex_unlock(&g->lock);
        } else if (f.type == MIGRATE_PAGES_DONE && f.len == 8 && !pages_done) {
            /* May come before GO: a small RAM is all sent by then. */
            struct ram_fill_stats st;
            ram_fill_get_stats(g->filler, &st);
            if (!st.done_us) {
                r = errmsg(err, errlen, -EBADMSG, "the source says every page is sent, "
                           "but some never came");
                break;
            }
            pages_done = true;
        } else {
            r = errmsg(err, errlen, -EBADMSG, "unexpected %s frame during post-copy",
                       migrate_frame_name(f.type));
            break;
        }
    }
    if (r && !atomic_load(&g->cancel) && r != -EREMOTEIO && r != -ECONNRESET)
        migrate_send_error(&g->conn, r, err);
    return r;
}

static void *receiver_main(void *arg)
{
    struct vm_migration *g = arg;
    char err[256] = "";
    int r;
    /* After GO a broken stream pauses (the source has pages the guest
     * needs) until a recovery, as often as it breaks (migrate_recover.c). */
    while ((r = receive_postcopy(g, err, sizeof(err))) && atomic_load(&g->handed_over) &&
           !atomic_load(&g->cancel) && !(r = mig_in_paused(g, err, sizeof(err))))
        err[0] = '\0';
    receiver_done(g, r, err);
    return NULL;
}

/* ---- the stream until the VM can run ---- */

static int fail_to(struct vm_migration *g, int r, char *err, size_t errlen)
{
    if (g->conn_ok && r != -EREMOTEIO && r != -ECONNRESET)
        migrate_send_error(&g->conn, r, err);
    (void)errlen;
    return r;
}

static int open_stream(const struct vm_incoming_options *o, struct vm_migration *g, char *err,
                       size_t errlen)
{
    if (o->rfd >= 0)
        return migrate_conn_init(&g->conn, o->rfd, o->wfd >= 0 ? o->wfd : o->rfd);
    struct migrate_addr a, bound;
    int r = migrate_addr_parse(o->listen ? o->listen : "", &a, err, errlen);
    if (r)
        return r;
    int lfd = migrate_listen(&a, &bound, err, errlen);
    if (lfd < 0)
        return lfd;
    if (o->listening) {
        char name[400];
        migrate_addr_format(&bound, name, sizeof(name));
        o->listening(o->opaque, name);
    }
    int fd = migrate_accept(lfd, a.tcp, err, errlen);
    close(lfd);
    if (!a.tcp)
        unlink(a.path);
    if (fd < 0)
        return fd;
    g->fd = fd;
    return migrate_conn_init(&g->conn, fd, fd);
}

/* HELLO: the machine, built and checked, or the source is told why not. */
static int handshake(const struct vm_incoming_options *o, struct incoming *in,
                     struct virt_config_strings *strs, bool *postcopy_ok, char *err,
                     size_t errlen)
{
    struct vm_migration *g = in->g;
    struct migrate_frame f;
    struct migrate_hello h;
    int r = migrate_recv(&g->conn, &f, err, errlen);
    if (r)
        return r;
    if ((r = migrate_hello_parse(&f, &h, err, errlen)))
        return r;
    struct state_reader rd;
    char why[512];
    if ((r = state_reader_open_mem(&rd, h.board, h.board_len, why, sizeof(why))))
        return errmsg(err, errlen, r, "the source's board: %s", why);
    /* What a fuzz input (or a cautious caller) must not make. */
    struct virt_config c;
    struct virt_config_strings tmp;
    uint64_t th, fh;
    r = virt_config_load(&rd, &c, &th, &fh, &tmp, why, sizeof(why));
    if (r) {
        state_reader_free(&rd);
        return errmsg(err, errlen, r, "the source's board: %s", why);
    }
    /* Disks only where the caller named every one (--disk). */
    bool own_disks = c.ndisks <= o->restore.ndisks;
    for (unsigned i = 0; i < c.ndisks && own_disks; i++)
        own_disks = o->restore.disks[i] != NULL;
    bool refused = (o->max_ram && c.ram_size > o->max_ram) ||
                   (o->no_host_devices && (!own_disks || c.nnets || c.vsock_cid)) ||
                   (o->no_postcopy && (h.mode & MIGRATE_MODE_POSTCOPY));
    virt_config_strings_free(&tmp);
    if (refused) {
        state_reader_free(&rd);
        return errmsg(err, errlen, -EPERM, "this destination does not take such a VM");
    }
    if (h.mode & MIGRATE_MODE_POSTCOPY) {
        /* Post-copy needs userfaultfd here: say so now, not after the rounds. */
        int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
        if (u < 0) {
            state_reader_free(&rd);
            return errmsg(err, errlen, -EPERM, "post-copy needs userfaultfd on the destination "
                          "(root, or vm.unprivileged_userfaultfd = 1): %s", strerror(errno));
        }
        close(u);
        *postcopy_ok = true;
    }
    struct vm_restore_options ro = o->restore;
    ro.disks_size_only = true;
    r = vm_restore_build(&rd, &ro, &in->m, strs, err, errlen);
    state_reader_free(&rd);
    if (r)
        return r;
    if (in->m->mem.ram_size != h.ram_size)
        return errmsg(err, errlen, -EBADMSG, "HELLO says %llu bytes of RAM, the board %llu",
                      (unsigned long long)h.ram_size, (unsigned long long)in->m->mem.ram_size);
    /* Copy-storage: the writable disks are written here (their sizes were
     * checked against the source's by the build). */
    in->copy_storage = h.mode & MIGRATE_MODE_COPY_STORAGE;
    uint64_t total = 0;
    for (unsigned i = 0; in->copy_storage && i < in->m->config.ndisks; i++) {
        const struct block_backend *b = virtio_blk_backend(in->m->virtio[i]);
        in->disk_sizes[i] = b->readonly ? 0 : b->size;
        total += in->disk_sizes[i];
    }
    mig_lock(g);
    g->p.copy_storage = in->copy_storage;
    g->p.disk_bytes = total;
    mig_unlock(g, false);
    in->features = h.features & MIGRATE_F_ALL;
    g->features = in->features;
    uint8_t b[4] = { (uint8_t)in->features, 0, 0, 0 };
    if ((r = migrate_send(&g->conn, MIGRATE_ACCEPT, 0, b, 4, NULL, 0)))
        return errmsg(err, errlen, r, "answering HELLO: %s", strerror(-r));
    return 0;
}

static int start_postcopy(struct incoming *in, char *err, size_t errlen)
{
    struct vm_migration *g = in->g;
    struct ram_page_source src = { .request = request_page, .no_prefetch = true,
                                   .present = in->received, .opaque = g };
    g->requested = calloc((in->npages + 63) / 64, 8);
    if (!g->requested)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    int r = ram_fill_start(&in->m->mem, &src, &g->filler, err, errlen);
    if (r)
        return r;
    in->m->mem.filler = g->filler;
    mig_lock(g);
    g->p.pages_remaining = in->npages - (uint64_t)in->pages;
    g->p.phase = VM_MIGRATE_POSTCOPY;
    g->p.mode = in->pages ? VM_MIGRATE_MODE_HYBRID : VM_MIGRATE_MODE_POSTCOPY;
    mig_unlock(g, true);
    if ((r = -pthread_create(&g->thread, NULL, receiver_main, g)))
        return errmsg(err, errlen, r, "cannot start the page receiver: %s", strerror(-r));
    g->thread_started = true;
    pthread_setname_np(g->thread, "migrate-in");
    return 0;
}

static int receive(const struct vm_incoming_options *o, struct incoming *in,
                   struct virt_config_strings *strs, bool *stay_paused, char *err, size_t errlen)
{
    struct vm_migration *g = in->g;
    bool postcopy_ok = false;
    int r = open_stream(o, g, err, errlen);
    if (r)
        return r;
    g->conn_ok = true;
    if ((r = handshake(o, in, strs, &postcopy_ok, err, errlen)))
        return r;
    g->m = in->m;
    in->npages = in->m->mem.ram_size / GUEST_PAGE_SIZE;
    g->npages = in->npages;
    g->p.ram_pages = in->npages;
    in->received = calloc((in->npages + 63) / 64, 8);
    if (!in->received)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    struct state_reader state = { 0 };
    bool have_state = false;
    uint32_t end_flags = 0;
    uint64_t end_pages;
    char why[512];
    for (;;) {
        struct migrate_frame f;
        if ((r = migrate_recv(&g->conn, &f, err, errlen)))
            goto out;
        if (f.type == MIGRATE_PAGES && !have_state) {
            if ((r = migrate_pages_parse(&g->conn, &f, in->npages, in->features & MIGRATE_F_ZSTD,
                                         put_pages, in, err, errlen)))
                goto out;
            mig_lock(g);
            g->p.pages_sent = in->pages;
            g->p.zero_pages = in->zero;
            g->p.bytes = g->conn.bytes_in;
            mig_unlock(g, false);
        } else if (f.type == MIGRATE_DISK && in->copy_storage && !have_state) {
            if ((r = put_disk(in, &f, err, errlen)))
                goto out;
        } else if (f.type == MIGRATE_DISK_SYNC && in->copy_storage && !have_state && !f.len) {
            /* The bulk of the disks made durable while the guest still runs
             * on the source: the flush before READY, in the downtime, then
             * has only the last chunks to write. */
            if ((r = flush_disks(in, err, errlen)))
                goto out;
            if ((r = migrate_send(&g->conn, MIGRATE_DISK_SYNCED, 0, NULL, 0, NULL, 0))) {
                r = errmsg(err, errlen, r, "sending DISK_SYNCED: %s", strerror(-r));
                goto out;
            }
        } else if (f.type == MIGRATE_SYNC && (in->features & MIGRATE_F_SYNC) && !have_state &&
                   !f.len) {
            if ((r = migrate_send(&g->conn, MIGRATE_SYNCED, 0, NULL, 0, NULL, 0))) {
                r = errmsg(err, errlen, r, "sending SYNCED: %s", strerror(-r));
                goto out;
            }
        } else if (f.type == MIGRATE_DISCARD && postcopy_ok && !have_state) {
            uint64_t *d = calloc((in->npages + 63) / 64, 8);
            if (!d) {
                r = errmsg(err, errlen, -ENOMEM, "out of memory");
                goto out;
            }
            if ((r = migrate_discard_parse(&f, in->npages, d, err, errlen))) {
                free(d);
                goto out;
            }
            for (uint64_t p = 0; p < in->npages; p++)
                if (bm_test(d, p) && bm_test(in->received, p)) {
                    madvise(in->m->mem.ram + p * GUEST_PAGE_SIZE, GUEST_PAGE_SIZE, MADV_DONTNEED);
                    bm_clear(in->received, p);
                    in->pages--;
                }
            free(d);
        } else if (f.type == MIGRATE_STATE && !have_state) {
            if ((r = state_reader_open_mem(&state, f.data, f.len, why, sizeof(why)))) {
                r = errmsg(err, errlen, r, "the device state: %s", why);
                goto out;
            }
            g->session = mig_session_id(f.data, f.len);
            have_state = true;
        } else if (f.type == MIGRATE_END && have_state) {
            if ((r = migrate_end_parse(&f, &end_flags, &end_pages, err, errlen)))
                goto out;
            if ((end_flags & MIGRATE_END_POSTCOPY) && !postcopy_ok) {
                r = errmsg(err, errlen, -EBADMSG, "END asks for post-copy, HELLO did not");
                goto out;
            }
            break;
        } else {
            r = errmsg(err, errlen, -EBADMSG, "unexpected %s frame (%u bytes) %s the device state",
                       migrate_frame_name(f.type), f.len, have_state ? "after" : "before");
            goto out;
        }
    }
    bool postcopy = end_flags & MIGRATE_END_POSTCOPY;
    if (in->copy_storage && (r = flush_disks(in, err, errlen)))
        goto out;
    if (postcopy && (r = start_postcopy(in, err, errlen)))
        goto out;
    if ((r = virt_load(in->m, &state, why, sizeof(why)))) {
        r = errmsg(err, errlen, r, "the device state: %s", why);
        goto out;
    }
    if ((r = migrate_send(&g->conn, MIGRATE_READY, 0, NULL, 0, NULL, 0))) {
        r = errmsg(err, errlen, r, "sending READY: %s", strerror(-r));
        goto out;
    }
    if (postcopy) {
        pthread_mutex_lock(&g->lock);
        while (!g->go && !g->recv_error)
            pthread_cond_wait(&g->cond, &g->lock);
        r = g->go ? 0 : g->recv_error;
        snprintf(why, sizeof(why), "%s", g->p.error);
        pthread_mutex_unlock(&g->lock);
        if (r)
            r = errmsg(err, errlen, r, "%s", why[0] ? why : "the stream broke before GO");
    } else {
        struct migrate_frame f;
        if (!(r = migrate_recv(&g->conn, &f, err, errlen)) && (f.type != MIGRATE_GO || f.len))
            r = errmsg(err, errlen, -EBADMSG, "the source sent %s instead of GO",
                       migrate_frame_name(f.type));
        if (!r) {
            atomic_store(&g->handed_over, true);
            mig_lock(g);
            g->p.phase = VM_MIGRATE_COMPLETED;
            mig_unlock(g, false);
        }
    }
    *stay_paused = end_flags & MIGRATE_END_PAUSED;
out:
    state_reader_free(&state);
    return r;
}

int vm_migrate_incoming(const struct vm_incoming_options *o, struct virt_machine **out,
                        struct virt_config_strings *strs, bool *stay_paused, char *err,
                        size_t errlen)
{
    *out = NULL;
    *stay_paused = false;
    memset(strs, 0, sizeof(*strs));
    struct vm_migration *g = mig_new(NULL, false);
    if (!g)
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    g->p.phase = VM_MIGRATE_SETUP;
    struct incoming in = { .g = g };
    int r = receive(o, &in, strs, stay_paused, err, errlen);
    free(in.received);
    if (r) {
        fail_to(g, r, err, errlen);
        if (g->thread_started) {
            atomic_store(&g->cancel, true);
            shutdown(g->conn.rfd, SHUT_RDWR);
            pthread_join(g->thread, NULL);
        }
        if (in.m) {
            in.m->migration = NULL;
            virt_destroy(in.m);   /* stops the filler too */
            virt_config_strings_free(strs);
        }
        if (g->conn_ok)
            migrate_conn_free(&g->conn);
        if (g->fd >= 0)
            close(g->fd);
        free(g->requested);
        pthread_mutex_destroy(&g->lock);
        pthread_cond_destroy(&g->cond);
        free(g);
        return r;
    }
    if (!g->thread_started)
        mig_close_stream(g);   /* pre-copy: the stream is done */
    in.m->migration = g;
    vm_announce_start(in.m);   /* the VM is on another network port now */
    *out = in.m;
    return 0;
}
