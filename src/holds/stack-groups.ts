// Outstanding references grouped by the stack that took them, kept up to
// date as the hold table adds and removes hold records, so that a view
// (pageref top's holders) reads a few hundred groups instead of regrouping a
// million holds every frame (that pass took 44-83 ms with 1.3 M holds:
// BENCHMARKS.md). The hold table feeds it once asked to
// (HoldTable.stackGroups()); nothing else pays for it.
//
// Per group: hold records, references, distinct pages, distinct processes,
// the comms of its holders, and its oldest record. The oldest is kept as
// records come and found again, by a walk over the group's records, only
// when it goes and someone asks: keeping records in time order cost a sort
// of every record when the groups are built from a table, and the oldest
// reference of a stack is mostly one that stays.

import { grown, PfnIndex } from './pfn-index';

const NONE = -1;
/** Pair keys: group * 2^32 + tgid or comm index, exact in a float64 for groups below 2^21. */
const PAIR = 2 ** 32;

/** The group of a stack id: every negative id (no stack) is group 0. */
export function stackGroupOf(stackId: number): number {
  return stackId < 0 ? 0 : stackId + 1;
}

export class StackGroups {
  // Per group, indexed by stackGroupOf().
  private holdCount = new Int32Array(0);
  private refCount = new Float64Array(0);
  private pageCount = new Int32Array(0);
  private processCount = new Int32Array(0);
  private head = new Int32Array(0);
  private oldest = new Int32Array(0);
  /** 1: the oldest record went; `oldest` is found again when asked. */
  private stale = new Uint8Array(0);
  private commRows: number[][] = [];
  // Per hold record, indexed by the hold table's record number.
  private pfn = new Float64Array(0);
  private takenNs = new Float64Array(0);
  private prev = new Int32Array(0);
  private next = new Int32Array(0);
  // Distinct (group, process) and (group, comm) pairs, with the hold records of each.
  private readonly processPairs = new PfnIndex(1024);
  private processHolds = new Int32Array(0);
  private readonly commPairs = new PfnIndex(1024);
  private commHolds = new Int32Array(0);
  private commOf = new Float64Array(0);

  /**
   * Hold record `h` was added to page `pfn`; `newPage`: the page had no
   * other record of the same group.
   */
  added(h: number, pfn: number, stackId: number, tgid: number, comm: number, refs: number, takenNs: number, newPage: boolean): void {
    const g = stackGroupOf(stackId);
    if (g >= this.holdCount.length) this.growGroups(g + 1);
    if (h >= this.pfn.length) this.growHolds(h + 1);
    this.holdCount[g]++;
    this.refCount[g] += refs;
    if (newPage) this.pageCount[g]++;
    const process = this.processPairs.rowOf(g * PAIR + tgid);
    if (process >= this.processHolds.length) this.processHolds = grown(this.processHolds, process + 1);
    if (this.processHolds[process]++ === 0) this.processCount[g]++;
    const before = this.commPairs.size;
    const commRow = this.commPairs.rowOf(g * PAIR + comm);
    if (this.commPairs.size !== before) {
      this.commHolds = grown(this.commHolds, commRow + 1);
      this.commOf = grown(this.commOf, commRow + 1);
      this.commOf[commRow] = comm;
      this.commRows[g].push(commRow);
    }
    this.commHolds[commRow]++;
    this.pfn[h] = pfn;
    this.takenNs[h] = takenNs;
    this.prev[h] = NONE;
    this.next[h] = this.head[g];
    if (this.head[g] !== NONE) this.prev[this.head[g]] = h;
    this.head[g] = h;
    const oldest = this.oldest[g];
    if (this.stale[g] === 0 && (oldest === NONE || takenNs < this.takenNs[oldest])) this.oldest[g] = h;
  }

