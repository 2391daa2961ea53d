// `npm run bench`: the user-space pipeline on synthetic ring-buffer batches
// of the real record layout (test/bench/page-lives.ts), against the named
// baseline in the same run. Prints numbers; asserts nothing (targets and
// results are in BENCHMARKS.md).
//
//   pageref:    copy a batch as the addon's drain does, then the fused path
//               (src/record/record-aggregator.ts) into PfnCounters: gets,
//               puts, events, last refcount, mapcount and time of every pfn
//   baseline:   decode each record as its own protobuf message with
//               protobufjs, aggregate gets/puts/events in a JS Map
//   hold table: copy, decode into columns, apply every page_ref event to the
//               hold table (the pairing blame needs), for comparison

import { cpus, loadavg } from 'node:os';
import protobuf from 'protobufjs';
import { HoldTable, readRefEvent, RefEvent } from '../../src/holds/hold-table';
import { DEFAULT_MAX_PFNS, PfnCounters } from '../../src/holds/pfn-counters';
import { referenceDelta } from '../../src/holds/reference-delta';
import { EventType, isPageRefEvent } from '../../src/record/event-types';
import { RECORD_SIZE, RecordField as F } from '../../src/record/layout';
import { PointerHasher } from '../../src/record/pointer-hash';
import { aggregateRecords } from '../../src/record/record-aggregator';
import { RecordDecoder } from '../../src/record/record-decoder';
import { StringTable } from '../../src/record/string-table';
import { byOutstandingReferences } from '../../src/report/capture-summary';
import { BATCH_RECORDS, pageLifeBatches } from './page-lives';

const PIPELINE_RUNS = 3;
const BASELINE_RECORDS = 300_000;
const MEMORY_PFNS = 10_000_000;
const TOP_ROWS = 50;
const TOP_RUNS = 5;
/** --max-pfns for the evicting runs: a quarter of the batches' 1 M distinct pfns. */
const EVICTING_MAX_PFNS = 1 << 18;

/** The commands' table: bounded by --max-pfns (the default holds all 1 M pfns; EVICTING_MAX_PFNS evicts). */
function pagerefPipeline(batches: Uint8Array[], maxPfns = DEFAULT_MAX_PFNS): { seconds: number; cpuSeconds: number; records: number; counters: PfnCounters } {
  const counters = new PfnCounters(maxPfns);
  const drained = new Uint8Array(BATCH_RECORDS * RECORD_SIZE);
  const started = process.hrtime.bigint();
  const cpuStarted = process.cpuUsage();
  let records = 0;
  for (const batch of batches) {
    drained.set(batch); // what NativeTracer.drain() does: copy out of the ring
    aggregateRecords(drained, batch.length, counters, 0n);
    records += batch.length / RECORD_SIZE;
  }
  const cpu = process.cpuUsage(cpuStarted);
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6, records, counters };
}

