# shellcheck shell=bash
# Helpers for the balloon and control-socket tests; sourced after lib.sh
# (not *.sh, so tests/run.sh does not take it for a test).

CTL_CLIENT=$ROOT/tests/guest/control_client.py

# ctl JSON...: one reply line per request on the VM's control socket $CTL.
ctl() { python3 "$CTL_CLIENT" "$CTL" "$@"; }

# jget JSON PATH: the value at PATH (dot-separated keys) of a JSON object;
# "null" when missing, "ERROR: ..." for an error reply.
jget() {
    python3 -c '
import json, sys
v = json.loads(sys.argv[1])
if isinstance(v, dict) and "error" in v and sys.argv[2] != "error":
    print("ERROR: " + v["error"]); sys.exit(0)
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("null" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1" "$2"
}

# vm_rss_mib: the VMM's resident set (VmRSS of $VM_PID), in MiB.
vm_rss_mib() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$VM_PID/status"; }

# wait_ctl SECONDS JSON PATH PYTHON-CONDITION-ON-v: polls JSON until the
# value v at PATH meets the condition (left in CTL_VALUE); fails on time.
wait_ctl() {
    local secs=$1 req=$2 path=$3 cond=$4 end v reply
    end=$((SECONDS + secs))
    while :; do
        reply=$(ctl "$req") || fail "control socket: no reply to $req"
        v=$(jget "$reply" "$path")
        if python3 -c "import sys; v = sys.argv[1]; v = int(v) if v.lstrip('-').isdigit() else v; sys.exit(0 if ($cond) else 1)" "$v" 2>/dev/null; then
            CTL_VALUE=$v
            return 0
        fi
        kill -0 "$VM_PID" 2>/dev/null || fail "VM exited while waiting for $path ($cond)"
        [ $SECONDS -lt $end ] || fail "$path stayed $v (want $cond) for ${secs}s: $reply"
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

# wait_ctl_socket: waits for the control socket $CTL to answer.
wait_ctl_socket() {
    local end=$((SECONDS + BOOT_TIMEOUT))
    until [ -S "$CTL" ] && ctl '{"cmd":"status"}' >/dev/null 2>&1; do
        kill -0 "$VM_PID" 2>/dev/null || fail "VM exited before its control socket was up"
        [ $SECONDS -lt $end ] || fail "no control socket at $CTL"
        sleep 0.2
    done
}
