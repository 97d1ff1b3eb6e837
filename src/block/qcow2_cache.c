/* A small LRU of qcow2 metadata clusters (L2 tables, refcount blocks).
 * Callers hold q->lock. The cache writes only dirty L2 bytes, and only
 * after an fdatasync when refcounts or data written before them are not yet
 * durable: an L2 entry must never reach the disk before what it points at
 * (qcow2.txt ordering, as QEMU's cache dependencies). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/qcow2.h"

int qcow2_cache_init(struct qcow2_cache *c, unsigned n, uint64_t cluster_size)
{
    c->n = n;
    c->tick = 0;
    c->e = calloc(n, sizeof(*c->e));
    if (!c->e)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        c->e[i].data = malloc(cluster_size);
        if (!c->e[i].data) {
            qcow2_cache_free(c);
            return -ENOMEM;
        }
    }
    return 0;
}

void qcow2_cache_free(struct qcow2_cache *c)
{
    if (!c->e)
        return;
    for (unsigned i = 0; i < c->n; i++)
        free(c->e[i].data);
    free(c->e);
    c->e = NULL;
}

static int write_back(struct qcow2 *q, struct qcow2_cache_entry *e)
{
    if (e->dirty_lo >= e->dirty_hi)
        return 0;
    int r = q->unsynced ? qcow2_sync(q) : 0;
    if (r == 0)
        r = qcow2_write_meta(q, e->data + e->dirty_lo, e->dirty_hi - e->dirty_lo, e->offset + e->dirty_lo);
    if (r == 0)
        e->dirty_lo = e->dirty_hi = 0;
    return r;
}

/* The slot holding `off`, or the least recently used one (written back
 * and emptied). */
static int slot(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, struct qcow2_cache_entry **out, bool *hit)
{
    struct qcow2_cache_entry *victim = &c->e[0];
    for (unsigned i = 0; i < c->n; i++) {
        if (c->e[i].offset == off) {
            *hit = true;
            c->e[i].used = ++c->tick;
            *out = &c->e[i];
            return 0;
        }
        if (c->e[i].used < victim->used)
            victim = &c->e[i];
    }
    int r = write_back(q, victim);
    if (r < 0)
        return r;
    *hit = false;
    victim->offset = 0;
    victim->used = ++c->tick;
    *out = victim;
    return 0;
}

int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, uint8_t **data)
{
    bool hit;
    struct qcow2_cache_entry *e;
    int r = slot(q, c, off, &e, &hit);
    if (r < 0)
        return r;
    if (!hit) {
        r = qcow2_read_meta(q, e->data, q->cluster_size, off);
        if (r < 0)
            return r;
        e->offset = off;
    }
    *data = e->data;
    return 0;
}

int qcow2_cache_new(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, uint8_t **data)
{
    bool hit;
    struct qcow2_cache_entry *e;
    int r = slot(q, c, off, &e, &hit);
    if (r < 0)
        return r;
    memset(e->data, 0, q->cluster_size);
    e->offset = off;
    e->dirty_lo = e->dirty_hi = 0;
    *data = e->data;
    return 0;
}

void qcow2_cache_dirty(struct qcow2_cache *c, uint64_t off, uint32_t lo, uint32_t hi)
{
    for (unsigned i = 0; i < c->n; i++) {
        struct qcow2_cache_entry *e = &c->e[i];
        if (e->offset != off)
            continue;
        if (e->dirty_lo >= e->dirty_hi) {
            e->dirty_lo = lo;
            e->dirty_hi = hi;
        } else {
            e->dirty_lo = lo < e->dirty_lo ? lo : e->dirty_lo;
            e->dirty_hi = hi > e->dirty_hi ? hi : e->dirty_hi;
        }
    }
}

int qcow2_cache_writeback(struct qcow2 *q, struct qcow2_cache *c, uint64_t off)
{
    for (unsigned i = 0; i < c->n; i++) {
        if (!c->e[i].offset || (off && c->e[i].offset != off))
            continue;
        int r = write_back(q, &c->e[i]);
        if (r < 0)
            return r;
    }
    return 0;
}
