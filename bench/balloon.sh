#!/usr/bin/env bash
# Balloon benchmark (run by `make bench` after bench/run.sh): prints figures,
# never pass/fail. A 512 MiB guest fills a tmpfs with 300 MiB and removes the
# file (the memory stays backed on the host), then the host sets a balloon
# of 256 MiB; printed: the VMM's RSS before and after the inflation and the
# time the guest took to inflate, for nimbus (--balloon=reporting=off, through
# --api) and QEMU (-device virtio-balloon-device, through QMP `balloon`),
# both without free page reporting so only the balloon gives memory back.
#
# Environment: NIMBUS (default build/nimbus), QEMU (qemu-system-riscv64),
# NIMBUS_BENCH_TIMEOUT (seconds per VM, 1800).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
NIMBUS=${NIMBUS:-build/nimbus}
QEMU=${QEMU:-qemu-system-riscv64}
VM_TIMEOUT=${NIMBUS_BENCH_TIMEOUT:-1800}
KERNEL=build/guest/vmlinux
INITRD=build/guest/initramfs.cpio.gz
W=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-balloon.XXXXXX")
VM_PID=""
trap '[ -n "$VM_PID" ] && kill -9 "$VM_PID" 2>/dev/null; rm -rf "$W"' EXIT
READY=BALLOON-1READY   # what the guest prints: its $((1)) is expanded there
CMD="mount -t tmpfs -o size=400m tmpfs /mnt && dd if=/dev/zero of=/mnt/f bs=1M count=300 2>/dev/null && rm /mnt/f && echo BALLOON-\$((1))READY && sleep 100000"

rss_mib() { awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$1/status" 2>/dev/null; }

# wait_ready LOG: until the guest is ready (0) or the VM is gone / time is up (1).
wait_ready() {
    local end=$((SECONDS + VM_TIMEOUT))
    until tr -d '\r' <"$1" | grep -q "^$READY"; do
        kill -0 "$VM_PID" 2>/dev/null || return 1
        [ $SECONDS -lt $end ] || return 1
        sleep 0.5
    done
}

# ask KIND: the guest's balloon size in MiB, through the API (nimbus balloon) or QMP.
ask() {
    if [ "$1" = nimbus ]; then   # the per-VM API (docs/api.md)
        [ -n "${2:-}" ] && "$NIMBUS" balloon --api "$W/sock" "$2" >/dev/null
        "$NIMBUS" balloon --api "$W/sock" --json |
            python3 -c 'import json, sys; print(json.load(sys.stdin).get("actual_mib", -1))'
        return
    fi
    python3 - "$1" "$W/sock" "${2:-}" <<'PY'
import json, socket, sys
kind, path, target = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX); s.settimeout(30); s.connect(path); f = s.makefile("rb")
def call(obj):
    s.sendall(json.dumps(obj).encode() + b"\n")
    while True:
        r = json.loads(f.readline())
        if "event" not in r:
            return r
json.loads(f.readline())            # QMP's greeting
call({"execute": "qmp_capabilities"})
if target:                           # QEMU's value is the guest's memory, not the balloon
    call({"execute": "balloon", "arguments": {"value": (512 - int(target)) << 20}})
r = call({"execute": "query-balloon"})
print(512 - (r.get("return", {}).get("actual", 512 << 20) >> 20))
PY
}

run() { # KIND
    local kind=$1 log=$W/$1.log
    rm -f "$W/sock"
    : >"$log"
    case $kind in
        nimbus) "$NIMBUS" run --kernel "$KERNEL" --initrd "$INITRD" --mem 512M --balloon=reporting=off \
                    --api "$W/sock" --append "console=ttyS0 -- $CMD" </dev/null >"$log" 2>&1 & ;;
        qemu) "$QEMU" -M virt -m 512M -smp 1 -bios default -nographic -kernel "$KERNEL" -initrd "$INITRD" \
                  -device virtio-balloon-device -qmp "unix:$W/sock,server=on,wait=off" \
                  -append "console=ttyS0 -- $CMD" </dev/null >"$log" 2>&1 & ;;
    esac
    VM_PID=$!
    if ! wait_ready "$log"; then
        echo "  $kind: the guest did not get ready (see the end of its log)"
        tail -n 5 "$log" | sed 's/^/    | /'
        kill -9 "$VM_PID" 2>/dev/null; VM_PID=""
        return
    fi
    local before after t0 t1 actual=0 end=$((SECONDS + VM_TIMEOUT))
    before=$(rss_mib "$VM_PID")
    t0=$(date +%s.%N)
    ask "$kind" 256 >/dev/null
    while actual=$(ask "$kind") && [ "$actual" -lt 256 ] && [ $SECONDS -lt $end ]; do sleep 0.2; done
    t1=$(date +%s.%N)
    after=$(rss_mib "$VM_PID")
    printf '  %-7s RSS %4s MiB -> %4s MiB after a 256 MiB balloon (%s MiB inflated in %.1f s)\n' \
        "$kind:" "$before" "$after" "$actual" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
    kill "$VM_PID" 2>/dev/null; sleep 1; kill -9 "$VM_PID" 2>/dev/null; wait "$VM_PID" 2>/dev/null
    VM_PID=""
}

echo "== balloon: a 512 MiB guest that touched 300 MiB, then a 256 MiB balloon"
if [ -x "$NIMBUS" ]; then run nimbus; else echo "  nimbus: $NIMBUS not found"; fi
if command -v "$QEMU" >/dev/null; then run qemu; else echo "  qemu: $QEMU not found"; fi
