// A frame's worth of `pageref top`: the header figures and the rows of one
// view, chosen from the state with a top-N selection (src/holds/top-n.ts),
// never a sort of every pfn. Rendering (top-render.ts) only draws this.

import { BusyPfn, NO_HOLDER } from '../blame/blame-analysis';
import { KIND_RANK, ReferenceKind, referenceKind, tellingFrame } from '../blame/stack-kinds';
import type { PfnRow as PfnCounts } from '../holds/pfn-counters';
import { PfnIndex } from '../holds/pfn-index';
import { keepSmallest } from '../holds/stack-groups';
import { topN } from '../holds/top-n';
import { EVENT_NAMES, EventName } from '../record/event-types';
import { Sampling, samplingOf } from '../report/capture-limits';
import { kernelLosses } from '../report/kernel-losses';
import { migrateTypeName, pageFlagNames } from './page-flags';
import { commMatches, inRanges, TopFilter } from './top-filter';
import type { TopState } from './top-state';

export type TopView = 'pages' | 'holders' | 'failures';
export const TOP_VIEWS: readonly TopView[] = ['pages', 'holders', 'failures'];

/** Sort keys per view, in column order; the first listed default is the view's default sort. */
export const SORT_KEYS: Record<TopView, readonly string[]> = {
  pages: ['pfn', 'ref', 'map', 'net', 'gets', 'puts', 'age', 'events'],
  holders: ['kind', 'pages', 'refs', 'procs', 'age'],
  failures: ['pfn', 'fails', 'retries', 'ref', 'held', 'last'],
};
export const DEFAULT_SORT: Record<TopView, string> = { pages: 'net', holders: 'pages', failures: 'fails' };
/** Keys sorted smallest first unless reversed; every other key is largest first. */
const ASCENDING = new Set(['pfn', 'kind', 'last']);

export function sortsAscending(sort: string): boolean {
  return ASCENDING.has(sort);
}

export interface SnapshotQuery {
  view: TopView;
  sort: string;
  reverse: boolean;
  filter: TopFilter;
  /** Rows wanted at most. */
  limit: number;
  /** Row key (rowKey()) whose detail to include. */
  expanded?: string;
}

export interface SourceInfo {
  source: 'live' | 'replay';
  /** The capture file, or the host traced. */
  label: string;
  /** The source's clock, ns since the capture's base. */
  nowNs: number;
  /** Replay: times the recorded pace, 0 for as fast as possible. */
  speed?: number;
  /** Replay: set once the capture has been played to its end (how it ended). */
  ended?: string;
  paused?: boolean;
}

export interface TopHeader {
  source: 'live' | 'replay';
  label: string;
  kernel: string;
  speed: number | null;
  ended: string | null;
  paused: boolean;
  uptimeSec: number;
  /** Seconds of the interval the rates are over (0: none yet). */
  intervalSec: number;
  eventsPerSec: Record<EventName, number>;
  aggregatedPerSec: number;
  isolationFailures: number;
  isolationFailuresPerSec: number;
  cmaRetries: number;
  cmaRetriesPerSec: number;
  failedAllocations: number;
  pfns: number;
  /** --max-pfns, the bound of every per-pfn table. */
  maxPfns: number;
  /** pfns the totals (the pages view) evicted to stay within maxPfns. */
  evictedPfns: number;
  /** pfns the interval tables evicted: their GETS/s and PUTS/s are missing. */
  evictedRatePfns: number;
  /** Pages the hold table (holders, failures) evicted, and the references still outstanding on them. */
  evictedHoldPfns: number;
  evictedOutstandingRefs: number;
  dropped: number;
  droppedPerSec: number;
  /** Records the kernel sent without their stack (stack map full or hash collision). */
  stackLost: number;
  /** Events --sample-pfn or --sample-events left out in the kernel. */
  sampledOut: number;
  /** --aggregate: page_ref events on pfns beyond the kernel's slots (--max-pfns), only counted. */
  aggregateOverflow: number;
  /** The fullest the ring buffer was found before a drain in the interval, 0 to 1; null: no ring (a replay). */
  ringFill: number | null;
  cpuPercent: number | null;
  stacksMode: string;
  aggregated: boolean;
  /** How the source samples (--sample-pfn, --sample-events): counts are of the sample. */
  sampling: Sampling;
}

