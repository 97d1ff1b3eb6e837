#!/usr/bin/env bash
# Snapshots (docs/snapshots.md): save a running guest in the middle of a
# workload and restore it in a new process.
#  - The guest counts, printing each tick and writing it to its disk. A full
#    snapshot through the API lets it go on; a diff snapshot (only the pages
#    written since) with --stop ends it. `nimbus restore` of the diff (its
#    parent's memory with the diff's pages on top) goes on from there: the
#    two consoles together show every tick once (no gap, no repeat), and the
#    disk holds the restored guest's writes.
#  - Guest time stands still while the VM is paused and saved: the diff
#    snapshot is of a VM paused 4 s before, and the guest's uptime (in each
#    tick line) moves on across the pause, the save and the restore by less
#    than the pause, and by no more than a second beyond its longest step
#    between two other ticks.
#  - The same diff restored with --memory eager and --memory uffd continues
#    the same way.
#  - The restore gives the guest a new VM generation ID: its kernel says it
#    reseeded its RNG ("virtual machine fork").
#  - Clones: ten restores of one snapshot (--clone) run at once. Each reads
#    16 bytes from /dev/urandom after the restore, and all differ; each
#    card's MAC, as the guest sees it once its init has re-probed the card
#    for the new VM generation, is the one its monitor reports (GET /vm), and
#    all ten differ. Each clone is paused once checked, so the ones done
#    take no CPU from those still starting (and stop touching memory); at
#    the end, all ten there at once, their memory (RSS) together is
#    reported; a lazy restore shares the snapshot's pages, so it must stay
#    far under ten times the first VM's. (The RSS without the translator's
#    code cache, shared memory mapped twice, writable and executable: RssShmem,
#    a few MiB per process counted once per mapping, and no guest memory.)
#  - Broken snapshots are refused with a clear message, never a crash: a
#    truncated vm.state, a flipped bit, a memory file of the wrong size, a
#    changed disk (unless --force-disks), a missing directory.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test snapshot
API=$T/api.sock
SNAP=$T/snap
truncate -s 16M "$T/disk.img"

# Each tick also prints 16 bytes read from /dev/urandom at that moment (two
# words of hex) and the MAC of eth0 as the guest sees it. Few processes per
# tick: ten clones of this guest run at once below.
start_vm vm --smp 2 --disk "$T/disk.img" --net user --api "$API" --append "console=ttyS0 quiet -- $(guest_cmd_arg '
i=0
while [ $i -lt 100000 ]; do
    i=$((i + 1))
    mac=
    read -r mac </sys/class/net/eth0/address 2>/dev/null
    read -r up _ </proc/uptime
    echo "tick $i rnd $(od -An -N16 -tx8 /dev/urandom) mac $mac up $up"
    echo $i | dd of=/dev/vda bs=512 seek=$((i % 1000)) conv=notrunc,sync 2>/dev/null
    sleep 0.5
done')"
wait_for '^tick 8 '
wait_api_socket
# vm_mem_mib: the VM's resident anonymous and file pages (RssAnon + RssFile).
vm_mem_mib() { awk '/^Rss(Anon|File):/ { kb += $2 } END { print int(kb / 1024) }' "/proc/$VM_PID/status"; }
rss_first=$(vm_mem_mib)
out=$("$NIMBUS" snapshot --api "$API" --json "$SNAP" 2>&1) || fail "nimbus snapshot: $out"
pause_us=$(jget "$out" pause_us)
mem_bytes=$(jget "$out" memory_bytes)
[ -s "$SNAP/vm.state" ] && [ -s "$SNAP/memory" ] || fail "no vm.state or memory in $SNAP: $(ls "$SNAP")"
wait_for "^tick $(($(tr -d '\r' <"$VM_LOG" | awk '/^tick [0-9]+ / { n = $2 } END { print n }') + 5)) " 30
DIFF=$T/diff
api_ok PUT /vm/pause
sleep 4
out=$("$NIMBUS" snapshot --api "$API" --diff --stop --json "$DIFF" 2>&1) || fail "diff snapshot: $out"
diff_bytes=$(jget "$out" memory_bytes)
[ "$diff_bytes" -lt $((mem_bytes / 4)) ] || fail "the diff snapshot wrote $diff_bytes bytes of memory, the full one $mem_bytes"
wait_exit 30
[ "$VM_STATUS" -eq 0 ] || fail "the VM saved with --stop exited with $(status_text "$VM_STATUS")"
first_log=$VM_LOG

