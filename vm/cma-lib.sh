# Shell functions for the CMA workloads (sourced; the caller defines die()).
# CMA is the debugfs folder of the area the guest reserves with cma=.

CMA=/sys/kernel/debug/cma/reserved

# cma_wait_ready: debugfs has shown the CMA files late (or not at all, when
# cma= could not be reserved): wait a little, then say exactly what is missing.
cma_wait_ready() {
	i=0
	while [ ! -e "$CMA/alloc" ] && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if [ ! -e "$CMA/alloc" ]; then
		[ -d /sys/kernel/debug/cma ] || die "/sys/kernel/debug/cma missing (debugfs not mounted, or no CONFIG_CMA_DEBUGFS)"
		die "$CMA/alloc missing after 5 s (is there cma= on the kernel command line? grep CmaTotal /proc/meminfo: $(grep CmaTotal /proc/meminfo))"
	fi
}

# cma_alloc_once PAGES: one allocation, given back at once if it succeeded;
# sets result to succeeded or failed. A failed cma_alloc() makes the write
# itself fail (the error text varies by kernel, e.g. "I/O error"); only the
# status matters.
cma_alloc_once() {
	if echo "$1" >"$CMA/alloc" 2>/dev/null; then
		result=succeeded
		echo "$1" >"$CMA/free" || die "could not free $1 pages via $CMA/free"
	else
		result=failed
	fi
}
