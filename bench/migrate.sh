#!/usr/bin/env bash
# Live migration beside QEMU's (run by `make bench`; issue 11's benchmark):
# prints figures, never pass/fail. Both VMMs boot the default guest (kernel
# and initramfs, 1 GiB, 1 hart, no disk; QEMU 7.2 TCG with its OpenSBI) and
# migrate it between two processes of the same VMM over TCP on 127.0.0.1
# (`nimbus restore --incoming tcp:127.0.0.1:0`, `qemu-system-riscv64
# -incoming defer` + migrate-incoming). Nimbus' guest boots once per
# workload and moves on: each destination is the next source. QEMU's boots
# again for every migration: QEMU 7.2 does not migrate the RISC-V timer's
# offset (fixed upstream in 2025), so on its destination the guest's sleeps
# do not return (a busy loop runs on) - hence also no guest-side figures for
# QEMU, and NIMBUS_BENCH_QEMU_RUNS (default 1) to keep the time sane.
#
# Matrix: bandwidth unlimited (QEMU's default of 32 MiB/s raised to 10 GiB/s)
# and 1 Gbit/s (125,000,000 bytes/s: `--max-bandwidth`; QEMU's max-bandwidth
# and max-postcopy-bandwidth); pre-copy, post-copy (Nimbus: `--postcopy`, and
# once more with `--postcopy-prepage off`; QEMU: the postcopy-ram capability
# on both sides, migrate-start-postcopy as soon as the migration is active)
# and hybrid (Nimbus: `--postcopy-after 2`; QEMU: migrate-start-postcopy once
# its dirty-sync-count shows two passes done); a 30 ms downtime limit on both
# (QEMU's default is 300 ms). Three guests, each with a resident set written
# at boot (3/8 of its RAM: 384 MiB of random data in its tmpfs, so that the
# migration has RAM to move) and then:
#   idle   nothing more (its shell waits);
#   gzip   gzip of 8 MiB of random data in a loop (CPU-bound, the
#          "kernel compile-like" load: 8 MiB written per pass);
#   dirty  cp of that 8 MiB over a tmpfs file in a loop, as fast as it can.
#
# Measured per migration (bench/migrate.py has the definitions): the VMM's
# total time and downtime (Nimbus: `nimbus migrate --json`'s last event,
# downtime from the pause until the destination is told to run; QEMU:
# query-migrate's total-time and downtime, whole ms), the pages sent with
# their data and the bytes on the stream (Nimbus: `bytes`; QEMU:
# ram.transferred, without the device state), post-copy's network-bound
# faults (Nimbus: `requests`, pages the destination asked for; QEMU:
# ram.postcopy-requests), and the guest's view: a static riscv64 program
# (bench/migrate_ticker.c, added to the initramfs as a second cpio archive)
# prints a numbered line every millisecond of guest time, which the host
# stamps as it comes out of the VMM. Both VMMs stop guest time over the
# pause, so the guest's clock cannot see it by itself; from the host:
#   gap    the largest gap between consecutive lines (last on the source,
#          first on the destination): all the guest could not do, the pause
#          and post-copy's waits for pages included;
#   stop   the largest (host gap - guest-clock interval) of one pair of
#          lines: host time the guest's clock did not see, the pause;
#   noise  the largest gap in the 2 s before the migration: the floor of
#          both on this host (host scheduling, the guest's timer slack).
# Medians of NIMBUS_BENCH_RUNS runs (default 3).
#
# Environment: NIMBUS (build/nimbus), QEMU (qemu-system-riscv64), RV_CC
# (riscv64-linux-gnu-gcc), NIMBUS_BENCH_RUNS (3), NIMBUS_BENCH_QEMU_RUNS (1),
# NIMBUS_BENCH_MIGRATE_MEM (1G), NIMBUS_BENCH_MIGRATE_GUESTS ("idle gzip
# dirty"), NIMBUS_BENCH_MIGRATE_LIMITS ("0,125000000"),
# NIMBUS_BENCH_MIGRATE_VMMS ("nimbus qemu"), NIMBUS_BENCH_MIGRATE_RAW (a file
# to keep the JSON line of each migration in). A full run took 31 minutes
# on the 2-core host at load 10-26 (2026-12-07); NIMBUS_BENCH_RUNS=1 and
# fewer guests or limits for a shorter one.
set -u -o pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
export NIMBUS=${NIMBUS:-build/nimbus}
export QEMU=${QEMU:-qemu-system-riscv64}
RV_CC=${RV_CC:-riscv64-linux-gnu-gcc}
RUNS=${NIMBUS_BENCH_RUNS:-3}
QEMU_RUNS=${NIMBUS_BENCH_QEMU_RUNS:-1}
MEM=${NIMBUS_BENCH_MIGRATE_MEM:-1G}
GUESTS=${NIMBUS_BENCH_MIGRATE_GUESTS:-idle gzip dirty}
LIMITS=${NIMBUS_BENCH_MIGRATE_LIMITS:-0,125000000}
VMMS=${NIMBUS_BENCH_MIGRATE_VMMS:-nimbus qemu}
export KERNEL=build/guest/vmlinux
W=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-bench-migrate.XXXXXX")
export WORK=$W INITRD=$W/initramfs.cpio.gz
trap 'rm -rf "$W"' EXIT

