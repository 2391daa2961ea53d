// What the VM test files share: their tests once per test kernel, one boot
// per kernel, the kernels of a file one after the other, and reading what the
// guest script left in its output folder. ava runs two test files at a time
// (package.json): TCG emulates each guest on one host thread, so two guests
// keep this machine's two cores busy where one left a core idle.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findKernels, KernelImage } from '../../src/vm/kernels';
import { runInVm, VmResult } from '../../src/vm/qemu';

/** A function giving each kernel's one run of `script`; every test of that kernel awaits the same run. */
export function oneBootPerKernel(script: string | ((kernel: KernelImage) => string), timeoutSec: number): (kernel: KernelImage) => Promise<VmResult> {
  let previous: Promise<unknown> = Promise.resolve();
  const runs = new Map<string, Promise<VmResult>>();
  return (kernel) => {
    let run = runs.get(kernel.name);
    if (!run) {
      const body = typeof script === 'string' ? script : script(kernel);
      run = previous.catch(() => undefined).then(() => runInVm({ kernel, script: body, timeoutSec }));
      previous = run;
      runs.set(kernel.name, run);
    }
    return run;
  };
}

/** A file the guest left in its output folder, or "(no NAME)" so that assertions show what is missing. */
export function guestFile(run: VmResult, name: string): string {
  try {
    return readFileSync(join(run.outDir, name), 'utf8');
  } catch {
    return `(no ${name})`;
  }
}

/**
 * Registers `register`'s tests once per test kernel. No kernel is a failing
 * test, never a silent pass; PAGEREF_SKIP_VM=1 (never set in CI) skips them,
 * and says so, for a quick local run.
 */
export function forEachKernel(suite: string, register: (kernel: KernelImage) => void): void {
  if (process.env.PAGEREF_SKIP_VM === '1') {
    test.skip(`${suite} VM tests skipped: PAGEREF_SKIP_VM=1`, () => {});
    return;
  }
  const kernels = findKernels();
  if (kernels.length === 0) {
    test(`${suite} VM tests need a test kernel`, (t) => {
      t.fail('no kernel found: set PAGEREF_KERNELS or provide ../shared/vm/kernels/*/bzImage (vm/build-kernel.sh builds one)');
    });
    return;
  }
  for (const kernel of kernels) register(kernel);
}
