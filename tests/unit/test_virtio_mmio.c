/* Unit tests for the virtio-mmio transport with a fake "echo" device (it
 * copies each chain's readable bytes into its writable ones): identity
 * registers, feature negotiation (unoffered features and a missing
 * VERSION_1 are refused), the status state machine, queue setup, QueueNotify
 * served on a worker thread (never the writer's), interrupts and their
 * acknowledgement, EVENT_IDX suppression end to end, DEVICE_NEEDS_RESET with
 * a configuration interrupt on a hostile chain or ring (another device goes
 * on working), reset waiting for a running handler, config space, FDT node. */
#include <errno.h>
#include <libfdt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/virtio_mmio.h"

#include "check.h"
#include "virtio_driver.h"

#define BASE_A 0x10001000ull
#define BASE_B 0x10002000ull
#define DEV_FEATURE_BIT 3

struct fake_irq {
    atomic_int level;
    atomic_int raises;
};

static void fake_set_level(void *controller, unsigned irq, bool level)
{
    struct fake_irq *f = controller;
    (void)irq;
    if (level && !atomic_load(&f->level))
        atomic_fetch_add(&f->raises, 1);
    atomic_store(&f->level, level);
}

struct echo {
    pthread_t hart_thread;      /* the thread that writes registers */
    atomic_int on_hart_thread;  /* queue_notify ever ran there? */
    atomic_int calls;
    atomic_int resets;
    atomic_int slow;            /* next handler sleeps this many ms */
    atomic_int running, finished;
    atomic_int destroyed;
    uint8_t config[8];
};

static void echo_config_read(void *dev, uint32_t offset, void *buf, uint32_t len)
{
    struct echo *e = dev;
    memcpy(buf, e->config + offset, len);
}

static void echo_config_write(void *dev, uint32_t offset, const void *buf, uint32_t len)
{
    struct echo *e = dev;
    memcpy(e->config + offset, buf, len);
}

static void echo_queue_notify(void *dev, struct virtio_dev *vdev, unsigned q)
{
    struct echo *e = dev;
    static _Thread_local struct vq_elem el;
    if (pthread_equal(pthread_self(), e->hart_thread))
        atomic_store(&e->on_hart_thread, 1);
    atomic_fetch_add(&e->calls, 1);
    int slow = atomic_exchange(&e->slow, 0);
    if (slow) {
        atomic_store(&e->running, 1);
        drv_sleep_ms(slow);
        atomic_store(&e->finished, 1);
    }
    while (virtio_dev_pop(vdev, q, &el) == 1) {
        uint8_t buf[4096];
        size_t n = vq_iov_read(el.iov, el.out_num, 0, buf, sizeof(buf));
        size_t w = vq_iov_write(el.iov + el.out_num, el.in_num, 0, buf, n);
        virtio_dev_push(vdev, q, &el, (uint32_t)w);
    }
}

static void echo_reset(void *dev)
{
    struct echo *e = dev;
    atomic_fetch_add(&e->resets, 1);
}

static void echo_destroy(void *dev)
{
    struct echo *e = dev;
    atomic_store(&e->destroyed, 1);
}

static const struct virtio_device_ops echo_ops = {
    .name = "echo",
    .device_id = 42,
    .config_read = echo_config_read,
    .config_write = echo_config_write,
    .queue_notify = echo_queue_notify,
    .reset = echo_reset,
    .destroy = echo_destroy,
};

static struct guest_mem mem;
static struct echo echo_a, echo_b;
static struct fake_irq irq_a, irq_b;
static struct virtio_dev *dev_a, *dev_b;

static const uint64_t FULL = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
                             (1ull << VIRTIO_F_EVENT_IDX) | (1ull << DEV_FEATURE_BIT);