export interface HolderRef {
  comm: string;
  pid: number;
  frame: string;
  kind: ReferenceKind;
}

export interface PageRow {
  pfn: number;
  refcount: number;
  /** -1: not known (--aggregate keeps no mapcount). */
  mapcount: number;
  net: number;
  events: number;
  getsPerSec: number;
  putsPerSec: number;
  /** Age of the oldest outstanding reference pageref saw taken, ns; -1: none. */
  oldestHoldNs: number;
  holds: number;
  /** null: no record of the page (--aggregate). */
  flags: string[] | null;
  migrateType: string | null;
  holder: HolderRef | null;
}

export interface HolderRow {
  stackId: number;
  frame: string;
  kind: ReferenceKind;
  stack: string[];
  pages: number;
  refs: number;
  processes: number;
  comms: string[];
  oldestHoldNs: number;
  /** The page of the group's oldest reference. */
  examplePfn: number;
}

export interface FailureRow {
  pfn: number;
  failures: number;
  busyRetries: number;
  count: number;
  mapcount: number;
  holders: number;
  /** Longest a holder had held the page at a failure, ns; -1: no holder seen. */
  heldNs: number;
  lastFailureAgoNs: number;
  culprit: HolderRef | null;
  releaser: { comm: string; pid: number; frame: string; afterNs: number } | null;
}

export interface Culprit {
  frame: string;
  kind: ReferenceKind;
  pages: number;
  failures: number;
}

export interface HoldDetail {
  comm: string;
  pid: number;
  refs: number;
  /** How long held: now (pages) or at the failure (failures). */
  heldNs: number;
  kind: ReferenceKind;
  certain: boolean;
  stack: string[];
}

export interface HistoryDetail {
  agoNs: number;
  event: string;
  val: number;
  count: number;
  comm: string;
  pid: number;
  frame: string;
}

export type RowDetail =
  | { kind: 'page'; pfn: number; holds: HoldDetail[]; untrackedPuts: number; history: HistoryDetail[] }
  | { kind: 'stack'; stackId: number; stack: string[]; comms: string[]; pfns: number[] }
  | { kind: 'failure'; pfn: number; holders: HoldDetail[]; releasers: { comm: string; pid: number; refs: number; afterNs: number; stack: string[] }[] };

interface SnapshotBase {
  header: TopHeader;
  sort: string;
  reverse: boolean;
  filter: TopFilter;
  /** Rows that pass the filter, of which `rows` are the first. */
  matching: number;
  detail: RowDetail | null;
}

export type Snapshot =
  | (SnapshotBase & { view: 'pages'; rows: PageRow[] })
  | (SnapshotBase & { view: 'holders'; rows: HolderRow[] })
  | (SnapshotBase & { view: 'failures'; rows: FailureRow[]; culprits: Culprit[] });

export type TopRow = PageRow | HolderRow | FailureRow;

/** A row's identity across frames, for selection and expansion. */
export function rowKey(view: TopView, row: TopRow): string {
  return view === 'holders' ? `stack:${(row as HolderRow).stackId}` : `${view === 'pages' ? 'pfn' : 'busy'}:${(row as PageRow | FailureRow).pfn}`;
}

