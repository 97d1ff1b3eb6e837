#!/usr/bin/env bash
# Firmware from disk: Debian's U-Boot for this board (u-boot-qemu,
# qemu-riscv64_smode/u-boot.bin, loaded flat with --kernel-format raw) finds
# /boot/extlinux/extlinux.conf on the Debian root disk, loads the kernel and
# the initramfs from it and boots them: a guest whose kernel lives on its own
# disk. Twice: U-Boot started by the built-in SBI, then by OpenSBI's
# fw_dynamic. The guest must reach the disk's login shell with the command
# line extlinux.conf gives, and power off.
# (U-Boot grows the device tree in place to add bootargs and the initrd, so
# the blob must carry free space: packed tight, U-Boot overwrote its own
# data and faulted at "Starting kernel".)
set -u
. "$(dirname "$0")/lib.sh"
UBOOT=${NIMBUS_UBOOT:-/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin}
OPENSBI=${NIMBUS_OPENSBI:-/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin}
KERNEL=$UBOOT
INITRD=
guest_test uboot_disk
[ -s "$UBOOT" ] || fail "$UBOOT missing (package u-boot-qemu; scripts/deps.sh installs it)"
[ -s "$OPENSBI" ] || fail "$OPENSBI missing (package opensbi)"
OV=$T/root.qcow2
debian_overlay "$OV"

boot_from_disk() { # NAME [nimbus run options...]
    local name=$1
    shift
    start_vm "$name" "$@" --kernel-format raw --disk "$OV" --mem 1G
    wait_for '^U-Boot 20' 60
    wait_for 'Found /boot/extlinux/extlinux.conf' 120
    wait_for 'Starting kernel' 120
    wait_for "$UP_LINE"
    wait_for 'bash-5[^ ]*# ' 60
    send 'echo "CMDLINE=$(cat /proc/cmdline)" | tr a-z A-Z\n'
    wait_for 'CMDLINE=ROOT=/DEV/VDA1 RW CONSOLE=TTYS0' 60
    send 'poweroff\n'
    wait_exit 60
    [ "$VM_STATUS" -eq 0 ] || fail "$name: poweroff at the prompt: $(status_text "$VM_STATUS")"
    qemu-img check -q "$OV" || fail "$name: qemu-img check of the overlay found errors"
}
boot_from_disk builtin-sbi
boot_from_disk opensbi --bios "$OPENSBI"
pass
