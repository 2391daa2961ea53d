#!/bin/sh
# Runs inside a test kernel (test/vm/sampling.test.ts boots it): the kernel
# side of sampling, aggregation and the counters. Everything the host test
# checks is left in $PAGEREF_OUT; nothing here decides pass or fail.
set -u
out="$PAGEREF_OUT"

. test/vm/guest-lib.sh

# start_recorder NAME ARGS...: pageref record in the background into
# $out/NAME.pgref; sets $recorder. node is started directly, so that the
# signal sent to $recorder reaches it.
start_recorder() {
	name=$1
	shift
	node bin/pageref.js record -o "$out/$name.pgref" "$@" > "$out/$name-record.log" 2>&1 &
	recorder=$!
}

# stop_recorder PID NAME: SIGINT, then its exit status into NAME.rc.
stop_recorder() {
	kill -INT "$1"
	wait "$1"
	echo $? > "$out/$2.rc"
}

# --- one workload, three recorders: every event, 1 in 8 pfns, per-pfn totals --
mkfifo "$TMPDIR/go"
build/Release/page-churn 8 4 < "$TMPDIR/go" > "$out/churn.log" 2>&1 &
churn=$!
start_recorder full --pid $churn --no-stacks
full=$recorder
start_recorder sampled --pid $churn --no-stacks --sample-pfn 8
sampled=$recorder
start_recorder aggregate --pid $churn --aggregate
aggregate=$recorder
if wait_attached "$out/full-record.log" $full && wait_attached "$out/sampled-record.log" $sampled &&
	wait_attached "$out/aggregate-record.log" $aggregate; then
	echo go > "$TMPDIR/go"
	wait $churn
	echo $? > "$out/churn.rc"
else
	echo "a recorder did not attach" >> "$out/churn.log"
	kill $churn
fi
stop_recorder $full full
stop_recorder $sampled sampled
stop_recorder $aggregate aggregate

# --- the same events attached two ways: tp_btf and the perf tracepoint ------
mkfifo "$TMPDIR/go4"
build/Release/page-churn 4 2 < "$TMPDIR/go4" > /dev/null 2>&1 &
churn=$!
start_recorder by-btf --pid $churn --attach btf
btf=$recorder
start_recorder by-tracepoint --pid $churn --attach tracepoint
tracepoint=$recorder
if wait_attached "$out/by-btf-record.log" $btf && wait_attached "$out/by-tracepoint-record.log" $tracepoint; then
	echo go > "$TMPDIR/go4"
	wait $churn
else
	kill $churn
fi
stop_recorder $btf by-btf
stop_recorder $tracepoint by-tracepoint

# --- a ring buffer of one page: most records are dropped, and counted -------
mkfifo "$TMPDIR/go2"
build/Release/page-churn 8 2 < "$TMPDIR/go2" > /dev/null 2>&1 &
churn=$!
start_recorder tiny --pid $churn --no-stacks --buffer-size 4K
tiny=$recorder
# The same, told to give up after 100 drops: it stops by itself, exit status 1.
start_recorder max-drops --pid $churn --no-stacks --buffer-size 4K --max-drops 100
if wait_attached "$out/tiny-record.log" $tiny && wait_attached "$out/max-drops-record.log" $recorder; then
	echo go > "$TMPDIR/go2"
	wait $churn
else
	kill $churn
fi
stop_recorder $tiny tiny
wait $recorder
echo $? > "$out/max-drops.rc"

# --- stacks on 1 in 4 pfns; beside it, --raw-pointers on the same workload --
# (a second recorder costs the guest less than a second workload would)
mkfifo "$TMPDIR/go3"
build/Release/page-churn 4 2 < "$TMPDIR/go3" > /dev/null 2>&1 &
churn=$!
start_recorder sampled-stacks --pid $churn --stacks sampled --stack-sample 4
stacks=$recorder
start_recorder raw-pointers --pid $churn --no-stacks --raw-pointers
raw=$recorder
if wait_attached "$out/sampled-stacks-record.log" $stacks && wait_attached "$out/raw-pointers-record.log" $raw; then
	echo go > "$TMPDIR/go3"
	wait $churn
else
	kill $churn
fi
stop_recorder $stacks sampled-stacks
stop_recorder $raw raw-pointers

# --- the production mode: CMA ranges only, totals, stacks once armed ------
ls /sys/kernel/debug/cma > "$out/cma-areas.txt" 2>&1
for area in /sys/kernel/debug/cma/*; do
	echo "$(basename "$area") $(cat "$area/base_pfn") $(cat "$area/count")" >> "$out/cma-areas.txt"
done
start_recorder armed --cma --aggregate --stacks armed
if wait_attached "$out/armed-record.log" $recorder; then
	PINNED_PFNS_FILE="$out/pinned.txt" sh vm/cma-workload.sh build/Release/vmsplice-hold > "$out/cma-workload.log" 2>&1
	echo $? > "$out/cma-workload.rc"
fi
stop_recorder $recorder armed
