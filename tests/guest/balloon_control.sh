#!/usr/bin/env bash
# The control socket and the balloon's statistics queue:
#  - a regular file at the --control path is refused (and left alone), a
#    stale socket file is replaced, a live one (another VM's) is refused;
#  - malformed JSON, a line over 4 KiB, an unknown command or field, values
#    of the wrong type or range, a non-object: each gets {"error": ...} on
#    the same connection, which goes on serving; the VM runs on;
#  - two clients at once, one with half a request pending, both served;
#  - balloon-stats: the guest's statistics (free and total memory, non-zero
#    and sensible); with stats=0 fresh figures come only on request, and a
#    request brings them;
#  - the socket file is gone after the VM exits.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/balloon_lib.bash"
guest_test balloon_control

CTL=$T/ctl.sock
# A regular file in the way: refused with one line naming it, untouched.
echo keep >"$T/file"
"$NIMBUS" run --kernel "$KERNEL" --initrd "$INITRD" --control "$T/file" </dev/null >"$T/file.log" 2>&1
st=$?
[ $st -eq 1 ] || fail "--control on a regular file: exit $st"
grep -q "$T/file exists and is not a socket" "$T/file.log" || fail "message: $(cat "$T/file.log")"
[ "$(cat "$T/file")" = keep ] || fail "the regular file was changed"

# A stale socket (its server is gone) is replaced.
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$CTL"
[ -S "$CTL" ] || fail "could not make a stale socket"
start_vm vm --mem 256M --balloon=stats=0 --control "$CTL"
wait_for "$UP_LINE"
wait_ctl_socket

# A live socket is not taken over.
"$NIMBUS" run --kernel "$KERNEL" --initrd "$INITRD" --control "$CTL" </dev/null >"$T/busy.log" 2>&1
st=$?
[ $st -eq 1 ] && grep -q "is in use by another process" "$T/busy.log" ||
    fail "second VM on a live --control socket: exit $st: $(cat "$T/busy.log")"

# Bad requests, one connection; the last request must still be served.
long=$(head -c 5000 /dev/zero | tr '\0' 'a')
out=$(printf '%s\n' '{bad' "$long" '{"cmd":"nope"}' '{"cmd":"balloon","target_mib":"64"}' \
    '{"cmd":"balloon","target_mib":-1}' '{"cmd":"balloon","target_mib":1.5}' \
    '{"cmd":"balloon"}' '{"cmd":"balloon","target_mib":100000}' '{"cmd":5}' \
    '{"cmd":"status","extra":1}' '[1,2]' '"status"' '{"cmd":"status","cmd":"status"}' '' \
    '{"cmd":"status"}' | python3 "$CTL_CLIENT" "$CTL" -) || fail "raw client failed"
expect=(
    'malformed JSON'
    'request longer than 4096 bytes'
    'unknown command \"nope\"'
    '\"target_mib\" must be a non-negative integer'
    '\"target_mib\" must be a non-negative integer'
    '\"target_mib\" must be a non-negative integer'
    'balloon needs \"target_mib\"'
    "target_mib 100000 is more than the guest's RAM (256 MiB)"
    '\"cmd\" must be a string'
    'unknown field \"extra\" for status'
    'a request is a JSON object'
    'a request is a JSON object'
    'malformed JSON: duplicate object key'
)
n=$(wc -l <<<"$out")
[ "$n" -eq $((${#expect[@]} + 1)) ] || fail "$n replies to $((${#expect[@]} + 1)) requests: $out"
for i in "${!expect[@]}"; do
    line=$(sed -n "$((i + 1))p" <<<"$out")
    [ "${line#\{\"error\":\"}" != "$line" ] && grep -qF -- "${expect[$i]}" <<<"$line" || fail "reply $((i + 1)): $line (want ${expect[$i]})"
done
last=$(tail -n 1 <<<"$out")
[ "$(jget "$last" harts)" = 1 ] && [ "$(jget "$last" ram_mib)" = 256 ] || fail "status after errors: $last"
[ "$(jget "$last" rss_kib)" -gt 1024 ] || fail "status rss: $last"

# Two clients at once: A leaves half a request pending while B is served.
python3 - "$CTL" <<'PY' || fail "two clients"
import json, socket, sys
def conn():
    s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(sys.argv[1]); return s, s.makefile("rb")
(a, af), (b, bf) = conn(), conn()
a.sendall(b'{"cmd":"sta')
b.sendall(b'{"cmd":"status"}\n')
rb = json.loads(bf.readline())
assert rb.get("harts") == 1, rb
a.sendall(b'tus"}\n{"cmd":"balloon-stats"}\n')
ra, ra2 = json.loads(af.readline()), json.loads(af.readline())
assert ra.get("harts") == 1, ra
assert "actual_mib" in ra2, ra2
b.sendall(b'{oops\n')
assert "error" in json.loads(bf.readline())
PY

# Statistics: the driver sends its first figures when it starts (before
# DRIVER_OK); with stats=0 the device asks again only when someone reads
# them, and reading them brings fresh ones.
first=$(ctl '{"cmd":"balloon-stats"}')
[ "$(jget "$first" features.stats)" = True ] || fail "statistics queue not negotiated: $first"
n0=$(jget "$first" stats_updates)
[ "$n0" != null ] && [ "$n0" -ge 1 ] || fail "no statistics from the guest: $first"
wait_ctl 60 '{"cmd":"balloon-stats"}' stats_updates "v > $n0"
stats=$(ctl '{"cmd":"balloon-stats"}')
free=$(jget "$stats" stats.free_memory)
total=$(jget "$stats" stats.total_memory)
[ "$total" -gt $((128 << 20)) ] && [ "$total" -le $((256 << 20)) ] || fail "guest total memory $total: $stats"
[ "$free" -gt 0 ] && [ "$free" -lt "$total" ] || fail "guest free memory $free of $total: $stats"

guest_value ALIVE "echo yes"
alive=$GUEST_VALUE
[ "$alive" = yes ] || fail "the guest does not answer after the bad requests"
send 'poweroff\n'
wait_exit 60
[ "$VM_STATUS" -eq 0 ] || fail "VM: $(status_text "$VM_STATUS")"
[ ! -e "$CTL" ] || fail "control socket left behind"
pass
