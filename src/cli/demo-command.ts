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


export function demoScript(): string {
  return [
    'set -u',
    'out="$PAGEREF_OUT"',
    'node bin/pageref.js doctor > "$out/doctor.txt" 2>&1 || { cat "$out/doctor.txt"; exit 1; }',
    'node bin/pageref.js record -o "$out/demo.pgref" --buffer-size 64M > "$out/record.log" 2>&1 &',
    'recorder=$!',
    // Attaching takes seconds under emulation; the workload must not start before.
    'for i in $(seq 1 300); do grep -q "attached" "$out/record.log" && break; kill -0 $recorder 2>/dev/null || break; sleep 0.2; done',
    'grep -q "attached" "$out/record.log" || { echo "pageref record did not attach:"; cat "$out/record.log"; exit 1; }',
    // Pins 16 pages in the middle of the CMA area, then asks for nearly all of it: fails at once.
    'sh vm/cma-workload.sh build/Release/vmsplice-hold > "$out/workload.log" 2>&1',
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
