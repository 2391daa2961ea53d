#!/bin/sh
# Runs inside a test kernel (test/bench/kernel.ts boots it): the wall time of
# one page-churning workload with nothing attached, under ftrace, bpftrace and
# pageref's modes, the modes interleaved and their order rotated each round.
# Leaves bench.tsv (and logs, report JSON) in $PAGEREF_OUT; decides nothing.
#
# usage: sh vm/bench-guest.sh MIB CHURN_ROUNDS ROUNDS RUNS [MODE...]
# Each round starts every tracer once and runs the workload RUNS times under it.
#
# bench.tsv, one tab-separated line per fact:
#   ns      ROUND MODE NS               the workload's own elapsed time, one per run
#   cpu     ROUND MODE MS               CPU time the tracer process used during that run
#   attach  ROUND MODE START END        /proc/uptime when started, when attached
#   error   ROUND MODE TEXT             the mode could not be measured this round
#   note    ROUND MODE TEXT             what the tracer said (events, drops, overruns)
#   report  ROUND MODE FILE             `pageref report --json` of that capture
set -u
out="${PAGEREF_OUT:?is set in the test VM only: test/bench/kernel.ts runs this script}"
T=/sys/kernel/tracing
MIB=$1
CHURN_ROUNDS=$2
ROUNDS=$3
RUNS=$4
shift 4
[ $# -gt 0 ] || set -- base ftrace ftraceStack bpftrace bpftraceStack pageref pagerefStack pagerefSampled pagerefAggregate pagerefServe pagerefFiltered pagerefHeld pagerefStackHeld
MODES="$*"
TSV="$out/bench.tsv"
: > "$TSV"
# Modes whose tracer refused its arguments (exit status 2): not retried.
REFUSED=' '

. test/vm/guest-lib.sh

uptime_s() { cut -d' ' -f1 /proc/uptime; }

fact() {
	printf '%s\t%s\t%s\t%s\n' "$@" >> "$TSV"
}

# last_line FILE: for an error fact, the last line the tool said about itself
# ("pageref ...", "ERROR: ..."), or of a crash ("Error: ..."), else the last line.
last_line() {
	line=$(grep -E '^(pageref|ERROR|[A-Za-z]*Error)' "$1" 2>/dev/null | tail -n 1)
	[ -n "$line" ] || line=$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1)
	printf '%s' "$line" | tr '\t' ' '
}

TICK_MS=$((1000 / $(getconf CLK_TCK)))