function holdTablePipeline(batches: Uint8Array[], maxPfns = DEFAULT_MAX_PFNS): { seconds: number; records: number; table: HoldTable } {
  const strings = new StringTable();
  const decoder = new RecordDecoder(strings, new PointerHasher(), 0n);
  const table = new HoldTable(1 << 14, undefined, maxPfns);
  const drained = new Uint8Array(BATCH_RECORDS * RECORD_SIZE);
  const e: RefEvent = { type: 0, pfn: 0, tsNs: 0, val: 0, ret: 0, count: 0, mapcount: 0, flags: 0, mapping: 0, stackId: 0, pid: 0, tgid: 0, comm: 0 };
  const started = process.hrtime.bigint();
  let records = 0;
  for (const batch of batches) {
    drained.set(batch);
    const b = decoder.decode(drained, batch.length);
    for (let i = 0; i < b.length; i++) {
      if (!isPageRefEvent(b.type[i])) continue;
      table.apply(readRefEvent(e, b, i));
    }
    records += b.length;
  }
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, records, table };
}
function baseline(batches: Uint8Array[]): { seconds: number; records: number } {
  const Record = new protobuf.Type('Record')
    .add(new protobuf.Field('type', 1, 'uint32'))
    .add(new protobuf.Field('tsNs', 2, 'uint64'))
    .add(new protobuf.Field('pfn', 3, 'uint64'))
    .add(new protobuf.Field('flags', 4, 'uint64'))
    .add(new protobuf.Field('mapping', 5, 'uint64'))
    .add(new protobuf.Field('pid', 6, 'uint32'))
    .add(new protobuf.Field('tgid', 7, 'uint32'))
    .add(new protobuf.Field('count', 8, 'sint32'))
    .add(new protobuf.Field('mapcount', 9, 'sint32'))
    .add(new protobuf.Field('val', 10, 'sint32'))
    .add(new protobuf.Field('ret', 11, 'sint32'))
    .add(new protobuf.Field('stackId', 12, 'sint32'))
    .add(new protobuf.Field('cpu', 13, 'uint32'))
    .add(new protobuf.Field('mt', 14, 'uint32'))
    .add(new protobuf.Field('comm', 15, 'string'));
  new protobuf.Root().add(Record);
  // The baseline's input: every record as its own message (encoding is not timed).
  const messages: Uint8Array[] = [];
  outer: for (const batch of batches) {
    const view = new DataView(batch.buffer, batch.byteOffset, batch.length);
    for (let at = 0; at < batch.length; at += RECORD_SIZE) {
      if (messages.length === BASELINE_RECORDS) break outer;
      messages.push(
        Record.encode({
          type: view.getUint8(at + F.type.offset),
          tsNs: view.getUint32(at, true),
          pfn: view.getUint32(at + F.pfn.offset, true),
          flags: view.getUint32(at + F['page.flags'].offset, true),
          mapping: view.getUint32(at + F['page.mapping'].offset, true),
          pid: view.getUint32(at + F.pid.offset, true),
          tgid: view.getUint32(at + F.tgid.offset, true),
          count: view.getInt32(at + F.count.offset, true),
          val: view.getInt32(at + F.val.offset, true),
          ret: view.getInt32(at + F.ret.offset, true),
          stackId: view.getInt32(at + F.stack_id.offset, true),
          comm: 'task',
        }).finish(),
      );
    }
  }
  const perPfn = new Map<number, { gets: number; puts: number; events: number }>();
  const started = process.hrtime.bigint();
  for (const message of messages) {
    const r = Record.decode(message) as unknown as { type: number; pfn: number; val: number; ret: number };
    const pfn = Number(r.pfn);
    let row = perPfn.get(pfn);
    if (!row) perPfn.set(pfn, (row = { gets: 0, puts: 0, events: 0 }));
    const delta = referenceDelta(r.type, r.val, r.ret);
    if (delta > 0) row.gets += delta;
    else row.puts -= delta;
    row.events++;
  }
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, records: messages.length };
}

/** PfnCounters' bytes per pfn with every page of a 40 GiB host tracked: dense, with the PCI hole below 4 GiB. */
function countersBytesPerPfn(): number {
  const counters = new PfnCounters();
  let pfn = 0x100;
  for (let n = 0; n < MEMORY_PFNS; n++, pfn++) {
    if (pfn === 0xc0000) pfn = 0x100000;
    counters.add(pfn, 1, 2, 1, n);
  }
  return counters.bytes / counters.size;
}

function holdTableBytesPerPfn(): number {
  const holds = new HoldTable();
  const e: RefEvent = { type: EventType.PageRefMod, pfn: 0, tsNs: 0, val: 1, ret: 0, count: 2, mapcount: 1, flags: 0, mapping: 0, stackId: 1, pid: 1, tgid: 1, comm: 0 };
  for (let pfn = 0; pfn < MEMORY_PFNS; pfn++) {
    e.pfn = pfn;
    holds.apply(e);
  }
  return holds.bytes / holds.size;
}

