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
 * MRG_RXBUF dropped while its buffer serves the next frame. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/net.h"

#include "check.h"
#include "virtio_driver.h"

#define BASE 0x10001000ull
#define RXQ 0
#define TXQ 1

#define F_CSUM        (1ull << 0)
#define F_GUEST_CSUM  (1ull << 1)
#define F_MAC         (1ull << 5)
#define F_GUEST_TSO4  (1ull << 7)
#define F_GUEST_TSO6  (1ull << 8)
#define F_HOST_TSO4   (1ull << 11)
#define F_HOST_TSO6   (1ull << 12)
#define F_MRG_RXBUF   (1ull << 15)
#define F_STATUS      (1ull << 16)
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

int main(void)
{
    drv_mem_init(&mem);
    test_config_and_features();
    test_tx();
    test_rx();
    drv_mem_free(&mem);
    return check_summary("virtio_net");
}
