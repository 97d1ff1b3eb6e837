/* MAC addresses as text. See mac.h. */
#include "net/mac.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int net_parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char end;
    if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3],
                                  &v[4], &v[5], &end) != 6)
        return -EINVAL;
    /* sscanf's %x takes a sign and skips spaces: only hex digits and colons. */
    for (size_t i = 0; i < 17; i++)
        if (i % 3 == 2 ? s[i] != ':' : !strchr("0123456789abcdefABCDEF", s[i]))
            return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return (mac[0] & 1) ? -EINVAL : 0;   /* a multicast address can't be a card's */
}

void net_format_mac(const uint8_t mac[6], char buf[NET_MAC_TEXT])
{
    snprintf(buf, NET_MAC_TEXT, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5]);
}
