/* Unit tests for virtio-balloon with a fake driver over real (mmap'd,
 * lazily backed) guest RAM, so discards can be seen with mincore(2):
 * identity and offered features (options), the configuration space
 * (num_pages from the host with a configuration interrupt, actual from the
 * driver, nothing else writable), inflate (pages discarded: zero and not
 * resident; neighbours kept; PFNs outside RAM ignored), deflate (nothing
 * changes), free page reporting (ranges discarded; its queue index follows
 * the negotiated features), the statistics queue (parsed, held, returned on
 * request, a buffer primed before DRIVER_OK, the interval timer), reset;
 * snapshots: save -> load into a fresh balloon keeps target, actual, the
 * statistics, the totals and the held statistics buffer (given back at
 * save, held again without counting as new figures); options that no
 * longer offer a negotiated feature and bad sections are refused. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "state/state.h"
#include "virtio/balloon.h"

#include "check.h"
#include "virtio_driver.h"

#define BASE 0x10001000ull
#define PAGE 4096ull
#define PAGES_AT (DRV_RAM_BASE + 0x180000)   /* 128 pages used by the tests */
#define F(bit) (1ull << (bit))

static struct guest_mem mem;
static const char *seed_dir;
#define BALLOON_INST 4u   /* as tests/fuzz/fuzz_state.c loads it */
static atomic_int irq_level, irq_raises;

static void fake_set_level(void *controller, unsigned irq, bool level)
{
    (void)controller, (void)irq;
    if (level && !atomic_load(&irq_level))
        atomic_fetch_add(&irq_raises, 1);
    atomic_store(&irq_level, level);
}

static struct virtio_balloon *make(const struct virtio_balloon_options *o, struct virtio_dev **vd)
{
    struct virtio_balloon *b = NULL;
    struct irq_line irq = { .set_level = fake_set_level };
    int r = virtio_balloon_create(&mem, BASE, irq, o, &b, vd);
    CHECK_EQ(r, 0);
    return b;
}

static void destroy(struct virtio_dev *vd)
{
    virtio_mmio_destroy(vd);
    mem.mmio_count = 0;   /* the next device takes the same window */
}

static bool resident(uint64_t pa)
{
    unsigned char v = 0;
    void *p = mem.ram + (pa - DRV_RAM_BASE);
    if (mincore(p, PAGE, &v))
        return true;
    return v & 1;
}

static uint8_t *ram(uint64_t pa)
{
    return mem.ram + (pa - DRV_RAM_BASE);
}

/* Negotiates `features` (plus VERSION_1) and sets up `nq` queues. */
static void bring_up(struct drv *d, uint64_t features, unsigned nq, bool driver_ok)
{
    CHECK(drv_negotiate(d, features | F(VIRTIO_F_VERSION_1)) & VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < nq; q++)
        drv_queue_setup(d, q, 64);
    if (driver_ok)
        drv_driver_ok(d);
}

static void send_pfns(struct drv *d, unsigned q, const uint32_t *pfns, unsigned n, uint64_t at)
{
    memcpy(ram(at), pfns, n * 4);
    uint16_t want = (uint16_t)(drv_used_idx(d, q) + 1);
    struct drv_buf b = { at, n * 4, false };
    drv_add(d, q, &b, 1);
    CHECK(drv_wait_used(d, q, want));
}

