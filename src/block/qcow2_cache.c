/* A small LRU of qcow2 metadata clusters (L2 tables, refcount blocks).
 * Callers hold q->lock. Entries are write-through: the cache never writes,
 * so the caller decides the order in which metadata reaches the file. */
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

/* The slot holding `off`, or the least recently used one (emptied). */
static struct qcow2_cache_entry *slot(struct qcow2_cache *c, uint64_t off, bool *hit)
{
    struct qcow2_cache_entry *victim = &c->e[0];
    for (unsigned i = 0; i < c->n; i++) {
        if (c->e[i].offset == off) {
            *hit = true;
            c->e[i].used = ++c->tick;
            return &c->e[i];
        }
        if (c->e[i].used < victim->used)
            victim = &c->e[i];
    }
    *hit = false;
    victim->offset = 0;
    victim->used = ++c->tick;
    return victim;
}

int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, uint8_t **data)
{
    bool hit;
    struct qcow2_cache_entry *e = slot(c, off, &hit);
    if (!hit) {
        int r = qcow2_read_meta(q, e->data, q->cluster_size, off);
        if (r < 0)
            return r;
        e->offset = off;
    }
    *data = e->data;
    return 0;
}

uint8_t *qcow2_cache_new(struct qcow2 *q, struct qcow2_cache *c, uint64_t off)
{
    bool hit;
    struct qcow2_cache_entry *e = slot(c, off, &hit);
    memset(e->data, 0, q->cluster_size);
    e->offset = off;
    return e->data;
}
