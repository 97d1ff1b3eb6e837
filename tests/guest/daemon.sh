#!/usr/bin/env bash
# nimbusd and the nimbus CLI on two real guests (docs/daemon.md, docs/cli.md):
#  - define: two VMs; bad definitions (an unknown field, a missing kernel, a
#    duplicate name, a MAC the other VM has) refused with the field named
#    and nothing left behind;
#  - start both: each guest's work (a counter on its console) goes on; list,
#    info and top -b show them;
#  - pause and resume: the counter stands still, then goes on;
#  - save, then start: the process ends, the VM is restored and its counter
#    goes on from where it was, not from 1;
#  - nimbusd killed (-9) and started again: the VMs run on, the new daemon
#    finds them (same pids) and drives them, and starts the autostart VM
#    (with its definition's watchdog and on_panic);
#  - 20 clients with conflicting requests at once: all answered, the VMs'
#    states consistent; a VM process killed (-9): "crashed", no pid left;
#  - shutdown through the guest agent: the guest powers off, "shutdown";
#  - the VM processes confined (--sandbox; as root each its own user);
#  - devices handed in: a's disk, root's and mode 0600 as root, is read and
#    written by its guest through the descriptor nimbusd opened (also after
#    the restore), while its process runs as its own user, who cannot open
#    the image by name; as root b's tap is made by nimbusd and passed in,
#    and goes with b; a VM whose disk is gone is refused at start (409,
#    the disk named) and stays defined; a qcow2 overlay goes by descriptor,
#    locked for its VM, its backing file by name;
#  - the metrics, parsed by Prometheus' parser, match the VMs; a compromised VM process (made to make a forbidden
#    system call): killed by its seccomp filter, reported "crashed" with
#    SIGSYS, the other VM unaffected; wrong-state errors name the state;
#  - a VM process that does not answer its API (stopped): list and info
#    still return, destroy kills it;
#  - undefine: both gone, list --all empty.
# The VM processes outlive nimbusd by design: on exit (a failure too) the
# test kills those under its own directory.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test daemon
trap 'end_test_processes; cleanup' EXIT
NIMBUSD=${NIMBUSD:-$(dirname "$NIMBUS")/nimbusd}
N=$NIMBUS
export NIMBUS_CONNECT=$T/run/nimbusd.sock
DLOG=$T/nimbusd.log
DPID=""

start_daemon() {
    "$NIMBUSD" --run-dir "$T/run" --data-dir "$T/data" --nimbus "$NIMBUS" >>"$DLOG" 2>&1 &
    DPID=$!
    BG_PIDS+=("$DPID")
    local end=$((SECONDS + 20))
    until [ -S "$NIMBUS_CONNECT" ] && "$N" list >/dev/null 2>&1; do
        kill -0 "$DPID" 2>/dev/null || { LAST_LOG=$DLOG; fail "nimbusd exited"; }
        [ $SECONDS -lt $end ] || { LAST_LOG=$DLOG; fail "nimbusd did not serve"; }
        sleep 0.1
    done
}

# last_tick VM: the newest counter value on VM's console (its socket replays
# what it missed), "" if none yet.
last_tick() {
    timeout 0.5 "$N" console "$1" </dev/null 2>/dev/null | tr -d '\r' |
        awk '/^tick [0-9]+$/ { n = $2 } END { print n }'
}

# wait_tick VM MIN: until VM's counter is at least MIN.
wait_tick() {
    local end=$((SECONDS + ${3:-$BOOT_TIMEOUT})) t
    while :; do
        t=$(last_tick "$1")
        [ -n "$t" ] && [ "$t" -ge "$2" ] && return 0
        [ $SECONDS -lt $end ] || fail "$1: no tick $2 on its console (last: '$t'); log: $("$N" logs "$1" -n 5 2>&1)"
    done
}

state_of() { jget "$("$N" info "$1" --json)" state; }
pid_of() { jget "$("$N" info "$1" --json)" pid; }

# As root the VM processes run as users of their own: they cross $T on
# the way to their saved states.
chmod 0711 "$T"
start_daemon

