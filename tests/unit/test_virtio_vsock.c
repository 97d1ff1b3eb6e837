/* Unit tests for virtio-vsock, driven through the transport like the guest's
 * driver, with real unix sockets on the host side:
 *  - configuration space (guest_cid);
 *  - host-initiated: CONNECT line, REQUEST to the guest, RESPONSE, "OK
 *    PORT", data both ways, a bad CONNECT line, a guest that refuses (RST);
 *  - guest-initiated: REQUEST to a PATH_PORT listener, RESPONSE, data both
 *    ways, SHUTDOWN -> EOF on the host and RST back; no listener -> RST;
 *  - credit: the device never sends more than the guest's buf_alloc allows
 *    and goes on after a CREDIT_UPDATE; CREDIT_REQUEST is answered;
 *  - hostile packets: wrong source or target CID, len beyond the buffer or
 *    the maximum, a header cut short, unknown op and type, data beyond the
 *    credit we gave, RW on an unknown connection: no crash, no
 *    DEVICE_NEEDS_RESET, RST where a connection can be named;
 *  - floods: hundreds of REQUESTs with no receive buffers posted (the RST
 *    ring fills, the transmit queue waits, nothing is lost once buffers
 *    come), more REQUESTs than connection slots (the rest get RST), more
 *    silent host clients than pending slots (the rest are closed);
 *  - reset: host sockets are closed, the driver gets TRANSPORT_RESET;
 *  - snapshot: save with a connection open, load into a fresh device with
 *    another CID and socket: the driver gets TRANSPORT_RESET and reads the
 *    new CID, the old connection is unknown (RST), new connections work
 *    both ways; bad sections are refused. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "state/state.h"
#include "virtio/vsock.h"

#include "check.h"
#include "virtio_driver.h"

#define BASE 0x10001000ull
#define CID  cid   /* the guest's; a loaded device has another */
#define RXQ  0u
#define TXQ  1u
#define EVQ  2u
#define QN   64u
#define HDR  ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define RX_LEN (HDR + 4096u)
#define RX_BUF(id) (DRV_DATA + 0x2000ull * (id))              /* 64 x 8 KiB */
#define TX_BUF     (DRV_DATA + 0x80000ull)                     /* 256 KiB */
#define EV_BUF     (DRV_DATA + 0xc0000ull)

static struct guest_mem mem;
static uint32_t cid = 3;
static const char *seed_dir;
#define VSOCK_INST 3u   /* as tests/fuzz/fuzz_state.c loads it */
static char dir[] = "/tmp/nimbus-test-vsock.XXXXXX";
static char sock_path[200];
static struct drv d;
static uint16_t rx_seen;

static void noop_irq(void *c, unsigned irq, bool level)
{
    (void)c, (void)irq, (void)level;
}

static void rx_post(unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        /* drv_add takes descriptors in order: the head is the index. */
        uint16_t id = (uint16_t)(d.q[RXQ].next_desc % QN);
        struct drv_buf b = { RX_BUF(id), RX_LEN, true };
        drv_add(&d, RXQ, &b, 1);
    }
}

/* The next packet the device sent, within `ms`; reposts the buffer. */
static bool rx_next(struct virtio_vsock_hdr *h, uint8_t *payload, int ms)
{
    for (int i = 0; i < ms; i++) {
        if (drv_used_idx(&d, RXQ) != rx_seen)
            break;
        drv_sleep_ms(1);
    }
    if (drv_used_idx(&d, RXQ) == rx_seen)
        return false;
    uint32_t id, len;
    drv_used_entry(&d, RXQ, rx_seen, &id, &len);
    rx_seen++;
    memcpy(h, drv_ram(&d, RX_BUF(id)), HDR);
    if (payload && len > HDR)
        memcpy(payload, (uint8_t *)drv_ram(&d, RX_BUF(id)) + HDR, len - HDR);
    CHECK(len == HDR + h->len);
    rx_post(1);
    return true;
}

