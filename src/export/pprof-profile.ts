// A pprof profile (profile.proto, gzipped) of who takes and who drops page
// references, for `go tool pprof`, speedscope, Pyroscope and Grafana.
//
// Samples are grouped by (stack, comm, role):
//   role "holder", held_at "end": stacks that took references (gets, and a
//                    refcount set: the allocation's reference); `pages` and
//                    `references` are what they still held when the capture
//                    ended, by the hold table's pairing rule; `events` the gets;
//   role "holder", held_at "failure": what held the busy pages when their
//                    isolation failed (blame's holders): `pages` busy pages,
//                    `references` held at the failures, `events` the failures;
//   role "releaser": stacks that dropped references; `pages` the distinct
//                    pages they dropped references on, `references` how many,
//                    `events` the puts.
// One location per distinct symbolised frame ("func+0xoff"), its function the
// name without the offset, so pprof's function view adds offsets up. The
// capture's limits (sampling, aggregation, armed stacks) go in the profile's
// comments, and a label says the values are of a sample.

import { gzipSync } from 'node:zlib';
import { Function as PprofFunction, Label, Location, Mapping, Profile, Sample, StringTable as PprofStrings, ValueType } from 'pprof-format';
import { BlameAnalysis } from '../blame/blame-analysis';
import { referenceKind } from '../blame/stack-kinds';
import type { CaptureHeader, KernelCounters, PfnCounts, StackEntry } from '../capture/schema';
import { referenceDelta } from '../holds/reference-delta';
import type { EventBatch } from '../record/event-batch';
import { EventType, isPageRefEvent } from '../record/event-types';
import type { StringTable } from '../record/string-table';
import { captureLimits, evictionLimit, samplingOf } from '../report/capture-limits';
import { DEFAULT_MAX_PFNS } from '../holds/pfn-counters';
import type { CaptureSink, StreamEnd } from '../stream/capture-sink';

export type Role = 'holder' | 'releaser';
/** When a holder's references were counted: still held at the end, or held on a busy page when its isolation failed. */
export type HeldAt = 'end' | 'failure';

interface Group {
  stackId: number;
  comm: string;
  role: Role;
  heldAt?: HeldAt;
  pages: number;
  refs: number;
  events: number;
  /** releasers: the pages they dropped references on. */
  pfns?: Set<number>;
}

export interface PprofSummary {
  samples: number;
  locations: number;
  functions: number;
  comments: string[];
}

const NO_STACK_FRAME = '[no stack]';

export class HoldProfile implements CaptureSink {
  private readonly blame: BlameAnalysis;
  private readonly groups = new Map<string, Group>();
  private strings: StringTable | undefined;
  private header_: CaptureHeader | undefined;
  private ending: StreamEnd | undefined;
  private counters_: KernelCounters | undefined;
  private aggregatedEvents = 0;
  private firstNs = Infinity;
  private lastNs = 0;

  /** `maxPfns` (--max-pfns): pages in the hold table at most. */
  constructor(maxPfns = DEFAULT_MAX_PFNS) {
    this.blame = new BlameAnalysis(maxPfns);
  }

  header(header: CaptureHeader): void {
    this.header_ = header;
    this.blame.header(header);
  }

  stacks(stacks: StackEntry[]): void {
    this.blame.stacks(stacks);
  }

  events(batch: EventBatch, strings: StringTable): void {
    this.strings = strings;
    this.blame.events(batch, strings);
    for (let i = 0; i < batch.length; i++) {
      const type = batch.type[i];
      if (batch.tsNs[i] < this.firstNs) this.firstNs = batch.tsNs[i];
      if (batch.tsNs[i] > this.lastNs) this.lastNs = batch.tsNs[i];
      if (!isPageRefEvent(type)) continue;
      const delta = type === EventType.PageRefSet ? batch.val[i] : referenceDelta(type, batch.val[i], batch.ret[i]);
      if (delta === 0) continue;
      const group = delta > 0 ? this.group(batch.stackId[i], strings.get(batch.comm[i]), 'holder', 'end') : this.group(batch.stackId[i], strings.get(batch.comm[i]), 'releaser');
      group.events++;
      if (delta < 0) {
        group.refs += -delta;
        group.pfns!.add(batch.pfn[i]);
      }
    }
  }

  counters(counters: KernelCounters): void {
    this.counters_ = counters;
  }

  pfnCounts(totals: PfnCounts): void {
    for (let i = 0; i < totals.events.length; i++) this.aggregatedEvents += totals.events[i];
  }

  end(end: StreamEnd): void {
    this.ending = end;
    if (end.trailer) this.counters_ = end.trailer.counters;
    this.blame.end(end);
  }

  /** The blame the profile's failure samples come from (read-only for callers). */
  get analysis(): BlameAnalysis {
    return this.blame;
  }

  /**
   * The groups as of now: the streamed gets and puts, plus what the hold
   * table still holds and what held the busy pages. Built afresh on every
   * call, so that a live agent can encode the profile again and again.
   */
  private snapshotGroups(): Group[] {
    const groups = new Map<string, Group>();
    for (const [key, group] of this.groups) groups.set(key, { ...group, pages: group.pfns ? group.pfns.size : group.pages, pfns: undefined });
    const group = (stackId: number, comm: string, heldAt: HeldAt): Group => {
      const key = `${stackId} holder ${heldAt} ${comm}`;
      let found = groups.get(key);
      if (!found) {
        found = { stackId, comm, role: 'holder', heldAt, pages: 0, refs: 0, events: 0 };
        groups.set(key, found);
      }
      return found;
    };
    // What is still held, by stack and comm.
    const pagesSeen = new Map<Group, number>();
    this.blame.holds.forEachHold((pfn, stackId, _tgid, comm, refs) => {
      const held = group(stackId, this.strings?.get(comm) ?? '', 'end');
      held.refs += refs;
      if (pagesSeen.get(held) !== pfn) {
        held.pages++;
        pagesSeen.set(held, pfn);
      }
    });
    // What held the busy pages when their isolation failed: blame's holders, the question CMA asks.
    for (const busy of this.blame.busy.values()) {
      for (const holder of busy.holders) {
        const held = group(holder.stackId, holder.comm, 'failure');
        held.pages++;
        held.refs += holder.refs;
        held.events += busy.failures;
      }
    }
    return [...groups.values()];
  }

