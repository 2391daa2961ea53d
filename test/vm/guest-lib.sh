# Shell functions for the guest scripts of the VM tests (sourced, cwd = the checkout).

. vm/cma-gate.sh

# wait_attached LOG PID: until pageref record says it attached (or died).
wait_attached() { wait_for "attached" "$1" "$2"; }

# traced NAME MIB ROUNDS: page-churn under both tracers, the kernel's ftrace
# (page_ref events of its pid, 32 MiB per CPU) and pageref record --pid; it
# waits on a fifo until both are attached. Leaves NAME.pgref, NAME-*.log,
# NAME-*.rc and NAME-ftrace-stats.txt in $out; ftrace is left off with its
# buffer full, for the caller to read. Needs T=/sys/kernel/tracing.
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
