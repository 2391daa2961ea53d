// The stack groups the hold table keeps per event against a regrouping of
// every outstanding hold (forEachHold, as the holders view did each frame),
// on random streams of gets, puts, sets, freezes and folds; and through
// pageref top's snapshots, the kept groups against the filtered pass.

import test from 'ava';
import { HoldTable, MAX_HOLDS_PER_PFN, RefEvent } from '../src/holds/hold-table';
import { keepSmallest, stackGroupOf, StackGroups } from '../src/holds/stack-groups';
import { allocateBatch } from '../src/record/event-batch';
import { EventType } from '../src/record/event-types';
import { StringTable } from '../src/record/string-table';
import { NO_FILTER, parseFilter } from '../src/top/top-filter';
import { HolderRow, SnapshotQuery, takeSnapshot } from '../src/top/top-snapshot';
import { TopState } from '../src/top/top-state';
import { testHeader } from './helpers/capture';

interface Group {
  stackId: number;
  pages: number;
  refs: number;
  processes: number;
  comms: number[];
  oldestNs: number;
  examplePfn: number;
}

/** A small deterministic PRNG (mulberry32), so that a failure repeats. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random page_ref events on few pages, stacks, processes and comms, so that they collide; times strictly increase. */
function randomEvents(seed: number, count: number): RefEvent[] {
  const rnd = random(seed);
  const pick = (n: number) => Math.floor(rnd() * n);
  const events: RefEvent[] = [];
  let ts = 0;
  for (let i = 0; i < count; i++) {
    ts += 1 + pick(1000);
    const r = rnd();
    const tgid = 100 + pick(6);
    const base = { pfn: 0x1000 + pick(40), tsNs: ts, ret: 0, count: 1, mapcount: 0, flags: 0, mapping: 0, stackId: pick(12) - 1, pid: tgid, tgid, comm: pick(7) };
    if (r < 0.5) events.push({ ...base, type: EventType.PageRefMod, val: 1 + pick(3) });
    else if (r < 0.6) events.push({ ...base, type: EventType.PageRefModUnless, val: 1, ret: pick(2) });
    else if (r < 0.9) events.push({ ...base, type: EventType.PageRefModAndTest, val: -(1 + pick(2)) });
    else if (r < 0.95) events.push({ ...base, type: EventType.PageRefSet, val: pick(3) });
    else events.push({ ...base, type: EventType.PageRefFreeze, val: 1, ret: pick(2) });
  }
  return events;
}

/** Every outstanding hold grouped by stack in one pass, with Maps and Sets: the reference. */
function regroup(table: HoldTable): Group[] {
  const groups = new Map<number, Group & { pfns: Set<number>; tgids: Set<number> }>();
  table.forEachHold((pfn, stackId, tgid, comm, refs, takenNs) => {
    const key = stackGroupOf(stackId);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { stackId: key - 1, pages: 0, refs: 0, processes: 0, comms: [], oldestNs: Infinity, examplePfn: -1, pfns: new Set(), tgids: new Set() }));
    g.pfns.add(pfn);
    g.tgids.add(tgid);
    g.refs += refs;
    if (!g.comms.includes(comm)) g.comms.push(comm);
    if (takenNs < g.oldestNs) {
      g.oldestNs = takenNs;
      g.examplePfn = pfn;
    }
  });
  return [...groups.values()]
    .map(({ pfns, tgids, comms, ...g }) => ({ ...g, pages: pfns.size, processes: tgids.size, comms: comms.sort((a, b) => a - b).slice(0, 4) }))
    .sort((a, b) => a.stackId - b.stackId);
}

function kept(groups: StackGroups): Group[] {
  const out: Group[] = [];
  groups.forEachGroup((g) => {
    out.push({ stackId: groups.stackId(g), pages: groups.pages(g), refs: groups.refs(g), processes: groups.processes(g), comms: groups.comms(g, 4), oldestNs: groups.oldestNs(g), examplePfn: groups.examplePfn(g) });
  });
  return out;
}

test('groups kept per event equal a regrouping of every hold, after every event of random streams', (t) => {
  let checked = 0;
  for (let seed = 1; seed <= 30; seed++) {
    const table = new HoldTable(16);
    const groups = table.stackGroups();
    const events = randomEvents(seed, 400);
    for (const [i, e] of events.entries()) {
      table.apply(e);
      const expected = regroup(table);
      const actual = kept(groups);
      // One assertion per stream at most: the first event after which they differ.
      if (canonical(actual) !== canonical(expected)) {
        t.deepEqual(actual, expected, `seed ${seed}, after event ${i}: ${JSON.stringify(e)}`);
        return;
      }
      checked++;
    }
  }
  t.is(checked, 30 * 400);
});

