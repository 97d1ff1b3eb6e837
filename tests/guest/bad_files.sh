#!/usr/bin/env bash
# Files that cannot be what they are given as, and outputs that would
# destroy inputs: each gets a clear one-line error at once, and no input file
# is ever changed.
#  - a FIFO as --kernel, --initrd, --bios, --console file: or --dump-dtb must
#    not block in open() (nobody ever writes or reads the FIFO here);
#  - --console file: or --dump-dtb naming the kernel or firmware (also through
#    a symlink) or each other, a writable --disk that is another file the VM
#    uses, are refused, and the inputs are intact;
#  - a RISC-V Image that is only a header, an ELF whose e_ident[EI_VERSION] is
#    wrong (the message names that field), a 'tohost' symbol outside RAM;
#  - an 88-byte Image claiming an image_size of 8 GiB in a 9 GiB guest must not
#    make the monitor touch 8 GiB of host memory;
#  - bare-metal failure codes 256 and 2^32 must not exit 0 (statuses are 8 bits)
#    and the full code is printed.
set -u
. "$(dirname "$0")/lib.sh"
guest_test bad_files

RV_CC=${RV_CC:-riscv64-linux-gnu-gcc}
problems=()
note() { problems+=("$*"); }

# expect_error WHAT PATTERN ARGS...: nimbus run must fail at once with one line
# on stderr matching PATTERN (extended regex).
expect_error() {
    local what=$1 pattern=$2
    shift 2
    timeout -k 2 10 "$NIMBUS" run "$@" </dev/null >"$T/out" 2>"$T/err"
    local st=$?
    {
        echo "== $what: nimbus run $* -> status $st"
        sed 's/^/stderr: /' "$T/err"
    } >>"$T/all.log"
    if [ $st -eq 124 ] || [ $st -eq 137 ]; then
        note "$what: hangs"
    elif [ $st -eq 0 ]; then
        note "$what: exit status 0"
    elif grep -qF "$UP_LINE" "$T/out"; then
        note "$what: the guest booted"
    elif [ "$(grep -c . "$T/err")" -ne 1 ]; then
        note "$what: $(grep -c . "$T/err") lines on stderr"
    elif ! grep -Eq -- "$pattern" "$T/err"; then
        note "$what: message '$(cat "$T/err")' does not match /$pattern/"
    fi
}

mkfifo "$T/fifo"
cp "$KERNEL" "$T/kernel"
ln -s "$T/kernel" "$T/kernel-link"
kernel_sum=$(sha256sum <"$T/kernel")

# A bare-metal program: `prog.elf CODE` reports HTIF exit CODE; tohost is a
# real variable in RAM.
cat >"$T/exit.S" <<'ASM'
    .section .text.init, "ax"
    .globl _start
_start:
    la t0, tohost
    li t1, EXIT_WORD
    sd t1, 0(t0)
1:  j 1b
    .section .tohost, "aw"
    .align 3
    .globl tohost
tohost: .dword 0
    .globl fromhost
fromhost: .dword 0
ASM
build_exit() { # NAME WORD
    "$RV_CC" -nostdlib -nostartfiles -static -no-pie -Wl,--build-id=none -T tests/isa/link.ld \
        -Wl,--no-warn-rwx-segments -DEXIT_WORD="$2" -o "$T/$1.elf" -x assembler-with-cpp "$T/exit.S" \
        || fail "cannot build the bare-metal program with $RV_CC"
}
build_exit fail256 "((256 << 1) | 1)"
build_exit fail4g "((1 << 33) | 1)"
build_exit pass "1"
# 'tohost' as an absolute symbol outside RAM.
printf '    .section .text.init, "ax"\n    .globl _start\n_start: j _start\n    .globl tohost\n    .set tohost, 0x1000\n' >"$T/badtohost.S"
"$RV_CC" -nostdlib -nostartfiles -static -no-pie -Wl,--build-id=none -T tests/isa/link.ld \
    -Wl,--no-warn-rwx-segments \
    -o "$T/badtohost.elf" "$T/badtohost.S" || fail "cannot build badtohost.elf"
# The same program with e_ident[EI_VERSION] (byte 6) set to 2.
cp "$T/pass.elf" "$T/badversion.elf"
printf '\002' | dd of="$T/badversion.elf" bs=1 seek=6 conv=notrunc status=none
# Linux Image headers: "RSC\x05" at 0x38, image_size at 0x10 (little endian).
image() { # FILE TOTAL_BYTES IMAGE_SIZE_HEX16
    head -c "$2" /dev/zero >"$1"
    printf 'RSC\005' | dd of="$1" bs=1 seek=56 conv=notrunc status=none
    printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek=16 conv=notrunc status=none
}
image "$T/header-only.img" 64 0000000000000000
image "$T/huge.img" 88 0000000002000000   # image_size = 0x200000000 = 8 GiB (LE)

