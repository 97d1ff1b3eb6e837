#!/usr/bin/env bash
# Bad input to `nimbus run` must give a one-line error on stderr and a
# non-zero exit status, at once (no hang, no boot): a missing or unusable
# kernel (or an empty raw one, or an unknown --kernel-format), too little or too much memory, unknown options, bad --smp values,
# a missing option argument, a missing initrd, bad --disk options and disk
# images (missing, a FIFO, a directory, a qcow2 header declared raw, too many),
# bad --vsock options (reserved CIDs, unknown options, a path that is a file
# or has a live server), bad --console virtio backends, and more virtio
# devices than slots.
set -u
. "$(dirname "$0")/lib.sh"
guest_test bad_input

head -c 65536 /dev/urandom >"$T/random.bin"
# Make sure the random bytes start like neither ELF nor a RISC-V Image.
printf 'JUNK' | dd of="$T/random.bin" conv=notrunc status=none
: >"$T/empty.bin"
mkfifo "$T/fifo"
truncate -s 1M "$T/disk.img"
{ printf 'QFI\xfb'; head -c 1020 /dev/zero; } >"$T/qcow2-magic.img"
many=()
for _ in 1 2 3 4 5 6 7 8; do many+=(--disk "$T/disk.img"); done
six=()
for _ in 1 2 3 4 5 6; do six+=(--disk "$T/disk.img"); done
: >"$T/plain-file"

k=(--kernel "$KERNEL")
cases=(
    "missing kernel file|--kernel $T/no-such-kernel"
    "kernel of random bytes|--kernel $T/random.bin"
    "empty kernel file|--kernel $T/empty.bin"
    "empty raw kernel file|--kernel $T/empty.bin --kernel-format raw"
    "unknown --kernel-format|${k[*]} --kernel-format bzimage"
    "--mem too small (1M)|${k[*]} --mem 1M"
    "--mem beyond the host (100T)|${k[*]} --mem 100T"
    "--mem not a size|${k[*]} --mem lots"
    "unknown option|${k[*]} --no-such-option"
    "--smp 0|${k[*]} --smp 0"
    "--smp not a number|${k[*]} --smp two"
    "missing argument to --smp|${k[*]} --smp"
    "missing argument to --kernel|--kernel"
    "nonexistent initrd|${k[*]} --initrd $T/no-such-initrd"
    "nonexistent bios|${k[*]} --bios $T/no-such-bios"
    "nonexistent disk|${k[*]} --disk $T/no-such-disk"
    "disk is a FIFO|${k[*]} --disk $T/fifo"
    "disk is a directory|${k[*]} --disk $T"
    "qcow2 header declared raw|${k[*]} --disk $T/qcow2-magic.img,format=raw"
    "unknown --disk option|${k[*]} --disk $T/disk.img,cache=maybe"
    "unknown --disk format|${k[*]} --disk $T/disk.img,format=vmdk"
    "empty --disk path|${k[*]} --disk ,readonly"
    "eight disks|${k[*]} ${many[*]}"
    "--vsock CID 2 (the host)|${k[*]} --vsock 2"
    "--vsock CID not a number|${k[*]} --vsock three"
    "--vsock unknown option|${k[*]} --vsock 3,port=5"
    "--vsock empty path|${k[*]} --vsock 3,path="
    "--vsock path is a plain file|${k[*]} --vsock 3,path=$T/plain-file"
    "--console virtio with a bad backend|${k[*]} --console virtio,tcp:1234"
    "six disks, console and vsock (8 slots)|${k[*]} ${six[*]} --console virtio,file:$T/c.log --vsock 3,path=$T/v.sock"
)
problems=()
for c in "${cases[@]}"; do
    what=${c%%|*}
    read -r -a args <<<"${c#*|}"
    # The case's options come last: "missing argument" cases end the line.
    timeout -k 2 20 "$NIMBUS" run --append "console=ttyS0 -- true" "${args[@]}" \
        </dev/null >"$T/out" 2>"$T/err"
    st=$?
    lines=$(grep -c . "$T/err")
    if grep -qF "$UP_LINE" "$T/out"; then
        problems+=("$what: accepted, the guest booted")
    elif [ $st -eq 124 ] || [ $st -eq 137 ]; then
        problems+=("$what: hangs")
    elif [ $st -eq 0 ]; then
        problems+=("$what: exit status 0")
    elif [ $st -ge 128 ]; then
        problems+=("$what: killed by signal $((st - 128))")
    elif [ "$lines" -ne 1 ]; then
        problems+=("$what: $lines lines on stderr")
    fi
    {
        echo "== $what: nimbus run --append 'console=ttyS0 -- true' ${args[*]} -> status $st"
        sed 's/^/stderr: /' "$T/err"
        head -c 2000 "$T/out" | sed 's/^/stdout: /'
    } >>"$T/all.log"
done
LAST_LOG=$T/all.log
[ ${#problems[@]} -eq 0 ] || fail "$(IFS=';'; echo "${problems[*]}" | sed 's/;/; /g')"
pass
