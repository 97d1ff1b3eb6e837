/* Unit tests for the raw block backend and block_open(): reads and writes
 * through iovecs (the bytes land in the file), bounds, flush, discard
 * punching holes, write_zeroes with and without unmap, the block status
 * (SEEK_DATA/SEEK_HOLE), read-only refusal,
 * cache=none, and what block_open() refuses (FIFOs, directories, a qcow2
 * header declared as raw, missing files). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block.h"

#include "check.h"

#define MiB (1u << 20)
#define DISK_SIZE (8 * MiB)

static char dir[] = "/tmp/nimbus-test-raw.XXXXXX";
static char path[256];

static void make_image(const char *p, uint64_t size, uint8_t fill)
{
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    uint8_t *buf = malloc(MiB);
    memset(buf, fill, MiB);
    for (uint64_t off = 0; off < size; off += MiB)
        CHECK_EQ(pwrite(fd, buf, MiB, (off_t)off), MiB);
    free(buf);
    close(fd);
}

static long blocks_of(const char *p)
{
    struct stat st;
    return stat(p, &st) ? -1 : (long)st.st_blocks;
}

static int file_bytes(const char *p, uint64_t off, void *buf, size_t len)
{
    int fd = open(p, O_RDONLY);
    ssize_t n = pread(fd, buf, len, (off_t)off);
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

static void test_read_write(enum block_cache cache)
{
    struct block_options o = { .format = BLOCK_FORMAT_PROBE, .cache = cache };
    struct block_backend *b;
    char err[256] = "";

    make_image(path, DISK_SIZE, 0xaa);
    int r = block_open(path, &o, &b, err, sizeof(err));
    CHECK_MSG(r == 0, "open: %s", err);
    if (r)
        return;
    CHECK(!strcmp(b->ops->name, "raw"));
    CHECK_EQ(b->size, DISK_SIZE);

    /* Page-aligned buffers, as guest RAM is (O_DIRECT wants them). */
    uint8_t *p1 = NULL, *p2 = NULL, *rd = NULL;
    if (posix_memalign((void **)&p1, 4096, 8192) || posix_memalign((void **)&p2, 4096, 4096) ||
        posix_memalign((void **)&rd, 4096, 12288))
        exit(1);
    for (int i = 0; i < 8192; i++)
        p1[i] = (uint8_t)(i * 7);
    memset(p2, 0x5c, 4096);
    struct iovec w[2] = { { p1, 8192 }, { p2, 4096 } };
    CHECK_EQ(b->ops->pwritev(b, w, 2, 1 * MiB), 0);
    struct iovec rv[3] = { { rd, 4096 }, { rd + 4096, 4096 }, { rd + 8192, 4096 } };
    memset(rd, 0, 12288);
    CHECK_EQ(b->ops->preadv(b, rv, 3, 1 * MiB), 0);
    CHECK(!memcmp(rd, p1, 8192) && !memcmp(rd + 8192, p2, 4096));
    CHECK_EQ(b->ops->flush(b), 0);

    /* Unaligned request (512-byte offset and buffer): works either way. */
    struct iovec u = { p1 + 512, 512 };
    CHECK_EQ(b->ops->pwritev(b, &u, 1, 3 * MiB + 512), 0);

    /* The last byte, and bounds. */
    struct iovec last = { rd, 4096 };
    CHECK_EQ(b->ops->preadv(b, &last, 1, DISK_SIZE - 4096), 0);
    CHECK_EQ(b->ops->preadv(b, &last, 1, DISK_SIZE - 512), -EINVAL);
    CHECK_EQ(b->ops->pwritev(b, &last, 1, DISK_SIZE), -EINVAL);
    CHECK_EQ(b->ops->pwritev(b, &last, 1, ~0ull - 100), -EINVAL);
    CHECK_EQ(b->ops->discard(b, DISK_SIZE - 4096, 8192), -EINVAL);
    CHECK_EQ(b->ops->write_zeroes(b, ~0ull - 4095, 4096, false), -EINVAL);
    block_close(b);

    /* What the host sees in the file. */
    uint8_t chk[12288];
    CHECK_EQ(file_bytes(path, 1 * MiB, chk, sizeof(chk)), 0);
    CHECK(!memcmp(chk, p1, 8192) && !memcmp(chk + 8192, p2, 4096));
    CHECK_EQ(file_bytes(path, 3 * MiB, chk, 1024), 0);
    CHECK(chk[0] == 0xaa && !memcmp(chk + 512, p1 + 512, 512));
    free(p1);
    free(p2);
    free(rd);
}

