/* Creating qcow2 images: an empty version 3 image, optionally over a
 * backing file (an overlay: reads fall through to the backing file until a
 * cluster is written). Layout as `qemu-img create -f qcow2` makes it, with
 * 64 KiB clusters (QEMU's docs/interop/qcow2.txt):
 *
 *   cluster 0   header (header_length 112), the backing format extension,
 *               the end-of-extensions marker, the backing file name
 *   cluster 1   refcount table: one entry, pointing at cluster 2
 *   cluster 2   refcount block: 16-bit refcounts, clusters 0..2+L1 are 1
 *   cluster 3.. L1 table, all zero (nothing allocated)
 *
 * The file is written sparsely; only the header and the first refcounts
 * are non-zero. Threads: any. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/errmsg.h"
#include "block/block.h"
#include "block/qcow2.h"

#define CLUSTER_BITS    16u
#define CLUSTER_SIZE    (1ull << CLUSTER_BITS)
#define HEADER_LENGTH   112u            /* v3 header with the compression type byte */
#define REFCOUNT_ORDER  4u              /* 16-bit refcounts, QEMU's default */
#define EXT_BACKING_FMT 0xe2792acau

static void put32(uint8_t *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, 8);
}

static int write_at(int fd, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        done += (size_t)n;
    }
    return 0;
}

int qcow2_create(const char *path, const struct qcow2_create_options *o, char *err, size_t errlen)
{
    const uint64_t l2_entries = CLUSTER_SIZE / 8;
    const uint64_t per_l1 = l2_entries * CLUSTER_SIZE;   /* bytes one L1 entry maps */
    if (o->size == 0 || o->size > QCOW2_MAX_HOST || o->size % 512)
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 size %llu (a non-zero multiple of 512 "
                      "bytes, below 2^56)", path, (unsigned long long)o->size);
    uint64_t l1_size = (o->size + per_l1 - 1) / per_l1;
    uint64_t l1_clusters = (l1_size * 8 + CLUSTER_SIZE - 1) / CLUSTER_SIZE;
    if (l1_size * 8 > QCOW2_MAX_L1)
        return errmsg(err, errlen, -EINVAL, "%s: qcow2 size too large", path);

    /* Header cluster: header, extensions, then the backing name. */
    size_t blen = o->backing ? strlen(o->backing) : 0;
    size_t flen = o->backing_format ? strlen(o->backing_format) : 0;
    if (o->backing && (blen == 0 || blen > 1023))
        return errmsg(err, errlen, -ENAMETOOLONG, "%s: backing file name of %zu bytes (1 to "
                      "1023)", path, blen);
    if (flen > 16 || (flen && !o->backing))
        return errmsg(err, errlen, -EINVAL, "%s: bad backing format", path);
    uint8_t hdr[2048];
    memset(hdr, 0, sizeof(hdr));
    size_t off = HEADER_LENGTH;
    if (flen) {
        put32(hdr + off, EXT_BACKING_FMT);
        put32(hdr + off + 4, (uint32_t)flen);
        memcpy(hdr + off + 8, o->backing_format, flen);
        off += 8 + ((flen + 7) & ~(size_t)7);   /* extension data padded to 8 bytes */
    }
    off += 8;   /* end of extensions: type 0, length 0 */
    uint64_t backing_off = 0;
    if (o->backing) {
        backing_off = off;
        memcpy(hdr + off, o->backing, blen);
        off += blen;
    }
    put32(hdr + 0, QCOW2_MAGIC);
    put32(hdr + 4, 3);                        /* version */
    put64(hdr + 8, backing_off);
    put32(hdr + 16, (uint32_t)blen);
    put32(hdr + 20, CLUSTER_BITS);
    put64(hdr + 24, o->size);
    put32(hdr + 32, 0);                       /* crypt_method: none */
    put32(hdr + 36, (uint32_t)l1_size);
    put64(hdr + 40, 3 * CLUSTER_SIZE);        /* l1_table_offset */
    put64(hdr + 48, 1 * CLUSTER_SIZE);        /* refcount_table_offset */
    put32(hdr + 56, 1);                       /* refcount_table_clusters */
    /* nb_snapshots, snapshots_offset, the feature bits: 0 (clean, no lazy
     * refcounts, nothing autoclear). */
    put32(hdr + 96, REFCOUNT_ORDER);
    put32(hdr + 100, HEADER_LENGTH);
    /* byte 104: compression type 0 (zlib), 7 bytes of padding. */

    /* Refcounts: one block of 2-byte entries covers 32768 clusters, and the
     * image has 3 + l1_clusters (at most 3 + 512 with QCOW2_MAX_L1). */
    uint64_t nclusters = 3 + l1_clusters;
    uint8_t *rb = calloc(1, nclusters * 2);
    if (!rb)
        return errmsg(err, errlen, -ENOMEM, "%s: out of memory", path);
    for (uint64_t i = 0; i < nclusters; i++) {
        uint16_t one = htobe16(1);
        memcpy(rb + 2 * i, &one, 2);
    }
    uint8_t rt[8];
    put64(rt, 2 * CLUSTER_SIZE);

    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        free(rb);
        return errmsg(err, errlen, -errno, "%s: %s", path, strerror(errno));
    }
    int r;
    if ((r = write_at(fd, hdr, off, 0)) || (r = write_at(fd, rt, sizeof(rt), CLUSTER_SIZE)) ||
        (r = write_at(fd, rb, nclusters * 2, 2 * CLUSTER_SIZE)) ||
        (ftruncate(fd, (off_t)(nclusters * CLUSTER_SIZE)) < 0 && (r = -errno))) {
        errmsg(err, errlen, r, "%s: %s", path, strerror(-r));
        close(fd);
        unlink(path);
        free(rb);
        return r;
    }
    free(rb);
    if (close(fd) < 0) {
        r = -errno;
        unlink(path);
        return errmsg(err, errlen, r, "%s: %s", path, strerror(-r));
    }
    return 0;
}
