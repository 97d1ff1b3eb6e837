/* virtio-net. See net.h.
 *
 * Locks: rx_lock, tx_lock and ctrl_lock make one handler at a time serve
 * each queue (frames stay in order; the receive side may give chains back
 * with virtio_dev_unpop). rxq_lock guards the frames the backend queued; it
 * is taken alone or inside rx_lock, and never held across a call into the
 * transport or the backend. The configuration's status is an atomic of its
 * own (the announce bit changes on the I/O thread and the control queue's
 * worker while the driver reads it); announce_lock makes the check of the
 * negotiated features and the setting of the bit one step against a reset
 * (taken inside the transport lock: the interrupt is raised after it is
 * released). */
#include "virtio/net.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "net/announce.h"
#include "state/state.h"

/* Feature bits (§5.1.3). */
#define F_CSUM        0
#define F_GUEST_CSUM  1
#define F_MAC         5
#define F_GUEST_TSO4  7
#define F_GUEST_TSO6  8
#define F_HOST_TSO4   11
#define F_HOST_TSO6   12
#define F_MRG_RXBUF   15
#define F_STATUS      16
#define F_CTRL_VQ     17
#define F_GUEST_ANNOUNCE 21

/* struct virtio_net_hdr_v1 (§5.1.6). */
#define HDR_F_NEEDS_CSUM 1u
#define HDR_F_DATA_VALID 2u
#define GSO_NONE  0u
#define GSO_TCPV4 1u
#define GSO_TCPV6 4u
#define NET_S_LINK_UP  1u
#define NET_S_ANNOUNCE 2u

/* The control queue (§5.1.6.5): class, command, data; the ack the device
 * writes. Only VIRTIO_NET_CTRL_ANNOUNCE_ACK is served: the other classes
 * need features this device does not offer (CTRL_RX, CTRL_VLAN, MQ, ...). */
#define CTRL_ANNOUNCE     3u
#define CTRL_ANNOUNCE_ACK 0u
#define CTRL_OK  0u
#define CTRL_ERR 1u

#define RXQ 0u
#define TXQ 1u
#define CTRLQ 2u   /* 2N with N = 1 queue pair (§5.1.2) */
#define ETH_HLEN   14u
#define MAX_PLAIN_FRAME 1518u   /* 1500 bytes of MTU, Ethernet and a VLAN tag */

struct net_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};

_Static_assert(sizeof(struct net_hdr) == NET_VNET_HDR_LEN, "virtio_net_hdr_v1 layout");

struct net_config {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
} __attribute__((packed));

struct rx_frame {
    struct rx_frame *next;
    size_t len;           /* header and frame */
    uint8_t data[];       /* a struct net_hdr, then the frame */
};

struct virtio_net {
    struct net_backend *backend;
    struct virtio_dev *vdev;
    struct net_config config;
    uint64_t offered;                /* device features offered */
    _Atomic bool keep_mac;           /* a load keeps config.mac (a clone's) */
    _Atomic uint16_t status;         /* config.status as the driver reads it */
    bool asked;                      /* announce_lock: ANNOUNCE set by this process
                                        since the load or reset, interrupt raised */

    _Atomic uint64_t features;       /* set at FEATURES_OK */
    _Atomic bool driver_ok;

    pthread_mutex_t rxq_lock;
    struct rx_frame *rx_head, **rx_tail;
    unsigned rxq_frames;
    size_t rxq_bytes;
    bool backend_waiting;            /* told "full": call rx_ready on room */

    pthread_mutex_t rx_lock, tx_lock, ctrl_lock, announce_lock;
    struct vq_elem *rx_elem, *tx_elem, *ctrl_elem;

    _Atomic uint64_t tx_frames, tx_dropped, rx_frames, rx_dropped;
    _Atomic uint64_t tx_bytes, rx_bytes;   /* since the process started (not saved) */
    _Atomic uint64_t announce_frames, announce_requests, announce_acks;   /* ditto */
};

static bool has(uint64_t features, unsigned bit)
{
    return features & (1ull << bit);
}

static void net_config_read(void *dev, uint32_t offset, void *buf, uint32_t len)
{
    struct virtio_net *n = dev;
    struct net_config c = n->config;   /* the MAC changes only at a load (quiesced) */
    c.status = atomic_load(&n->status);
    memcpy(buf, (const uint8_t *)&c + offset, len);
}

/* ---- from the backend's thread ---- */

