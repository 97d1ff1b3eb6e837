#!/usr/bin/env bash
# The CLI's nimbusd commands (docs/cli.md) against a stand-in daemon
# (tests/tools/fake_nimbusd.py: nimbusd's routes, canned VMs, the lifecycle's
# states, every request recorded), no guest booted:
#  - define (a file, stdin, a JSON syntax error caught before any request, a
#    field nimbusd refuses, a duplicate name), list (running only, --all,
#    --name, --json), info (dominfo-like lines; no such VM), start, pause,
#    resume, save (and its progress on a terminal), shutdown (--timeout,
#    --wait), destroy, undefine (refused while running), logs (-n, -f),
#    console (a pipe for stdin; Ctrl-] detaches; a VM that is not running),
#    top (batch frames with rates from two samples; --json);
#  - the exact requests each made (method, path, body);
#  - pause with --api still speaks to a VM process's own API;
#  - errors: no VM named x, wrong_state with nimbusd's message, nimbusd not
#    running (no socket, a dead socket), usage errors; exit statuses 0, 1, 2;
#  - the socket: --connect, NIMBUS_CONNECT, the default under XDG_RUNTIME_DIR
#    (when not root);
#  - bash completion: commands, options, VM names from nimbusd.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"   # jget

T=$(mktemp -d "${TMPDIR:-/tmp}/nimbus-$TEST_NAME.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM
[ -x "$NIMBUS" ] || fail "$NIMBUS not found (run make)"
NIMBUS=$(cd "$(dirname "$NIMBUS")" && pwd)/$(basename "$NIMBUS")
SOCK=$T/nimbusd.sock
REC=$T/requests
LAST_LOG=$T/fake.log

# start_fake SOCKET: the stand-in daemon, once its socket answers.
start_fake() {
    python3 tests/tools/fake_nimbusd.py --socket "$1" --record "$REC" --dir "$T" \
        >"$LAST_LOG" 2>&1 &
    BG_PIDS+=($!)
    local end=$((SECONDS + 20))
    until python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' \
        "$1" 2>/dev/null; do
        kill -0 "${BG_PIDS[-1]}" 2>/dev/null || fail "fake_nimbusd.py died"
        [ $SECONDS -lt $end ] || fail "fake_nimbusd.py did not listen at $1"
        sleep 0.1
    done
}

# cli ARGS...: runs nimbus with NIMBUS_CONNECT=$SOCK; sets OUT, ERR, RC and
# REQS (the requests it made, "METHOD PATH" lines).
cli() {
    local before=0
    [ -f "$REC" ] && before=$(wc -l <"$REC")
    NIMBUS_CONNECT=$SOCK "$NIMBUS" "$@" >"$T/out" 2>"$T/err" </dev/null
    RC=$?
    OUT=$(cat "$T/out")
    ERR=$(cat "$T/err")
    REQS=$(tail -n +"$((before + 1))" "$REC" 2>/dev/null |
        sed -E 's/^\{"method": "([A-Z]+)", "path": "([^"]*)".*/\1 \2/')
}

# want_rc N WHAT, want_out TEXT WHAT, want_err TEXT WHAT, want_reqs TEXT WHAT
want_rc() { [ "$RC" = "$1" ] || fail "$2: exit status $RC, want $1 (stderr: $ERR)"; }
want_out() { [ "$OUT" = "$1" ] || fail "$2: stdout is
$OUT
want
$1"; }
want_err() { [ "$ERR" = "$1" ] || fail "$2: stderr is '$ERR', want '$1'"; }
want_reqs() { [ "$REQS" = "$1" ] || fail "$2: requests
$REQS
want
$1"; }
# last_body: the body of the last request.
last_body() { tail -n 1 "$REC" | python3 -c 'import json,sys; print(json.load(sys.stdin)["body"])'; }

start_fake "$SOCK"

# ---- nimbusd not running ----
NIMBUS_CONNECT=$SOCK "$NIMBUS" list --connect "$T/none.sock" >"$T/out" 2>"$T/err"
RC=$? ERR=$(cat "$T/err")
want_rc 1 "list, no daemon"
want_err "nimbus list: nimbusd is not running (no socket at $T/none.sock; --connect PATH or NIMBUS_CONNECT names another)" "list, no daemon"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/dead.sock"
NIMBUS_CONNECT=$T/dead.sock "$NIMBUS" info web1 >"$T/out" 2>"$T/err"
RC=$? ERR=$(cat "$T/err")
want_rc 1 "info, dead socket"
want_err "nimbus info: nimbusd is not running (nothing listens at $T/dead.sock)" "info, dead socket"

# ---- list ----
cli list
want_rc 0 list
want_out " Id     Name    State
------------------------
 4343   cache   paused
 4242   web1    running" list
want_reqs "GET /vms" list
cli list --all
want_out " Id     Name    State
-------------------------
 4343   cache   paused
 -      db      shutdown
 -      old     saved
 4242   web1    running" "list --all"
cli list -a --name
want_out "cache
db
old
web1" "list --all --name"
cli list --json
[ "$(jget "$OUT" vms.1.name)" = web1 ] && [ "$(jget "$OUT" vms.2)" = null ] ||
    fail "list --json: $OUT"
cli list extra
want_rc 2 "list with an operand"
cli list --bogus
want_rc 2 "list --bogus"

# ---- info ----
cli info web1
want_rc 0 info
for line in "Id:             4242" "Name:           web1" "State:          running" \
    "CPU(s):         2" "Memory:         512 MiB" "Disk 0:         /img/web1.qcow2 (qcow2)" \
    "Net 0:          user, mac 52:54:00:00:00:01, hostfwd tcp::2222-:22" \
    "Console socket: $T/web1.console"; do
    grep -qxF -- "$line" <<<"$OUT" || fail "info: no line '$line' in
$OUT"
done
want_reqs "GET /vms/web1" info
cli info db
grep -qxF "Exit reason:    guest powered off" <<<"$OUT" || fail "info db: $OUT"
grep -qxF "Id:             -" <<<"$OUT" || fail "info db: $OUT"
cli info x
want_rc 1 "info x"
want_err "nimbus info: no VM named x" "info x"
cli info --json web1
[ "$(jget "$OUT" definition.vcpus)" = 2 ] || fail "info --json: $OUT"
cli info 'we b/1'
want_reqs "GET /vms/we%20b%2F1" "info with a name to encode"
cli info
want_rc 2 "info without a VM"

# ---- top ----
cli top -b -n 2 -d 1
want_rc 0 top
[ "$(grep -c '^nimbus top - ' <<<"$OUT")" = 2 ] || fail "top: not 2 frames: $OUT"
grep -q ' - 2 VMs: 1 running, 1 paused - memory 1024 MiB committed, 6000 MiB available of 8000$' <<<"$OUT" ||
    fail "top: header: $OUT"
row=$(grep '^web1 ' <<<"$OUT" | tail -n 1)
read -r name state cpu rss dr dw rx tx up <<<"$row"
# 0.25 vCPU-seconds a second: 25 %; a wide margin for a loaded machine.
python3 -c "import sys; c = float(sys.argv[1]); sys.exit(not 15 <= c <= 35)" "$cpu" ||
    fail "top: web1 CPU $cpu %, want about 25: $row"
[ "$state $rss $dw $tx" = "running 512.0M 0 0" ] || fail "top: $row"
[[ $dr =~ ^(1\.0M|10[0-9][0-9]\.[0-9]K|9[0-9][0-9]\.[0-9]K)$ ]] || fail "top: disk reads $dr, want about 1 MiB/s: $row"
[[ $up =~ ^1:0[0-9]:[0-9][0-9]$ ]] || fail "top: uptime $up: $row"
[ "$(grep -o 'GET /vms/web1/stats' <<<"$REQS" | wc -l)" = 3 ] || fail "top: stats requests $REQS"
cli top --json -n 1 -d 0.2
[ "$(jget "$OUT" vms.0.name)" = cache ] && [ "$(jget "$OUT" vms.0.cpu_percent)" = 0.0 ] &&
    [ "$(jget "$OUT" vms.1.rss_bytes)" = 536870912 ] || fail "top --json: $OUT"
cli top -d 0
want_rc 2 "top -d 0"

# ---- define ----
cat >"$T/new1.json" <<EOF
{"name": "new1", "kernel": "/boot/vmlinux", "disks": [{"path": "$REC"}]}
EOF
cli define "$T/new1.json"
want_rc 0 define
want_out "VM new1 defined from $T/new1.json" define
want_reqs "POST /vms" define
[ "$(last_body)" = "$(cat "$T/new1.json")" ] || fail "define sent '$(last_body)'"
cli define "$T/new1.json"
want_rc 1 "define twice"
want_err "nimbus define: name: a VM named new1 exists" "define twice"
echo '{"name": "new2", "kernel": "/k", "disks": [{"path": "/nonexistent.img"}]}' >"$T/bad.json"
cli define "$T/bad.json"
want_rc 1 "define, a missing disk"
want_err "nimbus define: disks[0].path: /nonexistent.img: No such file or directory" "define, a missing disk"
printf '{"name":\n "x",,}' >"$T/syntax.json"
cli define "$T/syntax.json"
want_rc 1 "define, bad JSON"
want_err "nimbus define: $T/syntax.json:2:6: string or '}' expected near ','" "define, bad JSON"
want_reqs "" "define, bad JSON"
cli define "$T/missing.json"
want_err "nimbus define: $T/missing.json: No such file or directory" "define, no file"
echo '{"name": "new3", "kernel": "/k"}' | NIMBUS_CONNECT=$SOCK "$NIMBUS" define - --json >"$T/out" ||
    fail "define - failed"
[ "$(jget "$(cat "$T/out")" state)" = defined ] || fail "define - --json: $(cat "$T/out")"

# ---- the lifecycle ----
cli start new1
want_out "VM new1 started" start
want_reqs "PUT /vms/new1/start" start
cli start web1
want_rc 1 "start, running"
want_err "nimbus start: wrong state: start needs a defined or shutdown or crashed or saved VM; web1 is running" "start, running"
cli pause web1
want_out "VM web1 paused" pause
want_reqs "PUT /vms/web1/pause" pause
cli pause web1
want_rc 1 "pause, paused"
want_err "nimbus pause: wrong state: pause needs a running VM; web1 is paused" "pause, paused"
cli resume --json web1
[ "$(jget "$OUT" state)" = running ] || fail "resume --json: $OUT"
cli pause
want_rc 2 "pause without a VM"
cli pause a b
want_rc 2 "pause with two VMs"
# --api: the VM process's own API, as before nimbusd.
cli pause --api "$SOCK"
want_out "state: paused" "pause --api"
want_reqs "PUT /vm/pause" "pause --api"
cli resume --api "$T/none.sock"
want_rc 1 "resume --api, nothing there"
cli save web1
want_rc 0 save
[[ $OUT == "VM web1 saved in "*" s: $T/web1.snapshot" ]] || fail "save: $OUT"
want_reqs "PUT /vms/web1/save" save
cli start web1
# On a terminal: a spinner with the time so far, erased before the result.
script -qec "NIMBUS_CONNECT=$SOCK $NIMBUS save web1" /dev/null </dev/null >"$T/tty" 2>&1 ||
    fail "save on a terminal failed: $(cat "$T/tty")"
grep -q $'\r[|/\\-] saving web1 \.\.\. 0\.[0-9] s' "$T/tty" || fail "save: no progress: $(cat -v "$T/tty")"
grep -q $'\r\033\[KVM web1 saved in ' "$T/tty" || fail "save: progress not erased: $(cat -v "$T/tty")"
cli start web1
cli shutdown web1 --timeout 5 --wait
want_rc 0 "shutdown --wait"
want_out "VM web1 is being shut down
VM web1 has ended (shutdown)" "shutdown --wait"
[ "$(head -n 2 <<<"$REQS")" = "PUT /vms/web1/shutdown
GET /vms/web1" ] || fail "shutdown --wait: requests $REQS"
grep -q '"body": "{\\"timeout_s\\":5}"' "$REC" || fail "shutdown: no timeout_s in the body"
cli destroy cache
want_out "VM cache destroyed" destroy
want_reqs "PUT /vms/cache/destroy" destroy
cli undefine new1
want_rc 1 "undefine, running"
want_err "nimbus undefine: wrong state: undefine needs a defined or shutdown or crashed or saved VM; new1 is running" "undefine, running"
cli undefine db
want_out "VM db undefined" undefine
want_reqs "DELETE /vms/db" undefine
cli info db
want_err "nimbus info: no VM named db" "info after undefine"

# ---- logs ----
cli logs new1 -n 3
want_out "line 8
line 9
line 10" "logs -n 3"
want_reqs "GET /vms/new1/log?lines=3" "logs -n 3"
cli logs new1
[ "$(wc -l <<<"$OUT")" = 10 ] || fail "logs: $OUT"
cli logs -f --lines 1 new1
want_out "line 10
followed 1
followed 2" "logs -f"
want_reqs "GET /vms/new1/log?lines=1&follow=1" "logs -f"
cli logs nope
want_rc 1 "logs nope"
want_err "nimbus logs: no VM named nope" "logs nope"
cli logs new1 --json
want_rc 2 "logs --json"

# ---- console ----
printf 'hello\nquit\n' | NIMBUS_CONNECT=$SOCK timeout 20 "$NIMBUS" console new1 >"$T/out" 2>"$T/err"
RC=$? ERR=$(cat "$T/err")
want_rc 0 "console, the VM closes it"
[ "$(tr -d '\r' <"$T/out")" = "console of new1
echo: hello
echo: quit" ] || fail "console output: $(cat -v "$T/out")"
grep -q "the console of VM new1 closed" "$T/err" || fail "console: $(cat "$T/err")"
# Ctrl-] detaches: what came before it is sent, nothing after.
printf 'abc\035def\n' | NIMBUS_CONNECT=$SOCK timeout 20 "$NIMBUS" console new1 >"$T/out" 2>"$T/err"
RC=$? ERR=$(cat "$T/err")
want_rc 0 "console, Ctrl-]"
end=$((SECONDS + 20))
until [ "$(wc -l <"$T/new1.console.log" 2>/dev/null)" = 2 ]; do
    [ $SECONDS -lt $end ] || fail "console: the fake's console did not see the client go"
    sleep 0.1
done
[ "$(jget "$(tail -n 1 "$T/new1.console.log")" received)" = abc ] ||
    fail "console sent $(tail -n 1 "$T/new1.console.log")"
cli console cache
want_rc 1 "console, not running"
want_err "nimbus console: VM cache is not running (it is shutdown)" "console, not running"

# ---- the socket ----
NIMBUS_CONNECT=$T/none.sock "$NIMBUS" list --connect "$SOCK" >/dev/null 2>&1 ||
    fail "--connect does not win over NIMBUS_CONNECT"
if [ "$(id -u)" != 0 ]; then
    mkdir -p "$T/xdg/nimbus"
    ln -s "$SOCK" "$T/xdg/nimbus/nimbusd.sock"
    env -u NIMBUS_CONNECT XDG_RUNTIME_DIR=$T/xdg "$NIMBUS" list >/dev/null 2>&1 ||
        fail "no default socket under XDG_RUNTIME_DIR"
fi

# ---- --help and completion ----
for c in define list info start save undefine console logs top pause resume shutdown destroy; do
    "$NIMBUS" "$c" --help >"$T/out" 2>&1 || fail "$c --help failed"
    grep -q "^usage: nimbus $c" "$T/out" || fail "$c --help: $(head -n 2 "$T/out")"
done
"$NIMBUS" --help | grep -qE '^  top +the VMs' || fail "nimbus --help does not list top"
complete_words() { # LINE...: what completing the last word offers
    bash -c '. scripts/nimbus-completion.bash
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _nimbus
        printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
}
[ "$(NIMBUS_CONNECT=$SOCK complete_words "$NIMBUS" st | sort | tr '\n' ' ')" = "start status " ] ||
    fail "completion of 'st': $(complete_words "$NIMBUS" st)"
[ "$(complete_words "$NIMBUS" info --connect "$SOCK" "" | tr '\n' ' ')" = "cache new1 new3 old web1 " ] ||
    fail "completion of VM names: $(complete_words "$NIMBUS" info --connect "$SOCK" "")"
[ "$(NIMBUS_CONNECT=$SOCK complete_words "$NIMBUS" list --a | tr '\n' ' ')" = "--all " ] ||
    fail "completion of list's options: $(complete_words "$NIMBUS" list --a)"
pass
