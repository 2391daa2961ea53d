#!/bin/sh
# Runs inside a test kernel (test/vm/exit-path.test.ts boots it): the exit
# race of the commit that added the page_ref tracepoints. Each try records
# vm/exit-race-workload.sh with pageref into $PAGEREF_OUT/tryN.pgref; tries
# stop at the first one in which an isolation failed at a page that
# exit-race held and its exit released (test/vm/exit-path-criterion.ts), at
# MAX_TRIES, or once BUDGET_SEC have passed. The host judges the captures; nothing here decides pass or fail.
set -u
out="$PAGEREF_OUT"
T=/sys/kernel/tracing
MAX_TRIES=${MAX_TRIES:-3}
BUDGET_SEC=${BUDGET_SEC:-200}
# MIB HOG_MS CHUNK: see vm/exit-race-workload.sh.
ARGS=${EXIT_RACE_ARGS:-150 20000 512}
export RT_RUNTIME_US=${RT_RUNTIME_US:-99000}

. test/vm/guest-lib.sh

started=$(date +%s)
echo 1 > $T/events/page_isolation/test_pages_isolated/enable || echo "no test_pages_isolated event" >> "$out/tries.txt"
n=1
while [ $n -le "$MAX_TRIES" ]; do
	echo > $T/trace
	# Not a shell function in the background: the signal must reach node.
	node bin/pageref.js record -o "$out/try$n.pgref" --buffer-size 64M > "$out/try$n-record.log" 2>&1 &
	recorder=$!
	if wait_attached "$out/try$n-record.log" $recorder; then
		# shellcheck disable=SC2086 # ARGS is split on purpose
		sh vm/exit-race-workload.sh build/Release/exit-race $ARGS > "$out/try$n-workload.log" 2>&1
		rc=$?
	else
		echo "pageref record did not attach" >> "$out/try$n-record.log"
		rc=attach
	fi
	kill -INT $recorder
	wait $recorder
	record_rc=$?
	fails=$(grep -c 'ret=fail' $T/trace)
	echo "try=$n workload_rc=$rc record_rc=$record_rc isolation_failures=$fails elapsed=$(($(date +%s) - started)) $(tail -n 1 "$out/try$n-workload.log")" >> "$out/tries.txt"
	# A failure on some other process's page (pageref's own node, whose
	# writes of the capture to the 9p share pin its buffers for a moment), or on an exit-race page released by its munmap rather
	# than its exit, is not the race: try again while the budget lasts.
	if [ "$fails" -gt 0 ] && node bin/pageref.js blame "$out/try$n.pgref" --json 2>/dev/null | node dist/test/vm/exit-path-criterion.js; then
		break
	fi
	[ $(($(date +%s) - started)) -ge "$BUDGET_SEC" ] && break
	n=$((n + 1))
done
echo 0 > $T/events/page_isolation/test_pages_isolated/enable
exit 0
