#!/usr/bin/env bash
# Dumps the device tree nimbus gives the guest (--dump-dtb) and checks it:
# dtc must decompile it without a warning, and it must describe the virt
# board: the harts, RAM at 0x80000000 of the size asked, the UART, PLIC,
# CLINT, RTC, test finisher, and /chosen with the command line and initrd.
set -u
. "$(dirname "$0")/lib.sh"
guest_test dtb
command -v dtc >/dev/null || fail "dtc not installed (package device-tree-compiler)"

append="console=ttyS0 nimbus.dtbtest=1 -- true"
# Whether nimbus stops after dumping or boots on, the guest just powers off.
run_vm "$T/run.log" --smp 2 --mem 256M --append "$append" --dump-dtb "$T/board.dtb"
st=$?
[ -s "$T/board.dtb" ] || fail "--dump-dtb wrote no file ($(status_text $st))"
[ $st -eq 0 ] || fail "nimbus: $(status_text $st)"
LAST_LOG=$T/dtc.err
dtc -I dtb -O dts -o "$T/board.dts" "$T/board.dtb" 2>"$T/dtc.err" || fail "dtc cannot read the dump"
[ ! -s "$T/dtc.err" ] || fail "dtc warns: $(head -n 1 "$T/dtc.err")"
LAST_LOG=$T/board.dts
dts=$(cat "$T/board.dts")

has() { # REGEX WHAT
    grep -Eq -- "$1" <<<"$dts" || fail "no $2 in the device tree"
}
# node NAME-REGEX: the text of the first node whose name matches, up to its end.
node() {
    awk -v re="^[ \t]*($1) \\\\{" '
        !on && $0 ~ re { on = 1; depth = 0 }
        on { print; depth += gsub(/\{/, "{"); depth -= gsub(/\}/, "}"); if (depth <= 0) exit }' <<<"$dts"
}
has '^[[:space:]]*cpus \{' "cpus node"
has '^[[:space:]]*cpu@0 \{' "cpu@0 node"
has '^[[:space:]]*cpu@1 \{' "cpu@1 node (--smp 2)"
! grep -Eq '^[[:space:]]*cpu@2 \{' <<<"$dts" || fail "cpu@2 in the tree of a 2-hart VM"
has 'riscv,cpu-intc' "hart interrupt controller (riscv,cpu-intc)"
has '^[[:space:]]*memory@80000000 \{' "memory@80000000 node"
node 'memory@80000000' | grep -Eq 'reg = <0x0+ 0x80000000 0x0+ 0x10000000>' ||
    fail "memory@80000000 reg is not 256 MiB at 0x80000000: $(node 'memory@80000000' | grep reg)"
has '^[[:space:]]*serial@10000000 \{' "serial@10000000 node"
node 'serial@10000000' | grep -q 'ns16550' || fail "serial@10000000 is not an ns16550a"
node 'serial@10000000' | grep -Eq 'interrupts = <0x0*a>' || fail "serial@10000000 does not use irq 10"
has '^[[:space:]]*(plic|interrupt-controller)@c000000 \{' "PLIC node (plic@c000000)"
node '(plic|interrupt-controller)@c000000' | grep -Eq 'riscv,plic0|sifive,plic-1\.0\.0' ||
    fail "PLIC node is not compatible with riscv,plic0"
has '^[[:space:]]*(clint@2000000|mswi@2000000) \{' "CLINT node (clint@2000000)"
has '^[[:space:]]*rtc@101000 \{' "rtc@101000 node"
node 'rtc@101000' | grep -q 'google,goldfish-rtc' || fail "rtc@101000 is not a goldfish RTC"
has '^[[:space:]]*test@100000 \{' "test@100000 node"
node 'test@100000' | grep -q 'sifive,test' || fail "test@100000 is not a sifive,test finisher"
has '^[[:space:]]*chosen \{' "chosen node"
chosen=$(node chosen)
grep -qF "bootargs = \"$append\";" <<<"$chosen" || fail "chosen/bootargs is not \"$append\""
grep -q 'stdout-path' <<<"$chosen" || fail "no chosen/stdout-path"
grep -q 'linux,initrd-start' <<<"$chosen" || fail "no chosen/linux,initrd-start"
grep -q 'linux,initrd-end' <<<"$chosen" || fail "no chosen/linux,initrd-end"
pass
