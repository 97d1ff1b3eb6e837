#!/usr/bin/env bash
# hostfwd: a client on the host's 127.0.0.1:HOSTPORT reaches a server in the
# guest (busybox nc -l on port 8080, forwarded by --net
# user,hostfwd=tcp::HOSTPORT-:8080) and data goes both ways: 1 MiB from the
# host, whose sha256 the guest prints, and 1 MiB back from the guest, whose
# sha256 the host checks against the one the guest printed. A second rule
# with an explicit address (tcp:127.0.0.1:...) is accepted alongside.
set -u
. "$(dirname "$0")/lib.sh"
guest_test net_hostfwd
command -v python3 >/dev/null || fail "python3 not found (scripts/deps.sh installs it)"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
hport=$(free_port)
hport2=$(free_port)
head -c 1M /dev/urandom >"$T/up"
up_sum=$(sha256sum <"$T/up" | cut -d' ' -f1)

# The guest: a reply of its own, a one-shot server that stores what it gets
# and sends the reply, "READY" once port 8080 (0x1F90) listens (on IPv4 or IPv6).
start_vm vm --append "console=ttyS0 quiet -- $(guest_cmd_arg "
udhcpc -i eth0 -q -n -t 5 -T 2 >/dev/null 2>&1 || exit 3
head -c 1048576 /dev/urandom > /tmp/out
echo out-sum=\$(sha256sum /tmp/out | cut -d' ' -f1)
printf '#!/bin/sh\ncat > /tmp/in\ncat /tmp/out\n' > /tmp/srv.sh
chmod +x /tmp/srv.sh
nc -l -p 8080 -e /tmp/srv.sh &
until cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ':1F90 [0-9A-F]*:0000 0A'; do sleep 0.1; done
echo READY
wait
echo in-sum=\$(sha256sum /tmp/in | cut -d' ' -f1)
exit 0")" --net "user,hostfwd=tcp::$hport-:8080,hostfwd=tcp:127.0.0.1:$hport2-10.0.2.15:22"
wait_for '^READY' 180

# The client: send everything, half-close, read the reply to its end.
python3 - "$hport" "$T/up" "$T/down" <<'PY' || fail "host client failed"
import socket, sys
port, up, down = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=120)
s.sendall(open(up, "rb").read())
s.shutdown(socket.SHUT_WR)
with open(down, "wb") as f:
    while True:
        b = s.recv(65536)
        if not b:
            break
        f.write(b)
PY
wait_exit 120
[ "$VM_STATUS" -eq 0 ] || fail "guest: $(status_text "$VM_STATUS")"
out=$(tr -d '\r' <"$VM_LOG")
grep -qx "in-sum=$up_sum" <<<"$out" || fail "the guest got other bytes: $(grep -o '^in-sum=.*' <<<"$out")"
down_sum=$(sha256sum <"$T/down" | cut -d' ' -f1)
grep -qx "out-sum=$down_sum" <<<"$out" ||
    fail "the host got other bytes ($(stat -c %s "$T/down") bytes, sha256 $down_sum)"
[ "$(stat -c %s "$T/down")" -eq 1048576 ] || fail "the host got $(stat -c %s "$T/down") bytes"
pass
