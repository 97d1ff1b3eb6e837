/* Raw disk images: the file (or host block device) is the disk, byte for
 * byte.
 *
 * cache=none opens the file with O_DIRECT. Where the file system refuses
 * O_DIRECT (tmpfs, some FUSE ones) the image is opened buffered instead and
 * every write is followed by fdatasync, so what the guest was promised
 * (nothing cached on the host) still holds. A single request O_DIRECT
 * refuses for alignment (EINVAL: a guest buffer or offset not aligned to
 * the host's logical block) is redone through a second, buffered descriptor
 * and synced; the kernel keeps the page cache and direct I/O coherent.
 *
 * Threads: every op may run concurrently (positional I/O only, no state
 * changes after open). */
#include "block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errmsg.h"

struct raw {
    struct block_backend b;
    int fd;           /* O_DIRECT with cache=none, where allowed */
    int fd_buffered;  /* cache=none: for requests O_DIRECT refuses; else -1 */
    bool sync_writes; /* cache=none without O_DIRECT: fdatasync every write */
    bool is_blockdev;
};

static struct raw *to_raw(struct block_backend *b)
{
    return (struct raw *)b;
}

static bool in_range(const struct block_backend *b, uint64_t offset, uint64_t len)
{
    return offset <= b->size && len <= b->size - offset;
}

/* preadv/pwritev until the whole request moved (short transfers happen on
 * signals and at odd boundaries). Reads past the end of a short file give
 * zeros (a block device never is). */
static int rw_loop(int fd, bool write, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    struct iovec local[IOV_MAX];
    if (iovcnt > IOV_MAX)
        return -EINVAL;
    memcpy(local, iov, sizeof(*iov) * (size_t)iovcnt);
    struct iovec *v = local;
    int cnt = iovcnt;

    while (cnt > 0) {
        if (v->iov_len == 0) {
            v++;
            cnt--;
            continue;
        }
        ssize_t n = write ? pwritev(fd, v, cnt, (off_t)offset) : preadv(fd, v, cnt, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0) {
            if (write)
                return -EIO;
            /* End of file: the rest reads as zeros. */
            for (int i = 0; i < cnt; i++)
                memset(v[i].iov_base, 0, v[i].iov_len);
            return 0;
        }
        offset += (uint64_t)n;
        size_t left = (size_t)n;
        while (cnt > 0 && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            cnt--;
        }
        if (cnt > 0) {
            v->iov_base = (uint8_t *)v->iov_base + left;
            v->iov_len -= left;
        }
    }
    return 0;
}

static int raw_preadv(struct block_backend *b, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    struct raw *r = to_raw(b);
    if (!in_range(b, offset, block_iov_length(iov, iovcnt)))
        return -EINVAL;
    int ret = rw_loop(r->fd, false, iov, iovcnt, offset);
    if (ret == -EINVAL && r->fd_buffered >= 0)
        ret = rw_loop(r->fd_buffered, false, iov, iovcnt, offset);
    return ret;
}

static int raw_pwritev(struct block_backend *b, const struct iovec *iov, int iovcnt, uint64_t offset)
{
    struct raw *r = to_raw(b);
    if (b->readonly)
        return -EROFS;
    if (!in_range(b, offset, block_iov_length(iov, iovcnt)))
        return -EINVAL;
    int ret = rw_loop(r->fd, true, iov, iovcnt, offset);
    if (ret == -EINVAL && r->fd_buffered >= 0) {
        ret = rw_loop(r->fd_buffered, true, iov, iovcnt, offset);
        if (!ret && fdatasync(r->fd_buffered))
            ret = -errno;
    } else if (!ret && r->sync_writes && fdatasync(r->fd)) {
        ret = -errno;
    }
    return ret;
}

static int raw_flush(struct block_backend *b)
{
    struct raw *r = to_raw(b);
    if (b->readonly)
        return 0;
    return fdatasync(r->fd) ? -errno : 0;
}

