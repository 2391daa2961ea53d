// Per-pfn reference accounting for every page seen: references taken (gets)
// and dropped (puts), events, and the refcount, mapcount and time of the
// newest event. What `report` and a live view show for every page; which
// code path holds the references is the hold table's (hold-table.ts).
//
// Layout: a paged direct table, like the kernel's own mem_map. Kernel pfns
// are dense ranges of physical memory, so a pfn's row is found by
// arithmetic, not by hashing:
//   directory  region (pfn >> 20, 4 GiB of 4 KiB pages) -> its 4096 chunk
//              slots: an array for the first 16,384 regions (64 TiB: every
//              x86-64 host with 4-level paging), a Map beyond
//   chunk      256 consecutive pfns (1 MiB of memory): one ArrayBuffer of
//              28-byte rows, read through one DataView, allocated at the
//              first event on any of its pfns
// An event costs two array loads and the reads and writes of its row. Hot
// pages are all over memory, so regions change often: a Map lookup on each
// change cost a quarter of the benchmark's time (BENCHMARKS.md).
//
// Memory (process.memoryUsage().rss on Node 20): a chunk is 7,168 bytes plus
// about 380 bytes of ArrayBuffer, DataView and backing store; a region's
// slots are 32 KiB. Dense, as on a real host: 29.5 bytes per pfn. Worst
// case, tracked pfns 256 or more apart: 7.4 KiB per pfn, plus 32 KiB for a
// pfn alone in its region. 256-pfn chunks bound that worst case to 256 times
// the dense cost while the per-chunk objects stay near 1.5 bytes per pfn
// (64-pfn chunks: 6 bytes, which would break the 32-byte budget).
//
// Row, little-endian (BENCHMARKS.md: a 32-byte stride with Float64Array and
// Int32Array views was no faster, and costs 34 bytes per pfn):
//    0  float64  lastNs        time of the newest event, ns since the capture's base
//    8  uint32   gets          references taken, modulo 2^32
//   12  uint32   puts          references dropped, modulo 2^32
//   16  uint32   events        0: pfn not tracked. Stops at 2^32 - 1, so a busy
//                              page never reads as untracked.
//   20  int32    lastCount     refcount at the newest event
//   24  int32    lastMapcount
//
// Bounded (--max-pfns): past `maxPfns` tracked pfns, or past the memory
// their chunks would take a quarter full (4 times the dense cost, 118 bytes
// per pfn of the bound; pfns far apart cost a chunk and a region each, and
// fewer of them fit), whole chunks are evicted, those whose newest event is
// oldest, until an eighth of the budget is free. One scan of every row per
// eviction, so amortised over an eighth of the budget's new pfns it costs a
// few row reads each; events on tracked pfns never pay for it.

import { topN } from './top-n';

const CHUNK_SHIFT = 8;
const CHUNK_PFNS = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_PFNS - 1;
const REGION_SHIFT = 20;
const CHUNKS_PER_REGION = 1 << (REGION_SHIFT - CHUNK_SHIFT);
const REGIONS_PER_2_32 = 2 ** (32 - REGION_SHIFT);
/** pfn high words below this are the near regions: the first 2^34 pfns (64 TiB). */
const NEAR_HI = 4;
const NEAR_REGIONS = NEAR_HI * REGIONS_PER_2_32;
const TWO_32 = 2 ** 32;
/** pfns stay below 2^52 (x86-64 has 52 physical address bits at most), so every pfn is an exact number. */
export const PFN_LIMIT = 2 ** 52;
const PFN_HI_LIMIT = PFN_LIMIT / TWO_32;

const LAST_NS = 0;
const GETS = 8;
const PUTS = 12;
const EVENTS = 16;
const LAST_COUNT = 20;
const LAST_MAPCOUNT = 24;
const ROW_BYTES = 28;
const MAX_EVENTS = 0xffffffff;

const CHUNK_BYTES = CHUNK_PFNS * ROW_BYTES;
/** ArrayBuffer, DataView and backing store of a chunk: measured, see the top of this file. */
const CHUNK_OBJECT_BYTES = 384;
/** A region's slot array (8-byte pointers), and its place in the directory. */
const REGION_BYTES = CHUNKS_PER_REGION * 8 + 64;

