#!/usr/bin/env bash
# Post-copy recovery (docs/migration.md "Post-copy recovery"): the guest
# holds an 8 MiB file of random data in its RAM (the initramfs) and prints
# its checksum now and then, and counts, printing each tick and dirtying
# 256 KiB per tick. It moves by post-copy at 8 MB/s through a relay the
# test controls (a python process between two unix sockets); once the
# destination has taken over and 4 MiB of pages went, the relay is
# killed. Then:
#   - both sides report postcopy-paused (GET /vm/migration), and the
#     source's `nimbus migrate` ends with status 3 saying how to recover;
#   - cancel is refused on both sides (409 busy, "post-copy is paused");
#   - `nimbus migrate-recover` has the destination listen again, and
#     `nimbus migrate --resume` reconnects the source directly: the
#     migration completes, the source process exits 0;
#   - no page lost or sent twice after the bitmap exchange: the source sent
#     exactly the pages the destination lacked (recover_sent =
#     recover_missing), the destination placed none twice (duplicate_pages
#     0), one recovery on each side;
#   - the guest goes on: its ticks continue without a gap and the file's
#     checksum is the one from before the move.
# Needs userfaultfd for this user (root, or vm.unprivileged_userfaultfd=1):
# skipped (PASS with a note) otherwise.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test migrate_recover

if [ "$(id -u)" != 0 ] && [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 1 ]; then
    echo "skipped: post-copy needs userfaultfd for this user"
    pass
fi

# The guest's console in a file of its own: the source's stderr (its
# "post-copy paused" lines) would split a line the guest was printing when
# it moved (seen in CI: "tick 1" on the source, the VMM's line, "4" on the
# destination, read as a lost tick).
start_vm vm0 --mem 256M --api "$T/src.sock" --console "file:$T/src.console" --append "console=ttyS0 quiet -- $(guest_cmd_arg '
dd if=/dev/urandom of=/tmp/big bs=64k count=128 2>/dev/null
echo "sum 0 $(md5sum </tmp/big)"
i=0
while [ $i -lt 100000 ]; do
    i=$((i + 1))
    echo "tick $i"
    dd if=/dev/urandom of=/tmp/dirty bs=64k count=4 2>/dev/null
    [ $((i % 20)) = 0 ] && echo "sum $i $(md5sum </tmp/big)"
    sleep 0.1
done')"
SRC_PID=$VM_PID
SRC_LOG=$T/src.console
VM_LOG=$SRC_LOG
LAST_LOG=$SRC_LOG
wait_for '^tick 5$'
sum0=$(tr -d '\r' <"$VM_LOG" | awk '/^sum 0 / { print $3 }')
[ -n "$sum0" ] || fail "no checksum from the guest"
API=$T/src.sock
wait_api_socket

# The destination.
DST_LOG=$T/dst.log
: >"$DST_LOG"
"$NIMBUS" restore --incoming "unix:$T/dst.mig" --api "$T/dst.sock" --console "file:$DST_LOG" \
    </dev/null >"$T/dst.err" 2>&1 &
DST_PID=$!
BG_PIDS+=("$DST_PID")
for _ in $(seq 100); do
    grep -qs 'waiting for a migration on' "$T/dst.err" && break
    kill -0 "$DST_PID" 2>/dev/null || fail "destination: $(cat "$T/dst.err")"
    sleep 0.1
done

# The relay: source -> relay.mig -> dst.mig, both ways, until killed.
python3 -u - "$T/relay.mig" "$T/dst.mig" >"$T/relay.log" 2>&1 <<'PY' &
import os, select, socket, sys
l = socket.socket(socket.AF_UNIX)
l.bind(sys.argv[1])
l.listen(1)
print("ready")
a, _ = l.accept()
b = socket.socket(socket.AF_UNIX)
b.connect(sys.argv[2])
peer = {a: b, b: a}
while True:
    for s in select.select([a, b], [], [])[0]:
        d = s.recv(1 << 16)
        if not d:
            sys.exit(0)
        peer[s].sendall(d)
PY
RELAY_PID=$!
BG_PIDS+=("$RELAY_PID")
for _ in $(seq 50); do grep -q '^ready$' "$T/relay.log" && break; sleep 0.1; done
grep -q '^ready$' "$T/relay.log" || fail "the relay did not start: $(cat "$T/relay.log")"

"$NIMBUS" migrate --api "$T/src.sock" --to "unix:$T/relay.mig" --postcopy --max-bandwidth 8M \
    >"$T/mig1.out" 2>&1 &
MIG_PID=$!
BG_PIDS+=("$MIG_PID")

