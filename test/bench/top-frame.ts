// How long `pageref top` takes to make a frame (snapshot + render) with a
// million tracked pfns: the target is under 50 ms. Prints numbers,
// asserts nothing.
//
//   node dist/test/bench/top-frame.js [--json]
//
// Prints {"topFrameMs": n, "pfns": 1000000, ...}: topFrameMs is the median
// frame of the default view (pages by net); the other views and sorts are
// beside it. The holders view reads the stack groups the hold table keeps
// per event; eventNs is what feeding TopState cost per event, and
// blameEventNs what BlameAnalysis alone costs without and with the groups
// (the same events). With --json, the same object under "topFrame", as
// test/bench/run.ts combines the parts.

import { BlameAnalysis } from '../../src/blame/blame-analysis';
import { allocateBatch } from '../../src/record/event-batch';
import { EventType } from '../../src/record/event-types';
import { StringTable } from '../../src/record/string-table';
import { NO_FILTER, parseFilter } from '../../src/top/top-filter';
import { initialView } from '../../src/top/top-keys';
import { render } from '../../src/top/top-render';
import { SnapshotQuery, takeSnapshot, TopView } from '../../src/top/top-snapshot';
import { TopState } from '../../src/top/top-state';
import type { CaptureSink } from '../../src/stream/capture-sink';

const PFNS = 1_000_000;
const STACKS = 256;
const BATCH = 8192;
const BUSY = 2000;
const RUNS = 7;
const SCREEN = { columns: 200, rows: 60 };
const MS = 1e6;

/**
 * A million pages of a host, each faulted in (a get from one of STACKS
 * stacks), a third of them also taken and dropped again, one in 500 pinned,
 * and BUSY pages that failed isolation.
 */
function buildState<Sink extends CaptureSink>(state: Sink): { state: Sink; eventCount: number; eventNs: number } {
  let feedingNs = 0;
  state.header({
    formatVersion: 2, kernelRelease: '6.1.192', kernelVersion: '', machine: 'x86_64', hostname: 'bench', monotonicBaseNs: '0',
    bootTimeUnixUs: 0, startTimeUnixUs: 0, commandLine: [], eventsAttached: [], eventsMissing: [], pageSize: 4096, source: 'bench', rawPointers: false,
    options: { pids: [], comms: [], stacks: true, ringBytes: 1 << 24, stackEntries: 16384, pfnRanges: [], stacksMode: 'all', stackSample: 64, samplePfn: 1, sampleEvents: 1, aggregateSlots: 0, cmaAreas: [], attach: 'tracepoint' },
  });
  state.stacks(
    Array.from({ length: STACKS }, (_, id) => ({
      id,
      frames: ['__page_ref_mod+0x12', id % 50 === 0 ? `try_grab_folio+0x${id.toString(16)}` : `do_anonymous_page+0x${id.toString(16)}`, 'handle_mm_fault+0x2a0', 'exc_page_fault+0x70'],
    })),
  );
  const strings = new StringTable();
  const comms = Array.from({ length: 64 }, (_, i) => strings.intern(`task-${i}`));
  let batch = allocateBatch(BATCH);
  let n = 0;
  let events = 0;
  let ts = 0;
  const flush = () => {
    batch.length = n;
    const started = process.hrtime.bigint();
    state.events(batch, strings);
    feedingNs += Number(process.hrtime.bigint() - started);
    events += n;
    batch = allocateBatch(BATCH);
    n = 0;
  };
  const push = (type: number, pfn: number, val: number, stackId: number, pid: number) => {
    batch.type[n] = type;
    batch.tsNs[n] = ts += 1000;
    batch.pfn[n] = pfn;
    batch.val[n] = val;
    batch.count[n] = val > 0 ? 2 : 1;
    batch.mapcount[n] = 1;
    batch.flags[n] = 0x29;
    batch.stackId[n] = stackId;
    batch.pid[n] = batch.tgid[n] = pid;
    batch.comm[n] = comms[pid % comms.length];
    batch.mt[n] = 1;
    if (++n === BATCH) flush();
  };
  for (let pfn = 0; pfn < PFNS; pfn++) {
    const pid = 1000 + (pfn % 97);
    push(EventType.PageRefMod, pfn, 1, (pfn * 7) % STACKS, pid);
    if (pfn % 3 === 0) {
      push(EventType.PageRefMod, pfn, 1, (pfn * 13) % STACKS, pid);
      push(EventType.PageRefModAndTest, pfn, -1, -1, pid);
    }
    if (pfn % 500 === 0) push(EventType.PageRefMod, pfn, 1, 50, 4242);
  }
  for (let i = 0; i < BUSY; i++) {
    const pfn = i * 500;
    batch.type[n] = EventType.TestPagesIsolated;
    batch.tsNs[n] = ts += 1000;
    batch.pfn[n] = pfn - (pfn % 1024);
    batch.flags[n] = pfn - (pfn % 1024) + 1024;
    batch.mapping[n] = pfn;
    batch.pid[n] = batch.tgid[n] = 77;
    if (++n === BATCH) flush();
  }
  flush();
  if (state instanceof TopState) state.tick(ts);
  // A second interval, so that rates have something to show.
  for (let pfn = 0; pfn < PFNS; pfn += 10) push(EventType.PageRefMod, pfn, 1, 3, 1000);
  flush();
  if (state instanceof TopState) state.tick(ts + 1000 * MS);
  return { state, eventCount: events, eventNs: Math.round(feedingNs / events) };
}

