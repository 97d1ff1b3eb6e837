#!/usr/bin/env bash
# Code pages freed and reused for new code (docs/architecture.md, the binary
# translator's keys and invalidation): the guest runs ROUNDS short processes
# in a row, each a fresh executable whose code differs from the previous
# one's, plus a busybox applet (fork + exec) each round.
#
# Each round the shell rewrites /tmp/p, a 144-byte static RISC-V ELF: a
# loop of 128 iterations (hot: translated at the default threshold of 50
# too) setting a0 to K, then exit(a0). K = (i * 37 + 11) % 2048 changes
# every round, so its exit status K & 255 differs from that of each of the
# 255 rounds before it. The rewrite truncates the file, which frees its
# page-cache page; the next write takes a free page, most often that same
# one, and exec maps it at the same virtual address: same guest-physical
# code address and pc, new bytes. Linux makes it visible with fence.i
# (flush_icache_pte), so a translation of the old code reused there gives a
# wrong exit status. Each round also adds `expr i * 3 + 1` (an exec of
# busybox) to a sum. The guest prints the count of wrong statuses and both
# sums; the host checks them against its own.
#
# ROUNDS (FORK_EXEC_ROUNDS, default 1200) rounds: about 20-50 s with
# --jit on on 2 shared cores, depending on their load; more with --jit off
# (figures in docs/testing.md).
set -u
. "$(dirname "$0")/lib.sh"
guest_test fork_exec
ROUNDS=${FORK_EXEC_ROUNDS:-1200}

# The ELF as printf escapes: header, one PT_LOAD (R+X, vaddr 0x10000, the
# whole file), code at offset 120. The first instruction of the loop,
# `addi a0, zero, K` (0x00000513 | K << 20), is written by the guest: its
# bytes 0x13 0x05, then K's low 4 bits << 4 and K >> 4.
elf_escapes() {
    python3 - <<'EOF'
import struct
code_pre = struct.pack('<I', 0x08000293)                  # li t0, 128
code_post = struct.pack('<4I', 0xfff28293, 0xfe029ce3,    # addi t0,t0,-1; bnez t0,loop
                        0x05d00893, 0x00000073)           # li a7, 93; ecall
size = 64 + 56 + 4 + 4 + len(code_post)
ehdr = b'\x7fELF\x02\x01\x01' + bytes(9) + struct.pack(
    '<HHIQQQIHHHHHH', 2, 0xf3, 1, 0x10000 + 120, 64, 0, 0, 64, 56, 1, 0, 0, 0)
phdr = struct.pack('<IIQQQQQQ', 1, 5, 0, 0x10000, 0x10000, size, size, 0x1000)
esc = lambda b: ''.join('\\%03o' % c for c in b)
print(esc(ehdr + phdr + code_pre) + ' ' + esc(code_post))
EOF
}
read -r PRE POST < <(elf_escapes)
[ -n "$POST" ] || fail "python3 could not make the ELF"

# shellcheck disable=SC2016 # expanded by the guest's shell
cmd='P='"'$PRE'"'; Q='"'$POST'"'; n='"$ROUNDS"'
: >/tmp/p; chmod +x /tmp/p
i=0; bad=0; st=0; es=0
while [ $i -lt $n ]; do
  k=$(( (i * 37 + 11) % 2048 )); b2=$(( (k & 15) << 4 )); b3=$(( k >> 4 ))
  printf "$P\023\005\\$((b2 / 64))$((b2 / 8 % 8))$((b2 % 8))\\$((b3 / 64))$((b3 / 8 % 8))$((b3 % 8))$Q" >/tmp/p
  /tmp/p; r=$?
  if [ $r -ne $((k & 255)) ]; then bad=$((bad + 1)); echo "round $i: exit $r, want $((k & 255))"; fi
  st=$((st + r)); es=$((es + $(expr $i \* 3 + 1)))
  i=$((i + 1))
done
echo "fork_exec: rounds $i bad $bad status_sum $st expr_sum $es"'

start=$SECONDS
run_cmd "$T/run.log" "$cmd"
st=$?
took=$((SECONDS - start))
[ $st -eq 0 ] || fail "guest command: $(status_text $st)"
want_st=0
want_es=0
for ((i = 0; i < ROUNDS; i++)); do
    want_st=$((want_st + ((i * 37 + 11) % 2048 & 255)))
    want_es=$((want_es + i * 3 + 1))
done
want="fork_exec: rounds $ROUNDS bad 0 status_sum $want_st expr_sum $want_es"
line=$(tr -d '\r' <"$T/run.log" | grep '^fork_exec: ')
[ "$line" = "$want" ] || fail "guest printed '$line', want '$want'"
echo "fork_exec: $ROUNDS rounds in ${took}s (boot included) with '${NIMBUS_ARGS:-}'" >&2
pass
