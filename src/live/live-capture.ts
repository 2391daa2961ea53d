// The live source: attaches the tracer, drains the ring buffer on a timer in
// batches, symbolises new stacks, and feeds a CaptureSink until stopped.

import { randomBytes } from 'node:crypto';
import { hostname, machine, release, version } from 'node:os';
import type { CaptureHeader, CmaArea, KernelCounters, RecordOptions, StackEntry } from '../capture/schema';
import { FORMAT_VERSION } from '../capture/schema';
import { NativeTracer, OpenedTracer, openTracer, TracerOptions } from '../native/tracer';
import { RECORD_SIZE, RecordField } from '../record/layout';
import { RecordDecoder } from '../record/record-decoder';
import { StringTable } from '../record/string-table';
import type { EventName } from '../record/event-types';
import type { CaptureSink } from '../stream/capture-sink';
import { PfnCountsReader } from './pfn-counts-reader';
import type { RingFillPeak } from './ring-fill-peak';
import { KernelSymbols } from '../symbols/kallsyms';
import { setLongTimeout } from './long-timeout';

/** How often the ring buffer is drained. The BPF side never wakes us (BPF_RB_NO_WAKEUP). */
const DRAIN_INTERVAL_MS = 20;
/** How often the kernel's counters (and --aggregate's per-pfn totals) go into the capture, so a cut capture still has recent ones. */
const COUNTERS_INTERVAL_MS = 1000;
/** Records per batch handed to the sink, at most. */
const DRAIN_BATCH_RECORDS = 8192;
/** A batch goes to the sink at least this often, full or not. */
const FLUSH_INTERVAL_MS = 200;
/** One drain works at most this long before the event loop gets a turn. */
const DRAIN_BUDGET_MS = 100;

export interface LiveCaptureOptions {
  tracer: TracerOptions;
  /** Events asked for that the kernel does not have (recorded in the header). */
  eventsMissing: EventName[];
  /** --cma: the areas the pfn ranges came from (recorded in the header). */
  cmaAreas?: CmaArea[];
  commandLine: string[];
  durationSec?: number;
  signal?: AbortSignal;
  onProgress?: (progress: LiveProgress) => void;
  /** Stop (finishing the capture) once the kernel has dropped more than this many records. */
  maxDrops?: number;
  /** Given: the ring buffer's fill is read before each drain and recorded in it (pageref top's header). */
  ringFill?: RingFillPeak;
  /** Called once the programs are attached and events flow; `how` says how page_ref attached and, after a fallback, why. */
  onAttached?: (attached: string[], how: string) => void;
  /** --raw-pointers: keep the kernel's page.mapping pointers instead of hashing them (the header says so). */
  rawPointers?: boolean;
}

export interface LiveProgress {
  elapsedSec: number;
  records: number;
  dropped: number;
}

export interface LiveResult extends LiveProgress {
  stopReason: string;
  counters: KernelCounters;
}