static int fallocate_range(struct raw *r, int mode, uint64_t offset, uint64_t len)
{
    while (fallocate(r->fd, mode, (off_t)offset, (off_t)len)) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

static int raw_discard(struct block_backend *b, uint64_t offset, uint64_t len)
{
    struct raw *r = to_raw(b);
    if (b->readonly)
        return -EROFS;
    if (!in_range(b, offset, len))
        return -EINVAL;
    if (len == 0)
        return 0;
    int ret = fallocate_range(r, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len);
    /* Discard is a hint (VIRTIO 1.2 §5.2.6.1: contents unspecified after
     * it): a file system without hole punching simply keeps the data. */
    if (ret == -EOPNOTSUPP || ret == -ENOSYS)
        ret = 0;
    return ret;
}

static int write_zero_buffers(struct raw *r, uint64_t offset, uint64_t len)
{
    const size_t chunk = 1 << 20;
    void *zeros;
    /* Aligned so the O_DIRECT descriptor takes it. */
    if (posix_memalign(&zeros, 4096, chunk))
        return -ENOMEM;
    memset(zeros, 0, chunk);
    int ret = 0;
    while (len && !ret) {
        size_t n = len < chunk ? (size_t)len : chunk;
        struct iovec v = { .iov_base = zeros, .iov_len = n };
        ret = raw_pwritev(&r->b, &v, 1, offset);
        offset += n;
        len -= n;
    }
    free(zeros);
    return ret;
}

static int raw_write_zeroes(struct block_backend *b, uint64_t offset, uint64_t len, bool may_unmap)
{
    struct raw *r = to_raw(b);
    if (b->readonly)
        return -EROFS;
    if (!in_range(b, offset, len))
        return -EINVAL;
    if (len == 0)
        return 0;
    int mode = may_unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                         : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
    int ret = fallocate_range(r, mode, offset, len);
    if (ret == -EOPNOTSUPP || ret == -ENOSYS || ret == -EINVAL)
        ret = write_zero_buffers(r, offset, len);
    else if (!ret && r->sync_writes && fdatasync(r->fd))
        ret = -errno;
    return ret;
}

/* SEEK_DATA/SEEK_HOLE (lseek(2)): a hole reads as zeros. Where the file
 * system or a block device does not say, everything may be data. */
static int raw_status(struct block_backend *b, uint64_t offset, uint64_t len, uint64_t *pnum)
{
    struct raw *r = to_raw(b);
    *pnum = len;
    if (!in_range(b, offset, len) || len == 0)
        return -EINVAL;
    if (r->is_blockdev)
        return BLOCK_DATA;
    off_t data = lseek(b->file_fd, (off_t)offset, SEEK_DATA);
    if (data < 0)
        return errno == ENXIO ? BLOCK_ZERO : BLOCK_DATA;   /* ENXIO: no data after offset */
    if ((uint64_t)data > offset) {
        if ((uint64_t)data - offset < len)
            *pnum = (uint64_t)data - offset;
        return BLOCK_ZERO;
    }
    off_t hole = lseek(b->file_fd, (off_t)offset, SEEK_HOLE);
    if (hole > (off_t)offset && (uint64_t)hole - offset < len)
        *pnum = (uint64_t)hole - offset;
    return BLOCK_DATA;
}

static void raw_close(struct block_backend *b)
{
    struct raw *r = to_raw(b);
    if (!b->readonly)
        fdatasync(r->fd);
    close(r->fd);
    if (r->fd_buffered >= 0)
        close(r->fd_buffered);
    free(r);
}

static const struct block_ops raw_ops = {
    .name = "raw",
    .preadv = raw_preadv,
    .pwritev = raw_pwritev,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .close = raw_close,
    .status = raw_status,
};

/* Opens without blocking on a FIFO and without becoming a controlling
 * terminal; the caller checks the file type on the open descriptor. */
static int open_image(const char *path, const struct block_options *opts, int flags)
{
    int fd = block_open_file(path, opts, flags | O_NONBLOCK);
    if (fd < 0)
        return fd;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

int raw_open(const char *path, const struct block_options *opts, struct block_backend **out,
             char *err, size_t errlen)
{
    int ret;
    struct stat st;

    *out = NULL;
    if (strlen(path) >= sizeof(((struct block_backend *)0)->path))
        return errmsg(err, errlen, -ENAMETOOLONG, "disk image path too long: %.64s...", path);
    struct raw *r = calloc(1, sizeof(*r));
    if (!r)
        return errmsg(err, errlen, -ENOMEM, "out of memory opening %s", path);
    r->fd = r->fd_buffered = -1;
    int acc = opts->readonly ? O_RDONLY : O_RDWR;

    r->fd = open_image(path, opts, acc);
    if (r->fd < 0) {
        ret = errmsg(err, errlen, r->fd, "cannot open disk image %s: %s", path, strerror(-r->fd));
        goto fail;
    }
    if (fstat(r->fd, &st)) {
        ret = errmsg(err, errlen, -errno, "cannot stat disk image %s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISBLK(st.st_mode)) {
        uint64_t size;
        if (ioctl(r->fd, BLKGETSIZE64, &size)) {
            ret = errmsg(err, errlen, -errno, "cannot read the size of %s: %s", path, strerror(errno));
            goto fail;
        }
        r->b.size = size;
        r->is_blockdev = true;
    } else if (S_ISREG(st.st_mode)) {
        r->b.size = (uint64_t)st.st_size;
    } else {
        ret = errmsg(err, errlen, -EINVAL, "disk image %s is not a regular file or block device", path);
        goto fail;
    }

    if (opts->cache == BLOCK_CACHE_NONE) {
        int dfd = open_image(path, opts, acc | O_DIRECT);
        if (dfd >= 0) {
            struct stat st2;
            /* Must still be the same file we checked. */
            if (fstat(dfd, &st2) || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino) {
                close(dfd);
                ret = errmsg(err, errlen, -EBUSY, "disk image %s changed while being opened", path);
                goto fail;
            }
            r->fd_buffered = r->fd;
            r->fd = dfd;
        } else if (dfd == -EINVAL) {
            r->sync_writes = true;   /* no O_DIRECT here: write-through instead */
        } else {
            ret = errmsg(err, errlen, dfd, "cannot open disk image %s with O_DIRECT: %s", path,
                         strerror(-dfd));
            goto fail;
        }
    }

    r->b.ops = &raw_ops;
    r->b.readonly = opts->readonly;
    r->b.file_fd = r->fd_buffered >= 0 ? r->fd_buffered : r->fd;
    snprintf(r->b.path, sizeof(r->b.path), "%s", path);
    *out = &r->b;
    return 0;

fail:
    if (r->fd >= 0)
        close(r->fd);
    if (r->fd_buffered >= 0)
        close(r->fd_buffered);
    free(r);
    return ret;
}
