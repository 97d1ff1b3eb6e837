/* Copy-storage on the source of a live migration: the writable disks'
 * contents go over the migration stream as DISK frames (migrate_stream.h),
 * as QEMU's drive-mirror does to an NBD export:
 *
 *  - dirty logging goes on first (virtio_blk_dirty_start: every guest write,
 *    discard or write-zeroes marks its 64 KiB chunks once done), then the
 *    block status of the whole disk is read: ranges that read as zeros
 *    (qcow2 clusters not allocated, zero clusters, raw holes) go as zero
 *    ranges, 24 bytes each whatever their length; every other chunk is
 *    pending;
 *  - each send takes the pending chunks in runs of up to 1 MiB, clears
 *    them, reads them and sends them (a chunk that reads all zero goes as a
 *    zero range). A guest write that lands after its chunk was cleared
 *    marks it again, so it goes again in a later round; the destination
 *    applies frames in order, so the last copy sent wins;
 *  - the last collect comes with the VM paused (devices quiesced) and the
 *    disks flushed: nothing can be dirty after it.
 *
 * Threads: the migration's thread; the logging itself is the virtio-blk
 * workers'. */
#include "vm/migrate_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errmsg.h"
#include "virtio/blk.h"

#define CHUNK      (1ull << MIG_DISK_CHUNK_SHIFT)
#define RUN_CHUNKS (MIGRATE_DISK_CHUNK_MAX / CHUNK)   /* chunks per DISK frame */

static void progress(struct mig_storage *st, uint64_t sent, uint64_t zero)
{
    struct vm_migration *g = st->g;
    mig_lock(g);
    g->p.disk_sent += sent;
    g->p.disk_zero += zero;
    g->p.bytes = g->conn.bytes_out;
    mig_unlock(g, false);
}

static int send_frame(struct mig_storage *st, struct mig_disk *d, uint64_t off, uint64_t len,
                      const void *data)
{
    int r = migrate_disk_send(&st->g->conn, d->slot, off, len, data);
    if (r)
        return errmsg(st->err, st->errlen, r, "sending disk %u: %s", d->slot, strerror(-r));
    progress(st, data ? len : 0, data ? 0 : len);
    return st->pace(st->opaque);
}

static void mark_pending(struct mig_disk *d, uint64_t off, uint64_t len)
{
    for (uint64_t c = off / CHUNK; c <= (off + len - 1) / CHUNK && c < d->nchunks; c++)
        bm_set(d->pending, c);
}

/* The block status of the whole disk: zero ranges out, the rest pending. */
static int scan(struct mig_storage *st, struct mig_disk *d)
{
    uint64_t size = d->b->size, off = 0;
    while (off < size) {
        uint64_t n;
        int s = block_status(d->b, off, size - off, &n);
        if (s < 0)
            return errmsg(st->err, st->errlen, s, "disk %u (%s): reading its allocation: %s",
                          d->slot, d->b->path, strerror(-s));
        if (n == 0 || n > size - off)
            n = size - off;
        if (s == BLOCK_DATA) {
            mark_pending(d, off, n);
        } else {
            /* Whole chunks go as zeros now; partial ones are read later. */
            uint64_t a = (off + CHUNK - 1) & ~(CHUNK - 1), e = off + n;
            uint64_t z = e == size ? e : e & ~(CHUNK - 1);
            if (a < z) {
                if (off < a)
                    mark_pending(d, off, a - off);
                int r = send_frame(st, d, a, z - a, NULL);
                if (r)
                    return r;
                if (z < e)
                    mark_pending(d, z, e - z);
            } else {
                mark_pending(d, off, n);
            }
        }
        off += n;
    }
    return 0;
}

int mig_storage_start(struct mig_storage *st, struct vm_migration *g, int (*pace)(void *),
                      void *opaque, char *err, size_t errlen)
{
    struct virt_machine *m = g->m;
    memset(st, 0, sizeof(*st));
    st->g = g;
    st->pace = pace;
    st->opaque = opaque;
    st->err = err;
    st->errlen = errlen;
    void *buf;
    if (posix_memalign(&buf, 4096, MIGRATE_DISK_CHUNK_MAX))
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    st->buf = buf;
    uint64_t total = 0;
    for (unsigned i = 0; i < m->config.ndisks; i++) {
        struct block_backend *b = virtio_blk_backend(m->virtio[i]);
        if (b->readonly)
            continue;   /* never changes: the destination opens its own copy */
        struct mig_disk *d = &st->d[st->n++];
        d->slot = i;
        d->dev = m->virtio[i];
        d->b = b;
        d->nchunks = (b->size + CHUNK - 1) / CHUNK;
        d->words = (size_t)((d->nchunks + 63) / 64);
        d->pending = calloc(d->words ? d->words : 1, 8);
        if (!d->pending)
            return errmsg(err, errlen, -ENOMEM, "out of memory");
        int r = virtio_blk_dirty_start(d->dev, MIG_DISK_CHUNK_SHIFT);
        if (r)
            return errmsg(err, errlen, r, "disk %u: dirty logging: %s", i, strerror(-r));
        d->logging = true;
        total += b->size;
    }
    mig_lock(g);
    g->p.copy_storage = true;
    g->p.disk_bytes = total;
    mig_unlock(g, true);
    for (unsigned i = 0; i < st->n; i++) {
        int r = scan(st, &st->d[i]);
        if (r)
            return r;
    }
    mig_storage_collect(st);
    return 0;
}

