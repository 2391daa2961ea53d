# Shell functions to run vm/cma-workload.sh with its gates, for guest
# scripts (sourced, cwd = the checkout): `pageref demo` and the VM tests.

# wait_alive PID SECONDS COMMAND...: until COMMAND succeeds (status 0), PID
# dies or SECONDS pass (status 1), polled every 0.1 s.
wait_alive() {
	alive_pid=$1
	alive_polls=$(($2 * 10))
	shift 2
	i=0
	while [ $i -lt $alive_polls ]; do
		"$@" && return 0
		kill -0 "$alive_pid" 2>/dev/null || return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# wait_for TEXT LOG PID [SECONDS]: until LOG says TEXT (or PID died), at most SECONDS (60).
wait_for() { wait_alive "$3" "${4:-60}" grep -q "$1" "$2"; }

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

# open_fifo_gate FIFO [LINE]: writes LINE (go) to FIFO; gives up after 10 s
# (opening a fifo blocks until its reader comes, and a dead workload never comes).
open_fifo_gate() { timeout 10 sh -c 'echo "$2" >"$1"' sh "$1" "${2:-go}"; }

# cma_open_gate: lets the workload pin and allocate. Called also when the
# tracer failed, so that the workload ends rather than waits for ever.
cma_open_gate() { open_fifo_gate "$cma_gate"; }

# cma_allocate_again: a workload started with CMA_RELEASE_GATE makes one more
# allocation over the same pins; see wait_for "allocation failed again".
cma_allocate_again() { open_fifo_gate "$cma_release_gate" again; }

# cma_release: lets a workload started with CMA_RELEASE_GATE unpin and end.
# Called whatever happened before, so that it never waits for ever.
cma_release() { open_fifo_gate "$cma_release_gate"; }
