# shellcheck shell=bash
# Helpers for the tests that drive a VM's API (`nimbus run --api $API`);
# sourced after lib.sh (not *.sh, so tests/run.sh does not take it for a
# test). Every request goes through tests/guest/api_client.py, which checks
# the reply against docs/openapi.json: a reply the document does not allow
# fails the test.

API_CLIENT=$ROOT/tests/guest/api_client.py

# api METHOD PATH [BODY]: one request; sets API_STATUS and API_REPLY.
api() {
    local out rc
    out=$(python3 "$API_CLIENT" "$API" "$@" 2>"$T/api_client.err")
    rc=$?
    [ $rc -eq 2 ] && fail "API: no reply to $*: $(cat "$T/api_client.err")"
    [ $rc -eq 0 ] || fail "API: the reply to $* does not match docs/openapi.json: $(cat "$T/api_client.err"): $out"
    API_STATUS=$(head -n 1 <<<"$out")
    API_REPLY=$(tail -n +2 <<<"$out")
}

# api_ok METHOD PATH [BODY]: api, and the status must be 2xx; prints the reply.
api_ok() {
    api "$@"
    case $API_STATUS in 2??) ;; *) fail "API $*: HTTP $API_STATUS: $API_REPLY" ;; esac
}

# api_err STATUS CODE METHOD PATH [BODY]: api, and it must fail so.
api_err() {
    local want=$1 code=$2
    shift 2
    api "$@"
    [ "$API_STATUS" = "$want" ] && [ "$(jget "$API_REPLY" code)" = "$code" ] ||
        fail "API $*: want $want $code, got HTTP $API_STATUS: $API_REPLY"
}

# jget JSON PATH: the value at PATH (dot-separated keys; numbers index
# arrays) of a JSON value; "null" when missing.
jget() {
    python3 -c '
import json, sys
v = json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    if isinstance(v, list) and k.isdigit():
        v = v[int(k)] if int(k) < len(v) else None
    else:
        v = v.get(k) if isinstance(v, dict) else None
print("null" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1" "$2"
}

# vm_rss_mib: the VMM's resident set (VmRSS of $VM_PID), in MiB.
vm_rss_mib() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$VM_PID/status"; }

# wait_api SECONDS PATH FIELD PYTHON-CONDITION-ON-v: polls GET PATH until
# the value v of FIELD meets the condition (left in API_VALUE); fails on time.
wait_api() {
    local secs=$1 path=$2 field=$3 cond=$4 end v
    end=$((SECONDS + secs))
    while :; do
        api_ok GET "$path"
        v=$(jget "$API_REPLY" "$field")
        if python3 -c "import sys; v = sys.argv[1]; v = int(v) if v.lstrip('-').isdigit() else v; sys.exit(0 if ($cond) else 1)" "$v" 2>/dev/null; then
            API_VALUE=$v
            return 0
        fi
        kill -0 "$VM_PID" 2>/dev/null || fail "VM exited while waiting for $field ($cond)"
        [ $SECONDS -lt $end ] || fail "$field stayed $v (want $cond) for ${secs}s: $API_REPLY"
        sleep 0.5
    done
}

# guest_value TAG COMMAND: runs COMMAND in the guest's shell; its output
# (one line, found on the console as TAG=...) is left in GUEST_VALUE.
guest_value() {
    local tag=$1 cmd=$2 from
    from=$(log_lines)
    # The tag is split in the typed text, so the console's echo never matches.
    send '%s\n' "echo \"${tag:0:1}\"\"${tag:1}=\$($cmd)\""
    wait_for "^$tag=" 120 "$from"
    GUEST_VALUE=$(tail -n +"$((from + 1))" "$VM_LOG" | tr -d '\r' | sed -n "s/^$tag=//p" | head -n 1)
}

# wait_api_socket: waits for the API at $API to answer.
wait_api_socket() {
    local end=$((SECONDS + BOOT_TIMEOUT))
    until [ -S "$API" ] && python3 "$API_CLIENT" "$API" GET /vm >/dev/null 2>&1; do
        kill -0 "$VM_PID" 2>/dev/null || fail "VM exited before its API socket was up"
        [ $SECONDS -lt $end ] || fail "no API socket at $API"
        sleep 0.2
    done
}
