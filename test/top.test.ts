// pageref top without a terminal: the state fed through the sink API with
// hand-built event batches, snapshots (top-N selection, filters, grouping),
// the pure render at several widths, and the keys.

import test from 'ava';
import { allocateBatch, EventBatch } from '../src/record/event-batch';
import { EventType } from '../src/record/event-types';
import { StringTable } from '../src/record/string-table';
import { pageFlagNames, pageFlagTable } from '../src/top/page-flags';
import { NO_FILTER, parseFilter } from '../src/top/top-filter';
import { applyKey, initialView, KeyPress } from '../src/top/top-keys';
import { age, count, fillPercent, rate, render, ViewState } from '../src/top/top-render';
import { rowKey, Snapshot, SnapshotQuery, SourceInfo, takeSnapshot, TopView, PageRow, HolderRow, FailureRow } from '../src/top/top-snapshot';
import { TopState } from '../src/top/top-state';
import { RingFillPeak } from '../src/live/ring-fill-peak';
import { counters, testHeader } from './helpers/capture';

interface Ev {
  type: number;
  tsNs: number;
  pfn: number;
  val?: number;
  ret?: number;
  count?: number;
  mapcount?: number;
  flags?: number;
  mapping?: number;
  pid?: number;
  comm?: string;
  stackId?: number;
  mt?: number;
}

const strings = new StringTable();

function batch(events: Ev[]): EventBatch {
  const b = allocateBatch(events.length);
  events.forEach((e, i) => {
    b.type[i] = e.type;
    b.tsNs[i] = e.tsNs;
    b.pfn[i] = e.pfn;
    b.val[i] = e.val ?? 0;
    b.ret[i] = e.ret ?? 0;
    b.count[i] = e.count ?? 0;
    b.mapcount[i] = e.mapcount ?? 0;
    b.flags[i] = e.flags ?? 0;
    b.mapping[i] = e.mapping ?? 0;
    b.pid[i] = e.pid ?? 0;
    b.tgid[i] = e.pid ?? 0;
    b.comm[i] = strings.intern(e.comm ?? '');
    b.stackId[i] = e.stackId ?? -1;
    b.mt[i] = e.mt ?? 1;
  });
  return b;
}

const GUP = ['__page_ref_mod+0x12', 'try_grab_folio+0x40', '__get_user_pages+0x1a0', 'iov_iter_get_pages2+0x9c', 'vmsplice_to_pipe+0x1c4'];
const FAULT = ['__page_ref_mod+0x12', 'do_anonymous_page+0x310', 'handle_mm_fault+0x2a0'];
const LRU = ['__page_ref_mod+0x12', 'folio_batch_add+0x10', 'lru_add_drain+0x30'];
const RELEASE = ['__page_ref_mod_and_test+0x10', 'pipe_buf_release+0x30', 'free_pipe_info+0x50'];
const MS = 1_000_000;

/**
 * A small world: pfn 0x1000..0x1009 faulted in by "app" (one reference each),
 * 0x1003 and 0x1007 pinned by "pinner" through vmsplice, 0x1005 in an LRU
 * batch of "kworker"; 0x1003 fails isolation; then in the second second
 * "app" takes 5 more on 0x1009.
 */
