#!/usr/bin/env bash
# Builds the default Nimbus guest (run by `make guest`):
#   build/guest/vmlinux            Debian's riscv64 kernel, as shipped (a flat
#                                  RISC-V Image with an EFI/PE header)
#   build/guest/initramfs.cpio.gz  busybox-static, guest/init as /init, the
#                                  guest agent (guest/agent.c, built static
#                                  for riscv64) as /usr/bin/nimbus-agent, the
#                                  kernel's virtio and vsock modules, and ext4
#                                  and sunxi_wdt for `modprobe` (newc cpio, gzip)
#
# The kernel (the versioned package that linux-image-riscv64 depends on) and
# busybox-static come from Debian's archive, suite trixie (Debian 12 has no
# riscv64), through a private apt configuration of our own
# (scripts/debian-apt.sh): the system's apt is untouched, and the archive's
# address is taken from the host's apt sources.
#
# The .debs are cached outside the build tree and not fetched again; the
# outputs are rebuilt only when an input changed.
#
# Environment:
#   NIMBUS_GUEST_CACHE     cache folder (default ${XDG_CACHE_HOME:-$HOME/.cache}/nimbus/guest)
#   NIMBUS_GUEST_MIRROR    Debian archive URI to use instead of the host's
#   NIMBUS_GUEST_SUITE     Debian suite (default trixie)
#   NIMBUS_GUEST_REFRESH=1 ask the archive again for the newest kernel
#   NIMBUS_GUEST_MODULES_EXTRA  more kernel modules to pack and load, by name
#   BUILD                  build folder (default build)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# BUILD, OUT, CACHE, SUITE, ARCH, KEYRING and the private apt (debian-apt.sh).
# shellcheck source=debian-apt.sh
. "$ROOT/scripts/debian-apt.sh"
INIT_SRC=$ROOT/guest/init
AGENT_SRC=$ROOT/guest/agent.c
RV_CC=${RV_CC:-riscv64-linux-gnu-gcc}
# Modules to pack and load at boot, in this order (dependencies are added).
# Built-in ones are skipped; optional ones may be missing from the kernel.
MODULES_REQUIRED="virtio_mmio virtio_blk virtio_net virtio_rng virtio_balloon virtio_console
vmw_vsock_virtio_transport"
MODULES_OPTIONAL="${NIMBUS_GUEST_MODULES_EXTRA:-}"
# Packed (with their dependencies, in modules.dep) but loaded only on demand
# with `modprobe NAME`: ext4 for disk images (ext4 finds its crc32c checksum
# through the crypto API, so crc32c_generic is named too); sunxi_wdt (and the
# watchdog core) for the watchdog of `nimbus run --watchdog`, which /init
# loads when the device tree has one. Loading them at every boot would cost
# every guest their signature checks.
MODULES_ON_DEMAND="ext4 crc32c_generic sunxi_wdt"

say() { echo "guest: $*"; }
die() { echo "guest: error: $*" >&2; exit 1; }

for tool in apt-get apt-cache apt-config dpkg-deb cpio gzip xz sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/deps.sh installs what is needed)"
done
[ -r "$INIT_SRC" ] || die "$INIT_SRC missing"
[ -r "$AGENT_SRC" ] || die "$AGENT_SRC missing"
command -v "$RV_CC" >/dev/null || die "$RV_CC not found (scripts/deps.sh installs gcc-riscv64-linux-gnu)"

mkdir -p "$CACHE" "$OUT"
CACHE=$(cd "$CACHE" && pwd)
DEBS=$CACHE/debs
MANIFEST=$CACHE/manifest # "kernel FILE" and "busybox FILE", both in $DEBS

# Several test scripts may build the guest at once: one at a time.
if command -v flock >/dev/null; then
    exec 9>"$CACHE/.lock"
    flock 9
fi

manifest_get() { if [ -r "$MANIFEST" ]; then awk -v k="$1" '$1 == k { print $2 }' "$MANIFEST"; fi; }
have_debs() {
    local k b
    k=$(manifest_get kernel)
    b=$(manifest_get busybox)
    [ -n "$k" ] && [ -n "$b" ] && [ -s "$DEBS/$k" ] && [ -s "$DEBS/$b" ]
}

