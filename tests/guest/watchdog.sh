#!/usr/bin/env bash
# The guest's watchdog and its panics on the API's event stream (docs/api.md
# "Events"), on the default initramfs guest run with --watchdog=pause
# --on-panic poweroff --api:
#  - busybox's watchdog applet pets /dev/watchdog (Linux's sunxi_wdt driving
#    the board's sun6i watchdog) every 0.3 s with a 1 s timeout: after 2 s,
#    and for as long as the host takes to look (the guest waits for its
#    word on the console), the VM runs and no "watchdog" event came;
#  - the applet is killed with SIGKILL (no magic close, so the driver leaves
#    the watchdog running): within the timeout comes the event
#    {"kind":"watchdog","action":"pause"}, then the state paused, and a line
#    on stderr; the guest stays paused (its clock too: a line it would print
#    3 s after the kill does not come);
#  - resumed, the guest crashes its kernel (sysrq c): a "guest_panic" event
#    with the panic's message and the action, a line on stderr, and the VM
#    powers off (exit status 0).
# Meanwhile a second VM, run with --watchdog (reset, the default; booted at
# the same time, so the test takes hardly longer), arms the watchdog and
# stops feeding it (SIGKILL): the event {"kind":"watchdog","action":"reset"}
# and a line on stderr come, the guest boots again in the same process (its
# "ready" a second time, the first boot's "no reset" never), the counters go
# on counting across the reboot, the VM is running; the second boot powers
# off normally, and its event stream is just that.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test watchdog
API=$T/api.sock
EVENTS=$T/events

# The reset VM first (its console's FIFO then on fd 9): its guest arms the
# watchdog when told "arm", and powers off when told anything else.
start_vm vmreset --watchdog --api "$T/reset.sock" \
    --append "console=ttyS0 quiet -- $(guest_cmd_arg '
echo ready
read w </dev/console
if [ "$w" = arm ]; then
    watchdog -F -T 1 -t 300ms /dev/watchdog & p=$!
    sleep 1
    kill -9 $p
    sleep 30
    echo "no reset"
fi
echo "second boot"')"
exec 9>&8
R_PID=$VM_PID R_LOG=$VM_LOG
# on_reset_vm CMD...: runs CMD (lib.sh's console helpers) on the reset VM.
on_reset_vm() {
    local pid=$VM_PID log=$VM_LOG last=$LAST_LOG
    VM_PID=$R_PID VM_LOG=$R_LOG LAST_LOG=$R_LOG
    exec 7>&8 8>&9
    "$@"
    exec 8>&7 7>&-
    VM_PID=$pid VM_LOG=$log LAST_LOG=$last
}
# api_reset CMD...: runs CMD (api_lib.bash) against the reset VM's API.
api_reset() { local a=$API; API=$T/reset.sock; "$@"; API=$a; }

start_vm vm --watchdog=pause --on-panic poweroff --api "$API" \
    --append "console=ttyS0 quiet -- $(guest_cmd_arg '
watchdog -F -T 1 -t 300ms /dev/watchdog & p=$!
sleep 2
echo petted
read go </dev/console
kill -9 $p
sleep 3
echo resumed
echo c > /proc/sysrq-trigger')"
wait_api_socket
"$NIMBUS" events --api "$API" --json >"$EVENTS" 2>&1 &
EVENTS_PID=$!
BG_PIDS+=("$EVENTS_PID")

# wait_event REGEX SECONDS: waits for a line of the event stream.
wait_event() {
    local end=$((SECONDS + $2))
    until grep -Eq -- "$1" "$EVENTS"; do
        kill -0 "$EVENTS_PID" 2>/dev/null || fail "the event stream ended before /$1/: $(cat "$EVENTS")"
        [ $SECONDS -lt $end ] || fail "no /$1/ event in ${2}s: $(cat "$EVENTS")"
        sleep 0.1
    done
}
wait_event '"kind":"state"' 10   # the stream's first line: it is up

# The reset VM: armed once it is up, then left to expire while the first
# VM goes on.
on_reset_vm wait_for '^ready$'
api_reset wait_api_socket
"$NIMBUS" events --api "$T/reset.sock" --json >"$T/reset-events" 2>&1 &
R_EVENTS_PID=$!
BG_PIDS+=("$R_EVENTS_PID")
api_reset api_ok GET /vm/counters
insns_first=$(jget "$API_REPLY" totals.instructions)
[ "$insns_first" -gt 0 ] || fail "the reset VM's counters: $API_REPLY"
end=$((SECONDS + 10))
until grep -q '"kind":"state"' "$T/reset-events"; do   # the stream is up
    [ $SECONDS -lt $end ] || fail "the reset VM's event stream: $(cat "$T/reset-events")"
    sleep 0.1
