/* Sequential throughput of the qcow2 backend against a plain file: 1 MiB
 * pwritev over a fresh disk (then fdatasync), then 1 MiB preadv over it,
 * page cache warm in both cases. Prints MiB/s; never pass/fail.
 *
 *   gcc -O2 -Isrc -D_GNU_SOURCE bench/block_seq.c src/block/qcow2*.c \
 *       -lz -lzstd -lpthread -o build/bench/block_seq
 *   build/bench/block_seq [dir] [MiB]      (defaults: /tmp, 512)
 *
 * A qcow2 image has no backing file here, so block_open() is not needed;
 * a stub keeps this program free of block.c (weak: the real one wins). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "block/block.h"

__attribute__((weak)) int block_open(const char *path, const struct block_options *opts,
                                     struct block_backend **out, char *err, size_t errlen)
{
    (void)opts, (void)out;
    snprintf(err, errlen, "%s: no backing files in this benchmark", path);
    return -ENOSYS;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    unsigned long mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 512;
    size_t chunk = 1u << 20;
    char raw[4096], img[4096], cmd[8300], err[512];
    snprintf(raw, sizeof(raw), "%s/bench-seq.raw", dir);
    snprintf(img, sizeof(img), "%s/bench-seq.qcow2", dir);
    snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s %luM", img, mib);
    if (system(cmd) != 0)
        return 1;
    uint8_t *buf = malloc(chunk);
    for (size_t i = 0; i < chunk; i++)
        buf[i] = (uint8_t)(i * 7 + i / 4096);
    struct iovec v = { buf, chunk };

    /* The plain file: what a raw backend does at best. */
    int fd = open(raw, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)(mib << 20)) < 0)
        return 1;
    double t0 = now();
    for (unsigned long i = 0; i < mib; i++)
        if (pwritev(fd, &v, 1, (off_t)(i << 20)) != (ssize_t)chunk)
            return 1;
    fdatasync(fd);
    double t1 = now();
    for (unsigned long i = 0; i < mib; i++)
        if (preadv(fd, &v, 1, (off_t)(i << 20)) != (ssize_t)chunk)
            return 1;
    double t2 = now();
    close(fd);
    printf("file : write %7.0f MiB/s  read %7.0f MiB/s\n", mib / (t1 - t0), mib / (t2 - t1));

    struct block_options o = { .format = BLOCK_FORMAT_QCOW2 };
    struct block_backend *b;
    if (qcow2_open(img, &o, &b, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    t0 = now();
    for (unsigned long i = 0; i < mib; i++)
        if (b->ops->pwritev(b, &v, 1, i << 20) < 0)
            return 1;
    b->ops->flush(b);
    t1 = now();
    for (unsigned long i = 0; i < mib; i++)
        if (b->ops->preadv(b, &v, 1, i << 20) < 0)
            return 1;
    t2 = now();
    printf("qcow2: write %7.0f MiB/s  read %7.0f MiB/s  (first write: allocating)\n", mib / (t1 - t0),
           mib / (t2 - t1));
    t0 = now();
    for (unsigned long i = 0; i < mib; i++)
        if (b->ops->pwritev(b, &v, 1, i << 20) < 0)
            return 1;
    b->ops->flush(b);
    t1 = now();
    printf("qcow2: rewrite %5.0f MiB/s  (clusters allocated)\n", mib / (t1 - t0));
    block_close(b);
    unlink(raw);
    unlink(img);
    return 0;
}
