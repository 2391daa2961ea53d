// The `report` sink: counts events per type, page references per pfn, and
// isolation and CMA outcomes, and keeps the kernel's own counters.

import type { CaptureHeader, KernelCounters, PfnCounts } from '../capture/schema';
import { captureLimits, EvictedPfns, evictionLimit, Sampling, samplingOf } from './capture-limits';
import { cmaAllocFailed, EventBatch, isolationFailed } from '../record/event-batch';
import { EVENT_COUNT, EVENT_NAMES, EventName, EventType, isPageRefEvent } from '../record/event-types';
import type { StringTable } from '../record/string-table';
import type { CaptureSink, StreamEnd } from '../stream/capture-sink';
import { DEFAULT_MAX_PFNS, PfnCounters, PfnRow } from '../holds/pfn-counters';
import { referenceDelta } from '../holds/reference-delta';

export class CaptureSummary implements CaptureSink {
  capturedHeader: CaptureHeader | undefined;
  readonly eventsByType = new Float64Array(EVENT_COUNT);
  readonly pfns: PfnCounters;
  lastCounters: KernelCounters | undefined;
  ending: StreamEnd | undefined;
  isolationTests = 0;
  isolationFailures = 0;
  readonly busyPfns = new Map<number, number>();
  cmaAllocations = 0;
  cmaFailedAllocations = 0;
  cmaBusyRetries = 0;
  cmaReleases = 0;
  lastTsNs = -Infinity;
  /** page_ref events that came as per-pfn sums (--aggregate), not records. */
  aggregatedEvents = 0;

  /** `maxPfns`: pfns with totals at most (--max-pfns); beyond, the least recently touched are evicted and counted. */
  constructor(maxPfns = DEFAULT_MAX_PFNS) {
    this.pfns = new PfnCounters(maxPfns);
  }

  header(header: CaptureHeader): void {
    this.capturedHeader = header;
  }

  stacks(): void {}

  events(batch: EventBatch, _strings: StringTable): void {
    for (let i = 0; i < batch.length; i++) {
      const type = batch.type[i];
      this.eventsByType[type]++;
      if (batch.tsNs[i] > this.lastTsNs) this.lastTsNs = batch.tsNs[i];
      if (isPageRefEvent(type)) {
        this.pfns.add(batch.pfn[i], referenceDelta(type, batch.val[i], batch.ret[i]), batch.count[i], batch.mapcount[i], batch.tsNs[i]);
      } else if (type === EventType.TestPagesIsolated) {
        this.isolationTests++;
        if (isolationFailed(batch, i)) {
          this.isolationFailures++;
          const busyPfn = batch.mapping[i];
          this.busyPfns.set(busyPfn, (this.busyPfns.get(busyPfn) ?? 0) + 1);
        }
      } else if (type === EventType.CmaAllocFinish) {
        this.cmaAllocations++;
        if (cmaAllocFailed(batch, i)) this.cmaFailedAllocations++;
      } else if (type === EventType.CmaAllocBusyRetry) {
        this.cmaBusyRetries++;
      } else if (type === EventType.CmaRelease) {
        this.cmaReleases++;
      }
    }
  }

  counters(counters: KernelCounters): void {
    this.lastCounters = counters;
  }

  /** --aggregate captures: the kernel's per-pfn sums, added like events. */
  pfnCounts(counts: PfnCounts): void {
    for (let i = 0; i < counts.pfn.length; i++) {
      this.pfns.merge(counts.pfn[i], counts.gets[i], counts.puts[i], counts.events[i], counts.lastCount[i], NaN, counts.lastTsNs[i]);
      this.aggregatedEvents += counts.events[i];
      if (counts.lastTsNs[i] > this.lastTsNs) this.lastTsNs = counts.lastTsNs[i];
    }
  }

  end(end: StreamEnd): void {
    this.ending = end;
    if (end.trailer) this.lastCounters = end.trailer.counters;
  }
}

export interface ReportJson {
  kernel: { release: string; version: string; machine: string };
  capture: {
    source: string;
    hostname: string;
    startTime: string;
    durationSec: number;
    eventsAttached: string[];
    eventsMissing: string[];
    stacks: boolean;
    /** "all", "sampled", "armed" or "none". */
    stacksMode: string;
    stopReason: string | null;
    /** Why the capture is incomplete, or null. */
    truncated: string | null;
    /** page->mapping values are the kernel's pointers (--raw-pointers), not the keyed hash. */
    rawPointers: boolean;
  };
  /** How the capture was sampled; counts below are of what was kept. */
  sampling: Sampling;
  /** What the capture could not see by how it was recorded: sentences ([] for a full capture). */
  limits: string[];
  /** Records in the capture per event name. */
  events: Record<EventName, number>;
  /** page_ref events summed per pfn in the kernel (--aggregate) rather than recorded. */
  aggregatedEvents: number;
  /** Sampled captures: page_ref events of all pages, estimated as kept events (records or sums) times sampling.scale; else null. */
  estimatedPageRefEvents: number | null;
  /** Records the kernel could not hand over (ring buffer full), all events. */
  dropped: number;
  /** The kernel's counters per event name. */
  kernelCounters: Record<
    EventName,
    {
      seen: number;
      filtered: number;
      sampledOut: number;
      countedOnly: number;
      emitted: number;
      dropped: number;
      stackLost: number;
      aggregated: number;
      aggregateOverflow: number;
      recursionMisses: number;
    }
  > | null;
  /** Distinct pfns with page_ref events, as tracked at the end (evicted ones not among them). */
  pfns: number;
  /** pfns whose totals were evicted to stay within --max-pfns, with the events and references they had. */
  evicted: EvictedPfns & { gets: number; puts: number };
  isolation: { tests: number; failures: number; busyPfns: { pfn: string; failures: number }[] };
  cma: { allocations: number; failedAllocations: number; busyRetries: number; releases: number };
  /** Pages with the most references outstanding, then the most events. */
  top: { pfn: string; gets: number; puts: number; net: number; events: number }[];
}

