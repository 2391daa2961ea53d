#!/bin/sh
# Make CMA allocations fail on held pages, inside a test guest (VM tests, `pageref demo`).
#
# usage: cma-workload.sh HOLD_BINARY [MIB]
#        cma-workload.sh HOLD_BINARY MIB ATTEMPTS PAGES_PER_ATTEMPT
#
# HOLD_BINARY is vm/workloads/vmsplice-hold.c: it faults in MIB of anonymous
# memory (much of it inside the CMA area once free CMA exceeds half of free
# memory) and pins pages of it with vmsplice.
#
# First form (pinned pages): the holder pins 16 pages in the middle half of
# the CMA area and frees the rest, then ONE allocation of maxchunk - 32 pages
# is made. Such a request fits at only 33 start positions, each covering the
# middle half, so it fails after exactly 33 failed isolations (and 33
# cma_alloc_busy_retry), each at a pinned page: the lowest one, as isolation
# is checked upwards. A cheap, repeatable failure: the allocation takes
# ~0.2 s, the whole script 1 to 5 s under TCG (6.1 and 6.12). MIB defaults
# to 300, for a 512 MiB guest with cma=256M; 100 also worked, but on a fresh
# boot its pages reached only the top of the middle half, and 48 none of it.
# Prints one line:
#   cma-workload: pinned=0xPFN,0xPFN,... allocation=failed pages=N seconds=S
# and, if PINNED_PFNS_FILE is set, writes the pinned pfns there one per line.
# Exits non-zero if the allocation succeeds. With CMA_RELEASE_GATE=FIFO the
# pages stay pinned after the allocation until a line is read from FIFO,
# announced on stderr by "cma-workload: allocation failed; holding the pins
# until a line on FIFO": a test looks at the holders for as long as it needs
# (a fixed hold was too short for a tracer on a busy host). A line "again"
# makes one more allocation of the same size over the same pins first
# (announced by "cma-workload: allocation failed again").
#
# With CMA_PIN_GATE=FIFO (first form), the holder faults in MIB, then the
# script says "cma-workload: ready to pin; waiting for a line on FIFO" on
# stderr, and the holder gives back what it will not pin and pins only after
# a line is read from FIFO. A tracer started in between records the pins, the failed
# allocation and the release, without the ~900,000 page_ref events of the
# fault-in: with stacks, under TCG, those took 37 s on a quiet host and over
# 120 s on a busy one.
#
# Second form (many failures, slow): the holder pins all of MIB, then
# PAGES_PER_ATTEMPT is written to the debugfs `alloc` file ATTEMPTS times.
# Prints one line:
#   cma-workload: held_pages=N attempts=A ok=K failed=F pages_per_attempt=P seconds=S
# Under TCG, 512 MiB guest, cma=256M, holding 300 MiB, 8192 pages: on 6.1 a
# failed attempt takes about 60 s, because cma_alloc() retries at every next
# pfn (align 0) and so fails isolation ~40,000 times; keep ATTEMPTS small.
#
# Both exit non-zero, with a message on stderr, when the CMA debugfs files or
# the holder are missing or misbehave, so a caller never mistakes "nothing ran"
# for "nothing failed".

set -u

. "$(dirname "$0")/cma-lib.sh"
PINS=16
# The single allocation asks for maxchunk - SLACK pages: SLACK + 1 places to try.
SLACK=32

die() {
	echo "cma-workload: $*" >&2
	exit 1
}

whole() {
	case $1 in
	'' | *[!0-9]*) die "$2 must be a whole number, not '$1'" ;;
	esac
}

hold_bin=${1:-}
case $# in
1 | 2) mode=pinned mib=${2:-300} ;;
4) mode=many mib=$2 attempts=$3 pages=$4 ;;
*) die "usage: cma-workload.sh HOLD_BINARY [MIB] | HOLD_BINARY MIB ATTEMPTS PAGES_PER_ATTEMPT" ;;
esac
whole "$mib" MIB
if [ $mode = many ]; then
	whole "$attempts" ATTEMPTS
	whole "$pages" PAGES_PER_ATTEMPT
fi
[ -x "$hold_bin" ] || die "holder $hold_bin is not an executable file"

cma_wait_ready

# Each external command costs a fork and an exec, slow under TCG: shell
# builtins where they do.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
started=$(now_ms)

hold_args=$mib
if [ $mode = pinned ]; then
	for f in base_pfn count maxchunk order_per_bit; do
		[ -r "$CMA/$f" ] || die "$CMA/$f missing"
	done
	read -r base <$CMA/base_pfn && read -r count <$CMA/count && read -r maxchunk <$CMA/maxchunk &&
		read -r order <$CMA/order_per_bit || die "cannot read $CMA"
	# Positions step by 2^order_per_bit pages; the 33 below assume 1.
	[ "$order" = 0 ] || die "order_per_bit is $order, not 0"
	# The largest free chunk [c, c + maxchunk) lies somewhere in the area; a
	# request of maxchunk - SLACK pages starts at c .. c + SLACK, so every try
	# covers [c + SLACK, c + maxchunk - SLACK). That holds the middle half of
	# the area, wherever c is, only if the chunk is at least 3/4 of the area
	# plus SLACK (it is the whole area when nothing else uses CMA).
	[ $((maxchunk * 4)) -ge $((count * 3 + SLACK * 4)) ] ||
		die "largest free CMA chunk is $maxchunk of $count pages; need 3/4 of the area free in one piece"
	pin_lo=$((base + count / 4)) pin_hi=$((base + count * 3 / 4))
	hold_args="$mib --pin-range $pin_lo-$pin_hi --pins $PINS"
	# Gated, the holder gives back what it has outside the CMA area before the
	# tracer starts: the area stays full, and the tracer and its ring buffers
	# get the memory that filling the area took (300 MiB fill 512 MiB).
	[ -z "${CMA_PIN_GATE:-}" ] || hold_args="$hold_args --gate --keep-range $base-$((base + count))"