TICKER='i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.3; done'
KPATH=$(realpath "$KERNEL")
IPATH=$(realpath "$INITRD")
def() { # name extra-json cmdline-extra command-before-the-ticker
    cat >"$T/$1.json" <<EOF
{"name": "$1", "memory_mib": 192, "kernel": "$KPATH", "initrd": "$IPATH",
 "cmdline": "console=ttyS0 quiet $3 -- ${4:-}$TICKER", "jit": true $2}
EOF
}
# a's disk: the host's bytes at 4096, the guest's go to 8192. As root it is
# root's, mode 0600: only a descriptor nimbusd opened reaches it.
DISK=$T/a.img
truncate -s 1M "$DISK"
printf 'host-wrote-this' | dd of="$DISK" bs=1 seek=4096 conv=notrunc status=none
chmod 0600 "$DISK"
# The guest writes what it read back to the disk, before its counter starts.
DISKCMD='echo got:$(dd if=/dev/vda bs=1 skip=4096 count=15 2>/dev/null) | dd of=/dev/vda bs=512 seek=16 conv=fsync 2>/dev/null; '
def a ', "disks": [{"path": "'"$DISK"'", "format": "raw"}]' '' "$DISKCMD"
# As root b has a tap too: nimbusd makes it, the VM process gets it open.
TAP=""
if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ]; then
    TAP=nbt$$
    BTAP=', {"type": "tap", "ifname": "'$TAP'"}'
fi
def b ', "vsock": {"cid": 7}, "nets": [{"type": "user", "mac": "52:54:00:00:00:0b"}'"${BTAP:-}"']' 'nimbus.agent=1024'
out=$("$N" define "$T/a.json" 2>&1) || fail "define a: $out"
out=$("$N" define "$T/b.json" 2>&1) || fail "define b: $out"
# c and d: bare-metal programs that sleep (no boot: cheap to start and stop
# many times); c starts with the daemon.
IDLE=$(realpath build/hostile/idle.elf)
echo '{"name": "c", "memory_mib": 16, "bios": "'"$IDLE"'", "autostart": true,
       "watchdog": "poweroff", "on_panic": "pause"}' >"$T/c.json"
echo '{"name": "d", "memory_mib": 16, "bios": "'"$IDLE"'"}' >"$T/d.json"
out=$("$N" define "$T/c.json" 2>&1) && out=$("$N" define "$T/d.json" 2>&1) || fail "define c, d: $out"

# Bad definitions: refused, the field named, nothing created.
bad() { # file expected-message-part
    local out st
    out=$("$N" define "$1" 2>&1)
    st=$?
    [ $st -eq 1 ] && grep -q -- "$2" <<<"$out" || fail "define $(cat "$1"): exit $st: $out"
}
echo '{"name": "e", "kernel": "'"$KPATH"'", "colour": "red"}' >"$T/e1.json"
bad "$T/e1.json" colour
echo '{"name": "e", "kernel": "/nonexistent/vmlinux"}' >"$T/e2.json"
bad "$T/e2.json" kernel
bad "$T/a.json" "exists"
echo '{"name": "e", "kernel": "'"$KPATH"'", "nets": [{"type": "user", "mac": "52:54:00:00:00:0b"}]}' >"$T/e3.json"
bad "$T/e3.json" "nets\[0\].mac"
echo '{"name": "e", "kernel": "'"$KPATH"'", "memory_mib": 99999999}' >"$T/e4.json"
bad "$T/e4.json" memory_mib
[ "$("$N" list --all --name | tr '\n' ' ')" = "a b c d " ] || fail "list after bad defines: $("$N" list --all)"
[ ! -e "$T/data/vms/e" ] || fail "a refused definition left $T/data/vms/e"

# Start both; their counters run; their processes are confined.
out=$("$N" start a 2>&1) || fail "start a: $out"
out=$("$N" start b 2>&1) || fail "start b: $out"
wait_tick a 3
wait_tick b 3
uid_of() { awk '/^Uid:/ { print $2 }' /proc/"$(pid_of "$1")"/status; }
for v in a b; do
    grep -q "^Seccomp:[[:space:]]*2" /proc/"$(pid_of $v)"/status || fail "$v's process has no seccomp filter"
    if [ "$(id -u)" = 0 ] && [ "$(uid_of $v)" -lt 1000000 ]; then
        fail "$v's process runs as uid $(uid_of $v), not a user of its own"
    fi
done
[ "$(id -u)" != 0 ] || [ "$(uid_of a)" != "$(uid_of b)" ] || fail "a and b run as the same user"

