#!/usr/bin/env bash
# An idle guest costs (almost) nothing: boots to the interactive shell, waits
# until it sits at the prompt, then measures the nimbus process's CPU time
# (utime + stime from /proc/PID/stat) over 5 s windows: it must stay under 10%
# of one host core. Then `poweroff` at the prompt must end the VM with 0.
set -u
. "$(dirname "$0")/lib.sh"
guest_test idle

# What this guards against is a hart that spins instead of parking (100% of
# a core). The real idle cost depends on the host: 0.2% on the machine this
# was written on, 3-6% on 2026-11-30's, for the same binary and guest
# (the guest takes ~7 timer interrupts a second at the prompt).
LIMIT_PCT=10
WINDOW=5
hz=$(getconf CLK_TCK)

start_vm vm --append "console=ttyS0"
wait_for "$UP_LINE"
wait_for 'nimbus:[^ ]*# ' 60
sleep 2 # let the end of the boot settle

best=""
for _ in 1 2 3; do
    kill -0 "$VM_PID" 2>/dev/null || fail "VM exited at the prompt"
    t0=$(cpu_ticks "$VM_PID") || fail "cannot read /proc/$VM_PID/stat"
    s0=$(date +%s%N)
    sleep $WINDOW
    t1=$(cpu_ticks "$VM_PID") || fail "VM exited at the prompt"
    s1=$(date +%s%N)
    # CPU time / wall time, in hundredths of a percent.
    pct100=$(( (t1 - t0) * 1000000000 / hz * 10000 / (s1 - s0) ))
    [ -z "$best" ] || [ "$pct100" -lt "$best" ] && best=$pct100
    [ "$pct100" -lt $((LIMIT_PCT * 100)) ] && break
done
pct=$(printf '%d.%02d' $((best / 100)) $((best % 100)))
[ "$best" -lt $((LIMIT_PCT * 100)) ] || fail "idle guest at the prompt uses ${pct}% of a host core (limit ${LIMIT_PCT}%)"

send 'poweroff\n'
wait_exit 60
[ "$VM_STATUS" -eq 0 ] || fail "after poweroff at the prompt: $(status_text "$VM_STATUS")"
echo "idle: ${pct}% of a host core" >&2
pass
