#!/usr/bin/env bash
# Guest I/O beside QEMU (run by `make bench`): prints figures, never pass/fail.
# Both VMMs boot the same kernel, initramfs and Debian root disk (a qcow2
# overlay on build/guest/debian.qcow2 each), 1 GiB, 1 hart, virtio-blk and
# virtio-net over virtio-mmio; QEMU with its default OpenSBI, Nimbus with its
# built-in SBI (NIMBUS_ARGS adds options, e.g. "--jit off").
#  fio     in the guest on a second disk, /dev/vdb, with O_DIRECT and libaio,
#          once on a raw image and once on a qcow2 image (both new and empty
#          for each VMM; host page cache on both, the defaults): sequential write then read of 256 MiB in 1 MiB
#          blocks (iodepth 4), then 4 KiB random write and read over it
#          (iodepth 32, 10 s each); MB/s and IOPS;
#  iperf3  through user-mode networking (hostfwd to the guest's iperf3
#          server): host -> guest and guest -> host (-R), 10 s each, Gbit/s;
#          and through a tap interface when run as root: in a network
#          namespace of its own (192.168.78.1 the host side, .2 the guest),
#          both VMMs with vnet headers.
# Medians of NIMBUS_BENCH_RUNS runs (default 3), Nimbus and QEMU taking turns
# so that both see the same load on a shared machine. Ratio: nimbus / qemu
# (above 1.0: Nimbus is faster). For one run of each VMM it also prints each
# thread's share of a core over the fio jobs: a hart (vCPU) thread near 100%
# means the guest's CPU is the bottleneck, not the device.
# Environment: NIMBUS (build/nimbus), QEMU (qemu-system-riscv64), NIMBUS_ARGS,
# NIMBUS_BENCH_RUNS (3), NIMBUS_BENCH_TIMEOUT (seconds per VM, 1800).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
NIMBUS=${NIMBUS:-build/nimbus}
QEMU=${QEMU:-qemu-system-riscv64}
VM_TIMEOUT=${NIMBUS_BENCH_TIMEOUT:-1800}
RUNS=${NIMBUS_BENCH_RUNS:-3}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench: NIMBUS_BENCH_RUNS must be a number"; exit 1; }
KERNEL=build/guest/vmlinux
INITRD=build/guest/initramfs.cpio.gz
DISK=build/guest/debian.qcow2
W=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-io.XXXXXX")
VM_PID=""
trap '[ -n "$VM_PID" ] && kill -9 "$VM_PID" 2>/dev/null; rm -rf "$W"' EXIT

echo "== guest I/O: fio on a second disk, iperf3 through user networking (bench/io.sh)"
for f in "$KERNEL" "$INITRD" "$DISK"; do
    [ -s "$f" ] || { echo "bench: $f missing (make guest)"; exit 1; }
done
command -v iperf3 >/dev/null || { echo "bench: iperf3 missing on the host (scripts/deps.sh)"; exit 1; }

# The guest's part: fio jobs on /dev/vdb, then two one-shot iperf3 servers.
# Lines for the host: "FIO_BEGIN", "FIO NAME KB/s IOPS", "IPERF_READY N",
# "IO_DONE".
read -r -d '' GUEST_CMD <<'EOF'
fio_job() { # NAME RW BS IODEPTH [fio options...]
    name=$1 rw=$2 bs=$3 depth=$4
    shift 4
    fio --name="$name" --filename=/dev/vdb --rw="$rw" --bs="$bs" --iodepth="$depth" \
        --ioengine=libaio --direct=1 --size=256M --output-format=terse --terse-version=3 "$@" |
        awk -F';' -v n="$name" '/^3;/ { if ($7 + 0 > 0) print "FIO", n, $7, $8; else print "FIO", n, $48, $49 }'
}
case " $(cat /proc/cmdline) " in
    *" bench.tap "*) # the network only, on a tap: a static address
        ip -4 addr flush dev eth0
        ip addr add 192.168.78.2/24 dev eth0
        ip link set eth0 up ;;
    *)
        echo FIO_BEGIN
        fio_job seq-write write 1M 4
        fio_job seq-read read 1M 4
        fio_job rand-write randwrite 4k 32 --time_based --runtime=10 --randrepeat=0
        fio_job rand-read randread 4k 32 --time_based --runtime=10 --randrepeat=0 ;;