type Region = (DataView | undefined)[];

/** A chunk holds 256 pfns; the memory budget allows a chunk per this many pfns of --max-pfns (a quarter full on average). */
const PFNS_PER_BUDGET_CHUNK = CHUNK_PFNS / 4;
/** The budget is never below this many chunks, each in a region of its own: eviction must leave room to work. */
const MIN_BUDGET_CHUNKS = 8;

/** --max-pfns by default: 4 M pfns, 16 GiB of memory; 118 MiB of PfnCounters dense (29.5 bytes each). */
export const DEFAULT_MAX_PFNS = 1 << 22;

/** What eviction took away, in total: pfns, and the events and references counted on them. */
export interface Evictions {
  pfns: number;
  events: number;
  gets: number;
  puts: number;
}

/** One tracked pfn. */
export interface PfnRow {
  pfn: number;
  gets: number;
  puts: number;
  /** gets - puts. */
  net: number;
  events: number;
  lastCount: number;
  lastMapcount: number;
  lastNs: number;
}

export class PfnCounters {
  private readonly nearRegions: (Region | undefined)[] = [];
  private readonly farRegions = new Map<number, Region>();
  private regionCount = 0;
  private tracked = 0;
  private chunks = 0;
  /** Every chunk and its number (pfn >> 8), for eviction's scan; order is of allocation. */
  private chunkViews: DataView[] = [];
  private chunkNumbers: number[] = [];
  /** Chunks per region key, to free a region whose last chunk goes. */
  private readonly regionChunks = new Map<number, number>();
  private readonly maxBytes: number;
  private readonly evicted: Evictions = { pfns: 0, events: 0, gets: 0, puts: 0 };

  /** `maxPfns`: tracked pfns at most (--max-pfns); Infinity for no bound. */
  constructor(readonly maxPfns = Infinity) {
    if (!(maxPfns >= 1)) throw new RangeError(`maxPfns is at least 1, not ${maxPfns}`);
    // The directory's near array is at most 16,384 slots (128 KiB): left out of the budget.
    this.maxBytes = Math.max(Math.ceil(maxPfns / PFNS_PER_BUDGET_CHUNK) * (CHUNK_BYTES + CHUNK_OBJECT_BYTES), MIN_BUDGET_CHUNKS * (CHUNK_BYTES + CHUNK_OBJECT_BYTES + REGION_BYTES));
  }

  /** What eviction has taken away so far (a copy). */
  get evictions(): Evictions {
    return { ...this.evicted };
  }

  /** Distinct pfns with at least one event. */
  get size(): number {
    return this.tracked;
  }

  /** Memory held by the table: chunks, their objects, and the directory. */
  get bytes(): number {
    return this.budgetedBytes() + this.nearRegions.length * 8;
  }

  private budgetedBytes(): number {
    return this.chunks * (CHUNK_BYTES + CHUNK_OBJECT_BYTES) + this.regionCount * REGION_BYTES;
  }

  /**
   * Counts one event on `pfn` (an integer below 2^52) that took `delta`
   * references (> 0) or dropped them (< 0); `count`, `mapcount` and `tsNs`
   * become the page's last values unless it has seen a newer event (at equal
   * times the later call wins, as in stream order).
   */
  add(pfn: number, delta: number, count: number, mapcount: number, tsNs: number): void {
    const lo = pfn >>> 0;
    this.addWords(lo, highWord(pfn, lo), delta, count, mapcount, tsNs);
  }