static void test_identity(void)
{
    struct virtio_dev *vd;
    struct virtio_balloon_options o = { .deflate_on_oom = true, .reporting = true };
    struct virtio_balloon *b = make(&o, &vd);
    struct drv d = { .mem = &mem, .base = BASE };
    CHECK_EQ(drv_rd(&d, R_DEVICE_ID), VIRTIO_ID_BALLOON);
    uint64_t f = drv_device_features(&d);
    CHECK(f & F(VIRTIO_BALLOON_F_STATS_VQ));
    CHECK(f & F(VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
    CHECK(f & F(VIRTIO_BALLOON_F_REPORTING));
    CHECK(!(f & F(VIRTIO_BALLOON_F_MUST_TELL_HOST)));
    CHECK(!(f & F(VIRTIO_BALLOON_F_FREE_PAGE_HINT)));
    CHECK(!(f & F(VIRTIO_BALLOON_F_PAGE_POISON)));
    /* Four queues: inflate, deflate, stats, reporting. */
    drv_wr(&d, R_QUEUE_SEL, 3);
    CHECK_EQ(drv_rd(&d, R_QUEUE_NUM_MAX), VIRTIO_BALLOON_QUEUE_SIZE);
    drv_wr(&d, R_QUEUE_SEL, 4);
    CHECK_EQ(drv_rd(&d, R_QUEUE_NUM_MAX), 0);
    (void)b;
    destroy(vd);

    o = (struct virtio_balloon_options){ 0 };
    make(&o, &vd);
    f = drv_device_features(&d);
    CHECK(f & F(VIRTIO_BALLOON_F_STATS_VQ));
    CHECK(!(f & F(VIRTIO_BALLOON_F_DEFLATE_ON_OOM)));
    CHECK(!(f & F(VIRTIO_BALLOON_F_REPORTING)));
    drv_wr(&d, R_QUEUE_SEL, 3);
    CHECK_EQ(drv_rd(&d, R_QUEUE_NUM_MAX), 0);
    destroy(vd);
}

static void test_config(void)
{
    struct virtio_dev *vd;
    struct virtio_balloon_options o = { .deflate_on_oom = true };
    struct virtio_balloon *b = make(&o, &vd);
    struct drv d = { .mem = &mem, .base = BASE };
    bring_up(&d, F(VIRTIO_BALLOON_F_STATS_VQ), 3, true);

    uint32_t gen = drv_rd(&d, R_CONFIG_GEN);
    int raises = atomic_load(&irq_raises);
    virtio_balloon_set_target(b, 1234);
    CHECK_EQ(drv_rd(&d, R_CONFIG), 1234);
    CHECK(drv_rd(&d, R_CONFIG_GEN) != gen);
    CHECK(drv_rd(&d, R_INT_STATUS) & VIRTIO_INT_CONFIG);
    CHECK(atomic_load(&irq_raises) > raises);
    drv_wr(&d, R_INT_ACK, VIRTIO_INT_CONFIG);

    /* actual is the driver's; num_pages and the rest are not. */
    drv_wr(&d, R_CONFIG + 4, 77);
    drv_wr(&d, R_CONFIG + 0, 5);
    drv_wr(&d, R_CONFIG + 8, 9);
    CHECK_EQ(drv_rd(&d, R_CONFIG + 4), 77);
    CHECK_EQ(drv_rd(&d, R_CONFIG + 0), 1234);
    CHECK_EQ(drv_rd(&d, R_CONFIG + 8), 0);
    uint64_t v = 0;
    CHECK(guest_mem_mmio_read(&mem, BASE + R_CONFIG + 4, 2, &v) && v == 77);
    struct virtio_balloon_info info;
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.target_pages, 1234);
    CHECK_EQ(info.actual_pages, 77);
    CHECK(info.features & F(VIRTIO_BALLOON_F_STATS_VQ));

    /* A reset forgets actual, keeps the host's target. */
    drv_wr(&d, R_STATUS, 0);
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.actual_pages, 0);
    CHECK_EQ(info.target_pages, 1234);
    destroy(vd);
}

