#!/usr/bin/env bash
# Live migration with --copy-storage (docs/migration.md "Copy-storage"): no
# shared storage. The guest has a qcow2 disk (vda, 256 MiB, 24 MiB of it
# allocated by the host beforehand) and a raw one (vdb, 64 MiB sparse, 8 MiB
# of data), and writes 128 KiB of fresh random data to a slot of each disk
# (64 slots, the first 8 MiB, in a stride) over and over, with fsync, keeping a copy of
# each slot's last data in its RAM. It moves, with the stream held to
# 40 MB/s so that the copy takes a while under those writes, to a
# destination with images of its own at other paths (made beforehand with
# qemu-img create, as for QEMU's drive-mirror to NBD), which stays paused
# after the handover. (The guest stops writing when a line comes on its
# console.) Then:
#  - the guest wrote on the source while the migration ran;
#  - qemu-img compare: the destination's images equal the source's (the
#    source has ended; the destination has not run yet);
#  - the destination resumes; the guest stops writing, drops its caches and
#    reads every slot back from both disks: each equals its RAM copy;
#  - qemu-img check of both qcow2 images is clean.
# And a destination whose image is of another size is refused before any
# page moves, and one killed in the middle of the disk copy leaves the
# source running and writing.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test migrate_storage
command -v qemu-img >/dev/null || fail "qemu-img (qemu-utils) is not installed"

# The source's images: data where the host put it, holes elsewhere.
truncate -s 256M "$T/seed.raw"
head -c 24M /dev/urandom | dd of="$T/seed.raw" bs=1M seek=4 conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 "$T/seed.raw" "$T/src.qcow2" || fail "qemu-img convert"
rm -f "$T/seed.raw"
truncate -s 64M "$T/src.raw"
head -c 8M /dev/urandom | dd of="$T/src.raw" bs=1M seek=2 conv=notrunc status=none
# The destination's: empty, the same virtual sizes, other paths.
qemu-img create -q -f qcow2 "$T/dst.qcow2" 256M || fail "qemu-img create"
qemu-img create -q -f raw "$T/dst.raw" 64M || fail "qemu-img create"
qemu-img create -q -f qcow2 "$T/small.qcow2" 128M || fail "qemu-img create"

start_vm vm0 --mem 256M --api "$T/api0.sock" --disk "$T/src.qcow2" --disk "$T/src.raw,format=raw" \
    --append "console=ttyS0 quiet -- $(guest_cmd_arg '
mkdir /tmp/s
(read line </dev/console; touch /tmp/stop) &
i=0
while [ ! -e /tmp/stop ]; do
    i=$((i + 1))
    k=$(( (i * 7) % 64 ))
    dd if=/dev/urandom of=/tmp/s/$k bs=64k count=2 2>/dev/null
    dd if=/tmp/s/$k of=/dev/vda bs=128k seek=$k conv=fsync 2>/dev/null || echo "write error vda"
    dd if=/tmp/s/$k of=/dev/vdb bs=128k seek=$k conv=fsync 2>/dev/null || echo "write error vdb"
    echo "wrote $i"
done
sync
echo 3 >/proc/sys/vm/drop_caches
bad=0
for f in /tmp/s/*; do
    k=${f##*/}
    for d in vda vdb; do
        dd if=/dev/$d bs=128k skip=$k count=1 2>/dev/null | cmp -s - $f || { echo "slot $k of $d differs"; bad=1; }
    done
done
echo "verified $(ls /tmp/s | wc -l) slots: bad=$bad"
poweroff -f')"
wait_for '^wrote 5$'
API=$T/api0.sock
wait_api_socket
last_wrote() { tr -d '\r' <"$1" | awk '/^wrote [0-9]+$/ { n = $2 } END { print n + 0 }'; }

# start_dest NAME ADDR [options]: `nimbus restore --incoming ADDR` with its
# console on the FIFO $T/NAME.in and $T/NAME.log; sets DEST_PID, DEST_ERR.
start_dest() {
    local name=$1 addr=$2
    shift 2
    DEST_LOG=$T/$name.log
    DEST_ERR=$T/$name.err
    rm -f "$T/$name.in"
    mkfifo "$T/$name.in"
    "$NIMBUS" restore --incoming "$addr" "$@" <"$T/$name.in" >"$DEST_LOG" 2>"$DEST_ERR" &
    DEST_PID=$!
    BG_PIDS+=("$DEST_PID")
    exec 9>"$T/$name.in"
    for _ in $(seq 100); do
        grep -qs 'waiting for a migration on' "$DEST_ERR" && return 0
        kill -0 "$DEST_PID" 2>/dev/null || fail "$name: $(cat "$DEST_ERR")"
        sleep 0.1
    done
    fail "$name: not listening: $(cat "$DEST_ERR")"
}

# A destination image of another size: refused before any page; the source
# goes on.
start_dest bad "unix:$T/bad.sock" --disk "$T/small.qcow2" --disk "$T/dst.raw"
out=$("$NIMBUS" migrate --api "$API" --to "unix:$T/bad.sock" --copy-storage 2>&1) &&
    fail "a destination disk of another size was taken: $out"