# --- Up to date? ---------------------------------------------------------------
# The stamp names every input: the two .debs, /init, this script, the modules.
inputs_local() {
    printf 'init %s %s\nscript %s\nmodules %s | %s\n' \
        "$(cat "$INIT_SRC" "$ROOT/guest/udhcpc.script" "$ROOT/guest/new-generation.script" | sha256sum | cut -d' ' -f1)" "$(sha256sum <"$AGENT_SRC" | cut -d' ' -f1)" \
        "$(sha256sum <"${BASH_SOURCE[0]}" | cut -d' ' -f1)" \
        "$MODULES_REQUIRED" "$MODULES_OPTIONAL $MODULES_ON_DEMAND"
}
STAMP=$OUT/.stamp
outputs_present() { [ -s "$OUT/vmlinux" ] && [ -s "$OUT/initramfs.cpio.gz" ] && [ -r "$STAMP" ]; }
exit_if_up_to_date() {
    outputs_present || return 0
    if have_debs; then
        [ "$(inputs_local; cat "$MANIFEST")" = "$(cat "$STAMP")" ] || return 0
    elif [ "${NIMBUS_GUEST_REFRESH:-0}" = 1 ] || [ "$(inputs_local)" != "$(head -n 3 "$STAMP")" ]; then
        return 0
    fi
    # (Without the .debs: built before from a cache that is gone now.)
    say "up to date ($OUT)"
    exit 0
}

