#!/bin/sh
# Runs inside a test kernel (test/vm/serve.test.ts boots it): pageref serve
# while vm/cma-workload.sh pins 16 pages with vmsplice and makes a CMA
# allocation fail on them; its HTTP endpoints are fetched with curl while
# the pins are held and after they are released, and Prometheus scrapes it.
# First the flight recorder where nothing fails (a CMA allocation that
# succeeds), then serve at the defaults
# (CMA areas only, totals in the kernel, stacks once armed), then with
# --stacks all and the flight recorder, which sees the pins being taken and
# writes a capture around the failures; a second allocation over the same
# pins makes a second file, which replaces the first (--flight-max-files 1).
# One tracer at a time: two
# and the 300 MiB holder do not fit in the guest's 512 MiB.
# Everything the host test checks is left in $PAGEREF_OUT; nothing here
# decides pass or fail.
set -u
out="$PAGEREF_OUT"

. test/vm/guest-lib.sh

# The guest's loopback is down until brought up; serve listens on it.
ip link set lo up 2>"$out/lo.log" || busybox ip link set lo up 2>>"$out/lo.log"

# fetch NAME PATH PORT: the body into NAME, the status code into NAME.status.
fetch() {
	curl -s -o "$out/$1" -w '%{http_code}' "http://127.0.0.1:$3$2" >"$out/$1.status" 2>>"$out/curl.log"
}

# prometheus_scrapes PORT: a real Prometheus server (the host's Debian
# package) on loopback scrapes serve every second; its HTTP API is asked for
# the isolation failure counter until it has a value, at most 120 s (its
# start under TCG is slow). Run after the holder has gone: the 300 MiB
# holder, serve and Prometheus together would crowd the 512 MiB guest.
prometheus_scrapes() {
	cat >"$TMPDIR/prometheus.yml" <<-EOF
		global:
		  scrape_interval: 1s
		scrape_configs:
		  - job_name: pageref
		    static_configs:
		      - targets: ['127.0.0.1:$1']
	EOF
	prometheus --config.file="$TMPDIR/prometheus.yml" --storage.tsdb.path="$TMPDIR/prometheus" \
		--web.listen-address=127.0.0.1:9090 >"$out/prometheus.log" 2>&1 &
	prometheus=$!
	query='http://127.0.0.1:9090/api/v1/query?query=pageref_isolation_failures_total'
	i=0
	while [ $i -lt 120 ]; do
		curl -s -o "$out/prometheus-query.json" "$query" 2>>"$out/curl.log" &&
			grep -q '"value"' "$out/prometheus-query.json" && break
		sleep 1
		i=$((i + 1))
	done
	curl -s -o "$out/prometheus-targets.json" http://127.0.0.1:9090/api/v1/targets 2>>"$out/curl.log"
	kill $prometheus
	wait $prometheus
}

# metrics_show NAME PORT PATTERN: /metrics, fetched into NAME, has a line
# matching PATTERN (grep -E).
metrics_show() {
	fetch "$1" /metrics "$2" && grep -Eq "$3" "$out/$1"
}

