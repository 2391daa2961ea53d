// `pageref record`: trace live into a capture file until the duration ends,
// SIGINT or SIGTERM; the file is always finished, whatever stopped it.

import { existsSync } from 'node:fs';
import { CaptureWriter } from '../capture/capture-writer';
import { doctorFailureLine, runDoctor } from '../doctor/doctor';
import { LiveResult, runLiveCapture } from '../live/live-capture';
import { stopOnSignals } from '../live/stop-signals';
import type { CmaArea } from '../capture/schema';
import { CmaAreasError, pfnLimit, readCmaAreas } from '../kernel/memory';
import { AttachMode, BpfError, MAX_PFN_RANGES, PfnRange, StacksMode, TracerOptions, tracerOptionsProblem } from '../native/tracer';
import type { EventName } from '../record/event-types';
import { UsageError } from './arguments';
import { DEFAULT_MAX_PFNS } from '../holds/pfn-counters';
import { kernelLosses } from '../report/kernel-losses';

/** What to trace and how much of it to keep: shared by record and the live views. */
export interface TraceScope {
  pids: number[];
  comms: string[];
  /** --pfn, repeatable. */
  pfnRanges: PfnRange[];
  /** --cma: add the CMA areas' ranges. */
  cma: boolean;
  stacks: StacksMode;
  stackSample: number;
  samplePfn: number;
  sampleEvents: number;
  aggregate: boolean;
  maxPfns: number;
  bufferBytes: number;
  stackEntries: number;
  /** How page_ref programs attach (--attach). */
  attach: AttachMode | 'auto';
}

export interface RecordArgs extends TraceScope {
  output: string;
  /** --max-drops: stop, and exit 1, once more records than this were dropped. */
  maxDrops?: number;
  durationSec?: number;
  force: boolean;
  /** --raw-pointers: the capture keeps the kernel's page.mapping pointers (its header says so). */
  rawPointers: boolean;
  commandLine: string[];
}

export const DEFAULT_BUFFER_BYTES = 16 << 20;
export const DEFAULT_STACK_ENTRIES = 16384;
export const DEFAULT_STACK_SAMPLE = 64;
/** --aggregate's slots at most (96 MiB of kernel memory at the default), and the user-space tables' pfns at most: one bound for both. */
export { DEFAULT_MAX_PFNS };

export const DEFAULT_SCOPE: Omit<TraceScope, 'bufferBytes'> = {
  pids: [],
  comms: [],
  pfnRanges: [],
  cma: false,
  stacks: 'all',
  stackSample: DEFAULT_STACK_SAMPLE,
  samplePfn: 1,
  sampleEvents: 1,
  aggregate: false,
  maxPfns: DEFAULT_MAX_PFNS,
  stackEntries: DEFAULT_STACK_ENTRIES,
  attach: 'auto',
};

