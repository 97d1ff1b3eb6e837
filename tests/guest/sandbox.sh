#!/usr/bin/env bash
# shellcheck disable=SC2154  # PID_a, PID_b: set by bg_vm (printf -v)
# The VM process's confinement (--sandbox, --run-as; docs/security.md).
# Two VMs run side by side under --sandbox: A with a disk, user networking,
# vsock and the API; B with the API only, and (as root) --run-as nobody.
#  - Both are confined: NoNewPrivs and a seccomp filter in /proc/PID/status,
#    their own mount namespace (as root), B's user is nobody's.
#  - A's guest works under the filter: it writes its disk, fetches a file
#    from a host HTTP server through slirp (new sockets after start-up), its
#    agent answers over vsock and connects out to a host unix socket; a
#    snapshot through the API (a forked memory writer, files made and
#    renamed) succeeds and the guest goes on.
#  - A compromised monitor: tests/tools/inject_syscall makes A's process
#    call unshare(2), which is
#    not on the list; the kernel kills A with SIGSYS (exit status 159),
#    while B goes on (its console ticks on, its API answers).
#  - The snapshot restores under --sandbox (as root with --memory uffd: the
#    filler thread under the filter too) and the guest goes on.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test sandbox
CLIENT=${AGENT_CLIENT:-$(dirname "$NIMBUS")/tools/agent_client}
[ -x "$CLIENT" ] || fail "$CLIENT not found (make unit builds it)"
image_args
truncate -s 16M "$T/disk.img"
echo "fetched-through-slirp" >"$T/file.txt"
http_server "$T"

# bg_vm NAME [nimbus options...]: a VM in the background, console in
# $T/NAME.log; its pid in PID_NAME, its exit status in $T/NAME.status once
# it ends (a subshell waits for it, so that the shell does not report the
# signal that killed it).
bg_vm() {
    local name=$1
    shift
    : >"$T/$name.log"
    rm -f "$T/$name.pid" "$T/$name.status"
    (
        # shellcheck disable=SC2086
        "$NIMBUS" run ${NIMBUS_ARGS:-} "${IMAGE_ARGS[@]}" --sandbox --console "file:$T/$name.log" \
            "$@" </dev/null >"$T/$name.err" 2>&1 &
        echo $! >"$T/$name.pid"
        wait $!
        echo $? >"$T/$name.status"
    ) 2>/dev/null &
    BG_PIDS+=($!)
    for _ in $(seq 100); do [ -s "$T/$name.pid" ] && break; sleep 0.05; done
    printf -v "PID_$name" %s "$(cat "$T/$name.pid")"
    BG_PIDS+=("$(cat "$T/$name.pid")")
}
# vm_status NAME SECONDS: waits for the VM to end; its exit status.
vm_status() {
    local end=$((SECONDS + $2))
    until [ -s "$T/$1.status" ]; do
        [ $SECONDS -lt $end ] || { echo timeout; return; }
        sleep 0.1
    done
    cat "$T/$1.status"
}
ticks() { tr -d '\r' <"$T/$1.log" | awk '/^tick [0-9]+$/ { n = $2 } END { print n + 0 }'; }
wait_ticks() { # name count seconds pid
    local end=$((SECONDS + $3))
    until [ "$(ticks "$1")" -ge "$2" ]; do
        kill -0 "$4" 2>/dev/null || { LAST_LOG=$T/$1.err; fail "VM $1 exited before tick $2"; }
        [ $SECONDS -lt $end ] || { LAST_LOG=$T/$1.log; fail "VM $1: no tick $2 after ${3}s"; }
        sleep 0.2
    done
}

loop='i=0; while :; do i=$((i+1)); echo $i | dd of=/dev/vda bs=512 seek=$((i % 100)) conv=notrunc,sync 2>/dev/null; echo tick $i; sleep 0.3; done'
SOCK=$T/v.sock
bg_vm a --disk "$T/disk.img" --net user --vsock "3,path=$SOCK" --api "$T/a.sock" \
    --append "console=ttyS0 quiet nimbus.agent=1024 -- $(guest_cmd_arg "udhcpc -i eth0 -q -n -t 20 >/dev/null 2>&1; $loop")"
run_as=()
[ "$(id -u)" -eq 0 ] && run_as=(--run-as 65534:65534)
bg_vm b "${run_as[@]}" --api "$T/b.sock" --append "console=ttyS0 quiet -- $(guest_cmd_arg "${loop/dd of=\/dev\/vda/true}")"
wait_ticks a 3 "$BOOT_TIMEOUT" "$PID_a"
wait_ticks b 3 "$BOOT_TIMEOUT" "$PID_b"

