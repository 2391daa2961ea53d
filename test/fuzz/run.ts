// `npm run fuzz -- [--seed N] [--iterations N] [--first I] [--out DIR] [--hang-ms N]`:
// the fuzz test's loop for as long as asked. The loop runs in a worker so that an
// input that never returns is caught too: the worker reports each input's index
// before reading it, and one that has not moved on within --hang-ms is the culprit.
// Each failing input is written to a file with the command that repeats it alone.

import { randomInt } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { FuzzFailure, FuzzRun, FuzzSeeds, fuzzWorkDir, inputBytes, runFuzz } from './fuzz-readers';

interface Job {
  seed: number;
  first: number;
  count: number;
  progress: SharedArrayBuffer;
}

function options(argv: string[]): { seed: number; first: number; count: number; out: string; hangMs: number } {
  const value = (name: string, fallback: number): number => {
    const at = argv.indexOf(name);
    if (at < 0) return fallback;
    const n = Number(argv[at + 1]);
    if (!Number.isSafeInteger(n) || n < 0) {
      process.stderr.write(`fuzz: ${name} needs a whole number, not "${argv[at + 1] ?? ''}"\n`);
      process.exit(2);
    }
    return n;
  };
  const known = new Set(['--seed', '--iterations', '--first', '--out', '--hang-ms']);
  for (let i = 0; i < argv.length; i += 2) {
    if (!known.has(argv[i])) {
      process.stderr.write(`fuzz: unknown option ${argv[i]}; options: ${[...known].join(' ')}\n`);
      process.exit(2);
    }
  }
  const outAt = argv.indexOf('--out');
  return {
    seed: value('--seed', randomInt(2 ** 32 - 1)),
    first: value('--first', 0),
    count: value('--iterations', 100_000),
    out: resolve(outAt >= 0 ? argv[outAt + 1] : 'fuzz-failures'),
    hangMs: value('--hang-ms', 30_000),
  };
}

function worker(job: Job): void {
  const progress = new Int32Array(job.progress);
  const workDir = fuzzWorkDir();
  const run = runFuzz({ seed: job.seed, first: job.first, count: job.count, workDir, onInput: (index) => Atomics.store(progress, 0, index) });
  rmSync(workDir, { recursive: true });
  parentPort!.postMessage(run);
}

function report(seed: number, failures: FuzzFailure[], out: string): void {
  mkdirSync(out, { recursive: true });
  for (const { input, reason } of failures) {
    const file = join(out, `seed-${seed}-input-${input.index}.${input.kind === 'capture' ? 'pgref' : 'txt'}`);
    writeFileSync(file, inputBytes(input));
    const how = input.kind === 'text' ? (input.strict ? 'ftrace text, --strict' : 'ftrace text') : 'capture';
    process.stdout.write(`FAIL input ${input.index} (${how}, from ${input.seed}): ${reason}\n  written to ${file}\n  again: npm run fuzz -- --seed ${seed} --first ${input.index} --iterations 1\n`);
  }
}

function main(): void {
  const args = options(process.argv.slice(2));
  process.stdout.write(`fuzz: seed ${args.seed}, inputs ${args.first} to ${args.first + args.count - 1}\n`);
  const progress = new SharedArrayBuffer(4);
  const child = new Worker(__filename, { workerData: { seed: args.seed, first: args.first, count: args.count, progress } satisfies Job });
  const current = new Int32Array(progress);
  let last = -1;
  let since = Date.now();
  const watchdog = setInterval(() => {
    const index = Atomics.load(current, 0);
    if (index !== last) {
      last = index;
      since = Date.now();
      return;
    }
    if (Date.now() - since < args.hangMs) return;
    clearInterval(watchdog);
    void child.terminate();
    process.exitCode = 1;
    // Said before the input is rebuilt: rebuilding it runs the seeds through the same readers.
    process.stdout.write(`fuzz: input ${index} gave no answer within ${args.hangMs} ms (again: npm run fuzz -- --seed ${args.seed} --first ${index} --iterations 1)\n`);
    const input = new FuzzSeeds().input(args.seed, index);
    report(args.seed, [{ input, reason: `no answer within ${args.hangMs} ms` }], args.out);
  }, 250);
  child.on('message', (run: FuzzRun) => {
    clearInterval(watchdog);
    const o = run.outcomes;
    process.stdout.write(
      `fuzz: ${run.inputs} inputs in ${(run.elapsedMs / 1000).toFixed(1)} s; captures: ${o['capture read']} read, ${o['capture cut short']} cut short, ${o['capture refused']} refused; ` +
        `texts: ${o['text read']} read, ${o['text refused']} refused (--strict); slowest ${run.slowestMs.toFixed(0)} ms, ` +
        `largest allocation ${(run.largestAllocation / 2 ** 20).toFixed(1)} MiB, live heap growth ${((run.heapPeak - run.heapBaseline) / 2 ** 20).toFixed(1)} MiB\n`,
    );
    // Buffers come back from the worker as plain Uint8Arrays.
    report(run.seed, run.failures.map((f) => ({ ...f, input: f.input.kind === 'capture' ? { ...f.input, bytes: Buffer.from(f.input.bytes) } : f.input })), args.out);
    process.exitCode = run.failures.length > 0 ? 1 : 0;
  });
  child.on('error', (error) => {
    clearInterval(watchdog);
    process.stdout.write(`FAIL the fuzz worker died at input ${Atomics.load(current, 0)}: ${error.message}\n  again: npm run fuzz -- --seed ${args.seed} --first ${Atomics.load(current, 0)} --iterations 1\n`);
    process.exitCode = 1;
  });
}

if (isMainThread) main();
else worker(workerData as Job);
