// `npm run bench`: the pipeline benchmark, pageref top's frame time, then the
// kernel benchmark, each in its own process (the pipeline wants a large heap;
// the kernel one boots a VM).
//
//   node dist/test/bench/run.js [--json] [--pipeline-only | --kernel-only] [kernel options]
//
// With --json, one object: {"pipeline": {...}, "topFrame": {...}, "kernel": {...}}, a part that
// failed being null (and the exit status 1). Other options go to kernel.js.

import { spawn } from 'node:child_process';
import { join } from 'node:path';

type Part = 'pipeline' | 'topFrame' | 'kernel';

const args = process.argv.slice(2);
const json = args.includes('--json');
const pipelineOnly = args.includes('--pipeline-only');
const kernelOnly = args.includes('--kernel-only');
const kernelArgs = args.filter((a) => a !== '--json' && a !== '--pipeline-only' && a !== '--kernel-only');

const COMMANDS: Record<Part, string[]> = {
  // 10 M pfns in the hold table for bytes per pfn need more than the default heap.
  pipeline: ['--max-old-space-size=8192', join(__dirname, 'pipeline.js')],
  topFrame: [join(__dirname, 'top-frame.js')],
  kernel: [join(__dirname, 'kernel.js'), ...kernelArgs],
};

/** Runs one part; with --json, its stdout is kept and parsed, otherwise passed through. */
function runPart(part: Part): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...COMMANDS[part], ...(json ? ['--json'] : [])], {
      stdio: ['ignore', json ? 'pipe' : 'inherit', 'inherit'],
    });
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.on('error', (error) => {
      process.stderr.write(`bench: cannot run the ${part} benchmark: ${error.message}\n`);
      resolve({ code: 1, output });
    });
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), output }));
  });
}

async function main(): Promise<number> {
  if (pipelineOnly && kernelOnly) {
    process.stderr.write('bench: --pipeline-only and --kernel-only exclude each other\n');
    return 2;
  }
  if (pipelineOnly && kernelArgs.length > 0) {
    process.stderr.write(`bench: ${kernelArgs.join(' ')}: options of the kernel benchmark, which --pipeline-only skips\n`);
    return 2;
  }
  const parts: Part[] = pipelineOnly ? ['pipeline'] : kernelOnly ? ['kernel'] : ['pipeline', 'topFrame', 'kernel'];
  const merged: Partial<Record<Part, unknown>> = {};
  let status = 0;
  for (const part of parts) {
    const { code, output } = await runPart(part);
    // A usage error in the kernel options: nothing else to run.
    if (code === 2) return 2;
    if (code !== 0) status = 1;
    if (!json) continue;
    let value: unknown = null;
    try {
      value = code === 0 ? (JSON.parse(output) as Record<Part, unknown>)[part] ?? null : null;
    } catch {
      process.stderr.write(`bench: the ${part} benchmark printed no JSON object: ${output.slice(0, 200)}\n`);
      status = 1;
    }
    merged[part] = value;
  }
  if (json) process.stdout.write(JSON.stringify(merged) + '\n');
  return status;
}

main().then((code) => {
  process.exitCode = code;
});
