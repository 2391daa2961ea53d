// The VM harness on every test kernel: boots, runs a script from the checkout,
// sees the page_ref tracepoints and the CMA debugfs files, brings files back.
//
// With no kernel or no QEMU these tests fail: a VM suite that silently runs
// nothing would pass CI while testing nothing. PAGEREF_SKIP_VM=1 (never set in
// CI) skips them for a quick local run.

import test from 'ava';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findKernels, KernelImage } from '../src/vm/kernels';
import { runInVm, VmError } from '../src/vm/qemu';

const kernels = findKernels();
const skip = process.env.PAGEREF_SKIP_VM === '1';

// Boot to job takes ~7 s under TCG on 2 cores (see vm/README); leave room for a loaded machine.
const BOOT_TIMEOUT_SEC = 60;

// Prints one key=value line per fact, so a failure shows what the guest saw.
const probe = `
echo "uname=$(uname -r)"
echo "cwd=$(pwd)"
[ -d /sys/kernel/tracing/events/page_ref ] && echo page_ref=yes || echo page_ref=no
[ -e /sys/kernel/debug/cma/reserved/alloc ] && echo cma_alloc=yes || echo cma_alloc=no
[ -f package.json ] && echo checkout=yes || echo checkout=no
echo "written in the guest" > "$PAGEREF_OUT/from-guest.txt"
exit 7
`;

function facts(log: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of log.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

if (skip) {
  test.skip('VM tests skipped: PAGEREF_SKIP_VM=1', () => {});
} else if (kernels.length === 0) {
  test('VM tests need a test kernel', (t) => {
    t.fail('no kernel found: set PAGEREF_KERNELS or provide ../shared/vm/kernels/*/bzImage (vm/build-kernel.sh builds one)');
  });
} else {
  for (const k of kernels) registerBootTest(k);

  test.serial(`a guest that overruns its time limit is killed (${kernels[0].name})`, async (t) => {
    const started = Date.now();
    const err = await t.throwsAsync(
      runInVm({ kernel: kernels[0], script: 'sleep 600', timeoutSec: 15 }),
      { instanceOf: VmError },
    );
    t.regex(err?.message ?? '', /did not finish within 15 s; console ends: /);
    t.true(Date.now() - started < 25_000, 'QEMU outlived the time limit');
  });
}

test('a missing bzImage is a VmError naming the file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pageref-nokernel-'));
  const kernel: KernelImage = { name: 'none', dir, bzImage: path.join(dir, 'bzImage') };
  const err = await t.throwsAsync(runInVm({ kernel, script: 'true', timeoutSec: 5 }), { instanceOf: VmError });
  // Without QEMU the QEMU message comes first; either is a clear one-line error.
  t.regex(err?.message ?? '', /no bzImage at .*bzImage|install the Debian package qemu-system-x86/);
  t.false((err?.message ?? '').includes('\n'));
});

function registerBootTest(k: KernelImage): void {
  test.serial(`boots ${k.name}, runs the script from the checkout, returns its files`, async (t) => {
    // A comma and a space in the share path: QEMU option lists need the comma doubled.
    const outDir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pageref-vm-')), 'out, here');
    const r = await runInVm({ kernel: k, script: probe, timeoutSec: BOOT_TIMEOUT_SEC, outDir });
    t.log(`${k.name}: ${r.seconds.toFixed(1)} s`);
    const f = facts(r.log);
    t.deepEqual(r.preconditions, [], 'guest-init reported missing preconditions');
    t.is(r.exitCode, 7, `the script's own exit status; log:\n${r.log}`);
    if (/^\d+\.\d+(\.\d+)?$/.test(k.name)) t.true(f.uname?.startsWith(k.name), `uname -r is ${f.uname}`);
    else t.regex(f.uname ?? '', /^\d+\.\d+/);
    t.is(f.checkout, 'yes', 'cwd is not the checkout');
    t.is(f.page_ref, 'yes', 'no page_ref tracepoints (CONFIG_DEBUG_PAGE_REF)');
    t.is(f.cma_alloc, 'yes', 'no /sys/kernel/debug/cma/reserved/alloc');
    t.is(fs.readFileSync(path.join(outDir, 'from-guest.txt'), 'utf8'), 'written in the guest\n');
    t.regex(r.console, /pageref-init: job exited 7/);
  });
}