function world(): TopState {
  const state = new TopState();
  state.header(testHeader());
  state.stacks([
    { id: 1, frames: GUP },
    { id: 2, frames: FAULT },
    { id: 3, frames: LRU },
    { id: 4, frames: RELEASE },
  ]);
  const first: Ev[] = [];
  for (let i = 0; i < 10; i++) first.push({ type: EventType.PageRefMod, tsNs: 10 * MS + i * MS, pfn: 0x1000 + i, val: 1, count: 1, mapcount: 1, flags: 0x29, pid: 100, comm: 'app', stackId: 2, mt: 1 });
  first.push({ type: EventType.PageRefMod, tsNs: 100 * MS, pfn: 0x1003, val: 1, count: 2, mapcount: 1, flags: 0x29, pid: 200, comm: 'pinner', stackId: 1, mt: 4 });
  first.push({ type: EventType.PageRefMod, tsNs: 110 * MS, pfn: 0x1007, val: 1, count: 2, mapcount: 1, flags: 0x29, pid: 200, comm: 'pinner', stackId: 1, mt: 4 });
  first.push({ type: EventType.PageRefMod, tsNs: 120 * MS, pfn: 0x1005, val: 1, count: 2, mapcount: 1, pid: 300, comm: 'kworker', stackId: 3, mt: 1 });
  first.push({ type: EventType.TestPagesIsolated, tsNs: 500 * MS, pfn: 0x1000, flags: 0x1400, mapping: 0x1003, pid: 400, comm: 'cma' });
  first.push({ type: EventType.CmaAllocBusyRetry, tsNs: 501 * MS, pfn: 0x1000, flags: 1024, pid: 400, comm: 'cma' });
  state.events(batch(first), strings);
  state.counters(counters({ dropped: [0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] }));
  state.tick(1000 * MS);
  const second: Ev[] = [];
  for (let i = 0; i < 5; i++) second.push({ type: EventType.PageRefMod, tsNs: 1100 * MS + i * MS, pfn: 0x1009, val: 1, count: 2 + i, mapcount: 1, pid: 100, comm: 'app', stackId: 2, mt: 1 });
  state.events(batch(second), strings);
  state.tick(2000 * MS);
  return state;
}

const INFO: SourceInfo = { source: 'replay', label: 'world.pgref', nowNs: 2000 * MS, speed: 0 };

function query(view: TopView, extra: Partial<SnapshotQuery> = {}): SnapshotQuery {
  return { view, sort: '', reverse: false, filter: NO_FILTER, limit: 50, ...extra };
}

function viewOf(snapshot: Snapshot, extra: Partial<ViewState> = {}): ViewState {
  return { ...initialView(snapshot.view, snapshot.sort), reverse: snapshot.reverse, filter: snapshot.filter, ...extra };
}

const pfnsOf = (s: Snapshot) => (s.rows as PageRow[]).map((r) => r.pfn);

// --- state -----------------------------------------------------------------------

test('state: per-type rates come from the last interval, totals from the whole session; drops from the kernel counters', (t) => {
  const state = world();
  t.is(state.rates.seconds, 1);
  t.is(state.rates.eventsPerSec[EventType.PageRefMod], 5);
  t.is(state.rates.eventsPerSec[EventType.TestPagesIsolated], 0);
  t.is(state.eventsByType[EventType.PageRefMod], 18);
  t.is(state.pfns.size, 10);
  t.is(state.dropped, 3);
  t.is(state.analysis.failures, 1);
  t.is(state.analysis.busyRetries, 1);
  t.is(state.previous.get(0x1009)?.gets, 5);
  t.is(state.previous.get(0x1003), undefined, 'a page untouched in the interval has no rate');
  t.is(state.migrateType(0x1003), 1, 'the pageblock takes the newest event of any of its pages');
  t.is(state.migrateType(0x9000000), -1);
  state.events(batch([{ type: EventType.PageRefMod, tsNs: 2001 * MS, pfn: 0x9000000, val: 1, count: 1, mt: 0xff }]), strings);
  t.is(state.migrateType(0x9000000), -1, 'records attached by tp_btf carry no migrate type (PAGEREF_MT_UNKNOWN)');
});

test('state: only watched pfns keep a history, at most 16 events, and unwatching drops it', (t) => {
  const state = new TopState();
  state.header(testHeader());
  state.watch([0x20]);
  const events: Ev[] = [];
  for (let i = 0; i < 20; i++) events.push({ type: EventType.PageRefMod, tsNs: i, pfn: 0x20 + (i % 2), val: 1, count: i, pid: 1, comm: 'x' });
  state.events(batch(events), strings);
  t.is(state.history(0x20).length, 10);
  t.is(state.history(0x21).length, 0);
  for (let i = 0; i < 20; i++) events[i] = { ...events[i], pfn: 0x20, tsNs: 100 + i };
  state.events(batch(events), strings);
  t.is(state.history(0x20).length, 16);
  t.is(state.history(0x20)[15].tsNs, 119);
  state.watch([]);
  t.deepEqual(state.history(0x20), []);
});

