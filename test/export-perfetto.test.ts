import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FLUSH_BYTES, perfettoSchema, PerfettoTraceWriter } from '../src/export/perfetto-trace';
import { allocateBatch } from '../src/record/event-batch';
import { EventType } from '../src/record/event-types';
import { StringTable } from '../src/record/string-table';
import type { PfnCounts, RecordOptions } from '../src/capture/schema';
import { pageref } from './helpers/cli';
import { tempPath, testHeader, writeCapture } from './helpers/capture';
import { rawRecord } from './helpers/records';

const FIXTURES = join(__dirname, '..', '..', 'test', 'fixtures');

/* eslint-disable @typescript-eslint/no-explicit-any */
type Packet = Record<string, any>;

function decode(path: string): Packet[] {
  const { Trace } = perfettoSchema();
  const trace = Trace.toObject(Trace.decode(readFileSync(path)), { defaults: false, arrays: true }) as { packet: Packet[] };
  return trace.packet;
}

interface Checked {
  tracks: Map<number, Packet>;
  events: { ts: number; name: string; track: Packet; annotations: Record<string, string | number>; value?: number }[];
}

/** What Perfetto's importer relies on, checked packet by packet; throws on the first violation. */
function checkStructure(packets: Packet[]): Checked {
  const tracks = new Map<number, Packet>();
  const lastTs = new Map<number, number>();
  const cleared = new Set<number>();
  const names = new Map<number, string>();
  const categories = new Map<number, string>();
  const annotationNames = new Map<number, string>();
  const events: Checked['events'] = [];
  const openSlices = new Map<number, number>();
  packets.forEach((p, index) => {
    const where = `packet ${index}`;
    const seq = p.trustedPacketSequenceId;
    if (!(seq > 0)) throw new Error(`${where}: no trusted_packet_sequence_id`);
    const flags = p.sequenceFlags ?? 0;
    if (flags & 1) {
      cleared.add(seq);
      names.clear();
      categories.clear();
      annotationNames.clear();
    }
    if (flags & 2 && !cleared.has(seq)) throw new Error(`${where}: needs incremental state before the sequence cleared it`);
    for (const c of p.internedData?.eventCategories ?? []) categories.set(c.iid, c.name);
    for (const n of p.internedData?.eventNames ?? []) names.set(n.iid, n.name);
    for (const n of p.internedData?.debugAnnotationNames ?? []) annotationNames.set(n.iid, n.name);
    if (p.trackDescriptor) {
      const d = p.trackDescriptor;
      if (!(d.uuid > 0) || d.uuid >= 2 ** 53) throw new Error(`${where}: track uuid ${d.uuid}`);
      if (tracks.has(d.uuid)) throw new Error(`${where}: track ${d.uuid} declared twice`);
      if (d.parentUuid !== undefined && !tracks.has(d.parentUuid)) throw new Error(`${where}: parent ${d.parentUuid} not declared`);
      tracks.set(d.uuid, d);
    }
    if (p.trackEvent) {
      const e = p.trackEvent;
      if (p.timestamp === undefined) throw new Error(`${where}: a track event without a timestamp`);
      if (p.timestamp < (lastTs.get(seq) ?? 0)) throw new Error(`${where}: timestamp ${p.timestamp} before ${lastTs.get(seq)} on sequence ${seq}`);
      lastTs.set(seq, p.timestamp);
      if (!(flags & 2)) throw new Error(`${where}: uses interned data without SEQ_NEEDS_INCREMENTAL_STATE`);
      const track = tracks.get(e.trackUuid);
      if (!track) throw new Error(`${where}: track ${e.trackUuid} was not declared`);
      if (e.type === 4 && !track.counter) throw new Error(`${where}: a counter value on a track that is not a counter`);
      if (e.type !== 4 && track.counter) throw new Error(`${where}: a slice or instant on a counter track`);
      for (const iid of e.categoryIids ?? []) if (!categories.has(iid)) throw new Error(`${where}: category iid ${iid} undefined`);
      if (e.nameIid !== undefined && !names.has(e.nameIid)) throw new Error(`${where}: name iid ${e.nameIid} undefined`);
      const annotations: Record<string, string | number> = {};
      for (const a of e.debugAnnotations ?? []) {
        const name = annotationNames.get(a.nameIid);
        if (name === undefined) throw new Error(`${where}: annotation name iid ${a.nameIid} undefined`);
        annotations[name] = a.stringValue ?? a.intValue ?? a.uintValue;
      }
      if (e.type === 1) openSlices.set(e.trackUuid, (openSlices.get(e.trackUuid) ?? 0) + 1);
      if (e.type === 2) {
        if (!(openSlices.get(e.trackUuid)! > 0)) throw new Error(`${where}: a slice ends on track ${e.trackUuid} where none began`);
        openSlices.set(e.trackUuid, openSlices.get(e.trackUuid)! - 1);
      }
      const name = e.type === 4 ? 'counter' : e.type === 2 ? '(slice end)' : names.get(e.nameIid)!;
      events.push({ ts: p.timestamp, name, track, annotations, value: e.counterValue });
    }
  });
  return { tracks, events };
}

