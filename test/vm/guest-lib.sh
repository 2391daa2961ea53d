# Shell functions for the guest scripts of the VM tests (sourced, cwd = the checkout).

# wait_for TEXT LOG PID [SECONDS]: until LOG says TEXT (or PID died), at most SECONDS (60).
wait_for() {
	i=0
	while [ $i -lt $((${4:-60} * 10)) ]; do
		grep -q "$1" "$2" && return 0
		kill -0 "$3" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# wait_attached LOG PID: until pageref record says it attached (or died).
wait_attached() { wait_for "attached" "$1" "$2"; }

# wait_until SECONDS COMMAND...: until COMMAND succeeds, at most SECONDS
# (polled every 0.5 s); its status is COMMAND's last.
wait_until() {
	limit=$(($1 * 2))
	shift
	i=0
	until "$@"; do
		[ $i -ge $limit ] && return 1
		sleep 0.5
		i=$((i + 1))
	done
}

# cma_start_gated LOG [VAR=VALUE...]: starts vm/cma-workload.sh in the
# background ($workload), its output in LOG, with the pins gated
# (CMA_PIN_GATE), and waits until the holder has faulted in its memory and
# is ready to pin. Start the tracer after this, then cma_open_gate: the
# fault-in's ~900,000 page_ref events stay out of the trace (with stacks,
# under TCG, they took 37 s on a quiet host and over 120 s on a busy one).
# Pass CMA_RELEASE_GATE="$cma_release_gate" to keep the pins after the
# allocation until cma_release.
cma_release_gate="$TMPDIR/release-gate"
cma_start_gated() {
	cma_log=$1
	shift
	cma_gate="$TMPDIR/pin-gate"
	rm -f "$cma_gate" "$cma_release_gate"
	mkfifo "$cma_gate" "$cma_release_gate"
	env CMA_PIN_GATE="$cma_gate" "$@" sh vm/cma-workload.sh build/Release/vmsplice-hold >"$cma_log" 2>&1 &
	workload=$!
	# As long as the workload's own watchdog: on a busy host the fault-in
	# has taken minutes. If it never gets ready, stop it (and its holder).
	wait_for "ready to pin" "$cma_log" $workload 300 && return 0
	kill $workload 2>/dev/null
	wait $workload
	return 1
}

# open_fifo_gate FIFO: writes a line to FIFO; gives up after 10 s (opening a
# fifo blocks until its reader comes, and a dead workload never comes).
open_fifo_gate() { timeout 10 sh -c 'echo go >"$1"' sh "$1"; }

# cma_open_gate: lets the workload pin and allocate. Called also when the
# tracer failed, so that the workload ends rather than waits for ever.
cma_open_gate() { open_fifo_gate "$cma_gate"; }

# cma_allocate_again: a workload started with CMA_RELEASE_GATE makes one more
# allocation over the same pins; see wait_for "allocation failed again".
cma_allocate_again() { timeout 10 sh -c 'echo again >"$1"' sh "$cma_release_gate"; }

# cma_release: lets a workload started with CMA_RELEASE_GATE unpin and end.
# Called whatever happened before, so that it never waits for ever.
cma_release() { open_fifo_gate "$cma_release_gate"; }

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
