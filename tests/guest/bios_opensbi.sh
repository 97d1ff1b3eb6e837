#!/usr/bin/env bash
# Boots the default guest through Debian's OpenSBI as M-mode firmware
# (--bios fw_dynamic.bin, instead of the built-in SBI), with 1 and 2 harts: OpenSBI
# must start, hand over to Linux and serve its SBI calls (Linux must see
# OpenSBI's implementation ID), and the guest must reach userspace and exit
# with the command's status.
set -u
. "$(dirname "$0")/lib.sh"
guest_test bios_opensbi

fw=""
for f in /usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin \
    /usr/lib/riscv64-linux-gnu/opensbi/qemu/virt/fw_dynamic.bin; do
    [ -r "$f" ] && fw=$f && break
done
[ -n "$fw" ] || fail "Debian's OpenSBI (package opensbi) not installed: no fw_dynamic.bin"

for run in "5 1" "0 2"; do
    set -- $run
    code=$1 harts=$2
    log=$T/opensbi$code.log
    run_cmd "$log" "dmesg | grep -o 'SBI implementation ID=0x[0-9a-f]*'; exit $code" --bios "$fw" --smp "$harts"
    st=$?
    grep -q "OpenSBI v" "$log" || fail "--smp $harts: no OpenSBI banner on the console ($(status_text $st))"
    grep -qF "$UP_LINE" "$log" || fail "--smp $harts: guest did not reach userspace ($(status_text $st))"
    [ $st -eq "$code" ] || fail "--smp $harts: command exited $code, nimbus: $(status_text $st)"
    # Linux asked the SBI who implements it: OpenSBI is implementation 1.
    id=$(sed -n "/$UP_LINE/,\$p" "$log" | tr -d '\r' | grep -o 'ID=0x[0-9a-f]*' | head -n 1)
    [ "$id" = "ID=0x1" ] || fail "guest's SBI implementation is '${id#ID=}', not OpenSBI (0x1)"
done
pass
