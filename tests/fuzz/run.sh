#!/usr/bin/env bash
# Runs the libFuzzer targets built by `make fuzz-build` (see docs/testing.md).
#
#   tests/fuzz/run.sh SECONDS NAME...          `make fuzz`: fuzz each target for
#       SECONDS on a writable copy of its seeds (build/fuzz/corpus/NAME, kept
#       between runs), crashes in build/fuzz/crashes/NAME/; after a crash the
#       target starts again for the time left (at most 10 crashes). Ends with
#       one line per target: coverage (libFuzzer's cov/ft), corpus size, runs,
#       crashes, known bugs hit. Exit status 1 if any target crashed.
#   tests/fuzz/run.sh --short SECONDS NAME     `make test`: replays the seeds
#       and tests/fuzz/regressions/NAME/, then fuzzes SECONDS from the seeds
#       alone (fixed seed, scratch corpus). Exit status 0 only if nothing
#       crashed and every regression behaves as tests/fuzz/known-bugs says.
#
# Known bugs: tests/fuzz/known-bugs lists open monitor bugs by id. Their
# checks (FUZZ_CHECK_KNOWN) only report while fuzzing, and every hit is
# printed ("known bug ID: ..."). A regression input named ID or ID.* must
# still fail while ID is listed (replayed with the checks fatal) and must
# pass once it is not: fixing a bug means removing its line.
set -u
cd "$(dirname "$0")/../.."

FUZZ_DIR=${FUZZ_DIR:-build/fuzz}
MAX_CRASHES=10
export NIMBUS_FUZZ_KNOWN_BUGS
NIMBUS_FUZZ_KNOWN_BUGS=$(sed -e 's/#.*//' tests/fuzz/known-bugs 2>/dev/null | awk 'NF { printf "%s ", $1 }')
# Leaks are findings too; a sanitizer report ends the input as a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

short=0
if [ "${1:-}" = --short ]; then
    short=1
    shift
fi
if [ $# -lt 2 ]; then
    echo "usage: $0 [--short] SECONDS NAME..." >&2
    exit 2
fi
seconds=$1
shift

# Prints "cov N ft N corpus N runs N" from a libFuzzer log (its last status line).
stats() {
    awk '/^#[0-9]+/ && / cov: / {
            for (i = 1; i <= NF; i++) {
                if ($i == "cov:") cov = $(i + 1)
                if ($i == "ft:") ft = $(i + 1)
                if ($i == "corp:") { corp = $(i + 1); sub("/.*", "", corp) }
            }
            runs = substr($1, 2)
         }
         /^stat::number_of_executed_units:/ { total += $2 }
         END { printf "cov %s ft %s corpus %s runs %s", cov ? cov : "?", ft ? ft : "?",
                      corp ? corp : "?", total ? total : (runs ? runs : "?") }' "$@"
}

known_hits() { # log... -> "id id" of the known bugs hit
    grep -ho '^KNOWN BUG [^:]*' "$@" 2>/dev/null | awk '{ print $3 }' | sort -u | tr '\n' ' ' | sed 's/ $//'
}

is_known() { # id
    case " $NIMBUS_FUZZ_KNOWN_BUGS " in *" $1 "*) return 0 ;; esac
    return 1
}