static void test_discard_zeroes(void)
{
    struct block_options o = { .format = BLOCK_FORMAT_RAW };
    struct block_backend *b;
    char err[256] = "";
    uint8_t buf[4096];

    make_image(path, DISK_SIZE, 0x11);
    CHECK_EQ(block_open(path, &o, &b, err, sizeof(err)), 0);
    long before = blocks_of(path);

    CHECK_EQ(b->ops->discard(b, 1 * MiB, 2 * MiB), 0);
    long after = blocks_of(path);
    /* The host file system punched a hole: 2 MiB = 4096 blocks of 512. */
    CHECK_MSG(after <= before - 4096, "blocks %ld -> %ld", before, after);
    struct iovec v = { buf, sizeof(buf) };
    CHECK_EQ(b->ops->preadv(b, &v, 1, 2 * MiB), 0);
    CHECK(buf[0] == 0 && buf[4095] == 0);

    /* Zeroing without unmap keeps the blocks allocated. */
    before = blocks_of(path);
    CHECK_EQ(b->ops->write_zeroes(b, 4 * MiB, 1 * MiB, false), 0);
    CHECK_EQ(b->ops->preadv(b, &v, 1, 4 * MiB + 8192), 0);
    CHECK(buf[0] == 0 && buf[100] == 0);
    CHECK_MSG(blocks_of(path) >= before - 8, "zero range freed blocks");
    /* With unmap it may free them. */
    CHECK_EQ(b->ops->write_zeroes(b, 5 * MiB, 1 * MiB, true), 0);
    CHECK_EQ(b->ops->preadv(b, &v, 1, 5 * MiB + 4096), 0);
    CHECK(buf[0] == 0 && buf[4095] == 0);
    CHECK_MSG(blocks_of(path) <= before - 1024, "unmap did not free blocks: %ld -> %ld", before, blocks_of(path));
    /* The block status (a storage migration's): holes read as zeros. */
    uint64_t n = 0;
    CHECK_EQ(block_status(b, 0, DISK_SIZE, &n), BLOCK_DATA);
    CHECK_EQ(n, 1 * MiB);
    CHECK_EQ(block_status(b, 1 * MiB, DISK_SIZE - 1 * MiB, &n), BLOCK_ZERO);
    CHECK_EQ(n, 2 * MiB);
    CHECK_EQ(block_status(b, 5 * MiB, 100, &n), BLOCK_ZERO);   /* at most len */
    CHECK_EQ(n, 100);
    CHECK_EQ(block_status(b, 6 * MiB, 2 * MiB, &n), BLOCK_DATA);
    CHECK_EQ(n, 2 * MiB);
    CHECK_EQ(block_status(b, 6 * MiB, 3 * MiB, &n), -EINVAL);
    /* Neighbours untouched. */
    CHECK_EQ(b->ops->preadv(b, &v, 1, 6 * MiB), 0);
    CHECK(buf[0] == 0x11 && buf[4095] == 0x11);
    CHECK_EQ(b->ops->preadv(b, &v, 1, 1 * MiB - 4096), 0);
    CHECK(buf[4095] == 0x11);
    block_close(b);
}

