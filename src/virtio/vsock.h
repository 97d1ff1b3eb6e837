/* virtio-vsock (VIRTIO 1.2 §5.10, device id 19): stream sockets between the
 * guest (CID >= 3) and the host (CID 2), whose side is AF_UNIX sockets in
 * the style of Firecracker:
 *
 *  - host-initiated: a host program connects to the unix socket `path` and
 *    writes "CONNECT PORT\n"; the device sends the guest a REQUEST for PORT
 *    from a fresh host port; when the guest's listener answers (RESPONSE),
 *    the program reads "OK HOSTPORT\n" and the stream is relayed both ways.
 *    A refused connection (RST) closes the program's socket.
 *  - guest-initiated: a guest connection to CID 2 port P is connected to the
 *    unix socket "PATH_P" if something listens there, else refused (RST).
 *
 * Streams only (VIRTIO_VSOCK_TYPE_STREAM), credit-based flow control both
 * ways (§5.10.6.3): the device advertises VIRTIO_VSOCK_BUF_ALLOC bytes per
 * connection and never buffers more than that in either direction; a guest
 * that sends beyond its credit loses the connection (RST). SHUTDOWN is
 * relayed as a half-close of the unix socket; a device reset drops every
 * connection and, when there were some, the driver gets a TRANSPORT_RESET
 * event on the event queue when it comes back (§5.10.6.7).
 *
 * A hostile guest: every header is checked (source CID the guest's, target
 * CID 2, type, op, len against the buffer and VIRTIO_VSOCK_MAX_PKT); bad
 * packets are dropped or answered with RST; at most VIRTIO_VSOCK_MAX_CONNS
 * connections (and VIRTIO_VSOCK_MAX_PENDING host clients still sending their
 * CONNECT line) exist at once, and RST replies queue in a bounded ring (the
 * transmit queue waits while it is full). So memory stays bounded: about
 * 2 * BUF_ALLOC per connection.
 *
 * Threads: create/destroy on the machine's control thread. The device owns
 * one host thread (epoll) that does all reads and writes of the unix
 * sockets; the transport's worker moves packets between the queues and the
 * connections' buffers (and opens the non-blocking unix connection for a
 * guest REQUEST). Harts only ever wake the worker. */
#ifndef NIMBUS_VIRTIO_VSOCK_H
#define NIMBUS_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "virtio/virtio_mmio.h"

#define VIRTIO_ID_VSOCK            19u
#define VIRTIO_VSOCK_HOST_CID      2u
#define VIRTIO_VSOCK_BUF_ALLOC     (64u * 1024u)   /* per connection and direction */
#define VIRTIO_VSOCK_MAX_PKT       (64u * 1024u)   /* payload of one packet */
#define VIRTIO_VSOCK_MAX_CONNS     64u
#define VIRTIO_VSOCK_MAX_PENDING   16u             /* host clients before CONNECT */
#define VIRTIO_VSOCK_RST_RING      64u
#define VIRTIO_VSOCK_HOST_PORT0    0x40000000u     /* first port of host-initiated connections */

/* Packet header (§5.10.6), little-endian. */
struct virtio_vsock_hdr {
    uint64_t src_cid;
    uint64_t dst_cid;
    uint32_t src_port;
    uint32_t dst_port;
    uint32_t len;
    uint16_t type;
    uint16_t op;
    uint32_t flags;
    uint32_t buf_alloc;
    uint32_t fwd_cnt;
} __attribute__((packed));

#define VIRTIO_VSOCK_TYPE_STREAM 1u
enum {
    VIRTIO_VSOCK_OP_INVALID = 0,
    VIRTIO_VSOCK_OP_REQUEST = 1,
    VIRTIO_VSOCK_OP_RESPONSE = 2,
    VIRTIO_VSOCK_OP_RST = 3,
    VIRTIO_VSOCK_OP_SHUTDOWN = 4,
    VIRTIO_VSOCK_OP_RW = 5,
    VIRTIO_VSOCK_OP_CREDIT_UPDATE = 6,
    VIRTIO_VSOCK_OP_CREDIT_REQUEST = 7,
};
#define VIRTIO_VSOCK_SHUTDOWN_RCV  1u
#define VIRTIO_VSOCK_SHUTDOWN_SEND 2u
#define VIRTIO_VSOCK_EVENT_TRANSPORT_RESET 0u

/* Snapshots (docs/architecture.md "State format"): connections do not
 * follow (their host side is this process's unix sockets); a load drops
 * them all and sends the driver VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, after
 * which it re-reads guest_cid: the loading device's own CID. */
#define VIRTIO_VSOCK_STATE_TAG   "virtio-vsock"
#define VIRTIO_VSOCK_STATE_MAJOR 1
#define VIRTIO_VSOCK_STATE_MINOR 0

/* Creates the device for guest CID `cid` with its host socket at `path`
 * (a stale socket file there is replaced; a live one is -EADDRINUSE).
 * Returns 0 or -errno with a one-line message in err. */
int virtio_vsock_create(struct guest_mem *mem, uint64_t base, struct irq_line irq, uint64_t cid,
                        const char *path, struct virtio_dev **out, char *err, size_t errlen);

/* A host client inside this process: a connected stream socket that works
 * as one connected to the device's unix socket ("CONNECT PORT\n", then
 * "OK HOSTPORT\n" and the stream), without going through the file system:
 * a VM that dropped its rights need not be able to reach its own socket
 * file. Any thread. Returns 0 with *fd, or -errno (-EAGAIN: too many
 * clients waiting) with a one-line message in err. */
int virtio_vsock_connect_local(struct virtio_dev *vdev, int *fd, char *err, size_t errlen);

#endif
