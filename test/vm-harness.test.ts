// The VM harness on every test kernel: boots, runs a script from the checkout,
// sees the page_ref tracepoints and the CMA debugfs files, brings files back.
//
// With no kernel or no QEMU these tests fail: a VM suite that silently runs
// nothing would pass CI while testing nothing. PAGEREF_SKIP_VM=1 (never set in
// CI) skips them for a quick local run.

import test from 'ava';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findKernels, KernelImage, repoRoot } from '../src/vm/kernels';
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
  for (const k of kernels) registerCmaWorkloadTest(k);

  test.serial(`a guest that overruns its time limit is killed (${kernels[0].name})`, async (t) => {
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pageref-vm-'));
    t.teardown(() => fs.rmSync(outDir, { recursive: true, force: true }));
    const started = Date.now();
    const err = await t.throwsAsync(
      runInVm({ kernel: kernels[0], script: 'sleep 600', timeoutSec: 15, outDir }),
      { instanceOf: VmError },
    );
    t.regex(err?.message ?? '', /did not finish within 15 s; console ends: /);
    t.true(Date.now() - started < 25_000, 'QEMU outlived the time limit');
  });
}

test('a missing bzImage is a VmError naming the file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pageref-nokernel-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const kernel: KernelImage = { name: 'none', dir, bzImage: path.join(dir, 'bzImage') };
  const err = await t.throwsAsync(runInVm({ kernel, script: 'true', timeoutSec: 5 }), { instanceOf: VmError });
  // Without QEMU the QEMU message comes first; either is a clear one-line error.
  t.regex(err?.message ?? '', /no bzImage at .*bzImage|install the Debian package qemu-system-x86/);
  t.false((err?.message ?? '').includes('\n'));
});

function registerBootTest(k: KernelImage): void {
  test.serial(`boots ${k.name}, runs the script from the checkout, returns its files`, async (t) => {
    // A comma and a space in the share path: QEMU option lists need the comma doubled.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pageref-vm-'));
    t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const outDir = path.join(tmp, 'out, here');
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

// vm/cma-workload.sh as the tracer tests use it: 16 pinned pages make one CMA
// allocation fail, and the script leaves no holder and no allocation behind.
// On both kernels the allocation failed after exactly 33 failed isolations
// (one per start position of a maxchunk - 32 page request), each at a pinned
// page, in 1 to 5 s of workload under TCG.
function registerCmaWorkloadTest(k: KernelImage): void {
  test.serial(`cma-workload.sh blocks CMA isolation on ${k.name} and cleans up`, async (t) => {
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pageref-vm-'));
    t.teardown(() => fs.rmSync(outDir, { recursive: true, force: true }));
    // The guest sees the host's files read-only, so a holder built here runs there.
    const holder = path.join(outDir, 'vmsplice-hold');
    execFileSync('gcc', ['-O2', '-o', holder, path.join(repoRoot(), 'vm', 'workloads', 'vmsplice-hold.c')]);
    const script = `
T=/sys/kernel/tracing
echo 1 > $T/events/page_isolation/test_pages_isolated/enable
echo 1 > $T/events/cma/cma_alloc_busy_retry/enable
PINNED_PFNS_FILE="$PAGEREF_OUT/pinned.txt" sh vm/cma-workload.sh '${holder}'; echo "workload_rc=$?"
echo 0 > $T/events/page_isolation/test_pages_isolated/enable
echo 0 > $T/events/cma/cma_alloc_busy_retry/enable
grep 'test_pages_isolated.*ret=fail' $T/trace | grep -o 'fin_pfn=0x[0-9a-f]*' | cut -d= -f2 > "$PAGEREF_OUT/fin-pfns.txt"
echo "busy_retries=$(grep -c cma_alloc_busy_retry $T/trace)"
echo "cma_used=$(cat /sys/kernel/debug/cma/reserved/used)"
pgrep -x vmsplice-hold >/dev/null && echo holder_left=yes || echo holder_left=no
`;
    const r = await runInVm({ kernel: k, script, timeoutSec: 120, outDir });
    t.log(`${k.name}: ${r.seconds.toFixed(1)} s`);
    const f = facts(r.log);
    t.is(f.workload_rc, '0', r.log);
    const summary = /^cma-workload: pinned=(0x[0-9a-f]+(?:,0x[0-9a-f]+)*) allocation=failed pages=\d+ seconds=[\d.]+$/m.exec(r.log);
    t.truthy(summary, `no summary line in:\n${r.log}`);
    const pinned = summary?.[1].split(',') ?? [];
    t.deepEqual(fs.readFileSync(path.join(outDir, 'pinned.txt'), 'utf8').split('\n').filter((l) => l !== ''), pinned);
    const fins = fs.readFileSync(path.join(outDir, 'fin-pfns.txt'), 'utf8').split('\n').filter((l) => l !== '');
    t.is(fins.length, 33, 'failed isolations: one per start position of the request');
    t.is(f.busy_retries, '33');
    t.deepEqual(fins.filter((pfn) => !pinned.includes(pfn)), [], 'isolation failed at pages that were not pinned');
    t.is(f.cma_used, '0', 'allocations were not freed');
    t.is(f.holder_left, 'no', 'the holder outlived the script');
  });
}
