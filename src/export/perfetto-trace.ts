// A capture as a Perfetto trace (proto/perfetto-subset.proto) that
// ui.perfetto.dev opens: a refcount counter track for each of a bounded
// number of pfns (busy pfns of failed isolations first, then the most
// active), and instant events on the thread tracks of the tasks that ran
// them for isolation failures and CMA busy retries (with the holders of the
// busy page and their stacks), allocation results (a failed one with the
// holders of the pages its isolations failed on) and releases, each CMA
// allocation a slice from cma_alloc_start to cma_alloc_finish.
//
// Written as a stream: each packet is appended to the file as field 1 of
// Trace. Perfetto wants timestamps in order on a sequence, and a capture's
// records are nearly but not strictly in time order (CPUs reserve ring
// buffer space a little after taking their timestamps; --aggregate's
// per-pfn frames come up to a second late), so timestamped packets wait in
// a window, are sorted, and leave once they are older than the newest by
// more than the window; a packet later still is written at the time of the
// last one written (counted in `reordered`).

import { closeSync, fsyncSync, writeSync } from 'node:fs';
import { createOutputFile } from '../capture/output-file';
import protobuf from 'protobufjs';
import { referenceKind, releaseKind, tellingFrame } from '../blame/stack-kinds';
import type { CaptureHeader, KernelCounters, PfnCounts, StackEntry } from '../capture/schema';
import '../capture/schema'; // 64-bit fields as plain numbers (protobufjs without Long)
import { HoldTable, readRefEvent, RefEvent } from '../holds/hold-table';
import { cmaAllocFailed, EventBatch, isolationFailed, NO_PFN } from '../record/event-batch';
import { EventType, isPageRefEvent } from '../record/event-types';
import type { StringTable } from '../record/string-table';
import { captureLimits, evictionLimit } from '../report/capture-limits';
import { DEFAULT_MAX_PFNS } from '../holds/pfn-counters';
import type { CaptureSink, StreamEnd } from '../stream/capture-sink';
import { projectPath } from '../paths';

let root: protobuf.Root | undefined;

/** protobufjs types of proto/perfetto-subset.proto. */
export function perfettoSchema(): { Trace: protobuf.Type; TracePacket: protobuf.Type } {
  root ??= protobuf.loadSync(projectPath('proto', 'perfetto-subset.proto'));
  return { Trace: root.lookupType('pageref.perfetto.Trace'), TracePacket: root.lookupType('pageref.perfetto.TracePacket') };
}

export const SEQUENCE_ID = 1;
const SEQ_INCREMENTAL_STATE_CLEARED = 1;
const SEQ_NEEDS_INCREMENTAL_STATE = 2;
const TYPE_SLICE_BEGIN = 1;
const TYPE_SLICE_END = 2;
const TYPE_INSTANT = 3;
const TYPE_COUNTER = 4;
const UNIT_COUNT = 2;

// Track uuids: fixed ones, then counters, processes and threads in ranges of their own (all below 2^53).
const CAPTURE_TRACK = 1;
const REFCOUNT_GROUP = 2;
const COUNTER_BASE = 1_000;
const PROCESS_BASE = 2 ** 32;
const THREAD_BASE = 2 ** 33;

const CATEGORY = { pageref: 1 };
const NAMES = ['capture', 'isolation failed', 'cma busy retry', 'cma alloc', 'cma alloc finish', 'cma alloc failed', 'cma release'] as const;
type EventNameText = (typeof NAMES)[number];
const ANNOTATIONS = ['pfn', 'comm', 'pid', 'tid', 'holders', 'start_pfn', 'end_pfn', 'count', 'area', 'refcount', 'source', 'kernel', 'limits', 'untracked_refs', 'align', 'busy_pfns'] as const;
type AnnotationName = (typeof ANNOTATIONS)[number];

export const DEFAULT_PFN_TRACKS = 32;
/** Packets waiting before the window is sorted and its old end written. */
const DRAIN_AT = 4096;
/** Encoded packets are written once they add up to this many bytes: few write calls, little held. */
export const FLUSH_BYTES = 1 << 16;
/** Holders listed for one busy pfn. */
const MAX_HOLDERS_SHOWN = 8;
/** Busy pfns listed, with their holders, in a failed allocation's annotation. */
const MAX_BUSY_PFNS_SHOWN = 4;

export interface PerfettoSummary {
  packets: number;
  counterTracks: number;
  pfns: string[];
  threadTracks: number;
  processTracks: number;
  instants: number;
  /** CMA allocations drawn as slices (cma_alloc_start to cma_alloc_finish). */
  slices: number;
  counterEvents: number;
  /** Packets written at the time of the packet before them because they came later than the window. */
  reordered: number;
  limits: string[];
}

