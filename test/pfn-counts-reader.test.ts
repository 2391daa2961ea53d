// PfnCountsReader turns copies of the kernel's per-pfn slots into deltas.
// The slots here are written by the test in struct pageref_pfn_stats layout
// (checked against the compiler by test/layout.test.ts); the kernel side of
// --aggregate is tested in the VM (test/vm/sampling.test.ts).

import test from 'ava';
import { PfnCountsReader } from '../src/live/pfn-counts-reader';
import { PFN_STATS_SIZE, PfnStatsField as F } from '../src/record/layout';

class FakeSlots {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  constructor(slots: number) {
    this.bytes = new Uint8Array(slots * PFN_STATS_SIZE);
    this.view = new DataView(this.bytes.buffer);
  }
  set(slot: number, stats: { tsNs: bigint; gets: number; puts: number; events: number; lastCount: number }): void {
    const at = slot * PFN_STATS_SIZE;
    this.view.setBigUint64(at + F.last_ts_ns.offset, stats.tsNs, true);
    this.view.setUint32(at + F.gets.offset, stats.gets >>> 0, true);
    this.view.setUint32(at + F.puts.offset, stats.puts >>> 0, true);
    this.view.setUint32(at + F.events.offset, stats.events >>> 0, true);
    this.view.setInt32(at + F.last_count.offset, stats.lastCount, true);
  }
  readPfnStats(into: Uint8Array): number {
    into.set(this.bytes);
    return this.bytes.length;
  }
}

test('rows are the pfns that changed, with what they added since the last read', (t) => {
  const slots = new FakeSlots(8);
  const reader = new PfnCountsReader(slots, 8, [], 5_000_000_000n);
  t.is(reader.read().pfn.length, 0, 'nothing happened yet');
  slots.set(3, { tsNs: 5_000_000_100n, gets: 2, puts: 1, events: 3, lastCount: 2 });
  let rows = reader.read();
  t.deepEqual([...rows.pfn], [3]);
  t.deepEqual([rows.gets[0], rows.puts[0], rows.events[0], rows.lastCount[0], rows.lastTsNs[0]], [2, 1, 3, 2, 100]);
  t.is(reader.read().pfn.length, 0, 'unchanged slots give no rows');
  slots.set(3, { tsNs: 6_000_000_000n, gets: 2, puts: 3, events: 5, lastCount: 0 });
  slots.set(7, { tsNs: 5_500_000_000n, gets: 1, puts: 0, events: 1, lastCount: 1 });
  rows = reader.read();
  t.deepEqual([...rows.pfn], [3, 7]);
  t.deepEqual([...rows.gets], [0, 1]);
  t.deepEqual([...rows.puts], [2, 0]);
  t.deepEqual([...rows.events], [2, 1]);
  t.deepEqual([...rows.lastTsNs], [1_000_000_000, 500_000_000]);
});

test('slots map to the pfns of the ranges in order, and u32 counters that wrap still give the right delta', (t) => {
  const slots = new FakeSlots(6);
  const reader = new PfnCountsReader(slots, 6, [{ start: 0x100, end: 0x102 }, { start: 0x5000, end: 0x5004 }], 0n);
  slots.set(0, { tsNs: 1n, gets: 0xffffffff, puts: 0, events: 0xfffffffe, lastCount: 1 });
  slots.set(5, { tsNs: 1n, gets: 1, puts: 0, events: 1, lastCount: 1 });
  t.deepEqual([...reader.read().pfn], [0x100, 0x5003]);
  slots.set(0, { tsNs: 2n, gets: 1, puts: 0, events: 3, lastCount: 2 });
  const rows = reader.read();
  t.deepEqual([...rows.pfn], [0x100]);
  t.is(rows.gets[0], 2, 'from 0xffffffff to 1 is two gets');
  t.is(rows.events[0], 5);
});