command -v "$RV_CC" >/dev/null ||
    { echo "migrate: skipped: $RV_CC (gcc-riscv64-linux-gnu) builds the guest's ticker"; exit 0; }
# The default initramfs plus the ticker: Linux unpacks concatenated archives.
mkdir -p "$W/extra/bin"
"$RV_CC" -static -O2 -Wall -Wextra -Werror -o "$W/extra/bin/migrate-ticker" bench/migrate_ticker.c ||
    exit 1
(cd "$W/extra" && echo bin/migrate-ticker | cpio -o -H newc --quiet | gzip) >"$W/extra.cpio.gz"
cat build/guest/initramfs.cpio.gz "$W/extra.cpio.gz" >"$INITRD"

mem_mib=$(numfmt --from=iec "$MEM" | awk '{ print int($1 / 1048576) }')
resident_copies=$((mem_mib * 3 / 8 / 8))
# guest_cmd WORKLOAD: the guest's script, gzipped and in base64 (the kernel
# passes at most 32 words to init).
guest_cmd() {
    local load=:
    case $1 in
        gzip) load='while true; do gzip -c /tmp/r >/tmp/r.gz; done &' ;;
        dirty) load='while true; do cp /tmp/r /tmp/d; done &' ;;
    esac
    local script="dd if=/dev/urandom of=/tmp/r bs=1M count=8 2>/dev/null
i=0; while [ \$i -lt $resident_copies ]; do cat /tmp/r; i=\$((i + 1)); done >/tmp/resident
$load
echo up
exec /bin/migrate-ticker"
    echo "echo $(gzip -9 <<<"$script" | base64 -w0) | base64 -d | gunzip | sh"
}

have_qemu=0
command -v "$QEMU" >/dev/null && have_qemu=1
echo "live migration over TCP on 127.0.0.1, $MEM guest, $((mem_mib * 3 / 8)) MiB resident" \
    "(medians of $RUNS, QEMU $QEMU_RUNS; load average $(cut -d' ' -f1-3 /proc/loadavg) at the start):"
for g in $GUESTS; do
    for vmm in $VMMS; do
        modes=precopy,postcopy,postcopy-noprepage,hybrid runs=$RUNS
        if [ "$vmm" = qemu ]; then
            [ $have_qemu = 0 ] && continue
            modes=precopy,postcopy,hybrid runs=$QEMU_RUNS
        fi
        python3 bench/migrate.py "$vmm" "$(guest_cmd "$g")" "$MEM" "$runs" "$LIMITS" "$modes" |
            sed "s/^{/{\"guest\": \"$g\", /" >>"$W/results" ||
            echo "  ($g, $vmm: failed; the figures so far are kept)"
    done
done
[ -n "${NIMBUS_BENCH_MIGRATE_RAW:-}" ] && cp "$W/results" "$NIMBUS_BENCH_MIGRATE_RAW"
python3 - "$W/results" <<'EOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows.setdefault((r["guest"], r["limit"], r["mode"], r["vmm"]), []).append(r)
cols = ["total_ms", "downtime_ms", "guest_stop_ms", "guest_gap_ms", "noise_gap_ms",
        "guest_clock_gap_ms", "data_pages", "bytes", "faults"]
print("  %-6s %-8s %-18s %-6s %8s %8s %8s %8s %7s %8s %8s %9s %7s" % (
    "guest", "limit", "mode", "vmm", "total ms", "down ms", "stop ms", "gap ms", "noise",
    "clock ms", "pages", "MiB sent", "faults"))
for (g, lim, mode, vmm), rs in rows.items():
    med = {}
    for c in cols:
        v = [r[c] for r in rs if r[c] is not None]
        med[c] = "%.1f" % statistics.median(v) if v else "-"
    med["bytes"] = "%.1f" % (float(med["bytes"]) / 1048576)
    print("  %-6s %-8s %-18s %-6s %8s %8s %8s %8s %7s %8s %8s %9s %7s" % (
        g, "1Gbit/s" if lim else "none", mode, vmm, med["total_ms"], med["downtime_ms"],
        med["guest_stop_ms"], med["guest_gap_ms"], med["noise_gap_ms"], med["guest_clock_gap_ms"], med["data_pages"],
        med["bytes"], med["faults"]))
EOF
echo "  (load average $(cut -d' ' -f1-3 /proc/loadavg) at the end)"