/** The value a row sorts by, for `key` of its view. */
export function sortValue(view: TopView, key: string, row: TopRow): number {
  if (view === 'pages') {
    const r = row as PageRow;
    const values: Record<string, number> = { pfn: r.pfn, ref: r.refcount, map: r.mapcount, net: r.net, gets: r.getsPerSec, puts: r.putsPerSec, age: r.oldestHoldNs, events: r.events };
    return values[key] ?? 0;
  }
  if (view === 'holders') {
    const r = row as HolderRow;
    const values: Record<string, number> = { kind: KIND_RANK[r.kind], pages: r.pages, refs: r.refs, procs: r.processes, age: r.oldestHoldNs };
    return values[key] ?? 0;
  }
  const r = row as FailureRow;
  const values: Record<string, number> = { pfn: r.pfn, fails: r.failures, retries: r.busyRetries, ref: r.count, held: r.heldNs, last: r.lastFailureAgoNs };
  return values[key] ?? 0;
}

/** Row order for `sort` (reversed or not): negative when a comes first. Ties go by pfn or stack. */
export function compareRows(view: TopView, sort: string, reverse: boolean): (a: TopRow, b: TopRow) => number {
  const sign = (ASCENDING.has(sort) ? 1 : -1) * (reverse ? -1 : 1);
  const tie = view === 'holders' ? (r: TopRow) => (r as HolderRow).stackId : (r: TopRow) => (r as PageRow).pfn;
  // Second keys: holders by pages; pages by NET then events, as the selection (byNet) and `report` order them.
  const second =
    view === 'holders'
      ? (a: TopRow, b: TopRow) => sortValue(view, 'pages', b) - sortValue(view, 'pages', a)
      : view === 'pages' && sort === 'net'
        ? (a: TopRow, b: TopRow) => sign * ((a as PageRow).events - (b as PageRow).events)
        : () => 0;
  return (a, b) => sign * (sortValue(view, sort, a) - sortValue(view, sort, b)) || second(a, b) || tie(a) - tie(b);
}

export function takeSnapshot(state: TopState, query: SnapshotQuery, info: SourceInfo): Snapshot {
  const sort = SORT_KEYS[query.view].includes(query.sort) ? query.sort : DEFAULT_SORT[query.view];
  const q = { ...query, sort };
  const base = { header: topHeader(state, info), sort, reverse: q.reverse, filter: q.filter };
  if (q.view === 'pages') {
    const { rows, matching } = selectPages(state, q, info.nowNs);
    const detail = q.expanded?.startsWith('pfn:') ? pageDetail(state, Number(q.expanded.slice(4)), info.nowNs) : null;
    return { ...base, view: 'pages', rows, matching, detail };
  }
  if (q.view === 'holders') {
    const { rows, matching } = selectHolders(state, q, info.nowNs);
    const expanded = q.expanded?.startsWith('stack:') ? rows.find((r) => rowKey('holders', r) === q.expanded) : undefined;
    const detail = expanded ? stackDetail(state, expanded) : null;
    return { ...base, view: 'holders', rows, matching, detail };
  }
  const { rows, matching, culprits } = selectFailures(state, q, info.nowNs);
  const detail = q.expanded?.startsWith('busy:') ? failureDetail(state, Number(q.expanded.slice(5))) : null;
  return { ...base, view: 'failures', rows, matching, culprits, detail };
}

