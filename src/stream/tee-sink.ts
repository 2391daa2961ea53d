// One record stream into several sinks, so one read of a capture feeds them all.

import type { EventBatch } from '../record/event-batch';
import type { StringTable } from '../record/string-table';
import type { CaptureHeader, KernelCounters, PfnCounts, StackEntry } from '../capture/schema';
import type { CaptureSink, StreamEnd } from './capture-sink';

export class TeeSink implements CaptureSink {
  constructor(private readonly sinks: CaptureSink[]) {}

  header(header: CaptureHeader): void {
    for (const sink of this.sinks) sink.header(header);
  }

  stacks(stacks: StackEntry[]): void {
    for (const sink of this.sinks) sink.stacks(stacks);
  }

  events(batch: EventBatch, strings: StringTable): void {
    for (const sink of this.sinks) sink.events(batch, strings);
  }

  counters(counters: KernelCounters): void {
    for (const sink of this.sinks) sink.counters(counters);
  }

  pfnCounts(totals: PfnCounts): void {
    for (const sink of this.sinks) sink.pfnCounts?.(totals);
  }

  end(end: StreamEnd): void {
    for (const sink of this.sinks) sink.end(end);
  }
}
