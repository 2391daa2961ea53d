// The fuzz loop and its oracle. Input `index` of a run is rebuilt from (seed,
// index) alone, so any failure can be replayed by itself. Each input goes
// through a reader into the sinks `pageref report` and `pageref blame` use,
// and must either read, or be refused with the reader's own error class and
// one clear line, within a time limit and without a large allocation.

import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { CaptureError, replayCapture } from '../../src/capture/capture-reader';
import type { CaptureHeader, KernelCounters, PfnCounts, StackEntry } from '../../src/capture/schema';
import { BlameAnalysis } from '../../src/blame/blame-analysis';
import { blameJson } from '../../src/blame/blame-report';
import { FtraceTextError, FtraceTextParser } from '../../src/import/ftrace-text';
import type { EventBatch } from '../../src/record/event-batch';
import { EVENT_COUNT } from '../../src/record/event-types';
import type { StringTable } from '../../src/record/string-table';
import { CaptureSummary, reportJson } from '../../src/report/capture-summary';
import type { CaptureSink, StreamEnd } from '../../src/stream/capture-sink';
import { TeeSink } from '../../src/stream/tee-sink';
import { mutateCapture, splitFrames } from './mutate-capture';
import { mutateText } from './mutate-text';
import { inputSeed, Random } from './random';
import { captureSeeds, Seed, textSeeds } from './seeds';

/** `sinks`: also read into the report and blame sinks, as the commands do (their per-pfn tables cost more than reading). */
export type FuzzInput =
  | { kind: 'capture'; index: number; seed: string; sinks: boolean; bytes: Buffer }
  | { kind: 'text'; index: number; seed: string; sinks: boolean; text: string; strict: boolean };

export type Outcome = 'read' | 'cut short' | 'refused';

export interface FuzzFailure {
  input: FuzzInput;
  reason: string;
}

export interface FuzzLimits {
  /** One input may take this long (the sinks included). */
  inputMs: number;
  /** What one input may add to the heap and to array buffers, beyond `bytesPerInputByte` per byte of input. */
  allocationBytes: number;
  bytesPerInputByte: number;
  /** Live heap growth over the whole run, measured after full collections. */
  heapGrowthBytes: number;
}

export const DEFAULT_LIMITS: FuzzLimits = { inputMs: 2000, allocationBytes: 48 << 20, bytesPerInputByte: 64, heapGrowthBytes: 32 << 20 };

export class FuzzSeeds {
  readonly captures: Seed[] = captureSeeds();
  readonly captureFrames: Buffer[][] = this.captures.map((seed) => splitFrames(seed.bytes));
  readonly texts = textSeeds();

  /** Even inputs are captures, odd ones texts, every other text read with --strict; one of each kind in eight goes to the report and blame sinks too. */
  input(seed: number, index: number): FuzzInput {
    const rng = new Random(inputSeed(seed, index));
    const sinks = index % 16 < 2;
    if (index % 2 === 0) {
      const from = rng.pick(this.captures);
      return { kind: 'capture', index, seed: from.name, sinks, bytes: mutateCapture(rng, from.bytes, this.captureFrames) };
    }
    const from = rng.pick(this.texts);
    return { kind: 'text', index, seed: from.name, sinks, text: mutateText(rng, from.text, this.texts.map((t) => t.text)), strict: index % 4 === 3 };
  }
}

/** Thrown by the checking sink: the reader handed a sink something the stream contract forbids. */
class ContractError extends Error {
  override name = 'ContractError';
}

/** Checks what every sink may rely on (src/stream/capture-sink.ts): order, and events that index nothing undefined. */
class ContractSink implements CaptureSink {
  private state: 'start' | 'open' | 'ended' = 'start';
  readonly stackIds = new Set<number>();

  constructor(private readonly stacksDefinedFirst: boolean) {}

  header(_header: CaptureHeader): void {
    if (this.state !== 'start') throw new ContractError('a second header');
    this.state = 'open';
  }

  stacks(stacks: StackEntry[]): void {
    this.open('stacks');
    for (const stack of stacks) this.stackIds.add(stack.id);
  }

