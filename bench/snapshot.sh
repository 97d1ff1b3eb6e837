#!/usr/bin/env bash
# Snapshots beside QEMU (run by `make bench`, issue 9's benchmark): prints
# figures, never pass/fail. Both VMMs boot the default guest (kernel and
# initramfs, 512 MiB, 1 hart, no disk); QEMU 7.2 TCG with its OpenSBI, its
# QMP on a unix socket, its snapshots as migration streams to a file.
#
# The guest's command reads words from its console (the host writes them
# into the VMM's stdin): `loop` starts a background loop printing a line as
# fast as it can, `quiet` stops it, `dirty` writes 400 MiB of non-zero data
# (a 1 MiB random block, copied) into a tmpfs file (a 450 MiB tmpfs; the
# guest prints how much it wrote and its MemAvailable before).
#
# Measured, per VMM and run, on the same guest:
#  pause      the reply time of PUT /vm/pause (Nimbus, over --api) and of
#             QMP `stop` (QEMU): from the request sent to the reply read, by
#             one client process; 5 times, each followed by resume/`cont`.
#  save       a full snapshot of the idle guest and one after `dirty`: the
#             time the guest stood still and the size on disk. Nimbus: PUT
#             /vm/snapshot's pause_us (pause, write memory and vm.state,
#             fsync, resume) and `du` of the directory (a sparse memory
#             file). QEMU: `stop`, `migrate "exec:cat > FILE"`, until
#             query-migrate says completed, `cont` (a non-live save: QEMU's
#             migration speed limit raised to 100 GiB/s first), and the
#             file's size. The same thing measured: the ratio is printed
#             (but Nimbus fsyncs the memory file, vm.state and the directory;
#             `cat > FILE` leaves QEMU's stream in the page cache).
#  diff       Nimbus only (QEMU has no diff snapshot of RAM): PUT
#             /vm/snapshot {"diff": true} of the idle guest 3 s after a full
#             one: pause_us and size.
#  compress   Nimbus only (QEMU 7.2 compresses only over multifd channels,
#             which an exec: target does not have): --compress, idle guest.
#  restore    restore-to-running: from the restoring process's start
#             (fork/exec of `nimbus restore DIR --memory eager|lazy`, or
#             `qemu-system-riscv64 ... -incoming "exec:cat FILE"`) until the
#             host has read 64 bytes of the restored guest's console output.
#             The snapshot was taken while the guest ran `loop`, so output
#             comes as soon as the guest runs; 64 bytes are more than the
#             16-byte UART FIFO a snapshot may hold, so guest code ran. Of a
#             snapshot of the idle guest and of one after `dirty`. QEMU reads
#             its whole stream before the guest runs: compared with Nimbus'
#             eager restore.
#  exec       `nimbus exec --from SNAPSHOT -- true`, start to exit, 20 times
#             per run, on a guest of its own that runs the agent; and the
#             restore operation (`nimbus restore --timings`, lazy: from the
#             command's start until the machine is loaded and resumed, the
#             measure Firecracker's snapshot-load figure is), 5 times.
# Medians of NIMBUS_BENCH_RUNS runs (default 3; each boots each VMM once),
# Nimbus and QEMU taking turns: about 7 minutes on the shared 2-core machine
# at load average 8-14, fewer when it is quiet. Ratios: qemu / nimbus (above 1.0: Nimbus is faster or smaller).
# Environment: NIMBUS (build/nimbus), QEMU (qemu-system-riscv64), NIMBUS_ARGS,
# NIMBUS_BENCH_RUNS (3), NIMBUS_BENCH_TIMEOUT (seconds per wait, 600).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
NIMBUS=${NIMBUS:-build/nimbus}
QEMU=${QEMU:-qemu-system-riscv64}
VM_TIMEOUT=${NIMBUS_BENCH_TIMEOUT:-600}
RUNS=${NIMBUS_BENCH_RUNS:-3}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench: NIMBUS_BENCH_RUNS must be a number"; exit 1; }
KERNEL=build/guest/vmlinux
INITRD=build/guest/initramfs.cpio.gz
W=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-snapshot.XXXXXX")
VM_PID=""
trap '[ -n "$VM_PID" ] && kill -9 "$VM_PID" 2>/dev/null; exec 3>&- 2>/dev/null; rm -rf "$W"' EXIT

