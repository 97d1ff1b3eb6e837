#!/usr/bin/env bash
# qcow2 disks made by QEMU's tools, used by the guest:
#  - an overlay over a raw base (qemu-img create -b base -F raw): the guest
#    reads the base's bytes through it and writes a pattern; the base file is
#    unchanged, `qemu-img check` is clean, and `qemu-img convert -O raw` of
#    the overlay equals the base with the guest's pattern on top;
#  - a compressed image (qemu-img convert -c) reads back what it was made of;
#  - SIGKILL of the monitor in the middle of a guest write loop leaves an
#    image `qemu-img check` finds no corruption in (leaks are allowed).
set -u
. "$(dirname "$0")/lib.sh"
guest_test disk_qcow2
BOOT_TIMEOUT=$((BOOT_TIMEOUT * 2))
command -v qemu-img >/dev/null || fail "qemu-img (qemu-utils) is not installed"

head -c 32M /dev/urandom >"$T/base.raw"
base_sum=$(sha256sum <"$T/base.raw")
qemu-img create -q -f qcow2 -b "$T/base.raw" -F raw "$T/ov.qcow2" || fail "qemu-img create"
seq 1 100000 >"$T/pattern"
size=$(stat -c %s "$T/pattern")
# The guest writes the pattern at 1 MiB + 512 (not cluster aligned: the
# first cluster must be copied up from the base).
off=$((1048576 + 512))
want_base=$(head -c 4096 "$T/base.raw" | tail -c 1024 | sha256sum | cut -d' ' -f1)

head -c 8M /dev/urandom >"$T/src.raw"
head -c 8M /dev/zero >>"$T/src.raw"
qemu-img convert -q -c -f raw -O qcow2 "$T/src.raw" "$T/comp.qcow2" || fail "qemu-img convert -c"
want_comp=$(sha256sum <"$T/src.raw" | cut -d' ' -f1)

run_cmd "$T/run.log" "
echo base=\$(head -c 4096 /dev/vda | tail -c 1024 | sha256sum | cut -d' ' -f1);
seq 1 100000 > /tmp/p;
dd if=/tmp/p of=/dev/vda bs=512 seek=$((off / 512)) conv=fsync 2>/dev/null || exit 3;
echo comp=\$(head -c 16777216 /dev/vdb | sha256sum | cut -d' ' -f1);
exit 0" --disk "$T/ov.qcow2" --disk "$T/comp.qcow2,readonly"
st=$?
[ $st -eq 0 ] || fail "guest: $(status_text $st)"
out=$(tr -d '\r' <"$T/run.log")
grep -q "base=$want_base" <<<"$out" || fail "the guest did not read the base through the overlay"
grep -q "comp=$want_comp" <<<"$out" || fail "the compressed image read back $(grep -o 'comp=.*' <<<"$out")"
[ "$(sha256sum <"$T/base.raw")" = "$base_sum" ] || fail "the base image was changed"
qemu-img check -q "$T/ov.qcow2" >"$T/check.log" 2>&1 || { LAST_LOG=$T/check.log; fail "qemu-img check of the overlay"; }
qemu-img convert -q -O raw "$T/ov.qcow2" "$T/ov.raw" || fail "qemu-img convert"
cp "$T/base.raw" "$T/want.raw"
dd if="$T/pattern" of="$T/want.raw" bs=512 seek=$((off / 512)) conv=notrunc status=none
cmp "$T/ov.raw" "$T/want.raw" >/dev/null || fail "the overlay's contents differ from base + the guest's pattern"

# SIGKILL during a write loop.
qemu-img create -q -f qcow2 "$T/kill.qcow2" 256M || fail "qemu-img create"
start_vm kill --disk "$T/kill.qcow2" --append "console=ttyS0 -- $(guest_cmd_arg '
echo writing-now; i=0;
while :; do dd if=/dev/urandom of=/dev/vda bs=64k count=16 seek=$(( (i * 7919) % 4000 )) conv=fsync 2>/dev/null; i=$((i + 1)); done')"
wait_for "writing-now"
# Kill once the image has grown by a few clusters' worth of guest writes.
start_size=$(stat -c %s "$T/kill.qcow2")
end=$((SECONDS + BOOT_TIMEOUT))
while [ "$(stat -c %s "$T/kill.qcow2")" -lt $((start_size + 4 * 1048576)) ]; do
    [ $SECONDS -lt $end ] || fail "the guest wrote nothing to the qcow2 image"
    kill -0 "$VM_PID" 2>/dev/null || fail "the VM exited during the write loop"
    sleep 0.2
done
sleep 0.$((RANDOM % 10))
kill -9 "$VM_PID"
wait "$VM_PID" 2>/dev/null
qemu-img check "$T/kill.qcow2" >"$T/kill-check.log" 2>&1
st=$?
# 0: clean, 3: leaked clusters only; 2 would be corruption.
[ $st -eq 0 ] || [ $st -eq 3 ] || { LAST_LOG=$T/kill-check.log; fail "qemu-img check after SIGKILL: exit $st"; }
# ... and the guest had written to it before the kill.
allocated=$(sed -n 's/^\([0-9]*\)\/[0-9]* = .*allocated.*/\1/p' "$T/kill-check.log")
[ "${allocated:-0}" -gt 0 ] || { LAST_LOG=$T/kill-check.log; fail "no cluster was written before the kill"; }
pass
