// What `pageref top` knows, fed by any source through the sink interface:
// per-pfn counts (PfnCounters), who holds what and which isolations failed
// (BlameAnalysis and its hold table), rates per sampling interval, and a
// short history of the few pages on screen. Per event it does a few typed
// array updates, and the hold table keeps its holds grouped by stack;
// everything that costs more (top-N selection, filtered grouping) happens
// when a snapshot is taken (top-snapshot.ts), at most once a frame.

import type { CaptureHeader, KernelCounters, PfnCounts, StackEntry } from '../capture/schema';
import { BlameAnalysis } from '../blame/blame-analysis';
import { ReferenceKind, referenceKind, tellingFrame } from '../blame/stack-kinds';
import { DEFAULT_MAX_PFNS, PfnCounters } from '../holds/pfn-counters';
import { referenceDelta } from '../holds/reference-delta';
import type { EventBatch } from '../record/event-batch';
import { EVENT_COUNT, isPageRefEvent } from '../record/event-types';
import { StringTable } from '../record/string-table';
import { kernelLosses } from '../report/kernel-losses';
import type { CaptureSink, StreamEnd } from '../stream/capture-sink';
import { pageFlagTable } from './page-flags';

/** Events kept per page on screen, for the expanded row. */
export const HISTORY_PER_PFN = 16;
/**
 * Migrate types are per pageblock (pageblock_order 9 on x86_64, 2 MiB):
 * stored per 512 pfns. A smaller block than the kernel's is still right,
 * only less shared.
 */
const PAGEBLOCK_SHIFT = 9;
/** Pageblocks held in a flat array (8 TiB of physical addresses); beyond, a Map. */
const FLAT_BLOCKS = 1 << 22;
/** record.mt of records that carry no migrate type (PAGEREF_MT_UNKNOWN in bpf/pageref.h: attached by tp_btf). */
const MT_UNKNOWN = 0xff;

export interface HistoryEvent {
  tsNs: number;
  type: number;
  val: number;
  ret: number;
  count: number;
  pid: number;
  tgid: number;
  comm: string;
  stackId: number;
}

/** What one sampling interval added, per second of the source's clock. */
export interface IntervalRates {
  /** Length of the interval, seconds (0 before the first interval ends). */
  seconds: number;
  /** Records received per event type, per second. */
  eventsPerSec: Float64Array;
  /** page_ref events summed per pfn in the kernel (--aggregate), per second. */
  aggregatedPerSec: number;
  failuresPerSec: number;
  busyRetriesPerSec: number;
  droppedPerSec: number;
  /** The tracer's own CPU time (user + system) per wall second, percent; null when not measured. */
  cpuPercent: number | null;
  /** The fullest the ring buffer was found at a drain, 0 to 1; null without a ring (a replay) or without a drain. */
  ringFill: number | null;
}

export class TopState implements CaptureSink {
  readonly analysis: BlameAnalysis;
  /** Totals per pfn since the session began. */
  readonly pfns: PfnCounters;
  /** Per-pfn counts of the last finished interval: the rates' numerators. */
  previous: PfnCounters;
  captureHeader: CaptureHeader | undefined;
  flagTable: readonly string[] | undefined;
  strings = new StringTable();
  readonly eventsByType = new Float64Array(EVENT_COUNT);
  aggregatedEvents = 0;
  lastCounters: KernelCounters | undefined;
  ending: StreamEnd | undefined;
  /** Time of the newest event, ns since the capture's base. */
  lastEventNs = 0;
  rates: IntervalRates = {
    seconds: 0,
    eventsPerSec: new Float64Array(EVENT_COUNT),
    aggregatedPerSec: 0,
    failuresPerSec: 0,
    busyRetriesPerSec: 0,
    droppedPerSec: 0,
    cpuPercent: null,
    ringFill: null,
  };

