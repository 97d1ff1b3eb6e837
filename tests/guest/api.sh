#!/usr/bin/env bash
# The per-VM API (docs/api.md) on a real guest (2 harts, a balloon, vsock
# with the guest agent), through the CLI and through raw HTTP
# (tests/guest/api_client.py checks every reply against docs/openapi.json;
# curl for the raw edge cases):
#  - the socket path: a regular file refused (and kept), a stale socket
#    replaced, a live one (another VM's) refused;
#  - the server serves exactly the documented routes;
#  - every endpoint: status, counters (instructions grow), pause, resume,
#    balloon, balloon stats, snapshot (full, diff; a diff before any full
#    one, an existing directory, diff + compress refused), reset (the guest boots again), shutdown (the agent powers
#    the guest off: exit status 0), destroy (a second VM, paused: ends at once);
#  - every wrong state: pause when paused, resume when running, shutdown
#    when paused, each 409 wrong_state naming the state; shutdown without
#    an agent (409 no_agent); the CLI exits 1 with the server's message;
#  - malformed JSON, unknown and wrong-typed fields, an oversized body
#    (413) and oversized headers (431), an unknown path (404) and method
#    (405): each a 4xx JSON error, and the VM runs on;
#  - concurrent clients: one holding half a request while 12 others are
#    served at once;
#  - the event stream (CLI and raw) sees pause and resume, and shutdown.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test api
API=$T/api.sock
N=$NIMBUS

# A regular file in the way: refused with one line naming it, untouched.
echo keep >"$T/file"
"$N" run --kernel "$KERNEL" --initrd "$INITRD" --api "$T/file" </dev/null >"$T/file.log" 2>&1
st=$?
[ $st -eq 1 ] || fail "--api on a regular file: exit $st"
grep -q "$T/file exists and is not a socket" "$T/file.log" || fail "message: $(cat "$T/file.log")"
[ "$(cat "$T/file")" = keep ] || fail "the regular file was changed"

# A stale socket (its server is gone) is replaced.
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$API"
truncate -s 8M "$T/d.img"
start_vm vm --smp 2 --mem 256M --disk "$T/d.img" --balloon --vsock "3,path=$T/v.sock" --api "$API" \
    --append "console=ttyS0 nimbus.agent=1024"
wait_for "$UP_LINE"
wait_api_socket
"$N" run --kernel "$KERNEL" --initrd "$INITRD" --api "$API" </dev/null >"$T/busy.log" 2>&1
st=$?
[ $st -eq 1 ] && grep -q "is in use by another process" "$T/busy.log" ||
    fail "second VM on a live --api socket: exit $st: $(cat "$T/busy.log")"

python3 "$API_CLIENT" "$API" --routes 2>"$T/routes.err" || fail "routes: $(cat "$T/routes.err")"

# Status and counters, raw and through the CLI.
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = running ] && [ "$(jget "$API_REPLY" config.harts)" = 2 ] &&
    [ "$(jget "$API_REPLY" config.ram_mib)" = 256 ] || fail "GET /vm: $API_REPLY"
out=$("$N" status --api "$API") || fail "nimbus status failed"
grep -q '^state: *running$' <<<"$out" && grep -q '^harts: *2$' <<<"$out" || fail "nimbus status: $out"
[ "$(jget "$("$N" status --api "$API" --json)" state)" = running ] || fail "nimbus status --json"
api_ok GET /vm/counters
i0=$(jget "$API_REPLY" harts.0.instructions)
[ "$i0" -gt 1000000 ] && [ "$(jget "$API_REPLY" totals.tlb_misses)" -gt 0 ] &&
    [ "$(jget "$API_REPLY" totals.sbi_calls)" -gt 0 ] || fail "counters: $API_REPLY"
# The disk: Linux read its partition table when it probed it.
[ "$(jget "$API_REPLY" devices.0.kind)" = blk ] && [ "$(jget "$API_REPLY" devices.0.reads)" -gt 0 ] &&
    [ "$(jget "$API_REPLY" devices.0.read_bytes)" -ge 512 ] || fail "disk counters: $API_REPLY"
out=$("$N" counters --api "$API") || fail "nimbus counters failed"
grep -q '^total ' <<<"$out" && grep -q 'device balloon:' <<<"$out" &&
    grep -q 'device blk:.* reads=[1-9]' <<<"$out" || fail "nimbus counters: $out"