function topHeader(state: TopState, info: SourceInfo): TopHeader {
  const rates = state.rates;
  const options = state.captureHeader?.options;
  const losses = kernelLosses(state.lastCounters);
  return {
    source: info.source,
    label: info.label,
    kernel: state.captureHeader?.kernelRelease ?? '',
    speed: info.speed ?? null,
    ended: info.ended ?? null,
    paused: info.paused ?? false,
    uptimeSec: Math.max(0, info.nowNs / 1e9),
    intervalSec: rates.seconds,
    eventsPerSec: Object.fromEntries(EVENT_NAMES.map((name, type) => [name, rates.eventsPerSec[type]])) as Record<EventName, number>,
    aggregatedPerSec: rates.aggregatedPerSec,
    isolationFailures: state.analysis.failures,
    isolationFailuresPerSec: rates.failuresPerSec,
    cmaRetries: state.analysis.busyRetries,
    cmaRetriesPerSec: rates.busyRetriesPerSec,
    failedAllocations: state.analysis.cmaFailedAllocations,
    pfns: state.pfns.size,
    maxPfns: state.maxPfns,
    evictedPfns: state.pfns.evictions.pfns,
    evictedRatePfns: state.rateEvictedPfns,
    evictedHoldPfns: state.analysis.holds.evictions.pfns,
    evictedOutstandingRefs: state.analysis.holds.evictions.outstandingRefs,
    dropped: state.dropped,
    droppedPerSec: rates.droppedPerSec,
    stackLost: losses.stackLost,
    sampledOut: losses.sampledOut,
    aggregateOverflow: losses.aggregateOverflow,
    ringFill: rates.ringFill,
    cpuPercent: rates.cpuPercent,
    stacksMode: options?.stacksMode || (options?.stacks ? 'all' : 'none'),
    aggregated: (options?.aggregateSlots ?? 0) > 0,
    sampling: samplingOf(state.captureHeader),
  };
}

// --- pages -------------------------------------------------------------------

function selectPages(state: TopState, q: SnapshotQuery, nowNs: number): { rows: PageRow[]; matching: number } {
  const filter = q.filter;
  const sign = (ASCENDING.has(q.sort) ? 1 : -1) * (q.reverse ? -1 : 1);
  let matching = 0;
  let chosen: number[];
  // With a comm to match, only pages someone of that name holds can pass: few, found by one pass over the holds.
  const held = filter.comms.length > 0 ? pfnsHeldByComm(state, filter) : undefined;
  const eachPage = (table: typeof state.pfns, visit: (row: PfnCounts) => void) => {
    if (held) {
      for (const pfn of held) {
        const row = table.get(pfn);
        if (row) visit(row);
      }
    } else if (filter.ranges.length === 0) {
      table.forEach(visit);
    } else {
      table.forEach((row) => {
        if (inRanges(filter, row.pfn)) visit(row);
      });
    }
  };

  if (q.sort === 'age') {
    matching = countPages(state, held, filter);
    // Older (taken earlier) first; `sign` is -1 for largest age first.
    const better = (a: OldestHold, b: OldestHold) => -sign * (a.takenNs - b.takenNs) || a.pfn - b.pfn;
    chosen = topN<OldestHold>((visit) => eachOldestHold(state, filter, visit), q.limit, better, (c) => ({ ...c })).map((c) => c.pfn);
    if (chosen.length < q.limit) {
      // Pages without a tracked hold have no age: they follow, by pfn.
      const have = new Set(chosen);
      const rest = topN<PfnCounts>((visit) => eachPage(state.pfns, (r) => !have.has(r.pfn) && visit(r)), q.limit - chosen.length, (a, b) => a.pfn - b.pfn, (r) => ({ ...r }));
      if (q.reverse) chosen = [...rest.map((r) => r.pfn), ...chosen].slice(0, q.limit);
      else chosen.push(...rest.map((r) => r.pfn));
    }
  } else if (q.sort === 'gets' || q.sort === 'puts') {
    // Rates come from the last interval's table, which holds only the pages that moved.
    const field = q.sort;
    const byRate = (a: PfnCounts, b: PfnCounts) => sign * (a[field] - b[field]) || a.pfn - b.pfn;
    chosen = topN<PfnCounts>((visit) => eachPage(state.previous, visit), q.limit, byRate, (r) => ({ ...r })).map((r) => r.pfn);
    matching = countPages(state, held, filter);
    if (chosen.length < q.limit && !q.reverse) {
      const have = new Set(chosen);
      const rest = topN<PfnCounts>((visit) => eachPage(state.pfns, (r) => !have.has(r.pfn) && visit(r)), q.limit - chosen.length, byNet(1), (r) => ({ ...r }));
      chosen.push(...rest.map((r) => r.pfn));
    } else if (q.reverse) {
      // Slowest first: pages that did not move at all come before any that did.
      const moved = state.previous;
      const still = topN<PfnCounts>((visit) => eachPage(state.pfns, (r) => moved.get(r.pfn) === undefined && visit(r)), q.limit, (a, b) => a.pfn - b.pfn, (r) => ({ ...r }));
      chosen = [...still.map((r) => r.pfn), ...chosen].slice(0, q.limit);
    }
  } else {
    const field: Record<string, (r: PfnCounts) => number> = {
      pfn: (r) => r.pfn,
      ref: (r) => r.lastCount,
      map: (r) => r.lastMapcount,
      net: (r) => r.net,
      events: (r) => r.events,
    };
    const value = field[q.sort] ?? field.net;
    const better = q.sort === 'net' ? byNet(sign === -1 ? 1 : -1) : (a: PfnCounts, b: PfnCounts) => sign * (value(a) - value(b)) || a.pfn - b.pfn;
    const filtered = held !== undefined || filter.ranges.length > 0;
    const each = filtered
      ? (visit: (row: PfnCounts) => void) =>
          eachPage(state.pfns, (row) => {
            matching++;
            visit(row);
          })
      : (visit: (row: PfnCounts) => void) => eachPage(state.pfns, visit);
    chosen = topN<PfnCounts>(each, q.limit, better, (r) => ({ ...r })).map((r) => r.pfn);
    if (!filtered) matching = state.pfns.size;
  }
  return { rows: chosen.map((pfn) => pageRow(state, pfn, nowNs)), matching };
}

