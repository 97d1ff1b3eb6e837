#!/usr/bin/env bash
# Live migration through two nimbusd on one machine (docs/daemon.md,
# "Migration"), each daemon with its own socket, run and data directories,
# the stream on loopback TCP:
#  - daemon A defines and starts a guest that prints a counter;
#  - nimbus migrate m --connect A --dest-connect B --to tcp:127.0.0.1:0
#    (bandwidth-limited, so that it takes a few seconds): meanwhile both
#    daemons show the VM "migrating", B's process listening; after, A has it
#    "shutdown" with the reason "migrated to ...", no process left, and B
#    "running"; the counter goes on at B from where it was (no reboot);
#  - back from B to A (--undefine-source, --json): A, where the VM was
#    defined (shutdown), runs it again; B has no VM left;
#  - a failed migration: A to B again, B's incoming VM process killed in the
#    middle: the CLI fails, A's VM is running again with the failure
#    recorded and its counter going on; B, which defined the VM for the
#    migration, has none left (nothing half-made);
#  - A to B once more, both daemons killed (-9) in the middle and started
#    again: each follows its side again, A ends "shutdown", B "running",
#    the counter goes on.
# The VM processes outlive nimbusd by design: on exit (a failure too) the
# test kills those under its own directory.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test daemon_migrate
trap 'end_test_processes; cleanup' EXIT
NIMBUSD=${NIMBUSD:-$(dirname "$NIMBUS")/nimbusd}
N=$NIMBUS
chmod 0711 "$T"

start_daemon() { # NAME
    "$NIMBUSD" --socket "$T/$1/nimbusd.sock" --run-dir "$T/$1/run" --data-dir "$T/$1/data" \
        --nimbus "$NIMBUS" >>"$T/$1.log" 2>&1 &
    BG_PIDS+=("$!")
    eval "DPID_$1=$!"
    local end=$((SECONDS + 20))
    until "$N" list --connect "$T/$1/nimbusd.sock" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || { LAST_LOG=$T/$1.log; fail "nimbusd $1 did not serve"; }
        sleep 0.1
    done
}
mkdir -p "$T/a" "$T/b"
chmod 0711 "$T/a" "$T/b"
start_daemon a
start_daemon b
A=(--connect "$T/a/nimbusd.sock")
B=(--connect "$T/b/nimbusd.sock")

info() { "$N" info m "$@" --json 2>/dev/null; }
state() { jget "$(info "$@")" state 2>/dev/null; }
last_tick() { # DAEMON-ARGS...: the newest counter value on m's console
    timeout 0.5 "$N" console m "$@" </dev/null 2>/dev/null | tr -d '\r' |
        awk '/^tick [0-9]+$/ { n = $2 } END { print n }'
}
wait_tick() { # MIN DAEMON-ARGS...
    local min=$1 end=$((SECONDS + BOOT_TIMEOUT)) t
    shift
    while :; do
        t=$(last_tick "$@")
        [ -n "$t" ] && [ "$t" -ge "$min" ] && { echo "$t"; return 0; }
        [ $SECONDS -lt $end ] || fail "no tick $min on m's console ($*; last: '$t')"
    done
}
# watch_both PID: until the migration (the CLI, PID) ends, records whether
# each daemon showed m migrating (no python per look: the machine is shared).
migrating() { "$N" info m "$@" --json 2>/dev/null | grep -q '^{"name":"m","uuid":"[^"]*","state":"migrating"'; }
watch_both() {
    SEEN_A="" SEEN_B=""
    while kill -0 "$1" 2>/dev/null; do
        migrating "${A[@]}" && SEEN_A=1
        migrating "${B[@]}" && SEEN_B=1
        [ -n "$SEEN_A" ] && [ -n "$SEEN_B" ] && break
    done
}
# history_has DAEMON-ARGS... -- "FROM>TO"...: m's history holds these steps.
history_has() {
    local args=() h
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    shift
    h=$("$N" info m "${args[@]}" --json | python3 -c '
import json, sys
print(" ".join(e["from"] + ">" + e["to"] for e in json.load(sys.stdin)["history"]))')
    for step in "$@"; do
        grep -q -- "$step" <<<"$h" || fail "m's history at ${args[*]}: no $step in: $h"
    done
}

K=$(realpath "$KERNEL")
I=$(realpath "$INITRD")
cat >"$T/m.json" <<EOF
{"name": "m", "memory_mib": 160, "kernel": "$K", "initrd": "$I", "jit": true,
 "cmdline": "console=ttyS0 quiet -- i=0; while :; do i=\$((i+1)); echo tick \$i; sleep 0.2; done"}
EOF
out=$("$N" define "$T/m.json" "${A[@]}" 2>&1) || fail "define: $out"
out=$("$N" start m "${A[@]}" 2>&1) || fail "start: $out"
before=$(wait_tick 3 "${A[@]}")

# 1. A -> B, watched from both sides.
"$N" migrate m "${A[@]}" --dest-connect "$T/b/nimbusd.sock" --to tcp:127.0.0.1:0 \
    --max-bandwidth 8M >"$T/mig1.out" 2>&1 &
MPID=$!
watch_both $MPID
wait $MPID || { LAST_LOG=$T/a.log; fail "migrate A -> B: $(cat "$T/mig1.out")"; }
[ -n "$SEEN_A" ] && [ -n "$SEEN_B" ] || fail "not seen migrating on both sides (A: '$SEEN_A', B: '$SEEN_B')"
history_has "${A[@]}" -- "running>migrating migrating>shutdown"
history_has "${B[@]}" -- "undefined>defined defined>migrating migrating>running"
grep -q "migration completed" "$T/mig1.out" || fail "no result line: $(cat "$T/mig1.out")"
ia=$(info "${A[@]}")
[ "$(jget "$ia" state)" = shutdown ] || fail "A after the migration: $ia"
case "$(jget "$ia" exit_reason)" in "migrated to tcp:127.0.0.1:"*) ;; *) fail "A's reason: $ia" ;; esac
[ "$(jget "$ia" pid)" = null ] || fail "A still has a process: $ia"
[ "$(jget "$ia" migration.phase)" = completed ] || fail "A's last migration: $ia"
[ "$(state "${B[@]}")" = running ] || fail "B after the migration: $(info "${B[@]}")"
after=$(wait_tick $((before + 1)) "${B[@]}")
# The counter went on: a guest that rebooted would count from 1 again.
first_b=$(timeout 0.5 "$N" console m "${B[@]}" </dev/null 2>/dev/null | tr -d '\r' |
    awk '/^tick [0-9]+$/ { print $2; exit }')
