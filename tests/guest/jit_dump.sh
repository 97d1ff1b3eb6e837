#!/usr/bin/env bash
# The translator's debugging output (docs/architecture.md, "The binary
# translator"): a bare-metal program (build/isa/rv64m.elf) run with every
# block translated, --jit-dump FILE and --jit-perf-map:
#  - FILE lists units: a header naming the hart, guest pc and sizes, then
#    the guest instructions (address, word, the decoder's opcode) and the
#    x86-64 code, disassembled by libcapstone at the addresses it ran at;
#    the first unit is the program's entry (0x80000004: after the jump
#    over the trap vector);
#  - /tmp/perf-PID.map has one "START SIZE nimbus-jit pc PC" line per unit,
#    the same starts, sizes and pcs as FILE's headers;
#  - an unwritable FILE is refused with a message, and either option with
#    --jit off too.
set -u
. "$(dirname "$0")/lib.sh"
guest_test jit_dump
ELF=build/isa/rv64m.elf
[ -s "$ELF" ] || fail "$ELF missing (make isa)"

"$NIMBUS" run --bios "$ELF" --jit on --jit-threshold 0 --jit-dump "$T/dump" --jit-perf-map \
    </dev/null >"$T/out" 2>&1 &
pid=$!
wait $pid || fail "nimbus run: $(cat "$T/out")"
map=/tmp/perf-$pid.map
trap 'rm -f "$map"; cleanup' EXIT
[ -s "$T/dump" ] || fail "no dump"
[ -s "$map" ] || fail "no perf map at $map"
units=$(grep -c '^unit: ' "$T/dump")
[ "$units" -gt 5 ] || fail "only $units units in the dump"
head -n 1 "$T/dump" | grep -Eq '^unit: hart 0, pc 80000004, [0-9]+ bytes of guest code, [0-9]+ bytes of x86-64 at 0x[0-9a-f]+$' ||
    fail "first unit: $(head -n 1 "$T/dump")"
grep -Eq '^  0000000080000004  [0-9a-f]{4,8} +[A-Z_.]+ +rd ' "$T/dump" || fail "no guest instruction at 80000004"
# The x86-64 listing: every unit has host instructions, the first one at
# the unit's address, and is a budget check (cmp).
awk '/^unit: / { if (u && n == 0) bad = bad " " u; u = $5; n = 0; at = $NF; sub(/^0x/, "", at) }
     /^    [0-9a-f]+:  / { if (n++ == 0 && ($1 != at ":" || $2 != "cmp")) bad = bad " " u "(" $1 " " $2 ")" }
     END { if (u && n == 0) bad = bad " " u; if (bad) { print "units whose host code is not listed right:" bad; exit 1 } }' \
    "$T/dump" >"$T/check" || fail "$(cat "$T/check")"
# The perf map and the dump name the same code.
awk '/^unit: / { sub(/,$/, "", $5); sub(/^0x/, "", $NF); print $NF, $5 }' "$T/dump" | sort >"$T/from-dump"
awk '{ print $1, $5 }' "$map" | sort >"$T/from-map"
cmp -s "$T/from-dump" "$T/from-map" || fail "the perf map and the dump differ: $(diff "$T/from-dump" "$T/from-map" | head -n 3)"
[ "$(wc -l <"$map")" = "$units" ] || fail "$(wc -l <"$map") perf map lines for $units units"
awk 'NF != 5 || $3 != "nimbus-jit" || $4 != "pc" || $1 !~ /^[0-9a-f]+$/ || $2 !~ /^[0-9a-f]+$/ { print; bad = 1 } END { exit bad }' \
    "$map" >"$T/bad" || fail "perf map lines: $(head -n 2 "$T/bad")"

# Refused: a dump nobody can write, and either option without the translator.
"$NIMBUS" run --bios "$ELF" --jit-dump "$T/no/such/dir/dump" </dev/null >"$T/err" 2>&1 &&
    fail "an unwritable dump was taken"
grep -q "cannot write the translator's dump to $T/no/such/dir/dump" "$T/err" || fail "unwritable dump: $(cat "$T/err")"
for opt in "--jit-dump $T/d2" --jit-perf-map; do
    # shellcheck disable=SC2086
    "$NIMBUS" run --bios "$ELF" --jit off $opt </dev/null >"$T/err" 2>&1 && fail "$opt taken with --jit off"
    grep -q 'need the translator' "$T/err" || fail "$opt with --jit off: $(cat "$T/err")"
done
echo "jit_dump: $units units, $(grep -c '^    [0-9a-f]*:  ' "$T/dump") host instructions listed"
pass