  /** `add` with the pfn as the ring buffer holds it: its low and high words, uint32 each. */
  addWords(pfnLo: number, pfnHi: number, delta: number, count: number, mapcount: number, tsNs: number): void {
    // merge()'s work for one event, written out: this is the ring buffer's
    // hot path, and small enough for V8 to inline into its loop.
    const chunk = this.chunkOf(pfnLo, pfnHi);
    const at = (pfnLo & CHUNK_MASK) * ROW_BYTES;
    const events = chunk.getUint32(at + EVENTS, true);
    if (events === 0) this.admit(chunk);
    if (events === 0 || tsNs >= chunk.getFloat64(at + LAST_NS, true)) {
      chunk.setFloat64(at + LAST_NS, tsNs, true);
      chunk.setInt32(at + LAST_COUNT, count, true);
      chunk.setInt32(at + LAST_MAPCOUNT, mapcount, true);
    }
    if (events !== MAX_EVENTS) chunk.setUint32(at + EVENTS, events + 1, true);
    if (delta > 0) chunk.setUint32(at + GETS, chunk.getUint32(at + GETS, true) + delta, true);
    else if (delta < 0) chunk.setUint32(at + PUTS, chunk.getUint32(at + PUTS, true) - delta, true);
  }

  /**
   * Adds a row that arrives already aggregated (the kernel's per-interval
   * rows, --aggregate): its gets, puts and events add up; its last values
   * replace the page's when they are as new or newer. `events` is at least 1:
   * a row exists because something happened. `lastMapcount` NaN: the row has
   * none (capture format 2's PfnCounts), the page keeps the one it had.
   */
  merge(pfn: number, gets: number, puts: number, events: number, lastCount: number, lastMapcount: number, lastTsNs: number): void {
    if (!(events >= 1)) throw new RangeError(`merge: a row has at least one event, not ${events}`);
    const lo = pfn >>> 0;
    this.apply(lo, highWord(pfn, lo), gets, puts, events, lastCount, lastMapcount, lastTsNs);
  }

  /** The counts of `pfn`, or undefined if it has no event. */
  get(pfn: number): PfnRow | undefined {
    if (!Number.isInteger(pfn) || pfn < 0 || pfn >= PFN_LIMIT) return undefined;
    const key = Math.floor(pfn / 2 ** REGION_SHIFT);
    const chunk = this.regionOf(key)?.[Math.floor(pfn / CHUNK_PFNS) % CHUNKS_PER_REGION];
    if (!chunk) return undefined;
    const at = (pfn % CHUNK_PFNS) * ROW_BYTES;
    return chunk.getUint32(at + EVENTS, true) === 0 ? undefined : readRow(chunk, at, pfn, emptyRow());
  }

  /**
   * Visits every tracked pfn in pfn order. `visit` receives one row object,
   * refilled for each pfn (scanning a million pages allocates nothing): copy
   * what you keep.
   */
  forEach(visit: (row: PfnRow) => void): void {
    const row = emptyRow();
    const farKeys = [...this.farRegions.keys()].sort((a, b) => a - b);
    const keys = [...this.nearRegions.keys(), ...farKeys];
    for (const key of keys) {
      const region = this.regionOf(key);
      if (!region) continue;
      for (let index = 0; index < CHUNKS_PER_REGION; index++) {
        const chunk = region[index];
        if (!chunk) continue;
        const firstPfn = key * 2 ** REGION_SHIFT + index * CHUNK_PFNS;
        for (let slot = 0, at = 0; slot < CHUNK_PFNS; slot++, at += ROW_BYTES) {
          if (chunk.getUint32(at + EVENTS, true) !== 0) visit(readRow(chunk, at, firstPfn + slot, row));
        }
      }
    }
  }

  /** The rows best by `better` (negative: a first), at most `limit`, without sorting every pfn. */
  top(limit: number, better: (a: PfnRow, b: PfnRow) => number): PfnRow[] {
    return topN((visit) => this.forEach(visit), limit, better, (row) => ({ ...row }));
  }