for v in a b; do
    pid_var=PID_$v
    st=/proc/${!pid_var}/status
    grep -q '^NoNewPrivs:[[:space:]]*1' "$st" || fail "VM $v: no NoNewPrivs"
    grep -q '^Seccomp:[[:space:]]*2' "$st" || fail "VM $v: no seccomp filter ($(grep Seccomp "$st"))"
    if [ "$(id -u)" -eq 0 ] && [ "$(readlink "/proc/${!pid_var}/ns/mnt")" = "$(readlink /proc/self/ns/mnt)" ]; then
        fail "VM $v: no mount namespace of its own"
    fi
done
if [ ${#run_as[@]} -gt 0 ]; then
    grep -q '^Uid:[[:space:]]*65534[[:space:]]65534[[:space:]]65534[[:space:]]65534' "/proc/$PID_b/status" ||
        fail "VM b does not run as 65534: $(grep Uid "/proc/$PID_b/status")"
fi

# A's guest at work under the filter.
agent() { "$CLIENT" exec "$SOCK" 1024 "$@" </dev/null; }
for _ in $(seq 100); do agent true 2>/dev/null && break; sleep 0.2; done
got=$(agent wget -q -O - "http://10.0.2.2:$HTTP_PORT/file.txt" 2>&1)
[ "$got" = fetched-through-slirp ] || fail "wget through slirp in the sandboxed VM: '$got'"
"$CLIENT" serve "${SOCK}_5000" >"$T/serve.out" &
BG_PIDS+=($!)
for _ in $(seq 50); do grep -q listening "$T/serve.out" && break; sleep 0.1; done
got=$(agent sh -c 'echo from-guest | nimbus-agent connect 2 5000')
[ "$got" = "host got 11 bytes: from-guest" ] || fail "guest-initiated vsock connection: '$got'"
API=$T/a.sock
out=$("$NIMBUS" snapshot --api "$API" --json "$T/snap" 2>&1) || fail "snapshot under the sandbox: $out"
[ -s "$T/snap/vm.state" ] && [ -s "$T/snap/memory" ] || fail "no vm.state or memory in the snapshot"
n=$(ticks a)
wait_ticks a $((n + 3)) 30 "$PID_a"
[ "$(agent sh -c 'dd if=/dev/vda bs=512 skip=1 count=1 2>/dev/null | head -c 8 | tr -d "\0\n "')" -ge 1 ] ||
    fail "the guest's disk writes are not there"

# The compromised monitor: a syscall that is not on the list.
n_b=$(ticks b)
out=$(build/tools/inject_syscall "$PID_a" 272 0 2>&1)   # unshare(0)
[ "$out" = "killed by signal 31" ] || fail "unshare injected into A: $out"
st=$(vm_status a 30)
[ "$st" = 159 ] || { fail "A exited with $st after the forbidden syscall, not 159 (SIGSYS)"; }
kill -0 "$PID_b" 2>/dev/null || fail "B died with A"
wait_ticks b $((n_b + 5)) 30 "$PID_b"
API=$T/b.sock
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = running ] || fail "B's state: $API_REPLY"

# The snapshot restored under the sandbox (A's disk moved on since: forced).
mem=lazy
[ "$(id -u)" -eq 0 ] && mem=uffd
: >"$T/r.log"
"$NIMBUS" restore "$T/snap" --sandbox --force-disks --memory $mem --console "file:$T/r.log" \
    --api "$T/r.sock" </dev/null >"$T/r.err" 2>&1 &
PID_r=$!
BG_PIDS+=("$PID_r")
last=$(tr -d '\r' <"$T/a.log" | awk '/^tick [0-9]+$/ { print $2; exit }')
wait_ticks r 1 30 "$PID_r"
n=$(ticks r)
wait_ticks r $((n + 3)) 30 "$PID_r"
[ "$(ticks r)" -gt "${last:-0}" ] || fail "the restored guest does not go on"
grep -q '^Seccomp:[[:space:]]*2' "/proc/$PID_r/status" || fail "the restored VM has no filter"
API=$T/r.sock
api_ok PUT /vm/destroy
wait "$PID_r" || fail "the restored VM did not end with status 0 after destroy"
API=$T/b.sock
api_ok PUT /vm/destroy
[ "$(vm_status b 30)" = 0 ] || fail "B did not end with status 0 after destroy"
pass