/** Most references outstanding first (then most events), as `report` orders pages; direction -1 reverses. */
function byNet(direction: number): (a: PfnCounts, b: PfnCounts) => number {
  return (a, b) => direction * (b.net - a.net || b.events - a.events) || a.pfn - b.pfn;
}

function countPages(state: TopState, held: Set<number> | undefined, filter: TopFilter): number {
  if (held) return held.size;
  if (filter.ranges.length === 0) return state.pfns.size;
  let n = 0;
  state.pfns.forEach((row) => {
    if (inRanges(filter, row.pfn)) n++;
  });
  return n;
}

/** Pages in the filter's ranges with an outstanding hold by a task whose comm matches. */
function pfnsHeldByComm(state: TopState, filter: TopFilter): Set<number> {
  const matches = commMatcher(state, filter);
  const pfns = new Set<number>();
  state.analysis.holds.forEachHold((pfn, _stack, _tgid, comm) => {
    if (matches(comm) && inRanges(filter, pfn)) pfns.add(pfn);
  });
  return pfns;
}

/** comm string index -> matches the filter, remembered per index (a string compare per hold would cost a frame). */
function commMatcher(state: TopState, filter: TopFilter): (comm: number) => boolean {
  if (filter.comms.length === 0) return () => true;
  const known = new Map<number, boolean>();
  return (comm) => {
    let result = known.get(comm);
    if (result === undefined) known.set(comm, (result = commMatches(filter, state.strings.get(comm))));
    return result;
  };
}

interface OldestHold {
  pfn: number;
  takenNs: number;
}

/**
 * Visits each page passing the filter that has an outstanding hold, with the
 * time its oldest was taken: one cursor object, refilled (a Map of a million
 * pages cost 700 ms a frame).
 */
function eachOldestHold(state: TopState, filter: TopFilter, visit: (page: OldestHold) => void): void {
  const matches = commMatcher(state, filter);
  const comms = filter.comms.length > 0;
  const ranges = filter.ranges.length > 0;
  const cursor: OldestHold = { pfn: -1, takenNs: Infinity };
  let pageMatches = false;
  const flush = () => {
    if (cursor.pfn >= 0 && pageMatches && (!ranges || inRanges(filter, cursor.pfn))) visit(cursor);
  };
  state.analysis.holds.forEachHold((pfn, _stack, _tgid, comm, _refs, takenNs) => {
    if (pfn !== cursor.pfn) {
      flush();
      cursor.pfn = pfn;
      cursor.takenNs = Infinity;
      pageMatches = !comms;
    }
    if (takenNs < cursor.takenNs) cursor.takenNs = takenNs;
    if (comms && !pageMatches && matches(comm)) pageMatches = true;
  });
  flush();
}