k=(--kernel "$T/kernel" --append "console=ttyS0 -- true")
expect_error "FIFO as --kernel" "regular file" --kernel "$T/fifo"
expect_error "FIFO as --initrd" "regular file" "${k[@]}" --initrd "$T/fifo"
expect_error "FIFO as --bios" "regular file" --bios "$T/fifo"
expect_error "FIFO as --console file:" "regular file" "${k[@]}" --console "file:$T/fifo"
expect_error "FIFO as --dump-dtb" "regular file" "${k[@]}" --dump-dtb "$T/fifo"
expect_error "--console file: the kernel" "same file" "${k[@]}" --console "file:$T/kernel"
expect_error "--console file: a link to the kernel" "same file" "${k[@]}" --console "file:$T/kernel-link"
expect_error "--dump-dtb the kernel" "same file" "${k[@]}" --dump-dtb "$T/kernel"
expect_error "--dump-dtb the firmware" "same file" --bios "$T/pass.elf" --dump-dtb "$T/pass.elf"
: >"$T/out.dtb"
expect_error "--dump-dtb the console file" "same file" "${k[@]}" --console "file:$T/out.dtb" --dump-dtb "$T/out.dtb"
head -c 1048576 /dev/zero >"$T/disk.raw"
expect_error "writable --disk that is the kernel" "same file" "${k[@]}" --disk "$T/kernel,format=raw"
expect_error "--console file: a disk" "same file" "${k[@]}" --disk "$T/disk.raw" --console "file:$T/disk.raw"
expect_error "the same disk twice, writable" "same file" "${k[@]}" --disk "$T/disk.raw" --disk "$T/disk.raw"
[ "$(sha256sum <"$T/kernel")" = "$kernel_sum" ] || note "the kernel file was changed"
[ "$(head -c 1048576 /dev/zero | sha256sum)" = "$(sha256sum <"$T/disk.raw")" ] || note "the disk was changed"
expect_error "Image that is only a header" "no code" --kernel "$T/header-only.img"
expect_error "ELF with a bad EI_VERSION" "EI_VERSION" --bios "$T/badversion.elf"
expect_error "tohost outside RAM" "tohost" --bios "$T/badtohost.elf"

# Exit statuses of bare-metal failures.
for c in "pass 0" "fail256 255" "fail4g 255"; do
    set -- $c
    timeout -k 2 20 "$NIMBUS" run --bios "$T/$1.elf" </dev/null >"$T/out" 2>"$T/err"
    st=$?
    echo "== $1 -> status $st: $(cat "$T/err")" >>"$T/all.log"
    [ $st -eq "$2" ] || note "$1: exit status $st, expected $2"
done
grep -q "failure 4294967296" "$T/err" || note "failure code 2^32 not printed in full: $(cat "$T/err")"

# The 8 GiB image_size must cost nothing: the image does not fit below the
# device tree, which is only found out after loading it, so loading must
# neither take long nor back the claimed memory. Peak RSS of the child:
peak_kb=$(python3 - "$NIMBUS" "$T/huge.img" "$T/huge.err" <<'PY'
import resource, subprocess, sys, time
start = time.monotonic()
with open(sys.argv[3], "w") as err:
    try:
        subprocess.run([sys.argv[1], "run", "--mem", "9G", "--kernel", sys.argv[2]],
                       stdin=subprocess.DEVNULL, stdout=err, stderr=err, timeout=20)
    except subprocess.TimeoutExpired:
        print("timeout"); sys.exit()
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, round(time.monotonic() - start, 1))
PY
)
echo "== 8 GiB image_size: peak RSS kB and seconds: $peak_kb; $(cat "$T/huge.err")" >>"$T/all.log"
set -- $peak_kb
[ "$1" != timeout ] || note "8 GiB image_size: still running after 20 s"
[ "$1" = timeout ] || [ "$1" -lt 262144 ] || note "8 GiB image_size: peak RSS $1 kB"
grep -q "not enough guest memory" "$T/huge.err" || note "8 GiB image_size: $(head -c 300 "$T/huge.err")"

LAST_LOG=$T/all.log
[ ${#problems[@]} -eq 0 ] || fail "$(IFS=';'; echo "${problems[*]}" | sed 's/;/; /g')"
pass
