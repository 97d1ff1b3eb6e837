#!/usr/bin/env bash
# A disk across an in-process reboot (virt_reset resets the virtio devices
# and their workers keep serving): the first boot writes a marker to vda and
# reboots while its reads are fresh; the second boot finds the marker, reads
# the whole disk and powers off.
set -u
. "$(dirname "$0")/lib.sh"
guest_test disk_reboot
# Boots and then does disk work: twice a boot's time budget.
BOOT_TIMEOUT=$((BOOT_TIMEOUT * 2))

IMG=$T/d.img
head -c 16M /dev/urandom >"$IMG"
want=$(tail -c +4097 "$IMG" | sha256sum | cut -d' ' -f1)

run_cmd "$T/run.log" "
if [ \"\$(head -c 11 /dev/vda)\" = second-boot ]; then
  echo whole=\$(tail -c +4097 /dev/vda | sha256sum | cut -d' ' -f1); exit 0;
fi;
printf second-boot | dd of=/dev/vda conv=notrunc,fsync 2>/dev/null || exit 3;
dd if=/dev/vda of=/dev/null bs=64k count=64 2>/dev/null & echo first-boot-rebooting; /bin/reboot" --disk "$IMG"
st=$?
[ $st -eq 0 ] || fail "guest: $(status_text $st)"
out=$(tr -d '\r' <"$T/run.log")
grep -q '^first-boot-rebooting' <<<"$out" || fail "the first boot did not run"
[ "$(grep -c 'Linux version' <<<"$out")" -eq 2 ] || fail "expected two boots"
grep -q "^whole=$want" <<<"$out" || fail "after the reboot the disk read $(grep -o 'whole=.*' <<<"$out")"
[ "$(head -c 11 "$IMG")" = second-boot ] || fail "the marker is not in the image"
pass