function exportTrace(capture: string, extra: string[] = []): { path: string; stdout: string } {
  const path = tempPath('out.pftrace');
  const run = pageref(['export', capture, '--perfetto', path, ...extra]);
  if (run.status !== 0) throw new Error(run.stderr);
  return { path, stdout: run.stdout };
}

test('the trace fixture as a Perfetto trace: a refcount track for the busy pfn, the failure with its holders, CMA events on the task\'s thread', (t) => {
  const capture = tempPath('trace.pgref');
  t.is(pageref(['import', join(FIXTURES, 'ftrace-trace.txt'), '-o', capture]).status, 0);
  const { path, stdout } = exportTrace(capture);
  t.regex(stdout, /perfetto: .*: 1 refcount tracks, 5 instant events and 1 allocation slices on 1 threads/);
  const { tracks, events } = checkStructure(decode(path));
  const counter = [...tracks.values()].find((d) => d.counter);
  t.is(counter?.name, 'pfn 0x12345 refcount');
  t.deepEqual(events.filter((e) => e.track === counter).map((e) => e.value), [1, 2, 1]);
  const failure = events.find((e) => e.name === 'isolation failed')!;
  t.is(failure.annotations.pfn, '0x12345');
  t.is(failure.annotations.start_pfn, '0x12000');
  t.is(failure.annotations.comm, 'cma-alloc');
  t.is(failure.annotations.refcount, 2);
  t.regex(String(failure.annotations.holders), /vmsplice-hold\[812\] 1 ref pin try_grab_folio\+0x4b, held 1500\.100 ms: __page_ref_mod\+0x5a <- try_grab_folio\+0x4b/);
  t.regex(String(failure.annotations.holders), /post_alloc_hook/);
  t.is(failure.track.thread?.tid, 900);
  const process = tracks.get(failure.track.parentUuid);
  t.deepEqual(process?.process, { pid: 900, processName: 'cma-alloc' });
  t.deepEqual(events.filter((e) => e.track === failure.track).map((e) => e.name), ['cma alloc', 'isolation failed', 'cma busy retry', '(slice end)', 'cma alloc finish', 'cma release'], 'the allocation is a slice around its failure and retry');
  t.deepEqual(events.find((e) => e.name === 'cma alloc')!.annotations, { area: 'reserved', count: 4096, align: 8, comm: 'cma-alloc', pid: 900, tid: 900 });
  const retry = events.find((e) => e.name === 'cma busy retry')!;
  t.is(retry.annotations.pfn, '0x12345', 'the retry is counted against the busy pfn of its task');
  t.regex(String(retry.annotations.holders), /vmsplice-hold\[812\] 1 ref pin try_grab_folio\+0x4b, held 1500\.110 ms: __page_ref_mod\+0x5a <- try_grab_folio\+0x4b/, 'and names who holds that page');
  t.is(retry.annotations.refcount, 2);
  const capt = events.find((e) => e.name === 'capture')!;
  t.regex(String(capt.annotations.source), /ftrace text: .*ftrace-trace\.txt/);
  t.is(capt.annotations.limits, 'none: every event was recorded');
});

