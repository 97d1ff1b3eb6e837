#!/usr/bin/env bash
# Runs every Nimbus test (called by `make test`, after scripts/deps.sh):
#   1. builds the monitor, the unit tests and the bare-metal programs, twice:
#      optimised, and with AddressSanitizer + UndefinedBehaviorSanitizer;
#   2. C unit tests (both builds);
#   3. bare-metal RISC-V programs under `nimbus run --bios` (both builds);
#   4. guest tests that boot Debian's kernel (optimised build; a boot, a
#      two-disk run and the control-socket/balloon test under the
#      sanitizers too).
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

report() { # name status logfile
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS $1"
    else
        failed=$((failed + 1))
        failures+=("$1")
        echo "FAIL $1 (exit $2; log: $3)"
        tail -n 5 "$3" | sed 's/^/    /'
    fi
}

echo "== build"
if ! make -s -j"$JOBS" all unit isa bench-elf >"$log_dir/build.log" 2>&1; then
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
run_isa() { # nimbus elf name
    local src="tests/isa/$(basename "$2" .elf).S" args=""
    [ -f "$src" ] && args=$(sed -n 's/^.*nimbus-args:[[:space:]]*//p' "$src" | head -n 1)
    local log="$log_dir/$(echo "$3" | tr / _).log"
    # shellcheck disable=SC2086
    timeout 300 "$1" run --bios "$2" $args </dev/null >"$log" 2>&1
    report "$3" $? "$log"
}
for elf in build/isa/*.elf; do
    run_isa build/nimbus "$elf" "isa/$(basename "$elf" .elf)"
done
for elf in build/isa/*.elf; do
    run_isa build/asan/nimbus "$elf" "isa-asan/$(basename "$elf" .elf)"
done

echo "== guest tests"
if scripts/guest.sh >"$log_dir/guest-build.log" 2>&1; then
    for t in tests/guest/*.sh; do
        [ "$(basename "$t")" = lib.sh ] && continue
        name="guest/$(basename "$t" .sh)"
        log="$log_dir/$(echo "$name" | tr / _).log"
        NIMBUS=build/nimbus timeout 900 bash "$t" >"$log" 2>&1
        report "$name" $? "$log"
    done
    log="$log_dir/guest-asan_boot_command.log"
    NIMBUS=build/asan/nimbus NIMBUS_TEST_TIMEOUT=600 timeout 1200 bash tests/guest/boot_command.sh >"$log" 2>&1
    report "guest-asan/boot_command" $? "$log"
    # Two disks: the virtio workers and the backends under the sanitizers.
    log="$log_dir/guest-asan_disk_raw.log"
    NIMBUS=build/asan/nimbus NIMBUS_TEST_TIMEOUT=600 timeout 1200 bash tests/guest/disk_raw.sh >"$log" 2>&1
    report "guest-asan/disk_raw" $? "$log"
    # The control socket and the balloon's worker and timer threads.
    log="$log_dir/guest-asan_balloon_control.log"
    NIMBUS=build/asan/nimbus NIMBUS_TEST_TIMEOUT=600 timeout 1200 bash tests/guest/balloon_control.sh >"$log" 2>&1
    report "guest-asan/balloon_control" $? "$log"
else
    report "guest/build-images" 1 "$log_dir/guest-build.log"
fi

echo
if [ "$failed" -gt 0 ]; then
    echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