static void test_inflate_deflate(void)
{
    struct virtio_dev *vd;
    struct virtio_balloon_options o = { 0 };
    struct virtio_balloon *b = make(&o, &vd);
    struct drv d = { .mem = &mem, .base = BASE };
    bring_up(&d, 0, 2, true);

    memset(ram(PAGES_AT), 0xaa, 32 * PAGE);
    for (unsigned i = 0; i < 32; i++)
        CHECK(resident(PAGES_AT + i * PAGE));
    uint32_t base_pfn = (uint32_t)(PAGES_AT / PAGE);
    /* A run of 8, two singles (one out of order), two PFNs outside RAM. */
    uint32_t pfns[] = { base_pfn + 0, base_pfn + 1, base_pfn + 2, base_pfn + 3, base_pfn + 4,
                        base_pfn + 5, base_pfn + 6, base_pfn + 7, base_pfn + 20, 0x10,
                        base_pfn + 10, 0xffffffffu };
    send_pfns(&d, 0, pfns, 12, DRV_DATA);
    for (unsigned i = 0; i < 32; i++) {
        bool gone = i < 8 || i == 10 || i == 20;
        CHECK_MSG(resident(PAGES_AT + i * PAGE) != gone, "page %u resident=%d", i,
                  resident(PAGES_AT + i * PAGE));
        uint8_t want = gone ? 0 : 0xaa;
        CHECK_MSG(ram(PAGES_AT + i * PAGE)[0] == want && ram(PAGES_AT + i * PAGE)[PAGE - 1] == want,
                  "page %u reads %02x", i, ram(PAGES_AT + i * PAGE)[0]);
    }
    struct virtio_balloon_info info;
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.inflated_pages, 10);
    CHECK_EQ(info.ignored_pfns, 2);

    /* Deflate: the host does nothing; the data there stays as it is. */
    memset(ram(PAGES_AT), 0x55, PAGE);
    uint32_t back[] = { base_pfn, base_pfn + 1 };
    send_pfns(&d, 1, back, 2, DRV_DATA + PAGE);
    CHECK_EQ(ram(PAGES_AT)[0], 0x55);
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.deflated_pages, 2);

    /* A buffer with a partial PFN at the end: the whole ones count. */
    memset(ram(PAGES_AT + 30 * PAGE), 0xaa, PAGE);
    uint32_t one[2] = { base_pfn + 30, 0 };
    memcpy(ram(DRV_DATA), one, 8);
    uint16_t want = (uint16_t)(drv_used_idx(&d, 0) + 1);
    struct drv_buf buf = { DRV_DATA, 6, false };
    drv_add(&d, 0, &buf, 1);
    CHECK(drv_wait_used(&d, 0, want));
    CHECK_EQ(ram(PAGES_AT + 30 * PAGE)[0], 0);
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.inflated_pages, 11);
    CHECK(!(drv_rd(&d, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
    destroy(vd);
}

static void report(struct drv *d, unsigned q)
{
    memset(ram(PAGES_AT), 0xaa, 64 * PAGE);
    struct drv_buf bufs[2] = {
        { PAGES_AT, 16 * PAGE, true },
        { PAGES_AT + 32 * PAGE, 16 * PAGE, true },
    };
    uint16_t want = (uint16_t)(drv_used_idx(d, q) + 1);
    drv_add(d, q, bufs, 2);
    CHECK(drv_wait_used(d, q, want));
    for (unsigned i = 0; i < 64; i++) {
        bool gone = i < 16 || (i >= 32 && i < 48);
        CHECK_MSG(ram(PAGES_AT + i * PAGE)[7] == (gone ? 0 : 0xaa), "q %u page %u", q, i);
    }
}

static void test_reporting(void)
{
    struct virtio_dev *vd;
    struct virtio_balloon_options o = { .reporting = true };
    struct virtio_balloon *b = make(&o, &vd);
    struct drv d = { .mem = &mem, .base = BASE };

    /* With the statistics queue the reporting queue is 3 ... */
    bring_up(&d, F(VIRTIO_BALLOON_F_STATS_VQ) | F(VIRTIO_BALLOON_F_REPORTING), 4, true);
    report(&d, 3);
    struct virtio_balloon_info info;
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.reported_bytes, 32 * PAGE);

    /* ... and 2 without it (§5.5.2: the queues present are consecutive). */
    bring_up(&d, F(VIRTIO_BALLOON_F_REPORTING), 3, true);
    report(&d, 2);
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.reported_bytes, 64 * PAGE);
    CHECK(!(drv_rd(&d, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
    destroy(vd);
}

struct __attribute__((packed)) stat {
    uint16_t tag;
    uint64_t val;
};

static void put_stats(uint64_t at, uint64_t free_mem, uint64_t total)
{
    struct stat s[3] = { { 4, free_mem }, { 5, total }, { 99, 1 } };
    memcpy(ram(at), s, sizeof(s));
}

static bool wait_updates(struct virtio_balloon *b, uint64_t n)
{
    struct virtio_balloon_info info;
    for (int i = 0; i < 10000; i++) {
        virtio_balloon_get_info(b, &info);
        if (info.stats_updates >= n)
            return true;
        drv_sleep_ms(1);
    }
    return false;
}

static void test_stats(void)
{
    struct virtio_dev *vd;
    struct virtio_balloon_options o = { 0 };
    struct virtio_balloon *b = make(&o, &vd);
    struct drv d = { .mem = &mem, .base = BASE };
    struct virtio_balloon_info info;

    /* Linux primes the queue and notifies before DRIVER_OK. */
    bring_up(&d, F(VIRTIO_BALLOON_F_STATS_VQ), 3, false);
    put_stats(DRV_DATA, 1000, 5000);
    struct drv_buf buf = { DRV_DATA, 30, false };
    drv_add(&d, 2, &buf, 1);
    drv_sleep_ms(50);
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.stats_updates, 0);    /* not before DRIVER_OK */
    drv_driver_ok(&d);
    CHECK(wait_updates(b, 1));
    virtio_balloon_get_info(b, &info);
    CHECK(info.stats_valid);
    CHECK(info.stat_present[VIRTIO_BALLOON_S_MEMFREE] && info.stat[VIRTIO_BALLOON_S_MEMFREE] == 1000);
    CHECK(info.stat_present[VIRTIO_BALLOON_S_MEMTOT] && info.stat[VIRTIO_BALLOON_S_MEMTOT] == 5000);
    CHECK(!info.stat_present[VIRTIO_BALLOON_S_AVAIL]);
    CHECK_EQ(drv_used_idx(&d, 2), 0);   /* the device holds the buffer */

    /* A request returns it (length 0); the driver refills and re-adds. */
    virtio_balloon_request_stats(b);
    CHECK(drv_wait_used(&d, 2, 1));
    uint32_t id, len;
    drv_used_entry(&d, 2, 0, &id, &len);
    CHECK_EQ(len, 0);
    put_stats(DRV_DATA, 2000, 5000);
    drv_add(&d, 2, &buf, 1);
    CHECK(wait_updates(b, 2));
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.stat[VIRTIO_BALLOON_S_MEMFREE], 2000);
    CHECK_EQ(drv_used_idx(&d, 2), 1);

    /* A short buffer: only the whole entries count. */
    virtio_balloon_request_stats(b);
    CHECK(drv_wait_used(&d, 2, 2));
    put_stats(DRV_DATA, 3000, 6000);
    buf.len = 15;
    drv_add(&d, 2, &buf, 1);
    CHECK(wait_updates(b, 3));
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.stat[VIRTIO_BALLOON_S_MEMFREE], 3000);
    CHECK_EQ(info.stat[VIRTIO_BALLOON_S_MEMTOT], 5000);

    /* Reset forgets the held buffer: nothing is returned into new rings. */
    drv_wr(&d, R_STATUS, 0);
    virtio_balloon_get_info(b, &info);
    CHECK(!info.stats_valid);
    bring_up(&d, F(VIRTIO_BALLOON_F_STATS_VQ), 3, true);
    virtio_balloon_request_stats(b);
    drv_sleep_ms(50);
    CHECK_EQ(drv_used_idx(&d, 2), 0);
    destroy(vd);

    /* Without STATS_VQ negotiated a request does nothing. */
    b = make(&o, &vd);
    bring_up(&d, 0, 2, true);
    virtio_balloon_request_stats(b);
    drv_sleep_ms(20);
    CHECK(!(drv_rd(&d, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
    destroy(vd);
}

static void test_stats_timer(void)
{
    struct virtio_dev *vd;
    struct virtio_balloon_options o = { .stats_interval_ms = 20 };
    struct virtio_balloon *b = make(&o, &vd);
    struct drv d = { .mem = &mem, .base = BASE };
    bring_up(&d, F(VIRTIO_BALLOON_F_STATS_VQ), 3, true);
    put_stats(DRV_DATA, 1, 2);
    struct drv_buf buf = { DRV_DATA, 30, false };
    drv_add(&d, 2, &buf, 1);
    /* Nobody asks: the timer returns the buffer by itself, again and again. */
    CHECK(drv_wait_used(&d, 2, 1));
    drv_add(&d, 2, &buf, 1);
    CHECK(drv_wait_used(&d, 2, 2));
    CHECK(wait_updates(b, 2));
    destroy(vd);
}

static int load_stream(struct virtio_dev *vd, const uint8_t *data, size_t len, char *err)
{
    struct state_reader r;
    CHECK_EQ(state_reader_open_mem(&r, data, len, err, 256), 0);
    virtio_mmio_quiesce(vd);
    err[0] = 0;
    int ret = virtio_mmio_load(vd, &r, BALLOON_INST, err, 256);
    state_reader_free(&r);
    return ret;
}

static void test_snapshot(void)
{
    char err[256];
    struct virtio_dev *va, *vb, *vc;
    struct virtio_balloon_options o = { .deflate_on_oom = true, .reporting = true };
    struct virtio_balloon *a = make(&o, &va);
    struct drv d = { .mem = &mem, .base = BASE };
    const uint64_t feat = F(VIRTIO_BALLOON_F_STATS_VQ) | F(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) |
                          F(VIRTIO_BALLOON_F_REPORTING);
    bring_up(&d, feat, 4, true);
    virtio_balloon_set_target(a, 100);
    guest_mem_mmio_write(&mem, BASE + R_CONFIG + 4, 4, 40);   /* actual */
    uint32_t base_pfn = (uint32_t)(PAGES_AT / PAGE);
    uint32_t pfns[3] = { base_pfn, base_pfn + 1, base_pfn + 5 };
    send_pfns(&d, 0, pfns, 3, DRV_DATA + PAGE);
    put_stats(DRV_DATA, 1234, 9999);
    struct drv_buf sb = { DRV_DATA, 30, false };
    drv_add(&d, 2, &sb, 1);
    CHECK(wait_updates(a, 1));
    CHECK_EQ(drv_used_idx(&d, 2), 0);   /* held */

    struct state_writer w;
    size_t len;
    CHECK_EQ(state_writer_init_mem(&w), 0);
    virtio_mmio_quiesce(va);
    CHECK_EQ(virtio_mmio_save(va, &w, BALLOON_INST), 0);   /* -EBUSY if the buffer stayed held */
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), 0);
    const uint8_t *blob = state_writer_data(&w, &len);
    if (seed_dir) {
        char sp[512];
        snprintf(sp, sizeof(sp), "%s/virtio_balloon", seed_dir);
        FILE *f = fopen(sp, "wb");
        CHECK(f && fwrite(blob, 1, len, f) == len);
        if (f)
            fclose(f);
    }

    /* Options without deflate-on-oom: the negotiated feature is refused. */
    struct virtio_balloon *c = NULL;
    struct virtio_balloon_options oc = { .reporting = true };
    struct irq_line irq = { .set_level = fake_set_level };
    CHECK_EQ(virtio_balloon_create(&mem, BASE + 0x2000, irq, &oc, &c, &vc), 0);
    CHECK(load_stream(vc, blob, len, err) == -EINVAL && strstr(err, "not offered"));
    /* A bad balloon section: tags present without valid statistics. */
    uint8_t *copy = malloc(len);
    memcpy(copy, blob, len);
    struct state_reader r;
    struct state_section sec;
    CHECK_EQ(state_reader_open_mem(&r, blob, len, err, sizeof(err)), 0);
    CHECK_EQ(state_reader_section(&r, VIRTIO_BALLOON_STATE_TAG, BALLOON_INST, 1, &sec, err, sizeof(err)), 0);
    copy[sec.info->offset + 9] = 0;   /* stats_valid */
    struct state_writer w2;
    CHECK_EQ(state_writer_init_mem(&w2), 0);
    for (uint32_t k = 0; k < r.nsections; k++) {
        state_reader_section_at(&r, k, &sec);
        state_begin(&w2, sec.info->tag, sec.info->instance, sec.info->major, sec.info->minor);
        state_put_bytes(&w2, copy + sec.info->offset, sec.len);
        state_end(&w2);
    }
    CHECK_EQ(state_writer_finish(&w2, err, sizeof(err)), 0);
    size_t l2;
    const uint8_t *d2 = state_writer_data(&w2, &l2);

    struct virtio_balloon *b = NULL;
    CHECK_EQ(virtio_balloon_create(&mem, BASE + 0x1000, irq, &o, &b, &vb), 0);
    CHECK(load_stream(vb, d2, l2, err) == -EINVAL && strstr(err, "virtio-balloon"));
    CHECK_EQ(load_stream(vb, blob, len, err), 0);
    virtio_mmio_resume(vb);
    d.base = BASE + 0x1000;

    struct virtio_balloon_info info;
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.target_pages, 100);
    CHECK_EQ(info.actual_pages, 40);
    CHECK_EQ(info.inflated_pages, 3);
    CHECK_EQ(info.features & feat, feat);
    CHECK(info.stats_valid);
    CHECK(info.stat_present[VIRTIO_BALLOON_S_MEMFREE] && info.stat[VIRTIO_BALLOON_S_MEMFREE] == 1234);
    CHECK(info.stat[VIRTIO_BALLOON_S_MEMTOT] == 9999);
    CHECK(info.stats_age_ms < 60000);
    uint64_t v = 0;
    CHECK(guest_mem_mmio_read(&mem, d.base + R_CONFIG, 4, &v));
    CHECK_EQ(v, 100);
    CHECK(guest_mem_mmio_read(&mem, d.base + R_CONFIG + 4, 4, &v));
    CHECK_EQ(v, 40);
    /* The loaded balloon holds the buffer again: a request returns it, and
     * taking it again was not counted as new figures. */
    virtio_balloon_request_stats(b);
    CHECK(drv_wait_used(&d, 2, 1));
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.stats_updates, 1);
    put_stats(DRV_DATA, 4321, 9999);
    drv_add(&d, 2, &sb, 1);
    CHECK(wait_updates(b, 2));
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.stat[VIRTIO_BALLOON_S_MEMFREE], 4321);
    /* Inflating goes on from the saved total. */
    uint32_t more[1] = { base_pfn + 9 };
    send_pfns(&d, 0, more, 1, DRV_DATA + PAGE);
    virtio_balloon_get_info(b, &info);
    CHECK_EQ(info.inflated_pages, 4);
    CHECK(!(drv_rd(&d, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));

    state_writer_free(&w2);
    state_reader_free(&r);
    free(copy);
    state_writer_free(&w);
    virtio_mmio_destroy(vc);
    virtio_mmio_destroy(vb);
    destroy(va);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-seeds"))
        seed_dir = argv[2];   /* tests/fuzz/corpus/state */
    if (guest_mem_init(&mem, DRV_RAM_BASE, DRV_RAM_SIZE)) {
        fprintf(stderr, "cannot map guest RAM\n");
        return 1;
    }
    test_identity();
    test_config();
    test_inflate_deflate();
    test_reporting();
    test_stats();
    test_stats_timer();
    test_snapshot();

    /* guest_mem_discard: inside RAM only, whole host pages. */
    memset(ram(PAGES_AT), 0xaa, 3 * PAGE);
    CHECK_EQ(guest_mem_discard(&mem, PAGES_AT + 100, 2 * PAGE), 0);
    CHECK_EQ(ram(PAGES_AT)[100], 0xaa);          /* partial first page kept */
    CHECK_EQ(ram(PAGES_AT + PAGE)[0], 0);         /* the whole page inside */
    CHECK_EQ(ram(PAGES_AT + 2 * PAGE)[0], 0xaa);  /* partial last page kept */
    CHECK_EQ(guest_mem_discard(&mem, DRV_RAM_BASE + DRV_RAM_SIZE - PAGE, 2 * PAGE), -EFAULT);
    CHECK_EQ(guest_mem_discard(&mem, 0x1000, PAGE), -EFAULT);

    guest_mem_destroy(&mem);
    return check_summary("test_virtio_balloon");
}