# Cut once the destination runs the VM (its API is up after GO) and 4 MiB
# of pages came (~0.5 s of the ~7 s push; polled with curl, cheap enough
# not to miss it on a loaded host).
migration_bytes() {
    curl -s --max-time 5 --unix-socket "$T/dst.sock" http://nimbus/vm/migration |
        sed -n 's/.*"bytes": *\([0-9]*\).*/\1/p'
}
for _ in $(seq 600); do
    [ "$(migration_bytes)" -gt $((4 << 20)) ] 2>/dev/null && break
    kill -0 "$DST_PID" 2>/dev/null || fail "destination: $(cat "$T/dst.err")"
    sleep 0.05
done
kill -9 "$RELAY_PID"
wait "$RELAY_PID" 2>/dev/null
API=$T/dst.sock
VM_PID=$DST_PID

# Both sides pause; the source's command says how to go on.
wait_api 20 /vm/migration migration.phase "v == 'postcopy-paused'"
left=$(jget "$API_REPLY" migration.pages_remaining)
[ "$left" -gt 0 ] && [ "$(jget "$API_REPLY" migration.bytes)" -gt $((4 << 20)) ] ||
    fail "the cut was not in the middle: $API_REPLY"
echo "cut with $left pages still on the source"
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = migrating ] || fail "the paused destination: $API_REPLY"
API=$T/src.sock
VM_PID=$SRC_PID
wait_api 20 /vm/migration migration.phase "v == 'postcopy-paused'"
echo "paused: $(jget "$API_REPLY" migration.error)"
wait "$MIG_PID"
st=$?
[ $st = 3 ] && grep -q 'migrate-recover' "$T/mig1.out" ||
    fail "nimbus migrate at the cut: status $st: $(cat "$T/mig1.out")"

# Cancel would lose the VM: refused on both sides, saying so.
for sock in src dst; do
    API=$T/$sock.sock
    api_err 409 busy PUT /vm/migration/cancel
    grep -q 'post-copy is paused' <<<"$API_REPLY" || fail "$sock: cancel: $API_REPLY"
done

# Recover: the destination listens again, the source resumes there.
out=$("$NIMBUS" migrate-recover --api "$T/dst.sock" --listen "unix:$T/rec.mig" 2>&1) ||
    fail "nimbus migrate-recover: $out"
grep -q "at unix:$T/rec.mig" <<<"$out" || fail "nimbus migrate-recover said: $out"
out=$(timeout 60 "$NIMBUS" migrate --api "$T/src.sock" --resume --to "unix:$T/rec.mig" --json 2>&1) ||
    fail "nimbus migrate --resume: $out"
last=$(grep '"migration"' <<<"$out" | tail -n 1)
[ "$(jget "$last" migration.phase)" = completed ] || fail "the resumed migration: $out"
missing=$(jget "$last" migration.recover_missing)
sent=$(jget "$last" migration.recover_sent)
[ "$(jget "$last" migration.recoveries)" = 1 ] && [ "$missing" -gt 0 ] && [ "$sent" = "$missing" ] ||
    fail "the source after the recovery: $last"
VM_PID=$SRC_PID
wait_exit 30
[ "$VM_STATUS" = 0 ] || fail "the source ended with $(status_text "$VM_STATUS")"

API=$T/dst.sock
VM_PID=$DST_PID
VM_LOG=$DST_LOG
LAST_LOG=$DST_LOG
wait_api 30 /vm/migration migration.phase "v == 'completed'"
[ "$(jget "$API_REPLY" migration.recoveries)" = 1 ] &&
    [ "$(jget "$API_REPLY" migration.duplicate_pages)" = 0 ] &&
    [ "$(jget "$API_REPLY" migration.recover_missing)" = "$missing" ] ||
    fail "the destination after the recovery: $API_REPLY"
echo "recovered: $missing pages missing, $sent sent, none twice"

# The guest goes on: ticks without a gap, the file unchanged.
last_tick() { tr -d '\r' <"$1" | awk '/^tick [0-9]+$/ { n = $2 } END { print n + 0 }'; }
from=$(last_tick "$SRC_LOG")
wait_for "^tick $((from + 25))\$" 60
cat "$SRC_LOG" "$DST_LOG" | tr -d '\r' | sed '$d' | awk '/^tick [0-9]+$/ { if (n && $2 != n + 1) { print "after", n, "came", $2; bad = 1 } n = $2 }
    END { exit bad }' >"$T/gaps" || fail "the ticks: $(head -n 3 "$T/gaps")"
tr -d '\r' <"$DST_LOG" | grep -q '^sum [0-9]* ' || fail "no checksum on the destination"
tr -d '\r' <"$DST_LOG" | awk -v s="$sum0" '/^sum [0-9]+ / && $3 != s { print; bad = 1 } END { exit bad }' \
    >"$T/sums" || fail "the guest's file changed: $(head -n 2 "$T/sums") (was $sum0)"
api_ok PUT /vm/destroy
wait_exit 30
pass