# a's disk: read and written through the descriptor nimbusd handed in.
cmdline_of() { tr '\0' ' ' </proc/"$(pid_of "$1")"/cmdline; }
check_disk_by_fd() { # what
    local pid uid
    pid=$(pid_of a)
    grep -q -- "--disk fd=4" <<<"$(cmdline_of a)" || fail "$1: a's command line: $(cmdline_of a)"
    ! grep -q -- "$DISK" <<<"$(cmdline_of a)" || fail "$1: a's command line names its disk: $(cmdline_of a)"
    # (A sandboxed process is not dumpable: only root reads its fd links.)
    if [ "$(id -u)" = 0 ]; then
        [ "$(readlink /proc/"$pid"/fd/4)" = "$DISK" ] || fail "$1: a's fd 4 is $(readlink /proc/"$pid"/fd/4)"
        uid=$(uid_of a)
        # Real, effective, saved and file-system uids: all the VM's own.
        grep -Eq "^Uid:[[:space:]]+$uid[[:space:]]+$uid[[:space:]]+$uid[[:space:]]+$uid\$" /proc/"$pid"/status ||
            fail "$1: a's process: $(grep ^Uid: /proc/"$pid"/status)"
        [ "$(stat -c %u:%a "$DISK")" = 0:600 ] || fail "$1: the image is $(stat -c %u:%a "$DISK")"
        ! setpriv --reuid="$uid" --regid="$uid" --clear-groups cat "$DISK" >/dev/null 2>&1 ||
            fail "$1: a's user $uid can open the image by name"
    fi
}
check_disk_by_fd "a booted"
got=$(dd if="$DISK" bs=1 skip=8192 count=19 status=none | tr -d '\0')
[ "$got" = got:host-wrote-this ] || fail "a's guest read and wrote its disk: at 8192 the image has '$got'"
if [ -n "$TAP" ]; then
    ip link show "$TAP" >/dev/null 2>&1 || fail "b's tap $TAP does not exist"
    # (nimbus run cuts its options at the commas in place: they show as NULs.)
    grep -Eq -- "--net tap.fd=4" <<<"$(cmdline_of b)" || fail "b's command line: $(cmdline_of b)"
fi

