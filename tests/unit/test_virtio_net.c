/* Unit tests for virtio-net against a fake backend, driven through the
 * transport like a guest driver: configuration space (MAC, link up), the
 * features offered with and without a vnet-header backend (and the offloads
 * a tap would be told), checksums completed by the device and DATA_VALID
 * for a plain backend, transmit (the header stripped or passed on), hostile
 * transmit chains (zero-length, shorter than the header, oversized, offloads
 * that were not negotiated) dropped without harm, receive into one buffer,
 * across mergeable buffers (num_buffers, all used entries at once), frames
 * waiting for buffers, the bounded receive queue with the backend told to
 * stop and to resume, and a frame too large for a driver without
 * MRG_RXBUF dropped while its buffer serves the next frame.
 * Snapshots: frames held for the guest, the counters and the offloads go
 * through save -> load into a fresh card (frames then flow both ways); the
 * MAC is the saved one, or the new card's with virtio_net_keep_mac_on_load;
 * bad sections are refused; the user backend's libslirp state carries a
 * DHCP lease into a fresh backend, and a tampered one is refused; a
 * transport section of a card with two queues (a build before the control
 * queue) loads, one with more queues than the card has does not.
 * Announcements (virtio_net_announce): the gratuitous RARP frame byte for
 * byte through both kinds of backend; with GUEST_ANNOUNCE, the ANNOUNCE
 * status bit and a configuration interrupt, not repeated until the driver
 * acknowledges on the control queue (VIRTIO_NET_CTRL_ANNOUNCE_ACK clears
 * the bit), other commands answered VIRTIO_NET_ERR, a control chain
 * without a writable byte sets DEVICE_NEEDS_RESET; the pending bit goes
 * through a snapshot and the loaded card raises its interrupt again; a
 * clone's card announces nothing. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/announce.h"
#include "state/state.h"
#include "virtio/net.h"

#include "check.h"
#include "virtio_driver.h"

#define BASE 0x10001000ull
#define RXQ 0
#define TXQ 1
#define CTRLQ 2

#define F_CSUM        (1ull << 0)
#define F_GUEST_CSUM  (1ull << 1)
#define F_MAC         (1ull << 5)
#define F_GUEST_TSO4  (1ull << 7)
#define F_GUEST_TSO6  (1ull << 8)
#define F_HOST_TSO4   (1ull << 11)
#define F_HOST_TSO6   (1ull << 12)
#define F_MRG_RXBUF   (1ull << 15)
#define F_STATUS      (1ull << 16)
#define F_CTRL_VQ     (1ull << 17)
#define F_GUEST_ANNOUNCE (1ull << 21)
#define F_VERSION_1   (1ull << 32)

static struct guest_mem mem;

/* ---- the fake backend ---- */

struct fake {
    struct net_backend base;
    struct net_rx_port port;
    pthread_mutex_t lock;
    unsigned sent;
    size_t last_len;
    uint8_t last[NET_VNET_HDR_LEN + 4096];
    unsigned rx_ready_calls;
    int offloads;        /* -1: never set */
    bool closed;
};

static int fake_start(struct net_backend *b, const struct net_rx_port *port)
{
    ((struct fake *)b)->port = *port;
    return 0;
}

static int fake_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
    struct fake *f = (struct fake *)b;
    pthread_mutex_lock(&f->lock);
    size_t n = 0;
    for (int i = 0; i < iovcnt; i++) {
        size_t k = iov[i].iov_len;
        if (n + k > sizeof(f->last))
            k = sizeof(f->last) - n;
        memcpy(f->last + n, iov[i].iov_base, k);
        n += iov[i].iov_len;
    }
    f->last_len = n;
    f->sent++;
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static void fake_rx_ready(struct net_backend *b)
{
    struct fake *f = (struct fake *)b;
    pthread_mutex_lock(&f->lock);
    f->rx_ready_calls++;
    pthread_mutex_unlock(&f->lock);
}

static int fake_set_offload(struct net_backend *b, unsigned offloads)
{
    ((struct fake *)b)->offloads = (int)offloads;
    return 0;
}

static void fake_close(struct net_backend *b)
{
    ((struct fake *)b)->closed = true;   /* the test owns the memory */
}

static const struct net_backend_ops fake_ops = {
    .name = "fake", .start = fake_start, .send = fake_send, .rx_ready = fake_rx_ready,
    .set_offload = fake_set_offload, .close = fake_close,
};

static void fake_init(struct fake *f, bool vnet_hdr)
{
    memset(f, 0, sizeof(*f));
    f->base.ops = &fake_ops;
    f->base.vnet_hdr = vnet_hdr;
    f->offloads = -1;
    pthread_mutex_init(&f->lock, NULL);
}

static unsigned fake_sent(struct fake *f)
{
    pthread_mutex_lock(&f->lock);
    unsigned n = f->sent;
    pthread_mutex_unlock(&f->lock);
    return n;
}

static void noop_irq(void *c, unsigned irq, bool level)
{
    (void)c, (void)irq, (void)level;
}

/* Destroys the card and frees its MMIO window for the next one. */
static void destroy_card(struct virtio_dev *dev)
{
    virtio_mmio_destroy(dev);
    mem.mmio_count = 0;
}

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

static struct virtio_dev *make_card(struct fake *f, struct drv *d, uint64_t features)
{
    struct irq_line line = { .set_level = noop_irq, .irq = 1 };
    struct virtio_dev *dev = NULL;
    CHECK_EQ(virtio_net_create(&mem, BASE, line, &f->base, mac, &dev), 0);
    *d = (struct drv){ .mem = &mem, .base = BASE };
    CHECK(drv_negotiate(d, features) & VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(d, RXQ, 64);
    drv_queue_setup(d, TXQ, 64);
    drv_driver_ok(d);
    return dev;
}

/* A frame of `len` bytes: broadcast destination, then a counting pattern. */
static void fill_frame(uint8_t *p, size_t len, uint8_t seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seed + i * 7);
    memset(p, 0xff, len < 6 ? len : 6);
}

static int receive(struct fake *f, const uint8_t *frame, size_t len)
{
    struct iovec iov = { .iov_base = (void *)frame, .iov_len = len };
    return f->port.receive(f->port.opaque, &iov, 1);
}

