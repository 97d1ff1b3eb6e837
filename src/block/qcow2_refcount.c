/* qcow2 refcounts and cluster allocation (qcow2.txt "Host cluster
 * management"). The refcount table points at refcount blocks; a block holds
 * one big-endian count per host cluster. New blocks and a grown table are
 * allocated from free clusters and describe themselves where they land.
 *
 * Crash safety: a new refcount block is written and synced before the table
 * points at it; a grown table is written and synced before the header does.
 * Increments reach the file before anything references the clusters (the
 * caller syncs before writing L2), and decrements only after the reference
 * is gone, so a crash leaks clusters at worst. Callers hold q->lock. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2.h"

static unsigned rc_width(const struct qcow2 *q) /* bytes per entry */
{
    return 1u << (q->refcount_order - 3);
}

static uint64_t rc_max(const struct qcow2 *q)
{
    unsigned bits = 1u << q->refcount_order;
    return bits == 64 ? UINT64_MAX : (1ull << bits) - 1;
}

static uint64_t rb_get(const struct qcow2 *q, const uint8_t *blk, uint64_t i)
{
    unsigned w = rc_width(q);
    const uint8_t *p = blk + i * w;
    uint64_t v = 0;
    for (unsigned k = 0; k < w; k++)
        v = v << 8 | p[k];
    return v;
}

static void rb_set(const struct qcow2 *q, uint8_t *blk, uint64_t i, uint64_t v)
{
    unsigned w = rc_width(q);
    uint8_t *p = blk + i * w;
    for (unsigned k = w; k-- > 0; v >>= 8)
        p[k] = (uint8_t)v;
}

static bool has_block(const struct qcow2 *q, uint64_t idx)
{
    return idx < q->rt_entries && q->reftable[idx];
}

static int block_offset(struct qcow2 *q, uint64_t idx, uint64_t *off)
{
    uint64_t o = q->reftable[idx] & ~511ull;
    if (o & (q->cluster_size - 1) || o >= QCOW2_MAX_HOST)
        return -EIO;   /* a corrupt table: unaligned or absurd block */
    *off = o;
    return 0;
}

int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *rc)
{
    uint64_t idx = cluster >> q->rb_bits, off;
    uint8_t *blk;
    *rc = 0;
    if (!has_block(q, idx))
        return 0;
    int r = block_offset(q, idx, &off);
    if (r == 0)
        r = qcow2_cache_get(q, &q->rbc, off, &blk);
    if (r < 0)
        return r;
    *rc = rb_get(q, blk, cluster & ((1ull << q->rb_bits) - 1));
    return 0;
}

int qcow2_refcount_add(struct qcow2 *q, uint64_t first, uint64_t n, int delta)
{
    uint64_t per = 1ull << q->rb_bits;
    unsigned w = rc_width(q);
    while (n) {
        uint64_t idx = first >> q->rb_bits, i0 = first & (per - 1);
        uint64_t cnt = per - i0 < n ? per - i0 : n, off;
        uint8_t *blk;
        if (!has_block(q, idx))
            return -EIO;
        int r = block_offset(q, idx, &off);
        if (r == 0)
            r = qcow2_cache_get(q, &q->rbc, off, &blk);
        if (r < 0)
            return r;
        for (uint64_t i = i0; i < i0 + cnt; i++) {
            uint64_t v = rb_get(q, blk, i);
            if ((delta < 0 && v == 0) || (delta > 0 && v == rc_max(q)))
                return -EIO;   /* underflow: corrupt; overflow: refuse */
            rb_set(q, blk, i, delta < 0 ? v - 1 : v + 1);
        }
        r = qcow2_write_meta(q, blk + i0 * w, cnt * w, off + i0 * w);
        if (r < 0)
            return r;
        first += cnt;
        n -= cnt;
    }
    return 0;
}

/* Host clusters the header, the L1 table and the refcount table occupy.
 * Their refcounts should say so; a corrupt image whose refcounts call them
 * free must not get them overwritten. */
bool qcow2_overlaps_meta(const struct qcow2 *q, uint64_t off, uint64_t len)
{
    uint64_t l1_end = q->l1_offset + (uint64_t)q->l1_size * 8;
    uint64_t rt_end = q->rt_offset + (uint64_t)q->rt_clusters * q->cluster_size;
    return off < q->cluster_size || (q->l1_size && off < l1_end && off + len > q->l1_offset) ||
           (off < rt_end && off + len > q->rt_offset);
}