type Annotation = { nameIid: number; stringValue?: string; intValue?: number; uintValue?: number };
type Pending = { ts: number; seq: number; packet: Record<string, unknown> };
/** The isolation failures inside one CMA allocation: the first busy pfns, each with its holders at its last failure. */
type AllocationFailures = { byPfn: Map<number, { failures: number; holders: string }>; otherFailures: number };

export class PerfettoTraceWriter implements CaptureSink {
  private fd: number | undefined;
  private readonly TracePacket = perfettoSchema().TracePacket;
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  private pending: Pending[] = [];
  private seq = 0;
  private newestTs = -Infinity;
  // Records may come from before the capture's base (negative times): nothing is written yet.
  private lastWrittenTs = -Infinity;
  private windowNs = 10_000_000;
  private drainAt = DRAIN_AT;
  private baseNs = 0;
  private readonly counterTrack = new Map<number, number>();
  private readonly threads = new Set<number>();
  private readonly processes = new Set<number>();
  private readonly stackFrames = new Map<number, string[]>();
  private readonly takes = new Map<number, string>();
  private readonly releases = new Map<number, string>();
  private readonly holds: HoldTable;
  private readonly event: RefEvent = { type: 0, pfn: 0, tsNs: 0, val: 0, ret: 0, count: 0, mapcount: 0, flags: 0, mapping: 0, stackId: -1, pid: 0, tgid: 0, comm: 0 };
  private readonly lastBusyByPid = new Map<number, number>();
  /** Threads inside a CMA allocation (a begun slice), with the failures seen in it so far. */
  private readonly openAllocations = new Map<number, AllocationFailures>();
  private header_: CaptureHeader | undefined;
  private counters_: KernelCounters | undefined;
  private captureAnnotated = false;
  readonly summary: PerfettoSummary;

  /**
   * Creates the file (0600; an existing one only with `force`). `pfns` are
   * the pages that get a refcount track, in the order they are shown;
   * `maxPfns` (--max-pfns) bounds the hold table.
   */
  constructor(readonly path: string, private readonly pfns: number[], options: { force?: boolean; maxPfns?: number } = {}) {
    const hints = {
      takes: (id: number) => memo(this.takes, id, () => referenceKind(this.stackFrames.get(id) ?? [])),
      releases: (id: number) => memo(this.releases, id, () => releaseKind(this.stackFrames.get(id) ?? [])),
    };
    this.holds = new HoldTable(1 << 12, hints, options.maxPfns ?? DEFAULT_MAX_PFNS);
    this.fd = createOutputFile(path, options.force === true);
    this.summary = { packets: 0, counterTracks: pfns.length, pfns: pfns.map(hex), threadTracks: 0, processTracks: 0, instants: 0, slices: 0, counterEvents: 0, reordered: 0, limits: [] };
  }

  header(header: CaptureHeader): void {
    this.header_ = header;
    // Perfetto's own clock is the boot clock; the capture's base (CLOCK_MONOTONIC) keeps times near the kernel's.
    const base = Number(header.monotonicBaseNs);
    this.baseNs = Number.isSafeInteger(base) && base < 2 ** 52 ? base : 0;
    if (header.options?.aggregateSlots > 0) this.windowNs = 2_000_000_000;
    this.emit({
      trustedPacketSequenceId: SEQUENCE_ID,
      sequenceFlags: SEQ_INCREMENTAL_STATE_CLEARED,
      internedData: {
        eventCategories: [{ iid: CATEGORY.pageref, name: 'pageref' }],
        eventNames: NAMES.map((name, i) => ({ iid: i + 1, name })),
        debugAnnotationNames: ANNOTATIONS.map((name, i) => ({ iid: i + 1, name })),
      },
    });
    this.describe({ uuid: CAPTURE_TRACK, name: `pageref: ${header.source === 'live' ? `live capture on ${header.hostname}` : header.source}, kernel ${header.kernelRelease}` });
    this.describe({ uuid: REFCOUNT_GROUP, name: `page refcounts (${this.pfns.length} pfns: busy first, then the most active)` });
    this.pfns.forEach((pfn, i) => {
      const uuid = COUNTER_BASE + i;
      this.counterTrack.set(pfn, uuid);
      this.describe({ uuid, parentUuid: REFCOUNT_GROUP, name: `pfn ${hex(pfn)} refcount`, counter: { unit: UNIT_COUNT } });
    });
  }