export async function runLiveCapture(options: LiveCaptureOptions, sink: CaptureSink): Promise<LiveResult> {
  const symbols = options.tracer.stackEntries > 0 ? KernelSymbols.load() : undefined;
  const tracer = openTracer(options.tracer);
  const monotonicBaseNs = process.hrtime.bigint();
  const nowUs = Date.now() * 1000;
  try {
    sink.header(buildHeader(options, tracer, monotonicBaseNs, nowUs));
    options.onAttached?.(tracer.attached, tracer.btfProblem ? `${tracer.attachedBy} (BTF refused: ${tracer.btfProblem})` : tracer.attachedBy);
    const strings = new StringTable();
    // Mappings are hashed by the addon as it drains the records, before any
    // sink sees them (unless --raw-pointers asked for the kernel's own).
    if (!options.rawPointers) tracer.hashPointers(randomBytes(16));
    const decoder = new RecordDecoder(strings, null, monotonicBaseNs);
    // No stack map (--no-stacks): no record has a stack id to look at.
    const stacks = options.tracer.stackEntries > 0 ? new StackSymbolizer(tracer, symbols, options.tracer.stackEntries) : undefined;
    const buffer = new Uint8Array(RECORD_SIZE * DRAIN_BATCH_RECORDS);
    const started = Date.now();
    let records = 0;

    // Records collect in `buffer` over several drains and go to the sink as
    // one batch when it is full or FLUSH_INTERVAL_MS has passed: few large
    // batches cost far less to decode and write than many small ones
    // (measured: 67-record frames made writing 10x slower).
    let filled = 0;
    let lastFlush = Date.now();
    const flush = () => {
      lastFlush = Date.now();
      if (filled === 0) return;
      const bytes = filled;
      filled = 0;
      const count = bytes / RECORD_SIZE;
      if (stacks) {
        const added = stacks.newStacks(new Int32Array(buffer.buffer, buffer.byteOffset, bytes / 4));
        if (added.length > 0) sink.stacks(added);
      }
      // A capture file takes the bytes as they are (a RecordBlock): decoding
      // and encoding columns cost the recorder ten times as much.
      if (sink.records) sink.records(buffer.subarray(0, bytes));
      else sink.events(decoder.decode(buffer, bytes), strings);
      records += count;
    };
    const drainAll = (force: boolean) => {
      const started = Date.now();
      if (!force) options.ringFill?.record(tracer.ringFill());
      for (;;) {
        const bytes = tracer.drain(buffer.subarray(filled));
        filled += bytes;
        if (buffer.length - filled < RECORD_SIZE) flush();
        else if (bytes === 0) break;
        // When records come as fast as the sink takes them the ring never
        // empties: give the event loop back (SIGINT, counters, a view's
        // timer) and go on at the next drain. Seen in a TCG guest, where
        // pageref top's 2 s sampling timer fired once in 58 s.
        if (!force && Date.now() - started >= DRAIN_BUDGET_MS) break;
      }
      if (force || Date.now() - lastFlush >= FLUSH_INTERVAL_MS) flush();
    };
    const counters = (): KernelCounters => ({ ...tracer.readCounters(), recordsReceived: records });
    const totals =
      options.tracer.aggregateSlots > 0
        ? new PfnCountsReader(tracer, options.tracer.aggregateSlots, options.tracer.pfnRanges, monotonicBaseNs)
        : undefined;
    const writeCounts = () => {
      if (totals) sink.pfnCounts?.(totals.read());
    };
    const progress = (): LiveProgress => ({
      elapsedSec: (Date.now() - started) / 1000,
      records,
      dropped: tracer.readCounters().dropped.reduce((a, b) => a + b, 0),
    });

    let failure: unknown;
    const stopReason = await new Promise<string>((resolve) => {
      const finish = (reason: string) => {
        clearInterval(drainTimer);
        clearInterval(countersTimer);
        durationTimer?.clear();
        options.signal?.removeEventListener('abort', onAbort);
        resolve(reason);
      };
      const guarded = (work: () => void) => () => {
        try {
          work();
        } catch (error) {
          failure = error;
          finish(`error: ${(error as Error).message}`);
        }
      };
      const drainTimer = setInterval(guarded(() => drainAll(false)), DRAIN_INTERVAL_MS);
      const countersTimer = setInterval(
        guarded(() => {
          writeCounts();
          const now = counters();
          sink.counters(now);
          options.onProgress?.(progress());
          const dropped = now.dropped.reduce((a, b) => a + b, 0);
          if (options.maxDrops !== undefined && dropped > options.maxDrops) finish(`max drops: ${dropped} records dropped, more than --max-drops ${options.maxDrops}`);
        }),
        COUNTERS_INTERVAL_MS,
      );
      const durationTimer = options.durationSec === undefined ? undefined : setLongTimeout(() => finish('duration'), options.durationSec * 1000);
      const onAbort = () => finish(String(options.signal?.reason ?? 'aborted'));
      if (options.signal?.aborted) onAbort();
      else options.signal?.addEventListener('abort', onAbort);
    });

    // Detach first, so that nothing is emitted after the last drain, then
    // drain what is left and read the final counters.
    tracer.detach();
    const end = () => ({ trailer: { endTimeUnixUs: Date.now() * 1000, stopReason, counters: counters() } });
    if (failure) {
      try {
        sink.end(end());
      } catch {
        // the sink is what failed; the first error is the one to report
      }
      throw failure;
    }
    drainAll(true);
    writeCounts();
    const ending = end();
    sink.end(ending);
    const final = ending.trailer.counters;
    return { ...progress(), stopReason, counters: final };
  } finally {
    tracer.close();
  }
}