[ -n "$first_b" ] && [ "$first_b" -gt "$before" ] ||
    fail "B's counter starts at '$first_b', A's was at $before: the guest did not go on"

# 2. B -> A, A has it defined (shutdown); B undefines it.
out=$("$N" migrate m "${B[@]}" --dest-connect "$T/a/nimbusd.sock" --to tcp:127.0.0.1:0 \
    --undefine-source --json 2>&1) || fail "migrate B -> A: $out"
res=$(tail -n 1 <<<"$out")
[ "$(jget "$res" kind)" = result ] && [ "$(jget "$res" source.state)" = undefined ] &&
    [ "$(jget "$res" destination.state)" = running ] || fail "B -> A --json: $res"
"$N" info m "${B[@]}" >/dev/null 2>&1 && fail "B still has m after --undefine-source"
[ "$(state "${A[@]}")" = running ] || fail "A after B -> A: $(info "${A[@]}")"
back=$(wait_tick $((after + 1)) "${A[@]}")

# 3. A -> B, B's incoming process killed: A goes on, B keeps nothing.
"$N" migrate m "${A[@]}" --dest-connect "$T/b/nimbusd.sock" --to tcp:127.0.0.1:0 \
    --max-bandwidth 4M >"$T/mig3.out" 2>&1 &
MPID=$!
bpid=""
end=$((SECONDS + 20))
while [ -z "$bpid" ]; do
    ib=$(info "${B[@]}")
    if [ "$(jget "$ib" state 2>/dev/null)" = migrating ] && [ "$(state "${A[@]}")" = migrating ]; then
        bpid=$(jget "$ib" pid)
    fi
    [ $SECONDS -lt $end ] || fail "the third migration did not start: $(cat "$T/mig3.out")"
done
kill -9 "$bpid"
wait $MPID && fail "migrate with the destination killed succeeded: $(cat "$T/mig3.out")"
end=$((SECONDS + 20))
while [ "$(state "${A[@]}")" = migrating ] || "$N" info m "${B[@]}" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "after the failure: A $(state "${A[@]}"), B $(info "${B[@]}")"
    sleep 0.1
done
ia=$(info "${A[@]}")
[ "$(jget "$ia" state)" = running ] || fail "A after the failed migration: $ia"
grep -q "failed" <<<"$(jget "$ia" history)" || fail "A's history has no failure: $ia"
[ ! -e "$T/b/data/vms/m" ] || fail "B left $T/b/data/vms/m behind"
back=$(wait_tick $((back + 1)) "${A[@]}")

# 4. A -> B again, both daemons killed (-9) in the middle and started
# again: the migration goes on between the VM processes, each new daemon
# follows its side again and records the end.
"$N" migrate m "${A[@]}" --dest-connect "$T/b/nimbusd.sock" --to tcp:127.0.0.1:0 \
    --max-bandwidth 8M >"$T/mig4.out" 2>&1 &
MPID=$!
watch_both $MPID
[ -n "$SEEN_A" ] && [ -n "$SEEN_B" ] || fail "4th migration: not seen migrating (A '$SEEN_A', B '$SEEN_B')"
# The VM process has taken the request (its figures are A's): only then
# is the migration the VM's own business.
end=$((SECONDS + 30))
until "$N" info m "${A[@]}" --json | grep -q '"phase":"precopy"'; do
    [ $SECONDS -lt $end ] || fail "4th migration: A shows no progress: $(info "${A[@]}")"
done
# shellcheck disable=SC2154
kill -9 "$DPID_a" "$DPID_b"
wait $MPID 2>/dev/null
start_daemon a
start_daemon b
end=$((SECONDS + 40))
while [ "$(state "${A[@]}")" = migrating ] || [ "$(state "${B[@]}")" = migrating ]; do
    [ $SECONDS -lt $end ] || fail "after the restarts: A $(info "${A[@]}"), B $(info "${B[@]}")"
    sleep 0.2
done
grep -q "following its outgoing migration again" "$T/a.log" &&
    grep -q "following its incoming migration again" "$T/b.log" ||
    fail "the restarted daemons did not follow the migration: $(tail -n 3 "$T/a.log" "$T/b.log")"
[ "$(state "${A[@]}")" = shutdown ] && [ "$(state "${B[@]}")" = running ] ||
    fail "after the restarts: A $(info "${A[@]}"), B $(info "${B[@]}")"
wait_tick $((back + 1)) "${B[@]}" >/dev/null
pass
