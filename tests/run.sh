#!/usr/bin/env bash
# Runs every Nimbus test (called by `make test`, after scripts/deps.sh):
#   1. builds the monitor, the unit tests and the bare-metal programs, twice:
#      optimised, and with AddressSanitizer + UndefinedBehaviorSanitizer;
#   2. C unit tests (both builds);
#   3. bare-metal RISC-V programs under `nimbus run --bios` (both builds),
#      interpreted and again with the binary translator translating every
#      block (--jit on --jit-threshold 0);
#   4. hostile guests (tests/hostile): programs that attack the monitor, and
#      signal/terminal checks on pseudo-terminals (optimised build; a subset
#      under the sanitizers);
#   5. guest tests that boot Debian's kernel (optimised build; eight again
#      under the sanitizers, listed below, with the CLI's nimbusd test; the
#      boot and fork_exec tests again with --jit on);
#   6. the libFuzzer targets (tests/fuzz/): seeds and regressions replayed,
#      then FUZZ_SHORT_SECONDS (default 15) of fuzzing each, JOBS at a time.
# Prints one line per test and ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."

JOBS=${JOBS:-2}
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
failures=()
log_dir=build/test-logs
mkdir -p "$log_dir"

# Tests run one after another: the time since the previous report (or the
# section's start) is the test's, shown so that slow tests stand out.
last_report=$SECONDS
report() { # name status logfile
    local took=$((SECONDS - last_report))
    last_report=$SECONDS
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS $1 (${took}s)"
    else
        failed=$((failed + 1))
        failures+=("$1")
        echo "FAIL $1 (exit $2, ${took}s; log: $3)"
        tail -n 5 "$3" | sed 's/^/    /'
    fi
}

echo "== build"
if ! make -s -j"$JOBS" all unit isa hostile bench-elf >"$log_dir/build.log" 2>&1; then
    cat "$log_dir/build.log"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! make -s -j"$JOBS" BUILD=build/asan OPT=-O1 SAN="$SAN_FLAGS" all unit >"$log_dir/build-asan.log" 2>&1; then
    cat "$log_dir/build-asan.log"
    echo "0 passed, 1 failed"
    exit 1
fi

echo "== unit tests"
last_report=$SECONDS
for variant in build build/asan; do
    for t in "$variant"/tests/test_*; do
        [ -x "$t" ] || continue
        name="unit${variant#build}/${t##*/}"
        log="$log_dir/$(echo "$name" | tr / _).log"
        timeout 600 "$t" >"$log" 2>&1
        report "$name" $? "$log"
    done
done

