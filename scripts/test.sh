#!/usr/bin/env bash
# npm test: set up, build, run every test (the VM tests included), and end
# with one line "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/.."

if ! bash scripts/setup.sh; then
  echo "pageref: set-up or build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

log=$(mktemp)
npx ava "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

count() { grep -Eo "^ *[0-9]+ $1" "$log" | tail -n 1 | grep -Eo '[0-9]+' || echo 0; }
passed=$(count 'tests? passed')
# With failures, ava's summary names only them: count the passes it ticked off.
ticked=$(grep -Ec '^ *✔ ' "$log" || true)
if [ "$passed" -lt "$ticked" ]; then passed=$ticked; fi
failed=$(count 'tests? failed')
skipped=$(count 'tests? skipped')
todo=$(count 'tests? todo')
uncaught=$(count 'uncaught exceptions?')
failed=$((failed + uncaught))
# ava exiting non-zero with nothing counted as failed (a crash, a timeout) is a failure.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
rm -f "$log"
line="$passed passed, $failed failed"
if [ "$skipped" -gt 0 ] || [ "$todo" -gt 0 ]; then line="$line, $((skipped + todo)) skipped"; fi
echo "$line"
exit "$status"
