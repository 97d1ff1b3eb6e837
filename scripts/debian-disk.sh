#!/usr/bin/env bash
# Builds the Debian root disk (run by `make guest`, after scripts/guest.sh):
#   build/guest/debian.qcow2   a cloud-image style disk: an MBR partition
#                              table with one bootable partition (from 1 MiB)
#                              holding an ext4 root file system of Debian
#                              trixie riscv64: the Essential:yes packages and
#                              bash, coreutils, util-linux, iproute2,
#                              e2fsprogs, fio, iperf3, 7zip, busybox, kmod and
#                              procps (and mount, hostname), with guest/init as /sbin/init, and
#                              /boot/{vmlinux,initramfs.cpio.gz,extlinux/extlinux.conf}
#                              so that firmware (U-Boot) can boot it alone.
#
# Booting it needs the default initramfs (Debian's kernel has virtio_blk and
# ext4 as modules); its /init mounts root= and switches to the disk:
#   nimbus run --kernel build/guest/vmlinux --initrd build/guest/initramfs.cpio.gz \
#              --disk build/guest/debian.qcow2 --append "root=/dev/vda1 rw console=ttyS0" --net user
#
# How (docs/guest.md says why): apt (the private configuration of
# scripts/debian-apt.sh) resolves the package set and downloads it; each
# package is unpacked with dpkg-deb, as mmdebstrap's "extract" variant does,
# and no maintainer script runs: the few things they would do for this
# system (users and groups, the dpkg status) are done here. mke2fs -d turns
# the tree into the file system without root privileges over loop devices,
# sfdisk writes the partition table, and qemu-img converts the result.
#
# The .debs are cached outside the build tree (NIMBUS_GUEST_CACHE/debian-debs)
# and not fetched again; the disk is rebuilt only when an input changed.
#
# Environment: as scripts/guest.sh (NIMBUS_GUEST_CACHE, NIMBUS_GUEST_MIRROR,
# NIMBUS_GUEST_SUITE, NIMBUS_GUEST_REFRESH, BUILD), and
#   NIMBUS_DEBIAN_DISK_SIZE  the disk's virtual size (default 4G)
#   NIMBUS_DEBIAN_PACKAGES   more packages to install
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# BUILD, OUT, CACHE, SUITE, ARCH, KEYRING and the private apt (debian-apt.sh).
# shellcheck source=debian-apt.sh
. "$ROOT/scripts/debian-apt.sh"
RV_CC=${RV_CC:-riscv64-linux-gnu-gcc}
DISK_SIZE=${NIMBUS_DEBIAN_DISK_SIZE:-4G}
PACKAGES="bash coreutils util-linux iproute2 e2fsprogs fio iperf3 7zip busybox kmod procps
hostname mount ${NIMBUS_DEBIAN_PACKAGES:-}"
PART_START_SECTOR=2048 # 1 MiB, as partitioning tools align

