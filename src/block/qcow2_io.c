/* qcow2 I/O: guest offsets through the L1/L2 tables to host clusters,
 * allocating writes with copy-on-write, zero clusters and discard.
 *
 * Threads: every op may run concurrently (block.h). q->lock guards the
 * tables, the caches and allocation. Reads and writes of clusters that are
 * already allocated (and, for writes, owned: COPIED) look up their mapping
 * under the lock and move the data without it. An allocating write holds the
 * lock from lookup to L2 update, so two writers never allocate the same
 * cluster twice. Freeing clusters waits for the unlocked data I/O in flight
 * (q->io_lock), so a write racing with a discard of its own range cannot
 * land in a cluster already given to another range.
 * Lock order: q->lock, then q->io_lock, then the backing file's locks.
 *
 * Crash order of an allocating write (qcow2.txt; QEMU orders the same with
 * its cache dependencies): refcount +1 and the data are written; the L2
 * entry waits in the L2 cache and is written only after an fdatasync (on
 * flush, eviction, or at once when the write replaced a cluster); a new L2
 * table is written and synced before the L1 entry points at it; a replaced
 * cluster loses its reference only after the new entry is synced. So the
 * file never holds a reference to a cluster without its refcount, and a
 * crash (SIGKILL or power loss) leaks clusters at worst. Writes the guest
 * has not flushed may be lost, as on a disk with a volatile cache. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/qcow2.h"

enum ext_type { EXT_UNALLOC, EXT_ZERO, EXT_NORMAL, EXT_COMPRESSED };

/* A run of guest bytes with one kind of mapping (within one L2 table). */
struct extent {
    enum ext_type type;
    bool copied;
    uint64_t host;   /* NORMAL: host offset of the first byte; COMPRESSED: the L2 entry */
    uint64_t len;
};

/* ---- iovec helpers ---- */

/* The bytes [skip, skip + len) of `src` as a new iovec array in `dst`. */
static int iov_sub(const struct iovec *src, int cnt, size_t skip, size_t len, struct iovec *dst)
{
    int n = 0;
    for (int i = 0; i < cnt && len; i++) {
        if (skip >= src[i].iov_len) {
            skip -= src[i].iov_len;
            continue;
        }
        size_t take = src[i].iov_len - skip < len ? src[i].iov_len - skip : len;
        dst[n].iov_base = (uint8_t *)src[i].iov_base + skip;
        dst[n++].iov_len = take;
        len -= take;
        skip = 0;
    }
    return n;
}

/* Copies `buf` into (or, with buf NULL, zeroes) bytes [skip, skip + len). */
static void iov_fill(const struct iovec *iov, int cnt, size_t skip, const uint8_t *buf, size_t len)
{
    for (int i = 0; i < cnt && len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t take = iov[i].iov_len - skip < len ? iov[i].iov_len - skip : len;
        if (buf) {
            memcpy((uint8_t *)iov[i].iov_base + skip, buf, take);
            buf += take;
        } else {
            memset((uint8_t *)iov[i].iov_base + skip, 0, take);
        }
        len -= take;
        skip = 0;
    }
}

/* preadv/pwritev of the whole array (which it consumes). A read past the
 * end of the file gives zeros, like a sparse file. */
static int rw_full(int fd, struct iovec *iov, int cnt, uint64_t off, bool write)
{
    while (cnt > 0) {
        if (!iov->iov_len) {
            iov++;
            cnt--;
            continue;
        }
        int n_iov = cnt > 1024 ? 1024 : cnt;
        ssize_t n = write ? pwritev(fd, iov, n_iov, (off_t)off) : preadv(fd, iov, n_iov, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) {
            if (write)
                return -EIO;
            for (int i = 0; i < cnt; i++)
                memset(iov[i].iov_base, 0, iov[i].iov_len);
            return 0;
        }
        off += (uint64_t)n;
        while (n > 0) {
            size_t t = (size_t)n < iov->iov_len ? (size_t)n : iov->iov_len;
            iov->iov_base = (uint8_t *)iov->iov_base + t;
            iov->iov_len -= t;
            n -= (ssize_t)t;
            if (!iov->iov_len) {
                iov++;
                cnt--;
            }
        }
    }
    return 0;
}

