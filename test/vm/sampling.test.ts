// Sampling, aggregation and the kernel's counters on real kernels: each test
// kernel boots once and runs test/vm/sampling-guest.sh, which records the
// same workload with several recorders at once; here the captures are
// compared with each other and with the kernel's own counters. A full
// recording (--pid, every event) is the reference for the sampled and
// aggregated ones, which must agree with it exactly on what they keep.

import test from 'ava';
import { join } from 'node:path';
import { replayCapture } from '../../src/capture/capture-reader';
import type { CaptureHeader, KernelCounters } from '../../src/capture/schema';
import { BlameAnalysis } from '../../src/blame/blame-analysis';
import { blameJson } from '../../src/blame/blame-report';
import { referenceDelta } from '../../src/holds/reference-delta';
import { CaptureSummary, reportJson } from '../../src/report/capture-summary';
import { isolationFailed } from '../../src/record/event-batch';
import { EVENT_NAMES, EventType, isPageRefEvent } from '../../src/record/event-types';
import { pfnSampledIn, stackSampledIn } from '../../src/record/pfn-hash';
import type { KernelImage } from '../../src/vm/kernels';
import type { VmResult } from '../../src/vm/qemu';
import { kernelAddressesInCapture } from '../helpers/kernel-addresses';
import { forEachKernel, guestFile, oneBootPerKernel } from './guest-runs';
import { parsePinned, unexplainedFailures } from './pinned-failures';

const TIMEOUT_SEC = 600;
const guestRun = oneBootPerKernel('sh test/vm/sampling-guest.sh', TIMEOUT_SEC);

interface PageRefEvent {
  type: number;
  pfn: number;
  tsNs: number;
  count: number;
  mapcount: number;
  flags: number;
  mapping: number;
  mt: number;
  val: number;
  ret: number;
  stackId: number;
  pid: number;
  tgid: number;
  comm: string;
}

interface Totals {
  gets: number;
  puts: number;
  events: number;
  lastCount: number;
}

interface Capture {
  header: CaptureHeader;
  pageRef: PageRefEvent[];
  isolationFailures: { start: number; end: number; busyPfn: number; tsNs: number }[];
  records: number;
  counters: KernelCounters;
  totals: Map<number, Totals>;
  stackIds: Set<number>;
  stackFrames: Map<number, string[]>;
  truncated?: string;
}

function load(run: VmResult, name: string): Capture {
  const capture: Partial<Capture> = { pageRef: [], isolationFailures: [], records: 0, totals: new Map(), stackIds: new Set(), stackFrames: new Map() };
  replayCapture(join(run.outDir, `${name}.pgref`), {
    header: (header) => (capture.header = header),
    stacks: (stacks) =>
      stacks.forEach((s) => {
        capture.stackIds!.add(s.id);
        capture.stackFrames!.set(s.id, s.frames);
      }),
    counters: (counters) => (capture.counters = counters),
    pfnCounts: (t) => {
      for (let i = 0; i < t.pfn.length; i++) {
        const row = capture.totals!.get(t.pfn[i]) ?? { gets: 0, puts: 0, events: 0, lastCount: 0 };
        capture.totals!.set(t.pfn[i], { gets: row.gets + t.gets[i], puts: row.puts + t.puts[i], events: row.events + t.events[i], lastCount: t.lastCount[i] });
      }
    },
    events: (batch, strings) => {
      capture.records! += batch.length;
      for (let i = 0; i < batch.length; i++) {
        const type = batch.type[i];
        if (isPageRefEvent(type)) {
          capture.pageRef!.push({
            type,
            pfn: batch.pfn[i],
            tsNs: batch.tsNs[i],
            count: batch.count[i],
            mapcount: batch.mapcount[i],
            flags: batch.flags[i],
            mapping: batch.mapping[i],
            mt: batch.mt[i],
            val: batch.val[i],
            ret: batch.ret[i],
            stackId: batch.stackId[i],
            pid: batch.pid[i],
            tgid: batch.tgid[i],
            comm: strings.get(batch.comm[i]),
          });
        } else if (type === EventType.TestPagesIsolated && isolationFailed(batch, i)) {
          capture.isolationFailures!.push({ start: batch.pfn[i], end: batch.flags[i], busyPfn: batch.mapping[i], tsNs: batch.tsNs[i] });
        }
      }
    },
    end: (end) => {
      if (end.trailer) capture.counters = end.trailer.counters;
      capture.truncated = end.truncated;
    },
  });
  return capture as Capture;
}