  stacks(stacks: StackEntry[]): void {
    for (const stack of stacks) this.stackFrames.set(stack.id, stack.frames);
  }

  events(batch: EventBatch, strings: StringTable): void {
    const e = this.event;
    for (let i = 0; i < batch.length; i++) {
      const type = batch.type[i];
      const ts = batch.tsNs[i];
      if (!this.captureAnnotated) this.annotateCapture(ts);
      if (isPageRefEvent(type)) {
        readRefEvent(e, batch, i);
        this.holds.apply(e);
        const track = this.counterTrack.get(e.pfn);
        if (track !== undefined) this.counter(track, ts, e.count);
        continue;
      }
      const comm = strings.get(batch.comm[i]);
      const task: Annotation[] = [this.str('comm', comm), this.int('pid', batch.tgid[i]), this.int('tid', batch.pid[i])];
      const thread = this.thread(batch.pid[i], batch.tgid[i], comm);
      if (type === EventType.TestPagesIsolated) {
        if (!isolationFailed(batch, i)) continue;
        const busy = batch.mapping[i];
        this.lastBusyByPid.set(batch.pid[i], busy);
        const holders = this.holdersText(busy, ts, strings);
        const allocation = this.openAllocations.get(batch.pid[i]);
        if (allocation) noteFailure(allocation, busy, holders);
        this.instant(thread, ts, 'isolation failed', [
          this.str('pfn', hex(busy)),
          this.str('start_pfn', hex(batch.pfn[i])),
          this.str('end_pfn', hex(batch.flags[i])),
          this.str('holders', holders),
          ...this.refcounts(busy),
          ...task,
        ]);
      } else if (type === EventType.CmaAllocBusyRetry) {
        // The kernel retries because of its task's last failure: who holds that page now keeps it busy.
        const busy = this.lastBusyByPid.get(batch.pid[i]);
        const page = busy === undefined ? [] : [this.str('pfn', hex(busy)), this.str('holders', this.holdersText(busy, ts, strings)), ...this.refcounts(busy)];
        this.instant(thread, ts, 'cma busy retry', [...page, this.str('area', strings.get(batch.name[i])), ...task]);
      } else {
        const area = this.str('area', strings.get(batch.name[i]));
        const count = this.int('count', batch.flags[i]);
        const pfn = batch.pfn[i] === NO_PFN ? [] : [this.str('pfn', hex(batch.pfn[i]))];
        if (type === EventType.CmaAllocStart) {
          // An allocation is a slice on its task's thread, its failures and retries inside it.
          this.slice(TYPE_SLICE_BEGIN, thread, ts, [area, count, this.int('align', batch.mapping[i]), ...task]);
          this.openAllocations.set(batch.pid[i], { byPfn: new Map(), otherFailures: 0 });
        } else if (type === EventType.CmaAllocFinish) {
          const allocation = this.openAllocations.get(batch.pid[i]);
          if (allocation) {
            this.openAllocations.delete(batch.pid[i]);
            this.slice(TYPE_SLICE_END, thread, ts, []);
          }
          if (cmaAllocFailed(batch, i)) this.instant(thread, ts, 'cma alloc failed', [area, count, ...pfn, ...this.failureHolders(allocation), ...task]);
          else this.instant(thread, ts, 'cma alloc finish', [area, count, ...pfn, ...task]);
        }
        else if (type === EventType.CmaRelease) this.instant(thread, ts, 'cma release', [area, count, ...pfn, ...task]);
      }
    }
  }

  counters(counters: KernelCounters): void {
    this.counters_ = counters;
  }

  pfnCounts(totals: PfnCounts): void {
    for (let i = 0; i < totals.pfn.length; i++) {
      const track = this.counterTrack.get(totals.pfn[i]);
      if (track !== undefined) this.counter(track, totals.lastTsNs[i], totals.lastCount[i]);
    }
  }

  /** Writes what waits, flushes to disk and closes. Safe to call twice. */
  end(end: StreamEnd): void {
    if (this.fd === undefined) return;
    if (end.trailer) this.counters_ = end.trailer.counters;
    if (!this.captureAnnotated) this.annotateCapture(0);
    this.drain(true);
    this.flushChunks();
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
    this.summary.limits = this.limits(end);
  }

  private limits(end?: StreamEnd): string[] {
    const limits = [...captureLimits(this.header_, this.counters_), ...evictionLimit({ maxPfns: this.holds.maxPfns, ...this.holds.evictions })];
    const dropped = (this.counters_?.dropped ?? []).reduce((a, b) => a + b, 0);
    if (dropped > 0) limits.push(`${dropped} records were dropped by the kernel (ring buffer full)`);
    if (end?.truncated) limits.push(`the capture was cut short: ${end.truncated}`);
    return limits;
  }

