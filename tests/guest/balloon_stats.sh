#!/usr/bin/env bash
# The balloon's statistics queue through the API (GET /vm/balloon/stats):
#  - the guest's statistics (free and total memory, non-zero and sensible);
#    with stats=0 fresh figures come only on request, and a request brings
#    them;
#  - a target over the guest's RAM is refused (400), the VM runs on;
#  - the socket file is gone after the VM exits.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test balloon_stats

API=$T/api.sock
start_vm vm --mem 256M --balloon=stats=0 --api "$API"
wait_for "$UP_LINE"
wait_api_socket

api_err 400 bad_request PUT /vm/balloon '{"target_mib":100000}'
grep -q "more than the guest's RAM (256 MiB)" <<<"$API_REPLY" || fail "message: $API_REPLY"

# Statistics: the driver sends its first figures when it starts (before
# DRIVER_OK); with stats=0 the device asks again only when someone reads
# them, and reading them brings fresh ones.
api_ok GET /vm/balloon/stats
first=$API_REPLY
[ "$(jget "$first" features.stats)" = True ] || fail "statistics queue not negotiated: $first"
n0=$(jget "$first" stats_updates)
[ "$n0" != null ] && [ "$n0" -ge 1 ] || fail "no statistics from the guest: $first"
wait_api 60 /vm/balloon/stats stats_updates "v > $n0"
api_ok GET /vm/balloon/stats
stats=$API_REPLY
free=$(jget "$stats" stats.free_memory)
total=$(jget "$stats" stats.total_memory)
[ "$total" -gt $((128 << 20)) ] && [ "$total" -le $((256 << 20)) ] || fail "guest total memory $total: $stats"
[ "$free" -gt 0 ] && [ "$free" -lt "$total" ] || fail "guest free memory $free of $total: $stats"

guest_value ALIVE "echo yes"
alive=$GUEST_VALUE
[ "$alive" = yes ] || fail "the guest does not answer after the bad request"
send 'poweroff\n'
wait_exit 60
[ "$VM_STATUS" -eq 0 ] || fail "VM: $(status_text "$VM_STATUS")"
[ ! -e "$API" ] || fail "API socket left behind"
pass
