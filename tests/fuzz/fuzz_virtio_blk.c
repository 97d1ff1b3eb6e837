/* Fuzz target: virtio-blk (src/virtio/blk.c) over the raw backend on a
 * memfd, driven through the virtio-mmio transport by the hostile driver of
 * fuzz_virtio.h (see there for the input's operations and the generic
 * checks).
 *
 * Input: u8 options (bit 0 read-only, bits 1-2 queues - 1, bit 3 a size
 * that is not a whole number of sectors), u8 capacity in sectors - 1, then
 * fuzz_virtio.h's setup and operations. Requests are whatever the chains'
 * readable bytes say: IN, OUT, FLUSH, GET_ID, DISCARD, WRITE_ZEROES, or
 * anything else.
 *
 * The device's own rules (§5.2.6): a chain without a 16-byte header or a
 * status byte is refused with DEVICE_NEEDS_RESET. Every other request comes
 * back, and a model of the disk (its bytes, which discard makes unknown)
 * says what it must return: the status byte (OK, IOERR for a range outside
 * the disk, a length that is not whole sectors or a write to a read-only
 * disk, UNSUPP for an unknown type or a bad discard/write-zeroes segment),
 * the used length (data + status for IN and GET_ID, the status alone
 * otherwise), the data an IN reads, and the serial GET_ID gives. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

#include "block/block.h"
#include "fuzz_virtio.h"
#include "virtio/blk.h"

#define SECTOR     512u
#define MAX_SECT   256u
#define T_IN       0u
#define T_OUT      1u
#define T_FLUSH    4u
#define T_GET_ID   8u
#define T_DISCARD  11u
#define T_WZ       13u
#define S_OK       0u
#define S_IOERR    1u
#define S_UNSUPP   2u
#define SERIAL     "nimbus-fuzz-disk-serial-too-long"

static struct fv fv;
static int memfd = -1;
static char path[64];

static struct {
    bool readonly;
    uint64_t sectors;
    uint8_t disk[MAX_SECT * SECTOR];
    bool known[MAX_SECT];
} m;

static int blk_create(struct fv *f, struct fuzz_in *in)
{
    uint8_t opts = fuzz_u8(in), cap = fuzz_u8(in);
    if (memfd < 0)
        memfd = fuzz_memfd("fuzz-virtio-blk", path, sizeof(path));
    m.readonly = opts & 1;
    m.sectors = 1u + cap;
    FUZZ_SETUP(ftruncate(memfd, 0) == 0);
    FUZZ_SETUP(ftruncate(memfd, (off_t)(m.sectors * SECTOR + ((opts & 8) ? 100 : 0))) == 0);
    memset(m.disk, 0, sizeof(m.disk));
    memset(m.known, 1, sizeof(m.known));

    struct block_options o = { .format = BLOCK_FORMAT_RAW, .readonly = m.readonly };
    struct block_backend *b;
    char err[256];
    FUZZ_SETUP(raw_open(path, &o, &b, err, sizeof(err)) == 0);
    unsigned nq = 1u + ((opts >> 1) & 3);
    FUZZ_SETUP(virtio_blk_create(&f->mem, FV_MMIO_BASE, (struct irq_line){ 0 }, b, nq, SERIAL,
                                 &f->vdev) == 0);
    f->nq = nq;
    return 0;
}

static void blk_destroy(struct fv *f)
{
    virtio_mmio_destroy(f->vdev);
}

static int blk_keeps(struct fv *f, unsigned q)
{
    (void)f, (void)q;
    return 0;   /* every request queue is drained on a notify */
}

static bool blk_rule_broken(struct fv *f, unsigned q, const struct vqm_chain *c)
{
    (void)f, (void)q;
    return c->out_len < 16 || c->in_len < 1;
}

static bool range_ok(uint64_t sector, uint64_t count)
{
    return sector <= m.sectors && count <= m.sectors - sector;
}