function frameMs(state: TopState, view: TopView, sort = '', filter = NO_FILTER): number {
  const query: SnapshotQuery = { view, sort, reverse: false, filter, limit: SCREEN.rows };
  const viewState = { ...initialView(view, sort || undefined), filter };
  const times: number[] = [];
  const info = { source: 'live' as const, label: 'bench', nowNs: state.lastEventNs };
  for (let run = 0; run < RUNS + 2; run++) {
    const started = process.hrtime.bigint();
    const snapshot = takeSnapshot(state, query, info);
    const lines = render(snapshot, SCREEN, viewState, { color: true, footer: true });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    if (lines.length !== SCREEN.rows) throw new Error(`a frame of ${lines.length} lines`);
    if (run >= 2) times.push(ms); // the first two warm the JIT up
  }
  times.sort((a, b) => a - b);
  return Math.round(times[Math.floor(times.length / 2)] * 10) / 10;
}

function main(): void {
  const json = process.argv.includes('--json');
  const built = Date.now();
  const { state, eventCount, eventNs } = buildState(new TopState());
  const buildSec = (Date.now() - built) / 1000;
  if (state.pfns.size !== PFNS) throw new Error(`${state.pfns.size} pfns tracked, not ${PFNS}`);
  const result = {
    topFrameMs: frameMs(state, 'pages'),
    pfns: state.pfns.size,
    frameMs: {
      pagesByRef: frameMs(state, 'pages', 'ref'),
      pagesByGetsPerSec: frameMs(state, 'pages', 'gets'),
      pagesByAge: frameMs(state, 'pages', 'age'),
      pagesFilteredByComm: frameMs(state, 'pages', 'net', parseFilter('task-7')),
      holders: frameMs(state, 'holders'),
      holdersByAge: frameMs(state, 'holders', 'age'),
      holdersFilteredByComm: frameMs(state, 'holders', 'pages', parseFilter('task-7')),
      failures: frameMs(state, 'failures'),
    },
    busyPfns: state.analysis.busy.size,
    events: eventCount,
    buildSec,
    eventNs,
    blameEventNs: { withoutGroups: 0, withGroups: 0 },
    rssMiB: Math.round(process.memoryUsage().rss / 1048576),
  };
  // What the groups cost per event: the same events into the blame analysis alone, without and with them.
  result.blameEventNs.withoutGroups = buildState(new BlameAnalysis()).eventNs;
  const grouped = new BlameAnalysis();
  grouped.holds.stackGroups();
  result.blameEventNs.withGroups = buildState(grouped).eventNs;
  process.stdout.write(JSON.stringify(json ? { topFrame: result } : result) + '\n');
}

main();