  private apply(lo: number, hi: number, gets: number, puts: number, events: number, count: number, mapcount: number, tsNs: number): void {
    const chunk = this.chunkOf(lo, hi);
    const at = (lo & CHUNK_MASK) * ROW_BYTES;
    const before = chunk.getUint32(at + EVENTS, true);
    if (before === 0) this.admit(chunk);
    if (before === 0 || tsNs >= chunk.getFloat64(at + LAST_NS, true)) {
      chunk.setFloat64(at + LAST_NS, tsNs, true);
      chunk.setInt32(at + LAST_COUNT, count, true);
      if (!Number.isNaN(mapcount)) chunk.setInt32(at + LAST_MAPCOUNT, mapcount, true);
    }
    chunk.setUint32(at + EVENTS, Math.min(before + events, MAX_EVENTS), true);
    // Stored modulo 2^32 by setUint32.
    chunk.setUint32(at + GETS, chunk.getUint32(at + GETS, true) + gets, true);
    chunk.setUint32(at + PUTS, chunk.getUint32(at + PUTS, true) + puts, true);
  }

  /** Counts a new pfn in `chunk`; evicts other chunks when over budget. */
  private admit(chunk: DataView): void {
    this.tracked++;
    if (this.tracked > this.maxPfns || this.budgetedBytes() > this.maxBytes) this.evict(chunk);
  }

  /**
   * Frees the chunks whose newest event is oldest until an eighth of the
   * budget (pfns and bytes) is free; never `keep`, the chunk being written.
   */
  private evict(keep: DataView): void {
    const count = this.chunkViews.length;
    const newest = new Float64Array(count);
    for (let c = 0; c < count; c++) {
      const chunk = this.chunkViews[c];
      // One read a row: an untracked row's time is 0 (never written, or
      // cleared), which only makes a chunk of events before the capture's
      // base look as new as its start. Reading `events` too cost 10 % more
      // eviction time in the evicting pipeline benchmark (BENCHMARKS.md).
      let latest = -Infinity;
      for (let at = LAST_NS; at < CHUNK_BYTES; at += ROW_BYTES) {
        const ns = chunk.getFloat64(at, true);
        if (ns > latest) latest = ns;
      }
      newest[c] = chunk === keep ? Infinity : latest;
    }
    const order = Array.from({ length: count }, (_, c) => c).sort((a, b) => newest[a] - newest[b] || a - b);
    const pfnTarget = this.maxPfns === Infinity ? Infinity : Math.floor((this.maxPfns * 7) / 8);
    const byteTarget = (this.maxBytes * 7) / 8;
    const gone = new Uint8Array(count);
    for (const c of order) {
      if (this.tracked <= pfnTarget && this.budgetedBytes() <= byteTarget) break;
      if (this.chunkViews[c] === keep) break;
      this.dropChunk(c);
      gone[c] = 1;
    }
    const views: DataView[] = [];
    const numbers: number[] = [];
    for (let c = 0; c < count; c++) {
      if (gone[c]) continue;
      views.push(this.chunkViews[c]);
      numbers.push(this.chunkNumbers[c]);
    }
    this.chunkViews = views;
    this.chunkNumbers = numbers;
    // A bound below a chunk's 256 rows: the rest comes out of `keep` row by
    // row, oldest first. The row being admitted has no event yet, so it stays.
    while (this.tracked > this.maxPfns) {
      let oldest = -1;
      for (let at = 0; at < CHUNK_BYTES; at += ROW_BYTES) {
        if (keep.getUint32(at + EVENTS, true) !== 0 && (oldest < 0 || keep.getFloat64(at + LAST_NS, true) < keep.getFloat64(oldest + LAST_NS, true))) oldest = at;
      }
      this.evicted.pfns++;
      this.evicted.events += keep.getUint32(oldest + EVENTS, true);
      this.evicted.gets += keep.getUint32(oldest + GETS, true);
      this.evicted.puts += keep.getUint32(oldest + PUTS, true);
      new Uint8Array(keep.buffer, oldest, ROW_BYTES).fill(0);
      this.tracked--;
    }
  }

