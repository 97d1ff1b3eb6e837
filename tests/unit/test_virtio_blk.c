/* Unit tests for virtio-blk over the raw backend, driven through the
 * transport like a guest driver would: configuration space, IN/OUT (the
 * bytes reach the file), bounds and alignment errors, FLUSH, GET_ID,
 * unsupported types, DISCARD and WRITE_ZEROES rules, dirty logging (a
 * storage migration's: writes, write-zeroes and discards mark their chunks,
 * reads do not, a take clears), a read-only disk, and a malformed request
 * (no room for the header) setting DEVICE_NEEDS_RESET. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "virtio/blk.h"

#include "check.h"
#include "virtio_driver.h"

#define BASE 0x10001000ull
#define DISK_SECTORS 2048u

enum { T_IN = 0, T_OUT = 1, T_FLUSH = 4, T_GET_ID = 8, T_DISCARD = 11, T_WRITE_ZEROES = 13 };
enum { S_OK = 0, S_IOERR = 1, S_UNSUPP = 2 };

static struct guest_mem mem;
static char dir[] = "/tmp/nimbus-test-blk.XXXXXX";

static void noop_irq(void *c, unsigned irq, bool level)
{
    (void)c, (void)irq, (void)level;
}

static void make_file(const char *p, uint8_t fill)
{
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    uint8_t buf[512];
    memset(buf, fill, sizeof(buf));
    for (unsigned i = 0; i < DISK_SECTORS; i++)
        if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
            exit(1);
    close(fd);
}

static struct virtio_dev *make_disk(const char *p, bool readonly)
{
    struct block_options o = { .format = BLOCK_FORMAT_RAW, .readonly = readonly };
    struct block_backend *b;
    char err[256];
    struct virtio_dev *dev = NULL;
    if (block_open(p, &o, &b, err, sizeof(err))) {
        printf("FAIL open %s: %s\n", p, err);
        exit(1);
    }
    struct irq_line line = { .set_level = noop_irq, .irq = 1 };
    CHECK_EQ(virtio_blk_create(&mem, BASE, line, b, 2, "serial-0123456789abcdefgh", &dev), 0);
    return dev;
}

#define HDR    (DRV_DATA)
#define BUF    (DRV_DATA + 0x1000)
#define STATUS (DRV_DATA + 0x100)

/* One request: header, `out_len` bytes at BUF (for OUT-like types) or
 * `in_len` writable bytes at BUF (IN, GET_ID), then a status byte. Returns
 * the status; `used` gets the used length. */
static int request(struct drv *d, unsigned q, uint32_t type, uint64_t sector, uint32_t out_len,
                   uint32_t in_len, uint32_t *used)
{
    uint8_t hdr[16] = { 0 };
    memcpy(hdr, &type, 4);
    memcpy(hdr + 8, &sector, 8);
    memcpy(drv_ram(d, HDR), hdr, 16);
    *(uint8_t *)drv_ram(d, STATUS) = 0xee;
    struct drv_buf b[3];
    unsigned n = 0;
    b[n++] = (struct drv_buf){ HDR, 16, false };
    if (out_len)
        b[n++] = (struct drv_buf){ BUF, out_len, false };
    if (in_len)
        b[n++] = (struct drv_buf){ BUF, in_len, true };
    b[n++] = (struct drv_buf){ STATUS, 1, true };
    uint16_t want = (uint16_t)(drv_used_idx(d, q) + 1);
    drv_add(d, q, b, n);
    if (!drv_wait_used(d, q, want))
        return -1;
    uint32_t id, len;
    drv_used_entry(d, q, (uint16_t)(want - 1), &id, &len);
    *used = len;
    return *(uint8_t *)drv_ram(d, STATUS);
}

static void file_read(const char *p, uint64_t off, void *buf, size_t len)
{
    int fd = open(p, O_RDONLY);
    if (pread(fd, buf, len, (off_t)off) != (ssize_t)len)
        memset(buf, 0x77, len);
    close(fd);
}