say() { echo "debian-disk: $*"; }
die() { echo "debian-disk: error: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg-deb tar mke2fs sfdisk qemu-img sha256sum "$RV_CC"; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh installs what is needed)"
done
for f in vmlinux initramfs.cpio.gz; do
    [ -s "$OUT/$f" ] || die "$OUT/$f missing: run scripts/guest.sh (make guest) first"
done

mkdir -p "$CACHE" "$OUT"
CACHE=$(cd "$CACHE" && pwd)
DEBDIR=$CACHE/debian-debs
MANIFEST=$CACHE/debian-manifest # "packages: REQUEST", then the resolved .deb files, one a line
if command -v flock >/dev/null; then
    exec 9>"$CACHE/.lock"
    flock 9
fi

# --- Up to date? ---------------------------------------------------------------
inputs() {
    cat "$ROOT/guest/init" "$ROOT/guest/udhcpc.script" "$ROOT/guest/new-generation.script" "$ROOT/guest/agent.c" "${BASH_SOURCE[0]}" \
        "$OUT/vmlinux" "$OUT/initramfs.cpio.gz" | sha256sum | cut -d' ' -f1
    echo "size $DISK_SIZE packages $(echo $PACKAGES)"
}
STAMP=$OUT/.debian-stamp
REQUEST="packages: $SUITE $(echo $PACKAGES)"
debs() { tail -n +2 "$MANIFEST"; }
have_debs() { # resolved for this request, and all still in the cache
    [ -s "$MANIFEST" ] && [ "$(head -n 1 "$MANIFEST")" = "$REQUEST" ] || return 1
    local f
    while read -r f; do [ -s "$DEBDIR/$f" ] || return 1; done < <(debs)
}
if [ "${NIMBUS_GUEST_REFRESH:-0}" != 1 ] && [ -s "$OUT/debian.qcow2" ] && [ -r "$STAMP" ] &&
    have_debs && [ "$(inputs; cat "$MANIFEST")" = "$(cat "$STAMP")" ]; then
    say "up to date ($OUT/debian.qcow2)"
    exit 0
fi

# --- Resolve and download --------------------------------------------------------
fetch() {
    apt_select_archive bash
    mkdir -p "$DEBDIR/partial"
    local apt_opts=(-q -y --no-install-recommends -o "Dir::Cache::archives=$DEBDIR" -o Debug::NoLocking=1)
    # '?essential': what every Debian system has (mmdebstrap's essential set).
    # shellcheck disable=SC2086
    apt-get "${apt_opts[@]}" install --download-only '?essential' $PACKAGES >"$APTDIR/install.log" 2>&1 ||
        { tail -n 20 "$APTDIR/install.log" >&2; die "apt-get could not download the packages"; }
    # The resolved set, as the file names apt gives the .debs (an epoch's ':' is %3a).
    # shellcheck disable=SC2086
    apt-get "${apt_opts[@]}" -s install '?essential' $PACKAGES 2>/dev/null |
        awk '$1 == "Inst" { v = $3; gsub(/[()]/, "", v); sub(/:/, "%3a", v); print $2 "_" v }' |
        { echo "$REQUEST"; while read -r stem; do
            f=$(cd "$DEBDIR" && ls "$stem"_*.deb 2>/dev/null | head -n 1)
            [ -n "$f" ] || die "apt resolved $stem but no .deb of it is in $DEBDIR"
            echo "$f"
        done; } >"$MANIFEST.tmp"
    [ "$(wc -l <"$MANIFEST.tmp")" -ge 50 ] || die "apt resolved too few packages (see $MANIFEST.tmp)"
    mv -f "$MANIFEST.tmp" "$MANIFEST"
}
if [ "${NIMBUS_GUEST_REFRESH:-0}" = 1 ] || ! have_debs; then fetch; fi
say "building from $(debs | wc -l) packages"

# --- Unpack ----------------------------------------------------------------------
WORK=$(mktemp -d "$OUT/.disk.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
R=$WORK/root
# Merged /usr (as trixie has it): /bin, /sbin and /lib are links into /usr,
# and tar must follow them rather than replace them with folders.
mkdir -p "$R/usr/bin" "$R/usr/sbin" "$R/usr/lib" "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
ln -s usr/bin "$R/bin"
ln -s usr/sbin "$R/sbin"
ln -s usr/lib "$R/lib"
: >"$R/var/lib/dpkg/available"
: >"$WORK/alternatives"
while read -r f; do
    dpkg-deb --fsys-tarfile "$DEBDIR/$f" | tar -C "$R" --keep-directory-symlink -xf - ||
        die "cannot unpack $f"
    # dpkg's status, so that dpkg -l in the guest tells what is there.
    { dpkg-deb -f "$DEBDIR/$f" | sed '/^Package:/a Status: install ok installed'; echo; } \
        >>"$R/var/lib/dpkg/status"
    # The alternatives its postinst would register ("LINK NAME PATH PRIORITY").
    { dpkg-deb --ctrl-tarfile "$DEBDIR/$f" | tar -xOf - ./postinst 2>/dev/null || true; } |
        sed -e ':a' -e '/\\$/N; s/\\\n//; ta' |
        awk '{ for (i = 1; i + 4 <= NF; i++) if ($i == "--install" && $(i + 4) ~ /^[0-9]+$/ &&
                   ($(i + 1) $(i + 2) $(i + 3)) !~ /[$`]/) print $(i + 1), $(i + 2), $(i + 3), $(i + 4) }' \
        >>"$WORK/alternatives"
done < <(debs)

# --- What the maintainer scripts would have done -----------------------------------
# update-alternatives: the highest priority wins, as in auto mode (e.g. awk -> mawk).
sort -k2,2 -k4,4nr "$WORK/alternatives" | awk '!seen[$2]++' |
    while read -r link name path _; do
        [ -e "$R$path" ] || continue
        mkdir -p "$R/etc/alternatives" "$R$(dirname "$link")"
        ln -sfn "$path" "$R/etc/alternatives/$name"
        ln -sfn "/etc/alternatives/$name" "$R$link"
    done
[ -r "$R/usr/share/base-passwd/passwd.master" ] || die "base-passwd's passwd.master missing"
cp "$R/usr/share/base-passwd/passwd.master" "$R/etc/passwd"
cp "$R/usr/share/base-passwd/group.master" "$R/etc/group"
sed -i 's|^root:[^:]*:0:0:root:/root:.*|root:x:0:0:root:/root:/bin/bash|' "$R/etc/passwd"
# Shadow files: root logs in without a password on the console (a test
# guest; set one with passwd), every system account is locked.
awk -F: '{ print $1 ":" ($1 == "root" ? "" : "*") ":20000:0:99999:7:::" }' "$R/etc/passwd" >"$R/etc/shadow"
awk -F: '{ print $1 ":*::" }' "$R/etc/group" >"$R/etc/gshadow"
chmod 0640 "$R/etc/shadow" "$R/etc/gshadow"
sed -i 's/^root:\*:/root::/' "$R/etc/gshadow"
echo nimbus >"$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tnimbus\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$R/etc/hosts"
printf '# <file system> <mount point> <type> <options> <dump> <pass>\n/dev/vda1 / ext4 defaults 0 1\n' >"$R/etc/fstab"
: >"$R/etc/resolv.conf"
mkdir -p "$R/root" "$R/tmp" "$R/etc/nimbus" "$R/etc/udhcpc" "$R/usr/local/sbin" "$R/boot/extlinux"
chmod 0700 "$R/root"
chmod 1777 "$R/tmp"

# --- Nimbus' pieces ----------------------------------------------------------------
install -m 0755 "$ROOT/guest/init" "$R/usr/sbin/init"
echo root >"$R/etc/nimbus/role"
install -m 0755 "$ROOT/guest/udhcpc.script" "$R/etc/udhcpc/default.script"
install -m 0755 "$ROOT/guest/new-generation.script" "$R/etc/nimbus/new-generation"
"$RV_CC" -static -O2 -Wall -Wextra -Werror -o "$R/usr/bin/nimbus-agent" "$ROOT/guest/agent.c" ||
    die "cannot build guest/agent.c (is libc6-dev-riscv64-cross installed?)"
# No init daemon runs to be asked to power off: do it at once, with the file
# system clean. (/usr/local/sbin comes first in PATH.)
for verb in poweroff halt reboot; do
    action=$verb
    [ $verb = halt ] && action=poweroff
    printf '#!/bin/sh\n# No init daemon runs in the Nimbus guest: %s at once.\nsync\nmount -o remount,ro / 2>/dev/null\nexec busybox %s -f\n' \
        "$action" "$action" >"$R/usr/local/sbin/$verb"
    chmod 0755 "$R/usr/local/sbin/$verb"
done
# The kernel and the initramfs on the disk itself, for U-Boot's distro boot
# (extlinux.conf, the syslinux format U-Boot's pxe/sysboot code reads).
cp "$OUT/vmlinux" "$R/boot/vmlinux"
cp "$OUT/initramfs.cpio.gz" "$R/boot/initramfs.cpio.gz"
cat >"$R/boot/extlinux/extlinux.conf" <<'EOF'
# Read by U-Boot's distro boot (scripts/debian-disk.sh wrote it).
default nimbus
timeout 0
label nimbus
    menu label Debian (Nimbus guest)
    kernel /boot/vmlinux
    initrd /boot/initramfs.cpio.gz
    append root=/dev/vda1 rw console=ttyS0
EOF

# --- The image -------------------------------------------------------------------
raw=$WORK/disk.raw
truncate -s "$DISK_SIZE" "$raw"
bytes=$(stat -c %s "$raw")
[ "$bytes" -ge $((1024 * 1024 * 1024)) ] || die "NIMBUS_DEBIAN_DISK_SIZE=$DISK_SIZE: at least 1G"
printf 'label: dos\nstart=%s, type=83, bootable\n' "$PART_START_SECTOR" | sfdisk -q "$raw" ||
    die "sfdisk failed"
part_kib=$(((bytes - PART_START_SECTOR * 512) / 1024))
# Fixed times: the same packages give the same files.
find "$R" -exec touch -h -d @0 {} +
mke2fs -q -t ext4 -L nimbus-root -E "offset=$((PART_START_SECTOR * 512))" -d "$R" "$raw" "${part_kib}k" ||
    die "mke2fs failed"
qemu-img convert -f raw -O qcow2 "$raw" "$WORK/debian.qcow2" || die "qemu-img convert failed"
mv -f "$WORK/debian.qcow2" "$OUT/debian.qcow2"
{ inputs; cat "$MANIFEST"; } >"$STAMP"
say "built $OUT/debian.qcow2 ($(du -k "$OUT/debian.qcow2" | cut -f1) KiB used of $DISK_SIZE)"