echo "== snapshots: pause, save, diff, compress, restore of a 512 MiB guest (bench/snapshot.sh)"
for f in "$KERNEL" "$INITRD"; do
    [ -s "$f" ] || { echo "bench: $f missing (make guest)"; exit 1; }
done
[ -x "$NIMBUS" ] || { echo "bench: $NIMBUS missing (make)"; exit 1; }

# The guest's part (its $((1)) keeps READY out of the kernel's command-line
# echo). Its sh reads this script from a pipe: the words come from the console.
read -r -d '' GUEST_CMD <<'EOF'
mkdir -p /mnt/b && mount -t tmpfs -o size=450m tmpfs /mnt/b
lp=""
echo SNAP-$((1))READY
while read -r c; do
    case $c in
        loop) (i=0; while :; do i=$((i + 1)); echo "tick $i"; done) & lp=$! ;;
        quiet) [ -n "$lp" ] && kill "$lp"; lp=""; echo QUIET ;;
        dirty)
            avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
            head -c 1048576 /dev/urandom >/mnt/b/blk
            n=0
            while [ $n -lt 400 ]; do cat /mnt/b/blk; n=$((n + 1)); done >/mnt/b/x
            echo "DIRTIED $(($(stat -c %s /mnt/b/x) >> 20)) MiB (MemAvailable was $avail MiB)" ;;
    esac
done </dev/console
EOF
GUEST_ARG="echo $(printf '%s\n' "$GUEST_CMD" | gzip -9n | base64 -w0) | base64 -d | gunzip | sh"
APPEND="console=ttyS0 quiet -- $GUEST_ARG"

# The host's clients: one Python process per operation, the timing inside it.
#   api SOCK METHOD PATH [BODY]   Nimbus' API: prints "<us> <status> <body>"
#   qmp SOCK pause N              N × (stop, cont): the stop replies' times in us
#   qmp SOCK save FILE            stop, migrate to FILE, cont: "<us>"
#   restore OUT -- CMD...         start CMD, read its stdout until 64 bytes:
#                                 "<us>" (its output in OUT), then kill it
PY=$W/client.py
cat >"$PY" <<'PY'
import json, os, select, socket, subprocess, sys, time

def now_us():
    return time.monotonic_ns() // 1000

def api(path, method, route, body=""):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(600)
    s.connect(path)
    req = "%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (method, route, len(body), body)
    t0 = now_us()
    s.sendall(req.encode())
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            n = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    n = int(v)
            if len(rest) >= n:
                break
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    t1 = now_us()
    status = head.split(b" ")[1].decode() if head else "-"
    print(t1 - t0, status, rest.decode(errors="replace").replace("\n", " "))

class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(600)
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        json.loads(self.f.readline())            # the greeting
        self.call("qmp_capabilities")
    def call(self, cmd, **args):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = args
        self.s.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = json.loads(self.f.readline())
            if "event" not in r:
                if "error" in r:
                    raise SystemExit("qmp %s: %s" % (cmd, r["error"]))
                return r.get("return")

def qmp(path, what, arg):
    q = Qmp(path)
    if what == "pause":
        out = []
        for _ in range(int(arg)):
            t0 = now_us()
            q.call("stop")
            out.append(now_us() - t0)
            q.call("cont")
            time.sleep(0.2)
        print(" ".join(map(str, out)))
    elif what == "save":
        q.call("migrate-set-parameters", **{"max-bandwidth": 100 << 30})
        t0 = now_us()
        q.call("stop")
        q.call("migrate", uri="exec:cat > " + arg)
        while True:
            st = q.call("query-migrate").get("status")
            if st == "completed":
                break
            if st in ("failed", "cancelled"):
                raise SystemExit("qmp migrate: " + st)
            time.sleep(0.002)
        q.call("cont")
        print(now_us() - t0)

def restore(out, cmd):
    t0 = now_us()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    got = b""
    end = time.monotonic() + 120
    while len(got) < 64 and select.select([p.stdout], [], [], max(0, end - time.monotonic()))[0]:
        b = os.read(p.stdout.fileno(), 4096)
        if not b:
            break
        got += b
    t1 = now_us()
    p.kill()
    p.wait()
    with open(out, "wb") as f:
        f.write(got)
    print(t1 - t0 if len(got) >= 64 else "-")

if sys.argv[1] == "api":
    api(*sys.argv[2:])