static void create(struct virtio_dev **out, uint64_t base, struct echo *e, struct fake_irq *f,
                   unsigned irq)
{
    memset(e, 0, sizeof(*e));
    e->hart_thread = pthread_self();
    memcpy(e->config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
    struct virtio_device_params p = {
        .ops = &echo_ops, .dev = e, .features = 1ull << DEV_FEATURE_BIT, .config_size = 8,
        .num_queues = 2, .queue_max = 64, .nworkers = 2,
    };
    struct irq_line line = { .set_level = fake_set_level, .controller = f, .irq = irq };
    int r = virtio_mmio_create(&mem, base, line, &p, out);
    CHECK_EQ(r, 0);
    if (r)
        exit(1);
}

static void test_identity(struct drv *d)
{
    CHECK_EQ(drv_rd(d, R_MAGIC), 0x74726976);
    CHECK_EQ(drv_rd(d, R_VERSION), 2);
    CHECK_EQ(drv_rd(d, R_DEVICE_ID), 42);
    CHECK_EQ(drv_rd(d, R_VENDOR_ID), VIRTIO_MMIO_VENDOR);
    CHECK_EQ(drv_device_features(d), FULL);
    uint64_t v;
    CHECK(!guest_mem_mmio_read(&mem, BASE_A + R_MAGIC, 2, &v));     /* registers: 32-bit only */
    CHECK(!guest_mem_mmio_read(&mem, BASE_A + R_MAGIC + 1, 4, &v));
    /* Config space: any width inside, zeros past the end. */
    CHECK(guest_mem_mmio_read(&mem, BASE_A + R_CONFIG + 1, 2, &v));
    CHECK_EQ(v, 0x3322);
    CHECK(guest_mem_mmio_read(&mem, BASE_A + R_CONFIG, 8, &v));
    CHECK_EQ(v, 0x8877665544332211ull);
    CHECK(guest_mem_mmio_read(&mem, BASE_A + R_CONFIG + 6, 4, &v));
    CHECK_EQ(v, 0);
    CHECK(guest_mem_mmio_write(&mem, BASE_A + R_CONFIG + 7, 1, 0x99));
    CHECK(guest_mem_mmio_read(&mem, BASE_A + R_CONFIG + 7, 1, &v));
    CHECK_EQ(v, 0x99);
}

static void test_negotiation(struct drv *d)
{
    /* A feature we never offered: FEATURES_OK stays clear. */
    CHECK_EQ(drv_negotiate(d, FULL | (1ull << 40)) & VIRTIO_STATUS_FEATURES_OK, 0);
    /* No VERSION_1: refused too (no legacy interface). */
    CHECK_EQ(drv_negotiate(d, 1ull << DEV_FEATURE_BIT) & VIRTIO_STATUS_FEATURES_OK, 0);
    /* DRIVER_OK without FEATURES_OK is refused. */
    drv_wr(d, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
    CHECK_EQ(drv_rd(d, R_STATUS) & VIRTIO_STATUS_DRIVER_OK, 0);
    /* A subset with VERSION_1 is fine. */
    CHECK(drv_negotiate(d, 1ull << VIRTIO_F_VERSION_1) & VIRTIO_STATUS_FEATURES_OK);
    CHECK_EQ(virtio_dev_features(dev_a), 1ull << VIRTIO_F_VERSION_1);
    /* Features are frozen after FEATURES_OK. */
    drv_wr(d, R_DRV_FEATURES_SEL, 0);
    drv_wr(d, R_DRV_FEATURES, 1u << DEV_FEATURE_BIT);
    CHECK_EQ(virtio_dev_features(dev_a), 1ull << VIRTIO_F_VERSION_1);
    /* Clearing a bit (other than by reset) is ignored. */
    drv_wr(d, R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    CHECK(drv_rd(d, R_STATUS) & VIRTIO_STATUS_FEATURES_OK);
    /* The driver can't set DEVICE_NEEDS_RESET. */
    drv_wr(d, R_STATUS, drv_rd(d, R_STATUS) | VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    CHECK_EQ(drv_rd(d, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
    /* Reset. */
    int resets = atomic_load(&echo_a.resets);
    drv_wr(d, R_STATUS, 0);
    CHECK_EQ(drv_rd(d, R_STATUS), 0);
    CHECK_EQ(atomic_load(&echo_a.resets), resets + 1);
    CHECK_EQ(virtio_dev_features(dev_a), 0);
}

static uint16_t echo_once(struct drv *d, unsigned q, const char *msg, char *reply, size_t cap)
{
    size_t n = strlen(msg);
    memcpy(drv_ram(d, DRV_DATA), msg, n);
    memset(drv_ram(d, DRV_DATA + 0x1000), 0, cap);
    struct drv_buf b[2] = { { DRV_DATA, (uint32_t)n, false }, { DRV_DATA + 0x1000, (uint32_t)cap, true } };
    uint16_t want = (uint16_t)(drv_used_idx(d, q) + 1);
    drv_add(d, q, b, 2);
    CHECK(drv_wait_used(d, q, want));
    memcpy(reply, drv_ram(d, DRV_DATA + 0x1000), cap);
    return want;
}

static void test_queues(struct drv *d)
{
    char reply[64];

    CHECK(drv_negotiate(d, FULL & ~(1ull << VIRTIO_F_EVENT_IDX)) & VIRTIO_STATUS_FEATURES_OK);
    drv_wr(d, R_QUEUE_SEL, 0);
    CHECK_EQ(drv_rd(d, R_QUEUE_NUM_MAX), 64);
    drv_wr(d, R_QUEUE_SEL, 7);
    CHECK_EQ(drv_rd(d, R_QUEUE_NUM_MAX), 0);   /* no such queue */
    drv_queue_setup(d, 0, 16);
    drv_queue_setup(d, 1, 8);
    drv_wr(d, R_QUEUE_SEL, 1);
    CHECK_EQ(drv_rd(d, R_QUEUE_READY), 1);

    /* Before DRIVER_OK a notify does nothing. */
    int calls = atomic_load(&echo_a.calls);
    drv_wr(d, R_QUEUE_NOTIFY, 0);
    drv_sleep_ms(20);
    CHECK_EQ(atomic_load(&echo_a.calls), calls);

    drv_driver_ok(d);
    CHECK(drv_rd(d, R_STATUS) & VIRTIO_STATUS_DRIVER_OK);
    uint16_t idx = echo_once(d, 0, "hello", reply, 16);
    CHECK(!strcmp(reply, "hello"));
    uint32_t id, len;
    drv_used_entry(d, 0, (uint16_t)(idx - 1), &id, &len);
    CHECK_EQ(id, 0);
    CHECK_EQ(len, 5);    /* bytes the echo wrote */
    CHECK_EQ(atomic_load(&echo_a.on_hart_thread), 0);
    /* The device publishes the used entry, then raises the interrupt (a
     * driver sees the entry by the time the interrupt comes, VIRTIO 1.2
     * 2.7.14): the interrupt may still be on its way here. */
    for (int i = 0; i < 5000 && !atomic_load(&irq_a.level); i++)
        drv_sleep_ms(1);
    CHECK_EQ(atomic_load(&irq_a.level), 1);
    CHECK_EQ(drv_rd(d, R_INT_STATUS), VIRTIO_INT_USED);
    drv_wr(d, R_INT_ACK, VIRTIO_INT_USED);
    CHECK_EQ(drv_rd(d, R_INT_STATUS), 0);
    CHECK_EQ(atomic_load(&irq_a.level), 0);

    echo_once(d, 1, "queue one", reply, 32);
    CHECK(!strcmp(reply, "queue one"));
    drv_wr(d, R_INT_ACK, VIRTIO_INT_USED);

    /* Many requests, two workers. */
    for (int i = 0; i < 200; i++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "message %d", i);
        echo_once(d, i & 1, msg, reply, 32);
        CHECK_MSG(!strcmp(reply, msg), "%s vs %s", reply, msg);
    }
    CHECK_EQ(atomic_load(&echo_a.on_hart_thread), 0);
}

static void test_event_idx(struct drv *d)
{
    char reply[16];
    CHECK(drv_negotiate(d, FULL) & VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(d, 0, 16);
    drv_driver_ok(d);
    drv_wr(d, R_INT_ACK, 3);
    uint16_t *used_event = drv_ram(d, d->q[0].avail + 4 + 2 * 16);

    /* used_event far ahead: no interrupt. */
    *used_event = 100;
    int raises = atomic_load(&irq_a.raises);
    echo_once(d, 0, "a", reply, 4);
    echo_once(d, 0, "b", reply, 4);
    CHECK_EQ(atomic_load(&irq_a.raises), raises);
    CHECK_EQ(drv_rd(d, R_INT_STATUS), 0);
    /* used_event = the next entry's index: one interrupt. */
    *used_event = drv_used_idx(d, 0);
    echo_once(d, 0, "c", reply, 4);
    CHECK_EQ(atomic_load(&irq_a.raises), raises + 1);
    drv_wr(d, R_INT_ACK, VIRTIO_INT_USED);
    /* The device asked for a notification at the next buffer. */
    /* (The worker writes it when it finds the ring empty, after the push.) */
    uint16_t *avail_event = drv_ram(d, d->q[0].used + 4 + 8 * 16);
    for (int i = 0; i < 10000 && __atomic_load_n(avail_event, __ATOMIC_ACQUIRE) != 3; i++)
        drv_sleep_ms(1);
    CHECK_EQ(*avail_event, 3);
    CHECK_EQ(drv_used_idx(d, 0), 3);
}

static void test_needs_reset(struct drv *d, struct drv *db)
{
    char reply[16];

    /* Device B works alongside. */
    CHECK(drv_negotiate(db, FULL) & VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(db, 0, 16);
    drv_driver_ok(db);

    CHECK(drv_negotiate(d, FULL) & VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(d, 0, 16);
    drv_driver_ok(d);
    drv_wr(d, R_INT_ACK, 3);
    /* A chain pointing outside RAM. */
    struct drv_buf bad[2] = { { DRV_RAM_BASE + DRV_RAM_SIZE - 8, 64, false },
                              { DRV_DATA, 16, true } };
    drv_add(d, 0, bad, 2);
    CHECK(drv_wait_status(d, VIRTIO_STATUS_DEVICE_NEEDS_RESET));
    CHECK_EQ(drv_rd(d, R_INT_STATUS) & VIRTIO_INT_CONFIG, VIRTIO_INT_CONFIG);
    CHECK_EQ(atomic_load(&irq_a.level), 1);
    CHECK_EQ(drv_used_idx(d, 0), 0);
    /* Further requests are not served until a reset. */
    int calls = atomic_load(&echo_a.calls);
    struct drv_buf ok[2] = { { DRV_DATA, 4, false }, { DRV_DATA + 0x1000, 4, true } };
    drv_add(d, 0, ok, 2);
    drv_sleep_ms(20);
    CHECK_EQ(atomic_load(&echo_a.calls), calls);

    /* The other device is fine. */
    echo_once(db, 0, "still here", reply, 16);
    CHECK(!strcmp(reply, "still here"));
    CHECK_EQ(drv_rd(db, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);

    /* Reset clears everything and the device works again. */
    drv_wr(d, R_STATUS, 0);
    CHECK_EQ(drv_rd(d, R_STATUS), 0);
    CHECK_EQ(drv_rd(d, R_INT_STATUS), 0);
    CHECK_EQ(atomic_load(&irq_a.level), 0);
    drv_wr(d, R_QUEUE_SEL, 0);
    CHECK_EQ(drv_rd(d, R_QUEUE_READY), 0);
    CHECK(drv_negotiate(d, FULL) & VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(d, 0, 16);
    drv_driver_ok(d);
    echo_once(d, 0, "again", reply, 8);
    CHECK(!strcmp(reply, "again"));

    /* Bad ring alignment at QueueReady: NEEDS_RESET as well. */
    CHECK(drv_negotiate(d, FULL) & VIRTIO_STATUS_FEATURES_OK);
    drv_wr(d, R_QUEUE_SEL, 0);
    drv_wr(d, R_QUEUE_NUM, 16);
    drv_wr(d, R_DESC_LO, (uint32_t)(DRV_DATA + 8));
    drv_wr(d, R_DESC_HI, 0);
    drv_wr(d, R_QUEUE_READY, 1);
    CHECK_EQ(drv_rd(d, R_QUEUE_READY), 0);
    CHECK(drv_rd(d, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    /* A queue size that is not a power of two. */
    drv_wr(d, R_STATUS, 0);
    CHECK(drv_negotiate(d, FULL) & VIRTIO_STATUS_FEATURES_OK);
    drv_wr(d, R_QUEUE_NUM, 12);
    drv_wr(d, R_DESC_LO, (uint32_t)DRV_DATA);
    drv_wr(d, R_QUEUE_READY, 1);
    CHECK(drv_rd(d, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    drv_wr(d, R_STATUS, 0);
}

static void test_reset_waits(struct drv *d)
{
    char reply[8];
    CHECK(drv_negotiate(d, FULL) & VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(d, 0, 16);
    drv_driver_ok(d);
    atomic_store(&echo_a.running, 0);
    atomic_store(&echo_a.finished, 0);
    atomic_store(&echo_a.slow, 200);
    memcpy(drv_ram(d, DRV_DATA), "x", 1);
    struct drv_buf b[2] = { { DRV_DATA, 1, false }, { DRV_DATA + 0x1000, 4, true } };
    drv_add(d, 0, b, 2);
    for (int i = 0; i < 10000 && !atomic_load(&echo_a.running); i++)
        drv_sleep_ms(1);
    CHECK(atomic_load(&echo_a.running));
    drv_wr(d, R_STATUS, 0);   /* must wait for the handler */
    CHECK_EQ(atomic_load(&echo_a.finished), 1);
    CHECK_EQ(drv_rd(d, R_STATUS), 0);
    (void)reply;
}

static void test_fdt(void)
{
    char buf[4096];
    struct fdt_ctx ctx = { .fdt = buf, .plic_phandle = 9 };
    CHECK_EQ(fdt_create(buf, sizeof(buf)), 0);
    CHECK_EQ(fdt_finish_reservemap(buf), 0);
    CHECK_EQ(fdt_begin_node(buf, ""), 0);
    CHECK_EQ(virtio_mmio_fdt(dev_a, &ctx), 0);
    CHECK_EQ(fdt_end_node(buf), 0);
    CHECK_EQ(fdt_finish(buf), 0);
    int node = fdt_path_offset(buf, "/virtio_mmio@10001000");
    CHECK(node >= 0);
    const char *compat = fdt_getprop(buf, node, "compatible", NULL);
    CHECK(compat && !strcmp(compat, "virtio,mmio"));
    int len;
    const fdt32_t *irq = fdt_getprop(buf, node, "interrupts", &len);
    CHECK(irq && len == 4 && fdt32_to_cpu(*irq) == 1);
    const fdt32_t *parent = fdt_getprop(buf, node, "interrupt-parent", &len);
    CHECK(parent && fdt32_to_cpu(*parent) == 9);
    const fdt32_t *reg = fdt_getprop(buf, node, "reg", &len);
    CHECK(reg && len == 16 && fdt32_to_cpu(reg[1]) == 0x10001000 && fdt32_to_cpu(reg[3]) == 0x1000);
}

int main(void)
{
    drv_mem_init(&mem);
    create(&dev_a, BASE_A, &echo_a, &irq_a, 1);
    create(&dev_b, BASE_B, &echo_b, &irq_b, 2);
    struct drv d = { .mem = &mem, .base = BASE_A }, db = { .mem = &mem, .base = BASE_B, .slot = 1 };

    test_identity(&d);
    test_negotiation(&d);
    test_queues(&d);
    test_event_idx(&d);
    test_needs_reset(&d, &db);
    test_reset_waits(&d);
    test_fdt();

    /* A bad create is refused without side effects. */
    struct virtio_device_params bad = { .ops = &echo_ops, .num_queues = 0, .queue_max = 64,
                                        .nworkers = 1 };
    struct virtio_dev *x = (void *)1;
    CHECK_EQ(virtio_mmio_create(NULL, 0, (struct irq_line){ 0 }, &bad, &x), -EINVAL);
    CHECK(x == NULL);

    virtio_mmio_destroy(dev_a);
    virtio_mmio_destroy(dev_b);
    CHECK(atomic_load(&echo_a.destroyed) && atomic_load(&echo_b.destroyed));
    drv_mem_free(&mem);
    return check_summary("test_virtio_mmio");
}
