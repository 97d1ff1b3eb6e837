#!/usr/bin/env bash
# UDP host forwards (--net user,hostfwd=udp::HOSTPORT-:9090): datagrams a
# host program sends to 127.0.0.1:HOSTPORT reach a UDP socket bound to port
# 9090 in the guest, and its replies come back to the sender's address.
# The Debian disk's python3 serves it (busybox nc has no UDP).
set -u
. "$(dirname "$0")/lib.sh"
guest_test net_hostfwd_udp
OV=$T/root.qcow2
debian_overlay "$OV"
uport=$(python3 -c 'import socket; s = socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token="nimbus-udp-$RANDOM$RANDOM"

# The guest: echo one datagram back reversed, print it, exit.
start_vm vm --disk "$OV" --mem 1G --net "user,hostfwd=udp::$uport-:9090" \
    --append "root=/dev/vda1 rw console=ttyS0 quiet -- $(guest_cmd_arg "python3 -c '
import socket
s = socket.socket(type=socket.SOCK_DGRAM)
s.bind((\"\", 9090))
print(\"READY\", flush=True)
data, peer = s.recvfrom(200)
s.sendto(data[::-1], peer)
print(\"udp=\" + data.decode().strip(), flush=True)
'")"
wait_for '^READY' 180
python3 - "$uport" "$token" >"$T/reply" <<'PY' || fail "no reply to the host's datagrams"
import socket, sys
s = socket.socket(type=socket.SOCK_DGRAM)
s.settimeout(1)
for _ in range(20):   # a datagram sent before the forward is up may be lost
    s.sendto(sys.argv[2].encode(), ("127.0.0.1", int(sys.argv[1])))
    try:
        print(s.recv(200).decode())
        break
    except socket.timeout:
        pass
else:
    sys.exit(1)
PY
[ "$(cat "$T/reply")" = "$(rev <<<"$token")" ] || fail "the reply was '$(cat "$T/reply")'"
wait_exit 60
[ "$VM_STATUS" -eq 0 ] || fail "guest: $(status_text "$VM_STATUS")"
grep -q "^udp=$token" <(tr -d '\r' <"$VM_LOG") || fail "the guest did not print the datagram"
pass