elif sys.argv[1] == "qmp":
    qmp(*sys.argv[2:5])
elif sys.argv[1] == "restore":
    restore(sys.argv[2], sys.argv[4:])
PY

# wait_line LOG REGEX [FROM]: waits for REGEX in LOG (from byte FROM on)
# while the VM lives.
wait_line() {
    local end=$((SECONDS + VM_TIMEOUT))
    until tail -c +$((${3:-0} + 1)) "$1" | tr -d '\r' | grep -Eq -- "$2"; do
        kill -0 "$VM_PID" 2>/dev/null || return 1
        [ $SECONDS -lt $end ] || return 1
        sleep 0.2
    done
}
# send WORD: a line on the guest's console. (MARK: the log's size before.)
send() { MARK=$(stat -c %s "$LOG"); echo "$1" >&3; }
# jnum JSON KEY: a number from a JSON reply.
jnum() { python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2], "-"))' "$1" "$2" 2>/dev/null || echo -; }
TICKS=200   # loop lines the guest prints before a snapshot of it
kib() { du -sk "$1" 2>/dev/null | awk '{ print $1 }'; }
rec() { echo "$1 $2" >>"$RES"; }   # KEY VALUE into this run's results

vm_failed() { # WHAT LOG
    echo "  $1; end of its console:"
    tr -d '\r' <"$2" | grep -v '^\[' | tail -n 6 | sed 's/^/    | /'
}

vm_start() { # KIND LOG
    LOG=$2
    rm -f "$W/sock" "$W/in"
    mkfifo "$W/in"
    : >"$2"
    case $1 in
        # shellcheck disable=SC2086
        nimbus) "$NIMBUS" run ${NIMBUS_ARGS:-} --kernel "$KERNEL" --initrd "$INITRD" --mem 512M --smp 1 \
                    --api "$W/sock" --append "$APPEND" <"$W/in" >"$2" 2>&1 & ;;
        # (store-global-state=off: the stream does not say "stopped", so a
        # restore runs the guest at once, as Nimbus' does.)
        qemu) "$QEMU" -M virt -m 512M -smp 1 -bios default -nographic -kernel "$KERNEL" \
                  -initrd "$INITRD" -qmp "unix:$W/sock,server=on,wait=off" -append "$APPEND" \
                  -global migration.store-global-state=off <"$W/in" >"$2" 2>&1 & ;;
    esac
    VM_PID=$!
    exec 3>"$W/in"   # the console's input; held open so it never sees EOF
}

vm_stop() {
    exec 3>&-
    kill "$VM_PID" 2>/dev/null
    sleep 0.5
    kill -9 "$VM_PID" 2>/dev/null
    wait "$VM_PID" 2>/dev/null
    VM_PID=""
}

# ---- one VM: its snapshots and restores ----

