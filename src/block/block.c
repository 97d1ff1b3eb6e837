/* block_open(): format probing and dispatch to the formats. */
#include "block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errmsg.h"

/* "QFI\xfb" at offset 0 (the qcow2 specification's header magic). */
static const uint8_t qcow2_magic[4] = { 'Q', 'F', 'I', 0xfb };

int block_open_file(const char *path, const struct block_options *opts, int flags)
{
    if (!opts->by_fd) {
        int fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? -errno : fd;
    }
    int have = fcntl(opts->fd, F_GETFL);
    if (have < 0)
        return -EBADF;
    int want = flags & O_ACCMODE;
    if ((have & O_ACCMODE) != O_RDWR && (have & O_ACCMODE) != want)
        return -EBADF;   /* a read-only descriptor for a writable disk, say */
    if (flags & O_DIRECT) {
        /* O_DIRECT belongs to the open file description: a second one, for
         * the same file and at most the same access. */
        char proc[32];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", opts->fd);
        int fd = open(proc, (flags & ~O_ACCMODE) | want | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? -errno : fd;
    }
    int fd = fcntl(opts->fd, F_DUPFD_CLOEXEC, 3);
    return fd < 0 ? -errno : fd;
}

/* Reads the first bytes of `path` to see whether it is a qcow2 image.
 * Returns 1 (qcow2), 0 (not) or -errno with a message. Refuses what is
 * neither a regular file nor a block device before reading anything (a FIFO
 * would block or lose data). */
static int probe_qcow2(const char *path, const struct block_options *opts, char *err,
                       size_t errlen)
{
    uint8_t buf[4];
    struct stat st;
    int fd = block_open_file(path, opts, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return errmsg(err, errlen, fd, "cannot open disk image %s: %s", path, strerror(-fd));
    int ret;
    if (fstat(fd, &st)) {
        ret = errmsg(err, errlen, -errno, "cannot stat disk image %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        ret = errmsg(err, errlen, -EINVAL, "disk image %s is not a regular file or block device",
                     path);
    } else {
        ssize_t n;
        do {
            n = pread(fd, buf, sizeof(buf), 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0)
            ret = errmsg(err, errlen, -errno, "cannot read disk image %s: %s", path, strerror(errno));
        else
            ret = n == (ssize_t)sizeof(buf) && !memcmp(buf, qcow2_magic, sizeof(buf));
    }
    close(fd);
    return ret;
}

int block_probe(const char *path, enum block_format *format, char *err, size_t errlen)
{
    int is_qcow2 = probe_qcow2(path, &(struct block_options){ .fd = -1 }, err, errlen);
    if (is_qcow2 < 0)
        return is_qcow2;
    *format = is_qcow2 ? BLOCK_FORMAT_QCOW2 : BLOCK_FORMAT_RAW;
    return 0;
}

int block_open(const char *path, const struct block_options *opts, struct block_backend **out,
               char *err, size_t errlen)
{
    *out = NULL;
    int is_qcow2 = probe_qcow2(path, opts, err, errlen);
    if (is_qcow2 < 0)
        return is_qcow2;
    switch (opts->format) {
    case BLOCK_FORMAT_PROBE:
        break;
    case BLOCK_FORMAT_RAW:
        /* A guest that wrote a qcow2 header into its raw disk must not get
         * the host to read it as qcow2 later, nor the other way round: a
         * declared format that disagrees with the contents is refused. */
        if (is_qcow2)
            return errmsg(err, errlen, -EINVAL,
                          "disk image %s has a qcow2 header but format=raw was given; refusing it",
                          path);
        break;
    case BLOCK_FORMAT_QCOW2:
        if (!is_qcow2)
            return errmsg(err, errlen, -EINVAL, "disk image %s is not a qcow2 image (no qcow2 header)",
                          path);
        break;
    default:
        return errmsg(err, errlen, -EINVAL, "unknown disk format for %s", path);
    }
    if (is_qcow2)
        return qcow2_open(path, opts, out, err, errlen);
    return raw_open(path, opts, out, err, errlen);
}
