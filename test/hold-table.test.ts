import test from 'ava';
import { Hold, HoldTable, MAX_HOLDS_PER_PFN, RefEvent } from '../src/holds/hold-table';
import { EventType } from '../src/record/event-types';
import { PfnIndex } from '../src/holds/pfn-index';

let clock = 0;
function ev(type: number, pfn: number, val: number, fields: Partial<RefEvent> = {}): RefEvent {
  clock += 1000;
  return { type, pfn, tsNs: clock, val, ret: 0, count: 0, mapcount: 0, flags: 0, mapping: 0, stackId: -1, pid: 1, tgid: 1, comm: 0, ...fields };
}
const get = (pfn: number, tgid: number, stackId: number, val = 1) => ev(EventType.PageRefMod, pfn, val, { tgid, pid: tgid, stackId });
const put = (pfn: number, tgid: number, stackId: number, val = -1) => ev(EventType.PageRefModAndTest, pfn, val, { tgid, pid: tgid, stackId });

test('a put from the process that holds a reference cancels its newest one', (t) => {
  const table = new HoldTable();
  table.apply(get(10, 100, 1));
  table.apply(get(10, 200, 2));
  table.apply(get(10, 100, 3));
  const cancelled: Hold[] = [];
  t.is(table.apply(put(10, 100, 9), cancelled), -1);
  t.deepEqual(cancelled.map((h) => h.stackId), [3]);
  t.deepEqual(table.holds(10).map((h) => h.stackId), [1, 2]);
});

test('a put from a process that holds nothing cancels the oldest reference', (t) => {
  const table = new HoldTable();
  table.apply(get(10, 100, 1));
  table.apply(get(10, 200, 2));
  table.apply(put(10, 300, 9));
  t.deepEqual(table.holds(10).map((h) => h.stackId), [2]);
});

test('holders are certain until a put has had to choose among them', (t) => {
  const table = new HoldTable();
  table.apply(get(10, 100, 1));
  table.apply(put(10, 100, 9));
  table.apply(get(10, 100, 2));
  t.true(table.holds(10)[0].certain, 'one get, one put: no choice was made');
  table.apply(get(10, 200, 3));
  table.apply(get(10, 300, 4));
  table.apply(put(10, 400, 9));
  t.deepEqual(table.holds(10).map((h) => [h.stackId, h.certain]), [[3, false], [4, false]]);
  table.apply(get(10, 500, 5));
  t.true(table.holds(10)[2].certain, 'taken after the last choice');
});

test('a refcount set or a successful freeze starts a new life; a failed freeze does not', (t) => {
  const table = new HoldTable();
  table.apply(get(10, 100, 1));
  table.apply(ev(EventType.PageRefFreeze, 10, 1, { ret: 0 }));
  t.is(table.holds(10).length, 1);
  table.apply(ev(EventType.PageRefFreeze, 10, 1, { ret: 1 }));
  t.is(table.holds(10).length, 0);
  table.apply(get(10, 100, 2));
  table.apply(ev(EventType.PageRefSet, 10, 1, { count: 1, stackId: 7, tgid: 300 }));
  t.deepEqual(table.holds(10).map((h) => [h.stackId, h.tgid, h.refs]), [[7, 300, 1]], 'the allocation holds the reference it set');
  t.is(table.page(10)?.lifeStartNs, clock);
  table.apply(put(10, 100, 9));
  t.is(table.holds(10).length, 0);
  t.is(table.page(10)?.untrackedPuts, 0);
  table.apply(put(10, 100, 9));
  t.is(table.page(10)?.untrackedPuts, 1, 'a put with nothing outstanding drops an untracked reference');
  t.is(table.page(10)?.gets, 2, 'totals span lives and count gets only');
});

test('multi-reference gets and puts (folios, page_ref_add) are split across holders', (t) => {
  const table = new HoldTable();
  table.apply(get(10, 100, 1, 3));
  table.apply(get(10, 200, 2, 2));
  table.apply(put(10, 300, 9, -4));
  t.deepEqual(table.holds(10).map((h) => [h.stackId, h.refs]), [[2, 1]]);
});

test('mod_unless counts only when it took the reference', (t) => {
  const table = new HoldTable();
  table.apply(ev(EventType.PageRefModUnless, 10, 1, { ret: 0 }));
  t.is(table.holds(10).length, 0);
  table.apply(ev(EventType.PageRefModUnless, 10, 1, { ret: 1 }));
  t.is(table.holds(10).length, 1);
});

test('outstanding gets per page are bounded', (t) => {
  const table = new HoldTable();
  for (let i = 0; i < 100; i++) table.apply(get(10, 100 + i, i));
  const holds = table.holds(10);
  t.is(holds.length, MAX_HOLDS_PER_PFN);
  t.is(holds[0].stackId, 100 - MAX_HOLDS_PER_PFN, 'the oldest are folded away');
  t.is(table.page(10)?.gets, 100);
});

// Property: in any sequence of gets and puts within one life, the references
// held by the table's holders plus the untracked puts equal gets minus puts,
// and no holder is ever negative.
test('property: outstanding references always balance', (t) => {
  let state = 12345;
  const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let trial = 0; trial < 300; trial++) {
    const table = new HoldTable(16);
    let gets = 0;
    let puts = 0;
    const pfn = trial;
    for (let step = 0; step < 12; step++) {
      const tgid = 1 + Math.floor(random() * 3);
      const refs = 1 + Math.floor(random() * 3);
      if (random() < 0.55) {
        table.apply(get(pfn, tgid, step, refs));
        gets += refs;
      } else {
        table.apply(put(pfn, tgid, step, -refs));
        puts += refs;
      }
      const held = table.holds(pfn).reduce((sum, h) => sum + h.refs, 0);
      const untracked = table.page(pfn)!.untrackedPuts;
      if (held - untracked !== gets - puts || table.holds(pfn).some((h) => h.refs <= 0)) {
        t.fail(`trial ${trial} step ${step}: held ${held} untracked ${untracked} gets ${gets} puts ${puts}`);
        return;
      }
    }
  }
  t.pass();
});