# nimbus_snap NAME [BODY-FIELDS]: PUT /vm/snapshot into $W/NAME; records
# NAME-pause (ms), NAME-kib (du of the directory).
nimbus_snap() {
    local out body="{\"path\":\"$W/$1\"${2:+,$2}}"
    out=$(python3 "$PY" api "$W/sock" PUT /vm/snapshot "$body")
    if [ "$(awk '{ print $2 }' <<<"$out")" != 200 ]; then
        echo "  nimbus snapshot $1 failed: $out"
        return 1
    fi
    local json=${out#* * }
    rec "$1-pause" "$(awk -v u="$(jnum "$json" pause_us)" 'BEGIN { printf "%.1f", u / 1000 }')"
    rec "$1-kib" "$(kib "$W/$1")"
}

# restore_runs KIND NAME CMD...: restore-to-running, 2 times; records NAME.
restore_runs() {
    local kind=$1 name=$2 t i
    shift 2
    for i in 1 2; do
        t=$(python3 "$PY" restore "$W/restore.out" -- "$@")
        if [ "$t" = - ]; then
            echo "  $kind restore $name: no console output; it printed:"
            tr -d '\r' <"$W/restore.out" | tail -n 4 | sed 's/^/    | /'
            return
        fi
        rec "$name" "$(awk -v u="$t" 'BEGIN { printf "%.1f", u / 1000 }')"
    done
}

# measure_exec: `nimbus exec --from S -- true` (start to exit, 20 times) and
# the restore operation itself (`nimbus restore --timings`: from the
# command's start until the machine is rebuilt, loaded and resumed, 5 times
# lazily), on a guest of its own that runs the guest agent (exec needs it):
# booted once per run, saved with --stop. Records exec and restore-op.
measure_exec() {
    local d=$W/exec p i t0 t1 end
    rm -rf "$d"
    mkdir -p "$d"
    : >"$d/console"
    "$NIMBUS" run --kernel "$KERNEL" --initrd "$INITRD" --vsock "3,path=$d/v.sock" \
        --api "$d/sock" --console "file:$d/console" \
        --append "console=ttyS0 quiet nimbus.agent=1024" </dev/null >"$d/run.err" 2>&1 &
    p=$!
    end=$((SECONDS + VM_TIMEOUT))
    until grep -q 'userspace up' "$d/console"; do
        if ! kill -0 "$p" 2>/dev/null || [ $SECONDS -ge $end ]; then
            echo "  nimbus exec: its guest did not boot"
            kill "$p" 2>/dev/null
            return
        fi
        sleep 0.2
    done
    sleep 1   # the agent listening
    if ! "$NIMBUS" snapshot --api "$d/sock" --stop "$d/snap" >/dev/null 2>&1; then
        echo "  nimbus exec: cannot snapshot its guest"
        kill "$p" 2>/dev/null
        return
    fi
    wait "$p"
    for i in $(seq 20); do
        t0=$(date +%s%N)
        "$NIMBUS" exec --from "$d/snap" -- true </dev/null >/dev/null 2>&1 || { echo "  nimbus exec failed"; return; }
        t1=$(date +%s%N)
        rec exec "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')"
    done
    for i in $(seq 5); do
        : >"$d/timings"
        "$NIMBUS" restore "$d/snap" --timings --console "file:$d/restore.console" </dev/null \
            >/dev/null 2>"$d/timings" &
        p=$!
        end=$((SECONDS + 30))
        until grep -q resumed "$d/timings" || [ $SECONDS -ge $end ] || ! kill -0 "$p" 2>/dev/null; do
            sleep 0.05
        done
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
        t0=$(sed -n 's/.*resumed \([0-9.]*\).*/\1/p' "$d/timings")
        [ -n "$t0" ] && rec restore-op "$t0"
    done
}

qemu_save() { # NAME
    local t
    t=$(python3 "$PY" qmp "$W/sock" save "$W/$1") || { echo "  qemu save $1 failed"; return 1; }
    rec "$1-pause" "$(awk -v u="$t" 'BEGIN { printf "%.1f", u / 1000 }')"
    rec "$1-kib" "$(kib "$W/$1")"
}

# save KIND NAME: a snapshot into $W/NAME (QEMU: a migration stream file).
save() {
    if [ "$1" = nimbus ]; then nimbus_snap "$2"; else qemu_save "$2"; fi
}

# run_vm KIND: one boot of the guest, its snapshots, then the restores.
run_vm() {
    local kind=$1 log=$W/$1.log i t s
    vm_start "$kind" "$log"
    if ! wait_line "$log" '^SNAP-1READY'; then
        vm_failed "$kind: the guest did not get ready" "$log"; vm_stop; return
    fi
    sleep 2   # (the last of the boot settles)
    if [ "$kind" = nimbus ]; then
        for i in 1 2 3 4 5; do
            t=$(python3 "$PY" api "$W/sock" PUT /vm/pause | awk '$2 == 200 { print $1 }')
            rec pause "$(awk -v u="$t" 'BEGIN { if (u != "") printf "%.3f", u / 1000 }')"
            python3 "$PY" api "$W/sock" PUT /vm/resume >/dev/null
            sleep 0.2
        done
    else
        for t in $(python3 "$PY" qmp "$W/sock" pause 5); do
            rec pause "$(awk -v u="$t" 'BEGIN { printf "%.3f", u / 1000 }')"
        done
    fi
    save "$kind" idle
    if [ "$kind" = nimbus ]; then
        sleep 3
        nimbus_snap diff '"diff":true'
        nimbus_snap zst '"compress":true'
    fi
    send loop
    wait_line "$log" "^tick $TICKS\$" "$MARK"
    save "$kind" loop-idle
    send quiet
    wait_line "$log" '^QUIET'
    send dirty
    if ! wait_line "$log" '^DIRTIED'; then
        vm_failed "$kind: the guest did not write its 400 MiB" "$log"; vm_stop; return
    fi
    [ "$run" = 1 ] && printf '  %-7s guest: %s\n' "$kind" "$(tr -d '\r' <"$log" | grep '^DIRTIED' | tail -n 1)"
    send loop
    wait_line "$log" "^tick $TICKS\$" "$MARK"
    save "$kind" loop-dirty
    vm_stop
    for s in idle dirty; do
        if [ "$kind" = nimbus ]; then
            # shellcheck disable=SC2086
            restore_runs nimbus "restore-$s-lazy" "$NIMBUS" restore "$W/loop-$s" --memory lazy ${NIMBUS_ARGS:-}
            # shellcheck disable=SC2086
            restore_runs nimbus "restore-$s-eager" "$NIMBUS" restore "$W/loop-$s" --memory eager ${NIMBUS_ARGS:-}
        else
            restore_runs qemu "restore-$s-eager" "$QEMU" -M virt -m 512M -smp 1 -bios default -nographic \
                -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" -incoming "exec:cat $W/loop-$s"
        fi
    done
    [ "$kind" = nimbus ] && measure_exec
    rm -rf "${W:?}"/idle "$W"/diff "$W"/zst "$W"/loop-*
}

# get KIND KEY: the median over every sample of every run.
get() {
    cat "$W/$1"-*.res 2>/dev/null | awk -v k="$2" '$1 == k && $2 != "-" && $2 != "" { print $2 }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else if (NR) print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'; }
mib() { [ -n "$1" ] && awk -v k="$1" 'BEGIN { print k / 1024 }'; }

have_qemu=0
if command -v "$QEMU" >/dev/null; then have_qemu=1; else echo "bench: $QEMU not found: no QEMU figures"; fi
start=$SECONDS
for run in $(seq "$RUNS"); do
    RES=$W/nimbus-$run.res
    : >"$RES"
    run_vm nimbus
    if [ $have_qemu = 1 ]; then
        RES=$W/qemu-$run.res
        : >"$RES"
        run_vm qemu
    fi
done
echo "medians of $RUNS runs ($((SECONDS - start)) s); ratio: qemu / nimbus (above 1: Nimbus faster or smaller):"

# num V: V with 3 significant digits or more (none: "-").
num() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else if (v >= 100) printf "%.0f", v; else if (v >= 10) printf "%.1f", v; else printf "%.2f", v }'; }
row() { # LABEL UNIT NIMBUS QEMU
    local n q
    n=$(num "$3") q=$(num "$4")
    printf '  %-40s %9s %-4s %9s %-4s %6s\n' "$1" "$n" "$2" "$q" "$2" "$(ratio "$4" "$3")"
}
printf '  %-40s %14s %14s %6s\n' "" nimbus qemu ratio
row "pause latency (reply to pause / stop)" ms "$(get nimbus pause)" "$(get qemu pause)"
for s in idle loop-dirty; do
    label="save, idle guest: guest stopped"
    [ $s = loop-dirty ] && label="save, 400 MiB dirtied: guest stopped"
    row "$label" ms "$(get nimbus $s-pause)" "$(get qemu $s-pause)"
    n=$(get nimbus $s-kib) q=$(get qemu $s-kib)
    row "  snapshot size" MiB "$(mib "$n")" "$(mib "$q")"
done
row "diff snapshot, idle, 3 s after a full one" ms "$(get nimbus diff-pause)" ""
row "  size" MiB "$(mib "$(get nimbus diff-kib)")" ""
row "compressed snapshot (--compress), idle" ms "$(get nimbus zst-pause)" ""
row "  size" MiB "$(mib "$(get nimbus zst-kib)")" ""
for s in idle dirty; do
    q=$(get qemu restore-$s-eager)
    row "restore to running, $s: eager" ms "$(get nimbus restore-$s-eager)" "$q"
    row "restore to running, $s: lazy" ms "$(get nimbus restore-$s-lazy)" ""
done
[ -n "$(get nimbus restore-op)" ] && row "restore operation, lazy (restore --timings)" ms "$(get nimbus restore-op)" ""
[ -n "$(get nimbus exec)" ] && row "nimbus exec --from S -- true" ms "$(get nimbus exec)" ""
echo "  (diff, compressed and lazy restore: no QEMU counterpart measured; QEMU's restore reads its"
echo "  whole stream first. Nimbus' save fsyncs its files and directory; QEMU's cat > FILE does not.)"
