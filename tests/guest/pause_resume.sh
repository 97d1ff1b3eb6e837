#!/usr/bin/env bash
# Pause and resume through the API (VM lifecycle: running <->
# paused), on an SMP guest that prints its uptime (CLOCK_MONOTONIC, from
# /proc/uptime) every 0.2 s and writes to a disk:
#  - pause: the reply says paused, GET /vm says paused, the console stays
#    silent and the VMM uses (almost) no CPU for 5 s;
#  - a second pause, and a resume while running, are refused with 409
#    wrong_state naming the state, and the VM runs on;
#  - resume: the output goes on, and guest time did not advance while paused
#    (the step between the uptime lines before and after the pause is well
#    under the pause's length: guest time stops, as under QEMU's stop/cont;
#    on a loaded host a tick alone can take more than a second);
#  - pausing and resuming 20 times in a row loses nothing: the guest's
#    counter has no gap, and its disk writes all land;
#  - a quit (SIGTERM) while paused ends the VM at once.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test pause_resume
API=$T/api.sock
truncate -s 16M "$T/disk.img"

start_vm vm --smp 2 --disk "$T/disk.img" --api "$API" --append "console=ttyS0 quiet -- $(guest_cmd_arg '
i=0
while [ $i -lt 100000 ]; do
    i=$((i + 1))
    echo "tick $i $(cut -d" " -f1 /proc/uptime)"
    echo $i | dd of=/dev/vda bs=512 seek=$((i % 1000)) conv=notrunc,sync 2>/dev/null
    sleep 0.2
done')"
wait_for '^tick 5 '
wait_api_socket

api_ok PUT /vm/pause
paused_at=$EPOCHREALTIME
[ "$(jget "$API_REPLY" state)" = paused ] || fail "pause: $API_REPLY"
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = paused ] || fail "GET /vm does not say paused"
lines=$(log_lines)
cpu0=$(cpu_ns "$VM_PID")
sleep 5
cpu1=$(cpu_ns "$VM_PID")
[ "$(log_lines)" -eq "$lines" ] || fail "the guest printed while paused"
cpu_ms=$(((cpu1 - cpu0) / 1000000))
[ "$cpu_ms" -lt 500 ] || fail "the paused VMM used ${cpu_ms} ms of CPU in 5 s"

api_err 409 wrong_state PUT /vm/pause
[ "$(jget "$API_REPLY" state)" = paused ] || fail "a second pause: $API_REPLY"
api_ok PUT /vm/resume
paused_s=$(awk -v a="$paused_at" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
[ "$(jget "$API_REPLY" state)" = running ] || fail "resume: $API_REPLY"
api_err 409 wrong_state PUT /vm/resume
[ "$(jget "$API_REPLY" state)" = running ] || fail "resume while running: $API_REPLY"
from=$lines
wait_for '^tick ' 30 "$from"

# Guest time stood still: the uptime lines either side of the pause are
# closer than the pause was long, by 2 s.
read -r before after < <(tr -d '\r' <"$VM_LOG" | awk -v n="$from" '/^tick [0-9]+ [0-9.]+$/ {
        if (NR <= n) b = $3; else if (a == "") a = $3 } END { print b, a }')
awk -v b="$before" -v a="$after" -v p="$paused_s" 'BEGIN { exit !(a - b < p - 2) }' ||
    fail "guest time advanced across the pause of ${paused_s}s: uptime $before, then $after"
echo "paused ${paused_s}s: guest uptime $before, then $after"

# 20 quick pause/resume cycles.
for _ in $(seq 20); do
    api_ok PUT /vm/pause
    api_ok PUT /vm/resume
done
last=$(tr -d '\r' <"$VM_LOG" | awk '/^tick / { n = $2 } END { print n }')
wait_for "^tick $((last + 3)) " 30
tr -d '\r' <"$VM_LOG" | awk '/^tick [0-9]+ / { if (n && $2 != n + 1) { print "gap", n, $2; bad = 1 } n = $2 }
    END { exit bad }' >"$T/gaps" || fail "the counter has gaps: $(head -n 3 "$T/gaps")"

# A quit while paused ends the VM at once.
api_ok PUT /vm/pause
kill -TERM "$VM_PID"
wait_exit 10
[ "$VM_STATUS" -eq $((128 + 15)) ] || fail "SIGTERM while paused: $(status_text "$VM_STATUS")"
# The disk got the guest's writes (block i % 1000 holds i, for the last ones).
n=$(tr -d '\r' <"$VM_LOG" | awk '/^tick [0-9]+ / { n = $2 } END { print n - 1 }')
got=$(dd if="$T/disk.img" bs=512 skip=$((n % 1000)) count=1 2>/dev/null | tr -d '\0' | head -n 1)
[ "$got" = "$n" ] || fail "disk block $((n % 1000)) holds '$got', want $n"
pass