esac
serve() {
    iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
    until grep -q ':1451 [0-9A-F]*:0000 0A' /proc/net/tcp /proc/net/tcp6 2>/dev/null; do sleep 0.1; done
    echo "IPERF_READY $1"
    wait
}
serve 1
serve 2
sleep 2 # (the host samples the VMM's threads before it powers off)
echo IO_DONE
EOF
GUEST_ARG="echo $(printf '%s\n' "$GUEST_CMD" | gzip -9n | base64 -w0) | base64 -d | gunzip | sh"
APPEND="root=/dev/vda1 rw console=ttyS0 quiet -- $GUEST_ARG"
TAP_APPEND="root=/dev/vda1 rw console=ttyS0 quiet bench.tap -- $GUEST_ARG"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_line LOG REGEX: waits for REGEX in LOG while the VM lives.
wait_line() {
    local end=$((SECONDS + VM_TIMEOUT))
    until tr -d '\r' <"$1" | grep -Eq -- "$2"; do
        kill -0 "$VM_PID" 2>/dev/null || return 1
        [ $SECONDS -lt $end ] || return 1
        sleep 0.5
    done
}

# iperf_gbps HOST PORT [-R]: one 10 s iperf3 run, in Gbit/s. (IPERF_NS: in
# that network namespace.)
iperf_gbps() {
    local out pre=()
    [ -n "${IPERF_NS:-}" ] && pre=(ip netns exec "$IPERF_NS")
    out=$("${pre[@]}" iperf3 -c "$1" -p "$2" -t 10 -J ${3:-} 2>/dev/null) || { echo -; return; }
    python3 -c 'import json, sys
d = json.load(sys.stdin)
print("%.3f" % (d["end"]["sum_received"]["bits_per_second"] / 1e9))' <<<"$out" 2>/dev/null || echo -
}

# thread_ticks PID: "NAME TICKS" for each of its threads (user + system CPU
# time in clock ticks; names without digits, so hart0 and hart1 add up).
thread_ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        # The name may hold spaces ("CPU 0/TCG"): the fields follow its ')'.
        # (A thread may end meanwhile: its files are gone.)
        printf '%s %s\n' "$(tr -d ' 0-9' 2>/dev/null <"$t/comm")" \
            "$(sed 's/.*) //' 2>/dev/null <"$t/stat" | awk '{ print $12 + $13 }')"
    done | awk 'NF == 2 { s[$1] += $2 } END { for (k in s) print k, s[k] }'
}

# cpu_profile BEFORE AFTER SECONDS: each thread group's share of one core
# between the two samples, busiest first.
cpu_profile() {
    local hz
    hz=$(getconf CLK_TCK)
    join -a 2 -e 0 -o 0,1.2,2.2 <(sort "$1") <(sort "$2") |
        awk -v hz="$hz" -v s="$3" '{ p = ($3 - $2) / hz / s * 100; if (p >= 1) printf "%s %.0f%%\n", $1, p }' |
        sort -k2 -nr | tr '\n' ' '
}

# vm_failed WHAT LOG: says so, with the end of the VM's console.
vm_failed() {
    echo "$1; end of its console:"
    tr -d '\r' <"$2" | grep -v '^\[' | tail -n 8 | sed 's/^/    /'
}

# vm_stop: ends the VM and removes its root overlay.
vm_stop() {
    kill "$VM_PID" 2>/dev/null
    wait "$VM_PID" 2>/dev/null
    VM_PID=""
    rm -f "$W/root.qcow2"
}

