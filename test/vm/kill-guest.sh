#!/bin/sh
# Runs inside a test kernel (test/vm/kill.test.ts boots it): pageref record
# SIGKILLed at the moments the host chose, and the BPF programs, links and
# maps that bpftool lists before it starts, while it records, and after it
# was killed; then one record stopped by SIGTERM.
# bpftool lists them during and after each of the first LISTED_TRIALS
# trials (a listing takes seconds under TCG), and after the last trial.
# KILL_PLAN is a list of TRIAL:SECONDS, TRIAL "load" (killed SECONDS after
# bpftool first lists one of its programs: while it loads and attaches them,
# ~3 s under TCG, or just after) or "run"
# (killed SECONDS after its capture reached 64 KiB: page-churn's records
# are being written; a fixed time after attaching found none written yet
# once, on a busy host).
# Everything the host test checks is left in $PAGEREF_OUT; nothing here
# decides pass or fail.
set -u
out="$PAGEREF_OUT"

. test/vm/guest-lib.sh

# bpf_lists NAME: the programs, links and maps, as bpftool's JSON.
bpf_lists() {
	bpftool -j prog show > "$out/$1-progs.json" 2>&1
	bpftool -j link show > "$out/$1-links.json" 2>&1
	bpftool -j map show > "$out/$1-maps.json" 2>&1
}

# released NAME: waits until bpftool lists the programs, links and maps it
# listed before pageref ran (the kernel frees them after the process's files
# are closed, not within kill(2)), at most 10 s; then bpf_lists NAME, and the
# tenths of a second it waited into NAME-waited.txt.
released() {
	i=0
	while [ $i -lt 100 ]; do
		bpftool -j prog show > "$TMPDIR/progs.json" 2>&1
		bpftool -j link show > "$TMPDIR/links.json" 2>&1
		bpftool -j map show > "$TMPDIR/maps.json" 2>&1
		cmp -s "$TMPDIR/progs.json" "$out/before-progs.json" && cmp -s "$TMPDIR/links.json" "$out/before-links.json" &&
			cmp -s "$TMPDIR/maps.json" "$out/before-maps.json" && break
		sleep 0.1
		i=$((i + 1))
	done
	echo $i > "$out/$1-waited.txt"
	bpf_lists "$1"
}

# grown FILE BYTES: whether FILE holds BYTES.
grown() { [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }

# pageref_listed: whether bpftool lists one of pageref's programs (into
# $TMPDIR/progs.json). Not just any new program: libbpf first loads a
# nameless socket filter of its own to probe that loading works.
pageref_listed() {
	bpftool -j prog show > "$TMPDIR/progs.json" 2>&1
	grep -Eq '"name":"(btf_page_ref_|page_ref_|test_pages_iso|cma_)' "$TMPDIR/progs.json"
}

# pageref_unlisted: whether the programs of the last record are gone (wait_until's condition).
pageref_unlisted() { ! pageref_listed; }

bpf_lists before
n=0
for trial in $KILL_PLAN; do
	n=$((n + 1))
	kind=${trial%%:*}
	seconds=${trial#*:}
	node bin/pageref.js record -o "$out/kill-$n.pgref" --comm page-churn > "$out/kill-$n.log" 2>&1 &
	recorder=$!
	churn=''
	if [ "$kind" = load ]; then
		wait_alive $recorder 60 pageref_listed && cp "$TMPDIR/progs.json" "$out/loading-$n-progs.json" && sleep "$seconds"
	elif wait_attached "$out/kill-$n.log" $recorder; then
		[ $n -le "$LISTED_TRIALS" ] && bpf_lists "during-$n"
		build/Release/page-churn 4 100000 < /dev/null > /dev/null 2>&1 &
		churn=$!
		wait_alive $recorder 60 grown "$out/kill-$n.pgref" 65536 && sleep "$seconds"
	fi
	kill -KILL $recorder
	wait $recorder
	echo $? > "$out/kill-$n.rc"
	[ -n "$churn" ] && kill $churn && wait $churn
	if [ $n -le "$LISTED_TRIALS" ]; then
		released "after-$n"
	else
		# The next "load" trial waits for pageref's programs to be listed:
		# this one's must be gone first.
		wait_until 10 pageref_unlisted
	fi
done
released after-all

# --- SIGTERM finishes the capture -----------------------------------------
node bin/pageref.js record -o "$out/term.pgref" --comm page-churn > "$out/term.log" 2>&1 &
recorder=$!
if wait_attached "$out/term.log" $recorder; then
	build/Release/page-churn 4 100000 < /dev/null > /dev/null 2>&1 &
	churn=$!
	sleep 1
	kill -TERM $recorder
	wait $recorder
	echo $? > "$out/term.rc"
	kill $churn
	wait $churn
else
	kill -KILL $recorder
fi
released after-term
exit 0