static void test_rw(void)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/rw.img", dir);
    make_file(p, 0xab);
    struct virtio_dev *dev = make_disk(p, false);
    struct drv d = { .mem = &mem, .base = BASE };
    uint32_t used;
    uint64_t v;

    /* Configuration space. */
    CHECK(guest_mem_mmio_read(&mem, BASE + R_CONFIG, 8, &v));
    CHECK_EQ(v, DISK_SECTORS);
    CHECK(guest_mem_mmio_read(&mem, BASE + R_CONFIG + 12, 4, &v));
    CHECK_EQ(v, VQ_MAX_SIZE - 2);   /* seg_max */
    CHECK(guest_mem_mmio_read(&mem, BASE + R_CONFIG + 20, 4, &v));
    CHECK_EQ(v, 512);               /* blk_size */
    CHECK(guest_mem_mmio_read(&mem, BASE + R_CONFIG + 34, 2, &v));
    CHECK_EQ(v, 2);                 /* num_queues */
    CHECK(guest_mem_mmio_read(&mem, BASE + R_CONFIG + 40, 4, &v));
    CHECK_EQ(v, VIRTIO_BLK_MAX_SEGS);   /* max_discard_seg */
    uint64_t f = drv_device_features(&d);
    CHECK(f & (1ull << 9));         /* FLUSH */
    CHECK(f & (1ull << 12));        /* MQ */
    CHECK(!(f & (1ull << 5)));      /* not RO */

    CHECK(drv_negotiate(&d, f) & VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(&d, 0, 16);
    drv_queue_setup(&d, 1, 16);
    drv_driver_ok(&d);

    uint8_t *buf = drv_ram(&d, BUF);
    for (int i = 0; i < 1024; i++)
        buf[i] = (uint8_t)(i * 13 + 1);
    uint8_t pattern[1024];
    memcpy(pattern, buf, sizeof(pattern));
    CHECK_EQ(request(&d, 0, T_OUT, 2, 1024, 0, &used), S_OK);
    CHECK_EQ(used, 1);
    uint8_t file[1536];
    file_read(p, 512, file, sizeof(file));
    CHECK(file[511] == 0xab && !memcmp(file + 512, pattern, 1024));

    memset(buf, 0, 1024);
    CHECK_EQ(request(&d, 1, T_IN, 2, 0, 1024, &used), S_OK);
    CHECK_EQ(used, 1025);
    CHECK(!memcmp(buf, pattern, 1024));

    /* Status byte sharing the data's descriptor (one writable buffer). */
    {
        uint8_t hdr[16] = { 0 };
        memcpy(drv_ram(&d, HDR), hdr, 16);   /* IN, sector 0 */
        struct drv_buf b[2] = { { HDR, 16, false }, { BUF, 513, true } };
        buf[512] = 0xee;
        uint16_t want = (uint16_t)(drv_used_idx(&d, 0) + 1);
        drv_add(&d, 0, b, 2);
        CHECK(drv_wait_used(&d, 0, want));
        CHECK_EQ(buf[0], 0xab);
        CHECK_EQ(buf[512], S_OK);
    }

    CHECK_EQ(request(&d, 0, T_IN, DISK_SECTORS - 1, 0, 1024, &used), S_IOERR);
    CHECK_EQ(request(&d, 0, T_IN, ~0ull - 1, 0, 1024, &used), S_IOERR);
    CHECK_EQ(request(&d, 0, T_OUT, DISK_SECTORS, 512, 0, &used), S_IOERR);
    CHECK_EQ(request(&d, 0, T_IN, 0, 0, 100, &used), S_IOERR);   /* not whole sectors */
    CHECK_EQ(request(&d, 0, T_IN, DISK_SECTORS - 1, 0, 512, &used), S_OK);
    CHECK_EQ(request(&d, 0, T_FLUSH, 0, 0, 0, &used), S_OK);
    CHECK_EQ(request(&d, 0, 99, 0, 0, 0, &used), S_UNSUPP);

    memset(buf, 0, 32);
    CHECK_EQ(request(&d, 0, T_GET_ID, 0, 0, 20, &used), S_OK);
    CHECK(!memcmp(buf, "serial-0123456789abc", 20));
    CHECK_EQ(used, 21);

    /* Write zeroes over the pattern, then discard rules. */
    struct { uint64_t sector; uint32_t num, flags; } rg = { 2, 2, 0 };
    memcpy(buf, &rg, 16);
    CHECK_EQ(request(&d, 0, T_WRITE_ZEROES, 0, 16, 0, &used), S_OK);
    file_read(p, 1024, file, 1024);
    CHECK(file[0] == 0 && file[1023] == 0);
    rg.flags = 1;   /* unmap: fine for write zeroes */
    memcpy(buf, &rg, 16);
    CHECK_EQ(request(&d, 0, T_WRITE_ZEROES, 0, 16, 0, &used), S_OK);
    CHECK_EQ(request(&d, 0, T_DISCARD, 0, 16, 0, &used), S_UNSUPP);  /* unmap on discard */
    rg.flags = 4;   /* reserved flag */
    memcpy(buf, &rg, 16);
    CHECK_EQ(request(&d, 0, T_WRITE_ZEROES, 0, 16, 0, &used), S_UNSUPP);
    rg = (typeof(rg)){ DISK_SECTORS - 1, 2, 0 };
    memcpy(buf, &rg, 16);
    CHECK_EQ(request(&d, 0, T_DISCARD, 0, 16, 0, &used), S_IOERR);
    rg = (typeof(rg)){ 8, 8, 0 };
    memcpy(buf, &rg, 16);
    CHECK_EQ(request(&d, 0, T_DISCARD, 0, 16, 0, &used), S_OK);
    CHECK_EQ(request(&d, 0, T_DISCARD, 0, 12, 0, &used), S_UNSUPP);  /* partial range */

    /* Dirty logging in 4 KiB chunks (256 of them: 4 words). */
    uint64_t bm[4] = { 0 };
    CHECK_EQ(virtio_blk_dirty_take(dev, bm), 0);   /* off */
    CHECK_EQ(virtio_blk_dirty_start(dev, 12), 0);
    CHECK_EQ(virtio_blk_dirty_start(dev, 12), -EBUSY);
    CHECK_EQ(request(&d, 0, T_IN, 0, 0, 512, &used), S_OK);
    CHECK_EQ(virtio_blk_dirty_take(dev, bm), 0);   /* a read marks nothing */
    memset(buf, 1, 1024);
    CHECK_EQ(request(&d, 0, T_OUT, 7, 1024, 0, &used), S_OK);    /* bytes 3584-4607 */
    rg = (typeof(rg)){ 64, 8, 0 };                                /* bytes 32768-36863 */
    memcpy(buf, &rg, 16);
    CHECK_EQ(request(&d, 0, T_DISCARD, 0, 16, 0, &used), S_OK);
    rg = (typeof(rg)){ DISK_SECTORS - 8, 8, 1 };                  /* the last chunk */
    memcpy(buf, &rg, 16);
    CHECK_EQ(request(&d, 0, T_WRITE_ZEROES, 0, 16, 0, &used), S_OK);
    CHECK_EQ(virtio_blk_dirty_take(dev, bm), 4);
    CHECK_EQ(bm[0], 0x103ull);
    CHECK_EQ(bm[3], 1ull << 63);
    memset(bm, 0, sizeof(bm));
    CHECK_EQ(virtio_blk_dirty_take(dev, bm), 0);   /* taken: cleared */
    virtio_blk_dirty_stop(dev);
    memset(buf, 2, 512);
    CHECK_EQ(request(&d, 0, T_OUT, 0, 512, 0, &used), S_OK);
    CHECK_EQ(virtio_blk_dirty_take(dev, bm), 0);   /* stopped */
    CHECK_EQ(bm[0], 0);

    /* No room for a header: the driver is broken. */
    {
        struct drv_buf b[2] = { { HDR, 8, false }, { STATUS, 1, true } };
        drv_add(&d, 0, b, 2);
        CHECK(drv_wait_status(&d, VIRTIO_STATUS_DEVICE_NEEDS_RESET));
    }
    virtio_mmio_destroy(dev);
}

