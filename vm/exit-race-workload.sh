#!/bin/sh
# A CMA allocation runs while a process exits, inside a test guest: the case
# of the commit that added the page_ref tracepoints, where isolation failed
# at a page still held by the exit path's batched freeing (exit_mmap ->
# tlb_finish_mmu -> free_pages_and_swap_cache -> release_pages).
#
# usage: exit-race-workload.sh EXIT_RACE_BINARY [MIB [HOG_MS [CHUNK]]]
#
# EXIT_RACE_BINARY is vm/workloads/exit-race.c. It faults in MIB (default
# 200) of anonymous memory, much of it in the CMA area, on the last CPU. On
# SIGUSR1 it starts a SCHED_FIFO hog on that CPU for HOG_MS (default 6000; 0
# for none) and exits; RT throttling, set here to RT_RUNTIME_US (default
# 90000) of every 100 ms and restored afterwards, leaves the exit short
# slices, so it is preempted between them with pages gathered in its
# mmu_gather. Once its mm is gone from /proc/PID/status (exit_mm() has handed
# it to mmput -> exit_mmap) and it has unmapped GATHER_KB (default 4096) of
# memory, the CMA area is allocated over:
#  - CHUNK 0 (default): ONE allocation of maxchunk - 32 pages (33 start
#    positions, each over most of the area), freed if it succeeded;
#  - CHUNK > 0: a sweep of CHUNK pages at a time from the bottom of the area
#    up, until it is covered or 3 allocations failed, then all freed. Small
#    allocations test isolation soon after migrating, while the pages the
#    exit gathered are still in its batch: this is what reproduces the race
#    (test/vm/exit-path-guest.sh uses 150 MiB, 20000 ms, 512 pages).
#
# Prints one line:
#   exit-race: pid=P pages=N in_cma=K allocation=failed|succeeded|ok=N,failed=M alloc_pages=C anon_kb_before=A anon_kb_after=B seconds=S
# (anon_kb_*: AnonPages of /proc/meminfo around the allocation: the exit was
# still under way if `before` is well above what is left once it ends).
# Exits non-zero, with a message on stderr, when the CMA debugfs files or the
# binary are missing or misbehave. Whether the allocation failed, and where,
# is for the caller to judge (from a pageref capture or ftrace).

set -u

. "$(dirname "$0")/cma-lib.sh"
SLACK=32
RT=/proc/sys/kernel

die() {
	echo "exit-race-workload: $*" >&2
	exit 1
}

bin=${1:-}
mib=${2:-200}
hog_ms=${3:-6000}
chunk=${4:-0}
rt_runtime=${RT_RUNTIME_US:-90000}
case $mib$hog_ms$chunk$rt_runtime in '' | *[!0-9]*) die "MIB and HOG_MS must be whole numbers" ;; esac
[ -x "$bin" ] || die "exit-race binary $bin is not an executable file"

cma_wait_ready
for f in base_pfn count maxchunk order_per_bit; do
	[ -r "$CMA/$f" ] || die "$CMA/$f missing"
done
read -r base <$CMA/base_pfn && read -r count <$CMA/count && read -r order <$CMA/order_per_bit ||
	die "cannot read $CMA"
[ "$order" = 0 ] || die "order_per_bit is $order, not 0"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# anon_kb: AnonPages of /proc/meminfo, with builtins only.
anon_kb() {
	while read -r key value _; do
		[ "$key" = AnonPages: ] && echo "$value" && return
	done </proc/meminfo
	echo '?'
}
started=$(now_ms)

dir=${TMPDIR:-/tmp}/exit-race.$$
mkdir -m 700 "$dir" && mkfifo "$dir/out" || die "cannot make fifo $dir/out"

old_runtime='' old_period=''
if [ "$hog_ms" -gt 0 ]; then
	# Not `read <file`: a sysctl file reads as empty past offset 0, and the
	# shell's read takes a byte at a time.
	old_runtime=$(cat $RT/sched_rt_runtime_us) && old_period=$(cat $RT/sched_rt_period_us) ||
		die "cannot read $RT/sched_rt_*"
	# Runtime first: it may not exceed the period.
	echo "$rt_runtime" >$RT/sched_rt_runtime_us && echo 100000 >$RT/sched_rt_period_us ||
		die "cannot set RT throttling"
fi
restore() {
	if [ -n "$old_period" ]; then
		echo "$old_period" >$RT/sched_rt_period_us
		echo "$old_runtime" >$RT/sched_rt_runtime_us
	fi
	rm -rf "$dir"
}

"$bin" "$mib" --hog-ms "$hog_ms" --cma-range "$base-$((base + count))" >"$dir/out" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; restore' EXIT
exec 3<"$dir/out"
line=''
IFS= read -r line <&3
case $line in
ready*) ;;
*) wait $pid; die "exit-race did not report ready (status $?): $line" ;;
esac
pages=${line#ready }
pages=${pages%% *}
in_cma=${line#*, }
in_cma=${in_cma%% *}

anon_start=$(anon_kb)
kill -USR1 $pid
IFS= read -r line <&3
[ "$line" = exiting ] || die "exit-race said '$line', not 'exiting'"
# exit_mm() clears task->mm before mmput(): VmRSS leaves /proc/PID/status
# then. Wait for that (the exit runs in 10 ms slices), at most 10 s.
i=0
while [ $i -lt 200 ]; do
	gone=yes
	while read -r key _; do
		[ "$key" = VmRSS: ] && gone=no && break
	done </proc/$pid/status 2>/dev/null
	[ $gone = yes ] && break
	sleep 0.05
	i=$((i + 1))
done
[ $gone = yes ] || die "process $pid still had its mm 10 s after SIGUSR1"
# Then until it has unmapped (and so gathered) GATHER_KB, well short of a
# full batch (~9,700 pages, ~38 MiB): AnonPages drops as pages are unmapped,
# before they are freed. At most 10 s more.
i=0
while [ $i -lt 200 ] && [ $((anon_start - $(anon_kb))) -lt "${GATHER_KB:-4096}" ]; do
	sleep 0.05
	i=$((i + 1))
done

before=$(anon_kb)
if [ "$chunk" -eq 0 ]; then
	read -r maxchunk <$CMA/maxchunk || die "cannot read $CMA/maxchunk"
	alloc=$((maxchunk - SLACK))
	cma_alloc_once $alloc
else
	# Sweep: CHUNK pages at a time, kept until the end so that each takes
	# the next free part of the area (first fit), bottom to top. Each
	# allocation migrates little and tests isolation soon after, while the
	# pages the exit gathered just before are still in its batch.
	ok=0 failed=0
	while [ $((ok * chunk)) -lt "$count" ] && [ $failed -lt 3 ]; do
		if echo "$chunk" >"$CMA/alloc" 2>/dev/null; then
			ok=$((ok + 1))
		else
			failed=$((failed + 1))
		fi
	done
	[ $ok -eq 0 ] || echo $((ok * chunk)) >"$CMA/free" || die "could not free $((ok * chunk)) pages via $CMA/free"
	alloc=$chunk result="ok=$ok,failed=$failed"
fi
after=$(anon_kb)

# EOF once both the process and its hog have closed their stdout.
while IFS= read -r line <&3; do :; done
exec 3<&-
wait $pid
rc=$?
trap - EXIT
restore
[ $rc -eq 0 ] || die "exit-race exited with status $rc"
ms=$(($(now_ms) - started))
echo "exit-race: pid=$pid pages=$pages in_cma=$in_cma allocation=$result alloc_pages=$alloc anon_kb_before=$before anon_kb_after=$after seconds=$((ms / 1000)).$((ms % 1000 / 100))"
