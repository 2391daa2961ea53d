// Per-pfn hold accounting: for every page seen, its reference totals and the
// references still outstanding, each with the task and stack that took it.
//
// The pairing rule. A put does not say which get it undoes, so when a page
// has several outstanding gets, a put cancels:
//   0. when its stack says what it releases (an unpin or pipe buffer release
//      drops a pin; unmapping drops a mapping's reference: see
//      `PairingHints`), a get of that kind, same process first;
//   1. else the most recent outstanding get taken by the same process (tgid),
//      if any: code that takes and drops its own reference (get_page/put_page
//      in one function, GUP pin then unpin) nests, last in, first out;
//   2. otherwise the oldest outstanding get: references handed to someone
//      else (a pipe, an LRU batch) are released in the order they were taken.
// With one outstanding get there is no choice. An outstanding get is
// *certain* when no put on its page has had to choose since it was taken;
// otherwise it is *inferred*.
//
// A page whose refcount is set (page_ref_set: a fresh allocation) or frozen
// starts a new life: its outstanding gets are forgotten, and a set's
// references are held by the code that set them. Puts with nothing
// outstanding drop references taken before tracing began ("untracked").
//
// Memory is bounded per page: at most MAX_HOLDS_PER_PFN outstanding gets are
// kept; beyond that the oldest is folded into the untracked count. Pages are
// bounded too (--max-pfns): a new page past the bound evicts an eighth of
// it at once, pages with nothing outstanding first, the least recently
// touched first, so what blame is about (pages still held) goes last. One
// scan and one sort of times per eviction: a few operations per new page,
// amortised, and none for an event on a page already tracked.

import type { EventBatch } from '../record/event-batch';
import { EventType } from '../record/event-types';
import { grown, PfnIndex } from './pfn-index';
import { referenceDelta } from './reference-delta';
import { stackGroupOf, StackGroups } from './stack-groups';

export const MAX_HOLDS_PER_PFN = 16;

/**
 * What stacks say about pairing: the kind of reference a get's stack takes,
 * and the kind a put's stack releases ("" when it does not say). Kinds are
 * opaque labels to the table; blame supplies them from the frames.
 */
export interface PairingHints {
  takes(stackId: number): string;
  releases(stackId: number): string;
}

const NO_HINTS: PairingHints = { takes: () => '', releases: () => '' };

const NONE = -1;

/** What eviction took away, in total: pages, their events, and the references still outstanding on them. */
export interface HoldEvictions {
  pfns: number;
  events: number;
  /** Outstanding references forgotten with their pages (a later put of them counts as untracked). */
  outstandingRefs: number;
}

/** One outstanding reference, as reported. */
export interface Hold {
  stackId: number;
  pid: number;
  tgid: number;
  comm: number;
  refs: number;
  takenNs: number;
  certain: boolean;
}

export interface PageState {
  pfn: number;
  gets: number;
  puts: number;
  /** gets - puts since tracing began (across lives). */
  net: number;
  /** The refcount the kernel last reported for this page. */
  lastCount: number;
  lastMapcount: number;
  /** page flags and mapping key of the last event. */
  lastFlags: number;
  lastMapping: number;
  firstNs: number;
  lastNs: number;
  events: number;
  /** When the current life began (set or freeze), or the first event. */
  lifeStartNs: number;
  /** References dropped in this life that were taken before tracing (or folded away). */
  untrackedPuts: number;
}

/** The event fields the hold table reads, one event at a time. */
export interface RefEvent {
  type: number;
  pfn: number;
  tsNs: number;
  val: number;
  ret: number;
  count: number;
  mapcount: number;
  flags: number;
  mapping: number;
  stackId: number;
  pid: number;
  tgid: number;
  comm: number;
}

