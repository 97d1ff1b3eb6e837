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
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test watchdog
API=$T/api.sock
EVENTS=$T/events

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