/* ---- mapping ---- */

static int classify(const struct qcow2 *q, uint64_t e, enum ext_type *t)
{
    if (e & QCOW2_COMPRESSED) {
        *t = EXT_COMPRESSED;
        return 0;
    }
    if (e & QCOW2_L2_RESERVED || (e & QCOW2_OFFSET_MASK & (q->cluster_size - 1)))
        return -EIO;   /* reserved bits or an unaligned data cluster: corrupt */
    *t = (e & QCOW2_ZERO) ? EXT_ZERO : (e & QCOW2_OFFSET_MASK) ? EXT_NORMAL : EXT_UNALLOC;
    return 0;
}

/* The L2 table of L1 entry `l1i`, or 0 if there is none. */
static int l2_offset(struct qcow2 *q, uint64_t l1i, uint64_t *off)
{
    uint64_t e = q->l1[l1i];
    *off = e & QCOW2_OFFSET_MASK;
    if ((e & ~(QCOW2_OFFSET_MASK | QCOW2_COPIED)) || (*off & (q->cluster_size - 1)) ||
        (*off && qcow2_overlaps_meta(q, *off, q->cluster_size)))
        return -EIO;
    return 0;
}

/* Maps guest bytes [goff, goff + len) up to the first change of kind. */
static int map(struct qcow2 *q, uint64_t goff, uint64_t len, struct extent *x)
{
    uint64_t cs = q->cluster_size, in = goff & (cs - 1), ci = goff >> q->cluster_bits;
    uint64_t n_l2 = 1ull << q->l2_bits, l1i = ci >> q->l2_bits, l2i = ci & (n_l2 - 1);
    uint64_t cap = (n_l2 - l2i) * cs - in, l2off;
    uint8_t *tbl;
    if (cap > len)
        cap = len;
    int r = l2_offset(q, l1i, &l2off);
    if (r < 0)
        return r;
    if (!l2off) {
        *x = (struct extent){ EXT_UNALLOC, false, 0, cap };
        return 0;
    }
    if ((r = qcow2_cache_get(q, &q->l2c, l2off, &tbl)) < 0)
        return r;
    const uint64_t *t = (const uint64_t *)tbl;
    uint64_t e0 = be64toh(t[l2i]);
    if ((r = classify(q, e0, &x->type)) < 0)
        return r;
    x->copied = e0 & QCOW2_COPIED;
    uint64_t host0 = e0 & QCOW2_OFFSET_MASK;
    if (x->type == EXT_COMPRESSED) {
        x->host = e0;
        x->len = cs - in < cap ? cs - in : cap;
        return 0;
    }
    x->host = host0 + in;
    uint64_t n = cs - in;
    for (uint64_t i = l2i + 1; n < cap; i++, n += cs) {
        uint64_t e = be64toh(t[i]);
        enum ext_type ty;
        if (classify(q, e, &ty) < 0 || ty != x->type)
            break;
        if (ty == EXT_NORMAL && ((e & QCOW2_OFFSET_MASK) != host0 + (i - l2i) * cs ||
                                 !(e & QCOW2_COPIED) != !x->copied))
            break;
    }
    x->len = n < cap ? n : cap;
    return 0;
}