# The restore: the workload continues from where it was.
start_restore() { # name snapshot [options...]
    local name=$1
    shift
    VM_LOG=$T/$name.log
    LAST_LOG=$VM_LOG
    : >"$VM_LOG"
    local from=$1
    shift
    "$NIMBUS" restore "$from" --console "file:$VM_LOG" "$@" </dev/null >"$T/$name.err" 2>&1 &
    VM_PID=$!
    BG_PIDS+=("$VM_PID")
}
start_restore restored "$DIFF" --api "$T/api2.sock"
last=$(tr -d '\r' <"$first_log" | awk '/^tick [0-9]+ / { n = $2 } END { print n }')
wait_for "^tick $((last + 10)) " 60
cat "$first_log" "$VM_LOG" | tr -d '\r' | awk '/^tick [0-9]+ / { if (n && $2 != n + 1) { print "after", n, "came", $2; bad = 1 } n = $2 }
    END { exit bad }' >"$T/gaps" || fail "the ticks across the restore: $(head -n 3 "$T/gaps")"
# Guest time across the 4 s pause, the save and the restore.
tr -d '\r' <"$first_log" | awk '/^tick [0-9]+ .* up [0-9.]+$/ { print $NF }' >"$T/up1"
up_restored=$(tr -d '\r' <"$VM_LOG" | awk '/^tick [0-9]+ .* up [0-9.]+$/ { print $NF; exit }')
read -r step longest < <(awk -v r="$up_restored" 'NR > 1 && $1 - p > m { m = $1 - p } { p = $1 }
    END { printf "%.2f %.2f\n", r - p, m }' "$T/up1")
echo "guest uptime across a 4 s pause, save and restore: +${step} s (longest other step ${longest} s)" >&2
awk -v s="$step" -v m="$longest" 'BEGIN { exit !(s < 4 && s <= m + 1) }' ||
    fail "guest time moved ${step} s across a 4 s pause, save and restore (other steps up to ${longest} s)"
API=$T/api2.sock
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = running ] || fail "the restored VM's state: $API_REPLY"
out=$("$NIMBUS" snapshot --api "$API" "$T/snap2" 2>&1) || fail "a snapshot of the restored VM: $out"
api_ok PUT /vm/destroy
wait_exit 30
n=$(tr -d '\r' <"$VM_LOG" | awk '/^tick [0-9]+ / { n = $2 } END { print n - 1 }')
got=$(dd if="$T/disk.img" bs=512 skip=$((n % 1000)) count=1 2>/dev/null | tr -d '\0' | head -n 1)
[ "$got" = "$n" ] || fail "disk block $((n % 1000)) holds '$got', want $n (the restored guest's write)"
# The guest's kernel took the new generation ID: its log (in the second
# snapshot's RAM) says so.
grep -aq 'crng reseeded due to virtual machine fork' "$T/snap2/memory" ||
    fail "the restored guest's kernel did not reseed its RNG (no 'virtual machine fork' in its log)"

# The same diff restored with RAM read eagerly, and filled by userfaultfd
# (the disk has moved on since: --force-disks): the same continuation.
for how in eager uffd; do
    if [ "$how" = uffd ] && [ "$(id -u)" != 0 ] &&
        [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 1 ]; then
        # Not allowed here: the restore must say so, not fail otherwise.
        out=$(timeout 30 "$NIMBUS" restore "$DIFF" --memory uffd --force-disks 2>&1) &&
            fail "--memory uffd restored without userfaultfd"
        grep -q 'vm.unprivileged_userfaultfd' <<<"$out" || fail "--memory uffd: unclear message: $out"
        continue
    fi
    start_restore "restored-$how" "$DIFF" --memory "$how" --force-disks
    wait_for "^tick $((last + 3)) " 60
    cat "$first_log" "$VM_LOG" | tr -d '\r' | awk '/^tick [0-9]+ / { if (n && $2 != n + 1) { print "after", n, "came", $2; bad = 1 } n = $2 }
        END { exit bad }' >"$T/gaps" || fail "--memory $how: the ticks across the restore: $(head -n 3 "$T/gaps")"
    kill "$VM_PID"
    wait_exit 30
done