grep -q 'same virtual size' <<<"$out" && grep -q ' 0 pages ' <<<"$out" ||
    fail "the refusal: $out"
wait "$DEST_PID"
[ $? = 1 ] || fail "the refusing destination's status"
exec 9>&-
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = running ] || fail "after the refusal: $API_REPLY"
echo "refused: $(grep '^nimbus migrate' <<<"$out")"

# A destination killed in the middle of the disk copy: the source goes on.
start_dest dead "unix:$T/dead.sock" --disk "$T/dst.qcow2" --disk "$T/dst.raw"
"$NIMBUS" migrate --api "$API" --to "unix:$T/dead.sock" --copy-storage --max-bandwidth 4M \
    --json >"$T/dead.out" 2>&1 &
MIG_PID=$!
for _ in $(seq 300); do
    grep -Eq '"disk_bytes_sent": *[1-9]' "$T/dead.out" && break
    sleep 0.1
done
grep -Eq '"disk_bytes_sent": *[1-9]' "$T/dead.out" || fail "no disk data went: $(tail -n 2 "$T/dead.out")"
kill -9 "$DEST_PID"
wait "$DEST_PID" 2>/dev/null
exec 9>&-
wait "$MIG_PID" && fail "nimbus migrate succeeded with its destination killed"
grep -q '"phase": *"failed"' "$T/dead.out" || fail "the cut migration: $(tail -n 2 "$T/dead.out")"
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = running ] || fail "after the cut: $API_REPLY"
from=$(last_wrote "$VM_LOG")
wait_for "^wrote $((from + 3))\$" 60
echo "cut during the disk copy: the source goes on"
# The raw image is reused as the cut left it (the next copy rewrites every
# range, zeros included); the qcow2 one, whose process was killed, is made
# again (a kill may leak clusters, which qemu-img check would count).
qemu-img create -q -f qcow2 "$T/dst.qcow2" 256M || fail "qemu-img create"

# The move.
start_dest dst "unix:$T/mig.sock" --paused --api "$T/api1.sock" \
    --disk "$T/dst.qcow2" --disk "$T/dst.raw"
before=$(last_wrote "$VM_LOG")
t0=$(date +%s%N)
out=$(timeout 120 "$NIMBUS" migrate --api "$API" --to "unix:$T/mig.sock" --copy-storage \
    --max-bandwidth 40M --json 2>&1) || fail "nimbus migrate: $(tail -n 3 <<<"$out")"
t1=$(date +%s%N)
last=$(tail -n 1 <<<"$out")
grep -q '"phase": *"completed"' <<<"$last" || fail "the migration: $last"
wait_exit 30
[ "$VM_STATUS" = 0 ] || fail "the source ended with $(status_text "$VM_STATUS")"
after=$(last_wrote "$VM_LOG")
[ "$after" -gt "$before" ] || fail "the guest wrote nothing during the migration ($before, $after)"
figure() { [[ $last =~ \"$1\":\ *([0-9]+) ]] && echo "${BASH_REMATCH[1]}"; }
echo "migrated in $(( (t1 - t0) / 1000000 )) ms: guest writes $before..$after during it;" \
    "disk data $(( $(figure disk_bytes_sent) >> 10 )) KiB, zero ranges $(( $(figure disk_zero_bytes) >> 20 )) MiB" \
    "of $(( $(figure disk_bytes) >> 20 )) MiB, downtime $(figure downtime_us) us"

# The source ended, the destination has not run: the images are equal.
qemu-img compare -q -U -f qcow2 -F qcow2 "$T/src.qcow2" "$T/dst.qcow2" >"$T/cmp.log" 2>&1 ||
    { LAST_LOG=$T/cmp.log; fail "qemu-img compare: the qcow2 images differ"; }
qemu-img compare -q -U -f raw -F raw "$T/src.raw" "$T/dst.raw" >"$T/cmp.log" 2>&1 ||
    { LAST_LOG=$T/cmp.log; fail "qemu-img compare: the raw images differ"; }

# The guest goes on there and checks what it wrote.
VM_PID=$DEST_PID
VM_LOG=$DEST_LOG
LAST_LOG=$VM_LOG
API=$T/api1.sock
wait_api_socket
api_ok PUT /vm/resume
wait_for "^wrote $((after + 3))\$" 60
printf 'verify\n' >&9
wait_for '^verified [0-9]+ slots' 60
grep -Eq '^verified [1-9][0-9]* slots: bad=0' <(tr -d '\r' <"$VM_LOG") ||
    fail "the guest's check: $(tr -d '\r' <"$VM_LOG" | grep -E 'differs|verified|error' | head -n 5)"
wait_exit 30
exec 9>&-
for img in src dst; do
    qemu-img check -q "$T/$img.qcow2" >"$T/check.log" 2>&1 ||
        { LAST_LOG=$T/check.log; fail "qemu-img check of $img.qcow2"; }
done
pass
