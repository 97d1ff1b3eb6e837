#!/usr/bin/env bash
# --console virtio: the guest's console is hvc0 on a virtio-console.
#  1. file backend, console=hvc0 and a command: the command's output and
#     init's lines arrive in the file through hvc0 (/proc/consoles names
#     hvc0 as the only console; the UART is not used: ttyS0 gets no output);
#     nimbus exits with the command's status; the device sits in the first
#     free slot.
#  2. stdio backend driven through a FIFO, console=hvc0, no command: typed
#     commands reach the guest shell through the receive queue and their
#     output comes back, a long line (900 bytes, under busybox's 1024-byte
#     line editor limit) too; poweroff exits 0.
set -u
. "$(dirname "$0")/lib.sh"
guest_test virtio_console

# 1. Output through hvc0 into a file.
run_vm "$T/run.out" --console "virtio,file:$T/hvc.log" \
    --append "console=hvc0 -- cat /proc/consoles; echo slot=\$(cat /sys/bus/virtio/devices/virtio0/device); ls -d /proc/device-tree/soc/virtio_mmio@10001000; echo active-\$(cat /sys/class/tty/console/active); exit 5"
st=$?
LAST_LOG=$T/hvc.log
[ $st -eq 5 ] || fail "command exited 5, nimbus: $(status_text $st)"
out=$(tr -d '\r' <"$T/hvc.log")
grep -qF "$UP_LINE" <<<"$out" || fail "no '$UP_LINE' line through hvc0"
grep -q '^hvc0 ' <<<"$out" || fail "/proc/consoles does not list hvc0"
grep -q '^ttyS0 ' <<<"$out" && fail "/proc/consoles lists ttyS0 with console=hvc0"
grep -q '^slot=0x0003$' <<<"$out" || fail "virtio0 is not the console (device id 3): $(grep slot= <<<"$out")"
grep -q 'virtio_mmio@10001000' <<<"$out" || fail "no virtio-mmio node in slot 0"
# (A command has no controlling terminal, see guest/init; the shell below
# has hvc0 as its terminal.)
grep -q '^active-hvc0$' <<<"$out" || fail "the active console is not hvc0: $(grep active- <<<"$out")"
grep -q '^nimbus-guest: exit status 5$' <<<"$out" || fail "init's exit status line is missing"

# 2. Input through the receive queue: an interactive shell on hvc0.
PROMPT='nimbus:[^ ]*# '
start_vm vm --console virtio --append "console=hvc0"
wait_for "$UP_LINE"
wait_for "$PROMPT" 60
from=$(log_lines)
send 'echo typed-$((6*7)); tty\n'
wait_for '^typed-42' 60 "$from"
wait_for '^/dev/hvc0' 60 "$from"
# A long line arrives whole (the tail of it is the pipe to wc).
long=$(printf 'x%.0s' $(seq 900))
from=$(log_lines)
send 'echo %s | wc -c\n' "$long"
wait_for '^901$' 60 "$from"
send 'poweroff\n'
wait_exit 60
[ "$VM_STATUS" -eq 0 ] || fail "after poweroff at the prompt: $(status_text "$VM_STATUS")"
pass
