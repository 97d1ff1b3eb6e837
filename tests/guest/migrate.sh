#!/usr/bin/env bash
# Live migration (docs/migration.md) of a guest that keeps working: it holds
# a 4 MiB file of random data in its RAM (the initramfs) and prints its
# checksum now and then, and counts, printing each tick and dirtying 256 KiB
# of memory per tick. The VM moves five times, each time to a new process:
#   1. pre-copy over a unix socket (nimbus migrate through the API);
#   2. pre-copy over TCP on 127.0.0.1 (the destination picks the port), with
#      zstd;
#   3. post-copy over a unix socket (when userfaultfd is allowed here);
#   4. hybrid: one pre-copy round, then post-copy;
#   5. post-copy without pre-paging (--postcopy-prepage off).
# After each: the source process has ended with status 0, the destination's
# ticks go on from the source's (no gap, no repeat), and the checksum is the
# one from before the first move.
# The network follows the VM: the guest has a tap card in a network
# namespace the test makes (192.168.79.2 on it); each destination gets a
# tap of its own there, attached by a helper and handed over as a
# descriptor (two processes cannot hold one tap). A sniffer in the namespace
# sees, on each destination's tap after its hop, the 5 gratuitous RARPs of
# the guest's MAC (QEMU's frame) and the guest's own gratuitous ARP
# (VIRTIO_NET_F_GUEST_ANNOUNCE); the API's counters say 5 frames sent and
# every request acknowledged; the source's tap and the killed
# destination's see no RARP. The taps are ports of a bridge in the
# namespace (192.168.79.1 on it), and one TCP connection from the guest to
# a server there carries numbered lines both ways through all the hops: it
# is never closed nor opened again, no line is lost or repeated, and lines
# keep flowing after each hop (the announcements moved the bridge's
# forwarding entry to the new tap). Where namespaces or /dev/net/tun are not
# to be had (not root), the card is user-mode and only the counters are
# checked.
# Failures: a destination killed in the middle of a (bandwidth-limited)
# migration: nimbus migrate fails, the source is running and still counting;
# garbage sent to a waiting destination: it refuses with a clear message.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test migrate

MAC=52:54:00:4d:49:47
GUEST_IP=192.168.79.2
HOST_IP=192.168.79.1
NS=nimbus-mig-$$
TAP=0
NIMBUS_BIN=$(readlink -f "$(command -v "$NIMBUS")")
in_ns() { ip netns exec "$NS" "$@"; }
if [ -c /dev/net/tun ] && command -v ip >/dev/null && ip netns add "$NS" 2>/dev/null; then
    trap 'cleanup; ip netns del "$NS" 2>/dev/null' EXIT
    in_ns ip tuntap add dev nt-vm0 mode tap 2>/dev/null && TAP=1
fi
# new_tap NAME: a tap interface NAME, up, a port of the namespace's bridge.
new_tap() {
    { in_ns ip tuntap add dev "$1" mode tap && in_ns ip link set "$1" master nt-br0 &&
        in_ns ip link set "$1" up; } 2>"$T/tap.err" || fail "tap $1 in the namespace: $(cat "$T/tap.err")"
}
GUEST_CONN=""
if [ $TAP = 1 ]; then
    in_ns ip link set lo up
    # The bridge's MAC is set, not left to the kernel: a bridge without one
    # takes the lowest of its ports' MACs, so each destination's new tap
    # could change it under the guest's ARP entry for 192.168.79.1, and the
    # guest's frames to the old MAC are dropped (seen: the connection
    # stalled for tens of seconds after a hop, in 1 of 4 runs).
    in_ns ip link add nt-br0 address 02:00:00:00:79:01 type bridge || fail "no bridge in the namespace"
    in_ns ip addr add "$HOST_IP/24" dev nt-br0
    in_ns ip link set nt-br0 up
    in_ns ip link set nt-vm0 master nt-br0
    in_ns ip link set nt-vm0 up
    NET_ARGS=(--net "tap,ifname=nt-vm0,mac=$MAC")
    # Every nimbus (the VMs, the CLI) in the namespace.
    printf '#!/bin/sh\nexec ip netns exec %s %q "$@"\n' "$NS" "$NIMBUS_BIN" >"$T/nimbus-ns"
    chmod +x "$T/nimbus-ns"
    NIMBUS=$T/nimbus-ns
    # The destinations' taps: attached here, the descriptor handed over.
    cat >"$T/tapfd.py" <<'PY'
import fcntl, os, struct, sys
TUNSETIFF, IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x400454CA, 0x0002, 0x1000, 0x4000
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", sys.argv[1].encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
os.set_inheritable(fd, True)
os.execv(sys.argv[2], [a.replace("@FD@", str(fd)) for a in sys.argv[2:]])
PY
    # The sniffer: RARP and ARP frames arriving from any tap.
    in_ns python3 -u - >"$T/sniff.log" 2>&1 <<'PY' &