# cpu_ms PID: user + system time of PID (all its threads) so far.
cpu_ms() {
	awk -v ms=$TICK_MS '{ print ($14 + $15) * ms }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# churn ROUND MODE [TRACER_PID]: one timed run of the workload.
churn() {
	[ $# -gt 2 ] && before=$(cpu_ms "$3")
	build/Release/page-churn "$MIB" "$CHURN_ROUNDS" -t < /dev/null > "$TMPDIR/churn.out" 2>&1
	rc=$?
	ns=$(sed -n 's/^elapsed \([0-9][0-9]*\) ns$/\1/p' "$TMPDIR/churn.out")
	if [ $rc -eq 0 ] && [ -n "$ns" ]; then
		fact ns "$1" "$2" "$ns"
		# The tracer's own work while the workload ran: on TCG's one host
		# thread it takes turns with the workload, so it is in the time too.
		[ $# -gt 2 ] && fact cpu "$1" "$2" $(($(cpu_ms "$3") - before))
	else
		fact error "$1" "$2" "page-churn exited $rc: $(last_line "$TMPDIR/churn.out")"
	fi
}

# churn_held_runs ROUND MODE TRACER_PID: the workload RUNS times with the
# tracer process stopped (SIGSTOP) during each run and let go between runs,
# as ftrace's buffer is read only after its runs: the kernel side's cost
# alone, without the reader's turns on TCG's one host thread. The ring must
# hold a whole run's records (the notes say if one was dropped).
churn_held_runs() {
	n=0
	while [ $n -lt "$RUNS" ]; do
		kill -STOP "$3"
		churn "$1" "$2"
		kill -CONT "$3"
		# Time to drain the run's records before the next one (about a second under TCG).
		sleep 5
		n=$((n + 1))
	done
}

# churn_runs ROUND MODE [TRACER_PID]: the workload RUNS times, under whatever is attached.
# The first run after an attach is slower for the pageref modes that stream
# records (V8 compiling the decoding, presumably), so the host takes the fastest.
churn_runs() {
	n=0
	while [ $n -lt "$RUNS" ]; do
		churn "$@"
		n=$((n + 1))
	done
}

# stop PID: SIGINT, up to 120 s to finish, then SIGKILL; returns its exit status.
stop() {
	kill -INT "$1" 2>/dev/null
	i=0
	# sleep is a foreground command, so the shell reaps the tracer while it waits.
	while kill -0 "$1" 2>/dev/null && [ $i -lt 1200 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null
	wait "$1"
}

# attached_probes PID: how many page_ref tracepoints PID has a BPF program on.
attached_probes() {
	bpftool perf show 2>/dev/null | grep "^pid $1 " | grep -c 'tracepoint  *page_ref_'
}

# --- the modes ---------------------------------------------------------------

run_base() {
	churn_runs "$1" base
}

# run_ftrace ROUND MODE STACKTRACE(0|1)
run_ftrace() {
	echo "$3" > $T/options/stacktrace
	echo 1 > $T/events/page_ref/enable
	n=0
	while [ $n -lt "$RUNS" ]; do
		echo > $T/trace
		churn "$1" "$2"
		# overrun > 0: the buffer wrapped (ftrace kept writing, over its oldest events)
		fact note "$1" "$2" "$(cat $T/per_cpu/cpu*/stats | awk '/^entries:/ { e += $2 } /^overrun:/ { o += $2 } END { printf "%d entries, %d overrun", e, o }')"
		n=$((n + 1))
	done
	echo 0 > $T/events/page_ref/enable
	echo 0 > $T/options/stacktrace
	echo > $T/trace
}

# run_bpftrace ROUND MODE PROGRAM
run_bpftrace() {
	log="$TMPDIR/bpftrace.log"
	start=$(uptime_s)
	# Room for every pfn the guest has (twice its pages): bpftrace's default of 4096 keys
	# would fill up, and failed updates are cheaper than the real thing. The
	# stack map keeps the default (a few hundred distinct stacks).
	if [ "$2" = bpftrace ]; then
		BPFTRACE_MAP_KEYS_MAX=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 2)) bpftrace -e "$3" > "$log" 2>&1 &
	else
		bpftrace -e "$3" > "$log" 2>&1 &
	fi
	tracer=$!
	# "Attaching N probes..." comes before the attaching: wait until every
	# page_ref tracepoint has bpftrace's program on it.
	want=$(ls -d $T/events/page_ref/page_ref_* | wc -l)
	i=0
	while [ "$(attached_probes $tracer)" -lt "$want" ] && kill -0 $tracer 2>/dev/null && [ $i -lt 1800 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if [ "$(attached_probes $tracer)" -ge "$want" ]; then
		fact attach "$1" "$2" "$start	$(uptime_s)"
		churn_runs "$1" "$2" $tracer
		stop $tracer
	else
		if kill -0 $tracer 2>/dev/null; then
			fact error "$1" "$2" "bpftrace did not attach to $want page_ref tracepoints within 180 s: $(last_line "$log")"
			stop $tracer
		else
			wait $tracer
			rc=$?
			fact error "$1" "$2" "bpftrace exited $rc: $(last_line "$log")"
		fi
	fi
	fact note "$1" "$2" "$(head -n 1 "$log")"
}

# run_pageref ROUND MODE COMMAND FLAGS...: pageref COMMAND (record, into a
# capture here, or serve, not scraped) started, attached, the workload run
# under it, stopped. Modes named *Held stop it during each run.
run_pageref() {
	round=$1
	mode=$2
	command=$3
	shift 3
	runs=churn_runs
	case $mode in *Held) runs=churn_held_runs ;; esac
	capture="$TMPDIR/bench.pgref"
	log="$out/$command-$mode-$round.log"
	rm -f "$capture"
	[ "$command" = record ] && set -- -o "$capture" "$@"
	start=$(uptime_s)
	node bin/pageref.js "$command" "$@" > "$log" 2>&1 &
	tracer=$!
	if wait_attached "$log" $tracer; then
		fact attach "$round" "$mode" "$start	$(uptime_s)"
		$runs "$round" "$mode" $tracer
		stop $tracer
		rc=$?
		[ $rc -eq 0 ] || fact error "$round" "$mode" "pageref $command exited $rc after the run: $(last_line "$log")"
		fact note "$round" "$mode" "$(grep 'stopped by' "$log" | tr '\t' ' ')"
		if [ "$mode" = pageref ] && [ -s "$capture" ]; then
			node bin/pageref.js report --json "$capture" > "$out/report-$round.json" 2> "$out/report-$round.err" &&
				fact report "$round" "$mode" "report-$round.json"
		fi
	elif kill -0 $tracer 2>/dev/null; then
		fact error "$round" "$mode" "pageref $command did not attach within 60 s: $(last_line "$log")"
		stop $tracer
	else
		wait $tracer
		rc=$?
		fact error "$round" "$mode" "pageref $command exited $rc: $(last_line "$log")"
		# A usage error will not go away in the next round.
		[ $rc -eq 2 ] && REFUSED="$REFUSED$mode "
	fi
	rm -f "$capture"
}

run_mode() {
	case "$REFUSED" in
	*" $2 "*)
		fact error "$1" "$2" "skipped: refused its arguments in an earlier round"
		return
		;;
	esac
	case "$2" in
	base) run_base "$1" ;;
	ftrace) run_ftrace "$1" "$2" 0 ;;
	ftraceStack) run_ftrace "$1" "$2" 1 ;;
	bpftrace) run_bpftrace "$1" "$2" 'tracepoint:page_ref:* { @[args->pfn] = count(); } END { clear(@); }' ;;
	bpftraceStack) run_bpftrace "$1" "$2" 'tracepoint:page_ref:* { @[kstack] = count(); } END { clear(@); }' ;;
	pageref) run_pageref "$1" "$2" record --no-stacks ;;
	pagerefStack) run_pageref "$1" "$2" record ;;
	pagerefSampled) run_pageref "$1" "$2" record --no-stacks --sample-pfn 64 ;;
	pagerefAggregate) run_pageref "$1" "$2" record --aggregate ;;
	pagerefServe) run_pageref "$1" "$2" serve ;;
	# Every event filtered out by pid (none has this one, above pid_max's
	# default): what a program that runs and returns at once costs.
	pagerefFiltered) run_pageref "$1" "$2" record --no-stacks --pid 4194303 ;;
	# The first two with the recorder stopped during each run (see churn_held_runs).
	pagerefHeld) run_pageref "$1" "$2" record --no-stacks --buffer-size 64M ;;
	pagerefStackHeld) run_pageref "$1" "$2" record --buffer-size 64M ;;
	# The same two, with page_ref attached as perf tracepoints instead of tp_btf:
	# how the attach type was chosen (BENCHMARKS.md).
	pagerefTracepoint) run_pageref "$1" "$2" record --no-stacks --attach tracepoint ;;
	pagerefAggregateTracepoint) run_pageref "$1" "$2" record --aggregate --attach tracepoint ;;
	*) fact error "$1" "$2" "unknown mode" ;;
	esac
}