/** Copies event `i` of `batch` into `e` (one object reused for every event: no allocation per event). */
export function readRefEvent(e: RefEvent, batch: EventBatch, i: number): RefEvent {
  e.type = batch.type[i];
  e.pfn = batch.pfn[i];
  e.tsNs = batch.tsNs[i];
  e.val = batch.val[i];
  e.ret = batch.ret[i];
  e.count = batch.count[i];
  e.mapcount = batch.mapcount[i];
  e.flags = batch.flags[i];
  e.mapping = batch.mapping[i];
  e.stackId = batch.stackId[i];
  e.pid = batch.pid[i];
  e.tgid = batch.tgid[i];
  e.comm = batch.comm[i];
  return e;
}

export class HoldTable {
  private readonly index: PfnIndex;
  private cols: PageColumns;
  // Outstanding gets: a pool of hold records, linked per page, oldest first.
  private readonly hold = new HoldPool();
  private readonly evicted: HoldEvictions = { pfns: 0, events: 0, outstandingRefs: 0 };

  /** `maxPfns`: pages tracked at most (--max-pfns); Infinity for no bound. */
  constructor(
    initialCapacity = 1 << 14,
    private readonly hints: PairingHints = NO_HINTS,
    readonly maxPfns = Infinity,
  ) {
    if (!(maxPfns >= 1)) throw new RangeError(`maxPfns is at least 1, not ${maxPfns}`);
    this.index = new PfnIndex(Math.min(initialCapacity, maxPfns));
    this.cols = new PageColumns();
  }

  /** What eviction has taken away so far (a copy). */
  get evictions(): HoldEvictions {
    return { ...this.evicted };
  }

  get size(): number {
    return this.index.size;
  }

  /**
   * Applies one page_ref event. Returns the references it took (> 0) or
   * dropped (< 0), or 0 (set, freeze, unfreeze, a failed add). When
   * `cancelled` is given, a put appends the holds it cancelled to it; without
   * it nothing is allocated, which keeps the per-event path cheap.
   */
  apply(e: RefEvent, cancelled?: Hold[]): number {
    const slot = this.index.rowOf(e.pfn);
    const c = this.cols;
    c.ensure(slot + 1);
    if (c.events[slot] === 0) {
      c.firstNs[slot] = e.tsNs;
      c.lifeStartNs[slot] = e.tsNs;
      if (this.index.size > this.maxPfns) this.evict(slot);
    }
    c.events[slot]++;
    c.lastNs[slot] = e.tsNs;
    c.lastCount[slot] = e.count;
    c.lastMapcount[slot] = e.mapcount;
    c.lastFlags[slot] = e.flags;
    c.lastMapping[slot] = e.mapping;

    if (e.type === EventType.PageRefSet || (e.type === EventType.PageRefFreeze && e.ret !== 0)) {
      this.hold.freeAll(c, slot);
      c.lifeStartNs[slot] = e.tsNs;
      c.untrackedPuts[slot] = 0;
      c.choices[slot] = 0;
      // A set (allocation) hands its references to the allocating code path:
      // they are held like gets. A freeze leaves none.
      if (e.type === EventType.PageRefSet && e.val > 0) this.hold.add(c, slot, e, e.val);
      return 0;
    }
    const delta = referenceDelta(e.type, e.val, e.ret);
    if (delta > 0) {
      c.gets[slot] += delta;
      this.hold.add(c, slot, e, delta);
    } else if (delta < 0) {
      c.puts[slot] -= delta;
      this.cancel(slot, e.tgid, this.hints.releases(e.stackId), -delta, cancelled);
    }
    return delta;
  }

  page(pfn: number): PageState | undefined {
    const slot = this.index.find(pfn);
    if (slot < 0) return undefined;
    const c = this.cols;
    return {
      pfn,
      gets: c.gets[slot],
      puts: c.puts[slot],
      net: c.gets[slot] - c.puts[slot],
      lastCount: c.lastCount[slot],
      lastMapcount: c.lastMapcount[slot],
      lastFlags: c.lastFlags[slot],
      lastMapping: c.lastMapping[slot],
      firstNs: c.firstNs[slot],
      lastNs: c.lastNs[slot],
      events: c.events[slot],
      lifeStartNs: c.lifeStartNs[slot],
      untrackedPuts: c.untrackedPuts[slot],
    };
  }