fetch() {
    local kpkg tmp
    apt_select_archive linux-image-$ARCH
    kpkg=$(apt-cache depends linux-image-$ARCH 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-.*-'$ARCH'$/ { print $2; exit }')
    [ -n "$kpkg" ] || die "linux-image-$ARCH in $SUITE depends on no linux-image-*-$ARCH"
    mkdir -p "$DEBS"
    local pkg file size files=() get=()
    for pkg in "$kpkg" busybox-static; do
        # "'URI' FILE SIZE HASH": the file apt-get download would write.
        read -r _ file size _ < <(apt-get download --print-uris "$pkg" 2>/dev/null) || true
        [ -n "$file" ] || die "apt cannot locate $pkg in $SUITE"
        files+=("$file")
        [ "$(stat -c %s "$DEBS/$file" 2>/dev/null)" = "$size" ] || get+=("$pkg")
    done
    if [ ${#get[@]} -gt 0 ]; then
        say "downloading ${get[*]}"
        tmp=$(mktemp -d "$DEBS/.download.XXXXXX")
        if ! (cd "$tmp" && apt-get -q download "${get[@]}"); then
            rm -rf "$tmp"
            die "apt-get download ${get[*]} failed"
        fi
        mv -f "$tmp"/*.deb "$DEBS"/
        rmdir "$tmp"
    fi
    for file in "${files[@]}"; do
        [ -s "$DEBS/$file" ] || die "$file missing after the download"
    done
    printf 'kernel %s\nbusybox %s\n' "${files[0]}" "${files[1]}" >"$MANIFEST.tmp"
    mv -f "$MANIFEST.tmp" "$MANIFEST"
}

[ "${NIMBUS_GUEST_REFRESH:-0}" = 1 ] && fetch
exit_if_up_to_date
have_debs || fetch
KDEB=$DEBS/$(manifest_get kernel)
BDEB=$DEBS/$(manifest_get busybox)
say "building from $(basename "$KDEB") and $(basename "$BDEB")"

# --- Unpack --------------------------------------------------------------------
WORK=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
dpkg-deb -x "$KDEB" "$WORK/kernel"
dpkg-deb -x "$BDEB" "$WORK/busybox"

vmlinux=$(ls "$WORK"/kernel/boot/vmlinux-* "$WORK"/kernel/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
[ -n "$vmlinux" ] || die "no /boot/vmlinux-* in $(basename "$KDEB")"
KVER=${vmlinux##*/vmlinu?-}
MODSRC=""
for d in "$WORK/kernel/usr/lib/modules/$KVER" "$WORK/kernel/lib/modules/$KVER"; do
    [ -d "$d" ] && MODSRC=$d && break
done
[ -n "$MODSRC" ] || die "no modules folder for $KVER in $(basename "$KDEB")"
BUSYBOX=""
for f in "$WORK/busybox/usr/bin/busybox" "$WORK/busybox/bin/busybox"; do
    [ -x "$f" ] && BUSYBOX=$f && break
done
[ -n "$BUSYBOX" ] || die "no busybox binary in $(basename "$BDEB")"

# --- The initramfs tree --------------------------------------------------------
# Merged-/usr layout: everything lives in /bin and /lib.
R=$WORK/root
mkdir -p "$R"/{bin,lib,dev,proc,sys,run,tmp,root,mnt,etc/nimbus} "$R/usr"
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
ln -s bin "$R/sbin"
ln -s ../bin "$R/usr/bin"
ln -s ../bin "$R/usr/sbin"
ln -s ../lib "$R/usr/lib"
install -m 0755 "$BUSYBOX" "$R/bin/busybox"
install -m 0755 "$INIT_SRC" "$R/init"
echo initramfs >"$R/etc/nimbus/role" # (guest/init plays two roles)
# The guest agent: static, so it needs nothing from the initramfs (Debian's
# libc6-dev-riscv64-cross has the static libc).
"$RV_CC" -static -O2 -Wall -Wextra -Werror -o "$R/bin/nimbus-agent" "$AGENT_SRC" ||
    die "cannot build $AGENT_SRC (is libc6-dev-riscv64-cross installed?)"

# Applet links, from the applet-name table in the binary ("[", "[[", "acpid",
# ... separated by NULs, ended by two). The binary is riscv64: it can't be asked.
# The table can follow other data without a NUL, so "[" may end a line.
applets=$(tr '\0' '\n' <"$BUSYBOX" |
    awk 'done { next }
         on {
             if ($0 != "") { list = list "\n" $0; n++; next }
             if (n >= 50) { print list; done = 1 }
             on = 0
         }
         prev ~ /\[$/ && $0 == "[[" { on = 1; list = "[\n[["; n = 2 }
         { prev = $0 }')
n_applets=$(echo "$applets" | grep -c . || true)
if [ "$n_applets" -lt 50 ] || ! echo "$applets" | grep -qx sh; then
    die "could not read the applet list of busybox (found $n_applets names)"
fi
for a in $applets; do
    case $a in busybox | init | linuxrc) continue ;; esac
    ln -s busybox "$R/bin/$a"
done
# No init daemon runs to receive busybox's poweroff/reboot signals: act at
# once. These scripts serve programs that run `poweroff` through PATH; the
# shell runs busybox's applets directly (before PATH), so /etc/profile turns
# the names into functions as well.
for a in poweroff halt reboot; do
    rm -f "$R/bin/$a"
    verb=$a
    [ $a = halt ] && verb=poweroff
    printf '#!/bin/sh\n# No init daemon runs in the Nimbus guest: %s at once.\nsync\nexec /bin/busybox %s -f\n' \
        "$verb" "$verb" >"$R/bin/$a"
    chmod 0755 "$R/bin/$a"
done

cat >"$R/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
EOF
cat >"$R/etc/group" <<'EOF'
root:x:0:
tty:x:5:
EOF
cat >"$R/etc/profile" <<'EOF'
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root
# Interactive shells started from this one read this file too.
export ENV=/etc/profile
PS1='\h:\w\$ '
# busybox's poweroff would signal an init daemon, and none runs here.
poweroff() { /bin/poweroff; }
halt() { /bin/poweroff; }
reboot() { /bin/reboot; }
EOF
# udhcpc's default script (guest/udhcpc.script; busybox calls it on every
# lease event), e.g. `udhcpc -i eth0 -q`. Debian's busybox looks for it in
# /etc/udhcpc, upstream's in /usr/share/udhcpc.
mkdir -p "$R/etc/udhcpc" "$R/usr/share/udhcpc"
ln -s ../../../etc/udhcpc/default.script "$R/usr/share/udhcpc/default.script"
install -m 0755 "$ROOT/guest/udhcpc.script" "$R/etc/udhcpc/default.script"
# What the guest does when its VM generation ID changes (a snapshot
# restore): guest/new-generation.script, run by /init's watcher.
install -m 0755 "$ROOT/guest/new-generation.script" "$R/etc/nimbus/new-generation"
echo nimbus >"$R/etc/hostname"
: >"$R/etc/fstab"

# --- Kernel modules --------------------------------------------------------------
# Index the package's modules by name ("-" and "_" are the same in names).
declare -A MODFILE=() BUILTIN=() DEPS=() LOADED=()
while IFS= read -r -d '' f; do
    rel=${f#"$MODSRC"/}
    name=${rel##*/}
    name=${name%%.ko*}
    MODFILE[${name//-/_}]=$rel
done < <(find "$MODSRC" -type f \( -name '*.ko' -o -name '*.ko.*' \) -print0)
if [ -r "$MODSRC/modules.builtin" ]; then
    while read -r rel; do
        name=${rel##*/}
        name=${name%.ko}
        BUILTIN[${name//-/_}]=1
    done <"$MODSRC/modules.builtin"
fi

decompress() { # $1 = source, $2 = destination .ko
    case $1 in
        *.ko) cp "$1" "$2" ;;
        *.ko.xz) xz -dc "$1" >"$2" ;;
        *.ko.gz) gzip -dc "$1" >"$2" ;;
        *.ko.zst) command -v zstd >/dev/null || die "zstd needed for $1"; zstd -q -dc "$1" >"$2" ;;
        *) die "unknown module compression: $1" ;;
    esac
}

ORDER=()    # modules in load order, relative .ko paths
DEPLINES=() # modules.dep lines
add_module() { # $1 = name; $2 = 1 if it must exist
    local name=${1//-/_} rel ko deps d dep_paths=""
    [ -n "${LOADED[$name]:-}" ] && return 0
    if [ -n "${BUILTIN[$name]:-}" ]; then
        LOADED[$name]=builtin
        return 0
    fi
    rel=${MODFILE[$name]:-}
    if [ -z "$rel" ]; then
        [ "$2" = 1 ] && die "kernel $KVER has module $name neither built in nor as a module"
        say "note: kernel $KVER has no module $name; left out"
        return 0
    fi
    LOADED[$name]=pending
    ko=${rel%%.ko*}.ko
    mkdir -p "$R/lib/modules/$KVER/${ko%/*}"
    decompress "$MODSRC/$rel" "$R/lib/modules/$KVER/$ko"
    # modinfo's "depends=" entry: the modules this one needs, by name.
    deps=$(tr '\0' '\n' <"$R/lib/modules/$KVER/$ko" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' ')
    for d in $deps; do
        add_module "$d" 1
        [ "${LOADED[${d//-/_}]}" = builtin ] || dep_paths="$dep_paths ${DEPS[${d//-/_}]}"
    done
    # modules.dep lists the full closure, nearest first.
    DEPS[$name]=$(echo "$ko $dep_paths" | awk '{ for (i = 1; i <= NF; i++) if (!s[$i]++) printf "%s%s", (n++ ? " " : ""), $i }')
    DEPLINES+=("$ko:${DEPS[$name]#"$ko"}")
    [ "$AT_BOOT" = 1 ] && ORDER+=("$ko")
    LOADED[$name]=$ko
}
AT_BOOT=1
for m in $MODULES_REQUIRED; do add_module "$m" 1; done
for m in $MODULES_OPTIONAL; do add_module "$m" 0; done
AT_BOOT=0
for m in $MODULES_ON_DEMAND; do add_module "$m" 1; done
printf '%s\n' "${DEPLINES[@]}" | sort >"$R/lib/modules/$KVER/modules.dep"
if [ -r "$MODSRC/modules.builtin" ]; then cp "$MODSRC/modules.builtin" "$R/lib/modules/$KVER/"; fi
for ko in "${ORDER[@]}"; do echo "/lib/modules/$KVER/$ko"; done >"$R/etc/nimbus/modules"
say "modules: $(for ko in "${ORDER[@]}"; do n=${ko##*/}; printf '%s ' "${n%.ko}"; done)"

# --- Pack ----------------------------------------------------------------------
# Fixed owners and times: the same inputs give the same bytes.
find "$R" -exec touch -h -d @0 {} +
(cd "$R" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) |
    gzip -9 -n >"$WORK/initramfs.cpio.gz"
cp "$vmlinux" "$WORK/vmlinux"
mv -f "$WORK/vmlinux" "$OUT/vmlinux"
mv -f "$WORK/initramfs.cpio.gz" "$OUT/initramfs.cpio.gz"
{ inputs_local; cat "$MANIFEST"; } >"$STAMP"
say "built $OUT/vmlinux ($(stat -c %s "$OUT/vmlinux") bytes, kernel $KVER)"
say "built $OUT/initramfs.cpio.gz ($(stat -c %s "$OUT/initramfs.cpio.gz") bytes)"
