/* Fuzz target: virtio-net (src/virtio/net.c) with a fake in-process
 * backend (no network, no thread), driven through the virtio-mmio
 * transport by the hostile driver of fuzz_virtio.h (see there for the
 * operations and the generic checks).
 *
 * Input: u8 options (bit 0 the backend carries vnet headers, as a tap:
 * offloads offered; bit 1 its sends fail), then fuzz_virtio.h's setup and
 * operations. HOST: u8 flags, u16 length, u8 n and n bytes: a frame from
 * the backend (the rest of it a pattern), or with flags bit 0 the backend
 * calls rx_ready's counterpart, can_receive, first; with flags bit 2 a
 * round of announcements first (virtio_net_announce: the host's RARP, and
 * the ANNOUNCE status bit the driver acknowledges on the control queue).
 *
 * Checks beyond the generic ones:
 *   - transmit: the frames the backend gets are, in order, frames of
 *     transmit chains (the readable bytes after the 12-byte header), never
 *     shorter than an Ethernet header nor longer than 1518 bytes (65553
 *     with TSO); a vnet backend gets the chain's header with num_buffers 0;
 *     a plain backend gets NEEDS_CSUM frames with the checksum completed
 *     (§5.1.6.2: RFC 1071 over csum_start.., the driver's partial sum in
 *     the field); each transmit chain comes back with length 0;
 *   - an announcement sends the backend one 60-byte RARP frame (with a
 *     zero header on a vnet backend); control chains come back with the
 *     one ack byte written;
 *   - receive: what lands in the receive buffers is, frame by frame, the
 *     header (zero but DATA_VALID with GUEST_CSUM, or the backend's own)
 *     with num_buffers the count of chains used (§5.1.6.4), then the
 *     frame's bytes; frames are only dropped, never reordered or mixed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_virtio.h"
#include "net/announce.h"
#include "net/net.h"
#include "virtio/net.h"

#define RXQ 0u
#define TXQ 1u
#define CTRLQ 2u
#define HDR NET_VNET_HDR_LEN
#define F_GUEST_CSUM 1
#define F_MRG_RXBUF 15
#define MAX_SENT 1024u
#define MAX_RX 64u
#define BIG (HDR + NET_MAX_FRAME)

struct fake_net {
    struct net_backend b;
    struct net_rx_port port;
    bool started, fail, announcing;
    unsigned offloads, rx_ready_calls;
};

static struct fv fv;
static struct fake_net *fake;

/* Frames the backend got, not yet matched with a transmit chain. */
static struct {
    unsigned n;
    size_t len[MAX_SENT];
    uint8_t *data[MAX_SENT];
} sent;

/* Frames given to the device, not yet seen in the receive buffers. */
static struct {
    unsigned n;
    size_t len[MAX_RX];        /* header included */
    uint8_t *data[MAX_RX];
    /* The frame being assembled from the used ring. */
    unsigned want_bufs, got_bufs;
    size_t got;
    bool unsure;               /* a receive chain went out twice: stop comparing */
} rx;
static uint8_t asm_buf[BIG + 65536];

static void drop_sent(unsigned k);

static int fake_start(struct net_backend *b, const struct net_rx_port *port)
{
    struct fake_net *n = (struct fake_net *)b;
    FUZZ_CHECK(!n->started, "backend started twice");
    n->started = true;
    n->port = *port;
    return 0;
}

static int fake_send(struct net_backend *b, const struct iovec *iov, int iovcnt)
{
    struct fake_net *n = (struct fake_net *)b;
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    size_t hdr = b->vnet_hdr ? HDR : 0;
    if (n->announcing) {
        static const uint8_t zero[HDR];
        const uint8_t *p = iov[0].iov_base;
        FUZZ_CHECK(iovcnt == 1 && len == hdr + NET_ANNOUNCE_FRAME_LEN && !memcmp(p, zero, hdr) &&
                   p[hdr + 12] == 0x80 && p[hdr + 13] == 0x35, "announced with a %zu-byte frame",
                   len);
        return n->fail ? -EIO : 0;
    }
    FUZZ_CHECK(len >= hdr + 14 && len <= hdr + NET_MAX_FRAME, "sent a frame of %zu bytes", len);
    if (sent.n == MAX_SENT)
        drop_sent(1);   /* only after chaos: nothing is matched then */
    uint8_t *p = malloc(len);
    FUZZ_SETUP(p);
    size_t off = 0;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(p + off, iov[i].iov_base, iov[i].iov_len);   /* ASan checks each iovec */
        off += iov[i].iov_len;
    }
    sent.data[sent.n] = p;
    sent.len[sent.n++] = len;
    return n->fail ? -EIO : 0;
}

static void fake_rx_ready(struct net_backend *b)
{
    ((struct fake_net *)b)->rx_ready_calls++;
}

