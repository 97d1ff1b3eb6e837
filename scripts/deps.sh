#!/usr/bin/env bash
# Installs the Debian packages that building, running and testing Nimbus
# need, if any is missing. Safe to run repeatedly; does nothing when all are
# present.
set -euo pipefail
packages=(
    gcc make libfdt-dev pkg-config     # the monitor
    libslirp-dev libglib2.0-dev        # --net user (slirp.pc requires glib-2.0.pc)
    iproute2 python3                   # network tests: namespaces, tap, an HTTP server
    libjansson-dev                     # the API's JSON
    libmicrohttpd-dev                  # the API's HTTP server (nimbus run --api)
    libseccomp-dev                     # the VM process's syscall filter (--sandbox)
    libcapstone-dev                    # --jit-dump: the translator's x86-64 code disassembled
    libsqlite3-dev                     # nimbusd's database
    libcurl4-openssl-dev curl          # the CLI's API client; curl --unix-socket in the API tests
    device-tree-compiler               # dtc: checks the generated device tree
    gcc-riscv64-linux-gnu binutils-riscv64-linux-gnu  # bare-metal test programs
    libc6-dev-riscv64-cross            # static libc for the guest agent (guest/agent.c)
    cpio gzip xz-utils ca-certificates # guest initramfs
    opensbi                            # --bios tests with Debian's OpenSBI
    qemu-system-misc                   # reference for tests and `make bench`
    python3                            # test drivers (tests/hostile/hostile.py, rusage)
    clang libfuzzer-14-dev             # `make fuzz` and the fuzz targets in `make test`
    e2fsprogs                          # disk tests: mkfs.ext4, e2fsck, debugfs on the host
    zlib1g-dev libzstd-dev             # compressed qcow2 clusters
    qemu-utils                         # qemu-img: the qcow2 tests check images with it
    fdisk tar debian-archive-keyring   # the Debian root disk: sfdisk, unpacking, apt's keys
    u-boot-qemu                        # firmware from disk: U-Boot boots the Debian disk
    iperf3                             # `make bench`: the host end of the guest's iperf3
    python3-prometheus-client          # the daemon test parses /metrics with Prometheus' parser
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
