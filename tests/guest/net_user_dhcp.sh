#!/usr/bin/env bash
# User-mode networking (libslirp): the guest's DHCP client gets 10.0.2.15/24,
# a default route through 10.0.2.2 and DNS server 10.0.2.3 (QEMU's
# addresses). Two cards after a disk: they take the slots after it in the
# order given (eth0 at 0x10002000, eth1 at 0x10003000), the first with the
# default MAC 52:54:00:12:34:56, the second with the one given by mac=; and
# the guest pings the gateway (slirp answers ICMP echo to 10.0.2.2).
set -u
. "$(dirname "$0")/lib.sh"
guest_test net_user_dhcp

truncate -s 1M "$T/disk.img"
run_cmd "$T/run.log" "
udhcpc -i eth0 -q -n -t 5 -T 2 >/dev/null 2>&1 || exit 3;
echo addr=\$(ip -4 -o addr show eth0 | awk '{print \$4}');
echo route=\$(ip route | awk '/^default/ {print \$1, \$2, \$3}');
echo dns=\$(awk '/^nameserver/ {print \$2}' /etc/resolv.conf);
echo mac0=\$(cat /sys/class/net/eth0/address) mac1=\$(cat /sys/class/net/eth1/address);
echo slot0=\$(basename \$(readlink -f /sys/class/net/eth0/device/..));
echo slot1=\$(basename \$(readlink -f /sys/class/net/eth1/device/..));
echo link=\$(cat /sys/class/net/eth0/carrier);
ping -c 2 -W 5 10.0.2.2 >/dev/null && echo ping=ok;
exit 0" --disk "$T/disk.img" --net user --net user,mac=52:54:00:ab:cd:ef
st=$?
[ $st -eq 0 ] || fail "guest: $(status_text $st)"
out=$(tr -d '\r' <"$T/run.log")
grep -qx 'addr=10.0.2.15/24' <<<"$out" || fail "DHCP address: $(grep -o '^addr=.*' <<<"$out")"
grep -qx 'route=default via 10.0.2.2' <<<"$out" || fail "route: $(grep -o '^route=.*' <<<"$out")"
grep -qx 'dns=10.0.2.3' <<<"$out" || fail "resolv.conf: $(grep -o '^dns=.*' <<<"$out")"
grep -qx 'mac0=52:54:00:12:34:56 mac1=52:54:00:ab:cd:ef' <<<"$out" ||
    fail "MAC addresses: $(grep -o '^mac0=.*' <<<"$out")"
grep -qx 'slot0=10002000.virtio_mmio' <<<"$out" || fail "eth0 slot: $(grep -o '^slot0=.*' <<<"$out")"
grep -qx 'slot1=10003000.virtio_mmio' <<<"$out" || fail "eth1 slot: $(grep -o '^slot1=.*' <<<"$out")"
grep -qx 'link=1' <<<"$out" || fail "link not up: $(grep -o '^link=.*' <<<"$out")"
grep -qx 'ping=ok' <<<"$out" || fail "no ping reply from 10.0.2.2"
pass