/** Per-pfn totals computed from every event, as the kernel's --aggregate sums them. */
function totalsOf(events: PageRefEvent[]): Map<number, Totals> {
  const totals = new Map<number, Totals>();
  for (const e of events) {
    let row = totals.get(e.pfn);
    if (!row) totals.set(e.pfn, (row = { gets: 0, puts: 0, events: 0, lastCount: 0 }));
    const delta = referenceDelta(e.type, e.val, e.ret);
    if (delta > 0) row.gets += delta;
    else row.puts -= delta;
    row.events++;
    row.lastCount = e.count;
  }
  return totals;
}

/** Each pfn's events in the order they came, with the fields both attach types record and the task's. */
function historiesByPfn(events: PageRefEvent[]): Map<number, (number | string)[][]> {
  const histories = new Map<number, (number | string)[][]>();
  for (const e of events) {
    let history = histories.get(e.pfn);
    if (!history) histories.set(e.pfn, (history = []));
    // The task too: tp_btf reads pid, tgid and comm from the task itself, the tracepoint by helpers.
    history.push([e.type, e.count, e.val, e.ret, e.flags, e.pid, e.tgid, e.comm]);
  }
  return histories;
}

/** Map comparison in ava follows insertion order; pfn order makes two tables comparable. */
function sortedByPfn<T>(table: Map<number, T>): [number, T][] {
  return [...table].sort((a, b) => a[0] - b[0]);
}

const PAGE_REF_TYPES = EVENT_NAMES.map((_, type) => type).filter(isPageRefEvent);
const sum = (values: number[], types: number[] = PAGE_REF_TYPES) => types.reduce((total, type) => total + (values[type] ?? 0), 0);

/** Every page_ref run of the program ends in exactly one of five outcomes. */
function outcomesAddUp(t: { is: (a: number, b: number, message?: string) => void }, c: KernelCounters, name: string): void {
  for (const type of PAGE_REF_TYPES) {
    const outcomes = c.filtered[type] + c.sampledOut[type] + c.countedOnly[type] + c.emitted[type] + c.dropped[type];
    t.is(outcomes, c.seen[type], `${name}: ${EVENT_NAMES[type]}: filtered + sampled out + counted only + emitted + dropped = seen`);
  }
}

forEachKernel('sampling', registerSamplingTests);

