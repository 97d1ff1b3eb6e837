#!/usr/bin/env bash
# Boots with --smp 2 and --smp 4: the guest must see every hart (in
# /proc/cpuinfo and nproc), and a parallel workload (one background busybox
# job per hart) must give the same results as a serial run, and as the host.
set -u
. "$(dirname "$0")/lib.sh"
guest_test smp

# Job i hashes the numbers i, i+N, i+2N, ... below LIMIT, straight and through
# a gzip round trip. Results go to /tmp/p.i (parallel) and /tmp/s.i (serial).
LIMIT=40000
guest_cmd() { # $1 = N
    cat <<EOT | tr '\n' ' '
n=$1;
job() { seq \$1 \$n $LIMIT | sha256sum | cut -d' ' -f1; seq \$1 \$n $LIMIT | gzip -1 | gunzip | sha256sum | cut -d' ' -f1; };
echo cpuinfo=\$(grep -c ^processor /proc/cpuinfo) nproc=\$(nproc) online=\$(cat /sys/devices/system/cpu/online);
i=1; while [ \$i -le \$n ]; do job \$i > /tmp/p.\$i & i=\$((i+1)); done; wait;
i=1; while [ \$i -le \$n ]; do job \$i > /tmp/s.\$i; i=\$((i+1)); done;
i=1; while [ \$i -le \$n ]; do
  if cmp -s /tmp/p.\$i /tmp/s.\$i; then echo job\$i=\$(head -n 1 /tmp/p.\$i)/\$(tail -n 1 /tmp/p.\$i); else echo job\$i=MISMATCH; fi;
  i=\$((i+1)); done;
grep '^cpu[0-9]' /proc/stat | awk '{ printf "busy-%s=%d\n", \$1, \$2+\$3+\$4 }';
exit 0
EOT
}

for n in 2 4; do
    log=$T/smp$n.log
    run_cmd "$log" "$(guest_cmd $n)" --smp $n
    st=$?
    [ $st -eq 0 ] || fail "--smp $n: $(status_text $st)"
    out=$(tr -d '\r' <"$log")
    grep -q "cpuinfo=$n nproc=$n online=0-$((n - 1))" <<<"$out" ||
        fail "--smp $n: guest sees $(grep -o 'cpuinfo=.*' <<<"$out" | head -n 1)"
    for ((i = 1; i <= n; i++)); do
        want=$(seq $i $n $LIMIT | sha256sum | cut -d' ' -f1)
        got=$(grep -o "^job$i=.*" <<<"$out" | head -n 1)
        [ "$got" = "job$i=$want/$want" ] || fail "--smp $n: job $i gave '${got#*=}', host: $want"
    done
done
pass
