// protobufjs types for proto/capture.proto, loaded once, and the TypeScript
// shapes of the messages other than EventBatch (which becomes an EventBatch
// of typed arrays, src/record/event-batch.ts).

import protobuf from 'protobufjs';
import { projectPath } from '../paths';

// Every 64-bit field pageref writes stays below 2^53 (see capture.proto), so
// plain numbers are exact; without this protobufjs hands out Long objects.
(protobuf.util as { Long: unknown }).Long = undefined;
protobuf.configure();

export const FORMAT_VERSION = 1;

let root: protobuf.Root | undefined;

export function captureSchema(): { Frame: protobuf.Type } {
  root ??= protobuf.loadSync(projectPath('proto', 'capture.proto'));
  return { Frame: root.lookupType('pageref.capture.Frame') };
}

export interface RecordOptions {
  pids: number[];
  comms: string[];
  pfnMin: number;
  pfnMax: number;
  stacks: boolean;
  ringBytes: number;
  stackEntries: number;
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
}

/** Kernel counters summed over CPUs; each array is indexed by event type. */
export interface KernelCounters {
  seen: number[];
  filtered: number[];
  emitted: number[];
  dropped: number[];
  stackLost: number[];
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