guest_value BUSY "i=0; while [ \$i -lt 20000 ]; do i=\$((i+1)); done; echo \$i"
api_ok GET /vm/counters
[ "$(jget "$API_REPLY" totals.instructions)" -gt "$i0" ] || fail "instructions did not grow: $API_REPLY"

# The event streams: the CLI's and a raw one.
"$N" events --api "$API" --json -n 3 >"$T/ev.cli" 2>&1 &
ev_cli=$!
BG_PIDS+=("$ev_cli")
# No time limit of its own: the stream ends when the VM does (a limit
# cut it short on a loaded machine before the shutdown it must see).
curl -sN --unix-socket "$API" http://localhost/vm/events >"$T/ev.raw" 2>&1 &
BG_PIDS+=($!)
end=$((SECONDS + 30))
until [ -s "$T/ev.cli" ] && [ -s "$T/ev.raw" ]; do
    [ $SECONDS -lt $end ] || fail "the event streams did not start"
    sleep 0.1
done

# Pause and resume with every wrong state, through the CLI and raw.
out=$("$N" pause --api "$API") && [ "$out" = "state: paused" ] || fail "nimbus pause: $out"
out=$("$N" pause --api "$API" 2>&1) && fail "a second nimbus pause succeeded: $out"
grep -q "wrong state.*paused" <<<"$out" || fail "nimbus pause when paused: $out"
api_err 409 wrong_state PUT /vm/pause
[ "$(jget "$API_REPLY" state)" = paused ] || fail "pause when paused: $API_REPLY"
api_err 409 wrong_state PUT /vm/shutdown
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = paused ] || fail "GET /vm while paused: $API_REPLY"
api_ok PUT /vm/resume '{}'
[ "$(jget "$API_REPLY" state)" = running ] || fail "resume: $API_REPLY"
api_err 409 wrong_state PUT /vm/resume
[ "$(jget "$API_REPLY" state)" = running ] || fail "resume when running: $API_REPLY"
out=$("$N" resume --api "$API" 2>&1) && fail "nimbus resume when running succeeded: $out"
wait "$ev_cli" || fail "nimbus events: $(cat "$T/ev.cli")"
python3 - "$T/ev.cli" <<'PY' || fail "CLI event stream: $(cat "$T/ev.cli")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert [(e["kind"], e.get("old"), e["new"]) for e in ev] == [
    ("state", None, "running"), ("state", "running", "paused"), ("state", "paused", "running")], ev
assert all(isinstance(e["time_ms"], int) for e in ev), ev
PY

# The balloon, and snapshots (docs/snapshots.md).
out=$("$N" balloon --api "$API" 16) && [ "$out" = "balloon target: 16 MiB" ] || fail "nimbus balloon 16: $out"
api_ok PUT /vm/balloon '{"target_mib":0}'
[ "$(jget "$API_REPLY" target_mib)" = 0 ] || fail "balloon: $API_REPLY"
api_ok GET /vm/balloon/stats
[ "$(jget "$API_REPLY" target_mib)" = 0 ] || fail "balloon stats: $API_REPLY"
api_err 400 bad_request PUT /vm/snapshot "{\"path\":\"$T/snap0\",\"diff\":true}"
api_ok PUT /vm/snapshot "{\"path\":\"$T/snap\"}"
[ -s "$T/snap/vm.state" ] && [ "$(jget "$API_REPLY" state)" = running ] || fail "snapshot: $API_REPLY"
api_err 409 exists PUT /vm/snapshot "{\"path\":\"$T/snap\"}"
api_ok PUT /vm/snapshot "{\"path\":\"$T/snap-diff\",\"diff\":true}"
[ -s "$T/snap-diff/vm.state" ] || fail "diff snapshot: $API_REPLY"
api_err 400 bad_request PUT /vm/snapshot "{\"path\":\"$T/snap-z\",\"diff\":true,\"compress\":true}"

