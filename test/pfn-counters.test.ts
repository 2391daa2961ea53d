import test from 'ava';
import { PFN_LIMIT, PfnCounters, PfnRow } from '../src/holds/pfn-counters';
import { referenceDelta } from '../src/holds/reference-delta';
import { EVENT_COUNT, EventType, isPageRefEvent } from '../src/record/event-types';
import { PointerHasher } from '../src/record/pointer-hash';
import { aggregateRecords } from '../src/record/record-aggregator';
import { RecordDecoder } from '../src/record/record-decoder';
import { StringTable } from '../src/record/string-table';
import { rawRecord } from './helpers/records';

// A small deterministic generator, so failures reproduce.
function lcg(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/** What a page's numbers must be, computed the plain way: one object per pfn in a Map. */
class ExpectedCounts {
  readonly rows = new Map<number, PfnRow>();

  add(pfn: number, delta: number, count: number, mapcount: number, tsNs: number): void {
    let row = this.rows.get(pfn);
    if (!row) this.rows.set(pfn, (row = { pfn, gets: 0, puts: 0, net: 0, events: 0, lastCount: 0, lastMapcount: 0, lastNs: -Infinity }));
    if (delta > 0) row.gets += delta;
    else row.puts -= delta;
    row.net = row.gets - row.puts;
    row.events++;
    if (tsNs >= row.lastNs) {
      row.lastNs = tsNs;
      row.lastCount = count;
      row.lastMapcount = mapcount;
    }
  }
}

function rowsOf(counters: PfnCounters): PfnRow[] {
  const rows: PfnRow[] = [];
  counters.forEach((row) => rows.push({ ...row }));
  return rows;
}

function sortedRows(expected: ExpectedCounts): PfnRow[] {
  return [...expected.rows.values()].sort((a, b) => a.pfn - b.pfn);
}

const BASE = 7_000_000_000_000n;

/** Random records of every event type: pfns dense and far apart (up to 2^52 - 1), times out of order and equal, counts below zero. */
function randomRecords(random: () => number, n: number): Buffer {
  const records: Buffer[] = [];
  const far = [2n ** 52n - 1n, 2n ** 40n + 3n, 2n ** 34n, 2n ** 34n - 1n, 2n ** 32n + 255n];
  for (let i = 0; i < n; i++) {
    const r = random();
    const pfn = r < 0.6 ? 0x100000n + BigInt(Math.floor(random() * 3000)) : r < 0.8 ? far[Math.floor(random() * far.length)] : BigInt(Math.floor(random() * 2 ** 52));
    records.push(
      rawRecord({
        type: Math.floor(random() * EVENT_COUNT),
        tsNs: BASE + BigInt(Math.floor(random() * 2 ** 40)) - 2n ** 39n,
        pfn,
        word1: 0x40068n,
        word2: 0xffff888012345678n,
        pid: 100,
        tgid: 100,
        count: Math.floor(random() * 8) - 2,
        mapcount: Math.floor(random() * 5) - 1,
        val: random() < 0.5 ? -1 - Math.floor(random() * 3) : 1 + Math.floor(random() * 512),
        ret: random() < 0.5 ? 0 : 1,
        stackId: 3,
        comm: 'task',
      }),
    );
    // Every tenth record a twin of the one before on the same pfn and time: the later must win.
    if (i % 10 === 9) records.push(Buffer.from(records[records.length - 1]).fill(7, 40, 44));
  }
  return Buffer.concat(records);
}

test('the fused path gives the numbers of decoding and adding every event, to the bit', (t) => {
  const random = lcg(1);
  const fused = new PfnCounters();
  const added = new PfnCounters();
  const expected = new ExpectedCounts();
  const decoder = new RecordDecoder(new StringTable(), new PointerHasher(Buffer.alloc(16, 1)), BASE);
  let others = 0;
  let expectedOthers = 0;
  for (let batch = 0; batch < 20; batch++) {
    const bytes = randomRecords(random, 1000);
    // A buffer that starts past the beginning of its ArrayBuffer, as a drained subarray would.
    const drained = new Uint8Array(bytes.length + 64);
    drained.set(bytes, 64);
    others += aggregateRecords(drained.subarray(64), bytes.length, fused, BASE);
    const events = decoder.decode(bytes, bytes.length);
    for (let i = 0; i < events.length; i++) {
      if (!isPageRefEvent(events.type[i])) {
        expectedOthers++;
        continue;
      }
      const delta = referenceDelta(events.type[i], events.val[i], events.ret[i]);
      added.add(events.pfn[i], delta, events.count[i], events.mapcount[i], events.tsNs[i]);
      expected.add(events.pfn[i], delta, events.count[i], events.mapcount[i], events.tsNs[i]);
    }
  }
  t.is(others, expectedOthers);
  t.true(expected.rows.size > 3000);
  t.is(fused.size, expected.rows.size);
  t.is(added.size, expected.rows.size);
  t.deepEqual(rowsOf(fused), sortedRows(expected));
  t.deepEqual(rowsOf(added), sortedRows(expected));
});

test('the fused path reads only whole records and rejects a pfn beyond 2^52 like add does', (t) => {
  const counters = new PfnCounters();
  const record = rawRecord({ type: EventType.PageRefMod, pfn: 2n ** 52n, val: 1 });
  t.throws(() => aggregateRecords(record, 95, counters, 0n), { instanceOf: RangeError });
  t.throws(() => aggregateRecords(record, record.length, counters, 0n), { instanceOf: RangeError, message: /2\^52/ });
  t.throws(() => counters.add(2 ** 52, 1, 1, 0, 0), { instanceOf: RangeError });
  t.is(counters.size, 0);
});

test('sparse pfns far apart are tracked each on its own, listed in pfn order', (t) => {
  const counters = new PfnCounters();
  const pfns = [PFN_LIMIT - 1, 0, 2 ** 34, 2 ** 20, 2 ** 34 - 1, 2 ** 40 + 7, 5, PFN_LIMIT - 256, 2 ** 32 + 1];
  pfns.forEach((pfn, i) => counters.add(pfn, i + 1, 2, 1, 1000 + i));
  t.is(counters.size, pfns.length);
  t.deepEqual(
    rowsOf(counters).map((row) => row.pfn),
    [...pfns].sort((a, b) => a - b),
  );
  for (const [i, pfn] of pfns.entries()) t.like(counters.get(pfn), { pfn, gets: i + 1, puts: 0, net: i + 1, events: 1, lastCount: 2, lastMapcount: 1, lastNs: 1000 + i });
  // Neighbours in the same chunk were never touched: not tracked.
  for (const pfn of [1, 4, 6, 2 ** 34 + 1, PFN_LIMIT - 2, PFN_LIMIT - 255]) t.is(counters.get(pfn), undefined, `pfn ${pfn}`);
  // Seven chunks (0 and 5 share one, and so do the last two below 2^52), in
  // seven regions: a few KiB of chunk and 32 KiB of directory each, not more.
  t.true(counters.bytes >= 7 * 256 * 28);
  t.true(counters.bytes < 7 * 48 * 1024 + 16384 * 8, `${counters.bytes} bytes`);
});

test('pfns that are no integer in [0, 2^52) are refused, and not found', (t) => {
  const counters = new PfnCounters();
  for (const pfn of [-1, 1.5, NaN, Infinity, 2 ** 52, 2 ** 53, 2 ** 32 + 0.5]) {
    t.throws(() => counters.add(pfn, 1, 1, 0, 0), { instanceOf: RangeError }, `add ${pfn}`);
    t.throws(() => counters.merge(pfn, 1, 0, 1, 1, 0, 0), { instanceOf: RangeError }, `merge ${pfn}`);
    t.is(counters.get(pfn), undefined);
  }
  t.is(counters.size, 0);
});

test('merge adds sums and takes the last values only when they are as new or newer', (t) => {
  const counters = new PfnCounters();
  counters.merge(0x1234, 5, 2, 9, 4, 1, 1000);
  t.deepEqual(counters.get(0x1234), { pfn: 0x1234, gets: 5, puts: 2, net: 3, events: 9, lastCount: 4, lastMapcount: 1, lastNs: 1000 });
  counters.merge(0x1234, 1, 3, 2, 7, 0, 900); // older: sums add, last values stay
  t.deepEqual(counters.get(0x1234), { pfn: 0x1234, gets: 6, puts: 5, net: 1, events: 11, lastCount: 4, lastMapcount: 1, lastNs: 1000 });
  counters.merge(0x1234, 0, 1, 1, 3, 2, 1000); // as new: the later row wins
  t.like(counters.get(0x1234), { puts: 6, events: 12, lastCount: 3, lastMapcount: 2, lastNs: 1000 });
  counters.add(0x1234, 2, 5, 2, 1500);
  t.like(counters.get(0x1234), { gets: 8, puts: 6, net: 2, events: 13, lastCount: 5, lastNs: 1500 });
  counters.merge(0x1234, 1, 0, 1, 6, NaN, 2000); // no mapcount in the row: the page keeps its own
  t.like(counters.get(0x1234), { gets: 9, events: 14, lastCount: 6, lastMapcount: 2, lastNs: 2000 });
  t.throws(() => counters.merge(0x1235, 1, 0, 0, 1, 0, 0), { instanceOf: RangeError });
  t.is(counters.size, 1);
});

test('merging the sums of events gives what adding the events gives', (t) => {
  const random = lcg(3);
  const added = new PfnCounters();
  const merged = new PfnCounters();
  for (let interval = 0; interval < 10; interval++) {
    const sums = new ExpectedCounts();
    for (let i = 0; i < 2000; i++) {
      const pfn = Math.floor(random() * 700) * 37;
      const delta = Math.floor(random() * 7) - 3;
      const count = Math.floor(random() * 9);
      const ts = interval * 1e6 + Math.floor(random() * 1e6);
      added.add(pfn, delta, count, 1, ts);
      sums.add(pfn, delta, count, 1, ts);
    }
    for (const row of sums.rows.values()) merged.merge(row.pfn, row.gets, row.puts, row.events, row.lastCount, row.lastMapcount, row.lastNs);
  }
  t.deepEqual(rowsOf(merged), rowsOf(added));
});

test('a busy page never reads as untracked: events stop at 2^32 - 1', (t) => {
  const counters = new PfnCounters();
  counters.merge(42, 0, 0, 2 ** 32 - 2, 1, 0, 0);
  counters.add(42, 1, 1, 0, 1);
  counters.add(42, 1, 1, 0, 2);
  t.like(counters.get(42), { events: 2 ** 32 - 1, gets: 2 });
  t.is(counters.size, 1);
});

test('top returns the same rows as a full sort, as copies', (t) => {
  const random = lcg(7);
  const counters = new PfnCounters();
  for (let i = 0; i < 50_000; i++) counters.add(0x40000 + Math.floor(random() * 3000) * 3, random() < 0.55 ? 1 : -1, 1, 0, i);
  const order = (a: PfnRow, b: PfnRow) => b.net - a.net || b.events - a.events || a.pfn - b.pfn;
  const all = rowsOf(counters).sort(order);
  t.is(all.length, counters.size);
  for (const limit of [0, 1, 5, 50, 2999, 5000]) t.deepEqual(counters.top(limit, order), all.slice(0, limit), `limit ${limit}`);
  const [first, second] = counters.top(2, order);
  t.not(first, second);
});

test('size counts distinct pfns; bytes stay under 32 per pfn when pages are dense', (t) => {
  const counters = new PfnCounters();
  t.is(counters.size, 0);
  t.is(counters.bytes, 0);
  for (let pfn = 0x100000; pfn < 0x100000 + 100_000; pfn++) counters.add(pfn, 1, 2, 0, pfn);
  for (let pfn = 0x100000; pfn < 0x100000 + 100_000; pfn += 2) counters.add(pfn, -1, 1, 0, pfn + 1);
  t.is(counters.size, 100_000);
  t.true(counters.bytes / counters.size <= 32, `${counters.bytes / counters.size} bytes per pfn`);
  t.like(counters.get(0x100000), { gets: 1, puts: 1, net: 0, events: 2, lastCount: 1 });
  t.like(counters.get(0x100001), { gets: 1, puts: 0, net: 1, events: 1, lastCount: 2 });
});

/**
 * Runs `n` random events through a table bounded to `maxPfns` and through
 * ExpectedCounts, dropping from the latter whatever the table evicted (a
 * pfn seen again afterwards starts over in both), and tallying it.
 */
function boundedRun(t: import('ava').ExecutionContext, maxPfns: number, n: number, pfnOf: (random: () => number) => number, seed: number) {
  const random = lcg(seed);
  const counters = new PfnCounters(maxPfns);
  const expected = new ExpectedCounts();
  const tally = { pfns: 0, events: 0, gets: 0, puts: 0 };
  let largest = 0;
  let evictions = 0;
  for (let i = 0; i < n; i++) {
    const pfn = pfnOf(random);
    const delta = Math.floor(random() * 5) - 2;
    const ts = i * 10 + Math.floor(random() * 40);
    counters.add(pfn, delta, i & 0xffff, i & 7, ts);
    expected.add(pfn, delta, i & 0xffff, i & 7, ts);
    largest = Math.max(largest, counters.size);
    if (counters.evictions.pfns !== tally.pfns) {
      evictions++;
      for (const [key, row] of expected.rows) {
        if (counters.get(key) !== undefined) continue;
        expected.rows.delete(key);
        tally.pfns++;
        tally.events += row.events;
        tally.gets += row.gets;
        tally.puts += row.puts;
      }
    }
  }
  t.true(largest <= maxPfns, `size reached ${largest}, over the bound ${maxPfns}`);
  t.true(evictions > 0, 'the stream never made the table evict');
  t.deepEqual(rowsOf(counters), sortedRows(expected));
  t.deepEqual(counters.evictions, tally);
  t.is(counters.size, expected.rows.size);
  return counters;
}

test('a bounded table stays within --max-pfns, keeps exact counts of what it keeps, and counts what it evicts exactly', (t) => {
  // Dense pfns, as on a real host, with a hot set that must survive.
  boundedRun(t, 3000, 200_000, (random) => (random() < 0.5 ? 0x100000 + Math.floor(random() * 64) : 0x200000 + Math.floor(random() * 40_000)), 7);
});

test('a bound below one chunk of rows still holds, row by row', (t) => {
  boundedRun(t, 100, 20_000, (random) => Math.floor(random() * 200), 11);
});

test('pfns far apart evict by memory: a bounded table stays within its byte budget', (t) => {
  const maxPfns = 10_000;
  // Each pfn alone in its chunk and its region: 7.4 KiB + 32 KiB each unbounded.
  const counters = boundedRun(t, maxPfns, 30_000, (random) => Math.floor(random() * 2 ** 40) * 4096 + 17, 5);
  // The budget: a chunk for every 64 pfns of the bound (chunks a quarter full), plus the chunk and region being written.
  const chunk = 256 * 28 + 384;
  const chunkAndRegion = chunk + 4096 * 8 + 64;
  const budget = Math.ceil(maxPfns / 64) * chunk;
  t.true(counters.bytes <= budget + chunkAndRegion + 16_384 * 8, `${counters.bytes} bytes, over ${budget}`);
  t.true(counters.size <= Math.floor(budget / chunkAndRegion) + 1);
  t.true(counters.size >= Math.floor(((budget / chunkAndRegion) * 7) / 8) - 1, `only ${counters.size} pfns kept`);
});

test('merged rows are bounded and evicted like added ones, the oldest chunks first', (t) => {
  const counters = new PfnCounters(512);
  // Chunk A (pfns 0-255) last touched early, chunk B (256-511) late, then a new chunk C.
  for (let pfn = 0; pfn < 256; pfn++) counters.merge(pfn, 2, 1, 3, 1, 0, 100);
  for (let pfn = 256; pfn < 512; pfn++) counters.merge(pfn, 2, 1, 3, 1, 0, 200);
  counters.merge(5, 1, 0, 1, 1, 0, 50);
  counters.merge(1000, 1, 0, 1, 1, 0, 300);
  t.is(counters.size, 257);
  t.is(counters.get(5), undefined);
  t.is(counters.get(300)?.events, 3);
  t.deepEqual(counters.evictions, { pfns: 256, events: 256 * 3 + 1, gets: 256 * 2 + 1, puts: 256 });
});

test('an unbounded table never evicts, and a bound below 1 is refused', (t) => {
  const counters = new PfnCounters();
  for (let pfn = 0; pfn < 100_000; pfn += 7) counters.add(pfn * 300, 1, 1, 0, pfn);
  t.is(counters.evictions.pfns, 0);
  t.is(counters.size, Math.ceil(100_000 / 7));
  t.throws(() => new PfnCounters(0), { instanceOf: RangeError });
});