/** The header of a live capture: what was asked for (options) and what the kernel attached (tracer). */
export function buildHeader(options: LiveCaptureOptions, tracer: Pick<OpenedTracer, 'attached' | 'attachedBy' | 'selfTgid'>, monotonicBaseNs: bigint, nowUs: number): CaptureHeader {
  const t = options.tracer;
  const recordOptions: RecordOptions = {
    pids: t.pids,
    comms: t.comms,
    stacks: t.stacks !== 'none',
    ringBytes: t.ringBytes,
    stackEntries: t.stackEntries,
    pfnRanges: t.pfnRanges,
    stacksMode: t.stacks,
    stackSample: t.stackSample,
    samplePfn: t.samplePfn,
    sampleEvents: t.sampleEvents,
    aggregateSlots: t.aggregateSlots,
    cmaAreas: options.cmaAreas ?? [],
    attach: tracer.attachedBy,
    untracedTgid: tracer.selfTgid,
  };
  return {
    formatVersion: FORMAT_VERSION,
    kernelRelease: release(),
    kernelVersion: version(),
    machine: machine(),
    hostname: hostname(),
    monotonicBaseNs: monotonicBaseNs.toString(),
    bootTimeUnixUs: Math.round(nowUs - Number(monotonicBaseNs / 1000n)),
    startTimeUnixUs: nowUs,
    commandLine: options.commandLine,
    options: recordOptions,
    eventsAttached: tracer.attached,
    eventsMissing: options.eventsMissing,
    pageSize: 4096,
    source: 'live',
    rawPointers: options.rawPointers === true,
  };
}

/**
 * Stacks taken by the tp_btf programs begin inside the BPF machinery
 * (the program, bpf_trace_run2, __bpf_trace_page_ref_*): they start here
 * at the __page_ref_* function that fired, as perf tracepoint stacks do.
 */
export function fromPageRef(frames: string[]): string[] {
  const first = frames.findIndex((frame) => frame.startsWith('__page_ref_'));
  return first > 0 ? frames.slice(first) : frames;
}

const RECORD_WORDS = RECORD_SIZE / 4;
const STACK_ID_WORD = RecordField.stack_id.offset / 4;

/** Reads each kernel stack once, the first time a record refers to it, and names its frames. */
class StackSymbolizer {
  /**
   * Stack ids seen, by id: an id is a bucket of the kernel's stack map, so a
   * byte per slot does what a Set did at a fraction of the cost (with a Set,
   * this loop was a quarter of the recorder's time with stacks, profiled in
   * a test VM).
   */
  private readonly known: Uint8Array;
  /**
   * Ids at or beyond the size asked for: the kernel rounds the map's buckets
   * up to a power of two, so they come when that size is not one. A Set, so
   * that no id, however large, makes this allocate.
   */
  private readonly knownBeyond = new Set<number>();
  private readonly frameNames = new Map<bigint, string>();

  constructor(
    private readonly tracer: NativeTracer,
    private readonly symbols: KernelSymbols | undefined,
    stackEntries: number,
  ) {
    this.known = new Uint8Array(stackEntries);
  }

  /** The stacks that the records in `words` (whole records, as 32-bit words) refer to and were not seen before. */
  newStacks(words: Int32Array): StackEntry[] {
    const added: StackEntry[] = [];
    for (let at = STACK_ID_WORD; at < words.length; at += RECORD_WORDS) {
      const id = words[at];
      if (id < 0) continue;
      if (id < this.known.length) {
        if (this.known[id] !== 0) continue;
        this.known[id] = 1;
      } else {
        if (this.knownBeyond.has(id)) continue;
        this.knownBeyond.add(id);
      }
      const ips = this.tracer.readStack(id);
      if (ips) added.push({ id, frames: fromPageRef(Array.from(ips, (ip) => this.frameName(ip))) });
    }
    return added;
  }

  private frameName(ip: bigint): string {
    let name = this.frameNames.get(ip);
    if (name === undefined) {
      name = this.symbols ? this.symbols.symbolize(ip) : '[unknown]';
      this.frameNames.set(ip, name);
    }
    return name;
  }
}