#define TXBUF (DRV_DATA)
#define RXBUF (DRV_DATA + 0x40000)

/* ---- tests ---- */

static void test_config_and_features(void)
{
    struct fake f;
    struct drv d;
    fake_init(&f, false);
    struct virtio_dev *dev = make_card(&f, &d, F_VERSION_1 | F_MAC | F_STATUS | F_MRG_RXBUF);
    CHECK_EQ(drv_rd(&d, R_DEVICE_ID), VIRTIO_ID_NET);
    uint64_t v;
    for (int i = 0; i < 6; i++) {
        CHECK(guest_mem_mmio_read(&mem, BASE + R_CONFIG + i, 1, &v));
        CHECK_EQ(v, mac[i]);
    }
    CHECK(guest_mem_mmio_read(&mem, BASE + R_CONFIG + 6, 2, &v));
    CHECK_EQ(v, 1);   /* VIRTIO_NET_S_LINK_UP */
    uint64_t offered = drv_device_features(&d);
    CHECK((offered & (F_MAC | F_STATUS | F_MRG_RXBUF)) == (F_MAC | F_STATUS | F_MRG_RXBUF));
    /* A plain backend: checksums (the device's work), no segmentation. */
    CHECK((offered & (F_CSUM | F_GUEST_CSUM)) == (F_CSUM | F_GUEST_CSUM));
    CHECK(!(offered & (F_HOST_TSO4 | F_HOST_TSO6 | F_GUEST_TSO4 | F_GUEST_TSO6)));
    CHECK(!(offered & (1ull << 14)));   /* HOST_UFO */
    CHECK_EQ(f.offloads, -1);
    destroy_card(dev);
    CHECK(f.closed);

    /* A vnet-header backend: offloads offered, and the ones the driver
     * takes reach the backend at FEATURES_OK. */
    fake_init(&f, true);
    dev = make_card(&f, &d, F_VERSION_1 | F_MAC | F_CSUM | F_GUEST_CSUM | F_GUEST_TSO4);
    offered = drv_device_features(&d);
    CHECK((offered & (F_CSUM | F_GUEST_CSUM | F_HOST_TSO4 | F_HOST_TSO6 | F_GUEST_TSO4 |
                      F_GUEST_TSO6)) == (F_CSUM | F_GUEST_CSUM | F_HOST_TSO4 | F_HOST_TSO6 |
                                         F_GUEST_TSO4 | F_GUEST_TSO6));
    CHECK_EQ(f.offloads, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
    drv_wr(&d, R_STATUS, 0);   /* a reset takes them back */
    CHECK_EQ(f.offloads, 0);
    destroy_card(dev);
}

/* Sends a chain of `n` readable buffers; waits for it to come back. */
static void tx_chain(struct drv *d, const struct drv_buf *b, unsigned n)
{
    uint16_t want = (uint16_t)(drv_used_idx(d, TXQ) + 1);
    drv_add(d, TXQ, b, n);
    CHECK(drv_wait_used(d, TXQ, want));
    uint32_t id, len;
    drv_used_entry(d, TXQ, (uint16_t)(want - 1), &id, &len);
    CHECK_EQ(len, 0);
}

static void test_tx(void)
{
    struct fake f;
    struct drv d;
    fake_init(&f, false);
    struct virtio_dev *dev = make_card(&f, &d, F_VERSION_1 | F_MAC | F_MRG_RXBUF);
    uint8_t *hdr = drv_ram(&d, TXBUF), *frame = drv_ram(&d, TXBUF + 0x100);

    /* A frame split over the header buffer and two more: the backend gets
     * the frame alone. */
    memset(hdr, 0, NET_VNET_HDR_LEN);
    fill_frame(frame, 200, 1);
    struct drv_buf ok[3] = { { TXBUF, NET_VNET_HDR_LEN, false }, { TXBUF + 0x100, 50, false },
                             { TXBUF + 0x100 + 50, 150, false } };
    tx_chain(&d, ok, 3);
    CHECK_EQ(fake_sent(&f), 1);
    CHECK_EQ(f.last_len, 200);
    CHECK(!memcmp(f.last, frame, 200));

    /* Hostile chains: each dropped, each buffer given back. */
    struct drv_buf zero[1] = { { TXBUF, 0, false } };
    tx_chain(&d, zero, 1);
    struct drv_buf short_hdr[1] = { { TXBUF, 8, false } };
    tx_chain(&d, short_hdr, 1);
    struct drv_buf hdr_only[1] = { { TXBUF, NET_VNET_HDR_LEN, false } };
    tx_chain(&d, hdr_only, 1);
    struct drv_buf runt[2] = { { TXBUF, NET_VNET_HDR_LEN, false }, { TXBUF + 0x100, 10, false } };
    tx_chain(&d, runt, 2);
    /* 4000 bytes without HOST_TSO: larger than any frame could be. */
    struct drv_buf big[2] = { { TXBUF, NET_VNET_HDR_LEN, false }, { TXBUF + 0x100, 4000, false } };
    tx_chain(&d, big, 2);
    /* A checksum offload and a TSO packet that were not negotiated. */
    hdr[0] = 1;   /* NEEDS_CSUM */
    tx_chain(&d, ok, 3);
    hdr[0] = 1;
    hdr[1] = 1;   /* GSO_TCPV4 */
    tx_chain(&d, ok, 3);
    /* Only writable buffers. */
    struct drv_buf wr[1] = { { TXBUF, 100, true } };
    tx_chain(&d, wr, 1);
    CHECK_EQ(fake_sent(&f), 1);
    struct virtio_net_stats st;
    virtio_net_get_stats(dev, &st);
    CHECK_EQ(st.tx_frames, 1);
    CHECK_EQ(st.tx_dropped, 8);
    CHECK(!(drv_rd(&d, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));

    /* Still working after all that. */
    memset(hdr, 0, NET_VNET_HDR_LEN);
    tx_chain(&d, ok, 3);
    CHECK_EQ(fake_sent(&f), 2);
    destroy_card(dev);

    /* CSUM over a plain backend: the device completes the checksum the
     * driver left partial; the guest's buffer stays as it was. */
    fake_init(&f, false);
    dev = make_card(&f, &d, F_VERSION_1 | F_MAC | F_CSUM);
    memset(hdr, 0, NET_VNET_HDR_LEN);
    hdr[0] = 1;                 /* NEEDS_CSUM */
    hdr[6] = 34; hdr[8] = 6;    /* csum_start 34, csum_offset 6 (UDP) */
    fill_frame(frame, 200, 1);
    frame[34 + 6] = 0x12;       /* the partial sum the driver put there */
    frame[34 + 7] = 0x34;
    tx_chain(&d, ok, 3);
    CHECK_EQ(fake_sent(&f), 1);
    CHECK_EQ(f.last_len, 200);
    /* The receiver's check: the region, now with the checksum in place,
     * plus the pseudo-header sum the driver had left there, is all ones. */
    uint32_t sum = 0x12 | 0x34 << 8;
    for (size_t i = 34; i < 200; i += 2)
        sum += (uint32_t)(f.last[i] | f.last[i + 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    CHECK_EQ(sum, 0xffff);
    CHECK(!memcmp(f.last, frame, 34));
    CHECK(!memcmp(f.last + 34 + 8, frame + 34 + 8, 200 - 42));
    CHECK_EQ(frame[34 + 6], 0x12);
    destroy_card(dev);

    /* A vnet-header backend gets the header too (a copy, num_buffers 0). */
    fake_init(&f, true);
    dev = make_card(&f, &d, F_VERSION_1 | F_MAC | F_CSUM | F_HOST_TSO4);
    memset(hdr, 0, NET_VNET_HDR_LEN);
    hdr[0] = 1;                         /* NEEDS_CSUM */
    hdr[6] = 34; hdr[8] = 16;           /* csum_start, csum_offset */
    hdr[10] = 0x55;                     /* num_buffers: the device's to set */
    tx_chain(&d, ok, 3);
    CHECK_EQ(fake_sent(&f), 1);
    CHECK_EQ(f.last_len, NET_VNET_HDR_LEN + 200);
    CHECK_EQ(f.last[0], 1);
    CHECK_EQ(f.last[6], 34);
    CHECK_EQ(f.last[10], 0);
    CHECK(!memcmp(f.last + NET_VNET_HDR_LEN, frame, 200));
    /* A checksum that would land past the frame: dropped. */
    hdr[6] = 250;
    tx_chain(&d, ok, 3);
    CHECK_EQ(fake_sent(&f), 1);
    destroy_card(dev);
}

/* Posts `n` receive buffers of `size` bytes from RXBUF. */
static void post_rx(struct drv *d, unsigned n, uint32_t size, uint64_t at)
{
    for (unsigned i = 0; i < n; i++) {
        struct drv_buf b = { at + (uint64_t)i * size, size, true };
        drv_add(d, RXQ, &b, 1);
    }
}

static uint16_t num_buffers(struct drv *d, uint64_t at)
{
    uint16_t v;
    memcpy(&v, (uint8_t *)drv_ram(d, at) + 10, 2);
    return v;
}

static void test_rx(void)
{
    struct fake f;
    struct drv d;
    uint8_t frame[3000], got[3000];
    uint32_t id, len;

    fake_init(&f, false);
    struct virtio_dev *dev = make_card(&f, &d, F_VERSION_1 | F_MAC | F_MRG_RXBUF);
    CHECK(f.port.can_receive(f.port.opaque));

    /* One frame, one buffer: a zero header with num_buffers 1. */
    post_rx(&d, 1, 2048, RXBUF);
    fill_frame(frame, 100, 3);
    CHECK_EQ(receive(&f, frame, 100), 0);
    CHECK(drv_wait_used(&d, RXQ, 1));
    drv_used_entry(&d, RXQ, 0, &id, &len);
    CHECK_EQ(len, NET_VNET_HDR_LEN + 100);
    CHECK_EQ(num_buffers(&d, RXBUF), 1);
    CHECK_EQ(*(uint8_t *)drv_ram(&d, RXBUF), 0);   /* flags: no GUEST_CSUM, no DATA_VALID */
    CHECK(!memcmp((uint8_t *)drv_ram(&d, RXBUF) + NET_VNET_HDR_LEN, frame, 100));

    /* 3000 bytes over 1024-byte buffers: three of them, published at once. */
    post_rx(&d, 4, 1024, RXBUF);
    fill_frame(frame, 3000, 9);
    CHECK_EQ(receive(&f, frame, 3000), 0);
    CHECK(drv_wait_used(&d, RXQ, 4));
    size_t off = 0;
    for (uint16_t i = 1; i < 4; i++) {
        drv_used_entry(&d, RXQ, i, &id, &len);
        CHECK_EQ(len, i < 3 ? 1024 : NET_VNET_HDR_LEN + 3000 - 2048);
        memcpy(got + off, (uint8_t *)drv_ram(&d, RXBUF + 1024u * (i - 1)) + (i == 1 ? 12 : 0),
               len - (i == 1 ? 12 : 0));
        off += len - (i == 1 ? 12 : 0);
    }
    CHECK_EQ(off, 3000);
    CHECK(!memcmp(got, frame, 3000));
    CHECK_EQ(num_buffers(&d, RXBUF), 3);

    /* The fourth buffer (1024) is too small for 1500 bytes: the frame
     * waits for more buffers instead of being cut. */
    fill_frame(frame, 1500, 5);
    CHECK_EQ(receive(&f, frame, 1500), 0);
    drv_sleep_ms(50);
    CHECK_EQ(drv_used_idx(&d, RXQ), 4);
    post_rx(&d, 1, 1024, RXBUF + 0x10000);
    CHECK(drv_wait_used(&d, RXQ, 6));
    CHECK_EQ(num_buffers(&d, RXBUF + 3 * 1024), 2);

    /* Runt and oversized frames from the backend are refused. */
    CHECK_EQ(receive(&f, frame, 5), -ENOBUFS);

    /* No buffers: the queue fills to its bound, the rest is dropped, the
     * backend is told to stop; buffers drain it and it may resume. */
    unsigned ok = 0, dropped = 0;
    for (unsigned i = 0; i < VIRTIO_NET_RXQ_FRAMES + 20; i++) {
        fill_frame(frame, 60, (uint8_t)i);
        if (receive(&f, frame, 60) == 0)
            ok++;
        else
            dropped++;
    }
    CHECK_EQ(ok, VIRTIO_NET_RXQ_FRAMES);
    CHECK_EQ(dropped, 20);
    CHECK(!f.port.can_receive(f.port.opaque));
    unsigned ready_before = f.rx_ready_calls;
    /* Buffers for 60 of them (the ring has 64 entries). */
    post_rx(&d, 60, 128, RXBUF);
    CHECK(drv_wait_used(&d, RXQ, 66));
    post_rx(&d, 60, 128, RXBUF);
    CHECK(drv_wait_used(&d, RXQ, 126));
    /* The first queued frame (seed 0) went to the first of those buffers. */
    CHECK(f.rx_ready_calls > ready_before);
    CHECK(f.port.can_receive(f.port.opaque));
    struct virtio_net_stats st;
    virtio_net_get_stats(dev, &st);
    CHECK_EQ(st.rx_dropped, 21);
    CHECK(!(drv_rd(&d, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET));
    destroy_card(dev);

    /* Without MRG_RXBUF: a frame larger than the buffer is dropped and the
     * buffer serves the next frame; a buffer too small for the header is
     * returned empty. */
    fake_init(&f, false);
    dev = make_card(&f, &d, F_VERSION_1 | F_MAC);
    struct drv_buf tiny = { RXBUF, 8, true };
    drv_add(&d, RXQ, &tiny, 1);
    post_rx(&d, 1, 512, RXBUF + 0x1000);
    fill_frame(frame, 1000, 1);
    CHECK_EQ(receive(&f, frame, 1000), 0);
    fill_frame(frame, 300, 2);
    CHECK_EQ(receive(&f, frame, 300), 0);
    CHECK(drv_wait_used(&d, RXQ, 2));
    drv_used_entry(&d, RXQ, 0, &id, &len);
    CHECK_EQ(len, 0);
    drv_used_entry(&d, RXQ, 1, &id, &len);
    CHECK_EQ(len, NET_VNET_HDR_LEN + 300);
    CHECK_EQ(num_buffers(&d, RXBUF + 0x1000), 1);
    CHECK(!memcmp((uint8_t *)drv_ram(&d, RXBUF + 0x1000) + NET_VNET_HDR_LEN, frame, 300));
    virtio_net_get_stats(dev, &st);
    CHECK_EQ(st.rx_frames, 1);
    CHECK_EQ(st.rx_dropped, 1);
    destroy_card(dev);

    /* With GUEST_CSUM, a plain backend's frames come marked DATA_VALID. */
    fake_init(&f, false);
    dev = make_card(&f, &d, F_VERSION_1 | F_MAC | F_GUEST_CSUM);
    post_rx(&d, 1, 2048, RXBUF);
    CHECK_EQ(receive(&f, frame, 100), 0);
    CHECK(drv_wait_used(&d, RXQ, 1));
    CHECK_EQ(*(uint8_t *)drv_ram(&d, RXBUF), 2);   /* VIRTIO_NET_HDR_F_DATA_VALID */
    destroy_card(dev);

    /* Before DRIVER_OK nothing is taken. */
    fake_init(&f, false);
    struct irq_line line = { .set_level = noop_irq, .irq = 1 };
    CHECK_EQ(virtio_net_create(&mem, BASE, line, &f.base, mac, &dev), 0);
    CHECK(!f.port.can_receive(f.port.opaque));
    CHECK_EQ(receive(&f, frame, 100), -ENOBUFS);
    destroy_card(dev);
}

/* ---- snapshots ---- */

#define BASE2 0x10002000ull
#define NET_INST 2u   /* as tests/fuzz/fuzz_state.c loads it */
#define BASE3 0x10003000ull

struct blob {
    uint8_t *data;
    size_t len;
};

static char err[256];

static void blob_take(struct state_writer *w, struct blob *b)
{
    size_t len;
    CHECK_EQ(state_writer_finish(w, err, sizeof(err)), 0);
    const uint8_t *d = state_writer_data(w, &len);
    b->data = malloc(len);
    memcpy(b->data, d, len);
    b->len = len;
    state_writer_free(w);
}

static int save_card(struct virtio_dev *dev, struct blob *b)
{
    struct state_writer w;
    CHECK_EQ(state_writer_init_mem(&w), 0);
    virtio_mmio_quiesce(dev);
    int ret = virtio_mmio_save(dev, &w, NET_INST);
    if (ret) {
        state_writer_free(&w);
        return ret;
    }
    blob_take(&w, b);
    return 0;
}

static int load_card(struct virtio_dev *dev, const struct blob *b)
{
    struct state_reader r;
    err[0] = 0;
    CHECK_EQ(state_reader_open_mem(&r, b->data, b->len, err, sizeof(err)), 0);
    virtio_mmio_quiesce(dev);
    int ret = virtio_mmio_load(dev, &r, NET_INST, err, sizeof(err));
    state_reader_free(&r);
    return ret;
}

/* `b` with section tag[NET_INST]'s payload byte `off` set to `v` and its
 * last `cut` bytes gone. */
static struct blob patch_cut(const struct blob *b, const char *tag, size_t off, uint8_t v,
                             size_t cut)
{
    struct state_reader r;
    struct state_writer w;
    struct blob out;
    CHECK_EQ(state_reader_open_mem(&r, b->data, b->len, err, sizeof(err)), 0);
    CHECK_EQ(state_writer_init_mem(&w), 0);
    for (uint32_t i = 0; i < r.nsections; i++) {
        struct state_section s;
        state_reader_section_at(&r, i, &s);
        uint8_t *p = malloc(s.len + 1);
        memcpy(p, s.data, s.len);
        size_t len = s.len;
        if (!strcmp(s.info->tag, tag) && s.info->instance == NET_INST && off < s.len) {
            p[off] = v;
            len = cut < len ? len - cut : 0;
        }
        state_begin(&w, s.info->tag, s.info->instance, s.info->major, s.info->minor);
        state_put_bytes(&w, p, len);
        state_end(&w);
        free(p);
    }
    blob_take(&w, &out);
    state_reader_free(&r);
    return out;
}

static struct blob patch(const struct blob *b, const char *tag, size_t off, uint8_t v)
{
    return patch_cut(b, tag, off, v, 0);
}

static bool mac_is(uint64_t base, const uint8_t *want)
{
    for (int i = 0; i < 6; i++) {
        uint64_t v;
        if (!guest_mem_mmio_read(&mem, base + R_CONFIG + i, 1, &v) || v != want[i])
            return false;
    }
    return true;
}

static const char *seed_dir;

static void write_seed(const char *name, const struct blob *b)
{
    if (!seed_dir)
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", seed_dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(b->data, 1, b->len, f) == b->len);
    if (f)
        fclose(f);
}

/* Sends a 60-byte frame (pattern `seed`) from guest address `at`, a
 * zero header before it; waits for the transmit queue's used index to
 * reach `want`. */
static void tx_frame(struct drv *d, uint64_t at, uint8_t seed, uint16_t want)
{
    uint8_t *t = drv_ram(d, at);
    memset(t, 0, NET_VNET_HDR_LEN);
    fill_frame(t + NET_VNET_HDR_LEN, 60, seed);
    drv_add(d, TXQ, &(struct drv_buf){ at, NET_VNET_HDR_LEN + 60, false }, 1);
    CHECK(drv_wait_used(d, TXQ, want));
}

static void test_snapshot(void)
{
    static const uint8_t mac2[6] = { 0x52, 0x54, 0x00, 0x11, 0x22, 0x33 };
    struct irq_line line = { .set_level = noop_irq, .irq = 1 };
    struct fake fa, fb, fc;
    struct drv d;
    static uint8_t frame[1500];
    uint32_t id, len;

    /* A: offloads on, 3 frames waiting for buffers, one frame sent. */
    fake_init(&fa, true);
    const uint64_t feat = F_VERSION_1 | F_MAC | F_MRG_RXBUF | F_CSUM | F_GUEST_CSUM | F_GUEST_TSO4;
    struct virtio_dev *a = make_card(&fa, &d, feat);
    for (unsigned i = 0; i < 3; i++) {
        uint8_t buf[NET_VNET_HDR_LEN + 200] = { 0 };
        fill_frame(buf + NET_VNET_HDR_LEN, 200, (uint8_t)(10 + i));
        CHECK_EQ(receive(&fa, buf, sizeof(buf)), 0);
    }
    uint8_t *t = drv_ram(&d, TXBUF);
    memset(t, 0, NET_VNET_HDR_LEN);
    fill_frame(t + NET_VNET_HDR_LEN, 60, 1);
    struct drv_buf tb = { TXBUF, NET_VNET_HDR_LEN + 60, false };
    drv_add(&d, TXQ, &tb, 1);
    CHECK(drv_wait_used(&d, TXQ, 1));
    struct blob s;
    CHECK_EQ(save_card(a, &s), 0);
    write_seed("virtio_net", &s);

    /* B: a fresh card, another MAC and backend; the saved MAC comes back. */
    fake_init(&fb, true);
    struct virtio_dev *b = NULL;
    CHECK_EQ(virtio_net_create(&mem, BASE2, line, &fb.base, mac2, &b), 0);
    CHECK(mac_is(BASE2, mac2));
    CHECK_EQ(load_card(b, &s), 0);
    virtio_mmio_resume(b);
    CHECK(mac_is(BASE2, mac));
    CHECK_EQ(fb.offloads, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);   /* re-applied */
    d.base = BASE2;
    CHECK_EQ(drv_rd(&d, R_STATUS) & VIRTIO_STATUS_DRIVER_OK, VIRTIO_STATUS_DRIVER_OK);
    /* The held frames, in order, once the driver gives buffers. */
    post_rx(&d, 3, 2048, RXBUF);
    CHECK(drv_wait_used(&d, RXQ, 3));
    for (unsigned i = 0; i < 3; i++) {
        drv_used_entry(&d, RXQ, (uint16_t)i, &id, &len);
        CHECK_EQ(len, NET_VNET_HDR_LEN + 200);
        fill_frame(frame, 200, (uint8_t)(10 + i));
        CHECK(!memcmp((uint8_t *)drv_ram(&d, RXBUF + 2048ull * i) + NET_VNET_HDR_LEN, frame, 200));
    }
    /* And new traffic both ways. */
    post_rx(&d, 1, 2048, RXBUF + 3 * 2048);
    uint8_t nb[NET_VNET_HDR_LEN + 100] = { 0 };
    fill_frame(nb + NET_VNET_HDR_LEN, 100, 77);
    CHECK_EQ(receive(&fb, nb, sizeof(nb)), 0);
    CHECK(drv_wait_used(&d, RXQ, 4));
    CHECK(!memcmp((uint8_t *)drv_ram(&d, RXBUF + 3 * 2048) + NET_VNET_HDR_LEN,
                  nb + NET_VNET_HDR_LEN, 100));
    tb.addr = TXBUF + 0x1000;
    memcpy(drv_ram(&d, tb.addr), t, tb.len);
    drv_add(&d, TXQ, &tb, 1);
    CHECK(drv_wait_used(&d, TXQ, 2));
    CHECK_EQ(fake_sent(&fb), 1);
    struct virtio_net_stats st;
    virtio_net_get_stats(b, &st);
    CHECK_EQ(st.tx_frames, 2);   /* counters go on */
    CHECK_EQ(st.rx_frames, 4);

    /* C: keeps its own MAC when told to; the same stream loads. */
    fake_init(&fc, true);
    struct virtio_dev *c = NULL;
    CHECK_EQ(virtio_net_create(&mem, BASE3, line, &fc.base, mac2, &c), 0);
    virtio_net_keep_mac_on_load(c, true);
    CHECK_EQ(load_card(c, &s), 0);
    CHECK(mac_is(BASE3, mac2));
    /* Refusals, C unchanged: a multicast MAC, a link status, a held
     * frame's length, a GSO type the driver did not take, a backend name,
     * another section major. */
    /* Payload: mac 0, status 6, features 8, counters 16, name length 48,
     * "fake" 49, backend section 53, frame count 54, first frame 58. */
    static const struct { size_t off; uint8_t v; const char *what, *msg; } bad[] = {
        { 0, 0x01, "multicast", "multicast" }, { 6, 0x03, "status", "link status" },
        { 59, 0x40, "frame length", "held frame 0:" },
        { 63, 4, "gso TCPV6 not negotiated", "not allowed by features" },
        { 49, 'X', "backend name", "backend name" }, { 56, 1, "frame count", "frames held" },
        { 8 + 4, 0x80, "feature 36", "not offered" },
    };
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct blob p = patch(&s, VIRTIO_NET_STATE_TAG, bad[i].off, bad[i].v);
        CHECK_MSG(load_card(c, &p) < 0 && !strncmp(err, "state: ", 7) && strstr(err, bad[i].msg),
                  "%s: '%s'", bad[i].what, err);
        free(p.data);
    }
    CHECK(mac_is(BASE3, mac2));

    virtio_mmio_destroy(c);
    virtio_mmio_destroy(b);
    virtio_mmio_destroy(a);
    mem.mmio_count = 0;
    free(s.data);
}

/* A card saved by a build whose virtio-net had two queues (no control
 * queue, so no CTRL_VQ): its transport section loads into today's card,
 * whose control queue stays unconfigured; more queues than the card has
 * are refused. Transport payload: device id 0, queue count 4, then 45
 * bytes of registers and 34 bytes per queue. */
static void test_two_queue_snapshot(void)
{
    struct irq_line line = { .set_level = noop_irq, .irq = 1 };
    struct fake fa, fb;
    struct drv d;
    fake_init(&fa, false);
    struct virtio_dev *a = make_card(&fa, &d, F_VERSION_1 | F_MAC | F_MRG_RXBUF);
    struct blob s;
    CHECK_EQ(save_card(a, &s), 0);
    struct blob old = patch_cut(&s, VIRTIO_MMIO_STATE_TAG, 4, 2, 34);
    struct blob more = patch(&s, VIRTIO_MMIO_STATE_TAG, 4, 4);
    fake_init(&fb, false);
    struct virtio_dev *b = NULL;
    CHECK_EQ(virtio_net_create(&mem, BASE2, line, &fb.base, mac, &b), 0);
    CHECK_MSG(load_card(b, &more) < 0 && strstr(err, "with 4 queues"), "4 queues: '%s'", err);
    CHECK_MSG(load_card(b, &old) == 0, "2 queues: '%s'", err);
    virtio_mmio_resume(b);
    d.base = BASE2;
    tx_frame(&d, TXBUF, 5, 1);
    CHECK_EQ(fake_sent(&fb), 1);
    drv_wr(&d, R_QUEUE_SEL, CTRLQ);
    CHECK_EQ(drv_rd(&d, R_QUEUE_READY), 0);
    virtio_mmio_destroy(b);
    virtio_mmio_destroy(a);
    mem.mmio_count = 0;
    free(s.data);
    free(old.data);
    free(more.data);
}

/* ---- announcements ---- */

/* QEMU's announce_self_create, spelled out. */
static const uint8_t rarp[60] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   /* broadcast */
    0x52, 0x54, 0x00, 0xab, 0xcd, 0xef,   /* from the card */
    0x80, 0x35,                           /* RARP */
    0x00, 0x01, 0x08, 0x00, 6, 4,         /* Ethernet, IPv4, address lengths */
    0x00, 0x03,                           /* reverse request */
    0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, 0, 0, 0, 0,   /* sender MAC, IP 0.0.0.0 */
    0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, 0, 0, 0, 0,   /* target MAC, IP 0.0.0.0 */
    /* zero padding to 60 bytes */
};

static uint16_t config_status(struct drv *d)
{
    uint64_t v = 0;
    CHECK(guest_mem_mmio_read(&mem, d->base + R_CONFIG + 6, 2, &v));
    return (uint16_t)v;
}

#define CTRLBUF (DRV_DATA + 0x80000)

/* A control command: class, command, `n` bytes of data; the ack byte the
 * device wrote (0xee: none). */
static uint8_t ctrl(struct drv *d, uint8_t class, uint8_t cmd, unsigned n)
{
    uint8_t *p = drv_ram(d, CTRLBUF);
    p[0] = class;
    p[1] = cmd;
    memset(p + 2, 0, n);
    p[0x100] = 0xee;
    struct drv_buf b[3] = { { CTRLBUF, 2, false }, { CTRLBUF + 2, n, false },
                            { CTRLBUF + 0x100, 1, true } };
    uint16_t want = (uint16_t)(drv_used_idx(d, CTRLQ) + 1);
    if (n)
        drv_add(d, CTRLQ, b, 3);
    else
        drv_add(d, CTRLQ, (struct drv_buf[2]){ b[0], b[2] }, 2);
    CHECK(drv_wait_used(d, CTRLQ, want));
    uint32_t id, len;
    drv_used_entry(d, CTRLQ, (uint16_t)(want - 1), &id, &len);
    CHECK_EQ(len, 1);
    return p[0x100];
}

static void test_announce(void)
{
    struct fake f;
    struct drv d;
    struct virtio_net_stats st;

    /* QEMU's schedule: rounds at 0, 50, 200, 450 and 800 ms. */
    unsigned at = 0, when[NET_ANNOUNCE_ROUNDS];
    for (unsigned i = 0; i < NET_ANNOUNCE_ROUNDS; i++) {
        when[i] = at;
        at += net_announce_gap_ms(i + 1);
    }
    CHECK(when[1] == 50 && when[2] == 200 && when[3] == 450 && when[4] == 800);

    /* A plain backend gets the bare frame; no GUEST_ANNOUNCE: the host's
     * frame only. */
    fake_init(&f, false);
    struct virtio_dev *dev = make_card(&f, &d, F_VERSION_1 | F_MAC | F_STATUS);
    CHECK((drv_device_features(&d) & (F_CTRL_VQ | F_GUEST_ANNOUNCE)) ==
          (F_CTRL_VQ | F_GUEST_ANNOUNCE));
    CHECK_EQ(virtio_net_announce(dev), 0);
    CHECK_EQ(fake_sent(&f), 1);
    CHECK_EQ(f.last_len, sizeof(rarp));
    CHECK(!memcmp(f.last, rarp, sizeof(rarp)));
    CHECK_EQ(config_status(&d), 1);
    CHECK_EQ(drv_rd(&d, R_INT_STATUS) & VIRTIO_INT_CONFIG, 0);
    virtio_net_get_stats(dev, &st);
    CHECK(st.announce_frames == 1 && st.announce_requests == 0 && st.tx_frames == 0);
    destroy_card(dev);

    /* A vnet-header backend (tap): a header that offloads nothing first.
     * GUEST_ANNOUNCE: the guest is asked, once until it acknowledges. */
    fake_init(&f, true);
    dev = make_card(&f, &d, F_VERSION_1 | F_MAC | F_STATUS | F_CTRL_VQ | F_GUEST_ANNOUNCE);
    drv_queue_setup(&d, CTRLQ, 16);
    uint32_t gen = drv_rd(&d, R_CONFIG_GEN);
    CHECK_EQ(virtio_net_announce(dev), 0);
    static const uint8_t zero_hdr[NET_VNET_HDR_LEN];
    CHECK_EQ(f.last_len, NET_VNET_HDR_LEN + sizeof(rarp));
    CHECK(!memcmp(f.last, zero_hdr, NET_VNET_HDR_LEN) &&
          !memcmp(f.last + NET_VNET_HDR_LEN, rarp, sizeof(rarp)));
    CHECK_EQ(config_status(&d), 3);   /* LINK_UP | ANNOUNCE */
    CHECK(drv_rd(&d, R_INT_STATUS) & VIRTIO_INT_CONFIG);
    CHECK(drv_rd(&d, R_CONFIG_GEN) != gen);
    drv_wr(&d, R_INT_ACK, VIRTIO_INT_CONFIG);
    CHECK_EQ(virtio_net_announce(dev), 0);   /* not acknowledged yet */
    CHECK_EQ(fake_sent(&f), 2);
    CHECK_EQ(drv_rd(&d, R_INT_STATUS) & VIRTIO_INT_CONFIG, 0);
    virtio_net_get_stats(dev, &st);
    CHECK(st.announce_frames == 2 && st.announce_requests == 1 && st.announce_acks == 0);

    /* The pending bit goes through a snapshot (with GUEST_ANNOUNCE only). */
    struct blob s;
    CHECK_EQ(save_card(dev, &s), 0);
    virtio_mmio_resume(dev);
    struct fake fb;
    fake_init(&fb, true);
    struct irq_line line = { .set_level = noop_irq, .irq = 1 };
    struct virtio_dev *b = NULL;
    CHECK_EQ(virtio_net_create(&mem, BASE2, line, &fb.base, mac, &b), 0);
    CHECK_MSG(load_card(b, &s) == 0, "%s", err);
    virtio_mmio_resume(b);
    struct drv db = d;
    db.base = BASE2;
    CHECK_EQ(config_status(&db), 3);
    /* Its interrupt may not have been raised before the save: the loaded
     * card raises it again at its first announcement, once. */
    CHECK_EQ(drv_rd(&db, R_INT_STATUS) & VIRTIO_INT_CONFIG, 0);
    CHECK_EQ(virtio_net_announce(b), 0);
    CHECK(drv_rd(&db, R_INT_STATUS) & VIRTIO_INT_CONFIG);
    drv_wr(&db, R_INT_ACK, VIRTIO_INT_CONFIG);
    CHECK_EQ(virtio_net_announce(b), 0);
    CHECK_EQ(drv_rd(&db, R_INT_STATUS) & VIRTIO_INT_CONFIG, 0);
    virtio_net_get_stats(b, &st);
    CHECK(st.announce_frames == 2 && st.announce_requests == 1);
    virtio_mmio_destroy(b);
    mem.mmio_count = 1;
    /* (Payload byte 8: the negotiated features, GUEST_ANNOUNCE in bit 21.) */
    struct blob p = patch(&s, VIRTIO_NET_STATE_TAG, 8 + 2, 0);
    fake_init(&fb, true);
    CHECK_EQ(virtio_net_create(&mem, BASE2, line, &fb.base, mac, &b), 0);
    CHECK_MSG(load_card(b, &p) < 0 && strstr(err, "link status 0x3"), "'%s'", err);
    virtio_mmio_destroy(b);
    mem.mmio_count = 1;
    free(p.data);
    free(s.data);

    /* The acknowledgement clears it; the next round asks again. Other
     * commands: VIRTIO_NET_ERR. */
    CHECK_EQ(ctrl(&d, 0, 0, 1), 1);   /* CTRL_RX PROMISC: not offered */
    CHECK_EQ(ctrl(&d, 3, 0, 1), 1);   /* ANNOUNCE_ACK takes no data */
    CHECK_EQ(ctrl(&d, 3, 1, 0), 1);
    CHECK_EQ(config_status(&d), 3);
    CHECK_EQ(ctrl(&d, 3, 0, 0), 0);
    CHECK_EQ(config_status(&d), 1);
    CHECK_EQ(virtio_net_announce(dev), 0);
    CHECK_EQ(config_status(&d), 3);
    CHECK(drv_rd(&d, R_INT_STATUS) & VIRTIO_INT_CONFIG);
    CHECK_EQ(ctrl(&d, 3, 0, 0), 0);
    virtio_net_get_stats(dev, &st);
    CHECK(st.announce_frames == 3 && st.announce_requests == 2 && st.announce_acks == 2);
    /* A command with nowhere to put the ack: the driver broke the rules. */
    uint8_t *c = drv_ram(&d, CTRLBUF);
    c[0] = 3;
    c[1] = 0;
    drv_add(&d, CTRLQ, &(struct drv_buf){ CTRLBUF, 2, false }, 1);
    CHECK(drv_wait_status(&d, VIRTIO_STATUS_DEVICE_NEEDS_RESET));
    /* A reset forgets a pending announcement. */
    CHECK_EQ(virtio_net_announce(dev), 0);
    drv_wr(&d, R_STATUS, 0);
    CHECK_EQ(config_status(&d), 1);
    destroy_card(dev);

    /* A clone's card (its own MAC kept at the load): nothing. */
    fake_init(&f, false);
    dev = make_card(&f, &d, F_VERSION_1 | F_MAC | F_STATUS | F_CTRL_VQ | F_GUEST_ANNOUNCE);
    virtio_net_keep_mac_on_load(dev, true);
    CHECK_EQ(virtio_net_announce(dev), 0);
    CHECK_EQ(fake_sent(&f), 0);
    CHECK_EQ(config_status(&d), 1);
    destroy_card(dev);
}

/* ---- the user backend's libslirp state ---- */

struct port_count {
    pthread_mutex_t lock;
    unsigned frames;
};

static int count_receive(void *opaque, const struct iovec *iov, int iovcnt)
{
    struct port_count *p = opaque;
    (void)iov, (void)iovcnt;
    pthread_mutex_lock(&p->lock);
    p->frames++;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static bool count_can(void *opaque)
{
    (void)opaque;
    return true;
}

static uint16_t ip_csum(const uint8_t *p, size_t n)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* A DHCPDISCOVER from `cmac`: slirp allocates it a lease (its bootp
 * client table, part of slirp_state_save) and answers with an offer. */
static size_t dhcp_discover(uint8_t *f, const uint8_t *cmac)
{
    const size_t bootp = 548;   /* struct bootp_t without the IP/UDP headers */
    size_t len = 14 + 20 + 8 + bootp;
    memset(f, 0, len);
    memset(f, 0xff, 6);
    memcpy(f + 6, cmac, 6);
    f[12] = 0x08;
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    ip[2] = (uint8_t)((20 + 8 + bootp) >> 8);
    ip[3] = (uint8_t)(20 + 8 + bootp);
    ip[8] = 64;
    ip[9] = 17;
    memset(ip + 16, 0xff, 4);
    uint16_t c = ip_csum(ip, 20);
    ip[10] = (uint8_t)(c >> 8);
    ip[11] = (uint8_t)c;
    uint8_t *udp = ip + 20;
    udp[1] = 68;
    udp[3] = 67;
    udp[4] = (uint8_t)((8 + bootp) >> 8);
    udp[5] = (uint8_t)(8 + bootp);
    uint8_t *bp = udp + 8;
    bp[0] = 1;   /* BOOTREQUEST */
    bp[1] = 1;
    bp[2] = 6;
    bp[4] = 0x12;   /* xid */
    memcpy(bp + 28, cmac, 6);
    static const uint8_t opts[] = { 99, 130, 83, 99, 53, 1, 1, 255 };
    memcpy(bp + 236, opts, sizeof(opts));
    return len;
}

static int user_state(struct net_backend *u, struct blob *out)
{
    struct state_writer w;
    CHECK_EQ(state_writer_init_mem(&w), 0);
    int ret = u->ops->save(u, &w, NET_INST);
    if (ret) {
        state_writer_free(&w);
        return ret;
    }
    blob_take(&w, out);
    return 0;
}

static int user_load(struct net_backend *u, const struct blob *b)
{
    struct state_reader r;
    err[0] = 0;
    CHECK_EQ(state_reader_open_mem(&r, b->data, b->len, err, sizeof(err)), 0);
    int ret = u->ops->load(u, &r, NET_INST, err, sizeof(err));
    state_reader_free(&r);
    return ret;
}

static bool contains(const struct blob *b, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + n <= b->len; i++)
        if (!memcmp(b->data + i, p, n))
            return true;
    return false;
}

static void test_user_backend_state(void)
{
    static const uint8_t cmac[6] = { 0x52, 0x54, 0x00, 0x99, 0x88, 0x77 };
    struct net_user_options opts = { .nfwd = 0 };
    struct net_backend *u1, *u2;
    CHECK_EQ(net_user_open(&opts, &u1, err, sizeof(err)), 0);
    CHECK_EQ(net_user_open(&opts, &u2, err, sizeof(err)), 0);
    CHECK(u1->ops->save && u1->ops->load && !strcmp(u1->ops->state_tag, NET_USER_STATE_TAG));
    struct port_count pc = { PTHREAD_MUTEX_INITIALIZER, 0 };
    struct net_rx_port port = { .receive = count_receive, .can_receive = count_can, .opaque = &pc };
    CHECK_EQ(u1->ops->start(u1, &port), 0);
    CHECK_EQ(u2->ops->start(u2, &port), 0);

    struct blob fresh, leased, moved, again;
    CHECK_EQ(user_state(u2, &fresh), 0);
    CHECK(!contains(&fresh, cmac, 6));
    static uint8_t f[600];
    struct iovec iov = { .iov_base = f, .iov_len = dhcp_discover(f, cmac) };
    CHECK_EQ(u1->ops->send(u1, &iov, 1), 0);
    bool offered = false;
    for (int i = 0; i < 5000 && !offered; i++) {   /* slirp answers at once; 5 s at most */
        pthread_mutex_lock(&pc.lock);
        offered = pc.frames > 0;
        pthread_mutex_unlock(&pc.lock);
        if (!offered)
            drv_sleep_ms(1);
    }
    CHECK(offered);
    CHECK_EQ(user_state(u1, &leased), 0);
    CHECK(contains(&leased, cmac, 6));   /* the lease, by the client's MAC */
    write_seed("net_user", &leased);
    /* Into a fresh backend (running: its thread is parked meanwhile). */
    CHECK_EQ(user_load(u2, &leased), 0);
    CHECK_EQ(user_state(u2, &moved), 0);
    CHECK(moved.len == leased.len && !memcmp(moved.data, leased.data, leased.len));
    /* Tampered: a socket record (libslirp would attach it half-read), a
     * libslirp state version from elsewhere, a short record. u2 unchanged. */
    struct blob p1 = patch(&leased, NET_USER_STATE_TAG, 8, 42);
    CHECK(user_load(u2, &p1) == -EINVAL && strstr(err, "net-user"));
    struct blob p2 = patch(&leased, NET_USER_STATE_TAG, 0, 99);
    CHECK(user_load(u2, &p2) == -ENOTSUP && strstr(err, "version"));
    struct blob p3 = patch(&leased, NET_USER_STATE_TAG, 4, 3);
    CHECK(user_load(u2, &p3) < 0);
    CHECK_EQ(user_state(u2, &again), 0);
    CHECK(again.len == leased.len && !memcmp(again.data, leased.data, leased.len));

    net_backend_close(u1);
    net_backend_close(u2);
    free(fresh.data), free(leased.data), free(moved.data), free(again.data);
    free(p1.data), free(p2.data), free(p3.data);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-seeds"))
        seed_dir = argv[2];   /* tests/fuzz/corpus/state */
    drv_mem_init(&mem);
    test_config_and_features();
    test_tx();
    test_rx();
    test_snapshot();
    test_two_queue_snapshot();
    test_announce();
    test_user_backend_state();
    drv_mem_free(&mem);
    return check_summary("virtio_net");
}