static bool room_locked(const struct virtio_net *n)
{
    return n->rxq_frames < VIRTIO_NET_RXQ_FRAMES &&
           n->rxq_bytes + NET_VNET_HDR_LEN + NET_MAX_FRAME <= VIRTIO_NET_RXQ_BYTES;
}

static bool port_can_receive(void *opaque)
{
    struct virtio_net *n = opaque;
    if (!n->driver_ok)
        return false;   /* status_changed calls rx_ready at DRIVER_OK */
    pthread_mutex_lock(&n->rxq_lock);
    bool room = room_locked(n);
    if (!room)
        n->backend_waiting = true;
    pthread_mutex_unlock(&n->rxq_lock);
    return room;
}

static int port_receive(void *opaque, const struct iovec *iov, int iovcnt)
{
    struct virtio_net *n = opaque;
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    /* Frames from a plain backend get a header with nothing offloaded. */
    size_t pre = n->backend->vnet_hdr ? 0 : NET_VNET_HDR_LEN;
    size_t total = pre + len;
    if (!n->driver_ok || total < NET_VNET_HDR_LEN + ETH_HLEN ||
        total > NET_VNET_HDR_LEN + NET_MAX_FRAME) {
        n->rx_dropped++;
        return -ENOBUFS;
    }
    struct rx_frame *f = malloc(sizeof(*f) + total);
    if (!f) {
        n->rx_dropped++;
        return -ENOBUFS;
    }
    f->next = NULL;
    f->len = total;
    memset(f->data, 0, pre);
    /* A plain backend's frames are complete and checked (slirp builds every
     * one itself): with GUEST_CSUM the driver may skip verifying them
     * (§5.1.6.4.1). */
    if (pre && has(n->features, F_GUEST_CSUM))
        f->data[0] = HDR_F_DATA_VALID;
    size_t off = pre;
    for (int i = 0; i < iovcnt; i++) {
        memcpy(f->data + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    pthread_mutex_lock(&n->rxq_lock);
    if (!room_locked(n)) {
        n->backend_waiting = true;
        pthread_mutex_unlock(&n->rxq_lock);
        free(f);
        n->rx_dropped++;
        return -ENOBUFS;
    }
    bool was_empty = !n->rx_head;
    *n->rx_tail = f;
    n->rx_tail = &f->next;
    n->rxq_frames++;
    n->rxq_bytes += total;
    pthread_mutex_unlock(&n->rxq_lock);
    /* A non-empty queue is either being served, or waits for the driver's
     * next buffers, whose notification kicks the queue. */
    if (was_empty)
        virtio_dev_kick(n->vdev, RXQ);
    return 0;
}

/* ---- receive queue ---- */

/* Copies `f` into the driver's receive buffers: 1 done, 0 not enough
 * buffers yet (none kept), -1 the frame can't fit and is to be dropped. */
static int rx_deliver(struct virtio_net *n, struct virtio_dev *vdev, const struct rx_frame *f,
                      bool mrg)
{
    struct vq_elem *e = n->rx_elem;
    struct vq_used used[VQ_MAX_SIZE];
    struct iovec numbuf[2];
    int numbuf_cnt = 0;
    unsigned nb = 0;
    size_t off = 0;

    while (off < f->len) {
        if (nb == VQ_MAX_SIZE) {
            virtio_dev_unpop(vdev, RXQ, nb);
            return -1;
        }
        if (virtio_dev_pop(vdev, RXQ, e) != 1) {
            if (nb)
                virtio_dev_unpop(vdev, RXQ, nb);
            return 0;
        }
        const struct iovec *in = e->iov + e->out_num;
        if (nb == 0 && e->in_len < NET_VNET_HDR_LEN) {
            /* No room for the header: useless, give it back empty. */
            struct vq_used u = { .head = e->head, .len = 0 };
            virtio_dev_push_many(vdev, RXQ, &u, 1);
            continue;
        }
        if (!mrg && e->in_len < f->len) {
            virtio_dev_unpop(vdev, RXQ, 1);   /* the next frame may fit */
            return -1;
        }
        size_t k = f->len - off;
        if (k > e->in_len)
            k = e->in_len;
        vq_iov_write(in, e->in_num, 0, f->data + off, k);
        if (nb == 0)
            numbuf_cnt = vq_iov_slice(in, e->in_num, offsetof(struct net_hdr, num_buffers), 2,
                                      numbuf, 2);
        used[nb++] = (struct vq_used){ .head = e->head, .len = (uint32_t)k };
        off += k;
    }
    /* §5.1.6.4: num_buffers, 1 without MRG_RXBUF. Little-endian, as the
     * host. */
    uint16_t num = (uint16_t)nb;
    if (numbuf_cnt > 0)
        vq_iov_write(numbuf, (unsigned)numbuf_cnt, 0, &num, sizeof(num));
    virtio_dev_push_many(vdev, RXQ, used, nb);
    return 1;
}

static void rx_serve(struct virtio_net *n, struct virtio_dev *vdev)
{
    bool mrg = has(n->features, F_MRG_RXBUF);
    pthread_mutex_lock(&n->rx_lock);
    while (n->driver_ok) {
        pthread_mutex_lock(&n->rxq_lock);
        struct rx_frame *f = n->rx_head;   /* only this handler takes frames off */
        pthread_mutex_unlock(&n->rxq_lock);
        if (!f)
            break;
        int r = rx_deliver(n, vdev, f, mrg);
        if (r == 0)
            break;   /* the driver's next buffers bring us back */
        if (r > 0) {
            n->rx_frames++;
            n->rx_bytes += f->len;
        } else
            n->rx_dropped++;
        pthread_mutex_lock(&n->rxq_lock);
        n->rx_head = f->next;
        if (!n->rx_head)
            n->rx_tail = &n->rx_head;
        n->rxq_frames--;
        n->rxq_bytes -= f->len;
        bool wake = n->backend_waiting && room_locked(n);
        if (wake)
            n->backend_waiting = false;
        pthread_mutex_unlock(&n->rxq_lock);
        free(f);
        if (wake)
            n->backend->ops->rx_ready(n->backend);
    }
    pthread_mutex_unlock(&n->rx_lock);
}

/* ---- transmit queue ---- */

/* The Internet checksum (RFC 1071) of `len` bytes, ready to store: the
 * partial sum the driver left in the checksum field is part of the data
 * (§5.1.6.2: the device completes it from csum_start to the end). */
static uint16_t inet_csum(const uint8_t *p, size_t len)
{
    uint64_t sum = 0;
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] | p[i + 1] << 8);   /* in memory order, folded below */
    if (i < len)
        sum += p[i];
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Is this header one the negotiated features allow (§5.1.6.2.1)? */
static bool tx_hdr_ok(uint64_t feat, const struct net_hdr *h, size_t frame_len)
{
    if (h->flags & ~HDR_F_NEEDS_CSUM)
        return false;
    if (h->flags & HDR_F_NEEDS_CSUM) {
        if (!has(feat, F_CSUM) || (size_t)h->csum_start + h->csum_offset + 2 > frame_len)
            return false;
    }
    switch (h->gso_type) {
    case GSO_NONE: return true;
    case GSO_TCPV4: return has(feat, F_HOST_TSO4) && h->gso_size && (h->flags & HDR_F_NEEDS_CSUM);
    case GSO_TCPV6: return has(feat, F_HOST_TSO6) && h->gso_size && (h->flags & HDR_F_NEEDS_CSUM);
    default: return false;   /* UFO, ECN: not offered */
    }
}

static void tx_one(struct virtio_net *n, const struct vq_elem *e, uint64_t feat)
{
    struct iovec iov[1 + VQ_MAX_SIZE];
    struct net_hdr h;

    /* §5.1.6.2: device-writable buffers have no place here; ignore them. */
    if (e->out_len < NET_VNET_HDR_LEN + ETH_HLEN)
        goto drop;
    size_t frame_len = e->out_len - NET_VNET_HDR_LEN;
    size_t max = (has(feat, F_HOST_TSO4) || has(feat, F_HOST_TSO6)) ? NET_MAX_FRAME
                                                                     : MAX_PLAIN_FRAME;
    if (frame_len > max)
        goto drop;
    /* A copy of the header: the guest may rewrite its buffer meanwhile. */
    vq_iov_read(e->iov, e->out_num, 0, &h, sizeof(h));
    if (!tx_hdr_ok(feat, &h, frame_len))
        goto drop;
    int cnt = vq_iov_slice(e->iov, e->out_num, NET_VNET_HDR_LEN, frame_len, iov + 1, VQ_MAX_SIZE);
    if (cnt < 0)
        goto drop;
    int r;
    if (n->backend->vnet_hdr) {
        h.num_buffers = 0;
        iov[0] = (struct iovec){ .iov_base = &h, .iov_len = sizeof(h) };
        r = n->backend->ops->send(n->backend, iov, cnt + 1);
    } else if (h.flags & HDR_F_NEEDS_CSUM) {
        /* The backend wants complete frames: finish the checksum on a copy
         * (the guest's buffer is read-only to the device). */
        uint8_t buf[MAX_PLAIN_FRAME];
        if (frame_len > sizeof(buf))
            goto drop;
        vq_iov_read(iov + 1, (unsigned)cnt, 0, buf, frame_len);
        uint16_t sum = inet_csum(buf + h.csum_start, frame_len - h.csum_start);
        memcpy(buf + h.csum_start + h.csum_offset, &sum, 2);
        struct iovec one = { .iov_base = buf, .iov_len = frame_len };
        r = n->backend->ops->send(n->backend, &one, 1);
    } else {
        r = n->backend->ops->send(n->backend, iov + 1, cnt);
    }
    if (r)
        goto drop;
    n->tx_frames++;
    n->tx_bytes += frame_len;
    return;
drop:
    n->tx_dropped++;
}

static void tx_serve(struct virtio_net *n, struct virtio_dev *vdev)
{
    uint64_t feat = n->features;
    pthread_mutex_lock(&n->tx_lock);
    while (virtio_dev_pop(vdev, TXQ, n->tx_elem) == 1) {
        tx_one(n, n->tx_elem, feat);
        /* Sent (copied or written out) or dropped: the buffer is free. */
        virtio_dev_push(vdev, TXQ, n->tx_elem, 0);
    }
    pthread_mutex_unlock(&n->tx_lock);
}

/* ---- control queue ---- */

static uint8_t ctrl_command(struct virtio_net *n, uint8_t class, uint8_t cmd, size_t data_len)
{
    /* §5.1.6.5.4: the driver took the announcement; it is no longer
     * pending. */
    if (class == CTRL_ANNOUNCE && cmd == CTRL_ANNOUNCE_ACK && !data_len &&
        has(n->features, F_GUEST_ANNOUNCE)) {
        atomic_fetch_and(&n->status, (uint16_t)~NET_S_ANNOUNCE);
        n->announce_acks++;
        return CTRL_OK;
    }
    return CTRL_ERR;
}

static void ctrl_serve(struct virtio_net *n, struct virtio_dev *vdev)
{
    pthread_mutex_lock(&n->ctrl_lock);
    struct vq_elem *e = n->ctrl_elem;
    while (virtio_dev_pop(vdev, CTRLQ, e) == 1) {
        /* §5.1.6.5: class and command readable, the ack the first
         * writable byte. Without them the driver broke the rules. */
        if (e->out_len < 2 || e->in_len < 1) {
            virtio_dev_needs_reset(vdev);
            break;
        }
        uint8_t h[2];
        vq_iov_read(e->iov, e->out_num, 0, h, 2);
        uint8_t ack = ctrl_command(n, h[0], h[1], e->out_len - 2);
        vq_iov_write(e->iov + e->out_num, e->in_num, 0, &ack, 1);
        virtio_dev_push(vdev, CTRLQ, e, 1);
    }
    pthread_mutex_unlock(&n->ctrl_lock);
}

static void net_queue_notify(void *dev, struct virtio_dev *vdev, unsigned q)
{
    struct virtio_net *n = dev;
    if (q == RXQ)
        rx_serve(n, vdev);
    else if (q == TXQ)
        tx_serve(n, vdev);
    else if (q == CTRLQ)
        ctrl_serve(n, vdev);
}

/* ---- life cycle ---- */

static void net_features_ok(void *dev, uint64_t features)
{
    struct virtio_net *n = dev;
    n->features = features;
    if (n->backend->vnet_hdr) {
        unsigned off = 0;
        if (has(features, F_GUEST_CSUM))
            off |= NET_OFFLOAD_CSUM;
        if (has(features, F_GUEST_TSO4))
            off |= NET_OFFLOAD_TSO4;
        if (has(features, F_GUEST_TSO6))
            off |= NET_OFFLOAD_TSO6;
        /* On failure the host sends complete frames, which every guest takes. */
        n->backend->ops->set_offload(n->backend, off);
    }
}

static void flush_rxq(struct virtio_net *n)
{
    pthread_mutex_lock(&n->rxq_lock);
    struct rx_frame *f = n->rx_head;
    n->rx_head = NULL;
    n->rx_tail = &n->rx_head;
    n->rxq_frames = 0;
    n->rxq_bytes = 0;
    pthread_mutex_unlock(&n->rxq_lock);
    while (f) {
        struct rx_frame *next = f->next;
        free(f);
        f = next;
    }
}

static void net_status_changed(void *dev, uint8_t status)
{
    struct virtio_net *n = dev;
    bool ok = (status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
    bool was = n->driver_ok;
    n->driver_ok = ok;
    if (ok && !was)
        n->backend->ops->rx_ready(n->backend);   /* start reading */
}

static void net_reset(void *dev)
{
    struct virtio_net *n = dev;
    pthread_mutex_lock(&n->announce_lock);
    n->driver_ok = false;
    n->features = 0;
    n->status = NET_S_LINK_UP;
    n->asked = false;
    pthread_mutex_unlock(&n->announce_lock);
    if (n->backend->vnet_hdr)
        n->backend->ops->set_offload(n->backend, 0);
    flush_rxq(n);
}

static void free_card(struct virtio_net *n)
{
    free(n->rx_elem);
    free(n->tx_elem);
    free(n->ctrl_elem);
    pthread_mutex_destroy(&n->rxq_lock);
    pthread_mutex_destroy(&n->rx_lock);
    pthread_mutex_destroy(&n->tx_lock);
    pthread_mutex_destroy(&n->ctrl_lock);
    pthread_mutex_destroy(&n->announce_lock);
    free(n);
}

static void net_destroy(void *dev)
{
    struct virtio_net *n = dev;
    n->driver_ok = false;
    net_backend_close(n->backend);   /* joins the backend's thread */
    flush_rxq(n);
    free_card(n);
}

/* ---- snapshots ---- */

/* Section "virtio-net"[instance] v1.0:
 *   mac[6], u16 status (LINK_UP, and ANNOUNCE while the driver has not
 *   acknowledged an announcement), u64 negotiated features (the device's
 *   copy),
 *   u64 tx_frames, tx_dropped, rx_frames, rx_dropped,
 *   u8 n + n chars: the backend's name ("user", "tap"),
 *   u8 the backend wrote its own section (ops->state_tag, same instance),
 *   u32 frames held for the guest, then each: u32 length, the bytes (a
 *   virtio_net_hdr_v1 and the frame).
 * Nothing else is held between handler calls: a receive handler fills a
 * frame's buffers (mergeable or not) and pushes them in one call, or gives
 * them all back (virtio_dev_unpop); the transmit handler completes each
 * chain. So no chain is outstanding and no buffer partly filled. */
static int net_save(void *dev, struct virtio_dev *vdev, struct state_writer *w, uint32_t instance)
{
    struct virtio_net *n = dev;
    const struct net_backend_ops *bops = n->backend->ops;
    (void)vdev;
    bool bsec = bops->save != NULL;
    int ret = bsec ? bops->save(n->backend, w, instance) : 0;
    if (ret)
        return ret;
    state_begin(w, VIRTIO_NET_STATE_TAG, instance, VIRTIO_NET_STATE_MAJOR, VIRTIO_NET_STATE_MINOR);
    state_put_bytes(w, n->config.mac, 6);
    state_put_u16(w, n->status);
    state_put_u64(w, n->features);
    state_put_u64(w, n->tx_frames);
    state_put_u64(w, n->tx_dropped);
    state_put_u64(w, n->rx_frames);
    state_put_u64(w, n->rx_dropped);
    size_t nl = strlen(bops->name);
    state_put_u8(w, (uint8_t)nl);
    state_put_bytes(w, bops->name, nl);
    state_put_u8(w, bsec);
    /* The backend's thread may still queue frames: those after this point
     * are, for the snapshot, frames the wire lost. */
    pthread_mutex_lock(&n->rxq_lock);
    state_put_u32(w, n->rxq_frames);
    for (const struct rx_frame *f = n->rx_head; f; f = f->next) {
        state_put_u32(w, (uint32_t)f->len);
        state_put_bytes(w, f->data, f->len);
    }
    pthread_mutex_unlock(&n->rxq_lock);
    return state_end(w);
}

/* Could this device have queued header `h` for a `len`-byte frame with
 * `feat` negotiated (port_receive; a vnet_hdr backend offloads only what
 * set_offload allowed)? */
static bool rx_hdr_ok(uint64_t feat, const struct net_hdr *h, size_t len)
{
    if (h->flags & ~(HDR_F_NEEDS_CSUM | HDR_F_DATA_VALID))
        return false;
    if (h->flags && !has(feat, F_GUEST_CSUM))
        return false;
    if ((h->flags & HDR_F_NEEDS_CSUM) && (size_t)h->csum_start + h->csum_offset + 2 > len)
        return false;
    switch (h->gso_type) {
    case GSO_NONE: return true;
    case GSO_TCPV4: return has(feat, F_GUEST_TSO4);
    case GSO_TCPV6: return has(feat, F_GUEST_TSO6);
    default: return false;
    }
}

static void free_frames(struct rx_frame *f)
{
    while (f) {
        struct rx_frame *next = f->next;
        free(f);
        f = next;
    }
}

static int net_load(void *dev, struct virtio_dev *vdev, const struct state_reader *r,
                    uint32_t instance, char *err, size_t errlen)
{
    struct virtio_net *n = dev;
    const struct net_backend_ops *bops = n->backend->ops;
    struct state_section s;
    uint8_t mac[6];
    uint16_t status;
    uint64_t feat, cnt[4];
    uint8_t nl;
    char bname[16] = "";
    bool bsec;
    uint32_t nframes;
    struct rx_frame *head = NULL, **tail = &head;
    size_t bytes = 0;
    (void)vdev;
    int ret = state_reader_section(r, VIRTIO_NET_STATE_TAG, instance, VIRTIO_NET_STATE_MAJOR, &s,
                                   err, errlen);
    if (ret)
        return ret;
    state_get_bytes(&s, mac, 6);
    state_get_u16(&s, &status);
    state_get_u64(&s, &feat);
    for (int i = 0; i < 4; i++)
        state_get_u64(&s, &cnt[i]);
    state_get_u8(&s, &nl);
    if (nl == 0 || nl >= sizeof(bname))
        return state_section_error(&s, err, errlen, -EINVAL, "backend name of %u characters", nl);
    state_get_bytes(&s, bname, nl);
    for (unsigned i = 0; i < nl; i++)
        if (bname[i] < 'a' || bname[i] > 'z')
            return state_section_error(&s, err, errlen, -EINVAL, "backend name is not [a-z]+");
    state_get_bool(&s, &bsec);
    state_get_u32(&s, &nframes);
    if (s.overrun || s.bad_bool)
        return state_section_done(&s, err, errlen);
    if (mac[0] & 1)
        return state_section_error(&s, err, errlen, -EINVAL, "multicast MAC %02x:%02x:%02x:%02x:%02x:%02x",
                                   mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    if ((status & ~NET_S_ANNOUNCE) != NET_S_LINK_UP ||
        ((status & NET_S_ANNOUNCE) && !has(feat, F_GUEST_ANNOUNCE)))
        return state_section_error(&s, err, errlen, -EINVAL, "link status 0x%x", status);
    if (feat & ~n->offered)
        return state_section_error(&s, err, errlen, -EINVAL,
                                   "features 0x%llx not offered by this card (0x%llx; another backend?)",
                                   (unsigned long long)feat, (unsigned long long)n->offered);
    /* The device's copy is the driver's features from FEATURES_OK on, 0
     * before (net_features_ok, net_reset). */
    uint8_t tst = 0;
    uint64_t tfeat = 0;
    if (virtio_mmio_saved_features(r, instance, &tst, &tfeat) == 0 &&
        feat != ((tst & VIRTIO_STATUS_FEATURES_OK) ? tfeat : 0))
        return state_section_error(&s, err, errlen, -EINVAL,
                                   "features 0x%llx disagree with the transport's (0x%llx, status 0x%x)",
                                   (unsigned long long)feat, (unsigned long long)tfeat, tst);
    if (nframes > VIRTIO_NET_RXQ_FRAMES)
        return state_section_error(&s, err, errlen, -EINVAL, "%u frames held, at most %u", nframes,
                                   VIRTIO_NET_RXQ_FRAMES);
    ret = -EINVAL;
    for (uint32_t i = 0; i < nframes; i++) {
        uint32_t len;
        state_get_u32(&s, &len);
        if (s.overrun) {
            ret = state_section_done(&s, err, errlen);
            goto fail;
        }
        if (len < NET_VNET_HDR_LEN + ETH_HLEN || len > NET_VNET_HDR_LEN + NET_MAX_FRAME ||
            bytes + len > VIRTIO_NET_RXQ_BYTES || len > s.len - s.pos) {
            state_section_error(&s, err, errlen, ret, "held frame %u: %u bytes", i, len);
            goto fail;
        }
        struct rx_frame *f = malloc(sizeof(*f) + len);
        if (!f) {
            ret = state_section_error(&s, err, errlen, -ENOMEM, "out of memory");
            goto fail;
        }
        f->next = NULL;
        f->len = len;
        *tail = f;
        tail = &f->next;
        bytes += len;
        state_get_bytes(&s, f->data, len);
        struct net_hdr h;
        memcpy(&h, f->data, sizeof(h));
        if (!rx_hdr_ok(feat, &h, len - NET_VNET_HDR_LEN)) {
            state_section_error(&s, err, errlen, ret,
                                "held frame %u: header (flags 0x%x, gso %u) not allowed by features 0x%llx",
                                i, h.flags, h.gso_type, (unsigned long long)feat);
            goto fail;
        }
    }
    if ((ret = state_section_done(&s, err, errlen)))
        goto fail;
    /* The backend's state last among the checks: it applies itself when it
     * accepts. A different backend (the options changed) starts afresh. */
    if (bsec && bops->load && !strcmp(bname, bops->name) &&
        (ret = bops->load(n->backend, r, instance, err, errlen)))
        goto fail;

    if (!n->keep_mac)
        memcpy(n->config.mac, mac, 6);
    pthread_mutex_lock(&n->announce_lock);
    n->status = status;
    n->asked = false;   /* a pending request is raised again (virtio_net_announce) */
    pthread_mutex_unlock(&n->announce_lock);
    n->tx_frames = cnt[0];
    n->tx_dropped = cnt[1];
    n->rx_frames = cnt[2];
    n->rx_dropped = cnt[3];
    pthread_mutex_lock(&n->rx_lock);   /* no handler runs: quiesced */
    pthread_mutex_lock(&n->rxq_lock);
    struct rx_frame *old = n->rx_head;
    n->rx_head = head;
    n->rx_tail = head ? tail : &n->rx_head;
    n->rxq_frames = nframes;
    n->rxq_bytes = bytes;
    n->backend_waiting = true;   /* rx_ready once there is room */
    pthread_mutex_unlock(&n->rxq_lock);
    pthread_mutex_unlock(&n->rx_lock);
    free_frames(old);
    /* The offloads the guest accepted, on the (new) host side: the transport
     * calls features_ok again when FEATURES_OK is set. */
    net_features_ok(n, feat);
    return 0;
fail:
    free_frames(head);
    return ret;
}

void virtio_net_keep_mac_on_load(struct virtio_dev *vdev, bool keep)
{
    struct virtio_net *n = virtio_dev_priv(vdev);
    n->keep_mac = keep;
}

void virtio_net_get_mac(struct virtio_dev *vdev, uint8_t mac[6])
{
    struct virtio_net *n = virtio_dev_priv(vdev);
    memcpy(mac, n->config.mac, 6);   /* fixed after create or load */
}

static const struct virtio_device_ops net_ops = {
    .name = "net",
    .device_id = VIRTIO_ID_NET,
    .config_read = net_config_read,
    .queue_notify = net_queue_notify,
    .status_changed = net_status_changed,
    .features_ok = net_features_ok,
    .reset = net_reset,
    .destroy = net_destroy,
    .save = net_save,
    .load = net_load,
};

void virtio_net_get_stats(struct virtio_dev *vdev, struct virtio_net_stats *out)
{
    struct virtio_net *n = virtio_dev_priv(vdev);
    *out = (struct virtio_net_stats){
        .tx_frames = n->tx_frames, .tx_dropped = n->tx_dropped,
        .rx_frames = n->rx_frames, .rx_dropped = n->rx_dropped,
        .tx_bytes = n->tx_bytes, .rx_bytes = n->rx_bytes,
        .announce_frames = n->announce_frames, .announce_requests = n->announce_requests,
        .announce_acks = n->announce_acks,
    };
}

int virtio_net_announce(struct virtio_dev *vdev)
{
    struct virtio_net *n = virtio_dev_priv(vdev);
    if (n->keep_mac)
        return 0;   /* a clone: its driver still uses the saved MAC (header) */
    uint8_t buf[NET_VNET_HDR_LEN + NET_ANNOUNCE_FRAME_LEN] = { 0 };
    net_announce_frame(n->config.mac, buf + NET_VNET_HDR_LEN);
    /* A vnet-header backend gets a header that offloads nothing. */
    size_t pre = n->backend->vnet_hdr ? 0 : NET_VNET_HDR_LEN;
    struct iovec iov = { .iov_base = buf + pre, .iov_len = sizeof(buf) - pre };
    int r = n->backend->ops->send(n->backend, &iov, 1);
    if (!r)
        n->announce_frames++;
    /* §5.1.6.5.4: the guest sends its own gratuitous packets (ARP, IPv6
     * neighbour advertisements: it knows its addresses, the host does not).
     * Asked once more only after it acknowledged the last request; a
     * request pending in a loaded state (saved before its interrupt was
     * raised, perhaps) is raised again. */
    bool ask = false;
    pthread_mutex_lock(&n->announce_lock);
    if (n->driver_ok && has(n->features, F_GUEST_ANNOUNCE)) {
        ask = !(atomic_fetch_or(&n->status, NET_S_ANNOUNCE) & NET_S_ANNOUNCE) || !n->asked;
        n->asked = true;
    }
    pthread_mutex_unlock(&n->announce_lock);
    if (ask) {
        n->announce_requests++;
        virtio_dev_config_changed(vdev);
    }
    return r;
}

int virtio_net_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                      struct net_backend *backend, const uint8_t mac[6], struct virtio_dev **out)
{
    if (!backend || !mac || !out)
        return -EINVAL;
    struct virtio_net *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    pthread_mutex_init(&n->rxq_lock, NULL);
    pthread_mutex_init(&n->rx_lock, NULL);
    pthread_mutex_init(&n->tx_lock, NULL);
    pthread_mutex_init(&n->ctrl_lock, NULL);
    pthread_mutex_init(&n->announce_lock, NULL);
    n->rx_elem = malloc(sizeof(*n->rx_elem));
    n->tx_elem = malloc(sizeof(*n->tx_elem));
    n->ctrl_elem = malloc(sizeof(*n->ctrl_elem));
    if (!n->rx_elem || !n->tx_elem || !n->ctrl_elem) {
        free_card(n);
        return -ENOMEM;
    }
    n->backend = backend;
    n->rx_tail = &n->rx_head;
    memcpy(n->config.mac, mac, 6);
    n->status = NET_S_LINK_UP;
    n->config.max_virtqueue_pairs = 1;

    /* Checksums both ways for every backend: a plain one gets them completed
     * by the device (tx) and vouched for (rx, DATA_VALID); segmentation
     * only where the backend takes it. The control queue serves only the
     * guest's acknowledgement of an announcement (GUEST_ANNOUNCE). */
    uint64_t features = (1ull << F_MAC) | (1ull << F_STATUS) | (1ull << F_MRG_RXBUF) |
                        (1ull << F_CSUM) | (1ull << F_GUEST_CSUM) | (1ull << F_CTRL_VQ) |
                        (1ull << F_GUEST_ANNOUNCE);
    if (backend->vnet_hdr)
        features |= (1ull << F_CSUM) | (1ull << F_GUEST_CSUM) | (1ull << F_HOST_TSO4) |
                    (1ull << F_HOST_TSO6) | (1ull << F_GUEST_TSO4) | (1ull << F_GUEST_TSO6);
    n->offered = features | (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) |
                 (1ull << VIRTIO_F_EVENT_IDX);
    struct virtio_device_params p = {
        .ops = &net_ops, .dev = n, .features = features, .config_size = sizeof(n->config),
        .num_queues = 3, .queue_max = VQ_MAX_SIZE, .nworkers = 2,
    };
    struct virtio_dev *vdev;
    int r = virtio_mmio_create(mem, base, irq, &p, &vdev);
    if (r) {
        free_card(n);   /* the caller still owns the backend */
        return r;
    }
    n->vdev = vdev;
    struct net_rx_port port = { .receive = port_receive, .can_receive = port_can_receive,
                                .opaque = n };
    r = backend->ops->start(backend, &port);
    if (r) {
        /* The transport owns the device now: destroying it closes the
         * backend, so hand it back to the caller first. */
        n->backend = NULL;
        virtio_mmio_destroy(vdev);
        return r;
    }
    *out = vdev;
    return 0;
}
