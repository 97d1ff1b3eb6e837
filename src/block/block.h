/* Block backends: the host side of a virtual disk (raw files, qcow2 images).
 *
 * Three layers, three ops tables (STYLE.md): the virtio-mmio transport calls
 * virtio-blk, which calls a block backend through `struct block_ops`. A
 * backend knows nothing about virtio; virtio-blk knows nothing about formats.
 *
 * Offsets and lengths are in bytes of the virtual disk. Data moves through
 * iovecs so virtio-blk can hand guest-RAM buffers straight to the backend.
 *
 * Threads: after block_open() returns, every op may be called concurrently
 * from several threads (the VM's I/O workers); a backend serialises what it
 * must itself (qcow2 metadata). close runs when no other op is in flight.
 *
 * Errors: ops return 0 or -errno; open returns -errno with a one-line message
 * naming the file in `err`. */
#ifndef NIMBUS_BLOCK_BLOCK_H
#define NIMBUS_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum block_format { BLOCK_FORMAT_PROBE = 0, BLOCK_FORMAT_RAW, BLOCK_FORMAT_QCOW2 };
enum block_cache { BLOCK_CACHE_WRITEBACK = 0, BLOCK_CACHE_NONE };

struct block_options {
    enum block_format format;   /* PROBE: decide from the file's contents */
    bool readonly;
    enum block_cache cache;     /* NONE: O_DIRECT where the file system allows */
    unsigned chain_depth;       /* backing files above this one: qcow2's guard
                                   against loops and absurd chains */
    /* The image is the open descriptor `fd` (handed in by a more privileged
     * process: docs/security.md), not the file at the path, which then only
     * names it (for messages, and qcow2's relative backing names). The
     * descriptor is duplicated, never reopened by path, except through
     * /proc/self/fd for cache=none's O_DIRECT descriptor; its access mode
     * must allow what `readonly` asks. Backing files are opened by path. */
    bool by_fd;
    int fd;
};

struct block_backend;

struct block_ops {
    const char *name;  /* "raw", "qcow2" */
    /* Reads/writes exactly iov_length(iov) bytes at `offset`; a range past
     * the end of the disk is -EINVAL. Reads of unallocated space give zeros. */
    int (*preadv)(struct block_backend *b, const struct iovec *iov, int iovcnt, uint64_t offset);
    int (*pwritev)(struct block_backend *b, const struct iovec *iov, int iovcnt, uint64_t offset);
    /* Makes every completed write durable (fdatasync of data and metadata). */
    int (*flush)(struct block_backend *b);
    /* Deallocates a range (reads as zeros afterwards where the format can
     * promise it, else unspecified as VIRTIO 1.2 5.2.6 allows). */
    int (*discard)(struct block_backend *b, uint64_t offset, uint64_t len);
    /* The range reads as zeros afterwards; `may_unmap` lets the backend
     * deallocate instead of writing zeros. */
    int (*write_zeroes)(struct block_backend *b, uint64_t offset, uint64_t len, bool may_unmap);
    /* Flushes, marks the image clean where the format has such a flag, and
     * frees the backend (and its backing chain). */
    void (*close)(struct block_backend *b);
    /* What [offset, offset + len) holds, as a copy of the disk needs it
     * (a storage migration): BLOCK_DATA (may hold data: read it) or
     * BLOCK_ZERO (reads as zeros: a hole, a zero cluster, or unallocated
     * with no backing data under it), for the first *pnum bytes (1 to len)
     * that are all the same; or -errno. NULL: all of it may be data. */
    int (*status)(struct block_backend *b, uint64_t offset, uint64_t len, uint64_t *pnum);
};


/* What every backend starts with; formats embed it first. */
struct block_backend {
    const struct block_ops *ops;
    uint64_t size;        /* virtual disk size in bytes */
    bool readonly;
    char path[4096];      /* for messages */
    int file_fd;          /* the image file, buffered (not O_DIRECT): for reads
                             of the file itself, such as a snapshot's disk
                             identity; owned by the backend */
};

/* Opens `path` as `opts->format` (probing when it is PROBE: a qcow2 header
 * magic means qcow2, anything else raw; an explicit format that disagrees
 * with a qcow2 magic is refused). Nothing is written to an image that is
 * opened read-only or fails to open. */
int block_open(const char *path, const struct block_options *opts, struct block_backend **out,
               char *err, size_t errlen);

/* What block_open() would take `path` for: QCOW2 when it starts with the
 * qcow2 header magic, else RAW. -errno with a message when it cannot be
 * read, or is neither a regular file nor a block device. */
int block_probe(const char *path, enum block_format *format, char *err, size_t errlen);

/* The formats' way to the image file: open(path, flags | O_CLOEXEC |
 * O_NOCTTY), or with opts->by_fd a duplicate of opts->fd (-EBADF when its
 * access mode is narrower than flags ask; O_DIRECT in flags: a new
 * descriptor through /proc/self/fd, same access mode). Returns the
 * descriptor or -errno. */
int block_open_file(const char *path, const struct block_options *opts, int flags);

/* The formats, called by block_open() (and by qcow2 for backing files). */
int raw_open(const char *path, const struct block_options *opts, struct block_backend **out,
             char *err, size_t errlen);
int qcow2_open(const char *path, const struct block_options *opts, struct block_backend **out,
               char *err, size_t errlen);

/* A new, empty qcow2 image (version 3, 64 KiB clusters) of `size` bytes of
 * virtual disk: with `backing`, an overlay whose unwritten clusters read
 * from that file (its name as stored: relative names are from the image's
 * directory), of format `backing_format` ("raw", "qcow2"; NULL: probed on
 * open). The file must not exist; it is not synced. Returns 0 or -errno
 * with a message (qcow2_create.c). */
struct qcow2_create_options {
    uint64_t size;               /* a multiple of 512 */
    const char *backing;         /* NULL: none */
    const char *backing_format;
};
int qcow2_create(const char *path, const struct qcow2_create_options *o, char *err, size_t errlen);

enum { BLOCK_ZERO = 0, BLOCK_DATA = 1 };

/* b's status op, or BLOCK_DATA for the whole range when it has none. */
static inline int block_status(struct block_backend *b, uint64_t offset, uint64_t len,
                               uint64_t *pnum)
{
    *pnum = len;
    return b->ops->status ? b->ops->status(b, offset, len, pnum) : BLOCK_DATA;
}

static inline void block_close(struct block_backend *b)
{
    if (b)
        b->ops->close(b);
}

/* Total bytes described by an iovec array. */
static inline size_t block_iov_length(const struct iovec *iov, int iovcnt)
{
    size_t n = 0;
    for (int i = 0; i < iovcnt; i++)
        n += iov[i].iov_len;
    return n;
}

#endif
