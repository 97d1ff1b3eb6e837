#!/usr/bin/env bash
# The Debian root disk (scripts/debian-disk.sh), through a qcow2 overlay:
#  1. the initramfs mounts root=/dev/vda1 and switches to the disk's init,
#     which brings eth0 up by DHCP itself; a command after "--" finds Debian
#     (os-release, dpkg's status), bash, fio, iperf3, 7z and awk (an
#     alternative), runs a small fio write job with fsync, and leaves a
#     marker file;
#  2. the host sees the marker in the overlay, the base disk is unchanged,
#     `qemu-img check` is clean and the file system is fsck-clean (the init
#     remounts / read-only before powering off);
#  3. booted by its label (root=LABEL=nimbus-root), without a command the
#     disk's init gives a bash login shell on the console, which answers
#     and powers off on `poweroff`.
set -u
. "$(dirname "$0")/lib.sh"
guest_test debian_disk
for tool in qemu-img debugfs e2fsck; do
    command -v $tool >/dev/null || fail "$tool not installed (scripts/deps.sh installs it)"
done
OV=$T/root.qcow2
debian_overlay "$OV"
base_sum=$(sha256sum <"$DEBIAN_DISK")

CMD='. /etc/os-release; echo "OS=$ID-$VERSION_CODENAME"
echo "BASH=$(bash -c "echo \$BASH_VERSION")"
echo "INIT=$(cat /proc/1/cmdline | tr "\0" " ")"
ip -4 addr show eth0 | grep -q "inet 10.0.2.15/" && echo DHCP_OK
ip route | grep -q "^default via 10.0.2.2" && echo ROUTE_OK
for p in fio iperf3 7z mkfs.ext4 lsblk awk which; do command -v $p >/dev/null || echo "MISSING $p"; done
dpkg-query -W -f="\${db:Status-Status}" bash | grep -qx installed && echo DPKG_OK
fio --name=w --filename=/root/fio.dat --size=8M --bs=64k --rw=write --ioengine=psync --end_fsync=1 \
    --output-format=terse >/root/fio.out && echo FIO_OK
echo nimbus-debian-marker >/root/marker'
log=$T/cmd.log
run_vm "$log" --disk "$OV" --net user --mem 1G \
    --append "root=/dev/vda1 rw console=ttyS0 -- $(guest_cmd_arg "$CMD")"
status=$?
[ $status -eq 0 ] || fail "boot with a command: $(status_text $status)"
grep -q "cannot mount root" "$log" && fail "the initramfs could not mount the root disk"
grep -q '^OS=debian-trixie' "$log" || fail "/etc/os-release does not say Debian trixie"
grep -q '^BASH=5\.' "$log" || fail "bash did not run"
grep -q "^INIT=/bin/sh /sbin/init" "$log" || fail "PID 1 is not the disk's /sbin/init"
grep -q '^DHCP_OK' "$log" || fail "eth0 has no DHCP address (10.0.2.15) from the init"
grep -q '^ROUTE_OK' "$log" || fail "no default route through 10.0.2.2"
grep '^MISSING' "$log" && fail "programs missing from the disk: $(grep '^MISSING' "$log" | tr '\n' ' ')"
grep -q '^DPKG_OK' "$log" || fail "dpkg does not list bash as installed"
grep -q '^FIO_OK' "$log" || fail "fio failed"
grep -q 'nimbus-guest: exit status 0' "$log" || fail "the command did not finish"

[ "$(sha256sum <"$DEBIAN_DISK")" = "$base_sum" ] || fail "the base disk changed"
qemu-img check -q "$OV" || fail "qemu-img check of the overlay found errors"
qemu-img convert -O raw "$OV" "$T/root.raw" || fail "qemu-img convert of the overlay failed"
fs="$T/root.raw?offset=1048576"
[ "$(debugfs -R 'cat /root/marker' "$fs" 2>/dev/null)" = nimbus-debian-marker ] ||
    fail "the marker file is not in the overlay's file system"
e2fsck -fn "$fs" >"$T/fsck.log" 2>&1 || { LAST_LOG=$T/fsck.log; fail "the root file system is not fsck-clean"; }
rm -f "$T/root.raw"

# The login shell.
start_vm shell --disk "$OV" --mem 1G --append "root=LABEL=nimbus-root rw console=ttyS0"
wait_for "$UP_LINE"
wait_for 'bash-5[^ ]*# ' 60
# (bash starts its output with an escape: bracketed paste off)
send 'shopt -q login_shell && echo "SHELL-$0-login $(id -un) $(cat /root/marker)" | tr a-z A-Z\n'
wait_for 'SHELL-BASH-LOGIN ROOT NIMBUS-DEBIAN-MARKER' 60
send 'poweroff\n'
wait_exit 60
[ "$VM_STATUS" -eq 0 ] || fail "poweroff at the prompt: $(status_text "$VM_STATUS")"
qemu-img check -q "$OV" || fail "qemu-img check after the shell session found errors"
pass
