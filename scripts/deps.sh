#!/usr/bin/env bash
# Installs the Debian packages that building, running and testing Nimbus
# need, if any is missing. Safe to run repeatedly; does nothing when all are
# present.
set -euo pipefail
packages=(
    gcc make libfdt-dev pkg-config     # the monitor
    libjansson-dev                     # the control socket's JSON
    device-tree-compiler               # dtc: checks the generated device tree
    gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu  # bare-metal test programs
    cpio gzip xz-utils ca-certificates # guest initramfs
    opensbi                            # --bios tests with Debian's OpenSBI
    qemu-system-misc                   # reference for tests and `make bench`
    e2fsprogs                          # disk tests: mkfs.ext4, e2fsck, debugfs on the host
    python3-minimal                    # balloon tests: the control socket client
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
