#!/usr/bin/env bash
# The binary translator beside QEMU (issue 8; run by bench/run.sh): prints
# figures as a Markdown table, never pass/fail. Three VMMs on the same
# kernel and initramfs (and Debian root disk for 7z): Nimbus `--jit on`,
# Nimbus `--jit off`, Debian's qemu-system-riscv64 (TCG, -bios default),
# each at 1 and 4 harts (NIMBUS_BENCH_HARTS):
#  boot      wall seconds until the guest prints "nimbus-guest: userspace
#            up" (`-- true`, 512M), median of NIMBUS_BENCH_RUNS;
#  gzip,     busybox gzip -c and sha256sum over a generated $MIB MiB file in
#  sha256sum the initramfs' tmpfs (the data as in bench/run.sh (b)), guest
#            seconds by /proc/uptime;
#  gzip x4   (4 harts only) a multi-process job: four busybox gzip processes
#            at once, each over a quarter of the same file, guest seconds
#            until all four are done;
#  7z b      `7z b 1 -mmt1 -md18` from the Debian root disk (1G, a qcow2
#            overlay each run): guest seconds and 7-Zip's own total rating
#            (MIPS; higher is faster);
#  RSS       peak VmHWM of the VMM process over the boots, and over the
#            gzip/sha256sum runs (which hold 64+ MiB in the guest's tmpfs);
#  user CPU  the VMM process's user CPU time (all its threads), steadier than
#            wall time on a loaded host: over a whole boot, and over each
#            guest job (sampled on the host when the guest prints its
#            "MARK" lines; +-0.1 s);
#  translating  Nimbus' --jit-stats "translating" time summed over the
#            harts, over the whole run (boot included).
# Figures are medians over the runs; the guest jobs are repeated
# NIMBUS_BENCH_JOB_RUNS times (default NIMBUS_BENCH_RUNS). The VMMs take
# turns in each run so that a change in the host's load hits all alike. The
# last column, on/QEMU, is a time ratio (for 7z's rating, QEMU's over
# Nimbus'), by wall time and by user CPU: below 1.0, the translator is
# faster. Five runs of everything take hours on a loaded 2-core machine.
# Environment: NIMBUS (build/nimbus), QEMU (qemu-system-riscv64),
# NIMBUS_BENCH_RUNS (5), NIMBUS_BENCH_JOB_RUNS, NIMBUS_BENCH_HARTS ("1 4"),
# NIMBUS_BENCH_MIB (64), NIMBUS_BENCH_TIMEOUT (seconds per VM, 1800),
# NIMBUS_BENCH_SKIP (words among boot compute 7z: parts not run; off: no
# `--jit off` runs).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
NIMBUS=${NIMBUS:-build/nimbus}
QEMU=${QEMU:-qemu-system-riscv64}
RUNS=${NIMBUS_BENCH_RUNS:-5}
JOB_RUNS=${NIMBUS_BENCH_JOB_RUNS:-$RUNS}
HARTS=${NIMBUS_BENCH_HARTS:-1 4}
MIB=${NIMBUS_BENCH_MIB:-64}
SKIP=" ${NIMBUS_BENCH_SKIP:-} "
VM_TIMEOUT=${NIMBUS_BENCH_TIMEOUT:-1800}
for v in "$RUNS" "$JOB_RUNS" "$MIB" "$VM_TIMEOUT"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "bench/jit.sh: a count, MiB or timeout is not a number: $v"; exit 1; }
done
[ $((MIB % 4)) -eq 0 ] || { echo "bench/jit.sh: NIMBUS_BENCH_MIB must be a multiple of 4"; exit 1; }
KERNEL=build/guest/vmlinux
INITRD=build/guest/initramfs.cpio.gz
DEBIAN=build/guest/debian.qcow2
UP_LINE="nimbus-guest: userspace up"
TICK=$(getconf CLK_TCK)
W=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-jit.XXXXXX")
VM_PID=""
trap '[ -n "$VM_PID" ] && kill -9 "$VM_PID" 2>/dev/null; rm -rf "$W"' EXIT

KINDS=()
if [ -x "$NIMBUS" ]; then
    KINDS+=(on)
    [[ $SKIP == *" off "* ]] || KINDS+=(off)