  /** The comments the profile carries: where it came from and what the capture could not see. */
  comments(): string[] {
    const header = this.header_;
    const lines = [
      `pageref hold profile of ${header?.source === 'live' ? 'a live capture' : header?.source ?? 'a capture'}, kernel ${header?.kernelRelease ?? 'unknown'}`,
      'holder, held_at=end: references taken (pages and references still held at the end of the capture; events: gets); holder, held_at=failure: references on busy pages when isolation failed (events: failures); releaser: references dropped (events: puts)',
      ...captureLimits(header, this.counters_),
      ...evictionLimit({ maxPfns: this.blame.holds.maxPfns, ...this.blame.holds.evictions }),
    ];
    if (this.aggregatedEvents > 0) lines.push(`${this.aggregatedEvents} page_ref events were summed per pfn in the kernel and have no stack: they are not in this profile`);
    const dropped = (this.counters_?.dropped ?? []).reduce((a, b) => a + b, 0);
    if (dropped > 0) lines.push(`${dropped} records were dropped by the kernel (ring buffer full): holders may be missing`);
    if (this.ending?.truncated) lines.push(`the capture was cut short: ${this.ending.truncated}`);
    return lines;
  }

  /** The profile, gzipped as pprof tools read it; callable at any point of the stream, and more than once. */
  encode(): { bytes: Uint8Array; summary: PprofSummary } {
    const strings = new PprofStrings();
    const s = (text: string) => strings.dedup(text);
    const functions = new Map<string, PprofFunction>();
    const locations = new Map<string, Location>();
    const mapping = new Mapping({ id: 1, filename: s('[kernel]'), hasFunctions: true });
    const locationOf = (frame: string): number => {
      let location = locations.get(frame);
      if (!location) {
        const { name, module, offset } = splitFrame(frame);
        const functionKey = module ? `${name} ${module}` : name;
        let fn = functions.get(functionKey);
        if (!fn) {
          fn = new PprofFunction({ id: functions.size + 1, name: s(functionKey), systemName: s(name), filename: s(module || '[kernel]') });
          functions.set(functionKey, fn);
        }
        location = new Location({ id: locations.size + 1, mappingId: 1, address: offset, line: [{ functionId: fn.id }] });
        locations.set(frame, location);
      }
      return Number(location.id);
    };
    const sampling = samplingOf(this.header_);
    const samples: Sample[] = [];
    const groups = this.snapshotGroups().filter((g) => g.pages > 0 || g.refs > 0 || g.events > 0);
    for (const group of groups) {
      const frames = this.blame.frames(group.stackId);
      const labels = [
        new Label({ key: s('comm'), str: s(group.comm) }),
        new Label({ key: s('role'), str: s(group.role) }),
      ];
      if (group.heldAt) labels.push(new Label({ key: s('held_at'), str: s(group.heldAt) }));
      if (group.role === 'holder' && frames.length > 0) labels.push(new Label({ key: s('kind'), str: s(referenceKind(frames)) }));
      if (sampling.estimated) labels.push(new Label({ key: s('sampled'), str: s(`1 in ${sampling.scale}`) }));
      samples.push(new Sample({ locationId: (frames.length > 0 ? frames : [NO_STACK_FRAME]).map(locationOf), value: [group.pages, group.refs, group.events], label: labels }));
    }
    const comments = this.comments();
    const startUs = this.header_?.startTimeUnixUs ?? 0;
    const profile = new Profile({
      sampleType: [
        new ValueType({ type: s('pages'), unit: s('count') }),
        new ValueType({ type: s('references'), unit: s('count') }),
        new ValueType({ type: s('events'), unit: s('count') }),
      ],
      sample: samples,
      mapping: [mapping],
      location: [...locations.values()],
      function: [...functions.values()],
      stringTable: strings,
      timeNanos: startUs * 1000 + (Number.isFinite(this.firstNs) ? this.firstNs : 0),
      durationNanos: Number.isFinite(this.firstNs) ? this.lastNs - this.firstNs : 0,
      comment: comments.map(s),
      defaultSampleType: s('references'),
    });
    return { bytes: gzipSync(profile.encode()), summary: { samples: samples.length, locations: locations.size, functions: functions.size, comments } };
  }

  private group(stackId: number, comm: string, role: Role, heldAt?: HeldAt): Group {
    const key = `${stackId} ${role} ${heldAt ?? ''} ${comm}`;
    let group = this.groups.get(key);
    if (!group) {
      group = { stackId, comm, role, heldAt, pages: 0, refs: 0, events: 0, pfns: role === 'releaser' ? new Set() : undefined };
      this.groups.set(key, group);
    }
    return group;
  }
}

/** "func+0x4b [mod]" -> func, " [mod]", 0x4b; "func" -> offset 0. */
function splitFrame(frame: string): { name: string; module: string; offset: number } {
  const match = /^(.*?)(?:\+0x([0-9a-f]+))?(?:\s+\[(\S+)\])?$/i.exec(frame);
  if (!match) return { name: frame, module: '', offset: 0 };
  return { name: match[1], module: match[3] ? `[${match[3]}]` : '', offset: match[2] ? parseInt(match[2], 16) : 0 };
}