static int fake_set_offload(struct net_backend *b, unsigned offloads)
{
    FUZZ_CHECK(b->vnet_hdr, "offloads set on a backend without vnet headers");
    FUZZ_CHECK(!(offloads & ~7u), "unknown offloads 0x%x", offloads);
    ((struct fake_net *)b)->offloads = offloads;
    return 0;
}

static void fake_close(struct net_backend *b)
{
    free(b);
    fake = NULL;
}

static const struct net_backend_ops fake_ops = {
    .name = "fuzz",
    .start = fake_start,
    .send = fake_send,
    .rx_ready = fake_rx_ready,
    .set_offload = fake_set_offload,
    .close = fake_close,
};

static void drop_sent(unsigned k)
{
    for (unsigned i = 0; i < k; i++)
        free(sent.data[i]);
    memmove(sent.data, sent.data + k, (sent.n - k) * sizeof(sent.data[0]));
    memmove(sent.len, sent.len + k, (sent.n - k) * sizeof(sent.len[0]));
    sent.n -= k;
}

static void drop_rx(unsigned k)
{
    for (unsigned i = 0; i < k; i++)
        free(rx.data[i]);
    memmove(rx.data, rx.data + k, (rx.n - k) * sizeof(rx.data[0]));
    memmove(rx.len, rx.len + k, (rx.n - k) * sizeof(rx.len[0]));
    rx.n -= k;
}

static int net_create(struct fv *f, struct fuzz_in *in)
{
    uint8_t opts = fuzz_u8(in);
    fake = calloc(1, sizeof(*fake));
    FUZZ_SETUP(fake);
    fake->b.ops = &fake_ops;
    fake->b.vnet_hdr = opts & 1;
    fake->fail = opts & 2;
    static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    FUZZ_SETUP(virtio_net_create(&f->mem, FV_MMIO_BASE, (struct irq_line){ 0 }, &fake->b, mac,
                                 &f->vdev) == 0);
    FUZZ_CHECK(fake->started, "the backend was not started");
    f->nq = 3;
    memset(&rx, 0, offsetof(typeof(rx), unsure) + sizeof(rx.unsure));
    sent.n = 0;
    return 0;
}

static void net_destroy(struct fv *f)
{
    virtio_mmio_destroy(f->vdev);
    FUZZ_CHECK(!fake, "the backend was not closed");
    drop_sent(sent.n);
    drop_rx(rx.n);
}

static int net_keeps(struct fv *f, unsigned q)
{
    (void)f;
    return q == RXQ ? -1 : 0;   /* receive buffers wait for frames */
}

/* §5.1.6.5: a control command has class and command to read and the ack
 * to write. */
static bool net_rule_broken(struct fv *f, unsigned q, const struct vqm_chain *c)
{
    (void)f;
    return q == CTRLQ && (c->out_len < 2 || c->in_len < 1);
}

static uint16_t csum_fold(const uint8_t *p, size_t len, uint32_t extra)
{
    uint64_t sum = extra;
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] | p[i + 1] << 8);
    if (i < len)
        sum += p[i];
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

/* Is sent frame `s` this transmit chain's frame? */
static bool tx_matches(struct fv *f, const struct vqm_chain *c, const uint8_t *s, size_t slen)
{
    static uint8_t chain[BIG + 65536];
    if (c->out_len < HDR || c->out_len > sizeof(chain))
        return false;
    fv_chain_read(f, c, false, 0, chain, c->out_len);
    size_t flen = c->out_len - HDR;
    if (fake->b.vnet_hdr) {
        uint8_t h[HDR];
        memcpy(h, chain, HDR);
        memset(h + 10, 0, 2);   /* num_buffers: 0 towards the host */
        return slen == c->out_len && memcmp(s, h, HDR) == 0 &&
               memcmp(s + HDR, chain + HDR, flen) == 0;
    }
    if (slen != flen)
        return false;
    uint8_t flags = chain[0];
    uint16_t start, off;
    memcpy(&start, chain + 6, 2);
    memcpy(&off, chain + 8, 2);
    if (!(flags & 1))
        return memcmp(s, chain + HDR, flen) == 0;
    /* NEEDS_CSUM: all but the checksum field as given; the field makes the
     * sum over csum_start.. with the driver's partial sum come out right. */
    size_t at = (size_t)start + off;
    if (at + 2 > flen || memcmp(s, chain + HDR, at) || memcmp(s + at + 2, chain + HDR + at + 2,
                                                             flen - at - 2))
        return false;
    uint16_t partial;
    memcpy(&partial, chain + HDR + at, 2);
    if (off % 2 == 0)   /* an odd offset straddles the 16-bit words: no check */
        FUZZ_CHECK(csum_fold(s + start, flen - start, partial) == 0xffff,
                   "transmitted checksum wrong (csum_start %u offset %u)", start, off);
    return true;
}