  /** The outstanding gets of `pfn`, oldest first. */
  holds(pfn: number): Hold[] {
    const slot = this.index.find(pfn);
    return slot < 0 ? [] : this.hold.list(this.cols, slot);
  }

  /**
   * Visits every outstanding get, page by page in the order pages were first
   * seen, each page's oldest first. Allocates nothing per hold: a live view
   * (pageref top) groups a million pages' holds by stack every frame.
   */
  forEachHold(visit: (pfn: number, stackId: number, tgid: number, comm: number, refs: number, takenNs: number) => void): void {
    const { cols: c, hold } = this;
    for (let slot = 0; slot < this.index.rowLimit; slot++) {
      if (c.head[slot] === NONE) continue;
      const pfn = this.index.pfnOf(slot);
      for (let h = c.head[slot]; h !== NONE; h = hold.next[h]) visit(pfn, hold.stackId[h], hold.tgid[h], hold.comm[h], hold.refs[h], hold.takenNs[h]);
    }
  }

  /**
   * The outstanding gets grouped by stack, kept up to date from the first
   * call on (one pass over the holds then, a few steps per get and put
   * after); tables never asked keep no groups.
   */
  stackGroups(): StackGroups {
    let groups = this.hold.groups;
    if (!groups) {
      groups = new StackGroups();
      const { cols: c, hold } = this;
      for (let slot = 0; slot < this.index.size; slot++) {
        const pfn = this.index.pfnOf(slot);
        for (let h = c.head[slot]; h !== NONE; h = hold.next[h]) {
          groups.added(h, pfn, hold.stackId[h], hold.tgid[h], hold.comm[h], hold.refs[h], hold.takenNs[h], !hold.groupEarlierOnPage(c, slot, h));
        }
      }
      hold.groups = groups;
    }
    return groups;
  }

  /** Bytes held by the table's typed arrays (for the benchmarks). */
  get bytes(): number {
    return this.index.bytes + this.cols.bytes + this.hold.bytes;
  }

  /** Evicts an eighth of the bound's pages (at least one), never `keep`: the policy at the top of this file. */
  private evict(keep: number): void {
    const c = this.cols;
    let need = Math.max(1, this.index.size - Math.floor((this.maxPfns * 7) / 8));
    for (const holding of [false, true]) {
      const times: number[] = [];
      for (let row = 0; row < this.index.rowLimit; row++) {
        if (row !== keep && this.index.pfnOf(row) !== NONE && (c.head[row] !== NONE) === holding) times.push(c.lastNs[row]);
      }
      if (times.length === 0) continue;
      const sorted = Float64Array.from(times).sort();
      const threshold = sorted[Math.min(need, sorted.length) - 1];
      // Strictly older than the threshold first, then rows at it until enough.
      for (const atThreshold of [false, true]) {
        for (let row = 0; row < this.index.rowLimit && need > 0; row++) {
          if (row === keep || this.index.pfnOf(row) === NONE || (c.head[row] !== NONE) !== holding) continue;
          if (atThreshold ? c.lastNs[row] !== threshold : c.lastNs[row] >= threshold) continue;
          this.drop(row);
          need--;
        }
      }
      if (need === 0) return;
    }
  }

  private drop(row: number): void {
    const c = this.cols;
    this.evicted.pfns++;
    this.evicted.events += c.events[row];
    for (let h = c.head[row]; h !== NONE; h = this.hold.next[h]) this.evicted.outstandingRefs += this.hold.refs[h];
    this.hold.freeAll(c, row);
    this.index.remove(this.index.pfnOf(row));
    // A reused row starts as a new page does (apply sets the rest at its first event).
    c.gets[row] = 0;
    c.puts[row] = 0;
    c.events[row] = 0;
    c.untrackedPuts[row] = 0;
    c.choices[row] = 0;
  }