test('counter tracks are bounded: busy pfns first, then the most active; records out of order still leave in time order', (t) => {
  const records: Buffer[] = [];
  let ts = 1_000_000_000n;
  for (let page = 0; page < 40; page++) {
    for (let n = 0; n <= page % 7; n++) {
      records.push(rawRecord({ type: EventType.PageRefMod, tsNs: (ts += 1000n), pfn: BigInt(0x30000 + page), val: 1, count: n + 2, pid: 10, tgid: 10, comm: 'worker', stackId: 1 }));
    }
  }
  // A record whose timestamp is a little older than the one before it, as CPUs reserve ring space.
  records.push(rawRecord({ type: EventType.PageRefMod, tsNs: ts - 5000n, pfn: 0x30006n, val: 1, count: 9, pid: 11, tgid: 10, comm: 'worker', stackId: 1 }));
  records.push(rawRecord({ type: EventType.TestPagesIsolated, tsNs: (ts += 1000n), pfn: 0x30000n, word1: 0x30200n, word2: 0x30021n, pid: 300, tgid: 300, comm: 'cma' }));
  const capture = tempPath('many.pgref');
  writeCapture(capture, records, { perBatch: 7 });
  const { path } = exportTrace(capture, ['--pfn-tracks', '3']);
  const { tracks, events } = checkStructure(decode(path));
  const counters = [...tracks.values()].filter((d) => d.counter).map((d) => d.name);
  t.deepEqual(counters, ['pfn 0x30021 refcount', 'pfn 0x30006 refcount', 'pfn 0x3000d refcount'], 'the busy pfn, then the pfns with the most events');
  t.deepEqual(events.filter((e) => e.track.name === 'pfn 0x30006 refcount').map((e) => e.value), [2, 3, 4, 5, 6, 7, 8, 9]);
  const late = events.find((e) => e.value === 9)!;
  t.is(late.ts, Number(ts) - 1000 - 5000, 'the late record keeps its own time: sorted into place, not moved');
  const before = events[events.indexOf(late) - 1];
  t.true(before.ts <= late.ts && before.value !== undefined);
  const json = JSON.parse(pageref(['export', capture, '--perfetto', tempPath('j.pftrace'), '--json', '--pfn-tracks', '3']).stdout);
  t.deepEqual(Object.keys(json.perfetto), ['output', 'bytes', 'packets', 'counterTracks', 'pfns', 'threadTracks', 'processTracks', 'instants', 'slices', 'counterEvents', 'reordered', 'limits']);
  t.deepEqual(json.perfetto.pfns, ['0x30021', '0x30006', '0x3000d']);
  t.is(json.perfetto.reordered, 0);
  t.is(json.pprof, null);
});

