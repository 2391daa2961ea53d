// protobufjs types for proto/capture.proto, loaded once, and the TypeScript
// shapes of the messages other than EventBatch (which becomes an EventBatch
// of typed arrays, src/record/event-batch.ts).

import protobuf from 'protobufjs';
import { projectPath } from '../paths';

// Every 64-bit field pageref writes stays below 2^53 (see capture.proto), so
// plain numbers are exact; without this protobufjs hands out Long objects.
(protobuf.util as { Long: unknown }).Long = undefined;
protobuf.configure();

/** 2: sampling, --aggregate (PfnCounts frames) and pfn ranges in RecordOptions. Version 1 files still read. */
export const FORMAT_VERSION = 2;

let root: protobuf.Root | undefined;

export function captureSchema(): { Frame: protobuf.Type } {
  root ??= protobuf.loadSync(projectPath('proto', 'capture.proto'));
  return { Frame: root.lookupType('pageref.capture.Frame') };
}

export interface RecordOptions {
  pids: number[];
  comms: string[];
  stacks: boolean;
  ringBytes: number;
  stackEntries: number;
  pfnRanges: { start: number; end: number }[];
  /** "" in format 1 captures, which had stacks on every record or none. */
  stacksMode: string;
  stackSample: number;
  /** 0 or 1: not sampled. */
  samplePfn: number;
  sampleEvents: number;
  aggregateSlots: number;
  cmaAreas: CmaArea[];
  /** "btf" or "tracepoint": how the page_ref programs attached ("" in format 1 captures: tracepoint); "ftrace": imported text. */
  attach: string;
  /** The recorder's own process, whose page_ref events were not traced (counted as filtered); 0: none (imported, or older captures). */
  untracedTgid?: number;
}

export interface CmaArea {
  name: string;
  basePfn: number;
  count: number;
}

/** --aggregate: per pfn that changed, what its totals added since the previous PfnCounts (gets, puts, events), and its last count and time. */
export interface PfnCounts {
  pfn: number[] | Float64Array;
  gets: number[] | Float64Array;
  puts: number[] | Float64Array;
  events: number[] | Float64Array;
  lastCount: number[] | Int32Array;
  /** ns since CaptureHeader.monotonicBaseNs */
  lastTsNs: number[] | Float64Array;
}

export interface CaptureHeader {
  formatVersion: number;
  kernelRelease: string;
  kernelVersion: string;
  machine: string;
  hostname: string;
  /** CLOCK_MONOTONIC (ns, decimal) that event times are offsets from. */
  monotonicBaseNs: string;
  bootTimeUnixUs: number;
  startTimeUnixUs: number;
  commandLine: string[];
  options: RecordOptions;
  eventsAttached: string[];
  eventsMissing: string[];
  pageSize: number;
  source: string;
  /** page.mapping values are raw kernel pointers (record --raw-pointers), not the keyed hash; false in older captures. */
  rawPointers: boolean;
}

/** Kernel counters summed over CPUs; each array is indexed by event type. */
export interface KernelCounters {
  seen: number[];
  filtered: number[];
  /** Format 2 on; empty arrays in older captures. */
  sampledOut: number[];
  countedOnly: number[];
  emitted: number[];
  dropped: number[];
  stackLost: number[];
  aggregated: number[];
  aggregateOverflow: number[];
  recursionMisses: number[];
  recordsReceived: number;
}

export interface StackEntry {
  id: number;
  /** "function+0xoffset", innermost first. */
  frames: string[];
}

export interface CaptureTrailer {
  endTimeUnixUs: number;
  stopReason: string;
  counters: KernelCounters;
}
