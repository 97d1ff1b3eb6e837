#!/usr/bin/env bash
# Nimbus benchmarks (run by `make bench`): prints figures, never pass/fail.
#  (a) boot to userspace: wall time from start until the guest prints
#      "nimbus-guest: userspace up" (the guest then powers off), nimbus and
#      Debian's qemu-system-riscv64 on the same kernel, initramfs, 512M and
#      1 hart; median of 5 runs each, and the ratio nimbus/qemu;
#  (b) in-guest CPU work: busybox gzip and sha256sum over a 64 MiB file in
#      the guest, timed by the guest's clock, on both;
#  (c) peak RSS of both over the boot (VmHWM, sampled until exit);
#  (d) bare-metal guest MIPS, if build/bench/cpu.elf exists: nimbus runs it
#      as firmware (--bios) and its output is shown;
#  (e) virtio-blk reads: the guest reads a raw image (NIMBUS_BENCH_DISK_MIB,
#      default 256) with dd bs=1M, through its page cache and with O_DIRECT,
#      timed by the guest's clock; nimbus --disk against QEMU's
#      virtio-blk-device, the host's page cache warm for both.
#  (j) the binary translator: bench/jit.sh, run at the end (--jit on, --jit
#      off and QEMU at 1 and 4 harts, with 7z b and a multi-process job).
# nimbus boots with its built-in SBI, QEMU with its default OpenSBI
# (-bios default). A failing nimbus is reported and the rest goes on.
# (a)-(e) run nimbus with `--jit NIMBUS_BENCH_JIT` (on) unless NIMBUS_ARGS
# says --jit itself: explicit, so that the figures do not change meaning when
# the default does.
#
# Environment: NIMBUS (default build/nimbus), NIMBUS_ARGS (extra `nimbus run`
# options), NIMBUS_BENCH_JIT (on|off), QEMU (qemu-system-riscv64),
# NIMBUS_BENCH_RUNS (5), NIMBUS_BENCH_MIB (64), NIMBUS_BENCH_DISK_MIB (256), NIMBUS_BENCH_TIMEOUT
# (seconds per VM, 1800), NIMBUS_BENCH_CPU_TIMEOUT (seconds for cpu.elf, 600).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
NIMBUS=${NIMBUS:-build/nimbus}
QEMU=${QEMU:-qemu-system-riscv64}
case " ${NIMBUS_ARGS:-} " in
    *" --jit "* | *" --jit="*) ;;
    *) NIMBUS_ARGS="${NIMBUS_ARGS:-} --jit ${NIMBUS_BENCH_JIT:-on}" ;;
esac
RUNS=${NIMBUS_BENCH_RUNS:-5}
MIB=${NIMBUS_BENCH_MIB:-64}
[[ $MIB =~ ^[1-9][0-9]*$ ]] || { echo "bench: NIMBUS_BENCH_MIB must be a number of MiB"; exit 1; }
VM_TIMEOUT=${NIMBUS_BENCH_TIMEOUT:-1800}
KERNEL=build/guest/vmlinux
INITRD=build/guest/initramfs.cpio.gz
MEM=512M
UP_LINE="nimbus-guest: userspace up"
W=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench.XXXXXX")
VM_PID=""
trap '[ -n "$VM_PID" ] && kill -9 "$VM_PID" 2>/dev/null; rm -rf "$W"' EXIT

if [ ! -s "$KERNEL" ] || [ ! -s "$INITRD" ]; then
    scripts/guest.sh || { echo "bench: cannot build the guest"; exit 1; }
fi
have_nimbus=1
[ -x "$NIMBUS" ] || { have_nimbus=0; echo "bench: $NIMBUS not found: no nimbus figures"; }
have_qemu=1
command -v "$QEMU" >/dev/null || { have_qemu=0; echo "bench: $QEMU not found: no QEMU figures"; }

