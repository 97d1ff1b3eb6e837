/* Ethernet MAC addresses as text: "52:54:00:12:34:56". Shared by the
 * command line (--net mac=, restore --mac) and the daemon's definitions.
 * Any thread. */
#ifndef NIMBUS_NET_MAC_H
#define NIMBUS_NET_MAC_H

#include <stddef.h>
#include <stdint.h>

/* Length of the text form with its NUL. */
#define NET_MAC_TEXT 18u

/* Six hex bytes separated by colons, exactly 17 characters, not a
 * multicast address (bit 0 of the first byte: no card has one). Returns 0
 * or -EINVAL. */
int net_parse_mac(const char *s, uint8_t mac[6]);

/* The text form (lower-case hex) into buf[NET_MAC_TEXT]. */
void net_format_mac(const uint8_t mac[6], char buf[NET_MAC_TEXT]);

#endif
