#!/usr/bin/env bash
# Pause and resume through the control socket (VM lifecycle: running <->
# paused), on an SMP guest that prints its uptime (CLOCK_MONOTONIC, from
# /proc/uptime) every 0.2 s and writes to a disk:
#  - pause: the reply says paused, status says paused, the console stays
#    silent and the VMM uses (almost) no CPU for 3 s;
#  - a second pause, and a resume while running, are refused with a
#    wrong-state error, and the VM runs on;
#  - resume: the output goes on, and guest time did not advance while paused
#    (no step of a second or more between two uptime lines: guest time
#    stops, as under QEMU's stop/cont);
#  - pausing and resuming 20 times in a row loses nothing: the guest's
#    counter has no gap, and its disk writes all land;
#  - a quit (SIGTERM) while paused ends the VM at once.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/balloon_lib.bash"
guest_test pause_resume
CTL=$T/ctl.sock
truncate -s 16M "$T/disk.img"

start_vm vm --smp 2 --disk "$T/disk.img" --control "$CTL" --append "console=ttyS0 quiet -- $(guest_cmd_arg '
i=0
while [ $i -lt 100000 ]; do
    i=$((i + 1))
    echo "tick $i $(cut -d" " -f1 /proc/uptime)"
    echo $i | dd of=/dev/vda bs=512 seek=$((i % 1000)) conv=notrunc,sync 2>/dev/null
    sleep 0.2
done')"
wait_for '^tick 5 '
wait_ctl_socket

reply=$(ctl '{"cmd":"pause"}')
[ "$(jget "$reply" state)" = paused ] || fail "pause: $reply"
[ "$(jget "$(ctl '{"cmd":"status"}')" state)" = paused ] || fail "status does not say paused"
lines=$(log_lines)
cpu0=$(cpu_ns "$VM_PID")
sleep 3
cpu1=$(cpu_ns "$VM_PID")
[ "$(log_lines)" -eq "$lines" ] || fail "the guest printed while paused"
cpu_ms=$(((cpu1 - cpu0) / 1000000))
[ "$cpu_ms" -lt 300 ] || fail "the paused VMM used ${cpu_ms} ms of CPU in 3 s"

reply=$(ctl '{"cmd":"pause"}')
case $(jget "$reply" error) in *"wrong state"*) ;; *) fail "a second pause: $reply" ;; esac
ctl '{"cmd":"resume"}' | grep -q '"running"' || fail "resume failed"
reply=$(ctl '{"cmd":"resume"}')
case $(jget "$reply" error) in *"wrong state"*) ;; *) fail "resume while running: $reply" ;; esac
from=$lines
wait_for '^tick ' 30 "$from"
sleep 1

# Guest time stood still: consecutive uptime lines never jump by a second.
tr -d '\r' <"$VM_LOG" | awk '/^tick [0-9]+ [0-9.]+$/ {
        if (prev != "" && $3 - prev >= 1.0) { print "jump", prevn, $2, $3 - prev; bad = 1 }
        prev = $3; prevn = $2 }
    END { exit bad }' >"$T/jumps" || fail "guest time advanced across the pause: $(head -n 3 "$T/jumps")"

# 20 quick pause/resume cycles.
for _ in $(seq 20); do
    ctl '{"cmd":"pause"}' | grep -q '"paused"' || fail "pause in the loop failed"
    ctl '{"cmd":"resume"}' | grep -q '"running"' || fail "resume in the loop failed"
done
last=$(tr -d '\r' <"$VM_LOG" | awk '/^tick / { n = $2 } END { print n }')
wait_for "^tick $((last + 3)) " 30
tr -d '\r' <"$VM_LOG" | awk '/^tick [0-9]+ / { if (n && $2 != n + 1) { print "gap", n, $2; bad = 1 } n = $2 }
    END { exit bad }' >"$T/gaps" || fail "the counter has gaps: $(head -n 3 "$T/gaps")"

# A quit while paused ends the VM at once.
ctl '{"cmd":"pause"}' | grep -q '"paused"' || fail "the last pause failed"
kill -TERM "$VM_PID"
wait_exit 10
[ "$VM_STATUS" -eq $((128 + 15)) ] || fail "SIGTERM while paused: $(status_text "$VM_STATUS")"
# The disk got the guest's writes (block i % 1000 holds i, for the last ones).
n=$(tr -d '\r' <"$VM_LOG" | awk '/^tick [0-9]+ / { n = $2 } END { print n - 1 }')
got=$(dd if="$T/disk.img" bs=512 skip=$((n % 1000)) count=1 2>/dev/null | tr -d '\0' | head -n 1)
[ "$got" = "$n" ] || fail "disk block $((n % 1000)) holds '$got', want $n"
pass
