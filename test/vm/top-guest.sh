#!/bin/sh
# Runs inside a test kernel (test/vm/top.test.ts boots it): pageref top
# --batch, as text and as JSON lines, over the vmsplice CMA workload; then
# its interactive screen in tmux.
# Everything the host test checks is left in $PAGEREF_OUT; nothing here
# decides pass or fail.
set -u
out="$PAGEREF_OUT"

. test/vm/guest-lib.sh

# top_over_workload NAME PIN-PATTERN TOP-ARGS...: the workload faults in its
# memory; then pageref top in the background (node started directly, so
# that SIGINT reaches it) printing a snapshot every 2 s into NAME.out; once
# it has attached, the workload pins its pages, makes the allocation fail
# and keeps the pins until top has printed three snapshots with a line
# matching PIN-PATTERN (at most 60 s: snapshots come late when the host is
# busy); then the pins go and SIGINT stops top. One top at a time: two
# tracers and the 300 MiB holder do not fit in the guest's 512 MiB.
# --comm vmsplice-hold, as one would point top at a suspect: unfiltered, the
# guest makes 20,000 page_ref events a second, more than top takes on the
# one host thread that emulates both vCPUs (it fell 10 s behind, and a 64 MiB
# ring buffer overflowed). Isolation and CMA events pass the filter. The
# default 16 MiB ring: with a 64 MiB one, top and the holder left so little
# of 512 MiB that the holder was SIGKILLed once on 6.12.
top_over_workload() {
	name=$1
	pin_pattern=$2
	shift 2
	cma_start_gated "$out/$name-workload.log" CMA_RELEASE_GATE="$cma_release_gate" PINNED_PFNS_FILE="$out/$name-pinned.txt" || return
	node bin/pageref.js top --batch 1000 -d 2 --comm vmsplice-hold "$@" > "$out/$name.out" 2> "$out/$name.log" &
	top=$!
	wait_attached "$out/$name.log" $top || echo "pageref top did not attach" >> "$out/$name.log"
	cma_open_gate
	if wait_for "holding the pins" "$out/$name-workload.log" $workload 120; then
		pins_shown() { [ "$(grep -c -- "$pin_pattern" "$out/$name.out")" -ge 3 ]; }
		wait_until 60 pins_shown || echo "top showed the pins in fewer than 3 snapshots in 60 s" >> "$out/$name.log"
	fi
	cma_release
	wait $workload
	echo $? > "$out/$name-workload.rc"
	kill -INT $top
	wait $top
	echo $? > "$out/$name.rc"
}

top_over_workload holders '^pin ' --view holders --sort kind --rows 10
top_over_workload json '"kind":"pin"' --json --view holders --sort kind --rows 10

# --- the interactive screen, live, in tmux ------------------------------------
# tmux (the host's, over the 9p root) gives top a terminal; page-churn makes
# events. The screen is captured on the pages view and, after the key 2, on
# the holders view; q must then leave the alternate screen.
# The guest has no devpts (vm/guest-init.sh mounts none): tmux needs one for its ptys.
mkdir -p /dev/pts
mountpoint -q /dev/pts || mount -t devpts devpts /dev/pts
sock="$TMPDIR/tmux.sock"
TERM=xterm tmux -S "$sock" -f /dev/null new-session -d -x 150 -y 40 \
	"node bin/pageref.js top --comm page-churn 2> $out/screen-top.log; echo \$? > $out/screen.rc; exec sleep 600"
pane=$(tmux -S "$sock" display -p '#{pane_pid}')
if wait_attached "$out/screen-top.log" "$pane"; then
	build/Release/page-churn 4 30 < /dev/null > /dev/null 2>&1 &
	churn=$!
	# Until the screen shows TEXT (a pattern of grep -E), at most 30 s: on a
	# busy host the first frames with rows came after 4 s.
	screen_shows() {
		i=0
		while [ $i -lt 60 ]; do
			tmux -S "$sock" capture-pane -p > "$2"
			grep -Eq "$1" "$2" && return 0
			sleep 0.5
			i=$((i + 1))
		done
		return 1
	}
	screen_shows '^0x[0-9a-f]+ ' "$out/screen-pages.txt"
	tmux -S "$sock" display -p '#{alternate_on}' > "$out/screen-alternate-during.txt"
	tmux -S "$sock" send-keys 2
	screen_shows '^KIND +PAGES' "$out/screen-holders.txt"
	tmux -S "$sock" send-keys q
	i=0
	while [ ! -s "$out/screen.rc" ] && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	tmux -S "$sock" display -p '#{alternate_on}' > "$out/screen-alternate-after.txt"
	tmux -S "$sock" capture-pane -p > "$out/screen-after.txt"
	kill $churn 2>/dev/null
	wait $churn
fi
tmux -S "$sock" kill-server

# --- nothing is left loaded --------------------------------------------------
bpftool prog show > "$out/bpf-progs-after.txt" 2>&1
exit 0
