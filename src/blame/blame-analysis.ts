// `pageref blame`: who held the pages that isolation could not take. A sink
// that replays every page_ref event through the hold table, and at each
// failed isolation test (fin_pfn < end_pfn) snapshots the holders of the busy
// pfn; the puts on that pfn afterwards are its releasers, as in the commit
// that added the page_ref tracepoints (the exit path's batched freeing).

import type { CaptureHeader, KernelCounters, StackEntry } from '../capture/schema';
import { cmaAllocFailed, EventBatch, isolationFailed } from '../record/event-batch';
import { EventType, isPageRefEvent } from '../record/event-types';
import type { StringTable } from '../record/string-table';
import type { CaptureSink, StreamEnd } from '../stream/capture-sink';
import { Hold, HoldTable, readRefEvent, RefEvent } from '../holds/hold-table';
import { DEFAULT_MAX_PFNS } from '../holds/pfn-counters';
import { referenceKind, releaseKind } from './stack-kinds';

/** Releasers kept per busy pfn; holders are bounded by the hold table. */
export const MAX_RELEASERS_PER_PFN = 16;

export interface BusyHolder {
  stackId: number;
  pid: number;
  tgid: number;
  comm: string;
  refs: number;
  /** How long the reference had been held at the failure. */
  heldNs: number;
  certain: boolean;
}

/** A put after a failure that dropped a reference the page had at a failure. */
export interface BusyReleaser {
  stackId: number;
  pid: number;
  tgid: number;
  comm: string;
  refs: number;
  /** Time from the first failure to this put. */
  afterNs: number;
  /** Stack of the holder whose reference this put dropped, by the pairing rule; NO_HOLDER for an untracked reference. */
  releasedStackId: number;
}

export const NO_HOLDER = -2;

export interface BusyPfn {
  pfn: number;
  failures: number;
  /** cma_alloc_busy_retry events that followed a failure on this pfn. */
  busyRetries: number;
  firstFailureNs: number;
  lastFailureNs: number;
  /** Refcount and mapcount the kernel last reported before the first failure (-1: no event seen). */
  count: number;
  mapcount: number;
  holders: BusyHolder[];
  /** References the page had that pageref did not see taken (before tracing, or folded). */
  untrackedRefs: number;
  releasers: BusyReleaser[];
}

export class BlameAnalysis implements CaptureSink {
  captureHeader: CaptureHeader | undefined;
  readonly stackFrames = new Map<number, string[]>();
  private readonly takesKind = new Map<number, string>();
  private readonly releasesKind = new Map<number, string>();
  readonly holds: HoldTable;
  readonly busy = new Map<number, BusyPfn>();
  isolationTests = 0;
  failures = 0;
  busyRetries = 0;
  cmaFailedAllocations = 0;
  lastCounters: KernelCounters | undefined;
  ending: StreamEnd | undefined;
  private strings: StringTable | undefined;
  /** The busy pfn of each task's last failed isolation, for the busy retry that follows it. */
  private readonly lastBusyByPid = new Map<number, number>();
  private readonly event: RefEvent = { type: 0, pfn: 0, tsNs: 0, val: 0, ret: 0, count: 0, mapcount: 0, flags: 0, mapping: 0, stackId: -1, pid: 0, tgid: 0, comm: 0 };

  /** `maxPfns`: pages in the hold table at most (--max-pfns); pages with nothing outstanding are evicted first. */
  constructor(maxPfns = DEFAULT_MAX_PFNS) {
    const hints = {
      takes: (stackId: number) => cached(this.takesKind, stackId, () => referenceKind(this.frames(stackId))),
      releases: (stackId: number) => cached(this.releasesKind, stackId, () => releaseKind(this.frames(stackId))),
    };
    this.holds = new HoldTable(1 << 14, hints, maxPfns);
  }

  header(header: CaptureHeader): void {
    this.captureHeader = header;
  }

  stacks(entries: StackEntry[]): void {
    for (const entry of entries) this.stackFrames.set(entry.id, entry.frames);
  }

