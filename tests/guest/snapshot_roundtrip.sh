#!/usr/bin/env bash
# Snapshot round trips of every device (issue 9, docs/snapshots.md): a guest
# runs a mixed workload while the test saves it (`nimbus snapshot --stop`,
# full or --diff) and restores it (`nimbus restore`) 20 times in a row at
# random moments, each restore continuing the one before. 21 process
# lifetimes in all. The workload, one tick after another:
#  - console: "tick I ..." (the counter);
#  - disk: an ext4 file system made on the host (raw image): file f(I % 8)
#    gets `seq` data of the tick, written with fsync, read back and hashed,
#    and a line appended to a log file;
#  - network (user-mode, slirp): blob (I % 4) fetched over HTTP from a server
#    this test runs on host loopback, and hashed. A TCP connection open
#    during a save does not follow the VM (docs/snapshots.md): the guest
#    retries a fetch that fails (with a timeout), never one that succeeded
#    with the wrong data;
#  - its own running checksum: acc = sha256(acc, I, disk hash, net hash).
# After the 20th restore the test publishes /stop on the HTTP server; the
# guest ends its tick, drops its caches, reads every file and the log back,
# unmounts and powers off. The test then requires: the ticks across the 21
# console logs have no gap and no repeat; every tick's disk and network
# hashes and the final running checksum are the ones the host computes;
# every fetch succeeded in the end; the guest's read-back found all its
# data; e2fsck -fn finds the file system clean, and debugfs reads the files
# and the log with the expected contents.
#
# The moments come from a seed the test prints; NIMBUS_TEST_SEED=N replays
# the same choices (the guest's own timing still varies).
# NIMBUS_ROUNDTRIP_ROUNDS=N: N saves and restores instead of 20;
# NIMBUS_ROUNDTRIP_SMP=N: a guest with N harts (default 1).
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test snapshot_roundtrip
command -v mkfs.ext4 >/dev/null && command -v e2fsck >/dev/null && command -v debugfs >/dev/null ||
    fail "mkfs.ext4/e2fsck/debugfs missing (e2fsprogs)"

ROUNDS=${NIMBUS_ROUNDTRIP_ROUNDS:-20}
SEED=${NIMBUS_TEST_SEED:-$(( $(od -An -N2 -tu2 /dev/urandom) ))}
echo "snapshot_roundtrip: seed $SEED (NIMBUS_TEST_SEED=$SEED replays it)" >&2
RANDOM=$SEED

# The host side: the disk, the blobs and their hashes, the HTTP server.
IMG=$T/fs.img
truncate -s 64M "$IMG"
mkfs.ext4 -q -F -L roundtrip "$IMG" || fail "mkfs.ext4 failed"
mkdir -p "$T/www"
NBLOBS=4
blob_sum=()
for b in $(seq 0 $((NBLOBS - 1))); do
    head -c $((192 * 1024 + b * 4096)) /dev/urandom >"$T/www/b$b"
    blob_sum[b]=$(sha256sum <"$T/www/b$b" | cut -c1-64)
done
http_server "$T/www"
port=$HTTP_PORT

# The guest's workload, fetched by the guest from the HTTP server (it is too
# long for the kernel command line). A fetch that fails (wget's exit status:
# a connection cut by a save, a timeout) is retried, at most 30 times; one
# that succeeds is not retried: its hash is the tick's, checked by the host.
# The disk write runs beside the fetch, so both queues are busy at a save.
cat >"$T/www/w.sh" <<'EOF'
url=$1 nblobs=$2
modprobe crc32c_generic; modprobe ext4 || exit 3
mount -t ext4 /dev/vda /mnt || exit 4
mkdir -p /mnt/w
acc=start
i=0
while :; do
    i=$((i + 1))
    f=/mnt/w/f$((i % 8))
    (seq $((i * 1000)) $((i * 1000 + 1999)) | dd of=$f conv=fsync 2>/dev/null &&
        sha256sum <$f | cut -c1-64 >/tmp/ds) &
    disk=$!
    k=1
    while [ $k -le 8 ]; do
        echo "con $i $k ....:....|....:....|....:....|....:....|....:....|"
        k=$((k + 1))
    done
    tries=0
    until err=$(wget -q -T 4 -O /tmp/blob $url/b$((i % nblobs)) 2>&1); do
        tries=$((tries + 1))
        echo "retry $i $tries at $(cut -d' ' -f1 /proc/uptime): $err"
        [ $tries -lt 30 ] || { echo "net $i GAVE UP"; exit 7; }
        sleep 0.3
    done
    ns=$(sha256sum </tmp/blob | cut -c1-64)
    wait $disk || exit 6
    ds=$(cat /tmp/ds)
    echo "$i $ds" >>/mnt/log
    acc=$(echo "$acc $i $ds $ns" | sha256sum | cut -c1-64)
    echo "tick $i d=$ds n=$ns a=$acc"
    wget -q -T 4 -O /dev/null $url/stop 2>/dev/null && break