import socket, struct
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))   # ETH_P_ALL
print("ready")
while True:
    f, a = s.recvfrom(65535)
    if a[2] == socket.PACKET_OUTGOING or len(f) < 42:
        continue
    et, op = struct.unpack("!H", f[12:14])[0], struct.unpack("!H", f[20:22])[0]
    if et == 0x8035:
        print(a[0], "rarp", f[6:12].hex(":"), op, f[22:28].hex(":"), f[32:38].hex(":"))
    elif et == 0x0806:
        print(a[0], "arp", f[6:12].hex(":"), op, socket.inet_ntoa(f[28:32]), socket.inet_ntoa(f[38:42]))
PY
    BG_PIDS+=($!)
    for _ in $(seq 50); do grep -q '^ready$' "$T/sniff.log" && break; sleep 0.1; done
    grep -q '^ready$' "$T/sniff.log" || fail "the sniffer did not start: $(cat "$T/sniff.log")"
    # The TCP server: one connection only; each line "line N" from the guest
    # must be the next N, and is answered with "ack N".
    in_ns python3 -u - "$HOST_IP" >"$T/conn.log" 2>&1 <<'PY' &
import socket, sys
srv = socket.create_server((sys.argv[1], 7777))
print("ready")
while True:
    c, _ = srv.accept()
    print("accepted")
    n = 0
    for line in c.makefile("r"):
        words = line.split()
        if len(words) == 2 and words[0] == "line" and words[1] == str(n + 1):
            n += 1
            print("got", n)
            c.sendall(b"ack %d\n" % n)
        else:
            print("bad", repr(line), "after", n)
    print("closed after", n)
PY
    BG_PIDS+=($!)
    for _ in $(seq 50); do grep -q '^ready$' "$T/conn.log" && break; sleep 0.1; done
    grep -q '^ready$' "$T/conn.log" || fail "the TCP server did not start: $(cat "$T/conn.log")"
    # In the guest: a line every 0.2 s on the connection, the acks to a file
    # whose length the tick loop prints.
    GUEST_CONN='(j=0; while :; do j=$((j + 1)); echo "line $j"; sleep 0.2; done) | nc '"$HOST_IP"' 7777 >/tmp/acks &'
else
    echo "no tap in a network namespace here: a user-mode card, the announcements' counters only"
    NET_ARGS=(--net "user,mac=$MAC")
fi

start_vm vm0 --mem 256M --api "$T/api0.sock" "${NET_ARGS[@]}" --append "console=ttyS0 quiet -- $(guest_cmd_arg '
ip addr add '"$GUEST_IP"'/24 dev eth0 && ip link set eth0 up
'"$GUEST_CONN"'
dd if=/dev/urandom of=/tmp/big bs=64k count=64 2>/dev/null
echo "sum 0 $(md5sum </tmp/big)"
i=0
while [ $i -lt 100000 ]; do
    i=$((i + 1))
    echo "tick $i"
    dd if=/dev/urandom of=/tmp/dirty bs=64k count=4 2>/dev/null
    [ $((i % 10)) = 0 ] && echo "sum $i $(md5sum </tmp/big)" && echo "acks $(grep -c ack /tmp/acks 2>/dev/null)"
    sleep 0.1
done')"
LOGS=("$VM_LOG")
wait_for '^tick 10$'
sum0=$(tr -d '\r' <"$VM_LOG" | awk '/^sum 0 / { print $3 }')
[ -n "$sum0" ] || fail "no checksum from the guest"
API=$T/api0.sock
wait_api_socket

last_tick() { tr -d '\r' <"$1" | awk '/^tick [0-9]+$/ { n = $2 } END { print n + 0 }'; }

# start_dest NAME ADDR [options]: a destination waiting at ADDR (on the tap
# nt-NAME); sets DEST_PID and DEST_LOG (its console) and DEST_ERR (its
# stderr).
start_dest() {
    local name=$1 addr=$2 cmd=("$NIMBUS")
    shift 2
    DEST_LOG=$T/$name.log
    DEST_ERR=$T/$name.err
    : >"$DEST_LOG"
    if [ $TAP = 1 ]; then
        new_tap "nt-$name"
        cmd=(ip netns exec "$NS" python3 "$T/tapfd.py" "nt-$name" "$NIMBUS_BIN")
        set -- "$@" --net "tap,fd=@FD@"
    fi
    "${cmd[@]}" restore --incoming "$addr" --console "file:$DEST_LOG" "$@" </dev/null >"$DEST_ERR" 2>&1 &
    DEST_PID=$!
    BG_PIDS+=("$DEST_PID")
    local i
    for i in $(seq 100); do
        grep -qs 'waiting for a migration on' "$DEST_ERR" && return 0
        kill -0 "$DEST_PID" 2>/dev/null || fail "$name: $(cat "$DEST_ERR")"
        sleep 0.1
    done
    fail "$name: not listening: $(cat "$DEST_ERR")"
}