  events(batch: EventBatch, strings: StringTable): void {
    this.strings = strings;
    const e = this.event;
    for (let i = 0; i < batch.length; i++) {
      const type = batch.type[i];
      if (isPageRefEvent(type)) {
        readRefEvent(e, batch, i);
        const busy = this.busy.get(e.pfn);
        const cancelled: Hold[] | undefined = busy && busy.releasers.length < MAX_RELEASERS_PER_PFN ? [] : undefined;
        const delta = this.holds.apply(e, cancelled);
        if (busy && cancelled && delta < 0) {
          // A releaser drops a reference that was there at a failure: one
          // taken before it, or one pageref never saw taken. Gets and puts
          // that both came after (migration retrying, say) release nothing.
          const tracked = cancelled.reduce((sum, hold) => sum + hold.refs, 0);
          const released = cancelled.filter((hold) => hold.takenNs <= busy.lastFailureNs);
          const refs = released.reduce((sum, hold) => sum + hold.refs, 0) + (-delta - tracked);
          if (refs > 0) {
            busy.releasers.push({
              stackId: e.stackId,
              pid: e.pid,
              tgid: e.tgid,
              comm: strings.get(e.comm),
              refs,
              afterNs: e.tsNs - busy.firstFailureNs,
              releasedStackId: released.length > 0 ? released[0].stackId : NO_HOLDER,
            });
          }
        }
      } else if (type === EventType.TestPagesIsolated) {
        this.isolationTests++;
        if (isolationFailed(batch, i)) this.failed(batch.mapping[i], batch.tsNs[i], batch.pid[i]);
      } else if (type === EventType.CmaAllocBusyRetry) {
        this.busyRetries++;
        const pfn = this.lastBusyByPid.get(batch.pid[i]);
        const busy = pfn === undefined ? undefined : this.busy.get(pfn);
        if (busy) busy.busyRetries++;
      } else if (type === EventType.CmaAllocFinish && cmaAllocFailed(batch, i)) {
        this.cmaFailedAllocations++;
      }
    }
  }

  counters(counters: KernelCounters): void {
    this.lastCounters = counters;
  }

  end(end: StreamEnd): void {
    this.ending = end;
    if (end.trailer) this.lastCounters = end.trailer.counters;
  }

  /**
   * Forgets the busy pfns whose last failure came before `cutoffNs` and,
   * beyond `maxBusy`, the ones that failed longest ago: `pageref serve` runs
   * for weeks and reports the culprits of now, in bounded memory. The totals
   * (failures, busy retries) keep counting. Returns how many were forgotten.
   */
  forgetBusy(cutoffNs: number, maxBusy = Infinity): number {
    const before = this.busy.size;
    for (const [pfn, busy] of this.busy) if (busy.lastFailureNs < cutoffNs) this.busy.delete(pfn);
    if (this.busy.size > maxBusy) {
      const oldestFirst = [...this.busy.values()].sort((a, b) => a.lastFailureNs - b.lastFailureNs);
      for (const busy of oldestFirst.slice(0, this.busy.size - maxBusy)) this.busy.delete(busy.pfn);
    }
    for (const [pid, pfn] of this.lastBusyByPid) if (!this.busy.has(pfn)) this.lastBusyByPid.delete(pid);
    return before - this.busy.size;
  }

  /** Frames of a stack id, innermost first; [] when there is none. */
  frames(stackId: number): string[] {
    return this.stackFrames.get(stackId) ?? [];
  }

  private failed(pfn: number, tsNs: number, pid: number): void {
    this.failures++;
    this.lastBusyByPid.set(pid, pfn);
    let busy = this.busy.get(pfn);
    const page = this.holds.page(pfn);
    const current = this.holds.holds(pfn).map((hold) => this.holder(hold, tsNs));
    if (!busy) {
      const held = current.reduce((sum, h) => sum + h.refs, 0);
      busy = {
        pfn,
        failures: 0,
        busyRetries: 0,
        firstFailureNs: tsNs,
        lastFailureNs: tsNs,
        count: page?.lastCount ?? -1,
        mapcount: page?.lastMapcount ?? -1,
        holders: current,
        untrackedRefs: page ? Math.max(0, page.lastCount - held) : 0,
        releasers: [],
      };
      this.busy.set(pfn, busy);
    } else {
      // Later failures may meet holders that came after the first one.
      for (const holder of current) {
        if (!busy.holders.some((h) => h.stackId === holder.stackId && h.pid === holder.pid)) busy.holders.push(holder);
      }
    }
    busy.failures++;
    busy.lastFailureNs = tsNs;
  }

  private holder(hold: Hold, tsNs: number): BusyHolder {
    return {
      stackId: hold.stackId,
      pid: hold.pid,
      tgid: hold.tgid,
      comm: this.strings?.get(hold.comm) ?? '',
      refs: hold.refs,
      heldNs: tsNs - hold.takenNs,
      certain: hold.certain,
    };
  }
}

function cached(cache: Map<number, string>, stackId: number, compute: () => string): string {
  if (stackId < 0) return '';
  let value = cache.get(stackId);
  if (value === undefined) {
    value = compute();
    cache.set(stackId, value);
  }
  return value;
}
