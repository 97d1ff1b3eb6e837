#!/usr/bin/env bash
# An ext4 image made on the host: the guest mounts it, writes files and a
# directory, unmounts and powers off; on the host, e2fsck -fn finds the file
# system clean and debugfs reads the guest's files back.
set -u
. "$(dirname "$0")/lib.sh"
guest_test disk_ext4
# Boots and then does disk work: twice a boot's time budget.
BOOT_TIMEOUT=$((BOOT_TIMEOUT * 2))
command -v mkfs.ext4 >/dev/null && command -v debugfs >/dev/null || fail "mkfs.ext4/debugfs missing (e2fsprogs)"

IMG=$T/fs.img
truncate -s 128M "$IMG"
mkfs.ext4 -q -F -L nimbus-test "$IMG" || fail "mkfs.ext4 failed"
seq 1 100000 >"$T/big"

run_cmd "$T/run.log" "
modprobe crc32c_generic; modprobe ext4 || exit 3;
mount -t ext4 /dev/vda /mnt || exit 4;
echo hello-from-the-guest > /mnt/hello;
mkdir /mnt/dir; seq 1 100000 > /mnt/dir/big;
i=0; while [ \$i -lt 50 ]; do echo file \$i > /mnt/dir/f\$i; i=\$((i+1)); done;
sync; umount /mnt || exit 5;
mount -o ro /dev/vda /mnt && cat /mnt/hello && umount /mnt;
exit 0" --disk "$IMG"
st=$?
[ $st -eq 0 ] || fail "guest: $(status_text $st)"
grep -q '^hello-from-the-guest' <(tr -d '\r' <"$T/run.log") || fail "file not readable after remount"
e2fsck -fn "$IMG" >"$T/fsck.log" 2>&1 || { LAST_LOG=$T/fsck.log; fail "e2fsck -fn found problems"; }
[ "$(debugfs -R 'cat /hello' "$IMG" 2>/dev/null)" = hello-from-the-guest ] || fail "debugfs: /hello wrong"
debugfs -R 'cat /dir/big' "$IMG" 2>/dev/null | cmp -s - "$T/big" || fail "debugfs: /dir/big differs"
[ "$(debugfs -R 'cat /dir/f49' "$IMG" 2>/dev/null)" = "file 49" ] || fail "debugfs: /dir/f49 wrong"
pass