  private dropChunk(c: number): void {
    const chunk = this.chunkViews[c];
    let rows = 0;
    for (let at = 0; at < CHUNK_BYTES; at += ROW_BYTES) {
      const events = chunk.getUint32(at + EVENTS, true);
      if (events === 0) continue;
      rows++;
      this.evicted.events += events;
      this.evicted.gets += chunk.getUint32(at + GETS, true);
      this.evicted.puts += chunk.getUint32(at + PUTS, true);
    }
    this.evicted.pfns += rows;
    this.tracked -= rows;
    this.chunks--;
    const number = this.chunkNumbers[c];
    const key = Math.floor(number / CHUNKS_PER_REGION);
    const region = this.regionOf(key)!;
    region[number % CHUNKS_PER_REGION] = undefined;
    const left = this.regionChunks.get(key)! - 1;
    if (left > 0) {
      this.regionChunks.set(key, left);
      return;
    }
    this.regionChunks.delete(key);
    if (key < NEAR_REGIONS) this.nearRegions[key] = undefined;
    else this.farRegions.delete(key);
    this.regionCount--;
  }

  /** The chunk of the pfn hi:lo (uint32 words), allocated if new. */
  private chunkOf(lo: number, hi: number): DataView {
    // Near regions are indexed with int32 arithmetic: the same index computed
    // as a float (hi * 4096 + ...) was about 15 ns an event slower.
    const region =
      (hi < NEAR_HI ? this.nearRegions[(hi << (32 - REGION_SHIFT)) | (lo >>> REGION_SHIFT)] : this.farRegions.get(hi * REGIONS_PER_2_32 + (lo >>> REGION_SHIFT))) ??
      this.newRegion(lo, hi);
    const index = (lo >>> CHUNK_SHIFT) & (CHUNKS_PER_REGION - 1);
    return region[index] ?? this.newChunk(region, index, hi * REGIONS_PER_2_32 + (lo >>> REGION_SHIFT));
  }

  private regionOf(key: number): Region | undefined {
    return key < NEAR_REGIONS ? this.nearRegions[key] : this.farRegions.get(key);
  }

  private newRegion(lo: number, hi: number): Region {
    if (hi >= PFN_HI_LIMIT) throw new RangeError(`pfn ${hi * TWO_32 + lo} is not below 2^52`);
    const key = hi * REGIONS_PER_2_32 + (lo >>> REGION_SHIFT);
    const region = new Array<DataView | undefined>(CHUNKS_PER_REGION).fill(undefined);
    if (key < NEAR_REGIONS) {
      // Filled up to the key, never with holes: a sparse array would fall
      // back to a dictionary, and every lookup with it.
      while (this.nearRegions.length <= key) this.nearRegions.push(undefined);
      this.nearRegions[key] = region;
    } else {
      this.farRegions.set(key, region);
    }
    this.regionCount++;
    return region;
  }

  private newChunk(region: Region, index: number, key: number): DataView {
    this.chunks++;
    const chunk = (region[index] = new DataView(new ArrayBuffer(CHUNK_BYTES)));
    this.chunkViews.push(chunk);
    this.chunkNumbers.push(key * CHUNKS_PER_REGION + index);
    this.regionChunks.set(key, (this.regionChunks.get(key) ?? 0) + 1);
    return chunk;
  }
}

/** The high word of `pfn`, whose low word is `lo`; throws unless `pfn` is an integer in [0, 2^52). */
function highWord(pfn: number, lo: number): number {
  const hi = (pfn - lo) / TWO_32;
  if (!(Number.isInteger(hi) && hi >= 0 && hi < PFN_HI_LIMIT)) throw new RangeError(`pfn ${pfn} is not an integer in [0, 2^52)`);
  return hi;
}

function emptyRow(): PfnRow {
  return { pfn: 0, gets: 0, puts: 0, net: 0, events: 0, lastCount: 0, lastMapcount: 0, lastNs: 0 };
}

function readRow(chunk: DataView, at: number, pfn: number, row: PfnRow): PfnRow {
  row.pfn = pfn;
  row.gets = chunk.getUint32(at + GETS, true);
  row.puts = chunk.getUint32(at + PUTS, true);
  row.net = row.gets - row.puts;
  row.events = chunk.getUint32(at + EVENTS, true);
  row.lastCount = chunk.getInt32(at + LAST_COUNT, true);
  row.lastMapcount = chunk.getInt32(at + LAST_MAPCOUNT, true);
  row.lastNs = chunk.getFloat64(at + LAST_NS, true);
  return row;
}
