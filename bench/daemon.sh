#!/usr/bin/env bash
# nimbusd, the host daemon (run by `make bench`, issue 10's benchmark):
# prints figures, never pass/fail. One nimbusd of its own (--run-dir and
# --data-dir under a private temporary directory, NIMBUS_CONNECT naming its
# socket), sandboxed VMs as it starts them (as root: each its own user).
#
#  1. start to guest userspace: from the command until the guest's
#     "nimbus-guest: userspace up" reaches the host. Through the daemon:
#     `nimbus start VM`, then the VM's console socket (connected as soon as
#     the command returns; it replays what came before); `nimbus run`
#     directly, and QEMU 7.2 (TCG, -M virt, OpenSBI) for reference, the line
#     on their stdout. Same kernel, initramfs, 512 MiB, 1 hart, command line
#     "console=ttyS0 -- true" (bench/run.sh's: the guest powers off after the
#     line); median of NIMBUS_BENCH_RUNS runs each, taking turns. Also the
#     time `nimbus start` takes to return (the VM serves its API).
#  2. the daemon at rest: NIMBUS_BENCH_DEFINED small VMs defined, the first
#     NIMBUS_BENCH_RUNNING started one after another, each with
#     NIMBUS_BENCH_SMALL_MIB of RAM (96: the smallest with which the default
#     guest boots cleanly - 64 panics in sparse_init, the Debian kernel
#     wants 32 MiB of memblocks; 84 runs out of memory unpacking the
#     initramfs; 88 and 92 reach userspace with modules lost to it) and the
#     default guest's interactive shell on the console. Once every guest is
#     in userspace (and 5 s more): nimbusd's CPU time (utime + stime of
#     /proc/PID/stat) over NIMBUS_BENCH_IDLE seconds, its RSS, threads and
#     open files; the VM processes' total RSS and CPU over the same time,
#     their shims' total RSS and PSS (the shim is nimbusd's binary: its RSS
#     counts the shared libraries' pages each time).
#  3. listing: VMs defined through the API (POST /vms, one connection each)
#     up to NIMBUS_BENCH_LISTED in all; then the time of `nimbus list --all`
#     and of `curl --unix-socket SOCK http://localhost/vms` (the commands,
#     and the request alone: curl's time_total), median of NIMBUS_BENCH_RUNS
#     each, while the started VMs still run and again after they are
#     destroyed; nimbusd's RSS with them all defined.
# Everything the script starts is destroyed or killed on exit, failure too.
# Environment: NIMBUS (build/nimbus), NIMBUSD (beside NIMBUS), QEMU
# (qemu-system-riscv64), NIMBUS_BENCH_RUNS (5), NIMBUS_BENCH_DEFINED (50),
# NIMBUS_BENCH_RUNNING (20), NIMBUS_BENCH_LISTED (1000), NIMBUS_BENCH_IDLE
# (seconds, 60), NIMBUS_BENCH_SMALL_MIB (96), NIMBUS_BENCH_TIMEOUT (seconds
# per wait, 900). About 8 minutes on the shared 2-core machine (load 4-9).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
NIMBUS=${NIMBUS:-build/nimbus}
NIMBUSD=${NIMBUSD:-$(dirname "$NIMBUS")/nimbusd}
QEMU=${QEMU:-qemu-system-riscv64}
RUNS=${NIMBUS_BENCH_RUNS:-5}
DEFINED=${NIMBUS_BENCH_DEFINED:-50}
RUNNING=${NIMBUS_BENCH_RUNNING:-20}
LISTED=${NIMBUS_BENCH_LISTED:-1000}
IDLE_S=${NIMBUS_BENCH_IDLE:-60}
SMALL_MIB=${NIMBUS_BENCH_SMALL_MIB:-96}
VM_TIMEOUT=${NIMBUS_BENCH_TIMEOUT:-900}
for v in RUNS DEFINED RUNNING LISTED IDLE_S SMALL_MIB VM_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $v must be a positive number"; exit 1; }
done
[ "$RUNNING" -le "$DEFINED" ] || { echo "bench: NIMBUS_BENCH_RUNNING > NIMBUS_BENCH_DEFINED"; exit 1; }
[ "$DEFINED" -lt "$LISTED" ] || { echo "bench: NIMBUS_BENCH_DEFINED >= NIMBUS_BENCH_LISTED"; exit 1; }
KERNEL=$ROOT/build/guest/vmlinux
INITRD=$ROOT/build/guest/initramfs.cpio.gz
NIMBUS=$(realpath "$NIMBUS")
APPEND="console=ttyS0 -- true"