test('state: --aggregate per-pfn sums count as pages and as aggregated events', (t) => {
  const state = new TopState();
  state.header(testHeader());
  state.pfnCounts({ pfn: [7, 8], gets: [3, 1], puts: [1, 1], events: [4, 2], lastCount: [2, 1], lastTsNs: [5 * MS, 6 * MS] });
  state.tick(1000 * MS);
  t.is(state.pfns.size, 2);
  t.is(state.aggregatedEvents, 6);
  t.is(state.rates.aggregatedPerSec, 6);
  const s = takeSnapshot(state, query('pages'), { ...INFO, nowNs: 1000 * MS });
  t.deepEqual(pfnsOf(s), [7, 8]);
  t.is((s.rows[0] as PageRow).net, 2);
  t.is((s.rows[0] as PageRow).flags, null, 'no record: flags unknown');
});

// --- snapshots ---------------------------------------------------------------------

test('snapshot: pages by net (default), by refcount, by rate, by age, by pfn reversed; rows are the top N', (t) => {
  const state = world();
  const byNet = takeSnapshot(state, query('pages'), INFO);
  t.is(byNet.sort, 'net');
  t.is(byNet.matching, 10);
  t.deepEqual(pfnsOf(byNet).slice(0, 4), [0x1009, 0x1003, 0x1005, 0x1007]);
  t.deepEqual(pfnsOf(takeSnapshot(state, query('pages', { sort: 'ref', limit: 1 }), INFO)), [0x1009]);
  t.deepEqual(pfnsOf(takeSnapshot(state, query('pages', { sort: 'gets', limit: 2 }), INFO)), [0x1009, 0x1003], 'then the rest by net');
  t.deepEqual(pfnsOf(takeSnapshot(state, query('pages', { sort: 'age', limit: 3 }), INFO)), [0x1000, 0x1001, 0x1002]);
  t.deepEqual(pfnsOf(takeSnapshot(state, query('pages', { sort: 'pfn', reverse: true, limit: 3 }), INFO)), [0x1009, 0x1008, 0x1007]);
  const row = byNet.rows.find((r) => (r as PageRow).pfn === 0x1003) as PageRow;
  t.deepEqual(row.holder, { comm: 'pinner', pid: 200, frame: 'try_grab_folio+0x40', kind: 'pin' }, 'the pin is the top holder though the fault came first');
  t.is(row.oldestHoldNs, 2000 * MS - 13 * MS);
  t.deepEqual(row.flags, ['locked', 'dirty', 'active'], '0x29 on 6.1');
  t.is(row.migrateType, 'movable', 'the pageblock of 0x1000-0x11ff was last seen movable (0x1009), though the pins saw cma');
  t.is((byNet.rows[0] as PageRow).getsPerSec, 5);
});

test('snapshot: the filter keeps pfn ranges and comms', (t) => {
  const state = world();
  t.deepEqual(pfnsOf(takeSnapshot(state, query('pages', { filter: parseFilter('0x1004-0x1006 0x1008') }), INFO)).sort(), [0x1004, 0x1005, 0x1008]);
  const pinned = takeSnapshot(state, query('pages', { filter: parseFilter('pinn') }), INFO);
  t.deepEqual(pfnsOf(pinned).sort(), [0x1003, 0x1007]);
  t.is(pinned.matching, 2);
  t.deepEqual(pfnsOf(takeSnapshot(state, query('pages', { sort: 'age', filter: parseFilter('kworker') }), INFO)), [0x1005]);
  const holders = takeSnapshot(state, query('holders', { filter: parseFilter('0x1003') }), INFO);
  t.deepEqual((holders.rows as HolderRow[]).map((r) => r.frame).sort(), ['do_anonymous_page+0x310', 'try_grab_folio+0x40']);
  t.is(takeSnapshot(state, query('failures', { filter: parseFilter('nobody') }), INFO).rows.length, 0);
  t.is(takeSnapshot(state, query('failures', { filter: parseFilter('pinner') }), INFO).rows.length, 1);
});

