#!/usr/bin/env bash
# --net tap inside a network namespace this test makes: a tap interface
# there (192.168.77.1/24), nimbus run in the namespace, the guest with the
# static address 192.168.77.2. The guest pings the namespace's side, fetches
# 4 MiB over HTTP from a server in the namespace (sha256 checked: host ->
# guest with checksum/TSO offloads and mergeable buffers) and sends 1 MiB to
# a receiver there (guest -> host, sha256 checked). The guest reports the
# negotiated feature bits: the offloads must be on for a tap.
# Skipped (with the reason) only where the kernel refuses network
# namespaces or /dev/net/tun.
set -u
. "$(dirname "$0")/lib.sh"
guest_test net_tap
command -v python3 >/dev/null || fail "python3 not found (scripts/deps.sh installs it)"
command -v ip >/dev/null || fail "ip not found (scripts/deps.sh installs iproute2)"

skip() {
    echo "SKIP $TEST_NAME: $*"
    exit 0
}
[ -c /dev/net/tun ] || skip "no /dev/net/tun on this host"
NS=nimbus-tap-$$
ip netns add "$NS" 2>"$T/netns.err" || skip "cannot make a network namespace: $(head -n 1 "$T/netns.err")"
trap 'cleanup; ip netns del "$NS" 2>/dev/null' EXIT
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
in_ns ip tuntap add dev ntap0 mode tap 2>"$T/tap.err" ||
    skip "cannot make a tap device in a namespace: $(head -n 1 "$T/tap.err")"
in_ns ip addr add 192.168.77.1/24 dev ntap0
in_ns ip link set ntap0 up

mkdir -p "$T/www"
head -c 4M /dev/urandom >"$T/www/blob"
blob_sum=$(sha256sum <"$T/www/blob" | cut -d' ' -f1)
in_ns python3 -u -m http.server 0 --bind 192.168.77.1 --directory "$T/www" >"$T/http.log" 2>&1 &
BG_PIDS+=($!)
# The receiver: takes exactly 1 MiB on a port of its choice, writes its
# sha256, closes.
in_ns python3 -u - "$T/recv.sum" >"$T/recv.log" 2>&1 <<'PY' &
import hashlib, socket, sys
s = socket.socket()
s.bind(("192.168.77.1", 0))
s.listen(1)
print("port", s.getsockname()[1], flush=True)
c, _ = s.accept()
h, n = hashlib.sha256(), 0
while n < 1 << 20:
    b = c.recv(65536)
    if not b:
        break
    h.update(b)
    n += len(b)
open(sys.argv[1], "w").write("%d %s\n" % (n, h.hexdigest()))
c.close()
PY
BG_PIDS+=($!)
port="" rport=""
for _ in $(seq 100); do
    port=$(sed -n 's/^Serving HTTP on 192\.168\.77\.1 port \([0-9]*\).*/\1/p' "$T/http.log")
    rport=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$T/recv.log")
    [ -n "$port" ] && [ -n "$rport" ] && break
    sleep 0.1
done
[ -n "$port" ] && [ -n "$rport" ] || fail "the servers in the namespace did not start"

# nimbus itself runs in the namespace.
printf '#!/bin/sh\nexec ip netns exec %s %q "$@"\n' "$NS" "$(readlink -f "$(command -v "$NIMBUS")")" \
    >"$T/nimbus-ns"
chmod +x "$T/nimbus-ns"
NIMBUS=$T/nimbus-ns

run_cmd "$T/run.log" "
ip addr add 192.168.77.2/24 dev eth0 && ip link set eth0 up || exit 3
ping -c 3 -W 5 192.168.77.1 >/dev/null && echo ping=ok
echo features=\$(cat /sys/class/net/eth0/device/features)
wget -q -O /tmp/blob http://192.168.77.1:$port/blob || exit 4
echo sum=\$(sha256sum /tmp/blob | cut -d' ' -f1)
head -c 1048576 /dev/urandom > /tmp/up
echo up-sum=\$(sha256sum /tmp/up | cut -d' ' -f1)
nc 192.168.77.1 $rport < /tmp/up
exit 0" --net tap,ifname=ntap0
st=$?
[ $st -eq 0 ] || fail "guest: $(status_text $st)"
out=$(tr -d '\r' <"$T/run.log")
grep -qx 'ping=ok' <<<"$out" || fail "no ping reply from 192.168.77.1"
grep -qx "sum=$blob_sum" <<<"$out" || fail "HTTP fetch: sha256 differs: $(grep -o '^sum=.*' <<<"$out")"
# Negotiated features, bit 0 first: CSUM 0, GUEST_CSUM 1, GUEST_TSO4 7,
# GUEST_TSO6 8, HOST_TSO4 11, HOST_TSO6 12, MRG_RXBUF 15.
f=$(grep -o '^features=[01]*' <<<"$out")
f=${f#features=}
for bit in 0 1 7 8 11 12 15; do
    [ "${f:$bit:1}" = 1 ] || fail "feature bit $bit not negotiated ($f)"
done
up=$(grep -o '^up-sum=.*' <<<"$out")
[ -s "$T/recv.sum" ] || fail "the receiver got nothing"
[ "$(cat "$T/recv.sum")" = "1048576 ${up#up-sum=}" ] ||
    fail "guest -> host: receiver has $(cat "$T/recv.sum"), guest sent ${up#up-sum=}"
pass