/** Returns the exit status. */
export async function recordCommand(args: RecordArgs, log: (line: string) => void = (line) => process.stderr.write(line + '\n')): Promise<number> {
  if (existsSync(args.output) && !args.force) throw new UsageError(`${args.output} exists; pass --force to replace it`);
  checkScope(args);
  const doctor = runDoctor({ mountTracefs: true });
  if (!doctor.ok) {
    log(`pageref record: ${doctorFailureLine(doctor)}`);
    return 1;
  }
  const events: EventName[] = doctor.events.present;
  if (doctor.events.missing.length > 0) log(`pageref record: not traced, the kernel lacks them: ${doctor.events.missing.join(', ')}`);
  let resolved: ResolvedScope;
  try {
    resolved = resolveScope(args, events);
  } catch (error) {
    if (!(error instanceof CmaAreasError)) throw error;
    log(`pageref record: --cma: ${error.message}`);
    return 1;
  }
  resolved.notes.forEach((note) => log(`pageref record: ${note}`));
  const tracer = resolved.tracer;
  const writer = new CaptureWriter(args.output, { force: args.force });
  const stop = stopOnSignals();
  const progress = process.stderr.isTTY
    ? (p: { elapsedSec: number; records: number; dropped: number }) =>
        process.stderr.write(
          `\r  ${p.elapsedSec.toFixed(0)} s  ${p.records} events (${Math.round(p.records / Math.max(p.elapsedSec, 1e-3))}/s)  ${p.dropped} dropped  ${(writer.bytesWritten / 1048576).toFixed(1)} MiB `,
        )
    : undefined;
  let attached = false;
  try {
    const result = await runLiveCapture(
      {
        tracer,
        eventsMissing: doctor.events.missing,
        cmaAreas: resolved.cmaAreas,
        maxDrops: args.maxDrops,
        commandLine: args.commandLine,
        durationSec: args.durationSec,
        rawPointers: args.rawPointers,
        signal: stop.signal,
        onProgress: progress,
        onAttached: (names, how) => {
          attached = true;
          log(`pageref record: attached ${names.length} programs (${names.join(', ')}; page_ref by ${how}); recording to ${args.output}`);
          if (args.rawPointers) log(`pageref record: --raw-pointers: ${args.output} will hold kernel addresses (page->mapping); share it only where revealing them is acceptable`);
        },
      },
      writer,
    );
    if (progress) process.stderr.write('\n');
    recordSummary(result, { output: args.output, bytes: writer.bytesWritten }, args).forEach(log);
    if (result.stopReason.startsWith('max drops')) {
      log(`pageref record: stopped: ${result.stopReason}; the capture is finished up to there`);
      return 1;
    }
    return 0;
  } catch (error) {
    if (!attached) {
      writer.discard();
    } else {
      writer.end({ trailer: undefined });
    }
    if (error instanceof BpfError) {
      log(`pageref record: ${error.message}${error.verifierLog ? ' (the verifier log follows)' : ''}`);
      if (error.verifierLog) log(error.verifierLog);
      return 1;
    }
    throw error;
  } finally {
    stop.release();
  }
}

/**
 * What record says when it has finished: one line of what was written and
 * what the kernel counted but did not hand over, then a warning with a
 * remedy for each loss.
 */
export function recordSummary(result: LiveResult, written: { output: string; bytes: number }, args: Pick<RecordArgs, 'stacks' | 'maxPfns'>): string[] {
  const c = result.counters;
  const losses = kernelLosses(c);
  const total = (values: number[]) => values.reduce((a, b) => a + b, 0);
  const kept = [
    losses.sampledOut > 0 ? `${losses.sampledOut} sampled out` : '',
    total(c.aggregated) > 0 ? `${total(c.aggregated)} summed per pfn` : '',
    args.stacks === 'armed' ? `${total(c.countedOnly)} not recorded (page not armed)` : '',
  ].filter((part) => part !== '');
  const lines = [
    `pageref record: ${result.records} records in ${result.elapsedSec.toFixed(1)} s (stopped by ${result.stopReason}), ${result.dropped} dropped${losses.stackLost > 0 ? `, ${losses.stackLost} stacks lost` : ''}${kept.length > 0 ? `, events ${kept.join(', ')}` : ''}, ${written.bytes} bytes written to ${written.output}`,
  ];
  if (result.dropped > 0) lines.push(`pageref record: WARNING: ${result.dropped} records were lost because the ring buffer was full; try a larger --buffer-size, filters or sampling`);
  if (losses.stackLost > 0) lines.push(`pageref record: WARNING: ${losses.stackLost} records lost their stack (stack map full or hash collision); try a larger --stack-entries`);
  if (losses.aggregateOverflow > 0) lines.push(`pageref record: WARNING: ${losses.aggregateOverflow} events fell on pfns without a slot (--max-pfns ${args.maxPfns}) and are only counted`);
  return lines;
}

export interface ResolvedScope {
  tracer: TracerOptions;
  cmaAreas: CmaArea[];
  /** Things the user should know about what will and will not be traced. */
  notes: string[];
}