else
    echo "bench/jit.sh: $NIMBUS not found: no nimbus figures"
fi
if command -v "$QEMU" >/dev/null; then KINDS+=(qemu); else echo "bench/jit.sh: $QEMU not found: no QEMU figures"; fi
for f in "$KERNEL" "$INITRD"; do
    [ -s "$f" ] || { echo "bench/jit.sh: $f missing (make guest)"; exit 1; }
done
have_debian=1
if [ ! -s "$DEBIAN" ] || ! command -v qemu-img >/dev/null; then
    have_debian=0
    echo "bench/jit.sh: $DEBIAN or qemu-img missing: no 7z figures (scripts/debian-disk.sh builds the disk)"
fi

# vm_cmd KIND HARTS MEM APPEND [DISK]: the command line in CMD. KIND is on or
# off (Nimbus with the translator on or off) or qemu; DISK a qcow2 root disk.
vm_cmd() {
    local kind=$1 harts=$2 mem=$3 append=$4 disk=${5:-}
    case $kind in
        on | off) CMD=("$NIMBUS" run --jit "$kind" --jit-stats --kernel "$KERNEL" --initrd "$INITRD"
            --mem "$mem" --smp "$harts" --console stdio --append "$append")
            [ -n "$disk" ] && CMD+=(--disk "$disk,format=qcow2") ;;
        qemu) CMD=("$QEMU" -M virt -m "$mem" -smp "$harts" -bios default -nographic
            -kernel "$KERNEL" -initrd "$INITRD" -append "$append")
            [ -n "$disk" ] && CMD+=(-drive "file=$disk,format=qcow2,if=none,id=d0"
                -device virtio-blk-device,drive=d0) ;;
    esac
}

now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "${t}"; }
secs() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1e6 }'; }
# cpu_ticks PID: user CPU time of the process (all threads), in clock ticks;
# nothing once it is gone. Builtins only (stat's field 14).
cpu_ticks() {
    local f
    read -r -a f 2>/dev/null <"/proc/$1/stat" || return
    echo "${f[13]}"
}