test('many pages grow the table and keep every page apart', (t) => {
  const table = new HoldTable(16);
  for (let pfn = 0; pfn < 50_000; pfn++) table.apply(get(pfn * 7, 1, pfn));
  t.is(table.size, 50_000);
  t.deepEqual(table.holds(7 * 4321).map((h) => h.stackId), [4321]);
  // Columns double as they grow, so between 1x and 2x of the ~150 bytes a page needs.
  t.true(table.bytes / table.size < 300, `${table.bytes / table.size} bytes per page`);
});

test('a put whose stack says what it releases cancels a get of that kind first', (t) => {
  // stack 1: a pin; stack 2: a mapping's reference; stack 8 unpins, stack 9 unmaps.
  const kinds: Record<number, string> = { 1: 'pin', 2: 'expected' };
  const releases: Record<number, string> = { 8: 'pin', 9: 'expected' };
  const table = new HoldTable(16, { takes: (id) => kinds[id] ?? '', releases: (id) => releases[id] ?? '' });
  table.apply(get(10, 100, 2));
  table.apply(get(10, 100, 1));
  table.apply(put(10, 100, 9));
  t.deepEqual(table.holds(10).map((h) => h.stackId), [1], 'unmapping dropped the mapping reference, not the newer pin');
  table.apply(get(10, 100, 2));
  table.apply(put(10, 200, 8));
  t.deepEqual(table.holds(10).map((h) => h.stackId), [2], 'another process unpinning dropped the pin, not the oldest');
  table.apply(put(10, 100, 5));
  t.is(table.holds(10).length, 0, 'a put that says nothing falls back to the same-process rule');
});

test('PfnIndex removal keeps every other pfn findable, over long random streams of adds and removes', (t) => {
  const index = new PfnIndex(16);
  const expected = new Map<number, number>();
  let state = 12345;
  const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (let i = 0; i < 200_000; i++) {
    // Few distinct keys and clustered hashes: long probe runs that wrap around the table.
    const pfn = Math.floor(random() * 3000) * 1024;
    if (random() < 0.45 && expected.has(pfn)) {
      t.true(index.remove(pfn));
      expected.delete(pfn);
    } else {
      const row = index.rowOf(pfn);
      if (expected.has(pfn)) t.is(row, expected.get(pfn)!);
      else expected.set(pfn, row);
    }
  }
  t.is(index.size, expected.size);
  for (const [pfn, row] of expected) {
    t.is(index.find(pfn), row);
    t.is(index.pfnOf(row), pfn);
  }
  // Rows of removed pfns are reused: they stay below the most pfns held at once.
  t.true(index.rowLimit <= 3000);
  t.false(index.remove(1));
});

test('a bounded hold table stays within --max-pfns and evicts pages with nothing outstanding while there are any', (t) => {
  const maxPfns = 1000;
  const table = new HoldTable(16, undefined, maxPfns);
  const reference = new HoldTable();
  let state = 99;
  const random = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const held = new Set<number>();
  for (let i = 0; i < 100_000; i++) {
    // 300 pages keep one reference each; many more take one and drop it again, leaving nothing outstanding.
    const churn = Math.floor(random() * 50_000);
    const events = i % 10 === 0 ? [get(1_000_000 + Math.floor(random() * 300), 7, 1)] : [get(churn, 8, 2), put(churn, 8, 3)];
    if (i % 10 === 0) {
      if (held.has(events[0].pfn)) continue;
      held.add(events[0].pfn);
    }
    for (const e of events) {
      const before = table.evictions.pfns;
      table.apply(e);
      reference.apply(e);
      t.true(table.size <= maxPfns);
      // With fewer held pages than the bound, none of them may go.
      if (table.evictions.pfns !== before) for (const pfn of held) if (table.page(pfn) === undefined) t.fail(`held page ${pfn} was evicted`);
    }
  }
  t.true(table.evictions.pfns > 0);
  t.is(table.evictions.outstandingRefs, 0);
  for (const pfn of held) t.deepEqual(table.holds(pfn), reference.holds(pfn));
  let outstanding = 0;
  table.forEachHold(() => outstanding++);
  t.true(outstanding >= held.size);
});

test('hold-table eviction counts exactly what it forgets, and falls back to held pages, the least recently touched first', (t) => {
  const table = new HoldTable(16, undefined, 8);
  // Eight pages, each with two references outstanding, touched in order.
  for (let pfn = 1; pfn <= 8; pfn++) {
    table.apply(get(pfn, 1, 1));
    table.apply(get(pfn, 1, 1));
  }
  table.apply(get(1, 1, 1)); // page 1 is now the most recently touched
  table.apply(get(9, 1, 1)); // over the bound: 9 - 7 = 2 pages go, 2 and 3
  t.is(table.size, 7);
  t.deepEqual(table.evictions, { pfns: 2, events: 4, outstandingRefs: 4 });
  t.is(table.page(2), undefined);
  t.is(table.page(3), undefined);
  t.is(table.holds(1).length, 3);
  // An evicted page seen again starts over.
  table.apply(put(2, 1, 1));
  t.is(table.page(2)?.untrackedPuts, 1);
  t.is(table.page(2)?.events, 1);
});
