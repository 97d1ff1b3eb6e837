#!/usr/bin/env bash
# Boots the default guest to userspace to run a command given after " -- " on
# the kernel command line, and checks its output and that nimbus exits with
# the command's exit status: 7 with the console in a file, 0 on stdio.
set -u
. "$(dirname "$0")/lib.sh"
guest_test boot_command

# Non-zero status, console to a file.
run_vm "$T/run7.out" --console "file:$T/run7.console" \
    --append "console=ttyS0 -- sh -c 'uname -m; cat /proc/cpuinfo | grep -c processor; time -p true; exit 7'"
st=$?
LAST_LOG=$T/run7.console
[ -s "$T/run7.console" ] || { LAST_LOG=$T/run7.out; fail "console file empty ($(status_text $st))"; }
[ $st -eq 7 ] || fail "command exited 7, nimbus: $(status_text $st)"
out=$(tr -d '\r' <"$T/run7.console")
grep -qF "$UP_LINE" <<<"$out" || fail "no '$UP_LINE' line"
# The command's output comes after the userspace line.
after=$(sed -n "/$UP_LINE/,\$p" <<<"$out")
grep -qx riscv64 <<<"$after" || fail "uname -m did not print riscv64"
grep -qx 1 <<<"$after" || fail "/proc/cpuinfo does not show exactly 1 processor"
# busybox time reads the clock through the vDSO: rdtime from U-mode.
grep -q '^real ' <<<"$after" || fail "time (clock_gettime in the vDSO) did not work in userspace"

# Zero status, console on stdio.
run_cmd "$T/run0.log" 'echo hello-from-$(uname -s); exit 0'
st=$?
[ $st -eq 0 ] || fail "command exited 0, nimbus: $(status_text $st)"
grep -q 'hello-from-Linux' "$T/run0.log" || fail "command output missing on stdio"
pass
