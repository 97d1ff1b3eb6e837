#!/usr/bin/env bash
# Bad --net options give one line on stderr naming the problem and a
# non-zero exit status at once (no boot): an unknown kind, tap without
# ifname, bad hostfwd rules, bad and multicast MAC addresses, a host port
# that is already taken (held by this test on 127.0.0.1), a tap name that
# belongs to a non-tap interface (lo), too many cards and disks together.
set -u
. "$(dirname "$0")/lib.sh"
guest_test net_bad_options
command -v python3 >/dev/null || fail "python3 not found (scripts/deps.sh installs it)"

# Hold a port on loopback for the "in use" case; the holder prints it.
python3 -u -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1]); time.sleep(600)' >"$T/held" &
BG_PIDS+=($!)
for _ in $(seq 50); do [ -s "$T/held" ] && break; sleep 0.1; done
held=$(cat "$T/held")
[ -n "$held" ] || fail "could not hold a port"
truncate -s 1M "$T/disk.img"

k=(--kernel "$KERNEL")
cases=(
    "unknown kind|--net bridge|--net needs a kind"
    "tap without ifname|--net tap|ifname"
    "unknown user option|--net user,foo=1|unknown --net user option"
    "hostfwd without ports|--net user,hostfwd=tcp::-:22|bad hostfwd"
    "hostfwd port 0|--net user,hostfwd=tcp::0-:22|bad hostfwd"
    "hostfwd port too big|--net user,hostfwd=tcp::70000-:22|bad hostfwd"
    "hostfwd bad protocol|--net user,hostfwd=sctp::2222-:22|bad hostfwd"
    "hostfwd bad address|--net user,hostfwd=tcp:1.2.3:2222-:22|bad hostfwd"
    "bad MAC|--net user,mac=52:54:00:12:34|bad --net mac"
    "multicast MAC|--net user,mac=01:00:5e:00:00:01|bad --net mac"
    "host port in use|--net user,hostfwd=tcp:127.0.0.1:$held-:22|cannot forward host port tcp:127.0.0.1:$held"
    "tap on a non-tap interface|--net tap,ifname=lo|ifname=lo"
    "tap name too long|--net tap,ifname=abcdefghijklmnopq|ifname"
    "seven disks and a card|--disk $T/disk.img --disk $T/disk.img --disk $T/disk.img --disk $T/disk.img --disk $T/disk.img --disk $T/disk.img --disk $T/disk.img --net user|at most 7"
)
problems=()
for c in "${cases[@]}"; do
    IFS='|' read -r what opts want <<<"$c"
    read -r -a args <<<"$opts"
    timeout -k 2 20 "$NIMBUS" run "${k[@]}" --append "console=ttyS0 -- true" "${args[@]}" \
        </dev/null >"$T/out" 2>"$T/err"
    st=$?
    lines=$(grep -c . "$T/err")
    if grep -qF "$UP_LINE" "$T/out"; then
        problems+=("$what: accepted, the guest booted")
    elif [ $st -eq 124 ] || [ $st -eq 137 ]; then
        problems+=("$what: hangs")
    elif [ $st -eq 0 ]; then
        problems+=("$what: exit status 0")
    elif [ $st -ge 128 ]; then
        problems+=("$what: killed by signal $((st - 128))")
    elif [ "$lines" -ne 1 ]; then
        problems+=("$what: $lines lines on stderr")
    elif ! grep -qF -- "$want" "$T/err"; then
        problems+=("$what: no '$want' in: $(cat "$T/err")")
    fi
    {
        echo "== $what: ${args[*]} -> status $st"
        sed 's/^/stderr: /' "$T/err"
    } >>"$T/all.log"
done
LAST_LOG=$T/all.log
[ ${#problems[@]} -eq 0 ] || fail "$(IFS=';'; echo "${problems[*]}" | sed 's/;/; /g')"
pass