export function hexPfn(pfn: number): string {
  return `0x${pfn.toString(16)}`;
}

export function byOutstandingReferences(a: PfnRow, b: PfnRow): number {
  return b.net - a.net || b.events - a.events || a.pfn - b.pfn;
}

export function reportJson(summary: CaptureSummary, top: number): ReportJson {
  const header = summary.capturedHeader;
  if (!header) throw new Error('report: the capture had no header');
  const counters = summary.lastCounters;
  const events = Object.fromEntries(EVENT_NAMES.map((name, type) => [name, summary.eventsByType[type]])) as Record<EventName, number>;
  const sum = (values: number[] | undefined) => (values ?? []).reduce((a, b) => a + b, 0);
  const sampling = samplingOf(header);
  const evicted = { maxPfns: summary.pfns.maxPfns, ...summary.pfns.evictions };
  const keptPageRefEvents = EVENT_NAMES.reduce((total, _name, type) => total + (isPageRefEvent(type) ? summary.eventsByType[type] : 0), 0) + summary.aggregatedEvents;
  return {
    kernel: { release: header.kernelRelease, version: header.kernelVersion, machine: header.machine },
    capture: {
      source: header.source,
      hostname: header.hostname,
      startTime: new Date(header.startTimeUnixUs / 1000).toISOString(),
      durationSec: durationSec(summary),
      eventsAttached: header.eventsAttached,
      eventsMissing: header.eventsMissing,
      stacks: header.options?.stacks ?? false,
      stacksMode: header.options?.stacksMode || (header.options?.stacks ? 'all' : 'none'),
      stopReason: summary.ending?.trailer?.stopReason ?? null,
      truncated: summary.ending?.truncated ?? null,
      // Captures from before the field have none: false is right for them.
      rawPointers: header.rawPointers === true,
    },
    sampling,
    limits: [...captureLimits(header, counters), ...evictionLimit(evicted)],
    events,
    aggregatedEvents: summary.aggregatedEvents,
    estimatedPageRefEvents: sampling.estimated ? keptPageRefEvents * sampling.scale : null,
    dropped: sum(counters?.dropped),
    kernelCounters: counters
      ? (Object.fromEntries(
          EVENT_NAMES.map((name, type) => [
            name,
            {
              seen: counters.seen[type] ?? 0,
              filtered: counters.filtered[type] ?? 0,
              sampledOut: counters.sampledOut?.[type] ?? 0,
              countedOnly: counters.countedOnly?.[type] ?? 0,
              emitted: counters.emitted[type] ?? 0,
              dropped: counters.dropped[type] ?? 0,
              stackLost: counters.stackLost[type] ?? 0,
              aggregated: counters.aggregated?.[type] ?? 0,
              aggregateOverflow: counters.aggregateOverflow?.[type] ?? 0,
              recursionMisses: counters.recursionMisses[type] ?? 0,
            },
          ]),
        ) as ReportJson['kernelCounters'])
      : null,
    pfns: summary.pfns.size,
    evicted,
    isolation: {
      tests: summary.isolationTests,
      failures: summary.isolationFailures,
      busyPfns: [...summary.busyPfns]
        .sort((a, b) => b[1] - a[1] || a[0] - b[0])
        .slice(0, top)
        .map(([pfn, failures]) => ({ pfn: hexPfn(pfn), failures })),
    },
    cma: {
      allocations: summary.cmaAllocations,
      failedAllocations: summary.cmaFailedAllocations,
      busyRetries: summary.cmaBusyRetries,
      releases: summary.cmaReleases,
    },
    top: summary.pfns.top(top, byOutstandingReferences).map((row) => ({ pfn: hexPfn(row.pfn), gets: row.gets, puts: row.puts, net: row.net, events: row.events })),
  };
}

function durationSec(summary: CaptureSummary): number {
  const header = summary.capturedHeader!;
  const endUs = summary.ending?.trailer?.endTimeUnixUs;
  if (endUs) return Math.max(0, (endUs - header.startTimeUnixUs) / 1e6);
  return summary.lastTsNs > 0 ? summary.lastTsNs / 1e9 : 0;
}
