#!/usr/bin/env bash
# Network throughput through user-mode networking (slirp), nimbus and
# Debian's qemu-system-riscv64 on the same kernel and initramfs (512M, 1
# hart, virtio-net over virtio-mmio on both). Prints figures, never
# pass/fail; only host loopback is used.
#   host -> guest: a host client sends N MiB to `nc -l` in the guest through
#                  hostfwd; timed on the host from connect until the guest,
#                  having read everything, closes;
#   guest -> host: the guest pipes N MiB of zeros (dd | nc) to a receiver on
#                  the host's 127.0.0.1 (10.0.2.2 in the guest); timed by the
#                  receiver from the first byte to the last.
# Median of NIMBUS_BENCH_RUNS runs (default 3) each. The host is shared:
# figures vary from run to run.
# Environment: NIMBUS (build/nimbus), QEMU (qemu-system-riscv64),
# NIMBUS_BENCH_RUNS (3), NIMBUS_BENCH_NET_MIB (32).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
NIMBUS=${NIMBUS:-build/nimbus}
QEMU=${QEMU:-qemu-system-riscv64}
RUNS=${NIMBUS_BENCH_RUNS:-3}
MIB=${NIMBUS_BENCH_NET_MIB:-32}
KERNEL=build/guest/vmlinux
INITRD=build/guest/initramfs.cpio.gz
W=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-net.XXXXXX")
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$W"' EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# one KIND: one boot, both directions; prints "H2G G2H" in MB/s (or "- -").
one() {
    local kind=$1 fport rport log=$W/$1.log
    fport=$(free_port)
    # The receiver: N MiB, timed from the first byte; prints MB/s.
    python3 -u - "$MIB" >"$W/recv.out" 2>&1 <<'PY' &
import socket, sys, time
n = int(sys.argv[1]) << 20
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print("port", s.getsockname()[1], flush=True)
c, _ = s.accept()
got, t0 = 0, None
while got < n:
    b = c.recv(1 << 20)
    if not b:
        break
    if t0 is None:
        t0 = time.monotonic()
    got += len(b)
t = time.monotonic() - t0
print("rate %.2f" % (got / t / 1e6) if got == n else "short %d" % got, flush=True)
c.close()
PY
    PIDS+=($!)
    for _ in $(seq 100); do rport=$(sed -n 's/^port //p' "$W/recv.out"); [ -n "$rport" ] && break; sleep 0.1; done
    local cmd="udhcpc -i eth0 -q -n -t 5 -T 2 >/dev/null 2>&1
nc -l -p 5001 >/dev/null &
until cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ':1389 [0-9A-F]*:0000 0A'; do sleep 0.1; done
echo READY
wait
dd if=/dev/zero bs=65536 count=$((MIB * 16)) 2>/dev/null | nc 10.0.2.2 $rport
echo DONE"
    local arg
    arg="echo $(printf '%s\n' "$cmd" | gzip -9n | base64 -w0) | base64 -d | gunzip | sh"
    case $kind in
        nimbus) "$NIMBUS" run --kernel "$KERNEL" --initrd "$INITRD" --mem 512M --smp 1 \
                    --append "console=ttyS0 quiet -- $arg" --net "user,hostfwd=tcp::$fport-:5001" \
                    </dev/null >"$log" 2>&1 & ;;
        qemu) "$QEMU" -M virt -m 512M -smp 1 -bios default -nographic -kernel "$KERNEL" \
                  -initrd "$INITRD" -append "console=ttyS0 quiet -- $arg" \
                  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$fport-:5001" \
                  -device virtio-net-device,netdev=n0 </dev/null >"$log" 2>&1 & ;;
    esac
    local vm=$!
    PIDS+=($vm)
    local end=$((SECONDS + 600))
    until grep -q '^READY' "$log" 2>/dev/null; do
        if ! kill -0 $vm 2>/dev/null || [ $SECONDS -ge $end ]; then echo "- -"; kill -9 $vm 2>/dev/null; return; fi
        sleep 0.2
    done
    local h2g
    h2g=$(python3 - "$fport" "$MIB" <<'PY'
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2]) << 20
s = socket.create_connection(("127.0.0.1", port))
buf = b"\0" * (1 << 20)
t0 = time.monotonic()
for _ in range(n >> 20):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print("%.2f" % (n / (time.monotonic() - t0) / 1e6))
PY
)
    while kill -0 $vm 2>/dev/null && ! grep -q '^DONE' "$log"; do
        [ $SECONDS -ge $end ] && break
        sleep 0.2
    done
    kill $vm 2>/dev/null
    wait $vm 2>/dev/null
    local g2h
    g2h=$(sed -n 's/^rate //p' "$W/recv.out")
    if [ -z "$g2h" ] || [ -z "$h2g" ]; then   # say why, on stderr
        { echo "$kind: a transfer failed; receiver: $(tr '\n' ' ' <"$W/recv.out")"
          tr -d '\r' <"$log" | grep -v '^\[' | tail -n 5; } >&2
    fi
    echo "${h2g:--} ${g2h:--}"
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'; }

for kind in nimbus qemu; do
    if [ $kind = qemu ] && ! command -v "$QEMU" >/dev/null; then continue; fi
    : >"$W/$kind.res"
    for r in $(seq "$RUNS"); do
        res=$(one $kind)
        echo "$kind run $r: host->guest ${res% *} MB/s, guest->host ${res#* } MB/s"
        echo "$res" >>"$W/$kind.res"
    done
    echo "$kind median: host->guest $(awk '{print $1}' "$W/$kind.res" | grep -v - | median) MB/s," \
         "guest->host $(awk '{print $2}' "$W/$kind.res" | grep -v - | median) MB/s ($MIB MiB, $RUNS runs)"
done
