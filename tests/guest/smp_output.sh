#!/usr/bin/env bash
# A command's output must never be lost: on SMP guests the last lines of a
# `-- command` went missing about one run in four, because the command's
# shell owned the serial console as its controlling terminal and the hangup
# at its exit discarded what the UART had not sent yet (see guest/init).
# Five boots with 4 harts, each printing a 3000-byte burst right before the
# command exits: every byte and the end marker must arrive, every time.
set -u
. "$(dirname "$0")/lib.sh"
guest_test smp_output

# The end marker is computed in the guest so the kernel's echo of its own
# command line cannot match it.
for i in 1 2 3 4 5; do
    log=$T/burst$i.log
    run_cmd "$log" "head -c 3000 /dev/zero | tr '\\0' x; echo; echo BURST-END-\$((6 * 7))" --smp 4
    st=$?
    [ $st -eq 0 ] || fail "run $i: $(status_text $st)"
    grep -q BURST-END-42 "$log" || fail "run $i: the command's output was lost (no end marker)"
    n=$(sed -n "/$UP_LINE/,/BURST-END-42/p" "$log" | tr -cd x | wc -c)
    [ "$n" -eq 3000 ] || fail "run $i: $n of 3000 bytes of the burst arrived"
done
pass