static int read_compressed(struct qcow2 *q, uint64_t desc, uint8_t *out)
{
    uint64_t off = desc & q->coffset_mask;
    uint64_t clen = (((desc >> q->csize_shift) & q->csize_mask) + 1) * 512 - (off & 511);
    if (off >= QCOW2_MAX_HOST)
        return -EIO;
    uint8_t *buf = malloc(clen);
    if (!buf)
        return -ENOMEM;
    size_t got = 0;
    while (got < clen) {
        ssize_t n = pread(q->fd, buf + got, clen - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;   /* the last compressed cluster may end before its sector */
        got += (size_t)n;
    }
    int r = qcow2_decompress(q->compression_type, buf, got, out, q->cluster_size);
    free(buf);
    return r;
}

/* Guest bytes this image does not have: the backing file's, or zeros. */
static int read_backing(struct qcow2 *q, const struct iovec *iov, int cnt, size_t skip, uint64_t goff,
                        uint64_t len, struct iovec *tmp)
{
    uint64_t bsize = q->backing ? q->backing->size : 0, n = 0;
    if (goff < bsize) {
        n = bsize - goff < len ? bsize - goff : len;
        int k = iov_sub(iov, cnt, skip, n, tmp);
        int r = q->backing->ops->preadv(q->backing, tmp, k, goff);
        if (r < 0)
            return r;
    }
    iov_fill(iov, cnt, skip + n, NULL, len - n);
    return 0;
}

/* The current content of guest cluster `ci` (L2 entry `e`), for COW. */
static int read_old(struct qcow2 *q, uint64_t ci, uint64_t e, uint8_t *buf)
{
    enum ext_type t;
    struct iovec v = { buf, q->cluster_size }, tmp;
    int r = classify(q, e, &t);
    if (r < 0)
        return r;
    switch (t) {
    case EXT_NORMAL:
        return rw_full(q->fd, &v, 1, e & QCOW2_OFFSET_MASK, false);
    case EXT_ZERO:
        memset(buf, 0, q->cluster_size);
        return 0;
    case EXT_COMPRESSED:
        return read_compressed(q, e, buf);
    default:
        return read_backing(q, &v, 1, 0, ci << q->cluster_bits, q->cluster_size, &tmp);
    }
}

/* ---- ops ---- */

static struct qcow2 *Q(struct block_backend *b)
{
    return (struct qcow2 *)b;
}

static int check_range(struct block_backend *b, uint64_t off, uint64_t len)
{
    return off > b->size || len > b->size - off ? -EINVAL : 0;
}

static int q_preadv(struct block_backend *b, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    struct qcow2 *q = Q(b);
    uint64_t len = block_iov_length(iov, iovcnt), done = 0;
    int r = check_range(b, offset, len);
    if (r < 0)
        return r;
    struct iovec *tmp = malloc(((size_t)iovcnt + 1) * sizeof(*tmp));
    uint8_t *cbuf = NULL;
    if (!tmp)
        return -ENOMEM;
    while (done < len && r == 0) {
        struct extent x;
        uint64_t goff = offset + done;
        pthread_mutex_lock(&q->lock);
        r = map(q, goff, len - done, &x);
        if (r == 0)
            pthread_rwlock_rdlock(&q->io_lock);
        pthread_mutex_unlock(&q->lock);
        if (r < 0)
            break;
        switch (x.type) {
        case EXT_NORMAL:
            r = rw_full(q->fd, tmp, iov_sub(iov, iovcnt, done, x.len, tmp), x.host, false);
            break;
        case EXT_ZERO:
            iov_fill(iov, iovcnt, done, NULL, x.len);
            break;
        case EXT_UNALLOC:
            r = read_backing(q, iov, iovcnt, done, goff, x.len, tmp);
            break;
        case EXT_COMPRESSED:
            if (!cbuf && !(cbuf = malloc(q->cluster_size))) {
                r = -ENOMEM;
                break;
            }
            r = read_compressed(q, x.host, cbuf);
            if (r == 0)
                iov_fill(iov, iovcnt, done, cbuf + (goff & (q->cluster_size - 1)), x.len);
            break;
        }
        pthread_rwlock_unlock(&q->io_lock);
        done += x.len;
    }
    free(cbuf);
    free(tmp);
    return r;
}

/* Before the first change: the header says dirty (synced), and autoclear
 * bits we do not maintain are dropped (qcow2.txt: a writer that does not
 * know them clears them). */
static int mark_dirty(struct qcow2 *q)
{
    if (q->version < 3 || (q->dirty_set && !q->autoclear))
        return 0;
    uint64_t f[3] = { htobe64(q->incompat | QCOW2_INCOMPAT_DIRTY), htobe64(q->compat), 0 };
    int r = qcow2_write_meta(q, f, sizeof(f), 72);
    if (r == 0)
        r = qcow2_sync(q);
    if (r == 0) {
        q->incompat |= QCOW2_INCOMPAT_DIRTY;
        q->autoclear = 0;
        q->dirty_set = true;
    }
    return r;
}

/* The L2 table for L1 entry `l1i`, created (zeroed, synced, then linked
 * from L1) if there is none. */
static int l2_for_write(struct qcow2 *q, uint64_t l1i, uint64_t *off)
{
    int r = l2_offset(q, l1i, off);
    if (r < 0)
        return r;
    if (*off)
        return (q->l1[l1i] & QCOW2_COPIED) ? 0 : -EIO;   /* shared L2: only with snapshots */
    uint64_t got;
    if ((r = qcow2_alloc_clusters(q, 1, off, &got)) < 0)
        return r;
    uint8_t *tbl;
    if ((r = qcow2_cache_new(q, &q->l2c, *off, &tbl)) < 0 ||
        (r = qcow2_write_meta(q, tbl, q->cluster_size, *off)) < 0 || (r = qcow2_sync(q)) < 0)
        return r;
    uint64_t be = htobe64(*off | QCOW2_COPIED);
    if ((r = qcow2_write_meta(q, &be, 8, q->l1_offset + l1i * 8)) < 0)
        return r;
    q->l1[l1i] = *off | QCOW2_COPIED;
    return 0;
}

/* Drops the reference an L2 entry held, if it held one. */
static int free_entry(struct qcow2 *q, uint64_t e)
{
    if (e & QCOW2_COMPRESSED) {
        uint64_t off = e & q->coffset_mask;
        uint64_t nsec = ((e >> q->csize_shift) & q->csize_mask) + 1;
        return qcow2_free_range(q, off & ~511ull, nsec * 512);
    }
    if (e & QCOW2_OFFSET_MASK)
        return qcow2_free_range(q, e & QCOW2_OFFSET_MASK, q->cluster_size);
    return 0;
}

static bool holds_cluster(uint64_t e)
{
    return (e & QCOW2_COMPRESSED) || (e & QCOW2_OFFSET_MASK);
}

/* Writes guest bytes [goff, goff + glen) (one extent, one L2 table) into
 * newly allocated clusters. Returns the bytes written (> 0) or -errno.
 * Holds q->lock. */
static int64_t write_alloc(struct qcow2 *q, const struct iovec *iov, int cnt, size_t skip, uint64_t goff,
                           uint64_t glen, struct iovec *tmp)
{
    uint64_t cs = q->cluster_size, in = goff & (cs - 1), ci0 = goff >> q->cluster_bits;
    uint64_t l1i = ci0 >> q->l2_bits, l2i = ci0 & ((1ull << q->l2_bits) - 1);
    uint64_t n = (in + glen + cs - 1) >> q->cluster_bits, l2off, host, old[QCOW2_MAX_BATCH];
    uint8_t *tbl, *head = NULL, *tail = NULL;
    if (n > QCOW2_MAX_BATCH)
        n = QCOW2_MAX_BATCH;
    int r = l2_for_write(q, l1i, &l2off);
    if (r == 0)
        r = qcow2_cache_get(q, &q->l2c, l2off, &tbl);
    if (r < 0)
        return r;
    for (uint64_t i = 0; i < n; i++)
        old[i] = be64toh(((uint64_t *)tbl)[l2i + i]);
    if ((r = qcow2_alloc_clusters(q, n, &host, &n)) < 0)
        return r;
    if (glen > n * cs - in)
        glen = n * cs - in;
    uint64_t end_in = (in + glen) & (cs - 1);

    /* Old content around the new bytes: backing file, zeros, compressed or
     * shared data (copy-on-write). */
    r = -ENOMEM;
    if (in && (!(head = malloc(cs)) || (r = read_old(q, ci0, old[0], head)) < 0))
        goto out;
    if (end_in && n == 1 && head)
        tail = head;
    else if (end_in && (!(tail = malloc(cs)) || (r = read_old(q, ci0 + n - 1, old[n - 1], tail)) < 0))
        goto out;
    int k = 0;
    if (in)
        tmp[k++] = (struct iovec){ head, in };
    k += iov_sub(iov, cnt, skip, glen, tmp + k);
    if (end_in)
        tmp[k++] = (struct iovec){ tail + end_in, cs - end_in };
    if ((r = rw_full(q->fd, tmp, k, host, true)) < 0)
        goto out;
    q->unsynced = true;

    /* Now the L2 entries, in the cache (the table may have left it
     * meanwhile); they reach the file after an fdatasync (qcow2_cache.c). */
    if ((r = qcow2_cache_get(q, &q->l2c, l2off, &tbl)) < 0)
        goto out;
    bool frees = false;
    for (uint64_t i = 0; i < n; i++) {
        ((uint64_t *)tbl)[l2i + i] = htobe64((host + i * cs) | QCOW2_COPIED);
        frees |= holds_cluster(old[i]);
    }
    qcow2_cache_dirty(&q->l2c, l2off, (uint32_t)(l2i * 8), (uint32_t)((l2i + n) * 8));
    if (frees) {
        /* The replaced clusters lose their reference only once the new
         * entries are on disk. */
        if ((r = qcow2_cache_writeback(q, &q->l2c, l2off)) < 0 || (r = qcow2_sync(q)) < 0)
            goto out;
        pthread_rwlock_wrlock(&q->io_lock);
        for (uint64_t i = 0; i < n && r == 0; i++)
            r = free_entry(q, old[i]);
        pthread_rwlock_unlock(&q->io_lock);
        if (r < 0)
            goto out;
    }
    r = 0;
out:
    if (tail != head)
        free(tail);
    free(head);
    return r < 0 ? r : (int64_t)glen;
}

static int do_write(struct qcow2 *q, const struct iovec *iov, int cnt, uint64_t offset, uint64_t len)
{
    uint64_t done = 0;
    int r = 0;
    struct iovec *tmp = malloc(((size_t)cnt + 2) * sizeof(*tmp));
    if (!tmp)
        return -ENOMEM;
    pthread_mutex_lock(&q->lock);
    r = mark_dirty(q);
    pthread_mutex_unlock(&q->lock);
    while (done < len && r == 0) {
        struct extent x;
        pthread_mutex_lock(&q->lock);
        r = map(q, offset + done, len - done, &x);
        if (r == 0 && x.type == EXT_NORMAL && x.copied) {
            bool bad = qcow2_overlaps_meta(q, x.host, x.len);   /* corrupt: data over the header or tables */
            pthread_rwlock_rdlock(&q->io_lock);
            pthread_mutex_unlock(&q->lock);
            r = bad ? -EIO : rw_full(q->fd, tmp, iov_sub(iov, cnt, done, x.len, tmp), x.host, true);
            pthread_rwlock_unlock(&q->io_lock);
            done += x.len;
            continue;
        }
        if (r == 0) {
            int64_t n = write_alloc(q, iov, cnt, done, offset + done, x.len, tmp);
            if (n < 0)
                r = (int)n;
            else
                done += (uint64_t)n;
        }
        pthread_mutex_unlock(&q->lock);
    }
    free(tmp);
    return r;
}

static int q_pwritev(struct block_backend *b, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    if (b->readonly)
        return -EROFS;
    uint64_t len = block_iov_length(iov, iovcnt);
    int r = check_range(b, offset, len);
    return r < 0 ? r : do_write(Q(b), iov, iovcnt, offset, len);
}

/* Writes real zeros (partial clusters; v2 images, which lack the zero flag). */
static int write_zero_bytes(struct qcow2 *q, uint64_t off, uint64_t len)
{
    uint64_t chunk = len < (1u << 20) ? len : (1u << 20);
    uint8_t *z = calloc(1, chunk ? chunk : 1);
    int r = z ? 0 : -ENOMEM;
    while (len && r == 0) {
        uint64_t n = len < chunk ? len : chunk;
        struct iovec v = { z, n };
        r = do_write(q, &v, 1, off, n);
        off += n;
        len -= n;
    }
    free(z);
    return r;
}

enum zero_mode { ZM_DISCARD, ZM_ZERO_KEEP, ZM_ZERO_UNMAP };

/* The new L2 entry for a cluster that must read as zeros (or, for a
 * discard, may be deallocated). */
static uint64_t zero_entry(const struct qcow2 *q, uint64_t e, enum zero_mode m)
{
    bool v3 = q->version >= 3, backing = q->backing != NULL;
    if (m == ZM_ZERO_KEEP && v3 && !(e & QCOW2_COMPRESSED) && (e & QCOW2_OFFSET_MASK) && (e & QCOW2_COPIED))
        return e | QCOW2_ZERO;   /* stays allocated, reads zeros */
    if (!backing)
        return 0;                /* unallocated reads zeros */
    if (v3)
        return QCOW2_ZERO;
    return e;                    /* v2 over a backing file: discard keeps data */
}

/* Full clusters [c0, c0 + n) of one L2 table read as zeros afterwards. */
static int zero_clusters(struct qcow2 *q, uint64_t c0, uint64_t n, enum zero_mode m)
{
    uint64_t l1i = c0 >> q->l2_bits, l2i = c0 & ((1ull << q->l2_bits) - 1), l2off, old[QCOW2_MAX_BATCH];
    uint8_t *tbl;
    int r = l2_offset(q, l1i, &l2off);
    if (r < 0)
        return r;
    if (!l2off && !q->backing)
        return 0;   /* unallocated without a backing file already reads zeros */
    if ((r = l2_for_write(q, l1i, &l2off)) < 0 || (r = qcow2_cache_get(q, &q->l2c, l2off, &tbl)) < 0)
        return r;
    uint64_t *t = (uint64_t *)tbl, lo = n, hi = 0;
    bool frees = false;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t e = be64toh(t[l2i + i]), ne = zero_entry(q, e, m);
        enum ext_type ty;
        old[i] = 0;
        if (ne == e)
            continue;
        if ((r = classify(q, e, &ty)) < 0)
            return r;
        if (!(ne & QCOW2_OFFSET_MASK) && holds_cluster(e)) {
            old[i] = e;
            frees = true;
        }
        t[l2i + i] = htobe64(ne);
        lo = i < lo ? i : lo;
        hi = i + 1;
    }
    if (lo < hi)
        qcow2_cache_dirty(&q->l2c, l2off, (uint32_t)((l2i + lo) * 8), (uint32_t)((l2i + hi) * 8));
    if (frees) {
        if ((r = qcow2_cache_writeback(q, &q->l2c, l2off)) < 0)
            return r;
        if ((r = qcow2_sync(q)) < 0)
            return r;
        pthread_rwlock_wrlock(&q->io_lock);
        for (uint64_t i = 0; i < n && r == 0; i++)
            if (old[i])
                r = free_entry(q, old[i]);
        pthread_rwlock_unlock(&q->io_lock);
    }
    return r;
}