test('a busy retry names the holders of its busy pfn; a failed allocation those of the pfns its isolations failed on, a bounded number', (t) => {
  const records: Buffer[] = [];
  let ts = 1_000_100_000n;
  const at = () => (ts += 1_000_000n);
  const cma = { pid: 30, tgid: 30, comm: 'cma', name: 'reserved' };
  records.push(rawRecord({ type: EventType.PageRefMod, tsNs: at(), pfn: 0x40010n, val: 1, count: 2, pid: 20, tgid: 20, comm: 'holder', stackId: 1 }));
  records.push(rawRecord({ type: EventType.CmaAllocStart, tsNs: at(), pfn: 2n ** 64n - 1n, word1: 1024n, word2: 8n, ...cma }));
  // Two failures on the held page, then one on each of five pages pageref saw no reference taken on.
  for (const busy of [0x40010n, 0x40010n, 0x40020n, 0x40021n, 0x40022n, 0x40023n, 0x40024n]) {
    records.push(rawRecord({ type: EventType.TestPagesIsolated, tsNs: at(), pfn: 0x40000n, word1: 0x40400n, word2: busy, ...cma }));
    records.push(rawRecord({ type: EventType.CmaAllocBusyRetry, tsNs: at(), pfn: 0x40000n, word1: 1024n, word2: 8n, ...cma }));
  }
  // The holder lets go before the allocation gives up: the failures still name it.
  records.push(rawRecord({ type: EventType.PageRefMod, tsNs: at(), pfn: 0x40010n, val: -1, count: 1, pid: 20, tgid: 20, comm: 'holder', stackId: 2 }));
  records.push(rawRecord({ type: EventType.CmaAllocFinish, tsNs: at(), pfn: 2n ** 64n - 1n, word1: 1024n, word2: 8n, val: 0, ret: -16, ...cma }));
  const capture = tempPath('failed-alloc.pgref');
  writeCapture(capture, records);
  const { path } = exportTrace(capture);
  const { events } = checkStructure(decode(path));
  const retries = events.filter((e) => e.name === 'cma busy retry');
  t.is(retries.length, 7);
  t.is(retries[0].annotations.pfn, '0x40010');
  t.is(retries[0].annotations.holders, 'holder[20] 1 ref pin try_grab_page+0x40, held 3.000 ms: __page_ref_mod+0x12 <- try_grab_page+0x40 <- follow_page_pte+0x1f0');
  t.is(retries[0].annotations.refcount, 2);
  t.is(retries[2].annotations.pfn, '0x40020');
  t.is(retries[2].annotations.holders, 'none seen taken');
  const failed = events.find((e) => e.name === 'cma alloc failed')!;
  t.like(failed.annotations, { area: 'reserved', count: 1024, comm: 'cma', pid: 30, tid: 30 });
  t.false('pfn' in failed.annotations, 'a failed allocation has no pfn');
  t.is(failed.annotations.busy_pfns, '0x40010 0x40020 0x40021 0x40022');
  t.is(
    failed.annotations.holders,
    [
      'pfn 0x40010, 2 failures, holders at the last:',
      '  holder[20] 1 ref pin try_grab_page+0x40, held 4.000 ms: __page_ref_mod+0x12 <- try_grab_page+0x40 <- follow_page_pte+0x1f0',
      'pfn 0x40020, 1 failure, holders at the last:',
      '  none seen taken',
      'pfn 0x40021, 1 failure, holders at the last:',
      '  none seen taken',
      'pfn 0x40022, 1 failure, holders at the last:',
      '  none seen taken',
      'and 2 more failures on other pfns',
    ].join('\n'),
  );
});

test('sampled and aggregated captures say so on the capture track; aggregated pfn totals become counter values', (t) => {
  const records = [rawRecord({ type: EventType.TestPagesIsolated, tsNs: 1_000_002_000n, pfn: 0x50000n, word1: 0x50200n, word2: 0x50001n, pid: 5, tgid: 5, comm: 'cma' })];
  const counts: PfnCounts[] = [
    { pfn: [0x50001, 0x50002], gets: [3, 1], puts: [1, 0], events: [4, 1], lastCount: [3, 2], lastTsNs: [1_500, 1_800] },
    { pfn: [0x50001], gets: [0], puts: [2], events: [2], lastCount: [1], lastTsNs: [900_000_000] },
  ];
  const options: Partial<RecordOptions> = { aggregateSlots: 1024, stacksMode: 'none', stacks: false, samplePfn: 4 };
  const capture = tempPath('agg.pgref');
  writeCapture(capture, records, { recordOptions: options, pfnCounts: counts });
  const { path, stdout } = exportTrace(capture);
  t.regex(stdout, /note: aggregated: page_ref events were summed per pfn/);
  t.regex(stdout, /note: sampled: the page_ref events of 1 in 4 pfns/);
  const { events } = checkStructure(decode(path));
  const limits = String(events.find((e) => e.name === 'capture')!.annotations.limits);
  t.regex(limits, /aggregated: page_ref events were summed per pfn in the kernel/);
  t.regex(limits, /sampled: the page_ref events of 1 in 4 pfns/);
  t.deepEqual(events.filter((e) => e.track.name === 'pfn 0x50001 refcount').map((e) => e.value), [3, 1]);
});