  private current: PfnCounters;
  /** pfns the finished intervals' tables evicted (their rates are missing). */
  private finishedIntervalsEvicted = 0;
  private readonly intervalByType = new Float64Array(EVENT_COUNT);
  private intervalAggregated = 0;
  private intervalStartNs = 0;
  private failuresAtStart = 0;
  private retriesAtStart = 0;
  private droppedAtStart = 0;
  private flatBlocks = new Uint8Array(0);
  private readonly farBlocks = new Map<number, number>();
  private watched = new Set<number>();
  private readonly stackInfos = new Map<number, { frame: string; kind: ReferenceKind }>();
  private readonly histories = new Map<number, HistoryEvent[]>();

  /**
   * `maxPfns` (--max-pfns) bounds each per-pfn table: the totals, the
   * hold table, and the interval's counts (which never hold more pfns than
   * the totals see in an interval).
   */
  constructor(readonly maxPfns = DEFAULT_MAX_PFNS) {
    this.analysis = new BlameAnalysis(maxPfns);
    this.pfns = new PfnCounters(maxPfns);
    this.previous = new PfnCounters(maxPfns);
    this.current = new PfnCounters(maxPfns);
    // The holders view reads the stack groups the hold table keeps per event
    // (BENCHMARKS.md): grouping a million holds each frame took 44-83 ms, and
    // grouping them only at the first holders frame held the drains up for
    // 0.3 to 1.2 s on this machine.
    this.analysis.holds.stackGroups();
  }

  /** pfns the per-interval tables (the rates) evicted since the session began. */
  get rateEvictedPfns(): number {
    return this.finishedIntervalsEvicted + this.current.evictions.pfns;
  }

  header(header: CaptureHeader): void {
    this.captureHeader = header;
    this.flagTable = pageFlagTable(header.kernelRelease);
    this.analysis.header(header);
  }

  stacks(stacks: StackEntry[]): void {
    this.analysis.stacks(stacks);
  }

  events(batch: EventBatch, strings: StringTable): void {
    this.strings = strings;
    this.analysis.events(batch, strings);
    const watching = this.watched.size > 0;
    for (let i = 0; i < batch.length; i++) {
      const type = batch.type[i];
      this.eventsByType[type]++;
      this.intervalByType[type]++;
      const tsNs = batch.tsNs[i];
      if (tsNs > this.lastEventNs) this.lastEventNs = tsNs;
      if (!isPageRefEvent(type)) continue;
      const pfn = batch.pfn[i];
      const delta = referenceDelta(type, batch.val[i], batch.ret[i]);
      this.pfns.add(pfn, delta, batch.count[i], batch.mapcount[i], tsNs);
      this.current.add(pfn, delta, batch.count[i], batch.mapcount[i], tsNs);
      if (batch.mt[i] !== MT_UNKNOWN) this.setMigrateType(pfn, batch.mt[i]);
      if (watching && this.watched.has(pfn)) this.remember(batch, i, strings);
    }
  }

  pfnCounts(totals: PfnCounts): void {
    for (let i = 0; i < totals.pfn.length; i++) {
      if (!(totals.events[i] >= 1)) continue;
      // The kernel's per-pfn slot has no mapcount (NaN: the page keeps the one it had).
      this.pfns.merge(totals.pfn[i], totals.gets[i], totals.puts[i], totals.events[i], totals.lastCount[i], NaN, totals.lastTsNs[i]);
      this.current.merge(totals.pfn[i], totals.gets[i], totals.puts[i], totals.events[i], totals.lastCount[i], NaN, totals.lastTsNs[i]);
      this.aggregatedEvents += totals.events[i];
      this.intervalAggregated += totals.events[i];
      if (totals.lastTsNs[i] > this.lastEventNs) this.lastEventNs = totals.lastTsNs[i];
    }
  }

  counters(counters: KernelCounters): void {
    this.lastCounters = counters;
    this.analysis.counters(counters);
  }

  end(end: StreamEnd): void {
    this.ending = end;
    if (end.trailer) this.lastCounters = end.trailer.counters;
    this.analysis.end(end);
  }

  /** Records the kernel lost (ring buffer full), all event types, as its counters last said. */
  get dropped(): number {
    return kernelLosses(this.lastCounters).dropped;
  }

