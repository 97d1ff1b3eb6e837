#!/usr/bin/env bash
# A --disk ...,readonly disk: the guest sees it read-only (blockdev --getro:
# the device offers VIRTIO_BLK_F_RO), dd to it fails, and so does an
# O_DIRECT write after `blockdev --setrw`. The host file is unchanged; reads
# work. (That the device itself fails writes with IOERR is checked by the
# unit test test_virtio_blk: Linux keeps the disk read-only whatever the
# guest's user does.)
set -u
. "$(dirname "$0")/lib.sh"
guest_test disk_readonly
# Boots and then does disk work: twice a boot's time budget.
BOOT_TIMEOUT=$((BOOT_TIMEOUT * 2))

IMG=$T/ro.img
head -c 8M /dev/urandom >"$IMG"
before=$(sha256sum <"$IMG")
want=$(head -c 4096 "$IMG" | sha256sum | cut -d' ' -f1)

run_cmd "$T/run.log" "
echo getro=\$(blockdev --getro /dev/vda);
if dd if=/dev/zero of=/dev/vda bs=4096 count=1 conv=fsync 2>/dev/null; then echo dd1=ok; else echo dd1=failed; fi;
blockdev --setrw /dev/vda;
if dd if=/dev/zero of=/dev/vda bs=4096 count=1 oflag=direct 2>/dev/null; then echo dd2=ok; else echo dd2=failed; fi;
echo 3 > /proc/sys/vm/drop_caches;
echo read=\$(head -c 4096 /dev/vda | sha256sum | cut -d' ' -f1);
exit 0" --disk "$IMG,readonly"
st=$?
[ $st -eq 0 ] || fail "guest: $(status_text $st)"
out=$(tr -d '\r' <"$T/run.log")
grep -q '^getro=1' <<<"$out" || fail "blockdev --getro: $(grep -o 'getro=.*' <<<"$out")"
grep -q '^dd1=failed' <<<"$out" || fail "dd to the read-only disk succeeded"
grep -q '^dd2=failed' <<<"$out" || fail "the device accepted a write after blockdev --setrw"
grep -q "^read=$want" <<<"$out" || fail "reads from the read-only disk are wrong"
[ "$(sha256sum <"$IMG")" = "$before" ] || fail "the read-only image changed"

pass