  // One instant at the start on the capture's track says where the trace came from and what it could not see.
  private annotateCapture(ts: number): void {
    this.captureAnnotated = true;
    const header = this.header_;
    const limits = captureLimits(header, undefined);
    this.instant(CAPTURE_TRACK, ts, 'capture', [
      this.str('source', header?.source ?? ''),
      this.str('kernel', header?.kernelRelease ?? ''),
      this.str('limits', limits.length > 0 ? limits.join('; ') : 'none: every event was recorded'),
    ]);
  }

  // Each reference outstanding on the page at `ts` (the blame rule), one line each.
  private holdersText(pfn: number, ts: number, strings: StringTable): string {
    const holds = this.holds.holds(pfn);
    const lines = holds.slice(0, MAX_HOLDERS_SHOWN).map((h) => {
      const frames = this.stackFrames.get(h.stackId) ?? [];
      const kind = frames.length > 0 ? referenceKind(frames) : 'other';
      const age = ((ts - h.takenNs) / 1e6).toFixed(3);
      return `${strings.get(h.comm)}[${h.tgid}] ${h.refs} ref ${kind} ${tellingFrame(frames)}, held ${age} ms: ${frames.length > 0 ? frames.join(' <- ') : '[no stack]'}`;
    });
    if (holds.length > MAX_HOLDERS_SHOWN) lines.push(`and ${holds.length - MAX_HOLDERS_SHOWN} more`);
    return lines.length > 0 ? lines.join('\n') : 'none seen taken';
  }

  // The page's refcount at its last event, and how much of it no hold pageref saw taken explains.
  private refcounts(pfn: number): Annotation[] {
    const page = this.holds.page(pfn);
    if (!page) return [];
    const held = this.holds.holds(pfn).reduce((sum, h) => sum + h.refs, 0);
    return [this.int('refcount', page.lastCount), this.int('untracked_refs', Math.max(0, page.lastCount - held))];
  }

  // A failed allocation names the pages its isolations failed on and who held them then: they are why it failed.
  private failureHolders(allocation: AllocationFailures | undefined): Annotation[] {
    if (!allocation || allocation.byPfn.size === 0) return [this.str('holders', 'no failed isolation seen in this allocation')];
    const blocks = [...allocation.byPfn].map(([pfn, { failures, holders }]) =>
      `pfn ${hex(pfn)}, ${failures} failure${failures === 1 ? '' : 's'}, holders at the last:\n  ${holders.split('\n').join('\n  ')}`);
    if (allocation.otherFailures > 0) blocks.push(`and ${allocation.otherFailures} more failure${allocation.otherFailures === 1 ? '' : 's'} on other pfns`);
    return [this.str('busy_pfns', [...allocation.byPfn.keys()].map(hex).join(' ')), this.str('holders', blocks.join('\n'))];
  }

  private thread(tid: number, tgid: number, comm: string): number {
    const uuid = THREAD_BASE + tid;
    if (this.threads.has(tid)) return uuid;
    this.threads.add(tid);
    this.summary.threadTracks++;
    const processUuid = PROCESS_BASE + tgid;
    if (!this.processes.has(tgid)) {
      this.processes.add(tgid);
      this.summary.processTracks++;
      this.describe({ uuid: processUuid, process: { pid: tgid, processName: comm } });
    }
    this.describe({ uuid, parentUuid: processUuid, thread: { pid: tgid, tid, threadName: comm } });
    return uuid;
  }

  private instant(track: number, ts: number, name: EventNameText, annotations: Annotation[]): void {
    this.summary.instants++;
    this.queue(ts, {
      trackEvent: { type: TYPE_INSTANT, trackUuid: track, categoryIids: [CATEGORY.pageref], nameIid: NAMES.indexOf(name) + 1, debugAnnotations: annotations },
    });
  }

  private slice(type: typeof TYPE_SLICE_BEGIN | typeof TYPE_SLICE_END, track: number, ts: number, annotations: Annotation[]): void {
    const event: Record<string, unknown> = { type, trackUuid: track };
    if (type === TYPE_SLICE_BEGIN) this.summary.slices++;
    if (type === TYPE_SLICE_BEGIN) Object.assign(event, { categoryIids: [CATEGORY.pageref], nameIid: NAMES.indexOf('cma alloc') + 1, debugAnnotations: annotations });
    this.queue(ts, { trackEvent: event });
  }