function pageRow(state: TopState, pfn: number, nowNs: number): PageRow {
  const counts = state.pfns.get(pfn);
  const interval = state.previous.get(pfn);
  const seconds = state.rates.seconds;
  const page = state.analysis.holds.page(pfn);
  const holds = rankedHolds(state, pfn, nowNs);
  const mt = state.migrateType(pfn);
  const top = holds[0];
  return {
    pfn,
    refcount: counts?.lastCount ?? 0,
    mapcount: counts?.lastMapcount ?? -1,
    net: counts?.net ?? 0,
    events: counts?.events ?? 0,
    getsPerSec: interval && seconds > 0 ? interval.gets / seconds : 0,
    putsPerSec: interval && seconds > 0 ? interval.puts / seconds : 0,
    oldestHoldNs: holds.length > 0 ? Math.max(...holds.map((h) => h.heldNs)) : -1,
    holds: holds.length,
    flags: page ? pageFlagNames(page.lastFlags, state.flagTable) : null,
    migrateType: mt >= 0 ? migrateTypeName(mt) : null,
    holder: top ? { comm: top.comm, pid: top.pid, frame: tellingFrame(top.stack), kind: top.kind } : null,
  };
}

/** A page's outstanding holds, most telling first: pins before other kinds, then the oldest. */
function rankedHolds(state: TopState, pfn: number, nowNs: number): HoldDetail[] {
  return state.analysis.holds
    .holds(pfn)
    .map((h) => {
      const stack = state.analysis.frames(h.stackId);
      return { comm: state.strings.get(h.comm), pid: h.tgid, refs: h.refs, heldNs: nowNs - h.takenNs, kind: state.stackInfo(h.stackId).kind, certain: h.certain, stack };
    })
    .sort((a, b) => KIND_RANK[a.kind] - KIND_RANK[b.kind] || b.heldNs - a.heldNs);
}

function pageDetail(state: TopState, pfn: number, nowNs: number): RowDetail {
  return {
    kind: 'page',
    pfn,
    holds: rankedHolds(state, pfn, nowNs),
    untrackedPuts: state.analysis.holds.page(pfn)?.untrackedPuts ?? 0,
    history: state
      .history(pfn)
      .slice()
      .reverse()
      .map((e) => ({ agoNs: nowNs - e.tsNs, event: EVENT_NAMES[e.type] ?? String(e.type), val: e.val, count: e.count, comm: e.comm, pid: e.tgid, frame: stackFrame(state, e.stackId) })),
  };
}

function stackFrame(state: TopState, stackId: number): string {
  return stackId < 0 ? '[no stack]' : tellingFrame(state.analysis.frames(stackId));
}

// --- holders -------------------------------------------------------------------

interface HolderGroup {
  stackId: number;
  pages: number;
  refs: number;
  lastPfn: number;
  lastTgid: number;
  processes: number;
  comms: number[];
  oldestNs: number;
  examplePfn: number;
}

/** Comms a holders row names at most. */
const GROUP_COMMS = 4;

/**
 * The outstanding holds grouped by the stack that took them. Unfiltered, the
 * hold table keeps the groups as holds come and go (src/holds/stack-groups.ts),
 * and a frame reads only the groups; a filter needs the pass below.
 */