static bool fixed_meta(const struct qcow2 *q, uint64_t c, uint64_t n)
{
    return qcow2_overlaps_meta(q, c << q->cluster_bits, n << q->cluster_bits);
}

/* The first run of free clusters at or after `from`: up to `want` long, or
 * exactly `want` long when `exact`. Clusters without a refcount block are
 * free. */
static int find_free(struct qcow2 *q, uint64_t from, uint64_t want, bool exact,
                     uint64_t *start, uint64_t *len)
{
    uint64_t limit = QCOW2_MAX_HOST >> q->cluster_bits, per = 1ull << q->rb_bits;
    uint64_t c = from, run = 0;
    while (run < want) {
        if (c >= limit)
            return -ENOSPC;
        if (!has_block(q, c >> q->rb_bits)) {
            uint64_t step = per - (c & (per - 1));
            if (step > want - run)
                step = want - run;
            if (!run)
                *start = c;
            run += step;
            c += step;
            continue;
        }
        uint64_t rc;
        int r = qcow2_refcount_get(q, c, &rc);
        if (r < 0)
            return r;
        if (rc) {
            if (run && !exact)
                break;
            run = 0;
        } else {
            if (!run)
                *start = c;
            run++;
        }
        c++;
    }
    *len = run;
    return fixed_meta(q, *start, run) ? -EIO : 0;
}

static int grow_reftable(struct qcow2 *q, uint64_t need);

/* Gives refcount block `idx` a home: the first free cluster, counted in an
 * existing block, or in the new block itself when it lands in its own range. */
static int ensure_block(struct qcow2 *q, uint64_t idx, int depth)
{
    unsigned cb = q->cluster_bits;
    for (int tries = 0; tries < 8; tries++) {
        int r;
        if (has_block(q, idx))
            return 0;
        if (idx >= q->rt_entries) {
            r = grow_reftable(q, idx + 1);
            if (r < 0)
                return r;
            continue;
        }
        uint64_t y, len;
        r = find_free(q, q->free_hint, 1, false, &y, &len);
        if (r < 0)
            return r;
        uint64_t yidx = y >> q->rb_bits;
        if (yidx != idx && !has_block(q, yidx)) {
            /* y's own range has no block yet: that block goes at y first. */
            if (depth > 2)
                return -EIO;
            r = ensure_block(q, yidx, depth + 1);
            if (r < 0)
                return r;
            continue;
        }
        if (yidx != idx) {
            r = qcow2_refcount_add(q, y, 1, +1);
            if (r < 0)
                return r;
        }
        uint8_t *blk;
        if ((r = qcow2_cache_new(q, &q->rbc, y << cb, &blk)) < 0)
            return r;
        if (yidx == idx)
            rb_set(q, blk, y & ((1ull << q->rb_bits) - 1), 1);
        r = qcow2_write_meta(q, blk, q->cluster_size, y << cb);
        if (r == 0)
            r = qcow2_sync(q);   /* the block is whole before the table points at it */
        if (r < 0)
            return r;
        uint64_t be = htobe64(y << cb);
        r = qcow2_write_meta(q, &be, 8, q->rt_offset + idx * 8);
        if (r < 0)
            return r;
        q->reftable[idx] = y << cb;
        q->free_hint = y + 1;
        return 0;
    }
    return -EIO;
}

/* A bigger refcount table (and the blocks that describe it) in one run of
 * free clusters; the header switches to it only once it is on disk. */
