/* qcow2 images: opening (header, extensions, validation, backing chain) and
 * closing. The I/O paths are in qcow2_io.c, refcounts in qcow2_refcount.c.
 * Format: QEMU's docs/interop/qcow2.txt, versions 2 and 3.
 *
 * Dirty bit (incompatible feature bit 0): set, and synced, before the first
 * change to an image opened read-write; cleared on clean close. We never use
 * lazy refcounts: every refcount increment is on disk before an L2 entry
 * points at the cluster, and every decrement follows the removal of the
 * reference (qcow2_refcount.c), so an image left dirty by a crash has at
 * worst leaked clusters, never a wrong refcount. Such an image is therefore
 * opened as it is (no repair pass); `qemu-img check -r leaks` reclaims the
 * leaks. An image left dirty by a writer that did use lazy refcounts
 * (compatible bit 0) may have wrong refcounts and is refused for writing.
 *
 * Threads: qcow2_open from any thread; see qcow2_io.c for the ops. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "block/qcow2.h"

#define V2_HEADER_LEN 72
#define V3_HEADER_LEN 104
#define KNOWN_INCOMPAT 0x1full

#define EXT_END            0x00000000u
#define EXT_BACKING_FORMAT 0xe2792acau
#define EXT_FEATURE_NAMES  0x6803f857u

static uint32_t be32at(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return be32toh(v);
}

static uint64_t be64at(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return be64toh(v);
}

int qcow2_read_meta(struct qcow2 *q, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(q->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;   /* metadata past the end of the file */
        done += (size_t)n;
    }
    return 0;
}

int qcow2_write_meta(struct qcow2 *q, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(q->fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        done += (size_t)n;
    }
    q->unsynced = true;
    return 0;
}

int qcow2_sync(struct qcow2 *q)
{
    if (fdatasync(q->fd) < 0)
        return -errno;
    q->unsynced = false;
    return 0;
}

/* What open learns from the header before it commits to anything. */
struct header {
    uint32_t version, cluster_bits, crypt, l1_size, rt_clusters, nb_snapshots;
    uint32_t backing_size, header_length, refcount_order;
    uint64_t backing_offset, size, l1_offset, rt_offset;
    uint64_t incompat, compat, autoclear;
    uint8_t compression_type;
    char backing[1024];
    char backing_fmt[32];
    const uint8_t *feature_names;   /* inside the header cluster buffer */
    uint32_t feature_names_len;
};

/* The name the image's feature table gives an incompatible bit, if any. */
static const char *feature_name(const struct header *h, unsigned bit, char *buf, size_t len)
{
    for (uint32_t i = 0; i + 48 <= h->feature_names_len; i += 48) {
        const uint8_t *e = h->feature_names + i;
        if (e[0] == 0 && e[1] == bit) {
            snprintf(buf, len, "%.46s", (const char *)e + 2);
            return buf;
        }
    }
    snprintf(buf, len, "unknown");
    return buf;
}

static int parse_extensions(const char *path, const uint8_t *hc, uint64_t hc_len, uint64_t start,
                            uint64_t end, struct header *h, char *err, size_t errlen)
{
    uint64_t off = start;
    if (end > hc_len)
        end = hc_len;
    while (off < end) {
        if (end - off < 8)
            return errmsg(err, errlen, -EINVAL, "%s: qcow2 header extensions run past the first cluster", path);
        uint32_t type = be32at(hc + off), len = be32at(hc + off + 4);
        off += 8;
        if (type == EXT_END)
            return 0;
        if (len > end - off)
            return errmsg(err, errlen, -EINVAL, "%s: qcow2 header extension 0x%08x is %u bytes, past the first cluster",
                          path, type, len);
        if (type == EXT_BACKING_FORMAT) {
            if (len >= sizeof(h->backing_fmt))
                return errmsg(err, errlen, -EINVAL, "%s: qcow2 backing format name too long", path);
            memcpy(h->backing_fmt, hc + off, len);
            h->backing_fmt[len] = 0;
        } else if (type == EXT_FEATURE_NAMES) {
            h->feature_names = hc + off;
            h->feature_names_len = len;
        }
        /* Others (bitmaps, encryption, data file) are either refused through
         * their feature bits or, being compatible, safely ignored. */
        off += ((uint64_t)len + 7) & ~7ull;
    }
    return 0;
}