function holderGroups(state: TopState, filter: TopFilter): HolderGroup[] {
  if (filter.ranges.length > 0 || filter.comms.length > 0) return filteredHolderGroups(state, filter);
  const kept = state.analysis.holds.stackGroups();
  const groups: HolderGroup[] = [];
  kept.forEachGroup((g) => {
    groups.push({
      stackId: kept.stackId(g),
      pages: kept.pages(g),
      refs: kept.refs(g),
      lastPfn: -1,
      lastTgid: -1,
      processes: kept.processes(g),
      comms: kept.comms(g, GROUP_COMMS),
      oldestNs: kept.oldestNs(g),
      examplePfn: kept.examplePfn(g),
    });
  });
  return groups;
}

/**
 * The outstanding holds that pass a filter, grouped by the stack that took
 * them: one pass over the hold table, no allocation per hold. Groups sit in an array indexed by stack
 * id + 1 (ids are the kernel stack map's slots: dense and below
 * --stack-entries; -1, no stack, is one group); a Map lookup per hold made
 * the frame twice as slow.
 */
function filteredHolderGroups(state: TopState, filter: TopFilter): HolderGroup[] {
  const byId: (HolderGroup | undefined)[] = [];
  const groups: HolderGroup[] = [];
  const pairs = new PfnIndex(1024);
  const matches = commMatcher(state, filter);
  const comms = filter.comms.length > 0;
  const ranges = filter.ranges.length > 0;
  state.analysis.holds.forEachHold((pfn, stackId, tgid, comm, refs, takenNs) => {
    if (ranges && !inRanges(filter, pfn)) return;
    if (comms && !matches(comm)) return;
    const index = stackId < 0 ? 0 : stackId + 1;
    while (byId.length <= index) byId.push(undefined);
    let group = byId[index];
    if (!group) {
      group = byId[index] = { stackId: index - 1, pages: 0, refs: 0, lastPfn: -1, lastTgid: -1, processes: 0, comms: [], oldestNs: Infinity, examplePfn: pfn };
      groups.push(group);
    }
    if (group.lastPfn !== pfn) {
      group.pages++;
      group.lastPfn = pfn;
    }
    group.refs += refs;
    if (group.lastTgid !== tgid) {
      // Distinct (group, process) pairs in one typed-array hash: a Set per group cost 70 ms a frame.
      const before = pairs.size;
      pairs.rowOf(index * 2 ** 30 + tgid);
      if (pairs.size !== before) group.processes++;
      group.lastTgid = tgid;
    }
    keepSmallest(group.comms, comm, GROUP_COMMS);
    if (takenNs < group.oldestNs) {
      group.oldestNs = takenNs;
      group.examplePfn = pfn;
    }
  });
  return groups;
}

function selectHolders(state: TopState, q: SnapshotQuery, nowNs: number): { rows: HolderRow[]; matching: number } {
  const groups = holderGroups(state, q.filter);
  const compare = compareRows('holders', q.sort, q.reverse);
  const rows = topN<HolderRow>((visit) => groups.forEach((g) => visit(holderRow(state, g, nowNs))), q.limit, compare);
  return { rows, matching: groups.length };
}

function holderRow(state: TopState, g: HolderGroup, nowNs: number): HolderRow {
  const stack = g.stackId < 0 ? [] : state.analysis.frames(g.stackId);
  const info = state.stackInfo(g.stackId);
  return {
    stackId: g.stackId,
    frame: info.frame,
    kind: info.kind,
    stack,
    pages: g.pages,
    refs: g.refs,
    processes: g.processes,
    comms: g.comms.map((c) => state.strings.get(c)),
    oldestHoldNs: nowNs - g.oldestNs,
    examplePfn: g.examplePfn,
  };
}

function stackDetail(state: TopState, row: HolderRow): RowDetail {
  const pfns: number[] = [];
  const comms = new Set<string>();
  state.analysis.holds.forEachHold((pfn, stackId, _tgid, comm) => {
    if ((stackId < 0 ? -1 : stackId) !== row.stackId) return;
    if (pfns.length < 8 && pfns[pfns.length - 1] !== pfn) pfns.push(pfn);
    if (comms.size < 16) comms.add(state.strings.get(comm));
  });
  return { kind: 'stack', stackId: row.stackId, stack: row.stack, comms: [...comms], pfns };
}

