#!/usr/bin/env bash
# The guest fetches 4 MiB of random data over HTTP from a server this test
# runs on the host's loopback (python3 http.server on 127.0.0.1, a port the
# kernel picks), reaching it through slirp at 10.0.2.2; the sha256 the guest
# computes matches the file's.
set -u
. "$(dirname "$0")/lib.sh"
guest_test net_user_http
command -v python3 >/dev/null || fail "python3 not found (scripts/deps.sh installs it)"

mkdir -p "$T/www"
head -c 4M /dev/urandom >"$T/www/blob"
want=$(sha256sum <"$T/www/blob" | cut -d' ' -f1)
http_server "$T/www"
port=$HTTP_PORT

run_cmd "$T/run.log" "
udhcpc -i eth0 -q -n -t 5 -T 2 >/dev/null 2>&1 || exit 3;
wget -q -O /tmp/blob http://10.0.2.2:$port/blob || exit 4;
echo size=\$(wc -c < /tmp/blob);
echo sum=\$(sha256sum /tmp/blob | cut -d' ' -f1);
exit 0" --net user
st=$?
[ $st -eq 0 ] || fail "guest: $(status_text $st)"
out=$(tr -d '\r' <"$T/run.log")
grep -qx 'size=4194304' <<<"$out" || fail "guest got $(grep -o '^size=.*' <<<"$out") bytes"
grep -qx "sum=$want" <<<"$out" || fail "sha256 differs: $(grep -o '^sum=.*' <<<"$out")"
grep -q '"GET /blob HTTP/1.1" 200' "$T/http.log" || fail "the server saw no GET /blob"
pass
