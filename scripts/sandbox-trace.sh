#!/usr/bin/env bash
# Finds the syscalls a VM process makes once its sandbox is locked, for the
# seccomp allowlist in src/vm/sandbox.c: runs guest tests with every
# `nimbus run` and `nimbus restore` under `strace -f` with --sandbox=log, and
# prints each syscall seen after the filter was loaded (the seccomp() call),
# with how often and in which tests.
#   scripts/sandbox-trace.sh [tests/guest/NAME.sh...]   (default: a broad set)
# Slow (strace stops at every syscall); the tests' own verdicts may suffer.
set -u
cd "$(dirname "$0")/.." || exit 1
NIMBUS_REAL=$(realpath "${NIMBUS:-build/nimbus}")
out=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-sandbox-trace.XXXXXX")
cat >"$out/nimbus" <<WRAP
#!/usr/bin/env bash
cmd=\$1; shift
case \$cmd in
run|restore)
    case " \$* " in *" --help "*|*" -h "*) exec "$NIMBUS_REAL" "\$cmd" "\$@" ;; esac
    exec strace -f -qq -e signal=none -o "$out/trace.\$(basename "\${TEST_NAME:-x}").\$\$" \
        "$NIMBUS_REAL" "\$cmd" --sandbox=log "\$@" ;;
*) exec "$NIMBUS_REAL" "\$cmd" "\$@" ;;
esac
WRAP
chmod +x "$out/nimbus"
ln -s "$(dirname "$NIMBUS_REAL")/tools" "$out/tools"   # the tests' agent_client
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(tests/guest/{boot_command,disk_raw,disk_qcow2,disk_discard,net_user_http,net_hostfwd,net_hostfwd_udp,net_tap,vsock,api,pause_resume,reboot,balloon_inflate,balloon_reporting,snapshot,interactive,virtio_console}.sh)
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    NIMBUS="$out/nimbus" NIMBUS_TEST_TIMEOUT=600 TEST_NAME=$name timeout 1800 bash "$t" 2>/dev/null |
        sed 's/^/    /'
done
# After each trace's seccomp() line: the syscall names (also from
# "<... NAME resumed>" lines).
for f in "$out"/trace.*; do
    [ -e "$f" ] || continue
    test=$(basename "$f" | cut -d. -f2)
    awk -v t="$test" '
        /seccomp\(SECCOMP_SET_MODE_FILTER.*len=/ { on = 1; next }
        !on { next }
        { line = $0; sub(/^[0-9]+ +/, "", line) }
        line ~ /^<\.\.\. [a-z0-9_]+ resumed>/ { next }
        line ~ /^[a-z0-9_]+\(/ { n = line; sub(/\(.*/, "", n); print n, t }' "$f"
done | sort | uniq -c | awk '{ c[$2] += $1; if (!(($2, $3) in s)) { s[$2, $3] = 1; w[$2] = w[$2] " " $3 } }
    END { for (k in c) printf "%-20s %8d %s\n", k, c[k], w[k] }' | sort
echo "traces in $out"