# ---- make test: replay + a short, seeded run ----
if [ "$short" = 1 ]; then
    name=$1
    bin=$FUZZ_DIR/fuzz_$name
    [ -x "$bin" ] || { echo "no $bin: run make fuzz-build"; exit 1; }
    status=0
    seeds=(tests/fuzz/corpus/"$name"/*)
    if [ -e "${seeds[0]}" ]; then
        if "$bin" "${seeds[@]}" >"$FUZZ_DIR/replay-$name.log" 2>&1; then
            echo "seeds: ${#seeds[@]} replayed"
        else
            echo "seeds: replay FAILED"
            grep -m3 -A3 -E 'invariant failed|ERROR: |runtime error' "$FUZZ_DIR/replay-$name.log"
            status=1
        fi
    fi
    for input in tests/fuzz/regressions/"$name"/*; do
        [ -f "$input" ] || continue
        id=$(basename "$input")
        id=${id%%.*}
        NIMBUS_FUZZ_KNOWN_BUGS="" "$bin" "$input" >"$FUZZ_DIR/regression-$name.log" 2>&1
        rc=$?
        if is_known "$id"; then
            if [ "$rc" -ne 0 ] && grep -qx "BUG $id" "$FUZZ_DIR/regression-$name.log"; then
                echo "regression $input: still fails (known bug $id)"
            else
                echo "regression $input: does not fail as bug $id (exit $rc): fixed? remove $id from tests/fuzz/known-bugs"
                grep -m3 -A3 -E 'invariant failed|ERROR: |runtime error' "$FUZZ_DIR/regression-$name.log"
                status=1
            fi
        elif [ "$rc" -ne 0 ]; then
            echo "regression $input: FAILS (bug $id is back)"
            grep -m3 -A3 -E 'invariant failed|ERROR: |runtime error' "$FUZZ_DIR/regression-$name.log"
            status=1
        else
            echo "regression $input: passes"
        fi
    done
    corpus=$FUZZ_DIR/test-corpus/$name
    crashes=$FUZZ_DIR/test-crashes/$name
    rm -rf "$corpus" "$crashes"
    mkdir -p "$corpus" "$crashes"
    log=$FUZZ_DIR/test-$name.log
    # -seed: the same mutations every run; -timeout: a hang is a finding.
    seed_dir=()
    [ -d tests/fuzz/corpus/"$name" ] && seed_dir=(tests/fuzz/corpus/"$name")
    "$bin" "$corpus" "${seed_dir[@]}" -seed=1 -max_total_time="$seconds" -timeout=20 \
        -print_final_stats=1 -artifact_prefix="$crashes/" >"$log" 2>&1
    rc=$?
    echo "fuzz: $seconds s, $(stats "$log"), exit $rc"
    hits=$(known_hits "$log")
    [ -n "$hits" ] && echo "known bug hit: $hits (tests/fuzz/known-bugs)"
    if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$crashes")" ]; then
        echo "fuzz: CRASH, input in $crashes:"
        ls "$crashes"
        grep -m1 -B2 -A20 -E 'invariant failed|ERROR: |runtime error' "$log"
        status=1
    fi
    exit "$status"
fi

# ---- make fuzz ----
summary=()
any_crash=0
for name in "$@"; do
    bin=$FUZZ_DIR/fuzz_$name
    if [ ! -x "$bin" ]; then
        summary+=("fuzz/$name: no such target ($bin)")
        any_crash=1
        continue
    fi
    corpus=$FUZZ_DIR/corpus/$name
    crashes=$FUZZ_DIR/crashes/$name
    logs=$FUZZ_DIR/logs/$name
    mkdir -p "$corpus" "$crashes" "$logs"
    rm -f "$logs"/*.log
    seed_dir=()
    [ -d tests/fuzz/corpus/"$name" ] && seed_dir=(tests/fuzz/corpus/"$name")
    before=$(ls "$crashes" | wc -l)
    end=$((SECONDS + seconds))
    n=0
    echo "== fuzz/$name: $seconds s (log: $logs/)"
    while [ $((end - SECONDS)) -gt 0 ] && [ $(($(ls "$crashes" | wc -l) - before)) -lt $MAX_CRASHES ]; do
        n=$((n + 1))
        # The checked-in seeds are read, never written: new inputs go to $corpus.
        "$bin" "$corpus" "${seed_dir[@]}" -max_total_time=$((end - SECONDS)) -timeout=20 \
            -print_final_stats=1 -artifact_prefix="$crashes/" >"$logs/$n.log" 2>&1
        rc=$?
        [ "$rc" -eq 0 ] && break
        echo "   crash (exit $rc): $(grep -m1 -E 'invariant failed|ERROR: |runtime error' "$logs/$n.log")"
        grep -o 'Test unit written to .*' "$logs/$n.log" | sed 's/^/   /'
        if [ "$(ls "$crashes" | wc -l)" -eq "$before" ] && [ "$rc" -ne 0 ]; then
            before=$((before - 1)) # died without an artifact (e.g. setup): count it, stop
            break
        fi
    done
    found=$(($(ls "$crashes" | wc -l) - before))
    [ "$found" -gt 0 ] && any_crash=1
    hits=$(known_hits "$logs"/*.log)
    line="fuzz/$name: $(stats "$logs"/*.log) crashes $found"
    [ -n "$hits" ] && line+=" known-bugs-hit $hits"
    summary+=("$line")
done
echo
printf '%s\n' "${summary[@]}"
exit "$any_crash"
