#!/usr/bin/env bash
# Live migration beside QEMU's (run by `make bench`; issue 11's benchmark,
# the part built so far): prints figures, never pass/fail. Both VMMs boot the
# default guest (kernel and initramfs, 256 MiB, 1 hart, no disk; QEMU 7.2 TCG
# with its OpenSBI) and migrate it, pre-copy, over a unix socket on this
# host to a second process of the same VMM (`nimbus restore --incoming`,
# `qemu-system-riscv64 -incoming`), with a 30 ms downtime limit on both
# (QEMU's default is 300 ms: set with migrate-set-parameters) and no
# bandwidth limit (QEMU's default of 32 MiB/s raised to 10 GiB/s).
#
# Two guests: idle (a shell sleeping), and dirtying (a loop copying 8 MiB of
# random data over a tmpfs file, again and again, as fast as it can).
# Measured per VMM, guest and run: total time, downtime, bytes on the
# stream. Nimbus: `nimbus migrate --json`'s last event (total_ms,
# downtime_us: from the pause until the destination is told to run; bytes).
# QEMU: query-migrate once completed (total-time, downtime, ram.transferred
# + the device state it does not count is small). Medians of
# NIMBUS_BENCH_RUNS runs (default 3).
# Environment: NIMBUS (build/nimbus), QEMU (qemu-system-riscv64),
# NIMBUS_BENCH_RUNS (3).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
NIMBUS=${NIMBUS:-build/nimbus}
QEMU=${QEMU:-qemu-system-riscv64}
RUNS=${NIMBUS_BENCH_RUNS:-3}
KERNEL=build/guest/vmlinux
INITRD=build/guest/initramfs.cpio.gz
W=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-migrate.XXXXXX")
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$W"' EXIT

IDLE='echo up; while true; do sleep 1; done'
DIRTY='dd if=/dev/urandom of=/tmp/r bs=1M count=8 2>/dev/null; echo up; while true; do cp /tmp/r /tmp/d; done'

wait_up() { # LOG
    for _ in $(seq 1200); do
        grep -q '^up' "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

qmp() { # SOCK then commands as JSON lines on stdin; prints the last reply
    python3 - "$1" <<'EOF'
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
for _ in range(100):
    try:
        s.connect(sys.argv[1]); break
    except OSError:
        time.sleep(0.1)
f = s.makefile("rw")
def cmd(c, **a):
    f.write(json.dumps({"execute": c, "arguments": a} if a else {"execute": c}) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
f.readline()
cmd("qmp_capabilities")
cmd("migrate-set-parameters", **{"downtime-limit": 30, "max-bandwidth": 10 << 30})
cmd("migrate", uri="unix:" + sys.argv[1] + ".mig")
while True:
    r = cmd("query-migrate")["return"]
    if r.get("status") in ("completed", "failed", "cancelled"):
        break
    time.sleep(0.02)
print(r.get("status"), r.get("total-time", 0), r.get("downtime", 0),
      r.get("ram", {}).get("transferred", 0))
EOF
}

one_nimbus() { # WORKLOAD-CMD -> "total_ms downtime_ms bytes"
    rm -f "$W"/*.sock "$W"/*.log
    "$NIMBUS" run --kernel "$KERNEL" --initrd "$INITRD" --mem 256M --api "$W/src.sock" \
        --console "file:$W/src.log" --append "console=ttyS0 quiet -- $1" </dev/null >/dev/null 2>&1 &
    local src=$!
    "$NIMBUS" restore --incoming "unix:$W/mig.sock" --console "file:$W/dst.log" </dev/null \
        >/dev/null 2>&1 &
    local dst=$!
    PIDS+=("$src" "$dst")
    wait_up "$W/src.log" && sleep 2
    "$NIMBUS" migrate --api "$W/src.sock" --to "unix:$W/mig.sock" --json 2>/dev/null | tail -n 1 |
        python3 -c 'import json,sys; m=json.loads(sys.stdin.read())["migration"]
print(m["total_ms"], m["downtime_us"] / 1000, m["bytes"]) if m["phase"] == "completed" else print("- - -")'
    kill "$src" "$dst" 2>/dev/null
    wait "$src" "$dst" 2>/dev/null
}

one_qemu() {
    rm -f "$W"/*.qmp* "$W"/*.log
    local common=(-M virt -m 256M -smp 1 -bios default -nographic -kernel "$KERNEL" -initrd "$INITRD"
                  -append "console=ttyS0 quiet -- $1")
    "$QEMU" "${common[@]}" -qmp "unix:$W/src.qmp,server=on,wait=off" </dev/null >"$W/src.log" 2>&1 &
    local src=$!
    "$QEMU" "${common[@]}" -qmp "unix:$W/dst.qmp,server=on,wait=off" \
        -incoming "unix:$W/src.qmp.mig" </dev/null >"$W/dst.log" 2>&1 &
    local dst=$!
    PIDS+=("$src" "$dst")
    wait_up "$W/src.log" && sleep 2
    local r
    r=$(qmp "$W/src.qmp")
    set -- $r
    if [ "${1:-}" = completed ]; then echo "$2 $3 $4"; else echo "- - -"; fi
    kill "$src" "$dst" 2>/dev/null
    wait "$src" "$dst" 2>/dev/null
}

median() { sort -n | awk '{ a[NR] = $1 } END { print NR ? a[int((NR + 1) / 2)] : "-" }'; }

have_qemu=0
command -v "$QEMU" >/dev/null && have_qemu=1
echo "live migration, pre-copy over a unix socket, 256 MiB guest (medians of $RUNS):"
printf '  %-8s %-7s %12s %14s %12s\n' guest vmm "total ms" "downtime ms" "MiB sent"
for g in idle dirty; do
    cmd=$IDLE
    [ $g = dirty ] && cmd=$DIRTY
    for vmm in nimbus qemu; do
        [ $vmm = qemu ] && [ $have_qemu = 0 ] && continue
        : >"$W/res"
        for _ in $(seq "$RUNS"); do "one_$vmm" "$cmd" >>"$W/res"; done
        t=$(awk '{ print $1 }' "$W/res" | median)
        d=$(awk '{ print $2 }' "$W/res" | median)
        b=$(awk '{ print $3 }' "$W/res" | median)
        printf '  %-8s %-7s %12s %14s %12s\n' $g $vmm "$t" "$d" \
            "$(awk -v b="$b" 'BEGIN { if (b == "-") print "-"; else printf "%.1f", b / 1048576 }')"
    done
done