echo "== nimbusd: start latency, the daemon at rest with $RUNNING of $DEFINED VMs running, list of $LISTED (bench/daemon.sh)"
for f in "$KERNEL" "$INITRD"; do
    [ -s "$f" ] || { echo "bench: $f missing (make guest)"; exit 1; }
done
{ [ -x "$NIMBUS" ] && [ -x "$NIMBUSD" ]; } || { echo "bench: $NIMBUS or $NIMBUSD missing (make)"; exit 1; }

# D: the daemon's directories. As root nimbusd runs each VM as a user of
# its own, which crosses D on the way to its run directory.
D=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-daemon.XXXXXX")
chmod 0711 "$D"
export NIMBUS_CONNECT=$D/run/nimbusd.sock
SOCK=$NIMBUS_CONNECT
DPID="" RUN_PID=""

# cleanup: every VM the daemon runs destroyed (then killed by pid, should
# that fail), the daemon stopped, the directory removed.
cleanup() {
    [ -n "$RUN_PID" ] && kill -9 "$RUN_PID" 2>/dev/null
    if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
        local name pids
        for name in $("$NIMBUS" list --name 2>/dev/null); do
            timeout 30 "$NIMBUS" destroy "$name" >/dev/null 2>&1
        done
        pids=$("$NIMBUS" list --json 2>/dev/null | jq -r '.vms[] | select(.pid != null) | .pid' 2>/dev/null)
        for p in $pids; do kill -9 "$p" 2>/dev/null; done
        kill -TERM "$DPID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$DPID" 2>/dev/null
    fi
    # VM processes recorded along the way (a daemon that died early).
    [ -s "$D/pids" ] && while read -r p; do kill -9 "$p" 2>/dev/null; done <"$D/pids"
    rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

PY=$D/client.py
cat >"$PY" <<'PY'
import http.client, json, os, socket, subprocess, sys, time

UP = b"nimbus-guest: userspace up"

class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=600)
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(600)
        self.sock.connect(self.path)