test('snapshot: holders are outstanding references grouped by stack, with pages, references, processes and the oldest', (t) => {
  const s = takeSnapshot(world(), query('holders'), INFO);
  const rows = s.rows as HolderRow[];
  t.deepEqual(rows.map((r) => [r.frame, r.kind, r.pages, r.refs, r.processes]), [
    ['do_anonymous_page+0x310', 'expected', 10, 15, 1],
    ['try_grab_folio+0x40', 'pin', 2, 2, 1],
    ['folio_batch_add+0x10', 'batch', 1, 1, 1],
  ]);
  t.is(rows[1].examplePfn, 0x1003);
  t.deepEqual(rows[1].comms, ['pinner']);
  const byKind = takeSnapshot(world(), query('holders', { sort: 'kind' }), INFO);
  t.deepEqual((byKind.rows as HolderRow[]).map((r) => r.kind), ['pin', 'batch', 'expected']);
});

test('snapshot: failures name the busy pfn, its culprit (a pin first) and the retries', (t) => {
  const s = takeSnapshot(world(), query('failures'), INFO);
  if (s.view !== 'failures') return t.fail();
  t.is(s.rows.length, 1);
  const row = s.rows[0] as FailureRow;
  t.is(row.pfn, 0x1003);
  t.is(row.failures, 1);
  t.is(row.busyRetries, 1);
  t.is(row.holders, 2);
  t.deepEqual(row.culprit, { comm: 'pinner', pid: 200, frame: 'try_grab_folio+0x40', kind: 'pin' });
  t.deepEqual(s.culprits[0], { frame: 'try_grab_folio+0x40', kind: 'pin', pages: 1, failures: 1 });
});

// --- render -----------------------------------------------------------------------

test('render: every line fits the width, columns go least important first, the holder column is cut last', (t) => {
  const state = world();
  const s = takeSnapshot(state, query('pages'), INFO);
  const view = viewOf(s);
  const table = (width: number) => {
    const lines = render(s, { columns: width, rows: 30 }, view);
    t.is(lines.length, 30);
    for (const line of lines) t.true(line.length <= width, `${width}: ${JSON.stringify(line)}`);
    return lines.find((l) => l.startsWith('PFN'))!;
  };
  const wide = table(200);
  t.regex(wide, /^PFN +REF +MAP +NET↓ +GETS\/s +PUTS\/s +AGE +EVENTS +MT +FLAGS +TOP HOLDER$/);
  const medium = table(80);
  t.false(medium.includes('FLAGS'));
  t.true(medium.includes('MT'));
  t.regex(medium, /TOP HOLDER$/);
  const narrow = table(50);
  t.regex(narrow, /^PFN +REF +NET↓ +AGE +TOP HOLDER$/);
  t.regex(table(36), /^PFN +REF +TOP HOLDER$/);
  table(20);
  const row = render(s, { columns: 60, rows: 30 }, view).find((l) => l.startsWith('0x1003'))!;
  t.regex(row, /pinner\[200\] try_g/);
});

test('render: a golden screen of the pages view at 120 columns', (t) => {
  const s = takeSnapshot(world(), query('pages', { limit: 3 }), { ...INFO, ended: 'end of capture' });
  const lines = render({ ...s, header: { ...s.header, cpuPercent: 1.5 } }, { columns: 120, rows: 11 }, viewOf(s));
  t.deepEqual(lines, [
    'pageref top - replay world.pgref (max speed), end of capture  kernel 6.1.192  up 0:00:02  cpu 1.5%',
    'Events/s 5.0:  mod 5.0',
    'Dropped 3 (0/s) !  Isolation failures 1 (0/s)  CMA retries 1 (0/s)  failed allocs 0  Pfns 10  Ring n/a  stacks all',
    'Pages: 3 of 10  sort net↓  filter none',
    'PFN    REF MAP NET↓ GETS/s PUTS/s  AGE EVENTS MT      FLAGS               TOP HOLDER',
    '0x1009   6   1    6    5.0      0 2.0s      6 movable -                   app[100] do_anonymous_page+0x310 (expected)',
    '0x1003   2   1    2      0      0 2.0s      2 movable locked,dirty,active pinner[200] try_grab_folio+0x40 (pin)',
    '0x1005   2   1    2      0      0 2.0s      2 movable -                   kworker[300] folio_batch_add+0x10 (batch)',
    '',
    '',
    'q quit  ? help  1 pages  2 holders  3 failures  s/</> sort  r reverse  / filter  p pause  ↑↓ select  Enter expand',
  ]);
});