  private cancel(slot: number, tgid: number, releases: string, refs: number, cancelled: Hold[] | undefined): void {
    const c = this.cols;
    while (refs > 0) {
      const outstanding = c.holdCount[slot];
      if (outstanding === 0) {
        c.untrackedPuts[slot] += refs;
        return;
      }
      if (outstanding > 1) c.choices[slot]++;
      const h = this.pick(slot, tgid, releases);
      const take = Math.min(refs, this.hold.refs[h]);
      if (cancelled) cancelled.push({ ...this.hold.describe(c, slot, h), refs: take });
      refs -= take;
      this.hold.refs[h] -= take;
      this.hold.groups?.dropped(this.hold.stackId[h], take);
      if (this.hold.refs[h] === 0) this.hold.remove(c, slot, h);
    }
  }

  /** The hold record a put cancels, by the pairing rule at the top of this file. */
  private pick(slot: number, tgid: number, releases: string): number {
    const { hold, cols: c } = this;
    if (releases !== '') {
      const ofKind = (h: number) => this.hints.takes(hold.stackId[h]) === releases;
      for (let h = c.tail[slot]; h !== NONE; h = hold.prev[h]) if (hold.tgid[h] === tgid && ofKind(h)) return h;
      for (let h = c.head[slot]; h !== NONE; h = hold.next[h]) if (ofKind(h)) return h;
    }
    for (let h = c.tail[slot]; h !== NONE; h = hold.prev[h]) if (hold.tgid[h] === tgid) return h;
    return c.head[slot];
  }
}

/** Per-page state, one typed array per field, indexed by PfnIndex row. */
class PageColumns {
  gets = new Float64Array(0);
  puts = new Float64Array(0);
  events = new Float64Array(0);
  firstNs = new Float64Array(0);
  lastNs = new Float64Array(0);
  lifeStartNs = new Float64Array(0);
  lastFlags = new Float64Array(0);
  lastMapping = new Float64Array(0);
  lastCount = new Int32Array(0);
  lastMapcount = new Int32Array(0);
  untrackedPuts = new Float64Array(0);
  /** Puts on this page in this life that had to choose among several gets. */
  choices = new Uint32Array(0);
  /** First and last hold record of the page's outstanding gets (NONE when none). */
  head = new Int32Array(0);
  tail = new Int32Array(0);
  holdCount = new Uint8Array(0);

  ensure(rows: number): void {
    if (rows <= this.gets.length) return;
    this.gets = grown(this.gets, rows);
    this.puts = grown(this.puts, rows);
    this.events = grown(this.events, rows);
    this.firstNs = grown(this.firstNs, rows);
    this.lastNs = grown(this.lastNs, rows);
    this.lifeStartNs = grown(this.lifeStartNs, rows);
    this.lastFlags = grown(this.lastFlags, rows);
    this.lastMapping = grown(this.lastMapping, rows);
    this.lastCount = grown(this.lastCount, rows);
    this.lastMapcount = grown(this.lastMapcount, rows);
    this.untrackedPuts = grown(this.untrackedPuts, rows);
    this.choices = grown(this.choices, rows);
    this.head = grown(this.head, rows, NONE);
    this.tail = grown(this.tail, rows, NONE);
    this.holdCount = grown(this.holdCount, rows);
  }

  get bytes(): number {
    return Object.values(this).reduce((sum: number, column: ArrayBufferView) => sum + column.byteLength, 0);
  }
}

/**
 * Hold records in columns, linked oldest-to-newest per page, with a free
 * list. Records are reused, so the pool grows only with the number of
 * references outstanding at once.
 */
class HoldPool {
  stackId = new Int32Array(1024);
  pid = new Uint32Array(1024);
  tgid = new Uint32Array(1024);
  comm = new Uint32Array(1024);
  refs = new Int32Array(1024);
  takenNs = new Float64Array(1024);
  /** The page's `choices` when this get was taken: equal now means certain. */
  choicesAtGet = new Uint32Array(1024);
  next = new Int32Array(1024).fill(NONE);
  prev = new Int32Array(1024).fill(NONE);
  /** Set once someone asked the table for its stack groups. */
  groups: StackGroups | undefined;
  private free = NONE;
  private size = 0;

  get bytes(): number {
    return [this.stackId, this.pid, this.tgid, this.comm, this.refs, this.takenNs, this.choicesAtGet, this.next, this.prev].reduce((sum, a) => sum + a.byteLength, 0);
  }

