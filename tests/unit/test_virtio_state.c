/* Unit tests for virtio snapshots (virtio_mmio_save/_load and the device
 * hooks), driven through the transport like the guest's driver:
 *   - virtio-rng: requests, save, load into a fresh device over the same
 *     guest RAM, more requests complete with the right used-ring indices;
 *   - virtio-console: a transmit chain held for back-pressure is given back
 *     at save; the source goes on after resume without repeating a byte;
 *     the loaded device pops it again and outputs only the rest; typed input
 *     travels in the snapshot; the interrupt status and line come back;
 *   - refusals, each with a one-line message and the device unchanged
 *     (saved again, the same bytes): queue size not a power of two, above
 *     QueueNumMax, rings outside RAM, used_idx disagreeing with last_avail,
 *     features the device does not offer, DRIVER_OK without FEATURES_OK,
 *     another device type, console input over its bound; saving a device
 *     that is not quiesced is -EBUSY.
 * `test_virtio_state --write-seeds DIR` writes the fuzz seed
 * (tests/fuzz/corpus/state/virtio): rng as instance 0, console as 1. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state/state.h"
#include "virtio/console.h"
#include "virtio/rng.h"

#include "check.h"
#include "virtio_driver.h"

#define CON_A  0x10001000ull
#define CON_B  0x10002000ull
#define CON_C  0x10003000ull
#define RNG_A  0x10004000ull
#define RNG_B  0x10005000ull
#define RXQ    0u
#define TXQ    1u
#define BUF(i) (DRV_DATA + 0x2000ull * (i))

/* Offsets in the "virtio-mmio" v1.0 payload (virtio_mmio.h). */
#define P_STATUS   8
#define P_FEATURES 9
#define P_QUEUES   45
#define Q_SIZE     34
#define Q_NUM      0
#define Q_DESC     6
#define Q_USED_IDX 32

static struct guest_mem mem;
static char err[256];

struct sink {
    pthread_mutex_t lock;
    char buf[256];
    size_t len, room;
};
static struct sink out_a = { PTHREAD_MUTEX_INITIALIZER, "", 0, SIZE_MAX };
static struct sink out_b = { PTHREAD_MUTEX_INITIALIZER, "", 0, SIZE_MAX };
static bool irq_level[8];

static void rec_irq(void *c, unsigned irq, bool level)
{
    (void)c;
    __atomic_store_n(&irq_level[irq], level, __ATOMIC_SEQ_CST);
}

static size_t output(void *opaque, const uint8_t *buf, size_t n)
{
    struct sink *s = opaque;
    pthread_mutex_lock(&s->lock);
    if (n > s->room)
        n = s->room;
    s->room -= n;
    if (n > sizeof(s->buf) - s->len)
        n = sizeof(s->buf) - s->len;
    memcpy(s->buf + s->len, buf, n);
    s->len += n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void set_room(struct sink *s, size_t room)
{
    pthread_mutex_lock(&s->lock);
    s->room = room;
    pthread_mutex_unlock(&s->lock);
}

static bool sink_is(struct sink *s, const char *want)
{
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&s->lock);
        bool eq = s->len == strlen(want) && !memcmp(s->buf, want, s->len);
        bool over = s->len > strlen(want);
        pthread_mutex_unlock(&s->lock);
        if (eq || over)
            return eq;
        drv_sleep_ms(1);
    }
    return false;
}

struct blob {
    uint8_t *data;
    size_t len;
};

/* Quiesces, saves `dev` as `inst` (into a fresh stream), leaves it quiesced. */
static int save_one(struct virtio_dev *dev, uint32_t inst, struct blob *b)
{
    struct state_writer w;
    size_t len;
    CHECK_EQ(state_writer_init_mem(&w), 0);
    virtio_mmio_quiesce(dev);
    int ret = virtio_mmio_save(dev, &w, inst);
    if (!ret)
        ret = state_writer_finish(&w, err, sizeof(err));
    if (!ret) {
        const uint8_t *d = state_writer_data(&w, &len);
        b->data = malloc(len);
        CHECK(b->data != NULL);
        memcpy(b->data, d, len);
        b->len = len;
    }
    state_writer_free(&w);
    return ret;
}

static int load_one(struct virtio_dev *dev, uint32_t inst, const struct blob *b)
{
    struct state_reader r;
    err[0] = 0;
    int ret = state_reader_open_mem(&r, b->data, b->len, err, sizeof(err));
    CHECK_EQ(ret, 0);
    if (ret)
        return ret;
    ret = virtio_mmio_load(dev, &r, inst, err, sizeof(err));
    state_reader_free(&r);
    return ret;
}

