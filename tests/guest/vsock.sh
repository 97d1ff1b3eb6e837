#!/usr/bin/env bash
# virtio-vsock and the guest agent, with the real kernel's vsock driver.
# One VM with --vsock 3,path=$T/v.sock and nimbus.agent=1024; from the host,
# through tests/tools/agent_client.c:
#  - a command's stdout, stderr and exit status come back apart;
#  - 1 MiB of random data sent to `sha256sum` and through `cat` comes back
#    unchanged (both directions, flow control over many packets);
#  - a guest-initiated connection to host CID 2 port 5000 reaches the unix
#    listener at $T/v.sock_5000 and its answer comes back; port 5001, where
#    nothing listens, is refused;
#  - a connection to a guest port without a listener is refused;
#  - 100 connections in a row work (no connection slot leaks: there are 64);
#  - the device is virtio0 (the first free slot).
# Then the host tells the guest to power off (through the agent) and nimbus
# exits 0.
set -u
. "$(dirname "$0")/lib.sh"
guest_test vsock
CLIENT=${AGENT_CLIENT:-$(dirname "$NIMBUS")/tools/agent_client}
[ -x "$CLIENT" ] || fail "$CLIENT not found (make unit builds it)"
SOCK=$T/v.sock

start_vm vm --vsock "3,path=$SOCK" \
    --append "console=ttyS0 nimbus.agent=1024 -- while [ ! -e /tmp/stop ]; do sleep 0.2; done"
wait_for "$UP_LINE"
[ -S "$SOCK" ] || fail "no unix socket at $SOCK"

agent() { "$CLIENT" exec "$SOCK" 1024 "$@"; }

# The agent may still be starting: wait until it answers.
ok=0
for _ in $(seq 150); do
    if agent true </dev/null 2>/dev/null; then ok=1; break; fi
    sleep 0.2
done
[ $ok = 1 ] || fail "the agent never answered on vsock port 1024"

agent sh -c 'echo out; echo err >&2; exit 3' </dev/null >"$T/out" 2>"$T/err"
st=$?
[ $st -eq 3 ] || fail "exit status 3 came back as $st"
[ "$(cat "$T/out")" = out ] || fail "stdout: '$(cat "$T/out")'"
[ "$(cat "$T/err")" = err ] || fail "stderr: '$(cat "$T/err")'"
agent /no/such/program </dev/null >/dev/null 2>"$T/err"
st=$?
[ $st -eq 127 ] || fail "a missing program gave status $st, not 127"
grep -q 'cannot run /no/such/program' "$T/err" || fail "no message for a missing program"

head -c 1048576 /dev/urandom >"$T/data"
want=$(sha256sum <"$T/data" | cut -d' ' -f1)
got=$(agent sha256sum <"$T/data" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "sha256sum in the guest: $got, on the host: $want"
got=$(agent cat <"$T/data" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "1 MiB through cat came back changed"

# Guest-initiated: to the host's PATH_PORT listener.
"$CLIENT" serve "${SOCK}_5000" >"$T/serve.out" &
BG_PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$T/serve.out" && break; sleep 0.1; done
got=$(agent sh -c 'echo hello-from-guest | nimbus-agent connect 2 5000' </dev/null)
[ "$got" = "host got 17 bytes: hello-from-guest" ] || fail "guest-initiated answer: '$got'"
grep -q '^got 17 bytes: hello-from-guest$' "$T/serve.out" || fail "the host listener got: $(cat "$T/serve.out")"
agent sh -c 'echo x | nimbus-agent connect 2 5001' </dev/null >/dev/null 2>"$T/err" &&
    fail "a connection to a host port without a listener succeeded"
grep -q 'reset\|refused' "$T/err" || fail "refused guest connection: $(cat "$T/err")"

"$CLIENT" exec "$SOCK" 1025 true </dev/null 2>"$T/err" && fail "a guest port without a listener accepted"
grep -q 'refused' "$T/err" || fail "refused host connection: $(cat "$T/err")"

for i in $(seq 100); do
    got=$(agent echo "n$i" </dev/null) || fail "connection $i failed"
    [ "$got" = "n$i" ] || fail "connection $i answered '$got'"
done

id=$(agent cat /sys/bus/virtio/devices/virtio0/device </dev/null 2>/dev/null)
[ "$id" = 0x0013 ] || fail "virtio0 is not the vsock device (id 19): '$id'"

agent touch /tmp/stop </dev/null || fail "could not ask the guest to stop"
wait_exit 60
[ "$VM_STATUS" -eq 0 ] || fail "the VM ended with $(status_text "$VM_STATUS")"
[ -e "$SOCK" ] && fail "$SOCK is left behind after the VM exited"
pass
