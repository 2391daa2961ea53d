// --aggregate: turns copies of the kernel's per-pfn slots (struct
// pageref_pfn_stats, bpf/pageref.h: totals since the start) into PfnCounts
// rows: what each pfn that changed added since the previous read. Deltas, so
// that consumers only ever add, as they do for per-event records.

import type { PfnCounts } from '../capture/schema';
import type { NativeTracer, PfnRange } from '../native/tracer';

/** struct pageref_pfn_stats in 32-bit words: last_ts_ns (lo, hi), gets, puts, events, last_count. */
const WORDS = 6;
const TWO_32 = 0x100000000;

export class PfnCountsReader {
  private current: Uint32Array;
  private previous: Uint32Array;

  /**
   * @param ranges the traced ranges, whose pfns take the slots in order; none: slot = pfn
   * @param monotonicBaseNs the capture's base, that times become offsets from
   */
  constructor(
    private readonly tracer: Pick<NativeTracer, 'readPfnStats'>,
    private readonly slots: number,
    private readonly ranges: PfnRange[],
    private readonly monotonicBaseNs: bigint,
  ) {
    this.current = new Uint32Array(slots * WORDS);
    this.previous = new Uint32Array(slots * WORDS);
  }

  /** Rows of the pfns whose event count moved since the last call; u32 wraparound is undone by >>> 0. */
  read(): PfnCounts {
    const into = new Uint8Array(this.current.buffer);
    const bytes = this.tracer.readPfnStats(into);
    if (bytes !== into.length) throw new Error(`per-pfn totals: read ${bytes} bytes, expected ${into.length}`);
    const now = this.current;
    const before = this.previous;
    const changed: number[] = [];
    for (let slot = 0, at = 4; slot < this.slots; slot++, at += WORDS) {
      if (now[at] !== before[at]) changed.push(slot);
    }
    const rows = changed.length;
    const totals = {
      pfn: new Float64Array(rows),
      gets: new Float64Array(rows),
      puts: new Float64Array(rows),
      events: new Float64Array(rows),
      lastCount: new Int32Array(rows),
      lastTsNs: new Float64Array(rows),
    };
    const baseHi = Number(this.monotonicBaseNs >> 32n);
    const baseLo = Number(this.monotonicBaseNs & 0xffffffffn);
    for (let row = 0; row < rows; row++) {
      const slot = changed[row];
      const at = slot * WORDS;
      totals.pfn[row] = this.pfnOf(slot);
      totals.lastTsNs[row] = (now[at + 1] - baseHi) * TWO_32 + (now[at] - baseLo);
      totals.gets[row] = (now[at + 2] - before[at + 2]) >>> 0;
      totals.puts[row] = (now[at + 3] - before[at + 3]) >>> 0;
      totals.events[row] = (now[at + 4] - before[at + 4]) >>> 0;
      totals.lastCount[row] = now[at + 5] | 0;
    }
    this.current = before;
    this.previous = now;
    return totals;
  }

  private pfnOf(slot: number): number {
    let first = 0;
    for (const range of this.ranges) {
      const size = range.end - range.start;
      if (slot < first + size) return range.start + (slot - first);
      first += size;
    }
    return slot;
  }
}
