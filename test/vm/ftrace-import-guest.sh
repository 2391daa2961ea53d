#!/bin/sh
# Runs inside a test kernel (test/vm/ftrace-import.test.ts boots it): the
# same page-churn workload traced twice by the kernel's ftrace (page_ref
# events of its pid) and by pageref record --pid at once: first with the
# stacktrace option, read from trace; then without stacks, irq-info off and
# record-tgid on, read from trace_pipe. Everything the host test checks is
# left in $PAGEREF_OUT; nothing here decides pass or fail.
set -u
out="$PAGEREF_OUT"
T=/sys/kernel/tracing

. test/vm/guest-lib.sh

# traced NAME MIB ROUNDS: page-churn under both tracers; ftrace is left off, its buffer full.
traced() {
	name=$1
	mkfifo "$TMPDIR/go-$name"
	build/Release/page-churn "$2" "$3" < "$TMPDIR/go-$name" > "$out/$name-churn.log" 2>&1 &
	churn=$!
	echo 0 > $T/tracing_on
	echo 32768 > $T/buffer_size_kb
	echo > $T/trace
	echo $churn > $T/set_event_pid
	for event in $T/events/page_ref/page_ref_*; do echo 1 > "$event/enable"; done
	echo 1 > $T/tracing_on
	node bin/pageref.js record -o "$out/$name.pgref" --pid $churn > "$out/$name-record.log" 2>&1 &
	recorder=$!
	if wait_attached "$out/$name-record.log" $recorder; then
		echo go > "$TMPDIR/go-$name"
		wait $churn
		echo $? > "$out/$name-churn.rc"
	else
		echo "pageref record did not attach" >> "$out/$name-record.log"
		kill $churn
	fi
	echo 0 > $T/tracing_on
	kill -INT $recorder
	wait $recorder
	echo $? > "$out/$name-record.rc"
	cat $T/per_cpu/cpu*/stats > "$out/$name-ftrace-stats.txt"
	for event in $T/events/page_ref/page_ref_*; do echo 0 > "$event/enable"; done
	echo > $T/set_event_pid
}

# --- with stacks: the stacktrace option's <stack trace> blocks, read from trace ---
echo 1 > $T/options/stacktrace
traced stacks 4 2
cat $T/trace > "$out/stacks-trace.txt"
echo 0 > $T/options/stacktrace

# --- without stacks: no irq-info columns, a tgid column, read from trace_pipe ---
echo 0 > $T/options/irq-info
echo 1 > $T/options/record-tgid
traced pipe 8 2
# trace_pipe blocks once it is empty: read what is there, then stop the reader.
cat $T/trace_pipe > "$out/pipe-trace.txt" &
reader=$!
sleep 5
kill $reader
wait $reader 2>/dev/null
echo 1 > $T/options/irq-info
echo 0 > $T/options/record-tgid
echo > $T/trace
echo 1408 > $T/buffer_size_kb
exit 0
