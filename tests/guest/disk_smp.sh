#!/usr/bin/env bash
# --smp 2 with a disk: virtio-blk offers one request queue per hart (MQ), the
# guest uses both, and two writers on the two harts at once (O_DIRECT, so
# requests reach the device concurrently) leave both regions right. The disk
# uses cache=none: O_DIRECT on the host too.
set -u
. "$(dirname "$0")/lib.sh"
guest_test disk_smp
# Boots and then does disk work: twice a boot's time budget.
BOOT_TIMEOUT=$((BOOT_TIMEOUT * 2))

IMG=$T/d.img
truncate -s 64M "$IMG"
seq 1 200000 | head -c 1048576 >"$T/p1"
seq 200001 400000 | head -c 1048576 >"$T/p2"

run_cmd "$T/run.log" "
echo queues=\$(ls /sys/block/vda/mq | wc -l);
seq 1 200000 | head -c 1048576 > /tmp/p1; seq 200001 400000 | head -c 1048576 > /tmp/p2;
taskset 1 dd if=/tmp/p1 of=/dev/vda bs=4k oflag=direct 2>/dev/null & a=\$!;
taskset 2 dd if=/tmp/p2 of=/dev/vda bs=4k seek=4096 oflag=direct 2>/dev/null & b=\$!;
wait \$a || exit 3; wait \$b || exit 4;
echo 3 > /proc/sys/vm/drop_caches;
echo r1=\$(dd if=/dev/vda bs=4k count=256 2>/dev/null | sha256sum | cut -c1-16);
echo r2=\$(dd if=/dev/vda bs=4k skip=4096 count=256 2>/dev/null | sha256sum | cut -c1-16);
exit 0" --disk "$IMG,cache=none" --smp 2
st=$?
[ $st -eq 0 ] || fail "guest: $(status_text $st)"
out=$(tr -d '\r' <"$T/run.log")
grep -q '^queues=2$' <<<"$out" || fail "guest sees $(grep -o 'queues=.*' <<<"$out") request queues, want 2"
cmp -n 1048576 "$IMG" "$T/p1" || fail "region 1 differs"
cmp -n 1048576 -i $((16 * 1048576)):0 "$IMG" "$T/p2" || fail "region 2 differs"
grep -q "^r1=$(sha256sum <"$T/p1" | cut -c1-16)" <<<"$out" || fail "guest read back region 1 wrong"
grep -q "^r2=$(sha256sum <"$T/p2" | cut -c1-16)" <<<"$out" || fail "guest read back region 2 wrong"
pass