done
on_reset_vm send 'arm\n'

wait_for '^petted$'
grep -q '"kind":"watchdog"' "$EVENTS" && fail "a watchdog event while the guest petted it: $(cat "$EVENTS")"
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = running ] || fail "not running while petted: $API_REPLY"
[ "$(jget "$API_REPLY" config.watchdog)" = pause ] || fail "GET /vm config: $API_REPLY"
[ "$(jget "$API_REPLY" config.on_panic)" = poweroff ] || fail "GET /vm config: $API_REPLY"
grep -q '"kind":"watchdog"' "$EVENTS" && fail "a watchdog event while the guest petted it: $(cat "$EVENTS")"
send 'go\n'

wait_event '"kind":"watchdog"' 10
grep '"kind":"watchdog"' "$EVENTS" | grep -q '"action":"pause"' ||
    fail "the watchdog event: $(grep watchdog "$EVENTS")"
wait_event '"new":"paused"' 10
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = paused ] || fail "not paused after the watchdog: $API_REPLY"
grep -q "nimbus: the guest's watchdog expired; action: pause" "$VM_LOG" ||
    fail "no line on stderr for the watchdog"
# Guest time stands still: the guest's "resumed", due 2 s or more after the
# expiry in guest time, does not come while paused.
sleep 2.5
grep -q '^resumed' <(tr -d '\r' <"$VM_LOG") && fail "the guest ran on after the watchdog paused it"

api_ok PUT /vm/resume

# The reset VM's watchdog expired meanwhile and it booted again.
end=$((SECONDS + 90))
until [ "$(tr -d '\r' <"$R_LOG" | grep -c '^ready$')" -ge 2 ]; do
    kill -0 "$R_PID" 2>/dev/null || fail "the reset VM exited: $(tail -n 5 "$R_LOG")"
    [ $SECONDS -lt $end ] || fail "the reset VM did not boot again: $(tail -n 5 "$R_LOG" | tr -d '\r')"
    sleep 0.2
done
grep -q '^no reset' <(tr -d '\r' <"$R_LOG") && fail "the reset VM's guest ran on past its watchdog"
grep -q "nimbus: the guest's watchdog expired; action: reset" "$R_LOG" ||
    fail "no line on stderr for the reset VM's watchdog"
api_reset api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = running ] || fail "the reset VM after its reboot: $API_REPLY"
api_reset api_ok GET /vm/counters
insns_second=$(jget "$API_REPLY" totals.instructions)
[ "$insns_second" -gt "$insns_first" ] ||
    fail "the reset VM's instructions went from $insns_first to $insns_second over the reboot"
on_reset_vm send 'done\n'
on_reset_vm wait_exit 30
[ "$VM_STATUS" -eq 0 ] || fail "the reset VM's second boot: $(status_text "$VM_STATUS"), want a power-off"
grep -q '^second boot' <(tr -d '\r' <"$R_LOG") || fail "the reset VM's second boot did not run on"
wait "$R_EVENTS_PID"
python3 - "$T/reset-events" <<'EOF' || fail "the reset VM's event stream: $(cat "$T/reset-events")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
seen = [(e["kind"], e.get("new") or e.get("action")) for e in ev]
ok = seen == [("state", "running"), ("watchdog", "reset"), ("state", "shutdown")]
if not ok:
    print("got", seen, file=sys.stderr)
sys.exit(0 if ok else 1)
EOF

wait_exit 30
[ "$VM_STATUS" -eq 0 ] || fail "after the panic: $(status_text "$VM_STATUS"), want a power-off"
wait "$EVENTS_PID"
grep -q "nimbus: guest panic: sysrq triggered crash; action: poweroff" "$VM_LOG" ||
    fail "no line on stderr for the panic"
# The whole stream, in order.
python3 - "$EVENTS" <<'EOF' || fail "the event stream: $(cat "$EVENTS")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
seen = [(e["kind"], e.get("new") or e.get("action")) for e in ev]
want = [("state", "running"), ("watchdog", "pause"), ("state", "paused"), ("state", "running"),
        ("guest_panic", "poweroff"), ("state", "shutdown")]
panic = [e for e in ev if e["kind"] == "guest_panic"]
ok = seen == want and panic[0]["message"] == "sysrq triggered crash"
if not ok:
    print("got", seen, file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
pass
