/* Gratuitous RARP frames. See announce.h. */
#include "net/announce.h"

#include <string.h>

void net_announce_frame(const uint8_t mac[6], uint8_t frame[NET_ANNOUNCE_FRAME_LEN])
{
    memset(frame, 0, NET_ANNOUNCE_FRAME_LEN);
    /* Ethernet: broadcast, from the card. */
    memset(frame, 0xff, 6);
    memcpy(frame + 6, mac, 6);
    frame[12] = NET_ETH_P_RARP >> 8;
    frame[13] = NET_ETH_P_RARP & 0xff;
    /* RFC 903 (the ARP layout, RFC 826): hardware Ethernet (1), protocol
     * IPv4 (0x0800), lengths 6 and 4, opcode 3 "request reverse". */
    frame[15] = 1;
    frame[16] = 0x08;
    frame[18] = 6;
    frame[19] = 4;
    frame[21] = 3;
    memcpy(frame + 22, mac, 6);   /* sender hardware address; sender IP 0 */
    memcpy(frame + 32, mac, 6);   /* target hardware address; target IP 0 */
}

unsigned net_announce_gap_ms(unsigned done)
{
    unsigned ms = NET_ANNOUNCE_INITIAL_MS + (done ? done - 1 : 0) * NET_ANNOUNCE_STEP_MS;
    return ms > NET_ANNOUNCE_MAX_MS ? NET_ANNOUNCE_MAX_MS : ms;
}