test('export --perfetto and --pprof together, and the errors', (t) => {
  const capture = tempPath('both.pgref');
  t.is(pageref(['import', join(FIXTURES, 'ftrace-seed.txt'), '-o', capture]).status, 0);
  const run = pageref(['export', capture, '--perfetto', tempPath('b.pftrace'), '--pprof', tempPath('b.pb.gz'), '--json']);
  t.is(run.status, 0, run.stderr);
  const json = JSON.parse(run.stdout);
  t.truthy(json.pprof);
  t.truthy(json.perfetto);
  const damaged = tempPath('damaged.pgref');
  const bytes = readFileSync(capture);
  require('node:fs').writeFileSync(damaged, bytes.subarray(0, 8));
  const out = tempPath('never.pftrace');
  const bad = pageref(['export', damaged, '--perfetto', out]);
  t.is(bad.status, 1);
  t.false(require('node:fs').existsSync(out), 'no trace is left from a capture that could not be read');
  const usage = pageref(['export', capture, '--perfetto', tempPath('x.pftrace'), '--pfn-tracks', 'many']);
  t.is(usage.status, 2);
  t.regex(usage.stderr, /--pfn-tracks: "many" is not a non-negative integer/);
});

test('the reorder window: a record a little late is sorted into place, one later than the window is written at the time before it', (t) => {
  const { PerfettoTraceWriter } = require('../src/export/perfetto-trace') as typeof import('../src/export/perfetto-trace');
  const { allocateBatch } = require('../src/record/event-batch') as typeof import('../src/record/event-batch');
  const { StringTable } = require('../src/record/string-table') as typeof import('../src/record/string-table');
  const { testHeader } = require('./helpers/capture') as typeof import('./helpers/capture');
  const path = tempPath('window.pftrace');
  const writer = new PerfettoTraceWriter(path, [0x100]);
  writer.header(testHeader());
  const strings = new StringTable();
  const n = 20_000;
  const batch = allocateBatch(n);
  for (let i = 0; i < n; i++) {
    batch.type[i] = EventType.PageRefMod;
    batch.pfn[i] = 0x100;
    batch.tsNs[i] = i * 1000; // 1 µs apart: 20 ms in all
    batch.count[i] = i;
    batch.stackId[i] = -1;
  }
  batch.tsNs[15_000] = 15_000_000 - 5_000_000; // 5 ms late: inside the 10 ms window
  batch.tsNs[19_999] = 19_999_000 - 15_000_000; // 15 ms late: beyond it
  writer.events(batch, strings);
  writer.end({});
  t.is(writer.summary.reordered, 1);
  const { events } = checkStructure(decode(path));
  const values = events.filter((e) => e.name === 'counter').map((e) => e.value);
  t.is(values.length, n);
  const at = values.indexOf(15_000);
  t.deepEqual([values[at - 1], values[at + 1]], [10_000, 10_001], 'the 5 ms late record sits among the records of its time');
  const clamped = events.find((e) => e.value === 19_999)!;
  t.true(clamped.ts >= 1_000_000_000 + 4_999_000, 'written no earlier than the packet before it');
});

