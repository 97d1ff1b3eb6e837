# shellcheck shell=bash disable=SC2034
# Helpers shared by the guest tests (tests/guest/*.sh); sourced, not run.
#
# A test calls `guest_test NAME` first, then boots VMs with the helpers below
# and ends with `pass` or `fail REASON`: exactly one line, "PASS NAME" or
# "FAIL NAME: REASON", goes to stdout. On failure the end of the console log
# of the last VM goes to stderr, indented, for diagnosis.
#
# Environment:
#   NIMBUS               the monitor (default build/nimbus)
#   NIMBUS_TEST_TIMEOUT  seconds one boot may take (default 120)
#   NIMBUS_TEST_KEEP=1   keep the test's temporary folder
#   NIMBUS_ARGS          extra `nimbus run` options for every VM (e.g. --jit off)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
NIMBUS=${NIMBUS:-build/nimbus}
BOOT_TIMEOUT=${NIMBUS_TEST_TIMEOUT:-120}
KERNEL=${NIMBUS_GUEST_KERNEL:-build/guest/vmlinux}
INITRD=${NIMBUS_GUEST_INITRD-build/guest/initramfs.cpio.gz} # empty: no --initrd
DEBIAN_DISK=${NIMBUS_DEBIAN_DISK:-build/guest/debian.qcow2}
UP_LINE="nimbus-guest: userspace up"
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
T=""          # the test's temporary folder
LAST_LOG=""   # console log shown on failure
BG_PIDS=()    # background processes to end on exit

pass() {
    echo "PASS $TEST_NAME"
    exit 0
}

fail() {
    echo "FAIL $TEST_NAME: $*"
    if [ -n "$LAST_LOG" ] && [ -s "$LAST_LOG" ]; then
        echo "--- $TEST_NAME: end of $(basename "$LAST_LOG") ---" >&2
        tail -n 25 "$LAST_LOG" | tr -d '\r' | sed 's/^/  | /' >&2
    fi
    exit 1
}

# VM processes outlive nimbusd by design: a daemon test ends, on the way
# out (after a failure too), every process of its directory $T (daemons,
# shims and VMs) with `trap 'end_test_processes; cleanup' EXIT`.
end_test_processes() {
    local p
    for p in $(pgrep -f -- "$T/"); do kill -9 "$p" 2>/dev/null; done
}

cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do
        kill -0 "$p" 2>/dev/null || continue
        # The VM itself may be a child (of `script`).
        # shellcheck disable=SC2046
        kill $(cat /proc/"$p"/task/*/children 2>/dev/null) "$p" 2>/dev/null
        sleep 0.2
        kill -9 "$p" 2>/dev/null
    done
    if [ -n "$T" ] && [ "${NIMBUS_TEST_KEEP:-0}" != 1 ]; then rm -rf "$T"; fi
}

# guest_test [NAME]: checks the monitor and the guest (building the guest if
# it is missing), makes the temporary folder $T.
guest_test() {
    [ -n "${1:-}" ] && TEST_NAME=$1
    T=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-$TEST_NAME.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    if [ ! -x "$NIMBUS" ] && ! command -v "$NIMBUS" >/dev/null 2>&1; then
        fail "$NIMBUS not found (run make)"
    fi
    if [ ! -s "$KERNEL" ] || { [ -n "$INITRD" ] && [ ! -s "$INITRD" ]; }; then
        scripts/guest.sh >"$T/guest.log" 2>&1 || {
            LAST_LOG=$T/guest.log
            fail "scripts/guest.sh failed"
        }
    fi
}

# image_args: the --kernel and --initrd options for KERNEL and INITRD.
image_args() {
    IMAGE_ARGS=(--kernel "$KERNEL")
    if [ -n "$INITRD" ]; then IMAGE_ARGS+=(--initrd "$INITRD"); fi
}

# debian_overlay FILE: makes FILE a qcow2 overlay on the Debian root disk
# (scripts/debian-disk.sh builds it when missing), so that tests leave the
# disk as it was built. Boot it with root=/dev/vda1.
debian_overlay() {
    if [ ! -s "$DEBIAN_DISK" ]; then
        scripts/debian-disk.sh >"$T/debian-disk.log" 2>&1 || {
            LAST_LOG=$T/debian-disk.log
            fail "scripts/debian-disk.sh failed"
        }
    fi
    qemu-img create -q -f qcow2 -b "$(realpath "$DEBIAN_DISK")" -F qcow2 "$1" ||
        fail "qemu-img create of an overlay on $DEBIAN_DISK failed"
}

# run_vm LOG [nimbus run options...]: boots a VM with stdin from /dev/null,
# stdout and stderr to LOG, within the boot timeout. Returns nimbus' status,
# 124 if it had to be stopped.
run_vm() {
    local log=$1
    shift
    LAST_LOG=$log
    image_args
    # shellcheck disable=SC2086
    timeout -k 5 "$BOOT_TIMEOUT" "$NIMBUS" run ${NIMBUS_ARGS:-} "${IMAGE_ARGS[@]}" "$@" \
        </dev/null >"$log" 2>&1
}

# guest_cmd_arg CMD: CMD as words for after " -- " on the kernel command line.
# Linux passes at most 32 of them to init (CONFIG_INIT_ENV_ARG_LIMIT) and
# with more it panics before its console is up; so a long CMD is sent as a
# gzipped base64 word that the guest decodes and runs.
guest_cmd_arg() {
    local words
    words=$(wc -w <<<"$1")
    if [ "$words" -le 24 ] && [ ${#1} -le 400 ]; then
        printf '%s' "$1"
    else
        printf 'echo %s | base64 -d | gunzip | sh' "$(printf '%s\n' "$1" | gzip -9n | base64 -w0)"
    fi
}

# run_cmd LOG CMD [nimbus run options...]: boots the guest to run the shell
# command CMD (after " -- " on the kernel command line), console on stdio.
run_cmd() {
    local log=$1 cmd=$2
    shift 2
    run_vm "$log" --append "console=ttyS0 -- $(guest_cmd_arg "$cmd")" "$@"
}

# status_text STATUS: what a status means, for messages.
status_text() {
    case $1 in
        124) echo "timed out after ${BOOT_TIMEOUT}s" ;;
        *) echo "exit status $1" ;;
    esac
}

# http_server DIR: serves DIR over HTTP on host loopback (python3
# http.server on 127.0.0.1, log in $T/http.log) on a port the kernel picks
# (port 0: no race with other tests), left in HTTP_PORT; guests reach it
# through slirp at 10.0.2.2.
http_server() {
    python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$1" >"$T/http.log" 2>&1 &
    BG_PIDS+=($!)
    HTTP_PORT=""
    for _ in $(seq 100); do
        HTTP_PORT=$(sed -n 's/^Serving HTTP on 127\.0\.0\.1 port \([0-9]*\).*/\1/p' "$T/http.log")
        [ -n "$HTTP_PORT" ] && return 0
        sleep 0.1
    done
    fail "the HTTP server did not start: $(head -c 300 "$T/http.log")"
}

