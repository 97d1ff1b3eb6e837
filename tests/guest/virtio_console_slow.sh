#!/usr/bin/env bash
# --console virtio on stdio with a slow reader: nimbus' stdout is a pipe
# read 4 KiB at a time with pauses, far slower than the guest writes. The
# guest prints 200 000 random bytes as base64 lines through hvc0, then their
# sha256; every line must arrive (the host's sha256 of the lines equals the
# guest's). The device holds a transmit chain the console backend could not
# take until the backend has room again; before, the bytes that did not fit
# the backend's 64 KiB buffer were dropped.
set -u
. "$(dirname "$0")/lib.sh"
guest_test virtio_console_slow

CMD='head -c 200000 /dev/urandom | base64 -w 76 >/tmp/data
echo DATA-BEGIN; cat /tmp/data; echo DATA-END
echo "SUM=$(sha256sum </tmp/data | cut -d" " -f1)"'
LAST_LOG=$T/out.log
image_args
# shellcheck disable=SC2086
timeout -k 5 "$BOOT_TIMEOUT" "$NIMBUS" run ${NIMBUS_ARGS:-} "${IMAGE_ARGS[@]}" --console virtio \
    --append "console=hvc0 -- $(guest_cmd_arg "$CMD")" </dev/null 2>"$T/err.log" |
    python3 -c '
import sys, time
out = open(sys.argv[1], "wb")
while True:
    b = sys.stdin.buffer.read1(4096)
    if not b:
        break
    out.write(b)
    time.sleep(0.05)
' "$T/out.log"
st=${PIPESTATUS[0]}
[ "$st" -eq 0 ] || fail "nimbus: $(status_text "$st"); $(tail -n 2 "$T/err.log")"
tr -d '\r' <"$T/out.log" >"$T/clean.log"
grep -q '^DATA-END$' "$T/clean.log" || fail "the output ends before DATA-END"
want=$(sed -n 's/^SUM=//p' "$T/clean.log")
[ -n "$want" ] || fail "the guest's SUM line did not arrive"
got=$(sed -n '/^DATA-BEGIN$/,/^DATA-END$/p' "$T/clean.log" | sed '1d;$d' | sha256sum | cut -d' ' -f1)
lines=$(sed -n '/^DATA-BEGIN$/,/^DATA-END$/p' "$T/clean.log" | sed '1d;$d' | wc -l)
[ "$got" = "$want" ] || fail "output lost or damaged: $lines lines arrived (want 3544), sha256 differs"
pass