  events(batch: EventBatch, strings: StringTable): void {
    this.open('events');
    for (let i = 0; i < batch.length; i++) {
      if (batch.type[i] >= EVENT_COUNT) throw new ContractError(`event type ${batch.type[i]}`);
      if (batch.comm[i] >= strings.strings.length || batch.name[i] >= strings.strings.length) throw new ContractError('a string index beyond the table');
      for (const key of ['tsNs', 'pfn', 'flags', 'mapping'] as const) {
        if (!Number.isFinite(batch[key][i])) throw new ContractError(`${key} ${batch[key][i]}`);
      }
      const stack = batch.stackId[i];
      if (this.stacksDefinedFirst && stack >= 0 && !this.stackIds.has(stack)) throw new ContractError(`stack ${stack} used before it was defined`);
    }
  }

  counters(_counters: KernelCounters): void {
    this.open('counters');
  }

  pfnCounts(_counts: PfnCounts): void {
    this.open('pfn counts');
  }

  end(_end: StreamEnd): void {
    this.open('end');
    this.state = 'ended';
  }

  checkEnded(): void {
    if (this.state !== 'ended') throw new ContractError('the stream never ended');
  }

  private open(call: string): void {
    if (this.state !== 'open') throw new ContractError(`${call} ${this.state === 'start' ? 'before the header' : 'after the end'}`);
  }
}

