// pfn -> dense row number, for tables that keep per-page columns in typed
// arrays. V8's Map stops at 2^24 entries (a 64 GiB host has 16.8 M pages)
// and costs far more per entry; this is an open-addressing hash over typed
// arrays. Rows are numbered 0, 1, 2... in order of first sight, so column
// arrays only ever grow at the end and never move on a rehash. A removed
// pfn's row is handed to the next new pfn, so rows stay below the most pfns
// held at once; `rowLimit` is where row numbers end.

const EMPTY = -1;

export class PfnIndex {
  private keys: Float64Array;
  private rows: Int32Array;
  private pfns: Float64Array;
  private count = 0;
  /** Rows handed out, removed ones included. */
  private rowsUsed = 0;
  private freeRows: number[] = [];

  constructor(initialCapacity = 1 << 14) {
    const capacity = 1 << Math.ceil(Math.log2(Math.max(16, initialCapacity * 2)));
    this.keys = new Float64Array(capacity).fill(EMPTY);
    this.rows = new Int32Array(capacity);
    this.pfns = new Float64Array(capacity / 2);
  }

  /** Distinct pfns. */
  get size(): number {
    return this.count;
  }

  /** Row numbers are below this (rows of removed pfns among them, their pfnOf -1). */
  get rowLimit(): number {
    return this.rowsUsed;
  }

  /** The row of `pfn`, or -1. */
  find(pfn: number): number {
    const mask = this.keys.length - 1;
    for (let slot = hashPfn(pfn) & mask; ; slot = (slot + 1) & mask) {
      if (this.keys[slot] === pfn) return this.rows[slot];
      if (this.keys[slot] === EMPTY) return -1;
    }
  }

  /** The row of `pfn`, added as the next row if new. */
  rowOf(pfn: number): number {
    const mask = this.keys.length - 1;
    for (let slot = hashPfn(pfn) & mask; ; slot = (slot + 1) & mask) {
      if (this.keys[slot] === pfn) return this.rows[slot];
      if (this.keys[slot] === EMPTY) {
        if ((this.count + 1) * 2 > this.keys.length) {
          this.grow();
          return this.rowOf(pfn);
        }
        const row = this.freeRows.length > 0 ? this.freeRows.pop()! : this.rowsUsed++;
        this.count++;
        this.keys[slot] = pfn;
        this.rows[slot] = row;
        this.pfns[row] = pfn;
        return row;
      }
    }
  }

  /**
   * Forgets `pfn`; its row goes to a later new pfn. Linear probing has no
   * tombstones here: the entries after the hole in its probe run are moved
   * back into it where their home slot allows (Knuth's algorithm R), so
   * `find` still stops at the first empty slot.
   */
  remove(pfn: number): boolean {
    const mask = this.keys.length - 1;
    let hole = hashPfn(pfn) & mask;
    while (this.keys[hole] !== pfn) {
      if (this.keys[hole] === EMPTY) return false;
      hole = (hole + 1) & mask;
    }
    const row = this.rows[hole];
    this.pfns[row] = EMPTY;
    this.freeRows.push(row);
    this.count--;
    for (let slot = (hole + 1) & mask; this.keys[slot] !== EMPTY; slot = (slot + 1) & mask) {
      const home = hashPfn(this.keys[slot]) & mask;
      // Move back unless its home lies cyclically in (hole, slot].
      const stays = hole <= slot ? home > hole && home <= slot : home > hole || home <= slot;
      if (stays) continue;
      this.keys[hole] = this.keys[slot];
      this.rows[hole] = this.rows[slot];
      hole = slot;
    }
    this.keys[hole] = EMPTY;
    return true;
  }

  pfnOf(row: number): number {
    return this.pfns[row];
  }

  get bytes(): number {
    return this.keys.byteLength + this.rows.byteLength + this.pfns.byteLength;
  }

  private grow(): void {
    const capacity = this.keys.length * 2;
    this.keys = new Float64Array(capacity).fill(EMPTY);
    this.rows = new Int32Array(capacity);
    const pfns = new Float64Array(capacity / 2);
    pfns.set(this.pfns.subarray(0, this.rowsUsed));
    this.pfns = pfns;
    const mask = capacity - 1;
    for (let row = 0; row < this.rowsUsed; row++) {
      if (pfns[row] === EMPTY) continue;
      let slot = hashPfn(pfns[row]) & mask;
      while (this.keys[slot] !== EMPTY) slot = (slot + 1) & mask;
      this.keys[slot] = pfns[row];
      this.rows[slot] = row;
    }
  }
}

/** Doubles a typed array's length until `length` fits, keeping its contents. */
export function grown<T extends Float64Array | Int32Array | Uint32Array | Uint8Array>(array: T, length: number, fill = 0): T {
  if (length <= array.length) return array;
  let capacity = Math.max(16, array.length);
  while (capacity < length) capacity *= 2;
  const bigger = new (array.constructor as new (n: number) => T)(capacity);
  if (fill !== 0) bigger.fill(fill as never);
  bigger.set(array as never);
  return bigger;
}

// pfns are dense and sequential; multiply-shift spreads neighbours apart.
function hashPfn(pfn: number): number {
  const lo = pfn >>> 0;
  const hi = (pfn / 0x100000000) >>> 0;
  return Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b) ^ (lo >>> 16);
}