function registerSamplingTests(kernel: KernelImage): void {
  const name = kernel.name;

  test(`${name}: --sample-pfn 8 keeps the whole history of exactly the pfns its hash picks`, async (t) => {
    const run = await guestRun(kernel);
    t.deepEqual(run.preconditions, []);
    t.is(guestFile(run, 'churn.rc').trim(), '0', guestFile(run, 'churn.log'));
    t.is(guestFile(run, 'full.rc').trim(), '0', guestFile(run, 'full-record.log'));
    t.is(guestFile(run, 'sampled.rc').trim(), '0', guestFile(run, 'sampled-record.log'));
    const full = load(run, 'full');
    const sampled = load(run, 'sampled');
    t.is(sampled.header.options.samplePfn, 8);
    t.is(sum(full.counters.dropped) + sum(sampled.counters.dropped), 0, 'a recorder dropped records');
    const fullTotals = totalsOf(full.pageRef);
    const expected = new Map([...fullTotals].filter(([pfn]) => pfnSampledIn(pfn, 8)));
    const got = totalsOf(sampled.pageRef);
    t.log(`${name}: ${full.pageRef.length} events on ${fullTotals.size} pfns in full; ${sampled.pageRef.length} on ${got.size} pfns sampled`);
    t.true(expected.size > 100 && expected.size < fullTotals.size / 4, `${expected.size} of ${fullTotals.size} pfns picked`);
    t.deepEqual([...got.keys()].filter((pfn) => !pfnSampledIn(pfn, 8)), [], 'pfns the hash does not pick');
    t.deepEqual(sortedByPfn(got), sortedByPfn(expected));
    t.is(sum(sampled.counters.sampledOut), full.pageRef.length - sampled.pageRef.length);
    outcomesAddUp(t, full.counters, 'full');
    outcomesAddUp(t, sampled.counters, 'sampled');
  });

  test(`${name}: --aggregate's per-pfn totals from the kernel equal the sums of every recorded event`, async (t) => {
    const run = await guestRun(kernel);
    t.is(guestFile(run, 'aggregate.rc').trim(), '0', guestFile(run, 'aggregate-record.log'));
    const full = load(run, 'full');
    const aggregate = load(run, 'aggregate');
    t.true(aggregate.header.options.aggregateSlots > 0);
    t.is(aggregate.pageRef.length, 0, 'no per-event page_ref records with --aggregate');
    const expected = totalsOf(full.pageRef);
    t.true(expected.size > 1000);
    t.deepEqual(sortedByPfn(aggregate.totals), sortedByPfn(expected));
    const c = aggregate.counters;
    t.is(sum(c.aggregated), full.pageRef.length);
    t.is(sum(c.aggregateOverflow), 0);
    t.is(sum(c.countedOnly), full.pageRef.length);
    outcomesAddUp(t, c, 'aggregate');
  });

  test(`${name}: page_ref by tp_btf records the same events, pfns, counts and stacks as the perf tracepoint`, async (t) => {
    const run = await guestRun(kernel);
    t.is(guestFile(run, 'by-btf.rc').trim(), '0', guestFile(run, 'by-btf-record.log'));
    t.is(guestFile(run, 'by-tracepoint.rc').trim(), '0', guestFile(run, 'by-tracepoint-record.log'));
    const btf = load(run, 'by-btf');
    const tracepoint = load(run, 'by-tracepoint');
    t.is(btf.header.options.attach, 'btf', guestFile(run, 'by-btf-record.log'));
    t.is(tracepoint.header.options.attach, 'tracepoint');
    t.is(sum(btf.counters.dropped) + sum(tracepoint.counters.dropped), 0);
    t.true(tracepoint.pageRef.length > 1000);
    // Each pfn's history in order. One order across pfns is more than two programs on one
    // tracepoint can promise: an interrupt between their two callbacks puts its event between
    // them in one ring buffer and before them in the other.
    t.deepEqual(sortedByPfn(historiesByPfn(btf.pageRef)), sortedByPfn(historiesByPfn(tracepoint.pageRef)));
    t.true(btf.pageRef.every((e) => e.mt === 255), 'tp_btf does not compute the migrate type');
    // The stacks start at the same __page_ref_* frame (the BPF machinery is cut off).
    const frames = (c: Capture) => new Set([...c.stackFrames.values()].map((f) => f.slice(0, 3).join(' <- ')));
    const btfStarts = [...frames(btf)];
    t.true(btfStarts.length > 0 && btfStarts.every((s) => s.startsWith('__page_ref_')), btfStarts.slice(0, 3).join('; '));
    t.true(btfStarts.some((s) => frames(tracepoint).has(s)), 'no stack beginning is shared');
  });

  test(`${name}: with a one-page ring buffer, dropped is exactly what the kernel counted minus what was received`, async (t) => {
    const run = await guestRun(kernel);
    t.is(guestFile(run, 'tiny.rc').trim(), '0', guestFile(run, 'tiny-record.log'));
    const tiny = load(run, 'tiny');
    const c = tiny.counters;
    const kept = sum(c.seen) - sum(c.filtered) - sum(c.sampledOut) - sum(c.countedOnly);
    const dropped = sum(c.dropped);
    t.log(`${name}: ${kept} events kept by the filter, ${tiny.pageRef.length} received, ${dropped} dropped`);
    t.true(dropped > 0, 'nothing was dropped: the buffer was not tiny enough');
    t.is(dropped, kept - tiny.pageRef.length);
    const allTypes = EVENT_NAMES.map((_, type) => type);
    t.is(sum(c.emitted, allTypes), tiny.records, 'every emitted record was received');
    t.is(c.recordsReceived, tiny.records);
    outcomesAddUp(t, c, 'tiny');
  });

  test(`${name}: --max-drops stops the recording by itself, finishes the capture and exits 1`, async (t) => {
    const run = await guestRun(kernel);
    t.is(guestFile(run, 'max-drops.rc').trim(), '1', guestFile(run, 'max-drops-record.log'));
    t.regex(guestFile(run, 'max-drops-record.log'), /stopped: max drops: \d+ records dropped, more than --max-drops 100/);
    let stopReason = '';
    replayCapture(join(run.outDir, 'max-drops.pgref'), {
      header: () => {},
      stacks: () => {},
      events: () => {},
      counters: () => {},
      end: (end) => (stopReason = end.trailer?.stopReason ?? `no trailer: ${end.truncated}`),
    });
    t.regex(stopReason, /^max drops: /);
  });

  test(`${name}: --stacks sampled takes stacks on exactly the pfns its hash picks`, async (t) => {
    const run = await guestRun(kernel);
    t.is(guestFile(run, 'sampled-stacks.rc').trim(), '0', guestFile(run, 'sampled-stacks-record.log'));
    const capture = load(run, 'sampled-stacks');
    t.is(capture.header.options.stacksMode, 'sampled');
    const wrong = capture.pageRef.filter((e) => (e.stackId !== -1) !== stackSampledIn(e.pfn, 4));
    const withStacks = capture.pageRef.filter((e) => e.stackId >= 0).length;
    t.log(`${name}: ${withStacks} of ${capture.pageRef.length} records with stacks`);
    t.deepEqual(wrong.slice(0, 5), []);
    t.true(withStacks > 0 && withStacks < capture.pageRef.length / 2);
    t.true(capture.pageRef.every((e) => e.stackId < 0 || capture.stackIds.has(e.stackId)), 'a stack id the capture does not define');
  });

  test(`${name}: --raw-pointers keeps the kernel's page->mapping pointers and says so, where a default capture holds only hashes`, async (t) => {
    const run = await guestRun(kernel);
    const log = guestFile(run, 'raw-pointers-record.log');
    t.is(guestFile(run, 'raw-pointers.rc').trim(), '0', log);
    t.regex(log, /--raw-pointers: .* will hold kernel addresses/);
    const raw = load(run, 'raw-pointers');
    t.true(raw.header.rawPointers);
    const pointers = raw.pageRef.map((e) => e.mapping).filter((m) => m !== 0);
    t.log(`${name}: ${pointers.length} of ${raw.pageRef.length} page_ref records with a mapping`);
    t.true(pointers.length > 100, 'page-churn maps anonymous memory: its pages have mappings');
    // The kernel's half of the address space begins at 0xffff800000000000 with
    // 4-level page tables and at 0xff00000000000000 with 5-level ones (QEMU's
    // -cpu max has LA57: the direct map, where mappings live, is at 0xff11...).
    t.deepEqual(pointers.filter((m) => m < 0xff00000000000000).slice(0, 5).map((m) => `0x${m.toString(16)}`), [], 'mapping values that are not kernel addresses');
    const summary = new CaptureSummary();
    replayCapture(join(run.outDir, 'raw-pointers.pgref'), summary);
    t.true(reportJson(summary, 5).capture.rawPointers, 'report --json says so');
    const analysis = new BlameAnalysis();
    replayCapture(join(run.outDir, 'raw-pointers.pgref'), analysis);
    t.true(blameJson(analysis).recording.rawPointers, 'blame --json says so');

    // The default recording of the same kind of workload: hashes, below 2^52.
    const full = load(run, 'full');
    t.false(full.header.rawPointers);
    const hashed = full.pageRef.map((e) => e.mapping).filter((m) => m !== 0);
    t.true(hashed.length > 100);
    t.deepEqual(hashed.filter((m) => m >= 2 ** 52).slice(0, 5), [], 'a default capture holds a value beyond the hash');

    // Not only mappings: no number or string anywhere in a capture recorded
    // without --raw-pointers is a kernel address, with stacks or without,
    // sampled, aggregated or armed. The same scan finds the pointers of the
    // --raw-pointers capture, so it can fail.
    t.true(kernelAddressesInCapture(join(run.outDir, 'raw-pointers.pgref')).length > 0, 'the scan finds raw pointers');
    for (const capture of ['full', 'sampled', 'aggregate', 'by-btf', 'by-tracepoint', 'armed']) {
      t.deepEqual(kernelAddressesInCapture(join(run.outDir, `${capture}.pgref`)), [], `${capture}: kernel addresses`);
    }
  });

  test(`${name}: --cma --aggregate --stacks armed: totals only inside the CMA areas, records with stacks only for pages of failed isolations`, async (t) => {
    const run = await guestRun(kernel);
    t.is(guestFile(run, 'cma-workload.rc').trim(), '0', guestFile(run, 'cma-workload.log'));
    t.is(guestFile(run, 'armed.rc').trim(), '0', guestFile(run, 'armed-record.log'));
    const capture = load(run, 'armed');
    const areas = guestFile(run, 'cma-areas.txt')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter((words) => words.length === 3)
      .map(([area, base, count]) => ({ name: area, basePfn: Number(base), count: Number(count) }));
    t.true(areas.length > 0, guestFile(run, 'cma-areas.txt'));
    t.deepEqual(capture.header.options.cmaAreas, areas);
    t.deepEqual(capture.header.options.pfnRanges, areas.map((a) => ({ start: a.basePfn, end: a.basePfn + a.count })));
    const inCma = (pfn: number) => areas.some((a) => pfn >= a.basePfn && pfn < a.basePfn + a.count);
    t.true(capture.totals.size > 0, 'no per-pfn totals');
    t.deepEqual([...capture.totals.keys()].filter((pfn) => !inCma(pfn)).slice(0, 5), [], 'totals outside the CMA areas');

    t.true(capture.isolationFailures.length > 0, 'no isolation failed');
    const armedBefore = (e: PageRefEvent) => capture.isolationFailures.some((f) => f.tsNs <= e.tsNs && e.pfn >= f.start && e.pfn < f.end);
    t.true(capture.pageRef.length > 0, 'nothing recorded after arming');
    t.deepEqual(capture.pageRef.filter((e) => !armedBefore(e)).slice(0, 5), [], 'records of pages no failure had armed');
    const lost = sum(capture.counters.stackLost);
    t.is(capture.pageRef.filter((e) => e.stackId < 0).length <= lost, true, 'records without a stack beyond those counted as lost');
    t.true(sum(capture.counters.countedOnly) > capture.pageRef.length, 'unarmed pages were not just counted');
    outcomesAddUp(t, capture.counters, 'armed');

    const analysis = new BlameAnalysis();
    replayCapture(join(run.outDir, 'armed.pgref'), analysis);
    const blame = blameJson(analysis);
    const pinned = parsePinned(guestFile(run, 'pinned.txt'));
    t.true(blame.failures > 0);
    t.is(unexplainedFailures(blame.busyPfns.map((p) => [Number(p.pfn), p.failures] as const), pinned), null, 'the pinned pages are the busy ones');
    t.true(blame.busyPfns.some((p) => p.releasers.length > 0), 'armed pages should show who released them');
  });
}
