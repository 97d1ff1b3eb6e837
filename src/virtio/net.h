/* virtio-net (VIRTIO 1.2 §5.1, device id 1) over a network backend
 * (net/net.h: user-mode NAT through libslirp, tap).
 *
 * One receive queue (0), one transmit queue (1) and the control queue (2).
 * Features: MAC, STATUS (the link is always up), MRG_RXBUF (a frame may
 * span several receive chains, §5.1.6.4), CTRL_VQ and GUEST_ANNOUNCE (see
 * virtio_net_announce; the control queue takes only
 * VIRTIO_NET_CTRL_ANNOUNCE_ACK and answers VIRTIO_NET_ERR to any other
 * command), CSUM and GUEST_CSUM; with a backend that carries vnet
 * headers (tap) also HOST_TSO4/6 and GUEST_TSO4/6, the offloads passing
 * through to the host kernel. A backend without them (slirp) gets only
 * complete frames: the device finishes the checksums the guest left
 * partial, and marks the backend's frames DATA_VALID (slirp builds each
 * one, checksums included); segmentation stays the guest's (UFO is off
 * everywhere).
 *
 * Transmit: each chain is a 12-byte virtio_net_hdr_v1 and a frame. A chain
 * shorter than the header plus an Ethernet header, a frame larger than
 * NET_MAX_FRAME (or than 1518 bytes without HOST_TSO), or a header asking
 * for an offload that was not negotiated is dropped and counted; the chain
 * is returned either way.
 * Receive: the backend's thread queues frames (at most
 * VIRTIO_NET_RXQ_FRAMES frames and VIRTIO_NET_RXQ_BYTES bytes; beyond, the
 * backend stops reading) and kicks the receive queue; a worker copies them
 * into the driver's buffers as they come. A frame too large for the
 * buffers of a driver without MRG_RXBUF is dropped.
 *
 * Threads: two workers; one handler at a time per queue (frames stay in
 * order). create/destroy on the machine's control thread. */
#ifndef NIMBUS_VIRTIO_NET_H
#define NIMBUS_VIRTIO_NET_H

#include "net/net.h"
#include "virtio/virtio_mmio.h"

#define VIRTIO_ID_NET          1u
#define VIRTIO_NET_RXQ_FRAMES  2048u
#define VIRTIO_NET_RXQ_BYTES   (4u << 20)

struct virtio_net_stats {
    uint64_t tx_frames, tx_dropped;   /* guest -> backend */
    uint64_t rx_frames, rx_dropped;   /* backend -> guest */
    uint64_t tx_bytes, rx_bytes;      /* frames' bytes (no virtio header) */
    /* Announcements by this process (virtio_net_announce): RARP frames the
     * backend took, the guest asked to announce itself, its acks. */
    uint64_t announce_frames, announce_requests, announce_acks;
};

/* Creates the card at `base` with MAC address `mac` and starts the
 * backend. On success the device owns `backend` and closes it when
 * destroyed. Returns 0 or -errno. */
int virtio_net_create(struct guest_mem *mem, uint64_t base, struct irq_line irq,
                      struct net_backend *backend, const uint8_t mac[6], struct virtio_dev **out);

/* Snapshots (docs/architecture.md "State format"): section "virtio-net"
 * (the card and the frames it holds for the guest) and the backend's own
 * ("net-user": libslirp's DHCP leases and IP id; a tap has none, its
 * offloads are set again from the negotiated features). */
#define VIRTIO_NET_STATE_TAG   "virtio-net"
#define VIRTIO_NET_STATE_MAJOR 1
#define VIRTIO_NET_STATE_MINOR 0

/* A load normally restores the saved MAC address. With `keep` set, it keeps
 * the card's own (the one it was created with: a clone's fresh address)
 * and only checks the saved one. The guest's driver read the MAC at probe
 * and goes on using the old one until it probes again (a reboot, or
 * unbinding the driver); the configuration space shows the new one at
 * once. Thread: the control thread, before the load. */
void virtio_net_keep_mac_on_load(struct virtio_dev *vdev, bool keep);

/* The MAC in the card's configuration space (what the guest's driver reads
 * when it probes the card). Any thread. */
void virtio_net_get_mac(struct virtio_dev *vdev, uint8_t mac[6]);

/* One round of announcing the card on its network (net/announce.h): a
 * gratuitous RARP for its MAC through the backend and, if the driver
 * negotiated GUEST_ANNOUNCE and has acknowledged the last request, the
 * VIRTIO_NET_S_ANNOUNCE status bit and a configuration change interrupt,
 * so the guest sends its own gratuitous ARPs and acknowledges with
 * VIRTIO_NET_CTRL_ANNOUNCE_ACK (VIRTIO 1.2 §5.1.6.5.4), which clears the
 * bit. Does nothing for a card that kept its own MAC at a load (a clone,
 * virtio_net_keep_mac_on_load): its driver goes on using the saved MAC,
 * the original VM's, which must not be announced from here. Returns 0 or
 * the backend's -errno. Any thread (the VM's I/O thread). */
int virtio_net_announce(struct virtio_dev *vdev);

/* Counters, for tests. Any thread. */
void virtio_net_get_stats(struct virtio_dev *vdev, struct virtio_net_stats *out);

#endif