# serve_over_workload NAME PORT HELD AFTER SERVE-ARGS...: serve over the
# workload. While the pins are held, the endpoints are fetched once /metrics
# has a line matching HELD; after the pins are released and the workload
# has ended, once it has one matching AFTER; each at most 60 s (on a busy
# host serve lags behind the kernel by seconds).
serve_over_workload() {
	name=$1
	port=$2
	held_pattern=$3
	after_pattern=$4
	shift 4
	cma_start_gated "$out/$name-workload.log" CMA_RELEASE_GATE="$cma_release_gate" PINNED_PFNS_FILE="$out/$name-pinned.txt" || return
	node bin/pageref.js serve --log "$out/$name.log" "$@" &
	serve=$!
	wait_attached "$out/$name.log" $serve || echo "pageref serve did not attach" >>"$out/$name-guest.log"
	cma_open_gate
	if wait_for "holding the pins" "$out/$name-workload.log" $workload 120; then
		wait_until 60 metrics_show "$name-held.metrics" $port "$held_pattern" ||
			echo "/metrics had no line matching $held_pattern while the pins were held" >>"$out/$name-guest.log"
		fetch "$name-held.stacks.json" /stacks $port
		fetch "$name-held.pb.gz" /debug/pprof/holds $port
		[ $name = stacks-all ] && second_flight_window $port
	fi
	cma_release
	wait $workload
	echo $? >"$out/$name-workload.rc"
	wait_until 60 metrics_show "$name-after.metrics" $port "$after_pattern" ||
		echo "/metrics had no line matching $after_pattern after the workload" >>"$out/$name-guest.log"
	fetch "$name-after.stacks.json" /stacks $port
	fetch "$name-after.pb.gz" /debug/pprof/holds $port
	fetch "$name-captures.json" /captures $port
	fetch "$name-missing.txt" /nothing-here $port
	curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/metrics" >"$out/$name-post.status" 2>>"$out/curl.log"
	[ $name = defaults ] && prometheus_scrapes $port
	# SIGHUP: the log moved away is replaced by a new one.
	mv "$out/$name.log" "$out/$name.log.1"
	kill -HUP $serve
	wait_for "log reopened" "$out/$name.log" $serve 10
	kill -TERM $serve
	wait $serve
	echo $? >"$out/$name.rc"
}

# second_flight_window PORT: once the first window's file is written, one
# more allocation over the same pins opens a second window; with
# --flight-max-files 1 its file replaces the first.
second_flight_window() {
	wait_until 60 metrics_show stacks-all-first.metrics $1 '^pageref_flight_captures_total 1$' ||
		echo "no first flight file in 60 s" >>"$out/stacks-all-guest.log"
	ls -A "$out/flight" >"$out/flight-first.ls"
	cma_allocate_again
	wait_for "allocation failed again" "$out/stacks-all-workload.log" $workload 120 ||
		echo "the second allocation did not fail" >>"$out/stacks-all-guest.log"
}

# --- the flight recorder where nothing fails -----------------------------------
# A CMA allocation that succeeds, on the fresh area: isolation tests that
# pass and cma_alloc events, but no failure, so no file. Its window would
# close --flight-after (2 s) after a failure: the endpoints are fetched
# later than that.
. vm/cma-lib.sh
die() { echo "$*" >>"$out/quiet-guest.log"; }
mkdir -p "$out/flight-quiet"
node bin/pageref.js serve --listen 127.0.0.1:9466 --log "$out/quiet.log" --flight-dir "$out/flight-quiet" --flight-after 2 &
serve=$!
if wait_attached "$out/quiet.log" $serve; then
	cma_wait_ready
	cma_alloc_once 64
	echo "$result" >"$out/quiet-alloc.txt"
	sleep 5
	fetch quiet.metrics /metrics 9466
	fetch quiet-captures.json /captures 9466
else
	echo "pageref serve did not attach" >>"$out/quiet-guest.log"
fi
kill -TERM $serve
wait $serve
echo $? >"$out/quiet.rc"
ls -A "$out/flight-quiet" >"$out/flight-quiet.ls"

# Held: the allocation's end, which comes after its failures, has been
# counted. After: defaults see only the pins'
# release (armed by the failures), which makes their stack a culprit.
serve_over_workload defaults 9464 '^pageref_cma_failed_allocations_total 1$' '^pageref_culprit_pages\{'
# --comm, as top-guest.sh does: every page_ref event of the CMA areas with
# a stack is more than one emulated host thread keeps up with. The flight
# recorder keeps 120 s before a failure: under TCG the pins can come well
# before the allocation that fails on them.
mkdir -p "$out/flight"
serve_over_workload stacks-all 9465 '^pageref_culprit_pages\{.*kind="pin",role="holder"' '^pageref_flight_captures_deleted_total 1$' --listen 127.0.0.1:9465 --stacks all --comm vmsplice-hold \
	--flight-dir "$out/flight" --flight-seconds 120 --flight-after 3 --flight-max-files 1
ls -A "$out/flight" >"$out/flight.ls"

# --- nothing is left loaded, nothing listens ---------------------------------
bpftool prog show >"$out/bpf-progs-after.txt" 2>&1
curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9464/metrics >"$out/after-exit.status" 2>&1
exit 0