/** One line a user can act on: no stack trace, no JavaScript values standing in for data. */
export function unclearMessage(message: string): string | undefined {
  if (message.length === 0) return 'an empty message';
  if (/[\r\n]/.test(message)) return 'a message of several lines';
  if (message.length > 400) return `a message of ${message.length} characters`;
  // Quoted text is the input's own ("page flag "NaN""), not a value the reader lost track of.
  const leak = /\bundefined\b|\bNaN\b|\[object |\bnull\b/.exec(message.replace(/"[^"]*"/g, '""'));
  return leak ? `"${leak[0]}" in the message` : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message.split('\n')[0]}` : `a thrown ${typeof error}: ${String(error)}`;
}

/** Runs one input; a failure's reason, or the outcome. */
export function checkInput(input: FuzzInput, capturePath: string): { outcome: Outcome } | { reason: string } {
  const summary = input.sinks ? new CaptureSummary() : undefined;
  const blame = input.sinks ? new BlameAnalysis() : undefined;
  const contract = new ContractSink(input.kind === 'text');
  const sink = summary && blame ? new TeeSink([contract, summary, blame]) : contract;
  const expected = input.kind === 'capture' ? CaptureError : FtraceTextError;
  let outcome: Outcome;
  try {
    if (input.kind === 'capture') {
      writeFileSync(capturePath, input.bytes);
      outcome = replayCapture(capturePath, sink).truncated ? 'cut short' : 'read';
    } else {
      let warning: string | undefined;
      const parser = new FtraceTextParser(sink, {
        name: 'fuzz.txt',
        strict: input.strict,
        // Small batches: a parser allocates a whole batch up front, and rotation (stacks reaching an event of the batch before) is met more often.
        batchSize: 16,
        pointerKey: Buffer.alloc(16, 1),
        onWarning: (message) => {
          warning ??= unclearMessage(message) && `warning "${message.slice(0, 200)}": ${unclearMessage(message)}`;
        },
      });
      // As readline splits a stream (importFtraceStream): \n, \r\n and a lone \r end a line.
      for (const line of input.text.split(/\r\n|\n|\r/)) parser.line(line);
      const result = parser.end();
      if (warning) return { reason: warning };
      if (result.warnings.some((w) => unclearMessage(w))) return { reason: 'an unclear warning' };
      outcome = 'read';
    }
    contract.checkEnded();
    if (summary) reportJson(summary, 5);
    if (blame) blameJson(blame);
  } catch (error) {
    if (!(error instanceof expected)) return { reason: `threw ${describe(error)}` };
    if (input.kind === 'text' && !input.strict) return { reason: `without --strict, threw ${describe(error)}` };
    const unclear = unclearMessage(error.message);
    if (unclear) return { reason: `${describe(error)}: ${unclear}` };
    outcome = 'refused';
  }
  return { outcome };
}

export function inputSize(input: FuzzInput): number {
  return input.kind === 'capture' ? input.bytes.length : input.text.length;
}

export interface FuzzRun {
  seed: number;
  inputs: number;
  outcomes: Record<`${FuzzInput['kind']} ${Outcome}`, number>;
  failures: FuzzFailure[];
  slowestMs: number;
  /** The most one input added to heap + array buffers. */
  largestAllocation: number;
  /** Live heap after full collections: at the first checkpoint and the largest after it. */
  heapBaseline: number;
  heapPeak: number;
  elapsedMs: number;
}

function fullCollection(): () => void {
  // Without --expose-gc on the command line: live heap is only comparable after a full collection.
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/**
 * Inputs `first` to `first + count - 1` of the run `seed`. Stops at `maxFailures`.
 * `onInput` is told the index before each input (a watchdog's hook).
 */
export function runFuzz(options: { seed: number; first?: number; count: number; workDir: string; limits?: FuzzLimits; maxFailures?: number; seeds?: FuzzSeeds; onInput?: (index: number) => void }): FuzzRun {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const seeds = options.seeds ?? new FuzzSeeds();
  const capturePath = join(options.workDir, 'input.pgref');
  const gc = fullCollection();
  const first = options.first ?? 0;
  const checkpoints = Math.max(1, Math.floor(options.count / 10));
  const run: FuzzRun = {
    seed: options.seed, inputs: 0, failures: [], slowestMs: 0, largestAllocation: 0, heapBaseline: 0, heapPeak: 0, elapsedMs: 0,
    outcomes: { 'capture read': 0, 'capture cut short': 0, 'capture refused': 0, 'text read': 0, 'text cut short': 0, 'text refused': 0 },
  };
  const started = performance.now();
  // Most inputs are refused, and capturing a stack for each error cost a fifth of the run; the oracle reads names and messages only.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    for (let n = 0; n < options.count; n++) {
      const index = first + n;
      options.onInput?.(index);
      const input = seeds.input(options.seed, index);
      // Heap statistics, not process.memoryUsage(): that reads /proc for the RSS, which cost more than most inputs.
      const before = getHeapStatistics();
      const t0 = performance.now();
      const checked = checkInput(input, capturePath);
      const ms = performance.now() - t0;
      const after = getHeapStatistics();
      run.inputs++;
      run.slowestMs = Math.max(run.slowestMs, ms);
      const allocated = after.used_heap_size + after.external_memory - (before.used_heap_size + before.external_memory);
      run.largestAllocation = Math.max(run.largestAllocation, allocated);
      let reason = 'reason' in checked ? checked.reason : undefined;
      if ('outcome' in checked) run.outcomes[`${input.kind} ${checked.outcome}`]++;
      if (!reason && ms > limits.inputMs) reason = `took ${Math.round(ms)} ms (limit ${limits.inputMs} ms)`;
      if (!reason && allocated > limits.allocationBytes + limits.bytesPerInputByte * inputSize(input)) {
        reason = `allocated ${(allocated / 2 ** 20).toFixed(1)} MiB for an input of ${inputSize(input)} bytes`;
      }
      if (reason) {
        run.failures.push({ input, reason });
        if (run.failures.length >= (options.maxFailures ?? 20)) break;
      }
      if (n % checkpoints === checkpoints - 1) {
        gc();
        const heap = process.memoryUsage().heapUsed;
        if (run.heapBaseline === 0) run.heapBaseline = heap;
        run.heapPeak = Math.max(run.heapPeak, heap);
      }
    }
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  run.elapsedMs = performance.now() - started;
  if (run.heapPeak - run.heapBaseline > limits.heapGrowthBytes) {
    run.failures.push({ input: seeds.input(options.seed, first + run.inputs - 1), reason: `the live heap grew by ${((run.heapPeak - run.heapBaseline) / 2 ** 20).toFixed(1)} MiB over the run` });
  }
  return run;
}

/**
 * A directory for the capture file each input is written to: in /dev/shm where there is one,
 * so the 50,000 rewrites of a CI run stay off the disk (3.4 s of system time there, 1.4 s here).
 */
export function fuzzWorkDir(): string {
  return mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pageref-fuzz-'));
}

/** The failing input as a file: a capture as it is, a text as UTF-8. */
export function inputBytes(input: FuzzInput): Buffer {
  return input.kind === 'capture' ? input.bytes : Buffer.from(input.text, 'utf8');
}