done
# Read everything back from the disk, not from the page cache.
sync
echo 3 >/proc/sys/vm/drop_caches
bad=0
for k in 0 1 2 3 4 5 6 7; do
    j=$i
    while [ $((j % 8)) -ne $k ]; do j=$((j - 1)); done
    [ $j -ge 1 ] || continue
    [ "$(sha256sum </mnt/w/f$k | cut -c1-64)" = "$(seq $((j * 1000)) $((j * 1000 + 1999)) | sha256sum | cut -c1-64)" ] ||
        { echo "readback f$k BAD"; bad=1; }
done
[ "$(cut -d' ' -f1 /mnt/log | tr '\n' ' ')" = "$(seq -s ' ' 1 $i) " ] || { echo 'readback log BAD'; bad=1; }
umount /mnt || exit 8
echo "generations $(dmesg | grep -c 'nimbus-guest: new VM generation')"
echo "done $i a=$acc bad=$bad"
exit $bad
EOF
URL=http://10.0.2.2:$port
start_vm vm ${NIMBUS_ROUNDTRIP_SMP:+--smp $NIMBUS_ROUNDTRIP_SMP} --disk "$IMG" --net user --api "$T/api0.sock" --append "console=ttyS0 quiet -- $(guest_cmd_arg "
udhcpc -i eth0 -q -n -t 5 -T 2 >/dev/null 2>&1 || exit 5;
wget -q -O /tmp/w.sh $URL/w.sh || exit 6;
sh /tmp/w.sh $URL $NBLOBS")"
LOGS=("$VM_LOG")
API=$T/api0.sock
wait_api_socket
wait_for '^tick 2 ' "$BOOT_TIMEOUT"

# ticks LOG: the number of tick lines in LOG.
ticks() { tr -d '\r' <"$1" | grep -c '^tick [0-9]* '; }

t_start=$SECONDS
saves=0 diffs=0 early=0 jits=0 eagers=0 pause_total=0 chain=()
for round in $(seq 1 "$ROUNDS"); do
    # The moment: mostly after the lifetime's first tick plus 0-1.5 s; one
    # in four at once after the restore (0-0.3 s, maybe before any tick).
    if [ $((RANDOM % 4)) -eq 0 ] && [ "$round" -gt 1 ]; then
        early=$((early + 1))
        delay=$((RANDOM % 300))
    else
        end=$((SECONDS + 60))
        until [ "$(ticks "$VM_LOG")" -ge 1 ]; do
            kill -0 "$VM_PID" 2>/dev/null || fail "round $round: the VM exited before a tick"
            [ $SECONDS -lt $end ] || fail "round $round: no tick in 60 s"
            sleep 0.1
        done
        delay=$((RANDOM % 1500))
    fi
    sleep "$(printf '0.%03d' "$delay")"
    snap=$T/s$round
    opts=(--stop --json)
    # A diff snapshot one time in three (the chain of parents stays short:
    # every fourth diff in a row becomes a full one).
    if [ $((RANDOM % 3)) -eq 0 ] && [ "$round" -gt 1 ] && [ ${#chain[@]} -lt 4 ]; then
        opts+=(--diff)
        diffs=$((diffs + 1))
    else
        chain=()
    fi
    out=$("$NIMBUS" snapshot --api "$API" "${opts[@]}" "$snap" 2>&1) ||
        fail "round $round: nimbus snapshot ${opts[*]}: $out"
    chain+=("$snap")
    saves=$((saves + 1))
    pause_total=$((pause_total + $(jget "$out" pause_us)))
    wait_exit 30
    [ "$VM_STATUS" -eq 0 ] || fail "round $round: the VM saved with --stop exited with $(status_text "$VM_STATUS")"
    # Continue in a new process.
    VM_LOG=$T/r$round.log
    LAST_LOG=$VM_LOG
    API=$T/api$round.sock
    # Each lifetime runs interpreted or translated, from a lazily mapped or an
    # eagerly read memory file.
    ropts=(--jit off --memory lazy)
    [ $((RANDOM % 2)) -eq 0 ] && ropts[1]=on && jits=$((jits + 1))
    [ $((RANDOM % 3)) -eq 0 ] && ropts[3]=eager && eagers=$((eagers + 1))
    "$NIMBUS" restore "$snap" "${ropts[@]}" --console "file:$VM_LOG" --api "$API" </dev/null >"$T/r$round.err" 2>&1 &
    VM_PID=$!
    BG_PIDS+=("$VM_PID")
    LOGS+=("$VM_LOG")
    wait_api_socket
    # Snapshots off the current chain are no longer needed.
    for d in "$T"/s*; do
        case " ${chain[*]} " in *" $d "*) ;; *) rm -rf "$d" ;; esac
    done