/* Reads and validates the header cluster. */
static int parse_header(struct qcow2 *q, const char *path, uint64_t file_size, bool ro, struct header *h,
                        uint8_t **hc_out, char *err, size_t errlen)
{
    uint8_t fixed[V3_HEADER_LEN] = { 0 };
    size_t have = file_size < sizeof(fixed) ? (size_t)file_size : sizeof(fixed);
    if (file_size < V2_HEADER_LEN)
        return errmsg(err, errlen, -EINVAL, "%s: too short for a qcow2 header (%" PRIu64 " bytes)", path, file_size);
    if (qcow2_read_meta(q, fixed, have, 0) < 0)
        return errmsg(err, errlen, -EIO, "%s: cannot read the qcow2 header", path);
    if (be32at(fixed) != QCOW2_MAGIC)
        return errmsg(err, errlen, -EINVAL, "%s: not a qcow2 image (bad magic)", path);
    h->version = be32at(fixed + 4);
    if (h->version != 2 && h->version != 3)
        return errmsg(err, errlen, -ENOTSUP, "%s: qcow2 version %u is not supported (only 2 and 3)", path, h->version);
    h->backing_offset = be64at(fixed + 8);
    h->backing_size = be32at(fixed + 16);
    h->cluster_bits = be32at(fixed + 20);
    h->size = be64at(fixed + 24);
    h->crypt = be32at(fixed + 32);
    h->l1_size = be32at(fixed + 36);
    h->l1_offset = be64at(fixed + 40);
    h->rt_offset = be64at(fixed + 48);
    h->rt_clusters = be32at(fixed + 56);
    h->nb_snapshots = be32at(fixed + 60);
    h->refcount_order = 4;
    h->header_length = V2_HEADER_LEN;
    if (h->version == 3) {
        if (file_size < V3_HEADER_LEN)
            return errmsg(err, errlen, -EINVAL, "%s: truncated qcow2 v3 header", path);
        h->incompat = be64at(fixed + 72);
        h->compat = be64at(fixed + 80);
        h->autoclear = be64at(fixed + 88);
        h->refcount_order = be32at(fixed + 96);
        h->header_length = be32at(fixed + 100);
    }
    if (h->cluster_bits < 9 || h->cluster_bits > 21)
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 cluster_bits %u out of range 9..21", path, h->cluster_bits);
    uint64_t cs = 1ull << h->cluster_bits;
    if (h->version == 3 && (h->header_length < V3_HEADER_LEN || h->header_length > cs || h->header_length % 8))
        return errmsg(err, errlen, -EINVAL, "%s: bad qcow2 header_length %u", path, h->header_length);

    /* The header cluster holds the extensions and the backing file name. */
    uint64_t hc_len = file_size < cs ? file_size : cs;
    uint8_t *hc = calloc(1, cs);
    if (!hc)
        return errmsg(err, errlen, -ENOMEM, "%s: out of memory", path);
    *hc_out = hc;
    if (qcow2_read_meta(q, hc, hc_len, 0) < 0)
        return errmsg(err, errlen, -EIO, "%s: cannot read the qcow2 header cluster", path);
    if (h->header_length > 104)
        h->compression_type = hc[104];

    if (h->crypt != 0)
        return errmsg(err, errlen, -ENOTSUP, "%s: encrypted qcow2 images (crypt_method %u) are not supported", path, h->crypt);
    if (h->refcount_order > 6)
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 refcount_order %u out of range 0..6", path, h->refcount_order);
    if (!ro && h->refcount_order < 3)
        return errmsg(err, errlen, -ENOTSUP, "%s: %u-bit qcow2 refcounts are supported read-only", path,
                      1u << h->refcount_order);

    uint64_t ext_end = h->backing_offset && h->backing_offset < cs ? h->backing_offset : cs;
    int r = parse_extensions(path, hc, hc_len, h->header_length, ext_end, h, err, errlen);
    if (r < 0)
        return r;

    uint64_t unknown = h->incompat & ~KNOWN_INCOMPAT;
    if (unknown) {
        char name[64];
        unsigned bit = (unsigned)__builtin_ctzll(unknown);
        return errmsg(err, errlen, -ENOTSUP, "%s: unsupported qcow2 incompatible feature bit %u (%s)", path, bit,
                      feature_name(h, bit, name, sizeof(name)));
    }
    if (h->incompat & QCOW2_INCOMPAT_DATA_FILE)
        return errmsg(err, errlen, -ENOTSUP, "%s: qcow2 external data files are not supported", path);
    if (h->incompat & QCOW2_INCOMPAT_EXTL2)
        return errmsg(err, errlen, -ENOTSUP, "%s: qcow2 extended L2 entries are not supported", path);
    if (h->incompat & QCOW2_INCOMPAT_COMPRESSION) {
        if (h->header_length <= 104 || h->compression_type > 1)
            return errmsg(err, errlen, -ENOTSUP, "%s: unsupported qcow2 compression type %u", path, h->compression_type);
    } else if (h->compression_type != 0) {
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 compression type %u without its feature bit", path,
                      h->compression_type);
    }
    if (!ro && (h->incompat & QCOW2_INCOMPAT_CORRUPT))
        return errmsg(err, errlen, -EROFS, "%s: qcow2 image is marked corrupt; open it read-only or repair it "
                      "(qemu-img check -r all)", path);
    if (!ro && (h->incompat & QCOW2_INCOMPAT_DIRTY) && (h->compat & QCOW2_COMPAT_LAZY_REFCOUNTS))
        return errmsg(err, errlen, -EROFS, "%s: qcow2 image with lazy refcounts was not closed cleanly; "
                      "repair it (qemu-img check -r all) or open it read-only", path);
    if (!ro && h->nb_snapshots)
        return errmsg(err, errlen, -ENOTSUP, "%s: qcow2 image has %u internal snapshots; supported read-only", path,
                      h->nb_snapshots);

    /* Virtual size and the L1 table (QEMU's limits). */
    if (h->size > (uint64_t)INT64_MAX)
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 virtual size %" PRIu64 " too large", path, h->size);
    unsigned per_l1_bits = 2 * h->cluster_bits - 3;
    uint64_t l1_need = (h->size + (1ull << per_l1_bits) - 1) >> per_l1_bits;
    if (l1_need > QCOW2_MAX_L1 / 8)
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 virtual size %" PRIu64 " too large for cluster size %" PRIu64,
                      path, h->size, cs);
    if (h->l1_size < l1_need || (uint64_t)h->l1_size > QCOW2_MAX_L1 / 8)
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 L1 table of %u entries does not fit a %" PRIu64 "-byte disk",
                      path, h->l1_size, h->size);
    uint64_t l1_bytes = (uint64_t)h->l1_size * 8;
    if (h->l1_size && (h->l1_offset & (cs - 1)))
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 L1 table offset 0x%" PRIx64 " is not cluster-aligned", path,
                      h->l1_offset);
    if (h->l1_size && (h->l1_offset == 0 || h->l1_offset > file_size || l1_bytes > file_size - h->l1_offset))
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 L1 table (0x%" PRIx64 ", %" PRIu64 " bytes) %s", path,
                      h->l1_offset, l1_bytes, h->l1_offset ? "lies past the end of the file" : "overlaps the header");

    /* The refcount table. */
    uint64_t rt_bytes = (uint64_t)h->rt_clusters * cs;
    if (h->rt_clusters == 0 || rt_bytes > QCOW2_MAX_REFTABLE)
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 refcount table of %u clusters is out of range", path,
                      h->rt_clusters);
    if (h->rt_offset & (cs - 1))
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 refcount table offset 0x%" PRIx64 " is not cluster-aligned",
                      path, h->rt_offset);
    if (h->rt_offset == 0)
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 refcount table overlaps the header", path);
    if (h->rt_offset > file_size || rt_bytes > file_size - h->rt_offset)
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 refcount table (0x%" PRIx64 ") lies past the end of the file",
                      path, h->rt_offset);
    if (h->l1_size && h->rt_offset < h->l1_offset + l1_bytes && h->l1_offset < h->rt_offset + rt_bytes)
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 refcount table overlaps the L1 table", path);

    /* The backing file name: in the header cluster, at most 1023 bytes. */
    if (h->backing_offset) {
        if (h->backing_size == 0 || h->backing_size > 1023 || h->backing_offset < h->header_length ||
            h->backing_offset > hc_len || h->backing_size > hc_len - h->backing_offset)
            return errmsg(err, errlen, -EINVAL, "%s: bad qcow2 backing file name (offset %" PRIu64 ", %u bytes)", path,
                          h->backing_offset, h->backing_size);
        memcpy(h->backing, hc + h->backing_offset, h->backing_size);
        h->backing[h->backing_size] = 0;
        if (strlen(h->backing) != h->backing_size)
            return errmsg(err, errlen, -EINVAL, "%s: qcow2 backing file name contains a NUL byte", path);
    }
    return 0;
}

