import test from 'ava';
import { Hold, HoldTable, MAX_HOLDS_PER_PFN, RefEvent } from '../src/holds/hold-table';
import { EventType } from '../src/record/event-types';

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
