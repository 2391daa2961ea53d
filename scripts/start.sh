#!/usr/bin/env bash
# npm start: live tracing where the running kernel has the page_ref
# tracepoints, the demo in a bundled test kernel where it does not.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
if node bin/pageref.js doctor >/dev/null 2>&1; then
  out="pageref-$(date +%Y%m%d-%H%M%S).pgref"
  echo "pageref: this kernel has the page_ref tracepoints: recording to $out until Ctrl-C" >&2
  node bin/pageref.js record -o "$out" "$@" || exit $?
  exec node bin/pageref.js report "$out"
fi
node bin/pageref.js doctor | grep -E 'FAIL|remedy' >&2 || true
echo "pageref: cannot trace live here; running the demo in a bundled test kernel instead" >&2
exec node bin/pageref.js demo "$@"
