#!/bin/sh
# Runs inside a test kernel (test/vm/soak.test.ts boots it): pageref record,
# stacks and all, for PAGEREF_SOAK_SECONDS (default 45) while page-churn
# runs back to back at its full rate; the recorder's resident memory is
# read every 2 s. Everything the host test checks is left in $PAGEREF_OUT.
set -u
out="$PAGEREF_OUT"
seconds=${PAGEREF_SOAK_SECONDS:-45}

. test/vm/guest-lib.sh

node bin/pageref.js record -o "$out/soak.pgref" > "$out/soak-record.log" 2>&1 &
recorder=$!
echo $recorder > "$out/recorder.pid"
if ! wait_attached "$out/soak-record.log" $recorder; then
	echo "pageref record did not attach" >> "$out/soak-record.log"
	exit 0
fi
end=$(($(date +%s) + seconds))
(
	while [ "$(date +%s)" -lt $end ]; do
		build/Release/page-churn 32 4 < /dev/null > /dev/null 2>&1 || exit 1
	done
) &
load=$!
# "SECONDS-SINCE-START KIB" per line, from /proc: no fork per sample but date's.
start=$(date +%s)
while kill -0 $load 2>/dev/null; do
	while read -r key value _; do
		[ "$key" = VmRSS: ] && echo "$(($(date +%s) - start)) $value" >> "$out/rss.txt"
	done < /proc/$recorder/status
	sleep 2
done
wait $load
echo $? > "$out/load.rc"
kill -INT $recorder
wait $recorder
echo $? > "$out/soak-record.rc"
exit 0
