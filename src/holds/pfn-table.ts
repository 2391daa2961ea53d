// Per-pfn reference totals (gets, puts, events) for the report: a PfnIndex
// and three columns, a few dozen bytes per page.

import { grown, PfnIndex } from './pfn-index';

export class PfnTable {
  private readonly index: PfnIndex;
  private gets: Float64Array;
  private puts: Float64Array;
  private events: Float64Array;

  constructor(initialCapacity = 1 << 14) {
    this.index = new PfnIndex(initialCapacity);
    this.gets = new Float64Array(initialCapacity);
    this.puts = new Float64Array(initialCapacity);
    this.events = new Float64Array(initialCapacity);
  }

  /** Distinct pfns seen. */
  get size(): number {
    return this.index.size;
  }

  get bytes(): number {
    return this.index.bytes + this.gets.byteLength + this.puts.byteLength + this.events.byteLength;
  }

  /** Counts `events` events (one by default) on `pfn` that took `got` references and dropped `put`. */
  add(pfn: number, got: number, put: number, events = 1): void {
    const row = this.index.rowOf(pfn);
    if (row >= this.events.length) {
      this.gets = grown(this.gets, row + 1);
      this.puts = grown(this.puts, row + 1);
      this.events = grown(this.events, row + 1);
    }
    this.gets[row] += got;
    this.puts[row] += put;
    this.events[row] += events;
  }

  get(pfn: number): PfnRow | undefined {
    const row = this.index.find(pfn);
    return row < 0 ? undefined : this.row(row);
  }

  /** The rows sorted by `better` (best first), at most `limit`, without sorting every pfn. */
  top(limit: number, better: (a: PfnRow, b: PfnRow) => number): PfnRow[] {
    return topN(this.index.size, (row) => this.row(row), limit, better);
  }

  private row(row: number): PfnRow {
    const gets = this.gets[row];
    const puts = this.puts[row];
    return { pfn: this.index.pfnOf(row), gets, puts, net: gets - puts, events: this.events[row] };
  }
}

export interface PfnRow {
  pfn: number;
  gets: number;
  puts: number;
  net: number;
  events: number;
}

/** The best `limit` of `count` items by `better`, best first: a bounded insertion list, O(count * limit) at worst. */
export function topN<T>(count: number, item: (index: number) => T, limit: number, better: (a: T, b: T) => number): T[] {
  const kept: T[] = [];
  if (limit <= 0) return kept;
  for (let index = 0; index < count; index++) {
    if (kept.length === limit && better(item(index), kept[limit - 1]) >= 0) continue;
    const candidate = item(index);
    let at = kept.length < limit ? kept.length : limit - 1;
    if (kept.length < limit) kept.push(candidate);
    while (at > 0 && better(candidate, kept[at - 1]) < 0) {
      kept[at] = kept[at - 1];
      at--;
    }
    kept[at] = candidate;
  }
  return kept;
}