# Bad requests: each a 4xx JSON error; the VM runs on.
api_err 400 bad_request PUT /vm/balloon '{bad'
api_err 400 bad_request PUT /vm/balloon '{"target_mib":"64"}'
api_err 400 bad_request PUT /vm/balloon '{"target_mib":-1}'
api_err 400 bad_request PUT /vm/balloon '{"target_mib":8,"extra":1}'
api_err 400 bad_request PUT /vm/balloon '[1,2]'
api_err 400 bad_request PUT /vm/pause '{"x":1}'
api_err 400 bad_request PUT /vm/snapshot '{"path":5}'
api_err 404 not_found GET /nope
api_err 404 not_found GET /vm/balloon/stats/x
api_err 405 method_not_allowed DELETE /vm
api_err 405 method_not_allowed POST /vm/pause
head -c 20000 /dev/zero | tr '\0' 'a' | sed 's/^/{"target_mib":1,"x":"/; s/$/"}/' >"$T/big.json"
code=$(curl -s -o "$T/big.out" -w '%{http_code}' --unix-socket "$API" -X PUT \
    --data-binary @"$T/big.json" http://localhost/vm/balloon)
[ "$code" = 413 ] && [ "$(jget "$(cat "$T/big.out")" code)" = too_large ] ||
    fail "oversized body: $code $(head -c 200 "$T/big.out")"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$API" \
    -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' b)" http://localhost/vm)
[ "$code" = 431 ] || fail "oversized headers: HTTP $code"

# Concurrent clients: A holds half a request while 12 others are served.
python3 - "$API" <<'PY' || fail "concurrent clients"
import json, socket, subprocess, sys
a = socket.socket(socket.AF_UNIX); a.settimeout(30); a.connect(sys.argv[1])
a.sendall(b"GET /vm HTTP/1.1\r\nHost: x\r\n")
procs = [subprocess.Popen(["curl", "-s", "--max-time", "30", "--unix-socket", sys.argv[1],
                           "http://localhost/vm/counters"], stdout=subprocess.PIPE) for _ in range(12)]
for p in procs:
    out, _ = p.communicate()
    assert p.returncode == 0 and "totals" in json.loads(out), out
a.sendall(b"\r\n")
reply = a.recv(65536).decode()
assert reply.startswith("HTTP/1.1 200") and '"state":"running"' in reply, reply
PY
guest_value ALIVE "echo yes"
[ "$GUEST_VALUE" = yes ] || fail "the guest does not answer after the bad requests"

# Reset: the guest boots again, and runs.
from=$(log_lines)
api_ok PUT /vm/reset
wait_for "$UP_LINE" "$BOOT_TIMEOUT" "$from"
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = running ] || fail "after the reset: $API_REPLY"

# Shutdown: the agent powers the guest off; the stream sees it.
out=$("$N" shutdown --api "$API" --timeout 60 --wait) || fail "nimbus shutdown: $out"
grep -q "the VM has ended" <<<"$out" || fail "nimbus shutdown: $out"
wait_exit 30
[ "$VM_STATUS" -eq 0 ] || fail "VM after shutdown: $(status_text "$VM_STATUS")"
grep -q 'powered off\|reboot: Power down' <(tr -d '\r' <"$VM_LOG") || fail "the guest did not power itself off"
[ ! -e "$API" ] || fail "API socket left behind"
python3 - "$T/ev.raw" <<'PY' || fail "raw event stream: $(cat "$T/ev.raw")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
kinds = [(e["kind"], e.get("new") or e.get("phase")) for e in ev]
for want in [("state", "paused"), ("state", "running"), ("state", "saving"), ("snapshot", None),
             ("reset", None), ("shutdown", "requested"), ("shutdown", "agent_asked"),
             ("state", "shutdown")]:
    assert want in kinds, (want, kinds)
# A snapshot: running -> saving, the snapshot's figures, saving -> running.
i = kinds.index(("state", "saving"))
assert ev[i]["old"] == "running" and kinds[i + 1] == ("snapshot", None), kinds
assert ev[i + 1]["memory_bytes"] > 0 and ev[i + 2]["old"] == "saving", ev[i:i + 3]
assert kinds[-1] == ("state", "shutdown"), kinds
PY

# A VM without an agent: shutdown refused; destroy ends it at once, paused.
start_vm vm2 --api "$API"
wait_for "$UP_LINE"
wait_api_socket
api_err 409 no_agent PUT /vm/shutdown
out=$("$N" shutdown --api "$API" 2>&1) && fail "nimbus shutdown without an agent succeeded: $out"
grep -q "no agent" <<<"$out" || fail "nimbus shutdown without an agent: $out"
api_ok PUT /vm/pause
out=$("$N" destroy --api "$API") || fail "nimbus destroy: $out"
wait_exit 10
[ "$VM_STATUS" -eq 0 ] || fail "VM after destroy: $(status_text "$VM_STATUS")"
out=$("$N" status --api "$API" 2>&1) && fail "status after destroy succeeded: $out"
pass