static void test_readonly(void)
{
    struct block_options o = { .format = BLOCK_FORMAT_RAW, .readonly = true };
    struct block_backend *b;
    char err[256] = "";
    uint8_t buf[512];

    make_image(path, DISK_SIZE, 0x33);
    chmod(path, 0400);   /* root can still open it read-write; the flag must hold */
    CHECK_EQ(block_open(path, &o, &b, err, sizeof(err)), 0);
    CHECK(b->readonly);
    struct iovec v = { buf, sizeof(buf) };
    CHECK_EQ(b->ops->preadv(b, &v, 1, 0), 0);
    CHECK_EQ(buf[0], 0x33);
    memset(buf, 0, sizeof(buf));
    CHECK_EQ(b->ops->pwritev(b, &v, 1, 0), -EROFS);
    CHECK_EQ(b->ops->discard(b, 0, 4096), -EROFS);
    CHECK_EQ(b->ops->write_zeroes(b, 0, 4096, true), -EROFS);
    CHECK_EQ(b->ops->flush(b), 0);
    block_close(b);
    CHECK_EQ(file_bytes(path, 0, buf, 1), 0);
    CHECK_EQ(buf[0], 0x33);
    chmod(path, 0600);
}

static void test_refusals(void)
{
    struct block_options o = { .format = BLOCK_FORMAT_PROBE };
    struct block_backend *b = (void *)1;
    char err[256], p[300];

    snprintf(p, sizeof(p), "%s/fifo", dir);
    CHECK_EQ(mkfifo(p, 0600), 0);
    err[0] = 0;
    CHECK_EQ(block_open(p, &o, &b, err, sizeof(err)), -EINVAL);   /* and does not block */
    CHECK(b == NULL);
    CHECK_MSG(strstr(err, "not a regular file") && strstr(err, p), "%s", err);
    o.format = BLOCK_FORMAT_RAW;
    CHECK_EQ(raw_open(p, &o, &b, err, sizeof(err)), -EINVAL);
    o.format = BLOCK_FORMAT_PROBE;

    CHECK_EQ(block_open(dir, &o, &b, err, sizeof(err)), -EINVAL);
    CHECK_EQ(block_open("/dev/null", &o, &b, err, sizeof(err)), -EINVAL);

    snprintf(p, sizeof(p), "%s/missing", dir);
    CHECK_EQ(block_open(p, &o, &b, err, sizeof(err)), -ENOENT);
    CHECK_MSG(strstr(err, p) != NULL, "%s", err);

    /* A raw disk whose guest wrote a qcow2 header must not be declared raw. */
    make_image(path, 1 * MiB, 0);
    int fd = open(path, O_WRONLY);
    CHECK_EQ(pwrite(fd, "QFI\xfb\0\0\0\3", 8, 0), 8);
    close(fd);
    o.format = BLOCK_FORMAT_RAW;
    CHECK_EQ(block_open(path, &o, &b, err, sizeof(err)), -EINVAL);
    CHECK_MSG(strstr(err, "qcow2") && strstr(err, "format=raw"), "%s", err);
    /* ...and a file without the header is not qcow2. */
    make_image(path, 1 * MiB, 0);
    o.format = BLOCK_FORMAT_QCOW2;
    CHECK_EQ(block_open(path, &o, &b, err, sizeof(err)), -EINVAL);
    CHECK_MSG(strstr(err, "not a qcow2") != NULL, "%s", err);

    /* An empty file is a zero-sized raw disk. */
    fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    o.format = BLOCK_FORMAT_PROBE;
    CHECK_EQ(block_open(path, &o, &b, err, sizeof(err)), 0);
    CHECK_EQ(b->size, 0);
    block_close(b);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof(path), "%s/disk.img", dir);
    test_read_write(BLOCK_CACHE_WRITEBACK);
    test_read_write(BLOCK_CACHE_NONE);
    test_discard_zeroes();
    test_readonly();
    test_refusals();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd)) {
        /* leftovers in /tmp are harmless */
    }
    return check_summary("test_block_raw");
}