test('render: the header shows the ring buffer\'s peak fill of the interval as a percentage live, n/a in a replay', (t) => {
  const ringLine = (fill: number | null, source: 'live' | 'replay') => {
    const state = world();
    state.tick(3000 * MS, 2.5, fill);
    const s = takeSnapshot(state, query('pages', { limit: 3 }), { ...INFO, source, nowNs: 3000 * MS });
    t.is(s.header.ringFill, fill, 'the fill the session sampled at the tick');
    return render(s, { columns: 200, rows: 11 }, viewOf(s)).find((l) => l.startsWith('Dropped'))!;
  };
  t.regex(ringLine(0.4213, 'live'), / {2}Ring 42% {2}stacks all$/);
  t.regex(ringLine(0.031, 'live'), / {2}Ring 3\.1% /);
  t.regex(ringLine(0.00002, 'live'), / {2}Ring <0\.1% /, 'a few pending records are not 0%');
  t.regex(ringLine(0, 'live'), / {2}Ring 0% /);
  t.regex(ringLine(0.997, 'live'), / {2}Ring 99% /, 'a ring about to drop is not shown full');
  t.regex(ringLine(1, 'live'), / {2}Ring 100% /);
  t.regex(ringLine(null, 'replay'), / {2}Ring n\/a /);
  // A replay's ticks carry no fill: the session has no ring to read.
  t.is(world().rates.ringFill, null);
});

test('RingFillPeak: the highest fill recorded since the last take, null when no drain ran', (t) => {
  const peak = new RingFillPeak();
  t.is(peak.take(), null);
  peak.record(0.25);
  peak.record(0.5);
  peak.record(0.125);
  t.is(peak.take(), 0.5);
  t.is(peak.take(), null, 'each take starts over');
  peak.record(0);
  t.is(peak.take(), 0, 'an empty ring at every drain is 0, not unknown');
});

test('render: the view state re-sorts the rows of a snapshot and marks the sorted column', (t) => {
  const s = takeSnapshot(world(), query('pages'), INFO);
  const byPfn = render(s, { columns: 200, rows: 30 }, viewOf(s, { sort: 'pfn' }));
  const pfnRows = byPfn.filter((l) => /^0x/.test(l)).map((l) => l.split(' ')[0]);
  t.deepEqual(pfnRows, pfnRows.slice().sort());
  t.regex(byPfn.find((l) => l.startsWith('PFN'))!, /^PFN↑ /);
  const reversed = render(s, { columns: 200, rows: 30 }, viewOf(s, { sort: 'pfn', reverse: true }));
  t.deepEqual(reversed.filter((l) => /^0x/.test(l)).map((l) => l.split(' ')[0]), pfnRows.slice().reverse());
  t.regex(reversed.find((l) => l.startsWith('PFN'))!, /^PFN↓ /);
});

test('render: the holders and failures views, and the filter in the status line', (t) => {
  const state = world();
  const holders = takeSnapshot(state, query('holders', { filter: parseFilter('0x1000-0x1010') }), INFO);
  const h = render(holders, { columns: 120, rows: 20 }, viewOf(holders));
  t.true(h.some((l) => /^Holders \(by stack\): 3 of 3 +sort pages↓ +filter 0x1000-0x1010/.test(l)), h.join('\n'));
  t.true(h.some((l) => /^KIND +PAGES↓ +REFS +PROCS +OLDEST +EXAMPLE +COMMS +STACK/.test(l)));
  t.true(h.some((l) => /^pin +2 +2 +1 +1\.9s 0x1003 +pinner +try_grab_folio\+0x40$/.test(l)), h.join('\n'));
  const failures = takeSnapshot(state, query('failures'), INFO);
  const f = render(failures, { columns: 120, rows: 20 }, viewOf(failures));
  t.true(f.some((l) => l.startsWith('Culprits: try_grab_folio+0x40 (pin) 1 page, 1 failure')), f.join('\n'));
  t.true(f.some((l) => /^0x1003 +1 +1 +2 .*pinner\[200\] try_grab_folio\+0x40 \(pin\)$/.test(l)), f.join('\n'));
  const empty = takeSnapshot(state, query('pages', { filter: parseFilter('nobody') }), INFO);
  t.true(render(empty, { columns: 80, rows: 20 }, viewOf(empty)).includes('  (nothing matches the filter)'));
});