/** Milliseconds to pick the top rows of `counters` as the report and a live view do: the median of a few, after one to warm up. */
function topMs(counters: PfnCounters): number {
  counters.top(TOP_ROWS, byOutstandingReferences); // warm up the JIT
  const times: number[] = [];
  for (let run = 0; run < TOP_RUNS; run++) {
    const started = process.hrtime.bigint();
    counters.top(TOP_ROWS, byOutstandingReferences);
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return median(times);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// This machine is shared: how busy it was says how far wall-clock rates can be trusted.
const loadAverage = loadavg()[0];
const batches = pageLifeBatches();
pagerefPipeline(batches.slice(0, 16)); // warm up the JIT
const runs = Array.from({ length: PIPELINE_RUNS }, () => pagerefPipeline(batches));
const rates = runs.map((run) => run.records / run.seconds);
const pageref = runs[0];
baseline(batches.slice(0, 8));
const base = baseline(batches);
holdTablePipeline(batches.slice(0, 16));
const holds = holdTablePipeline(batches);
const evicting = pagerefPipeline(batches, EVICTING_MAX_PFNS);
const evictingHolds = holdTablePipeline(batches, EVICTING_MAX_PFNS);
const result = {
  pipeline: {
    recordsPerSec: Math.round(median(rates)),
    baselineRecordsPerSec: Math.round(base.records / base.seconds),
    distinctPfns: pageref.counters.size,
    bytesPerPfn: Number(countersBytesPerPfn().toFixed(1)),
    records: pageref.records,
    recordsPerSecRuns: rates.map(Math.round),
    // Records per second of CPU time the process got (GC threads included): less
    // sensitive than wall time to other processes taking the cores.
    cpuRecordsPerSec: Math.round(median(runs.map((run) => run.records / run.cpuSeconds))),
    loadAverage: Number(loadAverage.toFixed(2)),
    topNMs: Number(topMs(pageref.counters).toFixed(1)),
    holdTableRecordsPerSec: Math.round(holds.records / holds.seconds),
    holdTableBytesPerPfn: Math.round(holdTableBytesPerPfn()),
    // The same passes bounded below the distinct pfns: what eviction costs when it runs.
    evictingMaxPfns: EVICTING_MAX_PFNS,
    evictingRecordsPerSec: Math.round(evicting.records / evicting.seconds),
    evictedPfns: evicting.counters.evictions.pfns,
    evictingHoldTableRecordsPerSec: Math.round(evictingHolds.records / evictingHolds.seconds),
    holdTableEvictedPfns: evictingHolds.table.evictions.pfns,
  },
};
if (process.argv.includes('--json')) {
  process.stdout.write(JSON.stringify(result) + '\n');
} else {
  const p = result.pipeline;
  process.stdout.write(
    [
      `pipeline: ${(p.recordsPerSec / 1e6).toFixed(2)} M records/s (drain copy, fused aggregation into PfnCounters; median of ${p.recordsPerSecRuns.map((r) => (r / 1e6).toFixed(2)).join(', ')}), ${p.records} records, ${p.distinctPfns} distinct pfns`,
      `          ${(p.cpuRecordsPerSec / 1e6).toFixed(2)} M records per CPU second; load average ${p.loadAverage} on ${cpus().length} CPUs`,
      `baseline: ${(p.baselineRecordsPerSec / 1e6).toFixed(2)} M records/s (protobufjs per record + Map): pageref is ${(p.recordsPerSec / p.baselineRecordsPerSec).toFixed(1)}x`,
      `memory at ${MEMORY_PFNS / 1e6} M pfns: PfnCounters ${p.bytesPerPfn} bytes/pfn`,
      `top ${TOP_ROWS} of ${p.distinctPfns} pfns: ${p.topNMs} ms`,
      `hold table (decode, pairing for blame): ${(p.holdTableRecordsPerSec / 1e6).toFixed(2)} M records/s, ${p.holdTableBytesPerPfn} bytes/pfn`,
      `evicting at --max-pfns ${p.evictingMaxPfns}: pipeline ${(p.evictingRecordsPerSec / 1e6).toFixed(2)} M records/s (${p.evictedPfns} pfns evicted), hold table ${(p.evictingHoldTableRecordsPerSec / 1e6).toFixed(2)} M records/s (${p.holdTableEvictedPfns} evicted)`,
      '',
    ].join('\n'),
  );
}