# A VM whose disk is gone: refused at start with the disk named (409
# device_unavailable), still defined, nothing started.
touch "$T/e.img"
echo '{"name": "e", "memory_mib": 16, "bios": "'"$IDLE"'", "disks": [{"path": "'"$T/e.img"'"}]}' >"$T/e.json"
out=$("$N" define "$T/e.json" 2>&1) || fail "define e: $out"
rm "$T/e.img"
reply=$(curl -s -w ' %{http_code}' -X PUT --unix-socket "$NIMBUS_CONNECT" http://localhost/vms/e/start)
grep -q '"code": *"device_unavailable"' <<<"$reply" && grep -q '"field": *"disks\[0\].path"' <<<"$reply" &&
    grep -q "e.img: No such file or directory" <<<"$reply" && [ "${reply##* }" = 409 ] ||
    fail "start of e without its disk: $reply"
out=$("$N" start e 2>&1) && fail "start of e without its disk succeeded"
grep -q "disks\[0\].path: .*e.img: No such file" <<<"$out" || fail "nimbus start e: $out"
[ "$(state_of e)" = defined ] && [ "$(pid_of e)" = null ] || fail "e after a refused start: $("$N" info e)"
out=$("$N" undefine e 2>&1) || fail "undefine e: $out"

# A qcow2 overlay (f, a bare-metal VM: no boot): the overlay by descriptor,
# locked for f's process (nobody else may take it), its backing file opened
# by name by the VM process itself (docs/daemon.md); the lock goes with f.
truncate -s 1M "$T/base.img"
qemu-img create -q -f qcow2 -b base.img -F raw "$T/f.qcow2" || fail "qemu-img create"
chmod 0600 "$T/base.img" "$T/f.qcow2"
echo '{"name": "f", "memory_mib": 16, "bios": "'"$IDLE"'", "disks": [{"path": "'"$T/f.qcow2"'"}]}' >"$T/f.json"
out=$("$N" define "$T/f.json" 2>&1) && out=$("$N" start f 2>&1) || fail "define and start f: $out"
grep -q -- "--disk fd=4" <<<"$(cmdline_of f)" || fail "f's command line: $(cmdline_of f)"
! flock -n -x "$T/f.qcow2" true || fail "f's overlay is not locked while f runs"
if [ "$(id -u)" = 0 ]; then
    fpid=$(pid_of f)
    [ "$(readlink /proc/"$fpid"/fd/4)" = "$T/f.qcow2" ] || fail "f's fd 4: $(readlink /proc/"$fpid"/fd/4)"
    ls -l /proc/"$fpid"/fd | grep -q -- "-> $T/base.img\$" || fail "f's process does not hold its backing file"
fi
out=$("$N" destroy f 2>&1) || fail "destroy f: $out"
flock -n -x "$T/f.qcow2" true || fail "f's overlay is still locked after f ended"
out=$("$N" undefine f 2>&1) || fail "undefine f: $out"
list=$("$N" list)
grep -Eq "^ *$(pid_of a) +a +running" <<<"$list" && grep -Eq "^ *[0-9]+ +b +running" <<<"$list" ||
    fail "list: $list"
info=$("$N" info b)
grep -q "^State: *running" <<<"$info" && grep -q "52:54:00:00:00:0b" <<<"$info" || fail "info b: $info"
top=$("$N" top -b -n 1 2>&1) || fail "top -b: $top"
grep -q "^a  *running" <<<"$top" && grep -q "^b  *running" <<<"$top" || fail "top: $top"

# Wrong states are refused, naming the state.
out=$("$N" resume a 2>&1) && fail "resume of a running VM succeeded"
grep -q running <<<"$out" || fail "resume of a running VM: $out"
out=$("$N" undefine a 2>&1) && fail "undefine of a running VM succeeded"

# Pause: the counter stands still (guest time too); resume: it goes on. A
# running guest ticks 6 or more times in the 2 s paused.
t1=$(last_tick a)
"$N" pause a >/dev/null || fail "pause a"
[ "$(state_of a)" = paused ] || fail "a is $(state_of a) after pause"
sleep 2
"$N" resume a >/dev/null || fail "resume a"
t2=$(last_tick a)
[ -n "$t2" ] && [ $((t2 - t1)) -le 4 ] || fail "a was paused, yet its counter went from $t1 to $t2"
wait_tick a $((t2 + 2)) 30

# Save and start again: the counter goes on from where it was.
apid=$(pid_of a)
out=$("$N" save a 2>&1) || fail "save a: $out"
[ "$(state_of a)" = saved ] || fail "a is $(state_of a) after save"
! kill -0 "$apid" 2>/dev/null || fail "a's process $apid still runs after save"
saved_tick=$(jget "$("$N" info a --json)" pid)
[ "$saved_tick" = null ] || fail "a saved still has a pid: $saved_tick"
out=$("$N" start a 2>&1) || fail "start a (restore): $out"
first=$(timeout 1 "$N" console a </dev/null 2>/dev/null | tr -d '\r' | awk '/^tick [0-9]+$/ { print $2; exit }')
[ -n "$first" ] && [ "$first" -ge "$t2" ] || fail "a restored: first tick '$first', before the save $t2"
hist=$("$N" info a --json)
grep -q "restored from its saved state" <<<"$hist" || fail "a's history: $hist"
check_disk_by_fd "a restored"

# nimbusd killed (-9) and started again: the VMs run on and are found
# again; c, autostart, starts with it.
apid=$(pid_of a)
bpid=$(pid_of b)
[ "$(state_of c)" = defined ] || fail "c is $(state_of c) before the daemon's restart"
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
kill -0 "$apid" && kill -0 "$bpid" || fail "a VM ended with the daemon"
start_daemon
[ "$(pid_of a)" = "$apid" ] && [ "$(state_of a)" = running ] || fail "a after the restart: $("$N" info a)"
grep -q "found its process $bpid again" "$DLOG" || fail "nimbusd did not find b again: $(cat "$DLOG")"
"$N" pause b >/dev/null && "$N" resume b >/dev/null || fail "pause/resume b after the restart"
[ "$(state_of c)" = running ] || fail "c (autostart) is $(state_of c) after the daemon's start"
# Its definition's watchdog and panic actions reach its process.
grep -q -- "--watchdog=poweroff --on-panic pause " <<<"$(cmdline_of c)" || fail "c's command line: $(cmdline_of c)"

# 20 clients with conflicting requests about c and d at once: all answered,
# every VM consistent (tests/tools/daemon_check.py).
out=$(python3 tests/tools/daemon_check.py stress "$NIMBUS_CONNECT" c d 2>&1) || fail "$out"

# A VM process killed (-9): crashed, with the reason; no pid left behind.
"$N" start d >/dev/null 2>&1
dpid=$(pid_of d)
[ "$dpid" != null ] || fail "d did not start: $("$N" info d)"
kill -KILL "$dpid"
end=$((SECONDS + 10))
until [ "$(state_of d)" = crashed ]; do
    [ $SECONDS -lt $end ] || fail "d is $(state_of d) after kill -9"
    sleep 0.1
done
grep -q "killed by SIGKILL" <<<"$("$N" info d)" && [ "$(pid_of d)" = null ] || fail "d: $("$N" info d)"

# The metrics: parsed by Prometheus' own parser, matching the VMs (Debian's
# python3-prometheus-client is a system package: the system's python).
out=$(/usr/bin/python3 tests/tools/daemon_check.py metrics "$NIMBUS_CONNECT" 2>&1) || fail "$out"
m=$(curl -s --unix-socket "$NIMBUS_CONNECT" http://localhost/metrics)
grep -q '^nimbus_vm_state{vm="a",state="running"} 1$' <<<"$m" || fail "metrics: $m"
vcpu=$(awk '/^nimbus_vm_vcpu_seconds_total\{vm="b"\}/ { print $2 }' <<<"$m")
awk -v v="$vcpu" 'BEGIN { exit !(v > 0) }' || fail "b's vCPU seconds: '$vcpu'"

# A compromised VM process (tests/tools/inject_syscall makes it call
# unshare(2), which its seccomp filter forbids): it dies of SIGSYS, the
# daemon reports it as crashed with that reason, and the other VM runs on.
out=$(build/tools/inject_syscall "$(pid_of a)" 272 0 2>&1)
[ "$out" = "killed by signal 31" ] || fail "unshare injected into a: $out"
end=$((SECONDS + 10))
until [ "$(state_of a)" = crashed ]; do
    [ $SECONDS -lt $end ] || fail "a is $(state_of a) after a forbidden syscall"
    sleep 0.1
done
grep -q "SIGSYS (a forbidden system call: seccomp)" <<<"$("$N" info a)" ||
    fail "a's exit reason: $("$N" info a)"
[ "$(state_of b)" = running ] || fail "b is $(state_of b) after a's crash"
wait_tick b $(($(last_tick b) + 2)) 30

# Shutdown through b's agent: the guest powers off.
out=$("$N" shutdown b --timeout 30 --wait 2>&1) || fail "shutdown b: $out"
[ "$(state_of b)" = shutdown ] || fail "b is $(state_of b) after shutdown"
grep -q "powered off" <<<"$("$N" info b --json)" || fail "b's exit: $("$N" info b --json)"
# Its tap was nimbusd's making and the VM process's alone: gone with it.
[ -z "$TAP" ] || ! ip link show "$TAP" >/dev/null 2>&1 || fail "b's tap $TAP outlived b"

# A VM process that does not answer its API (stopped here; a compromised
# one could do the same): list and info do not wait for it for ever, and
# destroy kills it.
out=$("$N" start d 2>&1) || fail "start d again: $out"
apid=$(pid_of d)
kill -STOP "$apid"
out=$(timeout 20 "$N" list 2>&1) || fail "list with a stopped VM: exit $?: $out"
grep -Eq "^ *$apid +d +running" <<<"$out" || fail "list with a stopped VM: $out"
out=$(timeout 20 "$N" info d 2>&1) || fail "info of a stopped VM: exit $?: $out"
out=$(timeout 40 "$N" destroy d 2>&1) || fail "destroy of a stopped VM: exit $?: $out"
! kill -0 "$apid" 2>/dev/null || fail "d's process $apid still there after destroy"
grep -q "destroyed (killed)" <<<"$("$N" info d)" || fail "d after destroy: $("$N" info d)"

"$N" destroy c >/dev/null 2>&1
for v in a b c d; do
    out=$("$N" undefine $v 2>&1) || fail "undefine $v: $out"
done
[ -z "$("$N" list --all --name)" ] || fail "list after undefine: $("$N" list --all)"
[ ! -e "$T/data/vms/a" ] || fail "undefine left $(ls "$T/data/vms/a")"
pass