static struct virtio_vsock_hdr mk(uint32_t src_port, uint32_t dst_port, uint16_t op, uint32_t len)
{
    return (struct virtio_vsock_hdr){
        .src_cid = CID, .dst_cid = VIRTIO_VSOCK_HOST_CID, .src_port = src_port,
        .dst_port = dst_port, .len = len, .type = VIRTIO_VSOCK_TYPE_STREAM, .op = op,
        .buf_alloc = 256 * 1024, .fwd_cnt = 0,
    };
}

/* Sends one packet: the header, then `buflen` bytes of payload (may differ
 * from h->len to lie), or a header cut to `hdrlen` bytes. Waits until used. */
static void tx_raw(const struct virtio_vsock_hdr *h, uint32_t hdrlen, const void *payload,
                   uint32_t buflen)
{
    memcpy(drv_ram(&d, TX_BUF), h, HDR);
    if (buflen)
        memcpy(drv_ram(&d, TX_BUF + 0x1000), payload, buflen);
    struct drv_buf b[2] = { { TX_BUF, hdrlen, false }, { TX_BUF + 0x1000, buflen, false } };
    uint16_t want = (uint16_t)(drv_used_idx(&d, TXQ) + 1);
    drv_add(&d, TXQ, b, buflen ? 2 : 1);
    CHECK(drv_wait_used(&d, TXQ, want));
}

static void tx(const struct virtio_vsock_hdr *h, const void *payload)
{
    tx_raw(h, HDR, payload, h->len);
}

static void setup(void)
{
    d = (struct drv){ .mem = &mem, .base = BASE };
    rx_seen = 0;
    CHECK(drv_negotiate(&d, 1ull << VIRTIO_F_VERSION_1) & VIRTIO_STATUS_FEATURES_OK);
    drv_queue_setup(&d, RXQ, QN);
    drv_queue_setup(&d, TXQ, QN);
    drv_queue_setup(&d, EVQ, 4);
    drv_driver_ok(&d);
}

static int unix_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        exit(1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        printf("FAIL connect %s: %s\n", path, strerror(errno));
        exit(1);
    }
    return fd;
}

static int unix_listen(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        exit(1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 128)) {
        printf("FAIL listen %s: %s\n", path, strerror(errno));
        exit(1);
    }
    return fd;
}

