#!/bin/sh
# Runs inside a test kernel (test/vm/kernels.test.ts boots it): pageref's
# doctor, the ftrace oracle run and the CMA run. Everything the host test
# checks is left in $PAGEREF_OUT; nothing here decides pass or fail.
set -u
out="$PAGEREF_OUT"
T=/sys/kernel/tracing
# node runs pageref directly, never through a shell function: a backgrounded
# function is a subshell, and a signal sent to its pid would never reach node.

. test/vm/guest-lib.sh

# --- doctor --------------------------------------------------------------
node bin/pageref.js doctor --json > "$out/doctor.json" 2> "$out/doctor.err"
echo $? > "$out/doctor.rc"

# --- oracle: pageref --pid against the kernel's own ftrace, same pid -------
traced oracle 8 4
grep -v '^#' $T/trace > "$out/ftrace.txt"
echo > $T/trace
echo 1408 > $T/buffer_size_kb

# --- filters: --comm and --pfn together, in the kernel ----------------------
mkfifo "$TMPDIR/go2"
build/Release/page-churn 8 2 < "$TMPDIR/go2" > /dev/null 2>&1 &
churn=$!
node bin/pageref.js record -o "$out/filters.pgref" --comm page-churn --pfn 0x0-0x18000 > "$out/filters-record.log" 2>&1 &
recorder=$!
if wait_attached "$out/filters-record.log" $recorder; then
	echo go > "$TMPDIR/go2"
	wait $churn
else
	kill $churn
fi
kill -INT $recorder
wait $recorder
echo $? > "$out/filters-record.rc"

# --- CMA: pages pinned by vmsplice make CMA allocations fail --------------
# The holder faults in its memory before the recorder starts (cma_start_gated).
if cma_start_gated "$out/cma-workload.log" PINNED_PFNS_FILE="$out/pinned.txt"; then
	node bin/pageref.js record -o "$out/cma.pgref" --buffer-size 64M > "$out/cma-record.log" 2>&1 &
	recorder=$!
	wait_attached "$out/cma-record.log" $recorder || echo "pageref record did not attach" >> "$out/cma-record.log"
	# The tightest moment: holder, recorder and its ring buffers all in memory.
	grep -E '^(MemTotal|MemFree|MemAvailable|CmaTotal|CmaFree):' /proc/meminfo > "$out/meminfo-cma.txt"
	cma_open_gate
	wait $workload
	echo $? > "$out/cma-workload.rc"
	kill -INT $recorder
	wait $recorder
	echo $? > "$out/cma-record.rc"
fi

# --- live blame over the same workload: records, then reports on Ctrl-C ----
# Alone: two tracers and the 300 MiB holder do not fit in the guest's 512 MiB.
if cma_start_gated "$out/live-blame-workload.log"; then
	node bin/pageref.js blame --json --buffer-size 64M > "$out/live-blame.json" 2> "$out/live-blame.log" &
	live_blame=$!
	wait_for "recording" "$out/live-blame.log" $live_blame
	cma_open_gate
	wait $workload
	echo $? > "$out/live-blame-workload.rc"
	kill -INT $live_blame
	wait $live_blame
	echo $? > "$out/live-blame.rc"
fi

# --- a flooded events ring costs page_ref records, never the failures ------
# A one-page events ring (42 records) and page-churn's events beside the
# workload: page_ref records are dropped, isolation and CMA records, which
# have a ring of their own, are not.
if cma_start_gated "$out/flood-workload.log"; then
	node bin/pageref.js record -o "$out/flood.pgref" --buffer-size 4K > "$out/flood-record.log" 2>&1 &
	recorder=$!
	wait_attached "$out/flood-record.log" $recorder || echo "pageref record did not attach" >> "$out/flood-record.log"
	build/Release/page-churn 16 4 < /dev/null > /dev/null 2>&1 &
	churn=$!
	cma_open_gate
	wait $workload
	echo $? > "$out/flood-workload.rc"
	wait $churn
	kill -INT $recorder
	wait $recorder
	echo $? > "$out/flood-record.rc"
fi

# --- nothing is left loaded --------------------------------------------------
bpftool prog show > "$out/bpf-progs-after.txt" 2>&1
# The kernel's word if something was killed for memory (the host test shows it).
dmesg | grep -iE -A3 'invoked oom-killer|out of memory' > "$out/oom.txt"
bpftool link show > "$out/bpf-links-after.txt" 2>&1
exit 0