# run_vm KIND HARTS MEM APPEND LOG [DISK]: runs a VM to its end. Sets UP_S
# (seconds to the userspace line, "" if none), TOTAL_S, RSS_KB (peak
# VmHWM), CPU_S (user CPU seconds of the whole run), XLATE_MS (--jit-stats'
# translating, summed over harts; "" without it), STATUS (124: killed after
# the timeout) and MARK_CPU[NAME]: user CPU seconds when the guest's line
# "MARK NAME" was seen. The sampling loop forks little, not to slow the VM.
declare -A MARK_CPU=()
run_vm() {
    local kind=$1 log=$5 t0 now key val rest nap=0.01 ticks=0 t marks=0 n name
    vm_cmd "$kind" "$2" "$3" "$4" "${6:-}"
    UP_S="" RSS_KB=0 STATUS=0 MARK_CPU=()
    : >"$log"
    t0=$(now_us)
    "${CMD[@]}" </dev/null >"$log" 2>&1 &
    VM_PID=$!
    while kill -0 "$VM_PID" 2>/dev/null; do
        while read -r key val rest; do
            if [ "$key" = VmHWM: ]; then
                [ "$val" -gt "$RSS_KB" ] && RSS_KB=$val
                break
            fi
        done <"/proc/$VM_PID/status" 2>/dev/null
        t=$(cpu_ticks "$VM_PID")
        [ -n "$t" ] && ticks=$t
        now=$(now_us)
        if [ -z "$UP_S" ]; then
            if grep -qF "$UP_LINE" "$log"; then UP_S=$(secs $((now - t0))); nap=0.1; fi
        else
            n=$(grep -ac '^MARK ' "$log")
            if [ "$n" -gt "$marks" ]; then
                for name in $(tr -d '\r' <"$log" | grep -a '^MARK ' | tail -n +$((marks + 1)) | cut -d' ' -f2); do
                    MARK_CPU[$name]=$(awk -v t="$ticks" -v hz="$TICK" 'BEGIN { printf "%.2f", t / hz }')
                done
                marks=$n
            fi
        fi
        if [ $(((now - t0) / 1000000)) -ge "$VM_TIMEOUT" ]; then
            kill -9 "$VM_PID" 2>/dev/null
            wait "$VM_PID" 2>/dev/null
            STATUS=124
            break
        fi
        sleep $nap
    done
    if [ $STATUS -ne 124 ]; then
        wait "$VM_PID"
        STATUS=$?
    fi
    VM_PID=""
    now=$(now_us)
    TOTAL_S=$(secs $((now - t0)))
    CPU_S=$(awk -v t="$ticks" -v hz="$TICK" 'BEGIN { printf "%.2f", t / hz }')
    if [ -z "$UP_S" ] && grep -qF "$UP_LINE" "$log"; then UP_S=$TOTAL_S; fi
    XLATE_MS=$(tr -d '\r' <"$log" | grep -ao 'translating [0-9.]* ms' |
        awk '{ s += $2; n++ } END { if (n) printf "%.0f", s }')
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { tr ' ' '\n' | grep . | sort -g | tail -n 1; }
why() { # STATUS LOG: why a run failed, one line
    local last
    last=$(tr -d '\r' <"$2" | grep . | tail -n 1 | cut -c1-160)
    if [ "$1" -eq 124 ]; then echo "timed out after ${VM_TIMEOUT}s; last output: $last"
    elif [ "$1" -eq 0 ]; then echo "exited 0 without the expected output; last output: $last"
    else echo "exit status $1; last output: $last"; fi
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; } # NAME LINE
cpu_between() { # MARK_A MARK_B: user CPU seconds between two marks of the last run
    awk -v a="${MARK_CPU[$1]:-}" -v b="${MARK_CPU[$2]:-}" 'BEGIN { if (a != "" && b != "") printf "%.2f", b - a }'
}
kib_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
guest_arg() { echo "echo $(gzip -9n | base64 -w0) | base64 -d | gunzip | sh"; } # stdin: a script

# R[KEY] holds the samples of one figure, space-separated; KEY is
# "FIGURE KIND HARTS". FAIL[KIND HARTS PART] says why a part failed.
declare -A R=() FAIL=()
add() { R[$1]="${R[$1]:-} $2"; } # KEY VALUE (an empty VALUE adds nothing)

# The compute job: the data as in bench/run.sh (b), then gzip and sha256sum
# each timed; at more than one hart, four gzip processes at once over the
# four quarters. MARK lines let the host read the VMM's CPU time.
compute_job() { # HARTS
    cat <<EOF
cd /tmp
up() { cut -d' ' -f1 /proc/uptime; }
awk 'BEGIN { x = 1; for (i = 0; i < 3700; i++) { x = (x * 1103515245 + 12345) % 2147483648; printf "%08d %08x\n", i, x } }' | head -c 65536 >data
i=64; while [ \$i -lt $((MIB * 1024)) ]; do cat data data >d2; mv d2 data; i=\$((i * 2)); done
q=$((MIB / 4)); for n in 0 1 2 3; do dd if=data of=q\$n bs=1M skip=\$((n * q)) count=\$q 2>/dev/null; done
sync; echo MARK gz0
t0=\$(up); gzip -c data >data.gz; t1=\$(up)
echo MARK gz1
sha256sum data >data.sum; t2=\$(up)
echo MARK sha1
par=
if [ $1 -gt 1 ]; then
    echo MARK par0
    t3=\$(up); for n in 0 1 2 3; do gzip -c q\$n >q\$n.gz & done; wait; t4=\$(up)
    echo MARK par1
    par=\$(awk "BEGIN { print \$t4 - \$t3 }")
fi
echo "BENCH gzip=\$(awk "BEGIN { print \$t1 - \$t0 }") sha256=\$(awk "BEGIN { print \$t2 - \$t1 }") par=\$par gz=\$(wc -c <data.gz) sum=\$(cut -d' ' -f1 data.sum)"
EOF
}

# The 7z job, on the Debian root disk: one pass of 7-Zip's benchmark, one
# thread, 256 KiB dictionary. 7-Zip calibrates the work by the guest's
# clock (rating x seconds came out the same in most runs, not in all), so
# its rating is the figure to compare.
read -r -d '' Z7_JOB <<'EOF'
up() { cut -d' ' -f1 /proc/uptime; }
echo MARK z0
t0=$(up); 7z b 1 -mmt1 -md18 >/tmp/7z.out 2>&1; st=$?; t1=$(up)
echo MARK z1
echo "BENCH st=$st z7=$(awk "BEGIN { print $t1 - $t0 }") rating=$(awk '/^Tot:/ { print $NF }' /tmp/7z.out) "
EOF

kver=$(tr -d '\0' <"$KERNEL" | grep -ao 'Linux version [^ ]*' | head -n 1 | cut -d' ' -f3)
echo "== the binary translator beside QEMU (bench/jit.sh): guest kernel ${kver:-?}; $(nproc) host cores, $(uname -m)"
echo "   qemu: $($QEMU --version 2>/dev/null | head -n 1); boots: $RUNS runs, guest jobs: $JOB_RUNS; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

for h in $HARTS; do
    if [[ $SKIP != *" boot "* ]]; then
        for ((i = 1; i <= RUNS; i++)); do
            for k in "${KINDS[@]}"; do
                [ -n "${FAIL[$k $h boot]:-}" ] && continue
                log=$W/boot-$k-$h-$i.log
                run_vm $k "$h" 512M "console=ttyS0 -- true" "$log"
                if [ -z "$UP_S" ] || [ "$STATUS" -ne 0 ]; then
                    FAIL[$k $h boot]="(run $i) $(why "$STATUS" "$log")"
                    continue
                fi
                add "boot $k $h" "$UP_S"
                add "bootcpu $k $h" "$CPU_S"
                add "bootrss $k $h" "$(kib_mib "$RSS_KB")"
                add "bootxlate $k $h" "$XLATE_MS"
            done
        done
    fi
    if [[ $SKIP != *" compute "* ]]; then
        arg=$(compute_job "$h" | guest_arg)
        for ((i = 1; i <= JOB_RUNS; i++)); do
            for k in "${KINDS[@]}"; do
                [ -n "${FAIL[$k $h compute]:-}" ] && continue
                log=$W/compute-$k-$h-$i.log
                run_vm $k "$h" 512M "console=ttyS0 quiet -- $arg" "$log"
                line=$(tr -d '\r' <"$log" | grep -a '^BENCH ' | head -n 1)
                if [ -z "$line" ] || [ "$STATUS" -ne 0 ]; then
                    FAIL[$k $h compute]="(run $i) $(why "$STATUS" "$log")"
                    continue
                fi
                add "gzip $k $h" "$(field gzip "$line")"
                add "gzipcpu $k $h" "$(cpu_between gz0 gz1)"
                add "sha $k $h" "$(field sha256 "$line")"
                add "shacpu $k $h" "$(cpu_between gz1 sha1)"
                add "par $k $h" "$(field par "$line")"
                add "parcpu $k $h" "$(cpu_between par0 par1)"
                add "jobrss $k $h" "$(kib_mib "$RSS_KB")"
                add "jobxlate $k $h" "$XLATE_MS"
                add "sum $k $h" "$(field sum "$line")"
            done
        done
    fi
    if [[ $SKIP != *" 7z "* ]] && [ $have_debian = 1 ]; then
        arg=$(printf '%s\n' "$Z7_JOB" | guest_arg)
        for ((i = 1; i <= JOB_RUNS; i++)); do
            for k in "${KINDS[@]}"; do
                [ -n "${FAIL[$k $h 7z]:-}" ] && continue
                log=$W/7z-$k-$h-$i.log
                qemu-img create -q -f qcow2 -b "$ROOT/$DEBIAN" -F qcow2 "$W/root.qcow2"
                run_vm $k "$h" 1G "root=/dev/vda1 rw console=ttyS0 quiet -- $arg" "$log" "$W/root.qcow2"
                rm -f "$W/root.qcow2"
                line=$(tr -d '\r' <"$log" | grep -a '^BENCH ' | head -n 1)
                if [ -z "$line" ] || [ "$STATUS" -ne 0 ] || [ "$(field st "$line")" != 0 ]; then
                    FAIL[$k $h 7z]="(run $i) $(why "$STATUS" "$log")"
                    continue
                fi
                add "z7 $k $h" "$(field z7 "$line")"
                add "z7cpu $k $h" "$(cpu_between z0 z1)"
                add "z7rating $k $h" "$(field rating "$line")"
                add "z7xlate $k $h" "$XLATE_MS"
            done
        done
    fi
done
echo "   load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
for key in "${!FAIL[@]}"; do echo "   FAILED: $key: ${FAIL[$key]}"; done
for h in $HARTS; do
    sums=$(for k in "${KINDS[@]}"; do echo "${R[sum $k $h]:-}"; done | tr ' ' '\n' | grep . | sort -u | wc -l)
    [ "$sums" -gt 1 ] && echo "   sha256 of the data DIFFERS between the VMMs at $h harts"
done
echo

# cell FIGURE KIND HARTS FORMAT [median|max]: one table cell, "" without samples.
cell() {
    local v
    v=$(echo "${R[$1 $2 $3]:-}" | "${5:-median}")
    [ -n "$v" ] && awk -v v="$v" -v f="$4" 'BEGIN { printf f, v }'
}
# row LABEL FIGURE HARTS FORMAT [CPU-FIGURE] [median|max] [inverse]: a table
# row; the ratio on/QEMU of the figure (of QEMU/on with "inverse"), the
# median user CPU seconds in brackets when CPU-FIGURE is given.
row() {
    local label=$1 fig=$2 h=$3 fmt=$4 cpufig=${5:-} agg=${6:-median} inv=${7:-} k c cpu line ratio
    line="| $label |"
    for k in on off qemu; do
        c=$(cell "$fig" $k "$h" "$fmt" "$agg")
        if [ -n "$c" ] && [ -n "$cpufig" ]; then
            cpu=$(cell "$cpufig" $k "$h" "%.1f")
            [ -n "$cpu" ] && c="$c (CPU $cpu s)"
        fi
        line="$line ${c:--} |"
    done
    ratio=$(ratio_of "$fig" "$h" "$agg" "$inv")
    if [ -n "$cpufig" ] && [ "$ratio" != - ]; then
        c=$(ratio_of "$cpufig" "$h" median "")
        [ "$c" != - ] && ratio="$ratio (CPU $c)"
    fi
    echo "$line $ratio |"
}
ratio_of() { # FIGURE HARTS AGGREGATE [inverse]: on/QEMU of a figure, "-" without both
    awk -v a="$(echo "${R[$1 on $2]:-}" | "$3")" -v b="$(echo "${R[$1 qemu $2]:-}" | "$3")" -v inv="$4" \
        'BEGIN { if (a == "" || b == "" || a + 0 == 0 || b + 0 == 0) print "-"; else printf "%.2f", (inv ? b / a : a / b) }'
}
echo "| | Nimbus --jit on | Nimbus --jit off | QEMU 7.2 (TCG) | on/QEMU |"
echo "|---|---|---|---|---|"
for h in $HARTS; do
    row "$h hart(s): boot to userspace, s" boot "$h" "%.2f" bootcpu
    row "$h: gzip $MIB MiB, s" gzip "$h" "%.2f" gzipcpu
    row "$h: sha256sum $MIB MiB, s" sha "$h" "%.2f" shacpu
    [ "$h" -gt 1 ] && row "$h: 4 gzip processes at once, $((MIB / 4)) MiB each, s" par "$h" "%.2f" parcpu
    row "$h: 7z b 1 -mmt1 -md18, s" z7 "$h" "%.1f" z7cpu
    row "$h: 7z b total rating, MIPS (ratio: QEMU/on)" z7rating "$h" "%d" "" median inverse
    row "$h: peak RSS over a boot, MiB" bootrss "$h" "%.1f" "" maxof
    row "$h: peak RSS with the $MIB MiB job, MiB" jobrss "$h" "%.1f" "" maxof
    row "$h: translating, ms (boot)" bootxlate "$h" "%.0f"
    row "$h: translating, ms (boot + gzip + sha256sum run)" jobxlate "$h" "%.0f"
    row "$h: translating, ms (Debian boot + 7z run)" z7xlate "$h" "%.0f"
done
exit 0