# --- the rounds ---------------------------------------------------------------

# serve listens on loopback, which is down until brought up.
ip link set lo up 2>/dev/null || busybox ip link set lo up

# Large enough for one run's events with stacks on the CPU that runs the
# workload; `overrun` in the notes says if it was not.
echo 65536 > $T/buffer_size_kb

fact note 0 workload "page-churn $MIB $CHURN_ROUNDS"
fact note 0 kernel "$(uname -r), bpf_jit_enable=$(cat /proc/sys/net/core/bpf_jit_enable 2>/dev/null), $(nproc) CPUs, $(awk '/^MemTotal:/ { print $2 / 1024 }' /proc/meminfo) MiB"

# The first runs after boot are slower (TCG translates the code once).
churn 0 warmup
churn 0 warmup

count=$(echo $MODES | wc -w)
round=1
while [ $round -le "$ROUNDS" ]; do
	# Rotate the order by one each round, so no mode always follows the same one.
	set -- $MODES
	i=0
	while [ $i -lt $(((round - 1) % count)) ]; do
		first=$1
		shift
		set -- "$@" "$first"
		i=$((i + 1))
	done
	for mode in "$@"; do
		run_mode $round "$mode"
	done
	round=$((round + 1))
done
echo 1408 > $T/buffer_size_kb
exit 0