static int grow_reftable(struct qcow2 *q, uint64_t need)
{
    unsigned cb = q->cluster_bits;
    uint64_t cs = q->cluster_size, epc = cs / 8;
    uint64_t T = (uint64_t)q->rt_clusters * 2, B = 0, start = 0, len, ids[16];
    unsigned nb = 0;
    bool stable = false;
    if (T < (need + epc - 1) / epc)
        T = (need + epc - 1) / epc;
    for (int iter = 0; iter < 8 && !stable; iter++) {
        if (T * cs > QCOW2_MAX_REFTABLE)
            return -ENOSPC;
        int r = find_free(q, q->free_hint, T + B, true, &start, &len);
        if (r < 0)
            return r;
        nb = 0;
        uint64_t top = need;
        for (uint64_t idx = start >> q->rb_bits; idx <= (start + T + B - 1) >> q->rb_bits; idx++) {
            if (has_block(q, idx))
                continue;
            if (nb == 16)
                return -ENOSPC;
            ids[nb++] = idx;
            if (idx + 1 > top)
                top = idx + 1;
        }
        uint64_t T2 = (top + epc - 1) / epc;
        if (T2 < T)
            T2 = T;
        stable = nb == B && T2 == T;
        B = nb;
        T = T2;
    }
    if (!stable)
        return -EIO;

    int r = -ENOMEM;
    uint64_t *table = calloc(T * epc, 8), *host = calloc(T * epc, 8);
    uint8_t *blocks = B ? calloc(B, cs) : NULL;
    if (!table || !host || (B && !blocks))
        goto out;
    for (uint64_t i = 0; i < q->rt_entries; i++)
        host[i] = q->reftable[i];
    for (unsigned i = 0; i < nb; i++)
        host[ids[i]] = (start + T + i) << cb;
    for (uint64_t i = 0; i < T * epc; i++)
        table[i] = htobe64(host[i]);
    for (uint64_t c = start; c < start + T + B; c++) {
        uint64_t idx = c >> q->rb_bits;
        unsigned i = 0;
        while (i < nb && ids[i] != idx)
            i++;
        if (i < nb)
            rb_set(q, blocks + i * cs, c & ((1ull << q->rb_bits) - 1), 1);
        else if ((r = qcow2_refcount_add(q, c, 1, +1)) < 0)
            goto out;
    }
    if ((B && (r = qcow2_write_meta(q, blocks, B * cs, (start + T) << cb)) < 0) ||
        (r = qcow2_write_meta(q, table, T * cs, start << cb)) < 0 || (r = qcow2_sync(q)) < 0)
        goto out;
    uint8_t hdr[12];
    uint64_t off_be = htobe64(start << cb);
    uint32_t cl_be = htobe32((uint32_t)T);
    memcpy(hdr, &off_be, 8);
    memcpy(hdr + 8, &cl_be, 4);
    if ((r = qcow2_write_meta(q, hdr, sizeof(hdr), 48)) < 0 || (r = qcow2_sync(q)) < 0)
        goto out;
    uint64_t old_off = q->rt_offset, old_n = q->rt_clusters;
    free(q->reftable);
    q->reftable = host;
    host = NULL;
    q->rt_entries = T * epc;
    q->rt_offset = start << cb;
    q->rt_clusters = (uint32_t)T;
    if (start == q->free_hint)
        q->free_hint = start + T + B;
    /* The old table is unreferenced now: give its clusters back. */
    r = qcow2_free_range(q, old_off, old_n * cs);
out:
    free(table);
    free(host);
    free(blocks);
    return r;
}

int qcow2_alloc_clusters(struct qcow2 *q, uint64_t want, uint64_t *off, uint64_t *got)
{
    for (int tries = 0; tries < 16; tries++) {
        uint64_t start, len;
        int r = find_free(q, q->free_hint, want, false, &start, &len);
        if (r < 0)
            return r;
        bool made = false;
        for (uint64_t idx = start >> q->rb_bits; idx <= (start + len - 1) >> q->rb_bits; idx++) {
            if (!has_block(q, idx)) {
                r = ensure_block(q, idx, 0);
                if (r < 0)
                    return r;
                made = true;   /* it may have taken a cluster of our run */
                break;
            }
        }
        if (made)
            continue;
        r = qcow2_refcount_add(q, start, len, +1);
        if (r < 0)
            return r;
        q->free_hint = start + len;   /* [hint, start) was all in use */
        *off = start << q->cluster_bits;
        *got = len;
        return 0;
    }
    return -EIO;
}

int qcow2_free_range(struct qcow2 *q, uint64_t off, uint64_t len)
{
    if (!len)
        return 0;
    uint64_t first = off >> q->cluster_bits, last = (off + len - 1) >> q->cluster_bits;
    int r = qcow2_refcount_add(q, first, last - first + 1, -1);
    if (r == 0 && first < q->free_hint)
        q->free_hint = first;
    return r;
}
