#!/usr/bin/env bash
# The entropy device every VM has: the guest's hw_random core picks
# virtio_rng, /dev/hwrng gives bytes (two reads differ), and the device sits
# in the last virtio-mmio slot.
set -u
. "$(dirname "$0")/lib.sh"
guest_test virtio_rng

run_cmd "$T/run.log" "
echo current=\$(cat /sys/class/misc/hw_random/rng_current);
echo count=\$(head -c 64 /dev/hwrng | wc -c);
echo a=\$(head -c 32 /dev/hwrng | sha256sum | cut -c1-16);
echo b=\$(head -c 32 /dev/hwrng | sha256sum | cut -c1-16);
echo node=\$(ls -d /proc/device-tree/soc/virtio_mmio@10008000);
exit 0"
st=$?
[ $st -eq 0 ] || fail "guest: $(status_text $st)"
out=$(tr -d '\r' <"$T/run.log")
grep -q '^current=virtio_rng' <<<"$out" || fail "rng_current: $(grep -o 'current=.*' <<<"$out")"
grep -q '^count=64$' <<<"$out" || fail "/dev/hwrng gave $(grep -o 'count=.*' <<<"$out")"
a=$(grep -o '^a=.*' <<<"$out")
b=$(grep -o '^b=.*' <<<"$out")
[ -n "$a" ] && [ "${a#a=}" != "${b#b=}" ] || fail "two reads of /dev/hwrng gave the same bytes"
grep -q '^node=/proc/device-tree/soc/virtio_mmio@10008000' <<<"$out" || fail "no rng node in the last slot"
pass
