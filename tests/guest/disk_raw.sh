#!/usr/bin/env bash
# Two raw virtio-blk disks at once: the guest sees them as vda and vdb in
# the order given (sizes and serials from the device), reads what the host
# put on vdb, writes a pattern to vda with dd and powers off; the host then
# finds the pattern in the image byte for byte, and the guest's own read-back
# checksum matches.
set -u
. "$(dirname "$0")/lib.sh"
guest_test disk_raw
# Boots and then does disk work: twice a boot's time budget.
BOOT_TIMEOUT=$((BOOT_TIMEOUT * 2))

A=$T/a.img
B=$T/b.img
truncate -s 64M "$A"
truncate -s 16M "$B"
printf 'host-wrote-this' | dd of="$B" bs=1 seek=4096 conv=notrunc status=none
# The pattern: the numbers 1..150000, one per line (about 1 MB).
seq 1 150000 >"$T/pattern"
size=$(stat -c %s "$T/pattern")
want_sum=$(sha256sum <"$T/pattern" | cut -d' ' -f1)

run_cmd "$T/run.log" "
echo size-a=\$(cat /sys/block/vda/size) size-b=\$(cat /sys/block/vdb/size);
echo serial-a=\$(cat /sys/block/vda/serial) serial-b=\$(cat /sys/block/vdb/serial);
echo from-host=\$(dd if=/dev/vdb bs=1 skip=4096 count=15 2>/dev/null);
seq 1 150000 > /tmp/p;
dd if=/tmp/p of=/dev/vda bs=64k conv=fsync 2>/dev/null || exit 3;
echo 3 > /proc/sys/vm/drop_caches;
echo readback=\$(head -c $size /dev/vda | sha256sum | cut -d' ' -f1);
exit 0" --disk "$A" --disk "$B"
st=$?
[ $st -eq 0 ] || fail "guest: $(status_text $st)"
out=$(tr -d '\r' <"$T/run.log")
grep -q "size-a=131072 size-b=32768" <<<"$out" || fail "disk sizes: $(grep -o 'size-a=.*' <<<"$out")"
grep -q "serial-a=nimbus-disk0 serial-b=nimbus-disk1" <<<"$out" ||
    fail "serials: $(grep -o 'serial-a=.*' <<<"$out")"
grep -q "from-host=host-wrote-this" <<<"$out" || fail "guest did not read the host's bytes on vdb"
grep -q "readback=$want_sum" <<<"$out" || fail "guest read back $(grep -o 'readback=.*' <<<"$out")"
cmp -n "$size" "$A" "$T/pattern" || fail "the image does not hold the pattern the guest wrote"
# Nothing past the pattern was written.
[ "$(tail -c +$((size + 1)) "$A" | head -c 1048576 | tr -d '\0' | wc -c)" -eq 0 ] ||
    fail "bytes past the pattern changed"
pass