static void rx_frame_done(struct fv *f)
{
    bool mrg = f->features & (1ull << F_MRG_RXBUF);
    /* Frames the device dropped come first; the one delivered must be there. */
    for (unsigned k = 0; k < rx.n; k++) {
        if (rx.len[k] != rx.got)
            continue;
        uint8_t want[HDR];
        memcpy(want, rx.data[k], HDR);
        uint16_t nb = (uint16_t)rx.got_bufs;
        memcpy(want + 10, &nb, 2);
        if (memcmp(asm_buf, want, HDR) || memcmp(asm_buf + HDR, rx.data[k] + HDR, rx.got - HDR))
            continue;
        FUZZ_CHECK(mrg || rx.got_bufs == 1, "a frame over %u chains without MRG_RXBUF",
                   rx.got_bufs);
        drop_rx(k + 1);
        return;
    }
    FUZZ_CHECK(false, "the receive buffers hold %zu bytes over %u chains that are no frame given "
                      "to the device", rx.got, rx.got_bufs);
}

static void net_used(struct fv *f, unsigned q, const struct fv_entry *e, uint32_t len)
{
    if (q == CTRLQ) {
        FUZZ_CHECK(len == 1, "control chain used with length %u", len);
        return;
    }
    if (q == TXQ) {
        FUZZ_CHECK(len == 0, "transmit chain used with length %u", len);
        if (sent.n && tx_matches(f, &e->c, sent.data[0], sent.len[0]))
            drop_sent(1);
        return;
    }
    if (q != RXQ || rx.unsure)
        return;
    if (e->shared) {
        rx.unsure = true;
        return;
    }
    if (len == 0 && rx.want_bufs == 0)
        return;   /* a buffer too small for the header, given back empty */
    FUZZ_CHECK(rx.got + len <= sizeof(asm_buf), "receive frame too long");
    fv_chain_read(f, &e->c, true, 0, asm_buf + rx.got, len);
    if (rx.want_bufs == 0) {
        FUZZ_CHECK(len >= HDR, "first receive chain of a frame has %u bytes", len);
        uint16_t nb;
        memcpy(&nb, asm_buf + 10, 2);
        FUZZ_CHECK(nb >= 1 && nb <= VQ_MAX_SIZE, "num_buffers %u", nb);
        rx.want_bufs = nb;
    }
    rx.got += len;
    if (++rx.got_bufs == rx.want_bufs) {
        rx_frame_done(f);
        rx.got = rx.got_bufs = rx.want_bufs = 0;
    }
}

/* HOST: u8 flags, u16 length, u8 n, n bytes: a frame from the backend. */
static void net_host(struct fv *f, struct fuzz_in *in)
{
    uint8_t fl = fuzz_u8(in);
    size_t len = fuzz_u64(in, 2);
    unsigned n = fuzz_u8(in);
    if (fl & 4) {
        fake->announcing = true;
        int r = virtio_net_announce(f->vdev);
        fake->announcing = false;
        FUZZ_CHECK(r == (fake->fail ? -EIO : 0), "announce returned %d", r);
    }
    if (fl & 2)
        len += 65536 - 2048;   /* the largest frames */
    if (len > HDR + NET_MAX_FRAME + 16)
        len = HDR + NET_MAX_FRAME + 16;
    uint8_t *p = malloc(len + 1);
    FUZZ_SETUP(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 13 + (i >> 8));
    for (unsigned i = 0; i < n; i++) {
        uint8_t b = fuzz_u8(in);
        if (i < len)
            p[i] = b;
    }
    if ((fl & 1) && !fake->port.can_receive(fake->port.opaque)) {
        free(p);
        return;
    }
    struct iovec iov[2] = { { p, len / 2 }, { p + len / 2, len - len / 2 } };
    int r = fake->port.receive(fake->port.opaque, iov, 2);
    if (r == 0) {
        size_t pre = fake->b.vnet_hdr ? 0 : HDR;
        uint8_t *q = calloc(1, pre + len);
        FUZZ_SETUP(q);
        if (pre && (f->features & (1ull << F_GUEST_CSUM)))
            q[0] = 2;   /* DATA_VALID (§5.1.6.4.1) */
        memcpy(q + pre, p, len);
        if (rx.n == MAX_RX) {
            drop_rx(1);
            rx.unsure = true;   /* too many to follow */
        }
        rx.data[rx.n] = q;
        rx.len[rx.n++] = pre + len;
    } else {
        FUZZ_CHECK(r == -ENOBUFS, "receive returned %d", r);
    }
    free(p);
    fv_settle(f, -1, false, 0);
}

static void net_finish(struct fv *f)
{
    /* Every frame the backend got came from a transmit chain, in order. */
    FUZZ_CHECK(f->chaos || sent.n == 0, "%u frames sent that match no transmit chain", sent.n);
}

static const struct fv_dev net_dev = {
    .name = "net",
    .create = net_create,
    .destroy = net_destroy,
    .keeps = net_keeps,
    .rule_broken = net_rule_broken,
    .used = net_used,
    .host = net_host,
    .finish = net_finish,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fv_run(&fv, &net_dev, data, size);
    return 0;
}
