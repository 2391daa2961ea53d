#!/bin/sh
# Runs inside a test kernel (test/vm/ftrace-import.test.ts boots it): the
# same page-churn workload traced twice by the kernel's ftrace (page_ref
# events of its pid) and by pageref record --pid at once: first with the
# stacktrace option, read from trace; then without stacks, irq-info off and
# record-tgid on, read from trace_pipe. Everything the host test checks is
# left in $PAGEREF_OUT; nothing here decides pass or fail.
set -u
out="$PAGEREF_OUT"
T=/sys/kernel/tracing

. test/vm/guest-lib.sh

# --- with stacks: the stacktrace option's <stack trace> blocks, read from trace ---
echo 1 > $T/options/stacktrace
traced stacks 4 2
cat $T/trace > "$out/stacks-trace.txt"
echo 0 > $T/options/stacktrace

# --- without stacks: no irq-info columns, a tgid column, read from trace_pipe ---
echo 0 > $T/options/irq-info
echo 1 > $T/options/record-tgid
traced pipe 8 2
# trace_pipe blocks once it is empty: read what is there, then stop the reader.
cat $T/trace_pipe > "$out/pipe-trace.txt" &
reader=$!
sleep 5
kill $reader
wait $reader 2>/dev/null
echo 1 > $T/options/irq-info
echo 0 > $T/options/record-tgid
echo > $T/trace
echo 1408 > $T/buffer_size_kb
exit 0