test('records from before the capture\'s base (negative times) keep their times', (t) => {
  const { PerfettoTraceWriter } = require('../src/export/perfetto-trace') as typeof import('../src/export/perfetto-trace');
  const { allocateBatch } = require('../src/record/event-batch') as typeof import('../src/record/event-batch');
  const { StringTable } = require('../src/record/string-table') as typeof import('../src/record/string-table');
  const { testHeader } = require('./helpers/capture') as typeof import('./helpers/capture');
  const path = tempPath('negative.pftrace');
  const writer = new PerfettoTraceWriter(path, [0x100]);
  writer.header(testHeader()); // monotonic base 1 s
  const batch = allocateBatch(3);
  [-2000, -1000, 500].forEach((ts, i) => {
    batch.type[i] = EventType.PageRefMod;
    batch.pfn[i] = 0x100;
    batch.tsNs[i] = ts;
    batch.count[i] = i + 1;
    batch.stackId[i] = -1;
  });
  writer.events(batch, new StringTable());
  writer.end({});
  t.is(writer.summary.reordered, 0);
  const { events } = checkStructure(decode(path));
  t.deepEqual(events.filter((e) => e.name === 'counter').map((e) => e.ts), [999_998_000, 999_999_000, 1_000_000_500]);
});

test('the trace is written as the capture is read: 64 KiB writes of whole packets, a bounded number of records held back', (t) => {
  const { Trace } = perfettoSchema();
  class WatchedWriter extends PerfettoTraceWriter {
    readonly writes: Buffer[] = [];
    protected override write(fd: number, data: Buffer): void {
      this.writes.push(Buffer.from(data));
      super.write(fd, data);
    }
  }
  const path = tempPath('stream.pftrace');
  const writer = new WatchedWriter(path, [0x100]);
  writer.header(testHeader());
  const strings = new StringTable();
  const perBatch = 3000;
  let fed = 0;
  let written = 0;
  let mostHeld = 0;
  for (let b = 0; b < 20; b++) {
    const batch = allocateBatch(perBatch);
    for (let i = 0; i < perBatch; i++, fed++) {
      batch.type[i] = EventType.PageRefMod;
      batch.pfn[i] = 0x100;
      batch.tsNs[i] = fed * 5000; // 5 us apart: the 10 ms reorder window holds 2,000
      batch.count[i] = fed % 100;
      batch.stackId[i] = -1;
    }
    writer.events(batch, strings);
    written = writer.writes.reduce((sum, data) => sum + counterPackets(Trace, data), 0);
    mostHeld = Math.max(mostHeld, fed - written);
  }
  const writesBeforeEnd = writer.writes.length;
  writer.end({});
  const file = readFileSync(path);
  t.true(file.length > 16 * FLUSH_BYTES, `${file.length} bytes`);
  t.true(writesBeforeEnd >= Math.floor(file.length / FLUSH_BYTES) - 1, `${writesBeforeEnd} writes before the end`);
  t.deepEqual(Buffer.concat(writer.writes), file, 'the file is the writes, in order');
  for (const data of writer.writes.slice(0, -1)) t.true(data.length >= FLUSH_BYTES && data.length < FLUSH_BYTES + 64, `a write of ${data.length} bytes`);
  // Held back at most: the window's 2,000, up to 4,096 waiting for a sort, and a 64 KiB chunk (about 3,000 packets).
  t.true(mostHeld < 10_000, `${mostHeld} of ${fed} records held at once`);
  t.is(writer.writes.reduce((sum, data) => sum + counterPackets(Trace, data), 0), fed);
});

/** Counter events in a run of whole packets (Trace's field 1 repeated). */
function counterPackets(Trace: ReturnType<typeof perfettoSchema>['Trace'], data: Buffer): number {
  const packets = (Trace.toObject(Trace.decode(data), { arrays: true }) as { packet: Packet[] }).packet;
  return packets.filter((p) => p.trackEvent?.type === 4).length;
}
