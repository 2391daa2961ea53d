// What the VM test files share: one boot per kernel, one guest at a time
// (two emulated guests on two cores only slow each other down), and reading
// what the guest script left in its output folder.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KernelImage } from '../../src/vm/kernels';
import { runInVm, VmResult } from '../../src/vm/qemu';

/** A function giving each kernel's one run of `script`; every test of that kernel awaits the same run. */
export function oneBootPerKernel(script: string, timeoutSec: number): (kernel: KernelImage) => Promise<VmResult> {
  let previous: Promise<unknown> = Promise.resolve();
  const runs = new Map<string, Promise<VmResult>>();
  return (kernel) => {
    let run = runs.get(kernel.name);
    if (!run) {
      run = previous.catch(() => undefined).then(() => runInVm({ kernel, script, timeoutSec }));
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