  /**
   * Ends the sampling interval at `nowNs` (the source's clock, ns since the
   * capture's base): its counts become the rates, and a new interval begins.
   */
  tick(nowNs: number, cpuPercent: number | null = null, ringFill: number | null = null): void {
    const seconds = Math.max(0, (nowNs - this.intervalStartNs) / 1e9);
    const per = (n: number) => (seconds > 0 ? n / seconds : 0);
    const eventsPerSec = new Float64Array(EVENT_COUNT);
    for (let type = 0; type < EVENT_COUNT; type++) eventsPerSec[type] = per(this.intervalByType[type]);
    const dropped = this.dropped;
    this.rates = {
      seconds,
      eventsPerSec,
      aggregatedPerSec: per(this.intervalAggregated),
      failuresPerSec: per(this.analysis.failures - this.failuresAtStart),
      busyRetriesPerSec: per(this.analysis.busyRetries - this.retriesAtStart),
      droppedPerSec: per(dropped - this.droppedAtStart),
      cpuPercent,
      ringFill,
    };
    this.finishedIntervalsEvicted += this.current.evictions.pfns;
    this.previous = this.current;
    this.current = new PfnCounters(this.maxPfns);
    this.intervalByType.fill(0);
    this.intervalAggregated = 0;
    this.intervalStartNs = nowNs;
    this.failuresAtStart = this.analysis.failures;
    this.retriesAtStart = this.analysis.busyRetries;
    this.droppedAtStart = dropped;
  }

  /** The telling frame and kind of reference of a stack, worked out once per stack. */
  stackInfo(stackId: number): { frame: string; kind: ReferenceKind } {
    let info = this.stackInfos.get(stackId);
    if (!info) {
      const frames = stackId < 0 ? [] : this.analysis.frames(stackId);
      info = { frame: frames.length > 0 ? tellingFrame(frames) : '[no stack]', kind: referenceKind(frames) };
      // Stacks arrive before the events that use them, but a lookup may come first from a stale id: cache only known ones.
      if (frames.length > 0 || stackId < 0) this.stackInfos.set(stackId, info);
    }
    return info;
  }

  /** The migrate type of the pageblock of `pfn` at its newest event, or -1. */
  migrateType(pfn: number): number {
    const block = Math.floor(pfn / 2 ** PAGEBLOCK_SHIFT);
    const stored = block < FLAT_BLOCKS ? (this.flatBlocks[block] ?? 0) : (this.farBlocks.get(block) ?? 0);
    return stored - 1;
  }

  /**
   * The pfns whose recent events are kept (those on screen, at most a few
   * hundred); the history of every other pfn is dropped.
   */
  watch(pfns: Iterable<number>): void {
    this.watched = new Set(pfns);
    for (const pfn of this.histories.keys()) if (!this.watched.has(pfn)) this.histories.delete(pfn);
  }

  /** The newest events of a watched pfn, oldest first. */
  history(pfn: number): HistoryEvent[] {
    return this.histories.get(pfn) ?? [];
  }

  private setMigrateType(pfn: number, mt: number): void {
    const block = Math.floor(pfn / 2 ** PAGEBLOCK_SHIFT);
    if (block < FLAT_BLOCKS) {
      if (block >= this.flatBlocks.length) {
        const grown = new Uint8Array(Math.min(FLAT_BLOCKS, Math.max(1024, 2 ** Math.ceil(Math.log2(block + 1)))));
        grown.set(this.flatBlocks);
        this.flatBlocks = grown;
      }
      this.flatBlocks[block] = mt + 1;
    } else {
      this.farBlocks.set(block, mt + 1);
    }
  }

  private remember(batch: EventBatch, i: number, strings: StringTable): void {
    const pfn = batch.pfn[i];
    let ring = this.histories.get(pfn);
    if (!ring) this.histories.set(pfn, (ring = []));
    if (ring.length === HISTORY_PER_PFN) ring.shift();
    ring.push({
      tsNs: batch.tsNs[i],
      type: batch.type[i],
      val: batch.val[i],
      ret: batch.ret[i],
      count: batch.count[i],
      pid: batch.pid[i],
      tgid: batch.tgid[i],
      comm: strings.get(batch.comm[i]),
      stackId: batch.stackId[i],
    });
  }
}
