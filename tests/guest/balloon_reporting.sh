#!/usr/bin/env bash
# Free page reporting: a 512 MiB guest fills a tmpfs with 200 MiB (the VMM's
# RSS grows by that much) and removes it; with no balloon target at all,
# Linux's page reporting (after its 2 s delay, in free blocks of 2 MiB and
# more) hands the freed memory to the device, which discards it: the RSS
# falls by at least 150 MiB within a minute.
#
# The guest fills its tmpfs with fallocate, not dd: Debian's kernel zeroes
# every page it allocates (CONFIG_INIT_ON_ALLOC_DEFAULT_ON), which touches
# each page as dd would, at a quarter of dd's cost; the RSS check below
# would catch a kernel that did not.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test balloon_reporting

API=$T/api.sock
start_vm vm --mem 512M --balloon --api "$API"
wait_for "$UP_LINE"
wait_api_socket
api_ok GET /vm/balloon/stats
feat=$API_REPLY
[ "$(jget "$feat" features.reporting)" = True ] || fail "free page reporting not negotiated: $feat"
grep -q 'Free page reporting enabled' <(tr -d '\r' <"$VM_LOG") || fail "the guest did not enable free page reporting"

# Settle first: what the guest freed while booting is reported too.
rss_idle=$(vm_rss_mib)
guest_value FILLED "mount -t tmpfs -o size=300m tmpfs /mnt && fallocate -l 200M /mnt/f && echo ok"
filled=$GUEST_VALUE
[ "$filled" = ok ] || fail "guest could not fill a 200 MiB tmpfs file: $filled"
rss_full=$(vm_rss_mib)
[ $((rss_full - rss_idle)) -ge 150 ] || fail "VMM RSS $rss_idle -> $rss_full MiB after the guest wrote 200 MiB"
api_ok GET /vm/balloon/stats
reported0=$(jget "$API_REPLY" reported_mib)

guest_value REMOVED "rm /mnt/f && echo ok"
removed=$GUEST_VALUE
[ "$removed" = ok ] || fail "rm in the guest: $removed"
end=$((SECONDS + 60))
while rss=$(vm_rss_mib) && [ $((rss_full - rss)) -lt 150 ]; do
    kill -0 "$VM_PID" 2>/dev/null || fail "VM exited"
    [ $SECONDS -lt $end ] || fail "VMM RSS $rss_full -> $rss MiB 60 s after the guest freed 200 MiB"
    sleep 0.5
done
api_ok GET /vm/balloon/stats
stats=$API_REPLY
[ "$(jget "$stats" actual_mib)" = 0 ] && [ "$(jget "$stats" target_mib)" = 0 ] || fail "balloon moved: $stats"
reported1=$(jget "$stats" reported_mib)
[ $((reported1 - reported0)) -ge 150 ] || fail "reported $reported0 -> $reported1 MiB"
echo "rss idle $rss_idle, full $rss_full, after free $rss MiB; reported $reported0 -> $reported1 MiB" >&2

# The reported memory is the guest's again: fill it once more.
guest_value AGAIN "fallocate -l 200M /mnt/g && rm /mnt/g && echo ok"
again=$GUEST_VALUE
[ "$again" = ok ] || fail "guest could not reuse reported memory: $again"
send 'poweroff\n'
wait_exit 60
[ "$VM_STATUS" -eq 0 ] || fail "VM: $(status_text "$VM_STATUS")"
pass