fi

# The holder's output comes through a fifo that we block on. Polling a file
# instead (grep + sleep 0.1) slowed the holder's page faults several times
# under TCG: each fork and exec in the guest stalls the other vCPU too.
hold_dir=${TMPDIR:-/tmp}/cma-hold.$$
mkdir -m 700 "$hold_dir" && mkfifo "$hold_dir/out" || die "cannot make fifo $hold_dir/out"
# shellcheck disable=SC2086 # hold_args is split on purpose
"$hold_bin" $hold_args >"$hold_dir/out" 2>&1 &
hold_pid=$!
# Faulting in and vmsplicing 300 MiB took 1.4 s under TCG; allow far more. A
# killed holder closes the fifo, and the read below sees the end. The
# watchdog takes its sleep down with it: a stray sleep holding our stdout
# would keep a caller's $(...) or pipe open for the full time.
WATCHDOG_SECONDS=300
start_watchdog() {
	(
		trap 'kill $! 2>/dev/null; exit 0' TERM
		sleep $WATCHDOG_SECONDS &
		wait $!
		kill -TERM $hold_pid
	) >/dev/null 2>&1 &
	watchdog=$!
}
start_watchdog
# Whatever happens from here on, do not leave pages pinned behind us; a
# SIGTERM or SIGINT (a caller giving up) ends the script through exit.
trap 'kill -TERM $hold_pid $watchdog 2>/dev/null; rm -rf "$hold_dir"' EXIT
trap 'exit 1' TERM INT

# read_holder PREFIX: reads the holder's lines until one starts with PREFIX
# (left in $line); dies with what it said if it ends first.
exec 3<"$hold_dir/out"
read_holder() {
	said='' line=''
	while IFS= read -r line <&3; do
		case $line in "$1"*) return 0 ;; esac
		said="$said$line "
		line=''
	done
	kill -TERM $watchdog 2>/dev/null
	wait $hold_pid
	die "holder did not report '$1' (status $?; 143 is the $WATCHDOG_SECONDS s watchdog): $said"
}

if [ -n "${CMA_PIN_GATE:-}" ] && [ $mode = pinned ]; then
	read_holder ready
	kill -TERM $watchdog 2>/dev/null
	echo "cma-workload: ready to pin; waiting for a line on $CMA_PIN_GATE" >&2
	read -r _ <"$CMA_PIN_GATE" || die "cannot read $CMA_PIN_GATE"
	start_watchdog
	kill -USR1 $hold_pid
fi
read_holder holding
kill -TERM $watchdog 2>/dev/null
held=${line#holding }
held=${held%% *}

if [ $mode = pinned ]; then
	pinned=${line#*: }
	[ "$pinned" != "$line" ] || die "holder said '$line', no pfns"
	if [ -n "${PINNED_PFNS_FILE:-}" ]; then
		printf '%s\n' $pinned >"$PINNED_PFNS_FILE" || die "cannot write $PINNED_PFNS_FILE"
	fi
	pages=$((maxchunk - SLACK))
	cma_alloc_once $pages
	if [ -n "${CMA_RELEASE_GATE:-}" ]; then
		echo "cma-workload: allocation $result; holding the pins until a line on $CMA_RELEASE_GATE" >&2
		# "again": one more allocation of the same size, over the same pins.
		while read -r order <"$CMA_RELEASE_GATE" || die "cannot read $CMA_RELEASE_GATE"; [ "$order" = again ]; do
			first_result=$result
			cma_alloc_once $pages
			echo "cma-workload: allocation $result again; holding the pins" >&2
			result=$first_result
		done
	fi
else
	# Successful allocations are freed only after the last attempt: freed at
	# once, the next attempt would reuse the same clear range and never meet a
	# held page.
	ok=0 failed=0 n=0
	while [ $n -lt "$attempts" ]; do
		if echo "$pages" >"$CMA/alloc" 2>/dev/null; then
			ok=$((ok + 1))
		else
			failed=$((failed + 1))
		fi
		n=$((n + 1))
	done
	# The debugfs file keeps a list of what `alloc` took; `free` gives back
	# that many pages from it.
	if [ $ok -gt 0 ]; then
		echo $((ok * pages)) >"$CMA/free" || die "could not free $((ok * pages)) pages via $CMA/free"
	fi
fi

kill -TERM $hold_pid
wait $hold_pid
hold_rc=$?
exec 3<&-
trap - EXIT
rm -rf "$hold_dir"
[ $hold_rc -eq 0 ] || die "holder exited with status $hold_rc"

ms=$(($(now_ms) - started))
seconds=$((ms / 1000)).$((ms % 1000 / 100))
if [ $mode = pinned ]; then
	echo "cma-workload: pinned=$(set -- $pinned; IFS=,; echo "$*") allocation=$result pages=$pages seconds=$seconds"
	[ $result = failed ] || die "the allocation of $pages pages succeeded: the pinned pages did not block it"
else
	echo "cma-workload: held_pages=$held attempts=$attempts ok=$ok failed=$failed pages_per_attempt=$pages seconds=$seconds"
fi
