#!/bin/sh
# Make CMA allocations fail on held pages, inside a test guest (VM tests, `pageref demo`).
#
# usage: cma-workload.sh HOLD_BINARY MIB ATTEMPTS PAGES_PER_ATTEMPT
#
# Starts HOLD_BINARY MIB (vm/workloads/vmsplice-hold.c: pins MIB of anonymous
# memory, much of it inside the CMA area), waits for its "holding" line, then
# writes PAGES_PER_ATTEMPT to /sys/kernel/debug/cma/reserved/alloc ATTEMPTS
# times. Prints one line:
#   cma-workload: held_pages=N attempts=A ok=K failed=F pages_per_attempt=P seconds=S
# Exits non-zero, with a message on stderr, when the CMA debugfs files or the
# holder are missing or misbehave, so a caller never mistakes "nothing ran" for
# "nothing failed".
#
# Cost under TCG, 512 MiB guest, cma=256M, holding 300 MiB, 8192 pages: on 6.1
# a failed attempt takes about 60 s, because cma_alloc() retries at every next
# pfn (align 0) and so fails isolation ~40,000 times; keep ATTEMPTS small.

set -u

CMA=/sys/kernel/debug/cma/reserved

die() {
	echo "cma-workload: $*" >&2
	exit 1
}

[ $# -eq 4 ] || die "usage: cma-workload.sh HOLD_BINARY MIB ATTEMPTS PAGES_PER_ATTEMPT"
hold_bin=$1 mib=$2 attempts=$3 pages=$4
for n in "$mib" "$attempts" "$pages"; do
	case $n in
	'' | *[!0-9]*) die "MIB, ATTEMPTS and PAGES_PER_ATTEMPT must be whole numbers, not '$n'" ;;
	esac
done
[ -x "$hold_bin" ] || die "holder $hold_bin is not an executable file"

# debugfs has shown the CMA files late (or not at all, when cma= could not be
# reserved): wait a little, then say exactly what is missing.
i=0
while [ ! -e "$CMA/alloc" ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
if [ ! -e "$CMA/alloc" ]; then
	[ -d /sys/kernel/debug/cma ] || die "/sys/kernel/debug/cma missing (debugfs not mounted, or no CONFIG_CMA_DEBUGFS)"
	die "$CMA/alloc missing after 5 s (is there cma= on the kernel command line? grep CmaTotal /proc/meminfo: $(grep CmaTotal /proc/meminfo))"
fi

now() { date +%s.%N; }
started=$(now)

hold_out=$(mktemp "${TMPDIR:-/tmp}/cma-hold.XXXXXX") || die "mktemp failed"
"$hold_bin" "$mib" >"$hold_out" 2>&1 &
hold_pid=$!
# Whatever happens from here on, do not leave pages pinned behind us.
trap 'kill -TERM $hold_pid 2>/dev/null; rm -f "$hold_out"' EXIT

# Faulting in and vmsplicing 300 MiB took 1.4 s under TCG; allow far more.
i=0
until grep -q '^holding' "$hold_out"; do
	kill -0 $hold_pid 2>/dev/null || die "holder exited before holding: $(cat "$hold_out")"
	[ $i -lt 1200 ] || die "holder did not report holding within 120 s"
	sleep 0.1
	i=$((i + 1))
done
held=$(sed -n 's/^holding \([0-9]*\) pages.*/\1/p' "$hold_out")

# Successful allocations are freed only after the last attempt: freed at once,
# the next attempt would reuse the same clear range and never meet a held page.
ok=0 failed=0 n=0
while [ $n -lt "$attempts" ]; do
	# A failed cma_alloc() makes the write itself fail (the error text varies by
	# kernel, e.g. "I/O error"); only the status matters here.
	if echo "$pages" >"$CMA/alloc" 2>/dev/null; then
		ok=$((ok + 1))
	else
		failed=$((failed + 1))
	fi
	n=$((n + 1))
done

# The debugfs file keeps a list of what `alloc` took; `free` gives back that many
# pages from it.
if [ $ok -gt 0 ]; then
	echo $((ok * pages)) >"$CMA/free" || die "could not free $((ok * pages)) pages via $CMA/free"
fi

kill -TERM $hold_pid
wait $hold_pid
hold_rc=$?
trap - EXIT
rm -f "$hold_out"
[ $hold_rc -eq 0 ] || die "holder exited with status $hold_rc"

seconds=$(awk -v a="$started" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
echo "cma-workload: held_pages=$held attempts=$attempts ok=$ok failed=$failed pages_per_attempt=$pages seconds=$seconds"