# vm_cmd KIND APPEND: the command line that boots the guest on KIND (with
# the raw image $DISK as a read-only virtio-blk disk when DISK is set).
DISK=""
vm_cmd() {
    case $1 in
        # shellcheck disable=SC2206
        nimbus) CMD=("$NIMBUS" run ${NIMBUS_ARGS:-} --kernel "$KERNEL" --initrd "$INITRD" --mem $MEM
            --smp 1 --console stdio --append "$2")
            [ -n "$DISK" ] && CMD+=(--disk "$DISK,format=raw,readonly") ;;
        qemu) CMD=("$QEMU" -M virt -m $MEM -smp 1 -bios default -nographic
            -kernel "$KERNEL" -initrd "$INITRD" -append "$2")
            [ -n "$DISK" ] && CMD+=(-drive "file=$DISK,format=raw,readonly=on,if=none,id=d0"
                -device virtio-blk-device,drive=d0) ;;
    esac
}

# now_us: microseconds since the epoch (a bash builtin: no process per call).
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "${t}"; }
secs() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1e6 }'; }

# run_vm KIND APPEND LOG: boots, with the console in LOG. Sets UP_S (seconds
# to the userspace line, "" if none), TOTAL_S (seconds to exit), RSS_KB (peak
# resident memory: VmHWM, sampled until the VM exits) and STATUS (124: stopped
# after the timeout). The sampling loop forks little, not to slow the VM.
run_vm() {
    local kind=$1 append=$2 log=$3 t0 now key val rest nap=0.01
    vm_cmd "$kind" "$append"
    UP_S="" RSS_KB=0 STATUS=0
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
        now=$(now_us)
        if [ -z "$UP_S" ] && grep -qF "$UP_LINE" "$log"; then
            UP_S=$(secs $((now - t0)))
            nap=0.1
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
    if [ -z "$UP_S" ] && grep -qF "$UP_LINE" "$log"; then UP_S=$TOTAL_S; fi
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
why() { # STATUS LOG [TIMEOUT]: why a run failed, one line
    local last
    last=$(tr -d '\r' <"$2" | grep . | tail -n 1 | cut -c1-160)
    if [ "$1" -eq 124 ]; then echo "timed out after ${3:-$VM_TIMEOUT}s; last output: $last"
    elif [ "$1" -eq 0 ]; then echo "exited 0 without the expected output; last output: $last"
    else echo "exit status $1; last output: $last"; fi
}

kver=$(tr -d '\0' <"$KERNEL" | grep -ao 'Linux version [^ ]*' | head -n 1 | cut -d' ' -f3)
echo "Nimbus benchmarks: guest kernel ${kver:-?}, $MEM, 1 hart; $(nproc) host cores, $(uname -m)"
echo "  nimbus: $NIMBUS (built-in SBI; options:$NIMBUS_ARGS)"
echo "  qemu:   $($QEMU --version 2>/dev/null | head -n 1) (-bios default: OpenSBI)"
echo

# --- (a) boot to userspace, (c) peak RSS -----------------------------------------
echo "== (a) boot to userspace: median of $RUNS runs (wall seconds to '$UP_LINE') =="
KINDS=()
[ $have_nimbus = 1 ] && KINDS+=(nimbus)
[ $have_qemu = 1 ] && KINDS+=(qemu)
declare -A BOOT=() RSS=() UPS=() TOTALS=() FAILED=()
# The two alternate, so that a change in the host's load hits both alike.
for ((i = 1; i <= RUNS; i++)); do
    for kind in "${KINDS[@]}"; do
        [ -n "${FAILED[$kind]:-}" ] && continue
        run_vm $kind "console=ttyS0 -- true" "$W/boot-$kind-$i.log"
        if [ -z "$UP_S" ] || [ "$STATUS" -ne 0 ]; then
            FAILED[$kind]="(run $i) $(why "$STATUS" "$W/boot-$kind-$i.log")"
            continue
        fi
        UPS[$kind]="${UPS[$kind]:-} $UP_S"
        TOTALS[$kind]="${TOTALS[$kind]:-} $TOTAL_S"
        [ "$RSS_KB" -gt "${RSS[$kind]:-0}" ] && RSS[$kind]=$RSS_KB
    done
done
for kind in "${KINDS[@]}"; do
    if [ -n "${FAILED[$kind]:-}" ]; then
        printf '  %-7s FAILED %s\n' $kind "${FAILED[$kind]}"
        unset "RSS[$kind]"
        continue
    fi
    BOOT[$kind]=$(echo "${UPS[$kind]}" | median)
    printf '  %-7s %8.3f s   runs:%s   to exit: %.3f s (median)\n' $kind "${BOOT[$kind]}" "${UPS[$kind]}" \
        "$(echo "${TOTALS[$kind]}" | median)"
done
echo "  ratio nimbus/qemu: $(ratio "${BOOT[nimbus]:-}" "${BOOT[qemu]:-}")"
echo

# --- (b) in-guest CPU work -------------------------------------------------------
# A deterministic 64 KiB text block (an LCG in awk; slow to make, so small),
# doubled up to $MIB MiB (a power of 2). Repeats lie farther apart than
# gzip's 32 KiB window, so gzip still does the full work. Only gzip and
# sha256sum are timed, by the guest's /proc/uptime.
guest_job() {
    cat <<EOF
cd /tmp
up() { cut -d' ' -f1 /proc/uptime; }
g0=\$(up)
awk 'BEGIN { x = 1; for (i = 0; i < 3700; i++) { x = (x * 1103515245 + 12345) % 2147483648; printf "%08d %08x\n", i, x } }' | head -c 65536 >data
i=64; while [ \$i -lt $((MIB * 1024)) ]; do cat data data >d2; mv d2 data; i=\$((i * 2)); done
t0=\$(up); gzip -c data >data.gz; t1=\$(up); sha256sum data >data.sum; t2=\$(up)
echo "BENCH gen=\$(awk "BEGIN { print \$t0 - \$g0 }") gzip=\$(awk "BEGIN { print \$t1 - \$t0 }") sha256=\$(awk "BEGIN { print \$t2 - \$t1 }") size=\$(wc -c <data) gz=\$(wc -c <data.gz) sum=\$(cut -d' ' -f1 data.sum)"
EOF
}
job_arg="echo $(guest_job | gzip -9n | base64 -w0) | base64 -d | gunzip | sh"
echo "== (b) in-guest CPU: busybox gzip and sha256sum over $MIB MiB (guest seconds) =="
declare -A GZ=() SHA=() SUM=()
for kind in "${KINDS[@]}"; do
    run_vm $kind "console=ttyS0 quiet -- $job_arg" "$W/job-$kind.log"
    line=$(tr -d '\r' <"$W/job-$kind.log" | grep -a '^BENCH ' | head -n 1)
    if [ -z "$line" ] || [ "$STATUS" -ne 0 ]; then
        printf '  %-7s FAILED: %s\n' $kind "$(why "$STATUS" "$W/job-$kind.log")"
        continue
    fi
    GZ[$kind]=$(sed 's/.* gzip=\([^ ]*\).*/\1/' <<<"$line")
    SHA[$kind]=$(sed 's/.* sha256=\([^ ]*\).*/\1/' <<<"$line")
    SUM[$kind]=$(sed 's/.* sum=\([^ ]*\).*/\1/' <<<"$line")
    size=$(sed 's/.* size=\([^ ]*\).*/\1/' <<<"$line")
    gz=$(sed 's/.* gz=\([^ ]*\).*/\1/' <<<"$line")
    gen=$(sed 's/.* gen=\([^ ]*\).*/\1/' <<<"$line")
    printf '  %-7s gzip %8.2f s   sha256sum %8.2f s   (%s bytes -> %s gzipped; making the data %s s, VM wall time %s s)\n' \
        $kind "${GZ[$kind]}" "${SHA[$kind]}" "$size" "$gz" "$gen" "$TOTAL_S"
done
echo "  ratio nimbus/qemu: gzip $(ratio "${GZ[nimbus]:-}" "${GZ[qemu]:-}"), sha256sum $(ratio "${SHA[nimbus]:-}" "${SHA[qemu]:-}")"
if [ -n "${SUM[nimbus]:-}" ] && [ -n "${SUM[qemu]:-}" ]; then
    if [ "${SUM[nimbus]}" = "${SUM[qemu]}" ]; then echo "  sha256 of the data: same on both"
    else echo "  sha256 of the data DIFFERS: nimbus ${SUM[nimbus]}, qemu ${SUM[qemu]}"; fi
fi
echo

# --- (c) peak RSS ------------------------------------------------------------------
echo "== (c) peak RSS over a boot (largest VmHWM of the $RUNS boots) =="
for kind in nimbus qemu; do
    [ -n "${RSS[$kind]:-}" ] && printf '  %-7s %s\n' $kind "$(mib "${RSS[$kind]}")"
done
echo "  ratio nimbus/qemu: $(ratio "${RSS[nimbus]:-}" "${RSS[qemu]:-}")"
echo

# --- (d) bare-metal MIPS -------------------------------------------------------------
echo "== (d) bare-metal guest MIPS (build/bench/cpu.elf) =="
if [ ! -e build/bench/cpu.elf ]; then
    echo "  build/bench/cpu.elf not built: skipped"
elif [ $have_nimbus = 0 ]; then
    echo "  no nimbus: skipped"
else
    cpu_timeout=${NIMBUS_BENCH_CPU_TIMEOUT:-600}
    # shellcheck disable=SC2086
    timeout -k 5 "$cpu_timeout" "$NIMBUS" run ${NIMBUS_ARGS:-} --bios build/bench/cpu.elf </dev/null >"$W/cpu.log" 2>&1
    st=$?
    tr -d '\r' <"$W/cpu.log" | sed 's/^/  /'
    [ $st -eq 0 ] || echo "  FAILED: $(why $st "$W/cpu.log" "$cpu_timeout")"
fi
echo

# --- (e) virtio-blk reads ------------------------------------------------------------
DISK_MIB=${NIMBUS_BENCH_DISK_MIB:-256}
[[ $DISK_MIB =~ ^[1-9][0-9]*$ ]] || { echo "bench: NIMBUS_BENCH_DISK_MIB must be a number of MiB"; exit 1; }
echo "== (e) virtio-blk: guest dd of a $DISK_MIB MiB raw image, bs=1M (guest seconds, MB/s) =="
head -c $((DISK_MIB * 1048576)) /dev/urandom >"$W/disk.img"
cat "$W/disk.img" >/dev/null   # warm the host's page cache for both
DISK=$W/disk.img
disk_job="up() { cut -d' ' -f1 /proc/uptime; }; t0=\$(up); dd if=/dev/vda of=/dev/null bs=1M 2>/dev/null; t1=\$(up); dd if=/dev/vda of=/dev/null bs=1M iflag=direct 2>/dev/null; t2=\$(up); echo BENCH cached=\$(awk \"BEGIN { print \$t1 - \$t0 }\") direct=\$(awk \"BEGIN { print \$t2 - \$t1 }\")"
disk_arg="echo $(printf '%s\n' "$disk_job" | gzip -9n | base64 -w0) | base64 -d | gunzip | sh"
for kind in "${KINDS[@]}"; do
    run_vm $kind "console=ttyS0 quiet -- $disk_arg" "$W/disk-$kind.log"
    line=$(tr -d '\r' <"$W/disk-$kind.log" | grep -a '^BENCH ' | head -n 1)
    if [ -z "$line" ] || [ "$STATUS" -ne 0 ]; then
        printf '  %-7s FAILED: %s\n' $kind "$(why "$STATUS" "$W/disk-$kind.log")"
        continue
    fi
    c=$(sed 's/.* cached=\([^ ]*\).*/\1/' <<<"$line")
    d=$(sed 's/.* direct=\([^ ]*\).*/\1/' <<<"$line")
    printf '  %-7s page cache %6.2f s (%s MB/s)   O_DIRECT %6.2f s (%s MB/s)\n' $kind "$c" \
        "$(awk -v m=$DISK_MIB -v t="$c" 'BEGIN { printf "%.0f", (t > 0 ? m * 1.048576 / t : 0) }')" "$d" \
        "$(awk -v m=$DISK_MIB -v t="$d" 'BEGIN { printf "%.0f", (t > 0 ? m * 1.048576 / t : 0) }')"
done
DISK=""
echo

# --- (j) the binary translator ------------------------------------------------------
"$ROOT/bench/jit.sh"
exit 0