# one KIND FORMAT RUN: one boot; writes "KEY VALUE" lines to $W/KIND-FORMAT-RUN.res.
one() {
    local kind=$1 fmt=$2 run=$3 log=$W/$1-$2.log res=$W/$1-$2-$3.res port
    port=$(free_port)
    qemu-img create -q -f qcow2 -b "$ROOT/$DISK" -F qcow2 "$W/root.qcow2"
    rm -f "$W/data.img"
    qemu-img create -q -f "$fmt" "$W/data.img" 1G
    : >"$log" # (before the VM starts: its redirection happens in the background)
    case $kind in
        # shellcheck disable=SC2086
        nimbus) "$NIMBUS" run ${NIMBUS_ARGS:-} --kernel "$KERNEL" --initrd "$INITRD" --mem 1G --smp 1 \
                    --disk "$W/root.qcow2" --disk "$W/data.img,format=$fmt" \
                    --net "user,hostfwd=tcp::$port-:5201" --append "$APPEND" </dev/null >"$log" 2>&1 & ;;
        qemu) "$QEMU" -M virt -m 1G -smp 1 -bios default -nographic -name bench,debug-threads=on \
                  -kernel "$KERNEL" -initrd "$INITRD" \
                  -append "$APPEND" \
                  -drive "file=$W/root.qcow2,format=qcow2,if=none,id=d0" -device virtio-blk-device,drive=d0 \
                  -drive "file=$W/data.img,format=$fmt,if=none,id=d1" \
                  -device virtio-blk-device,drive=d1 \
                  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:5201" -device virtio-net-device,netdev=n0 \
                  </dev/null >"$log" 2>&1 & ;;
    esac
    VM_PID=$!
    : >"$res"
    local t0=0 t1
    if wait_line "$log" '^FIO_BEGIN'; then
        thread_ticks "$VM_PID" >"$W/ticks0"
        t0=$SECONDS
    fi
    if wait_line "$log" '^IPERF_READY 1'; then
        thread_ticks "$VM_PID" >"$W/ticks1"
        t1=$SECONDS
        [ "$t1" -gt "$t0" ] && [ "$run" = 1 ] &&
            echo "$kind $fmt: CPU per thread over the fio jobs ($((t1 - t0)) s): $(cpu_profile "$W/ticks0" "$W/ticks1" $((t1 - t0)))"
        tr -d '\r' <"$log" | awk '$1 == "FIO" { print $2 "-kbs", $3; print $2 "-iops", $4 }' >>"$res"
        if [ "$fmt" = raw ]; then # the network once per VMM
            thread_ticks "$VM_PID" >"$W/ticks0"
            t0=$SECONDS
            echo "h2g $(iperf_gbps 127.0.0.1 "$port")" >>"$res"
            wait_line "$log" '^IPERF_READY 2' && echo "g2h $(iperf_gbps 127.0.0.1 "$port" -R)" >>"$res"
            thread_ticks "$VM_PID" >"$W/ticks1"
            t1=$SECONDS
            [ "$t1" -gt "$t0" ] && [ "$run" = 1 ] &&
                echo "$kind user net: CPU per thread over iperf3 ($((t1 - t0)) s): $(cpu_profile "$W/ticks0" "$W/ticks1" $((t1 - t0)))"
        else
            iperf3 -c 127.0.0.1 -p "$port" -t 1 >/dev/null 2>&1
            wait_line "$log" '^IPERF_READY 2' && iperf3 -c 127.0.0.1 -p "$port" -t 1 >/dev/null 2>&1
        fi
        wait_line "$log" '^IO_DONE'
    else
        vm_failed "$kind ($fmt): the guest did not get through its fio jobs" "$log"
    fi
    vm_stop
    rm -f "$W/data.img"
}

# The tap: a namespace with a persistent tap device both VMMs open.
TAP_NS=""
tap_setup() {
    [ "$(id -u)" = 0 ] && command -v ip >/dev/null || return 1
    TAP_NS=nimbus-bench-$$
    ip netns add "$TAP_NS" 2>/dev/null || { TAP_NS=""; return 1; }
    trap '[ -n "$VM_PID" ] && kill -9 "$VM_PID" 2>/dev/null; ip netns del "$TAP_NS" 2>/dev/null; rm -rf "$W"' EXIT
    ip -n "$TAP_NS" link set lo up &&
        ip -n "$TAP_NS" tuntap add dev btap0 mode tap &&
        ip -n "$TAP_NS" addr add 192.168.78.1/24 dev btap0 &&
        ip -n "$TAP_NS" link set btap0 up
}