/* Reads exactly n bytes within 5 s; returns what it got. */
static size_t read_exact(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t r = read(fd, (uint8_t *)buf + got, n - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* Reads a line; returns its length, -1 on EOF/timeout. */
static int read_line(int fd, char *buf, size_t max)
{
    size_t n = 0;
    while (n + 1 < max) {
        if (read_exact(fd, buf + n, 1) != 1)
            return -1;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return (int)n;
}

/* EOF (or reset) on fd within 5 s? */
static bool sees_eof(int fd)
{
    char c;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, 5000) <= 0)
        return false;
    return read(fd, &c, 1) <= 0;
}

static bool no_needs_reset(void)
{
    return !(drv_rd(&d, R_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

/* Host client `fd` sends CONNECT port; the guest answers RESPONSE.
 * Returns fd, *host_port the device's port. */
static int host_handshake(int fd, uint32_t guest_port, uint32_t *host_port)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "CONNECT %u\n", guest_port);
    CHECK(write(fd, line, (size_t)n) == n);
    struct virtio_vsock_hdr h;
    CHECK(rx_next(&h, NULL, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_REQUEST);
    CHECK_EQ(h.src_cid, VIRTIO_VSOCK_HOST_CID);
    CHECK_EQ(h.dst_cid, CID);
    CHECK_EQ(h.dst_port, guest_port);
    CHECK(h.src_port >= VIRTIO_VSOCK_HOST_PORT0);
    CHECK_EQ(h.buf_alloc, VIRTIO_VSOCK_BUF_ALLOC);
    *host_port = h.src_port;
    struct virtio_vsock_hdr r = mk(guest_port, h.src_port, VIRTIO_VSOCK_OP_RESPONSE, 0);
    tx(&r, NULL);
    CHECK(read_line(fd, line, sizeof(line)) > 0);
    char want[64];
    snprintf(want, sizeof(want), "OK %u", h.src_port);
    CHECK_MSG(!strcmp(line, want), "got '%s', want '%s'", line, want);
    return fd;
}

static int host_connect(uint32_t guest_port, uint32_t *host_port)
{
    return host_handshake(unix_connect(sock_path), guest_port, host_port);
}

/* The in-process client (the API's path to the guest agent) works with
 * the socket file gone: it never goes through the file system. */
static void test_local_client(struct virtio_dev *dev)
{
    char away[220], err[256];
    snprintf(away, sizeof(away), "%s.away", sock_path);
    CHECK(rename(sock_path, away) == 0);
    int fd = -1;
    CHECK_MSG(virtio_vsock_connect_local(dev, &fd, err, sizeof(err)) == 0, "%s", err);
    uint32_t hp;
    host_handshake(fd, 4321, &hp);
    CHECK(write(fd, "hi", 2) == 2);
    struct virtio_vsock_hdr h;
    uint8_t buf[64];
    CHECK(rx_next(&h, buf, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_RW);
    CHECK_EQ(h.dst_port, 4321);
    CHECK(h.len == 2 && !memcmp(buf, "hi", 2));
    struct virtio_vsock_hdr r = mk(4321, hp, VIRTIO_VSOCK_OP_RST, 0);
    tx(&r, NULL);
    CHECK(sees_eof(fd));
    close(fd);
    CHECK(rename(away, sock_path) == 0);
    CHECK(no_needs_reset());
}

static void test_config_and_host_initiated(void)
{
    uint64_t v = 0;
    CHECK(guest_mem_mmio_read(&mem, BASE + R_CONFIG, 4, &v));
    CHECK_EQ(v, CID);
    CHECK(guest_mem_mmio_read(&mem, BASE + R_CONFIG + 4, 4, &v));
    CHECK_EQ(v, 0);
    CHECK_EQ(drv_rd(&d, R_DEVICE_ID), VIRTIO_ID_VSOCK);

    uint32_t hp;
    int fd = host_connect(1234, &hp);
    CHECK(write(fd, "ping", 4) == 4);
    struct virtio_vsock_hdr h;
    uint8_t buf[8192];
    CHECK(rx_next(&h, buf, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_RW);
    CHECK_EQ(h.len, 4);
    CHECK(!memcmp(buf, "ping", 4));
    struct virtio_vsock_hdr w = mk(1234, hp, VIRTIO_VSOCK_OP_RW, 4);
    tx(&w, "pong");
    CHECK_EQ(read_exact(fd, buf, 4), 4);
    CHECK(!memcmp(buf, "pong", 4));

    /* The host half-closes: the guest gets SHUTDOWN(SEND). */
    shutdown(fd, SHUT_WR);
    CHECK(rx_next(&h, NULL, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_SHUTDOWN);
    CHECK_EQ(h.flags, VIRTIO_VSOCK_SHUTDOWN_SEND);
    /* The guest shuts both ways: the host sees EOF, the guest gets RST. */
    struct virtio_vsock_hdr s = mk(1234, hp, VIRTIO_VSOCK_OP_SHUTDOWN, 0);
    s.flags = VIRTIO_VSOCK_SHUTDOWN_RCV | VIRTIO_VSOCK_SHUTDOWN_SEND;
    tx(&s, NULL);
    CHECK(sees_eof(fd));
    CHECK(rx_next(&h, NULL, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_RST);
    CHECK_EQ(h.dst_port, 1234);
    close(fd);

    /* The guest refuses: the host client's socket is closed. */
    fd = unix_connect(sock_path);
    CHECK(write(fd, "CONNECT 99\n", 11) == 11);
    CHECK(rx_next(&h, NULL, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_REQUEST);
    struct virtio_vsock_hdr r = mk(99, h.src_port, VIRTIO_VSOCK_OP_RST, 0);
    tx(&r, NULL);
    CHECK(sees_eof(fd));
    close(fd);

    /* Not a CONNECT line: closed, nothing reaches the guest. */
    fd = unix_connect(sock_path);
    CHECK(write(fd, "HELLO 5\n", 8) == 8);
    CHECK(sees_eof(fd));
    close(fd);
    fd = unix_connect(sock_path);
    char junk[100];
    memset(junk, 'A', sizeof(junk));
    CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));   /* no newline, too long */
    CHECK(sees_eof(fd));
    close(fd);
    CHECK(!rx_next(&h, NULL, 100));
    CHECK(no_needs_reset());
}

static void test_guest_initiated(void)
{
    char p[300];
    snprintf(p, sizeof(p), "%s_5000", sock_path);
    int l = unix_listen(p);
    struct virtio_vsock_hdr h, q = mk(40000, 5000, VIRTIO_VSOCK_OP_REQUEST, 0);
    tx(&q, NULL);
    CHECK(rx_next(&h, NULL, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_RESPONSE);
    CHECK_EQ(h.src_port, 5000);
    CHECK_EQ(h.dst_port, 40000);
    int fd = accept(l, NULL, NULL);
    CHECK(fd >= 0);
    struct virtio_vsock_hdr w = mk(40000, 5000, VIRTIO_VSOCK_OP_RW, 5);
    tx(&w, "hello");
    uint8_t buf[8192];
    CHECK_EQ(read_exact(fd, buf, 5), 5);
    CHECK(!memcmp(buf, "hello", 5));
    CHECK(write(fd, "world", 5) == 5);
    CHECK(rx_next(&h, buf, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_RW);
    CHECK(h.len == 5 && !memcmp(buf, "world", 5));

    /* CREDIT_REQUEST is answered with the device's credit. */
    struct virtio_vsock_hdr cr = mk(40000, 5000, VIRTIO_VSOCK_OP_CREDIT_REQUEST, 0);
    tx(&cr, NULL);
    CHECK(rx_next(&h, NULL, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_CREDIT_UPDATE);
    CHECK_EQ(h.buf_alloc, VIRTIO_VSOCK_BUF_ALLOC);
    CHECK_EQ(h.fwd_cnt, 5);

    /* Credit: the guest offers 3000 bytes; the host writes 20000. */
    struct virtio_vsock_hdr cu = mk(40000, 5000, VIRTIO_VSOCK_OP_CREDIT_UPDATE, 0);
    cu.buf_alloc = 3000;
    cu.fwd_cnt = 5;   /* everything so far was read */
    tx(&cu, NULL);
    static uint8_t big[20000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    CHECK(write(fd, big, sizeof(big)) == (ssize_t)sizeof(big));
    uint32_t got = 0;
    while (rx_next(&h, buf, 300)) {
        CHECK_EQ(h.op, VIRTIO_VSOCK_OP_RW);
        CHECK(!memcmp(buf, big + got, h.len));
        got += h.len;
    }
    CHECK_EQ(got, 3000);
    cu.buf_alloc = 64 * 1024;
    cu.fwd_cnt = 5 + 3000;
    tx(&cu, NULL);
    while (got < sizeof(big) && rx_next(&h, buf, 2000)) {
        CHECK_EQ(h.op, VIRTIO_VSOCK_OP_RW);
        CHECK(!memcmp(buf, big + got, h.len));
        got += h.len;
    }
    CHECK_EQ(got, sizeof(big));

    /* Data beyond the credit the device gave: once the host socket's buffer
     * and the device's 64 KiB are full (nobody reads on the host side), more
     * data is a broken promise: RST. 400 KB is more than both can hold. */
    static uint8_t chunk[40000];
    struct virtio_vsock_hdr w2 = mk(40000, 5000, VIRTIO_VSOCK_OP_RW, sizeof(chunk));
    close(l);
    for (int i = 0; i < 10; i++)
        tx(&w2, chunk);
    bool rst = false;
    while (rx_next(&h, NULL, 1000))
        rst |= h.op == VIRTIO_VSOCK_OP_RST && h.dst_port == 40000;
    CHECK(rst);
    close(fd);

    /* No listener: RST. */
    q = mk(40001, 5999, VIRTIO_VSOCK_OP_REQUEST, 0);
    tx(&q, NULL);
    CHECK(rx_next(&h, NULL, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_RST);
    CHECK_EQ(h.dst_port, 40001);
    CHECK_EQ(h.src_port, 5999);
    CHECK(no_needs_reset());
    unlink(p);
}

static void test_hostile(void)
{
    struct virtio_vsock_hdr h, p;
    uint8_t payload[64] = { 0 };

    p = mk(1, 7000, VIRTIO_VSOCK_OP_REQUEST, 0);
    p.src_cid = 4;   /* not the guest's CID */
    tx(&p, NULL);
    p.src_cid = CID;
    p.dst_cid = 5;   /* not to the host */
    tx(&p, NULL);
    p = mk(1, 7000, VIRTIO_VSOCK_OP_RW, 100);   /* len beyond the buffer */
    tx_raw(&p, HDR, payload, sizeof(payload));
    p.len = 0x80000000u;
    tx_raw(&p, HDR, payload, sizeof(payload));
    p = mk(1, 7000, VIRTIO_VSOCK_OP_REQUEST, 16);   /* a REQUEST with data */
    tx_raw(&p, HDR, payload, 16);
    p = mk(1, 7000, VIRTIO_VSOCK_OP_REQUEST, 0);
    tx_raw(&p, HDR - 1, NULL, 0);                    /* header cut short */
    CHECK(!rx_next(&h, NULL, 200));                  /* all dropped */

    p = mk(2, 7000, 99, 0);                          /* unknown op */
    tx(&p, NULL);
    CHECK(rx_next(&h, NULL, 5000));
    CHECK(h.op == VIRTIO_VSOCK_OP_RST && h.dst_port == 2);
    p = mk(3, 7000, VIRTIO_VSOCK_OP_REQUEST, 0);
    p.type = 2;                                      /* SEQPACKET: not offered */
    tx(&p, NULL);
    CHECK(rx_next(&h, NULL, 5000));
    CHECK(h.op == VIRTIO_VSOCK_OP_RST && h.dst_port == 3);
    p = mk(4, 7000, VIRTIO_VSOCK_OP_RW, 8);          /* data on no connection */
    tx(&p, payload);
    CHECK(rx_next(&h, NULL, 5000));
    CHECK(h.op == VIRTIO_VSOCK_OP_RST && h.dst_port == 4);
    p = mk(5, 7000, VIRTIO_VSOCK_OP_RST, 0);         /* RST is never answered */
    tx(&p, NULL);
    CHECK(!rx_next(&h, NULL, 200));

    /* Unknown op on a live connection ends it. */
    uint32_t hp;
    int fd = host_connect(777, &hp);
    p = mk(777, hp, 42, 0);
    tx(&p, NULL);
    CHECK(rx_next(&h, NULL, 5000));
    CHECK(h.op == VIRTIO_VSOCK_OP_RST && h.dst_port == 777);
    CHECK(sees_eof(fd));
    close(fd);
    CHECK(no_needs_reset());
}

static void test_floods(void)
{
    struct virtio_vsock_hdr h;
    /* A fresh start with no receive buffers posted at all. */
    drv_wr(&d, R_STATUS, 0);
    setup();
    /* REQUESTs to a port nobody listens on: each wants an RST, which waits
     * in the RST ring (64 entries); when it is full, the transmit queue is
     * no longer served (the driver's queue fills up, not our memory). */
    for (unsigned i = 0; i < 73; i++) {
        if (i == 63)
            CHECK(drv_wait_used(&d, TXQ, 63));
        uint64_t at = TX_BUF + 64 * i;
        struct virtio_vsock_hdr q = mk(10000 + i, 6000, VIRTIO_VSOCK_OP_REQUEST, 0);
        memcpy(drv_ram(&d, at), &q, HDR);
        struct drv_buf b = { at, HDR, false };
        drv_add(&d, TXQ, &b, 1);
    }
    drv_sleep_ms(300);
    CHECK_EQ(drv_used_idx(&d, TXQ), VIRTIO_VSOCK_RST_RING);
    CHECK(no_needs_reset());
    /* Buffers come: every REQUEST gets its RST, in order, none lost. */
    unsigned n = 0;
    rx_post(32);
    while (n < 73 && rx_next(&h, NULL, 3000)) {
        CHECK_EQ(h.op, VIRTIO_VSOCK_OP_RST);
        CHECK_EQ(h.dst_port, 10000 + n);
        n++;
    }
    CHECK_EQ(n, 73);
    CHECK(drv_wait_used(&d, TXQ, 73));

    /* More connections than slots: the rest get RST; then they all close. */
    char p[300];
    snprintf(p, sizeof(p), "%s_6100", sock_path);
    int l = unix_listen(p);
    unsigned resp = 0, rsts = 0;
    for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS + 20; i++) {
        struct virtio_vsock_hdr q = mk(20000 + i, 6100, VIRTIO_VSOCK_OP_REQUEST, 0);
        tx(&q, NULL);
        CHECK(rx_next(&h, NULL, 5000));
        resp += h.op == VIRTIO_VSOCK_OP_RESPONSE;
        rsts += h.op == VIRTIO_VSOCK_OP_RST;
    }
    CHECK_EQ(resp, VIRTIO_VSOCK_MAX_CONNS);
    CHECK_EQ(rsts, 20);
    for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
        struct virtio_vsock_hdr r = mk(20000 + i, 6100, VIRTIO_VSOCK_OP_RST, 0);
        tx(&r, NULL);
    }
    /* Slots are free again. */
    struct virtio_vsock_hdr q = mk(30000, 6100, VIRTIO_VSOCK_OP_REQUEST, 0);
    tx(&q, NULL);
    CHECK(rx_next(&h, NULL, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_RESPONSE);
    /* The listener goes away with the connection never accepted: the
     * guest hears of it. */
    close(l);
    unlink(p);
    CHECK(rx_next(&h, NULL, 5000));
    CHECK(h.op == VIRTIO_VSOCK_OP_RST && h.dst_port == 30000);

    /* Silent host clients: at most MAX_PENDING wait, the rest are closed. */
    int fds[40];
    for (unsigned i = 0; i < 40; i++)
        fds[i] = unix_connect(sock_path);
    drv_sleep_ms(300);
    unsigned closed = 0;
    for (unsigned i = 0; i < 40; i++) {
        struct pollfd pf = { .fd = fds[i], .events = POLLIN };
        char c;
        if (poll(&pf, 1, 0) == 1 && read(fds[i], &c, 1) == 0)
            closed++;
        close(fds[i]);
    }
    /* One slot is taken by the connection above. */
    CHECK_MSG(closed >= 40 - VIRTIO_VSOCK_MAX_PENDING, "%u of 40 closed", closed);
    CHECK(no_needs_reset());
}

static void test_reset(void)
{
    uint32_t hp;
    int fd = host_connect(888, &hp);
    drv_wr(&d, R_STATUS, 0);   /* device reset */
    CHECK(sees_eof(fd));
    close(fd);
    setup();
    struct drv_buf b = { EV_BUF, 8, true };
    *(uint32_t *)drv_ram(&d, EV_BUF) = 0xffffffffu;
    drv_add(&d, EVQ, &b, 1);
    CHECK(drv_wait_used(&d, EVQ, 1));
    CHECK_EQ(*(uint32_t *)drv_ram(&d, EV_BUF), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
    /* And the device works after it. */
    rx_post(32);
    fd = host_connect(889, &hp);
    close(fd);
}

static void test_create_errors(void)
{
    struct virtio_dev *dev = NULL;
    struct irq_line line = { .set_level = noop_irq, .irq = 1 };
    char err[256];
    CHECK_EQ(virtio_vsock_create(&mem, BASE + 0x1000, line, 2, sock_path, &dev, err, sizeof(err)),
             -EINVAL);
    /* A live server at the path is not replaced. */
    CHECK_EQ(virtio_vsock_create(&mem, BASE + 0x1000, line, 5, sock_path, &dev, err, sizeof(err)),
             -EADDRINUSE);
    CHECK(strstr(err, sock_path) != NULL);
    char p[300];
    snprintf(p, sizeof(p), "%s/file", dir);
    close(open(p, O_CREAT | O_WRONLY, 0600));
    CHECK_EQ(virtio_vsock_create(&mem, BASE + 0x1000, line, 5, p, &dev, err, sizeof(err)),
             -EEXIST);
}

static int load_blob(struct virtio_dev *dev, const uint8_t *data, size_t len, char *err,
                     size_t errlen)
{
    struct state_reader r;
    CHECK_EQ(state_reader_open_mem(&r, data, len, err, errlen), 0);
    virtio_mmio_quiesce(dev);
    int ret = virtio_mmio_load(dev, &r, VSOCK_INST, err, errlen);
    state_reader_free(&r);
    return ret;
}

static void test_snapshot(struct virtio_dev *a)
{
    struct irq_line line = { .set_level = noop_irq, .irq = 2 };
    char err[256], path_a[200], path_b[200];
    uint32_t hp;
    struct virtio_vsock_hdr h;
    /* test_reset closed its host client: the SHUTDOWN for it comes first. */
    CHECK(rx_next(&h, NULL, 5000));
    CHECK(h.op == VIRTIO_VSOCK_OP_SHUTDOWN && h.dst_port == 889);
    int fd = host_connect(900, &hp);
    /* The driver keeps an event buffer posted, as Linux does. */
    uint16_t ev0 = drv_used_idx(&d, EVQ);
    *(uint32_t *)drv_ram(&d, EV_BUF) = 0xffffffffu;
    struct drv_buf eb = { EV_BUF, 8, true };
    drv_add(&d, EVQ, &eb, 1);

    struct state_writer w;
    size_t len;
    CHECK_EQ(state_writer_init_mem(&w), 0);
    virtio_mmio_quiesce(a);
    CHECK_EQ(virtio_mmio_save(a, &w, VSOCK_INST), 0);
    CHECK_EQ(state_writer_finish(&w, err, sizeof(err)), 0);
    const uint8_t *blob = state_writer_data(&w, &len);
    CHECK_EQ(drv_used_idx(&d, EVQ), ev0);   /* nothing owed at save */
    if (seed_dir) {
        char sp[512];
        snprintf(sp, sizeof(sp), "%s/virtio_vsock", seed_dir);
        FILE *f = fopen(sp, "wb");
        CHECK(f && fwrite(blob, 1, len, f) == len);
        if (f)
            fclose(f);
    }

    /* A new process: another CID and socket path. */
    snprintf(path_a, sizeof(path_a), "%s", sock_path);
    snprintf(path_b, sizeof(path_b), "%s/w.sock", dir);
    struct virtio_dev *b = NULL;
    CHECK_EQ(virtio_vsock_create(&mem, BASE + 0x1000, line, 7, path_b, &b, err, sizeof(err)), 0);
    /* Refusals first: a reserved CID, a host port below the range, a newer
     * section major; each names the section. */
    static const struct { size_t off; uint8_t v; const char *msg; } bad[] = {
        { 0, 2, "CID" }, { 12, 0x00, "host port" },
    };
    for (unsigned i = 0; i < 2; i++) {
        uint8_t *copy = malloc(len);
        memcpy(copy, blob, len);
        struct state_reader r;
        CHECK_EQ(state_reader_open_mem(&r, copy, len, err, sizeof(err)), 0);
        struct state_section s;
        CHECK_EQ(state_reader_section(&r, VIRTIO_VSOCK_STATE_TAG, VSOCK_INST, 1, &s, err, sizeof(err)), 0);
        size_t at = s.info->offset;
        state_reader_free(&r);
        copy[at + bad[i].off] = bad[i].v;
        /* Rewrite with right CRCs: through a writer section by section. */
        CHECK_EQ(state_reader_open_mem(&r, blob, len, err, sizeof(err)), 0);
        struct state_writer w2;
        CHECK_EQ(state_writer_init_mem(&w2), 0);
        for (uint32_t k = 0; k < r.nsections; k++) {
            state_reader_section_at(&r, k, &s);
            state_begin(&w2, s.info->tag, s.info->instance, s.info->major, s.info->minor);
            state_put_bytes(&w2, copy + s.info->offset, s.len);
            state_end(&w2);
        }
        CHECK_EQ(state_writer_finish(&w2, err, sizeof(err)), 0);
        size_t l2;
        const uint8_t *d2 = state_writer_data(&w2, &l2);
        err[0] = 0;
        CHECK(load_blob(b, d2, l2, err, sizeof(err)) == -EINVAL);
        CHECK_MSG(strstr(err, "virtio-vsock") && strstr(err, bad[i].msg), "'%s'", err);
        state_writer_free(&w2);
        state_reader_free(&r);
        free(copy);
    }
    CHECK_EQ(load_blob(b, blob, len, err, sizeof(err)), 0);
    virtio_mmio_resume(b);
    state_writer_free(&w);

    d.base = BASE + 0x1000;
    cid = 7;
    snprintf(sock_path, sizeof(sock_path), "%s", path_b);
    /* TRANSPORT_RESET, and the new CID for the driver to re-read. */
    CHECK(drv_wait_used(&d, EVQ, (uint16_t)(ev0 + 1)));
    CHECK_EQ(*(uint32_t *)drv_ram(&d, EV_BUF), VIRTIO_VSOCK_EVENT_TRANSPORT_RESET);
    uint64_t v = 0;
    CHECK(guest_mem_mmio_read(&mem, d.base + R_CONFIG, 8, &v));
    CHECK_EQ(v, 7);
    /* The old connection is not known here: RST. */
    struct virtio_vsock_hdr rw = mk(900, hp, VIRTIO_VSOCK_OP_RW, 3);
    tx(&rw, "old");
    CHECK(rx_next(&h, NULL, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_RST);
    CHECK_EQ(h.dst_port, 900);
    CHECK_EQ(h.dst_cid, 7);
    /* New connections, both ways. */
    int fd2 = host_connect(901, &hp);
    CHECK(hp >= VIRTIO_VSOCK_HOST_PORT0);
    CHECK(write(fd2, "new", 3) == 3);
    uint8_t buf[16];
    CHECK(rx_next(&h, buf, 5000));
    CHECK(h.op == VIRTIO_VSOCK_OP_RW && h.len == 3 && !memcmp(buf, "new", 3));
    char p[300];
    snprintf(p, sizeof(p), "%s_5001", path_b);
    int l = unix_listen(p);
    struct virtio_vsock_hdr q = mk(41000, 5001, VIRTIO_VSOCK_OP_REQUEST, 0);
    tx(&q, NULL);
    CHECK(rx_next(&h, NULL, 5000));
    CHECK_EQ(h.op, VIRTIO_VSOCK_OP_RESPONSE);
    int fd3 = accept(l, NULL, NULL);
    CHECK(fd3 >= 0);
    struct virtio_vsock_hdr w3 = mk(41000, 5001, VIRTIO_VSOCK_OP_RW, 2);
    tx(&w3, "hi");
    CHECK_EQ(read_exact(fd3, buf, 2), 2);
    CHECK(!memcmp(buf, "hi", 2));
    CHECK(no_needs_reset());
    close(fd3);
    close(l);
    close(fd2);
    close(fd);
    virtio_mmio_destroy(b);
    CHECK(access(path_b, F_OK) != 0);
    /* A (quiesced since the save) shares the rings: it goes away too. */
    snprintf(sock_path, sizeof(sock_path), "%s", path_a);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-seeds"))
        seed_dir = argv[2];   /* tests/fuzz/corpus/state */
    if (!mkdtemp(dir))
        return 1;
    snprintf(sock_path, sizeof(sock_path), "%s/v.sock", dir);
    drv_mem_init(&mem);
    struct irq_line line = { .set_level = noop_irq, .irq = 1 };
    struct virtio_dev *dev = NULL;
    char err[256];
    int r = virtio_vsock_create(&mem, BASE, line, CID, sock_path, &dev, err, sizeof(err));
    CHECK_MSG(r == 0, "create: %s", err);
    if (r)
        return check_summary("test_virtio_vsock");
    setup();
    rx_post(32);
    test_config_and_host_initiated();
    test_local_client(dev);
    test_guest_initiated();
    test_hostile();
    test_floods();
    test_reset();
    test_create_errors();
    test_snapshot(dev);
    virtio_mmio_destroy(dev);
    CHECK(access(sock_path, F_OK) != 0);   /* the socket file is removed */
    drv_mem_free(&mem);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd)) {
        /* leftovers in /tmp are harmless */
    }
    return check_summary("test_virtio_vsock");
}