/** Groups as one string, fields in one order, to compare after every event cheaply. */
function canonical(groups: Group[]): string {
  return groups.map((g) => [g.stackId, g.pages, g.refs, g.processes, g.comms.join('/'), g.oldestNs, g.examplePfn].join(',')).join(';');
}

test('groups asked for mid-stream start from the holds there are and then keep up', (t) => {
  for (let seed = 100; seed < 110; seed++) {
    const table = new HoldTable(16);
    const events = randomEvents(seed, 600);
    events.slice(0, 300).forEach((e) => table.apply(e));
    const groups = table.stackGroups();
    t.deepEqual(kept(groups), regroup(table), `seed ${seed}, built`);
    events.slice(300).forEach((e) => table.apply(e));
    t.deepEqual(kept(groups), regroup(table), `seed ${seed}, kept`);
    t.is(table.stackGroups(), groups, 'asked again, the same groups');
  }
});

test('a page with more than MAX_HOLDS_PER_PFN gets folds its oldest away from its group too', (t) => {
  const table = new HoldTable(16);
  const groups = table.stackGroups();
  for (let i = 0; i <= MAX_HOLDS_PER_PFN; i++) {
    table.apply({ type: EventType.PageRefMod, pfn: 7, tsNs: 1000 + i, val: 1, ret: 0, count: 1, mapcount: 0, flags: 0, mapping: 0, stackId: i === 0 ? 5 : 6, pid: 1, tgid: 1, comm: 0 });
  }
  const rows = kept(groups);
  t.deepEqual(rows.map((g) => g.stackId), [6], 'the one get of stack 5 was folded away');
  t.is(rows[0].refs, MAX_HOLDS_PER_PFN);
  t.is(rows[0].oldestNs, 1001);
  t.deepEqual(rows, regroup(table));
});

test('keepSmallest keeps the smallest distinct values, ascending', (t) => {
  const rnd = random(7);
  for (let run = 0; run < 200; run++) {
    const values = Array.from({ length: Math.floor(rnd() * 20) }, () => Math.floor(rnd() * 10));
    const kept: number[] = [];
    values.forEach((v) => keepSmallest(kept, v, 4));
    t.deepEqual(kept, [...new Set(values)].sort((a, b) => a - b).slice(0, 4), values.join(','));
  }
});

test('top: the holders view from the kept groups equals the filtered pass over every hold', (t) => {
  const strings = new StringTable();
  const comms = Array.from({ length: 7 }, (_, i) => strings.intern(`task-${i}`));
  for (let seed = 200; seed < 210; seed++) {
    const state = new TopState();
    state.header(testHeader());
    state.stacks(Array.from({ length: 12 }, (_, id) => ({ id, frames: ['__page_ref_mod+0x12', id % 3 === 0 ? `try_grab_folio+0x${id}` : `do_anonymous_page+0x${id}`] })));
    const events = randomEvents(seed, 500);
    for (let start = 0; start < events.length; start += 100) {
      const chunk = events.slice(start, start + 100);
      const batch = allocateBatch(chunk.length);
      chunk.forEach((e, i) => {
        batch.type[i] = e.type;
        batch.tsNs[i] = e.tsNs;
        batch.pfn[i] = e.pfn;
        batch.val[i] = e.val;
        batch.ret[i] = e.ret;
        batch.count[i] = e.count;
        batch.stackId[i] = e.stackId;
        batch.pid[i] = batch.tgid[i] = e.tgid;
        batch.comm[i] = comms[e.comm];
      });
      state.events(batch, strings);
      const info = { source: 'live' as const, label: 'test', nowNs: events[events.length - 1].tsNs };
      for (const sort of ['pages', 'refs', 'procs', 'age', 'kind']) {
        const query: SnapshotQuery = { view: 'holders', sort, reverse: false, filter: NO_FILTER, limit: 100 };
        const groupsKept = takeSnapshot(state, query, info);
        // A pfn range that holds every page takes the pass over every hold.
        const everyPage = takeSnapshot(state, { ...query, filter: parseFilter('0x0-0x100000') }, info);
        t.deepEqual(groupsKept.rows as HolderRow[], everyPage.rows as HolderRow[], `seed ${seed}, ${start + chunk.length} events, sort ${sort}`);
        t.is(groupsKept.matching, everyPage.matching);
      }
    }
  }
});
