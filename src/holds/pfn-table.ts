// Per-pfn reference counters for millions of pages: an open-addressing hash
// table over typed arrays (V8's Map stops at 2^24 entries and costs far more
// per entry). Slots hold the pfn and its counters; the table doubles when
// half full.

const EMPTY = -1;

export class PfnTable {
  private keys: Float64Array;
  private gets: Float64Array;
  private puts: Float64Array;
  private events: Float64Array;
  private used = 0;

  constructor(initialCapacity = 1 << 16) {
    const capacity = 1 << Math.ceil(Math.log2(Math.max(16, initialCapacity)));
    this.keys = new Float64Array(capacity).fill(EMPTY);
    this.gets = new Float64Array(capacity);
    this.puts = new Float64Array(capacity);
    this.events = new Float64Array(capacity);
  }

  /** Distinct pfns seen. */
  get size(): number {
    return this.used;
  }

  /** Counts one event on `pfn` that took `got` references and dropped `put`. */
  add(pfn: number, got: number, put: number): void {
    const slot = this.slotFor(pfn);
    this.gets[slot] += got;
    this.puts[slot] += put;
    this.events[slot] += 1;
  }

  /** The rows sorted by `better` (best first), at most `limit`, without sorting every pfn. */
  top(limit: number, better: (a: PfnRow, b: PfnRow) => number): PfnRow[] {
    const kept: PfnRow[] = [];
    for (let slot = 0; slot < this.keys.length; slot++) {
      if (this.keys[slot] === EMPTY) continue;
      const row = this.row(slot);
      if (kept.length < limit) {
        kept.push(row);
        if (kept.length === limit) kept.sort(better);
      } else if (limit > 0 && better(row, kept[limit - 1]) < 0) {
        // Insertion into the sorted, bounded list: O(limit) per row that makes it.
        let at = limit - 1;
        while (at > 0 && better(row, kept[at - 1]) < 0) {
          kept[at] = kept[at - 1];
          at--;
        }
        kept[at] = row;
      }
    }
    return kept.sort(better);
  }

  get(pfn: number): PfnRow | undefined {
    const slot = this.find(pfn);
    return slot < 0 ? undefined : this.row(slot);
  }

  private row(slot: number): PfnRow {
    const gets = this.gets[slot];
    const puts = this.puts[slot];
    return { pfn: this.keys[slot], gets, puts, net: gets - puts, events: this.events[slot] };
  }

  private find(pfn: number): number {
    const mask = this.keys.length - 1;
    for (let slot = hash(pfn) & mask; ; slot = (slot + 1) & mask) {
      if (this.keys[slot] === pfn) return slot;
      if (this.keys[slot] === EMPTY) return -1;
    }
  }

  private slotFor(pfn: number): number {
    const mask = this.keys.length - 1;
    for (let slot = hash(pfn) & mask; ; slot = (slot + 1) & mask) {
      if (this.keys[slot] === pfn) return slot;
      if (this.keys[slot] === EMPTY) {
        if ((this.used + 1) * 2 > this.keys.length) {
          this.grow();
          return this.slotFor(pfn);
        }
        this.keys[slot] = pfn;
        this.used++;
        return slot;
      }
    }
  }

  private grow(): void {
    const { keys, gets, puts, events } = this;
    const capacity = keys.length * 2;
    this.keys = new Float64Array(capacity).fill(EMPTY);
    this.gets = new Float64Array(capacity);
    this.puts = new Float64Array(capacity);
    this.events = new Float64Array(capacity);
    const mask = capacity - 1;
    for (let old = 0; old < keys.length; old++) {
      if (keys[old] === EMPTY) continue;
      let slot = hash(keys[old]) & mask;
      while (this.keys[slot] !== EMPTY) slot = (slot + 1) & mask;
      this.keys[slot] = keys[old];
      this.gets[slot] = gets[old];
      this.puts[slot] = puts[old];
      this.events[slot] = events[old];
    }
  }
}

export interface PfnRow {
  pfn: number;
  gets: number;
  puts: number;
  net: number;
  events: number;
}

// pfns are dense and sequential; multiply-shift spreads neighbours apart.
function hash(pfn: number): number {
  const lo = pfn >>> 0;
  const hi = (pfn / 0x100000000) >>> 0;
  return Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) ^ (lo >>> 16);
}
