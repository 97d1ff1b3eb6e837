#!/usr/bin/env bash
# Discard: the guest's blkdiscard on part of a fully allocated raw disk makes
# the host punch holes (the image file has fewer allocated blocks, the range
# reads as zeros) and leaves the rest of the data alone.
set -u
. "$(dirname "$0")/lib.sh"
guest_test disk_discard
# Boots and then does disk work: twice a boot's time budget.
BOOT_TIMEOUT=$((BOOT_TIMEOUT * 2))

IMG=$T/d.img
head -c 64M /dev/urandom >"$IMG"
sync "$IMG" 2>/dev/null || sync
before=$(stat -c %b "$IMG")
tail_sum=$(tail -c +$((32 * 1048576 + 1)) "$IMG" | sha256sum)

run_cmd "$T/run.log" "
echo max=\$(cat /sys/block/vda/queue/discard_max_bytes);
blkdiscard -o 0 -l 33554432 /dev/vda || exit 3;
exit 0" --disk "$IMG"
st=$?
[ $st -eq 0 ] || fail "guest: $(status_text $st)"
after=$(stat -c %b "$IMG")
# 32 MiB = 65536 blocks of 512 bytes; allow for file-system slack.
[ "$after" -le $((before - 60000)) ] || fail "allocated blocks $before -> $after: no holes punched"
[ "$(head -c 33554432 "$IMG" | tr -d '\0' | wc -c)" -eq 0 ] || fail "discarded range does not read as zeros"
[ "$(tail -c +$((32 * 1048576 + 1)) "$IMG" | sha256sum)" = "$tail_sum" ] || fail "data outside the range changed"
grep -q '^max=[1-9]' <(tr -d '\r' <"$T/run.log") || fail "guest sees no discard support"
pass
