#!/usr/bin/env bash
# The default console, as on a user's terminal: nimbus runs on a
# pseudo-terminal (under `script`), boots to the shell, and answers typed
# commands: uname -a, ls /proc, date twice 2 s apart (the guest clock must
# advance), cat /proc/cpuinfo, then poweroff (exit status 0). A second VM
# must quit on Ctrl-A x.
set -u
. "$(dirname "$0")/lib.sh"
guest_test interactive
command -v script >/dev/null || fail "script not installed (package bsdutils)"
PROMPT='nimbus:[^ ]*# '
VM_PTY=1

start_vm vm --append "console=ttyS0"
wait_for "$UP_LINE"
wait_for "$PROMPT" 60

expect_out() { # REGEX WHAT
    grep -Eq -- "$1" "$VM_LOG.tail" || fail "$2"
}
step() { # CMD: runs CMD, leaves everything printed since it was typed in $VM_LOG.tail
    local from marker
    from=$(log_lines)
    marker="done-$RANDOM$RANDOM"
    # The marker is printed by the guest (the typed text has "_" between its halves).
    send '%s; echo %s_%s | tr _ -\n' "$1" "${marker%%-*}" "${marker#*-}"
    wait_for "^$marker" 60 "$from"
    tail -n +"$((from + 1))" "$VM_LOG" | tr -d '\r' >"$VM_LOG.tail"
    # Only the guest echoes what is typed: the terminal must be in raw mode.
    [ "$(grep -c -- "echo ${marker%%-*}_${marker#*-}" "$VM_LOG.tail")" -eq 1 ] ||
        fail "'$1' was echoed twice: the terminal is not in raw mode"
}

step 'uname -a'
expect_out '^Linux nimbus .*riscv64' "uname -a did not show 'Linux nimbus ... riscv64'"
step 'ls /proc'
expect_out 'cpuinfo' "ls /proc did not list cpuinfo"
expect_out 'meminfo' "ls /proc did not list meminfo"
step 'echo T1=$(date +%s)'
t1=$(grep -Eo '^T1=[0-9]+' "$VM_LOG.tail" | cut -d= -f2)
[ -n "$t1" ] || fail "date printed no time"
sleep 2
step 'echo T2=$(date +%s)'
t2=$(grep -Eo '^T2=[0-9]+' "$VM_LOG.tail" | cut -d= -f2)
[ -n "$t2" ] || fail "date printed no time"
[ "$t2" -gt "$t1" ] || fail "guest clock did not advance over 2 s (date: $t1, then $t2)"
[ "$t2" -le $((t1 + 30)) ] || fail "guest clock jumped over 2 s (date: $t1, then $t2)"
step 'cat /proc/cpuinfo'
expect_out '^processor[[:space:]]*: 0' "/proc/cpuinfo has no processor 0"
expect_out '^isa[[:space:]]*: rv64' "/proc/cpuinfo has no rv64 isa line"
send 'poweroff\n'
wait_exit 60
[ "$VM_STATUS" -eq 0 ] || fail "after poweroff at the prompt: $(status_text "$VM_STATUS")"

# Ctrl-A x quits the VM, whatever the guest does.
start_vm quit --append "console=ttyS0"
wait_for "$UP_LINE"
wait_for "$PROMPT" 60
send '\001x'
wait_exit 20
[ "$VM_STATUS" -ne 124 ] || fail "Ctrl-A x did not quit the VM"
pass
