// What every consumer of a record stream implements. Live tracing, a capture
// file and (later) imported ftrace text all drive the same calls in the same
// order: header once; then stacks, events and counters in any order, a
// stack always before the first event that refers to it (and pfnCounts,
// for aggregated captures); then end once.

import type { EventBatch } from '../record/event-batch';
import type { StringTable } from '../record/string-table';
import type { CaptureHeader, CaptureTrailer, KernelCounters, PfnCounts, StackEntry } from '../capture/schema';

export interface StreamEnd {
  /** Present when the capture was finished properly. */
  trailer?: CaptureTrailer;
  /** Present when the capture was cut short: why reading stopped. */
  truncated?: string;
}

export interface CaptureSink {
  header(header: CaptureHeader): void;
  stacks(stacks: StackEntry[]): void;
  /** `strings` resolves batch.comm and batch.name; it only grows. */
  events(batch: EventBatch, strings: StringTable): void;
  counters(counters: KernelCounters): void;
  /**
   * Live sources: the records as drained (struct pageref_record, mappings
   * already hashed). A sink that has this method gets the raw bytes instead
   * of events(); the bytes are only valid during the call.
   */
  records?(records: Uint8Array): void;
  /** --aggregate captures: per-pfn totals; sinks that do not count pages leave it out. */
  pfnCounts?(totals: PfnCounts): void;
  end(end: StreamEnd): void;
}