static int do_zero(struct block_backend *b, uint64_t off, uint64_t len, enum zero_mode m)
{
    struct qcow2 *q = Q(b);
    if (b->readonly)
        return -EROFS;
    int r = check_range(b, off, len);
    if (r < 0 || len == 0)
        return r;
    if (m != ZM_DISCARD && q->version < 3)
        return write_zero_bytes(q, off, len);
    uint64_t cs = q->cluster_size, end = off + len;
    /* Whole clusters; the disk's last cluster counts as whole when the
     * range runs to the end of the disk. */
    uint64_t a = (off + cs - 1) & ~(cs - 1);
    uint64_t z = end == b->size ? (end + cs - 1) & ~(cs - 1) : end & ~(cs - 1);
    if (a >= z) {
        a = z = end;   /* no whole cluster */
    }
    if (m != ZM_DISCARD) {
        if (off < a && (r = write_zero_bytes(q, off, (a < end ? a : end) - off)) < 0)
            return r;
        if (z < end && z >= a && (r = write_zero_bytes(q, z, end - z)) < 0)
            return r;
    }
    pthread_mutex_lock(&q->lock);
    r = mark_dirty(q);
    uint64_t per = 1ull << q->l2_bits;
    for (uint64_t c = a >> q->cluster_bits, ce = z >> q->cluster_bits; c < ce && r == 0;) {
        uint64_t n = per - (c & (per - 1));
        if (n > ce - c)
            n = ce - c;
        if (n > QCOW2_MAX_BATCH)
            n = QCOW2_MAX_BATCH;
        r = zero_clusters(q, c, n, m);
        c += n;
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

static int q_discard(struct block_backend *b, uint64_t offset, uint64_t len)
{
    return do_zero(b, offset, len, ZM_DISCARD);
}

static int q_write_zeroes(struct block_backend *b, uint64_t offset, uint64_t len, bool may_unmap)
{
    return do_zero(b, offset, len, may_unmap ? ZM_ZERO_UNMAP : ZM_ZERO_KEEP);
}

/* Data, refcounts, then the L2 entries that point at them (synced in
 * between by the write-back), then those entries: all durable. */
static int q_flush(struct block_backend *b)
{
    struct qcow2 *q = Q(b);
    if (b->readonly)
        return 0;
    pthread_mutex_lock(&q->lock);
    int r = qcow2_cache_writeback(q, &q->l2c, 0);
    if (r == 0)
        r = qcow2_sync(q);
    pthread_mutex_unlock(&q->lock);
    return r;
}

/* A standard or compressed cluster holds data; a zero cluster reads zeros;
 * an unallocated one is the backing file's (asked in turn) or zeros. */
static int q_status(struct block_backend *b, uint64_t offset, uint64_t len, uint64_t *pnum)
{
    struct qcow2 *q = Q(b);
    *pnum = len;
    int r = check_range(b, offset, len);
    if (r < 0 || len == 0)
        return r < 0 ? r : -EINVAL;
    struct extent x;
    pthread_mutex_lock(&q->lock);
    r = map(q, offset, len, &x);
    pthread_mutex_unlock(&q->lock);
    if (r < 0)
        return r;
    *pnum = x.len;
    if (x.type == EXT_NORMAL || x.type == EXT_COMPRESSED)
        return BLOCK_DATA;
    uint64_t bsize = q->backing ? q->backing->size : 0;
    if (x.type == EXT_ZERO || offset >= bsize)
        return BLOCK_ZERO;
    if (x.len > bsize - offset)
        *pnum = x.len = bsize - offset;
    /* The backing file's own answer, within this extent. */
    r = block_status(q->backing, offset, x.len, pnum);
    if (*pnum > x.len || *pnum == 0)
        *pnum = x.len;
    return r;
}

static void q_close(struct block_backend *b)
{
    qcow2_close_image(Q(b));
}

const struct block_ops qcow2_ops = {
    .name = "qcow2",
    .preadv = q_preadv,
    .pwritev = q_pwritev,
    .flush = q_flush,
    .discard = q_discard,
    .write_zeroes = q_write_zeroes,
    .close = q_close,
    .status = q_status,
};