# one_tap KIND RUN: one boot on the tap, iperf3 both ways.
one_tap() {
    local kind=$1 run=$2 log=$W/$1-tap.log res=$W/$1-tap-$2.res
    qemu-img create -q -f qcow2 -b "$ROOT/$DISK" -F qcow2 "$W/root.qcow2"
    : >"$log"
    case $kind in
        # shellcheck disable=SC2086
        nimbus) ip netns exec "$TAP_NS" "$NIMBUS" run ${NIMBUS_ARGS:-} --kernel "$KERNEL" --initrd "$INITRD" \
                    --mem 1G --smp 1 --disk "$W/root.qcow2" --net tap,ifname=btap0 --append "$TAP_APPEND" \
                    </dev/null >"$log" 2>&1 & ;;
        qemu) ip netns exec "$TAP_NS" "$QEMU" -M virt -m 1G -smp 1 -bios default -nographic \
                  -kernel "$KERNEL" -initrd "$INITRD" -append "$TAP_APPEND" \
                  -drive "file=$W/root.qcow2,format=qcow2,if=none,id=d0" -device virtio-blk-device,drive=d0 \
                  -netdev tap,id=n0,ifname=btap0,script=no,downscript=no -device virtio-net-device,netdev=n0 \
                  </dev/null >"$log" 2>&1 & ;;
    esac
    VM_PID=$!
    : >"$res"
    if wait_line "$log" '^IPERF_READY 1'; then
        echo "tap-h2g $(IPERF_NS=$TAP_NS iperf_gbps 192.168.78.2 5201)" >>"$res"
        wait_line "$log" '^IPERF_READY 2' && echo "tap-g2h $(IPERF_NS=$TAP_NS iperf_gbps 192.168.78.2 5201 -R)" >>"$res"
        wait_line "$log" '^IO_DONE'
    else
        vm_failed "$kind (tap): the guest's iperf3 server did not come up" "$log"
    fi
    vm_stop
}

# get KIND-FORMAT KEY: the median over the runs.
get() {
    cat "$W/$1"-*.res 2>/dev/null | awk -v k="$2" '$1 == k && $2 != "-" { print $2 }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else if (NR) print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'; }
mbs() { [ -n "$1" ] && awk -v k="$1" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }' || echo -; }

kinds=(nimbus)
command -v "$QEMU" >/dev/null && kinds+=(qemu) || echo "bench: $QEMU not found: no QEMU figures"
have_tap=0
if tap_setup; then have_tap=1; else echo "bench: no tap figures (needs root and network namespaces)"; fi
for run in $(seq "$RUNS"); do
    for fmt in raw qcow2; do
        for kind in "${kinds[@]}"; do
            one "$kind" "$fmt" "$run"
        done
    done
    if [ $have_tap = 1 ]; then
        for kind in "${kinds[@]}"; do
            one_tap "$kind" "$run"
        done
    fi
done
echo "medians of $RUNS runs:"

printf '%-26s %12s %12s %7s\n' "" nimbus qemu ratio
for fmt in raw qcow2; do
    for job in seq-write seq-read; do
        n=$(get nimbus-$fmt "$job-kbs")
        q=$(get qemu-$fmt "$job-kbs")
        printf '%-26s %9s MB/s %7s MB/s %7s\n' "fio $fmt $job 1M" "$(mbs "$n")" "$(mbs "$q")" "$(ratio "$n" "$q")"
    done
    for job in rand-write rand-read; do
        n=$(get nimbus-$fmt "$job-iops")
        q=$(get qemu-$fmt "$job-iops")
        printf '%-26s %9s IOPS %7s IOPS %7s\n' "fio $fmt $job 4k qd32" "${n:--}" "${q:--}" "$(ratio "$n" "$q")"
    done
done
for net in user tap; do
    for dir in h2g g2h; do
        if [ $net = user ]; then
            n=$(get nimbus-raw $dir)
            q=$(get qemu-raw $dir)
        else
            [ $have_tap = 1 ] || continue
            n=$(get nimbus-tap tap-$dir)
            q=$(get qemu-tap tap-$dir)
        fi
        label="iperf3 $net host->guest"
        [ $dir = g2h ] && label="iperf3 $net guest->host"
        printf '%-26s %7s Gbit/s %5s Gbit/s %5s\n' "$label" "${n:--}" "${q:--}" "$(ratio "$n" "$q")"
    done
done
