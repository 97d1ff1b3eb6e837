/* qcow2 internals shared by the qcow2_*.c files (not for other layers: they
 * use block.h). Layout and rules follow QEMU's docs/interop/qcow2.txt.
 *
 * Threads: every function here runs with `q->lock` held (the metadata
 * mutex), except the compression helper, which touches no shared state.
 * Lock order: q->lock, then q->io_lock, then the backing file's locks (a
 * backing file is only read; it never calls up). */
#ifndef NIMBUS_BLOCK_QCOW2_H
#define NIMBUS_BLOCK_QCOW2_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "block/block.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

/* Incompatible feature bits (qcow2.txt, header bytes 72-79). */
#define QCOW2_INCOMPAT_DIRTY       (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT     (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2       (1ull << 4)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

/* L1/L2 entries. */
#define QCOW2_COPIED      (1ull << 63) /* refcount is exactly 1: writable in place */
#define QCOW2_COMPRESSED  (1ull << 62)
#define QCOW2_ZERO        1ull         /* standard cluster reads as zeros (v3) */
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull /* bits 9-55 */
#define QCOW2_L2_RESERVED 0x3f000000000001feull /* must be 0 in a standard L2 entry */

#define QCOW2_MAX_CHAIN   16                  /* backing files below an image */
#define QCOW2_MAX_L1      (32u << 20)         /* bytes, as QEMU */
#define QCOW2_MAX_REFTABLE (8u << 20)         /* bytes, as QEMU */
#define QCOW2_MAX_HOST    (1ull << 56)        /* host offsets are 56 bits */
#define QCOW2_MAX_BATCH   256                 /* clusters per allocating write */

/* A small LRU of metadata clusters (L2 tables or refcount blocks), kept in
 * their on-disk (big-endian) form. Refcount blocks are write-through (the
 * caller writes changed bytes at once). L2 tables may hold entries not yet
 * written (dirty): they only point at clusters whose refcounts and data
 * were written before, and are written back after an fdatasync, on flush,
 * eviction or qcow2_cache_writeback(). */
struct qcow2_cache_entry {
    uint64_t offset;   /* host offset of the cluster; 0 = empty slot */
    uint64_t used;     /* LRU stamp */
    uint8_t *data;
    uint32_t dirty_lo, dirty_hi;   /* bytes not yet written; empty if lo >= hi */
};

struct qcow2_cache {
    unsigned n;
    uint64_t tick;
    struct qcow2_cache_entry *e;
};

struct qcow2 {
    struct block_backend b;   /* first: block.h hands out &q->b */
    int fd;
    dev_t dev;
    ino_t ino;
    unsigned version;
    unsigned cluster_bits;
    uint64_t cluster_size;
    unsigned l2_bits;          /* log2 of entries per L2 table */
    unsigned refcount_order;   /* refcount width is 1 << order bits */
    unsigned rb_bits;          /* log2 of entries per refcount block */
    unsigned csize_shift;      /* compressed descriptor: sector-count field */
    uint64_t csize_mask, coffset_mask;
    uint64_t incompat, compat, autoclear;
    uint8_t compression_type;  /* 0 zlib, 1 zstd */

    uint64_t *l1;              /* host order */
    uint32_t l1_size;
    uint64_t l1_offset;
    uint64_t *reftable;        /* host order */
    uint64_t rt_entries;
    uint64_t rt_offset;
    uint32_t rt_clusters;

    uint64_t free_hint;        /* no free cluster below this index */
    bool unsynced;             /* refcounts or data written since the last fdatasync */
    bool dirty_set;            /* the header's dirty bit is set (by us or a crash) */

    struct block_backend *backing;
    pthread_mutex_t lock;      /* guards everything below `fd` except the I/O itself */
    /* Held shared by data I/O on mapped clusters done outside `lock`, and
     * taken exclusively (inside `lock`) before clusters are freed: a freed
     * cluster is never reused while a racing request still reads or writes
     * it (that write would land in another guest range). */
    pthread_rwlock_t io_lock;
    struct qcow2_cache l2c, rbc;
};

/* I/O helpers: whole buffers or -EIO (a short read of metadata is corruption). */
int qcow2_read_meta(struct qcow2 *q, void *buf, size_t len, uint64_t off);
int qcow2_write_meta(struct qcow2 *q, const void *buf, size_t len, uint64_t off);
int qcow2_sync(struct qcow2 *q);

/* True if host bytes [off, off + len) touch the header cluster, the L1
 * table or the refcount table: a data or L2 write there means corruption. */
bool qcow2_overlaps_meta(const struct qcow2 *q, uint64_t off, uint64_t len);

/* qcow2_io.c: the ops table. */
extern const struct block_ops qcow2_ops;
/* qcow2.c: syncs, clears the dirty bit if it is set and the image is
 * writable, and frees everything (the close op). */
void qcow2_close_image(struct qcow2 *q);

/* qcow2_cache.c */
int qcow2_cache_init(struct qcow2_cache *c, unsigned n, uint64_t cluster_size);
void qcow2_cache_free(struct qcow2_cache *c);
/* Returns the cached cluster at `off`, reading it on a miss. */
int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, uint8_t **data);
/* A zero-filled slot for a cluster that is being created (not read). */
int qcow2_cache_new(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, uint8_t **data);
/* Marks bytes [lo, hi) of the cached cluster at `off` as not yet written. */
void qcow2_cache_dirty(struct qcow2_cache *c, uint64_t off, uint32_t lo, uint32_t hi);
/* Writes back the cluster at `off` (if cached and dirty), or all of them
 * (`off` 0); syncs first if refcounts or data are not yet on disk. */
int qcow2_cache_writeback(struct qcow2 *q, struct qcow2_cache *c, uint64_t off);

/* qcow2_refcount.c */
int qcow2_refcount_get(struct qcow2 *q, uint64_t cluster, uint64_t *rc);
/* Adds `delta` (+1 or -1) to the refcounts of clusters [first, first + n);
 * the blocks must exist. Written to the file, not synced. */
int qcow2_refcount_add(struct qcow2 *q, uint64_t first, uint64_t n, int delta);
/* Allocates up to `want` contiguous free clusters (at least one) with
 * refcount 1; returns their host offset and count. Not synced. */
int qcow2_alloc_clusters(struct qcow2 *q, uint64_t want, uint64_t *off, uint64_t *got);
/* Drops one reference from every cluster touched by [off, off + len). */
int qcow2_free_range(struct qcow2 *q, uint64_t off, uint64_t len);

/* qcow2_compress.c: inflates one compressed cluster (`in`, `inlen`) into
 * `out` (cluster_size bytes). Any thread; -EIO on bad data. */
int qcow2_decompress(uint8_t type, const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen);

#endif