def read_until_up(sock_path, deadline):
    """Connects to a console socket (retrying while it is not there yet) and
    reads until the userspace line; True if seen before the deadline."""
    while True:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock_path)
            break
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
    data = b""
    while UP not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            s.close()
            return False
        s.settimeout(left)
        try:
            k = s.recv(65536)
        except socket.timeout:
            continue
        if not k:
            break
        data = data[-len(UP):] + k
    s.close()
    return UP in data

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "start":       # NIMBUS NAME CONSOLE_SOCK TIMEOUT: "<start s> <up s>" or "-"
    nimbus, name, con, timeout = args[0], args[1], args[2], float(args[3])
    t0 = time.monotonic()
    r = subprocess.run([nimbus, "start", name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t1 = time.monotonic()
    if r.returncode:
        sys.stderr.write(r.stderr.decode(errors="replace"))
        print("-"); sys.exit(0)
    ok = read_until_up(con, t0 + timeout)
    t2 = time.monotonic()
    print("%.3f %.3f" % (t1 - t0, t2 - t0) if ok else "-")
elif cmd == "run":       # TIMEOUT CMD...: "<up s>" or "-" (the process is killed after)
    timeout, argv = float(args[0]), args[1:]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    os.set_blocking(p.stdout.fileno(), True)
    data, ok = b"", False
    import select
    while time.monotonic() - t0 < timeout:
        rl, _, _ = select.select([p.stdout], [], [], 1)
        if not rl:
            continue
        k = os.read(p.stdout.fileno(), 65536)
        if not k:
            break
        data = data[-len(UP):] + k
        if UP in data:
            ok = True
            break
    t1 = time.monotonic()
    p.kill(); p.wait()
    print("%.3f" % (t1 - t0) if ok else "-")
elif cmd == "wait-up":   # TIMEOUT SOCK...: how many reached userspace
    deadline = time.monotonic() + float(args[0])
    print(sum(read_until_up(s, deadline) for s in args[1:]))
elif cmd == "define":    # SOCK FIRST LAST TEMPLATE-FILE: defines NAME=bench-N; "<s> <errors>"
    sock, first, last = args[0], int(args[1]), int(args[2])
    tmpl = open(args[3]).read()
    errors, t0 = 0, time.monotonic()
    for i in range(first, last + 1):
        c = UnixHTTP(sock)
        c.request("POST", "/vms", tmpl.replace("@NAME@", "bench-%04d" % i),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        body = r.read()
        if r.status != 201:
            errors += 1
            if errors == 1:
                sys.stderr.write("define bench-%04d: %d %s\n" % (i, r.status, body[:200]))
        c.close()
    print("%.3f %d" % (time.monotonic() - t0, errors))
PY

# proc_cpu PID: utime + stime in clock ticks (fields 14, 15, counted after
# the command name's closing parenthesis); proc_kib PID FIELD: a
# /proc/PID/status line's value in kB.
proc_cpu() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
proc_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null; }
# proc_pss PID: its proportional share of the memory it maps (shared pages
# divided among the processes that map them), kB.
proc_pss() { awk '$1 == "Pss:" { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null; }
HZ=$(getconf CLK_TCK)
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now_s() { echo "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
dlog_tail() { tail -n 5 "$D/nimbusd.log" | sed 's/^/    | /'; }
vm_pids() { "$NIMBUS" list --json | jq -r '.vms[] | select(.pid != null) | .pid'; }

echo "  load average at the start: $(load); $(nproc) host cores"
"$NIMBUSD" --run-dir "$D/run" --data-dir "$D/data" --nimbus "$NIMBUS" >"$D/nimbusd.log" 2>&1 &
DPID=$!
end=$((SECONDS + 30))
until "$NIMBUS" list >/dev/null 2>&1; do
    if ! kill -0 "$DPID" 2>/dev/null || [ $SECONDS -ge $end ]; then
        echo "bench: nimbusd did not serve:"; dlog_tail; exit 1
    fi
    sleep 0.1
done
RSS0=$(proc_kib "$DPID" VmRSS)

# def NAME MIB CMDLINE: a definition's JSON (the name left as @NAME@ for
# the define loop when NAME is empty).
def() {
    jq -nc --arg name "${1:-@NAME@}" --argjson mib "$2" --arg k "$KERNEL" --arg i "$INITRD" \
        --arg c "$3" '{name: $name, memory_mib: $mib, kernel: $k, initrd: $i, cmdline: $c}'
}
define_one() { # NAME MIB CMDLINE
    def "$1" "$2" "$3" >"$D/$1.json"
    "$NIMBUS" define "$D/$1.json" >/dev/null || { echo "bench: cannot define $1"; dlog_tail; exit 1; }
}

# --- 1. start to guest userspace ---------------------------------------------------
define_one lat 512 "$APPEND"
have_qemu=1
command -v "$QEMU" >/dev/null || { have_qemu=0; echo "  $QEMU not found: no QEMU figures"; }
for f in lat-daemon lat-start lat-run lat-qemu; do : >"$D/$f"; done
for ((i = 1; i <= RUNS; i++)); do
    r=$(python3 "$PY" start "$NIMBUS" lat "$D/run/lat/console.sock" "$VM_TIMEOUT")
    if [ "$r" = - ]; then
        echo "  nimbus start lat: no userspace line (run $i); its log:"
        "$NIMBUS" logs lat -n 5 2>&1 | sed 's/^/    | /'
    else
        echo "${r% *}" >>"$D/lat-start"
        echo "${r#* }" >>"$D/lat-daemon"
    fi
    # The guest powers off after the line: wait for the daemon to see it.
    end=$((SECONDS + 120))
    while [ "$("$NIMBUS" info lat --json | jq -r .state)" = running ] && [ $SECONDS -lt $end ]; do
        sleep 0.2
    done
    [ "$("$NIMBUS" info lat --json | jq -r .state)" = running ] && "$NIMBUS" destroy lat >/dev/null
    r=$(python3 "$PY" run "$VM_TIMEOUT" "$NIMBUS" run --kernel "$KERNEL" --initrd "$INITRD" \
        --mem 512M --smp 1 --append "$APPEND")
    [ "$r" = - ] && echo "  nimbus run: no userspace line (run $i)" || echo "$r" >>"$D/lat-run"
    if [ $have_qemu = 1 ]; then
        r=$(python3 "$PY" run "$VM_TIMEOUT" "$QEMU" -M virt -m 512M -smp 1 -bios default \
            -nographic -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND")
        [ "$r" = - ] && echo "  qemu: no userspace line (run $i)" || echo "$r" >>"$D/lat-qemu"
    fi
done
LAT_LOAD=$(load)

# --- 2. the daemon at rest ---------------------------------------------------------
for ((i = 1; i <= DEFINED; i++)); do
    define_one "$(printf 'small-%02d' $i)" "$SMALL_MIB" "console=ttyS0"
done
c0=$(proc_cpu "$DPID")
t0=$(now_s)
: >"$D/start-times"
socks=()
for ((i = 1; i <= RUNNING; i++)); do
    n=$(printf 'small-%02d' $i)
    s=$(now_s)
    "$NIMBUS" start "$n" >/dev/null 2>"$D/start.err" || { echo "bench: start $n: $(cat "$D/start.err")"; exit 1; }
    elapsed "$s" "$(now_s)" >>"$D/start-times"
    "$NIMBUS" info "$n" --json | jq -r .pid >>"$D/pids"
    socks+=("$D/run/$n/console.sock")
done
up=$(python3 "$PY" wait-up "$VM_TIMEOUT" "${socks[@]}")
UP_ALL_S=$(elapsed "$t0" "$(now_s)")
START_CPU=$(awk -v a="$c0" -v b="$(proc_cpu "$DPID")" -v hz="$HZ" 'BEGIN { printf "%.2f", (b - a) / hz }')
[ "$up" = "$RUNNING" ] || echo "  only $up of $RUNNING guests reached userspace in $VM_TIMEOUT s"
sleep 5
mapfile -t pids < <(vm_pids)
vm_cpu() { local t=0 p; for p in "${pids[@]}"; do t=$((t + $(proc_cpu "$p"))); done; echo $t; }
c0=$(proc_cpu "$DPID") v0=$(vm_cpu)
IDLE_LOAD0=$(load)
sleep "$IDLE_S"
IDLE_LOAD1=$(load)
c1=$(proc_cpu "$DPID") v1=$(vm_cpu)
IDLE_CPU_MS=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" 'BEGIN { printf "%.0f", (b - a) * 1000 / hz }')
VMS_CPU=$(awk -v a="$v0" -v b="$v1" -v hz="$HZ" -v s="$IDLE_S" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }')
RSS_IDLE=$(proc_kib "$DPID" VmRSS)
HWM_IDLE=$(proc_kib "$DPID" VmHWM)
PSS_IDLE=$(proc_pss "$DPID")
THREADS=$(proc_kib "$DPID" Threads)
FDS=$(find "/proc/$DPID/fd" -mindepth 1 | wc -l)
VM_RSS=0 SHIM_RSS=0 SHIM_PSS=0
for p in "${pids[@]}"; do
    VM_RSS=$((VM_RSS + $(proc_kib "$p" VmRSS)))
    pp=$(proc_kib "$p" PPid)
    SHIM_RSS=$((SHIM_RSS + $(proc_kib "$pp" VmRSS)))
    SHIM_PSS=$((SHIM_PSS + $(proc_pss "$pp")))
done
NPIDS=${#pids[@]}

# --- 3. list ---------------------------------------------------------------------
def "" "$SMALL_MIB" "console=ttyS0" >"$D/template.json"
read -r DEF_S DEF_ERR < <(python3 "$PY" define "$SOCK" 1 $((LISTED - DEFINED - 1)) "$D/template.json")
[ "$DEF_ERR" = 0 ] || echo "  $DEF_ERR of the defines failed"
n=$("$NIMBUS" list --all --name | wc -l)
[ "$n" = "$LISTED" ] || echo "  $n VMs defined, not $LISTED"
time_cmd() { # FILE CMD...: appends the seconds CMD took (its output checked by count)
    local s
    s=$(now_s)
    "${@:2}" >"$D/out" 2>&1 || { echo "  $2 failed: $(head -c 200 "$D/out")"; return; }
    elapsed "$s" "$(now_s)" >>"$1"
}
list_runs() { # SUFFIX
    local i
    for ((i = 1; i <= RUNS; i++)); do
        time_cmd "$D/list-$1" "$NIMBUS" list --all
        time_cmd "$D/curl-$1" curl -sf --unix-socket "$SOCK" http://localhost/vms
        curl -sf -o /dev/null -w '%{time_total}\n' --unix-socket "$SOCK" http://localhost/vms >>"$D/req-$1"
    done
    [ "$(jq '.vms | length' "$D/out")" = "$LISTED" ] || echo "  GET /vms: $(head -c 200 "$D/out")"
}
list_runs running
for ((i = 1; i <= RUNNING; i++)); do
    "$NIMBUS" destroy "$(printf 'small-%02d' $i)" >/dev/null || echo "  cannot destroy small-$i"
done
list_runs stopped
RSS_LISTED=$(proc_kib "$DPID" VmRSS)
FDS_END=$(find "/proc/$DPID/fd" -mindepth 1 | wc -l)

# --- the table ---------------------------------------------------------------------
get() { median <"$D/$1"; }
ms() { [ -n "$1" ] && awk -v s="$1" 'BEGIN { printf "%.1f ms", s * 1000 }' || echo -; }
sec() { [ -n "$1" ] && awk -v s="$1" 'BEGIN { printf "%.2f s", s }' || echo -; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'; }
echo
echo "  1. start to guest userspace (512 MiB, 1 hart), median of $RUNS; load average after: $LAT_LOAD"
printf '  %-44s %10s %8s\n' "" time "/ nimbus run"
printf '  %-44s %10s %8s\n' "nimbus start VM (nimbusd), to the line" "$(sec "$(get lat-daemon)")" \
    "$(ratio "$(get lat-daemon)" "$(get lat-run)")"
printf '  %-44s %10s\n' "  of which nimbus start's reply (API up)" "$(ms "$(get lat-start)")"
printf '  %-44s %10s %8s\n' "nimbus run, to the line" "$(sec "$(get lat-run)")" 1.00
[ $have_qemu = 1 ] && printf '  %-44s %10s %8s\n' "qemu-system-riscv64 -M virt, to the line" \
    "$(sec "$(get lat-qemu)")" "$(ratio "$(get lat-qemu)" "$(get lat-run)")"
runs() { tr '\n' ' ' <"$D/$1" | sed 's/ $//'; }
echo "  runs (s), in order: nimbusd $(runs lat-daemon); nimbus run $(runs lat-run); qemu $(runs lat-qemu)"
echo
echo "  2. $DEFINED VMs defined, $NPIDS running ($SMALL_MIB MiB each, the guest's shell idle)"
printf '  %-58s %s\n' "nimbus start, each (median; the VM serves its API)" "$(ms "$(get start-times)")"
printf '  %-58s %s\n' "from the first start until all $up guests in userspace" "$(sec "$UP_ALL_S")"
printf '  %-58s %s\n' "  nimbusd's CPU time meanwhile" "$(sec "$START_CPU")"
printf '  %-58s %s\n' "nimbusd's CPU time over $IDLE_S idle s" "$IDLE_CPU_MS ms"
printf '  %-58s %s\n' "nimbusd's RSS: at start / idle (peak so far); PSS idle" \
    "$(mib "$RSS0") / $(mib "$RSS_IDLE") ($(mib "$HWM_IDLE")); $(mib "$PSS_IDLE")"
printf '  %-58s %s\n' "nimbusd's threads, open files" "$THREADS, $FDS"
printf '  %-58s %s\n' "the $NPIDS VM processes' RSS, total (per VM)" "$(mib "$VM_RSS") ($(mib $((VM_RSS / (NPIDS ? NPIDS : 1)))))"
printf '  %-58s %s\n' "their shims' (nimbusd --shim) RSS, total; PSS, total" "$(mib "$SHIM_RSS"); $(mib "$SHIM_PSS")"
printf '  %-58s %s\n' "the VM processes' CPU over the idle time" "$VMS_CPU% of one core"
printf '  %-58s %s\n' "load average before / after the idle time" "$IDLE_LOAD0 / $IDLE_LOAD1"
echo
echo "  3. $LISTED VMs defined, median of $RUNS"
printf '  %-58s %s\n' "defining $((LISTED - DEFINED - 1)) through POST /vms, each (mean)" \
    "$(ms "$(awk -v s="$DEF_S" -v n=$((LISTED - DEFINED - 1)) 'BEGIN { print s / n }')")"
printf '  %-58s %s\n' "nimbus list --all, $RUNNING running" "$(ms "$(get list-running)")"
printf '  %-58s %s\n' "GET /vms (curl --unix-socket), $RUNNING running" "$(ms "$(get curl-running)")"
printf '  %-58s %s\n' "  the request alone (curl's time_total)" "$(ms "$(get req-running)")"
printf '  %-58s %s\n' "nimbus list --all, none running" "$(ms "$(get list-stopped)")"
printf '  %-58s %s\n' "GET /vms (curl --unix-socket), none running" "$(ms "$(get curl-stopped)")"
printf '  %-58s %s\n' "  the request alone (curl's time_total)" "$(ms "$(get req-stopped)")"
printf '  %-58s %s\n' "nimbusd's RSS with $LISTED defined; open files" "$(mib "$RSS_LISTED"); $FDS_END"
echo "  load average at the end: $(load)"
