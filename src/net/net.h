/* Network backends: the host side of a virtual network card (user-mode NAT
 * through libslirp, a tap interface).
 *
 * Three layers, three ops tables (STYLE.md): the virtio-mmio transport calls
 * virtio-net, which calls a backend through `struct net_backend_ops`. A
 * backend knows nothing about virtio; virtio-net knows nothing about slirp or
 * tun.
 *
 * Frames. With `vnet_hdr` set, every frame in both directions starts with a
 * 12-byte struct virtio_net_hdr_v1 (VIRTIO 1.2 §5.1.6: flags, gso_type,
 * hdr_len, gso_size, csum_start, csum_offset, num_buffers), so checksum and
 * segmentation offloads pass through (tap). Without it, frames are plain
 * Ethernet frames whose checksums are complete and which are no larger than
 * the MTU (slirp): virtio-net then offers the guest no offloads.
 *
 * Receiving. Each backend runs a thread of its own that polls what it needs
 * (the tap fd; slirp's sockets and timers) and hands each frame for the
 * guest to the device through `struct net_rx_port`. The device queues a
 * bounded number of frames; while its queue is full the backend stops
 * reading (a tap's kernel queue then fills and drops; slirp stops reading
 * its sockets, so host TCP peers are flow-controlled) until the device calls
 * ops->rx_ready().
 *
 * Threads: net_*_open and ops->close on the machine's control thread;
 * ops->start once, before the guest runs; ops->send, ops->rx_ready and
 * ops->set_offload from any thread (the device's workers, the transport under
 * its lock), concurrently with the backend's thread. close stops the thread;
 * no other op may be running then.
 *
 * Errors: ops return 0 or -errno; open returns -errno with one line naming
 * the option in `err`. */
#ifndef NIMBUS_NET_NET_H
#define NIMBUS_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define NET_VNET_HDR_LEN 12u            /* struct virtio_net_hdr_v1 */
#define NET_MAX_FRAME    (65535u + 18u) /* a 64 KiB GSO packet + Ethernet/VLAN header */

/* Offloads the guest can take (VIRTIO_NET_F_GUEST_*): what a vnet_hdr
 * backend may hand the device. Bits for ops->set_offload. */
#define NET_OFFLOAD_CSUM 1u    /* partial checksums (NEEDS_CSUM) */
#define NET_OFFLOAD_TSO4 2u
#define NET_OFFLOAD_TSO6 4u

/* The device side, given to the backend by ops->start. */
struct net_rx_port {
    /* Queues one frame for the guest (the backend's thread). Returns 0, or
     * -ENOBUFS when the device's queue is full and the frame was dropped. */
    int (*receive)(void *opaque, const struct iovec *iov, int iovcnt);
    /* Room for another frame? A backend polls its sources only when so. */
    bool (*can_receive)(void *opaque);
    void *opaque;
};

struct net_backend;
struct state_writer;
struct state_reader;

struct net_backend_ops {
    const char *name;   /* "user", "tap" */
    /* Starts the backend's thread, which delivers frames through `port`. */
    int (*start)(struct net_backend *b, const struct net_rx_port *port);
    /* Sends one frame from the guest (with its vnet header when
     * b->vnet_hdr). 0 sent or dropped by the host side as a network may
     * drop; -errno when the backend failed. May wait briefly for room. */
    int (*send)(struct net_backend *b, const struct iovec *iov, int iovcnt);
    /* The device has room again: resume reading. */
    void (*rx_ready)(struct net_backend *b);
    /* The NET_OFFLOAD_* set the guest accepts (only with vnet_hdr). */
    int (*set_offload)(struct net_backend *b, unsigned offloads);
    /* Stops the thread, closes everything, frees the backend. */
    void (*close)(struct net_backend *b);
    /* Snapshots (optional: NULL for a backend with nothing guest-visible,
     * tap). Called by virtio-net's save/load on the control thread with
     * the device quiesced; the backend's thread may be running and is
     * kept out of the backend's state meanwhile.
     * save: writes the backend's section `state_tag`[instance]; returns
     * the writer's error.
     * load: checks section `state_tag`[instance] and applies it; on
     * refusal (-errno, one line in err) nothing changed. */
    const char *state_tag;
    int (*save)(struct net_backend *b, struct state_writer *w, uint32_t instance);
    int (*load)(struct net_backend *b, const struct state_reader *r, uint32_t instance,
                char *err, size_t errlen);
};

/* What every backend starts with; backends embed it first. */
struct net_backend {
    const struct net_backend_ops *ops;
    bool vnet_hdr;      /* frames carry a virtio_net_hdr_v1 (offloads) */
};

/* One host port forwarded into the guest (slirp's hostfwd). */
struct net_hostfwd {
    bool udp;
    uint32_t host_addr;   /* IPv4, network byte order */
    uint16_t host_port;
    uint32_t guest_addr;  /* IPv4, network byte order */
    uint16_t guest_port;
};

#define NET_MAX_HOSTFWD 16u

struct net_user_options {
    struct net_hostfwd fwd[NET_MAX_HOSTFWD];
    unsigned nfwd;
};

/* Parses QEMU's `[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT` (the
 * value of hostfwd=). An empty HOSTADDR is 127.0.0.1 (QEMU listens on every
 * address; give 0.0.0.0 for that), an empty GUESTADDR is 10.0.2.15. Returns 0
 * or -EINVAL with a message in err. Any thread. */
int net_parse_hostfwd(const char *s, struct net_hostfwd *out, char *err, size_t errlen);

/* Snapshot section of the user backend (docs/architecture.md "State
 * format"): libslirp's own state (slirp_state_save: DHCP leases, IP id). */
#define NET_USER_STATE_TAG   "net-user"
#define NET_USER_STATE_MAJOR 1
#define NET_USER_STATE_MINOR 0

/* User-mode networking through libslirp (QEMU's addresses: network
 * 10.0.2.0/24, gateway and host 10.0.2.2, DNS 10.0.2.3, DHCP from
 * 10.0.2.15), with the host ports in `opts` forwarded. */
int net_user_open(const struct net_user_options *opts, struct net_backend **out, char *err,
                  size_t errlen);

/* A tap interface `ifname` (created if missing and allowed), with
 * IFF_VNET_HDR so offloads pass through. */
int net_tap_open(const char *ifname, struct net_backend **out, char *err, size_t errlen);

/* The same on a tap descriptor opened and attached by a more privileged
 * process (docs/security.md), so this one needs no CAP_NET_ADMIN nor
 * /dev/net/tun: `fd` must be a /dev/net/tun descriptor attached to a tap
 * interface (TUNGETIFF) with IFF_TAP, IFF_NO_PI and IFF_VNET_HDR, open for
 * reading and writing. The backend takes a duplicate; the interface's name
 * goes to ifname. Returns 0 or -errno with a message (-EINVAL: not such a
 * descriptor). */
int net_tap_open_fd(int fd, char ifname[16], struct net_backend **out, char *err,
                    size_t errlen);

static inline void net_backend_close(struct net_backend *b)
{
    if (b)
        b->ops->close(b);
}

#endif