test('render: an expanded page shows its holds with full stacks and its recent events', (t) => {
  const state = world();
  state.watch([0x1003]);
  state.events(batch([{ type: EventType.PageRefModAndTest, tsNs: 1900 * MS, pfn: 0x1003, val: -1, count: 1, pid: 100, comm: 'app', stackId: 4 }]), strings);
  state.events(batch([{ type: EventType.PageRefMod, tsNs: 1950 * MS, pfn: 0x1003, val: 1, count: 2, pid: 200, comm: 'pinner', stackId: 1 }]), strings);
  const s = takeSnapshot(state, query('pages', { expanded: 'pfn:4099' }), INFO);
  const view = viewOf(s, { expanded: 'pfn:4099' });
  const lines = render(s, { columns: 150, rows: 60 }, view);
  const at = lines.findIndex((l) => l.startsWith('0x1003'));
  t.true(at > 0);
  const detail = lines.slice(at + 1, at + 20).join('\n');
  t.regex(detail, /^ {4}0x1003: 2 outstanding holds/);
  t.regex(detail, /pin pinner\[200\] 1 ref, held 50ms/);
  t.regex(detail, / {8}vmsplice_to_pipe\+0x1c4/);
  t.regex(detail, /recent events \(newest first\)/);
  t.regex(detail, /50ms ago {2}page_ref_mod \+1 -> 2 {2}pinner\[200\] {2}try_grab_folio\+0x40/);
  t.regex(detail, /100ms ago {2}page_ref_mod_and_test -1 -> 1 {2}app\[100\] {2}pipe_buf_release\+0x30/);
  t.is(rowKey('pages', s.rows.find((r) => (r as PageRow).pfn === 0x1003)!), 'pfn:4099');
  const holders = takeSnapshot(state, query('holders', { expanded: 'stack:1' }), INFO);
  const h = render(holders, { columns: 150, rows: 60 }, viewOf(holders, { expanded: 'stack:1' }));
  t.true(h.some((l) => /^ {4}stack 1, innermost first; taken by pinner; pages 0x1003 0x1007$/.test(l)), h.join('\n'));
  t.true(h.includes('        __get_user_pages+0x1a0'));
});

test('render: help replaces the table; the prompt replaces the footer', (t) => {
  const s = takeSnapshot(world(), query('pages'), INFO);
  const help = render(s, { columns: 100, rows: 30 }, viewOf(s, { help: true }));
  t.true(help.includes('Keys'));
  t.false(help.some((l) => l.startsWith('PFN')));
  const prompt = render(s, { columns: 100, rows: 30 }, viewOf(s, { prompt: '0x10' }));
  t.regex(prompt[prompt.length - 1], /^Filter: 0x10_/);
});

test('render: batch output (infinite width) cuts nothing and has no footer', (t) => {
  const s = takeSnapshot(world(), query('pages'), INFO);
  const lines = render(s, { columns: Infinity, rows: Infinity }, viewOf(s), { color: false, footer: false });
  t.is(lines.filter((l) => /^0x/.test(l)).length, 10);
  t.false(lines.some((l) => l.startsWith('q quit')));
  t.true(lines.some((l) => l.includes('FLAGS')));
});

test('ages, rates and flags are named for people', (t) => {
  t.is(rate(0), '0');
  t.is(rate(1 / 33), '0.03');
  t.is(rate(2.25), '2.3');
  t.is(rate(123_456), '123k');
  t.is(age(-1), '-');
  t.is(age(850 * MS), '850ms');
  t.is(age(12_300 * MS), '12.3s');
  t.is(age(245e9), '4m05s');
  t.is(age(7380e9), '2h03m');
  t.deepEqual([999.4, 999.6, 59_940, 59_960, 89_600, 3_599_400, 3_599_600].map((ms) => age(ms * MS)), ['999ms', '1.0s', '59.9s', '1m00s', '1m30s', '59m59s', '1h00m'], 'each in the unit it rounds into');
  t.deepEqual([99_999.4, 99_999.6, 9_999_499, 9_999_500].map(count), ['99999', '100k', '9999k', '10M']);
  t.deepEqual([9.94, 9.96, 99_999.6].map(rate), ['9.9', '10', '100k']);
  t.deepEqual([0.0994, 0.0996].map(fillPercent), ['9.9%', '10%']);
  t.deepEqual(pageFlagNames(0x41, pageFlagTable('6.12.117')), ['locked', 'head']);
  t.deepEqual(pageFlagNames(0x41, pageFlagTable('6.1.192-amd64')), ['locked', 'workingset']);
  t.deepEqual(pageFlagNames(2 ** 30 + 1, pageFlagTable('6.1.192')), ['locked', 'bit30']);
  t.deepEqual(pageFlagNames(3, pageFlagTable('5.10.0')), ['bit0', 'bit1']);
});