# --- Driving a running VM's console --------------------------------------------
# start_vm NAME [nimbus run options...]: starts a VM in the background with its
# console on stdio: input from the FIFO $T/NAME.in (written with `send`),
# output to $T/NAME.log. Sets VM_PID and VM_LOG. With VM_PTY=1, the VM runs
# under `script` on a pseudo-terminal instead, as on a user's terminal.
start_vm() {
    local name=$1
    shift
    VM_LOG=$T/$name.log
    VM_IN=$T/$name.in
    LAST_LOG=$VM_LOG
    rm -f "$VM_IN"
    mkfifo "$VM_IN"
    : >"$VM_LOG"
    image_args
    if [ "${VM_PTY:-0}" = 1 ]; then
        local cmd
        # shellcheck disable=SC2086
        cmd=$(printf '%q ' "$NIMBUS" run ${NIMBUS_ARGS:-} "${IMAGE_ARGS[@]}" "$@")
        # -e: script's status is the command's; -f: flush at once.
        script -qfec "$cmd" /dev/null <"$VM_IN" >"$VM_LOG" 2>&1 &
    else
        # shellcheck disable=SC2086
        "$NIMBUS" run ${NIMBUS_ARGS:-} "${IMAGE_ARGS[@]}" "$@" <"$VM_IN" >"$VM_LOG" 2>&1 &
    fi
    VM_PID=$!
    BG_PIDS+=("$VM_PID")
    # Hold the FIFO open for writing, or the VM would read end-of-file.
    exec 8>"$VM_IN"
}

# send TEXT: types TEXT (printf format) on the VM's console.
send() {
    # shellcheck disable=SC2059
    printf "$@" >&8
}

# wait_for REGEX [SECONDS] [FROM_LINE]: waits until the console log has a
# line matching the extended REGEX (after line FROM_LINE). Fails when the VM
# exits first or the time is up.
wait_for() {
    local re=$1 secs=${2:-$BOOT_TIMEOUT} from=${3:-0} end
    end=$((SECONDS + secs))
    while :; do
        if tail -n +"$((from + 1))" "$VM_LOG" | tr -d '\r' | grep -Eq -- "$re"; then
            return 0
        fi
        if ! kill -0 "$VM_PID" 2>/dev/null; then
            fail "VM exited while waiting for /$re/"
        fi
        [ $SECONDS -lt $end ] || fail "no /$re/ on the console after ${secs}s"
        sleep 0.2
    done
}

# log_lines: the number of lines in the console log so far.
log_lines() { wc -l <"$VM_LOG"; }

# wait_exit [SECONDS]: waits for the VM to exit; sets VM_STATUS (124 when the
# time ran out, after which the VM is killed).
wait_exit() {
    local secs=${1:-$BOOT_TIMEOUT} end
    end=$((SECONDS + secs))
    while kill -0 "$VM_PID" 2>/dev/null; do
        if [ $SECONDS -ge $end ]; then
            kill "$VM_PID" 2>/dev/null
            sleep 1
            kill -9 "$VM_PID" 2>/dev/null
            wait "$VM_PID" 2>/dev/null
            VM_STATUS=124
            exec 8>&-
            return 0
        fi
        sleep 0.2
    done
    wait "$VM_PID"
    VM_STATUS=$?
    exec 8>&-
}

# cpu_ns PID: the CPU time a process's threads have run, in ns, from the
# scheduler's own runtime accounting (/proc/PID/task/*/schedstat, first
# field), which is finer than utime/stime in /proc/PID/stat (sampled at
# host ticks). printf %.0f: mawk's %d stops at 2^31.
cpu_ns() {
    [ -d "/proc/$1/task" ] || return 1
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}