/* `name` as seen from the directory of `image` (qcow2 backing names are
 * relative to the image that names them). */
static int resolve_backing(const char *image, const char *name, char *out, size_t len)
{
    if (name[0] == '/') {
        if (strlen(name) >= len)
            return -ENAMETOOLONG;
        strcpy(out, name);
        return 0;
    }
    const char *slash = strrchr(image, '/');
    int dir = slash ? (int)(slash - image) : 0;
    int n = slash ? snprintf(out, len, "%.*s/%s", dir, image, name) : snprintf(out, len, "%s", name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Follows the chain of backing names from the top image by reading headers
 * only, so a loop is reported as a loop (by device and inode) before any
 * backing file is opened. Missing or non-qcow2 files end the walk; opening
 * them reports the rest. */
static int check_chain_loop(const char *top, dev_t dev, ino_t ino, const char *first, char *err, size_t errlen)
{
    struct { dev_t dev; ino_t ino; } seen[QCOW2_MAX_CHAIN + 2];
    unsigned n = 0;
    char cur[PATH_MAX], next[PATH_MAX];
    seen[n].dev = dev;
    seen[n++].ino = ino;
    snprintf(cur, sizeof(cur), "%s", first);
    for (;;) {
        struct stat st;
        if (stat(cur, &st) < 0)
            return 0;
        for (unsigned i = 0; i < n; i++)
            if (seen[i].dev == st.st_dev && seen[i].ino == st.st_ino)
                return errmsg(err, errlen, -ELOOP, "%s: qcow2 backing chain loops back to %s", top, cur);
        seen[n].dev = st.st_dev;
        seen[n++].ino = st.st_ino;
        if (n - 1 > QCOW2_MAX_CHAIN)
            break;
        int fd = open(cur, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return 0;
        uint8_t h[V2_HEADER_LEN];
        char name[1024];
        bool more = false;
        if (pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) && be32at(h) == QCOW2_MAGIC) {
            uint64_t off = be64at(h + 8);
            uint32_t len = be32at(h + 16);
            if (off && len && len < sizeof(name) && pread(fd, name, len, (off_t)off) == (ssize_t)len) {
                name[len] = 0;
                more = resolve_backing(cur, name, next, sizeof(next)) == 0;
            }
        }
        close(fd);
        if (!more)
            return 0;
        memcpy(cur, next, sizeof(cur));
    }
    return errmsg(err, errlen, -ELOOP, "%s: qcow2 backing chain deeper than %d files", top, QCOW2_MAX_CHAIN);
}

static int open_backing(struct qcow2 *q, const char *path, const struct block_options *opts, const struct header *h,
                        char *err, size_t errlen)
{
    char bpath[PATH_MAX];
    struct block_options bo = { .format = BLOCK_FORMAT_PROBE, .readonly = true, .cache = opts->cache,
                                .chain_depth = opts->chain_depth + 1 };
    if (resolve_backing(path, h->backing, bpath, sizeof(bpath)) < 0)
        return errmsg(err, errlen, -ENAMETOOLONG, "%s: qcow2 backing file name too long", path);
    if (opts->chain_depth + 1 > QCOW2_MAX_CHAIN)
        return errmsg(err, errlen, -ELOOP, "%s: qcow2 backing chain deeper than %d files (backing file %s)", path,
                      QCOW2_MAX_CHAIN, bpath);
    if (h->backing_fmt[0]) {
        if (!strcmp(h->backing_fmt, "raw"))
            bo.format = BLOCK_FORMAT_RAW;
        else if (!strcmp(h->backing_fmt, "qcow2"))
            bo.format = BLOCK_FORMAT_QCOW2;
        else
            return errmsg(err, errlen, -ENOTSUP, "%s: unsupported backing file format '%s'", path, h->backing_fmt);
    }
    if (opts->chain_depth == 0) {
        int r = check_chain_loop(path, q->dev, q->ino, bpath, err, errlen);
        if (r < 0)
            return r;
    }
    char inner[1024] = "";
    int r = block_open(bpath, &bo, &q->backing, inner, sizeof(inner));
    if (r >= 0)
        return 0;
    /* A chain too deep is reported once, by the image that hit the limit
     * (every level above would repeat it); other failures get this image's
     * name in front, and the backing file's unless the message starts with it. */
    if (r == -ELOOP)
        return errmsg(err, errlen, r, "%s", inner);
    if (!strncmp(inner, bpath, strlen(bpath)))
        return errmsg(err, errlen, r, "%s: backing file %s", path, inner);
    return errmsg(err, errlen, r, "%s: backing file %s: %s", path, bpath, inner);
}

static void qcow2_free(struct qcow2 *q)
{
    if (q->backing)
        block_close(q->backing);
    qcow2_cache_free(&q->l2c);
    qcow2_cache_free(&q->rbc);
    free(q->l1);
    free(q->reftable);
    if (q->fd >= 0)
        close(q->fd);
    pthread_mutex_destroy(&q->lock);
    pthread_rwlock_destroy(&q->io_lock);
    free(q);
}

/* Loads a table of big-endian u64 into host order. */
static int load_table(struct qcow2 *q, uint64_t **out, uint64_t n, uint64_t off)
{
    uint64_t *t = malloc(n ? n * 8 : 8);
    if (!t)
        return -ENOMEM;
    int r = n ? qcow2_read_meta(q, t, n * 8, off) : 0;
    if (r < 0) {
        free(t);
        return r;
    }
    for (uint64_t i = 0; i < n; i++)
        t[i] = be64toh(t[i]);
    *out = t;
    return 0;
}

int qcow2_open(const char *path, const struct block_options *opts, struct block_backend **out, char *err,
               size_t errlen)
{
    struct header h;
    uint8_t *hc = NULL;
    int r;
    struct qcow2 *q = calloc(1, sizeof(*q));
    if (!q)
        return errmsg(err, errlen, -ENOMEM, "%s: out of memory", path);
    memset(&h, 0, sizeof(h));
    q->fd = -1;
    pthread_mutex_init(&q->lock, NULL);
    pthread_rwlock_init(&q->io_lock, NULL);
    q->b.ops = &qcow2_ops;
    q->b.readonly = opts->readonly;
    snprintf(q->b.path, sizeof(q->b.path), "%s", path);

    /* qcow2 keeps its metadata in the page cache and orders it with
     * fdatasync; cache=none (O_DIRECT) is not applied to qcow2 images. */
    q->fd = block_open_file(path, opts, opts->readonly ? O_RDONLY : O_RDWR);
    if (q->fd < 0) {
        r = errmsg(err, errlen, q->fd, "%s: %s", path, strerror(-q->fd));
        q->fd = -1;
        goto fail;
    }
    q->b.file_fd = q->fd;
    /* One writer or any number of readers per image (this process included):
     * a base image in use as a backing file cannot be opened for writing. */
    if (flock(q->fd, (opts->readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        r = errno == EWOULDBLOCK ? errmsg(err, errlen, -EBUSY, "%s: image is in use (locked by another user)", path)
                                 : errmsg(err, errlen, -errno, "%s: cannot lock: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(q->fd, &st) < 0) {
        r = errmsg(err, errlen, -errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    q->dev = st.st_dev;
    q->ino = st.st_ino;
    off_t end = lseek(q->fd, 0, SEEK_END);
    if (end < 0) {
        r = errmsg(err, errlen, -errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    r = parse_header(q, path, (uint64_t)end, opts->readonly, &h, &hc, err, errlen);
    if (r < 0)
        goto fail;

    q->version = h.version;
    q->cluster_bits = h.cluster_bits;
    q->cluster_size = 1ull << h.cluster_bits;
    q->l2_bits = h.cluster_bits - 3;
    q->refcount_order = h.refcount_order;
    q->rb_bits = h.cluster_bits + 3 - h.refcount_order;
    q->csize_shift = 62 - (h.cluster_bits - 8);
    q->csize_mask = (1ull << (h.cluster_bits - 8)) - 1;
    q->coffset_mask = (1ull << q->csize_shift) - 1;
    q->incompat = h.incompat;
    q->compat = h.compat;
    q->autoclear = h.autoclear;
    q->compression_type = h.compression_type;
    q->dirty_set = h.incompat & QCOW2_INCOMPAT_DIRTY;
    q->l1_size = h.l1_size;
    q->l1_offset = h.l1_offset;
    q->rt_offset = h.rt_offset;
    q->rt_clusters = h.rt_clusters;
    q->rt_entries = (uint64_t)h.rt_clusters * q->cluster_size / 8;
    q->b.size = h.size;

    if ((r = load_table(q, &q->l1, h.l1_size, h.l1_offset)) < 0 ||
        (r = load_table(q, &q->reftable, q->rt_entries, h.rt_offset)) < 0) {
        r = errmsg(err, errlen, r, "%s: cannot read the qcow2 %s table", path, q->l1 ? "refcount" : "L1");
        goto fail;
    }
    /* A few MiB of L2 tables (16 tables of 64 KiB cover 8 GiB of disk). */
    unsigned n_l2 = (unsigned)((4u << 20) >> h.cluster_bits);
    n_l2 = n_l2 < 2 ? 2 : n_l2 > 16 ? 16 : n_l2;
    if ((r = qcow2_cache_init(&q->l2c, n_l2, q->cluster_size)) < 0 ||
        (r = qcow2_cache_init(&q->rbc, n_l2 < 4 ? n_l2 : 4, q->cluster_size)) < 0) {
        r = errmsg(err, errlen, r, "%s: out of memory", path);
        goto fail;
    }
    if (h.backing[0] && (r = open_backing(q, path, opts, &h, err, errlen)) < 0)
        goto fail;
    free(hc);
    *out = &q->b;
    return 0;
fail:
    free(hc);
    qcow2_free(q);
    return r;
}

void qcow2_close_image(struct qcow2 *q)
{
    if (!q->b.readonly) {
        /* Everything on disk first, then the header says clean. A failed
         * write-back leaves the image dirty (and leaking at worst). */
        if (qcow2_cache_writeback(q, &q->l2c, 0) == 0 && qcow2_sync(q) == 0 && q->dirty_set && q->version >= 3) {
            uint64_t be = htobe64(q->incompat & ~QCOW2_INCOMPAT_DIRTY);
            if (qcow2_write_meta(q, &be, 8, 72) == 0)
                qcow2_sync(q);
        }
    }
    qcow2_free(q);
}