// --- failures --------------------------------------------------------------------

function selectFailures(state: TopState, q: SnapshotQuery, nowNs: number): { rows: FailureRow[]; matching: number; culprits: Culprit[] } {
  const filter = q.filter;
  const busy = [...state.analysis.busy.values()].filter(
    (b) => inRanges(filter, b.pfn) && (filter.comms.length === 0 || b.holders.some((h) => commMatches(filter, h.comm)) || b.releasers.some((r) => commMatches(filter, r.comm))),
  );
  const compare = compareRows('failures', q.sort, q.reverse);
  const rows = topN<FailureRow>((visit) => busy.forEach((b) => visit(failureRow(state, b, nowNs))), q.limit, compare);
  // The culprits: holders at the failures grouped by their telling frame, pins first, as blame ranks them.
  const groups = new Map<string, Culprit & { pfns: Set<number> }>();
  for (const b of busy) {
    for (const h of b.holders) {
      const info = state.stackInfo(h.stackId);
      const key = `${info.kind}\n${info.frame}`;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { frame: info.frame, kind: info.kind, pages: 0, failures: 0, pfns: new Set() }));
      if (!group.pfns.has(b.pfn)) {
        group.pfns.add(b.pfn);
        group.pages++;
        group.failures += b.failures;
      }
    }
  }
  const culprits = [...groups.values()]
    .sort((a, b) => KIND_RANK[a.kind] - KIND_RANK[b.kind] || b.pages - a.pages || b.failures - a.failures)
    .map(({ pfns: _pfns, ...c }) => c);
  return { rows, matching: busy.length, culprits };
}

function failureRow(state: TopState, b: BusyPfn, nowNs: number): FailureRow {
  const holders = b.holders
    .map((h) => ({ h, info: state.stackInfo(h.stackId) }))
    .sort((x, y) => KIND_RANK[x.info.kind] - KIND_RANK[y.info.kind] || y.h.heldNs - x.h.heldNs);
  const top = holders[0];
  const releaser = b.releasers[0];
  return {
    pfn: b.pfn,
    failures: b.failures,
    busyRetries: b.busyRetries,
    count: b.count,
    mapcount: b.mapcount,
    holders: b.holders.length,
    heldNs: holders.length > 0 ? Math.max(...holders.map((x) => x.h.heldNs)) : -1,
    lastFailureAgoNs: nowNs - b.lastFailureNs,
    culprit: top ? { comm: top.h.comm, pid: top.h.tgid, frame: top.info.frame, kind: top.info.kind } : null,
    releaser: releaser ? { comm: releaser.comm, pid: releaser.tgid, frame: stackFrame(state, releaser.stackId), afterNs: releaser.afterNs } : null,
  };
}

function failureDetail(state: TopState, pfn: number): RowDetail | null {
  const b = state.analysis.busy.get(pfn);
  if (!b) return null;
  const frames = (id: number) => (id === NO_HOLDER || id < 0 ? [] : state.analysis.frames(id));
  return {
    kind: 'failure',
    pfn,
    holders: b.holders
      .map((h) => {
        const stack = frames(h.stackId);
        return { comm: h.comm, pid: h.tgid, refs: h.refs, heldNs: h.heldNs, kind: referenceKind(stack), certain: h.certain, stack };
      })
      .sort((x, y) => KIND_RANK[x.kind] - KIND_RANK[y.kind] || y.heldNs - x.heldNs),
    releasers: b.releasers.map((r) => ({ comm: r.comm, pid: r.tgid, refs: r.refs, afterNs: r.afterNs, stack: frames(r.stackId) })),
  };
}