/* A copy of stream `b` where section tag[inst]'s payload byte `off` gets
 * `len` bytes of `v` (little-endian); every other section kept. */
static struct blob patched(const struct blob *b, const char *tag, uint32_t inst, size_t off,
                           uint64_t v, size_t len)
{
    struct state_reader r;
    struct state_writer w;
    struct blob out = { 0 };
    size_t n;
    CHECK_EQ(state_reader_open_mem(&r, b->data, b->len, err, sizeof(err)), 0);
    CHECK_EQ(state_writer_init_mem(&w), 0);
    for (uint32_t i = 0; i < r.nsections; i++) {
        struct state_section s;
        state_reader_section_at(&r, i, &s);
        uint8_t *p = malloc(s.len);
        CHECK(p != NULL);
        memcpy(p, s.data, s.len);
        if (!strcmp(s.info->tag, tag) && s.info->instance == inst && off + len <= s.len)
            for (size_t k = 0; k < len; k++)
                p[off + k] = (uint8_t)(v >> (8 * k));
        state_begin(&w, s.info->tag, s.info->instance, s.info->major, s.info->minor);
        state_put_bytes(&w, p, s.len);
        CHECK_EQ(state_end(&w), 0);
        free(p);
    }
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), 0);
    const uint8_t *d = state_writer_data(&w, &n);
    out.data = malloc(n);
    memcpy(out.data, d, n);
    out.len = n;
    state_writer_free(&w);
    state_reader_free(&r);
    return out;
}

static void setup_console(struct drv *d, uint64_t base, unsigned slot)
{
    *d = (struct drv){ .mem = &mem, .base = base, .slot = slot };
    CHECK(drv_negotiate(d, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX)) &
          VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(d, RXQ, 16);
    drv_queue_setup(d, TXQ, 16);
    drv_driver_ok(d);
}

static uint16_t tx(struct drv *d, unsigned i, const char *text)
{
    memcpy(drv_ram(d, BUF(i)), text, strlen(text));
    struct drv_buf b = { BUF(i), (uint32_t)strlen(text), false };
    return drv_add(d, TXQ, &b, 1);
}

/* A stream refused with a one-line message, `dev` saved the same after. */
static void refused(struct virtio_dev *dev, uint32_t inst, struct blob bad, const char *what)
{
    struct blob before, after;
    CHECK_EQ(save_one(dev, inst, &before), 0);
    int ret = load_one(dev, inst, &bad);
    CHECK_MSG(ret < 0, "%s: loaded", what);
    CHECK_MSG(!strncmp(err, "state: ", 7) && !strchr(err, '\n'), "%s: message '%s'", what, err);
    CHECK_EQ(save_one(dev, inst, &after), 0);
    CHECK_MSG(before.len == after.len && !memcmp(before.data, after.data, before.len),
              "%s: device changed", what);
    virtio_mmio_resume(dev);
    free(before.data);
    free(after.data);
    free(bad.data);
}

static void write_file(const char *dir, const char *name, const struct blob *b)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, b->data, b->len) == (ssize_t)b->len);
    if (fd >= 0)
        close(fd);
}

