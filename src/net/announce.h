/* Announcing a network card's MAC address on its network after the VM moved
 * (a live migration's destination) or came back (a restore), so switches
 * learn the port it is on now: QEMU's qemu_announce_self. The host builds
 * gratuitous RARP frames for the card and sends them through its backend
 * a few times with growing gaps; a guest that negotiated
 * VIRTIO_NET_F_GUEST_ANNOUNCE is asked to send its own gratuitous ARPs as
 * well (virtio/net.h). Any thread. */
#ifndef NIMBUS_NET_ANNOUNCE_H
#define NIMBUS_NET_ANNOUNCE_H

#include <stdint.h>

#define NET_ETH_P_RARP        0x8035u
#define NET_ANNOUNCE_FRAME_LEN 60u    /* Ethernet's minimum frame, without the FCS */

/* QEMU's announce parameters (migration's announce-initial, -max, -rounds,
 * -step): 5 rounds, the first at once, then 50 ms apart growing by 100 ms
 * (sent at 0, 50, 200, 450 and 800 ms). */
#define NET_ANNOUNCE_ROUNDS     5u
#define NET_ANNOUNCE_INITIAL_MS 50u
#define NET_ANNOUNCE_STEP_MS    100u
#define NET_ANNOUNCE_MAX_MS     550u

/* The gratuitous RARP frame QEMU sends (announce_self_create): broadcast
 * destination, source `mac`, ethertype 0x8035; RARP (RFC 903) for Ethernet
 * and IPv4, opcode 3 (reverse request) with `mac` as sender and target
 * hardware address and 0.0.0.0 as both protocol addresses; zero padding to
 * 60 bytes. */
void net_announce_frame(const uint8_t mac[6], uint8_t frame[NET_ANNOUNCE_FRAME_LEN]);

/* Milliseconds to wait after round `done` (1 for the first round sent) of
 * NET_ANNOUNCE_ROUNDS: initial + (done - 1) * step, at most max. */
unsigned net_announce_gap_ms(unsigned done);

#endif