# rarps TAP: the gratuitous RARPs of the guest's MAC the sniffer saw on TAP.
rarps() { grep -c "^$1 rarp $MAC 3 $MAC $MAC\$" "$T/sniff.log"; }

# counter NAME: the number NAME in $COUNTERS (the one network card's).
counter() {
    [[ $COUNTERS =~ \"$1\":\ *([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}

# check_announce N: the destination of hop N announced the guest's MAC
# (done long since: the hop waited for 15 ticks). (nimbus counters, not
# api_ok: a python less per hop; tests/guest/api.sh checks the reply's
# schema.)
check_announce() {
    local n=$1 frames req acks
    for _ in $(seq 20); do
        COUNTERS=$("$NIMBUS" counters --api "$API" --json) || fail "hop $n: nimbus counters failed"
        frames=$(counter announce_frames)
        req=$(counter announce_requests)
        acks=$(counter announce_acks)
        [ "$frames" = 5 ] && [ "${req:-0}" -ge 1 ] && [ "$acks" = "$req" ] && break
        sleep 0.2
    done
    [ "$frames" = 5 ] && [ "${req:-0}" -ge 1 ] && [ "$acks" = "$req" ] ||
        fail "hop $n: announcements: $frames RARPs, the guest asked $req times, $acks acks"
    ANNOUNCED="$frames RARPs, guest asked ${req}x, ${acks} acks"
    [ $TAP = 1 ] || return 0
    [ "$(rarps "nt-vm$n")" = 5 ] ||
        fail "hop $n: $(rarps "nt-vm$n") RARPs of $MAC on nt-vm$n, not 5: $(tail -n 5 "$T/sniff.log")"
    grep -q "^nt-vm$n arp $MAC 1 $GUEST_IP $GUEST_IP\$" "$T/sniff.log" ||
        fail "hop $n: no gratuitous ARP from the guest on nt-vm$n: $(tail -n 5 "$T/sniff.log")"
    ANNOUNCED+=", seen on nt-vm$n"
}

# hop N ADDR-FOR-DEST [migrate options]: moves the VM (API $API, process
# $VM_PID) to a new destination N; checks the rules above.
hop() {
    local n=$1 addr=$2 out
    shift 2
    start_dest "vm$n" "$addr" --api "$T/api$n.sock"
    if [[ $addr == tcp:* ]]; then
        addr=$(sed -n 's/.*waiting for a migration on \(tcp:[^ ]*\).*/\1/p' "$DEST_ERR")
    fi
    out=$(timeout 60 "$NIMBUS" migrate --api "$API" --to "$addr" "$@" 2>&1) ||
        fail "hop $n ($*): nimbus migrate: $out"
    echo "hop $n ($addr $*): $(grep '^migration' <<<"$out")"
    grep -q '^migration completed' <<<"$out" || fail "hop $n: $out"
    wait_exit 30
    [ "$VM_STATUS" = 0 ] || fail "hop $n: the source ended with $(status_text "$VM_STATUS")"
    VM_PID=$DEST_PID
    VM_LOG=$DEST_LOG
    LAST_LOG=$VM_LOG
    LOGS+=("$VM_LOG")
    API=$T/api$n.sock
    local from
    from=$(last_tick "${LOGS[-2]}")
    wait_for "^tick $((from + 15))\$" 60
    # (The last line may be one the guest is still writing.)
    cat "${LOGS[@]}" | tr -d '\r' | sed '$d' | awk '/^tick [0-9]+$/ { if (n && $2 != n + 1) { print "after", n, "came", $2; bad = 1 } n = $2 }
        END { exit bad }' >"$T/gaps" || fail "hop $n: the ticks: $(head -n 3 "$T/gaps")"
    wait_for "^sum [0-9]+ " 30 "$(grep -c '' "$VM_LOG" | awk '{ print $1 - 1 }')"
    tr -d '\r' <"$VM_LOG" | awk -v s="$sum0" '/^sum [0-9]+ / && $3 != s { print; bad = 1 } END { exit bad }' \
        >"$T/sums" || fail "hop $n: the guest's file changed: $(head -n 2 "$T/sums") (was $sum0)"
    api_ok GET /vm/migration
    [ "$(jget "$API_REPLY" migration.role)" = destination ] &&
        [ "$(jget "$API_REPLY" state)" = running ] || fail "hop $n: GET /vm/migration: $API_REPLY"
    check_announce "$n"
    echo "hop $n: announced: $ANNOUNCED"
    check_connection "$n"
}

# last_line: the last line number the TCP server got.
last_line() { awk '$1 == "got" { n = $2 } END { print n + 0 }' "$T/conn.log"; }

# check_connection N: after hop N the guest's TCP connection is the one it
# opened first, every line came in order, and lines flow both ways: the
# server gets 10 more, and the guest prints a count of acks above the last
# one from before the hop.
check_connection() {
    [ $TAP = 1 ] || return 0
    local n=$1 from acks_before acks_after
    from=$(last_line)
    for _ in $(seq 150); do [ "$(last_line)" -ge $((from + 10)) ] && break; sleep 0.2; done
    [ "$(last_line)" -ge $((from + 10)) ] ||
        fail "hop $n: the TCP connection carries no more lines (last $from): $(tail -n 3 "$T/conn.log")"
    [ "$(grep -c '^accepted$' "$T/conn.log")" = 1 ] && ! grep -q '^bad\|^closed' "$T/conn.log" ||
        fail "hop $n: the TCP connection: $(grep -v '^got' "$T/conn.log" | head -n 5)"
    acks_before=$(cat "${LOGS[@]}" | tr -d '\r' | awk '/^acks [0-9]+$/ { n = $2 } END { print n + 0 }')
    wait_for "^acks [0-9]+$" 30 "$(log_lines)"
    acks_after=$(tr -d '\r' <"$VM_LOG" | awk '/^acks [0-9]+$/ { n = $2 } END { print n + 0 }')
    [ "$acks_after" -gt "$acks_before" ] ||
        fail "hop $n: the guest got no acks since the hop ($acks_before, then $acks_after)"
    echo "hop $n: one TCP connection, $(last_line) lines in order, $acks_after acks back"
}

hop 1 "unix:$T/mig1.sock"
hop 2 "tcp:127.0.0.1:0" --compress
uffd_ok=1
if [ "$(id -u)" != 0 ] && [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 1 ]; then
    uffd_ok=0
fi
if [ $uffd_ok = 1 ]; then
    hop 3 "unix:$T/mig3.sock" --postcopy
    hop 4 "unix:$T/mig4.sock" --postcopy-after 1
    hop 5 "unix:$T/mig5.sock" --postcopy --postcopy-prepage off
else
    echo "post-copy skipped: no userfaultfd for this user"
fi

# A destination killed in the middle: the source goes on.
start_dest dead "unix:$T/dead.sock"
"$NIMBUS" migrate --api "$API" --to "unix:$T/dead.sock" --max-bandwidth 10M >"$T/dead.out" 2>&1 &
MIG_PID=$!
# Killed once some MiB went (the whole takes about 5 s at this bandwidth).
for _ in $(seq 100); do
    grep -Eq 'pages sent \([1-9]' "$T/dead.out" && break
    sleep 0.1
done
kill -9 "$DEST_PID"
wait "$DEST_PID" 2>/dev/null
killed_at=$(grep -c '' "$T/dead.out")
wait "$MIG_PID" && fail "nimbus migrate succeeded with its destination killed (at line $killed_at): $(cat "$T/dead.out")"
grep -q 'migration failed' "$T/dead.out" || fail "the failed migration: $(cat "$T/dead.out")"
echo "killed destination: $(grep '^nimbus migrate' "$T/dead.out")"
api_ok GET /vm
[ "$(jget "$API_REPLY" state)" = running ] || fail "after the failed migration: $API_REPLY"
from=$(last_tick "$VM_LOG")
wait_for "^tick $((from + 10))\$" 30

# Garbage to a waiting destination: refused, clearly.
start_dest junk "unix:$T/junk.sock"
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"GET / HTTP/1.1\r\nHost: nimbus\r\n\r\n" * 4)
s.shutdown(socket.SHUT_WR)
s.recv(4096)
' "$T/junk.sock" || true
for _ in $(seq 50); do kill -0 "$DEST_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$DEST_PID" 2>/dev/null && fail "the destination took garbage and waits on"
wait "$DEST_PID"
st=$?
[ $st = 1 ] && grep -q 'not a migration stream' "$DEST_ERR" ||
    fail "garbage: status $st, $(cat "$DEST_ERR")"

if [ $TAP = 1 ]; then
    for t in nt-vm0 nt-dead; do
        [ "$(rarps $t)" = 0 ] || fail "$(rarps $t) RARPs on $t, which never took the VM"
    done
fi

api_ok PUT /vm/destroy
wait_exit 30
pass