  private counter(track: number, ts: number, value: number): void {
    this.summary.counterEvents++;
    this.queue(ts, { trackEvent: { type: TYPE_COUNTER, trackUuid: track, counterValue: value } });
  }

  private str(name: AnnotationName, value: string): Annotation {
    return { nameIid: ANNOTATIONS.indexOf(name) + 1, stringValue: value };
  }

  private int(name: AnnotationName, value: number): Annotation {
    return { nameIid: ANNOTATIONS.indexOf(name) + 1, intValue: value };
  }

  private queue(ts: number, packet: Record<string, unknown>): void {
    this.pending.push({ ts, seq: this.seq++, packet });
    if (ts > this.newestTs) this.newestTs = ts;
    if (this.pending.length >= this.drainAt) this.drain(false);
  }

  // Writes the waiting packets older than the window (all of them at the end), in time order.
  private drain(all: boolean): void {
    if (this.pending.length === 0) return;
    this.pending.sort((a, b) => a.ts - b.ts || a.seq - b.seq);
    const horizon = all ? Infinity : this.newestTs - this.windowNs;
    let n = 0;
    while (n < this.pending.length && this.pending[n].ts <= horizon) n++;
    for (let k = 0; k < n; k++) {
      const { ts, packet } = this.pending[k];
      let at = ts;
      if (at < this.lastWrittenTs) {
        at = this.lastWrittenTs;
        this.summary.reordered++;
      }
      this.lastWrittenTs = at;
      this.emit({ ...packet, timestamp: Math.max(0, this.baseNs + at), trustedPacketSequenceId: SEQUENCE_ID, sequenceFlags: SEQ_NEEDS_INCREMENTAL_STATE });
    }
    this.pending = this.pending.slice(n);
    // A window denser than the threshold would otherwise be sorted again at every packet.
    this.drainAt = Math.max(DRAIN_AT, this.pending.length * 2);
  }

  private describe(track: Record<string, unknown>): void {
    this.emit({ trustedPacketSequenceId: SEQUENCE_ID, trackDescriptor: track });
  }

  // Field 1 of Trace, length-delimited: the packet's tag (0x0a), its length, its bytes.
  private emit(packet: Record<string, unknown>): void {
    const bytes = this.TracePacket.encode(packet).finish();
    const head = Buffer.from([0x0a, ...varint(bytes.length)]);
    this.chunks.push(head, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
    this.chunkBytes += head.length + bytes.length;
    this.summary.packets++;
    if (this.chunkBytes >= FLUSH_BYTES) this.flushChunks();
  }

  private flushChunks(): void {
    if (this.chunks.length === 0 || this.fd === undefined) return;
    const data = Buffer.concat(this.chunks);
    this.chunks = [];
    this.chunkBytes = 0;
    this.write(this.fd, data);
  }

  /** Appends whole packets to the open file; tests override it to watch what leaves and when. */
  protected write(fd: number, data: Buffer): void {
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done);
  }
}

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** Counts a failure inside an allocation; only the first MAX_BUSY_PFNS_SHOWN busy pfns keep their holders. */
function noteFailure(allocation: AllocationFailures, pfn: number, holders: string): void {
  const seen = allocation.byPfn.get(pfn);
  if (seen) {
    seen.failures++;
    seen.holders = holders;
  } else if (allocation.byPfn.size < MAX_BUSY_PFNS_SHOWN) allocation.byPfn.set(pfn, { failures: 1, holders });
  else allocation.otherFailures++;
}

function hex(pfn: number): string {
  return `0x${pfn.toString(16)}`;
}

function memo(cache: Map<number, string>, id: number, compute: () => string): string {
  if (id < 0) return '';
  let value = cache.get(id);
  if (value === undefined) {
    value = compute();
    cache.set(id, value);
  }
  return value;
}

/**
 * The pfns that get a refcount track, at most `limit`: the busy pages of
 * failed isolations (most failures first), then the pages with the most
 * events. Needs a first read of the capture (CaptureSummary).
 */
export function choosePfns(summary: { busyPfns: Map<number, number>; pfns: { top(limit: number, better: (a: PfnRowLike, b: PfnRowLike) => number): PfnRowLike[] } }, limit: number): number[] {
  const chosen = [...summary.busyPfns].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, limit).map(([pfn]) => pfn);
  const taken = new Set(chosen);
  for (const row of summary.pfns.top(limit + chosen.length, (a, b) => b.events - a.events || a.pfn - b.pfn)) {
    if (chosen.length >= limit) break;
    if (!taken.has(row.pfn)) chosen.push(row.pfn);
  }
  return chosen;
}

interface PfnRowLike {
  pfn: number;
  events: number;
}