echo "== bare-metal programs"
last_report=$SECONDS
run_isa() { # nimbus elf name [extra nimbus run options]
    local src="tests/isa/$(basename "$2" .elf).S" args=""
    [ -f "$src" ] && args=$(sed -n 's/^.*nimbus-args:[[:space:]]*//p' "$src" | head -n 1)
    local log="$log_dir/$(echo "$3" | tr / _).log"
    # shellcheck disable=SC2086
    timeout 300 "$1" run --bios "$2" $args ${4:-} </dev/null >"$log" 2>&1
    report "$3" $? "$log"
}
for elf in build/isa/*.elf; do
    run_isa build/nimbus "$elf" "isa/$(basename "$elf" .elf)"
done
for elf in build/isa/*.elf; do
    run_isa build/asan/nimbus "$elf" "isa-asan/$(basename "$elf" .elf)"
done
JIT_ALL="--jit on --jit-threshold 0"
for elf in build/isa/*.elf; do
    run_isa build/nimbus "$elf" "isa-jit/$(basename "$elf" .elf)" "$JIT_ALL"
done
for elf in build/isa/*.elf; do
    run_isa build/asan/nimbus "$elf" "isa-jit-asan/$(basename "$elf" .elf)" "$JIT_ALL"
done

echo "== hostile guests"
last_report=$SECONDS
run_hostile() { # nimbus prefix list
    local t log
    for t in $(python3 tests/hostile/hostile.py --list "$3"); do
        log="$log_dir/$2_$t.log"
        timeout 300 python3 tests/hostile/hostile.py --nimbus "$1" --elf-dir build/hostile "$t" \
            >"$log" 2>&1
        report "$2/$t" $? "$log"
    done
}
run_hostile build/nimbus hostile all
run_hostile build/asan/nimbus hostile-asan asan

echo "== guest tests"
last_report=$SECONDS
if scripts/guest.sh >"$log_dir/guest-build.log" 2>&1; then
    # The Debian root disk (debian_disk, uboot_disk): its failure fails those
    # tests only.
    scripts/debian-disk.sh >"$log_dir/debian-disk-build.log" 2>&1 ||
        report "guest/debian-disk-build" 1 "$log_dir/debian-disk-build.log"
    for t in tests/guest/*.sh; do
        [ "$(basename "$t")" = lib.sh ] && continue
        name="guest/$(basename "$t" .sh)"
        log="$log_dir/$(echo "$name" | tr / _).log"
        NIMBUS=build/nimbus timeout 900 bash "$t" >"$log" 2>&1
        report "$name" $? "$log"
    done
    for t in boot_command fork_exec; do
        log="$log_dir/guest-jit_$t.log"
        NIMBUS=build/nimbus NIMBUS_ARGS="--jit on" timeout 900 \
            bash tests/guest/$t.sh >"$log" 2>&1
        report "guest-jit/$t" $? "$log"
    done
    # Under the sanitizers (test and why): the boot; two disks (the virtio
    # workers and the backends); slirp's thread and the tap offloads; pause
    # and resume (harts waiting, devices quiesced); the virtio console holding
    # output for a slow reader; vsock and the agent (the device's epoll thread
    # and sockets); the balloon's worker and timer threads, through the API; the
    # CLI's nimbusd commands against a stand-in daemon (no guest). (The
    # API's own threads run under the sanitizers in unit/test_api; snapshots -
    # saves while harts run, lazy and eager restores - in unit/test_vm_snapshot;
    # their guest tests take minutes there.)
    for t in boot_command disk_raw net_user_http net_tap pause_resume virtio_console_slow vsock \
        balloon_stats cli_daemon; do
        log="$log_dir/guest-asan_$t.log"
        limit=1200
        [ $t = disk_raw ] && limit=2400
        NIMBUS=build/asan/nimbus NIMBUS_TEST_TIMEOUT=600 timeout $limit bash tests/guest/$t.sh >"$log" 2>&1
        report "guest-asan/$t" $? "$log"
    done
else
    report "guest/build-images" 1 "$log_dir/guest-build.log"
fi

echo "== fuzz targets"
last_report=$SECONDS
FUZZ_SHORT_SECONDS=${FUZZ_SHORT_SECONDS:-15}
if make -s -j"$JOBS" fuzz-build >"$log_dir/fuzz-build.log" 2>&1; then
    names=()
    for src in tests/fuzz/fuzz_*.c; do
        name=$(basename "$src" .c)
        names+=("${name#fuzz_}")
    done
    # JOBS targets at a time: each is one CPU-bound process whose run is
    # bounded by its input count and time, not timed against anything, and
    # each keeps its files apart (tests/fuzz/run.sh). A pair's time is
    # reported with its first target.
    for ((i = 0; i < ${#names[@]}; i += JOBS)); do
        pids=()
        for name in "${names[@]:i:JOBS}"; do
            timeout $((FUZZ_SHORT_SECONDS + 120)) tests/fuzz/run.sh --short "$FUZZ_SHORT_SECONDS" \
                "$name" >"$log_dir/fuzz_$name.log" 2>&1 &
            pids+=($!)
        done
        k=0
        for name in "${names[@]:i:JOBS}"; do
            log="$log_dir/fuzz_$name.log"
            wait "${pids[$k]}"
            report "fuzz/$name" $? "$log"
            # Known open bugs are tolerated by the short run, never silently.
            grep -E '^(known bug hit|regression .*known bug)' "$log" | sed 's/^/    /'
            k=$((k + 1))
        done
    done
else
    report "fuzz/build" 1 "$log_dir/fuzz-build.log"
fi

echo
if [ "$failed" -gt 0 ]; then
    echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
