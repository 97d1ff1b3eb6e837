#!/usr/bin/env bash
# Inflating the balloon gives guest memory back to the host: a 512 MiB guest
# touches 300 MiB (a tmpfs file, then removed: the pages stay backed on the
# host, and free page reporting is off here so only the balloon can drop
# them); a 256 MiB target through the API makes the driver
# inflate (actual reaches 256 MiB), the VMM's RSS falls by at least 85 MiB
# and the guest's free memory by about 256 MiB; target 0 deflates, and the
# guest's free memory comes back.
#
# The guest fills its tmpfs with fallocate, not dd: Debian's kernel zeroes
# every page it allocates (CONFIG_INIT_ON_ALLOC_DEFAULT_ON), which touches
# each page as dd would, at a quarter of dd's cost (no copy from a user
# buffer that /dev/zero filled first); the RSS check below would catch a
# kernel that did not.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/api_lib.bash"
guest_test balloon_inflate

API=$T/api.sock
start_vm vm --mem 512M --balloon=reporting=off,stats=0 --api "$API"
wait_for "$UP_LINE"
wait_api_socket
api_ok GET /vm/balloon/stats
feat=$API_REPLY
[ "$(jget "$feat" features.reporting)" = False ] || fail "reporting negotiated with reporting=off: $feat"
[ "$(jget "$feat" features.deflate_on_oom)" = True ] || fail "deflate-on-oom not negotiated: $feat"

guest_value FILLED "mount -t tmpfs -o size=400m tmpfs /mnt && fallocate -l 300M /mnt/f && rm /mnt/f && echo ok"
filled=$GUEST_VALUE
[ "$filled" = ok ] || fail "guest could not fill a 300 MiB tmpfs file: $filled"
guest_value FREE0 "awk '/^MemFree:/ { print int(\$2 / 1024) }' /proc/meminfo"
free0=$GUEST_VALUE
rss0=$(vm_rss_mib)
[ "$rss0" -ge 300 ] || fail "VMM RSS is only $rss0 MiB after the guest touched 300 MiB"

api_ok PUT /vm/balloon '{"target_mib":256}'
reply=$API_REPLY
[ "$(jget "$reply" target_mib)" = 256 ] || fail "balloon target: $reply"
wait_api 180 /vm/balloon/stats actual_mib 'v == 256'
# The driver counts a page in `actual` only after the device has returned
# its inflate buffer, and the device discards before returning it.
rss1=$(vm_rss_mib)
[ $((rss0 - rss1)) -ge 85 ] || fail "VMM RSS $rss0 -> $rss1 MiB after inflating 256 MiB (want -85 MiB or more)"
guest_value FREE1 "awk '/^MemFree:/ { print int(\$2 / 1024) }' /proc/meminfo"
free1=$GUEST_VALUE
[ $((free0 - free1)) -ge 200 ] || fail "guest MemFree $free0 -> $free1 MiB after inflating 256 MiB"

api_ok PUT /vm/balloon '{"target_mib":0}'
reply=$API_REPLY
[ "$(jget "$reply" target_mib)" = 0 ] || fail "balloon target 0: $reply"
wait_api 180 /vm/balloon/stats actual_mib 'v == 0'
guest_value FREE2 "awk '/^MemFree:/ { print int(\$2 / 1024) }' /proc/meminfo"
free2=$GUEST_VALUE
[ $((free2 - free1)) -ge 200 ] || fail "guest MemFree $free1 -> $free2 MiB after deflating"
# The deflated pages are usable: fill them again.
guest_value AGAIN "fallocate -l 300M /mnt/g && rm /mnt/g && echo ok"
again=$GUEST_VALUE
[ "$again" = ok ] || fail "guest could not use its memory after deflating: $again"
api_ok GET /vm/balloon/stats
stats=$API_REPLY
[ "$(jget "$stats" inflated_pages)" -ge 65536 ] && [ "$(jget "$stats" deflated_pages)" -ge 65536 ] ||
    fail "page counters: $stats"
echo "rss $rss0 -> $rss1 MiB; guest MemFree $free0 -> $free1 -> $free2 MiB" >&2

send 'poweroff\n'
wait_exit 60
[ "$VM_STATUS" -eq 0 ] || fail "VM: $(status_text "$VM_STATUS")"
[ ! -e "$API" ] || fail "API socket $API left behind after exit"
pass