int main(int argc, char **argv)
{
    drv_mem_init(&mem);
    uint32_t id, len;

    /* ---- virtio-rng: 2 requests, save, load, 2 more ---- */
    struct virtio_dev *ra, *rb;
    CHECK_EQ(virtio_rng_create(&mem, RNG_A, (struct irq_line){ .set_level = rec_irq, .irq = 3 }, &ra), 0);
    CHECK_EQ(virtio_rng_create(&mem, RNG_B, (struct irq_line){ .set_level = rec_irq, .irq = 4 }, &rb), 0);
    struct drv rd = { .mem = &mem, .base = RNG_A, .slot = 2 };
    CHECK(drv_negotiate(&rd, 1ull << VIRTIO_F_VERSION_1) & VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(&rd, 0, 8);
    drv_driver_ok(&rd);
    for (unsigned i = 0; i < 2; i++) {
        struct drv_buf b = { BUF(40 + i), 16, true };
        drv_add(&rd, 0, &b, 1);
    }
    CHECK(drv_wait_used(&rd, 0, 2));
    struct blob rs;
    CHECK_EQ(virtio_mmio_save(ra, &(struct state_writer){ 0 }, 0), -EBUSY);  /* not quiesced */
    CHECK_EQ(save_one(ra, 0, &rs), 0);
    virtio_mmio_quiesce(rb);
    CHECK_EQ(load_one(rb, 0, &rs), 0);
    virtio_mmio_resume(rb);
    CHECK(__atomic_load_n(&irq_level[4], __ATOMIC_SEQ_CST));   /* USED not acked: line up */
    rd.base = RNG_B;
    CHECK_EQ(drv_rd(&rd, R_STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                    VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    CHECK_EQ(drv_rd(&rd, R_INT_STATUS), VIRTIO_INT_USED);
    rd.q[0].next_desc = 2;
    uint16_t heads[2];
    for (unsigned i = 0; i < 2; i++) {
        memset(drv_ram(&rd, BUF(42 + i)), 0, 16);
        struct drv_buf b = { BUF(42 + i), 16, true };
        heads[i] = drv_add(&rd, 0, &b, 1);
    }
    CHECK(drv_wait_used(&rd, 0, 4));
    for (unsigned i = 0; i < 2; i++) {
        drv_used_entry(&rd, 0, (uint16_t)(2 + i), &id, &len);
        CHECK_EQ(id, heads[i]);
        CHECK_EQ(len, 16);
    }
    static const uint8_t zero[16];
    CHECK(memcmp(drv_ram(&rd, BUF(42)), zero, 16) || memcmp(drv_ram(&rd, BUF(43)), zero, 16));

    /* ---- virtio-console: a held chain across save, on both sides ---- */
    struct virtio_console_host ha = { .output = output, .opaque = &out_a };
    struct virtio_console_host hb = { .output = output, .opaque = &out_b };
    struct virtio_dev *ca, *cb, *cc;
    struct virtio_console *cona, *conb, *conc;
    CHECK_EQ(virtio_console_create(&mem, CON_A, (struct irq_line){ .set_level = rec_irq, .irq = 1 },
                                   &ha, &ca, &cona), 0);
    CHECK_EQ(virtio_console_create(&mem, CON_B, (struct irq_line){ .set_level = rec_irq, .irq = 2 },
                                   &hb, &cb, &conb), 0);
    CHECK_EQ(virtio_console_create(&mem, CON_C, (struct irq_line){ .set_level = rec_irq, .irq = 5 },
                                   NULL, &cc, &conc), 0);
    struct drv d;
    setup_console(&d, CON_A, 0);
    tx(&d, 0, "hello ");
    CHECK(drv_wait_used(&d, TXQ, 1));
    set_room(&out_a, 3);
    tx(&d, 1, "slow reader");
    CHECK(sink_is(&out_a, "hello slo"));
    CHECK_EQ(drv_used_idx(&d, TXQ), 1);
    struct blob s1;
    CHECK_EQ(save_one(ca, 1, &s1), 0);
    /* The source goes on: the chain given back is popped again and only
     * the rest comes out. */
    set_room(&out_a, SIZE_MAX);
    virtio_mmio_resume(ca);
    CHECK(drv_wait_used(&d, TXQ, 2));
    CHECK(sink_is(&out_a, "hello slow reader"));

    /* Held again, with typed input waiting: the snapshot for B. */
    set_room(&out_a, 2);
    uint16_t held = tx(&d, 2, "abcdef");
    CHECK(sink_is(&out_a, "hello slow readerab"));
    CHECK_EQ(virtio_console_input(cona, (const uint8_t *)"xy", 2), 2);
    struct blob s2;
    CHECK_EQ(save_one(ca, 1, &s2), 0);   /* A stays quiesced: B takes over */
    virtio_mmio_quiesce(cb);
    CHECK_EQ(load_one(cb, 1, &s2), 0);
    virtio_mmio_resume(cb);
    d.base = CON_B;
    CHECK(drv_wait_used(&d, TXQ, 3));
    CHECK(sink_is(&out_b, "cdef"));
    drv_used_entry(&d, TXQ, 2, &id, &len);
    CHECK_EQ(id, held);
    CHECK_EQ(drv_rd(&d, R_INT_STATUS) & VIRTIO_INT_USED, VIRTIO_INT_USED);
    CHECK(__atomic_load_n(&irq_level[2], __ATOMIC_SEQ_CST));
    /* More requests on the loaded device: the input, then output. */
    memset(drv_ram(&d, BUF(10)), 0, 8);
    struct drv_buf rx = { BUF(10), 8, true };
    drv_add(&d, RXQ, &rx, 1);
    CHECK(drv_wait_used(&d, RXQ, 1));
    drv_used_entry(&d, RXQ, 0, &id, &len);
    CHECK_EQ(len, 2);
    CHECK(!memcmp(drv_ram(&d, BUF(10)), "xy", 2));
    uint16_t h4 = tx(&d, 3, "more");
    CHECK(drv_wait_used(&d, TXQ, 4));
    drv_used_entry(&d, TXQ, 3, &id, &len);
    CHECK_EQ(id, h4);
    CHECK(sink_is(&out_b, "cdefmore"));
    pthread_mutex_lock(&out_a.lock);
    CHECK_EQ(out_a.len, strlen("hello slow readerab"));   /* A, quiesced, sent nothing more */
    pthread_mutex_unlock(&out_a.lock);

    /* ---- refusals: B unchanged by each ---- */
    struct blob good;
    CHECK_EQ(save_one(cb, 1, &good), 0);
    virtio_mmio_resume(cb);
    size_t q1 = P_QUEUES + Q_SIZE * TXQ;
    refused(cb, 1, patched(&good, "virtio-mmio", 1, q1 + Q_NUM, 12, 2), "size 12");
    refused(cb, 1, patched(&good, "virtio-mmio", 1, q1 + Q_NUM, 128, 2), "size 128");
    refused(cb, 1, patched(&good, "virtio-mmio", 1, P_QUEUES + Q_DESC, 0x1000, 8), "desc outside RAM");
    refused(cb, 1, patched(&good, "virtio-mmio", 1, P_QUEUES + Q_DESC, DRV_RAM_BASE + DRV_RAM_SIZE - 16, 8),
            "desc past the end of RAM");
    refused(cb, 1, patched(&good, "virtio-mmio", 1, q1 + Q_USED_IDX, 5, 2), "used_idx");
    refused(cb, 1, patched(&good, "virtio-mmio", 1, P_FEATURES,
                           (1ull << VIRTIO_F_VERSION_1) | (1ull << 40), 8), "feature 40");
    refused(cb, 1, patched(&good, "virtio-mmio", 1, P_STATUS, VIRTIO_STATUS_DRIVER_OK, 1),
            "DRIVER_OK alone");
    refused(cb, 1, patched(&good, "virtio-console", 1, 0, VIRTIO_CONSOLE_INPUT_MAX + 1, 4), "input");
    refused(cb, 0, patched(&rs, "", 0, 0, 0, 0), "rng into console");
    refused(cb, 2, patched(&good, "", 0, 0, 0, 0), "missing section");
    /* Unchanged and working: one more request. */
    uint16_t h5 = tx(&d, 4, "!");
    CHECK(drv_wait_used(&d, TXQ, 5));
    drv_used_entry(&d, TXQ, 4, &id, &len);
    CHECK_EQ(id, h5);
    CHECK(sink_is(&out_b, "cdefmore!"));
    /* The unpatched section loads into a third device (C): the copy is right. */
    virtio_mmio_quiesce(cc);
    CHECK_EQ(load_one(cc, 1, &good), 0);
    CHECK_EQ(virtio_dev_status(cc), virtio_dev_status(cb));
    /* C stays quiesced: it shares B's rings. */

    if (argc == 3 && !strcmp(argv[1], "--write-seeds")) {
        /* rng as instance 0, the console with a held chain as 1. */
        struct state_reader r1, r2;
        struct state_writer w;
        size_t n;
        CHECK_EQ(state_reader_open_mem(&r1, rs.data, rs.len, err, sizeof(err)), 0);
        CHECK_EQ(state_reader_open_mem(&r2, s2.data, s2.len, err, sizeof(err)), 0);
        CHECK_EQ(state_writer_init_mem(&w), 0);
        const struct state_reader *rr[2] = { &r1, &r2 };
        for (int k = 0; k < 2; k++)
            for (uint32_t i = 0; i < rr[k]->nsections; i++) {
                struct state_section s;
                state_reader_section_at(rr[k], i, &s);
                state_begin(&w, s.info->tag, s.info->instance, s.info->major, s.info->minor);
                state_put_bytes(&w, s.data, s.len);
                CHECK_EQ(state_end(&w), 0);
            }
        CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), 0);
        struct blob all;
        all.data = (uint8_t *)state_writer_data(&w, &n);
        all.len = n;
        write_file(argv[2], "virtio", &all);
        state_writer_free(&w);
        state_reader_free(&r1);
        state_reader_free(&r2);
    }

    virtio_mmio_destroy(cc);
    virtio_mmio_destroy(cb);
    virtio_mmio_destroy(ca);
    virtio_mmio_destroy(rb);
    virtio_mmio_destroy(ra);
    free(rs.data);
    free(s1.data);
    free(s2.data);
    free(good.data);
    drv_mem_free(&mem);
    return check_summary("test_virtio_state");
}