static void test_readonly(void)
{
    char p[300];
    snprintf(p, sizeof(p), "%s/ro.img", dir);
    make_file(p, 0x5a);
    struct virtio_dev *dev = make_disk(p, true);
    struct drv d = { .mem = &mem, .base = BASE };
    uint32_t used;

    uint64_t f = drv_device_features(&d);
    CHECK(f & (1ull << 5));   /* VIRTIO_BLK_F_RO */
    CHECK(drv_negotiate(&d, f) & VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(&d, 0, 16);
    drv_driver_ok(&d);
    uint8_t *buf = drv_ram(&d, BUF);
    memset(buf, 0, 512);
    CHECK_EQ(request(&d, 0, T_OUT, 0, 512, 0, &used), S_IOERR);
    struct { uint64_t sector; uint32_t num, flags; } rg = { 0, 8, 0 };
    memcpy(buf, &rg, 16);
    CHECK_EQ(request(&d, 0, T_DISCARD, 0, 16, 0, &used), S_IOERR);
    CHECK_EQ(request(&d, 0, T_WRITE_ZEROES, 0, 16, 0, &used), S_IOERR);
    CHECK_EQ(request(&d, 0, T_IN, 0, 0, 512, &used), S_OK);
    CHECK_EQ(buf[0], 0x5a);
    uint8_t file[512];
    file_read(p, 0, file, 512);
    CHECK_EQ(file[0], 0x5a);
    virtio_mmio_destroy(dev);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    drv_mem_init(&mem);
    test_rw();
    mem.mmio_count = 0;   /* the next disk takes the same window */
    test_readonly();
    drv_mem_free(&mem);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd)) {
        /* leftovers in /tmp are harmless */
    }
    return check_summary("test_virtio_blk");
}
