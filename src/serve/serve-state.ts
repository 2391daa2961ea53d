// The state of a `pageref serve` session: a sink on the live record stream
// that keeps the kernel's counters, blame (through the hold profile, which
// owns one) and the pages seen, and answers what the HTTP endpoints ask.

import type { CaptureHeader, KernelCounters, PfnCounts, StackEntry } from '../capture/schema';
import { HoldProfile } from '../export/pprof-profile';
import type { EventBatch } from '../record/event-batch';
import { EventName, isPageRefEvent } from '../record/event-types';
import type { StringTable } from '../record/string-table';
import { PfnSet } from '../holds/pfn-set';
import { captureNowNs } from '../live/capture-clock';
import type { CaptureSink, StreamEnd } from '../stream/capture-sink';
import { Culprit, culprits } from './culprits';
import type { FlightFile, FlightStats } from './flight-recorder';
import type { MetricFamily } from './metric-family';
import { metricFamilies, ServeSnapshot } from './serve-metrics';

/** A file the flight recorder wrote (FlightFile). */
export type CaptureListing = FlightFile;

/** What the session shows of its flight recorder (FlightRecorder). */
export interface FlightView {
  captures(): FlightFile[];
  readonly stats: FlightStats;
}

/** What the HTTP endpoints read; ServeState is the live one. */
export interface ServeSource {
  /** /metrics: the families at the time of the scrape, rendered in the format the scraper asks for. */
  metricFamilies(): MetricFamily[];
  /** /stacks: every culprit stack id, with its frames, innermost first. */
  culpritStacks(): Record<string, StackListing>;
  /** /debug/pprof/holds: a gzipped pprof profile. */
  holdsProfile(): Uint8Array;
  /** /captures. */
  captures(): CaptureListing[];
}

export interface StackListing {
  kind: string;
  role: string;
  pages: number;
  frames: string[];
}

/** Busy pfns kept at most, however many fail within the culprit window. */
export const MAX_BUSY_PFNS = 65536;

/** serve --culprit-window: failures older than this leave the culprits (one hour). */
export const DEFAULT_CULPRIT_WINDOW_SEC = 3600;

export interface ServeStateOptions {
  /** False when the kernel lacks the page_ref tracepoints. */
  pageRefAvailable: boolean;
  /** Culprit series on /metrics, at most. */
  maxCulprits: number;
  /** --max-pfns: pages the hold table keeps at most; beyond, the least recently touched are evicted and counted. */
  maxPfns: number;
  /** Busy pfns whose last failure is older than this are forgotten. */
  culpritWindowSec: number;
  /** Now, in ns since the header's monotonic base, as the records' times (default: captureNowNs). */
  clockNs?: () => number;
}

export class ServeState implements CaptureSink, ServeSource {
  private readonly profile: HoldProfile;
  private eventsAttached: EventName[] = [];
  private counters_: KernelCounters | undefined;
  private readonly pfns = new PfnSet();
  private forgotten = 0;
  private captureHeader: CaptureHeader | undefined;
  /** serve --flight-dir: the recorder in front of this state. */
  flight: FlightView | undefined;

  constructor(private readonly options: ServeStateOptions) {
    this.profile = new HoldProfile(options.maxPfns);
  }

  header(header: CaptureHeader): void {
    this.eventsAttached = header.eventsAttached as EventName[];
    this.captureHeader = header;
    this.profile.header(header);
  }

  stacks(entries: StackEntry[]): void {
    this.profile.stacks(entries);
  }

  events(batch: EventBatch, strings: StringTable): void {
    for (let i = 0; i < batch.length; i++) if (isPageRefEvent(batch.type[i])) this.pfns.add(batch.pfn[i]);
    this.profile.events(batch, strings);
  }

  counters(counters: KernelCounters): void {
    this.counters_ = counters;
    this.profile.counters(counters);
  }

  pfnCounts(totals: PfnCounts): void {
    for (let i = 0; i < totals.pfn.length; i++) this.pfns.add(totals.pfn[i]);
    this.profile.pfnCounts(totals);
  }

  end(end: StreamEnd): void {
    if (end.trailer) this.counters_ = end.trailer.counters;
    this.profile.end(end);
  }

  /**
   * Forgets the busy pfns that last failed before the culprit window (serve
   * calls it on a timer, and every answer calls it first). The totals stay.
   */
  forgetOldFailures(): void {
    if (!this.captureHeader) return;
    const nowNs = this.options.clockNs ? this.options.clockNs() : captureNowNs(this.captureHeader);
    const cutoffNs = nowNs - this.options.culpritWindowSec * 1e9;
    this.forgotten += this.profile.analysis.forgetBusy(cutoffNs, MAX_BUSY_PFNS);
  }

  snapshot(): ServeSnapshot {
    this.forgetOldFailures();
    const blame = this.profile.analysis;
    const cpu = process.cpuUsage();
    return {
      eventsAttached: this.eventsAttached,
      counters: this.counters_,
      isolationFailures: blame.failures,
      cmaBusyRetries: blame.busyRetries,
      cmaFailedAllocations: blame.cmaFailedAllocations,
      pfnsTracked: this.pfns.size,
      evictedPfns: blame.holds.evictions.pfns,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      pageRefAvailable: this.options.pageRefAvailable,
      busyPfns: blame.busy.size,
      busyPfnsForgotten: this.forgotten,
      culpritWindowSec: this.options.culpritWindowSec,
      culprits: culprits(blame),
      flight: this.flight?.stats,
    };
  }

  metricFamilies(): MetricFamily[] {
    return metricFamilies(this.snapshot(), this.options.maxCulprits);
  }

  culpritStacks(): Record<string, StackListing> {
    this.forgetOldFailures();
    return stackListings(culprits(this.profile.analysis));
  }

  holdsProfile(): Uint8Array {
    this.forgetOldFailures();
    return this.profile.encode().bytes;
  }

  captures(): CaptureListing[] {
    return this.flight?.captures() ?? [];
  }
}

/** Culprits by stack id; a stack that both held and released is listed with the role it has the most pages in. */
export function stackListings(all: Culprit[]): Record<string, StackListing> {
  const listing: Record<string, StackListing> = {};
  for (const c of all) if (!(c.id in listing)) listing[c.id] = { kind: c.kind, role: c.role, pages: c.pages, frames: c.frames };
  return listing;
}
