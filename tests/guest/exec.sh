#!/usr/bin/env bash
# nimbus exec (docs/snapshots.md): commands in throwaway clones of a snapshot.
# A guest booted with --vsock, nimbus.agent=1024, a raw disk and --api is
# saved with `nimbus snapshot --stop`; then `nimbus exec --from`:
#  - runs sh -c 'echo out; echo err >&2; exit 7': stdout "out", stderr
#    "err", status 7;
#  - runs cat and sha256sum with stdin piped: the bytes come back unchanged;
#  - two execs at once from the snapshot both work;
#  - a clone's write to its disk stays in the clone: the next exec reads the
#    saved data, and the snapshot's disk file is byte-identical after all
#    the execs (sha256), as are vm.state and the memory file;
#  - --timeout ends a command that runs too long with 124; a guest that
#    powers off under the command and a missing snapshot are refused with a
#    clear message and status 125;
#  - without an agent (no vsock device), the command is typed into the
#    shell on the console (a third VM, at a shell prompt): its output
#    (stdout and stderr together), its status, arguments with spaces and
#    quotes unchanged, 127 for no such command, 124 after --timeout; a
#    guest without a shell on its console (a second VM, running a command)
#    is given up with status 125 and a clear message;
#  - nothing stays behind in $TMPDIR.
# It prints the wall time of `nimbus exec -- true` (median of 20) and the
# --timings breakdown of one run.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test exec
CLIENT=${AGENT_CLIENT:-$(dirname "$NIMBUS")/tools/agent_client}
[ -x "$CLIENT" ] || fail "$CLIENT not found (make unit builds it)"
SNAP=$T/snap
NOAGENT=$T/snap-noagent
SHELLSNAP=$T/snap-shell
export TMPDIR=$T/tmp
mkdir -p "$TMPDIR"
truncate -s 16M "$T/disk.img"
printf 'saved-data' | dd of="$T/disk.img" conv=notrunc 2>/dev/null

# The second guest (no vsock, no agent, no shell on its console: it runs a
# command) and the third (no vsock, a shell on its console) boot beside the
# first.
API=$T/api2.sock
start_vm noagent --api "$API" --append "console=ttyS0 quiet -- while :; do sleep 1; done"
pid2=$VM_PID log2=$VM_LOG
exec 9>&8   # start_vm's FIFO for this VM stays open on fd 9
API=$T/api3.sock
start_vm shell --api "$API" --append "console=ttyS0 quiet"
pid3=$VM_PID log3=$VM_LOG
exec 6>&8
API=$T/api.sock
start_vm vm --disk "$T/disk.img" --vsock "3,path=$T/v.sock" --api "$API" \
    --append "console=ttyS0 quiet nimbus.agent=1024 -- while :; do sleep 1; done"
ok=0
for _ in $(seq 600); do
    if "$CLIENT" exec "$T/v.sock" 1024 true </dev/null 2>/dev/null; then ok=1; break; fi
    kill -0 "$VM_PID" 2>/dev/null || fail "the VM exited before its agent answered"
    sleep 0.2
done
[ $ok = 1 ] || fail "the agent never answered on vsock port 1024"
wait_api_socket
out=$("$NIMBUS" snapshot --api "$API" --stop "$SNAP" 2>&1) || fail "nimbus snapshot: $out"
wait_exit 30
[ "$VM_STATUS" -eq 0 ] || fail "the VM saved with --stop exited with $(status_text "$VM_STATUS")"
disk_sum=$(sha256sum <"$T/disk.img")
state_sum=$(cat "$SNAP/vm.state" "$SNAP/memory" | sha256sum)

nx() { timeout -k 5 60 "$NIMBUS" exec --from "$SNAP" "$@"; }
nxs() { timeout -k 5 60 "$NIMBUS" exec --from "$SHELLSNAP" "$@"; }

# Output apart, and the status.
nx -- sh -c 'echo out; echo err >&2; exit 7' </dev/null >"$T/out" 2>"$T/err"
st=$?
[ $st -eq 7 ] || fail "exit 7 came back as $st (stderr: $(head -c 300 "$T/err"))"
[ "$(cat "$T/out")" = out ] || fail "stdout: '$(head -c 300 "$T/out")'"
[ "$(cat "$T/err")" = err ] || fail "stderr: '$(head -c 300 "$T/err")'"

