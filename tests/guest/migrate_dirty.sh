#!/usr/bin/env bash
# Live migration of a guest that dirties its memory faster than the stream
# carries it (docs/migration.md, "Pre-copy" and "Failure"). The guest
# rewrites a working set (an 8 MiB file in its RAM, tmpfs) in place, pass
# after pass, with one of four 8 MiB patterns made at the start ("pattern
# K" repeated) in turn, and before each pass checks the file's MD5 against
# the previous pass's pattern: a page lost, stale or mixed up in a migration
# (unless it is exactly a multiple of four passes old) shows as a "BAD" line
# at the next pass; a damaged pattern file would too. Each pass prints
# "pass N UPTIME". The test measures the guest's dirty rate and limits the
# stream to half of it, and to no more than carries the working set in 1.5
# times the downtime limit (QEMU's default, 300 ms, so that the kernel's own
# writes at full throttle fit): what a round leaves dirty is the working set
# however fast the guest rewrites it, and a faster guest must not make it
# fit in the downtime. Then the test moves the VM:
#   1. pre-copy, at most 4 rounds, without auto-converge: it cannot
#      converge, ends with a stop-and-copy and says so ("did not converge");
#   2. pre-copy with --auto-converge: converges within the round limit (30),
#      the guest throttled on the way;
#   3. post-copy (no bandwidth limit): completes;
#   4. hybrid, one pre-copy round then post-copy: the working set, rewritten
#      many times over during round 0 and sent then, must be fetched again
#      (the destination drops its old copies);
# after each, the source process has ended with status 0 and the passes go
# on from the source's, with no gap and no BAD line, over two whole passes
# on the destination (the working set checked there). Then
#   5. post-copy with the source killed once the destination runs the VM:
#      the destination pauses (postcopy-paused), keeps serving its API,
#      refuses to cancel (its missing pages are lost with the source), and
#      is destroyed on request.
# Needs userfaultfd for this user for 3 to 5 (root, or
# vm.unprivileged_userfaultfd=1): those are skipped otherwise.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test migrate_dirty

MIB=8
start_vm vm0 --mem 256M --api "$T/api0.sock" --append "console=ttyS0 quiet -- $(guest_cmd_arg '
k=0
while [ $k -lt 4 ]; do
    yes "pattern $k" | head -c 1048576 >/tmp/pat$k
    n=1
    while [ $n -lt '$MIB' ]; do cat /tmp/pat$k /tmp/pat$k >/tmp/double; mv /tmp/double /tmp/pat$k; n=$((n * 2)); done
    md5sum </tmp/pat$k >/tmp/sum$k || echo "BAD setup"
    k=$((k + 1))
done
cp /tmp/pat0 /tmp/ws || echo "BAD setup"
p=0
while :; do
    p=$((p + 1))
    [ "$(md5sum </tmp/ws)" = "$(cat /tmp/sum$(((p - 1) % 4)))" ] || echo "BAD working set before pass $p"
    dd if=/tmp/pat$((p % 4)) of=/tmp/ws bs=1M conv=notrunc 2>/dev/null
    echo "pass $p $(cut -d" " -f1 /proc/uptime)"
done')"
API=$T/api0.sock
wait_api_socket
wait_for '^pass 6 '