// --- keys ---------------------------------------------------------------------------

const key = (sequence: string, name?: string, extra: Partial<KeyPress> = {}): KeyPress => ({ sequence, name: name ?? (/^[a-z]$/.test(sequence) ? sequence : undefined), ...extra });

test('keys: sort, reverse, views, pause, quit', (t) => {
  let v = initialView();
  const press = (k: KeyPress, rows: string[] = []) => {
    const r = applyKey(v, k, rows);
    v = r.view;
    return r.action;
  };
  t.is(v.sort, 'net');
  t.is(press(key('s')), 'snapshot');
  t.is(v.sort, 'gets');
  press(key('<'));
  press(key('<'));
  t.is(v.sort, 'map');
  t.is(press(key('r')), 'snapshot');
  t.true(v.reverse);
  t.is(press(key('2')), 'snapshot');
  t.deepEqual([v.view, v.sort, v.reverse], ['holders', 'pages', false]);
  press(key('\t', 'tab'));
  t.is(v.view, 'failures');
  press(key('p'));
  t.true(v.paused);
  press(key(' ', 'space'));
  t.false(v.paused);
  t.is(press(key('q')), 'quit');
  t.is(press(key('\x03', 'c', { ctrl: true })), 'quit');
});

test('keys: selection and Enter expand the selected row; Esc closes', (t) => {
  let v = initialView();
  const rows = ['pfn:1', 'pfn:2', 'pfn:3'];
  const press = (k: KeyPress) => {
    const r = applyKey(v, k, rows);
    v = r.view;
    return r.action;
  };
  press(key('', 'down'));
  press(key('', 'down'));
  press(key('', 'down'));
  t.is(v.selected, 2);
  t.is(press(key('\r', 'return')), 'snapshot');
  t.is(v.expanded, 'pfn:3');
  press(key('', 'up'));
  t.is(press(key('\x1b', 'escape')), 'redraw');
  t.is(v.expanded, null);
});

test('keys: the filter prompt takes text, applies on Enter, and says what is wrong', (t) => {
  let v = initialView();
  const press = (k: KeyPress) => {
    const r = applyKey(v, k, []);
    v = r.view;
    return r.action;
  };
  press(key('/'));
  t.is(v.prompt, '');
  for (const c of '0x5-0x1') press(key(c));
  t.is(press(key('q')), 'redraw', 'q is text in the prompt');
  press(key('', 'backspace'));
  press(key('\r', 'return'));
  t.regex(v.message, /filter: the end of "0x5-0x1" must be above its start/);
  t.not(v.prompt, null);
  press(key('', 'u', { ctrl: true }));
  for (const c of '0x1000-0x2000 app') press(key(c, c === ' ' ? 'space' : undefined));
  t.is(press(key('\r', 'return')), 'snapshot');
  t.is(v.prompt, null);
  t.deepEqual(v.filter.ranges, [{ start: 0x1000, end: 0x2000 }]);
  t.deepEqual(v.filter.comms, ['app']);
  press(key('f'));
  t.is(v.prompt, '0x1000-0x2000 app');
  press(key('\x1b', 'escape'));
  t.is(v.prompt, null);
});

test('keys: help opens with ? and any key closes it', (t) => {
  const open = applyKey(initialView(), key('?'), []);
  t.true(open.view.help);
  const closed = applyKey(open.view, key('x'), []);
  t.false(closed.view.help);
  t.is(closed.action, 'redraw');
});