# Stdin through the command.
got=$(printf 'hello\nworld\n' | nx -- cat) || fail "cat: status $?"
[ "$got" = $'hello\nworld' ] || fail "cat gave '$got'"
head -c 262144 /dev/urandom >"$T/data"
want=$(sha256sum <"$T/data" | cut -d' ' -f1)
got=$(nx -- sha256sum <"$T/data" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "sha256sum in a clone: '$got', on the host: $want"

# Two at once.
nx -- sh -c 'sleep 1; echo one' </dev/null >"$T/one" 2>&1 &
p1=$!
nx -- sh -c 'sleep 1; echo two' </dev/null >"$T/two" 2>&1 &
p2=$!
wait $p1 || fail "the first of two execs at once: status $?: $(head -c 300 "$T/one")"
wait $p2 || fail "the second of two execs at once: status $?: $(head -c 300 "$T/two")"
[ "$(cat "$T/one")" = one ] && [ "$(cat "$T/two")" = two ] ||
    fail "two execs at once: '$(head -c 200 "$T/one")' and '$(head -c 200 "$T/two")'"

# A clone writes its disk; the next clone and the saved file don't see it.
nx -- sh -c 'printf clone-data | dd of=/dev/vda conv=fsync 2>/dev/null && head -c 10 /dev/vda' \
    </dev/null >"$T/out" 2>&1 || fail "writing the disk in a clone: $(head -c 300 "$T/out")"
[ "$(cat "$T/out")" = clone-data ] || fail "the clone read back '$(head -c 100 "$T/out")'"
got=$(nx -- head -c 10 /dev/vda </dev/null 2>&1)
[ "$got" = saved-data ] || fail "the next clone read '$got' from its disk, not the saved data"

# Errors: a timeout, a guest that dies, no snapshot, no agent.
start=$SECONDS
nx --timeout 3 -- sleep 60 </dev/null >/dev/null 2>"$T/err"
st=$?
[ $st -eq 124 ] || fail "--timeout 3 on sleep 60: status $st ($(head -c 300 "$T/err"))"
[ $((SECONDS - start)) -lt 30 ] || fail "--timeout 3 took $((SECONDS - start)) s"
grep -q 'timed out' "$T/err" || fail "no message for a timeout: $(head -c 300 "$T/err")"
nx -- poweroff -f </dev/null >/dev/null 2>"$T/err"
st=$?
[ $st -eq 125 ] || fail "a guest powering off: status $st ($(head -c 300 "$T/err"))"
grep -q 'powered off before the command finished' "$T/err" ||
    fail "unclear message for a guest that powered off: $(head -c 300 "$T/err")"
"$NIMBUS" exec --from "$T/nowhere" -- true </dev/null >/dev/null 2>"$T/err"
st=$?
[ $st -eq 125 ] && grep -q 'No such file' "$T/err" ||
    fail "a missing snapshot: status $st, '$(head -c 300 "$T/err")'"

VM_PID=$pid2 VM_LOG=$log2 API=$T/api2.sock
wait_api_socket
out=$("$NIMBUS" snapshot --api "$T/api2.sock" --stop "$NOAGENT" 2>&1) || fail "nimbus snapshot: $out"
exec 8>&9 9>&-
wait_exit 30
"$NIMBUS" exec --from "$NOAGENT" -- true </dev/null >/dev/null 2>"$T/err"
st=$?
[ $st -eq 125 ] && grep -q "no shell answered on the guest's console" "$T/err" ||
    fail "a snapshot without an agent or a shell: status $st, '$(head -c 300 "$T/err")'"

# No agent, a shell on the console: the command is typed there.
VM_PID=$pid3 VM_LOG=$log3 API=$T/api3.sock
wait_for 'nimbus:.*# '   # the shell's prompt
wait_api_socket
out=$("$NIMBUS" snapshot --api "$API" --stop "$SHELLSNAP" 2>&1) || fail "nimbus snapshot: $out"
exec 8>&6 6>&-
wait_exit 30
got=$(nxs -- sh -c 'echo out; echo err >&2; exit 7' </dev/null 2>"$T/err")
st=$?
[ $st -eq 7 ] || fail "through the console, exit 7 came back as $st ($(head -c 300 "$T/err"))"
[ "$got" = $'out\nerr' ] || fail "through the console, the output was '$got'"
got=$(nxs -- printf '%s|' 'a b' "it's" '$HOME' '*' </dev/null 2>"$T/err") ||
    fail "printf through the console: status $? ($(head -c 300 "$T/err"))"
[ "$got" = "a b|it's|\$HOME|*|" ] || fail "arguments through the console came back as '$got'"
nxs -- no-such-command </dev/null >/dev/null 2>&1
st=$?
[ $st -eq 127 ] || fail "no such command through the console: status $st"
nxs --timeout 3 -- sleep 60 </dev/null >/dev/null 2>"$T/err"
st=$?
[ $st -eq 124 ] || fail "--timeout 3 through the console: status $st ($(head -c 300 "$T/err"))"

# Latency: the wall time of `nimbus exec -- true`, median of 20.
for _ in $(seq 20); do
    s=$(date +%s%N)
    nx -- true </dev/null || fail "exec true: status $?"
    echo $(( ($(date +%s%N) - s) / 1000 ))
done | sort -n >"$T/lat"
median_us=$(sed -n 10p "$T/lat")
timing=$(nx --timings -- true </dev/null 2>&1)

[ "$(sha256sum <"$T/disk.img")" = "$disk_sum" ] || fail "the snapshot's disk changed"
[ "$(cat "$SNAP/vm.state" "$SNAP/memory" | sha256sum)" = "$state_sum" ] ||
    fail "the snapshot's vm.state or memory changed"
[ -z "$(ls -A "$TMPDIR")" ] || fail "left behind in \$TMPDIR: $(ls -A "$TMPDIR" | head -n 5)"
echo "exec: 'nimbus exec -- true' median of 20: $((median_us / 1000)).$(((median_us % 1000) / 100)) ms (min $(($(head -n 1 "$T/lat") / 1000)) ms, max $(($(tail -n 1 "$T/lat") / 1000)) ms); ${timing#nimbus exec: }" >&2
pass