# Broken snapshots.
refuse() { # what expected-message-regex [restore options...]
    local what=$1 re=$2
    shift 2
    if out=$(timeout 30 "$NIMBUS" restore "$@" --console "file:$T/refused.log" 2>&1); then
        fail "$what: restored anyway"
    fi
    grep -Eq -- "$re" <<<"$out" || fail "$what: unclear message: $out"
}
# The disk changed after the save (the restored guest wrote to it).
refuse "a changed disk" "changed since the snapshot" "$SNAP"
bad=$T/bad
cp -r --sparse=always "$SNAP" "$bad"
size=$(stat -c %s "$SNAP/vm.state")
head -c $((size / 2)) "$SNAP/vm.state" >"$bad/vm.state"
refuse "a truncated vm.state" "vm.state" "$bad" --force-disks
cp "$SNAP/vm.state" "$bad/vm.state"
printf '\xff' | dd of="$bad/vm.state" bs=1 seek=$((size / 3)) conv=notrunc 2>/dev/null
refuse "a flipped byte" "crc|CRC|damaged" "$bad" --force-disks
cp "$SNAP/vm.state" "$bad/vm.state"
printf '\x09' | dd of="$bad/vm.state" bs=1 seek=8 conv=notrunc 2>/dev/null
refuse "a newer major version" "version|newer" "$bad" --force-disks
cp "$SNAP/vm.state" "$bad/vm.state"
truncate -s -4096 "$bad/memory"
refuse "a short memory file" "memory file" "$bad" --force-disks
refuse "no snapshot" "No such file" "$T/nowhere"

# Clones: ten at once from the first snapshot.
NCLONES=10
for c in $(seq $NCLONES); do
    start_restore "clone$c" "$SNAP" --clone --force-disks --api "$T/clone$c.sock"
    eval "pid$c=\$VM_PID log$c=\$VM_LOG"
done
rss_total=0
code_total=0
orig_mac=52:54:00:12:34:56
for c in $(seq $NCLONES); do
    eval "VM_PID=\$pid$c VM_LOG=\$log$c"
    # A clone's log holds only what it printed after the restore. Wait for
    # three tick lines (the third read /dev/urandom well after the new
    # generation ID) and one that shows a MAC other than the saved one (the
    # init re-probed the card).
    end=$((SECONDS + 120))
    until [ "$(grep -c '^tick [0-9]* rnd [0-9a-f]*' "$VM_LOG")" -ge 3 ] &&
        grep -q "^tick .* mac [0-9a-f:]\{17\}" <(grep -v "mac $orig_mac" "$VM_LOG"); do
        kill -0 "$VM_PID" 2>/dev/null || fail "clone $c exited"
        [ $SECONDS -lt $end ] || fail "clone $c: no three ticks, or no new MAC, in 120 s"
        sleep 0.3
    done
    API=$T/clone$c.sock
    api_ok PUT /vm/pause
    api_ok GET /vm
    want=$(jget "$API_REPLY" config.nets.0.mac)
    got=$(tr -d '\r' <"$VM_LOG" | grep -v "mac $orig_mac" | grep -o "^tick .* mac [0-9a-f:]\{17\}" | tail -n 1)
    [ "${got##* }" = "$want" ] || fail "clone $c: the guest's MAC is ${got##* }, its card's $want"
    echo "$want" >>"$T/macs"
done
for c in $(seq $NCLONES); do
    eval "VM_PID=\$pid$c"
    kill -0 "$VM_PID" 2>/dev/null || fail "clone $c exited"
    rss_total=$((rss_total + $(vm_mem_mib)))
    code_total=$((code_total + $(awk '/^RssShmem:/ { print int($2 / 1024) }' "/proc/$VM_PID/status")))
done
for c in $(seq $NCLONES); do
    eval "VM_LOG=\$log$c"
    tr -d '\r' <"$VM_LOG" | grep '^tick [0-9]* rnd [0-9a-f]*' | sed -n 3p
done >"$T/rnd"
[ "$(awk '{ print $2 }' "$T/rnd" | sort -u | grep -c .)" -eq 1 ] ||
    fail "the clones' third ticks after the restore differ: $(awk '{ print $2 }' "$T/rnd" | tr '\n' ' ')"
[ "$(awk '{ print $4 $5 }' "$T/rnd" | sort -u | grep -c .)" -eq $NCLONES ] ||
    fail "the clones' random numbers repeat: $(awk '{ print $4 $5 }' "$T/rnd" | tr '\n' ' ')"
[ "$(sort -u "$T/macs" | grep -c .)" -eq $NCLONES ] || fail "the clones' MACs repeat: $(tr '\n' ' ' <"$T/macs")"
[ "$rss_total" -lt $((NCLONES * rss_first / 2)) ] ||
    fail "$NCLONES clones use $rss_total MiB, the first VM $rss_first MiB: the memory file is not shared"
echo "snapshot: pause ${pause_us} us, memory ${mem_bytes} bytes, diff ${diff_bytes} bytes; $NCLONES clones ${rss_total} MiB RSS in all (first VM ${rss_first} MiB; translated code ${code_total} MiB more)" >&2
pass