# The dirty rate from passes 2 to 6 (the guest's clock); the stream's limit
# is half of it, and at most the working set per 450 ms (1.5 x 300 ms).
read -r rate bw < <(tr -d '\r' <"$VM_LOG" | awk -v mib=$MIB '
    $1 == "pass" && $2 == 2 { t2 = $3 } $1 == "pass" && $2 == 6 { t6 = $3 }
    END { r = 4 * mib * 1048576 / (t6 - t2); b = int(r / 2); cap = int(mib * 1048576 / 0.45)
          if (b > cap) b = cap; if (b < 1048576) b = 1048576
          printf "%.1f %d\n", r / 1048576, b }')
echo "the guest dirties $rate MiB/s; the stream is limited to $((bw / 1024)) KiB/s"

last_pass() { tr -d '\r' <"$1" | awk '$1 == "pass" && $2 ~ /^[0-9]+$/ { n = $2 } END { print n + 0 }'; }

# start_dest NAME: a destination waiting at unix:$T/NAME.mig, its console in
# $T/NAME.log, its API at $T/NAME.sock; sets DEST_PID.
start_dest() {
    : >"$T/$1.log"
    "$NIMBUS" restore --incoming "unix:$T/$1.mig" --api "$T/$1.sock" --console "file:$T/$1.log" \
        </dev/null >"$T/$1.err" 2>&1 &
    DEST_PID=$!
    BG_PIDS+=("$DEST_PID")
    for _ in $(seq 100); do
        grep -qs 'waiting for a migration on' "$T/$1.err" && return 0
        kill -0 "$DEST_PID" 2>/dev/null || fail "$1: $(cat "$T/$1.err")"
        sleep 0.1
    done
    fail "$1: not listening: $(cat "$T/$1.err")"
}

LOGS=("$VM_LOG")
# hop N [migrate options]: moves the VM to destination vmN; MIG_OUT is what
# nimbus migrate printed.
hop() {
    local n=$1 from
    shift
    start_dest "vm$n"
    MIG_OUT=$(timeout 300 "$NIMBUS" migrate --api "$API" --to "unix:$T/vm$n.mig" "$@" 2>&1) || fail "hop $n ($*): nimbus migrate: $MIG_OUT"
    echo "hop $n ($*): $(grep '^migration' <<<"$MIG_OUT")"
    grep -q '^migration completed' <<<"$MIG_OUT" || fail "hop $n: $MIG_OUT"
    wait_exit 30
    [ "$VM_STATUS" = 0 ] || fail "hop $n: the source ended with $(status_text "$VM_STATUS")"
    from=$(last_pass "$VM_LOG")
    VM_PID=$DEST_PID
    VM_LOG=$T/vm$n.log
    LAST_LOG=$VM_LOG
    LOGS+=("$VM_LOG")
    API=$T/vm$n.sock
    # Two whole passes here: the working set checked against what came over.
    wait_for "^pass $((from + 3)) " 120
    cat "${LOGS[@]}" | tr -d '\r' | awk '$1 == "pass" { if (n && $2 != n + 1) { print "after", n, "came", $2; bad = 1 } n = $2 }
        /BAD/ { print; bad = 1 } END { exit bad }' >"$T/check" ||
        fail "hop $n: the guest's memory: $(head -n 3 "$T/check")"
}

hop 1 --max-bandwidth "$bw" --max-rounds 4 --downtime-limit 300
grep -q 'did not converge' <<<"$MIG_OUT" ||
    fail "pre-copy at half the dirty rate converged without auto-converge: $MIG_OUT"

hop 2 --max-bandwidth "$bw" --auto-converge --downtime-limit 300
! grep -q 'did not converge' <<<"$MIG_OUT" ||
    fail "pre-copy with auto-converge did not converge: $MIG_OUT"
grep -Eq 'throttle [1-9][0-9]*%' <<<"$MIG_OUT" || fail "auto-converge never throttled: $MIG_OUT"
echo "auto-converge: throttle up to $(grep -Eo 'throttle [0-9]+%' <<<"$MIG_OUT" | sort -k2 -n | tail -n 1)"

if [ "$(id -u)" != 0 ] && [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 1 ]; then
    echo "post-copy skipped: no userfaultfd for this user"
    api_ok PUT /vm/destroy
    wait_exit 30
    pass
fi
hop 3 --postcopy
hop 4 --max-bandwidth "$bw" --postcopy-after 1

# The source killed after the switch: the destination waits for the pages
# only the source had, paused, and says so.
start_dest vm5
SRC_PID=$VM_PID
"$NIMBUS" migrate --api "$API" --to "unix:$T/vm5.mig" --postcopy --max-bandwidth "$bw" \
    >"$T/mig5.out" 2>&1 &
MIG_PID=$!
API=$T/vm5.sock
VM_PID=$DEST_PID
wait_api 60 /vm/migration migration.phase "v == 'postcopy'"
kill -9 "$SRC_PID"
wait "$MIG_PID"
echo "source killed in post-copy: nimbus migrate exited $?: $(tail -n 1 "$T/mig5.out")"
wait_api 20 /vm/migration migration.phase "v == 'postcopy-paused'"
[ "$(jget "$API_REPLY" migration.pages_remaining)" -gt 0 ] ||
    fail "the source was killed with no page left to send: $API_REPLY"
echo "destination paused with $(jget "$API_REPLY" migration.pages_remaining) pages lost with the source"
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = migrating ] || fail "the paused destination: $API_REPLY"
api_err 409 busy PUT /vm/migration/cancel
api_ok PUT /vm/destroy
wait_exit 30
[ "$VM_STATUS" != 124 ] || fail "the paused destination did not end on destroy"
pass