done
t_rounds=$((SECONDS - t_start))

# Let the guest finish.
: >"$T/www/stop"
wait_exit 120
[ "$VM_STATUS" -eq 0 ] || fail "the last restore exited with $(status_text "$VM_STATUS"): $(tail -n 3 "$T/r$ROUNDS.err")"

# The monitor said nothing on its stderr in any restored lifetime.
for round in $(seq 1 "$ROUNDS"); do
    [ ! -s "$T/r$round.err" ] || fail "restore $round printed: $(head -n 2 "$T/r$round.err" | tr '\n' ' ')"
done

# The console: every tick once, in order, across all lifetimes.
for l in "${LOGS[@]}"; do tr -d '\r' <"$l"; done >"$T/all.log"
awk '/^tick [0-9]+ / { if ($2 != n + 1) { print "after tick", n, "came", $2; bad = 1 } n = $2 }
    END { exit bad }' "$T/all.log" >"$T/gaps" || fail "the ticks across the restores: $(head -n 3 "$T/gaps")"
grep -E '^(net [0-9]+ GAVE UP|readback .* BAD)' "$T/all.log" >"$T/bad" &&
    fail "the guest found bad data: $(head -n 3 "$T/bad" | tr '\n' ' ')"
done_line=$(grep '^done ' "$T/all.log") || fail "the guest did not finish its workload"
n=$(awk '{ print $2 }' <<<"$done_line")
[ "$(grep -c '^tick ' "$T/all.log")" -eq "$n" ] || fail "$n ticks done, but the logs hold $(grep -c '^tick ' "$T/all.log")"
[ "$done_line" = "done $n $(grep "^tick $n " "$T/all.log" | grep -o 'a=[0-9a-f]*') bad=0" ] ||
    fail "the guest's last line: $done_line"

# Every console line of every tick, once, whole, in order (the UART's and
# the kernel's buffers across the saves).
grep '^con ' "$T/all.log" >"$T/con"
for i in $(seq 1 "$n"); do
    for k in 1 2 3 4 5 6 7 8; do echo "con $i $k ....:....|....:....|....:....|....:....|....:....|"; done
done | diff - "$T/con" >"$T/condiff" || fail "the console lines differ (lost, repeated or damaged): $(head -n 3 "$T/condiff" | tr '\n' ' ')"

# The host's own account of each tick: disk hash, network hash, the chain.
acc=start
for i in $(seq 1 "$n"); do
    ds=$(seq $((i * 1000)) $((i * 1000 + 1999)) | sha256sum | cut -c1-64)
    ns=${blob_sum[i % NBLOBS]}
    acc=$(echo "$acc $i $ds $ns" | sha256sum | cut -c1-64)
    echo "tick $i d=$ds n=$ns a=$acc"
done >"$T/want"
grep '^tick ' "$T/all.log" | diff "$T/want" - >"$T/diff" ||
    fail "the guest's ticks differ from the host's account: $(head -n 4 "$T/diff" | tr '\n' ' ')"

# The file system after the last power-off.
e2fsck -fn "$IMG" >"$T/fsck.log" 2>&1 || { LAST_LOG=$T/fsck.log; fail "e2fsck -fn found problems"; }
debugfs -R 'cat /log' "$IMG" 2>/dev/null >"$T/disklog"
cut -d' ' -f1 "$T/disklog" | cmp -s - <(seq 1 "$n") || fail "the guest's log on the disk does not list ticks 1..$n"
grep '^tick ' "$T/all.log" | awk '{ print $2, substr($3, 3) }' | cmp -s - "$T/disklog" ||
    fail "the disk hashes in the guest's log on the disk differ from its console"
for k in 0 1 2 3 4 5 6 7; do
    j=$n
    while [ $((j % 8)) -ne $k ]; do j=$((j - 1)); done
    [ $j -ge 1 ] || continue
    debugfs -R "cat /w/f$k" "$IMG" 2>/dev/null | cmp -s - <(seq $((j * 1000)) $((j * 1000 + 1999))) ||
        fail "file /w/f$k on the disk is not tick $j's data"
done

retries=$(grep -c '^retry ' "$T/all.log")
generations=$(sed -n 's/^generations //p' "$T/all.log")
per_life=$(for l in "${LOGS[@]}"; do ticks "$l"; done | tr '\n' ' ')
echo "snapshot_roundtrip: seed $SEED: $saves saves ($diffs diff, $early early), restores $jits with --jit on, $eagers --memory eager, $n ticks (per lifetime: $per_life), $retries fetch retries, $generations new VM generations seen by the guest's init, pause $((pause_total / saves / 1000)) ms on average, rounds ${t_rounds}s" >&2
pass
