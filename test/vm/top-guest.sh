#!/bin/sh
# Runs inside a test kernel (test/vm/top.test.ts boots it): pageref top
# --batch, as text and as JSON lines, over the vmsplice CMA workload.
# Everything the host test checks is left in $PAGEREF_OUT; nothing here
# decides pass or fail.
set -u
out="$PAGEREF_OUT"

. test/vm/guest-lib.sh

# top_over_workload NAME TOP-ARGS...: pageref top in the background (node
# started directly, so that SIGINT reaches it) printing a snapshot every 2 s
# into NAME.out; once it has attached, the workload pins its pages, makes
# the allocation fail and keeps the pins 8 s more, during which top prints
# at least three snapshots; then SIGINT stops top. One top at a time: two
# tracers and the 300 MiB holder do not fit in the guest's 512 MiB.
# --comm vmsplice-hold, as one would point top at a suspect: unfiltered, the
# guest makes 20,000 page_ref events a second, more than top takes on the
# one host thread that emulates both vCPUs (it fell 10 s behind, and a 64 MiB
# ring buffer overflowed). Isolation and CMA events pass the filter.
top_over_workload() {
	name=$1
	shift
	node bin/pageref.js top --batch 1000 -d 2 --buffer-size 64M --comm vmsplice-hold "$@" > "$out/$name.out" 2> "$out/$name.log" &
	top=$!
	if wait_attached "$out/$name.log" $top; then
		CMA_HOLD_SECONDS=8 PINNED_PFNS_FILE="$out/$name-pinned.txt" sh vm/cma-workload.sh build/Release/vmsplice-hold \
			> "$out/$name-workload.log" 2> "$out/$name-workload.err" &
		workload=$!
		if wait_for "holding the pins" "$out/$name-workload.err" $workload; then
			sleep 7
		fi
		wait $workload
		echo $? > "$out/$name-workload.rc"
	else
		echo "pageref top did not attach" >> "$out/$name.log"
	fi
	kill -INT $top
	wait $top
	echo $? > "$out/$name.rc"
}

top_over_workload holders --view holders --sort kind --rows 10
top_over_workload json --json --view holders --sort kind --rows 10

# --- nothing is left loaded --------------------------------------------------
bpftool prog show > "$out/bpf-progs-after.txt" 2>&1
exit 0