/** Checks what can be checked without the kernel; throws UsageError. */
export function checkScope(scope: TraceScope): void {
  if (scope.pfnRanges.length > MAX_PFN_RANGES) throw new UsageError(`--pfn: at most ${MAX_PFN_RANGES} ranges`);
  if (scope.maxPfns < 1) throw new UsageError('--max-pfns must be at least 1');
  const problem = tracerOptionsProblem(tracerOptions(scope, ['page_ref_mod'], mergeRanges(scope.pfnRanges), 0));
  if (problem) throw new UsageError(problem);
  if (scope.aggregate) aggregateSlots(scope, mergeRanges(scope.pfnRanges), undefined);
}

/**
 * The tracer's options for `events`: --cma's areas read, ranges merged, and
 * --aggregate's slots sized. Throws CmaAreasError when --cma cannot be
 * honoured and UsageError when the ranges do not fit.
 */
export function resolveScope(scope: TraceScope, events: EventName[]): ResolvedScope {
  const notes: string[] = [];
  const cmaAreas = scope.cma ? readCmaAreas() : [];
  if (cmaAreas.length > 0) notes.push(`--cma: ${cmaAreas.map((a) => `${a.name} 0x${a.basePfn.toString(16)}-0x${(a.basePfn + a.count).toString(16)}`).join(', ')}`);
  const ranges = mergeRanges([...scope.pfnRanges, ...cmaAreas.map((a) => ({ start: a.basePfn, end: a.basePfn + a.count }))]);
  if (ranges.length > MAX_PFN_RANGES) throw new UsageError(`--pfn and --cma make ${ranges.length} ranges; at most ${MAX_PFN_RANGES}`);
  let slots = 0;
  if (scope.aggregate) {
    const limit = pfnLimit();
    slots = aggregateSlots(scope, ranges, limit);
    if (ranges.length === 0 && limit !== undefined && limit > slots) {
      notes.push(`--aggregate: pfns from 0x${slots.toString(16)} up to 0x${limit.toString(16)} have no slot (--max-pfns ${scope.maxPfns}); their events are counted as overflow`);
    }
  }
  if (scope.stacks === 'armed' && !events.includes('test_pages_isolated')) {
    notes.push('--stacks armed: the kernel has no test_pages_isolated event, so nothing will be armed');
  }
  return { tracer: tracerOptions(scope, events, ranges, slots), cmaAreas, notes };
}

function aggregateSlots(scope: TraceScope, ranges: PfnRange[], machinePfns: number | undefined): number {
  if (ranges.length === 0) return Math.min(scope.maxPfns, machinePfns ?? scope.maxPfns);
  const pfns = ranges.reduce((sum, r) => sum + r.end - r.start, 0);
  if (pfns > scope.maxPfns) throw new UsageError(`--aggregate: the pfn ranges hold ${pfns} pfns, more than --max-pfns ${scope.maxPfns}`);
  return pfns;
}

/** Sorted, with overlapping and touching ranges joined: a pfn has one slot. */
export function mergeRanges(ranges: PfnRange[]): PfnRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const merged: PfnRange[] = [];
  for (const range of sorted) {
    const last = merged[merged.length - 1];
    if (last && range.start <= last.end) last.end = Math.max(last.end, range.end);
    else merged.push({ ...range });
  }
  return merged;
}

function tracerOptions(scope: TraceScope, events: EventName[], pfnRanges: PfnRange[], aggregateSlots: number): TracerOptions {
  return {
    events,
    ringBytes: scope.bufferBytes,
    stacks: scope.stacks,
    stackEntries: scope.stacks === 'none' ? 0 : scope.stackEntries,
    stackSample: scope.stackSample,
    samplePfn: scope.samplePfn,
    sampleEvents: scope.sampleEvents,
    pids: scope.pids,
    comms: scope.comms,
    pfnRanges,
    aggregateSlots,
    attach: scope.attach,
  };
}
