#!/usr/bin/env bash
# A guest reboot restarts the VM inside the same nimbus process (as QEMU
# does): boot to the shell with earlycon=sbi (the SBI debug console must carry
# the early boot log), type `reboot`, see the kernel boot again to userspace
# in the same process, then `poweroff` ends it with status 0.
set -u
. "$(dirname "$0")/lib.sh"
guest_test reboot

start_vm vm --append "console=ttyS0 earlycon=sbi"
pid=$VM_PID
wait_for "$UP_LINE"
grep -q "earlycon: sbi0" "$VM_LOG" || fail "earlycon=sbi did not register the SBI console"
boots=$(grep -c "Linux version" "$VM_LOG")
[ "$boots" -eq 1 ] || fail "expected one boot before the reboot, saw $boots"

from=$(log_lines)
sleep 1
send 'reboot\n'
wait_for "Linux version" "$BOOT_TIMEOUT" "$from"
wait_for "$UP_LINE" "$BOOT_TIMEOUT" "$from"
kill -0 "$pid" 2>/dev/null || fail "nimbus exited on reboot instead of restarting"
[ "$VM_PID" = "$pid" ] || fail "a different process is running"

sleep 1
send 'poweroff\n'
wait_exit
[ "$VM_STATUS" -eq 0 ] || fail "poweroff after the reboot: $(status_text "$VM_STATUS")"
pass