  /** Record `h` is going with `refs` references; `lastOnPage`: its page keeps no other record of the group. */
  removed(h: number, stackId: number, tgid: number, comm: number, refs: number, lastOnPage: boolean): void {
    const g = stackGroupOf(stackId);
    this.holdCount[g]--;
    this.refCount[g] -= refs;
    if (lastOnPage) this.pageCount[g]--;
    if (--this.processHolds[this.processPairs.rowOf(g * PAIR + tgid)] === 0) this.processCount[g]--;
    this.commHolds[this.commPairs.rowOf(g * PAIR + comm)]--;
    if (this.prev[h] !== NONE) this.next[this.prev[h]] = this.next[h];
    else this.head[g] = this.next[h];
    if (this.next[h] !== NONE) this.prev[this.next[h]] = this.prev[h];
    if (this.oldest[g] === h) {
      this.oldest[g] = NONE;
      this.stale[g] = 1;
    }
  }

  /** A put cancelled `refs` of record `h`'s references and left it outstanding. */
  dropped(stackId: number, refs: number): void {
    this.refCount[stackGroupOf(stackId)] -= refs;
  }

  /** Visits every group with an outstanding reference, as its group number. */
  forEachGroup(visit: (group: number) => void): void {
    for (let g = 0; g < this.holdCount.length; g++) if (this.holdCount[g] > 0) visit(g);
  }

  /** The stack id of a group (-1: no stack). */
  stackId(group: number): number {
    return group - 1;
  }

  pages(group: number): number {
    return this.pageCount[group];
  }

  refs(group: number): number {
    return this.refCount[group];
  }

  processes(group: number): number {
    return this.processCount[group];
  }

  /** When the group's oldest outstanding reference was taken (Infinity: none). */
  oldestNs(group: number): number {
    const h = this.oldestRecord(group);
    return h === NONE ? Infinity : this.takenNs[h];
  }

  /** The page of the group's oldest outstanding reference (-1: none); of equally old ones, the first added. */
  examplePfn(group: number): number {
    const h = this.oldestRecord(group);
    return h === NONE ? -1 : this.pfn[h];
  }

  /** Up to `max` comms (string indices) of the group's holders: the first seen in the stream (lowest index) first. */
  comms(group: number, max: number): number[] {
    const out: number[] = [];
    for (const row of this.commRows[group] ?? []) if (this.commHolds[row] > 0) keepSmallest(out, this.commOf[row], max);
    return out;
  }

  private oldestRecord(g: number): number {
    if (this.stale[g] === 1) {
      // The group's records run newest first: `<=` keeps the first added of equally old ones.
      let oldest = NONE;
      for (let h = this.head[g]; h !== NONE; h = this.next[h]) if (oldest === NONE || this.takenNs[h] <= this.takenNs[oldest]) oldest = h;
      this.oldest[g] = oldest;
      this.stale[g] = 0;
    }
    return this.oldest[g];
  }

  private growGroups(n: number): void {
    this.holdCount = grown(this.holdCount, n);
    this.refCount = grown(this.refCount, n);
    this.pageCount = grown(this.pageCount, n);
    this.processCount = grown(this.processCount, n);
    this.head = grown(this.head, n, NONE);
    this.oldest = grown(this.oldest, n, NONE);
    this.stale = grown(this.stale, n);
    while (this.commRows.length < this.holdCount.length) this.commRows.push([]);
  }

  private growHolds(n: number): void {
    this.pfn = grown(this.pfn, n);
    this.takenNs = grown(this.takenNs, n);
    this.prev = grown(this.prev, n, NONE);
    this.next = grown(this.next, n, NONE);
  }
}

/**
 * Adds `value` to `kept`, an ascending list of at most `max` distinct
 * values, if it is among the `max` smallest seen: one compare for most
 * values once the list is full.
 */
export function keepSmallest(kept: number[], value: number, max: number): void {
  if (kept.length === max && value >= kept[max - 1]) return;
  let at = kept.length;
  while (at > 0 && kept[at - 1] > value) at--;
  if (at > 0 && kept[at - 1] === value) return;
  kept.splice(at, 0, value);
  if (kept.length > max) kept.pop();
}
