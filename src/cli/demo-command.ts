// `pageref demo`: for the many whose kernel lacks the page_ref tracepoints.
// Boots a bundled test kernel under QEMU, pins pages with vmsplice so that
// CMA allocations fail, records it all with pageref inside the guest, and
// reports on the capture here, ending with the blame: who held the pages.

import { DEFAULT_MAX_PFNS } from '../holds/pfn-counters';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectPath } from '../paths';
import { findKernels, KernelImage, kernelHas } from '../vm/kernels';
import { runInVm, VmError } from '../vm/qemu';
import { UsageError } from './arguments';
import { reportCommand } from './report-command';
import { blameFile } from './blame-command';


/**
 * The guest's part: the holder faults in its memory and gives back what lies
 * outside the CMA area before the recorder starts (the area stays full, so
 * the recorder's pages land outside it, and the fault-in's ~900,000 events
 * stay out of the capture); then it pins 16 pages in the middle of the area
 * and one allocation of nearly all of it fails at once (vm/cma-workload.sh,
 * vm/cma-gate.sh).
 */
export function demoScript(): string {
  return [
    'set -u',
    'out="$PAGEREF_OUT"',
    '. vm/cma-gate.sh',
    'node bin/pageref.js doctor > "$out/doctor.txt" 2>&1 || { cat "$out/doctor.txt"; exit 1; }',
    'cma_start_gated "$out/workload.log" || { echo "the CMA workload did not get ready:"; cat "$out/workload.log"; exit 1; }',
    'node bin/pageref.js record -o "$out/demo.pgref" --buffer-size 64M > "$out/record.log" 2>&1 &',
    'recorder=$!',
    // Attaching takes seconds under emulation; the pins must not come before.
    'if ! wait_for attached "$out/record.log" $recorder 60; then',
    '  echo "pageref record did not attach:"; cat "$out/record.log"',
    '  kill $workload; wait $workload; kill -INT $recorder; exit 1',
    'fi',
    'cma_open_gate',
    'wait $workload',
    'workload=$?',
    'kill -INT $recorder; wait $recorder; recorded=$?',
    'cat "$out/workload.log" "$out/record.log"',
    '[ $workload -eq 0 ] && [ $recorded -eq 0 ]',
  ].join('\n');
}

export async function demoCommand(options: { kernel?: string; keep?: string }): Promise<number> {
  const kernel = chooseKernel(findKernels(), options.kernel);
  for (const built of ['build/Release/pageref.node', 'build/Release/vmsplice-hold']) {
    if (!existsSync(projectPath(built))) throw new UsageError(`${built} is missing: run npm run build first`);
  }
  const outDir = options.keep ?? mkdtempSync(join(tmpdir(), 'pageref-demo-'));
  process.stderr.write(`pageref demo: booting kernel ${kernel.name} under QEMU (software emulation: this takes a minute or two)\n`);
  let result;
  try {
    result = await runInVm({ kernel, script: demoScript(), timeoutSec: 600, outDir });
  } catch (error) {
    if (error instanceof VmError) {
      process.stderr.write(`pageref demo: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  process.stderr.write(result.log);
  if (result.exitCode !== 0) {
    process.stderr.write(`pageref demo: the run in the guest failed (exit ${result.exitCode}); logs in ${outDir}\n`);
    return 1;
  }
  const capture = join(outDir, 'demo.pgref');
  process.stdout.write(reportCommand(capture, { json: false, top: 10, maxPfns: DEFAULT_MAX_PFNS }));
  process.stdout.write('\n');
  process.stdout.write(blameFile(capture, false, DEFAULT_MAX_PFNS));
  process.stderr.write(`pageref demo: capture kept in ${capture}\n`);
  return 0;
}

function chooseKernel(all: KernelImage[], name: string | undefined): KernelImage {
  // A kernel whose config says it lacks the tracepoints cannot show anything.
  const kernels = all.filter((kernel) => kernelHas(kernel, 'CONFIG_DEBUG_PAGE_REF') !== false);
  if (kernels.length === 0) {
    throw new UsageError('no test kernel with CONFIG_DEBUG_PAGE_REF found: set PAGEREF_KERNELS or build one with vm/build-kernel.sh');
  }
  if (name === undefined) return kernels[kernels.length - 1];
  const found = kernels.find((kernel) => kernel.name === name);
  if (!found) throw new UsageError(`--kernel: no kernel "${name}"; have ${kernels.map((k) => k.name).join(', ')}`);
  return found;
}