/* The status of a DISCARD / WRITE_ZEROES, applying it to the model. */
static uint8_t model_ranges(struct fv *f, const struct vqm_chain *c, bool wz)
{
    uint64_t len = c->out_len - 16;
    if (len == 0 || len % 16 || len / 16 > VIRTIO_BLK_MAX_SEGS)
        return S_UNSUPP;
    if (m.readonly)
        return S_IOERR;
    struct { uint64_t sector; uint32_t num, flags; } rg[VIRTIO_BLK_MAX_SEGS];
    unsigned n = (unsigned)(len / 16);
    fv_chain_read(f, c, false, 16, rg, len);
    for (unsigned i = 0; i < n; i++) {
        if ((rg[i].flags & ~1u) || (!wz && rg[i].flags) || rg[i].num > VIRTIO_BLK_MAX_RANGE_SECTORS)
            return S_UNSUPP;
        if (!range_ok(rg[i].sector, rg[i].num))
            return S_IOERR;
    }
    for (unsigned i = 0; i < n; i++)
        for (uint64_t s = rg[i].sector; s < rg[i].sector + rg[i].num; s++) {
            /* §5.2.6.1: discarded sectors read as anything. */
            memset(m.disk + s * SECTOR, 0, SECTOR);
            m.known[s] = wz;
        }
    return S_OK;
}

static void blk_used(struct fv *f, unsigned q, const struct fv_entry *e, uint32_t len)
{
    const struct vqm_chain *c = &e->c;
    struct { uint32_t type, ioprio; uint64_t sector; } h;
    uint8_t status, want;
    uint32_t want_len = 1;
    (void)q;

    fv_chain_read(f, c, false, 0, &h, sizeof(h));
    fv_chain_read(f, c, true, c->in_len - 1, &status, 1);
    switch (h.type) {
    case T_IN: {
        uint64_t n = c->in_len - 1;
        if (n % SECTOR || !range_ok(h.sector, n / SECTOR)) {
            want = S_IOERR;
            break;
        }
        want = S_OK;
        want_len = (uint32_t)n + 1;
        if (e->shared)
            break;   /* its buffers are out twice: a later read may have filled them */
        for (uint64_t s = 0; s < n / SECTOR; s++) {
            uint8_t got[SECTOR];
            fv_chain_read(f, c, true, s * SECTOR, got, SECTOR);
            if (m.known[h.sector + s])
                FUZZ_CHECK(memcmp(got, m.disk + (h.sector + s) * SECTOR, SECTOR) == 0,
                           "IN of sector %llu: data differs from what was written",
                           (unsigned long long)(h.sector + s));
        }
        break;
    }
    case T_OUT: {
        uint64_t n = c->out_len - 16;
        if (n % SECTOR || !range_ok(h.sector, n / SECTOR) || m.readonly) {
            want = S_IOERR;
            break;
        }
        want = S_OK;
        for (uint64_t s = 0; s < n / SECTOR; s++) {
            fv_chain_read(f, c, false, 16 + s * SECTOR, m.disk + (h.sector + s) * SECTOR, SECTOR);
            m.known[h.sector + s] = true;
        }
        break;
    }
    case T_FLUSH:
        want = S_OK;
        break;
    case T_GET_ID: {
        uint64_t n = c->in_len - 1 < VIRTIO_BLK_SERIAL_LEN ? c->in_len - 1 : VIRTIO_BLK_SERIAL_LEN;
        char id[VIRTIO_BLK_SERIAL_LEN];
        fv_chain_read(f, c, true, 0, id, n);
        FUZZ_CHECK(e->shared || memcmp(id, SERIAL, n) == 0, "GET_ID: wrong serial");
        want = S_OK;
        want_len = (uint32_t)n + 1;
        break;
    }
    case T_DISCARD:
    case T_WZ:
        want = model_ranges(f, c, h.type == T_WZ);
        break;
    default:
        want = S_UNSUPP;
        break;
    }
    FUZZ_CHECK(e->shared || status == want, "request type %u sector %llu: status %u, expected %u",
               h.type, (unsigned long long)h.sector, status, want);
    FUZZ_CHECK(len == want_len, "request type %u: used length %u, expected %u", h.type, len,
               want_len);
}

static const struct fv_dev blk_dev = {
    .name = "blk",
    .create = blk_create,
    .destroy = blk_destroy,
    .keeps = blk_keeps,
    .rule_broken = blk_rule_broken,
    .used = blk_used,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fv_run(&fv, &blk_dev, data, size);
    return 0;
}