uint64_t mig_storage_collect(struct mig_storage *st)
{
    uint64_t bytes = 0;
    for (unsigned i = 0; i < st->n; i++) {
        struct mig_disk *d = &st->d[i];
        virtio_blk_dirty_take(d->dev, d->pending);
        uint64_t n = 0;
        for (size_t w = 0; w < d->words; w++)
            n += (uint64_t)__builtin_popcountll(d->pending[w]);
        /* The last chunk may be short. */
        uint64_t b = n * CHUNK;
        if (n && bm_test(d->pending, d->nchunks - 1))
            b -= d->nchunks * CHUNK - d->b->size;
        bytes += b;
    }
    mig_lock(st->g);
    st->g->p.disk_remaining = bytes;
    mig_unlock(st->g, false);
    return bytes;
}

static bool all_zero(const uint8_t *p, uint64_t len)
{
    uint64_t k = 0;
    for (; k + MIGRATE_PAGE_SIZE <= len; k += MIGRATE_PAGE_SIZE)
        if (!migrate_page_is_zero(p + k))
            return false;
    for (; k < len; k++)
        if (p[k])
            return false;
    return true;
}

/* Chunks [c0, c0 + n) read into st->buf: sent as runs of data and of zeros. */
static int send_run(struct mig_storage *st, struct mig_disk *d, uint64_t c0, uint64_t n)
{
    uint64_t off = c0 * CHUNK, len = n * CHUNK;
    if (len > d->b->size - off)
        len = d->b->size - off;
    struct iovec v = { st->buf, (size_t)len };
    int r = d->b->ops->preadv(d->b, &v, 1, off);
    if (r)
        return errmsg(st->err, st->errlen, r, "reading disk %u (%s): %s", d->slot, d->b->path,
                      strerror(-r));
    uint64_t i = 0;
    while (i < len) {
        /* A run of chunks of one kind. */
        bool zero = all_zero(st->buf + i, len - i < CHUNK ? len - i : CHUNK);
        uint64_t j = i;
        while (j < len) {
            uint64_t l = len - j < CHUNK ? len - j : CHUNK;
            if (j > i && all_zero(st->buf + j, l) != zero)
                break;
            j += l;
        }
        if ((r = send_frame(st, d, off + i, j - i, zero ? NULL : st->buf + i)))
            return r;
        i = j;
    }
    return 0;
}

int mig_storage_send(struct mig_storage *st)
{
    for (unsigned i = 0; i < st->n; i++) {
        struct mig_disk *d = &st->d[i];
        for (uint64_t c = 0; c < d->nchunks;) {
            if (!bm_test(d->pending, c)) {
                /* Skip whole empty words at once. */
                c = d->pending[c / 64] ? c + 1 : (c / 64 + 1) * 64;
                continue;
            }
            uint64_t n = 0;
            while (c + n < d->nchunks && n < RUN_CHUNKS && bm_test(d->pending, c + n)) {
                bm_clear(d->pending, c + n);
                n++;
            }
            int r = send_run(st, d, c, n);
            if (r)
                return r;
            c += n;
        }
    }
    mig_lock(st->g);
    st->g->p.disk_remaining = 0;
    mig_unlock(st->g, false);
    return 0;
}

int mig_storage_flush(struct mig_storage *st)
{
    for (unsigned i = 0; i < st->n; i++) {
        int r = virtio_blk_flush(st->d[i].dev);
        if (r)
            return errmsg(st->err, st->errlen, r, "flushing disk %u (%s): %s", st->d[i].slot,
                          st->d[i].b->path, strerror(-r));
    }
    return 0;
}

void mig_storage_stop(struct mig_storage *st)
{
    for (unsigned i = 0; i < st->n; i++) {
        if (st->d[i].logging)
            virtio_blk_dirty_stop(st->d[i].dev);
        free(st->d[i].pending);
    }
    free(st->buf);
    memset(st->d, 0, sizeof(st->d));
    st->n = 0;
    st->buf = NULL;
}