  add(c: PageColumns, slot: number, e: RefEvent, refs: number): void {
    if (c.holdCount[slot] >= MAX_HOLDS_PER_PFN) {
      // Fold the oldest away: a later put of its references counts as untracked.
      this.remove(c, slot, c.head[slot]);
    }
    const h = this.allocate();
    this.stackId[h] = e.stackId;
    this.pid[h] = e.pid;
    this.tgid[h] = e.tgid;
    this.comm[h] = e.comm;
    this.refs[h] = refs;
    this.takenNs[h] = e.tsNs;
    this.choicesAtGet[h] = c.choices[slot];
    this.prev[h] = c.tail[slot];
    this.next[h] = NONE;
    if (c.tail[slot] !== NONE) this.next[c.tail[slot]] = h;
    else c.head[slot] = h;
    c.tail[slot] = h;
    c.holdCount[slot]++;
    this.groups?.added(h, e.pfn, e.stackId, e.tgid, e.comm, refs, e.tsNs, !this.groupElsewhereOnPage(c, slot, h));
  }

  /** Whether a record of the page other than `h` was taken by a stack of h's group. */
  groupElsewhereOnPage(c: PageColumns, slot: number, h: number): boolean {
    const group = stackGroupOf(this.stackId[h]);
    for (let x = c.head[slot]; x !== NONE; x = this.next[x]) if (x !== h && stackGroupOf(this.stackId[x]) === group) return true;
    return false;
  }

  /** Whether a record of the page before `h` was taken by a stack of h's group (building the groups page by page). */
  groupEarlierOnPage(c: PageColumns, slot: number, h: number): boolean {
    const group = stackGroupOf(this.stackId[h]);
    for (let x = c.head[slot]; x !== h; x = this.next[x]) if (stackGroupOf(this.stackId[x]) === group) return true;
    return false;
  }

  remove(c: PageColumns, slot: number, h: number): void {
    this.groups?.removed(h, this.stackId[h], this.tgid[h], this.comm[h], this.refs[h], !this.groupElsewhereOnPage(c, slot, h));
    if (this.prev[h] !== NONE) this.next[this.prev[h]] = this.next[h];
    else c.head[slot] = this.next[h];
    if (this.next[h] !== NONE) this.prev[this.next[h]] = this.prev[h];
    else c.tail[slot] = this.prev[h];
    c.holdCount[slot]--;
    this.next[h] = this.free;
    this.free = h;
  }

  freeAll(c: PageColumns, slot: number): void {
    while (c.head[slot] !== NONE) this.remove(c, slot, c.head[slot]);
  }

  list(c: PageColumns, slot: number): Hold[] {
    const out: Hold[] = [];
    for (let h = c.head[slot]; h !== NONE; h = this.next[h]) out.push(this.describe(c, slot, h));
    return out;
  }

  describe(c: PageColumns, slot: number, h: number): Hold {
    return {
      stackId: this.stackId[h],
      pid: this.pid[h],
      tgid: this.tgid[h],
      comm: this.comm[h],
      refs: this.refs[h],
      takenNs: this.takenNs[h],
      certain: this.choicesAtGet[h] === c.choices[slot],
    };
  }

  private allocate(): number {
    if (this.free !== NONE) {
      const h = this.free;
      this.free = this.next[h];
      return h;
    }
    if (this.size === this.refs.length) this.grow();
    return this.size++;
  }

  private grow(): void {
    const capacity = this.refs.length * 2;
    this.stackId = grown(this.stackId, capacity);
    this.pid = grown(this.pid, capacity);
    this.tgid = grown(this.tgid, capacity);
    this.comm = grown(this.comm, capacity);
    this.refs = grown(this.refs, capacity);
    this.takenNs = grown(this.takenNs, capacity);
    this.choicesAtGet = grown(this.choicesAtGet, capacity);
    this.next = grown(this.next, capacity, NONE);
    this.prev = grown(this.prev, capacity, NONE);
  }
}
